/* probe: a static program that the tests run inside the sandbox as the
 * application. Each subcommand looks at one thing or misbehaves in one way
 * and prints what it saw as key=value lines on stdout, so that the shell
 * tests can grep for them. It links handles.c directly (no libkpa.so is
 * reachable inside the sandbox). Subcommands:
 *
 *   info                 identity, capabilities, processes, network, fds,
 *                        env, argv, cgroup, writable paths, /tmp fs type
 *   handles NAME...      fd and target of each handle; exit 1 if one is missing
 *   exit N               exit with status N
 *   sleep S              print ready=1, sleep S seconds (SIGTERM kills)
 *   ignore-term S        same with SIGTERM ignored
 *   segv                 die of a real segmentation fault
 *   forkbomb [MAX]       fork sleeping children until fork fails (or MAX)
 *   memhog MIB           allocate and touch MIB MiB
 *   orphans N            leave N grandchildren behind (they sleep 1 s)
 *   tiocsti              try to inject a character into the terminal
 *   write FILE TEXT      write TEXT to FILE (created or truncated)
 *   cat FILE             copy FILE to stdout, as is
 *   echo-handle NAME     read one line (or datagram) from the handle, send it back
 *   send NAME TEXT       send TEXT on the handle, print the reply as reply=...
 *   seccomp              call each system call the default filter refuses, with
 *                        harmless arguments, and print sc.NAME=EPERM|ENOSYS|
 *                        <other errno>|ok; then ordinary calls, as ok.NAME=ok
 *   int80                a system call through the i386 ABI (int $0x80, getpid),
 *                        print int80.getpid=RESULT (x86_64 only)
 *   socket FAMILY        create (only: never connect) a socket of FAMILY (a
 *                        number, or vsock, bluetooth, can, inet, unix, ...) and
 *                        print socket.FAMILY=ok|<errno name>
 *   keyring-exec DESC CMD...   outside the sandbox: join a new session
 *                        keyring, add a user key DESC to it, exec CMD
 *   keyring-find DESC    search the session keyring for the user key DESC,
 *                        print keyring.find=ok|<errno name>
 *
 * Failures print error=... (with the errno name) and exit 1. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>
#include <linux/sched.h>
#include <pthread.h>

#include "kpa/handle.h"

extern char **environ;

static const char *errname(int e)
{
        const char *n = strerrorname_np(e);
        return n ? n : "E?";
}

static int die(const char *what)
{
        printf("error=%s: %s\n", what, errname(errno));
        fflush(stdout);
        return 1;
}

static long number(const char *s)
{
        char *end;
        errno = 0;
        long v = s ? strtol(s, &end, 10) : -1;
        if (!s || errno || *end || v < 0) {
                fprintf(stderr, "probe: \"%s\" is not a number\n", s ? s : "");
                exit(2);
        }
        return v;
}

static void sleep_seconds(double s)
{
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ---- info ---- */

static void info_status(void)
{
        static const char *const keys[] = {"NoNewPrivs", "CapInh",  "CapPrm",
                                           "CapEff",     "CapBnd",  "CapAmb",
                                           "Seccomp",    "Cpus_allowed_list"};
        FILE *f = fopen("/proc/self/status", "re");
        if (!f) {
                die("open /proc/self/status");
                return;
        }
        char line[512];
        while (fgets(line, sizeof(line), f)) {
                char *colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = '\0';
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                        if (strcmp(line, keys[i]) == 0)
                                printf("%s=%s", line, colon + 1 + strspn(colon + 1, " \t"));
        }
        fclose(f);
}

static void info_processes(void)
{
        DIR *d = opendir("/proc");
        long n = 0;
        struct dirent *e;
        while (d && (e = readdir(d)))
                if (e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
                    strspn(e->d_name, "0123456789") == strlen(e->d_name))
                        n++;
        if (d)
                closedir(d);
        printf("processes=%ld\n", n);
}

static void info_netifs(void)
{
        FILE *f = fopen("/proc/net/dev", "re");
        char line[512], list[4096] = "";
        int count = 0;
        /* Two header lines, then "  NAME: counters..." */
        for (int ln = 0; f && fgets(line, sizeof(line), f); ln++) {
                char *colon = strchr(line, ':');
                if (ln < 2 || !colon)
                        continue;
                *colon = '\0';
                char *name = line + strspn(line, " ");
                if (strlen(list) + strlen(name) + 2 < sizeof(list)) {
                        if (count)
                                strcat(list, ",");
                        strcat(list, name);
                }
                count++;
        }
        if (f)
                fclose(f);
        printf("netifs=%s\nnetifs.count=%d\n", list, count);
}

