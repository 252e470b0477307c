/* probe-sd: checks that kpa's handles follow the sd_listen_fds(3) protocol
 * by asking libsystemd itself. Prints count=N and one NAME=FD line per
 * handle; exits 1 when libsystemd reports an error. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

int main(void)
{
        char **names = NULL;
        int n = sd_listen_fds_with_names(0, &names);
        if (n < 0) {
                printf("error=%s\n", strerror(-n));
                return 1;
        }
        printf("count=%d\n", n);
        for (int i = 0; i < n; i++) {
                printf("%s=%d\n", names && names[i] ? names[i] : "unknown",
                       SD_LISTEN_FDS_START + i);
                if (names)
                        free(names[i]);
        }
        free(names);
        return 0;
}
