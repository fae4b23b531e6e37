/* The D-Bus face of multinicd: method handlers, properties and error names. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>

#include "config.h"

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

/* Root may change the host. The decision uses what the bus daemon vouches for, never what
 * /proc says about a PID that may have been reused; the uid and PID are for the log only. */
static int caller_check(sd_bus_message *m, const char *method, uint32_t *ret_uid,
                        uint32_t *ret_pid, sd_bus_error *ret_error) {
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

        r = sd_bus_query_sender_privilege(m, -1);
        if (r < 0)
                return r;
        /* TODO: ask polkit for io.multinic.agent1.apply/remove (the polkit integration comes
         * with the host packaging); until then only root may change the host. */
        if (r == 0) {
                log_call(method, *ret_uid, *ret_pid, "denied");
                return sd_bus_error_setf(ret_error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s needs root (uid 0); caller has uid %u", method,
                                         (unsigned) uid);
        }
        return 1;
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

/* Sends PropertiesChanged for what the last call changed: a no-op Apply only moves LastApply. */
static void emit_changed(Manager *mgr) {
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
                if (mgr->props_changed & props[i].bit)
                        names[n++] = props[i].name;
        names[n] = NULL;
        mgr->props_changed = 0;
        if (n == 0)
                return;
        r = sd_bus_emit_properties_changed_strv(mgr->bus, AGENT_OBJECT_PATH, AGENT_INTERFACE,
                                                names);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged, ignoring: %m");
}

/* Apply and Remove: read and check the arguments, authorize, change, log, signal, reply. */
static int method_change(sd_bus_message *m, Manager *mgr, bool apply, sd_bus_error *ret_error) {
        const char *method = apply ? "Apply" : "Remove";
        _cleanup_(spec_done) Spec spec;
        _cleanup_(call_result_done) CallResult c = {};
        uint32_t uid, pid;
        Error e = {};
        int r;

        spec_init(&spec);
        r = bus_read_spec(m, apply, &spec, &e);
        if (r < 0)
                return e.kind ? reply_error(ret_error, &e, r) : r;
        r = caller_check(m, method, &uid, &pid, ret_error);
        if (r <= 0)
                return r;

        r = apply ? manager_apply(mgr, &spec, &c, &e) : manager_remove(mgr, &spec, &c, &e);
        log_call(method, uid, pid, r < 0 ? e.message : apply ? c.overall : "released");
        emit_changed(mgr);
        if (r < 0)
                return reply_error(ret_error, &e, r);
        return reply_results(m, &c, apply);
}

static int method_apply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        return method_change(m, userdata, true, ret_error);
}

static int method_remove(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        return method_change(m, userdata, false, ret_error);
}

static int append_change(sd_bus_message *r, const Plan *p, const Action *a) {
        const NicPlan *n = &p->nics[a->nic];
        char mac[MAC_STRLEN], what[160];
        int k;

        mac_format(n->mac, mac);
        action_describe(a, what, sizeof(what));
        k = sd_bus_message_open_container(r, 'a', "{sv}");
        if (k >= 0)
                k = append_sv(r, "macAddress", "s", mac);
        if (k >= 0)
                k = append_sv(r, "name", "s", n->name);
        if (k >= 0)
                k = append_sv(r, "action", "s", action_type_to_string(a->type));
        if (k >= 0)
                k = append_sv(r, "detail", "s", what);
        if (k >= 0)
                k = sd_bus_message_close_container(r);
        return k;
}

/* A NIC that Apply would fail without changing it: Plan says so, so that an empty answer
 * really means Apply would neither change nor fail anything. */
static int append_failure(sd_bus_message *r, const NicPlan *n) {
        char mac[MAC_STRLEN];
        int k;

        mac_format(n->mac, mac);
        k = sd_bus_message_open_container(r, 'a', "{sv}");
        if (k >= 0)
                k = append_sv(r, "macAddress", "s", mac);
        if (k >= 0)
                k = append_sv(r, "name", "s", n->name);
        if (k >= 0)
                k = append_sv(r, "action", "s", "fail");
        if (k >= 0)
                k = append_sv(r, "detail", "s", n->message);
        if (k >= 0)
                k = sd_bus_message_close_container(r);
        return k;
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
                        r = append_failure(reply, &p.nics[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        plan_done(&p);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
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
        if (k >= 0)
                k = sd_bus_message_close_container(r);
        return k;
}

static int property_interfaces(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *ret_error) {
        Manager *m = userdata;
        int r;

        /* TODO: report each NIC's observed kernel state and drift here (drift detection comes
         * with the netlink event monitor); this is the outcome of the last call. */
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
