/*
 * holdfast sim (sim.h): one thread, one event loop, one evhttp.  Answers
 * that a fault delays (slow) or never sends (timeout) are held with a
 * timer; the connection's close callback forgets them, so nothing is
 * answered on a connection that is gone.
 */
#include "sim/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/units.h"
#include "http/date.h"
#include "limit/bucket.h"
#include "limit/quota.h"
#include "obs/log.h"

#define TIMEOUT_HOLD_MS (5 * 60 * 1000) /* a "timeout" answer closes after this */
#define SLOW_DEFAULT_MS 2000
#define MAX_HELD 1024

static const char *const api_names[HF_SIM_APIS] = {"news", "quotes", "fx"};
static const int max_age_s[HF_SIM_APIS] = {60, 15, 600};

enum outcome {
    O_OK,
    O_NOT_MODIFIED,
    O_RATE_LIMITED,
    O_QUOTA_EXCEEDED,
    O_FAULT_503,
    O_FAULT_429,
    O_TIMEOUT,
    O_RESET,
    O_SLOW,
    O_GARBAGE,
    O_NOT_FOUND,
    O_BAD_REQUEST,
    O_COUNT
};

static const char *const outcome_names[O_COUNT] = {
    "ok",      "not_modified", "rate_limited", "quota_exceeded", "fault_503", "fault_429",
    "timeout", "reset",        "slow",         "garbage",        "not_found", "bad_request"};

struct fault {
    enum hf_sim_mode mode;
    int64_t until_ms; /* wall; 0: until changed */
    int64_t delay_ms;
};

struct held {
    struct held *next, *prev;
    struct hf_sim *sim;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct event *timer;
    int status; /* 0: never answer (timeout): close when the timer fires */
    char *body;
    size_t len;
    char etag[24];
    int api;
};

struct hf_sim {
    struct hf_sim_options o;
    pthread_t thread;
    bool running;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    char address[300];
    char unix_path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
    struct hf_bucket bucket[HF_SIM_APIS];
    struct hf_quota quota[HF_SIM_APIS];
    bool has_bucket[HF_SIM_APIS], has_quota[HF_SIM_APIS];
    struct fault faults[HF_SIM_APIS];
    uint64_t stats[HF_SIM_APIS][O_COUNT];
    struct held *held;
    int nheld;
};

int hf_sim_api_index(const char *name)
{
    for (int i = 0; i < HF_SIM_APIS; i++)
        if (strcmp(name, api_names[i]) == 0)
            return i;
    return -1;
}

const char *hf_sim_mode_name(enum hf_sim_mode m)
{
    static const char *const names[] = {"ok", "503", "429", "timeout", "reset", "slow", "garbage"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "ok";
}

/* --- data: a function of the seed and the clock ------------------------------ */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s, uint64_t h)
{
    while (*s)
        h = mix(h ^ (unsigned char)*s++);
    return h;
}

/* A number in [-1, 1) fixed by (seed, name, step). */
static double noise(uint64_t seed, const char *name, int64_t step)
{
    uint64_t h = mix(hash_str(name, seed) ^ (uint64_t)step);
    return (double)(h >> 11) / (double)(1ull << 52) - 1.0;
}

/* Interpolated noise with one knot every step_min minutes. */
static double smooth(uint64_t seed, const char *name, double t_min, double step_min)
{
    int64_t k = (int64_t)floor(t_min / step_min);
    double f = t_min / step_min - (double)k;
    return noise(seed, name, k) * (1 - f) + noise(seed, name, k + 1) * f;
}

/* A walk: a trend over weeks, moves over days, wiggles within the hour. */
static double walk(uint64_t seed, const char *name, double t_min, double amp)
{
    double ph = (double)(hash_str(name, seed) % 1000) / 159.0;
    return amp * (0.5 * sin(t_min / (1440.0 * 9) + ph) + 0.35 * smooth(seed, name, t_min, 1440) +
                  0.15 * smooth(seed ^ 1, name, t_min, 20));
}

