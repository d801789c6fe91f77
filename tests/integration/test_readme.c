/*
 * The README cannot rot: this suite runs the README's own commands (the blocks
 * marked <!-- readme-e2e:NAME -->) against `jetbridge run` with the example
 * subscriptions and the example sink, and checks that the sink received the events,
 * that `jetbridge stats` shows the subscription, that the dead letter is listed and
 * that its replay succeeds once the sink is fixed. As for a new user, no jetbridge
 * variable is set: `run` starts its own nats-server (NATS_URL unset) with its store in
 * ./.jetbridge of a scratch working directory, and the tour's commands, run in that
 * same directory, find it there. Only ports and the binary's path are substituted.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatcher/jb_disp.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

static jb_tproc *sink, *run;
static int ingress_port, metrics_port, sink_port;
static char subs_dir[256], work_dir[256];

/* Whatever the test's own environment holds, the tour runs without these. */
#define UNSET_JB_ENV "NATS_URL", "METRICS_ADDR", "DATA_DIR", "INGRESS_PORT", "APP_LOG_FORMAT"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        if (len != NULL)
            *len = (size_t)n;
    }
    return buf;
}

/* Replaces every occurrence of from with to; returns a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = s; (p = strstr(p, from)) != NULL; p += fl)
        n++;
    char *out = malloc(strlen(s) + n * (tl + 1) + 1);
    char *o = out;
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (q == NULL) {
            memcpy(o, p, strlen(p) + 1);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    return out;
}

/* The shell block after the marker, with ports and paths of this test. */
static char *readme_block(const char *name)
{
    char *readme = read_file(JB_SOURCE_DIR "/README.md", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(readme);
    char marker[128];
    snprintf(marker, sizeof(marker), "<!-- readme-e2e:%s -->", name);
    char *m = strstr(readme, marker);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    char *start = strstr(m, "```sh\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(start);
    start += 6;
    char *end = strstr(start, "```");
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    *end = '\0';
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ingress_port);
    char *a = replace_all(start, "127.0.0.1:8080", addr);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", sink_port);
    char *a2 = replace_all(a, "127.0.0.1:8081", addr);
    char *b = replace_all(a2, "build/release/jetbridge", JB_BINARY);
    free(readme);
    free(a);
    free(a2);
    return b;
}

/* Runs a README block with sh in the working directory of `run`; returns its
 * stdout+stderr. */
static char *sh(const char *block)
{
    size_t n = strlen(block) + strlen(work_dir) + 16;
    char *script = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(script);
    snprintf(script, n, "cd '%s'\n%s", work_dir, block);
    const char *argv[] = {"-ec", script, NULL};
    const char *env[] = {UNSET_JB_ENV, NULL};
    jb_tproc *p = jb_tproc_start_exe("/bin/sh", argv, env, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int rc = jb_tproc_wait(p, 30000);
    char *log = jb_tproc_log(p);
    if (rc != 0)
        fprintf(stderr, "README block failed (%d):\n%s\n%s\n", rc, script, log);
    CU_ASSERT_EQUAL(rc, 0);
    jb_tproc_stop(p);
    free(script);
    return log;
}

static bool sink_saw(const char *needle, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        char *log = jb_tproc_log(sink);
        bool found = log != NULL && strstr(log, needle) != NULL;
        free(log);
        if (found)
            return true;
        jb_sleep_ms(100);
    }
    return false;
}

/* Copies the example manifests with the sink's port in place of 8081. */
static void copy_examples(void)
{
    snprintf(subs_dir, sizeof(subs_dir), "/tmp/jb-readme-subs-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(subs_dir));
    DIR *d = opendir(JB_SOURCE_DIR "/examples/subscriptions");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", sink_port);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char src[512], dst[512];
        snprintf(src, sizeof(src), "%s/examples/subscriptions/%s", JB_SOURCE_DIR, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", subs_dir, e->d_name);
        char *text = read_file(src, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        char *fixed = replace_all(text, "127.0.0.1:8081", addr);
        FILE *f = fopen(dst, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(fixed, f);
        fclose(f);
        free(text);
        free(fixed);
    }
    closedir(d);
}

static int setup(void)
{
    ingress_port = jb_free_port();
    metrics_port = jb_free_port();
    sink_port = jb_free_port();
    snprintf(work_dir, sizeof(work_dir), "/tmp/jb-readme-work-XXXXXX");
    if (mkdtemp(work_dir) == NULL)
        return 1;
    char sink_bin[512], sport[16];
    if (!jb_built_program("sink", sink_bin, sizeof(sink_bin)))
        return 1;
    snprintf(sport, sizeof(sport), "%d", sink_port);
    const char *sargv[] = {"--port", sport, NULL};
    sink = jb_tproc_start_exe(sink_bin, sargv, NULL, sink_port);
    return sink == NULL;
}

static int teardown(void)
{
    jb_tproc_stop(run);
    jb_tproc_stop(sink);
    if (subs_dir[0] != '\0')
        jb_rm_tree(subs_dir);
    if (work_dir[0] != '\0')
        jb_rm_tree(work_dir);
    return 0;
}

static void test_run_starts_with_examples(void)
{
    copy_examples();
    /* `make run` uses ports 8080 and 9090; this run takes free ones, and leaves the
     * admin host empty as the default does (loopback, since run starts its own NATS).
     * The CLI finds both from ./.jetbridge. */
    char ingress[32], metrics[32], cmd[1024];
    snprintf(ingress, sizeof(ingress), "INGRESS_PORT=%d", ingress_port);
    snprintf(metrics, sizeof(metrics), "METRICS_ADDR=:%d", metrics_port);
    snprintf(cmd, sizeof(cmd), "cd '%s' && exec '%s' run --subscriptions '%s'", work_dir, JB_BINARY,
             subs_dir);
    const char *argv[] = {"-c", cmd, NULL};
    const char *env[] = {"NATS_URL", "DATA_DIR", "APP_LOG_FORMAT", ingress, metrics, NULL};
    run = jb_tproc_start_exe("/bin/sh", argv, env, ingress_port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    /* The banner names where to publish and the example subscription. */
    bool banner = false;
    for (int i = 0; i < 150 && !banner; i++) {
        char *log = jb_tproc_log(run);
        banner = log != NULL && strstr(log, "subscription default/order-processor") != NULL;
        free(log);
        if (!banner)
            jb_sleep_ms(100);
    }
    CU_ASSERT_TRUE(banner);
    /* Logs spell a subscription ns/name, as the CLI does (never the KV key). */
    char *log = jb_tproc_log(run);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"subscription\":\"default/order-processor\""));
    CU_ASSERT_PTR_NULL(strstr(log, "default.order-processor"));
    free(log);
}

static void test_publish_three_ways(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    static const struct {
        const char *block, *status, *sink_sees;
    } cases[] = {
        {"publish-binary", "HTTP/1.1 204", "\"orderId\":\"42\""},
        {"publish-structured", "HTTP/1.1 204", "\"orderId\":\"43\""},
        {"publish-legacy", "HTTP/1.1 200", "\"orderId\":\"44\""},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *script = readme_block(cases[i].block);
        char *out = sh(script);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].status));
        CU_ASSERT_TRUE(sink_saw(cases[i].sink_sees, 15000));
        free(out);
        free(script);
    }
}

