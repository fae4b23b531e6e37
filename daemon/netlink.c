/* rtnetlink through libnl: snapshot dumps and single-object changes, errors as -errno. */
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>

#include "netlink.h"
#include "spec.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_msg *, nlmsg_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_rule *, rtnl_rule_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_route *, rtnl_route_put);

int netlink_errno(int nle) {
        static const int table[] = {
                [NLE_INTR] = EINTR,        [NLE_AGAIN] = EAGAIN,
                [NLE_NOMEM] = ENOMEM,      [NLE_EXIST] = EEXIST,
                [NLE_INVAL] = EINVAL,      [NLE_RANGE] = ERANGE,
                [NLE_MSGSIZE] = EMSGSIZE,  [NLE_OPNOTSUPP] = EOPNOTSUPP,
                [NLE_AF_NOSUPPORT] = EAFNOSUPPORT, [NLE_OBJ_NOTFOUND] = ENOENT,
                [NLE_NOADDR] = EADDRNOTAVAIL, [NLE_BUSY] = EBUSY,
                [NLE_NOACCESS] = EACCES,   [NLE_PERM] = EPERM,
                [NLE_NODEV] = ENODEV,      [NLE_DUMP_INTR] = EINTR,
        };
        int n = nle < 0 ? -nle : nle;

        if (n == 0)
                return 0;
        if ((size_t) n < ELEMENTSOF(table) && table[n] != 0)
                return -table[n];
        return -EIO;
}

int netlink_open(struct nl_sock **ret) {
        struct nl_sock *sk = nl_socket_alloc();
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return netlink_errno(r);
        }
        /* Snapshots of hosts with many links need more than the default buffer. */
        (void) nl_socket_set_buffer_size(sk, 1 << 20, 1 << 20);
        nl_socket_set_msg_buf_size(sk, 32768);
        *ret = sk;
        return 0;
}

void netlink_closep(struct nl_sock **sk) {
        if (*sk)
                nl_socket_free(*sk);
        *sk = NULL;
}

/* Callbacks fill the snapshot and remember the first error, so that a snapshot is whole or none. */
typedef struct SnapshotContext {
        Snapshot s;
        int error;
} SnapshotContext;

static int array_grow(void **array, size_t *n, size_t size) {
        void *p = realloc(*array, (*n + 1) * size);

        if (!p)
                return -ENOMEM;
        memset((char *) p + *n * size, 0, size);
        *array = p;
        (*n)++;
        return 0;
}

static void parse_linkinfo(LinkInfo *l, struct nlattr *attr) {
        struct nlattr *tb[IFLA_INFO_MAX + 1];

        if (nla_parse_nested(tb, IFLA_INFO_MAX, attr, NULL) < 0 || !tb[IFLA_INFO_KIND])
                return;
        nla_strlcpy(l->kind, tb[IFLA_INFO_KIND], sizeof(l->kind));
}

static void parse_altnames(LinkInfo *l, struct nlattr *attr) {
        struct nlattr *a;
        int rem;

        nla_for_each_nested(a, attr, rem) {
                if (nla_type(a) != IFLA_ALT_IFNAME || l->n_altnames >= LINK_ALTNAMES_MAX)
                        continue;
                nla_strlcpy(l->altnames[l->n_altnames++], a, LINK_ALTNAME_LEN);
        }
}

/* The kernel's IPV4_DEVCONF_* id of each sysctl multinicd manages. */
static const unsigned devconf_ids[_DEVCONF_MAX] = {
        [DEVCONF_ARP_IGNORE] = IPV4_DEVCONF_ARP_IGNORE,
        [DEVCONF_ARP_ANNOUNCE] = IPV4_DEVCONF_ARP_ANNOUNCE,
        [DEVCONF_RP_FILTER] = IPV4_DEVCONF_RP_FILTER,
};

static void parse_af_spec(LinkInfo *l, struct nlattr *attr) {
        struct nlattr *af, *tb[IFLA_INET_MAX + 1];
        int rem;

        nla_for_each_nested(af, attr, rem) {
                if (nla_type(af) != AF_INET)
                        continue;
                if (nla_parse_nested(tb, IFLA_INET_MAX, af, NULL) < 0 || !tb[IFLA_INET_CONF])
                        return;
                /* IFLA_INET_CONF is an array of u32 indexed by IPV4_DEVCONF_* - 1. */
                const uint32_t *conf = nla_data(tb[IFLA_INET_CONF]);
                size_t n = (size_t) nla_len(tb[IFLA_INET_CONF]) / sizeof(uint32_t);
                for (size_t i = 0; i < _DEVCONF_MAX; i++)
                        if (devconf_ids[i] <= n)
                                l->devconf[i] = (int32_t) conf[devconf_ids[i] - 1];
        }
}

