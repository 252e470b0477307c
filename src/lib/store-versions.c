/* store-versions.c: the versions a store keeps of a package and who runs
 * them. It owns ROOT/previous/APP_ID (the version an upgrade replaced, which
 * --rollback swaps back with one exchange), ROOT/holds/APP_ID (a held
 * package is not changed), ROOT/retired/APP_ID@INODE (a tree that was
 * replaced or removed while processes still ran from it: it stays until the
 * last of them ends) and the finding of those processes: a process runs from
 * a tree when /APP_ID in its root is that very directory. The recovery of
 * an upgrade interrupted between its two renames is here too.
 * The install itself (staging, checks, the first rename) is install.c's. */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kpa/package.h"
#include "store-internal.h"
#include "util.h"

#define PUBLISH_PREFIX "publish-"

static int tree_identity(kpa_store *s, const char *path, struct stat *st)
{
        return fstatat(s->root_fd, path, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* The directory NAME below DIRFD as a DIR, or NULL (errno set). */
static DIR *open_dir_at(int dirfd, const char *name)
{
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                errno = e;
        }
        return d;
}

/* ---- who runs from a tree ---- */

/* The last number of the NSpid line of /proc/PID/status: 1 for the init of
 * a pid namespace (an instance's init). */
static bool is_namespace_init(int proc_fd, const char *pid)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/status", pid), *buf = NULL;
        size_t len;
        if (kpa_read_file_at(proc_fd, path, 16384, &buf, &len) < 0)
                return false;
        char *line = strstr(buf, "\nNSpid:");
        if (!line)
                return false;
        char *end = strchr(line + 1, '\n');
        if (end)
                *end = '\0';
        char *last = strrchr(line, '\t');
        return last && streq(last + 1, "1");
}

/* Every process whose /APP_ID is one of the N_TREES directories TREES
 * (dev and inode; an inode of 0: none), into *OUT with .tree = the index
 * of the one it runs from. */
static int scan_processes(const char *app_id, const struct stat *trees, size_t n_trees,
                          kpa_app_process **out, size_t *n_out, kpa_error *err)
{
        *out = NULL;
        *n_out = 0;
        _cleanup_closedir_ DIR *d = open_dir_at(AT_FDCWD, "/proc");
        if (!d)
                return kpa_error_set_errno(err, errno, "cannot read /proc");
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!isdigit((unsigned char)de->d_name[0]))
                        continue;
                _cleanup_free_ char *path = kpa_xasprintf("%s/root/%s", de->d_name, app_id);
                struct stat st;
                if (fstatat(dirfd(d), path, &st, 0) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                for (size_t k = 0; k < n_trees; k++) {
                        if (trees[k].st_ino == 0 || st.st_dev != trees[k].st_dev ||
                            st.st_ino != trees[k].st_ino)
                                continue;
                        *out = kpa_xrealloc(*out, (*n_out + 1) * sizeof(**out));
                        (*out)[*n_out] = (kpa_app_process){
                                .pid = (pid_t)strtol(de->d_name, NULL, 10),
                                .init = is_namespace_init(dirfd(d), de->d_name),
                                .tree = (kpa_app_tree)k,
                        };
                        ++*n_out;
                        break;
                }
        }
        return 0;
}

static bool tree_in_use(const char *app_id, const struct stat *tree)
{
        kpa_app_process *procs = NULL;
        size_t n = 0;
        kpa_error ignored;
        /* when it cannot tell, a tree is in use: keeping it only costs space */
        if (scan_processes(app_id, tree, 1, &procs, &n, &ignored) < 0)
                return true;
        free(procs);
        return n > 0;
}

