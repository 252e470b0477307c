/* uses.c: usesServices made real. A run configuration that another one of
 * its package lists in usesServices is a service: each of its instances
 * gets a listening unix stream socket as the handle named after its run
 * configuration, bound in a directory only kpa reaches (kpa-execd's
 * STATE_DIR/services, or a private temporary directory of a direct-mode
 * controller), so that kpa can connect to it later, and the listener
 * outlives a restart of the service (clients queue in its backlog). A client
 * gets, for each service it declares, a socket connected to that listener
 * as the handle of the same name; the service is started first when the use
 * says so (serviceActive: unless one runs already; child: always, for this
 * client alone). Nothing else can connect: the socket is in no sandbox, and
 * a client is connected only to what its run configuration declares.
 * Ordering at stop time (clients before their services) is process.c's,
 * from the tokens recorded here. */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "process-priv.h"
#include "util.h"

/* The run configuration id that USE of package M names, or NULL when it
 * names another package's. */
static const char *use_target(const kpa_manifest *m, const kpa_service_use *use)
{
        size_t len = strlen(m->application.id);
        if (strncmp(use->name, m->application.id, len) == 0 && use->name[len] == '/')
                return use->name + len + 1;
        return strchr(use->name, '/') ? NULL : use->name;
}

bool uses_is_service(const kpa_manifest *m, const char *rc_id)
{
        for (size_t k = 0; k < m->n_run_configs; k++)
                for (size_t j = 0; j < m->run_configs[k]->n_uses; j++) {
                        const char *t = use_target(m, m->run_configs[k]->uses[j]);
                        if (t && streq(t, rc_id))
                                return true;
                }
        return false;
}

/* The directory of the service sockets, made on first use: 0700, kpa's
 * alone. */
static int services_dir(kpa_control *ctl, kpa_error *err)
{
        if (ctl->services_fd >= 0)
                return ctl->services_fd;
        if (ctl->state_fd >= 0) {
                if (mkdirat(ctl->state_fd, "../services", 0700) < 0 && errno != EEXIST)
                        return kpa_error_set_errno(err, errno, "mkdir %s/services", ctl->state_dir);
                ctl->services_fd = openat(ctl->state_fd, "../services",
                                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (ctl->services_fd < 0)
                        return kpa_error_set_errno(err, errno, "open %s/services", ctl->state_dir);
                return ctl->services_fd;
        }
        const char *base = getenv("XDG_RUNTIME_DIR");
        if (!base || base[0] != '/' || access(base, W_OK) < 0)
                base = "/tmp";
        char *tmp = kpa_xasprintf("%s/kpa-services-XXXXXX", base);
        if (!mkdtemp(tmp)) {
                int e = errno;
                kpa_error_set_errno(err, e, "mkdtemp %s", tmp);
                free(tmp);
                return -e;
        }
        ctl->services_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ctl->services_fd < 0) {
                int e = errno;
                kpa_error_set_errno(err, e, "open %s", tmp);
                rmdir(tmp);
                free(tmp);
                return -e;
        }
        ctl->services_tmp = tmp;
        return ctl->services_fd;
}

/* The socket address of service instance S: through /proc/self/fd, so
 * that a long STATE_DIR still fits in sun_path. */
static socklen_t service_addr(int dirfd, const instance *s, struct sockaddr_un *a)
{
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&s->token, tok);
        memset(a, 0, sizeof(*a));
        a->sun_family = AF_UNIX;
        snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/%s", dirfd, tok);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

/* Give service instance S its listening socket, once: it is kept across
 * restarts. */
static int make_listener(kpa_control *ctl, instance *s, kpa_error *err)
{
        if (s->service_fd >= 0)
                return 0;
        int dirfd = services_dir(ctl, err);
        if (dirfd < 0)
                return dirfd;
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&s->token, tok);
        (void)unlinkat(dirfd, tok, 0); /* a stale one of an earlier life */
        struct sockaddr_un a;
        socklen_t len = service_addr(dirfd, s, &a);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "socket");
        if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, SOMAXCONN) < 0)
                return kpa_error_set_errno(err, errno, "the listening socket of %s/%s",
                                           s->ctx.app_id, s->ctx.run_config_id);
        s->service_fd = TAKE_FD(fd);
        s->is_service = true;
        return 0;
}

/* A new socket connected to service instance S's listener; -ECONNREFUSED
 * or -ENOENT when it has none (any more). */
static int connect_service(kpa_control *ctl, const instance *s, kpa_error *err)
{
        int dirfd = services_dir(ctl, err);
        if (dirfd < 0)
                return dirfd;
        struct sockaddr_un a;
        socklen_t len = service_addr(dirfd, s, &a);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "socket");
        if (connect(fd, (struct sockaddr *)&a, len) < 0) {
                int e = errno == EAGAIN ? ENOBUFS : errno;
                return kpa_error_set_errno(err, e, "connecting to the service %s/%s%s",
                                           s->ctx.app_id, s->ctx.run_config_id,
                                           e == ENOBUFS ? " (its backlog is full)" : "");
        }
        /* the client gets an ordinary blocking socket */
        if (fcntl(fd, F_SETFL, 0) < 0)
                return kpa_error_set_errno(err, errno, "fcntl");
        return TAKE_FD(fd);
}

