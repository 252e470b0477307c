/* echo: a TCP echo server that owns no socket of its own. It takes a
 * listening socket as the handle "listen", so that it needs neither the
 * network nor the right to bind a port:
 *     kpa-run --handle listen=listen:tcp:127.0.0.1:7000 org.example.echo
 * Every byte a client sends comes back. One poll loop serves up to
 * MAX_CLIENTS clients at once. SIGTERM (a Normal stop) ends it with exit
 * code 0; --max-clients N ends it after N clients have come and gone. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../handle.h"

#define MAX_CLIENTS 64

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
        (void)sig;
        stopping = 1;
}

static void print_address(int fd)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
                if (ss.ss_family == AF_INET) {
                        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
                        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
                        port = ntohs(sin->sin_port);
                } else if (ss.ss_family == AF_INET6) {
                        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
                        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
                        port = ntohs(sin6->sin6_port);
                }
        }
        printf("echo: listening on %s:%d\n", host, port);
        fflush(stdout);
}

/* Send back what one client sent; 0 while it stays, -1 once it is gone. */
static int echo_once(int fd)
{
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n <= 0)
                return -1;
        for (ssize_t off = 0; off < n;) {
                ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -1;
                off += w;
        }
        return 0;
}

int main(int argc, char **argv)
{
        long max_clients = -1; /* -1: serve until stopped */
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--max-clients") == 0 && i + 1 < argc)
                        max_clients = strtol(argv[++i], NULL, 10);
        }
        int lfd = example_lookup_handle("listen");
        int accepting = 0;
        socklen_t alen = sizeof(accepting);
        if (lfd < 0 || getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &alen) < 0 ||
            !accepting) {
                fprintf(stderr, "echo: no listening socket as the handle \"listen\"; run me with\n"
                                "  kpa-run --handle listen=listen:tcp:127.0.0.1:PORT APP_ID\n");
                return 1;
        }
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        print_address(lfd);

        struct pollfd pfd[MAX_CLIENTS + 1] = {{.fd = lfd, .events = POLLIN}};
        nfds_t n = 1;
        long served = 0;
        while (!stopping && (max_clients < 0 || served < max_clients || n > 1)) {
                /* accept only while there is room (and quota) for one more */
                bool room = n <= MAX_CLIENTS && (max_clients < 0 || served + (long)n - 1 < max_clients);
                pfd[0].events = room ? POLLIN : 0;
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("echo: poll");
                        return 1;
                }
                for (nfds_t i = n; i-- > 1;) {
                        if (!pfd[i].revents || echo_once(pfd[i].fd) == 0)
                                continue;
                        close(pfd[i].fd);
                        pfd[i] = pfd[--n];
                        served++;
                }
                if (room && (pfd[0].revents & POLLIN)) {
                        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        if (cfd >= 0)
                                pfd[n++] = (struct pollfd){.fd = cfd, .events = POLLIN};
                }
        }
        printf("echo: %s after %ld clients\n", stopping ? "stopped" : "done", served);
        return 0;
}
