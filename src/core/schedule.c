/*
 * Refresh schedules; see schedule.h.
 *
 * Time is handled as whole days since the epoch plus minutes of the day,
 * with our own proleptic Gregorian arithmetic (no libc, no time_t limits),
 * so any int64 of ms works.  A cron expression allows the same minutes on
 * every day it allows, and which days it allows repeats exactly every 400
 * years (146097 days, a whole number of weeks).  Parse therefore scans one
 * such cycle, as a bitmap of days, to find the shortest and longest gaps
 * between runs: they are exact for all time, not an estimate from a
 * sample.  next and prev skip months the expression excludes and search at
 * most one cycle.
 */
#include "core/schedule.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/units.h"

#define MINUTE_MS ((int64_t)60000)
#define DAY_MS ((int64_t)86400000)
#define DAY_MINUTES 1440
/* The Gregorian calendar, weekdays included, repeats every 400 years. */
#define CYCLE_DAYS ((int64_t)146097)
/* Days whose every ms fits in an int64 (MIN_DAY rounds toward zero, so its
 * start is representable; the partial day before it is left out). */
#define MIN_DAY (INT64_MIN / DAY_MS)
#define MAX_DAY (INT64_MAX / DAY_MS)

static const char generic_why[] = "a duration of at least 1s or a cron expression "
                                  "\"m h dom mon dow\"";

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write the reason for a refusal, if the caller wants one. */
static void say(char *why, size_t whylen, const char *fmt, ...)
{
    if (why == NULL || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* ---- calendar arithmetic ------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m];
}

/* Year, month (1..12) and day (1..31) of a day number: Howard Hinnant's
 * civil_from_days, in int64 so every day an int64 of ms can name works. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 Sunday .. 6 Saturday; 1970-01-01 was a Thursday. */
