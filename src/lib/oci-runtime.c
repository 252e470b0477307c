/* oci-runtime.c: the OCI runtime's operations (kpa/oci.h), kpa-oci's
 * create/start/state/kill/delete/run/exec as calls. The
 * config.json is turned into the same kpa_instance_spec that kpa-run builds
 * from a manifest (oci-config.c) and run by kpa_sandbox_spawn(); this file
 * holds the container state under the root directory, the create/start
 * split (the init waits on a FIFO in the state directory), the console
 * socket, the hooks, what the runtime sets on itself for the instance to
 * inherit (rlimits, oomScoreAdj, umask), linux.sysctl and the container's
 * cgroup. The features JSON and the default config.json are
 * oci-runtime-spec.c's; the command line, the log and the exit codes are
 * kpa-oci.c's. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kpa/oci.h"
#include "oci-config.h"
#include "util.h"

#define HOOK_TIMEOUT_DEFAULT 30

/* One call's context: its options (defaults filled in) and its error. */
typedef struct oci_rt {
        kpa_oci_options o;
        const char *root;
        const char *program;
        kpa_error *err;
        kpa_error own_err; /* ERR when the caller passed none */
        bool soft;         /* failures now do not fail the call (hooks after start) */
} oci_rt;

/* ERR gets the first failure of a call; a later one (a failed clean-up
 * after it) and a soft one go to the log callback as errors. Returns
 * -errno of the failed call, EIO when there was none. */
