/* Capped exponential backoff with jitter. */
#include <stdlib.h>

#include "backoff.h"

unsigned backoff_ms(unsigned failures, unsigned first_ms, unsigned cap_ms) {
        unsigned base = first_ms > 0 ? first_ms : 1, hi;

        for (unsigned i = 1; i < failures && base < cap_ms; i++)
                base = base > cap_ms / 2 ? cap_ms : base * 2;
        if (base > cap_ms)
                base = cap_ms;
        /* Jitter from half to one and a half of the base, so that nodes that lost the API
         * together do not come back together; the top is cut at the cap, not the whole. */
        hi = base > cap_ms - base / 2 ? cap_ms : base + base / 2;
        return base / 2 + (unsigned) (random() % (hi - base / 2 + 1));
}