static void info_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        if (!d) {
                die("opendir /proc/self/fd");
                return;
        }
        int self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.' || atoi(e->d_name) == self)
                        continue;
                char target[PATH_MAX] = "";
                ssize_t n = readlinkat(self, e->d_name, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = '\0';
                printf("fd.%s=%s\n", e->d_name, target);
        }
        closedir(d);
}

static void info_cgroup(void)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[4096];
        for (int i = 0; f && fgets(line, sizeof(line), f); i++)
                printf("cgroup.%d=%s", i, line);
        if (f)
                fclose(f);
}

static void info_writable(const char *dir)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/.kpa-probe-%ld", strcmp(dir, "/") ? dir : "",
                 (long)getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                printf("writable.%s=0\nwritable.%s.error=%s\n", dir, dir, errname(errno));
                return;
        }
        close(fd);
        unlink(path);
        printf("writable.%s=1\n", dir);
}

/* The package directories: /APP_ID holds the package's manifest.json. */
static void info_writable_all(void)
{
        static const char *const fixed[] = {"/", "/usr", "/storage", "/tmp"};
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
                info_writable(fixed[i]);
        DIR *d = opendir("/");
        struct dirent *e;
        while (d && (e = readdir(d))) {
                char path[PATH_MAX];
                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/%s/manifest.json", e->d_name);
                if (access(path, F_OK) == 0) {
                        snprintf(path, sizeof(path), "/%s", e->d_name);
                        printf("package=%s\n", path);
                        info_writable(path);
                }
        }
        if (d)
                closedir(d);
}

static int cmd_info(int argc, char **argv)
{
        char buf[PATH_MAX];
        printf("pid=%ld\nppid=%ld\n", (long)getpid(), (long)getppid());
        printf("uid=%u\ngid=%u\neuid=%u\negid=%u\n", getuid(), getgid(), geteuid(), getegid());
        printf("sid=%ld\npgid=%ld\n", (long)getsid(0), (long)getpgid(0));
        if (gethostname(buf, sizeof(buf)) == 0)
                printf("hostname=%s\n", buf);
        if (getcwd(buf, sizeof(buf)))
                printf("cwd=%s\n", buf);
        info_status();
        info_processes();
        info_netifs();
        info_fds();
        for (char **e = environ; *e; e++)
                printf("env.%s\n", *e);
        for (int i = 0; i < argc; i++)
                printf("argv.%d=%s\n", i, argv[i]);
        info_cgroup();
        info_writable_all();
        struct statfs sfs;
        if (statfs("/tmp", &sfs) == 0)
                printf("tmp.tmpfs=%d\n", sfs.f_type == TMPFS_MAGIC);
        return 0;
}

/* ---- handles ---- */

