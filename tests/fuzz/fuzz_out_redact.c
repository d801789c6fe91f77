/*
 * libFuzzer target for the helpers that handle text jetbridge did not write:
 * jb_redact_url (URLs and URL lists from manifests and NATS_URL), jb_escape_text
 * (stored values shown in tables) and jb_nkey_user_public (a seed file's content).
 * Properties: no crash or overflow; the redacted form never holds the text between
 * "://" and the last '@' of an authority (checked for a simple URL); the escaped
 * form has no byte below 0x20 and no 0x7f.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *r = jb_redact_url(s);
    if (r != NULL && jb_url_has_userinfo(r) && strstr(r, "redacted@") == NULL)
        abort(); /* userinfo left that is not ours */
    free(r);
    char *e = jb_escape_text((const char *)data, size);
    for (const char *p = e; p != NULL && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    free(e);
    char pub[JB_NKEY_PUBLIC_LEN + 1];
    (void)jb_nkey_user_public((const char *)data, size, pub);
    free(s);
    return 0;
}
