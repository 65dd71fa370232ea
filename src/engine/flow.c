/*
 * One request's state machine (DESIGN.md, "The request flow"):
 *
 *   start: cache key -> fresh copy? -> done(FRESH)
 *   attempt -> on_result -> hf_retry_decide():
 *       ok      -> store if cacheable -> done(ORIGIN)
 *       final   -> pass the API's answer on (4xx) -> done(ORIGIN)
 *       wait    -> backoff timer -> attempt
 *       exhausted / out of time / transport failure -> fallback
 *   fallback: stale copy within its window -> done(STALE) else done(NONE)
 *
 * Runs on one loop thread; the only shared things it touches are the
 * engine's read-only routes and its thread-safe store.  Wall-clock time is
 * read here (cache timestamps outlive the process), monotonic time for the
 * deadline; the policies themselves get both as arguments.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "engine/inflight.h"
#include "engine/learn.h"
#include "engine/reader.h"
#include "http/cache_control.h"
#include "http/cache_key.h"
#include "http/date.h"
#include "http/freshness.h"
#include "http/headers.h"
#include "http/vary.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "upstream/upstream.h"

#define FLOW_MAGIC 0x666c6f77u   /* "flow" */
#define WAITER_MAGIC 0x77616974u /* "wait" */
#define FLOW_MAX_HEADERS 128     /* caller's headers; more are refused */
#define FLOW_EXTRA_HEADERS 2     /* validators */
#define PAUSE_SLACK_MS 250       /* a retry waits out this much of a pause */

struct hf_flow {
    unsigned magic;
    struct hf_flow *next, *prev; /* the loop's list */
    struct hf_flow_loop *loop;
    struct hf_engine *engine; /* the generation it started on (a reload may follow) */
    const struct hf_route *route;
    hf_flow_done_fn done;
    void *arg;
    char *method;
    char *url;
    bool cacheable;
    bool idempotency_key;
    bool invalidate;            /* an unsafe method: a success invalidates key (the GET copy) */
    bool revalidating;          /* holdfast sent the stale copy's validators */
    bool vary_ok;               /* the answer's Vary fits the key (set when it arrives) */
    enum hf_stale_reason early; /* why the budget timer answers early */
    bool leader;                /* registered in the in-flight table: hand the answer to waiters */
    bool responded;             /* done() already called (latency budget): finish quietly */
    bool refresh;               /* a refresh run's request (hf_flow_request.refresh) */
    int64_t min_age_ms;
    bool background; /* a user request on a background route, waiting for the file */
    char *target;    /* background: kept to fetch it once (on_miss: fetch) */
    /* The headers sent upstream, each name and value one allocation
     * ("name\0value\0", freed through name); room for cap_hdrs. */
    struct hf_header *hdrs;
    size_t nhdrs, cap_hdrs;
    void *body;
    size_t body_len;
    char request_id[40];
    struct hf_entry *stale; /* the copy to fall back on (or revalidate), or NULL */
    int attempts;
    int64_t started_mono;
    int64_t request_wall; /* when the current attempt was sent */
    struct event *timer;
    struct event *budget; /* latency_budget timer */
    struct hf_up_xfer *xfer;
    struct hf_read_job *read_job;   /* a file lookup in progress */
    struct hf_fleet_job *fleet_job; /* a question to the fleet in progress */
    int64_t take_ms;                /* when the fleet's allowance was taken */
    bool fleet_locked;              /* this instance fetches key for the whole fleet */
    int fleet_reads;                /* looks for another instance's copy so far */
    struct event *fleet_timer;      /* the next look */
    struct hf_flow_result res;
    /* The cache key (or, for an unsafe method, the key of the GET copy it
     * invalidates; "" when neither): stored after the flow, in the same
     * allocation, so a flow costs what its key needs rather than the
     * longest key there could be.  A flow is allocated per request and
     * lives as long as its fetch; a fixed 8 KB key left holes the size of
     * a flow between the long-lived cache copies allocated meanwhile. */
    char *key;
};

static void attempt(struct hf_flow *f);
static void wait_then_attempt(struct hf_flow *f, int64_t wait_ms);
static int64_t age_s(const struct hf_entry *e, int64_t now_ms);
static void cache_control_of(const char *block, size_t len, struct hf_cache_control *cc);

/* Count into the route's series; the built-in route of hf_request() has none. */
static bool counted(const struct hf_engine *e, const struct hf_route *r)
{
    return e->metrics != NULL && r != &e->default_route;
}

/* engine.h's stale reasons are the metric's, shifted by one (NONE). */
static unsigned stale_label(enum hf_stale_reason r)
{
    return r > HF_STALE_NONE ? (unsigned)r - 1 : 0;
}

/* A stale copy served on r: the metric and /status's oldest copy served. */
static void count_stale_served(const struct hf_engine *e, const struct hf_route *r,
                               enum hf_stale_reason reason, const struct hf_entry *copy,
                               int64_t now_ms)
{
    if (!counted(e, r))
        return;
    hf_metric_inc(e->metrics, HF_M_STALE_SERVED_TOTAL, r->index, stale_label(reason));
    hf_route_note_stale(r->state, now_ms, copy->stored_at_ms);
}

/* The stale_served event: a warning when the request's own attempts
 * failed; at info for a copy served because the route is paused or its
 * breaker open, the state the rate_limited / breaker_open events already
 * reported. */
static void log_stale_served(const struct hf_route *r, const char *request_id, int64_t age,
                             enum hf_stale_reason reason, hf_err error, int attempts)
{
    HF_LOG(attempts > 0 ? HF_LOG_WARN : HF_LOG_INFO, "stale_served", HF_LS("route", r->cfg.name),
           HF_LS("request_id", request_id), HF_LI("age_s", age),
           HF_LS("reason", hf_stale_reason_name(reason)), HF_LS("error", hf_err_label(error)),
           HF_LI("attempts", attempts));
}

/* --- life cycle ------------------------------------------------------------ */

static void flow_free(struct hf_flow *f)
{
    hf_reader_cancel(f->read_job);
    hf_fleet_cancel(f->fleet_job);
    if (f->fleet_locked)
        hf_fleet_unlock(f->engine->fleet, f->key, f->res.stored);
    if (f->fleet_timer != NULL)
        event_free(f->fleet_timer);
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        f->loop->flows = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    hf_upstream_cancel(&f->xfer);
    if (f->timer != NULL)
        event_free(f->timer);
    if (f->budget != NULL)
        event_free(f->budget);
    hf_entry_release(&f->stale);
    hf_entry_release(&f->res.entry);
    for (size_t i = 0; i < f->nhdrs; i++)
        free((char *)f->hdrs[i].name);
    free(f->hdrs);
    free(f->method);
    free(f->url);
    free(f->body);
    free(f->target);
    f->magic = 0;
    free(f);
}

/* A request waiting for another's fetch of the same key (coalescing).  It
 * lives on its own loop; the leader, on any thread, fills res and activates
 * ev, so the waiter answers on its own thread. */
struct flow_waiter {
    struct hf_waiter link; /* first: the in-flight table's list node */
    unsigned magic;
    /* Its own request, kept to fetch alone when the leader's answer is not
     * one to share (private, not stored: another client's answer). */
    struct hf_flow_loop *loop;
    const struct hf_route *route;
    char *target; /* path and query, or NULL with url */
    char *url;
    struct hf_header *hdrs; /* copies, in one block with their strings */
    size_t nhdrs;
    char request_id[40];
    bool refetch;
    bool refresh;
    int64_t min_age_ms;
    struct event *ev;
    struct event *budget;
    hf_flow_done_fn done;
    void *arg;
    struct hf_entry *stale; /* for its own latency budget */
    bool responded;
    struct hf_flow_result res;
};

static void waiter_free(struct flow_waiter *w)
{
    free(w->target);
    free(w->url);
    free(w->hdrs);
    if (w->ev != NULL)
        event_free(w->ev);
    if (w->budget != NULL)
        event_free(w->budget);
    hf_entry_release(&w->stale);
    hf_entry_release(&w->res.entry);
    w->magic = 0;
    free(w);
}

static void waiter_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct flow_waiter *w = arg;
    if (w->magic != WAITER_MAGIC)
        abort();
    if (!w->responded && w->refetch) {
        struct hf_flow_request req = {.route = w->route,
                                      .method = "GET",
                                      .target = w->target,
                                      .url = w->url,
                                      .headers = w->hdrs,
                                      .nheaders = w->nhdrs,
                                      .request_id = w->request_id,
                                      .alone = true,
                                      .refresh = w->refresh,
                                      .min_age_ms = w->min_age_ms,
                                      .fetch_once = w->route->background && !w->refresh};
        char err[256];
        hf_err e = hf_flow_start(w->loop, &req, w->done, w->arg, err, sizeof err);
        if (e) {
            struct hf_flow_result r = {.error = e, .retry_after_s = -1};
            snprintf(r.detail, sizeof r.detail, "%s", err);
            w->done(&r, w->arg);
        }
    } else if (!w->responded) {
        w->done(&w->res, w->arg);
    }
    waiter_free(w);
}

/* Whether the leader's answer may go to other clients: a copy it stored
 * (or served from the store), or an error answer not marked private.  Not
 * an answer the API meant for one client only, nor one that varied on a
 * header of the leader's request. */
