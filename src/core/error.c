/*
 * The error table's functions; the table itself is in holdfast/error.h.
 */
#include <holdfast/error.h>

#define HF__ERR_LABEL(name, label, status, text) label,
static const char *const labels[] = {HF_ERR_TABLE(HF__ERR_LABEL)};
#define HF__ERR_TEXT(name, label, status, text) text,
static const char *const texts[] = {HF_ERR_TABLE(HF__ERR_TEXT)};
#define HF__ERR_STATUS(name, label, status, text) status,
static const int statuses[] = {HF_ERR_TABLE(HF__ERR_STATUS)};

const char *hf_strerror(hf_err err)
{
    if ((unsigned)err >= HF__ERR_MAX)
        return "unknown error";
    return texts[err];
}

const char *hf_err_label(hf_err err)
{
    if ((unsigned)err >= HF__ERR_MAX)
        return "unknown";
    return labels[err];
}

int hf_err_http_status(hf_err err)
{
    if ((unsigned)err >= HF__ERR_MAX)
        return 500;
    return statuses[err];
}
