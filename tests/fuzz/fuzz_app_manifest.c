/* libFuzzer: Application manifests (YAML and JSON) through parsing, the
 * jetbridge.io annotations (the input also goes, as a string, into each annotation
 * of a fixed manifest) and the store's JSON round trip. Invariants that fail abort. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"

static void check_list(size_t n, const char *(*get)(const jb_app *, size_t), const jb_app *a)
{
    if (n > JB_APP_MAX_LIST_ITEMS || get(a, n) != NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *s = get(a, i);
        size_t len = strlen(s);
        if (len == 0 || len > JB_APP_MAX_ITEM_LEN)
            abort();
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
                abort();
    }
}

static void check(const jb_app *a)
{
    const char *name = jb_app_name(a);
    if (name[0] == '\0' || strlen(name) > 253 || jb_app_clean_name(a)[0] == '\0')
        abort();
    check_list(jb_app_client_id_count(a), jb_app_client_id, a);
    check_list(jb_app_allowed_source_count(a), jb_app_allowed_source, a);
    check_list(jb_app_allowed_type_count(a), jb_app_allowed_type, a);
    double rate = 0;
    uint32_t burst = 0;
    if (jb_app_rate_limit(a, &rate, &burst) &&
        (!(rate > 0) || rate > JB_APP_MAX_RATE || burst < 1 || burst > JB_APP_MAX_BURST))
        abort();
    /* What the store keeps parses back to the same application. */
    const char *json = jb_app_json(a);
    jb_app *back = NULL;
    jb_err err;
    if (jb_app_from_json(json, strlen(json), &back, &err) != JB_OK)
        abort();
    if (strcmp(jb_app_json(back), json) != 0 || !jb_app_equal(a, back) ||
        jb_app_kubernetes_owned(a) != jb_app_kubernetes_owned(back))
        abort();
    jb_app_destroy(back);
    jb_app *ref = jb_app_dup(a);
    jb_app_release(ref);
}

static void parse_and_check(const char *buf, size_t len)
{
    jb_app_vec v = {0};
    jb_err err;
    if (jb_app_parse(buf, len, "fuzz", &v, &err) != JB_OK) {
        if (v.n != 0)
            abort(); /* out is unchanged on failure */
        return;
    }
    for (size_t i = 0; i < v.n; i++)
        check(v.items[i]);
    jb_app_vec_clear(&v);
}

/* The input as the value of one annotation of an otherwise valid manifest. */
static void as_annotation(const char *key, const uint8_t *data, size_t size)
{
    char *val = malloc(size + 1);
    if (val == NULL)
        return;
    memcpy(val, data, size);
    val[size] = '\0'; /* a NUL inside cuts the value: strings in JSON cannot hold one */
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "apiVersion", JB_APP_API_VERSION);
    cJSON_AddStringToObject(doc, "kind", JB_APP_KIND);
    cJSON *meta = cJSON_AddObjectToObject(doc, "metadata");
    cJSON_AddStringToObject(meta, "name", "fuzz");
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    cJSON_AddStringToObject(ann, key, val);
    jb_app *a = NULL;
    jb_err err;
    if (jb_app_from_cjson(doc, "fuzz", &a, &err) == JB_OK) {
        check(a);
        jb_app_destroy(a);
    }
    cJSON_Delete(doc);
    free(val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_and_check((const char *)data, size);
    if (size < 4096) {
        as_annotation(JB_APP_ANN_RATE, data, size);
        as_annotation(JB_APP_ANN_SOURCES, data, size);
        as_annotation(JB_APP_ANN_TYPES, data, size);
    }
    return 0;
}
