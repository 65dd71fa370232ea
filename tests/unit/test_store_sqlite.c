/*
 * The SQLite store: the shared store contract (store_contract.h), then
 * what only a file brings: persistence, reading queued writes, bad files
 * (garbage, foreign, newer schema, torn, bad rows), unusable paths, prefix
 * deletes of queued puts, a full write queue, threads, two handles on one
 * file, and the tiered store with memory in front.  Then the key/value
 * table in all three stores (memory, SQLite, tiered): bounds, persistence,
 * read-your-writes, a second handle, files from before the table existed,
 * damaged rows.  Every test works in its own temporary directory.
 */
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cache/store_impl.h"
#include "obs/log.h"

struct fixture {
    char dir[PATH_MAX / 2];
    int n; /* stores opened so far: each gets a new file */
    char path[PATH_MAX];
};

static const char *new_path(struct fixture *f, const char *name)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    return f->path;
}

static hf_err contract_open(void **state, const struct hf_store_options *o, struct hf_store **out)
{
    struct fixture *f = *state;
    char name[32], err[512];
    snprintf(name, sizeof name, "contract-%d.db", f->n++);
    hf_err e = hf_store_open(new_path(f, name), o, out, err, sizeof err);
    if (e != HF_OK)
        print_error("open: %s\n", err);
    return e;
}

/* A sweep runs after every write queued before it: a flush. */
static void contract_flush(struct hf_store *s)
{
    assert_int_equal(hf_store_sweep(s, INT64_MIN, NULL), HF_OK);
}

#include "store_contract.h"

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    const char *tmp = getenv("HF_TEST_TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/hf-sqlite-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(p, 0700); /* a test may have taken permissions away */
    return remove(p);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hf_log_configure(HF_LOG_INFO, HF_LOG_JSON, 2);
    int rc = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* --- helpers --- */

static struct hf_store *open_at(const char *path, size_t max_bytes)
{
    struct hf_store_options o = {max_bytes, 0};
    struct hf_store *s = NULL;
    char err[512];
    hf_err e = hf_store_open(path, &o, &s, err, sizeof err);
    if (e != HF_OK)
        fail_msg("open %s: %s", path, err);
    return s;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static uint64_t entries(struct hf_store *s)
{
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    return st.entries;
}

/* How many files match path.corrupt-* (not counting -wal and -shm). */
static size_t asides(const char *path)
{
    char pat[PATH_MAX + 16];
    snprintf(pat, sizeof pat, "%s.corrupt-*", path);
    glob_t g;
    size_t n = 0;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            size_t len = strlen(g.gl_pathv[i]);
            if (len < 4 || (strcmp(g.gl_pathv[i] + len - 4, "-wal") != 0 &&
                            strcmp(g.gl_pathv[i] + len - 4, "-shm") != 0))
                n++;
        }
        globfree(&g);
    }
    return n;
}

/* Logs at WARN and above go to dir/log.txt until logs_text() reads them. */
static void logs_capture(struct fixture *f)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/log.txt", f->dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    assert_true(fd >= 0);
    hf_log_configure(HF_LOG_WARN, HF_LOG_JSON, fd);
}

static char *logs_text(struct fixture *f)
{
    static char buf[16384];
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/log.txt", f->dir);
    hf_log_configure(HF_LOG_INFO, HF_LOG_JSON, 2);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* --- tests --- */

static void test_persistence(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "persist.db");
    struct hf_store *s = open_at(path, 0);
    put(s, mk("GET r /1", 10, 20, FOREVER, "one"));
    put(s, mk("GET r /2", 10, 20, 30, "two"));
    put(s, mk("GET r /3", 10, 20, 30, "three"));
    assert_int_equal(hf_store_delete(s, "GET r /2"), HF_OK);
    hf_store_close(&s); /* flushes */

    char url[PATH_MAX + 8];
    snprintf(url, sizeof url, "sqlite:%s", path);
    s = NULL;
    assert_int_equal(hf_store_open(url, NULL, &s, NULL, 0), HF_OK);
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_stale(s, "GET r /1", 1000000, &e), HF_OK);
    assert_string_equal(e->body, "one");
    hf_entry_release(&e);
    assert_false(has_stale(s, "GET r /2", 11));
    assert_true(has_fresh(s, "GET r /3", 11));
    assert_int_equal(entries(s), 2);
    hf_store_close(&s);

    /* WAL mode, our application_id and schema version, as documented */
    sqlite3 *db = raw_open(path);
    assert_int_equal(raw_int(db, "PRAGMA application_id"), 0x68667374);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM entries"), 2);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/*
 * Another connection holds the write lock, so nothing the store queues can
 * commit; reads must still see every queued put and delete.
 */
