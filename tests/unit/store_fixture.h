/*
 * What the shared tiers' tests (test_store_memcached.c, test_store_redis.c)
 * share: their server as a child process that dies with the test (killed
 * at exit by the test, and by the kernel if the test dies:
 * PR_SET_PDEATHSIG), a loopback port for it, each test's logs captured in
 * log_path (set it in the group setup), and stores opened by URL.  Call
 * from the main thread.
 */
#ifndef HF_TESTS_STORE_FIXTURE_H
#define HF_TESTS_STORE_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <holdfast/store.h>

#include "cache/store_impl.h"
#include "core/clock.h"
#include "obs/log.h"

static inline void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * A loopback port nobody listens on, and that no other process will be
 * handed for about a minute: the port is bound, listened on, connected to
 * and the accepted side closed first, so it sits in TIME_WAIT.  The kernel
 * then gives it to no bind(0) and no connect() of anyone else (both skip a
 * port with a TIME_WAIT socket), yet a server binds it at once: memcached
 * and redis-server set SO_REUSEADDR, which a TIME_WAIT socket does not
 * stop.  A plain bind(0)-then-close would leave the port free for any other
 * test running in parallel to take before the server does.
 */
static inline int free_port(void)
{
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0 && c >= 0);
    assert_int_equal(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int s = accept(l, NULL, NULL);
    assert_true(s >= 0);
    close(s); /* first: the TIME_WAIT is on the port's side */
    close(c);
    close(l);
    return ntohs(a.sin_port);
}

/*
 * Run bin with argv in a child that dies with us, its stdin and stdout on
 * /dev/null, its stderr in err_path (NULL: /dev/null) and no other file
 * descriptor of ours.  Its pid; the caller waits for it to answer.
 */
static inline pid_t spawn_server(const char *bin, char *const argv[], const char *err_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with us, however we die */
        if (getppid() != parent)
            _exit(1);
        int null = open("/dev/null", O_RDWR);
        int err = err_path != NULL ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(err >= 0 ? err : null, 2);
        }
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Kill pid (stopped or not) and reap it. */
static inline void kill_server(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Poll (every 5 ms, never a blind sleep) until s says it is up, at most ms. */
static inline bool comes_up(struct hf_store *s, int64_t ms)
{
    int64_t deadline = hf_clock_mono_ms() + ms;
    while (!hf__store_up(s)) {
        if (hf_clock_mono_ms() > deadline)
            return false;
        pause_ms(5);
    }
    return true;
}

/* The group's server as a store URL (set in the group setup). */
static char g_url[128];

/* The store contract's hooks (store_contract.h): a new store on the
 * group's server, and a flush, which is what a sweep of theirs is: it
 * waits for the writes queued before it. */
static inline hf_err contract_open(void **state, const struct hf_store_options *o,
                                   struct hf_store **out)
{
    (void)state;
    char err[512] = "";
    hf_err e = hf_store_open(g_url, o, out, err, sizeof err);
    if (e != HF_OK)
        print_error("open: %s\n", err);
    return e;
}

static inline void contract_flush(struct hf_store *s)
{
    assert_int_equal(hf_store_sweep(s, INT64_MIN, NULL), HF_OK);
}

static inline struct hf_store *open_url(const char *url, size_t max_bytes, int64_t keep_ms)
{
    struct hf_store_options o = {max_bytes, keep_ms};
    struct hf_store *s = NULL;
    char err[512] = "";
    hf_err e = hf_store_open(url, &o, &s, err, sizeof err);
    if (e != HF_OK)
        fail_msg("open %s: %s", url, err);
    return s;
}

/* ------------------------------------------------------------------ */
/* Logs: each test's go to log_path; logs_release sends them to stderr */
/* ------------------------------------------------------------------ */

static char log_path[PATH_MAX];
static int log_fd = -1;

static inline void logs_capture(void)
{
    if (log_fd < 0) {
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        assert_true(log_fd >= 0);
    }
    assert_int_equal(ftruncate(log_fd, 0), 0);
    hf_log_configure(HF_LOG_INFO, HF_LOG_JSON, log_fd);
}

static inline void logs_release(void)
{
    hf_log_configure(HF_LOG_INFO, HF_LOG_JSON, 2);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}

/* What was logged since logs_capture(). */
static inline const char *logs_text(void)
{
    static char buf[65536];
    FILE *fp = fopen(log_path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static inline void logs_have(const char *what)
{
    const char *t = logs_text();
    if (strstr(t, what) == NULL)
        fail_msg("the logs lack %s:\n%s", what, t);
}

/*
 * Wait (at most 2 s) until needle was logged.  The store's threads log
 * after they act: the writer marks the store up, then logs store_up, so a
 * test that saw the store up may read the logs a moment too early.
 */
static inline void wait_logged(const char *needle)
{
    int64_t start = hf_clock_mono_ms();
    while (strstr(logs_text(), needle) == NULL) {
        if (hf_clock_mono_ms() - start > 2000)
            fail_msg("not logged within 2 s: %s; logged: %s", needle, logs_text());
        pause_ms(5);
    }
}

#endif
