/* Planning of Apply and Remove: pure code over a snapshot, so that Plan and Apply agree. */
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>

#include "plan.h"
#include "util.h"

void config_init(Config *c) {
        *c = (Config) {
                .table_base = 100,
                .priority_base = 1000,
                .policy_routing = true,
                .sysctls = true,
                .devconf = { [DEVCONF_ARP_IGNORE] = 1,
                             [DEVCONF_ARP_ANNOUNCE] = 2,
                             [DEVCONF_RP_FILTER] = 2 },
        };
}

void plan_done(Plan *p) {
        free(p->nics);
        free(p->actions);
        *p = (Plan) {};
}

static int plan_add_nic(Plan *p, NicPlan **ret) {
        NicPlan *n = realloc(p->nics, (p->n_nics + 1) * sizeof(*n));

        if (!n)
                return -ENOMEM;
        p->nics = n;
        n[p->n_nics] = (NicPlan) {};
        *ret = &n[p->n_nics++];
        return 0;
}

/* Never NULL: when memory runs out the plan remembers -ENOMEM and hands out a scratch action,
 * so that callers need no check of their own and the plan is refused as a whole. */
static Action *plan_add_action(Plan *p, ActionType type, size_t nic, int ifindex) {
        Action *a = realloc(p->actions, (p->n_actions + 1) * sizeof(*a));

        if (!a) {
                p->error = -ENOMEM;
                a = &p->scratch;
        } else {
                p->actions = a;
                a = &a[p->n_actions++];
        }
        *a = (Action) { .type = type, .nic = nic, .ifindex = ifindex };
        return a;
}

static void nic_fail(NicPlan *n, const char *fmt, ...) _printf_(2, 3);
static void nic_fail(NicPlan *n, const char *fmt, ...) {
        va_list ap;

        n->outcome = NIC_FAILED;
        va_start(ap, fmt);
        vsnprintf(n->message, sizeof(n->message), fmt, ap);
        va_end(ap);
}

/* The one physical-like link with this MAC; -ENOENT if none, -ENOTUNIQ if several. */
static int match_mac(const Snapshot *s, const uint8_t mac[6], const LinkInfo **ret,
                     const LinkInfo **ret_other) {
        const LinkInfo *found = NULL;

        for (size_t i = 0; i < s->n_links; i++) {
                const LinkInfo *l = &s->links[i];

                if (!link_is_physical_like(l) || memcmp(l->mac, mac, 6) != 0)
                        continue;
                if (found) {
                        if (ret_other)
                                *ret_other = l;
                        *ret = found;
                        return -ENOTUNIQ;
                }
                found = l;
        }
        *ret = found;
        return found ? 0 : -ENOENT;
}

static const AddrInfo *find_addr(const Snapshot *s, int ifindex, struct in_addr local) {
        for (size_t i = 0; i < s->n_addrs; i++)
                if (s->addrs[i].local.s_addr == local.s_addr &&
                    (ifindex == 0 || s->addrs[i].ifindex == ifindex))
                        return &s->addrs[i];
        return NULL;
}

static bool rule_present(const Snapshot *s, const RuleInfo *r) {
        for (size_t i = 0; i < s->n_rules; i++) {
                const RuleInfo *o = &s->rules[i];

                if (o->priority == r->priority && o->table == r->table &&
                    o->src.s_addr == r->src.s_addr && o->src_len == r->src_len &&
                    o->action == FR_ACT_TO_TBL && !o->other_selectors)
                        return true;
        }
        return false;
}

static bool rule_equal(const RuleInfo *a, const RuleInfo *b) {
        return a->priority == b->priority && a->table == b->table &&
               a->src.s_addr == b->src.s_addr && a->src_len == b->src_len;
}

static const RouteInfo *find_route(const Snapshot *s, uint32_t table, struct in_addr dst,
                                   uint8_t dst_len) {
        for (size_t i = 0; i < s->n_routes; i++) {
                const RouteInfo *o = &s->routes[i];

                if (o->table == table && o->dst.s_addr == dst.s_addr && o->dst_len == dst_len &&
                    o->type == RTN_UNICAST)
                        return o;
        }
        return NULL;
}

