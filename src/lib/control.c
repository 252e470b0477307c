/* control.c: the public calls of kpa/process.h on a kpa_control, each
 * passed to the controller's backend (control_ops in control-priv.h): the
 * local one in process.c, the remote one, a connection to kpa-execd, in
 * client.c. Nothing here knows which it is. The backends leave the
 * details of a failure in the controller (kpa_control_error()); each call
 * here clears them first and hands them to its caller's kpa_error. */
#include "config.h"

#include <string.h>

#include "kpa/process.h"
#include "control-priv.h"
#include "types.h"
#include "util.h"

int kpa_control_error_out(kpa_control *ctl, int r, const char *what, kpa_error *err)
{
        if (r >= 0)
                return r;
        if (ctl->last_error.code == 0) /* the backend gave only the errno */
                kpa_error_set_errno(&ctl->last_error, -r, "%s", what);
        if (err && err != &ctl->last_error)
                *err = ctl->last_error;
        return r;
}

int kpa_process_start(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                      const kpa_start_options *opts, kpa_token *out_token, kpa_error *err)
{
        kpa_start_options full;
        kpa_start_options_init(&full);
        kpa_error_clear(&ctl->last_error);
        _cleanup_(kpa_start_arrays_free) kpa_start_arrays copies = {NULL, NULL};
        if (opts) {
                int r = kpa_start_options_in(&full, opts, &copies, &ctl->last_error);
                if (r < 0)
                        return kpa_control_error_out(ctl, r, "start", err);
        }
        kpa_token token = {{0}};
        if (!out_token)
                out_token = &token;
        int r = ctl->ops->start(ctl, pkg_id, run_config_id, &full, out_token);
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        /* a start that failed in the sandbox says why in its context */
        if (r < 0 && ctl->last_error.code == 0 && !kpa_token_is_null(out_token) &&
            ctl->ops->get_state(ctl, out_token, &ctx) == 0 && ctx.message[0])
                kpa_error_set(&ctl->last_error, ctx.exit_reason ? ctx.exit_reason : -r,
                              "%s: %s%s%s", pkg_id, ctx.message, ctx.exit_reason ? ": " : "",
                              ctx.exit_reason ? strerror(ctx.exit_reason) : "");
        return kpa_control_error_out(ctl, r, "start", err);
}

int kpa_process_stop(kpa_control *ctl, const kpa_token *token, kpa_stop_policy policy,
                     kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(ctl, ctl->ops->stop(ctl, token, policy), "stop", err);
}

int kpa_process_get_state(kpa_control *ctl, const kpa_token *token, kpa_process_context *out,
                          kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        int r = kpa_struct_check(out, sizeof(kpa_process_context), "kpa_process_context",
                                 &ctl->last_error);
        if (r < 0)
                return kpa_control_error_out(ctl, r, "state", err);
        kpa_process_context full;
        kpa_process_context_init(&full);
        r = ctl->ops->get_state(ctl, token, &full);
        kpa_struct_out(out, &full);
        return kpa_control_error_out(ctl, r, "state", err);
}

int kpa_process_wait(kpa_control *ctl, const kpa_token *token, int timeout_ms,
                     kpa_process_context *out, kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        int r = kpa_struct_check(out, sizeof(kpa_process_context), "kpa_process_context",
                                 &ctl->last_error);
        if (r < 0)
                return kpa_control_error_out(ctl, r, "wait", err);
        kpa_process_context full;
        kpa_process_context_init(&full);
        r = ctl->ops->wait(ctl, token, timeout_ms, &full);
        kpa_struct_out(out, &full);
        return kpa_control_error_out(ctl, r, "wait", err);
}

int kpa_process_list(kpa_control *ctl, kpa_token **out, size_t *n, kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(ctl, ctl->ops->list(ctl, out, n), "list", err);
}

