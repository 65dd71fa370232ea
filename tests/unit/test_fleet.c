/*
 * The fleet against a real redis-server (redis_server.h: a unix socket in
 * a fresh directory, started for the group, stopped at its end and at
 * exit), never a mock.  Every answer comes back through a real libevent
 * loop, as in the engine.  Time is moved by hand (now_ms): the scripts
 * never read Redis's clock, so a minute passes in a call; only the tests
 * of a lock's expiry and of a wait's timeout let real time pass (at most
 * a few hundred ms).  Several fleets on one Redis stand for instances.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/hiredis.h>

#include "core/clock.h"
#include "fleet/fleet.h"
#include "limit/pause.h"
#include "obs/log.h"
#include "redis_server.h"

#define MINUTE 60000
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* Times near the real clock, on a day boundary: quota windows start
 * there, and a pause's TTL (which the real clock measures) stays
 * positive. */
static int64_t T0;

/* ------------------------------------------------------------------ */
/* The loop                                                           */
/* ------------------------------------------------------------------ */

static struct event_base *g_base;
static struct event *g_tick; /* wakes the loop every 5 ms: no wait is unbounded */

struct answer {
    int fired;
    struct hf_fleet_answer a;
};

static void on_answer(const struct hf_fleet_answer *a, void *arg)
{
    struct answer *x = arg;
    x->fired++;
    x->a = *a;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Run the loop until *n reaches want, at most timeout_ms. */
static void loop_until(const int *n, int want, int64_t timeout_ms)
{
    int64_t deadline = hf_clock_mono_ms() + timeout_ms;
    while (*n < want) {
        if (hf_clock_mono_ms() > deadline)
            fail_msg("only %d of %d answers within %" PRId64 " ms", *n, want, timeout_ms);
        event_base_loop(g_base, EVLOOP_ONCE);
    }
}

/* Run the loop for about ms (answers that should not come get the chance). */
static void loop_for(int64_t ms)
{
    int64_t end = hf_clock_mono_ms() + ms;
    while (hf_clock_mono_ms() < end)
        event_base_loop(g_base, EVLOOP_ONCE);
}

static struct hf_fleet_answer take_at(struct hf_fleet *f, const struct hf_fleet_limits *l,
                                      int64_t now)
{
    struct answer x = {0};
    assert_int_equal(hf_fleet_take(f, g_base, l, now, on_answer, &x, NULL), HF_OK);
    loop_until(&x.fired, 1, 3000);
    return x.a;
}

static struct hf_fleet_answer lock_key(struct hf_fleet *f, const char *key, int64_t ttl_ms)
{
    struct answer x = {0};
    assert_int_equal(hf_fleet_lock(f, g_base, key, ttl_ms, on_answer, &x, NULL), HF_OK);
    loop_until(&x.fired, 1, 3000);
    return x.a;
}

static const char *verdict_name(enum hf_fleet_verdict v)
{
    static const char *const names[] = {"GO",   "RATE", "QUOTA",   "PAUSED",
                                        "HELD", "DONE", "TIMEOUT", "DOWN"};
    return v <= HF_FLEET_DOWN ? names[v] : "?";
}

static void expect_verdict(const struct hf_fleet_answer *a, enum hf_fleet_verdict want)
{
    if (a->verdict != want)
        fail_msg("answered %s, expected %s", verdict_name(a->verdict), verdict_name(want));
}

static void expect_go(const struct hf_fleet_answer *a, int64_t quota_left)
{
    expect_verdict(a, HF_FLEET_GO);
    assert_int_equal(a->quota_left, quota_left);
}

static void expect_rate(const struct hf_fleet_answer *a, int64_t wait_ms)
{
    expect_verdict(a, HF_FLEET_RATE);
    assert_int_equal(a->wait_ms, wait_ms);
}

/* ------------------------------------------------------------------ */
/* Talking to Redis directly                                          */
/* ------------------------------------------------------------------ */

static const char *g_pass; /* requirepass while a test has set one */

static redisReply *raw(int argc, const char **argv, const size_t *lens)
{
    redisContext *c = redis_server_connect();
    assert_non_null(c);
    if (g_pass != NULL)
        freeReplyObject(redisCommand(c, "AUTH %s", g_pass));
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    assert_non_null(r);
    redisFree(c);
    return r;
}

static void raw_ok(int argc, const char **argv)
{
    redisReply *r = raw(argc, argv, NULL);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", argv[0], r->str);
    freeReplyObject(r);
}

static long long raw_int(const char *cmd, const char *key)
{
    const char *argv[2] = {cmd, key};
    redisReply *r = raw(2, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* The string at key (malloc'd), or NULL when there is none. */
static char *raw_get(const char *key)
{
    const char *argv[2] = {"GET", key};
    redisReply *r = raw(2, argv, NULL);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r->type != REDIS_REPLY_STRING)
        assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    return v;
}

static long long subscribers(void)
{
    const char *argv[3] = {"PUBSUB", "NUMSUB", "hf:f:purge"};
    redisReply *r = raw(3, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    long long n = r->element[1]->integer;
    freeReplyObject(r);
    return n;
}

/* ------------------------------------------------------------------ */
/* Logs                                                               */
/* ------------------------------------------------------------------ */

static char log_path[PATH_MAX];
static int log_fd = -1;

static void logs_capture(void)
{
    if (log_fd < 0) {
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        assert_true(log_fd >= 0);
    }
    assert_int_equal(ftruncate(log_fd, 0), 0);
    hf_log_configure(HF_LOG_INFO, HF_LOG_JSON, log_fd);
}

static void logs_release(void)
{
    hf_log_configure(HF_LOG_INFO, HF_LOG_JSON, 2);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}

static const char *logs_text(void)
{
    static char buf[65536];
    FILE *fp = fopen(log_path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static int logs_count(const char *what)
{
    int n = 0;
    for (const char *p = logs_text(); (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

static void logs_have(const char *what)
{
    if (strstr(logs_text(), what) == NULL)
        fail_msg("the logs lack %s:\n%s", what, logs_text());
}

/* ------------------------------------------------------------------ */
/* Fleets                                                             */
/* ------------------------------------------------------------------ */

/* What a fleet's on_purge heard (called on its subscriber thread). */
struct purges {
    pthread_mutex_t mu;
    int n;
    char seen[16][64];
};

static void on_purge(const char *prefix, void *arg)
{
    struct purges *p = arg;
    pthread_mutex_lock(&p->mu);
    if (p->n < 16)
        snprintf(p->seen[p->n], sizeof p->seen[p->n], "%s", prefix);
    p->n++;
    pthread_mutex_unlock(&p->mu);
}

static int purges_n(struct purges *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Wait (up to 3 s) until p has heard n purges. */
static void purges_wait(struct purges *p, int n)
{
    int64_t deadline = hf_clock_mono_ms() + 3000;
    while (purges_n(p) < n) {
        if (hf_clock_mono_ms() > deadline)
            fail_msg("heard %d purges, expected %d", purges_n(p), n);
        redis_server_sleep_ms(2);
    }
}

/*
 * before_release: counts its calls, remembers the lock's value at the
 * moment (the lock must still be held), and while `hold` is set blocks
 * the fleet thread until the test opens it.
 */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool hold, inside;
    int calls;
    const char *key; /* the lock key to look at, "hf:f:lock:..." */
    char value[256]; /* its value when before_release ran */
};

static void before_release(void *arg)
{
    struct gate *g = arg;
    char *v = g->key != NULL ? raw_get(g->key) : NULL;
    pthread_mutex_lock(&g->mu);
    g->calls++;
    snprintf(g->value, sizeof g->value, "%s", v != NULL ? v : "");
    g->inside = true;
    pthread_cond_broadcast(&g->cv);
    while (g->hold)
        pthread_cond_wait(&g->cv, &g->mu);
    g->inside = false;
    pthread_mutex_unlock(&g->mu);
    free(v);
}

static void gate_wait_inside(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->inside)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->hold = false;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

#define MAX_FLEETS 4
static struct hf_fleet *g_fleets[MAX_FLEETS];
static struct purges g_purges[MAX_FLEETS];
static struct gate g_gate;

/* Fleet i (0..3) on url, instance "i<i>", with the recorders wired. */
static struct hf_fleet *fleet_on(int i, const char *url)
{
    char id[16];
    snprintf(id, sizeof id, "i%d", i);
    struct hf_fleet_options o = {.url = url,
                                 .instance = id,
                                 .on_purge = on_purge,
                                 .purge_arg = &g_purges[i],
                                 .before_release = before_release,
                                 .release_arg = &g_gate};
    char err[256] = "";
    hf_err e = hf_fleet_open(&o, &g_fleets[i], err, sizeof err);
    if (e != HF_OK)
        fail_msg("open: %s", err);
    return g_fleets[i];
}

static struct hf_fleet *fleet(int i)
{
    return fleet_on(i, redis_server_url());
}

static void wait_subscribers(long long n)
{
    int64_t deadline = hf_clock_mono_ms() + 3000;
    while (subscribers() < n) {
        if (hf_clock_mono_ms() > deadline)
            fail_msg("%lld subscribers, expected %lld", subscribers(), n);
        redis_server_sleep_ms(2);
    }
}

/* Poll (every 5 ms, up to ms) until f says it is up. */
static bool comes_up(struct hf_fleet *f, int64_t ms)
{
    int64_t deadline = hf_clock_mono_ms() + ms;
    while (!hf_fleet_up(f)) {
        if (hf_clock_mono_ms() > deadline)
            return false;
        redis_server_sleep_ms(5);
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                           */
/* ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    if (!redis_server_start())
        return -1;
    snprintf(log_path, sizeof log_path, "%s/log.txt", redis_server_dir());
    int64_t now = hf_clock_wall_ms();
    T0 = now - now % DAY + 2 * DAY;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    redis_server_stop();
    unlink(log_path);
    return 0;
}

/* Every test starts from a running, empty server, a new loop and new
 * recorders. */
static int setup(void **state)
{
    (void)state;
    redis_server_resume();
    if (!redis_server_running() && !redis_server_start())
        return -1;
    const char *flush[1] = {"FLUSHALL"};
    raw_ok(1, flush);
    logs_capture();
    g_base = event_base_new();
    assert_non_null(g_base);
    g_tick = event_new(g_base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(g_tick, &tv);
    for (int i = 0; i < MAX_FLEETS; i++) {
        memset(&g_purges[i], 0, sizeof g_purges[i]);
        pthread_mutex_init(&g_purges[i].mu, NULL);
    }
    memset(&g_gate, 0, sizeof g_gate);
    pthread_mutex_init(&g_gate.mu, NULL);
    pthread_cond_init(&g_gate.cv, NULL);
    return 0;
}

/* Also after a failed test: no fleet, loop or frozen server left. */
static int teardown(void **state)
{
    (void)state;
    gate_open(&g_gate);
    redis_server_resume();
    if (g_pass != NULL && redis_server_running()) {
        const char *argv[4] = {"CONFIG", "SET", "requirepass", ""};
        raw_ok(4, argv);
    }
    g_pass = NULL;
    for (int i = 0; i < MAX_FLEETS; i++)
        hf_fleet_close(&g_fleets[i]);
    event_free(g_tick);
    event_base_free(g_base);
    g_base = NULL;
    for (int i = 0; i < MAX_FLEETS; i++)
        pthread_mutex_destroy(&g_purges[i].mu);
    pthread_mutex_destroy(&g_gate.mu);
    pthread_cond_destroy(&g_gate.cv);
    logs_release();
    return 0;
}

/* ------------------------------------------------------------------ */
/* The bucket: limit/bucket.c's arithmetic, in Redis                  */
/* ------------------------------------------------------------------ */

/* 5/1m: a burst of 5, then one every 12000 ms exactly, forever. */
static void test_rate_exact(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits l = {"r", 5, MINUTE, 0, 0, 0};
    struct hf_fleet_answer a;
    for (int i = 0; i < 5; i++) {
        a = take_at(f, &l, T0);
        expect_go(&a, -1);
    }
    a = take_at(f, &l, T0);
    expect_rate(&a, 12000);
    a = take_at(f, &l, T0 + 5000);
    expect_rate(&a, 7000);
    /* 2000 tokens later (6 h 40 min), not a millisecond of drift. */
    for (int64_t k = 1; k <= 2000; k++) {
        a = take_at(f, &l, T0 + k * 12000 - 1);
        expect_rate(&a, 1);
        a = take_at(f, &l, T0 + k * 12000);
        expect_go(&a, -1);
    }
    a = take_at(f, &l, T0 + 2000 * 12000);
    expect_rate(&a, 12000);
    /* The bucket's key has a TTL: until it would be full, plus slack. */
    long long ttl = raw_int("PTTL", "hf:f:rate:r");
    assert_in_range(ttl, 1, 60000 + 1000);
}

/* 7/1m does not divide: token j after the burst comes at ceil(j * 60000 / 7). */
static void test_rate_remainder(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits l = {"seven", 7, MINUTE, 0, 0, 0};
    struct hf_fleet_answer a;
    for (int i = 0; i < 7; i++) {
        a = take_at(f, &l, T0);
        expect_go(&a, -1);
    }
    a = take_at(f, &l, T0);
    expect_rate(&a, 8572); /* ceil(60000 / 7) */
    for (int64_t j = 1; j <= 1500; j++) {
        int64_t due = T0 + (j * 60000 + 6) / 7;
        a = take_at(f, &l, due - 1);
        expect_rate(&a, 1);
        a = take_at(f, &l, due);
        expect_go(&a, -1);
    }
}

/* The bucket holds burst at most, after any idle time, and a refund
 * never lifts it above that. */
static void test_rate_burst_and_refund(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits l = {"b", 5, MINUTE, 2, 0, 0};
    struct hf_fleet_answer a;
    a = take_at(f, &l, T0);
    expect_go(&a, -1);
    a = take_at(f, &l, T0);
    expect_go(&a, -1);
    a = take_at(f, &l, T0);
    expect_rate(&a, 12000);

    /* A day idle: still two. */
    for (int i = 0; i < 2; i++) {
        a = take_at(f, &l, T0 + DAY);
        expect_go(&a, -1);
    }
    a = take_at(f, &l, T0 + DAY);
    expect_rate(&a, 12000);

    /* A refund gives one back... */
    hf_fleet_refund(f, &l, T0 + DAY);
    a = take_at(f, &l, T0 + DAY);
    expect_go(&a, -1);
    a = take_at(f, &l, T0 + DAY);
    expect_rate(&a, 12000);

    /* ...but never above burst: one taken, three refunded, two left. */
    int64_t t = T0 + 2 * DAY;
    a = take_at(f, &l, t);
    expect_go(&a, -1);
    for (int i = 0; i < 3; i++)
        hf_fleet_refund(f, &l, t);
    for (int i = 0; i < 2; i++) {
        a = take_at(f, &l, t);
        expect_go(&a, -1);
    }
    a = take_at(f, &l, t);
    expect_rate(&a, 12000);

    /* A clock that steps back adds nothing. */
    a = take_at(f, &l, t - 60000);
    expect_rate(&a, 12000);
    assert_int_equal(hf_fleet_errors(f), 0);
}

/* A new rate (a reload, or instances that disagree during a rollout)
 * keeps the bucket's whole tokens, at most the new burst. */
static void test_rate_reconfigured(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits five = {"re", 5, MINUTE, 0, 0, 0};
    const struct hf_fleet_limits ten = {"re", 10, MINUTE, 0, 0, 0};
    const struct hf_fleet_limits one = {"re", 1, MINUTE, 1, 0, 0};
    struct hf_fleet_answer a;
    for (int i = 0; i < 3; i++) {
        a = take_at(f, &five, T0);
        expect_go(&a, -1);
    }
    /* 2 whole tokens kept, then 1000 ms of 10/1m: 6000 ms a token. */
    a = take_at(f, &ten, T0 + 1000);
    expect_go(&a, -1);
    a = take_at(f, &ten, T0 + 1000);
    expect_go(&a, -1);
    a = take_at(f, &ten, T0 + 1000);
    expect_rate(&a, 5000);
    a = take_at(f, &five, T0 + DAY); /* full under 10/1m: 10 tokens, burst 5 */
    expect_go(&a, -1);
    a = take_at(f, &one, T0 + DAY); /* 4 left, burst 1 */
    expect_go(&a, -1);
    a = take_at(f, &one, T0 + DAY);
    expect_rate(&a, MINUTE);
}

/* Limits beyond what doubles hold exactly are refused, not rounded. */
static void test_rate_bounds(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    struct answer x = {0};
    const struct hf_fleet_limits huge = {"h", 1, (int64_t)1 << 52, 1, 0, 0};
    assert_int_equal(hf_fleet_take(f, g_base, &huge, T0, on_answer, &x, NULL), HF_EINVAL);
    const struct hf_fleet_limits neg = {"h", -1, 1000, 0, 0, 0};
    assert_int_equal(hf_fleet_take(f, g_base, &neg, T0, on_answer, &x, NULL), HF_EINVAL);
    const struct hf_fleet_limits noper = {"h", 5, 0, 0, 0, 0};
    assert_int_equal(hf_fleet_take(f, g_base, &noper, T0, on_answer, &x, NULL), HF_EINVAL);
    const struct hf_fleet_limits ok = {"h", 5, MINUTE, 0, 0, 0};
    assert_int_equal(hf_fleet_take(f, g_base, &ok, INT64_MAX, on_answer, &x, NULL), HF_EINVAL);
    loop_for(20);
    assert_int_equal(x.fired, 0);
    /* Large but exact: 1000000 per day, a burst of a million. */
    const struct hf_fleet_limits big = {"big", 1000000, DAY, 1000000, 0, 0};
    struct hf_fleet_answer a = take_at(f, &big, T0);
    expect_go(&a, -1);
    /* At the edge: a token worth 2^50 units, a bucket of 2^51, waits of
     * 2^50 ms, all exact. */
    const int64_t p50 = (int64_t)1 << 50;
    const struct hf_fleet_limits edge = {"edge", 1, p50, 2, 0, 0};
    a = take_at(f, &edge, T0);
    expect_go(&a, -1);
    a = take_at(f, &edge, T0 + 1);
    expect_go(&a, -1);
    a = take_at(f, &edge, T0 + 1);
    expect_rate(&a, p50 - 1);
    a = take_at(f, &edge, T0 + p50 - 1);
    expect_rate(&a, 1);
    a = take_at(f, &edge, T0 + p50);
    expect_go(&a, -1);
    a = take_at(f, &edge, T0 + p50);
    expect_rate(&a, p50);
}

/* ------------------------------------------------------------------ */
/* The quota                                                          */
/* ------------------------------------------------------------------ */

static void test_quota_windows(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits l = {"q", 0, 0, 0, 3, HOUR};
    struct hf_fleet_answer a;
    for (int64_t left = 2; left >= 0; left--) {
        a = take_at(f, &l, T0 + 10);
        expect_go(&a, left);
    }
    a = take_at(f, &l, T0 + HOUR - 1);
    expect_verdict(&a, HF_FLEET_QUOTA);
    assert_int_equal(a.until_ms, T0 + HOUR);
    assert_int_equal(a.quota_left, 0);

    /* The counter is the window's, with a TTL to its end plus slack. */
    char key[64];
    snprintf(key, sizeof key, "hf:f:quota:q:%" PRId64, T0);
    char *used = raw_get(key);
    assert_string_equal(used, "3");
    free(used);
    long long ttl = raw_int("PTTL", key);
    assert_in_range(ttl, 1, HOUR + 60000);

    /* The next window starts from nothing. */
    a = take_at(f, &l, T0 + HOUR);
    expect_go(&a, 2);
    a = take_at(f, &l, T0 + HOUR);
    expect_go(&a, 1);
    a = take_at(f, &l, T0 + HOUR);
    expect_go(&a, 0);
    a = take_at(f, &l, T0 + HOUR);
    expect_verdict(&a, HF_FLEET_QUOTA);

    /* A refund of a take made in the last window gives this one nothing... */
    hf_fleet_refund(f, &l, T0 + 10);
    a = take_at(f, &l, T0 + HOUR + 1);
    expect_verdict(&a, HF_FLEET_QUOTA);
    /* ...one of this window's does. */
    hf_fleet_refund(f, &l, T0 + HOUR + 5);
    a = take_at(f, &l, T0 + HOUR + 6);
    expect_go(&a, 0);
    /* And refunds never take the counter below zero. */
    const struct hf_fleet_limits l2 = {"q2", 0, 0, 0, 1, HOUR};
    for (int i = 0; i < 3; i++)
        hf_fleet_refund(f, &l2, T0);
    a = take_at(f, &l2, T0);
    expect_go(&a, 0);
    a = take_at(f, &l2, T0);
    expect_verdict(&a, HF_FLEET_QUOTA);
}

/* Pause before quota before rate; a refused take takes nothing. */
static void test_take_order(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits l = {"o", 1, 1000, 1, 2, HOUR};
    struct hf_fleet_answer a;

    a = take_at(f, &l, T0);
    expect_go(&a, 1);
    /* No token: RATE, and the quota unit stays (still 1 left). */
    a = take_at(f, &l, T0 + 1);
    expect_rate(&a, 999);
    assert_int_equal(a.quota_left, 1);
    a = take_at(f, &l, T0 + 1000);
    expect_go(&a, 0);

    /* Quota spent, a token ready: QUOTA, and the token stays. */
    char *before = raw_get("hf:f:rate:o");
    a = take_at(f, &l, T0 + 5000);
    expect_verdict(&a, HF_FLEET_QUOTA);
    char *after = raw_get("hf:f:rate:o");
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* Paused: PAUSED, before the quota says anything. */
    hf_fleet_pause(f, "o", T0 + 9000, HF_PAUSE_QUOTA_HEADER);
    a = take_at(f, &l, T0 + 6000);
    expect_verdict(&a, HF_FLEET_PAUSED);
    assert_int_equal(a.until_ms, T0 + 9000);
    assert_int_equal(a.pause_reason, HF_PAUSE_QUOTA_HEADER);

    /* Pause over, next window: the token the refusals left is there. */
    a = take_at(f, &l, T0 + HOUR);
    expect_go(&a, 1);
}

/* Three instances on one Redis, asking at once, never exceed the rate:
 * 10/1m over ten minutes, every 100 ms, makes 10 + 100 requests. */
static void test_three_instances(void **state)
{
    (void)state;
    struct hf_fleet *f[3] = {fleet(0), fleet(1), fleet(2)};
    const struct hf_fleet_limits l = {"shared", 10, MINUTE, 0, 0, 0};
    int go = 0;
    for (int64_t t = T0; t < T0 + 10 * MINUTE; t += 100) {
        struct answer x[3] = {{0}};
        int n = 0;
        for (int i = 0; i < 3; i++)
            assert_int_equal(hf_fleet_take(f[i], g_base, &l, t, on_answer, &x[i], NULL), HF_OK);
        for (int i = 0; i < 3; i++) {
            loop_until(&x[i].fired, 1, 3000);
            n += x[i].fired;
            if (x[i].a.verdict == HF_FLEET_GO)
                go++;
            else
                expect_verdict(&x[i].a, HF_FLEET_RATE);
        }
        assert_int_equal(n, 3);
    }
    assert_int_equal(go, 10 + 100 - 1); /* the token due at T0 + 10 min is not asked for */
}

/* A pause one instance saw holds on all; the later end wins. */
static void test_pause_later_wins(void **state)
{
    (void)state;
    struct hf_fleet *a0 = fleet(0), *b = fleet(1);
    const struct hf_fleet_limits l = {"p", 0, 0, 0, 0, 0};
    hf_fleet_pause(a0, "p", T0 + 10000, HF_PAUSE_RATE_LIMITED);
    hf_fleet_pause(a0, "p", T0 + 5000, HF_PAUSE_QUOTA_HEADER);
    struct hf_fleet_answer a = take_at(a0, &l, T0); /* after both, on a0's queue */
    expect_verdict(&a, HF_FLEET_PAUSED);
    a = take_at(b, &l, T0 + 9999);
    expect_verdict(&a, HF_FLEET_PAUSED);
    assert_int_equal(a.until_ms, T0 + 10000);
    assert_int_equal(a.pause_reason, HF_PAUSE_RATE_LIMITED);
    assert_int_equal(a.quota_left, -1);
    a = take_at(b, &l, T0 + 10000);
    expect_go(&a, -1);

    hf_fleet_pause(b, "p", T0 + 20000, HF_PAUSE_QUOTA_HEADER);
    a = take_at(b, &l, T0 + 10000);
    expect_verdict(&a, HF_FLEET_PAUSED);
    assert_int_equal(a.until_ms, T0 + 20000);
    assert_int_equal(a.pause_reason, HF_PAUSE_QUOTA_HEADER);
    /* Its key lives until the pause ends (by the real clock), plus slack. */
    long long ttl = raw_int("PTTL", "hf:f:pause:p");
    assert_true(ttl > 0);
    assert_true(ttl <= T0 + 20000 - hf_clock_wall_ms() + 1000 + 5);
    /* Another route is not paused. */
    const struct hf_fleet_limits other = {"p2", 0, 0, 0, 0, 0};
    a = take_at(a0, &other, T0);
    expect_go(&a, -1);
}

/* ------------------------------------------------------------------ */
/* Locks                                                              */
/* ------------------------------------------------------------------ */

static void test_lock_outcomes(void **state)
{
    (void)state;
    struct hf_fleet *a0 = fleet(0), *b = fleet(1), *c = fleet(2);
    const char *key = "GET api /users\nAccept: x"; /* cache keys hold '\n' */
    g_gate.key = "hf:f:lock:GET api /users\nAccept: x";
    struct hf_fleet_answer a = lock_key(a0, key, 5000);
    expect_verdict(&a, HF_FLEET_GO);
    a = lock_key(b, key, 5000);
    expect_verdict(&a, HF_FLEET_HELD);

    /* b waits; a0 stores and releases: b hears STORED, and the copy was
     * flushed (before_release) while the lock was still a0's. */
    struct answer w = {0};
    assert_int_equal(hf_fleet_wait(b, g_base, key, 3000, on_answer, &w, NULL), HF_OK);
    loop_for(40);
    assert_int_equal(w.fired, 0);
    hf_fleet_unlock(a0, key, true);
    loop_until(&w.fired, 1, 3000);
    expect_verdict(&w.a, HF_FLEET_DONE);
    assert_int_equal(w.a.outcome, HF_FLEET_STORED);
    assert_int_equal(g_gate.calls, 1);
    assert_true(strncmp(g_gate.value, "held:i0:", 8) == 0);

    /* Right after a stored release the key still says so: a late comer
     * waits and reads the copy instead of fetching again. */
    a = lock_key(c, key, 5000);
    expect_verdict(&a, HF_FLEET_HELD);
    struct answer w2 = {0};
    assert_int_equal(hf_fleet_wait(c, g_base, key, 3000, on_answer, &w2, NULL), HF_OK);
    loop_until(&w2.fired, 1, 3000);
    expect_verdict(&w2.a, HF_FLEET_DONE);
    assert_int_equal(w2.a.outcome, HF_FLEET_STORED);
    long long ttl = raw_int("PTTL", g_gate.key);
    assert_in_range(ttl, 1, 2000);

    /* A failed fetch: waiters hear FAILED, and the next may try at once. */
    const char *k2 = "GET api /broken";
    a = lock_key(a0, k2, 5000);
    expect_verdict(&a, HF_FLEET_GO);
    struct answer w3 = {0};
    assert_int_equal(hf_fleet_wait(b, g_base, k2, 3000, on_answer, &w3, NULL), HF_OK);
    hf_fleet_unlock(a0, k2, false);
    loop_until(&w3.fired, 1, 3000);
    expect_verdict(&w3.a, HF_FLEET_DONE);
    assert_int_equal(w3.a.outcome, HF_FLEET_FAILED);
    assert_int_equal(g_gate.calls, 1); /* not stored: nothing to flush */
    a = lock_key(c, k2, 5000);
    expect_verdict(&a, HF_FLEET_GO);

    /* Unlocking what another holds changes nothing. */
    hf_fleet_unlock(b, k2, true);
    a = lock_key(b, k2, 5000); /* after the unlock on b's queue */
    expect_verdict(&a, HF_FLEET_HELD);
    char *v = raw_get("hf:f:lock:GET api /broken");
    assert_non_null(v);
    assert_true(strncmp(v, "held:i2:", 8) == 0);
    free(v);

    /* Waiting for a key nobody holds: VANISHED at once. */
    struct answer w4 = {0};
    assert_int_equal(hf_fleet_wait(b, g_base, "GET api /nobody", 3000, on_answer, &w4, NULL),
                     HF_OK);
    loop_until(&w4.fired, 1, 3000);
    expect_verdict(&w4.a, HF_FLEET_DONE);
    assert_int_equal(w4.a.outcome, HF_FLEET_VANISHED);
    assert_int_equal(hf_fleet_errors(a0) + hf_fleet_errors(b) + hf_fleet_errors(c), 0);
}

/* A holder that never releases: its lock expires (150 ms of real time)
 * and the waiter hears VANISHED; the holder's late unlock leaves the next
 * holder's lock alone.  A wait that runs out: TIMEOUT. */
static void test_lock_expiry_and_timeout(void **state)
{
    (void)state;
    struct hf_fleet *a0 = fleet(0), *b = fleet(1), *c = fleet(2);
    const char *key = "GET api /slow";
    struct hf_fleet_answer a = lock_key(a0, key, 150);
    expect_verdict(&a, HF_FLEET_GO);
    struct answer w = {0};
    assert_int_equal(hf_fleet_wait(b, g_base, key, 5000, on_answer, &w, NULL), HF_OK);
    loop_until(&w.fired, 1, 3000);
    expect_verdict(&w.a, HF_FLEET_DONE);
    assert_int_equal(w.a.outcome, HF_FLEET_VANISHED);

    a = lock_key(c, key, 5000);
    expect_verdict(&a, HF_FLEET_GO);
    hf_fleet_unlock(a0, key, true);
    a = lock_key(a0, "GET api /other", 5000); /* after the unlock on a0's queue */
    expect_verdict(&a, HF_FLEET_GO);
    char *v = raw_get("hf:f:lock:GET api /slow");
    assert_non_null(v);
    assert_true(strncmp(v, "held:i2:", 8) == 0);
    free(v);

    struct answer t = {0};
    int64_t t0 = hf_clock_mono_ms();
    assert_int_equal(hf_fleet_wait(b, g_base, key, 100, on_answer, &t, NULL), HF_OK);
    loop_until(&t.fired, 1, 3000);
    expect_verdict(&t.a, HF_FLEET_TIMEOUT);
    assert_true(hf_clock_mono_ms() - t0 >= 100);
}

/* The fleet thread keeps serving while waits are pending. */
static void test_waits_do_not_block(void **state)
{
    (void)state;
    struct hf_fleet *a0 = fleet(0), *b = fleet(1);
    struct hf_fleet_answer a = lock_key(a0, "k", 60000);
    expect_verdict(&a, HF_FLEET_GO);
    struct answer w[20] = {{0}};
    for (int i = 0; i < 20; i++)
        assert_int_equal(hf_fleet_wait(b, g_base, "k", 10000, on_answer, &w[i], NULL), HF_OK);
    const struct hf_fleet_limits l = {"r", 0, 0, 0, 0, 0};
    for (int i = 0; i < 200; i++) {
        a = take_at(b, &l, T0);
        expect_go(&a, -1);
    }
    for (int i = 0; i < 20; i++)
        assert_int_equal(w[i].fired, 0);
    hf_fleet_unlock(a0, "k", false);
    for (int i = 0; i < 20; i++) {
        loop_until(&w[i].fired, 1, 3000);
        expect_verdict(&w[i].a, HF_FLEET_DONE);
        assert_int_equal(w[i].a.outcome, HF_FLEET_FAILED);
    }
}

/* Waits beyond WAITS_MAX (1024) are answered DOWN: the poll stays one
 * bounded round trip. */
static void test_waits_bounded(void **state)
{
    (void)state;
    struct hf_fleet *a0 = fleet(0), *b = fleet(1);
    struct hf_fleet_answer a = lock_key(a0, "k", 60000);
    expect_verdict(&a, HF_FLEET_GO);
    enum { N = 1025 };
    static struct answer w[N];
    memset(w, 0, sizeof w);
    for (int i = 0; i < N; i++)
        assert_int_equal(hf_fleet_wait(b, g_base, "k", 30000, on_answer, &w[i], NULL), HF_OK);
    loop_until(&w[N - 1].fired, 1, 3000);
    expect_verdict(&w[N - 1].a, HF_FLEET_DOWN);
    logs_have("\"fleet_queue_full\"");
    hf_fleet_unlock(a0, "k", true);
    for (int i = 0; i < N - 1; i++) {
        loop_until(&w[i].fired, 1, 3000);
        expect_verdict(&w[i].a, HF_FLEET_DONE);
        assert_int_equal(w[i].a.outcome, HF_FLEET_STORED);
    }
    assert_int_equal(hf_fleet_errors(b), 1);
}

/* ------------------------------------------------------------------ */
/* Claims and purges                                                  */
/* ------------------------------------------------------------------ */

static void test_claim_once(void **state)
{
    (void)state;
    struct hf_fleet *f[3] = {fleet(0), fleet(1), fleet(2)};
    for (int slot = 0; slot < 20; slot++) {
        struct answer x[3] = {{0}};
        for (int i = 0; i < 3; i++)
            assert_int_equal(hf_fleet_claim(f[i], g_base, "nightly", T0 + slot * MINUTE, 60000,
                                            on_answer, &x[i], NULL),
                             HF_OK);
        int go = 0, held = 0;
        for (int i = 0; i < 3; i++) {
            loop_until(&x[i].fired, 1, 3000);
            go += x[i].a.verdict == HF_FLEET_GO;
            held += x[i].a.verdict == HF_FLEET_HELD;
        }
        assert_int_equal(go, 1);
        assert_int_equal(held, 2);
    }
    char key[64];
    snprintf(key, sizeof key, "hf:f:claim:nightly:%" PRId64, T0);
    assert_in_range(raw_int("PTTL", key), 1, 60000);
}

static void test_purge(void **state)
{
    (void)state;
    struct hf_fleet *f[3] = {fleet(0), fleet(1), fleet(2)};
    wait_subscribers(3);
    hf_fleet_purge(f[0], "GET api /users");
    purges_wait(&g_purges[1], 1);
    purges_wait(&g_purges[2], 1);
    assert_string_equal(g_purges[1].seen[0], "GET api /users");
    assert_string_equal(g_purges[2].seen[0], "GET api /users");
    /* Redis delivers in order: once f0 hears f1's purge, it has passed
     * over its own. */
    hf_fleet_purge(f[1], "GET api /a\nb");
    purges_wait(&g_purges[0], 1);
    assert_string_equal(g_purges[0].seen[0], "GET api /a\nb");
    purges_wait(&g_purges[2], 2);
    hf_fleet_purge(f[2], "");
    purges_wait(&g_purges[0], 2);
    purges_wait(&g_purges[1], 2);
    assert_string_equal(g_purges[1].seen[1], "");
    assert_string_equal(g_purges[0].seen[1], "");
    assert_int_equal(purges_n(&g_purges[2]), 2);

    /* Messages that are not a fleet's are ignored. */
    const char *junk[3] = {"PUBLISH", "hf:f:purge", "no newline"};
    raw_ok(3, junk);
    hf_fleet_purge(f[2], "last");
    purges_wait(&g_purges[0], 3);
    assert_string_equal(g_purges[0].seen[2], "last");
}

/* ------------------------------------------------------------------ */
/* Redis restarted, away, slow                                        */
/* ------------------------------------------------------------------ */

/* SCRIPT FLUSH (or a restarted, empty Redis): loaded again, run once more. */
static void test_noscript(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits l = {"n", 1, MINUTE, 1, 0, 0};
    struct hf_fleet_answer a = take_at(f, &l, T0);
    expect_go(&a, -1);
    const char *flush[2] = {"SCRIPT", "FLUSH"};
    raw_ok(2, flush);
    a = take_at(f, &l, T0 + 1);
    expect_rate(&a, 59999);
    raw_ok(2, flush);
    a = lock_key(f, "k", 1000);
    expect_verdict(&a, HF_FLEET_GO);
    assert_int_equal(hf_fleet_errors(f), 0);
    assert_true(hf_fleet_up(f));
}

static void test_down_and_up(void **state)
{
    (void)state;
    struct hf_fleet *a0 = fleet(0), *b = fleet(1);
    wait_subscribers(2);
    const struct hf_fleet_limits l = {"d", 1, MINUTE, 1, 0, 0};
    struct hf_fleet_answer a = take_at(a0, &l, T0);
    expect_go(&a, -1);
    a = lock_key(a0, "held", 60000);
    expect_verdict(&a, HF_FLEET_GO);
    struct answer w = {0};
    assert_int_equal(hf_fleet_wait(b, g_base, "held", 30000, on_answer, &w, NULL), HF_OK);
    loop_for(30);
    assert_int_equal(w.fired, 0);

    redis_server_stop();
    /* b's wait learns at its next poll; a0 at its next request. */
    loop_until(&w.fired, 1, 2000);
    expect_verdict(&w.a, HF_FLEET_DOWN);
    int64_t t0 = hf_clock_mono_ms();
    a = take_at(a0, &l, T0 + MINUTE);
    expect_verdict(&a, HF_FLEET_DOWN);
    assert_false(hf_fleet_up(a0));
    /* From now on at once, by the asker's own thread. */
    a = lock_key(a0, "x", 1000);
    expect_verdict(&a, HF_FLEET_DOWN);
    assert_true(hf_clock_mono_ms() - t0 < 2000);
    assert_true(hf_fleet_errors(a0) >= 2);
    assert_true(hf_fleet_errors(b) >= 1);
    assert_int_equal(logs_count("\"fleet_down\""), 2);

    assert_true(redis_server_start());
    if (!comes_up(a0, 8000) || !comes_up(b, 8000))
        fail_msg("the fleets did not come back:\n%s", logs_text());
    assert_int_equal(logs_count("\"fleet_up\""), 2);
    /* An empty Redis: a full bucket, a free key, scripts loaded again. */
    a = take_at(a0, &l, T0 + MINUTE);
    expect_go(&a, -1);
    a = lock_key(b, "held", 60000);
    expect_verdict(&a, HF_FLEET_GO);
    a = lock_key(a0, "held", 60000);
    expect_verdict(&a, HF_FLEET_HELD);
    /* The subscriptions are back, and said they may have missed purges. */
    wait_subscribers(2);
    purges_wait(&g_purges[0], 1);
    purges_wait(&g_purges[1], 1);
    assert_string_equal(g_purges[0].seen[0], "");
    hf_fleet_purge(a0, "again");
    purges_wait(&g_purges[1], 2);
    assert_string_equal(g_purges[1].seen[1], "again");
}

/* A frozen Redis: the command times out, the fleet goes down. */
static void test_hung_server(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const struct hf_fleet_limits l = {"h", 0, 0, 0, 0, 0};
    struct hf_fleet_answer a = take_at(f, &l, T0);
    expect_go(&a, -1);
    redis_server_pause();
    int64_t t0 = hf_clock_mono_ms();
    a = take_at(f, &l, T0);
    expect_verdict(&a, HF_FLEET_DOWN);
    assert_true(hf_clock_mono_ms() - t0 < 2000);
    logs_have("no answer within");
    redis_server_resume();
    if (!comes_up(f, 8000))
        fail_msg("the fleet did not come back:\n%s", logs_text());
    a = take_at(f, &l, T0);
    expect_go(&a, -1);
}

/* A key of the wrong type fails its job (DOWN), not the fleet. */
static void test_error_replies(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    const char *hset[4] = {"HSET", "hf:f:rate:w", "a", "b"};
    raw_ok(4, hset);
    const char *lpush[3] = {"LPUSH", "hf:f:lock:GET w", "x"};
    raw_ok(3, lpush);
    const struct hf_fleet_limits l = {"w", 1, 1000, 0, 0, 0};
    struct hf_fleet_answer a = take_at(f, &l, T0);
    expect_verdict(&a, HF_FLEET_DOWN);
    a = lock_key(f, "GET w", 1000);
    expect_verdict(&a, HF_FLEET_DOWN);
    struct answer w = {0};
    assert_int_equal(hf_fleet_wait(f, g_base, "GET w", 1000, on_answer, &w, NULL), HF_OK);
    loop_until(&w.fired, 1, 3000);
    expect_verdict(&w.a, HF_FLEET_DOWN);
    assert_true(hf_fleet_up(f));
    assert_int_equal(hf_fleet_errors(f), 3);
    logs_have("\"fleet_reply_failed\"");
    logs_have("WRONGTYPE");
    const struct hf_fleet_limits ok = {"fine", 1, 1000, 0, 0, 0};
    a = take_at(f, &ok, T0);
    expect_go(&a, -1);
}

/* AUTH and SELECT on every connection; a wrong password is a fleet down,
 * and its message names no password. */
static void test_auth_and_db(void **state)
{
    (void)state;
    const char *set[4] = {"CONFIG", "SET", "requirepass", "pw:x@y"};
    raw_ok(4, set);
    g_pass = "pw:x@y";
    char url[PATH_MAX + 64];
    snprintf(url, sizeof url, "%s?db=3&password=pw%%3Ax%%40y", redis_server_url());
    struct hf_fleet *f = fleet_on(0, url);
    assert_true(hf_fleet_up(f));
    struct hf_fleet_answer a = lock_key(f, "in db 3", 60000);
    expect_verdict(&a, HF_FLEET_GO);
    redisContext *c = redis_server_connect();
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "AUTH %s", g_pass));
    freeReplyObject(redisCommand(c, "SELECT 3"));
    redisReply *r = redisCommand(c, "EXISTS %s", "hf:f:lock:in db 3");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(raw_int("EXISTS", "hf:f:lock:in db 3"), 0); /* db 0 */

    snprintf(url, sizeof url, "%s?password=wrong-s3cret", redis_server_url());
    struct hf_fleet *bad = fleet_on(1, url);
    assert_false(hf_fleet_up(bad));
    logs_have("WRONGPASS");
    struct hf_fleet *none = fleet_on(2, redis_server_url());
    assert_false(hf_fleet_up(none));
    logs_have("NOAUTH");
    if (strstr(logs_text(), "s3cret") != NULL || strstr(logs_text(), "pw:x") != NULL)
        fail_msg("a password in the logs:\n%s", logs_text());
    a = lock_key(none, "k", 1000);
    expect_verdict(&a, HF_FLEET_DOWN);
}

/* Opening while Redis is away succeeds: down, answering DOWN. */
static void test_open_while_down(void **state)
{
    (void)state;
    char url[PATH_MAX + 32];
    snprintf(url, sizeof url, "redis+unix://%s/nobody.sock", redis_server_dir());
    struct hf_fleet *f = fleet_on(0, url);
    assert_false(hf_fleet_up(f));
    logs_have("\"fleet_down\"");
    const struct hf_fleet_limits l = {"r", 1, 1000, 0, 0, 0};
    struct hf_fleet_answer a = take_at(f, &l, T0);
    expect_verdict(&a, HF_FLEET_DOWN);
    struct answer x = {0};
    assert_int_equal(hf_fleet_claim(f, g_base, "r", T0, 1000, on_answer, &x, NULL), HF_OK);
    loop_until(&x.fired, 1, 1000);
    expect_verdict(&x.a, HF_FLEET_DOWN);
    hf_fleet_purge(f, "x");
    hf_fleet_refund(f, &l, T0);
    assert_int_equal(hf_fleet_errors(f), 4);
}

static void test_bad_urls(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://localhost:6379",
        "redis://:s3cret@host:notaport",
        "redis://:s3cret@",
        "redis+unix://relative.sock?password=s3cret",
        "redis+unix:///tmp/r.sock?password=s3cret&color=blue",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct hf_fleet_options o = {.url = bad[i]};
        struct hf_fleet *f = NULL;
        char err[256] = "";
        assert_int_equal(hf_fleet_open(&o, &f, err, sizeof err), HF_CONFIG);
        assert_null(f);
        assert_non_null(strstr(err, "bad Redis URL"));
        if (strstr(err, "s3cret") != NULL)
            fail_msg("the message repeats the password: %s", err);
    }
    struct hf_fleet_options o = {.url = redis_server_url(), .instance = "two\nlines"};
    struct hf_fleet *f = NULL;
    char err[256] = "";
    assert_int_equal(hf_fleet_open(&o, &f, err, sizeof err), HF_CONFIG);
    assert_null(f);

    /* No instance given: host:pid:random. */
    o.instance = NULL;
    assert_int_equal(hf_fleet_open(&o, &f, err, sizeof err), HF_OK);
    char pid[32];
    snprintf(pid, sizeof pid, ":%ld:", (long)getpid());
    assert_non_null(strstr(hf_fleet_instance(f), pid));
    assert_true(hf_fleet_up(f));
    hf_fleet_close(&f);
    assert_null(f);
    hf_fleet_close(&f);
}

/* A full queue answers DOWN at once, without waiting for the thread. */
static void test_queue_full(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0);
    struct hf_fleet_answer a = lock_key(f, "gate", 60000);
    expect_verdict(&a, HF_FLEET_GO);
    g_gate.hold = true;
    hf_fleet_unlock(f, "gate", true);
    gate_wait_inside(&g_gate); /* the fleet thread is stuck in before_release */

    enum { N = 4096 + 10 };
    static struct answer x[N];
    memset(x, 0, sizeof x);
    const struct hf_fleet_limits l = {"free", 0, 0, 0, 0, 0};
    for (int i = 0; i < N; i++)
        assert_int_equal(hf_fleet_take(f, g_base, &l, T0, on_answer, &x[i], NULL), HF_OK);
    int down = 0;
    for (int i = 4096; i < N; i++) {
        loop_until(&x[i].fired, 1, 1000);
        expect_verdict(&x[i].a, HF_FLEET_DOWN);
        down++;
    }
    for (int i = 0; i < 4096; i++)
        assert_int_equal(x[i].fired, 0);
    assert_int_equal(hf_fleet_errors(f), 10);
    logs_have("\"fleet_queue_full\"");

    gate_open(&g_gate);
    for (int i = 0; i < 4096; i++) {
        loop_until(&x[i].fired, 1, 10000);
        expect_go(&x[i].a, -1);
    }
    assert_int_equal(down, 10);
    assert_true(hf_fleet_up(f));
}

/* A cancelled job's callback never runs; what it took is given back. */
static void test_cancel(void **state)
{
    (void)state;
    struct hf_fleet *f = fleet(0), *other = fleet(1);
    const struct hf_fleet_limits l = {"c", 1, HOUR, 1, 0, 0};
    struct hf_fleet_answer a = lock_key(f, "gate", 60000);
    expect_verdict(&a, HF_FLEET_GO);

    /* Cancelled before the thread got to it: nothing taken. */
    g_gate.hold = true;
    hf_fleet_unlock(f, "gate", true);
    gate_wait_inside(&g_gate);
    struct answer x = {0};
    struct hf_fleet_job *j = NULL;
    assert_int_equal(hf_fleet_take(f, g_base, &l, T0, on_answer, &x, &j), HF_OK);
    assert_non_null(j);
    hf_fleet_cancel(j);
    gate_open(&g_gate);
    a = take_at(f, &l, T0);
    expect_go(&a, -1);
    assert_int_equal(x.fired, 0);

    /* Cancelled after the thread took the token and the lock (it is
     * stuck behind them, in before_release): both are given back. */
    a = lock_key(f, "gate2", 60000); /* "gate" says done:stored for 2 s */
    expect_verdict(&a, HF_FLEET_GO);
    const struct hf_fleet_limits l2 = {"c2", 1, HOUR, 1, 0, 0};
    struct answer y = {0}, z = {0};
    struct hf_fleet_job *jy = NULL, *jz = NULL;
    g_gate.hold = true;
    assert_int_equal(hf_fleet_take(f, g_base, &l2, T0, on_answer, &y, &jy), HF_OK);
    assert_int_equal(hf_fleet_lock(f, g_base, "fetching", 60000, on_answer, &z, &jz), HF_OK);
    hf_fleet_unlock(f, "gate2", true);
    gate_wait_inside(&g_gate);
    hf_fleet_cancel(jy);
    hf_fleet_cancel(jz);
    gate_open(&g_gate);
    loop_for(20); /* the cancelled jobs' events run: a refund and an unlock are queued */
    a = take_at(f, &l2, T0 + 1);
    expect_go(&a, -1);
    a = lock_key(other, "fetching", 60000);
    expect_verdict(&a, HF_FLEET_GO);
    assert_int_equal(y.fired, 0);
    assert_int_equal(z.fired, 0);
    hf_fleet_cancel(NULL);
    assert_int_equal(hf_fleet_errors(f), 0);
}

int main(void)
{
    if (evthread_use_pthreads() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rate_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_remainder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_burst_and_refund, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_reconfigured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_later_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_expiry_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_do_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript, setup, teardown),
        cmocka_unit_test_setup_teardown(test_down_and_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_and_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_while_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
