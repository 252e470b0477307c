/* uid-registry.c: the host-wide record of the uids that kpa gave out, so
 * that two root-managed stores never give one uid to two packages (which
 * would let each read the other's private storage). It lives beside the
 * system store, in LOCALSTATEDIR/lib/kpa/.uids/ (KPA_UID_REGISTRY names
 * another directory, for tests), with a lock of its own: one file per uid,
 * named by the number and holding "STORE\nAPP_ID\n" (STORE as a canonical
 * path). An entry whose store no longer records that uid for that package
 * (the store was deleted, the package purged by an older kpa) is stale and
 * is given out again. Only root's installs use it: a rootless store's uids
 * are never real ids on the host. Store reading and writing are store.c's
 * and install.c's. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "store-internal.h"
#include "util.h"

#ifndef KPA_LOCALSTATEDIR
#define KPA_LOCALSTATEDIR "/var"
#endif

struct uid_registry {
        char *dir;
        int dir_fd;
        int lock_fd;
        char *store; /* the canonical path of the store that asks */
};

const char *uid_registry_path(void)
{
        const char *env = getenv("KPA_UID_REGISTRY");
        return env && *env ? env : KPA_LOCALSTATEDIR "/lib/kpa/.uids";
}

void uid_registry_close(uid_registry *r)
{
        if (!r)
                return;
        closep(&r->lock_fd); /* closing it releases the lock */
        closep(&r->dir_fd);
        free(r->dir);
        free(r->store);
        free(r);
}

/* mkdir -p of the registry: 0700 for itself, 0755 for its parents */
static int make_dirs(const char *path)
{
        _cleanup_free_ char *p = kpa_xstrdup(path);
        for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
                if (s)
                        *s = '\0';
                if (mkdir(p, s ? 0755 : 0700) < 0 && errno != EEXIST)
                        return -errno;
                if (!s)
                        return 0;
                *s = '/';
        }
}

int uid_registry_open(const kpa_store *s, uid_registry **out, kpa_error *err)
{
        const char *dir = uid_registry_path();
        _cleanup_(uid_registry_closep) uid_registry *r = kpa_xcalloc(1, sizeof(*r));
        r->dir_fd = r->lock_fd = -1;
        r->dir = kpa_xstrdup(dir);
        r->store = realpath(s->root, NULL);
        if (!r->store)
                return kpa_error_set_errno(err, errno, "store %s: cannot resolve its path",
                                           s->root);
        if (*dir != '/')
                return kpa_error_set(err, EINVAL, "the uid registry %s is not an absolute path",
                                     dir);
        int q = make_dirs(dir);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "cannot create the uid registry %s", dir);
        r->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (r->dir_fd < 0)
                return kpa_error_set_errno(err, errno, "cannot open the uid registry %s", dir);
        struct stat st;
        if (fstat(r->dir_fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "uid registry %s", dir);
        if (st.st_uid != 0 || (st.st_mode & 0022))
                return kpa_error_set(err, EPERM,
                                     "the uid registry %s is not root's alone (mode %04o, owner "
                                     "uid %u)",
                                     dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        r->lock_fd = openat(r->dir_fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (r->lock_fd < 0)
                return kpa_error_set_errno(err, errno, "uid registry %s: cannot open .lock", dir);
        while (flock(r->lock_fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return kpa_error_set_errno(err, errno, "uid registry %s: cannot lock", dir);
        *out = TAKE_PTR(r);
        return 0;
}

/* The entry of UID: its store and package (both NULL when there is none). */
static int read_entry(uid_registry *r, uid_t uid, char **store, char **app_id)
{
        char name[16];
        snprintf(name, sizeof(name), "%u", (unsigned)uid);
        _cleanup_free_ char *text = NULL;
        *store = *app_id = NULL;
        int q = kpa_read_file_at(r->dir_fd, name, 8192, &text, NULL);
        if (q == -ENOENT)
                return 0;
        if (q < 0)
                return q;
        char *nl = strchr(text, '\n');
        if (!nl || !nl[1])
                return -EBADMSG;
        *nl = '\0';
        char *end = strchr(nl + 1, '\n');
        if (end)
                *end = '\0';
        *store = kpa_xstrdup(text);
        *app_id = kpa_xstrdup(nl + 1);
        return 0;
}

/* Does the store at STORE still give UID to APP_ID? */
static bool entry_live(const char *store, const char *app_id, uid_t uid)
{
        _cleanup_close_ int fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || strchr(app_id, '/'))
                return false;
        kpa_store probe = {.root = (char *)store, .root_fd = fd, .lock_fd = -1};
        uid_t recorded;
        return store_read_uid_record(&probe, app_id, &recorded) == 0 && recorded == uid;
}

bool uid_registry_taken(uid_registry *r, uid_t uid, const char *app_id)
{
        _cleanup_free_ char *store = NULL, *app = NULL;
        int q = read_entry(r, uid, &store, &app);
        if (q < 0)
                return true; /* unreadable: better skip the uid than share it */
        if (!store)
                return false;
        if (streq(store, r->store) && streq(app, app_id))
                return false; /* ours already */
        return entry_live(store, app, uid);
}

int uid_registry_claim(uid_registry *r, uid_t uid, const char *app_id, kpa_error *err)
{
        char name[16], tmp[32];
        snprintf(name, sizeof(name), "%u", (unsigned)uid);
        snprintf(tmp, sizeof(tmp), ".%u.tmp", (unsigned)uid);
        _cleanup_free_ char *text = kpa_xasprintf("%s\n%s\n", r->store, app_id);
        _cleanup_close_ int fd =
                openat(r->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "uid registry %s: cannot write %s", r->dir,
                                           tmp);
        int q = kpa_write_all(fd, text, strlen(text));
        if (q == 0 && fsync(fd) < 0)
                q = -errno;
        if (q == 0 && renameat(r->dir_fd, tmp, r->dir_fd, name) < 0)
                q = -errno;
        if (q == 0 && fsync(r->dir_fd) < 0)
                q = -errno;
        if (q < 0) {
                (void)unlinkat(r->dir_fd, tmp, 0);
                return kpa_error_set_errno(err, -q, "uid registry %s: cannot record uid %u", r->dir,
                                           (unsigned)uid);
        }
        return 0;
}

void uid_registry_release(uid_registry *r, uid_t uid, const char *app_id)
{
        _cleanup_free_ char *store = NULL, *app = NULL;
        if (read_entry(r, uid, &store, &app) < 0 || !store)
                return;
        if (!streq(store, r->store) || !streq(app, app_id))
                return; /* another store's: not ours to release */
        char name[16];
        snprintf(name, sizeof(name), "%u", (unsigned)uid);
        (void)unlinkat(r->dir_fd, name, 0);
}
