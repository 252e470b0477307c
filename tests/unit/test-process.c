/* Unit tests for process.c through kpa/process.h: tokens, the refusals of a
 * start that never reaches the sandbox (unknown package, run configuration
 * or parent token; a package without run configurations), calls on unknown
 * tokens, and, as root, an instance driven from C: a wait that times out, a
 * Forced stop, a child of a parent, a Normal stop while still Created (with
 * SIGTERM unblocked), and kpa_control_close() stopping what still runs; the task API's refusals, and a task run and stopped.
 * tests/integration/run.sh and task.sh cover the same through the tools.
 *
 * With KPA_TEST_EXECD set to a kpa-execd binary, the same tests run
 * against a daemon it starts (kpa_control_connect): both controllers must
 * behave the same (tests/integration/daemon-api.sh). The task API is
 * local only there. */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kpa/package.h"
#include "kpa/process.h"
#include "kpa/task.h"
#include "process-internal.h"
#include "tap.h"
#include "test-files.h"
#include "util.h"

#define MANIFEST_FMT                                                                        \
        "{\"version\": \"2.0\",\n"                                                          \
        " \"application\": {\"id\": \"%s\", \"name\": \"P\", \"version\": \"1\", "          \
        "\"buildNumber\": \"1\", \"systemApplication\": false},\n"                          \
        " \"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"s\", "            \
        "\"buildSdkVersion\": \"1\", \"targetApiLevel\": 1}, \"hwSpecification\": "         \
        "{\"arch\": \"%s\", \"cpu\": \"\"}},\n"                                             \
        " \"components\": [{\"name\": \"app\", \"componentType\": \"bin\", \"digest\": \"\"}]" \
        "%s}\n"
#define RUN_CONFIGS                                                                         \
        ",\n \"runConfigurations\": [{\"id\": \"main\", \"name\": \"M\", \"type\": "        \
        "\"service\", \"path\": \"bin/app\", \"primary\": true, \"args\": []}]"

/* what the last failed call said (every call of kpa/process.h and kpa/task.h
 * fills its kpa_error on a failure) */
static kpa_error call_err;

static char tmp[] = "/tmp/kpa-test-process-XXXXXX";
static pid_t daemon_pid; /* the kpa-execd under test, or 0: the local controller */

/* Pack and install APP_ID (with a run configuration when RUNNABLE), whose
 * bin/app runs its arguments. */
static int install(kpa_store *s, const char *app_id, bool runnable)
{
        _cleanup_free_ char *src = kpa_xasprintf("%s/src-%s", tmp, app_id);
        _cleanup_free_ char *manifest = kpa_xasprintf("%s/manifest.json", src);
        _cleanup_free_ char *app = kpa_xasprintf("%s/app", src);
        _cleanup_free_ char *out = kpa_xasprintf("%s/%s.kpa", tmp, app_id);
        _cleanup_free_ char *text =
                kpa_xasprintf(MANIFEST_FMT, app_id, host_arch(), runnable ? RUN_CONFIGS : "");
        (void)mkdir(src, 0755);
        write_file_mode(app, "#!/bin/sh\nexec \"$@\"\n", 0755);
        write_file_mode(manifest, text, 0755);
        kpa_error err;
        int r = pack_one(manifest, app, out, &err);
        if (r >= 0)
                r = kpa_store_install(s, out, NULL, NULL, &err);
        /* the host's network, asked for at start (KPA_TASK_HOST_NETWORK),
         * needs the grant */
        if (r >= 0)
                r = kpa_store_set_grants(s, app_id, "network", false, NULL, &err);
        if (r < 0)
                printf("# %s: %s\n", app_id, err.message);
        return r;
}

