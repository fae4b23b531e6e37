/* A minimal harness for the unit tests: assertions that report where they failed. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                                          \
        do {                                                                                       \
                if (!(expr)) {                                                                     \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,      \
                                #expr);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

#define ASSERT_EQ(a, b) ASSERT_TRUE((a) == (b))

#define ASSERT_STREQ(a, b)                                                                         \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (strcmp(_a, _b) != 0) {                                                         \
                        fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, _a, _b); \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

#define ASSERT_CONTAINS(haystack, needle)                                                          \
        do {                                                                                       \
                const char *_h = (haystack), *_n = (needle);                                       \
                if (!strstr(_h, _n)) {                                                             \
                        fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,      \
                                __LINE__, _h, _n);                                                 \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

#define RUN_TEST(fn)                                                                               \
        do {                                                                                       \
                fn();                                                                              \
                printf("ok %s\n", #fn);                                                            \
        } while (0)
