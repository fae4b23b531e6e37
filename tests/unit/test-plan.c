/* Unit tests of the planner over hand-made kernel snapshots: no root, no netlink. */
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>

#include "plan.h"
#include "tests.h"

static LinkInfo *add_link(Snapshot *s, int ifindex, const char *name, uint8_t last) {
        LinkInfo *l;

        s->links = realloc(s->links, (s->n_links + 1) * sizeof(LinkInfo));
        l = &s->links[s->n_links++];
        *l = (LinkInfo) { .ifindex = ifindex, .has_mac = true, .arptype = ARPHRD_ETHER,
                          .mtu = 1500, .min_mtu = 68, .max_mtu = 65535 };
        snprintf(l->name, sizeof(l->name), "%s", name);
        memcpy(l->mac, (uint8_t[]) { 0xfa, 0x16, 0x3e, 0, 0, last }, 6);
        for (size_t i = 0; i < _DEVCONF_MAX; i++)
                l->devconf[i] = 0;
        link_classify(l);
        return l;
}

static struct in_addr ip(const char *s) {
        struct in_addr a;

        ASSERT_EQ(inet_pton(AF_INET, s, &a), 1);
        return a;
}

static void add_addr(Snapshot *s, int ifindex, const char *a, uint8_t plen, uint32_t flags) {
        s->addrs = realloc(s->addrs, (s->n_addrs + 1) * sizeof(AddrInfo));
        s->addrs[s->n_addrs++] = (AddrInfo) { ifindex, ip(a), plen, flags };
}

static void add_default_route(Snapshot *s, int ifindex) {
        s->routes = realloc(s->routes, (s->n_routes + 1) * sizeof(RouteInfo));
        s->routes[s->n_routes++] = (RouteInfo) { .table = RT_TABLE_MAIN, .oif = ifindex,
                                                 .gateway = ip("10.0.0.1"), .type = RTN_UNICAST };
}

/* The baseline of every field case: eth0 with the default route. */
static void baseline(Snapshot *s) {
        *s = (Snapshot) {};
        add_link(s, 2, "eth0", 0);
        add_addr(s, 2, "10.0.0.10", 24, 0);
        add_default_route(s, 2);
}

static void spec_add(Spec *spec, unsigned id, uint8_t last, const char *addr, const char *name) {
        SpecInterface *i;
        Error e = {};
        char mac[MAC_STRLEN];
        size_t idx = spec->n_interfaces;

        snprintf(mac, sizeof(mac), "fa:16:3e:00:00:%02x", last);
        ASSERT_EQ(spec_add_interface(spec, &i, &e), 0);
        ASSERT_EQ(spec_interface_set_uint(i, idx, "id", id, &e), 0);
        ASSERT_EQ(spec_interface_set_string(i, idx, "macAddress", mac, &e), 0);
        ASSERT_EQ(spec_interface_set_string(i, idx, "address", addr, &e), 0);
        ASSERT_EQ(spec_interface_set_string(i, idx, "cidr", "10.1.0.0/24", &e), 0);
        ASSERT_EQ(spec_interface_set_uint(i, idx, "mtu", 1450, &e), 0);
        if (name)
                ASSERT_EQ(spec_interface_set_string(i, idx, "name", name, &e), 0);
}

static size_t count(const Plan *p, ActionType t) {
        size_t n = 0;

        for (size_t i = 0; i < p->n_actions; i++)
                n += p->actions[i].type == t;
        return n;
}

static void build(const Spec *spec, const State *state, const Snapshot *s, Plan *p, Error *e) {
        Config c;

        config_init(&c);
        ASSERT_EQ(plan_build(spec, state, s, &c, NULL, 0, p, e), 0);
}

