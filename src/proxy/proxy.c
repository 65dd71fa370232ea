/*
 * The proxy front end: evhttp requests in, engine flows, responses out.
 *
 * Each worker thread owns a loop, an HTTP/1.1 server (h1.h) on its own
 * SO_REUSEPORT socket (the kernel spreads connections), and a curl multi
 * handle.  A
 * request is matched to a route (longest prefix), checked (no absolute-form,
 * no CONNECT, no escaping the prefix: holdfast is never an open proxy),
 * turned into a flow, and answered from the flow's result with Age,
 * Cache-Status (RFC 9211) and X-Request-Id; when nothing can be served the
 * answer is an RFC 9457 problem document.  Bodies of cached answers are sent
 * by reference (the entry stays alive until they are written).  The admin
 * listener uses evhttp (hf__new_http): it is not on the hot path.
 */
#include "proxy/proxy.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <holdfast/config.h>

#include "cache/store_impl.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/listen.h"
#include "core/out.h"
#include "engine/engine.h"
#include "http/cache_key.h"
#include "http/headers.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "proxy/h1.h"
#include "proxy/proxy_impl.h"
#include "proxy/static.h"
#include "upstream/upstream.h"

#define PREQ_MAGIC 0x70726571u /* "preq" */
#define MAX_REQ_HEADERS 100
#define MAX_HEADER_BYTES HF_H1_MAX_HEADER_BYTES
#define MAX_REQUEST_BODY HF_H1_MAX_BODY_BYTES
#define CLIENT_TIMEOUT_S HF_H1_IDLE_TIMEOUT_S

/* One client request in progress. */
struct preq {
    unsigned magic;
    struct hf_h1_req *req;
    struct worker *w;
    struct hf_engine *engine; /* the generation the request started on */
    const struct hf_route *route;
    int64_t started_us; /* monotonic */
    bool head;
    bool unsafe; /* not GET or HEAD: "fwd=method" when passed on */
    char method[16];
    char request_id[72];
    char path[256]; /* for the log line: the path without its query */
};

/* The methods holdfast passes on; others are refused (501). */
static bool known_method(const char *m)
{
    static const char *const known[] = {"GET",   "HEAD",    "POST",  "PUT",    "DELETE",
                                        "PATCH", "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(m, known[i]) == 0)
            return true;
    return false;
}

const char *hf__reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* --- small helpers --------------------------------------------------------- */

/* Header names the client's Connection header marks as hop-by-hop. */
static bool named_in_connection(const char *conn, const char *name)
{
    if (conn == NULL)
        return false;
    size_t n = strlen(name);
    const char *p = conn;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == n && strncasecmp(s, name, n) == 0)
            return true;
    }
    return false;
}

static bool valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return n > 0;
}

static void entry_unref_cb(void *arg)
{
    struct hf_entry *e = arg;
    hf_entry_release(&e);
}

/* 32 hex digits of randomness: a request id when the client sent none. */
static void new_request_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {hf_random64(), hf_random64()};
    for (int i = 0; i < 32; i++)
        out[i] = hex[(v[i / 16] >> (60 - 4 * (i % 16))) & 0xf];
    out[32] = '\0';
}

/* --- answering ------------------------------------------------------------- */

static void log_request(struct preq *p, int status, enum hf_m_cache cache,
                        const struct hf_flow_result *r)
{
    const char *route = p->route ? p->route->cfg.name : NULL;
    int64_t us = hf_clock_mono_us() - p->started_us;
    int64_t ms = us / 1000;
    struct hf_metrics *m = p->engine->metrics;
    if (p->route != NULL && m != NULL) {
        hf_metric_inc(m, HF_M_REQUESTS_TOTAL, p->route->index, cache);
        hf_metric_observe_us(m, HF_M_REQUEST_DURATION, p->route->index, cache,
                             us > 0 ? (uint64_t)us : 0);
    }
    if (!hf_log_enabled(HF_LOG_INFO))
        return;
    HF_LOG(HF_LOG_INFO, "request", HF_LS("route", route), HF_LS("request_id", p->request_id),
           HF_LS("method", p->method), HF_LS("path", p->path), HF_LI("status", status),
           HF_LS("cache", hf_metric_label_value(HF_ML_CACHE, cache)), HF_LI("duration_ms", ms),
           HF_LI("attempts", r ? r->attempts : 0),
           HF_LS("error", r && r->error ? hf_err_label(r->error) : NULL));
}

