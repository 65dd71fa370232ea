/*
 * The fleet; see fleet.h and docs/internals/fleet.md.
 *
 * Threads.  The asking loops queue jobs under mu (bounded: QUEUE_MAX,
 * waits included) and never touch Redis.  The fleet thread owns the
 * command connection, the scripts' SHA1s, the pending waits and the table
 * of locks held: it runs one job at a time, and between jobs polls every
 * pending wait with one pipelined round trip each WAIT_POLL_MS.  A job
 * with an event is answered by event_active on its loop (from then on it
 * is the loop's: job_cb runs done unless cancelled, and frees it); a job
 * without one (refund, pause, unlock, purge) is freed by the fleet
 * thread.  The subscriber thread owns the subscription's connection.
 * Both threads block every signal: a write to a closed socket is an
 * EPIPE, never a SIGPIPE (open's first attempt blocks SIGPIPE itself).
 *
 * Down and up.  A failed command (I/O, timeout, protocol) or a reply
 * saying Redis cannot serve marks the fleet down under mu, so from then
 * on a job is answered DOWN by the thread that asks, at once; the jobs
 * queued and waiting are answered DOWN by the fleet thread, which then
 * reconnects with backoff (100 ms doubling to 5 s, full jitter).
 */
#include "fleet/fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <holdfast/retry.h>

#include "core/clock.h"
#include "fleet/redis_link.h"
#include "obs/log.h"

#define JOB_MAGIC 0x666c6a62u /* "fljb" */

/* The fleet decides a request's fate: it must answer fast or not at all. */
#define COMMAND_TIMEOUT_MS 300

#define QUEUE_MAX 4096                /* jobs queued or waiting, per fleet */
#define WAITS_MAX 1024                /* waits polled at once: one round trip of GETs */
#define WAIT_POLL_MS 15               /* how often a pending wait looks at its lock */
#define HELD_MAX 4096                 /* locks this instance remembers holding */
#define HELD_BUCKETS 256              /* the table of locks held */
#define MARKER_TTL_MS 2000            /* how long "done:..." tells the waiters */
#define INSTANCE_MAX 200              /* bytes in an instance id */
#define DETAIL_MAX 200                /* bytes in a log's detail */
#define TTL_MAX_MS ((int64_t)1 << 40) /* lock and claim TTLs: 34 years */

/* The subscriber: how long it sleeps in poll (so close never waits
 * longer), and when a silent subscription is asked whether it lives. */
#define SUB_POLL_MS 100
#define SUB_IDLE_PING_MS 5000
#define IDLE_PING_MS 2000 /* an idle fleet asks Redis this often, so "up" stays true */
#define SUB_PING_TIMEOUT_MS 2000

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

/*
 * Slack on the TTLs of the limit keys: an instance whose clock is behind
 * by up to QUOTA_SLACK_MS still finds its window's counter; a bucket's
 * key outlives the moment it is full again (absent means full) by
 * RATE_SLACK_MS; a pause's by PAUSE_SLACK_MS.
 */
#define QUOTA_SLACK_MS 60000
#define RATE_SLACK_MS 1000
#define PAUSE_SLACK_MS 1000

/*
 * Lua numbers are doubles, exact for integers up to 2^53.  Every value a
 * script computes stays below that when the units (burst * per_ms and
 * count, after dividing both by their gcd) and |now_ms| are at most
 * 2^51: see the scripts.  Anything larger is refused (HF_EINVAL).
 */
#define UNITS_MAX ((int64_t)1 << 51)

#define K_RATE "hf:f:rate:"
#define K_QUOTA "hf:f:quota:"
#define K_PAUSE "hf:f:pause:"
#define K_LOCK "hf:f:lock:"
#define K_CLAIM "hf:f:claim:"
#define CHANNEL "hf:f:purge"
#define HELD_PREFIX "held:"
#define MARK_STORED "done:stored"
#define MARK_FAILED "done:failed"

/* ------------------------------------------------------------------ */
/* The scripts                                                        */
/* ------------------------------------------------------------------ */

/*
 * Shared by the bucket scripts.  fdiv is floor(a / b) for 0 <= a <= 2^52,
 * 0 < b <= 2^51: the quotient in doubles is off by less than one, so one
 * correction step makes it exact, and no product below passes 2^53.
 *
 * The bucket is one string "count:per:level:last" (count and per reduced
 * by their gcd): level units held (0..cap), last the now_ms they were
 * brought up to.  Numbers are written with %d: Lua's tostring and
 * redis.call's own conversion keep only 14 digits.
 */
#define LUA_COMMON                                                                                 \
    "local function fdiv(a, b)\n"                                                                  \
    "  local q = math.floor(a / b)\n"                                                              \
    "  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end\n"                   \
    "  return q\n"                                                                                 \
    "end\n"                                                                                        \
    "local function cdiv(a, b) return fdiv(a + b - 1, b) end\n"                                    \
    "local function bucket(s)\n"                                                                   \
    "  if not s then return nil end\n"                                                             \
    "  local c, p, l, t = string.match(s, '^(%d+):(%d+):(%d+):(%-?%d+)$')\n"                       \
    "  if not c then return nil end\n"                                                             \
    "  return tonumber(c), tonumber(p), tonumber(l), tonumber(t)\n"                                \
    "end\n"

/*
 * take.  KEYS: pause, quota (now's window), rate.  ARGV: now, count, per,
 * cap, quota count, the counter's TTL, the bucket's TTL slack, burst.
 * Returns {0, quota_left} GO, {1, wait_ms, quota_left} RATE, {2, 0}
 * QUOTA, {3, until, reason} PAUSED.  Nothing is written unless GO.
 *
 * The bucket is limit/bucket.c's: a token is worth per units, count units
 * drip in per ms, cap = burst * per; an absent bucket is full.  A bucket
 * written under another count or per (the configuration changed) keeps
 * its whole tokens, at most burst, and the time since last drips in at
 * the new rate.  A clock behind last adds nothing and
 * leaves last alone, so no token is given twice.
 */
static const char script_take[] = LUA_COMMON
    "local now = tonumber(ARGV[1])\n"
    "local p = redis.call('GET', KEYS[1])\n"
    "if p then\n"
    "  local u, why = string.match(p, '^(%-?%d+):(%d+)$')\n"
    "  if u and tonumber(u) > now then return {3, tonumber(u), tonumber(why)} end\n"
    "end\n"
    "local qcount = tonumber(ARGV[5])\n"
    "local used = 0\n"
    "if qcount > 0 then\n"
    "  used = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n"
    "  if used >= qcount then return {2, 0} end\n"
    "end\n"
    "local count = tonumber(ARGV[2])\n"
    "if count > 0 then\n"
    "  local per, cap, burst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[8])\n"
    "  local level, last = cap, now\n"
    "  local c0, p0, l0, t0 = bucket(redis.call('GET', KEYS[3]))\n"
    "  if c0 then\n"
    "    if c0 == count and p0 == per then level = math.min(l0, cap)\n"
    "    elseif p0 > 0 then level = math.min(fdiv(l0, p0), burst) * per end\n"
    "    last = t0\n"
    "    if now > last then\n"
    "      if now - last >= cdiv(cap - level, count) then level = cap\n"
    "      else level = level + (now - last) * count end\n"
    "      last = now\n"
    "    end\n"
    "  end\n"
    "  if level < per then\n"
    "    local left = -1\n"
    "    if qcount > 0 then left = qcount - used end\n"
    "    return {1, cdiv(per - level, count), left}\n"
    "  end\n"
    "  level = level - per\n"
    "  redis.call('SET', KEYS[3], string.format('%d:%d:%d:%d', count, per, level, last), 'PX',\n"
    "             string.format('%d', cdiv(cap - level, count) + tonumber(ARGV[7])))\n"
    "end\n"
    "local left = -1\n"
    "if qcount > 0 then\n"
    "  used = redis.call('INCR', KEYS[2])\n"
    "  redis.call('PEXPIRE', KEYS[2], ARGV[6])\n"
    "  left = qcount - used\n"
    "end\n"
    "return {0, left}\n";