static void test_fresh_nic_gets_every_change_in_order(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};
        static const ActionType order[] = { ACTION_RENAME,   ACTION_SET_MTU, ACTION_SET_DEVCONF,
                                            ACTION_ADD_ADDRESS, ACTION_SET_UP, ACTION_ADD_RULE,
                                            ACTION_ADD_ROUTE };

        baseline(&s);
        add_link(&s, 3, "ens4", 1);
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.n_actions, ELEMENTSOF(order));
        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                ASSERT_EQ(p.actions[i].type, order[i]);
        ASSERT_STREQ(p.actions[0].rename.to, "multinic0");
        ASSERT_EQ(p.actions[3].addr.flags & IFA_F_NOPREFIXROUTE, IFA_F_NOPREFIXROUTE);
        ASSERT_EQ(p.actions[5].rule.table, 100);
        ASSERT_EQ(p.actions[5].rule.priority, 1000);
        ASSERT_EQ(p.actions[6].route.oif, 3);
        ASSERT_EQ(p.nics[0].outcome, NIC_CONFIGURED);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_configured_nic_plans_nothing(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};
        LinkInfo *l;

        baseline(&s);
        l = add_link(&s, 3, "multinic0", 1);
        l->mtu = 1450;
        l->flags = IFF_UP;
        l->devconf[DEVCONF_ARP_IGNORE] = 1;
        l->devconf[DEVCONF_ARP_ANNOUNCE] = 2;
        l->devconf[DEVCONF_RP_FILTER] = 2;
        add_addr(&s, 3, "10.1.0.11", 24, IFA_F_NOPREFIXROUTE);
        s.rules = calloc(1, sizeof(RuleInfo));
        s.rules[s.n_rules++] = (RuleInfo) { .priority = 1000, .table = 100, .src = ip("10.1.0.11"),
                                            .src_len = 32, .action = FR_ACT_TO_TBL };
        s.routes = realloc(s.routes, (s.n_routes + 1) * sizeof(RouteInfo));
        s.routes[s.n_routes++] = (RouteInfo) { .table = 100, .dst = ip("10.1.0.0"), .dst_len = 24,
                                               .oif = 3, .prefsrc = ip("10.1.0.11"),
                                               .scope = RT_SCOPE_LINK, .type = RTN_UNICAST };
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        /* Managed before, so its address does not make it "in use". */
        state.nics = calloc(1, sizeof(ManagedNic));
        state.n_nics = 1;
        memcpy(state.nics[0].mac, l->mac, 6);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.n_actions, 0);
        ASSERT_EQ(p.nics[0].outcome, NIC_UNCHANGED);
        plan_done(&p);
        spec_done(&spec);
        state_done(&state);
        snapshot_done(&s);
}

