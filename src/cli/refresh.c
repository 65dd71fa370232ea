/*
 * holdfast refresh -c FILE [--route NAME] [--json] [--if-older-than DUR]:
 * one refresh run of every background route (or one), then exit: for cron,
 * a systemd timer or a Kubernetes CronJob.  It shares the store with a
 * `holdfast serve` that may be running; serve notices the new copies within
 * a second.
 *
 * Exit status: 0 every key refreshed, revalidated or skipped; 4 some failed
 * and kept their stale copies; 3 some have no copy at all; 1 usage or
 * configuration error.
 */
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <holdfast/config.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/units.h"
#include "engine/engine.h"
#include "engine/refresh.h"
#include "obs/log.h"
#include "upstream/upstream.h"

#define HF_EXIT_STALE 4

struct progress {
    bool tty;  /* draw a bar on stderr */
    bool json; /* collect every key for the document */
    size_t total, done, failed;
    size_t running; /* runs not ended */
    size_t not_started;
    const struct hf_engine *engine;
    size_t *totals; /* keys in each route's run, by route index, once known */
    size_t counts[HF__KEY_MAX];
    struct event_base *base;
    json_t *routes; /* --json: one object per route */
    int64_t started_ms;
};

static void draw(const struct progress *p, const char *route)
{
    if (!p->tty)
        return;
    enum { WIDTH = 30 };
    size_t fill = p->total > 0 ? p->done * WIDTH / p->total : WIDTH;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r\033[K[%s] %zu/%zu keys, %zu failed  %s", bar, p->done, p->total, p->failed,
            route ? route : "");
    fflush(stderr);
}

static json_t *route_object(struct progress *p, const char *route)
{
    json_t *o = json_object_get(p->routes, route);
    if (o == NULL) {
        o = json_object();
        json_object_set_new(o, "keys", json_array());
        json_object_set_new(p->routes, route, o);
    }
    return o;
}

static void on_key(const struct hf_refresh_key_report *k, const struct hf_refresh_summary *s,
                   void *arg)
{
    struct progress *p = arg;
    const struct hf_route *r = hf_engine_route(p->engine, s->route);
    if (r != NULL && p->totals[r->index] != s->total) {
        p->total += s->total - p->totals[r->index];
        p->totals[r->index] = s->total;
    }
    p->done++;
    p->counts[k->result]++;
    bool bad = k->result == HF_KEY_STALE || k->result == HF_KEY_MISSING;
    p->failed += bad;
    if (bad) {
        if (p->tty)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "holdfast refresh: %s %s: %s (%s%s%s)%s\n", s->route, k->target,
                k->result == HF_KEY_STALE ? "failed, the stale copy is kept"
                                          : "failed, and there is no copy",
                hf_err_label(k->error), k->detail && k->detail[0] ? ": " : "",
                k->detail ? k->detail : "", "");
    }
    if (p->json) {
        json_t *o = json_pack("{s:s,s:s,s:i,s:i}", "key", k->target, "result",
                              hf_metric_label_value(HF_ML_KEY_RESULT, k->result), "status",
                              k->status, "attempts", k->attempts);
        json_object_set_new(o, "age_s", k->age_s >= 0 ? json_integer(k->age_s) : json_null());
        if (bad) {
            json_object_set_new(o, "error", json_string(hf_err_label(k->error)));
            json_object_set_new(o, "detail", json_string(k->detail ? k->detail : ""));
        }
        json_array_append_new(json_object_get(route_object(p, s->route), "keys"), o);
    }
    draw(p, s->route);
}

static void on_done(const struct hf_refresh_summary *s, void *arg)
{
    struct progress *p = arg;
    if (p->json) {
        json_t *o = route_object(p, s->route);
        json_object_set_new(o, "result",
                            json_string(hf_metric_label_value(HF_ML_RUN_RESULT, s->result)));
        json_object_set_new(o, "duration_ms", json_integer(s->ended_ms - s->started_ms));
        json_t *c = json_object();
        for (size_t i = 0; i < HF__KEY_MAX; i++)
            json_object_set_new(c, hf_metric_label_value(HF_ML_KEY_RESULT, i),
                                json_integer((json_int_t)s->counts[i]));
        json_object_set_new(o, "counts", c);
    }
    if (--p->running == 0)
        event_base_loopexit(p->base, NULL);
}

static int usage(FILE *out, int rc)
{
    fprintf(out, "usage: holdfast refresh -c FILE [--route NAME] [--json] "
                 "[--if-older-than DURATION]\n"
                 "\n"
                 "Refresh every key of the background routes once, then exit.\n"
                 "  -c, --config FILE        the configuration (holdfast.yaml)\n"
                 "  -r, --route NAME         only this route\n"
                 "      --json               a JSON summary on stdout\n"
                 "      --if-older-than DUR  skip keys whose copy is younger (e.g. 1h)\n"
                 "\n"
                 "exit status: 0 all refreshed (or skipped), 4 some failed and kept stale\n"
                 "copies, 3 some have no copy at all, 1 usage or configuration error\n");
    return rc;
}

