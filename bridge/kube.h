/* A small Kubernetes API client over libcurl: in-cluster configuration, requests, watches. */
#pragma once

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct KubeConfig {
        char *api_url;    /* https://host:port, no trailing slash */
        char *token_file; /* read again for every request, so a rotated token is picked up */
        char *ca_file;
        char *namespace;
        char *node_name;
} KubeConfig;

/* Fills what is unset from the environment and the service account, as in a pod. */
int kube_config_complete(KubeConfig *c, char *err, size_t errlen);
void kube_config_done(KubeConfig *c);

typedef struct KubeResponse {
        long code; /* HTTP status; 0 when no answer came */
        cJSON *body; /* parsed JSON, or NULL */
        char error[256]; /* transport error, or the Status message of a failed request */
} KubeResponse;

void kube_response_done(KubeResponse *r);

/* One request; body may be NULL. Returns 0 when an HTTP answer came (look at code), or a
 * negative errno with r->error set when none did. */
int kube_request(const KubeConfig *c, const char *method, const char *path,
                 const char *content_type, const char *body, KubeResponse *r);

/* How much longer than its timeoutSeconds a watch may stay silent before the connection is
 * taken for dead. */
#define KUBE_WATCH_MARGIN_SECONDS 15

/* A watch asked to end after timeout_seconds: calls on_line for every line of the stream until
 * it ends, on_line fails, or *stop becomes true. Returns the HTTP code (err has the Status
 * message when it is not a 2xx), or a negative errno with err set. */
int kube_watch(const KubeConfig *c, const char *path, unsigned timeout_seconds,
               atomic_bool *stop, int (*on_line)(const char *line, size_t len, void *userdata),
               void *userdata, char *err, size_t errlen);

/* The path of the node's object, of its status, or of the collection (name NULL). */
int kube_path(const KubeConfig *c, const char *name, const char *sub, char **ret);