static bool shareable(const struct hf_flow *f)
{
    const struct hf_flow_result *r = &f->res;
    if (r->source != HF_SOURCE_ORIGIN || r->stored)
        return true;
    const struct hf_entry *e = r->entry;
    if (e == NULL || e->status < 400 || !f->vary_ok)
        return false;
    struct hf_cache_control cc;
    cache_control_of(e->headers ? e->headers : "", e->headers_len, &cc);
    return !cc.private_ && !cc.no_store &&
           !hf_headers_find(e->headers ? e->headers : "", e->headers_len, "Set-Cookie",
                            &(const char *){NULL}, &(size_t){0});
}

/* Copy what a waiter needs to fetch alone later. */
static hf_err waiter_keep_request(struct flow_waiter *w, struct hf_flow_loop *loop,
                                  const struct hf_flow_request *req)
{
    w->loop = loop;
    w->route = req->route;
    w->refresh = req->refresh;
    w->min_age_ms = req->min_age_ms;
    if (req->request_id != NULL)
        snprintf(w->request_id, sizeof w->request_id, "%s", req->request_id);
    if ((req->target && (w->target = strdup(req->target)) == NULL) ||
        (req->url && (w->url = strdup(req->url)) == NULL))
        return HF_ENOMEM;
    size_t bytes = req->nheaders * sizeof *w->hdrs;
    for (size_t i = 0; i < req->nheaders; i++)
        bytes += strlen(req->headers[i].name) + 1 +
                 strlen(req->headers[i].value ? req->headers[i].value : "") + 1;
    if (req->nheaders == 0)
        return HF_OK;
    if ((w->hdrs = malloc(bytes)) == NULL)
        return HF_ENOMEM;
    char *p = (char *)(w->hdrs + req->nheaders);
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *v = req->headers[i].value ? req->headers[i].value : "";
        size_t nl = strlen(req->headers[i].name) + 1, vl = strlen(v) + 1;
        memcpy(p, req->headers[i].name, nl);
        w->hdrs[i].name = p;
        p += nl;
        memcpy(p, v, vl);
        w->hdrs[i].value = p;
        p += vl;
    }
    w->nhdrs = req->nheaders;
    return HF_OK;
}

/* The leader could not even start: its waiters get the failure. */
static void fail_waiters(struct hf_engine *e, const char *key, hf_err err)
{
    struct hf_waiter *l = hf_inflight_leave(e->inflight, key);
    while (l != NULL) {
        struct flow_waiter *w = (struct flow_waiter *)l;
        l = l->next;
        w->res = (struct hf_flow_result){.error = err, .retry_after_s = -1, .collapsed = true};
        event_active(w->ev, EV_READ, 0);
    }
}

/* Hand the leader's answer to everyone who waited for it. */
static void release_waiters(struct hf_flow *f)
{
    if (!f->leader)
        return;
    f->leader = false;
    bool share = shareable(f);
    struct hf_waiter *l = hf_inflight_leave(f->engine->inflight, f->key);
    while (l != NULL) {
        struct flow_waiter *w = (struct flow_waiter *)l;
        l = l->next;
        if (!share) {
            w->refetch = true;
            event_active(w->ev, EV_READ, 0);
            continue;
        }
        w->res = f->res;
        w->res.collapsed = true;
        w->res.stored = false; /* the leader stored it */
        w->res.attempts = 0;
        if (w->res.entry != NULL)
            hf_entry_ref(w->res.entry);
        event_active(w->ev, EV_READ, 0);
    }
}

static void finish(struct hf_flow *f, enum hf_source source)
{
    struct hf_flow_result *r = &f->res;
    r->source = source;
    r->attempts = f->attempts;
    r->forwarded = f->attempts > 0;
    r->bypass = !f->cacheable;
    if (f->stale != NULL && !r->had_copy) {
        r->had_copy = true;
        r->copy_stored_at_ms = f->stale->stored_at_ms;
    }
    if (r->entry != NULL) /* an answer may arrive already aged (RFC 9111 4.2.3) */
        r->age_s = age_s(r->entry, hf_clock_wall_ms());
    release_waiters(f);
    if (!f->responded)
        f->done(r, f->arg);
    flow_free(f);
}

/* latency_budget passed with a stale copy at hand and no answer yet: answer
 * with the copy now; the fetch goes on and updates the cache when it ends. */
static void budget_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_flow *f = arg;
    if (f->responded || f->stale == NULL)
        return;
    f->responded = true;
    bool swr = f->early == HF_STALE_REVALIDATING;
    struct hf_flow_result r = {.source = HF_SOURCE_STALE,
                               .entry = hf_entry_ref(f->stale),
                               .age_s = age_s(f->stale, hf_clock_wall_ms()),
                               .attempts = f->attempts,
                               .forwarded = true,
                               .error = swr ? HF_OK : HF_UPSTREAM_TIMEOUT,
                               .retry_after_s = -1,
                               .stale_reason = f->early};
    if (!swr)
        snprintf(r.detail, sizeof r.detail, "no answer from the API within latency_budget");
    count_stale_served(f->engine, f->route, f->early, f->stale, hf_clock_wall_ms());
    HF_LOG(swr ? HF_LOG_INFO : HF_LOG_WARN, "stale_served", HF_LS("route", f->route->cfg.name),
           HF_LS("request_id", f->request_id), HF_LI("age_s", r.age_s),
           HF_LS("reason", hf_stale_reason_name(f->early)));
    f->done(&r, f->arg);
    hf_entry_release(&r.entry);
}

/* A stale copy answered because the API has not answered within the
 * route's latency_budget, to a request that did not forward (it waits on,
 * or arrived after, another request's fetch, which goes on). */
static void answer_budget_stale(struct hf_engine *e, const struct hf_route *route,
                                struct hf_entry *stale, hf_flow_done_fn done, void *arg)
{
    int64_t now = hf_clock_wall_ms();
    struct hf_flow_result r = {.source = HF_SOURCE_STALE,
                               .entry = stale,
                               .age_s = age_s(stale, now),
                               .collapsed = true,
                               .forwarded = true,
                               .error = HF_UPSTREAM_TIMEOUT,
                               .retry_after_s = -1,
                               .stale_reason = HF_STALE_LATENCY_BUDGET};
    snprintf(r.detail, sizeof r.detail, "no answer from the API within latency_budget");
    count_stale_served(e, route, HF_STALE_LATENCY_BUDGET, stale, now);
    done(&r, arg);
}

static void waiter_budget_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct flow_waiter *w = arg;
    if (w->responded || w->stale == NULL)
        return;
    w->responded = true;
    answer_budget_stale(w->loop->engine, w->route, w->stale, w->done, w->arg);
}

static bool arm_budget(struct event_base *base, struct event **ev, event_callback_fn cb, void *arg,
                       int64_t ms)
{
    if ((*ev = evtimer_new(base, cb, arg)) == NULL)
        return false;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return evtimer_add(*ev, &tv) == 0;
}

static void fallback(struct hf_flow *f)
{
    int64_t now = hf_clock_wall_ms();
    if (f->stale != NULL) {
        f->res.had_copy = true;
        f->res.copy_stored_at_ms = f->stale->stored_at_ms;
    }
    if (f->stale != NULL && f->stale->stale_until_ms > now) {
        f->res.entry = f->stale;
        f->stale = NULL;
        if (f->res.stale_reason == HF_STALE_NONE)
            f->res.stale_reason = HF_STALE_UPSTREAM_ERROR;
        count_stale_served(f->engine, f->route, f->res.stale_reason, f->res.entry, now);
        log_stale_served(f->route, f->request_id, age_s(f->res.entry, now), f->res.stale_reason,
                         f->res.error, f->attempts);
        finish(f, HF_SOURCE_STALE);
        return;
    }
    finish(f, HF_SOURCE_NONE);
}

/* --- storing an answer ----------------------------------------------------- */

static bool in_block(const char *block, size_t block_len, const char *name, size_t len)
{
    size_t pos = 0;
    const char *n, *v;
    size_t nl, vl;
    while (hf_headers_next(block, block_len, &pos, &n, &nl, &v, &vl))
        if (nl == len && strncasecmp(n, name, len) == 0)
            return true;
    return false;
}

/*
 * Headers worth keeping: the answer's own, without hop-by-hop fields.  With
 * `update` (a 304's headers) the stored fields it names are replaced by its
 * values (RFC 9111 4.3.4); Content-Length stays the stored one.
 */
/* Whether the Connection field of block names the field name (nl bytes):
 * then it is hop-by-hop too (RFC 9110 7.6.1). */
static bool connection_names(const char *block, size_t len, const char *name, size_t nl)
{
    const char *v;
    size_t vl;
    if (!hf_headers_find(block, len, "Connection", &v, &vl))
        return false;
    for (size_t i = 0; i < vl;) {
        while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < vl && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - s == nl && strncasecmp(v + s, name, nl) == 0)
            return true;
    }
    return false;
}

static hf_err keep_headers(const char *block, size_t len, const char *update, size_t ulen,
                           struct hf_buf *out)
{
    size_t pos = 0;
    const char *n, *v;
    size_t nl, vl;
    hf_err err = HF_OK;
    while (!err && hf_headers_next(block, len, &pos, &n, &nl, &v, &vl)) {
        if (hf_header_hop_by_hop(n, nl) || connection_names(block, len, n, nl))
            continue;
        if (update != NULL && !(nl == 14 && strncasecmp(n, "Content-Length", 14) == 0) &&
            in_block(update, ulen, n, nl))
            continue;
        err = hf_buf_printf(out, "%.*s: %.*s\r\n", (int)nl, n, (int)vl, v);
    }
    pos = 0;
    while (!err && update != NULL && hf_headers_next(update, ulen, &pos, &n, &nl, &v, &vl)) {
        if (hf_header_hop_by_hop(n, nl) || (nl == 14 && strncasecmp(n, "Content-Length", 14) == 0))
            continue;
        err = hf_buf_printf(out, "%.*s: %.*s\r\n", (int)nl, n, (int)vl, v);
    }
    return err;
}

