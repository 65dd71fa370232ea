/*
 * The Redis store: a cache tier shared by a fleet of holdfast instances.
 * Any thread may call every operation; none may be an event loop's (get,
 * delete and kv_get wait for Redis, bounded by short timeouts).
 *
 * Records.  A copy lives at "hf:" + its cache key (binary-safe: keys may
 * hold '\n' and any byte but NUL), its value a versioned binary record
 * holding the full cache key and a SipHash-1-3 checksum (layout below).  A
 * value that does not parse, fails its checksum, names another key, is of
 * another record version, or is not a string is a miss, logged
 * ("store_corrupt"); it is not deleted (another holdfast version in the
 * fleet may have written it) and the next put replaces it.  A parse trusts no length
 * the record does not really hold.  Keys starting "kv:" are not cache keys
 * (those start with a method): they would share the key/value table's
 * names, so put refuses them and get finds nothing.
 *
 * Expiry.  A copy's TTL is its stale window measured from stored_at (at
 * most keep_ms), plus TTL_SLACK_MS, set relative (SET ... PX) when it is
 * written: no store reads a clock, and a relative TTL does not care how
 * far the Redis host's clock is from ours.  A get still checks the windows
 * (and keep_ms) against now_ms, so the TTL only frees memory, and the
 * slack covers the queue's delay and the fleet's clock skew.  A copy kept
 * forever has no TTL.  sweep removes nothing (Redis expires by TTL and
 * evicts by its own maxmemory policy) and only waits, bounded, for the
 * writes queued before it, as a SQLite sweep does.
 *
 * Threads.  get, delete, delete by prefix and kv_get run on the caller's
 * thread over a pool of at most POOL_MAX connections.  put and kv_put go
 * to a bounded queue drained by one writer thread with its own connection,
 * pipelining up to BATCH_MAX commands a round trip; a get looks in the
 * queue first (reads its own writes).  A delete takes the key's queued
 * writes out of the queue and waits for one being written, so no older put
 * lands after it; a prefix delete waits (bounded) for every write queued
 * before it, then SCANs and UNLINKs.  close flushes the queue (at most
 * FLUSH_MAX_MS) and joins the writer.  A connection found broken on its
 * first command (closed while idle, or Redis restarted) is replaced and
 * the command sent once more before it counts as a failure.  hiredis
 * writes with write(2): SIGPIPE is blocked around our I/O and a pending
 * one consumed, so a library user need not ignore it.
 *
 * Down and up.  An I/O, timeout or protocol failure, or a reply saying
 * Redis cannot serve (LOADING, NOAUTH, MASTERDOWN...), marks the store down
 * (log "store_down"), drops every connection and the queued writes, and
 * from then on every operation fails at once with HF_STORE -- a get too,
 * so the tiered store can look further -- and no thread but the writer
 * touches the network.  The writer reconnects (AUTH, SELECT and PING on
 * every connection) after a backoff from 100 ms doubling to 5 s with full
 * jitter.  A delete that could not reach Redis is owed (up to OWED_MAX;
 * beyond that every copy is) and made before the store is up again, so a
 * purged copy never comes back; then "store_up" is logged.  Opening
 * while Redis is away succeeds: the store starts down.
 *
 * Counting.  stats are all 0: the database may be shared with other
 * instances and applications, and counting our copies would need a SCAN
 * of everything.  errors() counts operations that failed for the tier's
 * sake (I/O, error replies, fast failures while down, dropped writes).
 *
 * The URL, a new connection (AUTH, SELECT, PING) and SIGPIPE are
 * fleet/redis_link.h's, shared with the fleet (fleet/fleet.c).
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <holdfast/retry.h>

#include "fleet/redis_link.h"
#include "cache/store_impl.h"
#include "core/clock.h"
#include "obs/log.h"

#define TIER "redis"
#define DETAIL_MAX 200

/* A cache tier that answers slowly is worse than none (connecting: see
 * HF__REDIS_CONNECT_TIMEOUT_MS). */
#define COMMAND_TIMEOUT_MS 500

/* Connections for the callers' synchronous operations; a caller beyond
 * POOL_MAX waits up to POOL_WAIT_MS for one. */
#define POOL_MAX 4
#define POOL_WAIT_MS 500

/*
 * The write queue.  When it is full a put waits up to QUEUE_WAIT_MS for
 * room (not on a thread that called hf__store_never_wait_on_this_thread:
 * an event loop) and is then dropped with a warning: the memory tier still
 * holds the copy.  An entry larger than the byte bound on its own is
 * admitted into an empty queue.
 */
#define QUEUE_MAX_OPS 4096
#define QUEUE_MAX_BYTES ((size_t)64 << 20)
#define QUEUE_WAIT_MS 100
#define BATCH_MAX 128                     /* commands a round trip ... */
#define BATCH_MAX_BYTES ((size_t)8 << 20) /* ... and bytes */
#define FLUSH_MAX_MS 2000                 /* sweep, prefix delete and close wait at most this */

#define OWED_MAX 256 /* deletes owed to Redis before every copy is */
#define SCAN_COUNT "1000"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

#define TTL_SLACK_MS 5000
#define TTL_MAX_MS ((int64_t)10 * 366 * 24 * 3600 * 1000) /* ten years */

#define KEY_PREFIX "hf:"
#define KEY_PREFIX_LEN 3
#define KV_PREFIX "hf:kv:"
#define KV_PREFIX_LEN 6

/*
 * The record, little-endian:
 *   0  "hfrd"  4  version (1)  5  flags (1 route, 2 etag, 4 last_modified)
 *   6  zero (u16)  8 stored_at  16 fresh_until  24 stale_until (i64)
 *   32 status  36 key, 40 route, 44 etag, 48 last_modified, 52 headers
 *      lengths (u32)  56 body length (u64)
 *   64 key, route, etag, last_modified, each followed by a NUL (an absent
 *      one takes no bytes), then headers, then body
 *   last 8 bytes: SipHash-1-3 of everything before them.
 * The checksum keys name every record a fleet has written: a new layout
 * gets a new version, not new keys.
 */
#define REC_MAGIC "hfrd"
#define REC_VERSION 1
#define REC_FIXED 64
#define REC_SUM 8
#define F_ROUTE 1u
#define F_ETAG 2u
#define F_LM 4u
#define SUM_K0 0x686f6c6466617374ULL /* "holdfast" */
#define SUM_K1 0x7265642d72656331ULL /* "red-rec1" */

enum op_kind { OP_PUT, OP_DEL, OP_KV_PUT };

struct op {
    struct op *next;
    enum op_kind kind;
    bool busy;          /* in the writer's batch: stays first in the queue until done */
    uint64_t hash;      /* of key: a prefilter before strcmp */
    uint64_t seq;       /* order of arrival */
    const char *key;    /* PUT: e->key; DEL, KV_PUT: stored after the struct */
    const char *value;  /* KV_PUT: stored after the key */
    struct hf_entry *e; /* PUT: one reference */
    size_t cost;        /* bytes charged against QUEUE_MAX_BYTES */
};

/* A delete Redis missed: a key, or a prefix. */
struct owed {
    char *name;
    bool prefix;
};

/* A connection in use: a pool session, or the writer's. */
struct conn {
    redisContext *ctx;
    uint64_t epoch;                   /* the pool's epoch when it was taken */
    bool reused;                      /* open before this session: may have gone stale */
    bool used;                        /* a command has been answered in this session */
    struct hf__sigpipe_guard sigpipe; /* pool sessions: SIGPIPE blocked while they last */
    char why[DETAIL_MAX];             /* the last failure */
};

