/*
 * The proxy's HTTP/1.1 server side (src/proxy/h1.c) on a real loopback TCP
 * socket, loop and client in this thread: requests whole, split byte by
 * byte and pipelined; refusals (garbage, too many or too large fields, a
 * body too large); chunked bodies; HTTP/1.0; HEAD; 100-continue; answers
 * larger than the socket takes; answers given after the client reset or
 * half-closed; drain.  Bodies held by reference are released exactly once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <event2/event.h>

#include "proxy/h1.h"

struct fixture {
    struct event_base *base;
    struct hf_h1_server *srv;
    int port;
    bool async;                /* keep requests for the test to answer */
    struct hf_h1_req *held[4]; /* in async mode */
    int nheld;
    int requests;
    char last_body[256];
    char last_field[256];
    char last_uri[256];
    int released;
    size_t big; /* > 0: answer with a body this large */
    char *big_body;
};

static void release_cb(void *arg)
{
    struct fixture *f = arg;
    f->released++;
}

static void answer(struct fixture *f, struct hf_h1_req *r)
{
    if (f->big > 0) {
        hf_h1_respond(r, 200, "OK", f->big_body, f->big, release_cb, f);
        return;
    }
    hf_h1_adds(r, "Content-Type", "text/plain");
    static const char ok[] = "hello";
    hf_h1_respond(r, 200, "OK", ok, sizeof ok - 1, release_cb, f);
}

static void handler(struct hf_h1_req *r, void *arg)
{
    struct fixture *f = arg;
    f->requests++;
    snprintf(f->last_uri, sizeof f->last_uri, "%s", r->uri);
    snprintf(f->last_body, sizeof f->last_body, "%.*s", (int)r->body_len, r->body);
    const char *v = hf_h1_find(r, "x-a");
    snprintf(f->last_field, sizeof f->last_field, "%s", v ? v : "(none)");
    if (f->async && f->nheld < 4) {
        f->held[f->nheld++] = r;
        return;
    }
    answer(f, r);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    assert_int_equal(hf_h1_server_start(f->base, fd, handler, f, &f->srv), HF_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hf_h1_server_free(&f->srv);
    event_base_free(f->base);
    free(f->big_body);
    free(f);
    return 0;
}

static int client(struct fixture *f)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    return c;
}

static void spin(struct fixture *f, int rounds)
{
    for (int i = 0; i < rounds; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Run the loop and read from c until want is in what was read (or, with
 * want NULL, until the server closes); at most 2 s.  Returns what was read
 * (static buffer); *closed tells whether the server closed. */
static char *collect(struct fixture *f, int c, const char *want, bool *closed)
{
    static char buf[1 << 16];
    size_t len = 0;
    *closed = false;
    for (int i = 0; i < 2000; i++) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        char tmp[8192];
        ssize_t n = recv(c, tmp, sizeof tmp, 0);
        if (n > 0) {
            size_t k = (size_t)n < sizeof buf - 1 - len ? (size_t)n : sizeof buf - 1 - len;
            memcpy(buf + len, tmp, k);
            len += k;
            buf[len] = '\0';
            if (want != NULL && strstr(buf, want) != NULL)
                return buf;
            continue;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            *closed = true;
            return buf;
        }
        struct pollfd p = {.fd = c, .events = POLLIN};
        poll(&p, 1, 1);
    }
    buf[len] = '\0';
    return buf;
}

static void send_all(int c, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = c, .events = POLLOUT};
            poll(&p, 1, 10);
            continue;
        }
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