static void test_read_your_writes(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "ryw.db");
    struct hf_store *s = open_at(path, 0);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "BEGIN IMMEDIATE");

    put(s, mk("k", 0, 100, 200, "v1"));
    assert_true(has_fresh(s, "k", 1));
    put(s, mk("k", 1, 100, 200, "v2"));
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_fresh(s, "k", 1, &e), HF_OK);
    assert_string_equal(e->body, "v2");
    hf_entry_release(&e);
    assert_false(has_fresh(s, "k", 100)); /* windows apply to queued copies too */
    assert_true(has_stale(s, "k", 100));
    put(s, mk("gone", 0, 100, 200, "x"));
    assert_int_equal(hf_store_delete(s, "gone"), HF_OK);
    assert_false(has_stale(s, "gone", 1));
    assert_int_equal(raw_int(db, "SELECT count(*) FROM entries"), 0);

    raw_exec(db, "ROLLBACK");
    contract_flush(s);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM entries"), 1);
    assert_int_equal(entries(s), 1);
    sqlite3_close(db);
    hf_store_close(&s);
}

struct del_prefix_arg {
    struct hf_store *s;
    const char *prefix;
    uint64_t removed;
    hf_err err;
};

static void *del_prefix_thread(void *p)
{
    struct del_prefix_arg *a = p;
    a->err = hf_store_delete_prefix(a->s, a->prefix, &a->removed);
    return NULL;
}

/*
 * Puts still queued when a prefix delete is called are deleted with it:
 * another connection holds the write lock, so the puts and then the delete
 * wait in the queue.  While the delete waits, reads already see its keys as
 * gone, and a put queued after it is read (and kept).  Then the file, also
 * after a reopen.
 */
static void test_delete_prefix_queued(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "purge.db");
    struct hf_store *s = open_at(path, 0);
    put(s, mk("GET r /a", 0, 100, 200, "committed"));
    contract_flush(s);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "BEGIN IMMEDIATE");
    put(s, mk("GET r /a", 1, 100, 200, "queued replacement"));
    put(s, mk("GET r /a\nx=1", 1, 100, 200, "queued"));
    put(s, mk("GET r /ab", 1, 100, 200, "queued"));
    put(s, mk("GET r /b", 1, 100, 200, "queued, not matching"));

    struct del_prefix_arg a = {s, "GET r /a", 99, HF_STORE};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, del_prefix_thread, &a), 0);
    /* The delete is queued once the queued put of /a no longer reads. */
    int waits = 0;
    while (has_stale(s, "GET r /a", 1)) {
        assert_true(++waits < 5000);
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    assert_false(has_stale(s, "GET r /a\nx=1", 1));
    assert_false(has_stale(s, "GET r /ab", 1));
    assert_true(has_stale(s, "GET r /b", 1));
    put(s, mk("GET r /ab", 2, 100, 200, "queued after the delete"));
    assert_true(has_stale(s, "GET r /ab", 2));
    assert_int_equal(raw_int(db, "SELECT count(*) FROM entries"), 1);

    raw_exec(db, "ROLLBACK");
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.err, HF_OK);
    assert_int_equal(a.removed, 3); /* one row per key, committed or queued */
    assert_false(has_stale(s, "GET r /a", 1));
    assert_false(has_stale(s, "GET r /a\nx=1", 1));
    hf_store_close(&s);

    s = open_at(path, 0);
    assert_false(has_stale(s, "GET r /a", 1));
    assert_false(has_stale(s, "GET r /a\nx=1", 1));
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_stale(s, "GET r /ab", 2, &e), HF_OK);
    assert_string_equal(e->body, "queued after the delete");
    hf_entry_release(&e);
    assert_true(has_stale(s, "GET r /b", 1));
    assert_int_equal(entries(s), 2);
    hf_store_close(&s);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM entries WHERE key LIKE 'GET r /a%'"), 1);
    sqlite3_close(db);
}

/* Another handle on the file (another process) sees a prefix delete once
 * it returns: the delete commits before returning. */