static void cache_control_of(const char *block, size_t len, struct hf_cache_control *cc)
{
    hf_cache_control_init(cc);
    size_t pos = 0;
    const char *n, *v;
    size_t nl, vl;
    while (hf_headers_next(block, len, &pos, &n, &nl, &v, &vl))
        if (nl == 13 && strncasecmp(n, "Cache-Control", 13) == 0)
            hf_cache_control_parse(cc, v, vl);
}

static char *header_dup(const char *block, size_t len, const char *name)
{
    const char *v;
    size_t vl;
    if (!hf_headers_find(block, len, name, &v, &vl) || vl == 0)
        return NULL;
    return strndup(v, vl);
}

/*
 * An answer may be stored under f->key only if the request headers its Vary
 * names (with the route's own vary list) give the secondary key f->key was
 * made with.  An API varying on a header the route does not list is passed
 * on but not stored: add the header to the route's `vary` to cache it.
 */
static bool vary_matches_key(const struct hf_flow *f, const char *headers, size_t hlen)
{
    const struct hf_route_config *rc = &f->route->cfg;
    if (!hf_headers_find(headers, hlen, "Vary", &(const char *){NULL}, &(size_t){0}))
        return true;
    char vk[HF_VARY_KEY_MAX];
    if (hf_vary_key(headers, hlen, rc->vary, rc->nvary, f->hdrs, f->nhdrs, vk, sizeof vk) !=
        HF_VARY_OK)
        return false;
    const char *nl = strchr(f->key, '\n');
    return strcmp(nl ? nl + 1 : "", vk) == 0;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/*
 * Build the entry served for an answer and decide whether and how long it is
 * kept.  Stores only what a user would want replayed: 2xx (not 206) and, when
 * the route says so, 404; never no-store/private (unless the route
 * overrides) nor Vary: *.
 */
static hf_err make_entry(struct hf_flow *f, int status, const char *headers, size_t hlen,
                         const char *body, size_t blen, int64_t response_ms, bool *store,
                         struct hf_entry **out)
{
    const struct hf_route_config *rc = &f->route->cfg;
    struct hf_cache_control cc;
    cache_control_of(headers, hlen, &cc);
    bool rfc = rc->fresh_for_ms < 0;
    int64_t initial_age = hf_initial_age_ms(headers, hlen, f->request_wall, response_ms);
    int64_t stored_at = response_ms - (rfc ? initial_age : 0);
    int64_t fresh_until, stale_until;

    /* A refresh keeps the copy it has unless the API gave a new one: a
     * failed refresh never replaces good data (not even with a 404). */
    /* A background route keeps what its schedule fetched whatever the
     * API's caching rules say: the operator chose to serve every user the
     * route's one copy (fetched with the route's credentials and no
     * client's headers), of any age within stale_for. */
    bool bg = f->route->background;
    *store = f->cacheable &&
             ((status >= 200 && status < 300 && status != 206) ||
              (status == 404 && rc->cache_404_for_ms > 0 && !f->refresh)) &&
             (rc->store_private || bg || (!cc.no_store && !cc.private_));
    f->vary_ok = bg || vary_matches_key(f, headers, hlen);
    if (!f->vary_ok)
        *store = false;

    if (status == 404)
        fresh_until = add_sat(response_ms, rc->cache_404_for_ms);
    else if (!rfc)
        fresh_until = add_sat(response_ms, rc->fresh_for_ms);
    else if (cc.no_cache)
        fresh_until = stored_at;
    else
        fresh_until =
            add_sat(stored_at, hf_freshness_lifetime_ms(status, headers, hlen, response_ms));
    if (rfc && !bg && (cc.must_revalidate || cc.proxy_revalidate || cc.no_cache))
        stale_until = fresh_until; /* the API forbids serving it stale */
    else if (status == 404)
        stale_until = fresh_until;
    else if (rc->stale_for_ms == HF_FOREVER)
        stale_until = INT64_MAX;
    else
        stale_until = add_sat(fresh_until, rc->stale_for_ms);
    /* RFC 5861 stale-if-error: the API itself allows a longer fallback. */
    if (rfc && status != 404 && !(cc.must_revalidate || cc.proxy_revalidate || cc.no_cache) &&
        cc.stale_if_error_s > 0)
        stale_until = stale_until > add_sat(fresh_until, cc.stale_if_error_s * 1000)
                          ? stale_until
                          : add_sat(fresh_until, cc.stale_if_error_s * 1000);

    char *etag = header_dup(headers, hlen, "ETag");
    char *lm = header_dup(headers, hlen, "Last-Modified");
    hf_err err = hf_entry_create(f->cacheable ? f->key : f->url, rc->name, status, headers, hlen,
                                 body, blen, stored_at, fresh_until, stale_until, etag, lm, out);
    free(etag);
    free(lm);
    return err;
}

/*
 * Drop key's copy and every variant of it ("key\n<vary key>").  The copy
 * and the variant this request would read (variant, may be NULL) go at once
 * (a queued delete: nothing waits); the other variants through the
 * engine's deferred path when it has one.  With a shared tier (a network
 * round trip) the memory tier's go at once and the rest is deferred too.
 */
static void drop_key(struct hf_engine *e, const char *key, const char *variant)
{
    char prefix[HF_CACHE_KEY_MAX + 1];
    bool defer = e->defer_delete != NULL && e->shared != NULL;
    struct hf_store *now = defer ? e->mem : e->store;
    hf_store_delete(now, key);
    if (variant != NULL)
        hf_store_delete(now, variant);
    if (defer) {
        e->defer_delete(e->defer_ctx, key, false);
        if (variant != NULL)
            e->defer_delete(e->defer_ctx, variant, false);
    }
    if ((size_t)snprintf(prefix, sizeof prefix, "%s\n", key) >= sizeof prefix)
        return;
    if (e->defer_delete != NULL)
        e->defer_delete(e->defer_ctx, prefix, true);
    else
        hf_store_delete_prefix(e->store, prefix, NULL);
    /* The other instances drop their memory copies once the shared tier's
     * is gone: here, or after the deferred delete (the janitor's job). */
    if (e->fleet != NULL && !defer)
        hf_fleet_purge(e->fleet, key);
}

/* f->key without its vary part into base (HF_CACHE_KEY_MAX bytes); false
 * when f->key has no vary part. */
static bool split_key(const struct hf_flow *f, char *base)
{
    const char *nl = strchr(f->key, '\n');
    size_t n = nl ? (size_t)(nl - f->key) : strlen(f->key);
    memcpy(base, f->key, n);
    base[n] = '\0';
    return nl != NULL;
}

/* Drop the stored GET copies of target (a path under the route's upstream). */
static void invalidate_target(struct hf_flow *f, const char *target)
{
    const struct hf_route_config *rc = &f->route->cfg;
    char key[HF_CACHE_KEY_MAX];
    if (hf_cache_key("GET", rc->name, target, rc->ignore_params, rc->nignore_params, key,
                     sizeof key) == HF_OK)
        drop_key(f->engine, key, NULL);
}

/*
 * RFC 9111 4.4: a successful unsafe request invalidates the stored copy of
 * its target, and of the Location / Content-Location it names when those
 * are under the same upstream.
 */
static void invalidate(struct hf_flow *f, const char *headers, size_t hlen)
{
    char plain[HF_CACHE_KEY_MAX];
    bool varied = split_key(f, plain);
    drop_key(f->engine, plain, varied ? f->key : NULL);
    const char *base = f->route->cfg.upstream;
    size_t blen = base ? strlen(base) : 0;
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    static const char *const names[] = {"Location", "Content-Location"};
    for (size_t i = 0; i < 2 && blen > 0; i++) {
        const char *v;
        size_t vl;
        if (!hf_headers_find(headers, hlen, names[i], &v, &vl) || vl <= blen ||
            vl >= HF_CACHE_KEY_MAX || strncmp(v, base, blen) != 0 || v[blen] != '/')
            continue;
        char target[HF_CACHE_KEY_MAX];
        memcpy(target, v + blen, vl - blen);
        target[vl - blen] = '\0';
        invalidate_target(f, target);
    }
}

static void serve_answer(struct hf_flow *f, int status, const char *headers, size_t hlen,
                         const char *body, size_t blen)
{
    int64_t now = hf_clock_wall_ms();
    bool store = false;
    hf_err err = make_entry(f, status, headers, hlen, body, blen, now, &store, &f->res.entry);
    if (err) {
        f->res.error = err;
        fallback(f);
        return;
    }
    if (f->invalidate && status < 400)
        invalidate(f, headers, hlen);
    if (store) {
        hf_err serr = hf_store_put(f->engine->store, f->res.entry);
        if (serr)
            HF_LOG(HF_LOG_ERROR, "store_error", HF_LS("route", f->route->cfg.name),
                   HF_LS("request_id", f->request_id), HF_LS("error", hf_err_label(serr)));
        else
            f->res.stored = true;
    }
    finish(f, HF_SOURCE_ORIGIN);
}

static void serve_result(struct hf_flow *f, struct hf_up_result *res)
{
    struct hf_buf h;
    hf_buf_init(&h, HF_UP_MAX_HEADER_BYTES);
    if (keep_headers(res->headers.ptr ? res->headers.ptr : "", res->headers.len, NULL, 0, &h)) {
        hf_buf_fini(&h);
        f->res.error = HF_ENOMEM;
        fallback(f);
        return;
    }
    serve_answer(f, res->status, h.ptr ? h.ptr : "", h.len, res->body.ptr, res->body.len);
    hf_buf_fini(&h);
}

/* 304 to our conditional request: the stored copy is good again, with the
 * 304's header fields replacing the stored ones. */
static void serve_revalidated(struct hf_flow *f, struct hf_up_result *res)
{
    struct hf_entry *old = f->stale;
    struct hf_buf h;
    hf_buf_init(&h, HF_UP_MAX_HEADER_BYTES);
    if (keep_headers(old->headers, old->headers_len, res->headers.ptr ? res->headers.ptr : "",
                     res->headers.len, &h)) {
        hf_buf_fini(&h);
        f->res.error = HF_ENOMEM;
        fallback(f);
        return;
    }
    serve_answer(f, old->status, h.ptr ? h.ptr : "", h.len, old->body, old->body_len);
    hf_buf_fini(&h);
}

/* --- attempts -------------------------------------------------------------- */

static int64_t server_wait_ms(const struct hf_up_result *res, int64_t now_wall)
{
    if (res->err != HF_OK || (res->status != 429 && res->status != 503))
        return -1;
    const char *h = res->headers.ptr ? res->headers.ptr : "";
    const char *v;
    size_t vl;
    int64_t wait;
    if (hf_headers_find(h, res->headers.len, "Retry-After", &v, &vl) &&
        hf_http_retry_after(v, vl, now_wall, &wait))
        return wait;
    if (res->status != 429)
        return -1;
    if (hf_headers_find(h, res->headers.len, "RateLimit-Reset", &v, &vl) &&
        hf_http_ratelimit_reset(v, vl, now_wall, &wait))
        return wait;
    if (hf_headers_find(h, res->headers.len, "X-RateLimit-Reset", &v, &vl) &&
        hf_http_ratelimit_reset(v, vl, now_wall, &wait))
        return wait;
    return -1;
}

static hf_err status_error(int status)
{
    if (status == 429)
        return HF_HTTP_429;
    if (status >= 500 && status <= 599)
        return HF_HTTP_5XX;
    if (status > 599)
        return HF_OK; /* relayed as it is */
    if (status >= 400)
        return HF_HTTP_4XX;
    return HF_OK;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_flow *f = arg;
    attempt(f);
}

static void on_result(struct hf_up_result *res, void *arg)
{
    struct hf_flow *f = arg;
    if (f->magic != FLOW_MAGIC)
        abort();
    f->xfer = NULL;
    const struct hf_route_config *rc = &f->route->cfg;
    int64_t now_wall = hf_clock_wall_ms();

    /* The route's health: an answer that is not a server failure counts as
     * the API working (a 404 is the API doing its job). */
    struct hf_route_state *st = f->route->state;
    bool ok = res->err == HF_OK && (res->status < 500 || res->status > 599) && res->status != 429;
    if (counted(f->engine, f->route)) {
        struct hf_metrics *m = f->engine->metrics;
        hf_metric_inc(m, HF_M_UPSTREAM_REQUESTS_TOTAL, f->route->index,
                      hf_metric_outcome(res->err, res->status));
        hf_metric_observe_us(m, HF_M_UPSTREAM_DURATION, f->route->index, 0,
                             res->elapsed_ms > 0 ? (uint64_t)res->elapsed_ms * 1000 : 0);
    }
    if (ok) {
        atomic_store(&st->last_success_ms, now_wall);
        atomic_store(&st->consecutive_failures, 0);
        int64_t since = atomic_exchange(&st->degraded_since_ms, 0);
        if (since != 0)
            HF_LOG(HF_LOG_INFO, "degraded_exit", HF_LS("route", rc->name),
                   HF_LI("degraded_s", (now_wall - since) / 1000));
    } else {
        atomic_store(&st->last_failure_ms, now_wall);
        atomic_fetch_add(&st->consecutive_failures, 1);
        int64_t zero = 0;
        if (atomic_compare_exchange_strong(&st->degraded_since_ms, &zero, now_wall))
            HF_LOG(HF_LOG_WARN, "degraded_enter", HF_LS("route", rc->name),
                   HF_LS("request_id", f->request_id),
                   HF_LS("error", hf_err_label(res->err ? res->err : status_error(res->status))));
    }
    switch (hf_breaker_record(&st->breaker, ok, hf_clock_mono_ms())) {
    case HF_BREAKER_EV_OPEN:
    case HF_BREAKER_EV_REOPEN:
        HF_LOG(HF_LOG_ERROR, "breaker_open", HF_LS("route", rc->name),
               HF_LS("request_id", f->request_id), HF_LI("cooldown_ms", rc->breaker_cooldown_ms),
               HF_LS("error", hf_err_label(res->err ? res->err : status_error(res->status))));
        break;
    case HF_BREAKER_EV_CLOSE:
        HF_LOG(HF_LOG_INFO, "breaker_close", HF_LS("route", rc->name),
               HF_LS("request_id", f->request_id));
        break;
    default:
        break;
    }
    if (res->err == HF_OK) {
        int64_t until;
        enum hf_pause_reason pr;
        if (hf_pause_from_response(res->status, res->headers.ptr, res->headers.len, now_wall,
                                   rc->retry.rate_interval_ms, &until, &pr) &&
            hf_pause_until(&st->pause, until, pr)) {
            if (f->engine->fleet != NULL)
                hf_fleet_pause(f->engine->fleet, rc->name, until, (int)pr);
            HF_LOG(HF_LOG_WARN, "rate_limited", HF_LS("route", rc->name),
                   HF_LS("request_id", f->request_id), HF_LS("reason", hf_pause_reason_label(pr)),
                   HF_LI("paused_ms", until - now_wall));
        }
    }
    /* A 304 to the validators holdfast sent: the stored copy is good again.
     * (A 304 to the client's own conditions is the client's, passed on.) */
    if (res->err == HF_OK && res->status == 304 && f->stale != NULL && f->revalidating) {
        f->res.revalidated = true;
        serve_revalidated(f, res);
        return;
    }
    int64_t wait = server_wait_ms(res, now_wall);
    struct hf_retry_decision d =
        hf_retry_decide(&rc->retry, f->method, f->idempotency_key, f->attempts, res->err,
                        res->status, wait, f->started_mono, hf_clock_mono_ms(), hf_random64());
    if (d.action != HF_RETRY_STOP_OK) {
        f->res.error = res->err ? res->err : status_error(res->status);
        f->res.error_status = res->err ? 0 : res->status;
        snprintf(f->res.detail, sizeof f->res.detail, "%s",
                 res->detail[0] ? res->detail : hf_strerror(f->res.error));
        f->res.retry_after_s = wait >= 0 ? (wait + 999) / 1000 : -1;
    }
    switch (d.action) {
    case HF_RETRY_STOP_OK:
        serve_result(f, res);
        return;
    case HF_RETRY_STOP_FINAL:
        if (res->err == HF_OK) {
            /* The API's own answer (a 4xx, or an unsafe request's failure):
             * the client gets it as it is, never a stale copy instead. */
            serve_result(f, res);
            return;
        }
        break;
    case HF_RETRY_WAIT: {
        if (counted(f->engine, f->route))
            hf_metric_inc(f->engine->metrics, HF_M_RETRIES_TOTAL, f->route->index, 0);
        HF_LOG(HF_LOG_WARN, "retry", HF_LS("route", rc->name), HF_LS("request_id", f->request_id),
               HF_LI("attempt", f->attempts), HF_LS("error", hf_err_label(f->res.error)),
               HF_LI("status", f->res.error_status), HF_LI("wait_ms", d.wait_ms));
        if (f->timer == NULL && (f->timer = evtimer_new(f->loop->base, timer_cb, f)) == NULL)
            break;
        struct timeval tv = {(time_t)(d.wait_ms / 1000), (suseconds_t)(d.wait_ms % 1000) * 1000};
        if (evtimer_add(f->timer, &tv) != 0)
            break;
        return;
    }
    case HF_RETRY_EXHAUSTED:
    case HF_RETRY_OUT_OF_TIME:
        if (counted(f->engine, f->route))
            hf_metric_inc(f->engine->metrics, HF_M_RETRY_EXHAUSTED_TOTAL, f->route->index, 0);
        HF_LOG(HF_LOG_WARN, "retry_exhausted", HF_LS("route", rc->name),
               HF_LS("request_id", f->request_id), HF_LI("attempts", f->attempts),
               HF_LS("error", hf_err_label(f->res.error)), HF_LI("status", f->res.error_status),
               HF_LS("reason", d.action == HF_RETRY_EXHAUSTED ? "attempts" : "deadline"),
               HF_LI("refused_wait_ms", d.action == HF_RETRY_OUT_OF_TIME ? d.wait_ms : 0));
        break;
    }
    fallback(f);
}

/*
 * May an attempt go to the API now?  The route's pause (a 429 or a spent
 * API quota), its breaker, its token bucket and its daily quota, in that
 * order (docs/internals/limits.md), so nothing is spent on a request that is
 * then refused.  In a fleet the bucket and quota are Redis's (fleet.h),
 * asked without waiting on this loop; while Redis is away, this instance's
 * share of them.  Either way the attempt is sent (send_attempt) or refused
 * (blocked): it falls back, or tries again once a token is due.
 */
static void send_attempt(struct hf_flow *f);

static void blocked(struct hf_flow *f, hf_err why, enum hf_stale_reason reason, int64_t wait_ms)
{
    if (wait_ms > 0) {
        wait_then_attempt(f, wait_ms);
        return;
    }
    if (f->attempts == 0) {
        /* nothing was sent: say why, and serve the copy without forwarding */
        f->res.error = why;
        f->res.stale_reason = reason;
        snprintf(f->res.detail, sizeof f->res.detail, "%s", hf_strerror(why));
    }
    HF_LOG(HF_LOG_INFO, "blocked", HF_LS("route", f->route->cfg.name),
           HF_LS("request_id", f->request_id), HF_LS("reason", hf_err_label(why)),
           HF_LI("retry_after_s", f->res.retry_after_s));
    fallback(f);
}

/* The route's own state: its pause and its breaker.  False, with why, the
 * stale reason and the seconds until it may open, when either holds. */
static bool route_gate_open(const struct hf_route *route, hf_err *why, enum hf_stale_reason *reason,
                            int64_t *retry_after_s)
{
    struct hf_route_state *st = route->state;
    int64_t wall = hf_clock_wall_ms(), mono = hf_clock_mono_ms(), until;
    if (hf_pause_active(&st->pause, wall, &until, NULL)) {
        *why = HF_RATE_LIMITED;
        *reason = HF_STALE_RATE_LIMITED;
        *retry_after_s = (until - wall + 999) / 1000;
        return false;
    }
    if (hf_breaker_state(&st->breaker, mono) == HF_BREAKER_OPEN) {
        *why = HF_CIRCUIT_OPEN;
        *reason = HF_STALE_BREAKER_OPEN;
        *retry_after_s = (hf_breaker_open_until(&st->breaker) - mono + 999) / 1000;
        return false;
    }
    return true;
}

static bool gate_open(struct hf_flow *f, hf_err *why, enum hf_stale_reason *reason)
{
    return route_gate_open(f->route, why, reason, &f->res.retry_after_s);
}

/* No token for tok_wait ms: whether to wait for it (> 0) or fall back (0).
 * With no copy to serve, the request waits if the deadline (or, without
 * one, the attempt timeout) allows; a refresh run is paced and waits. */
static int64_t token_wait(struct hf_flow *f, int64_t tok_wait)
{
    const struct hf_route_config *rc = &f->route->cfg;
    int64_t mono = hf_clock_mono_ms();
    f->res.retry_after_s = (tok_wait + 999) / 1000;
    int64_t budget = rc->retry.deadline_ms > 0 ? f->started_mono + rc->retry.deadline_ms - mono
                                               : (rc->timeout_ms > 0 ? rc->timeout_ms : 10000);
    if (f->refresh)
        budget = budget > 600000 ? budget : 600000;
    if ((f->stale == NULL || f->refresh) && tok_wait <= budget)
        return tok_wait > 0 ? tok_wait : 1;
    return 0;
}

/* This process's bucket and quota (alone, or its share in a fleet). */
static void gate_local(struct hf_flow *f)
{
    struct hf_route_state *st = f->route->state;
    int64_t wall = hf_clock_wall_ms(), mono = hf_clock_mono_ms();
    int64_t tok_wait = 0;
    if (st->has_bucket && !hf_bucket_take(&st->bucket, mono, &tok_wait)) {
        blocked(f, HF_RATE_LIMITED, HF_STALE_RATE_LIMITED, token_wait(f, tok_wait));
        return;
    }
    if (st->has_quota && !hf_quota_take(&st->quota, wall)) {
        if (st->has_bucket)
            hf_bucket_refund(&st->bucket);
        f->res.retry_after_s = (hf_quota_reset_at(&st->quota, wall) - wall + 999) / 1000;
        blocked(f, HF_QUOTA_SPENT, HF_STALE_QUOTA_SPENT, 0);
        return;
    }
    if (!hf_breaker_allow(&st->breaker, mono)) {
        if (st->has_bucket)
            hf_bucket_refund(&st->bucket);
        if (st->has_quota)
            hf_quota_refund(&st->quota, wall);
        f->res.retry_after_s = (hf_breaker_open_until(&st->breaker) - mono + 999) / 1000;
        blocked(f, HF_CIRCUIT_OPEN, HF_STALE_BREAKER_OPEN, 0);
        return;
    }
    if (st->has_quota)
        hf_engine_quota_save(f->engine, f->route);
    send_attempt(f);
}

/* The fleet's answer to a take (hf_fleet_take), on this loop. */
static void on_take(const struct hf_fleet_answer *a, void *arg)
{
    struct hf_flow *f = arg;
    if (f->magic != FLOW_MAGIC)
        abort();
    f->fleet_job = NULL;
    struct hf_route_state *st = f->route->state;
    int64_t wall = hf_clock_wall_ms(), mono = hf_clock_mono_ms();
    if ((a->verdict == HF_FLEET_GO || a->verdict == HF_FLEET_RATE ||
         a->verdict == HF_FLEET_QUOTA) &&
        a->quota_left >= 0) {
        int64_t per = st->fleet_limits.quota_per_ms;
        atomic_store(&st->fleet_quota_window, f->take_ms - f->take_ms % per);
        atomic_store(&st->fleet_quota_left, a->quota_left);
    }
    switch (a->verdict) {
    case HF_FLEET_GO:
        if (!hf_breaker_allow(&st->breaker, mono)) {
            hf_fleet_refund(f->engine->fleet, &st->fleet_limits, f->take_ms);
            f->res.retry_after_s = (hf_breaker_open_until(&st->breaker) - mono + 999) / 1000;
            blocked(f, HF_CIRCUIT_OPEN, HF_STALE_BREAKER_OPEN, 0);
            return;
        }
        send_attempt(f);
        return;
    case HF_FLEET_RATE:
        blocked(f, HF_RATE_LIMITED, HF_STALE_RATE_LIMITED, token_wait(f, a->wait_ms));
        return;
    case HF_FLEET_QUOTA:
        f->res.retry_after_s = (a->until_ms - wall + 999) / 1000;
        blocked(f, HF_QUOTA_SPENT, HF_STALE_QUOTA_SPENT, 0);
        return;
    case HF_FLEET_PAUSED:
        /* another instance was told to wait: so is this one */
        hf_pause_until(&st->pause, a->until_ms, (enum hf_pause_reason)a->pause_reason);
        f->res.retry_after_s = (a->until_ms - wall + 999) / 1000;
        blocked(f, HF_RATE_LIMITED, HF_STALE_RATE_LIMITED, 0);
        return;
    default: /* Redis away: this instance's share */
        gate_local(f);
        return;
    }
}

static void wait_then_attempt(struct hf_flow *f, int64_t wait_ms)
{
    if (f->timer == NULL && (f->timer = evtimer_new(f->loop->base, timer_cb, f)) == NULL) {
        fallback(f);
        return;
    }
    struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
    if (evtimer_add(f->timer, &tv) != 0)
        fallback(f);
}

static void attempt(struct hf_flow *f)
{
    struct hf_route_state *st = f->route->state;
    hf_err why;
    enum hf_stale_reason reason;
    if (!gate_open(f, &why, &reason)) {
        /* A retry timed to the API's Retry-After meets the pause that same
         * answer set, ending a hair later by the wall clock: it waits the
         * rest rather than give up (only a retry, and only a short rest). */
        int64_t until = 0, wall = hf_clock_wall_ms();
        if (f->attempts > 0 && why == HF_RATE_LIMITED &&
            hf_pause_active(&st->pause, wall, &until, NULL) && until - wall <= PAUSE_SLACK_MS) {
            blocked(f, why, reason, until - wall + 1);
            return;
        }
        blocked(f, why, reason, 0);
        return;
    }
    struct hf_fleet *fleet = f->engine->fleet;
    if (fleet != NULL && st->fleet_limited && hf_fleet_up(fleet)) {
        f->take_ms = hf_clock_wall_ms();
        if (hf_fleet_take(fleet, f->loop->base, &st->fleet_limits, f->take_ms, on_take, f,
                          &f->fleet_job) == HF_OK)
            return;
    }
    gate_local(f);
}

/* The gates let this attempt through: send it. */
static void send_attempt(struct hf_flow *f)
{
    const struct hf_route_config *rc = &f->route->cfg;
    int64_t timeout = rc->timeout_ms > 0 ? rc->timeout_ms : 10000;
    if (rc->retry.deadline_ms > 0) {
        int64_t left = f->started_mono + rc->retry.deadline_ms - hf_clock_mono_ms();
        if (left <= 0) {
            f->res.error = f->attempts ? f->res.error : HF_DEADLINE;
            fallback(f);
            return;
        }
        if (left < timeout)
            timeout = left;
    }
    struct hf_up_request req = {
        .method = f->method,
        .url = f->url,
        .headers = f->hdrs,
        .nheaders = f->nhdrs,
        .body = f->body,
        .body_len = f->body_len,
        .timeout_ms = timeout,
        .connect_timeout_ms = rc->connect_timeout_ms,
        .max_body = rc->max_body,
        .tls_verify = rc->tls_verify,
    };
    f->attempts++;
    f->request_wall = hf_clock_wall_ms();
    hf_err err = hf_upstream_start(f->loop->upstream, &req, on_result, f, &f->xfer);
    if (err) {
        f->res.error = err;
        snprintf(f->res.detail, sizeof f->res.detail, "%s", hf_strerror(err));
        fallback(f);
    }
}

/* --- start ----------------------------------------------------------------- */

static hf_err add_header(struct hf_flow *f, const char *name, const char *value)
{
    if (f->nhdrs >= f->cap_hdrs)
        return HF_EINVAL;
    if (value == NULL)
        value = "";
    size_t nl = strlen(name), vl = strlen(value);
    char *n = malloc(nl + 1 + vl + 1);
    if (n == NULL)
        return HF_ENOMEM;
    memcpy(n, name, nl + 1);
    memcpy(n + nl + 1, value, vl + 1);
    f->hdrs[f->nhdrs++] = (struct hf_header){n, n + nl + 1};
    return HF_OK;
}

static bool named(const struct hf_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return true;
    return false;
}

/* The caller's headers, with the route's injected ones replacing any of the
 * same name (a client never overrides the configured credentials). */
static hf_err build_headers(struct hf_flow *f, const struct hf_flow_request *req)
{
    const struct hf_route_config *rc = &f->route->cfg;
    if (req->nheaders > FLOW_MAX_HEADERS)
        return HF_EINVAL;
    f->cap_hdrs = req->nheaders + rc->nheaders + FLOW_EXTRA_HEADERS;
    if ((f->hdrs = calloc(f->cap_hdrs, sizeof *f->hdrs)) == NULL)
        return HF_ENOMEM;
    hf_err err = HF_OK;
    for (size_t i = 0; !err && i < req->nheaders; i++) {
        if (named(rc->headers, rc->nheaders, req->headers[i].name))
            continue;
        if (strcasecmp(req->headers[i].name, "Idempotency-Key") == 0)
            f->idempotency_key = true;
        err = add_header(f, req->headers[i].name, req->headers[i].value);
    }
    for (size_t i = 0; !err && i < rc->nheaders; i++)
        err = add_header(f, rc->headers[i].name, rc->headers[i].value);
    return err;
}

/* The route's vary headers split the key: "K\nname=value;...". */
static bool append_vary(const struct hf_route *r, const struct hf_flow_request *req, char *key,
                        size_t size)
{
    const struct hf_route_config *rc = &r->cfg;
    if (rc->nvary == 0)
        return true;
    char buf[HF_VARY_KEY_MAX];
    const char *vk = buf;
    /* The library's hf_get() sends no headers: the same key every time.  A
     * background route's copies are fetched without any client's headers,
     * so every request reads that same variant. */
    if ((req->nheaders == 0 || r->background) && r->vary_none != NULL)
        vk = r->vary_none;
    else if (hf_vary_key("", 0, rc->vary, rc->nvary, req->headers, req->nheaders, buf,
                         sizeof buf) != HF_VARY_OK)
        return false;
    size_t kl = strlen(key), vl = strlen(vk);
    if (kl + 1 + vl >= size)
        return false;
    if (vl > 0) {
        key[kl] = '\n';
        memcpy(key + kl + 1, vk, vl + 1);
    }
    return true;
}

static int64_t age_s(const struct hf_entry *e, int64_t now_ms)
{
    return now_ms > e->stored_at_ms ? (now_ms - e->stored_at_ms) / 1000 : 0;
}

/*
 * The copy at hand is known (f->stale, or none): ask the API, revalidating
 * the copy when it has a validator and the caller set no conditions of its
 * own, and arm the early answer (stale-while-revalidate, latency budget).
 */
/* --- fleet: one fetch per key across instances ----------------------------- */

#define FLEET_LOCK_MIN_MS 1000
#define FLEET_LOCK_MAX_MS 60000
#define FLEET_READS 5 /* looks for the holder's copy, 10 ms apart and doubling */

/* How long a fetch may hold its key: the whole of its retries, so a holder
 * that dies releases it by expiry without stranding the others for long. */
static int64_t lock_ttl(const struct hf_route_config *rc)
{
    int64_t t = rc->retry.deadline_ms;
    if (t <= 0) {
        int64_t one = rc->timeout_ms > 0 ? rc->timeout_ms : 10000;
        t = one * (rc->retry.attempts > 0 ? rc->retry.attempts : 1) + rc->retry.max_backoff_ms;
    }
    return t < FLEET_LOCK_MIN_MS   ? FLEET_LOCK_MIN_MS
           : t > FLEET_LOCK_MAX_MS ? FLEET_LOCK_MAX_MS
                                   : t;
}

static void fleet_look(struct hf_flow *f);
static void fleet_timer_cb(evutil_socket_t fd, short what, void *arg);

/* The copy another instance stored, or not (yet). */
static void on_fleet_copy(struct hf_entry *e, void *arg)
{
    struct hf_flow *f = arg;
    if (f->magic != FLOW_MAGIC)
        abort();
    f->read_job = NULL;
    int64_t now = hf_clock_wall_ms();
    bool newer = e != NULL && e->fresh_until_ms > now &&
                 (f->stale == NULL || e->stored_at_ms > f->stale->stored_at_ms);
    if (newer) {
        hf_store_put(f->engine->mem, e); /* read past memory: it keeps the new copy */
        f->res.entry = e;
        f->res.collapsed = true;
        finish(f, HF_SOURCE_FRESH);
        return;
    }
    hf_entry_release(&e);
    if (++f->fleet_reads >= FLEET_READS) {
        attempt(f); /* the copy never showed: fetch it here */
        return;
    }
    /* The holder's write may still be on its way to Redis. */
    if (f->fleet_timer == NULL &&
        (f->fleet_timer = evtimer_new(f->loop->base, fleet_timer_cb, f)) == NULL) {
        attempt(f);
        return;
    }
    int64_t ms = (int64_t)10 << (f->fleet_reads - 1);
    struct timeval tv = {0, (suseconds_t)ms * 1000};
    if (evtimer_add(f->fleet_timer, &tv) != 0)
        attempt(f);
}

static void fleet_look(struct hf_flow *f)
{
    if (hf_reader_get_deep(f->engine->reader, f->loop->base, f->key, hf_clock_wall_ms(), true,
                           on_fleet_copy, f, &f->read_job) != HF_OK)
        attempt(f);
}

static void fleet_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fleet_look(arg);
}