static void rfc3339(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const struct {
    const char *sym, *name;
    double base;
} tickers[] = {{"AAPL", "Apple", 190},  {"MSFT", "Microsoft", 410}, {"GOOG", "Alphabet", 170},
               {"AMZN", "Amazon", 180}, {"NVDA", "Nvidia", 120},    {"META", "Meta", 500},
               {"TSLA", "Tesla", 240}};
#define NTICKERS (sizeof tickers / sizeof tickers[0])

static double price_at(uint64_t seed, size_t i, int64_t ms)
{
    double t_min = (double)ms / 60000.0;
    return tickers[i].base * (1.0 + walk(seed, tickers[i].sym, t_min, 0.08));
}

static char *quote_body(const char *sym, uint64_t seed, int64_t now, int *status)
{
    size_t i = 0;
    while (i < NTICKERS && strcmp(tickers[i].sym, sym) != 0)
        i++;
    if (i == NTICKERS) {
        *status = 404;
        json_t *e = json_pack("{s:s,s:s}", "error", "unknown_symbol", "message",
                              "no such ticker (try AAPL, MSFT, GOOG, AMZN, NVDA, META, TSLA)");
        char *s = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        return s;
    }
    int64_t day = 86400000;
    double price = round(price_at(seed, i, now) * 100) / 100;
    double prev = round(price_at(seed, i, now - now % day - 1) * 100) / 100;
    json_t *hist = json_array();
    for (int d = 30; d >= 1; d--) {
        int64_t at = now - now % day - (int64_t)(d - 1) * day - 1;
        char date[16];
        time_t t = (time_t)(at / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
        json_array_append_new(hist, json_pack("{s:s,s:f}", "date", date, "close",
                                              round(price_at(seed, i, at) * 100) / 100));
    }
    char asof[32];
    rfc3339(now - now % 1000, asof, sizeof asof);
    json_t *o =
        json_pack("{s:s,s:s,s:f,s:f,s:f,s:s,s:s,s:o}", "symbol", tickers[i].sym, "name",
                  tickers[i].name, "price", price, "change", round((price - prev) * 100) / 100,
                  "change_percent", round((price - prev) / prev * 10000) / 100, "currency", "USD",
                  "as_of", asof, "history", hist);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    *status = s ? 200 : 0;
    return s;
}

static const struct {
    const char *code;
    double per_usd;
} currencies[] = {{"USD", 1},    {"EUR", 0.92}, {"GBP", 0.79}, {"JPY", 151.2},
                  {"CHF", 0.88}, {"CAD", 1.36}, {"AUD", 1.52}, {"CNY", 7.23}};
#define NCURRENCIES (sizeof currencies / sizeof currencies[0])

static double per_usd(uint64_t seed, size_t i, int64_t now)
{
    if (i == 0)
        return 1.0;
    return currencies[i].per_usd *
           (1.0 + walk(seed, currencies[i].code, (double)now / 60000.0, 0.01));
}

static char *fx_body(const char *base, uint64_t seed, int64_t now, int *status)
{
    size_t b = 0;
    while (b < NCURRENCIES && strcmp(currencies[b].code, base) != 0)
        b++;
    if (b == NCURRENCIES) {
        *status = 400;
        json_t *e = json_pack("{s:s,s:s}", "error", "invalid_base", "message",
                              "unknown base currency (try USD, EUR, GBP, JPY, CHF, CAD, AUD, CNY)");
        char *s = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        return s;
    }
    int64_t minute = now - now % 60000; /* rates move once a minute */
    json_t *rates = json_object();
    double bu = per_usd(seed, b, minute);
    for (size_t i = 0; i < NCURRENCIES; i++)
        if (i != b)
            json_object_set_new(rates, currencies[i].code,
                                json_real(round(per_usd(seed, i, minute) / bu * 1e6) / 1e6));
    char date[32];
    rfc3339(minute, date, sizeof date);
    json_t *o =
        json_pack("{s:s,s:s,s:o}", "base", currencies[b].code, "date", date, "rates", rates);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    *status = s ? 200 : 0;
    return s;
}

static const char *const subjects[] = {"Apple",  "Microsoft", "Alphabet", "Amazon",
                                       "Nvidia", "Meta",      "Tesla",    "The Fed"};
static const char *const verbs[] = {"beats estimates as",     "shares slip after",
                                    "unveils plan while",     "faces questions as",
                                    "rallies on report that", "cuts outlook as"};
static const char *const tails[] = {"cloud demand grows",     "chip supply tightens",
                                    "regulators take a look", "consumers spend less",
                                    "rates stay on hold",     "AI spending climbs"};
static const char *const sources[] = {"Wire Daily", "Market Watcher", "The Ledger", "Finance Now"};

#define NEWS_EVERY_MS (3 * 60 * 1000) /* a new headline every 3 minutes */

static char *news_body(uint64_t seed, int64_t now, int *status)
{
    json_t *arts = json_array();
    int64_t k = now / NEWS_EVERY_MS;
    for (int i = 0; i < 10; i++, k--) {
        uint64_t h = mix(seed ^ (uint64_t)k);
        char title[200], url[120], when[32];
        snprintf(title, sizeof title, "%s %s %s", subjects[h % 8], verbs[(h >> 8) % 6],
                 tails[(h >> 16) % 6]);
        snprintf(url, sizeof url, "https://news.example/%lld", (long long)k);
        rfc3339(k * NEWS_EVERY_MS, when, sizeof when);
        json_array_append_new(arts,
                              json_pack("{s:s,s:s,s:s,s:s}", "title", title, "source",
                                        sources[(h >> 24) % 4], "published_at", when, "url", url));
    }
    json_t *o = json_pack("{s:s,s:i,s:o}", "status", "ok", "total", 10, "articles", arts);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    *status = s ? 200 : 0;
    return s;
}

/* The value of name in a query string ("a=1&base=EUR"), into buf. */
static const char *query_get(const char *query, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = query; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, "&");
        if (n > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = n - nl - 1 < len - 1 ? n - nl - 1 : len - 1;
            memcpy(buf, p + nl + 1, vl);
            buf[vl] = '\0';
            return buf;
        }
        p += n + (p[n] == '&');
    }
    return NULL;
}

