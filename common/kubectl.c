/* kubectl-style resource commands: the parts `sub` and `app` share (jb_kubectl.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "common/jb_kubectl.h"
#include "common/jb_manifest.h"

/* The one wording for a bad argument. */
static int bad_arg(const char *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "jetbridge %s: %s \"%s\"; see `jetbridge %s --help`\n", cmd, what, arg, cmd);
    return 2;
}

static bool is_flag(const char *a, const char *s, const char *l)
{
    return strcmp(a, s) == 0 || strcmp(a, l) == 0;
}

int jb_kctl_parse(const char *cmd, bool namespaced, int argc, char **argv, int first,
                  jb_kctl_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (is_flag(a, "-f", "--filename") && has_val) {
            if (o->nfiles == JB_KCTL_MAX_FILES)
                return bad_arg(cmd, "too many -f arguments (at most 64), at", argv[i + 1]);
            o->files[o->nfiles++] = argv[++i];
        } else if (namespaced && is_flag(a, "-n", "--namespace") && has_val) {
            o->ns = argv[++i];
        } else if (is_flag(a, "-o", "--output") && has_val) {
            o->output = argv[++i];
            if (strcmp(o->output, "json") != 0 && strcmp(o->output, "yaml") != 0)
                return bad_arg(cmd, "-o wants json or yaml, not", o->output);
        } else if (namespaced && is_flag(a, "-A", "--all-namespaces")) {
            o->all = true;
        } else if (a[0] != '-' && o->name == NULL) {
            o->name = a;
        } else {
            return bad_arg(cmd, "unknown argument", a);
        }
    }
    return 0;
}

bool jb_kctl_wants_help(int argc, char **argv, int from)
{
    for (int i = from; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

int jb_kctl_print(size_t n, bool single, const char *output, jb_kctl_obj_fn obj, void *ud)
{
    cJSON *root = NULL;
    if (single && n > 0) {
        root = obj(0, ud);
    } else if ((root = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(root, "apiVersion", "v1");
        cJSON *items = cJSON_AddArrayToObject(root, "items");
        for (size_t i = 0; items != NULL && i < n; i++) {
            cJSON *o = obj(i, ud);
            if (o != NULL)
                cJSON_AddItemToArray(items, o);
        }
        cJSON_AddStringToObject(root, "kind", "List");
    }
    if (root == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    if (strcmp(output, "json") == 0) {
        char *out = cJSON_Print(root);
        if (out != NULL)
            printf("%s\n", out);
        free(out);
    } else {
        jb_yaml_print(root, 0, stdout);
    }
    cJSON_Delete(root);
    return 0;
}

int jb_kctl_need_name(const jb_kctl_ctx *c)
{
    if (c->o.name != NULL)
        return 0;
    fprintf(stderr, "error: must specify NAME\n");
    return 2;
}

int jb_kctl_report(jb_status st, const jb_err *err)
{
    fprintf(stderr, st == JB_ERR_NOT_FOUND ? "Error from server (NotFound): %s\n" : "error: %s\n",
            err->msg);
    return 1;
}

int jb_kctl_store(jb_kctl_ctx *c)
{
    jb_err err = {{0}};
    if (c->store != NULL)
        return 0;
    if (jb_nats_connect(c->nats, NULL, c->res->client, false, &c->nc, &c->js, &err) != JB_OK ||
        c->res->open(c->cfg, c->js, &c->store, &err) != JB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        jb_nats_close(c->nc, c->js);
        c->nc = NULL;
        c->js = NULL;
        return 1;
    }
    return 0;
}

static const jb_kctl_verb *find_verb(const jb_kctl_resource *res, const char *verb)
{
    for (size_t i = 0; i < res->nverbs; i++)
        if (strcmp(verb, res->verbs[i].verb) == 0)
            return &res->verbs[i];
    return NULL;
}

int jb_kctl_main(const jb_kctl_resource *res, const void *cfg, const jb_nats_opts *nats, int argc,
                 char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        res->usage(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? 2 : 0;
    }
    const jb_kctl_verb *v = find_verb(res, argv[1]);
    if (v == NULL)
        return bad_arg(res->cmd, "unknown command", argv[1]);
    if (jb_kctl_wants_help(argc, argv, 2)) {
        res->usage(stdout, v->verb);
        return 0;
    }
    jb_kctl_ctx c = {.res = res, .cfg = cfg, .nats = nats, .argc = argc, .argv = argv};
    if (!v->own_args && jb_kctl_parse(res->cmd, res->namespaced, argc, argv, 2, &c.o) != 0)
        return 2;
    int rc = v->run(&c);
    fflush(stdout);
    if (c.store != NULL)
        res->close(c.store);
    jb_nats_close(c.nc, c.js);
    return rc;
}
