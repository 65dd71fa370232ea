/*
 * The Memcached store: a cache tier shared by a fleet of holdfast instances.
 * Only a cache: limits, quotas and coalescing stay local (DESIGN, "cache
 * tiers").  Any thread may call every operation; none runs on an event loop.
 *
 * Keys and values.  Memcached keys are at most 250 bytes without spaces or
 * control bytes; cache keys may be longer and hold both.  So a copy lives
 * at "hf:" + 32 hex digits (two SipHash-1-3 of the cache key under fixed keys: every
 * instance must compute the same name) and its value is a versioned binary
 * record holding the full cache key, the generation tokens below and a
 * checksum (layout and parse: cache/record.h).  A value that does not
 * parse, fails its checksum, or names another key (a hash collision) is a
 * miss, logged; a parse never allocates more than the lengths the value
 * really holds.  Memcached has no authentication: the checksum catches
 * corruption and foreign data, not someone who may write to the server.
 *
 * Expiry.  exptime is the copy's stale_until (or stored_at + keep_ms if
 * earlier) measured from stored_at, rounded up and one second longer for
 * memcached's one-second clock; beyond 30 days it must be an absolute unix
 * time (the protocol's rule); a copy kept forever gets 0.  A get still
 * checks the windows against now_ms, so expiry only frees memory.
 *
 * Prefix deletes.  Memcached cannot list its keys, so every record also
 * holds generation tokens, read in the same round trip as the copy and
 * compared on every get: "hf:gen:all"; the key's scope ("METHOD ROUTE ",
 * up to its second space); and, for a variant ("PATH\nVARY"), its path.
 * A prefix delete replaces one token with a new random one, so every copy
 * that held the old one becomes a miss at once, here and on every other
 * instance: a prefix holding '\n' renews that path's variant token (exact
 * for "PATH\n", which is what invalidations and /purge?key= send); another
 * prefix with a scope renews the scope's token, dropping every copy of the
 * route, not only those under the prefix (a cache may forget too much,
 * never too little); a shorter one renews "all".  A missing token (evicted)
 * matches nothing.  Old records stay until memcached expires or evicts them,
 * and *removed is always 0: memcached cannot count them.
 *
 * The key/value table lives at "hf:kv:" + 32 hex digits, in the same kind
 * of record, with no expiry; memcached may still evict a value, which then
 * reads as absent.  stats are the servers' own totals (all their items);
 * sweep removes nothing.
 *
 * Threads.  get, delete, delete by prefix, kv_get and stats are synchronous
 * on the caller's thread over a small pool of clients (memcached_clone of a
 * template that never does I/O) with short timeouts.  put and kv_put go to
 * a bounded queue (cache/wqueue.h) drained by one writer thread, so they
 * never wait on the network; a get sees the queue first (reads its own
 * writes).  A delete first takes matching puts out of the queue and waits
 * for the one being written, so no older put lands after it.  A connection
 * found broken (closed while idle, or the server restarted) is replaced and
 * the call made once more before it counts as a failure.  sweep only waits
 * (bounded) for the writes queued before it, like a SQLite sweep; close
 * flushes likewise.
 *
 * Down and up.  A connection, I/O or timeout failure marks the store down
 * (log "store_down"): every operation then fails at once with HF_STORE
 * (a get too, so a tiered store can look elsewhere; a put is not queued)
 * and no thread but the writer touches the network.  The writer probes
 * every server (a fresh client) after a backoff from 100 ms doubling to 5 s
 * with full jitter (cache/pool.h); when all answer the store is up again
 * ("store_up").  A delete or purge that could not reach memcached would let
 * its copies come back, so it is owed: remembered (up to LOST_MAX names,
 * beyond that "all" is renewed) and made before the store is up again.  A server list is one unit:
 * with one server down, the tier is down.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "cache/pool.h"
#include "cache/record.h"
#include "cache/store_impl.h"
#include "cache/wqueue.h"
#include "core/clock.h"
#include "obs/log.h"

#define TIER "memcached"
#define SCHEME "memcached://"
#define DEFAULT_PORT 11211
#define MAX_SERVERS 16
#define URL_MAX 2048
#define HOST_MAX 255

/* Client settings: a cache tier that answers slowly is worse than none. */
#define CONNECT_TIMEOUT_MS 200
#define POLL_TIMEOUT_MS 500
#define RETRY_TIMEOUT_S 1 /* libmemcached's own; our backoff decides (fresh clients) */

/* The client pool: callers beyond POOL_MAX wait up to POOL_WAIT_MS. */
#define POOL_MAX 8
#define POOL_WAIT_MS POLL_TIMEOUT_MS

/* The write queue's bounds are cache/wqueue.h's; sweep and close wait at
 * most this for it. */
#define FLUSH_MAX_MS 2000

/* Deletes owed to memcached (see struct mc_store) before "all" is renewed. */
#define LOST_MAX 256

#define THIRTY_DAYS_S 2592000 /* larger exptimes are absolute unix times */

/*
 * Key hashing.  These constants name every copy in a shared cache: changing
 * them orphans what a fleet has stored (a new version must change "hf:").
 */
#define KEY_K0 0x686f6c6466617374ULL  /* "holdfast" */
#define KEY_K1A 0x6d632d6b65792d61ULL /* "mc-key-a" */
#define KEY_K1B 0x6d632d6b65792d62ULL /* "mc-key-b" */
#define HEX128 32
#define MKEY_MAX 48 /* "hf:gen:s:" + 32 hex + NUL, with room */

/* No single allocation by libmemcached may exceed this: a server (or
 * anything listening on its port) announcing a larger value gets a failed
 * read, not a huge allocation. */
#define ALLOC_MAX (HF_RECORD_MEMCACHED_MAX + ((size_t)64 << 10))

enum gen_slot { GEN_ALL, GEN_SCOPE, GEN_VARY, GEN_SLOTS };
_Static_assert(GEN_SLOTS == HF_RECORD_TOKENS, "a record holds one token a generation");

struct lost {
    char name[MKEY_MAX]; /* a copy's name to delete, or a generation to renew */
    bool renew;
};

struct mc_store {
    struct hf_store base;
    char addr[URL_MAX]; /* "host:port,..." for logs */
    size_t max_bytes;   /* 0: unbounded */
    int64_t keep_ms;    /* 0: keep */

    /* Clients.  template is configuration only (never any I/O); clones
     * are made from it under pool.mu. */
    struct hf__pool pool;
    memcached_st *template;

    /* The queue, and the health state under its mutex q.mu.  The writer
     * waits on q.work for ops, stop, or its next probe; on close, ops
     * still queued at q.stop_by_ms are dropped. */
    struct hf__wqueue q;
    bool up; /* also read without q.mu */
    int failed_probes;
    int64_t next_probe_ms; /* monotonic */
    /* Deletes that could not reach memcached, owed to it: the writer pays
     * them as soon as it can, and the store is not up again until it has.
     * Past LOST_MAX, "all" is renewed instead (lost_all counts such). */
    struct lost lost[LOST_MAX];
    int nlost;
    unsigned lost_all;

    /* Counters (atomic). */
    uint64_t errors, dropped, failures;

