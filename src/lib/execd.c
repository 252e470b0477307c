/* execd.c: the supervising ExecutionManager service, kpa_execd_run()
 * (kpa/execd.h; DESIGN.md section 6). kpa-execd is this call behind option
 * parsing, daemonizing and its logging.
 *
 * One thread, one epoll loop: the listening socket, a signalfd, every
 * client connection, and the fd of the libkpa controller that does the
 * real work (kpa_control_open_local + kpa_control_supervise: the same
 * sandbox and state machine as kpa-run, with instances that outlive this
 * process and records in the state directory). This file owns the socket,
 * the clients (who they are: SO_PEERCRED and SO_PEERGROUPS, never a field
 * of a message; how many; when they idle), autorun, the declared sockets,
 * the netns pool, signals and the loop. What the requests do is
 * execd-requests.c's. It does not parse options, detach, or talk to
 * systemd: the caller does (the socket systemd passes arrives as
 * kpa_execd_config.listen_fd, READY=1 goes to its notify callback). */
#include "config.h"

#include "execd-priv.h"

execd_args arg;

execd_state d = {.listen_fd = -1, .signal_fd = -1, .epfd = -1, .reserve_fd = -1};

/* The pool of prepared network namespaces: a start with a new network
 * namespace (the default) enters one of these, made while the daemon was
 * idle, instead of making its own (330-500 us on its start path). Each is
 * taken by one start only and never given back; they are held as fds
 * alone (nothing is bind-mounted), so the kernel frees them when the
 * daemon exits, crashes included. Root's daemon only. */
static struct {
        int home_fd; /* the daemon's own network namespace; -1: no pool */
        int fds[NETNS_POOL_MAX];
        size_t n;
        size_t size; /* arg.netns_pool, within the open-file limit */
        bool broken; /* making one failed: starts make their own */
        uint64_t last_event_ms; /* the end of the last round with events */
} pool = {.home_fd = -1};

/* epoll tags: clients are their own pointer */
static char tag_listen, tag_signal, tag_control;

/* ---- logging ---- */

void logf_(int level, const char *fmt, ...)
{
        if (level > arg.log_level)
                return;
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        static const char *const names[] = {"error", "warning", "info", "debug"};
        if (arg.log)
                arg.log((kpa_execd_log_level)level, msg, arg.log_userdata);
        else
                fprintf(stderr, "kpa-execd: %s: %s\n", names[level], msg);
}

/* the caller's sd_notify(3), if it has one */
static void notify_(const char *state)
{
        if (arg.notify)
                arg.notify(state, arg.notify_userdata);
}

uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* May a message of RL's kind go out now? *SUPPRESSED: how many were held
 * back since the last one. */
static bool ratelimit_pass(ratelimit *rl, unsigned *suppressed)
{
        uint64_t now = now_ms();
        if (rl->used && now - rl->last_ms < 1000) {
                rl->suppressed++;
                return false;
        }
        rl->used = true;
        rl->last_ms = now;
        *suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}

/* ---- the socket ---- */

static int make_parent_dir(const char *path, kpa_error *err)
{
        _cleanup_free_ char *dir = kpa_xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "cannot create %s", dir);
        return 0;
}

static int open_socket(const char *path, kpa_error *err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return kpa_error_set(err, ENAMETOOLONG, "socket path %s is too long", path);
        memcpy(sa.sun_path, path, strlen(path));
        int q = make_parent_dir(path, err);
        if (q < 0)
                return q;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "socket");
        /* a socket file left by a daemon that died: replace it, but never
         * one that a living daemon answers on */
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return kpa_error_set(err, EADDRINUSE,
                                     "another kpa-execd is already listening on %s", path);
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return kpa_error_set(err, EEXIST, "%s exists and is not a socket", path);
                unlink(path);
        }
        mode_t old = umask(0117);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return kpa_error_set_errno(err, errno, "cannot bind %s", path);
        if (chmod(path, 0660) < 0 ||
            (d.have_kpa_gid && chown(path, 0, d.kpa_gid) < 0 && geteuid() == 0))
                log_warning("cannot set the owner or mode of %s: %s", path, strerror(errno));
        if (listen(fd, 128) < 0)
                return kpa_error_set_errno(err, errno, "cannot listen on %s", path);
        return TAKE_FD(fd);
}

/* ---- clients ---- */

