/* What multinicd manages, kept under <root>/var/lib/multinic so that a restart loses nothing. */
#pragma once

#include <cjson/cJSON.h>

#include "snapshot.h"
#include "spec.h"

typedef struct ManagedNic {
        uint8_t mac[6];
        uint32_t id;
        uint32_t mtu;                 /* the wanted MTU, 0 when the spec leaves it */
        char name[IFNAMSIZ];          /* the name multinicd gave the NIC */
        char original_name[IFNAMSIZ]; /* its name before, restored on release */
        /* Its driver as ethtool names it (at most 32 bytes), for the .link file's guard; learned
         * while it is there and kept while it is not; "" not known yet. */
        char driver[33];
        int32_t original_devconf[_DEVCONF_MAX]; /* -1: not changed by multinicd */
        bool has_address, has_rule, has_route;
        AddrInfo address; /* ifindex unused */
        RuleInfo rule;
        RouteInfo route; /* oif unused */
} ManagedNic;

typedef struct State {
        ManagedNic *nics;
        size_t n_nics;
        cJSON *desired; /* the last spec applied (spec_to_json form); NULL after Remove */
} State;

void state_done(State *s);
const ManagedNic *state_find(const State *s, const uint8_t mac[6]);
int state_append(State *s, const ManagedNic *nic);

bool state_equal(const State *a, const State *b);

/* A missing file is an empty state. */
int state_load(const char *root, State *ret);
/* Written atomically and fsynced; with sync_dir, its directory too, so that a power loss cannot
 * bring the old file back. */
int state_save(const char *root, const State *s, bool sync_dir);
/* fsyncs the state file and its directory, after a state_save() without sync_dir. */
int state_sync(const char *root);
/* Renames a state file that cannot be read out of the way, keeping it for inspection. */
int state_set_aside(const char *root, char **ret_path);