char *hf_sim_body(int api, const char *path, const char *query, uint64_t seed, int64_t now_ms,
                  int *status)
{
    char buf[16];
    *status = 404;
    switch (api) {
    case 0:
        return strcmp(path, "/news/latest") == 0 ? news_body(seed, now_ms, status) : NULL;
    case 1:
        if (strncmp(path, "/quotes/", 8) != 0 || strlen(path + 8) == 0 || strlen(path + 8) > 8)
            return NULL;
        return quote_body(path + 8, seed, now_ms, status);
    case 2: {
        if (strcmp(path, "/fx/latest") != 0)
            return NULL;
        const char *base = query_get(query, "base", buf, sizeof buf);
        return fx_body(base ? base : "USD", seed, now_ms, status);
    }
    default:
        return NULL;
    }
}

/* --- faults ---------------------------------------------------------------- */

bool hf_sim_fault_parse(const char *body, size_t len, struct hf_sim_fault_req *out,
                        const char **why)
{
    json_error_t e;
    json_t *o = json_loadb(body, len, 0, &e);
    bool ok = false;
    *out = (struct hf_sim_fault_req){.api = -1, .delay_ms = SLOW_DEFAULT_MS};
    const char *api = NULL, *mode = NULL, *dur = NULL, *delay = NULL;
    if (o == NULL || !json_is_object(o)) {
        *why = "expected a JSON object such as {\"api\":\"news\",\"mode\":\"503\",\"for\":\"60s\"}";
        goto out;
    }
    if (json_unpack_ex(o, &e, JSON_STRICT, "{s:s,s:s,s?s,s?s}", "api", &api, "mode", &mode, "for",
                       &dur, "delay", &delay) != 0) {
        *why = "expected \"api\" and \"mode\" (strings), optional \"for\" and \"delay\" "
               "(durations such as \"60s\"), nothing else";
        goto out;
    }
    if (strcmp(api, "*") != 0 && (out->api = hf_sim_api_index(api)) < 0) {
        *why = "unknown api (news, quotes, fx or *)";
        goto out;
    }
    int m = 0;
    while (m <= HF_SIM_GARBAGE && strcmp(hf_sim_mode_name((enum hf_sim_mode)m), mode) != 0)
        m++;
    if (m > HF_SIM_GARBAGE) {
        *why = "unknown mode (ok, 503, 429, timeout, reset, slow or garbage)";
        goto out;
    }
    out->mode = (enum hf_sim_mode)m;
    if (dur != NULL && (hf_duration_parse(dur, false, &out->for_ms) != HF_OK || out->for_ms <= 0)) {
        *why = "\"for\" must be a duration such as \"60s\" or \"5m\"";
        goto out;
    }
    if (delay != NULL && (hf_duration_parse(delay, false, &out->delay_ms) != HF_OK ||
                          out->delay_ms <= 0 || out->delay_ms > 600000)) {
        *why = "\"delay\" must be a duration from 1ms to 10m";
        goto out;
    }
    ok = true;
out:
    json_decref(o);
    return ok;
}

