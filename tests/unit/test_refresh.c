/*
 * Refresh runs (engine/refresh.h) end to end over a real loopback socket:
 * every key of a background route fetched through the request flow, then
 * revalidated (304), skipped while young, kept when the API fails, paced by
 * the route's rate limit, widened by learned keys, narrowed to one target,
 * cancelled half way; and the user side of a background route (served from
 * the copies only, misses rejected or fetched once).  The API is a scripted
 * server thread in this file, as in test_client.c; it logs every request
 * (target, If-None-Match, monotonic arrival time).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include <holdfast/holdfast.h>

#include "core/buf.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "engine/learn.h"
#include "engine/refresh.h"
#include "http/cache_key.h"
#include "obs/metrics.h"
#include "upstream/upstream.h"

/* --- the API ---------------------------------------------------------------- */

#define ORIGIN_LOG 128

struct origin_req {
    char target[256];
    char inm[64];    /* the If-None-Match value sent, or "" */
    int64_t mono_ms; /* when the request arrived */
};

struct origin {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    int status;     /* what to answer next */
    int delay_ms;   /* before answering */
    char etag[32];  /* "": no ETag; else sent quoted, and a matching If-None-Match gets 304 */
    char body[128]; /* the body is "<body> <target> #<request number>" */
    int nreq;
    struct origin_req log[ORIGIN_LOG];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The value of header name (with ": ") in the request head req, into out. */
static void req_header(const char *req, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    for (const char *p = strstr(req, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        size_t nl = strlen(name);
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 2 + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            snprintf(out, len, "%.*s", (int)vl, v);
            return;
        }
    }
}

static void *origin_main(void *arg)
{
    struct origin *o = arg;
    for (;;) {
        int c = accept(o->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096];
        size_t n = 0;
        for (;;) { /* one request per connection: we answer Connection: close */
            ssize_t r = read(c, req + n, sizeof req - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        req[n] = '\0';
        pthread_mutex_lock(&o->lock);
        struct origin_req *lr = &o->log[o->nreq % ORIGIN_LOG];
        int num = ++o->nreq;
        lr->mono_ms = mono_ms();
        lr->target[0] = '\0';
        sscanf(req, "%*s %255s", lr->target);
        req_header(req, "If-None-Match", lr->inm, sizeof lr->inm);
        int status = o->status, delay = o->delay_ms;
        char etag[48] = "", body[512], extra[128] = "";
        if (o->etag[0] != '\0') {
            snprintf(etag, sizeof etag, "\"%s\"", o->etag);
            snprintf(extra, sizeof extra, "ETag: %s\r\n", etag);
            if (status == 200 && strcmp(lr->inm, etag) == 0)
                status = 304;
        }
        if (status == 304)
            body[0] = '\0';
        else
            snprintf(body, sizeof body, "%s %s #%d", o->body, lr->target, num);
        pthread_mutex_unlock(&o->lock);
        char resp[1024];
        int len = snprintf(resp, sizeof resp,
                           "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                           status, strlen(body), extra, body);
        if (delay)
            usleep((useconds_t)delay * 1000);
        ssize_t w = write(c, resp, (size_t)len);
        (void)w;
        close(c);
    }
}

static struct origin *origin_start(void)
{
    struct origin *o = calloc(1, sizeof *o);
    assert_non_null(o);
    pthread_mutex_init(&o->lock, NULL);
    o->status = 200;
    snprintf(o->body, sizeof o->body, "v1");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    o->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(o->fd, (struct sockaddr *)&sa, sl), 0);
    assert_int_equal(listen(o->fd, 64), 0);
    assert_int_equal(getsockname(o->fd, (struct sockaddr *)&sa, &sl), 0);
    o->port = ntohs(sa.sin_port);
    pthread_create(&o->thread, NULL, origin_main, o);
    return o;
}

static void origin_stop(struct origin *o)
{
    shutdown(o->fd, SHUT_RDWR);
    close(o->fd);
    pthread_join(o->thread, NULL);
    pthread_mutex_destroy(&o->lock);
    free(o);
}

static void origin_set(struct origin *o, int status, const char *etag, const char *body,
                       int delay_ms)
{
    pthread_mutex_lock(&o->lock);
    o->status = status;
    snprintf(o->etag, sizeof o->etag, "%s", etag ? etag : "");
    snprintf(o->body, sizeof o->body, "%s", body);
    o->delay_ms = delay_ms;
    pthread_mutex_unlock(&o->lock);
}

static int origin_requests(struct origin *o)
{
    pthread_mutex_lock(&o->lock);
    int n = o->nreq;
    pthread_mutex_unlock(&o->lock);
    return n;
}

/* A copy of request i (0-based, < ORIGIN_LOG). */
static struct origin_req origin_req(struct origin *o, int i)
{
    assert_true(i >= 0 && i < ORIGIN_LOG);
    pthread_mutex_lock(&o->lock);
    assert_true(i < o->nreq);
    struct origin_req r = o->log[i];
    pthread_mutex_unlock(&o->lock);
    return r;
}

/* How many requests from number `from` on asked for target. */
static int origin_count(struct origin *o, int from, const char *target)
{
    int n = 0, total = origin_requests(o);
    for (int i = from; i < total; i++)
        n += strcmp(origin_req(o, i).target, target) == 0;
    return n;
}

/* --- the loop and the engine ----------------------------------------------- */

struct fx {
    struct origin *o;
    char upstream[64];
    struct hf_engine *e;
    struct event_base *base;
    struct hf_upstream *up;
    struct hf_flow_loop loop;
    char db[512]; /* a SQLite store's path, or "" */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->o = origin_start();
    snprintf(f->upstream, sizeof f->upstream, "http://127.0.0.1:%d/v1/", f->o->port);
    *state = f;
    return 0;
}

static void db_unlink(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[600];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

/* Tear the engine down (the fixture may build another afterwards). */
static void fx_close(struct fx *f)
{
    if (f->base != NULL)
        hf_flow_loop_abort(&f->loop);
    hf_upstream_destroy(&f->up);
    hf_engine_destroy(&f->e);
    if (f->base != NULL)
        event_base_free(f->base);
    f->base = NULL;
    memset(&f->loop, 0, sizeof f->loop);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    origin_stop(f->o);
    if (f->db[0] != '\0')
        db_unlink(f->db);
    free(f);
    return 0;
}

/* A background route with the test's defaults: every 1h, no breaker, two
 * quick attempts, fixed freshness. */
static struct hf_route_config bg_route(struct fx *f, const char *name, const char *const *keys,
                                       size_t nkeys)
{
    struct hf_route_config r;
    hf_route_config_default(&r);
    r.name = name;
    r.upstream = f->upstream;
    r.fresh_for_ms = 60000;
    r.retry.attempts = 2;
    r.retry.backoff_ms = 10;
    r.retry.max_backoff_ms = 10;
    r.retry.jitter = HF_JITTER_NONE;
    r.breaker_failures = 0;
    r.mode = HF_MODE_BACKGROUND;
    r.refresh_every = "1h";
    r.refresh_keys = keys;
    r.nrefresh_keys = nkeys;
    return r;
}

static void fx_open(struct fx *f, const struct hf_route_config *routes, size_t n, const char *store)
{
    struct hf_config c;
    hf_config_default(&c);
    c.routes = routes;
    c.nroutes = n;
    c.store = store;
    char err[256] = "";
    hf_err rc = hf_engine_create(&c, &f->e, err, sizeof err);
    if (rc != HF_OK)
        print_error("hf_engine_create: %s\n", err);
    assert_int_equal(rc, HF_OK);
    assert_non_null(f->base = event_base_new());
    assert_int_equal(hf_upstream_create(f->base, &f->up), HF_OK);
    f->loop = (struct hf_flow_loop){
        .engine = f->e, .base = f->base, .upstream = f->up, .persistent = false};
}

static const struct hf_route *route(struct fx *f, const char *name)
{
    const struct hf_route *r = hf_engine_route(f->e, name);
    assert_non_null(r);
    return r;
}

/* The store key of target on route r: the cache key and the variant every
 * background request reads (no client headers). */
static void store_key(const struct hf_route *r, const char *target, char *buf, size_t len)
{
    assert_int_equal(hf_cache_key("GET", r->cfg.name, target, NULL, 0, buf, len), HF_OK);
    if (r->vary_none != NULL && r->vary_none[0] != '\0') {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "\n%s", r->vary_none);
    }
}

/* The stored copy of target, or NULL (release it). */
static struct hf_entry *copy_of(struct fx *f, const struct hf_route *r, const char *target)
{
    char key[HF_CACHE_KEY_MAX + 64];
    store_key(r, target, key, sizeof key);
    struct hf_entry *e = NULL;
    if (hf_store_get_stale(f->e->store, key, hf_clock_wall_ms(), &e) != HF_OK)
        return NULL;
    return e;
}

/* The value of the series written exactly as `series`, or -1 when absent. */
static int64_t metric(struct fx *f, const char *series)
{
    struct hf_buf b;
    hf_buf_init(&b, 1 << 22);
    assert_int_equal(hf_metrics_render(f->e->metrics, &b), HF_OK);
    char *text = hf_buf_take(&b, NULL);
    assert_non_null(text);
    int64_t v = -1;
    size_t n = strlen(series);
    for (const char *p = text; *p != '\0'; p += strcspn(p, "\n"), p += *p == '\n') {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = strtoll(p + n + 1, NULL, 10);
            break;
        }
    }
    free(text);
    return v;
}

/* Wait until the wall clock has moved on by at least 2 ms, so a copy stored
 * next has a later stored_at than one stored before. */
static void tick(void)
{
    int64_t t = hf_clock_wall_ms();
    while (hf_clock_wall_ms() < t + 2)
        usleep(500);
}

/* --- one run ----------------------------------------------------------------- */

#define MAX_REPORTS 32

struct report {
    char target[256];
    enum hf_m_key_result result;
    int status;
    hf_err error;
    int attempts;
    int64_t age_s;
};

struct run {
    struct fx *f;
    bool done;
    int ndone;
    struct hf_refresh_summary sum;
    int nkeys;
    struct report keys[MAX_REPORTS];
    struct hf_refresh_run *handle; /* for cancel */
    int cancel_after;              /* > 0: cancel from on_key after this many keys */
    bool timed_out;
};

static void on_key(const struct hf_refresh_key_report *k, const struct hf_refresh_summary *s,
                   void *arg)
{
    struct run *r = arg;
    assert_non_null(s);
    if (r->nkeys < MAX_REPORTS) {
        struct report *p = &r->keys[r->nkeys];
        snprintf(p->target, sizeof p->target, "%s", k->target);
        p->result = k->result;
        p->status = k->status;
        p->error = k->error;
        p->attempts = k->attempts;
        p->age_s = k->age_s;
    }
    r->nkeys++;
    if (r->cancel_after > 0 && r->nkeys == r->cancel_after)
        hf_refresh_cancel(&r->handle);
}

static void on_done(const struct hf_refresh_summary *s, void *arg)
{
    struct run *r = arg;
    r->done = true;
    r->ndone++;
    r->sum = *s;
    r->handle = NULL; /* the run frees itself after this */
    event_base_loopexit(r->f->base, NULL);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    r->timed_out = true;
    event_base_loopbreak(r->f->base);
}

/* Start a run of route name with o and drive the loop until on_done (at
 * most 5 s).  The run may end inside hf_refresh_start (every key young
 * enough): then the loop is not entered at all. */
static void run_refresh(struct fx *f, const char *name, const struct hf_refresh_options *o,
                        struct run *r)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    char err[256] = "";
    assert_int_equal(hf_refresh_start(&f->loop, route(f, name), o, on_key, on_done, r, &r->handle,
                                      err, sizeof err),
                     HF_OK);
    if (!r->done) {
        struct event *wd = evtimer_new(f->base, watchdog_cb, r);
        struct timeval tv = {5, 0};
        evtimer_add(wd, &tv);
        event_base_dispatch(f->base);
        event_free(wd);
    } else {
        /* on_done asked the loop to exit though it was not running: let
         * that request go now, so the next dispatch is not cut short. */
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    }
    assert_false(r->timed_out);
    assert_true(r->done);
    assert_int_equal(r->ndone, 1);
    assert_int_equal(r->sum.done, r->sum.total);
}

static size_t count_of(const struct run *r, enum hf_m_key_result kr)
{
    return r->sum.counts[kr];
}

static const struct report *report_of(const struct run *r, const char *target)
{
    for (int i = 0; i < r->nkeys && i < MAX_REPORTS; i++)
        if (strcmp(r->keys[i].target, target) == 0)
            return &r->keys[i];
    print_error("no report for %s\n", target);
    fail();
    return NULL;
}

/* --- the tests --------------------------------------------------------------- */

static const char *const three[] = {"/a", "/b?x=1", "/c"};

static void every_key_refreshed(void **state)
{
    struct fx *f = *state;
    struct hf_route_config rc = bg_route(f, "news", three, 3);
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    int64_t before = hf_clock_wall_ms();
    struct hf_refresh_options o = {.trigger = HF_REFRESH_CLI};
    struct run run;
    run_refresh(f, "news", &o, &run);

    assert_int_equal(run.sum.total, 3);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 3);
    assert_int_equal(run.sum.result, HF_RUN_OK);
    assert_string_equal(run.sum.route, "news");
    assert_int_equal(run.sum.trigger, HF_REFRESH_CLI);
    assert_true(run.sum.started_ms >= before && run.sum.ended_ms >= run.sum.started_ms);
    assert_true(run.sum.oldest_stored_ms >= before);
    assert_int_equal(run.nkeys, 3);
    for (size_t i = 0; i < 3; i++) {
        const struct report *k = report_of(&run, three[i]);
        assert_int_equal(k->result, HF_KEY_REFRESHED);
        assert_int_equal(k->status, 200);
        assert_int_equal(k->error, HF_OK);
        assert_int_equal(k->attempts, 1);
        assert_int_equal(k->age_s, 0);
    }
    assert_int_equal(origin_requests(f->o), 3);
    assert_int_equal(origin_count(f->o, 0, "/v1/a"), 1);
    assert_int_equal(origin_count(f->o, 0, "/v1/b?x=1"), 1);
    assert_int_equal(origin_count(f->o, 0, "/v1/c"), 1);