static void preq_free(struct preq *p)
{
    if (p == NULL)
        return;
    if (p->w != NULL)
        atomic_fetch_sub(&p->w->active, 1);
    p->magic = 0;
    free(p);
}

/* An RFC 9457 problem document. */
static void send_problem(struct preq *p, int status, const char *type, const char *title,
                         const char *detail, int64_t retry_after_s, const struct hf_flow_result *r,
                         const char *cache_status)
{
    struct hf_h1_req *req = p->req;
    json_t *o = json_object();
    char type_uri[96];
    snprintf(type_uri, sizeof type_uri, "urn:holdfast:problem:%s", type);
    json_object_set_new(o, "type", json_string(type_uri));
    json_object_set_new(o, "title", json_string(title));
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "detail", json_string(detail));
    if (p->route != NULL)
        json_object_set_new(o, "route", json_string(p->route->cfg.name));
    json_object_set_new(o, "request_id", json_string(p->request_id));
    char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    size_t len = 0;
    if (body != NULL) {
        len = strlen(body);
        char *nl = realloc(body, len + 2);
        if (nl != NULL) {
            body = nl;
            body[len++] = '\n';
            body[len] = '\0';
        }
    }
    hf_h1_adds(req, "Content-Type", "application/problem+json");
    hf_h1_adds(req, "Cache-Control", "no-store");
    hf_h1_adds(req, "X-Request-Id", p->request_id);
    if (cache_status != NULL)
        hf_h1_adds(req, "Cache-Status", cache_status);
    if (retry_after_s >= 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", (long long)retry_after_s);
        hf_h1_adds(req, "Retry-After", ra);
    }
    hf_h1_respond(req, status, hf__reason_phrase(status), body != NULL ? body : "", len, free,
                  body);
    log_request(p, status, HF_CACHE_ERROR, r);
    preq_free(p);
}

static enum hf_m_cache cache_label(const struct hf_flow_result *r)
{
    switch (r->source) {
    case HF_SOURCE_FRESH:
        return HF_CACHE_HIT;
    case HF_SOURCE_STALE:
        return HF_CACHE_STALE;
    case HF_SOURCE_ORIGIN:
        return r->bypass ? HF_CACHE_BYPASS : HF_CACHE_MISS;
    default:
        return HF_CACHE_ERROR;
    }
}

static void on_flow_done(struct hf_flow_result *r, void *arg)
{
    struct preq *p = arg;
    if (p->magic != PREQ_MAGIC)
        abort();
    char cs[256];
    hf__cache_status(r, p->unsafe, hf_clock_wall_ms(), cs, sizeof cs);
    if (r->source == HF_SOURCE_NONE) {
        int status = hf_err_http_status(r->error ? r->error : HF_UPSTREAM);
        if (status < 500)
            status = 502;
        char detail[400];
        if (r->error == HF_NOT_REFRESHED) {
            send_problem(p, status, hf_err_label(r->error),
                         "No copy yet: this route is refreshed in the background", r->detail,
                         r->retry_after_s, r, cs);
            return;
        }
        const char *what = hf_strerror(r->error ? r->error : HF_UPSTREAM);
        bool more = r->detail[0] != '\0' && strcmp(r->detail, what) != 0;
        snprintf(detail, sizeof detail, "%s%s%s; no stored copy to fall back on", what,
                 more ? ": " : "", more ? r->detail : "");
        /* Nothing sent (a pause, a limit, an open breaker) is not the API failing. */
        send_problem(p, status, hf_err_label(r->error ? r->error : HF_UPSTREAM),
                     r->forwarded ? "The API failed and there is no stored copy"
                                  : "Not sent to the API, and there is no stored copy",
                     detail, r->retry_after_s, r, cs);
        return;
    }
    struct hf_entry *e = r->entry;
    struct hf_h1_req *req = p->req;
    size_t pos = 0;
    const char *n, *v;
    size_t nl, vl;
    while (hf_headers_next(e->headers ? e->headers : "", e->headers_len, &pos, &n, &nl, &v, &vl)) {
        if (hf_header_hop_by_hop(n, nl) ||
            (nl == 14 && strncasecmp(n, "Content-Length", 14) == 0) ||
            (nl == 3 && strncasecmp(n, "Age", 3) == 0) ||
            (nl == 12 && strncasecmp(n, "X-Request-Id", 12) == 0))
            continue;
        hf_h1_add(req, n, nl, v, vl);
    }
    char age[24];
    hf_h1_add(req, "Age", 3, age, hf_fmt_u64(r->age_s > 0 ? (uint64_t)r->age_s : 0, age));
    hf_h1_adds(req, "Cache-Status", cs);
    hf_h1_adds(req, "X-Request-Id", p->request_id);
    int status = e->status;
    log_request(p, status, cache_label(r), r);
    preq_free(p);
    /* zero copy: the entry stays alive until its body is written */
    hf_h1_respond(req, status, hf__reason_phrase(status), e->body, e->body_len, entry_unref_cb,
                  hf_entry_ref(e));
}

