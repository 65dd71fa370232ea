/*
 * holdfast sim: the pure parts with time as an argument (the data is a
 * function of seed and clock; fault requests, their expiry and table; the
 * X-RateLimit-* values), then the embedded server on a unix socket, talked
 * to with libcurl, for every fault mode and a stop with a request held.
 * The CLI is exercised by tests/scenario/s0000*.vtc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "sim/sim_impl.h"

#define T0 INT64_C(1795893538000) /* 2026-11-28 */

static json_t *body_json(int api, const char *path, const char *query, uint64_t seed, int64_t t,
                         int want_status)
{
    int status = -1;
    char *b = hf_sim_body(api, path, query, seed, t, &status);
    assert_int_equal(status, want_status);
    assert_non_null(b);
    json_t *o = json_loads(b, 0, NULL);
    free(b);
    assert_non_null(o);
    return o;
}

static void same_inputs_same_answer(void **state)
{
    (void)state;
    for (int api = 0; api < HF_SIM_APIS; api++) {
        static const char *const paths[] = {"/news/latest", "/quotes/AAPL", "/fx/latest"};
        int s1, s2;
        char *a = hf_sim_body(api, paths[api], "base=USD", 7, T0, &s1);
        char *b = hf_sim_body(api, paths[api], "base=USD", 7, T0, &s2);
        assert_int_equal(s1, 200);
        assert_string_equal(a, b);
        free(b);
        b = hf_sim_body(api, paths[api], "base=USD", 8, T0, &s2);
        assert_string_not_equal(a, b); /* another seed, other data */
        free(a);
        free(b);
    }
}

static void quotes_move_and_have_history(void **state)
{
    (void)state;
    json_t *q1 = body_json(HF_SIM_QUOTES, "/quotes/MSFT", "", 1, T0, 200);
    json_t *q2 = body_json(HF_SIM_QUOTES, "/quotes/msft", "", 1, T0 + 3600 * 1000, 200);
    double p1 = json_real_value(json_object_get(q1, "price"));
    double p2 = json_real_value(json_object_get(q2, "price"));
    assert_true(p1 > 100 && p1 < 1000);
    assert_true(p1 != p2); /* an hour later the price has moved */
    json_t *h = json_object_get(q1, "history");
    assert_int_equal(json_array_size(h), 30);
    assert_string_equal(json_string_value(json_object_get(q1, "symbol")), "MSFT");
    assert_non_null(json_object_get(json_array_get(h, 29), "close"));
    json_decref(q1);
    json_decref(q2);
    json_t *e = body_json(1, "/quotes/NOPE", "", 1, T0, 404);
    assert_string_equal(json_string_value(json_object_get(e, "error")), "unknown_symbol");
    json_decref(e);
}

static void fx_and_news(void **state)
{
    (void)state;
    json_t *fx = body_json(2, "/fx/latest", "base=EUR", 1, T0, 200);
    assert_string_equal(json_string_value(json_object_get(fx, "base")), "EUR");
    json_t *rates = json_object_get(fx, "rates");
    assert_non_null(json_object_get(rates, "USD"));
    assert_null(json_object_get(rates, "EUR"));
    json_decref(fx);
    json_t *bad = body_json(2, "/fx/latest", "base=XXX", 1, T0, 400);
    json_decref(bad);
    json_t *n1 = body_json(0, "/news/latest", "country=us", 1, T0, 200);
    json_t *n2 = body_json(0, "/news/latest", "", 1, T0 + 3 * 60 * 1000, 200);
    json_t *a1 = json_object_get(n1, "articles"), *a2 = json_object_get(n2, "articles");
    assert_int_equal(json_array_size(a1), 10);
    /* three minutes later a new headline leads and the old lead is second */
    assert_string_equal(json_string_value(json_object_get(json_array_get(a1, 0), "url")),
                        json_string_value(json_object_get(json_array_get(a2, 1), "url")));
    json_decref(n1);
    json_decref(n2);
    int status;
    assert_null(hf_sim_body(0, "/news/other", "", 1, T0, &status));
    assert_int_equal(status, 404);
}

