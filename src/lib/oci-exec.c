/* oci-exec.c: a further process in a running container (kpa-oci exec).
 * It owns the way in: join the container's cgroup, then all its namespaces
 * (through a pidfd of its init), and start the process as a sibling-level
 * child of the caller (CLONE_PARENT from an intermediate child, so that it
 * is the caller's child and in the container's PID namespace); then the
 * same last steps as the sandbox's application: new session, the
 * capabilities the process object keeps, no_new_privs if it asks, the ids,
 * the directory, the filter, exec. A terminal (exec -t) is a pty of the
 * container's devpts, opened once in its namespaces, its master sent to the
 * engine's console socket, as for a container's process.
 * Failures before exec come back as a step name and errno through a pipe. */
#include "config.h"

#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "caps.h"
#include "oci-config.h"
#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

typedef struct exec_failure {
        int32_t step; /* index into steps[] */
        int32_t err;
} exec_failure;

static const char *const steps[] = {"join the cgroup",
                                    "join the namespaces",
                                    "fork",
                                    "setsid",
                                    "drop privileges",
                                    "change to the working directory",
                                    "join a new session keyring",
                                    "install the seccomp filter",
                                    "exec",
                                    "open a terminal",
                                    "send the terminal to --console-socket"};
enum {
        S_CGROUP,
        S_SETNS,
        S_FORK,
        S_SETSID,
        S_PRIV,
        S_CWD,
        S_KEYRING,
        S_SECCOMP,
        S_EXEC,
        S_TTY,
        S_TTY_SEND
};

static _Noreturn void die(int fd, int step, int err)
{
        exec_failure f = {.step = step, .err = err};
        (void)!write(fd, &f, sizeof(f));
        _exit(127);
}

/* a new session keyring (before the filter, which may refuse keyctl), then the filter */
static void keyring_and_filter(const kpa_seccomp_prog *prog, int fd)
{
        const char *failed = NULL;
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0L, 0L, 0L, 0L) < 0 && errno != ENOSYS)
                die(fd, S_KEYRING, errno);
        int r = kpa_seccomp_apply(prog, &failed);
        if (r < 0)
                die(fd, S_SECCOMP, -r);
}

/* A pty of the container's devpts (its /dev/ptmx, in its mount namespace
 * already), as the sandbox makes one for a container's process: the master
 * goes over CONSOLE_FD, the slave (owned by the process's ids) is returned. */
static int open_tty(const kpa_instance_spec *spec, int console_fd, int fd)
{
        _cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        int unlock = 0;
        if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0)
                die(fd, S_TTY, errno);
        if (spec->tty_rows && spec->tty_cols) {
                struct winsize ws = {.ws_row = spec->tty_rows, .ws_col = spec->tty_cols};
                if (ioctl(master, TIOCSWINSZ, &ws) < 0)
                        die(fd, S_TTY, errno);
        }
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0 || fchown(slave, spec->uid, spec->gid) < 0)
                die(fd, S_TTY, errno);
        char name[] = "/dev/ptmx";
        struct iovec iov = {.iov_base = name, .iov_len = sizeof(name) - 1};
        ssize_t w = kpa_send_fds(console_fd, &iov, 1, &master, 1);
        if (w < 0)
                die(fd, S_TTY_SEND, (int)-w);
        return slave;
}

/* the process itself, in the container's namespaces; TTY: its terminal, or -1 */
static _Noreturn void exec_child(const kpa_instance_spec *spec, const kpa_seccomp_prog *prog,
                                 int tty, int fd)
{
        signal(SIGPIPE, SIG_DFL);
        if (setsid() < 0)
                die(fd, S_SETSID, errno);
        if (tty >= 0 && (dup2(tty, 0) < 0 || dup2(tty, 1) < 0 || dup2(tty, 2) < 0 ||
                         ioctl(0, TIOCSCTTY, 0) < 0))
                die(fd, S_TTY, errno);
        const kpa_caps_keep *keep = spec->keep_caps;
        /* without no_new_privs the filter needs CAP_SYS_ADMIN: first (sandbox.c) */
        const bool filter_first = keep && !keep->no_new_privs;
        if (filter_first)
                keyring_and_filter(prog, fd);
        const char *failed = NULL;
        int r = kpa_privileges_drop_keep(spec->uid, spec->gid, keep, &failed);
        if (r < 0)
                die(fd, S_PRIV, -r);
        if (chdir(spec->cwd ? spec->cwd : "/") < 0)
                die(fd, S_CWD, errno);
        if (!filter_first)
                keyring_and_filter(prog, fd);
        execve(spec->exec_path, spec->argv, spec->envp);
        die(fd, S_EXEC, errno);
}