/* --- static files ----------------------------------------------------------- */

/* A GET or HEAD no route claims, for a `static:` file: true when answered. */
static bool serve_static(struct preq *p, const char *uri)
{
    const struct hf__static_file *f = hf__static_find(p->w->statics, uri, strcspn(uri, "?#"));
    if (f == NULL)
        return false;
    struct hf_h1_req *req = p->req;
    hf_h1_adds(req, "Content-Type", f->type);
    hf_h1_adds(req, "ETag", f->etag);
    hf_h1_adds(req, "Last-Modified", f->last_modified);
    hf_h1_adds(req, "Cache-Control", "no-cache"); /* revalidated: a restart may change it */
    hf_h1_adds(req, "X-Content-Type-Options", "nosniff");
    hf_h1_adds(req, "X-Request-Id", p->request_id);
    const char *inm = hf_h1_find(req, "If-None-Match");
    int status = 200;
    if (hf_log_enabled(HF_LOG_DEBUG))
        HF_LOG(HF_LOG_DEBUG, "static", HF_LS("request_id", p->request_id), HF_LS("path", p->path),
               HF_LI("status", inm != NULL && (strcmp(inm, f->etag) == 0 || strcmp(inm, "*") == 0)
                                   ? 304
                                   : 200));
    if (inm != NULL && (strcmp(inm, f->etag) == 0 || strcmp(inm, "*") == 0))
        status = 304;
    preq_free(p);
    /* the table outlives every worker: no release */
    hf_h1_respond(req, status, status == 304 ? "Not Modified" : "OK", f->body, f->len, NULL, NULL);
    return true;
}

/* --- the request handler --------------------------------------------------- */

static void reject(struct preq *p, int status, const char *type, const char *title,
                   const char *detail)
{
    send_problem(p, status, type, title, detail, -1, NULL, NULL);
}

