/*
 * Which route a request belongs to, and what part of its target goes to the
 * API.  A route's prefix ("/news/", by default "/<name>/") is matched on
 * whole path segments, longest first, so "/news" and "/news/x" belong to
 * /news/ while "/newsletter" does not.  The engine keeps each prefix ready
 * to compare (route->match: "/news", or "" for "/"), so a request costs one
 * memcmp per route.
 */
#include <string.h>

#include "proxy/proxy_impl.h"

const struct hf_route *hf__route_match(const struct hf_engine *e, const char *uri,
                                       const char **rest)
{
    const struct hf_route *best = NULL;
    if (uri == NULL || uri[0] != '/')
        return NULL;
    size_t ulen = strlen(uri);
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct hf_route *r = &e->routes[i];
        size_t n = r->match_len;
        if (n > ulen || memcmp(uri, r->match, n) != 0)
            continue;
        char c = uri[n];
        if (c != '/' && c != '\0' && c != '?')
            continue; /* "/newsletter" under "/news" */
        if (best == NULL || n > best->match_len)
            best = r;
    }
    /* what follows the prefix and its '/': "/news/a?x" -> "a?x" */
    if (best != NULL) {
        const char *p = uri + best->match_len;
        *rest = *p == '/' ? p + 1 : p;
    }
    return best;
}
