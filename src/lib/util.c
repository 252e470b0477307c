/* util.c: error records, allocation, and small fd helpers shared by libkpa. */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "util.h"

void kpa_error_clear(kpa_error *err)
{
        if (!err)
                return;
        err->code = 0;
        err->message[0] = '\0';
}

_printf_(4, 0) static int error_vset(kpa_error *err, int code, bool with_errno, const char *fmt,
                                  va_list ap)
{
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (err) {
                err->code = code;
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                if (with_errno) {
                        size_t len = strlen(err->message);
                        snprintf(err->message + len, sizeof(err->message) - len, ": %s",
                                 strerror(code));
                }
        }
        return -code;
}

int(kpa_error_set)(kpa_error *err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_vset(err, code, false, fmt, ap);
        va_end(ap);
        return r;
}

int(kpa_error_set_errno)(kpa_error *err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_vset(err, code, true, fmt, ap);
        va_end(ap);
        return r;
}

int kpa_struct_check(const void *s, size_t full, const char *name, kpa_error *err)
{
        size_t size;
        memcpy(&size, s, sizeof(size));
        if (size < sizeof(size_t))
                return kpa_error_set(err, EINVAL,
                                     "%s.struct_size is %zu: set it with %s_init() first", name,
                                     size, name);
        if (size > full)
                return kpa_error_set(err, EINVAL,
                                     "%s.struct_size is %zu, larger than the %zu this libkpa "
                                     "knows (the caller was built against newer kpa headers)",
                                     name, size, full);
        return 0;
}

int kpa_struct_in(void *dst, const void *src, size_t full, const char *name, kpa_error *err)
{
        int r = kpa_struct_check(src, full, name, err);
        if (r < 0)
                return r;
        size_t size;
        memcpy(&size, src, sizeof(size));
        memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
               size - sizeof(size_t));
        return 0;
}

void kpa_struct_out(void *out, const void *full)
{
        size_t size;
        memcpy(&size, out, sizeof(size));
        memcpy((char *)out + sizeof(size_t), (const char *)full + sizeof(size_t),
               size - sizeof(size_t));
}

int(kpa_error_prefix)(kpa_error *err, const char *fmt, ...)
{
        if (!err)
                return -EIO;
        char buf[KPA_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        size_t plen = n < 0 ? 0 : (size_t)n;
        if (plen > sizeof(buf) - 3)
                plen = sizeof(buf) - 3;
        memcpy(buf + plen, ": ", 3);
        plen += 2;
        size_t mlen = strnlen(err->message, sizeof(err->message) - 1);
        if (mlen > sizeof(buf) - 1 - plen)
                mlen = sizeof(buf) - 1 - plen;
        memcpy(buf + plen, err->message, mlen);
        buf[plen + mlen] = '\0';
        memcpy(err->message, buf, sizeof(buf));
        if (err->code == 0)
                err->code = EIO;
        return -err->code;
}

static void *check_alloc(void *p)
{
        if (!p) {
                fputs("kpa: out of memory\n", stderr);
                abort();
        }
        return p;
}

void *kpa_xmalloc(size_t n) { return check_alloc(malloc(n ? n : 1)); }
void *kpa_xcalloc(size_t n, size_t m) { return check_alloc(calloc(n ? n : 1, m ? m : 1)); }
void *kpa_xrealloc(void *p, size_t n) { return check_alloc(realloc(p, n ? n : 1)); }
char *kpa_xstrdup(const char *s) { return check_alloc(strdup(s)); }
char *kpa_xstrndup(const char *s, size_t n) { return check_alloc(strndup(s, n)); }

char *kpa_xasprintf(const char *fmt, ...)
{
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                s = NULL;
        return check_alloc(s);
}

int kpa_strcmp_ptr(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void kpa_strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

void kpa_close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

typedef union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * KPA_FDS_MAX)];
} fd_control;