static bool route_matches(const RouteInfo *o, const RouteInfo *want) {
        return o->oif == want->oif && o->prefsrc.s_addr == want->prefsrc.s_addr &&
               o->scope == RT_SCOPE_LINK && o->gateway.s_addr == 0;
}

static bool link_in_use(const Snapshot *s, const LinkInfo *l, char *why, size_t n) {
        char a[INET_ADDRSTRLEN];

        for (size_t i = 0; i < s->n_addrs; i++)
                if (s->addrs[i].ifindex == l->ifindex) {
                        inet_ntop(AF_INET, &s->addrs[i].local, a, sizeof(a));
                        snprintf(why, n, "has address %s/%u", a, s->addrs[i].prefixlen);
                        return true;
                }
        for (size_t i = 0; i < s->n_routes; i++)
                if (s->routes[i].oif == l->ifindex && s->routes[i].table != RT_TABLE_LOCAL) {
                        snprintf(why, n, "has routes in table %u", s->routes[i].table);
                        return true;
                }
        if (l->master > 0) {
                const LinkInfo *m = snapshot_link_by_index(s, l->master);
                snprintf(why, n, "is enslaved to %s", m ? m->name : "another device");
                return true;
        }
        return false;
}

static int guard_nic(const Spec *spec, size_t i, const LinkInfo *l, const State *state,
                     const Snapshot *s, Error *e) {
        const SpecInterface *si = &spec->interfaces[i];
        const AddrInfo *held;
        char mac[MAC_STRLEN], why[128], a[INET_ADDRSTRLEN];

        mac_format(si->mac, mac);
        if (l && snapshot_is_primary(s, l->ifindex))
                return error_set(e, ERROR_KIND_INTERFACE_IN_USE, -EBUSY,
                                 "interfaces[%zu].macAddress: %s is %s, the primary NIC (it holds "
                                 "the default route); it is never touched",
                                 i, mac, l->name);

        held = find_addr(s, 0, si->address);
        if (held && (!l || held->ifindex != l->ifindex)) {
                const LinkInfo *h = snapshot_link_by_index(s, held->ifindex);

                if (!h || !h->has_mac || !state_find(state, h->mac)) {
                        inet_ntop(AF_INET, &si->address, a, sizeof(a));
                        return error_set(e, ERROR_KIND_INTERFACE_IN_USE, -EADDRINUSE,
                                         "interfaces[%zu].address: %s is already assigned to %s",
                                         i, a, h ? h->name : "another device");
                }
        }

        if (l && !spec->options.allow_up && !state_find(state, si->mac) &&
            link_in_use(s, l, why, sizeof(why)))
                return error_set(e, ERROR_KIND_INTERFACE_IN_USE, -EBUSY,
                                 "interfaces[%zu].macAddress: %s is %s, which is in use (%s); "
                                 "set allowUp to take it over",
                                 i, mac, l->name, why);
        return 0;
}

static void release_rename(Plan *p, NicPlan *n, const ManagedNic *m, const LinkInfo *l,
                           const Snapshot *s) {
        size_t idx = (size_t) (n - p->nics);
        const LinkInfo *holder;
        Action *a;

        snprintf(n->name, sizeof(n->name), "%s", l->name);
        if (!m->original_name[0] || streq(l->name, m->original_name) || !streq(l->name, m->name))
                return;

        holder = snapshot_link_by_name(s, m->original_name);
        if (holder && holder != l) {
                snprintf(n->message, sizeof(n->message),
                         "released; keeps the name %s since %s is taken by %s", l->name,
                         m->original_name, holder->name);
                return;
        }
        if (holder == l) {
                a = plan_add_action(p, ACTION_DEL_ALTNAME, idx, l->ifindex);
                snprintf(a->altname, sizeof(a->altname), "%s", m->original_name);
        }
        a = plan_add_action(p, ACTION_RENAME, idx, l->ifindex);
        snprintf(a->rename.from, IFNAMSIZ, "%s", l->name);
        snprintf(a->rename.to, IFNAMSIZ, "%s", m->original_name);
        snprintf(n->name, sizeof(n->name), "%s", m->original_name);
}

