/* threaded-start: libkpa called from a program with threads, for
 * tests/integration/threads.sh. libkpa makes the sandbox's child with a raw
 * clone3() from the calling thread; the child has one thread, but inherits
 * the caller's memory as it was, including libc's view that there are
 * others (and, maybe, a lock one of them held). It must still start.
 *   threaded-start STORE APP N [ARG...]
 * starts APP N times, one after the other, with ARG... as extra args, while
 * two more threads run: one blocked, one making threads and allocating
 * without a pause. Prints state=, status= and code= of each run; exits 0 when all N
 * finished, 1 on an error, and dies of SIGALRM after 60 s (a hang).
 * With START_IN_WORKER set, each start is made by a thread that ends
 * right after it, and the main thread waits: the instance must outlive
 * the thread that started it. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kpa/process.h"

static int block_pipe[2];

static void *blocked(void *arg)
{
        (void)arg;
        char c;
        (void)!read(block_pipe[0], &c, 1);
        return NULL;
}

static void *(*volatile allocate)(size_t) = malloc;

static void *nothing(void *arg)
{
        return arg;
}

/* Makes threads and memory without a pause: a start may come while a
 * thread is half made, or while malloc's lock is held. */
static void *churn(void *arg)
{
        (void)arg;
        for (;;) {
                pthread_t t;
                if (pthread_create(&t, NULL, nothing, NULL) == 0)
                        pthread_join(t, NULL);
                void *p = allocate(1000);
                free(p);
                pthread_testcancel();
        }
        return NULL;
}

struct start_job {
        kpa_control *ctl;
        const char *app;
        const kpa_start_options *opts;
        kpa_token tok;
        int r;
        kpa_error err;
};

static void *start_and_end(void *arg)
{
        struct start_job *j = arg;
        j->r = kpa_process_start(j->ctl, j->app, NULL, j->opts, &j->tok, &j->err);
        return NULL;
}

/* Start APP from a thread of its own, which ends at once. */
static int start_in_worker(kpa_control *ctl, const char *app, const kpa_start_options *o,
                           kpa_token *tok, kpa_error *err)
{
        struct start_job j = {.ctl = ctl, .app = app, .opts = o, .r = -1};
        pthread_t t;
        if (pthread_create(&t, NULL, start_and_end, &j) != 0 || pthread_join(t, NULL) != 0)
                return -1;
        *tok = j.tok;
        *err = j.err;
        return j.r;
}

int main(int argc, char **argv)
{
        if (argc < 4) {
                fprintf(stderr, "usage: threaded-start STORE APP N [ARG...]\n");
                return 2;
        }
        alarm(60);
        int n = atoi(argv[3]);
        pthread_t t1, t2;
        if (pipe(block_pipe) < 0 || pthread_create(&t1, NULL, blocked, NULL) != 0 ||
            pthread_create(&t2, NULL, churn, NULL) != 0) {
                perror("threads");
                return 1;
        }
        kpa_control *ctl;
        kpa_error err;
        if (kpa_control_open_local(argv[1], &ctl, &err) < 0) {
                fprintf(stderr, "open: %s\n", err.message);
                return 1;
        }
        kpa_start_options o;
        kpa_start_options_init(&o);
        o.extra_args = (const char *const *)argv + 4;
        o.n_extra_args = (size_t)(argc - 4);
        o.stdout_fd = 1;
        o.stderr_fd = 2;
        int failed = 0;
        for (int k = 0; k < n; k++) {
                kpa_token tok;
                kpa_process_context c;
                kpa_process_context_init(&c);
                int r = getenv("START_IN_WORKER")
                                ? start_in_worker(ctl, argv[2], &o, &tok, &err)
                                : kpa_process_start(ctl, argv[2], NULL, &o, &tok, &err);
                if (r < 0 ||
                    kpa_process_wait(ctl, &tok, 30000, &c, &err) < 0) {
                        fprintf(stderr, "start: %s\n", err.message);
                        failed = 1;
                        break;
                }
                printf("state=%s status=%s code=%d\n", kpa_process_state_name(c.state),
                       kpa_exit_status_name(c.exit_status), c.exit_code);
                fflush(stdout);
                if (c.state != KPA_PROCESS_FINISHED)
                        failed = 1;
        }
        kpa_control_close(ctl);
        pthread_cancel(t2);
        pthread_join(t2, NULL);
        close(block_pipe[1]);
        pthread_join(t1, NULL);
        return failed;
}
