/*
 * Micro-benchmark: what fleet mode adds to an attempt to the API, against a
 * real redis-server on a unix socket: one take (the rate limit, quota and
 * pause script) and one lock + release, each a round trip through the
 * fleet's thread and back to the asking loop.  Also takes from two loops
 * at once.  A number, not a test; skipped when redis-server is missing.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet/fleet.h"
#include <holdfast/holdfast.h>

#include "obs/log.h"

#define REDIS_BIN "/usr/bin/redis-server"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop {
    struct hf_fleet *f;
    struct event_base *base;
    long iters, left;
    int kind; /* 0 take, 1 lock */
    char key[64];
    double seconds;
};

static void next(struct loop *l);

static void on_answer(const struct hf_fleet_answer *a, void *arg)
{
    struct loop *l = arg;
    if (l->kind == 1 && a->verdict == HF_FLEET_GO)
        hf_fleet_unlock(l->f, l->key, true);
    if (--l->left > 0)
        next(l);
    else
        event_base_loopbreak(l->base);
}

static void next(struct loop *l)
{
    static const struct hf_fleet_limits lim = {.route = "bench",
                                               .rate_count = 1000000000,
                                               .rate_per_ms = 1000,
                                               .rate_burst = 1000000000,
                                               .quota_count = 1000000000,
                                               .quota_per_ms = 86400000};
    hf_err e = l->kind == 0 ? hf_fleet_take(l->f, l->base, &lim, wall_ms(), on_answer, l, NULL)
                            : hf_fleet_lock(l->f, l->base, l->key, 5000, on_answer, l, NULL);
    if (e != HF_OK) {
        fprintf(stderr, "bench_fleet: request refused (%d)\n", e);
        exit(1);
    }
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void *run(void *arg)
{
    struct loop *l = arg;
    l->left = l->iters;
    /* answers arrive by event_active from the fleet's thread: a timer keeps
     * the loop running meanwhile */
    struct event *keep = evtimer_new(l->base, idle_cb, NULL);
    struct timeval hour = {3600, 0};
    evtimer_add(keep, &hour);
    double t0 = now_s();
    next(l);
    event_base_dispatch(l->base);
    l->seconds = now_s() - t0;
    event_free(keep);
    return NULL;
}

int main(void)
{
    if (access(REDIS_BIN, X_OK) != 0) {
        printf("bench_fleet: %s not found, skipped\n", REDIS_BIN);
        return 0;
    }
    char dir[] = "/tmp/hf-bench-fleet-XXXXXX", sock[128], url[160];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    snprintf(url, sizeof url, "redis+unix://%s", sock);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(REDIS_BIN, REDIS_BIN, "--port", "0", "--unixsocket", sock, "--save", "",
              "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
        usleep(10000);
    usleep(50000);
    evthread_use_pthreads();
    hf_log_setup("off", 2);
    struct hf_fleet *f = NULL;
    char err[256];
    struct hf_fleet_options o = {.url = url};
    if (hf_fleet_open(&o, &f, err, sizeof err) != HF_OK || !hf_fleet_up(f)) {
        fprintf(stderr, "bench_fleet: %s\n", f ? "Redis is not up" : err);
        kill(pid, SIGKILL);
        return 1;
    }
    const long n = 20000;
    for (int kind = 0; kind < 2; kind++) {
        struct loop l = {.f = f, .base = event_base_new(), .iters = n, .kind = kind};
        snprintf(l.key, sizeof l.key, "GET bench /k");
        run(&l);
        printf("fleet %-14s %8.1f us/op (one loop, sequential round trips)\n",
               kind == 0 ? "take:" : "lock+release:", l.seconds / (double)n * 1e6);
        event_base_free(l.base);
    }
    struct loop two[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        two[i] = (struct loop){.f = f, .base = event_base_new(), .iters = n, .kind = 0};
        pthread_create(&t[i], NULL, run, &two[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double s = two[0].seconds > two[1].seconds ? two[0].seconds : two[1].seconds;
    printf("fleet take, 2 loops:  %8.0f takes/s in all\n", 2.0 * (double)n / s);
    for (int i = 0; i < 2; i++)
        event_base_free(two[i].base);
    hf_fleet_close(&f);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(sock);
    rmdir(dir);
    return 0;
}