ssize_t kpa_send_fds(int sock, const struct iovec *iov, size_t n_iov, const int *fds, size_t n_fds)
{
        if (n_fds > KPA_FDS_MAX)
                return -EMSGSIZE;
        struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n_iov};
        fd_control control;
        if (n_fds > 0) {
                memset(&control, 0, sizeof(control));
                m.msg_control = control.buf;
                m.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        ssize_t n;
        do
                n = sendmsg(sock, &m, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
}

/* The fds of every SCM_RIGHTS message of M into GOT (capacity CAP; beyond it
 * they are closed); returns how many came. */
static size_t collect_fds(struct msghdr *m, int *got, size_t cap)
{
        size_t n = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
                    cm->cmsg_len < CMSG_LEN(0))
                        continue;
                size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++, n++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                        if (n < cap)
                                got[n] = fd;
                        else
                                close(fd);
                }
        }
        return n;
}

ssize_t kpa_recv_fds(int sock, struct iovec *iov, size_t n_iov, int *fds, size_t max_fds,
                     size_t *n_fds)
{
        if (n_fds)
                *n_fds = 0;
        if (max_fds > KPA_FDS_MAX)
                max_fds = KPA_FDS_MAX;
        if (!fds || !n_fds)
                max_fds = 0;
        fd_control control;
        /* room for MAX_FDS and no more (the kernel drops the rest and sets
         * MSG_CTRUNC), but alignment may leave room for one extra */
        struct msghdr m = {
                .msg_iov = iov,
                .msg_iovlen = n_iov,
                .msg_control = control.buf,
                .msg_controllen = max_fds ? CMSG_SPACE(sizeof(int) * max_fds) : 0,
        };
        ssize_t n;
        do
                n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        int got[KPA_FDS_MAX + 2];
        size_t n_got = m.msg_controllen ? collect_fds(&m, got, ELEMENTSOF(got)) : 0;
        size_t kept = n_got < ELEMENTSOF(got) ? n_got : ELEMENTSOF(got);
        if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n_got > max_fds) {
                kpa_close_fds(got, kept);
                return -EMSGSIZE;
        }
        if (kept)
                memcpy(fds, got, kept * sizeof(int));
        if (n_fds)
                *n_fds = kept;
        return n;
}

int kpa_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int kpa_read_fd(int fd, size_t max, char **out, size_t *out_len)
{
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = kpa_xmalloc(cap + 1);
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        cap *= 2;
                        buf = kpa_xrealloc(buf, cap + 1);
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > max)
                return -EFBIG;
        buf[len] = '\0';
        *out = TAKE_PTR(buf);
        if (out_len)
                *out_len = len;
        return 0;
}

/* the fallback of kpa_open_beneath(): one O_NOFOLLOW open per component */
static int open_beneath_walk(int dirfd, const char *path, int flags, mode_t mode)
{
        char copy[PATH_MAX];
        if (strlen(path) >= sizeof(copy))
                return -ENAMETOOLONG;
        memcpy(copy, path, strlen(path) + 1);
        _cleanup_close_ int cur = -1;
        char *save = NULL, *next;
        char *name = strtok_r(copy, "/", &save);
        if (!name)
                return -EINVAL;
        for (; (next = strtok_r(NULL, "/", &save)); name = next) {
                if (streq(name, ".."))
                        return -EXDEV;
                int fd = openat(cur >= 0 ? cur : dirfd, name,
                                O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return errno == ENOTDIR ? -ELOOP : -errno;
                closep(&cur);
                cur = fd;
        }
        if (streq(name, ".."))
                return -EXDEV;
        int fd = openat(cur >= 0 ? cur : dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
        return fd < 0 ? -errno : fd;
}

int kpa_open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
        if (!path || !*path)
                return -EINVAL;
        if (*path == '/')
                return -EXDEV;
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        if (fd >= 0)
                return fd;
        if (errno != ENOSYS && errno != EPERM) /* EPERM: a seccomp filter that knows no openat2 */
                return -errno;
        return open_beneath_walk(dirfd, path, flags, mode);
}

int kpa_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *out_len)
{
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
        _cleanup_close_ int fd = *path == '/' ? openat(dirfd, path, flags) : kpa_open_beneath(dirfd, path, flags, 0);
        if (fd < 0)
                return *path == '/' ? -errno : fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        return kpa_read_fd(fd, max, out, out_len);
}

