/* store.c: the PackageManager's store, read side. It owns the layout under
 * ROOT (apps/, storage/, users/, .staging/, .lock), opening the store,
 * listing, loading an installed manifest, the recorded uids and the package
 * and storage directories a start needs. Writing the store (install, remove)
 * and checking packages (inspect, verify) are install.c's: kept apart so
 * that a launcher can link this without libarchive and nettle. */
#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <pwd.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kpa/package.h"
#include "store-internal.h"
#include "util.h"

#ifndef KPA_LOCALSTATEDIR
#define KPA_LOCALSTATEDIR "/var"
#endif

const char *kpa_store_default_root(const char *root)
{
        if (root && *root)
                return root;
        const char *env = getenv("KPA_ROOT");
        if (env && *env)
                return env;
        return KPA_LOCALSTATEDIR "/lib/kpa";
}

static int mkdir_at_mode(int dirfd, const char *name, mode_t mode)
{
        if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return 0;
}

int store_create_layout(int root_fd, const char *root, kpa_error *err)
{
        static const struct {
                const char *name;
                mode_t mode;
        } dirs[] = {{"apps", 0755}, {"storage", 0755}, {"users", 0755}, {".staging", 0700}};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                int q = mkdir_at_mode(root_fd, dirs[i].name, dirs[i].mode);
                if (q < 0)
                        return kpa_error_set_errno(err, -q, "store %s: cannot create %s/", root,
                                                   dirs[i].name);
        }
        return 0;
}

/* Why DIR (described as WHAT) may not be trusted by root, or NULL: it must
 * be a directory that root owns and that nobody else may write to. A
 * world-writable sticky directory (/tmp) is fine as an ancestor: others
 * may add entries there but not move or remove root's. */
static const char *untrusted_dir(const struct stat *st, bool ancestor)
{
        if (!S_ISDIR(st->st_mode))
                return "is not a directory";
        if (st->st_uid != 0)
                return "is not owned by root";
        if ((st->st_mode & 0022) && !(ancestor && (st->st_mode & S_ISVTX)))
                return (st->st_mode & 0002) ? "is writable by every user" : "is writable by its group";
        return NULL;
}

/* Root acts on what a store says (the uid to run as, the directories to
 * bind into a sandbox), so as root kpa uses only a store that nobody but
 * root can change: the store, each directory on its path, and its
 * apps/, storage/, users/ and grants/. */
#define UNTRUSTED_STORE "; as root, kpa uses only a store that nobody but root can change"

/* Check each directory of the canonical path REAL, from / down: top-down,
 * so that what was checked cannot be swapped by anyone but root before the
 * next step. The last one is checked as an ancestor too when LAST_ANCESTOR;
 * its stat goes to LAST. */
static int check_path_trusted(const char *root, char *real, bool last_ancestor, struct stat *last,
                              kpa_error *err)
{
        size_t len = strlen(real);
        for (size_t i = 0; i <= len; i++) {
                if (i < len && real[i] != '/')
                        continue;
                size_t end = i ? i : 1; /* the first prefix is "/" */
                char saved = real[end];
                real[end] = '\0';
                int r = lstat(real, last);
                int e = errno;
                const char *why = r < 0 ? NULL : untrusted_dir(last, i < len || last_ancestor);
                _cleanup_free_ char *shown = r < 0 || why ? kpa_xstrdup(real) : NULL;
                real[end] = saved;
                if (r < 0)
                        return kpa_error_set_errno(err, e, "store %s: cannot check %s", root, shown);
                if (why)
                        return kpa_error_set(err, EPERM,
                                             "store %s: %s %s (mode %04o, owner uid %u)" UNTRUSTED_STORE,
                                             root, shown, why, (unsigned)(last->st_mode & 07777),
                                             (unsigned)last->st_uid);
        }
        return 0;
}

/* Before a store is created: the directory it is created in. */
static int check_parent_trusted(const char *root, kpa_error *err)
{
        _cleanup_free_ char *copy = kpa_xstrdup(root);
        char *slash = strrchr(copy, '/');
        const char *parent = !slash ? "." : slash == copy ? "/" : (*slash = '\0', copy);
        _cleanup_free_ char *real = realpath(parent, NULL);
        if (!real)
                return kpa_error_set_errno(err, errno, "cannot create the store %s", root);
        struct stat st;
        return check_path_trusted(root, real, true, &st, err);
}

/* Root acts on what a store says (the uid to run as, the directories to
 * bind into a sandbox), so as root kpa uses only a store that nobody but
 * root can change: the store, each directory on its path, and its
 * apps/, storage/, users/ and grants/. */
