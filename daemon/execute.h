/* Carrying out a plan through netlink, NIC by NIC, with rollback of a NIC that fails. */
#pragma once

#include <netlink/netlink.h>

#include "plan.h"

typedef struct Executor {
        struct nl_sock *nl;
        Plan *plan;
        bool *done; /* per action of the plan */
        size_t n_done;
        size_t n_writes;
        bool unforeseen; /* the kernel may now differ from what the plan foresaw */
} Executor;

int executor_init(Executor *x, struct nl_sock *nl, Plan *plan);
void executor_done(Executor *x);

/* Runs actions [from, to); a NIC whose action fails is rolled back and marked failed. */
int executor_run(Executor *x, size_t from, size_t to);

/* Undoes every action that ran, newest first, and fails each NIC that had any, with reason. */
void executor_rollback_all(Executor *x, const char *reason);

/* Undoes what ran for one NIC, newest first, and fails it with reason. */
void executor_rollback_nic(Executor *x, size_t nic, const char *reason);

/* Whether any action of this NIC ran and is still in effect. */
bool executor_nic_changed(const Executor *x, size_t nic);
