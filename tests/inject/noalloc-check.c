/* noalloc-check.c: shows that the noalloc shim catches what it is for
 * (tests/integration/noalloc.sh). It prints how a child that allocates
 * ended, once made by a raw clone3() as libkpa makes the sandbox's child
 * ("raw=abort" is expected under the shim) and once by fork() ("fork=ok").
 * The allocation goes through a volatile function pointer, so that no
 * compiler drops it. */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *(*volatile allocate)(size_t) = malloc;

static _Noreturn void child(void)
{
        void *p = allocate(64);
        _exit(p ? 0 : 1);
}

static const char *ended(pid_t pid)
{
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return "error";
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
                return "abort";
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return "ok";
        return "other";
}

int main(void)
{
        struct clone_args args = {.exit_signal = SIGCHLD};
        fflush(stdout);
        pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                child();
        printf("raw=%s\n", ended(pid));
        fflush(stdout);
        pid = fork();
        if (pid == 0)
                child();
        printf("fork=%s\n", ended(pid));
        return 0;
}