/*
 * refund.  KEYS: quota (the take's window), rate.  ARGV: quota count,
 * count, per, cap.  A unit back to the take's window if its counter is
 * still there; a token back to a bucket of the same rate, never above
 * cap (an absent bucket is full already).  The bucket keeps its TTL.
 */
static const char script_refund[] = LUA_COMMON
    "if tonumber(ARGV[1]) > 0 then\n"
    "  local used = tonumber(redis.call('GET', KEYS[1]) or '')\n"
    "  if used and used > 0 then redis.call('DECR', KEYS[1]) end\n"
    "end\n"
    "local count, per, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "if count > 0 then\n"
    "  local c0, p0, l0, t0 = bucket(redis.call('GET', KEYS[2]))\n"
    "  local ttl = redis.call('PTTL', KEYS[2])\n"
    "  if c0 == count and p0 == per and ttl > 0 then\n"
    "    redis.call('SET', KEYS[2],\n"
    "               string.format('%d:%d:%d:%d', count, per, math.min(l0 + per, cap), t0),\n"
    "               'PX', ttl)\n"
    "  end\n"
    "end\n"
    "return 1\n";

/* pause.  KEYS: pause.  ARGV: until, reason, TTL.  The later end wins. */
static const char script_pause[] =
    "local p = redis.call('GET', KEYS[1])\n"
    "if p then\n"
    "  local u = tonumber(string.match(p, '^(%-?%d+):') or '')\n"
    "  if u and u >= tonumber(ARGV[1]) then return 0 end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])\n"
    "return 1\n";

/* lock.  KEYS: lock.  ARGV: our value, TTL.  A failed holder's marker
 * does not hold the key: the next one tries. */
static const char script_lock[] = "local v = redis.call('GET', KEYS[1])\n"
                                  "if v and v ~= '" MARK_FAILED "' then return 0 end\n"
                                  "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                  "return 1\n";

