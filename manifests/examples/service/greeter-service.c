/* greeter-service: the service side of the service/client example. It
 * answers requests that arrive on the channel handle "greeter" (a
 * SOCK_SEQPACKET socket that kpa connects to the client: one datagram is
 * one request) and ends when the client hangs up. It never opens a socket
 * itself and runs without network. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../handle.h"

int main(void)
{
        int fd = example_lookup_handle("greeter");
        if (fd < 0) {
                fprintf(stderr, "greeter-service: no channel handle \"greeter\"\n");
                return 1;
        }
        printf("greeter-service: ready\n");
        fflush(stdout);
        for (long served = 1;; served++) {
                char req[512], reply[600];
                ssize_t n = recv(fd, req, sizeof(req) - 1, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        perror("greeter-service: recv");
                        return 1;
                }
                if (n == 0) { /* the client closed its end */
                        printf("greeter-service: client gone after %ld requests\n", served - 1);
                        return 0;
                }
                req[n] = '\0';
                int len = snprintf(reply, sizeof(reply), "hello, %s (request %ld)", req, served);
                printf("greeter-service: request %ld: %s\n", served, req);
                fflush(stdout);
                if (send(fd, reply, (size_t)len, MSG_NOSIGNAL) < 0) {
                        perror("greeter-service: send");
                        return 1;
                }
        }
}