static uint32_t attr_u32(struct nlattr *a) {
        return a && nla_len(a) >= 4 ? nla_get_u32(a) : 0;
}

static int link_parse_cb(struct nl_msg *msg, void *userdata) {
        SnapshotContext *ctx = userdata;
        Snapshot *s = &ctx->s;
        struct nlmsghdr *nlh = nlmsg_hdr(msg);
        struct ifinfomsg *ifi = nlmsg_data(nlh);
        struct nlattr *tb[IFLA_MAX + 1];
        LinkInfo *l;

        if (nlh->nlmsg_type != RTM_NEWLINK)
                return NL_SKIP;
        if (nlmsg_parse(nlh, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0)
                return NL_SKIP;
        if (array_grow((void **) &s->links, &s->n_links, sizeof(*l)) < 0) {
                ctx->error = -ENOMEM;
                return NL_SKIP; /* the rest of the dump is still read, then thrown away */
        }
        l = &s->links[s->n_links - 1];
        l->ifindex = ifi->ifi_index;
        l->flags = ifi->ifi_flags;
        l->arptype = ifi->ifi_type;
        for (size_t i = 0; i < _DEVCONF_MAX; i++)
                l->devconf[i] = -1;
        if (tb[IFLA_IFNAME])
                nla_strlcpy(l->name, tb[IFLA_IFNAME], sizeof(l->name));
        if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) {
                memcpy(l->mac, nla_data(tb[IFLA_ADDRESS]), 6);
                l->has_mac = true;
        }
        l->mtu = attr_u32(tb[IFLA_MTU]);
        l->min_mtu = attr_u32(tb[IFLA_MIN_MTU]);
        l->max_mtu = attr_u32(tb[IFLA_MAX_MTU]);
        l->master = (int) attr_u32(tb[IFLA_MASTER]);
        if (tb[IFLA_LINKINFO])
                parse_linkinfo(l, tb[IFLA_LINKINFO]);
        if (tb[IFLA_PROP_LIST])
                parse_altnames(l, tb[IFLA_PROP_LIST]);
        if (tb[IFLA_AF_SPEC])
                parse_af_spec(l, tb[IFLA_AF_SPEC]);
        link_classify(l);
        return NL_OK;
}

/* libnl 3.7 exposes neither IFLA_MIN_MTU/IFLA_MAX_MTU nor altnames, so links are parsed here. */
static int snapshot_links(struct nl_sock *sk, SnapshotContext *ctx) {
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
        int r;

        r = nl_send_simple(sk, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi));
        if (r < 0)
                return netlink_errno(r);
        nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, link_parse_cb, ctx);
        r = nl_recvmsgs_default(sk);
        nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_DEFAULT, NULL, NULL);
        return r < 0 ? netlink_errno(r) : 0;
}

static struct in_addr nl_addr_to_in(struct nl_addr *a) {
        struct in_addr in = {};

        if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4)
                memcpy(&in, nl_addr_get_binary_addr(a), 4);
        return in;
}

static void addr_add_cb(struct nl_object *obj, void *userdata) {
        struct rtnl_addr *a = (struct rtnl_addr *) obj;
        SnapshotContext *ctx = userdata;
        Snapshot *s = &ctx->s;
        AddrInfo *ai;

        if (rtnl_addr_get_family(a) != AF_INET)
                return;
        if (array_grow((void **) &s->addrs, &s->n_addrs, sizeof(*ai)) < 0) {
                ctx->error = -ENOMEM;
                return;
        }
        ai = &s->addrs[s->n_addrs - 1];
        ai->ifindex = rtnl_addr_get_ifindex(a);
        ai->local = nl_addr_to_in(rtnl_addr_get_local(a));
        ai->prefixlen = (uint8_t) rtnl_addr_get_prefixlen(a);
        ai->flags = rtnl_addr_get_flags(a);
}

