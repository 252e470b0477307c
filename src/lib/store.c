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

int kpa_store_open(const char *root, unsigned flags, kpa_store **out, kpa_error *err)
{
        root = kpa_store_default_root(root);
        if (flags & KPA_STORE_CREATE) {
                /* only the last component is created: a missing parent is a typo */
                if (mkdir(root, 0755) < 0 && errno != EEXIST)
                        return kpa_error_set_errno(err, errno, "cannot create the store %s", root);
        }
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "cannot open the store %s", root);
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
        *uid = (uid_t)v;
        return 0;
}

int kpa_store_get_app_uid(kpa_store *s, const char *app_id, uid_t *uid, gid_t *gid,
                          kpa_error *err)
{
        uid_t u;
        int q = store_read_uid_record(s, app_id, &u);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "%s: no uid recorded in the store %s", app_id,
                                           s->root);
        *uid = u;
        if (gid)
                *gid = (gid_t)u;
        return 0;
}

int store_read_installed_manifest(kpa_store *s, const char *app_id, kpa_manifest **out,
                                   kpa_error *err)
{
        _cleanup_free_ char *path = kpa_xasprintf("apps/%s/manifest.json", app_id);
        _cleanup_free_ char *raw = NULL;
        size_t len;
        int q = kpa_read_file_at(s->root_fd, path, KPA_MANIFEST_MAX_SIZE, &raw, &len);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "%s: cannot read %s/%s", app_id, s->root, path);
        q = kpa_manifest_parse(raw, len, 0, out, err);
        if (q < 0)
                return kpa_error_prefix(err, "%s: installed manifest", app_id);
        return 0;
}

bool store_app_installed(kpa_store *s, const char *app_id)
{
        _cleanup_free_ char *path = kpa_xasprintf("apps/%s", app_id);
        struct stat st;
        return fstatat(s->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
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

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

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
        qsort(ids, count, sizeof(char *), cmp_str);
        *out = ids;
        if (n)
                *n = count;
        return 0;
}

static int load_locales(kpa_store *s, const char *app_id, kpa_manifest *m, kpa_error *err)
{
        for (size_t i = 0; i < m->n_components; i++) {
                const kpa_component *c = &m->components[i];
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
        int fd = openat(s->root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s: %s/%s", app_id, s->root, path);
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
