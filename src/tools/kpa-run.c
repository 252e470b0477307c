/* kpa-run: start one run configuration of an installed application in its
 * sandbox and stay with it until it ends ("direct mode"). kpa-run is the
 * instance's parent: it passes its own stdin, stdout and stderr through,
 * turns SIGINT/SIGTERM/SIGHUP into stop requests, and exits with the
 * application's exit code. Parsing, printing and a small poll loop only;
 * starting, confining and stopping are libkpa's (kpa/process.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

#include <json-c/json.h>

#include "cli.h"
#include "kpa/handle.h"
#include "kpa/package.h"
#include "kpa/process.h"
#include "sandbox.h"
#include "util.h"

#define CPU_WEIGHT_MIN 1
#define CPU_WEIGHT_MAX 10000

typedef struct handle_arg {
        char *name;
        char *spec;
} handle_arg;

static struct {
        const char *root;
        const char *app_id;
        const char *run_config_id; /* NULL: the primary one */
        handle_arg *handles;
        size_t n_handles;
        const char **env;
        size_t n_env;
        const char *const *extra_args;
        size_t n_extra_args;
        kpa_start_options opts;
        bool json, quiet;
} arg;

static void usage(void)
{
        printf("Usage: %1$s [OPTIONS] APP_ID [RUN_CONFIG_ID] [-- ARGS...]\n"
               "\n"
               "Start an installed application in its sandbox and wait until it ends.\n"
               "RUN_CONFIG_ID defaults to the package's primary run configuration; ARGS are\n"
               "appended to the run configuration's own arguments. The application shares\n"
               "the standard input, output and error of %1$s.\n"
               "\n"
               "Options:\n"
               "  -r, --root DIR            use the store in DIR (default: $KPA_ROOT, else\n"
               "                            %2$s)\n"
               "      --handle NAME=SPEC    pass a handle called NAME (repeatable; fds 3, 4, ...\n"
               "                            in order). SPEC: fd:N, file:PATH, file+rw:PATH,\n"
               "                            file+a:PATH, listen:tcp:HOST:PORT, listen:unix:PATH,\n"
               "                            connect:tcp:HOST:PORT, connect:unix:PATH\n"
               "      --env NAME=VALUE      set an environment variable (repeatable; wins over\n"
               "                            the manifest's envVariables)\n"
               "      --memory SIZE         memory limit (K/M/G suffixes)\n"
               "      --pids N              limit on the number of processes and threads\n"
               "      --cpu-weight N        CPU weight, %3$d-%4$d (the kernel's default is 100)\n"
               "      --network none|host   no network (an empty namespace) or the host's\n"
               "      --user UID[:GID]      run as this user and group instead of the\n"
               "                            package's own\n"
               "      --stop-timeout SECS   grace period between SIGTERM and SIGKILL when the\n"
               "                            application is stopped (default 10; fractions\n"
               "                            allowed)\n"
               "      --cgroup-parent PATH  create kpa.slice below the cgroup PATH instead of\n"
               "                            below %1$s's own cgroup\n"
               "      --json                when the application ends, print its final state as\n"
               "                            one JSON line on standard error\n"
               "  -q, --quiet               print errors only\n"
               "  -h, --help                show this help\n"
               "      --version             show the version\n"
               "\n"
               "SIGINT, SIGTERM or SIGHUP stop the application (SIGTERM, then SIGKILL after\n"
               "the grace period); a second one kills it at once.\n"
               "\n"
               "Exit status: the application's exit code; 128+N when signal N ended it or it\n"
               "was stopped; 1 when it could not be started; 2 usage error. See kpa-run(8).\n",
               cli_program(), kpa_store_default_root(NULL), CPU_WEIGHT_MIN, CPU_WEIGHT_MAX);
}

enum {
        OPT_HANDLE = 0x100,
        OPT_ENV,
        OPT_MEMORY,
        OPT_PIDS,
        OPT_CPU_WEIGHT,
        OPT_NETWORK,
        OPT_USER,
        OPT_STOP_TIMEOUT,
        OPT_CGROUP_PARENT,
        OPT_JSON,
        OPT_VERSION,
};

