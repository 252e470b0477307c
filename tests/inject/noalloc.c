/* noalloc.c: an LD_PRELOAD shim for tests/integration/noalloc.sh. A process
 * that loaded it and then allocates from a child made by a raw clone (the
 * sandbox's init and the application before its exec) is killed with
 * SIGABRT. libkpa clones that child with clone3() straight from the
 * caller, so a multi-threaded caller may hand it a copy of malloc's lock
 * held by another thread: the child must not allocate. glibc's own fork()
 * makes malloc safe in its child and runs the atfork handlers, so a child
 * made by fork() is left alone: it re-arms the check for its own pid.
 *
 *   KPA_NOALLOC=1  turns the check on (without it the shim does nothing). */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static pid_t owner; /* 0: the check is off */

static void rearm(void)
{
        owner = getpid();
}

__attribute__((constructor)) static void noalloc_init(void)
{
        const char *on = getenv("KPA_NOALLOC");
        if (on && *on) {
                rearm();
                pthread_atfork(NULL, NULL, rearm);
        }
}

static void check(const char *what)
{
        if (owner == 0 || getpid() == owner)
                return;
        static const char msg[] = "kpa-noalloc: allocation in a cloned child: ";
        (void)!write(2, msg, sizeof(msg) - 1);
        (void)!write(2, what, strlen(what));
        (void)!write(2, "\n", 1);
        signal(SIGABRT, SIG_DFL);
        raise(SIGABRT);
        _exit(134);
}

void *malloc(size_t n)
{
        check("malloc");
        return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
        check("calloc");
        return __libc_calloc(n, m);
}

void free(void *p)
{
        if (p)
                check("free");
        __libc_free(p);
}

void *realloc(void *p, size_t n)
{
        check("realloc");
        return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
        check("memalign");
        return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
        check("posix_memalign");
        void *p = __libc_memalign(align, n);
        if (!p)
                return 12; /* ENOMEM */
        *out = p;
        return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
        check("aligned_alloc");
        return __libc_memalign(align, n);
}
