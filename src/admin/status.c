/*
 * GET /status and /status.json; see status.h.  Three parts: the history
 * (per route a ring of one-minute buckets, fed by the deltas of the
 * registry's cumulative counters), the document (the engine's state and the
 * history as JSON) and the page (HTML drawn from the document alone, so it
 * shows nothing /status.json does not).  The admin loop's thread only.
 */
#include "admin/status.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <holdfast/version.h>

#include "cache/store_impl.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "obs/metrics.h"

#define MINUTE_MS 60000

/* ---- the history ------------------------------------------------------- */

struct minute {
    int64_t minute;                     /* since the epoch; -1: empty */
    uint64_t requests[HF__CACHE_MAX];   /* holdfast_requests_total, by cache */
    uint64_t attempts[HF__OUTCOME_MAX]; /* holdfast_upstream_requests_total, by outcome */
    int64_t stale_age_s;                /* the oldest stale copy served; -1: none */
};

struct route_history {
    char name[HF_METRICS_MAX_NAME + 1];
    uint64_t seen_requests[HF__CACHE_MAX]; /* the totals at the last sample */
    uint64_t seen_attempts[HF__OUTCOME_MAX];
    struct minute ring[HF_STATUS_MINUTES]; /* minute m lives in ring[m % HF_STATUS_MINUTES] */
};

struct hf_status_history {
    struct route_history *routes; /* in the order of the registry last sampled */
    size_t nroutes;
    int64_t last_minute; /* of the last sample; -1: none yet */
};

static int64_t minute_of(int64_t ms)
{
    return ms > 0 ? ms / MINUTE_MS : 0;
}

static void empty_minute(struct minute *b, int64_t minute)
{
    memset(b, 0, sizeof *b);
    b->minute = minute;
    b->stale_age_s = -1;
}

static void route_init(struct route_history *r, const char *name)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    for (size_t k = 0; k < HF_STATUS_MINUTES; k++)
        empty_minute(&r->ring[k], -1);
}

/* The bucket of minute, emptied first if it still holds an older one (an
 * hour old or more: the ring has gone round). */
static struct minute *bucket(struct route_history *r, int64_t minute)
{
    struct minute *b = &r->ring[minute % HF_STATUS_MINUTES];
    if (b->minute != minute)
        empty_minute(b, minute);
    return b;
}

/* Minute's bucket when the ring holds it, else NULL (nothing counted then). */
static const struct minute *minute_at(const struct route_history *r, int64_t minute)
{
    if (r == NULL || minute < 0)
        return NULL;
    const struct minute *b = &r->ring[minute % HF_STATUS_MINUTES];
    return b->minute == minute ? b : NULL;
}

/* The route called name, trying index hint first; NULL when unknown. */
static struct route_history *find(const struct hf_status_history *h, const char *name, size_t hint)
{
    if (hint < h->nroutes && strcmp(h->routes[hint].name, name) == 0)
        return &h->routes[hint];
    for (size_t i = 0; i < h->nroutes; i++) {
        if (strcmp(h->routes[i].name, name) == 0)
            return &h->routes[i];
    }
    return NULL;
}

hf_err hf_status_history_create(struct hf_status_history **out)
{
    struct hf_status_history *h = calloc(1, sizeof *h);
    if (h == NULL)
        return HF_ENOMEM;
    h->last_minute = -1;
    *out = h;
    return HF_OK;
}

void hf_status_history_destroy(struct hf_status_history **hp)
{
    struct hf_status_history *h = *hp;
    if (h == NULL)
        return;
    free(h->routes);
    free(h);
    *hp = NULL;
}

/* Lay the routes out in m's order, keeping each known name's history. */
static hf_err follow(struct hf_status_history *h, const struct hf_metrics *m)
{
    size_t n = hf_metrics_route_count(m);
    bool same = n == h->nroutes;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(h->routes[i].name, hf_metrics_route_name(m, i)) == 0;
    if (same)
        return HF_OK;
    struct route_history *routes = calloc(n > 0 ? n : 1, sizeof *routes);
    if (routes == NULL)
        return HF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *name = hf_metrics_route_name(m, i);
        const struct route_history *old = find(h, name, i);
        if (old != NULL)
            routes[i] = *old;
        else
            route_init(&routes[i], name);
    }
    free(h->routes);
    h->routes = routes;
    h->nroutes = n;
    return HF_OK;
}

/* What a counter gained since *seen; a total below *seen restarted from 0. */
static uint64_t gained(uint64_t total, uint64_t *seen)
{
    uint64_t d = total >= *seen ? total - *seen : total;
    *seen = total;
    return d;
}