static void test_stats_shows_deliveries(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("stats");
    char *out = sh(script);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "default/order-processor"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "order.created.v1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "publisher:"));
    free(out);
    free(script);
}

static void test_dead_letter_listed(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("dead-letter");
    bool listed = false;
    for (int attempt = 0; attempt < 10 && !listed; attempt++) {
        char *out = sh(script);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "HTTP/1.1 204"));
        listed = strstr(out, "dead-letter-demo") != NULL && strstr(out, "400") != NULL;
        free(out);
        if (!listed)
            jb_sleep_ms(1000);
    }
    CU_ASSERT_TRUE(listed);
    free(script);
    /* run's log names the subscription and the event, not only the consumer hash. */
    char *rlog = jb_tproc_log(run);
    CU_ASSERT_PTR_NOT_NULL(strstr(rlog, "\"msg\":\"dead letter\",\"subscription\":\"default/"
                                        "dead-letter-demo\",\"id\":\"8d3c4a8e-8d52-4f7f-9f8e-"
                                        "2b7c1f000003\""));
    free(rlog);
    /* stats names the last error of that subscription: the sink's 400. */
    script = readme_block("stats");
    char *out = sh(script);
    const char *row = strstr(out, "default/dead-letter-demo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    const char *eol = strchr(row, '\n');
    const char *err400 = strstr(row, "HTTP 400, ");
    CU_ASSERT_TRUE(err400 != NULL && (eol == NULL || err400 < eol));
    free(out);
    free(script);
}

