/*
 * Fleet mode through the library: three clients (three engines, three
 * hf_fleet, as three instances would hold) on one real redis-server,
 * against one scripted API on loopback.  A herd over the three makes one
 * call; a rate and a quota hold across them; a 429 one of them saw pauses
 * the others; with Redis gone each takes its share (rate / fleet.size).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <holdfast/holdfast.h>

#include "origin.h"

#define REDIS_BIN "/usr/bin/redis-server"
#define N_CLIENTS 3

static char g_dir[64];
static char g_sock[128];
static char g_url[160];
static pid_t g_redis = -1;

static redisContext *redis_connect(void)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectUnixWithTimeout(g_sock, tv);
    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void redis_start(void)
{
    g_redis = fork();
    assert_true(g_redis >= 0);
    if (g_redis == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execl(REDIS_BIN, REDIS_BIN, "--port", "0", "--unixsocket", g_sock, "--save", "",
              "--appendonly", "no", "--dir", g_dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* up to 5 s */
        redisContext *c = redis_connect();
        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return;
        }
        usleep(10000);
    }
    fail_msg("redis-server did not start on %s", g_sock);
}

static void redis_stop(void)
{
    if (g_redis <= 0)
        return;
    kill(g_redis, SIGKILL);
    waitpid(g_redis, NULL, 0);
    g_redis = -1;
    unlink(g_sock);
}

static void redis_flush(void)
{
    redisContext *c = redis_connect();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/hf-fleet-flow-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_sock, sizeof g_sock, "%s/redis.sock", g_dir);
    snprintf(g_url, sizeof g_url, "redis+unix://%s", g_sock);
    redis_start();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    redis_stop();
    rmdir(g_dir);
    return 0;
}

/* --- the fleet -------------------------------------------------------------- */

struct fx {
    struct api *api;
    char upstream[64];
    struct hf_client *c[N_CLIENTS];
};

/* Three clients on one Redis with route r (its upstream set here). */
static void fx_open(struct fx *f, struct hf_route_config r, int fleet_size)
{
    f->api = api_start();
    snprintf(f->upstream, sizeof f->upstream, "http://127.0.0.1:%d/v1/", f->api->port);
    r.upstream = f->upstream;
    struct hf_config c;
    hf_config_default(&c);
    c.routes = &r;
    c.nroutes = 1;
    c.store = "memory:";
    c.store_redis = g_url;
    c.fleet_size = fleet_size;
    for (int i = 0; i < N_CLIENTS; i++) {
        char err[256] = "";
        hf_err e = hf_client_create(&c, &f->c[i], err, sizeof err);
        if (e != HF_OK)
            fail_msg("client %d: %s", i, err);
    }
}

static void fx_close(struct fx *f)
{
    for (int i = 0; i < N_CLIENTS; i++)
        hf_client_destroy(&f->c[i]);
    api_stop(f->api);
}

static struct hf_route_config route(const char *name)
{
    struct hf_route_config r;
    hf_route_config_default(&r);
    r.name = name;
    r.fresh_for_ms = 600000;
    r.retry.attempts = 1;
    r.retry.jitter = HF_JITTER_NONE;
    r.timeout_ms = 3000;
    return r;
}

static int setup(void **state)
{
    (void)state;
    if (g_redis <= 0)
        redis_start(); /* a test stopped it */
    redis_flush();
    return 0;
}

/* --- one call for a herd ---------------------------------------------------- */

struct caller {
    struct hf_client *c;
    const char *target;
    struct hf_response r;
    hf_err err;
};

static void *call(void *arg)
{
    struct caller *k = arg;
    k->err = hf_get(k->c, "herd", k->target, &k->r);
    return NULL;
}

