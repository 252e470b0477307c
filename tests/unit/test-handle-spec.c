/* Unit tests for handle-spec.c: NAME=SPEC arguments and every kind of
 * handle spec, good and bad. No root needed; sockets live in a temp dir. */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "kpa/handle.h"
#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/kpa-test-handle-spec-XXXXXX";

static char *path_in_dir(const char *name)
{
        return kpa_xasprintf("%s/%s", dir, name);
}

/* An fd from kpa_handle_open_spec must be close-on-exec and clear of 0-2. */
static void check_fd_shape(int fd, const char *what)
{
        int flags = fd >= 0 ? fcntl(fd, F_GETFD) : -1;
        ok(fd >= 3 && flags >= 0 && (flags & FD_CLOEXEC), "%s: fd %d >= 3 and O_CLOEXEC", what, fd);
}

static int access_mode(int fd)
{
        return fcntl(fd, F_GETFL) & O_ACCMODE;
}

static int sock_int(int fd, int level, int opt)
{
        int v = -1;
        socklen_t len = sizeof(v);
        if (getsockopt(fd, level, opt, &v, &len) < 0)
                return -1;
        return v;
}

/* SPEC must fail with CODE and a message naming SPEC and containing WORDS. */
static void check_bad(const char *spec, int code, const char *words)
{
        kpa_error err;
        kpa_error_clear(&err);
        int r = kpa_handle_open_spec(spec, &err);
        is(r, -code, "\"%s\" is refused with %s", spec, strerror(code));
        if (r >= 0)
                close(r);
        if (!ok(strstr(err.message, spec) != NULL, "\"%s\": message names the spec", spec))
                printf("#   message: %s\n", err.message);
        if (!ok(strstr(err.message, words) != NULL, "\"%s\": message says why (%s)", spec, words))
                printf("#   message: %s\n", err.message);
}

static void test_parse_arg(void)
{
        kpa_error err;
        char *name = NULL, *spec = NULL;
        is(kpa_handle_parse_arg("web=listen:tcp:127.0.0.1:8080", &name, &spec, &err), 0,
           "NAME=SPEC parses");
        is_str(name, "web", "name split off");
        is_str(spec, "listen:tcp:127.0.0.1:8080", "spec keeps its own ':' and '='");
        free(name);
        free(spec);
        is(kpa_handle_parse_arg("log=file+a:/tmp/a=b", &name, &spec, &err), 0,
           "only the first '=' splits");
        is_str(spec, "file+a:/tmp/a=b", "later '=' stays in the spec");
        free(name);
        free(spec);

        name = spec = NULL;
        is(kpa_handle_parse_arg("fd:3", &name, &spec, &err), -EINVAL, "no '=' refused");
        has_str(err.message, "expected NAME=SPEC", "no '=': message");
        is(kpa_handle_parse_arg("=fd:3", &name, &spec, &err), -EINVAL, "empty name refused");
        has_str(err.message, "not a valid handle name", "empty name: message");
        is(kpa_handle_parse_arg("a:b=fd:3", &name, &spec, &err), -EINVAL, "':' in name refused");
        has_str(err.message, "\"a:b\" is not a valid handle name", "':' in name: message");
        is(kpa_handle_parse_arg("bad\tname=fd:3", &name, &spec, &err), -EINVAL,
           "control character in name refused");
        char long_arg[300];
        memset(long_arg, 'n', 256);
        strcpy(long_arg + 256, "=fd:3");
        is(kpa_handle_parse_arg(long_arg, &name, &spec, &err), -EINVAL, "256-char name refused");
        long_arg[255] = '=';
        strcpy(long_arg + 256, "fd:3");
        is(kpa_handle_parse_arg(long_arg, &name, &spec, &err), 0, "255-char name accepted");
        free(name);
        free(spec);
        name = spec = NULL;
        is(kpa_handle_parse_arg("x=", &name, &spec, &err), -EINVAL, "empty spec refused");
        has_str(err.message, "no spec", "empty spec: message");
        ok(name == NULL && spec == NULL, "nothing handed out on failure");
}