static void sends(int c, const char *s)
{
    send_all(c, s, strlen(s));
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void keep_alive_get(void **state)
{
    struct fixture *f = *state;
    int c = client(f);
    bool closed;
    sends(c, "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A: b c\r\n\r\n");
    char *r = collect(f, c, "hello", &closed);
    assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(r, "Content-Type: text/plain\r\nDate: "));
    assert_non_null(strstr(r, "Content-Length: 5\r\n\r\nhello"));
    assert_null(strstr(r, "Connection:"));
    assert_string_equal(f->last_uri, "/a?x=1");
    assert_string_equal(f->last_field, "b c");
    /* the same connection serves the next one */
    sends(c, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    r = collect(f, c, "hello", &closed);
    assert_false(closed);
    assert_int_equal(f->requests, 2);
    assert_string_equal(f->last_uri, "/b");
    assert_string_equal(f->last_field, "(none)");
    assert_int_equal(f->released, 2);
    close(c);
}

static void pipelined_and_split(void **state)
{
    struct fixture *f = *state;
    int c = client(f);
    bool closed;
    sends(c, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    char *r = collect(f, c, "hellohellohello", &closed);
    assert_int_equal(count(r, "HTTP/1.1 200 OK"), 3);
    assert_int_equal(f->requests, 3);
    assert_string_equal(f->last_uri, "/3");
    /* byte by byte, the loop running in between */
    const char *req = "POST /p HTTP/1.1\r\nHost: h\r\nX-A: split\r\nContent-Length: 4\r\n\r\nbody";
    for (const char *p = req; *p; p++) {
        send_all(c, p, 1);
        spin(f, 2);
    }
    r = collect(f, c, "hello", &closed);
    assert_int_equal(f->requests, 4);
    assert_string_equal(f->last_field, "split");
    assert_string_equal(f->last_body, "body");
    close(c);
}

static void refusals(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int c = client(f);
    sends(c, "GARBAGE\r\n\r\n");
    char *r = collect(f, c, NULL, &closed);
    assert_true(closed);
    assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(r, "Connection: close\r\n"));
    assert_non_null(strstr(r, "application/problem+json"));
    close(c);

    c = client(f);
    char many[HF_H1_MAX_FIELDS * 16 + 64];
    size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HF_H1_MAX_FIELDS + 2; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: v\r\n", i);
    snprintf(many + n, sizeof many - n, "\r\n");
    sends(c, many);
    r = collect(f, c, NULL, &closed);
    assert_true(closed);
    assert_non_null(strstr(r, "HTTP/1.1 431 "));
    close(c);

    c = client(f);
    size_t big = HF_H1_MAX_HEADER_BYTES + 100;
    char *huge = malloc(big + 64);
    n = (size_t)snprintf(huge, 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'a', big);
    memcpy(huge + n + big, "\r\n\r\n", 5);
    sends(c, huge);
    free(huge);
    r = collect(f, c, NULL, &closed);
    assert_true(closed);
    assert_true(strstr(r, "HTTP/1.1 431 ") != NULL || strstr(r, "HTTP/1.1 400 ") != NULL);
    close(c);

    c = client(f);
    sends(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9000000\r\n\r\n");
    r = collect(f, c, NULL, &closed);
    assert_true(closed);
    assert_non_null(strstr(r, "HTTP/1.1 413 Content Too Large\r\n"));
    close(c);
    assert_int_equal(f->requests, 0); /* none reached the handler */
}

static void chunked_http10_head_continue(void **state)
{
    struct fixture *f = *state;
    bool closed;
    int c = client(f);
    sends(c, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    collect(f, c, "hello", &closed);
    assert_string_equal(f->last_body, "hello world");
    close(c);

    c = client(f);
    sends(c, "GET /old HTTP/1.0\r\n\r\n");
    char *r = collect(f, c, NULL, &closed);
    assert_true(closed);
    assert_non_null(strstr(r, "HTTP/1.0 200 OK\r\n"));
    assert_non_null(strstr(r, "Connection: close\r\n"));
    close(c);

    c = client(f);
    sends(c, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = collect(f, c, "hello", &closed);
    assert_non_null(strstr(r, "Connection: keep-alive\r\n"));
    sends(c, "HEAD /h HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = collect(f, c, "\r\n\r\n", &closed);
    assert_non_null(strstr(r, "Content-Length: 5\r\n"));
    spin(f, 5);
    char extra[16];
    assert_true(recv(c, extra, sizeof extra, 0) < 0); /* no body after HEAD's header */
    close(c);

    c = client(f);
    sends(c, "PUT /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    r = collect(f, c, "100 Continue", &closed);
    assert_non_null(strstr(r, "HTTP/1.1 100 Continue\r\n\r\n"));
    sends(c, "abc");
    collect(f, c, "hello", &closed);
    assert_string_equal(f->last_body, "abc");
    close(c);
}

static void large_answer(void **state)
{
    struct fixture *f = *state;
    f->big = 4 << 20;
    f->big_body = malloc(f->big);
    memset(f->big_body, 'z', f->big);
    int c = client(f);
    sends(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    size_t got = 0;
    bool body = false;
    char tmp[65536];
    for (int i = 0; i < 20000 && got < f->big; i++) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        ssize_t n = recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) {
            struct pollfd p = {.fd = c, .events = POLLIN};
            poll(&p, 1, 1);
            continue;
        }
        size_t off = 0;
        if (!body) {
            char *e = memmem(tmp, (size_t)n, "\r\n\r\n", 4);
            assert_non_null(e);
            off = (size_t)(e + 4 - tmp);
            body = true;
            /* 4 MB do not fit the socket: the rest waits on the write event */
            assert_int_equal(f->released, 0);
        }
        got += (size_t)n - off;
    }
    assert_int_equal(got, f->big);
    spin(f, 3);
    assert_int_equal(f->released, 1);
    close(c);
}

static void answers_after_the_client_left(void **state)
{
    struct fixture *f = *state;
    f->async = true;
    bool closed;
    /* reset: the answer finds no one, its body is released, nothing leaks */
    int c = client(f);
    sends(c, "GET /gone HTTP/1.1\r\nHost: h\r\n\r\n");
    spin(f, 10);
    assert_int_equal(f->nheld, 1);
    struct linger lg = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
    spin(f, 10);
    answer(f, f->held[0]);
    assert_int_equal(f->released, 1);

    /* half-closed: the answer still goes out, then the connection closes */
    c = client(f);
    sends(c, "GET /half HTTP/1.1\r\nHost: h\r\n\r\n");
    spin(f, 10);
    shutdown(c, SHUT_WR);
    spin(f, 10);
    assert_int_equal(f->nheld, 2);
    answer(f, f->held[1]);
    char *r = collect(f, c, NULL, &closed);
    assert_true(closed);
    assert_non_null(strstr(r, "Connection: close\r\n\r\nhello"));
    close(c);
    assert_int_equal(f->released, 2);
}

static void drain_and_free(void **state)
{
    struct fixture *f = *state;
    f->async = true;
    bool closed;
    int idle = client(f);
    int busy = client(f);
    sends(idle, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n");
    sends(busy, "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    spin(f, 10);
    assert_int_equal(f->nheld, 2);
    answer(f, f->held[0]); /* idle is now idle */
    collect(f, idle, "hello", &closed);
    hf_h1_server_drain(f->srv);
    collect(f, idle, NULL, &closed);
    assert_true(closed); /* closed at once */
    answer(f, f->held[1]);
    char *r = collect(f, busy, NULL, &closed);
    assert_true(closed); /* answered, then closed */
    assert_non_null(strstr(r, "Connection: close\r\n"));
    close(idle);
    close(busy);
}

static void freed_with_a_request_out(void **state)
{
    struct fixture *f = *state;
    f->async = true;
    int c = client(f);
    sends(c, "GET /late HTTP/1.1\r\nHost: h\r\n\r\n");
    spin(f, 10);
    assert_int_equal(f->nheld, 1);
    hf_h1_server_free(&f->srv);
    bool closed;
    collect(f, c, NULL, &closed);
    assert_true(closed);
    answer(f, f->held[0]); /* frees the orphan, releases the body */
    assert_int_equal(f->released, 1);
    close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keep_alive_get, setup, teardown),
        cmocka_unit_test_setup_teardown(pipelined_and_split, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(chunked_http10_head_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(large_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(answers_after_the_client_left, setup, teardown),
        cmocka_unit_test_setup_teardown(drain_and_free, setup, teardown),
        cmocka_unit_test_setup_teardown(freed_with_a_request_out, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