    /* the copies are in the store */
    for (size_t i = 0; i < 3; i++) {
        struct hf_entry *e = copy_of(f, r, three[i]);
        assert_non_null(e);
        assert_int_equal(e->status, 200);
        assert_non_null(strstr(e->body, "v1 /v1/"));
        assert_true(e->stored_at_ms >= before);
        hf_entry_release(&e);
    }

    /* the route's refresh state */
    const struct hf_refresh_status *st = &r->state->refresh;
    assert_int_equal(atomic_load(&st->last_result), HF_RUN_OK);
    assert_true(atomic_load(&st->last_ok_ms) > 0);
    assert_true(atomic_load(&st->last_start_ms) >= before);
    assert_true(atomic_load(&st->last_end_ms) >= atomic_load(&st->last_start_ms));
    assert_int_equal(atomic_load(&st->last_keys), 3);
    assert_int_equal(atomic_load(&st->last_failed), 0);
    assert_int_equal(atomic_load(&st->missing), 0);
    assert_false(atomic_load(&st->running));

    /* metrics */
    assert_int_equal(metric(f, "holdfast_refresh_keys_total{route=\"news\",result=\"refreshed\"}"),
                     3);
    assert_int_equal(metric(f, "holdfast_refresh_keys_total{route=\"news\",result=\"stale\"}"), 0);
    assert_int_equal(metric(f, "holdfast_refresh_runs_total{route=\"news\",result=\"ok\"}"), 1);
    assert_int_equal(metric(f, "holdfast_refresh_runs_total{route=\"news\",result=\"failed\"}"), 0);
}

