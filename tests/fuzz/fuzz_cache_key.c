/*
 * libFuzzer target: cache keys (src/http/cache_key.c).  The first byte
 * picks the ignored-parameter list, the rest is the request target.
 * Invariants: the key is NUL-terminated inside the buffer, starts with
 * "GET route ", and is a fixed point: the key's own target normalises to
 * the same key.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/cache_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ignore[] = {"utm_source", "_", "a", ""};
    if (size == 0 || size > HF_CACHE_KEY_MAX + 16)
        return 0;
    size_t nignore = data[0] % 5;
    char *target = malloc(size); /* size - 1 bytes and a NUL */
    if (target == NULL)
        return 0;
    memcpy(target, data + 1, size - 1);
    target[size - 1] = '\0';

    static char key[HF_CACHE_KEY_MAX], again[HF_CACHE_KEY_MAX];
    hf_err err = hf_cache_key("GET", "route", target, ignore, nignore, key, sizeof key);
    if (err == HF_OK) {
        size_t klen = strnlen(key, sizeof key);
        assert(klen < sizeof key);
        assert(strncmp(key, "GET route ", 10) == 0);
        assert(hf_cache_key("GET", "route", key + 10, ignore, nignore, again, sizeof again) ==
               HF_OK);
        assert(strcmp(key, again) == 0);

        /* a buffer one byte short is refused, cleanly */
        char *small = malloc(klen);
        if (small != NULL && klen > 0) {
            assert(hf_cache_key("GET", "route", target, ignore, nignore, small, klen) == HF_EINVAL);
            assert(small[0] == '\0');
        }
        free(small);
    } else {
        assert(err == HF_BAD_URL && key[0] == '\0');
    }
    free(target);
    return 0;
}
