/*
 * holdfast sim (sim.h): one thread, one event loop, one evhttp.  Every
 * piece of state (faults, limits, counts, held requests) belongs to that
 * loop; other threads only ask it to stop.  Answers that a fault delays
 * (slow) or never sends (timeout) are held with a timer; the connection's
 * close callback forgets them, so nothing is written to a connection that
 * is gone, and stopping closes them unanswered.
 */
#include "sim/sim.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/listen.h"
#include "http/date.h"
#include "obs/log.h"
#include "sim/sim_impl.h"

#define TIMEOUT_HOLD_MS (5 * 60 * 1000) /* a "timeout" answer closes after this */
#define MAX_HELD 1024                   /* past this, held requests get 503 */
#define MAX_CONTROL_BODY 4096

static const char *const api_names[HF_SIM_APIS] = {"news", "quotes", "fx"};

enum outcome {
    O_OK,
    O_NOT_MODIFIED,
    O_RATE_LIMITED,
    O_QUOTA_EXCEEDED,
    O_UNAUTHORIZED,
    O_FAULT_503,
    O_FAULT_429,
    O_TIMEOUT,
    O_RESET,
    O_SLOW,
    O_GARBAGE,
    O_NOT_FOUND,
    O_BAD_REQUEST,
    O_COUNT
};

static const char *const outcome_names[O_COUNT] = {
    "ok",        "not_modified", "rate_limited", "quota_exceeded", "unauthorized",
    "fault_503", "fault_429",    "timeout",      "reset",          "slow",
    "garbage",   "not_found",    "bad_request"};

/* A request whose answer a fault delays (slow) or withholds (timeout). */
struct held {
    struct held *next, *prev;
    struct hf_sim *sim;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct event *timer;
    int status; /* 0: close unanswered when the timer fires (timeout); -1: reset */
    char *body;
    size_t len;
    char etag[24];
    int api;
};

struct hf_sim {
    struct hf_sim_options o;
    char *keys[HF_SIM_APIS];
    pthread_t thread;
    bool running;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    char address[300];
    char unix_path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
    struct hf_sim_limiter limiter[HF_SIM_APIS];
    bool limiter_ok[HF_SIM_APIS];
    struct hf_sim_fault faults[HF_SIM_APIS];
    uint64_t stats[HF_SIM_APIS][O_COUNT];
    struct held *held;
    int nheld;
};

int hf_sim_api_index(const char *name)
{
    for (int i = 0; i < HF_SIM_APIS; i++)
        if (strcmp(name, api_names[i]) == 0)
            return i;
    return -1;
}

const char *hf_sim_api_name(int api)
{
    return api >= 0 && api < HF_SIM_APIS ? api_names[api] : NULL;
}

/* --- answering ----------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* Send status with body (NULL: none); max_age > 0 makes it cacheable. */
static void send_body(struct evhttp_request *req, int status, const char *body, size_t len,
                      const char *etag, int max_age)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char date[40], cc[32];
    evhttp_add_header(h, "Date", hf_http_date_format(hf_clock_wall_ms() / 1000, date, sizeof date));
    evhttp_add_header(h, "Content-Type", "application/json");
    if (max_age > 0)
        snprintf(cc, sizeof cc, "max-age=%d", max_age);
    evhttp_add_header(h, "Cache-Control", max_age > 0 ? cc : "no-store");
    if (etag != NULL && etag[0] != '\0')
        evhttp_add_header(h, "ETag", etag);
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && status != 304 && body != NULL)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, status, reason(status), b);
    if (b != NULL)
        evbuffer_free(b);
}

static void send_text(struct evhttp_request *req, int status, const char *body)
{
    send_body(req, status, body, strlen(body), NULL, 0);
}

/* A /_sim/ answer: o (consumed) pretty-printed, or {"error": why}. */
static void send_json(struct evhttp_request *req, int status, json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (s == NULL) {
        send_text(req, 500, "{\"error\":\"out of memory\"}\n");
        return;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t != NULL) {
        s = t;
        s[n++] = '\n';
        s[n] = '\0';
    }
    send_body(req, status, s, n, NULL, 0);
    free(s);
}

static void send_error(struct evhttp_request *req, int status, const char *why)
{
    send_json(req, status, json_pack("{s:s}", "error", why));
}

