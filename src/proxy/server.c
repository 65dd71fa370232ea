/*
 * holdfast serve: start-up, signals and shutdown.
 *
 * The main thread loads the configuration, builds the engine, starts one
 * worker per core (each with its own listener socket, see proxy.c), runs the
 * admin listener, and waits for signals: SIGTERM/SIGINT stop accepting, let
 * requests in progress finish (bounded) and flush the store.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <holdfast/config.h>

#include "admin/admin.h"
#include "core/clock.h"
#include "core/schedule.h"
#include "engine/plan.h"
#include "engine/scheduler.h"
#include "obs/log.h"
#include "proxy/proxy.h"
#include "proxy/proxy_impl.h"
#include "proxy/static.h"
#include "upstream/upstream.h"

#define SHUTDOWN_GRACE_MS 10000
#define MAX_WORKERS 64
#define MAX_GENERATIONS 256 /* reloads kept alive until exit (flows may still use them) */
#define SWEEP_EVERY_S 60    /* expiry (store.keep, stale windows) and size eviction */
#define MAX_DEFERRED 1024   /* prefix deletes waiting for the janitor */

struct server {
    struct event_base *base;
    struct hf_config_file *file;
    struct hf_engine *engine;               /* the current generation */
    struct hf_store *store;                 /* shared by every generation */
    struct hf_engine *old[MAX_GENERATIONS]; /* earlier ones, with their configs */
    struct hf_config_file *old_files[MAX_GENERATIONS];
    int nold;
    struct worker workers[MAX_WORKERS];
    int nworkers;
    struct hf_admin *admin;
    bool admin_started;
    const char *config_path;
    /* The janitor: sweeps the store off every loop (a SQLite sweep waits
     * for the writer thread). */
    pthread_t janitor;
    bool janitor_running;
    pthread_mutex_t janitor_mu;
    pthread_cond_t janitor_cv;
    bool stopping;
    char *deferred[MAX_DEFERRED]; /* keys and prefixes to delete, guarded by janitor_mu */
    int ndeferred;
    struct hf_scheduler *scheduler; /* background routes' refresh runs */
    struct hf_fleet *fleet;         /* the first generation's, every generation's */
    struct hf__static *statics;     /* `static:` files, read at start */
    pthread_mutex_t poll_mu;        /* the janitor's use of scheduler vs its stop */
};

/* From a worker: queue a delete of key, or of every key under it, for the
 * janitor (it waits for the SQLite writer, and a shared tier's network
 * round trip; a worker must not).  Queued with a tag: 'k' key, 'p' prefix. */
static void defer_delete(void *ctx, const char *key, bool prefix)
{
    struct server *s = ctx;
    size_t n = strlen(key);
    char *p = malloc(n + 2);
    if (p == NULL)
        return; /* out of memory: the copies stay until they expire */
    p[0] = prefix ? 'p' : 'k';
    memcpy(p + 1, key, n + 1);
    pthread_mutex_lock(&s->janitor_mu);
    if (s->ndeferred < MAX_DEFERRED) {
        s->deferred[s->ndeferred++] = p;
        p = NULL;
        pthread_cond_signal(&s->janitor_cv);
    }
    pthread_mutex_unlock(&s->janitor_mu);
    if (p != NULL)
        HF_LOG(HF_LOG_WARN, "invalidation_dropped",
               HF_LS("detail", "too many invalidations waiting; copies stay until they expire"));
    free(p);
}

/* With janitor_mu held: run the queued deletes (unlocked while working). */
static void run_deferred(struct server *s)
{
    while (s->ndeferred > 0) {
        char *p = s->deferred[--s->ndeferred];
        pthread_mutex_unlock(&s->janitor_mu);
        if (p[0] == 'p') {
            hf_store_delete_prefix(s->store, p + 1, NULL);
        } else {
            hf_store_delete(s->store, p + 1);
            if (s->fleet != NULL) /* the others drop their memory copies (and variants) */
                hf_fleet_purge(s->fleet, p + 1);
        }
        free(p);
        pthread_mutex_lock(&s->janitor_mu);
    }
}

/* The CPUs this process may run on (taskset, a container's cpuset), not
 * every CPU of the machine. */
static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/*
 * The janitor wakes for queued invalidations, every second to notice a
 * `holdfast refresh` in another process (hf_scheduler_poll_store), and
 * every SWEEP_EVERY_S to sweep the store.
 */
