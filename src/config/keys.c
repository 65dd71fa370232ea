/*
 * The table of configuration keys and the conversion of one value; see
 * keys.h.  To add a key: append its field to holdfast/client.h, add a row
 * here, regenerate examples/holdfast.yaml (test_config checks it) and
 * document it in docs/holdfast.yaml.5.md.
 */
#include "config/keys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <holdfast/client.h>
#include <holdfast/config.h>

#include "cache/store_impl.h"
#include "core/schedule.h"
#include "core/units.h"
#include "http/target.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define KB 1024LL
#define MB (1024 * KB)
#define GB (1024 * MB)
#define TB (1024 * GB)

#define STRING_MAX 4096 /* strings with no bound of their own */

#define CFG(f) .scope = HF_KS_CONFIG, .off = offsetof(struct hf_config, f)
#define RT(f) .scope = HF_KS_ROUTE, .off = offsetof(struct hf_route_config, f)
#define RT2(f, g) RT(f), .off2 = offsetof(struct hf_route_config, g)

static const char *check_hostport(const char *s);
static const char *check_admin(const char *s);
static const char *check_route_name(const char *s);
static const char *check_prefix(const char *s);
static const char *check_url(const char *s);
static const char *check_schedule(const char *s);
static const char *check_memcached(const char *s);
static const char *check_redis(const char *s);
static const char *check_refresh_key(const char *s);

/* The jitter choices are stored by index: keep them in enum hf_jitter order. */
_Static_assert(HF_JITTER_FULL == 0 && HF_JITTER_NONE == 1 && HF_JITTER_EQUAL == 2,
               "routes[].retry.jitter choices follow enum hf_jitter");
_Static_assert(sizeof(enum hf_jitter) == sizeof(int), "enum fields are stored as int");
_Static_assert(HF_MODE_ON_DEMAND == 0 && HF_MODE_BACKGROUND == 1,
               "routes[].mode choices follow enum hf_route_mode");
_Static_assert(HF_ON_MISS_REJECT == 0 && HF_ON_MISS_FETCH == 1,
               "routes[].refresh.on_miss choices follow enum hf_on_miss");