static int app_processes(kpa_store *s, const char *app_id, kpa_app_process **out, size_t *n,
                         kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        struct stat trees[KPA_APP_TREE_RETIRED + 1] = {0};
        _cleanup_free_ char *cur = kpa_xasprintf("apps/%s", app_id);
        _cleanup_free_ char *prev = kpa_xasprintf("previous/%s", app_id);
        (void)tree_identity(s, cur, &trees[KPA_APP_TREE_CURRENT]);
        (void)tree_identity(s, prev, &trees[KPA_APP_TREE_PREVIOUS]);
        q = scan_processes(app_id, trees, KPA_APP_TREE_RETIRED, out, n, err);
        if (q < 0)
                return q;
        /* retired trees of APP_ID: retired/APP_ID@INODE */
        _cleanup_closedir_ DIR *d = open_dir_at(s->root_fd, "retired");
        struct dirent *de;
        size_t len = strlen(app_id);
        while (d && (de = readdir(d))) {
                if (strncmp(de->d_name, app_id, len) != 0 || de->d_name[len] != '@')
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                kpa_app_process *more = NULL;
                size_t n_more = 0;
                q = scan_processes(app_id, &st, 1, &more, &n_more, err);
                if (q < 0) {
                        free(*out);
                        *out = NULL;
                        *n = 0;
                        return q;
                }
                *out = kpa_xrealloc(*out, (*n + n_more + 1) * sizeof(**out));
                for (size_t k = 0; k < n_more; k++) {
                        more[k].tree = KPA_APP_TREE_RETIRED;
                        (*out)[(*n)++] = more[k];
                }
                free(more);
        }
        return 0;
}

/* The public form: N pointers, then the N elements they point to (each
 * with its struct_size), in one block that one free() releases. */
int kpa_store_app_processes(kpa_store *s, const char *app_id, kpa_app_process ***out, size_t *n,
                            kpa_error *err)
{
        _cleanup_free_ kpa_app_process *flat = NULL;
        *out = NULL;
        int q = app_processes(s, app_id, &flat, n, err);
        if (q < 0)
                return q;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): the pointers, then the elements */
        kpa_app_process **v = kpa_xcalloc(1, (*n + 1) * sizeof(*v) + *n * sizeof(**v));
        kpa_app_process *elements = (kpa_app_process *)(v + *n + 1);
        for (size_t i = 0; i < *n; i++) {
                elements[i] = flat[i];
                elements[i].struct_size = sizeof(elements[i]);
                v[i] = &elements[i];
        }
        *out = v;
        return 0;
}

/* ---- trees that go away ---- */

/* PATH (below the store root) holds a tree of APP_ID that is no longer
 * installed: delete it, or, while processes still run from it, move it to
 * retired/ until they have ended. */
void store_discard_tree(kpa_store *s, const char *app_id, const char *path)
{
        struct stat st;
        if (tree_identity(s, path, &st) < 0)
                return;
        if (tree_in_use(app_id, &st)) {
                if (mkdirat(s->root_fd, "retired", 0700) < 0 && errno != EEXIST)
                        return; /* kept where it is: .staging keeps it until the next writer */
                _cleanup_free_ char *to =
                        kpa_xasprintf("retired/%s@%llu", app_id, (unsigned long long)st.st_ino);
                if (renameat2(s->root_fd, path, s->root_fd, to, RENAME_NOREPLACE) == 0)
                        return;
        }
        (void)kpa_rm_rf_at(s->root_fd, path);
}

/* Delete the retired trees that nobody runs from any more. */
static void collect_retired(kpa_store *s)
{
        _cleanup_closedir_ DIR *d = open_dir_at(s->root_fd, "retired");
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                char *at = strrchr(de->d_name, '@');
                if (de->d_name[0] == '.' || !at)
                        continue;
                _cleanup_free_ char *app_id = kpa_xstrndup(de->d_name, (size_t)(at - de->d_name));
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    tree_in_use(app_id, &st))
                        continue;
                (void)kpa_rm_rf_at(dirfd(d), de->d_name);
        }
}

/* ---- upgrades keep the previous version ---- */

/* FROM (below the store root) holds the version that was current: make it
 * previous/APP_ID, and discard what was there. */