/* Another instance's fetch of the key ended (or the wait did). */
static void on_fleet_wait(const struct hf_fleet_answer *a, void *arg)
{
    struct hf_flow *f = arg;
    if (f->magic != FLOW_MAGIC)
        abort();
    f->fleet_job = NULL;
    if (a->verdict == HF_FLEET_DONE && a->outcome == HF_FLEET_STORED)
        fleet_look(f);
    else
        attempt(f); /* it failed, died or overran, or Redis went: fetch here */
}

static void on_lock(const struct hf_fleet_answer *a, void *arg)
{
    struct hf_flow *f = arg;
    if (f->magic != FLOW_MAGIC)
        abort();
    f->fleet_job = NULL;
    if (a->verdict == HF_FLEET_GO) {
        f->fleet_locked = true;
    } else if (a->verdict == HF_FLEET_HELD) {
        if (counted(f->engine, f->route))
            hf_metric_inc(f->engine->metrics, HF_M_COALESCED_TOTAL, f->route->index, 0);
        if (hf_fleet_wait(f->engine->fleet, f->loop->base, f->key, lock_ttl(&f->route->cfg),
                          on_fleet_wait, f, &f->fleet_job) == HF_OK)
            return;
    }
    attempt(f);
}

static hf_err proceed(struct hf_flow *f)
{
    const struct hf_route_config *rc = &f->route->cfg;
    hf_err err;
    /* Revalidate rather than refetch when the copy has a validator and the
     * caller set no conditions of its own. */
    if (f->stale != NULL && f->cacheable && !named(f->hdrs, f->nhdrs, "If-None-Match") &&
        !named(f->hdrs, f->nhdrs, "If-Modified-Since")) {
        if (f->stale->etag != NULL && (err = add_header(f, "If-None-Match", f->stale->etag)))
            return err;
        if (f->stale->last_modified != NULL &&
            (err = add_header(f, "If-Modified-Since", f->stale->last_modified)))
            return err;
        f->revalidating = f->stale->etag != NULL || f->stale->last_modified != NULL;
    }
    /* Answer early with the copy: at once inside the API's
     * stale-while-revalidate window (RFC 5861, when the API's own caching
     * rules apply), else when latency_budget runs out. */
    if (f->loop->persistent && f->stale != NULL && !f->refresh) {
        int64_t now = hf_clock_wall_ms();
        struct hf_cache_control cc;
        cache_control_of(f->stale->headers ? f->stale->headers : "", f->stale->headers_len, &cc);
        if (rc->fresh_for_ms < 0 && cc.stale_while_revalidate_s > 0 && !cc.must_revalidate &&
            now < add_sat(f->stale->fresh_until_ms, cc.stale_while_revalidate_s * 1000)) {
            f->early = HF_STALE_REVALIDATING;
            arm_budget(f->loop->base, &f->budget, budget_cb, f, 0);
        } else if (rc->latency_budget_ms > 0) {
            f->early = HF_STALE_LATENCY_BUDGET;
            arm_budget(f->loop->base, &f->budget, budget_cb, f, rc->latency_budget_ms);
        }
    }
    /* In a fleet, one instance fetches a key for all of them. */
    struct hf_fleet *fleet = f->engine->fleet;
    if (fleet != NULL && f->leader && !f->refresh && f->engine->reader != NULL &&
        hf_fleet_up(fleet) &&
        hf_fleet_lock(fleet, f->loop->base, f->key, lock_ttl(rc), on_lock, f, &f->fleet_job) ==
            HF_OK)
        return HF_OK;
    attempt(f);
    return HF_OK;
}

