/*
 * The Redis store: a cache tier shared by a fleet of holdfast instances.
 * Any thread may call every operation; none may be an event loop's (get,
 * delete and kv_get wait for Redis, bounded by short timeouts).
 *
 * Records.  A copy lives at "hf:" + its cache key (binary-safe: keys may
 * hold '\n' and any byte but NUL), its value a versioned binary record
 * holding the full cache key and a SipHash-1-3 checksum (layout and parse:
 * cache/record.h).  A value that does not parse, fails its checksum, names
 * another key, is of another record version, or is not a string is a miss,
 * logged ("store_corrupt"); it is not deleted (another holdfast version in
 * the fleet may have written it) and the next put replaces it.  A parse
 * trusts no length the record does not really hold.  Keys starting "kv:" are not cache keys
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
 * to a bounded queue (cache/wqueue.h) drained by one writer thread with its
 * own connection, pipelining up to BATCH_MAX commands a round trip; a get
 * looks in the queue first (reads its own writes).  A delete takes the key's queued
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
 * jitter (cache/pool.h).  A delete that could not reach Redis is owed (up
 * to OWED_MAX; beyond that every copy is) and made before the store is up
 * again, so a purged copy never comes back; then "store_up" is logged.
 * Opening while Redis is away succeeds: the store starts down.
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

#include "cache/pool.h"
#include "cache/record.h"
#include "cache/store_impl.h"
#include "cache/wqueue.h"
#include "core/clock.h"
#include "fleet/redis_link.h"
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

/* The write queue's bounds are cache/wqueue.h's.  Its writer sends at most */
#define BATCH_MAX 128                     /* commands a round trip ... */
#define BATCH_MAX_BYTES ((size_t)8 << 20) /* ... and bytes */
#define FLUSH_MAX_MS 2000                 /* sweep, prefix delete and close wait at most this */

#define OWED_MAX 256 /* deletes owed to Redis before every copy is */
#define SCAN_COUNT "1000"

#define TTL_SLACK_MS 5000
#define TTL_MAX_MS ((int64_t)10 * 366 * 24 * 3600 * 1000) /* ten years */

#define KEY_PREFIX "hf:"
#define KEY_PREFIX_LEN 3
#define KV_PREFIX "hf:kv:"
#define KV_PREFIX_LEN 6

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

    bool up;         /* read atomically; written under q.mu */
    uint64_t errors; /* atomic */

    struct hf__pool pool;
    uint64_t pool_busy; /* callers that found no connection, for the log (pool.mu) */

    /* The queue, and the owed deletes and the probe schedule under its
     * mutex q.mu.  The writer waits on q.work for ops, stop, or its next
     * probe; on close, writes still queued at q.stop_by_ms are dropped. */
    struct hf__wqueue q;
    struct owed owed[OWED_MAX];
    int nowed;
    bool owe_all;
    int probes;            /* failed reconnections in a row */
    int64_t next_probe_ms; /* monotonic */
    /* For log rate limits. */
    uint64_t dropped, other_version, failed_replies;

    /* The writer thread's. */
    pthread_t writer;
    struct conn w;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------ */
/* Records                                                            */
/* ------------------------------------------------------------------ */

/* The copy's TTL in ms (see "Expiry" above); 0: none. */
static int64_t ttl_ms(const struct rs_store *s, const struct hf_entry *e)
{
    int64_t until = hf__record_until_ms(e, s->keep_ms), span;
    if (until == INT64_MAX)
        return 0;
    if (__builtin_sub_overflow(until, e->stored_at_ms, &span))
        span = until > e->stored_at_ms ? INT64_MAX : 0;
    if (span < 0)
        span = 0;
    return span > TTL_MAX_MS - TTL_SLACK_MS ? TTL_MAX_MS : span + TTL_SLACK_MS;
}

/* Whether e may be served at now_ms in mode. */
static bool usable(const struct rs_store *s, const struct hf_entry *e, int64_t now_ms,
                   enum hf_store_mode mode)
{
    return hf__record_servable(e->stored_at_ms, e->fresh_until_ms, e->stale_until_ms, s->keep_ms,
                               now_ms, mode);
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
        pthread_mutex_lock(&s->q.mu);
        n = ++s->other_version;
        pthread_mutex_unlock(&s->q.mu);
    }
    if (worth_logging(n))
        HF_LOG(HF_LOG_ERROR, "store_corrupt", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LS("detail", why));
}

/* An error reply to one command: the operation failed, the store may
 * still be up. */