hf_err hf_status_history_sample(struct hf_status_history *h, const struct hf_metrics *m,
                                int64_t now_ms)
{
    hf_err err = follow(h, m);
    if (err)
        return err;
    int64_t minute = minute_of(now_ms);
    for (size_t i = 0; i < h->nroutes; i++) {
        struct route_history *r = &h->routes[i];
        struct minute *b = bucket(r, minute);
        for (unsigned c = 0; c < HF__CACHE_MAX; c++)
            b->requests[c] +=
                gained(hf_metric_value(m, HF_M_REQUESTS_TOTAL, i, c), &r->seen_requests[c]);
        for (unsigned o = 0; o < HF__OUTCOME_MAX; o++)
            b->attempts[o] += gained(hf_metric_value(m, HF_M_UPSTREAM_REQUESTS_TOTAL, i, o),
                                     &r->seen_attempts[o]);
    }
    h->last_minute = minute;
    return HF_OK;
}

static void note_stale(struct hf_status_history *h, struct route_history *r, int64_t at_ms,
                       int64_t age_s)
{
    int64_t minute = minute_of(at_ms);
    if (r == NULL || age_s < 0 ||
        (h->last_minute >= 0 && minute <= h->last_minute - HF_STATUS_MINUTES))
        return;
    struct minute *b = bucket(r, minute);
    if (age_s > b->stale_age_s)
        b->stale_age_s = age_s;
}

void hf_status_history_note_stale(struct hf_status_history *h, const char *route, int64_t at_ms,
                                  int64_t age_s)
{
    note_stale(h, find(h, route, 0), at_ms, age_s);
}

int64_t hf_status_history_stale_age(const struct hf_status_history *h, const char *route,
                                    int64_t now_ms)
{
    const struct route_history *r = find(h, route, 0);
    int64_t minute = minute_of(now_ms), age = -1;
    for (int64_t k = minute - 1; k <= minute; k++) {
        const struct minute *b = minute_at(r, k);
        if (b != NULL && b->stale_age_s > age)
            age = b->stale_age_s;
    }
    return age;
}

hf_err hf_status_sample(struct hf_status_history *h, struct hf_engine *e, int64_t now_ms)
{
    if (e->metrics == NULL)
        return HF_OK;
    hf_err err = hf_status_history_sample(h, e->metrics, now_ms);
    if (err)
        return err;
    /* route i of the engine is route i of its registry, so the hint hits */
    for (size_t i = 0; i < e->nroutes; i++) {
        uint64_t v = atomic_load(&e->routes[i].state->stale_served);
        if (v != 0)
            note_stale(h, find(h, e->routes[i].cfg.name, i), (int64_t)(v >> 32) * MINUTE_MS,
                       (int64_t)(v & UINT32_MAX));
    }
    return HF_OK;
}

/* ---- the document ------------------------------------------------------ */