static void test_fd(void)
{
        kpa_error err;
        int p[2];
        ok(pipe2(p, O_CLOEXEC) == 0, "pipe");
        char spec[32];
        snprintf(spec, sizeof(spec), "fd:%d", p[1]);
        int fd = kpa_handle_open_spec(spec, &err);
        check_fd_shape(fd, spec);
        ok(fd != p[1], "fd:N duplicates rather than takes over");
        ok(write(fd, "x", 1) == 1, "duplicate writes into the same pipe");
        char c = 0;
        ok(read(p[0], &c, 1) == 1 && c == 'x', "data arrived");
        close(fd);
        close(p[0]);
        close(p[1]);

        fd = kpa_handle_open_spec("fd:0", &err);
        ok(fd >= 3, "fd:0 (stdin) can be passed on, at a new number");
        if (fd >= 0)
                close(fd);

        int unused = open("/dev/null", O_RDONLY | O_CLOEXEC);
        close(unused); /* now certainly not open */
        snprintf(spec, sizeof(spec), "fd:%d", unused);
        check_bad(spec, EBADF, "is not open");
        check_bad("fd:", EINVAL, "is not an fd number");
        check_bad("fd:abc", EINVAL, "is not an fd number");
        check_bad("fd:-1", EINVAL, "is not an fd number");
        check_bad("fd:3x", EINVAL, "is not an fd number");
        check_bad("fd:99999999999", EINVAL, "is not an fd number");

        /* as file: on a directory: no way out of the private root */
        int dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        snprintf(spec, sizeof(spec), "fd:%d", dfd);
        check_bad(spec, EISDIR, "is a directory");
        close(dfd);
}

static void test_files(void)
{
        kpa_error err;
        _cleanup_free_ char *f = path_in_dir("data.txt");
        _cleanup_close_ int w = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ok(w >= 0 && kpa_write_all(w, "hello", 5) == 0, "make a file");

        _cleanup_free_ char *spec = kpa_xasprintf("file:%s", f);
        int fd = kpa_handle_open_spec(spec, &err);
        check_fd_shape(fd, "file:");
        is(access_mode(fd), O_RDONLY, "file: is read-only");
        char buf[8] = "";
        ok(read(fd, buf, sizeof(buf)) == 5 && memcmp(buf, "hello", 5) == 0, "file: reads the file");
        close(fd);

        _cleanup_free_ char *rw = kpa_xasprintf("file+rw:%s", f);
        fd = kpa_handle_open_spec(rw, &err);
        check_fd_shape(fd, "file+rw:");
        is(access_mode(fd), O_RDWR, "file+rw: is read-write");
        ok(pwrite(fd, "J", 1, 0) == 1, "file+rw: writes");
        close(fd);

        _cleanup_free_ char *log = path_in_dir("new.log");
        _cleanup_free_ char *ap = kpa_xasprintf("file+a:%s", log);
        mode_t old = umask(022);
        fd = kpa_handle_open_spec(ap, &err);
        umask(old);
        check_fd_shape(fd, "file+a:");
        is(access_mode(fd), O_WRONLY, "file+a: is write-only");
        ok(fcntl(fd, F_GETFL) & O_APPEND, "file+a: appends");
        struct stat st;
        ok(stat(log, &st) == 0 && (st.st_mode & 07777) == 0644, "file+a: created with mode 0644");
        ok(write(fd, "one\n", 4) == 4, "file+a: write");
        close(fd);
        fd = kpa_handle_open_spec(ap, &err);
        ok(fd >= 0 && write(fd, "two\n", 4) == 4, "file+a: reopen and write");
        close(fd);
        _cleanup_free_ char *content = NULL;
        size_t len = 0;
        ok(kpa_read_file_at(AT_FDCWD, log, 64, &content, &len) == 0 && streq(content, "one\ntwo\n"),
           "file+a: the second write went to the end");

        _cleanup_free_ char *missing = path_in_dir("missing");
        _cleanup_free_ char *s1 = kpa_xasprintf("file:%s", missing);
        check_bad(s1, ENOENT, missing);
        _cleanup_free_ char *s2 = kpa_xasprintf("file+rw:%s", missing);
        check_bad(s2, ENOENT, "No such file or directory");
        ok(access(missing, F_OK) < 0, "file+rw: does not create the file");
        check_bad("file:", EINVAL, "no file path");
        check_bad("file+a:", EINVAL, "no file path");
        _cleanup_free_ char *s3 = kpa_xasprintf("file:%s", dir);
        check_bad(s3, EISDIR, "is a directory");
}