static void revalidated_with_etag(void **state)
{
    struct fx *f = *state;
    struct hf_route_config rc = bg_route(f, "news", three, 3);
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    origin_set(f->o, 200, "e1", "v1", 0);
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(origin_req(f->o, i).inm, ""); /* nothing to revalidate yet */
    int64_t stored[3];
    char body[3][128];
    for (size_t i = 0; i < 3; i++) {
        struct hf_entry *e = copy_of(f, r, three[i]);
        assert_non_null(e);
        assert_non_null(e->etag);
        assert_string_equal(e->etag, "\"e1\"");
        stored[i] = e->stored_at_ms;
        snprintf(body[i], sizeof body[i], "%s", e->body);
        hf_entry_release(&e);
    }

    tick();
    run_refresh(f, "news", &o, &run); /* min_age_ms 0: every key again */
    assert_int_equal(run.sum.total, 3);
    assert_int_equal(count_of(&run, HF_KEY_NOT_MODIFIED), 3);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 0);
    assert_int_equal(run.sum.result, HF_RUN_OK);
    assert_int_equal(origin_requests(f->o), 6);
    for (int i = 3; i < 6; i++)
        assert_string_equal(origin_req(f->o, i).inm, "\"e1\"");
    for (size_t i = 0; i < 3; i++) {
        const struct report *k = report_of(&run, three[i]);
        assert_int_equal(k->result, HF_KEY_NOT_MODIFIED);
        assert_int_equal(k->error, HF_OK);
        struct hf_entry *e = copy_of(f, r, three[i]);
        assert_non_null(e);
        assert_true(e->stored_at_ms > stored[i]); /* revalidated: younger */
        assert_string_equal(e->body, body[i]);    /* the same answer */
        assert_int_equal(e->status, 200);
        hf_entry_release(&e);
    }
    assert_int_equal(
        metric(f, "holdfast_refresh_keys_total{route=\"news\",result=\"not_modified\"}"), 3);
    assert_int_equal(metric(f, "holdfast_refresh_runs_total{route=\"news\",result=\"ok\"}"), 2);
}