static void herd_makes_one_call(void **state)
{
    (void)state;
    struct fx f = {0};
    fx_open(&f, route("herd"), N_CLIENTS);
    api_set(f.api, 200, "", "the one answer", 300);
    enum { PER = 8, N = PER * N_CLIENTS };
    struct caller k[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        k[i] = (struct caller){.c = f.c[i % N_CLIENTS], .target = "/latest"};
        assert_int_equal(pthread_create(&t[i], NULL, call, &k[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int origin = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(k[i].err, HF_OK);
        assert_int_equal(k[i].r.status, 200);
        assert_string_equal(k[i].r.body, "the one answer");
        origin += k[i].r.source == HF_SOURCE_ORIGIN;
        hf_response_free(&k[i].r);
    }
    /* one instance asked the API (its callers share that answer); the
     * other two read its copy from Redis */
    assert_int_equal(api_requests(f.api), 1);
    assert_true(origin >= 1 && origin <= PER);
    fx_close(&f);
}

/* --- limits ----------------------------------------------------------------- */

/* Ask for n distinct keys, round robin over the clients; count outcomes. */
static void ask_many(struct fx *f, const char *name, int n, int *sent, int *refused, hf_err why)
{
    *sent = *refused = 0;
    for (int i = 0; i < n; i++) {
        char target[32];
        snprintf(target, sizeof target, "/k%d", i);
        struct hf_response r;
        hf_err e = hf_get(f->c[i % N_CLIENTS], name, target, &r);
        if (e == HF_OK && r.source == HF_SOURCE_ORIGIN)
            ++*sent;
        else if (e == why)
            ++*refused;
        else
            fail_msg("%s %s: unexpected %s (source %d)", name, target, hf_strerror(e), r.source);
        hf_response_free(&r);
    }
}

static void rate_holds_across_the_fleet(void **state)
{
    (void)state;
    struct fx f = {0};
    struct hf_route_config r = route("rated");
    r.rate_limit_count = 3;
    r.rate_limit_per_ms = 60000;
    r.retry.deadline_ms = 500; /* no waiting 20 s for the next token */
    fx_open(&f, r, N_CLIENTS);
    int sent, refused;
    ask_many(&f, "rated", 12, &sent, &refused, HF_RATE_LIMITED);
    /* the fleet's burst of 3, not 3 per instance */
    assert_int_equal(sent, 3);
    assert_int_equal(refused, 9);
    assert_int_equal(api_requests(f.api), 3);
    fx_close(&f);
}

static void quota_holds_across_the_fleet(void **state)
{
    (void)state;
    struct fx f = {0};
    struct hf_route_config r = route("quota");
    r.quota_count = 4;
    r.quota_per_ms = 86400000;
    fx_open(&f, r, N_CLIENTS);
    int sent, refused;
    ask_many(&f, "quota", 10, &sent, &refused, HF_QUOTA_SPENT);
    assert_int_equal(sent, 4);
    assert_int_equal(refused, 6);
    assert_int_equal(api_requests(f.api), 4);
    fx_close(&f);
}

static void pause_seen_by_all(void **state)
{
    (void)state;
    struct fx f = {0};
    /* no rate or quota of its own: the pause still travels */
    fx_open(&f, route("paused"), N_CLIENTS);
    api_set(f.api, 429, "Retry-After: 30\r\n", "slow down", 0);
    struct hf_response resp;
    assert_int_equal(hf_get(f.c[0], "paused", "/a", &resp), HF_HTTP_429);
    hf_response_free(&resp);
    assert_int_equal(api_requests(f.api), 1);
    api_set(f.api, 200, "", "fine", 0);
    /* the others were told too, and send nothing for 30 s; the pause
     * travels through Redis, so allow its publication a moment */
    for (int i = 1; i < N_CLIENTS; i++) {
        hf_err e = HF_OK;
        for (int tries = 0; tries < 100; tries++) {
            e = hf_get(f.c[i], "paused", "/b", &resp);
            hf_response_free(&resp);
            if (e == HF_RATE_LIMITED)
                break;
            assert_int_equal(api_requests(f.api), 1); /* never sent meanwhile */
            usleep(10000);
        }
        assert_int_equal(e, HF_RATE_LIMITED);
    }
    assert_int_equal(api_requests(f.api), 1);
    fx_close(&f);
}

/* Redis away: each instance takes its share of the burst (3 / 3 = 1). */
static void redis_away_splits_the_limits(void **state)
{
    (void)state;
    struct fx f = {0};
    struct hf_route_config r = route("split");
    r.rate_limit_count = 3;
    r.rate_limit_per_ms = 60000;
    r.retry.deadline_ms = 500;
    redis_stop();
    fx_open(&f, r, N_CLIENTS);
    int sent, refused;
    ask_many(&f, "split", 12, &sent, &refused, HF_RATE_LIMITED);
    assert_int_equal(sent, 3);
    assert_int_equal(refused, 9);
    /* and a copy in memory is still served with Redis gone */
    struct hf_response resp;
    assert_int_equal(hf_get(f.c[0], "split", "/k0", &resp), HF_OK);
    assert_int_equal(resp.source, HF_SOURCE_FRESH);
    hf_response_free(&resp);
    assert_int_equal(api_requests(f.api), 3);
    fx_close(&f);
    redis_start();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(herd_makes_one_call, setup),
        cmocka_unit_test_setup(rate_holds_across_the_fleet, setup),
        cmocka_unit_test_setup(quota_holds_across_the_fleet, setup),
        cmocka_unit_test_setup(pause_seen_by_all, setup),
        cmocka_unit_test_setup(redis_away_splits_the_limits, setup),
    };
    hf_log_setup(getenv("HF_TEST_LOG") ? getenv("HF_TEST_LOG") : "off", 2);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
