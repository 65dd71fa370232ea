/*
 * The metrics registry; see metrics.h.  The table becomes a descriptor array
 * here, and a registry lays every series out in two flat arrays: counters
 * and histograms once per shard, gauges once.  A series' slots are found by
 * arithmetic on indices fixed at creation; rendering sums the shards.
 *
 * A thread that counts takes a shard of its own while one is free and then
 * is its only writer: a count is a relaxed load and store, no locked
 * instruction (a locked add costs 5 to 20 ns even uncontended, the whole
 * budget).  The values stay atomic objects, so a render running meanwhile
 * reads each one whole.  A thread's shard is freed when it exits.  Threads
 * beyond the owned shards count into one shared shard with atomic adds.
 * Counting from a signal handler could lose a count: nothing does.
 */
#include "obs/metrics.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Counting is a single lock-free instruction, or the hot path would lock. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define CACHE_LINE 64
#define SLOTS_PER_LINE (CACHE_LINE / sizeof(uint64_t))
#define MAX_SHARDS 64 /* owned shards: one bit each in thread_owners */
/* Shards multiply the counters' memory; past this, fewer shards. */
#define SHARD_BUDGET_BYTES ((size_t)16 << 20)

/* ---- the tables as data ---- */

struct desc {
    const char *name;
    const char *help;
    enum hf_m_type type;
    enum hf_m_scope scope;
    enum hf_m_labels labels;
    enum hf_m_buckets buckets;
};

