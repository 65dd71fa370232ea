/*
 * The metrics registry.  One table, HF_METRICS_TABLE below, drives the
 * enum the code counts with, GET /metrics (hf_metrics_render) and
 * docs/metrics.md (hf_metrics_doc): adding a metric is adding a row.
 *
 * Every label but `route` takes values from a fixed table, so a series is
 * found by index, never by string: counting is one relaxed atomic add, with
 * no lock, no locked instruction and no allocation, from any thread:
 * counters and histograms live in per-thread shards, summed when rendered,
 * so each worker writes only its own cache lines.  Routes are
 * fixed when the registry is created; a reload creates a new registry and
 * may carry the old one's values over by route name (hf_metrics_carry).
 */
#ifndef HF_OBS_METRICS_H
#define HF_OBS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <holdfast/error.h>

#include "core/buf.h"

/*
 * X(ID, name, type, scope, labels, buckets, help)
 *
 *   type     COUNTER, GAUGE or HISTOGRAM
 *   scope    the first label: ROUTE (one series per configured route), TIER
 *            (one per cache tier) or NONE
 *   labels   a second label from HF_M_LABELS_TABLE, or NONE
 *   buckets  a bucket set from HF_M_BUCKETS_TABLE for a histogram, else NONE
 *
 * Append rows to keep the order of /metrics stable.  A change here changes
 * docs/metrics.md: tests/unit/test_metrics fails until it is regenerated.
 */
#define HF_METRICS_TABLE(X)                                                                        \
    X(REQUESTS_TOTAL, "holdfast_requests_total", COUNTER, ROUTE, CACHE, NONE,                      \
      "Requests answered, by how the cache took part.")                                            \
    X(UPSTREAM_REQUESTS_TOTAL, "holdfast_upstream_requests_total", COUNTER, ROUTE, OUTCOME, NONE,  \
      "Attempts sent to the API (retries included), by outcome.")                                  \
    X(RETRIES_TOTAL, "holdfast_retries_total", COUNTER, ROUTE, NONE, NONE,                         \
      "Attempts that were retries of a failed attempt.")                                           \
    X(RETRY_EXHAUSTED_TOTAL, "holdfast_retry_exhausted_total", COUNTER, ROUTE, NONE, NONE,         \
      "Requests that failed after their last allowed attempt (attempts or deadline used up).")     \
    X(STALE_SERVED_TOTAL, "holdfast_stale_served_total", COUNTER, ROUTE, STALE_REASON, NONE,       \
      "Stale copies served, by why (the Cache-Status detail).")                                    \
    X(COALESCED_TOTAL, "holdfast_coalesced_total", COUNTER, ROUTE, NONE, NONE,                     \
      "Requests that waited for another request's fetch of the same key instead of "               \
      "making their own.")                                                                         \
    X(BREAKER_STATE, "holdfast_breaker_state", GAUGE, ROUTE, NONE, NONE,                           \
      "Circuit breaker: 0 closed, 1 open, 2 half-open.")                                           \
    X(ROUTE_PAUSED, "holdfast_route_paused", GAUGE, ROUTE, NONE, NONE,                             \
      "1 while the route is paused by a 429, RateLimit headers or a spent quota, else 0.")         \
    X(QUOTA_REMAINING, "holdfast_quota_remaining", GAUGE, ROUTE, NONE, NONE,                       \
      "Calls left in the route's quota period; -1 when the route has no quota.")                   \
    X(DEGRADED, "holdfast_degraded", GAUGE, ROUTE, NONE, NONE,                                     \
      "1 while the route serves stale copies or errors instead of the API's answers, else 0.")     \
    X(DEGRADED_SINCE, "holdfast_degraded_since_seconds", GAUGE, ROUTE, NONE, NONE,                 \
      "Unix time at which the route became degraded; 0 while it is not.")                          \
    X(CACHE_ENTRIES, "holdfast_cache_entries", GAUGE, TIER, NONE, NONE,                            \
      "Copies held by the cache tier.")                                                            \
    X(CACHE_BYTES, "holdfast_cache_bytes", GAUGE, TIER, NONE, NONE,                                \
      "Bytes held by the cache tier.")                                                             \
    X(CACHE_EVICTIONS_TOTAL, "holdfast_cache_evictions_total", COUNTER, TIER, EVICT_REASON, NONE,  \
      "Copies removed from the cache tier by holdfast, by reason.")                                \
    X(REQUEST_DURATION, "holdfast_request_duration_seconds", HISTOGRAM, ROUTE, CACHE, LATENCY,     \
      "Time from a request's arrival to its answer, by how the cache took part.")                  \
    X(UPSTREAM_DURATION, "holdfast_upstream_duration_seconds", HISTOGRAM, ROUTE, NONE, LATENCY,    \
      "Time one attempt to the API took, failed attempts included.")                               \
    X(REFRESH_RUNS_TOTAL, "holdfast_refresh_runs_total", COUNTER, ROUTE, RUN_RESULT, NONE,         \
      "Refresh runs of a background route that ended, by result.")                                 \
    X(REFRESH_KEYS_TOTAL, "holdfast_refresh_keys_total", COUNTER, ROUTE, KEY_RESULT, NONE,         \
      "Keys handled by refresh runs, by result.")                                                  \
    X(REFRESH_LAST_SUCCESS, "holdfast_refresh_last_success_timestamp_seconds", GAUGE, ROUTE, NONE, \
      NONE, "Unix time at which the route's last refresh run with result ok ended; 0: never.")     \
    X(REFRESH_DURATION, "holdfast_refresh_duration_seconds", HISTOGRAM, ROUTE, NONE, RUN,          \
      "Time a refresh run took, from its first key to its last.")                                  \
    X(STORE_UP, "holdfast_store_up", GAUGE, TIER, NONE, NONE,                                      \
      "1 while the cache tier answers, 0 while it is unreachable (served around it).")             \
    X(STORE_ERRORS_TOTAL, "holdfast_store_errors_total", COUNTER, TIER, NONE, NONE,                \
      "Operations on the cache tier that failed (connection lost, timeouts, bad replies).")

