/* handle-spec.c: the launcher's side of user handles as written on a command
 * line: "NAME=SPEC" arguments and the fds that SPECs describe (an inherited
 * fd, a file, a listening or connected socket). It opens fds in the
 * launcher, before any sandbox exists; passing them into the child is
 * handles.c's job, and looking them up there is the application's. */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "handles.h"
#include "kpa/handle.h"
#include "util.h"

#define LISTEN_BACKLOG 128

/* Keep handle fds off 0-2, so that a caller with a closed stdio slot cannot
 * end up passing the handle as the application's stdin/stdout/stderr. */
static int above_stdio(int fd)
{
        if (fd < 0 || fd > STDERR_FILENO)
                return fd;
        int nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        int saved = errno;
        close(fd);
        errno = saved;
        return nfd;
}

static int open_inherited(const char *spec, const char *arg, kpa_error *err)
{
        char *end;
        errno = 0;
        long n = strtol(arg, &end, 10);
        if (!*arg || *arg == '-' || *arg == '+' || errno || *end || n > INT_MAX)
                return kpa_error_set(err, EINVAL, "handle spec \"%s\": \"%s\" is not an fd number",
                                     spec, arg);
        int fd = fcntl((int)n, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (fd < 0) {
                if (errno == EBADF)
                        return kpa_error_set(err, EBADF, "handle spec \"%s\": fd %ld is not open",
                                             spec, n);
                return kpa_error_set_errno(err, errno,
                                           "handle spec \"%s\": cannot duplicate fd %ld", spec, n);
        }
        /* as file: on a directory: no way out of the private root */
        int q = kpa_handle_fd_check(fd, spec, err);
        if (q < 0) {
                close(fd);
                if (q == -EISDIR)
                        return kpa_error_set(err, EISDIR,
                                             "handle spec \"%s\": fd %ld is a directory; a "
                                             "directory would let the application open host "
                                             "files outside its sandbox",
                                             spec, n);
                return q;
        }
        return fd;
}

static int open_file(const char *spec, const char *path, int flags, kpa_error *err)
{
        if (!*path)
                return kpa_error_set(err, EINVAL, "handle spec \"%s\": no file path given", spec);
        int fd = above_stdio(open(path, flags | O_CLOEXEC | O_NOCTTY, 0644));
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "handle spec \"%s\": cannot open %s", spec,
                                           path);
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int e = errno;
                close(fd);
                return kpa_error_set_errno(err, e, "handle spec \"%s\": cannot stat %s", spec,
                                           path);
        }
        /* a directory fd would hand the application a way out of its
         * private root (openat relative to it) */
        if (S_ISDIR(st.st_mode)) {
                close(fd);
                return kpa_error_set(err, EISDIR, "handle spec \"%s\": %s is a directory", spec,
                                     path);
        }
        return fd;
}

/* ---- TCP ---- */

typedef struct host_port {
        char host[256]; /* empty: any address */
        char port[6];
        bool numeric_host;
} host_port;

/* Split "HOST:PORT" or "[V6]:PORT"; PORT must be a number 0..65535. */
static int parse_host_port(const char *spec, const char *arg, host_port *hp, kpa_error *err)
{
        const char *host = arg, *colon;
        size_t host_len;
        hp->numeric_host = false;
        if (*arg == '[') {
                const char *close_br = strchr(arg, ']');
                if (!close_br || close_br[1] != ':')
                        return kpa_error_set(err, EINVAL,
                                             "handle spec \"%s\": expected [ADDRESS]:PORT", spec);
                host = arg + 1;
                host_len = (size_t)(close_br - host);
                colon = close_br + 1;
                hp->numeric_host = true;
        } else {
                colon = strrchr(arg, ':');
                if (!colon)
                        return kpa_error_set(err, EINVAL, "handle spec \"%s\": expected HOST:PORT",
                                             spec);
                host_len = (size_t)(colon - arg);
                if (memchr(arg, ':', host_len))
                        return kpa_error_set(err, EINVAL,
                                             "handle spec \"%s\": write an IPv6 address in "
                                             "brackets, as [ADDRESS]:PORT",
                                             spec);
        }
        if (host_len >= sizeof(hp->host))
                return kpa_error_set(err, EINVAL, "handle spec \"%s\": host name too long", spec);
        memcpy(hp->host, host, host_len);
        hp->host[host_len] = '\0';
        if (streq(hp->host, "*"))
                hp->host[0] = '\0';

        const char *port = colon + 1;
        size_t plen = strlen(port);
        bool digits = plen > 0 && plen <= 5 && strspn(port, "0123456789") == plen;
        if (!digits || strtoul(port, NULL, 10) > 65535)
                return kpa_error_set(err, EINVAL,
                                     "handle spec \"%s\": bad port \"%s\" (a number 0-65535)", spec,
                                     port);
        snprintf(hp->port, sizeof(hp->port), "%lu", strtoul(port, NULL, 10));
        return 0;
}