static json_t *fault_table(struct hf_sim *s, int64_t now)
{
    json_t *t = json_object();
    for (int i = 0; i < HF_SIM_APIS; i++) {
        struct fault *f = &s->faults[i];
        if (f->until_ms != 0 && now >= f->until_ms)
            *f = (struct fault){0};
        char until[32];
        if (f->until_ms != 0)
            rfc3339(f->until_ms, until, sizeof until);
        json_object_set_new(t, api_names[i],
                            json_pack("{s:s,s:o}", "mode", hf_sim_mode_name(f->mode), "until",
                                      f->until_ms ? json_string(until) : json_null()));
    }
    return json_pack("{s:o}", "faults", t);
}

/* --- answering --------------------------------------------------------------- */

static void reply_json(struct evhttp_request *req, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && s != NULL) {
        evbuffer_add(b, s, strlen(s));
        evbuffer_add(b, "\n", 1);
    }
    free(s);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Bad Request", b);
    if (b != NULL)
        evbuffer_free(b);
}

static void log_req(struct hf_sim *s, struct evhttp_request *req, int api, enum outcome oc,
                    int status)
{
    if (api >= 0)
        s->stats[api][oc]++;
    if (s->o.quiet || !hf_log_enabled(HF_LOG_INFO))
        return;
    HF_LOG(HF_LOG_INFO, "sim_request", HF_LS("api", api >= 0 ? api_names[api] : NULL),
           HF_LS("uri", evhttp_request_get_uri(req)), HF_LI("status", status),
           HF_LS("outcome", outcome_names[oc]));
}

static void send_body(struct evhttp_request *req, int status, const char *body, size_t len,
                      const char *etag, int max_age)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char date[40], cc[32];
    hf_http_date_format(hf_clock_wall_ms() / 1000, date, sizeof date);
    evhttp_add_header(h, "Date", date);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (status == 200 || status == 304) {
        snprintf(cc, sizeof cc, "max-age=%d", max_age);
        evhttp_add_header(h, "Cache-Control", cc);
        if (etag != NULL && etag[0] != '\0')
            evhttp_add_header(h, "ETag", etag);
    }
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && status != 304 && body != NULL)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, status,
                      status == 200   ? "OK"
                      : status == 304 ? "Not Modified"
                      : status == 404 ? "Not Found"
                      : status == 429 ? "Too Many Requests"
                      : status == 503 ? "Service Unavailable"
                                      : "Bad Request",
                      b);
    if (b != NULL)
        evbuffer_free(b);
}

static void send_text(struct evhttp_request *req, int status, const char *body)
{
    send_body(req, status, body, strlen(body), NULL, 0);
}

