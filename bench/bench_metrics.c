/*
 * Micro-benchmark: what a cache hit costs in metrics, one
 * hf_metric_inc(holdfast_requests_total) plus one
 * hf_metric_observe_us(holdfast_request_duration_seconds), in ns, for one
 * thread and for two threads counting the same series: each thread in a
 * shard of its own (the default), and both in the shared shard (locked adds
 * on the same cache lines, what a plain array of atomics would cost).
 * Also the time to render /metrics for 100 routes.  A number, not a test.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/buf.h"
#include "obs/metrics.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct worker {
    struct hf_metrics *m;
    long iters;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    for (long i = 0; i < w->iters; i++) {
        hf_metric_inc(w->m, HF_M_REQUESTS_TOTAL, 0, HF_CACHE_HIT);
        hf_metric_observe_us(w->m, HF_M_REQUEST_DURATION, 0, HF_CACHE_HIT,
                             (uint64_t)(200 + (i & 1023)));
    }
    return NULL;
}

/* ns per hit: the best of five rounds. */
static double measure(struct hf_metrics *m, int threads, long iters)
{
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        pthread_t t[2];
        struct worker w[2];
        double t0 = now_s();
        for (int i = 0; i < threads; i++) {
            w[i] = (struct worker){m, iters};
            if (pthread_create(&t[i], NULL, run, &w[i]) != 0) {
                perror("bench_metrics: pthread_create");
                exit(1);
            }
        }
        for (int i = 0; i < threads; i++)
            pthread_join(t[i], NULL);
        double ns = (now_s() - t0) * 1e9 / (double)(iters * threads);
        best = ns < best ? ns : best;
    }
    return best;
}

int main(void)
{
    const char *const routes[] = {"bench"};
    struct hf_metrics *m = NULL, *shared = NULL;
    if (hf_metrics_create(routes, 1, &m) != HF_OK ||
        hf__metrics_create_shards(routes, 1, 0, &shared) != HF_OK) {
        fprintf(stderr, "bench_metrics: cannot create a registry\n");
        return 1;
    }
    const long iters = 10000000;
    printf("metrics per hit (inc + observe), 1 thread:              %6.1f ns\n",
           measure(m, 1, iters));
    printf("metrics per hit, 2 threads, default shards:             %6.1f ns\n",
           measure(m, 2, iters / 2));
    printf("metrics per hit, 2 threads, shared shard (atomic adds): %6.1f ns\n",
           measure(shared, 2, iters / 2));
    hf_metrics_destroy(&shared);
    hf_metrics_destroy(&m);

    /* Rendering: 100 routes, about 13,000 lines. */
    static char names[100][16];
    const char *many[100];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "route%d", i);
        many[i] = names[i];
    }
    if (hf_metrics_create(many, 100, &m) != HF_OK)
        return 1;
    struct hf_buf b;
    hf_buf_init(&b, (size_t)64 << 20);
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        hf_buf_reset(&b);
        double t0 = now_s();
        if (hf_metrics_render(m, &b) != HF_OK) {
            fprintf(stderr, "bench_metrics: render failed\n");
            return 1;
        }
        double el = now_s() - t0;
        best = el < best ? el : best;
    }
    printf("render /metrics, 100 routes (%zu bytes):            %6.2f ms\n", b.len, best * 1e3);
    hf_buf_fini(&b);
    hf_metrics_destroy(&m);
    return 0;
}
