/*
 * Static files (config `static: DIR`): read once at start into memory, so
 * a worker answering one never touches the disk, and each file's ETag is
 * computed once.  Only regular files under DIR are taken (no symlinks
 * followed, nothing whose name starts with a dot), within the bounds
 * below; the table is sorted by path for bsearch.
 */
#include "proxy/static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/date.h"

#define STATIC_MAX_FILES 1024
#define STATIC_MAX_BYTES ((size_t)32 << 20)
#define STATIC_MAX_FILE ((size_t)8 << 20)
#define STATIC_MAX_DEPTH 8
#define STATIC_PATH_MAX 1024

struct hf__static {
    struct hf__static_file *files;
    size_t n, cap;
    size_t bytes;
};

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
    {"woff", "font/woff"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot != NULL)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* Read the regular file fd (st its stat) as the table's entry for path. */
static hf_err add_file(struct hf__static *s, int fd, const struct stat *st, const char *path,
                       const char *shown, char *errbuf, size_t errlen)
{
    size_t len = (size_t)st->st_size;
    if (s->n == STATIC_MAX_FILES) {
        errf(errbuf, errlen, "%s: more than %d files", shown, STATIC_MAX_FILES);
        return HF_CONFIG;
    }
    if (len > STATIC_MAX_FILE || s->bytes + len > STATIC_MAX_BYTES) {
        errf(errbuf, errlen, "%s: too large (a file at most %zu MB, all of them %zu MB)", shown,
             STATIC_MAX_FILE >> 20, STATIC_MAX_BYTES >> 20);
        return HF_CONFIG;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void *f = realloc(s->files, cap * sizeof *s->files);
        if (f == NULL)
            return HF_ENOMEM;
        s->files = f;
        s->cap = cap;
    }
    struct hf__static_file *f = &s->files[s->n];
    memset(f, 0, sizeof *f);
    if ((f->path = strdup(path)) == NULL || (f->body = malloc(len ? len : 1)) == NULL) {
        free(f->path);
        return HF_ENOMEM;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, f->body + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            errf(errbuf, errlen, "%s: %s", shown, r < 0 ? strerror(errno) : "changed while read");
            free(f->path);
            free(f->body);
            return HF_CONFIG;
        }
        got += (size_t)r;
    }
    f->len = len;
    f->type = type_of(path);
    /* size and modification time, as many servers do: changes with the file */
    snprintf(f->etag, sizeof f->etag, "\"%llx-%llx\"", (unsigned long long)len,
             (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st->st_mtim.tv_nsec);
    hf_http_date_format((int64_t)st->st_mtim.tv_sec, f->last_modified, sizeof f->last_modified);
    s->bytes += len;
    s->n++;
    return HF_OK;
}

/* Walk the directory open at dfd; prefix is its URL path ("" or "/sub"). */
static hf_err walk(struct hf__static *s, int dfd, const char *prefix, const char *root, int depth,
                   char *errbuf, size_t errlen)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        errf(errbuf, errlen, "%s%s: %s", root, prefix, strerror(errno));
        return HF_CONFIG;
    }
    hf_err err = HF_OK;
    struct dirent *de;
    while (err == HF_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue; /* ".", "..", and hidden files (.git, .env) */
        char path[STATIC_PATH_MAX], shown[STATIC_PATH_MAX + 256];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", prefix, de->d_name) >= sizeof path)
            continue;
        snprintf(shown, sizeof shown, "%s%s", root, path);
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            continue; /* a symlink (ELOOP), or unreadable: not served */
        struct stat st;
        if (fstat(fd, &st) != 0) {
            close(fd);
            continue;
        }
        if (S_ISDIR(st.st_mode) && depth < STATIC_MAX_DEPTH)
            err = walk(s, fd, path, root, depth + 1, errbuf, errlen); /* takes fd */
        else if (S_ISREG(st.st_mode)) {
            err = add_file(s, fd, &st, path, shown, errbuf, errlen);
            close(fd);
        } else {
            close(fd);
        }
    }
    closedir(d);
    return err;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct hf__static_file *)a)->path,
                  ((const struct hf__static_file *)b)->path);
}

hf_err hf__static_load(const char *dir, struct hf__static **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    struct hf__static *s = calloc(1, sizeof *s);
    if (s == NULL)
        return HF_ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        errf(errbuf, errlen, "static: %s: %s", dir, strerror(errno));
        free(s);
        return HF_CONFIG;
    }
    hf_err err = walk(s, fd, "", dir, 0, errbuf, errlen);
    if (err) {
        hf__static_free(&s);
        return err;
    }
    if (s->n > 0)
        qsort(s->files, s->n, sizeof *s->files, cmp_file);
    *out = s;
    return HF_OK;
}

void hf__static_free(struct hf__static **sp)
{
    struct hf__static *s = *sp;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->files[i].path);
        free(s->files[i].body);
    }
    free(s->files);
    free(s);
    *sp = NULL;
}

size_t hf__static_count(const struct hf__static *s)
{
    return s != NULL ? s->n : 0;
}

const struct hf__static_file *hf__static_find(const struct hf__static *s, const char *path,
                                              size_t len)
{
    if (s == NULL || s->n == 0 || len == 0 || path[0] != '/' || len >= STATIC_PATH_MAX - 16)
        return NULL;
    char want[STATIC_PATH_MAX];
    memcpy(want, path, len);
    want[len] = '\0';
    if (want[len - 1] == '/') /* a directory: its index */
        memcpy(want + len, "index.html", sizeof "index.html");
    /* percent-encoded names are not decoded: a file name needing it is not
     * served (the table holds names as they are on disk) */
    struct hf__static_file key = {.path = want};
    return bsearch(&key, s->files, s->n, sizeof *s->files, cmp_file);
}