static int keep_as_previous(kpa_store *s, const char *app_id, const char *from, kpa_error *err)
{
        if (mkdirat(s->root_fd, "previous", 0755) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "store %s: cannot create previous/",
                                           s->root);
        _cleanup_free_ char *prev = kpa_xasprintf("previous/%s", app_id);
        if (renameat2(s->root_fd, from, s->root_fd, prev, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EEXIST && errno != ENOTEMPTY)
                return kpa_error_set_errno(err, errno, "store %s: cannot keep %s as %s", s->root,
                                           from, prev);
        if (renameat2(s->root_fd, from, s->root_fd, prev, RENAME_EXCHANGE) < 0)
                return kpa_error_set_errno(err, errno, "store %s: cannot keep %s as %s", s->root,
                                           from, prev);
        store_discard_tree(s, app_id, from); /* FROM now holds the one before */
        return 0;
}

/* Publish the staging tree STAGING_NAME as APP_ID over the installed
 * version, which becomes previous/APP_ID. The staging tree is first
 * renamed .staging/publish-INODE-APP_ID, INODE being the installed tree's:
 * after the exchange that name holds the tree of that inode, which tells a
 * writer that finds it after a crash that the exchange was done and only
 * the keeping of the previous version is left (store_recover_staging). */
int store_publish_keeping_previous(kpa_store *s, const char *app_id, const char *staging_name,
                                   kpa_error *err)
{
        _cleanup_free_ char *target = kpa_xasprintf("apps/%s", app_id);
        struct stat old;
        int q = tree_identity(s, target, &old);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "install %s: %s/%s", app_id, s->root, target);
        _cleanup_free_ char *pub = kpa_xasprintf(".staging/" PUBLISH_PREFIX "%llu-%s",
                                                 (unsigned long long)old.st_ino, app_id);
        if (renameat2(s->root_fd, staging_name, s->root_fd, pub, RENAME_NOREPLACE) < 0)
                return kpa_error_set_errno(err, errno, "install %s: cannot rename %s", app_id,
                                           staging_name);
        if (renameat2(s->root_fd, pub, s->root_fd, target, RENAME_EXCHANGE) < 0) {
                int e = errno;
                (void)kpa_rm_rf_at(s->root_fd, pub);
                return kpa_error_set_errno(err, e, "install %s: cannot replace %s/%s", app_id,
                                           s->root, target);
        }
        (void)store_fsync_dir_at(s->root_fd, "apps");
        /* the new version is installed; failing to keep the old one only
         * costs the rollback, and the next writer tries again */
        kpa_error ignored;
        if (keep_as_previous(s, app_id, pub, &ignored) < 0)
                return 0;
        (void)store_fsync_dir_at(s->root_fd, "previous");
        return 0;
}

/* A writer found NAME in .staging (DIRFD) while holding the lock: finish
 * what a crashed upgrade left, or delete it. */
void store_recover_staging(kpa_store *s, int dirfd, const char *name)
{
        unsigned long long ino = 0;
        int used = 0;
        if (sscanf(name, PUBLISH_PREFIX "%llu-%n", &ino, &used) == 1 && used > 0 &&
            store_check_app_id(name + used, NULL) == 0) {
                const char *app_id = name + used;
                struct stat st;
                _cleanup_free_ char *rel = kpa_xasprintf(".staging/%s", name);
                /* it holds the replaced tree: the exchange was done */
                if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == ino) {
                        kpa_error ignored;
                        if (keep_as_previous(s, app_id, rel, &ignored) == 0)
                                return;
                }
                store_discard_tree(s, app_id, rel);
                return;
        }
        /* a tree a crashed reinstall or removal was discarding may still
         * be run from: its manifest names the package to look for */
        _cleanup_free_ char *rel = kpa_xasprintf(".staging/%s", name);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error ignored;
        if (store_read_tree_manifest(s, ".staging", name, &m, &ignored) == 0 &&
            store_check_app_id(m->application.id, NULL) == 0) {
                store_discard_tree(s, m->application.id, rel);
                return;
        }
        (void)kpa_rm_rf_at(dirfd, name);
}

void store_after_lock(kpa_store *s)
{
        collect_retired(s);
}

/* ---- rollback ---- */

