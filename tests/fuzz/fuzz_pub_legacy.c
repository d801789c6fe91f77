/*
 * libFuzzer target: the legacy endpoint's body parsing and validation, then the
 * enrichment of both copies (standard and prefixed path) and their message ids.
 * Input: "<application>\n<body>"; without a newline the whole input is the body
 * and the application is "app". The input is also run through the type cleaners
 * directly, as a type and as a source, the legacy type builder and the source
 * validity rule.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "publisher/pub_internal.h"
#include "subscription/jb_sub.h"

static void enrich_both(const jb_pub_names *n, jb_pub_legacy *lg, const char *app, size_t app_len)
{
    jb_ce *copy = NULL;
    char *subj = NULL, *subj2 = NULL;
    char id[JB_PUB_MSG_ID_LEN + 1];
    if (jb_pub_legacy_prefixed_copy(n, lg->ce, app, app_len, &copy, &subj2, NULL) == JB_OK) {
        size_t sl = 0, il = 0;
        const char *s = jb_ce_get(copy, "source", &sl);
        const char *i = jb_ce_get(copy, "id", &il);
        jb_pub_msg_id(s, sl, i, il, subj2, id);
    }
    bool valid = jb_ce_validate(lg->ce, NULL) == JB_OK;
    if (jb_pub_enrich(n, lg->ce, &subj, NULL) == JB_OK) {
        /* Enriching a valid CloudEvent keeps it valid. */
        if (valid && jb_ce_validate(lg->ce, NULL) != JB_OK)
            abort();
        if (subj[0] == '.' || strstr(subj, "..") != NULL)
            abort();
    }
    free(subj);
    free(subj2);
    jb_ce_destroy(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const jb_pub_names n = {"sap.kyma.custom", "kyma", "kyma"};
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    const char *app = "app", *body = in;
    size_t app_len = 3, body_len = size;
    if (nl != NULL && nl > in) {
        app = in;
        app_len = (size_t)(nl - in);
        body = nl + 1;
        body_len = size - app_len - 1;
    }
    jb_pub_legacy lg;
    if (jb_pub_legacy_parse(app, app_len, body, body_len, &lg) != JB_OK)
        return 0;
    if (lg.status == 0)
        enrich_both(&n, &lg, app, app_len);
    else if (lg.err_body == NULL || strlen(lg.err_body) != lg.err_len)
        abort();
    jb_pub_legacy_free(&lg);

    char *out = NULL;
    if (jb_sub_standard_subject("kyma", in, size, in, size, &out, NULL) == JB_OK &&
        (out[strlen(out) - 1] == '.' || strstr(out, "..") != NULL))
        abort();
    free(out);
    out = NULL;
    if (jb_pub_prefixed_type("sap.kyma.custom", in, size, &out, NULL) == JB_OK &&
        strncmp(out, "sap.kyma.custom.", 16) != 0)
        abort();
    free(out);
    out = NULL;
    /* The legacy path's type: no four-part rule, still never an empty segment. */
    if (jb_pub_legacy_type("sap.kyma.custom", in, size, &out, NULL) == JB_OK &&
        (strncmp(out, "sap.kyma.custom.", 16) != 0 || strstr(out, "..") != NULL ||
         out[strlen(out) - 1] == '.'))
        abort();
    free(out);
    /* A valid source never holds a control byte. */
    if (jb_sub_source_valid(in, size))
        for (size_t i = 0; i < size; i++)
            if ((unsigned char)in[i] < 0x20 || in[i] == 0x7f)
                abort();
    return 0;
}