static void test_delete_prefix_second_handle(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "purge2.db");
    struct hf_store *a = open_at(path, 0);
    struct hf_store *b = open_at(path, 0);
    put(a, mk("GET r /x/1", 0, 100, 200, "1"));
    put(a, mk("GET r /x/2", 0, 100, 200, "2"));
    put(a, mk("GET r /y", 0, 100, 200, "3"));
    contract_flush(a);
    assert_true(has_stale(b, "GET r /x/1", 1));
    uint64_t removed = 0;
    assert_int_equal(hf_store_delete_prefix(b, "GET r /x/", &removed), HF_OK);
    assert_int_equal(removed, 2);
    assert_false(has_stale(a, "GET r /x/1", 1));
    assert_false(has_stale(a, "GET r /x/2", 1));
    assert_true(has_stale(a, "GET r /y", 1));
    assert_int_equal(entries(a), 1);
    hf_store_close(&a);
    hf_store_close(&b);
}

static void test_queue_full(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "full.db");
    struct hf_store *s = open_at(path, 0);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "BEGIN IMMEDIATE");
    logs_capture(f);
    char key[32];
    int stored = 0;
    for (int i = 0; i < 4100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        struct hf_entry *e = mk(key, 0, 100, 200, "x");
        if (hf_store_put(s, e) == HF_OK)
            stored++;
        else
            assert_true(i >= 4096); /* the bound, after a short wait */
        hf_entry_release(&e);
    }
    assert_int_equal(stored, 4096);
    assert_true(has_fresh(s, "k4095", 1));
    assert_false(has_fresh(s, "k4096", 1));
    assert_non_null(strstr(logs_text(f), "\"store_queue_full\""));
    raw_exec(db, "ROLLBACK");
    sqlite3_close(db);
    hf_store_close(&s);
    s = open_at(path, 0);
    assert_int_equal(entries(s), 4096);
    hf_store_close(&s);
}

static void test_garbage_file(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "garbage.db");
    static unsigned char junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (unsigned char)(x >> 16);
    }
    write_file(path, junk, sizeof junk);
    logs_capture(f);
    struct hf_store *s = open_at(path, 0);
    const char *log = logs_text(f);
    assert_non_null(strstr(log, "\"store_corrupt\""));
    assert_non_null(strstr(log, path));
    assert_int_equal(asides(path), 1);
    assert_int_equal(entries(s), 0);
    put(s, mk("k", 0, 100, 200, "works"));
    assert_true(has_fresh(s, "k", 1));
    hf_store_close(&s);

    /* the garbage is kept, byte for byte, beside the new store */
    char pat[PATH_MAX + 16];
    snprintf(pat, sizeof pat, "%s.corrupt-*", path);
    glob_t g;
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    assert_int_equal(file_size(g.gl_pathv[0]), 4096);
    globfree(&g);
    s = open_at(path, 0);
    assert_true(has_fresh(s, "k", 1));
    assert_int_equal(asides(path), 1);
    hf_store_close(&s);
}

static void test_foreign_db(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "foreign.db");
    sqlite3 *db = raw_open(path);
    raw_exec(db, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
                 "INSERT INTO users(name) VALUES('ada')");
    sqlite3_close(db);
    logs_capture(f);
    struct hf_store *s = open_at(path, 0);
    assert_non_null(strstr(logs_text(f), "not a holdfast cache store"));
    assert_int_equal(asides(path), 1);
    assert_int_equal(entries(s), 0);
    hf_store_close(&s);

    /* another application's id, even with no tables */
    path = new_path(f, "foreign-id.db");
    db = raw_open(path);
    raw_exec(db, "PRAGMA application_id = 42; CREATE TABLE entries(key TEXT)");
    sqlite3_close(db);
    s = open_at(path, 0);
    assert_int_equal(asides(path), 1);
    hf_store_close(&s);

    /* an empty SQLite file (as `sqlite3 x.db` leaves it) is simply used */
    path = new_path(f, "empty.db");
    db = raw_open(path);
    raw_exec(db, "PRAGMA user_version = 0");
    sqlite3_close(db);
    s = open_at(path, 0);
    assert_int_equal(asides(path), 0);
    hf_store_close(&s);
}

static void test_newer_schema(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "newer.db");
    struct hf_store *s = open_at(path, 0);
    put(s, mk("k", 0, 100, 200, "x"));
    hf_store_close(&s);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "PRAGMA user_version = 2");
    sqlite3_close(db);
    logs_capture(f);
    s = open_at(path, 0);
    assert_non_null(strstr(logs_text(f), "unknown schema version 2"));
    assert_int_equal(asides(path), 1);
    assert_false(has_stale(s, "k", 1));
    hf_store_close(&s);

    /* our id and version but not our table: also not ours */
    path = new_path(f, "notable.db");
    db = raw_open(path);
    raw_exec(db, "PRAGMA application_id = 1751544692; PRAGMA user_version = 1;"
                 "CREATE TABLE entries(key TEXT PRIMARY KEY, body BLOB)");
    sqlite3_close(db);
    s = open_at(path, 0);
    assert_int_equal(asides(path), 1);
    hf_store_close(&s);
}