struct rs_store {
    struct hf_store base;
    struct hf__redis_target t;
    size_t max_bytes; /* 0: unbounded */
    int64_t keep_ms;  /* 0: keep */
    struct hf_retry_policy backoff;

    bool up;         /* read atomically; written under mu */
    uint64_t errors; /* atomic */

    /* The pool, guarded by pmu.  epoch changes when the store goes down:
     * connections of an older epoch are freed, not reused. */
    pthread_mutex_t pmu;
    pthread_cond_t pfree;
    redisContext *idle[POOL_MAX];
    int nidle, nlive;
    uint64_t epoch;     /* written under pmu, read atomically */
    uint64_t pool_busy; /* callers that found no connection, for the log */

    /* The queue, the owed deletes and the probe schedule, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t work; /* the writer waits for ops, stop, or its next probe */
    pthread_cond_t room; /* producers wait for room */
    pthread_cond_t done; /* a batch finished, or the queue was dropped */
    struct op *head, *tail;
    size_t qcount, qbytes;
    uint64_t seq, done_seq;
    struct owed owed[OWED_MAX];
    int nowed;
    bool owe_all;
    int probes;            /* failed reconnections in a row */
    int64_t next_probe_ms; /* monotonic */
    bool stop;
    int64_t stop_deadline_ms;
    uint64_t dropped, other_version, failed_replies; /* for log rate limits */

    /* The writer thread's. */
    pthread_t writer;
    struct conn w;
};

/* The one record problem that is not damage (see log_corrupt). */
static const char why_version[] = "a record of another version (another holdfast's)";

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

/* FNV-1a: only a prefilter before strcmp in a bounded list. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static bool is_up(struct rs_store *s)
{
    return __atomic_load_n(&s->up, __ATOMIC_ACQUIRE);
}

static void count_error(struct rs_store *s)
{
    __atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
}

/* Log the 1st, 2nd, 4th, 8th... time: visible, but never a flood. */
static bool worth_logging(uint64_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

/* Entry keys that would share the key/value table's names. */
static bool reserved_key(const char *key)
{
    return strncmp(key, "kv:", 3) == 0;
}

/* prefix + key in one allocation (not NUL-terminated: *len says). */
static char *join(const char *prefix, size_t plen, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    char *k = malloc(plen + klen + 1);
    if (k == NULL)
        return NULL;
    memcpy(k, prefix, plen);
    memcpy(k + plen, key, klen + 1);
    *len = plen + klen;
    return k;
}

static int64_t deadline_after(int64_t ms)
{
    return hf_clock_mono_ms() + ms;
}

/* Wait on cv (a CLOCK_MONOTONIC condition) until deadline_ms; returns
 * true when the deadline has passed. */
static bool wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT || hf_clock_mono_ms() >= deadline_ms;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ------------------------------------------------------------------ */
/* Records                                                            */
/* ------------------------------------------------------------------ */

static size_t opt_len(const char *s)
{
    return s == NULL ? 0 : strlen(s) + 1;
}

static unsigned char *put_str(unsigned char *p, const char *s)
{
    if (s == NULL)
        return p;
    size_t n = strlen(s) + 1;
    memcpy(p, s, n);
    return p + n;
}

/* e as a record (malloc'd, *len bytes), or NULL when out of memory. */
static unsigned char *encode(const struct hf_entry *e, size_t *len)
{
    size_t total = REC_FIXED + opt_len(e->key) + opt_len(e->route) + opt_len(e->etag) +
                   opt_len(e->last_modified) + e->headers_len + e->body_len + REC_SUM;
    unsigned char *r = malloc(total);
    if (r == NULL)
        return NULL;
    memcpy(r, REC_MAGIC, 4);
    r[4] = REC_VERSION;
    r[5] = (unsigned char)((e->route != NULL ? F_ROUTE : 0) | (e->etag != NULL ? F_ETAG : 0) |
                           (e->last_modified != NULL ? F_LM : 0));
    r[6] = r[7] = 0;
    put_u64(r + 8, (uint64_t)e->stored_at_ms);
    put_u64(r + 16, (uint64_t)e->fresh_until_ms);
    put_u64(r + 24, (uint64_t)e->stale_until_ms);
    put_u32(r + 32, (uint32_t)e->status);
    put_u32(r + 36, (uint32_t)strlen(e->key));
    put_u32(r + 40, e->route != NULL ? (uint32_t)strlen(e->route) : 0);
    put_u32(r + 44, e->etag != NULL ? (uint32_t)strlen(e->etag) : 0);
    put_u32(r + 48, e->last_modified != NULL ? (uint32_t)strlen(e->last_modified) : 0);
    put_u32(r + 52, (uint32_t)e->headers_len);
    put_u64(r + 56, (uint64_t)e->body_len);
    unsigned char *p = r + REC_FIXED;
    p = put_str(p, e->key);
    p = put_str(p, e->route);
    p = put_str(p, e->etag);
    p = put_str(p, e->last_modified);
    memcpy(p, e->headers, e->headers_len);
    p += e->headers_len;
    memcpy(p, e->body, e->body_len);
    p += e->body_len;
    put_u64(p, hf__siphash13(SUM_K0, SUM_K1, r, total - REC_SUM));
    assert((size_t)(p + REC_SUM - r) == total);
    *len = total;
    return r;
}

/*
 * Take a string of n bytes and its NUL at *p (bounded by end); NULL if
 * it is not there whole or holds a NUL.
 */
static const char *take_str(const unsigned char **p, const unsigned char *end, uint32_t n)
{
    const unsigned char *s = *p;
    if ((size_t)(end - s) < (size_t)n + 1 || s[n] != '\0' || memchr(s, '\0', n) != NULL)
        return NULL;
    *p = s + n + 1;
    return (const char *)s;
}

/*
 * The entry in record r (len bytes) if it is a sound record of key:
 * HF_OK, HF_STORE_CORRUPT (*why says what is wrong) or HF_ENOMEM.
 */
static hf_err rec_decode(const unsigned char *r, size_t len, const char *key, struct hf_entry **out,
                         const char **why)
{
    if (len < REC_FIXED + REC_SUM || memcmp(r, REC_MAGIC, 4) != 0) {
        *why = "not a holdfast record";
        return HF_STORE_CORRUPT;
    }
    if (r[4] != REC_VERSION) {
        *why = why_version;
        return HF_STORE_CORRUPT;
    }
    if (get_u64(r + len - REC_SUM) != hf__siphash13(SUM_K0, SUM_K1, r, len - REC_SUM)) {
        *why = "record checksum mismatch";
        return HF_STORE_CORRUPT;
    }
    unsigned flags = r[5];
    uint32_t status = get_u32(r + 32), klen = get_u32(r + 36), rlen = get_u32(r + 40),
             elen = get_u32(r + 44), llen = get_u32(r + 48), hlen = get_u32(r + 52);
    uint64_t blen = get_u64(r + 56);
    *why = "malformed record";
    if ((flags & ~(F_ROUTE | F_ETAG | F_LM)) != 0 || r[6] != 0 || r[7] != 0 ||
        klen >= HF_ENTRY_FIELD_MAX || rlen >= HF_ENTRY_FIELD_MAX || elen >= HF_ENTRY_FIELD_MAX ||
        llen >= HF_ENTRY_FIELD_MAX || hlen > HF_ENTRY_HEADERS_MAX || blen > HF_ENTRY_BODY_MAX ||
        (!(flags & F_ROUTE) && rlen != 0) || (!(flags & F_ETAG) && elen != 0) ||
        (!(flags & F_LM) && llen != 0) || status < 100 || status > 999)
        return HF_STORE_CORRUPT;
    const unsigned char *p = r + REC_FIXED, *end = r + len - REC_SUM;
    const char *k = take_str(&p, end, klen);
    const char *route = (flags & F_ROUTE) ? take_str(&p, end, rlen) : NULL;
    const char *etag = (flags & F_ETAG) ? take_str(&p, end, elen) : NULL;
    const char *lm = (flags & F_LM) ? take_str(&p, end, llen) : NULL;
    if (k == NULL || ((flags & F_ROUTE) && route == NULL) || ((flags & F_ETAG) && etag == NULL) ||
        ((flags & F_LM) && lm == NULL) || (size_t)(end - p) != hlen + blen)
        return HF_STORE_CORRUPT;
    if (strcmp(k, key) != 0) {
        *why = "record of another key";
        return HF_STORE_CORRUPT;
    }
    hf_err err = hf_entry_create(k, route, (int)status, (const char *)p, hlen, p + hlen,
                                 (size_t)blen, (int64_t)get_u64(r + 8), (int64_t)get_u64(r + 16),
                                 (int64_t)get_u64(r + 24), etag, lm, out);
    if (err == HF_ENOMEM)
        return HF_ENOMEM;
    return err == HF_OK ? HF_OK : HF_STORE_CORRUPT;
}

/* The copy's TTL in ms (see "Expiry" above); 0: none. */
static int64_t ttl_ms(const struct rs_store *s, const struct hf_entry *e)
{
    int64_t span = INT64_MAX;
    if (e->stale_until_ms != INT64_MAX &&
        __builtin_sub_overflow(e->stale_until_ms, e->stored_at_ms, &span))
        span = e->stale_until_ms > e->stored_at_ms ? INT64_MAX - 1 : 0;
    if (s->keep_ms > 0 && span > s->keep_ms)
        span = s->keep_ms;
    if (span == INT64_MAX)
        return 0;
    if (span < 0)
        span = 0;
    return span > TTL_MAX_MS - TTL_SLACK_MS ? TTL_MAX_MS : span + TTL_SLACK_MS;
}

/* Whether e may be served at now_ms in mode. */
static bool usable(const struct rs_store *s, const struct hf_entry *e, int64_t now_ms,
                   enum hf_store_mode mode)
{
    int64_t until = mode == HF_STORE_FRESH ? e->fresh_until_ms : e->stale_until_ms;
    if (until <= now_ms)
        return false;
    int64_t age;
    if (s->keep_ms > 0 && !__builtin_sub_overflow(now_ms, e->stored_at_ms, &age) &&
        age > s->keep_ms)
        return false; /* what a sweep would have removed elsewhere */
    return true;
}

/* ------------------------------------------------------------------ */
/* Logs and health                                                    */
/* ------------------------------------------------------------------ */

/*
 * Every damaged value is logged: the next put replaces it, so they do not
 * recur.  Records of another version are not damage but a fleet being
 * upgraded, where the versions take turns replacing each other's copies:
 * those are logged at the 1st, 2nd, 4th, 8th... sighting.
 */
static void log_corrupt(struct rs_store *s, const char *why, bool other_version)
{
    uint64_t n = 1;
    if (other_version) {
        pthread_mutex_lock(&s->mu);
        n = ++s->other_version;
        pthread_mutex_unlock(&s->mu);
    }
    if (worth_logging(n))
        HF_LOG(HF_LOG_ERROR, "store_corrupt", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LS("detail", why));
}

/* An error reply to one command: the operation failed, the store may
 * still be up. */
static void log_failed_reply(struct rs_store *s, const char *event, const redisReply *r)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = ++s->failed_replies;
    pthread_mutex_unlock(&s->mu);
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "%.*s", (int)(r->len < DETAIL_MAX ? r->len : DETAIL_MAX - 1),
             r->str != NULL ? r->str : "");
    if (worth_logging(n))
        HF_LOG(HF_LOG_WARN, event, HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LS("detail", detail), HF_LI("count", n));
}

