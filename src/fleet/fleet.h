/*
 * The fleet: what several holdfast instances share through Redis besides
 * the cache copies (those are the Redis store tier's, src/cache/):
 *
 *  - each route's rate limit and quota, taken by one atomic script (GCRA
 *    token bucket + a counter per quota window), so the instances together
 *    never exceed what the API allows;
 *  - each route's pause (a 429, X-RateLimit-Remaining: 0), so a pause one
 *    instance saw holds on all of them;
 *  - in-flight fetches: a lock per cache key (SET NX PX), so a herd across
 *    the fleet makes one call; the others wait for the holder's outcome;
 *  - refresh slots: a claim per background route and slot, so one instance
 *    runs each;
 *  - purges: published on a channel, so every instance drops its memory
 *    copies.
 *
 * One hf_fleet per process.  Its own thread holds a synchronous hiredis
 * connection; callers on event loops never wait for Redis: they queue a
 * request and get the answer as a callback on their own loop
 * (event_active), as the reader does (engine/reader.h), so every base
 * must be made after evthread_use_pthreads().  A second thread holds the
 * subscription.
 *
 * Redis away: every request is answered HF_FLEET_DOWN at once (the caller
 * then decides locally: the engine splits the limits by fleet.size); the
 * thread reconnects with backoff from the retry module, logging
 * `fleet_down` / `fleet_up` once per change.  Scripts are sent by EVALSHA
 * and loaded again after NOSCRIPT (a restarted, empty Redis).
 *
 * Times are arguments: now_ms is wall-clock ms since the epoch, the same
 * clock on every instance (NTP); the scripts never read Redis's clock, so
 * tests can move time by hand.
 *
 * Keys (all under "hf:f:", never clashing with the store's "hf:" + a cache
 * key, which starts with a method): see docs/internals/fleet.md.
 */
#ifndef HF_FLEET_FLEET_H
#define HF_FLEET_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

struct event_base;
struct hf_fleet;
struct hf_fleet_job;

struct hf_fleet_options {
    const char *url;      /* "redis://..." or "redis+unix://...", as hf__store_redis_open */
    const char *instance; /* this instance's id, unique in the fleet (host:pid:random);
                             NULL: made up by open */
    /* Another instance purged copies under prefix ("" means every copy).
     * Called on the subscriber thread (not a loop): it must be thread-safe
     * and quick.  Also called with "" when a lost subscription is made
     * again (purges sent meanwhile are lost).  May be NULL (then there is
     * no subscription). */
    void (*on_purge)(const char *prefix, void *arg);
    void *purge_arg;
    /* Called on the fleet's thread before it releases a lock with
     * stored = true: returns once the copies this process put before the
     * release was asked are in Redis (the engine waits, bounded, for the
     * Redis store's write queue), so an instance told "stored" finds the
     * copy.  May be NULL. */
    void (*before_release)(void *arg);
    void *release_arg;
};

/*
 * Open the fleet: start its threads and try Redis once.  Succeeds while
 * Redis is away (the fleet starts down and keeps trying).  Fails only on a
 * bad URL (HF_CONFIG, with a message that never repeats the password) or
 * out of memory.
 */
hf_err hf_fleet_open(const struct hf_fleet_options *o, struct hf_fleet **out, char *errbuf,
                     size_t errlen);
/* Stop the threads, free *f; NULL is a no-op.  Jobs still pending are
 * abandoned (their callbacks never run): close once no loop waits. */
void hf_fleet_close(struct hf_fleet **f);

bool hf_fleet_up(struct hf_fleet *f);
/* Requests that failed because of Redis (I/O, error replies, answered DOWN). */
uint64_t hf_fleet_errors(struct hf_fleet *f);
/* This instance's id. */
const char *hf_fleet_instance(struct hf_fleet *f);

/* --- answers ------------------------------------------------------------ */

enum hf_fleet_verdict {
    HF_FLEET_GO = 0,  /* take: a token (and a quota unit) taken; lock/claim: acquired */
    HF_FLEET_RATE,    /* take: no token now; wait_ms until one */
    HF_FLEET_QUOTA,   /* take: the quota is spent until until_ms (the window's end) */
    HF_FLEET_PAUSED,  /* take: the route is paused fleet-wide until until_ms */
    HF_FLEET_HELD,    /* lock/claim: another instance holds it */
    HF_FLEET_DONE,    /* wait: the holder released the lock; outcome says how it went */
    HF_FLEET_TIMEOUT, /* wait: still held when the wait's time ran out */
    HF_FLEET_DOWN,    /* Redis unreachable (or the queue full): decide locally */
};

enum hf_fleet_outcome {
    HF_FLEET_STORED = 0, /* the holder stored a new copy: read it from the store */
    HF_FLEET_FAILED,   /* the holder got nothing worth storing (an error, an uncacheable answer) */
    HF_FLEET_VANISHED, /* the lock expired without a release: the holder died or overran */
};