/* Count one API request under oc and log it; before the answer is sent. */
static void log_req(struct hf_sim *s, struct evhttp_request *req, int api, enum outcome oc,
                    int status)
{
    s->stats[api][oc]++;
    if (!s->o.quiet)
        HF_LOG(HF_LOG_INFO, "sim_request", HF_LS("api", api_names[api]),
               HF_LS("uri", evhttp_request_get_uri(req)), HF_LI("status", status),
               HF_LS("outcome", outcome_names[oc]));
}

/*
 * Close the connection without an answer.  Lingering 0 makes the close a
 * TCP reset, as a crashing server's is.  Only from a timer callback: the
 * connection is never freed under evhttp's own request callback.
 */
static void drop_connection(struct evhttp_connection *conn, bool reset)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (fd >= 0 && reset)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    evhttp_connection_free(conn); /* frees the request too */
}

static void held_free(struct held *h)
{
    struct hf_sim *s = h->sim;
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        s->held = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    s->nheld--;
    if (h->conn != NULL)
        evhttp_connection_set_closecb(h->conn, NULL, NULL);
    event_free(h->timer);
    free(h->body);
    free(h);
}

/* The client went away while its answer was held. */
static void held_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct held *h = arg;
    h->conn = NULL; /* the connection is going: no callback to clear */
    held_free(h);
}

static void held_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct held *h = arg;
    struct evhttp_connection *conn = h->conn;
    int status = h->status;
    if (status > 0)
        send_body(h->req, status, h->body, h->len, h->etag, hf_sim_max_age_s[h->api]);
    held_free(h); /* first: dropping the connection must not call held_closed */
    if (status <= 0)
        drop_connection(conn, status < 0); /* a reset, or a timeout that ran its course */
}

/* Answer with status after ms (slow), or close unanswered (status 0: a
 * timeout; -1: a reset).  On true the held answer owns body; on false the
 * caller still does. */
static bool hold(struct hf_sim *s, struct evhttp_request *req, int api, int status, char *body,
                 size_t len, const char *etag, int64_t ms)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct held *h = s->nheld < MAX_HELD && conn != NULL ? calloc(1, sizeof *h) : NULL;
    if (h == NULL)
        return false;
    *h = (struct held){.sim = s, .req = req, .conn = conn, .status = status, .api = api};
    snprintf(h->etag, sizeof h->etag, "%s", etag ? etag : "");
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if ((h->timer = evtimer_new(s->base, held_fire, h)) == NULL || evtimer_add(h->timer, &tv)) {
        if (h->timer != NULL)
            event_free(h->timer);
        free(h);
        return false;
    }
    h->body = body;
    h->len = len;
    h->next = s->held;
    if (s->held != NULL)
        s->held->prev = h;
    s->held = h;
    s->nheld++;
    evhttp_connection_set_closecb(conn, held_closed, h);
    return true;
}

static void rate_headers(struct evhttp_request *req, const struct hf_sim_rate *r)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char v[32];
    if (!r->limited)
        return;
    snprintf(v, sizeof v, "%lld", (long long)r->limit);
    evhttp_add_header(h, "X-RateLimit-Limit", v);
    snprintf(v, sizeof v, "%lld", (long long)r->remaining);
    evhttp_add_header(h, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%lld", (long long)r->reset_s);
    evhttp_add_header(h, "X-RateLimit-Reset", v);
}

/* An ETag for body: FNV-1a, so one body always has one tag. */
static void etag_of(const char *body, char *etag, size_t len)
{
    uint64_t x = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)body; *p != '\0'; p++)
        x = (x ^ *p) * 0x100000001b3ull;
    snprintf(etag, len, "\"%016llx\"", (unsigned long long)x);
}

static bool key_ok(struct hf_sim *s, struct evhttp_request *req, int api)
{
    if (s->keys[api] == NULL)
        return true;
    const char *k = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Api-Key");
    return k != NULL && strcmp(k, s->keys[api]) == 0;
}