/* --- background routes ---------------------------------------------------- */

/*
 * Whether the copy at hand answers the request without the API: fresh, or,
 * for a refresh run, younger than the run's min_age_ms (refreshed by a
 * recent run, or by another process sharing the store).
 */
static bool current(bool refresh, int64_t min_age_ms, const struct hf_entry *e, int64_t now)
{
    if (refresh)
        return min_age_ms > 0 && now - e->stored_at_ms < min_age_ms;
    return e->fresh_until_ms > now;
}

/* A background route's key without its variant part: every request reads
 * the one variant a refresh stores, so the schedule knows keys by this. */
static const char *bg_key(const char *key, char *buf)
{
    size_t n = strcspn(key, "\n");
    if (key[n] == '\0')
        return key;
    memcpy(buf, key, n);
    buf[n] = '\0';
    return buf;
}

/* Note a user's key for the schedule (refresh.learn), unless it is listed. */
static void bg_learn(const struct hf_route *r, const char *key, const char *target, int64_t now)
{
    char buf[HF_CACHE_KEY_MAX];
    if (r->state->learned == NULL || target == NULL)
        return;
    key = bg_key(key, buf);
    if (!hf_route_static_key(r, key))
        hf_learn_touch(r->state->learned, key, target, now);
}

/* A background route's copy, whatever its age: current while younger than
 * the longest gap between runs, else stale with detail "background".
 * Takes the reference to copy (done may take it from the result). */