/* Free every idle connection and start a new epoch. */
static void pool_flush(struct rs_store *s)
{
    redisContext *gone[POOL_MAX];
    pthread_mutex_lock(&s->pmu);
    int n = s->nidle;
    memcpy(gone, s->idle, sizeof gone);
    s->nlive -= n;
    s->nidle = 0;
    __atomic_add_fetch(&s->epoch, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&s->pfree);
    pthread_mutex_unlock(&s->pmu);
    for (int i = 0; i < n; i++)
        redisFree(gone[i]);
}

static void mark_down(struct rs_store *s, const char *why)
{
    pthread_mutex_lock(&s->mu);
    bool was_up = s->up;
    if (was_up) {
        __atomic_store_n(&s->up, false, __ATOMIC_RELEASE);
        s->probes = 1;
        s->next_probe_ms = deadline_after(hf_backoff_next(&s->backoff, 1, hf_random64()));
        pthread_cond_signal(&s->work); /* the writer drops the queue, then probes */
        pthread_cond_broadcast(&s->done);
        pthread_cond_broadcast(&s->room);
    }
    pthread_mutex_unlock(&s->mu);
    if (!was_up)
        return;
    HF_LOG(HF_LOG_ERROR, "store_down", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
           HF_LS("detail", why));
    pool_flush(s);
}

/* Owe Redis a delete.  Called with mu held. */
static void owe_locked(struct rs_store *s, const char *name, bool prefix)
{
    if (s->owe_all)
        return;
    for (int i = 0; i < s->nowed; i++)
        if (s->owed[i].prefix == prefix && strcmp(s->owed[i].name, name) == 0)
            return;
    char *copy = s->nowed < OWED_MAX ? strdup(name) : NULL;
    if (copy == NULL) {
        s->owe_all = true; /* too many to remember: every copy goes */
        return;
    }
    s->owed[s->nowed].name = copy;
    s->owed[s->nowed].prefix = prefix;
    s->nowed++;
}

/*
 * Owe debt (if any) to a store that saw a failure: called before
 * mark_down, so whichever probe brings the store up again pays it.
 */