static const struct desc descs[HF__M_MAX] = {
#define DESC(id, name, type, scope, labels, buckets, help)                                         \
    [HF_M_##id] = {name, help, HF_MT_##type, HF_MS_##scope, HF_ML_##labels, HF_MB_##buckets},
    HF_METRICS_TABLE(DESC)
#undef DESC
};

struct labelset {
    const char *name;
    const char *const *values;
    const char *const *meanings;
    unsigned n;
};

#define VALUE(id, value, meaning) value,
#define MEANING(id, value, meaning) meaning,
#define SET_ARRAYS(id, name, table)                                                                \
    static const char *const values_##id[] = {table(VALUE)};                                       \
    static const char *const meanings_##id[] = {table(MEANING)};
HF_M_LABELS_TABLE(SET_ARRAYS)
#undef SET_ARRAYS
#undef MEANING
#undef VALUE

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* clang-format off */
static const struct labelset labelsets[HF__ML_MAX] = {
    [HF_ML_NONE] = {NULL, NULL, NULL, 1},
#define SET(id, name, table) [HF_ML_##id] = {name, values_##id, meanings_##id, COUNT(values_##id)},
    HF_M_LABELS_TABLE(SET)
#undef SET
};
/* clang-format on */

/* The enums in metrics.h index these arrays. */
_Static_assert(COUNT(values_CACHE) == HF__CACHE_MAX, "cache values");
_Static_assert(COUNT(values_OUTCOME) == HF__OUTCOME_MAX, "outcome values");
_Static_assert(COUNT(values_STALE_REASON) == HF__STALE_REASON_MAX, "stale reason values");
_Static_assert(COUNT(values_EVICT_REASON) == HF__EVICT_MAX, "eviction reason values");
_Static_assert(COUNT(values_TIER) == HF__TIER_MAX, "tier values");
_Static_assert(COUNT(values_RUN_RESULT) == HF__RUN_MAX, "run result values");
_Static_assert(COUNT(values_KEY_RESULT) == HF__KEY_MAX, "key result values");

struct bucketset {
    const uint64_t *le_us;
    const char *const *le_text;
    unsigned n; /* finite bounds; +Inf comes after them */
};

#define UNPAREN(...) __VA_ARGS__
#define BUCKET_ARRAYS(id, le_us, le_text)                                                          \
    static const uint64_t le_us_##id[] = {UNPAREN le_us};                                          \
    static const char *const le_text_##id[] = {UNPAREN le_text};                                   \
    _Static_assert(COUNT(le_us_##id) == COUNT(le_text_##id), "bucket bounds and texts");
HF_M_BUCKETS_TABLE(BUCKET_ARRAYS)
#undef BUCKET_ARRAYS

/* clang-format off */
static const struct bucketset bucketsets[HF__MB_MAX] = {
    [HF_MB_NONE] = {NULL, NULL, 0},
#define BSET(id, le_us, le_text) [HF_MB_##id] = {le_us_##id, le_text_##id, COUNT(le_us_##id)},
    HF_M_BUCKETS_TABLE(BSET)
#undef BSET
};
/* clang-format on */

/* ---- the registry ---- */

/*
 * Series s of metric id (s = obj * nlabel + label) occupies `width` slots
 * from off + s * width: a counter or gauge one, a histogram one per finite
 * bucket (not cumulative: an observation adds to one slot), one for +Inf
 * and one for the sum in microseconds.  Its count is the buckets' total.
 */
struct layout {
    uint32_t off; /* in each shard (counters, histograms) or in gauges */
    uint32_t nobj;
    uint32_t nlabel;
    uint32_t width;
};

struct hf_metrics {
    _Atomic uint64_t *slots; /* (nshards + 1) * stride: owned shards, then the shared one */
    _Atomic int64_t *gauges;
    size_t stride;  /* slots per shard: whole cache lines */
    size_t nshards; /* owned shards: threads with a thread number below this own one */
    size_t ngauges;
    size_t nroutes;
    char **routes;
    _Atomic unsigned shown_tiers; /* bit t: tier t is rendered */
    struct layout layout[HF__M_MAX];
};

/*
 * Thread numbers: a thread takes the lowest free number when it first counts
 * and gives it back when it exits, so the proxy's long-lived workers hold
 * the low numbers.  Thread number t owns shard t of every registry with
 * more than t shards.  NO_NUMBER: all 64 were taken (or no pthread key).
 */
#define NO_NUMBER MAX_SHARDS
static _Atomic uint64_t thread_owners; /* bit t: number t is taken */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t number_key; /* its destructor gives the number back */
static bool key_made;
/* initial-exec: read at a fixed offset from the thread pointer, not through
 * __tls_get_addr(), also when holdfast is a shared library. */
static _Thread_local unsigned thread_no
    __attribute__((tls_model("initial-exec"))); /* this thread's number + 1; 0: none yet */

static void give_back(void *value)
{
    unsigned t = (unsigned)(uintptr_t)value - 1;
    thread_no = NO_NUMBER + 1; /* a later count in this thread's exit goes to the shared shard */
    /* Release: the next owner of t sees every count this thread stored. */
    atomic_fetch_and_explicit(&thread_owners, ~((uint64_t)1 << t), memory_order_release);
}

static void make_key(void)
{
    key_made = pthread_key_create(&number_key, give_back) == 0;
}

static unsigned take_number(void)
{
    unsigned t = NO_NUMBER;
    pthread_once(&key_once, make_key);
    uint64_t cur = atomic_load_explicit(&thread_owners, memory_order_relaxed);
    while (key_made && cur != UINT64_MAX) {
        unsigned free_bit = (unsigned)__builtin_ctzll(~cur);
        uint64_t bit = (uint64_t)1 << free_bit;
        if (!atomic_compare_exchange_weak_explicit(&thread_owners, &cur, cur | bit,
                                                   memory_order_acquire, memory_order_relaxed))
            continue;
        if (pthread_setspecific(number_key, (void *)(uintptr_t)(free_bit + 1)) == 0)
            t = free_bit;
        else
            atomic_fetch_and_explicit(&thread_owners, ~bit, memory_order_release);
        break;
    }
    thread_no = t + 1;
    return t;
}

/* Add n to slot i of the calling thread's shard. */
static inline void count(const struct hf_metrics *m, size_t i, uint64_t n)
{
    unsigned t = thread_no;
    t = t != 0 ? t - 1 : take_number();
    if (t < m->nshards) {
        _Atomic uint64_t *p = &m->slots[t * m->stride + i];
        atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                              memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&m->slots[m->nshards * m->stride + i], n, memory_order_relaxed);
    }
}

/*
 * The first slot of a series in *i.  A wrong id, type, obj or label is the
 * caller's bug: it fails the assert, and where asserts are compiled out the
 * count is dropped rather than written out of bounds.
 */
static inline bool series(const struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label,
                          enum hf_m_type type, size_t *i)
{
    bool ok = (unsigned)id < HF__M_MAX && descs[id].type == type && obj < m->layout[id].nobj &&
              label < m->layout[id].nlabel;
    assert(ok);
    if (!ok)
        return false;
    const struct layout *l = &m->layout[id];
    *i = l->off + (obj * l->nlabel + label) * l->width;
    return true;
}

static size_t scope_count(enum hf_m_scope scope, size_t nroutes)
{
    switch (scope) {
    case HF_MS_ROUTE:
        return nroutes;
    case HF_MS_TIER:
        return HF__TIER_MAX;
    case HF_MS_NONE:
        break;
    }
    return 1;
}

/* Enough for a worker per core and a few helper threads, within the budget. */
static size_t default_shards(size_t stride)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = ncpu > 0 ? 2 * (size_t)ncpu : 8;
    n = n < 8 ? 8 : n > MAX_SHARDS ? MAX_SHARDS : n;
    while (n > 1 && (n + 1) * stride * sizeof(uint64_t) > SHARD_BUDGET_BYTES)
        n /= 2;
    return n;
}

static hf_err check_routes(const char *const *routes, size_t nroutes)
{
    if (nroutes > HF_METRICS_MAX_ROUTES || (nroutes > 0 && routes == NULL))
        return HF_EINVAL;
    for (size_t i = 0; i < nroutes; i++) {
        if (routes[i] == NULL || routes[i][0] == '\0' ||
            strnlen(routes[i], HF_METRICS_MAX_NAME + 1) > HF_METRICS_MAX_NAME)
            return HF_EINVAL;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(routes[i], routes[j]) == 0)
                return HF_EINVAL; /* two series would have the same labels */
        }
    }
    return HF_OK;
}