static void test_tokens(void)
{
        kpa_token t, back;
        memset(&t, 0, sizeof(t));
        ok(kpa_token_is_null(&t), "a zero token is null");
        for (size_t i = 0; i < sizeof(t.bytes); i++)
                t.bytes[i] = (uint8_t)(i * 17 + 1);
        ok(!kpa_token_is_null(&t), "another is not");
        char s[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&t, s);
        is(strlen(s), 32, "a token is 32 characters");
        is(kpa_token_from_string(s, &back), 0, "and reads back");
        ok(memcmp(&t, &back, sizeof(t)) == 0, "to the same token");
        is(kpa_token_from_string("abc", &back), -EINVAL, "a short string is no token");
        is(kpa_token_from_string(NULL, &back), -EINVAL, "nor is NULL");
        is(kpa_token_from_string("zz0102030405060708090a0b0c0d0e0f", &back), -EINVAL,
           "nor are non-hex digits");
        is(kpa_token_from_string("0G0102030405060708090a0b0c0d0e0f", &back), -EINVAL,
           "nor a bad second digit");
        is_str(kpa_process_state_name((kpa_process_state)99), "Unknown", "an unknown state");
        is_str(kpa_exit_status_name((kpa_exit_status)99), "Unknown", "an unknown exit status");
}

static void test_refusals(kpa_control *ctl)
{
        kpa_token token, none;
        memset(&none, 0x5a, sizeof(none));
        is(kpa_process_start(ctl, "org.example.none", NULL, NULL, &token, &call_err), -ENOENT,
           "an unknown package is refused");
        has_str(call_err.message, "org.example.none",
                "... and named in the last error");
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        is(kpa_process_get_state(ctl, &token, &ctx, &call_err), 0, "its token still names a context");
        is(ctx.state, KPA_PROCESS_FAILED, "... Failed");
        is(ctx.exit_reason, ENOENT, "... with exit reason ENOENT");

        /* versioned structs (issue 16): 0 is refused, naming the struct; an
         * older caller's shorter struct gets the defaults past its end */
        kpa_process_context uninit = {0};
        is(kpa_process_get_state(ctl, &token, &uninit, &call_err), -EINVAL,
           "a kpa_process_context never initialized is refused");
        has_str(call_err.message, "kpa_process_context.struct_size is 0",
                "... naming the struct");
        is(kpa_process_stop(ctl, &none, KPA_STOP_NORMAL, NULL), -ESRCH,
           "an unknown token, with no kpa_error to fill (NULL)");
        kpa_error_clear(&call_err);
        is(kpa_process_get_state(ctl, &token, &ctx, &call_err), 0, "a call that succeeds");
        is(call_err.code, 0, "... leaves its kpa_error alone");
        kpa_start_options old;
        kpa_start_options_init(&old);
        old.struct_size = 0;
        is(kpa_process_start(ctl, "org.example.proc", NULL, &old, &token, &call_err), -EINVAL,
           "so is a kpa_start_options");
        has_str(call_err.message, "kpa_start_options.struct_size is 0",
                "... naming it");
        kpa_start_options_init(&old);
        old.parent = &none;
        is(kpa_process_start(ctl, "org.example.norc", NULL, &old, &token, &call_err), -ESRCH,
           "a whole kpa_start_options is read (an unknown parent)");
        old.struct_size = offsetof(kpa_start_options, parent);
        is(kpa_process_start(ctl, "org.example.norc", NULL, &old, &token, &call_err), -ENOENT,
           "an older, shorter one gets the default for what it lacks (no parent)");

        is(kpa_process_start(ctl, "org.example.norc", NULL, NULL, &token, &call_err), -ENOENT,
           "a package without run configurations cannot start");
        has_str(call_err.message, "no run configuration to start",
                "... and says so");
        is(kpa_process_start(ctl, "org.example.proc", "nosuch", NULL, &token, &call_err), -ENOENT,
           "an unknown run configuration is refused");
        has_str(call_err.message, "(it has: main)", "... listing the others");
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.parent = &none;
        is(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &token, &call_err), -ESRCH,
           "an unknown parent token is refused");

        opts.parent = NULL;
        const char *bad_env[] = {"NOEQUALS"};
        opts.extra_env = bad_env;
        opts.n_extra_env = 1;
        is(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &token, &call_err), -EINVAL,
           "an environment entry without '=' is refused");
        has_str(call_err.message, "\"NOEQUALS\" is not NAME=VALUE",
                "... and named");
        opts.n_extra_env = 0;
        kpa_user_handle bad_name[] = {{"a:b", 0}};
        opts.handles = bad_name;
        opts.n_handles = 1;
        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &token, &call_err) < 0,
           "a handle name with ':' is refused");
        kpa_user_handle bad_fd[] = {{"h", -1}};
        opts.handles = bad_fd;
        is(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &token, &call_err), -EBADF,
           "a handle that is no fd is refused");
        has_str(call_err.message, "handle \"h\" (fd -1)", "... and named");
        opts.n_handles = 0;

        ok(kpa_process_stop(ctl, &none, KPA_STOP_FORCED, &call_err) < 0, "stop of an unknown token fails");
        is(kpa_process_wait(ctl, &none, 0, &ctx, &call_err), 0, "a wait for an unknown token returns");
        is(ctx.state, KPA_PROCESS_NOT_EXISTING, "... NotExisting");
        if (!daemon_pid)
                ok(kpa_control_get_fd(ctl) >= 0, "the control has an fd");
        else
                is(kpa_control_get_fd(ctl), -EOPNOTSUPP, "a connected control has no fd");
        is(kpa_control_dispatch(ctl, &call_err), 0, "dispatch with nothing to do");
}