static void owe(struct rs_store *s, const struct owed *debt)
{
    if (debt == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    owe_locked(s, debt->name, debt->prefix);
    pthread_mutex_unlock(&s->mu);
}

/* Owe debt if the store is down, in one step with finding it so (a probe
 * marks it up under the same lock); false if it is up after all. */
static bool owe_if_down(struct rs_store *s, const struct owed *debt)
{
    pthread_mutex_lock(&s->mu);
    bool down = !s->up;
    if (down && debt != NULL)
        owe_locked(s, debt->name, debt->prefix);
    pthread_mutex_unlock(&s->mu);
    return down;
}

/* An operation failed at once because the store is down. */
static hf_err fail_fast(struct rs_store *s)
{
    count_error(s);
    return HF_STORE;
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

static void conn_detail(struct conn *c, const char *what, const redisContext *ctx, int err_no)
{
    hf__redis_describe(c->why, sizeof c->why, what, ctx, err_no, COMMAND_TIMEOUT_MS);
}

/*
 * A new connection, authenticated, on the right database, answering PING
 * (one round trip); NULL with c->why set on failure.
 */
static redisContext *connect_new(struct rs_store *s, struct conn *c)
{
    return hf__redis_connect(&s->t, COMMAND_TIMEOUT_MS, c->why, sizeof c->why);
}

static void block_sigpipe(struct conn *c)
{
    hf__redis_sigpipe_block(&c->sigpipe);
}

/* Consume a SIGPIPE our writes raised, then restore the caller's mask. */
static void restore_sigpipe(struct conn *c)
{
    hf__redis_sigpipe_restore(&c->sigpipe);
}

/*
 * A session on a pooled connection: HF_OK, or HF_STORE when the store is
 * down, no connection can be made (the store goes down) or none is free
 * within POOL_WAIT_MS.  debt (a delete's, or NULL) is owed when the store
 * is or goes down.  Pair with conn_put (after HF_OK only).
 */
static hf_err conn_get(struct rs_store *s, struct conn *c, const struct owed *debt)
{
    memset(c, 0, sizeof *c);
    if (!is_up(s) && owe_if_down(s, debt))
        return fail_fast(s);
    int64_t deadline = deadline_after(POOL_WAIT_MS);
    pthread_mutex_lock(&s->pmu);
    for (;;) {
        if (!is_up(s)) {
            pthread_mutex_unlock(&s->pmu);
            if (owe_if_down(s, debt))
                return fail_fast(s);
            pthread_mutex_lock(&s->pmu);
            continue;
        }
        if (s->nidle > 0) {
            c->ctx = s->idle[--s->nidle];
            c->reused = true;
            break;
        }
        if (s->nlive < POOL_MAX) {
            s->nlive++; /* the slot is ours; the connection is made unlocked */
            break;
        }
        if (wait_until(&s->pfree, &s->pmu, deadline) && s->nidle == 0 && s->nlive >= POOL_MAX) {
            uint64_t n = ++s->pool_busy;
            pthread_mutex_unlock(&s->pmu);
            count_error(s);
            if (worth_logging(n))
                HF_LOG(HF_LOG_WARN, "store_pool_busy", HF_LS("tier", TIER),
                       HF_LS("address", s->t.addr), HF_LI("connections", POOL_MAX),
                       HF_LI("count", n));
            return HF_STORE;
        }
    }
    c->epoch = s->epoch;
    pthread_mutex_unlock(&s->pmu);
    block_sigpipe(c);
    if (c->ctx == NULL && (c->ctx = connect_new(s, c)) == NULL) {
        char why[DETAIL_MAX];
        snprintf(why, sizeof why, "%s", c->why);
        restore_sigpipe(c);
        pthread_mutex_lock(&s->pmu);
        s->nlive--;
        pthread_cond_signal(&s->pfree);
        pthread_mutex_unlock(&s->pmu);
        count_error(s);
        owe(s, debt);
        mark_down(s, why);
        return HF_STORE;
    }
    return HF_OK;
}

/* End a session: a sound connection of this epoch goes back to the pool. */
static void conn_put(struct rs_store *s, struct conn *c)
{
    restore_sigpipe(c);
    redisContext *gone = NULL;
    pthread_mutex_lock(&s->pmu);
    if (c->ctx != NULL && c->ctx->err == 0 && c->epoch == s->epoch && is_up(s)) {
        s->idle[s->nidle++] = c->ctx;
    } else {
        gone = c->ctx;
        s->nlive--;
    }
    pthread_cond_signal(&s->pfree);
    pthread_mutex_unlock(&s->pmu);
    c->ctx = NULL;
    redisFree(gone);
}

/*
 * Send one command and read its reply (which may be an error reply).  A
 * connection that turns out to have been closed while idle is replaced and
 * the command sent again.  On HF_STORE c->why says why and c->ctx is NULL;
 * the caller decides what the failure means.
 */
static hf_err conn_cmd(struct rs_store *s, struct conn *c, int argc, const char **argv,
                       const size_t *lens, redisReply **reply)
{
    *reply = NULL;
    for (;;) {
        if (c->ctx == NULL)
            return HF_STORE;
        redisReply *r = redisCommandArgv(c->ctx, argc, argv, lens);
        if (r != NULL) {
            c->used = true;
            *reply = r;
            return HF_OK;
        }
        int err_no = errno;
        bool again = c->reused && !c->used && hf__redis_broken_while_idle(c->ctx, err_no);
        conn_detail(c, argv[0], c->ctx, err_no);
        redisFree(c->ctx);
        c->ctx = NULL;
        c->reused = false;
        if (!again)
            return HF_STORE;
        c->ctx = connect_new(s, c);
    }
}

/* A command failed on c: the store is down, and owes debt (or NULL). */
static hf_err conn_failed(struct rs_store *s, struct conn *c, const struct owed *debt)
{
    count_error(s);
    owe(s, debt);
    mark_down(s, c->why);
    return HF_STORE;
}

/* An error reply to a command: the operation failed. */
static hf_err reply_failed(struct rs_store *s, const char *event, const redisReply *r)
{
    count_error(s);
    log_failed_reply(s, event, r);
    if (hf__redis_reply_downs(r)) {
        char why[DETAIL_MAX];
        snprintf(why, sizeof why, "%.*s", (int)(r->len < DETAIL_MAX ? r->len : DETAIL_MAX - 1),
                 r->str);
        mark_down(s, why);
    }
    return HF_STORE;
}

/* ------------------------------------------------------------------ */
/* Prefix deletes                                                     */
/* ------------------------------------------------------------------ */

/* "hf:" + prefix with the glob's special bytes escaped + "*". */
static char *glob_of(const char *prefix)
{
    size_t n = strlen(prefix);
    char *g = malloc(KEY_PREFIX_LEN + 2 * n + 2);
    if (g == NULL)
        return NULL;
    char *p = g;
    memcpy(p, KEY_PREFIX, KEY_PREFIX_LEN);
    p += KEY_PREFIX_LEN;
    for (const char *q = prefix; *q != '\0'; q++) {
        if (strchr("*?[]\\", *q) != NULL)
            *p++ = '\\';
        *p++ = *q;
    }
    *p++ = '*';
    *p = '\0';
    return g;
}

/*
 * UNLINK every copy whose key starts with prefix ("" for all), never a
 * key/value name; *removed counts what Redis removed.  HF_OK, HF_ENOMEM,
 * or HF_STORE with reply NULL (c failed: c->why) or the failing reply in
 * *bad (the caller's to free).
 */
static hf_err scan_unlink(struct rs_store *s, struct conn *c, const char *prefix, uint64_t *removed,
                          redisReply **bad)
{
    *bad = NULL;
    char *pattern = glob_of(prefix);
    if (pattern == NULL)
        return HF_ENOMEM;
    char cursor[32] = "0";
    hf_err err = HF_OK;
    do {
        const char *scan[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
        redisReply *r = NULL;
        if ((err = conn_cmd(s, c, 6, scan, NULL, &r)) != HF_OK)
            break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len == 0 ||
            r->element[0]->len >= sizeof cursor || r->element[1]->type != REDIS_REPLY_ARRAY) {
            *bad = r;
            err = HF_STORE;
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        const redisReply *keys = r->element[1];
        const char **argv = malloc((keys->elements + 1) * sizeof *argv);
        size_t *lens = malloc((keys->elements + 1) * sizeof *lens);
        if (argv == NULL || lens == NULL) {
            free(argv);
            free(lens);
            freeReplyObject(r);
            err = HF_ENOMEM;
            break;
        }
        int n = 0;
        argv[n] = "UNLINK";
        lens[n++] = 6;
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            if (k->type != REDIS_REPLY_STRING ||
                (k->len >= KV_PREFIX_LEN && memcmp(k->str, KV_PREFIX, KV_PREFIX_LEN) == 0))
                continue;
            argv[n] = k->str;
            lens[n++] = k->len;
        }
        redisReply *u = NULL;
        if (n > 1 && (err = conn_cmd(s, c, n, argv, lens, &u)) == HF_OK) {
            if (u->type == REDIS_REPLY_INTEGER && u->integer >= 0) {
                *removed += (uint64_t)u->integer;
                freeReplyObject(u);
            } else {
                *bad = u;
                err = HF_STORE;
            }
        }
        free(argv);
        free(lens);
        freeReplyObject(r);
    } while (err == HF_OK && strcmp(cursor, "0") != 0);
    free(pattern);
    return err;
}

/* ------------------------------------------------------------------ */
/* The queue                                                          */
/* ------------------------------------------------------------------ */

static bool admissible(const struct rs_store *s, const struct op *op)
{
    return s->qcount == 0 || (s->qcount < QUEUE_MAX_OPS && s->qbytes + op->cost <= QUEUE_MAX_BYTES);
}

static void free_op(struct op *op)
{
    if (op == NULL)
        return;
    hf_entry_release(&op->e);
    free(op);
}

/* Unlink op (not busy) from the queue, prev its predecessor or NULL.
 * Called with mu held. */
static void unlink_op(struct rs_store *s, struct op *prev, struct op *op)
{
    if (prev != NULL)
        prev->next = op->next;
    else
        s->head = op->next;
    if (s->tail == op)
        s->tail = prev;
    s->qcount--;
    s->qbytes -= op->cost;
    free_op(op);
    /* Whoever waits for the writes before it need not wait for this one. */
    uint64_t before_head = s->head != NULL ? s->head->seq - 1 : s->seq;
    if (before_head > s->done_seq)
        s->done_seq = before_head;
    pthread_cond_broadcast(&s->done);
    pthread_cond_broadcast(&s->room);
}

/* Queue op (owned from here on). */
static hf_err enqueue(struct rs_store *s, struct op *op)
{
    pthread_mutex_lock(&s->mu);
    if (!s->up || s->stop) {
        if (op->kind == OP_DEL && !s->stop)
            owe_locked(s, op->key, false);
        pthread_mutex_unlock(&s->mu);
        free_op(op);
        return fail_fast(s);
    }
    if (!admissible(s, op) && hf__store_thread_may_wait()) {
        int64_t deadline = deadline_after(QUEUE_WAIT_MS);
        while (!admissible(s, op) && s->up && !wait_until(&s->room, &s->mu, deadline))
            ;
    }
    if (admissible(s, op) && s->up) {
        op->seq = ++s->seq;
        op->next = NULL;
        if (s->tail != NULL)
            s->tail->next = op;
        else
            s->head = op;
        s->tail = op;
        s->qcount++;
        s->qbytes += op->cost;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->mu);
        return HF_OK;
    }
    uint64_t dropped = ++s->dropped;
    pthread_mutex_unlock(&s->mu);
    free_op(op);
    count_error(s);
    if (worth_logging(dropped))
        HF_LOG(HF_LOG_WARN, "store_queue_full", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LI("dropped", dropped));
    return HF_STORE;
}

/* An op carrying its own copies of key (and value). */
static struct op *keyed_op(enum op_kind kind, const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = value != NULL ? strlen(value) + 1 : 0;
    struct op *op = calloc(1, sizeof *op + klen + 1 + vlen);
    if (op == NULL)
        return NULL;
    char *copy = (char *)(op + 1);
    memcpy(copy, key, klen + 1);
    if (value != NULL)
        memcpy(copy + klen + 1, value, vlen);
    op->kind = kind;
    op->key = copy;
    op->value = value != NULL ? copy + klen + 1 : NULL;
    op->hash = fnv1a(key);
    op->cost = sizeof *op + klen + 1 + vlen;
    return op;
}

static bool entry_op(const struct op *op)
{
    return op->kind == OP_PUT || op->kind == OP_DEL;
}

/* The newest queued write of key in its namespace (entries or kv), or
 * NULL.  Called with mu held. */
static const struct op *pending(const struct rs_store *s, const char *key, bool kv)
{
    uint64_t hash = fnv1a(key);
    const struct op *hit = NULL;
    for (const struct op *op = s->head; op != NULL; op = op->next)
        if (op->hash == hash && entry_op(op) == !kv && strcmp(op->key, key) == 0)
            hit = op;
    return hit;
}

/* Wait until every write queued so far is done, the store is down, or
 * FLUSH_MAX_MS have passed; true if it is done.  Called with mu held. */
static bool flush_locked(struct rs_store *s)
{
    uint64_t target = s->seq;
    int64_t deadline = deadline_after(FLUSH_MAX_MS);
    while (s->done_seq < target && s->up)
        if (wait_until(&s->done, &s->mu, deadline))
            break;
    return s->done_seq >= target;
}

/* Drop every queued write (the store is down, or closing); a delete
 * among them is owed unless closing.  Called with mu held, by the
 * writer, between batches. */
static void drop_queue_locked(struct rs_store *s, const char *event)
{
    uint64_t n = 0;
    for (struct op *op = s->head, *next; op != NULL; op = next) {
        next = op->next;
        if (op->kind == OP_DEL && !s->stop)
            owe_locked(s, op->key, false);
        free_op(op);
        n++;
    }
    s->head = s->tail = NULL;
    s->qcount = 0;
    s->qbytes = 0;
    s->done_seq = s->seq;
    pthread_cond_broadcast(&s->done);
    pthread_cond_broadcast(&s->room);
    if (n == 0)
        return;
    __atomic_add_fetch(&s->errors, n, __ATOMIC_RELAXED);
    HF_LOG(HF_LOG_WARN, event, HF_LS("tier", TIER), HF_LS("address", s->t.addr),
           HF_LI("dropped", n));
}

/* ------------------------------------------------------------------ */
/* The writer                                                         */
/* ------------------------------------------------------------------ */

static void writer_drop_conn(struct rs_store *s)
{
    redisFree(s->w.ctx);
    s->w.ctx = NULL;
}

/* Append op's command to the pipeline; false when out of memory. */
static bool append_op(struct rs_store *s, const struct op *op)
{
    size_t klen = 0;
    char *key = join(op->kind == OP_KV_PUT ? KV_PREFIX : KEY_PREFIX,
                     op->kind == OP_KV_PUT ? KV_PREFIX_LEN : KEY_PREFIX_LEN, op->key, &klen);
    if (key == NULL)
        return false;
    int rc = REDIS_ERR;
    if (op->kind == OP_DEL) {
        const char *argv[2] = {"UNLINK", key};
        size_t lens[2] = {6, klen};
        rc = redisAppendCommandArgv(s->w.ctx, 2, argv, lens);
    } else if (op->kind == OP_KV_PUT) {
        const char *argv[3] = {"SET", key, op->value};
        size_t lens[3] = {3, klen, strlen(op->value)};
        rc = redisAppendCommandArgv(s->w.ctx, 3, argv, lens);
    } else {
        size_t rlen = 0;
        unsigned char *rec = encode(op->e, &rlen);
        int64_t ttl = ttl_ms(s, op->e);
        char px[24];
        snprintf(px, sizeof px, "%lld", (long long)ttl);
        const char *argv[5] = {"SET", key, (const char *)rec, "PX", px};
        size_t lens[5] = {3, klen, rlen, 2, strlen(px)};
        if (rec != NULL)
            rc = redisAppendCommandArgv(s->w.ctx, ttl > 0 ? 5 : 3, argv, lens);
        free(rec);
    }
    free(key);
    return rc == REDIS_OK;
}

/*
 * Write one batch, pipelined on the writer's connection; once more on a
 * new connection if the old one was found closed.  Writer thread only.
 */
static void write_batch(struct rs_store *s, struct op *const *batch, int n)
{
    for (int attempt = 0;; attempt++) {
        uint64_t epoch = __atomic_load_n(&s->epoch, __ATOMIC_ACQUIRE);
        if (s->w.ctx != NULL && s->w.epoch != epoch)
            writer_drop_conn(s); /* the store went down meanwhile */
        s->w.reused = s->w.ctx != NULL;
        if (s->w.ctx == NULL) {
            s->w.epoch = epoch;
            if ((s->w.ctx = connect_new(s, &s->w)) == NULL) {
                __atomic_add_fetch(&s->errors, (uint64_t)n, __ATOMIC_RELAXED);
                mark_down(s, s->w.why);
                return;
            }
        }
        int sent = 0;
        while (sent < n && append_op(s, batch[sent]))
            sent++;
        if (sent < n) /* out of memory */
            __atomic_add_fetch(&s->errors, (uint64_t)(n - sent), __ATOMIC_RELAXED);
        int got = 0;
        char down[DETAIL_MAX] = "";
        for (; got < sent; got++) {
            redisReply *r = NULL;
            if (redisGetReply(s->w.ctx, (void **)&r) != REDIS_OK || r == NULL)
                break;
            if (r->type == REDIS_REPLY_ERROR) {
                count_error(s);
                log_failed_reply(s, "store_write_failed", r);
                if (hf__redis_reply_downs(r) && down[0] == '\0')
                    snprintf(down, sizeof down, "%.*s",
                             (int)(r->len < DETAIL_MAX ? r->len : DETAIL_MAX - 1), r->str);
            }
            freeReplyObject(r);
        }
        if (got == sent) {
            if (down[0] != '\0')
                mark_down(s, down);
            return;
        }
        int err_no = errno;
        bool again = attempt == 0 && s->w.reused && got == 0 &&
                     hf__redis_broken_while_idle(s->w.ctx, err_no);
        conn_detail(&s->w, "SET", s->w.ctx, err_no);
        writer_drop_conn(s);
        if (!again) {
            __atomic_add_fetch(&s->errors, (uint64_t)(sent - got), __ATOMIC_RELAXED);
            mark_down(s, s->w.why);
            return;
        }
    }
}

/* Make one owed delete on c (prefix "" with all: every copy). */
static hf_err pay_one(struct rs_store *s, struct conn *c, const struct owed *o, bool all)
{
    uint64_t removed = 0;
    redisReply *r = NULL;
    hf_err err;
    if (all || o->prefix) {
        err = scan_unlink(s, c, all ? "" : o->name, &removed, &r);
    } else {
        size_t klen = 0;
        char *key = join(KEY_PREFIX, KEY_PREFIX_LEN, o->name, &klen);
        const char *argv[2] = {"UNLINK", key};
        size_t lens[2] = {6, klen};
        err = key == NULL ? HF_ENOMEM : conn_cmd(s, c, 2, argv, lens, &r);
        free(key);
        if (err == HF_OK && r->type != REDIS_REPLY_INTEGER)
            err = HF_STORE;
    }
    if (err != HF_OK && r != NULL)
        snprintf(c->why, sizeof c->why, "a delete owed: %.*s", (int)(r->len < 160 ? r->len : 160),
                 r->str != NULL ? r->str : "bad reply");
    freeReplyObject(r);
    return err;
}

/*
 * Make the deletes owed to Redis on c, then (under the same lock that saw
 * none left) mark the store up; false if one failed.  Writer thread only,
 * while the store is down.  A delete owed meanwhile is made too: until the
 * store is up, every failed delete lands in the list.
 */
static bool pay_owed_then_up(struct rs_store *s, struct conn *c, uint64_t *paid)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool all = s->owe_all;
        struct owed one = {NULL, false};
        if (all) {
            /* Every copy goes, so the names go with them; a delete owed
             * from now on is remembered again. */
            s->owe_all = false;
            for (int i = 0; i < s->nowed; i++)
                free(s->owed[i].name);
            s->nowed = 0;
        } else if (s->nowed > 0) {
            one = s->owed[--s->nowed];
        } else {
            s->probes = 0;
            __atomic_store_n(&s->up, true, __ATOMIC_RELEASE);
            pthread_mutex_unlock(&s->mu);
            return true;
        }
        pthread_mutex_unlock(&s->mu);
        hf_err err = pay_one(s, c, &one, all);
        if (err != HF_OK) {
            pthread_mutex_lock(&s->mu);
            if (all)
                s->owe_all = true;
            else
                owe_locked(s, one.name, one.prefix);
            pthread_mutex_unlock(&s->mu);
        }
        free(one.name);
        if (err != HF_OK)
            return false;
        ++*paid;
    }
}

