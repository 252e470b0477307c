/* run-start.c: kpa-run's starts. Direct mode (run): open the handles,
 * start the instance as its parent, relay its terminal or pipes and serve
 * stop signals until it ends, then report how it ended; --detach: the same
 * start through kpa-execd, which keeps the instance. The listening handles
 * (the port they got, connections never accepted) are watched here too. */
#include "config.h"

#include "run.h"

/* ---- listening handles: the port they got, connections never accepted ---- */

#define UNACCEPTED_WARN_MS 5000

typedef struct watched_listen {
        const char *name;
        int fd;
        bool owned; /* a duplicate of ours, closed at exit */
        uint64_t pending_since_ms;
        bool warned;
} watched_listen;
static watched_listen *listens;
static size_t n_listens;

static uint64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void watch_listen(const char *name, int fd, bool owned)
{
        listens = cli_xrealloc(listens, (n_listens + 1) * sizeof(*listens));
        listens[n_listens++] = (watched_listen){.name = name, .fd = fd, .owned = owned};
}

static void free_listens(void)
{
        for (size_t k = 0; k < n_listens; k++)
                if (listens[k].owned)
                        close(listens[k].fd);
        free(listens);
        listens = NULL;
        n_listens = 0;
}

/* A listening handle whose spec asked for port 0: say which port it got
 * (to stderr; one JSON object a line with --json), so that a script can
 * reach it. */
static void report_listen(const char *name, const char *spec, int fd)
{
        const char *port = strrchr(spec, ':');
        if (strncmp(spec, "listen:tcp:", 11) != 0 || !port || !port[1] ||
            strspn(port + 1, "0") != strlen(port + 1))
                return; /* not port 0 (or 00...) */
        char where[320];
        if (kpa_socket_address(fd, where, sizeof(where), NULL) < 0)
                return;
        if (arg.json) {
                /* a handle name is printable ASCII: only " and \ need a \ */
                fputs("{\"handle\":\"", stderr);
                for (const char *c = name; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                fputc('\\', stderr);
                        fputc(*c, stderr);
                }
                fprintf(stderr, "\",\"listens\":\"%s\"}\n", where);
        } else if (!arg.quiet) {
                fprintf(stderr, "kpa-run: handle %s listens on %s\n", name, where);
        }
        fflush(stderr);
}

/* Once a second while the application runs: warn once about a listening
 * handle whose connections have waited UNACCEPTED_WARN_MS (an application
 * that ignores LISTEN_FDS never accepts on it). */
static void check_listens(void)
{
        uint64_t now = mono_ms();
        for (size_t k = 0; k < n_listens; k++) {
                watched_listen *l = &listens[k];
                if (l->warned || !kpa_socket_has_pending(l->fd)) {
                        l->pending_since_ms = 0;
                        continue;
                }
                if (!l->pending_since_ms) {
                        l->pending_since_ms = now;
                } else if (now - l->pending_since_ms >= UNACCEPTED_WARN_MS) {
                        l->warned = true;
                        cli_error("warning: %s: connections to handle %s have waited %d s and "
                                  "were never accepted: does the application take its sockets "
                                  "from LISTEN_FDS (sd_listen_fds)? (python3 -m http.server, for "
                                  "one, ignores inherited sockets)",
                                  arg.app_id, l->name, UNACCEPTED_WARN_MS / 1000);
                }
        }
}

/* The poll timeout of the wait loop: a second while a handle may still
 * earn its warning. */
static int listens_timeout(void)
{
        for (size_t k = 0; k < n_listens; k++)
                if (!listens[k].warned)
                        return 1000;
        return -1;
}

/* ---- handles ---- */

/* --handle NAME=service:RUNCONFIG asks for the connection to a service,
 * which kpa makes from the run configuration's usesServices alone: it is
 * allowed when the run configuration declares RUNCONFIG, and is then that
 * declared connection, named after the service; otherwise it is refused, as
 * a client connects only to the services it declares. 0 (nothing to open),
 * or the exit code. */