static void test_task_refusals(kpa_control *ctl)
{
        kpa_task *t = NULL, *u = NULL;
        is(kpa_task_create(ctl, "bin/app", NULL, NULL, 0, &t, &call_err), -EINVAL,
           "a task path must be /APP_ID/bin/NAME");
        is(kpa_task_create(ctl, "/org.example.none/bin/app", NULL, NULL, 0, &t, &call_err), -ENOENT,
           "a task of an unknown package");
        is(kpa_task_create(ctl, "/org.example.proc/bin/nosuch", NULL, NULL, 0, &t, &call_err), -ENOENT,
           "a task of an unknown binary");
        has_str(call_err.message, "has no bin component", "... says so");
        const char *args[] = {"true", NULL};
        const char *env[] = {"A=1", NULL};
        if (!ok(kpa_task_create(ctl, "/org.example.proc/bin/app", args, env, 0, &t, &call_err) == 0 &&
                        kpa_task_create(ctl, "/org.example.proc/bin/app", NULL, NULL, 0, &u, &call_err) == 0,
                "two tasks"))
                return;
        is(kpa_task_transfer(t, -1, "h", &call_err), -EBADF, "a bad fd is refused");
        is(kpa_task_transfer(t, 0, "a:b", &call_err), -EINVAL, "a bad handle name is refused");
        is(kpa_task_transfer(t, 0, "h", &call_err), 0, "a handle");
        is(kpa_task_transfer(t, 0, "h", &call_err), -EEXIST, "the same name twice is refused");
        is(kpa_task_connect(t, u, "h", &call_err), -EEXIST, "a channel under a name taken in the first");
        is(kpa_task_transfer(u, 0, "c", &call_err), 0, "a handle in the second");
        is(kpa_task_connect(t, u, "c", &call_err), -EEXIST, "a channel under a name taken in the second");
        is(kpa_task_connect(t, u, "ch", &call_err), 0, "a channel");
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        is(kpa_task_wait(t, 0, &ctx, &call_err), -ESRCH, "a task that has not started cannot be waited for");
        kpa_task_put(t);
        kpa_task_put(u);
        kpa_task_put(NULL);
}

