/*
 * The benchmark's origin: a small, fast HTTP server (libevent evhttp, one
 * loop per thread, each with its own SO_REUSEPORT listener) answering every
 * GET with the same 2 KB JSON body and Cache-Control: max-age (3600, or the
 * request's ?ttl=N).  Every path is its own object, so a run of distinct
 * paths is a run of cache misses for the proxy in front.  It is also the
 * bare reference server: hit directly, it is what the machine can do.
 *
 * Control, on the same port (never forwarded by the proxies under test):
 *   POST /_origin/mode?m=ok|503|429|hang|close|slow[&ms=N][&scope=SEG]
 *        the mode for every path, or (scope) only for paths whose first
 *        segment is SEG, the others answering ok;
 *        503: 503 with a small body; 429: 429 with Retry-After: 30;
 *        hang: never answers (until the mode changes, then a 503);
 *        close: resets the connection (SO_LINGER 0); slow: ok after N ms.
 *   GET  /_origin/stats[?key=A/B]  requests received, by the first two path
 *        segments ("hit/hf" for /hit/hf/item): {"total":N,"keys":{...}},
 *        or {"requests":N} for one key.
 *   POST /_origin/reset            zero every count.
 * Counts are per thread (written by their own thread only), summed on read.
 */
#include <sys/queue.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/listen.h"

#define BODY_BYTES 2048
#define MAX_THREADS 16
#define MAX_KEYS 256
#define KEY_BYTES 48
#define MAX_HUNG 4096

enum mode { MODE_OK, MODE_503, MODE_429, MODE_HANG, MODE_CLOSE, MODE_SLOW };
static const char *const mode_names[] = {"ok", "503", "429", "hang", "close", "slow"};

static _Atomic int mode = MODE_OK;
static _Atomic int slow_ms = 200;
/* The mode's scope: the hash of a first path segment, 0 for every path. */
static _Atomic uint64_t scope_hash;
static char body[BODY_BYTES];

struct counter {
    char key[KEY_BYTES];
    size_t len;
    _Atomic unsigned long n;
};

struct worker {
    pthread_t tid;
    struct event_base *base;
    struct evhttp *http;
    struct event *sweep;
    int fd;
    /* Written by this worker only; nkeys is published with release. */
    struct counter keys[MAX_KEYS];
    _Atomic size_t nkeys;
    _Atomic unsigned long other; /* requests whose key did not fit */
    struct evhttp_request *hung[MAX_HUNG];
    size_t nhung;
};

static struct worker workers[MAX_THREADS];
static int nworkers = 2;

static void make_body(void)
{
    /* A plausible API answer: a list of items, padded to exactly 2 KB. */
    size_t n = 0;
    n += (size_t)snprintf(body + n, sizeof body - n, "{\"items\":[");
    for (int i = 0; n < BODY_BYTES - 160; i++)
        n +=
            (size_t)snprintf(body + n, sizeof body - n,
                             "%s{\"id\":%d,\"name\":\"item-%04d\",\"price\":%d.%02d,\"stock\":%d}",
                             i ? "," : "", i + 1, i + 1, 10 + i * 3, (i * 37) % 100, (i * 13) % 50);
    n += (size_t)snprintf(body + n, sizeof body - n, "],\"note\":\"");
    while (n < BODY_BYTES - 2)
        body[n++] = 'x';
    body[n++] = '"';
    body[n++] = '}';
}

/* The counting key of a path: its first two segments, "hit/hf". */
static size_t path_key(const char *uri, const char **start)
{
    const char *p = uri;
    while (*p == '/')
        p++;
    *start = p;
    int slashes = 0;
    const char *q = p;
    while (*q && *q != '?' && *q != '#') {
        if (*q == '/' && ++slashes == 2)
            break;
        q++;
    }
    return (size_t)(q - p);
}

static void count(struct worker *w, const char *uri)
{
    const char *k;
    size_t len = path_key(uri, &k);
    if (len >= KEY_BYTES) {
        atomic_fetch_add_explicit(&w->other, 1, memory_order_relaxed);
        return;
    }
    size_t n = atomic_load_explicit(&w->nkeys, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        struct counter *c = &w->keys[i];
        if (c->len == len && memcmp(c->key, k, len) == 0) {
            atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed);
            return;
        }
    }
    if (n == MAX_KEYS) {
        atomic_fetch_add_explicit(&w->other, 1, memory_order_relaxed);
        return;
    }
    struct counter *c = &w->keys[n];
    memcpy(c->key, k, len);
    c->key[len] = '\0';
    c->len = len;
    atomic_store_explicit(&c->n, 1, memory_order_relaxed);
    atomic_store_explicit(&w->nkeys, n + 1, memory_order_release);
}

