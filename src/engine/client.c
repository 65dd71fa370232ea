/*
 * The public client (holdfast/client.h) over the engine.  A blocking call
 * takes a private loop from the client's pool (a libevent base plus a curl
 * multi handle whose connections stay open between calls), runs one flow on
 * it to completion and puts the loop back: the same request machine as the
 * proxy, driven the way curl_easy_perform drives multi.  Threads calling at
 * once each get their own loop.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "engine/engine.h"
#include "engine/refresh.h"
#include "http/headers.h"
#include "obs/log.h"
#include "upstream/upstream.h"

#define CLIENT_MAGIC 0x636c6e74u /* "clnt" */
#define RESP_MAGIC 0x72657370u   /* "resp" */
#define POOL_MAX 64              /* idle loops kept; more threads get short-lived ones */

struct loop_ctx {
    struct hf_flow_loop fl;
    struct loop_ctx *next;
};

struct hf_client {
    unsigned magic;
    struct hf_engine *engine;
    pthread_mutex_t lock; /* guards idle and nidle */
    struct loop_ctx *idle;
    int nidle;
};

struct resp_priv {
    unsigned magic;
    struct hf_entry *entry;
};

const char *hf_source_name(enum hf_source s)
{
    switch (s) {
    case HF_SOURCE_FRESH:
        return "fresh";
    case HF_SOURCE_ORIGIN:
        return "origin";
    case HF_SOURCE_STALE:
        return "stale";
    default:
        return "none";
    }
}

static void loop_free(struct loop_ctx *l)
{
    if (l == NULL)
        return;
    hf_upstream_destroy(&l->fl.upstream);
    if (l->fl.base != NULL)
        event_base_free(l->fl.base);
    free(l);
}

static struct loop_ctx *loop_get(struct hf_client *c)
{
    pthread_mutex_lock(&c->lock);
    struct loop_ctx *l = c->idle;
    if (l != NULL) {
        c->idle = l->next;
        c->nidle--;
    }
    pthread_mutex_unlock(&c->lock);
    if (l != NULL)
        return l;
    if ((l = calloc(1, sizeof *l)) == NULL)
        return NULL;
    l->fl.engine = c->engine;
    if ((l->fl.base = event_base_new()) == NULL ||
        hf_upstream_create(l->fl.base, &l->fl.upstream) != HF_OK) {
        loop_free(l);
        return NULL;
    }
    return l;
}