static void api_request(struct hf_sim *s, struct evhttp_request *req, int api, const char *path,
                        const char *query)
{
    int64_t now = hf_clock_wall_ms(), mono = hf_clock_mono_ms();
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct hf_sim_limiter *lim = &s->limiter[api];
    struct hf_sim_rate rate;
    /* A refused key, a fault: the API answers without counting the request
     * against the limits, but still says where they stand. */
    if (!key_ok(s, req, api)) {
        hf_sim_limiter_peek(lim, mono, now, &rate);
        rate_headers(req, &rate);
        log_req(s, req, api, O_UNAUTHORIZED, 401);
        send_text(req, 401,
                  "{\"error\":\"unauthorized\",\"message\":\"missing or wrong X-Api-Key\"}");
        return;
    }
    struct hf_sim_fault f = hf_sim_fault_at(&s->faults[api], now);
    if (f.mode != HF_SIM_OK && f.mode != HF_SIM_SLOW) {
        hf_sim_limiter_peek(lim, mono, now, &rate);
        rate_headers(req, &rate);
    }
    switch (f.mode) {
    case HF_SIM_503:
        log_req(s, req, api, O_FAULT_503, 503);
        send_text(req, 503,
                  "{\"error\":\"service_unavailable\",\"message\":\"the service is "
                  "temporarily unavailable, try again later\"}");
        return;
    case HF_SIM_429:
        evhttp_add_header(out, "Retry-After", "30");
        log_req(s, req, api, O_FAULT_429, 429);
        send_text(req, 429, "{\"error\":\"rate_limited\",\"message\":\"too many requests\"}");
        return;
    case HF_SIM_TIMEOUT:
        log_req(s, req, api, O_TIMEOUT, 0);
        if (!hold(s, req, api, 0, NULL, 0, NULL, TIMEOUT_HOLD_MS))
            send_text(req, 503,
                      "{\"error\":\"too_many_held\",\"message\":\"too many held requests\"}");
        return;
    case HF_SIM_RESET:
        log_req(s, req, api, O_RESET, 0);
        if (!hold(s, req, api, -1, NULL, 0, NULL, 0))
            send_text(req, 503,
                      "{\"error\":\"too_many_held\",\"message\":\"too many held requests\"}");
        return;
    case HF_SIM_GARBAGE:
        /* what a broken gateway sends: a 200 that claims JSON and is not */
        log_req(s, req, api, O_GARBAGE, 200);
        send_text(req, 200, "{\"articles\":[{\"title\":\"\x01\x02<html><body>502 Bad Gat\xff");
        return;
    default:
        break;
    }
    if (!hf_sim_limiter_take(lim, mono, now, &rate)) {
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", (long long)rate.retry_after_s);
        evhttp_add_header(out, "Retry-After", ra);
        rate_headers(req, &rate);
        log_req(s, req, api, rate.by_quota ? O_QUOTA_EXCEEDED : O_RATE_LIMITED, 429);
        send_text(req, 429,
                  rate.by_quota
                      ? "{\"error\":\"quota_exceeded\",\"message\":\"request quota used up\"}"
                      : "{\"error\":\"rate_limited\",\"message\":\"rate limit exceeded\"}");
        return;
    }
    rate_headers(req, &rate);
    int status = 0;
    char *body = hf_sim_body(api, path, query, s->o.seed, now, &status);
    if (body == NULL) {
        log_req(s, req, api, status == 404 ? O_NOT_FOUND : O_BAD_REQUEST, status ? status : 500);
        send_text(req, status ? status : 500,
                  status ? "{\"error\":\"not_found\",\"message\":\"no such endpoint\"}"
                         : "{\"error\":\"internal\",\"message\":\"out of memory\"}");
        return;
    }
    size_t len = strlen(body);
    if (status != 200) {
        log_req(s, req, api, status == 404 ? O_NOT_FOUND : O_BAD_REQUEST, status);
        send_body(req, status, body, len, NULL, 0);
        free(body);
        return;
    }
    char etag[24];
    etag_of(body, etag, sizeof etag);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm != NULL && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
        log_req(s, req, api, O_NOT_MODIFIED, 304);
        send_body(req, 304, NULL, 0, etag, hf_sim_max_age_s[api]);
        free(body);
        return;
    }
    if (f.mode == HF_SIM_SLOW) {
        log_req(s, req, api, O_SLOW, 200);
        if (hold(s, req, api, 200, body, len, etag, f.delay_ms))
            return; /* body belongs to the held answer */
    } else {
        log_req(s, req, api, O_OK, 200);
    }
    send_body(req, 200, body, len, etag, hf_sim_max_age_s[api]);
    free(body);
}

/* --- /_sim/ ------------------------------------------------------------------ */

