/* Planning of Apply and Remove: pure code over a snapshot, so that Plan and Apply agree. */
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"
#include "util.h"

void config_init(Config *c) {
        *c = (Config) {
                .table_base = 100,
                .priority_base = 1000,
                .policy_routing = true,
                .sysctls = true,
                .check_interval = 60,
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


/* The planner's working state: the kernel as it will be once the actions planned so far ran. */
typedef struct Planner {
        Plan *plan;
        Snapshot w;
        const State *state;
        const Config *config;
} Planner;

static void simulate(Snapshot *s, const Action *a);

/* Adds an action and plays it on the working snapshot, so every later decision sees its effect.
 * When memory runs out the plan remembers -ENOMEM and is refused as a whole. */
static void emit(Planner *pl, Action a) {
        Plan *p = pl->plan;
        Action *n = realloc(p->actions, (p->n_actions + 1) * sizeof(*n));

        if (!n) {
                p->error = -ENOMEM;
                return;
        }
        p->actions = n;
        n[p->n_actions++] = a;
        simulate(&pl->w, &a);
}

static void nic_fail(NicPlan *n, const char *fmt, ...) _printf_(2, 3);
static void nic_fail(NicPlan *n, const char *fmt, ...) {
        va_list ap;

        n->outcome = NIC_FAILED;
        va_start(ap, fmt);
        vsnprintf(n->message, sizeof(n->message), fmt, ap);
        va_end(ap);
}

/* The one physical-like link with this MAC; -ENOTUNIQ if several; -EAGAIN, with *ret, if only
 * one that udev has not finished with yet; -ENOENT if none. */
static int match_mac(const Snapshot *s, const uint8_t mac[6], const LinkInfo **ret,
                     const LinkInfo **ret_other) {
        const LinkInfo *found = NULL, *pending = NULL;

        for (size_t i = 0; i < s->n_links; i++) {
                const LinkInfo *l = &s->links[i];

                if (!l->physical_like || memcmp(l->mac, mac, 6) != 0)
                        continue;
                if (l->udev_pending) {
                        pending = l;
                        continue;
                }
                if (found) {
                        if (ret_other)
                                *ret_other = l;
                        *ret = found;
                        return -ENOTUNIQ;
                }
                found = l;
        }
        *ret = found ?: pending;
        return found ? 0 : pending ? -EAGAIN : -ENOENT;
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


/* Removing an address makes the kernel drop the routes that use it as source on that link;
 * removing them first, explicitly, lets a rollback put them back in the right order. */
static void emit_remove_address(Planner *pl, size_t idx, const AddrInfo *ad) {
        AddrInfo gone = *ad;
        RouteInfo *using = malloc((pl->w.n_routes ? pl->w.n_routes : 1) * sizeof(RouteInfo));
        size_t n = 0;

        if (!using) {
                pl->plan->error = -ENOMEM;
                return;
        }
        /* Collected first: each emit() changes the working snapshot. The kernel's own routes
         * (local table, prefix routes) come back with the address; the rest are put back by an
         * undo, so they are removed explicitly. */
        for (size_t i = 0; i < pl->w.n_routes; i++) {
                const RouteInfo *rt = &pl->w.routes[i];

                if (rt->oif == gone.ifindex && rt->prefsrc.s_addr == gone.local.s_addr &&
                    rt->type == RTN_UNICAST && rt->table != RT_TABLE_LOCAL &&
                    rt->protocol != RTPROT_KERNEL)
                        using[n++] = *rt;
        }
        for (size_t i = 0; i < n; i++)
                emit(pl, (Action) { .type = ACTION_REMOVE_ROUTE, .nic = idx,
                                    .ifindex = gone.ifindex, .route = using[i] });
        free(using);
        emit(pl, (Action) { .type = ACTION_REMOVE_ADDRESS, .nic = idx, .ifindex = gone.ifindex,
                            .addr = gone });
}

static void emit_devconf(Planner *pl, size_t idx, const LinkInfo *l, const int32_t to[]) {
        Action a = { .type = ACTION_SET_DEVCONF, .nic = idx, .ifindex = l->ifindex };
        bool change = false;

        for (size_t i = 0; i < _DEVCONF_MAX; i++) {
                a.devconf.from[i] = l->devconf[i];
                a.devconf.to[i] = to[i];
                change |= to[i] >= 0 && to[i] != l->devconf[i];
        }
        if (change)
                emit(pl, a);
}

static void emit_rename(Planner *pl, size_t idx, const LinkInfo *l, const char *to) {
        Action a = { .type = ACTION_RENAME, .nic = idx, .ifindex = l->ifindex };

        snprintf(a.rename.from, IFNAMSIZ, "%s", l->name);
        snprintf(a.rename.to, IFNAMSIZ, "%s", to);
        if (link_has_altname(l, to)) {
                Action d = { .type = ACTION_DEL_ALTNAME, .nic = idx, .ifindex = l->ifindex };

                snprintf(d.altname, sizeof(d.altname), "%s", to);
                emit(pl, d);
        }
        emit(pl, a);
}

static void release_rename(Planner *pl, NicPlan *n, const ManagedNic *m, const LinkInfo *l) {
        const LinkInfo *holder;

        snprintf(n->name, sizeof(n->name), "%s", l->name);
        if (!m->original_name[0] || streq(l->name, m->original_name) || !streq(l->name, m->name))
                return;

        holder = snapshot_link_by_name(&pl->w, m->original_name);
        if (holder && holder != l) {
                snprintf(n->message, sizeof(n->message),
                         "released; keeps the name %s since %s is taken by %s", l->name,
                         m->original_name, holder->name);
                return;
        }
        emit_rename(pl, (size_t) (n - pl->plan->nics), l, m->original_name);
        snprintf(n->name, sizeof(n->name), "%s", m->original_name);
}

static void release_runtime(Planner *pl, size_t idx, const ManagedNic *m, const LinkInfo *l) {
        const RouteInfo *rt;
        const AddrInfo *ad;

        rt = m->has_route ? find_route(&pl->w, m->route.table, m->route.dst, m->route.dst_len)
                          : NULL;
        if (rt && rt->oif == l->ifindex)
                emit(pl, (Action) { .type = ACTION_REMOVE_ROUTE, .nic = idx,
                                    .ifindex = l->ifindex, .route = *rt });
        if (m->has_rule && rule_present(&pl->w, &m->rule))
                emit(pl, (Action) { .type = ACTION_REMOVE_RULE, .nic = idx,
                                    .ifindex = l->ifindex, .rule = m->rule });
        ad = m->has_address ? find_addr(&pl->w, l->ifindex, m->address.local) : NULL;
        if (ad)
                emit_remove_address(pl, idx, ad);
        emit_devconf(pl, idx, l, m->original_devconf);
}

static int plan_release(Planner *pl, const ManagedNic *m) {
        const LinkInfo *l;
        NicPlan *n;
        int r;

        r = plan_add_nic(pl->plan, &n);
        if (r < 0)
                return r;
        memcpy(n->mac, m->mac, 6);
        n->id = m->id;
        n->outcome = NIC_REMOVED;
        n->record = *m;
        snprintf(n->name, sizeof(n->name), "%s", m->name);
        snprintf(n->message, sizeof(n->message), "released");

        if (match_mac(&pl->w, m->mac, &l, NULL) < 0) {
                snprintf(n->message, sizeof(n->message), "released (not present)");
                return 0;
        }
        n->ifindex = l->ifindex;
        release_runtime(pl, (size_t) (n - pl->plan->nics), m, l);
        release_rename(pl, n, m, l);
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

static bool nic_active(const NicPlan *n) {
        return n->spec && (n->outcome == NIC_UNCHANGED || n->outcome == NIC_CONFIGURED);
}

/* Until nothing changes: a NIC failing here may be the one another NIC counted on to free its
 * wanted name. */
static void check_names(Plan *p, const Spec *spec, const Snapshot *s) {
        bool again = true;

        while (again) {
                again = false;
                for (size_t i = 0; i < p->n_nics; i++) {
                        NicPlan *n = &p->nics[i];

                        if (!nic_active(n))
                                continue;
                        check_name(p, n, (size_t) (n->spec - spec->interfaces),
                                   snapshot_link_by_index(s, n->ifindex), s);
                        again |= n->outcome == NIC_FAILED;
                }
        }
}

/* A device that reports no maximum gets IPv4's own ceiling, the largest packet it can carry. */
#define IPV4_MTU_MAX 65535U

static void check_mtu(NicPlan *n, size_t spec_idx, const LinkInfo *l) {
        uint32_t mtu = n->spec->mtu, max = l->max_mtu > 0 ? l->max_mtu : IPV4_MTU_MAX;

        if (mtu == 0)
                return;
        if (mtu > max)
                nic_fail(n, "interfaces[%zu].mtu: %u is above the maximum %u of %s", spec_idx,
                         mtu, max, l->name);
        else if (l->min_mtu > 0 && mtu < l->min_mtu)
                nic_fail(n, "interfaces[%zu].mtu: %u is below the minimum %u of %s", spec_idx,
                         mtu, l->min_mtu, l->name);
}

static void record_init(NicPlan *n, const SpecInterface *si, const ManagedNic *old,
                        const LinkInfo *l, const Config *config, bool policy) {
        ManagedNic *m = &n->record;

        memcpy(m->mac, si->mac, 6);
        m->id = si->id;
        m->mtu = si->mtu;
        snprintf(m->name, sizeof(m->name), "%s", si->name);
        snprintf(m->original_name, sizeof(m->original_name), "%s",
                 old ? old->original_name : l->name);
        for (size_t i = 0; i < _DEVCONF_MAX; i++)
                m->original_devconf[i] = old && old->original_devconf[i] >= 0
                                                 ? old->original_devconf[i]
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

/* What an earlier Apply installed and this spec no longer wants. */
static void configure_stale(Planner *pl, size_t idx, const ManagedNic *old, const ManagedNic *want,
                            const LinkInfo *l) {
        const RouteInfo *rt;
        const AddrInfo *ad;

        if (old->has_rule && (!want->has_rule || !rule_equal(&old->rule, &want->rule)) &&
            rule_present(&pl->w, &old->rule))
                emit(pl, (Action) { .type = ACTION_REMOVE_RULE, .nic = idx, .ifindex = l->ifindex,
                                    .rule = old->rule });
        rt = old->has_route
                     ? find_route(&pl->w, old->route.table, old->route.dst, old->route.dst_len)
                     : NULL;
        if (rt && rt->oif == l->ifindex &&
            (!want->has_route || rt->table != want->route.table ||
             rt->dst.s_addr != want->route.dst.s_addr || rt->dst_len != want->route.dst_len))
                emit(pl, (Action) { .type = ACTION_REMOVE_ROUTE, .nic = idx, .ifindex = l->ifindex,
                                    .route = *rt });
        ad = old->has_address && old->address.local.s_addr != want->address.local.s_addr
                     ? find_addr(&pl->w, l->ifindex, old->address.local)
                     : NULL;
        if (ad)
                emit_remove_address(pl, idx, ad);
}

static void configure_link(Planner *pl, size_t idx, const SpecInterface *si, const LinkInfo *l) {
        if (si->mtu > 0 && l->mtu != si->mtu)
                emit(pl, (Action) { .type = ACTION_SET_MTU, .nic = idx, .ifindex = l->ifindex,
                                    .mtu = { l->mtu, si->mtu } });
        if (pl->config->sysctls)
                emit_devconf(pl, idx, l, pl->config->devconf);
}

static void configure_address(Planner *pl, size_t idx, const ManagedNic *want, const LinkInfo *l) {
        const AddrInfo *cur = find_addr(&pl->w, l->ifindex, want->address.local);
        uint32_t mask = IFA_F_NOPREFIXROUTE;
        AddrInfo a = want->address;

        if (cur && cur->prefixlen == a.prefixlen && (cur->flags & mask) == (a.flags & mask))
                return;
        if (cur)
                emit_remove_address(pl, idx, cur);
        a.ifindex = l->ifindex;
        emit(pl, (Action) { .type = ACTION_ADD_ADDRESS, .nic = idx, .ifindex = l->ifindex,
                            .addr = a });
}

static void configure_routing(Planner *pl, size_t idx, const ManagedNic *want, const LinkInfo *l) {
        RouteInfo route = want->route;
        const RouteInfo *cur;

        if (!(l->flags & IFF_UP))
                emit(pl, (Action) { .type = ACTION_SET_UP, .nic = idx, .ifindex = l->ifindex });
        if (!want->has_rule)
                return;
        if (!rule_present(&pl->w, &want->rule))
                emit(pl, (Action) { .type = ACTION_ADD_RULE, .nic = idx, .ifindex = l->ifindex,
                                    .rule = want->rule });

        route.oif = l->ifindex;
        cur = find_route(&pl->w, route.table, route.dst, route.dst_len);
        if (cur && route_matches(cur, &route))
                return;
        if (cur)
                emit(pl, (Action) { .type = ACTION_REMOVE_ROUTE, .nic = idx, .ifindex = l->ifindex,
                                    .route = *cur });
        emit(pl, (Action) { .type = ACTION_ADD_ROUTE, .nic = idx, .ifindex = l->ifindex,
                            .route = route });
}

static void plan_configure_nic(Planner *pl, size_t idx) {
        NicPlan *n = &pl->plan->nics[idx];
        const ManagedNic *old = state_find(pl->state, n->mac);
        const LinkInfo *l = snapshot_link_by_index(&pl->w, n->ifindex);

        if (!l) {
                nic_fail(n, "%s disappeared during Apply", n->name);
                return;
        }
        if (old)
                configure_stale(pl, idx, old, &n->record, l);
        configure_link(pl, idx, n->spec, l);
        configure_address(pl, idx, &n->record, l);
        configure_routing(pl, idx, &n->record, l);
}

static void plan_pending_nic(Planner *pl, size_t idx) {
        const ManagedNic *old = state_find(pl->state, pl->plan->nics[idx].mac);

        /* A detached NIC's routes went with it; its source rule would linger. */
        if (old && old->has_rule && rule_present(&pl->w, &old->rule))
                emit(pl, (Action) { .type = ACTION_REMOVE_RULE, .nic = idx, .rule = old->rule });
}

static bool name_wanted_by_other(const Plan *p, const NicPlan *self, const char *name) {
        for (size_t i = 0; i < p->n_nics; i++)
                if (&p->nics[i] != self && nic_active(&p->nics[i]) && streq(p->nics[i].name, name))
                        return true;
        return false;
}

/* Two passes, so that NICs can swap names: first every NIC whose name another one wants steps
 * aside to a temporary name, then every NIC takes its wanted name. */
static void plan_renames(Planner *pl) {
        Plan *p = pl->plan;

        for (size_t i = 0; i < p->n_nics; i++) {
                NicPlan *n = &p->nics[i];
                const LinkInfo *l = nic_active(n) ? snapshot_link_by_index(&pl->w, n->ifindex)
                                                  : NULL;
                char tmp[IFNAMSIZ];

                if (!l || streq(l->name, n->name) || !name_wanted_by_other(p, n, l->name))
                        continue;
                snprintf(tmp, sizeof(tmp), "mntmp%d", l->ifindex);
                emit_rename(pl, i, l, tmp);
        }
        for (size_t i = 0; i < p->n_nics; i++) {
                NicPlan *n = &p->nics[i];
                const LinkInfo *l = nic_active(n) ? snapshot_link_by_index(&pl->w, n->ifindex)
                                                  : NULL;

                if (l && !streq(l->name, n->name))
                        emit_rename(pl, i, l, n->name);
        }
}

static int plan_spec_nic(Planner *pl, const Spec *spec, size_t i) {
        const SpecInterface *si = &spec->interfaces[i];
        const ManagedNic *old = state_find(pl->state, si->mac);
        const LinkInfo *l, *other = NULL;
        char mac[MAC_STRLEN];
        NicPlan *n;
        int r;

        r = plan_add_nic(pl->plan, &n);
        if (r < 0)
                return r;
        memcpy(n->mac, si->mac, 6);
        n->id = si->id;
        n->spec = si;
        snprintf(n->name, sizeof(n->name), "%s", si->name);

        mac_format(si->mac, mac);
        r = match_mac(&pl->w, si->mac, &l, &other);
        if (r == -ENOENT || r == -EAGAIN) {
                n->outcome = NIC_PENDING;
                if (r == -EAGAIN)
                        snprintf(n->message, sizeof(n->message),
                                 "waiting for udev to finish with %s (MAC %s)", l->name, mac);
                else
                        snprintf(n->message, sizeof(n->message), "waiting for a NIC with MAC %s",
                                 mac);
                return 0;
        }
        n->ifindex = l->ifindex;
        if (r == -ENOTUNIQ) {
                nic_fail(n, "interfaces[%zu].macAddress: %s matches both %s and %s; "
                         "refusing to guess", i, mac, l->name, other->name);
                return 0;
        }
        check_mtu(n, i, l);
        if (n->outcome == NIC_FAILED)
                return 0;
        record_init(n, si, old, l, pl->config,
                    pl->config->policy_routing && spec->options.policy_routing);
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

static void plan_configure_all(Planner *pl) {
        for (size_t i = 0; i < pl->plan->n_nics; i++) {
                const NicPlan *n = &pl->plan->nics[i];

                if (nic_active(n))
                        plan_configure_nic(pl, i);
                else if (n->spec && n->outcome == NIC_PENDING)
                        plan_pending_nic(pl, i);
        }
        plan_finalize(pl->plan);
}

static bool spec_has_mac(const Spec *spec, const uint8_t mac[6]) {
        for (size_t i = 0; i < spec->n_interfaces; i++)
                if (memcmp(spec->interfaces[i].mac, mac, 6) == 0)
                        return true;
        return false;
}

/* Tables 253..255 are the kernel's default, main and local tables; 0 means none. */
static bool table_reserved(uint32_t table) {
        return table == RT_TABLE_UNSPEC || (table >= RT_TABLE_DEFAULT && table <= RT_TABLE_LOCAL);
}

static int plan_guards(const Spec *spec, const State *state, const Snapshot *s,
                       const Config *config, Error *e) {
        for (size_t i = 0; i < spec->n_interfaces; i++) {
                const LinkInfo *l = NULL;
                uint32_t table = config->table_base + spec->interfaces[i].id;
                int r;

                if (config->policy_routing && spec->options.policy_routing && table_reserved(table))
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "interfaces[%zu].id: %u would use routing table %u, "
                                         "which the kernel reserves (table base %u)",
                                         i, spec->interfaces[i].id, table, config->table_base);

                if (match_mac(s, spec->interfaces[i].mac, &l, NULL) < 0)
                        l = NULL;
                r = guard_nic(spec, i, l, state, s, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int planner_init(Planner *pl, Plan *p, const State *state, const Snapshot *snap,
                        const Config *config) {
        *pl = (Planner) { .plan = p, .state = state, .config = config };
        return snapshot_copy(snap, &pl->w);
}

/* Hands the plan over (ret may be NULL when the plan was built in place). */
static int planner_finish(Planner *pl, Plan *ret) {
        int r = pl->plan->error;

        snapshot_done(&pl->w);
        if (r < 0) {
                plan_done(pl->plan);
                return r;
        }
        if (ret)
                *ret = *pl->plan;
        return 0;
}

/* Stage A works on the snapshot as read; stage B on the kernel as stage A will leave it, which
 * is what Apply reads afresh before it plans stage B again. */
/* Before the names are checked: another NIC may have counted on a held NIC's rename. */
static void plan_hold(Plan *p, const PlanHold *holds, size_t n_holds) {
        for (size_t h = 0; h < n_holds; h++)
                for (size_t i = 0; i < p->n_nics; i++)
                        if (p->nics[i].spec && memcmp(p->nics[i].mac, holds[h].mac, 6) == 0)
                                nic_fail(&p->nics[i], "%s", holds[h].message);
}

int plan_build(const Spec *spec, const State *state, const Snapshot *snap, const Config *config,
               const PlanHold *holds, size_t n_holds, Plan *ret, Error *e) {
        Plan p = {};
        Planner pl;
        int r;

        r = plan_guards(spec, state, snap, config, e);
        if (r < 0)
                return r;
        r = planner_init(&pl, &p, state, snap, config);
        if (r < 0)
                return r;

        for (size_t i = 0; r >= 0 && i < state->n_nics; i++)
                if (!spec_has_mac(spec, state->nics[i].mac))
                        r = plan_release(&pl, &state->nics[i]);
        for (size_t i = 0; r >= 0 && i < spec->n_interfaces; i++)
                r = plan_spec_nic(&pl, spec, i);
        if (r < 0)
                p.error = r;
        plan_hold(&p, holds, n_holds);
        check_names(&p, spec, snap);

        plan_renames(&pl);
        p.n_stage_a = p.n_actions;
        plan_configure_all(&pl);
        return planner_finish(&pl, ret);
}

int plan_rebuild_configure(Plan *p, const State *state, const Snapshot *snap,
                           const Config *config) {
        Planner pl;
        int r;

        r = planner_init(&pl, p, state, snap, config);
        if (r < 0)
                return r;
        p->n_actions = p->n_stage_a;
        plan_configure_all(&pl);
        return planner_finish(&pl, NULL);
}

int plan_build_remove(const State *state, const Snapshot *snap, Plan *ret) {
        Plan p = {};
        Planner pl;
        int r;

        r = planner_init(&pl, &p, state, snap, NULL);
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && i < state->n_nics; i++)
                r = plan_release(&pl, &state->nics[i]);
        if (r < 0)
                p.error = r;
        p.n_stage_a = p.n_actions;
        return planner_finish(&pl, ret);
}

/* The kernel's answer to the actions whose effects later decisions depend on (removals, renames,
 * sysctls), played on a snapshot: what the planner and Plan's second stage rely on. */
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

static bool route_same(const RouteInfo *a, const RouteInfo *b) {
        return a->table == b->table && a->dst.s_addr == b->dst.s_addr &&
               a->dst_len == b->dst_len && a->oif == b->oif && a->metric == b->metric &&
               a->prefsrc.s_addr == b->prefsrc.s_addr && a->gateway.s_addr == b->gateway.s_addr;
}

static void simulate_remove_address(Snapshot *s, const AddrInfo *gone) {
        bool still_local = false;

        for (size_t i = s->n_addrs; i-- > 0;)
                if (s->addrs[i].local.s_addr == gone->local.s_addr) {
                        if (s->addrs[i].ifindex == gone->ifindex)
                                simulate_remove(s->addrs, &s->n_addrs, sizeof(AddrInfo), i);
                        else
                                still_local = true;
                }
        /* Once no device holds the address, the kernel drops every route that uses it as its
         * source, on any link and in any table. */
        for (size_t i = s->n_routes; !still_local && i-- > 0;)
                if (s->routes[i].prefsrc.s_addr == gone->local.s_addr)
                        simulate_remove(s->routes, &s->n_routes, sizeof(RouteInfo), i);
}

static void simulate(Snapshot *s, const Action *a) {
        for (size_t i = s->n_routes; a->type == ACTION_REMOVE_ROUTE && i-- > 0;)
                if (route_same(&s->routes[i], &a->route)) {
                        simulate_remove(s->routes, &s->n_routes, sizeof(RouteInfo), i);
                        break;
                }
        for (size_t i = s->n_rules; a->type == ACTION_REMOVE_RULE && i-- > 0;)
                if (rule_equal(&s->rules[i], &a->rule))
                        simulate_remove(s->rules, &s->n_rules, sizeof(RuleInfo), i);
        if (a->type == ACTION_REMOVE_ADDRESS)
                simulate_remove_address(s, &a->addr);
        simulate_link(s, a);
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
        size_t off = 0;

        buf[0] = 0;
        for (size_t i = 0; i < _DEVCONF_MAX && off < n; i++)
                if (a->devconf.to[i] >= 0 && a->devconf.to[i] != a->devconf.from[i])
                        off += (size_t) snprintf(buf + off, n - off, "%s%s %d -> %d",
                                                 off ? ", " : "", devconf_to_string((Devconf) i),
                                                 a->devconf.from[i], a->devconf.to[i]);
}

/* What an address, rule or route action is about: "10.1.0.11/24 noprefixroute", "from 10.1.0.11
 * lookup 100 priority 1000", "10.1.0.0/24 src 10.1.0.11 table 100". */
static void describe_object(const Action *a, char *buf, size_t n) {
        char x[INET_ADDRSTRLEN], y[INET_ADDRSTRLEN];

        switch (a->type) {
        case ACTION_ADD_ADDRESS:
        case ACTION_REMOVE_ADDRESS:
                inet_ntop(AF_INET, &a->addr.local, x, sizeof(x));
                snprintf(buf, n, "%s/%u%s", x, a->addr.prefixlen,
                         a->addr.flags & IFA_F_NOPREFIXROUTE ? " noprefixroute" : "");
                break;
        case ACTION_ADD_RULE:
        case ACTION_REMOVE_RULE:
                inet_ntop(AF_INET, &a->rule.src, x, sizeof(x));
                snprintf(buf, n, "from %s lookup %u priority %u", x, a->rule.table,
                         a->rule.priority);
                break;
        default:
                inet_ntop(AF_INET, &a->route.dst, x, sizeof(x));
                inet_ntop(AF_INET, &a->route.prefsrc, y, sizeof(y));
                snprintf(buf, n, "%s/%u src %s table %u", x, a->route.dst_len, y,
                         a->route.table);
        }
}

static size_t drift_set(Drift *d, const char *field, const char *wanted, const char *found) {
        snprintf(d->field, sizeof(d->field), "%.*s", (int) sizeof(d->field) - 1, field);
        snprintf(d->wanted, sizeof(d->wanted), "%.*s", (int) sizeof(d->wanted) - 1, wanted);
        snprintf(d->found, sizeof(d->found), "%.*s", (int) sizeof(d->found) - 1, found);
        return 1;
}

/* An address, rule or route: present in the kernel and not wanted, or the other way round. */
static size_t drift_presence(Drift *d, const Action *a, const char *field) {
        bool add = a->type == ACTION_ADD_ADDRESS || a->type == ACTION_ADD_RULE ||
                   a->type == ACTION_ADD_ROUTE;
        char object[96];

        describe_object(a, object, sizeof(object));
        return drift_set(d, field, add ? object : "absent", add ? "absent" : object);
}

static size_t drift_devconf(const Action *a, Drift *ret, size_t n) {
        char wanted[16], found[16];
        size_t k = 0;

        for (size_t i = 0; i < _DEVCONF_MAX && k < n; i++) {
                if (a->devconf.to[i] < 0 || a->devconf.to[i] == a->devconf.from[i])
                        continue;
                snprintf(wanted, sizeof(wanted), "%d", a->devconf.to[i]);
                snprintf(found, sizeof(found), "%d", a->devconf.from[i]);
                k += drift_set(&ret[k], devconf_to_string((Devconf) i), wanted, found);
        }
        return k;
}

size_t action_drift(const Action *a, Drift *ret, size_t n) {
        char wanted[16], found[16];

        if (n == 0)
                return 0;
        switch (a->type) {
        case ACTION_RENAME:
                return drift_set(ret, "name", a->rename.to, a->rename.from);
        case ACTION_DEL_ALTNAME:
                return drift_set(ret, "altname", "absent", a->altname);
        case ACTION_SET_MTU:
                snprintf(wanted, sizeof(wanted), "%u", a->mtu.to);
                snprintf(found, sizeof(found), "%u", a->mtu.from);
                return drift_set(ret, "mtu", wanted, found);
        case ACTION_SET_DEVCONF:
                return drift_devconf(a, ret, n);
        case ACTION_SET_UP:
                return drift_set(ret, "link", "up", "down");
        case ACTION_ADD_ADDRESS:
        case ACTION_REMOVE_ADDRESS:
                return drift_presence(ret, a, "address");
        case ACTION_ADD_RULE:
        case ACTION_REMOVE_RULE:
                return drift_presence(ret, a, "rule");
        case ACTION_ADD_ROUTE:
        case ACTION_REMOVE_ROUTE:
                return drift_presence(ret, a, "route");
        default:
                return drift_set(ret, action_type_to_string(a->type), "", "");
        }
}

void action_describe(const Action *a, char *buf, size_t n) {
        static const char *const object_verbs[_ACTION_MAX] = {
                [ACTION_ADD_ADDRESS] = "add address", [ACTION_REMOVE_ADDRESS] = "remove address",
                [ACTION_ADD_RULE] = "add rule",       [ACTION_REMOVE_RULE] = "remove rule",
                [ACTION_ADD_ROUTE] = "add route",     [ACTION_REMOVE_ROUTE] = "remove route",
        };
        char object[96];

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
        case ACTION_ADD_RULE:
        case ACTION_REMOVE_RULE:
        case ACTION_ADD_ROUTE:
        case ACTION_REMOVE_ROUTE:
                describe_object(a, object, sizeof(object));
                snprintf(buf, n, "%s %s", object_verbs[a->type], object);
                break;
        default:
                snprintf(buf, n, "%s", action_type_to_string(a->type));
        }
}