static void test_task_run(kpa_control *ctl)
{
        const char *args[] = {"sleep", "30", NULL};
        kpa_task *t = NULL;
        if (!ok(kpa_task_create(ctl, "/org.example.proc/bin/app", args, NULL,
                                KPA_TASK_HOST_NETWORK, &t, &call_err) == 0,
                "a task"))
                return;
        kpa_token token;
        is(kpa_task_run(t, &token, &call_err), 0, "runs");
        ok(!kpa_token_is_null(&token), "... with a token");
        is(kpa_task_run(t, NULL, &call_err), -EBUSY, "a second run is refused");
        is(kpa_task_transfer(t, 0, "late", &call_err), -EBUSY, "so is a handle once it runs");
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        is(kpa_task_stop_and_wait(t, 5000, &ctx, &call_err), 0, "stop and wait");
        is(ctx.state, KPA_PROCESS_FINISHED, "... Finished");
        kpa_task_put(t);
}

/* A Normal stop asked for while the instance is still Created (its init is
 * setting up the sandbox), by a caller that has SIGTERM unblocked, as a
 * library user may: the init must not lose the SIGTERM (an init of a PID
 * namespace drops a signal it has no handler for and has not blocked), so
 * the instance ends long before the grace period would run out. */
static void test_stop_while_created(kpa_control *ctl)
{
        sigset_t term, old;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigprocmask(SIG_UNBLOCK, &term, &old);
        const char *sleep_args[] = {"sleep", "30"};
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.extra_args = sleep_args;
        opts.n_extra_args = 2;
        opts.stop_timeout_ms = 60000;
        int lost = 0;
        for (int round = 0; round < 5; round++) {
                kpa_token t;
                if (!ok(kpa_control_start_async(ctl, "org.example.proc", NULL, &opts, &t) == 0,
                        "start, returning at Created")) {
                        printf("#   %s\n", call_err.message);
                        break;
                }
                is(kpa_process_stop(ctl, &t, KPA_STOP_NORMAL, &call_err), 0, "... a Normal stop at once");
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                int r = kpa_process_wait(ctl, &t, 10000, &ctx, &call_err);
                if (r == -ETIMEDOUT) {
                        lost++;
                        kpa_process_stop(ctl, &t, KPA_STOP_FORCED, &call_err);
                        kpa_process_wait(ctl, &t, 5000, &ctx, &call_err);
                }
        }
        is(lost, 0, "no SIGTERM was lost (each instance ended well within its 60 s grace period)");
        sigprocmask(SIG_SETMASK, &old, NULL);
}

/* The calls a tool needs beyond start/stop/state (issue 16: kpa-run uses
 * include/kpa alone): contexts listed in one call, the owner, the JSON form,
 * a log that is not there, and a stop of everything. */