static void fault_requests(void **state)
{
    (void)state;
    struct hf_sim_fault_req r;
    const char *why = NULL;
    const char *ok = "{\"api\":\"news\",\"mode\":\"503\",\"for\":\"60s\"}";
    assert_true(hf_sim_fault_parse(ok, strlen(ok), &r, &why));
    assert_int_equal(r.api, hf_sim_api_index("news"));
    assert_int_equal(r.mode, HF_SIM_503);
    assert_int_equal(r.for_ms, 60000);
    const char *all = "{\"api\":\"*\",\"mode\":\"slow\",\"delay\":\"250ms\"}";
    assert_true(hf_sim_fault_parse(all, strlen(all), &r, &why));
    assert_int_equal(r.api, -1);
    assert_int_equal(r.mode, HF_SIM_SLOW);
    assert_int_equal(r.delay_ms, 250);
    assert_int_equal(r.for_ms, 0);
    static const char *const bad[] = {
        "",
        "[]",
        "{\"api\":\"news\"}",
        "{\"api\":\"mail\",\"mode\":\"503\"}",
        "{\"api\":\"news\",\"mode\":\"404\"}",
        "{\"api\":\"news\",\"mode\":\"503\",\"for\":\"soon\"}",
        "{\"api\":\"news\",\"mode\":\"503\",\"extra\":1}",
        "{\"api\":\"news\",\"mode\":\"slow\",\"delay\":\"1h\"}",
        "{\"api\":1,\"mode\":\"503\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_false(hf_sim_fault_parse(bad[i], strlen(bad[i]), &r, &why));
        assert_non_null(why);
    }
}

static void faults_expire_with_time(void **state)
{
    (void)state;
    struct hf_sim_fault table[HF_SIM_APIS] = {0};
    struct hf_sim_fault_req r;
    const char *why = NULL;
    const char *body = "{\"api\":\"news\",\"mode\":\"503\",\"for\":\"1s\"}";
    assert_true(hf_sim_fault_parse(body, strlen(body), &r, &why));
    hf_sim_fault_apply(table, &r, T0);
    assert_int_equal(hf_sim_fault_at(&table[HF_SIM_NEWS], T0 + 999).mode, HF_SIM_503);
    assert_int_equal(hf_sim_fault_at(&table[HF_SIM_QUOTES], T0).mode, HF_SIM_OK);
    char *t = hf_sim_fault_table(table, T0 + 500);
    assert_non_null(strstr(t, "\"mode\": \"503\""));
    assert_non_null(strstr(t, "\"until\": \"2026-11-28T19:18:59Z\"")); /* T0 + 1 s */
    free(t);
    assert_int_equal(hf_sim_fault_at(&table[HF_SIM_NEWS], T0 + 1000).mode, HF_SIM_OK);
    assert_int_equal(table[HF_SIM_NEWS].mode, HF_SIM_OK); /* cleared, not just hidden */
    t = hf_sim_fault_table(table, T0 + 1000);
    assert_null(strstr(t, "503"));
    free(t);

    /* "*" without "for": every API until changed; "ok" on one clears that one */
    body = "{\"api\":\"*\",\"mode\":\"timeout\"}";
    assert_true(hf_sim_fault_parse(body, strlen(body), &r, &why));
    hf_sim_fault_apply(table, &r, T0);
    for (int i = 0; i < HF_SIM_APIS; i++)
        assert_int_equal(hf_sim_fault_at(&table[i], T0 + 86400000).mode, HF_SIM_TIMEOUT);
    body = "{\"api\":\"fx\",\"mode\":\"ok\"}";
    assert_true(hf_sim_fault_parse(body, strlen(body), &r, &why));
    hf_sim_fault_apply(table, &r, T0);
    assert_int_equal(hf_sim_fault_at(&table[HF_SIM_FX], T0).mode, HF_SIM_OK);
    assert_int_equal(hf_sim_fault_at(&table[HF_SIM_NEWS], T0).mode, HF_SIM_TIMEOUT);
    t = hf_sim_fault_table(table, T0);
    json_t *o = json_loads(t, 0, NULL);
    free(t);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(o, "faults"), "quotes"), "mode")),
                        "timeout");
    assert_true(json_is_null(
        json_object_get(json_object_get(json_object_get(o, "faults"), "quotes"), "until")));
    json_decref(o);
}

