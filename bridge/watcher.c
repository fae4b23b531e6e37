/* List and watch of one object, with relist on 410 Gone and backoff on failures. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "cjson-util.h"
#include "log.h"
#include "watch.h"
#include "watcher.h"

static void post(Watcher *w, cJSON *object) {
        WatchMsg *m = malloc(sizeof(*m));

        if (!m) {
                cJSON_Delete(object);
                return;
        }
        m->object = object;
        if (write(w->fd, &m, sizeof(m)) != sizeof(m)) {
                cJSON_Delete(object);
                free(m);
        }
}

/* A watch that the server ended sooner than this is followed by a pause up to it: a server that
 * ends every watch at once would otherwise be asked again in a tight loop. */
#define WATCH_MIN_MS 1000U

/* Sleeps in short steps so that stop is noticed. */
static void pause_ms(Watcher *w, unsigned ms) {
        for (unsigned t = 0; t < ms && !atomic_load(&w->stop); t += 50) {
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
}

static int list(Watcher *w) {
        _cleanup_(freep) char *base = NULL, *path = NULL;
        KubeResponse r;
        const cJSON *items, *rv;
        int k;

        if (kube_path(w->kube, NULL, NULL, &base) < 0 ||
            asprintf(&path, "%s?fieldSelector=metadata.name%%3D%s", base, w->kube->node_name) < 0)
                return -ENOMEM;
        k = kube_request(w->kube, "GET", path, NULL, NULL, &r);
        if (k < 0 || r.code != 200) {
                blog(BLOG_WARNING, k, "Listing the node's MultiNicNodeConfig failed", "detail",
                     r.error, NULL);
                kube_response_done(&r);
                return k < 0 ? k : -EIO;
        }
        items = cJSON_GetObjectItemCaseSensitive(r.body, "items");
        rv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r.body, "metadata"),
                                              "resourceVersion");
        snprintf(w->rv, sizeof(w->rv), "%s", cJSON_GetStringValue(rv) ?: "");
        post(w, cJSON_GetArraySize(items) > 0 ? cJSON_DetachItemFromArray((cJSON *) items, 0)
                                              : NULL);
        kube_response_done(&r);
        atomic_store(&w->metrics->ready, true);
        return 0;
}

static void remember_rv(Watcher *w, const cJSON *object) {
        const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(object, "metadata"), "resourceVersion"));

        if (rv)
                snprintf(w->rv, sizeof(w->rv), "%s", rv);
}

static int on_line(const char *line, size_t len, void *userdata) {
        Watcher *w = userdata;
        WatchEvent e;

        if (watch_event_parse(line, len, &e) < 0) {
                blog(BLOG_WARNING, EBADMSG, "Not a watch event; starting the watch again", NULL);
                return -EBADMSG;
        }
        switch (e.type) {
        case WATCH_ADDED:
        case WATCH_MODIFIED:
                remember_rv(w, e.object);
                post(w, TAKE_PTR(e.object));
                break;
        case WATCH_DELETED:
                remember_rv(w, e.object);
                post(w, NULL);
                break;
        case WATCH_BOOKMARK:
                remember_rv(w, e.object);
                break;
        case WATCH_ERROR:
                /* The server ends the stream after it; 410 Gone is the usual one. */
                w->error_code = watch_event_error_code(&e);
                snprintf(w->error, sizeof(w->error), "ERROR event %d: %s", w->error_code,
                         json_string(e.object, "message") ?: "no message");
                watch_event_done(&e);
                return -ESTALE;
        }
        watch_event_done(&e);
        return 0;
}

/* Why a watch ended before its timeout, for the log; 410 Gone (the resourceVersion is too old
 * to watch from, in the answer or in an ERROR event) means list again. */
static void watch_failed(Watcher *w, int code, const char *detail) {
        char c[16];

        snprintf(c, sizeof(c), "%d", code);
        if (code == 410) {
                w->relist = true;
                blog(BLOG_INFO, 0, "The watch's resourceVersion is too old; listing again",
                     "code", c, "detail", detail, NULL);
                return;
        }
        metrics_api_error(w->metrics);
        if (code < 0)
                blog(BLOG_WARNING, code, "Watch failed", "detail", detail, NULL);
        else if (code == 401 || code == 403)
                blog(BLOG_WARNING, 0, "The API server refused the watch; check the token and the "
                     "service account's role", "code", c, "detail", detail, NULL);
        else
                blog(BLOG_WARNING, 0, "Watch failed", "code", c, "detail", detail, NULL);
}

static int watch_once(Watcher *w) {
        _cleanup_(freep) char *base = NULL, *path = NULL;
        char err[256] = "";
        int code;

        if (kube_path(w->kube, NULL, NULL, &base) < 0 ||
            asprintf(&path,
                     "%s?watch=1&fieldSelector=metadata.name%%3D%s&resourceVersion=%s"
                     "&timeoutSeconds=%u&allowWatchBookmarks=true",
                     base, w->kube->node_name, w->rv, w->timeout_seconds) < 0)
                return -ENOMEM;
        code = kube_watch(w->kube, path, w->timeout_seconds, &w->stop, on_line, w, err,
                          sizeof(err));
        if (atomic_load(&w->stop) || code == 200)
                return 0; /* the server's timeout ended it: watch on from the same point */
        if (code == -ESTALE)
                watch_failed(w, w->error_code, w->error);
        else
                watch_failed(w, code, err[0] ? err : "unexpected HTTP status");
        return -EIO;
}

static void *watcher_main(void *userdata) {
        Watcher *w = userdata;
        uint64_t last_watch = 0; /* ms */
        unsigned failures = 0;

        while (!atomic_load(&w->stop)) {
                if (list(w) < 0) {
                        metrics_api_error(w->metrics);
                        pause_ms(w, backoff_ms(++failures, 500, 30000));
                        continue;
                }
                failures = 0;
                w->relist = false;
                while (!atomic_load(&w->stop) && !w->relist) {
                        uint64_t since = clock_usec(CLOCK_MONOTONIC) / 1000 - last_watch;

                        /* One watch a WATCH_MIN_MS at most, whatever ended the last: a server
                         * that ends each at once, or answers each with 410, is not hammered. */
                        if (since < WATCH_MIN_MS)
                                pause_ms(w, (unsigned) (WATCH_MIN_MS - since));
                        last_watch = clock_usec(CLOCK_MONOTONIC) / 1000;
                        if (watch_once(w) >= 0) {
                                failures = 0;
                                continue;
                        }
                        metrics_watch_restart(w->metrics);
                        if (!w->relist)
                                pause_ms(w, backoff_ms(++failures, 500, 30000));
                }
        }
        return NULL;
}

int watcher_start(Watcher *w) {
        atomic_store(&w->stop, false);
        return -pthread_create(&w->thread, NULL, watcher_main, w);
}

void watcher_stop(Watcher *w) {
        atomic_store(&w->stop, true);
        pthread_join(w->thread, NULL);
}
