/*
 * holdfast fetch URL: a `curl --retry` that also falls back to the last good
 * copy.  For scripts and cron jobs: the body goes to stdout, one plain
 * sentence to stderr when the copy is stale, and the exit status says what
 * happened (0 data, 1 usage, 2 the API refused the request, 3 no data).
 */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <holdfast/client.h>
#include <holdfast/config.h>

#include "cache/store_impl.h"
#include "cli/cli.h"
#include "core/units.h"
#include "obs/log.h"

#define FETCH_MAX_HEADERS 64

static void fetch_usage(FILE *out)
{
    fprintf(out, "usage: holdfast fetch [OPTIONS] URL\n"
                 "\n"
                 "Fetch URL, retrying timeouts, connection errors, 429 and 5xx with backoff.\n"
                 "A fresh stored copy is used without asking the API; when the API fails,\n"
                 "the last good copy is printed instead and a note goes to stderr.\n"
                 "\n"
                 "  --fresh-for DUR   serve a stored copy this young without asking (10m)\n"
                 "  --stale-for DUR   how long past fresh a copy may stand in (7d; forever)\n"
                 "  --attempts N      attempts in all, first included (3)\n"
                 "  --timeout DUR     per attempt (10s)\n"
                 "  --deadline DUR    for everything, retries included (none)\n"
                 "  --store PATH      cache file (~/.cache/holdfast/cache.db); 'none': no cache\n"
                 "  -H 'Name: value'  request header (repeatable)\n"
                 "  -X METHOD         request method (GET); POST and PATCH are retried only\n"
                 "                    with an Idempotency-Key header, and never cached\n"
                 "  -d DATA           request body\n"
                 "  -c FILE           take the policy of the config route whose upstream\n"
                 "                    URL is a prefix of URL\n"
                 "  --json            print one JSON object instead of the body\n"
                 "  -v, --verbose     log retries and fallbacks to stderr (JSON lines)\n"
                 "\n"
                 "Durations: 500ms 10s 5m 3h 7d.  Exit status: 0 data served (any source),\n"
                 "1 usage or configuration error, 2 the API answered a client error (4xx,\n"
                 "body printed), 3 no data (the API failed and there is no copy).\n");
}

static char *default_store(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char buf[PATH_MAX];
    if (xdg != NULL && xdg[0] == '/')
        snprintf(buf, sizeof buf, "%s/holdfast/cache.db", xdg);
    else if (home != NULL && home[0] != '\0')
        snprintf(buf, sizeof buf, "%s/.cache/holdfast/cache.db", home);
    else
        return NULL;
    return strdup(buf);
}

