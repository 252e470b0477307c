/* spec.c: builds the instance description (sandbox.h) from a manifest and
 * start options: argv, the clean environment, the mount plan of DESIGN.md
 * section 5 step 3, handles, ids, limits and the seccomp policy. It is the
 * only place where the manifest meets the sandbox. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "handles.h"
#include "spec.h"
#include "store-internal.h"
#include "types.h"
#include "util.h"

typedef struct strv_builder {
        char **v;
        size_t n;
} strv_builder;

static void strv_push(strv_builder *b, char *s)
{
        b->v = kpa_xrealloc(b->v, (b->n + 2) * sizeof(char *));
        b->v[b->n++] = s;
        b->v[b->n] = NULL;
}

/* Set NAME=VALUE in an environment list; a later value replaces an earlier
 * one. Every caller passes NAME=VALUE (build_env checks the user's). */
static void env_set(strv_builder *b, const char *assignment)
{
        size_t len = strcspn(assignment, "=") + 1; /* "NAME=" */
        for (size_t i = 0; i < b->n; i++)
                if (strncmp(b->v[i], assignment, len) == 0) {
                        free(b->v[i]);
                        b->v[i] = kpa_xstrdup(assignment);
                        return;
                }
        strv_push(b, kpa_xstrdup(assignment));
}

