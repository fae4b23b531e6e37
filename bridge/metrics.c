/* Counters kept under a lock, rendered on request by libmicrohttpd's own thread. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson-util.h"
#include "log.h"
#include "metrics.h"
#include "text.h"
#include "util.h"

static const double bucket_bounds[METRICS_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25,  0.5,  1,     2.5,  10 };
static const char *const result_names[_APPLY_RESULT_MAX] = { "configured", "pending", "failed",
                                                            "error" };

void metrics_init(Metrics *m) {
        *m = (Metrics) {};
        pthread_mutex_init(&m->lock, NULL);
}

void metrics_done(Metrics *m) {
        if (m->httpd)
                MHD_stop_daemon(m->httpd);
        cJSON_Delete(m->interfaces);
        pthread_mutex_destroy(&m->lock);
}

void metrics_apply(Metrics *m, ApplyResult result, double seconds) {
        pthread_mutex_lock(&m->lock);
        m->applies[result]++;
        for (size_t i = 0; i < METRICS_BUCKETS; i++)
                if (seconds <= bucket_bounds[i]) {
                        m->buckets[i]++;
                        break;
                }
        m->count++;
        m->sum += seconds;
        pthread_mutex_unlock(&m->lock);
}

void metrics_watch_restart(Metrics *m) {
        pthread_mutex_lock(&m->lock);
        m->watch_restarts++;
        pthread_mutex_unlock(&m->lock);
}

void metrics_api_error(Metrics *m) {
        pthread_mutex_lock(&m->lock);
        m->api_errors++;
        pthread_mutex_unlock(&m->lock);
}

void metrics_set_interfaces(Metrics *m, const cJSON *interface_statuses) {
        cJSON *copy = cJSON_Duplicate(interface_statuses, true);

        pthread_mutex_lock(&m->lock);
        cJSON_Delete(m->interfaces);
        m->interfaces = copy;
        pthread_mutex_unlock(&m->lock);
}

static void render_interfaces(FILE *f, const cJSON *interfaces) {
        const cJSON *i;

        fprintf(f, "# HELP multinic_bridge_interface_state State of each NIC as last reported.\n"
                   "# TYPE multinic_bridge_interface_state gauge\n");
        cJSON_ArrayForEach(i, interfaces) {
                const char *name = json_string(i, "name");
                const char *mac = json_string(i, "macAddress");
                const char *state = json_string(i, "state");

                /* Names, MACs and states are validated identifiers: nothing to escape. */
                fprintf(f,
                        "multinic_bridge_interface_state{name=\"%s\",mac=\"%s\",state=\"%s\"} 1\n",
                        name ? name : "", mac ? mac : "", state ? state : "");
        }
}

char *metrics_render(Metrics *m) {
        char *buf = NULL;
        size_t len = 0, cumulative = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        pthread_mutex_lock(&m->lock);
        fprintf(f, "# HELP multinic_bridge_applies_total Apply calls by result.\n"
                   "# TYPE multinic_bridge_applies_total counter\n");
        for (size_t i = 0; i < _APPLY_RESULT_MAX; i++)
                fprintf(f, "multinic_bridge_applies_total{result=\"%s\"} %lu\n", result_names[i],
                        (unsigned long) m->applies[i]);
        fprintf(f, "# HELP multinic_bridge_apply_duration_seconds Time of one Apply call.\n"
                   "# TYPE multinic_bridge_apply_duration_seconds histogram\n");
        for (size_t i = 0; i < METRICS_BUCKETS; i++) {
                cumulative += m->buckets[i];
                fprintf(f, "multinic_bridge_apply_duration_seconds_bucket{le=\"%g\"} %zu\n",
                        bucket_bounds[i], cumulative);
        }
        fprintf(f, "multinic_bridge_apply_duration_seconds_bucket{le=\"+Inf\"} %lu\n"
                   "multinic_bridge_apply_duration_seconds_sum %.6f\n"
                   "multinic_bridge_apply_duration_seconds_count %lu\n",
                (unsigned long) m->count, m->sum, (unsigned long) m->count);
        fprintf(f, "# HELP multinic_bridge_watch_restarts_total Watches started again.\n"
                   "# TYPE multinic_bridge_watch_restarts_total counter\n"
                   "multinic_bridge_watch_restarts_total %lu\n"
                   "# HELP multinic_bridge_api_errors_total Failed Kubernetes API requests.\n"
                   "# TYPE multinic_bridge_api_errors_total counter\n"
                   "multinic_bridge_api_errors_total %lu\n",
                (unsigned long) m->watch_restarts, (unsigned long) m->api_errors);
        render_interfaces(f, m->interfaces);
        pthread_mutex_unlock(&m->lock);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, char *text, bool owned,
                               const char *type) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
                strlen(text), text, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;

        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, "Content-Type", type);
        ret = MHD_queue_response(c, code, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state) {
        Metrics *m = cls;
        char *text;

        if (!streq(method, "GET") && !streq(method, "HEAD"))
                return respond(c, 405, (char *) "method not allowed\n", false, "text/plain");
        if (streq(url, "/healthz"))
                return respond(c, 200, (char *) "ok\n", false, "text/plain");
        if (streq(url, "/readyz"))
                return atomic_load(&m->ready)
                               ? respond(c, 200, (char *) "ok\n", false, "text/plain")
                               : respond(c, 503, (char *) "waiting for the first list\n", false,
                                         "text/plain");
        if (streq(url, "/metrics")) {
                text = metrics_render(m);
                if (!text)
                        return respond(c, 500, (char *) "out of memory\n", false, "text/plain");
                return respond(c, 200, text, true, "text/plain; version=0.0.4");
        }
        return respond(c, 404, (char *) "not found\n", false, "text/plain");
}

/* libmicrohttpd's own messages (a port taken, a client gone mid-request) as log lines like
 * every other, instead of plain text on stderr. */
_printf_(2, 0) static void httpd_log(void *cls, const char *fmt, va_list ap) {
        char text[512];

        vsnprintf(text, sizeof(text), fmt, ap);
        strip_trailing_space(text, strlen(text));
        blog(BLOG_WARNING, 0, "HTTP server for /metrics", "detail", text, NULL);
}

int metrics_serve(Metrics *m, uint16_t port) {
        if (port == 0)
                return 0;
        m->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port,
                                    NULL, NULL, handle, m, MHD_OPTION_EXTERNAL_LOGGER, httpd_log,
                                    NULL, MHD_OPTION_END);
        return m->httpd ? 0 : -EADDRINUSE;
}
