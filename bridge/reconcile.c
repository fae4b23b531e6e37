/* Reconciling the node's MultiNicNodeConfig: finalizer, Apply, status, events; Remove on
 * deletion. Runs on the main loop; the Kubernetes requests are short and synchronous. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "backoff.h"
#include "bridge.h"
#include "cjson-util.h"
#include "log.h"
#include "status.h"

static const cJSON *meta(const cJSON *o, const char *key) {
        return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"),
                                                key);
}

static const char *meta_str(const cJSON *o, const char *key) {
        return cJSON_GetStringValue(meta(o, key));
}

static int64_t generation(const cJSON *o) {
        const cJSON *g = meta(o, "generation");

        return cJSON_IsNumber(g) ? (int64_t) g->valuedouble : 0;
}

static bool has_finalizer(const cJSON *o) {
        const cJSON *f;

        cJSON_ArrayForEach(f, meta(o, "finalizers"))
                if (streq_ptr(cJSON_GetStringValue(f), BRIDGE_FINALIZER))
                        return true;
        return false;
}

/* A merge patch of the object or its status; the answer becomes the object as last seen. */
static int patch(Bridge *b, const char *sub, cJSON *body) {
        _cleanup_(freep) char *path = NULL, *text = cJSON_PrintUnformatted(body);
        KubeResponse r;
        int k;

        if (!text || kube_path(&b->kube, meta_str(b->object, "name"), sub, &path) < 0)
                return -ENOMEM;
        k = kube_request(&b->kube, "PATCH", path, "application/merge-patch+json", text, &r);
        if (k >= 0 && r.code == 200 && cJSON_IsObject(r.body)) {
                cJSON_Delete(b->object);
                b->object = TAKE_PTR(r.body);
        } else {
                metrics_api_error(&b->metrics);
                blog(BLOG_WARNING, k, "Patching the MultiNicNodeConfig failed", "detail",
                     r.error, NULL);
                k = r.code == 409 ? -EAGAIN : -EIO;
        }
        kube_response_done(&r);
        return k < 0 ? k : 0;
}

/* Finalizers in a merge patch replace the whole list, so the resourceVersion guards against
 * dropping one that another controller added meanwhile (409, then a fresh look). */
static int set_finalizer(Bridge *b, bool present) {
        _cleanup_(cJSON_Deletep) cJSON *body = cJSON_CreateObject();
        cJSON *md = cJSON_AddObjectToObject(body, "metadata");
        cJSON *list = cJSON_AddArrayToObject(md, "finalizers");
        const char *rv = meta_str(b->object, "resourceVersion");
        const cJSON *f;

        if (!list || !cJSON_AddStringToObject(md, "resourceVersion", rv ? rv : ""))
                return -ENOMEM;
        cJSON_ArrayForEach(f, meta(b->object, "finalizers"))
                if (!streq_ptr(cJSON_GetStringValue(f), BRIDGE_FINALIZER))
                        cJSON_AddItemToArray(list, cJSON_Duplicate(f, true));
        if (present)
                cJSON_AddItemToArray(list, cJSON_CreateString(BRIDGE_FINALIZER));
        return patch(b, NULL, body);
}

