/* sandbox-init.c: what runs in the instance after the clone. The child
 * (child_main) joins or makes its network, IPC and UTS namespaces, has its
 * root built (sandbox-root.c), opens its pseudo-terminal, limits its
 * capabilities, receives the seccomp filter and the cgroup's attach files
 * from the parent, joins the cgroup and unshares its cgroup namespace; then
 * it is the init (PID 1: it starts the application as PID 2 with
 * CLONE_VM|CLONE_VFORK, reaps every zombie, forwards signals, reads the OOM
 * verdict, and reports each stage and the exit through the report pipe),
 * and the application's last steps before the exec (session, stdio,
 * handles, ids, keyring, working directory, filter). Nothing here
 * allocates or prints: a failure is a step id and an errno (child_fail). */
#include "config.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "caps.h"
#include "handles.h"
#include "sandbox-priv.h"
#include "util.h"

/* ---- child helpers (run after clone; report failures, never print) ---- */

static void report(int fd, kpa_report_type type, int step, int err, int value)
{
        kpa_report r = {.type = type, .step = step, .err = err, .value = value};
        (void)!write(fd, &r, sizeof(r));
}

_Noreturn void child_fail(const child_ctx *c, kpa_sandbox_step step, int err)
{
        report(c->report_fd, KPA_REPORT_FAILED, step, err < 0 ? -err : err, 0);
        _exit(127);
}

static void receive_root(child_ctx *c)
{
        setup_hdr h;
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        int fds[2];
        size_t n_fds = 0;
        ssize_t n = kpa_recv_fds(c->setup_fd, &iov, 1, fds, 2, &n_fds);
        if (n == 0)
                _exit(127); /* the parent gave up the start: it reports why */
        if (n < 0)
                child_fail(c, KPA_STEP_ROOT, (int)-n);
        if ((size_t)n != sizeof(h) || h.kind != SETUP_ROOT || n_fds != 2) {
                kpa_close_fds(fds, n_fds);
                child_fail(c, KPA_STEP_ROOT, EBADMSG);
        }
        c->root_fd = fds[0];
        c->dev_fd = fds[1];
}

/* spec->tty: open a pseudo-terminal in the instance's own devpts (through
 * /dev/ptmx, so that the slave is /dev/pts/N inside), owned by the
 * application's ids, and send its master to the parent (SETUP_TTY); the
 * slave stays in C for the application. */
static void open_tty(child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(c, KPA_STEP_TTY, master);
        int unlock = 0;
        CHECK(c, KPA_STEP_TTY, ioctl(master, TIOCSPTLCK, &unlock));
        if (spec->tty_rows && spec->tty_cols) {
                struct winsize ws = {.ws_row = spec->tty_rows, .ws_col = spec->tty_cols};
                CHECK(c, KPA_STEP_TTY, ioctl(master, TIOCSWINSZ, &ws));
        }
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(c, KPA_STEP_TTY, slave);
        CHECK(c, KPA_STEP_TTY, fchown(slave, spec->uid, spec->gid));
        setup_hdr h = {.kind = SETUP_TTY, .n_fds = 1};
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        ssize_t w = kpa_send_fds(c->setup_fd, &iov, 1, &master, 1);
        if (w < 0)
                child_fail(c, KPA_STEP_TTY, (int)-w);
        close(master);
        c->tty_slave = slave;
}

/* The init's fd of its group's OOM counters (-1: none). */
static int init_oom_fd = -1;

/* Where the child receives the filter: the init's own copy of the library's
 * memory, which its vfork'ed application shares until the exec. */
static struct sock_filter child_filter[BPF_MAXINSNS];

