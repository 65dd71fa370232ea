/*
 * The Redis store against a real redis-server on a free loopback port (and
 * a unix socket), started for the group and stopped at its end (and at
 * exit, and by the kernel if this process dies: PR_SET_PDEATHSIG).  Each
 * test starts from a running, empty server.  First the store contract
 * (without its counting tests: Redis counts and expires by itself), then
 * what Redis brings: binary and long keys, names, TTLs, damaged values,
 * URLs and AUTH/SELECT, the key/value table, connections closed while
 * idle, error replies, and a server that dies, hangs, comes back, or is not
 * there yet.  SIGPIPE keeps its default action: the store must never raise
 * it in its caller.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cache/store_impl.h"
#include "core/clock.h"
#include "obs/log.h"
#include "store_fixture.h"

#define REDIS_BIN "/usr/bin/redis-server"
#define SLACK_MS 5000 /* the store's TTL slack (store_redis.c TTL_SLACK_MS) */

/* ------------------------------------------------------------------ */
/* The server                                                         */
/* ------------------------------------------------------------------ */

static int g_port;
static pid_t g_pid;   /* 0 while a test has it stopped */
static bool g_paused; /* SIGSTOPped by a test */
static char g_dir[PATH_MAX / 2];
static char g_sock[PATH_MAX];
static const char *g_pass; /* requirepass while a test has set one */

static void kill_redis(void)
{
    kill_server(g_pid);
    g_pid = 0;
    g_paused = false;
}

static redisContext *raw_connect(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", g_port, tv);
    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (g_pass != NULL) {
        redisReply *r = redisCommand(c, "AUTH %s", g_pass);
        freeReplyObject(r);
    }
    return c;
}

static bool answers(void)
{
    redisContext *c = raw_connect();
    if (c == NULL)
        return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Start redis-server on g_port and wait (up to 5 s) until it answers. */
static void start_server(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", g_port);
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    g_dir,
                    "--unixsocket",
                    g_sock,
                    "--unixsocketperm",
                    "700",
                    "--daemonize",
                    "no",
                    NULL};
    pid_t pid = spawn_server(REDIS_BIN, argv, NULL);
    g_pid = pid;
    int64_t deadline = hf_clock_mono_ms() + 5000;
    while (!answers()) {
        if (hf_clock_mono_ms() > deadline || waitpid(pid, NULL, WNOHANG) == pid) {
            g_pid = 0;
            fail_msg("redis-server on port %d did not start", g_port);
        }
        pause_ms(5);
    }
}

/* SIGTERM and wait (SIGKILL after 3 s). */
static void stop_server(void)
{
    if (g_paused)
        kill(g_pid, SIGCONT);
    g_paused = false;
    kill(g_pid, SIGTERM);
    int64_t deadline = hf_clock_mono_ms() + 3000;
    while (waitpid(g_pid, NULL, WNOHANG) != g_pid) {
        if (hf_clock_mono_ms() > deadline) {
            kill_redis();
            return;
        }
        pause_ms(2);
    }
    g_pid = 0;
}

static void pause_server(void)
{
    assert_int_equal(kill(g_pid, SIGSTOP), 0);
    g_paused = true;
}

static void resume_server(void)
{
    assert_int_equal(kill(g_pid, SIGCONT), 0);
    g_paused = false;
}

/* ------------------------------------------------------------------ */
/* Talking to Redis directly                                          */
/* ------------------------------------------------------------------ */

/* One command (binary-safe arguments: lens may be NULL for C strings). */
static redisReply *raw(int argc, const char **argv, const size_t *lens)
{
    redisContext *c = raw_connect();
    assert_non_null(c);
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    assert_non_null(r);
    redisFree(c);
    return r;
}

static void raw_ok(int argc, const char **argv, const size_t *lens)
{
    redisReply *r = raw(argc, argv, lens);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", argv[0], r->str);
    freeReplyObject(r);
}

static char *name_of(const char *prefix, const char *key, size_t *len)
{
    size_t pl = strlen(prefix), kl = strlen(key);
    char *n = malloc(pl + kl + 1);
    assert_non_null(n);
    memcpy(n, prefix, pl);
    memcpy(n + pl, key, kl + 1);
    *len = pl + kl;
    return n;
}

