/*
 * Static files for `static: DIR`: the proxy answers GET and HEAD of paths
 * no route claims from a table read into memory at start (static.c).
 */
#ifndef HF_PROXY_STATIC_H
#define HF_PROXY_STATIC_H

#include <stddef.h>

#include <holdfast/error.h>

struct hf__static;

struct hf__static_file {
    char *path; /* URL path: "/index.html", "/js/app.js" */
    char *body;
    size_t len;
    const char *type;       /* Content-Type */
    char etag[48];          /* strong, quoted: size and modification time */
    char last_modified[40]; /* HTTP date */
};

/* Read every regular file under dir (see static.c for what is left out and
 * the bounds).  HF_CONFIG with a message naming the file and the problem. */
hf_err hf__static_load(const char *dir, struct hf__static **out, char *errbuf, size_t errlen);
void hf__static_free(struct hf__static **s);
size_t hf__static_count(const struct hf__static *s);
/* The file for the URL path path[0..len) ("/" and "/sub/" are their
 * index.html), or NULL. */
const struct hf__static_file *hf__static_find(const struct hf__static *s, const char *path,
                                              size_t len);

#endif
