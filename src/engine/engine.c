/*
 * The engine's shared part: owned copies of the routes and the cache store
 * (a memory tier in front of the persistent one).  Built once, then only
 * read, so every loop thread may use it without locks.
 */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/store_impl.h"
#include "core/clock.h"
#include "engine/inflight.h"
#include "engine/learn.h"
#include "engine/plan.h"
#include "engine/reader.h"
#include "http/cache_key.h"
#include "http/vary.h"
#include "obs/log.h"
#include "obs/metrics.h"

static char *own(struct hf_route *r, const char *s)
{
    if (s == NULL)
        return NULL;
    char **v = realloc(r->owned, (r->nowned + 1) * sizeof *v);
    if (v == NULL)
        return NULL;
    r->owned = v;
    char *d = strdup(s);
    if (d != NULL)
        r->owned[r->nowned++] = d;
    return d;
}

static void route_fini(struct hf_route *r)
{
    for (size_t i = 0; i < r->nowned; i++)
        free(r->owned[i]);
    free(r->owned);
    for (size_t i = 0; i < sizeof r->arrays / sizeof r->arrays[0]; i++)
        free(r->arrays[i]);
    free(r->static_keys);
    if (r->state != NULL) {
        hf_learn_destroy(&r->state->learned);
        hf_breaker_fini(&r->state->breaker);
        hf_pause_fini(&r->state->pause);
        if (r->state->has_bucket)
            hf_bucket_fini(&r->state->bucket);
        if (r->state->has_quota)
            hf_quota_fini(&r->state->quota);
    }
    free(r->state);
    memset(r, 0, sizeof *r);
}

