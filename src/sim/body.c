/*
 * The simulated APIs' data: a pure function of (seed, wall clock ms), so a
 * test that knows both predicts every byte.  See docs/internals/sim.md for
 * the walk behind prices and rates.
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim_impl.h"

/* quotes move by the second, news every 3 minutes, fx once a minute */
const int hf_sim_max_age_s[HF_SIM_APIS] = {60, 15, 600};

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

/* o as compact JSON, o released; *status is status, or 0 when out of memory. */
static char *dump(json_t *o, int status, int *statusp)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    *statusp = s != NULL ? status : 0;
    return s;
}

/* An API's error body: {"error": code, "message": message}. */
static char *error_body(int status, const char *code, const char *message, int *statusp)
{
    return dump(json_pack("{s:s,s:s}", "error", code, "message", message), status, statusp);
}

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
        return error_body(404, "unknown_symbol",
                          "no such ticker (try AAPL, MSFT, GOOG, AMZN, NVDA, META, TSLA)", status);
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
    return dump(o, 200, status);
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
        return error_body(400, "invalid_base",
                          "unknown base currency (try USD, EUR, GBP, JPY, CHF, CAD, AUD, CNY)",
                          status);
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
    return dump(o, 200, status);
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
    return dump(o, 200, status);
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
    case HF_SIM_NEWS:
        return strcmp(path, "/news/latest") == 0 ? news_body(seed, now_ms, status) : NULL;
    case HF_SIM_QUOTES: {
        /* tickers are matched without regard to case, as most APIs do */
        size_t n = strncmp(path, "/quotes/", 8) == 0 ? strlen(path + 8) : 0;
        if (n == 0 || n >= sizeof buf)
            return NULL;
        for (size_t i = 0; i <= n; i++)
            buf[i] = (char)toupper((unsigned char)path[8 + i]);
        return quote_body(buf, seed, now_ms, status);
    }
    case HF_SIM_FX: {
        if (strcmp(path, "/fx/latest") != 0)
            return NULL;
        const char *base = query_get(query, "base", buf, sizeof buf);
        for (char *c = buf; base != NULL && *c != '\0'; c++)
            *c = (char)toupper((unsigned char)*c);
        return fx_body(base ? base : "USD", seed, now_ms, status);
    }
    default:
        return NULL;
    }
}