/* One key per paragraph reads better than one field per line. */
/* clang-format off */
const struct hf__key hf__keys[] = {
    {.path = "listen", .type = HF_KT_STRING, .def = "127.0.0.1:8080", .max = 255,
     .check = check_hostport, .syntax = "HOST:PORT|unix:PATH", CFG(listen),
     .help = "Address the proxy listens on: HOST:PORT (port 0: any free port) or "
             "unix:/absolute/path. 0.0.0.0:PORT accepts connections from other machines; "
             "holdfast does no authentication of its own, so prefer loopback."},
    {.path = "admin", .type = HF_KT_STRING, .def = "127.0.0.1:8081", .max = 255,
     .check = check_admin, .syntax = "HOST:PORT|unix:PATH|none", CFG(admin),
     .help = "Address of the admin listener: /metrics, /health, POST /purge, POST /refresh. "
             "It can purge the cache, so keep it on loopback. none: no admin listener."},
    {.path = "workers", .type = HF_KT_INT, .def = "0", .min = 0, .max = 256, CFG(workers),
     .help = "Event-loop threads, each with its own listener and connections to the APIs. "
             "0: two per CPU holdfast may run on. Where holdfast shares its CPUs with other "
             "busy processes, more loops shorten the slowest answers (see the README's "
             "Performance section)."},

    {.path = "static", .type = HF_KT_STRING, .flags = HF_KF_OFF | HF_KF_PATH, .def = "none",
     .min = 1, .max = 4096, .syntax = "DIR or none", .example = "dashboard/", CFG(static_dir),
     .help = "Serve the files in DIR for GET and HEAD of paths no route claims (a small front "
             "end beside its APIs; / is index.html). Read into memory at start (at most "
             "1024 files, 32MB in all): a change needs a restart. Only regular files under "
             "DIR; no listings; names starting with a dot are left out. A relative path is "
             "taken from the directory of this file."},

    {.path = "store", .type = HF_KT_SECTION,
     .help = "Where answers are cached: a memory tier bounded in bytes, in front of an "
             "optional SQLite file."},
    {.path = "store.path", .type = HF_KT_STRING, .flags = HF_KF_STORE, .def = "none",
     .min = 1, .max = 4096, .syntax = "PATH or none", .example = "holdfast.db", CFG(store),
     .help = "SQLite file that keeps answers across restarts, so stale copies outlive the "
             "process. A relative path is taken from the directory of this file. none: "
             "memory only."},
    {.path = "store.memory", .type = HF_KT_SIZE, .def = "64MB", .min = MB, .max = TB,
     CFG(memory_bytes),
     .help = "Bound on the memory tier, counting what each copy costs (body, headers, bookkeeping); the least recently used answers leave first."},
    {.path = "store.max_size", .type = HF_KT_SIZE, .def = "1GB", .min = 0, .max = 1024 * TB,
     CFG(max_size_bytes),
     .help = "Bound on the SQLite file's contents; the oldest answers are evicted first. "
             "0: no bound."},
    {.path = "store.keep", .type = HF_KT_DURATION, .flags = HF_KF_FOREVER, .def = "7d",
     .min = 0, CFG(keep_ms),
     .help = "Delete copies stored longer ago than this, whatever the routes' stale_for. "
             "0 or forever: keep them until max_size evicts them."},

    {.path = "store.redis", .type = HF_KT_STRING,
     .flags = HF_KF_OFF | HF_KF_REDIS | HF_KF_SECRET, .def_doc = "none", .min = 1, .max = 2048,
     .check = check_redis, .syntax = "redis://[:PASSWORD@]HOST[:PORT][/DB]|unix:///PATH",
     .example = "redis://127.0.0.1:6379/0", CFG(store_redis),
     .help = "The Redis every instance of a fleet shares: a cache tier between memory and "
             "the file, and the fleet's rate limits, quotas, in-flight fetches, refresh "
             "schedule and purges. Put the password in the environment "
             "(redis://:${REDIS_PASSWORD}@HOST:6379/0); holdfast never prints it. When Redis "
             "is unreachable the instances serve from memory and the file, split the limits "
             "by fleet.size and reconnect by themselves."},

    {.path = "store.memcached", .type = HF_KT_STRING, .flags = HF_KF_OFF | HF_KF_MEMCACHED,
     .def_doc = "none", .min = 1, .max = 2048, .check = check_memcached,
     .syntax = "HOST:PORT[,HOST:PORT...]", .example = "127.0.0.1:11211", CFG(store_memcached),
     .help = "Memcached servers every instance of a fleet shares as a cache tier between "
             "memory and the file: copies only; rate limits, quotas and in-flight fetches "
             "stay per instance. When it is unreachable the instances serve from memory and "
             "the file and reconnect by themselves."},

    {.path = "fleet", .type = HF_KT_SECTION,
     .help = "Several holdfast instances sharing one store."},
    {.path = "fleet.size", .type = HF_KT_INT, .def = "1", .min = 1, .max = 1000,
     CFG(fleet_size),
     .help = "How many instances share store.redis. While Redis is unreachable each "
             "instance takes this share of every route's limits (rate / size, quota / size), "
             "so the fleet stays within them."},

    {.path = "log", .type = HF_KT_SECTION, .help = "Logs: one line per event, on stderr."},
    {.path = "log.level", .type = HF_KT_ENUM, .def = "info", .choices = "debug|info|warn|error|off",
     CFG(log_level), .help = "Least severe level written."},
    {.path = "log.format", .type = HF_KT_ENUM, .def = "json", .choices = "json|text",
     CFG(log_format),
     .help = "json: one JSON object per line (ts, level, event, route, request_id, ...); "
             "text: the same fields as plain text."},

    {.path = "alerts", .type = HF_KT_SECTION,
     .help = "Alerts: log events named \"alert\", at level error."},
    {.path = "alerts.degraded_after", .type = HF_KT_DURATION, .def = "5m", .min = 0,
     .max = 7 * DAY, CFG(degraded_after_ms),
     .help = "Alert when a route has been degraded (serving stale copies or errors) this "
             "long, and again when it recovers. 0: never."},

    {.path = "routes", .type = HF_KT_ROUTES, .flags = HF_KF_REQUIRED, .min = 1,
     .max = HF_CONFIG_MAX_ROUTES,
     .help = "The APIs holdfast stands in front of. Each route maps a path prefix of the "
             "proxy to an API's base URL, with its own caching and retry policy."},
    {.path = "routes[].name", .type = HF_KT_STRING, .flags = HF_KF_REQUIRED, .min = 1, .max = 64,
     .check = check_route_name, .syntax = "[a-z0-9_-]+", .example = "news", RT(name),
     .help = "Route name, unique: used in cache keys, logs, metrics and hf_get()."},
    {.path = "routes[].prefix", .type = HF_KT_STRING, .def_doc = "/NAME/", .min = 1, .max = 1024,
     .check = check_prefix, .syntax = "/PATH/", .example = "/news/", RT(prefix),
     .help = "Path prefix the proxy serves this route under; it is replaced by the "
             "upstream URL. Starts and ends with /; the longest matching prefix wins."},
    {.path = "routes[].upstream", .type = HF_KT_STRING, .flags = HF_KF_REQUIRED, .min = 1,
     .max = 2048, .check = check_url, .syntax = "http(s)://HOST[:PORT][/PATH]",
     .example = "https://api.example.com/v1/", RT(upstream),
     .help = "The API's base URL. Only configured upstreams are ever contacted."},
    {.path = "routes[].headers", .type = HF_KT_MAP, .flags = HF_KF_OFF,
     .def_doc = "none", .max = 64, .check = hf__check_header_name, .syntax = "{ NAME: VALUE }",
     .example = "{ X-Api-Key: \"${NEWS_API_KEY}\" }", RT2(headers, nheaders),
     .help = "Headers added to every request to the API, typically credentials: write them "
             "as ${NAME} so the secret stays in the environment. Never logged."},
    {.path = "routes[].query", .type = HF_KT_MAP, .flags = HF_KF_OFF,
     .def_doc = "none", .max = 64, .check = hf__check_param_name, .syntax = "{ NAME: VALUE }",
     .example = "{ apikey: \"${NEWS_API_KEY}\" }", RT2(query, nquery),
     .help = "Query parameters added to every request to the API, for APIs that take a key "
             "in the URL. Never logged."},
    {.path = "routes[].fresh_for", .type = HF_KT_DURATION, .flags = HF_KF_AUTO, .def = "auto",
     .lib_def = "10m", .min = 0, .max = 365 * DAY, .example = "10m", RT(fresh_for_ms),
     .help = "How long an answer is served from the cache without asking the API. auto: as "
             "long as the API's Cache-Control or Expires says (RFC 9111)."},
    {.path = "routes[].stale_for", .type = HF_KT_DURATION, .flags = HF_KF_FOREVER, .def = "7d",
     .min = 0, RT(stale_for_ms),
     .help = "How long past freshness a copy may still be served when the API fails. "
             "forever: as long as a copy is kept."},
    {.path = "routes[].timeout", .type = HF_KT_DURATION, .def = "10s", .min = 1, .max = HOUR,
     .example = "5s", RT(timeout_ms),
     .help = "Time allowed for one attempt, from connecting to the last byte of the answer."},
    {.path = "routes[].connect_timeout", .type = HF_KT_DURATION, .def = "5s", .min = 1,
     .max = 10 * MIN, RT(connect_timeout_ms),
     .help = "Time allowed to connect to the API, TLS handshake included."},
    {.path = "routes[].deadline", .type = HF_KT_DURATION, .def = "0", .min = 0, .max = DAY,
     .example = "20s", RT(retry.deadline_ms),
     .help = "Time allowed for the whole request, retries and waits included; a wait that "
             "would pass it is not made and a stale copy is served at once. 0: none."},
    {.path = "routes[].latency_budget", .type = HF_KT_DURATION, .def = "0", .min = 0,
     .max = HOUR, .example = "1s", RT(latency_budget_ms),
     .help = "When a stale copy exists and the API has not answered after this long, serve "
             "the copy; the fetch goes on and updates the cache, and requests for the key "
             "meanwhile get the copy at once. 0: always wait."},

    {.path = "routes[].retry", .type = HF_KT_SECTION,
     .help = "Retries of timeouts, connection errors, 408, 429 and 5xx answers; never of "
             "other 4xx, nor of POST or PATCH without an Idempotency-Key."},
    {.path = "routes[].retry.attempts", .type = HF_KT_INT, .def = "3", .min = 1, .max = 100,
     RT(retry.attempts), .help = "Attempts in all, the first included. 1: no retries."},
    {.path = "routes[].retry.backoff", .type = HF_KT_DURATION, .def = "500ms", .min = 0,
     .max = HOUR, RT(retry.backoff_ms),
     .help = "Wait before the first retry; each further one waits twice as long."},
    {.path = "routes[].retry.max_backoff", .type = HF_KT_DURATION, .def = "8s", .min = 0,
     .max = DAY, RT(retry.max_backoff_ms),
     .help = "Cap on one wait between attempts; at least backoff."},
    {.path = "routes[].retry.jitter", .type = HF_KT_ENUM, .flags = HF_KF_INDEX, .def = "full",
     .choices = "full|none|equal", RT(retry.jitter),
     .help = "Randomisation of each wait d, so clients do not retry in step. full: between "
             "0 and d; equal: between d/2 and d; none: exactly d."},

    {.path = "routes[].rate_limit", .type = HF_KT_SECTION,
     .help = "Limits that keep holdfast within the API's own, so it is not the one that "
             "gets the route blocked."},
    {.path = "routes[].rate_limit.rate", .type = HF_KT_RATE, .def_doc = "unlimited",
     .syntax = "COUNT/DURATION", .example = "5/1m", RT2(rate_limit_count, rate_limit_per_ms),
     .help = "Requests per period (5/1m, 10/s), enforced by a token bucket. Also the least "
             "wait after a 429 that names no time (5/1m: 12s)."},
    {.path = "routes[].rate_limit.burst", .type = HF_KT_INT, .def = "0", .min = 0,
     .max = 1000000, .example = "5", RT(rate_limit_burst),
     .help = "Requests that may go at once before the rate applies. 0: the rate's count."},
    {.path = "routes[].rate_limit.quota", .type = HF_KT_RATE, .def_doc = "none",
     .syntax = "COUNT/DURATION", .example = "200/1d", RT2(quota_count, quota_per_ms),
     .help = "Hard cap on requests per period (200/1d), kept in the store so it survives "
             "restarts. When it is spent the route serves stale copies until the period "
             "ends."},

    {.path = "routes[].breaker", .type = HF_KT_SECTION,
     .help = "The circuit breaker: after repeated failures, stop asking the API for a "
             "while and serve stale copies."},
    {.path = "routes[].breaker.failures", .type = HF_KT_INT, .def = "5", .min = 0,
     .max = 1000000, RT(breaker_failures),
     .help = "Consecutive failed attempts that open the breaker. 0: no breaker."},
    {.path = "routes[].breaker.cooldown", .type = HF_KT_DURATION, .def = "30s", .min = 1,
     .max = DAY, RT(breaker_cooldown_ms),
     .help = "How long the breaker stays open before one probe request is let through."},

    {.path = "routes[].cache_404_for", .type = HF_KT_DURATION, .def = "0", .min = 0,
     .max = 365 * DAY, .example = "1m", RT(cache_404_for_ms),
     .help = "Cache 404 answers this long. 0: never store them."},
    {.path = "routes[].ignore_params", .type = HF_KT_LIST, .def_doc = "none", .max = 256,
     .check = hf__check_param_name, .syntax = "[NAME, ...]", .example = "[utm_source]",
     RT2(ignore_params, nignore_params),
     .help = "Query parameters left out of the cache key, such as tracking parameters."},
    {.path = "routes[].vary", .type = HF_KT_LIST, .def_doc = "none", .max = 32,
     .check = hf__check_header_name, .syntax = "[HEADER, ...]", .example = "[Accept-Language]",
     RT2(vary, nvary),
     .help = "Request headers whose values split the cache key, besides the API's own Vary."},
    {.path = "routes[].tls_verify", .type = HF_KT_BOOL, .def = "true", RT(tls_verify),
     .help = "Verify the API's TLS certificate. false is for testing only and logs a "
             "warning."},
    {.path = "routes[].max_body", .type = HF_KT_SIZE, .def = "8MB", .min = 1, .max = GB,
     RT(max_body), .help = "Largest answer accepted from the API; a larger one fails."},
    {.path = "routes[].store_private", .type = HF_KT_BOOL, .def = "false", RT(store_private),
     .help = "Store answers marked Cache-Control: private or no-store anyway, for a route "
             "whose answers are the same for every user."},
    {.path = "routes[].cache_authorized", .type = HF_KT_BOOL, .def = "false",
     RT(cache_authorized),
     .help = "Serve and store requests that carry Authorization. Off by default: one user's "
             "answer could be served to another."},

    {.path = "routes[].mode", .type = HF_KT_ENUM, .flags = HF_KF_INDEX, .def = "on-demand",
     .choices = "on-demand|background", RT(mode),
     .help = "on-demand: a request without a fresh copy asks the API. background: only the "
             "refresh schedule asks the API; user requests are served from the cache, so API "
             "usage stays the same whatever the traffic."},
    {.path = "routes[].refresh", .type = HF_KT_SECTION,
     .help = "The schedule of a background route: which keys are refreshed, and when."},
    {.path = "routes[].refresh.every", .type = HF_KT_STRING, .flags = HF_KF_OFF, .def_doc = "none", .min = 1,
     .max = 127, .check = check_schedule, .syntax = "DURATION|CRON", .example = "3h",
     RT(refresh_every),
     .help = "When runs start: a duration (3h: at 00:00, 03:00, ... UTC) or a cron expression "
             "\"m h dom mon dow\" in UTC (\"0 */3 * * *\", \"30 9 * * 1-5\", @hourly). Required "
             "with mode: background."},
    {.path = "routes[].refresh.keys", .type = HF_KT_LIST, .flags = HF_KF_OFF, .def_doc = "none", .max = 10000,
     .check = check_refresh_key, .syntax = "[/PATH?QUERY, ...]",
     .example = "[\"/latest?country=us\", \"/latest?country=gb\"]",
     RT2(refresh_keys, nrefresh_keys),
     .help = "Paths (with their query) under the route that every run refreshes."},
    {.path = "routes[].refresh.learn", .type = HF_KT_DURATION, .flags = HF_KF_OFF, .def = "0", .min = 0,
     .max = 365 * DAY, .example = "24h", RT(refresh_learn_ms),
     .help = "Also refresh any key a user asked for within this long; such keys count "
             "against max_keys. 0: only the listed keys."},
    {.path = "routes[].refresh.max_keys", .type = HF_KT_INT, .flags = HF_KF_OFF, .def = "500", .min = 1,
     .max = 10000, RT(refresh_max_keys),
     .help = "Bound on learned keys; a key asked for while the set is full is not learned."},
    {.path = "routes[].refresh.on_miss", .type = HF_KT_ENUM, .flags = HF_KF_INDEX | HF_KF_OFF,
     .def = "reject", .choices = "reject|fetch", RT(refresh_on_miss),
     .help = "A request for a key with no copy yet. reject: 503 saying when the next run "
             "is. fetch: ask the API once for that key (it is learned, so learn must be on); "
             "later misses are rejected."},
};
/* clang-format on */