/* The raw value at prefix + key (malloc'd, *len bytes), NULL when absent. */
static char *raw_get(const char *prefix, const char *key, size_t *len)
{
    size_t nl = 0;
    char *name = name_of(prefix, key, &nl);
    const char *argv[2] = {"GET", name};
    size_t lens[2] = {3, nl};
    redisReply *r = raw(2, argv, lens);
    free(name);
    char *v = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        v = malloc(r->len + 1);
        assert_non_null(v);
        memcpy(v, r->str, r->len);
        v[r->len] = '\0';
        *len = r->len;
    } else {
        assert_int_equal(r->type, REDIS_REPLY_NIL);
    }
    freeReplyObject(r);
    return v;
}

static void raw_set(const char *prefix, const char *key, const void *v, size_t vlen)
{
    size_t nl = 0;
    char *name = name_of(prefix, key, &nl);
    const char *argv[3] = {"SET", name, v};
    size_t lens[3] = {3, nl, vlen};
    raw_ok(3, argv, lens);
    free(name);
}

static long long raw_int(const char *cmd, const char *prefix, const char *key)
{
    size_t nl = 0;
    char *name = name_of(prefix, key, &nl);
    const char *argv[2] = {cmd, name};
    size_t lens[2] = {strlen(cmd), nl};
    redisReply *r = raw(2, argv, lens);
    free(name);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static bool on_server(const char *key)
{
    return raw_int("EXISTS", "hf:", key) == 1;
}

static long long dbsize(void)
{
    const char *argv[1] = {"DBSIZE"};
    redisReply *r = raw(1, argv, NULL);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* ------------------------------------------------------------------ */
/* Fixtures and the contract                                          */
/* ------------------------------------------------------------------ */

#define STORE_CONTRACT_NO_COUNTS
#include "store_contract.h"

static void at_exit(void)
{
    kill_redis();
    if (log_path[0] != '\0')
        unlink(log_path);
    if (g_dir[0] != '\0')
        rmdir(g_dir);
}

static int group_setup(void **state)
{
    (void)state;
    atexit(at_exit);
    const char *tmp = getenv("HF_TEST_TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/hf-redis-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_sock, sizeof g_sock, "%s/redis.sock", g_dir);
    snprintf(log_path, sizeof log_path, "%s/log.txt", g_dir);
    g_port = free_port();
    snprintf(g_url, sizeof g_url, "redis://127.0.0.1:%d", g_port);
    start_server();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_pid != 0)
        stop_server();
    unlink(log_path);
    unlink(g_sock);
    rmdir(g_dir);
    return 0;
}

/* Every test starts from a running, empty server with no password. */
static int setup(void **state)
{
    (void)state;
    if (g_paused)
        resume_server();
    if (g_pid == 0)
        start_server();
    const char *flush[1] = {"FLUSHALL"};
    raw_ok(1, flush, NULL);
    logs_capture();
    return 0;
}

/* A test that failed with the server stopped or locked must not leave it so. */
static int teardown(void **state)
{
    (void)state;
    logs_release();
    if (g_paused)
        resume_server();
    if (g_pid != 0 && g_pass != NULL) {
        const char *argv[4] = {"CONFIG", "SET", "requirepass", ""};
        raw_ok(4, argv, NULL);
        g_pass = NULL;
    }
    if (g_pid != 0) {
        const char *argv[4] = {"CONFIG", "SET", "maxmemory", "0"};
        raw_ok(4, argv, NULL);
    }
    return 0;
}

static struct hf_store *open_default_redis(void)
{
    return open_url(g_url, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Names, keys, TTLs                                                  */
/* ------------------------------------------------------------------ */

/* Keys are binary-safe: '\n', 0xff, glob bytes, and the longest key. */
static void test_binary_keys(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    static const char odd[] = "GET r /a*b?[c]\\d\n\xff x=1";
    char *longest = malloc(HF_ENTRY_FIELD_MAX);
    assert_non_null(longest);
    memset(longest, 'k', HF_ENTRY_FIELD_MAX - 1);
    longest[100] = '\n';
    longest[HF_ENTRY_FIELD_MAX - 1] = '\0';
    put(s, mk(odd, 0, 100, FOREVER, "odd"));
    put(s, mk(longest, 0, 100, FOREVER, "long"));
    contract_flush(s);
    assert_true(on_server(odd));
    assert_true(on_server(longest));
    size_t len = 0;
    char *rec = raw_get("hf:", odd, &len);
    assert_non_null(rec);
    assert_memory_equal(rec, "hfrd", 4);
    free(rec);

    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_fresh(s, longest, 1, &e), HF_OK);
    assert_string_equal(e->key, longest);
    assert_string_equal(e->body, "long");
    hf_entry_release(&e);
    assert_int_equal(hf_store_get_stale(s, odd, 1, &e), HF_OK);
    assert_string_equal(e->body, "odd");
    hf_entry_release(&e);

    /* Glob bytes in a prefix are literal. */
    static const char *const keys[] = {"GET r /a*", "GET r /ab",  "GET r /a?", "GET r /x\\y",
                                       "GET r /xy", "GET r /[a]", "GET r /a"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        put(s, mk(keys[i], 0, 100, FOREVER, "x"));
    assert_int_equal(del_prefix(s, "GET r /a*"), 2); /* "GET r /a*" and odd */
    assert_int_equal(del_prefix(s, "GET r /a?"), 1);
    assert_int_equal(del_prefix(s, "GET r /x\\"), 1);
    assert_int_equal(del_prefix(s, "GET r /["), 1);
    assert_true(has_stale(s, "GET r /ab", 1));
    assert_true(has_stale(s, "GET r /xy", 1));
    assert_true(has_stale(s, "GET r /a", 1));
    assert_false(has_stale(s, "GET r /x\\y", 1));
    assert_false(on_server(odd));

    assert_int_equal(hf_store_delete(s, longest), HF_OK);
    assert_false(on_server(longest));
    assert_false(has_stale(s, longest, 1));
    assert_int_equal(hf__store_errors(s), 0);
    free(longest);
    hf_store_close(&s);
}

/* "hf:" + key for copies, "hf:kv:" + key for the key/value table; names
 * under "kv:" are not cache keys, and prefix deletes never reach the table. */
static void test_names(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    assert_int_equal(hf_store_kv_put(s, "quota:news", "1 2"), HF_OK);
    put(s, mk("quota:news", 0, 100, FOREVER, "an entry"));
    contract_flush(s);
    size_t len = 0;
    char *v = raw_get("hf:kv:", "quota:news", &len);
    assert_non_null(v);
    assert_string_equal(v, "1 2");
    free(v);
    assert_true(on_server("quota:news"));

    struct hf_entry *e = NULL;
    assert_int_equal(
        hf_entry_create("kv:quota:news", NULL, 200, "", 0, "x", 1, 0, 10, 20, NULL, NULL, &e),
        HF_OK);
    assert_int_equal(hf_store_put(s, e), HF_EINVAL);
    hf_entry_release(&e);
    assert_false(has_stale(s, "kv:quota:news", 1));
    assert_int_equal(hf_store_delete(s, "kv:quota:news"), HF_OK);
    assert_int_equal(del_prefix(s, "k"), 0);
    assert_int_equal(del_prefix(s, "kv:"), 0);
    assert_int_equal(del_prefix(s, "q"), 1);
    kv_expect(s, "quota:news", "1 2");
    hf_store_close(&s);
}

static void expect_ttl(const char *key, long long lo, long long hi)
{
    long long t = raw_int("PTTL", "hf:", key);
    if (t <= lo || t > hi)
        fail_msg("PTTL of %s is %lld, expected (%lld, %lld]", key, t, lo, hi);
}

/* TTL: the stale window from stored_at (at most keep), plus the slack;
 * none for a copy kept forever; never for kv values. */
static void test_ttl(void **state)
{
    (void)state;
    const int64_t hour = 3600000;
    struct hf_store *s = open_default_redis();
    put(s, mk("window", 1000, 2000, 1000 + hour, "x"));
    put(s, mk("forever", 1000, 2000, FOREVER, "x"));
    put(s, mk("over", 5000, 4000, 4000, "stale on arrival"));
    assert_int_equal(hf_store_kv_put(s, "k", "v"), HF_OK);
    contract_flush(s);
    expect_ttl("window", hour, hour + SLACK_MS);
    assert_int_equal(raw_int("PTTL", "hf:", "forever"), -1);
    expect_ttl("over", 0, SLACK_MS);
    assert_int_equal(raw_int("PTTL", "hf:kv:", "k"), -1);
    hf_store_close(&s);

    s = open_url(g_url, 0, 60000);
    put(s, mk("forever", 1000, 2000, FOREVER, "x"));
    put(s, mk("window", 1000, 2000, 1000 + hour, "x"));
    put(s, mk("short", 1000, 2000, 3000, "x"));
    contract_flush(s);
    expect_ttl("forever", 60000, 60000 + SLACK_MS);
    expect_ttl("window", 60000, 60000 + SLACK_MS);
    expect_ttl("short", 2000, 2000 + SLACK_MS);
    /* keep also decides reads, by the caller's clock */
    assert_true(has_stale(s, "forever", 61000));
    assert_false(has_stale(s, "forever", 61001));
    hf_store_close(&s);
}

/* ------------------------------------------------------------------ */
/* Damaged values                                                     */
/* ------------------------------------------------------------------ */

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Re-seal a record after editing it: the checksum is its last 8 bytes. */
static void reseal(unsigned char *r, size_t len)
{
    put_u64le(r + len - 8, hf__siphash13(0x686f6c6466617374ULL, 0x7265642d72656331ULL, r, len - 8));
}

static void test_corrupt_values(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    put(s, mk("good", 0, 100, FOREVER, "a body"));
    contract_flush(s);
    size_t len = 0;
    unsigned char *rec = (unsigned char *)raw_get("hf:", "good", &len);
    assert_non_null(rec);
    unsigned char *bad = malloc(len);
    assert_non_null(bad);

    raw_set("hf:", "garbage", "garbage", 7);
    assert_false(has_stale(s, "garbage", 1));
    logs_have("\"store_corrupt\"");
    logs_have("not a holdfast record");

    memcpy(bad, rec, len);
    bad[len - 9] ^= 1; /* the body's last byte */
    raw_set("hf:", "flipped", bad, len);
    assert_false(has_stale(s, "flipped", 1));

    raw_set("hf:", "other", rec, len); /* a sound record of "good" */
    assert_false(has_stale(s, "other", 1));

    raw_set("hf:", "short", rec, len - 9);
    assert_false(has_stale(s, "short", 1));
    raw_set("hf:", "tiny", rec, 10);
    assert_false(has_stale(s, "tiny", 1));

    memcpy(bad, rec, len);
    bad[4] = 2; /* a newer holdfast's record */
    raw_set("hf:", "newer", bad, len);
    assert_false(has_stale(s, "newer", 1));

    /* Sealed again, so only the lengths can give them away. */
    memcpy(bad, rec, len);
    put_u64le(bad + 56, UINT64_MAX / 2); /* body length */
    reseal(bad, len);
    raw_set("hf:", "good", bad, len);
    assert_false(has_stale(s, "good", 1));
    memcpy(bad, rec, len);
    put_u64le(bad + 56, 5); /* one byte short */
    reseal(bad, len);
    raw_set("hf:", "good", bad, len);
    assert_false(has_stale(s, "good", 1));
    memcpy(bad, rec, len);
    bad[36] = 200; /* key length past the end */
    reseal(bad, len);
    raw_set("hf:", "good", bad, len);
    assert_false(has_stale(s, "good", 1));
    memcpy(bad, rec, len);
    bad[5] = 0xf0; /* unknown flags */
    reseal(bad, len);
    raw_set("hf:", "good", bad, len);
    assert_false(has_stale(s, "good", 1));

    const char *lpush[3] = {"LPUSH", "hf:list", "x"};
    raw_ok(3, lpush, NULL);
    assert_false(has_stale(s, "list", 1));
    logs_have("not a string");

    raw_set("hf:kv:", "nul", "a\0b", 3);
    kv_expect(s, "nul", NULL);
    const char *lpush_kv[3] = {"LPUSH", "hf:kv:list", "x"};
    raw_ok(3, lpush_kv, NULL);
    kv_expect(s, "list", NULL);

    /* Misses, not failures: the store is up, and the next put repairs. */
    assert_true(hf__store_up(s));
    assert_int_equal(hf__store_errors(s), 0);
    put(s, mk("good", 1, 100, FOREVER, "again"));
    contract_flush(s);
    assert_true(has_fresh(s, "good", 2));
    free(bad);
    free(rec);
    hf_store_close(&s);
}

/* ------------------------------------------------------------------ */
/* URLs, AUTH, SELECT, unix sockets                                   */
/* ------------------------------------------------------------------ */

static void test_url_errors(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"redis://:hunter2@", "no host"},
        {"redis://:hunter2", "no host"},
        {"redis://:hunter2@h:0", "port"},
        {"redis://:hunter2@h:65536", "port"},
        {"redis://:hunter2@h:", "port"},
        {"redis://:hunter2@h:6x", "port"},
        {"redis://:hunter2@h/x", "database"},
        {"redis://:hunter2@h/-1", "database"},
        {"redis://:hunter2@h?db=1", "query"},
        {"redis://hunter2@h", ":PASSWORD"},
        {"redis://:hunter2%zz@h", "percent"},
        {"redis://:hunter2%00@h", "percent"},
        {"redis://:@h", "empty"},
        {"redis://:hunter2@[::1", "']'"},
        {"redis://:hunter2@h st", "host"},
        {"redis://:hunter2@h:1x/0", "port"},
        {"redis+unix://tmp/r.sock?password=hunter2", "absolute"},
        {"redis+unix:///?password=hunter2", "no socket"},
        {"redis+unix:///tmp/r.sock?password=hunter2&db=x", "database"},
        {"redis+unix:///tmp/r.sock?pasword=hunter2", "parameter"},
        {"redis+unix:///tmp/r.sock?password=hunter2&password=hunter2", "parameter"},
        {"redis+unix:///tmp/r.sock?user=hunter2", "password"},
        {"rediss://:hunter2@h", "expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct hf_store *s = NULL;
        char err[256] = "";
        hf_err e = hf__store_redis_open(bad[i][0], NULL, &s, err, sizeof err);
        if (e != HF_CONFIG || s != NULL)
            fail_msg("%s: %s (%s)", bad[i][0], hf_strerror(e), err);
        if (strstr(err, bad[i][1]) == NULL || strstr(err, "hunter2") != NULL ||
            strchr(err, '\n') != NULL)
            fail_msg("%s: message \"%s\"", bad[i][0], err);
    }
    char longpath[300] = "redis+unix:///";
    memset(longpath + 14, 'p', 200);
    struct hf_store *s = NULL;
    char err[256] = "";
    assert_int_equal(hf__store_redis_open(longpath, NULL, &s, err, sizeof err), HF_CONFIG);
    assert_non_null(strstr(err, "too long"));

    /* Well formed but unreachable: open succeeds, down, and the log names
     * the address but never the password. */
    int64_t t0 = hf_clock_mono_ms();
    s = open_url("redis://:hunter2@127.0.0.1:1/3", 0, 0);
    assert_true(hf_clock_mono_ms() - t0 < 1000);
    assert_false(hf__store_up(s));
    hf_store_close(&s);
    logs_have("\"store_down\"");
    logs_have("\"address\":\"127.0.0.1:1\"");
    s = open_url("redis://[::1]:1", 0, 0);
    assert_false(hf__store_up(s));
    hf_store_close(&s);
    logs_have("\"address\":\"[::1]:1\"");
    assert_null(strstr(logs_text(), "hunter2"));
}

static void set_requirepass(const char *pass)
{
    const char *argv[4] = {"CONFIG", "SET", "requirepass", pass};
    raw_ok(4, argv, NULL);
    g_pass = pass;
}

/* Whether db holds "hf:" + key. */
static bool in_db(const char *db, const char *key)
{
    redisContext *c = raw_connect();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "SELECT %s", db);
    freeReplyObject(r);
    r = redisCommand(c, "EXISTS hf:%s", key);
    assert_non_null(r);
    bool there = r->integer == 1;
    freeReplyObject(r);
    redisFree(c);
    return there;
}

static void test_auth_and_db(void **state)
{
    (void)state;
    set_requirepass("s3cr@t:x");
    char url[PATH_MAX + 128];
    struct hf_store *s;

    /* percent-encoded, and not: the last '@' ends the password */
    snprintf(url, sizeof url, "redis://:s3cr%%40t%%3Ax@127.0.0.1:%d/5", g_port);
    s = open_url(url, 0, 0);
    assert_true(hf__store_up(s));
    put(s, mk("k5", 0, 100, FOREVER, "x"));
    contract_flush(s);
    assert_true(has_fresh(s, "k5", 1));
    hf_store_close(&s);
    assert_true(in_db("5", "k5"));
    assert_false(in_db("0", "k5"));

    snprintf(url, sizeof url, "redis://default:s3cr@t:x@127.0.0.1:%d/6", g_port);
    s = open_url(url, 0, 0);
    put(s, mk("k6", 0, 100, FOREVER, "x"));
    hf_store_close(&s); /* close flushes */
    assert_true(in_db("6", "k6"));

    snprintf(url, sizeof url, "redis+unix://%s?db=7&password=s3cr%%40t%%3Ax", g_sock);
    s = open_url(url, 0, 0);
    assert_true(hf__store_up(s));
    put(s, mk("k7", 0, 100, FOREVER, "x"));
    contract_flush(s);
    assert_true(has_fresh(s, "k7", 1));
    assert_int_equal(hf_store_kv_put(s, "kv7", "v"), HF_OK);
    contract_flush(s);
    kv_expect(s, "kv7", "v");
    hf_store_close(&s);
    assert_true(in_db("7", "k7"));

    /* A wrong password: open succeeds, the store is down and says why. */
    snprintf(url, sizeof url, "redis://:wr0ngpw@127.0.0.1:%d", g_port);
    s = open_url(url, 0, 0);
    assert_false(hf__store_up(s));
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_stale(s, "k5", 1, &e), HF_STORE);
    hf_store_close(&s);
    logs_have("WRONGPASS");
    assert_null(strstr(logs_text(), "wr0ngpw"));
    assert_null(strstr(logs_text(), "s3cr"));

    /* No password where one is needed: likewise. */
    s = open_default_redis();
    assert_false(hf__store_up(s));
    hf_store_close(&s);
    logs_have("NOAUTH");
}

/* ------------------------------------------------------------------ */
/* The key/value table, queues, threads                               */
/* ------------------------------------------------------------------ */

static void test_kv(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    struct hf_store *other = open_default_redis(); /* another instance */
    char buf[64];
    kv_expect(s, "quota:news", NULL);
    assert_int_equal(hf_store_kv_put(s, "quota:news", "1710460800000 1"), HF_OK);
    kv_expect(s, "quota:news", "1710460800000 1"); /* read from the queue, or Redis */
    assert_int_equal(hf_store_kv_put(s, "quota:news", "1710460800000 2"), HF_OK);
    assert_int_equal(hf_store_kv_put(s, "quota:weather", ""), HF_OK);
    kv_expect(s, "quota:news", "1710460800000 2");
    kv_expect(s, "quota:weather", "");
    contract_flush(s);
    kv_expect(other, "quota:news", "1710460800000 2");
    kv_expect(other, "quota:weather", "");

    /* a buffer too small is an error, never a truncated value */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(hf_store_kv_get(other, "quota:news", buf, 15), HF_EINVAL);
    assert_string_equal(buf, "");
    assert_int_equal(hf_store_kv_get(other, "quota:news", buf, 16), HF_OK);

    char *big = malloc(HF_KV_VALUE_MAX), *got = malloc(HF_KV_VALUE_MAX);
    assert_true(big != NULL && got != NULL);
    memset(big, 'v', HF_KV_VALUE_MAX - 1);
    big[HF_KV_VALUE_MAX - 1] = '\0';
    assert_int_equal(hf_store_kv_put(s, "big", big), HF_OK);
    contract_flush(s);
    assert_int_equal(hf_store_kv_get(other, "big", got, HF_KV_VALUE_MAX), HF_OK);
    assert_string_equal(got, big);
    free(big);
    free(got);

    /* entries and kv values do not mix */
    put(s, mk("quota:news", 0, 10, FOREVER, "an entry"));
    assert_int_equal(hf_store_delete(s, "quota:news"), HF_OK);
    assert_int_equal(del_prefix(s, "quota"), 0);
    contract_flush(s);
    kv_expect(other, "quota:news", "1710460800000 2");
    assert_int_equal(hf_store_kv_put(s, "GET news /b", "kv"), HF_OK);
    assert_false(has_stale(s, "GET news /b", 0));
    hf_store_close(&s);
    hf_store_close(&other);
}

/* A put followed at once by a delete of the key: the put may be queued or
 * being written, and must never land after the delete. */
static void test_delete_after_queued_put(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    char key[32];
    for (int round = 0; round < 200; round++) {
        snprintf(key, sizeof key, "GET r /%d", round);
        put(s, mk(key, 0, 100, FOREVER, "gone"));
        if (round % 2 == 0)
            assert_int_equal(hf_store_delete(s, key), HF_OK);
        else
            assert_int_equal(del_prefix(s, key), 1);
    }
    contract_flush(s);
    assert_int_equal(dbsize(), 0);
    hf_store_close(&s);
}

/* close flushes what is queued. */
static void test_close_flushes(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    char key[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "GET r /%d", i);
        put(s, mk_sized(key, 0, 100, FOREVER, 1000, 'b'));
    }
    hf_store_close(&s);
    assert_int_equal(dbsize(), 500);
}