static int weekday(int64_t day)
{
    int64_t w = (day + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* ---- which days and minutes a cron expression allows ------------------- */

/* Vixie's rule: with both day fields restricted a day needs either one,
 * otherwise both (an unrestricted field has every bit set). */
static bool day_allowed(const struct hf_schedule *s, int dom, int dow)
{
    bool dm = (s->doms >> dom) & 1u, wm = (s->dows >> dow) & 1u;
    return s->dom_star || s->dow_star ? dm && wm : dm || wm;
}

static bool month_allowed(const struct hf_schedule *s, int m)
{
    return (s->months >> m) & 1u;
}

/* The first allowed minute of the day at or after mod, or -1. */
static int first_minute_from(const struct hf_schedule *s, int mod)
{
    for (int h = mod / 60; h < 24; h++) {
        if (!((s->hours >> h) & 1u))
            continue;
        for (int mi = h == mod / 60 ? mod % 60 : 0; mi < 60; mi++) {
            if ((s->minutes >> mi) & 1u)
                return h * 60 + mi;
        }
    }
    return -1;
}

/* The last allowed minute of the day at or before mod, or -1. */
static int last_minute_upto(const struct hf_schedule *s, int mod)
{
    for (int h = mod / 60; h >= 0; h--) {
        if (!((s->hours >> h) & 1u))
            continue;
        for (int mi = h == mod / 60 ? mod % 60 : 59; mi >= 0; mi--) {
            if ((s->minutes >> mi) & 1u)
                return h * 60 + mi;
        }
    }
    return -1;
}

/*
 * Move *day forward to the first allowed day at or after it, no later than
 * last.  Months the expression excludes are skipped whole; within a month
 * at most 31 days are looked at.
 */
static bool next_day(const struct hf_schedule *s, int64_t *day, int64_t last)
{
    int64_t y, z = *day;
    int m, d;
    civil_from_days(z, &y, &m, &d);
    while (z <= last) {
        int dim = days_in_month(y, m);
        if (month_allowed(s, m)) {
            for (; d <= dim && z <= last; d++, z++) {
                if (day_allowed(s, d, weekday(z))) {
                    *day = z;
                    return true;
                }
            }
        } else {
            z += dim - d + 1;
        }
        d = 1;
        if (++m > 12) {
            m = 1;
            y++;
        }
    }
    return false;
}

/* Move *day back to the last allowed day at or before it, no earlier than
 * first. */
static bool prev_day(const struct hf_schedule *s, int64_t *day, int64_t first)
{
    int64_t y, z = *day;
    int m, d;
    civil_from_days(z, &y, &m, &d);
    while (z >= first) {
        if (month_allowed(s, m)) {
            for (; d >= 1 && z >= first; d--, z--) {
                if (day_allowed(s, d, weekday(z))) {
                    *day = z;
                    return true;
                }
            }
        } else {
            z -= d;
        }
        if (--m < 1) {
            m = 12;
            y--;
        }
        d = days_in_month(y, m);
    }
    return false;
}

/*
 * The days of one 400-year cycle that run, as a bitmap: bit z for day z
 * counted from 1970-01-01.  Built a month at a time from 31-bit masks, so
 * a scan costs a few thousand word operations.
 */
#define CYCLE_WORDS ((size_t)((CYCLE_DAYS + 63) / 64))

static void cycle_map(const struct hf_schedule *s, uint64_t map[CYCLE_WORDS])
{
    memset(map, 0, CYCLE_WORDS * sizeof map[0]);
    int64_t z = 0;
    int w = weekday(0);
    for (int64_t y = 1970; y < 1970 + 400; y++) {
        for (int m = 1; m <= 12; m++) {
            int dim = days_in_month(y, m);
            if (month_allowed(s, m)) {
                /* Bit d - 1 for day d, from each field, then Vixie's rule. */
                uint64_t in_month = ((uint64_t)1 << dim) - 1;
                uint64_t by_dom = ((uint64_t)s->doms >> 1) & in_month;
                uint64_t week = 0;
                for (int k = 0; k < 7; k++)
                    week |= (uint64_t)((s->dows >> ((w + k) % 7)) & 1u) << k;
                uint64_t by_dow =
                    (week | week << 7 | week << 14 | week << 21 | week << 28) & in_month;
                uint64_t days = s->dom_star || s->dow_star ? by_dom & by_dow : by_dom | by_dow;
                size_t at = (size_t)z / 64;
                unsigned shift = (unsigned)(z % 64);
                map[at] |= days << shift;
                if (shift > 64 - 31 && at + 1 < CYCLE_WORDS)
                    map[at + 1] |= days >> (64 - shift);
            }
            z += dim;
            w = (w + dim) % 7;
        }
    }
}

static bool map_bit(const uint64_t map[CYCLE_WORDS], int64_t z)
{
    if (z >= CYCLE_DAYS)
        z -= CYCLE_DAYS; /* the cycle repeats */
    return (map[z / 64] >> (z % 64)) & 1u;
}

/* The allowed minutes of a day in order; returns how many (0..1440). */
static int day_minutes(const struct hf_schedule *s, int16_t out[DAY_MINUTES])
{
    int n = 0;
    for (int h = 0; h < 24; h++) {
        if (!((s->hours >> h) & 1u))
            continue;
        for (int mi = 0; mi < 60; mi++) {
            if ((s->minutes >> mi) & 1u)
                out[n++] = (int16_t)(h * 60 + mi);
        }
    }
    return n;
}

/* ---- parsing ----------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool has_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (is_blank(p[i]))
            return true;
    }
    return false;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A copy of p[0..len) fit to quote in a message: at most 24 characters,
 * anything unprintable shown as '?'. */
static const char *quoted(const char *p, size_t len, char out[32])
{
    size_t n = len > 24 ? 24 : len;
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    if (len > n) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is the value lo + i; NULL: numbers only */
    size_t nnames;
    const char *hint; /* what the field accepts, for a bad word */
};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, 0, "a number 0-59"},
    {"hour", 0, 23, NULL, 0, "a number 0-23"},
    {"day of month", 1, 31, NULL, 0, "a number 1-31"},
    {"month", 1, 12, month_names, 12, "a month (1-12 or jan-dec)"},
    {"day of week", 0, 7, dow_names, 7, "a day of the week (0-7 or sun-sat)"},
};

/* What a field item is when it is not right. */
static void say_not_item(const struct field *f, int idx, const char *p, size_t len, size_t item,
                         char *why, size_t whylen)
{
    char q[32];
    size_t end = item;
    while (end < len && p[end] != ',')
        end++;
    say(why, whylen, "cron field %d (%s): \"%s\" is not a number, range or step", idx + 1, f->name,
        quoted(p + item, end - item, q));
}

/*
 * One value at p[*i..len): digits, or a name when the field has them.
 * Returns false (with why) on anything else or out of range; item is where
 * the list item started, for the message.
 */
