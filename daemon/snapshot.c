/* Look-ups over a kernel snapshot; pure code, shared by the planner and its tests. */
#include <net/if_arp.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "util.h"

const char *devconf_to_string(Devconf d) {
        static const char *const table[_DEVCONF_MAX] = {
                [DEVCONF_ARP_IGNORE] = "arp_ignore",
                [DEVCONF_ARP_ANNOUNCE] = "arp_announce",
                [DEVCONF_RP_FILTER] = "rp_filter",
        };

        return (size_t) d < _DEVCONF_MAX ? table[d] : "unknown";
}

void snapshot_done(Snapshot *s) {
        free(s->links);
        free(s->addrs);
        free(s->routes);
        free(s->rules);
        *s = (Snapshot) {};
}

const LinkInfo *snapshot_link_by_index(const Snapshot *s, int ifindex) {
        for (size_t i = 0; i < s->n_links; i++)
                if (s->links[i].ifindex == ifindex)
                        return &s->links[i];
        return NULL;
}

bool link_has_altname(const LinkInfo *l, const char *name) {
        for (size_t i = 0; i < l->n_altnames; i++)
                if (streq(l->altnames[i], name))
                        return true;
        return false;
}

const LinkInfo *snapshot_link_by_name(const Snapshot *s, const char *name) {
        for (size_t i = 0; i < s->n_links; i++)
                if (streq(s->links[i].name, name) || link_has_altname(&s->links[i], name))
                        return &s->links[i];
        return NULL;
}

void link_classify(LinkInfo *l) {
        /* Kinds that stack on a NIC or aggregate NICs, and so often carry a NIC's MAC. */
        static const char *const stacked[] = {
                "bridge", "bond",   "team",   "vlan",  "macvlan",     "macvtap",
                "ipvlan", "ipvtap", "vxlan",  "vrf",   "openvswitch", "net_failover",
                "macsec", "dummy",  "geneve", "hsr",
        };

        l->physical_like = l->has_mac && l->arptype == ARPHRD_ETHER;
        for (size_t i = 0; l->physical_like && i < ELEMENTSOF(stacked); i++)
                if (streq(l->kind, stacked[i]))
                        l->physical_like = false;
}

bool route_is_main_default(const RouteInfo *r) {
        return r->table == RT_TABLE_MAIN && r->dst_len == 0 && r->type == RTN_UNICAST;
}

bool snapshot_is_primary(const Snapshot *s, int ifindex) {
        for (size_t i = 0; i < s->n_routes; i++)
                if (route_is_main_default(&s->routes[i]) && s->routes[i].oif == ifindex)
                        return true;
        return false;
}

static size_t count_defaults(const Snapshot *s) {
        size_t n = 0;

        for (size_t i = 0; i < s->n_routes; i++)
                n += route_is_main_default(&s->routes[i]);
        return n;
}

bool snapshot_has_default_route(const Snapshot *s, const RouteInfo *r) {
        for (size_t i = 0; i < s->n_routes; i++) {
                const RouteInfo *o = &s->routes[i];

                if (route_is_main_default(o) && o->oif == r->oif &&
                    o->gateway.s_addr == r->gateway.s_addr && o->metric == r->metric)
                        return true;
        }
        return false;
}

bool snapshot_default_routes_equal(const Snapshot *a, const Snapshot *b) {
        if (count_defaults(a) != count_defaults(b))
                return false;
        for (size_t i = 0; i < a->n_routes; i++)
                if (route_is_main_default(&a->routes[i]) &&
                    !snapshot_has_default_route(b, &a->routes[i]))
                        return false;
        return true;
}

static int dup_array(const void *src, size_t n, size_t size, void **ret) {
        *ret = NULL;
        if (n == 0)
                return 0;
        *ret = malloc(n * size);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, src, n * size);
        return 0;
}

int snapshot_copy(const Snapshot *s, Snapshot *ret) {
        Snapshot c = { .n_links = s->n_links, .n_addrs = s->n_addrs, .n_routes = s->n_routes,
                       .n_rules = s->n_rules };

        if (dup_array(s->links, s->n_links, sizeof(LinkInfo), (void **) &c.links) < 0 ||
            dup_array(s->addrs, s->n_addrs, sizeof(AddrInfo), (void **) &c.addrs) < 0 ||
            dup_array(s->routes, s->n_routes, sizeof(RouteInfo), (void **) &c.routes) < 0 ||
            dup_array(s->rules, s->n_rules, sizeof(RuleInfo), (void **) &c.rules) < 0) {
                snapshot_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}