struct worker {
    struct hf_store *s;
    int id;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char key[48], value[48];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "GET t%d /%d", w->id, i % 20);
        struct hf_entry *e = mk(key, i, i + 100, FOREVER, key);
        if (hf_store_put(w->s, e) != HF_OK)
            w->failures++;
        hf_entry_release(&e);
        hf_err err = hf_store_get_stale(w->s, key, i, &e);
        if (err != HF_OK || strcmp(e->body, key) != 0)
            w->failures++;
        hf_entry_release(&e);
        snprintf(value, sizeof value, "%d", i);
        snprintf(key, sizeof key, "w%d", w->id);
        if (hf_store_kv_put(w->s, key, value) != HF_OK)
            w->failures++;
        if (i % 50 == 0) {
            snprintf(key, sizeof key, "GET t%d /", w->id);
            uint64_t removed = 0;
            if (hf_store_delete_prefix(w->s, key, &removed) != HF_OK)
                w->failures++;
        }
    }
    return NULL;
}

/* More threads than pooled connections, all at once. */
static void test_threads(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    enum { N = 8 };
    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){s, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    contract_flush(s);
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "w%d", i);
        kv_expect(s, key, "299");
    }
    assert_int_equal(hf__store_errors(s), 0);
    hf_store_close(&s);
}