static int rm_rf_children(int dfd)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                close(dfd);
                return r;
        }
        _cleanup_closedir_ DIR *dir = d;
        int ret = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(dir))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                int r = kpa_rm_rf_at(dirfd(dir), de->d_name);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        if (errno && ret == 0)
                ret = -errno;
        return ret;
}

int kpa_rm_rf_at(int dirfd, const char *path)
{
        if (unlinkat(dirfd, path, 0) == 0)
                return 0;
        if (errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        int dfd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT ? 0 : -errno;
        int r = rm_rf_children(dfd);
        if (unlinkat(dirfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return r < 0 ? r : -errno;
        return r;
}

unsigned long long kpa_proc_start_time(pid_t pid, bool *zombie)
{
        char path[32];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *buf = NULL;
        if (zombie)
                *zombie = false;
        if (kpa_read_file_at(AT_FDCWD, path, 4096, &buf, NULL) < 0 || !buf)
                return 0;
        char *p = strrchr(buf, ')'); /* the command may hold spaces and parens */
        if (!p || p[1] != ' ')
                return 0;
        if (zombie)
                *zombie = p[2] == 'Z' || p[2] == 'X';
        unsigned long long v = 0;
        /* after ')': state is field 3, so starttime is the 20th from there */
        for (int field = 3; field <= 22 && p; field++)
                p = strchr(p + 1, ' ');
        if (p)
                v = strtoull(p + 1, NULL, 10);
        return v;
}

/* ---- process titles ---- */

/* The argv area of this process (fields 48 and 49 of /proc/self/stat), read
 * once by the parent: every child forked or cloned from it has its own copy
 * at the same addresses. */
static char *argv_area;
static size_t argv_area_len;
static pthread_once_t argv_area_once = PTHREAD_ONCE_INIT;

static void find_argv_area(void)
{
        char buf[1024];
        _cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return;
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long long start = 0, end = 0;
        for (int field = 2; p && field < 49; field++) {
                p = strchr(p + 1, ' ');
                if (p && field + 1 == 48)
                        start = strtoull(p + 1, NULL, 10);
                if (p && field + 1 == 49)
                        end = strtoull(p + 1, NULL, 10);
        }
        if (start && end > start) {
                /* an address the kernel gave: no other way to reach it */
                argv_area = (char *)(uintptr_t)start; // NOLINT(performance-no-int-to-ptr)
                argv_area_len = (size_t)(end - start);
        }
}

void kpa_proc_title_prepare(void)
{
        pthread_once(&argv_area_once, find_argv_area);
}

/* TITLE goes over the argv area this child inherited (its own copy),
 * NUL-terminated, and the area's last byte is made non-zero so that
 * /proc/PID/cmdline ends at that NUL (the kernel's setproctitle rule). */
void kpa_proc_title_set(const char *comm, const char *title)
{
        (void)prctl(PR_SET_NAME, comm, 0, 0, 0);
        if (!title || !argv_area || argv_area_len < 2)
                return;
        size_t len = strlen(title);
        if (len > argv_area_len - 1)
                len = argv_area_len - 1;
        memset(argv_area, 0, argv_area_len); /* so TITLE ends in a NUL of the area */
        memcpy(argv_area, title, len);       // NOLINT(bugprone-not-null-terminated-result)
        if (len + 1 < argv_area_len)
                argv_area[argv_area_len - 1] = ' ';
}