static void test_torn_file(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "torn.db");
    struct hf_store *s = open_at(path, 0);
    char key[32];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof key, "GET r /%d", i);
        put(s, mk_sized(key, i, 1000, 2000, 1500, (char)('a' + i % 26)));
    }
    hf_store_close(&s);
    off_t size = file_size(path);
    assert_true(size > 400 * 1500);

    /* cut in the middle: pages the header promises are missing */
    assert_int_equal(truncate(path, size / 2), 0);
    logs_capture(f);
    s = open_at(path, 0);
    assert_non_null(strstr(logs_text(f), "\"store_corrupt\""));
    assert_int_equal(asides(path), 1);
    assert_int_equal(entries(s), 0);
    hf_store_close(&s);

    /* cut inside the 100-byte header */
    path = new_path(f, "torn-header.db");
    s = open_at(path, 0);
    put(s, mk("k", 0, 1, 2, "x"));
    hf_store_close(&s);
    assert_int_equal(truncate(path, 50), 0);
    s = open_at(path, 0);
    assert_int_equal(asides(path), 1);
    assert_int_equal(entries(s), 0);
    hf_store_close(&s);
}

/* Rows damaged behind the store's back are misses, logged, and deleted. */
static void test_bad_rows(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "rows.db");
    struct hf_store *s = open_at(path, 0);
    const char *keys[] = {"status", "nul", "windows", "type", "body", "fresh", "good"};
    for (size_t i = 0; i < 7; i++)
        put(s, mk(keys[i], 0, 100, 200, "x"));
    hf_store_close(&s);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "UPDATE entries SET status = 7 WHERE key = 'status';"
                 "UPDATE entries SET headers = x'410042' WHERE key = 'nul';"
                 "UPDATE entries SET fresh_until = 300 WHERE key = 'windows';"
                 "UPDATE entries SET stored_at = 'yesterday' WHERE key = 'type';"
                 /* plausible values, caught by the checksum only */
                 "UPDATE entries SET body = x'79' WHERE key = 'body';"
                 "UPDATE entries SET fresh_until = 150 WHERE key = 'fresh'");
    sqlite3_close(db);

    s = open_at(path, 0);
    logs_capture(f);
    for (size_t i = 0; i < 6; i++)
        if (has_stale(s, keys[i], 1))
            fail_msg("bad row \"%s\" served", keys[i]);
    assert_true(has_stale(s, "good", 1));
    const char *log = logs_text(f);
    assert_non_null(strstr(log, "status out of range"));
    assert_non_null(strstr(log, "checksum mismatch"));
    assert_null(strstr(log, "\"key\"")); /* keys can hold secrets: never logged */
    contract_flush(s);
    assert_int_equal(entries(s), 1);
    hf_store_close(&s);
}

static void test_unusable_paths(void **state)
{
    struct fixture *f = *state;
    char err[512];
    struct hf_store *s = NULL;
    const char *path = new_path(f, "missing/sub/x.db");
    assert_int_equal(hf_store_open(path, NULL, &s, err, sizeof err), HF_STORE);
    assert_null(s);
    assert_non_null(strstr(err, "cannot open cache store "));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "unable to open database file"));
    assert_null(strchr(err, '\n'));

    /* the CLI creates its default store's directories */
    assert_int_equal(hf__mkdir_parents(path), HF_OK);
    assert_int_equal(hf__mkdir_parents(path), HF_OK); /* twice is fine */
    struct stat st;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/missing/sub", f->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(hf_store_open(path, NULL, &s, err, sizeof err), HF_OK);
    hf_store_close(&s);

    /* a path through a regular file */
    path = new_path(f, "plain");
    write_file(path, "x", 1);
    path = new_path(f, "plain/x.db");
    assert_int_equal(hf_store_open(path, NULL, &s, err, sizeof err), HF_STORE);
    assert_non_null(strstr(err, path));
    assert_int_equal(hf__mkdir_parents(path), HF_STORE);

    /* a directory where the file should be */
    path = new_path(f, "adir");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(hf_store_open(path, NULL, &s, err, sizeof err), HF_STORE);
    assert_non_null(strstr(err, path));
    assert_int_equal(hf__mkdir_parents(""), HF_EINVAL);
}