const size_t hf__nkeys = sizeof hf__keys / sizeof hf__keys[0];
_Static_assert(sizeof hf__keys / sizeof hf__keys[0] <= HF__KEYS_MAX, "raise HF__KEYS_MAX");

const struct hf__key *hf__key_find(const char *path)
{
    for (size_t i = 0; i < hf__nkeys; i++) {
        if (strcmp(hf__keys[i].path, path) == 0)
            return &hf__keys[i];
    }
    return NULL;
}

const char *hf__key_name(const struct hf__key *k)
{
    const char *dot = strrchr(k->path, '.');
    return dot != NULL ? dot + 1 : k->path;
}

/* ---- checks: NULL when s is fine, else what is wrong ---- */

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool has_ctl_or_space(const char *s)
{
    for (; *s != '\0'; s++) {
        if (is_ctl((unsigned char)*s) || *s == ' ')
            return true;
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static const char *check_hostport(const char *s)
{
    /* A unix socket for apps on the same host (and for tests). */
    if (strncmp(s, "unix:", 5) == 0)
        return s[5] == '/' ? NULL : "expected unix:/absolute/path";
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return "expected HOST:PORT, e.g. 127.0.0.1:8080";
    long port = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (!is_digit(*p) || (port = port * 10 + (*p - '0')) > 65535)
            return "the port must be a number from 0 to 65535 (0: any free port)";
    }
    if (colon[1] == '0' && colon[2] != '\0')
        return "the port must be a number from 0 to 65535";
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        /* An IPv6 literal: [::1]:8080. */
        if (s[hlen - 1] != ']' || hlen < 3)
            return "expected HOST:PORT, e.g. [::1]:8080";
        for (size_t i = 1; i + 1 < hlen; i++) {
            char c = s[i];
            if (!is_alnum(c) && c != ':' && c != '.' && c != '%')
                return "invalid character in the IPv6 address";
        }
        return NULL;
    }
    for (size_t i = 0; i < hlen; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '.' && c != '-' && c != '_')
            return "invalid character in the host (an IPv6 address needs [ ])";
    }
    return NULL;
}

