/*
 * The refresh scheduler (scheduler.h).  Its thread owns a loop, an API
 * client and the per-route timers; other threads talk to it through a small
 * queue guarded by a mutex and an event they activate.
 */
#include "engine/scheduler.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store_impl.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "engine/learn.h"
#include "engine/refresh.h"
#include "obs/log.h"
#include "upstream/upstream.h"

#define MAX_TRIGGERS 64
#define PERSIST_EVERY_MS 5000 /* learned keys, when they changed */
#define TARGET_MAX 2048

struct trigger {
    char route[72];
    char target[TARGET_MAX + 1]; /* "" for every key */
};

/* A background route of the current generation. */
struct slot {
    struct hf_scheduler *s;
    const struct hf_route *route;
    struct event *timer;
    struct hf_refresh_run *run; /* the run in progress, or NULL */
    /* In a fleet: the claim of a slot asked of Redis, and the run it is for. */
    struct hf_fleet_job *claim;
    enum hf_refresh_trigger claim_trigger;
    int64_t claim_min_age_ms;
};

struct hf_scheduler {
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct hf_flow_loop loop;
    struct event *wake;    /* another thread queued something */
    struct event *persist; /* write the learned keys */

    pthread_mutex_t mu; /* guards the queue below */
    struct trigger queue[MAX_TRIGGERS];
    size_t nqueue;
    struct hf_engine *next_engine; /* a reload waiting to be applied */
    bool stopping;

    /* the loop thread's own */
    struct slot *slots;
    size_t nslots;

    /* the janitor's own: the stamps another process left, by route */
    _Atomic(struct hf_engine *) current; /* for the janitor */
    char (*stamp_routes)[72];
    int64_t *stamps;
    size_t nstamps;
    bool polled; /* the first poll (at start) has been made */
};

static void run_done(const struct hf_refresh_summary *sum, void *arg)
{
    (void)sum;
    struct slot *sl = arg;
    sl->run = NULL;
}

static void start_run(struct slot *sl, enum hf_refresh_trigger trigger, int64_t min_age_ms,
                      const char *target)
{
    const struct hf_route *r = sl->route;
    if (sl->run != NULL) {
        HF_LOG(HF_LOG_WARN, "refresh_overlap", HF_LS("route", r->cfg.name),
               HF_LS("trigger", hf_refresh_trigger_name(trigger)),
               HF_LS("detail", "the previous run is still going; this one is skipped"));
        return;
    }
    /* In a fleet the other instances hold memory copies of what this run
     * refreshes: the stamp tells their janitors to read them again. */
    struct hf_refresh_options o = {.trigger = trigger,
                                   .min_age_ms = min_age_ms,
                                   .only_target = target,
                                   .announce = sl->s->loop.engine->fleet != NULL};
    char err[256];
    /* run_done may clear sl->run before this returns: the run ended at once. */
    if (hf_refresh_start(&sl->s->loop, r, &o, NULL, run_done, sl, &sl->run, err, sizeof err) !=
        HF_OK)
        HF_LOG(HF_LOG_ERROR, "refresh_failed", HF_LS("route", r->cfg.name), HF_LS("detail", err));
}

static void on_claim(const struct hf_fleet_answer *a, void *arg)
{
    struct slot *sl = arg;
    sl->claim = NULL;
    if (a->verdict == HF_FLEET_HELD) {
        HF_LOG(HF_LOG_INFO, "refresh_skipped", HF_LS("route", sl->route->cfg.name),
               HF_LS("trigger", hf_refresh_trigger_name(sl->claim_trigger)),
               HF_LS("detail", "another instance of the fleet runs this slot"));
        return;
    }
    /* ours, or Redis is away: then every instance runs it, within its
     * share of the limits */
    start_run(sl, sl->claim_trigger, sl->claim_min_age_ms, NULL);
}

/*
 * A scheduled run (a slot starting at slot_ms, or -1: the warm start): in
 * a fleet, only the instance that claims it runs it.  A slot's claim lasts
 * its gap, so it is gone by the next one.
 */