static void young_copies_skipped(void **state)
{
    struct fx *f = *state;
    struct hf_route_config rc = bg_route(f, "news", three, 3);
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 3);
    int64_t ok_ms = atomic_load(&r->state->refresh.last_ok_ms);

    o.min_age_ms = 60000;
    o.trigger = HF_REFRESH_START;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(run.sum.total, 3);
    assert_int_equal(count_of(&run, HF_KEY_SKIPPED), 3);
    assert_int_equal(run.sum.result, HF_RUN_OK);
    assert_int_equal(run.nkeys, 3);
    assert_int_equal(report_of(&run, "/c")->result, HF_KEY_SKIPPED);
    assert_int_equal(report_of(&run, "/c")->attempts, 0);
    assert_int_equal(origin_requests(f->o), 3); /* nothing new */
    assert_true(run.sum.oldest_stored_ms > 0);
    assert_true(atomic_load(&r->state->refresh.last_ok_ms) >= ok_ms);
    assert_false(atomic_load(&r->state->refresh.running));
    assert_int_equal(metric(f, "holdfast_refresh_keys_total{route=\"news\",result=\"skipped\"}"),
                     3);

    /* the loop is reusable afterwards: one more real run */
    o.min_age_ms = 0;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 3);
    assert_int_equal(origin_requests(f->o), 6);
}

static void failure_keeps_old_copies(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/a", "/b", "/new"};
    struct hf_route_config rc = bg_route(f, "news", keys, 3);
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;

    /* only /a and /b get a copy */
    o.only_target = "/a";
    run_refresh(f, "news", &o, &run);
    o.only_target = "/b";
    run_refresh(f, "news", &o, &run);
    o.only_target = NULL;
    assert_int_equal(origin_requests(f->o), 2);
    struct hf_entry *old_a = copy_of(f, r, "/a"), *old_b = copy_of(f, r, "/b");
    assert_non_null(old_a);
    assert_non_null(old_b);
    assert_null(copy_of(f, r, "/new"));

    /* the API fails: /a and /b keep their copies (stale), /new has none */
    origin_set(f->o, 503, NULL, "down", 0);
    int before = origin_requests(f->o);
    run_refresh(f, "news", &o, &run);
    assert_int_equal(run.sum.total, 3);
    assert_int_equal(count_of(&run, HF_KEY_STALE), 2);
    assert_int_equal(count_of(&run, HF_KEY_MISSING), 1);
    assert_int_equal(run.sum.result, HF_RUN_FAILED);
    assert_int_equal(origin_requests(f->o) - before, 3 * 2); /* two attempts each */
    const struct report *k = report_of(&run, "/a");
    assert_int_equal(k->result, HF_KEY_STALE);
    assert_int_equal(k->status, 503);
    assert_int_equal(k->error, HF_HTTP_5XX);
    assert_int_equal(k->attempts, 2);
    assert_true(k->age_s >= 0);
    k = report_of(&run, "/new");
    assert_int_equal(k->result, HF_KEY_MISSING);
    assert_int_equal(k->status, 503);
    assert_int_equal(k->error, HF_HTTP_5XX);
    assert_int_equal(k->age_s, -1);
    const struct hf_refresh_status *st = &r->state->refresh;
    assert_int_equal(atomic_load(&st->last_result), HF_RUN_FAILED);
    assert_int_equal(atomic_load(&st->last_ok_ms), 0); /* only one-target runs were ok */
    assert_int_equal(atomic_load(&st->last_failed), 3);
    assert_int_equal(atomic_load(&st->missing), 1);
    assert_int_equal(run.sum.oldest_stored_ms, old_a->stored_at_ms);
    for (int i = 0; i < 2; i++) {
        struct hf_entry *old = i == 0 ? old_a : old_b;
        struct hf_entry *now = copy_of(f, r, i == 0 ? "/a" : "/b");
        assert_non_null(now);
        assert_string_equal(now->body, old->body);
        assert_int_equal(now->stored_at_ms, old->stored_at_ms);
        assert_int_equal(now->status, 200);
        hf_entry_release(&now);
    }
    assert_null(copy_of(f, r, "/new"));
    assert_int_equal(metric(f, "holdfast_refresh_runs_total{route=\"news\",result=\"failed\"}"), 1);
    assert_int_equal(metric(f, "holdfast_refresh_keys_total{route=\"news\",result=\"missing\"}"),
                     1);

    /* without the key that never had a copy: degraded */
    origin_set(f->o, 200, NULL, "v1", 0);
    o.only_target = "/new";
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 1);
    o.only_target = NULL;
    struct hf_entry *old_new = copy_of(f, r, "/new");
    assert_non_null(old_new);
    origin_set(f->o, 503, NULL, "down", 0);
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_STALE), 3);
    assert_int_equal(run.sum.result, HF_RUN_DEGRADED);
    assert_int_equal(atomic_load(&st->last_result), HF_RUN_DEGRADED);
    assert_int_equal(atomic_load(&st->missing), 0);
    assert_int_equal(metric(f, "holdfast_refresh_runs_total{route=\"news\",result=\"degraded\"}"),
                     1);

    /* a 404 is the API's answer, but not one to replace a good copy with */
    origin_set(f->o, 404, NULL, "gone", 0);
    before = origin_requests(f->o);
    run_refresh(f, "news", &o, &run);
    assert_int_equal(origin_requests(f->o) - before, 3); /* a 404 is not retried */
    assert_int_equal(count_of(&run, HF_KEY_STALE), 3);
    assert_int_equal(run.sum.result, HF_RUN_DEGRADED);
    k = report_of(&run, "/b");
    assert_int_equal(k->status, 404);
    assert_int_equal(k->error, HF_HTTP_4XX);
    for (int i = 0; i < 3; i++) {
        struct hf_entry *old = i == 0 ? old_a : i == 1 ? old_b : old_new;
        struct hf_entry *now = copy_of(f, r, keys[i]);
        assert_non_null(now);
        assert_int_equal(now->status, 200);
        assert_string_equal(now->body, old->body);
        assert_int_equal(now->stored_at_ms, old->stored_at_ms);
        hf_entry_release(&now);
    }
    hf_entry_release(&old_a);
    hf_entry_release(&old_b);
    hf_entry_release(&old_new);
}