static void epoll_add(int fd, void *tag)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
        epoll_ctl(d.epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Root, the kpa group as primary group, or (SO_PEERGROUPS, filled by the
 * kernel) as a supplementary group of the peer. */
static bool peer_in_kpa_group(int fd, gid_t gid)
{
        if (!d.have_kpa_gid)
                return false;
        if (gid == d.kpa_gid)
                return true;
        gid_t groups[NGROUPS_MAX];
        socklen_t len = sizeof(groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t k = 0; k < len / sizeof(gid_t); k++)
                if (groups[k] == d.kpa_gid)
                        return true;
        return false;
}

/* Listening pauses for MS (out of fds with no reserve to accept with):
 * a listening socket with connections waiting would wake the loop again at
 * once, and it would spin. */
static void pause_listening(uint64_t ms)
{
        if (d.listen_resume_ms)
                return;
        epoll_ctl(d.epfd, EPOLL_CTL_DEL, d.listen_fd, NULL);
        d.listen_resume_ms = now_ms() + ms;
}

static void resume_listening(void)
{
        if (!d.listen_resume_ms || now_ms() < d.listen_resume_ms)
                return;
        d.listen_resume_ms = 0;
        epoll_add(d.listen_fd, &tag_listen);
}

/* Live connections of UID, and of every user but root. */
static void count_connections(uid_t uid, size_t *of_uid, size_t *non_root)
{
        *of_uid = *non_root = 0;
        for (client *c = d.clients; c; c = c->next) {
                if (c->dead || c->uid == 0)
                        continue;
                (*non_root)++;
                if (c->uid == uid)
                        (*of_uid)++;
        }
}

/* Say why on the new connection FD (a reply with id 0, which a client
 * reads as the answer to its first request), then close it. */
static void refuse_connection(int fd, const struct ucred *cred, const char *fmt, ...)
        _printf_(3, 4);
static void refuse_connection(int fd, const struct ucred *cred, const char *fmt, ...)
{
        char msg[KPA_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        _cleanup_(json_object_putp) json_object *r = kpa_reply_new(0, EAGAIN, msg);
        (void)kpa_msg_send(fd, r, NULL, 0);
        /* a request the client sent already, left unread, would make it
         * see ECONNRESET instead of this answer: shut reading (no more can
         * come), take what came, then close */
        shutdown(fd, SHUT_RD);
        char b;
        while (recv(fd, &b, 1, MSG_DONTWAIT) > 0)
                ;
        close(fd);
        unsigned held;
        if (ratelimit_pass(&d.rl_refuse, &held))
                log_warning("refused a connection from pid %d uid %u: %s (%u more refused since "
                            "the last message)",
                            (int)cred->pid, (unsigned)cred->uid, msg, held);
}

static void add_client(int fd)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                unsigned held;
                if (ratelimit_pass(&d.rl_accept, &held))
                        log_warning("refusing a connection: SO_PEERCRED: %s", strerror(errno));
                close(fd);
                return;
        }
        /* root is never refused: whatever the others do, the administrator
         * can still list and stop */
        if (cred.uid != 0) {
                size_t mine, all;
                count_connections(cred.uid, &mine, &all);
                if (mine >= arg.max_per_user) {
                        refuse_connection(fd, &cred,
                                          "uid %u already has %zu connections open to "
                                          "kpa-execd, the most one user may have "
                                          "(--max-connections-per-user); close one, or "
                                          "try again later",
                                          (unsigned)cred.uid, mine);
                        return;
                }
                if (all >= d.max_clients) {
                        refuse_connection(fd, &cred,
                                          "kpa-execd already serves %zu connections, the "
                                          "most it takes from users other than root "
                                          "(--max-connections); try again later",
                                          all);
                        return;
                }
        }
        client *c = kpa_xcalloc(1, sizeof(*c));
        c->fd = fd;
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
        c->may_start = cred.uid == 0 || peer_in_kpa_group(fd, cred.gid);
        c->active_ms = now_ms();
        c->next = d.clients;
        d.clients = c;
        d.n_clients++;
        epoll_add(fd, c);
        log_debug("client pid %d uid %u connected", (int)c->pid, (unsigned)c->uid);
}

/* accept4 failed with EMFILE or ENFILE. The connection that waits would
 * wake the loop again and again: the reserved fd makes room to accept it.
 * Root's connection is served; anyone else's is closed at once. Returns
 * whether to go on accepting. */