static void release_runtime(Plan *p, size_t idx, const ManagedNic *m, const LinkInfo *l,
                            const Snapshot *s) {
        const RouteInfo *rt;
        const AddrInfo *ad;
        Action *a;
        bool devconf = false;

        rt = m->has_route ? find_route(s, m->route.table, m->route.dst, m->route.dst_len) : NULL;
        if (rt && rt->oif == l->ifindex)
                plan_add_action(p, ACTION_REMOVE_ROUTE, idx, l->ifindex)->route = *rt;
        if (m->has_rule && rule_present(s, &m->rule))
                plan_add_action(p, ACTION_REMOVE_RULE, idx, l->ifindex)->rule = m->rule;
        ad = m->has_address ? find_addr(s, l->ifindex, m->address.local) : NULL;
        if (ad)
                plan_add_action(p, ACTION_REMOVE_ADDRESS, idx, l->ifindex)->addr = *ad;

        for (size_t i = 0; i < _DEVCONF_MAX; i++)
                devconf |= m->original_devconf[i] >= 0 && m->original_devconf[i] != l->devconf[i];
        if (!devconf)
                return;
        a = plan_add_action(p, ACTION_SET_DEVCONF, idx, l->ifindex);
        for (size_t i = 0; i < _DEVCONF_MAX; i++) {
                a->devconf.from[i] = l->devconf[i];
                a->devconf.to[i] = m->original_devconf[i];
        }
}

static int plan_release(Plan *p, const ManagedNic *m, const Snapshot *s) {
        const LinkInfo *l;
        NicPlan *n;
        int r;

        r = plan_add_nic(p, &n);
        if (r < 0)
                return r;
        memcpy(n->mac, m->mac, 6);
        n->id = m->id;
        n->outcome = NIC_REMOVED;
        n->record = *m;
        snprintf(n->name, sizeof(n->name), "%s", m->name);
        snprintf(n->message, sizeof(n->message), "released");

        if (match_mac(s, m->mac, &l, NULL) < 0) {
                snprintf(n->message, sizeof(n->message), "released (not present)");
                return 0;
        }
        n->ifindex = l->ifindex;
        release_runtime(p, (size_t) (n - p->nics), m, l, s);
        release_rename(p, n, m, l, s);
        return 0;
}

/* Whether the link holding a wanted name will give it up before our rename runs. */
static bool name_moves_away(const Plan *p, const LinkInfo *holder, const char *name) {
        if (!streq(holder->name, name))
                return false; /* an altname stays with its link */
        for (size_t i = 0; i < p->n_nics; i++) {
                const NicPlan *o = &p->nics[i];

                if (o->ifindex == holder->ifindex && o->outcome != NIC_FAILED &&
                    o->outcome != NIC_PENDING && !streq(o->name, name))
                        return true;
        }
        return false;
}

static void check_name(Plan *p, NicPlan *n, size_t spec_idx, const LinkInfo *l,
                       const Snapshot *s) {
        const LinkInfo *holder = snapshot_link_by_name(s, n->name);

        if (!holder || holder == l || name_moves_away(p, holder, n->name))
                return;
        if (streq(holder->name, n->name))
                nic_fail(n, "interfaces[%zu].name: %s is taken by another device (ifindex %d)",
                         spec_idx, n->name, holder->ifindex);
        else
                nic_fail(n, "interfaces[%zu].name: %s is an altname of %s", spec_idx, n->name,
                         holder->name);
}

static void check_mtu(NicPlan *n, size_t spec_idx, const LinkInfo *l) {
        uint32_t mtu = n->spec->mtu;

        if (mtu == 0)
                return;
        if (l->max_mtu > 0 && mtu > l->max_mtu)
                nic_fail(n, "interfaces[%zu].mtu: %u is above the maximum %u of %s", spec_idx,
                         mtu, l->max_mtu, l->name);
        else if (l->min_mtu > 0 && mtu < l->min_mtu)
                nic_fail(n, "interfaces[%zu].mtu: %u is below the minimum %u of %s", spec_idx,
                         mtu, l->min_mtu, l->name);
}

