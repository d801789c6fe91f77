/*
 * The legacy Kyma endpoint /{application}/v1/events (docs/contract.md 2.2): body parsing
 * and validation in Kyma's order, its JSON error bodies, and the construction of
 * the two CloudEvents it becomes. Pure: no I/O.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "common/jb_text.h"
#include "publisher/pub_internal.h"

static const char too_large_body[] =
    "{\"status\":413,\"type\":\"request_body_too_large\",\"message\":\"Request body too "
    "large\",\"moreInfo\":\"the request body exceeds MAX_REQUEST_SIZE\"}";

const char *jb_pub_legacy_too_large_body(void)
{
    return too_large_body;
}

/* The publisher's name for common/'s one JSON escaper, kept so that the many call
 * sites in server.c need not change while that file is being split. */
char *jb_pub_json_escape(const char *s, size_t len)
{
    return jb_json_escape(s, len);
}

/* Sets out to a 400 with Kyma's bad_payload_syntax shape; more_info is escaped. */
static jb_status bad_syntax(jb_pub_legacy *out, const char *more_info)
{
    char *esc = jb_pub_json_escape(more_info, strlen(more_info));
    if (esc == NULL)
        return JB_ERR_NOMEM;
#define BAD_SYNTAX_FMT                                                                             \
    "{\"status\":400,\"type\":\"bad_payload_syntax\",\"message\":\"Bad payload "                   \
    "syntax\",\"moreInfo\":\"%s\"}"
    size_t cap = sizeof(BAD_SYNTAX_FMT) + strlen(esc);
    out->err_body = malloc(cap);
    if (out->err_body == NULL) {
        free(esc);
        return JB_ERR_NOMEM;
    }
    int n = snprintf(out->err_body, cap, BAD_SYNTAX_FMT, esc);
#undef BAD_SYNTAX_FMT
    free(esc);
    out->err_len = (size_t)n;
    out->status = 400;
    return JB_OK;
}

/* Sets out to a 400 validation_violation for field; missing selects the message. */
static jb_status violation(jb_pub_legacy *out, const char *field, bool missing)
{
    const char *msg = missing ? "Missing field" : "Invalid field";
    const char *typ = missing ? "missing_field" : "invalid_field";
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "{\"status\":400,\"type\":\"validation_violation\",\"message\":\"%s\","
                     "\"details\":[{\"field\":\"%s\",\"type\":\"%s\",\"message\":\"%s\"}]}",
                     msg, field, typ, msg);
    out->err_body = strndup(buf, (size_t)n);
    if (out->err_body == NULL)
        return JB_ERR_NOMEM;
    out->err_len = (size_t)n;
    out->status = 400;
    return JB_OK;
}

static bool alnum_only(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* A string member's value, or NULL when absent. *wrong is set when the member is
 * present but not a string (Kyma's decoder rejects that as bad syntax). */
static const char *str_member(const cJSON *obj, const char *name, bool *wrong)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (it == NULL || cJSON_IsNull(it))
        return NULL;
    if (!cJSON_IsString(it)) {
        *wrong = true;
        return NULL;
    }
    return it->valuestring;
}

/* Checks 3 to 7 of docs/contract.md 2.2; on a violation fills out and returns true. */
static bool check_fields(const cJSON *root, jb_pub_legacy *out, jb_status *rc)
{
    bool wrong = false;
    const char *et = str_member(root, "event-type", &wrong);
    const char *ev = str_member(root, "event-type-version", &wrong);
    const char *tm = str_member(root, "event-time", &wrong);
    const char *id = str_member(root, "event-id", &wrong);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (wrong)
        *rc = bad_syntax(out, "a field has the wrong JSON type: want strings for event-id, "
                              "event-type, event-type-version, event-time");
    else if (et == NULL || *et == '\0')
        *rc = violation(out, "event-type", true);
    else if (ev == NULL || *ev == '\0')
        *rc = violation(out, "event-type-version", true);
    else if (!alnum_only(ev))
        *rc = violation(out, "event-type-version", false);
    else if (tm == NULL || *tm == '\0')
        *rc = violation(out, "event-time", true);
    else if (!jb_ce_is_rfc3339(tm, strlen(tm)))
        *rc = violation(out, "event-time", false);
    else if (id != NULL && *id != '\0' && !jb_uuid_valid(id, strlen(id)))
        *rc = violation(out, "event-id", false);
    else if (data == NULL || cJSON_IsNull(data) ||
             (cJSON_IsString(data) && data->valuestring[0] == '\0'))
        *rc = violation(out, "data", true);
    else
        return false;
    return true;
}

/* Builds the standard-path event from a validated body. */
static jb_status build_event(const cJSON *root, const char *app, size_t app_len, jb_pub_legacy *out)
{
    jb_status rc = JB_ERR_NOMEM;
    bool wrong = false;
    const char *et = str_member(root, "event-type", &wrong);
    const char *ev = str_member(root, "event-type-version", &wrong);
    const char *tm = str_member(root, "event-time", &wrong);
    const char *id = str_member(root, "event-id", &wrong);
    char *data = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "data"));
    size_t tl = strlen(et) + 1 + strlen(ev);
    char *type = malloc(tl + 1);
    jb_ce *ce = jb_ce_create();
    if (data == NULL || type == NULL || ce == NULL)
        goto done;
    snprintf(type, tl + 1, "%s.%s", et, ev);
    if (id != NULL && *id != '\0')
        snprintf(out->id, sizeof(out->id), "%s", id);
    else
        jb_uuid_v4(out->id);
    if ((rc = jb_ce_set_str(ce, "specversion", "1.0")) != JB_OK ||
        (rc = jb_ce_set_str(ce, "id", out->id)) != JB_OK ||
        (rc = jb_ce_set(ce, "source", app, app_len)) != JB_OK ||
        (rc = jb_ce_set_str(ce, "type", type)) != JB_OK ||
        (rc = jb_ce_set_str(ce, "eventtypeversion", ev)) != JB_OK ||
        (rc = jb_ce_set_str(ce, "time", tm)) != JB_OK ||
        (rc = jb_ce_set_str(ce, "datacontenttype", "application/json")) != JB_OK ||
        (rc = jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data))) != JB_OK)
        goto done;
    out->ce = ce;
    ce = NULL;
    rc = JB_OK;