static bool field_value(const struct field *f, int idx, const char *p, size_t len, size_t item,
                        size_t *i, int *v, char *why, size_t whylen)
{
    char q[32];
    size_t start = *i;
    if (*i < len && p[*i] >= '0' && p[*i] <= '9') {
        long n = 0;
        while (*i < len && p[*i] >= '0' && p[*i] <= '9') {
            if (n < 100000)
                n = n * 10 + (p[*i] - '0');
            (*i)++;
        }
        if (n < f->lo || n > f->hi) {
            say(why, whylen, "cron field %d (%s): %s is out of range %d-%d", idx + 1, f->name,
                quoted(p + start, *i - start, q), f->lo, f->hi);
            return false;
        }
        *v = (int)n;
        return true;
    }
    while (*i < len && ((p[*i] >= 'a' && p[*i] <= 'z') || (p[*i] >= 'A' && p[*i] <= 'Z')))
        (*i)++;
    size_t wlen = *i - start;
    if (wlen == 0) {
        say_not_item(f, idx, p, len, item, why, whylen);
        return false;
    }
    for (size_t k = 0; f->names != NULL && wlen == 3 && k < f->nnames; k++) {
        if (lower(p[start]) == f->names[k][0] && lower(p[start + 1]) == f->names[k][1] &&
            lower(p[start + 2]) == f->names[k][2]) {
            *v = f->lo + (int)k;
            return true;
        }
    }
    say(why, whylen, "cron field %d (%s): \"%s\" is not %s", idx + 1, f->name,
        quoted(p + start, wlen, q), f->hint);
    return false;
}

/*
 * One field: a comma-separated list of `*`, a, a-b, * / n, a-b/n.  Sets the
 * allowed values' bits in *bits (weekday 7 as 0).
 */
static bool parse_field(const struct field *f, int idx, const char *p, size_t len, uint64_t *bits,
                        char *why, size_t whylen)
{
    char q[32];
    size_t i = 0;
    *bits = 0;
    for (;;) {
        size_t item = i;
        int a, b;
        bool range = false;
        if (i < len && p[i] == '*') {
            a = f->lo;
            b = f->hi;
            range = true;
            i++;
        } else {
            if (i >= len || p[i] == ',') {
                say(why, whylen, "cron field %d (%s): an empty item in \"%s\"", idx + 1, f->name,
                    quoted(p, len, q));
                return false;
            }
            if (!field_value(f, idx, p, len, item, &i, &a, why, whylen))
                return false;
            b = a;
            if (i < len && p[i] == '-') {
                i++;
                if (!field_value(f, idx, p, len, item, &i, &b, why, whylen))
                    return false;
                if (f->hi == 7 && b == 0 && a > 0)
                    b = 7; /* "fri-sun": Sunday as 7 */
                if (b < a) {
                    say(why, whylen, "cron field %d (%s): the range \"%s\" runs backwards", idx + 1,
                        f->name, quoted(p + item, i - item, q));
                    return false;
                }
                range = true;
            }
        }
        int step = 1;
        if (i < len && p[i] == '/') {
            if (!range) {
                /* Vixie refuses "5/15" too; say what was probably meant. */
                say(why, whylen, "cron field %d (%s): a step needs a range: %d-%d/... or */...",
                    idx + 1, f->name, a, f->hi);
                return false;
            }
            size_t s0 = ++i;
            long n = 0;
            while (i < len && p[i] >= '0' && p[i] <= '9') {
                if (n < 100000)
                    n = n * 10 + (p[i] - '0');
                i++;
            }
            if (i == s0) {
                say(why, whylen, "cron field %d (%s): a step is a number, as in */15", idx + 1,
                    f->name);
                return false;
            }
            if (n < 1 || n > f->hi) {
                say(why, whylen, "cron field %d (%s): step %s is out of range 1-%d", idx + 1,
                    f->name, quoted(p + s0, i - s0, q), f->hi);
                return false;
            }
            step = (int)n;
        }
        if (i < len && p[i] != ',') {
            say_not_item(f, idx, p, len, item, why, whylen);
            return false;
        }
        for (int v = a; v <= b; v += step)
            *bits |= (uint64_t)1 << (f->hi == 7 && v == 7 ? 0 : v);
        if (i >= len)
            return true;
        i++; /* the comma */
        if (i >= len) {
            say(why, whylen, "cron field %d (%s): an empty item in \"%s\"", idx + 1, f->name,
                quoted(p, len, q));
            return false;
        }
    }
}

/*
 * The gaps between consecutive runs, from one scan of a 400-year cycle: on a day that runs, the
 * runs are the same minutes T (first t0, last t1), so the gaps are those inside T and, between
 * runnable days k days apart, k days - (t1 - t0).  The cycle's last runnable day is followed by its
 * first one, 146097 days on.  Returns false when no day ever runs.
 */
