/*
 * holdfast sim: simulated APIs with faults on command (src/sim/sim.h), and
 * holdfast demo: the simulator, holdfast serve with the dashboard's
 * configuration, and the dashboard, in one process.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <holdfast/holdfast.h>

#include "cli/cli.h"
#include "core/units.h"
#include "obs/log.h"
#include "sim/sim.h"

#define SIM_USAGE                                                                                  \
    "usage: holdfast sim [--listen HOST:PORT|unix:PATH] [--seed N] [--quiet]\n"                    \
    "                    [--rate API=COUNT/PERIOD]... [--quota API=COUNT/PERIOD]...\n"             \
    "                    [--key API=SECRET]...\n"                                                  \
    "\n"                                                                                           \
    "Simulated REST APIs for testing an application against failures:\n"                           \
    "  GET  /news/latest?country=us  /quotes/{TICKER}  /fx/latest?base=USD\n"                      \
    "  POST /_sim/faults  {\"api\":\"news|quotes|fx|*\",\n"                                        \
    "                      \"mode\":\"ok|503|429|timeout|reset|slow|garbage\",\n"                  \
    "                      \"for\":\"60s\", \"delay\":\"2s\"}     (for, delay optional)\n"         \
    "  GET  /_sim/faults  GET /_sim/stats  POST /_sim/reset\n"                                     \
    "\n"                                                                                           \
    "  --listen ADDR    where to listen (default 127.0.0.1:9090; port 0: a free one,\n"            \
    "                   printed on stdout as \"holdfast sim: listening on ADDR\")\n"               \
    "  --seed N         the data's seed (default 1): one seed, one clock, one answer\n"            \
    "  --rate API=R     the API's rate limit, e.g. news=30/1m (default 600/1m)\n"                  \
    "  --quota API=Q    a quota per window aligned to the epoch, e.g. fx=100/1d (default none)\n"  \
    "  --key API=KEY    require the header X-Api-Key: KEY (else 401)\n"                            \
    "  --quiet          no JSON log line per request on stderr\n"                                  \
    "API is news, quotes or fx.  The /_sim/ endpoints have no authentication: keep the\n"          \
    "listener on loopback.  SIGINT or SIGTERM stops it (exit 0).\n"

/* "news=30/1m" into o->limits, "news=SECRET" into o->keys. */
static bool parse_api_arg(const char *arg, int what, struct hf_sim_options *o)
{
    const char *eq = strchr(arg, '=');
    char api[16];
    if (eq == NULL || (size_t)(eq - arg) >= sizeof api)
        return false;
    memcpy(api, arg, (size_t)(eq - arg));
    api[eq - arg] = '\0';
    int i = hf_sim_api_index(api);
    int64_t count, per;
    if (i < 0)
        return false;
    if (what == 'k') {
        o->keys[i] = eq + 1;
        return eq[1] != '\0';
    }
    if (hf_rate_parse(eq + 1, &count, &per) != HF_OK || count <= 0)
        return false;
    if (what == 'Q') {
        o->limits[i].quota_count = count;
        o->limits[i].quota_per_ms = per;
    } else {
        o->limits[i].rate_count = count;
        o->limits[i].rate_per_ms = per;
    }
    return true;
}

/* Block the stop signals in every thread made from now on; sigwait takes them. */
static void block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

