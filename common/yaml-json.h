/* Conversion of a YAML document into the cJSON tree that the JSON readers take. */
#pragma once

#include <stddef.h>

#include <cjson/cJSON.h>

/*
 * Converts the first document of text: mappings become objects, sequences arrays. Plain scalars
 * that are decimal integers become numbers, plain true/false booleans, plain null, ~ and empty
 * ones null; every other scalar, quoted or not, stays a string, so 10:20:30:40:50:60 is a MAC and
 * not a base-60 number. On failure returns NULL and leaves a message with line and column in
 * errbuf.
 */
cJSON *yaml_to_json(const char *text, size_t len, char *errbuf, size_t errlen);