static bool accept_without_fds(int e)
{
        unsigned held;
        if (d.reserve_fd < 0) {
                /* the reserve could not be had back: wait for fds to free */
                pause_listening(1000);
                if (ratelimit_pass(&d.rl_accept, &held))
                        log_error("out of file descriptors (%s): not accepting connections for "
                                  "a second (%u more such events since the last message)",
                                  strerror(e), held);
                return false;
        }
        closep(&d.reserve_fd);
        int fd = accept4(d.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        int accept_errno = errno;
        struct ucred cred = {.uid = (uid_t)-1};
        socklen_t len = sizeof(cred);
        bool root = fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                    cred.uid == 0;
        if (fd >= 0 && !root)
                close(fd);
        d.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return accept_errno == EINTR || accept_errno == ECONNABORTED;
        if (ratelimit_pass(&d.rl_accept, &held))
                log_error("out of file descriptors (%s): %s a connection from pid %d uid %u "
                          "(%u more such events since the last message)",
                          strerror(e), root ? "served root's last-resort" : "closed", (int)cred.pid,
                          (unsigned)cred.uid, held);
        if (root)
                add_client(fd);
        return true;
}

static void accept_clients(void)
{
        for (;;) {
                int fd = accept4(d.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd >= 0) {
                        add_client(fd);
                        continue;
                }
                int e = errno;
                if (e == EINTR || e == ECONNABORTED)
                        continue;
                if (e == EAGAIN)
                        return;
                if (e == EMFILE || e == ENFILE) {
                        if (accept_without_fds(e))
                                continue;
                        return;
                }
                /* anything else (ENOBUFS, ENOMEM): do not spin on it */
                unsigned held;
                if (ratelimit_pass(&d.rl_accept, &held))
                        log_warning("accept: %s (%u more since the last message)", strerror(e),
                                    held);
                pause_listening(100);
                return;
        }
}

/* A pending start or wait of C got its reply. */
void pending_done(client *c)
{
        if (c->pending && --c->pending == 0)
                c->active_ms = now_ms();
}

/* Close C's connection and forget what it waits for. C itself is freed by
 * reap_clients(), once the loop's round is over. */
void drop_client(client *c)
{
        if (c->dead)
                return;
        for (pending_start **pp = &d.starts; *pp;) {
                if ((*pp)->c == c) {
                        pending_start *ps = *pp;
                        *pp = ps->next;
                        free(ps);
                        continue;
                }
                pp = &(*pp)->next;
        }
        for (pending_wait **pp = &d.waits; *pp;) {
                if ((*pp)->c == c) {
                        pending_wait *w = *pp;
                        *pp = w->next;
                        free(w);
                        d.n_waits--;
                        continue;
                }
                pp = &(*pp)->next;
        }
        epoll_ctl(d.epfd, EPOLL_CTL_DEL, c->fd, NULL);
        closep(&c->fd);
        c->fd = -1;
        c->dead = true;
        c->subscribed = false;
        c->pending = 0;
        d.n_clients--;
        log_debug("client pid %d disconnected", (int)c->pid);
}

static void reap_clients(void)
{
        for (client **pp = &d.clients; *pp;) {
                client *c = *pp;
                if (!c->dead) {
                        pp = &c->next;
                        continue;
                }
                *pp = c->next;
                free(c->list);
                free(c);
        }
}

/* When C is dropped for idling (0: never): a connection that waits for
 * nothing (no pending start or wait, no subscription) may stay quiet for
 * --idle-timeout. Root's never is. */
static uint64_t idle_deadline(const client *c)
{
        if (c->dead || c->uid == 0 || c->subscribed || c->pending)
                return 0;
        return c->active_ms + (uint64_t)arg.idle_s * 1000;
}

static void expire_idle(void)
{
        uint64_t now = now_ms();
        for (client *c = d.clients; c; c = c->next) {
                uint64_t deadline = idle_deadline(c);
                if (deadline && deadline <= now) {
                        log_debug("client pid %d uid %u: idle for %u s; closing its connection",
                                  (int)c->pid, (unsigned)c->uid, arg.idle_s);
                        drop_client(c);
                }
        }
}

static int netns_take(void *userdata)
{
        (void)userdata;
        return pool.n ? pool.fds[--pool.n] : -1;
}

static bool netns_pool_wants(void)
{
        return pool.home_fd >= 0 && !pool.broken && !d.stopping && pool.n < pool.size;
}

static void netns_pool_fill_one(void)
{
        int fd = kpa_sandbox_netns_new(pool.home_fd);
        if (fd == -ENOTRECOVERABLE) { /* cannot be: setns into our own */
                log_error("cannot return to the daemon's network namespace after making one "
                          "for the pool");
                abort();
        }
        if (fd < 0) {
                log_warning("cannot make a network namespace for the pool (%s): each start "
                            "makes its own",
                            strerror(-fd));
                pool.broken = true;
                return;
        }
        pool.fds[pool.n++] = fd;
}

static void netns_pool_open(void)
{
        /* its fds come out of the half of the open-file limit that is not
         * for connections: one namespace per 64 open files at most */
        pool.size = arg.netns_pool;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            pool.size > rl.rlim_cur / 64)
                pool.size = rl.rlim_cur / 64;
        if (geteuid() != 0 || pool.size == 0)
                return;
        pool.home_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (pool.home_fd < 0)
                log_warning("cannot open /proc/thread-self/ns/net (%s): no network namespace pool",
                            strerror(errno));
        else
                kpa_sandbox_set_netns_source(netns_take, NULL);
}

