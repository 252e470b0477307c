/* kpa-oci: an OCI runtime (runtime-spec 1.x) with runc's command line, so
 * that podman and containerd can drive kpa's sandbox. The config.json is
 * turned into the same kpa_instance_spec that kpa-run builds from a
 * manifest (oci-config.c) and run by kpa_sandbox_spawn(); this file holds
 * the command line, the container state under --root, the create/start
 * split (the init waits on a FIFO in the state directory), the hooks and
 * the log. It links libkpa's internal convenience library for now. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "oci-config.h"
#include "util.h"

#define DEFAULT_ROOT "/run/kpa-oci"
#define HOOK_TIMEOUT_DEFAULT 30

static const char *state_root = DEFAULT_ROOT;
static FILE *log_file;
static bool log_json;

/* ---- messages: stderr, and the --log file (runc's text or JSON lines) ---- */

static void log_line(const char *level, const char *msg)
{
        if (!log_file)
                return;
        char when[64];
        time_t now = time(NULL);
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
        if (log_json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "level", json_object_new_string(level));
                json_object_object_add(o, "msg", json_object_new_string(msg));
                json_object_object_add(o, "time", json_object_new_string(when));
                fprintf(log_file, "%s\n",
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
        } else {
                fprintf(log_file, "time=\"%s\" level=%s msg=\"%s\"\n", when, level, msg);
        }
        fflush(log_file);
}

static void say(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *level, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s%s\n", cli_program(), strcmp(level, "error") ? "warning: " : "",
                msg);
        log_line(level, msg);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        say("error", "%s", msg);
        return EXIT_FAILURE;
}

/* ---- the state directory: ROOT/ID/{state.json,exec.fifo} ---- */

static char *state_dir(const char *id)
{
        return kpa_xasprintf("%s/%s", state_root, id);
}

/* Field 22 of /proc/PID/stat: tells a pid from a reused one; 0 if gone
 * or a zombie. */
static unsigned long long proc_start_time(pid_t pid)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
                return 0;
        p += 2; /* field 3 */
        for (int field = 3; field < 22 && p; field++) {
                p = strchr(p, ' ');
                if (p)
                        p++;
        }
        return p ? strtoull(p, NULL, 10) : 0;
}

static int state_load_quiet(const char *id, json_object **out, bool quiet)
{
        *out = NULL;
        if (!kpa_oci_id_valid(id))
                return fail("container id \"%s\": not valid (letters, digits, _.+-)", id);
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s/state.json", state_root, id);
        *out = json_object_from_file(path);
        if (!*out)
                return quiet ? EXIT_FAILURE : fail("container \"%s\" does not exist", id);
        return 0;
}

static int state_load(const char *id, json_object **out)
{
        return state_load_quiet(id, out, false);
}

static int state_save(const char *id, json_object *st)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s/state.json", state_root, id);
        _cleanup_free_ char *tmp = kpa_xasprintf("%s.new", path);
        if (json_object_to_file_ext(tmp, st, JSON_C_TO_STRING_PLAIN) < 0 || rename(tmp, path) < 0)
                return fail("cannot write %s: %s", path, strerror(errno));
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
static const char *status_of(const char *id, json_object *st)
{
        const char *recorded = st_str(st, "status");
        if (recorded && strcmp(recorded, "creating") == 0)
                return "creating";
        pid_t pid = (pid_t)st_int(st, "pid");
        if (pid <= 0 || proc_start_time(pid) != (unsigned long long)st_int(st, "kpaStartTime"))
                return "stopped";
        _cleanup_free_ char *fifo = kpa_xasprintf("%s/%s/exec.fifo", state_root, id);
        return access(fifo, F_OK) == 0 ? "created" : "running";
}

/* The state JSON of the runtime-spec (what `state` prints, hooks read). */
static json_object *public_state(const char *id, json_object *st)
{
        json_object *o = json_object_new_object();
        const char *status = status_of(id, st);
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

static int run_hook(json_object *hook, const char *state_text, const char *what)
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
                return fail("%s hook %s: pipe: %s", what, path, strerror(errno));
        }
        pid_t pid = fork();
        if (pid == 0) {
                dup2(in[0], 0);
                execve(path, argv, envp);
                fprintf(stderr, "%s: %s hook %s: %s\n", cli_program(), what, path, strerror(errno));
                _exit(127);
        }
        free(argv);
        free(envp);
        close(in[0]);
        signal(SIGPIPE, SIG_IGN);
        (void)kpa_write_all(in[1], state_text, strlen(state_text));
        close(in[1]);
        if (pid < 0)
                return fail("%s hook %s: fork: %s", what, path, strerror(errno));
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        if (pidfd >= 0 && poll(&p, 1, timeout > 0 ? timeout * 1000 : -1) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                close(pidfd);
                return fail("%s hook %s: timed out after %d s", what, path, timeout);
        }
        closep(&pidfd);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return fail("%s hook %s: failed (%s %d)", what, path,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return 0;
}

