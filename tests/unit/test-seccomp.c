/* Unit tests for seccomp-filter.c: each policy's program is built once per
 * process (the default one at build time, by seccomp-gen, and it is the one
 * libseccomp builds at run time) and every caller gets a copy of its own
 * (kpa-execd builds one per start); the copies are the same program, differ
 * between policies, stay intact when another copy is freed, and do what the
 * filter says once installed in a forked child. No root needed. */
#include "config.h"

#include <errno.h>
#include <linux/filter.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "seccomp-filter.h"
#include "tap.h"
#include "util.h"

static bool same_prog(const kpa_seccomp_prog *a, const kpa_seccomp_prog *b)
{
        return a->len == b->len &&
               memcmp(a->filter, b->filter, a->len * sizeof(struct sock_filter)) == 0;
}

/* In a child: install PROG (NULL: none), then call clone3 with no
 * arguments, and report its errno as the exit status: the kernel says
 * EINVAL, the filter ENOSYS (so that libc falls back to clone). */
static int clone3_errno_in_child(const kpa_seccomp_prog *prog)
{
        pid_t pid = fork();
        if (pid == 0) {
                if (prog && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                             kpa_seccomp_apply(prog, NULL) < 0))
                        _exit(100);
                long r = syscall(SYS_clone3, NULL, 0);
                _exit(r < 0 ? errno : 101);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 102;
}

typedef struct {
        kpa_seccomp_policy policy;
        kpa_seccomp_prog prog;
        int r;
} build_job;

static void *build_thread(void *arg)
{
        build_job *j = arg;
        kpa_error err;
        j->r = kpa_seccomp_build(&j->policy, &j->prog, &err);
        return NULL;
}

int main(void)
{
        /* valgrind (make check-valgrind) knows neither seccomp nor clone3 */
        const char *preload = getenv("LD_PRELOAD");
        if (preload && strstr(preload, "vgpreload")) {
                printf("1..0 # SKIP valgrind knows neither seccomp nor clone3\n");
                return 0;
        }
        kpa_error err;
        kpa_seccomp_policy none = {0}, ptrace = {.allow_ptrace = true},
                           personality = {.allow_personality = true};
        kpa_seccomp_prog a = {0}, b = {0}, p = {0}, q = {0};
        is(kpa_seccomp_build(&none, &a, &err), 0, "the default filter builds");
        ok(a.len > 0 && a.len <= BPF_MAXINSNS, "it has 1..%d instructions (%u)", BPF_MAXINSNS,
           a.len);
        is(kpa_seccomp_build(&none, &b, &err), 0, "a second build of it (from the cache)");
        ok(same_prog(&a, &b), "is the same program");
        ok(a.filter != b.filter, "in a copy of its own");
        size_t bytes = b.len * sizeof(struct sock_filter);
        kpa_seccomp_prog saved = {.len = b.len, .filter = memcpy(kpa_xmalloc(bytes), b.filter, bytes)};
        kpa_seccomp_prog_free(&a);
        ok(a.filter == NULL && a.len == 0, "a freed copy is emptied");
        ok(same_prog(&b, &saved), "freeing one copy leaves the other intact");

        /* the default program is seccomp-gen's, made at build time */
        kpa_seccomp_prog fresh = {0};
        is(kpa_seccomp_build_fresh(&none, &fresh, &err), 0, "libseccomp builds the default filter now");
        ok(same_prog(&fresh, &b), "the prebuilt default program is the one libseccomp builds now");
        kpa_seccomp_prog_free(&fresh);

        is(kpa_seccomp_build(&ptrace, &p, &err), 0, "allowPtrace builds");
        ok(!same_prog(&p, &b), "and is another program than the default");
        is(kpa_seccomp_build(&personality, &q, &err), 0, "allowPersonality builds");
        ok(q.len < b.len, "and lacks the personality prefix (%u < %u)", q.len, b.len);

        is(clone3_errno_in_child(NULL), EINVAL, "without a filter, clone3(NULL, 0) fails with EINVAL");
        is(clone3_errno_in_child(&b), ENOSYS, "with the cached copy installed, with ENOSYS");
        kpa_seccomp_prog_free(&p);
        kpa_seccomp_prog_free(&q);

        /* four threads ask for a policy not built yet, all at once */
        build_job jobs[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
                jobs[i] = (build_job){.policy = {.allow_bpf = true, .allow_keyring = true}};
                pthread_create(&t[i], NULL, build_thread, &jobs[i]);
        }
        bool all_ok = true, all_same = true;
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                all_ok = all_ok && jobs[i].r == 0;
                all_same = all_same && same_prog(&jobs[i].prog, &jobs[0].prog);
        }
        ok(all_ok && all_same, "builds in 4 threads at once give the same program");
        for (int i = 0; i < 4; i++)
                kpa_seccomp_prog_free(&jobs[i].prog);
        kpa_seccomp_prog_free(&b);
        free(saved.filter);
        return tap_done();
}