static hf_err copy_headers(struct hf_route *r, int slot, const struct hf_header *src, size_t n,
                           const struct hf_header **dst)
{
    *dst = NULL;
    if (n == 0)
        return HF_OK;
    struct hf_header *h = calloc(n, sizeof *h);
    if (h == NULL)
        return HF_ENOMEM;
    r->arrays[slot] = h;
    for (size_t i = 0; i < n; i++) {
        h[i].name = own(r, src[i].name);
        h[i].value = own(r, src[i].value ? src[i].value : "");
        if (h[i].name == NULL || h[i].value == NULL)
            return HF_ENOMEM;
    }
    *dst = h;
    return HF_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A background route: its schedule (checked by the config loader already,
 * but a library caller fills the struct by hand), a plan the API's limits
 * allow, the sorted cache keys of its refresh.keys and its learned set.
 */
static hf_err route_background(struct hf_route *r, const struct hf_route_config *src, char *errbuf,
                               size_t errlen)
{
    struct hf_route_config *c = &r->cfg;
    char why[256];
    if (src->refresh_every == NULL ||
        hf_schedule_parse(src->refresh_every, &r->schedule, why, sizeof why) != HF_OK) {
        snprintf(errbuf, errlen, "route %s: refresh.every: %s", c->name,
                 src->refresh_every ? why : "required with mode: background");
        return HF_CONFIG;
    }
    if (src->nvary > 0) {
        snprintf(errbuf, errlen, "route %s: vary does not apply to mode: background", c->name);
        return HF_CONFIG;
    }
    struct hf_plan plan;
    if (hf_plan_route(src, &r->schedule, &plan, why, sizeof why) == HF_PLAN_ERROR) {
        snprintf(errbuf, errlen, "%s", why);
        return HF_CONFIG;
    }
    r->background = true;
    r->refresh_interval_ms = hf_schedule_max_gap_ms(&r->schedule);
    if ((c->refresh_every = own(r, src->refresh_every)) == NULL)
        return HF_ENOMEM;
    c->refresh_keys = NULL;
    if (src->nrefresh_keys > 0) {
        const char **v = calloc(src->nrefresh_keys, sizeof *v);
        if (v == NULL)
            return HF_ENOMEM;
        r->arrays[4] = v;
        c->refresh_keys = v;
        if ((r->static_keys = calloc(src->nrefresh_keys, sizeof *r->static_keys)) == NULL)
            return HF_ENOMEM;
        for (size_t i = 0; i < src->nrefresh_keys; i++) {
            char key[HF_CACHE_KEY_MAX];
            if ((v[i] = own(r, src->refresh_keys[i])) == NULL)
                return HF_ENOMEM;
            if (hf_cache_key("GET", c->name, v[i], c->ignore_params, c->nignore_params, key,
                             sizeof key) != HF_OK) {
                snprintf(errbuf, errlen, "route %s: refresh.keys: \"%.80s\" is not a valid path",
                         c->name, v[i]);
                return HF_CONFIG;
            }
            if ((r->static_keys[r->nstatic_keys++] = own(r, key)) == NULL)
                return HF_ENOMEM;
        }
        qsort(r->static_keys, r->nstatic_keys, sizeof *r->static_keys, cmp_str);
        for (size_t i = 1; i < r->nstatic_keys; i++) {
            if (strcmp(r->static_keys[i], r->static_keys[i - 1]) == 0) {
                snprintf(errbuf, errlen, "route %s: refresh.keys lists one key twice (%.80s)",
                         c->name, r->static_keys[i]);
                return HF_CONFIG;
            }
        }
    }
    if (c->refresh_max_keys <= 0)
        c->refresh_max_keys = 500;
    if (c->refresh_learn_ms > 0 && (r->state->learned = hf_learn_create(
                                        (size_t)c->refresh_max_keys, c->refresh_learn_ms)) == NULL)
        return HF_ENOMEM;
    return HF_OK;
}

bool hf_route_static_key(const struct hf_route *r, const char *key)
{
    return r->nstatic_keys > 0 &&
           bsearch(&key, r->static_keys, r->nstatic_keys, sizeof *r->static_keys, cmp_str) != NULL;
}

void hf_route_learned_kv_key(const struct hf_route *r, char *buf, size_t len)
{
    snprintf(buf, len, "refresh:learned:%s", r->cfg.name);
}

/*
 * fleet: the route's limits are shared through Redis by `split` instances
 * (fleet.size); the local bucket and quota are then this instance's share,
 * for while Redis is away: the same count over split times the period
 * (rate / split, exactly), burst / split and quota / split (at least one).
 */
static hf_err route_copy(struct hf_route *r, const struct hf_route_config *src, bool fleet,
                         int split, char *errbuf, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->cfg = *src;
    if ((r->state = calloc(1, sizeof *r->state)) == NULL)
        return HF_ENOMEM;
    struct hf_route_state *st = r->state;
    if (hf_breaker_init(&st->breaker, src->breaker_failures, src->breaker_cooldown_ms) ||
        hf_pause_init(&st->pause)) {
        free(st);
        r->state = NULL;
        return HF_ENOMEM;
    }
    int64_t burst = src->rate_limit_burst > 0 ? src->rate_limit_burst : src->rate_limit_count;
    split = fleet && split > 1 ? split : 1;
    if (src->rate_limit_per_ms > 0 && src->rate_limit_count > 0) {
        int64_t share = burst / split > 0 ? burst / split : 1;
        if (hf_bucket_init(&st->bucket, src->rate_limit_count, src->rate_limit_per_ms * split,
                           split > 1 ? share : burst) == HF_OK)
            st->has_bucket = true;
    }
    if (src->quota_per_ms > 0 && src->quota_count > 0) {
        int64_t share = src->quota_count / split > 0 ? src->quota_count / split : 1;
        if (hf_quota_init(&st->quota, share, src->quota_per_ms) == HF_OK)
            st->has_quota = true;
    }
    atomic_store(&st->fleet_quota_left, -1);
    if (fleet) {
        /* every route: a pause another instance was told of is in Redis */
        st->fleet_limited = true;
        st->fleet_limits =
            (struct hf_fleet_limits){.rate_count = st->has_bucket ? src->rate_limit_count : 0,
                                     .rate_per_ms = src->rate_limit_per_ms,
                                     .rate_burst = burst,
                                     .quota_count = st->has_quota ? src->quota_count : 0,
                                     .quota_per_ms = src->quota_per_ms};
    }
    struct hf_route_config *c = &r->cfg;
    hf_err err = HF_ENOMEM;
    if ((src->name && !(c->name = own(r, src->name))) ||
        (src->prefix && !(c->prefix = own(r, src->prefix))) ||
        (src->upstream && !(c->upstream = own(r, src->upstream))))
        goto out;
    st->fleet_limits.route = c->name;
    {
        char m[1100];
        if (c->prefix != NULL && c->prefix[0] != '\0')
            snprintf(m, sizeof m, "%s", c->prefix);
        else
            snprintf(m, sizeof m, "/%s/", c->name != NULL ? c->name : "");
        size_t n = strlen(m);
        while (n > 0 && m[n - 1] == '/')
            m[--n] = '\0';
        if ((r->match = own(r, m)) == NULL)
            goto out;
        r->match_len = n;
    }
    if ((err = copy_headers(r, 0, src->headers, src->nheaders, &c->headers)) ||
        (err = copy_headers(r, 1, src->query, src->nquery, &c->query)))
        goto out;
    err = HF_ENOMEM;
    c->ignore_params = NULL;
    if (src->nignore_params > 0) {
        const char **v = calloc(src->nignore_params, sizeof *v);
        if (v == NULL)
            goto out;
        r->arrays[2] = v;
        for (size_t i = 0; i < src->nignore_params; i++)
            if ((v[i] = own(r, src->ignore_params[i])) == NULL)
                goto out;
        c->ignore_params = v;
    }
    /* The cache key varies on the route's `vary` headers and always on
     * Accept-Encoding: answers are relayed with their own Content-Encoding,
     * so a gzip copy must never reach a client that did not ask for it
     * (and APIs behind a compressing server send Vary: Accept-Encoding). */
    {
        const char **v = calloc(src->nvary + 1, sizeof *v);
        if (v == NULL)
            goto out;
        r->arrays[3] = v;
        size_t n = 0;
        bool has_ae = false;
        for (size_t i = 0; i < src->nvary; i++) {
            if ((v[n++] = own(r, src->vary[i])) == NULL)
                goto out;
            has_ae |= strcasecmp(src->vary[i], "Accept-Encoding") == 0;
        }
        if (!has_ae)
            v[n++] = "Accept-Encoding";
        c->vary = v;
        c->nvary = n;
        char vk[HF_VARY_KEY_MAX];
        if (hf_vary_key("", 0, v, n, NULL, 0, vk, sizeof vk) == HF_VARY_OK &&
            (r->vary_none = own(r, vk)) == NULL)
            goto out;
    }
    if (c->retry.attempts < 1)
        c->retry.attempts = 1;
    if (c->max_body == 0)
        c->max_body = 8u << 20;
    if (src->mode == HF_MODE_BACKGROUND && (err = route_background(r, src, errbuf, errlen)))
        goto out;
    err = HF_OK;
out:
    if (err)
        route_fini(r);
    return err;
}

/*
 * The store: memory in front, then the fleet's shared tier (Redis or Memcached)
 * when configured, then the file when configured.  A read goes
 * down the tiers and a hit is copied into memory; a write goes to every
 * tier.  The shared tier and the file are noted in e for /health and the
 * store metrics.
 */
static hf_err open_store(const struct hf_config *cfg, struct hf_engine *e, char *errbuf,
                         size_t errlen)
{
    struct hf_store *mem = NULL, *shared = NULL, *disk = NULL, *back = NULL;
    struct hf_store_options mo = {.max_bytes = cfg->memory_bytes, .keep_ms = cfg->keep_ms};
    struct hf_store_options so = {.max_bytes = cfg->max_size_bytes, .keep_ms = cfg->keep_ms};
    const char *shared_url = cfg->store_redis != NULL ? cfg->store_redis : cfg->store_memcached;
    bool file = cfg->store != NULL && strcmp(cfg->store, "memory:") != 0;
    hf_err err = hf_store_open("memory:", &mo, &mem, errbuf, errlen);
    if (err)
        return err;
    if (!file && shared_url == NULL) {
        e->store = mem;
        return HF_OK;
    }
    if (shared_url != NULL && (err = hf_store_open(shared_url, &so, &shared, errbuf, errlen)))
        goto out;
    if (file && (err = hf_store_open(cfg->store, &so, &disk, errbuf, errlen)))
        goto out;
    e->shared = shared;
    e->shared_redis = cfg->store_redis != NULL;
    e->disk = disk;
    back = shared != NULL ? shared : disk;
    if (shared != NULL && disk != NULL) {
        if ((err = hf__store_tiered(shared, disk, &back)))
            goto out;
        shared = disk = NULL; /* owned by back */
    }
    if ((err = hf__store_tiered(mem, back, &e->store)))
        goto out;
    e->back = back;
    e->mem = mem; /* owned by the tiered store, like the rest */
    return HF_OK;
out:
    e->shared = e->disk = NULL;
    if (back != NULL && back != shared && back != disk)
        hf_store_close(&back);
    hf_store_close(&shared);
    hf_store_close(&disk);
    hf_store_close(&mem);
    return err;
}

/*
 * Another instance purged copies: drop this one's too, in memory and in
 * its file (the shared tier's are gone already).  arg is the first
 * generation, whose tiers every generation shares.  "" means purges may
 * have been missed (the subscription was lost): every memory copy goes
 * (the next read finds the shared tier's), but the file keeps its copies,
 * the fallback while the shared tier is away.
 */
static void fleet_purged(const char *prefix, void *arg)
{
    struct hf_engine *e = arg;
    if (prefix[0] == '\0') {
        hf_store_delete_prefix(e->mem, "GET ", NULL); /* only GET copies are stored */
        return;
    }
    hf_store_delete_prefix(e->mem, prefix, NULL);
    if (e->disk != NULL)
        hf_store_delete_prefix(e->disk, prefix, NULL);
}

/* Before a lock is released as "stored": the Redis store's queued writes
 * are written (its sweep waits, bounded, for them and removes nothing). */
static void fleet_flush(void *arg)
{
    hf_store_sweep(arg, hf_clock_wall_ms(), NULL);
}

static hf_err open_fleet(const struct hf_config *cfg, struct hf_engine *e, char *errbuf,
                         size_t errlen)
{
    struct hf_fleet_options o = {.url = cfg->store_redis,
                                 .on_purge = fleet_purged,
                                 .purge_arg = e,
                                 .before_release = e->shared != NULL ? fleet_flush : NULL,
                                 .release_arg = e->shared};
    return hf_fleet_open(&o, &e->fleet, errbuf, errlen);
}

const char *hf_route_state_name(const struct hf_route *r, int64_t now_ms)
{
    struct hf_route_state *st = r->state;
    if (hf_breaker_state(&st->breaker, hf_clock_mono_ms()) != HF_BREAKER_CLOSED)
        return "down";
    if (hf_pause_active(&st->pause, now_ms, NULL, NULL) ||
        hf_route_quota_left(NULL, r, now_ms) == 0)
        return "paused";
    return atomic_load(&st->consecutive_failures) > 0 ? "degraded" : "ok";
}

int64_t hf_route_quota_left(struct hf_engine *e, const struct hf_route *r, int64_t now_ms)
{
    struct hf_route_state *st = r->state;
    if (!st->has_quota)
        return -1;
    int64_t fleet = atomic_load(&st->fleet_quota_left);
    if (st->fleet_limited && (e == NULL || e->fleet == NULL || hf_fleet_up(e->fleet))) {
        /* the fleet's count as Redis last gave it; none yet in this window
         * (or none at all): the whole quota, as far as this instance knows */
        int64_t per = st->fleet_limits.quota_per_ms;
        if (fleet < 0 || atomic_load(&st->fleet_quota_window) != now_ms - now_ms % per)
            return st->fleet_limits.quota_count;
        return fleet;
    }
    return hf_quota_remaining(&st->quota, now_ms);
}

/* The quota outlives restarts: its window and count live in the store. */
static void quota_key(const struct hf_route *r, char *buf, size_t len)
{
    snprintf(buf, len, "quota:%s", r->cfg.name);
}

void hf_engine_quota_save(struct hf_engine *e, const struct hf_route *r)
{
    /* In a fleet the count is Redis's; the local share is a fallback
     * (the key/value table is shared there: one instance's share would
     * overwrite another's). */
    if (!r->state->has_quota || r->state->fleet_limited)
        return;
    int64_t start, used;
    char key[300], val[64];
    hf_quota_snapshot(&r->state->quota, &start, &used);
    quota_key(r, key, sizeof key);
    if (hf_quota_format(start, used, val, sizeof val) > 0)
        hf_store_kv_put(e->store, key, val);
}

static void quota_load(struct hf_engine *e, struct hf_route *r)
{
    char key[300], val[128];
    int64_t start, used;
    quota_key(r, key, sizeof key);
    if (r->state->has_quota && !r->state->fleet_limited &&
        hf_store_kv_get(e->store, key, val, sizeof val) == HF_OK &&
        hf_quota_parse(val, &start, &used))
        hf_quota_restore(&r->state->quota, start, used);
}

/* What a route learned in the previous generation and must not forget on a
 * reload: the API's pause and the quota window (the breaker starts afresh). */
static void carry_state(struct hf_route *to, const struct hf_route *from, int64_t now_ms)
{
    int64_t until;
    enum hf_pause_reason pr;
    if (hf_pause_active(&from->state->pause, now_ms, &until, &pr))
        hf_pause_until(&to->state->pause, until, pr);
    if (to->state->has_quota && from->state->has_quota) {
        int64_t start, used;
        hf_quota_snapshot(&from->state->quota, &start, &used);
        hf_quota_restore(&to->state->quota, start, used);
    }
    atomic_store(&to->state->last_success_ms, atomic_load(&from->state->last_success_ms));
    atomic_store(&to->state->last_failure_ms, atomic_load(&from->state->last_failure_ms));
    atomic_store(&to->state->consecutive_failures, atomic_load(&from->state->consecutive_failures));
    atomic_store(&to->state->degraded_since_ms, atomic_load(&from->state->degraded_since_ms));
    const struct hf_refresh_status *fr = &from->state->refresh;
    struct hf_refresh_status *tr = &to->state->refresh;
    atomic_store(&tr->last_start_ms, atomic_load(&fr->last_start_ms));
    atomic_store(&tr->last_end_ms, atomic_load(&fr->last_end_ms));
    atomic_store(&tr->last_ok_ms, atomic_load(&fr->last_ok_ms));
    atomic_store(&tr->last_result, atomic_load(&fr->last_result));
    atomic_store(&tr->last_keys, atomic_load(&fr->last_keys));
    atomic_store(&tr->last_failed, atomic_load(&fr->last_failed));
    atomic_store(&tr->oldest_stored_ms, atomic_load(&fr->oldest_stored_ms));
    atomic_store(&tr->missing, atomic_load(&fr->missing));
    if (to->state->learned != NULL && from->state->learned != NULL) {
        char *doc = NULL;
        if (hf_learn_dump(from->state->learned, true, &doc) == HF_OK && doc != NULL)
            hf_learn_load(to->state->learned, doc, strlen(doc), now_ms);
        free(doc);
    }
}

/* The learned keys outlive restarts, and a `holdfast refresh` process
 * refreshes them too: they live in the store's key/value table. */
static void learned_load(struct hf_engine *e, struct hf_route *r)
{
    if (r->state->learned == NULL)
        return;
    size_t cap = (size_t)r->cfg.refresh_max_keys * 16384 + 1024;
    if (cap > (16u << 20))
        cap = 16u << 20;
    char key[300];
    char *buf = malloc(cap);
    hf_route_learned_kv_key(r, key, sizeof key);
    if (buf != NULL && hf_store_kv_get(e->store, key, buf, cap) == HF_OK &&
        hf_learn_load(r->state->learned, buf, strlen(buf), hf_clock_wall_ms()) != HF_OK)
        HF_LOG(HF_LOG_WARN, "learned_keys_invalid", HF_LS("route", r->cfg.name),
               HF_LS("detail", "the stored learned keys are unreadable; starting afresh"));
    free(buf);
}

static hf_err engine_build(const struct hf_config *cfg, struct hf_engine *prev,
                           struct hf_engine **out, char *errbuf, size_t errlen)
{
    hf_err err = HF_ENOMEM;
    struct hf_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        goto out;
    struct hf_route_config def;
    hf_route_config_default(&def);
    def.name = "default";
    if ((err = route_copy(&e->default_route, &def, false, 1, errbuf, errlen)))
        goto out;
    err = HF_ENOMEM;
    if (cfg->nroutes > 0 && (e->routes = calloc(cfg->nroutes, sizeof *e->routes)) == NULL)
        goto out;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct hf_route_config *rc = &cfg->routes[i];
        if (rc->name == NULL || rc->name[0] == '\0') {
            snprintf(errbuf, errlen, "route %zu has no name", i + 1);
            err = HF_CONFIG;
            goto out;
        }
        if ((err = route_copy(&e->routes[i], rc, cfg->store_redis != NULL, cfg->fleet_size, errbuf,
                              errlen)))
            goto out;
        e->routes[i].index = i;
        e->nroutes++;
        if (!rc->tls_verify)
            HF_LOG(HF_LOG_WARN, "tls_verify_off", HF_LS("route", rc->name),
                   HF_LS("detail", "TLS certificate verification is off for this route: "
                                   "anyone on the path can read and change its traffic"));
    }
    if (prev != NULL) {
        /* A reload: the store and the in-flight table are the running ones. */
        e->store = prev->store;
        e->inflight = prev->inflight;
        e->persistent = prev->persistent;
        e->mem = prev->mem;
        e->shared = prev->shared;
        e->shared_redis = prev->shared_redis;
        e->disk = prev->disk;
        e->back = prev->back;
        e->reader = prev->reader;
        e->fleet = prev->fleet;
        e->borrowed = true;
    } else {
        e->persistent = (cfg->store != NULL && strcmp(cfg->store, "memory:") != 0) ||
                        cfg->store_redis != NULL || cfg->store_memcached != NULL;
        if ((err = open_store(cfg, e, errbuf, errlen)))
            goto out;
        if (e->mem != NULL && (err = hf_reader_create(e->store, e->back, &e->reader)))
            goto out;
        if ((err = hf_inflight_create(65536, &e->inflight)))
            goto out;
        if (cfg->store_redis != NULL && (err = open_fleet(cfg, e, errbuf, errlen)))
            goto out;
    }
    e->fleet_size = cfg->fleet_size > 0 ? cfg->fleet_size : 1;
    for (size_t i = 0; i < e->nroutes; i++) {
        quota_load(e, &e->routes[i]);
        const struct hf_route *old = prev ? hf_engine_route(prev, e->routes[i].cfg.name) : NULL;
        if (old != NULL)
            carry_state(&e->routes[i], old, hf_clock_wall_ms());
        else
            learned_load(e, &e->routes[i]);
    }
    {
        const char *names[1024];
        size_t n = e->nroutes < 1024 ? e->nroutes : 1024;
        for (size_t i = 0; i < n; i++)
            names[i] = e->routes[i].cfg.name;
        if ((err = hf_metrics_create(names, n, &e->metrics))) {
            snprintf(errbuf, errlen, "cannot create the metrics registry");
            goto out;
        }
        if (prev != NULL && prev->metrics != NULL)
            hf_metrics_carry(e->metrics, prev->metrics);
    }
    *out = e;
    e = NULL;
out:
    hf_engine_destroy(&e);
    return err;
}