/* "45 s", "12 min", "2 h", "3 days" */
static void human_age(int64_t s, char *buf, size_t len)
{
    if (s < 60)
        snprintf(buf, len, "%lld s", (long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%lld min", (long long)(s / 60));
    else if (s < 86400 * 2)
        snprintf(buf, len, "%lld h", (long long)(s / 3600));
    else
        snprintf(buf, len, "%lld days", (long long)(s / 86400));
}

static void failure_text(const struct hf_response *r, char *buf, size_t len)
{
    const char *plural = r->attempts == 1 ? "" : "s";
    if (r->error_status > 0)
        snprintf(buf, len, "the API failed %d attempt%s (HTTP %d)", r->attempts, plural,
                 r->error_status);
    else if (r->attempts > 0)
        snprintf(buf, len, "the API failed %d attempt%s (%s)", r->attempts, plural,
                 r->error_detail[0] ? r->error_detail : hf_strerror(r->error));
    else
        snprintf(buf, len, "%s", r->error_detail[0] ? r->error_detail : hf_strerror(r->error));
}

static bool valid_utf8(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tbl[v >> 18 & 63];
        *o++ = tbl[v >> 12 & 63];
        *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int print_json(const struct hf_response *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "source", json_string(hf_source_name(r->source)));
    json_object_set_new(o, "status", r->status ? json_integer(r->status) : json_null());
    json_object_set_new(o, "age_s", json_integer(r->age_s));
    json_object_set_new(o, "attempts", json_integer(r->attempts));
    json_object_set_new(o, "error", r->error ? json_string(hf_err_label(r->error)) : json_null());
    if (r->error) {
        json_object_set_new(o, "error_status",
                            r->error_status ? json_integer(r->error_status) : json_null());
        json_object_set_new(o, "error_detail", json_string(r->error_detail));
    }
    if (r->source != HF_SOURCE_NONE)
        json_object_set_new(o, "stored_at", json_integer(r->stored_at_ms / 1000));
    if (r->source == HF_SOURCE_NONE) {
        json_object_set_new(o, "body", json_null());
    } else if (valid_utf8(r->body, r->body_len)) {
        json_object_set_new(o, "body", json_stringn(r->body, r->body_len));
    } else {
        char *b = base64((const unsigned char *)r->body, r->body_len);
        json_object_set_new(o, "body", json_null());
        json_object_set_new(o, "body_base64", b ? json_string(b) : json_null());
        free(b);
    }
    int rc = json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    fputc('\n', stdout);
    return rc == 0 ? 0 : -1;
}

struct fetch_opts {
    const char *url;
    const char *config;
    const char *store;
    const char *method;
    const char *data;
    bool json;
    bool verbose;
    struct hf_header headers[FETCH_MAX_HEADERS];
    char *header_bufs[FETCH_MAX_HEADERS];
    size_t nheaders;
    int64_t fresh_for_ms, stale_for_ms, timeout_ms, deadline_ms;
    int attempts;
};

static int bad_usage(const char *fmt, const char *arg)
{
    fputs("holdfast fetch: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(holdfast fetch --help lists the options)\n", stderr);
    return HF_EXIT_USAGE;
}

static int parse_duration_opt(const char *name, const char *v, bool forever, int64_t *out)
{
    if (hf_duration_parse(v, forever, out) != HF_OK) {
        fprintf(stderr,
                "holdfast fetch: %s: invalid duration \"%s\" (expected e.g. 500ms, 10s, 5m, "
                "3h, 7d%s)\n",
                name, v, forever ? " or forever" : "");
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct fetch_opts *o)
{
    enum { O_FRESH = 256, O_STALE, O_ATTEMPTS, O_TIMEOUT, O_DEADLINE, O_STORE, O_JSON };
    static const struct option longopts[] = {
        {"fresh-for", required_argument, NULL, O_FRESH},
        {"stale-for", required_argument, NULL, O_STALE},
        {"attempts", required_argument, NULL, O_ATTEMPTS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"deadline", required_argument, NULL, O_DEADLINE},
        {"store", required_argument, NULL, O_STORE},
        {"header", required_argument, NULL, 'H'},
        {"config", required_argument, NULL, 'c'},
        {"request", required_argument, NULL, 'X'},
        {"data", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, O_JSON},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":H:c:X:d:vh", longopts, NULL)) != -1) {
        switch (c) {
        case O_FRESH:
            if (parse_duration_opt("--fresh-for", optarg, false, &o->fresh_for_ms))
                return HF_EXIT_USAGE;
            break;
        case O_STALE:
            if (parse_duration_opt("--stale-for", optarg, true, &o->stale_for_ms))
                return HF_EXIT_USAGE;
            break;
        case O_TIMEOUT:
            if (parse_duration_opt("--timeout", optarg, false, &o->timeout_ms))
                return HF_EXIT_USAGE;
            if (o->timeout_ms <= 0)
                return bad_usage("--timeout: must be more than 0, not \"%s\"", optarg);
            break;
        case O_DEADLINE:
            if (parse_duration_opt("--deadline", optarg, false, &o->deadline_ms))
                return HF_EXIT_USAGE;
            break;
        case O_ATTEMPTS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || n < 1 || n > 100)
                return bad_usage("--attempts: expected a number from 1 to 100, not \"%s\"", optarg);
            o->attempts = (int)n;
            break;
        }
        case O_STORE:
            o->store = optarg;
            break;
        case 'H': {
            if (o->nheaders >= FETCH_MAX_HEADERS)
                return bad_usage("too many -H options (at most 64)%s", "");
            const char *colon = strchr(optarg, ':');
            if (colon == NULL || colon == optarg)
                return bad_usage("-H: expected 'Name: value', not \"%s\"", optarg);
            char *copy = strdup(optarg);
            if (copy == NULL)
                return HF_EXIT_USAGE;
            o->header_bufs[o->nheaders] = copy;
            copy[colon - optarg] = '\0';
            const char *value = copy + (colon - optarg) + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            o->headers[o->nheaders++] = (struct hf_header){copy, value};
            break;
        }
        case 'c':
            o->config = optarg;
            break;
        case 'X':
            if (optarg[0] == '\0' || strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(optarg))
                return bad_usage("-X: expected a method such as GET or POST, not \"%s\"", optarg);
            o->method = optarg;
            break;
        case 'd':
            o->data = optarg;
            break;
        case O_JSON:
            o->json = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            fetch_usage(stdout);
            return -1;
        case ':':
            return bad_usage("%s needs a value", argv[optind - 1]);
        default:
            return bad_usage("unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return bad_usage(optind >= argc ? "no URL given%s" : "one URL at a time, not \"%s\"",
                         optind >= argc ? "" : argv[optind + 1]);
    o->url = argv[optind];
    return 0;
}

/* The route of cfg whose upstream URL is the longest prefix of url. */
static const struct hf_route_config *matching_route(const struct hf_config *cfg, const char *url)
{
    const struct hf_route_config *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const char *up = cfg->routes[i].upstream;
        size_t n = up ? strlen(up) : 0;
        if (n > best_len && strncmp(url, up, n) == 0) {
            best = &cfg->routes[i];
            best_len = n;
        }
    }
    return best;
}