/*
 * Label value tables: X(ID, "value", "meaning").  Values are part of the
 * product (dashboards and alerts name them): append only.
 */
#define HF_M_CACHE_TABLE(X)                                                                        \
    X(HIT, "hit", "a fresh copy from the cache; the API was not asked")                            \
    X(MISS, "miss", "the API's answer, also when another request's fetch brought it")              \
    X(STALE, "stale", "a stale copy, because the API failed or the route is paused")               \
    X(ERROR, "error", "nothing to serve: holdfast answered with a problem+json error")             \
    X(BYPASS, "bypass", "passed to the API around the cache (unsafe method, Authorization)")

#define HF_M_OUTCOME_TABLE(X)                                                                      \
    X(OK, "ok", "an HTTP answer below 400")                                                        \
    X(TIMEOUT, "timeout", "no answer within the route's timeout or deadline")                      \
    X(CONNECT_ERROR, "connect_error", "no connection: DNS, TCP or TLS failed")                     \
    X(HTTP_429, "http_429", "the API answered 429 Too Many Requests")                              \
    X(HTTP_5XX, "http_5xx", "the API answered with a server error")                                \
    X(HTTP_4XX, "http_4xx", "the API answered with another client error")                          \
    X(ERROR, "error",                                                                              \
      "any other failure: connection lost mid-answer, malformed answer, "                          \
      "answer over max_body")

#define HF_M_STALE_REASON_TABLE(X)                                                                 \
    X(UPSTREAM_ERROR, "upstream-error", "the API failed: error answers, timeouts, no connection")  \
    X(RATE_LIMITED, "rate-limited", "the route is paused by a 429 or by RateLimit headers")        \
    X(BREAKER_OPEN, "breaker-open", "the route's circuit breaker is open")                         \
    X(QUOTA_SPENT, "quota-spent", "the route's quota for the period is spent")                     \
    X(LATENCY_BUDGET, "latency-budget", "the API did not answer within latency_budget")            \
    X(REVALIDATING, "revalidating",                                                                \
      "within the API's stale-while-revalidate window, refreshed in the background")               \
    X(BACKGROUND, "background",                                                                    \
      "a background route's copy older than its refresh interval: the schedule is late or "        \
      "failing")

#define HF_M_EVICT_REASON_TABLE(X)                                                                 \
    X(SIZE, "size", "least recently used, to keep the tier within its size")                       \
    X(EXPIRED, "expired", "past its stale window, or older than store.keep")

#define HF_M_RUN_RESULT_TABLE(X)                                                                   \
    X(OK, "ok", "every key was refreshed, revalidated or still young enough to skip")              \
    X(DEGRADED, "degraded", "some keys failed; their stale copies were kept")                      \
    X(FAILED, "failed", "some keys failed and have no copy at all")

#define HF_M_KEY_RESULT_TABLE(X)                                                                   \
    X(REFRESHED, "refreshed", "a new copy was stored")                                             \
    X(NOT_MODIFIED, "not_modified", "the API answered 304: the copy was revalidated")              \
    X(SKIPPED, "skipped", "the copy was young enough (refreshed by another run or process)")       \
    X(STALE, "stale", "the refresh failed; the old copy was kept")                                 \
    X(MISSING, "missing", "the refresh failed and there is no copy")

#define HF_M_TIER_TABLE(X)                                                                         \
    X(MEMORY, "memory", "the in-process LRU")                                                      \
    X(SQLITE, "sqlite", "the SQLite file (store.path)")                                            \
    X(REDIS, "redis", "the shared Redis (store.redis)")                                            \
    X(MEMCACHED, "memcached", "the shared Memcached (store.memcached)")