int hf_cmd_sim(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'}, {"seed", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},        {"rate", required_argument, NULL, 'r'},
        {"quota", required_argument, NULL, 'Q'},  {"key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct hf_sim_options o = {.listen = "127.0.0.1:9090", .seed = 1};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":l:s:qh", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'l':
            o.listen = optarg;
            break;
        case 's':
            o.seed = strtoull(optarg, &end, 10);
            if (*end != '\0' || optarg[0] == '\0') {
                fprintf(stderr, "holdfast sim: --seed expects a number\n");
                return HF_EXIT_USAGE;
            }
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'r':
        case 'Q':
        case 'k':
            if (!parse_api_arg(optarg, c, &o)) {
                fprintf(stderr, "holdfast sim: %s expects %s (API: news, quotes or fx)\n",
                        c == 'Q'   ? "--quota"
                        : c == 'r' ? "--rate"
                                   : "--key",
                        c == 'k' ? "API=KEY, e.g. news=SECRET"
                                 : "API=COUNT/PERIOD, e.g. news=30/1m");
                return HF_EXIT_USAGE;
            }
            break;
        case 'h':
            printf(SIM_USAGE);
            return HF_EXIT_OK;
        default:
            fprintf(stderr, "holdfast sim: bad option \"%s\"\n%s", argv[optind - 1], SIM_USAGE);
            return HF_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "holdfast sim: unexpected argument \"%s\"\n", argv[optind]);
        return HF_EXIT_USAGE;
    }
    /* one JSON line per request on stderr; --quiet keeps warnings only */
    hf_log_configure(o.quiet ? HF_LOG_WARN : HF_LOG_INFO, HF_LOG_JSON, 2);
    sigset_t set;
    block_stop_signals(&set);
    struct hf_sim *sim = NULL;
    char err[512];
    if (hf_sim_start(&o, &sim, err, sizeof err) != HF_OK) {
        fprintf(stderr, "holdfast sim: %s\n", err);
        return HF_EXIT_USAGE;
    }
    printf("holdfast sim: listening on %s\n", hf_sim_address(sim));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    hf_sim_stop(&sim);
    return HF_EXIT_OK;
}

#define DEMO_USAGE                                                                                 \
    "usage: holdfast demo [-c FILE] [--sim HOST:PORT]\n"                                           \
    "\n"                                                                                           \
    "Runs the simulated APIs (default on 127.0.0.1:9090) and holdfast serve with the\n"            \
    "dashboard's configuration (default examples/dashboard/holdfast.yaml): the dashboard\n"        \
    "is at http://127.0.0.1:8080/, the status page at http://127.0.0.1:8081/status (the\n"         \
    "configuration's listen and admin).  --sim must be where the configuration's\n"                \
    "upstreams point.  Ctrl-C stops everything.\n"

int hf_cmd_demo(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"sim", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "examples/dashboard/holdfast.yaml";
    const char *sim_listen = "127.0.0.1:9090";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 's':
            sim_listen = optarg;
            break;
        case 'h':
            printf(DEMO_USAGE);
            return HF_EXIT_OK;
        default:
            fprintf(stderr, "holdfast demo: bad option \"%s\"\n%s", argv[optind - 1], DEMO_USAGE);
            return HF_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "holdfast demo: unexpected argument \"%s\"\n%s", argv[optind], DEMO_USAGE);
        return HF_EXIT_USAGE;
    }
    if (access(config, R_OK) != 0) {
        fprintf(stderr,
                "holdfast demo: cannot read %s (run it from holdfast's source directory, "
                "or give -c FILE)\n",
                config);
        return HF_EXIT_USAGE;
    }
    /* Read the configuration first: a broken one is named before anything
     * starts, and the URLs printed are the ones it listens on. */
    struct hf_config_file *file = NULL;
    char err[512];
    if (hf_config_load(config, &file, err, sizeof err) != HF_OK) {
        fprintf(stderr, "%s\n", err);
        return HF_EXIT_USAGE;
    }
    const struct hf_config *co = hf_config_file_config(file);
    char dashboard[160], admin[160];
    snprintf(dashboard, sizeof dashboard, "http://%s/", co->listen);
    if (co->admin != NULL && co->admin[0] != '\0')
        snprintf(admin, sizeof admin, "http://%s/status", co->admin);
    else
        snprintf(admin, sizeof admin, "(no admin listener in %s)", config);
    hf_config_file_free(&file);

    /* The simulator's thread never takes the stop signals: serve does. */
    sigset_t set;
    block_stop_signals(&set);
    struct hf_sim_options o = {.listen = sim_listen, .seed = 1, .quiet = true};
    struct hf_sim *sim = NULL;
    hf_err e = hf_sim_start(&o, &sim, err, sizeof err);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    if (e != HF_OK) {
        fprintf(stderr, "holdfast demo: the simulated APIs: %s\n", err);
        return HF_EXIT_USAGE;
    }
    fprintf(stderr,
            "holdfast demo: simulated APIs on http://%s/\n"
            "holdfast demo: dashboard    %s\n"
            "holdfast demo: status page  %s\n"
            "holdfast demo: Ctrl-C to stop\n",
            hf_sim_address(sim), dashboard, admin);
    char *serve_argv[] = {"serve", "-c", (char *)config, NULL};
    int rc = hf_cmd_serve(3, serve_argv);
    hf_sim_stop(&sim);
    return rc;
}