static int check_service_handle(const handle_arg *h, const char *service)
{
        kpa_error err;
        _cleanup_(kpa_store_closep) kpa_store *store = NULL;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        if (kpa_store_open(arg.root, 0, &store, &err) < 0 ||
            kpa_store_load_manifest(store, arg.app_id, &m, &err) < 0) {
                cli_error("--handle %s: %s", h->name, err.message);
                return EXIT_FAILURE;
        }
        const kpa_run_config *rc = arg.run_config_id
                                           ? kpa_manifest_find_run_config(m, arg.run_config_id)
                                           : kpa_manifest_primary_run_config(m);
        if (!rc) /* the start says so, with the list */
                return 0;
        size_t len = strlen(arg.app_id);
        for (size_t k = 0; k < rc->n_uses; k++) {
                const char *t = rc->uses[k]->name;
                if (strncmp(t, arg.app_id, len) == 0 && t[len] == '/')
                        t += len + 1;
                if (!streq(t, service))
                        continue;
                if (!streq(h->name, service))
                        return cli_usage_error("--handle %s=%s: the connection to the service "
                                               "\"%s\" is the handle \"%s\"",
                                               h->name, h->spec, service, service);
                return 0;
        }
        cli_error("--handle %s=%s: %s/%s does not declare \"%s\" in usesServices, and a "
                  "client connects only to the services it declares",
                  h->name, h->spec, arg.app_id, rc->id, service);
        return EXIT_FAILURE;
}

/* Open every --handle in order into OUT (*N of them: a service: handle
 * takes no place). 0, 1 (cannot open) or 2 (malformed spec). */
static int open_handles(kpa_user_handle *out, int *fds, size_t *n)
{
        *n = 0;
        for (size_t i = 0; i < arg.n_handles; i++)
                fds[i] = -1;
        for (size_t i = 0; i < arg.n_handles; i++) {
                kpa_error err;
                if (strncmp(arg.handles[i].spec, "service:", 8) == 0) {
                        int r = check_service_handle(&arg.handles[i], arg.handles[i].spec + 8);
                        if (r) {
                                cli_close_fds(fds, i);
                                return r;
                        }
                        continue;
                }
                int fd = kpa_handle_open_spec(arg.handles[i].spec, &err);
                if (fd < 0) {
                        cli_close_fds(fds, i);
                        if (fd == -EINVAL)
                                return cli_usage_error("--handle %s: %s", arg.handles[i].name,
                                                       err.message);
                        cli_error("--handle %s: %s", arg.handles[i].name, err.message);
                        return EXIT_FAILURE;
                }
                fds[i] = fd;
                out[*n].name = arg.handles[i].name;
                out[*n].fd = fd;
                ++*n;
                report_listen(arg.handles[i].name, arg.handles[i].spec, fd);
                int dup = strncmp(arg.handles[i].spec, "listen:", 7) == 0 && arg.mode == MODE_DIRECT
                                  ? fcntl(fd, F_DUPFD_CLOEXEC, 3)
                                  : -1;
                if (dup >= 0)
                        watch_listen(arg.handles[i].name, dup, true);
        }
        return 0;
}

/* ---- the end ---- */

bool has_ended(kpa_process_state s)
{
        return s == KPA_PROCESS_FINISHED || s == KPA_PROCESS_FAILED ||
               s == KPA_PROCESS_NOT_EXISTING;
}