static void rate_limit_headers(void **state)
{
    (void)state;
    struct hf_sim_limiter l;
    struct hf_sim_rate r;
    /* 2 a minute: one token every 30 s; mono and wall clocks apart on purpose */
    struct hf_sim_limit lim = {.rate_count = 2, .rate_per_ms = 60000};
    int64_t mono = 5000, wall = T0;
    assert_int_equal(hf_sim_limiter_init(&l, &lim), HF_OK);
    hf_sim_limiter_peek(&l, mono, wall, &r);
    assert_true(r.limited);
    assert_int_equal(r.limit, 2);
    assert_int_equal(r.remaining, 2);
    assert_true(hf_sim_limiter_take(&l, mono, wall, &r));
    assert_int_equal(r.remaining, 1);
    assert_int_equal(r.reset_s, (T0 + 30000) / 1000); /* a token within 30 s */
    assert_true(hf_sim_limiter_take(&l, mono + 10000, wall + 10000, &r));
    assert_int_equal(r.remaining, 0);
    /* the first token comes back 30 s after the first take: 20 s from now */
    assert_int_equal(r.reset_s, (T0 + 30000) / 1000);
    assert_false(hf_sim_limiter_take(&l, mono + 10000, wall + 10000, &r));
    assert_false(r.by_quota);
    assert_int_equal(r.retry_after_s, 20);
    assert_int_equal(r.remaining, 0);
    assert_true(hf_sim_limiter_take(&l, mono + 30000, wall + 30000, &r));
    hf_sim_limiter_fini(&l);

    /* a quota of 3 a day beside the default rate: the quota is the tighter */
    lim = (struct hf_sim_limit){.quota_count = 3, .quota_per_ms = 86400000};
    assert_int_equal(hf_sim_limiter_init(&l, &lim), HF_OK);
    int64_t midnight = T0 - T0 % 86400000 + 86400000;
    for (int i = 2; i >= 0; i--) {
        assert_true(hf_sim_limiter_take(&l, mono, wall, &r));
        assert_int_equal(r.limit, 3);
        assert_int_equal(r.remaining, i);
        assert_int_equal(r.reset_s, midnight / 1000);
    }
    assert_false(hf_sim_limiter_take(&l, mono, wall, &r));
    assert_true(r.by_quota);
    assert_int_equal(r.retry_after_s, (midnight - wall + 999) / 1000);
    /* the refused request spent no token of the rate limit (600/1m) */
    hf_sim_limiter_fini(&l);
    lim = (struct hf_sim_limit){.rate_count = -1};
    assert_int_equal(hf_sim_limiter_init(&l, &lim), HF_OK);
    assert_true(hf_sim_limiter_take(&l, mono, wall, &r));
    assert_false(r.limited); /* no limits, no headers */
    hf_sim_limiter_fini(&l);
}

/* --- the embedded server ---------------------------------------------------- */

struct reply {
    CURLcode rc;
    long status;
    double secs;
    char body[16384];
    size_t len;
    char headers[4096];
    size_t hlen;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char *buf = ((char **)arg)[0];
    size_t *len = ((size_t **)arg)[1], cap = *(size_t *)((char **)arg)[2];
    size_t k = size * n;
    if (*len + k < cap) {
        memcpy(buf + *len, p, k);
        *len += k;
        buf[*len] = '\0';
    }
    return k;
}