static void route_add_one(SnapshotContext *ctx, struct rtnl_route *rt, struct rtnl_nexthop *nh) {
        Snapshot *s = &ctx->s;
        RouteInfo *ri;

        if (array_grow((void **) &s->routes, &s->n_routes, sizeof(*ri)) < 0) {
                ctx->error = -ENOMEM;
                return;
        }
        ri = &s->routes[s->n_routes - 1];
        ri->table = rtnl_route_get_table(rt);
        ri->dst = nl_addr_to_in(rtnl_route_get_dst(rt));
        ri->dst_len = (uint8_t) nl_addr_get_prefixlen(rtnl_route_get_dst(rt));
        ri->prefsrc = nl_addr_to_in(rtnl_route_get_pref_src(rt));
        ri->scope = rtnl_route_get_scope(rt);
        ri->protocol = rtnl_route_get_protocol(rt);
        ri->type = rtnl_route_get_type(rt);
        ri->metric = rtnl_route_get_priority(rt);
        if (nh) {
                ri->oif = rtnl_route_nh_get_ifindex(nh);
                ri->gateway = nl_addr_to_in(rtnl_route_nh_get_gateway(nh));
                /* Only what a route is added with; the kernel's state flags (dead, linkdown)
                 * are its own. */
                ri->nh_flags = rtnl_route_nh_get_flags(nh) & RTNH_F_ONLINK;
        }
}

/* A multipath route becomes one entry per next hop, so that every NIC it uses is seen. */
static void route_add_cb(struct nl_object *obj, void *userdata) {
        struct rtnl_route *rt = (struct rtnl_route *) obj;
        int n = rtnl_route_get_nnexthops(rt);

        if (n <= 0)
                route_add_one(userdata, rt, NULL);
        for (int i = 0; i < n; i++)
                route_add_one(userdata, rt, rtnl_route_nexthop_n(rt, i));
}

static void rule_add_cb(struct nl_object *obj, void *userdata) {
        struct rtnl_rule *rule = (struct rtnl_rule *) obj;
        SnapshotContext *ctx = userdata;
        Snapshot *s = &ctx->s;
        RuleInfo *ri;
        struct nl_addr *src = rtnl_rule_get_src(rule);

        if (array_grow((void **) &s->rules, &s->n_rules, sizeof(*ri)) < 0) {
                ctx->error = -ENOMEM;
                return;
        }
        ri = &s->rules[s->n_rules - 1];
        ri->priority = rtnl_rule_get_prio(rule);
        ri->table = rtnl_rule_get_table(rule);
        ri->action = rtnl_rule_get_action(rule);
        ri->src = nl_addr_to_in(src);
        ri->src_len = src ? (uint8_t) nl_addr_get_prefixlen(src) : 0;
        ri->other_selectors = rtnl_rule_get_dst(rule) || rtnl_rule_get_iif(rule) ||
                              rtnl_rule_get_oif(rule) || rtnl_rule_get_mark(rule) != 0 ||
                              rtnl_rule_get_dsfield(rule) != 0;
}

static int snapshot_once(struct nl_sock *sk, bool routes_only, Snapshot *ret) {
        _cleanup_(nl_cache_freep) struct nl_cache *addrs = NULL, *routes = NULL, *rules = NULL;
        SnapshotContext ctx = {};
        int r = 0;

        if (!routes_only)
                r = snapshot_links(sk, &ctx);
        if (r >= 0 && !routes_only)
                r = netlink_errno(rtnl_addr_alloc_cache(sk, &addrs));
        if (r >= 0)
                r = netlink_errno(rtnl_route_alloc_cache(sk, AF_INET, 0, &routes));
        if (r >= 0 && !routes_only)
                r = netlink_errno(rtnl_rule_alloc_cache(sk, AF_INET, &rules));
        if (r >= 0) {
                if (addrs)
                        nl_cache_foreach(addrs, addr_add_cb, &ctx);
                nl_cache_foreach(routes, route_add_cb, &ctx);
                if (rules)
                        nl_cache_foreach(rules, rule_add_cb, &ctx);
                r = ctx.error;
        }
        if (r < 0) {
                snapshot_done(&ctx.s);
                return r;
        }
        *ret = ctx.s;
        return 0;
}

