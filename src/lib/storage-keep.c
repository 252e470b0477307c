/* storage-keep.c: a sized private storage's file system stays mounted for
 * a while after its last instance ends, so that the next start finds its
 * superblock alive and neither mounts it (about 0.5 ms: ext4 reads its
 * superblock and journal) nor, at the end, unmounts it (about 0.6 ms: the
 * journal is written and flushed through the loop device).
 *
 * The start that mounts the file system anew forks a keeper: a small
 * process, named "kpa-keep APP_ID" in ps, that holds a detached mount of the same
 * superblock (nothing is mounted on the host: it is an fd) and a read lock
 * (fcntl, byte 0) on the image, by which a start knows that a keeper is
 * there and kpa-install finds its pid. The keeper watches the image with
 * inotify: each start opens the image, and the keeper stays until
 * KPA_STORAGE_LINGER seconds (default 30) pass without one. It ends at
 * once when the image is removed, or on SIGTERM (kpa-install --remove
 * sends it, and waits for the lock to go). It has no capabilities, no
 * controlling terminal, /dev/null as its stdio and / as its directory; it
 * stays in its starter's cgroup. After a crash of anything, nothing is
 * left but the keeper, which ends by itself. KPA_STORAGE_LINGER=0 turns
 * it off: the file system is then unmounted with the last instance.
 * A start that finds the keeper takes a clone of its mount
 * (storage_keep_clone) rather than mounting the loop device again. */
#include "config.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/major.h>
#include <linux/mount.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store-internal.h"
#include "util.h"

#define LINGER_DEFAULT_S 30
#define LINGER_MAX_S 86400

int storage_keep_linger(unsigned *seconds, kpa_error *err)
{
        const char *env = getenv("KPA_STORAGE_LINGER");
        *seconds = LINGER_DEFAULT_S;
        if (!env || !*env)
                return 0;
        unsigned v = 0;
        for (const char *p = env; *p; p++) {
                if (*p < '0' || *p > '9' || v > LINGER_MAX_S)
                        return kpa_error_set(err, EINVAL,
                                             "KPA_STORAGE_LINGER=%s: not a number of seconds "
                                             "(0 to %d; 0 unmounts a private storage image with "
                                             "its last instance)",
                                             env, LINGER_MAX_S);
                v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > LINGER_MAX_S)
                return kpa_error_set(err, EINVAL, "KPA_STORAGE_LINGER=%s: at most %d seconds", env,
                                     LINGER_MAX_S);
        *seconds = v;
        return 0;
}

