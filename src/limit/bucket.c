/*
 * The token bucket; see limit/bucket.h and docs/internals/limits.md.
 *
 * Exact arithmetic.  A token is worth per_ms units and the bucket gains
 * count units every millisecond, so "count per per_ms" holds to the unit:
 * 5/1m is 5 units a ms against 60000 a token, one token per 12000 ms,
 * with no rounding anywhere, and a rate that does not divide evenly (7/1s)
 * carries its remainder in `level` instead of losing it.  Floating point
 * would drift over a long-running process; integers cannot.
 *
 * Bounds: cap (burst * per_ms) and count are at most 2^62, and level never
 * exceeds cap, so every sum below stays under 2^63.
 */
#include "limit/bucket.h"

#include <assert.h>

#define UNITS_MAX ((int64_t)1 << 62)

hf_err hf_bucket_init(struct hf_bucket *b, int64_t count, int64_t per_ms, int64_t burst)
{
    assert(b != NULL);
    int64_t cap = 0;
    if (count < 0 || per_ms < 0 || burst < 0)
        return HF_EINVAL;
    if (count > 0) {
        if (burst == 0)
            burst = count;
        if (per_ms == 0 || count > UNITS_MAX || __builtin_mul_overflow(burst, per_ms, &cap) ||
            cap > UNITS_MAX)
            return HF_EINVAL;
    }
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        return HF_ENOMEM;
    b->count = count;
    b->per_ms = count > 0 ? per_ms : 0;
    b->cap = cap;
    b->level = cap;
    b->last_ms = 0;
    b->started = false;
    return HF_OK;
}

void hf_bucket_fini(struct hf_bucket *b)
{
    if (b != NULL)
        pthread_mutex_destroy(&b->mu);
}

/* Locked: add what has dripped in since last_ms. */
static void refill(struct hf_bucket *b, int64_t now_ms)
{
    if (!b->started) {
        b->started = true;
        b->last_ms = now_ms;
        return;
    }
    /* A clock that steps back adds nothing, and last_ms stays where it was
     * so the tokens of that span are not handed out twice. */
    if (now_ms <= b->last_ms)
        return;
    int64_t elapsed;
    if (__builtin_sub_overflow(now_ms, b->last_ms, &elapsed))
        elapsed = INT64_MAX;
    /* Whole ms until full: compared first, so elapsed * count is only
     * computed when it is below cap - level + count. */
    int64_t to_full = (b->cap - b->level + b->count - 1) / b->count;
    if (elapsed >= to_full)
        b->level = b->cap;
    else
        b->level += elapsed * b->count;
    b->last_ms = now_ms;
}

bool hf_bucket_take(struct hf_bucket *b, int64_t now_ms, int64_t *wait_ms)
{
    assert(b != NULL);
    int64_t wait = 0;
    if (b->count == 0) { /* read-only after init: no lock */
        if (wait_ms != NULL)
            *wait_ms = 0;
        return true;
    }
    pthread_mutex_lock(&b->mu);
    refill(b, now_ms);
    bool taken = b->level >= b->per_ms;
    if (taken)
        b->level -= b->per_ms;
    else /* ceil(deficit / count); both terms at most 2^62 */
        wait = (b->per_ms - b->level + b->count - 1) / b->count;
    pthread_mutex_unlock(&b->mu);
    if (wait_ms != NULL)
        *wait_ms = wait;
    return taken;
}

void hf_bucket_refund(struct hf_bucket *b)
{
    assert(b != NULL);
    if (b->count == 0)
        return;
    pthread_mutex_lock(&b->mu);
    if (b->cap - b->level < b->per_ms)
        b->level = b->cap;
    else
        b->level += b->per_ms;
    pthread_mutex_unlock(&b->mu);
}

int64_t hf_bucket_available(struct hf_bucket *b, int64_t now_ms)
{
    assert(b != NULL);
    if (b->count == 0)
        return INT64_MAX;
    pthread_mutex_lock(&b->mu);
    refill(b, now_ms);
    int64_t n = b->level / b->per_ms;
    pthread_mutex_unlock(&b->mu);
    return n;
}