static int listening_port(int fd, int family)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != family)
                return -1;
        if (family == AF_INET)
                return ntohs(((struct sockaddr_in *)&ss)->sin_port);
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void test_tcp(void)
{
        kpa_error err;
        int fd = kpa_handle_open_spec("listen:tcp:127.0.0.1:0", &err);
        check_fd_shape(fd, "listen:tcp:");
        int port = listening_port(fd, AF_INET);
        ok(port > 0, "listen:tcp:127.0.0.1:0 got a port from the kernel (%d)", port);
        is(sock_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1, "listen:tcp: socket is listening");
        is(sock_int(fd, SOL_SOCKET, SO_REUSEADDR), 1, "listen:tcp: SO_REUSEADDR set");
        is(sock_int(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM, "listen:tcp: stream socket");

        _cleanup_free_ char *spec = kpa_xasprintf("connect:tcp:127.0.0.1:%d", port);
        int c = kpa_handle_open_spec(spec, &err);
        check_fd_shape(c, "connect:tcp:");
        int a = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        ok(a >= 0, "connect:tcp: reached the listener");
        ok(write(c, "ping", 4) == 4, "send over TCP");
        char buf[4];
        ok(read(a, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0, "received over TCP");
        close(a);
        close(c);
        close(fd);

        fd = kpa_handle_open_spec("listen:tcp:localhost:0", &err);
        ok(fd >= 0, "listen:tcp: a host name is resolved (%s)", fd < 0 ? err.message : "ok");
        if (fd >= 0)
                close(fd);

        int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&lo6, sizeof(lo6)) == 0;
        if (probe >= 0)
                close(probe);
        if (have_v6) {
                fd = kpa_handle_open_spec("listen:tcp:[::1]:0", &err);
                ok(fd >= 0 && listening_port(fd, AF_INET6) > 0, "listen:tcp:[::1]:0 (IPv6)");
                if (fd >= 0)
                        close(fd);
        } else {
                ok(1, "# SKIP no IPv6 loopback here");
        }

        check_bad("listen:tcp:127.0.0.1:70000", EINVAL, "bad port");
        check_bad("listen:tcp:127.0.0.1:", EINVAL, "bad port");
        check_bad("listen:tcp:127.0.0.1:http", EINVAL, "bad port");
        check_bad("listen:tcp:127.0.0.1:-1", EINVAL, "bad port");
        check_bad("listen:tcp:127.0.0.1", EINVAL, "expected HOST:PORT");
        check_bad("listen:tcp:", EINVAL, "expected HOST:PORT");
        check_bad("listen:tcp:::1:80", EINVAL, "in brackets");
        check_bad("listen:tcp:[::1:80", EINVAL, "[ADDRESS]:PORT");
        check_bad("listen:tcp:[nonsense]:80", EADDRNOTAVAIL, "cannot resolve");
        check_bad("connect:tcp::80", EINVAL, "no host");
}

static void test_unix(void)
{
        kpa_error err;
        _cleanup_free_ char *sock = path_in_dir("s");
        _cleanup_free_ char *listen_spec = kpa_xasprintf("listen:unix:%s", sock);
        _cleanup_free_ char *connect_spec = kpa_xasprintf("connect:unix:%s", sock);

        int fd = kpa_handle_open_spec(listen_spec, &err);
        check_fd_shape(fd, "listen:unix:");
        struct stat st;
        ok(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode), "listen:unix: made a socket file");
        is(sock_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1, "listen:unix: socket is listening");

        int c = kpa_handle_open_spec(connect_spec, &err);
        check_fd_shape(c, "connect:unix:");
        int a = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        ok(a >= 0 && write(c, "x", 1) == 1, "connect:unix: reached the listener");
        char ch = 0;
        ok(a >= 0 && read(a, &ch, 1) == 1 && ch == 'x', "received over the Unix socket");
        if (a >= 0)
                close(a);
        close(c);

        check_bad(listen_spec, EADDRINUSE, "already listening");
        ok(lstat(sock, &st) == 0, "a live socket is not removed");
        close(fd);

        fd = kpa_handle_open_spec(listen_spec, &err);
        ok(fd >= 0, "a stale socket is replaced (%s)", fd < 0 ? err.message : "ok");
        if (fd >= 0)
                close(fd);

        _cleanup_free_ char *file = path_in_dir("not-a-socket");
        _cleanup_close_ int w = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ok(w >= 0, "make a regular file");
        _cleanup_free_ char *s1 = kpa_xasprintf("listen:unix:%s", file);
        check_bad(s1, EEXIST, "exists and is not a socket");
        ok(lstat(file, &st) == 0 && S_ISREG(st.st_mode), "a regular file is not removed");

        _cleanup_free_ char *missing = path_in_dir("nobody-here");
        _cleanup_free_ char *s2 = kpa_xasprintf("connect:unix:%s", missing);
        check_bad(s2, ENOENT, "connect to");
        check_bad("listen:unix:", EINVAL, "no socket path");
        check_bad("connect:unix:", EINVAL, "no socket path");
        char long_spec[200] = "listen:unix:/tmp/";
        memset(long_spec + strlen(long_spec), 'x', 150);
        check_bad(long_spec, EINVAL, "socket path longer than");

        _cleanup_free_ char *abstract = kpa_xasprintf("listen:unix:@kpa-test-%d", (int)getpid());
        fd = kpa_handle_open_spec(abstract, &err);
        ok(fd >= 0, "listen:unix:@NAME makes an abstract socket");
        _cleanup_free_ char *abstract_c = kpa_xasprintf("connect:unix:@kpa-test-%d", (int)getpid());
        c = kpa_handle_open_spec(abstract_c, &err);
        ok(c >= 0, "connect:unix:@NAME reaches it");
        if (c >= 0)
                close(c);
        if (fd >= 0)
                close(fd);
}