static void handle(struct hf_h1_req *req, void *arg)
{
    struct worker *w = arg;
    struct preq *p = malloc(sizeof *p);
    if (p == NULL) {
        hf_h1_respond(req, 503, "Service Unavailable", "", 0, NULL, NULL);
        return;
    }
    p->magic = PREQ_MAGIC;
    p->req = req;
    p->w = w;
    p->engine = w->fl.engine;
    p->route = NULL;
    atomic_fetch_add(&w->active, 1);
    p->started_us = hf_clock_mono_us();
    const char *rid = hf_h1_find(req, "X-Request-Id");
    if (rid != NULL && valid_request_id(rid))
        snprintf(p->request_id, sizeof p->request_id, "%s", rid);
    else
        new_request_id(p->request_id);

    const char *method = req->method;
    size_t ml = strnlen(method, sizeof p->method - 1);
    memcpy(p->method, method, ml);
    p->method[ml] = '\0';
    const char *uri = req->uri;
    size_t plen = strcspn(uri, "?");
    if (plen > sizeof p->path - 1)
        plen = sizeof p->path - 1;
    memcpy(p->path, uri, plen);
    p->path[plen] = '\0';
    p->head = req->head;
    p->unsafe = strcmp(method, "GET") != 0 && !p->head;
    if (strcmp(method, "CONNECT") == 0) {
        reject(p, 400, "bad-request", "Bad request",
               "holdfast is a reverse proxy: CONNECT is not supported");
        return;
    }
    if (!known_method(method)) {
        reject(p, 501, "method-not-supported", "Method not supported",
               "holdfast passes on GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS and TRACE");
        return;
    }
    char why[128];
    if (!hf__target_ok(method, uri, why, sizeof why)) {
        reject(p, 400, "bad-request", "Bad request", why);
        return;
    }
    const struct hf_engine *eng = p->engine;
    const char *rest = NULL;
    p->route = hf__route_match(eng, uri, &rest);
    if (p->route == NULL) {
        if (!p->unsafe && p->w->statics != NULL && serve_static(p, uri))
            return;
        reject(p, 404, "no-route", "No route", "no configured route matches this path");
        return;
    }
    if (hf_h1_find(req, "Content-Length") != NULL && hf_h1_find(req, "Transfer-Encoding") != NULL) {
        reject(p, 400, "bad-request", "Bad request",
               "a request may not carry both Content-Length and Transfer-Encoding");
        return;
    }

    /* The client's headers, less hop-by-hop ones and those the upstream
     * connection sets itself. */
    struct hf_header hdrs[MAX_REQ_HEADERS + 1];
    size_t nh = 0;
    const char *conn = hf_h1_find(req, "Connection");
    bool authorized = false;
    for (size_t i = 0; i < req->nfields; i++) {
        const char *k = req->fields[i].name;
        if (hf_header_hop_by_hop(k, strlen(k)) || named_in_connection(conn, k) ||
            strcasecmp(k, "Host") == 0 || strcasecmp(k, "Content-Length") == 0 ||
            strcasecmp(k, "X-Request-Id") == 0 || strcasecmp(k, "Expect") == 0)
            continue;
        if (strcasecmp(k, "Authorization") == 0)
            authorized = true;
        if (nh >= MAX_REQ_HEADERS) {
            reject(p, 431, "too-many-headers", "Request header fields too large",
                   "too many request header fields");
            return;
        }
        hdrs[nh++] = (struct hf_header){k, req->fields[i].value};
    }
    hdrs[nh++] = (struct hf_header){"X-Request-Id", p->request_id};

    /* the path under the route, as the engine keys it: "/a?x", "/", "/?x" */
    char target[HF_CACHE_KEY_MAX];
    size_t rl = strlen(rest);
    if (rl + 2 > sizeof target) {
        reject(p, 414, "uri-too-long", "URI too long", "request target too long");
        return;
    }
    target[0] = '/';
    memcpy(target + 1, rest, rl + 1);
    /* A background route never forwards a user's request (DESIGN.md):
     * what it serves is what its schedule fetched. */
    if (p->route->background && strcmp(method, "GET") != 0 && !p->head) {
        hf_h1_adds(req, "Allow", "GET, HEAD");
        reject(p, 405, "method-not-allowed", "Method not allowed",
               "this route is refreshed in the background: it serves GET and HEAD from the "
               "cache only");
        return;
    }
    struct hf_flow_request fr = {
        .route = p->route,
        .method = method,
        .target = target,
        .headers = hdrs,
        .nheaders = nh,
        .body = req->body_len > 0 ? req->body : NULL,
        .body_len = req->body_len,
        .request_id = p->request_id,
        .bypass = authorized && !p->route->cfg.cache_authorized,
    };
    char err[256] = "";
    hf_err e = hf_flow_start(&w->fl, &fr, on_flow_done, p, err, sizeof err);
    if (e)
        reject(p, e == HF_BAD_URL ? 400 : 500, hf_err_label(e), "Bad request",
               err[0] ? err : hf_strerror(e));
}

/* --- workers --------------------------------------------------------------- */

struct evhttp *hf__new_http(struct event_base *base, int fd,
                            void (*cb)(struct evhttp_request *, void *), void *arg,
                            struct evhttp_bound_socket **bound)
{
    struct evhttp *http = evhttp_new(base);
    if (http == NULL)
        return NULL;
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                         EVHTTP_REQ_PATCH | EVHTTP_REQ_CONNECT | EVHTTP_REQ_TRACE);
    evhttp_set_default_content_type(http, NULL);
    evhttp_set_max_headers_size(http, MAX_HEADER_BYTES);
    evhttp_set_max_body_size(http, MAX_REQUEST_BODY);
    evhttp_set_timeout(http, CLIENT_TIMEOUT_S);
    evhttp_set_gencb(http, cb, arg);
    if ((*bound = evhttp_accept_socket_with_handle(http, fd)) == NULL) {
        evhttp_free(http);
        return NULL;
    }
    return http;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    hf__store_never_wait_on_this_thread(); /* nothing blocks a loop */
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

