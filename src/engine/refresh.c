/*
 * A refresh run (refresh.h): a list of targets, started one by one at the
 * route's pace through the request flow, each outcome counted, logged and
 * reported, then one summary.
 */
#include "engine/refresh.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "engine/learn.h"
#include "http/cache_key.h"
#include "obs/log.h"

#define RUN_MAGIC 0x72756e21u /* "run!" */
#define DEFAULT_CONCURRENCY 4

struct hf_refresh_run {
    unsigned magic;
    struct hf_flow_loop *loop;
    const struct hf_route *route;
    struct hf_refresh_options opts;
    hf_refresh_key_fn on_key;
    hf_refresh_done_fn on_done;
    void *arg;
    char **targets; /* one block: pointers, then the strings */
    size_t next;    /* the next target to start */
    int inflight;
    int64_t spacing_ms; /* between starts; 0: none */
    struct event *pace;
    bool pace_pending;
    bool launching; /* inside launch(): completions only count */
    int busy;       /* inside on_key / on_done: a cancel there only marks */
    bool cancelled;
    bool finished;
    struct hf_refresh_summary sum;
    char only[HF_CACHE_KEY_MAX];
};

/* One key in flight: the flow's callback argument. */
struct key_ctx {
    struct hf_refresh_run *run;
    size_t index;
    bool completed;
};

static void launch(struct hf_refresh_run *run);