static int snapshot_retry(struct nl_sock *sk, bool routes_only, Snapshot *ret) {
        int r = -EINTR;

        /* The kernel interrupts a dump that races with a change; read again, as libnl does. */
        for (unsigned i = 0; i < 5 && r == -EINTR; i++)
                r = snapshot_once(sk, routes_only, ret);
        return r;
}

int netlink_snapshot(struct nl_sock *sk, Snapshot *ret) {
        return snapshot_retry(sk, false, ret);
}

int netlink_snapshot_routes(struct nl_sock *sk, Snapshot *ret) {
        return snapshot_retry(sk, true, ret);
}

static int link_change(struct nl_sock *sk, int ifindex, struct rtnl_link *changes) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *orig = rtnl_link_alloc();

        if (!orig)
                return -ENOMEM;
        rtnl_link_set_ifindex(orig, ifindex);
        return netlink_errno(rtnl_link_change(sk, orig, changes, 0));
}

int netlink_link_rename(struct nl_sock *sk, int ifindex, const char *name) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *c = rtnl_link_alloc();

        if (!c)
                return -ENOMEM;
        rtnl_link_set_name(c, name);
        return link_change(sk, ifindex, c);
}

int netlink_link_set_mtu(struct nl_sock *sk, int ifindex, uint32_t mtu) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *c = rtnl_link_alloc();

        if (!c)
                return -ENOMEM;
        rtnl_link_set_mtu(c, mtu);
        return link_change(sk, ifindex, c);
}

int netlink_link_set_up(struct nl_sock *sk, int ifindex, bool up) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *c = rtnl_link_alloc();

        if (!c)
                return -ENOMEM;
        if (up)
                rtnl_link_set_flags(c, IFF_UP);
        else
                rtnl_link_unset_flags(c, IFF_UP);
        return link_change(sk, ifindex, c);
}

int netlink_link_set_devconf(struct nl_sock *sk, int ifindex, const int32_t values[_DEVCONF_MAX]) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *c = rtnl_link_alloc();
        int r;

        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < _DEVCONF_MAX; i++) {
                if (values[i] < 0)
                        continue;
                r = rtnl_link_inet_set_conf(c, devconf_ids[i], (uint32_t) values[i]);
                if (r < 0)
                        return netlink_errno(r);
        }
        return link_change(sk, ifindex, c);
}

static int link_altname(struct nl_sock *sk, int type, int ifindex, const char *name) {
        _cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(type, NLM_F_ACK);
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
        struct nlattr *list;
        int r;

        /* libnl 3.7 has no helper for link properties. */
        if (!msg)
                return -ENOMEM;
        if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
                return -ENOMEM;
        list = nla_nest_start(msg, IFLA_PROP_LIST | NLA_F_NESTED);
        if (!list || nla_put_string(msg, IFLA_ALT_IFNAME, name) < 0)
                return -ENOMEM;
        nla_nest_end(msg, list);
        r = nl_send_auto(sk, msg);
        if (r < 0)
                return netlink_errno(r);
        return netlink_errno(nl_wait_for_ack(sk));
}

int netlink_link_del_altname(struct nl_sock *sk, int ifindex, const char *name) {
        return link_altname(sk, RTM_DELLINKPROP, ifindex, name);
}

int netlink_link_add_altname(struct nl_sock *sk, int ifindex, const char *name) {
        return link_altname(sk, RTM_NEWLINKPROP, ifindex, name);
}

static struct nl_addr *in_to_nl_addr(struct in_addr in, uint8_t prefixlen) {
        struct nl_addr *a = nl_addr_build(AF_INET, &in, sizeof(in));

        if (a)
                nl_addr_set_prefixlen(a, prefixlen);
        return a;
}

static struct rtnl_addr *addr_build(const AddrInfo *ai) {
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *local = in_to_nl_addr(ai->local, ai->prefixlen);

        if (!a || !local)
                return NULL;
        rtnl_addr_set_ifindex(a, ai->ifindex);
        rtnl_addr_set_family(a, AF_INET);
        if (rtnl_addr_set_local(a, local) < 0)
                return NULL;
        rtnl_addr_set_prefixlen(a, ai->prefixlen);
        if (ai->prefixlen < 31) {
                uint32_t bcast = ntohl(ai->local.s_addr) | ~prefix_to_mask(ai->prefixlen);
                struct in_addr b = { .s_addr = htonl(bcast) };
                _cleanup_(nl_addr_putp) struct nl_addr *brd = in_to_nl_addr(b, 32);

                if (!brd || rtnl_addr_set_broadcast(a, brd) < 0)
                        return NULL;
        }
        rtnl_addr_set_flags(a, ai->flags);
        return TAKE_PTR(a);
}