/*
 * Is Redis back?  A new connection (AUTH, SELECT, PING), then the deletes
 * owed; only then is the store up.  Writer thread only.
 */
static void probe(struct rs_store *s)
{
    struct conn c;
    memset(&c, 0, sizeof c);
    uint64_t paid = 0;
    c.ctx = connect_new(s, &c);
    if (c.ctx != NULL && pay_owed_then_up(s, &c, &paid)) {
        HF_LOG(HF_LOG_INFO, "store_up", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LI("deletes_replayed", paid));
        s->w.ctx = c.ctx; /* connected: the writer's from now on */
        s->w.epoch = __atomic_load_n(&s->epoch, __ATOMIC_ACQUIRE);
        return;
    }
    redisFree(c.ctx);
    pthread_mutex_lock(&s->mu);
    if (s->probes < 64)
        s->probes++;
    s->next_probe_ms = deadline_after(hf_backoff_next(&s->backoff, s->probes, hf_random64()));
    pthread_mutex_unlock(&s->mu);
}

static void *writer_main(void *arg)
{
    struct rs_store *s = arg;
    struct op *batch[BATCH_MAX];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (!s->up) {
            drop_queue_locked(s, "store_writes_dropped");
            if (s->stop)
                break;
            if (hf_clock_mono_ms() < s->next_probe_ms) {
                wait_until(&s->work, &s->mu, s->next_probe_ms);
                continue;
            }
            pthread_mutex_unlock(&s->mu);
            writer_drop_conn(s);
            probe(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (s->head == NULL) {
            if (s->stop)
                break;
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        if (s->stop && hf_clock_mono_ms() >= s->stop_deadline_ms) {
            drop_queue_locked(s, "store_close_dropped");
            break;
        }
        int n = 0;
        size_t bytes = 0;
        for (struct op *op = s->head; op != NULL && n < BATCH_MAX; op = op->next) {
            if (n > 0 && bytes + op->cost > BATCH_MAX_BYTES)
                break;
            op->busy = true;
            bytes += op->cost;
            batch[n++] = op;
        }
        pthread_mutex_unlock(&s->mu);
        write_batch(s, batch, n);
        pthread_mutex_lock(&s->mu);
        /* Busy ops stay first in the queue: nobody else unlinks them.  A
         * delete in a batch that took the store down may not have been
         * made: owed (no probe runs before this thread's next turn). */
        for (int i = 0; i < n; i++) {
            assert(s->head == batch[i]);
            if (!s->up && batch[i]->kind == OP_DEL)
                owe_locked(s, batch[i]->key, false);
            s->head = batch[i]->next;
            s->qcount--;
            s->qbytes -= batch[i]->cost;
            free_op(batch[i]);
        }
        if (s->head == NULL)
            s->tail = NULL;
        s->done_seq = s->head != NULL ? s->head->seq - 1 : s->seq;
        pthread_cond_broadcast(&s->done);
        pthread_cond_broadcast(&s->room);
    }
    pthread_mutex_unlock(&s->mu);
    writer_drop_conn(s);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The operations                                                     */
/* ------------------------------------------------------------------ */

static hf_err rs_get(struct hf_store *base, const char *key, int64_t now_ms,
                     enum hf_store_mode mode, struct hf_entry **out)
{
    struct rs_store *s = (struct rs_store *)base;
    if (reserved_key(key))
        return HF_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    const struct op *op = pending(s, key, false);
    if (op != NULL) {
        hf_err err = HF_NOT_FOUND;
        if (op->kind == OP_PUT && usable(s, op->e, now_ms, mode)) {
            *out = hf_entry_ref(op->e);
            err = HF_OK;
        }
        pthread_mutex_unlock(&s->mu);
        return err;
    }
    pthread_mutex_unlock(&s->mu);

    size_t klen = 0;
    char *rkey = join(KEY_PREFIX, KEY_PREFIX_LEN, key, &klen);
    if (rkey == NULL)
        return HF_ENOMEM;
    struct conn c;
    hf_err err = conn_get(s, &c, NULL);
    if (err != HF_OK) {
        free(rkey);
        return err;
    }
    const char *argv[2] = {"GET", rkey};
    size_t lens[2] = {3, klen};
    redisReply *r = NULL;
    if ((err = conn_cmd(s, &c, 2, argv, lens, &r)) != HF_OK)
        err = conn_failed(s, &c, NULL);
    conn_put(s, &c);
    free(rkey);
    if (err != HF_OK)
        return err;

    const char *why = NULL;
    struct hf_entry *e = NULL;
    if (r->type == REDIS_REPLY_NIL) {
        err = HF_NOT_FOUND;
    } else if (r->type == REDIS_REPLY_STRING) {
        err = rec_decode((const unsigned char *)r->str, r->len, key, &e, &why);
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
        err = HF_STORE_CORRUPT;
        why = "not a string";
    } else if (r->type == REDIS_REPLY_ERROR) {
        err = reply_failed(s, "store_read_failed", r);
    } else {
        err = HF_STORE_CORRUPT;
        why = "unexpected reply to GET";
    }
    freeReplyObject(r);
    if (err == HF_STORE_CORRUPT) {
        log_corrupt(s, why, why == why_version);
        return HF_NOT_FOUND;
    }
    if (err == HF_OK && !usable(s, e, now_ms, mode)) {
        hf_entry_release(&e);
        err = HF_NOT_FOUND;
    }
    *out = e;
    return err;
}

static hf_err rs_put(struct hf_store *base, struct hf_entry *e)
{
    struct rs_store *s = (struct rs_store *)base;
    if (reserved_key(e->key))
        return HF_EINVAL;
    size_t size = hf_entry_size(e);
    if (s->max_bytes > 0 && size > s->max_bytes) {
        /* Refused, and no older copy stays behind (queued: put never waits). */
        struct op *del = keyed_op(OP_DEL, e->key, NULL);
        if (del != NULL)
            (void)enqueue(s, del);
        return HF_BODY_TOO_LARGE;
    }
    struct op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return HF_ENOMEM;
    op->kind = OP_PUT;
    op->e = hf_entry_ref(e);
    op->key = e->key;
    op->hash = fnv1a(e->key);
    op->cost = size;
    return enqueue(s, op);
}

/*
 * Take key's queued writes out of the queue and wait (bounded) for one
 * being written, so none lands after the delete.  Then UNLINK.
 */
static hf_err rs_del(struct hf_store *base, const char *key)
{
    struct rs_store *s = (struct rs_store *)base;
    if (reserved_key(key))
        return HF_OK;
    uint64_t hash = fnv1a(key);
    int64_t deadline = deadline_after(FLUSH_MAX_MS);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        bool busy = false;
        for (struct op *op = s->head, *prev = NULL, *next; op != NULL; op = next) {
            next = op->next;
            if (op->hash == hash && entry_op(op) && strcmp(op->key, key) == 0) {
                if (op->busy) {
                    busy = true;
                } else {
                    unlink_op(s, prev, op);
                    continue;
                }
            }
            prev = op;
        }
        if (!busy || !s->up || wait_until(&s->done, &s->mu, deadline))
            break;
    }
    if (!s->up) {
        owe_locked(s, key, false);
        pthread_mutex_unlock(&s->mu);
        return fail_fast(s);
    }
    pthread_mutex_unlock(&s->mu);

    size_t klen = 0;
    char *rkey = join(KEY_PREFIX, KEY_PREFIX_LEN, key, &klen);
    if (rkey == NULL)
        return HF_ENOMEM;
    const struct owed debt = {(char *)key, false};
    struct conn c;
    hf_err err = conn_get(s, &c, &debt);
    if (err != HF_OK) {
        free(rkey);
        return err;
    }
    const char *argv[2] = {"UNLINK", rkey};
    size_t lens[2] = {6, klen};
    redisReply *r = NULL;
    if ((err = conn_cmd(s, &c, 2, argv, lens, &r)) != HF_OK)
        err = conn_failed(s, &c, &debt);
    conn_put(s, &c);
    free(rkey);
    if (err == HF_OK && r->type != REDIS_REPLY_INTEGER)
        err = reply_failed(s, "store_write_failed", r);
    freeReplyObject(r);
    return err;
}

static hf_err rs_del_prefix(struct hf_store *base, const char *prefix, uint64_t *removed)
{
    struct rs_store *s = (struct rs_store *)base;
    *removed = 0;
    pthread_mutex_lock(&s->mu);
    if (!flush_locked(s)) {
        /* Redis is slow: what is still queued under prefix never lands. */
        size_t n = strlen(prefix);
        for (struct op *op = s->head, *prev = NULL, *next; op != NULL; op = next) {
            next = op->next;
            if (!op->busy && entry_op(op) && strncmp(op->key, prefix, n) == 0) {
                unlink_op(s, prev, op);
                continue;
            }
            prev = op;
        }
    }
    if (!s->up) {
        owe_locked(s, prefix, true);
        pthread_mutex_unlock(&s->mu);
        return fail_fast(s);
    }
    pthread_mutex_unlock(&s->mu);

    const struct owed debt = {(char *)prefix, true};
    struct conn c;
    hf_err err = conn_get(s, &c, &debt);
    if (err != HF_OK)
        return err;
    redisReply *bad = NULL;
    err = scan_unlink(s, &c, prefix, removed, &bad);
    if (err == HF_STORE && bad == NULL)
        err = conn_failed(s, &c, &debt);
    conn_put(s, &c);
    if (bad != NULL && bad->type == REDIS_REPLY_ERROR) {
        err = reply_failed(s, "store_write_failed", bad);
    } else if (bad != NULL) { /* not Redis talking */
        snprintf(c.why, sizeof c.why, "unexpected reply to SCAN or UNLINK");
        err = conn_failed(s, &c, &debt);
    }
    freeReplyObject(bad);
    return err;
}

/* Expiry is Redis's (TTLs): only the writes queued before are waited for. */
static hf_err rs_sweep(struct hf_store *base, int64_t now_ms, uint64_t *removed)
{
    struct rs_store *s = (struct rs_store *)base;
    (void)now_ms;
    *removed = 0;
    pthread_mutex_lock(&s->mu);
    (void)flush_locked(s);
    pthread_mutex_unlock(&s->mu);
    return HF_OK;
}

/* All 0: see "Counting" above. */
static void rs_stats(struct hf_store *base, struct hf_store_stats *out)
{
    (void)base;
    memset(out, 0, sizeof *out);
}

static hf_err copy_value(const char *v, size_t n, char *buf, size_t len)
{
    if (n >= len)
        return HF_EINVAL;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return HF_OK;
}

static hf_err rs_kv_get(struct hf_store *base, const char *key, char *buf, size_t len)
{
    struct rs_store *s = (struct rs_store *)base;
    pthread_mutex_lock(&s->mu);
    const struct op *op = pending(s, key, true);
    hf_err err = op != NULL ? copy_value(op->value, strlen(op->value), buf, len) : HF_OK;
    pthread_mutex_unlock(&s->mu);
    if (op != NULL)
        return err;

    size_t klen = 0;
    char *rkey = join(KV_PREFIX, KV_PREFIX_LEN, key, &klen);
    if (rkey == NULL)
        return HF_ENOMEM;
    struct conn c;
    if ((err = conn_get(s, &c, NULL)) != HF_OK) {
        free(rkey);
        return err;
    }
    const char *argv[2] = {"GET", rkey};
    size_t lens[2] = {3, klen};
    redisReply *r = NULL;
    if ((err = conn_cmd(s, &c, 2, argv, lens, &r)) != HF_OK)
        err = conn_failed(s, &c, NULL);
    conn_put(s, &c);
    free(rkey);
    if (err != HF_OK)
        return err;
    /* The value is input like any other: one too long, holding a NUL or
     * of another type reads as absent, logged; the next put replaces it. */
    const char *why = NULL;
    if (r->type == REDIS_REPLY_NIL)
        err = HF_NOT_FOUND;
    else if (r->type == REDIS_REPLY_STRING && r->len < HF_KV_VALUE_MAX &&
             memchr(r->str, '\0', r->len) == NULL)
        err = copy_value(r->str, r->len, buf, len);
    else if (r->type == REDIS_REPLY_STRING)
        why = "bad kv value";
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) != 0)
        err = reply_failed(s, "store_read_failed", r);
    else
        why = "kv value is not a string";
    freeReplyObject(r);
    if (why != NULL) {
        log_corrupt(s, why, false);
        err = HF_NOT_FOUND;
    }
    return err;
}