static int read_version(kpa_store *s, const char *dir, const char *app_id, char *version,
                        size_t vlen, char *build, size_t blen, kpa_error *err)
{
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        int q = store_read_tree_manifest(s, dir, app_id, &m, err);
        if (q < 0)
                return q;
        snprintf(version, vlen, "%s", m->application.version);
        if (build)
                snprintf(build, blen, "%s", m->application.build_number);
        return 0;
}

int kpa_store_previous_version(kpa_store *s, const char *app_id, char version[256], char build[256],
                               kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *prev = kpa_xasprintf("previous/%s", app_id);
        struct stat st;
        if (tree_identity(s, prev, &st) < 0)
                return kpa_error_set(err, ENOENT, "%s: no previous version is kept in %s", app_id,
                                     s->root);
        return read_version(s, "previous", app_id, version, 256, build, 256, err);
}

/* The previous version must pass today's signature rules, as an install
 * of it would: with a key trusted, signed by one of them, or installed
 * with --allow-unsigned then (its record travels with the tree). */
static int check_previous_signature(kpa_store *s, const char *app_id, const char *prev,
                                    const char *trusted_keys_dir, kpa_error *err)
{
        kpa_signature_info sig;
        int q = store_tree_signature(s, "previous", app_id, trusted_keys_dir, &sig, err);
        if (q < 0)
                return kpa_error_prefix(err, "rollback %s", app_id);
        if (sig.status == KPA_SIGNATURE_BAD)
                return kpa_error_set(err, EBADMSG,
                                     "rollback %s: the signature of the previous version %s does "
                                     "not match: %s; nothing was changed",
                                     app_id, prev, sig.problem);
        if (sig.n_trusted && sig.status != KPA_SIGNATURE_TRUSTED && !sig.allowed_unsigned)
                return kpa_error_set(err, EPERM,
                                     "rollback %s: the previous version %s is %s, and keys are "
                                     "trusted now; nothing was changed",
                                     app_id, prev,
                                     sig.status == KPA_SIGNATURE_UNSIGNED
                                             ? "not signed"
                                             : "signed by a key that is not trusted");
        return 0;
}