static json_t *count_json(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return json_null();
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

/* Seconds from ms to now; null for never. */
static json_t *age_json(int64_t ms, int64_t now_ms)
{
    if (ms <= 0)
        return json_null();
    return json_integer(now_ms > ms ? (now_ms - ms) / 1000 : 0);
}

/* part / whole to three decimals (0.823); null when whole is 0. */
static json_t *ratio_json(uint64_t part, uint64_t whole)
{
    if (whole == 0)
        return json_null();
    double r = (double)part / (double)whole;
    return json_real((double)(uint64_t)(r * 1000.0 + 0.5) / 1000.0);
}

static const char *const cache_names[HF__CACHE_MAX] = {
#define NAME(id, value, meaning) value,
    HF_M_CACHE_TABLE(NAME)
#undef NAME
};

static const char *const outcome_names[HF__OUTCOME_MAX] = {
#define NAME(id, value, meaning) value,
    HF_M_OUTCOME_TABLE(NAME)
#undef NAME
};

json_t *hf_status_history_json(const struct hf_status_history *h, const char *route, int64_t now_ms)
{
    const struct route_history *r = find(h, route, 0);
    int64_t first = minute_of(now_ms) - (HF_STATUS_MINUTES - 1);
    json_t *o = json_object(), *req = json_object(), *err = json_object();
    uint64_t hits = 0, total = 0;
    if (o == NULL || req == NULL || err == NULL)
        goto fail;
    json_object_set_new(o, "minutes", json_integer(HF_STATUS_MINUTES));
    json_object_set_new(o, "start", time_json(first * MINUTE_MS));
    if (json_object_set(o, "requests", req) != 0 || json_object_set(o, "upstream_errors", err) != 0)
        goto fail;
    for (unsigned c = 0; c < HF__CACHE_MAX; c++) {
        json_t *a = json_array();
        if (a == NULL || json_object_set_new(req, cache_names[c], a) != 0)
            goto fail;
        for (int64_t k = 0; k < HF_STATUS_MINUTES; k++) {
            const struct minute *b = minute_at(r, first + k);
            uint64_t v = b != NULL ? b->requests[c] : 0;
            total += v;
            hits += c == HF_CACHE_HIT ? v : 0;
            if (json_array_append_new(a, count_json(v)) != 0)
                goto fail;
        }
    }
    for (unsigned oc = 0; oc < HF__OUTCOME_MAX; oc++) {
        if (oc == HF_OUTCOME_OK)
            continue;
        json_t *a = json_array();
        if (a == NULL || json_object_set_new(err, outcome_names[oc], a) != 0)
            goto fail;
        for (int64_t k = 0; k < HF_STATUS_MINUTES; k++) {
            const struct minute *b = minute_at(r, first + k);
            if (json_array_append_new(a, count_json(b != NULL ? b->attempts[oc] : 0)) != 0)
                goto fail;
        }
    }
    json_object_set_new(o, "hit_ratio", ratio_json(hits, total));
    json_decref(req);
    json_decref(err);
    return o;
fail:
    json_decref(req);
    json_decref(err);
    json_decref(o);
    return NULL;
}

bool hf_status_shared_up(struct hf_engine *e)
{
    return hf__store_up(e->shared) && (e->fleet == NULL || hf_fleet_up(e->fleet));
}

const char *hf_status_overall(struct hf_engine *e, size_t down, size_t degraded, json_t *tiers)
{
    const char *overall = e->nroutes > 0 && down == e->nroutes ? "down"
                          : down + degraded > 0                ? "degraded"
                                                               : "ok";
    json_object_set_new(tiers, "memory", json_string("up"));
    if (e->shared != NULL) {
        bool up = hf_status_shared_up(e);
        json_object_set_new(tiers, e->shared_redis ? "redis" : "memcached",
                            json_string(up ? "up" : "down"));
        if (!up && strcmp(overall, "ok") == 0)
            overall = "degraded"; /* requests go around it */
    }
    if (e->disk != NULL)
        json_object_set_new(tiers, "sqlite", json_string("up"));
    return overall;
}

/* One sentence for a person, by state.  pause: why the API paused the
 * route, when it did. */
static json_t *detail_json(const char *state, struct hf_route_state *st, bool api_paused,
                           enum hf_pause_reason pause)
{
    char buf[200];
    if (strcmp(state, "down") == 0)
        return json_string("The circuit breaker is open: holdfast does not call the API for "
                           "now; clients get stale copies or errors.");
    if (strcmp(state, "paused") == 0) {
        snprintf(buf, sizeof buf,
                 "Calls to the API are paused (%s); clients get stored copies or errors.",
                 !api_paused                      ? "the route's quota is spent"
                 : pause == HF_PAUSE_QUOTA_HEADER ? "the API says its quota is spent"
                                                  : "the API's rate limit");
        return json_string(buf);
    }
    if (strcmp(state, "degraded") == 0) {
        int n = atomic_load(&st->consecutive_failures);
        snprintf(buf, sizeof buf,
                 "The API is failing (%d failure%s in a row); clients get stale copies or "
                 "errors.",
                 n, n == 1 ? "" : "s");
        return json_string(buf);
    }
    return json_string("The API answers.");
}

static json_t *route_json(struct hf_engine *e, const struct hf_route *r,
                          const struct hf_status_history *h, int64_t now, int64_t mono)
{
    struct hf_route_state *st = r->state;
    struct hf_metrics *m = e->metrics;
    json_t *o = json_object(), *req = json_object(), *err = json_object();
    if (o == NULL || req == NULL || err == NULL) {
        json_decref(o);
        json_decref(req);
        json_decref(err);
        return NULL;
    }
    const char *state = hf_route_state_name(r, now);
    int64_t last_ok = atomic_load(&st->last_success_ms);
    int64_t since = atomic_load(&st->degraded_since_ms);
    int64_t until = 0;
    enum hf_pause_reason pr = HF_PAUSE_NONE;
    bool paused = hf_pause_active(&st->pause, now, &until, &pr);
    const char *because = paused ? hf_pause_reason_label(pr) : NULL;
    json_object_set_new(o, "mode", json_string(r->background ? "background" : "on-demand"));
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "detail", detail_json(state, st, paused, pr));
    json_object_set_new(o, "last_success", time_json(last_ok));
    json_object_set_new(o, "last_success_age_s", age_json(last_ok, now));
    json_object_set_new(o, "consecutive_failures",
                        json_integer(atomic_load(&st->consecutive_failures)));
    json_object_set_new(o, "degraded_since", time_json(since));
    json_object_set_new(o, "degraded_for_s", age_json(since, now));
    json_object_set_new(o, "breaker",
                        json_string(hf_breaker_state_label(hf_breaker_state(&st->breaker, mono))));
    json_object_set_new(o, "paused_until", paused ? time_json(until) : json_null());
    json_object_set_new(o, "paused_because", because ? json_string(because) : json_null());
    int64_t left = hf_route_quota_left(e, r, now);
    json_object_set_new(o, "quota_left", left >= 0 ? json_integer(left) : json_null());

    /* Background routes: the oldest copy the last run left, aged since (as
     * /health's refresh.oldest_age_s); on-demand routes, and background
     * ones before their first run: the oldest stale copy served lately. */
    int64_t oldest = r->background ? atomic_load(&st->refresh.oldest_stored_ms) : 0;
    int64_t age = oldest > 0 ? (now > oldest ? (now - oldest) / 1000 : 0)
                             : hf_status_history_stale_age(h, r->cfg.name, now);
    json_object_set_new(o, "oldest_copy_age_s", age >= 0 ? json_integer(age) : json_null());

    uint64_t total = 0, hits = 0;
    for (unsigned c = 0; m != NULL && c < HF__CACHE_MAX; c++) {
        uint64_t v = hf_metric_value(m, HF_M_REQUESTS_TOTAL, r->index, c);
        total += v;
        hits += c == HF_CACHE_HIT ? v : 0;
        json_object_set_new(req, cache_names[c], count_json(v));
    }
    json_object_set_new(req, "total", count_json(total));
    for (unsigned oc = 0; m != NULL && oc < HF__OUTCOME_MAX; oc++) {
        if (oc != HF_OUTCOME_OK)
            json_object_set_new(
                err, outcome_names[oc],
                count_json(hf_metric_value(m, HF_M_UPSTREAM_REQUESTS_TOTAL, r->index, oc)));
    }
    json_object_set_new(o, "requests", req);
    json_object_set_new(o, "hit_ratio", ratio_json(hits, total));
    json_object_set_new(o, "upstream_errors", err);
    json_object_set_new(o, "last_hour", hf_status_history_json(h, r->cfg.name, now));
    return o;
}

