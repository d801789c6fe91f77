/*
 * From a JetStream publish outcome to the HTTP status the client gets
 * (docs/publisher.md, "Status codes"). Pure: table-tested directly.
 */
#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>

#include "publisher/pub_internal.h"

int jb_pub_ack_status(int nats_status, int err_code, const char *text)
{
    switch ((natsStatus)nats_status) {
    case NATS_OK:
        return 204;
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
        return 504;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
        return 502;
    default:
        break;
    }
    /* JetStream API errors. 10077 is JSStreamStoreFailedF: with discard policy "new"
     * the server uses it for "maximum bytes/messages exceeded", that is, the stream
     * is full. */
    if (err_code == 10077)
        return 507;
    if (text != NULL &&
        (strstr(text, "no space left") != NULL || strstr(text, "maximum bytes exceeded") != NULL ||
         strstr(text, "insufficient resources") != NULL))
        return 507;
    if (err_code == 10039 || err_code == 10023) /* JetStream not enabled / resources */
        return 503;
    return 500;
}

/* A positive ack is {"stream":..,"seq":..[,"duplicate":true][,"domain":..]}; only
 * an error carries "error". The common case is decided by two scans, without a
 * JSON parser or an allocation. */
static bool has(const char *data, size_t len, const char *needle)
{
    return memmem(data, len, needle, strlen(needle)) != NULL;
}

int jb_pub_ack_parse(const char *data, size_t len, bool no_responders, char **text)
{
    *text = NULL;
    if (no_responders) {
        *text = strdup(natsStatus_GetText(NATS_NO_RESPONDERS));
        return jb_pub_ack_status(NATS_NO_RESPONDERS, 0, NULL);
    }
    if (data == NULL)
        len = 0;
    if (len > 0 && data[0] == '{' && !has(data, len, "\"error\"") && has(data, len, "\"seq\""))
        return 204;
    const char *bad = "invalid JetStream ack";
    cJSON *root = len > 0 ? cJSON_ParseWithLength(data, len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    int status;
    if (cJSON_IsObject(e)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "err_code");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(e, "description");
        const char *d = cJSON_IsString(desc) ? desc->valuestring : natsStatus_GetText(NATS_ERR);
        int ec = cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1e9
                     ? (int)code->valuedouble
                     : 0;
        status = jb_pub_ack_status(NATS_ERR, ec, d);
        *text = strdup(d);
    } else if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "seq"))) {
        status = 204; /* "error" was part of a value, the stream name for one */
    } else {
        status = jb_pub_ack_status(NATS_ERR, 0, bad);
        *text = strdup(bad);
    }
    cJSON_Delete(root);
    return status;
}