static void record_init(NicPlan *n, const SpecInterface *si, const ManagedNic *old,
                        const LinkInfo *l, const Config *config, bool policy) {
        ManagedNic *m = &n->record;

        memcpy(m->mac, si->mac, 6);
        m->id = si->id;
        snprintf(m->name, sizeof(m->name), "%s", si->name);
        snprintf(m->original_name, sizeof(m->original_name), "%s",
                 old ? old->original_name : l->name);
        for (size_t i = 0; i < _DEVCONF_MAX; i++)
                m->original_devconf[i] = old ? old->original_devconf[i]
                                             : (config->sysctls ? l->devconf[i] : -1);
        m->has_address = true;
        m->address = (AddrInfo) {
                .local = si->address,
                .prefixlen = si->prefixlen,
                .flags = policy ? IFA_F_NOPREFIXROUTE : 0,
        };
        m->has_rule = m->has_route = policy;
        m->rule = (RuleInfo) {
                .priority = config->priority_base + si->id,
                .table = config->table_base + si->id,
                .src = si->address,
                .src_len = 32,
                .action = FR_ACT_TO_TBL,
        };
        m->route = (RouteInfo) {
                .table = config->table_base + si->id,
                .dst = si->network,
                .dst_len = si->prefixlen,
                .prefsrc = si->address,
                .scope = RT_SCOPE_LINK,
                .protocol = RTPROT_STATIC,
                .type = RTN_UNICAST,
        };
}

static void configure_stale(Plan *p, size_t idx, const ManagedNic *old, const ManagedNic *want,
                            const LinkInfo *l, const Snapshot *s) {
        const RouteInfo *rt;
        const AddrInfo *ad;

        if (old->has_rule && (!want->has_rule || !rule_equal(&old->rule, &want->rule)) &&
            rule_present(s, &old->rule))
                plan_add_action(p, ACTION_REMOVE_RULE, idx, l->ifindex)->rule = old->rule;
        rt = old->has_route ? find_route(s, old->route.table, old->route.dst, old->route.dst_len)
                            : NULL;
        if (rt && rt->oif == l->ifindex &&
            (!want->has_route || rt->table != want->route.table ||
             rt->dst.s_addr != want->route.dst.s_addr || rt->dst_len != want->route.dst_len))
                plan_add_action(p, ACTION_REMOVE_ROUTE, idx, l->ifindex)->route = *rt;
        ad = old->has_address && old->address.local.s_addr != want->address.local.s_addr
                     ? find_addr(s, l->ifindex, old->address.local)
                     : NULL;
        if (ad)
                plan_add_action(p, ACTION_REMOVE_ADDRESS, idx, l->ifindex)->addr = *ad;
}

/* Returns whether the address is (re)added, which takes its routes away with it. */
static bool configure_address(Plan *p, size_t idx, const ManagedNic *want, const LinkInfo *l,
                              const Snapshot *s) {
        const AddrInfo *cur = find_addr(s, l->ifindex, want->address.local);
        uint32_t mask = IFA_F_NOPREFIXROUTE;
        Action *a;

        if (cur && cur->prefixlen == want->address.prefixlen &&
            (cur->flags & mask) == (want->address.flags & mask))
                return false;
        if (cur)
                plan_add_action(p, ACTION_REMOVE_ADDRESS, idx, l->ifindex)->addr = *cur;
        a = plan_add_action(p, ACTION_ADD_ADDRESS, idx, l->ifindex);
        a->addr = want->address;
        a->addr.ifindex = l->ifindex;
        return true;
}

static void configure_link(Plan *p, size_t idx, const SpecInterface *si, const LinkInfo *l,
                           const Config *config) {
        bool devconf = false;
        Action *a;

        if (si->mtu > 0 && l->mtu != si->mtu) {
                a = plan_add_action(p, ACTION_SET_MTU, idx, l->ifindex);
                a->mtu.from = l->mtu;
                a->mtu.to = si->mtu;
        }
        for (size_t i = 0; config->sysctls && i < _DEVCONF_MAX; i++)
                devconf |= l->devconf[i] != config->devconf[i];
        if (!devconf)
                return;
        a = plan_add_action(p, ACTION_SET_DEVCONF, idx, l->ifindex);
        for (size_t i = 0; i < _DEVCONF_MAX; i++) {
                a->devconf.from[i] = l->devconf[i];
                a->devconf.to[i] = config->devconf[i];
        }
}