static void netns_pool_close(void)
{
        kpa_sandbox_set_netns_source(NULL, NULL);
        while (pool.n)
                close(pool.fds[--pool.n]);
        closep(&pool.home_fd);
        pool.home_fd = -1;
}

/* The epoll timeout: until the next wait deadline, idle deadline or the
 * end of a pause in listening, the next check of the declared sockets, or
 * the end of a quiet spell when the pool wants a namespace: it is refilled
 * only while no client is served, so that the making (0.3-1 ms) never
 * delays a request of a busy daemon. */
static uint64_t sockets_deadline(void);

static int next_timeout(void)
{
        uint64_t next = d.listen_resume_ms;
        uint64_t sockets = sockets_deadline();
        if (sockets && (!next || sockets < next))
                next = sockets;
        if (netns_pool_wants() && (!next || pool.last_event_ms + NETNS_QUIET_MS < next))
                next = pool.last_event_ms + NETNS_QUIET_MS;
        if (d.stopping && d.keep && (!next || d.keep_deadline_ms < next))
                next = d.keep_deadline_ms;
        for (pending_wait *w = d.waits; w; w = w->next)
                if (w->deadline_ms && (!next || w->deadline_ms < next))
                        next = w->deadline_ms;
        for (client *c = d.clients; c; c = c->next) {
                uint64_t deadline = idle_deadline(c);
                if (deadline && (!next || deadline < next))
                        next = deadline;
        }
        if (!next)
                return -1;
        uint64_t now = now_ms();
        return next > now ? (int)(next - now) : 0;
}

/* A record of the state directory that could not be written: a restarted
 * kpa-execd would not know the latest state of that process. */
static void log_record_errors(void)
{
        kpa_error err;
        unsigned n = kpa_control_take_record_error(d.ctl, &err);
        if (!n)
                return;
        unsigned held;
        if (!ratelimit_pass(&d.rl_record, &held)) {
                d.rl_record.suppressed += n - 1;
                return;
        }
        unsigned more = n - 1 + held;
        if (more)
                log_error("%s (and %u more record%s not written since the last message)",
                          err.message, more, more == 1 ? "" : "s");
        else
                log_error("%s", err.message);
}

static void expire_waits(void)
{
        uint64_t now = now_ms();
        for (pending_wait **pp = &d.waits; *pp;) {
                pending_wait *w = *pp;
                if (!w->deadline_ms || w->deadline_ms > now) {
                        pp = &w->next;
                        continue;
                }
                *pp = w->next;
                d.n_waits--;
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                kpa_process_get_state(d.ctl, &w->token, &ctx, NULL);
                client *c = w->c;
                pending_done(c);
                reply_context(c, w->id, ETIMEDOUT, &w->token, &ctx);
                free(w);
                pp = &d.waits;
        }
}

/* ---- autorun ---- */

static bool has_live_instance(const char *pkg_id, const char *rc_id)
{
        kpa_token *tokens = NULL;
        size_t n = 0;
        bool found = false;
        kpa_process_list(d.ctl, &tokens, &n, NULL);
        for (size_t k = 0; k < n && !found; k++) {
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                kpa_process_get_state(d.ctl, &tokens[k], &ctx, NULL);
                found = is_live_state(ctx.state) && streq(ctx.app_id, pkg_id) &&
                        streq(ctx.run_config_id, rc_id);
        }
        free(tokens);
        return found;
}

/* Whether RC is started by a connection to one of its sockets. */
static bool socket_activated(const kpa_run_config *rc)
{
        for (size_t k = 0; k < rc->n_sockets; k++)
                if (rc->sockets[k]->activate)
                        return true;
        return false;
}

/* Make the declared sockets of PKG_ID match what is installed (all of
 * them go with the package). */
static void sync_sockets(const char *pkg_id)
{
        kpa_error err;
        kpa_error_clear(&err);
        if (kpa_control_sockets_sync(d.ctl, pkg_id, &err) < 0)
                log_error("sockets: %s", err.message);
}

/* Start every autorun run configuration of PKG_ID that is not running
 * (those with an "activate" socket wait for their first connection). */