static int build_env(const kpa_run_config *rc, const kpa_start_options *opts, kpa_instance_spec *spec,
                     kpa_error *err)
{
        strv_builder env = {0};
        env_set(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        env_set(&env, "HOME=/storage");
        const char *term = getenv("TERM");
        if (term) {
                _cleanup_free_ char *t = kpa_xasprintf("TERM=%s", term);
                env_set(&env, t);
        }
        const char *lang = getenv("LANG");
        _cleanup_free_ char *l = kpa_xasprintf("LANG=%s", lang && *lang ? lang : "C.UTF-8");
        env_set(&env, l);
        for (size_t i = 0; i < rc->n_env; i++) {
                _cleanup_free_ char *e = kpa_xasprintf("%s=%s", rc->env[i].name, rc->env[i].value);
                env_set(&env, e);
        }
        for (size_t i = 0; i < opts->n_extra_env; i++) {
                const char *e = opts->extra_env[i];
                if (!strchr(e, '=') || e[0] == '=') {
                        kpa_strv_free(env.v);
                        return kpa_error_set(err, EINVAL, "environment entry \"%s\" is not NAME=VALUE", e);
                }
                env_set(&env, e);
        }
        if (opts->n_handles > 0) {
                const char *names[opts->n_handles];
                for (size_t i = 0; i < opts->n_handles; i++)
                        names[i] = opts->handles[i].name;
                _cleanup_free_ char *fdnames = kpa_handles_fdnames_env(names, opts->n_handles, err);
                if (!fdnames) {
                        kpa_strv_free(env.v);
                        return -EINVAL;
                }
                _cleanup_free_ char *fds = kpa_xasprintf("LISTEN_FDS=%zu", opts->n_handles);
                env_set(&env, fds);
                env_set(&env, fdnames);
                env_set(&env, "LISTEN_PID=2"); /* the application is PID 2 in its namespace */
        }
        spec->envp = env.v ? env.v : kpa_xcalloc(1, sizeof(char *));
        return 0;
}

static void build_argv(const kpa_run_config *rc, const kpa_start_options *opts, kpa_instance_spec *spec)
{
        strv_builder argv = {0};
        strv_push(&argv, kpa_xstrdup(rc->eiid ? rc->eiid : spec->exec_path));
        for (size_t i = 0; i < rc->n_args; i++)
                strv_push(&argv, kpa_xstrdup(rc->args[i]));
        for (size_t i = 0; i < opts->n_extra_args; i++)
                strv_push(&argv, kpa_xstrdup(opts->extra_args[i]));
        spec->argv = argv.v;
}

/* The host's merged-usr links (/bin -> usr/bin) are links in the new root
 * too; where they are real directories, they are bound read-only. */
static void plan_host_dirs(kpa_instance_spec *spec)
{
        kpa_instance_spec_add_mount(spec, KPA_MOUNT_BIND_RO, "/usr", -1, "/usr", false);
        static const char *const dirs[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char target[PATH_MAX];
                ssize_t n = readlink(dirs[i], target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = '\0';
                        kpa_instance_spec_add_mount(spec, KPA_MOUNT_SYMLINK, target, -1, dirs[i], false);
                        continue;
                }
                struct stat st;
                if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
                        kpa_instance_spec_add_mount(spec, KPA_MOUNT_BIND_RO, dirs[i], -1, dirs[i], true);
        }
}

/* A minimal, read-only /etc: copies of a few small files, and the two
 * directories that programs follow links into. */
static void plan_etc(kpa_instance_spec *spec)
{
        static const char *const files[] = {"/etc/ld.so.cache", "/etc/passwd", "/etc/group",
                                            "/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf",
                                            "/etc/host.conf"};
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                kpa_instance_spec_add_mount(spec, KPA_MOUNT_COPY, files[i], -1, files[i], true);
        char target[PATH_MAX];
        ssize_t n = readlink("/etc/localtime", target, sizeof(target) - 1);
        if (n > 0) {
                target[n] = '\0';
                kpa_instance_spec_add_mount(spec, KPA_MOUNT_SYMLINK, target, -1, "/etc/localtime", false);
        } else {
                kpa_instance_spec_add_mount(spec, KPA_MOUNT_COPY, "/etc/localtime", -1, "/etc/localtime", true);
        }
        kpa_instance_spec_add_mount(spec, KPA_MOUNT_BIND_RO, "/etc/ssl", -1, "/etc/ssl", true);
        kpa_instance_spec_add_mount(spec, KPA_MOUNT_BIND_RO, "/etc/alternatives", -1, "/etc/alternatives", true);
}

static int plan_package(kpa_store *store, const kpa_manifest *m, const kpa_run_config *rc,
                        kpa_instance_spec *spec, kpa_error *err)
{
        int app = kpa_store_open_app_dir(store, m->application.id, err);
        if (app < 0)
                return app;
        /* its program, said plainly now rather than as a failed exec */
        struct stat st;
        if (fstatat(app, rc->path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
                int e = errno ? errno : ENOENT;
                close(app);
                return kpa_error_set(err, e == ENOTDIR ? ENOENT : e,
                                     "%s: run configuration \"%s\": its program %s is missing "
                                     "from the installed package (kpa-install --verify %s shows "
                                     "what else is; --reinstall repairs it)",
                                     m->application.id, rc->id, rc->path, m->application.id);
        }
        _cleanup_free_ char *target = kpa_xasprintf("/%s", m->application.id);
        /* the fds for a root start (the parent clones the mounts behind
         * them), the paths for a rootless one (the child binds them) */
        _cleanup_free_ char *app_path =
                kpa_xasprintf("%s/apps/%s", kpa_store_root(store), m->application.id);
        kpa_instance_spec_add_mount(spec, KPA_MOUNT_BIND_RO, app_path, app, target, false);
        /* a storage with a size is a file system image (storage-image.c) */
        int storage = kpa_store_open_storage_dir(store, m->application.id, err);
        if (storage < 0)
                return storage;
        _cleanup_free_ char *storage_path =
                kpa_xasprintf("%s/storage/%s", kpa_store_root(store), m->application.id);
        int image = -1;
        if (geteuid() == 0) {
                int q = storage_image_open_mount(store, m->application.id, &image, err);
                if (q < 0) {
                        close(storage);
                        return q;
                }
        }
        if (image >= 0) { /* a detached mount of the image, in place of the directory */
                close(storage);
                storage = image;
                free(storage_path);
                storage_path = kpa_xasprintf("%s/images/%s.img", kpa_store_root(store),
                                             m->application.id);
        }
        kpa_instance_spec_add_mount(spec, KPA_MOUNT_BIND_RW, storage_path, storage, "/storage", false);
        spec->mounts[spec->n_mounts - 1].detached = image >= 0;
        return 0;
}

/* The granted readOnlyPaths, checked again now (the host may have changed
 * since the install): the node checked is the one bound (by its fd, for a
 * root start). The uid that must reach them is the package's on the host:
 * the caller's own when rootless. */
static int plan_read_only_paths(kpa_store *store, const kpa_sandbox_settings *granted,
                                kpa_instance_spec *spec, kpa_error *err)
{
        uid_t uid = spec->userns ? geteuid() : spec->uid;
        gid_t gid = spec->userns ? getegid() : spec->gid;
        for (size_t i = 0; i < granted->n_read_only_paths; i++) {
                const char *p = granted->read_only_paths[i];
                int fd = -1;
                int q = kpa_permissions_check_path(p, uid, gid, kpa_store_root(store),
                                                   spec->userns ? NULL : &fd, err);
                if (q < 0)
                        return kpa_error_prefix(err, "%s: readOnlyPaths", spec->app_id);
                kpa_instance_spec_add_mount(spec, KPA_MOUNT_BIND_RO, p, fd, p, false);
        }
        return 0;
}

/* An absolute path with no ".." component. */
static bool path_is_clean_absolute(const char *p)
{
        if (p[0] != '/' || strlen(p) >= PATH_MAX)
                return false;
        for (const char *c = p; c; c = strchr(c + 1, '/'))
                if (strncmp(c, "/..", 3) == 0 && (c[3] == '/' || c[3] == '\0'))
                        return false;
        return true;
}

/* One extra bind (OPT names it in messages): absolute paths without "..",
 * inside anywhere but /; a missing host path is named here rather than as
 * a failed mount. */
static int check_bind(const char *host, const char *inside, const char *opt, kpa_error *err)
{
        if (!host || !inside || !path_is_clean_absolute(host) || !path_is_clean_absolute(inside) ||
            streq(inside, "/"))
                return kpa_error_set(err, EINVAL,
                                     "%s %s:%s: both paths must be absolute, without "
                                     "\"..\", and the inside one not /",
                                     opt, host ? host : "(null)", inside ? inside : "(null)");
        struct stat st;
        if (stat(host, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s: host path %s", opt, host);
        return 0;
}

/* Root's extra binds (kpa-run --bind, --bind-ro). */
static int plan_binds(const kpa_start_options *opts, kpa_instance_spec *spec, kpa_error *err)
{
        if (opts->n_binds > 0 && geteuid() != 0)
                return kpa_error_set(err, EPERM,
                                     "only root can bind host paths into the sandbox (--bind, "
                                     "--bind-ro)");
        for (size_t i = 0; i < opts->n_binds; i++) {
                const kpa_start_bind *b = &opts->binds[i];
                int q = check_bind(b->host, b->inside, b->writable ? "--bind" : "--bind-ro", err);
                if (q < 0)
                        return q;
                kpa_instance_spec_add_mount(spec, b->writable ? KPA_MOUNT_BIND_RW : KPA_MOUNT_BIND_RO,
                                            b->host, -1, b->inside, false);
        }
        return 0;
}

/* The working directory, pseudo-terminal and size: passed on as they are
 * (the init checks the directory, as the application's uid). */
static int plan_cwd_tty(const kpa_start_options *opts, kpa_instance_spec *spec, kpa_error *err)
{
        if (opts->cwd) {
                if (opts->cwd[0] != '/')
                        return kpa_error_set(err, EINVAL,
                                             "working directory \"%s\" is not an absolute path",
                                             opts->cwd);
                spec->cwd = kpa_xstrdup(opts->cwd);
        }
        spec->tty = opts->tty;
        spec->tty_rows = opts->tty_rows;
        spec->tty_cols = opts->tty_cols;
        return 0;
}

static int plan_handles(const kpa_start_options *opts, kpa_instance_spec *spec, kpa_error *err)
{
        spec->handle_fds = kpa_xcalloc(opts->n_handles, sizeof(int));
        for (size_t i = 0; i < opts->n_handles; i++)
                spec->handle_fds[i] = -1;
        spec->n_handles = opts->n_handles;
        for (size_t i = 0; i < opts->n_handles; i++) {
                int fd = fcntl(opts->handles[i].fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return kpa_error_set_errno(err, errno, "handle \"%s\" (fd %d)",
                                                   opts->handles[i].name, opts->handles[i].fd);
                spec->handle_fds[i] = fd;
        }
        return 0;
}

static int plan_ids_and_limits(kpa_store *store, const kpa_manifest *m,
                               const kpa_start_options *opts, const kpa_sandbox_settings *granted,
                               bool network_granted, kpa_instance_spec *spec, kpa_error *err)
{
        /* --network host is a start's wish, and needs the grant as the
         * manifest's request does */
        if (opts->network == KPA_START_NETWORK_HOST && !network_granted)
                return kpa_error_set(err, EPERM,
                                     "%s: the network permission is not granted (an "
                                     "administrator grants it with: kpa-install --grant network "
                                     "%s)",
                                     m->application.id, m->application.id);
        uid_t uid = 0;
        gid_t gid = 0;
        /* the package's own uid, unless root chose one or it runs rootless
         * (where the caller's uid is the only one); never a fallback */
        if (!spec->userns && opts->uid == (uid_t)-1) {
                int q = kpa_store_get_app_uid(store, m->application.id, &uid, &gid, err);
                if (q < 0)
                        return q;
        }
        spec->uid = opts->uid != (uid_t)-1 ? opts->uid : uid;
        spec->gid = opts->gid != (gid_t)-1 ? opts->gid : (opts->uid != (uid_t)-1 ? (gid_t)opts->uid : gid);
        if (spec->userns) /* the only ids mapped: the caller's own, as 0 */
                spec->uid = spec->gid = 0;
        spec->limits.memory_bytes =
                opts->memory_bytes ? opts->memory_bytes : m->limits->memory_bytes;
        spec->limits.pids = opts->pids ? opts->pids : m->limits->pids;
        spec->limits.cpu_weight = opts->cpu_weight ? opts->cpu_weight : m->limits->cpu_weight;
        if (opts->network == KPA_START_NETWORK_DEFAULT)
                spec->new_net = granted->network != KPA_NETWORK_HOST;
        else
                spec->new_net = opts->network != KPA_START_NETWORK_HOST;
        spec->stdio[0] = opts->stdin_fd;
        spec->stdio[1] = opts->stdout_fd;
        spec->stdio[2] = opts->stderr_fd;
        if (opts->cgroup_parent)
                spec->cgroup_parent = kpa_xstrdup(opts->cgroup_parent);
        return 0;
}

/* extensions.KPA_sandbox allow*, as granted: relaxations of the default
 * seccomp filter */
static void plan_seccomp(const kpa_sandbox_settings *granted, kpa_instance_spec *spec)
{
        spec->seccomp = (kpa_seccomp_policy){
                .allow_ptrace = granted->allow_ptrace,
                .allow_perf_events = granted->allow_perf_events,
                .allow_bpf = granted->allow_bpf,
                .allow_keyring = granted->allow_keyring,
                .allow_userfaultfd = granted->allow_userfaultfd,
                .allow_personality = granted->allow_personality,
        };
}

static void sandbox_settings_clear(kpa_sandbox_settings *s)
{
        kpa_strv_free(s->read_only_paths);
}

int kpa_instance_spec_build(kpa_store *store, const kpa_manifest *m, const kpa_run_config *rc,
                            const kpa_start_options *opts, const char *instance_id,
                            kpa_instance_spec **out, kpa_error *err)
{
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = kpa_xcalloc(1, sizeof(*spec));
        spec->stdio[0] = spec->stdio[1] = spec->stdio[2] = -1;
        spec->exit_record_fd = spec->init_keep_fd = -1;
        spec->app_id = kpa_xstrdup(m->application.id);
        spec->run_config_id = kpa_xstrdup(rc->id);
        spec->instance_id = kpa_xstrdup(instance_id);
        /* a hostname holds at most 64 bytes */
        spec->hostname = kpa_xstrndup(m->application.id, 64);
        spec->exec_path = kpa_xasprintf("/%s/%s", m->application.id, rc->path);
        build_argv(rc, opts, spec);
        int q = build_env(rc, opts, spec, err);
        if (q < 0)
                return q;
        spec->userns = geteuid() != 0;
        if (spec->userns && (opts->uid != (uid_t)-1 || opts->gid != (gid_t)-1))
                return kpa_error_set(err, EPERM,
                                     "only root can choose the uid or gid of a process (not "
                                     "root, kpa runs it rootless, as your own uid)");
        /* the manifest requests; what the store grants is what applies */
        _cleanup_(sandbox_settings_clear)
                kpa_sandbox_settings granted = {.struct_size = sizeof(granted)};
        bool network_granted = false;
        q = kpa_store_effective_sandbox(store, m, &granted, &network_granted, err);
        if (q < 0)
                return q;
        plan_host_dirs(spec);
        plan_etc(spec);
        q = plan_package(store, m, rc, spec, err);
        if (q < 0)
                return q;
        q = plan_handles(opts, spec, err);
        if (q < 0)
                return q;
        q = plan_ids_and_limits(store, m, opts, &granted, network_granted, spec, err);
        if (q < 0)
                return q;
        q = plan_read_only_paths(store, &granted, spec, err);
        if (q < 0)
                return q;
        q = plan_binds(opts, spec, err);
        if (q < 0)
                return q;
        q = plan_cwd_tty(opts, spec, err);
        if (q < 0)
                return q;
        plan_seccomp(&granted, spec);
        *out = TAKE_PTR(spec);
        return 0;
}

/* ---- the public plan (kpa/instance.h) ---- */

int kpa_instance_spec_new_package(const char *store_root, const char *pkg_id,
                                  const char *run_config_id, const kpa_start_options *opts,
                                  kpa_instance_spec **out, kpa_error *err)
{
        *out = NULL;
        if (!pkg_id || !pkg_id[0])
                return kpa_error_set(err, EINVAL, "no package id given");
        kpa_start_options full;
        kpa_start_options_init(&full);
        int q;
        _cleanup_(kpa_start_arrays_free) kpa_start_arrays copies = {NULL, NULL};
        if (opts && (q = kpa_start_options_in(&full, opts, &copies, err)) < 0)
                return q;
        opts = &full;
        _cleanup_(kpa_store_closep) kpa_store *store = NULL;
        q = kpa_store_open(store_root, 0, &store, err);
        if (q < 0)
                return q;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        q = kpa_store_load_manifest(store, pkg_id, &m, err);
        if (q < 0)
                return q;
        const kpa_run_config *rc = run_config_id ? kpa_manifest_find_run_config(m, run_config_id)
                                                 : kpa_manifest_primary_run_config(m);
        if (!rc && !run_config_id)
                return kpa_error_set(err, ENOENT, "%s has no run configuration to start", pkg_id);
        if (!rc) {
                char list[200] = "";
                for (size_t k = 0; k < m->n_run_configs; k++) {
                        size_t len = strlen(list);
                        snprintf(list + len, sizeof(list) - len, "%s%s", k ? ", " : "",
                                 m->run_configs[k]->id);
                }
                return kpa_error_set(err, ENOENT, "%s has no run configuration \"%s\" (it has: %s)",
                                     pkg_id, run_config_id, list[0] ? list : "none");
        }
        /* the instance id (the cgroup's name) is the token of the start */
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = NULL;
        q = kpa_instance_spec_build(store, m, rc, opts, "", &spec, err);
        if (q < 0)
                return q;
        spec->init_name = kpa_xasprintf("kpa-init %s/%s", spec->app_id, rc->id);
        *out = TAKE_PTR(spec);
        return 0;
}

const char *kpa_instance_spec_app_id(const kpa_instance_spec *spec)
{
        return spec->app_id;
}

const char *kpa_instance_spec_exec_path(const kpa_instance_spec *spec)
{
        return spec->exec_path;
}

const char *const *kpa_instance_spec_get_argv(const kpa_instance_spec *spec)
{
        return (const char *const *)spec->argv;
}

int kpa_instance_spec_set_argv(kpa_instance_spec *spec, const char *const *argv, size_t n,
                               kpa_error *err)
{
        if (!argv || n == 0)
                return kpa_error_set(err, EINVAL, "argv: at least argv[0] is needed");
        for (size_t i = 0; i < n; i++)
                if (!argv[i])
                        return kpa_error_set(err, EINVAL, "argv[%zu] is NULL", i);
        char **v = kpa_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                v[i] = kpa_xstrdup(argv[i]);
        kpa_strv_free(spec->argv);
        spec->argv = v;
        return 0;
}

/* The index of NAME's entry in SPEC's environment, or -1. */
static ssize_t env_find(const kpa_instance_spec *spec, const char *name)
{
        size_t len = strlen(name);
        for (size_t i = 0; spec->envp && spec->envp[i]; i++)
                if (strncmp(spec->envp[i], name, len) == 0 && spec->envp[i][len] == '=')
                        return (ssize_t)i;
        return -1;
}

const char *kpa_instance_spec_get_env(const kpa_instance_spec *spec, const char *name)
{
        ssize_t i = name ? env_find(spec, name) : -1;
        return i < 0 ? NULL : spec->envp[i] + strlen(name) + 1;
}

int kpa_instance_spec_set_env(kpa_instance_spec *spec, const char *name, const char *value,
                              kpa_error *err)
{
        if (!name || !name[0] || strchr(name, '='))
                return kpa_error_set(err, EINVAL,
                                     "environment variable name \"%s\" is empty or holds '='",
                                     name ? name : "");
        if (streq(name, "LISTEN_FDS") || streq(name, "LISTEN_FDNAMES") || streq(name, "LISTEN_PID"))
                return kpa_error_set(err, EINVAL,
                                     "%s describes the plan's handles: kpa sets it, it cannot "
                                     "be set",
                                     name);
        ssize_t i = env_find(spec, name);
        if (!value) { /* unset: close the gap */
                if (i < 0)
                        return 0;
                free(spec->envp[i]);
                for (size_t k = (size_t)i; spec->envp[k]; k++)
                        spec->envp[k] = spec->envp[k + 1];
                return 0;
        }
        char *e = kpa_xasprintf("%s=%s", name, value);
        if (i >= 0) {
                free(spec->envp[i]);
                spec->envp[i] = e;
                return 0;
        }
        strv_builder b = {.v = spec->envp, .n = 0};
        while (b.v && b.v[b.n])
                b.n++;
        strv_push(&b, e);
        spec->envp = b.v;
        return 0;
}

int kpa_instance_spec_add_bind(kpa_instance_spec *spec, const char *host, const char *inside,
                               bool writable, kpa_error *err)
{
        if (geteuid() != 0 || spec->userns)
                return kpa_error_set(err, EPERM, "only root can bind host paths into the sandbox");
        int q = check_bind(host, inside, writable ? "bind" : "read-only bind", err);
        if (q < 0)
                return q;
        kpa_instance_spec_add_mount(spec, writable ? KPA_MOUNT_BIND_RW : KPA_MOUNT_BIND_RO, host,
                                    -1, inside, false);
        return 0;
}

int kpa_instance_spec_get_limit(const kpa_instance_spec *spec, kpa_instance_limit which,
                                uint64_t *value)
{
        switch (which) {
        case KPA_INSTANCE_LIMIT_MEMORY: *value = spec->limits.memory_bytes; return 0;
        case KPA_INSTANCE_LIMIT_PIDS: *value = spec->limits.pids; return 0;
        case KPA_INSTANCE_LIMIT_CPU_WEIGHT: *value = spec->limits.cpu_weight; return 0;
        }
        return -EINVAL;
}

int kpa_instance_spec_set_limit(kpa_instance_spec *spec, kpa_instance_limit which, uint64_t value,
                                kpa_error *err)
{
        switch (which) {
        case KPA_INSTANCE_LIMIT_MEMORY:
                if (value > (uint64_t)INT64_MAX)
                        return kpa_error_set(err, EINVAL, "memory limit %llu is above %lld bytes",
                                             (unsigned long long)value, (long long)INT64_MAX);
                spec->limits.memory_bytes = value;
                return 0;
        case KPA_INSTANCE_LIMIT_PIDS:
                if (value > UINT32_MAX)
                        return kpa_error_set(err, EINVAL, "pids limit %llu is above %u",
                                             (unsigned long long)value, UINT32_MAX);
                spec->limits.pids = value;
                return 0;
        case KPA_INSTANCE_LIMIT_CPU_WEIGHT:
                if (value > 10000)
                        return kpa_error_set(err, EINVAL,
                                             "cpu weight %llu is not from 1 to 10000 (0: the "
                                             "default)",
                                             (unsigned long long)value);
                spec->limits.cpu_weight = value;
                return 0;
        }
        return kpa_error_set(err, EINVAL, "unknown limit %d", (int)which);
}

const char *kpa_instance_spec_get_cwd(const kpa_instance_spec *spec)
{
        return spec->cwd;
}

int kpa_instance_spec_set_cwd(kpa_instance_spec *spec, const char *cwd, kpa_error *err)
{
        if (cwd && (cwd[0] != '/' || strlen(cwd) >= PATH_MAX))
                return kpa_error_set(err, EINVAL,
                                     "working directory \"%s\" is not an absolute path", cwd);
        free(spec->cwd);
        spec->cwd = cwd ? kpa_xstrdup(cwd) : NULL;
        return 0;
}