static int gai_errno(int rc)
{
        switch (rc) {
        case EAI_SYSTEM: return errno ? errno : EIO;
        case EAI_MEMORY: return ENOMEM;
        case EAI_AGAIN: return EAGAIN;
        default: return EADDRNOTAVAIL;
        }
}

static void format_addr(const struct addrinfo *ai, char *buf, size_t len)
{
        char h[NI_MAXHOST], s[NI_MAXSERV];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof(h), s, sizeof(s),
                        NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
                snprintf(buf, len, "?");
                return;
        }
        snprintf(buf, len, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, s);
}

/* One address: a socket that listens (LISTENING) or is connected. */
static int tcp_try(const struct addrinfo *ai, bool listening, const char **step)
{
        *step = "socket";
        _cleanup_close_ int fd =
                above_stdio(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        if (fd < 0)
                return -errno;
        if (listening) {
                int one = 1;
                *step = "setsockopt SO_REUSEADDR";
                if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                        return -errno;
                *step = "bind";
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
                        return -errno;
                *step = "listen";
                if (listen(fd, LISTEN_BACKLOG) < 0)
                        return -errno;
        } else {
                *step = "connect";
                int r;
                do
                        r = connect(fd, ai->ai_addr, ai->ai_addrlen);
                while (r < 0 && errno == EINTR);
                if (r < 0)
                        return -errno;
        }
        return TAKE_FD(fd);
}

static int open_tcp(const char *spec, const char *arg, bool listening, kpa_error *err)
{
        host_port hp;
        int r = parse_host_port(spec, arg, &hp, err);
        if (r < 0)
                return r;
        if (!listening && !hp.host[0])
                return kpa_error_set(err, EINVAL, "handle spec \"%s\": no host to connect to",
                                     spec);
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_NUMERICSERV | (listening ? AI_PASSIVE : AI_ADDRCONFIG) |
                            (hp.numeric_host ? AI_NUMERICHOST : 0),
        };
        struct addrinfo *res = NULL;
        errno = 0;
        int rc = getaddrinfo(hp.host[0] ? hp.host : NULL, hp.port, &hints, &res);
        if (rc != 0)
                return kpa_error_set(err, gai_errno(rc),
                                     "handle spec \"%s\": cannot resolve %s: %s", spec,
                                     hp.host[0] ? hp.host : "*", gai_strerror(rc));
        /* the first address that works wins, as servers and clients do */
        int last = -EADDRNOTAVAIL;
        const char *step = "bind";
        char where[NI_MAXHOST + NI_MAXSERV + 4] = "";
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = tcp_try(ai, listening, &step);
                if (fd >= 0) {
                        freeaddrinfo(res);
                        return fd;
                }
                last = fd;
                format_addr(ai, where, sizeof(where));
        }
        freeaddrinfo(res);
        return kpa_error_set_errno(err, -last, "handle spec \"%s\": %s %s", spec, step, where);
}

/* ---- Unix sockets ---- */

static int unix_address(const char *spec, const char *path, struct sockaddr_un *sa, socklen_t *len,
                        kpa_error *err)
{
        size_t plen = strlen(path);
        if (plen == 0)
                return kpa_error_set(err, EINVAL, "handle spec \"%s\": no socket path given", spec);
        if (plen >= sizeof(sa->sun_path))
                return kpa_error_set(err, EINVAL,
                                     "handle spec \"%s\": socket path longer than %zu bytes", spec,
                                     sizeof(sa->sun_path) - 1);
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, path, plen);
        if (path[0] == '@')
                sa->sun_path[0] = '\0'; /* abstract namespace; the length says where it ends */
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] != '@'));
        return 0;
}