static int fail(oci_rt *rt, const char *fmt, ...) _printf_(2, 3);
static int fail(oci_rt *rt, const char *fmt, ...)
{
        int code = errno > 0 ? errno : EIO;
        char msg[KPA_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (rt->err->code == 0 && !rt->soft)
                return kpa_error_set(rt->err, code, "%s", msg);
        if (rt->o.log)
                rt->o.log("error", msg, rt->o.log_userdata);
        return kpa_negative_(-code); /* code > 0: an error path, for the analyzer too */
}

static void warn(oci_rt *rt, const char *fmt, ...) _printf_(2, 3);
static void warn(oci_rt *rt, const char *fmt, ...)
{
        if (!rt->o.log)
                return;
        char msg[KPA_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        rt->o.log("warning", msg, rt->o.log_userdata);
}

/* ---- the state directory: ROOT/ID/{state.json,exec.fifo} ---- */

static char *state_dir(oci_rt *rt, const char *id)
{
        return kpa_xasprintf("%s/%s", rt->root, id);
}

/* When PID started (kpa_proc_start_time): tells a pid from a reused one;
 * 0 if gone or a zombie. */
static unsigned long long proc_start_time(pid_t pid)
{
        bool zombie;
        unsigned long long t = kpa_proc_start_time(pid, &zombie);
        return zombie ? 0 : t;
}

static int state_load_quiet(oci_rt *rt, const char *id, json_object **out, bool quiet)
{
        *out = NULL;
        if (!kpa_oci_id_valid(id))
                return fail(rt, "container id \"%s\": not valid (letters, digits, _.+-)", id);
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s/state.json", rt->root, id);
        *out = json_object_from_file(path);
        if (!*out)
                return quiet ? -ENOENT : fail(rt, "container \"%s\" does not exist", id);
        return 0;
}

static int state_load(oci_rt *rt, const char *id, json_object **out)
{
        return state_load_quiet(rt, id, out, false);
}

static int state_save(oci_rt *rt, const char *id, json_object *st)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s/state.json", rt->root, id);
        _cleanup_free_ char *tmp = kpa_xasprintf("%s.new", path);
        if (json_object_to_file_ext(tmp, st, JSON_C_TO_STRING_PLAIN) < 0 || rename(tmp, path) < 0)
                return fail(rt, "cannot write %s: %s", path, strerror(errno));
        return 0;
}

static int64_t st_int(json_object *st, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(st, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *st_str(json_object *st, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(st, key, &v) ? json_object_get_string(v) : NULL;
}

/* creating, created, running or stopped, from the record and /proc */
static const char *status_of(oci_rt *rt, const char *id, json_object *st)
{
        const char *recorded = st_str(st, "status");
        if (recorded && strcmp(recorded, "creating") == 0)
                return "creating";
        pid_t pid = (pid_t)st_int(st, "pid");
        if (pid <= 0 || proc_start_time(pid) != (unsigned long long)st_int(st, "kpaStartTime"))
                return "stopped";
        _cleanup_free_ char *fifo = kpa_xasprintf("%s/%s/exec.fifo", rt->root, id);
        return access(fifo, F_OK) == 0 ? "created" : "running";
}

/* The state JSON of the runtime-spec (what `state` prints, hooks read). */
static json_object *public_state(oci_rt *rt, const char *id, json_object *st)
{
        json_object *o = json_object_new_object();
        const char *status = status_of(rt, id, st);
        json_object_object_add(o, "ociVersion", json_object_new_string(st_str(st, "ociVersion")));
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "status", json_object_new_string(status));
        json_object_object_add(
                o, "pid",
                json_object_new_int(strcmp(status, "stopped") == 0 ? 0 : (int)st_int(st, "pid")));
        json_object_object_add(o, "bundle", json_object_new_string(st_str(st, "bundle")));
        json_object *ann;
        if (json_object_object_get_ex(st, "annotations", &ann))
                json_object_object_add(o, "annotations", json_object_get(ann));
        json_object_object_add(o, "created", json_object_new_string(st_str(st, "created")));
        json_object_object_add(o, "owner", json_object_new_string(""));
        return o;
}

/* ---- hooks ---- */

static int run_hook(oci_rt *rt, json_object *hook, const char *state_text, const char *what)
{
        json_object *v;
        const char *path =
                json_object_get_string(json_object_object_get_ex(hook, "path", &v) ? v : NULL);
        int timeout = json_object_object_get_ex(hook, "timeout", &v) ? json_object_get_int(v)
                                                                     : HOOK_TIMEOUT_DEFAULT;
        size_t n_args =
                json_object_object_get_ex(hook, "args", &v) ? json_object_array_length(v) : 0;
        char **argv = kpa_xcalloc(n_args + 2, sizeof(char *));
        for (size_t i = 0; i < n_args; i++)
                argv[i] = (char *)json_object_get_string(json_object_array_get_idx(v, i));
        if (n_args == 0)
                argv[0] = (char *)path;
        json_object *env = NULL;
        json_object_object_get_ex(hook, "env", &env);
        size_t n_env = env ? json_object_array_length(env) : 0;
        char **envp = kpa_xcalloc(n_env + 1, sizeof(char *));
        for (size_t i = 0; i < n_env; i++)
                envp[i] = (char *)json_object_get_string(json_object_array_get_idx(env, i));
        int in[2];
        if (pipe2(in, O_CLOEXEC) < 0) {
                free(argv);
                free(envp);
                return fail(rt, "%s hook %s: pipe: %s", what, path, strerror(errno));
        }
        pid_t pid = fork();
        if (pid == 0) {
                dup2(in[0], 0);
                execve(path, argv, envp);
                fprintf(stderr, "%s: %s hook %s: %s\n", rt->program, what, path, strerror(errno));
                _exit(127);
        }
        free(argv);
        free(envp);
        close(in[0]);
        signal(SIGPIPE, SIG_IGN);
        (void)kpa_write_all(in[1], state_text, strlen(state_text));
        close(in[1]);
        if (pid < 0)
                return fail(rt, "%s hook %s: fork: %s", what, path, strerror(errno));
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        if (pidfd >= 0 && poll(&p, 1, timeout > 0 ? timeout * 1000 : -1) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                close(pidfd);
                return fail(rt, "%s hook %s: timed out after %d s", what, path, timeout);
        }
        closep(&pidfd);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return fail(rt, "%s hook %s: failed (%s %d)", what, path,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return 0;
}

/* The hooks of KIND in the recorded config; STRICT: the first failure
 * stops them and counts (prestart, createRuntime); else it is a warning. */
static int run_hooks(oci_rt *rt, const char *id, json_object *st, const char *kind, bool strict)
{
        json_object *hooks, *list;
        if (!json_object_object_get_ex(st, "kpaHooks", &hooks) ||
            !json_object_object_get_ex(hooks, kind, &list))
                return 0;
        json_object *pub = public_state(rt, id, st);
        const char *text = json_object_to_json_string_ext(pub, JSON_C_TO_STRING_PLAIN);
        int r = 0;
        rt->soft = !strict;
        for (size_t i = 0; i < json_object_array_length(list) && r == 0; i++) {
                int q = run_hook(rt, json_object_array_get_idx(list, i), text, kind);
                if (strict)
                        r = q;
        }
        rt->soft = false;
        json_object_put(pub);
        return r;
}

/* ---- the instance's namespaces from outside ---- */

/* linux.sysctl, written by a child in the instance's network and IPC
 * namespaces (the /proc/sys files follow the writer's namespaces). */
static int write_sysctls(oci_rt *rt, pid_t pid, json_object *sysctl)
{
        if (!sysctl || json_object_object_length(sysctl) == 0)
                return 0;
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return fail(rt, "linux.sysctl: pidfd_open: %s", strerror(errno));
        pid_t child = fork();
        if (child == 0) {
                if (setns(pidfd, CLONE_NEWNET | CLONE_NEWIPC) < 0) {
                        fprintf(stderr, "%s: linux.sysctl: setns: %s\n", rt->program,
                                strerror(errno));
                        _exit(1);
                }
                json_object_object_foreach (sysctl, key, val) {
                        char path[256];
                        snprintf(path, sizeof(path), "/proc/sys/%s", key);
                        for (char *c = path + 10; *c; c++)
                                if (*c == '.')
                                        *c = '/';
                        int fd = open(path, O_WRONLY | O_CLOEXEC);
                        const char *s = json_object_get_string(val);
                        if (fd < 0 || kpa_write_all(fd, s, strlen(s)) < 0) {
                                fprintf(stderr, "%s: linux.sysctl: %s: %s\n", rt->program, key,
                                        strerror(errno));
                                _exit(1);
                        }
                        close(fd);
                }
                _exit(0);
        }
        int status = 1;
        if (child > 0)
                while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                        ;
        return child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0
                       ? 0
                       : fail(rt, "linux.sysctl: could not be written");
}

/* What the runtime sets on itself for the instance to inherit. */
static int apply_inherited(oci_rt *rt, const kpa_oci_config *cfg)
{
        for (size_t i = 0; i < cfg->n_rlimits; i++)
                if (setrlimit(cfg->rlimits[i].resource, &cfg->rlimits[i].value) < 0)
                        return fail(rt, "config.json: process.rlimits[%zu]: setrlimit: %s", i,
                                    strerror(errno));
        if (cfg->has_oom_score_adj) {
                _cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                char buf[16];
                int n = snprintf(buf, sizeof(buf), "%d", cfg->oom_score_adj);
                if (fd < 0 || kpa_write_all(fd, buf, (size_t)n) < 0)
                        return fail(rt, "config.json: process.oomScoreAdj: %s", strerror(errno));
        }
        if (cfg->has_umask)
                umask(cfg->umask);
        return 0;
}

/* the keys of config.json that the runtime specification does not have:
 * ignored, as it asks, and said so (those from the FROMth on) */
static void warn_ignored(oci_rt *rt, const kpa_oci_config *cfg, size_t from)
{
        for (size_t i = from; i < cfg->n_ignored; i++)
                warn(rt, "config.json: %s: not in the runtime specification, ignored",
                     cfg->ignored[i]);
}

/* The parent of linux.cgroupsPath, when it exists in every hierarchy
 * that kpa uses; NULL: kpa-oci's own cgroup (always, for a relative path). */
static char *cgroup_parent_of(const char *cgroups_path)
{
        if (!cgroups_path || cgroups_path[0] != '/')
                return NULL;
        _cleanup_free_ char *parent = kpa_xstrdup(cgroups_path);
        char *slash = strrchr(parent, '/');
        if (!slash || slash == parent)
                return NULL;
        *slash = '\0';
        static const char *const roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified",
                                            "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
                                            "/sys/fs/cgroup/cpu"};
        for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                _cleanup_free_ char *procs = kpa_xasprintf("%s/cgroup.procs", roots[i]);
                if (access(procs, F_OK) != 0)
                        continue; /* not a hierarchy here */
                _cleanup_free_ char *dir = kpa_xasprintf("%s%s", roots[i], parent);
                if (access(dir, F_OK) != 0)
                        return NULL;
        }
        return TAKE_PTR(parent);
}

/* ---- create ---- */

/* a connection to the engine's console socket in *FD */
static int connect_console(oci_rt *rt, const char *path, int *fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return fail(rt, "--console-socket %s: the path is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return fail(rt, "--console-socket %s: %s", path, strerror(errno));
        *fd = TAKE_FD(s);
        return 0;
}

/* runc's console protocol: the pty's master over SCM_RIGHTS on a
 * connection to the engine's socket */
static int send_console(oci_rt *rt, const char *path, int master)
{
        if (!path)
                return fail(rt, "process.terminal is true: --console-socket is needed");
        _cleanup_close_ int s = -1;
        int r = connect_console(rt, path, &s);
        if (r != 0)
                return r;
        char name[] = "/dev/ptmx";
        struct iovec iov = {.iov_base = name, .iov_len = sizeof(name) - 1};
        ssize_t w = kpa_send_fds(s, &iov, 1, &master, 1);
        return w < 0 ? fail(rt, "--console-socket %s: %s", path, strerror((int)-w)) : 0;
}

static void kill_and_forget(kpa_sandbox *sb)
{
        if (sb->pidfd >= 0)
                (void)syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0);
        closep(&sb->tty_fd);
        kpa_sandbox_release(sb, NULL);
}

static int wait_prepared(oci_rt *rt, kpa_sandbox *sb)
{
        for (;;) {
                kpa_report rep;
                int q = kpa_sandbox_read_report(sb, &rep);
                if (q < 0)
                        return fail(rt, "the container's init ended before it was ready");
                if (rep.type == KPA_REPORT_PREPARED)
                        return 0;
                if (rep.type == KPA_REPORT_FAILED)
                        return fail(rt, "sandbox step \"%s\" failed: %s",
                                    kpa_sandbox_step_name((kpa_sandbox_step)rep.step),
                                    strerror(rep.err));
        }
}

/* The sandbox of a new container, waiting at the start FIFO; 0 and *SB,
 * *ST filled, or an exit code with nothing left behind. */
static int do_create(oci_rt *rt, const char *id, kpa_sandbox *sb, json_object **st_out)
{
        const kpa_oci_options *o = &rt->o;
        if (!kpa_oci_id_valid(id))
                return fail(rt, "container id \"%s\": not valid (letters, digits, _.+-)", id);
        _cleanup_free_ char *bundle = realpath(o->bundle ? o->bundle : ".", NULL);
        if (!bundle)
                return fail(rt, "bundle %s: %s", o->bundle ? o->bundle : ".", strerror(errno));
        kpa_error err = {0};
        _cleanup_(kpa_oci_config_freep) kpa_oci_config *cfg = NULL;
        if (kpa_oci_config_load(bundle, id, &cfg, &err) < 0)
                return fail(rt, "%s", err.message);
        warn_ignored(rt, cfg, 0);
        for (char *p = strchr(rt->root + 1, '/');; p = strchr(p + 1, '/')) {
                _cleanup_free_ char *part =
                        p ? kpa_xstrndup(rt->root, (size_t)(p - rt->root)) : kpa_xstrdup(rt->root);
                if (mkdir(part, 0711) < 0 && errno != EEXIST)
                        return fail(rt, "--root %s: %s: %s", rt->root, part, strerror(errno));
                if (!p)
                        break;
        }
        _cleanup_free_ char *dir = state_dir(rt, id);
        if (mkdir(dir, 0700) < 0)
                return fail(rt, errno == EEXIST ? "container \"%s\" exists already" : "%s: %s",
                            errno == EEXIST ? id : dir, strerror(errno));
        json_object *st = json_object_new_object();
        char created[64];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct tm tm;
        size_t n =
                strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now.tv_sec, &tm));
        snprintf(created + n, sizeof(created) - n, ".%09ldZ", now.tv_nsec);
        json_object_object_add(st, "ociVersion", json_object_new_string(cfg->oci_version));
        json_object_object_add(st, "status", json_object_new_string("creating"));
        json_object_object_add(st, "pid", json_object_new_int(0));
        json_object_object_add(st, "bundle", json_object_new_string(bundle));
        json_object_object_add(st, "created", json_object_new_string(created));
        if (cfg->annotations)
                json_object_object_add(st, "annotations", json_object_get(cfg->annotations));
        if (cfg->hooks)
                json_object_object_add(st, "kpaHooks", json_object_get(cfg->hooks));
        int r = state_save(rt, id, st);
        if (r == 0 && cfg->spec->tty && !o->console_socket)
                r = fail(rt, "config.json: process.terminal: a terminal needs --console-socket");
        if (r == 0 && !cfg->spec->tty && o->console_socket)
                r = fail(rt, "--console-socket: only for a terminal (process.terminal is false)");
        _cleanup_free_ char *fifo = kpa_xasprintf("%s/exec.fifo", dir);
        if (r == 0 && mkfifo(fifo, 0600) < 0)
                r = fail(rt, "%s: %s", fifo, strerror(errno));
        if (r == 0)
                r = apply_inherited(rt, cfg);
        kpa_instance_spec *spec = cfg->spec;
        spec->start_fifo = kpa_xstrdup(fifo);
        spec->cgroup_parent = cgroup_parent_of(cfg->cgroups_path);
        if (r == 0 && kpa_sandbox_spawn(spec, -1, sb, &err) < 0)
                r = fail(rt, "%s", err.message);
        if (r == 0 && (r = wait_prepared(rt, sb)) != 0)
                kill_and_forget(sb);
        if (r == 0 && sb->tty_fd >= 0 && (r = send_console(rt, o->console_socket, sb->tty_fd)) != 0)
                kill_and_forget(sb);
        if (sb->tty_fd >= 0 && r == 0)
                closep(&sb->tty_fd);
        if (r == 0 && (r = write_sysctls(rt, sb->pid, cfg->sysctl)) != 0)
                kill_and_forget(sb);
        if (r != 0) {
                json_object_put(st);
                (void)kpa_rm_rf_at(AT_FDCWD, dir);
                return r;
        }
        json_object_object_add(st, "status", json_object_new_string("created"));
        json_object_object_add(st, "pid", json_object_new_int(sb->pid));
        json_object_object_add(st, "kpaStartTime",
                               json_object_new_int64((int64_t)proc_start_time(sb->pid)));
        if (spec->cgroup_parent)
                json_object_object_add(st, "kpaCgroupParent",
                                       json_object_new_string(spec->cgroup_parent));
        r = state_save(rt, id, st);
        if (r == 0 && o->pid_file) {
                _cleanup_free_ char *tmp = kpa_xasprintf("%s.kpa-oci-new", o->pid_file);
                FILE *f = fopen(tmp, "we");
                if (!f || fprintf(f, "%d", (int)sb->pid) < 0 || fclose(f) != 0 ||
                    rename(tmp, o->pid_file) < 0)
                        r = fail(rt, "--pid-file %s: %s", o->pid_file, strerror(errno));
        }
        if (r == 0)
                r = run_hooks(rt, id, st, "createRuntime", true);
        if (r == 0)
                r = run_hooks(rt, id, st, "prestart", true);
        if (r != 0) {
                kill_and_forget(sb);
                json_object_put(st);
                (void)kpa_rm_rf_at(AT_FDCWD, dir);
                return r;
        }
        *st_out = st;
        return 0;
}

