/* The outbound-trust suites' helpers (test_out_env.h). */
#include "test_out_env.h"

bool out_run_exe(const char *exe, const char *const *argv)
{
    jb_tproc *p = jb_tproc_start_exe(exe, argv, NULL, 0);
    int rc = p != NULL ? jb_tproc_wait(p, 60000) : -1;
    if (rc != 0 && p != NULL) {
        char *log = jb_tproc_log(p);
        fprintf(stderr, "%s failed (%d): %s\n", exe, rc, log ? log : "");
        free(log);
    }
    jb_tproc_stop(p);
    return rc == 0;
}

bool out_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

bool out_make_certs(const char *dir)
{
    char p[9][200];
    static const char *const names[] = {"ca.key",     "ca.pem",     "server.key",
                                        "server.csr", "server.pem", "san.ext",
                                        "client.key", "client.csr", "client.pem"};
    for (int i = 0; i < 9; i++)
        snprintf(p[i], sizeof(p[i]), "%s/%s", dir, names[i]);
    const char *a1[] = {"req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-keyout",
                        p[0],
                        "-out",
                        p[1],
                        "-days",
                        "2",
                        "-subj",
                        "/CN=jetbridge-test-ca",
                        NULL};
    const char *a2[] = {"req",  "-newkey", "rsa:2048", "-nodes",        "-keyout", p[2],
                        "-out", p[3],      "-subj",    "/CN=127.0.0.1", NULL};
    const char *a3[] = {
        "x509", "-req", "-in",   p[3], "-CA",      p[1], "-CAkey", p[0], "-CAcreateserial",
        "-out", p[4],   "-days", "2",  "-extfile", p[5], NULL};
    const char *a4[] = {"req",  "-newkey", "rsa:2048", "-nodes",        "-keyout", p[6],
                        "-out", p[7],      "-subj",    "/CN=jetbridge", NULL};
    const char *a5[] = {
        "x509", "-req", "-in",   p[7], "-CA", p[1], "-CAkey", p[0], "-CAcreateserial",
        "-out", p[8],   "-days", "2",  NULL};
    return out_write_file(p[5], "subjectAltName=IP:127.0.0.1\n") && out_run_exe(OUT_OPENSSL, a1) &&
           out_run_exe(OUT_OPENSSL, a2) && out_run_exe(OUT_OPENSSL, a3) &&
           out_run_exe(OUT_OPENSSL, a4) && out_run_exe(OUT_OPENSSL, a5);
}

bool peer_start(peer *pe, const char *dir, const char *name, const char *const *extra)
{
    pe->port = jb_free_port();
    snprintf(pe->log, sizeof(pe->log), "%s/%s.log", dir, name);
    char port[16];
    snprintf(port, sizeof(port), "%d", pe->port);
    const char *argv[24] = {PEER, "--port", port, "--log", pe->log};
    size_t n = 5;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pe->p = jb_tproc_start_exe(PYTHON, argv, NULL, pe->port);
    return pe->p != NULL;
}

cJSON *peer_requests(const peer *pe)
{
    cJSON *arr = cJSON_CreateArray();
    FILE *f = fopen(pe->log, "r");
    char line[16384];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        cJSON *j = cJSON_Parse(line);
        if (j != NULL)
            cJSON_AddItemToArray(arr, j);
    }
    if (f != NULL)
        fclose(f);
    return arr;
}

cJSON *peer_wait(const peer *pe, int n)
{
    cJSON *arr = NULL;
    for (int i = 0; i < 450; i++) {
        cJSON_Delete(arr);
        arr = peer_requests(pe);
        if (cJSON_GetArraySize(arr) >= n)
            break;
        jb_sleep_ms(200);
    }
    return arr;
}

const char *hdr_of(const cJSON *req, const char *name)
{
    const cJSON *h = cJSON_GetObjectItem(cJSON_GetObjectItem(req, "headers"), name);
    return cJSON_IsString(h) ? h->valuestring : "";
}
