/*
 * libcurl multi driven by libevent: curl tells us which sockets to watch
 * (sock_cb) and when to wake it (timer_cb); libevent tells curl when a socket
 * is ready.  Finished transfers are collected in check_done() and handed to
 * their callbacks after curl has returned, so a callback may start the next
 * attempt at once.  Everything runs on the loop's thread.
 */
#include "upstream/upstream.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "http/target.h"

#define UPSTREAM_MAGIC 0x75707374u /* "upst" */
#define XFER_MAGIC 0x78666572u     /* "xfer" */
#define SOCK_MAGIC 0x736f636bu     /* "sock" */

#define UP_SPARE_HANDLES 32

struct hf_upstream {
    unsigned magic;
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct hf_up_xfer *xfers; /* in flight, for destroy */
    struct sock_ctx *socks;   /* watched sockets, for destroy */
    /* Easy handles kept for the next transfers (curl_easy_reset keeps their
     * buffers): a transfer allocates no curl state once the loop is warm. */
    CURL *spare[UP_SPARE_HANDLES];
    int nspare;
};

struct hf_up_xfer {
    unsigned magic;
    struct hf_upstream *u;
    CURL *easy;
    struct curl_slist *hdrs;
    hf_up_done_fn done;
    void *arg;
    struct hf_up_result res;
    int64_t started_ms;
    bool body_too_large;
    bool headers_too_large;
    char errbuf[CURL_ERROR_SIZE];
    struct hf_up_xfer *next, *prev;
};

struct sock_ctx {
    unsigned magic;
    struct event *ev;
    struct sock_ctx *next, *prev; /* all of an upstream's, freed at destroy */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void)
{
    /* Loops wake each other (a coalesced answer is handed from the loop that
     * fetched it to the loops that waited), so libevent needs its locks. */
    if (evthread_use_pthreads() != 0)
        return;
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

hf_err hf_upstream_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc == CURLE_OK ? HF_OK : HF_ENOMEM;
}

/* --- mapping curl's outcome onto holdfast's error table -------------------- */

static hf_err map_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HF_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HF_UPSTREAM_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return HF_UPSTREAM_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
        return HF_UPSTREAM_RESOLVE;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return HF_UPSTREAM_TLS;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
        return HF_UPSTREAM_RECV;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return HF_UPSTREAM_PROTOCOL;
    case CURLE_URL_MALFORMAT:
        return HF_BAD_URL;
    case CURLE_FILESIZE_EXCEEDED:
        return HF_BODY_TOO_LARGE;
    case CURLE_OUT_OF_MEMORY:
        return HF_ENOMEM;
    default:
        return HF_UPSTREAM;
    }
}

/* --- curl callbacks -------------------------------------------------------- */

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct hf_up_xfer *x = ud;
    size_t len = size * n;
    /* A body of known length gets one buffer of that size: no doubling
     * through 256, 512, ... bytes, whose freed steps fragment the heap
     * between the copies the cache keeps.  (Bodies are not decoded, so
     * Content-Length is what arrives.) */
    curl_off_t cl = -1;
    if (x->res.body.len == 0 &&
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
        cl > 0)
        hf_buf_reserve(&x->res.body, (uint64_t)cl < SIZE_MAX ? (size_t)cl : SIZE_MAX);
    if (hf_buf_add(&x->res.body, p, len) != HF_OK) {
        x->body_too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct hf_up_xfer *x = ud;
    size_t len = size * n;
    size_t l = len;
    while (l > 0 && (p[l - 1] == '\n' || p[l - 1] == '\r'))
        l--;
    if (l >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line: an interim 1xx answer came first; keep only the
         * final answer's headers. */
        hf_buf_reset(&x->res.headers);
        return len;
    }
    if (l == 0)
        return len; /* end of a header block */
    hf_err err;
    if ((p[0] == ' ' || p[0] == '\t') && x->res.headers.len >= 2) {
        /* obsolete line folding (RFC 9112 5.2): join with a space */
        x->res.headers.len -= 2;
        err = hf_buf_add(&x->res.headers, " ", 1);
        if (!err)
            err = hf_buf_add(&x->res.headers, p + 1, l - 1);
    } else {
        err = hf_buf_add(&x->res.headers, p, l);
    }
    if (!err)
        err = hf_buf_add(&x->res.headers, "\r\n", 2);
    if (err) {
        x->headers_too_large = true;
        return 0;
    }
    return len;
}

static void check_done(struct hf_upstream *u);

static void socket_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hf_upstream *u = arg;
    int flags = 0, running;
    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    check_done(u);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hf_upstream *u = arg;
    int running;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(u);
}