/* The README fixes the sink and replays: the dead letter reaches the sink and
 * leaves the dead-letter stream. */
static void test_replay_after_fix(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("replay");
    char *out = sh(script);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "replayed 1, failed 0"));
    CU_ASSERT_TRUE(sink_saw("-> 200 binary type=payment.failed.v1", 15000));
    free(out);
    free(script);
    /* Nothing left for that subscription: a second replay says so. */
    const char *argv[] = {"-c", NULL, NULL};
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' dlq replay --subscription dead-letter-demo",
             work_dir, JB_BINARY);
    argv[1] = cmd;
    const char *env[] = {UNSET_JB_ENV, NULL};
    jb_tproc *p = jb_tproc_start_exe("/bin/sh", argv, env, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 30000), 0);
    char *log = jb_tproc_log(p);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(log, "nothing to replay: no dead letter of subscription default/dead-letter-demo"));
    free(log);
    jb_tproc_stop(p);
}

/* The README's structured event with the wrong content type (application/json):
 * a 400 that explains binary mode and names the right content type. */
static void test_structured_as_json_explained(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("publish-structured");
    char *wrong = replace_all(script, "application/cloudevents+json", "application/json");
    char *out = sh(wrong);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "HTTP/1.1 400"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "binary mode"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "content-type: application/cloudevents+json"));
    free(out);
    free(wrong);
    free(script);
}

/* ------------------------------------------------------------- metrics */

#define MAX_FAMILIES 64

/* A family as /metrics shows it, or as a row of docs/operations.md's table:
 * its name and its label names, sorted, comma-joined ("" for none). */
typedef struct family {
    char name[96];
    char labels[512];
    bool seen_series;
} family;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts a comma-separated list in place (labels compare as sets). */
static void sort_list(char *list)
{
    char *parts[32], copy[512];
    size_t n = 0;
    snprintf(copy, sizeof(copy), "%s", list);
    for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t != NULL && n < 32;
         t = strtok_r(NULL, ", ", &save))
        parts[n++] = t;
    qsort(parts, n, sizeof(parts[0]), cmp_str);
    /* The sorted list is a permutation of the one read, so it fits where that was. */
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        if (i > 0)
            list[used++] = ',';
        memcpy(list + used, parts[i], len);
        used += len;
    }
    list[used] = '\0';
}