int netlink_addr_add(struct nl_sock *sk, const AddrInfo *ai) {
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = addr_build(ai);

        if (!a)
                return -ENOMEM;
        return netlink_errno(rtnl_addr_add(sk, a, NLM_F_EXCL));
}

int netlink_addr_del(struct nl_sock *sk, const AddrInfo *ai) {
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = addr_build(ai);

        if (!a)
                return -ENOMEM;
        return netlink_errno(rtnl_addr_delete(sk, a, 0));
}

static struct rtnl_rule *rule_build(const RuleInfo *ri) {
        _cleanup_(rtnl_rule_putp) struct rtnl_rule *rule = rtnl_rule_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *src = in_to_nl_addr(ri->src, ri->src_len);

        if (!rule || !src)
                return NULL;
        rtnl_rule_set_family(rule, AF_INET);
        rtnl_rule_set_prio(rule, ri->priority);
        if (rtnl_rule_set_src(rule, src) < 0)
                return NULL;
        rtnl_rule_set_table(rule, ri->table);
        rtnl_rule_set_action(rule, FR_ACT_TO_TBL);
        return TAKE_PTR(rule);
}

int netlink_rule_add(struct nl_sock *sk, const RuleInfo *ri) {
        _cleanup_(rtnl_rule_putp) struct rtnl_rule *rule = rule_build(ri);

        if (!rule)
                return -ENOMEM;
        return netlink_errno(rtnl_rule_add(sk, rule, NLM_F_EXCL));
}

int netlink_rule_del(struct nl_sock *sk, const RuleInfo *ri) {
        _cleanup_(rtnl_rule_putp) struct rtnl_rule *rule = rule_build(ri);

        if (!rule)
                return -ENOMEM;
        return netlink_errno(rtnl_rule_delete(sk, rule, 0));
}

/* The route exactly as the snapshot or the plan has it: the kernel deletes only a route whose
 * scope, protocol, metric and next hop match, and an undo must put back the same route. */
static struct rtnl_route *route_build(const RouteInfo *ri) {
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = rtnl_route_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *dst = in_to_nl_addr(ri->dst, ri->dst_len);
        struct rtnl_nexthop *nh;

        if (!rt || !dst)
                return NULL;
        rtnl_route_set_family(rt, AF_INET);
        rtnl_route_set_table(rt, ri->table);
        if (rtnl_route_set_dst(rt, dst) < 0)
                return NULL;
        if (ri->prefsrc.s_addr != 0) {
                _cleanup_(nl_addr_putp) struct nl_addr *src = in_to_nl_addr(ri->prefsrc, 32);

                if (!src || rtnl_route_set_pref_src(rt, src) < 0)
                        return NULL;
        }
        rtnl_route_set_scope(rt, ri->scope);
        rtnl_route_set_protocol(rt, ri->protocol);
        rtnl_route_set_type(rt, ri->type);
        rtnl_route_set_priority(rt, ri->metric);
        nh = rtnl_route_nh_alloc();
        if (!nh)
                return NULL;
        rtnl_route_nh_set_ifindex(nh, ri->oif);
        if (ri->nh_flags)
                rtnl_route_nh_set_flags(nh, ri->nh_flags);
        if (ri->gateway.s_addr != 0) {
                _cleanup_(nl_addr_putp) struct nl_addr *gw = in_to_nl_addr(ri->gateway, 32);

                if (!gw) {
                        rtnl_route_nh_free(nh);
                        return NULL;
                }
                rtnl_route_nh_set_gateway(nh, gw);
        }
        rtnl_route_add_nexthop(rt, nh);
        return TAKE_PTR(rt);
}

int netlink_route_add(struct nl_sock *sk, const RouteInfo *ri) {
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = route_build(ri);

        if (!rt)
                return -ENOMEM;
        return netlink_errno(rtnl_route_add(sk, rt, NLM_F_EXCL));
}

int netlink_route_del(struct nl_sock *sk, const RouteInfo *ri) {
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = route_build(ri);

        if (!rt)
                return -ENOMEM;
        return netlink_errno(rtnl_route_delete(sk, rt, 0));
}
