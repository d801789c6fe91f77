/* The application-type label of a known application replaces its name in cleaning
 * (docs/applications.md): in the prefixed path's app segment and in both copies of
 * a legacy event. ce-source always stays as sent. */
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"
#include "publisher/pub_internal.h"

jb_status pub_app_relabel(const jb_pub_names *n, struct jb_app_registry *apps, jb_ce *ce)
{
    size_t len = 0;
    const char *type = jb_ce_get(ce, "type", &len);
    if (apps == NULL || type == NULL || !jb_pub_is_prefixed(n->type_prefix, type, len))
        return JB_OK;
    size_t pl = strlen(n->type_prefix) + 1; /* "<prefix>." */
    const char *app = type + pl;
    const char *dot = memchr(app, '.', len - pl);
    if (dot == NULL)
        return JB_OK; /* too few parts: enrichment says so */
    const jb_app *a = jb_app_registry_find(apps, app, (size_t)(dot - app));
    const char *label = a ? jb_app_type_label(a) : "";
    jb_status rc = JB_OK;
    if (label[0] != '\0') {
        size_t ll = strlen(label), rest = len - (size_t)(dot - type);
        char *t = malloc(pl + ll + rest + 1);
        if (t == NULL) {
            rc = JB_ERR_NOMEM;
        } else {
            size_t o = pl;
            memcpy(t, type, pl);
            /* Only letters and digits: a dot in the label must not become a segment. */
            for (size_t i = 0; i < ll; i++)
                if ((label[i] >= 'a' && label[i] <= 'z') || (label[i] >= 'A' && label[i] <= 'Z') ||
                    (label[i] >= '0' && label[i] <= '9'))
                    t[o++] = label[i];
            memcpy(t + o, dot, rest);
            rc = jb_ce_set(ce, "type", t, o + rest); /* type points into ce: copy first */
            free(t);
        }
    }
    jb_app_release(a);
    return rc;
}

jb_status pub_enrich_as_source(const jb_pub_names *n, jb_ce *ce, const char *src, size_t slen,
                               char **subject, jb_err *err)
{
    size_t ol = 0;
    const char *orig = jb_ce_get(ce, "source", &ol);
    char *keep = orig ? strndup(orig, ol) : NULL;
    if (keep == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    /* Enrichment reads the source only to build the subject: lend it the clean name
     * and give the event its own source back. */
    jb_status rc = jb_ce_set(ce, "source", src, slen);
    if (rc == JB_OK)
        rc = jb_pub_enrich(n, ce, subject, err);
    jb_status rc2 = jb_ce_set(ce, "source", keep, ol);
    free(keep);
    if (rc == JB_OK && rc2 != JB_OK) {
        free(*subject);
        *subject = NULL;
        rc = jb_err_set(err, rc2, "out of memory");
    }
    return rc;
}
