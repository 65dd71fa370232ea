/*
 * The token bucket: a route's `rate_limit: { rate: 5/1m, burst: 5 }`.
 * Up to `burst` requests may go at once; after that one token comes back
 * every per_ms / count milliseconds, exactly (integer arithmetic, see
 * bucket.c), so 5/1m lets one request through every 12000 ms forever,
 * with no drift.
 *
 * Time is an argument (any monotonic ms clock, the same one for every call
 * on one bucket).  Thread-safe: the workers serving a route share its
 * bucket, so each call takes a mutex inside the struct for a few
 * arithmetic operations.
 */
#ifndef HF_LIMIT_BUCKET_H
#define HF_LIMIT_BUCKET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <holdfast/error.h>

struct hf_bucket {
    pthread_mutex_t mu;
    /* Set by init, read-only after.  A token is worth per_ms units and
     * count units drip in per ms. */
    int64_t count; /* 0: unlimited */
    int64_t per_ms;
    int64_t cap; /* burst * per_ms units */
    /* Guarded by mu. */
    int64_t level;   /* units held, 0..cap */
    int64_t last_ms; /* when level was last brought up to date */
    bool started;    /* false until the first call: the bucket starts full */
};

/*
 * Initialise b full: count requests per per_ms milliseconds, with room for
 * burst (0: count).  count 0 means unlimited (per_ms and burst are then
 * ignored).  Returns HF_EINVAL (a negative argument, per_ms 0 with a
 * count, count or burst * per_ms past 2^62: the arithmetic must fit in
 * 64 bits with room for one step) or
 * HF_ENOMEM (the mutex).  On an error b needs no hf_bucket_fini.
 */
hf_err hf_bucket_init(struct hf_bucket *b, int64_t count, int64_t per_ms, int64_t burst);
/* Release what init acquired.  No other call may be running on b. */
void hf_bucket_fini(struct hf_bucket *b);

/*
 * Take one token at now_ms.  true: taken (*wait_ms, if not NULL, is 0).
 * false: none left, and *wait_ms (if not NULL) is how long until the next
 * one, at least 1; taking at now_ms + *wait_ms succeeds unless someone
 * else takes it first.
 */
bool hf_bucket_take(struct hf_bucket *b, int64_t now_ms, int64_t *wait_ms);

/*
 * Give back a token taken but not used (a later check refused the request
 * before anything was sent).  The bucket never holds more than burst.
 */
void hf_bucket_refund(struct hf_bucket *b);

/* Whole tokens available at now_ms, for /health; INT64_MAX when unlimited. */
int64_t hf_bucket_available(struct hf_bucket *b, int64_t now_ms);

#endif
