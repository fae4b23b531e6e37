/* The D-Bus face of multinicd: method handlers, properties and error names. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>

#include "config.h"

#include "bus-polkit.h"
#include "bus-spec.h"
#include "log.h"
#include "manager-bus.h"
#include "persist.h"



static int reply_error(sd_bus_error *ret_error, const Error *e, int r) {
        char name[128];

        if (e->kind == ERROR_KIND_NONE || e->kind == ERROR_KIND_FAILED)
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_FAILED, "%s",
                                         e->kind ? e->message : strerror(r < 0 ? -r : EIO));
        snprintf(name, sizeof(name), AGENT_ERROR_PREFIX "%s", error_kind_to_string(e->kind));
        return sd_bus_error_set(ret_error, name, e->message);
}

/* The caller's uid and PID, for the log only: authorization asks the bus, never /proc. */
static int caller_creds(sd_bus_message *m, uint32_t *ret_uid, uint32_t *ret_pid) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid = (uid_t) -1;
        pid_t pid = 0;
        int r;

        r = sd_bus_query_sender_creds(
                m, SD_BUS_CREDS_UID | SD_BUS_CREDS_PID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        (void) sd_bus_creds_get_uid(creds, &uid);
        (void) sd_bus_creds_get_pid(creds, &pid);
        *ret_uid = (uint32_t) uid;
        *ret_pid = (uint32_t) pid;
        return 0;
}

static int append_sv(sd_bus_message *r, const char *key, const char *type, ...) {
        va_list ap;
        int k;

        k = sd_bus_message_open_container(r, 'e', "sv");
        if (k < 0)
                return k;
        k = sd_bus_message_append(r, "s", key);
        if (k < 0)
                return k;
        k = sd_bus_message_open_container(r, 'v', type);
        if (k < 0)
                return k;
        va_start(ap, type);
        k = sd_bus_message_appendv(r, type, ap);
        va_end(ap);
        if (k < 0)
                return k;
        k = sd_bus_message_close_container(r);
        if (k < 0)
                return k;
        return sd_bus_message_close_container(r);
}

static int append_changes(sd_bus_message *r, const CallResult *c, size_t nic) {
        char what[160];
        int k;

        k = sd_bus_message_open_container(r, 'e', "sv");
        if (k >= 0)
                k = sd_bus_message_append(r, "s", "changes");
        if (k >= 0)
                k = sd_bus_message_open_container(r, 'v', "as");
        if (k >= 0)
                k = sd_bus_message_open_container(r, 'a', "s");
        for (size_t i = 0; k >= 0 && i < c->plan.n_actions; i++) {
                if (c->plan.actions[i].nic != nic || !c->done || !c->done[i])
                        continue;
                action_describe(&c->plan.actions[i], what, sizeof(what));
                k = sd_bus_message_append(r, "s", what);
        }
        for (int i = 0; k >= 0 && i < 3; i++)
                k = sd_bus_message_close_container(r);
        return k;
}

static int append_result(sd_bus_message *r, const CallResult *c, size_t i) {
        const NicPlan *n = &c->plan.nics[i];
        char mac[MAC_STRLEN];
        const char *message = n->message[0] ? n->message : nic_outcome_to_string(n->outcome);
        int k;

        mac_format(n->mac, mac);
        k = sd_bus_message_open_container(r, 'a', "{sv}");
        if (k >= 0)
                k = append_sv(r, "id", "u", n->id);
        if (k >= 0)
                k = append_sv(r, "macAddress", "s", mac);
        if (k >= 0)
                k = append_sv(r, "name", "s", n->name);
        if (k >= 0)
                k = append_sv(r, "state", "s", nic_outcome_to_string(n->outcome));
        if (k >= 0)
                k = append_sv(r, "message", "s", message);
        if (k >= 0)
                k = append_changes(r, c, i);
        if (k >= 0)
                k = sd_bus_message_close_container(r);
        return k;
}