int kpa_process_list_contexts(kpa_control *ctl, kpa_token **tokens, kpa_process_context ***ctxs,
                              size_t *n, kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        *tokens = NULL;
        *ctxs = NULL;
        *n = 0;
        _cleanup_free_ kpa_process_context *flat = NULL;
        int r = ctl->ops->list_contexts(ctl, tokens, &flat, n);
        if (r < 0)
                return kpa_control_error_out(ctl, r, "list", err);
        /* the library's own structs, whole, of this version: N pointers and
         * a NULL, then the contexts, in one block for one free() */
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): the pointers, then the elements */
        kpa_process_context **v = kpa_xcalloc(1, (*n + 1) * sizeof(*v) + *n * sizeof(**v));
        kpa_process_context *elements = (kpa_process_context *)(v + *n + 1);
        for (size_t i = 0; i < *n; i++) {
                elements[i] = flat[i];
                elements[i].struct_size = sizeof(elements[i]);
                v[i] = &elements[i];
        }
        *ctxs = v;
        return 0;
}

int kpa_process_stop_all(kpa_control *ctl, kpa_stop_policy policy, size_t *stopped,
                         kpa_error *err)
{
        size_t ignored;
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(
                ctl, ctl->ops->stop_all(ctl, policy, stopped ? stopped : &ignored), "stop all",
                err);
}

int kpa_process_open_log(kpa_control *ctl, const kpa_token *token, bool rotated, int *out_fd,
                         kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        *out_fd = -1;
        return kpa_control_error_out(ctl, ctl->ops->open_log(ctl, token, rotated, out_fd), "log",
                                     err);
}

/* APP_ID[/RUNCONFIG] split into BUF; false when NAME is not that shape
 * (the ids' own rules are the manifest's: this only keeps out what can
 * never match). */
static bool split_name(const char *name, char *buf, size_t len, const char **app,
                       const char **rc)
{
        size_t n = strlen(name);
        if (n >= len)
                return false;
        memcpy(buf, name, n + 1);
        char *slash = strchr(buf, '/');
        *rc = NULL;
        if (slash) {
                *slash = '\0';
                *rc = slash + 1;
                if (!**rc || strchr(*rc, '/'))
                        return false;
        }
        *app = buf;
        if (!**app || strlen(*app) > 128 || (*rc && strlen(*rc) > 128))
                return false;
        for (const char *c = *app; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
                        return false;
        return true;
}

static int process_find(kpa_control *ctl, const char *name, kpa_token **out, size_t *n);

int kpa_process_find(kpa_control *ctl, const char *name, kpa_token **out, size_t *n,
                     kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(ctl, process_find(ctl, name, out, n), "find", err);
}

static int process_find(kpa_control *ctl, const char *name, kpa_token **out, size_t *n)
{
        kpa_error_clear(&ctl->last_error);
        *out = NULL;
        *n = 0;
        kpa_token t;
        if (kpa_token_from_string(name, &t) == 0) {
                *out = kpa_xmalloc(sizeof(t));
                **out = t;
                *n = 1;
                return 0;
        }
        char buf[260];
        const char *app, *rc;
        if (!split_name(name, buf, sizeof(buf), &app, &rc))
                return kpa_error_set(&ctl->last_error, EINVAL,
                                     "\"%s\" is neither a token (32 lowercase hexadecimal "
                                     "characters) nor APP_ID[/RUNCONFIG]",
                                     name);
        return ctl->ops->find(ctl, app, rc, out, n);
}

static int package_notice(kpa_control *ctl, const char *pkg_id, bool stop, bool restart,
                          kpa_package_notice *out)
{
        int r;
        if (out && (r = kpa_struct_check(out, sizeof(*out), "kpa_package_notice",
                                         &ctl->last_error)) < 0)
                return r;
        kpa_package_notice full;
        kpa_package_notice_init(&full);
        r = ctl->ops->package(ctl, pkg_id, stop, restart, &full);
        if (out)
                kpa_struct_out(out, &full);
        return r;
}

int kpa_control_package_installed(kpa_control *ctl, const char *pkg_id, bool restart,
                                  kpa_package_notice *out, kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(ctl, package_notice(ctl, pkg_id, false, restart, out),
                                     pkg_id, err);
}

int kpa_control_package_stop(kpa_control *ctl, const char *pkg_id, kpa_package_notice *out,
                             kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(ctl, package_notice(ctl, pkg_id, true, false, out), pkg_id,
                                     err);
}

int kpa_control_get_fd(kpa_control *ctl)
{
        return ctl->ops->get_fd(ctl);
}

int kpa_control_dispatch(kpa_control *ctl, kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(ctl, ctl->ops->dispatch(ctl), "dispatch", err);
}

void kpa_control_close(kpa_control *ctl)
{
        if (ctl)
                ctl->ops->close(ctl);
}