static int cmd_handles(int argc, char **argv)
{
        int missing = 0;
        for (int i = 2; i < argc; i++) {
                int fd = kpa_lookup_handle(argv[i]);
                printf("handle.%s=%d\n", argv[i], fd);
                if (fd < 0) {
                        printf("handle.%s.error=%s\n", argv[i], errname(errno));
                        missing = 1;
                        continue;
                }
                char path[64], target[PATH_MAX] = "";
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                ssize_t n = readlink(path, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = '\0';
                printf("handle.%s.target=%s\n", argv[i], n > 0 ? target : errname(errno));
        }
        return missing;
}

/* ---- misbehaviour ---- */

static int cmd_sleep(double s, bool ignore_term)
{
        if (ignore_term)
                signal(SIGTERM, SIG_IGN);
        printf("ready=1\n");
        fflush(stdout);
        sleep_seconds(s);
        printf("slept=1\n");
        return 0;
}

static int cmd_segv(void)
{
        signal(SIGSEGV, SIG_DFL);
        volatile uintptr_t addr = 0;
        /* the crash is the point: the tests check how a SIGSEGV is reported */
        // cppcheck-suppress nullPointer
        *(volatile int *)addr = 1;
        raise(SIGSEGV); /* not reached */
        return 1;
}

/* Children die with the probe (PDEATHSIG), so that it never outlives a test
 * run outside a sandbox. MAX bounds the damage there too. */
static int cmd_forkbomb(long max)
{
        pid_t parent = getpid();
        long n = 0;
        int err = 0;
        fflush(stdout);
        while (n < max) {
                pid_t pid = fork();
                if (pid < 0) {
                        err = errno;
                        break;
                }
                if (pid == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (getppid() != parent)
                                _exit(0);
                        sleep_seconds(60);
                        _exit(0);
                }
                n++;
        }
        printf("forks=%ld\nfork.error=%s\n", n, err ? errname(err) : "none");
        return 0;
}

static int cmd_memhog(long mib)
{
        const size_t chunk = 1 << 20;
        for (long i = 1; i <= mib; i++) {
                char *p = malloc(chunk);
                if (!p)
                        return die("malloc");
                memset(p, (int)(i & 0xff) | 1, chunk);
                /* the memory is used, so that no compiler drops it (clang
                 * removes a malloc+memset whose result is never read) */
                __asm__ volatile("" : : "r"(p) : "memory");
                if (i % 16 == 0 || i == mib) {
                        printf("allocated=%ld\n", i);
                        fflush(stdout);
                }
        }
        printf("survived=1\n");
        return 0;
}

static int cmd_orphans(long n)
{
        fflush(stdout);
        for (long i = 0; i < n; i++) {
                pid_t pid = fork();
                if (pid < 0)
                        return die("fork");
                if (pid == 0) {
                        if (fork() == 0) {
                                sleep_seconds(1);
                                _exit(0);
                        }
                        _exit(0);
                }
                waitpid(pid, NULL, 0);
        }
        printf("orphans=%ld\n", n);
        return 0;
}

static const char *try_tiocsti(int fd)
{
        char c = 'x';
        return ioctl(fd, TIOCSTI, &c) == 0 ? "ok" : errname(errno);
}

static int cmd_tiocsti(void)
{
        printf("tiocsti=%s\n", try_tiocsti(0));
        int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                printf("tiocsti.tty=%s\n", errname(errno));
        } else {
                printf("tiocsti.tty=%s\n", try_tiocsti(fd));
                close(fd);
        }
        return 0;
}

/* ---- files ---- */

static int cmd_write(const char *file, const char *text)
{
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return die(file);
        size_t len = strlen(text);
        ssize_t n = write(fd, text, len);
        if (n < 0 || (size_t)n != len || close(fd) < 0)
                return die(file);
        printf("written=%zu\n", len);
        return 0;
}

static int cmd_cat(const char *file)
{
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return die(file);
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (write(1, buf, (size_t)n) != n)
                        return 1;
        close(fd);
        return n < 0 ? die(file) : 0;
}

/* ---- echo-handle ---- */

static int echo_stream(int in)
{
        char line[4096];
        size_t len = 0;
        ssize_t n = 0;
        while (len < sizeof(line) - 1 && (n = read(in, line + len, 1)) == 1)
                if (line[len++] == '\n')
                        break;
        if (n < 0)
                return die("read");
        line[len] = '\0';
        if (write(in, line, len) < 0) {
                if (errno != EBADF && errno != EINVAL)
                        return die("write");
                printf("echo.back=0\n"); /* a read-only handle, a pipe's read end */
        }
        if (len && line[len - 1] == '\n')
                line[--len] = '\0';
        printf("echoed=%s\n", line);
        return 0;
}

static int echo_datagram(int fd)
{
        char buf[65536];
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0)
                return die("recvfrom");
        ssize_t w = fromlen > 0 && from.ss_family != AF_UNSPEC
                            ? sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen)
                            : send(fd, buf, (size_t)n, 0);
        if (w < 0 && errno == EISCONN)
                w = send(fd, buf, (size_t)n, 0);
        if (w < 0)
                return die("send");
        printf("echoed=%.*s\n", (int)(n && buf[n - 1] == '\n' ? n - 1 : n), buf);
        return 0;
}

static int cmd_echo_handle(const char *name)
{
        int fd = kpa_lookup_handle(name);
        if (fd < 0)
                return die(name);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return die("fstat");
        if (!S_ISSOCK(st.st_mode))
                return echo_stream(fd);

        int listening = 0, type = 0;
        socklen_t len = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
        len = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
        if (listening) {
                int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (conn < 0)
                        return die("accept");
                printf("accepted=1\n");
                int r = type == SOCK_STREAM ? echo_stream(conn) : echo_datagram(conn);
                close(conn);
                return r;
        }
        return type == SOCK_STREAM ? echo_stream(fd) : echo_datagram(fd);
}

/* ---- send: the other side of echo-handle over a channel ---- */