static uint64_t hash_of(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h | 1; /* never 0, which means "every path" */
}

/* The mode for this path: the global one, unless scoped to another segment. */
static int mode_for(const char *uri)
{
    int m = atomic_load_explicit(&mode, memory_order_relaxed);
    uint64_t scope = atomic_load_explicit(&scope_hash, memory_order_relaxed);
    if (m == MODE_OK || scope == 0)
        return m;
    const char *p = uri;
    while (*p == '/')
        p++;
    size_t len = strcspn(p, "/?#");
    return hash_of(p, len) == scope ? m : MODE_OK;
}

static int ttl_of(const char *uri)
{
    const char *q = strchr(uri, '?');
    if (q == NULL)
        return 3600;
    const char *t = strstr(q, "ttl=");
    if (t == NULL || (t[-1] != '?' && t[-1] != '&'))
        return 3600;
    return atoi(t + 4);
}

static void reply_ok(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char cc[48];
    snprintf(cc, sizeof cc, "max-age=%d", ttl_of(evhttp_request_get_uri(req)));
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", cc);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_reference(b, body, sizeof body, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void reply_text(struct evhttp_request *req, int status, const char *reason, const char *type,
                       const char *text)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    if (status == 429)
        evhttp_add_header(h, "Retry-After", "30");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, status, reason, b);
    evbuffer_free(b);
}

static void slow_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    /* Safe even if the client left: evhttp then hands the request to us
     * detached, and sending the reply frees it. */
    reply_ok(arg);
}

static void reset_connection(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    evutil_socket_t fd = bufferevent_getfd(bev);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    evhttp_connection_free(conn); /* frees req too: the client sees a reset */
}

static void control(struct evhttp_request *req, const char *uri)
{
    struct evhttp_uri *u = evhttp_uri_parse(uri);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query)
        evhttp_parse_query_str(query, &q);
    char out[16384];
    size_t n = 0;
    if (path && strcmp(path, "/_origin/mode") == 0) {
        const char *m = evhttp_find_header(&q, "m");
        const char *ms = evhttp_find_header(&q, "ms");
        const char *scope = evhttp_find_header(&q, "scope");
        int found = -1;
        for (int i = 0; m && i < (int)(sizeof mode_names / sizeof mode_names[0]); i++)
            if (strcmp(m, mode_names[i]) == 0)
                found = i;
        if (found < 0) {
            reply_text(req, 400, "Bad Request", "text/plain", "m=ok|503|429|hang|close|slow\n");
            goto out;
        }
        if (ms)
            atomic_store(&slow_ms, atoi(ms));
        atomic_store(&scope_hash, scope && *scope ? hash_of(scope, strlen(scope)) : 0);
        atomic_store(&mode, found);
        n = (size_t)snprintf(out, sizeof out, "{\"mode\":\"%s\",\"ms\":%d,\"scope\":\"%s\"}\n",
                             mode_names[found], atomic_load(&slow_ms), scope ? scope : "");
    } else if (path && strcmp(path, "/_origin/reset") == 0) {
        for (int t = 0; t < nworkers; t++) {
            size_t k = atomic_load_explicit(&workers[t].nkeys, memory_order_acquire);
            for (size_t i = 0; i < k; i++)
                atomic_store(&workers[t].keys[i].n, 0);
            atomic_store(&workers[t].other, 0);
        }
        n = (size_t)snprintf(out, sizeof out, "{\"reset\":true}\n");
    } else if (path && strcmp(path, "/_origin/stats") == 0) {
        const char *want = evhttp_find_header(&q, "key");
        unsigned long total = 0, one = 0;
        /* Sum per key over the threads: a key may sit in several tables. */
        struct {
            const char *key;
            unsigned long n;
        } sums[MAX_KEYS * MAX_THREADS];
        size_t nsums = 0;
        for (int t = 0; t < nworkers; t++) {
            total += atomic_load(&workers[t].other);
            size_t k = atomic_load_explicit(&workers[t].nkeys, memory_order_acquire);
            for (size_t i = 0; i < k; i++) {
                const struct counter *c = &workers[t].keys[i];
                unsigned long v = atomic_load(&c->n);
                total += v;
                if (want && strcmp(want, c->key) == 0)
                    one += v;
                size_t j = 0;
                while (j < nsums && strcmp(sums[j].key, c->key) != 0)
                    j++;
                if (j == nsums)
                    sums[nsums++].key = c->key, sums[j].n = 0;
                sums[j].n += v;
            }
        }
        if (want) {
            n = (size_t)snprintf(out, sizeof out, "{\"requests\":%lu}\n", one);
        } else {
            n = (size_t)snprintf(out, sizeof out, "{\"mode\":\"%s\",\"total\":%lu,\"keys\":{",
                                 mode_names[atomic_load(&mode)], total);
            for (size_t j = 0; j < nsums && n < sizeof out - 128; j++)
                n += (size_t)snprintf(out + n, sizeof out - n, "%s\"%s\":%lu", j ? "," : "",
                                      sums[j].key, sums[j].n);
            n += (size_t)snprintf(out + n, sizeof out - n, "}}\n");
        }
    } else {
        reply_text(req, 404, "Not Found", "text/plain", "no such control\n");
        goto out;
    }
    (void)n;
    reply_text(req, 200, "OK", "application/json", out);
