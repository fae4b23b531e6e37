/* libcurl requests to the Kubernetes API with TLS always verified and a bearer token. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cjson-util.h"
#include "fileio.h"
#include "kube.h"
#include "text.h"
#include "util.h"
#include "watch.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define RESOURCE "/apis/multinic.io/v1alpha1/namespaces/%s/multinicnodeconfigs"

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

static int set_default(char **field, const char *value) {
        if (*field || !value)
                return 0;
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

static char *read_trimmed(const char *path) {
        char *text = NULL;
        size_t n;

        if (read_file(path, 64 * 1024, &text, &n) < 0)
                return NULL;
        strip_trailing_space(text, n);
        return text;
}

int kube_config_complete(KubeConfig *c, char *err, size_t errlen) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");

        if (!c->api_url && host) {
                /* An IPv6 service address needs brackets in a URL. */
                bool v6 = strchr(host, ':');

                if (asprintf(&c->api_url, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
                             port ? port : "443") < 0)
                        return -ENOMEM;
        }
        if (set_default(&c->token_file, SA_DIR "/token") < 0 ||
            set_default(&c->ca_file, SA_DIR "/ca.crt") < 0 ||
            set_default(&c->node_name, getenv("NODE_NAME")) < 0)
                return -ENOMEM;
        if (!c->namespace)
                c->namespace = read_trimmed(SA_DIR "/namespace");
        if (!c->api_url) {
                snprintf(err, errlen, "no API server: KUBERNETES_SERVICE_HOST is not set and "
                                      "--api-url was not given");
                return -EINVAL;
        }
        /* The token goes with every request: never over a connection that is not TLS. */
        if (strncasecmp(c->api_url, "https://", strlen("https://")) != 0) {
                snprintf(err, errlen, "--api-url must be an https:// URL, not %.100s", c->api_url);
                return -EINVAL;
        }
        if (!c->namespace || !c->node_name) {
                snprintf(err, errlen, "%s is not known: give %s", !c->namespace ? "the namespace"
                                                                                 : "the node name",
                         !c->namespace ? "--namespace" : "--node-name or NODE_NAME");
                return -EINVAL;
        }
        return 0;
}

void kube_config_done(KubeConfig *c) {
        free(c->api_url);
        free(c->token_file);
        free(c->ca_file);
        free(c->namespace);
        free(c->node_name);
        *c = (KubeConfig) {};
}

void kube_response_done(KubeResponse *r) {
        cJSON_Delete(r->body);
        r->body = NULL;
}

int kube_path(const KubeConfig *c, const char *name, const char *sub, char **ret) {
        int n;

        if (!name)
                n = asprintf(ret, RESOURCE, c->namespace);
        else
                n = asprintf(ret, RESOURCE "/%s%s%s", c->namespace, name, sub ? "/" : "",
                             sub ? sub : "");
        return n < 0 ? -ENOMEM : 0;
}

typedef struct Buffer {
        char *data;
        size_t len;
} Buffer;

static void buffer_done(Buffer *b) {
        free(b->data);
        *b = (Buffer) {};
}

static bool http_ok(long code) {
        return code >= 200 && code <= 299;
}

static size_t buffer_write(char *ptr, size_t size, size_t n, void *userdata) {
        Buffer *b = userdata;
        size_t k = size * n;
        char *p;

        if (b->len + k > WATCH_LINE_MAX)
                return 0; /* curl fails the transfer: no answer of ours is this large */
        p = realloc(b->data, b->len + k + 1);
        if (!p)
                return 0;
        memcpy(p + b->len, ptr, k);
        b->data = p;
        b->len += k;
        b->data[b->len] = 0;
        return k;
}

/* Common handle setup: URL, CA, the token of this moment, JSON. */
static int easy_setup(const KubeConfig *c, const char *path, const char *content_type,
                      CURL **ret, struct curl_slist **ret_headers, char *err, size_t errlen) {
        _cleanup_(curl_easy_cleanupp) CURL *h = curl_easy_init();
        _cleanup_(freep) char *url = NULL, *token = NULL, *auth = NULL, *ct = NULL;
        struct curl_slist *headers = NULL;

        if (!h || asprintf(&url, "%s%s", c->api_url, path) < 0)
                return -ENOMEM;
        token = read_trimmed(c->token_file);
        if (!token) {
                snprintf(err, errlen, "cannot read the token file %s", c->token_file);
                return -ENOENT;
        }
        if (asprintf(&auth, "Authorization: Bearer %s", token) < 0 ||
            (content_type && asprintf(&ct, "Content-Type: %s", content_type) < 0))
                return -ENOMEM;
        headers = curl_slist_append(headers, auth);
        headers = curl_slist_append(headers, "Accept: application/json");
        if (ct)
                headers = curl_slist_append(headers, ct);
        if (!headers)
                return -ENOMEM;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        /* No other scheme, whatever the URL says, and no redirect anywhere else either. */
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
        curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long) CURLPROTO_HTTPS);
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long) CURLPROTO_HTTPS);
#endif
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "multinic-bridge");
        *ret_headers = headers;
        *ret = TAKE_PTR(h);
        return 0;
}

