/* types.c: the small value helpers of kpa/process.h that every layer uses:
 * the names of states and exit statuses, tokens as text, and the defaults of
 * start options and how a caller's are read. A leaf: it calls nothing else of libkpa, so that the
 * protocol, the client and the controller can all use it. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kpa/process.h"
#include "types.h"
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
        opts->handle_size = sizeof(kpa_user_handle);
        opts->bind_size = sizeof(kpa_start_bind);
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

/* ---- the caller-made arrays of kpa_start_options ---- */

/* The first layouts of their elements: a caller whose kpa_start_options
 * ends before handle_size was built against these. */
struct user_handle_0 {
        const char *name;
        int fd;
};
struct start_bind_0 {
        const char *host;
        const char *inside;
        bool writable;
};

/* N elements of SIZE bytes at SRC as elements of FULL bytes: SRC itself
 * when the sizes agree, else a copy in *COPY (each element DEFAULTS, then
 * the part SIZE covers). */
static const void *array_in(const void *src, size_t n, size_t size, size_t full,
                            const void *defaults, void **copy)
{
        if (size == full || n == 0)
                return src;
        char *dst = kpa_xcalloc(n, full);
        for (size_t i = 0; i < n; i++) {
                memcpy(dst + i * full, defaults, full);
                memcpy(dst + i * full, (const char *)src + i * size, size);
        }
        *copy = dst;
        return dst;
}

static int element_size_check(size_t size, size_t first, size_t full, const char *field,
                              kpa_error *err)
{
        if (size < first)
                return kpa_error_set(err, EINVAL,
                                     "kpa_start_options.%s is %zu, smaller than any element "
                                     "(set it with kpa_start_options_init() first)",
                                     field, size);
        if (size > full)
                return kpa_error_set(err, EINVAL,
                                     "kpa_start_options.%s is %zu, larger than the %zu this "
                                     "libkpa knows (the caller was built against newer kpa "
                                     "headers)",
                                     field, size, full);
        return 0;
}

int kpa_start_options_in(kpa_start_options *full, const kpa_start_options *opts,
                         kpa_start_arrays *copies, kpa_error *err)
{
        int r = kpa_struct_in(full, opts, sizeof(*full), "kpa_start_options", err);
        if (r < 0)
                return r;
        if (opts->struct_size < offsetof(kpa_start_options, bind_size) + sizeof(size_t)) {
                full->handle_size = sizeof(struct user_handle_0);
                full->bind_size = sizeof(struct start_bind_0);
        }
        if ((r = element_size_check(full->handle_size, sizeof(struct user_handle_0),
                                    sizeof(kpa_user_handle), "handle_size", err)) < 0 ||
            (r = element_size_check(full->bind_size, sizeof(struct start_bind_0),
                                    sizeof(kpa_start_bind), "bind_size", err)) < 0)
                return r;
        static const kpa_user_handle handle_defaults = {.name = NULL, .fd = -1};
        static const kpa_start_bind bind_defaults = {.host = NULL};
        full->handles =
                array_in(full->handles, full->n_handles, full->handle_size, sizeof(kpa_user_handle),
                         &handle_defaults, (void **)&copies->handles);
        full->binds = array_in(full->binds, full->n_binds, full->bind_size, sizeof(kpa_start_bind),
                               &bind_defaults, (void **)&copies->binds);
        full->handle_size = sizeof(kpa_user_handle);
        full->bind_size = sizeof(kpa_start_bind);
        return 0;
}

void kpa_start_arrays_free(kpa_start_arrays *copies)
{
        free(copies->handles);
        free(copies->binds);
        copies->handles = NULL;
        copies->binds = NULL;
}