/* The admin listener may be switched off; the proxy's may not. */
static const char *check_admin(const char *s)
{
    return strcmp(s, "none") == 0 ? NULL : check_hostport(s);
}

static const char *check_route_name(const char *s)
{
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!(is_digit(c) || (c >= 'a' && c <= 'z') || c == '_' || c == '-'))
            return "use only lowercase letters, digits, _ and -";
    }
    return NULL;
}

static const char *check_prefix(const char *s)
{
    size_t len = strlen(s);
    if (s[0] != '/' || s[len - 1] != '/')
        return "must start and end with / (\"/news/\", so it cannot match \"/newsletter\")";
    if (has_ctl_or_space(s) || strpbrk(s, "?#%\\") != NULL)
        return "must be a plain path: no spaces, ?, #, % or \\";
    /* Dot segments would let a prefix mean a different path after normalisation. */
    if (strstr(s, "/./") != NULL || strstr(s, "/../") != NULL || strstr(s, "//") != NULL)
        return "must not contain empty, . or .. segments";
    return NULL;
}

static const char *check_url(const char *s)
{
    size_t skip;
    if (strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return "must be an http:// or https:// URL";
    if (s[skip] == '\0' || strchr("/?#:@", s[skip]) != NULL)
        return "the URL has no host";
    if (has_ctl_or_space(s))
        return "the URL must not contain spaces";
    if (strchr(s, '#') != NULL)
        return "the URL must not have a #fragment";
    return NULL;
}

static const char *check_memcached(const char *s)
{
    for (const char *p = s; *p != '\0';) {
        size_t n = strcspn(p, ",");
        char one[300];
        if (n == 0 || n >= sizeof one)
            return "expected HOST:PORT[,HOST:PORT...]";
        memcpy(one, p, n);
        one[n] = '\0';
        if (strchr(one, ':') == NULL)
            return "expected HOST:PORT (the port too: 11211)";
        const char *why = check_hostport(one);
        if (why != NULL)
            return why;
        p += n + (p[n] == ',');
    }
    return NULL;
}

/* A Redis URL, checked by the store's own parser; the problem never
 * repeats the URL (it may hold a password). */
static const char *check_redis(const char *s)
{
    if (strncmp(s, "unix://", 7) == 0) {
        static _Thread_local char conv[2100];
        snprintf(conv, sizeof conv, "redis+%s", s);
        return hf__store_redis_url_problem(conv);
    }
    return hf__store_redis_url_problem(s);
}

/* A refresh schedule: the parser's own words for what is wrong.  The
 * message lives in a thread-local buffer, valid until the next call. */
static const char *check_schedule(const char *s)
{
    static _Thread_local char why[160];
    struct hf_schedule sched;
    return hf_schedule_parse(s, &sched, why, sizeof why) == HF_OK ? NULL : why;
}

/* A key of a background route: a path under it, as a client would ask. */
static const char *check_refresh_key(const char *s)
{
    if (s[0] != '/')
        return "a key is a path under the route and starts with / (\"/latest?country=us\")";
    if (has_ctl_or_space(s) || strchr(s, '#') != NULL)
        return "a key must not contain spaces, control characters or #";
    if (strlen(s) > 2048)
        return "a key must be at most 2048 bytes";
    /* What the proxy would refuse from a client, a run must not send. */
    enum hf_target_err e = hf_http_target_check("GET", s, strlen(s));
    return e == HF_TARGET_OK ? NULL : hf_http_target_reason(e);
}

/* RFC 9110 token: the characters a header name may have. */
const char *hf__check_header_name(const char *s)
{
    if (*s == '\0')
        return "a header name must not be empty";
    for (; *s != '\0'; s++) {
        if (!is_alnum(*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return "not a valid header name";
    }
    return NULL;
}

const char *hf__check_param_name(const char *s)
{
    if (*s == '\0')
        return "a parameter name must not be empty";
    if (has_ctl_or_space(s) || strpbrk(s, "&=#") != NULL)
        return "a parameter name must not contain spaces, &, = or #";
    return NULL;
}

/* ---- conversion ---- */

char *hf__size_format(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"", "KB", "MB", "GB", "TB"};
    size_t u = 0;
    while (u + 1 < sizeof units / sizeof units[0] && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, len, "%llu%s", (unsigned long long)bytes, units[u]);
    return buf;
}

/* A value as it may appear in a one-line message: control characters made
 * visible and long values cut, so a message can never span lines. */
static const char *shown(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s != '\0' && o + 4 < len; s++)
        buf[o++] = is_ctl((unsigned char)*s) ? '?' : *s;
    if (*s != '\0' && len >= 4) {
        o = o > len - 4 ? len - 4 : o;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static void range_text(const struct hf__key *k, char *buf, size_t len)
{
    char lo[32], hi[32];
    switch (k->type) {
    case HF_KT_DURATION:
        hf_duration_format(k->min, lo, sizeof lo);
        hf_duration_format(k->max, hi, sizeof hi);
        break;
    case HF_KT_SIZE:
        hf__size_format((uint64_t)k->min, lo, sizeof lo);
        hf__size_format((uint64_t)k->max, hi, sizeof hi);
        break;
    default:
        snprintf(lo, sizeof lo, "%lld", (long long)k->min);
        snprintf(hi, sizeof hi, "%lld", (long long)k->max);
        break;
    }
    snprintf(buf, len, "%s to %s", lo, hi);
}

/* Has v left the row's bounds?  A max of 0 means none. */
static bool out_of_range(const struct hf__key *k, int64_t v)
{
    return v < k->min || (k->max != 0 && v > k->max);
}

static hf_err fail_range(const struct hf__key *k, const char *text, char *why, size_t whylen)
{
    char r[80], v[64];
    range_text(k, r, sizeof r);
    snprintf(why, whylen, "\"%s\" is out of range (%s)", shown(text, v, sizeof v), r);
    return HF_CONFIG;
}

static hf_err set_duration(const struct hf__key *k, int64_t *field, const char *text, char *why,
                           size_t whylen)
{
    int64_t ms;
    if ((k->flags & HF_KF_AUTO) && strcmp(text, "auto") == 0) {
        *field = -1;
        return HF_OK;
    }
    if (hf_duration_parse(text, (k->flags & HF_KF_FOREVER) != 0, &ms) != HF_OK) {
        char v[64];
        snprintf(why, whylen, "invalid duration \"%s\" (expected e.g. 500ms, 10s, 5m, 3h, 7d%s)",
                 shown(text, v, sizeof v),
                 (k->flags & HF_KF_FOREVER) ? ", or forever"
                 : (k->flags & HF_KF_AUTO)  ? ", or auto"
                                            : "");
        return HF_CONFIG;
    }
    if (ms != HF_FOREVER && out_of_range(k, ms))
        return fail_range(k, text, why, whylen);
    *field = ms;
    return HF_OK;
}

static hf_err set_size(const struct hf__key *k, size_t *field, const char *text, char *why,
                       size_t whylen)
{
    uint64_t bytes;
    char v[64];
    if (hf_size_parse(text, &bytes) != HF_OK) {
        snprintf(why, whylen, "invalid size \"%s\" (expected e.g. 512, 4KB, 64MB, 1GB)",
                 shown(text, v, sizeof v));
        return HF_CONFIG;
    }
    if (bytes > (uint64_t)INT64_MAX || out_of_range(k, (int64_t)bytes) || bytes > SIZE_MAX)
        return fail_range(k, text, why, whylen);
    *field = (size_t)bytes;
    return HF_OK;
}

static hf_err set_int(const struct hf__key *k, int *field, const char *text, char *why,
                      size_t whylen)
{
    char v[64];
    const char *p = text;
    bool neg = *p == '-';
    if (neg)
        p++;
    int64_t n = 0;
    bool big = false;
    if (*p == '\0')
        goto bad;
    for (; *p != '\0'; p++) {
        if (!is_digit(*p))
            goto bad;
        if (n > 1000000000000LL)
            big = true; /* far past every bound; stop growing, report the range */
        else
            n = n * 10 + (*p - '0');
    }
    if (neg)
        n = -n;
    if (big || out_of_range(k, n))
        return fail_range(k, text, why, whylen);
    *field = (int)n;
    return HF_OK;
bad:
    snprintf(why, whylen, "invalid integer \"%s\"", shown(text, v, sizeof v));
    return HF_CONFIG;
}

static hf_err set_bool(bool *field, const char *text, char *why, size_t whylen)
{
    /* YAML 1.2's core schema: true and false, capitalised or not. */
    if (strcmp(text, "true") == 0 || strcmp(text, "True") == 0 || strcmp(text, "TRUE") == 0) {
        *field = true;
        return HF_OK;
    }
    if (strcmp(text, "false") == 0 || strcmp(text, "False") == 0 || strcmp(text, "FALSE") == 0) {
        *field = false;
        return HF_OK;
    }
    char v[64];
    snprintf(why, whylen, "invalid boolean \"%s\" (expected true or false)",
             shown(text, v, sizeof v));
    return HF_CONFIG;
}

static hf_err set_enum(const struct hf__key *k, void *field, const char *text, struct hf__arena *a,
                       char *why, size_t whylen)
{
    size_t tlen = strlen(text);
    int index = 0;
    for (const char *c = k->choices; *c != '\0'; index++) {
        size_t clen = strcspn(c, "|");
        if (clen == tlen && memcmp(c, text, clen) == 0) {
            if (k->flags & HF_KF_INDEX) {
                memcpy(field, &index, sizeof index);
                return HF_OK;
            }
            const char *s = a != NULL ? hf__arena_strndup(a, text, tlen) : text;
            if (s == NULL)
                return HF_ENOMEM;
            memcpy(field, &s, sizeof s);
            return HF_OK;
        }
        c += clen;
        if (*c == '|')
            c++;
    }
    char v[64], list[128];
    size_t o = 0;
    for (const char *c = k->choices; *c != '\0' && o + 3 < sizeof list; c++) {
        if (*c == '|') {
            list[o++] = ',';
            list[o++] = ' ';
        } else {
            list[o++] = *c;
        }
    }
    list[o] = '\0';
    snprintf(why, whylen, "invalid value \"%s\" (expected one of: %s)", shown(text, v, sizeof v),
             list);
    return HF_CONFIG;
}

static hf_err set_rate(int64_t *count, int64_t *per_ms, const char *text, char *why, size_t whylen)
{
    if (hf_rate_parse(text, count, per_ms) != HF_OK) {
        char v[64];
        snprintf(why, whylen,
                 "invalid rate \"%s\" (expected COUNT/DURATION, e.g. 5/1m, 200/1d, "
                 "10/s)",
                 shown(text, v, sizeof v));
        return HF_CONFIG;
    }
    return HF_OK;
}

/* A path taken from the directory of the config file when relative, after
 * scheme ("sqlite:" for the store, "" for a plain path); "none" -> NULL. */
static hf_err set_path(const char **field, const char *text, struct hf__arena *a, const char *dir,
                       const char *scheme)
{
    if (strcmp(text, "none") == 0) {
        *field = NULL;
        return HF_OK;
    }
    if (a == NULL) {
        *field = text;
        return HF_OK;
    }
    bool rel = text[0] != '/' && dir != NULL && dir[0] != '\0';
    size_t dlen = rel ? strlen(dir) : 0;
    size_t tlen = strlen(text), sl = strlen(scheme);
    char *s = hf__arena_alloc(a, sl + dlen + 1 + tlen + 1);
    if (s == NULL)
        return HF_ENOMEM;
    memcpy(s, scheme, sl);
    size_t o = sl;
    if (rel) {
        memcpy(s + o, dir, dlen);
        o += dlen;
        if (dir[dlen - 1] != '/')
            s[o++] = '/';
    }
    memcpy(s + o, text, tlen + 1);
    *field = s;
    return HF_OK;
}

static hf_err set_string(const struct hf__key *k, const char **field, const char *text,
                         struct hf__arena *a, const char *dir, char *why, size_t whylen)
{
    size_t len = strlen(text);
    int64_t max = k->max != 0 ? k->max : STRING_MAX;
    if (len == 0 && k->min > 0) {
        snprintf(why, whylen, "must not be empty");
        return HF_CONFIG;
    }
    if ((int64_t)len > max) {
        snprintf(why, whylen, "too long (%zu bytes; the limit is %lld)", len, (long long)max);
        return HF_CONFIG;
    }
    for (size_t i = 0; i < len; i++) {
        if (is_ctl((unsigned char)text[i])) {
            snprintf(why, whylen, "contains a control character");
            return HF_CONFIG;
        }
    }
    const char *problem = k->check != NULL ? k->check(text) : NULL;
    if (problem != NULL && (k->flags & HF_KF_SECRET)) {
        snprintf(why, whylen, "invalid value: %s", problem);
        return HF_CONFIG;
    }
    if (problem != NULL) {
        char v[64];
        snprintf(why, whylen, "invalid value \"%s\": %s", shown(text, v, sizeof v), problem);
        return HF_CONFIG;
    }
    if (k->flags & HF_KF_STORE)
        return set_path(field, text, a, dir, "sqlite:");
    if (k->flags & HF_KF_PATH)
        return set_path(field, text, a, dir, "");
    if (k->flags & (HF_KF_REDIS | HF_KF_MEMCACHED)) {
        /* the store's own URL forms */
        bool unix_sock = (k->flags & HF_KF_REDIS) && strncmp(text, "unix://", 7) == 0;
        const char *pre = (k->flags & HF_KF_MEMCACHED) ? "memcached://" : unix_sock ? "redis+" : "";
        size_t pl = strlen(pre);
        if (a == NULL) { /* the table's own values (examples): kept as written */
            *field = text;
            return HF_OK;
        }
        char *u = hf__arena_alloc(a, pl + len + 1);
        if (u == NULL)
            return HF_ENOMEM;
        memcpy(u, pre, pl);
        memcpy(u + pl, text, len + 1);
        *field = u;
        return HF_OK;
    }
    const char *s = a != NULL ? hf__arena_strndup(a, text, len) : text;
    if (s == NULL)
        return HF_ENOMEM;
    *field = s;
    return HF_OK;
}

hf_err hf__key_set(const struct hf__key *k, void *base, const char *text, struct hf__arena *a,
                   const char *dir, char *why, size_t whylen)
{
    char *field = (char *)base + k->off;
    switch (k->type) {
    case HF_KT_DURATION:
        return set_duration(k, (int64_t *)(void *)field, text, why, whylen);
    case HF_KT_SIZE:
        return set_size(k, (size_t *)(void *)field, text, why, whylen);
    case HF_KT_INT:
        return set_int(k, (int *)(void *)field, text, why, whylen);
    case HF_KT_BOOL:
        return set_bool((bool *)(void *)field, text, why, whylen);
    case HF_KT_STRING:
        return set_string(k, (const char **)(void *)field, text, a, dir, why, whylen);
    case HF_KT_ENUM:
        return set_enum(k, field, text, a, why, whylen);
    case HF_KT_RATE:
        return set_rate((int64_t *)(void *)field, (int64_t *)(void *)((char *)base + k->off2), text,
                        why, whylen);
    default:
        snprintf(why, whylen, "not a scalar key");
        return HF_CONFIG;
    }
}