/* ---- start, kill, delete ---- */

static int do_start(oci_rt *rt, const char *id, json_object *st)
{
        const char *status = status_of(rt, id, st);
        if (strcmp(status, "created") != 0)
                return fail(rt, "container \"%s\" is %s, not created: cannot start it", id, status);
        _cleanup_free_ char *fifo = kpa_xasprintf("%s/%s/exec.fifo", rt->root, id);
        _cleanup_close_ int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return fail(rt, "container \"%s\": its init does not wait for a start (%s)", id,
                            strerror(errno));
        if (write(fd, "0", 1) != 1)
                return fail(rt, "container \"%s\": cannot release its init: %s", id,
                            strerror(errno));
        unlink(fifo);
        /* the init closes its end once the process has executed (or failed
         * to), or when it ends: the poststart hooks and the caller's next
         * step (a kill) then find the process itself, as the runtime
         * specification asks */
        struct pollfd p = {.fd = fd, .events = 0};
        while (poll(&p, 1, -1) < 0 && errno == EINTR)
                ;
        run_hooks(rt, id, st, "poststart", false);
        return 0;
}

int kpa_oci_signal_parse(const char *s)
{
        static const struct {
                const char *name;
                int sig;
        } names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
                     {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"TERM", SIGTERM}, {"STOP", SIGSTOP},
                     {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"PWR", SIGPWR}};
        char *end;
        long n = strtol(s, &end, 10);
        if (*s && !*end)
                return n > 0 && n < NSIG ? (int)n : -1;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(names[i].name, s) == 0)
                        return names[i].sig;
        return -1;
}

