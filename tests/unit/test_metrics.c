/*
 * Unit tests for src/obs/metrics.c: the exact exposition of a two-route
 * registry, exact totals from threads counting into owned and shared
 * shards (and handing shards on), cumulative histogram buckets with their
 * _sum and _count, label escaping, the hf_err -> outcome mapping, carrying
 * values over a reload, and docs/metrics.md kept in step with the table.
 * `test_metrics --write-doc docs/metrics.md` regenerates that file.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

static const char *argv0 = "test_metrics";

/* Compare two texts; on a difference print the first differing line of each. */
static void assert_text(const char *actual, const char *expected)
{
    if (strcmp(actual, expected) == 0)
        return;
    if (getenv("HF_TEST_DUMP") != NULL)
        fputs(actual, stderr);
    size_t line = 1, i = 0, bol = 0;
    while (actual[i] != '\0' && actual[i] == expected[i]) {
        if (actual[i] == '\n') {
            line++;
            bol = i + 1;
        }
        i++;
    }
    int alen = (int)strcspn(actual + bol, "\n"), elen = (int)strcspn(expected + bol, "\n");
    print_error("texts differ at line %zu:\n  actual:   %.*s\n  expected: %.*s\n", line, alen,
                actual + bol, elen, expected + bol);
    fail();
}

static char *render(const struct hf_metrics *m)
{
    struct hf_buf b;
    hf_buf_init(&b, 1 << 20);
    assert_int_equal(hf_metrics_render(m, &b), HF_OK);
    return hf_buf_take(&b, NULL);
}

/* The value of the series written exactly as `series` (name and labels). */
static uint64_t value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; *p != '\0'; p += strcspn(p, "\n") + 1) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
        if (p[strcspn(p, "\n")] == '\0')
            break;
    }
    print_error("no series %s\n", series);
    fail();
    return 0;
}

static const char *const two_routes[] = {"news", "weather"};

