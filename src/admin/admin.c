/*
 * Admin endpoints; see admin.h.  Nothing here prints a secret: route
 * configurations are summarised by name and upstream host only, never by
 * their injected headers or query parameters.
 */
#include "admin/admin.h"
#include "admin/status.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/store_impl.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/listen.h"
#include "engine/engine.h"
#include "engine/learn.h"
#include "engine/scheduler.h"
#include "http/cache_key.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "proxy/proxy_impl.h"

#define ALERT_CHECK_MS 1000
#define STATUS_SAMPLE_MS 5000 /* /status's history: counters sampled this often */
#define STATUS_MAX_BYTES ((size_t)64 << 20)

struct hf_admin {
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    char address[300]; /* where it listens, port 0 resolved */
    struct hf_engine *engine;
    int64_t degraded_after_ms; /* 0: no alerts */
    struct event *tick;
    bool *alerted; /* per route: an alert is out for its current degradation */
    uint64_t evictions_seen, expired_seen; /* store totals already counted */
    uint64_t shared_errors_seen;
    struct hf_scheduler *scheduler;    /* POST /refresh; NULL: none */
    struct hf_status_history *history; /* GET /status's last hour */
    struct event *sample;              /* feeds it */
    int64_t started_ms;                /* wall clock: /status's uptime */
};

/*
 * Sustained degraded mode is worth a person's attention, a single retry is
 * not: once a route has been degraded for degraded_after, one `alert` line
 * (level error); when it recovers, one more.
 */
static void alert_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_admin *a = arg;
    int64_t now = hf_clock_wall_ms();
    for (size_t i = 0; i < a->engine->nroutes; i++) {
        const struct hf_route *r = &a->engine->routes[i];
        int64_t since = atomic_load(&r->state->degraded_since_ms);
        if (since != 0 && !a->alerted[i] && now - since >= a->degraded_after_ms) {
            a->alerted[i] = true;
            HF_LOG(HF_LOG_ERROR, "alert", HF_LS("route", r->cfg.name), HF_LS("state", "degraded"),
                   HF_LI("degraded_s", (now - since) / 1000),
                   HF_LI("consecutive_failures", atomic_load(&r->state->consecutive_failures)),
                   HF_LS("detail", "the API has been failing; clients get stale copies or errors"));
        } else if (since == 0 && a->alerted[i]) {
            a->alerted[i] = false;
            HF_LOG(HF_LOG_ERROR, "alert", HF_LS("route", r->cfg.name), HF_LS("state", "recovered"),
                   HF_LS("detail", "the API answers again"));
        }
    }
}

static void reply(struct evhttp_request *req, int status, const char *type, const char *body,
                  size_t len)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", type);
    evhttp_add_header(out, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b != NULL)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, status, hf__reason_phrase(status), b);
    if (b != NULL)
        evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t != NULL) {
        s = t;
        s[n++] = '\n';
        s[n] = '\0';
    }
    reply(req, status, "application/json", s, n);
    free(s);
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

