/*
 * The public client API end to end over a real loopback socket: hf_get()
 * from the cache, from the API, stale on failure, none; hf_request(); and
 * two threads asking for one key at once making one API request.  The API is
 * a small scripted server thread in this file (real sockets, real parsing by
 * libcurl); it counts what it is asked.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <holdfast/holdfast.h>

#include "origin.h"

struct fixture {
    struct api *api;
    struct hf_client *client;
    char upstream[64];
    struct hf_header key;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->api = api_start();
    snprintf(f->upstream, sizeof f->upstream, "http://127.0.0.1:%d/v1/", f->api->port);
    struct hf_route_config r;
    hf_route_config_default(&r);
    r.name = "news";
    r.upstream = f->upstream;
    r.fresh_for_ms = 0; /* never fresh unless a test says so: each call asks the API */
    r.retry.attempts = 2;
    r.retry.backoff_ms = 10;
    r.retry.jitter = HF_JITTER_NONE;
    f->key = (struct hf_header){"X-Api-Key", "k-secret"};
    r.headers = &f->key;
    r.nheaders = 1;
    struct hf_route_config routes[3] = {r, r, r};
    routes[1].name = "fresh";
    routes[1].fresh_for_ms = 600000;
    static const char *const bg_keys[] = {"/top"};
    routes[2].name = "bg";
    routes[2].mode = HF_MODE_BACKGROUND;
    routes[2].refresh_every = "1h";
    routes[2].refresh_keys = bg_keys;
    routes[2].nrefresh_keys = 1;
    struct hf_config c;
    hf_config_default(&c);
    c.routes = routes;
    c.nroutes = 3;
    c.store = "memory:";
    char err[256] = "";
    assert_int_equal(hf_client_create(&c, &f->client, err, sizeof err), HF_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hf_client_destroy(&f->client);
    assert_null(f->client);
    api_stop(f->api);
    free(f);
    return 0;
}

/* A background route through the library: hf_client_refresh() brings the
 * keys, hf_get() reads the cache only, whatever it is asked. */
static void background_route(void **state)
{
    struct fixture *f = *state;
    struct hf_response r;
    assert_int_equal(hf_get(f->client, "bg", "/top", &r), HF_NOT_REFRESHED);
    assert_int_equal(r.source, HF_SOURCE_NONE);
    assert_non_null(strstr(r.error_detail, "no copy of /top yet"));
    hf_response_free(&r);
    assert_int_equal(api_requests(f->api), 0);

    api_set(f->api, 200, "", "headlines", 0);
    struct hf_refresh_counts n;
    assert_int_equal(hf_client_refresh(f->client, "bg", 0, &n), HF_OK);
    assert_int_equal(n.refreshed, 1);
    assert_int_equal(n.stale + n.missing + n.skipped, 0);
    assert_int_equal(api_requests(f->api), 1);
    assert_string_equal(f->api->last_target, "/v1/top");

    /* served again and again from the one copy (each response owns a reference) */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hf_get(f->client, "bg", "/top", &r), HF_OK);
        assert_int_equal(r.source, HF_SOURCE_FRESH);
        assert_string_equal(r.body, "headlines");
        hf_response_free(&r);
    }
    assert_int_equal(hf_get(f->client, "bg", "/elsewhere", &r), HF_NOT_REFRESHED);
    hf_response_free(&r);
    assert_int_equal(api_requests(f->api), 1);

    /* a run whose copies are young skips them; an unknown route is refused */
    assert_int_equal(hf_client_refresh(f->client, "bg", 60000, &n), HF_OK);
    assert_int_equal(n.skipped, 1);
    assert_int_equal(hf_client_refresh(f->client, "news", 0, &n), HF_NOT_FOUND);
    assert_int_equal(api_requests(f->api), 1);
}

static void origin_then_stale_then_none(void **state)
{
    struct fixture *f = *state;
    struct hf_response r;
    assert_int_equal(hf_get(f->client, "news", "/latest?b=2&a=1", &r), HF_OK);
    assert_int_equal(r.source, HF_SOURCE_ORIGIN);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.body, "hello");
    assert_string_equal(f->api->last_target, "/v1/latest?b=2&a=1");
    assert_non_null(strstr(f->api->last_headers, "X-Api-Key: k-secret"));
    hf_response_free(&r);

    /* the API fails twice: the stale copy, with the reason */
    api_set(f->api, 503, "", "down", 0);
    assert_int_equal(hf_get(f->client, "news", "/latest?a=1&b=2", &r), HF_OK);
    assert_int_equal(r.source, HF_SOURCE_STALE);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.error, HF_HTTP_5XX);
    assert_int_equal(r.error_status, 503);
    assert_true(r.stored_at_ms > 0);
    hf_response_free(&r);

    /* no copy of another key: nothing to serve */
    assert_int_equal(hf_get(f->client, "news", "/other", &r), HF_HTTP_5XX);
    assert_int_equal(r.source, HF_SOURCE_NONE);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    hf_response_free(&r);
    assert_int_equal(api_requests(f->api), 1 + 2 + 2);
}