static int open_cgroup(const char *id, json_object *st, kpa_cgroup **cg)
{
        kpa_error err = {0};
        int q = kpa_cgroup_open(st_str(st, "kpaCgroupParent"), "oci", id, cg, &err);
        return q == -ENOENT ? 0 : q;
}

static int signal_init(oci_rt *rt, const char *id, json_object *st, int sig, bool all)
{
        const char *status = status_of(rt, id, st);
        if (strcmp(status, "created") != 0 && strcmp(status, "running") != 0)
                return fail(rt, "container \"%s\" is not running (%s)", id, status);
        pid_t pid = (pid_t)st_int(st, "pid");
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        /* the pid is the one recorded, not a reused one */
        if (pidfd < 0 || proc_start_time(pid) != (unsigned long long)st_int(st, "kpaStartTime"))
                return fail(rt, "container \"%s\" is not running", id);
        if (all && sig == SIGKILL) {
                kpa_cgroup *cg = NULL;
                if (open_cgroup(id, st, &cg) == 0 && cg) {
                        kpa_error err = {0};
                        if (!kpa_cgroup_kill_now(cg))
                                (void)kpa_cgroup_kill(cg, &err);
                        kpa_cgroup_forget(cg);
                }
        }
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 && !(all && errno == ESRCH))
                return fail(rt, "container \"%s\": kill: %s", id, strerror(errno));
        return 0;
}