/* Gauges are read from the engine's state when someone looks. */
static void refresh_gauges(struct hf_admin *a)
{
    struct hf_metrics *m = a->engine->metrics;
    int64_t wall = hf_clock_wall_ms(), mono = hf_clock_mono_ms();
    struct hf_engine *e = a->engine;
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct hf_route *r = &e->routes[i];
        struct hf_route_state *st = r->state;
        enum hf_breaker_state bs = hf_breaker_state(&st->breaker, mono);
        bool quota_spent = hf_route_quota_left(e, r, wall) == 0;
        int64_t since = atomic_load(&st->degraded_since_ms);
        hf_metric_set(m, HF_M_BREAKER_STATE, i, 0,
                      bs == HF_BREAKER_OPEN        ? 1
                      : bs == HF_BREAKER_HALF_OPEN ? 2
                                                   : 0);
        hf_metric_set(m, HF_M_ROUTE_PAUSED, i, 0,
                      hf_pause_active(&st->pause, wall, NULL, NULL) || quota_spent);
        hf_metric_set(m, HF_M_QUOTA_REMAINING, i, 0, hf_route_quota_left(e, r, wall));
        hf_metric_set(m, HF_M_DEGRADED, i, 0, since != 0);
        hf_metric_set(m, HF_M_DEGRADED_SINCE, i, 0, since / 1000);
    }
    /* Each tier reports itself: counts from memory and the file, health
     * from the shared tier. */
    struct hf_store_stats ss;
    hf_store_stats(e->mem != NULL ? e->mem : e->store, &ss);
    hf_metric_set(m, HF_M_CACHE_ENTRIES, HF_TIER_MEMORY, 0, (int64_t)ss.entries);
    hf_metric_set(m, HF_M_CACHE_BYTES, HF_TIER_MEMORY, 0, (int64_t)ss.bytes);
    hf_metric_set(m, HF_M_STORE_UP, HF_TIER_MEMORY, 0, 1);
    if (e->shared != NULL) {
        enum hf_m_tier st = e->shared_redis ? HF_TIER_REDIS : HF_TIER_MEMCACHED;
        hf_metrics_show_tier(m, st);
        hf_metric_set(m, HF_M_STORE_UP, st, 0, hf_status_shared_up(e));
        uint64_t errs = hf__store_errors(e->shared) + (e->fleet ? hf_fleet_errors(e->fleet) : 0);
        if (errs > a->shared_errors_seen)
            hf_metric_add(m, HF_M_STORE_ERRORS_TOTAL, st, 0, errs - a->shared_errors_seen);
        a->shared_errors_seen = errs;
    }
    /* Evictions are counted where holdfast bounds the size: the file when
     * there is one, else memory. */
    enum hf_m_tier tier = HF_TIER_MEMORY;
    if (e->disk != NULL) {
        tier = HF_TIER_SQLITE;
        hf_store_stats(e->disk, &ss);
        hf_metrics_show_tier(m, tier);
        hf_metric_set(m, HF_M_STORE_UP, tier, 0, 1);
        hf_metric_set(m, HF_M_CACHE_ENTRIES, tier, 0, (int64_t)ss.entries);
        hf_metric_set(m, HF_M_CACHE_BYTES, tier, 0, (int64_t)ss.bytes);
    }
    if (ss.evictions > a->evictions_seen)
        hf_metric_add(m, HF_M_CACHE_EVICTIONS_TOTAL, tier, HF_EVICT_SIZE,
                      ss.evictions - a->evictions_seen);
    if (ss.expired > a->expired_seen)
        hf_metric_add(m, HF_M_CACHE_EVICTIONS_TOTAL, tier, HF_EVICT_EXPIRED,
                      ss.expired - a->expired_seen);
    a->evictions_seen = ss.evictions;
    a->expired_seen = ss.expired;
}

static void metrics(struct hf_admin *a, struct evhttp_request *req)
{
    refresh_gauges(a);
    struct hf_buf b;
    hf_buf_init(&b, 64u << 20);
    if (hf_metrics_render(a->engine->metrics, &b) != HF_OK) {
        hf_buf_fini(&b);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr ? b.ptr : "", b.len);
    hf_buf_fini(&b);
}

/* A background route's schedule: its last run, its next, and how old its
 * oldest copy is (the run's oldest, aged since). */
