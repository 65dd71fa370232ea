/*
 * A scripted API for the unit tests: a thread answering one request per
 * connection on a loopback port (real sockets, real parsing by libcurl),
 * counting what it is asked.  Include after <cmocka.h>, once per test
 * program.
 */
#ifndef HF_TEST_ORIGIN_H
#define HF_TEST_ORIGIN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct api {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    int requests;    /* requests answered */
    int status;      /* what to answer next */
    int delay_ms;    /* before answering */
    char extra[256]; /* extra header lines */
    char body[256];
    char last_target[256];
    char last_headers[4096];
};

static void *api_main(void *arg)
{
    struct api *a = arg;
    for (;;) {
        int c = accept(a->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096];
        size_t n = 0;
        for (;;) { /* read one request per connection: we answer Connection: close */
            ssize_t r = read(c, req + n, sizeof req - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        pthread_mutex_lock(&a->lock);
        a->requests++;
        sscanf(req, "%*s %255s", a->last_target);
        snprintf(a->last_headers, sizeof a->last_headers, "%s", req);
        int status = a->status, delay = a->delay_ms;
        char resp[1024];
        int len = snprintf(resp, sizeof resp,
                           "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                           status, strlen(a->body), a->extra, a->body);
        pthread_mutex_unlock(&a->lock);
        if (delay)
            usleep((useconds_t)delay * 1000);
        ssize_t w = write(c, resp, (size_t)len);
        (void)w;
        close(c);
    }
}

static struct api *api_start(void)
{
    struct api *a = calloc(1, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    a->status = 200;
    snprintf(a->body, sizeof a->body, "hello");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    a->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(a->fd, (struct sockaddr *)&sa, sl), 0);
    assert_int_equal(listen(a->fd, 64), 0);
    assert_int_equal(getsockname(a->fd, (struct sockaddr *)&sa, &sl), 0);
    a->port = ntohs(sa.sin_port);
    pthread_create(&a->thread, NULL, api_main, a);
    return a;
}

static void api_stop(struct api *a)
{
    shutdown(a->fd, SHUT_RDWR);
    close(a->fd);
    pthread_join(a->thread, NULL);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

static void api_set(struct api *a, int status, const char *extra, const char *body, int delay_ms)
{
    pthread_mutex_lock(&a->lock);
    a->status = status;
    snprintf(a->extra, sizeof a->extra, "%s", extra);
    snprintf(a->body, sizeof a->body, "%s", body);
    a->delay_ms = delay_ms;
    pthread_mutex_unlock(&a->lock);
}

static int api_requests(struct api *a)
{
    pthread_mutex_lock(&a->lock);
    int n = a->requests;
    pthread_mutex_unlock(&a->lock);
    return n;
}

#endif
