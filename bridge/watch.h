/* The Kubernetes watch stream: newline-delimited JSON events, arriving in arbitrary chunks. */
#pragma once

#include <cjson/cJSON.h>
#include <stddef.h>

#define WATCH_LINE_MAX (4u << 20) /* one object's JSON; longer means a broken stream */

typedef struct LineBuffer {
        char *buf;
        size_t len, cap;
} LineBuffer;

void line_buffer_done(LineBuffer *b);

/* Appends data and calls on_line for every complete line (without its newline). A negative
 * return from on_line stops and is returned; -EMSGSIZE when a line grows past the limit. */
int line_buffer_feed(LineBuffer *b, const char *data, size_t n,
                     int (*on_line)(const char *line, size_t len, void *userdata), void *userdata);

typedef enum WatchEventType {
        WATCH_ADDED,
        WATCH_MODIFIED,
        WATCH_DELETED,
        WATCH_BOOKMARK,
        WATCH_ERROR,
} WatchEventType;

typedef struct WatchEvent {
        WatchEventType type;
        cJSON *object; /* owned */
} WatchEvent;

/* -EBADMSG for a line that is not a watch event. */
int watch_event_parse(const char *line, size_t len, WatchEvent *ret);
void watch_event_done(WatchEvent *e);

/* For an ERROR event: the Status code (410 when the resourceVersion is too old), else 0. */
int watch_event_error_code(const WatchEvent *e);
