/*
 * Refresh schedules: when a background route's runs start.  `refresh.every`
 * is either an interval ("3h", at least 1s) whose slots are the multiples of
 * it since the Unix epoch, so every instance of a fleet agrees on them, or
 * a five-field cron expression "m h dom mon dow" read in UTC with Vixie
 * cron's rules, or one of the shorthands @hourly @daily @midnight @weekly
 * @monthly @yearly @annually.
 *
 * Pure functions on a value type: no allocation, no clock (times are ms
 * since the epoch, UTC, passed in), thread-safe.  Fuzzed
 * (tests/fuzz/fuzz_schedule.c).
 */
#ifndef HF_CORE_SCHEDULE_H
#define HF_CORE_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

/* The longest schedule text, NUL included. */
#define HF_SCHEDULE_TEXT_MAX 128

/*
 * A parsed schedule.  Filled by hf_schedule_parse() only; the other fields
 * are meaningless when it failed.  For cron, a field written as `*` has all
 * its bits set and its *_star flag decides how day of month and day of week
 * combine (see hf_schedule_parse).
 */
struct hf_schedule {
    bool cron;
    int64_t every_ms; /* interval schedules; 0 for cron */
    uint64_t minutes; /* cron: bit m for minute m (0..59) */
    uint32_t hours;   /* bit h for hour h (0..23) */
    uint32_t doms;    /* bit d for day of month d (1..31) */
    uint32_t months;  /* bit m for month m (1..12) */
    uint8_t dows;     /* bit w for weekday w (0 Sunday .. 6 Saturday) */
    bool dom_star, dow_star;
    /* Precomputed by parse, exact for all time (see schedule.c). */
    int64_t min_gap_ms;              /* shortest time between two consecutive runs */
    int64_t max_gap_ms;              /* longest time between two consecutive runs */
    int64_t max_runs_per_day;        /* most runs in one UTC day (00:00 to 24:00) */
    char text[HF_SCHEDULE_TEXT_MAX]; /* as written, without surrounding spaces */
};

/*
 * Parse text into *s.  Accepted:
 *   - a duration as hf_duration_parse() reads it, at least 1s: runs at every
 *     multiple of it since 1970-01-01 00:00 UTC;
 *   - "m h dom mon dow" in UTC: each field `*`, a number, a range a-b,
 *     either of `*` and a-b followed by a step /n, or a comma-separated
 *     list of those; months also
 *     jan..dec and weekdays sun..sat (any case); weekday 0 and 7 are Sunday,
 *     and a weekday range may end on Sunday ("fri-sun", "5-0");
 *     As in Vixie cron, when both day fields are restricted a day matches
 *     if either does; a field counts as unrestricted when it starts with `*`
 *     (so a step over `*` does too);
 *   - @hourly @daily @midnight @weekly @monthly @yearly @annually.
 * Returns HF_OK, or HF_EINVAL with a one-line reason in why (may be NULL)
 * such as "cron field 2 (hour): 25 is out of range 0-23".  *s is written
 * only on HF_OK.
 */
hf_err hf_schedule_parse(const char *text, struct hf_schedule *s, char *why, size_t whylen);

/* The first slot strictly after t_ms, or INT64_MAX when there is none that
 * an int64 of ms can hold. */
int64_t hf_schedule_next(const struct hf_schedule *s, int64_t t_ms);

/* The latest slot at or before t_ms, or INT64_MIN when there is none that
 * an int64 of ms can hold. */
int64_t hf_schedule_prev(const struct hf_schedule *s, int64_t t_ms);

/* The shortest time between two consecutive slots. */
int64_t hf_schedule_min_gap_ms(const struct hf_schedule *s);

/* The longest time between two consecutive slots: the longest a copy can
 * wait for its next refresh ("0 0 29 2 *": 8 years, across 2100). */
int64_t hf_schedule_max_gap_ms(const struct hf_schedule *s);

/* The most slots in any one UTC day.  Interval: ceil(1d / every). */
int64_t hf_schedule_max_runs_per_day(const struct hf_schedule *s);

/*
 * The most slots in any window [a, a + period_ms), wherever it starts: what
 * a quota of N per period_ms must allow.  Never less than the truth, and
 * exact for intervals and, for cron, for periods under a day or of whole
 * days; other periods ("36h") get a bound that may be a little high (see
 * schedule.c).  0 when period_ms <= 0.
 */
int64_t hf_schedule_runs_in(const struct hf_schedule *s, int64_t period_ms);

#endif
