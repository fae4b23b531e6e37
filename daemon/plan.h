/* The planner: from a spec, the managed state and a kernel snapshot to a list of changes. */
#pragma once

#include "snapshot.h"
#include "spec.h"
#include "state.h"

typedef struct Config {
        uint32_t table_base;
        uint32_t priority_base;
        bool policy_routing; /* off here overrides the Apply option */
        bool sysctls;
        int32_t devconf[_DEVCONF_MAX]; /* wanted values of the per-NIC sysctls */
        uint32_t check_interval; /* seconds between looks for drift no event tells of */
} Config;

void config_init(Config *c);

typedef enum ActionType {
        ACTION_REMOVE_ROUTE,
        ACTION_REMOVE_RULE,
        ACTION_REMOVE_ADDRESS,
        ACTION_SET_DEVCONF,
        ACTION_DEL_ALTNAME,
        ACTION_RENAME,
        ACTION_SET_MTU,
        ACTION_ADD_ADDRESS,
        ACTION_SET_UP,
        ACTION_ADD_RULE,
        ACTION_ADD_ROUTE,
        _ACTION_MAX,
} ActionType;

typedef struct Action {
        ActionType type;
        size_t nic; /* index into Plan.nics */
        int ifindex;
        union {
                struct {
                        char from[IFNAMSIZ], to[IFNAMSIZ];
                } rename;
                char altname[LINK_ALTNAME_LEN];
                struct {
                        uint32_t from, to;
                } mtu;
                struct {
                        int32_t from[_DEVCONF_MAX], to[_DEVCONF_MAX];
                } devconf;
                AddrInfo addr;
                RuleInfo rule;
                RouteInfo route;
        };
} Action;

typedef enum NicOutcome {
        NIC_UNCHANGED,
        NIC_CONFIGURED,
        NIC_PENDING,
        NIC_FAILED,
        NIC_REMOVED,
        _NIC_OUTCOME_MAX,
} NicOutcome;

typedef struct NicPlan {
        uint8_t mac[6];
        uint32_t id;
        char name[IFNAMSIZ]; /* wanted name; for a release the name it gets back */
        const SpecInterface *spec; /* NULL for a release */
        int ifindex;               /* 0 when the NIC is not present */
        NicOutcome outcome;
        char message[256];
        ManagedNic record; /* what the new state keeps for this NIC once it is configured */
} NicPlan;

typedef struct Plan {
        NicPlan *nics;
        size_t n_nics;
        Action *actions;
        size_t n_actions;
        size_t n_stage_a; /* releases and renames come first; the rest follows a fresh snapshot */
        int error;        /* -ENOMEM when an action could not be added */
} Plan;

void plan_done(Plan *p);

/* A NIC of the spec that the plan is to leave as it is, failed with message. */
typedef struct PlanHold {
        uint8_t mac[6];
        const char *message;
} PlanHold;

/* Builds the whole plan. Guards that refuse the call (primary NIC, in-use NIC, an address held
 * elsewhere) fail with an Error; problems of one NIC mark that NIC failed, and so do holds. */
int plan_build(const Spec *spec, const State *state, const Snapshot *snap, const Config *config,
               const PlanHold *holds, size_t n_holds, Plan *ret, Error *e);
/* Rebuilds the configuration actions (after the renames ran) from a fresh snapshot. */
int plan_rebuild_configure(Plan *p, const State *state, const Snapshot *snap,
                           const Config *config);
/* A plan that releases every managed NIC. */
int plan_build_remove(const State *state, const Snapshot *snap, Plan *ret);

/* One thing a reconcile found changed behind multinicd's back: what it is ("mtu", "rule",
 * "rp_filter"...), the value wanted and the value found ("absent" for a missing address, rule
 * or route). */
typedef struct Drift {
        char field[16];
        char wanted[80];
        char found[80];
} Drift;

#define DRIFT_MAX 8

/* The drift that an action of a reconcile undoes, into ret (at most n); returns how many records
 * it filled: several for a sysctl action that sets more than one key. */
size_t action_drift(const Action *a, Drift *ret, size_t n);

const char *action_type_to_string(ActionType t);
void action_describe(const Action *a, char *buf, size_t n);
const char *nic_outcome_to_string(NicOutcome o);