static void receive_setup(const child_ctx *c, kpa_seccomp_prog *prog)
{
        setup_hdr h;
        struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof(h)},
                               {.iov_base = child_filter, .iov_len = sizeof(child_filter)}};
        int fds[SETUP_MAX_FDS];
        size_t n_fds = 0;
        ssize_t n = kpa_recv_fds(c->setup_fd, iov, 2, fds, SETUP_MAX_FDS, &n_fds);
        if (n == 0)
                _exit(127); /* the parent gave up the start: it reports why */
        if (n < 0)
                child_fail(c, KPA_STEP_CGROUP, (int)-n);
        if ((size_t)n < sizeof(h) || h.kind != SETUP_CGROUP || h.n_fds != n_fds ||
            h.filter_len > BPF_MAXINSNS ||
            (size_t)n != sizeof(h) + h.filter_len * sizeof(struct sock_filter)) {
                kpa_close_fds(fds, n_fds);
                child_fail(c, KPA_STEP_CGROUP, EBADMSG);
        }
        close(c->setup_fd);
        if (h.oom_fd && n_fds > 0)
                init_oom_fd = fds[--n_fds];
        int r = kpa_cgroup_join_self(fds, n_fds);
        kpa_close_fds(fds, n_fds);
        if (r < 0)
                child_fail(c, KPA_STEP_CGROUP, -r);
        prog->len = (unsigned short)h.filter_len;
        prog->filter = child_filter;
        /* the parent kept this child off its own CPU until now */
        if (c->cpus)
                (void)sched_setaffinity(0, sizeof(*c->cpus), c->cpus);
}

/* ---- the application: PID 2 ---- */

const int forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static _Noreturn void app_fail(int fd, kpa_sandbox_step step, int err)
{
        int32_t msg[2] = {step, err};
        (void)!write(fd, msg, sizeof(msg));
        _exit(127);
}

/* stdio: dup every source out of the way first, so that any order of
 * sources (e.g. stdout given as fd 0) ends up right. */
static int setup_stdio(const int stdio[3])
{
        int tmp[3];
        for (int i = 0; i < 3; i++) {
                int src = stdio[i] >= 0 ? stdio[i] : open("/dev/null", (i ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
                if (src < 0)
                        return -1;
                tmp[i] = fcntl(src, F_DUPFD_CLOEXEC, 10);
                if (tmp[i] < 0)
                        return -1;
        }
        for (int i = 0; i < 3; i++)
                if (dup2(tmp[i], i) < 0)
                        return -1;
        return 0;
}

/* A fresh, empty session keyring, owned by the package's uid: the
 * caller's (kpa-run's user, or the daemon's) is not the package's to see,
 * allowKeyring or not. Kernels without keys have nothing to hide (ENOSYS).
 * Before the filter, which may refuse keyctl (so, for an OCI process whose
 * filter comes first, before the ids change: owned by root then, as under
 * runc, and the process possesses it all the same). */
static void join_new_keyring(int err_fd)
{
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0L, 0L, 0L, 0L) < 0 && errno != ENOSYS)
                app_fail(err_fd, KPA_STEP_KEYRING, errno);
}