static void held_free(struct held *h)
{
    struct hf_sim *s = h->sim;
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        s->held = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    s->nheld--;
    if (h->conn != NULL)
        evhttp_connection_set_closecb(h->conn, NULL, NULL);
    event_free(h->timer);
    free(h->body);
    free(h);
}

/* The client went away while its answer was held. */
static void held_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct held *h = arg;
    h->conn = NULL; /* the connection is going: no callback to clear */
    held_free(h);
}

static void held_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct held *h = arg;
    struct evhttp_request *req = h->req;
    if (h->status != 0) {
        send_body(req, h->status, h->body, h->len, h->etag, max_age_s[h->api]);
    } else {
        /* a timeout that ran its course: close without an answer */
        struct bufferevent *bev = evhttp_connection_get_bufferevent(h->conn);
        if (bev != NULL)
            shutdown(bufferevent_getfd(bev), SHUT_RDWR);
    }
    held_free(h);
}

/* Answer later (slow), or never (timeout: status 0). */
static bool hold(struct hf_sim *s, struct evhttp_request *req, int api, int status, char *body,
                 size_t len, const char *etag, int64_t ms)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct held *h = s->nheld < MAX_HELD && conn != NULL ? calloc(1, sizeof *h) : NULL;
    if (h == NULL)
        return false;
    h->sim = s;
    h->req = req;
    h->conn = conn;
    h->status = status;
    h->body = body;
    h->len = len;
    h->api = api;
    snprintf(h->etag, sizeof h->etag, "%s", etag ? etag : "");
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if ((h->timer = evtimer_new(s->base, held_fire, h)) == NULL || evtimer_add(h->timer, &tv)) {
        if (h->timer != NULL)
            event_free(h->timer);
        free(h);
        return false;
    }
    h->next = s->held;
    if (s->held != NULL)
        s->held->prev = h;
    s->held = h;
    s->nheld++;
    evhttp_connection_set_closecb(conn, held_closed, h);
    return true;
}

static void rate_headers(struct hf_sim *s, struct evhttp_request *req, int api, int64_t now)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char v[32];
    if (s->has_quota[api]) {
        snprintf(v, sizeof v, "%lld", (long long)s->quota[api].count);
        evhttp_add_header(h, "X-RateLimit-Limit", v);
        snprintf(v, sizeof v, "%lld", (long long)hf_quota_remaining(&s->quota[api], now));
        evhttp_add_header(h, "X-RateLimit-Remaining", v);
        snprintf(v, sizeof v, "%lld", (long long)(hf_quota_reset_at(&s->quota[api], now) / 1000));
        evhttp_add_header(h, "X-RateLimit-Reset", v);
    } else if (s->has_bucket[api]) {
        int64_t mono = hf_clock_mono_ms();
        snprintf(v, sizeof v, "%lld", (long long)s->bucket[api].count);
        evhttp_add_header(h, "X-RateLimit-Limit", v);
        snprintf(v, sizeof v, "%lld", (long long)hf_bucket_available(&s->bucket[api], mono));
        evhttp_add_header(h, "X-RateLimit-Remaining", v);
        snprintf(v, sizeof v, "%lld",
                 (long long)((now + s->bucket[api].per_ms / s->bucket[api].count) / 1000 + 1));
        evhttp_add_header(h, "X-RateLimit-Reset", v);
    }
}

