/*
 * The bare reference server: what this machine can answer over loopback,
 * the bound every proxy's figure is read against.  One epoll loop per thread,
 * each with its own SO_REUSEPORT listener; a request is whatever ends with an
 * empty line, and its answer is one precomputed block: the origin's status
 * line, headers and 2 KB body, byte for byte but for the Date.  No parsing,
 * no allocation, no lock: nothing an HTTP server could do less.
 *
 *   ref -p PORT [-t THREADS]
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/listen.h"

#define BODY_BYTES 2048
#define MAX_THREADS 16
#define MAX_FD 65536
#define IN_BYTES 8192

struct conn {
    size_t inlen;   /* bytes of an unfinished request kept */
    size_t pending; /* answers not yet written in full */
    size_t off;     /* bytes of the first of them already written */
    char in[IN_BYTES];
};

static char resp[BODY_BYTES + 512];
static size_t resp_len;
static struct conn *conns[MAX_FD];
static int port, nthreads = 2;

static void make_response(void)
{
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Cache-Control: max-age=3600\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
                     "Content-Length: %d\r\n\r\n",
                     BODY_BYTES);
    /* the same kind of body as the origin's; its bytes do not matter here */
    memset(resp + n, 'x', BODY_BYTES);
    resp[n] = '{';
    resp[n + BODY_BYTES - 1] = '}';
    resp_len = (size_t)n + BODY_BYTES;
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd]);
    conns[fd] = NULL;
}

/* Write the pending answers; -1 when the connection is gone. */
static int flush(int ep, int fd, struct conn *c)
{
    while (c->pending > 0) {
        struct iovec iov[16];
        int n = 0;
        for (size_t i = 0; i < c->pending && n < 16; i++, n++) {
            iov[n].iov_base = resp + (i == 0 ? c->off : 0);
            iov[n].iov_len = resp_len - (i == 0 ? c->off : 0);
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EAGAIN) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
            return 0;
        }
        if (w <= 0)
            return -1;
        size_t left = (size_t)w;
        while (left > 0) {
            size_t first = resp_len - c->off;
            if (left >= first) {
                left -= first;
                c->off = 0;
                c->pending--;
            } else {
                c->off += left;
                left = 0;
            }
        }
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    return 0;
}

static int on_read(int ep, int fd, struct conn *c)
{
    for (;;) {
        ssize_t r = read(fd, c->in + c->inlen, IN_BYTES - c->inlen);
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0)
            return -1;
        size_t len = c->inlen + (size_t)r, start = 0;
        for (size_t i = 3; i < len; i++)
            if (c->in[i] == '\n' && c->in[i - 1] == '\r' && c->in[i - 2] == '\n' &&
                c->in[i - 3] == '\r') {
                c->pending++;
                start = i + 1;
            }
        if (start == 0 && len == IN_BYTES)
            return -1; /* a header block larger than we keep: not a client of ours */
        memmove(c->in, c->in + start, len - start);
        c->inlen = len - start;
        if ((size_t)r < IN_BYTES / 2)
            break;
    }
    return flush(ep, fd, c);
}

static void *run(void *arg)
{
    (void)arg;
    int one = 1;
    char addr[32], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int lfd = hf_listen_socket(addr, true, err, sizeof err);
    if (lfd < 0) {
        fprintf(stderr, "ref: %s\n", err);
        exit(1);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (cfd >= MAX_FD || (conns[cfd] = calloc(1, sizeof(struct conn))) == NULL) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (c == NULL)
                continue;
            int bad = (evs[i].events & (EPOLLHUP | EPOLLERR)) != 0;
            if (!bad && (evs[i].events & EPOLLOUT))
                bad = flush(ep, fd, c) != 0;
            if (!bad && (evs[i].events & EPOLLIN))
                bad = on_read(ep, fd, c) != 0;
            if (bad)
                drop(ep, fd);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "p:t:")) != -1) {
        if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 't')
            nthreads = atoi(optarg);
        else
            return 2;
    }
    if (port <= 0 || nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "usage: ref -p PORT [-t THREADS (1..%d)]\n", MAX_THREADS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    make_response();
    pthread_t t[MAX_THREADS];
    for (int i = 1; i < nthreads; i++)
        pthread_create(&t[i], NULL, run, NULL);
    run(NULL);
    return 0;
}
