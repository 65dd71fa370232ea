/*
 * libFuzzer target: Vary secondary keys (src/http/vary.c).  Input layout:
 * byte 0 picks the route's extra names and the output buffer size; up to
 * the first NUL is the stored answer's header block; after it, request
 * headers as "name:value" lines.  Invariants: the key is printable,
 * NUL-terminated inside the buffer, its names are sorted and distinct, a
 * smaller buffer gives the same key or a clean refusal, and reversing the
 * request headers (when their names are distinct) changes nothing.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/vary.h"

#define MAX_REQ 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static void check_key(const char *key, size_t cap)
{
    size_t n = strnlen(key, cap);
    assert(n < cap && n < HF_VARY_KEY_MAX);
    for (size_t i = 0; i < n; i++)
        assert((unsigned char)key[i] >= 0x20 && (unsigned char)key[i] <= 0x7e);
    /* names ("name" or "name=...", ';'-separated) strictly increasing */
    const char *prev = NULL;
    size_t prev_len = 0;
    for (const char *p = key; n > 0 && p <= key + n;) {
        const char *semi = memchr(p, ';', (size_t)(key + n - p));
        const char *end = semi != NULL ? semi : key + n;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        size_t nl = (size_t)((eq != NULL ? eq : end) - p);
        assert(nl > 0);
        for (size_t i = 0; i < nl; i++)
            assert(!(p[i] >= 'A' && p[i] <= 'Z'));
        if (prev != NULL) {
            size_t m = nl < prev_len ? nl : prev_len;
            int c = memcmp(prev, p, m);
            assert(c < 0 || (c == 0 && prev_len < nl));
        }
        prev = p;
        prev_len = nl;
        if (semi == NULL)
            break;
        p = semi + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const extras[] = {"Accept-Language", "accept-encoding", "X-Tenant"};
    if (size < 1)
        return 0;
    size_t nextra = data[0] & 3;
    size_t small_len = 1 + (data[0] >> 2);
    data++;
    size--;

    const uint8_t *nul = memchr(data, 0, size);
    size_t resp_len = nul != NULL ? (size_t)(nul - data) : size;
    char *resp = malloc(resp_len ? resp_len : 1);
    if (resp == NULL)
        return 0;
    memcpy(resp, data, resp_len);

    /* request headers: NUL-terminated copies of "name:value" lines */
    size_t rlen = nul != NULL ? size - resp_len - 1 : 0;
    char *rbuf = malloc(rlen + 1);
    struct hf_header req[MAX_REQ], rev[MAX_REQ];
    size_t nreq = 0;
    if (rbuf == NULL) {
        free(resp);
        return 0;
    }
    if (rlen > 0)
        memcpy(rbuf, nul + 1, rlen);
    rbuf[rlen] = '\0';
    for (char *line = rbuf; line != NULL && *line != '\0' && nreq < MAX_REQ;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *colon = strchr(line, ':');
        if (colon != NULL) {
            *colon = '\0';
            req[nreq].name = line;
            req[nreq].value = colon + 1;
            nreq++;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }

    static char key[HF_VARY_KEY_MAX];
    enum hf_vary_result r = hf_vary_key(resp, resp_len, extras, nextra, req, nreq, key, sizeof key);
    assert(r == HF_VARY_OK || r == HF_VARY_NEVER);
    if (r != HF_VARY_OK) {
        assert(key[0] == '\0');
    } else {
        check_key(key, sizeof key);

        char *small = malloc(small_len);
        assert(small != NULL);
        enum hf_vary_result s =
            hf_vary_key(resp, resp_len, extras, nextra, req, nreq, small, small_len);
        if (strlen(key) < small_len)
            assert(s == HF_VARY_OK && strcmp(small, key) == 0);
        else
            assert(s == HF_VARY_EINVAL && small[0] == '\0');
        free(small);

        int distinct = 1;
        for (size_t i = 0; i < nreq && distinct; i++)
            for (size_t j = i + 1; j < nreq && distinct; j++)
                if (ieq(req[i].name, req[j].name))
                    distinct = 0;
        if (distinct) {
            static char key2[HF_VARY_KEY_MAX];
            for (size_t i = 0; i < nreq; i++)
                rev[i] = req[nreq - 1 - i];
            assert(hf_vary_key(resp, resp_len, extras, nextra, rev, nreq, key2, sizeof key2) ==
                   HF_VARY_OK);
            assert(strcmp(key, key2) == 0);
        }
    }
    free(rbuf);
    free(resp);
    return 0;
}
