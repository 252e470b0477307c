/* types.c: the small value helpers of kpa/process.h that every layer uses:
 * the names of states and exit statuses, tokens as text, and the defaults of
 * start options. A leaf: it calls nothing else of libkpa, so that the
 * protocol, the client and the controller can all use it. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kpa/process.h"
#include "util.h"

const char *kpa_process_state_name(kpa_process_state s)
{
        static const char *const names[] = {"None",   "Created",  "Prepared",   "Running",
                                            "Failed", "Finished", "NotExisting"};
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "Unknown";
}

const char *kpa_exit_status_name(kpa_exit_status s)
{
        static const char *const names[] = {"Uninitialized", "Unexpected", "Normal", "Terminated"};
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "Unknown";
}

void kpa_token_to_string(const kpa_token *t, char out[KPA_TOKEN_STRING_MAX])
{
        for (size_t i = 0; i < sizeof(t->bytes); i++)
                snprintf(out + 2 * i, 3, "%02x", t->bytes[i]);
}

int kpa_token_from_string(const char *s, kpa_token *out)
{
        if (!s || strlen(s) != 2 * sizeof(out->bytes))
                return -EINVAL;
        for (size_t i = 0; i < sizeof(out->bytes); i++) {
                unsigned v;
                char hex[3] = {s[2 * i], s[2 * i + 1], 0};
                if (!strchr("0123456789abcdef", hex[0]) || !strchr("0123456789abcdef", hex[1]) ||
                    sscanf(hex, "%02x", &v) != 1)
                        return -EINVAL;
                out->bytes[i] = (uint8_t)v;
        }
        return 0;
}

bool kpa_token_is_null(const kpa_token *t)
{
        static const kpa_token zero;
        return memcmp(t, &zero, sizeof(zero)) == 0;
}

void kpa_start_options_init(kpa_start_options *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->struct_size = sizeof(*opts);
        opts->uid = (uid_t)-1;
        opts->gid = (gid_t)-1;
        opts->stdin_fd = opts->stdout_fd = opts->stderr_fd = -1;
        opts->stop_timeout_ms = 10000;
}

void kpa_process_context_init(kpa_process_context *ctx)
{
        memset(ctx, 0, sizeof(*ctx));
        ctx->struct_size = sizeof(*ctx);
        ctx->owner = (uid_t)-1;
}

void kpa_package_notice_init(kpa_package_notice *notice)
{
        memset(notice, 0, sizeof(*notice));
        notice->struct_size = sizeof(*notice);
}
