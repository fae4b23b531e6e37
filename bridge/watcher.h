/* The watcher thread: list, then watch the node's object, and hand every version of it to the
 * main loop through a pipe. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "kube.h"
#include "metrics.h"

typedef struct WatchMsg {
        cJSON *object; /* the object as it is now; NULL: there is none (deleted or never made) */
} WatchMsg;

typedef struct Watcher {
        const KubeConfig *kube;
        Metrics *metrics;
        unsigned timeout_seconds; /* asked of the server for each watch */
        int fd;                   /* write end: WatchMsg pointers */
        atomic_bool stop;
        pthread_t thread;
        char rv[64];
        bool relist;
        int error_code;  /* of the last ERROR event */
        char error[256]; /* its Status message */
} Watcher;

int watcher_start(Watcher *w);
void watcher_stop(Watcher *w);