static void *janitor_main(void *arg)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->janitor_mu);
    int64_t sweep_at = hf_clock_mono_ms() + SWEEP_EVERY_S * 1000;
    while (!s->stopping) {
        struct timespec tick;
        clock_gettime(CLOCK_REALTIME, &tick);
        tick.tv_sec += 1;
        int rc = 0;
        while (!s->stopping && s->ndeferred == 0 && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->janitor_cv, &s->janitor_mu, &tick);
        run_deferred(s);
        if (s->stopping || rc != ETIMEDOUT)
            continue;
        pthread_mutex_unlock(&s->janitor_mu);
        pthread_mutex_lock(&s->poll_mu);
        if (s->scheduler != NULL)
            hf_scheduler_poll_store(s->scheduler);
        pthread_mutex_unlock(&s->poll_mu);
        pthread_mutex_lock(&s->janitor_mu);
        if (hf_clock_mono_ms() < sweep_at)
            continue;
        sweep_at = hf_clock_mono_ms() + SWEEP_EVERY_S * 1000;
        pthread_mutex_unlock(&s->janitor_mu);
        uint64_t removed = 0;
        int64_t t0 = hf_clock_mono_ms();
        /* the first generation's store is every generation's store */
        hf_err err = hf_store_sweep(s->store, hf_clock_wall_ms(), &removed);
        if (err)
            HF_LOG(HF_LOG_ERROR, "sweep_failed", HF_LS("error", hf_err_label(err)));
        else if (removed > 0)
            HF_LOG(HF_LOG_INFO, "sweep", HF_LI("removed", (int64_t)removed),
                   HF_LI("duration_ms", hf_clock_mono_ms() - t0));
        /* Copies evicted and expired leave free pages inside the workers'
         * heaps: give them back, so the resident size follows the memory
         * tier's bound rather than its high-water mark. */
        malloc_trim(0);
        pthread_mutex_lock(&s->janitor_mu);
    }
    run_deferred(s); /* invalidations owed before the store closes */
    pthread_mutex_unlock(&s->janitor_mu);
    return NULL;
}

/* A refresh plan near the API's limits starts, with a warning (one that
 * does not fit was refused by the config loader). */
static void plan_warnings(const struct hf_config *cfg)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct hf_route_config *r = &cfg->routes[i];
        struct hf_schedule sched;
        char msg[256];
        if (r->mode != HF_MODE_BACKGROUND || r->refresh_every == NULL ||
            hf_schedule_parse(r->refresh_every, &sched, msg, sizeof msg) != HF_OK)
            continue;
        struct hf_plan plan;
        if (hf_plan_route(r, &sched, &plan, msg, sizeof msg) == HF_PLAN_WARN)
            HF_LOG(HF_LOG_WARN, "refresh_plan", HF_LS("route", r->name), HF_LS("detail", msg));
    }
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *s = arg;
    HF_LOG(HF_LOG_INFO, "shutdown", HF_LS("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    event_base_loopexit(s->base, NULL);
}

static void configure_logs(const struct hf_config *cfg)
{
    enum hf_log_level lvl = HF_LOG_INFO;
    if (cfg->log_level != NULL)
        hf_log_level_parse(cfg->log_level, &lvl);
    enum hf_log_format fmt =
        cfg->log_format != NULL && strcmp(cfg->log_format, "text") == 0 ? HF_LOG_TEXT : HF_LOG_JSON;
    hf_log_configure(lvl, fmt, 2);
}

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * SIGHUP: load the file again.  An invalid file changes nothing (the error
 * is logged with its file:line:col); a valid one becomes a new engine
 * generation that new requests use at once, while requests in progress
 * finish on the old one.  Listeners, workers and the store stay as they
 * are: changing those takes a restart, and the log says so.
 */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct server *s = arg;
    char err[512] = "";
    struct hf_config_file *file = NULL;
    struct hf_engine *next = NULL;
    if (s->nold >= MAX_GENERATIONS) {
        HF_LOG(HF_LOG_ERROR, "reload_failed", HF_LS("config", s->config_path),
               HF_LS("detail", "too many reloads in one run; restart holdfast"));
        return;
    }
    if (hf_config_load(s->config_path, &file, err, sizeof err) != HF_OK) {
        HF_LOG(HF_LOG_ERROR, "reload_failed", HF_LS("config", s->config_path),
               HF_LS("detail", err));
        return;
    }
    const struct hf_config *old = hf_config_file_config(s->file);
    const struct hf_config *cfg = hf_config_file_config(file);
    if (!same(old->listen, cfg->listen) || !same(old->admin, cfg->admin) ||
        !same(old->store, cfg->store) || !same(old->store_redis, cfg->store_redis) ||
        !same(old->store_memcached, cfg->store_memcached) || old->workers != cfg->workers ||
        !same(old->static_dir, cfg->static_dir) || old->memory_bytes != cfg->memory_bytes ||
        old->max_size_bytes != cfg->max_size_bytes)
        HF_LOG(HF_LOG_WARN, "reload_partial", HF_LS("config", s->config_path),
               HF_LS("detail", "listen, admin, workers, static and store settings take a "
                               "restart; the rest is applied"));
    if (hf_engine_reload(cfg, s->engine, &next, err, sizeof err) == HF_OK) {
        next->defer_delete = defer_delete;
        next->defer_ctx = s;
    } else {
        HF_LOG(HF_LOG_ERROR, "reload_failed", HF_LS("config", s->config_path),
               HF_LS("detail", err));
        hf_config_file_free(&file);
        return;
    }
    configure_logs(cfg);
    for (int i = 0; i < s->nworkers; i++)
        hf__worker_switch(&s->workers[i], next);
    if (s->admin != NULL)
        hf_admin_set_engine(s->admin, next);
    if (s->scheduler != NULL)
        hf_scheduler_switch(s->scheduler, next);
    s->old[s->nold] = s->engine;
    s->old_files[s->nold++] = s->file;
    s->engine = next;
    s->file = file;
    HF_LOG(HF_LOG_INFO, "reload", HF_LS("config", s->config_path),
           HF_LI("routes", (int64_t)cfg->nroutes));
}