static void claim_run(struct slot *sl, enum hf_refresh_trigger trigger, int64_t min_age_ms,
                      int64_t slot_ms, int64_t gap_ms)
{
    struct hf_fleet *fleet = sl->s->loop.engine->fleet;
    if (fleet == NULL || !hf_fleet_up(fleet)) {
        start_run(sl, trigger, min_age_ms, NULL);
        return;
    }
    if (sl->claim != NULL)
        return; /* the previous claim is still unanswered: Redis is slow */
    sl->claim_trigger = trigger;
    sl->claim_min_age_ms = min_age_ms;
    if (hf_fleet_claim(fleet, sl->s->base, sl->route->cfg.name, slot_ms,
                       gap_ms > 1000 ? gap_ms : 1000, on_claim, sl, &sl->claim) != HF_OK)
        start_run(sl, trigger, min_age_ms, NULL);
}

/* The route's next slot after `after`, for the 503 of a miss and /health. */
static void plan_next(struct slot *sl, int64_t after)
{
    int64_t next = hf_schedule_next(&sl->route->schedule, after);
    atomic_store(&sl->route->state->refresh.next_run_ms, next == INT64_MAX ? 0 : next);
}

/* Wake at the next slot; a long wait is taken in steps of an hour at most,
 * so a wall clock that was set back or forward is noticed. */
static void arm(struct slot *sl, int64_t now)
{
    int64_t next = atomic_load(&sl->route->state->refresh.next_run_ms);
    if (next == 0)
        return;
    int64_t wait = next - now;
    wait = wait < 0 ? 0 : wait > 3600 * 1000 ? 3600 * 1000 : wait;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(sl->timer, &tv);
}

/*
 * The gap that ends at slot: from the slot before it.  A cron schedule's
 * gaps differ ("0 9,17 * * *": 8 h, then 16 h), so a run asks its keys
 * about the gap it closes, not the longest one.
 */
static int64_t gap_before(const struct hf_route *r, int64_t slot)
{
    int64_t prev = hf_schedule_prev(&r->schedule, slot - 1);
    return prev == INT64_MIN || prev >= slot ? r->refresh_interval_ms : slot - prev;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct slot *sl = arg;
    int64_t now = hf_clock_wall_ms();
    int64_t next = atomic_load(&sl->route->state->refresh.next_run_ms);
    if (next != 0 && now + 5 >= next) {
        /* Copies a recent run (or another process) refreshed are left
         * alone: younger than half the gap this slot closes, they were
         * fetched since the previous slot, late as a run may be. */
        int64_t gap = gap_before(sl->route, next);
        claim_run(sl, HF_REFRESH_SCHEDULE, gap / 2, next, gap);
        plan_next(sl, now > next ? now : next);
    }
    arm(sl, now);
}

/* The slots go, and with them their runs: a reload cancels a run in
 * progress (the new generation's warm start picks up what it left). */
static void drop_slots(struct hf_scheduler *s)
{
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->timer != NULL)
            event_free(sl->timer);
        hf_fleet_cancel(sl->claim);
        hf_refresh_cancel(&sl->run);
    }
    free(s->slots);
    s->slots = NULL;
    s->nslots = 0;
}

/* Slots for e's background routes, each starting with a warm-start run:
 * the keys whose copy is missing or older than the interval. */
static void build_slots(struct hf_scheduler *s, struct hf_engine *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nroutes; i++)
        n += e->routes[i].background;
    s->loop.engine = e;
    atomic_store(&s->current, e);
    if (n == 0 || (s->slots = calloc(n, sizeof *s->slots)) == NULL)
        return;
    int64_t now = hf_clock_wall_ms();
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct hf_route *r = &e->routes[i];
        if (!r->background)
            continue;
        struct slot *sl = &s->slots[s->nslots];
        sl->s = s;
        sl->route = r;
        if ((sl->timer = evtimer_new(s->base, tick_cb, sl)) == NULL)
            continue;
        s->nslots++;
        plan_next(sl, now);
        arm(sl, now);
        /* Warm start: a copy older than the schedule's gap missed a run. */
        int64_t last = hf_schedule_prev(&r->schedule, now);
        int64_t gap = last == INT64_MIN ? r->refresh_interval_ms : gap_before(r, last);
        /* In a fleet, instances starting together warm up once; one that
         * starts later runs its own, which finds the others' copies current
         * in the shared store and fetches only what is missing. */
        int64_t hold = gap / 2 < 600000 ? gap / 2 : 600000;
        claim_run(sl, HF_REFRESH_START, gap, -1, hold);
    }
}