/* X(ID, label name, value table) */
#define HF_M_LABELS_TABLE(X)                                                                       \
    X(CACHE, "cache", HF_M_CACHE_TABLE)                                                            \
    X(OUTCOME, "outcome", HF_M_OUTCOME_TABLE)                                                      \
    X(STALE_REASON, "reason", HF_M_STALE_REASON_TABLE)                                             \
    X(EVICT_REASON, "reason", HF_M_EVICT_REASON_TABLE)                                             \
    X(TIER, "tier", HF_M_TIER_TABLE)                                                               \
    X(RUN_RESULT, "result", HF_M_RUN_RESULT_TABLE)                                                 \
    X(KEY_RESULT, "result", HF_M_KEY_RESULT_TABLE)

/* X(ID, upper bounds in microseconds, the same as they appear in `le`) */
#define HF_M_BUCKETS_TABLE(X)                                                                      \
    X(LATENCY,                                                                                     \
      (1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,         \
       10000000, 30000000),                                                                        \
      ("0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",     \
       "30"))                                                                                      \
    X(RUN, (100000, 1000000, 5000000, 15000000, 60000000, 300000000, 900000000, 3600000000),       \
      ("0.1", "1", "5", "15", "60", "300", "900", "3600"))

enum hf_metric {
#define HF__M_ENUM(id, name, type, scope, labels, buckets, help) HF_M_##id,
    HF_METRICS_TABLE(HF__M_ENUM)
#undef HF__M_ENUM
        HF__M_MAX
};

enum hf_m_type { HF_MT_COUNTER, HF_MT_GAUGE, HF_MT_HISTOGRAM };
enum hf_m_scope { HF_MS_NONE, HF_MS_ROUTE, HF_MS_TIER };

enum hf_m_labels {
    HF_ML_NONE = 0,
#define HF__ML_ENUM(id, name, values) HF_ML_##id,
    HF_M_LABELS_TABLE(HF__ML_ENUM)
#undef HF__ML_ENUM
        HF__ML_MAX
};

enum hf_m_buckets {
    HF_MB_NONE = 0,
#define HF__MB_ENUM(id, le_us, le_text) HF_MB_##id,
    HF_M_BUCKETS_TABLE(HF__MB_ENUM)
#undef HF__MB_ENUM
        HF__MB_MAX
};

/* The `cache` label of holdfast_requests_total: HF_CACHE_HIT ... */
enum hf_m_cache {
#define HF__M_CACHE(id, value, meaning) HF_CACHE_##id,
    HF_M_CACHE_TABLE(HF__M_CACHE)
#undef HF__M_CACHE
        HF__CACHE_MAX
};

/* The `outcome` of an attempt to the API: HF_OUTCOME_OK ... (hf_metric_outcome). */
enum hf_m_outcome {
#define HF__M_OUTCOME(id, value, meaning) HF_OUTCOME_##id,
    HF_M_OUTCOME_TABLE(HF__M_OUTCOME)
#undef HF__M_OUTCOME
        HF__OUTCOME_MAX
};

/* Why a stale copy was served: HF_STALE_REASON_UPSTREAM_ERROR ... */
enum hf_m_stale_reason {
#define HF__M_STALE(id, value, meaning) HF_STALE_REASON_##id,
    HF_M_STALE_REASON_TABLE(HF__M_STALE)
#undef HF__M_STALE
        HF__STALE_REASON_MAX
};

/* Why a cache tier removed a copy: HF_EVICT_SIZE, HF_EVICT_EXPIRED. */
enum hf_m_evict_reason {
#define HF__M_EVICT(id, value, meaning) HF_EVICT_##id,
    HF_M_EVICT_REASON_TABLE(HF__M_EVICT)
#undef HF__M_EVICT
        HF__EVICT_MAX
};

/* Cache tiers, the `obj` of tier metrics: HF_TIER_MEMORY ... */
enum hf_m_tier {
#define HF__M_TIER(id, value, meaning) HF_TIER_##id,
    HF_M_TIER_TABLE(HF__M_TIER)
#undef HF__M_TIER
        HF__TIER_MAX
};

/* The result of a refresh run: HF_RUN_OK ...; of one key: HF_KEY_REFRESHED ... */
enum hf_m_run_result {
#define HF__M_RUN(id, value, meaning) HF_RUN_##id,
    HF_M_RUN_RESULT_TABLE(HF__M_RUN)
#undef HF__M_RUN
        HF__RUN_MAX
};
enum hf_m_key_result {
#define HF__M_KEY(id, value, meaning) HF_KEY_##id,
    HF_M_KEY_RESULT_TABLE(HF__M_KEY)
#undef HF__M_KEY
        HF__KEY_MAX
};

