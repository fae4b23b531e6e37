/* Capped exponential backoff with jitter. */
#include <stdlib.h>

#include "backoff.h"

unsigned backoff_ms(unsigned failures, unsigned cap_ms) {
        unsigned base = 500, hi;

        for (unsigned i = 1; i < failures && base < cap_ms; i++)
                base *= 2;
        if (base > cap_ms)
                base = cap_ms;
        /* Jitter from half to one and a half of the base, so that nodes that lost the API
         * together do not come back together; the top is cut at the cap, not the whole. */
        hi = base + base / 2;
        if (hi > cap_ms)
                hi = cap_ms;
        return base / 2 + (unsigned) (random() % (hi - base / 2 + 1));
}
