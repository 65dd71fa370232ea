/*
 * The proxy workers' HTTP/1.1 server side: connections accepted on a
 * listening socket, requests parsed by http-parser, answers written with
 * one sendmsg of a header block and a body held by reference.
 *
 * One request at a time per connection: the next one (pipelined or not) is
 * parsed once the answer to the current one is written, so answers always
 * go out in order.  Nothing is allocated per request once a connection has
 * served its first one; a fresh cache hit costs a read, a parse, a header
 * block built in the connection's buffer and a sendmsg.  Everything is on
 * the loop's thread.
 */
#ifndef HF_PROXY_H1_H
#define HF_PROXY_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

struct event_base;
struct hf_h1_server;

#define HF_H1_MAX_FIELDS 128                   /* request header fields; more: 431 */
#define HF_H1_MAX_HEADER_BYTES (64 * 1024)     /* request line and fields; more: 431 */
#define HF_H1_MAX_BODY_BYTES (8 * 1024 * 1024) /* request body; more: 413 */
#define HF_H1_IDLE_TIMEOUT_S 60                /* keep-alive, reading, writing */

struct hf_h1_field {
    const char *name;
    const char *value;
};

/* A request, valid until it is answered (hf_h1_respond). */
struct hf_h1_req {
    const char *method; /* "GET", "POST", ... */
    const char *uri;    /* the request target as received */
    const struct hf_h1_field *fields;
    size_t nfields;
    const char *body; /* decoded (chunked is undone); "" when none */
    size_t body_len;
    int http_major, http_minor;
    bool head;
    struct h1_conn *conn_; /* private */
};

typedef void (*hf_h1_handler)(struct hf_h1_req *req, void *arg);

/* Serve the listening socket fd (owned from now on; -1: none, connections
 * only come through hf_h1_adopt) on base: cb gets each request, and must
 * answer each one, now or later, on base's thread. */
hf_err hf_h1_server_start(struct event_base *base, int fd, hf_h1_handler cb, void *arg,
                          struct hf_h1_server **out);
/* Serve a connected, non-blocking socket fd (owned from now on). */
hf_err hf_h1_adopt(struct hf_h1_server *s, int fd, bool tcp);
/* Stop accepting; close idle connections, and the others once their
 * current answer is written. */
void hf_h1_server_drain(struct hf_h1_server *s);
/* Close every connection.  A connection whose request is not answered yet
 * is left to that answer, which then only frees it. */
void hf_h1_server_free(struct hf_h1_server **s);

/* The value of the first field called name (any case), or NULL. */
const char *hf_h1_find(const struct hf_h1_req *r, const char *name);

/* Add a field to the answer being built ("Name: value"); lengths given. */
void hf_h1_add(struct hf_h1_req *r, const char *name, size_t nl, const char *value, size_t vl);
void hf_h1_adds(struct hf_h1_req *r, const char *name, const char *value);

/*
 * Send the answer: status, the fields added, Content-Length (not for 1xx,
 * 204, 304), Date (unless added), Connection when needed, and body (not
 * for HEAD).  The body is not copied: release(arg) is called once it is
 * written or the connection is gone (release may be NULL: the body outlives
 * the connection).  r is invalid afterwards.
 */
void hf_h1_respond(struct hf_h1_req *r, int status, const char *reason, const void *body,
                   size_t body_len, void (*release)(void *arg), void *arg);

#endif
