/* task.c: the task API of kpa/task.h. A task collects what a start needs
 * (executable, arguments, environment, handles, stdio, flags) and then starts
 * through the same path as kpa_process_start() (kpa_control_launch). It owns
 * the fds handed to it until it is put. Its steps leave their errors in
 * the controller (kpa_control_error), and each public call hands them to
 * its caller's kpa_error. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "handles.h"
#include "kpa/handle.h"
#include "kpa/task.h"
#include "process-internal.h"
#include "util.h"

struct kpa_task {
        kpa_control *ctl;
        kpa_manifest *manifest;
        kpa_run_config rc;   /* synthesized: the path, the args; no manifest env */
        char **env;          /* NULL-terminated */
        size_t n_env;
        kpa_user_handle *handles; /* names and fds owned */
        size_t n_handles;
        int stdio[3];
        unsigned flags;
        bool started;
        kpa_token token;
};

static char **strv_copy(const char *const *v, size_t *n)
{
        size_t count = 0;
        while (v && v[count])
                count++;
        char **copy = kpa_xcalloc(count + 1, sizeof(char *));
        for (size_t i = 0; i < count; i++)
                copy[i] = kpa_xstrdup(v[i]);
        if (n)
                *n = count;
        return copy;
}

/* "/APP_ID/bin/NAME" -> the application id and the bin component's path. */
static int split_path(kpa_control *ctl, const char *path, char **app_id, const char **rest)
{
        if (!path || path[0] != '/' || !strchr(path + 1, '/'))
                return kpa_error_set(kpa_control_error(ctl), EINVAL,
                                     "task path \"%s\" is not of the form /APP_ID/bin/NAME",
                                     path ? path : "");
        const char *slash = strchr(path + 1, '/');
        *app_id = kpa_xstrndup(path + 1, (size_t)(slash - path - 1));
        *rest = slash + 1;
        return 0;
}

static int task_create(kpa_control *ctl, const char *path, const char *const *args,
                       const char *const *env, unsigned flags, kpa_task **out);

int kpa_task_create(kpa_control *ctl, const char *path, const char *const *args,
                    const char *const *env, unsigned flags, kpa_task **out, kpa_error *err)
{
        kpa_error_clear(kpa_control_error(ctl));
        return kpa_control_error_out(ctl, task_create(ctl, path, args, env, flags, out), "task",
                                     err);
}

static int task_create(kpa_control *ctl, const char *path, const char *const *args,
                       const char *const *env, unsigned flags, kpa_task **out)
{
        *out = NULL;
        _cleanup_free_ char *app_id = NULL;
        const char *rest = NULL;
        int q = split_path(ctl, path, &app_id, &rest);
        if (q < 0)
                return q;
        kpa_manifest *m = NULL;
        q = kpa_store_load_manifest(kpa_control_store(ctl), app_id, &m, kpa_control_error(ctl));
        if (q < 0)
                return q;
        const kpa_component *c = kpa_manifest_find_component(m, rest);
        if (!c || c->type != KPA_COMPONENT_BIN) {
                kpa_manifest_free(m);
                return kpa_error_set(kpa_control_error(ctl), ENOENT,
                                     "task path \"%s\": %s has no bin component \"%s\"", path,
                                     app_id, rest);
        }
        kpa_task *t = kpa_xcalloc(1, sizeof(*t));
        t->ctl = ctl;
        t->manifest = m;
        t->rc.id = kpa_xstrdup("task");
        t->rc.name = kpa_xstrdup(c->name);
        t->rc.type = KPA_RUN_SERVICE;
        t->rc.path = kpa_xstrdup(rest);
        t->rc.args = strv_copy(args, &t->rc.n_args);
        t->env = strv_copy(env, &t->n_env);
        t->stdio[0] = t->stdio[1] = t->stdio[2] = -1;
        t->flags = flags;
        *out = t;
        return 0;
}

int kpa_task_set_stdio(kpa_task *t, int in_fd, int out_fd, int err_fd, kpa_error *err)
{
        (void)err; /* it cannot fail (yet) */
        t->stdio[0] = in_fd;
        t->stdio[1] = out_fd;
        t->stdio[2] = err_fd;
        return 0;
}

/* Take ownership of FD as the handle NAME. */
static int add_handle(kpa_task *t, int fd, const char *name)
{
        kpa_error *err = kpa_control_error(t->ctl);
        if (t->started)
                return kpa_error_set(err, EBUSY, "the task already runs");
        if (!kpa_handle_name_valid(name))
                return kpa_error_set(err, EINVAL,
                                     "\"%s\" is not a valid handle name (1-255 printable ASCII "
                                     "characters, no ':')", name);
        for (size_t i = 0; i < t->n_handles; i++)
                if (streq(t->handles[i].name, name))
                        return kpa_error_set(err, EEXIST, "the task already has a handle \"%s\"",
                                             name);
        t->handles = kpa_xrealloc(t->handles, (t->n_handles + 1) * sizeof(*t->handles));
        t->handles[t->n_handles++] = (kpa_user_handle){.name = kpa_xstrdup(name), .fd = fd};
        return 0;
}

