/*
 * Which route a request belongs to, and what part of its target goes to the
 * API.  A route's prefix ("/news/", by default "/<name>/") is matched on
 * whole path segments, longest first, so "/news" and "/news/x" belong to
 * /news/ while "/newsletter" does not.
 */
#include <stdio.h>
#include <string.h>

#include "http/target.h"
#include "proxy/proxy_impl.h"

static size_t prefix_of(const struct hf_route *r, char *buf, size_t len)
{
    if (r->cfg.prefix != NULL && r->cfg.prefix[0] != '\0')
        snprintf(buf, len, "%s", r->cfg.prefix);
    else
        snprintf(buf, len, "/%s/", r->cfg.name);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') /* compare without the trailing slash */
        buf[--n] = '\0';
    return n;
}

const struct hf_route *hf__route_match(const struct hf_engine *e, const char *uri,
                                       const char **rest)
{
    const struct hf_route *best = NULL;
    size_t best_len = 0;
    char prefix[512];
    for (size_t i = 0; i < e->nroutes; i++) {
        size_t n = prefix_of(&e->routes[i], prefix, sizeof prefix);
        if (!hf_http_prefix_match(prefix, uri))
            continue;
        if (n == 1)
            n = 0; /* "/" catches everything, and loses to any longer prefix */
        if (best == NULL || n > best_len) {
            best = &e->routes[i];
            best_len = n;
        }
    }
    /* what follows the prefix and its '/': "/news/a?x" -> "a?x" */
    if (best != NULL) {
        prefix_of(best, prefix, sizeof prefix);
        size_t n;
        *rest = hf_http_prefix_rest(prefix, uri, &n);
    }
    return best;
}