static void api_request(struct hf_sim *s, struct evhttp_request *req, int api, const char *path,
                        const char *query)
{
    int64_t now = hf_clock_wall_ms();
    struct fault f = s->faults[api];
    if (f.until_ms != 0 && now >= f.until_ms)
        f = s->faults[api] = (struct fault){0};
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    switch (f.mode) {
    case HF_SIM_503:
        log_req(s, req, api, O_FAULT_503, 503);
        send_text(req, 503, "{\"error\":\"service_unavailable\",\"message\":\"try again later\"}");
        return;
    case HF_SIM_429:
        evhttp_add_header(out, "Retry-After", "30");
        log_req(s, req, api, O_FAULT_429, 429);
        send_text(req, 429, "{\"error\":\"rate_limited\",\"message\":\"slow down\"}");
        return;
    case HF_SIM_TIMEOUT:
        log_req(s, req, api, O_TIMEOUT, 0);
        if (!hold(s, req, api, 0, NULL, 0, NULL, TIMEOUT_HOLD_MS))
            evhttp_send_error(req, 503, "Too many held requests");
        return;
    case HF_SIM_RESET: {
        log_req(s, req, api, O_RESET, 0);
        struct bufferevent *bev =
            evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
        if (bev != NULL)
            shutdown(bufferevent_getfd(bev), SHUT_RDWR); /* evhttp sees the close and frees */
        return;
    }
    case HF_SIM_GARBAGE:
        log_req(s, req, api, O_GARBAGE, 200);
        send_text(req, 200, "{\"articles\":[{\"title\":\"\x01\x02<html>\xff");
        return;
    default:
        break;
    }
    /* The API's own limits. */
    int64_t mono = hf_clock_mono_ms(), wait = 0;
    if (s->has_bucket[api] && !hf_bucket_take(&s->bucket[api], mono, &wait)) {
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", (long long)((wait + 999) / 1000));
        evhttp_add_header(out, "Retry-After", ra);
        rate_headers(s, req, api, now);
        log_req(s, req, api, O_RATE_LIMITED, 429);
        send_text(req, 429, "{\"error\":\"rate_limited\",\"message\":\"rate limit exceeded\"}");
        return;
    }
    if (s->has_quota[api] && !hf_quota_take(&s->quota[api], now)) {
        char ra[24];
        snprintf(ra, sizeof ra, "%lld",
                 (long long)((hf_quota_reset_at(&s->quota[api], now) - now + 999) / 1000));
        evhttp_add_header(out, "Retry-After", ra);
        rate_headers(s, req, api, now);
        log_req(s, req, api, O_QUOTA_EXCEEDED, 429);
        send_text(req, 429, "{\"error\":\"quota_exceeded\",\"message\":\"daily quota used up\"}");
        return;
    }
    rate_headers(s, req, api, now);
    int status = 0;
    char *body = hf_sim_body(api, path, query, s->o.seed, now, &status);
    if (body == NULL) {
        log_req(s, req, api, status == 404 ? O_NOT_FOUND : O_BAD_REQUEST, status ? status : 500);
        send_text(req, status ? status : 500,
                  "{\"error\":\"not_found\",\"message\":\"no such endpoint\"}");
        return;
    }
    size_t len = strlen(body);
    char etag[24];
    snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)hash_str(body, 7));
    if (status != 200) {
        log_req(s, req, api, status == 404 ? O_NOT_FOUND : O_BAD_REQUEST, status);
        send_body(req, status, body, len, NULL, 0);
        free(body);
        return;
    }
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm != NULL && strcmp(inm, etag) == 0) {
        log_req(s, req, api, O_NOT_MODIFIED, 304);
        send_body(req, 304, NULL, 0, etag, max_age_s[api]);
        free(body);
        return;
    }
    if (f.mode == HF_SIM_SLOW) {
        log_req(s, req, api, O_SLOW, 200);
        if (hold(s, req, api, 200, body, len, etag, f.delay_ms))
            return; /* body belongs to the held answer */
    } else {
        log_req(s, req, api, O_OK, 200);
    }
    send_body(req, 200, body, len, etag, max_age_s[api]);
    free(body);
}

