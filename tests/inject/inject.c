/* inject.c: an LD_PRELOAD shim for the failure-injection tests
 * (tests/integration/inject.sh). It makes one kind of system call fail with
 * a chosen errno, so that the error paths of install and start that a real
 * machine reaches only when a disk fills up or memory runs out are driven
 * on purpose. It is configured by the environment:
 *
 *   KPA_INJECT="SYSCALL:ERRNO[:MATCH[:NTH]]"
 *     SYSCALL  mkdir (mkdir and mkdirat), mkdirat, rename (rename, renameat,
 *              renameat2), renameat, renameat2, unlink (unlink, unlinkat,
 *              rmdir), write, mount, clone (clone() and syscall(SYS_clone3)),
 *              clone3 (syscall(SYS_clone3) only), sendmsg, recvmsg, fsmount
 *     ERRNO    ENOMEM, ENOSPC, EIO, ... or a number; or KILL: the process
 *              kills itself with SIGKILL instead of making the call (a crash
 *              just before it), or KILLAFTER: makes the call, then kills
 *              itself (a crash just after it; rename calls only)
 *     MATCH    only calls on a path that contains MATCH count: the path
 *              given (resolved against its directory fd), the path of the fd
 *              for write, sendmsg and recvmsg ("socket:[INODE]"), the source
 *              or target for mount; empty: every call
 *     NTH      the NTH matching call fails (default 1), and so does every
 *              matching call after it: a full disk stays full, so a retry
 *              meets the same failure
 *   KPA_INJECT_LOG=FILE  appends one line per injected failure ("PID SYSCALL
 *              PATH -> ERRNO"); to stderr, after "kpa-inject: ", where FILE
 *              cannot be opened
 *
 * The counter is per process; a child made by fork or clone inherits its
 * value. The libc entry points wrapped are those libkpa calls (nm -D): the
 * static libkpa-core and libcgroup in kpa-run still reach them through the
 * dynamic libc. Nothing from libkpa is used here, and every wrapper calls
 * the next definition (dlsym(RTLD_NEXT)) when it does not inject. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* the entry points; clone3 stands for syscall(SYS_clone3) */
enum {
        F_MKDIR,
        F_MKDIRAT,
        F_RENAME,
        F_RENAMEAT,
        F_RENAMEAT2,
        F_UNLINK,
        F_WRITE,
        F_MOUNT,
        F_CLONE,
        F_CLONE3,
        F_SENDMSG,
        F_RECVMSG,
        F_FSMOUNT,
};

static const struct {
        const char *name;
        unsigned funcs; /* bits of F_* */
} rule_names[] = {
        {"mkdir", 1u << F_MKDIR | 1u << F_MKDIRAT},
        {"mkdirat", 1u << F_MKDIRAT},
        {"rename", 1u << F_RENAME | 1u << F_RENAMEAT | 1u << F_RENAMEAT2},
        {"renameat", 1u << F_RENAMEAT},
        {"renameat2", 1u << F_RENAMEAT2},
        {"unlink", 1u << F_UNLINK},
        {"write", 1u << F_WRITE},
        {"mount", 1u << F_MOUNT},
        {"clone", 1u << F_CLONE | 1u << F_CLONE3},
        {"clone3", 1u << F_CLONE3},
        {"sendmsg", 1u << F_SENDMSG},
        {"recvmsg", 1u << F_RECVMSG},
        {"fsmount", 1u << F_FSMOUNT},
};

static const struct {
        const char *name;
        int code;
} errno_names[] = {
        {"ENOMEM", ENOMEM}, {"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EACCES", EACCES},
        {"EPERM", EPERM},   {"EDQUOT", EDQUOT}, {"EROFS", EROFS},   {"EAGAIN", EAGAIN},
        {"EMFILE", EMFILE}, {"EBUSY", EBUSY},   {"EEXIST", EEXIST}, {"ENOENT", ENOENT},
};

static struct {
        unsigned funcs; /* 0: the shim does nothing */
        int code;
        char match[PATH_MAX];
        unsigned long nth;
        unsigned long seen;
        char log[PATH_MAX];
        int kill; /* 0, KILL_BEFORE or KILL_AFTER */
} rule;

enum { KILL_BEFORE = 1, KILL_AFTER = 2 };

static void kill_self(void)
{
        (void)syscall(SYS_kill, (pid_t)syscall(SYS_getpid), SIGKILL);
}

