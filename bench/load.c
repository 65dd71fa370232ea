/*
 * The benchmark's load driver for what wrk cannot do exactly: plain sockets
 * and poll(2), HTTP/1.1 keep-alive, one request in flight per connection.
 *
 *   load ports N                      print N free loopback TCP ports
 *   load herd HOST:PORT PATH N        open N connections, then send N GETs of
 *                                     PATH at once (one per connection)
 *   load seq HOST:PORT PREFIX N       one connection, N GETs of PREFIX0,
 *                                     PREFIX1, ... one after the other
 *   load fill HOST:PORT PREFIX N C    N GETs of PREFIX0 .. PREFIX(N-1) over C
 *                                     connections
 *
 * Prints one line of key=value pairs: n ok non2xx errors p50_ms p90_ms
 * p99_ms max_ms elapsed_s rps.  A latency runs from the first byte written
 * to the last byte of the answer read.  Exit status 0 unless it could not
 * run at all.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE (16 * 1024 * 1024)
#define DEADLINE_S 60.0

struct conn {
    int fd;
    int busy; /* a request is in flight */
    long idx; /* its number */
    char out[1024];
    size_t outlen, outoff;
    char *in;
    size_t inlen, incap;
    double t0;
};

static struct sockaddr_in target;
static const char *host_header; /* HOST:PORT, the Host header curl and wrk send */
static const char *prefix;
static int fixed_path; /* herd: every request is PREFIX itself */
static long total, next_idx, done_count;
static long ok, non2xx, errors;
static double *lat;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *s)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &target.sin_addr) == 1 ? 0 : -1;
}

static int open_conn(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Find a header's value in [h, end): case-insensitive name, NULL if none. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = h;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/*
 * Is a whole answer in buf?  1: yes (*used bytes, *status, *must_close);
 * 0: not yet; -1: malformed.  until_eof: the body runs to the close, so
 * only the caller's EOF completes it.
 */
static int parse(const char *buf, size_t len, int eof, size_t *used, int *status, int *must_close)
{
    const char *hend = NULL;
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            hend = buf + i + 1;
            break;
        }
    if (hend == NULL)
        return eof ? -1 : 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    size_t vlen;
    const char *v = header(buf, hend, "Connection", &vlen);
    *must_close = v != NULL && vlen == 5 && strncasecmp(v, "close", 5) == 0;
    size_t hlen = (size_t)(hend - buf);
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200)) {
        *used = hlen;
        return 1;
    }
    v = header(buf, hend, "Transfer-Encoding", &vlen);
    if (v != NULL && vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
        size_t p = hlen;
        for (;;) {
            const char *crlf = memchr(buf + p, '\n', len - p);
            if (crlf == NULL)
                return eof ? -1 : 0;
            size_t sz = strtoul(buf + p, NULL, 16);
            p = (size_t)(crlf - buf) + 1;
            if (sz == 0) {
                /* trailers, then an empty line */
                for (;;) {
                    const char *e = memchr(buf + p, '\n', len - p);
                    if (e == NULL)
                        return eof ? -1 : 0;
                    size_t l = (size_t)(e - (buf + p));
                    p = (size_t)(e - buf) + 1;
                    if (l <= 1) {
                        *used = p;
                        return 1;
                    }
                }
            }
            if (len - p < sz + 2)
                return eof ? -1 : 0;
            p += sz + 2;
        }
    }
    v = header(buf, hend, "Content-Length", &vlen);
    if (v != NULL) {
        size_t cl = strtoul(v, NULL, 10);
        if (len - hlen < cl)
            return eof ? -1 : 0;
        *used = hlen + cl;
        return 1;
    }
    *must_close = 1;
    if (!eof)
        return 0;
    *used = len;
    return 1;
}

static void build_request(struct conn *c, long idx)
{
    int n;
    if (fixed_path)
        n = snprintf(c->out, sizeof c->out, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", prefix,
                     host_header);
    else
        n = snprintf(c->out, sizeof c->out, "GET %s%ld HTTP/1.1\r\nHost: %s\r\n\r\n", prefix, idx,
                     host_header);
    c->outlen = n > 0 && (size_t)n < sizeof c->out ? (size_t)n : 0;
    c->outoff = 0;
    c->idx = idx;
    c->busy = 1;
    c->inlen = 0;
}

static void finish(struct conn *c, int status, int failed)
{
    lat[c->idx] = now_s() - c->t0;
    if (failed)
        errors++;
    else if (status >= 200 && status < 300)
        ok++;
    else
        non2xx++;
    done_count++;
    c->busy = 0;
}

static void drop(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Write what is left of the request; -1 on failure. */
static int pump_out(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (w <= 0)
            return -1;
        c->outoff += (size_t)w;
    }
    return 0;
}

/* Read what is there; finishes the request when its answer is whole. */
static void pump_in(struct conn *c)
{
    int eof = 0;
    for (;;) {
        if (c->incap - c->inlen < 16384) {
            size_t cap = c->incap ? c->incap * 2 : 65536;
            char *n = cap <= MAX_RESPONSE ? realloc(c->in, cap) : NULL;
            if (n == NULL) {
                finish(c, 0, 1);
                drop(c);
                return;
            }
            c->in = n;
            c->incap = cap;
        }
        ssize_t r = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
        if (r > 0) {
            c->inlen += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break;
        eof = 1;
        break;
    }
    size_t used;
    int status = 0, must_close = 0;
    int p = parse(c->in, c->inlen, eof, &used, &status, &must_close);
    if (p == 0 && !eof)
        return;
    if (p <= 0) {
        finish(c, 0, 1);
        drop(c);
        return;
    }
    finish(c, status, 0);
    if (must_close || eof || used != c->inlen)
        drop(c);
    c->inlen = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)((double)n * p + 0.999999) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return v[i];
}

