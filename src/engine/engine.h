/*
 * The engine: holdfast's request flow, shared by the library (hf_get) and
 * the proxy.  An hf_engine holds what every loop shares (routes, the cache
 * store); an hf_flow is one request's state machine, run on one loop:
 *
 *   lookup -> fresh? serve : attempt -> classify -> backoff timer -> attempt
 *          -> ... -> store + serve | stale copy | error
 *
 * hf_engine is immutable after creation and safe to share between threads
 * (its store is thread-safe).  A flow runs entirely on its loop's thread.
 */
#ifndef HF_ENGINE_H
#define HF_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/client.h>
#include <holdfast/store.h>

#include "core/schedule.h"
#include "fleet/fleet.h"
#include "limit/bucket.h"
#include "limit/pause.h"
#include "limit/quota.h"
#include "retry/breaker.h"

struct event_base;
struct hf_upstream;
struct hf_learn;

/* What a background route's refresh runs did, for /health, metrics and the
 * 503 of a miss.  Written by whoever runs the refresh, read anywhere. */
struct hf_refresh_status {
    _Atomic int64_t last_start_ms;    /* wall clock; 0: no run yet */
    _Atomic int64_t last_end_ms;      /* 0: no run ended yet */
    _Atomic int64_t last_ok_ms;       /* end of the last run whose result was ok */
    _Atomic int last_result;          /* enum hf_m_run_result of the last run that ended */
    _Atomic int64_t last_keys;        /* keys in that run */
    _Atomic int64_t last_failed;      /* of which failed (stale or missing) */
    _Atomic int64_t oldest_stored_ms; /* oldest copy among the run's keys; 0: unknown */
    _Atomic int64_t missing;          /* keys with no copy after the last run */
    _Atomic int64_t next_run_ms;      /* the scheduler's next run; 0: none in this process */
    _Atomic int running;              /* runs in progress */
};

/* What the engine learns about a route as it runs; shared by every loop
 * thread, so atomics.  Times are wall-clock ms, 0 for never. */
struct hf_route_state {
    _Atomic int64_t last_success_ms;
    _Atomic int64_t last_failure_ms;
    _Atomic int consecutive_failures;
    _Atomic int64_t degraded_since_ms; /* first failure of the current run of them; 0: healthy */
    struct hf_breaker breaker;         /* monotonic time */
    struct hf_bucket bucket;           /* monotonic time */
    struct hf_quota quota;             /* wall-clock time: windows end at 00:00 UTC */
    struct hf_pause pause;             /* wall-clock time: APIs name reset times */
    bool has_bucket, has_quota;
    /* In a fleet (store.redis): the route's whole allowance and its pause,
     * asked of Redis before every attempt while it answers (fleet_limited,
     * every route of a fleet); bucket and quota above then hold this
     * instance's share (rate and quota / fleet.size), used while it does
     * not.  fleet_quota_left: the last count Redis gave, -1 unknown. */
    struct hf_fleet_limits fleet_limits;
    bool fleet_limited;
    _Atomic int64_t fleet_quota_left;
    _Atomic int64_t fleet_quota_window; /* the start of the window that count is for */
    struct hf_refresh_status refresh;   /* background routes */
    struct hf_learn *learned;           /* keys users asked for (refresh.learn), or NULL */
    /* The oldest stale copy served in the latest wall-clock minute, for
     * GET /status: (minute since the epoch << 32) | its age in seconds;
     * 0: none yet.  Written by hf_route_note_stale(), read by the admin. */
    _Atomic uint64_t stale_served;
};

/* A stale copy stored at stored_at_ms was served at now_ms (wall clock):
 * keep the oldest of this minute.  The packing orders a newer minute above
 * an older one and, within a minute, an older copy above a younger one, so
 * a plain "raise to the max" is the whole rule.  Any thread, lock-free. */
static inline void hf_route_note_stale(struct hf_route_state *st, int64_t now_ms,
                                       int64_t stored_at_ms)
{
    if (now_ms < 0)
        return;
    int64_t age_s = now_ms > stored_at_ms ? (now_ms - stored_at_ms) / 1000 : 0;
    uint64_t v =
        (uint64_t)(now_ms / 60000) << 32 | (uint64_t)(age_s < UINT32_MAX ? age_s : UINT32_MAX);
    uint64_t cur = atomic_load_explicit(&st->stale_served, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(
                          &st->stale_served, &cur, v, memory_order_relaxed, memory_order_relaxed))
        ;
}

