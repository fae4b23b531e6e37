/* Marshalling of a Spec into the arguments of the Apply and Plan D-Bus methods. */
#pragma once

#include <systemd/sd-bus.h>

#include "spec.h"

/* Appends the options argument, a{sv}: instanceId only when set, the booleans always. */
int spec_bus_append_options(sd_bus_message *m, const SpecOptions *options);

/* Appends both arguments of Apply and Plan: interfaces (aa{sv}) and options (a{sv}). */
int spec_bus_append(sd_bus_message *m, const Spec *spec);
