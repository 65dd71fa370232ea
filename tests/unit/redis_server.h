/*
 * A real redis-server for unit tests: on a unix socket in a fresh
 * directory (no TCP port at all, so no free-port race), no persistence.
 * Started by the test, stopped by it, and killed however the test ends:
 * at exit, and by the kernel when the forking thread dies
 * (PR_SET_PDEATHSIG), so a crashed or timed-out test leaves no server
 * behind.  One server per test binary; call from the main thread.
 *
 *   redis_server_start();          ...   redis_server_url() is
 *   "redis+unix://DIR/redis.sock"; redis_server_stop() / _start() restart it
 *   on the same socket; _pause() / _resume() freeze it (SIGSTOP).
 */
#ifndef HF_TESTS_REDIS_SERVER_H
#define HF_TESTS_REDIS_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/clock.h"

#define REDIS_SERVER_BIN "/usr/bin/redis-server"

static struct {
    pid_t pid; /* 0 while stopped */
    bool paused;
    bool at_exit;
    char dir[PATH_MAX / 2];
    char sock[PATH_MAX / 2 + 16];
    char url[PATH_MAX];
} redis_server_g;

static inline void redis_server_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Whoever dies: no server left running, no directory left behind. */
static inline void redis_server_kill(void)
{
    if (redis_server_g.pid > 0) {
        kill(redis_server_g.pid, SIGCONT);
        kill(redis_server_g.pid, SIGKILL);
        while (waitpid(redis_server_g.pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    redis_server_g.pid = 0;
    redis_server_g.paused = false;
}

static inline void redis_server_at_exit(void)
{
    redis_server_kill();
    if (redis_server_g.dir[0] != '\0') {
        unlink(redis_server_g.sock);
        rmdir(redis_server_g.dir);
    }
}

static inline const char *redis_server_url(void)
{
    return redis_server_g.url;
}

static inline const char *redis_server_dir(void)
{
    return redis_server_g.dir;
}

/* A direct connection for the test's own commands; NULL if none. */
static inline redisContext *redis_server_connect(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectUnixWithTimeout(redis_server_g.sock, tv);
    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static inline bool redis_server_answers(void)
{
    redisContext *c = redis_server_connect();
    if (c == NULL)
        return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Start the server (the first call makes the directory) and wait, up to
 * 5 s, until it answers; false if it does not. */
static inline bool redis_server_start(void)
{
    if (redis_server_g.pid > 0)
        return true;
    if (redis_server_g.dir[0] == '\0') {
        const char *tmp = getenv("HF_TEST_TMPDIR");
        snprintf(redis_server_g.dir, sizeof redis_server_g.dir, "%s/hf-redis-XXXXXX",
                 tmp != NULL && *tmp ? tmp : "/tmp");
        if (mkdtemp(redis_server_g.dir) == NULL) {
            redis_server_g.dir[0] = '\0';
            return false;
        }
        snprintf(redis_server_g.sock, sizeof redis_server_g.sock, "%s/redis.sock",
                 redis_server_g.dir);
        snprintf(redis_server_g.url, sizeof redis_server_g.url, "redis+unix://%s",
                 redis_server_g.sock);
    }
    if (!redis_server_g.at_exit) {
        atexit(redis_server_at_exit);
        redis_server_g.at_exit = true;
    }
    char *argv[] = {"redis-server",
                    "--port",
                    "0",
                    "--unixsocket",
                    redis_server_g.sock,
                    "--unixsocketperm",
                    "700",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    redis_server_g.dir,
                    "--daemonize",
                    "no",
                    NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with us, however we die */
        if (getppid() != parent)
            _exit(1);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execv(REDIS_SERVER_BIN, argv);
        _exit(127);
    }
    redis_server_g.pid = pid;
    int64_t deadline = hf_clock_mono_ms() + 5000;
    while (!redis_server_answers()) {
        if (hf_clock_mono_ms() > deadline || waitpid(pid, NULL, WNOHANG) == pid) {
            redis_server_kill();
            return false;
        }
        redis_server_sleep_ms(5);
    }
    return true;
}

/* SIGTERM and wait (SIGKILL after 3 s). */
static inline void redis_server_stop(void)
{
    if (redis_server_g.pid <= 0)
        return;
    if (redis_server_g.paused)
        kill(redis_server_g.pid, SIGCONT);
    redis_server_g.paused = false;
    kill(redis_server_g.pid, SIGTERM);
    int64_t deadline = hf_clock_mono_ms() + 3000;
    while (waitpid(redis_server_g.pid, NULL, WNOHANG) != redis_server_g.pid) {
        if (hf_clock_mono_ms() > deadline) {
            redis_server_kill();
            return;
        }
        redis_server_sleep_ms(2);
    }
    redis_server_g.pid = 0;
}

static inline bool redis_server_running(void)
{
    return redis_server_g.pid > 0;
}

static inline void redis_server_pause(void)
{
    if (redis_server_g.pid > 0 && kill(redis_server_g.pid, SIGSTOP) == 0)
        redis_server_g.paused = true;
}

static inline void redis_server_resume(void)
{
    if (redis_server_g.pid > 0 && redis_server_g.paused)
        kill(redis_server_g.pid, SIGCONT);
    redis_server_g.paused = false;
}

#endif