static hf_err rs_kv_put(struct hf_store *base, const char *key, const char *value)
{
    struct rs_store *s = (struct rs_store *)base;
    struct op *op = keyed_op(OP_KV_PUT, key, value);
    if (op == NULL)
        return HF_ENOMEM;
    return enqueue(s, op);
}

static bool rs_up(struct hf_store *base)
{
    return is_up((struct rs_store *)base);
}

static uint64_t rs_errors(struct hf_store *base)
{
    struct rs_store *s = (struct rs_store *)base;
    return __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
}

/* Free a store whose writer is not running (or has been joined). */
static void destroy(struct rs_store *s)
{
    for (int i = 0; i < s->nidle; i++)
        redisFree(s->idle[i]);
    for (struct op *op = s->head, *next; op != NULL; op = next) {
        next = op->next;
        free_op(op);
    }
    for (int i = 0; i < s->nowed; i++)
        free(s->owed[i].name);
    redisFree(s->w.ctx);
    hf__redis_target_fini(&s->t);
    pthread_cond_destroy(&s->pfree);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->room);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->pmu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void rs_close(struct hf_store *base)
{
    struct rs_store *s = (struct rs_store *)base;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    s->stop_deadline_ms = deadline_after(FLUSH_MAX_MS);
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    if (s->nowed > 0 || s->owe_all)
        HF_LOG(HF_LOG_WARN, "store_deletes_lost", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LI("deletes", s->owe_all ? -1 : s->nowed),
               HF_LS("detail", "closed while Redis was unreachable"));
    destroy(s);
}