int hf_cmd_refresh(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"route", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},         {"if-older-than", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *only = NULL;
    bool json = false;
    int64_t min_age_ms = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'r':
            only = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'o':
            if (hf_duration_parse(optarg, false, &min_age_ms) != HF_OK) {
                fprintf(stderr,
                        "holdfast refresh: --if-older-than: \"%s\" is not a duration "
                        "(e.g. 30m, 1h)\n",
                        optarg);
                return HF_EXIT_USAGE;
            }
            break;
        case 'h':
            return usage(stdout, HF_EXIT_OK);
        default:
            fprintf(stderr, "holdfast refresh: bad option \"%s\"\n", argv[optind - 1]);
            return usage(stderr, HF_EXIT_USAGE);
        }
    }
    if (path == NULL || optind < argc)
        return usage(stderr, HF_EXIT_USAGE);

    int rc = HF_EXIT_USAGE;
    char err[512] = "";
    struct hf_config_file *file = NULL;
    struct hf_engine *engine = NULL;
    struct hf_flow_loop loop = {0};
    struct progress p = {.json = json, .tty = !json && isatty(2)};
    if (hf_config_load(path, &file, err, sizeof err) != HF_OK) {
        fprintf(stderr, "%s\n", err);
        return HF_EXIT_USAGE;
    }
    const struct hf_config *cfg = hf_config_file_config(file);
    /* Logs are for serve; here the summary speaks, and problems go to
     * stderr in plain words.  Errors are still logged. */
    hf_log_configure(HF_LOG_ERROR, HF_LOG_JSON, 2);
    if (hf_upstream_global_init() != HF_OK) {
        fprintf(stderr, "holdfast refresh: cannot initialise libcurl\n");
        goto out;
    }
    if (hf_engine_create(cfg, &engine, err, sizeof err) != HF_OK) {
        fprintf(stderr, "holdfast refresh: %s\n", err);
        goto out;
    }
    size_t nbg = 0;
    for (size_t i = 0; i < engine->nroutes; i++)
        nbg += engine->routes[i].background &&
               (only == NULL || strcmp(only, engine->routes[i].cfg.name) == 0);
    if (only != NULL && hf_engine_route(engine, only) == NULL) {
        fprintf(stderr, "holdfast refresh: %s has no route \"%s\"\n", path, only);
        goto out;
    }
    if (nbg == 0) {
        fprintf(stderr, "holdfast refresh: %s\n",
                only ? "that route is not in background mode (mode: background)"
                     : "no route is in background mode (mode: background): nothing to refresh");
        goto out;
    }
    if (!engine->persistent)
        fprintf(stderr,
                "holdfast refresh: warning: %s has no store.path: the copies "
                "refreshed now are lost when this command exits\n",
                path);
    if ((loop.base = event_base_new()) == NULL ||
        hf_upstream_create(loop.base, &loop.upstream) != HF_OK) {
        fprintf(stderr, "holdfast refresh: out of memory\n");
        goto out;
    }
    loop.engine = engine;
    p.engine = engine;
    if ((p.totals = calloc(engine->nroutes, sizeof *p.totals)) == NULL)
        goto out;
    p.base = loop.base;
    p.routes = json_object();
    p.started_ms = hf_clock_wall_ms();
    /* Every route's run at once, each at its own pace. */
    p.running = nbg;
    for (size_t i = 0; i < engine->nroutes; i++) {
        const struct hf_route *r = &engine->routes[i];
        if (!r->background || (only != NULL && strcmp(only, r->cfg.name) != 0))
            continue;
        struct hf_refresh_options o = {
            .trigger = HF_REFRESH_CLI, .min_age_ms = min_age_ms, .announce = true};
        p.totals[i] = r->cfg.nrefresh_keys; /* learned keys join when the run reports */
        p.total += p.totals[i];
        if (hf_refresh_start(&loop, r, &o, on_key, on_done, &p, NULL, err, sizeof err) != HF_OK) {
            fprintf(stderr, "holdfast refresh: %s: %s\n", r->cfg.name, err);
            p.running--;
            p.not_started++;
        }
    }
    draw(&p, NULL);
    if (p.running > 0)
        event_base_dispatch(loop.base);
    if (p.tty)
        fprintf(stderr, "\r\033[K");
    rc = p.not_started > 0              ? HF_EXIT_USAGE
         : p.counts[HF_KEY_MISSING] > 0 ? HF_EXIT_NO_DATA
         : p.counts[HF_KEY_STALE] > 0   ? HF_EXIT_STALE
                                        : HF_EXIT_OK;
    int64_t took = hf_clock_wall_ms() - p.started_ms;
    char dur[64];
    /* a person reads "8m12s"; below 10 s the ms say something */
    hf_duration_span(took >= 10000 ? took - took % 1000 : took, dur, sizeof dur);
    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "result",
                            json_string(rc == HF_EXIT_OK      ? "ok"
                                        : rc == HF_EXIT_STALE ? "degraded"
                                                              : "failed"));
        json_object_set_new(doc, "exit", json_integer(rc));
        json_object_set_new(doc, "duration_ms", json_integer(took));
        json_t *cnt = json_object();
        for (size_t i = 0; i < HF__KEY_MAX; i++)
            json_object_set_new(cnt, hf_metric_label_value(HF_ML_KEY_RESULT, i),
                                json_integer((json_int_t)p.counts[i]));
        json_object_set_new(doc, "counts", cnt);
        json_object_set_new(doc, "routes", p.routes);
        p.routes = NULL;
        char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    } else {
        printf("refresh: %zu key%s in %s: %zu refreshed, %zu not modified, %zu skipped, %zu "
               "stale, %zu missing\n",
               p.done, p.done == 1 ? "" : "s", dur, p.counts[HF_KEY_REFRESHED],
               p.counts[HF_KEY_NOT_MODIFIED], p.counts[HF_KEY_SKIPPED], p.counts[HF_KEY_STALE],
               p.counts[HF_KEY_MISSING]);
    }
    fflush(stdout);
out:
    json_decref(p.routes);
    free(p.totals);
    hf_upstream_destroy(&loop.upstream);
    hf_engine_destroy(&engine); /* flushes the store: the copies are on disk when we exit */
    if (loop.base != NULL)
        event_base_free(loop.base);
    hf_config_file_free(&file);
    return rc;
}