json_t *hf_status_collect(struct hf_engine *e, struct hf_status_history *h, int64_t started_ms,
                          int64_t now_ms)
{
    (void)hf_status_sample(h, e, now_ms); /* failing, the history is a sample behind */
    int64_t mono = hf_clock_mono_ms();
    json_t *doc = json_object(), *routes = json_object(), *tiers = json_object();
    if (doc == NULL || routes == NULL || tiers == NULL) {
        json_decref(doc);
        json_decref(routes);
        json_decref(tiers);
        return NULL;
    }
    size_t down = 0, degraded = 0;
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct hf_route *r = &e->routes[i];
        json_t *o = route_json(e, r, h, now_ms, mono);
        const char *state = json_string_value(json_object_get(o, "state"));
        if (state != NULL && strcmp(state, "down") == 0)
            down++;
        else if (state == NULL || strcmp(state, "ok") != 0)
            degraded++;
        json_object_set_new(routes, r->cfg.name, o != NULL ? o : json_null());
    }
    const char *overall = hf_status_overall(e, down, degraded, tiers);
    json_object_set_new(doc, "status", json_string(overall));
    json_object_set_new(doc, "version", json_string(hf_version()));
    json_object_set_new(doc, "time", time_json(now_ms));
    json_object_set_new(
        doc, "uptime_s",
        json_integer(started_ms > 0 && now_ms > started_ms ? (now_ms - started_ms) / 1000 : 0));
    json_object_set_new(doc, "store", tiers);
    if (e->fleet != NULL) {
        bool up = hf_fleet_up(e->fleet);
        json_object_set_new(doc, "fleet",
                            json_pack("{s:s,s:i,s:s}", "instance", hf_fleet_instance(e->fleet),
                                      "size", e->fleet_size, "limits",
                                      up ? "shared" : "local share (Redis is away)"));
    }
    json_object_set_new(doc, "routes", routes);
    return doc;
}

/* ---- the page ---------------------------------------------------------- */

/* A writer with a sticky error: after the first failure it writes nothing. */
struct out {
    struct hf_buf *b;
    hf_err err;
};

static void put_n(struct out *o, const char *s, size_t n)
{
    if (o->err == HF_OK && n > 0)
        o->err = hf_buf_add(o->b, s, n);
}

static void put(struct out *o, const char *s)
{
    put_n(o, s, strlen(s));
}