static int parse_u64(const char *s, uint64_t *out)
{
        char *end;
        errno = 0;
        if (!s || !*s || *s < '0' || *s > '9')
                return -EINVAL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *out = v;
        return 0;
}

/* Seconds with up to three decimals ("2", "0.5", "1.25") into milliseconds. */
static int parse_seconds_ms(const char *s, unsigned *out_ms)
{
        uint64_t ms = 0;
        const char *p = s;
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                ms = ms * 10 + (uint64_t)(*p - '0');
                if (ms > UINT_MAX / 1000)
                        return -ERANGE;
        }
        ms *= 1000;
        if (*p == '.') {
                unsigned scale = 100;
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
                        ms += scale * (unsigned)(*p - '0'); /* digits past 1 ms add 0 */
        }
        if (*p)
                return -EINVAL;
        if (ms > UINT_MAX)
                return -ERANGE;
        *out_ms = (unsigned)ms;
        return 0;
}

static int parse_id(const char *s, bool group, uint32_t *out)
{
        uint64_t v;
        if (parse_u64(s, &v) == 0) {
                /* (uid_t)-1 means "no change" to the kernel and "default" to libkpa */
                if (v >= UINT32_MAX)
                        return -ERANGE;
                *out = (uint32_t)v;
                return 0;
        }
        errno = 0;
        if (group) {
                struct group *gr = getgrnam(s);
                if (!gr)
                        return errno > 0 ? -errno : -ENOENT;
                *out = gr->gr_gid;
        } else {
                struct passwd *pw = getpwnam(s);
                if (!pw)
                        return errno > 0 ? -errno : -ENOENT;
                *out = pw->pw_uid;
        }
        return 0;
}

/* UID[:GID], each a number or a name. Without GID: the user's primary
 * group when the host knows the user, else the group with the same number. */
static int parse_user(const char *s)
{
        const char *colon = strchr(s, ':');
        _cleanup_free_ char *user = kpa_xstrndup(s, colon ? (size_t)(colon - s) : strlen(s));
        uint32_t uid = 0, gid = 0; /* set on every path that uses them */
        if (!*user || parse_id(user, false, &uid) < 0)
                return cli_usage_error("--user: \"%s\" is not a user id or a known user name",
                                       user);
        if (colon) {
                if (!colon[1] || parse_id(colon + 1, true, &gid) < 0)
                        return cli_usage_error(
                                "--user: \"%s\" is not a group id or a known group name",
                                colon + 1);
        } else {
                struct passwd *pw = getpwuid(uid);
                gid = pw ? pw->pw_gid : uid;
        }
        arg.opts.uid = uid;
        arg.opts.gid = gid;
        return 0;
}

static int add_handle(const char *optarg_)
{
        kpa_error err;
        handle_arg h;
        if (kpa_handle_parse_arg(optarg_, &h.name, &h.spec, &err) < 0)
                return cli_usage_error("--handle: %s", err.message);
        arg.handles = kpa_xrealloc(arg.handles, (arg.n_handles + 1) * sizeof(*arg.handles));
        arg.handles[arg.n_handles++] = h;
        return 0;
}

static int add_env(const char *optarg_)
{
        const char *eq = strchr(optarg_, '=');
        if (!eq || eq == optarg_)
                return cli_usage_error("--env: expected NAME=VALUE, got \"%s\"", optarg_);
        arg.env = kpa_xrealloc(arg.env, (arg.n_env + 1) * sizeof(*arg.env));
        arg.env[arg.n_env++] = optarg_;
        return 0;
}

static int parse_limit(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
        uint64_t v;
        if (parse_u64(s, &v) < 0 || v < min || v > max)
                return cli_usage_error("%s: \"%s\" is not a number from %llu to %llu", name, s,
                                       (unsigned long long)min, (unsigned long long)max);
        *out = v;
        return 0;
}