/* Wait (bounded) until the init recorded in ST is gone. */
static bool wait_gone(json_object *st, int timeout_ms)
{
        pid_t pid = (pid_t)st_int(st, "pid");
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0 || proc_start_time(pid) != (unsigned long long)st_int(st, "kpaStartTime"))
                return true;
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        return poll(&p, 1, timeout_ms) == 1;
}

static int do_delete(oci_rt *rt, const char *id, json_object *st, bool force)
{
        const char *status = status_of(rt, id, st);
        if (strcmp(status, "running") == 0 && !force)
                return fail(rt, "container \"%s\" is running: stop it first, or delete --force",
                            id);
        if (strcmp(status, "stopped") != 0 && strcmp(status, "creating") != 0) {
                (void)signal_init(rt, id, st, SIGKILL, true);
                if (!wait_gone(st, 10000))
                        return fail(rt, "container \"%s\": its init did not end after SIGKILL", id);
        }
        kpa_cgroup *cg = NULL;
        int r = 0;
        if (open_cgroup(id, st, &cg) == 0 && cg) {
                kpa_error err = {0};
                (void)kpa_cgroup_kill(cg, &err);
                if (kpa_cgroup_destroy(cg, &err) < 0)
                        r = fail(rt, "container \"%s\": %s", id, err.message);
        }
        run_hooks(rt, id, st, "poststop", false);
        _cleanup_free_ char *dir = state_dir(rt, id);
        if (kpa_rm_rf_at(AT_FDCWD, dir) < 0)
                r = fail(rt, "%s: cannot remove: %s", dir, strerror(errno));
        return r;
}

