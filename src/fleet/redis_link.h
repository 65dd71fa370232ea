/*
 * What every holdfast connection to Redis shares (the Redis store tier and
 * the fleet, fleet/fleet.c): the URL, parsed once into a target; a new
 * connection with short timeouts, AUTH, SELECT and PING; the error
 * replies that mean Redis cannot serve at all; and SIGPIPE kept away from
 * the caller (hiredis writes with write(2)).  Internal.  No state of its
 * own: any thread may call any function, each on its own objects.
 *
 * Messages never repeat the URL: it may hold a password.
 */
#ifndef HF_CACHE_REDIS_LINK_H
#define HF_CACHE_REDIS_LINK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

struct redisContext;
struct redisReply;

#define HF__REDIS_HOST_MAX 255
#define HF__REDIS_PATH_MAX (sizeof(((struct sockaddr_un *)NULL)->sun_path))
#define HF__REDIS_ADDR_MAX                                                                         \
    (HF__REDIS_HOST_MAX + 16 > HF__REDIS_PATH_MAX ? HF__REDIS_HOST_MAX + 16 : HF__REDIS_PATH_MAX)
/* A connection attempt that takes longer finds Redis away. */
#define HF__REDIS_CONNECT_TIMEOUT_MS 200

/* Where Redis is and how to log in.  Zero it before parsing; release the
 * secrets with hf__redis_target_fini. */
struct hf__redis_target {
    bool is_unix;
    char host[HF__REDIS_HOST_MAX + 1];
    int port;
    char path[HF__REDIS_PATH_MAX];
    char *user;     /* NULL: none */
    char *password; /* NULL: none */
    long db;
    char addr[HF__REDIS_ADDR_MAX]; /* host:port or the socket path, for logs */
};

/*
 * Parse "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" or
 * "redis+unix:///PATH[?db=N][&user=U][&password=P]" into *t (zeroed by
 * the caller).  NULL, or the problem: a static message that never repeats
 * the URL ("out of memory" when that is what failed).  On failure *t may
 * hold secrets already: hf__redis_target_fini it either way.
 */
const char *hf__redis_parse_url(const char *url, struct hf__redis_target *t);
/* Wipe and free the user name and password; t stays usable for logs. */
void hf__redis_target_fini(struct hf__redis_target *t);

/*
 * A new connection to t, authenticated, on its database, answering PING
 * (one round trip), with command_timeout_ms on every read and write; NULL
 * with why (len bytes) saying what failed.  Call with SIGPIPE blocked
 * (hf__redis_sigpipe_block) or on a thread that blocks it.
 */
struct redisContext *hf__redis_connect(const struct hf__redis_target *t, int command_timeout_ms,
                                       char *why, size_t len);

/* "what: reason" for a failure on ctx (NULL: out of memory), err_no the
 * errno right after it; a timeout reads "no answer within N ms". */
void hf__redis_describe(char *why, size_t len, const char *what, const struct redisContext *ctx,
                        int err_no, int command_timeout_ms);

/* The errors of a connection that was closed while it sat idle (Redis
 * restarted, an idle timeout): worth one new connection and a retry. */
bool hf__redis_broken_while_idle(const struct redisContext *ctx, int err_no);

/* An error reply meaning Redis cannot serve at all (LOADING, NOAUTH,
 * WRONGPASS, MASTERDOWN, BUSY), which a new connection's AUTH or PING
 * also gets: the user goes down until one passes.  READONLY and MISCONF
 * refuse writes only, and are not among them. */
bool hf__redis_reply_downs(const struct redisReply *r);

/* SIGPIPE blocked on this thread while I/O lasts, and one our writes
 * raised consumed before the caller's mask comes back. */
struct hf__sigpipe_guard {
    sigset_t oldmask;
    bool was_blocked, was_pending;
};
void hf__redis_sigpipe_block(struct hf__sigpipe_guard *g);
void hf__redis_sigpipe_restore(struct hf__sigpipe_guard *g);

#endif