static void test_render_exact(void **state)
{
    (void)state;
    struct hf_metrics *m = NULL;
    assert_int_equal(hf_metrics_create(two_routes, 2, &m), HF_OK);
    hf_metrics_show_tier(m, HF_TIER_SQLITE);
    hf_metric_inc(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT);
    hf_metric_add(m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT, 1);
    hf_metric_add(m, HF_M_UPSTREAM_REQUESTS_TOTAL, 1, HF_OUTCOME_HTTP_5XX, 3);
    hf_metric_inc(m, HF_M_RETRIES_TOTAL, 1, 0);
    hf_metric_inc(m, HF_M_STALE_SERVED_TOTAL, 1, HF_STALE_REASON_RATE_LIMITED);
    hf_metric_set(m, HF_M_BREAKER_STATE, 1, 0, 1);
    hf_metric_set(m, HF_M_QUOTA_REMAINING, 0, 0, -1);
    hf_metric_set(m, HF_M_DEGRADED_SINCE, 1, 0, 1700000000);
    hf_metric_gauge_add(m, HF_M_CACHE_ENTRIES, HF_TIER_MEMORY, 0, 3);
    hf_metric_gauge_add(m, HF_M_CACHE_ENTRIES, HF_TIER_MEMORY, 0, -1);
    hf_metric_gauge_add(m, HF_M_CACHE_BYTES, HF_TIER_SQLITE, 0, 4096);
    hf_metric_add(m, HF_M_CACHE_EVICTIONS_TOTAL, HF_TIER_MEMORY, HF_EVICT_SIZE, 5);
    /* Counted into a tier that is not shown: kept, not rendered. */
    hf_metric_add(m, HF_M_CACHE_EVICTIONS_TOTAL, HF_TIER_REDIS, HF_EVICT_SIZE, 9);
    hf_metric_observe_us(m, HF_M_REQUEST_DURATION, 0, HF_CACHE_HIT, 250);
    hf_metric_observe_us(m, HF_M_REQUEST_DURATION, 0, HF_CACHE_HIT, 1500);
    hf_metric_observe_us(m, HF_M_UPSTREAM_DURATION, 1, 0, 7000000);
    hf_metric_set(m, HF_M_STORE_UP, HF_TIER_MEMORY, 0, 1);
    hf_metric_add(m, HF_M_STORE_ERRORS_TOTAL, HF_TIER_SQLITE, 0, 2);
    hf_metric_inc(m, HF_M_STALE_SERVED_TOTAL, 0, HF_STALE_REASON_BACKGROUND);
    hf_metric_inc(m, HF_M_REFRESH_RUNS_TOTAL, 0, HF_RUN_DEGRADED);
    hf_metric_inc(m, HF_M_REFRESH_KEYS_TOTAL, 1, HF_KEY_STALE);
    hf_metric_set(m, HF_M_REFRESH_LAST_SUCCESS, 0, 0, 1700000000);
    hf_metric_observe_us(m, HF_M_REFRESH_DURATION, 0, 0, 12000000); /* le="15" and above */

    static const char expected[] =
        "# HELP holdfast_requests_total Requests answered, by how the cache took part.\n"
        "# TYPE holdfast_requests_total counter\n"
        "holdfast_requests_total{route=\"news\",cache=\"hit\"} 2\n"
        "holdfast_requests_total{route=\"news\",cache=\"miss\"} 0\n"
        "holdfast_requests_total{route=\"news\",cache=\"stale\"} 0\n"
        "holdfast_requests_total{route=\"news\",cache=\"error\"} 0\n"
        "holdfast_requests_total{route=\"news\",cache=\"bypass\"} 0\n"
        "holdfast_requests_total{route=\"weather\",cache=\"hit\"} 0\n"
        "holdfast_requests_total{route=\"weather\",cache=\"miss\"} 0\n"
        "holdfast_requests_total{route=\"weather\",cache=\"stale\"} 0\n"
        "holdfast_requests_total{route=\"weather\",cache=\"error\"} 0\n"
        "holdfast_requests_total{route=\"weather\",cache=\"bypass\"} 0\n"
        "# HELP holdfast_upstream_requests_total Attempts sent to the API (retries included), by "
        "outcome.\n"
        "# TYPE holdfast_upstream_requests_total counter\n"
        "holdfast_upstream_requests_total{route=\"news\",outcome=\"ok\"} 0\n"
        "holdfast_upstream_requests_total{route=\"news\",outcome=\"timeout\"} 0\n"
        "holdfast_upstream_requests_total{route=\"news\",outcome=\"connect_error\"} 0\n"
        "holdfast_upstream_requests_total{route=\"news\",outcome=\"http_429\"} 0\n"
        "holdfast_upstream_requests_total{route=\"news\",outcome=\"http_5xx\"} 0\n"
        "holdfast_upstream_requests_total{route=\"news\",outcome=\"http_4xx\"} 0\n"
        "holdfast_upstream_requests_total{route=\"news\",outcome=\"error\"} 0\n"
        "holdfast_upstream_requests_total{route=\"weather\",outcome=\"ok\"} 0\n"
        "holdfast_upstream_requests_total{route=\"weather\",outcome=\"timeout\"} 0\n"
        "holdfast_upstream_requests_total{route=\"weather\",outcome=\"connect_error\"} 0\n"
        "holdfast_upstream_requests_total{route=\"weather\",outcome=\"http_429\"} 0\n"
        "holdfast_upstream_requests_total{route=\"weather\",outcome=\"http_5xx\"} 3\n"
        "holdfast_upstream_requests_total{route=\"weather\",outcome=\"http_4xx\"} 0\n"
        "holdfast_upstream_requests_total{route=\"weather\",outcome=\"error\"} 0\n"
        "# HELP holdfast_retries_total Attempts that were retries of a failed attempt.\n"
        "# TYPE holdfast_retries_total counter\n"
        "holdfast_retries_total{route=\"news\"} 0\n"
        "holdfast_retries_total{route=\"weather\"} 1\n"
        "# HELP holdfast_retry_exhausted_total Requests that failed after their last allowed "
        "attempt (attempts or deadline used up).\n"
        "# TYPE holdfast_retry_exhausted_total counter\n"
        "holdfast_retry_exhausted_total{route=\"news\"} 0\n"
        "holdfast_retry_exhausted_total{route=\"weather\"} 0\n"
        "# HELP holdfast_stale_served_total Stale copies served, by why (the Cache-Status "
        "detail).\n"
        "# TYPE holdfast_stale_served_total counter\n"
        "holdfast_stale_served_total{route=\"news\",reason=\"upstream-error\"} 0\n"
        "holdfast_stale_served_total{route=\"news\",reason=\"rate-limited\"} 0\n"
        "holdfast_stale_served_total{route=\"news\",reason=\"breaker-open\"} 0\n"
        "holdfast_stale_served_total{route=\"news\",reason=\"quota-spent\"} 0\n"
        "holdfast_stale_served_total{route=\"news\",reason=\"latency-budget\"} 0\n"
        "holdfast_stale_served_total{route=\"news\",reason=\"revalidating\"} 0\n"
        "holdfast_stale_served_total{route=\"news\",reason=\"background\"} 1\n"
        "holdfast_stale_served_total{route=\"weather\",reason=\"upstream-error\"} 0\n"
        "holdfast_stale_served_total{route=\"weather\",reason=\"rate-limited\"} 1\n"
        "holdfast_stale_served_total{route=\"weather\",reason=\"breaker-open\"} 0\n"
        "holdfast_stale_served_total{route=\"weather\",reason=\"quota-spent\"} 0\n"
        "holdfast_stale_served_total{route=\"weather\",reason=\"latency-budget\"} 0\n"
        "holdfast_stale_served_total{route=\"weather\",reason=\"revalidating\"} 0\n"
        "holdfast_stale_served_total{route=\"weather\",reason=\"background\"} 0\n"
        "# HELP holdfast_coalesced_total Requests that waited for another request's fetch of the "
        "same key instead of making their own.\n"
        "# TYPE holdfast_coalesced_total counter\n"
        "holdfast_coalesced_total{route=\"news\"} 0\n"
        "holdfast_coalesced_total{route=\"weather\"} 0\n"
        "# HELP holdfast_breaker_state Circuit breaker: 0 closed, 1 open, 2 half-open.\n"
        "# TYPE holdfast_breaker_state gauge\n"
        "holdfast_breaker_state{route=\"news\"} 0\n"
        "holdfast_breaker_state{route=\"weather\"} 1\n"
        "# HELP holdfast_route_paused 1 while the route is paused by a 429, RateLimit headers or a "
        "spent quota, else 0.\n"
        "# TYPE holdfast_route_paused gauge\n"
        "holdfast_route_paused{route=\"news\"} 0\n"
        "holdfast_route_paused{route=\"weather\"} 0\n"
        "# HELP holdfast_quota_remaining Calls left in the route's quota period; -1 when the route "
        "has no quota.\n"
        "# TYPE holdfast_quota_remaining gauge\n"
        "holdfast_quota_remaining{route=\"news\"} -1\n"
        "holdfast_quota_remaining{route=\"weather\"} 0\n"
        "# HELP holdfast_degraded 1 while the route serves stale copies or errors instead of the "
        "API's answers, else 0.\n"
        "# TYPE holdfast_degraded gauge\n"
        "holdfast_degraded{route=\"news\"} 0\n"
        "holdfast_degraded{route=\"weather\"} 0\n"
        "# HELP holdfast_degraded_since_seconds Unix time at which the route became degraded; 0 "
        "while it is not.\n"
        "# TYPE holdfast_degraded_since_seconds gauge\n"
        "holdfast_degraded_since_seconds{route=\"news\"} 0\n"
        "holdfast_degraded_since_seconds{route=\"weather\"} 1700000000\n"
        "# HELP holdfast_cache_entries Copies held by the cache tier.\n"
        "# TYPE holdfast_cache_entries gauge\n"
        "holdfast_cache_entries{tier=\"memory\"} 2\n"
        "holdfast_cache_entries{tier=\"sqlite\"} 0\n"
        "# HELP holdfast_cache_bytes Bytes held by the cache tier.\n"
        "# TYPE holdfast_cache_bytes gauge\n"
        "holdfast_cache_bytes{tier=\"memory\"} 0\n"
        "holdfast_cache_bytes{tier=\"sqlite\"} 4096\n"
        "# HELP holdfast_cache_evictions_total Copies removed from the cache tier by holdfast, by "
        "reason.\n"
        "# TYPE holdfast_cache_evictions_total counter\n"
        "holdfast_cache_evictions_total{tier=\"memory\",reason=\"size\"} 5\n"
        "holdfast_cache_evictions_total{tier=\"memory\",reason=\"expired\"} 0\n"
        "holdfast_cache_evictions_total{tier=\"sqlite\",reason=\"size\"} 0\n"
        "holdfast_cache_evictions_total{tier=\"sqlite\",reason=\"expired\"} 0\n"
        "# HELP holdfast_request_duration_seconds Time from a request's arrival to its answer, by "
        "how the cache took part.\n"
        "# TYPE holdfast_request_duration_seconds histogram\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.001\"} 1\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.005\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.01\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.025\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.05\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.1\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.25\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"0.5\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"1\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"2.5\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"5\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"10\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"30\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"hit\",le=\"+Inf\"} 2\n"
        "holdfast_request_duration_seconds_sum{route=\"news\",cache=\"hit\"} 0.00175\n"
        "holdfast_request_duration_seconds_count{route=\"news\",cache=\"hit\"} 2\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.001\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.005\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.01\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.025\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.05\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.25\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"miss\",le=\"+Inf\"} 0\n"
        "holdfast_request_duration_seconds_sum{route=\"news\",cache=\"miss\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"news\",cache=\"miss\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.001\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.005\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.01\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.025\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.05\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.25\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"stale\",le=\"+Inf\"} 0\n"
        "holdfast_request_duration_seconds_sum{route=\"news\",cache=\"stale\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"news\",cache=\"stale\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.001\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.005\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.01\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.025\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.05\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.25\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"error\",le=\"+Inf\"} 0\n"
        "holdfast_request_duration_seconds_sum{route=\"news\",cache=\"error\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"news\",cache=\"error\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.001\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.005\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.01\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.025\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.05\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.25\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"news\",cache=\"bypass\",le=\"+Inf\"} 0\n"
        "holdfast_request_duration_seconds_sum{route=\"news\",cache=\"bypass\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"news\",cache=\"bypass\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.001\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.005\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.01\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.025\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.05\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.25\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"hit\",le=\"+Inf\"} 0\n"
        "holdfast_request_duration_seconds_sum{route=\"weather\",cache=\"hit\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"weather\",cache=\"hit\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.001\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.005\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.01\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.025\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.05\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.25\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"miss\",le=\"+Inf\"} 0\n"
        "holdfast_request_duration_seconds_sum{route=\"weather\",cache=\"miss\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"weather\",cache=\"miss\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.001\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.005\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.01\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.025\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.05\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.25\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"stale\",le=\"+Inf\"} "
        "0\n"
        "holdfast_request_duration_seconds_sum{route=\"weather\",cache=\"stale\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"weather\",cache=\"stale\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.001\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.005\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.01\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.025\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.05\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.25\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"0.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"2.5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"error\",le=\"+Inf\"} "
        "0\n"
        "holdfast_request_duration_seconds_sum{route=\"weather\",cache=\"error\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"weather\",cache=\"error\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.001\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.005\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.01\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.025\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.05\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.1\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.25\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"0.5\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"1\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"2.5\"} "
        "0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"5\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"10\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"30\"} 0\n"
        "holdfast_request_duration_seconds_bucket{route=\"weather\",cache=\"bypass\",le=\"+Inf\"} "
        "0\n"
        "holdfast_request_duration_seconds_sum{route=\"weather\",cache=\"bypass\"} 0\n"
        "holdfast_request_duration_seconds_count{route=\"weather\",cache=\"bypass\"} 0\n"
        "# HELP holdfast_upstream_duration_seconds Time one attempt to the API took, failed "
        "attempts included.\n"
        "# TYPE holdfast_upstream_duration_seconds histogram\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.001\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.005\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.01\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.025\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.05\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.1\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.25\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"0.5\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"1\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"2.5\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"5\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"10\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"30\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"news\",le=\"+Inf\"} 0\n"
        "holdfast_upstream_duration_seconds_sum{route=\"news\"} 0\n"
        "holdfast_upstream_duration_seconds_count{route=\"news\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.001\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.005\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.01\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.025\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.05\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.1\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.25\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.5\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"1\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"2.5\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"5\"} 0\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"10\"} 1\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"30\"} 1\n"
        "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"+Inf\"} 1\n"
        "holdfast_upstream_duration_seconds_sum{route=\"weather\"} 7\n"
        "holdfast_upstream_duration_seconds_count{route=\"weather\"} 1\n"
        "# HELP holdfast_refresh_runs_total Refresh runs of a background route that ended, by "
        "result.\n"
        "# TYPE holdfast_refresh_runs_total counter\n"
        "holdfast_refresh_runs_total{route=\"news\",result=\"ok\"} 0\n"
        "holdfast_refresh_runs_total{route=\"news\",result=\"degraded\"} 1\n"
        "holdfast_refresh_runs_total{route=\"news\",result=\"failed\"} 0\n"
        "holdfast_refresh_runs_total{route=\"weather\",result=\"ok\"} 0\n"
        "holdfast_refresh_runs_total{route=\"weather\",result=\"degraded\"} 0\n"
        "holdfast_refresh_runs_total{route=\"weather\",result=\"failed\"} 0\n"
        "# HELP holdfast_refresh_keys_total Keys handled by refresh runs, by result.\n"
        "# TYPE holdfast_refresh_keys_total counter\n"
        "holdfast_refresh_keys_total{route=\"news\",result=\"refreshed\"} 0\n"
        "holdfast_refresh_keys_total{route=\"news\",result=\"not_modified\"} 0\n"
        "holdfast_refresh_keys_total{route=\"news\",result=\"skipped\"} 0\n"
        "holdfast_refresh_keys_total{route=\"news\",result=\"stale\"} 0\n"
        "holdfast_refresh_keys_total{route=\"news\",result=\"missing\"} 0\n"
        "holdfast_refresh_keys_total{route=\"weather\",result=\"refreshed\"} 0\n"
        "holdfast_refresh_keys_total{route=\"weather\",result=\"not_modified\"} 0\n"
        "holdfast_refresh_keys_total{route=\"weather\",result=\"skipped\"} 0\n"
        "holdfast_refresh_keys_total{route=\"weather\",result=\"stale\"} 1\n"
        "holdfast_refresh_keys_total{route=\"weather\",result=\"missing\"} 0\n"
        "# HELP holdfast_refresh_last_success_timestamp_seconds Unix time at which the route's "
        "last refresh run with result ok ended; 0: never.\n"
        "# TYPE holdfast_refresh_last_success_timestamp_seconds gauge\n"
        "holdfast_refresh_last_success_timestamp_seconds{route=\"news\"} 1700000000\n"
        "holdfast_refresh_last_success_timestamp_seconds{route=\"weather\"} 0\n"
        "# HELP holdfast_refresh_duration_seconds Time a refresh run took, from its first key to "
        "its last.\n"
        "# TYPE holdfast_refresh_duration_seconds histogram\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"0.1\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"1\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"5\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"15\"} 1\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"60\"} 1\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"300\"} 1\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"900\"} 1\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"3600\"} 1\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"news\",le=\"+Inf\"} 1\n"
        "holdfast_refresh_duration_seconds_sum{route=\"news\"} 12\n"
        "holdfast_refresh_duration_seconds_count{route=\"news\"} 1\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"0.1\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"1\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"5\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"15\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"60\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"300\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"900\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"3600\"} 0\n"
        "holdfast_refresh_duration_seconds_bucket{route=\"weather\",le=\"+Inf\"} 0\n"
        "holdfast_refresh_duration_seconds_sum{route=\"weather\"} 0\n"
        "holdfast_refresh_duration_seconds_count{route=\"weather\"} 0\n"
        "# HELP holdfast_store_up 1 while the cache tier answers, 0 while it is unreachable "
        "(served around it).\n"
        "# TYPE holdfast_store_up gauge\n"
        "holdfast_store_up{tier=\"memory\"} 1\n"
        "holdfast_store_up{tier=\"sqlite\"} 0\n"
        "# HELP holdfast_store_errors_total Operations on the cache tier that failed (connection "
        "lost, timeouts, bad replies).\n"
        "# TYPE holdfast_store_errors_total counter\n"
        "holdfast_store_errors_total{tier=\"memory\"} 0\n"
        "holdfast_store_errors_total{tier=\"sqlite\"} 2\n";
    char *text = render(m);
    assert_text(text, expected);
    free(text);
    hf_metrics_destroy(&m);
    assert_null(m);
    hf_metrics_destroy(&m); /* NULL: a no-op */
}