static void control(struct hf_sim *s, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    int64_t now = hf_clock_wall_ms();
    if (strcmp(path, "/_sim/faults") == 0 && m == EVHTTP_REQ_GET) {
        reply_json(req, 200, fault_table(s, now));
    } else if (strcmp(path, "/_sim/faults") == 0 && m == EVHTTP_REQ_POST) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *why = NULL;
        struct hf_sim_fault_req fr;
        char *body = len <= 4096 ? (char *)evbuffer_pullup(in, (ev_ssize_t)len) : NULL;
        if (body == NULL || !hf_sim_fault_parse(body ? body : "", len, &fr, &why)) {
            reply_json(req, 400, json_pack("{s:s}", "error", why ? why : "body too large"));
            return;
        }
        struct fault f = {.mode = fr.mode,
                          .until_ms = fr.for_ms > 0 ? now + fr.for_ms : 0,
                          .delay_ms = fr.delay_ms};
        for (int i = 0; i < HF_SIM_APIS; i++)
            if (fr.api < 0 || fr.api == i)
                s->faults[i] = fr.mode == HF_SIM_OK ? (struct fault){0} : f;
        HF_LOG(HF_LOG_INFO, "sim_fault", HF_LS("api", fr.api < 0 ? "*" : api_names[fr.api]),
               HF_LS("mode", hf_sim_mode_name(fr.mode)), HF_LI("for_ms", fr.for_ms));
        reply_json(req, 200, fault_table(s, now));
    } else if (strcmp(path, "/_sim/stats") == 0 && m == EVHTTP_REQ_GET) {
        json_t *apis = json_object();
        for (int i = 0; i < HF_SIM_APIS; i++) {
            json_t *oc = json_object();
            uint64_t total = 0;
            for (int k = 0; k < O_COUNT; k++) {
                json_object_set_new(oc, outcome_names[k], json_integer((json_int_t)s->stats[i][k]));
                total += s->stats[i][k];
            }
            json_object_set_new(
                apis, api_names[i],
                json_pack("{s:I,s:o}", "requests", (json_int_t)total, "outcomes", oc));
        }
        reply_json(req, 200, json_pack("{s:o}", "apis", apis));
    } else if (strcmp(path, "/_sim/reset") == 0 && m == EVHTTP_REQ_POST) {
        memset(s->faults, 0, sizeof s->faults);
        memset(s->stats, 0, sizeof s->stats);
        reply_json(req, 200, json_pack("{s:b}", "reset", 1));
    } else {
        reply_json(req, 404,
                   json_pack("{s:s}", "error",
                             "GET or POST /_sim/faults, GET /_sim/stats, POST /_sim/reset"));
    }
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct hf_sim *s = arg;
    const char *uri = evhttp_request_get_uri(req);
    char path[256];
    size_t pl = strcspn(uri, "?#");
    if (pl >= sizeof path) {
        evhttp_send_error(req, 414, "URI Too Long");
        return;
    }
    memcpy(path, uri, pl);
    path[pl] = '\0';
    const char *query = uri[pl] == '?' ? uri + pl + 1 : "";
    if (strncmp(path, "/_sim/", 6) == 0) {
        control(s, req, path);
        return;
    }
    for (int i = 0; i < HF_SIM_APIS; i++) {
        size_t n = strlen(api_names[i]);
        if (strncmp(path + 1, api_names[i], n) == 0 && path[n + 1] == '/') {
            if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
                evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
                evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
                evhttp_send_error(req, 405, "Method Not Allowed");
                return;
            }
            api_request(s, req, i, path, query);
            return;
        }
    }
    reply_json(req, 404,
               json_pack("{s:s}", "error",
                         "no such API: GET /news/latest, /quotes/{TICKER}, /fx/latest?base=USD"));
}

/* --- life cycle --------------------------------------------------------------- */