/* Short fixed formats with numbers; never a string from the document. */
static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (o->err == HF_OK)
            o->err = HF_EINVAL;
        return;
    }
    put_n(o, tmp, (size_t)n);
}

/* Text or an attribute value: every string from the document goes here. */
static void put_esc(struct out *o, const char *s)
{
    const char *run = s;
    for (; *s != '\0'; s++) {
        const char *esc;
        switch (*s) {
        case '&':
            esc = "&amp;";
            break;
        case '<':
            esc = "&lt;";
            break;
        case '>':
            esc = "&gt;";
            break;
        case '"':
            esc = "&quot;";
            break;
        case '\'':
            esc = "&#39;";
            break;
        default:
            continue;
        }
        put_n(o, run, (size_t)(s - run));
        put(o, esc);
        run = s + 1;
    }
    put_n(o, run, (size_t)(s - run));
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool int_of(const json_t *o, const char *key, int64_t *v)
{
    const json_t *j = json_object_get(o, key);
    if (!json_is_integer(j))
        return false;
    *v = (int64_t)json_integer_value(j);
    return true;
}

/* "45 s", "3 min", "2 h 5 min", "3 d 4 h" */
static void put_duration(struct out *o, int64_t s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        putf(o, "%" PRId64 " s", s);
    else if (s < 3600)
        putf(o, "%" PRId64 " min", s / 60);
    else if (s < 48 * 3600)
        putf(o, "%" PRId64 " h %" PRId64 " min", s / 3600, s % 3600 / 60);
    else
        putf(o, "%" PRId64 " d %" PRId64 " h", s / 86400, s % 86400 / 3600);
}

static bool rfc3339(const char *t)
{
    return t != NULL && strlen(t) == 20 && t[10] == 'T' && t[19] == 'Z';
}

/* An RFC 3339 time as "14:02:11 UTC", with its date when not today's. */
static void put_time(struct out *o, const char *t, const char *today)
{
    if (!rfc3339(t)) {
        put_esc(o, t != NULL ? t : "—");
        return;
    }
    put(o, "<time datetime=\"");
    put_esc(o, t);
    put(o, "\">");
    char shown[32];
    if (rfc3339(today) && strncmp(t, today, 10) == 0)
        snprintf(shown, sizeof shown, "%.8s UTC", t + 11);
    else
        snprintf(shown, sizeof shown, "%.10s %.5s UTC", t, t + 11);
    put_esc(o, shown);
    put(o, "</time>");
}

/* "14:02:11 UTC, 3 min ago", or never when the time is not there. */
static void put_when(struct out *o, const json_t *r, const char *key, const char *age_key,
                     const char *today, const char *never)
{
    const char *t = str_of(r, key);
    int64_t age;
    if (t == NULL) {
        put(o, never);
        return;
    }
    put_time(o, t, today);
    if (int_of(r, age_key, &age)) {
        put(o, ", ");
        put_duration(o, age);
        put(o, " ago");
    }
}

struct state_look {
    const char *state;
    const char *cls;  /* the colour */
    const char *mark; /* beside the word, never instead of it */
};

static const struct state_look looks[] = {
    {"ok", "ok", "✓"},         {"up", "ok", "✓"},     {"degraded", "degraded", "▲"},
    {"paused", "paused", "‖"}, {"down", "down", "✕"},
};

/* A state as mark, word and colour; an unknown one as itself, in grey.
 * id: the badge's id, else it is marked data-field="state". */
static void put_badge(struct out *o, const char *state, const char *id)
{
    const char *mark = "?", *cls = "unknown";
    for (size_t i = 0; state != NULL && i < sizeof looks / sizeof looks[0]; i++) {
        if (strcmp(state, looks[i].state) == 0) {
            mark = looks[i].mark;
            cls = looks[i].cls;
        }
    }
    put(o, "<span class=\"badge s-");
    put(o, cls);
    put(o, id != NULL ? "\" id=\"" : "\" data-field=\"state");
    put(o, id != NULL ? id : "");
    put(o, "\"><span aria-hidden=\"true\">");
    put(o, mark);
    put(o, "</span> ");
    put_esc(o, state != NULL ? state : "unknown");
    put(o, "</span>");
}

struct series {
    const char *key;   /* in the document */
    const char *label; /* for a person */
};

static const struct series cache_series[] = {
    {"hit", "hit"}, {"miss", "miss"}, {"stale", "stale"}, {"error", "error"}, {"bypass", "bypass"},
};

static const struct series error_series[] = {
    {"timeout", "timeout"},   {"connect_error", "connect error"}, {"http_429", "HTTP 429"},
    {"http_5xx", "HTTP 5xx"}, {"http_4xx", "HTTP 4xx"},           {"error", "other error"},
};

#define NSERIES(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_SERIES 8
#define CHART_W 600 /* viewBox units: a column of 10 per minute */
#define CHART_H 100

static uint64_t point(const json_t *arr, size_t k)
{
    const json_t *v = json_array_get(arr, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/*
 * A stacked bar chart of the last hour from the document's arrays: a group
 * per minute (data-minute 0 is the oldest, 59 this one) whatever the arrays
 * hold, a rect per non-zero series, a <title> per minute with the numbers.
 * cls: the class prefix of the series' colours.
 */
static void put_chart(struct out *o, const char *id, const char *title, const json_t *set,
                      const struct series *ser, size_t nser, char cls)
{
    const json_t *arr[MAX_SERIES] = {0};
    uint64_t col[HF_STATUS_MINUTES] = {0}, peak = 0, sum = 0;
    nser = nser < MAX_SERIES ? nser : MAX_SERIES;
    for (size_t s = 0; s < nser; s++)
        arr[s] = json_object_get(set, ser[s].key);
    for (size_t k = 0; k < HF_STATUS_MINUTES; k++) {
        for (size_t s = 0; s < nser; s++)
            col[k] += point(arr[s], k);
        peak = col[k] > peak ? col[k] : peak;
        sum += col[k];
    }
    put(o, "<figure class=\"chart\" data-chart=\"");
    put(o, id);
    put(o, "\"><figcaption>");
    put(o, title);
    if (peak > 0)
        putf(o, " <span class=\"peak\">(peak %" PRIu64 "/min, %" PRIu64 " in the hour)</span>",
             peak, sum);
    else
        put(o, " <span class=\"peak\">(none in the hour)</span>");
    putf(o,
         "</figcaption><svg viewBox=\"0 0 %d %d\" preserveAspectRatio=\"none\" role=\"img\" "
         "aria-label=\"",
         CHART_W, CHART_H);
    put(o, title);
    put(o, ", last hour\">");
    for (size_t k = 0; k < HF_STATUS_MINUTES; k++) {
        size_t ago = HF_STATUS_MINUTES - 1 - k;
        putf(o, "<g data-minute=\"%zu\" data-total=\"%" PRIu64 "\"><title>", k, col[k]);
        if (ago == 0)
            put(o, "this minute: ");
        else
            putf(o, "%zu min ago: ", ago);
        const char *sep = "";
        for (size_t s = 0; s < nser; s++) {
            uint64_t v = point(arr[s], k);
            if (v == 0)
                continue;
            putf(o, "%s%" PRIu64 " ", sep, v);
            put(o, ser[s].label);
            sep = ", ";
        }
        put(o, col[k] == 0 ? "none</title>" : "</title>");
        double y = CHART_H;
        for (size_t s = 0; s < nser && peak > 0; s++) {
            uint64_t v = point(arr[s], k);
            if (v == 0)
                continue;
            double hgt = (double)v * CHART_H / (double)peak;
            hgt = hgt < 1.0 ? 1.0 : hgt; /* a single request still shows */
            hgt = hgt > y ? y : hgt;
            y -= hgt;
            putf(o,
                 "<rect class=\"%c-%s\" data-series=\"%s\" data-value=\"%" PRIu64
                 "\" x=\"%zu\" y=\"%.1f\" width=\"8\" height=\"%.1f\"/>",
                 cls, ser[s].key, ser[s].key, v, k * (CHART_W / HF_STATUS_MINUTES) + 1, y, hgt);
        }
        put(o, "</g>");
    }
    put(o, "</svg><div class=\"axis\"><span>60 min ago</span><span>now</span></div>"
           "<ul class=\"legend\">");
    for (size_t s = 0; s < nser; s++) {
        putf(o, "<li><span class=\"sw %c-%s\"></span>", cls, ser[s].key);
        put(o, ser[s].label);
        put(o, "</li>");
    }
    put(o, "</ul></figure>");
}

static void put_field(struct out *o, const char *field, const char *label)
{
    put(o, "<dt>");
    put(o, label);
    put(o, "</dt><dd data-field=\"");
    put(o, field);
    put(o, "\">");
}

static void put_route(struct out *o, const char *name, const json_t *r, const char *today)
{
    const char *state = str_of(r, "state"), *s;
    int64_t v;
    put(o, "<section class=\"route\" id=\"route-");
    put_esc(o, name);
    put(o, "\" data-route=\"");
    put_esc(o, name);
    put(o, "\" data-state=\"");
    put_esc(o, state != NULL ? state : "unknown");
    put(o, "\"><h2><span class=\"name\">");
    put_esc(o, name);
    put(o, "</span> ");
    put_badge(o, state, NULL);
    put(o, "</h2>");
    if ((s = str_of(r, "detail")) != NULL) {
        put(o, "<p class=\"detail\" data-field=\"detail\">");
        put_esc(o, s);
        put(o, "</p>");
    }
    put(o, "<dl>");

    put_field(o, "last_success", "Last success");
    put_when(o, r, "last_success", "last_success_age_s", today, "never");
    put(o, "</dd>");

    put_field(o, "oldest_copy", "Oldest copy served");
    if (int_of(r, "oldest_copy_age_s", &v)) {
        put_duration(o, v);
        put(o, " old");
    } else {
        put(o, "—");
    }
    put(o, "</dd>");

    put_field(o, "breaker", "Breaker");
    put_esc(o, (s = str_of(r, "breaker")) != NULL ? s : "—");
    put(o, "</dd>");

    if ((s = str_of(r, "paused_until")) != NULL) {
        put_field(o, "paused_until", "Paused until");
        put_time(o, s, today);
        if ((s = str_of(r, "paused_because")) != NULL) {
            put(o, " (");
            put_esc(o, s);
            put(o, ")");
        }
        put(o, "</dd>");
    }

    put_field(o, "quota_left", "Quota left");
    if (int_of(r, "quota_left", &v))
        putf(o, "%" PRId64, v);
    else
        put(o, "no quota");
    put(o, "</dd>");

    put_field(o, "hit_ratio", "Hit ratio");
    const json_t *hr = json_object_get(r, "hit_ratio");
    if (json_is_number(hr))
        putf(o, "%.0f %%", json_number_value(hr) * 100.0);
    else
        put(o, "—");
    if (int_of(json_object_get(r, "requests"), "total", &v))
        putf(o, " of %" PRId64 " request%s since start", v, v == 1 ? "" : "s");
    const json_t *hour = json_object_get(r, "last_hour");
    hr = json_object_get(hour, "hit_ratio");
    if (json_is_number(hr))
        putf(o, "; %.0f %% in the last hour", json_number_value(hr) * 100.0);
    put(o, "</dd>");

    put_field(o, "errors", "Upstream errors");
    const json_t *errs = json_object_get(r, "upstream_errors");
    const char *sep = "";
    for (size_t k = 0; k < NSERIES(error_series); k++) {
        if (int_of(errs, error_series[k].key, &v) && v > 0) {
            putf(o, "%s<span data-error=\"%s\">", sep, error_series[k].key);
            put(o, error_series[k].label);
            putf(o, ": %" PRId64 "</span>", v);
            sep = ", ";
        }
    }
    put(o, *sep == '\0' ? "none" : " (since start)");
    put(o, "</dd>");

    put_field(o, "degraded_since", "Degraded since");
    put_when(o, r, "degraded_since", "degraded_for_s", today, "—");
    put(o, "</dd></dl>");

    put_chart(o, "requests", "Requests per minute", json_object_get(hour, "requests"), cache_series,
              NSERIES(cache_series), 'c');
    put_chart(o, "upstream_errors", "Upstream errors per minute",
              json_object_get(hour, "upstream_errors"), error_series, NSERIES(error_series), 'e');
    put(o, "</section>\n");
}

/* System fonts, one column under 760 px; colour always beside a word. */
static const char style[] =
    "body{font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif;"
    "margin:0;padding:12px;background:#f6f7f9;color:#1f2328}"
    "header,section{background:#fff;border:1px solid #d0d7de;border-radius:8px;"
    "padding:12px 14px;margin:0 0 12px;min-width:0}"
    "h1{font-size:1.3rem;margin:0 0 4px}h2{font-size:1.1rem;margin:0 0 4px}"
    ".name{overflow-wrap:anywhere}p{margin:4px 0}"
    ".meta,.detail,figcaption,.axis,.legend{color:#57606a}"
    ".badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:.85rem;"
    "font-weight:600;border:1px solid;white-space:nowrap}"
    ".s-ok{color:#116329;background:#dafbe1;border-color:#4ac26b}"
    ".s-degraded{color:#7d4e00;background:#fff8c5;border-color:#d4a72c}"
    ".s-paused{color:#0a3069;background:#ddf4ff;border-color:#54aeff}"
    ".s-down{color:#82071e;background:#ffebe9;border-color:#ff8182}"
    ".s-unknown{color:#1f2328;background:#eaeef2;border-color:#8c959f}"
    "#store{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 8px}"
    "main{display:grid;grid-template-columns:1fr;gap:0 12px}"
    "@media (min-width:760px){main{grid-template-columns:repeat(auto-fill,minmax(360px,1fr))}}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0}"
    "dt{color:#57606a}dd{margin:0;overflow-wrap:anywhere}"
    "figure{margin:10px 0 0}figcaption{font-size:.85rem}"
    "svg{display:block;width:100%;height:64px;background:#f6f8fa;"
    "border-bottom:1px solid #8c959f}"
    ".axis{display:flex;justify-content:space-between;font-size:.75rem}"
    ".legend{list-style:none;padding:0;margin:2px 0 0;display:flex;flex-wrap:wrap;"
    "gap:0 10px;font-size:.8rem}"
    ".sw{display:inline-block;width:.8em;height:.8em;margin-right:4px;vertical-align:-1px}"
    ".c-hit{fill:#2da44e;background:#2da44e}.c-miss{fill:#0969da;background:#0969da}"
    ".c-stale{fill:#d4a72c;background:#d4a72c}.c-error{fill:#cf222e;background:#cf222e}"
    ".c-bypass{fill:#8c959f;background:#8c959f}.e-timeout{fill:#bc4c00;background:#bc4c00}"
    ".e-connect_error{fill:#8250df;background:#8250df}"
    ".e-http_429{fill:#0969da;background:#0969da}.e-http_5xx{fill:#cf222e;background:#cf222e}"
    ".e-http_4xx{fill:#d4a72c;background:#d4a72c}.e-error{fill:#57606a;background:#57606a}"
    "footer{font-size:.8rem;color:#57606a}";

hf_err hf_status_render_html(const json_t *doc, struct hf_buf *out)
{
    struct out o = {out, HF_OK};
    size_t start = out->len;
    const char *status = str_of(doc, "status"), *s;
    const char *today = str_of(doc, "time");
    const char *key;
    json_t *val;
    int64_t v;
    put(&o, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"refresh\" content=\"5\"><title>holdfast: ");
    put_esc(&o, status != NULL ? status : "unknown");
    put(&o, "</title><style>");
    put(&o, style);
    put(&o, "</style></head><body>\n<header id=\"overall\" data-state=\"");
    put_esc(&o, status != NULL ? status : "unknown");
    put(&o, "\"><h1>holdfast ");
    put_badge(&o, status, "overall-state");
    put(&o, "</h1><p class=\"meta\">");
    if ((s = str_of(doc, "version")) != NULL) {
        put(&o, "version <span id=\"version\">");
        put_esc(&o, s);
        put(&o, "</span>");
    }
    if (int_of(doc, "uptime_s", &v)) {
        put(&o, " · up <span id=\"uptime\">");
        put_duration(&o, v);
        put(&o, "</span>");
    }
    if (today != NULL) {
        put(&o, " · as of ");
        put_time(&o, today, today);
    }
    put(&o, "</p><ul id=\"store\">");
    json_object_foreach(json_object_get(doc, "store"), key, val)
    {
        const char *up = json_string_value(val);
        put(&o, "<li data-tier=\"");
        put_esc(&o, key);
        put(&o, "\" data-state=\"");
        put_esc(&o, up != NULL ? up : "unknown");
        put(&o, "\">");
        put_esc(&o, key);
        put(&o, " ");
        put_badge(&o, up, NULL);
        put(&o, "</li>");
    }
    put(&o, "</ul>");
    const json_t *fleet = json_object_get(doc, "fleet");
    if (json_is_object(fleet)) {
        put(&o, "<p id=\"fleet\">Fleet: instance ");
        put_esc(&o, (s = str_of(fleet, "instance")) != NULL ? s : "—");
        if (int_of(fleet, "size", &v))
            putf(&o, " of %" PRId64, v);
        put(&o, "; limits ");
        put_esc(&o, (s = str_of(fleet, "limits")) != NULL ? s : "—");
        put(&o, "</p>");
    }
    put(&o, "</header>\n<main>\n");
    /* the document's order: the configuration's */
    const json_t *routes = json_object_get(doc, "routes");
    json_object_foreach((json_t *)routes, key, val)
    {
        put_route(&o, key, val, today);
    }
    if (json_object_size(routes) == 0)
        put(&o, "<p id=\"no-routes\">No routes are configured.</p>");
    put(&o, "</main>\n<footer>Refreshes every 5 s. Times are UTC. The same data: "
            "<a href=\"/status.json\">/status.json</a>; counters: "
            "<a href=\"/metrics\">/metrics</a>.</footer>\n</body></html>\n");
    if (o.err && out->ptr != NULL) {
        out->len = start;
        out->ptr[start] = '\0';
    }
    return o.err;
}
