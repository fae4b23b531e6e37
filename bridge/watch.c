/* Splitting the watch stream into events. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cjson-util.h"
#include "util.h"
#include "watch.h"

void line_buffer_done(LineBuffer *b) {
        free(b->buf);
        *b = (LineBuffer) {};
}

static int line_buffer_append(LineBuffer *b, const char *data, size_t n) {
        if (b->len + n > WATCH_LINE_MAX)
                return -EMSGSIZE;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *p;

                while (cap < b->len + n + 1)
                        cap *= 2;
                p = realloc(b->buf, cap);
                if (!p)
                        return -ENOMEM;
                b->buf = p;
                b->cap = cap;
        }
        memcpy(b->buf + b->len, data, n);
        b->len += n;
        b->buf[b->len] = 0;
        return 0;
}

int line_buffer_feed(LineBuffer *b, const char *data, size_t n,
                     int (*on_line)(const char *line, size_t len, void *userdata), void *userdata) {
        while (n > 0) {
                const char *nl = memchr(data, '\n', n);
                size_t take = nl ? (size_t) (nl - data) : n;
                int r;

                r = line_buffer_append(b, data, take);
                if (r < 0)
                        return r;
                data += take;
                n -= take;
                if (!nl)
                        break;
                data++; /* the newline */
                n--;
                if (b->len > 0) {
                        r = on_line(b->buf, b->len, userdata);
                        b->len = 0;
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int watch_event_parse(const char *line, size_t len, WatchEvent *ret) {
        static const char *const types[] = {
                [WATCH_ADDED] = "ADDED",       [WATCH_MODIFIED] = "MODIFIED",
                [WATCH_DELETED] = "DELETED",   [WATCH_BOOKMARK] = "BOOKMARK",
                [WATCH_ERROR] = "ERROR",
        };
        cJSON *doc = cJSON_ParseWithLength(line, len);
        const char *type = json_string(doc, "type");
        cJSON *object = cJSON_GetObjectItemCaseSensitive(doc, "object");

        for (size_t i = 0; type && cJSON_IsObject(object) && i < ELEMENTSOF(types); i++)
                if (streq(type, types[i])) {
                        *ret = (WatchEvent) {
                                .type = (WatchEventType) i,
                                .object = cJSON_DetachItemViaPointer(doc, object),
                        };
                        cJSON_Delete(doc);
                        return 0;
                }
        cJSON_Delete(doc);
        return -EBADMSG;
}

void watch_event_done(WatchEvent *e) {
        cJSON_Delete(e->object);
        e->object = NULL;
}

int watch_event_error_code(const WatchEvent *e) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e->object, "code");

        return e->type == WATCH_ERROR && cJSON_IsNumber(code) ? code->valueint : 0;
}