/* the process of an exec: --process FILE, or the container's own process
 * with the command line's args, env, cwd and user */
static int exec_process(oci_rt *rt, json_object *st, const char *process_file, char **args,
                        json_object *env, const char *cwd, const char *user, json_object **out)
{
        if (process_file) {
                *out = json_object_from_file(process_file);
                return *out ? 0 : fail(rt, "--process %s: cannot read it as JSON", process_file);
        }
        if (!args[0])
                return fail(rt, "exec needs a command, or --process");
        _cleanup_free_ char *path = kpa_xasprintf("%s/config.json", st_str(st, "bundle"));
        json_object *cfg = json_object_from_file(path), *proc;
        if (!cfg || !json_object_object_get_ex(cfg, "process", &proc)) {
                json_object_put(cfg);
                return fail(rt, "%s: cannot read the container's process", path);
        }
        proc = json_object_get(proc);
        json_object_put(cfg);
        json_object *argv = json_object_new_array();
        for (size_t i = 0; args[i]; i++)
                json_object_array_add(argv, json_object_new_string(args[i]));
        json_object_object_add(proc, "args", argv);
        json_object *old_env;
        if (json_object_object_get_ex(proc, "env", &old_env))
                for (size_t i = 0; i < json_object_array_length(old_env); i++)
                        json_object_array_add(
                                env, json_object_get(json_object_array_get_idx(old_env, i)));
        json_object_object_add(proc, "env", json_object_get(env));
        if (cwd)
                json_object_object_add(proc, "cwd", json_object_new_string(cwd));
        if (user) {
                unsigned uid, gid;
                int n = sscanf(user, "%u:%u", &uid, &gid);
                if (n < 1) {
                        json_object_put(proc);
                        return fail(rt, "--user %s: UID[:GID] in numbers", user);
                }
                json_object *u = json_object_new_object();
                json_object_object_add(u, "uid", json_object_new_int64(uid));
                json_object_object_add(u, "gid", json_object_new_int64(n == 2 ? gid : uid));
                json_object_object_add(proc, "user", u);
        }
        json_object_object_del(proc, "terminal");
        *out = proc;
        return 0;
}