static void test_tool_calls(kpa_control *ctl)
{
        const char *sleep_args[] = {"sleep", "30"};
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.extra_args = sleep_args;
        opts.n_extra_args = 2;
        opts.stdout_fd = opts.stderr_fd = -1;
        kpa_token a, b;
        if (!ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err) == 0 &&
                        kpa_process_start(ctl, "org.example.proc", NULL, &opts, &b, &call_err) == 0,
                "tool calls: start two"))
                return;
        kpa_token *tokens = NULL;
        kpa_process_context **ctxs = NULL;
        size_t n = 0;
        is(kpa_process_list_contexts(ctl, &tokens, &ctxs, &n, &call_err), 0, "list with contexts");
        ok(ctxs && ctxs[n] == NULL && (n == 0 || ctxs[0]->struct_size == sizeof(**ctxs)),
           "... an array of pointers to versioned contexts, NULL-terminated");
        size_t seen = 0;
        for (size_t k = 0; k < n; k++)
                if (memcmp(&tokens[k], &a, sizeof(a)) == 0 || memcmp(&tokens[k], &b, sizeof(b)) == 0)
                        seen += ctxs[k]->state == KPA_PROCESS_RUNNING &&
                                ctxs[k]->owner == getuid() &&
                                streq(ctxs[k]->app_id, "org.example.proc");
        is((int)seen, 2, "... both, Running, owned by us, with their package");
        kpa_process_context c;
        kpa_process_context_init(&c);
        is(kpa_process_get_state(ctl, &a, &c, &call_err), 0, "a state");
        is((long long)c.owner, (long long)getuid(), "... carries the owner");
        _cleanup_free_ char *j = kpa_process_context_to_json(&a, &c);
        char tok[KPA_TOKEN_STRING_MAX], want[128];
        kpa_token_to_string(&a, tok);
        snprintf(want, sizeof(want), "{\"token\":\"%s\",\"state\":\"Running\"", tok);
        ok(j && strncmp(j, want, strlen(want)) == 0, "its JSON starts with token and state");
        snprintf(want, sizeof(want), "\"owner\":%d,", (int)getuid());
        has_str(j, want, "... and has the owner");
        int fd = 99;
        if (daemon_pid) { /* kpa-execd keeps the output of what it starts */
                ok(kpa_process_open_log(ctl, &a, false, &fd, &call_err) == 0 && fd >= 0 &&
                           fcntl(fd, F_GETFL) >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY,
                   "its log, open read-only");
                if (fd >= 0)
                        close(fd);
        } else {
                ok(kpa_process_open_log(ctl, &a, false, &fd, &call_err) < 0 && fd == -1,
                   "no log of an instance whose output its starter gave");
        }
        kpa_token unknown;
        memset(&unknown, 0x5a, sizeof(unknown));
        ok(kpa_process_open_log(ctl, &unknown, false, &fd, &call_err) < 0, "nor of an unknown token");
        size_t stopped = 0;
        is(kpa_process_stop_all(ctl, KPA_STOP_FORCED, &stopped, &call_err), 0, "stop all");
        ok(stopped >= 2, "... stopped both (%zu)", stopped);
        is(kpa_process_wait(ctl, &a, 5000, &c, &call_err), 0, "the first ends");
        is(kpa_process_wait(ctl, &b, 5000, &c, &call_err), 0, "the second ends");
        ok(c.state == KPA_PROCESS_FINISHED && c.exit_status == KPA_EXIT_TERMINATED,
           "... Finished, Terminated");
        free(tokens);
        free(ctxs);
}

/* As root: real instances. */
/* kpa_process_find: a token, or APP_ID[/RUNCONFIG] (local, or matched by
 * kpa-execd) */
static void test_find(kpa_control *ctl)
{
        const char *sleep_args[] = {"sleep", "30"};
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.extra_args = sleep_args;
        opts.n_extra_args = 2;
        kpa_token a, b;
        kpa_token *v = NULL;
        size_t n = 99;
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        /* what the tests before left running ends first */
        if (kpa_process_find(ctl, "org.example.proc", &v, &n, &call_err) == 0)
                for (size_t k = 0; k < n; k++) {
                        kpa_process_stop(ctl, &v[k], KPA_STOP_FORCED, &call_err);
                        kpa_process_wait(ctl, &v[k], 5000, &ctx, &call_err);
                }
        free(v);
        if (!ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err) == 0, "find: start one"))
                return;
        ok(kpa_process_find(ctl, "org.example.proc", &v, &n, &call_err) == 0 && n == 1 &&
                   memcmp(&v[0], &a, sizeof(a)) == 0,
           "find APP_ID: the one live instance");
        free(v);
        ok(kpa_process_find(ctl, "org.example.proc/main", &v, &n, &call_err) == 0 && n == 1 &&
                   memcmp(&v[0], &a, sizeof(a)) == 0,
           "find APP_ID/RUNCONFIG: the same");
        free(v);
        ok(kpa_process_find(ctl, "org.example.proc/other", &v, &n, &call_err) == 0 && n == 0,
           "another run configuration: none");
        free(v);
        ok(kpa_process_find(ctl, "org.example.never", &v, &n, &call_err) == 0 && n == 0,
           "a package never started: none");
        free(v);
        is(kpa_process_find(ctl, "org example", &v, &n, &call_err), -EINVAL, "a bad name: -EINVAL");
        has_str(call_err.message, "neither a token", "... and says so");
        is(kpa_process_find(ctl, "org.example.proc/", &v, &n, &call_err), -EINVAL, "an empty run config");
        char ts[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&a, ts);
        ok(kpa_process_find(ctl, ts, &v, &n, &call_err) == 0 && n == 1 && memcmp(&v[0], &a, sizeof(a)) == 0,
           "a token finds itself");
        free(v);
        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &b, &call_err) == 0, "find: start another");
        ok(kpa_process_find(ctl, "org.example.proc", &v, &n, &call_err) == 0 && n == 2 &&
                   memcmp(&v[0], &a, sizeof(a)) == 0 && memcmp(&v[1], &b, sizeof(b)) == 0,
           "both match, the oldest first");
        free(v);
        kpa_process_stop(ctl, &a, KPA_STOP_FORCED, &call_err);
        kpa_process_wait(ctl, &a, 5000, &ctx, &call_err);
        ok(kpa_process_find(ctl, "org.example.proc", &v, &n, &call_err) == 0 && n == 1 &&
                   memcmp(&v[0], &b, sizeof(b)) == 0,
           "an ended one no longer matches while another lives");
        free(v);
        kpa_process_stop(ctl, &b, KPA_STOP_FORCED, &call_err);
        kpa_process_wait(ctl, &b, 5000, &ctx, &call_err);
        ok(kpa_process_find(ctl, "org.example.proc", &v, &n, &call_err) == 0 && n == 1 &&
                   memcmp(&v[0], &b, sizeof(b)) == 0,
           "none live: the one that ended last");
        free(v);
}