/* ------------------------------------------------------------------ */
/* Connections lost, error replies, down and up                       */
/* ------------------------------------------------------------------ */

/* Connections closed while idle (a Redis restart that kept its data, an
 * idle timeout) are replaced without the store going down. */
static void test_idle_connections_closed(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    put(s, mk("k", 0, 100, FOREVER, "x"));
    contract_flush(s);
    assert_true(has_fresh(s, "k", 1));
    const char *kill_all[4] = {"CLIENT", "KILL", "TYPE", "normal"};
    raw_ok(4, kill_all, NULL);
    assert_true(has_fresh(s, "k", 1));
    raw_ok(4, kill_all, NULL);
    put(s, mk("k2", 0, 100, FOREVER, "y"));
    contract_flush(s);
    assert_true(on_server("k2"));
    raw_ok(4, kill_all, NULL);
    assert_int_equal(hf_store_delete(s, "k"), HF_OK);
    assert_false(on_server("k"));
    assert_true(hf__store_up(s));
    assert_int_equal(hf__store_errors(s), 0);
    assert_null(strstr(logs_text(), "store_down"));
    hf_store_close(&s);
}

/* An error reply fails its operation only. */
static void test_error_replies(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    put(s, mk("before", 0, 100, FOREVER, "x"));
    contract_flush(s);
    const char *oom[4] = {"CONFIG", "SET", "maxmemory", "1"};
    raw_ok(4, oom, NULL);
    put(s, mk("refused", 0, 100, FOREVER, "x"));
    contract_flush(s);
    assert_false(on_server("refused"));
    assert_true(has_fresh(s, "before", 1));
    assert_true(hf__store_up(s));
    assert_true(hf__store_errors(s) >= 1);
    logs_have("\"store_write_failed\"");
    logs_have("OOM");
    hf_store_close(&s);
}