static void configure_routing(Plan *p, size_t idx, const ManagedNic *want, const LinkInfo *l,
                              const Snapshot *s, bool address_readded) {
        RouteInfo route = want->route;
        const RouteInfo *cur;

        if (!(l->flags & IFF_UP))
                (void) plan_add_action(p, ACTION_SET_UP, idx, l->ifindex);
        if (!want->has_rule)
                return;
        if (!rule_present(s, &want->rule))
                plan_add_action(p, ACTION_ADD_RULE, idx, l->ifindex)->rule = want->rule;

        route.oif = l->ifindex;
        cur = find_route(s, route.table, route.dst, route.dst_len);
        if (cur && route_matches(cur, &route)) {
                /* Removing the address takes the route that uses it as source away too. */
                if (!address_readded)
                        return;
        } else if (cur)
                plan_add_action(p, ACTION_REMOVE_ROUTE, idx, l->ifindex)->route = *cur;
        plan_add_action(p, ACTION_ADD_ROUTE, idx, l->ifindex)->route = route;
}

static void plan_configure_nic(Plan *p, size_t idx, const State *state, const Snapshot *s,
                               const Config *config) {
        NicPlan *n = &p->nics[idx];
        const ManagedNic *old = state_find(state, n->mac);
        const LinkInfo *l = snapshot_link_by_index(s, n->ifindex);
        bool readded;

        if (!l) {
                nic_fail(n, "%s disappeared during Apply", n->name);
                return;
        }
        if (old)
                configure_stale(p, idx, old, &n->record, l, s);
        configure_link(p, idx, n->spec, l, config);
        readded = configure_address(p, idx, &n->record, l, s);
        configure_routing(p, idx, &n->record, l, s, readded);
}

static void plan_pending_nic(Plan *p, size_t idx, const State *state, const Snapshot *s) {
        NicPlan *n = &p->nics[idx];
        const ManagedNic *old = state_find(state, n->mac);

        /* A detached NIC's routes went with it; its source rule would linger. */
        if (old && old->has_rule && rule_present(s, &old->rule))
                plan_add_action(p, ACTION_REMOVE_RULE, idx, 0)->rule = old->rule;
}

static bool nic_active(const NicPlan *n) {
        return n->spec && (n->outcome == NIC_UNCHANGED || n->outcome == NIC_CONFIGURED);
}

static bool name_wanted_by_other(const Plan *p, const NicPlan *self, const char *name) {
        for (size_t i = 0; i < p->n_nics; i++)
                if (&p->nics[i] != self && nic_active(&p->nics[i]) && streq(p->nics[i].name, name))
                        return true;
        return false;
}

/* Two passes, so that NICs can swap names: first every NIC whose name another one wants steps
 * aside to a temporary name, then every NIC takes its wanted name. */
static void plan_renames(Plan *p, const Snapshot *s) {
        for (size_t i = 0; i < p->n_nics; i++) {
                NicPlan *n = &p->nics[i];
                const LinkInfo *l = nic_active(n) ? snapshot_link_by_index(s, n->ifindex) : NULL;
                Action *a;

                if (!l || streq(l->name, n->name) || !name_wanted_by_other(p, n, l->name))
                        continue;
                a = plan_add_action(p, ACTION_RENAME, i, l->ifindex);
                snprintf(a->rename.from, IFNAMSIZ, "%s", l->name);
                snprintf(a->rename.to, IFNAMSIZ, "mntmp%d", l->ifindex);
        }
        for (size_t i = 0; i < p->n_nics; i++) {
                NicPlan *n = &p->nics[i];
                const LinkInfo *l = nic_active(n) ? snapshot_link_by_index(s, n->ifindex) : NULL;
                Action *a;

                if (!l || streq(l->name, n->name))
                        continue;
                if (link_has_altname(l, n->name)) {
                        a = plan_add_action(p, ACTION_DEL_ALTNAME, i, l->ifindex);
                        snprintf(a->altname, sizeof(a->altname), "%s", n->name);
                }
                a = plan_add_action(p, ACTION_RENAME, i, l->ifindex);
                if (name_wanted_by_other(p, n, l->name))
                        snprintf(a->rename.from, IFNAMSIZ, "mntmp%d", l->ifindex);
                else
                        snprintf(a->rename.from, IFNAMSIZ, "%s", l->name);
                snprintf(a->rename.to, IFNAMSIZ, "%s", n->name);
        }
}