static void sock_free(struct hf_upstream *u, struct sock_ctx *sc)
{
    if (sc->magic != SOCK_MAGIC)
        abort();
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        u->socks = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    event_free(sc->ev);
    sc->magic = 0;
    free(sc);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct hf_upstream *u = userp;
    struct sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc != NULL) {
            sock_free(u, sc);
            curl_multi_assign(u->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (sc == NULL) {
        sc = calloc(1, sizeof *sc);
        if (sc == NULL)
            return -1;
        sc->magic = SOCK_MAGIC;
        sc->ev = event_new(u->base, s, kind, socket_event_cb, u);
        if (sc->ev == NULL) {
            free(sc);
            return -1;
        }
        sc->next = u->socks;
        if (u->socks != NULL)
            u->socks->prev = sc;
        u->socks = sc;
        curl_multi_assign(u->multi, s, sc);
    } else {
        if (sc->magic != SOCK_MAGIC)
            abort();
        event_del(sc->ev);
        event_assign(sc->ev, u->base, s, kind, socket_event_cb, u);
    }
    return event_add(sc->ev, NULL) == 0 ? 0 : -1;
}

static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct hf_upstream *u = userp;
    if (timeout_ms < 0)
        return evtimer_del(u->timer);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(u->timer, &tv);
}

/* --- transfers ------------------------------------------------------------- */

static void xfer_unlink(struct hf_up_xfer *x)
{
    struct hf_upstream *u = x->u;
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        u->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->next = x->prev = NULL;
}

static void xfer_free(struct hf_up_xfer *x)
{
    if (x == NULL)
        return;
    if (x->easy != NULL) {
        struct hf_upstream *u = x->u;
        curl_multi_remove_handle(u->multi, x->easy);
        if (u->nspare < UP_SPARE_HANDLES) {
            curl_easy_reset(x->easy);
            u->spare[u->nspare++] = x->easy;
        } else {
            curl_easy_cleanup(x->easy);
        }
    }
    curl_slist_free_all(x->hdrs);
    hf_buf_fini(&x->res.headers);
    hf_buf_fini(&x->res.body);
    x->magic = 0;
    free(x);
}

static void finish(struct hf_up_xfer *x, CURLcode rc)
{
    struct hf_up_result *res = &x->res;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    res->status = (int)status;
    res->elapsed_ms = hf_clock_mono_ms() - x->started_ms;
    if (x->body_too_large) {
        res->err = HF_BODY_TOO_LARGE;
        snprintf(res->detail, sizeof res->detail, "response body larger than max_body (%zu bytes)",
                 res->body.max);
    } else if (x->headers_too_large) {
        res->err = HF_UPSTREAM_PROTOCOL;
        snprintf(res->detail, sizeof res->detail, "response headers larger than %d bytes",
                 HF_UP_MAX_HEADER_BYTES);
    } else {
        res->err = map_curl_error(rc);
        if (res->err == HF_BODY_TOO_LARGE)
            snprintf(res->detail, sizeof res->detail,
                     "response body larger than max_body (%zu bytes)", res->body.max);
        else if (rc != CURLE_OK)
            snprintf(res->detail, sizeof res->detail, "%s",
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    }
    if (res->err != HF_OK)
        res->status = 0;
}

static void check_done(struct hf_upstream *u)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct hf_up_xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL || x->magic != XFER_MAGIC)
            abort(); /* a handle we did not add: memory corruption */
        CURLcode rc = msg->data.result;
        finish(x, rc);
        xfer_unlink(x);
        curl_multi_remove_handle(u->multi, x->easy);
        x->done(&x->res, x->arg);
        xfer_free(x);
    }
}

static hf_err add_header(struct curl_slist **list, const char *name, const char *value)
{
    struct hf_buf b;
    hf_buf_init(&b, 16 * 1024);
    /* curl sends "Name;" as a header with an empty value. */
    hf_err err =
        value[0] ? hf_buf_printf(&b, "%s: %s", name, value) : hf_buf_printf(&b, "%s;", name);
    if (!err) {
        struct curl_slist *n = curl_slist_append(*list, b.ptr);
        if (n == NULL)
            err = HF_ENOMEM;
        else
            *list = n;
    }
    hf_buf_fini(&b);
    return err;
}

static bool has_header(const struct hf_up_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return true;
    return false;
}

hf_err hf_upstream_start(struct hf_upstream *u, const struct hf_up_request *req, hf_up_done_fn done,
                         void *arg, struct hf_up_xfer **out)
{
    hf_err err = HF_ENOMEM;
    struct hf_up_xfer *x = calloc(1, sizeof *x);
    if (x == NULL)
        goto out;
    x->magic = XFER_MAGIC;
    x->u = u;
    x->done = done;
    x->arg = arg;
    hf_buf_init(&x->res.headers, HF_UP_MAX_HEADER_BYTES);
    hf_buf_init(&x->res.body, req->max_body);
    x->easy = u->nspare > 0 ? u->spare[--u->nspare] : curl_easy_init();
    if (x->easy == NULL)
        goto out;

    for (size_t i = 0; i < req->nheaders; i++)
        if ((err = add_header(&x->hdrs, req->headers[i].name, req->headers[i].value)))
            goto out;
    err = HF_ENOMEM;
    if (!has_header(req, "User-Agent") &&
        add_header(&x->hdrs, "User-Agent", "holdfast/" HF_VERSION_STRING))
        goto out;
    /* No "Expect: 100-continue" round trip: APIs rarely need it. */
    struct curl_slist *n = curl_slist_append(x->hdrs, "Expect:");
    if (n == NULL)
        goto out;
    x->hdrs = n;

    CURL *e = x->easy;
    const char *method = req->method ? req->method : "GET";
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_body);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->tls_verify ? 2L : 0L);
    /* Relay encodings as they are: the answer is stored and passed on byte
     * for byte, with the API's own Content-Encoding. */
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || req->body_len > 0) {
        if (req->body_len > 0 || strcmp(method, "POST") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
        }
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK) {
        err = HF_BAD_URL;
        goto out;
    }
    x->started_ms = hf_clock_mono_ms();
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
        goto out;
    x->next = u->xfers;
    if (u->xfers)
        u->xfers->prev = x;
    u->xfers = x;
    if (out != NULL)
        *out = x;
    x = NULL;
    err = HF_OK;