hf_err hf_engine_create(const struct hf_config *cfg, struct hf_engine **out, char *errbuf,
                        size_t errlen)
{
    return engine_build(cfg, NULL, out, errbuf, errlen);
}

hf_err hf_engine_reload(const struct hf_config *cfg, struct hf_engine *prev, struct hf_engine **out,
                        char *errbuf, size_t errlen)
{
    return engine_build(cfg, prev, out, errbuf, errlen);
}

void hf_engine_destroy(struct hf_engine **ep)
{
    struct hf_engine *e = *ep;
    if (e == NULL)
        return;
    if (!e->borrowed) {
        hf_fleet_close(&e->fleet);
        hf_reader_destroy(&e->reader);
        hf_store_close(&e->store);
        hf_inflight_destroy(&e->inflight);
    }
    hf_metrics_destroy(&e->metrics);
    for (size_t i = 0; i < e->nroutes; i++)
        route_fini(&e->routes[i]);
    free(e->routes);
    route_fini(&e->default_route);
    free(e);
    *ep = NULL;
}

const char *hf_stale_reason_name(enum hf_stale_reason r)
{
    static const char *const names[] = {"",
                                        "upstream-error",
                                        "rate-limited",
                                        "breaker-open",
                                        "quota-spent",
                                        "latency-budget",
                                        "revalidating",
                                        "background"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "";
}

const struct hf_route *hf_engine_route(const struct hf_engine *e, const char *name)
{
    for (size_t i = 0; i < e->nroutes; i++)
        if (strcmp(e->routes[i].cfg.name, name) == 0)
            return &e->routes[i];
    return NULL;
}