static void test_rename_swaps_names_through_temporary_name(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};

        baseline(&s);
        add_link(&s, 3, "multinic1", 1);
        add_link(&s, 4, "multinic0", 2);
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        spec_add(&spec, 1, 2, "10.1.0.12", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_CONFIGURED);
        ASSERT_EQ(count(&p, ACTION_RENAME), 4);
        ASSERT_STREQ(p.actions[0].rename.to, "mntmp3");
        ASSERT_STREQ(p.actions[1].rename.to, "mntmp4");
        ASSERT_STREQ(p.actions[2].rename.from, "mntmp3");
        ASSERT_STREQ(p.actions[2].rename.to, "multinic0");
        ASSERT_STREQ(p.actions[3].rename.to, "multinic1");
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_rename_to_own_altname_drops_the_altname_first(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};
        LinkInfo *l;

        baseline(&s);
        l = add_link(&s, 3, "ens4", 1);
        snprintf(l->altnames[l->n_altnames++], LINK_ALTNAME_LEN, "multinic0");
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_CONFIGURED);
        ASSERT_EQ(p.actions[0].type, ACTION_DEL_ALTNAME);
        ASSERT_EQ(p.actions[1].type, ACTION_RENAME);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_name_held_as_altname_of_another_nic_fails_naming_holder(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};
        LinkInfo *l;

        baseline(&s);
        add_link(&s, 3, "ens4", 1);
        l = add_link(&s, 4, "ens5", 2);
        snprintf(l->altnames[l->n_altnames++], LINK_ALTNAME_LEN, "multinic0");
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_FAILED);
        ASSERT_CONTAINS(p.nics[0].message, "interfaces[0].name: multinic0 is an altname of ens5");
        ASSERT_EQ(p.n_actions, 0);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_guards_refuse_primary_in_use_and_held_address(void) {
        static const struct {
                uint8_t mac_last;
                const char *addr;
                bool allow_up;
                const char *msg;
        } cases[] = {
                { 0, "10.1.0.11", true, "is eth0, the primary NIC" },
                { 1, "10.1.0.11", false, "is ens4, which is in use (has address 10.2.0.5/24)" },
                { 2, "10.0.0.10", false, "interfaces[0].address: 10.0.0.10 is already assigned to eth0" },
        };

        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                Snapshot s;
                Spec spec;
                State state = {};
                Plan p = {};
                Config c;
                Error e = {};

                baseline(&s);
                add_link(&s, 3, "ens4", 1);
                add_addr(&s, 3, "10.2.0.5", 24, 0);
                add_link(&s, 4, "ens5", 2);
                spec_init(&spec);
                spec_add(&spec, 0, cases[k].mac_last, cases[k].addr, NULL);
                spec.options.allow_up = cases[k].allow_up;
                if (strncmp(cases[k].addr, "10.0.0.", 7) == 0)
                        ASSERT_EQ(spec_interface_set_string(&spec.interfaces[0], 0, "cidr",
                                                            "10.0.0.0/24", &e), 0);
                ASSERT_EQ(spec_validate(&spec, &e), 0);
                config_init(&c);
                ASSERT_TRUE(plan_build(&spec, &state, &s, &c, NULL, 0, &p, &e) < 0);
                ASSERT_EQ(e.kind, ERROR_KIND_INTERFACE_IN_USE);
                ASSERT_CONTAINS(e.message, cases[k].msg);
                spec_done(&spec);
                snapshot_done(&s);
        }
}

static void test_missing_mac_is_pending_and_ambiguous_mac_fails(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};
        LinkInfo *vlan;

        baseline(&s);
        add_link(&s, 3, "ens4", 1);
        vlan = add_link(&s, 5, "ens4.10", 1);
        snprintf(vlan->kind, sizeof(vlan->kind), "vlan");
        link_classify(vlan);
        add_link(&s, 6, "ens6", 3);
        add_link(&s, 7, "ens7", 3);
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        spec_add(&spec, 1, 9, "10.1.0.12", NULL);
        spec_add(&spec, 2, 3, "10.1.0.13", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_CONFIGURED);
        ASSERT_EQ(p.nics[0].ifindex, 3); /* the VLAN sharing the MAC is never chosen */
        ASSERT_EQ(p.nics[1].outcome, NIC_PENDING);
        ASSERT_EQ(p.nics[2].outcome, NIC_FAILED);
        ASSERT_CONTAINS(p.nics[2].message, "matches both ens6 and ens7");
        for (size_t i = 0; i < p.n_actions; i++)
                ASSERT_EQ(p.actions[i].nic, 0);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_mtu_above_device_maximum_fails_that_nic_only(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};

        baseline(&s);
        add_link(&s, 3, "ens4", 1);
        add_link(&s, 4, "ens5", 2);
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        spec_add(&spec, 1, 2, "10.1.0.12", NULL);
        spec.interfaces[0].mtu = 70000;
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_FAILED);
        ASSERT_STREQ(p.nics[0].message, "interfaces[0].mtu: 70000 is above the maximum 65535 of ens4");
        ASSERT_EQ(p.nics[1].outcome, NIC_CONFIGURED);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