static int unix_socket(void)
{
        return above_stdio(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

/* A socket file nobody listens on any more is replaced; anything else at
 * PATH (a live socket, a regular file) is left alone and refused. */
static int remove_stale_socket(const char *spec, const char *path, const struct sockaddr_un *sa,
                               socklen_t len, kpa_error *err)
{
        struct stat st;
        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return kpa_error_set_errno(err, errno, "handle spec \"%s\": cannot stat %s", spec,
                                           path);
        }
        if (!S_ISSOCK(st.st_mode))
                return kpa_error_set(err, EEXIST,
                                     "handle spec \"%s\": %s exists and is not a socket", spec,
                                     path);
        _cleanup_close_ int probe = unix_socket();
        if (probe < 0)
                return kpa_error_set_errno(err, errno, "handle spec \"%s\": socket", spec);
        if (connect(probe, (const struct sockaddr *)sa, len) == 0)
                return kpa_error_set(err, EADDRINUSE,
                                     "handle spec \"%s\": a server is already listening on %s",
                                     spec, path);
        if (errno != ECONNREFUSED)
                return kpa_error_set_errno(err, errno, "handle spec \"%s\": cannot probe %s", spec,
                                           path);
        if (unlink(path) < 0 && errno != ENOENT)
                return kpa_error_set_errno(err, errno,
                                           "handle spec \"%s\": cannot remove the stale socket %s",
                                           spec, path);
        return 0;
}

static int open_unix(const char *spec, const char *path, bool listening, kpa_error *err)
{
        struct sockaddr_un sa;
        socklen_t len = 0;
        int r = unix_address(spec, path, &sa, &len, err);
        if (r < 0)
                return r;
        if (listening && path[0] != '@') {
                r = remove_stale_socket(spec, path, &sa, len, err);
                if (r < 0)
                        return r;
        }
        _cleanup_close_ int fd = unix_socket();
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "handle spec \"%s\": socket", spec);
        if (listening) {
                if (bind(fd, (const struct sockaddr *)&sa, len) < 0)
                        return kpa_error_set_errno(err, errno, "handle spec \"%s\": bind %s", spec,
                                                   path);
                if (listen(fd, LISTEN_BACKLOG) < 0)
                        return kpa_error_set_errno(err, errno, "handle spec \"%s\": listen on %s",
                                                   spec, path);
        } else {
                do
                        r = connect(fd, (const struct sockaddr *)&sa, len);
                while (r < 0 && errno == EINTR);
                if (r < 0)
                        return kpa_error_set_errno(err, errno, "handle spec \"%s\": connect to %s",
                                                   spec, path);
        }
        return TAKE_FD(fd);
}

/* ---- dispatch ---- */

static const char *skip_prefix(const char *s, const char *prefix)
{
        size_t n = strlen(prefix);
        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

int kpa_handle_open_spec(const char *spec, kpa_error *err)
{
        const char *rest;
        if (!spec || !*spec)
                return kpa_error_set(err, EINVAL, "empty handle spec");
        if ((rest = skip_prefix(spec, "fd:")))
                return open_inherited(spec, rest, err);
        if ((rest = skip_prefix(spec, "file:")))
                return open_file(spec, rest, O_RDONLY, err);
        if ((rest = skip_prefix(spec, "file+rw:")))
                return open_file(spec, rest, O_RDWR, err);
        if ((rest = skip_prefix(spec, "file+a:")))
                return open_file(spec, rest, O_WRONLY | O_APPEND | O_CREAT, err);
        if ((rest = skip_prefix(spec, "listen:tcp:")))
                return open_tcp(spec, rest, true, err);
        if ((rest = skip_prefix(spec, "connect:tcp:")))
                return open_tcp(spec, rest, false, err);
        if ((rest = skip_prefix(spec, "listen:unix:")))
                return open_unix(spec, rest, true, err);
        if ((rest = skip_prefix(spec, "connect:unix:")))
                return open_unix(spec, rest, false, err);
        return kpa_error_set(err, EINVAL,
                             "handle spec \"%s\": unknown kind (expected fd:N, file:PATH, "
                             "file+rw:PATH, file+a:PATH, listen:tcp:HOST:PORT, listen:unix:PATH, "
                             "connect:tcp:HOST:PORT or connect:unix:PATH)",
                             spec);
}

int kpa_handle_parse_arg(const char *arg, char **name, char **spec, kpa_error *err)
{
        const char *eq = arg ? strchr(arg, '=') : NULL;
        if (!eq)
                return kpa_error_set(err, EINVAL, "handle \"%s\": expected NAME=SPEC",
                                     arg ? arg : "");
        _cleanup_free_ char *n = kpa_xstrndup(arg, (size_t)(eq - arg));
        if (!kpa_handle_name_valid(n))
                return kpa_error_set(err, EINVAL,
                                     "handle \"%s\": \"%s\" is not a valid handle name "
                                     "(1-255 printable ASCII characters, no ':')",
                                     arg, n);
        if (!eq[1])
                return kpa_error_set(err, EINVAL, "handle \"%s\": no spec after '='", arg);
        *spec = kpa_xstrdup(eq + 1);
        *name = TAKE_PTR(n);
        return 0;
}