static family *find_family(family *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

/* Families of the running `run`'s /metrics, with the label names of their series
 * (histograms by their base name, without "le"). */
static size_t scrape_families(family *out)
{
    char *body = NULL;
    CU_ASSERT_EQUAL_FATAL(
        jb_http(metrics_port, "GET", "/metrics", NULL, NULL, 0, &body, NULL, NULL), 200);
    size_t n = 0;
    for (char *save = NULL, *line = strtok_r(body, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char name[96];
        if (strncmp(line, "# TYPE ", 7) == 0) {
            size_t len = strcspn(line + 7, " ");
            snprintf(name, sizeof(name), "%.*s", (int)len, line + 7);
            if (len > 0 && n < MAX_FAMILIES && find_family(out, n, name) == NULL)
                snprintf(out[n++].name, sizeof(out[0].name), "%s", name);
            continue;
        }
        if (line[0] == '#')
            continue;
        size_t nl = strcspn(line, "{ ");
        snprintf(name, sizeof(name), "%.*s", (int)nl, line);
        family *f = find_family(out, n, name);
        for (const char *suffix = "_bucket"; f == NULL && suffix != NULL;) {
            size_t sl = strlen(suffix);
            if (nl > sl && strcmp(name + nl - sl, suffix) == 0) {
                name[nl - sl] = '\0';
                f = find_family(out, n, name);
            }
            suffix = strcmp(suffix, "_bucket") == 0 ? "_sum"
                     : strcmp(suffix, "_sum") == 0  ? "_count"
                                                    : NULL;
            if (f == NULL)
                snprintf(name, sizeof(name), "%.*s", (int)nl, line);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        char labels[512] = "";
        if (line[nl] == '{') {
            /* name="value",... : label names only, without le. */
            const char *p = line + nl + 1;
            while (*p != '\0' && *p != '}') {
                size_t kl = strcspn(p, "=");
                if (!(kl == 2 && strncmp(p, "le", 2) == 0))
                    snprintf(labels + strlen(labels), sizeof(labels) - strlen(labels), "%s%.*s",
                             labels[0] ? "," : "", (int)kl, p);
                p += kl + 2; /* =" */
                while (*p != '\0' && *p != '"')
                    p += *p == '\\' ? 2 : 1;
                p += *p == '"';
                p += *p == ',';
            }
        }
        sort_list(labels);
        f->seen_series = true;
        snprintf(f->labels, sizeof(f->labels), "%s", labels);
    }
    free(body);
    return n;
}

/* The metrics table of docs/operations.md: | `name` | type | labels | meaning |, where
 * "same" repeats the labels of the row above. */
static size_t doc_families(family *out)
{
    char *doc = read_file(JB_SOURCE_DIR "/docs/operations.md", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    size_t n = 0;
    char prev[512] = "";
    for (char *save = NULL, *line = strtok_r(doc, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "| `", 3) != 0 || n == MAX_FAMILIES)
            continue;
        char *name_end = strchr(line + 3, '`');
        char *cells[4] = {0};
        size_t nc = 0;
        for (char *p = name_end; p != NULL && *p != '\0' && nc < 4; p++)
            if (*p == '|')
                cells[nc++] = p + 1;
        if (name_end == NULL || nc < 3 ||
            (strncmp(line + 3, "eventing_", 9) != 0 && strncmp(line + 3, "jetbridge_", 10) != 0))
            continue;
        family *f = &out[n++];
        snprintf(f->name, sizeof(f->name), "%.*s", (int)(name_end - line - 3), line + 3);
        char labels[512];
        snprintf(labels, sizeof(labels), "%.*s", (int)(cells[2] - cells[1] - 1), cells[1]);
        char *t = labels;
        while (*t == ' ')
            t++;
        memmove(labels, t, strlen(t) + 1);
        for (size_t l = strlen(labels); l > 0 && labels[l - 1] == ' ';)
            labels[--l] = '\0';
        if (strcmp(labels, "same") == 0)
            snprintf(labels, sizeof(labels), "%s", prev);
        sort_list(labels);
        snprintf(f->labels, sizeof(f->labels), "%s", labels);
        snprintf(prev, sizeof(prev), "%s", labels);
    }
    free(doc);
    return n;
}

/* Every counter the Grafana dashboard rates has a series (at 0) before any event:
 * "no data" panels look broken to a newcomer. Checked right after start. */
static void test_dashboard_counters_from_start(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    static const char *const counters[] = {
        "eventing_epp_requests_total", "jetbridge_publisher_rejected_total",
        "eventing_ec_nats_delivery_per_subscription_total", "jetbridge_dispatcher_retries_total",
        "jetbridge_dispatcher_dead_letters_total"};
    char *dash = read_file(JB_SOURCE_DIR "/examples/grafana/jetbridge-dashboard.json", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dash);
    bool all = false;
    for (int attempt = 0; attempt < 150 && !all; attempt++) {
        family f[MAX_FAMILIES] = {0};
        size_t n = scrape_families(f);
        all = true;
        for (size_t i = 0; i < JB_CASES_N(counters); i++) {
            CU_ASSERT_PTR_NOT_NULL(strstr(dash, counters[i])); /* the dashboard uses it */
            family *fam = find_family(f, n, counters[i]);
            all = all && fam != NULL && fam->seen_series;
            if (attempt == 149 && (fam == NULL || !fam->seen_series))
                fprintf(stderr, "no series yet: %s\n", counters[i]);
        }
        if (!all)
            jb_sleep_ms(100);
    }
    CU_ASSERT_TRUE(all);
    free(dash);
}

/* docs/operations.md's metrics table lists exactly the families /metrics exports,
 * with exactly their labels. Runs after the tour, when every family has series. */
static void test_metrics_match_docs(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    family got[MAX_FAMILIES] = {0}, doc[MAX_FAMILIES] = {0};
    size_t ng = scrape_families(got), nd = doc_families(doc);
    CU_ASSERT_TRUE(nd > 10);
    for (size_t i = 0; i < ng; i++) {
        family *d = find_family(doc, nd, got[i].name);
        if (d == NULL)
            fprintf(stderr, "exported, not in docs/operations.md: %s\n", got[i].name);
        CU_ASSERT_PTR_NOT_NULL(d);
        if (d != NULL && got[i].seen_series && strcmp(d->labels, got[i].labels) != 0)
            fprintf(stderr, "%s: docs say labels \"%s\", /metrics has \"%s\"\n", got[i].name,
                    d->labels, got[i].labels);
        CU_ASSERT_TRUE(d == NULL || !got[i].seen_series || strcmp(d->labels, got[i].labels) == 0);
    }
    for (size_t i = 0; i < nd; i++) {
        if (find_family(got, ng, doc[i].name) == NULL)
            fprintf(stderr, "in docs/operations.md, not exported: %s\n", doc[i].name);
        CU_ASSERT_PTR_NOT_NULL(find_family(got, ng, doc[i].name));
    }
}

/* examples/README.md's table of retried answers says what the dispatcher does. */
static void test_examples_readme_retry_table(void)
{
    char *doc = read_file(JB_SOURCE_DIR "/examples/README.md", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    const char *t = strstr(doc, "<!-- retried-codes -->");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    const char *retried = strstr(t, "| retried |");
    const char *dead = strstr(t, "| dead-lettered at once |");
    CU_ASSERT_PTR_NOT_NULL_FATAL(retried);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dead);
    static const struct {
        int code;
        jb_disp_verdict want;
    } cases[] = {{200, JB_DISP_ACK},   {204, JB_DISP_ACK},   {404, JB_DISP_RETRY},
                 {408, JB_DISP_RETRY}, {409, JB_DISP_RETRY}, {429, JB_DISP_RETRY},
                 {500, JB_DISP_RETRY}, {503, JB_DISP_RETRY}, {0, JB_DISP_RETRY},
                 {400, JB_DISP_DEAD},  {401, JB_DISP_DEAD},  {403, JB_DISP_DEAD},
                 {410, JB_DISP_DEAD},  {413, JB_DISP_DEAD},  {422, JB_DISP_DEAD}};
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        CU_ASSERT_EQUAL(jb_disp_verdict_of(cases[i].code), cases[i].want);
        char code[8];
        snprintf(code, sizeof(code), "%d", cases[i].code);
        /* A code named in the row of its verdict (2xx and 5xx rows name the class). */
        const char *line_start = cases[i].want == JB_DISP_RETRY  ? retried
                                 : cases[i].want == JB_DISP_DEAD ? dead
                                                                 : t;
        while (line_start > t && line_start[-1] != '\n')
            line_start--;
        const char *line_end = strchr(line_start, '\n');
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)(line_end - line_start), line_start);
        bool named = strstr(line, code) != NULL ||
                     (cases[i].code >= 500 && strstr(line, "5xx") != NULL) ||
                     (cases[i].code == 0 && strstr(line, "transport error") != NULL) ||
                     (cases[i].want == JB_DISP_ACK && strstr(doc, "| 2xx | delivered") != NULL);
        if (!named)
            fprintf(stderr, "examples/README.md does not place %d under its verdict\n",
                    cases[i].code);
        CU_ASSERT_TRUE(named);
    }
    free(doc);
}