static const struct hf_store_ops rs_ops = {
    .name = "redis",
    .get = rs_get,
    .put = rs_put,
    .promote = NULL, /* a shared tier is written by puts only */
    .del = rs_del,
    .del_prefix = rs_del_prefix,
    .sweep = rs_sweep,
    .stats = rs_stats,
    .kv_get = rs_kv_get,
    .kv_put = rs_kv_put,
    .close = rs_close,
    .up = rs_up,
    .errors = rs_errors,
};

static int init_sync(struct rs_store *s)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    /* Waits here are timeouts, not cache time: immune to clock steps. */
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&s->pfree, &ca);
    if (rc == 0 && (rc = pthread_cond_init(&s->work, &ca)) != 0)
        pthread_cond_destroy(&s->pfree);
    if (rc == 0 && (rc = pthread_cond_init(&s->room, &ca)) != 0) {
        pthread_cond_destroy(&s->pfree);
        pthread_cond_destroy(&s->work);
    }
    if (rc == 0 && (rc = pthread_cond_init(&s->done, &ca)) != 0) {
        pthread_cond_destroy(&s->pfree);
        pthread_cond_destroy(&s->work);
        pthread_cond_destroy(&s->room);
    }
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    pthread_mutex_init(&s->pmu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    return 0;
}