int autorun_package(const char *pkg_id)
{
        kpa_store *store = kpa_control_store(d.ctl);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error err;
        sync_sockets(pkg_id);
        if (kpa_store_load_manifest(store, pkg_id, &m, &err) < 0) {
                if (err.code == ENOENT) {
                        /* removed: its sockets went above, and a restart
                         * that is due would only fail now */
                        (void)kpa_control_stop_package(d.ctl, pkg_id, false, NULL, 0);
                        kpa_control_forget_package(d.ctl, pkg_id); /* its kept cgroups */
                        return 0;
                }
                log_warning("autorun: %s", err.message);
                return -err.code;
        }
        int started = 0;
        for (size_t k = 0; k < m->n_run_configs; k++) {
                const kpa_run_config *rc = m->run_configs[k];
                if (!rc->autorun || socket_activated(rc) || has_live_instance(pkg_id, rc->id))
                        continue;
                kpa_control_set_owner(d.ctl, 0);
                kpa_token t;
                if (kpa_process_start(d.ctl, pkg_id, rc->id, NULL, &t,
                                      kpa_control_error(d.ctl)) < 0) {
                        log_error("autorun of %s/%s failed: %s", pkg_id, rc->id,
                                  kpa_control_error(d.ctl)->message);
                        continue;
                }
                log_info("autorun: started %s/%s", pkg_id, rc->id);
                started++;
        }
        return started;
}

static void autorun_all(void)
{
        char **ids = NULL;
        size_t n = 0;
        kpa_error err;
        if (kpa_store_list(kpa_control_store(d.ctl), &ids, &n, &err) < 0) {
                log_warning("autorun: cannot list the store: %s", err.message);
                return;
        }
        for (size_t k = 0; k < n; k++)
                autorun_package(ids[k]);
        kpa_strv_free(ids);
}

/* ---- declared sockets: activation and the never-accepted warning ---- */

#define UNACCEPTED_WARN_MS 5000

static bool is_socket_tag(const void *tag)
{
        for (declared_socket *s = kpa_control_sockets(d.ctl); s; s = s->next)
                if (s == tag)
                        return true;
        return false;
}

static void watch_socket(declared_socket *s, bool on)
{
        if (s->watched == on)
                return;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        if (epoll_ctl(d.epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->fd, &ev) == 0 || !on)
                s->watched = on;
}

/* A connection on an "activate" socket: start its run configuration. */
static void socket_activate(declared_socket *s)
{
        watch_socket(s, false);
        if (has_live_instance(s->app_id, s->rc_id))
                return;
        kpa_control_set_owner(d.ctl, 0);
        kpa_token t;
        if (kpa_control_start_async(d.ctl, s->app_id, s->rc_id, NULL, &t) < 0) {
                log_error("activation of %s/%s by a connection to %s failed: %s", s->app_id,
                          s->rc_id, s->listen, kpa_control_error(d.ctl)->message);
                s->activate_after_ms = now_ms() + 1000;
                return;
        }
        log_info("activation: a connection to %s (%s) started %s/%s", s->name, s->listen,
                 s->app_id, s->rc_id);
}

/* Once per round: watch the "activate" sockets of run configurations that
 * do not run; warn once about a socket whose connections wait for
 * UNACCEPTED_WARN_MS while its instance runs (an application that ignores
 * LISTEN_FDS and never accepts on the socket it was given). */
static void sockets_tick(void)
{
        uint64_t now = now_ms();
        for (declared_socket *s = kpa_control_sockets(d.ctl); s; s = s->next) {
                bool live = has_live_instance(s->app_id, s->rc_id);
                s->live = live;
                watch_socket(s, s->activate && !live && !d.stopping &&
                                        now >= s->activate_after_ms);
                if (!live || s->warned || !kpa_socket_has_pending(s->fd)) {
                        s->pending_since_ms = 0;
                        continue;
                }
                if (!s->pending_since_ms)
                        s->pending_since_ms = now;
                else if (now - s->pending_since_ms >= UNACCEPTED_WARN_MS) {
                        s->warned = true;
                        log_warning("%s/%s: connections to its socket \"%s\" (%s) have waited "
                                    "%d s and were never accepted: does the application take "
                                    "its sockets from LISTEN_FDS (sd_listen_fds)? (python3 -m "
                                    "http.server, for one, ignores inherited sockets)",
                                    s->app_id, s->rc_id, s->name, s->listen,
                                    UNACCEPTED_WARN_MS / 1000);
                }
        }
}

/* The next sockets_tick that matters: in a second while a socket of a
 * running instance may still earn its warning, or when a failed
 * activation may be tried again; else none (0). A start or an end wakes
 * the loop anyway. */
static uint64_t sockets_deadline(void)
{
        uint64_t next = 0, now = now_ms();
        for (declared_socket *s = kpa_control_sockets(d.ctl); s; s = s->next) {
                uint64_t t = 0;
                if (s->activate_after_ms > now)
                        t = s->activate_after_ms;
                else if (!s->warned && s->live)
                        t = now + 1000;
                if (t && (!next || t < next))
                        next = t;
        }
        return next;
}

