/* The executor: one netlink change per action, undone in reverse when a NIC cannot finish. */
#include <stdarg.h>
#include <stdio.h>

#include "execute.h"
#include "log.h"
#include "netlink.h"

int executor_init(Executor *x, struct nl_sock *nl, Plan *plan) {
        *x = (Executor) { .nl = nl, .plan = plan };
        return 0;
}

void executor_done(Executor *x) {
        free(x->done);
        x->done = NULL;
}

/* Follows the plan's action count, which shrinks and grows when the plan is rebuilt. */
static int executor_sync(Executor *x) {
        size_t n = x->plan->n_actions;
        bool *d;

        d = realloc(x->done, (n ? n : 1) * sizeof(bool));
        if (!d)
                return -ENOMEM;
        if (n > x->n_done)
                memset(d + x->n_done, 0, (n - x->n_done) * sizeof(bool));
        x->done = d;
        x->n_done = n;
        return 0;
}

static int rename_link(struct nl_sock *nl, int ifindex, const char *from, const char *to) {
        int r, q;

        r = netlink_link_rename(nl, ifindex, to);
        if (r != -EBUSY)
                return r;
        /* Kernels before 6.4 refuse to rename a running link: down for the rename only. */
        r = netlink_link_set_up(nl, ifindex, false);
        if (r < 0)
                return r;
        r = netlink_link_rename(nl, ifindex, to);
        q = netlink_link_set_up(nl, ifindex, true);
        if (r >= 0 && q < 0)
                (void) netlink_link_rename(nl, ifindex, from); /* all or nothing */
        /* 1: done, but the link went down and up, which took its routes with it. */
        return r < 0 ? r : q < 0 ? q : 1;
}

static int devconf_apply(struct nl_sock *nl, const Action *a, bool undo) {
        int32_t v[_DEVCONF_MAX];

        for (size_t i = 0; i < _DEVCONF_MAX; i++)
                v[i] = undo ? a->devconf.from[i] : a->devconf.to[i];
        return netlink_link_set_devconf(nl, a->ifindex, v);
}

/* Removing what is already gone is success: the goal is its absence. */
static int tolerate_absent(int r) {
        return r == -ENOENT || r == -ESRCH || r == -EADDRNOTAVAIL ? 0 : r;
}

static int action_run(struct nl_sock *nl, const Action *a, bool undo) {
        switch (a->type) {
        case ACTION_RENAME:
                return undo ? rename_link(nl, a->ifindex, a->rename.to, a->rename.from)
                            : rename_link(nl, a->ifindex, a->rename.from, a->rename.to);
        case ACTION_DEL_ALTNAME:
                return undo ? netlink_link_add_altname(nl, a->ifindex, a->altname)
                            : tolerate_absent(netlink_link_del_altname(nl, a->ifindex, a->altname));
        case ACTION_SET_MTU:
                return netlink_link_set_mtu(nl, a->ifindex, undo ? a->mtu.from : a->mtu.to);
        case ACTION_SET_DEVCONF:
                return devconf_apply(nl, a, undo);
        case ACTION_SET_UP:
                return netlink_link_set_up(nl, a->ifindex, !undo);
        case ACTION_ADD_ADDRESS:
                return undo ? tolerate_absent(netlink_addr_del(nl, &a->addr))
                            : netlink_addr_add(nl, &a->addr);
        case ACTION_REMOVE_ADDRESS:
                return undo ? netlink_addr_add(nl, &a->addr)
                            : tolerate_absent(netlink_addr_del(nl, &a->addr));
        case ACTION_ADD_RULE:
                return undo ? tolerate_absent(netlink_rule_del(nl, &a->rule))
                            : netlink_rule_add(nl, &a->rule);
        case ACTION_REMOVE_RULE:
                return undo ? netlink_rule_add(nl, &a->rule)
                            : tolerate_absent(netlink_rule_del(nl, &a->rule));
        case ACTION_ADD_ROUTE:
                return undo ? tolerate_absent(netlink_route_del(nl, &a->route))
                            : netlink_route_add(nl, &a->route);
        case ACTION_REMOVE_ROUTE:
                return undo ? netlink_route_add(nl, &a->route)
                            : tolerate_absent(netlink_route_del(nl, &a->route));
        default:
                return -EINVAL;
        }
}

static void nic_message_append(NicPlan *n, const char *fmt, ...) _printf_(2, 3);
static void nic_message_append(NicPlan *n, const char *fmt, ...) {
        size_t len = strlen(n->message);
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(n->message + len, sizeof(n->message) - len, fmt, ap);
        va_end(ap);
}

