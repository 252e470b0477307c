/* hello: the smallest useful KPA application. It prints what kpa gave it,
 * one "key: value" line each, so that a person or a test can see the
 * sandbox from the inside:
 *   - its arguments (the manifest's "args", then kpa-run's extra ones),
 *   - its whole environment (a clean base plus the manifest's envVariables),
 *   - its handles (kpa-run --handle NAME=SPEC), with what each fd is,
 *   - its private storage /storage, where it counts its runs,
 * and exits with the code given by "--exit N" (default 0). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../handle.h"

extern char **environ;

static int compare_strings(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_environment(void)
{
        size_t n = 0;
        while (environ[n])
                n++;
        char **sorted = calloc(n + 1, sizeof(*sorted));
        if (!sorted)
                return;
        memcpy(sorted, environ, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), compare_strings);
        for (size_t i = 0; i < n; i++)
                printf("env: %s\n", sorted[i]);
        free(sorted);
}

static void print_handles(void)
{
        int n = example_handle_count();
        printf("handles: %d\n", n);
        for (int i = 0; i < n; i++) {
                char name[256], proc[64], target[PATH_MAX];
                int fd = EXAMPLE_FIRST_HANDLE_FD + i;
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                ssize_t len = readlink(proc, target, sizeof(target) - 1);
                target[len > 0 ? len : 0] = '\0';
                printf("handle: %s fd %d %s\n",
                       example_handle_name(i, name, sizeof(name)) ? name : "?", fd,
                       len > 0 ? target : "(closed)");
        }
}

/* Private storage persists across runs (and upgrades): count the runs in
 * /storage/runs. */
static void print_storage(void)
{
        long runs = 0;
        FILE *f = fopen("/storage/runs", "re");
        if (f) {
                if (fscanf(f, "%ld", &runs) != 1)
                        runs = 0;
                fclose(f);
        }
        runs++;
        f = fopen("/storage/runs.new", "we");
        if (!f || fprintf(f, "%ld\n", runs) < 0 || fclose(f) != 0 ||
            rename("/storage/runs.new", "/storage/runs") < 0) {
                printf("storage: /storage is not writable (%s)\n", strerror(errno));
                return;
        }
        printf("storage: /storage is writable, run %ld\n", runs);
}

int main(int argc, char **argv)
{
        int code = 0;
        printf("hello: pid %d, uid %d, gid %d\n", (int)getpid(), (int)getuid(), (int)getgid());
        for (int i = 0; i < argc; i++) {
                printf("arg[%d]: %s\n", i, argv[i]);
                if (strcmp(argv[i], "--exit") == 0 && i + 1 < argc)
                        code = atoi(argv[i + 1]);
        }
        print_environment();
        print_handles();
        print_storage();
        printf("exit: %d\n", code);
        return code;
}