static void http(const char *sock, const char *method, const char *path, const char *body,
                 long timeout_ms, struct reply *r)
{
    memset(r, 0, sizeof *r);
    size_t bcap = sizeof r->body, hcap = sizeof r->headers;
    void *bargs[3] = {r->body, &r->len, &bcap}, *hargs[3] = {r->headers, &r->hlen, &hcap};
    char url[256];
    snprintf(url, sizeof url, "http://sim%s", path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, bargs);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hargs);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->secs);
    curl_easy_cleanup(c);
}

static void set_fault(const char *sock, const char *json)
{
    struct reply r;
    http(sock, "POST", "/_sim/faults", json, 2000, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
}

static void embedded_server_faults(void **state)
{
    (void)state;
    const char *dir = getenv("HF_TEST_TMPDIR");
    char sock[108], listen[120];
    snprintf(sock, sizeof sock, "%s/sim-%d.sock", dir ? dir : "/tmp", (int)getpid());
    snprintf(listen, sizeof listen, "unix:%s", sock);
    struct hf_sim_options o = {.listen = listen, .seed = 3, .quiet = true};
    o.limits[HF_SIM_FX] = (struct hf_sim_limit){.rate_count = 1, .rate_per_ms = 60000};
    char key[] = "s3cret";
    o.keys[HF_SIM_QUOTES] = key;
    struct hf_sim *sim = NULL;
    char err[256];
    assert_int_equal(hf_sim_start(&o, &sim, err, sizeof err), HF_OK);
    key[0] = 'X'; /* the simulator kept its own copy */
    assert_string_equal(hf_sim_address(sim), listen);
    struct reply r;

    /* healthy: JSON, cacheable, tagged, limited */
    http(sock, "GET", "/news/latest?country=us", NULL, 2000, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"articles\":[{\"title\":"));
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    assert_non_null(strstr(r.headers, "Cache-Control: max-age=60"));
    assert_non_null(strstr(r.headers, "ETag: \""));
    assert_non_null(strstr(r.headers, "Date: "));
    assert_non_null(strstr(r.headers, "X-RateLimit-Limit: 600"));
    assert_non_null(strstr(r.headers, "X-RateLimit-Reset: "));
    /* the key */
    http(sock, "GET", "/quotes/AAPL", NULL, 2000, &r);
    assert_int_equal(r.status, 401);
    /* the rate limit: 1 a minute on fx */
    http(sock, "GET", "/fx/latest?base=USD", NULL, 2000, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "X-RateLimit-Remaining: 0"));
    http(sock, "GET", "/fx/latest?base=USD", NULL, 2000, &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.headers, "Retry-After: "));

    set_fault(sock, "{\"api\":\"news\",\"mode\":\"503\"}");
    http(sock, "GET", "/news/latest", NULL, 2000, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"error\":\"service_unavailable\""));
    set_fault(sock, "{\"api\":\"news\",\"mode\":\"429\"}");
    http(sock, "GET", "/news/latest", NULL, 2000, &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.headers, "Retry-After: 30\r\n"));
    set_fault(sock, "{\"api\":\"news\",\"mode\":\"reset\"}");
    http(sock, "GET", "/news/latest", NULL, 2000, &r);
    assert_true(r.rc == CURLE_GOT_NOTHING || r.rc == CURLE_RECV_ERROR);
    set_fault(sock, "{\"api\":\"news\",\"mode\":\"timeout\"}");
    http(sock, "GET", "/news/latest", NULL, 300, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    set_fault(sock, "{\"api\":\"news\",\"mode\":\"garbage\"}");
    http(sock, "GET", "/news/latest", NULL, 2000, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_null(j); /* not JSON */
    set_fault(sock, "{\"api\":\"news\",\"mode\":\"slow\",\"delay\":\"200ms\"}");
    http(sock, "GET", "/news/latest", NULL, 3000, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.secs >= 0.2);
    assert_non_null(strstr(r.body, "\"articles\""));
    set_fault(sock, "{\"api\":\"news\",\"mode\":\"ok\"}");
    http(sock, "GET", "/news/latest", NULL, 2000, &r);
    assert_int_equal(r.status, 200);

    /* a bad request is explained */
    http(sock, "POST", "/_sim/faults", "{\"api\":\"news\",\"mode\":\"down\"}", 2000, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "unknown mode"));

    /* the counts: news had 9 requests, one of each kind */
    http(sock, "GET", "/_sim/stats", NULL, 2000, &r);
    assert_int_equal(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    json_t *news = json_object_get(json_object_get(j, "apis"), "news");
    json_t *oc = json_object_get(news, "outcomes");
    assert_int_equal(json_integer_value(json_object_get(news, "requests")), 8);
    static const char *const one[] = {"fault_503", "fault_429", "reset",
                                      "timeout",   "garbage",   "slow"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        assert_int_equal(json_integer_value(json_object_get(oc, one[i])), 1);
    assert_int_equal(json_integer_value(json_object_get(oc, "ok")), 2);
    json_t *fx = json_object_get(json_object_get(j, "apis"), "fx");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(fx, "outcomes"), "rate_limited")), 1);
    json_decref(j);

    /* reset: no faults, no counts, the limits full again */
    set_fault(sock, "{\"api\":\"*\",\"mode\":\"timeout\"}");
    http(sock, "POST", "/_sim/reset", "", 2000, &r);
    assert_int_equal(r.status, 200);
    http(sock, "GET", "/fx/latest?base=EUR", NULL, 2000, &r);
    assert_int_equal(r.status, 200);
    http(sock, "GET", "/_sim/stats", NULL, 2000, &r);
    assert_non_null(strstr(r.body, "\"requests\": 1"));

    /* stop with a request held by a timeout: its connection is closed */
    set_fault(sock, "{\"api\":\"news\",\"mode\":\"timeout\"}");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char req[] = "GET /news/latest HTTP/1.1\r\nHost: sim\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    for (int i = 0; i < 200; i++) { /* until the simulator holds it */
        http(sock, "GET", "/_sim/stats", NULL, 2000, &r);
        if (strstr(r.body, "\"timeout\": 1") != NULL)
            break;
    }
    assert_non_null(strstr(r.body, "\"timeout\": 1"));
    hf_sim_stop(&sim);
    assert_null(sim);
    char buf[64];
    assert_true(read(fd, buf, sizeof buf) <= 0); /* closed, unanswered */
    close(fd);
    assert_int_equal(access(sock, F_OK), -1); /* the socket file is gone */
    hf_sim_stop(&sim);                        /* NULL: a no-op */
}

