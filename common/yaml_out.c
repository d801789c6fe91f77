/* A small block-YAML writer for `sub`/`app get -o yaml` and `describe`. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/jb_manifest.h"

/* Plain when it cannot be read back as anything but this string. */
static bool needs_quotes(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off",
                                        "null", "~",     "y",   "n",  ""};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return true;
    if (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')
        return true;
    if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]))
        return true;
    if (strchr("!&*[]{}|>'\"%@`#,?:", s[0]) != NULL)
        return true;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (p[0] == ':' && (p[1] == ' ' || p[1] == '\0')) ||
            (p[0] == ' ' && p[1] == '#'))
            return true;
    return false;
}

static void scalar(const cJSON *j, FILE *f)
{
    if (cJSON_IsString(j)) {
        if (!needs_quotes(j->valuestring)) {
            fputs(j->valuestring, f);
            return;
        }
        /* JSON's string escapes are valid in YAML double-quoted scalars. */
        char *q = cJSON_PrintUnformatted(j);
        fputs(q ? q : "\"\"", f);
        cJSON_free(q);
    } else if (cJSON_IsBool(j)) {
        fputs(cJSON_IsTrue(j) ? "true" : "false", f);
    } else if (cJSON_IsNumber(j)) {
        fprintf(f, "%.17g", j->valuedouble);
    } else {
        fputs("null", f);
    }
}

static bool is_empty_container(const cJSON *j)
{
    return (cJSON_IsObject(j) || cJSON_IsArray(j)) && j->child == NULL;
}

/* first_inline: the first line goes right after a "- " already written. */
static void print_block(const cJSON *j, int indent, bool first_inline, FILE *f)
{
    const cJSON *it;
    bool first = true;
    cJSON_ArrayForEach(it, j)
    {
        if (!(first && first_inline))
            fprintf(f, "%*s", indent, "");
        first = false;
        if (cJSON_IsObject(j)) {
            const cJSON key = {.type = cJSON_String, .valuestring = it->string};
            scalar(&key, f);
            fputc(':', f);
        } else {
            fputc('-', f);
        }
        if (is_empty_container(it)) {
            fputs(cJSON_IsArray(it) ? " []\n" : " {}\n", f);
        } else if (cJSON_IsArray(j) && cJSON_IsObject(it)) {
            fputc(' ', f);
            print_block(it, indent + 2, true, f);
        } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            fputc('\n', f);
            print_block(it, indent + 2, false, f);
        } else {
            fputc(' ', f);
            scalar(it, f);
            fputc('\n', f);
        }
    }
}

void jb_yaml_print(const cJSON *j, int indent, FILE *f)
{
    print_block(j, indent, false, f);
}