static void bg_serve(struct hf_engine *e, const struct hf_route *r, struct hf_entry *copy,
                     int64_t now, hf_flow_done_fn done, void *arg)
{
    bool behind = now - copy->stored_at_ms > r->refresh_interval_ms;
    struct hf_flow_result res = {.source = behind ? HF_SOURCE_STALE : HF_SOURCE_FRESH,
                                 .entry = copy,
                                 .age_s = age_s(copy, now),
                                 .retry_after_s = -1,
                                 .stale_reason = behind ? HF_STALE_BACKGROUND : HF_STALE_NONE,
                                 .had_copy = true,
                                 .copy_stored_at_ms = copy->stored_at_ms,
                                 .ttl_until_ms =
                                     add_sat(copy->stored_at_ms, r->refresh_interval_ms)};
    if (behind)
        count_stale_served(e, r, HF_STALE_BACKGROUND, copy, now);
    done(&res, arg);
    hf_entry_release(&res.entry);
}

/* No copy, and the route may not ask the API for it: 503, saying when the
 * schedule will bring it, or that it never will. */
static void bg_reject(const struct hf_route *r, const char *key, const char *target,
                      const char *request_id, int64_t now, hf_flow_done_fn done, void *arg)
{
    struct hf_flow_result res = {.error = HF_NOT_REFRESHED, .retry_after_s = -1};
    const char *name = r->cfg.name;
    const char *shown = target != NULL ? target : "this key";
    int64_t next = atomic_load(&r->state->refresh.next_run_ms);
    char buf[HF_CACHE_KEY_MAX];
    key = bg_key(key, buf);
    bool scheduled = hf_route_static_key(r, key) ||
                     (r->state->learned != NULL && hf_learn_has(r->state->learned, key, now));
    if (!scheduled && r->state->learned == NULL)
        snprintf(res.detail, sizeof res.detail,
                 "%.100s is not one of route %s's refresh.keys, and refresh.learn is off", shown,
                 name);
    else if (!scheduled)
        snprintf(res.detail, sizeof res.detail,
                 "route %s already refreshes refresh.max_keys (%d) learned keys: %.100s is not "
                 "refreshed",
                 name, r->cfg.refresh_max_keys, shown);
    else if (next > now) {
        char when[40];
        hf_http_date_format(next / 1000, when, sizeof when);
        res.retry_after_s = (next - now + 999) / 1000;
        snprintf(res.detail, sizeof res.detail,
                 "no copy of %.100s yet: route %s is refreshed in the background; the next run "
                 "starts %s",
                 shown, name, when);
    } else
        snprintf(res.detail, sizeof res.detail,
                 "no copy of %.100s yet: route %s is refreshed in the background, by its next run",
                 shown, name);
    HF_LOG(HF_LOG_DEBUG, "not_refreshed", HF_LS("route", name), HF_LS("request_id", request_id),
           HF_LS("detail", res.detail));
    done(&res, arg);
}