static int cmd_send(const char *name, const char *text)
{
        int fd = kpa_lookup_handle(name);
        if (fd < 0)
                return die(name);
        if (send(fd, text, strlen(text), 0) < 0)
                return die("send");
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0)
                return die("recv");
        printf("reply=%.*s\n", (int)n, buf);
        return 0;
}

/* ---- seccomp ---- */

/* Arguments that make each call fail early, and harmlessly, where it is
 * allowed: bad fds, bad pointers (BAD), invalid flags, no such pid. The
 * kernel's answer then is EBADF, EFAULT, EINVAL, ESRCH...: anything but the
 * filter's EPERM (or ENOSYS for clone3), even as root on the host. */
#define BAD ((long)1)

static void sc_result(const char *name, long r)
{
        printf("sc.%s=%s\n", name, r >= 0 ? "ok" : errname(errno));
}

#define SC(name, ...) sc_result(name, syscall(__VA_ARGS__))

static void seccomp_refused(void)
{
        SC("mount", SYS_mount, BAD, BAD, BAD, 0L, 0L);
        SC("umount2", SYS_umount2, BAD, 0L);
        SC("pivot_root", SYS_pivot_root, BAD, BAD);
        SC("chroot", SYS_chroot, BAD);
        SC("fsopen", SYS_fsopen, BAD, 0L);
        SC("fsconfig", SYS_fsconfig, -1L, -1L, 0L, 0L, 0L);
        SC("fsmount", SYS_fsmount, -1L, 0L, 0L);
        SC("fspick", SYS_fspick, -1L, BAD, 0L);
        SC("move_mount", SYS_move_mount, -1L, BAD, -1L, BAD, 0L);
        SC("open_tree", SYS_open_tree, -1L, BAD, 0L);
        SC("mount_setattr", SYS_mount_setattr, -1L, BAD, -1L, 0L, 0L);
        SC("unshare", SYS_unshare, (long)CSIGNAL); /* not a flag of unshare */
        SC("setns", SYS_setns, -1L, 0L);
        /* CLONE_THREAD without CLONE_SIGHAND: EINVAL before anything is made */
        static const struct {
                const char *name;
                long flag;
        } ns[] = {{"clone_newns", CLONE_NEWNS},   {"clone_newuts", CLONE_NEWUTS},
                  {"clone_newipc", CLONE_NEWIPC}, {"clone_newuser", CLONE_NEWUSER},
                  {"clone_newpid", CLONE_NEWPID}, {"clone_newnet", CLONE_NEWNET},
                  {"clone_newcgroup", CLONE_NEWCGROUP}, {"clone_newtime", 0x80}};
        for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
                SC(ns[i].name, SYS_clone, ns[i].flag | CLONE_THREAD, 0L, 0L, 0L, 0L);
        SC("clone3", SYS_clone3, 0L, 0L); /* size 0: EINVAL */
        SC("ioctl_tiocsti", SYS_ioctl, -1L, (long)TIOCSTI, 0L);
        SC("ioctl_tiocsti_high", SYS_ioctl, -1L, (long)(TIOCSTI | (1UL << 32)), 0L);
        SC("ioctl_tioclinux", SYS_ioctl, -1L, (long)TIOCLINUX, 0L);
        SC("kexec_load", SYS_kexec_load, 0L, 0L, 0L, -1L);
        SC("kexec_file_load", SYS_kexec_file_load, -1L, -1L, 0L, 0L, -1L);
        SC("init_module", SYS_init_module, BAD, 0L, BAD);
        SC("finit_module", SYS_finit_module, -1L, 0L, -1L);
        SC("delete_module", SYS_delete_module, BAD, 0L);
        SC("acct", SYS_acct, BAD);
        SC("swapon", SYS_swapon, BAD, 0L);
        SC("swapoff", SYS_swapoff, BAD);
        SC("reboot", SYS_reboot, 0L, 0L, 0L, 0L); /* wrong magic */
        SC("settimeofday", SYS_settimeofday, BAD, BAD);
        SC("clock_settime", SYS_clock_settime, -1L, BAD);
        SC("bpf", SYS_bpf, -1L, 0L, 0L);
        SC("perf_event_open", SYS_perf_event_open, BAD, 0L, -1L, -1L, 0L);
        SC("userfaultfd", SYS_userfaultfd, -1L);
        SC("keyctl", SYS_keyctl, -1L, 0L, 0L, 0L, 0L);
        SC("add_key", SYS_add_key, BAD, BAD, 0L, 0L, 0L);
        SC("request_key", SYS_request_key, BAD, BAD, 0L, 0L);
        SC("ptrace", SYS_ptrace, 2L /* PTRACE_PEEKDATA */, -1L, 0L, 0L);
        SC("process_vm_readv", SYS_process_vm_readv, -1L, 0L, 0L, 0L, 0L, 1L);
        SC("process_vm_writev", SYS_process_vm_writev, -1L, 0L, 0L, 0L, 0L, 1L);
        SC("io_uring_setup", SYS_io_uring_setup, 0L, BAD); /* 0 entries: EINVAL */
        /* a persona that weakens what is execed; set back at once if allowed */
        long old = syscall(SYS_personality, 0xffffffffL);
        long r = syscall(SYS_personality, (long)ADDR_NO_RANDOMIZE);
        sc_result("personality_addr_no_randomize", r);
        if (r >= 0)
                syscall(SYS_personality, old);
}