static int64_t since(int64_t t0)
{
    return hf_clock_mono_ms() - t0;
}

/*
 * Redis dies: the next get fails fast and the store is down; everything
 * fails fast while it is; deletes are owed; a Redis started again on the
 * port is found within a few backoff steps and the store works again.
 */
static void test_down_and_up(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    put(s, mk("k", 0, 100, FOREVER, "x"));
    contract_flush(s);
    assert_true(has_fresh(s, "k", 1));
    stop_server();

    struct hf_entry *e = NULL;
    int64_t t0 = hf_clock_mono_ms();
    assert_int_equal(hf_store_get_stale(s, "k", 1, &e), HF_STORE);
    assert_null(e);
    assert_true(since(t0) < 300);
    assert_false(hf__store_up(s));

    uint64_t errors = hf__store_errors(s);
    t0 = hf_clock_mono_ms();
    for (int i = 0; i < 50; i++) {
        assert_int_equal(hf_store_get_fresh(s, "k", 1, &e), HF_STORE);
        struct hf_entry *p = mk("p", 0, 100, FOREVER, "x");
        assert_int_equal(hf_store_put(s, p), HF_STORE);
        hf_entry_release(&p);
        char buf[16];
        assert_int_equal(hf_store_kv_get(s, "kv", buf, sizeof buf), HF_STORE);
        assert_int_equal(hf_store_kv_put(s, "kv", "v"), HF_STORE);
    }
    assert_true(since(t0) < 100); /* no connection attempts on our time */
    assert_true(hf__store_errors(s) >= errors + 200);
    assert_int_equal(hf_store_delete(s, "k"), HF_STORE);
    uint64_t removed = 99;
    assert_int_equal(hf_store_delete_prefix(s, "GET ", &removed), HF_STORE);
    assert_int_equal(removed, 0);
    assert_int_equal(hf_store_sweep(s, 0, NULL), HF_OK);
    logs_have("\"store_down\"");

    start_server();
    if (!comes_up(s, 6000))
        fail_msg("the store did not come back:\n%s", logs_text());
    logs_have("\"store_up\"");
    logs_have("\"deletes_replayed\":2");
    put(s, mk("k2", 0, 100, FOREVER, "back"));
    contract_flush(s);
    assert_true(on_server("k2"));
    assert_true(has_fresh(s, "k2", 1));
    hf_store_close(&s);
}