/* unlock.  KEYS: lock.  ARGV: our value, the marker, its TTL. */
static const char script_unlock[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
                                    "return 1\n";

enum script { S_TAKE, S_REFUND, S_PAUSE, S_LOCK, S_UNLOCK, S_COUNT };

static const char *const scripts[S_COUNT] = {script_take, script_refund, script_pause, script_lock,
                                             script_unlock};

/* ------------------------------------------------------------------ */
/* Types                                                              */
/* ------------------------------------------------------------------ */

enum kind { J_TAKE, J_REFUND, J_PAUSE, J_LOCK, J_UNLOCK, J_WAIT, J_CLAIM, J_PURGE };

/* A route's limits in the scripts' units. */
struct lim {
    int64_t count, per, cap, burst; /* count 0: no rate */
    int64_t qcount, qper;           /* qcount 0: no quota */
};

struct hf_fleet_job {
    unsigned magic;
    struct hf_fleet_job *next;
    struct hf_fleet *fleet;
    enum kind kind;
    struct event *ev; /* in this allocation, on the asking loop; NULL: fire and forget */
    hf_fleet_done_fn done;
    void *arg;
    bool cancelled; /* set on the asking loop; the fleet thread reads it atomically */
    struct hf_fleet_answer ans;
    struct lim lim;      /* take, refund */
    int64_t now_ms;      /* take, refund */
    int64_t until_ms;    /* pause */
    int reason;          /* pause */
    int64_t ttl_ms;      /* lock, claim */
    int64_t slot_ms;     /* claim */
    int64_t deadline_ms; /* wait: monotonic */
    bool stored;         /* unlock */
    size_t name_len;
    char *name; /* the route, cache key or prefix, in this allocation */
};

/* A lock this instance holds: the value that proves it. */
struct held {
    struct held *next;
    uint64_t hash;
    int64_t expires_ms; /* monotonic: forgotten after this */
    char *value;
    char key[];
};

struct hf_fleet {
    struct hf__redis_target t;
    char instance[INSTANCE_MAX + 1];
    size_t instance_len;
    void (*on_purge)(const char *prefix, void *arg);
    void *purge_arg;
    void (*before_release)(void *arg);
    void *release_arg;
    struct hf_retry_policy backoff;

    bool up;         /* read atomically; written under mu */
    uint64_t errors; /* atomic */
    size_t nwaits;   /* atomic; written by the fleet thread */

    pthread_mutex_t mu;
    pthread_cond_t work;              /* the fleet thread waits for jobs or stop */
    struct hf_fleet_job *head, *tail; /* guarded by mu */
    size_t queued;                    /* guarded by mu */
    bool stop;                        /* guarded by mu */
    uint64_t queue_full, bad_replies; /* guarded by mu: for log rate limits */

    /* The fleet thread's. */
    pthread_t thread;
    redisContext *ctx; /* NULL: down */
    char sha[S_COUNT][41];
    int probes;
    int64_t next_probe_ms; /* monotonic */
    struct hf_fleet_job *waits;
    int64_t next_poll_ms; /* monotonic */
    struct held *held[HELD_BUCKETS];
    size_t nheld;
    uint64_t nonce;

    /* The subscriber's. */
    pthread_t sub;
    bool has_sub;
    bool sub_stop; /* atomic */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static void count_error(struct hf_fleet *f)
{
    __atomic_add_fetch(&f->errors, 1, __ATOMIC_RELAXED);
}

/* Log the 1st, 2nd, 4th, 8th... time: visible, but never a flood. */
static bool worth_logging(uint64_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static int64_t gcd(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Wait on cv (a CLOCK_MONOTONIC condition) until deadline_ms. */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    (void)pthread_cond_timedwait(cv, mu, &ts);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* prefix + name[0..nlen) + suffix (NULL: none), malloc'd; *len its length
 * (names may hold any byte but NUL: lengths travel with them). */
static char *key_of(const char *prefix, const char *name, size_t nlen, const char *suffix,
                    size_t *len)
{
    size_t pl = strlen(prefix), sl = suffix != NULL ? strlen(suffix) : 0;
    char *k = malloc(pl + nlen + sl + 1);
    if (k == NULL)
        return NULL;
    memcpy(k, prefix, pl);
    memcpy(k + pl, name, nlen);
    memcpy(k + pl + nlen, suffix != NULL ? suffix : "", sl + 1);
    *len = pl + nlen + sl;
    return k;
}

/* The limits in the scripts' units, or false when they are invalid or
 * too large for exact arithmetic in doubles (see UNITS_MAX). */
static bool lim_of(const struct hf_fleet_limits *l, struct lim *out)
{
    memset(out, 0, sizeof *out);
    if (l == NULL || l->route == NULL || l->rate_count < 0 || l->rate_per_ms < 0 ||
        l->rate_burst < 0 || l->quota_count < 0 || l->quota_per_ms < 0)
        return false;
    if (l->rate_count > 0) {
        if (l->rate_per_ms == 0)
            return false;
        /* Dividing both by their gcd changes no answer: a token is still
         * per / count ms.  5/1m becomes 1/12000. */
        int64_t g = gcd(l->rate_count, l->rate_per_ms);
        out->count = l->rate_count / g;
        out->per = l->rate_per_ms / g;
        out->burst = l->rate_burst > 0 ? l->rate_burst : l->rate_count;
        if (out->count > UNITS_MAX || __builtin_mul_overflow(out->burst, out->per, &out->cap) ||
            out->cap > UNITS_MAX)
            return false;
    }
    if (l->quota_count > 0) {
        if (l->quota_per_ms == 0 || l->quota_count > UNITS_MAX || l->quota_per_ms > UNITS_MAX)
            return false;
        out->qcount = l->quota_count;
        out->qper = l->quota_per_ms;
    }
    return true;
}

static bool time_ok(int64_t t_ms)
{
    return t_ms >= -UNITS_MAX && t_ms <= UNITS_MAX;
}

/* The start of the quota window holding now_ms (limit/quota.h: windows
 * aligned to the epoch). */
static int64_t window_of(int64_t per_ms, int64_t now_ms)
{
    int64_t r = now_ms % per_ms;
    return now_ms - (r < 0 ? r + per_ms : r);
}

/* ------------------------------------------------------------------ */
/* Jobs                                                               */
/* ------------------------------------------------------------------ */

/* On the asking loop: deliver the answer, or drop it if the asker has
 * gone -- giving back a token or a lock it can no longer use. */
static void job_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_fleet_job *j = arg;
    if (j->magic != JOB_MAGIC)
        abort();
    if (!__atomic_load_n(&j->cancelled, __ATOMIC_RELAXED)) {
        j->done(&j->ans, j->arg);
    } else if (j->ans.verdict == HF_FLEET_GO && j->kind == J_TAKE) {
        struct hf_fleet_limits l = {j->name,      j->lim.count,  j->lim.per,
                                    j->lim.burst, j->lim.qcount, j->lim.qper};
        hf_fleet_refund(j->fleet, &l, j->now_ms);
    } else if (j->ans.verdict == HF_FLEET_GO && j->kind == J_LOCK) {
        hf_fleet_unlock(j->fleet, j->name, false);
    }
    j->magic = 0;
    free(j); /* the event lives in j, and is neither pending nor active now */
}

/* A job naming name (NUL-terminated), answered on base (NULL: fire and
 * forget).  The event lives in the same allocation, so a job that never
 * reached its loop is freed without touching the loop's base. */
static struct hf_fleet_job *job_new(struct hf_fleet *f, enum kind kind, struct event_base *base,
                                    hf_fleet_done_fn done, void *arg, const char *name)
{
    size_t align = alignof(max_align_t);
    size_t evoff = (sizeof(struct hf_fleet_job) + align - 1) / align * align;
    size_t evsize = base != NULL ? event_get_struct_event_size() : 0;
    size_t nlen = strlen(name);
    struct hf_fleet_job *j = calloc(1, evoff + evsize + nlen + 1);
    if (j == NULL)
        return NULL;
    j->magic = JOB_MAGIC;
    j->fleet = f;
    j->kind = kind;
    j->done = done;
    j->arg = arg;
    j->ans.verdict = HF_FLEET_DOWN;
    j->ans.quota_left = -1;
    j->name = (char *)j + evoff + evsize;
    memcpy(j->name, name, nlen + 1);
    j->name_len = nlen;
    if (base != NULL) {
        j->ev = (struct event *)((char *)j + evoff);
        if (event_assign(j->ev, base, -1, 0, job_cb, j) != 0) {
            free(j);
            return NULL;
        }
    }
    return j;
}

/* Hand j's answer over: to its loop, or (fire and forget) to free(). */
static void deliver(struct hf_fleet *f, struct hf_fleet_job *j)
{
    bool cancelled = j->ev != NULL && __atomic_load_n(&j->cancelled, __ATOMIC_RELAXED);
    if (j->ans.verdict == HF_FLEET_DOWN && !cancelled)
        count_error(f);
    if (j->ev != NULL) {
        event_active(j->ev, EV_READ, 0); /* j belongs to its loop from here */
    } else {
        j->magic = 0;
        free(j);
    }
}

static void deliver_down(struct hf_fleet *f, struct hf_fleet_job *j)
{
    j->ans.verdict = HF_FLEET_DOWN;
    deliver(f, j);
}

/* A job refused for want of room: counted, and logged now and then.
 * Called with mu held; returns the count to log (0: not this time). */
static uint64_t full_locked(struct hf_fleet *f)
{
    uint64_t n = ++f->queue_full;
    return worth_logging(n) ? n : 0;
}

static void log_full(struct hf_fleet *f, uint64_t n)
{
    if (n != 0)
        HF_LOG(HF_LOG_WARN, "fleet_queue_full", HF_LS("address", f->t.addr),
               HF_LI("jobs", QUEUE_MAX), HF_LI("waits", WAITS_MAX), HF_LI("count", n));
}

/* Queue j, or answer it DOWN at once (Redis away, the queue full, or
 * closing).  The callback, if any, runs exactly once either way. */
static void submit(struct hf_fleet *f, struct hf_fleet_job *j, struct hf_fleet_job **out)
{
    if (out != NULL)
        *out = j; /* before the answer can exist: done runs on this loop, later */
    pthread_mutex_lock(&f->mu);
    bool ok =
        f->up && !f->stop && f->queued + __atomic_load_n(&f->nwaits, __ATOMIC_RELAXED) < QUEUE_MAX;
    uint64_t full = 0;
    if (ok) {
        j->next = NULL;
        if (f->tail != NULL)
            f->tail->next = j;
        else
            f->head = j;
        f->tail = j;
        f->queued++;
        pthread_cond_signal(&f->work);
    } else if (f->up && !f->stop) {
        full = full_locked(f);
    }
    pthread_mutex_unlock(&f->mu);
    if (ok)
        return;
    log_full(f, full);
    deliver_down(f, j);
}

/* ------------------------------------------------------------------ */
/* Locks held                                                         */
/* ------------------------------------------------------------------ */

static struct held **held_find(struct hf_fleet *f, const char *key, size_t klen, uint64_t hash)
{
    struct held **p = &f->held[hash % HELD_BUCKETS];
    for (; *p != NULL; p = &(*p)->next)
        if ((*p)->hash == hash && strlen((*p)->key) == klen && memcmp((*p)->key, key, klen) == 0)
            break;
    return p;
}

static void held_forget_expired(struct hf_fleet *f)
{
    int64_t now = hf_clock_mono_ms();
    for (size_t b = 0; b < HELD_BUCKETS; b++)
        for (struct held **p = &f->held[b]; *p != NULL;) {
            struct held *h = *p;
            if (h->expires_ms > now) {
                p = &h->next;
                continue;
            }
            *p = h->next;
            free(h->value);
            free(h);
            f->nheld--;
        }
}

/* Remember that this instance holds key with value until ttl_ms from
 * now.  When too many are remembered the lock is not: it then ends by
 * expiry, and its waiters learn VANISHED. */
static void held_put(struct hf_fleet *f, const char *key, size_t klen, const char *value,
                     int64_t ttl_ms)
{
    uint64_t hash = fnv1a(key, klen);
    struct held **p = held_find(f, key, klen, hash);
    if (*p == NULL && f->nheld >= HELD_MAX)
        held_forget_expired(f);
    if (*p == NULL && f->nheld >= HELD_MAX)
        return;
    char *v = strdup(value);
    if (v == NULL)
        return;
    if (*p != NULL) {
        free((*p)->value);
        (*p)->value = v;
        (*p)->expires_ms = hf_clock_mono_ms() + ttl_ms;
        return;
    }
    struct held *h = malloc(sizeof *h + klen + 1);
    if (h == NULL) {
        free(v);
        return;
    }
    h->next = NULL;
    h->hash = hash;
    h->expires_ms = hf_clock_mono_ms() + ttl_ms;
    h->value = v;
    memcpy(h->key, key, klen + 1);
    *p = h;
    f->nheld++;
}

/* The value proving key is ours (the caller frees it), forgotten here;
 * NULL when this instance does not hold key. */
static char *held_take(struct hf_fleet *f, const char *key, size_t klen)
{
    struct held **p = held_find(f, key, klen, fnv1a(key, klen));
    struct held *h = *p;
    if (h == NULL)
        return NULL;
    *p = h->next;
    char *v = h->value;
    free(h);
    f->nheld--;
    return v;
}

static void held_clear(struct hf_fleet *f)
{
    for (size_t b = 0; b < HELD_BUCKETS; b++)
        while (f->held[b] != NULL) {
            struct held *h = f->held[b];
            f->held[b] = h->next;
            free(h->value);
            free(h);
        }
    f->nheld = 0;
}

/* ------------------------------------------------------------------ */
/* The connection (fleet thread)                                      */
/* ------------------------------------------------------------------ */

/* SCRIPT LOAD every script on ctx, into f->sha (one round trip); false
 * with why. */
static bool load_scripts(struct hf_fleet *f, redisContext *ctx, char *why, size_t len)
{
    for (int i = 0; i < S_COUNT; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", scripts[i]};
        if (redisAppendCommandArgv(ctx, 3, argv, NULL) != REDIS_OK) {
            snprintf(why, len, "SCRIPT LOAD: out of memory");
            return false;
        }
    }
    bool ok = true;
    for (int i = 0; i < S_COUNT; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || r == NULL) {
            hf__redis_describe(why, len, "SCRIPT LOAD", ctx, errno, COMMAND_TIMEOUT_MS);
            return false;
        }
        if (ok && r->type == REDIS_REPLY_STRING && r->len == 40) {
            memcpy(f->sha[i], r->str, 41);
        } else if (ok) {
            snprintf(why, len, "SCRIPT LOAD: %.*s", (int)(r->len < 160 ? r->len : 160),
                     r->str != NULL ? r->str : "bad reply");
            ok = false; /* the other replies are still read: the context stays in step */
        }
        freeReplyObject(r);
    }
    return ok;
}

/* A new command connection with the scripts loaded; NULL with why. */
static redisContext *connect_fleet(struct hf_fleet *f, char *why, size_t len)
{
    redisContext *ctx = hf__redis_connect(&f->t, COMMAND_TIMEOUT_MS, why, len);
    if (ctx != NULL && !load_scripts(f, ctx, why, len)) {
        redisFree(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void poll_waits_down(struct hf_fleet *f)
{
    while (f->waits != NULL) {
        struct hf_fleet_job *j = f->waits;
        f->waits = j->next;
        deliver_down(f, j);
    }
    __atomic_store_n(&f->nwaits, 0, __ATOMIC_RELAXED);
}

/*
 * Redis failed (why): drop the connection, mark the fleet down (from now
 * on jobs are answered DOWN by their askers), and answer what is queued
 * and waiting DOWN.  The job in hand is the caller's to answer.
 */
static void go_down(struct hf_fleet *f, const char *why)
{
    redisFree(f->ctx);
    f->ctx = NULL;
    pthread_mutex_lock(&f->mu);
    bool was_up = f->up;
    __atomic_store_n(&f->up, false, __ATOMIC_RELEASE);
    f->probes = 1;
    f->next_probe_ms = hf_clock_mono_ms() + hf_backoff_next(&f->backoff, 1, hf_random64());
    struct hf_fleet_job *list = f->head;
    f->head = f->tail = NULL;
    f->queued = 0;
    pthread_mutex_unlock(&f->mu);
    if (was_up)
        HF_LOG(HF_LOG_ERROR, "fleet_down", HF_LS("address", f->t.addr), HF_LS("detail", why));
    while (list != NULL) {
        struct hf_fleet_job *j = list;
        list = j->next;
        deliver_down(f, j);
    }
    poll_waits_down(f);
}

/* Is Redis back?  Fleet thread only, while down. */
static void probe(struct hf_fleet *f)
{
    char why[DETAIL_MAX];
    redisContext *ctx = connect_fleet(f, why, sizeof why);
    pthread_mutex_lock(&f->mu);
    if (ctx != NULL) {
        f->ctx = ctx;
        f->probes = 0;
        __atomic_store_n(&f->up, true, __ATOMIC_RELEASE);
    } else {
        if (f->probes < 64)
            f->probes++;
        f->next_probe_ms =
            hf_clock_mono_ms() + hf_backoff_next(&f->backoff, f->probes, hf_random64());
    }
    pthread_mutex_unlock(&f->mu);
    if (ctx != NULL)
        HF_LOG(HF_LOG_INFO, "fleet_up", HF_LS("address", f->t.addr));
}

/*
 * One command; its reply (an error reply too, except one meaning Redis
 * cannot serve), or NULL when the fleet went down.  A connection found
 * closed while it sat idle (Redis restarted, an idle timeout) is replaced
 * and the command sent once more.
 */
static redisReply *command(struct hf_fleet *f, int argc, const char **argv, const size_t *lens)
{
    char why[DETAIL_MAX];
    for (int attempt = 0; f->ctx != NULL; attempt++) {
        redisReply *r = redisCommandArgv(f->ctx, argc, argv, lens);
        if (r != NULL && hf__redis_reply_downs(r)) {
            snprintf(why, sizeof why, "%s: %.*s", argv[0], (int)(r->len < 160 ? r->len : 160),
                     r->str);
            freeReplyObject(r);
            go_down(f, why);
            return NULL;
        }
        if (r != NULL)
            return r;
        int err_no = errno;
        hf__redis_describe(why, sizeof why, argv[0], f->ctx, err_no, COMMAND_TIMEOUT_MS);
        bool again = attempt == 0 && hf__redis_broken_while_idle(f->ctx, err_no);
        redisFree(f->ctx);
        f->ctx = NULL;
        if (again)
            f->ctx = connect_fleet(f, why, sizeof why);
        if (f->ctx == NULL) {
            go_down(f, why);
            return NULL;
        }
    }
    return NULL;
}

/* EVALSHA script; on NOSCRIPT (Redis restarted empty, SCRIPT FLUSH) the
 * script is loaded again and run once more. */
static redisReply *eval(struct hf_fleet *f, enum script s, int nkeys, const char **keys,
                        const size_t *klens, int nargs, const char **args)
{
    const char *argv[16];
    size_t lens[16];
    char nk[4];
    snprintf(nk, sizeof nk, "%d", nkeys);
    int n = 0;
    argv[n] = "EVALSHA";
    lens[n++] = 7;
    argv[n] = f->sha[s];
    lens[n++] = 40;
    argv[n] = nk;
    lens[n++] = strlen(nk);
    for (int i = 0; i < nkeys; i++) {
        argv[n] = keys[i];
        lens[n++] = klens[i];
    }
    for (int i = 0; i < nargs; i++) {
        argv[n] = args[i];
        lens[n++] = strlen(args[i]);
    }
    redisReply *r = command(f, n, argv, lens);
    if (r == NULL || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8) != 0)
        return r;
    freeReplyObject(r);
    const char *load[3] = {"SCRIPT", "LOAD", scripts[s]};
    if ((r = command(f, 3, load, NULL)) == NULL)
        return NULL;
    if (r->type != REDIS_REPLY_STRING || r->len != 40)
        return r; /* an error reply: the caller's to report */
    memcpy(f->sha[s], r->str, 41);
    freeReplyObject(r);
    return command(f, n, argv, lens);
}

/* A reply that is not what the command answers: the job fails (DOWN, so
 * its asker decides locally), Redis may still be up. */
static void bad_reply(struct hf_fleet *f, const char *what, const redisReply *r)
{
    char detail[DETAIL_MAX];
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(detail, sizeof detail, "%s: %.*s", what, (int)(r->len < 160 ? r->len : 160),
                 r->str);
    else
        snprintf(detail, sizeof detail, "%s: unexpected reply (type %d)", what, r->type);
    pthread_mutex_lock(&f->mu);
    uint64_t n = ++f->bad_replies;
    pthread_mutex_unlock(&f->mu);
    if (worth_logging(n))
        HF_LOG(HF_LOG_WARN, "fleet_reply_failed", HF_LS("address", f->t.addr),
               HF_LS("detail", detail), HF_LI("count", n));
}

/* ------------------------------------------------------------------ */
/* Running jobs (fleet thread)                                        */
/* ------------------------------------------------------------------ */

static bool int_at(const redisReply *r, size_t i, long long *v)
{
    if (i >= r->elements || r->element[i]->type != REDIS_REPLY_INTEGER)
        return false;
    *v = r->element[i]->integer;
    return true;
}

/* The take script's answer into a; false when it is not one. */
static bool take_answer(const struct hf_fleet_job *j, const redisReply *r,
                        struct hf_fleet_answer *a)
{
    long long v = -1, x = 0, y = 0;
    if (r->type != REDIS_REPLY_ARRAY || !int_at(r, 0, &v))
        return false;
    switch (v) {
    case 0:
        if (!int_at(r, 1, &x))
            return false;
        a->verdict = HF_FLEET_GO;
        a->quota_left = x;
        return true;
    case 1:
        if (!int_at(r, 1, &x) || !int_at(r, 2, &y) || x < 1)
            return false;
        a->verdict = HF_FLEET_RATE;
        a->wait_ms = x;
        a->quota_left = y;
        return true;
    case 2:
        a->verdict = HF_FLEET_QUOTA;
        a->quota_left = 0;
        a->until_ms = window_of(j->lim.qper, j->now_ms) + j->lim.qper;
        return true;
    case 3:
        if (!int_at(r, 1, &x) || !int_at(r, 2, &y) || y < 0 || y > 1000)
            return false;
        a->verdict = HF_FLEET_PAUSED;
        a->until_ms = x;
        a->pause_reason = (int)y;
        return true;
    default:
        return false;
    }
}

/* The three keys of a take or refund at j->now_ms, malloc'd; false when
 * out of memory. */
static bool limit_keys(const struct hf_fleet_job *j, char *keys[3], size_t lens[3])
{
    char window[32];
    snprintf(window, sizeof window, ":%" PRId64,
             j->lim.qcount > 0 ? window_of(j->lim.qper, j->now_ms) : (int64_t)0);
    keys[0] = key_of(K_PAUSE, j->name, j->name_len, NULL, &lens[0]);
    keys[1] = key_of(K_QUOTA, j->name, j->name_len, window, &lens[1]);
    keys[2] = key_of(K_RATE, j->name, j->name_len, NULL, &lens[2]);
    return keys[0] != NULL && keys[1] != NULL && keys[2] != NULL;
}

static void run_take(struct hf_fleet *f, struct hf_fleet_job *j)
{
    char *keys[3];
    size_t lens[3];
    char a[8][24];
    const struct lim *l = &j->lim;
    int64_t qttl = 0;
    if (l->qcount > 0)
        qttl = window_of(l->qper, j->now_ms) + l->qper - j->now_ms + QUOTA_SLACK_MS;
    snprintf(a[0], sizeof a[0], "%" PRId64, j->now_ms);
    snprintf(a[1], sizeof a[1], "%" PRId64, l->count);
    snprintf(a[2], sizeof a[2], "%" PRId64, l->per);
    snprintf(a[3], sizeof a[3], "%" PRId64, l->cap);
    snprintf(a[4], sizeof a[4], "%" PRId64, l->qcount);
    snprintf(a[5], sizeof a[5], "%" PRId64, qttl);
    snprintf(a[6], sizeof a[6], "%d", RATE_SLACK_MS);
    snprintf(a[7], sizeof a[7], "%" PRId64, l->burst);
    const char *args[8] = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]};
    redisReply *r = NULL;
    if (limit_keys(j, keys, lens))
        r = eval(f, S_TAKE, 3, (const char **)keys, lens, 8, args);
    if (r != NULL && !take_answer(j, r, &j->ans)) {
        bad_reply(f, "take", r);
        j->ans.verdict = HF_FLEET_DOWN;
    }
    freeReplyObject(r);
    for (int i = 0; i < 3; i++)
        free(keys[i]);
    deliver(f, j);
}

static void run_refund(struct hf_fleet *f, struct hf_fleet_job *j)
{
    char *keys[3];
    size_t lens[3];
    char a[4][24];
    snprintf(a[0], sizeof a[0], "%" PRId64, j->lim.qcount);
    snprintf(a[1], sizeof a[1], "%" PRId64, j->lim.count);
    snprintf(a[2], sizeof a[2], "%" PRId64, j->lim.per);
    snprintf(a[3], sizeof a[3], "%" PRId64, j->lim.cap);
    const char *args[4] = {a[0], a[1], a[2], a[3]};
    redisReply *r = NULL;
    if (limit_keys(j, keys, lens))
        r = eval(f, S_REFUND, 2, (const char **)keys + 1, lens + 1, 4, args);
    if (r != NULL && r->type != REDIS_REPLY_INTEGER)
        bad_reply(f, "refund", r);
    else if (r != NULL)
        j->ans.verdict = HF_FLEET_GO;
    freeReplyObject(r);
    for (int i = 0; i < 3; i++)
        free(keys[i]);
    deliver(f, j);
}

static void run_pause(struct hf_fleet *f, struct hf_fleet_job *j)
{
    /* The TTL only frees memory (a take compares until with its own
     * now_ms), so the wall clock read here is good enough. */
    int64_t ttl = j->until_ms - hf_clock_wall_ms();
    if (ttl <= 0) { /* over already */
        j->ans.verdict = HF_FLEET_GO;
        deliver(f, j);
        return;
    }
    char a[3][24];
    snprintf(a[0], sizeof a[0], "%" PRId64, j->until_ms);
    snprintf(a[1], sizeof a[1], "%d", j->reason);
    snprintf(a[2], sizeof a[2], "%" PRId64, ttl + PAUSE_SLACK_MS);
    const char *args[3] = {a[0], a[1], a[2]};
    size_t klen = 0;
    char *key = key_of(K_PAUSE, j->name, j->name_len, NULL, &klen);
    redisReply *r = key != NULL ? eval(f, S_PAUSE, 1, (const char **)&key, &klen, 3, args) : NULL;
    if (r != NULL && r->type != REDIS_REPLY_INTEGER)
        bad_reply(f, "pause", r);
    else if (r != NULL)
        j->ans.verdict = HF_FLEET_GO;
    freeReplyObject(r);
    free(key);
    deliver(f, j);
}

static void run_lock(struct hf_fleet *f, struct hf_fleet_job *j)
{
    char value[INSTANCE_MAX + 48], ttl[24];
    snprintf(value, sizeof value, HELD_PREFIX "%s:%" PRIx64, f->instance, ++f->nonce);
    snprintf(ttl, sizeof ttl, "%" PRId64, j->ttl_ms);
    const char *args[2] = {value, ttl};
    size_t klen = 0;
    char *key = key_of(K_LOCK, j->name, j->name_len, NULL, &klen);
    redisReply *r = key != NULL ? eval(f, S_LOCK, 1, (const char **)&key, &klen, 2, args) : NULL;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
        j->ans.verdict = r->integer == 1 ? HF_FLEET_GO : HF_FLEET_HELD;
        if (r->integer == 1)
            held_put(f, j->name, j->name_len, value, j->ttl_ms);
    } else if (r != NULL) {
        bad_reply(f, "lock", r);
    }
    freeReplyObject(r);
    free(key);
    deliver(f, j);
}

static void run_unlock(struct hf_fleet *f, struct hf_fleet_job *j)
{
    char *value = held_take(f, j->name, j->name_len);
    if (value == NULL) { /* never ours, or forgotten: it ends by expiry */
        j->ans.verdict = HF_FLEET_GO;
        deliver(f, j);
        return;
    }
    if (j->stored && f->before_release != NULL)
        f->before_release(f->release_arg);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", MARKER_TTL_MS);
    const char *args[3] = {value, j->stored ? MARK_STORED : MARK_FAILED, ttl};
    size_t klen = 0;
    char *key = key_of(K_LOCK, j->name, j->name_len, NULL, &klen);
    redisReply *r = key != NULL ? eval(f, S_UNLOCK, 1, (const char **)&key, &klen, 3, args) : NULL;
    if (r != NULL && r->type != REDIS_REPLY_INTEGER)
        bad_reply(f, "unlock", r);
    else if (r != NULL)
        j->ans.verdict = HF_FLEET_GO;
    freeReplyObject(r);
    free(key);
    free(value);
    deliver(f, j);
}

/* A wait's view of its lock's value; false while it is still held. */
static bool wait_over(struct hf_fleet *f, struct hf_fleet_job *j, const redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL) {
        j->ans.verdict = HF_FLEET_DONE;
        j->ans.outcome = HF_FLEET_VANISHED;
    } else if (r->type == REDIS_REPLY_STRING && r->len == strlen(MARK_STORED) &&
               memcmp(r->str, MARK_STORED, r->len) == 0) {
        j->ans.verdict = HF_FLEET_DONE;
        j->ans.outcome = HF_FLEET_STORED;
    } else if (r->type == REDIS_REPLY_STRING && r->len == strlen(MARK_FAILED) &&
               memcmp(r->str, MARK_FAILED, r->len) == 0) {
        j->ans.verdict = HF_FLEET_DONE;
        j->ans.outcome = HF_FLEET_FAILED;
    } else if (r->type == REDIS_REPLY_STRING) {
        if (hf_clock_mono_ms() < j->deadline_ms)
            return false;
        j->ans.verdict = HF_FLEET_TIMEOUT;
    } else {
        bad_reply(f, "wait", r);
        j->ans.verdict = HF_FLEET_DOWN;
    }
    return true;
}