static void ok_result(const char *name, bool good)
{
        printf("ok.%s=%s\n", name, good ? "ok" : errname(errno));
}

static void *thread_main(void *arg) { return arg; }

/* Ordinary calls still work: files, memory, processes, threads, sockets. */
static void seccomp_ordinary(void)
{
        int fd = open("/tmp/.kpa-probe-seccomp", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        char buf[4] = "";
        ok_result("open_write_read", fd >= 0 && write(fd, "abc", 3) == 3 && pread(fd, buf, 3, 0) == 3 &&
                                            memcmp(buf, "abc", 3) == 0);
        if (fd >= 0)
                close(fd);
        unlink("/tmp/.kpa-probe-seccomp");
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ok_result("mmap", p != MAP_FAILED);
        if (p != MAP_FAILED)
                munmap(p, 4096);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
                _exit(7);
        int status = 0;
        ok_result("fork", pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                                  WEXITSTATUS(status) == 7);
        pthread_t t;
        int e = pthread_create(&t, NULL, thread_main, NULL);
        if (e == 0)
                pthread_join(t, NULL);
        errno = e;
        ok_result("pthread_create", e == 0);
        char *const args[] = {"probe", "exit", "3", NULL};
        e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
        errno = e;
        ok_result("posix_spawn", e == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                                         WEXITSTATUS(status) == 3);
        int sv[2];
        bool sock = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0;
        int n = -1;
        ok_result("socketpair_ioctl", sock && write(sv[0], "x", 1) == 1 && ioctl(sv[1], FIONREAD, &n) == 0 &&
                                              n == 1);
        if (sock) {
                close(sv[0]);
                close(sv[1]);
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ok_result("socket", fd >= 0);
        if (fd >= 0)
                close(fd);
        long persona = syscall(SYS_personality, 0xffffffffL);
        ok_result("personality_query", persona >= 0);
        ok_result("personality_linux", persona >= 0 && syscall(SYS_personality, (long)PER_LINUX) >= 0);
        ok_result("personality_linux32", syscall(SYS_personality, (long)PER_LINUX32) >= 0 &&
                                                 syscall(SYS_personality, (long)PER_LINUX) >= 0);
        fflush(stdout);
        pid = (pid_t)syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
        if (pid == 0)
                _exit(0);
        ok_result("clone_plain", pid > 0 && waitpid(pid, NULL, 0) == pid);
}

static int cmd_seccomp(void)
{
        seccomp_refused();
        seccomp_ordinary();
        return 0;
}

/* A system call through the i386 ABI (int $0x80: getpid, 20 there), which
 * the sandbox's filter refuses by killing the process (x86_64 only). */
static int cmd_int80(void)
{
#if defined(__x86_64__)
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        printf("int80.getpid=%ld\n", ret);
#else
        printf("int80=unsupported\n");
#endif
        fflush(stdout);
        return 0;
}

/* ---- socket families and keyrings ---- */

static int cmd_socket(const char *name)
{
        static const struct {
                const char *name;
                int family;
        } families[] = {{"unix", AF_UNIX},
                        {"inet", AF_INET},
                        {"inet6", AF_INET6},
                        {"netlink", AF_NETLINK},
                        {"packet", AF_PACKET},
                        {"vsock", AF_VSOCK},
                        {"bluetooth", AF_BLUETOOTH},
                        {"can", AF_CAN},
                        {"nfc", AF_NFC},
                        {"alg", AF_ALG},
                        {"tipc", AF_TIPC}};
        int family = -1;
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
                if (strcmp(name, families[i].name) == 0)
                        family = families[i].family;
        if (family < 0)
                family = (int)number(name);
        /* SOCK_DGRAM is what most of these families offer; the kernel's
         * answer for a wrong type is not EAFNOSUPPORT */
        int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 && errno != EAFNOSUPPORT && errno != EPERM)
                fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 && errno != EAFNOSUPPORT && errno != EPERM)
                fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, 0);
        printf("socket.%s=%s\n", name, fd >= 0 ? "ok" : errname(errno));
        if (fd >= 0)
                close(fd);
        return 0;
}

