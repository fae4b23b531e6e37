/* Calls to multinicd over the system bus, and what the bridge learns from its signals. */
#pragma once

#include <cjson/cJSON.h>
#include <systemd/sd-bus.h>

typedef enum AgentOutcome {
        AGENT_OK,
        AGENT_REFUSED,     /* the spec or the host refuses it: retrying the same spec won't help */
        AGENT_UNAVAILABLE, /* no answer, denied, or busy: retry with backoff */
} AgentOutcome;

typedef struct AgentReply {
        AgentOutcome outcome;
        cJSON *reply;      /* Apply: {"state", "results"}; Remove: {"results"} */
        char reason[64];   /* CamelCase, for conditions and events */
        char message[512];
} AgentReply;

void agent_reply_done(AgentReply *r);

/* Apply of the object's spec (with its instanceId). A spec that fails the shared validation is
 * refused here already, with the same message multinicd would give. Both calls return 0 with
 * ret filled from multinicd's answer or error, or a negative errno for a call that failed on
 * this side (no memory, an answer that cannot be read), with ret's reason and message saying
 * why all the same. */
int agent_apply(sd_bus *bus, const cJSON *object, AgentReply *ret);
int agent_remove(sd_bus *bus, AgentReply *ret);
/* State and Interfaces properties: {"State": ..., "Interfaces": [...]}. */
int agent_properties(sd_bus *bus, cJSON **ret);
