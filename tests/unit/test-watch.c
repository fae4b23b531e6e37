/* Unit tests of the watch stream splitter and event parser of the bridge. */
#include "tests.h"
#include "util.h"
#include "watch.h"

typedef struct Lines {
        char seen[8][128];
        size_t n;
} Lines;

static int collect(const char *line, size_t len, void *userdata) {
        Lines *l = userdata;

        snprintf(l->seen[l->n++], sizeof(l->seen[0]), "%.*s", (int) len, line);
        return 0;
}

static void test_lines_split_across_chunks_arrive_whole(void) {
        static const char *const chunks[] = { "{\"a\":", "1}\n{\"b\"", ":2}\n\n{\"c\":3", "}\n" };
        LineBuffer b = {};
        Lines l = {};

        for (size_t i = 0; i < ELEMENTSOF(chunks); i++)
                ASSERT_EQ(line_buffer_feed(&b, chunks[i], strlen(chunks[i]), collect, &l), 0);
        ASSERT_EQ(l.n, 3);
        ASSERT_STREQ(l.seen[0], "{\"a\":1}");
        ASSERT_STREQ(l.seen[1], "{\"b\":2}");
        ASSERT_STREQ(l.seen[2], "{\"c\":3}");
        line_buffer_done(&b);
}

static void test_a_line_without_end_is_refused_past_the_limit(void) {
        LineBuffer b = {};
        Lines l = {};
        char *big = malloc(WATCH_LINE_MAX + 2);

        memset(big, 'x', WATCH_LINE_MAX + 1);
        ASSERT_EQ(line_buffer_feed(&b, big, WATCH_LINE_MAX + 1, collect, &l), -EMSGSIZE);
        ASSERT_EQ(l.n, 0);
        free(big);
        line_buffer_done(&b);
}

static void test_events_are_parsed_with_their_object(void) {
        static const char line[] = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"n1\","
                                   "\"resourceVersion\":\"42\"}}}";
        WatchEvent e;

        ASSERT_EQ(watch_event_parse(line, strlen(line), &e), 0);
        ASSERT_EQ(e.type, WATCH_MODIFIED);
        ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(
                             cJSON_GetObjectItem(e.object, "metadata"), "resourceVersion")),
                     "42");
        watch_event_done(&e);
}

static void test_gone_error_event_gives_410(void) {
        static const char line[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                                   "\"reason\":\"Expired\"}}";
        WatchEvent e;

        ASSERT_EQ(watch_event_parse(line, strlen(line), &e), 0);
        ASSERT_EQ(e.type, WATCH_ERROR);
        ASSERT_EQ(watch_event_error_code(&e), 410);
        watch_event_done(&e);
}

static void test_non_events_are_refused(void) {
        static const char *const bad[] = {
                "not json", "{\"type\":\"ADDED\"}", "{\"type\":\"RENAMED\",\"object\":{}}",
                "{\"kind\":\"Status\",\"code\":401}", "{\"type\":\"ADDED\",\"object\":[1]}",
        };
        WatchEvent e;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_EQ(watch_event_parse(bad[i], strlen(bad[i]), &e), -EBADMSG);
}

int main(void) {
        RUN_TEST(test_lines_split_across_chunks_arrive_whole);
        RUN_TEST(test_a_line_without_end_is_refused_past_the_limit);
        RUN_TEST(test_events_are_parsed_with_their_object);
        RUN_TEST(test_gone_error_event_gives_410);
        RUN_TEST(test_non_events_are_refused);
        return 0;
}