/* A device's own minimum counts; a device that reports no maximum gets the IPv4 ceiling. */
static void test_mtu_outside_device_limits_or_ipv4_ceiling_fails_that_nic(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};

        baseline(&s);
        add_link(&s, 3, "ens4", 1)->min_mtu = 1280;
        add_link(&s, 4, "ens5", 2)->max_mtu = 0;
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        spec_add(&spec, 1, 2, "10.1.0.12", NULL);
        spec.interfaces[0].mtu = 1000;
        spec.interfaces[1].mtu = 70000;
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_FAILED);
        ASSERT_STREQ(p.nics[0].message,
                     "interfaces[0].mtu: 1000 is below the minimum 1280 of ens4");
        ASSERT_EQ(p.nics[1].outcome, NIC_FAILED);
        ASSERT_STREQ(p.nics[1].message,
                     "interfaces[1].mtu: 70000 is above the maximum 65535 of ens5");
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_release_restores_original_name_and_sysctls(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        ManagedNic m = { .id = 0, .name = "multinic0", .original_name = "ens4",
                         .original_devconf = { 0, 0, 1 }, .has_address = true };
        Plan p;
        Error e = {};
        LinkInfo *l;

        baseline(&s);
        l = add_link(&s, 3, "multinic0", 1);
        l->devconf[DEVCONF_RP_FILTER] = 2;
        add_addr(&s, 3, "10.1.0.11", 24, IFA_F_NOPREFIXROUTE);
        memcpy(m.mac, l->mac, 6);
        m.address = (AddrInfo) { .local = ip("10.1.0.11"), .prefixlen = 24 };
        ASSERT_EQ(state_append(&state, &m), 0);
        spec_init(&spec);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_REMOVED);
        ASSERT_EQ(count(&p, ACTION_REMOVE_ADDRESS), 1);
        ASSERT_EQ(count(&p, ACTION_SET_DEVCONF), 1);
        ASSERT_EQ(p.actions[p.n_actions - 1].type, ACTION_RENAME);
        ASSERT_STREQ(p.actions[p.n_actions - 1].rename.to, "ens4");
        ASSERT_EQ(p.n_stage_a, p.n_actions);
        plan_done(&p);
        state_done(&state);
        snapshot_done(&s);
}

/* A NIC as an earlier Apply left it: multinic0 with 10.1.0.11, its rule and table route. */
static LinkInfo *add_configured(Snapshot *s, State *state) {
        ManagedNic m = { .id = 0, .mtu = 1450, .name = "multinic0", .original_name = "ens4",
                         .original_devconf = { 0, 0, 0 }, .has_address = true, .has_rule = true,
                         .has_route = true };
        LinkInfo *l = add_link(s, 3, "multinic0", 1);

        l->mtu = 1450;
        l->flags = IFF_UP;
        l->devconf[DEVCONF_ARP_IGNORE] = 1;
        l->devconf[DEVCONF_ARP_ANNOUNCE] = 2;
        l->devconf[DEVCONF_RP_FILTER] = 2;
        add_addr(s, 3, "10.1.0.11", 24, IFA_F_NOPREFIXROUTE);
        m.address = (AddrInfo) { .local = ip("10.1.0.11"), .prefixlen = 24,
                                 .flags = IFA_F_NOPREFIXROUTE };
        m.rule = (RuleInfo) { .priority = 1000, .table = 100, .src = ip("10.1.0.11"),
                              .src_len = 32, .action = FR_ACT_TO_TBL };
        m.route = (RouteInfo) { .table = 100, .dst = ip("10.1.0.0"), .dst_len = 24,
                                .prefsrc = ip("10.1.0.11"), .scope = RT_SCOPE_LINK,
                                .type = RTN_UNICAST };
        s->rules = realloc(s->rules, (s->n_rules + 1) * sizeof(RuleInfo));
        s->rules[s->n_rules++] = m.rule;
        s->routes = realloc(s->routes, (s->n_routes + 1) * sizeof(RouteInfo));
        s->routes[s->n_routes] = m.route;
        s->routes[s->n_routes++].oif = 3;
        memcpy(m.mac, l->mac, 6);
        ASSERT_EQ(state_append(state, &m), 0);
        return l;
}