static void run_wait(struct hf_fleet *f, struct hf_fleet_job *j)
{
    size_t klen = 0;
    char *key = key_of(K_LOCK, j->name, j->name_len, NULL, &klen);
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, klen};
    redisReply *r = key != NULL ? command(f, 2, argv, lens) : NULL;
    free(key);
    bool over = r == NULL || wait_over(f, j, r);
    freeReplyObject(r);
    if (over) {
        deliver(f, j);
        return;
    }
    if (__atomic_load_n(&f->nwaits, __ATOMIC_RELAXED) >= WAITS_MAX) {
        pthread_mutex_lock(&f->mu);
        uint64_t full = full_locked(f);
        pthread_mutex_unlock(&f->mu);
        log_full(f, full);
        deliver_down(f, j); /* the asker decides alone */
        return;
    }
    if (f->waits == NULL)
        f->next_poll_ms = hf_clock_mono_ms() + WAIT_POLL_MS;
    j->next = f->waits;
    f->waits = j;
    __atomic_add_fetch(&f->nwaits, 1, __ATOMIC_RELAXED);
}

/*
 * Look at every pending wait's lock: one pipelined round trip of GETs.
 * Cancelled waits are dropped first, without a GET.
 */
static void poll_waits(struct hf_fleet *f)
{
    f->next_poll_ms = hf_clock_mono_ms() + WAIT_POLL_MS;
    struct hf_fleet_job *list = f->waits, *keep = NULL, *bad = NULL;
    f->waits = NULL;
    size_t n = 0;
    for (struct hf_fleet_job *j = list, *next; j != NULL; j = next) {
        next = j->next;
        size_t klen = 0;
        char *key = NULL;
        if (__atomic_load_n(&j->cancelled, __ATOMIC_RELAXED) ||
            (key = key_of(K_LOCK, j->name, j->name_len, NULL, &klen)) == NULL) {
            j->next = bad;
            bad = j;
            continue;
        }
        const char *argv[2] = {"GET", key};
        size_t lens[2] = {3, klen};
        int rc = redisAppendCommandArgv(f->ctx, 2, argv, lens);
        free(key);
        if (rc != REDIS_OK) {
            j->next = bad;
            bad = j;
            continue;
        }
        j->next = keep; /* reversed: keep is in the order the GETs were sent, last first */
        keep = j;
        n++;
    }
    while (bad != NULL) {
        struct hf_fleet_job *j = bad;
        bad = j->next;
        deliver_down(f, j);
        __atomic_sub_fetch(&f->nwaits, 1, __ATOMIC_RELAXED);
    }
    /* Back in sending order. */
    struct hf_fleet_job *sent = NULL;
    while (keep != NULL) {
        struct hf_fleet_job *j = keep;
        keep = j->next;
        j->next = sent;
        sent = j;
    }
    for (size_t i = 0; i < n; i++) {
        struct hf_fleet_job *j = sent;
        redisReply *r = NULL;
        if (redisGetReply(f->ctx, (void **)&r) != REDIS_OK || r == NULL ||
            hf__redis_reply_downs(r)) {
            char why[DETAIL_MAX];
            if (r != NULL)
                snprintf(why, sizeof why, "GET: %.*s", (int)(r->len < 160 ? r->len : 160), r->str);
            else
                hf__redis_describe(why, sizeof why, "GET", f->ctx, errno, COMMAND_TIMEOUT_MS);
            freeReplyObject(r);
            /* The waits not yet answered go down with the rest. */
            struct hf_fleet_job *tail = sent;
            while (tail->next != NULL)
                tail = tail->next;
            tail->next = f->waits;
            f->waits = sent;
            go_down(f, why);
            return;
        }
        sent = j->next;
        if (wait_over(f, j, r)) {
            deliver(f, j);
            __atomic_sub_fetch(&f->nwaits, 1, __ATOMIC_RELAXED);
        } else {
            j->next = f->waits;
            f->waits = j;
        }
        freeReplyObject(r);
    }
}

