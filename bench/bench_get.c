/*
 * Micro-benchmark: hf_get() on a fresh memory hit, the library's hot path.
 * A one-shot loopback server answers the first request (2 KB body, max-age
 * one hour); every call after that is a fresh hit.  Prints ns per call for
 * one thread and for two threads sharing one client.  A number, not a test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <holdfast/holdfast.h>

#define BODY_BYTES 2048

static int listen_fd;

static void *serve_once(void *arg)
{
    (void)arg;
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char req[4096];
    if (read(fd, req, sizeof req) <= 0) {
        close(fd);
        return NULL;
    }
    static char resp[BODY_BYTES + 256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Cache-Control: max-age=3600\r\nContent-Length: %d\r\n\r\n",
                     BODY_BYTES);
    memset(resp + n, 'x', BODY_BYTES);
    ssize_t w = write(fd, resp, (size_t)n + BODY_BYTES);
    (void)w;
    close(fd);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct worker {
    struct hf_client *c;
    long iters;
    long failures;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    for (long i = 0; i < w->iters; i++) {
        struct hf_response r;
        if (hf_get(w->c, "bench", "/quote?sym=ACME&ccy=USD", &r) != HF_OK ||
            r.source != HF_SOURCE_FRESH)
            w->failures++;
        hf_response_free(&r);
    }
    return NULL;
}

static double measure(struct hf_client *c, int threads, long iters)
{
    pthread_t t[8];
    struct worker w[8];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){c, iters, 0};
        pthread_create(&t[i], NULL, run, &w[i]);
    }
    long failures = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    double el = now_s() - t0;
    if (failures) {
        fprintf(stderr, "bench_get: %ld calls were not fresh hits\n", failures);
        exit(1);
    }
    return el * 1e9 / (double)(iters * threads);
}

int main(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sl) != 0 ||
        listen(listen_fd, 1) != 0 || getsockname(listen_fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("bench_get: listen");
        return 1;
    }
    pthread_t srv;
    pthread_create(&srv, NULL, serve_once, NULL);

    char upstream[64];
    snprintf(upstream, sizeof upstream, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    struct hf_route_config route;
    hf_route_config_default(&route);
    route.name = "bench";
    route.upstream = upstream;
    route.fresh_for_ms = -1; /* from Cache-Control */
    struct hf_config cfg;
    hf_config_default(&cfg);
    cfg.routes = &route;
    cfg.nroutes = 1;
    cfg.store = "memory:";
    struct hf_client *c = NULL;
    char err[256];
    if (hf_client_create(&cfg, &c, err, sizeof err) != HF_OK) {
        fprintf(stderr, "bench_get: %s\n", err);
        return 1;
    }
    struct hf_response r;
    if (hf_get(c, "bench", "/quote?sym=ACME&ccy=USD", &r) != HF_OK ||
        r.source != HF_SOURCE_ORIGIN) {
        fprintf(stderr, "bench_get: priming request failed: %s\n", r.error_detail);
        return 1;
    }
    hf_response_free(&r);
    pthread_join(srv, NULL);
    close(listen_fd);

    measure(c, 1, 100000); /* warm up */
    double one = 1e30, two = 1e30;
    for (int round = 0; round < 5; round++) {
        double a = measure(c, 1, 1000000), b = measure(c, 2, 500000);
        one = a < one ? a : one;
        two = b < two ? b : two;
    }
    printf("bench_get: hf_get fresh memory hit (2 KB body): %.0f ns/op (1 thread), "
           "%.0f ns/op per call with 2 threads (best of 5; target <= 2000)\n",
           one, two);
    hf_client_destroy(&c);
    return 0;
}