/* The same with cache_404_for set on the route: the refresh still must not
 * replace a good copy with the 404 (refresh.h: "on failure keeps the old
 * copy (a failed refresh never deletes anything)"). */
static void not_found_with_cache_404_keeps_copy(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/a"};
    struct hf_route_config rc = bg_route(f, "news", keys, 1);
    rc.cache_404_for_ms = 60000;
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 1);
    struct hf_entry *old = copy_of(f, r, "/a");
    assert_non_null(old);
    origin_set(f->o, 404, NULL, "gone", 0);
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_STALE), 1);
    struct hf_entry *now = copy_of(f, r, "/a");
    assert_non_null(now);
    assert_int_equal(now->status, 200);
    assert_string_equal(now->body, old->body);
    hf_entry_release(&now);
    hf_entry_release(&old);
}

static void paced_by_rate_limit(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/1", "/2", "/3", "/4", "/5"};
    struct hf_route_config rc = bg_route(f, "news", keys, 5);
    rc.rate_limit_count = 10;
    rc.rate_limit_per_ms = 1000; /* one key every 100 ms */
    fx_open(f, &rc, 1, NULL);
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE, .concurrency = 4};
    struct run run;
    int64_t t0 = mono_ms();
    run_refresh(f, "news", &o, &run);
    int64_t took = mono_ms() - t0;
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 5);
    assert_int_equal(origin_requests(f->o), 5);
    for (int i = 1; i < 5; i++) {
        int64_t gap = origin_req(f->o, i).mono_ms - origin_req(f->o, i - 1).mono_ms;
        if (gap < 90)
            print_error("requests %d and %d are %lld ms apart\n", i - 1, i, (long long)gap);
        assert_true(gap >= 90);
    }
    for (int i = 0; i < 5; i++) /* in the listed order */
        assert_string_equal(origin_req(f->o, i).target + 3, keys[i]);
    /* four gaps of 100 ms; libevent arms a timer from the loop's cached
     * time, so under load one may fire a few ms early (seen: 96 ms) */
    assert_true(took >= 390);
    assert_true(run.sum.ended_ms - run.sum.started_ms >= 390);
    assert_true(took < 1000);
}

static void learned_keys_join_the_run(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/a", "/q?b=2&a=1"};
    struct hf_route_config rc = bg_route(f, "news", keys, 2);
    rc.refresh_learn_ms = 3600000;
    rc.refresh_max_keys = 10;
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    assert_non_null(r->state->learned);
    int64_t now = hf_clock_wall_ms();
    char key[HF_CACHE_KEY_MAX];
    assert_int_equal(hf_cache_key("GET", "news", "/learned?p=1", NULL, 0, key, sizeof key), HF_OK);
    assert_int_equal(hf_learn_touch(r->state->learned, key, "/learned?p=1", now), HF_LEARN_ADDED);
    /* a learned target that is a listed key (the same cache key, written
     * another way too): fetched once */
    assert_int_equal(hf_cache_key("GET", "news", "/a", NULL, 0, key, sizeof key), HF_OK);
    assert_int_equal(hf_learn_touch(r->state->learned, key, "/a", now), HF_LEARN_ADDED);
    assert_int_equal(hf_cache_key("GET", "news", "/q?a=1&b=2", NULL, 0, key, sizeof key), HF_OK);
    assert_int_equal(hf_learn_touch(r->state->learned, key, "/q?a=1&b=2", now), HF_LEARN_ADDED);
    /* asked for longer ago than the window: gone by the run */
    assert_int_equal(hf_cache_key("GET", "news", "/old", NULL, 0, key, sizeof key), HF_OK);
    hf_learn_touch(r->state->learned, key, "/old", now - 3600000 - 60000);

    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(run.sum.total, 3);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 3);
    assert_int_equal(origin_requests(f->o), 3);
    assert_int_equal(origin_count(f->o, 0, "/v1/a"), 1);
    assert_int_equal(origin_count(f->o, 0, "/v1/q?b=2&a=1"), 1);
    assert_int_equal(origin_count(f->o, 0, "/v1/q?a=1&b=2"), 0);
    assert_int_equal(origin_count(f->o, 0, "/v1/learned?p=1"), 1);
    assert_int_equal(origin_count(f->o, 0, "/v1/old"), 0);
    assert_int_equal(report_of(&run, "/learned?p=1")->result, HF_KEY_REFRESHED);
    struct hf_entry *e = copy_of(f, r, "/learned?p=1");
    assert_non_null(e);
    hf_entry_release(&e);
    assert_int_equal(atomic_load(&r->state->refresh.last_keys), 3);
}