static _Noreturn void app_main(const child_ctx *c, int err_fd)
{
        const kpa_instance_spec *spec = c->spec;
        sigset_t all;
        sigemptyset(&all);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                signal(forwarded_signals[i], SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &all, NULL);
        kpa_trace("app: started");
        if (setsid() < 0)
                app_fail(err_fd, KPA_STEP_SETSID, errno);
        const int tty_stdio[3] = {c->tty_slave, c->tty_slave, c->tty_slave};
        if (setup_stdio(c->tty_slave >= 0 ? tty_stdio : spec->stdio) < 0)
                app_fail(err_fd, KPA_STEP_STDIO, errno);
        /* its controlling terminal: job control, and ^C as SIGINT */
        if (c->tty_slave >= 0 && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
                app_fail(err_fd, KPA_STEP_TTY, errno);
        /* the handles go to 3..3+n-1; the error pipe rides along at 3+n so
         * that it survives the closing of every other fd, then is CLOEXEC */
        int fds[spec->n_handles + 1];
        if (spec->n_handles) /* (an OCI spec has no handle array at all) */
                memcpy(fds, spec->handle_fds, spec->n_handles * sizeof(int));
        fds[spec->n_handles] = err_fd;
        int r = kpa_handles_install(fds, spec->n_handles + 1);
        if (r < 0)
                app_fail(err_fd, KPA_STEP_HANDLES, -r);
        err_fd = 3 + (int)spec->n_handles;
        fcntl(err_fd, F_SETFD, FD_CLOEXEC);
        /* the saved stderr is closed now (or a handle has its number) */
        trace_to(STDERR_FILENO, "app: stdio, handles");
        const char *failed = NULL;
        /* OCI without no_new_privs: the kernel installs a filter only with
         * no_new_privs or CAP_SYS_ADMIN, which the grant may not keep; so
         * the filter comes first (as under runc), and the keyring, which
         * the filter may refuse, before it */
        const bool filter_first = spec->keep_caps && !spec->keep_caps->no_new_privs;
        if (filter_first) {
                join_new_keyring(err_fd);
                if ((r = kpa_seccomp_apply(c->seccomp, &failed)) < 0)
                        app_fail(err_fd, KPA_STEP_SECCOMP, -r);
        }
        /* the limits are the init's */
        r = kpa_privileges_drop_ids_keep(spec->uid, spec->gid, spec->keep_caps, &failed);
        if (r < 0)
                app_fail(err_fd, KPA_STEP_PRIVILEGES, -r);
        if (!filter_first)
                join_new_keyring(err_fd);
        /* as the application's uid: a directory it cannot enter is refused */
        if (spec->cwd && chdir(spec->cwd) < 0)
                app_fail(err_fd, KPA_STEP_CWD, errno);
        /* in a joined PID namespace the init is no PID 1 whose end ends
         * the rest: the application ends with it (after the ids changed,
         * which clear this) */
        if (spec->pidns_path && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                app_fail(err_fd, KPA_STEP_PRIVILEGES, errno);
        /* last: the filter refuses mount, unshare... that the steps above may use */
        if (!filter_first && (r = kpa_seccomp_apply(c->seccomp, &failed)) < 0)
                app_fail(err_fd, KPA_STEP_SECCOMP, -r);
        trace_to(STDERR_FILENO, "app: privileges dropped, seccomp, exec");
        execve(spec->exec_path, spec->argv, spec->envp);
        app_fail(err_fd, KPA_STEP_EXEC, errno);
}

/* ---- the init: PID 1 ---- */

static int init_signalfd(void)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(&mask, forwarded_signals[i]);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        return signalfd(-1, &mask, SFD_CLOEXEC);
}

static void noop_handler(int sig) { (void)sig; }

static _Noreturn void init_exit(const child_ctx *c, int status)
{
        kpa_trace("init: app ended");
        /* An OOM kill is read here, while this init keeps the group
         * populated: the parent may find it gone (systemd removes an empty
         * scope at once). */
        bool oom = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
                   kpa_oom_fd_killed(init_oom_fd);
        if (c->spec->exit_record_fd >= 0) {
                /* for a supervisor that may not be there to read the report */
                char line[40];
                int len = snprintf(line, sizeof(line), "exited %d%s\n", status, oom ? " oom" : "");
                (void)!pwrite(c->spec->exit_record_fd, line, (size_t)len, 0);
                fdatasync(c->spec->exit_record_fd);
        }
        report(c->report_fd, KPA_REPORT_EXITED, 0, oom ? KPA_EXIT_OOM : 0, status);
        /* leaving kills whatever the application left behind in the namespace */
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* SIG to the instance's processes: every one of its PID namespace but
 * this init; in a joined one (a pod's, spec->pidns_path), whose other
 * processes are not the instance's, the application's process group */
static void signal_instance(const child_ctx *c, pid_t app, int sig)
{
        kill(c->spec->pidns_path ? -app : -1, sig);
}

static _Noreturn void init_loop(const child_ctx *c, int sfd, pid_t app)
{
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = c->death_fd, .events = POLLIN}};
        for (;;) {
                if (poll(pfd, c->death_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(127);
                }
                if (c->death_fd >= 0 && pfd[1].revents) {
                        /* whoever started us is gone: so is the instance */
                        signal_instance(c, app, SIGKILL);
                        _exit(128 + SIGKILL);
                }
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                        continue;
                if (si.ssi_signo != SIGCHLD) {
                        signal_instance(c, app, (int)si.ssi_signo);
                        continue;
                }
                int status;
                pid_t p;
                while ((p = waitpid(-1, &status, WNOHANG)) > 0)
                        if (p == app)
                                init_exit(c, status);
        }
}

/* The application is started with CLONE_VM|CLONE_VFORK, as posix_spawn()
 * does: no copy of the init's page tables, and the init sleeps until the
 * exec (or the application's failure) releases it, which saves 30-170 us
 * over fork() (PERF-NOTES.md). It runs on a stack of its own. What it does
 * before the exec is safe in a child that shares the init's memory: the
 * init is single-threaded and suspended, so the allocations libcap makes
 * see a consistent heap, and everything else is system calls on the
 * child's own fds, signal dispositions and ids (not shared without
 * CLONE_FILES, CLONE_SIGHAND or CLONE_THREAD). */
typedef struct app_args {
        const child_ctx *c;
        int err_fd;
} app_args;

static int app_entry(void *arg)
{
        const app_args *a = arg;
        app_main(a->c, a->err_fd);
}

#define APP_STACK_SIZE (256 * 1024)

static pid_t start_app(const child_ctx *c, int err_fd)
{
        /* only the init, a fresh copy of the caller, ever uses it */
        static char stack[APP_STACK_SIZE] __attribute__((aligned(16)));
        app_args a = {.c = c, .err_fd = err_fd};
        return clone(app_entry, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
}

/* OCI create/start: the sandbox is ready, the application waits for a
 * byte on the start FIFO (kpa-oci start writes it). A FIFO that no writer
 * opened yet polls as empty, so this sleeps until then. A signal meant for
 * the instance ends it before it started; one that comes with the start
 * byte or after it (kpa-oci kill right after start) waits, pending, for
 * the application. The FIFO stays open until the application's exec: its
 * closing tells start that the process runs. */
static void wait_for_start(const child_ctx *c, int sfd)
{
        struct pollfd pfd[2] = {{.fd = c->start_fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        for (;;) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        child_fail(c, KPA_STEP_START_WAIT, errno);
                }
                if (pfd[1].revents && !(pfd[0].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
                                _exit(128 + (int)si.ssi_signo);
                        continue;
                }
                char go;
                ssize_t n = read(c->start_fd, &go, 1);
                if (n == 1)
                        break;
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                _exit(127); /* the starter left without a word */
        }
}

/* ps shows NAME for this init, not the command line of the daemon or tool
 * it was cloned from (util.c); the comm is "kpa-init", all that fits its
 * 16 bytes. */
static void name_init(const char *name)
{
        kpa_proc_title_set("kpa-init", name);
}

static _Noreturn void init_main(const child_ctx *c)
{
        name_init(c->spec->init_name);
        int sfd = init_signalfd();
        if (sfd < 0)
                child_fail(c, KPA_STEP_INIT, errno);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                signal(forwarded_signals[i], noop_handler); /* so that they reach PID 1 */
        /* a report to a supervisor that has died must not kill the instance */
        signal(SIGPIPE, SIG_IGN);
        if (c->start_fd >= 0)
                wait_for_start(c, sfd);
        int err_pipe[2];
        if (pipe2(err_pipe, O_CLOEXEC) < 0)
                child_fail(c, KPA_STEP_FORK, errno);
        kpa_trace("init: fork app");
        pid_t app = start_app(c, err_pipe[1]);
        if (app < 0)
                child_fail(c, KPA_STEP_FORK, errno);
        close(err_pipe[1]);
        if (c->tty_slave >= 0) /* the application's alone: its end closes the pty */
                close(c->tty_slave);
        for (size_t i = 0; i < c->spec->n_handles; i++)
                if (!c->spec->detached || i >= c->spec->n_init_kept_handles)
                        close(c->spec->handle_fds[i]);
        int32_t msg[2];
        ssize_t n;
        while ((n = read(err_pipe[0], msg, sizeof(msg))) < 0 && errno == EINTR)
                ;
        close(err_pipe[0]);
        if (c->start_fd >= 0) /* the exec is done (or failed): start returns */
                close(c->start_fd);
        if (n == sizeof(msg)) {
                waitpid(app, NULL, 0);
                /* OCI: kpa-oci start has returned, nobody reads the report;
                 * the container's stderr (the engine's log) says it */
                if (c->spec->start_fifo)
                        dprintf(STDERR_FILENO, "kpa-oci: the container's process: %s%s%s: %s\n",
                                kpa_sandbox_step_name((kpa_sandbox_step)msg[0]),
                                msg[0] == KPA_STEP_EXEC ? " of " : "",
                                msg[0] == KPA_STEP_EXEC ? c->spec->exec_path : "",
                                strerror(msg[1]));
                child_fail(c, msg[0], msg[1]);
        }
        kpa_trace("init: app running");
        report(c->report_fd, KPA_REPORT_RUNNING, 0, 0, app);
        init_loop(c, sfd, app);
}

/* OCI: join the namespace at PATH (NULL: keep the new one) */
static void join_ns(const child_ctx *c, const char *path, int type)
{
        if (!path)
                return;
        int ns = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(c, KPA_STEP_NETNS, ns);
        CHECK(c, KPA_STEP_NETNS, setns(ns, type));
        close(ns);
}

_Noreturn void child_main(const child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        kpa_trace("child: started");
        if (c->sync_fd >= 0) {
                char go;
                ssize_t n;
                while ((n = read(c->sync_fd, &go, 1)) < 0 && errno == EINTR)
                        ;
                if (n != 1)
                        _exit(127); /* the parent could not map our ids */
                close(c->sync_fd);
        }
        /* No PR_SET_PDEATHSIG: it follows the thread that made us, and a
         * libkpa caller may start from a worker thread that ends long
         * before the instance should. The death pipe (held by the whole
         * starting process) ties the instance to its caller instead: the
         * init's loop ends the instance when it reads end-of-file there. */
        /* out of the caller's session and process group, so that a Ctrl-C
         * at the caller's terminal reaches the caller (which turns it into
         * a Normal stop) and not the instance */
        setsid();
        if (c->death_fd >= 0) {
                struct pollfd p = {.fd = c->death_fd, .events = POLLIN};
                if (poll(&p, 1, 0) > 0)
                        _exit(127); /* the caller is gone already */
        }
        /* The network namespace is made here rather than by clone3: making
         * one costs 300-500 us of CPU, and here it is the child's, spent in
         * parallel with its parent (a kpa-execd serving other clients)
         * instead of inside the parent's clone call. */
        if (spec->netns_path) { /* OCI: a given one */
                join_ns(c, spec->netns_path, CLONE_NEWNET);
        } else if (spec->new_net && c->netns_fd >= 0) { /* from kpa-execd's pool */
                CHECK(c, KPA_STEP_CLONE, setns(c->netns_fd, CLONE_NEWNET));
                close(c->netns_fd);
        } else if (spec->new_net) {
                CHECK(c, KPA_STEP_CLONE, unshare(CLONE_NEWNET));
        }
        join_ns(c, spec->ipcns_path, CLONE_NEWIPC);
        join_ns(c, spec->utsns_path, CLONE_NEWUTS);
        if (spec->hostname)
                CHECK(c, KPA_STEP_HOSTNAME, sethostname(spec->hostname, strlen(spec->hostname)));
        kpa_trace("child: netns, hostname");
        /* rootless: the parent could not clone the mounts to bind (that
         * needs privileges it lacks); this child can, in its own mount
         * namespace, and must before the new root's tmpfs hides them */
        int own_trees[spec->n_mounts + 1];
        child_ctx cc = *c;
        if (spec->start_fifo) { /* a host path: opened before the root changes */
                cc.start_fd = open(spec->start_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                CHECK(c, KPA_STEP_START_WAIT, cc.start_fd);
        }
        if (spec->rootfs) {
                build_oci_root(&cc);
        } else if (spec->userns) {
                for (size_t i = 0; i < spec->n_mounts; i++)
                        own_trees[i] = child_tree(c, &spec->mounts[i]);
                cc.trees = own_trees;
        } else {
                receive_root(&cc);
        }
        if (!spec->rootfs)
                build_root(&cc);
        for (size_t i = 0; i < spec->n_mounts; i++)
                if (cc.trees[i] >= 0)
                        close(cc.trees[i]);
        closep(&cc.root_fd);
        closep(&cc.dev_fd);
        kpa_trace("child: root done");
        if (spec->tty)
                open_tty(&cc);
        if (spec->new_net && c->netns_fd < 0)
                CHECK(c, KPA_STEP_LOOPBACK, loopback_up());
        kpa_trace("child: loopback");
        /* the capability limits, while the parent may still be making the
         * cgroup: the init keeps its effective capabilities, and the
         * application inherits the limits */
        const char *failed = NULL;
        int r = kpa_privileges_limit_keep(spec->keep_caps, &failed);
        if (r < 0)
                child_fail(c, KPA_STEP_PRIVILEGES, -r);
        kpa_seccomp_prog prog;
        receive_setup(c, &prog);
        cc.seccomp = &prog;
        kpa_trace("child: cgroup joined");
        CHECK(c, KPA_STEP_CGROUP_NS, unshare(CLONE_NEWCGROUP));
        report(c->report_fd, KPA_REPORT_PREPARED, 0, 0, 0);
        init_main(&cc);
}