/* ---- the public calls ---- */

static int rt_init(oci_rt *rt, const kpa_oci_options *opts, kpa_error *err)
{
        *rt = (oci_rt){.err = err ? err : &rt->own_err};
        err = rt->err;
        kpa_error_clear(err);
        kpa_oci_options_init(&rt->o);
        if (opts) {
                int r = kpa_struct_in(&rt->o, opts, sizeof(rt->o), "kpa_oci_options", err);
                if (r < 0)
                        return r;
        }
        rt->root = rt->o.root ? rt->o.root : KPA_OCI_DEFAULT_ROOT;
        rt->program = rt->o.program ? rt->o.program : "kpa-oci";
        return 0;
}

void kpa_oci_options_init(kpa_oci_options *opts)
{
        *opts = (kpa_oci_options){.struct_size = sizeof(*opts)};
}

void kpa_oci_exec_options_init(kpa_oci_exec_options *exec)
{
        *exec = (kpa_oci_exec_options){.struct_size = sizeof(*exec)};
}

int kpa_oci_create(const kpa_oci_options *opts, const char *id, kpa_error *err)
{
        oci_rt rt;
        int r = rt_init(&rt, opts, err);
        if (r < 0)
                return r;
        kpa_sandbox sb = {.pidfd = -1, .report_fd = -1};
        json_object *st = NULL;
        r = do_create(&rt, id, &sb, &st);
        if (r != 0)
                return r;
        /* the init stays; whoever reaps our children (conmon, the shim) reaps it */
        kpa_cgroup_forget(sb.cgroup);
        close(sb.pidfd);
        close(sb.report_fd);
        json_object_put(st);
        return 0;
}

int kpa_oci_start(const kpa_oci_options *opts, const char *id, kpa_error *err)
{
        oci_rt rt;
        int r = rt_init(&rt, opts, err);
        if (r < 0)
                return r;
        json_object *st;
        r = state_load(&rt, id, &st);
        if (r != 0)
                return r;
        r = do_start(&rt, id, st);
        json_object_put(st);
        return r;
}