/* A Kubernetes Event on the object; failures to record one are only logged. */
static void post_event(Bridge *b, bool warning, const char *reason, const char *message) {
        _cleanup_(cJSON_Deletep) cJSON *e = cJSON_CreateObject();
        _cleanup_(freep) char *path = NULL, *text = NULL;
        cJSON *md, *obj, *src;
        char now[32];
        KubeResponse r;

        status_now(now);
        md = cJSON_AddObjectToObject(e, "metadata");
        obj = cJSON_AddObjectToObject(e, "involvedObject");
        src = cJSON_AddObjectToObject(e, "source");
        if (!md || !obj || !src)
                return;
        cJSON_AddStringToObject(e, "apiVersion", "v1");
        cJSON_AddStringToObject(e, "kind", "Event");
        cJSON_AddStringToObject(md, "generateName", meta_str(b->object, "name") ?: "multinic");
        cJSON_AddStringToObject(md, "namespace", b->kube.namespace);
        cJSON_AddStringToObject(obj, "apiVersion", "multinic.io/v1alpha1");
        cJSON_AddStringToObject(obj, "kind", "MultiNicNodeConfig");
        cJSON_AddStringToObject(obj, "name", meta_str(b->object, "name") ?: "");
        cJSON_AddStringToObject(obj, "namespace", b->kube.namespace);
        cJSON_AddStringToObject(obj, "uid", meta_str(b->object, "uid") ?: "");
        cJSON_AddStringToObject(obj, "resourceVersion",
                                meta_str(b->object, "resourceVersion") ?: "");
        cJSON_AddStringToObject(e, "reason", reason);
        cJSON_AddStringToObject(e, "message", message);
        cJSON_AddStringToObject(e, "type", warning ? "Warning" : "Normal");
        cJSON_AddStringToObject(src, "component", "multinic-bridge");
        cJSON_AddStringToObject(src, "host", b->kube.node_name);
        cJSON_AddStringToObject(e, "firstTimestamp", now);
        cJSON_AddStringToObject(e, "lastTimestamp", now);
        cJSON_AddNumberToObject(e, "count", 1);
        cJSON_AddStringToObject(e, "reportingComponent", "multinic-bridge");
        cJSON_AddStringToObject(e, "reportingInstance", b->kube.node_name);
        text = cJSON_PrintUnformatted(e);
        if (!text || asprintf(&path, "/api/v1/namespaces/%s/events", b->kube.namespace) < 0)
                return;
        if (kube_request(&b->kube, "POST", path, "application/json", text, &r) < 0 ||
            r.code >= 300) {
                metrics_api_error(&b->metrics);
                blog(BLOG_WARNING, 0, "Recording an event failed", "detail", r.error, NULL);
        }
        kube_response_done(&r);
}

/* What a status write says about the object `about` (the version whose spec was handled). */
typedef struct StatusWrite {
        const char *state, *reason, *message;
        const cJSON *results; /* NULL: keep the last ones */
        bool processed;       /* the spec was handled just now: lastProcessed moves */
} StatusWrite;

/* Writes the status unless it would say what it says already: 1 written, 0 not needed. */
static int write_status(Bridge *b, const cJSON *about, const StatusWrite *w) {
        _cleanup_(cJSON_Deletep) cJSON *body = cJSON_CreateObject();
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(b->object, "status");
        StatusInput in = {
                .state = w->state, .generation = generation(about), .reason = w->reason,
                .message = w->message, .results = w->results, .processed = w->processed,
                .spec_interfaces = cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(about, "spec"), "interfaces"),
        };
        char now[32];
        cJSON *st;

        status_now(now);
        in.now = now;
        st = status_build(old, &in);
        if (!body || !st) {
                cJSON_Delete(st);
                return -ENOMEM;
        }
        metrics_set_interfaces(&b->metrics,
                               cJSON_GetObjectItemCaseSensitive(st, "interfaceStatuses"));
        if (old && status_same(old, st)) {
                cJSON_Delete(st);
                return 0;
        }
        cJSON_AddItemToObject(body, "status", st);
        return patch(b, "status", body) < 0 ? -EIO : 1;
}

/* The conditions' reason for each outcome of an Apply that multinicd answered. */
static const char *const apply_reasons[] = {
        [APPLY_CONFIGURED] = "Configured",
        [APPLY_PENDING] = "InterfacesPending",
        [APPLY_FAILED] = "InterfaceFailed",
        [APPLY_ERROR] = "DaemonUnavailable",
};

static ApplyResult apply_result(const char *state) {
        if (streq_ptr(state, "Configured"))
                return APPLY_CONFIGURED;
        if (streq_ptr(state, "Pending"))
                return APPLY_PENDING;
        return APPLY_FAILED;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Bridge *b = userdata;

        b->retry = sd_event_source_unref(b->retry);
        b->force = true;
        bridge_reconcile(b);
        return 0;
}

/* A retry of what was done for generation gen; a newer one, or the deletion, does not wait for
 * it (bridge_set_object). */
static void schedule_retry(Bridge *b, int64_t gen) {
        unsigned ms = backoff_ms(++b->failures, b->retry_first_ms, b->retry_cap_ms);
        char in[16];

        if (b->retry)
                return;
        b->retry_generation = gen;
        b->retry_deleting = meta(b->object, "deletionTimestamp");
        (void) sd_event_add_time_relative(b->event, &b->retry, CLOCK_MONOTONIC,
                                          (uint64_t) ms * 1000, 0, on_retry, b);
        snprintf(in, sizeof(in), "%u", ms);
        blog(BLOG_INFO, 0, "Retrying later", "inMs", in, NULL);
}