#define HF_METRICS_MAX_ROUTES 1024
#define HF_METRICS_MAX_NAME 255 /* bytes in a route name */

struct hf_metrics; /* opaque; thread-safe */

/*
 * Create a registry for routes[0..nroutes) (route index i is routes[i];
 * names are copied).  Every series starts at 0.  On HF_OK *out owns it
 * (hf_metrics_destroy).  HF_EINVAL: more than HF_METRICS_MAX_ROUTES routes,
 * or a name NULL, empty, longer than HF_METRICS_MAX_NAME or repeated.
 * HF_ENOMEM.
 */
hf_err hf_metrics_create(const char *const *routes, size_t nroutes, struct hf_metrics **out);
/* Destroy *m and set *m to NULL; NULL is a no-op.  No thread may still count into it. */
void hf_metrics_destroy(struct hf_metrics **m);

/*
 * Show tier t's series in /metrics (counting into a hidden tier is allowed
 * and kept).  Only HF_TIER_MEMORY is shown at first: a tier that is not
 * configured must not look like one that is down.  Call before rendering.
 */
void hf_metrics_show_tier(struct hf_metrics *m, enum hf_m_tier t);

/* The index of the route called name, or -1. */
long hf_metrics_route_index(const struct hf_metrics *m, const char *name);

/*
 * Counting.  obj is the route index for ROUTE metrics, an enum hf_m_tier for
 * TIER metrics, 0 otherwise; label is the value of the metric's second label
 * (HF_CACHE_HIT, HF_OUTCOME_TIMEOUT, ...), 0 when it has none.  A wrong
 * type, obj or label is a programming error and fails an assert (with
 * NDEBUG the count is dropped).  Any thread, no lock, no allocation.
 */
void hf_metric_inc(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label);
void hf_metric_add(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label, uint64_t n);
/* Gauges: set to v, or move by delta (for a value several threads keep). */
void hf_metric_set(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label, int64_t v);
void hf_metric_gauge_add(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label,
                         int64_t delta);
/* Histograms: one observation of us microseconds. */
void hf_metric_observe_us(struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label,
                          uint64_t us);

/* The outcome label of one attempt to the API: err is its transport result
 * (HF_OK when an HTTP answer arrived, then status is its code).  Refusals
 * that sent nothing (HF_RATE_LIMITED, HF_CIRCUIT_OPEN, ...) are no attempt. */
enum hf_m_outcome hf_metric_outcome(hf_err err, int status);

/* The string of value v of a label set ("hit", "timeout", "memory"); NULL when out of range. */
const char *hf_metric_label_value(enum hf_m_labels set, unsigned v);

/*
 * Reading, for pages drawn from the counts (GET /status): the value of a
 * counter series now, summed over the shards as /metrics renders it; of a
 * histogram series, its observation count (_count).  obj and label as for
 * counting.  A gauge, or an id, obj or label out of range, reads 0 (no
 * assert: a reader may ask by table).  Any thread, no lock; a count made
 * meanwhile may or may not be in it.
 */
uint64_t hf_metric_value(const struct hf_metrics *m, enum hf_metric id, size_t obj, unsigned label);
/* The registry's routes: how many, and the name of route i (NULL past the end). */
size_t hf_metrics_route_count(const struct hf_metrics *m);
const char *hf_metrics_route_name(const struct hf_metrics *m, size_t i);

/*
 * Add from's counters and histograms to to's, and copy its gauges, for every
 * route the two share by name and for every tier: a reload keeps its totals.
 * to may be in use; counts made into from after the call are not carried,
 * and a gauge set in to meanwhile is overwritten.
 */
void hf_metrics_carry(struct hf_metrics *to, const struct hf_metrics *from);

/*
 * Append every series to out in the Prometheus text exposition format
 * 0.0.4: families in table order, then routes (or shown tiers) in order,
 * then label values in order; zero-valued series included: about 120
 * lines, 9 KB, per route.  Runs alongside counting threads; each value is
 * read once, so a histogram's _sum may be an observation or two apart from
 * its buckets (its _count is always its +Inf bucket).  HF_BODY_TOO_LARGE
 * when out's max is reached, HF_ENOMEM; on error out is left as it was.
 */
hf_err hf_metrics_render(const struct hf_metrics *m, struct hf_buf *out);

/* docs/metrics.md: the table as Markdown.  HF_EINVAL when out is NULL or a write failed. */
hf_err hf_metrics_doc(FILE *out);

/* Internal, for tests and benchmarks: create with nshards owned shards (0..64; 0: every
 * thread counts into the shared shard with atomic adds). */
hf_err hf__metrics_create_shards(const char *const *routes, size_t nroutes, size_t nshards,
                                 struct hf_metrics **out);

#endif