    /* The writer's. */
    pthread_t writer;
    struct lost paying[LOST_MAX];
    memcached_st *wmc;
    uint64_t wmc_epoch;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static void hex64(uint64_t v, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[v & 15];
        v >>= 4;
    }
}

/* 32 hex digits naming data; out gets them and a NUL. */
static void hash_hex(const void *data, size_t len, char out[HEX128 + 1])
{
    hex64(hf__siphash13(KEY_K0, KEY_K1A, data, len), out);
    hex64(hf__siphash13(KEY_K0, KEY_K1B, data, len), out + 16);
    out[HEX128] = '\0';
}

/* A generation token: random, never 0 (0 is "none" in a record). */
static uint64_t new_token(void)
{
    uint64_t t = 0;
    if (getrandom(&t, sizeof t, GRND_NONBLOCK) != (ssize_t)sizeof t)
        t = hf_random64() ^ ((uint64_t)getpid() << 32);
    return t != 0 ? t : 1;
}

/* A token as stored: exactly 16 lowercase hex digits, not all zero.  0 for
 * anything else. */
static uint64_t parse_token(const char *v, size_t len)
{
    if (v == NULL || len != 16)
        return 0;
    uint64_t t = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = v[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        t = (t << 4) | (uint64_t)d;
    }
    return t;
}

