/* Reading a Spec from JSON: a plain {interfaces, options} spec or a whole MultiNicNodeConfig. */
#pragma once

#include <cjson/cJSON.h>

#include "errors.h"
#include "spec.h"

/*
 * Fills spec, which the caller has initialized with spec_init(), from root: either a plain spec
 * {"interfaces": [...], "options": {...}} or a MultiNicNodeConfig document, whose spec.instanceId
 * becomes options.instanceId. Wrong types, fractions, negative numbers and unknown keys are
 * refused with an InvalidSpec error naming the field as it is spelled in the document
 * ("interfaces[2].mtu: ...", "spec.interfaces[2].mtu: ..."). Checks that span fields and
 * entries are left to spec_validate().
 */
int spec_from_json(const cJSON *root, Spec *spec, Error *e);

/* Whether root is a MultiNicNodeConfig document, whose spec fields sit under "spec.". */
bool spec_json_is_node_config(const cJSON *root);

/* The plain form of a spec, which spec_from_json() reads back to the same spec. */
cJSON *spec_to_json(const Spec *spec);