static void sockets_sync_all(void)
{
        char **ids = NULL;
        size_t n = 0;
        kpa_error err;
        if (kpa_store_list(kpa_control_store(d.ctl), &ids, &n, &err) < 0)
                return;
        for (size_t k = 0; k < n; k++)
                sync_sockets(ids[k]);
        kpa_strv_free(ids);
}

/* ---- signals ---- */

/* --on-exit keep: exit and leave the instances running, for the next
 * daemon to adopt from their records (systemd sends the same SIGTERM for a
 * restart as for a stop). Only the starts under way are waited for, so
 * that their clients get the reply that comes at Running; a second signal
 * exits at once. */
static void begin_leaving(void)
{
        if (d.stopping) {
                log_info("a second signal: exiting now");
                d.keep_deadline_ms = now_ms();
                return;
        }
        notify_("STOPPING=1");
        d.stopping = true;
        d.keep_deadline_ms = now_ms() + KEEP_SETTLE_MS;
        size_t n = 0;
        for (pending_start *ps = d.starts; ps; ps = ps->next)
                n++;
        if (n)
                log_info("exiting once %zu start%s under way %s answered", n, n == 1 ? "" : "s",
                         n == 1 ? "is" : "are");
}

static void begin_shutdown(bool forced)
{
        if (d.keep) {
                begin_leaving();
                return;
        }
        if (!d.stopping)
                notify_("STOPPING=1");
        d.stopping = true;
        d.forced = d.forced || forced;
        size_t n = kpa_control_live_count(d.ctl);
        log_info("stopping %zu process%s (%s stop), then exiting", n, n == 1 ? "" : "es",
                 d.forced ? "forced" : "normal");
        kpa_control_stop_all(d.ctl, d.forced ? KPA_STOP_FORCED : KPA_STOP_NORMAL);
}

static void signal_readable(void)
{
        struct signalfd_siginfo si;
        while (read(d.signal_fd, &si, sizeof(si)) == sizeof(si)) {
                switch (si.ssi_signo) {
                case SIGTERM:
                case SIGINT:
                        begin_shutdown(d.stopping); /* a second one: forced, or now */
                        break;
                case SIGHUP:
                        log_info("SIGHUP: re-reading the store for autorun run configurations");
                        if (!d.stopping && arg.autorun)
                                autorun_all();
                        break;
                default: break;
                }
        }
}

/* ---- main ---- */
/* The loop is over: after SIGTERM, every instance ended (stop), or the
 * starts under way answered or given up on (keep). */
static bool shutdown_done(void)
{
        if (!d.stopping)
                return false;
        if (d.keep)
                return !d.starts || now_ms() >= d.keep_deadline_ms;
        return kpa_control_live_count(d.ctl) == 0;
}

/* --on-exit auto: keep when systemd is PID 1 (sd_booted(3)'s test), since
 * systemd sends the same SIGTERM for a restart as for a stop. */
static void resolve_on_exit(void)
{
        static const char *const names[] = {"auto", "keep", "stop"};
        bool systemd = kpa_systemd_booted();
        d.keep = arg.on_exit == ON_EXIT_KEEP || (arg.on_exit == ON_EXIT_AUTO && systemd);
        log_info("on SIGTERM or SIGINT: %s (--on-exit %s%s)",
                 d.keep ? "exit and leave the processes running for the next kpa-execd"
                        : "stop every process, then exit",
                 names[arg.on_exit],
                 arg.on_exit != ON_EXIT_AUTO ? ""
                 : systemd                   ? ": systemd is PID 1"
                                             : ": systemd is not PID 1");
}

void kpa_execd_config_init(kpa_execd_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->struct_size = sizeof(*cfg);
        cfg->listen_fd = -1;
        cfg->state_dir = KPA_EXECD_STATE_DIR_DEFAULT;
        cfg->group = KPA_EXECD_GROUP_DEFAULT;
        cfg->on_exit = KPA_EXECD_ON_EXIT_AUTO;
        cfg->autorun = true;
        cfg->max_connections = KPA_EXECD_MAX_CONNECTIONS_DEFAULT;
        cfg->max_connections_per_user = KPA_EXECD_MAX_CONNECTIONS_PER_USER_DEFAULT;
        cfg->idle_timeout_s = KPA_EXECD_IDLE_TIMEOUT_DEFAULT;
        cfg->netns_pool = KPA_EXECD_NETNS_POOL_DEFAULT;
        cfg->log_level = KPA_EXECD_LOG_INFO;
}

int kpa_execd_protocol_version(void)
{
        return KPA_PROTOCOL_VERSION;
}