static int check_store_trusted(const char *root, int fd, kpa_error *err)
{
        _cleanup_free_ char *real = realpath(root, NULL);
        if (!real)
                return kpa_error_set_errno(err, errno, "cannot resolve the store path %s", root);
        struct stat st, opened;
        int q = check_path_trusted(root, real, false, &st, err);
        if (q < 0)
                return q;
        if (fstat(fd, &opened) < 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino)
                return kpa_error_set(err, EBUSY, "store %s: changed while it was being opened", root);
        static const char *const subdirs[] = {"apps",     "storage", "users",   "images",  "grants",
                                              "previous", "holds",   "retired", ".staging"};
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
                if (fstatat(fd, subdirs[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return kpa_error_set_errno(err, errno, "store %s: cannot check %s/", root,
                                                   subdirs[i]);
                }
                const char *why = untrusted_dir(&st, false);
                if (why)
                        return kpa_error_set(err, EPERM,
                                             "store %s: %s/ %s (mode %04o, owner uid %u)" UNTRUSTED_STORE,
                                             root, subdirs[i], why, (unsigned)(st.st_mode & 07777),
                                             (unsigned)st.st_uid);
        }
        return 0;
}

int kpa_store_open(const char *root, unsigned flags, kpa_store **out, kpa_error *err)
{
        root = kpa_store_default_root(root);
        bool as_root = geteuid() == 0;
        if (flags & KPA_STORE_CREATE) {
                int q = as_root && access(root, F_OK) < 0 ? check_parent_trusted(root, err) : 0;
                if (q < 0)
                        return q;
                /* only the last component is created: a missing parent is a typo */
                if (mkdir(root, 0755) < 0 && errno != EEXIST)
                        return kpa_error_set_errno(err, errno, "cannot create the store %s", root);
        }
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "cannot open the store %s", root);
        if (as_root) {
                int q = check_store_trusted(root, fd, err);
                if (q < 0)
                        return q;
        }
        if (flags & KPA_STORE_CREATE) {
                int q = store_create_layout(fd, root, err);
                if (q < 0)
                        return q;
        }
        kpa_store *s = kpa_xcalloc(1, sizeof(*s));
        s->root = kpa_xstrdup(root);
        s->root_fd = TAKE_FD(fd);
        s->lock_fd = -1;
        *out = s;
        return 0;
}

void kpa_store_close(kpa_store *s)
{
        if (!s)
                return;
        store_cache_manifests(s, false);
        closep(&s->lock_fd);
        closep(&s->root_fd);
        free(s->root);
        free(s);
}

const char *kpa_store_root(const kpa_store *s) { return s->root; }
int kpa_store_root_fd(const kpa_store *s) { return s->root_fd; }

/* ---- per-package uids ---- */

int store_read_uid_record(kpa_store *s, const char *app_id, uid_t *uid)
{
        _cleanup_free_ char *path = kpa_xasprintf("users/%s", app_id);
        _cleanup_free_ char *buf = NULL;
        int q = kpa_read_file_at(s->root_fd, path, 64, &buf, NULL);
        if (q < 0)
                return q;
        char *end;
        errno = 0;
        unsigned long v = strtoul(buf, &end, 10);
        if (errno || end == buf || (*end && *end != '\n'))
                return -EBADMSG;
        /* a uid outside kpa's range (0, a system user's) is never one kpa gave */
        if (v < KPA_UID_RANGE_FIRST || v > KPA_UID_RANGE_LAST)
                return -ERANGE;
        *uid = (uid_t)v;
        return 0;
}

int kpa_store_get_app_uid(kpa_store *s, const char *app_id, uid_t *uid, gid_t *gid,
                          kpa_error *err)
{
        uid_t u;
        int q = store_read_uid_record(s, app_id, &u);
        if (q == -ERANGE)
                return kpa_error_set(err, ERANGE,
                                     "%s: the store %s records a uid outside kpa's range %u-%u "
                                     "(users/%s); kpa runs no package as such a uid",
                                     app_id, s->root, KPA_UID_RANGE_FIRST, KPA_UID_RANGE_LAST, app_id);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "%s: no uid recorded in the store %s", app_id,
                                           s->root);
        *uid = u;
        if (gid)
                *gid = (gid_t)u;
        return 0;
}