int kpa_oci_run(const kpa_oci_options *opts, const char *id, bool detach, int *exit_code,
                kpa_error *err)
{
        oci_rt rt;
        int r = rt_init(&rt, opts, err);
        if (r < 0)
                return r;
        *exit_code = 0;
        kpa_sandbox sb = {.pidfd = -1, .report_fd = -1};
        json_object *st = NULL;
        r = do_create(&rt, id, &sb, &st);
        if (r != 0)
                return r;
        r = do_start(&rt, id, st);
        if (r != 0 || detach) {
                if (r != 0)
                        do_delete(&rt, id, st, true);
                kpa_cgroup_forget(sb.cgroup);
                close(sb.pidfd);
                close(sb.report_fd);
                json_object_put(st);
                return r;
        }
        siginfo_t info = {0};
        while (waitid(P_PIDFD, (id_t)sb.pidfd, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
                ;
        int code = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
        kpa_cgroup_forget(sb.cgroup);
        sb.cgroup = NULL;
        kpa_sandbox_release(&sb, NULL);
        r = do_delete(&rt, id, st, true);
        json_object_put(st);
        *exit_code = code;
        return r;
}

int kpa_oci_state(const kpa_oci_options *opts, const char *id, char **out, kpa_error *err)
{
        oci_rt rt;
        *out = NULL;
        int r = rt_init(&rt, opts, err);
        if (r < 0)
                return r;
        json_object *st;
        r = state_load(&rt, id, &st);
        if (r != 0)
                return r;
        json_object *pub = public_state(&rt, id, st);
        *out = kpa_xstrdup(json_object_to_json_string_ext(pub, JSON_C_TO_STRING_PRETTY));
        json_object_put(pub);
        json_object_put(st);
        return 0;
}

int kpa_oci_kill(const kpa_oci_options *opts, const char *id, int sig, bool all, kpa_error *err)
{
        oci_rt rt;
        int r = rt_init(&rt, opts, err);
        if (r < 0)
                return r;
        json_object *st;
        r = state_load(&rt, id, &st);
        if (r != 0)
                return r;
        r = signal_init(&rt, id, st, sig, all);
        json_object_put(st);
        return r;
}

int kpa_oci_delete(const kpa_oci_options *opts, const char *id, bool force, kpa_error *err)
{
        oci_rt rt;
        int r = rt_init(&rt, opts, err);
        if (r < 0)
                return r;
        json_object *st;
        r = state_load_quiet(&rt, id, &st, force);
        if (r != 0) {
                /* runc: a forced delete of what is gone already is done */
                return force && kpa_oci_id_valid(id) ? 0 : r;
        }
        r = do_delete(&rt, id, st, force);
        json_object_put(st);
        return r;
}

int kpa_oci_exec(const kpa_oci_options *opts, const char *id, const kpa_oci_exec_options *exec,
                 pid_t *pid_out, kpa_error *err)
{
        oci_rt rt;
        int r = rt_init(&rt, opts, err);
        if (r < 0)
                return r;
        kpa_oci_exec_options e;
        kpa_oci_exec_options_init(&e);
        if (exec && (r = kpa_struct_in(&e, exec, sizeof(e), "kpa_oci_exec_options", rt.err)) < 0)
                return r;
        const char *process_file = e.process_file, *cwd = e.cwd, *user = e.user;
        const char *console_socket = rt.o.console_socket;
        const char *no_args[] = {NULL};
        char **args = (char **)(e.args ? e.args : no_args);
        bool no_new_privs = e.no_new_privs, tty = e.tty;
        json_object *env = json_object_new_array();
        for (size_t i = 0; e.env && e.env[i]; i++)
                json_object_array_add(env, json_object_new_string(e.env[i]));
        json_object *st = NULL, *proc = NULL;
        _cleanup_(kpa_oci_config_freep) kpa_oci_config *cfg = NULL;
        kpa_cgroup *cg = NULL;
        pid_t pid = 0;
        r = state_load(&rt, id, &st);
        if (r == 0 && strcmp(status_of(&rt, id, st), "running") != 0)
                r = fail(&rt, "container \"%s\" is %s, not running", id, status_of(&rt, id, st));
        if (r == 0)
                r = exec_process(&rt, st, process_file, args, env, cwd, user, &proc);
        if (r == 0 && no_new_privs && json_object_is_type(proc, json_type_object))
                json_object_object_add(proc, "noNewPrivileges", json_object_new_boolean(1));
        if (r == 0 && tty && json_object_is_type(proc, json_type_object))
                json_object_object_add(proc, "terminal", json_object_new_boolean(1));
        if (r == 0)
                r = kpa_oci_config_load(st_str(st, "bundle"), id, &cfg, rt.err);
        /* create warned about the config's own; exec, about its process's */
        size_t warned = r == 0 ? cfg->n_ignored : 0;
        _cleanup_free_ char *root =
                r == 0 ? kpa_xasprintf("/proc/%d/root", (int)st_int(st, "pid")) : NULL;
        _cleanup_close_ int rootfd = root ? open(root, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        if (r == 0 && rootfd < 0)
                r = fail(&rt, "container \"%s\": its root: %s", id, strerror(errno));
        if (r == 0)
                r = kpa_oci_process_parse(cfg, proc, rootfd, rt.err);
        if (r == 0)
                warn_ignored(&rt, cfg, warned);
        /* a terminal (-t, or the process object's "terminal"): its master
         * goes to --console-socket, as for create */
        if (r == 0 && cfg->spec->tty && !console_socket)
                r = fail(&rt, "exec: a terminal needs --console-socket");
        if (r == 0 && !cfg->spec->tty && console_socket)
                r = fail(&rt, "--console-socket: only for a terminal (-t, or process.terminal)");
        _cleanup_close_ int console = -1;
        if (r == 0 && console_socket)
                r = connect_console(&rt, console_socket, &console);
        if (r == 0)
                r = apply_inherited(&rt, cfg);
        if (r == 0 && open_cgroup(id, st, &cg) < 0)
                r = fail(&rt, "container \"%s\": cannot open its cgroup", id);
        if (r == 0)
                r = kpa_oci_exec_spawn((pid_t)st_int(st, "pid"), cg, cfg->spec, console, &pid,
                                       rt.err);
        closep(&console);
        kpa_cgroup_forget(cg);
        json_object_put(proc);
        json_object_put(env);
        json_object_put(st);
        if (r == 0 && rt.o.pid_file) {
                FILE *f = fopen(rt.o.pid_file, "we");
                if (!f || fprintf(f, "%d", (int)pid) < 0 || fclose(f) != 0)
                        r = fail(&rt, "--pid-file %s: %s", rt.o.pid_file, strerror(errno));
        }
        if (r == 0)
                *pid_out = pid;
        return r;
}
