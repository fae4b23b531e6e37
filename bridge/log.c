/* JSON log lines: time, level, msg, error, then the caller's fields. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "status.h"

static BridgeLogLevel max_level = BLOG_INFO;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void blog_set_level(BridgeLogLevel level) {
        max_level = level;
}

int blog(BridgeLogLevel level, int error, const char *msg, ...) {
        static const char *const names[] = { "error", "warning", "info", "debug" };
        cJSON *o;
        char now[32], *text;
        va_list ap;

        error = error < 0 ? -error : error;
        if (level > max_level)
                return -error;
        o = cJSON_CreateObject();
        if (!o)
                return -error;
        status_now(now);
        cJSON_AddStringToObject(o, "time", now);
        cJSON_AddStringToObject(o, "level", names[level]);
        cJSON_AddStringToObject(o, "msg", msg);
        if (error)
                cJSON_AddStringToObject(o, "error", strerror(error));
        va_start(ap, msg);
        for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
                const char *v = va_arg(ap, const char *);
                cJSON_AddStringToObject(o, k, v ? v : "");
        }
        va_end(ap);
        text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text) {
                pthread_mutex_lock(&lock);
                fprintf(stderr, "%s\n", text);
                pthread_mutex_unlock(&lock);
                free(text);
        }
        return -error;
}
