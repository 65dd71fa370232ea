/*
 * Redis URLs, connections and SIGPIPE, shared by the Redis store tier and
 * the fleet; see redis_link.h.
 */
#include "fleet/redis_link.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#define DEFAULT_PORT 6379
#define DB_MAX 999999999L

/* See hf__redis_reply_downs. */
static const char *const down_replies[] = {"LOADING", "NOAUTH", "WRONGPASS", "MASTERDOWN", "BUSY "};

/* ------------------------------------------------------------------ */
/* URLs                                                               */
/* ------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A percent-decoded copy of s[0..n) in *out; NULL or the problem.  A
 * password holding NUL (%00) could not be sent whole: refused. */
static const char *pct_decode(const char *s, size_t n, char **out)
{
    if (n == 0)
        return "the user name or password is empty";
    char *d = malloc(n + 1);
    if (d == NULL)
        return "out of memory";
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[j++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(d);
            return "bad percent-encoding in the user name or password";
        }
        d[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[j] = '\0';
    *out = d;
    return NULL;
}

/* Digits only, at most max; NULL or the problem. */
static const char *number(const char *s, size_t n, long min, long max, long *out,
                          const char *problem)
{
    long v = 0;
    if (n == 0 || n > 10)
        return problem;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return problem;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return problem;
    *out = v;
    return NULL;
}

/* "[:PASSWORD@]" or "[USER:PASSWORD@]" before the host. */
static const char *parse_userinfo(const char *s, size_t n, struct hf__redis_target *t)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return "the part before '@' must be :PASSWORD or USER:PASSWORD";
    if ((size_t)(colon - s) + 1 == n)
        return "the password is empty";
    const char *why = NULL;
    if (colon > s)
        why = pct_decode(s, (size_t)(colon - s), &t->user);
    if (why == NULL)
        why = pct_decode(colon + 1, n - (size_t)(colon - s) - 1, &t->password);
    return why;
}

