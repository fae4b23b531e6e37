/* The MultiNicNodeConfig status the bridge writes: state, conditions, per-NIC outcomes. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct StatusInput {
        const char *state;    /* Pending, InProgress, Configured or Failed */
        int64_t generation;   /* the generation this status is about */
        const char *reason;   /* CamelCase, for the conditions */
        const char *message;
        const cJSON *results; /* multinicd's per-NIC results, or NULL to keep the old ones */
        const char *now;      /* RFC 3339 */
        const cJSON *spec_interfaces; /* the spec's list, for interfacesReady; NULL: none */
        bool processed; /* the spec was just handled (applied or refused): lastProcessed is now */
} StatusInput;

/* A new status; each condition keeps its lastTransitionTime unless its status changes. */
cJSON *status_build(const cJSON *old, const StatusInput *in);

/* Whether two statuses say the same thing; lastProcessed does not count. */
bool status_same(const cJSON *a, const cJSON *b);

/* The current time as Kubernetes writes it, e.g. 2026-12-03T18:41:52Z. */
void status_now(char ret[32]);
