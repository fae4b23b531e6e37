/* The bridge's log: one JSON object per line on stderr, as container log collectors expect. */
#pragma once

#include "util.h"

typedef enum BridgeLogLevel {
        BLOG_ERROR,
        BLOG_WARNING,
        BLOG_INFO,
        BLOG_DEBUG,
} BridgeLogLevel;

void blog_set_level(BridgeLogLevel level);

/* msg, then pairs of key and string value ending with NULL; returns -|error| when given. */
int blog(BridgeLogLevel level, int error, const char *msg, ...);
