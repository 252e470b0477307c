/* run-control.c: kpa-run's calls to kpa-execd about the instances it
 * keeps: --status, --stop, --stop-all, --wait, --list, --logs, and the
 * names (APP_ID[/RUNCONFIG]) they take, which the daemon resolves. */
#include "config.h"

#include "run.h"

/* How often --logs --follow looks for more output. */
#define FOLLOW_INTERVAL_MS 250

/* ---- through kpa-execd ---- */

int connect_daemon(kpa_control **ctl)
{
        kpa_error err;
        if (kpa_control_connect(arg.socket, ctl, &err) < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        return 0;
}

/* A failure (R, E) of a call about the instance of arg.token. */
static int report_daemon_error(const kpa_error *e, int r)
{
        cli_error("%s: %s", arg.token_arg, e->message[0] ? e->message : strerror(-r));
        return EXIT_FAILURE;
}

static int report_not_existing(void)
{
        cli_error("%s: %s", arg.token_arg, KPA_NO_SUCH_INSTANCE);
        return EXIT_FAILURE;
}

/* How an instance ended, in a few words ("-" while it runs). */
static void exit_text(const kpa_process_context *c, char *buf, size_t len)
{
        if (!has_ended(c->state) || c->state == KPA_PROCESS_NOT_EXISTING)
                snprintf(buf, len, "-");
        else if (c->exit_status == KPA_EXIT_UNEXPECTED)
                snprintf(buf, len, "signal %d", c->exit_code);
        else if (c->exit_status == KPA_EXIT_TERMINATED)
                snprintf(buf, len, "stopped");
        else if (c->exit_status == KPA_EXIT_NORMAL)
                snprintf(buf, len, "%d", c->exit_code);
        else
                snprintf(buf, len, "start failed");
}

/* T, a Unix time, as local time with how long ago. */
static void print_time(const char *label, int64_t t)
{
        char when[64] = "?";
        time_t tt = (time_t)t;
        struct tm tm;
        if (localtime_r(&tt, &tm))
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
        int64_t ago = (int64_t)time(NULL) - t;
        printf("%-14s%s (%lld s ago)\n", label, when, (long long)(ago > 0 ? ago : 0));
}

/* When it started, its restarts, and how its latest failure ended. */
static void print_history(const kpa_process_context *c)
{
        if (c->exit_cause[0] && has_ended(c->state))
                printf("exit cause:   %s\n", c->exit_cause);
        if (c->started_at)
                print_time("started:", c->started_at);
        printf("restarts:     %u\n", c->restarts);
        if (c->restart_in_ms)
                printf("restart:      in %.3g s\n", c->restart_in_ms / 1000.0);
        if (c->last_failure.state == KPA_PROCESS_NONE)
                return;
        printf("last failure: %s, %s, exit code %d, exit reason %d, cause %s\n",
               kpa_process_state_name(c->last_failure.state),
               kpa_exit_status_name(c->last_failure.exit_status), c->last_failure.exit_code,
               c->last_failure.exit_reason,
               c->last_failure.exit_cause[0] ? c->last_failure.exit_cause : "-");
        if (c->last_failure.message[0])
                printf("              %s\n", c->last_failure.message);
        print_time("failed:", c->last_failure.at);
}

static void print_status(const kpa_process_context *c)
{
        printf("token:        %s\n", arg.token_str);
        printf("state:        %s\n", kpa_process_state_name(c->state));
        printf("package:      %s\n", c->app_id);
        printf("run config:   %s\n", c->run_config_id);
        if (c->pid > 0)
                printf("pid:          %d\n", (int)c->pid);
        if (c->app_pid > 0)
                printf("app pid:      %d\n", (int)c->app_pid);
        if (c->owner != (uid_t)-1)
                printf("owner:        %lld\n", (long long)c->owner);
        if (has_ended(c->state)) {
                printf("exit status:  %s\n", kpa_exit_status_name(c->exit_status));
                printf("exit code:    %d\n", c->exit_code);
                if (c->exit_reason)
                        printf("exit reason:  %d (%s)\n", c->exit_reason, strerror(c->exit_reason));
                else
                        printf("exit reason:  0\n");
        }
        if (c->message[0])
                printf("message:      %s\n", c->message);
        print_history(c);
        if (c->cleanup_error)
                printf("cleanup:      the cgroup could not be removed: %s\n",
                       strerror(c->cleanup_error));
}

static int status_one(kpa_control *ctl);
static bool status_in_array; /* --status --json of several: one array */

/* --status NAME that matches N instances: each, text blocks apart, or a
 * JSON array. */
static int status_many(kpa_control *ctl, const kpa_token *v, size_t n)
{
        if (arg.json)
                printf("[");
        status_in_array = arg.json;
        int r = EXIT_SUCCESS;
        for (size_t k = 0; k < n && r == EXIT_SUCCESS; k++) {
                arg.token = v[k];
                kpa_token_to_string(&v[k], arg.token_str);
                if (k > 0)
                        printf(arg.json ? "," : "\n");
                fflush(stdout);
                r = status_one(ctl);
        }
        if (arg.json)
                printf("]\n");
        return r;
}

static int status(kpa_control *ctl, const kpa_token *v, size_t n)
{
        if (n > 1)
                return status_many(ctl, v, n);
        return status_one(ctl);
}

static int status_one(kpa_control *ctl)
{
        kpa_process_context c;
        kpa_process_context_init(&c);
        kpa_error err;
        int r = kpa_process_get_state(ctl, &arg.token, &c, &err);
        if (r < 0)
                return report_daemon_error(&err, r);
        if (arg.json) {
                _cleanup_free_ char *j = kpa_process_context_to_json(&arg.token, &c);
                printf(status_in_array ? "%s" : "%s\n", j);
        }
        if (c.state == KPA_PROCESS_NOT_EXISTING)
                return report_not_existing();
        if (!arg.json)
                print_status(&c);
        return EXIT_SUCCESS;
}

static int stop(kpa_control *ctl)
{
        kpa_error err;
        int r = kpa_process_stop(ctl, &arg.token, arg.force ? KPA_STOP_FORCED : KPA_STOP_NORMAL,
                                 &err);
        return r < 0 ? report_daemon_error(&err, r) : EXIT_SUCCESS;
}

/* --stop-all: StopAll (root only: the daemon decides, by SO_PEERCRED),
 * then a wait for each instance that was live before it, so that "stopped"
 * means ended, as after a Normal stop's grace period. One started in
 * between is stopped too, but not waited for. */
static int stop_all(kpa_control *ctl)
{
        _cleanup_free_ kpa_token *tokens = NULL;
        _cleanup_free_ kpa_process_context **ctxs = NULL;
        size_t n = 0, stopped = 0;
        kpa_error err;
        if (kpa_process_list_contexts(ctl, &tokens, &ctxs, &n, &err) < 0 ||
            kpa_process_stop_all(ctl, arg.force ? KPA_STOP_FORCED : KPA_STOP_NORMAL, &stopped,
                                 &err) < 0) {
                cli_error("--stop-all: %s", err.message);
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < n; i++) {
                if (has_ended(ctxs[i]->state))
                        continue;
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                int r = kpa_process_wait(ctl, &tokens[i], -1, &ctx, &err);
                if (r < 0) {
                        char t[KPA_TOKEN_STRING_MAX];
                        kpa_token_to_string(&tokens[i], t);
                        cli_error("--stop-all: waiting for %s to end: %s", t,
                                  err.message[0] ? err.message : strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        if (!arg.quiet)
                printf("stopped %zu process%s\n", stopped, stopped == 1 ? "" : "es");
        return EXIT_SUCCESS;
}

static int wait_instance(kpa_control *ctl)
{
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        kpa_error err;
        int r = kpa_process_wait(ctl, &arg.token, arg.has_timeout ? (int)arg.timeout_ms : -1,
                                 &ctx, &err);
        if (r == -ETIMEDOUT) {
                cli_error("%s: still %s after the timeout of %.3g s", arg.token_arg,
                          kpa_process_state_name(ctx.state), arg.timeout_ms / 1000.0);
                return EXIT_FAILURE;
        }
        if (r < 0)
                return report_daemon_error(&err, r);
        if (ctx.state == KPA_PROCESS_NOT_EXISTING)
                return report_not_existing();
        report_end(&ctx);
        if (arg.json)
                print_json(&arg.token, &ctx);
        /* the context does not say whether a stop was asked for; its
         * message does ("stopped by SIGTERM") */
        return exit_status_of(&ctx, strncmp(ctx.message, "stopped by ", 11) == 0);
}

static int list(kpa_control *ctl)
{
        _cleanup_free_ kpa_token *tokens = NULL;
        _cleanup_free_ kpa_process_context **ctx = NULL;
        size_t n = 0;
        kpa_error err;
        if (kpa_process_list_contexts(ctl, &tokens, &ctx, &n, &err) < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        if (arg.json) {
                printf("[");
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *j = kpa_process_context_to_json(&tokens[i], ctx[i]);
                        printf("%s%s", i ? "," : "", j);
                }
                printf("]\n");
                return EXIT_SUCCESS;
        }
        int wpkg = (int)strlen("PACKAGE"), wrc = (int)strlen("RUNCONFIG");
        for (size_t i = 0; i < n; i++) {
                if ((int)strlen(ctx[i]->app_id) > wpkg)
                        wpkg = (int)strlen(ctx[i]->app_id);
                if ((int)strlen(ctx[i]->run_config_id) > wrc)
                        wrc = (int)strlen(ctx[i]->run_config_id);
        }
        printf("%-32s  %-11s  %-*s  %-*s  %7s  %8s  %s\n", "TOKEN", "STATE", wpkg, "PACKAGE", wrc,
               "RUNCONFIG", "PID", "RESTARTS", "EXIT");
        for (size_t i = 0; i < n; i++) {
                char tok[KPA_TOKEN_STRING_MAX], pid[16], ex[32];
                kpa_token_to_string(&tokens[i], tok);
                snprintf(pid, sizeof(pid), ctx[i]->pid > 0 ? "%d" : "-", (int)ctx[i]->pid);
                exit_text(ctx[i], ex, sizeof(ex));
                printf("%-32s  %-11s  %-*s  %-*s  %7s  %8u  %s\n", tok,
                       kpa_process_state_name(ctx[i]->state), wpkg, ctx[i]->app_id, wrc,
                       ctx[i]->run_config_id, pid, ctx[i]->restarts, ex);
        }
        return EXIT_SUCCESS;
}

/* ---- --logs ---- */

/* The instance's current (or ROTATED: previous) log file, read-only. */
static int open_log(kpa_control *ctl, bool rotated, int *out, kpa_error *err)
{
        return kpa_process_open_log(ctl, &arg.token, rotated, out, err);
}

/* Copy FD from *OFF to its current end to stdout. */
static int copy_log(int fd, off_t *off)
{
        char buf[65536];
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof(buf), *off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return fflush(stdout) == EOF ? (errno ? -errno : -EIO) : 0;
                if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
                        return errno ? -errno : -EIO;
                *off += n;
        }
}

static int log_write_error(int r)
{
        cli_error("%s: copying the log: %s", arg.token_arg, strerror(-r));
        return EXIT_FAILURE;
}

static bool same_file(int a, int b)
{
        struct stat x, y;
        return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev &&
               x.st_ino == y.st_ino;
}

/* Until the instance has ended: print what its log gains, and move to the
 * new file when the log was rotated. *FD and *OFF: where we are. */
static int follow_log(kpa_control *ctl, int *fd, off_t *off)
{
        for (;;) {
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                kpa_error err;
                int r = kpa_process_get_state(ctl, &arg.token, &ctx, &err);
                if (r < 0)
                        return report_daemon_error(&err, r);
                /* the state first: what was written before the end is read below */
                bool ended = has_ended(ctx.state);
                if ((r = copy_log(*fd, off)) < 0)
                        return log_write_error(r);
                int cur = -1;
                r = open_log(ctl, false, &cur, &err);
                if (r < 0) {
                        if (ended)
                                return EXIT_SUCCESS;
                        cli_error("%s: %s", arg.token_arg, err.message);
                        return EXIT_FAILURE;
                }
                if (same_file(*fd, cur)) {
                        close(cur);
                } else { /* rotated: the rest of the old file, then the new one */
                        r = copy_log(*fd, off);
                        close(*fd);
                        *fd = cur;
                        *off = 0;
                        if (r >= 0)
                                r = copy_log(*fd, off);
                        if (r < 0)
                                return log_write_error(r);
                }
                if (ended)
                        return EXIT_SUCCESS;
                poll(NULL, 0, FOLLOW_INTERVAL_MS);
        }
}

static int logs(kpa_control *ctl)
{
        kpa_error err;
        int fd = -1;
        off_t off = 0;
        /* the previous file first, when there is one */
        int r = open_log(ctl, true, &fd, &err);
        if (r == 0) {
                r = copy_log(fd, &off);
                close(fd);
                if (r < 0)
                        return log_write_error(r);
        } else if (r != -ENOENT) {
                cli_error("%s: %s", arg.token_arg, err.message);
                return EXIT_FAILURE;
        }
        if (open_log(ctl, false, &fd, &err) < 0) {
                cli_error("%s: %s", arg.token_arg, err.message);
                return EXIT_FAILURE;
        }
        off = 0;
        r = copy_log(fd, &off);
        if (r < 0) {
                close(fd);
                return log_write_error(r);
        }
        if (arg.follow)
                r = follow_log(ctl, &fd, &off);
        close(fd);
        return r;
}

/* The instances NAME matches, on stderr after the refusal. */
static void print_matches(kpa_control *ctl, const kpa_token *v, size_t n)
{
        for (size_t k = 0; k < n; k++) {
                char t[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(&v[k], t);
                kpa_process_context c;
                kpa_process_context_init(&c);
                if (kpa_process_get_state(ctl, &v[k], &c, NULL) < 0) {
                        memset(&c, 0, sizeof(c));
                        c.state = KPA_PROCESS_NOT_EXISTING;
                }
                fprintf(stderr, "  %s  %s/%s  %s", t, c.app_id, c.run_config_id,
                        kpa_process_state_name(c.state));
                if (c.pid > 0)
                        fprintf(stderr, "  pid %d", (int)c.pid);
                fprintf(stderr, "\n");
        }
}

/* A name (APP_ID[/RUNCONFIG]) given for a token: the daemon's matches into
 * *V, *N; arg.token is the one match. 0, or the exit status after saying
 * why not: no match, or (but for --status) more than one. */
static int resolve_name(kpa_control *ctl, kpa_token **v, size_t *n)
{
        kpa_error err;
        if (kpa_process_find(ctl, arg.token_arg, v, n, &err) < 0) {
                cli_error("%s: %s", arg.token_arg, err.message);
                return EXIT_FAILURE;
        }
        if (*n == 0) {
                cli_error("%s: no such instance (kpa-execd knows no instance of that package%s)",
                          arg.token_arg, strchr(arg.token_arg, '/') ? " and run configuration" : "");
                return EXIT_FAILURE;
        }
        if (*n > 1 && arg.mode != MODE_STATUS) {
                cli_error("%s names %zu instances; give %s one of their tokens:", arg.token_arg, *n,
                          mode_options[arg.mode]);
                print_matches(ctl, *v, *n);
                return EXIT_FAILURE;
        }
        arg.token = (*v)[0];
        kpa_token_to_string(&arg.token, arg.token_str);
        return 0;
}

int run_daemon_mode(void)
{
        if (arg.mode == MODE_DETACH)
                return detach();
        _cleanup_(kpa_control_closep) kpa_control *ctl = NULL;
        int r = connect_daemon(&ctl);
        if (r)
                return r;
        _cleanup_free_ kpa_token *matches = NULL;
        size_t n_matches = 1;
        if (arg.by_name && (r = resolve_name(ctl, &matches, &n_matches)))
                return r;
        switch (arg.mode) {
        case MODE_STATUS: return status(ctl, matches, n_matches);
        case MODE_STOP: return stop(ctl);
        case MODE_STOP_ALL: return stop_all(ctl);
        case MODE_WAIT: return wait_instance(ctl);
        case MODE_LIST: return list(ctl);
        case MODE_LOGS: return logs(ctl);
        default: return EXIT_FAILURE;
        }
}