static int reply_results(sd_bus_message *m, const CallResult *c, bool with_state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        if (with_state && (r = sd_bus_message_append(reply, "s", c->overall)) < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < c->plan.n_nics; i++)
                r = append_result(reply, c, i);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* An Apply or Remove call from its arrival to its reply. The calls wait in Manager.calls in
 * arrival order; each is authorized as soon as it arrives, and the changes run strictly in that
 * order, one at a time, so a call that polkit answers early still waits for those before it. */
struct ChangeCall {
        Manager *manager;
        ChangeCall *next;
        sd_bus_message *message;
        sd_bus_slot *polkit_slot;  /* CheckAuthorization, while polkit has not answered */
        const char *authorization; /* "root" or "polkit-allowed"; NULL until authorized */
        bool apply;
        Spec spec;
        uint32_t uid, pid;
};

/* A bound on what unprivileged callers can make the daemon hold while polkit thinks; under
 * dbus-daemon's default of 128 pending replies per connection, which the polkit calls count. */
#define CHANGE_CALLS_MAX 64U

static ChangeCall *change_call_free(ChangeCall *c) {
        if (!c)
                return NULL;
        sd_bus_slot_unref(c->polkit_slot);
        sd_bus_message_unref(c->message);
        spec_done(&c->spec);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ChangeCall *, change_call_free);

static const char *change_call_method(const ChangeCall *c) {
        return c->apply ? "Apply" : "Remove";
}

static const char *change_call_action(const ChangeCall *c) {
        return c->apply ? POLKIT_ACTION_APPLY : POLKIT_ACTION_REMOVE;
}

static void calls_append(Manager *mgr, ChangeCall *c) {
        ChangeCall **p = &mgr->calls;

        while (*p)
                p = &(*p)->next;
        *p = c;
        mgr->n_calls++;
}

static void calls_unlink(Manager *mgr, ChangeCall *c) {
        for (ChangeCall **p = &mgr->calls; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        c->next = NULL;
                        mgr->n_calls--;
                        return;
                }
}

static int reply_failure(sd_bus_message *m, const Error *e, int r) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (!e->kind)
                return sd_bus_reply_method_errno(m, r, NULL);
        (void) reply_error(&error, e, r);
        return sd_bus_reply_method_error(m, &error);
}

/* The one path that changes the host: run, log, signal, reply. */
static void change_call_run(ChangeCall *c) {
        _cleanup_(call_result_done) CallResult res = {};
        Manager *mgr = c->manager;
        Error e = {};
        int r;

        r = c->apply ? manager_apply(mgr, &c->spec, &res, &e)
                     : manager_remove(mgr, &c->spec, &res, &e);
        log_call(change_call_method(c), c->uid, c->pid, c->authorization,
                 r < 0 ? (e.kind ? e.message : strerror(-r)) :
                 c->apply ? res.overall : "released");
        manager_emit_changed(mgr);
        r = r < 0 ? reply_failure(c->message, &e, r) : reply_results(c->message, &res, c->apply);
        if (r < 0)
                log_warning_errno(r, "Failed to answer %s, ignoring: %m", change_call_method(c));
        manager_save_state(mgr);
}

/* Runs the calls at the head of the queue that are authorized; stops at one that is not yet. */
static void calls_run(Manager *mgr) {
        while (mgr->calls && mgr->calls->authorization) {
                _cleanup_(change_call_freep) ChangeCall *c = mgr->calls;

                calls_unlink(mgr, c);
                change_call_run(c);
        }
}

static int deny_error(const ChangeCall *c, PolkitVerdict v, const char *reason,
                      sd_bus_error *error) {
        const char *method = change_call_method(c), *action = change_call_action(c);

        switch (v) {
        case POLKIT_CHALLENGE:
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "%s needs %s: %s",
                        method, action,
                        sd_bus_message_get_allow_interactive_authorization(c->message) > 0 ?
                                "polkit asks for authentication, and none took place (no "
                                "authentication agent for the caller?)" :
                                "polkit asks for authentication; call again allowing interactive "
                                "authorization");
        case POLKIT_UNAVAILABLE:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s needs root or polkit's %s, and polkit is not "
                                         "available (%s); caller has uid %u",
                                         method, action, reason, c->uid);
        case POLKIT_FAILED:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s needs root or polkit's %s, and asking polkit "
                                         "failed (%s); caller has uid %u",
                                         method, action, reason, c->uid);
        default:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s needs %s, which polkit does not grant to uid %u",
                                         method, action, c->uid);
        }
}

static void change_call_deny(ChangeCall *c, PolkitVerdict v, const char *reason) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        (void) deny_error(c, v, reason, &error);
        log_call(change_call_method(c), c->uid, c->pid, polkit_verdict_to_string(v),
                 error.message);
        r = sd_bus_reply_method_error(c->message, &error);
        if (r < 0)
                log_warning_errno(r, "Failed to answer %s, ignoring: %m", change_call_method(c));
}

static int change_call_polkit_done(sd_bus_message *reply, void *userdata,
                                   sd_bus_error *ret_error) {
        ChangeCall *c = userdata;
        Manager *mgr = c->manager;
        const char *reason;
        PolkitVerdict v;

        v = polkit_verdict_from_reply(reply, &reason);
        c->polkit_slot = sd_bus_slot_unref(c->polkit_slot);
        if (v == POLKIT_ALLOWED) {
                c->authorization = polkit_verdict_to_string(v);
        } else {
                /* Denied: answered now, out of the queue; the calls behind may run. */
                change_call_deny(c, v, reason);
                calls_unlink(mgr, c);
                change_call_free(c);
        }
        calls_run(mgr);
        return 0;
}