void bridge_retry_cancel(Bridge *b) {
        b->retry = sd_event_source_disable_unref(b->retry);
        b->failures = 0;
}

/* A warning event for a failure that retries may repeat: one for a run of failures of a
 * generation, whatever their reasons, since the status says the latest one anyway. The run ends
 * when multinicd answers (warn_reset) or the object goes; a new generation is news of its own. */
static void warn_once(Bridge *b, int64_t gen, const char *reason, const char *message) {
        if (b->warned && b->warned_generation == gen)
                return;
        post_event(b, true, reason, message);
        b->warned = true;
        b->warned_generation = gen;
}

static void warn_reset(Bridge *b) {
        b->warned = false;
}

static void reconcile_delete(Bridge *b) {
        AgentReply r;
        int k;

        if (!has_finalizer(b->object))
                return;
        k = agent_remove(b->bus, &r);
        if (k < 0 || r.outcome != AGENT_OK) {
                blog(BLOG_WARNING, k, "Remove failed; keeping the finalizer", "reason", r.reason,
                     "detail", r.message, NULL);
                warn_once(b, generation(b->object), "RemoveFailed", r.message);
                agent_reply_done(&r);
                schedule_retry(b, generation(b->object));
                return;
        }
        warn_reset(b);
        agent_reply_done(&r);
        blog(BLOG_INFO, 0, "Released the node's NICs", "name", meta_str(b->object, "name"), NULL);
        post_event(b, false, "Removed", "multinicd released every NIC it managed");
        if (set_finalizer(b, false) < 0)
                schedule_retry(b, generation(b->object));
        else
                b->failures = 0;
}

/* The name the status gave the NIC with this MAC, or NULL. */
static const char *status_name(const cJSON *object, const char *mac) {
        const cJSON *st;

        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(
                                       cJSON_GetObjectItemCaseSensitive(object, "status"),
                                       "interfaceStatuses"))
                if (mac && streq_ptr(json_string(st, "macAddress"), mac))
                        return json_string(st, "name");
        return NULL;
}

/* "; released multinic1 (fa:16:3e:0a:17:3b, now ens5)" for each NIC the Apply released, for the
 * event: the status lists only the spec's NICs. multinicd names a released NIC by the name it
 * has again; the status before it knew it by the managed one. */
static void append_released(char *buf, size_t size, const cJSON *results, const cJSON *before) {
        size_t off = strlen(buf);
        bool first = true;
        const cJSON *r;

        cJSON_ArrayForEach(r, results) {
                const char *mac = json_string(r, "macAddress"), *now = json_string(r, "name");
                const char *was = status_name(before, mac);

                if (!streq_ptr(json_string(r, "state"), "removed") || off >= size)
                        continue;
                if (was && !streq_ptr(was, now))
                        off += (size_t) snprintf(buf + off, size - off, "%s %s (%s, now %s)",
                                                 first ? "; released" : ",", was, mac ?: "-",
                                                 now ?: "-");
                else
                        off += (size_t) snprintf(buf + off, size - off, "%s %s (%s)",
                                                 first ? "; released" : ",", now ?: "-",
                                                 mac ?: "-");
                first = false;
        }
}

/* Events and info lines only for an outcome that changed the status: a resync or a restart of
 * multinicd that finds everything as it was says nothing. */
static void apply_done(Bridge *b, const cJSON *obj, const AgentReply *r, double seconds) {
        const cJSON *results = cJSON_GetObjectItemCaseSensitive(r->reply, "results");
        const char *state = json_string(r->reply, "state");
        ApplyResult res = apply_result(state);
        char message[64], event[1024], g[24];
        int k;

        snprintf(message, sizeof(message), "multinicd: %s", state ? state : "no state");
        /* The released NICs only in the event, named from the status before this write: a
         * later Apply that releases nothing must read the same in the status. */
        snprintf(event, sizeof(event), "%s", message);
        append_released(event, sizeof(event), results, b->object);
        metrics_apply(&b->metrics, res, seconds);
        k = write_status(b, obj, &(StatusWrite) { .state = state ? state : "Failed",
                                                  .reason = apply_reasons[res],
                                                  .message = message, .results = results,
                                                  .processed = true });
        if (k < 0) {
                schedule_retry(b, generation(obj));
                return;
        }
        snprintf(g, sizeof(g), "%lld", (long long) generation(obj));
        if (k == 0) {
                blog(BLOG_DEBUG, 0, "Applied; the status says so already", "state", state,
                     "generation", g, NULL);
                return;
        }
        blog(res == APPLY_FAILED ? BLOG_WARNING : BLOG_INFO, 0, "Applied", "state", state,
             "generation", g, "detail", event, NULL);
        post_event(b, res == APPLY_FAILED, res == APPLY_FAILED ? "ApplyFailed" : "Applied",
                   event);
}

