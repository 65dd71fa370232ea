/*
 * HTTP-date, Retry-After and rate-limit reset parsing; see date.h.
 *
 * Calendar arithmetic is left to libc (strptime, timegm, gmtime_r).  Header
 * values arrive as (pointer, length) without a terminating NUL, so each one
 * is copied into a small stack buffer first; anything longer than a valid
 * value could be is refused before it is copied.  Thread-safe.
 */
#include "http/date.h"

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The longest valid HTTP-date is an rfc850-date with a Wednesday:
 * "Wednesday, 09-Nov-94 08:49:37 GMT" (33 bytes).  64 leaves room for
 * surrounding whitespace without letting a hostile value near the stack. */
#define DATE_MAX_LEN 64

/* Waits further away than this are not believed: a server asking for more
 * than ten years is broken, and refusing the value keeps every later
 * addition to now_ms far from overflow.  Ten years of 365.25 days. */
#define MAX_WAIT_S ((int64_t)10 * 36525 * 864)
#define MAX_WAIT_MS (MAX_WAIT_S * 1000)

/* RateLimit-Reset values above this are epoch seconds (2001-09-09), below it
 * a delta; see date.h. */
#define RESET_EPOCH_THRESHOLD_S ((int64_t)1000000000)

/* Largest integer part we keep accumulating; anything past it is out of
 * range for every caller, so the exact value no longer matters. */
#define NUMBER_SATURATE ((int64_t)1000000000000000LL)

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void trim_ows(const char **value, size_t *len)
{
    const char *v = *value;
    size_t n = *len;
    while (n > 0 && is_ows(v[0])) {
        v++;
        n--;
    }
    while (n > 0 && is_ows(v[n - 1]))
        n--;
    *value = v;
    *len = n;
}

/*
 * strptime() matches %a and %b against the names of the current LC_TIME
 * locale.  The holdfast program never calls setlocale(), so that is "C", but
 * an application linking the library may well have called
 * setlocale(LC_ALL, ""), and a German locale would then reject "Sun, 06 Nov".
 * So the parse runs with a thread-local switch to a "C" locale object made
 * once per process.  If even that cannot be created (out of memory at the
 * first call) the current locale is used, which is right in the common case.
 */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale = (locale_t)0;

