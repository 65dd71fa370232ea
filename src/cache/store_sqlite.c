/*
 * The SQLite store: one file, one table, WAL mode, survives restarts and may
 * be shared by several processes (a server and `holdfast fetch`).
 *
 * Threads.  All writes (put, delete, delete by prefix, sweep, and the
 * readers' used_at touches) go through a bounded FIFO queue (cache/wqueue.h)
 * to one writer thread per store, which applies up to BATCH_MAX queued
 * operations per transaction; a sweep's or prefix delete's caller waits for
 * it.  Reads use a second connection under `rmu`; WAL readers never wait
 * for the writer.  A queued operation stays in the queue until its
 * transaction has committed, and a read looks there first, so every thread
 * reads its own writes (and everybody else's in this process) before they
 * reach the file.  hf_store_close drains the queue and joins the writer, so
 * a process that puts and exits leaves the copy on disk for the next one.
 *
 * Bad files.  Opening checks the file before trusting it: something that is
 * not an SQLite database, a failing quick_check, a foreign application_id
 * or an unknown schema version each move the file (and its -wal and -shm)
 * aside to PATH.corrupt-<epoch>, log "store_corrupt" and start afresh.  A
 * bad row found later (corrupt page, out-of-range field) is a miss, logged,
 * and deleted; it is never served.
 *
 * The key/value table `kv` (hf_store_kv_get/put) came after schema version
 * 1 shipped.  It is only an extra table, which older holdfasts ignore, so
 * the version stays 1 and opening a file without it creates it.  Its
 * writes are queued like puts; its rows carry a checksum like entries.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/record.h"
#include "cache/store_impl.h"
#include "cache/wqueue.h"
#include "core/clock.h"
#include "obs/log.h"

#define APPLICATION_ID 0x68667374 /* "hfst" in the database header */
#define SCHEMA_VERSION 1          /* PRAGMA user_version */
#define BUSY_TIMEOUT_MS 5000      /* another process's write transaction */
#define WAL_LIMIT_BYTES (64 << 20)

/*
 * The write queue's bound (cache/wqueue.h).  A full queue means the disk
 * (or another process holding the write lock) is slower than the puts; a
 * put or delete then waits up to HF_WQUEUE_WAIT_MS for room and is dropped
 * with a warning after that: an event loop must not stall behind a disk,
 * and a dropped put only costs persistence (the memory tier still holds the
 * copy).  Touches never wait.
 */
#define BATCH_MAX 512                     /* ops per transaction ... */
#define BATCH_MAX_BYTES ((size_t)8 << 20) /* ... and bytes: room frees up steadily */
#define COMMIT_ATTEMPTS 3

/*
 * Recency for size eviction: used_at starts at stored_at and a read moves
 * it to the read's now_ms only when it is more than TOUCH_AFTER_MS old, so
 * a popular key costs one write a minute, not one per read.  LRU order is
 * thus exact to a minute, which is all eviction needs.
 */
#define TOUCH_AFTER_MS 60000

/* The largest row we ever read back: a corrupt or hostile file claiming a
 * bigger one gets SQLITE_TOOBIG from SQLite instead of an allocation. */
#define ROW_LIMIT_BYTES (HF_ENTRY_BODY_MAX + HF_ENTRY_HEADERS_MAX + 4 * HF_ENTRY_FIELD_MAX + 4096)