hf_err hf__worker_start(struct worker *w, struct hf_engine *eng, int fd, char *errbuf,
                        size_t errlen)
{
    w->fd = fd;
    w->base = event_base_new();
    if (w->base == NULL || hf_upstream_create(w->base, &w->fl.upstream) != HF_OK)
        return HF_ENOMEM;
    w->fl.base = w->base;
    w->fl.engine = eng;
    w->fl.persistent = true;
    if (hf_h1_server_start(w->base, w->fd, handle, w, &w->h1) != HF_OK) {
        snprintf(errbuf, errlen, "cannot start an HTTP listener");
        return HF_ENOMEM;
    }
    w->fd = -1; /* the listener owns it now */
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        snprintf(errbuf, errlen, "cannot start a worker thread");
        return HF_ENOMEM;
    }
    w->running = true;
    return HF_OK;
}

/* On the worker's thread: stop accepting, and leave once idle. */
static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (!w->draining) {
        hf_h1_server_drain(w->h1); /* no new connections; idle ones closed */
        w->draining = true;
    }
    int64_t now = hf_clock_mono_ms();
    if (atomic_load(&w->active) > 0 && now >= w->drain_deadline_ms)
        HF_LOG(HF_LOG_WARN, "shutdown_abandoned", HF_LI("worker", w->id),
               HF_LI("requests", atomic_load(&w->active)));
    if (atomic_load(&w->active) == 0 || now >= w->drain_deadline_ms) {
        /* Clients are answered (or out of time): what is left are fetches
         * nobody waits for, and those that overran; answer and drop them. */
        hf_flow_loop_abort(&w->fl);
        hf_h1_server_free(&w->h1); /* requests still out free their connection */
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct timeval tv = {0, 50 * 1000};
    event_base_once(w->base, -1, EV_TIMEOUT, drain_cb, w, &tv);
}

void hf__worker_stop(struct worker *w, int64_t grace_ms)
{
    if (!w->running)
        return;
    w->drain_deadline_ms = hf_clock_mono_ms() + grace_ms;
    struct timeval tv = {0, 0};
    event_base_once(w->base, -1, EV_TIMEOUT, drain_cb, w, &tv);
    pthread_join(w->thread, NULL);
    w->running = false;
}

static void switch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    w->fl.engine = atomic_load(&w->next_engine);
}

void hf__worker_switch(struct worker *w, struct hf_engine *eng)
{
    atomic_store(&w->next_engine, eng);
    struct timeval tv = {0, 0};
    event_base_once(w->base, -1, EV_TIMEOUT, switch_cb, w, &tv);
}

void hf__worker_fini(struct worker *w)
{
    if (w->running)
        hf__worker_stop(w, 0);
    hf_upstream_destroy(&w->fl.upstream);
    if (w->base != NULL)
        event_base_free(w->base);
    if (w->fd >= 0)
        close(w->fd);
    memset(w, 0, sizeof *w);
    w->fd = -1;
}

int hf__listen_all(const char *addr, int *fds, int n, char *actual, size_t alen, char *errbuf,
                   size_t errlen)
{
    snprintf(actual, alen, "%s", addr);
    int first = hf_listen_socket(addr, true, errbuf, errlen);
    if (first < 0)
        return 0;
    fds[0] = first;
    if (strncmp(addr, "unix:", 5) == 0) {
        for (int i = 1; i < n; i++)
            if ((fds[i] = fcntl(first, F_DUPFD_CLOEXEC, 0)) < 0)
                return i;
        return n;
    }
    /* Port 0: every worker binds the port the first one was given. */
    hf_listen_address(first, actual, alen);
    for (int i = 1; i < n; i++)
        if ((fds[i] = hf_listen_socket(actual, true, errbuf, errlen)) < 0)
            return i;
    return n;
}