/* The same context object as kpa-execd's protocol and --status --json. */
void print_json(const kpa_token *token, const kpa_process_context *ctx)
{
        _cleanup_free_ char *j = kpa_process_context_to_json(token, ctx);
        fprintf(stderr, "%s\n", j);
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
int exit_status_of(const kpa_process_context *ctx, bool stop_requested)
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

void report_end(const kpa_process_context *ctx)
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
        sigaddset(mask, SIGWINCH); /* --tty: the pty's size follows ours */
        sigaddset(mask, SIGTSTP);  /* and the terminal is put back while stopped */
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
        restore_terminal(); /* the instance is ending: our messages read as usual */
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
        kpa_error saved;
        if (kpa_process_stop(ctl, token, policy, &saved) < 0) {
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                /* losing the race against the application's own end is fine */
                if (kpa_process_get_state(ctl, token, &ctx, NULL) == 0 && has_ended(ctx.state))
                        return;
                cli_report(&saved);
        }
}

static int drain_signals(int sfd, kpa_control *ctl, const kpa_token *token, unsigned *count,
                         const tty_relay *tty)
{
        struct signalfd_siginfo si;
        ssize_t n;
        while ((n = read(sfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGWINCH || si.ssi_signo == SIGTSTP) {
                        if (si.ssi_signo == SIGTSTP)
                                suspend_self();
                        copy_window_size(tty); /* it may have changed meanwhile */
                        continue;
                }
                on_stop_signal(ctl, token, (int)si.ssi_signo, count);
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
                return -errno;
        return 0;
}

/* Wait until the instance has ended, serving stop signals meanwhile, and
 * relaying its terminal or pipes (TTY) until then and what it has left in
 * them after. A failure of the controller fills ERR (may be NULL). */
static int wait_for_end(kpa_control *ctl, const kpa_token *token, int sfd, kpa_process_context *ctx,
                        unsigned *stops, tty_relay *tty, kpa_error *err)
{
        int cfd = kpa_control_get_fd(ctl);
        if (cfd < 0)
                return cfd;
        for (;;) {
                int r = kpa_process_get_state(ctl, token, ctx, err);
                if (r < 0)
                        return r;
                if (has_ended(ctx->state)) {
                        for (size_t i = 0; i < ELEMENTSOF(tty->out); i++)
                                relay_output(tty, &tty->out[i]); /* what is left */
                        return 0;
                }
                struct pollfd pfd[6] = {
                        {.fd = sfd, .events = POLLIN},
                        {.fd = cfd, .events = POLLIN},
                };
                relay_events(tty, &pfd[2]);
                bool running = ctx->state == KPA_PROCESS_RUNNING;
                if (running)
                        check_listens();
                if (poll(pfd, ELEMENTSOF(pfd), running ? listens_timeout() : -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                /* a resize first: a line typed after it must find the
                 * application's terminal at its new size (stty size) */
                if (pfd[0].revents)
                        copy_window_size(tty);
                relay_dispatch(tty, &pfd[2]);
                if (pfd[0].revents) {
                        r = drain_signals(sfd, ctl, token, stops, tty);
                        if (r < 0)
                                return r;
                }
                if (pfd[1].revents) {
                        r = kpa_control_dispatch(ctl, err);
                        if (r < 0)
                                return r;
                }
        }
}

/* Direct mode: the services that libkpa started for the application
 * (usesServices) end with it, stopped once it has ended; wait for them,
 * so that the close does not kill them. */
static void wait_for_services(kpa_control *ctl, const kpa_token *app, int sfd, unsigned *stops,
                              tty_relay *tty)
{
        kpa_token *v = NULL;
        size_t n = 0;
        if (kpa_process_list(ctl, &v, &n, NULL) < 0)
                return;
        for (size_t k = 0; k < n; k++) {
                kpa_process_context c;
                kpa_process_context_init(&c);
                if (memcmp(&v[k], app, sizeof(*app)) != 0)
                        (void)wait_for_end(ctl, &v[k], sfd, &c, stops, tty, NULL);
        }
        free(v);
}

/* ---- start ---- */

/* Our own stdio goes through; a closed one becomes /dev/null. */
static int stdio_fd(int fd)
{
        return fcntl(fd, F_GETFD) < 0 ? -1 : fd;
}

/* ERR: what kpa_process_start() said. */
static int report_failed_start(kpa_control *ctl, const kpa_token *token, const kpa_error *e)
{
        kpa_error err = *e;
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        bool have_ctx = !kpa_token_is_null(token) &&
                        kpa_process_get_state(ctl, token, &ctx, NULL) == 0;
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

/* Open the handles into HANDLES and FDS and put them, the extra args and
 * env into arg.opts. 0, or the exit code to stop with. */
static int prepare_start(kpa_user_handle **handles, int **fds)
{
        *handles = cli_xcalloc(arg.n_handles ? arg.n_handles : 1, sizeof(**handles));
        *fds = cli_xcalloc(arg.n_handles ? arg.n_handles : 1, sizeof(**fds));
        size_t n = 0;
        int r = open_handles(*handles, *fds, &n);
        if (r) {
                free(*handles);
                free(*fds);
                return r;
        }
        kpa_start_options *o = &arg.opts;
        o->handles = *handles;
        o->n_handles = n;
        o->extra_args = arg.extra_args;
        o->n_extra_args = arg.n_extra_args;
        o->extra_env = arg.env;
        o->n_extra_env = arg.n_env;
        o->binds = arg.binds;
        o->n_binds = arg.n_binds;
        return 0;
}

/* A pty (--tty, or by default when our stdin and stdout are terminals) of
 * our terminal's size, else our stdio with pipes for the terminals among
 * them: into O and T. 0, or -errno. */
static int prepare_terminal(kpa_start_options *o, tty_relay *t)
{
        *t = (tty_relay){.in = STDIN_FILENO, .in_dst = -1, .out = {{-1, STDOUT_FILENO},
                                                                   {-1, STDERR_FILENO}},
                         .size_fd = size_terminal()};
        o->tty = arg.tty == 1 || (arg.tty < 0 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
        struct winsize ws;
        if (o->tty && t->size_fd >= 0 && ioctl(t->size_fd, TIOCGWINSZ, &ws) == 0) {
                o->tty_rows = ws.ws_row;
                o->tty_cols = ws.ws_col;
        }
        /* with a pty, the application gets none of ours */
        o->stdin_fd = o->tty ? -1 : stdio_fd(STDIN_FILENO);
        o->stdout_fd = o->tty ? -1 : stdio_fd(STDOUT_FILENO);
        o->stderr_fd = o->tty ? -1 : stdio_fd(STDERR_FILENO);
        t->tty = o->tty;
        if (o->tty)
                return 0;
        int r = relay_pipes(t, o);
        if (r < 0)
                relay_close(t);
        return r;
}

/* The instance runs: take its pty's master and put our terminal in raw
 * mode, or close the application's ends of the pipes. */
static void start_relay(kpa_control *ctl, const kpa_token *token, kpa_start_options *o,
                        tty_relay *t)
{
        if (!o->tty) {
                relay_pipes_started(t, o);
                return;
        }
        int m = kpa_process_take_tty(ctl, token, NULL);
        if (m < 0) { /* cannot be: it is Running */
                t->in = -1;
                return;
        }
        fcntl(m, F_SETFL, O_NONBLOCK);
        t->in_dst = t->out[0].src = m;
        copy_window_size(t); /* it may have changed meanwhile */
        make_terminal_raw();
}

/* --print-spec: the plan of this start, as libkpa would make it, in JSON */
static int print_spec(void)
{
        kpa_user_handle *handles;
        int *fds;
        int r = prepare_start(&handles, &fds);
        if (r)
                return r;
        arg.opts.tty = arg.tty == 1;
        if (!arg.opts.tty) { /* the application would get ours (or pipes in their place) */
                arg.opts.stdin_fd = STDIN_FILENO;
                arg.opts.stdout_fd = STDOUT_FILENO;
                arg.opts.stderr_fd = STDERR_FILENO;
        }
        kpa_error err;
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = NULL;
        r = kpa_instance_spec_new_package(arg.root, arg.app_id, arg.run_config_id, &arg.opts, &spec,
                                          &err);
        cli_close_fds(fds, arg.n_handles);
        free(handles);
        free(fds);
        free_listens();
        if (r < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        _cleanup_free_ char *json = kpa_instance_spec_to_json(spec);
        puts(json);
        return EXIT_SUCCESS;
}

int run(void)
{
        if (arg.print_spec)
                return print_spec();
        kpa_user_handle *handles;
        int *fds;
        int r = prepare_start(&handles, &fds);
        if (r)
                return r;

        kpa_start_options *o = &arg.opts;
        tty_relay relay;
        r = prepare_terminal(o, &relay);
        if (r < 0) {
                cli_close_fds(fds, arg.n_handles);
                free(handles);
                free(fds);
                cli_error("pipe: %s", strerror(-r));
                return EXIT_FAILURE;
        }

        /* blocked before the start, so that a Ctrl-C during it is not lost */
        sigset_t mask;
        _cleanup_close_ int sfd = block_stop_signals(&mask);
        if (sfd < 0) {
                cli_close_fds(fds, arg.n_handles);
                free(handles);
                free(fds);
                relay_close(&relay);
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
        } else if (kpa_process_start(ctl, arg.app_id, arg.run_config_id, o, &token, &err) < 0) {
                r = report_failed_start(ctl, &token, &err);
                unsigned stops = 0;
                wait_for_services(ctl, &token, sfd, &stops, &relay); /* closed: inert */
        } else {
                r = -1;
        }
        /* kpa_process_start keeps duplicates of what it needs */
        cli_close_fds(fds, arg.n_handles);
        free(handles);
        free(fds);
        o->handles = NULL;
        if (r >= 0) {
                relay_close(&relay);
                free_listens();
                return r;
        }

        start_relay(ctl, &token, o, &relay);
        /* the sockets the manifest declares: the controller keeps them */
        int declared_fds[64];
        const char *declared_names[64];
        size_t n_declared = kpa_control_declared_sockets(ctl, declared_fds, declared_names,
                                                         ELEMENTSOF(declared_fds));
        for (size_t k = 0; k < n_declared && k < ELEMENTSOF(declared_fds); k++)
                watch_listen(declared_names[k], declared_fds[k], false);
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        unsigned stops = 0;
        kpa_trace("kpa-run: running");
        kpa_error_clear(&err);
        r = wait_for_end(ctl, &token, sfd, &ctx, &stops, &relay, &err);
        free_listens();
        restore_terminal();
        if (relay.tty)
                relay_close(&relay); /* the services had no part in the pty */
        kpa_trace("kpa-run: ended");
        if (r == 0) /* their output goes on through the pipes until they end */
                wait_for_services(ctl, &token, sfd, &stops, &relay);
        relay_close(&relay);
        if (r < 0) {
                if (err.message[0])
                        cli_report(&err);
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

int detach(void)
{
        kpa_user_handle *handles;
        int *fds;
        int r = prepare_start(&handles, &fds);
        if (r)
                return r;
        /* the daemon logs the instance's output: no stdio goes along */
        kpa_start_options *o = &arg.opts;
        o->stdin_fd = o->stdout_fd = o->stderr_fd = -1;
        _cleanup_(kpa_control_closep) kpa_control *ctl = NULL;
        kpa_token token = {{0}};
        r = connect_daemon(&ctl);
        kpa_error err;
        if (r == 0 && kpa_process_start(ctl, arg.app_id, arg.run_config_id, o, &token, &err) < 0)
                r = report_failed_start(ctl, &token, &err);
        /* the daemon has its own copies of the handles now */
        cli_close_fds(fds, arg.n_handles);
        free(handles);
        free(fds);
        o->handles = NULL;
        if (r)
                return r;
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&token, tok);
        printf("%s\n", tok);
        return EXIT_SUCCESS;
}