struct writer_arg {
    struct hf_store *s;
    int id;
};

static void *writer(void *p)
{
    struct writer_arg *w = p;
    char key[32], body[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "GET r /%d/%d", w->id, i);
        snprintf(body, sizeof body, "%d:%d", w->id, i);
        struct hf_entry *e = NULL;
        if (hf_entry_create(key, "r", 200, NULL, 0, body, strlen(body), i, 1000, 2000, NULL, NULL,
                            &e) != HF_OK ||
            hf_store_put(w->s, e) != HF_OK)
            abort();
        hf_entry_release(&e);
        if (hf_store_get_fresh(w->s, key, i, &e) != HF_OK || strcmp(e->body, body) != 0)
            abort();
        hf_entry_release(&e);
        if (i % 50 == 49)
            hf_store_delete(w->s, key);
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "threads.db");
    struct hf_store *s = open_at(path, 0);
    pthread_t t[4];
    struct writer_arg w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer_arg){s, i};
        assert_int_equal(pthread_create(&t[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    hf_store_close(&s);
    s = open_at(path, 0);
    assert_int_equal(entries(s), 4 * (500 - 10));
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_fresh(s, "GET r /3/498", 0, &e), HF_OK);
    assert_string_equal(e->body, "3:498");
    hf_entry_release(&e);
    assert_false(has_stale(s, "GET r /3/499", 0));
    hf_store_close(&s);
}

/* Two handles on one file: what two processes sharing it see. */
static void test_two_handles(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "shared.db");
    struct hf_store *a = open_at(path, 0);
    struct hf_store *b = open_at(path, 0);
    put(a, mk("k", 0, 100, 200, "from a"));
    contract_flush(a);
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_fresh(b, "k", 1, &e), HF_OK);
    assert_string_equal(e->body, "from a");
    hf_entry_release(&e);
    put(b, mk("k", 5, 100, 200, "from b"));
    contract_flush(b);
    assert_int_equal(hf_store_get_fresh(a, "k", 6, &e), HF_OK);
    assert_string_equal(e->body, "from b");
    hf_entry_release(&e);
    assert_int_equal(hf_store_delete(b, "k"), HF_OK);
    contract_flush(b);
    assert_false(has_stale(a, "k", 6));
    assert_int_equal(entries(a), 0);
    /* a store opened while the other writes */
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        put(a, mk(key, 0, 100, 200, "x"));
    }
    struct hf_store *c = open_at(path, 0);
    hf_store_close(&a);
    assert_int_equal(entries(c), 100);
    assert_int_equal(entries(b), 100);
    hf_store_close(&b);
    hf_store_close(&c);
}

/* Size eviction keeps exactly the most recently used copies that fit. */
static void test_max_size_sweep(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "max.db");
    struct hf_entry *probe = mk_sized("GET r /00", 0, 0, 0, 1000, 'x');
    size_t one = hf_entry_size(probe);
    hf_entry_release(&probe);
    struct hf_store *s = open_at(path, 10 * one);
    char key[32];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "GET r /%02d", i);
        put(s, mk_sized(key, i * 1000, 100000, FOREVER, 1000, 'x'));
    }
    uint64_t removed = 0;
    assert_int_equal(hf_store_sweep(s, 50000, &removed), HF_OK);
    assert_int_equal(removed, 20);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "GET r /%02d", i);
        if (has_stale(s, key, 50000) != (i >= 20))
            fail_msg("%s %s", key, i >= 20 ? "evicted" : "kept");
    }
    struct hf_store_stats st;
    hf_store_stats(s, &st);
    assert_int_equal(st.entries, 10);
    assert_int_equal(st.bytes, 10 * one);
    assert_int_equal(st.evictions, 20);
    hf_store_close(&s);
}

static void test_tiered_memory_sqlite(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "tiered.db");
    struct hf_store *front = NULL, *back = NULL, *t = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    back = open_at(path, 0);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    put(t, mk("k", 0, 100, 200, "persisted"));
    hf_store_close(&t);

    /* a new process: empty memory, the file remembers */
    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    back = open_at(path, 0);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    assert_int_equal(entries(front), 0);
    struct hf_entry *e = NULL;
    assert_int_equal(hf_store_get_fresh(t, "k", 1, &e), HF_OK);
    assert_string_equal(e->body, "persisted");
    hf_entry_release(&e);
    assert_int_equal(entries(front), 1); /* promoted */
    assert_true(has_fresh(front, "k", 1));
    assert_int_equal(entries(t), 1); /* back's view */
    assert_int_equal(hf_store_delete(t, "k"), HF_OK);
    assert_false(has_stale(t, "k", 1));
    assert_int_equal(entries(front), 0);
    hf_store_close(&t);
}