static void learned_key_expires(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/a"};
    struct hf_route_config rc = bg_route(f, "news", keys, 1);
    rc.refresh_learn_ms = 3600000;
    rc.refresh_max_keys = 10;
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    int64_t now = hf_clock_wall_ms();
    char key[HF_CACHE_KEY_MAX];
    assert_int_equal(hf_cache_key("GET", "news", "/x", NULL, 0, key, sizeof key), HF_OK);
    /* asked for just inside the window: in this run */
    assert_int_equal(hf_learn_touch(r->state->learned, key, "/x", now - 3600000 + 30000),
                     HF_LEARN_ADDED);
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(run.sum.total, 2);
    assert_int_equal(origin_count(f->o, 0, "/v1/x"), 1);
    /* the same key, last asked for before the window: not in the run */
    hf_learn_expire(r->state->learned, now + 3600000); /* drops it */
    assert_int_equal(hf_learn_count(r->state->learned, now), 0);
    assert_int_equal(hf_learn_touch(r->state->learned, key, "/x", now - 3600000 - 1),
                     HF_LEARN_ADDED);
    int before = origin_requests(f->o);
    run_refresh(f, "news", &o, &run);
    assert_int_equal(run.sum.total, 1);
    assert_int_equal(origin_count(f->o, before, "/v1/x"), 0);
    assert_int_equal(origin_count(f->o, before, "/v1/a"), 1);
}

static void only_target_runs_one_path(void **state)
{
    struct fx *f = *state;
    struct hf_route_config rc = bg_route(f, "news", three, 3);
    fx_open(f, &rc, 1, NULL);
    const struct hf_route *r = route(f, "news");
    struct hf_refresh_options o = {.trigger = HF_REFRESH_ADMIN, .only_target = "/c"};
    struct run run;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(run.sum.total, 1);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 1);
    assert_int_equal(run.nkeys, 1);
    assert_string_equal(run.keys[0].target, "/c");
    assert_int_equal(origin_requests(f->o), 1);
    assert_string_equal(origin_req(f->o, 0).target, "/v1/c");
    /* one key says nothing about the route's others */
    assert_int_equal(atomic_load(&r->state->refresh.last_end_ms), 0);
    assert_int_equal(atomic_load(&r->state->refresh.last_ok_ms), 0);
    assert_int_equal(atomic_load(&r->state->refresh.last_start_ms), 0);
    assert_false(atomic_load(&r->state->refresh.running));

    /* a path that is not one of the keys: that path alone */
    char target[64];
    snprintf(target, sizeof target, "/elsewhere?z=%d", 9);
    o.only_target = target;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(run.sum.total, 1);
    assert_int_equal(origin_requests(f->o), 2);
    assert_string_equal(origin_req(f->o, 1).target, "/v1/elsewhere?z=9");
    struct hf_entry *e = copy_of(f, r, "/elsewhere?z=9");
    assert_non_null(e);
    hf_entry_release(&e);
}

static void exit_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static void cancel_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run *r = arg;
    hf_refresh_cancel(&r->handle);
    assert_null(r->handle);
}

/* Ends the loop once `target` has a copy (checked every 10 ms), or at the
 * deadline: a fetch left to finish is waited for, however slow the machine. */
struct until_copy {
    struct fx *f;
    const char *target;
    int64_t deadline_ms;
};

static void until_copy_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct until_copy *u = arg;
    struct hf_entry *e = copy_of(u->f, route(u->f, "news"), u->target);
    if (e != NULL || hf_clock_mono_ms() >= u->deadline_ms)
        event_base_loopexit(u->f->base, NULL);
    hf_entry_release(&e);
}

/* Start a paced run (200 ms apart, 5 keys) and cancel it from a timer at
 * cancel_ms; the loop runs until 600 ms, or, with wait_for, until that
 * target has a copy (10 s at most). */
static void cancel_at(struct fx *f, struct run *run, int cancel_ms, int delay_ms,
                      const char *wait_for)
{
    static const char *const keys[] = {"/1", "/2", "/3", "/4", "/5"};
    struct hf_route_config rc = bg_route(f, "news", keys, 5);
    rc.rate_limit_count = 5;
    rc.rate_limit_per_ms = 1000; /* 200 ms apart */
    fx_open(f, &rc, 1, NULL);
    origin_set(f->o, 200, NULL, "v1", delay_ms);
    const struct hf_route *r = route(f, "news");
    memset(run, 0, sizeof *run);
    run->f = f;
    struct hf_refresh_options o = {.trigger = HF_REFRESH_ADMIN};
    char err[256];
    assert_int_equal(
        hf_refresh_start(&f->loop, r, &o, on_key, on_done, run, &run->handle, err, sizeof err),
        HF_OK);
    assert_non_null(run->handle);
    assert_true(atomic_load(&r->state->refresh.running));
    struct event *cancel = evtimer_new(f->base, cancel_cb, run);
    struct until_copy u = {f, wait_for, hf_clock_mono_ms() + 10000};
    struct event *quit = wait_for != NULL ? event_new(f->base, -1, EV_PERSIST, until_copy_cb, &u)
                                          : evtimer_new(f->base, exit_cb, f->base);
    struct timeval tc = {0, cancel_ms * 1000}, tq = {0, 600 * 1000}, tick = {0, 10 * 1000};
    evtimer_add(cancel, &tc);
    evtimer_add(quit, wait_for != NULL ? &tick : &tq);
    assert_int_equal(event_base_dispatch(f->base), 0);
    event_free(cancel);
    event_free(quit);
    assert_false(atomic_load(&r->state->refresh.running));
    assert_int_equal(run->ndone, 0);
    /* nothing of the run is left on the loop: it ends by itself */
    assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 1);
}

static void cancel_between_keys(void **state)
{
    struct fx *f = *state;
    struct run run;
    cancel_at(f, &run, 100, 0, NULL); /* the first key is done, the second not started */
    assert_int_equal(run.nkeys, 1);
    assert_int_equal(origin_requests(f->o), 1);
    assert_int_equal(atomic_load(&route(f, "news")->state->refresh.last_end_ms), 0);
}