static bool cron_gaps(struct hf_schedule *s)
{
    int16_t t[DAY_MINUTES];
    int n = day_minutes(s, t);
    uint64_t map[CYCLE_WORDS];
    cycle_map(s, map);
    int64_t first = -1, last = -1, min_days = INT64_MAX, max_days = 0;
    for (size_t i = 0; i < CYCLE_WORDS; i++) {
        for (uint64_t word = map[i]; word != 0; word &= word - 1) {
            int64_t z = (int64_t)(i * 64) + __builtin_ctzll(word);
            if (first < 0) {
                first = z;
            } else {
                min_days = z - last < min_days ? z - last : min_days;
                max_days = z - last > max_days ? z - last : max_days;
            }
            last = z;
        }
    }
    if (first < 0 || n == 0)
        return false;
    int64_t wrap = first + CYCLE_DAYS - last;
    min_days = wrap < min_days ? wrap : min_days;
    max_days = wrap > max_days ? wrap : max_days;

    int64_t span = (int64_t)(t[n - 1] - t[0]) * MINUTE_MS;
    s->min_gap_ms = min_days * DAY_MS - span;
    s->max_gap_ms = max_days * DAY_MS - span;
    for (int i = 1; i < n; i++) {
        int64_t g = (int64_t)(t[i] - t[i - 1]) * MINUTE_MS;
        s->min_gap_ms = g < s->min_gap_ms ? g : s->min_gap_ms;
        s->max_gap_ms = g > s->max_gap_ms ? g : s->max_gap_ms;
    }
    s->max_runs_per_day = n;
    return true;
}

static const struct {
    const char *name;
    const char *expr;
} shorthands[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

static bool word_is(const char *p, size_t len, const char *word)
{
    if (strlen(word) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (lower(p[i]) != word[i])
            return false;
    }
    return true;
}

/* The five fields of a cron expression into s. */
static hf_err parse_cron(const char *p, size_t len, struct hf_schedule *s, char *why, size_t whylen)
{
    const char *tok[5];
    size_t toklen[5];
    int ntok = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_blank(p[i]))
            i++;
        if (i >= len)
            break;
        size_t start = i;
        while (i < len && !is_blank(p[i]))
            i++;
        if (ntok < 5) {
            tok[ntok] = p + start;
            toklen[ntok] = i - start;
        }
        ntok++;
    }
    if (ntok != 5) {
        say(why, whylen, "a cron expression has 5 fields \"m h dom mon dow\", this one has %d",
            ntok);
        return HF_EINVAL;
    }
    uint64_t bits[5];
    for (int f = 0; f < 5; f++) {
        if (!parse_field(&fields[f], f, tok[f], toklen[f], &bits[f], why, whylen))
            return HF_EINVAL;
    }
    s->cron = true;
    s->minutes = bits[0];
    s->hours = (uint32_t)bits[1];
    s->doms = (uint32_t)bits[2];
    s->months = (uint32_t)bits[3];
    s->dows = (uint8_t)bits[4];
    s->dom_star = tok[2][0] == '*';
    s->dow_star = tok[4][0] == '*';
    if (!cron_gaps(s)) {
        say(why, whylen,
            "this cron expression never runs: none of its months has its days of the month "
            "(February 30?)");
        return HF_EINVAL;
    }
    return HF_OK;
}

