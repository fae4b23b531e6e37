/* A plain-data picture of the kernel's links, IPv4 addresses, routes and rules. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define LINK_ALTNAMES_MAX 8
#define LINK_ALTNAME_LEN 128

/* The per-NIC IPv4 sysctls multinicd manages, in the order used everywhere. */
typedef enum Devconf {
        DEVCONF_ARP_IGNORE,
        DEVCONF_ARP_ANNOUNCE,
        DEVCONF_RP_FILTER,
        _DEVCONF_MAX,
} Devconf;

typedef struct LinkInfo {
        int ifindex;
        char name[IFNAMSIZ];
        uint8_t mac[6];
        bool has_mac;
        uint16_t arptype;
        char kind[32]; /* rtnetlink link kind; empty for hardware NICs */
        bool physical_like; /* set by link_classify() */
        bool udev_pending;  /* udev runs and has not finished with it: not there yet */
        int master;
        unsigned flags;
        uint32_t mtu, min_mtu, max_mtu; /* min/max 0 when the kernel does not say */
        char altnames[LINK_ALTNAMES_MAX][LINK_ALTNAME_LEN];
        size_t n_altnames;
        int32_t devconf[_DEVCONF_MAX]; /* -1 when unknown */
} LinkInfo;

typedef struct AddrInfo {
        int ifindex;
        struct in_addr local;
        uint8_t prefixlen;
        uint32_t flags;
} AddrInfo;

typedef struct RouteInfo {
        uint32_t table;
        struct in_addr dst;
        uint8_t dst_len;
        int oif;
        struct in_addr prefsrc;
        struct in_addr gateway;
        uint8_t scope, protocol, type;
        uint32_t metric;
        uint32_t nh_flags; /* RTNH_F_ONLINK and the like */
} RouteInfo;

typedef struct RuleInfo {
        uint32_t priority;
        uint32_t table;
        struct in_addr src;
        uint8_t src_len;
        uint8_t action;
        bool other_selectors; /* iif, oif, fwmark, dst, tos...: not a plain source rule */
} RuleInfo;

typedef struct Snapshot {
        LinkInfo *links;
        size_t n_links;
        AddrInfo *addrs;
        size_t n_addrs;
        RouteInfo *routes;
        size_t n_routes;
        RuleInfo *rules;
        size_t n_rules;
} Snapshot;

/* The sysctl's name below net/ipv4/conf/<if>/. */
const char *devconf_to_string(Devconf d);

void snapshot_done(Snapshot *s);
int snapshot_copy(const Snapshot *s, Snapshot *ret);

const LinkInfo *snapshot_link_by_index(const Snapshot *s, int ifindex);
/* Any link whose name or altname is name. */
const LinkInfo *snapshot_link_by_name(const Snapshot *s, const char *name);
bool link_has_altname(const LinkInfo *l, const char *name);
/* Marks links that can carry a NIC of the spec: not VLANs, bridges, bonds, macvlans and the
 * like. Done once per link when it is read, since every NIC of a spec looks at every link. */
void link_classify(LinkInfo *l);

bool route_is_main_default(const RouteInfo *r);
/* Whether s holds a main-table default route with r's device, gateway and metric. */
bool snapshot_has_default_route(const Snapshot *s, const RouteInfo *r);
/* Compares the main table's default routes of two snapshots. */
bool snapshot_default_routes_equal(const Snapshot *a, const Snapshot *b);
bool snapshot_is_primary(const Snapshot *s, int ifindex);