/* A route as the engine keeps it: an owned copy of its configuration. */
struct hf_route {
    struct hf_route_state *state;
    size_t index;    /* position in the engine's routes: the metrics' route */
    char *vary_none; /* the vary key of a request without headers (hf_get) */
    /* The proxy's path prefix as matched: cfg.prefix (or "/<name>/") without
     * its trailing '/', so "/news" for "/news/" and "" for "/". */
    char *match;
    size_t match_len;
    struct hf_route_config cfg; /* every pointer in cfg points into memory owned here */
    char **owned;               /* strings to free */
    size_t nowned;
    void *arrays[5]; /* headers, query, ignore_params, vary, refresh_keys copies */
    /* Background routes (cfg.mode): the parsed schedule, the longest a copy
     * waits between runs, and the cache keys of refresh_keys, sorted, so a
     * request can tell a listed key from one to learn. */
    bool background;
    struct hf_schedule schedule;
    int64_t refresh_interval_ms;
    char **static_keys;
    size_t nstatic_keys;
};

struct hf_inflight;
struct hf_metrics;
struct hf_reader;

struct hf_engine {
    struct hf_route *routes;
    size_t nroutes;
    struct hf_route default_route; /* for hf_request() on a client without routes */
    struct hf_store *store;
    struct hf_inflight *inflight; /* keys being fetched now, and their waiters */
    struct hf_metrics *metrics;   /* route i of the registry is routes[i] */
    bool borrowed;                /* store and inflight belong to an earlier generation */
    bool persistent;              /* the store has a file behind its memory tier */
    struct hf_store *mem;         /* that memory tier (part of store), or NULL */
    struct hf_store *shared;      /* the fleet's Redis or Memcached tier (part of store), or NULL */
    struct hf_store *disk;        /* the SQLite tier (part of store), or NULL */
    struct hf_store *back;        /* every tier below memory (part of store), or NULL */
    bool shared_redis;            /* shared is Redis (else Memcached) */
    struct hf_fleet *fleet;       /* what the fleet shares besides copies (store.redis), or NULL */
    int fleet_size;               /* fleet.size: the share of the limits while Redis is away */
    struct hf_reader *reader;     /* reads the file for persistent loops, or NULL */
    /* Where store work that waits goes (a SQLite prefix delete waits for
     * the writer thread, a shared tier for the network): the proxy's
     * janitor thread, so no worker loop blocks.  NULL: done inline (the
     * library's calls block anyway).  prefix: every key starting with key. */
    void (*defer_delete)(void *ctx, const char *key, bool prefix);
    void *defer_ctx;
};

hf_err hf_engine_create(const struct hf_config *cfg, struct hf_engine **out, char *errbuf,
                        size_t errlen);
/*
 * A new generation for a reloaded configuration: new routes (keeping, by
 * name, what the old ones learned: pauses, quota use, health) and metrics
 * (totals carried), sharing prev's store and in-flight table.  prev must
 * outlive the new engine; flows started on prev may finish on it.
 */
hf_err hf_engine_reload(const struct hf_config *cfg, struct hf_engine *prev, struct hf_engine **out,
                        char *errbuf, size_t errlen);
void hf_engine_destroy(struct hf_engine **e);
/* "ok", "degraded" (the API is failing), "paused" (rate limit or quota) or
 * "down" (the breaker is open). */
const char *hf_route_state_name(const struct hf_route *r, int64_t now_ms);
/* Requests r's quota has left now (-1: no quota): the fleet's last count
 * while Redis answers, else this process's. */
int64_t hf_route_quota_left(struct hf_engine *e, const struct hf_route *r, int64_t now_ms);
/* Write r's quota window and count to the store (no-op without a quota). */
void hf_engine_quota_save(struct hf_engine *e, const struct hf_route *r);
/* Route by name, or NULL. */
const struct hf_route *hf_engine_route(const struct hf_engine *e, const char *name);
/* Whether key (a cache key of r) is one of r's refresh.keys. */
bool hf_route_static_key(const struct hf_route *r, const char *key);
/* The store key of r's learned set ("refresh:learned:<route>"). */
void hf_route_learned_kv_key(const struct hf_route *r, char *buf, size_t len);

