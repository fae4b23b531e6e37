/* The polkit client of multinicd: CheckAuthorization for a bus name, and its answer. */
#include "bus-polkit.h"
#include "util.h"

#define POLKIT_BUS_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_OBJECT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_FLAG_ALLOW_USER_INTERACTION 1U

int polkit_check_async(sd_bus_message *call, const char *action,
                       sd_bus_message_handler_t callback, void *userdata, sd_bus_slot **ret_slot) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *sender = sd_bus_message_get_sender(call);
        uint32_t flags = 0;
        int r;

        if (!sender)
                return -EBADMSG;
        if (sd_bus_message_get_allow_interactive_authorization(call) > 0)
                flags |= POLKIT_FLAG_ALLOW_USER_INTERACTION;

        r = sd_bus_message_new_method_call(sd_bus_message_get_bus(call), &m, POLKIT_BUS_NAME,
                                           POLKIT_OBJECT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r < 0)
                return r;
        /* The subject is the bus name: polkit asks the bus daemon who holds it, so a reused
         * PID cannot stand in for the caller. */
        r = sd_bus_message_append(m, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender,
                                  action);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{ss}us", 0, flags, "");
        if (r < 0)
                return r;
        return sd_bus_call_async(NULL, ret_slot, m, callback, userdata, 0);
}

static PolkitVerdict verdict_from_error(const sd_bus_error *e, const char **ret_reason) {
        *ret_reason = e->message ? e->message : e->name;
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return POLKIT_UNAVAILABLE;
        return POLKIT_FAILED;
}

PolkitVerdict polkit_verdict_from_reply(sd_bus_message *reply, const char **ret_reason) {
        int authorized, challenge, r;

        *ret_reason = NULL;
        if (sd_bus_message_is_method_error(reply, NULL))
                return verdict_from_error(sd_bus_message_get_error(reply), ret_reason);

        /* (bba{ss}): is_authorized, is_challenge, details (not needed here). */
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                *ret_reason = "polkit's reply is not (bba{ss})";
                return POLKIT_FAILED;
        }
        if (authorized)
                return POLKIT_ALLOWED;
        return challenge ? POLKIT_CHALLENGE : POLKIT_DENIED;
}

const char *polkit_verdict_to_string(PolkitVerdict v) {
        static const char *const names[] = {
                [POLKIT_ALLOWED] = "polkit-allowed",
                [POLKIT_DENIED] = "polkit-denied",
                [POLKIT_CHALLENGE] = "polkit-challenge",
                [POLKIT_UNAVAILABLE] = "polkit-unavailable",
                [POLKIT_FAILED] = "polkit-failed",
        };

        return (size_t) v < ELEMENTSOF(names) ? names[v] : "polkit-unknown";
}