static void persist_learned(struct hf_scheduler *s, bool force)
{
    struct hf_engine *e = s->loop.engine;
    for (size_t i = 0; e != NULL && i < e->nroutes; i++) {
        const struct hf_route *r = &e->routes[i];
        char *doc = NULL;
        if (r->state->learned == NULL || hf_learn_dump(r->state->learned, force, &doc) != HF_OK ||
            doc == NULL)
            continue;
        char key[300];
        hf_route_learned_kv_key(r, key, sizeof key);
        if (hf_store_kv_put(e->store, key, doc) != HF_OK)
            HF_LOG(HF_LOG_WARN, "learned_keys_not_saved", HF_LS("route", r->cfg.name),
                   HF_LS("detail", "the learned keys could not be written to the store"));
        free(doc);
    }
}

static void persist_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    persist_learned(arg, false);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_scheduler *s = arg;
    struct trigger q[MAX_TRIGGERS];
    pthread_mutex_lock(&s->mu);
    size_t n = s->nqueue;
    memcpy(q, s->queue, n * sizeof q[0]);
    s->nqueue = 0;
    struct hf_engine *next = s->next_engine;
    s->next_engine = NULL;
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);

    if (stopping) {
        persist_learned(s, true);
        drop_slots(s);
        hf_flow_loop_abort(&s->loop); /* the keys in flight end, quietly */
        event_base_loopexit(s->base, NULL);
        return;
    }
    if (next != NULL) {
        persist_learned(s, true);
        drop_slots(s);
        build_slots(s, next);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < s->nslots; j++) {
            if (strcmp(s->slots[j].route->cfg.name, q[i].route) == 0)
                start_run(&s->slots[j], HF_REFRESH_ADMIN, 0, q[i].target[0] ? q[i].target : NULL);
        }
    }
}

static void *scheduler_main(void *arg)
{
    struct hf_scheduler *s = arg;
    /* Refresh flows read the file through the reader, like the workers. */
    hf__store_never_wait_on_this_thread();
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* On the loop's thread, once: the first generation's slots and warm start. */
static void first_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_scheduler *s = arg;
    build_slots(s, s->loop.engine);
}

hf_err hf_scheduler_start(struct hf_engine *e, struct hf_scheduler **out, char *errbuf,
                          size_t errlen)
{
    struct hf_scheduler *s = calloc(1, sizeof *s);
    if (s == NULL)
        return HF_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    s->loop.engine = e;
    s->loop.persistent = true;
    atomic_store(&s->current, e);
    if ((s->base = event_base_new()) == NULL ||
        hf_upstream_create(s->base, &s->loop.upstream) != HF_OK)
        goto fail;
    s->loop.base = s->base;
    if ((s->wake = event_new(s->base, -1, 0, wake_cb, s)) == NULL ||
        (s->persist = event_new(s->base, -1, EV_PERSIST, persist_cb, s)) == NULL)
        goto fail;
    struct timeval every = {PERSIST_EVERY_MS / 1000, 0};
    struct timeval now = {0, 0};
    if (event_add(s->persist, &every) != 0 ||
        event_base_once(s->base, -1, EV_TIMEOUT, first_cb, s, &now) != 0)
        goto fail;
    hf_scheduler_poll_store(s); /* the stamps as they are now: the baseline */
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0)
        goto fail;
    s->started = true;
    *out = s;
    return HF_OK;