hf_err hf_schedule_parse(const char *text, struct hf_schedule *s, char *why, size_t whylen)
{
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    if (text == NULL || s == NULL) {
        say(why, whylen, "%s", generic_why);
        return HF_EINVAL;
    }
    const char *p = text;
    size_t len = strlen(text);
    while (len > 0 && is_blank(*p)) {
        p++;
        len--;
    }
    while (len > 0 && is_blank(p[len - 1]))
        len--;
    if (len >= HF_SCHEDULE_TEXT_MAX) {
        say(why, whylen, "a schedule is at most %d characters", HF_SCHEDULE_TEXT_MAX - 1);
        return HF_EINVAL;
    }

    struct hf_schedule out;
    memset(&out, 0, sizeof out);
    memcpy(out.text, p, len);
    out.text[len] = '\0';

    hf_err err;
    if (len > 0 && p[0] == '@') {
        size_t i = 0;
        while (i < sizeof shorthands / sizeof shorthands[0] && !word_is(p, len, shorthands[i].name))
            i++;
        if (i == sizeof shorthands / sizeof shorthands[0]) {
            char q[32];
            say(why, whylen,
                "unknown shorthand \"%s\" (@hourly, @daily, @midnight, @weekly, @monthly, "
                "@yearly or @annually)",
                quoted(p, len, q));
            return HF_EINVAL;
        }
        const char *e = shorthands[i].expr;
        err = parse_cron(e, strlen(e), &out, why, whylen);
    } else if (len > 0 && !has_blank(p, len)) {
        /* One word: a duration or nothing. */
        int64_t ms;
        if (hf_duration_parse(out.text, false, &ms) != HF_OK) {
            say(why, whylen, "%s", generic_why);
            return HF_EINVAL;
        }
        if (ms < 1000) {
            char d[32];
            say(why, whylen, "an interval must be at least 1s, not %s",
                hf_duration_format(ms, d, sizeof d));
            return HF_EINVAL;
        }
        out.every_ms = ms;
        out.min_gap_ms = ms;
        out.max_gap_ms = ms;
        out.max_runs_per_day = (DAY_MS - 1) / ms + 1;
        err = HF_OK;
    } else if (len == 0) {
        say(why, whylen, "%s", generic_why);
        return HF_EINVAL;
    } else {
        err = parse_cron(p, len, &out, why, whylen);
    }
    if (err == HF_OK)
        *s = out;
    return err;
}

/* ---- slots ------------------------------------------------------------- */

int64_t hf_schedule_next(const struct hf_schedule *s, int64_t t_ms)
{
    assert(s->cron || s->every_ms > 0); /* filled by hf_schedule_parse */
    if (t_ms == INT64_MAX)
        return INT64_MAX;
    if (!s->cron) {
        int64_t q = floor_div(t_ms, s->every_ms);
        return q >= INT64_MAX / s->every_ms ? INT64_MAX : (q + 1) * s->every_ms;
    }
    /* The first whole minute at or after t_ms + 1. */
    int64_t m0 = floor_div(t_ms, MINUTE_MS) + 1;
    int64_t day = floor_div(m0, DAY_MINUTES);
    int mod = (int)(m0 - day * DAY_MINUTES);
    if (day < MIN_DAY) {
        day = MIN_DAY;
        mod = 0;
    }
    if (day > MAX_DAY)
        return INT64_MAX;
    int64_t last = day > MAX_DAY - CYCLE_DAYS ? MAX_DAY : day + CYCLE_DAYS;
    for (;;) {
        int64_t want = day;
        if (!next_day(s, &day, last))
            return INT64_MAX;
        int mi = first_minute_from(s, day == want ? mod : 0);
        if (mi >= 0) {
            int64_t base = day * DAY_MS;
            if (day == MAX_DAY && mi * MINUTE_MS > INT64_MAX - base)
                return INT64_MAX;
            return base + mi * MINUTE_MS;
        }
        if (day >= last)
            return INT64_MAX;
        day++;
        mod = 0;
    }
}

int64_t hf_schedule_prev(const struct hf_schedule *s, int64_t t_ms)
{
    assert(s->cron || s->every_ms > 0); /* filled by hf_schedule_parse */
    if (!s->cron) {
        int64_t q = floor_div(t_ms, s->every_ms);
        return q < INT64_MIN / s->every_ms ? INT64_MIN : q * s->every_ms;
    }
    int64_t m0 = floor_div(t_ms, MINUTE_MS);
    int64_t day = floor_div(m0, DAY_MINUTES);
    int mod = (int)(m0 - day * DAY_MINUTES);
    if (day < MIN_DAY)
        return INT64_MIN;
    int64_t first = day < MIN_DAY + CYCLE_DAYS ? MIN_DAY : day - CYCLE_DAYS;
    for (;;) {
        int64_t want = day;
        if (!prev_day(s, &day, first))
            return INT64_MIN;
        int mi = last_minute_upto(s, day == want ? mod : DAY_MINUTES - 1);
        if (mi >= 0)
            return day * DAY_MS + mi * MINUTE_MS;
        if (day <= first)
            return INT64_MIN;
        day--;
        mod = DAY_MINUTES - 1;
    }
}

int64_t hf_schedule_min_gap_ms(const struct hf_schedule *s)
{
    return s->min_gap_ms;
}

int64_t hf_schedule_max_gap_ms(const struct hf_schedule *s)
{
    return s->max_gap_ms;
}