int kpa_oci_exec_spawn(pid_t init_pid, kpa_cgroup *cg, const kpa_instance_spec *spec,
                       int console_fd, pid_t *pid, kpa_error *err)
{
        _cleanup_(kpa_seccomp_prog_free) kpa_seccomp_prog built = {0};
        const kpa_seccomp_prog *prog = spec->seccomp_prog;
        int r;
        if (!prog) {
                if ((r = kpa_seccomp_build(&spec->seccomp, &built, err)) < 0)
                        return r;
                prog = &built;
        }
        if ((r = kpa_privileges_prepare()) < 0)
                return kpa_error_set_errno(err, -r, "cannot prepare the capability sets");
        const int *attach = NULL;
        size_t n_attach = 0;
        if (cg && (r = kpa_cgroup_attach_fds(cg, &attach, &n_attach, err)) < 0)
                return r;
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, init_pid, 0);
        if (pidfd < 0)
                return kpa_error_set_errno(err, errno, "the container's init (pid %d)",
                                           (int)init_pid);
        int fail_pipe[2], pid_pipe[2];
        if (pipe2(fail_pipe, O_CLOEXEC) < 0)
                return kpa_error_set_errno(err, errno, "pipe");
        if (pipe2(pid_pipe, O_CLOEXEC) < 0) {
                kpa_close_fds(fail_pipe, 2);
                return kpa_error_set_errno(err, errno, "pipe");
        }
        pid_t mid = fork();
        if (mid == 0) {
                close(fail_pipe[0]);
                close(pid_pipe[0]);
                if (n_attach && kpa_cgroup_join_self(attach, n_attach) < 0)
                        die(fail_pipe[1], S_CGROUP, errno);
                if (setns(pidfd, CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET |
                                         CLONE_NEWPID | CLONE_NEWCGROUP) < 0)
                        die(fail_pipe[1], S_SETNS, errno);
                int tty = spec->tty ? open_tty(spec, console_fd, fail_pipe[1]) : -1;
                /* the process is the caller's child, in the container's PID namespace */
                pid_t p = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
                if (p == 0) {
                        close(pid_pipe[1]);
                        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                        exec_child(spec, prog, tty, fail_pipe[1]);
                }
                if (p < 0)
                        die(fail_pipe[1], S_FORK, errno);
                int32_t v = p;
                (void)!write(pid_pipe[1], &v, sizeof(v));
                _exit(0);
        }
        int saved = errno;
        close(fail_pipe[1]);
        close(pid_pipe[1]);
        if (cg)
                kpa_cgroup_close_attach_fds(cg);
        if (mid < 0) {
                close(fail_pipe[0]);
                close(pid_pipe[0]);
                return kpa_error_set_errno(err, saved, "fork");
        }
        int32_t v = 0;
        while (read(pid_pipe[0], &v, sizeof(v)) < 0 && errno == EINTR)
                ;
        close(pid_pipe[0]);
        while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
                ;
        exec_failure f;
        ssize_t n;
        while ((n = read(fail_pipe[0], &f, sizeof(f))) < 0 && errno == EINTR)
                ;
        close(fail_pipe[0]);
        if (n == sizeof(f)) {
                if (v > 0)
                        while (waitpid(v, NULL, 0) < 0 && errno == EINTR)
                                ;
                const char *step =
                        f.step >= 0 && (size_t)f.step < ELEMENTSOF(steps) ? steps[f.step] : "?";
                return kpa_error_set_errno(err, f.err, "exec in the container: %s", step);
        }
        *pid = v;
        return 0;
}