const char *hf__store_redis_url_problem(const char *url)
{
    struct hf__redis_target t;
    memset(&t, 0, sizeof t);
    const char *why = hf__redis_parse_url(url, &t);
    hf__redis_target_fini(&t);
    return why;
}

hf_err hf__store_redis_open(const char *url, const struct hf_store_options *opts,
                            struct hf_store **out, char *errbuf, size_t errlen)
{
    struct rs_store *s = calloc(1, sizeof *s);
    if (s == NULL || init_sync(s) != 0) {
        free(s);
        hf__store_errf(errbuf, errlen, "cannot open the Redis cache store: out of memory");
        return HF_ENOMEM;
    }
    s->base.magic = HF_STORE_MAGIC;
    s->base.ops = &rs_ops;
    s->max_bytes = opts != NULL ? opts->max_bytes : 0;
    s->keep_ms = opts != NULL ? opts->keep_ms : 0;
    s->backoff = (struct hf_retry_policy){.attempts = 1,
                                          .backoff_ms = BACKOFF_FIRST_MS,
                                          .max_backoff_ms = BACKOFF_MAX_MS,
                                          .multiplier = 2.0,
                                          .jitter = HF_JITTER_FULL};
    /* Never the URL in a message: it may hold a password. */
    const char *why = hf__redis_parse_url(url, &s->t);
    if (why != NULL) {
        hf__store_errf(errbuf, errlen, "bad Redis URL: %s", why);
        destroy(s);
        return strcmp(why, "out of memory") == 0 ? HF_ENOMEM : HF_CONFIG;
    }

    /* One attempt now, so a reachable store opens up and an unreachable
     * one says so at once; the writer keeps trying after that. */
    struct conn c;
    memset(&c, 0, sizeof c);
    block_sigpipe(&c);
    redisContext *ctx = connect_new(s, &c);
    restore_sigpipe(&c);
    if (ctx != NULL) {
        s->up = true;
        s->idle[s->nidle++] = ctx;
        s->nlive = 1;
    } else {
        s->probes = 1;
        s->next_probe_ms = deadline_after(hf_backoff_next(&s->backoff, 1, hf_random64()));
        HF_LOG(HF_LOG_ERROR, "store_down", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LS("detail", c.why));
    }

    /* The writer takes no signals: SIGPIPE from its writes is an EPIPE,
     * and the application's handlers run on its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->writer, NULL, writer_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        hf__store_errf(errbuf, errlen, "cannot open the Redis cache store %s: no writer thread",
                       s->t.addr);
        destroy(s);
        return HF_STORE;
    }
    *out = &s->base;
    return HF_OK;
}
