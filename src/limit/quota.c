/*
 * The quota; see limit/quota.h and docs/internals/limits.md.
 *
 * The state is one pair (window, used).  Every call first moves it to
 * now_ms's window, which resets used when the window changed: no timer
 * fires at midnight, the first request after it sees the new window.
 */
#include "limit/quota.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>

hf_err hf_quota_init(struct hf_quota *q, int64_t count, int64_t per_ms)
{
    assert(q != NULL);
    if (count < 0 || per_ms < 0 || (count > 0 && per_ms == 0))
        return HF_EINVAL;
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return HF_ENOMEM;
    q->count = count;
    q->per_ms = count > 0 ? per_ms : 0;
    q->window_ms = 0;
    q->used = 0;
    return HF_OK;
}

void hf_quota_fini(struct hf_quota *q)
{
    if (q != NULL)
        pthread_mutex_destroy(&q->mu);
}

/*
 * The start of the window holding now_ms: the largest multiple of per_ms
 * not after it.  C's % truncates toward zero, so times before 1970 need
 * the remainder lifted; only within per_ms of INT64_MIN does the start
 * saturate instead of being a true multiple.
 */
static int64_t window_of(int64_t per_ms, int64_t now_ms)
{
    int64_t r = now_ms % per_ms;
    if (r < 0)
        r += per_ms;
    int64_t start;
    if (__builtin_sub_overflow(now_ms, r, &start))
        return INT64_MIN;
    return start;
}

/* Locked: move to now_ms's window. */
static void roll(struct hf_quota *q, int64_t now_ms)
{
    int64_t w = window_of(q->per_ms, now_ms);
    if (w != q->window_ms) {
        q->window_ms = w;
        q->used = 0;
    }
}

bool hf_quota_take(struct hf_quota *q, int64_t now_ms)
{
    assert(q != NULL);
    if (q->count == 0) /* read-only after init: no lock */
        return true;
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    bool ok = q->used < q->count;
    if (ok)
        q->used++;
    pthread_mutex_unlock(&q->mu);
    return ok;
}

void hf_quota_refund(struct hf_quota *q, int64_t now_ms)
{
    assert(q != NULL);
    if (q->count == 0)
        return;
    pthread_mutex_lock(&q->mu);
    /* The take being undone counted in this window only if it is still
     * the stored one; a new window has not been charged for it. */
    if (window_of(q->per_ms, now_ms) == q->window_ms && q->used > 0)
        q->used--;
    pthread_mutex_unlock(&q->mu);
}

int64_t hf_quota_remaining(struct hf_quota *q, int64_t now_ms)
{
    assert(q != NULL);
    if (q->count == 0)
        return INT64_MAX;
    pthread_mutex_lock(&q->mu);
    roll(q, now_ms);
    int64_t left = q->used < q->count ? q->count - q->used : 0;
    pthread_mutex_unlock(&q->mu);
    return left;
}

int64_t hf_quota_reset_at(struct hf_quota *q, int64_t now_ms)
{
    assert(q != NULL);
    if (q->count == 0)
        return INT64_MAX;
    int64_t next;
    if (__builtin_add_overflow(window_of(q->per_ms, now_ms), q->per_ms, &next))
        return INT64_MAX;
    return next;
}

void hf_quota_snapshot(struct hf_quota *q, int64_t *window_start_ms, int64_t *used)
{
    assert(q != NULL && window_start_ms != NULL && used != NULL);
    pthread_mutex_lock(&q->mu);
    *window_start_ms = q->window_ms;
    *used = q->used;
    pthread_mutex_unlock(&q->mu);
}

void hf_quota_restore(struct hf_quota *q, int64_t window_start_ms, int64_t used)
{
    assert(q != NULL);
    pthread_mutex_lock(&q->mu);
    q->window_ms = window_start_ms;
    q->used = used > 0 ? used : 0;
    pthread_mutex_unlock(&q->mu);
}

int hf_quota_format(int64_t window_start_ms, int64_t used, char *buf, size_t len)
{
    if (buf == NULL || len < HF_QUOTA_TEXT_MAX) {
        if (buf != NULL && len > 0)
            buf[0] = '\0';
        return -1;
    }
    return snprintf(buf, len, "%" PRId64 " %" PRId64, window_start_ms, used);
}

/* A decimal integer at *p, optionally negative, without overflow; moves *p
 * past it.  No '+', no whitespace, at least one digit. */
static bool read_i64(const char **p, bool allow_minus, int64_t *out)
{
    const char *s = *p;
    bool neg = false;
    if (allow_minus && *s == '-') {
        neg = true;
        s++;
    }
    if (*s < '0' || *s > '9')
        return false;
    /* Accumulated negatively: -INT64_MIN does not fit, INT64_MIN does. */
    int64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, *s - '0', &v))
            return false;
    }
    if (!neg && v == INT64_MIN)
        return false;
    *out = neg ? v : -v;
    *p = s;
    return true;
}

bool hf_quota_parse(const char *text, int64_t *window_start_ms, int64_t *used)
{
    assert(window_start_ms != NULL && used != NULL);
    if (text == NULL)
        return false;
    const char *p = text;
    int64_t w, u;
    if (!read_i64(&p, true, &w) || *p++ != ' ' || !read_i64(&p, false, &u) || *p != '\0')
        return false;
    *window_start_ms = w;
    *used = u;
    return true;
}