static int parse_option(int c, const char *optarg_)
{
        kpa_start_options *o = &arg.opts;
        switch (c) {
        case 'r': arg.root = optarg_; return 0;
        case OPT_HANDLE: return add_handle(optarg_);
        case OPT_ENV: return add_env(optarg_);
        case OPT_MEMORY:
                /* 0 would mean "the manifest's limit" to libkpa: refuse it */
                if (cli_parse_size(optarg_, &o->memory_bytes) < 0 || o->memory_bytes == 0)
                        return cli_usage_error("--memory: \"%s\" is not a size above 0 (e.g. 512M)",
                                               optarg_);
                return 0;
        case OPT_PIDS: return parse_limit("--pids", optarg_, 1, UINT32_MAX, &o->pids);
        case OPT_CPU_WEIGHT:
                return parse_limit("--cpu-weight", optarg_, CPU_WEIGHT_MIN, CPU_WEIGHT_MAX,
                                   &o->cpu_weight);
        case OPT_NETWORK:
                if (streq(optarg_, "none"))
                        o->network = KPA_START_NETWORK_NONE;
                else if (streq(optarg_, "host"))
                        o->network = KPA_START_NETWORK_HOST;
                else
                        return cli_usage_error("--network: \"%s\" is neither none nor host",
                                               optarg_);
                return 0;
        case OPT_USER: return parse_user(optarg_);
        case OPT_STOP_TIMEOUT:
                if (parse_seconds_ms(optarg_, &o->stop_timeout_ms) < 0)
                        return cli_usage_error("--stop-timeout: \"%s\" is not a number of seconds "
                                               "(e.g. 10 or 0.5)",
                                               optarg_);
                /* libkpa reads 0 as "the default" (10 s); 0 here means no grace */
                if (o->stop_timeout_ms == 0)
                        o->stop_timeout_ms = 1;
                return 0;
        case OPT_CGROUP_PARENT:
                if (!*optarg_)
                        return cli_usage_error("--cgroup-parent: empty path");
                o->cgroup_parent = optarg_;
                return 0;
        case OPT_JSON: arg.json = true; return 0;
        case 'q': arg.quiet = true; return 0;
        case 'h': usage(); exit(EXIT_SUCCESS);
        case OPT_VERSION: printf("%s %s\n", cli_program(), PACKAGE_VERSION); exit(EXIT_SUCCESS);
        default: return cli_usage_error("unknown option");
        }
}

/* What follows the options: APP_ID [RUN_CONFIG_ID] [-- ARGS...]. */
static int parse_operands(int argc, char **argv)
{
        int i = optind;
        if (i >= argc)
                return cli_usage_error("no application id given");
        arg.app_id = argv[i++];
        if (!*arg.app_id)
                return cli_usage_error("empty application id");
        if (i < argc && !streq(argv[i], "--")) {
                arg.run_config_id = argv[i++];
                if (!*arg.run_config_id)
                        return cli_usage_error("empty run configuration id");
        }
        if (i < argc) {
                if (!streq(argv[i], "--"))
                        return cli_usage_error("unexpected argument \"%s\": options go before "
                                               "APP_ID, arguments for the application after --",
                                               argv[i]);
                i++;
                arg.extra_args = (const char *const *)&argv[i];
                arg.n_extra_args = (size_t)(argc - i);
        }
        return 0;
}

