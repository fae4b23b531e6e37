/* Recording of user-facing error messages. */
#include <stdarg.h>

#include "errors.h"

int error_set(Error *e, ErrorKind kind, int r, const char *fmt, ...) {
        va_list ap;

        if (!e || e->kind != ERROR_KIND_NONE)
                return r;

        e->kind = kind;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return r;
}

const char *error_kind_to_string(ErrorKind kind) {
        static const char *const table[] = {
                [ERROR_KIND_NONE] = "none",
                [ERROR_KIND_INVALID_SPEC] = "InvalidSpec",
                [ERROR_KIND_INSTANCE_MISMATCH] = "InstanceMismatch",
                [ERROR_KIND_INTERFACE_IN_USE] = "InterfaceInUse",
                [ERROR_KIND_BUSY] = "Busy",
                [ERROR_KIND_FAILED] = "Failed",
        };

        if ((size_t) kind >= ELEMENTSOF(table))
                return "unknown";
        return table[kind];
}