static void test_instances(kpa_control *ctl)
{
        const char *sleep_args[] = {"sleep", "30"};
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.extra_args = sleep_args;
        opts.n_extra_args = 2;
        kpa_token a, b, c;
        if (!ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err) == 0,
                "start an instance")) {
                printf("#   %s\n", call_err.message);
                return;
        }
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        is(kpa_process_wait(ctl, &a, 50, &ctx, &call_err), -ETIMEDOUT, "a wait times out");
        is(ctx.state, KPA_PROCESS_RUNNING, "... on a Running instance");
        is(kpa_process_stop(ctl, &a, KPA_STOP_FORCED, &call_err), 0, "Forced stop");
        is(kpa_process_wait(ctl, &a, 5000, &ctx, &call_err), 0, "wait for its end");
        is(ctx.state, KPA_PROCESS_FINISHED, "... Finished");
        is(ctx.exit_status, KPA_EXIT_TERMINATED, "... Terminated");
        is(kpa_process_stop(ctl, &a, KPA_STOP_FORCED, &call_err), 0, "a stop of what has ended is no error");

        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &b, &call_err) == 0, "start a parent");
        opts.parent = &b;
        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &c, &call_err) == 0, "and a child of it");
        opts.parent = NULL;
        is(kpa_process_stop(ctl, &b, KPA_STOP_NORMAL, &call_err), 0, "a Normal stop of the parent");
        is(kpa_process_stop(ctl, &b, KPA_STOP_NORMAL, &call_err), 0, "asked twice");
        is(kpa_process_wait(ctl, &c, 5000, &ctx, &call_err), 0, "the child ends");
        is(kpa_process_wait(ctl, &b, 5000, &ctx, &call_err), 0, "then the parent");
        is(ctx.exit_status, KPA_EXIT_NORMAL, "... Normal (sleep dies of the SIGTERM asked for)");

        const char *true_args[] = {"true"};
        opts.extra_args = true_args;
        opts.n_extra_args = 1;
        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err) == 0, "start true");
        is(kpa_process_wait(ctl, &a, 5000, &ctx, &call_err), 0, "it ends by itself");
        ok(ctx.state == KPA_PROCESS_FINISHED && ctx.exit_status == KPA_EXIT_NORMAL &&
                   ctx.exit_code == 0,
           "... Finished, Normal, 0");
        /* the application killed by a signal without a name */
        opts.extra_args = sleep_args;
        opts.n_extra_args = 2;
        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err) == 0, "start sleep");
        is(kpa_process_get_state(ctl, &a, &ctx, &call_err), 0, "its state");
        _cleanup_free_ char *children =
                kpa_xasprintf("/proc/%d/task/%d/children", (int)ctx.pid, (int)ctx.pid);
        _cleanup_free_ char *list = NULL;
        pid_t app = 0;
        for (int tries = 0; tries < 100 && !app; tries++) {
                free(list);
                list = NULL;
                if (kpa_read_file_at(AT_FDCWD, children, 4096, &list, NULL) < 0)
                        break;
                app = (pid_t)atoi(list);
                if (!app)
                        usleep(10000);
        }
        ok(app > 0 && kill(app, SIGRTMIN + 3) == 0, "kill the application with SIGRTMIN+3");
        is(kpa_process_wait(ctl, &a, 5000, &ctx, &call_err), 0, "wait for its end");
        ok(ctx.state == KPA_PROCESS_FAILED && ctx.exit_code == SIGRTMIN + 3,
           "... Failed, with the signal number");
        has_str(ctx.message, "killed by signal", "... named by its number");

        /* the init killed from outside: Failed, Unexpected */
        opts.extra_args = sleep_args;
        opts.n_extra_args = 2;
        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err) == 0, "start sleep");
        is(kpa_process_get_state(ctl, &a, &ctx, &call_err), 0, "its state");
        ok(ctx.pid > 0 && kill(ctx.pid, SIGKILL) == 0, "kill its init");
        is(kpa_process_wait(ctl, &a, 5000, &ctx, &call_err), 0, "wait for its end");
        ok(ctx.state == KPA_PROCESS_FAILED && ctx.exit_status == KPA_EXIT_UNEXPECTED,
           "... Failed, Unexpected");
        has_str(ctx.message, "ended unexpectedly: killed by SIGKILL", "... and says so");
        opts.extra_args = true_args;
        opts.n_extra_args = 1;

        if (!daemon_pid) { /* the daemon's instances live below its own cgroup */
                opts.cgroup_parent = "../elsewhere";
                is(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err), -EINVAL,
                   "a cgroup parent with \"..\" is refused");
                has_str(call_err.message, "is not valid", "... and named");
                opts.cgroup_parent = NULL;
        }

        /* without a recorded uid, a start as root fails (it never falls back
         * to some other uid); rootless, the caller's uid is the only one */
        _cleanup_free_ char *rec = kpa_xasprintf("%s/store/users/org.example.proc", tmp);
        _cleanup_free_ char *kept = kpa_xasprintf("%s.kept", rec);
        rename(rec, kept);
        int r = kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err);
        if (geteuid() == 0) {
                ok(r < 0, "as root, a package without a uid record does not start");
                has_str(call_err.message, "no uid recorded", "... and says why");
        } else {
                ok(r == 0, "rootless, a package without a uid record starts");
                is(kpa_process_wait(ctl, &a, 5000, &ctx, &call_err), 0, "... and ends");
                is(ctx.exit_code, 0, "... well");
        }
        rename(kept, rec);

        opts.extra_args = sleep_args;
        opts.n_extra_args = 2;
        ok(kpa_process_start(ctl, "org.example.proc", NULL, &opts, &a, &call_err) == 0,
           "one more left running for kpa_control_close()");
}

