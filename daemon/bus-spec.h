/* Reading a spec from the Apply/Plan arguments, with type errors that name the field. */
#pragma once

#include <systemd/sd-bus.h>

#include "spec.h"

/* Reads "aa{sv}" interfaces (when with_interfaces) then "a{sv}" options into spec. */
int bus_read_spec(sd_bus_message *m, bool with_interfaces, Spec *spec, Error *e);
