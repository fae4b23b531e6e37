/* Capped exponential backoff with jitter, for the watch and for failed applies. */
#pragma once

/* Milliseconds to wait after the given number of consecutive failures (1 for the first):
 * first_ms doubling, jittered from half to one and a half of that, never above cap_ms. */
unsigned backoff_ms(unsigned failures, unsigned first_ms, unsigned cap_ms);
