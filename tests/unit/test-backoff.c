/* Unit tests of the bridge's backoff: it grows, it is jittered, and the cap holds. */
#include "backoff.h"
#include "tests.h"

#define ROUNDS 2000

static void test_the_cap_holds_after_jitter(void) {
        static const unsigned caps[] = { 1000, 30000, 60000 };

        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
                for (unsigned failures = 1; failures <= 40; failures++)
                        for (int i = 0; i < ROUNDS; i++)
                                ASSERT_TRUE(backoff_ms(failures, caps[c]) <= caps[c]);
}

static void test_jitter_spreads_from_half_the_base_up(void) {
        unsigned lo = ~0u, hi = 0;

        for (int i = 0; i < ROUNDS; i++) {
                unsigned ms = backoff_ms(3, 30000); /* base 2 s */

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
                unsigned ms = backoff_ms(30, 30000);

                lo = ms < lo ? ms : lo;
                hi = ms > hi ? ms : hi;
        }
        ASSERT_TRUE(lo >= 15000);
        ASSERT_TRUE(hi <= 30000);
        ASSERT_TRUE(hi - lo > 5000);
}

static void test_first_failure_waits_about_half_a_second(void) {
        for (int i = 0; i < ROUNDS; i++) {
                unsigned ms = backoff_ms(1, 30000);

                ASSERT_TRUE(ms >= 250 && ms <= 750);
        }
}

int main(void) {
        srandom(1);
        RUN_TEST(test_the_cap_holds_after_jitter);
        RUN_TEST(test_jitter_spreads_from_half_the_base_up);
        RUN_TEST(test_at_the_cap_it_is_still_jittered);
        RUN_TEST(test_first_failure_waits_about_half_a_second);
        return 0;
}