/* nshards: owned shards, or SIZE_MAX for the default. */
static hf_err create(const char *const *routes, size_t nroutes, size_t nshards,
                     struct hf_metrics **out)
{
    hf_err err = check_routes(routes, nroutes);
    if (err)
        return err;
    err = HF_ENOMEM;
    struct hf_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        goto out;

    size_t nslots = 0;
    for (unsigned id = 0; id < HF__M_MAX; id++) {
        const struct desc *d = &descs[id];
        struct layout *l = &m->layout[id];
        l->nobj = (uint32_t)scope_count(d->scope, nroutes);
        l->nlabel = labelsets[d->labels].n;
        l->width = d->type == HF_MT_HISTOGRAM ? bucketsets[d->buckets].n + 2 : 1;
        size_t *total = d->type == HF_MT_GAUGE ? &m->ngauges : &nslots;
        l->off = (uint32_t)*total;
        *total += (size_t)l->nobj * l->nlabel * l->width;
    }
    m->stride = (nslots + SLOTS_PER_LINE - 1) / SLOTS_PER_LINE * SLOTS_PER_LINE;
    if (m->stride == 0)
        m->stride = SLOTS_PER_LINE;
    m->nshards = nshards == SIZE_MAX ? default_shards(m->stride) : nshards;
    atomic_init(&m->shown_tiers, 1u << HF_TIER_MEMORY);

    size_t total = (m->nshards + 1) * m->stride;
    m->slots = aligned_alloc(CACHE_LINE, total * sizeof *m->slots);
    m->gauges = malloc((m->ngauges ? m->ngauges : 1) * sizeof *m->gauges);
    m->routes = calloc(nroutes ? nroutes : 1, sizeof *m->routes);
    if (m->slots == NULL || m->gauges == NULL || m->routes == NULL)
        goto out;
    for (size_t i = 0; i < total; i++)
        atomic_init(&m->slots[i], 0);
    for (size_t i = 0; i < m->ngauges; i++)
        atomic_init(&m->gauges[i], 0);
    for (size_t i = 0; i < nroutes; i++) {
        if ((m->routes[i] = strdup(routes[i])) == NULL)
            goto out;
        m->nroutes = i + 1;
    }
    *out = m;
    m = NULL; /* the caller's now */
    err = HF_OK;
out:
    hf_metrics_destroy(&m);
    return err;
}