static int plan_spec_nic(Plan *p, const Spec *spec, size_t i, const State *state,
                         const Snapshot *s, const Config *config) {
        const SpecInterface *si = &spec->interfaces[i];
        const ManagedNic *old = state_find(state, si->mac);
        const LinkInfo *l, *other = NULL;
        char mac[MAC_STRLEN];
        NicPlan *n;
        int r;

        r = plan_add_nic(p, &n);
        if (r < 0)
                return r;
        memcpy(n->mac, si->mac, 6);
        n->id = si->id;
        n->spec = si;
        snprintf(n->name, sizeof(n->name), "%s", si->name);

        mac_format(si->mac, mac);
        r = match_mac(s, si->mac, &l, &other);
        if (r == -ENOENT) {
                n->outcome = NIC_PENDING;
                snprintf(n->message, sizeof(n->message), "waiting for a NIC with MAC %s", mac);
                return 0;
        }
        n->ifindex = l->ifindex;
        if (r == -ENOTUNIQ) {
                nic_fail(n, "interfaces[%zu].macAddress: %s matches both %s and %s; refusing to guess",
                         i, mac, l->name, other->name);
                return 0;
        }
        check_mtu(n, i, l);
        if (n->outcome == NIC_FAILED)
                return 0;
        record_init(n, si, old, l, config, config->policy_routing && spec->options.policy_routing);
        return 0;
}

static void plan_finalize(Plan *p) {
        for (size_t i = 0; i < p->n_nics; i++) {
                NicPlan *n = &p->nics[i];

                if (!nic_active(n))
                        continue;
                n->outcome = NIC_UNCHANGED;
                for (size_t k = 0; k < p->n_actions; k++)
                        if (p->actions[k].nic == i)
                                n->outcome = NIC_CONFIGURED;
        }
}

static void plan_configure_all(Plan *p, const State *state, const Snapshot *s,
                               const Config *config) {
        for (size_t i = 0; i < p->n_nics; i++) {
                if (nic_active(&p->nics[i]))
                        plan_configure_nic(p, i, state, s, config);
                else if (p->nics[i].spec && p->nics[i].outcome == NIC_PENDING)
                        plan_pending_nic(p, i, state, s);
        }
        plan_finalize(p);
}

static bool spec_has_mac(const Spec *spec, const uint8_t mac[6]) {
        for (size_t i = 0; i < spec->n_interfaces; i++)
                if (memcmp(spec->interfaces[i].mac, mac, 6) == 0)
                        return true;
        return false;
}