static json_t *refresh_health(const struct hf_route *r, int64_t wall)
{
    const struct hf_refresh_status *rs = &r->state->refresh;
    json_t *o = json_object();
    int64_t end = atomic_load(&rs->last_end_ms), oldest = atomic_load(&rs->oldest_stored_ms);
    json_object_set_new(o, "every", json_string(r->cfg.refresh_every));
    json_object_set_new(o, "running", json_boolean(atomic_load(&rs->running) > 0));
    json_object_set_new(o, "next_run", time_or_null(atomic_load(&rs->next_run_ms)));
    json_object_set_new(o, "last_run", time_or_null(atomic_load(&rs->last_start_ms)));
    json_object_set_new(o, "last_run_end", time_or_null(end));
    json_object_set_new(o, "last_result",
                        end > 0 ? json_string(hf_metric_label_value(HF_ML_RUN_RESULT,
                                                                    atomic_load(&rs->last_result)))
                                : json_null());
    json_object_set_new(o, "last_success", time_or_null(atomic_load(&rs->last_ok_ms)));
    json_object_set_new(o, "keys", json_integer(atomic_load(&rs->last_keys)));
    json_object_set_new(o, "failed", json_integer(atomic_load(&rs->last_failed)));
    json_object_set_new(o, "missing", json_integer(atomic_load(&rs->missing)));
    json_object_set_new(o, "learned",
                        json_integer(r->state->learned != NULL
                                         ? (json_int_t)hf_learn_count(r->state->learned, wall)
                                         : 0));
    json_object_set_new(o, "oldest_age_s",
                        oldest > 0 ? json_integer((wall - oldest) / 1000) : json_null());
    return o;
}

static void health(struct hf_admin *a, struct evhttp_request *req)
{
    json_t *routes = json_object();
    size_t down = 0, degraded = 0;
    int64_t wall = hf_clock_wall_ms(), mono = hf_clock_mono_ms();
    for (size_t i = 0; i < a->engine->nroutes; i++) {
        const struct hf_route *r = &a->engine->routes[i];
        struct hf_route_state *st = r->state;
        const char *state = hf_route_state_name(r, wall);
        if (strcmp(state, "down") == 0)
            down++;
        else if (strcmp(state, "ok") != 0)
            degraded++;
        json_t *o = json_object();
        json_object_set_new(o, "state", json_string(state));
        json_object_set_new(o, "last_success", time_or_null(atomic_load(&st->last_success_ms)));
        json_object_set_new(o, "consecutive_failures",
                            json_integer(atomic_load(&st->consecutive_failures)));
        enum hf_breaker_state bs = hf_breaker_state(&st->breaker, mono);
        json_object_set_new(o, "breaker", json_string(hf_breaker_state_label(bs)));
        int64_t until = 0;
        enum hf_pause_reason pr = HF_PAUSE_NONE;
        if (hf_pause_active(&st->pause, wall, &until, &pr)) {
            json_object_set_new(o, "paused_until", time_or_null(until));
            json_object_set_new(o, "paused_because", json_string(hf_pause_reason_label(pr)));
        } else {
            json_object_set_new(o, "paused_until", json_null());
        }
        int64_t left = hf_route_quota_left(a->engine, r, wall);
        json_object_set_new(o, "quota_left", left >= 0 ? json_integer(left) : json_null());
        json_object_set_new(o, "degraded_since", time_or_null(atomic_load(&st->degraded_since_ms)));
        if (r->background)
            json_object_set_new(o, "refresh", refresh_health(r, wall));
        json_object_set_new(routes, r->cfg.name, o);
    }
    json_t *tiers = json_object();
    const char *overall = hf_status_overall(a->engine, down, degraded, tiers);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(overall));
    json_object_set_new(o, "store", tiers);
    if (a->engine->fleet != NULL) {
        bool up = hf_fleet_up(a->engine->fleet);
        json_object_set_new(o, "fleet",
                            json_pack("{s:s,s:i,s:s}", "instance",
                                      hf_fleet_instance(a->engine->fleet), "size",
                                      a->engine->fleet_size, "limits",
                                      up ? "shared" : "local share (Redis is away)"));
    }
    json_object_set_new(o, "routes", routes);
    reply_json(req, strcmp(overall, "down") == 0 ? 503 : 200, o);
}

/*
 * POST /purge?route=R&key=PATH drops the stored copy of PATH (every variant);
 * POST /purge?route=R&prefix=P drops every copy whose path starts with P.
 * Waits for the store (a SQLite delete goes through its writer thread):
 * this is the admin loop, never a worker's.
 */
