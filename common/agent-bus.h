/* Names of multinicd's D-Bus object, shared by the daemon and its clients. */
#pragma once

#define AGENT_BUS_NAME "io.multinic.Agent1"
#define AGENT_OBJECT_PATH "/io/multinic/Agent1"
#define AGENT_INTERFACE "io.multinic.Agent1"
#define AGENT_ERROR_PREFIX AGENT_INTERFACE ".Error."