/* A prefix delete through memory in front of a file reaches both tiers,
 * reports the file's count, and the file remembers it. */
static void test_tiered_delete_prefix(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "tiered-purge.db");
    struct hf_store *front = NULL, *back = NULL, *t = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    back = open_at(path, 0);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    put(t, mk("GET r /a", 0, 100, 200, "both tiers"));
    put(t, mk("GET r /a\nx=1", 0, 100, 200, "both tiers"));
    put(back, mk("GET r /ab", 0, 100, 200, "file only"));
    put(front, mk("GET r /ac", 0, 100, 200, "memory only"));
    put(t, mk("GET r /b", 0, 100, 200, "kept"));
    uint64_t removed = 0;
    assert_int_equal(hf_store_delete_prefix(t, "GET r /a", &removed), HF_OK);
    assert_int_equal(removed, 3); /* the file's */
    static const char *const gone[] = {"GET r /a", "GET r /a\nx=1", "GET r /ab", "GET r /ac"};
    for (size_t i = 0; i < 4; i++) {
        assert_false(has_stale(t, gone[i], 1));
        assert_false(has_stale(front, gone[i], 1));
        assert_false(has_stale(back, gone[i], 1));
    }
    assert_true(has_fresh(front, "GET r /b", 1));
    assert_int_equal(entries(front), 1);
    assert_int_equal(hf_store_delete_prefix(t, "", &removed), HF_EINVAL);
    hf_store_close(&t);

    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    back = open_at(path, 0);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    assert_false(has_stale(t, "GET r /a", 1));
    assert_false(has_stale(t, "GET r /ab", 1));
    assert_true(has_fresh(t, "GET r /b", 1));
    assert_int_equal(entries(t), 1);
    hf_store_close(&t);
}

/* --- the key/value table --- */

/* What every store must do with keys and values, whatever it is. */
static void kv_contract(struct hf_store *s)
{
    char buf[64], *big = malloc(HF_KV_VALUE_MAX + 1), *got = malloc(HF_KV_VALUE_MAX);
    assert_true(big != NULL && got != NULL);
    kv_expect(s, "quota:news", NULL);
    assert_int_equal(hf_store_kv_put(s, "quota:news", "1710460800000 1"), HF_OK);
    kv_expect(s, "quota:news", "1710460800000 1");
    assert_int_equal(hf_store_kv_put(s, "quota:news", "1710460800000 2"), HF_OK);
    kv_expect(s, "quota:news", "1710460800000 2");
    assert_int_equal(hf_store_kv_put(s, "quota:weather", ""), HF_OK);
    kv_expect(s, "quota:weather", "");
    kv_expect(s, "quota:news", "1710460800000 2");

    /* a buffer too small is an error, never a truncated value */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(hf_store_kv_get(s, "quota:news", buf, 15), HF_EINVAL);
    assert_string_equal(buf, "");
    assert_int_equal(hf_store_kv_get(s, "quota:news", buf, 16), HF_OK);
    assert_int_equal(hf_store_kv_get(s, "quota:news", buf, 0), HF_EINVAL);
    assert_int_equal(hf_store_kv_get(s, "quota:news", NULL, 16), HF_EINVAL);

    /* bounds on keys and values */
    memset(big, 'k', HF_KV_VALUE_MAX + 1);
    big[HF_KV_KEY_MAX - 1] = '\0';
    assert_int_equal(hf_store_kv_put(s, big, "longest key"), HF_OK);
    kv_expect(s, big, "longest key");
    big[HF_KV_KEY_MAX - 1] = 'k';
    big[HF_KV_KEY_MAX] = '\0';
    assert_int_equal(hf_store_kv_put(s, big, "v"), HF_EINVAL);
    assert_int_equal(hf_store_kv_get(s, big, buf, sizeof buf), HF_EINVAL);
    assert_int_equal(hf_store_kv_put(s, "", "v"), HF_EINVAL);
    assert_int_equal(hf_store_kv_get(s, "", buf, sizeof buf), HF_EINVAL);
    assert_int_equal(hf_store_kv_put(s, NULL, "v"), HF_EINVAL);
    assert_int_equal(hf_store_kv_put(s, "k", NULL), HF_EINVAL);
    assert_int_equal(hf_store_kv_put(NULL, "k", "v"), HF_EINVAL);
    assert_int_equal(hf_store_kv_get(NULL, "k", buf, sizeof buf), HF_EINVAL);
    memset(big, 'v', HF_KV_VALUE_MAX + 1);
    big[HF_KV_VALUE_MAX - 1] = '\0';
    assert_int_equal(hf_store_kv_put(s, "big", big), HF_OK);
    assert_int_equal(hf_store_kv_get(s, "big", got, HF_KV_VALUE_MAX), HF_OK);
    assert_string_equal(got, big);
    big[HF_KV_VALUE_MAX - 1] = 'v';
    big[HF_KV_VALUE_MAX] = '\0';
    assert_int_equal(hf_store_kv_put(s, "big", big), HF_EINVAL);
    free(big);
    free(got);

    /* the kv table is no cache: not in stats, not swept, not evicted */
    put(s, mk("GET news /a", 0, 10, 20, "x"));
    uint64_t removed = 0;
    assert_int_equal(hf_store_sweep(s, 1000, &removed), HF_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(entries(s), 0);
    kv_expect(s, "quota:news", "1710460800000 2");
    /* and entry keys and kv keys do not mix */
    put(s, mk("quota:news", 0, 10, FOREVER, "an entry"));
    kv_expect(s, "quota:news", "1710460800000 2");
    assert_int_equal(hf_store_delete(s, "quota:news"), HF_OK);
    kv_expect(s, "quota:news", "1710460800000 2");
    assert_int_equal(hf_store_kv_put(s, "GET news /b", "kv"), HF_OK);
    assert_false(has_stale(s, "GET news /b", 0));
}

static void test_kv_memory(void **state)
{
    (void)state;
    struct hf_store *s = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &s, NULL, 0), HF_OK);
    kv_contract(s);
    hf_store_close(&s);

    /* bounded in keys: a full table refuses new keys, updates still work */
    assert_int_equal(hf_store_open("memory:", NULL, &s, NULL, 0), HF_OK);
    char key[32];
    for (int i = 0; i < HF_KV_MEMORY_KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(hf_store_kv_put(s, key, "v"), HF_OK);
    }
    assert_int_equal(hf_store_kv_put(s, "one more", "v"), HF_STORE);
    kv_expect(s, "one more", NULL);
    assert_int_equal(hf_store_kv_put(s, "k17", "w"), HF_OK);
    kv_expect(s, "k17", "w");
    hf_store_close(&s);
}