int hf_proxy_main(const char *config_path)
{
    struct server s = {.config_path = config_path, .poll_mu = PTHREAD_MUTEX_INITIALIZER};
    char err[512] = "";
    int rc = 1;
    for (int i = 0; i < MAX_WORKERS; i++)
        s.workers[i].fd = -1;
    struct event *ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
    const struct hf_config *cfg = NULL;

    if (hf_config_load(config_path, &s.file, err, sizeof err) != HF_OK) {
        fprintf(stderr, "holdfast serve: %s\n", err);
        return 1;
    }
    cfg = hf_config_file_config(s.file);
    configure_logs(cfg);
    if (cfg->static_dir != NULL && hf__static_load(cfg->static_dir, &s.statics, err, sizeof err)) {
        fprintf(stderr, "holdfast serve: %s\n", err);
        hf_config_file_free(&s.file);
        return 1;
    }
    if (s.statics != NULL)
        HF_LOG(HF_LOG_INFO, "static_files", HF_LS("dir", cfg->static_dir),
               HF_LI("files", (int64_t)hf__static_count(s.statics)));
    signal(SIGPIPE, SIG_IGN);
    if (hf_upstream_global_init() != HF_OK) {
        fprintf(stderr, "holdfast serve: cannot initialise libcurl\n");
        goto out;
    }
    if (hf_engine_create(cfg, &s.engine, err, sizeof err) != HF_OK) {
        fprintf(stderr, "holdfast serve: %s\n", err);
        goto out;
    }
    s.store = s.engine->store;
    s.fleet = s.engine->fleet;
    s.engine->defer_delete = defer_delete;
    s.engine->defer_ctx = &s;
    plan_warnings(cfg);
    if (hf_scheduler_start(s.engine, &s.scheduler, err, sizeof err) != HF_OK) {
        fprintf(stderr, "holdfast serve: %s\n", err);
        goto out;
    }
    pthread_mutex_init(&s.janitor_mu, NULL);
    pthread_cond_init(&s.janitor_cv, NULL);
    if (pthread_create(&s.janitor, NULL, janitor_main, &s) == 0)
        s.janitor_running = true;
    if ((s.base = event_base_new()) == NULL)
        goto out;
    /* Two loops per core by default: where holdfast shares its cores (with
     * the application beside it, or a load generator), a loop preempted for
     * a time slice stalls half as many connections; make bench measured p99
     * of hits at 64 connections going from ~3.5 ms to ~2 ms for the same
     * throughput on two cores. */
    int n = cfg->workers > 0 ? cfg->workers : 2 * usable_cpus();
    if (n < 1)
        n = 1;
    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    const char *listen_addr = cfg->listen ? cfg->listen : "127.0.0.1:8080";
    int fds[MAX_WORKERS];
    char bound[300];
    int got = hf__listen_all(listen_addr, fds, n, bound, sizeof bound, err, sizeof err);
    if (got < n) {
        for (int i = 0; i < got; i++)
            close(fds[i]);
        fprintf(stderr, "holdfast serve: %s\n", err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        s.workers[i].id = i;
        s.workers[i].statics = s.statics;
        s.nworkers = i + 1;
        if (hf__worker_start(&s.workers[i], s.engine, fds[i], err, sizeof err) != HF_OK) {
            for (int j = i + 1; j < n; j++)
                close(fds[j]);
            fprintf(stderr, "holdfast serve: %s\n", err);
            goto out;
        }
    }
    listen_addr = bound;
    const char *admin_addr = cfg->admin ? cfg->admin : "127.0.0.1:8081";
    if (hf_admin_start(s.base, s.engine, admin_addr, cfg->degraded_after_ms, &s.admin, err,
                       sizeof err) != HF_OK) {
        fprintf(stderr, "holdfast serve: %s\n", err);
        goto out;
    }
    hf_admin_set_scheduler(s.admin, s.scheduler);
    s.admin_started = true;
    ev_term = evsignal_new(s.base, SIGTERM, on_stop, &s);
    ev_int = evsignal_new(s.base, SIGINT, on_stop, &s);
    ev_hup = evsignal_new(s.base, SIGHUP, on_hup, &s);
    if (!ev_term || !ev_int || !ev_hup || evsignal_add(ev_term, NULL) ||
        evsignal_add(ev_int, NULL) || evsignal_add(ev_hup, NULL))
        goto out;
    HF_LOG(HF_LOG_INFO, "start", HF_LS("listen", listen_addr),
           HF_LS("admin", hf_admin_address(s.admin)), HF_LI("workers", n),
           HF_LI("routes", (int64_t)cfg->nroutes), HF_LS("version", HF_VERSION_STRING));
    event_base_dispatch(s.base);
    rc = 0;
out:
    /* The scheduler first: its runs are abandoned (copies stay as they
     * were) and its learned keys written while the store is open. */
    pthread_mutex_lock(&s.poll_mu);
    struct hf_scheduler *sched = s.scheduler;
    s.scheduler = NULL; /* the janitor no longer polls it */
    pthread_mutex_unlock(&s.poll_mu);
    hf_scheduler_stop(&sched);
    for (int i = 0; i < s.nworkers; i++)
        hf__worker_stop(&s.workers[i], SHUTDOWN_GRACE_MS);
    if (s.janitor_running) {
        pthread_mutex_lock(&s.janitor_mu);
        s.stopping = true;
        pthread_cond_signal(&s.janitor_cv);
        pthread_mutex_unlock(&s.janitor_mu);
        pthread_join(s.janitor, NULL);
        pthread_mutex_destroy(&s.janitor_mu);
        pthread_cond_destroy(&s.janitor_cv);
    }
    hf_admin_stop(&s.admin);
    for (int i = 0; i < s.nworkers; i++)
        hf__worker_fini(&s.workers[i]);
    if (ev_term)
        event_free(ev_term);
    if (ev_int)
        event_free(ev_int);
    if (ev_hup)
        event_free(ev_hup);
    /* Unix sockets: leave no file behind for the next start to trip over. */
    if (cfg != NULL && cfg->listen != NULL && strncmp(cfg->listen, "unix:", 5) == 0 &&
        s.nworkers > 0)
        unlink(cfg->listen + 5);
    if (cfg != NULL && cfg->admin != NULL && strncmp(cfg->admin, "unix:", 5) == 0 &&
        s.admin_started)
        unlink(cfg->admin + 5);
    /* Newest first: the first generation owns the store and closes it. */
    hf_engine_destroy(&s.engine);
    while (s.nold > 0) {
        s.nold--;
        hf_engine_destroy(&s.old[s.nold]);
        hf_config_file_free(&s.old_files[s.nold]);
    }
    if (s.base != NULL)
        event_base_free(s.base);
    hf_config_file_free(&s.file);
    hf__static_free(&s.statics);
    if (rc == 0)
        HF_LOG(HF_LOG_INFO, "stopped", HF_LS("config", config_path));
    return rc;
}