static void loop_put(struct hf_client *c, struct loop_ctx *l)
{
    pthread_mutex_lock(&c->lock);
    if (c->nidle < POOL_MAX) {
        l->next = c->idle;
        c->idle = l;
        c->nidle++;
        l = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    loop_free(l);
}

hf_err hf_client_create(const struct hf_config *cfg, struct hf_client **out, char *errbuf,
                        size_t errlen)
{
    char dummy[1];
    if (errbuf == NULL) {
        errbuf = dummy;
        errlen = sizeof dummy;
    }
    errbuf[0] = '\0';
    hf_err err = hf_upstream_global_init();
    if (err)
        return err;
    struct hf_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return HF_ENOMEM;
    c->magic = CLIENT_MAGIC;
    pthread_mutex_init(&c->lock, NULL);
    if ((err = hf_engine_create(cfg, &c->engine, errbuf, errlen))) {
        hf_client_destroy(&c);
        return err;
    }
    *out = c;
    return HF_OK;
}

void hf_client_destroy(struct hf_client **cp)
{
    struct hf_client *c = *cp;
    if (c == NULL)
        return;
    while (c->idle != NULL) {
        struct loop_ctx *l = c->idle;
        c->idle = l->next;
        loop_free(l);
    }
    hf_engine_destroy(&c->engine);
    pthread_mutex_destroy(&c->lock);
    c->magic = 0;
    free(c);
    *cp = NULL;
}

struct call {
    bool done;
    struct hf_response *resp;
};

static void fill_response(struct hf_flow_result *r, void *arg)
{
    struct call *call = arg;
    struct hf_response *resp = call->resp;
    call->done = true;
    resp->source = r->source;
    resp->attempts = r->attempts;
    resp->error = r->error;
    resp->error_status = r->error_status;
    resp->age_s = r->age_s;
    snprintf(resp->error_detail, sizeof resp->error_detail, "%s", r->detail);
    if (r->entry == NULL)
        return;
    struct resp_priv *p = calloc(1, sizeof *p);
    if (p == NULL) {
        resp->source = HF_SOURCE_NONE;
        resp->error = HF_ENOMEM;
        return;
    }
    p->magic = RESP_MAGIC;
    p->entry = r->entry; /* the response takes the result's reference */
    r->entry = NULL;
    resp->priv_ = p;
    resp->status = p->entry->status;
    resp->headers = p->entry->headers ? p->entry->headers : "";
    resp->headers_len = p->entry->headers_len;
    resp->body = p->entry->body ? p->entry->body : "";
    resp->body_len = p->entry->body_len;
    resp->stored_at_ms = p->entry->stored_at_ms;
}

static hf_err run(struct hf_client *c, const struct hf_flow_request *req, struct hf_response *resp)
{
    struct loop_ctx *l = loop_get(c);
    if (l == NULL) {
        resp->error = HF_ENOMEM;
        return HF_ENOMEM;
    }
    struct call call = {false, resp};
    hf_err err = hf_flow_start(&l->fl, req, fill_response, &call, resp->error_detail,
                               sizeof resp->error_detail);
    if (err) {
        resp->error = err;
        loop_put(c, l);
        return err;
    }
    /* NO_EXIT_ON_EMPTY: a coalesced request has nothing pending on this loop
     * until the leader, on another thread, wakes it. */
    while (!call.done)
        if (event_base_loop(l->fl.base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY) < 0)
            abort();
    loop_put(c, l);
    if (resp->source == HF_SOURCE_NONE)
        return resp->error ? resp->error : HF_UPSTREAM;
    return HF_OK;
}

hf_err hf_get(struct hf_client *c, const char *route, const char *path_and_query,
              struct hf_response *resp)
{
    memset(resp, 0, sizeof *resp);
    if (c == NULL || route == NULL || path_and_query == NULL)
        return resp->error = HF_EINVAL;
    const struct hf_route *r = hf_engine_route(c->engine, route);
    if (r == NULL) {
        snprintf(resp->error_detail, sizeof resp->error_detail, "no route named \"%s\"", route);
        return resp->error = HF_NO_ROUTE;
    }
    struct hf_flow_request req = {.route = r, .method = "GET", .target = path_and_query};
    return run(c, &req, resp);
}

hf_err hf_request(struct hf_client *c, const struct hf_request *rq, struct hf_response *resp)
{
    memset(resp, 0, sizeof *resp);
    if (c == NULL || rq == NULL || rq->url == NULL)
        return resp->error = HF_EINVAL;
    const struct hf_route *r;
    if (rq->route != NULL) {
        if ((r = hf_engine_route(c->engine, rq->route)) == NULL) {
            snprintf(resp->error_detail, sizeof resp->error_detail, "no route named \"%s\"",
                     rq->route);
            return resp->error = HF_NO_ROUTE;
        }
    } else {
        r = c->engine->nroutes > 0 ? &c->engine->routes[0] : &c->engine->default_route;
    }
    struct hf_flow_request req = {
        .route = r,
        .method = rq->method,
        .url = rq->url,
        .headers = rq->headers,
        .nheaders = rq->nheaders,
        .body = rq->body,
        .body_len = rq->body_len,
    };
    return run(c, &req, resp);
}

hf_err hf_log_setup(const char *level, int fd)
{
    enum hf_log_level lvl;
    if (level == NULL || !hf_log_level_parse(level, &lvl) || fd < 0)
        return HF_EINVAL;
    hf_log_configure(lvl, HF_LOG_JSON, fd);
    return HF_OK;
}

hf_err hf_client_sweep(struct hf_client *c)
{
    if (c == NULL)
        return HF_EINVAL;
    return hf_store_sweep(c->engine->store, hf_clock_wall_ms(), NULL);
}

void hf_response_free(struct hf_response *r)
{
    if (r == NULL)
        return;
    struct resp_priv *p = r->priv_;
    if (p != NULL) {
        if (p->magic != RESP_MAGIC)
            abort();
        hf_entry_release(&p->entry);
        p->magic = 0;
        free(p);
    }
    memset(r, 0, sizeof *r);
}

bool hf_response_header(const struct hf_response *r, const char *name, char *buf, size_t len)
{
    const char *v;
    size_t vl;
    if (r->headers == NULL || !hf_headers_find(r->headers, r->headers_len, name, &v, &vl))
        return false;
    if (len > 0) {
        size_t n = vl < len - 1 ? vl : len - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
    return true;
}

struct refresh_call {
    size_t running;
    struct hf_refresh_counts counts;
};

static void refresh_done(const struct hf_refresh_summary *s, void *arg)
{
    struct refresh_call *rc = arg;
    rc->counts.refreshed += s->counts[HF_KEY_REFRESHED];
    rc->counts.not_modified += s->counts[HF_KEY_NOT_MODIFIED];
    rc->counts.skipped += s->counts[HF_KEY_SKIPPED];
    rc->counts.stale += s->counts[HF_KEY_STALE];
    rc->counts.missing += s->counts[HF_KEY_MISSING];
    rc->running--;
}

hf_err hf_client_refresh(struct hf_client *c, const char *route, int64_t min_age_ms,
                         struct hf_refresh_counts *counts)
{
    if (counts != NULL)
        memset(counts, 0, sizeof *counts);
    if (c == NULL || c->magic != CLIENT_MAGIC)
        return HF_EINVAL;
    const struct hf_engine *e = c->engine;
    size_t n = 0;
    for (size_t i = 0; i < e->nroutes; i++)
        n +=
            e->routes[i].background && (route == NULL || strcmp(route, e->routes[i].cfg.name) == 0);
    if (n == 0)
        return HF_NOT_FOUND;
    struct loop_ctx *l = loop_get(c);
    if (l == NULL)
        return HF_ENOMEM;
    struct refresh_call call = {0};
    hf_err err = HF_OK;
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct hf_route *r = &e->routes[i];
        if (!r->background || (route != NULL && strcmp(route, r->cfg.name) != 0))
            continue;
        /* A serve sharing the file learns of the new copies. */
        struct hf_refresh_options o = {
            .trigger = HF_REFRESH_CLI, .min_age_ms = min_age_ms, .announce = e->persistent};
        char why[256];
        call.running++;
        hf_err e2 =
            hf_refresh_start(&l->fl, r, &o, NULL, refresh_done, &call, NULL, why, sizeof why);
        if (e2) {
            call.running--;
            err = e2;
        }
    }
    while (call.running > 0)
        if (event_base_loop(l->fl.base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY) < 0)
            abort();
    loop_put(c, l);
    if (counts != NULL)
        *counts = call.counts;
    return err;
}