static void test_kv_sqlite(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "kv.db");
    struct hf_store *s = open_at(path, 0);
    kv_contract(s);
    hf_store_close(&s);

    /* it survives a restart */
    s = open_at(path, 0);
    kv_expect(s, "quota:news", "1710460800000 2");
    kv_expect(s, "quota:weather", "");
    hf_store_close(&s);

    /* read-your-writes while another process holds the write lock */
    s = open_at(path, 0);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "BEGIN IMMEDIATE");
    assert_int_equal(hf_store_kv_put(s, "quota:news", "1710460800000 3"), HF_OK);
    assert_int_equal(hf_store_kv_put(s, "quota:news", "1710460800000 4"), HF_OK);
    kv_expect(s, "quota:news", "1710460800000 4");
    assert_int_equal(hf_store_kv_put(s, "new", "queued"), HF_OK);
    kv_expect(s, "new", "queued");
    assert_int_equal(raw_int(db, "SELECT count(*) FROM kv WHERE key = 'new'"), 0);
    raw_exec(db, "ROLLBACK");
    contract_flush(s);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM kv WHERE key = 'new'"), 1);
    sqlite3_close(db);
    hf_store_close(&s);

    /* the table as documented, readable with sqlite3 */
    db = raw_open(path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE key = 'quota:news'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "1710460800000 4");
    sqlite3_finalize(st);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
    sqlite3_close(db);
}

/* A second handle on the file (another process) sees the value once the
 * first has closed; and while both are open, once the writer flushed. */
static void test_kv_second_handle(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "kv-shared.db");
    struct hf_store *a = open_at(path, 0);
    struct hf_store *b = open_at(path, 0);
    assert_int_equal(hf_store_kv_put(a, "quota:news", "0 1"), HF_OK);
    hf_store_close(&a);
    kv_expect(b, "quota:news", "0 1");
    assert_int_equal(hf_store_kv_put(b, "quota:news", "0 2"), HF_OK);
    a = open_at(path, 0);
    contract_flush(b);
    kv_expect(a, "quota:news", "0 2");
    hf_store_close(&a);
    hf_store_close(&b);
}

/* A file written before the kv table existed: the table is added, nothing
 * else changes, nothing is set aside. */
