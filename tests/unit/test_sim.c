/*
 * holdfast sim's pure parts: the data is a function of the seed and the
 * clock (same inputs, same JSON; prices move with time), errors for unknown
 * tickers and bases, and the fault requests' parsing.  The server itself is
 * exercised by tests/scenario/s00001.vtc and the browser test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "sim/sim.h"

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
    json_t *q1 = body_json(1, "/quotes/MSFT", "", 1, T0, 200);
    json_t *q2 = body_json(1, "/quotes/MSFT", "", 1, T0 + 3600 * 1000, 200);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_inputs_same_answer),
        cmocka_unit_test(quotes_move_and_have_history),
        cmocka_unit_test(fx_and_news),
        cmocka_unit_test(fault_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