int64_t hf_schedule_max_runs_per_day(const struct hf_schedule *s)
{
    return s->max_runs_per_day;
}

/* ---- runs in a window -------------------------------------------------- */

/* Whether some two consecutive days both run (most expressions; not
 * "0 0 1 * *"). */
static bool runs_on_consecutive_days(const struct hf_schedule *s)
{
    uint64_t map[CYCLE_WORDS];
    cycle_map(s, map);
    for (size_t i = 0; i < CYCLE_WORDS; i++) {
        uint64_t next = i + 1 < CYCLE_WORDS ? map[i + 1] : 0;
        if (map[i] & (map[i] >> 1 | next << 63))
            return true;
    }
    return map_bit(map, CYCLE_DAYS - 1) && map_bit(map, 0);
}

/*
 * The most runs in a window shorter than a day.  Such a window sees the
 * tail of one day and the head of the next at most, so the answer is the
 * fullest window on the clock face, wrapping past midnight only when two
 * consecutive days can both run: exact.
 */
static int64_t runs_in_part_day(const struct hf_schedule *s, int64_t period_ms)
{
    int16_t t[DAY_MINUTES];
    int n = day_minutes(s, t);
    int best = 0, best_wrap = 0;
    int j = 0; /* exclusive end of the window starting at t[i], on a doubled day */
    for (int i = 0; i < n; i++) {
        if (j < i)
            j = i;
        while (j < i + n) {
            int64_t at = t[j % n] + (j >= n ? DAY_MINUTES : 0);
            if ((at - t[i]) * MINUTE_MS >= period_ms)
                break;
            j++;
        }
        int in_day = (j < n ? j : n) - i;
        best = in_day > best ? in_day : best;
        best_wrap = j - i > best_wrap ? j - i : best_wrap;
    }
    if (best_wrap > best && runs_on_consecutive_days(s))
        best = best_wrap;
    return best;
}

/*
 * A window of exactly q days, wherever it starts, covers q - 1 whole days
 * and two partial ones whose runs together are at most one day's (the tail
 * of the first day and the head of the last are complementary parts of the
 * clock face).  So the most runs are max_runs_per_day times the most of
 * [runnable days strictly inside] + [either end day runnable], taken over
 * every start day of the 400-year cycle: exact.  Windows of a cycle or
 * more get the bound q + 1 days.
 */
static int64_t runnable_days_in(const struct hf_schedule *s, int64_t q)
{
    if (q >= CYCLE_DAYS)
        return q + 1;
    uint64_t map[CYCLE_WORDS];
    cycle_map(s, map);
    int64_t inner = 0; /* runnable days among d0 + 1 .. d0 + q - 1 */
    for (int64_t j = 1; j < q; j++)
        inner += map_bit(map, j);
    int64_t best = 0;
    for (int64_t d0 = 0; d0 < CYCLE_DAYS; d0++) {
        int64_t here = inner + (map_bit(map, d0) || map_bit(map, d0 + q));
        best = here > best ? here : best;
        if (q >= 2)
            inner += (int64_t)map_bit(map, d0 + q) - (int64_t)map_bit(map, d0 + 1);
    }
    return best;
}

/*
 * Intervals: slots are every_ms apart, so a half-open window of length P
 * holds at most ceil(P / every_ms), and the window starting at a slot holds
 * exactly that.  Quota windows are half-open ([start, start + per)), so a
 * window never holds both ends.
 *
 * Cron, period under a day: runs_in_part_day().  Whole days:
 * runnable_days_in().  Both exact.  Other lengths, q days and r more: the
 * smaller of two bounds, q one-day windows (at most max_runs_per_day each)
 * plus one of r, and the window of q + 1 days that contains the whole;
 * this can count a little high, never low.
 */
int64_t hf_schedule_runs_in(const struct hf_schedule *s, int64_t period_ms)
{
    assert(s->cron || s->every_ms > 0); /* filled by hf_schedule_parse */
    if (period_ms <= 0)
        return 0;
    if (!s->cron)
        return (period_ms - 1) / s->every_ms + 1;
    int64_t per_day = s->max_runs_per_day;
    if (period_ms < DAY_MS)
        return runs_in_part_day(s, period_ms);
    int64_t q = period_ms / DAY_MS, r = period_ms % DAY_MS;
    if (r == 0)
        return runnable_days_in(s, q) * per_day;
    int64_t a = q * per_day + runs_in_part_day(s, r);
    int64_t b = runnable_days_in(s, q + 1) * per_day;
    return a < b ? a : b;
}
