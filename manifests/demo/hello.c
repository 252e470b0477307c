/* The demo application: prints its arguments, a few environment variables,
 * its handles (LISTEN_FDNAMES) and its private storage, then exits with the
 * code given by --exit N (default 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        int code = 0;
        printf("hello from %s (pid %d, uid %d)\n", argv[0], (int)getpid(), (int)getuid());
        for (int i = 1; i < argc; i++) {
                printf("  arg[%d] = %s\n", i, argv[i]);
                if (strcmp(argv[i], "--exit") == 0 && i + 1 < argc)
                        code = atoi(argv[i + 1]);
        }
        const char *vars[] = {"GREETING", "LISTEN_FDS", "LISTEN_FDNAMES", "HOME", NULL};
        for (const char **v = vars; *v; v++)
                printf("  %s=%s\n", *v, getenv(*v) ? getenv(*v) : "(unset)");
        if (access("/storage", W_OK) == 0)
                printf("  private storage: /storage is writable\n");
        return code;
}
