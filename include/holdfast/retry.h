/*
 * holdfast retry policy: classification and backoff as pure functions.
 *
 * Nothing here reads a clock or a random source: the caller passes now_ms
 * and a uniformly distributed 64-bit random value, so every decision is
 * reproducible in tests.  All functions are thread-safe.
 */
#ifndef HOLDFAST_RETRY_H
#define HOLDFAST_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include <holdfast/error.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hf_jitter {
    HF_JITTER_FULL = 0, /* uniform in [0, d]  (the default) */
    HF_JITTER_NONE,     /* exactly d */
    HF_JITTER_EQUAL,    /* d/2 + uniform in [0, d/2] */
};

struct hf_retry_policy {
    int attempts;             /* total attempts including the first; >= 1 (default 3) */
    int64_t backoff_ms;       /* first backoff (default 500) */
    int64_t max_backoff_ms;   /* cap on one backoff (default 8000) */
    double multiplier;        /* growth factor (default 2.0) */
    enum hf_jitter jitter;    /* default HF_JITTER_FULL */
    int64_t deadline_ms;      /* whole request, retries included; 0: none */
    int64_t rate_interval_ms; /* from a configured quota, e.g. rate 5/1m -> 12000;
                                 0: unknown.  Floor for a rate-limit wait. */
};

/* Fill p with the defaults above. */
void hf_retry_policy_default(struct hf_retry_policy *p);

enum hf_retry_class {
    HF_CLASS_OK = 0,       /* success (2xx, 3xx): stop, use the answer */
    HF_CLASS_FINAL,        /* permanent failure (4xx but 408/429): stop, pass it on */
    HF_CLASS_TRANSIENT,    /* timeout, connection error, 408, 5xx: back off and retry */
    HF_CLASS_RATE_LIMITED, /* 429: rate-limit backoff and retry */
    HF_CLASS_UNSAFE,       /* would be retried, but the method is unsafe: stop */
};

/*
 * Classify one attempt.  err is the transport outcome (HF_OK when an HTTP
 * answer arrived, then status is its code).  Methods other than GET, HEAD,
 * OPTIONS, TRACE, PUT and DELETE are unsafe to repeat unless the request
 * carries an Idempotency-Key (has_idempotency_key).
 */
enum hf_retry_class hf_classify(const char *method, bool has_idempotency_key, hf_err err,
                                int status);

/*
 * Backoff before retry number `retry` (1 for the wait after the first
 * attempt).  Exponential: backoff_ms * multiplier^(retry-1), capped at
 * max_backoff_ms, then jittered with rnd (uniform 64-bit).  Never negative.
 */
int64_t hf_backoff_next(const struct hf_retry_policy *p, int retry, uint64_t rnd);

/*
 * Wait requested by a rate-limited answer, in ms from now_ms.  server_wait_ms
 * is what the server asked for (Retry-After or a reset header, see
 * hf_http_retry_after() / hf_http_ratelimit_reset()), or -1 when it said
 * nothing.  The result is at least p->rate_interval_ms, and when the server
 * said nothing and no rate is known, the ordinary backoff for `retry`.
 */
int64_t hf_rate_limit_wait(const struct hf_retry_policy *p, int retry, int64_t server_wait_ms,
                           uint64_t rnd);

enum hf_retry_action {
    HF_RETRY_STOP_OK = 0, /* success: use the answer */
    HF_RETRY_STOP_FINAL,  /* do not retry: pass the answer/failure on */
    HF_RETRY_WAIT,        /* retry after wait_ms */
    HF_RETRY_EXHAUSTED,   /* retryable, but attempts are used up */
    HF_RETRY_OUT_OF_TIME, /* retryable, but the wait would pass the deadline */
};

struct hf_retry_decision {
    enum hf_retry_action action;
    enum hf_retry_class cls;
    int64_t wait_ms; /* for HF_RETRY_WAIT; also the wait that was refused for OUT_OF_TIME */
};

/*
 * Decide what follows attempt number `attempt` (1-based) of a request that
 * started at started_ms.  server_wait_ms as for hf_rate_limit_wait().
 * A wait that would end after started_ms + deadline_ms is refused at once
 * (HF_RETRY_OUT_OF_TIME): holdfast never sleeps past a deadline.
 */
struct hf_retry_decision hf_retry_decide(const struct hf_retry_policy *p, const char *method,
                                         bool has_idempotency_key, int attempt, hf_err err,
                                         int status, int64_t server_wait_ms, int64_t started_ms,
                                         int64_t now_ms, uint64_t rnd);

#ifdef __cplusplus
}
#endif

#endif