done:
    jb_ce_destroy(ce);
    free(type);
    cJSON_free(data);
    return rc;
}

jb_status jb_pub_legacy_parse(const char *app, size_t app_len, const char *body, size_t len,
                              jb_pub_legacy *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return bad_syntax(out, "Bad payload syntax");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    jb_status rc = JB_OK;
    if (root == NULL || !cJSON_IsObject(root)) {
        char msg[128];
        size_t off = end != NULL && end >= body ? (size_t)(end - body) : 0;
        if (root == NULL)
            snprintf(msg, sizeof(msg), "invalid JSON at offset %zu", off);
        else
            snprintf(msg, sizeof(msg), "the body must be a JSON object");
        rc = bad_syntax(out, msg);
        goto done;
    }
    /* Trailing non-space bytes after the object are a syntax error too. */
    for (const char *p = end; p != NULL && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            char msg[128];
            snprintf(msg, sizeof(msg), "invalid JSON at offset %zu: data after the object",
                     (size_t)(p - body));
            rc = bad_syntax(out, msg);
            goto done;
        }
    }
    if (check_fields(root, out, &rc))
        goto done;
    rc = build_event(root, app, app_len, out);
done:
    cJSON_Delete(root);
    if (rc != JB_OK)
        jb_pub_legacy_free(out);
    return rc;
}

void jb_pub_legacy_free(jb_pub_legacy *l)
{
    if (l == NULL)
        return;
    free(l->err_body);
    jb_ce_destroy(l->ce);
    l->err_body = NULL;
    l->ce = NULL;
}

jb_status jb_pub_legacy_prefixed_copy(const jb_pub_names *n, const jb_ce *std_ce, const char *app,
                                      size_t app_len, jb_ce **out, char **subject, jb_err *err)
{
    if (n->type_prefix[0] == '\0')
        return JB_ERR_NOT_FOUND;
    size_t tlen = 0;
    const char *type = jb_ce_get(std_ce, "type", &tlen); /* "<event-type>.<version>" */
    size_t pl = strlen(n->type_prefix);
    jb_status rc = JB_ERR_NOMEM;
    char *full = malloc(pl + app_len + tlen + 3);
    jb_ce *ce = jb_ce_clone(std_ce);
    char *subj = NULL;
    if (full == NULL || ce == NULL || type == NULL)
        goto done;
    size_t o = 0;
    memcpy(full, n->type_prefix, pl);
    o += pl;
    full[o++] = '.';
    /* The app is cleaned first: a dot in it must not become a type segment. */
    for (size_t i = 0; i < app_len; i++) {
        char c = app[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            full[o++] = c;
    }
    full[o++] = '.';
    memcpy(full + o, type, tlen);
    o += tlen;
    full[o] = '\0';
    if ((rc = jb_ce_set_str(ce, "type", full)) != JB_OK ||
        (rc = jb_ce_set_str(ce, "source", n->legacy_ns)) != JB_OK)
        goto done;
    if ((rc = jb_pub_enrich_legacy_copy(n, ce, &subj, err)) != JB_OK)
        goto done;
    *out = ce;
    *subject = subj;
    ce = NULL;
    subj = NULL;
done:
    free(full);
    free(subj);
    jb_ce_destroy(ce);
    return rc;
}