out:
    if (x != NULL)
        xfer_free(x);
    return err;
}

void hf_upstream_cancel(struct hf_up_xfer **xp)
{
    struct hf_up_xfer *x = *xp;
    if (x == NULL)
        return;
    if (x->magic != XFER_MAGIC)
        abort();
    xfer_unlink(x);
    xfer_free(x);
    *xp = NULL;
}

hf_err hf_upstream_build_url(const char *base, const char *target, const struct hf_header *query,
                             size_t nquery, char **out, char *errbuf, size_t errlen)
{
    if (base == NULL) {
        snprintf(errbuf, errlen, "no upstream URL");
        return HF_BAD_URL;
    }
    hf_err err = HF_ENOMEM;
    char *joined = NULL, *scheme = NULL, *host = NULL;
    CURLU *h = curl_url();
    if (h == NULL)
        goto out;
    const char *url = base;
    if (target != NULL && target[0] != '\0') {
        while (*target == '/')
            target++;
        size_t need = strlen(base) + strlen(target) + 2;
        if ((joined = malloc(need)) == NULL)
            goto out;
        if (hf_http_upstream_url(base, target, strlen(target), joined, need) != HF_OK) {
            snprintf(errbuf, errlen, "malformed upstream URL \"%s\"", base);
            err = HF_BAD_URL;
            goto out;
        }
        url = joined;
    }
    err = HF_BAD_URL;
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        snprintf(errbuf, errlen, "malformed URL \"%s\": %s", url, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(errbuf, errlen, "unsupported URL \"%s\": only http:// and https:// are allowed",
                 url);
        goto out;
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        snprintf(errbuf, errlen, "malformed URL \"%s\": no host", url);
        goto out;
    }
    for (size_t i = 0; i < nquery; i++) {
        struct hf_buf b;
        hf_buf_init(&b, 16 * 1024);
        hf_err e2 = hf_buf_printf(&b, "%s=%s", query[i].name, query[i].value);
        uc = e2 ? CURLUE_OUT_OF_MEMORY
                : curl_url_set(h, CURLUPART_QUERY, b.ptr, CURLU_APPENDQUERY | CURLU_URLENCODE);
        hf_buf_fini(&b);
        if (uc != CURLUE_OK) {
            /* never echo the parameter: it is usually a secret */
            snprintf(errbuf, errlen, "cannot add query parameter \"%s\"", query[i].name);
            goto out;
        }
    }
    err = HF_ENOMEM;
    char *full = NULL;
    if (curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK)
        goto out;
    *out = strdup(full);
    curl_free(full);
    err = *out ? HF_OK : HF_ENOMEM;
out:
    curl_free(scheme);
    curl_free(host);
    free(joined);
    curl_url_cleanup(h);
    return err;
}

hf_err hf_upstream_create(struct event_base *base, struct hf_upstream **out)
{
    hf_err err = hf_upstream_global_init();
    if (err)
        return err;
    struct hf_upstream *u = calloc(1, sizeof *u);
    if (u == NULL)
        return HF_ENOMEM;
    u->magic = UPSTREAM_MAGIC;
    u->base = base;
    u->multi = curl_multi_init();
    u->timer = evtimer_new(base, timer_event_cb, u);
    if (u->multi == NULL || u->timer == NULL) {
        hf_upstream_destroy(&u);
        return HF_ENOMEM;
    }
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    *out = u;
    return HF_OK;
}

void hf_upstream_destroy(struct hf_upstream **up)
{
    struct hf_upstream *u = *up;
    if (u == NULL)
        return;
    while (u->xfers != NULL) {
        struct hf_up_xfer *x = u->xfers;
        hf_upstream_cancel(&x);
    }
    while (u->nspare > 0)
        curl_easy_cleanup(u->spare[--u->nspare]);
    if (u->multi != NULL)
        curl_multi_cleanup(u->multi); /* closes pooled connections */
    while (u->socks != NULL)
        sock_free(u, u->socks);
    if (u->timer != NULL)
        event_free(u->timer);
    u->magic = 0;
    free(u);
    *up = NULL;
}