static void purge(struct hf_admin *a, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *uri = evhttp_request_get_uri(req);
    const char *query = strchr(uri, '?');
    if (query == NULL || evhttp_parse_query_str(query + 1, &q) != 0) {
        reply_json(req, 400,
                   json_pack("{s:s}", "error",
                             "expected ?route=NAME&key=PATH or ?route=NAME&prefix=PATH"));
        return;
    }
    const char *route = evhttp_find_header(&q, "route");
    const char *key = evhttp_find_header(&q, "key");
    const char *prefix = evhttp_find_header(&q, "prefix");
    const struct hf_route *r = route ? hf_engine_route(a->engine, route) : NULL;
    json_t *o = NULL;
    int status = 200;
    char k[HF_CACHE_KEY_MAX + 2];
    uint64_t n = 0, more = 0;
    if (r == NULL) {
        o = json_pack("{s:s}", "error", "unknown or missing route");
        status = 404;
    } else if ((key == NULL) == (prefix == NULL)) {
        o = json_pack("{s:s}", "error", "give one of key=PATH or prefix=PATH");
        status = 400;
    } else if (key != NULL) {
        if (key[0] != '/' || hf_cache_key("GET", r->cfg.name, key, r->cfg.ignore_params,
                                          r->cfg.nignore_params, k, sizeof k - 1) != HF_OK) {
            o = json_pack("{s:s}", "error", "malformed key: expected a path such as /latest?x=1");
            status = 400;
        } else {
            /* the copy itself, then its variants ("key\n<vary key>") */
            hf_err err = hf_store_delete(a->engine->store, k);
            size_t kl = strlen(k);
            k[kl] = '\n';
            k[kl + 1] = '\0';
            if (!err)
                err = hf_store_delete_prefix(a->engine->store, k, &more);
            if (err) {
                o = json_pack("{s:s}", "error", "the store failed");
                status = 500;
            }
        }
    } else if (prefix[0] != '/' ||
               (size_t)snprintf(k, sizeof k, "GET %s %s", r->cfg.name, prefix) >= sizeof k) {
        o = json_pack("{s:s}", "error", "malformed prefix: expected a path such as /latest");
        status = 400;
    } else if (hf_store_delete_prefix(a->engine->store, k, &n) != HF_OK) {
        o = json_pack("{s:s}", "error", "the store failed");
        status = 500;
    }
    if (o == NULL && a->engine->fleet != NULL) {
        /* the others drop their memory copies (the shared tier's are gone) */
        if (key != NULL)
            k[strlen(k) - 1] = '\0'; /* the copy and its variants */
        hf_fleet_purge(a->engine->fleet, k);
    }
    if (o == NULL) {
        HF_LOG(HF_LOG_INFO, "purge", HF_LS("route", r->cfg.name),
               HF_LS(key ? "key" : "prefix", key ? key : prefix), HF_LI("removed", n + more));
        o = json_pack("{s:s,s:s,s:I}", "route", r->cfg.name, key ? "key" : "prefix",
                      key ? key : prefix, "purged", (json_int_t)(key ? more : n));
    }
    evhttp_clear_headers(&q);
    reply_json(req, status, o);
}

/*
 * POST /refresh?route=R[&key=PATH]: run a background route's refresh now,
 * for every key or one.  Answers 202 at once; the run reports through the
 * logs, /metrics and /health.
 */