/* The pid of the keeper of the image IMG_FD (its lock's owner), or 0. */
static pid_t keeper_pid(int img_fd)
{
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        if (fcntl(img_fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
                return 0;
        return fl.l_pid > 0 ? fl.l_pid : 0;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The keeper: fd 3 is its mount, fd 4 the image (locked), fd 5 tells the
 * starter that the lock is taken. Only system calls from here on: the
 * starter may have had threads. */
static _Noreturn void keeper(unsigned linger_s)
{
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        if (fcntl(4, F_SETLK, &fl) < 0)
                _exit(1); /* another keeper won: it keeps the file system */
        (void)!write(5, "k", 1);
        close(5);
        int in = inotify_init1(IN_CLOEXEC);
        if (in < 0 || inotify_add_watch(in, "/proc/self/fd/4", IN_OPEN | IN_ATTRIB) < 0)
                _exit(1);
        int64_t until = now_ms() + (int64_t)linger_s * 1000;
        for (;;) {
                int64_t left = until - now_ms();
                if (left <= 0)
                        _exit(0);
                struct pollfd p = {.fd = in, .events = POLLIN};
                int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
                if (n < 0 && errno != EINTR)
                        _exit(1);
                if (n <= 0)
                        continue;
                char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                ssize_t len = read(in, buf, sizeof(buf));
                if (len <= 0)
                        continue;
                struct stat st;
                if (fstat(4, &st) < 0 || st.st_nlink == 0)
                        _exit(0); /* the image was removed */
                for (ssize_t off = 0; off < len;) {
                        const struct inotify_event *ev = (const void *)(buf + off);
                        if (ev->mask & IN_OPEN)
                                until = now_ms() + (int64_t)linger_s * 1000;
                        if (ev->mask & IN_IGNORED)
                                _exit(0);
                        off += (ssize_t)sizeof(*ev) + ev->len;
                }
        }
}

/* The keeper's own setup, in the second child of a double fork (so that
 * it is nobody's child to wait for): its fds, stdio, signals, name, and no
 * privileges. */
static _Noreturn void become_keeper(int mnt, int img, int ready, unsigned linger_s,
                                    const char *title)
{
        /* above 5 first: one of them may be 3, 4 or 5 already */
        int from[3] = {mnt, img, ready};
        for (int i = 0; i < 3; i++)
                if ((from[i] = fcntl(from[i], F_DUPFD, 6)) < 0)
                        _exit(1);
        for (int i = 0; i < 3; i++)
                if (dup2(from[i], 3 + i) < 0)
                        _exit(1);
        for (int fd = 3; fd <= 5; fd++)
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                _exit(1);
        if (syscall(SYS_close_range, 6U, ~0U, 0U) < 0)
                for (int fd = 6; fd < 1024; fd++)
                        (void)close(fd);
        if (chdir("/") < 0)
                _exit(1);
        sigset_t none;
        sigemptyset(&none);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int sig = 1; sig < NSIG; sig++)
                (void)sigaction(sig, &dfl, NULL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        kpa_proc_title_set("kpa-keep", title); /* not the starter's command line */
        (void)prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
        for (int cap = 0; cap < 64; cap++)
                (void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct caps[2] = {{0}};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_capset, &h, caps) < 0)
                _exit(1);
        keeper(linger_s);
}

void storage_keep(int img_fd, int mnt_fd, const char *app_id, unsigned linger_s)
{
        if (linger_s == 0 || keeper_pid(img_fd) > 0)
                return;
        /* the keeper's own mount of the superblock, apart from the one the
         * sandbox moves into its root */
        _cleanup_close_ int mnt = (int)syscall(SYS_open_tree, mnt_fd, "",
                                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        _cleanup_close_ int img = fcntl(img_fd, F_DUPFD_CLOEXEC, 0);
        int ready[2];
        if (mnt < 0 || img < 0 || pipe2(ready, O_CLOEXEC) < 0)
                return; /* no keeper: the next start mounts anew */
        char title[300];
        snprintf(title, sizeof(title), "kpa-keep %s", app_id);
        kpa_proc_title_prepare();
        pid_t pid = fork();
        if (pid == 0) {
                close(ready[0]);
                if (setsid() < 0)
                        _exit(1);
                pid_t k = fork();
                if (k == 0)
                        become_keeper(mnt, img, ready[1], linger_s, title);
                _exit(k < 0);
        }
        close(ready[1]);
        if (pid > 0) {
                int status;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                /* wait until the keeper holds its lock (or has failed: EOF),
                 * so that the next start, after the caller's flock, sees it */
                char c;
                while (read(ready[0], &c, 1) < 0 && errno == EINTR)
                        ;
        }
        close(ready[0]);
}

/* A mount of the file system that the keeper of the image IMG_FD holds,
 * cloned from its own (fd 3), or -1 when there is no keeper or it cannot
 * be used: the start then mounts the file system, which finds the same
 * superblock. This saves the loop device checks and the block device's
 * open that a mount makes (about 0.08 ms of a start). The keeper is known
 * by its lock on the image, and its fd 4 must still be this image (same
 * inode, not deleted), checked after its fds are taken: while the lock is
 * there the pid is the keeper's. */
int storage_keep_clone(int img_fd)
{
#ifdef SYS_pidfd_getfd
        struct stat img, kept;
        pid_t pid = keeper_pid(img_fd);
        if (pid == 0 || fstat(img_fd, &img) < 0 || img.st_nlink == 0)
                return -1;
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return -1;
        _cleanup_close_ int mnt = (int)syscall(SYS_pidfd_getfd, pidfd, 3, 0);
        _cleanup_close_ int kept_img = (int)syscall(SYS_pidfd_getfd, pidfd, 4, 0);
        if (mnt < 0 || kept_img < 0 || fstat(kept_img, &kept) < 0 || kept.st_dev != img.st_dev ||
            kept.st_ino != img.st_ino || kept.st_nlink == 0 || keeper_pid(img_fd) != pid)
                return -1;
        int clone = (int)syscall(SYS_open_tree, mnt, "",
                                 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        /* and it is what a keeper holds: an ext2/3/4 file system on a loop
         * device, at its root */
        struct stat root;
        struct statfs fs;
        if (clone >= 0 && (fstat(clone, &root) < 0 || fstatfs(clone, &fs) < 0 ||
                           fs.f_type != EXT4_SUPER_MAGIC || major(root.st_dev) != LOOP_MAJOR ||
                           root.st_ino != 2)) { /* (an ext file system's root inode) */
                close(clone);
                return -1;
        }
        return clone;
#else
        (void)img_fd;
        return -1;
#endif
}

int storage_keep_release(int img_fd, kpa_error *err)
{
        for (int tries = 0; tries < 100; tries++) {
                pid_t pid = keeper_pid(img_fd);
                if (pid == 0)
                        return 0;
                /* by pidfd: the pid is the lock owner's as long as the lock
                 * is there, which is checked again after the open */
                _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
                if (pidfd < 0 || keeper_pid(img_fd) != pid)
                        continue;
                if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                        return kpa_error_set_errno(err, errno,
                                                   "cannot end the keeper (pid %d) of a private "
                                                   "storage image",
                                                   (int)pid);
                /* its lock goes when it has exited, and with it its mount */
                struct pollfd p = {.fd = pidfd, .events = POLLIN};
                (void)poll(&p, 1, 5000);
        }
        return kpa_error_set(err, EBUSY, "a private storage image keeps getting a new keeper");
}