static int task_transfer(kpa_task *t, int fd, const char *name);

int kpa_task_transfer(kpa_task *t, int fd, const char *name, kpa_error *err)
{
        kpa_error_clear(kpa_control_error(t->ctl));
        return kpa_control_error_out(t->ctl, task_transfer(t, fd, name), "handle", err);
}

static int task_transfer(kpa_task *t, int fd, const char *name)
{
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return kpa_error_set_errno(kpa_control_error(t->ctl), errno, "handle \"%s\" (fd %d)",
                                           name, fd);
        int q = add_handle(t, copy, name);
        if (q < 0)
                close(copy);
        return q;
}

static int task_connect(kpa_task *a, kpa_task *b, const char *channel);

int kpa_task_connect(kpa_task *a, kpa_task *b, const char *channel, kpa_error *err)
{
        kpa_error_clear(kpa_control_error(a->ctl));
        return kpa_control_error_out(a->ctl, task_connect(a, b, channel), "channel", err);
}

static int task_connect(kpa_task *a, kpa_task *b, const char *channel)
{
        int sv[2];
        if (a == b)
                return kpa_error_set(kpa_control_error(a->ctl), EINVAL, "a task cannot be connected to itself");
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return kpa_error_set_errno(kpa_control_error(a->ctl), errno, "channel \"%s\": socketpair",
                                           channel);
        int q = add_handle(a, sv[0], channel);
        if (q < 0) {
                close(sv[0]);
                close(sv[1]);
                return q;
        }
        q = add_handle(b, sv[1], channel);
        if (q < 0) {
                close(sv[1]);
                *kpa_control_error(a->ctl) = *kpa_control_error(b->ctl);
                /* undo A's end, so that a failed connect changes nothing */
                a->n_handles--;
                free((char *)a->handles[a->n_handles].name);
                close(a->handles[a->n_handles].fd);
        }
        return q;
}

static int task_run(kpa_task *t, kpa_token *token);

int kpa_task_run(kpa_task *t, kpa_token *token, kpa_error *err)
{
        kpa_error_clear(kpa_control_error(t->ctl));
        return kpa_control_error_out(t->ctl, task_run(t, token), "run", err);
}

static int task_run(kpa_task *t, kpa_token *token)
{
        if (t->started)
                return kpa_error_set(kpa_control_error(t->ctl), EBUSY, "the task already runs");
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.handles = t->handles;
        opts.n_handles = t->n_handles;
        opts.extra_env = (const char *const *)t->env;
        opts.n_extra_env = t->n_env;
        opts.stdin_fd = t->stdio[0];
        opts.stdout_fd = t->stdio[1];
        opts.stderr_fd = t->stdio[2];
        if (t->flags & KPA_TASK_HOST_NETWORK)
                opts.network = KPA_START_NETWORK_HOST;
        int q = kpa_control_launch(t->ctl, t->manifest->application.id, t->manifest, &t->rc, NULL,
                                   &opts, &t->token);
        t->started = true; /* even a failed start has a token with its context */
        if (token)
                *token = t->token;
        return q;
}

int kpa_task_stop(kpa_task *t, kpa_error *err)
{
        if (!t->started)
                return kpa_error_set(err, ESRCH, "the task has not started");
        return kpa_process_stop(t->ctl, &t->token, KPA_STOP_NORMAL, err);
}

int kpa_task_wait(kpa_task *t, int timeout_ms, kpa_process_context *out, kpa_error *err)
{
        if (!t->started)
                return kpa_error_set(err, ESRCH, "the task has not started");
        return kpa_process_wait(t->ctl, &t->token, timeout_ms, out, err);
}

int kpa_task_stop_and_wait(kpa_task *t, int timeout_ms, kpa_process_context *out,
                           kpa_error *err)
{
        int q = kpa_task_stop(t, err);
        if (q < 0)
                return q;
        return kpa_task_wait(t, timeout_ms, out, err);
}

void kpa_task_put(kpa_task *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n_handles; i++) {
                free((char *)t->handles[i].name);
                closep(&t->handles[i].fd);
        }
        free(t->handles);
        kpa_strv_free(t->env);
        kpa_strv_free(t->rc.args);
        free(t->rc.id);
        free(t->rc.name);
        free(t->rc.path);
        kpa_manifest_free(t->manifest);
        free(t);
}
