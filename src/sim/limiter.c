/*
 * One simulated API's limits: a token bucket for the rate (monotonic
 * clock) and a fixed-window quota (wall clock), both from src/limit/, and
 * the X-RateLimit-* values a client sees.  Reset is when Remaining next
 * goes up: the bucket's next token, or the end of the quota's window.
 */
#include "sim/sim_impl.h"

#define DEFAULT_RATE_COUNT 600
#define DEFAULT_RATE_PER_MS 60000

hf_err hf_sim_limiter_init(struct hf_sim_limiter *l, const struct hf_sim_limit *lim)
{
    *l = (struct hf_sim_limiter){0};
    int64_t count = lim->rate_count, per = lim->rate_per_ms;
    if (count == 0) {
        count = DEFAULT_RATE_COUNT;
        per = DEFAULT_RATE_PER_MS;
    }
    hf_err err;
    if (count > 0) {
        if ((err = hf_bucket_init(&l->bucket, count, per, count)) != HF_OK)
            return err;
        l->has_bucket = true;
    }
    if (lim->quota_count > 0) {
        if ((err = hf_quota_init(&l->quota, lim->quota_count, lim->quota_per_ms)) != HF_OK) {
            hf_sim_limiter_fini(l);
            return err;
        }
        l->has_quota = true;
    }
    return HF_OK;
}

void hf_sim_limiter_fini(struct hf_sim_limiter *l)
{
    if (l->has_bucket)
        hf_bucket_fini(&l->bucket);
    if (l->has_quota)
        hf_quota_fini(&l->quota);
    l->has_bucket = l->has_quota = false;
}

static int64_t ceil_s(int64_t ms)
{
    return ms / 1000 + (ms % 1000 != 0);
}

/* The values for the bucket alone and the quota alone; keep the tighter. */
static void describe(struct hf_sim_limiter *l, int64_t mono_ms, int64_t wall_ms,
                     struct hf_sim_rate *out)
{
    *out = (struct hf_sim_rate){0};
    if (l->has_bucket) {
        int64_t left = hf_bucket_available(&l->bucket, mono_ms), wait = 0;
        /* With none left, a take fails without taking and says when the
         * next token comes; with some left, one comes within a token's
         * interval at the latest. */
        if (left > 0 || hf_bucket_take(&l->bucket, mono_ms, &wait))
            wait = (l->bucket.per_ms + l->bucket.count - 1) / l->bucket.count;
        *out = (struct hf_sim_rate){.limited = true,
                                    .limit = l->bucket.count,
                                    .remaining = left,
                                    .reset_s = ceil_s(wall_ms + wait)};
    }
    if (l->has_quota) {
        int64_t left = hf_quota_remaining(&l->quota, wall_ms);
        int64_t reset_s = ceil_s(hf_quota_reset_at(&l->quota, wall_ms));
        if (!out->limited || left < out->remaining ||
            (left == out->remaining && reset_s > out->reset_s))
            *out = (struct hf_sim_rate){
                .limited = true, .limit = l->quota.count, .remaining = left, .reset_s = reset_s};
    }
}

bool hf_sim_limiter_take(struct hf_sim_limiter *l, int64_t mono_ms, int64_t wall_ms,
                         struct hf_sim_rate *out)
{
    int64_t wait = 0;
    if (l->has_bucket && !hf_bucket_take(&l->bucket, mono_ms, &wait)) {
        describe(l, mono_ms, wall_ms, out);
        out->retry_after_s = ceil_s(wait);
        return false;
    }
    if (l->has_quota && !hf_quota_take(&l->quota, wall_ms)) {
        /* a refused request spends no token either */
        if (l->has_bucket)
            hf_bucket_refund(&l->bucket);
        describe(l, mono_ms, wall_ms, out);
        out->by_quota = true;
        out->retry_after_s = ceil_s(hf_quota_reset_at(&l->quota, wall_ms) - wall_ms);
        return false;
    }
    describe(l, mono_ms, wall_ms, out);
    return true;
}

void hf_sim_limiter_peek(struct hf_sim_limiter *l, int64_t mono_ms, int64_t wall_ms,
                         struct hf_sim_rate *out)
{
    describe(l, mono_ms, wall_ms, out);
}
