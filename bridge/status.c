/* Building the status subresource, following the Kubernetes API conventions for conditions. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cjson-util.h"
#include "status.h"

void status_now(char ret[32]) {
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(ret, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const cJSON *find_condition(const cJSON *old, const char *type) {
        const cJSON *c;

        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(old, "conditions"))
                if (streq_ptr(json_string(c, "type"),
                              type))
                        return c;
        return NULL;
}

static cJSON *condition(const cJSON *old, const char *type, bool value, const char *reason,
                        const char *message, const StatusInput *in) {
        const cJSON *prev = find_condition(old, type);
        const char *status = value ? "True" : "False";
        const char *since = in->now;
        cJSON *c = cJSON_CreateObject();

        if (prev && streq_ptr(json_string(prev, "status"),
                              status)) {
                const char *t = json_string(prev, "lastTransitionTime");
                if (t)
                        since = t;
        }
        if (!c || !cJSON_AddStringToObject(c, "type", type) ||
            !cJSON_AddStringToObject(c, "status", status) ||
            !cJSON_AddNumberToObject(c, "observedGeneration", (double) in->generation) ||
            !cJSON_AddStringToObject(c, "lastTransitionTime", since) ||
            !cJSON_AddStringToObject(c, "reason", reason) ||
            !cJSON_AddStringToObject(c, "message", message ? message : "")) {
                cJSON_Delete(c);
                return NULL;
        }
        return c;
}

static bool any_failed(const cJSON *results) {
        const cJSON *r;

        cJSON_ArrayForEach(r, results)
                if (streq_ptr(json_string(r, "state"),
                              "failed"))
                        return true;
        return false;
}

/* The NIC's state and message as the status tells them: an Apply's "unchanged" NIC is a
 * configured one, and a message that only repeats the state (multinicd's filler for none) is
 * left empty, so that an Apply that changed nothing and multinicd's own view of the NIC read
 * the same. */
static bool interface_status_add_state(cJSON *o, const cJSON *r) {
        const char *state = json_string(r, "state"), *message = json_string(r, "message");

        if (streq_ptr(message, state))
                message = "";
        if (streq_ptr(state, "unchanged"))
                state = "configured";
        return (!state || cJSON_AddStringToObject(o, "state", state)) &&
               (!message || cJSON_AddStringToObject(o, "message", message));
}

/* Only the keys the status schema has: id, name, macAddress, state, message; and only the NICs
 * of the spec: one that was just released is named by the Applied event, not kept here. */
static cJSON *interface_statuses(const cJSON *results) {
        static const char *const keys[] = { "id", "name", "macAddress" };
        cJSON *arr = cJSON_CreateArray();
        const cJSON *r;

        if (!arr)
                return NULL;
        cJSON_ArrayForEach(r, results) {
                cJSON *o;

                if (streq_ptr(json_string(r, "state"), "removed"))
                        continue;
                o = cJSON_CreateObject();
                if (!o || !cJSON_AddItemToArray(arr, o)) {
                        cJSON_Delete(o);
                        goto fail;
                }
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, keys[i]);

                        if (v && !cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, true)))
                                goto fail;
                }
                if (!interface_status_add_state(o, r))
                        goto fail;
        }
        return arr;
fail:
        cJSON_Delete(arr);
        return NULL;
}

static bool add_conditions(cJSON *st, const cJSON *old, const StatusInput *in, bool degraded) {
        cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
        bool ready = streq(in->state, "Configured") && !degraded;
        cJSON *c;

        if (!conds)
                return false;
        c = condition(old, "Ready", ready, in->reason, in->message, in);
        if (!c || !cJSON_AddItemToArray(conds, c)) {
                cJSON_Delete(c);
                return false;
        }
        c = condition(old, "Degraded", degraded, degraded ? in->reason : "AsExpected",
                      degraded ? in->message : "", in);
        if (!c || !cJSON_AddItemToArray(conds, c)) {
                cJSON_Delete(c);
                return false;
        }
        return true;
}

/* Whether the NIC with this MAC (any case, as the spec may write it) is configured. */
static bool mac_configured(const cJSON *statuses, const char *mac) {
        const cJSON *st;

        cJSON_ArrayForEach(st, statuses)
                if (mac && strcasecmp(json_string(st, "macAddress") ?: "", mac) == 0)
                        return streq_ptr(json_string(st, "state"), "configured");
        return false;
}

/* "configured/total" over the spec's NICs: a column that kubectl can show, as a JSONPath over
 * the list would show the first NIC only. */
static bool add_interfaces_ready(cJSON *st, const cJSON *statuses, const cJSON *spec) {
        unsigned total = 0, ready = 0;
        const cJSON *e;
        char text[32];

        if (!cJSON_IsArray(spec))
                return true;
        cJSON_ArrayForEach(e, spec) {
                total++;
                if (mac_configured(statuses, json_string(e, "macAddress")))
                        ready++;
        }
        snprintf(text, sizeof(text), "%u/%u", ready, total);
        return cJSON_AddStringToObject(st, "interfacesReady", text);
}

/* When the spec was last handled: now, or as the old status says (absent until the first). */
static bool add_last_processed(cJSON *st, const cJSON *old, const StatusInput *in) {
        const char *when = in->processed ? in->now : json_string(old, "lastProcessed");

        return !when || cJSON_AddStringToObject(st, "lastProcessed", when);
}

cJSON *status_build(const cJSON *old, const StatusInput *in) {
        _cleanup_(cJSON_Deletep) cJSON *st = cJSON_CreateObject();
        const cJSON *results = in->results;

        bool degraded;
        cJSON *ifs;

        if (!results)
                results = cJSON_GetObjectItemCaseSensitive(old, "interfaceStatuses");
        degraded = streq(in->state, "Failed") || any_failed(results);

        if (!st || !cJSON_AddStringToObject(st, "state", in->state) ||
            !cJSON_AddNumberToObject(st, "observedGeneration", (double) in->generation) ||
            !add_last_processed(st, old, in) || !add_conditions(st, old, in, degraded))
                return NULL;
        ifs = interface_statuses(results);
        if (!ifs || !cJSON_AddItemToObject(st, "interfaceStatuses", ifs)) {
                cJSON_Delete(ifs);
                return NULL;
        }
        if (!add_interfaces_ready(st, ifs, in->spec_interfaces))
                return NULL;
        return TAKE_PTR(st);
}

bool status_same(const cJSON *a, const cJSON *b) {
        _cleanup_(cJSON_Deletep) cJSON *x = cJSON_Duplicate(a, true), *y = cJSON_Duplicate(b, true);

        if (!x || !y)
                return x == y;
        cJSON_DeleteItemFromObjectCaseSensitive(x, "lastProcessed");
        cJSON_DeleteItemFromObjectCaseSensitive(y, "lastProcessed");
        return cJSON_Compare(x, y, true);
}