struct hf_fleet_answer {
    enum hf_fleet_verdict verdict;
    int64_t wait_ms;    /* RATE: until the next token, >= 1 */
    int64_t until_ms;   /* QUOTA: the window's end; PAUSED: the pause's end (wall ms) */
    int pause_reason;   /* PAUSED: an enum hf_pause_reason (limit/pause.h) */
    int64_t quota_left; /* take (GO, RATE, QUOTA): requests left in the window; -1: no quota */
    enum hf_fleet_outcome outcome; /* DONE */
};

/* Called on the asking loop's thread, exactly once unless cancelled. */
typedef void (*hf_fleet_done_fn)(const struct hf_fleet_answer *a, void *arg);

/*
 * On base's thread, before done ran: done will not be called; the job
 * frees itself.  What the job got is given back: a take answered GO is
 * refunded, a lock answered GO released (as failed).  NULL is a no-op.
 */
void hf_fleet_cancel(struct hf_fleet_job *j);

/* --- rate limits, quotas, pauses ---------------------------------------- */

/* A route's limits as configured (the fleet's whole allowance, not a share). */
struct hf_fleet_limits {
    const char *route;                           /* the route's name: part of the keys */
    int64_t rate_count, rate_per_ms, rate_burst; /* rate_count 0: no rate (burst 0: count) */
    int64_t quota_count, quota_per_ms;           /* quota_count 0: no quota */
};

/*
 * Take one request's allowance at now_ms: the fleet-wide pause first, then
 * the quota's room, then a token; the token and the quota unit are taken
 * together or not at all.  Same arithmetic as the local limits
 * (limit/bucket.h: exact, integer, no drift; limit/quota.h: windows
 * aligned to the epoch).  Answers GO, RATE, QUOTA, PAUSED or DOWN.
 * Returns HF_EINVAL (done never called) for invalid limits, and for
 * limits or times the scripts cannot hold exactly: burst * per_ms and
 * count (both divided by their gcd), quota count and per_ms, and |now_ms|
 * must be at most 2^51 -- a day is 2^26.4 ms.
 */
hf_err hf_fleet_take(struct hf_fleet *f, struct event_base *base, const struct hf_fleet_limits *l,
                     int64_t now_ms, hf_fleet_done_fn done, void *arg, struct hf_fleet_job **out);

/* Give back what a take at now_ms took (a later check refused the request
 * before anything was sent).  Fire and forget. */
void hf_fleet_refund(struct hf_fleet *f, const struct hf_fleet_limits *l, int64_t now_ms);

/* Pause route fleet-wide until until_ms (wall) for reason (enum
 * hf_pause_reason); the later end wins, as in limit/pause.h.  Fire and
 * forget.  The pause's key expires at until_ms by this host's wall clock
 * (plus a second): a take compares until_ms with its own now_ms. */
void hf_fleet_pause(struct hf_fleet *f, const char *route, int64_t until_ms, int reason);

/* --- in-flight fetches -------------------------------------------------- */

/*
 * Try to become the fleet's fetcher of a cache key for ttl_ms (a holder
 * that dies releases it by expiry).  Answers GO (acquired), HELD or DOWN.
 * For 2 s after a release as stored the key answers HELD (a wait then
 * says STORED at once: read the store); after a release as failed the
 * next lock is GO.
 */
hf_err hf_fleet_lock(struct hf_fleet *f, struct event_base *base, const char *key, int64_t ttl_ms,
                     hf_fleet_done_fn done, void *arg, struct hf_fleet_job **out);

/* Release a lock this instance holds, saying how the fetch went (stored:
 * a new copy was put in the store before this call; before_release makes
 * sure it is in Redis before the lock goes).  A lock that expired or is
 * another's is left alone.  Fire and forget. */
void hf_fleet_unlock(struct hf_fleet *f, const char *key, bool stored);

/*
 * Wait, at most timeout_ms, for another instance's lock on key to be
 * released.  Answers DONE (with the holder's outcome; VANISHED when the
 * lock is gone without one), TIMEOUT or DOWN.
 */
hf_err hf_fleet_wait(struct hf_fleet *f, struct event_base *base, const char *key,
                     int64_t timeout_ms, hf_fleet_done_fn done, void *arg,
                     struct hf_fleet_job **out);

/* --- refresh slots ------------------------------------------------------ */

/*
 * Claim a background route's schedule slot (slot_ms: the slot's start)
 * for ttl_ms.  Answers GO (this instance runs it), HELD (another does) or
 * DOWN.
 */
hf_err hf_fleet_claim(struct hf_fleet *f, struct event_base *base, const char *route,
                      int64_t slot_ms, int64_t ttl_ms, hf_fleet_done_fn done, void *arg,
                      struct hf_fleet_job **out);

/* --- purges ------------------------------------------------------------- */

/* Tell the other instances that copies under prefix ("" for all) were
 * purged.  Fire and forget; this instance's on_purge is not called. */
void hf_fleet_purge(struct hf_fleet *f, const char *prefix);

#endif
