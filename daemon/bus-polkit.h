/* Asking polkit, without blocking, whether the sender of a D-Bus call may do an action. */
#pragma once

#include <systemd/sd-bus.h>

#define POLKIT_ACTION_APPLY "io.multinic.agent1.apply"
#define POLKIT_ACTION_REMOVE "io.multinic.agent1.remove"

typedef enum PolkitVerdict {
        POLKIT_ALLOWED,
        POLKIT_DENIED,
        POLKIT_CHALLENGE,   /* allowed only after the caller authenticates */
        POLKIT_UNAVAILABLE, /* polkit is not on the bus */
        POLKIT_FAILED,      /* no usable answer: a timeout, an error, a malformed reply */
} PolkitVerdict;

/* Sends CheckAuthorization for the sender of call and action; callback gets polkit's reply.
 * User interaction is allowed when call allows interactive authorization. */
int polkit_check_async(sd_bus_message *call, const char *action,
                       sd_bus_message_handler_t callback, void *userdata, sd_bus_slot **ret_slot);

/* The verdict in polkit's reply; for POLKIT_UNAVAILABLE and POLKIT_FAILED, ret_reason says why
 * (valid as long as reply). */
PolkitVerdict polkit_verdict_from_reply(sd_bus_message *reply, const char **ret_reason);

/* "polkit-allowed", "polkit-denied", ...: the verdict as the log's MULTINIC_AUTHORIZATION=. */
const char *polkit_verdict_to_string(PolkitVerdict v);