static json_t *stats_json(struct hf_sim *s)
{
    json_t *apis = json_object();
    for (int i = 0; i < HF_SIM_APIS; i++) {
        json_t *oc = json_object();
        uint64_t total = 0;
        for (int k = 0; k < O_COUNT; k++) {
            json_object_set_new(oc, outcome_names[k], json_integer((json_int_t)s->stats[i][k]));
            total += s->stats[i][k];
        }
        json_object_set_new(apis, api_names[i],
                            json_pack("{s:I,s:o}", "requests", (json_int_t)total, "outcomes", oc));
    }
    return json_pack("{s:o}", "apis", apis);
}

static int send_faults(struct hf_sim *s, struct evhttp_request *req, int64_t now)
{
    char *t = hf_sim_fault_table(s->faults, now);
    if (t == NULL) {
        send_text(req, 500, "{\"error\":\"out of memory\"}\n");
        return 500;
    }
    send_body(req, 200, t, strlen(t), NULL, 0);
    free(t);
    return 200;
}

/* Start every API's limits afresh; false if one could not be (then it has none). */
static bool limits_init(struct hf_sim *s)
{
    bool ok = true;
    for (int i = 0; i < HF_SIM_APIS; i++) {
        if (s->limiter_ok[i])
            hf_sim_limiter_fini(&s->limiter[i]);
        s->limiter_ok[i] = hf_sim_limiter_init(&s->limiter[i], &s->o.limits[i]) == HF_OK;
        if (!s->limiter_ok[i]) {
            s->limiter[i] = (struct hf_sim_limiter){0}; /* no limits */
            ok = false;
        }
    }
    return ok;
}

/* Answer a /_sim/ request; the status sent. */
static int control(struct hf_sim *s, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    int64_t now = hf_clock_wall_ms();
    bool get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD, post = m == EVHTTP_REQ_POST;
    if (strcmp(path, "/_sim/faults") == 0 && get) {
        return send_faults(s, req, now);
    } else if (strcmp(path, "/_sim/faults") == 0 && post) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *why = "body too large";
        struct hf_sim_fault_req fr;
        const char *body = len <= MAX_CONTROL_BODY ? (const char *)evbuffer_pullup(in, -1) : NULL;
        if (len <= MAX_CONTROL_BODY && !hf_sim_fault_parse(body ? body : "", len, &fr, &why))
            body = NULL;
        if (body == NULL) {
            send_error(req, 400, why);
            return 400;
        }
        hf_sim_fault_apply(s->faults, &fr, now);
        HF_LOG(HF_LOG_INFO, "sim_fault", HF_LS("api", fr.api < 0 ? "*" : api_names[fr.api]),
               HF_LS("mode", hf_sim_mode_name(fr.mode)), HF_LI("for_ms", fr.for_ms));
        return send_faults(s, req, now);
    } else if (strcmp(path, "/_sim/stats") == 0 && get) {
        send_json(req, 200, stats_json(s));
    } else if (strcmp(path, "/_sim/reset") == 0 && post) {
        memset(s->faults, 0, sizeof s->faults);
        memset(s->stats, 0, sizeof s->stats);
        limits_init(s);
        send_json(req, 200, json_pack("{s:b}", "reset", 1));
    } else if (strcmp(path, "/_sim/faults") == 0 || strcmp(path, "/_sim/stats") == 0 ||
               strcmp(path, "/_sim/reset") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          strcmp(path, "/_sim/faults") == 0  ? "GET, HEAD, POST"
                          : strcmp(path, "/_sim/stats") == 0 ? "GET, HEAD"
                                                             : "POST");
        send_error(req, 405, "method not allowed");
        return 405;
    } else {
        send_error(req, 404,
                   "no such endpoint: GET or POST /_sim/faults, GET /_sim/stats, "
                   "POST /_sim/reset");
        return 404;
    }
    return 200;
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct hf_sim *s = arg;
    const char *uri = evhttp_request_get_uri(req);
    char path[256];
    size_t pl = strcspn(uri, "?#");
    if (pl >= sizeof path) {
        send_error(req, 414, "URI too long");
        return;
    }
    memcpy(path, uri, pl);
    path[pl] = '\0';
    const char *query = uri[pl] == '?' ? uri + pl + 1 : "";
    if (strncmp(path, "/_sim/", 6) == 0) {
        int status = control(s, req, path); /* req may be gone now: log path, not uri */
        if (!s->o.quiet)
            HF_LOG(HF_LOG_INFO, "sim_request", HF_LS("uri", path), HF_LI("status", status));
        return;
    }
    for (int i = 0; i < HF_SIM_APIS; i++) {
        size_t n = strlen(api_names[i]);
        if (path[0] == '/' && strncmp(path + 1, api_names[i], n) == 0 && path[n + 1] == '/') {
            enum evhttp_cmd_type m = evhttp_request_get_command(req);
            if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
                evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
                log_req(s, req, i, O_BAD_REQUEST, 405);
                send_error(req, 405, "method not allowed");
                return;
            }
            api_request(s, req, i, path, query);
            return;
        }
    }
    if (!s->o.quiet)
        HF_LOG(HF_LOG_INFO, "sim_request", HF_LS("uri", path), HF_LI("status", 404));
    send_error(req, 404, "no such API: GET /news/latest, /quotes/{TICKER}, /fx/latest?base=USD");
}

