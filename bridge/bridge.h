/* The bridge's state and its reconcile loop: the object as last seen, what was done for it. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "kube.h"
#include "metrics.h"
#include "watcher.h"

#define BRIDGE_FINALIZER "multinic.io/cleanup"

typedef struct Bridge {
        KubeConfig kube;
        sd_event *event;
        sd_bus *bus;
        Watcher watcher;
        Metrics metrics;
        cJSON *object;          /* the node's object as last seen; NULL if there is none */
        int64_t done_generation; /* the generation applied (or refused) last; -1 for none */
        bool force;             /* apply again although the generation was done */
        unsigned failures;      /* consecutive transient failures, for the backoff */
        unsigned retry_first_ms, retry_cap_ms;
        sd_event_source *retry;
        int64_t retry_generation; /* what the pending retry is about: this generation, */
        bool retry_deleting;      /* and whether the object was being deleted */
        /* The failures since multinicd last answered are told by one warning event for each
         * generation of the object, not on every retry nor when their reason changes. */
        bool warned;               /* told already for the current run, */
        int64_t warned_generation; /* about this generation */
        uint64_t resync_usec;
        uint64_t drift_seen_usec; /* the newest drift multinicd reported, told by an event */
} Bridge;

/* Brings the host and the object's status in line with the object; schedules a retry on
 * transient failures. */
void bridge_reconcile(Bridge *b);
/* A new version of the object from the watch (NULL: it is gone). Takes ownership. A new
 * generation or the start of the deletion is acted on at once, even with a retry pending. */
void bridge_set_object(Bridge *b, cJSON *object);
/* Drops a pending retry and the failures that led to it: for what is new (multinicd
 * restarted, a new generation), now. */
void bridge_retry_cancel(Bridge *b);
/* The daemon's properties changed (a pending NIC appeared...): refresh the status from them. */
void bridge_refresh_status(Bridge *b);