static void test_kv_older_file(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "old.db");
    struct hf_store *s = open_at(path, 0);
    put(s, mk("GET r /1", 10, 20, FOREVER, "kept"));
    hf_store_close(&s);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "DROP TABLE kv");
    sqlite3_close(db);

    s = open_at(path, 0);
    assert_int_equal(asides(path), 0);
    assert_true(has_fresh(s, "GET r /1", 11));
    kv_expect(s, "quota:news", NULL);
    assert_int_equal(hf_store_kv_put(s, "quota:news", "0 7"), HF_OK);
    hf_store_close(&s);
    s = open_at(path, 0);
    kv_expect(s, "quota:news", "0 7");
    assert_int_equal(entries(s), 1);
    hf_store_close(&s);

    /* two handles on an older file: the first adds the table, the second
     * finds it there */
    db = raw_open(path);
    raw_exec(db, "DROP TABLE kv");
    sqlite3_close(db);
    struct hf_store *a = open_at(path, 0);
    struct hf_store *b = open_at(path, 0);
    assert_int_equal(hf_store_kv_put(b, "x", "y"), HF_OK);
    contract_flush(b);
    kv_expect(a, "x", "y");
    hf_store_close(&a);
    hf_store_close(&b);
}

/* kv rows damaged behind the store's back read as absent, logged; the
 * next put replaces them. */
static void test_kv_bad_rows(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "kv-rows.db");
    struct hf_store *s = open_at(path, 0);
    assert_int_equal(hf_store_kv_put(s, "edited", "0 5"), HF_OK);
    assert_int_equal(hf_store_kv_put(s, "typed", "0 5"), HF_OK);
    assert_int_equal(hf_store_kv_put(s, "nul", "0 5"), HF_OK);
    assert_int_equal(hf_store_kv_put(s, "good", "0 5"), HF_OK);
    hf_store_close(&s);
    sqlite3 *db = raw_open(path);
    raw_exec(db, "UPDATE kv SET value = '0 0' WHERE key = 'edited';"
                 "UPDATE kv SET value = 5 WHERE key = 'typed';"
                 "UPDATE kv SET value = CAST(x'3000' AS TEXT) || 'x' WHERE key = 'nul'");
    sqlite3_close(db);

    s = open_at(path, 0);
    logs_capture(f);
    kv_expect(s, "edited", NULL);
    kv_expect(s, "typed", NULL);
    kv_expect(s, "nul", NULL);
    kv_expect(s, "good", "0 5");
    const char *log = logs_text(f);
    assert_non_null(strstr(log, "kv checksum mismatch"));
    assert_non_null(strstr(log, "bad kv value"));
    assert_int_equal(hf_store_kv_put(s, "edited", "0 6"), HF_OK);
    contract_flush(s);
    kv_expect(s, "edited", "0 6");
    hf_store_close(&s);
    s = open_at(path, 0);
    kv_expect(s, "edited", "0 6");
    hf_store_close(&s);
}

static void test_kv_tiered(void **state)
{
    struct fixture *f = *state;
    const char *path = new_path(f, "kv-tiered.db");
    struct hf_store *front = NULL, *back = NULL, *t = NULL;
    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    back = open_at(path, 0);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    kv_contract(t);
    assert_int_equal(hf_store_kv_put(t, "quota:news", "5 5"), HF_OK);
    kv_expect(front, "quota:news", "5 5");
    kv_expect(back, "quota:news", "5 5");
    hf_store_close(&t);

    /* a restart: memory is empty, the file answers, nothing is copied */
    assert_int_equal(hf_store_open("memory:", NULL, &front, NULL, 0), HF_OK);
    back = open_at(path, 0);
    assert_int_equal(hf__store_tiered(front, back, &t), HF_OK);
    kv_expect(t, "quota:news", "5 5");
    kv_expect(front, "quota:news", NULL);

    /* another process's write to a key this one has not written shows */
    struct hf_store *other = open_at(path, 0);
    assert_int_equal(hf_store_kv_put(other, "quota:news", "5 6"), HF_OK);
    hf_store_close(&other);
    kv_expect(t, "quota:news", "5 6");
    /* this process's own write is what it reads back */
    assert_int_equal(hf_store_kv_put(t, "quota:news", "5 7"), HF_OK);
    kv_expect(t, "quota:news", "5 7");
    hf_store_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_CONTRACT_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_your_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_prefix_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_prefix_second_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_size_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiered_memory_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiered_delete_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_second_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_older_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_tiered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
