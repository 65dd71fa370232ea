/*
 * Route pauses: the API said "not now" (a 429 with Retry-After or a reset
 * time, or X-RateLimit-Remaining: 0 on an answer), so the whole route sends
 * nothing until then and serves stale copies instead.
 *
 * hf_pause_from_response() reads an answer's headers and decides the pause
 * (pure: no state, no clock).  struct hf_pause holds a route's pause; the
 * latest end wins, so a short pause never cuts a longer one short.
 *
 * now_ms and the times here are wall-clock ms since the epoch, because
 * reset headers name epoch seconds.  Thread-safe: a mutex inside the struct.
 */
#ifndef HF_LIMIT_PAUSE_H
#define HF_LIMIT_PAUSE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

enum hf_pause_reason {
    HF_PAUSE_NONE = 0,
    HF_PAUSE_RATE_LIMITED, /* a 429: Retry-After, a reset header or the rate's interval */
    HF_PAUSE_QUOTA_HEADER, /* X-RateLimit-Remaining: 0 (or RateLimit-Remaining: 0) */
};

/*
 * The longest pause an API can impose: a reset header naming a time weeks
 * away is more likely a bug (milliseconds sent as seconds) than a plan, and
 * a route shut for a year would outlive every stale copy.  A monthly quota
 * still fits.
 */
#define HF_PAUSE_MAX_MS ((int64_t)31 * 24 * 3600 * 1000)

struct hf_pause {
    pthread_mutex_t mu;
    /* Guarded by mu. */
    int64_t until_ms; /* paused while now_ms < until_ms */
    enum hf_pause_reason reason;
};

/* Initialise p unpaused.  Returns HF_ENOMEM if the mutex cannot be made. */
hf_err hf_pause_init(struct hf_pause *p);
/* Release what init acquired.  No other call may be running on p. */
void hf_pause_fini(struct hf_pause *p);

/*
 * Pause until until_ms for reason.  A pause ending no later than the one in
 * force changes nothing (the reason stays the one that set the later end).
 * Returns true when the end moved, so the caller logs `rate_limited` once
 * per change, not once per answer.
 */
bool hf_pause_until(struct hf_pause *p, int64_t until_ms, enum hf_pause_reason reason);

/*
 * Is the route paused at now_ms?  On true *until_ms and *reason (each if
 * not NULL) say till when and why; on false they are 0 and HF_PAUSE_NONE.
 */
bool hf_pause_active(struct hf_pause *p, int64_t now_ms, int64_t *until_ms,
                     enum hf_pause_reason *reason);

/*
 * Decide the pause an answer calls for.  status is its HTTP status, headers
 * its "Name: value\r\n" block (src/http/headers.h), now_ms when it arrived.
 * fallback_ms is the wait for a 429 that names no time, from the route's
 * configured rate (hf_retry_policy.rate_interval_ms); 0 or less: none.
 *
 *  - 429 (HF_PAUSE_RATE_LIMITED): until now_ms + the first usable of
 *    Retry-After, RateLimit-Reset, X-RateLimit-Reset, fallback_ms.
 *  - any status with X-RateLimit-Remaining: 0 or RateLimit-Remaining: 0
 *    (HF_PAUSE_QUOTA_HEADER): until the reset its family names
 *    (X-RateLimit-Reset, resp. RateLimit-Reset, then the other family's);
 *    no reset header, no pause.  Not only 2xx: a 404 spends a request too.
 *  - both on one 429: the later end wins (ties: RATE_LIMITED).
 *
 * Unparsable values count as absent.  Waits are capped at HF_PAUSE_MAX_MS.
 * Returns true with *until_ms (> now_ms) and *reason when a pause is due;
 * false otherwise (a 429 with nothing usable and no fallback, a zero wait,
 * any other answer), leaving them 0 and HF_PAUSE_NONE.  headers may be
 * NULL when headers_len is 0.
 */
bool hf_pause_from_response(int status, const char *headers, size_t headers_len, int64_t now_ms,
                            int64_t fallback_ms, int64_t *until_ms, enum hf_pause_reason *reason);

/* "rate_limited", "quota_header", "none": for logs and /health. */
const char *hf_pause_reason_label(enum hf_pause_reason reason);

#endif
