/*
 * holdfast error codes.
 *
 * One table yields the enum, hf_strerror(), the label used in JSON logs, in
 * the "error" field of `holdfast fetch --json` and in metrics, and the HTTP
 * status the proxy answers with when nothing can be served.  HF_OK is 0, so
 * `if (err) goto out;` reads naturally.  The table is append only: values
 * are part of the ABI.
 */
#ifndef HOLDFAST_ERROR_H
#define HOLDFAST_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, label, http_status, text) */
#define HF_ERR_TABLE(X)                                                                            \
    X(OK, "ok", 200, "success")                                                                    \
    X(ENOMEM, "no_memory", 500, "out of memory")                                                   \
    X(EINVAL, "invalid_argument", 500, "invalid argument")                                         \
    X(NOT_FOUND, "not_found", 404, "no such entry")                                                \
    X(BAD_URL, "bad_url", 400, "malformed URL")                                                    \
    X(NO_ROUTE, "no_route", 404, "no route matches the request")                                   \
    X(CONFIG, "config", 500, "invalid configuration")                                              \
    X(UPSTREAM_TIMEOUT, "timeout", 504, "the API did not answer in time")                          \
    X(UPSTREAM_CONNECT, "connect_error", 502, "could not connect to the API")                      \
    X(UPSTREAM_RESOLVE, "resolve_error", 502, "could not resolve the API's host name")             \
    X(UPSTREAM_TLS, "tls_error", 502, "TLS handshake or certificate verification failed")          \
    X(UPSTREAM_RECV, "recv_error", 502, "the connection to the API broke during the response")     \
    X(UPSTREAM_PROTOCOL, "bad_response", 502, "the API sent a malformed response")                 \
    X(BODY_TOO_LARGE, "body_too_large", 502, "the API's response is larger than max_body")         \
    X(HTTP_429, "http_429", 503, "the API's rate limit is in force (HTTP 429)")                    \
    X(HTTP_5XX, "http_5xx", 502, "the API answered with a server error (HTTP 5xx)")                \
    X(HTTP_4XX, "http_4xx", 502, "the API refused the request (HTTP 4xx)")                         \
    X(DEADLINE, "deadline", 504, "the request's deadline passed")                                  \
    X(STORE, "store_error", 500, "the cache store failed")                                         \
    X(STORE_CORRUPT, "store_corrupt", 500, "the cache store is corrupt")                           \
    X(UPSTREAM, "upstream_error", 502, "the request to the API failed")                            \
    X(RATE_LIMITED, "rate_limited", 503, "the API's rate limit is in force: nothing was sent")     \
    X(CIRCUIT_OPEN, "breaker_open", 503, "the API keeps failing: the circuit breaker is open")     \
    X(QUOTA_SPENT, "quota_spent", 503, "the route's quota of API calls is spent")                  \
    X(NOT_REFRESHED, "not_refreshed", 503,                                                         \
      "no copy yet: the route is refreshed in the background only")

typedef enum hf_err {
#define HF__ERR_ENUM(name, label, status, text) HF_##name,
    HF_ERR_TABLE(HF__ERR_ENUM)
#undef HF__ERR_ENUM
        HF__ERR_MAX
} hf_err;

/* Human-readable sentence for err; never NULL (unknown codes get a generic text). */
const char *hf_strerror(hf_err err);

/* Short snake_case label for logs, JSON and metrics ("timeout", "http_5xx"). */
const char *hf_err_label(hf_err err);

/* HTTP status the proxy answers with when err is why nothing could be served. */
int hf_err_http_status(hf_err err);

#ifdef __cplusplus
}
#endif

#endif