static void refresh(struct hf_admin *a, struct evhttp_request *req)
{
    struct evkeyvalq q = {0};
    const char *uri = evhttp_request_get_uri(req);
    const char *query = strchr(uri, '?');
    if (query == NULL || evhttp_parse_query_str(query + 1, &q) != 0) {
        reply_json(req, 400, json_pack("{s:s}", "error", "expected ?route=NAME[&key=PATH]"));
        return;
    }
    const char *route = evhttp_find_header(&q, "route");
    const char *key = evhttp_find_header(&q, "key");
    const struct hf_route *r = route ? hf_engine_route(a->engine, route) : NULL;
    json_t *o;
    int status = 202;
    if (r == NULL) {
        o = json_pack("{s:s}", "error", "unknown or missing route");
        status = 404;
    } else if (!r->background) {
        o = json_pack("{s:s}", "error", "the route is not in background mode");
        status = 409;
    } else if (key != NULL && (key[0] != '/' || strlen(key) > 2048)) {
        o = json_pack("{s:s}", "error", "malformed key: expected a path such as /latest?x=1");
        status = 400;
    } else if (a->scheduler == NULL ||
               hf_scheduler_trigger(a->scheduler, r->cfg.name, key) != HF_OK) {
        o = json_pack("{s:s}", "error", "the scheduler cannot take a run now; try again");
        status = 503;
    } else {
        bool running = atomic_load(&r->state->refresh.running) > 0;
        HF_LOG(HF_LOG_INFO, "refresh_requested", HF_LS("route", r->cfg.name), HF_LS("key", key));
        o = json_pack("{s:s,s:s?,s:b}", "route", r->cfg.name, "key", key, "queued", !running);
        if (running)
            json_object_set_new(o, "detail",
                                json_string("a run of this route is going on: this one is "
                                            "skipped (see /health)"));
    }
    evhttp_clear_headers(&q);
    reply_json(req, status, o);
}

/* A page in a browser on this machine could POST to the admin listener:
 * refuse anything a browser marks as coming from a web page. */
static bool from_web_page(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *site = evhttp_find_header(in, "Sec-Fetch-Site");
    return evhttp_find_header(in, "Origin") != NULL || (site != NULL && strcmp(site, "none") != 0);
}

static void status_sample(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_admin *a = arg;
    hf_status_sample(a->history, a->engine, hf_clock_wall_ms());
}