/* Runs one CLI command in the tour's directory and environment; returns its exit
 * code, its output in *out. */
static int cli(const char *args, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s", work_dir, JB_BINARY, args);
    const char *argv[] = {"-c", cmd, NULL};
    const char *env[] = {UNSET_JB_ENV, NULL};
    jb_tproc *p = jb_tproc_start_exe("/bin/sh", argv, env, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int rc = jb_tproc_wait(p, 30000);
    *out = jb_tproc_log(p);
    jb_tproc_stop(p);
    return rc;
}

/* dlq purge: refuses to purge everything without --all; with a selector it deletes
 * what matches (NAME means default/NAME), and says so when nothing does. */
static void test_purge(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *out = NULL;
    CU_ASSERT_EQUAL(jb_http(sink_port, "POST", "/break", NULL, "", 0, NULL, NULL, NULL), 200);
    const char *hdr = "ce-specversion: 1.0\r\nce-type: payment.failed.v1\r\nce-source: myapp\r\n"
                      "ce-id: purge-me\r\n";
    CU_ASSERT_EQUAL(jb_http(ingress_port, "POST", "/publish", hdr, "x", 1, NULL, NULL, NULL), 204);
    bool listed = false;
    for (int i = 0; i < 100 && !listed; i++) {
        CU_ASSERT_EQUAL(cli("dlq list --subscription dead-letter-demo", &out), 0);
        listed = strstr(out, "purge-me") != NULL;
        free(out);
        if (!listed)
            jb_sleep_ms(200);
    }
    CU_ASSERT_TRUE_FATAL(listed);
    CU_ASSERT_EQUAL(cli("dlq purge", &out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "only with --all"));
    free(out);
    CU_ASSERT_EQUAL(cli("dlq purge --subscription nobody", &out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing to purge: no dead letter of subscription "
                                       "default/nobody"));
    free(out);
    CU_ASSERT_EQUAL(cli("dlq purge --subscription dead-letter-demo", &out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "purged 1, failed 0"));
    free(out);
    CU_ASSERT_EQUAL(cli("dlq list --subscription default/dead-letter-demo", &out), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "purge-me"));
    free(out);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"run starts with the example subscriptions", test_run_starts_with_examples},
        {"dashboard counters exist at 0 from the start", test_dashboard_counters_from_start},
        {"README publish commands reach the example sink", test_publish_three_ways},
        {"README stats command shows the subscription", test_stats_shows_deliveries},
        {"README dead-letter command lists the dead letter", test_dead_letter_listed},
        {"README replay after fixing the sink delivers the dead letter", test_replay_after_fix},
        {"dlq purge with a selector, --all for everything", test_purge},
        {"a structured event sent as application/json: 400 explains",
         test_structured_as_json_explained},
        {"docs/operations.md's metrics table matches /metrics", test_metrics_match_docs},
        {"examples/README.md's retry table matches the dispatcher",
         test_examples_readme_retry_table},
    };
    return jb_cunit_main("readme", setup, teardown, cases, JB_CASES_N(cases));
}