const char *hf_refresh_trigger_name(enum hf_refresh_trigger t)
{
    static const char *const names[] = {"schedule", "start", "admin", "cli"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

void hf_refresh_stamp_key(const char *route, char *buf, size_t len)
{
    snprintf(buf, len, "refresh:stamp:%s", route);
}

static bool counted(const struct hf_refresh_run *run)
{
    return run->loop->engine->metrics != NULL && run->route != &run->loop->engine->default_route;
}

static void run_free(struct hf_refresh_run *run)
{
    if (run->pace != NULL)
        event_free(run->pace);
    free(run->targets);
    run->magic = 0;
    free(run);
}

/* The run has ended: its result everywhere it is read. */
static void finish_run(struct hf_refresh_run *run)
{
    struct hf_refresh_summary *s = &run->sum;
    const struct hf_route *r = run->route;
    struct hf_refresh_status *st = &r->state->refresh;
    int64_t now = hf_clock_wall_ms();
    run->finished = true;
    s->ended_ms = now;
    s->result = s->counts[HF_KEY_MISSING] > 0 ? HF_RUN_FAILED
                : s->counts[HF_KEY_STALE] > 0 ? HF_RUN_DEGRADED
                                              : HF_RUN_OK;
    size_t failed = s->counts[HF_KEY_MISSING] + s->counts[HF_KEY_STALE];
    /* One key refreshed by hand says nothing about the route's other keys. */
    if (run->opts.only_target == NULL) {
        atomic_store(&st->last_end_ms, now);
        atomic_store(&st->last_result, (int)s->result);
        atomic_store(&st->last_keys, (int64_t)s->total);
        atomic_store(&st->last_failed, (int64_t)failed);
        atomic_store(&st->oldest_stored_ms, s->oldest_stored_ms);
        atomic_store(&st->missing, (int64_t)s->counts[HF_KEY_MISSING]);
        if (s->result == HF_RUN_OK)
            atomic_store(&st->last_ok_ms, now);
    }
    atomic_fetch_sub(&st->running, 1);
    if (counted(run)) {
        struct hf_metrics *m = run->loop->engine->metrics;
        hf_metric_inc(m, HF_M_REFRESH_RUNS_TOTAL, r->index, (unsigned)s->result);
        if (s->result == HF_RUN_OK && run->opts.only_target == NULL)
            hf_metric_set(m, HF_M_REFRESH_LAST_SUCCESS, r->index, 0, now / 1000);
        int64_t took = now - s->started_ms;
        hf_metric_observe_us(m, HF_M_REFRESH_DURATION, r->index, 0,
                             took > 0 ? (uint64_t)took * 1000 : 0);
    }
    HF_LOG(s->result == HF_RUN_OK         ? HF_LOG_INFO
           : s->result == HF_RUN_DEGRADED ? HF_LOG_WARN
                                          : HF_LOG_ERROR,
           "refresh_done", HF_LS("route", r->cfg.name),
           HF_LS("trigger", hf_refresh_trigger_name(s->trigger)),
           HF_LS("result", hf_metric_label_value(HF_ML_RUN_RESULT, s->result)),
           HF_LI("keys", (int64_t)s->total),
           HF_LI("refreshed", (int64_t)s->counts[HF_KEY_REFRESHED]),
           HF_LI("not_modified", (int64_t)s->counts[HF_KEY_NOT_MODIFIED]),
           HF_LI("skipped", (int64_t)s->counts[HF_KEY_SKIPPED]),
           HF_LI("stale", (int64_t)s->counts[HF_KEY_STALE]),
           HF_LI("missing", (int64_t)s->counts[HF_KEY_MISSING]),
           HF_LI("duration_ms", now - s->started_ms));
    if (run->on_done != NULL) {
        run->busy++;
        run->on_done(s, run->arg);
        run->busy--;
    }
}

/* What a key's flow result means for the run. */
static enum hf_m_key_result classify(const struct hf_flow_result *res)
{
    const struct hf_entry *e = res->entry;
    switch (res->source) {
    case HF_SOURCE_FRESH:
        return HF_KEY_SKIPPED;
    case HF_SOURCE_ORIGIN:
        /* A waiter's copy was stored by the request it waited for. */
        if (e != NULL && (res->stored || res->collapsed) &&
            ((e->status >= 200 && e->status < 300) || res->revalidated))
            return res->revalidated ? HF_KEY_NOT_MODIFIED : HF_KEY_REFRESHED;
        break; /* an answer not worth keeping (a 404, say): the old copy stays */
    case HF_SOURCE_STALE:
        return HF_KEY_STALE;
    default:
        break;
    }
    return res->had_copy && res->source != HF_SOURCE_NONE ? HF_KEY_STALE : HF_KEY_MISSING;
}

static void key_done(struct hf_flow_result *res, void *arg)
{
    struct key_ctx *k = arg;
    struct hf_refresh_run *run = k->run;
    if (run->magic != RUN_MAGIC)
        abort();
    /* Called from inside hf_flow_start() (a skipped key), the key belongs
     * to launch(), which frees it. */
    bool mine = !run->launching;
    k->completed = true;
    run->inflight--;
    if (run->cancelled) {
        if (mine) {
            free(k);
            if (run->inflight == 0)
                run_free(run);
        }
        return;
    }
    int64_t now = hf_clock_wall_ms();
    enum hf_m_key_result kr = classify(res);
    int64_t stored = 0;
    switch (kr) {
    case HF_KEY_REFRESHED:
    case HF_KEY_NOT_MODIFIED:
    case HF_KEY_SKIPPED:
        stored = res->entry != NULL ? res->entry->stored_at_ms : now;
        break;
    case HF_KEY_STALE:
        stored = res->copy_stored_at_ms;
        break;
    default:
        break;
    }
    struct hf_refresh_summary *s = &run->sum;
    s->done++;
    s->counts[kr]++;
    if (stored > 0 && (s->oldest_stored_ms == 0 || stored < s->oldest_stored_ms))
        s->oldest_stored_ms = stored;
    const struct hf_route *r = run->route;
    const char *target = run->targets[k->index];
    hf_err err = HF_OK;
    if (kr == HF_KEY_STALE || kr == HF_KEY_MISSING) {
        const struct hf_entry *e = res->entry;
        if (res->error)
            err = res->error;
        else if (e != NULL && e->status >= 200 && e->status < 300)
            err = HF_STORE; /* an answer that could not be kept */
        else
            err = e != NULL ? HF_HTTP_4XX : HF_UPSTREAM;
    }
    int status = res->error_status ? res->error_status : (res->entry ? res->entry->status : 0);
    if (counted(run))
        hf_metric_inc(run->loop->engine->metrics, HF_M_REFRESH_KEYS_TOTAL, r->index, (unsigned)kr);
    bool bad = kr == HF_KEY_STALE || kr == HF_KEY_MISSING;
    HF_LOG(bad ? HF_LOG_WARN : HF_LOG_INFO, "refresh_key", HF_LS("route", r->cfg.name),
           HF_LS("key", target), HF_LS("result", hf_metric_label_value(HF_ML_KEY_RESULT, kr)),
           HF_LI("status", status), HF_LI("attempts", res->attempts),
           HF_LS("error", bad ? hf_err_label(err) : NULL),
           HF_LS("detail", bad ? res->detail : NULL));
    if (run->opts.announce && (kr == HF_KEY_REFRESHED || kr == HF_KEY_NOT_MODIFIED)) {
        char key[300], val[32];
        hf_refresh_stamp_key(r->cfg.name, key, sizeof key);
        snprintf(val, sizeof val, "%lld", (long long)now);
        hf_store_kv_put(run->loop->engine->store, key, val);
    }
    if (run->on_key != NULL) {
        run->busy++;
        struct hf_refresh_key_report rep = {
            .target = target,
            .result = kr,
            .status = status,
            .error = err,
            .attempts = res->attempts,
            .age_s = stored > 0 ? (now - stored) / 1000 : -1,
            .detail = res->detail,
        };
        run->on_key(&rep, s, run->arg);
        run->busy--;
    }
    if (!mine)
        return;
    free(k);
    if (run->cancelled) { /* by on_key */
        if (run->inflight == 0)
            run_free(run);
        return;
    }
    launch(run);
}

static void pace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_refresh_run *run = arg;
    run->pace_pending = false;
    launch(run);
}

/*
 * Start what may start now: keys up to the concurrency, one per pacing slot.
 * A key that ends at once (young enough to skip) takes no slot.  Ends the
 * run when nothing is left, and frees it then.
 */
static void launch(struct hf_refresh_run *run)
{
    int conc = run->opts.concurrency > 0 ? run->opts.concurrency : DEFAULT_CONCURRENCY;
    run->launching = true;
    while (!run->cancelled && !run->pace_pending && run->next < run->sum.total &&
           run->inflight < conc) {
        size_t i = run->next++;
        struct key_ctx *k = calloc(1, sizeof *k);
        char err[256] = "";
        hf_err e = HF_ENOMEM;
        if (k != NULL) {
            k->run = run;
            k->index = i;
            char rid[40];
            snprintf(rid, sizeof rid, "refresh-%016llx", (unsigned long long)hf_random64());
            struct hf_flow_request req = {.route = run->route,
                                          .method = "GET",
                                          .target = run->targets[i],
                                          .request_id = rid,
                                          .refresh = true,
                                          .min_age_ms = run->opts.min_age_ms};
            run->inflight++;
            e = hf_flow_start(run->loop, &req, key_done, k, err, sizeof err);
            if (e)
                run->inflight--;
        }
        if (e) {
            /* The key cannot even be asked for (a malformed path): it
             * fails, like a refresh that found no answer. */
            struct hf_flow_result res = {.error = e, .retry_after_s = -1};
            snprintf(res.detail, sizeof res.detail, "%s", err[0] ? err : hf_strerror(e));
            if (k == NULL) {
                run->sum.done++;
                run->sum.counts[HF_KEY_MISSING]++;
                continue;
            }
            run->inflight++;
            key_done(&res, k);
        }
        if (k->completed) {
            free(k); /* ended at once: skipped, or failed to start; no slot used */
            continue;
        }
        if (run->spacing_ms > 0) {
            /* From now, not from when the loop last looked at the clock. */
            event_base_update_cache_time(run->loop->base);
            struct timeval tv = {(time_t)(run->spacing_ms / 1000),
                                 (suseconds_t)(run->spacing_ms % 1000) * 1000};
            if (evtimer_add(run->pace, &tv) == 0)
                run->pace_pending = true;
        }
    }
    run->launching = false;
    if (run->cancelled) {
        if (run->inflight == 0)
            run_free(run);
        return;
    }
    if (run->sum.done == run->sum.total && !run->finished) {
        finish_run(run);
        run_free(run);
    }
}

/* The run's targets in one block: the listed keys, then the learned ones
 * the listed keys do not already cover. */
static hf_err collect(struct hf_refresh_run *run, int64_t now)
{
    const struct hf_route *r = run->route;
    const struct hf_route_config *rc = &r->cfg;
    char **learned = NULL;
    size_t nlearned = 0;
    if (run->opts.only_target != NULL) {
        size_t l = strlen(run->opts.only_target) + 1;
        if ((run->targets = malloc(sizeof(char *) + l)) == NULL)
            return HF_ENOMEM;
        run->targets[0] = (char *)(run->targets + 1);
        memcpy(run->targets[0], run->opts.only_target, l);
        run->sum.total = 1;
        return HF_OK;
    }
    if (r->state->learned != NULL) {
        hf_learn_expire(r->state->learned, now);
        if (hf_learn_targets(r->state->learned, now, &learned, &nlearned) != HF_OK)
            return HF_ENOMEM;
    }
    size_t n = rc->nrefresh_keys + nlearned, bytes = n * sizeof(char *);
    for (size_t i = 0; i < rc->nrefresh_keys; i++)
        bytes += strlen(rc->refresh_keys[i]) + 1;
    for (size_t i = 0; i < nlearned; i++)
        bytes += strlen(learned[i]) + 1;
    if ((run->targets = malloc(bytes > 0 ? bytes : 1)) == NULL) {
        free(learned);
        return HF_ENOMEM;
    }
    char *p = (char *)(run->targets + n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t =
            i < rc->nrefresh_keys ? rc->refresh_keys[i] : learned[i - rc->nrefresh_keys];
        if (i >= rc->nrefresh_keys) {
            char key[HF_CACHE_KEY_MAX];
            if (hf_cache_key("GET", rc->name, t, rc->ignore_params, rc->nignore_params, key,
                             sizeof key) != HF_OK ||
                hf_route_static_key(r, key))
                continue; /* listed already (or fetched once on a miss) */
        }
        size_t l = strlen(t) + 1;
        memcpy(p, t, l);
        run->targets[m++] = p;
        p += l;
    }
    free(learned);
    run->sum.total = m;
    return HF_OK;
}

hf_err hf_refresh_start(struct hf_flow_loop *loop, const struct hf_route *r,
                        const struct hf_refresh_options *o, hf_refresh_key_fn on_key,
                        hf_refresh_done_fn on_done, void *arg, struct hf_refresh_run **out,
                        char *errbuf, size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (!r->background) {
        snprintf(errbuf, errlen, "route %s is not in background mode", r->cfg.name);
        return HF_EINVAL;
    }
    struct hf_refresh_run *run = calloc(1, sizeof *run);
    if (run == NULL)
        return HF_ENOMEM;
    run->magic = RUN_MAGIC;
    run->loop = loop;
    run->route = r;
    run->opts = *o;
    if (o->only_target != NULL) {
        snprintf(run->only, sizeof run->only, "%s", o->only_target);
        run->opts.only_target = run->only;
    }
    run->on_key = on_key;
    run->on_done = on_done;
    run->arg = arg;
    int64_t now = hf_clock_wall_ms();
    run->sum.route = r->cfg.name;
    run->sum.trigger = o->trigger;
    run->sum.started_ms = now;
    if (r->cfg.rate_limit_count > 0 && r->cfg.rate_limit_per_ms > 0)
        run->spacing_ms =
            (r->cfg.rate_limit_per_ms + r->cfg.rate_limit_count - 1) / r->cfg.rate_limit_count;
    if (collect(run, now) != HF_OK || (run->pace = evtimer_new(loop->base, pace_cb, run)) == NULL) {
        run_free(run);
        snprintf(errbuf, errlen, "out of memory");
        return HF_ENOMEM;
    }
    struct hf_refresh_status *st = &r->state->refresh;
    atomic_fetch_add(&st->running, 1);
    if (o->only_target == NULL)
        atomic_store(&st->last_start_ms, now);
    HF_LOG(HF_LOG_INFO, "refresh_start", HF_LS("route", r->cfg.name),
           HF_LS("trigger", hf_refresh_trigger_name(o->trigger)),
           HF_LI("keys", (int64_t)run->sum.total), HF_LI("spacing_ms", run->spacing_ms),
           HF_LI("min_age_ms", o->min_age_ms));
    if (out != NULL)
        *out = run;
    launch(run); /* may end (and free) the run at once */
    return HF_OK;
}

void hf_refresh_cancel(struct hf_refresh_run **runp)
{
    struct hf_refresh_run *run = *runp;
    *runp = NULL;
    if (run == NULL || run->magic != RUN_MAGIC || run->finished || run->cancelled)
        return; /* ended (on_done is running), or cancelled already */
    run->cancelled = true;
    atomic_fetch_sub(&run->route->state->refresh.running, 1);
    if (run->pace_pending) {
        evtimer_del(run->pace);
        run->pace_pending = false;
    }
    if (run->inflight == 0 && !run->launching && run->busy == 0)
        run_free(run);
}