/* GET /status (HTML) and /status.json: one document, two renderings. */
static void status(struct hf_admin *a, struct evhttp_request *req, bool html)
{
    json_t *doc = hf_status_collect(a->engine, a->history, a->started_ms, hf_clock_wall_ms());
    char *s = NULL;
    struct hf_buf b;
    hf_buf_init(&b, STATUS_MAX_BYTES);
    /* compact JSON: the history's arrays would take a line per number */
    if (doc == NULL || (html ? hf_status_render_html(doc, &b) != HF_OK
                             : (s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)) {
        json_decref(doc);
        hf_buf_fini(&b);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    json_decref(doc);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    if (html) {
        evhttp_add_header(out, "Content-Security-Policy", HF_STATUS_CSP);
        evhttp_add_header(out, "Referrer-Policy", "no-referrer");
        reply(req, 200, "text/html; charset=utf-8", b.ptr ? b.ptr : "", b.len);
    } else {
        reply(req, 200, "application/json", s, strlen(s));
    }
    free(s);
    hf_buf_fini(&b);
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct hf_admin *a = arg;
    const char *uri = evhttp_request_get_uri(req);
    size_t plen = strcspn(uri, "?");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (plen == 7 && strncmp(uri, "/health", 7) == 0 && cmd == EVHTTP_REQ_GET) {
        health(a, req);
    } else if (plen == 8 && strncmp(uri, "/metrics", 8) == 0 && cmd == EVHTTP_REQ_GET) {
        metrics(a, req);
    } else if (plen == 7 && strncmp(uri, "/status", 7) == 0 && cmd == EVHTTP_REQ_GET) {
        status(a, req, true);
    } else if (plen == 12 && strncmp(uri, "/status.json", 12) == 0 && cmd == EVHTTP_REQ_GET) {
        status(a, req, false);
    } else if ((plen == 6 && strncmp(uri, "/purge", 6) == 0) ||
               (plen == 8 && strncmp(uri, "/refresh", 8) == 0)) {
        if (cmd != EVHTTP_REQ_POST) {
            reply(req, 405, "text/plain", "use POST\n", 9);
            return;
        }
        if (from_web_page(req)) {
            reply(req, 403, "text/plain", "not from a web page\n", 20);
            return;
        }
        if (plen == 6)
            purge(a, req);
        else
            refresh(a, req);
    } else {
        reply(req, 404, "text/plain", "not found\n", 10);
    }
}

hf_err hf_admin_start(struct event_base *base, struct hf_engine *engine, const char *addr,
                      int64_t degraded_after_ms, struct hf_admin **out, char *errbuf, size_t errlen)
{
    struct hf_admin *a = calloc(1, sizeof *a);
    if (a == NULL)
        return HF_ENOMEM;
    a->engine = engine;
    a->degraded_after_ms = degraded_after_ms;
    if (degraded_after_ms > 0) {
        a->alerted = calloc(engine->nroutes + 1, sizeof *a->alerted);
        a->tick = event_new(base, -1, EV_PERSIST, alert_tick, a);
        struct timeval tv = {ALERT_CHECK_MS / 1000, (ALERT_CHECK_MS % 1000) * 1000};
        if (a->alerted == NULL || a->tick == NULL || event_add(a->tick, &tv) != 0) {
            hf_admin_stop(&a);
            return HF_ENOMEM;
        }
    }
    if (strcmp(addr, "none") == 0) {
        *out = a; /* alerts without a listener */
        return HF_OK;
    }
    /* /status's history, from now on */
    a->started_ms = hf_clock_wall_ms();
    struct timeval stv = {STATUS_SAMPLE_MS / 1000, (STATUS_SAMPLE_MS % 1000) * 1000};
    if (hf_status_history_create(&a->history) != HF_OK ||
        (a->sample = event_new(base, -1, EV_PERSIST, status_sample, a)) == NULL ||
        event_add(a->sample, &stv) != 0) {
        hf_admin_stop(&a);
        return HF_ENOMEM;
    }
    hf_status_sample(a->history, engine, a->started_ms);
    int fd = hf_listen_socket(addr, false, errbuf, errlen);
    if (fd < 0) {
        hf_admin_stop(&a);
        return HF_CONFIG;
    }
    snprintf(a->address, sizeof a->address, "%s", addr);
    hf_listen_address(fd, a->address, sizeof a->address);
    if ((a->http = hf__new_http(base, fd, handle, a, &a->bound)) == NULL) {
        close(fd);
        hf_admin_stop(&a);
        return HF_ENOMEM;
    }
    *out = a;
    return HF_OK;
}

const char *hf_admin_address(const struct hf_admin *a)
{
    return a != NULL && a->address[0] != '\0' ? a->address : "none";
}

void hf_admin_set_scheduler(struct hf_admin *a, struct hf_scheduler *s)
{
    if (a != NULL)
        a->scheduler = s;
}

void hf_admin_set_engine(struct hf_admin *a, struct hf_engine *eng)
{
    bool *alerted = calloc(eng->nroutes + 1, sizeof *alerted);
    if (alerted == NULL)
        return; /* keep reporting on the old generation rather than fail */
    /* alerts already out stay out for routes of the same name */
    for (size_t i = 0; a->alerted != NULL && i < eng->nroutes; i++) {
        const struct hf_route *old = hf_engine_route(a->engine, eng->routes[i].cfg.name);
        if (old != NULL)
            alerted[i] = a->alerted[old->index];
    }
    free(a->alerted);
    a->alerted = alerted;
    a->engine = eng;
}

void hf_admin_stop(struct hf_admin **ap)
{
    struct hf_admin *a = *ap;
    if (a == NULL)
        return;
    if (a->http != NULL)
        evhttp_free(a->http);
    if (a->tick != NULL)
        event_free(a->tick);
    if (a->sample != NULL)
        event_free(a->sample);
    hf_status_history_destroy(&a->history);
    free(a->alerted);
    free(a);
    *ap = NULL;
}
