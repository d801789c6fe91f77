/* libFuzzer: Subscription manifests (YAML and JSON) through parsing, validation in
 * every SINK_VALIDATION mode, subjects, consumers, the store's JSON round trip and
 * the subscribed-types list. Invariants that fail abort. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/jb_cfg.h"
#include "subscription/jb_sub.h"

static void check(const jb_sub *s, jb_cfg *cfg)
{
    static const jb_cfg_sink_validation modes[] = {JB_SINK_URL, JB_SINK_KUBERNETES,
                                                   JB_SINK_ALLOWLIST};
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        cfg->sink_validation = modes[m];
        jb_sub_errors e = {0};
        if (jb_sub_validate(s, cfg, &e) != JB_OK)
            continue;
        jb_sub_consumer_list l = {0};
        jb_err err;
        jb_status st = jb_sub_consumers(s, cfg, &l, &err);
        /* Valid exactly when consumers can be made. */
        if ((st == JB_OK) != (e.n == 0))
            abort();
        for (size_t i = 0; i < l.n; i++)
            if (strlen(l.items[i].consumer) != 32 || l.items[i].subject[0] == '\0')
                abort();
        jb_sub_consumer_list_free(&l);
        jb_sub_errors_free(&e);
    }
    /* What the store keeps parses back to the same manifest. */
    const char *json = jb_sub_json(s);
    jb_sub *back = NULL;
    jb_err err;
    if (jb_sub_from_json(json, strlen(json), &back, &err) != JB_OK)
        abort();
    if (strcmp(jb_sub_json(back), json) != 0)
        abort();
    jb_sub_destroy(back);
    char tmp[64];
    const char *src = jb_sub_source(s);
    jb_sub_clean_source(src, strlen(src), tmp, sizeof(tmp));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static jb_cfg *cfg;
    if (cfg == NULL) {
        cfg = jb_cfg_defaults();
        free(cfg->sink_allowed_hosts);
        cfg->sink_allowed_hosts = strdup("a.example, *.svc.cluster.local");
    }
    jb_sub_vec v = {0};
    jb_err err;
    if (jb_sub_parse((const char *)data, size, "fuzz", NULL, &v, &err) != JB_OK) {
        if (v.n != 0)
            abort(); /* out is unchanged on failure */
        return 0;
    }
    for (size_t i = 0; i < v.n; i++)
        check(v.items[i], cfg);
    char *json = NULL;
    size_t len = 0;
    if (jb_sub_subscribed_json(&v, cfg, "app", 3, &json, &len) == JB_OK)
        free(json);
    jb_sub_vec_clear(&v);
    return 0;
}
