/*
 * Default configurations, taken from the key table (keys.c) so the defaults
 * a library user gets, the ones a config file starts from and the ones the
 * reference documents can never disagree.  The retry policy starts from
 * hf_retry_policy_default() (it also sets the multiplier, which has no key);
 * test_config checks that the table's retry defaults equal it.
 */
#include <string.h>

#include <holdfast/client.h>
#include <holdfast/retry.h>

#include "config/keys.h"

void hf__keys_apply_defaults(enum hf__kscope scope, void *base, bool lib)
{
    char why[160];
    for (size_t i = 0; i < hf__nkeys; i++) {
        const struct hf__key *k = &hf__keys[i];
        const char *text = lib && k->lib_def != NULL ? k->lib_def : k->def;
        if (k->scope != scope || text == NULL)
            continue;
        /* The table's defaults are static text; a failure here is a bug in
         * the table, which test_config catches for every row. */
        (void)hf__key_set(k, base, text, NULL, NULL, why, sizeof why);
    }
}

void hf_route_config_default(struct hf_route_config *r)
{
    memset(r, 0, sizeof *r);
    hf_retry_policy_default(&r->retry);
    hf__keys_apply_defaults(HF_KS_ROUTE, r, true);
}

void hf_config_default(struct hf_config *c)
{
    memset(c, 0, sizeof *c);
    hf__keys_apply_defaults(HF_KS_CONFIG, c, true);
}
