/* Capped exponential backoff with jitter, for the watch and for failed applies. */
#pragma once

/* Milliseconds to wait after the given number of consecutive failures (1 for the first): 0.5 s
 * doubling, jittered down to half, never above cap_ms. */
unsigned backoff_ms(unsigned failures, unsigned cap_ms);
