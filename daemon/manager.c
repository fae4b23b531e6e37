/* Apply, Plan and Remove: snapshot, plan, execute, guard the default route, save the state. */
#include <arpa/inet.h>
#include <strings.h>
#include <time.h>

#include "cjson-util.h"
#include "execute.h"
#include "fileio.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"
#include "monitor.h"
#include "netlink.h"
#include "persist.h"
#include "spec-json.h"

void call_result_done(CallResult *c) {
        plan_done(&c->plan);
        free(c->done);
        *c = (CallResult) {};
}

static void read_instance_id(Manager *m) {
        _cleanup_(freep) char *path = NULL, *text = NULL;
        size_t n;

        if (path_join_root(m->root, "/sys/class/dmi/id/product_uuid", &path) < 0)
                return;
        if (read_file(path, 256, &text, &n) < 0) {
                log_warning("Cannot read %s; Apply calls that name an instanceId will be refused",
                            path);
                return;
        }
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
                text[--n] = 0;
        snprintf(m->instance_id, sizeof(m->instance_id), "%s", text);
}

/* After a restart, the Interfaces property lists the managed NICs as the kernel has them now. */
static int status_from_state(Manager *m) {
        Snapshot s = {};
        int r;

        if (m->state.n_nics == 0)
                return 0;
        m->status = calloc(m->state.n_nics, sizeof(NicStatus));
        if (!m->status)
                return -ENOMEM;
        r = netlink_snapshot(m->nl, &s);
        if (r < 0)
                return log_error_errno(r, "Failed to read the kernel's state: %m");
        for (size_t i = 0; i < m->state.n_nics; i++) {
                const ManagedNic *n = &m->state.nics[i];
                NicStatus *st = &m->status[m->n_status++];
                bool present = false;

                for (size_t k = 0; k < s.n_links && !present; k++)
                        present = s.links[k].physical_like &&
                                  memcmp(s.links[k].mac, n->mac, 6) == 0;
                st->spec = (SpecInterface) {
                        .id = n->id,
                        .mtu = n->mtu,
                        .address = n->address.local,
                        .prefixlen = n->address.prefixlen,
                        .network.s_addr = n->address.local.s_addr &
                                          htonl(prefix_to_mask(n->address.prefixlen)),
                };
                memcpy(st->spec.mac, n->mac, 6);
                snprintf(st->spec.name, sizeof(st->spec.name), "%s", n->name);
                st->outcome = present ? NIC_CONFIGURED : NIC_PENDING;
        }
        snapshot_done(&s);
        return 0;
}