static void count(uint64_t *c)
{
    __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* Count one more; true on the 1st, 2nd, 4th, 8th...: logs that are seen
 * but never a flood. */
static bool count_pow2(uint64_t *c)
{
    uint64_t n = __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
    return (n & (n - 1)) == 0;
}

static bool is_up(struct mc_store *s)
{
    return __atomic_load_n(&s->up, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------ */
/* Key names                                                          */
/* ------------------------------------------------------------------ */

/* Length of key's scope: up to and including its second space, if both
 * come before any '\n' ("GET route "); 0 when it has none. */
static size_t scope_len(const char *key)
{
    int spaces = 0;
    for (size_t i = 0; key[i] != '\0' && key[i] != '\n'; i++)
        if (key[i] == ' ' && ++spaces == 2)
            return i + 1;
    return 0;
}

/* Length of a variant key's path part (before its first '\n'); 0 when
 * key has no '\n' and so is no variant. */
static size_t vary_len(const char *key)
{
    const char *nl = strchr(key, '\n');
    return nl != NULL ? (size_t)(nl - key) : 0;
}

/* The memcached names a cache key's copy depends on. */
struct mkeys {
    char entry[MKEY_MAX];
    char gen[GEN_SLOTS][MKEY_MAX];
    bool has[GEN_SLOTS];
};

static void gen_name(enum gen_slot slot, const char *part, size_t len, char out[MKEY_MAX])
{
    char hex[HEX128 + 1];
    if (slot == GEN_ALL) {
        snprintf(out, MKEY_MAX, "hf:gen:all");
        return;
    }
    hash_hex(part, len, hex);
    snprintf(out, MKEY_MAX, "hf:gen:%c:%s", slot == GEN_SCOPE ? 's' : 'v', hex);
}

static void entry_names(const char *key, struct mkeys *k)
{
    char hex[HEX128 + 1];
    hash_hex(key, strlen(key), hex);
    snprintf(k->entry, sizeof k->entry, "hf:%s", hex);
    size_t sl = scope_len(key), vl = vary_len(key);
    k->has[GEN_ALL] = true;
    k->has[GEN_SCOPE] = sl > 0;
    k->has[GEN_VARY] = vl > 0;
    gen_name(GEN_ALL, NULL, 0, k->gen[GEN_ALL]);
    if (sl > 0)
        gen_name(GEN_SCOPE, key, sl, k->gen[GEN_SCOPE]);
    if (vl > 0)
        gen_name(GEN_VARY, key, vl, k->gen[GEN_VARY]);
}

static void kv_name(const char *key, char out[MKEY_MAX])
{
    char hex[HEX128 + 1];
    hash_hex(key, strlen(key), hex);
    snprintf(out, MKEY_MAX, "hf:kv:%s", hex);
}

/* ------------------------------------------------------------------ */
/* Expiry                                                             */
/* ------------------------------------------------------------------ */

/*
 * memcached's exptime for e, in *out; false when e is past its window
 * already (it must not be stored).  Measured from stored_at because no
 * store reads a clock; past 30 days the protocol wants an absolute time,
 * which is the deadline itself (entry times are wall-clock times).
 */
static bool exptime_for(const struct hf_entry *e, int64_t keep_ms, time_t *out)
{
    int64_t until = hf__record_until_ms(e, keep_ms);
    *out = 0;
    if (until == INT64_MAX)
        return true;
    int64_t ttl_ms;
    if (__builtin_sub_overflow(until, e->stored_at_ms, &ttl_ms))
        ttl_ms = until > e->stored_at_ms ? INT64_MAX : INT64_MIN;
    if (ttl_ms <= 0)
        return false;
    /* Rounded up, plus one second: memcached's clock ticks once a second, so
     * "1" may end a few ms after the set. */
    int64_t ttl_s = ttl_ms / 1000 + (ttl_ms % 1000 != 0) + 1;
    if (ttl_s <= THIRTY_DAYS_S) {
        *out = (time_t)ttl_s;
        return true;
    }
    int64_t abs_s = until / 1000 + 2;
    if (abs_s > INT32_MAX) /* the protocol's exptime is 32 bits: keep it */
        return true;
    *out = (time_t)abs_s;
    return true;
}

/* ------------------------------------------------------------------ */
/* libmemcached: allocation bound, clients, errors                    */
/* ------------------------------------------------------------------ */

static void *mc_malloc(const memcached_st *mc, const size_t size, void *ctx)
{
    (void)mc;
    (void)ctx;
    return size > ALLOC_MAX ? NULL : malloc(size);
}

static void mc_free(const memcached_st *mc, void *mem, void *ctx)
{
    (void)mc;
    (void)ctx;
    free(mem);
}

static void *mc_realloc(const memcached_st *mc, void *mem, const size_t size, void *ctx)
{
    (void)mc;
    (void)ctx;
    return size > ALLOC_MAX ? NULL : realloc(mem, size);
}

static void *mc_calloc(const memcached_st *mc, size_t n, const size_t size, void *ctx)
{
    (void)mc;
    (void)ctx;
    return size != 0 && n > ALLOC_MAX / size ? NULL : calloc(n, size);
}

/* Failures that say the server is unreachable, hung or not memcached. */
static bool transport_failure(memcached_return_t rc)
{
    switch (rc) {
    case MEMCACHED_FAILURE:
    case MEMCACHED_HOST_LOOKUP_FAILURE:
    case MEMCACHED_CONNECTION_FAILURE:
    case MEMCACHED_CONNECTION_BIND_FAILURE:
    case MEMCACHED_WRITE_FAILURE:
    case MEMCACHED_READ_FAILURE:
    case MEMCACHED_UNKNOWN_READ_FAILURE:
    case MEMCACHED_PROTOCOL_ERROR:
    case MEMCACHED_ERROR: /* also CONNECTION_SOCKET_CREATE_FAILURE */
    case MEMCACHED_PARTIAL_READ:
    case MEMCACHED_SOME_ERRORS:
    case MEMCACHED_NO_SERVERS:
    case MEMCACHED_ERRNO:
    case MEMCACHED_FAIL_UNIX_SOCKET:
    case MEMCACHED_TIMEOUT:
    case MEMCACHED_SERVER_MARKED_DEAD:
    case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
    case MEMCACHED_IN_PROGRESS:
        return true;
    default:
        return false;
    }
}

/* A connection that broke (closed by the server or a firewall while it
 * sat idle, say), not a server that is slow: worth one more try on a new
 * connection. */
static bool broken_connection(memcached_return_t rc)
{
    return transport_failure(rc) && rc != MEMCACHED_TIMEOUT && rc != MEMCACHED_HOST_LOOKUP_FAILURE;
}

#define DETAIL_MAX 256

/* What went wrong, for a log: libmemcached's last message (it names the
 * server) without its "(0x...) " prefix and " -> file:line" suffix. */
static const char *mc_detail(memcached_st *mc, memcached_return_t rc, char buf[DETAIL_MAX])
{
    const char *m = mc != NULL ? memcached_last_error_message(mc) : NULL;
    if (m == NULL || m[0] == '\0')
        return memcached_strerror(mc, rc);
    if (m[0] == '(' && strchr(m, ')') != NULL)
        m = strchr(m, ')') + 1;
    while (*m == ' ')
        m++;
    const char *end = strstr(m, " -> ");
    size_t n = end != NULL ? (size_t)(end - m) : strlen(m);
    snprintf(buf, DETAIL_MAX, "%.*s", (int)(n < DETAIL_MAX ? n : DETAIL_MAX - 1), m);
    return buf;
}

static memcached_st *new_client(struct mc_store *s)
{
    /* Cloning reads the template; one at a time, under pool.mu. */
    pthread_mutex_lock(&s->pool.mu);
    memcached_st *mc = memcached_clone(NULL, s->template);
    pthread_mutex_unlock(&s->pool.mu);
    return mc;
}

static void free_client(void *mc)
{
    memcached_free(mc);
}

/*
 * A pooled client for a caller's operation (fresh: a new one, not an idle
 * one; *reused says which it got).  HF_OK, HF_ENOMEM or HF_STORE (every
 * client busy for POOL_WAIT_MS).
 */
static hf_err pool_take(struct mc_store *s, bool fresh, memcached_st **out, uint64_t *epoch,
                        bool *reused)
{
    int64_t deadline = hf__wqueue_deadline(POOL_WAIT_MS);
    memcached_st *spare = NULL; /* an idle one making room for a fresh one */
    hf_err err = HF_OK;
    *out = NULL;
    *reused = false;
    struct hf__pool *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nidle > 0 && !fresh) {
            *out = p->idle[--p->nidle];
            *reused = true;
            break;
        }
        if (p->nidle > 0 && p->nlive == p->max && spare == NULL) {
            spare = p->idle[--p->nidle];
            p->nlive--;
        }
        if (p->nlive < p->max) {
            *out = memcached_clone(NULL, s->template);
            if (*out == NULL)
                err = HF_ENOMEM;
            else
                p->nlive++;
            break;
        }
        if (hf__wqueue_wait_until(&p->free, &p->mu, deadline)) {
            err = HF_STORE;
            break;
        }
    }
    *epoch = p->epoch;
    pthread_mutex_unlock(&p->mu);
    memcached_free(spare);
    return err;
}

/* Give a client back; one that failed (its connection may hold half a
 * reply) or belongs to an older epoch is freed instead. */
static void pool_give(struct mc_store *s, memcached_st *mc, uint64_t epoch, bool healthy)
{
    memcached_free(hf__pool_give(&s->pool, mc, epoch, healthy));
}

static void mark_down(struct mc_store *s, const char *detail)
{
    pthread_mutex_lock(&s->q.mu);
    bool was_up = s->up;
    if (was_up) {
        __atomic_store_n(&s->up, false, __ATOMIC_RELEASE);
        s->failed_probes = 1;
        s->next_probe_ms = hf__pool_next_probe_ms(1);
        pthread_cond_signal(&s->q.work); /* the writer now waits for its probe */
    }
    pthread_mutex_unlock(&s->q.mu);
    if (!was_up)
        return;
    HF_LOG(HF_LOG_ERROR, "store_down", HF_LS("tier", TIER), HF_LS("address", s->addr),
           HF_LS("detail", detail));
    hf__pool_flush(&s->pool, free_client); /* clients in use are freed when given back */
}

/* Owe memcached a delete of name (or a renewal).  Called with q.mu held. */
static void owe_locked(struct mc_store *s, const char *name, bool renew)
{
    for (int i = 0; i < s->nlost; i++)
        if (s->lost[i].renew == renew && strcmp(s->lost[i].name, name) == 0)
            return;
    if (s->nlost < LOST_MAX) {
        snprintf(s->lost[s->nlost].name, MKEY_MAX, "%s", name);
        s->lost[s->nlost++].renew = renew;
    } else {
        s->lost_all++;
    }
    pthread_cond_signal(&s->q.work); /* the writer pays when it can */
}

static void owe(struct mc_store *s, const char *name, bool renew)
{
    pthread_mutex_lock(&s->q.mu);
    owe_locked(s, name, renew);
    pthread_mutex_unlock(&s->q.mu);
}

static void owe_entry_delete(struct mc_store *s, const char *key)
{
    struct mkeys k;
    entry_names(key, &k);
    owe(s, k.entry, false);
}

/*
 * Sort out a failed call: a transport failure marks the store down; other
 * failures (the server refused one command) are logged, at most at powers
 * of two.  Counts an error and returns HF_STORE.
 */
static hf_err failed(struct mc_store *s, memcached_st *mc, memcached_return_t rc, const char *event)
{
    char buf[DETAIL_MAX];
    count(&s->errors);
    if (transport_failure(rc))
        mark_down(s, mc_detail(mc, rc, buf));
    else if (count_pow2(&s->failures))
        HF_LOG(HF_LOG_ERROR, event, HF_LS("tier", TIER), HF_LS("address", s->addr),
               HF_LS("detail", mc_detail(mc, rc, buf)));
    return HF_STORE;
}

static void log_corrupt(struct mc_store *s, const char *name, const char *why)
{
    HF_LOG(HF_LOG_ERROR, "store_corrupt", HF_LS("tier", TIER), HF_LS("address", s->addr),
           HF_LS("name", name), HF_LS("detail", why));
}

/* ------------------------------------------------------------------ */
/* Reading several names in one round trip                            */
/* ------------------------------------------------------------------ */

/*
 * The replies to one multi-get: the value of the first name (when it is
 * a value name) stays in one of the two result structs; the others are
 * generation tokens, read into tok.
 */
struct fetched {
    memcached_result_st res[2];
    int value; /* index into res of the value's result, or -1 */
    uint64_t tok[GEN_SLOTS];
    bool seen[GEN_SLOTS]; /* the name exists (a valid token or not) */
};

static void fetched_init(struct fetched *f, memcached_st *mc)
{
    memset(f, 0, sizeof *f);
    memcached_result_create(mc, &f->res[0]);
    memcached_result_create(mc, &f->res[1]);
    f->value = -1;
}

static void fetched_fini(struct fetched *f)
{
    memcached_result_free(&f->res[0]);
    memcached_result_free(&f->res[1]);
}

/*
 * Read value_name (may be NULL) and the generation names k has (k may be
 * NULL) in one multi-get.  Returns MEMCACHED_SUCCESS when every server
 * answered, whatever was found; otherwise the failure.
 */
static memcached_return_t fetch(memcached_st *mc, const char *value_name, const struct mkeys *k,
                                struct fetched *f)
{
    const char *names[1 + GEN_SLOTS];
    size_t lens[1 + GEN_SLOTS];
    int slot[1 + GEN_SLOTS];
    size_t n = 0;
    if (value_name != NULL) {
        names[n] = value_name;
        slot[n++] = -1;
    }
    for (int i = 0; k != NULL && i < GEN_SLOTS; i++)
        if (k->has[i]) {
            names[n] = k->gen[i];
            slot[n++] = i;
        }
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(names[i]);
    memcached_return_t rc = memcached_mget(mc, names, lens, n);
    if (rc != MEMCACHED_SUCCESS)
        return rc;
    int spare = 0;
    for (;;) {
        memcached_result_st *r = memcached_fetch_result(mc, &f->res[spare], &rc);
        if (r == NULL && rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND)
            return rc;
        if (r == NULL) /* a failed read can end as "not found": the query's error says */
            return memcached_last_error(mc);
        const char *rk = memcached_result_key_value(r);
        size_t rl = memcached_result_key_length(r);
        for (size_t i = 0; i < n; i++) {
            if (rl != lens[i] || memcmp(rk, names[i], rl) != 0)
                continue;
            if (slot[i] < 0 && f->value < 0) {
                f->value = spare; /* keep it: fetch into the other one from now on */
                spare = 1 - spare;
            } else if (slot[i] >= 0) {
                f->seen[slot[i]] = true;
                f->tok[slot[i]] =
                    parse_token(memcached_result_value(r), memcached_result_length(r));
            }
            break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* The queue                                                          */
/* ------------------------------------------------------------------ */

/* Queue op (owned from here on).  wait: a full queue may be waited for. */
static hf_err enqueue(struct mc_store *s, struct hf__wop *op, bool wait)
{
    pthread_mutex_lock(&s->q.mu);
    bool open = s->up && !s->q.stop; /* closed: failed at once, not dropped */
    bool queued = open && hf__wqueue_offer(&s->q, op, wait, NULL);
    pthread_mutex_unlock(&s->q.mu);
    if (queued)
        return HF_OK;
    if (op->kind == HF_WOP_DEL)
        owe_entry_delete(s, op->key);
    hf__wop_free(op);
    count(&s->errors);
    if (open && count_pow2(&s->dropped))
        HF_LOG(HF_LOG_WARN, "store_queue_full", HF_LS("tier", TIER), HF_LS("address", s->addr),
               HF_LI("dropped", __atomic_load_n(&s->dropped, __ATOMIC_RELAXED)));
    return HF_STORE;
}

/* Take the queued puts and deletes of key (prefix: of every key starting
 * with it) out of the queue and wait until the one being written, if it
 * matches, is done; they are the caller's to free.  Called with q.mu held. */
static struct hf__wop *cancel_locked(struct mc_store *s, const char *key, bool prefix)
{
    uint64_t busy = 0;
    struct hf__wop *gone = hf__wqueue_cancel(&s->q, key, prefix, &busy);
    while (busy != 0 && s->q.head != NULL && s->q.head->seq == busy)
        pthread_cond_wait(&s->q.done, &s->q.mu);
    return gone;
}

/* ------------------------------------------------------------------ */
/* The writer thread                                                  */
/* ------------------------------------------------------------------ */

static void writer_drop_client(struct mc_store *s)
{
    memcached_free(s->wmc);
    s->wmc = NULL;
}

/* The writer's client, fresh after the store was down; NULL if none.
 * *reused: it was connected before this call. */
static memcached_st *writer_client(struct mc_store *s, bool *reused)
{
    uint64_t epoch = __atomic_load_n(&s->pool.epoch, __ATOMIC_ACQUIRE);
    if (s->wmc != NULL && s->wmc_epoch != epoch)
        writer_drop_client(s);
    *reused = s->wmc != NULL;
    if (s->wmc == NULL) {
        s->wmc = new_client(s);
        s->wmc_epoch = epoch;
    }
    return s->wmc;
}

/* Delete name; absent is as good as deleted. */
static memcached_return_t delete_name(memcached_st *mc, const char *name)
{
    memcached_return_t rc = memcached_delete(mc, name, strlen(name), 0);
    return rc == MEMCACHED_NOTFOUND ? MEMCACHED_SUCCESS : rc;
}

/*
 * The current tokens of k's generations, creating missing ones (add: if
 * another instance adds first, read again) and replacing invalid ones.
 */
static memcached_return_t current_tokens(memcached_st *mc, const struct mkeys *k,
                                         uint64_t tok[GEN_SLOTS])
{
    memcached_return_t rc = MEMCACHED_SUCCESS;
    for (int attempt = 0; attempt < 3; attempt++) {
        struct fetched f;
        fetched_init(&f, mc);
        rc = fetch(mc, NULL, k, &f);
        fetched_fini(&f);
        if (rc != MEMCACHED_SUCCESS)
            return rc;
        bool raced = false;
        for (int i = 0; i < GEN_SLOTS; i++) {
            tok[i] = k->has[i] ? f.tok[i] : 0;
            if (!k->has[i] || tok[i] != 0)
                continue;
            char text[16];
            tok[i] = new_token();
            hex64(tok[i], text);
            size_t nl = strlen(k->gen[i]);
            rc = f.seen[i] ? memcached_set(mc, k->gen[i], nl, text, 16, 0, 0)
                           : memcached_add(mc, k->gen[i], nl, text, 16, 0, 0);
            if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
                raced = true;
            else if (!memcached_success(rc))
                return rc;
        }
        if (!raced)
            return MEMCACHED_SUCCESS;
    }
    return rc == MEMCACHED_SUCCESS ? MEMCACHED_NOTSTORED : rc;
}

/* A write the server refused for its size leaves no older copy behind;
 * it is logged, and done with. */
static memcached_return_t too_large(struct mc_store *s, memcached_st *mc, const char *name,
                                    size_t len)
{
    memcached_return_t rc = delete_name(mc, name);
    count(&s->errors);
    if (count_pow2(&s->failures))
        HF_LOG(HF_LOG_WARN, "store_write_failed", HF_LS("tier", TIER), HF_LS("address", s->addr),
               HF_LI("bytes", len),
               HF_LS("detail", "larger than the server's item size limit (memcached -I)"));
    return rc;
}

/* Write e's record under its generations' current tokens.  A copy past
 * its window already is not written: only the older one is deleted. */
static memcached_return_t write_put(struct mc_store *s, memcached_st *mc, const struct hf_entry *e)
{
    struct mkeys k;
    entry_names(e->key, &k);
    time_t exptime;
    if (!exptime_for(e, s->keep_ms, &exptime))
        return delete_name(mc, k.entry);
    uint64_t tok[GEN_SLOTS];
    memcached_return_t rc = current_tokens(mc, &k, tok);
    if (rc != MEMCACHED_SUCCESS)
        return rc;
    size_t len = 0;
    unsigned char *rec = hf__record_encode(HF_RECORD_MEMCACHED, e, tok, &len);
    if (rec == NULL)
        return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    rc = memcached_set(mc, k.entry, strlen(k.entry), (const char *)rec, len, exptime, 0);
    free(rec);
    return rc == MEMCACHED_E2BIG ? too_large(s, mc, k.entry, len) : rc;
}

static memcached_return_t write_kv(struct mc_store *s, memcached_st *mc, const char *key,
                                   const char *value)
{
    char name[MKEY_MAX];
    kv_name(key, name);
    size_t len = 0;
    unsigned char *rec = hf__record_kv_encode(key, value, &len);
    if (rec == NULL)
        return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    memcached_return_t rc = memcached_set(mc, name, strlen(name), (const char *)rec, len, 0, 0);
    free(rec);
    return rc == MEMCACHED_E2BIG ? too_large(s, mc, name, len) : rc;
}

static memcached_return_t write_op(struct mc_store *s, memcached_st *mc, const struct hf__wop *op)
{
    struct mkeys k;
    switch (op->kind) {
    case HF_WOP_PUT:
        return write_put(s, mc, op->e);
    case HF_WOP_KV_PUT:
        return write_kv(s, mc, op->key, op->value);
    case HF_WOP_DEL:
        entry_names(op->key, &k);
        return delete_name(mc, k.entry);
    }
    return MEMCACHED_INVALID_ARGUMENTS;
}

/*
 * Apply one queued op: dropped while the store is down; once more on a new
 * connection if the writer's turns out broken.  A delete that fails (a
 * put past its window is one) is owed.
 */
static void apply(struct mc_store *s, struct hf__wop *op)
{
    time_t unused;
    bool deletes = op->kind == HF_WOP_DEL ||
                   (op->kind == HF_WOP_PUT && !exptime_for(op->e, s->keep_ms, &unused));
    for (int attempt = 0;; attempt++) {
        bool reused = false;
        memcached_st *mc = is_up(s) ? writer_client(s, &reused) : NULL;
        memcached_return_t rc =
            mc != NULL ? write_op(s, mc, op) : MEMCACHED_SERVER_TEMPORARILY_DISABLED;
        if (memcached_success(rc))
            return;
        if (mc != NULL && attempt == 0 && reused && broken_connection(rc)) {
            writer_drop_client(s);
            continue;
        }
        if (deletes)
            owe_entry_delete(s, op->key);
        if (mc == NULL) {
            count(&s->errors); /* down, or out of memory */
            return;
        }
        failed(s, mc, rc, "store_write_failed");
        writer_drop_client(s); /* its connection may hold half a reply */
        return;
    }
}

static memcached_return_t renew_token(memcached_st *mc, const char *name)
{
    char text[16];
    hex64(new_token(), text);
    return memcached_set(mc, name, strlen(name), text, 16, 0, 0);
}

/*
 * Pay the deletes owed to memcached on mc.  With go_up, the store is
 * marked up once nothing is owed (under the same lock, so a delete owed
 * meanwhile is never forgotten).  False when a payment failed (what is
 * left stays owed) or more keep coming.  Writer thread only.
 */
static bool pay(struct mc_store *s, memcached_st *mc, bool go_up, int *paid, bool *renewed_all)
{
    for (int round = 0; round < 4; round++) {
        pthread_mutex_lock(&s->q.mu);
        int n = s->nlost;
        unsigned all = s->lost_all;
        if (n == 0 && all == 0) {
            if (go_up) {
                s->failed_probes = 0;
                __atomic_store_n(&s->up, true, __ATOMIC_RELEASE);
            }
            pthread_mutex_unlock(&s->q.mu);
            return true;
        }
        memcpy(s->paying, s->lost, sizeof s->lost[0] * (size_t)n);
        s->nlost = 0;
        s->lost_all = 0;
        pthread_mutex_unlock(&s->q.mu);

        /* A new "all" hides every older copy: it pays the list too. */
        memcached_return_t rc = MEMCACHED_SUCCESS;
        int done = 0;
        if (all > 0) {
            rc = renew_token(mc, "hf:gen:all");
            *renewed_all = *renewed_all || memcached_success(rc);
            done = memcached_success(rc) ? n : 0;
        }
        for (; all == 0 && done < n; done++) {
            const struct lost *l = &s->paying[done];
            rc = l->renew ? renew_token(mc, l->name)
                          : memcached_delete(mc, l->name, strlen(l->name), 0);
            if (!memcached_success(rc) && (l->renew || rc != MEMCACHED_NOTFOUND))
                break;
        }
        *paid += done;
        if (done < n || (all > 0 && !memcached_success(rc))) {
            pthread_mutex_lock(&s->q.mu);
            for (int i = done; i < n; i++)
                owe_locked(s, s->paying[i].name, s->paying[i].renew);
            s->lost_all += all;
            pthread_mutex_unlock(&s->q.mu);
            return false;
        }
    }
    return false;
}

/*
 * Is every server back?  A fresh client asks each for its version, then
 * pays the deletes owed, so nothing they should have removed is served
 * again; only then is the store up.  Writer thread only.
 */
static void probe(struct mc_store *s)
{
    memcached_st *mc = new_client(s);
    memcached_return_t rc =
        mc != NULL ? memcached_version(mc) : MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    int paid = 0;
    bool renewed_all = false;
    if (memcached_success(rc) && pay(s, mc, true, &paid, &renewed_all)) {
        HF_LOG(HF_LOG_INFO, "store_up", HF_LS("tier", TIER), HF_LS("address", s->addr),
               HF_LI("deletes_replayed", paid), HF_LB("renewed_all", renewed_all));
        writer_drop_client(s);
        s->wmc_epoch = __atomic_load_n(&s->pool.epoch, __ATOMIC_ACQUIRE);
        s->wmc = mc; /* connected: the writer's from now on */
        return;
    }
    memcached_free(mc);
    pthread_mutex_lock(&s->q.mu);
    if (s->failed_probes < 64)
        s->failed_probes++;
    s->next_probe_ms = hf__pool_next_probe_ms(s->failed_probes);
    pthread_mutex_unlock(&s->q.mu);
}

static void *writer_main(void *arg)
{
    struct mc_store *s = arg;
    pthread_mutex_lock(&s->q.mu);
    for (;;) {
        int64_t now = hf_clock_mono_ms();
        if (s->q.stop && (s->q.head == NULL || now >= s->q.stop_by_ms))
            break;
        if (!s->up && !s->q.stop && now >= s->next_probe_ms) {
            pthread_mutex_unlock(&s->q.mu);
            probe(s);
            pthread_mutex_lock(&s->q.mu);
            continue;
        }
        if (s->up && (s->nlost > 0 || s->lost_all > 0)) {
            /* Owed while up (a delete refused, or owed just as the store
             * came back): paid now, or the store is down until it is. */
            pthread_mutex_unlock(&s->q.mu);
            int paid = 0;
            bool renewed_all = false;
            bool reused = false;
            memcached_st *mc = writer_client(s, &reused);
            if (mc == NULL || !pay(s, mc, false, &paid, &renewed_all)) {
                writer_drop_client(s);
                mark_down(s, "a delete could not be made");
            }
            pthread_mutex_lock(&s->q.mu);
            continue;
        }
        if (s->q.head == NULL) {
            if (s->up || s->q.stop)
                pthread_cond_wait(&s->q.work, &s->q.mu);
            else
                hf__wqueue_wait_until(&s->q.work, &s->q.mu, s->next_probe_ms);
            continue;
        }
        struct hf__wop *op = s->q.head;
        op->busy = true;
        pthread_mutex_unlock(&s->q.mu);
        apply(s, op);
        pthread_mutex_lock(&s->q.mu);
        struct hf__wop *written = hf__wqueue_shift(&s->q);
        assert(written == op);
        hf__wqueue_moved(&s->q);
        pthread_mutex_unlock(&s->q.mu);
        hf__wop_free(written);
        pthread_mutex_lock(&s->q.mu);
    }
    /* Closing, and out of time: what is left is dropped. */
    uint64_t n = 0;
    struct hf__wop *left = hf__wqueue_take_all(&s->q, &n);
    pthread_mutex_unlock(&s->q.mu);
    hf__wop_free_list(left);
    if (n > 0)
        HF_LOG(HF_LOG_WARN, "store_close_dropped", HF_LS("tier", TIER), HF_LS("address", s->addr),
               HF_LI("dropped", n));
    writer_drop_client(s);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */
/* ------------------------------------------------------------------ */

/*
 * fetch() on a pooled client, and once more on a new connection if a
 * reused one turns out broken.  On HF_OK, *rc is fetch's answer, and *mc
 * goes back with pool_give(*mc, *epoch) once f is read and finished.
 */
static hf_err pooled_fetch(struct mc_store *s, const char *value_name, const struct mkeys *k,
                           struct fetched *f, memcached_st **mc, uint64_t *epoch,
                           memcached_return_t *rc)
{
    for (int attempt = 0;; attempt++) {
        bool reused = false;
        hf_err err = pool_take(s, attempt > 0, mc, epoch, &reused);
        if (err != HF_OK) {
            count(&s->errors);
            return err;
        }
        fetched_init(f, *mc);
        *rc = fetch(*mc, value_name, k, f);
        if (attempt > 0 || !reused || !broken_connection(*rc))
            return HF_OK;
        fetched_fini(f);
        pool_give(s, *mc, *epoch, false);
    }
}

/* Run fn on a pooled client, once more on a new connection if a reused one
 * turns out broken.  HF_OK, or HF_STORE (counted, logged) and the like. */
static hf_err pooled_run(struct mc_store *s, memcached_return_t (*fn)(memcached_st *, void *),
                         void *arg, const char *event)
{
    for (int attempt = 0;; attempt++) {
        memcached_st *mc = NULL;
        uint64_t epoch = 0;
        bool reused = false;
        hf_err err = pool_take(s, attempt > 0, &mc, &epoch, &reused);
        if (err != HF_OK) {
            count(&s->errors);
            return err;
        }
        memcached_return_t rc = fn(mc, arg);
        bool ok = memcached_success(rc);
        if (!ok && attempt == 0 && reused && broken_connection(rc)) {
            pool_give(s, mc, epoch, false);
            continue;
        }
        if (!ok)
            err = failed(s, mc, rc, event);
        pool_give(s, mc, epoch, ok);
        return err;
    }
}

/* Queue a delete of key's copy, without waiting (if it cannot be queued,
 * it is owed: see struct mc_store). */
static void drop_copy(struct mc_store *s, const char *key)
{
    struct hf__wop *op = hf__wop_new(sizeof *op, HF_WOP_DEL, key, NULL);
    if (op != NULL)
        (void)enqueue(s, op, false);
    else
        owe_entry_delete(s, key);
}

static hf_err mc_get(struct hf_store *base, const char *key, int64_t now_ms,
                     enum hf_store_mode mode, struct hf_entry **out)
{
    struct mc_store *s = (struct mc_store *)base;

    pthread_mutex_lock(&s->q.mu);
    const struct hf__wop *op = hf__wqueue_pending(&s->q, key, false);
    hf_err err = HF_NOT_FOUND;
    if (op != NULL && op->kind == HF_WOP_PUT) {
        const struct hf_entry *e = op->e;
        if (hf__record_servable(e->stored_at_ms, e->fresh_until_ms, e->stale_until_ms, s->keep_ms,
                                now_ms, mode)) {
            *out = hf_entry_ref(op->e);
            err = HF_OK;
        }
    }
    pthread_mutex_unlock(&s->q.mu);
    if (op != NULL)
        return err;

    if (!is_up(s)) {
        count(&s->errors);
        return HF_STORE;
    }
    struct mkeys k;
    entry_names(key, &k);
    struct fetched f;
    memcached_st *mc = NULL;
    uint64_t epoch = 0;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    err = pooled_fetch(s, k.entry, &k, &f, &mc, &epoch, &rc);
    if (err != HF_OK)
        return err;
    bool healthy = rc == MEMCACHED_SUCCESS;
    const char *why = NULL;
    err = HF_NOT_FOUND;
    enum hf__record_verdict v = HF_RECORD_SOUND;
    struct hf__record p;
    if (rc == MEMCACHED_MEMORY_ALLOCATION_FAILURE) {
        v = HF_RECORD_CORRUPT; /* a value larger than any record: not ours */
        why = "a value larger than any record";
    } else if (rc != MEMCACHED_SUCCESS) {
        err = failed(s, mc, rc, "store_read_failed");
    } else if (f.value >= 0) {
        const memcached_result_st *r = &f.res[f.value];
        v = hf__record_parse(HF_RECORD_MEMCACHED, memcached_result_value(r),
                             memcached_result_length(r), key, &p, &why);
        bool current = v == HF_RECORD_SOUND;
        for (int i = 0; current && i < GEN_SLOTS; i++)
            current = !k.has[i] || (f.tok[i] != 0 && f.tok[i] == p.tokens[i]);
        if (current && hf__record_servable(p.stored_at_ms, p.fresh_until_ms, p.stale_until_ms,
                                           s->keep_ms, now_ms, mode)) {
            err = hf__record_entry(&p, out);
            if (err == HF_EINVAL || err == HF_BODY_TOO_LARGE) {
                v = HF_RECORD_CORRUPT;
                why = "a field the entry refuses";
                err = HF_NOT_FOUND;
            }
        }
    }
    fetched_fini(&f);
    pool_give(s, mc, epoch, healthy);
    if (v != HF_RECORD_SOUND) {
        log_corrupt(s, k.entry, why);
        if (v != HF_RECORD_OTHER_KEY)
            drop_copy(s, key); /* a collision's record is another key's: kept */
        return HF_NOT_FOUND;
    }
    return err;
}

static hf_err mc_put(struct hf_store *base, struct hf_entry *e)
{
    struct mc_store *s = (struct mc_store *)base;
    if (s->max_bytes > 0 && hf_entry_size(e) > s->max_bytes) {
        /* Refused, and no older copy stays behind (as in the other stores):
         * a queued delete, after any older put of the key. */
        drop_copy(s, e->key);
        return HF_BODY_TOO_LARGE;
    }
    struct hf__wop *op = hf__wop_new_put(sizeof *op, e);
    if (op == NULL)
        return HF_ENOMEM;
    return enqueue(s, op, true);
}

static memcached_return_t delete_fn(memcached_st *mc, void *name)
{
    return delete_name(mc, name);
}

static memcached_return_t renew_fn(memcached_st *mc, void *name)
{
    return renew_token(mc, name);
}

/* Delete name, or give it a new token (renew).  One that fails is owed to
 * memcached (see struct mc_store), and HF_STORE. */
static hf_err delete_or_renew(struct mc_store *s, const char *name, bool renew)
{
    hf_err err = HF_STORE;
    if (is_up(s))
        err = pooled_run(s, renew ? renew_fn : delete_fn, (void *)name, "store_write_failed");
    else
        count(&s->errors);
    if (err != HF_OK)
        owe(s, name, renew);
    return err;
}

static hf_err mc_del(struct hf_store *base, const char *key)
{
    struct mc_store *s = (struct mc_store *)base;
    pthread_mutex_lock(&s->q.mu);
    struct hf__wop *grave = cancel_locked(s, key, false);
    pthread_mutex_unlock(&s->q.mu);
    hf__wop_free_list(grave);
    struct mkeys k;
    entry_names(key, &k);
    return delete_or_renew(s, k.entry, false);
}

/*
 * See the file comment: a new token for the narrowest generation that
 * covers every key starting with prefix.  Puts of such keys still queued
 * are dropped first (and the one being written waited for), or they would
 * land under the new token.
 */
static hf_err mc_del_prefix(struct hf_store *base, const char *prefix, uint64_t *removed)
{
    struct mc_store *s = (struct mc_store *)base;
    *removed = 0;
    size_t plen = strlen(prefix);
    pthread_mutex_lock(&s->q.mu);
    struct hf__wop *grave = cancel_locked(s, prefix, true);
    pthread_mutex_unlock(&s->q.mu);
    hf__wop_free_list(grave);

    char name[MKEY_MAX];
    size_t vl = vary_len(prefix), sl = scope_len(prefix);
    if (vl > 0)
        gen_name(GEN_VARY, prefix, vl, name);
    else if (sl > 0)
        gen_name(GEN_SCOPE, prefix, sl, name);
    else
        gen_name(GEN_ALL, NULL, 0, name);
    bool exact = vl > 0 ? plen == vl + 1 : sl > 0 && plen == sl;
    const char *what = vl > 0 ? "variants" : "route";
    if (vl == 0 && sl == 0)
        what = "all";
    if (!exact)
        HF_LOG(HF_LOG_INFO, "store_purge_widened", HF_LS("tier", TIER), HF_LS("dropped", what),
               HF_LS("detail", "memcached cannot list keys: a wider set of copies is dropped"));
    return delete_or_renew(s, name, true);
}

/* Nothing expires here (memcached does it); like a SQLite sweep, it waits
 * (at most FLUSH_MAX_MS) for the writes queued before it. */
static hf_err mc_sweep(struct hf_store *base, int64_t now_ms, uint64_t *removed)
{
    struct mc_store *s = (struct mc_store *)base;
    (void)now_ms;
    *removed = 0;
    pthread_mutex_lock(&s->q.mu);
    (void)hf__wqueue_flush(&s->q, FLUSH_MAX_MS, NULL);
    pthread_mutex_unlock(&s->q.mu);
    return HF_OK;
}

static memcached_return_t stats_fn(memcached_st *mc, void *arg)
{
    struct hf_store_stats *out = arg;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    memcached_stat_st *st = memcached_stat(mc, NULL, &rc);
    if (st != NULL && memcached_success(rc))
        for (uint32_t i = 0; i < memcached_server_count(mc); i++) {
            out->entries += st[i].curr_items;
            out->bytes += st[i].bytes;
            out->evictions += st[i].evictions;
        }
    if (st != NULL)
        memcached_stat_free(mc, st);
    return st == NULL && memcached_success(rc) ? MEMCACHED_MEMORY_ALLOCATION_FAILURE : rc;
}

/* The servers' own totals (every item on them: other clients' too, and our
 * generations and kv values); expired stays 0: memcached counts none. */
static void mc_stats(struct hf_store *base, struct hf_store_stats *out)
{
    struct mc_store *s = (struct mc_store *)base;
    struct hf_store_stats st = {0};
    if (is_up(s) && pooled_run(s, stats_fn, &st, "store_read_failed") == HF_OK)
        *out = st;
}

static hf_err mc_kv_get(struct hf_store *base, const char *key, char *buf, size_t len)
{
    struct mc_store *s = (struct mc_store *)base;
    hf_err err = HF_NOT_FOUND;
    if (hf__wqueue_kv_read(&s->q, key, buf, len, &err))
        return err;

    if (!is_up(s)) {
        count(&s->errors);
        return HF_STORE;
    }
    char name[MKEY_MAX];
    kv_name(key, name);
    struct fetched f;
    memcached_st *mc = NULL;
    uint64_t epoch = 0;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    err = pooled_fetch(s, name, NULL, &f, &mc, &epoch, &rc);
    if (err != HF_OK)
        return err;
    const char *why = NULL;
    err = HF_NOT_FOUND;
    if (rc == MEMCACHED_MEMORY_ALLOCATION_FAILURE) {
        why = "a value larger than any record";
    } else if (rc != MEMCACHED_SUCCESS) {
        err = failed(s, mc, rc, "store_read_failed");
    } else if (f.value >= 0) {
        const memcached_result_st *r = &f.res[f.value];
        const char *v = NULL;
        size_t vl = 0;
        if (hf__record_kv_parse(memcached_result_value(r), memcached_result_length(r), key, &v, &vl,
                                &why) == HF_RECORD_SOUND)
            err = hf__record_kv_copy(v, vl, buf, len);
    }
    fetched_fini(&f);
    pool_give(s, mc, epoch, rc == MEMCACHED_SUCCESS);
    if (why != NULL)
        log_corrupt(s, name, why); /* absent; the next put replaces it */
    return err;
}

static hf_err mc_kv_put(struct hf_store *base, const char *key, const char *value)
{
    struct mc_store *s = (struct mc_store *)base;
    struct hf__wop *op = hf__wop_new(sizeof *op, HF_WOP_KV_PUT, key, value);
    if (op == NULL)
        return HF_ENOMEM;
    return enqueue(s, op, true);
}

static bool mc_up(struct hf_store *base)
{
    return is_up((struct mc_store *)base);
}

static uint64_t mc_errors(struct hf_store *base)
{
    return __atomic_load_n(&((struct mc_store *)base)->errors, __ATOMIC_RELAXED);
}

/* Free a store whose writer is not running (or has been joined). */
static void destroy(struct mc_store *s)
{
    hf__pool_fini(&s->pool, free_client);
    memcached_free(s->template);
    hf__wqueue_fini(&s->q);
    free(s);
}

static void mc_close(struct hf_store *base)
{
    struct mc_store *s = (struct mc_store *)base;
    hf__wqueue_stop(&s->q, FLUSH_MAX_MS);
    pthread_join(s->writer, NULL);
    destroy(s);
}

static const struct hf_store_ops mc_ops = {
    .name = "memcached",
    .get = mc_get,
    .put = mc_put,
    .promote = NULL, /* a shared tier is written by puts only */
    .del = mc_del,
    .del_prefix = mc_del_prefix,
    .sweep = mc_sweep,
    .stats = mc_stats,
    .kv_get = mc_kv_get,
    .kv_put = mc_kv_put,
    .close = mc_close,
    .up = mc_up,
    .errors = mc_errors,
};

/* ------------------------------------------------------------------ */
/* Opening                                                            */
/* ------------------------------------------------------------------ */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static bool ipv6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

/*
 * Parse one "HOST[:PORT]" or "[IPV6][:PORT]" (item, n bytes) into host
 * (NUL-terminated, brackets removed) and port.  NULL or a reason.
 */
static const char *parse_server(const char *item, size_t n, char host[HOST_MAX + 1], unsigned *port)
{
    const char *end = item + n, *p = item, *h = item;
    size_t hl = 0;
    if (n == 0)
        return "an empty server in the list";
    if (*p == '[') {
        const char *close = memchr(p, ']', n);
        if (close == NULL)
            return "an IPv6 address without its closing ']'";
        h = p + 1;
        hl = (size_t)(close - h);
        for (size_t i = 0; i < hl; i++)
            if (!ipv6_char(h[i]))
                return "a bad character in an IPv6 address";
        p = close + 1;
        if (hl == 0)
            return "an empty IPv6 address";
    } else {
        while (p < end && *p != ':')
            p++;
        hl = (size_t)(p - h);
        if (hl == 0)
            return "a server without a host";
        for (size_t i = 0; i < hl; i++)
            if (!host_char(h[i]))
                return "a bad character in a host name (an IPv6 address goes in [ ])";
    }
    if (hl > HOST_MAX)
        return "a host name longer than 255 bytes";
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = DEFAULT_PORT;
    if (p == end)
        return NULL;
    if (*p != ':' || p + 1 == end)
        return *p == ':' ? "an empty port" : "junk after an IPv6 address";
    unsigned v = 0;
    for (p++; p < end; p++) {
        if (*p < '0' || *p > '9')
            return "a port that is not a number";
        v = v * 10 + (unsigned)(*p - '0');
        if (v > 65535)
            return "a port above 65535";
    }
    if (v == 0)
        return "port 0";
    *port = v;
    return NULL;
}

/* Add the URL's servers to mc and write their list into s->addr; NULL or
 * a reason. */
static const char *parse_url(const char *url, struct mc_store *s, memcached_st *mc)
{
    const char *list = url + strlen(SCHEME);
    size_t len = strlen(list), used = 0;
    if (len == 0)
        return "no server";
    if (len >= URL_MAX)
        return "longer than 2047 bytes";
    if (strpbrk(list, "/?#@") != NULL)
        return "memcached URLs take servers only: no user, path or options";
    int n = 0;
    for (const char *item = list;; n++) {
        const char *comma = strchr(item, ',');
        size_t il = comma != NULL ? (size_t)(comma - item) : strlen(item);
        char host[HOST_MAX + 1];
        unsigned port = 0;
        const char *why = parse_server(item, il, host, &port);
        if (why != NULL)
            return why;
        if (n == MAX_SERVERS)
            return "more than 16 servers";
        if (memcached_server_add(mc, host, (in_port_t)port) != MEMCACHED_SUCCESS)
            return "libmemcached refused a server";
        bool v6 = strchr(host, ':') != NULL;
        int w = snprintf(s->addr + used, sizeof s->addr - used, "%s%s%s%s:%u", n > 0 ? "," : "",
                         v6 ? "[" : "", host, v6 ? "]" : "", port);
        if (w < 0 || (size_t)w >= sizeof s->addr - used)
            return "too long";
        used += (size_t)w;
        if (comma == NULL)
            break;
        item = comma + 1;
    }
    return NULL;
}

static memcached_return_t configure(memcached_st *mc)
{
    const struct {
        memcached_behavior_t b;
        uint64_t v;
    } set[] = {
        {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS},
        {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, POLL_TIMEOUT_MS},
        {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, RETRY_TIMEOUT_S},
        {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 1},
        {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
        /* Every instance must place a key on the same server. */
        {MEMCACHED_BEHAVIOR_KETAMA, 1},
    };
    memcached_return_t rc =
        memcached_set_memory_allocators(mc, mc_malloc, mc_free, mc_realloc, mc_calloc, NULL);
    for (size_t i = 0; memcached_success(rc) && i < sizeof set / sizeof set[0]; i++)
        rc = memcached_behavior_set(mc, set[i].b, set[i].v);
    return rc;
}

hf_err hf__store_memcached_open(const char *url, const struct hf_store_options *opts,
                                struct hf_store **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (strncmp(url, SCHEME, strlen(SCHEME)) != 0) {
        hf__store_errf(errbuf, errlen, "bad memcached URL \"%.200s\": expected %sHOST[:PORT]", url,
                       SCHEME);
        return HF_CONFIG;
    }
    struct mc_store *s = calloc(1, sizeof *s);
    bool made = s != NULL && hf__wqueue_init(&s->q) == 0;
    if (made && hf__pool_init(&s->pool, POOL_MAX) != 0) {
        hf__wqueue_fini(&s->q);
        made = false;
    }
    if (!made) {
        free(s);
        hf__store_errf(errbuf, errlen, "cannot open cache store %.200s: out of memory", url);
        return HF_ENOMEM;
    }
    s->base.magic = HF_STORE_MAGIC;
    s->base.ops = &mc_ops;
    s->max_bytes = opts != NULL ? opts->max_bytes : 0;
    s->keep_ms = opts != NULL ? opts->keep_ms : 0;
    s->template = memcached_create(NULL);
    if (s->template == NULL || !memcached_success(configure(s->template))) {
        hf__store_errf(errbuf, errlen, "cannot open cache store %.200s: libmemcached setup failed",
                       url);
        destroy(s);
        return HF_ENOMEM;
    }
    const char *why = parse_url(url, s, s->template);
    if (why != NULL) {
        /* A user name or password would be echoed: never the URL then. */
        if (strchr(url, '@') != NULL)
            hf__store_errf(errbuf, errlen, "bad memcached URL: %s", why);
        else
            hf__store_errf(errbuf, errlen, "bad memcached URL \"%.200s\": %s", url, why);
        destroy(s);
        return HF_CONFIG;
    }

    /* One probe now, so a reachable store opens up and an unreachable one
     * says so at once; the writer keeps trying after that. */
    s->up = true;
    s->wmc = new_client(s);
    memcached_return_t rc =
        s->wmc != NULL ? memcached_version(s->wmc) : MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    if (!memcached_success(rc)) {
        char buf[DETAIL_MAX];
        const char *detail = mc_detail(s->wmc, rc, buf);
        s->up = false;
        s->failed_probes = 1;
        s->next_probe_ms = hf__pool_next_probe_ms(1);
        HF_LOG(HF_LOG_ERROR, "store_down", HF_LS("tier", TIER), HF_LS("address", s->addr),
               HF_LS("detail", detail));
        writer_drop_client(s);
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        hf__store_errf(errbuf, errlen, "cannot open cache store %s: cannot start writer thread",
                       s->addr);
        writer_drop_client(s);
        destroy(s);
        return HF_STORE;
    }
    *out = &s->base;
    return HF_OK;
}
