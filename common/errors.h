/* A human-readable error message that travels with a negative errno through the layers. */
#pragma once

#include "util.h"

/* The kind decides the D-Bus error name and the CLI exit code at the outer boundary. */
typedef enum ErrorKind {
        ERROR_KIND_NONE,
        ERROR_KIND_INVALID_SPEC,
        ERROR_KIND_INSTANCE_MISMATCH,
        ERROR_KIND_INTERFACE_IN_USE,
        ERROR_KIND_BUSY,
        ERROR_KIND_FAILED,
} ErrorKind;

typedef struct Error {
        ErrorKind kind;
        char message[512];
} Error;

/* Records the first error only: later ones are consequences. Always returns r (negative). */
int error_set(Error *e, ErrorKind kind, int r, const char *fmt, ...) _printf_(4, 5);

const char *error_kind_to_string(ErrorKind kind);