int kpa_execd_prepare(kpa_error *err)
{
        kpa_error_clear(err);
        kpa_cgroup_driver driver;
        int r = kpa_cgroup_driver_get(&driver, err);
        if (r < 0)
                return r;
        /* cgroup v2 without systemd: into a leaf of its cgroup (called
         * again, it finds itself there), so that kpa_control_supervise()
         * can make the instances below it */
        _cleanup_free_ char *cgroup_parent = NULL;
        return kpa_cgroup_become_supervisor(&cgroup_parent, err);
}

/* CFG (checked) into arg, with the defaults where it is shorter */
static int config_in(const kpa_execd_config *cfg, kpa_error *err)
{
        kpa_execd_config full;
        kpa_execd_config_init(&full);
        int r = kpa_struct_in(&full, cfg, sizeof(full), "kpa_execd_config", err);
        if (r < 0)
                return r;
        if (!full.state_dir || full.state_dir[0] != '/')
                return kpa_error_set(err, EINVAL, "state directory \"%s\" is not an absolute path",
                                     full.state_dir ? full.state_dir : "");
        if (full.netns_pool > NETNS_POOL_MAX)
                return kpa_error_set(err, EINVAL, "netns pool %u is larger than %d",
                                     full.netns_pool, NETNS_POOL_MAX);
        if ((unsigned)full.on_exit > KPA_EXECD_ON_EXIT_STOP ||
            (unsigned)full.log_level > KPA_EXECD_LOG_DEBUG)
                return kpa_error_set(err, EINVAL,
                                     "kpa_execd_config: on_exit or log_level out of range");
        arg.socket_path = full.socket_path;
        arg.root = full.root;
        arg.state_dir = full.state_dir;
        arg.log_level = (int)full.log_level;
        arg.log = full.log;
        arg.log_userdata = full.log_userdata;
        arg.notify = full.notify;
        arg.notify_userdata = full.notify_userdata;
        arg.autorun = full.autorun;
        arg.keep_ended = full.keep_ended;
        arg.keep_ended_s = full.keep_ended_s;
        arg.log_max = full.log_max;
        arg.group = full.group ? full.group : GROUP_NAME;
        arg.max_clients = full.max_connections ? full.max_connections
                                               : KPA_EXECD_MAX_CONNECTIONS_DEFAULT;
        arg.max_per_user = full.max_connections_per_user
                                   ? full.max_connections_per_user
                                   : KPA_EXECD_MAX_CONNECTIONS_PER_USER_DEFAULT;
        arg.idle_s = full.idle_timeout_s ? full.idle_timeout_s : KPA_EXECD_IDLE_TIMEOUT_DEFAULT;
        arg.netns_pool = full.netns_pool;
        arg.on_exit = (on_exit_mode)full.on_exit;
        d.listen_fd = full.listen_fd;
        return 0;
}

