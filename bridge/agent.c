/* multinicd's D-Bus API from the bridge: Apply, Remove and the properties, as JSON. */
#include <errno.h>
#include <string.h>

#include "agent-bus.h"
#include "agent.h"
#include "bus-json.h"
#include "cjson-util.h"
#include "spec-bus.h"
#include "spec-json.h"

#define CALL_TIMEOUT_USEC (120ULL * 1000000ULL)

void agent_reply_done(AgentReply *r) {
        cJSON_Delete(r->reply);
        r->reply = NULL;
}

static void reply_set(AgentReply *r, AgentOutcome o, const char *reason, const char *message) {
        r->outcome = o;
        snprintf(r->reason, sizeof(r->reason), "%s", reason);
        snprintf(r->message, sizeof(r->message), "%s", message);
}

/* A call that failed on this side (no memory, an answer not of the API's types): the reply says
 * why all the same, since the caller's log line and event carry its message. */
static int reply_errno(AgentReply *r, int k, const char *what, const char *method) {
        char message[sizeof(r->message)];

        snprintf(message, sizeof(message), "%s %s: %s", what, method, strerror(-k));
        reply_set(r, AGENT_UNAVAILABLE, "DaemonUnavailable", message);
        return k;
}

/* multinicd's errors that the bridge tells apart: a spec or host that refuses it (a retry of
 * the same spec cannot help), and a daemon too busy for now (a retry can). */
static const struct {
        const char *name, *reason;
        AgentOutcome outcome;
} agent_errors[] = {
        { AGENT_ERROR_PREFIX "InvalidSpec", "InvalidSpec", AGENT_REFUSED },
        { AGENT_ERROR_PREFIX "InstanceMismatch", "InstanceMismatch", AGENT_REFUSED },
        { AGENT_ERROR_PREFIX "InterfaceInUse", "InterfaceInUse", AGENT_REFUSED },
        { AGENT_ERROR_PREFIX "Busy", "DaemonBusy", AGENT_UNAVAILABLE },
};

/* The daemon's verdict on the call: its error names decide whether a retry can help. */
static void reply_from_error(AgentReply *r, const sd_bus_error *error, int k) {
        for (size_t i = 0; i < ELEMENTSOF(agent_errors); i++)
                if (sd_bus_error_has_name(error, agent_errors[i].name)) {
                        reply_set(r, agent_errors[i].outcome, agent_errors[i].reason,
                                  error->message ?: error->name);
                        return;
                }
        /* Retried all the same, but named apart: a denied call needs the polkit rule or the
         * bridge's user fixed, not a daemon started. */
        reply_set(r, AGENT_UNAVAILABLE,
                  sd_bus_error_has_names(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED)
                          ? "AccessDenied"
                          : "DaemonUnavailable",
                  error->message ?: strerror(k < 0 ? -k : EIO));
}

static int read_reply(sd_bus_message *m, const char *const *names, AgentReply *r) {
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        int k;

        if (!o)
                return -ENOMEM;
        for (const char *const *n = names; *n; n++) {
                cJSON *v;

                k = bus_message_read_json(m, &v);
                if (k < 0)
                        return k;
                if (!cJSON_AddItemToObject(o, *n, v)) {
                        cJSON_Delete(v);
                        return -ENOMEM;
                }
        }
        r->reply = TAKE_PTR(o);
        r->outcome = AGENT_OK;
        return 0;
}

static int call(sd_bus *bus, sd_bus_message *m, const char *const *names, AgentReply *r) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int k;

        k = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &error, &reply);
        if (k < 0) {
                reply_from_error(r, &error, k);
                return 0;
        }
        k = read_reply(reply, names, r);
        if (k < 0)
                return reply_errno(r, k, "reading multinicd's answer to",
                                   sd_bus_message_get_member(m));
        return 0;
}

int agent_apply(sd_bus *bus, const cJSON *object, AgentReply *r) {
        static const char *const names[] = { "state", "results", NULL };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(spec_done) Spec spec;
        Error e = {};
        char message[sizeof(((AgentReply *) NULL)->message)];
        int k;

        *r = (AgentReply) {};
        spec_init(&spec);
        k = spec_from_json(object, &spec, &e);
        if (k >= 0)
                k = spec_validate(&spec, &e);
        if (k < 0) {
                if (e.kind == ERROR_KIND_NONE)
                        return reply_errno(r, k, "reading the spec for", "Apply");
                snprintf(message, sizeof(message), "spec.%.500s", e.message);
                reply_set(r, AGENT_REFUSED, "InvalidSpec", message);
                return 0;
        }
        k = sd_bus_message_new_method_call(bus, &m, AGENT_BUS_NAME, AGENT_OBJECT_PATH,
                                           AGENT_INTERFACE, "Apply");
        if (k >= 0)
                k = spec_bus_append(m, &spec);
        if (k < 0)
                return reply_errno(r, k, "building the call of", "Apply");
        return call(bus, m, names, r);
}

int agent_remove(sd_bus *bus, AgentReply *r) {
        static const char *const names[] = { "results", NULL };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        *r = (AgentReply) {};
        k = sd_bus_message_new_method_call(bus, &m, AGENT_BUS_NAME, AGENT_OBJECT_PATH,
                                           AGENT_INTERFACE, "Remove");
        if (k >= 0)
                k = sd_bus_message_append(m, "a{sv}", 0);
        if (k < 0)
                return reply_errno(r, k, "building the call of", "Remove");
        return call(bus, m, names, r);
}

int agent_properties(sd_bus *bus, cJSON **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int k;

        k = sd_bus_call_method(bus, AGENT_BUS_NAME, AGENT_OBJECT_PATH,
                               "org.freedesktop.DBus.Properties", "GetAll", &error, &reply, "s",
                               AGENT_INTERFACE);
        if (k < 0)
                return k;
        return bus_message_read_json(reply, ret);
}
