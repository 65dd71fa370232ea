/*
 * The quota: a route's `rate_limit: { quota: 200/1d }`, a hard cap of
 * `count` requests per window of per_ms milliseconds.
 *
 * Windows are aligned to the Unix epoch: they start at every multiple of
 * per_ms since 1970-01-01 00:00 UTC, so a 1d quota resets at 00:00 UTC
 * (not local midnight, not 24 h after the first request), 1h on the hour,
 * and every instance and restart agrees on the window without sharing
 * anything but the clock.  now_ms is therefore wall-clock time (ms since
 * the epoch), unlike the breaker's and the bucket's monotonic time.
 *
 * The count survives restarts: the engine stores hf_quota_snapshot() in
 * the store's key/value table (hf_store_kv_put, text from
 * hf_quota_format()) and hands it back to hf_quota_restore() at start.
 *
 * Thread-safe: a mutex inside the struct guards the pair (window, used).
 */
#ifndef HF_LIMIT_QUOTA_H
#define HF_LIMIT_QUOTA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

struct hf_quota {
    pthread_mutex_t mu;
    /* Set by init, read-only after. */
    int64_t count; /* 0: no quota */
    int64_t per_ms;
    /* Guarded by mu. */
    int64_t window_ms; /* start of the window `used` counts in */
    int64_t used;
};

/* The longest text hf_quota_format() writes, NUL included. */
#define HF_QUOTA_TEXT_MAX 48

/*
 * Initialise q with nothing used: count requests per per_ms.  count 0
 * means no quota (take always succeeds).  Returns HF_EINVAL (negative
 * values, per_ms 0 with a count) or HF_ENOMEM (the mutex).  On an error q
 * needs no hf_quota_fini.
 */
hf_err hf_quota_init(struct hf_quota *q, int64_t count, int64_t per_ms);
/* Release what init acquired.  No other call may be running on q. */
void hf_quota_fini(struct hf_quota *q);

/* Count one request at now_ms if the window has room: true.  false: spent
 * until hf_quota_reset_at(). */
bool hf_quota_take(struct hf_quota *q, int64_t now_ms);

/* Undo a take in the same window (the request was refused by a later check
 * and never sent).  A refund after the window turned over does nothing. */
void hf_quota_refund(struct hf_quota *q, int64_t now_ms);

/* Requests left in now_ms's window (0..count); INT64_MAX without a quota. */
int64_t hf_quota_remaining(struct hf_quota *q, int64_t now_ms);

/* When the window after now_ms's starts (the reset, for Retry-After);
 * INT64_MAX without a quota or past the end of representable time. */
int64_t hf_quota_reset_at(struct hf_quota *q, int64_t now_ms);

/*
 * The state to persist.  *window_start_ms is the start of the window *used
 * counts in, which may be a past window if nothing was taken since.
 */
void hf_quota_snapshot(struct hf_quota *q, int64_t *window_start_ms, int64_t *used);

/*
 * Load persisted state.  It applies only while window_start_ms is the
 * start of the current window; any other window (yesterday's, or one from
 * a different per_ms, or the future after a clock step back) means a fresh
 * count at the next call.  used is clamped to 0..INT64_MAX; a used above
 * count (the quota was lowered) just means spent.
 */
void hf_quota_restore(struct hf_quota *q, int64_t window_start_ms, int64_t used);

/*
 * The text form kept in the store: "<window_start_ms> <used>".  format
 * returns the length written, or -1 when buf is shorter than
 * HF_QUOTA_TEXT_MAX (it then holds an empty string if len > 0).  parse is strict
 * (two decimal integers, one space, nothing else, used >= 0) because the
 * text comes back from a file: false for anything else.
 */
int hf_quota_format(int64_t window_start_ms, int64_t used, char *buf, size_t len);
bool hf_quota_parse(const char *text, int64_t *window_start_ms, int64_t *used);

#endif