int kpa_execd_run(const kpa_execd_config *cfg, kpa_error *err)
{
        static bool ran;
        kpa_error_clear(err);
        if (ran)
                return kpa_error_set(err, EBUSY, "kpa_execd_run: it runs once per process");
        int r = config_in(cfg, err);
        if (r < 0)
                return r;
        ran = true;
        if ((r = kpa_execd_prepare(err)) < 0)
                return r;
        struct group *g = getgrnam(arg.group);
        if (g) {
                d.kpa_gid = g->gr_gid;
                d.have_kpa_gid = true;
        } else if (!streq(arg.group, GROUP_NAME)) {
                return kpa_error_set(err, ENOENT,
                                     "there is no group \"%s\" (the group whose members may "
                                     "start processes)",
                                     arg.group);
        }
        /* connections from users other than root take at most half of the
         * fds; the rest is root's, the instances' and the reserve */
        struct rlimit rl;
        d.max_clients = arg.max_clients;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            d.max_clients > rl.rlim_cur / 2) {
                d.max_clients = rl.rlim_cur / 2;
                log_info("at most %zu connections from users other than root: half the limit "
                         "on open files (%llu)",
                         d.max_clients, (unsigned long long)rl.rlim_cur);
        }
        d.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (d.reserve_fd < 0)
                return kpa_error_set_errno(err, errno, "cannot open /dev/null");
        if ((r = kpa_control_open_local(arg.root, &d.ctl, err)) < 0)
                return r;
        /* the manifests that starts read, parsed once per version */
        store_cache_manifests(kpa_control_store(d.ctl), true);
        /* one daemon per state directory */
        if (mkdir(arg.state_dir, 0755) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "cannot create the state directory %s",
                                           arg.state_dir);
        _cleanup_free_ char *lock_path = kpa_xasprintf("%s/execd.lock", arg.state_dir);
        _cleanup_close_ int lock_fd =
                open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return kpa_error_set(err, EBUSY,
                                             "%s: another kpa-execd uses this state directory",
                                             lock_path);
                return kpa_error_set_errno(err, errno, "%s", lock_path);
        }
        kpa_control_set_observer(d.ctl, on_state, NULL);
        kpa_supervisor_config scfg = {
                .state_dir = arg.state_dir,
                .keep_ended_max = arg.keep_ended,
                .keep_ended_s = arg.keep_ended_s,
                .log_max_bytes = arg.log_max,
        };
        int adopted = kpa_control_supervise(d.ctl, &scfg, err);
        if (adopted < 0)
                return adopted;
        if (adopted > 0)
                log_info("adopted %d process%s still running from before", adopted,
                         adopted == 1 ? "" : "es");
        d.socket_activated = d.listen_fd >= 0;
        const char *path = kpa_execd_socket_path(arg.socket_path);
        if (d.listen_fd < 0) {
                d.listen_fd = open_socket(path, err);
                if (d.listen_fd < 0)
                        return d.listen_fd;
        } else {
                fcntl(d.listen_fd, F_SETFL, O_NONBLOCK);
        }
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        d.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        d.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (d.signal_fd < 0 || d.epfd < 0)
                return kpa_error_set_errno(err, errno, "signalfd/epoll");
        epoll_add(d.listen_fd, &tag_listen);
        epoll_add(d.signal_fd, &tag_signal);
        epoll_add(kpa_control_get_fd(d.ctl), &tag_control);
        kpa_sockets_set_watch_epoll(d.epfd);
        sockets_sync_all(); /* also without autorun: activation needs them */
        if (arg.autorun)
                autorun_all();
        log_info("listening on %s (state in %s, store %s)",
                 d.socket_activated ? "a socket from systemd" : path, arg.state_dir,
                 kpa_store_root(kpa_control_store(d.ctl)));
        resolve_on_exit();
        kpa_cgroup_driver driver;
        if (kpa_cgroup_driver_get(&driver, NULL) == 0) /* checked in kpa_execd_prepare() */
                log_info("cgroup driver: %s", kpa_cgroup_driver_name(driver));
        netns_pool_open();
        notify_("READY=1");

        while (!shutdown_done()) {
                struct epoll_event evs[32];
                int n = epoll_wait(d.epfd, evs, ELEMENTSOF(evs), next_timeout());
                if (n < 0 && errno != EINTR) {
                        log_error("epoll_wait: %s", strerror(errno));
                        break;
                }
                if (n > 0)
                        pool.last_event_ms = now_ms();
                else if (netns_pool_wants() && now_ms() >= pool.last_event_ms + NETNS_QUIET_MS)
                        netns_pool_fill_one(); /* quiet */
                for (int k = 0; k < n; k++) {
                        void *tag = evs[k].data.ptr;
                        if (tag == &tag_listen)
                                accept_clients();
                        else if (tag == &tag_signal)
                                signal_readable();
                        else if (tag == &tag_control)
                                kpa_control_dispatch(d.ctl, NULL);
                        else if (is_socket_tag(tag))
                                socket_activate(tag);
                        else {
                                /* a client: it may have been dropped by an
                                 * earlier event of this round */
                                for (client *c = d.clients; c; c = c->next)
                                        if (c == tag && !c->dead) {
                                                client_readable(c);
                                                break;
                                        }
                        }
                }
                kpa_control_dispatch(d.ctl, NULL);
                expire_waits();
                expire_idle();
                /* the reserve went to root's connection when fds ran out:
                 * have it back once there are fds again */
                if (d.reserve_fd < 0)
                        d.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                resume_listening();
                log_record_errors();
                sockets_tick();
                /* nothing of this round holds a client any more */
                reap_clients();
        }
        for (client *c = d.clients; c; c = c->next)
                drop_client(c);
        reap_clients();
        netns_pool_close();
        closep(&d.reserve_fd);
        if (!d.keep) {
                log_info("exiting");
                kpa_control_close(d.ctl);
        }
        if (!d.socket_activated)
                unlink(path);
        closep(&d.listen_fd);
        closep(&d.signal_fd);
        closep(&d.epfd);
        if (d.keep) {
                size_t n = kpa_control_live_count(d.ctl);
                log_info("leaving %zu process%s running; the next kpa-execd adopts them", n,
                         n == 1 ? "" : "es");
                /* No kpa_control_close(): it would kill them. Their records
                 * are up to date (each change is written as it happens), and
                 * the kernel closes the controller's fds. libkpa has no call
                 * that frees a controller and leaves its instances alone, so
                 * its memory is left to the exit too: _exit(), since a leak
                 * checker run at exit would report what the instances hold
                 * (they live in an mmap()ed pool that it does not scan) */
                _exit(EXIT_SUCCESS);
        }
        return 0;
}