/* ---- four threads ---- */

#define THREAD_ITERS 200000

struct counter_arg {
    struct hf_metrics *m;
    pthread_barrier_t *start; /* all four start together, so they do overlap */
};

static void *count_loop(void *arg)
{
    struct counter_arg *a = arg;
    struct hf_metrics *m = a->m;
    pthread_barrier_wait(a->start);
    for (int i = 0; i < THREAD_ITERS; i++) {
        hf_metric_inc(m, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_HIT);
        hf_metric_add(m, HF_M_UPSTREAM_REQUESTS_TOTAL, 0, HF_OUTCOME_OK, 2);
        hf_metric_observe_us(m, HF_M_REQUEST_DURATION, 1, HF_CACHE_HIT, i % 3 == 0 ? 500 : 2000);
        hf_metric_gauge_add(m, HF_M_CACHE_ENTRIES, HF_TIER_MEMORY, 0, 1);
    }
    return NULL;
}

/* Two waves of four threads: the second wave's threads take the numbers
 * (and shards) the first gave back, and must continue from their counts. */
static void count_from_threads(size_t nshards)
{
    struct hf_metrics *m = NULL;
    if (nshards == SIZE_MAX)
        assert_int_equal(hf_metrics_create(two_routes, 2, &m), HF_OK);
    else
        assert_int_equal(hf__metrics_create_shards(two_routes, 2, nshards, &m), HF_OK);
    pthread_barrier_t start;
    struct counter_arg arg = {m, &start};
    for (int wave = 0; wave < 2; wave++) {
        pthread_t t[4];
        assert_int_equal(pthread_barrier_init(&start, NULL, 4), 0);
        for (int i = 0; i < 4; i++)
            assert_int_equal(pthread_create(&t[i], NULL, count_loop, &arg), 0);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&start);
    }

    char *text = render(m);
    const uint64_t n = 8 * (uint64_t)THREAD_ITERS;
    const uint64_t fast = 8 * (uint64_t)((THREAD_ITERS + 2) / 3); /* i % 3 == 0 */
    assert_i64(value_of(text, "holdfast_requests_total{route=\"weather\",cache=\"hit\"}"), n);
    assert_i64(value_of(text, "holdfast_requests_total{route=\"news\",cache=\"hit\"}"), 0);
    assert_i64(value_of(text, "holdfast_upstream_requests_total{route=\"news\",outcome=\"ok\"}"),
               2 * n);
    assert_i64(value_of(text, "holdfast_cache_entries{tier=\"memory\"}"), n);
    const char *h = "holdfast_request_duration_seconds";
    char series[256];
    snprintf(series, sizeof series, "%s_bucket{route=\"weather\",cache=\"hit\",le=\"0.001\"}", h);
    assert_i64(value_of(text, series), fast);
    snprintf(series, sizeof series, "%s_bucket{route=\"weather\",cache=\"hit\",le=\"0.005\"}", h);
    assert_i64(value_of(text, series), n);
    snprintf(series, sizeof series, "%s_count{route=\"weather\",cache=\"hit\"}", h);
    assert_i64(value_of(text, series), n);
    /* The sum is a whole number of milliseconds here: compare it as ms. */
    uint64_t sum_us = fast * 500 + (n - fast) * 2000;
    snprintf(series, sizeof series,
             "%s_sum{route=\"weather\",cache=\"hit\"} %" PRIu64 ".%03" PRIu64 "\n", h,
             sum_us / 1000000, sum_us % 1000000 / 1000);
    if (strstr(text, series) == NULL) {
        print_error("missing: %s", series);
        fail();
    }
    free(text);
    hf_metrics_destroy(&m);
}