/* Root, as the bus vouches for it, at once; anyone else when polkit answers. */
static int change_call_authorize(ChangeCall *c) {
        int r;

        r = sd_bus_query_sender_privilege(c->message, -1);
        if (r < 0)
                return r;
        if (r > 0) {
                c->authorization = "root";
                return 0;
        }
        return polkit_check_async(c->message, change_call_action(c), change_call_polkit_done, c,
                                  &c->polkit_slot);
}

static int change_call_new(Manager *mgr, sd_bus_message *m, bool apply, ChangeCall **ret) {
        ChangeCall *c = calloc(1, sizeof(ChangeCall));

        if (!c)
                return -ENOMEM;
        c->manager = mgr;
        c->message = sd_bus_message_ref(m);
        c->apply = apply;
        spec_init(&c->spec);
        *ret = c;
        return 0;
}

/* Apply and Remove: read and check the arguments, then queue the call and authorize it; the
 * reply comes from change_call_run() or change_call_deny(). */
static int method_change(sd_bus_message *m, Manager *mgr, bool apply, sd_bus_error *ret_error) {
        _cleanup_(change_call_freep) ChangeCall *c = NULL;
        Error e = {};
        int r;

        r = change_call_new(mgr, m, apply, &c);
        if (r < 0)
                return r;
        r = caller_creds(m, &c->uid, &c->pid);
        if (r < 0)
                return r;
        r = bus_read_spec(m, apply, &c->spec, &e);
        if (r < 0) {
                /* Refused calls are logged with their caller too. */
                char outcome[sizeof(e.message) + 16];

                snprintf(outcome, sizeof(outcome), "invalid: %s",
                         e.kind ? e.message : strerror(-r));
                log_call(change_call_method(c), c->uid, c->pid, "none", outcome);
                return e.kind ? reply_error(ret_error, &e, r) : r;
        }
        if (mgr->n_calls >= CHANGE_CALLS_MAX) {
                log_call(change_call_method(c), c->uid, c->pid, "none", "busy");
                return sd_bus_error_setf(ret_error, AGENT_ERROR_PREFIX "Busy",
                                         "%u calls to Apply or Remove are waiting already; try "
                                         "again later", CHANGE_CALLS_MAX);
        }
        r = change_call_authorize(c);
        if (r < 0)
                return r;

        calls_append(mgr, TAKE_PTR(c));
        calls_run(mgr);
        return 1;
}

static int method_apply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        return method_change(m, userdata, true, ret_error);
}

static int method_remove(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        return method_change(m, userdata, false, ret_error);
}

/* One entry of Plan's answer: an action for a NIC, or "fail" for a NIC that Apply would fail
 * without changing it, so that an empty answer means Apply would neither change nor fail. */
static int append_plan_entry(sd_bus_message *r, const NicPlan *n, const char *action,
                             const char *detail) {
        char mac[MAC_STRLEN];
        int k;

        mac_format(n->mac, mac);
        k = sd_bus_message_open_container(r, 'a', "{sv}");
        if (k >= 0)
                k = append_sv(r, "macAddress", "s", mac);
        if (k >= 0)
                k = append_sv(r, "name", "s", n->name);
        if (k >= 0)
                k = append_sv(r, "action", "s", action);
        if (k >= 0)
                k = append_sv(r, "detail", "s", detail);
        if (k >= 0)
                k = sd_bus_message_close_container(r);
        return k;
}

static int append_change(sd_bus_message *r, const Plan *p, const Action *a) {
        char what[160];

        action_describe(a, what, sizeof(what));
        return append_plan_entry(r, &p->nics[a->nic], action_type_to_string(a->type), what);
}

static int method_plan(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(spec_done) Spec spec;
        Manager *mgr = userdata;
        Plan p = {};
        Error e = {};
        int r;

        spec_init(&spec);
        r = bus_read_spec(m, true, &spec, &e);
        if (r >= 0)
                r = manager_plan(mgr, &spec, &p, &e);
        if (r < 0)
                return e.kind ? reply_error(ret_error, &e, r) : r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < p.n_actions; i++)
                r = append_change(reply, &p, &p.actions[i]);
        for (size_t i = 0; r >= 0 && i < p.n_nics; i++)
                if (p.nics[i].outcome == NIC_FAILED)
                        r = append_plan_entry(reply, &p.nics[i], "fail", p.nics[i].message);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        plan_done(&p);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* "drift": what the last reconcile that healed the NIC found, one {field, wanted, found} each. */
