/*
 * holdfast client: the resilient fetch.
 *
 *   hf_get(client, "news", "/latest?country=us", &resp)
 *
 * returns the cached copy while it is fresh, else asks the API (retrying what
 * is worth retrying), stores a good answer, and when the API fails serves the
 * last good copy within the route's stale window.  resp says which, how old,
 * how many attempts it took and why the API failed.
 *
 * A client is thread-safe: any number of threads may call hf_get() and
 * hf_request() on one client at once.  Each blocking call runs holdfast's
 * event-driven request machine (the one `holdfast serve` runs) on a private
 * event loop until the request completes.
 */
#ifndef HOLDFAST_CLIENT_H
#define HOLDFAST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>
#include <holdfast/retry.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hf_header {
    const char *name;
    const char *value;
};

#define HF_FOREVER INT64_MAX /* a stale_for_ms that never ends */

struct hf_route_config {
    const char *name;                /* route name, used in cache keys, logs and metrics */
    const char *prefix;              /* proxy only: request path prefix, e.g. "/news/" */
    const char *upstream;            /* API base URL, e.g. "https://api.example.com/v1/" */
    const struct hf_header *headers; /* injected into every upstream request (secrets) */
    size_t nheaders;
    const struct hf_header *query; /* injected query parameters (secrets) */
    size_t nquery;
    int64_t fresh_for_ms; /* < 0: freshness from the API's Cache-Control/Expires */
    int64_t stale_for_ms; /* how long past freshness a copy may be a fallback; HF_FOREVER */
    int64_t timeout_ms;   /* per attempt */
    int64_t connect_timeout_ms;
    struct hf_retry_policy retry;     /* attempts, backoff, jitter, deadline, rate interval */
    int64_t cache_404_for_ms;         /* > 0: store 404 answers this long */
    const char *const *ignore_params; /* query parameters left out of the cache key */
    size_t nignore_params;
    bool tls_verify;           /* default true; false logs a warning */
    size_t max_body;           /* bytes; answers larger fail with HF_BODY_TOO_LARGE (8 MB) */
    bool store_private;        /* store answers marked private / no-store anyway */
    int64_t latency_budget_ms; /* > 0: with a stale copy at hand and no answer after this
                                  long, serve the copy; the fetch goes on and updates the cache */
    int64_t rate_limit_count;  /* token bucket: rate_limit_count requests per rate_limit_per_ms */
    int64_t rate_limit_per_ms; /* 0: no rate limit */
    int rate_limit_burst;      /* bucket size (the config fills in rate_limit_count when unset) */
    int64_t quota_count;       /* at most quota_count requests per quota_per_ms (200/1d) */
    int64_t quota_per_ms;      /* 0: no quota */
    int breaker_failures;      /* consecutive failed attempts that open the breaker; 0: none (5) */
    int64_t breaker_cooldown_ms; /* how long it stays open before one probe (30 s) */
    const char *const *vary;     /* request headers that split the cache key (besides Vary) */
    size_t nvary;
    bool cache_authorized; /* serve and store requests carrying Authorization (false) */
    /* Background mode: a schedule refreshes the route's keys and user
     * requests are served from the cache only, so API usage does not follow
     * traffic.  See README, "Background refresh". */
    int mode;                        /* enum hf_route_mode */
    const char *refresh_every;       /* "3h" (slots at multiples of it since the epoch) or a
                                        cron expression, "0 9,17 * * *" (UTC) */
    const char *const *refresh_keys; /* paths (and queries) under the route to refresh */
    size_t nrefresh_keys;
    int64_t refresh_learn_ms; /* also refresh keys users asked for this recently; 0: off */
    int refresh_max_keys;     /* bound on learned keys (500) */
    int refresh_on_miss;      /* enum hf_on_miss */
};

enum hf_route_mode {
    HF_MODE_ON_DEMAND = 0, /* a request without a fresh copy asks the API */
    HF_MODE_BACKGROUND,    /* only the refresh schedule asks the API */
};

enum hf_on_miss {
    HF_ON_MISS_REJECT = 0, /* a key with no copy yet: 503, saying when the next run is */
    HF_ON_MISS_FETCH,      /* fetch it once on demand; it joins the learned keys */
};

/* Fill r with the defaults (fresh_for 10m, stale_for 7d, timeout 10s, ...). */
void hf_route_config_default(struct hf_route_config *r);

struct hf_config {
    const struct hf_route_config *routes;
    size_t nroutes;
    const char *store;         /* "memory:", "sqlite:PATH" or PATH; NULL: memory only */
    size_t memory_bytes;       /* memory tier bound (64 MB) */
    size_t max_size_bytes;     /* persistent tier bound (1 GB); 0: unbounded */
    int64_t keep_ms;           /* delete copies stored longer ago than this (0: keep) */
    const char *listen;        /* proxy listener "HOST:PORT" (127.0.0.1:8080) */
    const char *admin;         /* admin listener "HOST:PORT" (127.0.0.1:8081) */
    const char *static_dir;    /* files served where no route matches (serve); NULL: none */
    int workers;               /* event-loop threads; 0: one per core */
    const char *log_level;     /* "debug", "info", "warn", "error" or "off" (info) */
    const char *log_format;    /* "json" or "text" (json) */
    int64_t degraded_after_ms; /* alert when a route stays degraded this long; 0: never (5m) */
    /* A fleet of instances sharing one cache: a shared tier between the
     * memory tier and the file (see README, "Running several instances"). */
    const char *store_redis;     /* "redis://..." or "redis+unix:///PATH"; NULL: none */
    const char *store_memcached; /* "memcached://HOST:PORT[,HOST:PORT]"; NULL: none */
    int fleet_size;              /* instances sharing the store, to split limits while
                                    Redis is unreachable (1) */
};

