/*
 * libFuzzer target: the configuration loader (src/config/) on arbitrary
 * YAML text, not NUL-terminated.  Invariants: success and failure are the
 * only outcomes, a failure leaves the output untouched and a one-line
 * NUL-terminated message, and a success frees cleanly (LeakSanitizer
 * checks the rest).
 */
#undef NDEBUG /* the invariants are the point */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <holdfast/config.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HF_CONFIG_MAX_BYTES + 1)
        return 0;
    char *text = malloc(size ? size : 1); /* exact size: over-reads are caught */
    if (text == NULL)
        return 0;
    memcpy(text, data, size);

    struct hf_config_file *f = NULL;
    char err[512];
    memset(err, 'X', sizeof err);
    hf_err rc = hf_config_parse(text, size, "fuzz.yaml", &f, err, sizeof err);
    if (rc == HF_OK) {
        assert(f != NULL);
        assert(hf_config_file_config(f) != NULL);
        hf_config_file_free(&f);
        assert(f == NULL);
    } else {
        assert(rc == HF_CONFIG || rc == HF_ENOMEM);
        assert(f == NULL);
        size_t n = strnlen(err, sizeof err);
        assert(n < sizeof err && n > 0);
        assert(memchr(err, '\n', n) == NULL);
    }
    free(text);
    return 0;
}