static const char *parse_tcp(const char *rest, struct hf__redis_target *t)
{
    const char *at = strrchr(rest, '@'); /* a password may hold '@' */
    const char *why = NULL;
    if (at != NULL && (why = parse_userinfo(rest, (size_t)(at - rest), t)) != NULL)
        return why;
    const char *h = at != NULL ? at + 1 : rest;
    if (strpbrk(h, "?#") != NULL)
        return "query and fragment are not supported (use redis://HOST:PORT/DB)";
    const char *hend, *after;
    bool v6 = *h == '[';
    if (v6) {
        hend = strchr(h, ']');
        if (hend == NULL)
            return "an IPv6 address needs its closing ']'";
        h++;
        after = hend + 1;
    } else {
        hend = h + strcspn(h, ":/");
        after = hend;
    }
    size_t hlen = (size_t)(hend - h);
    if (hlen == 0)
        return "the URL names no host";
    if (hlen > HF__REDIS_HOST_MAX)
        return "the host name is too long";
    for (const char *p = h; p < hend; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_' || (*p == ':' && v6)))
            return "the host may hold only letters, digits, '-', '.' and '_'";
    memcpy(t->host, h, hlen);
    t->host[hlen] = '\0';
    t->port = DEFAULT_PORT;
    if (*after == ':') {
        size_t plen = strcspn(after + 1, "/");
        long port = 0;
        if ((why = number(after + 1, plen, 1, 65535, &port,
                          "the port is not a number from 1 to 65535")) != NULL)
            return why;
        t->port = (int)port;
        after += 1 + plen;
    } else if (*after != '/' && *after != '\0') {
        return "unexpected text after the host";
    }
    t->db = 0;
    if (*after == '/' && after[1] != '\0' &&
        (why = number(after + 1, strlen(after + 1), 0, DB_MAX, &t->db,
                      "the database is not a number (redis://HOST:PORT/0)")) != NULL)
        return why;
    if (strchr(t->host, ':') != NULL)
        snprintf(t->addr, sizeof t->addr, "[%s]:%d", t->host, t->port);
    else
        snprintf(t->addr, sizeof t->addr, "%s:%d", t->host, t->port);
    return NULL;
}

/* "/PATH[?db=N][&user=U][&password=P]" */
static const char *parse_unix(const char *rest, struct hf__redis_target *t)
{
    if (rest[0] != '/')
        return "expected redis+unix:///PATH (an absolute socket path)";
    size_t plen = strcspn(rest, "?");
    if (plen == 1)
        return "the URL names no socket";
    if (plen >= sizeof t->path)
        return "the socket path is too long";
    memcpy(t->path, rest, plen);
    t->path[plen] = '\0';
    snprintf(t->addr, sizeof t->addr, "%s", t->path);
    t->is_unix = true;
    t->db = 0;
    const char *q = rest + plen;
    while (*q != '\0') {
        q++; /* '?' or '&' */
        size_t n = strcspn(q, "&");
        const char *why = NULL;
        if (n >= 3 && strncmp(q, "db=", 3) == 0)
            why = number(q + 3, n - 3, 0, DB_MAX, &t->db, "the database is not a number (?db=0)");
        else if (n >= 9 && strncmp(q, "password=", 9) == 0 && t->password == NULL)
            why = pct_decode(q + 9, n - 9, &t->password);
        else if (n >= 5 && strncmp(q, "user=", 5) == 0 && t->user == NULL)
            why = pct_decode(q + 5, n - 5, &t->user);
        else
            why = "unknown or repeated parameter (use db=N, user=U, password=P)";
        if (why != NULL)
            return why;
        q += n;
    }
    if (t->user != NULL && t->password == NULL)
        return "a user name needs a password";
    return NULL;
}

const char *hf__redis_parse_url(const char *url, struct hf__redis_target *t)
{
    if (strncmp(url, "redis://", 8) == 0)
        return parse_tcp(url + 8, t);
    if (strncmp(url, "redis+unix://", 13) == 0)
        return parse_unix(url + 13, t);
    return "expected redis://[:PASSWORD@]HOST[:PORT][/DB] or redis+unix:///PATH[?db=N]";
}

static void free_secret(char **p)
{
    if (*p != NULL) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

void hf__redis_target_fini(struct hf__redis_target *t)
{
    free_secret(&t->user);
    free_secret(&t->password);
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

void hf__redis_describe(char *why, size_t len, const char *what, const redisContext *ctx,
                        int err_no, int command_timeout_ms)
{
    if (ctx == NULL)
        snprintf(why, len, "%s: out of memory", what);
    else if (ctx->err == REDIS_ERR_IO && (err_no == EAGAIN || err_no == EWOULDBLOCK))
        snprintf(why, len, "%s: no answer within %d ms", what, command_timeout_ms);
    else
        snprintf(why, len, "%s: %s", what, ctx->errstr);
}

redisContext *hf__redis_connect(const struct hf__redis_target *t, int command_timeout_ms, char *why,
                                size_t len)
{
    struct timeval ct = {0, HF__REDIS_CONNECT_TIMEOUT_MS * 1000};
    redisContext *ctx = t->is_unix ? redisConnectUnixWithTimeout(t->path, ct)
                                   : redisConnectWithTimeout(t->host, t->port, ct);
    if (ctx == NULL || ctx->err) {
        hf__redis_describe(why, len, "connect", ctx, errno, command_timeout_ms);
        redisFree(ctx);
        return NULL;
    }
    struct timeval tv = {command_timeout_ms / 1000, (command_timeout_ms % 1000) * 1000};
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        hf__redis_describe(why, len, "connect", ctx, errno, command_timeout_ms);
        redisFree(ctx);
        return NULL;
    }
    if (!t->is_unix)
        (void)redisEnableKeepAlive(ctx);

    char db[16];
    snprintf(db, sizeof db, "%ld", t->db);
    const char *auth[3] = {"AUTH", t->user != NULL ? t->user : t->password, t->password};
    const char *select[2] = {"SELECT", db};
    const char *ping[1] = {"PING"};
    const char *names[3];
    int n = 0;
    if (t->password != NULL) {
        (void)redisAppendCommandArgv(ctx, t->user != NULL ? 3 : 2, auth, NULL);
        names[n++] = "AUTH";
    }
    if (t->db != 0) {
        (void)redisAppendCommandArgv(ctx, 2, select, NULL);
        names[n++] = "SELECT";
    }
    (void)redisAppendCommandArgv(ctx, 1, ping, NULL);
    names[n++] = "PING";
    bool ok = true;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || r == NULL) {
            hf__redis_describe(why, len, names[i], ctx, errno, command_timeout_ms);
            ok = false;
            break;
        }
        if (ok && r->type != REDIS_REPLY_STATUS) {
            snprintf(why, len, "%s: %.*s", names[i], (int)(r->len < 160 ? r->len : 160),
                     r->str != NULL ? r->str : "bad reply");
            ok = false; /* the other replies are still read: the context stays in step */
        }
        freeReplyObject(r);
    }
    if (!ok) {
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

bool hf__redis_broken_while_idle(const redisContext *ctx, int err_no)
{
    return ctx->err == REDIS_ERR_EOF ||
           (ctx->err == REDIS_ERR_IO && (err_no == ECONNRESET || err_no == EPIPE));
}

bool hf__redis_reply_downs(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR || r->str == NULL)
        return false;
    for (size_t i = 0; i < sizeof down_replies / sizeof down_replies[0]; i++)
        if (strncmp(r->str, down_replies[i], strlen(down_replies[i])) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* SIGPIPE                                                            */
/* ------------------------------------------------------------------ */

void hf__redis_sigpipe_block(struct hf__sigpipe_guard *g)
{
    sigset_t pipe_only, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &g->oldmask);
    g->was_blocked = sigismember(&g->oldmask, SIGPIPE) == 1;
    g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

void hf__redis_sigpipe_restore(struct hf__sigpipe_guard *g)
{
    if (g->was_blocked)
        return;
    sigset_t pipe_only, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->oldmask, NULL);
}