/* The hooks of KIND in the recorded config; STRICT: the first failure
 * stops them and counts (prestart, createRuntime); else it is a warning. */
static int run_hooks(const char *id, json_object *st, const char *kind, bool strict)
{
        json_object *hooks, *list;
        if (!json_object_object_get_ex(st, "kpaHooks", &hooks) ||
            !json_object_object_get_ex(hooks, kind, &list))
                return 0;
        json_object *pub = public_state(id, st);
        const char *text = json_object_to_json_string_ext(pub, JSON_C_TO_STRING_PLAIN);
        int r = 0;
        for (size_t i = 0; i < json_object_array_length(list) && r == 0; i++) {
                int q = run_hook(json_object_array_get_idx(list, i), text, kind);
                if (strict)
                        r = q;
        }
        json_object_put(pub);
        return r;
}

/* ---- the instance's namespaces from outside ---- */

/* linux.sysctl, written by a child in the instance's network and IPC
 * namespaces (the /proc/sys files follow the writer's namespaces). */
static int write_sysctls(pid_t pid, json_object *sysctl)
{
        if (!sysctl || json_object_object_length(sysctl) == 0)
                return 0;
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return fail("linux.sysctl: pidfd_open: %s", strerror(errno));
        pid_t child = fork();
        if (child == 0) {
                if (setns(pidfd, CLONE_NEWNET | CLONE_NEWIPC) < 0) {
                        fprintf(stderr, "%s: linux.sysctl: setns: %s\n", cli_program(),
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
                                fprintf(stderr, "%s: linux.sysctl: %s: %s\n", cli_program(), key,
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
                       : fail("linux.sysctl: could not be written");
}

/* What the runtime sets on itself for the instance to inherit. */
static int apply_inherited(const kpa_oci_config *cfg)
{
        for (size_t i = 0; i < cfg->n_rlimits; i++)
                if (setrlimit(cfg->rlimits[i].resource, &cfg->rlimits[i].value) < 0)
                        return fail("config.json: process.rlimits[%zu]: setrlimit: %s", i,
                                    strerror(errno));
        if (cfg->has_oom_score_adj) {
                _cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                char buf[16];
                int n = snprintf(buf, sizeof(buf), "%d", cfg->oom_score_adj);
                if (fd < 0 || kpa_write_all(fd, buf, (size_t)n) < 0)
                        return fail("config.json: process.oomScoreAdj: %s", strerror(errno));
        }
        if (cfg->has_umask)
                umask(cfg->umask);
        return 0;
}

/* the keys of config.json that the runtime specification does not have:
 * ignored, as it asks, and said so (those from the FROMth on) */
static void warn_ignored(const kpa_oci_config *cfg, size_t from)
{
        for (size_t i = from; i < cfg->n_ignored; i++)
                say("warning", "config.json: %s: not in the runtime specification, ignored",
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

typedef struct create_opts {
        const char *bundle;
        const char *pid_file;
        const char *console_socket;
} create_opts;

/* a connection to the engine's console socket in *FD */
static int connect_console(const char *path, int *fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return fail("--console-socket %s: the path is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return fail("--console-socket %s: %s", path, strerror(errno));
        *fd = TAKE_FD(s);
        return 0;
}

/* runc's console protocol: the pty's master over SCM_RIGHTS on a
 * connection to the engine's socket */
static int send_console(const char *path, int master)
{
        if (!path)
                return fail("process.terminal is true: --console-socket is needed");
        _cleanup_close_ int s = -1;
        int r = connect_console(path, &s);
        if (r != 0)
                return r;
        char name[] = "/dev/ptmx";
        struct iovec iov = {.iov_base = name, .iov_len = sizeof(name) - 1};
        ssize_t w = kpa_send_fds(s, &iov, 1, &master, 1);
        return w < 0 ? fail("--console-socket %s: %s", path, strerror((int)-w)) : 0;
}

static void kill_and_forget(kpa_sandbox *sb)
{
        if (sb->pidfd >= 0)
                (void)syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0);
        closep(&sb->tty_fd);
        kpa_sandbox_release(sb, NULL);
}

static int wait_prepared(kpa_sandbox *sb)
{
        for (;;) {
                kpa_report rep;
                int q = kpa_sandbox_read_report(sb, &rep);
                if (q < 0)
                        return fail("the container's init ended before it was ready");
                if (rep.type == KPA_REPORT_PREPARED)
                        return 0;
                if (rep.type == KPA_REPORT_FAILED)
                        return fail("sandbox step \"%s\" failed: %s",
                                    kpa_sandbox_step_name((kpa_sandbox_step)rep.step),
                                    strerror(rep.err));
        }
}

/* The sandbox of a new container, waiting at the start FIFO; 0 and *SB,
 * *ST filled, or an exit code with nothing left behind. */
static int do_create(const char *id, const create_opts *o, kpa_sandbox *sb, json_object **st_out)
{
        if (!kpa_oci_id_valid(id))
                return fail("container id \"%s\": not valid (letters, digits, _.+-)", id);
        _cleanup_free_ char *bundle = realpath(o->bundle ? o->bundle : ".", NULL);
        if (!bundle)
                return fail("bundle %s: %s", o->bundle ? o->bundle : ".", strerror(errno));
        kpa_error err = {0};
        _cleanup_(kpa_oci_config_freep) kpa_oci_config *cfg = NULL;
        if (kpa_oci_config_load(bundle, id, &cfg, &err) < 0)
                return fail("%s", err.message);
        warn_ignored(cfg, 0);
        for (char *p = strchr(state_root + 1, '/');; p = strchr(p + 1, '/')) {
                _cleanup_free_ char *part = p ? kpa_xstrndup(state_root, (size_t)(p - state_root))
                                              : kpa_xstrdup(state_root);
                if (mkdir(part, 0711) < 0 && errno != EEXIST)
                        return fail("--root %s: %s: %s", state_root, part, strerror(errno));
                if (!p)
                        break;
        }
        _cleanup_free_ char *dir = state_dir(id);
        if (mkdir(dir, 0700) < 0)
                return fail(errno == EEXIST ? "container \"%s\" exists already" : "%s: %s",
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
        int r = state_save(id, st);
        if (r == 0 && cfg->spec->tty && !o->console_socket)
                r = fail("config.json: process.terminal: a terminal needs --console-socket");
        if (r == 0 && !cfg->spec->tty && o->console_socket)
                r = fail("--console-socket: only for a terminal (process.terminal is false)");
        _cleanup_free_ char *fifo = kpa_xasprintf("%s/exec.fifo", dir);
        if (r == 0 && mkfifo(fifo, 0600) < 0)
                r = fail("%s: %s", fifo, strerror(errno));
        if (r == 0)
                r = apply_inherited(cfg);
        kpa_instance_spec *spec = cfg->spec;
        spec->start_fifo = kpa_xstrdup(fifo);
        spec->cgroup_parent = cgroup_parent_of(cfg->cgroups_path);
        if (r == 0 && kpa_sandbox_spawn(spec, -1, sb, &err) < 0)
                r = fail("%s", err.message);
        if (r == 0 && (r = wait_prepared(sb)) != 0)
                kill_and_forget(sb);
        if (r == 0 && sb->tty_fd >= 0 && (r = send_console(o->console_socket, sb->tty_fd)) != 0)
                kill_and_forget(sb);
        if (sb->tty_fd >= 0 && r == 0)
                closep(&sb->tty_fd);
        if (r == 0 && (r = write_sysctls(sb->pid, cfg->sysctl)) != 0)
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
        r = state_save(id, st);
        if (r == 0 && o->pid_file) {
                _cleanup_free_ char *tmp = kpa_xasprintf("%s.kpa-oci-new", o->pid_file);
                FILE *f = fopen(tmp, "we");
                if (!f || fprintf(f, "%d", (int)sb->pid) < 0 || fclose(f) != 0 ||
                    rename(tmp, o->pid_file) < 0)
                        r = fail("--pid-file %s: %s", o->pid_file, strerror(errno));
        }
        if (r == 0)
                r = run_hooks(id, st, "createRuntime", true);
        if (r == 0)
                r = run_hooks(id, st, "prestart", true);
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

static int do_start(const char *id, json_object *st)
{
        const char *status = status_of(id, st);
        if (strcmp(status, "created") != 0)
                return fail("container \"%s\" is %s, not created: cannot start it", id, status);
        _cleanup_free_ char *fifo = kpa_xasprintf("%s/%s/exec.fifo", state_root, id);
        _cleanup_close_ int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return fail("container \"%s\": its init does not wait for a start (%s)", id,
                            strerror(errno));
        if (write(fd, "0", 1) != 1)
                return fail("container \"%s\": cannot release its init: %s", id, strerror(errno));
        unlink(fifo);
        /* the init closes its end once the process has executed (or failed
         * to), or when it ends: the poststart hooks and the caller's next
         * step (a kill) then find the process itself, as the runtime
         * specification asks */
        struct pollfd p = {.fd = fd, .events = 0};
        while (poll(&p, 1, -1) < 0 && errno == EINTR)
                ;
        run_hooks(id, st, "poststart", false);
        return 0;
}

static int parse_signal(const char *s)
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

static int signal_init(const char *id, json_object *st, int sig, bool all)
{
        const char *status = status_of(id, st);
        if (strcmp(status, "created") != 0 && strcmp(status, "running") != 0)
                return fail("container \"%s\" is not running (%s)", id, status);
        pid_t pid = (pid_t)st_int(st, "pid");
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        /* the pid is the one recorded, not a reused one */
        if (pidfd < 0 || proc_start_time(pid) != (unsigned long long)st_int(st, "kpaStartTime"))
                return fail("container \"%s\" is not running", id);
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
                return fail("container \"%s\": kill: %s", id, strerror(errno));
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

static int do_delete(const char *id, json_object *st, bool force)
{
        const char *status = status_of(id, st);
        if (strcmp(status, "running") == 0 && !force)
                return fail("container \"%s\" is running: stop it first, or delete --force", id);
        if (strcmp(status, "stopped") != 0 && strcmp(status, "creating") != 0) {
                (void)signal_init(id, st, SIGKILL, true);
                if (!wait_gone(st, 10000))
                        return fail("container \"%s\": its init did not end after SIGKILL", id);
        }
        kpa_cgroup *cg = NULL;
        int r = 0;
        if (open_cgroup(id, st, &cg) == 0 && cg) {
                kpa_error err = {0};
                (void)kpa_cgroup_kill(cg, &err);
                if (kpa_cgroup_destroy(cg, &err) < 0)
                        r = fail("container \"%s\": %s", id, err.message);
        }
        run_hooks(id, st, "poststop", false);
        _cleanup_free_ char *dir = state_dir(id);
        if (kpa_rm_rf_at(AT_FDCWD, dir) < 0)
                r = fail("%s: cannot remove: %s", dir, strerror(errno));
        return r;
}

/* ---- commands ---- */

static int cmd_state(int argc, char **argv)
{
        if (argc != 2)
                return cli_usage_error("state needs one container id");
        json_object *st;
        if (state_load(argv[1], &st) != 0)
                return EXIT_FAILURE;
        json_object *pub = public_state(argv[1], st);
        printf("%s\n", json_object_to_json_string_ext(pub, JSON_C_TO_STRING_PRETTY));
        json_object_put(pub);
        json_object_put(st);
        return 0;
}

static int cmd_start(int argc, char **argv)
{
        if (argc != 2)
                return cli_usage_error("start needs one container id");
        json_object *st;
        if (state_load(argv[1], &st) != 0)
                return EXIT_FAILURE;
        int r = do_start(argv[1], st);
        json_object_put(st);
        return r;
}

static int cmd_kill(int argc, char **argv)
{
        static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {0}};
        bool all = false;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+a", opts, NULL)) != -1) {
                if (c != 'a')
                        return cli_usage_error("kill: unknown option");
                all = true;
        }
        if (argc - optind < 1 || argc - optind > 2)
                return cli_usage_error("kill needs a container id and an optional signal");
        int sig = argc - optind == 2 ? parse_signal(argv[optind + 1]) : SIGTERM;
        if (sig < 0)
                return fail("signal \"%s\": unknown", argv[optind + 1]);
        json_object *st;
        if (state_load(argv[optind], &st) != 0)
                return EXIT_FAILURE;
        int r = signal_init(argv[optind], st, sig, all);
        json_object_put(st);
        return r;
}

static int cmd_delete(int argc, char **argv)
{
        static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {0}};
        bool force = false;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
                if (c != 'f')
                        return cli_usage_error("delete: unknown option");
                force = true;
        }
        if (argc - optind != 1)
                return cli_usage_error("delete needs one container id");
        json_object *st;
        if (state_load_quiet(argv[optind], &st, force) != 0) {
                /* runc: a forced delete of what is gone already is done */
                return force && kpa_oci_id_valid(argv[optind]) ? 0 : EXIT_FAILURE;
        }
        int r = do_delete(argv[optind], st, force);
        json_object_put(st);
        return r;
}

/* create and run share their options */
static int parse_create(int argc, char **argv, create_opts *o, bool *detach, bool run)
{
        static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                             {"pid-file", required_argument, NULL, 'p'},
                                             {"console-socket", required_argument, NULL, 'c'},
                                             {"detach", no_argument, NULL, 'd'},
                                             {"no-pivot", no_argument, NULL, 'P'},
                                             {"no-new-keyring", no_argument, NULL, 'K'},
                                             {"preserve-fds", required_argument, NULL, 'F'},
                                             {0}};
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+b:d", opts, NULL)) != -1) {
                switch (c) {
                case 'b': o->bundle = optarg; break;
                case 'p': o->pid_file = optarg; break;
                case 'c': o->console_socket = optarg; break;
                case 'd':
                        if (!run)
                                return cli_usage_error("create: --detach is for run");
                        *detach = true;
                        break;
                case 'P': return fail("--no-pivot: not supported (kpa always uses pivot_root)");
                case 'K': break; /* kpa gives the container a new session keyring anyway */
                case 'F':
                        if (!optarg || strcmp(optarg, "0") != 0)
                                return fail("--preserve-fds %s: not supported", optarg);
                        break;
                default: return cli_usage_error("%s: unknown option", run ? "run" : "create");
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("%s needs one container id", run ? "run" : "create");
        return 0;
}

static int cmd_create(int argc, char **argv)
{
        create_opts o = {0};
        bool detach = false;
        int r = parse_create(argc, argv, &o, &detach, false);
        if (r != 0)
                return r;
        kpa_sandbox sb = {.pidfd = -1, .report_fd = -1};
        json_object *st = NULL;
        r = do_create(argv[optind], &o, &sb, &st);
        if (r != 0)
                return r;
        /* the init stays; whoever reaps our children (conmon, the shim) reaps it */
        kpa_cgroup_forget(sb.cgroup);
        close(sb.pidfd);
        close(sb.report_fd);
        json_object_put(st);
        return 0;
}

static int cmd_run(int argc, char **argv)
{
        create_opts o = {0};
        bool detach = false;
        int r = parse_create(argc, argv, &o, &detach, true);
        if (r != 0)
                return r;
        const char *id = argv[optind];
        kpa_sandbox sb;
        json_object *st = NULL;
        r = do_create(id, &o, &sb, &st);
        if (r != 0)
                return r;
        r = do_start(id, st);
        if (r != 0 || detach) {
                if (r != 0)
                        do_delete(id, st, true);
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
        r = do_delete(id, st, true);
        json_object_put(st);
        return r != 0 ? r : code;
}

/* the process of an exec: --process FILE, or the container's own process
 * with the command line's args, env, cwd and user */
static int exec_process(json_object *st, const char *process_file, char **args, json_object *env,
                        const char *cwd, const char *user, json_object **out)
{
        if (process_file) {
                *out = json_object_from_file(process_file);
                return *out ? 0 : fail("--process %s: cannot read it as JSON", process_file);
        }
        if (!args[0])
                return cli_usage_error("exec needs a command, or --process");
        _cleanup_free_ char *path = kpa_xasprintf("%s/config.json", st_str(st, "bundle"));
        json_object *cfg = json_object_from_file(path), *proc;
        if (!cfg || !json_object_object_get_ex(cfg, "process", &proc)) {
                json_object_put(cfg);
                return fail("%s: cannot read the container's process", path);
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
                        return fail("--user %s: UID[:GID] in numbers", user);
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

static int cmd_exec(int argc, char **argv)
{
        static const struct option opts[] = {{"process", required_argument, NULL, 'p'},
                                             {"detach", no_argument, NULL, 'd'},
                                             {"pid-file", required_argument, NULL, 'P'},
                                             {"console-socket", required_argument, NULL, 'c'},
                                             {"tty", no_argument, NULL, 't'},
                                             {"cwd", required_argument, NULL, 'w'},
                                             {"env", required_argument, NULL, 'e'},
                                             {"user", required_argument, NULL, 'u'},
                                             {"preserve-fds", required_argument, NULL, 'F'},
                                             {"no-new-privs", no_argument, NULL, 'n'},
                                             {0}};
        const char *process_file = NULL, *pid_file = NULL, *cwd = NULL, *user = NULL;
        const char *console_socket = NULL;
        bool detach = false, no_new_privs = false, tty = false;
        json_object *env = json_object_new_array();
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+p:dtw:e:u:", opts, NULL)) != -1) {
                switch (c) {
                case 'p': process_file = optarg; break;
                case 'd': detach = true; break;
                case 'P': pid_file = optarg; break;
                case 'c': console_socket = optarg; break;
                case 't': tty = true; break;
                case 'w': cwd = optarg; break;
                case 'e': json_object_array_add(env, json_object_new_string(optarg)); break;
                case 'u': user = optarg; break;
                case 'n': no_new_privs = true; break;
                case 'F':
                        if (strcmp(optarg, "0") != 0) {
                                json_object_put(env);
                                return fail("--preserve-fds %s: not supported", optarg);
                        }
                        break;
                default: json_object_put(env); return cli_usage_error("exec: unknown option");
                }
        }
        if (optind >= argc) {
                json_object_put(env);
                return cli_usage_error("exec needs a container id");
        }
        const char *id = argv[optind];
        json_object *st = NULL, *proc = NULL;
        _cleanup_(kpa_oci_config_freep) kpa_oci_config *cfg = NULL;
        kpa_cgroup *cg = NULL;
        kpa_error err = {0};
        pid_t pid = 0;
        int r = state_load(id, &st);
        if (r == 0 && strcmp(status_of(id, st), "running") != 0)
                r = fail("container \"%s\" is %s, not running", id, status_of(id, st));
        if (r == 0)
                r = exec_process(st, process_file, argv + optind + 1, env, cwd, user, &proc);
        if (r == 0 && no_new_privs && json_object_is_type(proc, json_type_object))
                json_object_object_add(proc, "noNewPrivileges", json_object_new_boolean(1));
        if (r == 0 && tty && json_object_is_type(proc, json_type_object))
                json_object_object_add(proc, "terminal", json_object_new_boolean(1));
        if (r == 0 && kpa_oci_config_load(st_str(st, "bundle"), id, &cfg, &err) < 0)
                r = fail("%s", err.message);
        /* create warned about the config's own; exec, about its process's */
        size_t warned = cfg ? cfg->n_ignored : 0;
        _cleanup_free_ char *root =
                r == 0 ? kpa_xasprintf("/proc/%d/root", (int)st_int(st, "pid")) : NULL;
        _cleanup_close_ int rootfd = root ? open(root, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        if (r == 0 && rootfd < 0)
                r = fail("container \"%s\": its root: %s", id, strerror(errno));
        if (r == 0 && kpa_oci_process_parse(cfg, proc, rootfd, &err) < 0)
                r = fail("%s", err.message);
        if (r == 0)
                warn_ignored(cfg, warned);
        /* a terminal (-t, or the process object's "terminal"): its master
         * goes to --console-socket, as for create */
        if (r == 0 && cfg->spec->tty && !console_socket)
                r = fail("exec: a terminal needs --console-socket");
        if (r == 0 && !cfg->spec->tty && console_socket)
                r = fail("--console-socket: only for a terminal (-t, or process.terminal)");
        _cleanup_close_ int console = -1;
        if (r == 0 && console_socket)
                r = connect_console(console_socket, &console);
        if (r == 0)
                r = apply_inherited(cfg);
        if (r == 0 && open_cgroup(id, st, &cg) < 0)
                r = fail("container \"%s\": cannot open its cgroup", id);
        if (r == 0 &&
            kpa_oci_exec_spawn((pid_t)st_int(st, "pid"), cg, cfg->spec, console, &pid, &err) < 0)
                r = fail("%s", err.message);
        closep(&console);
        kpa_cgroup_forget(cg);
        json_object_put(proc);
        json_object_put(env);
        json_object_put(st);
        if (r == 0 && pid_file) {
                FILE *f = fopen(pid_file, "we");
                if (!f || fprintf(f, "%d", (int)pid) < 0 || fclose(f) != 0)
                        r = fail("--pid-file %s: %s", pid_file, strerror(errno));
        }
        if (r != 0 || detach)
                return r;
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_features(void)
{
        static const char *const text =
                "{\n"
                "  \"ociVersionMin\": \"1.0.0\",\n"
                "  \"ociVersionMax\": \"1.2.0\",\n"
                "  \"hooks\": [\"prestart\", \"createRuntime\", \"poststart\", \"poststop\"],\n"
                "  \"mountOptions\": [\"ro\", \"rw\", \"nosuid\", \"nodev\", \"noexec\", "
                "\"relatime\", \"strictatime\", \"noatime\", \"nodiratime\", \"bind\", \"rbind\", "
                "\"private\", \"rprivate\"],\n"
                "  \"linux\": {\n"
                "    \"namespaces\": [\"pid\", \"network\", \"ipc\", \"uts\", \"mount\", "
                "\"cgroup\"],\n"
                "    \"capabilities\": [";
        static const char *const tail =
                "],\n"
                "    \"cgroup\": {\"v1\": true, \"v2\": true, \"systemd\": false, "
                "\"systemdUser\": false},\n"
                "    \"seccomp\": {\"enabled\": false},\n"
                "    \"apparmor\": {\"enabled\": false},\n"
                "    \"selinux\": {\"enabled\": false},\n"
                "    \"intelRdt\": {\"enabled\": false},\n"
                "    \"mountExtensions\": {\"idmap\": {\"enabled\": false}}\n"
                "  },\n"
                "  \"annotations\": {\"org.kpa.runtime\": \"kpa-oci\"}\n"
                "}\n";
        fputs(text, stdout);
        /* the capabilities config.json may keep: those this kernel knows */
        char name[32];
        for (int c = 0; kpa_cap_name(c, name, sizeof(name)) == 0; c++)
                printf("%s\"%s\"", c ? ", " : "", name);
        fputs(tail, stdout);
        return 0;
}

/* A config.json to start from, as `runc spec` writes (busybox-friendly). */
static int cmd_spec(int argc, char **argv)
{
        static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'}, {0}};
        const char *bundle = ".";
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+b:", opts, NULL)) != -1) {
                if (c != 'b')
                        return cli_usage_error("spec: unknown option");
                bundle = optarg;
        }
        static const char *const text =
                "{\n"
                "  \"ociVersion\": \"1.0.2\",\n"
                "  \"process\": {\n"
                "    \"terminal\": false,\n"
                "    \"user\": {\"uid\": 0, \"gid\": 0},\n"
                "    \"args\": [\"sh\"],\n"
                "    \"env\": "
                "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\n"
                "    \"cwd\": \"/\",\n"
                "    \"noNewPrivileges\": true\n"
                "  },\n"
                "  \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
                "  \"hostname\": \"kpa-oci\",\n"
                "  \"mounts\": [\n"
                "    {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
                "    {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
                "     \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},\n"
                "    {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": "
                "\"devpts\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", "
                "\"mode=0620\"]},\n"
                "    {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", "
                "\"size=65536k\"]},\n"
                "    {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": "
                "\"mqueue\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},\n"
                "    {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]},\n"
                "    {\"destination\": \"/tmp\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
                "     \"options\": [\"nosuid\", \"nodev\", \"mode=1777\"]}\n"
                "  ],\n"
                "  \"linux\": {\n"
                "    \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": "
                "\"ipc\"},\n"
                "                   {\"type\": \"uts\"}, {\"type\": \"mount\"}, {\"type\": "
                "\"cgroup\"}],\n"
                "    \"maskedPaths\": [\"/proc/kcore\", \"/proc/keys\", \"/proc/timer_list\", "
                "\"/sys/firmware\"],\n"
                "    \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", "
                "\"/proc/sys\", "
                "\"/proc/sysrq-trigger\"]\n"
                "  }\n"
                "}\n";
        _cleanup_free_ char *path = kpa_xasprintf("%s/config.json", bundle);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return fail("%s: %s", path, strerror(errno));
        int r = kpa_write_all(fd, text, strlen(text));
        close(fd);
        return r < 0 ? fail("%s: %s", path, strerror(-r)) : 0;
}

static void usage(void)
{
        printf("Usage: %s [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n"
               "An OCI runtime (runtime-spec 1.x) that runs containers in kpa's sandbox.\n\n"
               "Commands:\n"
               "  create [-b BUNDLE] [--pid-file FILE] [--console-socket PATH] ID\n"
               "                                            set the container up; it waits for "
               "start\n"
               "  start ID                                  start the process of a created "
               "container\n"
               "  run [-b BUNDLE] [--pid-file FILE] [-d] ID create, start, wait, delete\n"
               "  state ID                                  print the state JSON\n"
               "  kill [--all] ID [SIGNAL]                  send SIGNAL (default SIGTERM)\n"
               "  delete [--force] ID                       remove a stopped (or, forced, any) "
               "container\n"
               "  features                                  print what is supported, as JSON\n"
               "  spec [-b BUNDLE]                          write a config.json to start from\n"
               "  exec [--process FILE] [-d] [--pid-file FILE] [-t --console-socket PATH]\n"
               "       ID [COMMAND...]                      run a further process in a running "
               "one\n\n"
               "Global options:\n"
               "  --root DIR          state directory (default %s)\n"
               "  --log FILE          also write messages to FILE\n"
               "  --log-format FMT    text (default) or json\n"
               "  --systemd-cgroup    refused: only the cgroupfs driver is supported\n"
               "  --debug             accepted, no effect\n"
               "  -h, --help          this help\n"
               "  -v, --version       the version\n"
               "See kpa-oci(8) for the config.json fields it honours and those it refuses.\n",
               cli_program(), DEFAULT_ROOT);
}

enum { OPT_ROOT = 1000, OPT_LOG, OPT_LOG_FORMAT, OPT_SYSTEMD_CGROUP, OPT_DEBUG };

int main(int argc, char **argv)
{
        cli_init(argv[0]);
        static const struct option opts[] = {
                {"root", required_argument, NULL, OPT_ROOT},
                {"log", required_argument, NULL, OPT_LOG},
                {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
                {"systemd-cgroup", no_argument, NULL, OPT_SYSTEMD_CGROUP},
                {"debug", no_argument, NULL, OPT_DEBUG},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'v'},
                {0}};
        const char *log_path = NULL;
        bool systemd = false;
        int c;
        while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ROOT: state_root = optarg; break;
                case OPT_LOG: log_path = optarg; break;
                case OPT_LOG_FORMAT:
                        if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
                                return cli_usage_error("--log-format %s: text or json", optarg);
                        log_json = strcmp(optarg, "json") == 0;
                        break;
                case OPT_SYSTEMD_CGROUP: systemd = true; break;
                case OPT_DEBUG: break;
                case 'h': usage(); return 0;
                case 'v':
                        printf("%s version %s\nspec: 1.2.0\n", cli_program(), PACKAGE_VERSION);
                        return 0;
                default: return cli_usage_error("unknown option");
                }
        }
        if (log_path && !(log_file = fopen(log_path, "ae")))
                return fail("--log %s: %s", log_path, strerror(errno));
        if (systemd)
                return fail("--systemd-cgroup: not supported, use cgroupfs");
        if (optind >= argc)
                return cli_usage_error("no command given");
        const char *cmd = argv[optind];
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;
        if (strcmp(cmd, "create") == 0)
                return cmd_create(sub_argc, sub_argv);
        if (strcmp(cmd, "start") == 0)
                return cmd_start(sub_argc, sub_argv);
        if (strcmp(cmd, "run") == 0)
                return cmd_run(sub_argc, sub_argv);
        if (strcmp(cmd, "state") == 0)
                return cmd_state(sub_argc, sub_argv);
        if (strcmp(cmd, "kill") == 0)
                return cmd_kill(sub_argc, sub_argv);
        if (strcmp(cmd, "delete") == 0)
                return cmd_delete(sub_argc, sub_argv);
        if (strcmp(cmd, "features") == 0)
                return cmd_features();
        if (strcmp(cmd, "spec") == 0)
                return cmd_spec(sub_argc, sub_argv);
        if (strcmp(cmd, "exec") == 0)
                return cmd_exec(sub_argc, sub_argv);
        return cli_usage_error("unknown command \"%s\"", cmd);
}