static int append_drift(sd_bus_message *r, const NicDrift *d) {
        int k;

        k = sd_bus_message_open_container(r, 'e', "sv");
        if (k >= 0)
                k = sd_bus_message_append(r, "s", "drift");
        if (k >= 0)
                k = sd_bus_message_open_container(r, 'v', "aa{sv}");
        if (k >= 0)
                k = sd_bus_message_open_container(r, 'a', "a{sv}");
        for (size_t i = 0; k >= 0 && i < d->n_items; i++) {
                k = sd_bus_message_open_container(r, 'a', "{sv}");
                if (k >= 0)
                        k = append_sv(r, "field", "s", d->items[i].field);
                if (k >= 0)
                        k = append_sv(r, "wanted", "s", d->items[i].wanted);
                if (k >= 0)
                        k = append_sv(r, "found", "s", d->items[i].found);
                if (k >= 0)
                        k = sd_bus_message_close_container(r);
        }
        for (int level = 0; k >= 0 && level < 3; level++)
                k = sd_bus_message_close_container(r);
        if (k >= 0)
                k = append_sv(r, "driftedAt", "t", d->usec);
        return k;
}

static int append_status(sd_bus_message *r, const NicStatus *st) {
        char mac[MAC_STRLEN], addr[INET_ADDRSTRLEN], net[INET_ADDRSTRLEN], cidr[24];
        int k;

        mac_format(st->spec.mac, mac);
        inet_ntop(AF_INET, &st->spec.address, addr, sizeof(addr));
        inet_ntop(AF_INET, &st->spec.network, net, sizeof(net));
        snprintf(cidr, sizeof(cidr), "%s/%u", net, st->spec.prefixlen);
        k = sd_bus_message_open_container(r, 'a', "{sv}");
        if (k >= 0)
                k = append_sv(r, "id", "u", st->spec.id);
        if (k >= 0)
                k = append_sv(r, "name", "s", st->spec.name);
        if (k >= 0)
                k = append_sv(r, "macAddress", "s", mac);
        if (k >= 0)
                k = append_sv(r, "address", "s", addr);
        if (k >= 0)
                k = append_sv(r, "cidr", "s", cidr);
        if (k >= 0 && st->spec.mtu > 0)
                k = append_sv(r, "mtu", "u", st->spec.mtu);
        if (k >= 0)
                k = append_sv(r, "state", "s", nic_outcome_to_string(st->outcome));
        if (k >= 0)
                k = append_sv(r, "message", "s", st->message);
        if (k >= 0 && st->drift.usec)
                k = append_drift(r, &st->drift);
        if (k >= 0)
                k = sd_bus_message_close_container(r);
        return k;
}

static int property_interfaces(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *ret_error) {
        Manager *m = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < m->n_status; i++)
                r = append_status(reply, &m->status[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int property_string(sd_bus *bus, const char *path, const char *interface,
                           const char *property, sd_bus_message *reply, void *userdata,
                           sd_bus_error *ret_error) {
        Manager *m = userdata;
        const char *v = "";

        if (streq(property, "Version"))
                v = PACKAGE_VERSION;
        else if (streq(property, "State"))
                v = m->overall;
        else if (streq(property, "LastError"))
                v = m->last_error;
        else if (streq(property, "Persistence"))
                v = persist_backend_to_string(m->backend);
        else if (streq(property, "InstanceId"))
                v = m->instance_id;
        return sd_bus_message_append(reply, "s", v);
}

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Interfaces", "aa{sv}", property_interfaces, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastApply", "t", NULL, offsetof(Manager, last_apply_usec),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastError", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistence", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("InstanceId", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Apply",
                                SD_BUS_ARGS("aa{sv}", interfaces, "a{sv}", options),
                                SD_BUS_RESULT("s", state, "aa{sv}", results), method_apply,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Plan", SD_BUS_ARGS("aa{sv}", interfaces, "a{sv}", options),
                                SD_BUS_RESULT("aa{sv}", changes), method_plan,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_ARGS("a{sv}", options),
                                SD_BUS_RESULT("aa{sv}", results), method_remove,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

void manager_bus_drop_calls(Manager *m) {
        while (m->calls) {
                ChangeCall *c = m->calls;

                calls_unlink(m, c);
                change_call_free(c);
        }
}

int manager_bus_setup(Manager *m) {
        int r;

        r = sd_bus_open_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_add_object_vtable(m->bus, NULL, AGENT_OBJECT_PATH, AGENT_INTERFACE,
                                     agent_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the D-Bus object: %m");
        /* Without its bus multinicd is of no use: end, and let systemd start it again. */
        r = sd_bus_set_exit_on_disconnect(m->bus, true);
        if (r >= 0)
                r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_request_name(m->bus, AGENT_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to own %s: %m", AGENT_BUS_NAME);
        return 0;
}