static int plan_guards(const Spec *spec, const State *state, const Snapshot *s, Error *e) {
        for (size_t i = 0; i < spec->n_interfaces; i++) {
                const LinkInfo *l = NULL;
                int r;

                if (match_mac(s, spec->interfaces[i].mac, &l, NULL) == -ENOTUNIQ)
                        l = NULL;
                r = guard_nic(spec, i, l, state, s, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What the kernel will look like once an action of the first stage ran, so that Plan can list
 * the second stage exactly as Apply will compute it from a fresh snapshot. */
static void simulate_remove(void *array, size_t *n, size_t size, size_t i) {
        char *base = array;

        memmove(base + i * size, base + (i + 1) * size, (*n - i - 1) * size);
        (*n)--;
}

static void simulate_link(Snapshot *s, const Action *a) {
        LinkInfo *l = (LinkInfo *) snapshot_link_by_index(s, a->ifindex);

        if (!l)
                return;
        if (a->type == ACTION_RENAME)
                snprintf(l->name, sizeof(l->name), "%s", a->rename.to);
        else if (a->type == ACTION_SET_DEVCONF) {
                for (size_t i = 0; i < _DEVCONF_MAX; i++)
                        if (a->devconf.to[i] >= 0)
                                l->devconf[i] = a->devconf.to[i];
        } else if (a->type == ACTION_DEL_ALTNAME)
                for (size_t i = 0; i < l->n_altnames; i++)
                        if (streq(l->altnames[i], a->altname)) {
                                simulate_remove(l->altnames, &l->n_altnames, LINK_ALTNAME_LEN, i);
                                break;
                        }
}

static void simulate(Snapshot *s, const Action *a) {
        for (size_t i = s->n_routes; i-- > 0;) {
                const RouteInfo *o = &s->routes[i];
                bool gone = a->type == ACTION_REMOVE_ROUTE && o->table == a->route.table &&
                            o->dst.s_addr == a->route.dst.s_addr &&
                            o->dst_len == a->route.dst_len && o->oif == a->route.oif;

                /* The kernel drops the routes whose source was a removed address. */
                gone |= a->type == ACTION_REMOVE_ADDRESS && o->oif == a->ifindex &&
                        o->prefsrc.s_addr == a->addr.local.s_addr;
                if (gone)
                        simulate_remove(s->routes, &s->n_routes, sizeof(RouteInfo), i);
        }
        for (size_t i = s->n_rules; a->type == ACTION_REMOVE_RULE && i-- > 0;)
                if (rule_equal(&s->rules[i], &a->rule))
                        simulate_remove(s->rules, &s->n_rules, sizeof(RuleInfo), i);
        for (size_t i = s->n_addrs; a->type == ACTION_REMOVE_ADDRESS && i-- > 0;)
                if (s->addrs[i].ifindex == a->ifindex &&
                    s->addrs[i].local.s_addr == a->addr.local.s_addr)
                        simulate_remove(s->addrs, &s->n_addrs, sizeof(AddrInfo), i);
        simulate_link(s, a);
}

int plan_build(const Spec *spec, const State *state, const Snapshot *snap, const Config *config,
               Plan *ret, Error *e) {
        Snapshot after = {};
        Plan p = {};
        int r;

        r = plan_guards(spec, state, snap, e);
        if (r < 0)
                return r;

        for (size_t i = 0; i < state->n_nics; i++)
                if (!spec_has_mac(spec, state->nics[i].mac)) {
                        r = plan_release(&p, &state->nics[i], snap);
                        if (r < 0)
                                goto fail;
                }
        for (size_t i = 0; i < spec->n_interfaces; i++) {
                r = plan_spec_nic(&p, spec, i, state, snap, config);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < p.n_nics; i++)
                if (nic_active(&p.nics[i]))
                        check_name(&p, &p.nics[i], (size_t) (p.nics[i].spec - spec->interfaces),
                                   snapshot_link_by_index(snap, p.nics[i].ifindex), snap);

        plan_renames(&p, snap);
        p.n_stage_a = p.n_actions;

        r = snapshot_copy(snap, &after);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < p.n_stage_a; i++)
                simulate(&after, &p.actions[i]);
        plan_configure_all(&p, state, &after, config);
        snapshot_done(&after);
        r = p.error;
        if (r < 0)
                goto fail;
        *ret = p;
        return 0;
fail:
        plan_done(&p);
        return r;
}

int plan_rebuild_configure(Plan *p, const Spec *spec, const State *state, const Snapshot *snap,
                           const Config *config) {
        p->n_actions = p->n_stage_a;
        plan_configure_all(p, state, snap, config);
        return p->error;
}

int plan_build_remove(const State *state, const Snapshot *snap, Plan *ret) {
        Plan p = {};
        int r;

        for (size_t i = 0; i < state->n_nics; i++) {
                r = plan_release(&p, &state->nics[i], snap);
                if (r < 0) {
                        plan_done(&p);
                        return r;
                }
        }
        p.n_stage_a = p.n_actions;
        if (p.error < 0) {
                plan_done(&p);
                return p.error;
        }
        *ret = p;
        return 0;
}

const char *action_type_to_string(ActionType t) {
        static const char *const table[_ACTION_MAX] = {
                [ACTION_REMOVE_ROUTE] = "remove-route", [ACTION_REMOVE_RULE] = "remove-rule",
                [ACTION_REMOVE_ADDRESS] = "remove-address", [ACTION_SET_DEVCONF] = "set-sysctl",
                [ACTION_DEL_ALTNAME] = "remove-altname", [ACTION_RENAME] = "rename",
                [ACTION_SET_MTU] = "set-mtu", [ACTION_ADD_ADDRESS] = "add-address",
                [ACTION_SET_UP] = "set-up", [ACTION_ADD_RULE] = "add-rule",
                [ACTION_ADD_ROUTE] = "add-route",
        };

        return (size_t) t < _ACTION_MAX ? table[t] : "unknown";
}

const char *nic_outcome_to_string(NicOutcome o) {
        static const char *const table[_NIC_OUTCOME_MAX] = {
                [NIC_UNCHANGED] = "unchanged", [NIC_CONFIGURED] = "configured",
                [NIC_PENDING] = "pending",     [NIC_FAILED] = "failed",
                [NIC_REMOVED] = "removed",
        };

        return (size_t) o < _NIC_OUTCOME_MAX ? table[o] : "unknown";
}

static void describe_devconf(const Action *a, char *buf, size_t n) {
        static const char *const names[_DEVCONF_MAX] = { "arp_ignore", "arp_announce",
                                                         "rp_filter" };
        size_t off = 0;

        buf[0] = 0;
        for (size_t i = 0; i < _DEVCONF_MAX && off < n; i++)
                if (a->devconf.to[i] >= 0 && a->devconf.to[i] != a->devconf.from[i])
                        off += (size_t) snprintf(buf + off, n - off, "%s%s %d -> %d",
                                                 off ? ", " : "", names[i], a->devconf.from[i],
                                                 a->devconf.to[i]);
}

void action_describe(const Action *a, char *buf, size_t n) {
        char x[INET_ADDRSTRLEN], y[INET_ADDRSTRLEN];

        switch (a->type) {
        case ACTION_RENAME:
                snprintf(buf, n, "rename %s -> %s", a->rename.from, a->rename.to);
                break;
        case ACTION_DEL_ALTNAME:
                snprintf(buf, n, "remove altname %s", a->altname);
                break;
        case ACTION_SET_MTU:
                snprintf(buf, n, "mtu %u -> %u", a->mtu.from, a->mtu.to);
                break;
        case ACTION_SET_DEVCONF:
                describe_devconf(a, buf, n);
                break;
        case ACTION_SET_UP:
                snprintf(buf, n, "set link up");
                break;
        case ACTION_ADD_ADDRESS:
        case ACTION_REMOVE_ADDRESS:
                inet_ntop(AF_INET, &a->addr.local, x, sizeof(x));
                snprintf(buf, n, "%s address %s/%u%s", a->type == ACTION_ADD_ADDRESS ? "add" : "remove",
                         x, a->addr.prefixlen,
                         a->addr.flags & IFA_F_NOPREFIXROUTE ? " noprefixroute" : "");
                break;
        case ACTION_ADD_RULE:
        case ACTION_REMOVE_RULE:
                inet_ntop(AF_INET, &a->rule.src, x, sizeof(x));
                snprintf(buf, n, "%s rule from %s lookup %u priority %u",
                         a->type == ACTION_ADD_RULE ? "add" : "remove", x, a->rule.table,
                         a->rule.priority);
                break;
        case ACTION_ADD_ROUTE:
        case ACTION_REMOVE_ROUTE:
                inet_ntop(AF_INET, &a->route.dst, x, sizeof(x));
                inet_ntop(AF_INET, &a->route.prefsrc, y, sizeof(y));
                snprintf(buf, n, "%s route %s/%u src %s table %u",
                         a->type == ACTION_ADD_ROUTE ? "add" : "remove", x, a->route.dst_len, y,
                         a->route.table);
                break;
        default:
                snprintf(buf, n, "%s", action_type_to_string(a->type));
        }
}
