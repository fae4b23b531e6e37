/* Cleanup helpers for cJSON values. */
#pragma once

#include <cjson/cJSON.h>

#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

/* The string at key, or NULL when it is missing or not a string. */
static inline const char *json_string(const cJSON *o, const char *key) {
        return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}
