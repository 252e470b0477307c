/* handles.c: user handles, both sides. The launcher builds LISTEN_FDNAMES and,
 * in the child just before exec, moves the handle fds to 3, 4, ... and closes
 * every other fd; the application finds a handle by name from LISTEN_FDS,
 * LISTEN_FDNAMES and LISTEN_PID, as sd_listen_fds_with_names(3) does. It does
 * not set LISTEN_PID (only the child knows its own pid) and does not open or
 * receive handles.
 *
 * Handle names follow systemd's fdname rules: 1 to 255 characters, each
 * printable ASCII (0x20 to 0x7e, so a space is allowed), and no ':', which
 * separates the names in LISTEN_FDNAMES. Unlike systemd, an empty name is
 * refused, since a handle is looked up by its name. The code below that runs
 * in the child is async-signal-safe: no malloc, only fcntl/dup3/close. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handles.h"
#include "kpa/handle.h"
#include "util.h"

#define HANDLE_NAME_MAX 255
#define FIRST_HANDLE_FD 3

static int name_valid_n(const char *s, size_t len)
{
        if (len == 0 || len > HANDLE_NAME_MAX)
                return 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c > 0x7e || c == ':')
                        return 0;
        }
        return 1;
}

int kpa_handle_name_valid(const char *name)
{
        if (!name)
                return 0;
        size_t len = strnlen(name, HANDLE_NAME_MAX + 1);
        return name_valid_n(name, len);
}

char *kpa_handles_fdnames_env(const char *const *names, size_t n, kpa_error *err)
{
        static const char prefix[] = "LISTEN_FDNAMES=";
        size_t len = sizeof(prefix);

        for (size_t i = 0; i < n; i++) {
                if (!kpa_handle_name_valid(names[i])) {
                        kpa_error_set(err, EINVAL,
                                      "handle %zu: name \"%.300s\" is invalid (1-255 "
                                      "printable ASCII characters, no ':')",
                                      i, names[i] ? names[i] : "(null)");
                        return NULL;
                }
                for (size_t j = 0; j < i; j++)
                        if (streq(names[i], names[j])) {
                                kpa_error_set(err, EINVAL,
                                              "handle %zu: name \"%s\" is given twice "
                                              "(names must be unique)",
                                              i, names[i]);
                                return NULL;
                        }
                len += strlen(names[i]) + 1;
        }

        char *env = kpa_xmalloc(len);
        char *p = stpcpy(env, prefix);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ':';
                p = stpcpy(p, names[i]);
        }
        *p = '\0';
        return env;
}

int kpa_handle_fd_check(int fd, const char *name, kpa_error *err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "handle \"%s\" (fd %d)", name, fd);
        if (S_ISDIR(st.st_mode))
                return kpa_error_set(err, EISDIR,
                                     "handle \"%s\" is a directory; a directory would let the "
                                     "application open host files outside its sandbox: pass a "
                                     "file or a socket",
                                     name);
        return 0;
}

/* Close every fd >= FROM. close_range() does it in one call; before Linux
 * 5.9, or under a seccomp filter that refuses it (old container runtimes
 * answer EPERM), fall back to closing up to the fd limit, one by one. */
static int close_from(unsigned from)
{
        if (close_range(from, ~0U, 0) == 0)
                return 0;
        if (errno != ENOSYS && errno != EPERM)
                return -errno;
        struct rlimit rl;
        unsigned long limit = 65536;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
                limit = rl.rlim_max;
        for (unsigned long fd = from; fd < limit && fd <= INT_MAX; fd++)
                close((int)fd);
        return 0;
}

int kpa_handles_install(const int *fds, size_t n)
{
        if (n > (size_t)INT_MAX / 4)
                return -EMFILE;

        /* First copy every handle above both ranges (3..3+N-1 and the
         * sources), at BASE+i, so that placing them cannot clobber a source
         * that has not been copied yet. */
        int base = FIRST_HANDLE_FD + (int)n;
        for (size_t i = 0; i < n; i++) {
                if (fds[i] < 0)
                        return -EBADF;
                if (fds[i] >= base)
                        base = fds[i] + 1;
        }
        if (base > INT_MAX - (int)n)
                return -EMFILE;
        for (size_t i = 0; i < n; i++)
                if (dup3(fds[i], base + (int)i, O_CLOEXEC) < 0)
                        return -errno;

        /* Then into place, without FD_CLOEXEC so that they survive exec. */
        for (size_t i = 0; i < n; i++)
                if (dup3(base + (int)i, FIRST_HANDLE_FD + (int)i, 0) < 0)
                        return -errno;

        return close_from(FIRST_HANDLE_FD + (unsigned)n);
}

/* A decimal number with no sign, space or trailing text. */
static int parse_ulong(const char *s, unsigned long *out)
{
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        *out = v;
        return 0;
}

int kpa_lookup_handle(const char *name)
{
        if (!kpa_handle_name_valid(name)) {
                errno = EINVAL;
                return -1;
        }

        /* The variables are meant for one process only: a child that
         * inherited them does not own the fds (sd_listen_fds does the same). */
        unsigned long pid, nfds;
        const char *names = getenv("LISTEN_FDNAMES");
        if (parse_ulong(getenv("LISTEN_PID"), &pid) < 0 || pid != (unsigned long)getpid() ||
            parse_ulong(getenv("LISTEN_FDS"), &nfds) < 0 || !names ||
            nfds > (unsigned long)INT_MAX - FIRST_HANDLE_FD) {
                errno = ENOENT;
                return -1;
        }

        size_t len = strlen(name);
        const char *p = names;
        for (unsigned long i = 0; i < nfds; i++) {
                const char *colon = strchrnul(p, ':');
                if ((size_t)(colon - p) == len && memcmp(p, name, len) == 0)
                        return FIRST_HANDLE_FD + (int)i;
                if (*colon == '\0')
                        break;
                p = colon + 1;
        }
        errno = ENOENT;
        return -1;
}