static void test_unknown(void)
{
        kpa_error err;
        check_bad("pipe:x", EINVAL, "unknown kind");
        check_bad("/etc/passwd", EINVAL, "unknown kind");
        check_bad("listen:udp:127.0.0.1:0", EINVAL, "unknown kind");
        is(kpa_handle_open_spec("", &err), -EINVAL, "empty spec refused");
        has_str(err.message, "empty handle spec", "empty spec: message");
}

/* Failures of the system calls behind a spec: each is named, with its cause. */
static void test_failures(void)
{
        kpa_error err;
        int l = kpa_handle_open_spec("listen:tcp:127.0.0.1:0", &err);
        int port = listening_port(l, AF_INET);
        _cleanup_free_ char *taken = kpa_xasprintf("listen:tcp:127.0.0.1:%d", port);
        int fd = kpa_handle_open_spec(taken, &err);
        is(fd, -EADDRINUSE, "listen on a port in use is refused");
        has_str(err.message, "bind 127.0.0.1:", "... naming the step and the address");
        closep(&l);
        _cleanup_free_ char *refused = kpa_xasprintf("connect:tcp:127.0.0.1:%d", port);
        fd = kpa_handle_open_spec(refused, &err);
        is(fd, -ECONNREFUSED, "connect to a port nobody listens on is refused");
        has_str(err.message, "connect 127.0.0.1:", "... naming the step and the address");

        _cleanup_free_ char *nodir = kpa_xasprintf("listen:unix:%s/nodir/s", dir);
        is(kpa_handle_open_spec(nodir, &err), -ENOENT, "listen in a missing directory");
        has_str(err.message, "bind ", "... names bind");
        _cleanup_free_ char *file = path_in_dir("plain");
        close(open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        _cleanup_free_ char *notdir = kpa_xasprintf("listen:unix:%s/s", file);
        is(kpa_handle_open_spec(notdir, &err), -ENOTDIR, "listen below a file");
        has_str(err.message, "cannot stat", "... says so");

        /* with stdin closed, a new handle must still not land on fd 0 */
        int saved = fcntl(0, F_DUPFD_CLOEXEC, 3);
        close(0);
        _cleanup_free_ char *spec = kpa_xasprintf("file:%s", file);
        fd = kpa_handle_open_spec(spec, &err);
        check_fd_shape(fd, "with fd 0 free");
        closep(&fd);
        if (saved >= 0) {
                dup2(saved, 0);
                close(saved);
        }
}

int main(void)
{
        if (!mkdtemp(dir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        test_parse_arg();
        test_fd();
        test_files();
        test_tcp();
        test_unix();
        test_unknown();
        test_failures();
        kpa_rm_rf_at(AT_FDCWD, dir);
        return tap_done();
}
