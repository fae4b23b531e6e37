/* Unit tests of the bridge's backoff: it grows, it is jittered, and the cap holds. */
#include "backoff.h"
#include "tests.h"

#define ROUNDS 2000

static void test_the_cap_holds_after_jitter(void) {
        static const unsigned caps[] = { 1000, 30000, 60000 };

        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
                for (unsigned failures = 1; failures <= 40; failures++)
                        for (int i = 0; i < ROUNDS; i++)
                                ASSERT_TRUE(backoff_ms(failures, 500, caps[c]) <= caps[c]);
}

static void test_jitter_spreads_from_half_the_base_up(void) {
        unsigned lo = ~0u, hi = 0;

        for (int i = 0; i < ROUNDS; i++) {
                unsigned ms = backoff_ms(3, 500, 30000); /* base 2 s */

                lo = ms < lo ? ms : lo;
                hi = ms > hi ? ms : hi;
        }
        ASSERT_TRUE(lo >= 1000);
        ASSERT_TRUE(hi <= 3000);
        ASSERT_TRUE(hi - lo > 1000); /* jittered, not one value */
}

static void test_at_the_cap_it_is_still_jittered(void) {
        unsigned lo = ~0u, hi = 0;

        for (int i = 0; i < ROUNDS; i++) {
                unsigned ms = backoff_ms(30, 500, 30000);

                lo = ms < lo ? ms : lo;
                hi = ms > hi ? ms : hi;
        }
        ASSERT_TRUE(lo >= 15000);
        ASSERT_TRUE(hi <= 30000);
        ASSERT_TRUE(hi - lo > 5000);
}

static void test_first_failure_waits_about_half_a_second(void) {
        for (int i = 0; i < ROUNDS; i++) {
                unsigned ms = backoff_ms(1, 500, 30000);

                ASSERT_TRUE(ms >= 250 && ms <= 750);
        }
}

static void test_the_first_delay_is_configurable_and_doubles_from_there(void) {
        for (int i = 0; i < ROUNDS; i++) {
                unsigned first = backoff_ms(1, 120000, 600000), third = backoff_ms(3, 120000,
                                                                                   600000);

                ASSERT_TRUE(first >= 60000 && first <= 180000);
                ASSERT_TRUE(third >= 240000 && third <= 600000);
        }
}

static void test_a_day_long_cap_does_not_overflow(void) {
        for (unsigned failures = 1; failures <= 64; failures++) {
                unsigned ms = backoff_ms(failures, 86400000, 86400000);

                ASSERT_TRUE(ms >= 43200000 && ms <= 86400000);
        }
}

int main(void) {
        srandom(1);
        RUN_TEST(test_the_cap_holds_after_jitter);
        RUN_TEST(test_jitter_spreads_from_half_the_base_up);
        RUN_TEST(test_at_the_cap_it_is_still_jittered);
        RUN_TEST(test_first_failure_waits_about_half_a_second);
        RUN_TEST(test_the_first_delay_is_configurable_and_doubles_from_there);
        RUN_TEST(test_a_day_long_cap_does_not_overflow);
        return 0;
}