__attribute__((constructor)) static void inject_init(void)
{
        const char *spec = getenv("KPA_INJECT");
        if (!spec || !*spec)
                return;
        char buf[PATH_MAX + 64];
        snprintf(buf, sizeof(buf), "%s", spec);
        char *fields[4] = {NULL, NULL, NULL, NULL};
        char *p = buf;
        /* MATCH may hold ':' only if NTH is given; split the first two and
         * the last field off */
        for (int i = 0; i < 2 && p; i++) {
                fields[i] = p;
                p = strchr(p, ':');
                if (p)
                        *p++ = '\0';
        }
        if (p) {
                char *last = strrchr(p, ':');
                if (last) {
                        *last = '\0';
                        fields[3] = last + 1;
                }
                fields[2] = p;
        }
        unsigned funcs = 0;
        for (size_t i = 0; i < sizeof(rule_names) / sizeof(rule_names[0]); i++)
                if (strcmp(fields[0], rule_names[i].name) == 0)
                        funcs = rule_names[i].funcs;
        int code = 0;
        if (fields[1] && strcmp(fields[1], "KILL") == 0)
                rule.kill = KILL_BEFORE, code = EINTR;
        else if (fields[1] && strcmp(fields[1], "KILLAFTER") == 0)
                rule.kill = KILL_AFTER, code = EINTR;
        else if (fields[1]) {
                for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
                        if (strcmp(fields[1], errno_names[i].name) == 0)
                                code = errno_names[i].code;
                if (!code)
                        code = atoi(fields[1]);
        }
        if (!funcs || code <= 0) {
                fprintf(stderr, "kpa-inject: cannot parse KPA_INJECT=\"%s\"\n", spec);
                _exit(125);
        }
        rule.code = code;
        snprintf(rule.match, sizeof(rule.match), "%s", fields[2] ? fields[2] : "");
        rule.nth = fields[3] && *fields[3] ? strtoul(fields[3], NULL, 10) : 1;
        const char *log = getenv("KPA_INJECT_LOG");
        snprintf(rule.log, sizeof(rule.log), "%s", log ? log : "");
        rule.funcs = funcs;
}

static void *next(const char *name)
{
        void *f = dlsym(RTLD_NEXT, name);
        if (!f) {
                static const char msg[] = "kpa-inject: a wrapped function is missing\n";
                (void)!syscall(SYS_write, 2, msg, sizeof(msg) - 1);
                abort();
        }
        return f;
}

