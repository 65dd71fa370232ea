/*
 * Private parts of the proxy shared by its files.
 */
#ifndef HF_PROXY_IMPL_H
#define HF_PROXY_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/error.h>

#include "engine/engine.h"

struct event_base;
struct evhttp;
struct evhttp_request;
struct evhttp_bound_socket;
struct hf__static;
struct hf_h1_server;

struct worker {
    int id;
    pthread_t thread;
    bool running;
    int fd;
    struct event_base *base;
    struct hf_h1_server *h1;
    bool draining;
    struct hf_flow_loop fl;
    const struct hf__static *statics;      /* `static:` files (read-only), or NULL */
    _Atomic int active;                    /* requests in progress */
    struct hf_engine *_Atomic next_engine; /* handed over by hf__worker_switch() */
    int64_t drain_deadline_ms;             /* monotonic */
};

/* Run a worker thread serving the listening socket fd (owned by w from now on). */
hf_err hf__worker_start(struct worker *w, struct hf_engine *eng, int fd, char *errbuf,
                        size_t errlen);
/* Listening sockets for n workers on addr: one each on the same TCP port
 * (SO_REUSEPORT; port 0 picks one free port for all), or one unix socket
 * shared.  Returns the number made; *actual gets the address bound. */
int hf__listen_all(const char *addr, int *fds, int n, char *actual, size_t alen, char *errbuf,
                   size_t errlen);
/* Stop accepting, let requests in progress finish (at most grace_ms), join. */
void hf__worker_stop(struct worker *w, int64_t grace_ms);
void hf__worker_fini(struct worker *w);
/* From any thread: new requests on w use eng from now on (a reload). */
void hf__worker_switch(struct worker *w, struct hf_engine *eng);

/* An evhttp on base serving fd (owned by it on success) with holdfast's limits. */
struct evhttp *hf__new_http(struct event_base *base, int fd,
                            void (*cb)(struct evhttp_request *, void *), void *arg,
                            struct evhttp_bound_socket **bound);

/* The route whose prefix is the longest match for uri's path; *rest is the
 * part of uri after the prefix and its '/' ("latest?x=1", "" or "?x=1"). */
const struct hf_route *hf__route_match(const struct hf_engine *e, const char *uri,
                                       const char **rest);
/* Whether uri is an origin-form target that stays under its prefix; else
 * why (len bytes) says what is wrong, for the 400. */
bool hf__target_ok(const char *method, const char *uri, char *why, size_t len);
/* The Cache-Status field value for a flow's result. */
void hf__cache_status(const struct hf_flow_result *r, bool unsafe_method, int64_t now_ms, char *buf,
                      size_t len);
const char *hf__reason_phrase(int status);

#endif
