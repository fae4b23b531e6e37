/* The io.multinic.Agent1 D-Bus object of multinicd. */
#pragma once

#include "manager.h"

#define AGENT_BUS_NAME "io.multinic.Agent1"
#define AGENT_OBJECT_PATH "/io/multinic/Agent1"
#define AGENT_INTERFACE "io.multinic.Agent1"

int manager_bus_setup(Manager *m);