hf_err hf_metrics_create(const char *const *routes, size_t nroutes, struct hf_metrics **out)
{
    return create(routes, nroutes, SIZE_MAX, out);
}

hf_err hf__metrics_create_shards(const char *const *routes, size_t nroutes, size_t nshards,
                                 struct hf_metrics **out)
{
    if (nshards > MAX_SHARDS)
        return HF_EINVAL;
    return create(routes, nroutes, nshards, out);
}

void hf_metrics_destroy(struct hf_metrics **mp)
{
    struct hf_metrics *m = *mp;
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nroutes; i++)
        free(m->routes[i]);
    free(m->routes);
    free(m->gauges);
    free(m->slots);
    free(m);
    *mp = NULL;
}

void hf_metrics_show_tier(struct hf_metrics *m, enum hf_m_tier t)
{
    assert((unsigned)t < HF__TIER_MAX);
    if ((unsigned)t < HF__TIER_MAX)
        atomic_fetch_or_explicit(&m->shown_tiers, 1u << t, memory_order_relaxed);
}

long hf_metrics_route_index(const struct hf_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->nroutes; i++) {
        if (strcmp(m->routes[i], name) == 0)
            return (long)i;
    }
    return -1;
}

/* ---- counting: the hot path ---- */

void hf_metric_inc(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label)
{
    size_t i;
    if (series(m, id, obj, label, HF_MT_COUNTER, &i))
        count(m, i, 1);
}

void hf_metric_add(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label, uint64_t n)
{
    size_t i;
    if (series(m, id, obj, label, HF_MT_COUNTER, &i))
        count(m, i, n);
}

void hf_metric_set(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label, int64_t v)
{
    size_t i;
    if (series(m, id, obj, label, HF_MT_GAUGE, &i))
        atomic_store_explicit(&m->gauges[i], v, memory_order_relaxed);
}

void hf_metric_gauge_add(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label,
                         int64_t delta)
{
    size_t i;
    if (series(m, id, obj, label, HF_MT_GAUGE, &i))
        atomic_fetch_add_explicit(&m->gauges[i], delta, memory_order_relaxed);
}

void hf_metric_observe_us(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label,
                          uint64_t us)
{
    size_t i;
    if (!series(m, id, obj, label, HF_MT_HISTOGRAM, &i))
        return;
    const struct bucketset *b = &bucketsets[descs[id].buckets];
    /* Linear: a dozen bounds, and most requests stop at the first ones. */
    unsigned k = 0;
    while (k < b->n && us > b->le_us[k])
        k++;
    count(m, i + k, 1);
    count(m, i + b->n + 1, us);
}

static enum hf_m_outcome outcome_of_status(int status)
{
    if (status == 429)
        return HF_OUTCOME_HTTP_429;
    if (status >= 500 && status <= 599)
        return HF_OUTCOME_HTTP_5XX;
    if (status >= 400 && status <= 499)
        return HF_OUTCOME_HTTP_4XX;
    if (status >= 100 && status <= 399)
        return HF_OUTCOME_OK;
    return HF_OUTCOME_ERROR; /* not a status code: a malformed answer */
}

enum hf_m_outcome hf_metric_outcome(hf_err err, int status)
{
    /* As in hf_classify(): the status, when there is one, is the more precise. */
    if (err == HF_OK || ((err == HF_HTTP_4XX || err == HF_HTTP_5XX || err == HF_HTTP_429) &&
                         status >= 400 && status <= 599))
        return outcome_of_status(status);
    switch (err) {
    case HF_HTTP_429:
        return HF_OUTCOME_HTTP_429;
    case HF_HTTP_5XX:
        return HF_OUTCOME_HTTP_5XX;
    case HF_HTTP_4XX:
        return HF_OUTCOME_HTTP_4XX;
    case HF_UPSTREAM_TIMEOUT:
    case HF_DEADLINE:
        return HF_OUTCOME_TIMEOUT;
    case HF_UPSTREAM_CONNECT:
    case HF_UPSTREAM_RESOLVE:
    case HF_UPSTREAM_TLS:
        return HF_OUTCOME_CONNECT_ERROR;
    default:
        return HF_OUTCOME_ERROR;
    }
}