static void fresh_copy_asks_nothing(void **state)
{
    struct fixture *f = *state;
    struct hf_response r;
    assert_int_equal(hf_get(f->client, "fresh", "/x", &r), HF_OK);
    assert_int_equal(r.source, HF_SOURCE_ORIGIN);
    hf_response_free(&r);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(hf_get(f->client, "fresh", "/x", &r), HF_OK);
        assert_int_equal(r.source, HF_SOURCE_FRESH);
        assert_int_equal(r.attempts, 0);
        assert_string_equal(r.body, "hello");
        hf_response_free(&r);
    }
    assert_int_equal(api_requests(f->api), 1);
}

static void client_error_passed_on(void **state)
{
    struct fixture *f = *state;
    api_set(f->api, 404, "", "no such thing", 0);
    struct hf_response r;
    assert_int_equal(hf_get(f->client, "news", "/missing", &r), HF_OK);
    assert_int_equal(r.source, HF_SOURCE_ORIGIN);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.body, "no such thing");
    char v[64];
    assert_true(hf_response_header(&r, "content-length", v, sizeof v));
    assert_string_equal(v, "13");
    assert_false(hf_response_header(&r, "X-Absent", v, sizeof v));
    hf_response_free(&r);
}

static void unknown_route_and_bad_url(void **state)
{
    struct fixture *f = *state;
    struct hf_response r;
    assert_int_equal(hf_get(f->client, "nope", "/x", &r), HF_NO_ROUTE);
    assert_non_null(strstr(r.error_detail, "nope"));
    hf_response_free(&r);
    struct hf_request rq = {.url = "notaurl"};
    assert_int_equal(hf_request(f->client, &rq, &r), HF_BAD_URL);
    hf_response_free(&r);
    assert_int_equal(api_requests(f->api), 0);
}

static void post_is_not_retried(void **state)
{
    struct fixture *f = *state;
    api_set(f->api, 503, "", "busy", 0);
    char url[128];
    snprintf(url, sizeof url, "%sorders", f->upstream);
    struct hf_request rq = {
        .method = "POST", .url = url, .body = "a=1", .body_len = 3, .route = "news"};
    struct hf_response r;
    assert_int_equal(hf_request(f->client, &rq, &r), HF_OK);
    assert_int_equal(r.source, HF_SOURCE_ORIGIN);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 1);
    hf_response_free(&r);
    assert_int_equal(api_requests(f->api), 1);
}

struct caller {
    struct hf_client *c;
    struct hf_response r;
    hf_err err;
};

static void *call(void *arg)
{
    struct caller *k = arg;
    k->err = hf_get(k->c, "fresh", "/slow", &k->r);
    return NULL;
}

static void concurrent_callers_coalesce(void **state)
{
    struct fixture *f = *state;
    api_set(f->api, 200, "", "slow answer", 300);
    enum { N = 8 };
    struct caller k[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        k[i] = (struct caller){.c = f->client};
        pthread_create(&t[i], NULL, call, &k[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(k[i].err, HF_OK);
        assert_string_equal(k[i].r.body, "slow answer");
        hf_response_free(&k[i].r);
    }
    /* the first asks, the others wait for it (or find its fresh copy) */
    assert_int_equal(api_requests(f->api), 1);
}

static void log_setup(void **state)
{
    (void)state;
    assert_int_equal(hf_log_setup("loud", 2), HF_EINVAL);
    assert_int_equal(hf_log_setup(NULL, 2), HF_EINVAL);
    assert_int_equal(hf_log_setup("warn", -1), HF_EINVAL);
    /* a failure with logs off writes nothing to the pipe */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(hf_log_setup("off", p[1]), HF_OK);
    struct fixture *f = NULL;
    setup((void **)&f);
    api_set(f->api, 503, "", "down", 0);
    struct hf_response r;
    hf_get(f->client, "news", "/quiet", &r);
    hf_response_free(&r);
    /* and with warnings on, the retry is logged as one JSON line */
    assert_int_equal(hf_log_setup("warn", p[1]), HF_OK);
    hf_get(f->client, "news", "/loud", &r);
    hf_response_free(&r);
    teardown((void **)&f);
    assert_int_equal(hf_log_setup("warn", 2), HF_OK);
    close(p[1]);
    char buf[8192];
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    /* exactly one retry line: /loud's; /quiet's was not written */
    const char *first = strstr(buf, "\"event\":\"retry\"");
    assert_non_null(first);
    assert_null(strstr(first + 1, "\"event\":\"retry\""));
    assert_int_equal(buf[0], '{');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(background_route, setup, teardown),
        cmocka_unit_test_setup_teardown(origin_then_stale_then_none, setup, teardown),
        cmocka_unit_test_setup_teardown(fresh_copy_asks_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(client_error_passed_on, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_route_and_bad_url, setup, teardown),
        cmocka_unit_test_setup_teardown(post_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_callers_coalesce, setup, teardown),
        cmocka_unit_test(log_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
