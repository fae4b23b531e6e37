/* The daemon's only door to rtnetlink: reading a snapshot and making single changes. */
#pragma once

#include <netlink/netlink.h>

#include "snapshot.h"

int netlink_open(struct nl_sock **ret);
void netlink_closep(struct nl_sock **sk);

/* Translates a libnl NLE_* code (negative) into a negative errno. */
int netlink_errno(int nle);

int netlink_snapshot(struct nl_sock *sk, Snapshot *ret);
/* Only the IPv4 routes: enough to compare default routes. */
int netlink_snapshot_routes(struct nl_sock *sk, Snapshot *ret);

int netlink_link_rename(struct nl_sock *sk, int ifindex, const char *name);
int netlink_link_set_mtu(struct nl_sock *sk, int ifindex, uint32_t mtu);
int netlink_link_set_up(struct nl_sock *sk, int ifindex, bool up);
/* Sets each sysctl whose value is not negative, in one message. */
int netlink_link_set_devconf(struct nl_sock *sk, int ifindex, const int32_t values[_DEVCONF_MAX]);
int netlink_link_del_altname(struct nl_sock *sk, int ifindex, const char *name);
int netlink_link_add_altname(struct nl_sock *sk, int ifindex, const char *name);

int netlink_addr_add(struct nl_sock *sk, const AddrInfo *a);
int netlink_addr_del(struct nl_sock *sk, const AddrInfo *a);
int netlink_rule_add(struct nl_sock *sk, const RuleInfo *r);
int netlink_rule_del(struct nl_sock *sk, const RuleInfo *r);
int netlink_route_add(struct nl_sock *sk, const RouteInfo *r);
int netlink_route_del(struct nl_sock *sk, const RouteInfo *r);
