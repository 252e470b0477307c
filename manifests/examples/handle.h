/* handle.h: find a kpa user handle by name, for the example applications.
 *
 * kpa passes handles as fds 3, 4, ... with the sd_listen_fds(3) protocol:
 * LISTEN_FDS (how many), LISTEN_FDNAMES (their names, joined by ':') and
 * LISTEN_PID (the pid they are meant for). This is what kpa_lookup_handle()
 * in libkpa (kpa/handle.h) does; it is repeated here so that the examples
 * link statically against libc alone and need nothing else inside their
 * sandbox. libsystemd's sd_listen_fds_with_names() works as well. */
#ifndef KPA_EXAMPLE_HANDLE_H
#define KPA_EXAMPLE_HANDLE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXAMPLE_FIRST_HANDLE_FD 3

/* The number of handles this process was given (0 when none). */
static inline int example_handle_count(void)
{
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
                return 0;
        long n = strtol(fds, NULL, 10);
        return n > 0 && n < 1024 ? (int)n : 0;
}

/* The name of handle I (0-based) in BUF, or NULL. */
static inline const char *example_handle_name(int i, char *buf, size_t len)
{
        const char *p = getenv("LISTEN_FDNAMES");
        if (!p || i >= example_handle_count())
                return NULL;
        for (; i > 0; i--) {
                p = strchr(p, ':');
                if (!p)
                        return NULL;
                p++;
        }
        size_t n = strcspn(p, ":");
        if (n >= len)
                n = len - 1;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return buf;
}

/* The fd of the handle called NAME, or -1 with errno ENOENT. */
static inline int example_lookup_handle(const char *name)
{
        char buf[256];
        for (int i = 0; i < example_handle_count(); i++)
                if (example_handle_name(i, buf, sizeof(buf)) && strcmp(buf, name) == 0)
                        return EXAMPLE_FIRST_HANDLE_FD + i;
        errno = ENOENT;
        return -1;
}

#endif