static void rollback_nic(Executor *x, size_t nic, size_t upto);

/* The NIC, other than nic, whose rename in this call took name. */
static size_t name_taker(const Executor *x, size_t nic, const char *name) {
        for (size_t k = 0; k < x->n_done; k++) {
                const Action *a = &x->plan->actions[k];

                if (x->done[k] && a->nic != nic && a->type == ACTION_RENAME &&
                    streq(a->rename.to, name))
                        return a->nic;
        }
        return SIZE_MAX;
}

static void undo_action(Executor *x, size_t k) {
        const Action *a = &x->plan->actions[k];
        NicPlan *n = &x->plan->nics[a->nic];
        char what[160];
        size_t other;
        int r;

        x->done[k] = false;
        r = action_run(x->nl, a, true);
        x->n_writes++;
        /* NICs that swapped names go back together: the one that took this NIC's old name
         * gives it back first. */
        if (r == -EEXIST && a->type == ACTION_RENAME &&
            (other = name_taker(x, a->nic, a->rename.from)) != SIZE_MAX) {
                NicPlan *o = &x->plan->nics[other];

                o->outcome = NIC_FAILED;
                snprintf(o->message, sizeof(o->message),
                         "rolled back together with %s, which failed", n->name);
                rollback_nic(x, other, x->n_done);
                r = action_run(x->nl, a, true);
                x->n_writes++;
        }
        action_describe(a, what, sizeof(what));
        if (r < 0) {
                nic_message_append(n, "; undoing '%s' failed: %s", what, strerror(-r));
                log_link_warning_errno(n->name, n->mac, r, "Undoing '%s' failed: %m", what);
        } else
                log_undo(n->name, n->mac, action_type_to_string(a->type), what);
}

static void rollback_nic(Executor *x, size_t nic, size_t upto) {
        for (size_t k = upto; k-- > 0;)
                if (x->plan->actions[k].nic == nic && x->done[k])
                        undo_action(x, k);
}

static void nic_failed(Executor *x, size_t k, int r) {
        const Action *a = &x->plan->actions[k];
        NicPlan *n = &x->plan->nics[a->nic];
        char what[160];

        action_describe(a, what, sizeof(what));
        n->outcome = NIC_FAILED;
        snprintf(n->message, sizeof(n->message), "%s: %s; rolled back", what, strerror(-r));
        log_link_warning_errno(n->name, n->mac, r, "Failed to %s: %m; rolling back", what);
        rollback_nic(x, a->nic, k);
}

int executor_run(Executor *x, size_t from, size_t to) {
        char what[160];
        int r;

        r = executor_sync(x);
        if (r < 0)
                return r;
        for (size_t k = from; k < to && k < x->plan->n_actions; k++) {
                const Action *a = &x->plan->actions[k];
                NicPlan *n = &x->plan->nics[a->nic];

                if (n->outcome == NIC_FAILED)
                        continue;
                r = action_run(x->nl, a, false);
                x->n_writes++;
                if (r < 0) {
                        nic_failed(x, k, r);
                        x->unforeseen = true;
                        continue;
                }
                if (r > 0)
                        x->unforeseen = true;
                x->done[k] = true;
                action_describe(a, what, sizeof(what));
                if (r > 0 && a->type == ACTION_RENAME)
                        log_change(n->name, n->mac, "set-down-up",
                                   "took the link down for the rename and up again");
                log_change(n->name, n->mac, action_type_to_string(a->type), what);
        }
        return 0;
}

bool executor_nic_changed(const Executor *x, size_t nic) {
        for (size_t k = 0; k < x->n_done; k++)
                if (x->done[k] && x->plan->actions[k].nic == nic)
                        return true;
        return false;
}

void executor_rollback_nic(Executor *x, size_t nic, const char *reason) {
        NicPlan *n = &x->plan->nics[nic];

        n->outcome = NIC_FAILED;
        snprintf(n->message, sizeof(n->message), "%s; rolled back", reason);
        rollback_nic(x, nic, x->n_done);
}

void executor_rollback_all(Executor *x, const char *reason) {
        for (size_t i = 0; i < x->plan->n_nics; i++) {
                NicPlan *n = &x->plan->nics[i];

                if (!executor_nic_changed(x, i))
                        continue;
                n->outcome = NIC_FAILED;
                snprintf(n->message, sizeof(n->message), "%s; rolled back", reason);
        }
        /* Newest first across all NICs, so that name swaps unwind in order. */
        for (size_t k = x->n_done; k-- > 0;)
                if (x->done[k])
                        undo_action(x, k);
}