/* real_: the next definition of FUNC, looked up once */
#define NEXT(func)                                                                                 \
        static __typeof__(func) *real_;                                                            \
        if (!real_)                                                                                \
                real_ = (__typeof__(func) *)next(#func)

static bool wanted(int func) { return (rule.funcs & (1u << func)) != 0; }

/* The path of DIRFD joined with NAME (NAME alone when absolute). */
static void resolve_at(int dirfd, const char *name, char *out, size_t size)
{
        if (!name)
                name = "";
        if (name[0] == '/') {
                snprintf(out, size, "%s", name);
                return;
        }
        char dir[PATH_MAX] = "";
        if (dirfd == AT_FDCWD) {
                if (!getcwd(dir, sizeof(dir)))
                        dir[0] = '\0';
        } else {
                char link[32];
                snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
                ssize_t n = readlink(link, dir, sizeof(dir) - 1);
                dir[n > 0 ? n : 0] = '\0';
        }
        snprintf(out, size, "%s/%s", dir, name);
}

static void log_failure(const char *what, const char *path)
{
        if (!rule.log[0])
                return;
        char line[PATH_MAX + 96];
        int n = snprintf(line, sizeof(line), "%d %s %s -> %d\n", (int)getpid(), what,
                         path ? path : "", rule.code);
        if (n <= 0)
                return;
        if ((size_t)n >= sizeof(line))
                n = (int)sizeof(line) - 1;
        /* raw system calls: the wrappers must not call themselves. Where
         * the file cannot be reached (a sandbox child after its new root is
         * mounted), the line goes to stderr. */
        int fd = (int)syscall(SYS_open, rule.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
                static const char tag[] = "kpa-inject: ";
                (void)!syscall(SYS_write, STDERR_FILENO, tag, sizeof(tag) - 1);
                (void)!syscall(SYS_write, STDERR_FILENO, line, (size_t)n);
                return;
        }
        (void)!syscall(SYS_write, fd, line, (size_t)n);
        (void)syscall(SYS_close, fd);
}

/* Does this call fail? PATH and PATH2 (either may be NULL) are what MATCH
 * is looked for in. */
static bool inject(const char *what, const char *path, const char *path2)
{
        if (rule.match[0] && !(path && strstr(path, rule.match)) &&
            !(path2 && strstr(path2, rule.match)))
                return false;
        unsigned long seen = __atomic_add_fetch(&rule.seen, 1, __ATOMIC_SEQ_CST);
        if (seen < rule.nth)
                return false;
        log_failure(what, path ? path : path2);
        if (rule.kill == KILL_BEFORE)
                kill_self();
        errno = rule.code;
        return true;
}

int mkdir(const char *path, mode_t mode)
{
        NEXT(mkdir);
        if (wanted(F_MKDIR)) {
                char full[PATH_MAX];
                resolve_at(AT_FDCWD, path, full, sizeof(full));
                if (inject("mkdir", full, NULL))
                        return -1;
        }
        return real_(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
        NEXT(mkdirat);
        if (wanted(F_MKDIRAT)) {
                char full[PATH_MAX];
                resolve_at(dirfd, path, full, sizeof(full));
                if (inject("mkdirat", full, NULL))
                        return -1;
        }
        return real_(dirfd, path, mode);
}

static bool inject_rename(const char *what, int olddirfd, const char *oldpath, int newdirfd,
                          const char *newpath)
{
        char from[PATH_MAX], to[PATH_MAX];
        resolve_at(olddirfd, oldpath, from, sizeof(from));
        resolve_at(newdirfd, newpath, to, sizeof(to));
        return inject(what, from, to);
}

/* An injected rename under KILLAFTER: CALL makes it, then the process
 * ends; otherwise the rename fails without being made. */
#define INJECTED_RENAME(call)                                                                      \
        do {                                                                                       \
                if (rule.kill == KILL_AFTER) {                                                     \
                        (void)(call);                                                              \
                        kill_self();                                                               \
                }                                                                                  \
                return -1;                                                                         \
        } while (0)

int rename(const char *oldpath, const char *newpath)
{
        NEXT(rename);
        if (wanted(F_RENAME) && inject_rename("rename", AT_FDCWD, oldpath, AT_FDCWD, newpath))
                INJECTED_RENAME(real_(oldpath, newpath));
        return real_(oldpath, newpath);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
        NEXT(renameat);
        if (wanted(F_RENAMEAT) && inject_rename("renameat", olddirfd, oldpath, newdirfd, newpath))
                INJECTED_RENAME(real_(olddirfd, oldpath, newdirfd, newpath));
        return real_(olddirfd, oldpath, newdirfd, newpath);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
        NEXT(renameat2);
        if (wanted(F_RENAMEAT2) &&
            inject_rename("renameat2", olddirfd, oldpath, newdirfd, newpath))
                INJECTED_RENAME(real_(olddirfd, oldpath, newdirfd, newpath, flags));
        return real_(olddirfd, oldpath, newdirfd, newpath, flags);
}

int unlinkat(int dirfd, const char *path, int flags)
{
        NEXT(unlinkat);
        if (wanted(F_UNLINK)) {
                char full[PATH_MAX];
                resolve_at(dirfd, path, full, sizeof(full));
                if (inject("unlinkat", full, NULL))
                        return -1;
        }
        return real_(dirfd, path, flags);
}

int unlink(const char *path)
{
        NEXT(unlink);
        if (wanted(F_UNLINK)) {
                char full[PATH_MAX];
                resolve_at(AT_FDCWD, path, full, sizeof(full));
                if (inject("unlink", full, NULL))
                        return -1;
        }
        return real_(path);
}

int rmdir(const char *path)
{
        NEXT(rmdir);
        if (wanted(F_UNLINK)) {
                char full[PATH_MAX];
                resolve_at(AT_FDCWD, path, full, sizeof(full));
                if (inject("rmdir", full, NULL))
                        return -1;
        }
        return real_(path);
}

/* Whether the call NAME on FD fails (MATCH: against the fd's path). */
static bool inject_fd(const char *name, int fd)
{
        char path[PATH_MAX] = "";
        if (rule.match[0]) {
                char link[32];
                snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                ssize_t n = readlink(link, path, sizeof(path) - 1);
                path[n > 0 ? n : 0] = '\0';
        }
        return inject(name, path, NULL);
}

ssize_t write(int fd, const void *buf, size_t count)
{
        NEXT(write);
        if (wanted(F_WRITE) && inject_fd("write", fd))
                return -1;
        return real_(fd, buf, count);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
        NEXT(sendmsg);
        if (wanted(F_SENDMSG) && inject_fd("sendmsg", fd))
                return -1;
        return real_(fd, msg, flags);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
        NEXT(recvmsg);
        if (wanted(F_RECVMSG) && inject_fd("recvmsg", fd))
                return -1;
        return real_(fd, msg, flags);
}

int mount(const char *source, const char *target, const char *fstype, unsigned long flags,
          const void *data)
{
        NEXT(mount);
        if (wanted(F_MOUNT) && inject("mount", target, source))
                return -1;
        return real_(source, target, fstype, flags, data);
}

int fsmount(int fs_fd, unsigned int flags, unsigned int attr_flags)
{
        NEXT(fsmount);
        if (wanted(F_FSMOUNT) && inject("fsmount", NULL, NULL))
                return -1;
        return real_(fs_fd, flags, attr_flags);
}

/* glibc's clone(): the optional arguments are passed on as they came. */
int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
        NEXT(clone);
        va_list ap;
        va_start(ap, arg);
        pid_t *ptid = va_arg(ap, pid_t *);
        void *tls = va_arg(ap, void *);
        pid_t *ctid = va_arg(ap, pid_t *);
        va_end(ap);
        if (wanted(F_CLONE) && inject("clone", NULL, NULL))
                return -1;
        return real_(fn, stack, flags, arg, ptid, tls, ctid);
}

/* syscall(): only SYS_clone3 is looked at; every call passes six
 * arguments on, as the x86-64 and aarch64 ABIs allow. */
long syscall(long number, ...)
{
        NEXT(syscall);
        va_list ap;
        va_start(ap, number);
        long a[6];
        for (int i = 0; i < 6; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
#ifdef SYS_clone3
        if (number == SYS_clone3 && wanted(F_CLONE3) && inject("clone3", NULL, NULL))
                return -1;
#endif
        return real_(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
