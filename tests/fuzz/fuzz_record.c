/*
 * libFuzzer target: the shared tiers' records (src/cache/record.c).  The
 * first byte picks what is parsed (% 3: a memcached entry, a redis entry, a
 * memcached kv record) and whether the record is sealed first (& 4: so the
 * checksum lets damage through to the lengths), the second is the length of
 * the key the record is read at, then the key, then the record.
 * Invariants: the parse reads only the record's bytes (ASan), says why
 * whenever it refuses, and a record it accepts is canonical: written again
 * from what was parsed (the entry made from it, the tokens it held), it is
 * the same bytes -- but for a kv record's flags, which no parse has ever
 * read, and so its checksum.
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void entry_again(enum hf__record_layout layout, const uint8_t *rec, size_t len,
                        const char *key)
{
    struct hf__record r;
    const char *why = NULL;
    enum hf__record_verdict v = hf__record_parse(layout, rec, len, key, &r, &why);
    if (v != HF_RECORD_SOUND) {
        assert(why != NULL && r.key == NULL);
        assert(v == HF_RECORD_CORRUPT || v == HF_RECORD_OTHER_KEY ||
               (v == HF_RECORD_OTHER_VERSION && layout == HF_RECORD_REDIS));
        return;
    }
    struct hf_entry *e = NULL;
    hf_err err = hf__record_entry(&r, &e);
    if (err == HF_ENOMEM)
        return;
    assert(err == HF_OK);
    size_t again_len = 0;
    unsigned char *again = hf__record_encode(layout, e, r.tokens, &again_len);
    if (again != NULL) {
        assert(again_len == len && memcmp(again, rec, len) == 0);
        free(again);
    }
    hf_entry_release(&e);
}

static void kv_again(const uint8_t *rec, size_t len, const char *key)
{
    const char *value = NULL, *why = NULL;
    size_t vlen = 0;
    enum hf__record_verdict v = hf__record_kv_parse(rec, len, key, &value, &vlen, &why);
    if (v != HF_RECORD_SOUND) {
        assert(why != NULL && value == NULL);
        return;
    }
    char *copy = malloc(vlen + 1);
    if (copy == NULL)
        return;
    memcpy(copy, value, vlen);
    copy[vlen] = '\0';
    assert(strlen(copy) == vlen);
    size_t again_len = 0;
    unsigned char *again = hf__record_kv_encode(key, copy, &again_len);
    if (again != NULL) {
        assert(again_len == len && memcmp(again, rec, 6) == 0 &&
               memcmp(again + 16, rec + 16, len - 16) == 0);
        free(again);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || (size_t)data[1] > size - 2)
        return 0;
    size_t klen = data[1];
    char *key = malloc(klen + 1);
    if (key == NULL)
        return 0;
    memcpy(key, data + 2, klen);
    key[klen] = '\0';
    /* The record on its own, in a buffer of exactly its size. */
    size_t len = size - 2 - klen;
    uint8_t *rec = malloc(len > 0 ? len : 1);
    if (rec != NULL) {
        memcpy(rec, data + 2 + klen, len);
        if (data[0] & 4)
            hf__record_seal(data[0] % 3 == 1 ? HF_RECORD_REDIS : HF_RECORD_MEMCACHED, rec, len);
        switch (data[0] % 3) {
        case 0:
            entry_again(HF_RECORD_MEMCACHED, rec, len, key);
            break;
        case 1:
            entry_again(HF_RECORD_REDIS, rec, len, key);
            break;
        default:
            kv_again(rec, len, key);
            break;
        }
    }
    free(rec);
    free(key);
    return 0;
}
