/* Unit tests for sockets.c: declared sockets made from their declaration
 * (TCP, unix below $KPA_SOCKETS_DIR/APP_ID/ with the directories on the
 * way), the address a socket listens on, whether connections wait, and
 * the removal of a package's socket directory. No root needed. */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "sockets.h"
#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/kpa-test-sockets-XXXXXX";

static int connect_tcp(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static void test_tcp(void)
{
        /* port 0 never comes from a manifest; here it finds a free port */
        kpa_socket_decl d = {.name = "http", .listen = "tcp:127.0.0.1:0", .kind = KPA_SOCKET_TCP,
                             .address = "127.0.0.1", .port = 0};
        kpa_error err;
        _cleanup_close_ int fd = kpa_socket_open_declared("org.example.s", "main", &d, getuid(),
                                                          getgid(), &err);
        ok(fd > 2, "a TCP socket is made, off fds 0-2");
        int listening = 0;
        socklen_t len = sizeof(listening);
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
        ok(listening, "... and listens");
        char where[128] = "";
        is(kpa_socket_address(fd, where, sizeof(where), NULL), 0, "its address");
        has_str(where, "127.0.0.1:", "... is 127.0.0.1:PORT");
        is(kpa_socket_address(-1, where, sizeof(where), &err), -EBADF, "no socket: -EBADF");
        has_str(err.message, "getsockname of fd -1", "... in ERR, naming the fd");
        int port = atoi(strchr(where, ':') + 1);
        ok(!kpa_socket_has_pending(fd), "nothing waits on a fresh socket");
        _cleanup_close_ int c = connect_tcp(port);
        ok(c >= 0 && kpa_socket_has_pending(fd), "a connection that nobody accepted waits");
        _cleanup_close_ int a = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        ok(a >= 0 && !kpa_socket_has_pending(fd), "once accepted, nothing waits");

        /* the same address again: in use, named */
        char listen[64];
        snprintf(listen, sizeof(listen), "tcp:127.0.0.1:%d", port);
        kpa_socket_decl again = {.name = "http", .listen = listen, .kind = KPA_SOCKET_TCP,
                                 .address = "127.0.0.1", .port = (uint16_t)port};
        int fd2 = kpa_socket_open_declared("org.example.s", "main", &again, getuid(), getgid(),
                                           &err);
        is(fd2, -EADDRINUSE, "an address in use is refused");
        has_str(err.message, "org.example.s/main: socket \"http\"", "... naming the socket");
        has_str(err.message, "the address is in use", "... and the reason");
}

static void test_unix(void)
{
        setenv("KPA_SOCKETS_DIR", dir, 1);
        is_str(kpa_sockets_dir(), dir, "KPA_SOCKETS_DIR is where unix sockets go");
        kpa_socket_decl d = {.name = "ctl", .listen = "unix:run/ctl.sock", .kind = KPA_SOCKET_UNIX,
                             .address = "run/ctl.sock"};
        kpa_error err;
        int fd = kpa_socket_open_declared("org.example.s", "main", &d, getuid(), getgid(), &err);
        if (!ok(fd > 2, "a unix socket is made"))
                printf("#   %s\n", err.message);
        _cleanup_free_ char *path = kpa_xasprintf("%s/org.example.s/run/ctl.sock", dir);
        struct stat st;
        ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0666 &&
                   st.st_uid == getuid(),
           "... at DIR/APP_ID/PATH, the directories made, mode 0666, owned by the uid");
        char where[128] = "";
        kpa_socket_address(fd, where, sizeof(where), NULL);
        is_str(where, path, "its address is the path");
        close(fd);
        /* nobody listens any more: a new start replaces the stale file */
        fd = kpa_socket_open_declared("org.example.s", "main", &d, getuid(), getgid(), &err);
        ok(fd > 2, "a stale socket file is replaced");
        int fd2 = kpa_socket_open_declared("org.example.s", "main", &d, getuid(), getgid(), &err);
        is(fd2, -EADDRINUSE, "a live one is refused");
        has_str(err.message, "a server is already listening on", "... saying so");
        close(fd);
        kpa_sockets_remove_dir("org.example.s");
        _cleanup_free_ char *app_dir = kpa_xasprintf("%s/org.example.s", dir);
        ok(stat(app_dir, &st) < 0 && errno == ENOENT, "the package's socket directory is removed");
        kpa_sockets_remove_dir("org.example.none"); /* nothing there: nothing happens */
}

int main(void)
{
        if (!mkdtemp(dir))
                return 1;
        test_tcp();
        test_unix();
        kpa_rm_rf_at(AT_FDCWD, dir);
        return tap_done();
}