static int rollback_locked(kpa_store *s, const char *app_id, const char *trusted_keys_dir,
                           kpa_install_result *result, kpa_error *err)
{
        if (!store_app_installed(s, app_id))
                return kpa_error_set(err, ENOENT, "%s is not installed in %s", app_id, s->root);
        if (kpa_store_held(s, app_id))
                return kpa_error_set(err, EPERM,
                                     "%s is held: it is not changed, rollback included "
                                     "(kpa-install --unhold %s allows it)",
                                     app_id, app_id);
        char cur[256], prev[256];
        int q = kpa_store_previous_version(s, app_id, prev, NULL, err);
        if (q == -ENOENT)
                return kpa_error_set(err, ENOENT,
                                     "%s: no previous version to roll back to (the store keeps "
                                     "the version an upgrade replaced)",
                                     app_id);
        if (q < 0)
                return q;
        q = read_version(s, "apps", app_id, cur, sizeof(cur), NULL, 0, err);
        if (q < 0)
                return q;
        q = check_previous_signature(s, app_id, prev, trusted_keys_dir, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *a = kpa_xasprintf("apps/%s", app_id);
        _cleanup_free_ char *p = kpa_xasprintf("previous/%s", app_id);
        if (renameat2(s->root_fd, p, s->root_fd, a, RENAME_EXCHANGE) < 0)
                return kpa_error_set_errno(err, errno, "rollback %s: cannot exchange %s/%s and %s",
                                           app_id, s->root, a, p);
        (void)store_fsync_dir_at(s->root_fd, "apps");
        (void)store_fsync_dir_at(s->root_fd, "previous");
        snprintf(result->app_id, sizeof(result->app_id), "%s", app_id);
        snprintf(result->version, sizeof(result->version), "%s", prev);
        snprintf(result->old_version, sizeof(result->old_version), "%s", cur);
        result->action = KPA_INSTALL_ACTION_ROLLBACK;
        uid_t uid = (uid_t)-1;
        (void)store_read_uid_record(s, app_id, &uid);
        result->uid = uid;
        return 0;
}

int kpa_store_rollback(kpa_store *s, const char *app_id, const char *trusted_keys_dir,
                       kpa_install_result *result, kpa_error *err)
{
        kpa_install_result full;
        int q;
        if (result && (q = kpa_struct_check(result, sizeof(full), "kpa_install_result", err)) < 0)
                return q;
        kpa_install_result_init(&full);
        q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        q = store_lock(s, err);
        if (q < 0)
                return q;
        q = rollback_locked(s, app_id, trusted_keys_dir, &full, err);
        store_unlock(s);
        if (result)
                kpa_struct_out(result, &full);
        return q;
}

/* ---- holds ---- */

bool kpa_store_held(kpa_store *s, const char *app_id)
{
        if (store_check_app_id(app_id, NULL) < 0)
                return false;
        _cleanup_free_ char *path = kpa_xasprintf("holds/%s", app_id);
        struct stat st;
        return fstatat(s->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int set_hold_locked(kpa_store *s, const char *app_id, bool hold, kpa_error *err)
{
        if (!store_app_installed(s, app_id))
                return kpa_error_set(err, ENOENT, "%s is not installed in %s", app_id, s->root);
        _cleanup_free_ char *path = kpa_xasprintf("holds/%s", app_id);
        if (!hold) {
                if (unlinkat(s->root_fd, path, 0) < 0 && errno != ENOENT)
                        return kpa_error_set_errno(err, errno, "unhold %s: %s/%s", app_id, s->root,
                                                   path);
                return 0;
        }
        if (mkdirat(s->root_fd, "holds", 0755) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "store %s: cannot create holds/", s->root);
        _cleanup_close_ int fd =
                openat(s->root_fd, path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "hold %s: %s/%s", app_id, s->root, path);
        (void)store_fsync_dir_at(s->root_fd, "holds");
        return 0;
}

int kpa_store_set_hold(kpa_store *s, const char *app_id, bool hold, kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        q = store_lock(s, err);
        if (q < 0)
                return q;
        q = set_hold_locked(s, app_id, hold, err);
        store_unlock(s);
        return q;
}

/* ---- what removal leaves ---- */

/* A removal takes the previous version and the hold with the package. */
void store_forget_versions(kpa_store *s, const char *app_id)
{
        _cleanup_free_ char *hold = kpa_xasprintf("holds/%s", app_id);
        (void)unlinkat(s->root_fd, hold, 0);
        _cleanup_free_ char *prev = kpa_xasprintf("previous/%s", app_id);
        struct stat st;
        if (tree_identity(s, prev, &st) == 0)
                store_discard_tree(s, app_id, prev);
}

static bool listed(char *const *ids, const char *id)
{
        for (; *ids; ids++)
                if (streq(*ids, id))
                        return true;
        return false;
}

int kpa_store_list_removed(kpa_store *s, char ***out, size_t *n, kpa_error *err)
{
        size_t count = 0;
        char **ids = kpa_xcalloc(1, sizeof(char *));
        static const char *const dirs[] = {"storage", "users"};
        for (size_t k = 0; k < ELEMENTSOF(dirs); k++) {
                _cleanup_closedir_ DIR *d = open_dir_at(s->root_fd, dirs[k]);
                if (!d && errno == ENOENT)
                        continue;
                if (!d) {
                        kpa_strv_free(ids);
                        return kpa_error_set_errno(err, errno, "store %s: %s/", s->root, dirs[k]);
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.' || store_app_installed(s, de->d_name) ||
                            listed(ids, de->d_name))
                                continue;
                        ids = kpa_xrealloc(ids, (count + 2) * sizeof(char *));
                        ids[count++] = kpa_xstrdup(de->d_name);
                        ids[count] = NULL;
                }
        }
        qsort(ids, count, sizeof(char *), kpa_strcmp_ptr);
        *out = ids;
        if (n)
                *n = count;
        return 0;
}