/* A fleet must start while Redis is away. */
static void test_open_while_down(void **state)
{
    (void)state;
    stop_server();
    int64_t t0 = hf_clock_mono_ms();
    struct hf_store *s = open_default_redis();
    assert_true(since(t0) < 500);
    assert_false(hf__store_up(s));
    struct hf_entry *e = NULL;
    t0 = hf_clock_mono_ms();
    assert_int_equal(hf_store_get_stale(s, "k", 1, &e), HF_STORE);
    struct hf_entry *p = mk("k", 0, 100, FOREVER, "x");
    assert_int_equal(hf_store_put(s, p), HF_STORE);
    hf_entry_release(&p);
    assert_true(since(t0) < 50);

    start_server();
    if (!comes_up(s, 6000))
        fail_msg("the store did not come up:\n%s", logs_text());
    put(s, mk("k", 0, 100, FOREVER, "x"));
    contract_flush(s);
    assert_true(on_server("k"));
    assert_true(has_fresh(s, "k", 1));
    hf_store_close(&s);
}

struct loop_puts {
    struct hf_store *s;
    int refused;
    int64_t slowest_ms;
};

/* An event loop's puts: never a wait, even on a full queue. */
static void *put_like_a_loop(void *arg)
{
    struct loop_puts *lp = arg;
    hf__store_never_wait_on_this_thread();
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "q%d", i);
        struct hf_entry *e = mk(key, 0, 100, FOREVER, "x");
        int64_t t = hf_clock_mono_ms();
        if (hf_store_put(lp->s, e) != HF_OK)
            lp->refused++;
        if (since(t) > lp->slowest_ms)
            lp->slowest_ms = since(t);
        hf_entry_release(&e);
    }
    return NULL;
}

