/*
 * From a JetStream publish outcome to the HTTP status the client gets
 * (docs/publisher.md, "Status codes"). Pure: table-tested directly.
 */
#include <nats/nats.h>
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