static int run(int nconns, int herd)
{
    struct conn *cs = calloc((size_t)nconns, sizeof *cs);
    struct pollfd *pfd = calloc((size_t)nconns, sizeof *pfd);
    lat = calloc((size_t)total, sizeof *lat);
    if (cs == NULL || pfd == NULL || lat == NULL)
        return 1;
    for (int i = 0; i < nconns; i++) {
        cs[i].fd = open_conn();
        if (cs[i].fd < 0 && herd) {
            /* a herd that cannot connect counts as errors, not a crash */
            cs[i].idx = next_idx++;
            cs[i].t0 = now_s();
            finish(&cs[i], 0, 1);
        }
    }
    if (herd) {
        /* Let the server accept every connection before the burst. */
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        for (int i = 0; i < nconns; i++) {
            if (cs[i].fd < 0)
                continue;
            build_request(&cs[i], next_idx++);
        }
        for (int i = 0; i < nconns; i++) {
            if (cs[i].fd < 0)
                continue;
            cs[i].t0 = now_s();
            if (pump_out(&cs[i]) != 0) {
                finish(&cs[i], 0, 1);
                drop(&cs[i]);
            }
        }
    }
    double start = now_s();
    while (done_count < total) {
        if (now_s() - start > DEADLINE_S)
            break;
        int np = 0;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &cs[i];
            if (!c->busy && !herd && next_idx < total) {
                if (c->fd < 0)
                    c->fd = open_conn();
                build_request(c, next_idx++);
                c->t0 = now_s();
                if (c->fd < 0 || pump_out(c) != 0) {
                    finish(c, 0, 1);
                    drop(c);
                    continue;
                }
            }
            pfd[i].fd = c->busy ? c->fd : -1;
            pfd[i].events = c->busy ? (short)(POLLIN | (c->outoff < c->outlen ? POLLOUT : 0)) : 0;
            pfd[i].revents = 0;
            np += c->busy;
        }
        if (np == 0)
            continue;
        int r = poll(pfd, (nfds_t)nconns, 100);
        if (r < 0 && errno != EINTR)
            return 1;
        for (int i = 0; r > 0 && i < nconns; i++) {
            struct conn *c = &cs[i];
            if (!c->busy || pfd[i].revents == 0)
                continue;
            if ((pfd[i].revents & POLLOUT) && pump_out(c) != 0) {
                finish(c, 0, 1);
                drop(c);
                continue;
            }
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                pump_in(c);
        }
    }
    double elapsed = now_s() - start;
    /* whatever did not finish by the deadline is an error */
    for (int i = 0; i < nconns; i++)
        if (cs[i].busy)
            finish(&cs[i], 0, 1);
    errors += total - done_count;
    qsort(lat, (size_t)done_count, sizeof *lat, cmp_double);
    printf("n=%ld ok=%ld non2xx=%ld errors=%ld p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
           "elapsed_s=%.3f rps=%.0f\n",
           total, ok, non2xx, errors, pct(lat, done_count, 0.50) * 1e3,
           pct(lat, done_count, 0.90) * 1e3, pct(lat, done_count, 0.99) * 1e3,
           done_count ? lat[done_count - 1] * 1e3 : 0.0, elapsed,
           elapsed > 0 ? (double)done_count / elapsed : 0.0);
    for (int i = 0; i < nconns; i++) {
        drop(&cs[i]);
        free(cs[i].in);
    }
    free(cs);
    free(pfd);
    free(lat);
    return 0;
}

static int ports(int n)
{
    int fds[64];
    if (n < 1 || n > 64)
        return 2;
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof sa;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sl) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &sl) != 0) {
            perror("load: ports");
            return 1;
        }
        printf("%s%d", i ? " " : "", ntohs(sa.sin_port));
    }
    printf("\n");
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: load ports N\n"
                    "       load herd HOST:PORT PATH N\n"
                    "       load seq HOST:PORT PREFIX N\n"
                    "       load fill HOST:PORT PREFIX N CONNS\n");
    return 2;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "ports") == 0)
        return ports(atoi(argv[2]));
    if (argc < 5 || strlen(argv[2]) > 64 || parse_addr(argv[2]) != 0)
        return usage();
    host_header = argv[2];
    prefix = argv[3];
    total = atol(argv[4]);
    if (total < 1 || strlen(prefix) > 900)
        return usage();
    if (strcmp(argv[1], "herd") == 0 && argc == 5) {
        fixed_path = 1;
        return run((int)total, 1);
    }
    if (strcmp(argv[1], "seq") == 0 && argc == 5)
        return run(1, 0);
    if (strcmp(argv[1], "fill") == 0 && argc == 6) {
        int c = atoi(argv[5]);
        if (c < 1 || c > 10000)
            return usage();
        return run(c, 0);
    }
    return usage();
}