static void start_errors(void **state)
{
    (void)state;
    struct hf_sim *sim = (struct hf_sim *)1;
    char err[256];
    struct hf_sim_options o = {.listen = "nonsense", .quiet = true};
    assert_int_equal(hf_sim_start(&o, &sim, err, sizeof err), HF_CONFIG);
    assert_null(sim);
    assert_non_null(strstr(err, "nonsense"));
    o.listen = "127.0.0.1:0";
    o.limits[HF_SIM_NEWS].rate_per_ms = -5;
    o.limits[HF_SIM_NEWS].rate_count = 3;
    assert_int_equal(hf_sim_start(&o, &sim, err, sizeof err), HF_CONFIG);
    /* port 0: a free port, reported */
    o.limits[HF_SIM_NEWS] = (struct hf_sim_limit){0};
    assert_int_equal(hf_sim_start(&o, &sim, err, sizeof err), HF_OK);
    assert_true(strncmp(hf_sim_address(sim), "127.0.0.1:", 10) == 0);
    assert_true(strcmp(hf_sim_address(sim), "127.0.0.1:0") != 0);
    hf_sim_stop(&sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_inputs_same_answer),
        cmocka_unit_test(quotes_move_and_have_history),
        cmocka_unit_test(fx_and_news),
        cmocka_unit_test(fault_requests),
        cmocka_unit_test(faults_expire_with_time),
        cmocka_unit_test(rate_limit_headers),
        cmocka_unit_test(embedded_server_faults),
        cmocka_unit_test(start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
