/*
 * libFuzzer target: request-target checks and prefix mapping
 * (src/http/target.c).  The first byte picks the method, the rest is the
 * target, not NUL-terminated.  Invariants, checked by an independent
 * decoder: an accepted target is origin-form, its decoded path has no "."
 * or ".." segment, no '/' or '\' that was encoded and no empty segment,
 * and mapping it under "/news/" gives an upstream URL that starts with the
 * upstream base.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The path as the API will read it: decode once, then split on '/'. */
static void check_accepted(const char *t, size_t len)
{
    assert(len > 0 && len <= HF_TARGET_MAX && t[0] == '/');
    for (size_t i = 0; i < len; i++)
        assert((unsigned char)t[i] > ' ' && t[i] != 0x7f && t[i] != '#');
    const char *q = memchr(t, '?', len);
    size_t plen = q != NULL ? (size_t)(q - t) : len;

    char *dec = malloc(plen + 1);
    assert(dec != NULL);
    size_t n = 0;
    for (size_t i = 0; i < plen; i++) {
        if (t[i] == '%') {
            assert(i + 2 < plen && hexval(t[i + 1]) >= 0 && hexval(t[i + 2]) >= 0);
            char c = (char)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
            assert(c != '/' && c != '\\' && c != '\0');
            dec[n++] = c;
            i += 2;
        } else {
            assert(t[i] != '\\');
            dec[n++] = t[i];
        }
    }
    dec[n] = '\0';
    /* segments of the decoded path, name part before ';' */
    for (size_t s = 1; s <= n;) {
        size_t e = s;
        while (e < n && dec[e] != '/')
            e++;
        size_t name = e - s;
        const char *semi = memchr(dec + s, ';', e - s);
        if (semi != NULL)
            name = (size_t)(semi - (dec + s));
        assert(!(name == 1 && dec[s] == '.'));
        assert(!(name == 2 && dec[s] == '.' && dec[s + 1] == '.'));
        assert(e == n || e > s); /* no empty segment but the last */
        s = e + 1;
    }
    free(dec);
}

static void check_mapping(const char *target)
{
    static const char *const bases[] = {"https://api.example.com/v1/",
                                        "https://api.example.com/v1"};
    size_t rest_len;
    const char *rest = hf_http_prefix_rest("/news/", target, &rest_len);
    assert((rest != NULL) == hf_http_prefix_match("/news/", target));
    assert((rest != NULL) == hf_http_prefix_match("/news", target));
    if (rest == NULL)
        return;
    assert(rest >= target && rest_len == strlen(rest));
    assert(strncmp(target, "/news", 5) == 0);
    for (size_t i = 0; i < 2; i++) {
        char url[HF_TARGET_MAX + 64];
        assert(hf_http_upstream_url(bases[i], rest, rest_len, url, sizeof url) == HF_OK);
        size_t blen = strlen(bases[i]);
        assert(strncmp(url, bases[i], blen) == 0);
        char next = url[blen];
        if (i == 1)
            assert(next == '\0' || next == '?' || next == '/');
        /* no "//" in the path past "https://" (the query may hold any) */
        char *query = strchr(url, '?');
        if (query != NULL)
            *query = '\0';
        assert(strstr(url + 8, "//") == NULL);
    }
    /* "/" takes everything */
    assert(hf_http_prefix_match("/", target));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "CONNECT", "OPTIONS", NULL};
    if (size == 0)
        return 0;
    const char *method = methods[data[0] % 6];
    size_t len = size - 1;
    /* an exact-size copy, so any read past len is caught */
    char *t = malloc(len + 1);
    if (t == NULL)
        return 0;
    memcpy(t, data + 1, len);

    enum hf_target_err e = hf_http_target_check(method, t, len);
    assert((unsigned)e < HF__TARGET_MAX);
    assert(hf_http_target_reason(e) != NULL);
    if (method != NULL && strcmp(method, "CONNECT") == 0)
        assert(e == HF_TARGET_AUTHORITY);
    if (e == HF_TARGET_OK) {
        check_accepted(t, len);
        t[len] = '\0';
        check_mapping(t);
    }
    free(t);
    return 0;
}