static void cancel_with_a_key_in_flight(void **state)
{
    struct fx *f = *state;
    struct run run;
    /* the second key starts at 200 ms and takes 150 ms: cancelled at 250 */
    cancel_at(f, &run, 250, 150, "/2");
    assert_int_equal(origin_requests(f->o), 2);
    assert_int_equal(run.nkeys, 1); /* the second ends quietly */
    /* it still stored its answer */
    struct hf_entry *e = copy_of(f, route(f, "news"), "/2");
    assert_non_null(e);
    hf_entry_release(&e);
}

/* hf_refresh_cancel() from on_key, the natural place to stop a run. */
static void cancel_from_on_key(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/1", "/2", "/3", "/4", "/5"};
    struct hf_route_config rc = bg_route(f, "news", keys, 5);
    rc.rate_limit_count = 5;
    rc.rate_limit_per_ms = 1000;
    fx_open(f, &rc, 1, NULL);
    struct run run;
    memset(&run, 0, sizeof run);
    run.f = f;
    run.cancel_after = 1;
    struct hf_refresh_options o = {.trigger = HF_REFRESH_ADMIN};
    char err[256];
    assert_int_equal(hf_refresh_start(&f->loop, route(f, "news"), &o, on_key, on_done, &run,
                                      &run.handle, err, sizeof err),
                     HF_OK);
    struct event *quit = evtimer_new(f->base, exit_cb, f->base);
    struct timeval tq = {0, 500 * 1000};
    evtimer_add(quit, &tq);
    assert_int_equal(event_base_dispatch(f->base), 0);
    event_free(quit);
    assert_int_equal(run.nkeys, 1);
    assert_int_equal(run.ndone, 0);
    assert_int_equal(origin_requests(f->o), 1);
}

/* The same while every key is skipped: the keys end inside
 * hf_refresh_start(), and so does the run, quietly. */
static void cancel_from_on_key_while_skipping(void **state)
{
    struct fx *f = *state;
    struct hf_route_config rc = bg_route(f, "news", three, 3);
    fx_open(f, &rc, 1, NULL);
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "news", &o, &run);
    memset(&run, 0, sizeof run);
    run.f = f;
    run.cancel_after = 1;
    o.min_age_ms = 60000;
    char err[256];
    assert_int_equal(hf_refresh_start(&f->loop, route(f, "news"), &o, on_key, on_done, &run,
                                      &run.handle, err, sizeof err),
                     HF_OK);
    assert_null(run.handle);
    assert_int_equal(run.nkeys, 1);
    assert_int_equal(run.keys[0].result, HF_KEY_SKIPPED);
    assert_int_equal(run.ndone, 0);
    assert_false(atomic_load(&route(f, "news")->state->refresh.running));
    assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 1);
    assert_int_equal(origin_requests(f->o), 3);
}

/* --- the user side of a background route ------------------------------------ */

struct answer {
    bool done;
    enum hf_source source;
    hf_err error;
    int status;
    int attempts;
    char body[256];
    char detail[256];
};

static void answer_cb(struct hf_flow_result *res, void *arg)
{
    struct answer *a = arg;
    a->done = true;
    a->source = res->source;
    a->error = res->error;
    a->attempts = res->attempts;
    a->status = res->entry != NULL ? res->entry->status : 0;
    snprintf(a->body, sizeof a->body, "%s", res->entry != NULL ? res->entry->body : "");
    snprintf(a->detail, sizeof a->detail, "%s", res->detail);
}

/* A user's GET of target on route name, driven to its answer. */
static struct answer ask(struct fx *f, const char *name, const char *target)
{
    struct answer a = {0};
    struct hf_flow_request req = {.route = route(f, name), .method = "GET", .target = target};
    char err[256] = "";
    hf_err rc = hf_flow_start(&f->loop, &req, answer_cb, &a, err, sizeof err);
    if (rc != HF_OK)
        print_error("hf_flow_start: %s\n", err);
    assert_int_equal(rc, HF_OK);
    for (int i = 0; !a.done && i < 5000; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_true(a.done);
    return a;
}

static void users_read_the_copies(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/a"};
    struct hf_route_config routes[2] = {bg_route(f, "rej", keys, 1), bg_route(f, "fetch", keys, 1)};
    routes[1].refresh_on_miss = HF_ON_MISS_FETCH;
    routes[1].refresh_learn_ms = 3600000;
    routes[1].refresh_max_keys = 10;
    fx_open(f, routes, 2, NULL);
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "rej", &o, &run);
    assert_int_equal(origin_requests(f->o), 1);

    /* a listed key: the copy, no call */
    struct answer a = ask(f, "rej", "/a");
    assert_int_equal(a.source, HF_SOURCE_FRESH);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.attempts, 0);
    assert_string_equal(a.body, "v1 /v1/a #1");
    assert_int_equal(origin_requests(f->o), 1);

    /* an unknown key with on_miss reject: nothing, and why */
    a = ask(f, "rej", "/unknown");
    assert_int_equal(a.source, HF_SOURCE_NONE);
    assert_int_equal(a.error, HF_NOT_REFRESHED);
    assert_non_null(strstr(a.detail, "/unknown"));
    assert_non_null(strstr(a.detail, "refresh.learn is off"));
    assert_int_equal(origin_requests(f->o), 1);

    /* on_miss fetch: each missing key is fetched once */
    a = ask(f, "fetch", "/m1");
    assert_int_equal(a.source, HF_SOURCE_ORIGIN);
    assert_int_equal(a.status, 200);
    assert_int_equal(origin_requests(f->o), 2);
    assert_string_equal(origin_req(f->o, 1).target, "/v1/m1");
    a = ask(f, "fetch", "/m2");
    assert_int_equal(a.source, HF_SOURCE_ORIGIN);
    assert_int_equal(origin_requests(f->o), 3);
    a = ask(f, "fetch", "/m2"); /* its copy now */
    assert_int_equal(a.source, HF_SOURCE_FRESH);
    assert_int_equal(origin_requests(f->o), 3);
    char key[HF_CACHE_KEY_MAX + 64];
    store_key(route(f, "fetch"), "/m1", key, sizeof key);
    assert_int_equal(hf_store_delete(f->e->store, key), HF_OK);
    a = ask(f, "fetch", "/m1"); /* fetched once already: left to the schedule */
    assert_int_equal(a.source, HF_SOURCE_NONE);
    assert_int_equal(a.error, HF_NOT_REFRESHED);
    assert_non_null(strstr(a.detail, "/m1"));
    assert_int_equal(origin_requests(f->o), 3);

    /* the next run of that route takes the learned keys along */
    run_refresh(f, "fetch", &o, &run);
    assert_int_equal(run.sum.total, 3);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 3);
    assert_int_equal(origin_count(f->o, 3, "/v1/m1"), 1);
    assert_int_equal(origin_count(f->o, 3, "/v1/m2"), 1);
    assert_int_equal(origin_count(f->o, 3, "/v1/a"), 1);
}

