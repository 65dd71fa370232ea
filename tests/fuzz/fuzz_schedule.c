/*
 * libFuzzer target: refresh schedules (src/core/schedule.c).  The input is
 * the text of `refresh.every`, copied and NUL-terminated (configs hand the
 * parser C strings); its last 8 bytes also pick the times to ask about, so
 * the fuzzer steers both.  Invariants for every schedule that parses: next
 * is strictly after t, prev at or before it, a slot is its own prev, the
 * gaps and runs that parse computed are consistent, and runs_in never
 * returns less than one for a period that holds a gap.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_at(const struct hf_schedule *s, int64_t t)
{
    int64_t n = hf_schedule_next(s, t);
    assert(n > t || n == INT64_MAX);
    if (n != INT64_MAX) {
        assert(hf_schedule_prev(s, n) == n);
        /* Nothing between t and n: the slot before n is at or before t. */
        assert(hf_schedule_prev(s, n - 1) <= t);
    }
    int64_t p = hf_schedule_prev(s, t);
    assert(p <= t);
    if (p != INT64_MIN) {
        assert(hf_schedule_next(s, p) == n); /* no slot in (p, t] */
        if (n != INT64_MAX) {
            assert(n - p >= hf_schedule_min_gap_ms(s));
            assert(n - p <= hf_schedule_max_gap_ms(s));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[HF_SCHEDULE_TEXT_MAX + 16];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';

    struct hf_schedule s;
    char why[160];
    if (hf_schedule_parse(text, &s, why, sizeof why) != HF_OK) {
        assert(why[0] != '\0' && strlen(why) < sizeof why);
        return 0;
    }
    assert(s.min_gap_ms >= 1000 && s.min_gap_ms <= s.max_gap_ms);
    assert(s.max_runs_per_day >= 1 && s.max_runs_per_day <= 86400);
    assert(strlen(s.text) < HF_SCHEDULE_TEXT_MAX);

    uint64_t seed = 0;
    for (size_t i = 0; i < 8 && i < size; i++)
        seed = seed << 8 | data[size - 1 - i];
    const int64_t times[] = {
        0,
        -1,
        1700000000000LL,                           /* 2023-11-14 */
        4102444800000LL - 1,                       /* the end of 2099 */
        (int64_t)(seed % 253402300800000ULL),      /* any time up to the year 9999 */
        (int64_t)seed,                             /* any int64 at all */
        (int64_t)(seed % 86400000) + 951782400000, /* 2000-02-29 */
        INT64_MAX,
        INT64_MIN,
        INT64_MAX - 1,
        INT64_MIN + 1,
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        check_at(&s, times[i]);

    int64_t day = hf_schedule_runs_in(&s, 86400000);
    assert(day == hf_schedule_max_runs_per_day(&s));
    assert(hf_schedule_runs_in(&s, s.max_gap_ms + 1) >= 2);
    assert(hf_schedule_runs_in(&s, 0) == 0);
    return 0;
}