/* A miss on a background route: `on_miss: fetch` asks the API once for the
 * key (a GET without the client's headers, as a refresh sends it). */
static hf_err bg_miss(struct hf_flow_loop *loop, const struct hf_route *r, const char *method,
                      const char *key, const char *target, const char *request_id,
                      hf_flow_done_fn done, void *arg, char *errbuf, size_t errlen)
{
    int64_t now = hf_clock_wall_ms();
    char buf[HF_CACHE_KEY_MAX];
    if (r->cfg.refresh_on_miss == HF_ON_MISS_FETCH && target != NULL &&
        strcmp(method, "GET") == 0 && r->state->learned != NULL &&
        hf_learn_claim_fetch(r->state->learned, bg_key(key, buf), target, now)) {
        struct hf_flow_request fr = {.route = r,
                                     .method = "GET",
                                     .target = target,
                                     .request_id = request_id,
                                     .fetch_once = true};
        return hf_flow_start(loop, &fr, done, arg, errbuf, errlen);
    }
    bg_reject(r, key, target, request_id, now, done, arg);
    return HF_OK;
}

/* The reader's answer for a background request that missed memory. */
static void bg_after_disk(struct hf_flow *f, struct hf_entry *e, int64_t now)
{
    if (e != NULL) {
        bg_serve(f->engine, f->route, e, now, f->done, f->arg);
        flow_free(f);
        return;
    }
    char err[256];
    hf_err rc = bg_miss(f->loop, f->route, f->method, f->key, f->target, f->request_id, f->done,
                        f->arg, err, sizeof err);
    if (rc) {
        struct hf_flow_result r = {.error = rc, .retry_after_s = -1};
        snprintf(r.detail, sizeof r.detail, "%s", err);
        f->done(&r, f->arg);
    }
    flow_free(f);
}

/* The reader's answer for a memory-tier miss, back on the flow's loop. */
static void on_disk(struct hf_entry *e, void *arg)
{
    struct hf_flow *f = arg;
    if (f->magic != FLOW_MAGIC)
        abort();
    f->read_job = NULL;
    int64_t now = hf_clock_wall_ms();
    if (f->background) {
        bg_after_disk(f, e, now);
        return;
    }
    if (f->stale != NULL) {
        /* A deep look past memory's own copy: keep the newer of the two;
         * memory keeps it from now on. */
        if (e != NULL && e->stored_at_ms > f->stale->stored_at_ms) {
            hf_store_put(f->engine->mem, e);
            hf_entry_release(&f->stale);
        } else {
            hf_entry_release(&e);
            e = f->stale;
        }
        f->stale = NULL;
    }
    if (e != NULL && current(f->refresh, f->min_age_ms, e, now)) {
        f->res.entry = e; /* waiters get it too: a stored copy is shareable */
        finish(f, HF_SOURCE_FRESH);
        return;
    }
    f->stale = e;
    hf_err err = proceed(f);
    if (err) {
        f->res.error = err;
        fallback(f);
    }
}