static void apply_refused(Bridge *b, const cJSON *obj, const AgentReply *r, double seconds) {
        int k;

        metrics_apply(&b->metrics, APPLY_FAILED, seconds);
        k = write_status(b, obj, &(StatusWrite) { .state = "Failed", .reason = r->reason,
                                                  .message = r->message, .processed = true });
        if (k == 0)
                return; /* refused before, and reported then */
        blog(BLOG_WARNING, 0, "multinicd refused the spec", "reason", r->reason, "detail",
             r->message, NULL);
        if (k < 0)
                schedule_retry(b, generation(obj)); /* for the status: the answer is the same */
        else
                post_event(b, true, r->reason, r->message);
}

/* No answer from multinicd, a denied call, or a busy one: Failed, a warning event for the
 * first of these failures in a run (warn_once), and a retry. */
static void apply_unavailable(Bridge *b, const cJSON *obj, const AgentReply *r, double seconds) {
        metrics_apply(&b->metrics, APPLY_ERROR, seconds);
        (void) write_status(b, obj, &(StatusWrite) { .state = "Failed", .reason = r->reason,
                                                     .message = r->message });
        blog(BLOG_WARNING, 0, "multinicd did not apply the spec", "reason", r->reason, "detail",
             r->message, NULL);
        warn_once(b, generation(obj), r->reason, r->message);
        schedule_retry(b, generation(obj));
}

/* Whether the status is about this generation already: then a forced apply (resync, retry,
 * multinicd restarted) writes no InProgress, so that an unchanged outcome writes nothing. */
static bool status_is_about(const cJSON *o, int64_t gen) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(o, "status"), "observedGeneration");

        return cJSON_IsNumber(g) && (int64_t) g->valuedouble == gen;
}

/* Applies the object as it is now. Status writes hand back newer versions of the object, so
 * the spec and generation are taken once, at the start. */
static void reconcile_apply(Bridge *b) {
        _cleanup_(cJSON_Deletep) cJSON *obj = cJSON_Duplicate(b->object, true);
        int64_t gen = generation(obj);
        uint64_t start = clock_usec(CLOCK_MONOTONIC);
        double took;
        AgentReply r;
        int k = 0;

        if (!obj)
                return;
        /* Written and answered before multinicd is called, so that the object shows the work
         * while it runs. */
        if (!status_is_about(obj, gen))
                k = write_status(b, obj, &(StatusWrite) { .state = "InProgress",
                                                          .reason = "Applying",
                                                          .message = "multinicd is applying "
                                                                     "the spec" });
        if (k >= 0)
                k = agent_apply(b->bus, obj, &r);
        if (k < 0) {
                blog(BLOG_ERROR, k, "Starting the Apply failed", NULL);
                schedule_retry(b, gen);
                return;
        }
        took = (double) (clock_usec(CLOCK_MONOTONIC) - start) / 1e6;
        if (r.outcome == AGENT_UNAVAILABLE) {
                apply_unavailable(b, obj, &r, took);
                agent_reply_done(&r);
                return;
        }
        warn_reset(b); /* multinicd answered */
        if (r.outcome == AGENT_OK)
                apply_done(b, obj, &r, took);
        else
                /* The same spec would be refused again: no retry until it changes. */
                apply_refused(b, obj, &r, took);
        agent_reply_done(&r);
        b->done_generation = gen;
        /* A status that could not be written is retried, each time later. */
        if (!b->retry)
                b->failures = 0;
}