/* "HTTP 403: <the Status's message>" for a refused request or watch, for logs and events. */
static void error_from_status(long code, const cJSON *status, char *err, size_t errlen) {
        const char *msg = json_string(status, "message");

        snprintf(err, errlen, "HTTP %ld: %s", code, msg ? msg : "no message");
}

int kube_request(const KubeConfig *c, const char *method, const char *path,
                 const char *content_type, const char *body, KubeResponse *r) {
        _cleanup_(curl_easy_cleanupp) CURL *h = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_(buffer_done) Buffer b = {};
        CURLcode cc;
        int k;

        *r = (KubeResponse) {};
        k = easy_setup(c, path, content_type, &h, &headers, r->error, sizeof(r->error));
        if (k < 0)
                return k;
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buffer_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        if (body)
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
                snprintf(r->error, sizeof(r->error), "%s %s: %s", method, path,
                         curl_easy_strerror(cc));
                return -EIO;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->code);
        r->body = b.data ? cJSON_Parse(b.data) : NULL;
        if (r->code >= 400)
                error_from_status(r->code, r->body, r->error, sizeof(r->error));
        return 0;
}

typedef struct WatchState {
        CURL *handle;
        long code;    /* the answer's HTTP status, known from the first body bytes on; 0: none */
        Buffer error; /* the body of an answer that is not a 2xx: a Status, not events */
        LineBuffer lines;
        atomic_bool *stop;
        int (*on_line)(const char *line, size_t len, void *userdata);
        void *userdata;
        int error_code;
} WatchState;

static void watch_state_done(WatchState *w) {
        buffer_done(&w->error);
        line_buffer_done(&w->lines);
}

static size_t watch_write(char *ptr, size_t size, size_t n, void *userdata) {
        WatchState *w = userdata;
        int r;

        /* libcurl has the status line before the first body byte. Without it the body could be
         * neither events nor a Status: the transfer ends rather than guessing. */
        if (w->code == 0 &&
            (curl_easy_getinfo(w->handle, CURLINFO_RESPONSE_CODE, &w->code) != CURLE_OK ||
             w->code == 0)) {
                w->code = 0;
                w->error_code = -EPROTO;
                return 0;
        }
        /* A refused watch (401, 403, 410, 500...) answers with one Status object: kept for the
         * caller, never read as events. */
        if (!http_ok(w->code))
                return buffer_write(ptr, size, n, &w->error);
        r = line_buffer_feed(&w->lines, ptr, size * n, w->on_line, w->userdata);
        if (r < 0) {
                w->error_code = r;
                return 0;
        }
        return size * n;
}

static int watch_progress(void *userdata, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                          curl_off_t un) {
        WatchState *w = userdata;

        return atomic_load(w->stop) ? 1 : 0;
}

int kube_watch(const KubeConfig *c, const char *path, unsigned timeout_seconds,
               atomic_bool *stop, int (*on_line)(const char *line, size_t len, void *userdata),
               void *userdata, char *err, size_t errlen) {
        _cleanup_(curl_easy_cleanupp) CURL *h = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_(watch_state_done) WatchState w = { .stop = stop, .on_line = on_line,
                                                     .userdata = userdata };
        CURLcode cc;
        int k;

        k = easy_setup(c, path, NULL, &h, &headers, err, errlen);
        if (k < 0)
                return k;
        w.handle = h;
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        /* The server ends a watch after timeoutSeconds; a stream silent for that long and a
         * margin for a slow network is a dead connection. */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                         (long) timeout_seconds + KUBE_WATCH_MARGIN_SECONDS);
        cc = curl_easy_perform(h);
        /* An answer without a body (a refusal's Status is optional) came without watch_write. */
        if (w.code == 0 && w.error_code == 0)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &w.code);
        if (w.code != 0 && !http_ok(w.code)) {
                _cleanup_(cJSON_Deletep) cJSON *status = w.error.data ? cJSON_Parse(w.error.data)
                                                                      : NULL;

                error_from_status(w.code, status, err, errlen);
                return (int) w.code;
        }
        if (w.error_code < 0) {
                snprintf(err, errlen, "watch stream: %s", strerror(-w.error_code));
                return w.error_code;
        }
        if (cc != CURLE_OK && !atomic_load(stop)) {
                snprintf(err, errlen, "watch %s: %s", path, curl_easy_strerror(cc));
                return -EIO;
        }
        return (int) w.code;
}