/* A running instance of service RC_ID of PKG_ID (or one whose restart is
 * due: its listener waits meanwhile), connected to in *FD. NULL when none.
 * Only one of the same owner as the client, or of root: a supervisor's
 * users do not share their instances (stopping a service stops its
 * clients). */
static instance *find_service(kpa_control *ctl, const char *pkg_id, const char *rc_id, int *fd,
                              kpa_error *err)
{
        for (instance *s = ctl->list; s; s = s->next) {
                bool restarting = s->restart && s->restart->at_ms && s->service_fd >= 0;
                if ((!s->live && !restarting) || s->stop_normal || s->forced ||
                    (s->owner != ctl->owner && s->owner != 0) || !streq(s->ctx.app_id, pkg_id) ||
                    !streq(s->ctx.run_config_id, rc_id))
                        continue;
                if (!s->is_service && !s->adopted)
                        continue; /* started before anyone used it: no listener */
                int q = connect_service(ctl, s, err);
                if (q >= 0) {
                        *fd = q;
                        return s;
                }
        }
        return NULL;
}

static void add_handle(uses_handles *h, const char *name, int fd, bool owned)
{
        h->v = kpa_xrealloc(h->v, (h->n + 1) * sizeof(*h->v));
        h->v[h->n] = (kpa_user_handle){.name = name, .fd = fd};
        h->owned = kpa_xrealloc(h->owned, (h->n + 1) * sizeof(*h->owned));
        h->owned[h->n] = owned;
        h->n++;
}

void uses_handles_free(uses_handles *h)
{
        for (size_t k = 0; k < h->n; k++)
                if (h->owned[k])
                        close(h->v[k].fd);
        free(h->v);
        free(h->owned);
        *h = (uses_handles){0};
}

static bool has_handle(const uses_handles *h, const char *name)
{
        for (size_t k = 0; k < h->n; k++)
                if (streq(h->v[k].name, name))
                        return true;
        return false;
}

/* Start service T of package M for client I (started in the instance
 * tree of a direct-mode controller, or under a supervisor, where it stays
 * unless BOUND). */
static instance *start_service(kpa_control *ctl, instance *i, const kpa_manifest *m,
                               const kpa_run_config *t, bool bound, const kpa_start_options *opts)
{
        kpa_start_options o;
        kpa_start_options_init(&o);
        o.stdout_fd = opts->stdout_fd; /* direct mode: its output beside the client's */
        o.stderr_fd = opts->stderr_fd;
        o.stop_timeout_ms = opts->stop_timeout_ms;
        o.cgroup_parent = opts->cgroup_parent;
        kpa_token token;
        int q = kpa_control_launch(ctl, m->application.id, NULL, NULL, t->id, &o, &token);
        instance *s = process_find(ctl, &token);
        if (q < 0 || !s)
                return NULL;
        if (bound || ctl->state_fd < 0) {
                s->bound_to = i->token;
                s->has_bound = true;
        }
        return s;
}

static const char *use_type_name(kpa_use_type t)
{
        return t == KPA_USE_CHILD             ? "child"
               : t == KPA_USE_SERVICE_CAN_USE ? "serviceCanUse"
                                              : "serviceActive";
}

/* Connect client I to what usesServices[J] of RC names, starting it first
 * when the use says so. */
