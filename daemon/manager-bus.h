/* The io.multinic.Agent1 D-Bus object of multinicd. */
#pragma once

#include "manager.h"

#include "agent-bus.h"

int manager_bus_setup(Manager *m);
/* Forgets the Apply and Remove calls not answered yet (at exit: the bus tells their callers). */
void manager_bus_drop_calls(Manager *m);