const char *hf_metric_label_value(enum hf_m_labels set, unsigned v)
{
    if (set == HF_ML_NONE || (unsigned)set >= HF__ML_MAX || v >= labelsets[set].n)
        return NULL;
    return labelsets[set].values[v];
}

/* ---- reading ---- */

static uint64_t sum_shards(const struct hf_metrics *m, size_t i)
{
    uint64_t v = 0;
    for (size_t s = 0; s <= m->nshards; s++)
        v += atomic_load_explicit(&m->slots[s * m->stride + i], memory_order_relaxed);
    return v;
}

uint64_t hf_metric_value(const struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label)
{
    if ((unsigned)id >= HF__M_MAX || descs[id].type == HF_MT_GAUGE)
        return 0;
    const struct layout *l = &m->layout[id];
    if (obj >= l->nobj || label >= l->nlabel)
        return 0;
    size_t i = l->off + (obj * l->nlabel + label) * l->width;
    if (descs[id].type == HF_MT_COUNTER)
        return sum_shards(m, i);
    uint64_t n = 0; /* a histogram: its buckets and +Inf, not its sum */
    for (unsigned k = 0; k <= bucketsets[descs[id].buckets].n; k++)
        n += sum_shards(m, i + k);
    return n;
}

size_t hf_metrics_route_count(const struct hf_metrics *m)
{
    return m->nroutes;
}

const char *hf_metrics_route_name(const struct hf_metrics *m, size_t i)
{
    return i < m->nroutes ? m->routes[i] : NULL;
}

void hf_metrics_carry(struct hf_metrics *to, const struct hf_metrics *from)
{
    int32_t map[HF_METRICS_MAX_ROUTES]; /* from's route index -> to's, or -1 */
    for (size_t r = 0; r < from->nroutes; r++)
        map[r] = (int32_t)hf_metrics_route_index(to, from->routes[r]);
    /* Counts go into to's shared shard: atomic adds, safe while threads count. */
    _Atomic uint64_t *shared = to->slots + to->nshards * to->stride;

    for (unsigned id = 0; id < HF__M_MAX; id++) {
        const struct layout *lf = &from->layout[id], *lt = &to->layout[id];
        size_t n = (size_t)lf->nlabel * lf->width; /* slots per obj: the same in both */
        for (size_t o = 0; o < lf->nobj; o++) {
            long ot = descs[id].scope == HF_MS_ROUTE ? map[o] : (long)o;
            if (ot < 0)
                continue;
            size_t fi = lf->off + o * n, ti = lt->off + (size_t)ot * n;
            for (size_t k = 0; k < n; k++) {
                if (descs[id].type == HF_MT_GAUGE) {
                    int64_t v = atomic_load_explicit(&from->gauges[fi + k], memory_order_relaxed);
                    atomic_store_explicit(&to->gauges[ti + k], v, memory_order_relaxed);
                } else {
                    atomic_fetch_add_explicit(&shared[ti + k], sum_shards(from, fi + k),
                                              memory_order_relaxed);
                }
            }
        }
    }
}

/* ---- rendering ---- */

/* A writer with a sticky error: after the first failure it writes nothing. */
struct out {
    struct hf_buf *b;
    hf_err err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->err == HF_OK)
        o->err = hf_buf_add(o->b, s, n);
}

static void put_s(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(o, tmp + i, sizeof tmp - i);
}

static void put_i64(struct out *o, int64_t v)
{
    if (v < 0) {
        put(o, "-", 1);
        put_u64(o, (uint64_t)0 - (uint64_t)v); /* INT64_MIN too */
        return;
    }
    put_u64(o, (uint64_t)v);
}