static int listen_on(const char *addr, char *bound, size_t blen, char *upath, size_t ulen,
                     char *errbuf, size_t errlen)
{
    int fd = -1;
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(addr + 5) >= sizeof sa.sun_path || addr[5] != '/') {
            snprintf(errbuf, errlen, "listen %s: expected unix:/absolute/path (short)", addr);
            return -1;
        }
        strcpy(sa.sun_path, addr + 5);
        unlink(sa.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
            snprintf(errbuf, errlen, "listen %s: %s", addr, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        snprintf(bound, blen, "%s", addr);
        snprintf(upath, ulen, "%s", addr + 5);
    } else {
        const char *colon = strrchr(addr, ':');
        char host[256];
        if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof host) {
            snprintf(errbuf, errlen, "listen %s: expected HOST:PORT or unix:/path", addr);
            return -1;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (*end != '\0' || port < 0 || port > 65535 ||
            inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
            snprintf(errbuf, errlen, "listen %s: expected an IPv4 address and a port", addr);
            return -1;
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        socklen_t sl = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
            snprintf(errbuf, errlen, "listen %s: %s", addr, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        snprintf(bound, blen, "%s:%u", host, ntohs(sa.sin_port));
    }
    evutil_make_socket_nonblocking(fd);
    return fd;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_sim *s = arg;
    event_base_loopbreak(s->base);
}

static void *sim_main(void *arg)
{
    struct hf_sim *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void destroy(struct hf_sim *s)
{
    while (s->held != NULL)
        held_free(s->held);
    if (s->http != NULL)
        evhttp_free(s->http);
    if (s->stop_ev != NULL)
        event_free(s->stop_ev);
    if (s->base != NULL)
        event_base_free(s->base);
    for (int i = 0; i < HF_SIM_APIS; i++) {
        if (s->has_bucket[i])
            hf_bucket_fini(&s->bucket[i]);
        if (s->has_quota[i])
            hf_quota_fini(&s->quota[i]);
    }
    if (s->unix_path[0] != '\0')
        unlink(s->unix_path);
    free(s);
}

hf_err hf_sim_start(const struct hf_sim_options *o, struct hf_sim **out, char *errbuf,
                    size_t errlen)
{
    *out = NULL;
    struct hf_sim *s = calloc(1, sizeof *s);
    if (s == NULL)
        return HF_ENOMEM;
    s->o = *o;
    evthread_use_pthreads(); /* stop comes from another thread */
    for (int i = 0; i < HF_SIM_APIS; i++) {
        struct hf_sim_limit l = o->limits[i];
        if (l.rate_count == 0 && l.quota_count == 0)
            l = (struct hf_sim_limit){.rate_count = 600, .rate_per_ms = 60000};
        if (l.rate_count > 0 &&
            hf_bucket_init(&s->bucket[i], l.rate_count, l.rate_per_ms, l.rate_count) == HF_OK)
            s->has_bucket[i] = true;
        if (l.quota_count > 0 &&
            hf_quota_init(&s->quota[i], l.quota_count, l.quota_per_ms) == HF_OK)
            s->has_quota[i] = true;
    }
    int fd = listen_on(o->listen ? o->listen : "127.0.0.1:9090", s->address, sizeof s->address,
                       s->unix_path, sizeof s->unix_path, errbuf, errlen);
    if (fd < 0) {
        destroy(s);
        return HF_CONFIG;
    }
    if ((s->base = event_base_new()) == NULL || (s->http = evhttp_new(s->base)) == NULL ||
        evhttp_accept_socket(s->http, fd) != 0 ||
        (s->stop_ev = event_new(s->base, -1, 0, stop_cb, s)) == NULL) {
        close(fd);
        destroy(s);
        snprintf(errbuf, errlen, "cannot start the simulator's HTTP server");
        return HF_ENOMEM;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_body_size(s->http, 65536);
    evhttp_set_max_headers_size(s->http, 65536);
    evhttp_set_timeout(s->http, 600);
    evhttp_set_gencb(s->http, handle, s);
    if (pthread_create(&s->thread, NULL, sim_main, s) != 0) {
        destroy(s);
        snprintf(errbuf, errlen, "cannot start the simulator's thread");
        return HF_ENOMEM;
    }
    s->running = true;
    *out = s;
    return HF_OK;
}

const char *hf_sim_address(const struct hf_sim *s)
{
    return s->address;
}

void hf_sim_stop(struct hf_sim **sp)
{
    struct hf_sim *s = *sp;
    if (s == NULL)
        return;
    if (s->running) {
        event_active(s->stop_ev, EV_READ, 0);
        pthread_join(s->thread, NULL);
    }
    destroy(s);
    *sp = NULL;
}