/* What one loop needs to run flows. */
struct hf_flow_loop {
    struct hf_engine *engine;
    struct event_base *base;
    struct hf_upstream *upstream;
    bool persistent;       /* the loop keeps running after a flow answers (the proxy's
                              workers): a flow may answer early (latency_budget) and
                              finish its fetch in the background */
    struct hf_flow *flows; /* this loop's flows (loop thread only), for abort */
};

struct hf_flow;

/*
 * Stop every flow on loop (shutdown): a request still waiting gets its
 * answer now (a stale copy, else an error), background fetches are
 * dropped.  On the loop's thread.
 */
void hf_flow_loop_abort(struct hf_flow_loop *loop);

/* Why a stale copy was served (the Cache-Status detail). */
enum hf_stale_reason {
    HF_STALE_NONE = 0,
    HF_STALE_UPSTREAM_ERROR, /* the API failed: "upstream-error" */
    HF_STALE_RATE_LIMITED,   /* the route is paused by a 429: "rate-limited" */
    HF_STALE_BREAKER_OPEN,   /* "breaker-open" */
    HF_STALE_QUOTA_SPENT,    /* "quota-spent" */
    HF_STALE_LATENCY_BUDGET, /* no answer within latency_budget: "latency-budget" */
    HF_STALE_REVALIDATING,   /* stale-while-revalidate (RFC 5861): "revalidating" */
    HF_STALE_BACKGROUND,     /* a background route's copy past its refresh interval */
};
const char *hf_stale_reason_name(enum hf_stale_reason r);

struct hf_flow_request {
    const struct hf_route *route;
    const char *method;              /* NULL: GET */
    const char *target;              /* path and query under the route's upstream base ... */
    const char *url;                 /* ... or an absolute URL (then target is NULL) */
    const struct hf_header *headers; /* the caller's request headers */
    size_t nheaders;
    const void *body;
    size_t body_len;
    const char *request_id; /* for logs; may be NULL */
    bool bypass;            /* neither read nor write the cache (e.g. Authorization) */
    bool alone;             /* fetch without joining another request's fetch */
    /* A refresh run's request: ask the API (revalidating the copy) unless
     * the copy is younger than min_age_ms, and wait for the route's token
     * rather than answer with the copy.  Never an early answer. */
    bool refresh;
    int64_t min_age_ms;
    /* A background route's `on_miss: fetch`: this request may ask the API
     * (it is sent without the client's headers, like a refresh). */
    bool fetch_once;
};

struct hf_flow_result {
    enum hf_source source;
    struct hf_entry *entry; /* the answer served (a reference the callee may take); NULL
                               when source is NONE */
    int64_t age_s;
    int attempts;
    hf_err error;          /* last upstream error, HF_OK if none */
    int error_status;      /* HTTP status of the last failed attempt */
    int64_t retry_after_s; /* when nothing was served and the API said when to retry; else -1 */
    bool stored;           /* the answer was stored */
    bool collapsed;        /* this request waited for another's fetch */
    bool forwarded;        /* a request went to the API for this answer */
    bool bypass;           /* the request could not use the cache (method, Authorization) */
    enum hf_stale_reason stale_reason;
    bool revalidated;          /* the API answered 304 to holdfast's validators */
    bool had_copy;             /* a copy was at hand when the request started */
    int64_t copy_stored_at_ms; /* and when it was stored */
    int64_t ttl_until_ms;      /* background routes: when the served copy falls behind the
                                  schedule (the Cache-Status ttl); 0: the entry's freshness */
    char detail[256];
};

/* Called exactly once per started flow, possibly before hf_flow_start()
 * returns (a fresh hit completes at once).  res is valid during the call. */
typedef void (*hf_flow_done_fn)(struct hf_flow_result *res, void *arg);

/* Start a request.  All of req is copied.  On error the callback is never
 * called and errbuf gets a one-line reason (a malformed URL, say). */
hf_err hf_flow_start(struct hf_flow_loop *loop, const struct hf_flow_request *req,
                     hf_flow_done_fn done, void *arg, char *errbuf, size_t errlen);

#endif
