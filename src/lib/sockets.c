/* sockets.c: the listening sockets of extensions.KPA_sockets. It creates
 * them (TCP on a numeric address, unix sockets below
 * /run/kpa/sockets/APP_ID/), keeps them in a supervising controller so that
 * every start and restart of an instance gets the same socket (clients wait
 * in the backlog meanwhile), and puts them first in a start's handles. The
 * grant check is permissions.c's; when kpa-execd polls them (activation,
 * the never-accepted warning) is kpa-execd's. */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "kpa/handle.h"
#include "kpa/package.h"
#include "control-priv.h"
#include "sockets.h"
#include "util.h"

#define LISTEN_BACKLOG 128

/* kpa-execd's epoll set, which holds the watched sockets */
static int watch_epfd = -1;

void kpa_sockets_set_watch_epoll(int epfd)
{
        watch_epfd = epfd;
}

const char *kpa_sockets_dir(void)
{
        static char rootless[PATH_MAX];
        const char *d = getenv("KPA_SOCKETS_DIR");
        if (d && *d == '/')
                return d;
        /* rootless: /run/kpa is root's; the user's runtime directory is
         * the user's own */
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (geteuid() != 0 && xdg && *xdg == '/' &&
            (size_t)snprintf(rootless, sizeof(rootless), "%s/kpa-sockets", xdg) <
                    sizeof(rootless))
                return rootless;
        return KPA_SOCKETS_DIR;
}

static int open_tcp(const kpa_socket_decl *d, kpa_error *err)
{
        struct sockaddr_storage ss = {0};
        socklen_t len;
        bool v6 = strchr(d->address, ':') != NULL;
        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons(d->port);
                if (inet_pton(AF_INET6, d->address, &a->sin6_addr) != 1)
                        return kpa_error_set(err, EINVAL, "bad address");
                len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;
                a->sin_family = AF_INET;
                a->sin_port = htons(d->port);
                if (inet_pton(AF_INET, d->address, &a->sin_addr) != 1)
                        return kpa_error_set(err, EINVAL, "bad address");
                len = sizeof(*a);
        }
        _cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "socket");
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return kpa_error_set_errno(err, errno, "setsockopt SO_REUSEADDR");
        if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
                if (errno == EADDRINUSE)
                        return kpa_error_set(err, EADDRINUSE,
                                             "cannot bind %s: the address is in use (another "
                                             "program listens on it)",
                                             d->listen + 4);
                return kpa_error_set_errno(err, errno, "cannot bind %s", d->listen + 4);
        }
        if (listen(fd, LISTEN_BACKLOG) < 0)
                return kpa_error_set_errno(err, errno, "listen on %s", d->listen + 4);
        return TAKE_FD(fd);
}

/* mkdir -p of the directories of PATH below (and including) BASE. */
static int make_dirs(const char *base, const char *rel, kpa_error *err)
{
        _cleanup_free_ char *dir = kpa_xstrdup(base);
        if (mkdir(kpa_sockets_dir(), 0755) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "cannot create %s", kpa_sockets_dir());
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "cannot create %s", dir);
        for (const char *slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
                _cleanup_free_ char *sub =
                        kpa_xasprintf("%s/%.*s", base, (int)(slash - rel), rel);
                if (mkdir(sub, 0755) < 0 && errno != EEXIST)
                        return kpa_error_set_errno(err, errno, "cannot create %s", sub);
        }
        return 0;
}

