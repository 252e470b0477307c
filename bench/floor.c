/* floor.c: the least a sandbox start can cost on this machine, as a row of
 * bench/start.sh (which builds it, statically, and runs it as root). It does
 * what kpa-run's sandbox must do at the least, and nothing else: clone3 into
 * new PID, mount, IPC, UTS, cgroup and network namespaces; a tmpfs root with
 * a read-only bind of /usr, the merged-usr links, /proc and a /dev tmpfs;
 * pivot_root and the detach of the old root; hostname, setsid; the
 * application (/bin/true) started with vfork as PID 2 and waited for. No
 * cgroup, manifest, store, seccomp filter, capability drop, handles or
 * reports: the difference between this row and kpa-run's is the price of
 * those. Everything it mounts lives in its own mount namespace (the root
 * is built on /tmp there, as kpa's is) and goes with it.
 *   floor        exit with /bin/true's status; 120+ on a failed step */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char app_stack[64 * 1024] __attribute__((aligned(16)));

static int app(void *arg)
{
        (void)arg;
        char *argv[] = {"/bin/true", NULL};
        char *envp[] = {NULL};
        execve(argv[0], argv, envp);
        _exit(127);
}

static int root(void)
{
        static const char *const links[][2] = {{"usr/bin", "bin"},
                                               {"usr/sbin", "sbin"},
                                               {"usr/lib", "lib"},
                                               {"usr/lib64", "lib64"}};
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 ||
            chdir("/tmp") < 0 || mkdir("usr", 0755) < 0 || mkdir("proc", 0755) < 0 ||
            mkdir("dev", 0755) < 0 || mount("/usr", "usr", NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, "usr", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                  NULL) < 0)
                return -1;
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
                if (symlink(links[i][0], links[i][1]) < 0)
                        return -1;
        if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") < 0 ||
            mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
            syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
                return -1;
        return 0;
}

static _Noreturn void child(void)
{
        if (root() < 0)
                _exit(121);
        if (sethostname("floor", 5) < 0 || setsid() < 0)
                _exit(122);
        pid_t pid =
                clone(app, app_stack + sizeof(app_stack), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                _exit(123);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 124);
}

int main(void)
{
        struct clone_args args = {
                .flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
                         CLONE_NEWCGROUP | CLONE_NEWNET,
                .exit_signal = SIGCHLD,
        };
        pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                child();
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid) {
                perror("floor: clone3");
                return 120;
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