fail:
    snprintf(errbuf, errlen, "cannot start the refresh scheduler");
    hf_scheduler_stop(&s);
    return HF_ENOMEM;
}

hf_err hf_scheduler_trigger(struct hf_scheduler *s, const char *route, const char *target)
{
    struct hf_engine *e = atomic_load(&s->current);
    const struct hf_route *r = e ? hf_engine_route(e, route) : NULL;
    if (r == NULL || !r->background)
        return HF_NOT_FOUND;
    if (target != NULL && (target[0] != '/' || strlen(target) > TARGET_MAX))
        return HF_EINVAL;
    hf_err err = HF_STORE;
    pthread_mutex_lock(&s->mu);
    if (s->nqueue < MAX_TRIGGERS) {
        struct trigger *t = &s->queue[s->nqueue++];
        snprintf(t->route, sizeof t->route, "%s", route);
        snprintf(t->target, sizeof t->target, "%s", target ? target : "");
        err = HF_OK;
    }
    pthread_mutex_unlock(&s->mu);
    if (!err)
        event_active(s->wake, EV_READ, 0);
    return err;
}

void hf_scheduler_switch(struct hf_scheduler *s, struct hf_engine *e)
{
    pthread_mutex_lock(&s->mu);
    s->next_engine = e;
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->current, e);
    event_active(s->wake, EV_READ, 0);
}

void hf_scheduler_stop(struct hf_scheduler **sp)
{
    struct hf_scheduler *s = *sp;
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_mutex_unlock(&s->mu);
        event_active(s->wake, EV_READ, 0);
        pthread_join(s->thread, NULL);
    }
    drop_slots(s);
    if (s->wake != NULL)
        event_free(s->wake);
    if (s->persist != NULL)
        event_free(s->persist);
    hf_upstream_destroy(&s->loop.upstream);
    if (s->base != NULL)
        event_base_free(s->base);
    pthread_mutex_destroy(&s->mu);
    free(s->stamp_routes);
    free(s->stamps);
    free(s);
    *sp = NULL;
}

void hf_scheduler_poll_store(struct hf_scheduler *s)
{
    struct hf_engine *e = atomic_load(&s->current);
    if (e == NULL || e->mem == NULL)
        return; /* memory only: no other process shares it */
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct hf_route *r = &e->routes[i];
        if (!r->background)
            continue;
        char key[300], val[32];
        hf_refresh_stamp_key(r->cfg.name, key, sizeof key);
        /* No stamp yet reads as 0: the first one another process leaves
         * is a change like any other. */
        int64_t stamp = 0;
        if (hf_store_kv_get(e->store, key, val, sizeof val) == HF_OK)
            stamp = strtoll(val, NULL, 10);
        size_t j = 0;
        while (j < s->nstamps && strcmp(s->stamp_routes[j], r->cfg.name) != 0)
            j++;
        if (j == s->nstamps) {
            void *a = realloc(s->stamp_routes, (j + 1) * sizeof *s->stamp_routes);
            if (a == NULL)
                return;
            s->stamp_routes = a;
            void *b = realloc(s->stamps, (j + 1) * sizeof *s->stamps);
            if (b == NULL)
                return;
            s->stamps = b;
            snprintf(s->stamp_routes[j], sizeof s->stamp_routes[j], "%s", r->cfg.name);
            /* At start, what is there is what serve reads anyway; a route
             * added by a reload starts from no stamp at all. */
            s->stamps[j] = s->polled ? 0 : stamp;
            s->nstamps++;
        }
        if (stamp == s->stamps[j])
            continue;
        s->stamps[j] = stamp;
        char prefix[200];
        snprintf(prefix, sizeof prefix, "GET %s ", r->cfg.name);
        uint64_t n = 0;
        hf_store_delete_prefix(e->mem, prefix, &n);
        HF_LOG(HF_LOG_INFO, "refresh_external", HF_LS("route", r->cfg.name),
               HF_LI("dropped", (int64_t)n),
               HF_LS("detail", "another process refreshed this route: the memory copies are "
                               "read again from the file"));
    }
    s->polled = true;
}
