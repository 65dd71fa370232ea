/*
 * Unit tests for src/admin/status.c and the registry's read API it uses:
 * hf_metric_value against /metrics' own numbers; the history's one-minute
 * buckets (time passed in: samples across minutes, an hour-old bucket
 * dropped, a reload's new registry followed by route name without a jump,
 * the oldest stale copy of a minute); and the HTML page drawn from a
 * hand-built document (escaping, a word for every state, 60 columns per
 * chart, nothing loaded from elsewhere).
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/status.h"
#include "core/buf.h"
#include "obs/metrics.h"

/* cmocka 1.1 prints integers in hex; these print decimal and the expression. */
#define assert_i64(actual, expected)                                                               \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            print_error("%s = %" PRId64 ", expected %" PRId64 "\n", #actual, a_, e_);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define assert_has(text, needle)                                                                   \
    do {                                                                                           \
        if (strstr((text), (needle)) == NULL) {                                                    \
            print_error("expected to find: %s\n", (needle));                                       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define assert_lacks(text, needle)                                                                 \
    do {                                                                                           \
        const char *at_ = strstr((text), (needle));                                                \
        if (at_ != NULL) {                                                                         \
            print_error("did not expect: %s\n  at: %.80s\n", (needle), at_);                       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* 2023-11-14T22:13:00Z: a minute boundary. */
#define T0 ((int64_t)1700000000000 / 60000 * 60000)
#define MIN ((int64_t)60000)

static size_t occurrences(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static struct hf_metrics *registry(const char *const *names, size_t n)
{
    struct hf_metrics *m = NULL;
    assert_int_equal(hf_metrics_create(names, n, &m), HF_OK);
    return m;
}

/* Element k of history["requests"|"upstream_errors"][series]. */
static int64_t at(const json_t *hour, const char *set, const char *series, size_t k)
{
    const json_t *a = json_object_get(json_object_get(hour, set), series);
    assert_true(json_is_array(a));
    assert_i64((int64_t)json_array_size(a), HF_STATUS_MINUTES);
    return (int64_t)json_integer_value(json_array_get(a, k));
}

/* The sum of every element of history[set][series]. */
static int64_t sum(const json_t *hour, const char *set, const char *series)
{
    int64_t s = 0;
    for (size_t k = 0; k < HF_STATUS_MINUTES; k++)
        s += at(hour, set, series, k);
    return s;
}

/* ---- the registry's read API ---- */

struct counter_arg {
    struct hf_metrics *m;
    int n;
};

static void *count_hits(void *p)
{
    struct counter_arg *a = p;
    for (int i = 0; i < a->n; i++)
        hf_metric_inc(a->m, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT);
    return NULL;
}

/* The value the /metrics text gives for series (name and labels). */
static uint64_t rendered(const struct hf_metrics *m, const char *series)
{
    struct hf_buf b;
    hf_buf_init(&b, 1 << 20);
    assert_int_equal(hf_metrics_render(m, &b), HF_OK);
    const char *p = strstr(b.ptr, series);
    assert_non_null(p);
    uint64_t v = strtoull(p + strlen(series) + 1, NULL, 10);
    hf_buf_fini(&b);
    return v;
}

static void test_metric_value(void **state)
{
    (void)state;
    const char *names[] = {"news", "quotes"};
    struct hf_metrics *m = NULL;
    /* two owned shards and the shared one: four threads cover them all */
    assert_int_equal(hf__metrics_create_shards(names, 2, 2, &m), HF_OK);
    assert_i64((int64_t)hf_metrics_route_count(m), 2);
    assert_string_equal(hf_metrics_route_name(m, 1), "quotes");
    assert_null(hf_metrics_route_name(m, 2));

    pthread_t t[4];
    struct counter_arg a = {m, 1000};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_hits, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    hf_metric_add(m, HF_M_UPSTREAM_REQUESTS_TOTAL, 0, HF_OUTCOME_HTTP_5XX, 7);
    hf_metric_observe_us(m, HF_M_REQUEST_DURATION, 0, HF_CACHE_MISS, 3000);
    hf_metric_observe_us(m, HF_M_REQUEST_DURATION, 0, HF_CACHE_MISS, 90000000); /* +Inf */
    hf_metric_set(m, HF_M_QUOTA_REMAINING, 0, 0, 42);

    assert_i64((int64_t)hf_metric_value(m, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT), 4000);
    assert_i64((int64_t)hf_metric_value(m, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT),
               (int64_t)rendered(m, "holdfast_requests_total{route=\"quotes\",cache=\"hit\"}"));
    assert_i64((int64_t)hf_metric_value(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT), 0);
    assert_i64((int64_t)hf_metric_value(m, HF_M_UPSTREAM_REQUESTS_TOTAL, 0, HF_OUTCOME_HTTP_5XX),
               7);
    /* a histogram reads as its count, +Inf included */
    assert_i64((int64_t)hf_metric_value(m, HF_M_REQUEST_DURATION, 0, HF_CACHE_MISS), 2);
    /* gauges and anything out of range read 0, without an assert */
    assert_i64((int64_t)hf_metric_value(m, HF_M_QUOTA_REMAINING, 0, 0), 0);
    assert_i64((int64_t)hf_metric_value(m, HF_M_REQUESTS_TOTAL, 2, HF_CACHE_HIT), 0);
    assert_i64((int64_t)hf_metric_value(m, HF_M_REQUESTS_TOTAL, 0, HF__CACHE_MAX), 0);
    assert_i64((int64_t)hf_metric_value(m, HF__M_MAX, 0, 0), 0);
    hf_metrics_destroy(&m);
}

/* ---- the history ---- */

static void test_history_minutes(void **state)
{
    (void)state;
    const char *names[] = {"news", "quotes"};
    struct hf_metrics *m = registry(names, 2);
    struct hf_status_history *h = NULL;
    assert_int_equal(hf_status_history_create(&h), HF_OK);

    /* minute 0: 3 hits counted before the first sample (a new route
     * counts its whole total) and one after */
    for (int i = 0; i < 3; i++)
        hf_metric_inc(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT);
    assert_int_equal(hf_status_history_sample(h, m, T0 + 2000), HF_OK);
    hf_metric_inc(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT);
    hf_metric_inc(m, HF_M_UPSTREAM_REQUESTS_TOTAL, 0, HF_OUTCOME_TIMEOUT);
    hf_metric_inc(m, HF_M_UPSTREAM_REQUESTS_TOTAL, 0, HF_OUTCOME_OK);
    assert_int_equal(hf_status_history_sample(h, m, T0 + 7000), HF_OK);
    /* minute 1: 2 misses and a stale; a sample with nothing new changes nothing */
    hf_metric_add(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_MISS, 2);
    hf_metric_inc(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_STALE);
    assert_int_equal(hf_status_history_sample(h, m, T0 + MIN + 1000), HF_OK);
    assert_int_equal(hf_status_history_sample(h, m, T0 + MIN + 6000), HF_OK);
    /* minute 3, after a silent minute 2 */
    hf_metric_add(m, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_ERROR, 5);
    hf_metric_add(m, HF_M_UPSTREAM_REQUESTS_TOTAL, 1, HF_OUTCOME_HTTP_5XX, 10);
    assert_int_equal(hf_status_history_sample(h, m, T0 + 3 * MIN + 59999), HF_OK);

    json_t *news = hf_status_history_json(h, "news", T0 + 3 * MIN + 59999);
    json_t *quotes = hf_status_history_json(h, "quotes", T0 + 3 * MIN + 59999);
    assert_non_null(news);
    assert_non_null(quotes);
    assert_i64(json_integer_value(json_object_get(news, "minutes")), HF_STATUS_MINUTES);
    /* the first of the 60 minutes: 56 minutes before T0 */
    assert_string_equal(json_string_value(json_object_get(news, "start")), "2023-11-14T21:17:00Z");
    assert_i64(at(news, "requests", "hit", 56), 4);
    assert_i64(at(news, "requests", "miss", 57), 2);
    assert_i64(at(news, "requests", "stale", 57), 1);
    assert_i64(at(news, "requests", "hit", 58), 0);
    assert_i64(sum(news, "requests", "hit"), 4);
    assert_i64(sum(news, "requests", "miss"), 2);
    assert_i64(at(news, "upstream_errors", "timeout", 56), 1);
    assert_null(json_object_get(json_object_get(news, "upstream_errors"), "ok"));
    assert_i64(at(quotes, "requests", "error", 59), 5);
    assert_i64(at(quotes, "upstream_errors", "http_5xx", 59), 10);
    assert_i64(sum(quotes, "requests", "error"), 5);
    /* hit ratio over the hour: 4 of 7 */
    assert_true(json_real_value(json_object_get(news, "hit_ratio")) > 0.57);
    assert_true(json_real_value(json_object_get(news, "hit_ratio")) < 0.572);
    json_decref(news);
    json_decref(quotes);

    /* a route the history never saw: all zeros */
    json_t *nope = hf_status_history_json(h, "nope", T0 + 3 * MIN);
    assert_non_null(nope);
    assert_i64(sum(nope, "requests", "hit"), 0);
    assert_true(json_is_null(json_object_get(nope, "hit_ratio")));
    json_decref(nope);

    hf_status_history_destroy(&h);
    assert_null(h);
    hf_status_history_destroy(&h); /* NULL: a no-op */
    hf_metrics_destroy(&m);
}

static void test_history_hour_old_dropped(void **state)
{
    (void)state;
    const char *names[] = {"news"};
    struct hf_metrics *m = registry(names, 1);
    struct hf_status_history *h = NULL;
    assert_int_equal(hf_status_history_create(&h), HF_OK);
    hf_metric_add(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT, 9);
    assert_int_equal(hf_status_history_sample(h, m, T0 + 30000), HF_OK);

    /* 59 minutes on, the bucket is the oldest of the hour */
    json_t *j = hf_status_history_json(h, "news", T0 + 59 * MIN + 30000);
    assert_i64(at(j, "requests", "hit", 0), 9);
    json_decref(j);
    /* an hour on, it is gone even before a sample reuses its slot */
    j = hf_status_history_json(h, "news", T0 + 60 * MIN);
    assert_i64(sum(j, "requests", "hit"), 0);
    json_decref(j);
    /* a sample an hour on reuses the slot: the old count is not added in */
    hf_metric_add(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT, 2);
    assert_int_equal(hf_status_history_sample(h, m, T0 + 60 * MIN + 1000), HF_OK);
    j = hf_status_history_json(h, "news", T0 + 60 * MIN + 1000);
    assert_i64(at(j, "requests", "hit", 59), 2);
    assert_i64(sum(j, "requests", "hit"), 2);
    json_decref(j);
    /* and two hours on, with samples skipped, nothing is left */
    j = hf_status_history_json(h, "news", T0 + 125 * MIN);
    assert_i64(sum(j, "requests", "hit"), 0);
    json_decref(j);
    hf_status_history_destroy(&h);
    hf_metrics_destroy(&m);
}

static void test_history_reload(void **state)
{
    (void)state;
    const char *before[] = {"news", "quotes"};
    const char *after[] = {"fx", "quotes"}; /* news removed, fx added, quotes moved */
    struct hf_metrics *a = registry(before, 2);
    struct hf_status_history *h = NULL;
    assert_int_equal(hf_status_history_create(&h), HF_OK);

    hf_metric_add(a, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT, 100);
    hf_metric_add(a, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_MISS, 7);
    assert_int_equal(hf_status_history_sample(h, a, T0 + 1000), HF_OK);
    hf_metric_add(a, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT, 5); /* before the reload's carry */

    /* the reload: a new registry with the old totals carried by name */
    struct hf_metrics *b = registry(after, 2);
    hf_metrics_carry(b, a);
    hf_metric_add(b, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT, 3);
    hf_metric_add(b, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT, 4);
    assert_int_equal(hf_status_history_sample(h, b, T0 + MIN + 1000), HF_OK);

    json_t *q = hf_status_history_json(h, "quotes", T0 + MIN + 1000);
    assert_i64(at(q, "requests", "hit", 58), 100);
    assert_i64(at(q, "requests", "hit", 59), 8); /* 5 + 3: no jump to 108 */
    json_decref(q);
    json_t *fx = hf_status_history_json(h, "fx", T0 + MIN + 1000);
    assert_i64(sum(fx, "requests", "hit"), 4);
    json_decref(fx);
    json_t *news = hf_status_history_json(h, "news", T0 + MIN + 1000);
    assert_i64(sum(news, "requests", "miss"), 0); /* gone with its route */
    json_decref(news);

    /* a registry whose quotes was not carried (removed, then added back):
     * its total is below the last seen, so it counts from 0 */
    struct hf_metrics *c = registry(after, 2);
    hf_metric_add(c, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT, 2);
    assert_int_equal(hf_status_history_sample(h, c, T0 + 2 * MIN), HF_OK);
    q = hf_status_history_json(h, "quotes", T0 + 2 * MIN);
    assert_i64(at(q, "requests", "hit", 57), 100);
    assert_i64(at(q, "requests", "hit", 58), 8);
    assert_i64(at(q, "requests", "hit", 59), 2);
    json_decref(q);

    hf_status_history_destroy(&h);
    hf_metrics_destroy(&a);
    hf_metrics_destroy(&b);
    hf_metrics_destroy(&c);
}

static void test_history_stale_age(void **state)
{
    (void)state;
    const char *names[] = {"news"};
    struct hf_metrics *m = registry(names, 1);
    struct hf_status_history *h = NULL;
    assert_int_equal(hf_status_history_create(&h), HF_OK);
    assert_int_equal(hf_status_history_sample(h, m, T0), HF_OK);
    assert_i64(hf_status_history_stale_age(h, "news", T0), -1);

    hf_status_history_note_stale(h, "news", T0 + 1000, 300);
    hf_status_history_note_stale(h, "news", T0 + 2000, 7200); /* the oldest of the minute */
    hf_status_history_note_stale(h, "news", T0 + 3000, 60);
    hf_status_history_note_stale(h, "nope", T0 + 3000, 60); /* unknown: ignored */
    assert_i64(hf_status_history_stale_age(h, "news", T0 + 5000), 7200);
    /* the minute after still shows it, the one after that no more */
    assert_i64(hf_status_history_stale_age(h, "news", T0 + MIN + 5000), 7200);
    assert_i64(hf_status_history_stale_age(h, "news", T0 + 2 * MIN), -1);
    /* a newer minute's own oldest wins over the minute before's when older */
    hf_status_history_note_stale(h, "news", T0 + MIN + 1000, 9000);
    assert_i64(hf_status_history_stale_age(h, "news", T0 + MIN + 5000), 9000);
    /* a sample does not wipe what was noted in its minute */
    assert_int_equal(hf_status_history_sample(h, m, T0 + MIN + 6000), HF_OK);
    assert_i64(hf_status_history_stale_age(h, "news", T0 + MIN + 6000), 9000);
    /* a note more than an hour before the last sample is dropped */
    assert_int_equal(hf_status_history_sample(h, m, T0 + 70 * MIN), HF_OK);
    hf_status_history_note_stale(h, "news", T0 + 5 * MIN, 1);
    assert_i64(hf_status_history_stale_age(h, "news", T0 + 70 * MIN), -1);
    hf_status_history_destroy(&h);
    hf_metrics_destroy(&m);
}

/* ---- the page ---- */

static json_t *hour_of(int64_t hits_per_min)
{
    json_t *req = json_object(), *err = json_object();
    const char *cache[] = {"hit", "miss", "stale", "error", "bypass"};
    const char *outcome[] = {"timeout",  "connect_error", "http_429",
                             "http_5xx", "http_4xx",      "error"};
    for (size_t s = 0; s < 5; s++) {
        json_t *a = json_array();
        for (int64_t k = 0; k < HF_STATUS_MINUTES; k++)
            json_array_append_new(a, json_integer(s == 0 ? hits_per_min : s == 2 ? k % 3 : 0));
        json_object_set_new(req, cache[s], a);
    }
    for (size_t s = 0; s < 6; s++) {
        json_t *a = json_array();
        for (int64_t k = 0; k < HF_STATUS_MINUTES; k++)
            json_array_append_new(a, json_integer(s == 3 && k == 59 ? 12 : 0));
        json_object_set_new(err, outcome[s], a);
    }
    return json_pack("{s:i,s:s,s:o,s:o,s:f}", "minutes", HF_STATUS_MINUTES, "start",
                     "2023-11-14T21:14:00Z", "requests", req, "upstream_errors", err, "hit_ratio",
                     0.5);
}

static json_t *route_doc(const char *state, const char *detail)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:s?,s:n,s:s,s:n,s:n,s:i,s:i,"
                     "s:{s:i,s:i,s:i,s:i,s:i,s:i},s:f,s:{s:i,s:i,s:i,s:i,s:i,s:i},s:o}",
                     "mode", "on-demand", "state", state, "detail", detail, "last_success",
                     "2023-11-14T22:10:00Z", "last_success_age_s", 180, "consecutive_failures", 3,
                     "degraded_since", strcmp(state, "ok") ? "2023-11-14T22:08:00Z" : NULL,
                     "degraded_for_s", "breaker", "closed", "paused_until", "paused_because",
                     "quota_left", 41, "oldest_copy_age_s", 7500, "requests", "hit", 60, "miss", 20,
                     "stale", 15, "error", 5, "bypass", 0, "total", 100, "hit_ratio", 0.6,
                     "upstream_errors", "timeout", 2, "connect_error", 0, "http_429", 0, "http_5xx",
                     12, "http_4xx", 0, "error", 0, "last_hour", hour_of(4));
}

static char *render(const json_t *doc)
{
    struct hf_buf b;
    hf_buf_init(&b, 16u << 20);
    assert_int_equal(hf_status_render_html(doc, &b), HF_OK);
    return hf_buf_take(&b, NULL);
}

static void test_render(void **state)
{
    (void)state;
    json_t *routes = json_object();
    json_object_set_new(routes, "<script>alert(1)</script>",
                        route_doc("degraded", "\"><img src=x onerror=alert(2)>"));
    json_object_set_new(routes, "news", route_doc("ok", "The API answers."));
    json_object_set_new(routes, "fx", route_doc("paused", "paused & 'quoted'"));
    json_object_set_new(routes, "quotes", route_doc("down", "breaker open"));
    json_t *doc = json_pack("{s:s,s:s,s:s,s:i,s:{s:s,s:s},s:{s:s,s:i,s:s},s:o}", "status",
                            "degraded", "version", "0.1.0", "time", "2023-11-14T22:13:20Z",
                            "uptime_s", 3725, "store", "memory", "up", "redis", "down", "fleet",
                            "instance", "host-1", "size", 3, "limits", "shared", "routes", routes);
    assert_non_null(doc);
    char *html = render(doc);

    /* a hostile route name and detail are text, never markup */
    assert_lacks(html, "<script");
    assert_lacks(html, "<img");
    assert_has(html, "data-route=\"&lt;script&gt;alert(1)&lt;/script&gt;\"");
    assert_has(html, "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;");
    assert_has(html, "paused &amp; &#39;quoted&#39;");

    /* each route in its state: a data-state for tests, a word for people */
    assert_has(html, "<header id=\"overall\" data-state=\"degraded\">");
    assert_has(html, "data-route=\"news\" data-state=\"ok\"");
    assert_has(html, "data-route=\"fx\" data-state=\"paused\"");
    assert_has(html, "data-route=\"quotes\" data-state=\"down\"");
    assert_has(html, "data-state=\"degraded\"><h2>");
    assert_has(html, "</span> ok</span>");
    assert_has(html, "</span> degraded</span>");
    assert_has(html, "</span> paused</span>");
    assert_has(html, "</span> down</span>");
    assert_has(html, "<li data-tier=\"redis\" data-state=\"down\">");
    assert_has(html, "<p id=\"fleet\">Fleet: instance host-1 of 3; limits shared</p>");
    assert_has(html, "<span id=\"uptime\">1 h 2 min</span>");

    /* the fields, same-day times shown without their date */
    assert_has(html, "<dd data-field=\"last_success\"><time datetime=\"2023-11-14T22:10:00Z\">"
                     "22:10:00 UTC</time>, 3 min ago</dd>");
    assert_has(html, "<dd data-field=\"oldest_copy\">2 h 5 min old</dd>");
    assert_has(html, "<dd data-field=\"quota_left\">41</dd>");
    assert_has(html, "<dd data-field=\"hit_ratio\">60 % of 100 requests since start; 50 % in the "
                     "last hour</dd>");
    assert_has(html, "<span data-error=\"timeout\">timeout: 2</span>, "
                     "<span data-error=\"http_5xx\">HTTP 5xx: 12</span>");

    /* two charts per route, 60 minutes each */
    assert_i64((int64_t)occurrences(html, "<svg "), 8);
    assert_i64((int64_t)occurrences(html, "<g data-minute="), 8 * HF_STATUS_MINUTES);
    assert_i64((int64_t)occurrences(html, "data-minute=\"0\""), 8);
    assert_i64((int64_t)occurrences(html, "data-minute=\"59\""), 8);
    assert_i64((int64_t)occurrences(html, "data-minute=\"60\""), 0);
    /* 4 hits every minute, a stale in two of three: 60 + 40 bars per chart */
    assert_i64((int64_t)occurrences(html, "data-series=\"hit\" data-value=\"4\""),
               4 * HF_STATUS_MINUTES);
    assert_i64((int64_t)occurrences(html, "data-series=\"stale\""), 4 * 40);
    assert_has(html, "<g data-minute=\"59\" data-total=\"12\"><title>this minute: 12 HTTP 5xx");
    assert_has(html, "<title>59 min ago: 4 hit</title>");

    /* nothing loaded from elsewhere, nothing run */
    assert_lacks(html, "http://");
    assert_lacks(html, "https://");
    assert_lacks(html, "src=\"");
    assert_lacks(html, "<link");
    assert_lacks(html, "url(");
    assert_lacks(html, "@import");
    assert_has(html, "<meta http-equiv=\"refresh\" content=\"5\">");
    assert_has(html, "<meta name=\"viewport\"");

    free(html);
    json_decref(doc);
}

/* A document missing members, or with members of the wrong type, still renders. */
static void test_render_sparse(void **state)
{
    (void)state;
    json_t *doc = json_object();
    char *html = render(doc);
    assert_has(html, "data-state=\"unknown\"");
    assert_has(html, "No routes are configured.");
    free(html);
    json_decref(doc);

    doc = json_pack("{s:i,s:{s:{s:i,s:[i],s:{s:s}}}}", "status", 3, "routes", "r1", "state", 1,
                    "breaker", 1, "last_hour", "requests", "x");
    html = render(doc);
    assert_has(html, "data-route=\"r1\" data-state=\"unknown\"");
    assert_has(html, "<dd data-field=\"breaker\">—</dd>");
    assert_i64((int64_t)occurrences(html, "<g data-minute="), 2 * HF_STATUS_MINUTES);
    free(html);
    json_decref(doc);

    /* a buffer too small: an error and the buffer as it was */
    struct hf_buf b;
    hf_buf_init(&b, 100);
    assert_int_equal(hf_buf_adds(&b, "before"), HF_OK);
    doc = json_object();
    assert_int_equal(hf_status_render_html(doc, &b), HF_BODY_TOO_LARGE);
    assert_string_equal(b.ptr, "before");
    hf_buf_fini(&b);
    json_decref(doc);
}

/* The history's own JSON drawn as the page draws it. */
static void test_render_history(void **state)
{
    (void)state;
    const char *names[] = {"news"};
    struct hf_metrics *m = registry(names, 1);
    struct hf_status_history *h = NULL;
    assert_int_equal(hf_status_history_create(&h), HF_OK);
    hf_metric_add(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT, 6);
    hf_metric_add(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_STALE, 2);
    assert_int_equal(hf_status_history_sample(h, m, T0 + 1000), HF_OK);
    json_t *doc = json_pack("{s:s,s:{s:{s:s,s:o}}}", "status", "ok", "routes", "news", "state",
                            "ok", "last_hour", hf_status_history_json(h, "news", T0 + 1000));
    char *html = render(doc);
    assert_has(html, "<g data-minute=\"59\" data-total=\"8\"><title>this minute: 6 hit, 2 "
                     "stale</title><rect class=\"c-hit\" data-series=\"hit\" data-value=\"6\" "
                     "x=\"591\" y=\"25.0\" width=\"8\" height=\"75.0\"/><rect class=\"c-stale\" "
                     "data-series=\"stale\" data-value=\"2\" x=\"591\" y=\"0.0\" width=\"8\" "
                     "height=\"25.0\"/></g>");
    assert_has(html, "(peak 8/min, 8 in the hour)");
    free(html);
    json_decref(doc);
    hf_status_history_destroy(&h);
    hf_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_value),
        cmocka_unit_test(test_history_minutes),
        cmocka_unit_test(test_history_hour_old_dropped),
        cmocka_unit_test(test_history_reload),
        cmocka_unit_test(test_history_stale_age),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_sparse),
        cmocka_unit_test(test_render_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