/* Before the first run, a listed key has no copy: the 503 should say the
 * next run brings it, not that it is not one of the keys. */
static void listed_key_before_first_run(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/a"};
    struct hf_route_config rc = bg_route(f, "rej", keys, 1);
    fx_open(f, &rc, 1, NULL);
    struct answer a = ask(f, "rej", "/a");
    assert_int_equal(a.source, HF_SOURCE_NONE);
    assert_int_equal(a.error, HF_NOT_REFRESHED);
    if (strstr(a.detail, "is not one of") != NULL)
        print_error("detail: %s\n", a.detail);
    assert_null(strstr(a.detail, "is not one of"));
    assert_non_null(strstr(a.detail, "next run"));
    assert_int_equal(origin_requests(f->o), 0);
}

/* A listed key asked for by users is not a key to learn (it would take a
 * place of refresh.max_keys). */
static void listed_key_not_learned(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"/a"};
    struct hf_route_config rc = bg_route(f, "news", keys, 1);
    rc.refresh_learn_ms = 3600000;
    rc.refresh_max_keys = 10;
    fx_open(f, &rc, 1, NULL);
    struct hf_refresh_options o = {.trigger = HF_REFRESH_SCHEDULE};
    struct run run;
    run_refresh(f, "news", &o, &run);
    struct answer a = ask(f, "news", "/a");
    assert_int_equal(a.source, HF_SOURCE_FRESH);
    a = ask(f, "news", "/other"); /* no copy: rejected, but learned */
    assert_int_equal(a.source, HF_SOURCE_NONE);
    assert_int_equal(hf_learn_count(route(f, "news")->state->learned, hf_clock_wall_ms()),
                     1); /* /other only */
}

/* A SQLite store: the copies outlive the engine, and a later process's run
 * skips what is young. */
static void copies_persist(void **state)
{
    struct fx *f = *state;
    const char *dir = getenv("HF_TEST_TMPDIR");
    snprintf(f->db, sizeof f->db, "%s/test_refresh_%d.db", dir ? dir : "/tmp", (int)getpid());
    db_unlink(f->db);
    char url[600];
    snprintf(url, sizeof url, "sqlite:%s", f->db);
    struct hf_route_config rc = bg_route(f, "news", three, 3);
    fx_open(f, &rc, 1, url);
    struct hf_refresh_options o = {.trigger = HF_REFRESH_CLI};
    struct run run;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_REFRESHED), 3);
    fx_close(f);

    fx_open(f, &rc, 1, url);
    struct hf_entry *e = copy_of(f, route(f, "news"), "/b?x=1");
    assert_non_null(e);
    assert_string_equal(e->body, "v1 /v1/b?x=1 #2");
    hf_entry_release(&e);
    o.min_age_ms = 60000;
    run_refresh(f, "news", &o, &run);
    assert_int_equal(count_of(&run, HF_KEY_SKIPPED), 3);
    assert_int_equal(origin_requests(f->o), 3);
}

static void not_background_refused(void **state)
{
    struct fx *f = *state;
    struct hf_route_config rc = bg_route(f, "news", three, 3);
    rc.mode = HF_MODE_ON_DEMAND;
    fx_open(f, &rc, 1, NULL);
    struct run run = {.f = f};
    struct hf_refresh_options o = {.trigger = HF_REFRESH_CLI};
    char err[256] = "";
    static char dummy;
    struct hf_refresh_run *h = (struct hf_refresh_run *)(void *)&dummy; /* must be NULLed */
    assert_int_equal(hf_refresh_start(&f->loop, route(f, "news"), &o, on_key, on_done, &run, &h,
                                      err, sizeof err),
                     HF_EINVAL);
    assert_null(h);
    assert_non_null(strstr(err, "background"));
    assert_int_equal(run.ndone, 0);
    assert_int_equal(run.nkeys, 0);
}

int main(void)
{
    hf_upstream_global_init();
    hf_log_setup("off", 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_key_refreshed, setup, teardown),
        cmocka_unit_test_setup_teardown(revalidated_with_etag, setup, teardown),
        cmocka_unit_test_setup_teardown(young_copies_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(failure_keeps_old_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(not_found_with_cache_404_keeps_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(paced_by_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(learned_keys_join_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(learned_key_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(only_target_runs_one_path, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_between_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_with_a_key_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_from_on_key, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_from_on_key_while_skipping, setup, teardown),
        cmocka_unit_test_setup_teardown(users_read_the_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(listed_key_before_first_run, setup, teardown),
        cmocka_unit_test_setup_teardown(listed_key_not_learned, setup, teardown),
        cmocka_unit_test_setup_teardown(copies_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(not_background_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
