/* The io.multinic.Agent1 D-Bus object of multinicd. */
#pragma once

#include "manager.h"

#include "agent-bus.h"

int manager_bus_setup(Manager *m);