static void log_failed_reply(struct rs_store *s, const char *event, const redisReply *r)
{
    pthread_mutex_lock(&s->q.mu);
    uint64_t n = ++s->failed_replies;
    pthread_mutex_unlock(&s->q.mu);
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "%.*s", (int)(r->len < DETAIL_MAX ? r->len : DETAIL_MAX - 1),
             r->str != NULL ? r->str : "");
    if (worth_logging(n))
        HF_LOG(HF_LOG_WARN, event, HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LS("detail", detail), HF_LI("count", n));
}

static void free_ctx(void *ctx)
{
    redisFree(ctx);
}

static void mark_down(struct rs_store *s, const char *why)
{
    pthread_mutex_lock(&s->q.mu);
    bool was_up = s->up;
    if (was_up) {
        __atomic_store_n(&s->up, false, __ATOMIC_RELEASE);
        s->probes = 1;
        s->next_probe_ms = hf__pool_next_probe_ms(1);
        pthread_cond_signal(&s->q.work); /* the writer drops the queue, then probes */
        pthread_cond_broadcast(&s->q.done);
        pthread_cond_broadcast(&s->q.room);
    }
    pthread_mutex_unlock(&s->q.mu);
    if (!was_up)
        return;
    HF_LOG(HF_LOG_ERROR, "store_down", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
           HF_LS("detail", why));
    hf__pool_flush(&s->pool, free_ctx);
}

/* Owe Redis a delete.  Called with q.mu held. */
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
    pthread_mutex_lock(&s->q.mu);
    owe_locked(s, debt->name, debt->prefix);
    pthread_mutex_unlock(&s->q.mu);
}

/* Owe debt if the store is down, in one step with finding it so (a probe
 * marks it up under the same lock); false if it is up after all. */