out:
    evhttp_clear_headers(&q);
    if (u)
        evhttp_uri_free(u);
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    const char *uri = evhttp_request_get_uri(req);
    if (strncmp(uri, "/_origin/", 9) == 0) {
        control(req, uri);
        return;
    }
    count(w, uri);
    switch (mode_for(uri)) {
    case MODE_OK:
        reply_ok(req);
        break;
    case MODE_503:
        reply_text(req, 503, "Service Unavailable", "application/json",
                   "{\"error\":\"unavailable\"}\n");
        break;
    case MODE_429:
        reply_text(req, 429, "Too Many Requests", "application/json",
                   "{\"error\":\"rate limited\"}\n");
        break;
    case MODE_HANG:
        if (w->nhung < MAX_HUNG)
            w->hung[w->nhung++] = req; /* answered when the mode changes */
        break;
    case MODE_CLOSE:
        reset_connection(req);
        break;
    case MODE_SLOW: {
        int ms = atomic_load(&slow_ms);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        /* N ms from now, not from when this loop iteration began (libevent
         * times a timer from its cached clock): a busy loop would answer
         * early, and the herd's goal is measured against this origin. */
        event_base_update_cache_time(w->base);
        event_base_once(w->base, -1, EV_TIMEOUT, slow_done, req, &tv);
        break;
    }
    }
}

/* Hung requests are let go (503) once the mode is no longer hang. */
static void sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (w->nhung == 0 || atomic_load(&mode) == MODE_HANG)
        return;
    for (size_t i = 0; i < w->nhung; i++)
        reply_text(w->hung[i], 503, "Service Unavailable", "application/json",
                   "{\"error\":\"hung\"}\n");
    w->nhung = 0;
}

/* 127.0.0.1:port, one SO_REUSEPORT socket per worker; exits on failure. */
static int listen_on(int port)
{
    char addr[32], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd = hf_listen_socket(addr, true, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "origin: %s\n", err);
        exit(1);
    }
    return fd;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "p:t:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 't':
            nworkers = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: origin -p PORT [-t THREADS]\n");
            return 2;
        }
    }
    if (port <= 0 || nworkers < 1 || nworkers > MAX_THREADS) {
        fprintf(stderr, "usage: origin -p PORT [-t THREADS (1..%d)]\n", MAX_THREADS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    make_body();
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        /* precise timers (timerfd): slow answers come after N ms, not N + 1 */
        struct event_config *ec = event_config_new();
        if (ec != NULL)
            event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
        w->base = ec != NULL ? event_base_new_with_config(ec) : NULL;
        if (ec != NULL)
            event_config_free(ec);
        w->http = w->base != NULL ? evhttp_new(w->base) : NULL;
        w->fd = listen_on(port);
        if (w->base == NULL || w->http == NULL ||
            evhttp_accept_socket_with_handle(w->http, w->fd) == NULL) {
            fprintf(stderr, "origin: cannot start worker %d\n", i);
            return 1;
        }
        evhttp_set_gencb(w->http, handle, w);
        evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
        w->sweep = event_new(w->base, -1, EV_PERSIST, sweep, w);
        struct timeval tv = {0, 100 * 1000};
        event_add(w->sweep, &tv);
    }
    for (int i = 1; i < nworkers; i++)
        if (pthread_create(&workers[i].tid, NULL, run, &workers[i]) != 0) {
            fprintf(stderr, "origin: pthread_create: %s\n", strerror(errno));
            return 1;
        }
    run(&workers[0]);
    return 0;
}