void hf_config_default(struct hf_config *c);

enum hf_source {
    HF_SOURCE_NONE = 0, /* nothing could be served (see error) */
    HF_SOURCE_FRESH,    /* fresh copy from the cache; the API was not asked */
    HF_SOURCE_ORIGIN,   /* the API's answer, just received */
    HF_SOURCE_STALE,    /* a stale copy, because the API failed (see error) */
};
/* "none", "fresh", "origin", "stale" */
const char *hf_source_name(enum hf_source s);

struct hf_response {
    int status;          /* HTTP status served; 0 when source is NONE */
    const char *headers; /* "Name: value\r\n" lines of the served answer */
    size_t headers_len;
    const char *body; /* body of the served answer (NUL-terminated) */
    size_t body_len;
    enum hf_source source;
    int64_t age_s;          /* how old the served copy is (0 for ORIGIN) */
    int64_t stored_at_ms;   /* wall clock when the served copy was received */
    int attempts;           /* upstream attempts made by this call */
    hf_err error;           /* last upstream error (HF_OK if none) */
    int error_status;       /* HTTP status of the last failed attempt, or 0 */
    char error_detail[256]; /* one line naming what failed, or "" */
    /* private */
    void *priv_;
};

/* Release what *r holds and zero it.  Safe on a zeroed response. */
void hf_response_free(struct hf_response *r);

/* Find a header in r (case-insensitive name); copies at most len-1 bytes into
 * buf; returns false when absent. */
bool hf_response_header(const struct hf_response *r, const char *name, char *buf, size_t len);

struct hf_client;

/*
 * Create a client from cfg (copied: cfg may be freed after the call).
 * errbuf (if not NULL) gets a one-line reason on failure.
 * On HF_OK *out owns the client (hf_client_destroy).
 */
hf_err hf_client_create(const struct hf_config *cfg, struct hf_client **out, char *errbuf,
                        size_t errlen);
/*
 * Delete stored copies past their stale window or older than keep_ms, then
 * evict the least recently used ones until the store is within its size
 * bounds.  Blocks while the store works (a SQLite store: one transaction);
 * call it from a thread of your own, or between requests.
 */
hf_err hf_client_sweep(struct hf_client *c);

/*
 * Where the library's log lines (one JSON object each: retries, stale copies
 * served, store trouble) go: the least level shown ("debug", "info", "warn",
 * "error" or "off") and the file descriptor written to.  Process-wide; call
 * before creating clients.  Default: "warn" to standard error.  HF_EINVAL
 * for an unknown level.
 */
hf_err hf_log_setup(const char *level, int fd);

/* Destroy *c (flushing the store) and set *c to NULL; NULL is a no-op. */
void hf_client_destroy(struct hf_client **c);

/*
 * GET path_and_query under route's upstream base, through the cache.
 * Returns HF_OK when something was served (resp->source != NONE; a 4xx from
 * the API counts as served), else the reason nothing could be (also in
 * resp->error).  resp must be released with hf_response_free() either way.
 */
hf_err hf_get(struct hf_client *c, const char *route, const char *path_and_query,
              struct hf_response *resp);

struct hf_request {
    const char *method; /* "GET" when NULL */
    const char *url;    /* absolute http(s) URL */
    const struct hf_header *headers;
    size_t nheaders;
    const void *body;
    size_t body_len;
    const char *route; /* route whose policy applies; NULL: the first route, or
                          built-in defaults when the client has none */
};

/* The lower-level call: a full request, same flow and same rules as hf_get(). */
hf_err hf_request(struct hf_client *c, const struct hf_request *req, struct hf_response *resp);

/* What one refresh run did, key by key (hf_client_refresh). */
struct hf_refresh_counts {
    size_t refreshed;    /* a new copy was stored */
    size_t not_modified; /* the API answered 304: the copy was revalidated */
    size_t skipped;      /* the copy was younger than min_age_ms */
    size_t stale;        /* the refresh failed; the old copy is kept */
    size_t missing;      /* the refresh failed and there is no copy */
};

/*
 * Background routes (mode HF_MODE_BACKGROUND): fetch every key of route
 * (every background route when route is NULL) once, as `holdfast refresh`
 * does: paced by the route's rate_limit, retried by its policy, revalidated
 * with the copy's validators, old copies kept on failure.  Keys whose copy
 * is younger than min_age_ms are skipped (0: refresh all).  Blocks until
 * the run ends; counts (may be NULL) gets the totals.  HF_OK when the run
 * took place (read counts for how it went), HF_NOT_FOUND when route is not
 * a background route of c (or c has none), HF_ENOMEM.
 */
hf_err hf_client_refresh(struct hf_client *c, const char *route, int64_t min_age_ms,
                         struct hf_refresh_counts *counts);

#ifdef __cplusplus
}
#endif

#endif