/* Start the kpa-execd at EXECD over ROOT and connect to it. */
static int connect_daemon(const char *execd, const char *root, kpa_control **ctl)
{
        _cleanup_free_ char *sock = kpa_xasprintf("%s/execd.sock", tmp);
        _cleanup_free_ char *state = kpa_xasprintf("%s/state", tmp);
        daemon_pid = fork();
        if (daemon_pid == 0) {
                execl(execd, execd, "--foreground", "--on-exit", "stop", "--no-autorun",
                      "--log-level", "warning", "--socket", sock, "--root", root, "--state-dir",
                      state, (char *)NULL);
                _exit(127);
        }
        kpa_error err;
        for (int tries = 0; tries < 500; tries++) {
                if (kpa_control_connect(sock, ctl, &err) == 0)
                        return 0;
                usleep(10000);
        }
        printf("# %s\n", err.message);
        return -1;
}

static void stop_daemon(void)
{
        if (daemon_pid <= 0)
                return;
        kill(daemon_pid, SIGTERM);
        int status = 0;
        waitpid(daemon_pid, &status, 0);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "kpa-execd stopped what still ran and exited 0 on SIGTERM");
}

/* kpa keeps kpa.slice/APP below its own cgroup for the next start: the
 * test removes the one of its package (empty by now) in every hierarchy. */
