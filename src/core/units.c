/*
 * Durations, sizes and rates as people write them in configs and on the
 * command line; see units.h.
 *
 * The grammar is deliberately small: unsigned decimal digits, then an
 * optional unit, with whitespace allowed only around the whole value.  No
 * signs, fractions or inner spaces ("1.5s", "-1s", "10 s" are errors), so a
 * typo can never silently become a different number.  Every multiplication
 * is overflow-checked.  Pure functions, thread-safe.
 */
#include "core/units.h"

#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    uint64_t factor;
};

/* Duration units are lowercase only: "M" could be read as months. */
static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

/* Size units, case-insensitive, all powers of 1024 (as memory is counted). */
static const struct unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1ULL << 10},
    {"kb", 1ULL << 10},
    {"kib", 1ULL << 10},
    {"m", 1ULL << 20},
    {"mb", 1ULL << 20},
    {"mib", 1ULL << 20},
    {"g", 1ULL << 30},
    {"gb", 1ULL << 30},
    {"gib", 1ULL << 30},
    {"t", 1ULL << 40},
    {"tb", 1ULL << 40},
    {"tib", 1ULL << 40},
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Narrow [*p, *p + *len) to its non-space middle. */
static void trim(const char **p, size_t *len)
{
    while (*len > 0 && is_space(**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && is_space((*p)[*len - 1]))
        (*len)--;
}

/* Exact match of the span against a NUL-terminated word. */
static bool span_is(const char *p, size_t len, const char *word, bool nocase)
{
    if (strlen(word) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = nocase ? lower(p[i]) : p[i];
        if (c != word[i])
            return false;
    }
    return true;
}

/*
 * Leading decimal digits of the span into *v.  Returns how many digits were
 * read (0: none), or SIZE_MAX when the number does not fit in 64 bits.
 */
static size_t digits(const char *p, size_t len, uint64_t *v)
{
    size_t i = 0;
    uint64_t n = 0;
    *v = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9') {
        uint64_t d = (uint64_t)(p[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return SIZE_MAX;
        n = n * 10 + d;
        i++;
    }
    *v = n;
    return i;
}

/*
 * A number followed by one unit of the table, the whole span.  With
 * number_optional a bare unit means one of it ("s" in the rate "10/s").
 */
static hf_err number_with_unit(const char *p, size_t len, const struct unit *units, size_t nunits,
                               bool nocase, bool number_optional, uint64_t *out)
{
    uint64_t n;
    size_t nd = digits(p, len, &n);
    if (nd == SIZE_MAX)
        return HF_EINVAL;
    if (nd == 0) {
        if (!number_optional)
            return HF_EINVAL;
        n = 1;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (!span_is(p + nd, len - nd, units[i].name, nocase))
            continue;
        if (n > UINT64_MAX / units[i].factor)
            return HF_EINVAL;
        *out = n * units[i].factor;
        return HF_OK;
    }
    return HF_EINVAL;
}

/*
 * A duration span: a bare number is seconds.  INT64_MAX itself is reserved
 * for "forever", so a finite duration must stay below it.
 */
static hf_err duration_span(const char *p, size_t len, bool allow_forever, bool number_optional,
                            int64_t *ms)
{
    uint64_t v;
    if (span_is(p, len, "forever", true)) {
        if (!allow_forever)
            return HF_EINVAL;
        *ms = INT64_MAX;
        return HF_OK;
    }
    if (len > 0 && p[len - 1] >= '0' && p[len - 1] <= '9') {
        /* Bare number: seconds.  Only digits may precede, checked below. */
        uint64_t n;
        if (digits(p, len, &n) != len || n > (uint64_t)(INT64_MAX - 1) / 1000)
            return HF_EINVAL;
        *ms = (int64_t)(n * 1000);
        return HF_OK;
    }
    hf_err err =
        number_with_unit(p, len, duration_units, sizeof duration_units / sizeof duration_units[0],
                         false, number_optional, &v);
    if (err)
        return err;
    if (v >= (uint64_t)INT64_MAX)
        return HF_EINVAL;
    *ms = (int64_t)v;
    return HF_OK;
}

hf_err hf_duration_parse(const char *s, bool allow_forever, int64_t *ms)
{
    if (s == NULL || ms == NULL)
        return HF_EINVAL;
    size_t len = strlen(s);
    trim(&s, &len);
    return duration_span(s, len, allow_forever, false, ms);
}

hf_err hf_size_parse(const char *s, uint64_t *bytes)
{
    if (s == NULL || bytes == NULL)
        return HF_EINVAL;
    size_t len = strlen(s);
    trim(&s, &len);
    return number_with_unit(s, len, size_units, sizeof size_units / sizeof size_units[0], true,
                            false, bytes);
}

hf_err hf_rate_parse(const char *s, int64_t *count, int64_t *per_ms)
{
    if (s == NULL || count == NULL || per_ms == NULL)
        return HF_EINVAL;
    size_t len = strlen(s);
    trim(&s, &len);
    const char *slash = memchr(s, '/', len);
    if (slash == NULL)
        return HF_EINVAL;
    size_t clen = (size_t)(slash - s);
    uint64_t n;
    if (clen == 0 || digits(s, clen, &n) != clen || n == 0 || n > (uint64_t)INT64_MAX)
        return HF_EINVAL;
    int64_t per;
    hf_err err = duration_span(slash + 1, len - clen - 1, false, true, &per);
    if (err)
        return err;
    if (per <= 0)
        return HF_EINVAL;
    *count = (int64_t)n;
    *per_ms = per;
    return HF_OK;
}

char *hf_duration_format(int64_t ms, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return buf;
    if (ms == INT64_MAX) {
        snprintf(buf, len, "forever");
        return buf;
    }
    /* Work on the magnitude as unsigned so INT64_MIN has one too. */
    uint64_t mag = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    const char *sign = ms < 0 ? "-" : "";
    if (mag == 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    size_t i = sizeof duration_units / sizeof duration_units[0];
    while (i-- > 1) {
        if (mag % duration_units[i].factor == 0)
            break;
    }
    snprintf(buf, len, "%s%llu%s", sign, (unsigned long long)(mag / duration_units[i].factor),
             duration_units[i].name);
    return buf;
}

char *hf_duration_span(int64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *name;
        int64_t ms;
    } parts[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (ms == INT64_MAX) {
        snprintf(buf, len, "forever");
        return buf;
    }
    if (ms <= 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    size_t o = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && o < len; i++) {
        if (ms >= parts[i].ms) {
            int n =
                snprintf(buf + o, len - o, "%lld%s", (long long)(ms / parts[i].ms), parts[i].name);
            if (n < 0)
                break;
            o += (size_t)n;
            ms %= parts[i].ms;
        }
    }
    return buf;
}
