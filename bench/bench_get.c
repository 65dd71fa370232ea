/*
 * Micro-benchmark: hf_get() on a fresh memory hit, the library's hot path.
 * A loopback server answers the priming requests (2 KB body, max-age one
 * hour); every call after that is a fresh hit.  Prints ns per call for one
 * thread and for two threads sharing one client, on an on-demand route and
 * on a background route (whose hits also note the key in its learned set).
 * A number, not a test.
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

#define PRIMING 3 /* the on-demand key, then the background route's two */

static void *serve(void *arg)
{
    (void)arg;
    for (int i = 0; i < PRIMING; i++) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char req[4096];
        if (read(fd, req, sizeof req) <= 0) {
            close(fd);
            continue;
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
    }
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
    const char *route, *path;
    long iters;
    long failures;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    for (long i = 0; i < w->iters; i++) {
        struct hf_response r;
        if (hf_get(w->c, w->route, w->path, &r) != HF_OK || r.source != HF_SOURCE_FRESH)
            w->failures++;
        hf_response_free(&r);
    }
    return NULL;
}

static double measure(struct hf_client *c, const char *route, const char *path, int threads,
                      long iters)
{
    pthread_t t[8];
    struct worker w[8];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){c, route, path, iters, 0};
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
    pthread_create(&srv, NULL, serve, NULL);

    char upstream[64];
    snprintf(upstream, sizeof upstream, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    struct hf_route_config routes[2];
    hf_route_config_default(&routes[0]);
    routes[0].name = "bench";
    routes[0].upstream = upstream;
    routes[0].fresh_for_ms = -1; /* from Cache-Control */
    static const char *const keys[] = {"/news?country=us", "/news?country=gb"};
    hf_route_config_default(&routes[1]);
    routes[1].name = "bg";
    routes[1].upstream = upstream;
    routes[1].mode = HF_MODE_BACKGROUND;
    routes[1].refresh_every = "1h";
    routes[1].refresh_keys = keys;
    routes[1].nrefresh_keys = 1;
    routes[1].refresh_learn_ms = 3600 * 1000;
    struct hf_config cfg;
    hf_config_default(&cfg);
    cfg.routes = routes;
    cfg.nroutes = 2;
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
    /* The background route: one listed key, and one a user asked for
     * (learned), both brought by a refresh run. */
    hf_get(c, "bg", keys[1], &r); /* a miss: rejected, and learned */
    hf_response_free(&r);
    struct hf_refresh_counts counts;
    if (hf_client_refresh(c, "bg", 0, &counts) != HF_OK || counts.refreshed != 2) {
        fprintf(stderr, "bench_get: the refresh run did not bring both keys\n");
        return 1;
    }
    pthread_join(srv, NULL);
    close(listen_fd);

    static const struct {
        const char *what, *route, *path;
    } cases[] = {
        {"on-demand route", "bench", "/quote?sym=ACME&ccy=USD"},
        {"background route, listed key", "bg", "/news?country=us"},
        {"background route, learned key", "bg", "/news?country=gb"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        measure(c, cases[k].route, cases[k].path, 1, 100000); /* warm up */
        double one = 1e30, two = 1e30;
        for (int round = 0; round < 5; round++) {
            double a = measure(c, cases[k].route, cases[k].path, 1, 1000000);
            double b = measure(c, cases[k].route, cases[k].path, 2, 500000);
            one = a < one ? a : one;
            two = b < two ? b : two;
        }
        printf("bench_get: hf_get fresh memory hit (2 KB body), %s: %.0f ns/op (1 thread), "
               "%.0f ns/op per call with 2 threads (best of 5; target <= 2000)\n",
               cases[k].what, one, two);
    }
    hf_client_destroy(&c);
    return 0;
}
