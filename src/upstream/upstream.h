/*
 * The API client layer: HTTP requests to APIs over a libcurl multi handle
 * driven by one libevent loop (curl's socket and timer callbacks), so any
 * number of transfers run on that loop without blocking it.  Connections are
 * reused across transfers of the same hf_upstream.
 *
 * Knows nothing of caching or retry decisions: one call, one attempt.
 * An hf_upstream belongs to its loop's thread; every function here must be
 * called on that thread.  This is the only folder that includes curl.
 */
#ifndef HF_UPSTREAM_H
#define HF_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <holdfast/client.h>
#include <holdfast/error.h>

#include "core/buf.h"

struct event_base;
struct hf_upstream;
struct hf_up_xfer;

#define HF_UP_MAX_HEADER_BYTES (64 * 1024) /* response header block bound */

struct hf_up_request {
    const char *method;              /* NULL: GET */
    const char *url;                 /* absolute http(s) URL; query already complete */
    const struct hf_header *headers; /* sent as given */
    size_t nheaders;
    const void *body;
    size_t body_len;
    int64_t timeout_ms;         /* whole attempt */
    int64_t connect_timeout_ms; /* 0: curl's default */
    size_t max_body;            /* response body bound */
    bool tls_verify;
};

struct hf_up_result {
    hf_err err;            /* HF_OK when an HTTP answer arrived (any status) */
    int status;            /* its status code */
    struct hf_buf headers; /* "Name: value\r\n" lines of the final answer */
    struct hf_buf body;
    int64_t elapsed_ms;
    char detail[256]; /* curl's message on failure, else "" */
};

/* Called once per started transfer, on the loop, unless cancelled.  res is
 * valid during the call; the callee may take its buffers (hf_buf_take). */
typedef void (*hf_up_done_fn)(struct hf_up_result *res, void *arg);

hf_err hf_upstream_create(struct event_base *base, struct hf_upstream **out);
/* Cancel every transfer (their callbacks are not called) and free *u. */
void hf_upstream_destroy(struct hf_upstream **u);

/* Start one attempt.  On HF_OK done will be called exactly once (later, never
 * from inside this call) unless the transfer is cancelled first; *out (may be
 * NULL) identifies it for hf_upstream_cancel(). */
hf_err hf_upstream_start(struct hf_upstream *u, const struct hf_up_request *req, hf_up_done_fn done,
                         void *arg, struct hf_up_xfer **out);
/* Abort a transfer; its callback is never called.  Sets *x to NULL. */
void hf_upstream_cancel(struct hf_up_xfer **x);

/*
 * Join an API base URL and a path under it ("https://api.example.com/v1/" +
 * "/latest?country=us"; target NULL: base alone) and append the query
 * parameters (URL-encoded), e.g. injected credentials.  Only http and https
 * URLs with a host are accepted.  On HF_OK *out is a malloc'd URL; on
 * HF_BAD_URL errbuf names what is wrong.
 */
hf_err hf_upstream_build_url(const char *base, const char *target, const struct hf_header *query,
                             size_t nquery, char **out, char *errbuf, size_t errlen);

/* Process-wide libcurl set-up; call once before threads start (idempotent). */
hf_err hf_upstream_global_init(void);

#endif