int hf_cmd_fetch(int argc, char **argv)
{
    struct fetch_opts o = {
        .fresh_for_ms = -2, .stale_for_ms = -2, .timeout_ms = -2, .deadline_ms = -2};
    struct hf_config_file *file = NULL;
    struct hf_client *client = NULL;
    struct hf_response resp = {0};
    char *store_path = NULL;
    char *store_url = NULL;
    char err[512] = "";
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        rc = rc < 0 ? HF_EXIT_OK : rc;
        goto out;
    }
    rc = HF_EXIT_USAGE;
    hf_log_configure(o.verbose ? HF_LOG_INFO : HF_LOG_ERROR, HF_LOG_JSON, 2);

    struct hf_config cfg;
    struct hf_route_config route;
    hf_config_default(&cfg);
    hf_route_config_default(&route);
    route.name = "fetch";
    route.upstream = o.url;
    if (o.config != NULL) {
        if (hf_config_load(o.config, &file, err, sizeof err) != HF_OK) {
            fprintf(stderr, "holdfast fetch: %s\n", err);
            goto out;
        }
        const struct hf_config *fc = hf_config_file_config(file);
        const struct hf_route_config *m = matching_route(fc, o.url);
        if (m == NULL) {
            fprintf(stderr, "holdfast fetch: %s: no route's upstream is a prefix of %s\n", o.config,
                    o.url);
            goto out;
        }
        cfg = *fc;
        route = *m;
    }
    if (o.fresh_for_ms != -2)
        route.fresh_for_ms = o.fresh_for_ms;
    if (o.stale_for_ms != -2)
        route.stale_for_ms = o.stale_for_ms;
    if (o.timeout_ms != -2)
        route.timeout_ms = o.timeout_ms;
    if (o.deadline_ms != -2)
        route.retry.deadline_ms = o.deadline_ms;
    if (o.attempts > 0)
        route.retry.attempts = o.attempts;
    cfg.routes = &route;
    cfg.nroutes = 1;

    if (o.store != NULL && strcmp(o.store, "none") == 0) {
        cfg.store = "memory:";
    } else if (o.store != NULL || o.config == NULL || cfg.store == NULL) {
        store_path = o.store ? strdup(o.store) : default_store();
        if (store_path == NULL) {
            fprintf(stderr, "holdfast fetch: no --store given and neither XDG_CACHE_HOME nor "
                            "HOME is set\n");
            goto out;
        }
        if (o.store == NULL && hf__mkdir_parents(store_path) != HF_OK) {
            fprintf(stderr, "holdfast fetch: cannot create the directory of %s\n", store_path);
            goto out;
        }
        size_t n = strlen(store_path) + 8;
        if ((store_url = malloc(n)) == NULL)
            goto out;
        snprintf(store_url, n, "sqlite:%s", store_path);
        cfg.store = store_url;
    }
    if (hf_client_create(&cfg, &client, err, sizeof err) != HF_OK) {
        fprintf(stderr, "holdfast fetch: %s\n", err[0] ? err : "cannot create the client");
        goto out;
    }

    struct hf_request req = {.url = o.url,
                             .headers = o.headers,
                             .nheaders = o.nheaders,
                             .route = route.name,
                             .method = o.method ? o.method : (o.data ? "POST" : "GET"),
                             .body = o.data,
                             .body_len = o.data ? strlen(o.data) : 0};
    hf_err e = hf_request(client, &req, &resp);
    if (e == HF_BAD_URL || e == HF_EINVAL || e == HF_NO_ROUTE) {
        fprintf(stderr, "holdfast fetch: %s\n",
                resp.error_detail[0] ? resp.error_detail : hf_strerror(e));
        goto out;
    }
    if (o.json) {
        print_json(&resp);
    } else if (resp.source != HF_SOURCE_NONE) {
        fwrite(resp.body, 1, resp.body_len, stdout);
    }
    char why[400];
    failure_text(&resp, why, sizeof why);
    if (resp.source == HF_SOURCE_STALE) {
        char age[32];
        human_age(resp.age_s, age, sizeof age);
        if (!o.json)
            fprintf(stderr, "holdfast: showing a copy from %s ago; %s\n", age, why);
        rc = HF_EXIT_OK;
    } else if (resp.source == HF_SOURCE_NONE) {
        if (!o.json)
            fprintf(stderr, "holdfast: no data: %s, and there is no stored copy\n", why);
        rc = HF_EXIT_NO_DATA;
    } else if (resp.status >= 400 && resp.status < 500) {
        if (!o.json)
            fprintf(stderr, "holdfast: the API answered HTTP %d\n", resp.status);
        rc = HF_EXIT_CLIENT_ERROR;
    } else if (resp.status >= 500) {
        if (!o.json)
            fprintf(stderr, "holdfast: the API answered HTTP %d\n", resp.status);
        rc = HF_EXIT_NO_DATA;
    } else {
        rc = HF_EXIT_OK;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "holdfast fetch: cannot write the output\n");
        rc = HF_EXIT_USAGE;
    }
out:
    hf_response_free(&resp);
    if (client != NULL)
        hf_client_sweep(client); /* keep the file within keep/max_size, run after run */
    hf_client_destroy(&client);
    hf_config_file_free(&file);
    for (size_t i = 0; i < o.nheaders; i++)
        free(o.header_bufs[i]);
    free(store_path);
    free(store_url);
    return rc;
}