static void remove_kept_group(const char *app)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[4096];
        while (f && fgets(line, sizeof(line), f)) {
                char *ctrl = strchr(line, ':'), *path = ctrl ? strchr(ctrl + 1, ':') : NULL;
                if (!path)
                        continue;
                *path++ = '\0';
                path[strcspn(path, "\n")] = '\0';
                ctrl++;
                const char *mnt = NULL;
                if (streq(ctrl, "pids") || streq(ctrl, "memory"))
                        mnt = streq(ctrl, "pids") ? "/sys/fs/cgroup/pids" : "/sys/fs/cgroup/memory";
                else if (streq(ctrl, "cpu,cpuacct") || streq(ctrl, "cpu"))
                        mnt = "/sys/fs/cgroup/cpu";
                else if (!*ctrl)
                        mnt = access("/sys/fs/cgroup/unified", F_OK) == 0 ? "/sys/fs/cgroup/unified"
                                                                        : "/sys/fs/cgroup";
                if (!mnt)
                        continue;
                char dir[PATH_MAX];
                snprintf(dir, sizeof(dir), "%s%s/kpa.slice/%s", mnt, streq(path, "/") ? "" : path,
                         app);
                (void)rmdir(dir);
        }
        if (f)
                fclose(f);
}

int main(void)
{
        test_tokens();
        if (!mkdtemp(tmp)) {
                printf("# mkdtemp: %s\n", strerror(errno));
                return tap_done();
        }
        kpa_error err;
        kpa_control *ctl = NULL;
        _cleanup_free_ char *missing = kpa_xasprintf("%s/none", tmp);
        ok(kpa_control_open_local(missing, &ctl, &err) < 0, "a control over a missing store fails");
        _cleanup_free_ char *root = kpa_xasprintf("%s/store", tmp);
        kpa_store *s = NULL;
        if (kpa_store_open(root, KPA_STORE_CREATE, &s, &err) < 0 ||
            install(s, "org.example.proc", true) < 0 || install(s, "org.example.norc", false) < 0)
                abort();
        kpa_store_close(s);
        const char *execd = getenv("KPA_TEST_EXECD");
        if (execd && geteuid() != 0) {
                ok(1, "# SKIP kpa-execd needs root");
                kpa_rm_rf_at(AT_FDCWD, tmp);
                return tap_done();
        }
        if (execd) {
                if (!ok(connect_daemon(execd, root, &ctl) == 0, "a connection to kpa-execd")) {
                        stop_daemon();
                        kpa_rm_rf_at(AT_FDCWD, tmp);
                        return tap_done();
                }
        } else if (!ok(kpa_control_open_local(root, &ctl, &err) == 0, "a control over the store")) {
                return tap_done();
        }
        test_refusals(ctl);
        if (!daemon_pid)
                test_task_refusals(ctl);
        /* valgrind (make check-valgrind) knows neither clone3 nor seccomp */
        const char *preload = getenv("LD_PRELOAD");
        if (preload && strstr(preload, "vgpreload"))
                ok(1, "# SKIP no instances under valgrind");
        else if (geteuid() == 0) {
                test_instances(ctl);
                test_find(ctl);
                test_tool_calls(ctl);
                if (!daemon_pid) {
                        test_task_run(ctl);
                        test_stop_while_created(ctl);
                }
        }
        else
                ok(1, "# SKIP starting instances needs root");
        kpa_control_close(ctl);
        kpa_control_close(NULL);
        stop_daemon();
        remove_kept_group("org.example.proc");
        kpa_rm_rf_at(AT_FDCWD, tmp);
        return tap_done();
}