#define KV_SCHEMA_SQL                                                                              \
    "CREATE TABLE IF NOT EXISTS kv ("                                                              \
    " key TEXT PRIMARY KEY NOT NULL,"                                                              \
    " value TEXT NOT NULL,"                                                                        \
    " checksum INTEGER NOT NULL);"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS entries ("
    " key TEXT PRIMARY KEY NOT NULL,"
    " route TEXT,"
    " status INTEGER NOT NULL,"
    " headers BLOB NOT NULL,"
    " body BLOB NOT NULL,"
    " stored_at INTEGER NOT NULL,"
    " fresh_until INTEGER NOT NULL,"
    " stale_until INTEGER NOT NULL,"
    " etag TEXT,"
    " last_modified TEXT,"
    " size INTEGER NOT NULL,"
    " used_at INTEGER NOT NULL,"
    " checksum INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS entries_stale_until ON entries(stale_until);"
    "CREATE INDEX IF NOT EXISTS entries_stored_at ON entries(stored_at);"
    "CREATE INDEX IF NOT EXISTS entries_used_at ON entries(used_at);" KV_SCHEMA_SQL;

#define SELECT_COLUMNS                                                                             \
    "SELECT route, status, headers, body, stored_at, fresh_until, stale_until, etag,"              \
    " last_modified, used_at, checksum FROM entries WHERE key = ?1 AND "

/* Our kinds besides the queue's HF_WOP_PUT, HF_WOP_DEL and HF_WOP_KV_PUT. */
enum { OP_TOUCH = HF_WOP_STORE, OP_SWEEP, OP_DEL_PREFIX };

struct wop {
    struct hf__wop w; /* first: the queue holds &op->w.  w.key: TOUCH's is
                         stored after the op; DEL_PREFIX's is the caller's */
    int64_t t;        /* TOUCH: used_at; SWEEP: now_ms */
    /* SWEEP and DEL_PREFIX only (w.unbounded): the op lives on the stack of
     * the thread waiting for it, outside the queue bound. */
    int done;
    hf_err result;
    uint64_t expired, evicted; /* SWEEP */
    size_t key_len;            /* DEL_PREFIX: strlen(key) */
    const char *upper;         /* DEL_PREFIX: the range's end, upper_len bytes; */
    size_t upper_len;          /*   0: the range has no end */
    uint64_t removed;          /* DEL_PREFIX */
};

struct sql_store {
    struct hf_store base;
    char *path;
    size_t max_bytes; /* 0: unbounded */
    int64_t keep_ms;  /* 0: keep */

    /* The queue; q.mu also guards the counters.  Threads waiting for
     * their unbounded ops wait on q.done. */
    struct hf__wqueue q;
    uint64_t evictions, expired, dropped;

    /* The writer thread's; used by the opening thread before it starts. */
    pthread_t writer;
    sqlite3 *wdb;
    sqlite3_stmt *w_begin, *w_commit, *w_rollback, *w_put, *w_del, *w_del_range, *w_del_from,
        *w_touch, *w_expire, *w_total, *w_evict, *w_kv_put;
    struct wop *batch[BATCH_MAX];
    char werr[256];

    /* Reads, guarded by rmu. */
    pthread_mutex_t rmu;
    sqlite3 *rdb;
    sqlite3_stmt *r_fresh, *r_stale, *r_stats, *r_kv;
};

static struct wop *wop_of(struct hf__wop *w)
{
    return (struct wop *)w; /* its first member */
}

static int is_corrupt(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

static void log_corrupt(const char *path, const char *detail)
{
    HF_LOG(HF_LOG_ERROR, "store_corrupt", HF_LS("path", path), HF_LS("detail", detail));
}

/*
 * The row checksum: SQLite checks the structure of its pages, not their
 * content, so without it a flipped bit in a body or a timestamp would be
 * served.  It covers everything a reader trusts (not used_at, which
 * changes, nor size, which only steers eviction), in a byte order fixed
 * so a file moves between machines.  Kept to 63 bits: SQLite integers are
 * signed.
 */
#define SUM_K0 0x686f6c6466617374ULL /* "holdfast" */
#define SUM_K1 0x726f772d73756d31ULL /* "row-sum1" */

static uint64_t sum_str(const char *s)
{
    return s == NULL ? 0 : hf__siphash13(SUM_K0, SUM_K1, s, strlen(s));
}

static sqlite3_int64 row_sum(const char *key, const char *route, int64_t status,
                             const void *headers, size_t headers_len, const void *body,
                             size_t body_len, int64_t stored_at, int64_t fresh_until,
                             int64_t stale_until, const char *etag, const char *last_modified)
{
    const uint64_t v[] = {
        sum_str(key),
        sum_str(route),
        hf__siphash13(SUM_K0, SUM_K1, headers, headers_len),
        hf__siphash13(SUM_K0, SUM_K1, body, body_len),
        sum_str(etag),
        sum_str(last_modified),
        (uint64_t)status,
        (uint64_t)stored_at,
        (uint64_t)fresh_until,
        (uint64_t)stale_until,
    };
    unsigned char le[sizeof v];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (size_t b = 0; b < 8; b++)
            le[i * 8 + b] = (unsigned char)(v[i] >> (8 * b));
    return (sqlite3_int64)(hf__siphash13(SUM_K0, SUM_K1, le, sizeof le) & INT64_MAX);
}

/* The kv row checksum, under its own key so an entries checksum can never
 * pass for a kv one. */
#define KV_SUM_K1 0x6b762d73756d2d31ULL /* "kv-sum-1" */

static sqlite3_int64 kv_sum(const char *key, const char *value)
{
    const uint64_t v[] = {sum_str(key), sum_str(value)};
    unsigned char le[sizeof v];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (size_t b = 0; b < 8; b++)
            le[i * 8 + b] = (unsigned char)(v[i] >> (8 * b));
    return (sqlite3_int64)(hf__siphash13(SUM_K0, KV_SUM_K1, le, sizeof le) & INT64_MAX);
}

/* ------------------------------------------------------------------ */
/* Opening: checks, setting aside, schema                             */
/* ------------------------------------------------------------------ */

enum verdict {
    V_OK,    /* a holdfast store of our schema version */
    V_EMPTY, /* a new or empty file: create the schema */
    V_ASIDE, /* not ours or corrupt: move aside and start afresh */
    V_FAIL,  /* cannot tell (I/O error, locked): give up with HF_STORE */
};

static int query_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *v = 0;
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Sort a failed SQLite call into "move the file aside" or "give up". */
static enum verdict failed(sqlite3 *db, int rc, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s", sqlite3_errmsg(db));
    return is_corrupt(rc) ? V_ASIDE : V_FAIL;
}

/* Read-only look at a just-opened file: nothing is written to a file that
 * may belong to someone else. */
static enum verdict inspect(sqlite3 *db, char *why, size_t whylen)
{
    int64_t app_id = 0, version = 0, objects = 0;
    int rc = query_int(db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK)
        rc = query_int(db, "SELECT count(*) FROM sqlite_master", &objects);
    if (rc != SQLITE_OK)
        return failed(db, rc, why, whylen);
    if (app_id == 0 && version == 0 && objects == 0)
        return V_EMPTY;
    if (app_id != APPLICATION_ID) {
        snprintf(why, whylen, "not a holdfast cache store (application_id %lld)",
                 (long long)app_id);
        return V_ASIDE;
    }
    if (version != SCHEMA_VERSION) {
        snprintf(why, whylen, "unknown schema version %lld (this holdfast knows %d)",
                 (long long)version, SCHEMA_VERSION);
        return V_ASIDE;
    }

    /* quick_check reads every page (about a second per GB): the price of
     * never serving from a torn or damaged file. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    enum verdict v = V_OK;
    if (rc == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (res == NULL || strcmp(res, "ok") != 0) {
            snprintf(why, whylen, "quick_check: %.200s", res != NULL ? res : "(null)");
            v = V_ASIDE;
        }
    } else {
        v = failed(db, rc, why, whylen);
    }
    sqlite3_finalize(st);
    return v;
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Write the schema into an empty file.  Two processes may race to do so:
 * the second finds the work done inside its own write transaction. */
static int create_schema(sqlite3 *db)
{
    int rc = exec(db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return rc;
    int64_t app_id = 0;
    rc = query_int(db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK && app_id == 0) {
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d",
                 APPLICATION_ID, SCHEMA_VERSION);
        rc = exec(db, schema_sql);
        if (rc == SQLITE_OK)
            rc = exec(db, pragmas);
    }
    if (rc == SQLITE_OK)
        rc = exec(db, "COMMIT");
    if (rc != SQLITE_OK)
        exec(db, "ROLLBACK");
    return rc;
}

static void close_db(sqlite3 **db)
{
    sqlite3_close(*db); /* all statements are finalized first */
    *db = NULL;
}

/* Connection settings both connections need; errors surface on first use. */
static void harden(sqlite3 *db)
{
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, (int)ROW_LIMIT_BYTES);
    /* The file is data, never code: no schema-defined functions or
     * triggers with side effects, no writes to sqlite_master. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    exec(db, "PRAGMA cell_size_check = ON");
}

static hf_err open_failed(sqlite3 *db, int rc, const char *path, char *errbuf, size_t errlen)
{
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int sys = db != NULL ? sqlite3_system_errno(db) : 0;
    if (sys != 0)
        hf__store_errf(errbuf, errlen, "cannot open cache store %s: %s (%s)", path, msg,
                       strerror(sys));
    else
        hf__store_errf(errbuf, errlen, "cannot open cache store %s: %s", path, msg);
    return HF_STORE;
}

/*
 * Move path, path-wal and path-shm to path.corrupt-<epoch>[.N][-wal|-shm].
 * seen is the file we judged; if path is no longer that file, another
 * process got here first and the caller just opens what is there now.
 * The -wal must not survive at its old name: replayed onto a new file it
 * would resurrect the bad pages.
 */
static hf_err set_aside(const char *path, const struct stat *seen, const char *why, char *errbuf,
                        size_t errlen)
{
    struct stat now;
    if (stat(path, &now) != 0 || now.st_dev != seen->st_dev || now.st_ino != seen->st_ino)
        return HF_OK;
    char aside[PATH_MAX];
    long long epoch = (long long)(hf_clock_wall_ms() / 1000);
    struct stat st;
    for (int i = 0;; i++) {
        int n = i == 0 ? snprintf(aside, sizeof aside, "%s.corrupt-%lld", path, epoch)
                       : snprintf(aside, sizeof aside, "%s.corrupt-%lld.%d", path, epoch, i);
        if (n < 0 || (size_t)n >= sizeof aside - 8 || i == 100) {
            hf__store_errf(errbuf, errlen,
                           "cache store %s is unusable (%s) and cannot be moved aside", path, why);
            return HF_STORE_CORRUPT;
        }
        if (lstat(aside, &st) != 0 && errno == ENOENT)
            break;
    }
    if (rename(path, aside) != 0) {
        hf__store_errf(errbuf, errlen,
                       "cache store %s is unusable (%s) and cannot be moved aside: %s", path, why,
                       strerror(errno));
        return HF_STORE_CORRUPT;
    }
    static const char *const sidecars[] = {"-wal", "-shm"};
    for (size_t i = 0; i < 2; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof from, "%s%s", path, sidecars[i]);
        snprintf(to, sizeof to, "%s%s", aside, sidecars[i]);
        if (rename(from, to) != 0 && errno != ENOENT && unlink(from) != 0 && errno != ENOENT) {
            hf__store_errf(errbuf, errlen, "cannot remove %s: %s", from, strerror(errno));
            return HF_STORE_CORRUPT;
        }
    }
    HF_LOG(HF_LOG_ERROR, "store_corrupt", HF_LS("path", path), HF_LS("detail", why),
           HF_LS("moved_to", aside));
    return HF_OK;
}

struct stmt_def {
    sqlite3_stmt **st;
    const char *sql;
};

/* Prepare a list of statements.  A statement that does not compile against
 * the file's schema (a missing column, a view where the table should be)
 * means the file is not really ours. */
static enum verdict prepare_all(sqlite3 *db, const struct stmt_def *d, size_t n, char *why,
                                size_t whylen)
{
    for (size_t i = 0; i < n; i++) {
        int rc = sqlite3_prepare_v3(db, d[i].sql, -1, SQLITE_PREPARE_PERSISTENT, d[i].st, NULL);
        if (rc != SQLITE_OK) {
            snprintf(why, whylen, "schema mismatch: %s", sqlite3_errmsg(db));
            return (rc & 0xff) == SQLITE_ERROR || is_corrupt(rc) ? V_ASIDE : V_FAIL;
        }
    }
    return V_OK;
}

static void finalize_all(struct sql_store *s)
{
    sqlite3_stmt **all[] = {&s->w_begin,  &s->w_commit,    &s->w_rollback, &s->w_put,
                            &s->w_del,    &s->w_del_range, &s->w_del_from, &s->w_touch,
                            &s->w_expire, &s->w_total,     &s->w_evict,    &s->w_kv_put,
                            &s->r_fresh,  &s->r_stale,     &s->r_stats,    &s->r_kv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
}

static enum verdict prepare_writer(struct sql_store *s, char *why, size_t whylen)
{
    const struct stmt_def d[] = {
        {&s->w_begin, "BEGIN IMMEDIATE"},
        {&s->w_commit, "COMMIT"},
        {&s->w_rollback, "ROLLBACK"},
        {&s->w_put, "INSERT OR REPLACE INTO entries (key, route, status, headers, body, "
                    "stored_at, fresh_until, stale_until, etag, last_modified, size, used_at, "
                    "checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"},
        {&s->w_del, "DELETE FROM entries WHERE key = ?1"},
        /* Keys starting with a prefix, as a range over the primary key's
         * index (BINARY collation: memcmp order), never a scan: LIKE and
         * GLOB treat % _ * ? [ as patterns and only use the index under
         * conditions a key cannot promise. */
        {&s->w_del_range, "DELETE FROM entries WHERE key >= ?1 AND key < ?2"},
        {&s->w_del_from, "DELETE FROM entries WHERE key >= ?1"},
        {&s->w_touch, "UPDATE entries SET used_at = ?2 WHERE key = ?1 AND used_at < ?2"},
        {&s->w_expire, "DELETE FROM entries WHERE stale_until <= ?1 OR stored_at < ?2"},
        {&s->w_total, "SELECT total(size) FROM entries"},
        /* Keep the most recently used copies whose sizes add up to at most
         * ?1, delete the rest: LRU eviction in one statement.  key breaks
         * ties so the order is total. */
        {&s->w_evict, "DELETE FROM entries WHERE key IN (SELECT key FROM (SELECT key, "
                      "total(size) OVER (ORDER BY used_at DESC, stored_at DESC, key DESC "
                      "ROWS UNBOUNDED PRECEDING) AS run FROM entries) WHERE run > ?1)"},
    };
    return prepare_all(s->wdb, d, sizeof d / sizeof d[0], why, whylen);
}

/*
 * A file written before the kv table existed gets it now.  Only after the
 * entries statements compiled, so a file that is not ours after all is
 * not written to; and only when missing, so opening a current file never
 * takes the write lock.
 */
static int ensure_kv(sqlite3 *db)
{
    int64_t n = 0;
    int rc = query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'kv'", &n);
    if (rc != SQLITE_OK || n > 0)
        return rc;
    rc = exec(db, "BEGIN IMMEDIATE"); /* another process may be doing the same */
    if (rc != SQLITE_OK)
        return rc;
    rc = exec(db, KV_SCHEMA_SQL);
    if (rc == SQLITE_OK)
        rc = exec(db, "COMMIT");
    if (rc != SQLITE_OK)
        exec(db, "ROLLBACK");
    return rc;
}

static enum verdict prepare_writer_kv(struct sql_store *s, char *why, size_t whylen)
{
    const struct stmt_def d[] = {
        {&s->w_kv_put, "INSERT OR REPLACE INTO kv (key, value, checksum) VALUES (?1, ?2, ?3)"},
    };
    return prepare_all(s->wdb, d, sizeof d / sizeof d[0], why, whylen);
}

static enum verdict prepare_reader(struct sql_store *s, char *why, size_t whylen)
{
    const struct stmt_def d[] = {
        {&s->r_fresh, SELECT_COLUMNS "fresh_until > ?2"},
        {&s->r_stale, SELECT_COLUMNS "stale_until > ?2"},
        {&s->r_stats, "SELECT count(*), total(size) FROM entries"},
        {&s->r_kv, "SELECT value, checksum FROM kv WHERE key = ?1"},
    };
    return prepare_all(s->rdb, d, sizeof d / sizeof d[0], why, whylen);
}

/* One attempt at opening path as a store.  V_ASIDE leaves *seen set to the
 * file that was judged. */
static enum verdict open_once(struct sql_store *s, struct stat *seen, char *why, size_t whylen)
{
    const char *path = s->path;
    int rc = sqlite3_open_v2(
        path, &s->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return V_FAIL; /* the caller reports sqlite3_errmsg(s->wdb) */
    harden(s->wdb);
    if (stat(path, seen) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return V_FAIL;
    }
    enum verdict v = inspect(s->wdb, why, whylen);
    if (v == V_ASIDE || v == V_FAIL)
        return v;
    if (sqlite3_db_readonly(s->wdb, "main") == 1) {
        snprintf(why, whylen, "the file is read-only");
        return V_FAIL;
    }

    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int wal = mode != NULL && strcmp(mode, "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        if (rc == SQLITE_ROW)
            snprintf(why, whylen, "cannot switch to WAL mode");
        else
            return failed(s->wdb, rc, why, whylen);
        return V_FAIL;
    }
    char pragmas[128];
    snprintf(pragmas, sizeof pragmas, "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = %d",
             WAL_LIMIT_BYTES);
    rc = exec(s->wdb, pragmas);
    if (rc == SQLITE_OK && v == V_EMPTY)
        rc = create_schema(s->wdb);
    if (rc != SQLITE_OK)
        return failed(s->wdb, rc, why, whylen);
    v = prepare_writer(s, why, whylen);
    if (v != V_OK)
        return v;
    rc = ensure_kv(s->wdb);
    if (rc != SQLITE_OK)
        return failed(s->wdb, rc, why, whylen);
    v = prepare_writer_kv(s, why, whylen);
    if (v != V_OK)
        return v;

    rc = sqlite3_open_v2(path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return failed(s->rdb, rc, why, whylen);
    harden(s->rdb);
    return prepare_reader(s, why, whylen);
}

/* ------------------------------------------------------------------ */
/* The queue                                                          */
/* ------------------------------------------------------------------ */

/* Queue op; on failure op is freed.  wait: how a full queue is met (see
 * HF_WQUEUE_WAIT_MS); a write that may not wait is dropped silently. */
static hf_err enqueue(struct sql_store *s, struct wop *op, bool wait)
{
    pthread_mutex_lock(&s->q.mu);
    if (hf__wqueue_offer(&s->q, &op->w, wait, NULL)) {
        pthread_mutex_unlock(&s->q.mu);
        return HF_OK;
    }
    uint64_t dropped = wait ? ++s->dropped : 0;
    pthread_mutex_unlock(&s->q.mu);
    hf__wop_free(&op->w);
    /* Log the 1st, 2nd, 4th, 8th... drop: visible, but never a flood. */
    if (dropped != 0 && (dropped & (dropped - 1)) == 0)
        HF_LOG(HF_LOG_WARN, "store_queue_full", HF_LS("path", s->path), HF_LI("dropped", dropped));
    return HF_STORE;
}

/* A DEL or TOUCH op carrying its own copy of key. */
static struct wop *keyed_op(int kind, const char *key, int64_t t)
{
    struct wop *op = hf__wop_new(sizeof *op, kind, key, NULL);
    if (op != NULL)
        op->t = t;
    return op;
}

/* ------------------------------------------------------------------ */
/* The writer thread                                                  */
/* ------------------------------------------------------------------ */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int apply_op(struct sql_store *s, struct wop *op)
{
    sqlite3_stmt *st;
    int rc;
    switch (op->w.kind) {
    case HF_WOP_PUT: {
        const struct hf_entry *e = op->w.e;
        st = s->w_put;
        sqlite3_bind_text(st, 1, e->key, -1, SQLITE_STATIC);
        if (e->route != NULL)
            sqlite3_bind_text(st, 2, e->route, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, e->status);
        sqlite3_bind_blob64(st, 4, e->headers, e->headers_len, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 5, e->body, e->body_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, e->stored_at_ms);
        sqlite3_bind_int64(st, 7, e->fresh_until_ms);
        sqlite3_bind_int64(st, 8, e->stale_until_ms);
        if (e->etag != NULL)
            sqlite3_bind_text(st, 9, e->etag, -1, SQLITE_STATIC);
        if (e->last_modified != NULL)
            sqlite3_bind_text(st, 10, e->last_modified, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, (sqlite3_int64)op->w.cost);
        sqlite3_bind_int64(st, 12, e->stored_at_ms);
        sqlite3_bind_int64(st, 13,
                           row_sum(e->key, e->route, e->status, e->headers, e->headers_len, e->body,
                                   e->body_len, e->stored_at_ms, e->fresh_until_ms,
                                   e->stale_until_ms, e->etag, e->last_modified));
        return step_done(st);
    }
    case HF_WOP_DEL:
        sqlite3_bind_text(s->w_del, 1, op->w.key, -1, SQLITE_STATIC);
        return step_done(s->w_del);
    case OP_TOUCH:
        sqlite3_bind_text(s->w_touch, 1, op->w.key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->w_touch, 2, op->t);
        return step_done(s->w_touch);
    case OP_DEL_PREFIX:
        st = op->upper_len > 0 ? s->w_del_range : s->w_del_from;
        sqlite3_bind_text64(st, 1, op->w.key, op->key_len, SQLITE_STATIC, SQLITE_UTF8);
        if (op->upper_len > 0)
            sqlite3_bind_text64(st, 2, op->upper, op->upper_len, SQLITE_STATIC, SQLITE_UTF8);
        rc = step_done(st);
        op->removed = rc == SQLITE_OK ? (uint64_t)sqlite3_changes(s->wdb) : 0;
        return rc;
    case HF_WOP_KV_PUT:
        sqlite3_bind_text(s->w_kv_put, 1, op->w.key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->w_kv_put, 2, op->w.value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->w_kv_put, 3, kv_sum(op->w.key, op->w.value));
        return step_done(s->w_kv_put);
    case OP_SWEEP: {
        int64_t oldest = INT64_MIN;
        if (s->keep_ms > 0 && __builtin_sub_overflow(op->t, s->keep_ms, &oldest))
            oldest = INT64_MIN;
        sqlite3_bind_int64(s->w_expire, 1, op->t);
        sqlite3_bind_int64(s->w_expire, 2, oldest);
        rc = step_done(s->w_expire);
        if (rc != SQLITE_OK)
            return rc;
        op->expired = (uint64_t)sqlite3_changes(s->wdb);
        op->evicted = 0;
        if (s->max_bytes == 0)
            return SQLITE_OK;
        double total = 0;
        rc = sqlite3_step(s->w_total);
        if (rc == SQLITE_ROW)
            total = sqlite3_column_double(s->w_total, 0);
        sqlite3_reset(s->w_total);
        if (rc != SQLITE_ROW)
            return rc;
        if (total <= (double)s->max_bytes)
            return SQLITE_OK;
        sqlite3_bind_int64(s->w_evict, 1, (sqlite3_int64)s->max_bytes);
        rc = step_done(s->w_evict);
        if (rc == SQLITE_OK)
            op->evicted = (uint64_t)sqlite3_changes(s->wdb);
        return rc;
    }
    }
    return SQLITE_MISUSE;
}

/* One transaction over batch[0..n).  On failure the message is in werr. */
static int apply_batch(struct sql_store *s, size_t n)
{
    int rc = step_done(s->w_begin);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        rc = apply_op(s, s->batch[i]);
    if (rc == SQLITE_OK)
        rc = step_done(s->w_commit);
    if (rc != SQLITE_OK) {
        snprintf(s->werr, sizeof s->werr, "%s", sqlite3_errmsg(s->wdb));
        if (!sqlite3_get_autocommit(s->wdb))
            step_done(s->w_rollback);
    }
    return rc;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *writer_main(void *arg)
{
    struct sql_store *s = arg;
    pthread_mutex_lock(&s->q.mu);
    for (;;) {
        while (s->q.head == NULL && !s->q.stop)
            pthread_cond_wait(&s->q.work, &s->q.mu);
        if (s->q.head == NULL)
            break; /* stopping, and everything is written */
        size_t n = 0, bytes = 0;
        for (struct hf__wop *w = s->q.head; w != NULL && n < BATCH_MAX && bytes < BATCH_MAX_BYTES;
             w = w->next) {
            s->batch[n++] = wop_of(w);
            bytes += w->cost;
        }
        pthread_mutex_unlock(&s->q.mu);

        /* Busy (another process holds the lock past busy_timeout) and I/O
         * errors may pass; corruption will not. */
        int rc = SQLITE_OK;
        for (int attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
            rc = apply_batch(s, n);
            if (rc == SQLITE_OK || is_corrupt(rc))
                break;
            if (attempt + 1 < COMMIT_ATTEMPTS)
                pause_ms(50L << attempt);
        }
        if (is_corrupt(rc))
            log_corrupt(s->path, s->werr);
        else if (rc != SQLITE_OK)
            HF_LOG(HF_LOG_ERROR, "store_write_failed", HF_LS("path", s->path),
                   HF_LS("detail", s->werr), HF_LI("dropped", n));

        struct hf__wop *grave = NULL;
        pthread_mutex_lock(&s->q.mu);
        for (size_t i = 0; i < n; i++) {
            struct wop *op = wop_of(hf__wqueue_shift(&s->q));
            if (op->w.unbounded) {
                op->result = rc == SQLITE_OK ? HF_OK : HF_STORE;
                if (rc == SQLITE_OK && op->w.kind == OP_SWEEP) {
                    s->expired += op->expired;
                    s->evictions += op->evicted;
                }
                op->done = 1; /* its thread owns op again: no touching it after this */
            } else {
                op->w.next = grave;
                grave = &op->w;
            }
        }
        hf__wqueue_moved(&s->q);
        pthread_mutex_unlock(&s->q.mu);
        hf__wop_free_list(grave);
        pthread_mutex_lock(&s->q.mu);
    }
    pthread_mutex_unlock(&s->q.mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */
/* ------------------------------------------------------------------ */

/* A text column that is NULL or a C string of fewer than HF_ENTRY_FIELD_MAX
 * bytes; false for anything else. */
static int text_col(sqlite3_stmt *st, int col, const char **out)
{
    int type = sqlite3_column_type(st, col);
    *out = NULL;
    if (type == SQLITE_NULL)
        return 1;
    if (type != SQLITE_TEXT)
        return 0;
    const char *p = (const char *)sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (p == NULL || n < 0 || n >= HF_ENTRY_FIELD_MAX || strlen(p) != (size_t)n)
        return 0;
    *out = p;
    return 1;
}

/* A blob (or text) column of at most max bytes; NULL reads as empty. */
static int blob_col(sqlite3_stmt *st, int col, size_t max, const void **out, size_t *len)
{
    int type = sqlite3_column_type(st, col);
    *out = NULL;
    *len = 0;
    if (type == SQLITE_NULL)
        return 1;
    if (type != SQLITE_BLOB && type != SQLITE_TEXT)
        return 0;
    *out = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (n < 0 || (size_t)n > max)
        return 0;
    *len = (size_t)n;
    return 1;
}

/* Turn the current row into an entry, validating every field: a file is
 * input like any other.  HF_STORE_CORRUPT (with why) for a bad row. */
static hf_err row_to_entry(sqlite3_stmt *st, const char *key, struct hf_entry **out,
                           int64_t *used_at, const char **why)
{
    const char *route, *etag, *lm;
    const void *headers, *body;
    size_t headers_len, body_len;
    for (int col = 4; col <= 6; col++)
        if (sqlite3_column_type(st, col) != SQLITE_INTEGER) {
            *why = "timestamp is not an integer";
            return HF_STORE_CORRUPT;
        }
    if (sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
        sqlite3_column_type(st, 9) != SQLITE_INTEGER ||
        sqlite3_column_type(st, 10) != SQLITE_INTEGER) {
        *why = "status, used_at or checksum is not an integer";
        return HF_STORE_CORRUPT;
    }
    int64_t status = sqlite3_column_int64(st, 1);
    int64_t stored_at = sqlite3_column_int64(st, 4);
    int64_t fresh_until = sqlite3_column_int64(st, 5);
    int64_t stale_until = sqlite3_column_int64(st, 6);
    *used_at = sqlite3_column_int64(st, 9);
    if (status < 100 || status > 999) {
        *why = "status out of range";
        return HF_STORE_CORRUPT;
    }
    if (stale_until < fresh_until) {
        *why = "stale_until before fresh_until";
        return HF_STORE_CORRUPT;
    }
    if (!text_col(st, 0, &route) || !text_col(st, 7, &etag) || !text_col(st, 8, &lm)) {
        *why = "bad route, etag or last_modified";
        return HF_STORE_CORRUPT;
    }
    if (!blob_col(st, 2, HF_ENTRY_HEADERS_MAX, &headers, &headers_len) ||
        !blob_col(st, 3, HF_ENTRY_BODY_MAX, &body, &body_len)) {
        *why = "bad headers or body";
        return HF_STORE_CORRUPT;
    }
    if (row_sum(key, route, status, headers, headers_len, body, body_len, stored_at, fresh_until,
                stale_until, etag, lm) != sqlite3_column_int64(st, 10)) {
        *why = "checksum mismatch";
        return HF_STORE_CORRUPT;
    }
    hf_err err = hf_entry_create(key, route, (int)status, headers, headers_len, body, body_len,
                                 stored_at, fresh_until, stale_until, etag, lm, out);
    if (err == HF_EINVAL || err == HF_BODY_TOO_LARGE) {
        *why = "a field is too long or headers contain a NUL byte";
        return HF_STORE_CORRUPT;
    }
    return err;
}

/* The newest queued put or delete of key (a prefix delete matching it
 * included), or NULL.  Called with q.mu held. */
static const struct hf__wop *pending(const struct sql_store *s, const char *key)
{
    uint64_t hash = hf__wqueue_hash(key);
    const struct hf__wop *hit = NULL;
    for (const struct hf__wop *w = s->q.head; w != NULL; w = w->next)
        if (((w->kind == HF_WOP_PUT || w->kind == HF_WOP_DEL) && w->hash == hash &&
             strcmp(w->key, key) == 0) ||
            (w->kind == OP_DEL_PREFIX &&
             strncmp(key, w->key, ((const struct wop *)w)->key_len) == 0))
            hit = w;
    return hit;
}

/*
 * Record a read for LRU eviction, at most once per TOUCH_AFTER_MS.  A hot
 * key is read many times before its touch commits, so a touch already
 * queued for the key is enough; and touches only use the first half of the
 * queue, so they can never crowd out puts.
 */
static void maybe_touch(struct sql_store *s, const char *key, int64_t used_at, int64_t now_ms)
{
    if (now_ms <= INT64_MIN + TOUCH_AFTER_MS || used_at >= now_ms - TOUCH_AFTER_MS)
        return;
    struct wop *touch = keyed_op(OP_TOUCH, key, now_ms);
    if (touch == NULL)
        return;
    pthread_mutex_lock(&s->q.mu);
    bool queued = s->q.count >= HF_WQUEUE_MAX_OPS / 2;
    for (const struct hf__wop *w = s->q.head; w != NULL && !queued; w = w->next)
        queued = w->kind == OP_TOUCH && w->hash == touch->w.hash && strcmp(w->key, key) == 0;
    if (!queued && hf__wqueue_admits(&s->q, touch->w.cost)) {
        hf__wqueue_push(&s->q, &touch->w);
        touch = NULL;
    }
    pthread_mutex_unlock(&s->q.mu);
    if (touch != NULL)
        hf__wop_free(&touch->w);
}

static hf_err sql_get(struct hf_store *base, const char *key, int64_t now_ms,
                      enum hf_store_mode mode, struct hf_entry **out)
{
    struct sql_store *s = (struct sql_store *)base;
    hf_err err = HF_NOT_FOUND;

    int64_t used_at = 0;
    pthread_mutex_lock(&s->q.mu);
    const struct hf__wop *op = pending(s, key);
    if (op != NULL) {
        if (op->kind == HF_WOP_PUT) {
            const struct hf_entry *e = op->e;
            int64_t until = mode == HF_STORE_FRESH ? e->fresh_until_ms : e->stale_until_ms;
            if (until > now_ms) {
                *out = hf_entry_ref(op->e);
                used_at = e->stored_at_ms; /* what the put will write */
                err = HF_OK;
            }
        }
        pthread_mutex_unlock(&s->q.mu);
        if (err == HF_OK)
            maybe_touch(s, key, used_at, now_ms);
        return err;
    }
    pthread_mutex_unlock(&s->q.mu);

    const char *why = NULL;
    char detail[256];
    pthread_mutex_lock(&s->rmu);
    sqlite3_stmt *st = mode == HF_STORE_FRESH ? s->r_fresh : s->r_stale;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        err = row_to_entry(st, key, out, &used_at, &why);
    } else if (rc != SQLITE_DONE) {
        snprintf(detail, sizeof detail, "%s", sqlite3_errmsg(s->rdb));
        why = detail;
        err = is_corrupt(rc) || (rc & 0xff) == SQLITE_TOOBIG ? HF_STORE_CORRUPT : HF_STORE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->rmu);

    if (err == HF_STORE_CORRUPT) {
        /* Never served; deleted so the next read does not trip on it. */
        log_corrupt(s->path, why);
        struct wop *del = keyed_op(HF_WOP_DEL, key, 0);
        if (del != NULL)
            enqueue(s, del, false);
        return HF_NOT_FOUND;
    }
    if (err == HF_STORE) {
        HF_LOG(HF_LOG_ERROR, "store_read_failed", HF_LS("path", s->path), HF_LS("detail", why));
        return HF_STORE;
    }
    if (err == HF_OK)
        maybe_touch(s, key, used_at, now_ms);
    return err;
}

static hf_err sql_del(struct hf_store *base, const char *key)
{
    struct sql_store *s = (struct sql_store *)base;
    struct wop *op = keyed_op(HF_WOP_DEL, key, 0);
    if (op == NULL)
        return HF_ENOMEM;
    return enqueue(s, op, true);
}

static hf_err sql_put(struct hf_store *base, struct hf_entry *e)
{
    struct sql_store *s = (struct sql_store *)base;
    size_t size = hf_entry_size(e);
    if (s->max_bytes > 0 && size > s->max_bytes) {
        /* As in the memory store: refused, and no older copy stays behind. */
        sql_del(base, e->key);
        return HF_BODY_TOO_LARGE;
    }
    struct wop *op = hf__wop_new_put(sizeof *op, e);
    if (op == NULL)
        return HF_ENOMEM;
    return enqueue(s, op, true);
}

/* Queue an op its thread waits for (on that thread's stack, outside the
 * bound) and wait until the writer has applied it, after every write queued
 * before it: such an op is also a flush. */
static void run_waited(struct sql_store *s, struct wop *op)
{
    op->w.unbounded = true;
    pthread_mutex_lock(&s->q.mu);
    hf__wqueue_push(&s->q, &op->w);
    while (!op->done)
        pthread_cond_wait(&s->q.done, &s->q.mu);
    pthread_mutex_unlock(&s->q.mu);
}

static hf_err sql_sweep(struct hf_store *base, int64_t now_ms, uint64_t *removed)
{
    struct sql_store *s = (struct sql_store *)base;
    struct wop op;
    memset(&op, 0, sizeof op);
    op.w.kind = OP_SWEEP;
    op.t = now_ms;
    op.w.key = "";
    run_waited(s, &op);
    *removed = op.result == HF_OK ? op.expired + op.evicted : 0;
    return op.result;
}

/*
 * The least string above every string that starts with prefix[0..len): the
 * prefix without its trailing 0xff bytes, last byte left incremented ("a\xff"
 * gives "b").  Written into upper (len bytes of room); returns its length,
 * or 0 for a prefix of 0xff bytes only, which no string is above.
 */
static size_t prefix_upper(const char *prefix, size_t len, char *upper)
{
    while (len > 0 && (unsigned char)prefix[len - 1] == 0xff)
        len--;
    if (len == 0)
        return 0;
    memcpy(upper, prefix, len);
    upper[len - 1] = (char)((unsigned char)prefix[len - 1] + 1);
    return len;
}

/*
 * Through the writer like a sweep: puts queued before it are applied first,
 * so they are deleted too, and while it is queued pending() answers
 * "deleted" for every key it matches.  The caller's prefix and our range
 * end stay valid on this stack until the writer is done with them.
 */
static hf_err sql_del_prefix(struct hf_store *base, const char *prefix, uint64_t *removed)
{
    struct sql_store *s = (struct sql_store *)base;
    *removed = 0;
    size_t len = strlen(prefix);
    char *upper = malloc(len);
    if (upper == NULL)
        return HF_ENOMEM;
    struct wop op;
    memset(&op, 0, sizeof op);
    op.w.kind = OP_DEL_PREFIX;
    op.w.key = prefix;
    op.key_len = len;
    op.upper = upper;
    op.upper_len = prefix_upper(prefix, len, upper);
    run_waited(s, &op);
    free(upper);
    if (op.result == HF_OK)
        *removed = op.removed;
    return op.result;
}

static hf_err sql_kv_get(struct hf_store *base, const char *key, char *buf, size_t len)
{
    struct sql_store *s = (struct sql_store *)base;
    hf_err err = HF_NOT_FOUND;
    if (hf__wqueue_kv_read(&s->q, key, buf, len, &err))
        return err;

    /* The row is input like any other: a value of the wrong type, too long,
     * holding a NUL or failing its checksum is logged and read as absent;
     * the next put replaces it. */
    const char *why = NULL;
    char detail[256];
    pthread_mutex_lock(&s->rmu);
    sqlite3_stmt *st = s->r_kv;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        if (sqlite3_column_type(st, 0) != SQLITE_TEXT ||
            sqlite3_column_type(st, 1) != SQLITE_INTEGER || v == NULL || n < 0 ||
            (size_t)n >= HF_KV_VALUE_MAX || strlen(v) != (size_t)n)
            why = "bad kv value";
        else if (kv_sum(key, v) != sqlite3_column_int64(st, 1))
            why = "kv checksum mismatch";
        else
            err = hf__record_kv_copy(v, (size_t)n, buf, len);
    } else if (rc != SQLITE_DONE) {
        snprintf(detail, sizeof detail, "%s", sqlite3_errmsg(s->rdb));
        why = detail;
        err = is_corrupt(rc) ? HF_NOT_FOUND : HF_STORE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->rmu);

    if (err == HF_STORE) {
        HF_LOG(HF_LOG_ERROR, "store_read_failed", HF_LS("path", s->path), HF_LS("detail", why));
        return HF_STORE;
    }
    if (why != NULL)
        log_corrupt(s->path, why);
    return err;
}

static hf_err sql_kv_put(struct hf_store *base, const char *key, const char *value)
{
    struct sql_store *s = (struct sql_store *)base;
    struct wop *op = hf__wop_new(sizeof *op, HF_WOP_KV_PUT, key, value);
    if (op == NULL)
        return HF_ENOMEM;
    return enqueue(s, op, true);
}

static void sql_stats(struct hf_store *base, struct hf_store_stats *out)
{
    struct sql_store *s = (struct sql_store *)base;
    pthread_mutex_lock(&s->q.mu);
    out->evictions = s->evictions;
    out->expired = s->expired;
    pthread_mutex_unlock(&s->q.mu);

    /* Counted from the file, so other processes' writes show too. */
    pthread_mutex_lock(&s->rmu);
    if (sqlite3_step(s->r_stats) == SQLITE_ROW) {
        sqlite3_int64 n = sqlite3_column_int64(s->r_stats, 0);
        double bytes = sqlite3_column_double(s->r_stats, 1);
        out->entries = n > 0 ? (uint64_t)n : 0;
        out->bytes = bytes > 0 && bytes < 1.8e19 ? (uint64_t)bytes : 0;
    }
    sqlite3_reset(s->r_stats);
    pthread_mutex_unlock(&s->rmu);
}

/* Free a store whose writer thread is not running (or has been joined). */
static void destroy(struct sql_store *s)
{
    finalize_all(s);
    close_db(&s->rdb);
    close_db(&s->wdb); /* last: it checkpoints the WAL into the file */
    hf__wqueue_fini(&s->q);
    pthread_mutex_destroy(&s->rmu);
    free(s->path);
    free(s);
}

static void sql_close(struct hf_store *base)
{
    struct sql_store *s = (struct sql_store *)base;
    hf__wqueue_stop(&s->q, 0); /* the writer drains the queue whatever the time */
    pthread_join(s->writer, NULL);
    destroy(s);
}

static const struct hf_store_ops sql_ops = {
    .name = "sqlite",
    .get = sql_get,
    .put = sql_put,
    .promote = NULL, /* a durable tier is written by puts only */
    .del = sql_del,
    .del_prefix = sql_del_prefix,
    .sweep = sql_sweep,
    .stats = sql_stats,
    .kv_get = sql_kv_get,
    .kv_put = sql_kv_put,
    .close = sql_close,
};

static int init_sync(struct sql_store *s)
{
    if (hf__wqueue_init(&s->q) != 0)
        return -1;
    pthread_mutex_init(&s->rmu, NULL);
    return 0;
}

hf_err hf__store_sqlite_open(const char *path, const struct hf_store_options *opts,
                             struct hf_store **out, char *errbuf, size_t errlen)
{
    if (strlen(path) >= PATH_MAX - 64) {
        hf__store_errf(errbuf, errlen, "cannot open cache store %.100s...: path too long", path);
        return HF_STORE;
    }
    if (!sqlite3_threadsafe()) {
        hf__store_errf(errbuf, errlen, "cannot open cache store %s: SQLite lacks thread support",
                       path);
        return HF_STORE;
    }
    struct sql_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL || init_sync(s) != 0) {
        if (s != NULL)
            free(s->path);
        free(s);
        hf__store_errf(errbuf, errlen, "cannot open cache store %s: out of memory", path);
        return HF_ENOMEM;
    }
    s->base.magic = HF_STORE_MAGIC;
    s->base.ops = &sql_ops;
    s->max_bytes = opts != NULL ? opts->max_bytes : 0;
    s->keep_ms = opts != NULL ? opts->keep_ms : 0;

    hf_err err = HF_STORE;
    for (int attempt = 0;; attempt++) {
        char why[512] = "";
        struct stat seen;
        enum verdict v = open_once(s, &seen, why, sizeof why);
        if (v == V_OK)
            break;
        if (v == V_FAIL) {
            if (why[0] == '\0')
                open_failed(s->wdb, SQLITE_CANTOPEN, path, errbuf, errlen);
            else
                hf__store_errf(errbuf, errlen, "cannot open cache store %s: %s", path, why);
            goto fail;
        }
        finalize_all(s);
        close_db(&s->rdb);
        close_db(&s->wdb);
        if (attempt == 2) { /* a new file that is still bad: do not loop */
            hf__store_errf(errbuf, errlen, "cache store %s is unusable: %s", path, why);
            err = HF_STORE_CORRUPT;
            goto fail;
        }
        err = set_aside(path, &seen, why, errbuf, errlen);
        if (err != HF_OK)
            goto fail;
        err = HF_STORE;
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        hf__store_errf(errbuf, errlen, "cannot open cache store %s: cannot start writer thread",
                       path);
        goto fail;
    }
    *out = &s->base;
    return HF_OK;
fail:
    destroy(s);
    return err;
}

hf_err hf__mkdir_parents(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return HF_EINVAL;
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return HF_STORE;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0) {
            struct stat st;
            if (errno != EEXIST)
                return HF_STORE;
            if (stat(buf, &st) != 0)
                return HF_STORE;
            if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                return HF_STORE;
            }
        }
        *p = '/';
    }
    return HF_OK;
}
