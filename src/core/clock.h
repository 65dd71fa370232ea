/*
 * The clock.  Only event loops and the CLI read it; everything that decides
 * by time (cache, backoff, breaker, bucket) takes now_ms as an argument.
 */
#ifndef HF_CORE_CLOCK_H
#define HF_CORE_CLOCK_H

#include <stdint.h>

/* Wall clock, ms since the epoch: cache timestamps that outlive the process. */
int64_t hf_clock_wall_ms(void);
/* Monotonic clock, ms: deadlines and timers within one process. */
int64_t hf_clock_mono_ms(void);
/* Monotonic clock, µs: durations for histograms. */
int64_t hf_clock_mono_us(void);
/* A uniformly distributed 64-bit random value (for jitter; not for secrets). */
uint64_t hf_random64(void);

#endif
