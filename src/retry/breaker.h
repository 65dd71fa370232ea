/*
 * The circuit breaker: one per route, so a failing API stops receiving
 * requests for a while instead of being hammered by retries.
 *
 * closed --(failures consecutive failed attempts)--> open for cooldown_ms
 * open --(cooldown over)--> half-open: one probe request may go
 * half-open --(probe succeeded)--> closed; --(probe failed)--> open again
 *
 * Time is an argument: nothing here reads a clock, so tests move now_ms by
 * hand.  Any monotonic millisecond clock will do, as long as one breaker
 * always gets the same one.  Thread-safe: a breaker is shared by every
 * worker serving its route, so each call takes a mutex inside the struct
 * for a few instructions (no allocation, no I/O under it).
 */
#ifndef HF_RETRY_BREAKER_H
#define HF_RETRY_BREAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <holdfast/error.h>

enum hf_breaker_state {
    HF_BREAKER_CLOSED = 0, /* requests flow; failures are counted */
    HF_BREAKER_OPEN,       /* nothing is sent until the cooldown is over */
    HF_BREAKER_HALF_OPEN,  /* cooldown over: one probe may go (or is out) */
};

/* What a call to hf_breaker_record() changed, so the caller can log it. */
enum hf_breaker_event {
    HF_BREAKER_EV_NONE = 0, /* no state change */
    HF_BREAKER_EV_OPEN,     /* closed -> open: log `breaker_open` */
    HF_BREAKER_EV_REOPEN,   /* the probe failed, open again: log `breaker_open` */
    HF_BREAKER_EV_CLOSE,    /* the probe succeeded: log `breaker_close` */
};

struct hf_breaker {
    pthread_mutex_t mu;
    /* Set by init, read-only after. */
    int failures;        /* threshold; 0: the breaker is disabled */
    int64_t cooldown_ms; /* > 0 when enabled */
    /* Guarded by mu. */
    bool open;              /* open or half-open (which one depends on now_ms) */
    bool probe_out;         /* half-open and the probe has been granted */
    int streak;             /* consecutive failed attempts reported */
    int64_t open_until_ms;  /* while open: when the cooldown ends */
    int64_t probe_until_ms; /* while probe_out: when its slot is given up */
};

/*
 * A consistent view of a breaker for /health and metrics (one lock).
 * retry_at_ms is hf_breaker_open_until().
 */
struct hf_breaker_view {
    enum hf_breaker_state state;
    int consecutive_failures;
    int64_t retry_at_ms;
};

/*
 * Initialise b closed.  failures 0 disables the breaker (allow() always says
 * yes); otherwise cooldown_ms must be positive.  Returns HF_EINVAL (failures
 * negative, or cooldown_ms not positive with failures > 0) or HF_ENOMEM
 * (the mutex could not be created).  On an error b needs no hf_breaker_fini.
 */
hf_err hf_breaker_init(struct hf_breaker *b, int failures, int64_t cooldown_ms);
/* Release what init acquired.  No other call may be running on b. */
void hf_breaker_fini(struct hf_breaker *b);

/*
 * May a request be sent to the API now?  Closed: yes.  Open: no.
 * Half-open: yes for exactly one caller, the probe, whose outcome the next
 * hf_breaker_record() reports; no for everybody else while it is out.  A
 * probe that never reports (cancelled, its caller gone) holds the slot for
 * cooldown_ms at most, then the next caller gets a new probe.
 * A caller that is told yes must report the attempt's outcome.
 */
bool hf_breaker_allow(struct hf_breaker *b, int64_t now_ms);

/*
 * Report the outcome of an attempt that allow() let through.  The caller
 * decides what a failure is (a timeout, connection error or 5xx; an API that
 * answers 4xx or 429 is up, so those count as success).  Closed: a success
 * clears the failure streak, the failures-th consecutive failure opens the
 * breaker.  Probe out: the first report after the grant settles it: success
 * closes, failure opens for another cooldown from now_ms.  Open with no
 * probe out: ignored (a late answer to a request sent before the breaker
 * opened does not cut the cooldown short).  Returns the state change, for
 * the log; always HF_BREAKER_EV_NONE for a disabled breaker.
 */
enum hf_breaker_event hf_breaker_record(struct hf_breaker *b, bool success, int64_t now_ms);

/* The state at now_ms (OPEN turns into HALF_OPEN when the cooldown ends). */
enum hf_breaker_state hf_breaker_state(struct hf_breaker *b, int64_t now_ms);

/*
 * The earliest time allow() may say yes again, for Retry-After: while open
 * the end of the cooldown; while a probe is out the end of its slot; 0 when
 * closed or half-open with the probe slot free.  Compare it with now_ms:
 * a value in the past also means "now".
 */
int64_t hf_breaker_open_until(struct hf_breaker *b);

/* Everything /health shows about b at now_ms, read under one lock. */
void hf_breaker_view(struct hf_breaker *b, int64_t now_ms, struct hf_breaker_view *out);

/* "closed", "open", "half_open": for logs, /health and metrics labels. */
const char *hf_breaker_state_label(enum hf_breaker_state state);

#endif