static void test_threads_shared_shard(void **state)
{
    (void)state;
    count_from_threads(0); /* every thread adds atomically on the same lines */
}

static void test_threads_owned_shards(void **state)
{
    (void)state;
    count_from_threads(3);        /* some threads own a shard, the others share */
    count_from_threads(8);        /* each thread owns one */
    count_from_threads(SIZE_MAX); /* the default for this machine */
}

/* ---- histograms ---- */

static void test_histogram_boundaries(void **state)
{
    (void)state;
    const char *const routes[] = {"a"};
    struct hf_metrics *m = NULL;
    assert_int_equal(hf_metrics_create(routes, 1, &m), HF_OK);

    /* Every bound, read from the exposition, observed exactly: le is inclusive,
     * so bucket k (cumulative) holds k + 1 of them; this also checks that each
     * `le` text is the bound in microseconds it stands for. */
    char *text = render(m);
    static const char prefix[] = "holdfast_upstream_duration_seconds_bucket{route=\"a\",le=\"";
    char les[32][16];
    int n = 0;
    for (const char *p = strstr(text, prefix); p != NULL; p = strstr(p + 1, prefix)) {
        const char *le = p + strlen(prefix);
        size_t len = strcspn(le, "\"");
        assert_true(n < 32 && len < sizeof les[0]);
        memcpy(les[n], le, len);
        les[n++][len] = '\0';
    }
    free(text);
    assert_int_equal(n, 14);
    assert_string_equal(les[n - 1], "+Inf");
    uint64_t last_us = 0;
    for (int k = 0; k < n - 1; k++) {
        last_us = (uint64_t)llround(strtod(les[k], NULL) * 1e6);
        hf_metric_observe_us(m, HF_M_UPSTREAM_DURATION, 0, 0, last_us);
    }
    hf_metric_observe_us(m, HF_M_UPSTREAM_DURATION, 0, 0, last_us + 1); /* +Inf only */
    text = render(m);
    char series[128];
    for (int k = 0; k < n; k++) {
        snprintf(series, sizeof series, "%s%.15s\"}", prefix, les[k]);
        assert_i64(value_of(text, series), k + 1);
    }
    assert_i64(value_of(text, "holdfast_upstream_duration_seconds_count{route=\"a\"}"), n);
    free(text);
    hf_metrics_destroy(&m);

    /* Sums are exact decimal seconds. */
    assert_int_equal(hf_metrics_create(routes, 1, &m), HF_OK);
    const uint64_t obs[] = {0, 1000, 1001, 30000000, 30000001, 2500000};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        hf_metric_observe_us(m, HF_M_UPSTREAM_DURATION, 0, 0, obs[i]);
    text = render(m);
    static const char *const want[] = {
        "holdfast_upstream_duration_seconds_bucket{route=\"a\",le=\"0.001\"} 2\n",
        "holdfast_upstream_duration_seconds_bucket{route=\"a\",le=\"0.005\"} 3\n",
        "holdfast_upstream_duration_seconds_bucket{route=\"a\",le=\"1\"} 3\n",
        "holdfast_upstream_duration_seconds_bucket{route=\"a\",le=\"2.5\"} 4\n",
        "holdfast_upstream_duration_seconds_bucket{route=\"a\",le=\"30\"} 5\n",
        "holdfast_upstream_duration_seconds_bucket{route=\"a\",le=\"+Inf\"} 6\n",
        "holdfast_upstream_duration_seconds_sum{route=\"a\"} 62.502002\n",
        "holdfast_upstream_duration_seconds_count{route=\"a\"} 6\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(text, want[i]) == NULL) {
            print_error("missing: %s", want[i]);
            fail();
        }
    }
    free(text);
    hf_metrics_destroy(&m);
}