int manager_new(const char *root, const Config *config, int backend, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return -ENOMEM;
        m->config = *config;
        m->overall = "Idle";
        m->backend = backend == PERSIST_AUTO ? persist_backend_detect(root) : backend;
        m->files_stale = true;
        m->root = strdup(root);
        if (!m->root)
                return -ENOMEM;
        r = netlink_open(&m->nl);
        if (r < 0)
                return log_error_errno(r, "Failed to open rtnetlink: %m");
        r = state_load(m->root, &m->state);
        if (r == -EBADMSG) {
                _cleanup_(freep) char *aside = NULL;

                /* Not silently: the NICs it named now count as not managed, hence in use. */
                r = state_set_aside(m->root, &aside);
                log_error_errno(r < 0 ? r : EBADMSG,
                                "The managed state file is not valid; %s%s. Starting with no "
                                "managed NICs: Apply will treat the NICs it named as in use.",
                                aside ? "moved it to " : "could not move it aside: %m",
                                aside ? aside : "");
        } else if (r < 0)
                return log_error_errno(r, "Failed to read the managed state: %m");
        if (m->state.n_nics > 0)
                m->overall = "Configured";
        read_instance_id(m);
        r = status_from_state(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* The state file is written (and fsynced) after the reply is on its way: the caller does not
 * wait for the disk, and a failure is retried at the next call. */
void manager_save_state(Manager *m) {
        int r;

        if (!m->state_unsaved)
                return;
        r = state_save(m->root, &m->state, true);
        if (r < 0)
                log_warning_errno(r, "Failed to save the managed state, retrying at the next "
                                     "call: %m");
        m->state_unsaved = r < 0;
        m->intent_unsynced &= r < 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        manager_save_state(m);
        monitor_stop(m);
        manager_bus_drop_calls(m);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        netlink_closep(&m->nl);
        state_done(&m->state);
        free(m->status);
        free(m->heals);
        free(m->held);
        free(m->root);
        free(m);
        return NULL;
}

static int check_instance(const Manager *m, const Spec *spec, Error *e) {
        const char *want = spec->options.instance_id;

        if (!want[0] || strcasecmp(want, m->instance_id) == 0)
                return 0;
        return error_set(e, ERROR_KIND_INSTANCE_MISMATCH, -EPERM,
                         "options.instanceId: %s is not this host (its instance id is %s)", want,
                         m->instance_id[0] ? m->instance_id : "unknown");
}

static int snapshot_take(Manager *m, Snapshot *s, Error *e) {
        int r = netlink_snapshot(m->nl, s);

        if (r < 0)
                return error_set(e, ERROR_KIND_FAILED, r, "reading the kernel's state failed: %s",
                                 strerror(-r));
        monitor_mark_udev_pending(m, s);
        return 0;
}

int manager_plan(Manager *m, Spec *spec, Plan *ret, Error *e) {
        Snapshot s = {};
        int r;

        r = check_instance(m, spec, e);
        if (r < 0)
                return r;
        r = snapshot_take(m, &s, e);
        if (r < 0)
                return r;
        r = plan_build(spec, &m->state, &s, &m->config, NULL, 0, ret, e);
        snapshot_done(&s);
        return r;
}

static int state_after(const Manager *m, const Plan *p, State *ret) {
        State s = {};
        int r = 0;

        for (size_t i = 0; i < p->n_nics && r >= 0; i++) {
                const NicPlan *n = &p->nics[i];
                const ManagedNic *old = state_find(&m->state, n->mac);

                if (n->outcome == NIC_CONFIGURED || n->outcome == NIC_UNCHANGED)
                        r = state_append(&s, &n->record);
                else if (n->outcome != NIC_REMOVED && old)
                        r = state_append(&s, old); /* failed or pending: as it was */
        }
        if (r < 0) {
                state_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

static const char *overall_of(const Plan *p) {
        bool pending = false;

        for (size_t i = 0; i < p->n_nics; i++) {
                if (p->nics[i].outcome == NIC_FAILED)
                        return "Failed";
                pending |= p->nics[i].outcome == NIC_PENDING;
        }
        return pending ? "Pending" : "Configured";
}

static bool status_entry_equal(const NicStatus *a, const NicStatus *b) {
        const SpecInterface *x = &a->spec, *y = &b->spec;

        return a->outcome == b->outcome && streq(a->message, b->message) && x->id == y->id &&
               streq(x->name, y->name) && memcmp(x->mac, y->mac, 6) == 0 &&
               x->address.s_addr == y->address.s_addr && x->network.s_addr == y->network.s_addr &&
               x->prefixlen == y->prefixlen && x->mtu == y->mtu &&
               a->drift.usec == b->drift.usec;
}

static const NicStatus *status_find(const NicStatus *st, size_t n, const uint8_t mac[6]) {
        for (size_t i = 0; i < n; i++)
                if (memcmp(st[i].spec.mac, mac, 6) == 0)
                        return &st[i];
        return NULL;
}

static bool status_equal(const Manager *m, const NicStatus *st, size_t n) {
        if (n != m->n_status)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!status_entry_equal(&st[i], &m->status[i]))
                        return false;
        return true;
}

static bool plan_has_nic(const Plan *p, const uint8_t mac[6]) {
        for (size_t i = 0; i < p->n_nics; i++)
                if (p->nics[i].spec && memcmp(p->nics[i].mac, mac, 6) == 0)
                        return true;
        return false;
}

/* Updates the Interfaces and LastError properties, noting which of them changed. drift, per NIC
 * of the plan, is what a reconcile found; a NIC without new drift keeps the drift it had. With
 * keep_held, a held NIC that the reconcile left out of its plan, as one never configured is,
 * keeps its entry, failed with why. */
static int status_update(Manager *m, const Plan *p, const NicDrift *drift, bool keep_held) {
        NicStatus *st = calloc(p->n_nics + m->n_held + 1, sizeof(NicStatus));
        const NicStatus *old;
        char last_error[sizeof(m->last_error)] = "";
        size_t n = 0;

        if (!st)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_nics; i++) {
                const NicPlan *np = &p->nics[i];

                if (np->outcome == NIC_FAILED && !last_error[0])
                        snprintf(last_error, sizeof(last_error), "%s", np->message);
                if (!np->spec)
                        continue;
                st[n].spec = *np->spec;
                st[n].outcome = np->outcome == NIC_UNCHANGED ? NIC_CONFIGURED : np->outcome;
                snprintf(st[n].message, sizeof(st[n].message), "%s", np->message);
                if (drift && drift[i].usec)
                        st[n].drift = drift[i];
                else if ((old = status_find(m->status, m->n_status, np->mac)))
                        st[n].drift = old->drift;
                n++;
        }
        for (size_t i = 0; keep_held && i < m->n_held; i++) {
                const HeldNic *h = &m->held[i];

                if (plan_has_nic(p, h->mac) || !(old = status_find(m->status, m->n_status, h->mac)))
                        continue;
                st[n] = *old;
                st[n].outcome = NIC_FAILED;
                snprintf(st[n].message, sizeof(st[n].message), "%s", h->message);
                if (!last_error[0])
                        snprintf(last_error, sizeof(last_error), "%s", h->message);
                n++;
        }
        if (!streq(last_error, m->last_error)) {
                memcpy(m->last_error, last_error, sizeof(last_error));
                m->props_changed |= PROP_LAST_ERROR;
        }
        if (status_equal(m, st, n)) {
                free(st);
                return 0;
        }
        free(m->status);
        m->status = st;
        m->n_status = n;
        m->props_changed |= PROP_INTERFACES;
        return 0;
}

/* Puts back the main table's default routes that the kernel dropped during the Apply, say with
 * an address they took as source: undoing multinicd's own changes does not bring them back. */
static void restore_default_routes(Manager *m, const Snapshot *before) {
        _cleanup_(snapshot_done) Snapshot now = {};
        char gw[INET_ADDRSTRLEN];
        int r;

        r = netlink_snapshot_routes(m->nl, &now);
        if (r < 0) {
                log_error_errno(r, "Failed to read the routes back after a rollback: %m");
                return;
        }
        for (size_t i = 0; i < before->n_routes; i++) {
                const RouteInfo *d = &before->routes[i];
                const LinkInfo *l = snapshot_link_by_index(before, d->oif);

                if (!route_is_main_default(d) || snapshot_has_default_route(&now, d))
                        continue;
                inet_ntop(AF_INET, &d->gateway, gw, sizeof(gw));
                r = netlink_route_add(m->nl, d);
                if (r < 0)
                        log_link_full(LOG_ERR, r, l ? l->name : NULL, NULL,
                                      "Failed to restore the default route via %s: %m", gw);
                else
                        log_link_warning_errno(l ? l->name : NULL, NULL, 0,
                                               "Restored the default route via %s, which the "
                                               "kernel had dropped during the Apply", gw);
        }
}

/* Stage A (releases, renames), stage B (the rest), then the default-route guard. */
static int run_plan(Manager *m, const Snapshot *before, CallResult *c, Error *e) {
        Plan *p = &c->plan;
        Executor x;
        Snapshot s = {};
        int r;

        executor_init(&x, m->nl, p);
        r = executor_run(&x, 0, p->n_stage_a);
        /* The second stage was planned on a model of the kernel after the first; a fresh look
         * is needed only where the first did what the model does not know: a failure undone,
         * or a link taken down for a rename. */
        if (r >= 0 && x.unforeseen && (r = snapshot_take(m, &s, e)) >= 0) {
                r = plan_rebuild_configure(p, &m->state, &s, &m->config);
                snapshot_done(&s);
        }
        if (r >= 0)
                r = executor_run(&x, p->n_stage_a, p->n_actions);
        if (r >= 0 && x.n_writes > 0 && (r = netlink_snapshot_routes(m->nl, &s)) >= 0) {
                if (!snapshot_default_routes_equal(before, &s)) {
                        executor_rollback_all(&x, "the main table's default route changed during "
                                                  "Apply");
                        restore_default_routes(m, before);
                }
                snapshot_done(&s);
        }
        c->done = TAKE_PTR(x.done);
        executor_done(&x);
        if (r < 0)
                return error_set(e, ERROR_KIND_FAILED, r, "Apply failed: %s", strerror(-r));
        return 0;
}

static size_t plan_nic_by_mac(const Plan *p, const uint8_t mac[6]) {
        for (size_t i = 0; i < p->n_nics; i++)
                if (memcmp(p->nics[i].mac, mac, 6) == 0)
                        return i;
        return SIZE_MAX;
}

/* Writes the files of one NIC, all or none: 0, or the error of the file that failed. */
static int write_nic_files(Manager *m, const PersistSet *set, size_t nic,
                           const PersistFile **failed) {
        char *old[4] = {};
        size_t written[4], n = 0;
        int r = 0;

        for (size_t i = 0; i < set->n_files && r >= 0 && n < ELEMENTSOF(old); i++) {
                const PersistFile *f = &set->files[i];
                bool w;

                if (f->nic != nic)
                        continue;
                r = persist_write(m->root, f, &old[n], &w);
                if (r < 0)
                        *failed = f;
                else if (w)
                        written[n++] = i;
                else
                        free(TAKE_PTR(old[n]));
        }
        for (size_t k = n; k-- > 0;) {
                if (r < 0)
                        (void) persist_restore(m->root, &set->files[written[k]], old[k]);
                free(old[k]);
        }
        return r;
}

/* A NIC whose files cannot be written is rolled back like one whose netlink change failed, and
 * the state keeps what it had before. */
static void persist_nic_failed(Manager *m, CallResult *c, State *s, size_t i, const PersistFile *f,
                               int r) {
        size_t nic = plan_nic_by_mac(&c->plan, s->nics[i].mac);
        const ManagedNic *old = state_find(&m->state, s->nics[i].mac);
        char reason[200];

        snprintf(reason, sizeof(reason), "writing %s failed: %s", f->path,
                 r == -EEXIST ? "a file multinicd did not write is in the way" : strerror(-r));
        log_link_warning_errno(s->nics[i].name, s->nics[i].mac, r, "%s", reason);
        if (nic != SIZE_MAX && c->plan.nics[nic].outcome != NIC_FAILED) {
                Executor x = { .nl = m->nl, .plan = &c->plan, .done = c->done,
                               .n_done = c->plan.n_actions };

                executor_rollback_nic(&x, nic, reason);
        }
        if (old)
                s->nics[i] = *old;
        else
                s->nics[i].name[0] = 0; /* dropped below */
}

static void state_drop_unnamed(State *s) {
        size_t k = 0;

        for (size_t i = 0; i < s->n_nics; i++)
                if (s->nics[i].name[0])
                        s->nics[k++] = s->nics[i];
        s->n_nics = k;
}

static int persist_files(Manager *m, CallResult *c, State *s) {
        PersistSet set = {};
        const PersistFile *failed = NULL;
        bool any_failed = false;
        int r, q;

        r = persist_render(m->backend, s, &m->config, &set);
        for (size_t i = 0; r >= 0 && i < s->n_nics; i++) {
                q = write_nic_files(m, &set, i, &failed);
                if (q < 0) {
                        persist_nic_failed(m, c, s, i, failed, q);
                        any_failed = true;
                }
        }
        if (r >= 0 && any_failed) {
                state_drop_unnamed(s);
                persist_set_done(&set);
                r = persist_render(m->backend, s, &m->config, &set);
        }
        for (size_t i = 0; r >= 0 && i < set.n_files; i++) {
                bool w;

                if (set.files[i].nic != SIZE_MAX)
                        continue;
                q = persist_write(m->root, &set.files[i], NULL, &w);
                if (q < 0)
                        log_warning_errno(q, "Failed to write %s, ignoring: %m", set.files[i].path);
        }
        if (r >= 0 && (q = persist_remove_orphans(m->root, &set)) < 0)
                log_warning_errno(q, "Failed to remove the files of released NICs, ignoring: %m");
        persist_set_done(&set);
        return r;
}

static const HeldNic *held_find(const Manager *m, const uint8_t mac[6]) {
        for (size_t i = 0; i < m->n_held; i++)
                if (memcmp(m->held[i].mac, mac, 6) == 0)
                        return &m->held[i];
        return NULL;
}

/* After an Apply of a caller: the NICs it failed are held until a later Apply succeeds. */
static void held_update(Manager *m, const Plan *p) {
        HeldNic *h = calloc(p->n_nics ? p->n_nics : 1, sizeof(HeldNic));
        size_t n = 0;

        if (!h)
                return;
        for (size_t i = 0; i < p->n_nics; i++)
                if (p->nics[i].spec && p->nics[i].outcome == NIC_FAILED) {
                        memcpy(h[n].mac, p->nics[i].mac, 6);
                        snprintf(h[n].message, sizeof(h[n].message), "%s", p->nics[i].message);
                        n++;
                }
        free(m->held);
        m->held = h;
        m->n_held = n;
}

static bool any_action_ran(const CallResult *c) {
        for (size_t k = 0; c->done && k < c->plan.n_actions; k++)
                if (c->done[k])
                        return true;
        return false;
}

/* The files survive a power loss: the kept state that names their NICs must too, before them. */
static void sync_intent(Manager *m) {
        int r;

        if (!m->intent_unsynced)
                return;
        r = state_sync(m->root);
        if (r < 0)
                log_warning_errno(r, "Failed to sync the managed state before the files, "
                                     "ignoring: %m");
        m->intent_unsynced = false;
}

/* The new state takes desired (owned): the spec of an Apply, NULL after Remove. A reconcile of
 * the daemon's own that changed nothing leaves LastApply alone. */
static int finish_call(Manager *m, CallResult *c, bool removing, bool persist, cJSON *desired,
                       bool internal) {
        const char *overall;
        State s = {};
        int r;

        if (removing)
                held_update(m, &c->plan); /* nothing is held once everything is released */
        r = state_after(m, &c->plan, &s);
        if (r < 0) {
                cJSON_Delete(desired);
                return r;
        }
        s.desired = desired;
        persist_learn_drivers(&s, &m->state);
        /* Files follow the state: rewritten when it changed, or when they may be behind it. */
        if (persist && (m->files_stale || !state_equal(&m->state, &s))) {
                sync_intent(m);
                r = persist_files(m, c, &s);
                if (r < 0) {
                        state_done(&s);
                        return r;
                }
        }
        m->files_stale = !persist;
        /* Saved by manager_save_state() once the caller has its answer. */
        if (!state_equal(&m->state, &s))
                m->state_unsaved = true;
        state_done(&m->state);
        m->state = s;
        c->overall = overall_of(&c->plan);
        overall = removing && m->state.n_nics == 0 ? "Idle" : c->overall;
        if (!streq(overall, m->overall))
                m->props_changed |= PROP_STATE;
        m->overall = overall;
        if (!internal || any_action_ran(c)) {
                m->last_apply_usec = clock_usec(CLOCK_REALTIME);
                m->props_changed |= PROP_LAST_APPLY;
        }
        return status_update(m, &c->plan, NULL, internal);
}

static PlanHold *heal_holds(const Manager *m, size_t *ret_n);

static bool plan_nic_has_actions(const Plan *p, size_t nic) {
        for (size_t k = 0; k < p->n_actions; k++)
                if (p->actions[k].nic == nic)
                        return true;
        return false;
}

/* Before the first change, the kept state learns what the call is about to do: the NICs about to
 * be taken over, with their original names, and the spec a caller asked for. A multinicd killed
 * half-way, or after its answer but before the state file followed, knows both after the
 * restart: it gives the NICs back, or applies the spec that was answered. Written only when one
 * of them changes, so never for a no-op. Its directory is not synced: after a power loss the
 * file before it may come back, which is right while the kernel's state it guards, gone too, is
 * all that changed; sync_intent() makes it durable before the files, which do outlive one. */
static int save_intent(Manager *m, const Plan *p, cJSON *desired) {
        State s = { .desired = desired };
        bool changed = !m->state.desired != !desired ||
                       (desired && !cJSON_Compare(m->state.desired, desired, true));
        int r = 0;

        for (size_t i = 0; r >= 0 && i < m->state.n_nics; i++)
                r = state_append(&s, &m->state.nics[i]);
        for (size_t i = 0; r >= 0 && i < p->n_nics; i++) {
                if (!p->nics[i].spec || state_find(&m->state, p->nics[i].mac) ||
                    !plan_nic_has_actions(p, i))
                        continue;
                r = state_append(&s, &p->nics[i].record);
                changed = true;
        }
        if (r >= 0 && changed) {
                r = state_save(m->root, &s, false);
                m->state_unsaved = true; /* the file must say what the call ends with */
                m->intent_unsynced = r >= 0;
        }
        s.desired = NULL; /* borrowed */
        state_done(&s);
        return r;
}

static int apply_spec(Manager *m, Spec *spec, CallResult *ret, Error *e, bool internal) {
        _cleanup_(freep) PlanHold *holds = NULL;
        _cleanup_(cJSON_Deletep) cJSON *desired = NULL;
        Snapshot before = {};
        size_t n_holds = 0;
        int r;

        r = check_instance(m, spec, e);
        if (r < 0)
                return r;
        /* A reconcile leaves the NICs it stopped healing alone; a caller's Apply does not. */
        if (internal && !(holds = heal_holds(m, &n_holds)))
                return -ENOMEM;
        /* A reconcile applies a spec with held NICs put back; the caller's spec stays. */
        desired = internal ? cJSON_Duplicate(m->state.desired, true) : spec_to_json(spec);
        if (!desired)
                return -ENOMEM;
        r = snapshot_take(m, &before, e);
        if (r < 0)
                return r;
        r = plan_build(spec, &m->state, &before, &m->config, holds, n_holds, &ret->plan, e);
        if (r >= 0 && (r = save_intent(m, &ret->plan, desired)) < 0)
                error_set(e, ERROR_KIND_FAILED, r, "Saving the managed state failed, nothing "
                          "was changed: %s", strerror(-r));
        if (r >= 0)
                r = run_plan(m, &before, ret, e);
        snapshot_done(&before);
        if (r < 0) {
                if (!streq(m->last_error, e->message))
                        m->props_changed |= PROP_LAST_ERROR;
                snprintf(m->last_error, sizeof(m->last_error), "%s", e->message);
                return r;
        }
        r = finish_call(m, ret, false, spec->options.persist, TAKE_PTR(desired), internal);
        /* After the files: a NIC whose files could not be written failed too. */
        if (r >= 0 && !internal)
                held_update(m, &ret->plan);
        return r;
}

int manager_apply(Manager *m, Spec *spec, CallResult *ret, Error *e) {
        return apply_spec(m, spec, ret, e, false);
}

int manager_remove(Manager *m, const Spec *options, CallResult *ret, Error *e) {
        Snapshot before = {};
        int r;

        r = check_instance(m, options, e);
        if (r < 0)
                return r;
        r = snapshot_take(m, &before, e);
        if (r < 0)
                return r;
        r = plan_build_remove(&m->state, &before, &ret->plan);
        if (r >= 0)
                r = run_plan(m, &before, ret, e);
        snapshot_done(&before);
        if (r < 0)
                return r;
        return finish_call(m, ret, true, options->options.persist, NULL, false);
}

/* A NIC healed HEAL_LIMIT times within HEAL_WINDOW means something keeps undoing multinicd. */
#define HEAL_WINDOW_USEC (60ULL * 1000000ULL)
#define HEAL_BACKOFF_MIN_USEC (30ULL * 1000000ULL)
#define HEAL_BACKOFF_MAX_USEC (600ULL * 1000000ULL)

static HealRecord *heal_find(const Manager *m, const uint8_t mac[6]) {
        for (size_t i = 0; i < m->n_heals; i++)
                if (memcmp(m->heals[i].mac, mac, 6) == 0)
                        return &m->heals[i];
        return NULL;
}

static HealRecord *heal_record(Manager *m, const uint8_t mac[6]) {
        HealRecord *h = heal_find(m, mac);

        if (h)
                return h;
        h = realloc(m->heals, (m->n_heals + 1) * sizeof(*h));
        if (!h)
                return NULL;
        m->heals = h;
        h = &h[m->n_heals++];
        *h = (HealRecord) {};
        memcpy(h->mac, mac, 6);
        return h;
}

/* Counts a heal; true when the NIC has now been healed HEAL_LIMIT times within the window. */
static bool heal_count(HealRecord *h, uint64_t now) {
        h->times[h->next] = now;
        h->next = (h->next + 1) % HEAL_LIMIT;
        /* The oldest of the last HEAL_LIMIT heals, if it is recent, means a competitor. */
        return h->times[h->next] != 0 && now - h->times[h->next] < HEAL_WINDOW_USEC;
}

/* Leaves the NIC alone for a while, twice as long as last time if that was recent. The heals
 * counted so far are forgotten: after the pause it takes HEAL_LIMIT new ones. */
static void heal_pause(HealRecord *h, NicPlan *n, uint64_t now) {
        bool again = h->paused_until && now - h->paused_until < HEAL_WINDOW_USEC;

        h->backoff_usec = again ? h->backoff_usec * 2 : HEAL_BACKOFF_MIN_USEC;
        if (h->backoff_usec > HEAL_BACKOFF_MAX_USEC)
                h->backoff_usec = HEAL_BACKOFF_MAX_USEC;
        h->paused_until = now + h->backoff_usec;
        h->degraded = true;
        memset(h->times, 0, sizeof(h->times));
        snprintf(h->message, sizeof(h->message), "degraded: changed back %d times within a "
                 "minute; not healing for %llu s", HEAL_LIMIT,
                 (unsigned long long) (h->backoff_usec / 1000000ULL));
        log_link_warning_errno(n->name, n->mac, 0, "Something keeps undoing multinicd: %s",
                               h->message);
        n->outcome = NIC_FAILED;
        snprintf(n->message, sizeof(n->message), "%s", h->message);
}

/* The NICs that a reconcile leaves alone for now: they get no change and stay degraded. */
static PlanHold *heal_holds(const Manager *m, size_t *ret_n) {
        PlanHold *holds = calloc(m->n_heals ? m->n_heals : 1, sizeof(PlanHold));
        uint64_t now = clock_usec(CLOCK_MONOTONIC);
        size_t n = 0;

        if (!holds)
                return NULL;
        for (size_t i = 0; i < m->n_heals; i++)
                if (now < m->heals[i].paused_until) {
                        memcpy(holds[n].mac, m->heals[i].mac, 6);
                        holds[n++].message = m->heals[i].message;
                }
        *ret_n = n;
        return holds;
}

/* What the actions that ran for one NIC undid. */
static void drift_collect(const CallResult *c, size_t nic, NicDrift *ret) {
        const Plan *p = &c->plan;

        for (size_t k = 0; k < p->n_actions && ret->n_items < DRIFT_MAX; k++)
                if (p->actions[k].nic == nic && (!c->done || c->done[k]))
                        ret->n_items += action_drift(&p->actions[k], ret->items + ret->n_items,
                                                     DRIFT_MAX - ret->n_items);
        ret->usec = clock_usec(CLOCK_REALTIME);
}

/* A NIC that was configured before this reconcile and needed changes drifted; one that appeared
 * or came back did not. A degraded NIC, reported failed while it was left alone, counts too. */
static bool nic_drifted(const HealRecord *h, const NicStatus *before, size_t n_before,
                        const NicPlan *n) {
        const NicStatus *st = status_find(before, n_before, n->mac);

        return n->outcome == NIC_CONFIGURED && n->spec &&
               ((st && st->outcome == NIC_CONFIGURED) || (h && h->degraded));
}

static void reconcile_account(Manager *m, CallResult *c, const NicStatus *before,
                              size_t n_before, NicDrift *drift) {
        uint64_t now = clock_usec(CLOCK_MONOTONIC);

        for (size_t i = 0; i < c->plan.n_nics; i++) {
                NicPlan *n = &c->plan.nics[i];
                HealRecord *h = heal_find(m, n->mac);
                bool drifted = nic_drifted(h, before, n_before, n);

                /* The first reconcile after its pause has looked at it: it is counted afresh. */
                if (h && h->degraded && now >= h->paused_until)
                        h->degraded = false;
                if (!drifted)
                        continue;
                drift_collect(c, i, &drift[i]);
                for (size_t k = 0; k < drift[i].n_items; k++)
                        log_drift(n->name, n->mac, drift[i].items[k].field,
                                  drift[i].items[k].wanted, drift[i].items[k].found);
                h = heal_record(m, n->mac);
                if (h && heal_count(h, now))
                        heal_pause(h, n, now);
        }
}

/* What the kernel should hold for a NIC whose last Apply failed and was rolled back: what it
 * held before; and nothing to do for one that was never configured. Healing towards the failed
 * spec would retry, on every event, a change that was refused or undone. */
static void spec_hold_failed(const Manager *m, Spec *spec) {
        size_t k = 0;

        for (size_t i = 0; i < spec->n_interfaces; i++) {
                SpecInterface *si = &spec->interfaces[i];
                const ManagedNic *old = state_find(&m->state, si->mac);

                if (held_find(m, si->mac)) {
                        if (!old || !old->has_address)
                                continue;
                        *si = (SpecInterface) {
                                .fields_set = SPEC_FIELD_ID | SPEC_FIELD_NAME | SPEC_FIELD_MAC |
                                              SPEC_FIELD_ADDRESS | SPEC_FIELD_CIDR |
                                              (old->mtu ? SPEC_FIELD_MTU : 0),
                                .id = old->id,
                                .address = old->address.local,
                                .network.s_addr = old->address.local.s_addr &
                                                  htonl(prefix_to_mask(old->address.prefixlen)),
                                .prefixlen = old->address.prefixlen,
                                .mtu = old->mtu,
                        };
                        memcpy(si->mac, old->mac, 6);
                        snprintf(si->name, sizeof(si->name), "%s", old->name);
                }
                spec->interfaces[k++] = *si;
        }
        spec->n_interfaces = k;
}

/* Held NICs keep their failure in the report, whatever the reconcile did with them. */
static void report_held(Manager *m, Plan *p) {
        for (size_t i = 0; i < p->n_nics; i++) {
                const HeldNic *h = held_find(m, p->nics[i].mac);

                if (!h || !p->nics[i].spec)
                        continue;
                p->nics[i].outcome = NIC_FAILED;
                snprintf(p->nics[i].message, sizeof(p->nics[i].message), "%s", h->message);
        }
}

/* A NIC that a reconcile took over and that failed, whose rollback sent events of its own: held
 * as well, or every reconcile those events start would fail it the same way again. A NIC left
 * alone for having been undone too often is not: it is looked at again after its pause. */
static void held_add_failed(Manager *m, const Plan *p) {
        uint64_t now = clock_usec(CLOCK_MONOTONIC);

        for (size_t i = 0; i < p->n_nics; i++) {
                const NicPlan *n = &p->nics[i];
                const HealRecord *h = heal_find(m, n->mac);
                HeldNic *held;

                if (!n->spec || n->outcome != NIC_FAILED || held_find(m, n->mac) ||
                    (h && now < h->paused_until))
                        continue;
                held = realloc(m->held, (m->n_held + 1) * sizeof(HeldNic));
                if (!held)
                        return;
                m->held = held;
                held = &held[m->n_held++];
                memcpy(held->mac, n->mac, 6);
                snprintf(held->message, sizeof(held->message), "%s", n->message);
        }
}

int manager_reconcile(Manager *m) {
        _cleanup_(spec_done) Spec spec = {};
        _cleanup_(call_result_done) CallResult c = {};
        _cleanup_(freep) NicStatus *before = NULL;
        _cleanup_(freep) NicDrift *drift = NULL;
        size_t n_before;
        const char *overall;
        Error e = {};
        int r;

        if (!m->state.desired)
                return 0;
        spec_init(&spec);
        r = spec_from_json(m->state.desired, &spec, &e);
        if (r >= 0)
                r = spec_validate(&spec, &e);
        if (r < 0)
                return log_error_errno(r, "The kept spec cannot be read back: %s", e.message);
        spec_hold_failed(m, &spec);
        /* Which NICs were configured before: the call below updates the status. */
        n_before = m->n_status;
        before = calloc(n_before ? n_before : 1, sizeof(NicStatus));
        if (!before)
                return log_error_errno(-ENOMEM, "Reconciling failed: %m");
        memcpy(before, m->status, n_before * sizeof(NicStatus));
        r = apply_spec(m, &spec, &c, &e, true);
        if (r < 0)
                return log_warning_errno(r, "Reconciling failed: %s", e.message);
        held_add_failed(m, &c.plan);
        drift = calloc(c.plan.n_nics ? c.plan.n_nics : 1, sizeof(NicDrift));
        if (!drift)
                return log_error_errno(-ENOMEM, "Reconciling failed: %m");
        reconcile_account(m, &c, before, n_before, drift);
        report_held(m, &c.plan);
        overall = overall_of(&c.plan);
        if (!streq(overall, m->overall))
                m->props_changed |= PROP_STATE;
        m->overall = overall;
        /* A degraded or held NIC shows in Interfaces and LastError, a healed one its drift. */
        return status_update(m, &c.plan, drift, true);
}

void manager_emit_changed(Manager *m) {
        static const struct {
                PropChanged bit;
                char *name;
        } props[] = {
                { PROP_STATE, (char *) "State" },
                { PROP_INTERFACES, (char *) "Interfaces" },
                { PROP_LAST_APPLY, (char *) "LastApply" },
                { PROP_LAST_ERROR, (char *) "LastError" },
        };
        char *names[ELEMENTSOF(props) + 1];
        size_t n = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(props); i++)
                if (m->props_changed & props[i].bit)
                        names[n++] = props[i].name;
        names[n] = NULL;
        m->props_changed = 0;
        if (n == 0 || !m->bus)
                return;
        r = sd_bus_emit_properties_changed_strv(m->bus, AGENT_OBJECT_PATH, AGENT_INTERFACE,
                                                names);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged, ignoring: %m");
}