static void test_address_change_removes_routes_before_the_address(void) {
        static const ActionType order[] = { ACTION_REMOVE_RULE,  ACTION_REMOVE_ROUTE,
                                            ACTION_REMOVE_ADDRESS, ACTION_ADD_ADDRESS,
                                            ACTION_ADD_RULE,     ACTION_ADD_ROUTE };
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};

        baseline(&s);
        add_configured(&s, &state);
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.21", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        /* Undone in reverse, the old address comes back before the route that uses it. */
        ASSERT_EQ(p.n_actions, ELEMENTSOF(order));
        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                ASSERT_EQ(p.actions[i].type, order[i]);
        ASSERT_EQ(p.actions[1].route.prefsrc.s_addr, ip("10.1.0.11").s_addr);
        plan_done(&p);
        spec_done(&spec);
        state_done(&state);
        snapshot_done(&s);
}

static void test_stage_two_is_planned_on_the_kernel_after_stage_one(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};

        /* The managed NIC leaves the spec and another NIC takes id 0: the release removes the
         * table-100 route in stage one, so stage two must not plan to remove it again. */
        baseline(&s);
        add_configured(&s, &state);
        add_link(&s, 4, "ens5", 2);
        spec_init(&spec);
        spec_add(&spec, 0, 2, "10.1.0.13", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(count(&p, ACTION_REMOVE_ROUTE), 1);
        ASSERT_TRUE(p.actions[0].type == ACTION_REMOVE_ROUTE && p.actions[0].nic == 0);
        ASSERT_EQ(count(&p, ACTION_ADD_ROUTE), 1);
        ASSERT_EQ(p.nics[0].outcome, NIC_REMOVED);
        ASSERT_EQ(p.nics[1].outcome, NIC_CONFIGURED);
        plan_done(&p);
        spec_done(&spec);
        state_done(&state);
        snapshot_done(&s);
}

static void add_route(Snapshot *s, uint32_t table, const char *dst, uint8_t len, int oif,
                      const char *src, uint32_t metric) {
        s->routes = realloc(s->routes, (s->n_routes + 1) * sizeof(RouteInfo));
        s->routes[s->n_routes++] = (RouteInfo) { .table = table, .dst = ip(dst), .dst_len = len,
                                                 .oif = oif, .prefsrc = ip(src),
                                                 .scope = RT_SCOPE_LINK, .protocol = RTPROT_BOOT,
                                                 .type = RTN_UNICAST, .metric = metric };
}

static void test_release_removes_each_route_using_the_address_once(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};
        size_t m100 = 0, m200 = 0, other = 0;

        /* Same destination twice with other metrics, and one more: each removed exactly once. */
        baseline(&s);
        add_configured(&s, &state);
        add_route(&s, RT_TABLE_MAIN, "10.50.0.0", 16, 3, "10.1.0.11", 100);
        add_route(&s, RT_TABLE_MAIN, "10.60.0.0", 16, 3, "10.1.0.11", 0);
        add_route(&s, RT_TABLE_MAIN, "10.50.0.0", 16, 3, "10.1.0.11", 200);
        spec_init(&spec);
        build(&spec, &state, &s, &p, &e);

        for (size_t i = 0; i < p.n_actions; i++) {
                const RouteInfo *r = &p.actions[i].route;

                if (p.actions[i].type != ACTION_REMOVE_ROUTE || r->table != RT_TABLE_MAIN)
                        continue;
                m100 += r->dst.s_addr == ip("10.50.0.0").s_addr && r->metric == 100;
                m200 += r->dst.s_addr == ip("10.50.0.0").s_addr && r->metric == 200;
                other += r->dst.s_addr == ip("10.60.0.0").s_addr;
        }
        ASSERT_EQ(m100, 1);
        ASSERT_EQ(m200, 1);
        ASSERT_EQ(other, 1);
        ASSERT_EQ(count(&p, ACTION_REMOVE_ROUTE), 4); /* the three and the table route */
        plan_done(&p);
        state_done(&state);
        snapshot_done(&s);
}