/* ---- labels ---- */

static void test_label_escaping(void **state)
{
    (void)state;
    const char *const routes[] = {"a\"b", "c\\d", "e\nf"};
    struct hf_metrics *m = NULL;
    assert_int_equal(hf_metrics_create(routes, 3, &m), HF_OK);
    hf_metric_inc(m, HF_M_RETRIES_TOTAL, 2, 0);
    char *text = render(m);
    assert_i64(value_of(text, "holdfast_retries_total{route=\"a\\\"b\"}"), 0);
    assert_i64(value_of(text, "holdfast_retries_total{route=\"c\\\\d\"}"), 0);
    assert_i64(value_of(text, "holdfast_retries_total{route=\"e\\nf\"}"), 1);
    assert_i64(hf_metrics_route_index(m, "e\nf"), 2);
    assert_i64(hf_metrics_route_index(m, "nope"), -1);
    free(text);
    hf_metrics_destroy(&m);
}

static void test_label_values(void **state)
{
    (void)state;
    assert_string_equal(hf_metric_label_value(HF_ML_CACHE, HF_CACHE_STALE), "stale");
    assert_string_equal(hf_metric_label_value(HF_ML_OUTCOME, HF_OUTCOME_CONNECT_ERROR),
                        "connect_error");
    assert_string_equal(hf_metric_label_value(HF_ML_STALE_REASON, HF_STALE_REASON_LATENCY_BUDGET),
                        "latency-budget");
    assert_string_equal(hf_metric_label_value(HF_ML_EVICT_REASON, HF_EVICT_EXPIRED), "expired");
    assert_string_equal(hf_metric_label_value(HF_ML_TIER, HF_TIER_SQLITE), "sqlite");
    assert_string_equal(hf_metric_label_value(HF_ML_STALE_REASON, HF_STALE_REASON_BACKGROUND),
                        "background");
    /* Two sets share the label name "result"; each keeps its own values. */
    assert_string_equal(hf_metric_label_value(HF_ML_RUN_RESULT, HF_RUN_DEGRADED), "degraded");
    assert_string_equal(hf_metric_label_value(HF_ML_KEY_RESULT, HF_KEY_NOT_MODIFIED),
                        "not_modified");
    assert_null(hf_metric_label_value(HF_ML_RUN_RESULT, HF__RUN_MAX));
    assert_null(hf_metric_label_value(HF_ML_KEY_RESULT, HF__KEY_MAX));
    assert_null(hf_metric_label_value(HF_ML_CACHE, HF__CACHE_MAX));
    assert_null(hf_metric_label_value(HF_ML_NONE, 0));
    assert_null(hf_metric_label_value(HF__ML_MAX, 0));
}