static bool owe_if_down(struct rs_store *s, const struct owed *debt)
{
    pthread_mutex_lock(&s->q.mu);
    bool down = !s->up;
    if (down && debt != NULL)
        owe_locked(s, debt->name, debt->prefix);
    pthread_mutex_unlock(&s->q.mu);
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
    int64_t deadline = hf__wqueue_deadline(POOL_WAIT_MS);
    struct hf__pool *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (!is_up(s)) {
            pthread_mutex_unlock(&p->mu);
            if (owe_if_down(s, debt))
                return fail_fast(s);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (p->nidle > 0) {
            c->ctx = p->idle[--p->nidle];
            c->reused = true;
            break;
        }
        if (p->nlive < p->max) {
            p->nlive++; /* the slot is ours; the connection is made unlocked */
            break;
        }
        if (hf__wqueue_wait_until(&p->free, &p->mu, deadline) && p->nidle == 0 &&
            p->nlive >= p->max) {
            uint64_t n = ++s->pool_busy;
            pthread_mutex_unlock(&p->mu);
            count_error(s);
            if (worth_logging(n))
                HF_LOG(HF_LOG_WARN, "store_pool_busy", HF_LS("tier", TIER),
                       HF_LS("address", s->t.addr), HF_LI("connections", POOL_MAX),
                       HF_LI("count", n));
            return HF_STORE;
        }
    }
    c->epoch = p->epoch;
    pthread_mutex_unlock(&p->mu);
    block_sigpipe(c);
    if (c->ctx == NULL && (c->ctx = connect_new(s, c)) == NULL) {
        char why[DETAIL_MAX];
        snprintf(why, sizeof why, "%s", c->why);
        restore_sigpipe(c);
        (void)hf__pool_give(p, NULL, c->epoch, false); /* the slot */
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
    bool sound = c->ctx != NULL && c->ctx->err == 0 && is_up(s);
    redisFree(hf__pool_give(&s->pool, c->ctx, c->epoch, sound));
    c->ctx = NULL;
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

/* Queue op (owned from here on). */
static hf_err enqueue(struct rs_store *s, struct hf__wop *op)
{
    pthread_mutex_lock(&s->q.mu);
    if (!s->up || s->q.stop) {
        if (op->kind == HF_WOP_DEL && !s->q.stop)
            owe_locked(s, op->key, false);
        pthread_mutex_unlock(&s->q.mu);
        hf__wop_free(op);
        return fail_fast(s);
    }
    if (hf__wqueue_offer(&s->q, op, true, &s->up)) {
        pthread_mutex_unlock(&s->q.mu);
        return HF_OK;
    }
    uint64_t dropped = ++s->dropped;
    pthread_mutex_unlock(&s->q.mu);
    hf__wop_free(op);
    count_error(s);
    if (worth_logging(dropped))
        HF_LOG(HF_LOG_WARN, "store_queue_full", HF_LS("tier", TIER), HF_LS("address", s->t.addr),
               HF_LI("dropped", dropped));
    return HF_STORE;
}

/* Drop every queued write (the store is down, or closing); a delete
 * among them is owed unless closing.  Called with q.mu held, by the
 * writer, between batches. */
static void drop_queue_locked(struct rs_store *s, const char *event)
{
    uint64_t n = 0;
    struct hf__wop *all = hf__wqueue_take_all(&s->q, &n);
    for (const struct hf__wop *op = all; op != NULL; op = op->next)
        if (op->kind == HF_WOP_DEL && !s->q.stop)
            owe_locked(s, op->key, false);
    hf__wop_free_list(all);
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
static bool append_op(struct rs_store *s, const struct hf__wop *op)
{
    size_t klen = 0;
    char *key = join(op->kind == HF_WOP_KV_PUT ? KV_PREFIX : KEY_PREFIX,
                     op->kind == HF_WOP_KV_PUT ? KV_PREFIX_LEN : KEY_PREFIX_LEN, op->key, &klen);
    if (key == NULL)
        return false;
    int rc = REDIS_ERR;
    if (op->kind == HF_WOP_DEL) {
        const char *argv[2] = {"UNLINK", key};
        size_t lens[2] = {6, klen};
        rc = redisAppendCommandArgv(s->w.ctx, 2, argv, lens);
    } else if (op->kind == HF_WOP_KV_PUT) {
        const char *argv[3] = {"SET", key, op->value};
        size_t lens[3] = {3, klen, strlen(op->value)};
        rc = redisAppendCommandArgv(s->w.ctx, 3, argv, lens);
    } else {
        size_t rlen = 0;
        unsigned char *rec = hf__record_encode(HF_RECORD_REDIS, op->e, NULL, &rlen);
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
static void write_batch(struct rs_store *s, struct hf__wop *const *batch, int n)
{
    for (int attempt = 0;; attempt++) {
        uint64_t epoch = __atomic_load_n(&s->pool.epoch, __ATOMIC_ACQUIRE);
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
        pthread_mutex_lock(&s->q.mu);
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
            pthread_mutex_unlock(&s->q.mu);
            return true;
        }
        pthread_mutex_unlock(&s->q.mu);
        hf_err err = pay_one(s, c, &one, all);
        if (err != HF_OK) {
            pthread_mutex_lock(&s->q.mu);
            if (all)
                s->owe_all = true;
            else
                owe_locked(s, one.name, one.prefix);
            pthread_mutex_unlock(&s->q.mu);
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
        s->w.epoch = __atomic_load_n(&s->pool.epoch, __ATOMIC_ACQUIRE);
        return;
    }
    redisFree(c.ctx);
    pthread_mutex_lock(&s->q.mu);
    if (s->probes < 64)
        s->probes++;
    s->next_probe_ms = hf__pool_next_probe_ms(s->probes);
    pthread_mutex_unlock(&s->q.mu);
}

static void *writer_main(void *arg)
{
    struct rs_store *s = arg;
    struct hf__wop *batch[BATCH_MAX];
    pthread_mutex_lock(&s->q.mu);
    for (;;) {
        if (!s->up) {
            drop_queue_locked(s, "store_writes_dropped");
            if (s->q.stop)
                break;
            if (hf_clock_mono_ms() < s->next_probe_ms) {
                hf__wqueue_wait_until(&s->q.work, &s->q.mu, s->next_probe_ms);
                continue;
            }
            pthread_mutex_unlock(&s->q.mu);
            writer_drop_conn(s);
            probe(s);
            pthread_mutex_lock(&s->q.mu);
            continue;
        }
        if (s->q.head == NULL) {
            if (s->q.stop)
                break;
            pthread_cond_wait(&s->q.work, &s->q.mu);
            continue;
        }
        if (s->q.stop && hf_clock_mono_ms() >= s->q.stop_by_ms) {
            drop_queue_locked(s, "store_close_dropped");
            break;
        }
        int n = 0;
        size_t bytes = 0;
        for (struct hf__wop *op = s->q.head; op != NULL && n < BATCH_MAX; op = op->next) {
            if (n > 0 && bytes + op->cost > BATCH_MAX_BYTES)
                break;
            op->busy = true;
            bytes += op->cost;
            batch[n++] = op;
        }
        pthread_mutex_unlock(&s->q.mu);
        write_batch(s, batch, n);
        pthread_mutex_lock(&s->q.mu);
        /* Busy ops stay first in the queue: nobody else unlinks them.  A
         * delete in a batch that took the store down may not have been
         * made: owed (no probe runs before this thread's next turn). */
        for (int i = 0; i < n; i++) {
            struct hf__wop *op = hf__wqueue_shift(&s->q);
            assert(op == batch[i]);
            if (!s->up && op->kind == HF_WOP_DEL)
                owe_locked(s, op->key, false);
            hf__wop_free(op);
        }
        hf__wqueue_moved(&s->q);
    }
    pthread_mutex_unlock(&s->q.mu);
    writer_drop_conn(s);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The operations                                                     */
/* ------------------------------------------------------------------ */

/*
 * cmd (GET or UNLINK) of prefix + key on a pooled connection: HF_OK with
 * its reply in *r (the caller's to free; it may be an error reply), or a
 * failure, counted (debt, a delete's or NULL, is owed then).
 */
static hf_err key_cmd(struct rs_store *s, const char *cmd, const char *prefix, size_t plen,
                      const char *key, const struct owed *debt, redisReply **r)
{
    *r = NULL;
    size_t klen = 0;
    char *name = join(prefix, plen, key, &klen);
    if (name == NULL)
        return HF_ENOMEM;
    struct conn c;
    hf_err err = conn_get(s, &c, debt);
    if (err == HF_OK) {
        const char *argv[2] = {cmd, name};
        size_t lens[2] = {strlen(cmd), klen};
        if ((err = conn_cmd(s, &c, 2, argv, lens, r)) != HF_OK)
            err = conn_failed(s, &c, debt);
        conn_put(s, &c);
    }
    free(name);
    return err;
}

static hf_err rs_get(struct hf_store *base, const char *key, int64_t now_ms,
                     enum hf_store_mode mode, struct hf_entry **out)
{
    struct rs_store *s = (struct rs_store *)base;
    if (reserved_key(key))
        return HF_NOT_FOUND;
    pthread_mutex_lock(&s->q.mu);
    const struct hf__wop *op = hf__wqueue_pending(&s->q, key, false);
    if (op != NULL) {
        hf_err err = HF_NOT_FOUND;
        if (op->kind == HF_WOP_PUT && usable(s, op->e, now_ms, mode)) {
            *out = hf_entry_ref(op->e);
            err = HF_OK;
        }
        pthread_mutex_unlock(&s->q.mu);
        return err;
    }
    pthread_mutex_unlock(&s->q.mu);

    redisReply *r = NULL;
    hf_err err = key_cmd(s, "GET", KEY_PREFIX, KEY_PREFIX_LEN, key, NULL, &r);
    if (err != HF_OK)
        return err;
    const char *why = NULL;
    struct hf_entry *e = NULL;
    enum hf__record_verdict v = HF_RECORD_SOUND;
    if (r->type == REDIS_REPLY_NIL) {
        err = HF_NOT_FOUND;
    } else if (r->type == REDIS_REPLY_STRING) {
        struct hf__record rec;
        v = hf__record_parse(HF_RECORD_REDIS, r->str, r->len, key, &rec, &why);
        err = v != HF_RECORD_SOUND ? HF_STORE_CORRUPT : hf__record_entry(&rec, &e);
        if (err == HF_EINVAL || err == HF_BODY_TOO_LARGE) {
            err = HF_STORE_CORRUPT;
            why = "malformed record";
        }
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
        log_corrupt(s, why, v == HF_RECORD_OTHER_VERSION);
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
    if (s->max_bytes > 0 && hf_entry_size(e) > s->max_bytes) {
        /* Refused, and no older copy stays behind (queued: put never waits). */
        struct hf__wop *del = hf__wop_new(sizeof *del, HF_WOP_DEL, e->key, NULL);
        if (del != NULL)
            (void)enqueue(s, del);
        return HF_BODY_TOO_LARGE;
    }
    struct hf__wop *op = hf__wop_new_put(sizeof *op, e);
    if (op == NULL)
        return HF_ENOMEM;
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
    int64_t deadline = hf__wqueue_deadline(FLUSH_MAX_MS);
    pthread_mutex_lock(&s->q.mu);
    for (;;) {
        uint64_t busy = 0;
        hf__wop_free_list(hf__wqueue_cancel(&s->q, key, false, &busy));
        if (busy == 0 || !s->up || hf__wqueue_wait_until(&s->q.done, &s->q.mu, deadline))
            break;
    }
    if (!s->up) {
        owe_locked(s, key, false);
        pthread_mutex_unlock(&s->q.mu);
        return fail_fast(s);
    }
    pthread_mutex_unlock(&s->q.mu);

    const struct owed debt = {(char *)key, false};
    redisReply *r = NULL;
    hf_err err = key_cmd(s, "UNLINK", KEY_PREFIX, KEY_PREFIX_LEN, key, &debt, &r);
    if (err == HF_OK && r->type != REDIS_REPLY_INTEGER)
        err = reply_failed(s, "store_write_failed", r);
    freeReplyObject(r);
    return err;
}

static hf_err rs_del_prefix(struct hf_store *base, const char *prefix, uint64_t *removed)
{
    struct rs_store *s = (struct rs_store *)base;
    *removed = 0;
    pthread_mutex_lock(&s->q.mu);
    if (!hf__wqueue_flush(&s->q, FLUSH_MAX_MS, &s->up)) {
        /* Redis is slow: what is still queued under prefix never lands. */
        uint64_t busy = 0;
        hf__wop_free_list(hf__wqueue_cancel(&s->q, prefix, true, &busy));
    }
    if (!s->up) {
        owe_locked(s, prefix, true);
        pthread_mutex_unlock(&s->q.mu);
        return fail_fast(s);
    }
    pthread_mutex_unlock(&s->q.mu);

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
    pthread_mutex_lock(&s->q.mu);
    (void)hf__wqueue_flush(&s->q, FLUSH_MAX_MS, &s->up);
    pthread_mutex_unlock(&s->q.mu);
    return HF_OK;
}

/* All 0: see "Counting" above. */
static void rs_stats(struct hf_store *base, struct hf_store_stats *out)
{
    (void)base;
    memset(out, 0, sizeof *out);
}

static hf_err rs_kv_get(struct hf_store *base, const char *key, char *buf, size_t len)
{
    struct rs_store *s = (struct rs_store *)base;
    hf_err err = HF_OK;
    if (hf__wqueue_kv_read(&s->q, key, buf, len, &err))
        return err;
    redisReply *r = NULL;
    if ((err = key_cmd(s, "GET", KV_PREFIX, KV_PREFIX_LEN, key, NULL, &r)) != HF_OK)
        return err;
    /* The value is input like any other: one too long, holding a NUL or
     * of another type reads as absent, logged; the next put replaces it. */
    const char *why = NULL;
    if (r->type == REDIS_REPLY_NIL)
        err = HF_NOT_FOUND;
    else if (r->type == REDIS_REPLY_STRING && r->len < HF_KV_VALUE_MAX &&
             memchr(r->str, '\0', r->len) == NULL)
        err = hf__record_kv_copy(r->str, r->len, buf, len);
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
    struct hf__wop *op = hf__wop_new(sizeof *op, HF_WOP_KV_PUT, key, value);
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
    hf__pool_fini(&s->pool, free_ctx);
    for (int i = 0; i < s->nowed; i++)
        free(s->owed[i].name);
    redisFree(s->w.ctx);
    hf__redis_target_fini(&s->t);
    hf__wqueue_fini(&s->q);
    free(s);
}

static void rs_close(struct hf_store *base)
{
    struct rs_store *s = (struct rs_store *)base;
    hf__wqueue_stop(&s->q, FLUSH_MAX_MS);
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
    if (s == NULL || hf__wqueue_init(&s->q) != 0) {
        free(s);
        hf__store_errf(errbuf, errlen, "cannot open the Redis cache store: out of memory");
        return HF_ENOMEM;
    }
    if (hf__pool_init(&s->pool, POOL_MAX) != 0) {
        hf__wqueue_fini(&s->q);
        free(s);
        hf__store_errf(errbuf, errlen, "cannot open the Redis cache store: out of memory");
        return HF_ENOMEM;
    }
    s->base.magic = HF_STORE_MAGIC;
    s->base.ops = &rs_ops;
    s->max_bytes = opts != NULL ? opts->max_bytes : 0;
    s->keep_ms = opts != NULL ? opts->keep_ms : 0;
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
        s->pool.idle[s->pool.nidle++] = ctx;
        s->pool.nlive = 1;
    } else {
        s->probes = 1;
        s->next_probe_ms = hf__pool_next_probe_ms(1);
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