/* Microseconds as seconds, exactly: "0", "0.0015", "2". */
static void put_seconds(struct out *o, uint64_t us)
{
    put_u64(o, us / 1000000);
    uint32_t frac = (uint32_t)(us % 1000000);
    if (frac == 0)
        return;
    char tmp[8] = ".";
    int len = 6;
    while (frac % 10 == 0) {
        frac /= 10;
        len--;
    }
    for (int i = len; i >= 1; i--) {
        tmp[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    put(o, tmp, (size_t)len + 1);
}

/*
 * The exposition format's escapes: a label value escapes backslash, double
 * quote and newline; a HELP text backslash and newline.
 */
static void put_escaped(struct out *o, const char *s, bool quote)
{
    const char *run = s;
    for (; *s != '\0'; s++) {
        const char *esc;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        else
            continue;
        put(o, run, (size_t)(s - run));
        put(o, esc, 2);
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
}

static void put_label(struct out *o, char *sep, const char *name, const char *value)
{
    put(o, sep, 1);
    *sep = ',';
    put_s(o, name);
    put(o, "=\"", 2);
    put_escaped(o, value, true);
    put(o, "\"", 1);
}

/* "name_suffix{route=\"news\",cache=\"hit\",le=\"0.1\"} " */
static void put_series(struct out *o, const struct hf_metrics *m, enum hf_metric id,
                       const char *suffix, size_t obj, unsigned label, const char *le)
{
    const struct desc *d = &descs[id];
    char sep = '{';
    put_s(o, d->name);
    put_s(o, suffix);
    if (d->scope == HF_MS_ROUTE)
        put_label(o, &sep, "route", m->routes[obj]);
    else if (d->scope == HF_MS_TIER)
        put_label(o, &sep, labelsets[HF_ML_TIER].name, labelsets[HF_ML_TIER].values[obj]);
    if (d->labels != HF_ML_NONE)
        put_label(o, &sep, labelsets[d->labels].name, labelsets[d->labels].values[label]);
    if (le != NULL)
        put_label(o, &sep, "le", le);
    if (sep == ',')
        put(o, "}", 1);
    put(o, " ", 1);
}

static void render_histogram(struct out *o, const struct hf_metrics *m, enum hf_metric id,
                             size_t obj, unsigned label, size_t i)
{
    const struct bucketset *b = &bucketsets[descs[id].buckets];
    uint64_t cumulative = 0;
    for (unsigned k = 0; k <= b->n; k++) {
        cumulative += sum_shards(m, i + k);
        put_series(o, m, id, "_bucket", obj, label, k < b->n ? b->le_text[k] : "+Inf");
        put_u64(o, cumulative);
        put(o, "\n", 1);
    }
    put_series(o, m, id, "_sum", obj, label, NULL);
    put_seconds(o, sum_shards(m, i + b->n + 1));
    put(o, "\n", 1);
    put_series(o, m, id, "_count", obj, label, NULL);
    put_u64(o, cumulative);
    put(o, "\n", 1);
}

static const char *const type_names[] = {"counter", "gauge", "histogram"};

hf_err hf_metrics_render(const struct hf_metrics *m, struct hf_buf *out)
{
    struct out o = {out, HF_OK};
    size_t start = out->len;
    unsigned tiers = atomic_load_explicit(&m->shown_tiers, memory_order_relaxed);
    for (unsigned id = 0; id < HF__M_MAX && o.err == HF_OK; id++) {
        const struct desc *d = &descs[id];
        const struct layout *l = &m->layout[id];
        put(&o, "# HELP ", 7);
        put_s(&o, d->name);
        put(&o, " ", 1);
        put_escaped(&o, d->help, false);
        put(&o, "\n# TYPE ", 8);
        put_s(&o, d->name);
        put(&o, " ", 1);
        put_s(&o, type_names[d->type]);
        put(&o, "\n", 1);
        for (size_t obj = 0; obj < l->nobj; obj++) {
            if (d->scope == HF_MS_TIER && !(tiers & (1u << obj)))
                continue;
            for (unsigned label = 0; label < l->nlabel; label++) {
                size_t i = l->off + (obj * l->nlabel + label) * l->width;
                if (d->type == HF_MT_HISTOGRAM) {
                    render_histogram(&o, m, id, obj, label, i);
                    continue;
                }
                put_series(&o, m, id, "", obj, label, NULL);
                if (d->type == HF_MT_GAUGE)
                    put_i64(&o, atomic_load_explicit(&m->gauges[i], memory_order_relaxed));
                else
                    put_u64(&o, sum_shards(m, i));
                put(&o, "\n", 1);
            }
        }
    }
    if (o.err && out->ptr != NULL) {
        out->len = start;
        out->ptr[start] = '\0';
    }
    return o.err;
}

/* ---- docs/metrics.md ---- */

/* A Markdown table cell: a '|' would end it. */
static void md_cell(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

/* Whether metric id uses label set set, as its scope or its second label. */
static bool uses(const struct desc *d, enum hf_m_labels set)
{
    return d->labels == set || (set == HF_ML_TIER && d->scope == HF_MS_TIER);
}

static void md_users(FILE *f, bool (*match)(const struct desc *, int), int arg)
{
    const char *sep = "";
    for (unsigned id = 0; id < HF__M_MAX; id++) {
        if (match(&descs[id], arg)) {
            fprintf(f, "%s`%s`", sep, descs[id].name);
            sep = ", ";
        }
    }
}

static bool match_labels(const struct desc *d, int set)
{
    return uses(d, (enum hf_m_labels)set);
}

static bool match_buckets(const struct desc *d, int set)
{
    return d->type == HF_MT_HISTOGRAM && d->buckets == (enum hf_m_buckets)set;
}

hf_err hf_metrics_doc(FILE *f)
{
    if (f == NULL)
        return HF_EINVAL;
    fputs("# holdfast metrics\n"
          "\n"
          "<!-- Generated by hf_metrics_doc() from HF_METRICS_TABLE in src/obs/metrics.h: do not\n"
          "     edit. Regenerate: build/tests/test_metrics --write-doc docs/metrics.md -->\n"
          "\n"
          "`holdfast serve` publishes these at `GET /metrics` on its admin listener, in the\n"
          "Prometheus text format (version 0.0.4). Every series exists from start-up, at 0, for\n"
          "each configured route, each configured cache tier and each label value below, so\n"
          "`rate()` and alerts work before the first event.\n"
          "\n"
          "| metric | type | labels | meaning |\n"
          "|---|---|---|---|\n",
          f);
    for (unsigned id = 0; id < HF__M_MAX; id++) {
        const struct desc *d = &descs[id];
        fprintf(f, "| `%s` | %s | ", d->name, type_names[d->type]);
        const char *sep = "";
        if (d->scope != HF_MS_NONE) {
            fprintf(f, "`%s`", d->scope == HF_MS_ROUTE ? "route" : labelsets[HF_ML_TIER].name);
            sep = ", ";
        }
        if (d->labels != HF_ML_NONE)
            fprintf(f, "%s`%s`", sep, labelsets[d->labels].name);
        fputs(" | ", f);
        md_cell(f, d->help);
        fputs(" |\n", f);
    }

    fputs("\n## Labels\n"
          "\n"
          "`route`: the route's `name` in the configuration.\n",
          f);
    for (unsigned set = 1; set < HF__ML_MAX; set++) {
        const struct labelset *ls = &labelsets[set];
        fprintf(f, "\n`%s` (", ls->name);
        md_users(f, match_labels, (int)set);
        fputs("):\n\n| value | meaning |\n|---|---|\n", f);
        for (unsigned v = 0; v < ls->n; v++) {
            fprintf(f, "| `%s` | ", ls->values[v]);
            md_cell(f, ls->meanings[v]);
            fputs(" |\n", f);
        }
    }

    fputs("\n## Histogram buckets\n"
          "\n"
          "A histogram has the series `_bucket` (cumulative, one per upper bound `le`, in\n"
          "seconds), `_sum` (seconds) and `_count`.\n",
          f);
    for (unsigned set = 1; set < HF__MB_MAX; set++) {
        const struct bucketset *b = &bucketsets[set];
        fputc('\n', f);
        md_users(f, match_buckets, (int)set);
        fputs(": `le` =", f);
        for (unsigned k = 0; k < b->n; k++)
            fprintf(f, " %s", b->le_text[k]);
        fputs(" +Inf\n", f);
    }
    return ferror(f) ? HF_EINVAL : HF_OK;
}