static void test_outcome_mapping(void **state)
{
    (void)state;
    static const struct {
        hf_err err;
        int status;
        enum hf_m_outcome want;
    } cases[] = {
        {HF_OK, 200, HF_OUTCOME_OK},
        {HF_OK, 304, HF_OUTCOME_OK},
        {HF_OK, 101, HF_OUTCOME_OK},
        {HF_OK, 404, HF_OUTCOME_HTTP_4XX},
        {HF_OK, 408, HF_OUTCOME_HTTP_4XX},
        {HF_OK, 429, HF_OUTCOME_HTTP_429},
        {HF_OK, 500, HF_OUTCOME_HTTP_5XX},
        {HF_OK, 599, HF_OUTCOME_HTTP_5XX},
        {HF_OK, 0, HF_OUTCOME_ERROR},
        {HF_OK, 600, HF_OUTCOME_ERROR},
        {HF_HTTP_429, 0, HF_OUTCOME_HTTP_429},
        {HF_HTTP_5XX, 0, HF_OUTCOME_HTTP_5XX},
        {HF_HTTP_5XX, 503, HF_OUTCOME_HTTP_5XX},
        {HF_HTTP_4XX, 0, HF_OUTCOME_HTTP_4XX},
        {HF_HTTP_4XX, 429, HF_OUTCOME_HTTP_429}, /* the status is more precise */
        {HF_UPSTREAM_TIMEOUT, 0, HF_OUTCOME_TIMEOUT},
        {HF_DEADLINE, 0, HF_OUTCOME_TIMEOUT},
        {HF_UPSTREAM_CONNECT, 0, HF_OUTCOME_CONNECT_ERROR},
        {HF_UPSTREAM_RESOLVE, 0, HF_OUTCOME_CONNECT_ERROR},
        {HF_UPSTREAM_TLS, 0, HF_OUTCOME_CONNECT_ERROR},
        {HF_UPSTREAM_RECV, 200, HF_OUTCOME_ERROR},
        {HF_UPSTREAM_PROTOCOL, 0, HF_OUTCOME_ERROR},
        {HF_BODY_TOO_LARGE, 200, HF_OUTCOME_ERROR},
        {HF_UPSTREAM, 0, HF_OUTCOME_ERROR},
        {HF_ENOMEM, 0, HF_OUTCOME_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum hf_m_outcome got = hf_metric_outcome(cases[i].err, cases[i].status);
        if (got != cases[i].want) {
            print_error("hf_metric_outcome(%s, %d) = %s, expected %s\n", hf_err_label(cases[i].err),
                        cases[i].status, hf_metric_label_value(HF_ML_OUTCOME, got),
                        hf_metric_label_value(HF_ML_OUTCOME, cases[i].want));
            fail();
        }
    }
}

/* ---- the registry's bounds ---- */

static void test_create_refuses(void **state)
{
    (void)state;
    struct hf_metrics *m = NULL;
    const char *const dup[] = {"news", "weather", "news"};
    assert_int_equal(hf_metrics_create(dup, 3, &m), HF_EINVAL);
    const char *const null_name[] = {"news", NULL};
    assert_int_equal(hf_metrics_create(null_name, 2, &m), HF_EINVAL);
    const char *const empty[] = {""};
    assert_int_equal(hf_metrics_create(empty, 1, &m), HF_EINVAL);
    char long_name[HF_METRICS_MAX_NAME + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *const too_long[] = {long_name};
    assert_int_equal(hf_metrics_create(too_long, 1, &m), HF_EINVAL);
    assert_int_equal(hf_metrics_create(NULL, 1, &m), HF_EINVAL);
    assert_int_equal(hf_metrics_create(two_routes, HF_METRICS_MAX_ROUTES + 1, &m), HF_EINVAL);
    assert_int_equal(hf__metrics_create_shards(two_routes, 2, 65, &m), HF_EINVAL);
    assert_null(m);

    /* The longest name, and no routes at all, are fine. */
    long_name[HF_METRICS_MAX_NAME] = '\0';
    assert_int_equal(hf_metrics_create(too_long, 1, &m), HF_OK);
    hf_metrics_destroy(&m);
    assert_int_equal(hf_metrics_create(NULL, 0, &m), HF_OK);
    char *text = render(m);
    assert_non_null(strstr(text, "# TYPE holdfast_requests_total counter\n# HELP"));
    assert_i64(value_of(text, "holdfast_cache_entries{tier=\"memory\"}"), 0);
    free(text);
    hf_metrics_destroy(&m);
}

static void test_render_bounded(void **state)
{
    (void)state;
    struct hf_metrics *m = NULL;
    assert_int_equal(hf_metrics_create(two_routes, 2, &m), HF_OK);
    struct hf_buf b;
    hf_buf_init(&b, 4096);
    assert_int_equal(hf_buf_adds(&b, "before\n"), HF_OK);
    assert_int_equal(hf_metrics_render(m, &b), HF_BODY_TOO_LARGE);
    assert_string_equal(b.ptr, "before\n"); /* left as it was */
    assert_i64(b.len, 7);
    hf_buf_fini(&b);
    hf_metrics_destroy(&m);
}

static void test_carry_by_name(void **state)
{
    (void)state;
    struct hf_metrics *old = NULL, *cur = NULL;
    assert_int_equal(hf_metrics_create(two_routes, 2, &old), HF_OK);
    const char *const routes[] = {"sports", "weather"};
    assert_int_equal(hf_metrics_create(routes, 2, &cur), HF_OK);
    hf_metric_add(old, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT, 7);  /* news: dropped */
    hf_metric_add(old, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_MISS, 5); /* weather */
    hf_metric_set(old, HF_M_QUOTA_REMAINING, 1, 0, 42);
    hf_metric_observe_us(old, HF_M_UPSTREAM_DURATION, 1, 0, 20000);
    hf_metric_gauge_add(old, HF_M_CACHE_BYTES, HF_TIER_MEMORY, 0, 100);
    hf_metric_inc(cur, HF_M_REQUESTS_TOTAL, 1, HF_CACHE_MISS); /* added to, not replaced */

    hf_metrics_carry(cur, old);
    hf_metrics_destroy(&old);
    char *text = render(cur);
    assert_i64(value_of(text, "holdfast_requests_total{route=\"weather\",cache=\"miss\"}"), 6);
    assert_i64(value_of(text, "holdfast_requests_total{route=\"weather\",cache=\"hit\"}"), 0);
    assert_i64(value_of(text, "holdfast_requests_total{route=\"sports\",cache=\"hit\"}"), 0);
    assert_i64(value_of(text, "holdfast_quota_remaining{route=\"weather\"}"), 42);
    assert_i64(value_of(text, "holdfast_quota_remaining{route=\"sports\"}"), 0);
    assert_i64(
        value_of(text, "holdfast_upstream_duration_seconds_bucket{route=\"weather\",le=\"0.025\"}"),
        1);
    assert_i64(value_of(text, "holdfast_upstream_duration_seconds_count{route=\"weather\"}"), 1);
    assert_i64(value_of(text, "holdfast_cache_bytes{tier=\"memory\"}"), 100);
    free(text);
    hf_metrics_destroy(&cur);
}

/* ---- docs/metrics.md ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct hf_buf b;
    hf_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (hf_buf_add(&b, chunk, n) != HF_OK)
            break;
    }
    fclose(f);
    return hf_buf_take(&b, NULL);
}

static void test_doc_up_to_date(void **state)
{
    (void)state;
    const char *src = getenv("HF_SOURCE_DIR");
    if (src == NULL) {
        print_message("HF_SOURCE_DIR is not set: not checking docs/metrics.md\n");
        skip();
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/metrics.md", src);

    char *doc = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&doc, &len);
    assert_non_null(mem);
    assert_int_equal(hf_metrics_doc(mem), HF_OK);
    fclose(mem);

    char *committed = read_file(path);
    if (committed == NULL || strcmp(committed, doc) != 0) {
        print_error("%s is not what the metrics table generates; run:\n  %s --write-doc %s\n", path,
                    argv0, path);
        if (committed != NULL)
            assert_text(committed, doc);
        free(committed);
        free(doc);
        fail();
    }
    free(committed);
    free(doc);
    assert_int_equal(hf_metrics_doc(NULL), HF_EINVAL);
}

static int write_doc(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    hf_err err = hf_metrics_doc(f);
    if (fclose(f) != 0 || err != HF_OK) {
        fprintf(stderr, "%s: write failed\n", path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    argv0 = argv[0];
    if (argc == 3 && strcmp(argv[1], "--write-doc") == 0)
        return write_doc(argv[2]);
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),
        cmocka_unit_test(test_threads_shared_shard),
        cmocka_unit_test(test_threads_owned_shards),
        cmocka_unit_test(test_histogram_boundaries),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_label_values),
        cmocka_unit_test(test_outcome_mapping),
        cmocka_unit_test(test_create_refuses),
        cmocka_unit_test(test_render_bounded),
        cmocka_unit_test(test_carry_by_name),
        cmocka_unit_test(test_doc_up_to_date),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
