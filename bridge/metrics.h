/* The bridge's /metrics (Prometheus text), /healthz and /readyz, served on one port. */
#pragma once

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define METRICS_BUCKETS 10

typedef enum ApplyResult {
        APPLY_CONFIGURED,
        APPLY_PENDING,
        APPLY_FAILED,
        APPLY_ERROR, /* no answer from multinicd */
        _APPLY_RESULT_MAX,
} ApplyResult;

typedef struct Metrics {
        pthread_mutex_t lock;
        uint64_t applies[_APPLY_RESULT_MAX];
        uint64_t buckets[METRICS_BUCKETS]; /* apply durations, cumulative at render time */
        uint64_t count;
        double sum;
        uint64_t watch_restarts, api_errors;
        cJSON *interfaces; /* the last interfaceStatuses written */
        atomic_bool ready; /* the first list succeeded */
        void *httpd;
} Metrics;

void metrics_init(Metrics *m);
void metrics_done(Metrics *m);
int metrics_serve(Metrics *m, uint16_t port); /* 0: no server */

void metrics_apply(Metrics *m, ApplyResult result, double seconds);
void metrics_watch_restart(Metrics *m);
void metrics_api_error(Metrics *m);
void metrics_set_interfaces(Metrics *m, const cJSON *interface_statuses);

/* The Prometheus text exposition of the current values. */
char *metrics_render(Metrics *m);