static void c_locale_create(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static const char *strptime_c(const char *s, const char *fmt, struct tm *tm)
{
    pthread_once(&c_locale_once, c_locale_create);
    if (c_locale == (locale_t)0)
        return strptime(s, fmt, tm);
    locale_t saved = uselocale(c_locale);
    const char *end = strptime(s, fmt, tm);
    uselocale(saved);
    return end;
}

/* The three forms of RFC 9110 5.6.7, most common first.  A space in a
 * strptime format matches any run of whitespace, which is what asctime's
 * space-padded day ("Nov  6") needs. */
static const char *const date_formats[] = {
    "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    "%A, %d-%b-%y %H:%M:%S GMT", /* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
    "%a %b %d %H:%M:%S %Y",      /* asctime-date: Sun Nov  6 08:49:37 1994 */
};

/*
 * Turn broken-down UTC time into epoch seconds, refusing dates that do not
 * exist.  strptime checks each field's range but not the combination, and
 * timegm() silently normalises "31 Feb" to early March; converting back and
 * comparing catches that.  A leap second (":60", allowed by RFC 9110) is
 * taken as the second after ":59", which is what POSIX time can express.
 */
static bool tm_to_epoch(struct tm *tm, int64_t *epoch_s)
{
    int leap = 0;
    if (tm->tm_sec == 60) {
        tm->tm_sec = 59;
        leap = 1;
    }
    struct tm want = *tm;
    time_t t = timegm(tm);
    struct tm got;
    if (gmtime_r(&t, &got) == NULL)
        return false;
    if (got.tm_year != want.tm_year || got.tm_mon != want.tm_mon || got.tm_mday != want.tm_mday ||
        got.tm_hour != want.tm_hour || got.tm_min != want.tm_min || got.tm_sec != want.tm_sec)
        return false;
    *epoch_s = (int64_t)t + leap;
    return true;
}

/*
 * rfc850-date's two-digit year: RFC 9110 asks recipients to read a year
 * more than 50 years in the future as the most recent past year with those
 * digits.  Doing that needs the current date, which hf_http_date_parse()
 * does not take; strptime's POSIX pivot (69-99 -> 19xx, 00-68 -> 20xx) gives
 * the same answer for every year except 69-75 until the 2040s.  The form
 * has been obsolete since 1999, so the approximation is accepted.
 */
bool hf_http_date_parse(const char *value, size_t len, int64_t *epoch_s)
{
    char buf[DATE_MAX_LEN + 1];

    if (value == NULL)
        return false;
    trim_ows(&value, &len);
    if (len == 0 || len > DATE_MAX_LEN)
        return false;
    memcpy(buf, value, len);
    buf[len] = '\0';

    for (size_t i = 0; i < sizeof(date_formats) / sizeof(date_formats[0]); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime_c(buf, date_formats[i], &tm);
        /* The whole value must match; an embedded NUL stops strptime short
         * of buf + len and is refused here too. */
        if (end == NULL || end != buf + len)
            continue;
        return tm_to_epoch(&tm, epoch_s);
    }
    return false;
}

/* English names regardless of locale: strftime's %a/%b would follow LC_TIME. */
static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* IMF-fixdate has a four-digit year, so times are clamped to
 * 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define FORMAT_MAX_EPOCH_S ((int64_t)253402300799LL)

char *hf_http_date_format(int64_t epoch_s, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return buf;
    if (epoch_s < 0)
        epoch_s = 0;
    if (epoch_s > FORMAT_MAX_EPOCH_S)
        epoch_s = FORMAT_MAX_EPOCH_S;
    /* time_t may be 32 bits; then the clamp above is not enough. */
    time_t t = (time_t)epoch_s;
    struct tm tm;
    if ((int64_t)t != epoch_s || gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
        tm.tm_mon < 0 || tm.tm_mon > 11) {
        buf[0] = '\0';
        return buf;
    }
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday], tm.tm_mday,
             month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/*
 * Wait from now_ms until the absolute time at_ms: 0 when it has passed,
 * false when it is more than MAX_WAIT_MS away.  Written so that no
 * subtraction can overflow whatever now_ms is: callers keep |at_ms| below
 * 1e18, so at_ms - MAX_WAIT_MS is safe, and the final subtraction only runs
 * when its result is in (0, MAX_WAIT_MS].
 */
static bool wait_until(int64_t at_ms, int64_t now_ms, int64_t *wait_ms)
{
    if (now_ms >= at_ms) {
        *wait_ms = 0;
        return true;
    }
    if (now_ms < at_ms - MAX_WAIT_MS)
        return false;
    *wait_ms = at_ms - now_ms;
    return true;
}

/*
 * Read 1*DIGIT from v[*i..len).  Saturates at NUMBER_SATURATE so a long
 * string of digits cannot overflow; the caller treats anything that large
 * as out of range.  False when there is no digit at all.
 */
static bool read_digits(const char *v, size_t len, size_t *i, int64_t *out)
{
    size_t start = *i;
    int64_t n = 0;
    while (*i < len && is_digit(v[*i])) {
        if (n < NUMBER_SATURATE)
            n = n * 10 + (v[*i] - '0');
        (*i)++;
    }
    *out = n;
    return *i > start;
}

bool hf_http_retry_after(const char *value, size_t len, int64_t now_ms, int64_t *wait_ms)
{
    if (value == NULL)
        return false;
    trim_ows(&value, &len);
    if (len == 0)
        return false;

    /* delta-seconds = 1*DIGIT; a sign, fraction or exponent is garbage. */
    if (is_digit(value[0])) {
        size_t i = 0;
        int64_t s;
        read_digits(value, len, &i, &s);
        if (i != len || s > MAX_WAIT_S)
            return false;
        *wait_ms = s * 1000;
        return true;
    }

    int64_t epoch_s;
    if (!hf_http_date_parse(value, len, &epoch_s))
        return false;
    return wait_until(epoch_s * 1000, now_ms, wait_ms);
}

/*
 * The reset headers are not standardised beyond "a number of seconds", and
 * some APIs send fractions ("1.5").  A fraction is rounded up to the next
 * millisecond: waking a little late costs nothing, waking early costs a 429.
 */
bool hf_http_ratelimit_reset(const char *value, size_t len, int64_t now_ms, int64_t *wait_ms)
{
    if (value == NULL)
        return false;
    trim_ows(&value, &len);

    size_t i = 0;
    int64_t s;
    if (!read_digits(value, len, &i, &s))
        return false;

    int64_t frac_ms = 0;
    if (i < len && value[i] == '.') {
        i++;
        size_t start = i;
        int scale = 100;
        bool rest_nonzero = false;
        while (i < len && is_digit(value[i])) {
            if (scale > 0) {
                frac_ms += (value[i] - '0') * scale;
                scale /= 10;
            } else if (value[i] != '0') {
                rest_nonzero = true;
            }
            i++;
        }
        if (i == start)
            return false; /* "1." */
        if (rest_nonzero)
            frac_ms++;
    }
    if (i != len)
        return false;

    if (s > RESET_EPOCH_THRESHOLD_S) {
        /* Epoch seconds.  A value beyond the saturation point is so far in
         * the future that it is refused like any other absurd wait. */
        if (s >= NUMBER_SATURATE)
            return false;
        return wait_until(s * 1000 + frac_ms, now_ms, wait_ms);
    }
    /* A delta; s <= 1e9 here, so the product cannot overflow. */
    int64_t ms = s * 1000 + frac_ms;
    if (ms > MAX_WAIT_MS)
        return false;
    *wait_ms = ms;
    return true;
}
