/* String helpers shared by the bridge's modules. */
#pragma once

#include <stddef.h>

/* Drops the newlines and spaces that end s (of length n), in place; returns the new length. */
static inline size_t strip_trailing_space(char *s, size_t n) {
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = 0;
        return n;
}