static int open_unix(const char *app_id, const kpa_socket_decl *d, uid_t uid, gid_t gid,
                     kpa_error *err)
{
        _cleanup_free_ char *base = kpa_xasprintf("%s/%s", kpa_sockets_dir(), app_id);
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s", base, d->address);
        int q = make_dirs(base, d->address, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *spec = kpa_xasprintf("listen:unix:%s", path);
        kpa_error e;
        _cleanup_close_ int fd = kpa_handle_open_spec(spec, &e);
        if (fd < 0) {
                /* the message of handle-spec.c, without its "handle spec" prefix */
                const char *msg = strstr(e.message, "\": ");
                return kpa_error_set(err, e.code, "%s", msg ? msg + 3 : e.message);
        }
        if (chown(path, uid, gid) < 0 || chmod(path, 0666) < 0)
                return kpa_error_set_errno(err, errno, "cannot hand %s to uid %u", path,
                                           (unsigned)uid);
        return TAKE_FD(fd);
}

int kpa_socket_open_declared(const char *app_id, const char *rc_id, const kpa_socket_decl *d,
                             uid_t uid, gid_t gid, kpa_error *err)
{
        int fd = d->kind == KPA_SOCKET_TCP ? open_tcp(d, err) : open_unix(app_id, d, uid, gid, err);
        if (fd < 0)
                return kpa_error_prefix(err, "%s/%s: socket \"%s\" (%s)", app_id, rc_id, d->name,
                                        d->listen);
        /* off 0-2, as every handle */
        if (fd <= STDERR_FILENO) {
                int nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
                close(fd);
                if (nfd < 0)
                        return kpa_error_set_errno(err, errno, "fcntl");
                fd = nfd;
        }
        return fd;
}

static void remove_tree(int dirfd)
{
        DIR *d = fdopendir(dirfd);
        if (!d) {
                close(dirfd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                        remove_tree(sub);
                        (void)unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
                } else {
                        (void)unlinkat(dirfd, de->d_name, 0);
                }
        }
        closedir(d);
}

void kpa_sockets_remove_dir(const char *app_id)
{
        _cleanup_close_ int top = open(kpa_sockets_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top < 0)
                return;
        int dir = openat(top, app_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0)
                return;
        remove_tree(dir);
        (void)unlinkat(top, app_id, AT_REMOVEDIR);
}

bool kpa_socket_has_pending(int fd)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int kpa_socket_address(int fd, char *buf, size_t len, kpa_error *err)
{
        struct sockaddr_storage ss = {0};
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
                return kpa_error_set_errno(err, errno, "getsockname of fd %d", fd);
        char host[INET6_ADDRSTRLEN];
        if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
                inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
                snprintf(buf, len, "%s:%u", host, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
                inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
                snprintf(buf, len, "[%s]:%u", host, ntohs(a->sin6_port));
        } else if (ss.ss_family == AF_UNIX) {
                const struct sockaddr_un *a = (const struct sockaddr_un *)&ss;
                if (sl > offsetof(struct sockaddr_un, sun_path) && a->sun_path[0] == '\0')
                        snprintf(buf, len, "@%.*s",
                                 (int)(sl - offsetof(struct sockaddr_un, sun_path) - 1),
                                 a->sun_path + 1);
                else
                        snprintf(buf, len, "%s", a->sun_path);
        } else {
                return kpa_error_set(err, EAFNOSUPPORT,
                                     "fd %d is a socket of family %d, neither IP nor unix", fd,
                                     (int)ss.ss_family);
        }
        return 0;
}

/* ---- the list a controller keeps ---- */

static declared_socket *find(kpa_control *ctl, const char *app_id, const char *rc_id,
                             const char *name)
{
        for (declared_socket *s = ctl->sockets; s; s = s->next)
                if (streq(s->app_id, app_id) && streq(s->rc_id, rc_id) && streq(s->name, name))
                        return s;
        return NULL;
}

static declared_socket *add(kpa_control *ctl, const char *app_id, const char *rc_id,
                            const char *name, const char *listen, bool activate, int fd)
{
        declared_socket *s = kpa_xcalloc(1, sizeof(*s));
        s->app_id = kpa_xstrdup(app_id);
        s->rc_id = kpa_xstrdup(rc_id);
        s->name = kpa_xstrdup(name);
        s->listen = kpa_xstrdup(listen);
        s->activate = activate;
        s->fd = fd;
        s->next = ctl->sockets;
        ctl->sockets = s;
        return s;
}

static void free_one(declared_socket *s)
{
        free(s->app_id);
        free(s->rc_id);
        free(s->name);
        free(s->listen);
        closep(&s->fd);
        free(s);
}

/* Drop the sockets of APP_ID that KEEP says go (KEEP NULL: all). */
static void drop(kpa_control *ctl, const char *app_id, const kpa_manifest *keep)
{
        for (declared_socket **pp = &ctl->sockets; *pp;) {
                declared_socket *s = *pp;
                bool still = false;
                const kpa_run_config *rc =
                        keep ? kpa_manifest_find_run_config(keep, s->rc_id) : NULL;
                for (size_t k = 0; rc && k < rc->n_sockets; k++)
                        still |= streq(rc->sockets[k]->name, s->name) &&
                                 streq(rc->sockets[k]->listen, s->listen);
                if (!streq(s->app_id, app_id) || still) {
                        pp = &s->next;
                        continue;
                }
                *pp = s->next;
                if (s->watched && watch_epfd >= 0)
                        epoll_ctl(watch_epfd, EPOLL_CTL_DEL, s->fd, NULL);
                free_one(s);
        }
}

void sockets_free_all(kpa_control *ctl)
{
        while (ctl->sockets) {
                declared_socket *s = ctl->sockets;
                ctl->sockets = s->next;
                free_one(s);
        }
}

declared_socket *kpa_control_sockets(kpa_control *ctl)
{
        return ctl->sockets;
}

size_t kpa_control_declared_sockets(kpa_control *ctl, int *fds, const char **names, size_t max)
{
        size_t n = 0;
        for (const declared_socket *s = ctl->sockets; s; s = s->next, n++)
                if (n < max) {
                        fds[n] = s->fd;
                        names[n] = s->name;
                }
        return n;
}

void sockets_adopt(kpa_control *ctl, const char *app_id, const char *rc_id, const char *name,
                   const char *listen, int fd)
{
        declared_socket *s = find(ctl, app_id, rc_id, name);
        if (s) {
                close(fd);
                return;
        }
        add(ctl, app_id, rc_id, name, listen, false, fd);
}

/* The socket D of RC, kept in CTL: the one there, or a new one. */
static int kept_socket(kpa_control *ctl, const kpa_manifest *m, const kpa_run_config *rc,
                       const kpa_socket_decl *d, kpa_error *err)
{
        declared_socket *s = find(ctl, m->application.id, rc->id, d->name);
        if (s && streq(s->listen, d->listen)) {
                s->activate = d->activate;
                return s->fd;
        }
        if (s)
                drop(ctl, m->application.id, m); /* declared anew at another address */
        /* the package's uid owns a unix socket; rootless, the caller's own */
        uid_t uid = geteuid();
        gid_t gid = getegid();
        int q = uid == 0 ? kpa_store_get_app_uid(ctl->store, m->application.id, &uid, &gid, err) : 0;
        if (q < 0)
                return q;
        int fd = kpa_socket_open_declared(m->application.id, rc->id, d, uid, gid, err);
        if (fd < 0)
                return fd;
        return add(ctl, m->application.id, rc->id, d->name, d->listen, d->activate, fd)->fd;
}

int kpa_control_sockets_sync(kpa_control *ctl, const char *app_id, kpa_error *err)
{
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error e;
        if (kpa_store_load_manifest(ctl->store, app_id, &m, &e) < 0) {
                if (e.code == ENOENT) { /* removed: its sockets go with it */
                        drop(ctl, app_id, NULL);
                        kpa_sockets_remove_dir(app_id);
                        return 0;
                }
                *err = e; /* unreadable for now: what is kept stays */
                return -e.code;
        }
        drop(ctl, app_id, m);
        int first = 0;
        for (size_t i = 0; i < m->n_run_configs; i++) {
                const kpa_run_config *rc = m->run_configs[i];
                bool activated = false;
                for (size_t k = 0; k < rc->n_sockets; k++)
                        activated |= rc->sockets[k]->activate;
                /* the others' are made by their first start */
                if (rc->n_sockets == 0 || !(rc->autorun || activated))
                        continue;
                int q = kpa_store_check_sockets(ctl->store, m, rc, &e);
                for (size_t k = 0; q >= 0 && k < rc->n_sockets; k++)
                        q = kept_socket(ctl, m, rc, rc->sockets[k], &e);
                if (q < 0 && !first) {
                        first = q;
                        *err = e;
                }
        }
        return first;
}

int sockets_for_start(kpa_control *ctl, const kpa_manifest *m, const kpa_run_config *rc,
                      const kpa_start_options *opts, kpa_start_options *out,
                      kpa_user_handle **handles, size_t *n_declared, kpa_error *err)
{
        *out = *opts;
        *handles = NULL;
        *n_declared = 0;
        if (rc->n_sockets == 0)
                return 0;
        int q = kpa_store_check_sockets(ctl->store, m, rc, err);
        if (q < 0)
                return q;
        for (size_t k = 0; k < rc->n_sockets; k++)
                for (size_t h = 0; h < opts->n_handles; h++)
                        if (streq(opts->handles[h].name, rc->sockets[k]->name))
                                return kpa_error_set(err, EEXIST,
                                                     "handle \"%s\": the manifest declares a "
                                                     "socket of that name (%s), which kpa "
                                                     "passes itself",
                                                     opts->handles[h].name, rc->sockets[k]->listen);
        size_t n = rc->n_sockets + opts->n_handles;
        kpa_user_handle *v = kpa_xcalloc(n, sizeof(*v));
        for (size_t k = 0; k < rc->n_sockets; k++) {
                int fd = kept_socket(ctl, m, rc, rc->sockets[k], err);
                if (fd < 0) {
                        free(v);
                        return fd;
                }
                v[k] = (kpa_user_handle){.name = rc->sockets[k]->name, .fd = fd};
        }
        for (size_t h = 0; h < opts->n_handles; h++)
                v[rc->n_sockets + h] = opts->handles[h];
        out->handles = v;
        out->n_handles = n;
        *handles = v;
        *n_declared = rc->n_sockets;
        return 0;
}
