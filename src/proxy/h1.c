/*
 * HTTP/1.1 server side for the proxy's workers (h1.h).
 *
 * A connection is a state machine on one persistent read event and, while
 * an answer does not fit the socket, one write event; both carry the idle
 * timeout as a libevent common timeout (O(1) to re-arm).  Bytes read are
 * fed to http-parser, whose callbacks copy the request line and fields
 * into the connection's arena and the body into its body buffer; the input
 * buffer then only ever holds bytes not parsed yet (a pipelined request).
 * When a request is complete the parser is paused and the handler called;
 * its answer is built in the connection's output buffer and sent with the
 * body by reference in one sendmsg.  Then the parser resumes on what is
 * left.  Buffers are kept across requests: a keep-alive connection
 * allocates nothing per request.
 */
#include "proxy/h1.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/out.h"

#define CONN_MAGIC 0x68316331u /* "h1c1" */
#define IN_BYTES 4096          /* unparsed input held at most (then reading waits) */
#define OUT_MAX (HF_H1_MAX_HEADER_BYTES + 4096)

enum conn_state {
    C_READING,  /* reading (or between) requests */
    C_HANDLING, /* a request is with the handler */
    C_WRITING,  /* its answer does not fit the socket yet */
};

struct h1_conn {
    unsigned magic;
    struct hf_h1_server *srv; /* NULL once the server is gone (an orphan) */
    struct h1_conn *prev, *next;
    int fd;
    enum conn_state state;
    bool eof;      /* the client closed its side: answer, then close */
    bool closing;  /* close once the current answer is written */
    bool failed;   /* the request was refused by the parser: close after the answer */
    bool in_parse; /* inside process(): answers do not re-enter it */
    bool started;  /* a request's first bytes are parsed */
    bool zombie;   /* closed: freed when the last caller on the stack leaves */
    int depth;     /* callers on the stack (entry points) */
    bool read_off; /* the read event is removed (input full, or end of file) */
    struct event *rev, *wev;
    http_parser parser;
    size_t header_bytes; /* of the request being parsed */
    /* the request being parsed: its text in arena, fields as offsets */
    struct hf_buf arena;
    struct hf_buf body;
    size_t url_off, nfields;
    size_t name_off[HF_H1_MAX_FIELDS], value_off[HF_H1_MAX_FIELDS];
    int last_cb; /* 0 none, 1 url, 2 field, 3 value */
    bool too_many, too_large, body_too_large, complete;
    struct hf_h1_field fields[HF_H1_MAX_FIELDS];
    struct hf_h1_req req;
    /* the answer */
    struct hf_buf hdrs; /* fields added by the handler */
    bool has_date;
    struct hf_buf out; /* status line and header block */
    size_t out_sent;
    const char *wbody;
    size_t wbody_len, wbody_sent;
    void (*release)(void *);
    void *release_arg;
    /* input not parsed yet */
    size_t in_len;
    char in[IN_BYTES];
};

struct hf_h1_server {
    struct event_base *base;
    struct evconnlistener *listener;
    hf_h1_handler cb;
    void *arg;
    const struct timeval *idle_tv; /* a common timeout */
    struct h1_conn *conns;
    bool draining;
};

static void conn_close(struct h1_conn *c);
static void leave(struct h1_conn *c);
static void process(struct h1_conn *c);

/* --- the Date field, once per second per thread ---------------------------- */