static int connect_use(kpa_control *ctl, instance *i, const kpa_manifest *m,
                       const kpa_run_config *rc, size_t j, const kpa_start_options *opts,
                       uses_handles *h)
{
        const kpa_service_use *use = rc->uses[j];
        const char *app = m->application.id;
        const char *target = use_target(m, use);
        if (!target)
                return process_fail_start(ctl, i, EOPNOTSUPP,
                                          "start of %s/%s: usesServices[%zu]: \"%s\" is a "
                                          "service of another package; kpa connects the "
                                          "services of the same package only",
                                          app, rc->id, j, use->name);
        const kpa_run_config *t = kpa_manifest_find_run_config(m, target);
        if (!t)
                return process_fail_start(ctl, i, ENOENT,
                                          "start of %s/%s: usesServices[%zu]: %s has no run "
                                          "configuration \"%s\"",
                                          app, rc->id, j, app, target);
        if (has_handle(h, t->id))
                return process_fail_start(ctl, i, EEXIST,
                                          "start of %s/%s: the handle \"%s\" is given already, "
                                          "and usesServices[%zu] names the service \"%s\" too",
                                          app, rc->id, t->id, j, t->id);
        kpa_error err;
        kpa_error_clear(&err);
        int fd = -1;
        instance *s = NULL;
        if (use->use_type != KPA_USE_CHILD)
                s = find_service(ctl, app, t->id, &fd, &err);
        if (!s && use->use_type == KPA_USE_SERVICE_CAN_USE)
                return process_fail_start(ctl, i, ESRCH,
                                          "start of %s/%s: the service \"%s\" is not running, "
                                          "and usesServices[%zu] (serviceCanUse) connects to a "
                                          "running service without starting it",
                                          app, rc->id, t->id, j);
        if (!s) {
                s = start_service(ctl, i, m, t, use->use_type == KPA_USE_CHILD, opts);
                if (!s || process_ended(s)) {
                        kpa_error why = ctl->last_error;
                        return process_fail_start(ctl, i, why.code ? why.code : EIO,
                                                  "start of %s/%s: its service \"%s\" (%s) could "
                                                  "not be started: %s",
                                                  app, rc->id, t->id, use_type_name(use->use_type),
                                                  why.message);
                }
                fd = connect_service(ctl, s, &err);
        }
        if (fd < 0)
                return process_fail_start(ctl, i, -fd, "start of %s/%s: %s", app, rc->id,
                                          err.message);
        add_handle(h, t->id, fd, true);
        i->services = kpa_xrealloc(i->services, (i->n_services + 1) * sizeof(*i->services));
        i->services[i->n_services++] = s->token;
        return 0;
}

int uses_prepare(kpa_control *ctl, instance *i, const kpa_manifest *m, const kpa_run_config *rc,
                 const kpa_start_options *opts, kpa_start_options *out, uses_handles *h)
{
        *out = *opts;
        *h = (uses_handles){0};
        free(i->services);
        i->services = NULL;
        i->n_services = 0;
        for (size_t k = 0; k < opts->n_handles; k++)
                add_handle(h, opts->handles[k].name, opts->handles[k].fd, false);
        if (uses_is_service(m, rc->id)) {
                if (has_handle(h, rc->id)) {
                        uses_handles_free(h);
                        return process_fail_start(ctl, i, EEXIST,
                                                  "start of %s/%s: the handle \"%s\" is given "
                                                  "already, and it is the service's own "
                                                  "listening socket",
                                                  m->application.id, rc->id, rc->id);
                }
                kpa_error err;
                int q = make_listener(ctl, i, &err);
                if (q < 0) {
                        uses_handles_free(h);
                        return process_fail_start(ctl, i, -q, "start of %s/%s: %s",
                                                  m->application.id, rc->id, err.message);
                }
                add_handle(h, rc->id, i->service_fd, false);
        }
        for (size_t j = 0; j < rc->n_uses; j++) {
                int q = connect_use(ctl, i, m, rc, j, opts, h);
                if (q < 0) {
                        uses_handles_free(h);
                        return q;
                }
        }
        out->handles = h->v;
        out->n_handles = h->n;
        /* listed after its services, as it starts after them */
        if (rc->n_uses > 0 && ctl->list != i) {
                instance **p = &ctl->list;
                while (*p && *p != i)
                        p = &(*p)->next;
                if (*p) {
                        *p = i->next;
                        i->next = ctl->list;
                        ctl->list = i;
                }
        }
        return 0;
}

bool uses_is_client_of(const instance *c, const instance *s)
{
        for (size_t k = 0; k < c->n_services; k++)
                if (memcmp(&c->services[k], &s->token, sizeof(s->token)) == 0)
                        return true;
        return false;
}

void uses_ended(kpa_control *ctl, instance *i)
{
        /* when it starts again, its listener waits for it */
        bool again = i->restart && i->restart->at_ms;
        if (!again && (i->is_service || i->adopted)) {
                kpa_error err;
                int dirfd = i->is_service || ctl->state_fd >= 0 ? services_dir(ctl, &err) : -1;
                if (dirfd >= 0) {
                        char tok[KPA_TOKEN_STRING_MAX];
                        kpa_token_to_string(&i->token, tok);
                        (void)unlinkat(dirfd, tok, 0);
                }
                closep(&i->service_fd);
                i->service_fd = -1;
                i->is_service = false;
        }
        /* the services started for it alone end with it (a restart of it
         * starts its own again) */
        bool stopped = false;
        for (instance *s = ctl->list; s; s = s->next)
                if (s->live && s->has_bound &&
                    memcmp(&s->bound_to, &i->token, sizeof(i->token)) == 0) {
                        process_stop_one(ctl, s, KPA_STOP_NORMAL);
                        stopped = true;
                }
        if (stopped)
                process_arm_timer(ctl);
}

void uses_close(kpa_control *ctl)
{
        closep(&ctl->services_fd);
        ctl->services_fd = -1;
        if (ctl->services_tmp) {
                (void)rmdir(ctl->services_tmp);
                free(ctl->services_tmp);
                ctl->services_tmp = NULL;
        }
}