/*
 * Redis hangs (SIGSTOP): the queue fills; a loop's puts are then dropped
 * at once, another thread's after a short wait; a get gives up after the
 * command timeout and the store is down; a delete made meanwhile is owed
 * and made before the store is up again, so the copy never comes back.
 */
static void test_hung_server(void **state)
{
    (void)state;
    struct hf_store *s = open_default_redis();
    put(s, mk("k", 0, 100, FOREVER, "x"));
    put(s, mk("GET r /1", 0, 100, FOREVER, "x"));
    put(s, mk("GET r /2", 0, 100, FOREVER, "x"));
    contract_flush(s);
    assert_true(has_fresh(s, "k", 1)); /* a pooled connection */
    pause_server();

    struct loop_puts lp = {s, 0, 0};
    pthread_t th;
    int64_t t0 = hf_clock_mono_ms();
    assert_int_equal(pthread_create(&th, NULL, put_like_a_loop, &lp), 0);
    pthread_join(th, NULL);
    assert_true(lp.refused > 0);
    assert_true(lp.slowest_ms < 50);
    assert_true(since(t0) < 1000);
    logs_have("\"store_queue_full\"");

    /* This thread may wait, briefly: 100 ms, or until the store is down. */
    struct hf_entry *e = mk("waits", 0, 100, FOREVER, "x");
    t0 = hf_clock_mono_ms();
    assert_int_equal(hf_store_put(s, e), HF_STORE);
    int64_t waited = since(t0);
    assert_true(waited < 400);
    if (hf__store_up(s))
        assert_true(waited >= 90);
    hf_entry_release(&e);

    t0 = hf_clock_mono_ms();
    assert_int_equal(hf_store_get_stale(s, "k", 1, &e), HF_STORE);
    assert_true(since(t0) < 1500);
    assert_false(hf__store_up(s));
    assert_int_equal(hf_store_delete(s, "k"), HF_STORE);
    assert_int_equal(hf_store_delete_prefix(s, "GET r /", NULL), HF_STORE);

    resume_server();
    if (!comes_up(s, 6000))
        fail_msg("the store did not come back:\n%s", logs_text());
    assert_false(on_server("k"));
    assert_false(on_server("GET r /1"));
    assert_false(on_server("GET r /2"));
    assert_false(has_stale(s, "k", 1));
    logs_have("\"deletes_replayed\":2");
    hf_store_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_CONTRACT_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_and_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_after_queued_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connections_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_down_and_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_while_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_server, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
