/* Private to application/: the body of jb_app and helpers shared by its files. */
#ifndef JB_APP_INTERNAL_H
#define JB_APP_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdatomic.h>

#include "application/jb_app.h"

/* A list of strings parsed from a manifest (clientIds, comma lists). */
typedef struct app_strs {
    char **items;
    size_t n;
} app_strs;

struct jb_app {
    atomic_uint refs; /* jb_app_dup / registry lookups add one, release drops one */
    char *name;
    char *label;      /* application-type, "" when absent */
    app_strs client_ids;
    app_strs sources; /* allowed-sources */
    app_strs types;   /* allowed-types */
    bool has_rate;
    double rate;
    uint32_t burst;
    bool k8s_owned;
    int64_t created_ms;
    cJSON *doc; /* canonical manifest */
    char *json; /* cJSON_PrintUnformatted(doc) */
};

/* A copy of a with metadata.creationTimestamp set to created_ms (0 removes it);
 * NULL when out of memory. */
jb_app *app_with_created(const jb_app *a, int64_t created_ms);

#endif
