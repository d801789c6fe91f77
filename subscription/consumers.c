/* Consumer names and the consumers a subscription needs: what validate.c accepted,
 * with the subjects subject.c builds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

/* The clean type for s (exact: the type itself); malloc'd. */
static char *sub_clean_type(const jb_sub *s, const char *type)
{
    if (s->tm == JB_SUB_MATCH_EXACT)
        return strdup(type);
    size_t len = strlen(type);
    char *out = malloc(len + 1);
    if (out != NULL)
        jb_sub_clean_type(type, len, out, len + 1);
    return out;
}

void jb_sub_consumer_name(const char *ns, const char *name, const char *subject, char out[33])
{
    size_t len = strlen(ns) + strlen(name) + strlen(subject) + 3;
    char *buf = malloc(len);
    char hex[65];
    if (buf == NULL) {
        out[0] = '\0';
        return;
    }
    snprintf(buf, len, "%s/%s/%s", ns, name, subject);
    jb_sha256_hex(buf, len - 1, hex);
    free(buf);
    memcpy(out, hex, 32);
    out[32] = '\0';
}

/* ------------------------------------------------------------- consumers */

void jb_sub_consumer_free(jb_sub_consumer *c)
{
    if (c == NULL)
        return;
    free(c->ns);
    free(c->name);
    free(c->type);
    free(c->clean_type);
    free(c->subject);
    free(c->sink);
    jb_sub_auth_free(&c->auth);
    memset(c, 0, sizeof(*c));
}

bool jb_sub_consumer_copy(jb_sub_consumer *dst, const jb_sub_consumer *src)
{
    jb_sub_consumer c = *src;
    c.ns = strdup(src->ns);
    c.name = strdup(src->name);
    c.type = strdup(src->type);
    c.clean_type = strdup(src->clean_type);
    c.subject = strdup(src->subject);
    c.sink = strdup(src->sink);
    bool auth_ok = jb_sub_auth_copy(&c.auth, &src->auth);
    if (!auth_ok)
        memset(&c.auth, 0, sizeof(c.auth));
    if (!c.ns || !c.name || !c.type || !c.clean_type || !c.subject || !c.sink || !auth_ok) {
        jb_sub_consumer_free(&c);
        return false;
    }
    *dst = c;
    return true;
}

void jb_sub_consumer_list_free(jb_sub_consumer_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        jb_sub_consumer_free(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static jb_status fill_consumer(const jb_sub *s, const jb_cfg *cfg, const char *type,
                               const jb_sub_delivery *d, jb_sub_consumer *c, jb_err *err)
{
    jb_status st = jb_sub_subject(s, cfg, type, &c->subject, err);
    if (st != JB_OK)
        return st;
    c->ns = strdup(s->ns);
    c->name = strdup(s->name);
    c->type = strdup(type);
    c->clean_type = sub_clean_type(s, type);
    c->sink = strdup(s->sink);
    c->delivery = *d;
    if (!c->ns || !c->name || !c->type || !c->clean_type || !c->sink)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    if ((st = jb_sub_auth_get(s, &c->auth, err)) != JB_OK)
        return st;
    jb_sub_consumer_name(s->ns, s->name, c->subject, c->consumer);
    return JB_OK;
}

jb_status jb_sub_consumers(const jb_sub *s, const jb_cfg *cfg, jb_sub_consumer_list *out,
                           jb_err *err)
{
    jb_sub_errors ve = {0};
    jb_status st = jb_sub_validate(s, cfg, &ve);
    if (st != JB_OK)
        return jb_err_set(err, st, "out of memory");
    if (ve.n > 0)
        st = jb_err_set(err, JB_ERR_INVALID, "%s", ve.message);
    jb_sub_errors_free(&ve);
    if (st != JB_OK)
        return st;
    jb_sub_delivery d;
    if ((st = jb_sub_delivery_get(s, cfg, &d, err)) != JB_OK)
        return st;
    jb_sub_consumer_list l = {calloc(s->ntypes ? s->ntypes : 1, sizeof(jb_sub_consumer)), 0};
    if (l.items == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == JB_OK && i < s->ntypes; i++)
        st = fill_consumer(s, cfg, s->types[i], &d, &l.items[l.n++], err);
    if (st != JB_OK) {
        jb_sub_consumer_list_free(&l);
        return st;
    }
    *out = l;
    return JB_OK;
}