static const char *http_date(void)
{
    static _Thread_local time_t last;
    static _Thread_local char buf[40];
    time_t now = time(NULL);
    if (now != last || buf[0] == '\0') {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

/* --- parser callbacks ------------------------------------------------------ */

/* An Expect: 100-continue request waits for this before sending its body.
 * Written at once: nothing else is queued on the connection then. */
static void maybe_continue(struct h1_conn *c)
{
    const char *a = c->arena.ptr;
    for (size_t i = 0; i < c->nfields; i++)
        if (strcasecmp(a + c->name_off[i], "Expect") == 0 &&
            strcasecmp(a + c->value_off[i], "100-continue") == 0) {
            static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
            ssize_t w = send(c->fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
            (void)w; /* a client not told goes on after a while anyway */
            return;
        }
}

static struct h1_conn *of(http_parser *p)
{
    return p->data;
}

/* Append to the arena; a request past the header limit is refused (431). */
static int arena_add(struct h1_conn *c, const char *at, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > HF_H1_MAX_HEADER_BYTES || hf_buf_add(&c->arena, at, len) != HF_OK) {
        c->too_large = true;
        return 1;
    }
    return 0;
}

static int end_piece(struct h1_conn *c)
{
    return hf_buf_add(&c->arena, "", 1) == HF_OK ? 0 : (c->too_large = true, 1);
}

static int on_message_begin(http_parser *p)
{
    struct h1_conn *c = of(p);
    hf_buf_reset(&c->arena);
    hf_buf_reset(&c->body);
    c->header_bytes = 0;
    c->nfields = 0;
    c->url_off = 0;
    c->last_cb = 0;
    c->too_many = c->too_large = c->body_too_large = c->complete = false;
    c->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct h1_conn *c = of(p);
    c->last_cb = 1;
    return arena_add(c, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct h1_conn *c = of(p);
    if (c->last_cb != 2) {
        if (end_piece(c)) /* the url's or the last value's end */
            return 1;
        if (c->nfields >= HF_H1_MAX_FIELDS) {
            c->too_many = true;
            return 1;
        }
        c->name_off[c->nfields++] = c->arena.len;
        c->value_off[c->nfields - 1] = c->arena.len; /* until the value starts */
    }
    c->last_cb = 2;
    return arena_add(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct h1_conn *c = of(p);
    if (c->last_cb != 3) {
        if (end_piece(c))
            return 1;
        c->value_off[c->nfields - 1] = c->arena.len;
    }
    c->last_cb = 3;
    return arena_add(c, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct h1_conn *c = of(p);
    if (c->last_cb == 2) { /* a field with no value at all */
        if (end_piece(c))
            return -1; /* 1 would mean "no body" here */
        c->value_off[c->nfields - 1] = c->arena.len;
    }
    if (end_piece(c))
        return -1;
    if (p->content_length != ULLONG_MAX && p->content_length > HF_H1_MAX_BODY_BYTES) {
        c->body_too_large = true;
        return -1;
    }
    bool body =
        (p->flags & F_CHUNKED) != 0 || (p->content_length != ULLONG_MAX && p->content_length > 0);
    if (body && p->http_major == 1 && p->http_minor >= 1)
        maybe_continue(c);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct h1_conn *c = of(p);
    if (hf_buf_add(&c->body, at, len) != HF_OK) {
        c->body_too_large = true;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct h1_conn *c = of(p);
    c->complete = true;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- writing --------------------------------------------------------------- */

static void release_body(struct h1_conn *c)
{
    if (c->release != NULL)
        c->release(c->release_arg);
    c->release = NULL;
    c->release_arg = NULL;
    c->wbody = NULL;
    c->wbody_len = c->wbody_sent = 0;
}

/* The answer is out: the next request, or the end of the connection. */
static void answered(struct h1_conn *c)
{
    release_body(c);
    hf_buf_reset(&c->out);
    c->out_sent = 0;
    if (c->srv == NULL || c->closing || c->eof || c->failed) {
        conn_close(c);
        return;
    }
    c->state = C_READING;
    if (c->wev != NULL)
        event_del(c->wev);
    if (c->read_off) {
        c->read_off = false;
        event_add(c->rev, c->srv->idle_tv);
    }
    http_parser_pause(&c->parser, 0);
    if (!c->in_parse)
        process(c);
}

/* Write what the socket takes; true when all of it is out. */
static bool flush(struct h1_conn *c, bool *broken)
{
    *broken = false;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (c->out_sent < c->out.len)
            iov[n++] = (struct iovec){c->out.ptr + c->out_sent, c->out.len - c->out_sent};
        if (c->wbody_sent < c->wbody_len)
            iov[n++] =
                (struct iovec){(void *)(c->wbody + c->wbody_sent), c->wbody_len - c->wbody_sent};
        if (n == 0)
            return true;
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            *broken = true;
            return false;
        }
        size_t left = (size_t)w, h = c->out.len - c->out_sent;
        size_t take = left < h ? left : h;
        c->out_sent += take;
        c->wbody_sent += left - take;
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct h1_conn *c = arg;
    bool broken;
    c->depth++;
    if ((what & EV_TIMEOUT) != 0)
        conn_close(c); /* the client stopped reading */
    else if (flush(c, &broken))
        answered(c);
    else if (broken)
        conn_close(c);
    leave(c);
}

static void hdr_add(struct h1_conn *c, const char *name, size_t nl, const char *value, size_t vl)
{
    /* the block is bounded: a field past it is dropped, never the answer */
    if (c->hdrs.len + nl + vl + 4 > OUT_MAX)
        return;
    hf_buf_add(&c->hdrs, name, nl);
    hf_buf_add(&c->hdrs, ": ", 2);
    hf_buf_add(&c->hdrs, value, vl);
    hf_buf_add(&c->hdrs, "\r\n", 2);
    if (nl == 4 && strncasecmp(name, "Date", 4) == 0)
        c->has_date = true;
}

void hf_h1_add(struct hf_h1_req *r, const char *name, size_t nl, const char *value, size_t vl)
{
    hdr_add(r->conn_, name, nl, value, vl);
}

void hf_h1_adds(struct hf_h1_req *r, const char *name, const char *value)
{
    hdr_add(r->conn_, name, strlen(name), value, strlen(value));
}

static void free_orphan(struct h1_conn *c)
{
    release_body(c);
    hf_buf_fini(&c->arena);
    hf_buf_fini(&c->body);
    hf_buf_fini(&c->hdrs);
    hf_buf_fini(&c->out);
    c->magic = 0;
    free(c);
}

static void respond(struct h1_conn *c, int status, const char *reason, const void *body,
                    size_t body_len)
{
    if (c->fd < 0) { /* the client is gone (or the server was freed) */
        c->req.conn_ = NULL;
        hf_buf_reset(&c->hdrs);
        conn_close(c);
        return;
    }
    bool no_body = status < 200 || status == 204 || status == 304;
    bool keep = !c->closing && !c->eof && !c->failed && !c->parser.upgrade &&
                http_should_keep_alive(&c->parser) && c->srv != NULL && !c->srv->draining;
    if (!keep)
        c->closing = true;

    struct hf_buf *o = &c->out;
    char num[24];
    hf_buf_reset(o);
    hf_buf_add(o, c->req.http_major == 1 && c->req.http_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
    hf_buf_add(o, num, hf_fmt_u64(status > 0 && status < 1000 ? (uint64_t)status : 500, num));
    hf_buf_add(o, " ", 1);
    hf_buf_adds(o, reason != NULL ? reason : "Status");
    hf_buf_add(o, "\r\n", 2);
    hf_buf_add(o, c->hdrs.ptr != NULL ? c->hdrs.ptr : "", c->hdrs.len);
    if (!c->has_date) {
        hf_buf_add(o, "Date: ", 6);
        hf_buf_adds(o, http_date());
        hf_buf_add(o, "\r\n", 2);
    }
    if (!no_body) {
        hf_buf_add(o, "Content-Length: ", 16);
        hf_buf_add(o, num, hf_fmt_u64(body_len, num));
        hf_buf_add(o, "\r\n", 2);
    }
    if (!keep)
        hf_buf_add(o, "Connection: close\r\n", 19);
    else if (c->req.http_minor == 0)
        hf_buf_add(o, "Connection: keep-alive\r\n", 24);
    hf_buf_add(o, "\r\n", 2);
    hf_buf_reset(&c->hdrs);
    c->has_date = false;
    c->out_sent = 0;
    c->wbody = body;
    c->wbody_len = no_body || c->req.head ? 0 : body_len;
    c->wbody_sent = 0;
    c->req.conn_ = NULL; /* answered: r is done with */

    bool broken;
    if (flush(c, &broken)) {
        answered(c);
        return;
    }
    if (broken) {
        conn_close(c);
        return;
    }
    c->state = C_WRITING;
    if (c->wev == NULL)
        c->wev = event_new(c->srv->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (c->wev == NULL || event_add(c->wev, c->srv->idle_tv) != 0)
        conn_close(c);
}

void hf_h1_respond(struct hf_h1_req *r, int status, const char *reason, const void *body,
                   size_t body_len, void (*release)(void *arg), void *arg)
{
    struct h1_conn *c = r->conn_;
    if (c == NULL || c->magic != CONN_MAGIC || c->state != C_HANDLING)
        abort(); /* answered twice, or not ours: memory is corrupt */
    c->release = release;
    c->release_arg = arg;
    c->depth++;
    respond(c, status, reason, body, body_len);
    leave(c);
}

/* --- reading --------------------------------------------------------------- */

/* A request the parser refused: answer it with a problem and close. */
static void refuse(struct h1_conn *c, int status, const char *reason, const char *detail)
{
    c->state = C_HANDLING;
    c->failed = true;
    c->req = (struct hf_h1_req){
        .method = "", .uri = "", .body = "", .conn_ = c, .http_major = 1, .http_minor = 1};
    char body[400];
    int n = snprintf(body, sizeof body,
                     "{\"type\":\"urn:holdfast:problem:bad-request\",\"title\":\"%s\","
                     "\"status\":%d,\"detail\":\"%s\"}\n",
                     reason, status, detail);
    if (n < 0 || (size_t)n >= sizeof body) /* truncated: never past the buffer */
        n = (int)strlen(body);
    char *copy = strdup(body);
    hf_buf_reset(&c->hdrs);
    c->has_date = false;
    hdr_add(c, "Content-Type", 12, "application/problem+json", 24);
    hdr_add(c, "Cache-Control", 13, "no-store", 8);
    hf_h1_respond(&c->req, status, reason, copy != NULL ? copy : "", copy != NULL ? (size_t)n : 0,
                  free, copy);
}

/* The parsed request to the handler. */
static void dispatch(struct h1_conn *c)
{
    const char *a = c->arena.ptr;
    for (size_t i = 0; i < c->nfields; i++)
        c->fields[i] = (struct hf_h1_field){a + c->name_off[i], a + c->value_off[i]};
    c->req = (struct hf_h1_req){
        .method = http_method_str((enum http_method)c->parser.method),
        .uri = a + c->url_off,
        .fields = c->fields,
        .nfields = c->nfields,
        .body = c->body.ptr != NULL ? c->body.ptr : "",
        .body_len = c->body.len,
        .http_major = c->parser.http_major,
        .http_minor = c->parser.http_minor,
        .head = c->parser.method == HTTP_HEAD,
        .conn_ = c,
    };
    c->state = C_HANDLING;
    hf_buf_reset(&c->hdrs);
    c->has_date = false;
    c->srv->cb(&c->req, c->srv->arg);
}

/* Parse what is buffered; hand over a complete request. */
static void process(struct h1_conn *c)
{
    c->in_parse = true;
    while (c->state == C_READING && c->in_len > 0 && c->fd >= 0) {
        size_t n = http_parser_execute(&c->parser, &settings, c->in, c->in_len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (n < c->in_len && err == HPE_OK && !c->complete && !c->parser.upgrade)
            err = HPE_UNKNOWN;
        if (err != HPE_OK && err != HPE_PAUSED) {
            c->in_len = 0;
            if (c->too_many || c->too_large)
                refuse(c, 431, "Request Header Fields Too Large",
                       c->too_many ? "too many request header fields"
                                   : "request line and header fields too large");
            else if (c->body_too_large)
                refuse(c, 413, "Content Too Large", "request body too large");
            else
                refuse(c, 400, "Bad Request", http_errno_description(err));
            break;
        }
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        if (c->complete) {
            c->complete = false;
            if (c->parser.upgrade) {
                c->closing = true; /* what follows is not HTTP/1.1 */
                c->in_len = 0;
            }
            c->started = false;
            dispatch(c);
        }
    }
    c->in_parse = false;
}

static void readable(struct h1_conn *c, short what)
{
    if ((what & EV_TIMEOUT) != 0) {
        /* idle too long between requests, or a request too slow to arrive;
         * a request with the handler has its own deadlines */
        if (c->state == C_READING)
            conn_close(c);
        return;
    }
    if (c->in_len == sizeof c->in) {
        event_del(c->rev); /* full: wait until the current answer is out */
        c->read_off = true;
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        /* End of file: a request with the handler is still answered (the
         * client may only have shut its sending side).  An error: no one
         * is left to answer. */
        c->eof = true;
        event_del(c->rev);
        c->read_off = true;
        if (c->state != C_READING) {
            if (n < 0 && c->state == C_HANDLING) {
                close(c->fd);
                c->fd = -1;
            }
            return;
        }
        if (n == 0 && c->started) {
            /* a request cut short: the parser says whether it was whole */
            http_parser_execute(&c->parser, &settings, NULL, 0);
            if (c->complete) {
                c->complete = false;
                c->started = false;
                dispatch(c);
                return;
            }
        }
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    if (c->state == C_READING)
        process(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct h1_conn *c = arg;
    c->depth++;
    readable(c, what);
    leave(c);
}

/* --- connections ----------------------------------------------------------- */

static void unlink_conn(struct h1_conn *c)
{
    if (c->srv == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void conn_close(struct h1_conn *c)
{
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    unlink_conn(c);
    c->srv = NULL;
    if (c->state == C_HANDLING && c->req.conn_ != NULL)
        return; /* its answer is still to come: that frees the connection */
    c->zombie = true;
    if (c->depth == 0)
        free_orphan(c);
}

static void leave(struct h1_conn *c)
{
    if (--c->depth == 0 && c->zombie)
        free_orphan(c);
}

hf_err hf_h1_adopt(struct hf_h1_server *s, int fd, bool tcp)
{
    struct h1_conn *c = malloc(sizeof *c);
    if (c == NULL)
        return HF_ENOMEM;
    memset(c, 0, offsetof(struct h1_conn, in));
    c->magic = CONN_MAGIC;
    c->srv = s;
    c->fd = fd;
    c->state = C_READING;
    hf_buf_init(&c->arena, HF_H1_MAX_HEADER_BYTES + HF_H1_MAX_FIELDS * 2 + 8);
    hf_buf_init(&c->body, HF_H1_MAX_BODY_BYTES);
    hf_buf_init(&c->hdrs, OUT_MAX);
    hf_buf_init(&c->out, OUT_MAX + 512);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (tcp) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    if (c->rev == NULL || event_add(c->rev, s->idle_tv) != 0) {
        if (c->rev != NULL)
            event_free(c->rev);
        free(c);
        return HF_ENOMEM;
    }
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    return HF_OK;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)socklen;
    bool tcp = sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
    if (hf_h1_adopt(arg, fd, tcp) != HF_OK)
        close(fd);
}

hf_err hf_h1_server_start(struct event_base *base, int fd, hf_h1_handler cb, void *arg,
                          struct hf_h1_server **out)
{
    struct hf_h1_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return HF_ENOMEM;
    s->base = base;
    s->cb = cb;
    s->arg = arg;
    struct timeval tv = {HF_H1_IDLE_TIMEOUT_S, 0};
    s->idle_tv = event_base_init_common_timeout(base, &tv);
    if (fd >= 0)
        s->listener = evconnlistener_new(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (s->idle_tv == NULL || (fd >= 0 && s->listener == NULL)) {
        if (s->listener != NULL)
            evconnlistener_free(s->listener);
        free(s);
        return HF_ENOMEM;
    }
    *out = s;
    return HF_OK;
}

void hf_h1_server_drain(struct hf_h1_server *s)
{
    if (s == NULL)
        return;
    s->draining = true;
    if (s->listener != NULL) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
    struct h1_conn *next;
    for (struct h1_conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == C_READING && c->in_len == 0 && !c->started)
            conn_close(c); /* idle */
        else
            c->closing = true;
    }
}

void hf_h1_server_free(struct hf_h1_server **sp)
{
    struct hf_h1_server *s = *sp;
    if (s == NULL)
        return;
    *sp = NULL;
    if (s->listener != NULL)
        evconnlistener_free(s->listener);
    while (s->conns != NULL)
        conn_close(s->conns);
    free(s);
}

const char *hf_h1_find(const struct hf_h1_req *r, const char *name)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (strcasecmp(r->fields[i].name, name) == 0)
            return r->fields[i].value;
    return NULL;
}
