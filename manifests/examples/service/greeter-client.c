/* greeter-client: the client side of the service/client example. It sends
 * each of its arguments as one request on the channel handle "greeter" and
 * prints the service's reply. It knows the service only by that handle:
 * kpa connected the two before either started. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../handle.h"

int main(int argc, char **argv)
{
        int fd = example_lookup_handle("greeter");
        if (fd < 0) {
                fprintf(stderr, "greeter-client: no channel handle \"greeter\"\n");
                return 1;
        }
        for (int i = 1; i < argc; i++) {
                char reply[600];
                if (send(fd, argv[i], strlen(argv[i]), MSG_NOSIGNAL) < 0) {
                        perror("greeter-client: send");
                        return 1;
                }
                ssize_t n;
                do
                        n = recv(fd, reply, sizeof(reply) - 1, 0);
                while (n < 0 && errno == EINTR);
                if (n <= 0) {
                        fprintf(stderr, "greeter-client: no reply from the service\n");
                        return 1;
                }
                reply[n] = '\0';
                printf("greeter-client: %s -> %s\n", argv[i], reply);
        }
        return 0;
}
