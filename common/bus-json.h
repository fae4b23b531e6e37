/* Reading D-Bus values into cJSON trees. */
#pragma once

#include <cjson/cJSON.h>
#include <systemd/sd-bus.h>

/* Reads the next complete value: a{..} becomes an object, other arrays and structs arrays,
 * variants their content, basic types strings, numbers or booleans. */
int bus_message_read_json(sd_bus_message *m, cJSON **ret);