int store_read_tree_manifest(kpa_store *s, const char *top, const char *name, kpa_manifest **out,
                             kpa_error *err)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s/manifest.json", top, name);
        _cleanup_free_ char *raw = NULL;
        size_t len;
        int q = kpa_read_file_at(s->root_fd, path, KPA_MANIFEST_MAX_SIZE, &raw, &len);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "%s: cannot read %s/%s", name, s->root, path);
        q = kpa_manifest_parse(raw, len, 0, out, err);
        if (q < 0)
                return kpa_error_prefix(err, "%s: %s manifest", name,
                                        streq(top, "apps")       ? "installed"
                                        : streq(top, "previous") ? "previous version's"
                                                                 : "staged");
        return 0;
}

int store_read_installed_manifest(kpa_store *s, const char *app_id, kpa_manifest **out,
                                  kpa_error *err)
{
        return store_read_tree_manifest(s, "apps", app_id, out, err);
}

bool store_app_installed(kpa_store *s, const char *app_id)
{
        _cleanup_free_ char *path = kpa_xasprintf("apps/%s", app_id);
        _cleanup_close_ int fd = kpa_open_beneath(s->root_fd, path, O_PATH | O_DIRECTORY, 0);
        return fd >= 0;
}

int store_check_app_id(const char *app_id, kpa_error *err)
{
        if (!app_id || !*app_id || strchr(app_id, '/') || streq(app_id, ".") ||
            streq(app_id, "..") || strlen(app_id) > 128)
                return kpa_error_set(err, EINVAL, "\"%s\" is not a valid application id",
                                     app_id ? app_id : "");
        return 0;
}

/* ---- reading the store ---- */

int kpa_store_list(kpa_store *s, char ***out, size_t *n, kpa_error *err)
{
        size_t count = 0;
        char **ids = kpa_xcalloc(1, sizeof(char *));
        int fd = openat(s->root_fd, "apps", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT) {
                free(ids);
                return kpa_error_set_errno(err, errno, "store %s: apps/", s->root);
        }
        _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                ids = kpa_xrealloc(ids, (count + 2) * sizeof(char *));
                ids[count++] = kpa_xstrdup(de->d_name);
                ids[count] = NULL;
        }
        qsort(ids, count, sizeof(char *), kpa_strcmp_ptr);
        *out = ids;
        if (n)
                *n = count;
        return 0;
}

static int load_locales(kpa_store *s, const char *app_id, kpa_manifest *m, kpa_error *err)
{
        for (size_t i = 0; i < m->n_components; i++) {
                const kpa_component *c = m->components[i];
                if (c->type != KPA_COMPONENT_MANIFEST_LOCALE)
                        continue;
                _cleanup_free_ char *path = kpa_xasprintf("apps/%s/%s", app_id, c->install_path);
                _cleanup_free_ char *buf = NULL;
                size_t len;
                int q = kpa_read_file_at(s->root_fd, path, KPA_MANIFEST_MAX_SIZE, &buf, &len);
                if (q < 0)
                        continue; /* --verify reports it; names then show as written */
                q = kpa_manifest_add_locale(m, c->name, buf, len, err);
                if (q < 0)
                        return kpa_error_prefix(err, "%s", app_id);
        }
        return 0;
}

int kpa_store_load_manifest(kpa_store *s, const char *app_id, kpa_manifest **out, kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        if (!store_app_installed(s, app_id))
                return kpa_error_set(err, ENOENT, "%s is not installed in %s", app_id, s->root);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        q = store_read_installed_manifest(s, app_id, &m, err);
        if (q < 0)
                return q;
        q = load_locales(s, app_id, m, err);
        if (q < 0)
                return q;
        *out = TAKE_PTR(m);
        return 0;
}

static int open_app_subdir(kpa_store *s, const char *top, const char *app_id, kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s", top, app_id);
        /* no symlink anywhere on the way: a store's storage/ or apps/ that
         * led elsewhere would have kpa bind a host directory */
        int fd = kpa_open_beneath(s->root_fd, path, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
                return kpa_error_set_errno(err, -fd, "%s: %s/%s%s", app_id, s->root, path,
                                           fd == -ELOOP ? " (a symlink on the way)" : "");
        return fd;
}

int kpa_store_open_app_dir(kpa_store *s, const char *app_id, kpa_error *err)
{
        return open_app_subdir(s, "apps", app_id, err);
}

int kpa_store_open_storage_dir(kpa_store *s, const char *app_id, kpa_error *err)
{
        return open_app_subdir(s, "storage", app_id, err);
}

bool kpa_store_storage_enforced(kpa_store *s, const char *app_id, uint64_t *bytes)
{
        return store_check_app_id(app_id, NULL) == 0 && storage_image_exists(s, app_id, bytes);
}