/* --- life cycle ---------------------------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_sim *s = arg;
    event_base_loopbreak(s->base);
}

static void *sim_main(void *arg)
{
    struct hf_sim *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void destroy(struct hf_sim *s)
{
    while (s->held != NULL)
        held_free(s->held); /* evhttp_free then closes their connections */
    if (s->http != NULL)
        evhttp_free(s->http);
    if (s->stop_ev != NULL)
        event_free(s->stop_ev);
    if (s->base != NULL)
        event_base_free(s->base);
    for (int i = 0; i < HF_SIM_APIS; i++) {
        if (s->limiter_ok[i])
            hf_sim_limiter_fini(&s->limiter[i]);
        free(s->keys[i]);
    }
    if (s->unix_path[0] != '\0')
        unlink(s->unix_path);
    free(s);
}

hf_err hf_sim_start(const struct hf_sim_options *o, struct hf_sim **out, char *errbuf,
                    size_t errlen)
{
    *out = NULL;
    if (errlen > 0)
        errbuf[0] = '\0';
    struct hf_sim *s = calloc(1, sizeof *s);
    if (s == NULL)
        return HF_ENOMEM;
    s->o = *o;
    s->o.listen = NULL; /* the caller's; not kept */
    hf_err err = HF_ENOMEM;
    for (int i = 0; i < HF_SIM_APIS; i++) {
        s->o.keys[i] = NULL;
        if (o->keys[i] != NULL && (s->keys[i] = strdup(o->keys[i])) == NULL)
            goto out;
    }
    if (!limits_init(s)) {
        snprintf(errbuf, errlen, "a rate limit or quota is out of range");
        err = HF_CONFIG;
        goto out;
    }
    evthread_use_pthreads(); /* stop comes from another thread */
    const char *listen = o->listen ? o->listen : "127.0.0.1:9090";
    int fd = hf_listen_socket(listen, false, errbuf, errlen);
    if (fd < 0) {
        err = HF_CONFIG;
        goto out;
    }
    snprintf(s->address, sizeof s->address, "%s", listen);
    if (strncmp(listen, "unix:", 5) == 0)
        snprintf(s->unix_path, sizeof s->unix_path, "%s", listen + 5);
    else
        hf_listen_address(fd, s->address, sizeof s->address); /* port 0 resolved */
    if ((s->base = event_base_new()) == NULL || (s->http = evhttp_new(s->base)) == NULL ||
        (s->stop_ev = event_new(s->base, -1, 0, stop_cb, s)) == NULL ||
        evhttp_accept_socket(s->http, fd) != 0) {
        snprintf(errbuf, errlen, "cannot start the simulator's HTTP server");
        close(fd); /* evhttp did not take it */
        goto out;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_max_body_size(s->http, 65536);
    evhttp_set_max_headers_size(s->http, 65536);
    evhttp_set_timeout(s->http, 600); /* longer than a timeout fault holds */
    evhttp_set_gencb(s->http, handle, s);
    if (pthread_create(&s->thread, NULL, sim_main, s) != 0) {
        snprintf(errbuf, errlen, "cannot start the simulator's thread");
        goto out;
    }
    s->running = true;
    *out = s;
    s = NULL;
    err = HF_OK;
out:
    if (s != NULL)
        destroy(s);
    return err;
}

const char *hf_sim_address(const struct hf_sim *s)
{
    return s->address;
}

void hf_sim_stop(struct hf_sim **sp)
{
    struct hf_sim *s = *sp;
    if (s == NULL)
        return;
    if (s->running) {
        event_active(s->stop_ev, EV_READ, 0);
        pthread_join(s->thread, NULL);
    }
    destroy(s);
    *sp = NULL;
}
