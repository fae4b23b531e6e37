/* The daemon's state and its operations, independent of D-Bus. */
#pragma once

#include <netlink/netlink.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "plan.h"
#include "spec.h"
#include "state.h"

/* What a reconcile last found changed behind multinicd's back on one NIC, and healed. */
typedef struct NicDrift {
        Drift items[DRIFT_MAX];
        size_t n_items;
        uint64_t usec; /* CLOCK_REALTIME, when found; 0: never */
} NicDrift;

typedef struct NicStatus {
        SpecInterface spec;
        NicOutcome outcome;
        char message[256];
        NicDrift drift; /* kept until the NIC leaves the spec or drifts again */
} NicStatus;

/* Properties that changed since PropertiesChanged was last sent. */
typedef enum PropChanged {
        PROP_STATE = 1 << 0,
        PROP_INTERFACES = 1 << 1,
        PROP_LAST_APPLY = 1 << 2,
        PROP_LAST_ERROR = 1 << 3,
} PropChanged;

#define HEAL_LIMIT 5

/* When multinicd last healed one NIC: the last HEAL_LIMIT times, a ring; and, once something
 * kept undoing it, until when multinicd leaves it alone (CLOCK_MONOTONIC). */
typedef struct HealRecord {
        uint8_t mac[6];
        uint64_t times[HEAL_LIMIT];
        size_t next;
        uint64_t backoff_usec, paused_until;
        bool degraded; /* left alone, until a reconcile after the pause looked at it again */
        char message[160];
} HealRecord;

typedef struct Monitor Monitor;

/* A NIC whose last Apply failed: reconciles hold it as it was, and keep reporting why. */
typedef struct HeldNic {
        uint8_t mac[6];
        char message[256];
} HeldNic;

typedef struct ChangeCall ChangeCall;

typedef struct Manager {
        char *root;
        Config config;
        sd_event *event;
        sd_bus *bus;
        struct nl_sock *nl;
        Monitor *monitor;
        State state;
        bool state_unsaved; /* the state changed and is not on disk yet, or its save failed */
        bool intent_unsynced; /* the state file holds an intent written without fsync */
        int backend;        /* PersistBackend */
        bool files_stale;   /* the files may not match the state: rewrite at the next call */
        char instance_id[SPEC_INSTANCE_ID_MAX + 1];
        const char *overall; /* the State property */
        uint64_t last_apply_usec;
        char last_error[512];
        NicStatus *status; /* the Interfaces property */
        size_t n_status;
        unsigned props_changed; /* PropChanged bits */
        HealRecord *heals;
        size_t n_heals;
        HeldNic *held;
        size_t n_held;
        ChangeCall *calls; /* Apply and Remove calls not answered yet, in arrival order */
        unsigned n_calls;
} Manager;

/* The outcome of one call, for the reply. */
typedef struct CallResult {
        Plan plan;
        bool *done; /* per action of the plan: it ran and stayed */
        const char *overall;
} CallResult;

void call_result_done(CallResult *c);

int manager_new(const char *root, const Config *config, int backend, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

int manager_plan(Manager *m, Spec *spec, Plan *ret, Error *e);
int manager_apply(Manager *m, Spec *spec, CallResult *ret, Error *e);
int manager_remove(Manager *m, const Spec *options, CallResult *ret, Error *e);

/* Applies the kept spec again, after a change in the kernel: a NIC that appeared, one that went
 * away, or something changed behind multinicd's back. A NIC that had to be healed too often is
 * left alone for a growing while, and reported degraded; the others are still looked after. */
int manager_reconcile(Manager *m);
/* Writes the state file if the last call changed the state (or its last save failed). */
void manager_save_state(Manager *m);
/* PropertiesChanged for what changed since the last call. */
void manager_emit_changed(Manager *m);
