/* execd-requests.c: the requests of the kpa-execd service (execd.c): the
 * request table (one row per op: who may send it and when, docs/DESIGN.md
 * "kpa-execd's state table"), its handlers, the replies, and the events of
 * the controller that answer pending starts and waits and go to the
 * subscribers. The socket, the clients' life and the loop are execd.c's. */
#include "config.h"

#include "execd-priv.h"

/* Send, or drop a client that does not read its replies: a slow client
 * never blocks the daemon. Returns false when the client is (or was)
 * dropped. */
static bool send_to(client *c, json_object *msg, const int *fds, size_t n_fds)
{
        if (c->dead)
                return false;
        int q = kpa_msg_send(c->fd, msg, fds, n_fds);
        if (q < 0) {
                log_debug("client pid %d: %s; dropping it", (int)c->pid, strerror(-q));
                drop_client(c);
                return false;
        }
        return true;
}

static bool reply_error(client *c, int64_t id, int code, const char *fmt, ...) _printf_(4, 5);
static bool reply_error(client *c, int64_t id, int code, const char *fmt, ...)
{
        char msg[KPA_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(id, code, msg);
        return send_to(c, r, NULL, 0);
}

static json_object *context_json(const kpa_token *t, const kpa_process_context *ctx)
{
        uid_t owner = 0;
        (void)kpa_control_get_owner(d.ctl, t, &owner);
        return kpa_context_to_json(t, ctx, owner);
}

/* May C see or act on T? Root and the uid that started it. */
static int check_owner(client *c, const kpa_token *t)
{
        uid_t owner;
        if (kpa_control_get_owner(d.ctl, t, &owner) < 0)
                return -ESRCH;
        return c->uid == 0 || c->uid == owner ? 0 : -EACCES;
}

/* ---- requests ---- */

/* Variables the dynamic loader or the C library act on: the ones glibc
 * drops from the environment of setuid programs (its unsecure-envvars
 * list), every LD_* and MALLOC_* among them. Through one a client could run
 * its own code as the package's uid (LD_PRELOAD of a handle's
 * /proc/self/fd/N), so only root may pass them. */
static const char *const loader_env[] = {
        "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES",   "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
        "NIS_PATH",   "NLSPATH",     "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR",      "TZDIR",
};

static bool is_loader_env(const char *entry)
{
        size_t len = strcspn(entry, "=");
        if (strncmp(entry, "LD_", 3) == 0 || strncmp(entry, "MALLOC_", 7) == 0)
                return true;
        for (size_t k = 0; k < ELEMENTSOF(loader_env); k++)
                if (strlen(loader_env[k]) == len && strncmp(entry, loader_env[k], len) == 0)
                        return true;
        return false;
}

/* One limit of a start by a non-root client: it may lower the manifest's
 * (an unset one is no limit: any value lowers it), never raise it. */
static bool limit_raised(uint64_t asked, uint64_t manifest)
{
        return asked && manifest && asked > manifest;
}

/* What only root may ask of a start: loader variables and limits above
 * the manifest's. Replies itself and returns false when REQ asks for one. */
static bool start_allowed(client *c, kpa_request *req)
{
        const kpa_start_options *o = &req->opts;
        if (o->n_binds > 0) {
                reply_error(c, req->id, EPERM,
                            "permission denied: only root may bind host paths into an "
                            "instance (binds, kpa-run --bind and --bind-ro)");
                return false;
        }
        for (size_t k = 0; k < o->n_extra_env; k++)
                if (is_loader_env(o->extra_env[k])) {
                        int len = (int)strcspn(o->extra_env[k], "=");
                        reply_error(c, req->id, EPERM,
                                    "permission denied: environment variable %.*s is read by "
                                    "the dynamic loader or the C library (glibc ignores it for "
                                    "setuid programs); only root may pass it to an application",
                                    len, o->extra_env[k]);
                        return false;
                }
        if (!o->memory_bytes && !o->pids && !o->cpu_weight)
                return true;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error err;
        if (kpa_store_load_manifest(kpa_control_store(d.ctl), req->package, &m, &err) < 0) {
                reply_error(c, req->id, err.code, "%s", err.message);
                return false;
        }
        const kpa_limits *l = m->limits;
        const char *what = NULL;
        uint64_t asked = 0, limit = 0;
        if (limit_raised(o->memory_bytes, l->memory_bytes))
                what = "memory", asked = o->memory_bytes, limit = l->memory_bytes;
        else if (limit_raised(o->pids, l->pids))
                what = "pids", asked = o->pids, limit = l->pids;
        else if (limit_raised(o->cpu_weight,
                              l->cpu_weight ? l->cpu_weight : CPU_WEIGHT_KERNEL_DEFAULT))
                what = "cpuWeight", asked = o->cpu_weight,
                limit = l->cpu_weight ? l->cpu_weight : CPU_WEIGHT_KERNEL_DEFAULT;
        if (!what)
                return true;
        reply_error(c, req->id, EPERM,
                    "permission denied: a %s limit of %llu%s is above %s's own (%llu%s); only "
                    "root may raise a package's limits, others may only lower them",
                    what, (unsigned long long)asked, streq(what, "memory") ? " bytes" : "",
                    req->package, (unsigned long long)limit,
                    streq(what, "cpuWeight") && !l->cpu_weight
                            ? ", the kernel's default weight, as its manifest sets none"
                            : ", from extensions.KPA_limits of its manifest");
        return false;
}

/* A directory fd as a handle would give the application a way out of its
 * private root (openat relative to it), as file: on a directory would. */
static bool handles_allowed(client *c, kpa_request *req)
{
        for (size_t k = 0; k < req->opts.n_handles; k++) {
                kpa_error err;
                const kpa_user_handle *h = &req->opts.handles[k];
                if (kpa_handle_fd_check(h->fd, h->name, &err) < 0) {
                        reply_error(c, req->id, err.code, "%s", err.message);
                        return false;
                }
        }
        return true;
}

/* Who may start, and when, is the request table's (handle_request); what
 * only root may ask of a start is checked here. */
static void op_start(client *c, kpa_request *req)
{
        if (c->uid != 0 && (req->opts.uid != (uid_t)-1 || req->opts.gid != (gid_t)-1)) {
                reply_error(c, req->id, EPERM,
                            "permission denied: only root may choose the uid or gid of a process");
                return;
        }
        if (!handles_allowed(c, req) || (c->uid != 0 && !start_allowed(c, req)))
                return;
        if (req->opts.parent) {
                int q = check_owner(c, req->opts.parent);
                if (q == -EACCES) {
                        reply_error(c, req->id, EACCES,
                                    "permission denied: the parent token belongs to another user");
                        return;
                }
        }
        kpa_control_set_owner(d.ctl, c->uid);
        kpa_token token;
        memset(&token, 0, sizeof(token));
        /* the reply goes out when the instance is Running or has failed
         * (start_done); meanwhile the loop serves everyone else */
        unsigned long hits, misses, hits_after;
        store_manifest_cache_stats(kpa_control_store(d.ctl), &hits, &misses);
        int q = kpa_control_start_async(d.ctl, req->package, req->run_config, &req->opts, &token);
        store_manifest_cache_stats(kpa_control_store(d.ctl), &hits_after, &misses);
        if (q == 0) {
                /* its Created event may have cost C its connection */
                if (c->dead)
                        return;
                c->pending++;
                pending_start *ps = kpa_xcalloc(1, sizeof(*ps));
                ps->c = c;
                ps->id = req->id;
                ps->token = token;
                ps->next = d.starts;
                d.starts = ps;
                log_debug("uid %u: starting %s/%s (manifest %s)", (unsigned)c->uid, req->package,
                          req->run_config ? req->run_config : "(primary)",
                          hits_after > hits ? "from the cache" : "read from the store");
                return;
        }
        const kpa_error *e = kpa_control_error(d.ctl);
        log_info("uid %u: start of %s failed: %s", (unsigned)c->uid, req->package, e->message);
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(req->id, -q, e->message);
        if (!kpa_token_is_null(&token)) {
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                kpa_process_get_state(d.ctl, &token, &ctx, NULL);
                char ts[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(&token, ts);
                json_object_object_add(r, "token", json_object_new_string(ts));
                json_object_object_add(r, "process", context_json(&token, &ctx));
        }
        send_to(c, r, NULL, 0);
}

/* The reply to a StartProcess, once its instance is Running or has ended. */
static void start_done(pending_start *ps, const kpa_token *t, const kpa_process_context *ctx)
{
        bool ok = ctx->state == KPA_PROCESS_RUNNING || ctx->state == KPA_PROCESS_FINISHED;
        int err = ok ? 0 : (ctx->exit_reason ? ctx->exit_reason : EIO);
        if (ctx->state == KPA_PROCESS_FAILED && ctx->exit_status != KPA_EXIT_UNINITIALIZED)
                err = 0; /* it ran, then died: the start itself succeeded */
        _cleanup_(json_object_putp) json_object *r =
                kpa_reply_new(ps->id, err, err ? ctx->message : "");
        char ts[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(t, ts);
        json_object_object_add(r, "token", json_object_new_string(ts));
        json_object_object_add(r, "process", context_json(t, ctx));
        if (err)
                log_info("uid %u: start of %s failed: %s", (unsigned)ps->c->uid, ctx->app_id,
                         ctx->message);
        else
                log_info("uid %u started %s/%s", (unsigned)ps->c->uid, ctx->app_id,
                         ctx->run_config_id);
        send_to(ps->c, r, NULL, 0);
}

void reply_context(client *c, int64_t id, int err, const kpa_token *t,
                   const kpa_process_context *ctx)
{
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(
                id, err, err == ETIMEDOUT ? "timed out waiting for the process to end" : "");
        json_object_object_add(r, "process", context_json(t, ctx));
        send_to(c, r, NULL, 0);
}

bool is_live_state(kpa_process_state s)
{
        return s == KPA_PROCESS_CREATED || s == KPA_PROCESS_PREPARED || s == KPA_PROCESS_RUNNING;
}

static void op_wait(client *c, kpa_request *req)
{
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        kpa_process_get_state(d.ctl, &req->token, &ctx, NULL);
        if (c->dead)
                return;
        if (!is_live_state(ctx.state) || req->timeout_ms == 0) {
                reply_context(c, req->id, is_live_state(ctx.state) ? ETIMEDOUT : 0, &req->token,
                              &ctx);
                return;
        }
        if (d.n_waits >= WAITS_MAX) {
                reply_error(c, req->id, EAGAIN, "too many waiting requests; try again later");
                return;
        }
        c->pending++;
        pending_wait *w = kpa_xcalloc(1, sizeof(*w));
        w->c = c;
        w->id = req->id;
        w->token = req->token;
        w->deadline_ms = req->timeout_ms > 0 ? now_ms() + (uint64_t)req->timeout_ms : 0;
        w->next = d.waits;
        d.waits = w;
        d.n_waits++;
}

/* ListProcesses answers in pages, each one message: the first request
 * takes a snapshot of the tokens C may see, and each "continue": true
 * asks for the next page of it; "more" says whether one follows. A context
 * that was dropped between two pages is left out. */
static void op_list(client *c, kpa_request *req)
{
        if (!req->list_continue) {
                free(c->list);
                c->list = NULL;
                c->n_list = c->list_pos = 0;
                kpa_token *tokens = NULL;
                size_t n = 0, mine = 0;
                kpa_process_list(d.ctl, &tokens, &n, NULL);
                for (size_t k = 0; k < n; k++) {
                        uid_t owner = 0;
                        kpa_control_get_owner(d.ctl, &tokens[k], &owner);
                        if (c->uid == 0 || owner == c->uid)
                                tokens[mine++] = tokens[k];
                }
                c->list = tokens;
                c->n_list = mine;
        } else if (!c->list) {
                reply_error(c, req->id, EINVAL,
                            "bad request: \"continue\" asks for the next page of a listing, and "
                            "none is under way on this connection");
                return;
        }
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(req->id, 0, "");
        json_object *a = json_object_new_array();
        json_object_object_add(r, "processes", a);
        /* room for the reply's own fields, "more" among them */
        size_t used = strlen(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN)) + 32;
        while (c->list_pos < c->n_list && !c->dead) {
                const kpa_token *t = &c->list[c->list_pos];
                uid_t owner = 0;
                if (kpa_control_get_owner(d.ctl, t, &owner) < 0) {
                        c->list_pos++; /* gone since the first page */
                        continue;
                }
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                kpa_process_get_state(d.ctl, t, &ctx, NULL);
                json_object *o = kpa_context_to_json(t, &ctx, owner);
                size_t len = strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) + 1;
                if (used + len > KPA_MSG_MAX && json_object_array_length(a) > 0) {
                        json_object_put(o);
                        break;
                }
                json_object_array_add(a, o);
                used += len;
                c->list_pos++;
        }
        bool more = c->list_pos < c->n_list;
        json_object_object_add(r, "more", json_object_new_boolean(more));
        if (!more) {
                free(c->list);
                c->list = NULL;
                c->n_list = c->list_pos = 0;
        }
        send_to(c, r, NULL, 0);
}

/* FindProcesses: the tokens that APP_ID[/RUNCONFIG] names among the
 * instances C may see (kpa_process_find). */
static void op_find(client *c, kpa_request *req)
{
        kpa_token *tokens = NULL;
        size_t n = 0;
        if (kpa_control_find(d.ctl, req->package, req->run_config, c->uid == 0 ? (uid_t)-1 : c->uid,
                             &tokens, &n) < 0) {
                const kpa_error *e = kpa_control_error(d.ctl);
                reply_error(c, req->id, e->code ? e->code : EIO, "%s", e->message);
                return;
        }
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(req->id, 0, "");
        json_object *a = json_object_new_array();
        json_object_object_add(r, "tokens", a);
        /* a name means a few instances; a reply holds about 1800 tokens */
        for (size_t k = 0; k < n && k < 1024; k++) {
                char ts[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(&tokens[k], ts);
                json_object_array_add(a, json_object_new_string(ts));
        }
        free(tokens);
        send_to(c, r, NULL, 0);
}

static void op_open_log(client *c, kpa_request *req)
{
        char path[PATH_MAX];
        if (kpa_control_log_path(d.ctl, &req->token, req->rotated, path, sizeof(path)) < 0) {
                reply_error(c, req->id, ENOENT,
                            "the process has no captured output (its stdout and stderr were given "
                            "by its starter)");
                return;
        }
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                reply_error(c, req->id, errno, "cannot open %s: %s", path, strerror(errno));
                return;
        }
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(req->id, 0, "");
        json_object_object_add(r, "path", json_object_new_string(path));
        send_to(c, r, &fd, 1);
}

/* The first N of PIDS (at most their room) as a JSON array. */
static json_object *pids_to_json(const pid_t pids[64], int n)
{
        json_object *a = json_object_new_array();
        for (int k = 0; k < n && k < 64; k++)
                json_object_array_add(a, json_object_new_int(pids[k]));
        return a;
}

static void op_version(client *c, kpa_request *req)
{
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(req->id, 0, "");
        json_object_object_add(r, "version", json_object_new_string(PACKAGE_VERSION));
        json_object_object_add(r, "protocol", json_object_new_int(KPA_PROTOCOL_VERSION));
        send_to(c, r, NULL, 0);
}

static void op_stop(client *c, kpa_request *req)
{
        if (kpa_process_stop(d.ctl, &req->token, req->policy, kpa_control_error(d.ctl)) < 0) {
                const kpa_error *e = kpa_control_error(d.ctl);
                reply_error(c, req->id, e->code ? e->code : EIO, "%s", e->message);
                return;
        }
        reply_error(c, req->id, 0, "%s", "");
}

static void op_get_state(client *c, kpa_request *req)
{
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        kpa_process_get_state(d.ctl, &req->token, &ctx, NULL);
        reply_context(c, req->id, 0, &req->token, &ctx);
}

static void op_stop_all(client *c, kpa_request *req)
{
        int n = kpa_control_stop_all(d.ctl, req->policy);
        log_info("uid 0 stopped all %d processes (%s)", n,
                 req->policy == KPA_STOP_FORCED ? "forced" : "normal");
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(req->id, 0, "");
        json_object_object_add(r, "stopped", json_object_new_int(n));
        send_to(c, r, NULL, 0);
}

static void op_subscribe(client *c, kpa_request *req)
{
        c->subscribed = true;
        reply_error(c, req->id, 0, "%s", "");
}

static void reply_package_installed(client *c, int64_t id, int started, const pid_t pids[64],
                                    int restarted)
{
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(id, 0, "");
        json_object_object_add(r, "started", json_object_new_int(started < 0 ? 0 : started));
        json_object_object_add(r, "restarted", json_object_new_int(restarted));
        json_object_object_add(r, "pids", pids_to_json(pids, restarted));
        send_to(c, r, NULL, 0);
}

/* kpa-install's notice: restart the package's instances after an upgrade
 * (with "restart"), and start its autorun run configurations. */
static void op_package_installed(client *c, kpa_request *req)
{
        pid_t pids[64];
        int restarted = 0;
        store_forget_manifest(kpa_control_store(d.ctl), req->package);
        if (req->restart) {
                restarted =
                        kpa_control_stop_package(d.ctl, req->package, true, pids, ELEMENTSOF(pids));
                if (restarted)
                        log_info("uid %u upgraded %s: restarting its %d process(es)",
                                 (unsigned)c->uid, req->package, restarted);
        }
        reply_package_installed(c, req->id, autorun_package(req->package), pids, restarted);
}

/* The same notice while the daemon leaves or shuts down: answered (the
 * install itself is done), but nothing is started or restarted. */
static void op_package_installed_stopping(client *c, kpa_request *req)
{
        pid_t pids[64] = {0};
        store_forget_manifest(kpa_control_store(d.ctl), req->package);
        log_info("uid %u installed %s while kpa-execd exits: nothing started or restarted",
                 (unsigned)c->uid, req->package);
        reply_package_installed(c, req->id, 0, pids, 0);
}

static void op_stop_package(client *c, kpa_request *req)
{
        pid_t pids[64];
        int n = kpa_control_stop_package(d.ctl, req->package, false, pids, ELEMENTSOF(pids));
        log_info("uid 0 stopped the %d process(es) of %s", n, req->package);
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(req->id, 0, "");
        json_object_object_add(r, "stopped", json_object_new_int(n));
        json_object_object_add(r, "pids", pids_to_json(pids, n));
        send_to(c, r, NULL, 0);
}

/* ---- the request table ---- */

/* Who may send a request: SO_PEERCRED and SO_PEERGROUPS, never a field. */
typedef enum request_sender {
        SENDER_ANY,       /* whoever can connect (the socket's mode decides who can) */
        SENDER_MAY_START, /* root, or a member of group kpa (--group) */
        SENDER_ROOT,      /* root alone */
        SENDER_OWNER,     /* the uid that started the request's token, or root */
} request_sender;

/* The request's token: none; one that must exist (else ESRCH); or one
 * that may be gone, which is answered with NotExisting. */
typedef enum request_token { TOKEN_NONE, TOKEN_KNOWN, TOKEN_MAY_BE_GONE } request_token;

typedef void (*request_handler)(client *c, kpa_request *req);

/* One row per op. handle_request() applies the columns in this order:
 * sender, token, the daemon's state; then calls the handler. */
typedef struct request_row {
        request_sender sender;
        request_token token;
        const char *action; /* what a refused sender may not do: "may ACTION" */
        request_handler serve;
        /* while the daemon is leaving (--on-exit keep) or shutting down:
         * the handler, or NULL to refuse with ESHUTDOWN */
        request_handler serve_stopping;
} request_row;

static const request_row request_table[] = {
        [KPA_OP_VERSION] = {SENDER_ANY, TOKEN_NONE, NULL, op_version, op_version},
        [KPA_OP_START] = {SENDER_MAY_START, TOKEN_NONE, "start processes", op_start, NULL},
        [KPA_OP_STOP] = {SENDER_OWNER, TOKEN_KNOWN, "stop it", op_stop, op_stop},
        [KPA_OP_GET_STATE] = {SENDER_OWNER, TOKEN_MAY_BE_GONE, "see its state", op_get_state,
                              op_get_state},
        [KPA_OP_WAIT] = {SENDER_OWNER, TOKEN_MAY_BE_GONE, "wait for it", op_wait, op_wait},
        [KPA_OP_LIST] = {SENDER_ANY, TOKEN_NONE, NULL, op_list, op_list},
        [KPA_OP_STOP_ALL] = {SENDER_ROOT, TOKEN_NONE, "stop all processes", op_stop_all,
                             op_stop_all},
        [KPA_OP_SUBSCRIBE] = {SENDER_ANY, TOKEN_NONE, NULL, op_subscribe, op_subscribe},
        [KPA_OP_OPEN_LOG] = {SENDER_OWNER, TOKEN_KNOWN, "read its output", op_open_log,
                             op_open_log},
        [KPA_OP_PACKAGE_INSTALLED] = {SENDER_MAY_START, TOKEN_NONE,
                                      "report an installed package (PackageInstalled starts "
                                      "its autorun processes)",
                                      op_package_installed, op_package_installed_stopping},
        [KPA_OP_STOP_PACKAGE] = {SENDER_ROOT, TOKEN_NONE, "stop a package's processes",
                                 op_stop_package, op_stop_package},
        [KPA_OP_FIND] = {SENDER_ANY, TOKEN_NONE, NULL, op_find, op_find},
};

/* May C send ROW's op? Replies with the refusal when not. */
static bool sender_allowed(client *c, const request_row *row, kpa_request *req)
{
        switch (row->sender) {
        /* SENDER_OWNER: checked with the token, in token_allowed() */
        case SENDER_ANY:
        case SENDER_OWNER: return true;
        case SENDER_MAY_START:
                if (c->may_start)
                        return true;
                reply_error(c, req->id, EACCES,
                            "permission denied: only root and members of group \"%s\" may %s "
                            "(uid %u is neither)",
                            arg.group, row->action, (unsigned)c->uid);
                return false;
        case SENDER_ROOT:
                if (c->uid == 0)
                        return true;
                reply_error(c, req->id, EACCES,
                            "permission denied: only root may %s (uid %u is not root)", row->action,
                            (unsigned)c->uid);
                return false;
        }
        return false;
}

/* The token of REQ, checked as ROW asks: known (or allowed to be gone),
 * and C's unless C is root. Replies with the refusal when not. */
static bool token_allowed(client *c, const request_row *row, kpa_request *req)
{
        if (row->token == TOKEN_NONE)
                return true;
        int q = check_owner(c, &req->token);
        if (q == -ESRCH && row->token == TOKEN_MAY_BE_GONE)
                return true;
        if (q == -ESRCH) {
                reply_error(c, req->id, ESRCH, "%s", KPA_NO_SUCH_INSTANCE);
                return false;
        }
        if (q == -EACCES && row->sender == SENDER_OWNER) {
                reply_error(c, req->id, EACCES,
                            "permission denied: the process belongs to another user; only its "
                            "owner and root may %s",
                            row->action);
                return false;
        }
        return true;
}

/* The daemon's own state: serving, or exiting after a SIGTERM or SIGINT,
 * either leaving its instances running (--on-exit keep) or stopping them. */
static request_handler handler_now(client *c, const request_row *row, kpa_request *req)
{
        if (!d.stopping)
                return row->serve;
        if (row->serve_stopping)
                return row->serve_stopping;
        if (d.keep)
                reply_error(c, req->id, ESHUTDOWN,
                            "kpa-execd is exiting and leaving its processes running for the next "
                            "kpa-execd to adopt (--on-exit keep): it takes no %s now; send it "
                            "again once kpa-execd is back",
                            kpa_request_op_name(req->op));
        else
                reply_error(c, req->id, ESHUTDOWN,
                            "kpa-execd is shutting down (it stops its processes, then exits): "
                            "it takes no %s now",
                            kpa_request_op_name(req->op));
        return NULL;
}

static void handle_request(client *c, kpa_request *req)
{
        log_debug("uid %u: %s", (unsigned)c->uid, kpa_request_op_name(req->op));
        const request_row *row =
                (size_t)req->op < ELEMENTSOF(request_table) ? &request_table[req->op] : NULL;
        if (!row || !row->serve) {
                reply_error(c, req->id, EINVAL, "unknown request");
                return;
        }
        if (!sender_allowed(c, row, req) || !token_allowed(c, row, req))
                return;
        request_handler serve = handler_now(c, row, req);
        if (serve)
                serve(c, req);
}

/* One datagram from C. Every outcome answers or drops the client; every
 * fd that came with the datagram is either the request's or closed. */
void client_readable(client *c)
{
        int fds[KPA_MSG_FDS_MAX];
        size_t n_fds = 0;
        ssize_t len = kpa_msg_recv(c->fd, d.buf, fds, ELEMENTSOF(fds), &n_fds);
        if (len == -EAGAIN || len == -EINTR)
                return;
        c->active_ms = now_ms();
        if (len == 0 || len == -ECONNRESET) {
                drop_client(c);
                return;
        }
        if (len < 0) {
                if (len == -EMSGSIZE)
                        reply_error(c, 0, EMSGSIZE,
                                    "message too large (the limit is %d bytes and %d fds)",
                                    KPA_MSG_MAX, KPA_MSG_FDS_MAX);
                else if (len == -EBADMSG)
                        reply_error(c, 0, EBADMSG, "empty message");
                else
                        drop_client(c);
                return;
        }
        kpa_request req;
        kpa_error err;
        int q = kpa_request_parse(d.buf, (size_t)len, fds, n_fds, &req, &err);
        if (q < 0) {
                log_debug("uid %u: bad request: %s", (unsigned)c->uid, err.message);
                reply_error(c, req.id, -q, "bad request: %s", err.message);
                return;
        }
        handle_request(c, &req);
        kpa_request_free(&req);
}

/* ---- events from the controller ---- */

void on_state(void *userdata, const kpa_token *t, const kpa_process_context *ctx)
{
        if (ctx->state != KPA_PROCESS_CREATED && ctx->state != KPA_PROCESS_PREPARED)
                for (pending_start **pp = &d.starts; *pp; pp = &(*pp)->next)
                        if (memcmp(&(*pp)->token, t, sizeof(*t)) == 0) {
                                pending_start *ps = *pp;
                                *pp = ps->next;
                                pending_done(ps->c);
                                start_done(ps, t, ctx); /* may drop the client */
                                free(ps);
                                break;
                        }
        uid_t owner = 0;
        bool known = kpa_control_get_owner(d.ctl, t, &owner) == 0;
        if (ctx->state == KPA_PROCESS_FAILED || ctx->state == KPA_PROCESS_FINISHED) {
                char ts[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(t, ts);
                log_info("%s %s/%s: %s: %s", ts, ctx->app_id, ctx->run_config_id,
                         kpa_process_state_name(ctx->state), ctx->message);
                if (ctx->restart_in_ms)
                        log_info("restarting %s/%s in %.3g s after %s, restart %u", ctx->app_id,
                                 ctx->run_config_id, ctx->restart_in_ms / 1000.0, ctx->message,
                                 ctx->restarts + 1);
        }
        bool has_subscribers = false;
        for (client *c = d.clients; c; c = c->next)
                has_subscribers = has_subscribers || c->subscribed;
        if (has_subscribers) {
                _cleanup_(json_object_putp) json_object *ev = json_object_new_object();
                json_object_object_add(ev, "event", json_object_new_string("StateChanged"));
                json_object_object_add(ev, "process", kpa_context_to_json(t, ctx, owner));
                for (client *c = d.clients, *next; c; c = next) {
                        next = c->next;
                        if (c->subscribed && (c->uid == 0 || (known && c->uid == owner)))
                                send_to(c, ev, NULL, 0);
                }
        }
        if (is_live_state(ctx->state))
                return;
        /* the waits for this process are over */
        for (pending_wait **pp = &d.waits; *pp;) {
                pending_wait *w = *pp;
                if (memcmp(&w->token, t, sizeof(*t)) != 0) {
                        pp = &w->next;
                        continue;
                }
                *pp = w->next;
                d.n_waits--;
                client *c = w->c;
                int64_t id = w->id;
                free(w);
                pending_done(c);
                reply_context(c, id, 0, t, ctx); /* may drop C, and its other waits */
                pp = &d.waits;
        }
}