static void run_claim(struct hf_fleet *f, struct hf_fleet_job *j)
{
    char slot[32], ttl[24];
    snprintf(slot, sizeof slot, ":%" PRId64, j->slot_ms);
    snprintf(ttl, sizeof ttl, "%" PRId64, j->ttl_ms);
    size_t klen = 0;
    char *key = key_of(K_CLAIM, j->name, j->name_len, slot, &klen);
    const char *argv[6] = {"SET", key, f->instance, "NX", "PX", ttl};
    size_t lens[6] = {3, klen, f->instance_len, 2, 2, strlen(ttl)};
    redisReply *r = key != NULL ? command(f, 6, argv, lens) : NULL;
    free(key);
    if (r != NULL && r->type == REDIS_REPLY_STATUS)
        j->ans.verdict = HF_FLEET_GO;
    else if (r != NULL && r->type == REDIS_REPLY_NIL)
        j->ans.verdict = HF_FLEET_HELD;
    else if (r != NULL)
        bad_reply(f, "claim", r);
    freeReplyObject(r);
    deliver(f, j);
}

static void run_purge(struct hf_fleet *f, struct hf_fleet_job *j)
{
    size_t mlen = 0;
    char *msg = key_of(f->instance, "\n", 1, j->name, &mlen);
    const char *argv[3] = {"PUBLISH", CHANNEL, msg};
    size_t lens[3] = {7, strlen(CHANNEL), mlen};
    redisReply *r = msg != NULL ? command(f, 3, argv, lens) : NULL;
    free(msg);
    if (r != NULL && r->type != REDIS_REPLY_INTEGER)
        bad_reply(f, "purge", r);
    else if (r != NULL)
        j->ans.verdict = HF_FLEET_GO;
    freeReplyObject(r);
    deliver(f, j);
}