static int parse_args(int argc, char **argv)
{
        static const struct option options[] = {
                {"root", required_argument, NULL, 'r'},
                {"handle", required_argument, NULL, OPT_HANDLE},
                {"env", required_argument, NULL, OPT_ENV},
                {"memory", required_argument, NULL, OPT_MEMORY},
                {"pids", required_argument, NULL, OPT_PIDS},
                {"cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT},
                {"network", required_argument, NULL, OPT_NETWORK},
                {"user", required_argument, NULL, OPT_USER},
                {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
                {"cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT},
                {"json", no_argument, NULL, OPT_JSON},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {0},
        };
        kpa_start_options_init(&arg.opts);
        /* '+': options end at APP_ID, so the application's own options
         * (after --) are never taken for ours */
        int r = cli_parse_options(argc, argv, "+r:qh", options, parse_option);
        if (r)
                return r;
        return parse_operands(argc, argv);
}

static void free_args(void)
{
        for (size_t i = 0; i < arg.n_handles; i++) {
                free(arg.handles[i].name);
                free(arg.handles[i].spec);
        }
        free(arg.handles);
        free(arg.env);
}

/* ---- handles ---- */

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

/* Open every --handle in order. 0, 1 (cannot open) or 2 (malformed spec). */
static int open_handles(kpa_user_handle *out, int *fds)
{
        for (size_t i = 0; i < arg.n_handles; i++) {
                kpa_error err;
                int fd = kpa_handle_open_spec(arg.handles[i].spec, &err);
                if (fd < 0) {
                        close_fds(fds, i);
                        if (fd == -EINVAL)
                                return cli_usage_error("--handle %s: %s", arg.handles[i].name,
                                                       err.message);
                        cli_error("--handle %s: %s", arg.handles[i].name, err.message);
                        return EXIT_FAILURE;
                }
                fds[i] = fd;
                out[i].name = arg.handles[i].name;
                out[i].fd = fd;
        }
        return 0;
}

/* ---- the end ---- */

static bool has_ended(kpa_process_state s)
{
        return s == KPA_PROCESS_FINISHED || s == KPA_PROCESS_FAILED ||
               s == KPA_PROCESS_NOT_EXISTING;
}

static void print_json(const kpa_token *token, const kpa_process_context *ctx)
{
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(token, tok);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "token", json_object_new_string(tok));
        json_object_object_add(o, "app", json_object_new_string(ctx->app_id));
        json_object_object_add(o, "runConfiguration", json_object_new_string(ctx->run_config_id));
        json_object_object_add(o, "state",
                               json_object_new_string(kpa_process_state_name(ctx->state)));
        json_object_object_add(o, "exitStatus",
                               json_object_new_string(kpa_exit_status_name(ctx->exit_status)));
        json_object_object_add(o, "exitCode", json_object_new_int(ctx->exit_code));
        json_object_object_add(o, "exitReason", json_object_new_int(ctx->exit_reason));
        json_object_object_add(o, "message", json_object_new_string(ctx->message));
        json_object_object_add(o, "cleanupError", json_object_new_int(ctx->cleanup_error));
        fprintf(stderr, "%s\n",
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
}

/* The exit status of kpa-run for an instance that has ended, in the
 * shell's convention, 128+N for an end by signal N:
 *   Finished/Normal      the application's exit code; when it died of the
 *                        SIGTERM of our Normal stop, libkpa reports the
 *                        signal number (15) as its code, shown as 128+15
 *   Finished/Terminated  killed by a Forced stop or an escalated Normal
 *                        stop: 128+N for the signal N libkpa reports
 *                        (SIGKILL, so 137), 128+SIGTERM if it reports none
 *   Failed/Unexpected    128+N for signal N
 *   anything else        1 */
static int exit_status_of(const kpa_process_context *ctx, bool stop_requested)
{
        bool is_signal = ctx->exit_code > 0 && ctx->exit_code < 128;
        if (ctx->state == KPA_PROCESS_FINISHED && ctx->exit_status == KPA_EXIT_NORMAL) {
                if (stop_requested && ctx->exit_code == SIGTERM)
                        return 128 + SIGTERM;
                return ctx->exit_code & 0xff;
        }
        if (ctx->state == KPA_PROCESS_FINISHED && ctx->exit_status == KPA_EXIT_TERMINATED)
                return 128 + (is_signal ? ctx->exit_code : SIGTERM);
        if (ctx->state == KPA_PROCESS_FAILED && ctx->exit_status == KPA_EXIT_UNEXPECTED &&
            is_signal)
                return 128 + ctx->exit_code;
        return EXIT_FAILURE;
}

static void report_end(const kpa_process_context *ctx)
{
        if (ctx->state == KPA_PROCESS_NOT_EXISTING) {
                cli_error("%s: the instance vanished before its end was known", arg.app_id);
                return;
        }
        if (arg.quiet)
                return;
        if (ctx->state == KPA_PROCESS_FAILED) {
                if (ctx->message[0])
                        cli_error("%s: %s", ctx->app_id, ctx->message);
                else if (ctx->exit_status == KPA_EXIT_UNEXPECTED)
                        cli_error("%s: killed by signal %d", ctx->app_id, ctx->exit_code);
                else
                        cli_error("%s: failed", ctx->app_id);
        } else if (ctx->exit_status == KPA_EXIT_TERMINATED) {
                cli_error("%s: %s", ctx->app_id,
                          ctx->message[0] ? ctx->message : "stopped by force");
        }
}

/* ---- the poll loop ---- */

static int block_stop_signals(sigset_t *mask)
{
        sigemptyset(mask);
        sigaddset(mask, SIGINT);
        sigaddset(mask, SIGTERM);
        sigaddset(mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
                return -errno;
        int fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

/* A stop signal arrived: the first asks for a Normal stop, later ones for a
 * Forced one. */
static void on_stop_signal(kpa_control *ctl, const kpa_token *token, int signo, unsigned *count)
{
        kpa_stop_policy policy = ++*count == 1 ? KPA_STOP_NORMAL : KPA_STOP_FORCED;
        if (!arg.quiet) {
                const char *sig = signo == SIGINT   ? "SIGINT"
                                  : signo == SIGHUP ? "SIGHUP"
                                                    : "SIGTERM";
                if (policy == KPA_STOP_NORMAL)
                        cli_error("%s received: stopping %s (send it again to kill it at once)",
                                  sig, arg.app_id);
                else
                        cli_error("%s received again: killing %s", sig, arg.app_id);
        }
        if (kpa_process_stop(ctl, token, policy) < 0) {
                kpa_error saved = *kpa_control_last_error(ctl);
                kpa_process_context ctx;
                /* losing the race against the application's own end is fine */
                if (kpa_process_get_state(ctl, token, &ctx) == 0 && has_ended(ctx.state))
                        return;
                cli_report(&saved);
        }
}

static int drain_signals(int sfd, kpa_control *ctl, const kpa_token *token, unsigned *count)
{
        struct signalfd_siginfo si;
        ssize_t n;
        while ((n = read(sfd, &si, sizeof(si))) == (ssize_t)sizeof(si))
                on_stop_signal(ctl, token, (int)si.ssi_signo, count);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
                return -errno;
        return 0;
}

/* Wait until the instance has ended, serving stop signals meanwhile. */
static int wait_for_end(kpa_control *ctl, const kpa_token *token, int sfd, kpa_process_context *ctx,
                        unsigned *stops)
{
        int cfd = kpa_control_get_fd(ctl);
        if (cfd < 0)
                return cfd;
        for (;;) {
                int r = kpa_process_get_state(ctl, token, ctx);
                if (r < 0)
                        return r;
                if (has_ended(ctx->state))
                        return 0;
                struct pollfd pfd[2] = {
                        {.fd = sfd, .events = POLLIN},
                        {.fd = cfd, .events = POLLIN},
                };
                if (poll(pfd, ELEMENTSOF(pfd), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (pfd[0].revents) {
                        r = drain_signals(sfd, ctl, token, stops);
                        if (r < 0)
                                return r;
                }
                if (pfd[1].revents) {
                        r = kpa_control_dispatch(ctl);
                        if (r < 0)
                                return r;
                }
        }
}

/* ---- start ---- */

/* Our own stdio goes through; a closed one becomes /dev/null. */
static int stdio_fd(int fd)
{
        return fcntl(fd, F_GETFD) < 0 ? -1 : fd;
}

static int report_failed_start(kpa_control *ctl, const kpa_token *token)
{
        kpa_error err = *kpa_control_last_error(ctl);
        kpa_process_context ctx;
        bool have_ctx = !kpa_token_is_null(token) && kpa_process_get_state(ctl, token, &ctx) == 0;
        if (err.message[0])
                cli_report(&err);
        else if (have_ctx && ctx.message[0])
                cli_error("%s: %s%s%s", arg.app_id, ctx.message, ctx.exit_reason ? ": " : "",
                          ctx.exit_reason ? strerror(ctx.exit_reason) : "");
        else
                cli_error("%s: start failed: %s", arg.app_id, strerror(err.code ? err.code : EIO));
        if (arg.json && have_ctx)
                print_json(token, &ctx);
        return EXIT_FAILURE;
}

static int run(void)
{
        kpa_user_handle *handles = kpa_xcalloc(arg.n_handles ? arg.n_handles : 1, sizeof(*handles));
        int *fds = kpa_xcalloc(arg.n_handles ? arg.n_handles : 1, sizeof(*fds));
        int r = open_handles(handles, fds);
        if (r) {
                free(handles);
                free(fds);
                return r;
        }

        kpa_start_options *o = &arg.opts;
        o->handles = handles;
        o->n_handles = arg.n_handles;
        o->extra_args = arg.extra_args;
        o->n_extra_args = arg.n_extra_args;
        o->extra_env = arg.env;
        o->n_extra_env = arg.n_env;
        o->stdin_fd = stdio_fd(STDIN_FILENO);
        o->stdout_fd = stdio_fd(STDOUT_FILENO);
        o->stderr_fd = stdio_fd(STDERR_FILENO);

        /* blocked before the start, so that a Ctrl-C during it is not lost */
        sigset_t mask;
        _cleanup_close_ int sfd = block_stop_signals(&mask);
        if (sfd < 0) {
                close_fds(fds, arg.n_handles);
                free(handles);
                free(fds);
                cli_error("signalfd: %s", strerror(-sfd));
                return EXIT_FAILURE;
        }

        kpa_error err;
        _cleanup_(kpa_control_closep) kpa_control *ctl = NULL;
        kpa_token token = {{0}};
        kpa_trace("kpa-run: start");
        if (kpa_control_open_local(arg.root, &ctl, &err) < 0) {
                cli_report(&err);
                r = EXIT_FAILURE;
        } else if (kpa_process_start(ctl, arg.app_id, arg.run_config_id, o, &token) < 0) {
                r = report_failed_start(ctl, &token);
        } else {
                r = -1;
        }
        /* kpa_process_start keeps duplicates of what it needs */
        close_fds(fds, arg.n_handles);
        free(handles);
        free(fds);
        o->handles = NULL;
        if (r >= 0)
                return r;

        kpa_process_context ctx;
        unsigned stops = 0;
        kpa_trace("kpa-run: running");
        r = wait_for_end(ctl, &token, sfd, &ctx, &stops);
        kpa_trace("kpa-run: ended");
        if (r < 0) {
                const kpa_error *e = kpa_control_last_error(ctl);
                if (e->message[0])
                        cli_report(e);
                else
                        cli_error("%s: waiting for the application: %s", arg.app_id, strerror(-r));
                return EXIT_FAILURE;
        }
        report_end(&ctx);
        if (ctx.cleanup_error)
                cli_error("warning: %s: the instance's cgroup could not be removed (%s); the next "
                          "start of %s removes it", arg.app_id, strerror(ctx.cleanup_error),
                          arg.app_id);
        if (arg.json)
                print_json(&token, &ctx);
        return exit_status_of(&ctx, stops > 0);
}

int main(int argc, char **argv)
{
        kpa_trace("kpa-run: main");
        cli_init(argv[0]);
        int r = parse_args(argc, argv);
        if (r == 0)
                r = run();
        free_args();
        fflush(stdout);
        kpa_trace("kpa-run: exit");
        return r;
}