#define KEYCTL_JOIN_SESSION_KEYRING_ 1
#define KEYCTL_SEARCH_ 10
#define KEY_SPEC_SESSION_KEYRING_ (-3L)

static int cmd_keyring_exec(const char *desc, char **cmd)
{
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_, 0L) < 0)
                return die("keyctl join");
        if (syscall(SYS_add_key, "user", desc, "secret", 6L, KEY_SPEC_SESSION_KEYRING_) < 0)
                return die("add_key");
        execvp(cmd[0], cmd);
        return die("exec");
}

static int cmd_keyring_find(const char *desc)
{
        long r = syscall(SYS_keyctl, KEYCTL_SEARCH_, KEY_SPEC_SESSION_KEYRING_, "user", desc, 0L);
        printf("keyring.find=%s\n", r >= 0 ? "ok" : errname(errno));
        return 0;
}

static int usage(void)
{
        fprintf(stderr, "usage: probe info|handles NAME...|exit N|sleep S|sleep-exit S "
                        "N|ignore-term S|segv|"
                        "forkbomb [MAX]|memhog MIB|orphans N|tiocsti|write FILE TEXT|"
                        "cat FILE|echo-handle NAME|send NAME TEXT|seccomp|int80|socket FAMILY|"
                        "keyring-exec DESC CMD...|keyring-find DESC\n");
        return 2;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 2)
                return usage();
        const char *cmd = argv[1];
        const char *a = argc > 2 ? argv[2] : NULL;
        int r;

        if (strcmp(cmd, "info") == 0)
                r = cmd_info(argc, argv);
        else if (strcmp(cmd, "handles") == 0)
                r = cmd_handles(argc, argv);
        else if (strcmp(cmd, "exit") == 0 && a)
                r = (int)number(a);
        else if (strcmp(cmd, "sleep") == 0 && a)
                r = cmd_sleep(strtod(a, NULL), false);
        else if (strcmp(cmd, "sleep-exit") == 0 && argc == 4)
                r = cmd_sleep(strtod(a, NULL), false) ? 1 : (int)number(argv[3]);
        else if (strcmp(cmd, "ignore-term") == 0 && a)
                r = cmd_sleep(strtod(a, NULL), true);
        else if (strcmp(cmd, "segv") == 0)
                r = cmd_segv();
        else if (strcmp(cmd, "forkbomb") == 0)
                r = cmd_forkbomb(a ? number(a) : 100000);
        else if (strcmp(cmd, "memhog") == 0 && a)
                r = cmd_memhog(number(a));
        else if (strcmp(cmd, "orphans") == 0 && a)
                r = cmd_orphans(number(a));
        else if (strcmp(cmd, "tiocsti") == 0)
                r = cmd_tiocsti();
        else if (strcmp(cmd, "write") == 0 && argc == 4)
                r = cmd_write(argv[2], argv[3]);
        else if (strcmp(cmd, "cat") == 0 && a)
                r = cmd_cat(a);
        else if (strcmp(cmd, "echo-handle") == 0 && a)
                r = cmd_echo_handle(a);
        else if (strcmp(cmd, "send") == 0 && argc == 4)
                r = cmd_send(a, argv[3]);
        else if (strcmp(cmd, "int80") == 0)
                r = cmd_int80();
        else if (strcmp(cmd, "seccomp") == 0)
                r = cmd_seccomp();
        else if (strcmp(cmd, "socket") == 0 && a)
                r = cmd_socket(a);
        else if (strcmp(cmd, "keyring-exec") == 0 && argc >= 4)
                r = cmd_keyring_exec(a, argv + 3);
        else if (strcmp(cmd, "keyring-find") == 0 && a)
                r = cmd_keyring_find(a);
        else
                return usage();
        fflush(stdout);
        return r;
}