static void run(struct hf_fleet *f, struct hf_fleet_job *j)
{
    if (j->ev != NULL && __atomic_load_n(&j->cancelled, __ATOMIC_RELAXED)) {
        deliver(f, j); /* nobody listens: nothing is taken */
        return;
    }
    switch (j->kind) {
    case J_TAKE:
        run_take(f, j);
        break;
    case J_REFUND:
        run_refund(f, j);
        break;
    case J_PAUSE:
        run_pause(f, j);
        break;
    case J_LOCK:
        run_lock(f, j);
        break;
    case J_UNLOCK:
        run_unlock(f, j);
        break;
    case J_WAIT:
        run_wait(f, j);
        break;
    case J_CLAIM:
        run_claim(f, j);
        break;
    case J_PURGE:
        run_purge(f, j);
        break;
    }
}

static void *fleet_main(void *arg)
{
    struct hf_fleet *f = arg;
    int64_t idle_ping_ms = hf_clock_mono_ms() + IDLE_PING_MS;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        if (!f->up) {
            idle_ping_ms = hf_clock_mono_ms() + IDLE_PING_MS;
            if (hf_clock_mono_ms() < f->next_probe_ms) {
                wait_until(&f->work, &f->mu, f->next_probe_ms);
                continue;
            }
            pthread_mutex_unlock(&f->mu);
            probe(f);
            pthread_mutex_lock(&f->mu);
            continue;
        }
        /* Waits first when due, so a busy queue cannot starve them. */
        if (f->waits != NULL && hf_clock_mono_ms() >= f->next_poll_ms) {
            pthread_mutex_unlock(&f->mu);
            poll_waits(f);
            pthread_mutex_lock(&f->mu);
            continue;
        }
        if (f->head != NULL) {
            struct hf_fleet_job *j = f->head;
            f->head = j->next;
            if (f->head == NULL)
                f->tail = NULL;
            f->queued--;
            pthread_mutex_unlock(&f->mu);
            run(f, j);
            pthread_mutex_lock(&f->mu);
            idle_ping_ms = hf_clock_mono_ms() + IDLE_PING_MS;
            continue;
        }
        /* Idle: a PING now and then, so a Redis that died while nobody
         * asked shows as down in /health and sends limits local before the
         * next request finds out. */
        int64_t now = hf_clock_mono_ms();
        if (now >= idle_ping_ms) {
            pthread_mutex_unlock(&f->mu);
            const char *argv[1] = {"PING"};
            redisReply *r = command(f, 1, argv, NULL); /* goes down by itself on failure */
            freeReplyObject(r);
            pthread_mutex_lock(&f->mu);
            idle_ping_ms = hf_clock_mono_ms() + IDLE_PING_MS;
            continue;
        }
        if (f->waits != NULL && f->next_poll_ms < idle_ping_ms)
            wait_until(&f->work, &f->mu, f->next_poll_ms);
        else
            wait_until(&f->work, &f->mu, idle_ping_ms);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The subscriber                                                     */
/* ------------------------------------------------------------------ */

/* A message on the channel: "<instance>\n<prefix>".  Our own, and any
 * that is not one of ours, are ignored. */
static void on_message(struct hf_fleet *f, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return; /* a subscription's confirmation, a PING's pong */
    const char *m = r->element[2]->str;
    size_t len = r->element[2]->len;
    const char *nl = memchr(m, '\n', len);
    if (nl == NULL || memchr(m, '\0', len) != NULL)
        return;
    if ((size_t)(nl - m) == f->instance_len && memcmp(m, f->instance, f->instance_len) == 0)
        return;
    f->on_purge(nl + 1, f->purge_arg);
}

/* A new subscription; NULL with why. */
static redisContext *subscribe(struct hf_fleet *f, char *why, size_t len)
{
    redisContext *c = hf__redis_connect(&f->t, COMMAND_TIMEOUT_MS, why, len);
    if (c == NULL)
        return NULL;
    const char *argv[2] = {"SUBSCRIBE", CHANNEL};
    redisReply *r = redisCommandArgv(c, 2, argv, NULL);
    if (r == NULL) {
        hf__redis_describe(why, len, "SUBSCRIBE", c, errno, COMMAND_TIMEOUT_MS);
        redisFree(c);
        return NULL;
    }
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
              r->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(r->element[0]->str, "subscribe") == 0;
    if (!ok) {
        snprintf(why, len, "SUBSCRIBE: %.*s", (int)(r->len < 160 ? r->len : 160),
                 r->str != NULL ? r->str : "unexpected reply");
        redisFree(c);
        c = NULL;
    }
    freeReplyObject(r);
    return c;
}

/* Send a PING on a subscription (RESP2 answers ["pong", ""]). */
static bool sub_ping(redisContext *c)
{
    const char *argv[1] = {"PING"};
    if (redisAppendCommandArgv(c, 1, argv, NULL) != REDIS_OK)
        return false;
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return false;
    return true;
}

/*
 * The subscriber thread: poll (SUB_POLL_MS at a time, so close stops it
 * promptly) and hand each purge to on_purge.  A subscription lost and
 * made again may have missed purges: on_purge("") then drops every copy
 * this instance holds in memory, the only safe guess.
 */
static void *sub_main(void *arg)
{
    struct hf_fleet *f = arg;
    redisContext *c = NULL;
    bool had = false;
    int probes = 0;
    int64_t next_try = 0, last_rx = 0, ping_sent = 0;
    char why[DETAIL_MAX];
    while (!__atomic_load_n(&f->sub_stop, __ATOMIC_RELAXED)) {
        int64_t now = hf_clock_mono_ms();
        if (c == NULL) {
            if (now < next_try) {
                sleep_ms(next_try - now < SUB_POLL_MS ? next_try - now : SUB_POLL_MS);
                continue;
            }
            if ((c = subscribe(f, why, sizeof why)) == NULL) {
                if (probes < 64)
                    probes++;
                next_try = now + hf_backoff_next(&f->backoff, probes, hf_random64());
                continue;
            }
            probes = 0;
            last_rx = now;
            ping_sent = 0;
            if (had)
                f->on_purge("", f->purge_arg);
            had = true;
            continue;
        }
        redisReply *r = NULL;
        bool broken = false;
        if (redisGetReplyFromReader(c, (void **)&r) != REDIS_OK) {
            snprintf(why, sizeof why, "subscription: %s", c->errstr);
            broken = true;
        } else if (r != NULL) {
            last_rx = now;
            ping_sent = 0;
            on_message(f, r);
            freeReplyObject(r);
            continue;
        } else {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int n = poll(&p, 1, SUB_POLL_MS);
            if (n > 0 && redisBufferRead(c) != REDIS_OK) {
                hf__redis_describe(why, sizeof why, "subscription", c, errno, COMMAND_TIMEOUT_MS);
                broken = true;
            } else if (n == 0 && ping_sent == 0 && now - last_rx >= SUB_IDLE_PING_MS) {
                ping_sent = now;
                if (!sub_ping(c)) {
                    hf__redis_describe(why, sizeof why, "PING", c, errno, COMMAND_TIMEOUT_MS);
                    broken = true;
                }
            } else if (n == 0 && ping_sent != 0 && now - ping_sent >= SUB_PING_TIMEOUT_MS) {
                snprintf(why, sizeof why, "PING: no answer within %d ms", SUB_PING_TIMEOUT_MS);
                broken = true;
            }
        }
        if (broken) {
            HF_LOG(HF_LOG_WARN, "fleet_subscription_lost", HF_LS("address", f->t.addr),
                   HF_LS("detail", why));
            redisFree(c);
            c = NULL;
            probes = 1;
            next_try = now + hf_backoff_next(&f->backoff, 1, hf_random64());
        }
    }
    redisFree(c);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                     */
/* ------------------------------------------------------------------ */

static void errf(char *errbuf, size_t errlen, const char *fmt, const char *why)
{
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, fmt, why);
}

/* Free a fleet whose threads are not running (or have been joined). */
static void destroy(struct hf_fleet *f)
{
    /* Jobs that never reached their loops: their events were never
     * pending, so no base needs to hear of them. */
    for (struct hf_fleet_job *j = f->head, *next; j != NULL; j = next) {
        next = j->next;
        free(j);
    }
    for (struct hf_fleet_job *j = f->waits, *next; j != NULL; j = next) {
        next = j->next;
        free(j);
    }
    held_clear(f);
    redisFree(f->ctx);
    hf__redis_target_fini(&f->t);
    pthread_cond_destroy(&f->work);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static bool instance_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > INSTANCE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

hf_err hf_fleet_open(const struct hf_fleet_options *o, struct hf_fleet **out, char *errbuf,
                     size_t errlen)
{
    if (o == NULL || o->url == NULL || out == NULL) {
        errf(errbuf, errlen, "%s", "the fleet needs a Redis URL");
        return HF_EINVAL;
    }
    if (o->instance != NULL && !instance_ok(o->instance)) {
        errf(errbuf, errlen, "%s",
             "the fleet's instance id must be 1 to 200 bytes without control characters");
        return HF_CONFIG;
    }
    struct hf_fleet *f = calloc(1, sizeof *f);
    pthread_condattr_t ca;
    bool sync = false;
    if (f != NULL && pthread_condattr_init(&ca) == 0) {
        /* Waits here are timeouts and poll ticks: immune to clock steps. */
        sync = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
               pthread_cond_init(&f->work, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!sync) {
        free(f);
        errf(errbuf, errlen, "%s", "cannot open the fleet: out of memory");
        return HF_ENOMEM;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->on_purge = o->on_purge;
    f->purge_arg = o->purge_arg;
    f->before_release = o->before_release;
    f->release_arg = o->release_arg;
    f->backoff = (struct hf_retry_policy){.attempts = 1,
                                          .backoff_ms = BACKOFF_FIRST_MS,
                                          .max_backoff_ms = BACKOFF_MAX_MS,
                                          .multiplier = 2.0,
                                          .jitter = HF_JITTER_FULL};
    /* Never the URL in a message: it may hold a password. */
    const char *why = hf__redis_parse_url(o->url, &f->t);
    if (why != NULL) {
        errf(errbuf, errlen, "bad Redis URL for the fleet: %s", why);
        destroy(f);
        return strcmp(why, "out of memory") == 0 ? HF_ENOMEM : HF_CONFIG;
    }
    if (o->instance != NULL) {
        snprintf(f->instance, sizeof f->instance, "%s", o->instance);
    } else {
        char host[64] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !instance_ok(host))
            snprintf(host, sizeof host, "host");
        snprintf(f->instance, sizeof f->instance, "%s:%ld:%08" PRIx32, host, (long)getpid(),
                 (uint32_t)hf_random64());
    }
    f->instance_len = strlen(f->instance);

    /* One attempt now, so a reachable Redis opens up and an unreachable
     * one says so at once; the fleet thread keeps trying after that. */
    char detail[DETAIL_MAX];
    struct hf__sigpipe_guard sp;
    hf__redis_sigpipe_block(&sp);
    f->ctx = connect_fleet(f, detail, sizeof detail);
    hf__redis_sigpipe_restore(&sp);
    f->up = f->ctx != NULL;
    if (!f->up) {
        f->probes = 1;
        f->next_probe_ms = hf_clock_mono_ms() + hf_backoff_next(&f->backoff, 1, hf_random64());
        HF_LOG(HF_LOG_ERROR, "fleet_down", HF_LS("address", f->t.addr), HF_LS("detail", detail));
    }

    /* The threads take no signals: SIGPIPE from their writes is an EPIPE,
     * and the application's handlers run on its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&f->thread, NULL, fleet_main, f);
    if (rc == 0 && f->on_purge != NULL) {
        f->has_sub = pthread_create(&f->sub, NULL, sub_main, f) == 0;
        if (!f->has_sub) {
            pthread_mutex_lock(&f->mu);
            f->stop = true;
            pthread_cond_signal(&f->work);
            pthread_mutex_unlock(&f->mu);
            pthread_join(f->thread, NULL);
            rc = -1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errf(errbuf, errlen, "cannot open the fleet on %s: no thread", f->t.addr);
        destroy(f);
        return HF_ENOMEM;
    }
    *out = f;
    return HF_OK;
}

void hf_fleet_close(struct hf_fleet **fp)
{
    struct hf_fleet *f = fp != NULL ? *fp : NULL;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->work);
    pthread_mutex_unlock(&f->mu);
    __atomic_store_n(&f->sub_stop, true, __ATOMIC_RELAXED);
    pthread_join(f->thread, NULL);
    if (f->has_sub)
        pthread_join(f->sub, NULL);
    destroy(f);
    *fp = NULL;
}

bool hf_fleet_up(struct hf_fleet *f)
{
    return f != NULL && __atomic_load_n(&f->up, __ATOMIC_ACQUIRE);
}

uint64_t hf_fleet_errors(struct hf_fleet *f)
{
    return f != NULL ? __atomic_load_n(&f->errors, __ATOMIC_RELAXED) : 0;
}

const char *hf_fleet_instance(struct hf_fleet *f)
{
    return f != NULL ? f->instance : NULL;
}

void hf_fleet_cancel(struct hf_fleet_job *j)
{
    if (j == NULL)
        return;
    if (j->magic != JOB_MAGIC)
        abort();
    __atomic_store_n(&j->cancelled, true, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* The requests                                                       */
/* ------------------------------------------------------------------ */

hf_err hf_fleet_take(struct hf_fleet *f, struct event_base *base, const struct hf_fleet_limits *l,
                     int64_t now_ms, hf_fleet_done_fn done, void *arg, struct hf_fleet_job **out)
{
    struct lim lim;
    if (f == NULL || base == NULL || done == NULL || !lim_of(l, &lim) || !time_ok(now_ms))
        return HF_EINVAL;
    struct hf_fleet_job *j = job_new(f, J_TAKE, base, done, arg, l->route);
    if (j == NULL)
        return HF_ENOMEM;
    j->lim = lim;
    j->now_ms = now_ms;
    submit(f, j, out);
    return HF_OK;
}

void hf_fleet_refund(struct hf_fleet *f, const struct hf_fleet_limits *l, int64_t now_ms)
{
    struct lim lim;
    if (f == NULL || !lim_of(l, &lim) || !time_ok(now_ms) || (lim.count == 0 && lim.qcount == 0))
        return;
    struct hf_fleet_job *j = job_new(f, J_REFUND, NULL, NULL, NULL, l->route);
    if (j == NULL)
        return;
    j->lim = lim;
    j->now_ms = now_ms;
    submit(f, j, NULL);
}

void hf_fleet_pause(struct hf_fleet *f, const char *route, int64_t until_ms, int reason)
{
    if (f == NULL || route == NULL || !time_ok(until_ms) || reason < 0 || reason > 1000)
        return;
    struct hf_fleet_job *j = job_new(f, J_PAUSE, NULL, NULL, NULL, route);
    if (j == NULL)
        return;
    j->until_ms = until_ms;
    j->reason = reason;
    submit(f, j, NULL);
}

hf_err hf_fleet_lock(struct hf_fleet *f, struct event_base *base, const char *key, int64_t ttl_ms,
                     hf_fleet_done_fn done, void *arg, struct hf_fleet_job **out)
{
    if (f == NULL || base == NULL || key == NULL || done == NULL || ttl_ms < 1 ||
        ttl_ms > TTL_MAX_MS)
        return HF_EINVAL;
    struct hf_fleet_job *j = job_new(f, J_LOCK, base, done, arg, key);
    if (j == NULL)
        return HF_ENOMEM;
    j->ttl_ms = ttl_ms;
    submit(f, j, out);
    return HF_OK;
}

void hf_fleet_unlock(struct hf_fleet *f, const char *key, bool stored)
{
    if (f == NULL || key == NULL)
        return;
    struct hf_fleet_job *j = job_new(f, J_UNLOCK, NULL, NULL, NULL, key);
    if (j == NULL)
        return;
    j->stored = stored;
    submit(f, j, NULL);
}

hf_err hf_fleet_wait(struct hf_fleet *f, struct event_base *base, const char *key,
                     int64_t timeout_ms, hf_fleet_done_fn done, void *arg,
                     struct hf_fleet_job **out)
{
    if (f == NULL || base == NULL || key == NULL || done == NULL || timeout_ms < 0 ||
        timeout_ms > TTL_MAX_MS)
        return HF_EINVAL;
    struct hf_fleet_job *j = job_new(f, J_WAIT, base, done, arg, key);
    if (j == NULL)
        return HF_ENOMEM;
    j->deadline_ms = hf_clock_mono_ms() + timeout_ms;
    submit(f, j, out);
    return HF_OK;
}

hf_err hf_fleet_claim(struct hf_fleet *f, struct event_base *base, const char *route,
                      int64_t slot_ms, int64_t ttl_ms, hf_fleet_done_fn done, void *arg,
                      struct hf_fleet_job **out)
{
    if (f == NULL || base == NULL || route == NULL || done == NULL || ttl_ms < 1 ||
        ttl_ms > TTL_MAX_MS)
        return HF_EINVAL;
    struct hf_fleet_job *j = job_new(f, J_CLAIM, base, done, arg, route);
    if (j == NULL)
        return HF_ENOMEM;
    j->slot_ms = slot_ms;
    j->ttl_ms = ttl_ms;
    submit(f, j, out);
    return HF_OK;
}

void hf_fleet_purge(struct hf_fleet *f, const char *prefix)
{
    if (f == NULL || prefix == NULL)
        return;
    struct hf_fleet_job *j = job_new(f, J_PURGE, NULL, NULL, NULL, prefix);
    if (j != NULL)
        submit(f, j, NULL);
}