hf_err hf_flow_start(struct hf_flow_loop *loop, const struct hf_flow_request *req,
                     hf_flow_done_fn done, void *arg, char *errbuf, size_t errlen)
{
    const struct hf_route_config *rc = &req->route->cfg;
    const char *method = req->method ? req->method : "GET";
    /* A user request on a background route reads the cache only; the copies
     * there are the route's own (fetched with its credentials alone), so
     * Authorization makes no difference. */
    bool background = req->route->background && !req->refresh && !req->fetch_once;
    if (background && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        snprintf(errbuf, errlen, "route %s is refreshed in the background: only GET and HEAD",
                 rc->name);
        return HF_EINVAL;
    }
    /* Only GET answers are cached; the key never includes injected secrets. */
    bool cacheable = strcmp(method, "GET") == 0 && (!req->bypass || req->route->background);
    /* HEAD reads the GET copy (its fields, no body) but never fills the cache. */
    bool head = strcmp(method, "HEAD") == 0 && (!req->bypass || background);
    struct hf_entry *stale = NULL;
    char key[HF_CACHE_KEY_MAX];
    hf_err err;

    /* The hot path: a fresh copy completes the request here, before anything
     * is allocated for the trip to the API. */
    if (cacheable || head) {
        const char *target = req->url ? req->url : req->target;
        err = hf_cache_key("GET", rc->name, target ? target : "/", rc->ignore_params,
                           rc->nignore_params, key, sizeof key);
        if (err) {
            /* Let the URL parser name the problem when it sees one. */
            char *url = NULL;
            if (hf_upstream_build_url(req->url ? req->url : rc->upstream,
                                      req->url ? NULL : req->target, NULL, 0, &url, errbuf,
                                      errlen) == HF_OK)
                snprintf(errbuf, errlen, "request target too long or malformed");
            free(url);
            return HF_BAD_URL;
        }
        if (!append_vary(req->route, req, key, sizeof key))
            cacheable = head = false; /* cannot be keyed: pass it through */
    }
    const char *target = req->url ? NULL : req->target;
    /* A worker looks in memory only; the file is the reader thread's. */
    bool ask_disk = false, deep = false;
    if (cacheable || head) {
        int64_t now = hf_clock_wall_ms();
        bool split = loop->persistent && loop->engine->reader != NULL;
        struct hf_store *look = split ? loop->engine->mem : loop->engine->store;
        hf_err found = hf_store_get_stale(look, key, now, &stale);
        ask_disk = split && found != HF_OK;
        /* In a fleet another instance may have stored a newer copy than
         * memory's stale one: look in the shared tier before the API. */
        deep = split && found == HF_OK && !background && loop->engine->shared != NULL &&
               !current(req->refresh, req->min_age_ms, stale, now);
        if (background) {
            bg_learn(req->route, key, target, now);
            if (found == HF_OK) {
                bg_serve(loop->engine, req->route, stale, now, done, arg);
                return HF_OK;
            }
            if (!ask_disk)
                return bg_miss(loop, req->route, method, key, target, req->request_id, done, arg,
                               errbuf, errlen);
        } else if (found == HF_OK && current(req->refresh, req->min_age_ms, stale, now)) {
            struct hf_flow_result res = {.source = HF_SOURCE_FRESH,
                                         .entry = stale,
                                         .age_s = age_s(stale, now),
                                         .retry_after_s = -1};
            done(&res, arg);
            hf_entry_release(&res.entry);
            return HF_OK;
        }
    }

    if (req->nheaders > FLOW_MAX_HEADERS) {
        hf_entry_release(&stale);
        snprintf(errbuf, errlen, "too many request headers (at most %d)", FLOW_MAX_HEADERS);
        return HF_EINVAL;
    }
    /* The route paused or its breaker open, and a copy at hand: serve it
     * now, as a flow would after being refused at the gate, without one. */
    if (cacheable && !background && !req->refresh && stale != NULL &&
        stale->stale_until_ms > hf_clock_wall_ms()) {
        struct hf_flow_result res = {.source = HF_SOURCE_STALE, .entry = stale};
        if (!route_gate_open(req->route, &res.error, &res.stale_reason, &res.retry_after_s)) {
            int64_t now = hf_clock_wall_ms();
            res.age_s = age_s(stale, now);
            res.had_copy = true;
            res.copy_stored_at_ms = stale->stored_at_ms;
            snprintf(res.detail, sizeof res.detail, "%s", hf_strerror(res.error));
            count_stale_served(loop->engine, req->route, res.stale_reason, stale, now);
            log_stale_served(req->route, req->request_id, res.age_s, res.stale_reason, res.error,
                             0);
            done(&res, arg);
            hf_entry_release(&stale);
            return HF_OK;
        }
    }
    /* Coalescing: when the key is already being fetched, wait for that;
     * with a stale copy at hand and that fetch out longer than the latency
     * budget already, answer with the copy at once (nginx's "updating"). */
    bool leader = false;
    int64_t mono = hf_clock_mono_ms();
    if (cacheable && !req->alone && !background && loop->persistent && rc->latency_budget_ms > 0 &&
        stale != NULL) {
        int64_t since = hf_inflight_since(loop->engine->inflight, key);
        if (since >= 0 && mono - since >= rc->latency_budget_ms) {
            if (counted(loop->engine, req->route))
                hf_metric_inc(loop->engine->metrics, HF_M_COALESCED_TOTAL, req->route->index, 0);
            answer_budget_stale(loop->engine, req->route, stale, done, arg);
            hf_entry_release(&stale);
            return HF_OK;
        }
    }
    if (cacheable && !req->alone && !background) {
        struct flow_waiter *w = calloc(1, sizeof *w);
        if (w == NULL) {
            hf_entry_release(&stale);
            return HF_ENOMEM;
        }
        w->magic = WAITER_MAGIC;
        w->done = done;
        w->arg = arg;
        w->ev = event_new(loop->base, -1, 0, waiter_wake, w);
        if (w->ev == NULL || waiter_keep_request(w, loop, req) != HF_OK) {
            waiter_free(w);
            hf_entry_release(&stale);
            return HF_ENOMEM;
        }
        if (loop->persistent && rc->latency_budget_ms > 0 && stale != NULL) {
            w->stale = hf_entry_ref(stale);
            if (!arm_budget(loop->base, &w->budget, waiter_budget_cb, w, rc->latency_budget_ms))
                hf_entry_release(&w->stale);
        }
        switch (hf_inflight_join(loop->engine->inflight, key, &w->link, mono)) {
        case HF_JOIN_WAITER:
            if (counted(loop->engine, req->route))
                hf_metric_inc(loop->engine->metrics, HF_M_COALESCED_TOTAL, req->route->index, 0);
            hf_entry_release(&stale);
            return HF_OK; /* w belongs to the leader's list until it wakes */
        case HF_JOIN_LEADER:
            leader = true;
            break;
        case HF_JOIN_ALONE:
            break;
        }
        waiter_free(w);
    }

    /* An unsafe method's success invalidates the GET copy of its target. */
    char ikey[HF_CACHE_KEY_MAX];
    const char *fkey = cacheable || head ? key : "";
    if (!cacheable && req->target != NULL && strcmp(method, "HEAD") != 0 &&
        strcmp(method, "OPTIONS") != 0 && strcmp(method, "TRACE") != 0 &&
        strcmp(method, "GET") != 0 &&
        hf_cache_key("GET", rc->name, req->target, rc->ignore_params, rc->nignore_params, ikey,
                     sizeof ikey) == HF_OK &&
        append_vary(req->route, req, ikey, sizeof ikey))
        fkey = ikey;
    size_t fkey_len = strlen(fkey);

    err = HF_ENOMEM;
    struct hf_flow *f = calloc(1, sizeof *f + fkey_len + 1);
    if (f == NULL) {
        hf_entry_release(&stale);
        if (leader)
            fail_waiters(loop->engine, key, HF_ENOMEM);
        return HF_ENOMEM;
    }
    f->leader = leader;
    f->magic = FLOW_MAGIC;
    f->loop = loop;
    f->next = loop->flows;
    if (loop->flows != NULL)
        loop->flows->prev = f;
    loop->flows = f;
    f->engine = loop->engine;
    f->route = req->route;
    f->done = done;
    f->arg = arg;
    f->cacheable = cacheable;
    f->stale = stale; /* the copy to fall back on or revalidate: owned by f now */
    f->key = (char *)(f + 1);
    memcpy(f->key, fkey, fkey_len + 1);
    f->invalidate = fkey == ikey;
    f->res.retry_after_s = -1;
    f->started_mono = hf_clock_mono_ms();
    f->refresh = req->refresh;
    f->min_age_ms = req->min_age_ms;
    f->background = background;
    if (background && target != NULL && (f->target = strdup(target)) == NULL)
        goto out;
    if (req->request_id != NULL)
        snprintf(f->request_id, sizeof f->request_id, "%s", req->request_id);
    else
        snprintf(f->request_id, sizeof f->request_id, "%016llx", (unsigned long long)hf_random64());
    if ((f->method = strdup(method)) == NULL)
        goto out;
    if (req->body_len > 0) {
        if ((f->body = malloc(req->body_len)) == NULL)
            goto out;
        memcpy(f->body, req->body, req->body_len);
        f->body_len = req->body_len;
    }
    if ((err = build_headers(f, req))) {
        snprintf(errbuf, errlen, "too many request headers (at most %d)", FLOW_MAX_HEADERS);
        goto out;
    }
    const char *base = req->url ? req->url : rc->upstream;
    if (base == NULL) {
        snprintf(errbuf, errlen, "route %s has no upstream URL", rc->name);
        err = HF_BAD_URL;
        goto out;
    }
    err = hf_upstream_build_url(base, req->url ? NULL : req->target, rc->query, rc->nquery, &f->url,
                                errbuf, errlen);
    if (err)
        goto out;
    if (ask_disk || deep) {
        /* A memory-tier miss on a worker (or a stale copy a fleet may have
         * renewed): the tiers below are read by the reader thread, never
         * by this loop. */
        err = hf_reader_get_deep(loop->engine->reader, loop->base, key, hf_clock_wall_ms(), deep,
                                 on_disk, f, &f->read_job);
        if (err)
            goto out;
        return HF_OK;
    }
    if ((err = proceed(f)))
        goto out;
    return HF_OK;
out:
    if (f->leader) {
        /* nobody can have joined yet without being handed back: hand them
         * the failure so they are not left waiting */
        f->res.error = err;
        f->res.retry_after_s = -1;
        release_waiters(f);
    }
    flow_free(f);
    return err;
}

void hf_flow_loop_abort(struct hf_flow_loop *loop)
{
    while (loop->flows != NULL) {
        struct hf_flow *f = loop->flows;
        hf_upstream_cancel(&f->xfer);
        if (f->res.error == HF_OK)
            f->res.error = HF_UPSTREAM;
        snprintf(f->res.detail, sizeof f->res.detail, "holdfast is shutting down");
        fallback(f); /* answers (stale or none) unless it already did, then frees f */
    }
}
