/*
 * Freshness lifetime and initial age; see freshness.h.
 */
#include "http/freshness.h"

#include <stdlib.h>
#include <strings.h>

#include "http/cache_control.h"
#include "http/date.h"
#include "http/headers.h"

bool hf_status_heuristic(int status)
{
    switch (status) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return true;
    default:
        return false;
    }
}

/* Times are clamped to +-2^53 ms (285,000 years either side of 1970) so no
 * sum or difference below can overflow, whatever the caller passes. */
#define TIME_LIMIT_MS ((int64_t)1 << 53)

static int64_t clamp_time(int64_t t)
{
    return t > TIME_LIMIT_MS ? TIME_LIMIT_MS : t < -TIME_LIMIT_MS ? -TIME_LIMIT_MS : t;
}

static bool header_date(const char *headers, size_t len, const char *name, int64_t *epoch_s)
{
    const char *v;
    size_t vlen;
    return hf_headers_find(headers, len, name, &v, &vlen) && hf_http_date_parse(v, vlen, epoch_s);
}

static void parse_cc(const char *headers, size_t len, struct hf_cache_control *cc)
{
    hf_cache_control_init(cc);
    size_t pos = 0;
    const char *name, *value;
    size_t nlen, vlen;
    while (hf_headers_next(headers, len, &pos, &name, &nlen, &value, &vlen))
        if (nlen == 13 && strncasecmp(name, "Cache-Control", 13) == 0)
            hf_cache_control_parse(cc, value, vlen);
}

int64_t hf_freshness_lifetime_ms(int status, const char *headers, size_t len, int64_t response_ms)
{
    struct hf_cache_control cc;
    parse_cc(headers, len, &cc);
    response_ms = clamp_time(response_ms);
    if (cc.s_maxage_s >= 0)
        return cc.s_maxage_s * 1000;
    if (cc.max_age_s >= 0)
        return cc.max_age_s * 1000;

    int64_t date_s;
    if (!header_date(headers, len, "Date", &date_s))
        date_s = response_ms / 1000;
    const char *v;
    size_t vlen;
    if (hf_headers_find(headers, len, "Expires", &v, &vlen)) {
        int64_t expires_s;
        /* An invalid Expires, "0" included, means already expired. */
        if (!hf_http_date_parse(v, vlen, &expires_s) || expires_s <= date_s)
            return 0;
        return (expires_s - date_s) * 1000;
    }
    /* RFC 9111 4.2.2: a heuristic only without explicit expiry, and only for
     * a heuristically cacheable status or, per 5.2.2.9, an answer marked
     * public. */
    int64_t lm_s;
    if ((hf_status_heuristic(status) || cc.public_) &&
        header_date(headers, len, "Last-Modified", &lm_s) && lm_s < date_s) {
        int64_t h = (date_s - lm_s) * 100; /* 10%, in ms */
        return h < HF_HEURISTIC_MAX_MS ? h : HF_HEURISTIC_MAX_MS;
    }
    return 0;
}

int64_t hf_initial_age_ms(const char *headers, size_t len, int64_t request_ms, int64_t response_ms)
{
    request_ms = clamp_time(request_ms);
    response_ms = clamp_time(response_ms);
    int64_t apparent = 0, age_value = 0, date_s;
    if (header_date(headers, len, "Date", &date_s) && response_ms > date_s * 1000)
        apparent = response_ms - date_s * 1000;
    const char *v;
    size_t vlen;
    if (hf_headers_find(headers, len, "Age", &v, &vlen)) {
        int64_t a = 0;
        size_t i = 0;
        for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++)
            a = a < 2147483648LL ? a * 10 + (v[i] - '0') : a; /* RFC 9111 1.2.2: clamp */
        if (i == vlen && vlen > 0)
            age_value = (a > 2147483648LL ? 2147483648LL : a) * 1000;
    }
    int64_t delay = response_ms > request_ms ? response_ms - request_ms : 0;
    int64_t corrected = age_value + delay;
    return apparent > corrected ? apparent : corrected;
}