void bridge_reconcile(Bridge *b) {
        /* A status write may answer with a newer version of the object (a new generation, or
         * its deletion): look again until there is nothing left to do. */
        for (unsigned i = 0; i < 8 && b->object && !b->retry; i++) {
                if (meta(b->object, "deletionTimestamp")) {
                        reconcile_delete(b);
                        return;
                }
                if (!has_finalizer(b->object) && set_finalizer(b, true) < 0) {
                        schedule_retry(b, generation(b->object));
                        return;
                }
                if (generation(b->object) == b->done_generation && !b->force)
                        return;
                b->force = false;
                reconcile_apply(b);
        }
}

void bridge_set_object(Bridge *b, cJSON *object) {
        cJSON_Delete(b->object);
        b->object = object;
        if (!object) {
                /* Gone: a new object of the same name starts from scratch. */
                b->done_generation = -1;
                bridge_retry_cancel(b);
                warn_reset(b);
                return;
        }
        /* A version that only echoes a write of ours leaves a pending retry alone. */
        if (b->retry && (generation(object) != b->retry_generation ||
                         (meta(object, "deletionTimestamp") && !b->retry_deleting)))
                bridge_retry_cancel(b);
        bridge_reconcile(b);
}

/* The first NIC multinicd reports failed (degraded by a competitor, say), or NULL. */
static const char *failed_message(const cJSON *interfaces) {
        const cJSON *i;

        cJSON_ArrayForEach(i, interfaces)
                if (streq_ptr(json_string(i, "state"), "failed"))
                        return json_string(i, "message") ?: "failed";
        return NULL;
}

/* A Warning event for each NIC that multinicd found changed behind its back (and healed) since
 * the last one told: what it found and what it wanted. */
static void post_drift_events(Bridge *b, const cJSON *interfaces) {
        uint64_t newest = b->drift_seen_usec;
        const cJSON *nic, *d;

        cJSON_ArrayForEach(nic, interfaces) {
                const cJSON *at = cJSON_GetObjectItemCaseSensitive(nic, "driftedAt");
                char message[600];
                size_t off;

                if (!cJSON_IsNumber(at) || (uint64_t) at->valuedouble <= b->drift_seen_usec)
                        continue;
                if ((uint64_t) at->valuedouble > newest)
                        newest = (uint64_t) at->valuedouble;
                off = (size_t) snprintf(message, sizeof(message), "%s (%s) was changed behind "
                                        "multinicd's back and healed:",
                                        json_string(nic, "name") ?: "-",
                                        json_string(nic, "macAddress") ?: "-");
                cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(nic, "drift"))
                        if (off < sizeof(message))
                                off += (size_t) snprintf(message + off, sizeof(message) - off,
                                                         " %s found %s, wanted %s;",
                                                         json_string(d, "field") ?: "-",
                                                         json_string(d, "found") ?: "-",
                                                         json_string(d, "wanted") ?: "-");
                blog(BLOG_WARNING, 0, "multinicd healed drift", "detail", message, NULL);
                post_event(b, true, "DriftHealed", message);
        }
        b->drift_seen_usec = newest;
}

/* multinicd's own view, after a change it made by itself (a pending NIC appeared, drift). */
void bridge_refresh_status(Bridge *b) {
        _cleanup_(cJSON_Deletep) cJSON *props = NULL;
        const cJSON *interfaces;
        const char *state, *failed;
        char message[600];

        if (!b->object || meta(b->object, "deletionTimestamp")) {
                /* No object to tell it on: drift until now is not told later either. */
                b->drift_seen_usec = clock_usec(CLOCK_REALTIME);
                return;
        }
        if (agent_properties(b->bus, &props) < 0)
                return;
        interfaces = cJSON_GetObjectItemCaseSensitive(props, "Interfaces");
        post_drift_events(b, interfaces);
        /* The status is the Apply's until that is done. */
        state = json_string(props, "State");
        if (generation(b->object) != b->done_generation || !state || streq(state, "Idle"))
                return;
        failed = failed_message(interfaces);
        snprintf(message, sizeof(message), "multinicd: %s%s%.500s", state, failed ? ": " : "",
                 failed ? failed : "");
        if (write_status(b, b->object,
                         &(StatusWrite) { .state = state,
                                          .reason = failed ? "InterfaceFailed"
                                                           : apply_reasons[apply_result(state)],
                                          .message = message, .results = interfaces }) > 0 &&
            failed)
                post_event(b, true, "Degraded", message);
}