static void test_name_freed_by_a_nic_that_fails_is_not_counted_on(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};

        /* NIC 1 (ens5) wants eth9, which a foreign link holds: it fails and keeps ens5, so NIC 0,
         * which wants ens5, must fail too instead of planning a rename that cannot work. */
        baseline(&s);
        add_link(&s, 3, "ens4", 1);
        add_link(&s, 4, "ens5", 2);
        add_link(&s, 9, "eth9", 9);
        spec_init(&spec);
        spec_add(&spec, 1, 2, "10.1.0.12", "eth9");
        spec_add(&spec, 0, 1, "10.1.0.11", "ens5");
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        ASSERT_EQ(p.nics[0].outcome, NIC_FAILED);
        ASSERT_EQ(p.nics[1].outcome, NIC_FAILED);
        ASSERT_CONTAINS(p.nics[1].message, "interfaces[1].name: ens5 is taken");
        ASSERT_EQ(count(&p, ACTION_RENAME), 0);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_id_on_a_reserved_table_is_refused(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p = {};
        Config c;
        Error e = {};

        baseline(&s);
        add_link(&s, 3, "ens4", 1);
        spec_init(&spec);
        spec_add(&spec, 154, 1, "10.1.0.11", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        config_init(&c);
        ASSERT_TRUE(plan_build(&spec, &state, &s, &c, NULL, 0, &p, &e) < 0);
        ASSERT_EQ(e.kind, ERROR_KIND_INVALID_SPEC);
        ASSERT_CONTAINS(e.message, "interfaces[0].id: 154 would use routing table 254");
        e = (Error) {};
        spec.options.policy_routing = false; /* no table, nothing reserved */
        ASSERT_EQ(plan_build(&spec, &state, &s, &c, NULL, 0, &p, &e), 0);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_stage_two_sees_routes_on_other_links_go_with_the_address(void) {
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};

        /* A route on eth0 takes the managed address as its source; once the address moves,
         * the kernel drops it, so nothing may plan to remove it later. */
        baseline(&s);
        add_configured(&s, &state);
        add_route(&s, RT_TABLE_MAIN, "10.70.0.0", 16, 2, "10.1.0.11", 0);
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.21", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        build(&spec, &state, &s, &p, &e);

        for (size_t i = 0; i < p.n_actions; i++)
                ASSERT_TRUE(p.actions[i].type != ACTION_REMOVE_ROUTE ||
                            p.actions[i].route.oif != 2);
        plan_done(&p);
        spec_done(&spec);
        state_done(&state);
        snapshot_done(&s);
}

static void test_held_nic_gets_nothing_and_its_swap_partner_fails_too(void) {
        PlanHold hold = { .mac = { 0xfa, 0x16, 0x3e, 0, 0, 2 }, .message = "left alone" };
        Snapshot s;
        Spec spec;
        State state = {};
        Plan p;
        Error e = {};
        Config c;

        baseline(&s);
        add_link(&s, 3, "multinic1", 1);
        add_link(&s, 4, "multinic0", 2);
        spec_init(&spec);
        spec_add(&spec, 0, 1, "10.1.0.11", NULL);
        spec_add(&spec, 1, 2, "10.1.0.12", NULL);
        ASSERT_EQ(spec_validate(&spec, &e), 0);
        config_init(&c);
        ASSERT_EQ(plan_build(&spec, &state, &s, &c, &hold, 1, &p, &e), 0);

        /* multinic0 stays where it is, so the NIC that wanted it cannot have it. */
        ASSERT_EQ(p.nics[1].outcome, NIC_FAILED);
        ASSERT_STREQ(p.nics[1].message, "left alone");
        ASSERT_EQ(p.nics[0].outcome, NIC_FAILED);
        ASSERT_CONTAINS(p.nics[0].message, "multinic0");
        ASSERT_EQ(p.n_actions, 0);
        plan_done(&p);
        spec_done(&spec);
        snapshot_done(&s);
}

static void test_drift_names_field_wanted_and_found(void) {
        Action mtu = { .type = ACTION_SET_MTU, .mtu = { .from = 1400, .to = 1450 } };
        Action conf = { .type = ACTION_SET_DEVCONF,
                        .devconf = { .from = { 0, 2, 1 }, .to = { 1, 2, 2 } } };
        Action rule = { .type = ACTION_ADD_RULE,
                        .rule = { .priority = 1000, .table = 100,
                                  .src.s_addr = htonl(0x0a01000b), .src_len = 32 } };
        Action gone = { .type = ACTION_REMOVE_ADDRESS,
                        .addr = { .local.s_addr = htonl(0x0a010063), .prefixlen = 24 } };
        Drift d[DRIFT_MAX];

        ASSERT_EQ(action_drift(&mtu, d, DRIFT_MAX), 1);
        ASSERT_STREQ(d[0].field, "mtu");
        ASSERT_STREQ(d[0].wanted, "1450");
        ASSERT_STREQ(d[0].found, "1400");

        /* One record per key that differs; arp_announce is as wanted. */
        ASSERT_EQ(action_drift(&conf, d, DRIFT_MAX), 2);
        ASSERT_STREQ(d[0].field, "arp_ignore");
        ASSERT_STREQ(d[1].field, "rp_filter");
        ASSERT_STREQ(d[1].wanted, "2");
        ASSERT_STREQ(d[1].found, "1");
        ASSERT_EQ(action_drift(&conf, d, 1), 1);

        ASSERT_EQ(action_drift(&rule, d, DRIFT_MAX), 1);
        ASSERT_STREQ(d[0].field, "rule");
        ASSERT_STREQ(d[0].wanted, "from 10.1.0.11 lookup 100 priority 1000");
        ASSERT_STREQ(d[0].found, "absent");

        ASSERT_EQ(action_drift(&gone, d, DRIFT_MAX), 1);
        ASSERT_STREQ(d[0].wanted, "absent");
        ASSERT_STREQ(d[0].found, "10.1.0.99/24");
}

int main(void) {
        RUN_TEST(test_fresh_nic_gets_every_change_in_order);
        RUN_TEST(test_configured_nic_plans_nothing);
        RUN_TEST(test_rename_swaps_names_through_temporary_name);
        RUN_TEST(test_rename_to_own_altname_drops_the_altname_first);
        RUN_TEST(test_name_held_as_altname_of_another_nic_fails_naming_holder);
        RUN_TEST(test_guards_refuse_primary_in_use_and_held_address);
        RUN_TEST(test_missing_mac_is_pending_and_ambiguous_mac_fails);
        RUN_TEST(test_mtu_above_device_maximum_fails_that_nic_only);
        RUN_TEST(test_mtu_outside_device_limits_or_ipv4_ceiling_fails_that_nic);
        RUN_TEST(test_release_restores_original_name_and_sysctls);
        RUN_TEST(test_address_change_removes_routes_before_the_address);
        RUN_TEST(test_stage_two_is_planned_on_the_kernel_after_stage_one);
        RUN_TEST(test_release_removes_each_route_using_the_address_once);
        RUN_TEST(test_name_freed_by_a_nic_that_fails_is_not_counted_on);
        RUN_TEST(test_id_on_a_reserved_table_is_refused);
        RUN_TEST(test_stage_two_sees_routes_on_other_links_go_with_the_address);
        RUN_TEST(test_held_nic_gets_nothing_and_its_swap_partner_fails_too);
        RUN_TEST(test_drift_names_field_wanted_and_found);
        return 0;
}
