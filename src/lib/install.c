/* install.c: the PackageManager's store, write side, and package checks.
 * It owns the writer lock, staging and atomic publishing, the allocation of
 * per-package uids and private storage, install, removal, inspection of an
 * installed package or a package file, and verification of an installed
 * tree against its manifest's digests. Reading and checking a package file
 * is archive-read.c's job; the read side of the store is store.c's. */
#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <pwd.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "archive-read.h"
#include "cgroup.h"
#include "kpa/digest.h"
#include "kpa/package.h"
#include "sign.h"
#include "store-internal.h"
#include "util.h"

/* ---- the writer lock and staging ---- */

/* Take ROOT/.lock (waiting for other writers) and clean what a crashed writer
 * left in .staging: while we hold the lock, nothing there is in use. */
int store_lock(kpa_store *s, kpa_error *err)
{
        if (s->lock_fd >= 0)
                return 0;
        int q = store_create_layout(s->root_fd, s->root, err);
        if (q < 0)
                return q;
        _cleanup_close_ int fd =
                openat(s->root_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "store %s: cannot open .lock", s->root);
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return kpa_error_set_errno(err, errno, "store %s: cannot lock", s->root);
        _cleanup_close_ int staging =
                openat(s->root_fd, ".staging", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (staging < 0)
                return kpa_error_set_errno(err, errno, "store %s: cannot open .staging", s->root);
        _cleanup_closedir_ DIR *d = fdopendir(TAKE_FD(staging));
        if (!d)
                return kpa_error_set_errno(err, errno, "store %s: .staging", s->root);
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        store_recover_staging(s, dirfd(d), de->d_name);
        s->lock_fd = TAKE_FD(fd);
        store_after_lock(s);
        return 0;
}

void store_unlock(kpa_store *s)
{
        closep(&s->lock_fd), s->lock_fd = -1;
}

/* A fresh directory .staging/PREFIX-RANDOM; its name goes to NAME. */
static int staging_mkdir(kpa_store *s, const char *prefix, char name[64], kpa_error *err)
{
        for (int tries = 0; tries < 16; tries++) {
                uint64_t rnd;
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint64_t)getpid() * 2654435761u + (uint64_t)tries;
                snprintf(name, 64, ".staging/%s-%016llx", prefix, (unsigned long long)rnd);
                if (mkdirat(s->root_fd, name, 0755) == 0)
                        return 0;
                if (errno != EEXIST)
                        return kpa_error_set_errno(err, errno, "store %s: cannot create %s",
                                                   s->root, name);
        }
        return kpa_error_set(err, EEXIST, "store %s: cannot create a staging directory", s->root);
}


/* fsync the directory PATH below DIRFD: what was renamed into it stays */
int store_fsync_dir_at(int dirfd, const char *path)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

static bool uid_taken(kpa_store *s, uid_t uid)
{
        if (getpwuid(uid) || getgrgid((gid_t)uid))
                return true;
        _cleanup_closedir_ DIR *d = NULL;
        int fd = openat(s->root_fd, "users", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(d = fdopendir(fd))) {
                closep(&fd);
                return false;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                uid_t other;
                if (de->d_name[0] != '.' && store_read_uid_record(s, de->d_name, &other) == 0 &&
                    other == uid)
                        return true;
        }
        return false;
}

static int write_uid_record(kpa_store *s, const char *app_id, uid_t uid, kpa_error *err)
{
        _cleanup_free_ char *tmp = kpa_xasprintf("users/.%s.tmp", app_id);
        _cleanup_free_ char *path = kpa_xasprintf("users/%s", app_id);
        _cleanup_free_ char *text = kpa_xasprintf("%u\n", (unsigned)uid);
        _cleanup_close_ int fd =
                openat(s->root_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "store %s: cannot write %s", s->root, tmp);
        int q = kpa_write_all(fd, text, strlen(text));
        if (q == 0 && fsync(fd) < 0)
                q = -errno;
        if (q == 0 && renameat(s->root_fd, tmp, s->root_fd, path) < 0)
                q = -errno;
        if (q < 0) {
                unlinkat(s->root_fd, tmp, 0);
                return kpa_error_set_errno(err, -q, "store %s: cannot write %s", s->root, path);
        }
        /* the record is what keeps the uid the package's: make it last */
        q = store_fsync_dir_at(s->root_fd, "users");
        if (q < 0)
                return kpa_error_set_errno(err, -q, "store %s: cannot flush users/", s->root);
        return 0;
}

/* The package's uid: the recorded one, or the lowest free one in the
 * range. As root, free means free on the whole host: the uid registry
 * (uid-registry.c) knows what every other store gave out. */
static int allocate_uid(kpa_store *s, const char *app_id, uid_t *uid, bool *created,
                        kpa_error *err)
{
        *created = false;
        _cleanup_(uid_registry_closep) uid_registry *reg = NULL;
        if (geteuid() == 0) {
                int q = uid_registry_open(s, &reg, err);
                if (q < 0)
                        return kpa_error_prefix(err, "install %s", app_id);
        }
        if (store_read_uid_record(s, app_id, uid) == 0) {
                /* recorded before the registry knew it (an older kpa) */
                if (reg && !uid_registry_taken(reg, *uid, app_id))
                        (void)uid_registry_claim(reg, *uid, app_id, NULL);
                return 0;
        }
        for (uid_t u = KPA_UID_RANGE_FIRST; u <= KPA_UID_RANGE_LAST; u++) {
                if (uid_taken(s, u) || (reg && uid_registry_taken(reg, u, app_id)))
                        continue;
                int q = reg ? uid_registry_claim(reg, u, app_id, err) : 0;
                if (q >= 0)
                        q = write_uid_record(s, app_id, u, err);
                if (q < 0) {
                        if (reg)
                                uid_registry_release(reg, u, app_id);
                        return q;
                }
                *uid = u;
                *created = true;
                return 0;
        }
        return kpa_error_set(err, ENOSPC, "store %s: no free uid left in %u-%u for %s", s->root,
                             KPA_UID_RANGE_FIRST, KPA_UID_RANGE_LAST, app_id);
}


/* Private storage: created on first install, owned by the package's uid. */
static int ensure_storage(kpa_store *s, const char *app_id, uid_t uid, bool *created,
                          kpa_error *err)
{
        _cleanup_free_ char *path = kpa_xasprintf("storage/%s", app_id);
        *created = false;
        if (mkdirat(s->root_fd, path, 0700) == 0)
                *created = true;
        else if (errno != EEXIST)
                return kpa_error_set_errno(err, errno, "store %s: cannot create %s", s->root, path);
        _cleanup_close_ int fd =
                openat(s->root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "store %s: %s", s->root, path);
        if (*created && geteuid() == 0 && fchown(fd, uid, (gid_t)uid) < 0)
                return kpa_error_set_errno(err, errno, "store %s: cannot chown %s", s->root, path);
        return 0;
}


/* ---- install ---- */

void kpa_install_options_init(kpa_install_options *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->struct_size = sizeof(*opts);
}

void kpa_install_result_init(kpa_install_result *result)
{
        memset(result, 0, sizeof(*result));
        result->struct_size = sizeof(*result);
        result->uid = (uid_t)-1;
}

int install_options_in(const kpa_install_options *opts, kpa_install_options *full,
                       kpa_package_limits *limits, kpa_error *err)
{
        kpa_install_options_init(full);
        kpa_package_limits_init(limits);
        full->limits = limits;
        if (!opts)
                return 0;
        int q = kpa_struct_in(full, opts, sizeof(*full), "kpa_install_options", err);
        if (q < 0)
                return q;
        const kpa_package_limits *given = full->limits;
        full->limits = limits;
        if (given &&
            (q = kpa_struct_in(limits, given, sizeof(*limits), "kpa_package_limits", err)) < 0)
                return q;
        return 0;
}

typedef struct install_ctx {
        kpa_store *store;
        const char *path; /* the package file, for messages */
        const kpa_install_options *opts;
        int staging_fd;
        char app_id[129];
        bool exists;
        bool keep_previous; /* the installed version becomes previous/APP_ID */
        kpa_install_result *result;
        char *raw_manifest; /* manifest.json exactly as packed */
        size_t raw_len;
        /* the directory the last component went to, kept open for the next */
        char *dir_path;
        int dir_fd;
        uint64_t storage_size_mb; /* privateStorage.size, 0 when none */
        char storage_fs_type[32];
        char **old_grants; /* what the installed version held */
        char **grants;     /* what this version will hold */
        char **ro_paths;   /* its readOnlyPaths, checked once its uid is known */
        sign_install sign; /* its signature, to be recorded (sign.c) */
} install_ctx;

/* The items of the lists in SOURCES (NULL-terminated), once each, sorted. */
static char **permissions_union(char **const *sources, size_t n_sources)
{
        char **all = kpa_xcalloc(1, sizeof(char *));
        size_t n = 0;
        for (size_t s = 0; s < n_sources; s++)
                for (char **i = sources[s]; *i; i++) {
                        all = kpa_xrealloc(all, (n + 2) * sizeof(char *));
                        all[n++] = kpa_xstrdup(*i);
                        all[n] = NULL;
                }
        _cleanup_strv_free_ char **none = kpa_xcalloc(1, sizeof(char *));
        char **sorted = kpa_permissions_filter(all, none, false);
        kpa_strv_free(all);
        return sorted;
}

/* "APP VERSION requests permissions that are not granted: ...", with how
 * to grant them. */
static int refuse_missing(install_ctx *c, const kpa_manifest *m, char *const *missing,
                          kpa_error *err)
{
        char list[1024] = "", names[256] = "";
        for (char *const *i = missing; *i; i++) {
                /* "readOnlyPaths:/x" and "sockets:tcp:..." are items of a name */
                bool path = strncmp(*i, "readOnlyPaths:", 14) == 0;
                bool sock = strncmp(*i, "sockets:", 8) == 0;
                const char *name = path ? "readOnlyPaths" : sock ? "sockets" : *i;
                const char *what = path ? *i + 14 : sock ? *i + 8 : NULL;
                size_t l = strlen(list);
                snprintf(list + l, sizeof(list) - l, "%s%s%s%s", l ? ", " : "", name,
                         what ? " " : "", what ? what : "");
                if (!strstr(names, name)) {
                        l = strlen(names);
                        snprintf(names + l, sizeof(names) - l, "%s%s", l ? "," : "", name);
                }
        }
        const char *dir = c->opts->policy_dir ? c->opts->policy_dir : kpa_policy_default_dir();
        return kpa_error_set(err, EPERM,
                             "%s %s requests permissions that are not granted: %s. Nothing was "
                             "installed. Grant them with --grant %s (or --grant all), or in the "
                             "policy file %s/%s.json",
                             c->app_id, m->application.version, list, names, dir, c->app_id);
}

/* Which of M's requests are granted: what the installed version held and
 * M still requests, what --grant names, what the policy file grants. A
 * grant that M does not request ends here: a later version that asks for
 * it asks anew. Every request must be granted, or nothing is installed. */
static int install_check_permissions(install_ctx *c, const kpa_manifest *m, kpa_error *err)
{
        const kpa_install_options *o = c->opts;
        _cleanup_strv_free_ char **requested = kpa_permissions_requested(m);
        int q = 0;
        if (c->exists)
                q = kpa_store_get_grants(c->store, c->app_id, &c->old_grants, err);
        else
                c->old_grants = kpa_xcalloc(1, sizeof(char *));
        if (q < 0)
                return q;
        _cleanup_strv_free_ char **cli = NULL, **policy = NULL;
        if (kpa_permissions_select(requested, o->grant ? o->grant : "", &cli, err) < 0)
                return kpa_error_prefix(err, "--grant");
        if ((q = kpa_policy_grants(o->policy_dir, c->app_id, requested, &policy, NULL, err)) < 0)
                return q;
        _cleanup_strv_free_ char **kept = kpa_permissions_filter(c->old_grants, requested, true);
        char **const sources[] = {kept, cli, policy};
        c->grants = permissions_union(sources, ELEMENTSOF(sources));
        _cleanup_strv_free_ char **fresh = kpa_permissions_filter(requested, c->old_grants, false);
        if (o->on_permissions)
                o->on_permissions(c->app_id, requested, c->grants, fresh, c->exists, o->userdata);
        _cleanup_strv_free_ char **missing = kpa_permissions_filter(requested, c->grants, false);
        if (missing[0])
                return refuse_missing(c, m, missing, err);
        c->ro_paths = kpa_xcalloc(m->sandbox->n_read_only_paths + 1, sizeof(char *));
        for (size_t i = 0; i < m->sandbox->n_read_only_paths; i++)
                c->ro_paths[i] = kpa_xstrdup(m->sandbox->read_only_paths[i]);
        return 0;
}

/* Its readOnlyPaths must be paths that its uid could open itself. */
static int install_check_paths(install_ctx *c, uid_t uid, kpa_error *err)
{
        bool root = geteuid() == 0;
        for (char **p = c->ro_paths; p && *p; p++) {
                int q = kpa_permissions_check_path(*p, root ? uid : geteuid(),
                                                   root ? (gid_t)uid : getegid(),
                                                   kpa_store_root(c->store), NULL, err);
                if (q == -ENOENT) /* may appear later; the start checks it again */
                        continue;
                if (q < 0)
                        return kpa_error_prefix(err, "install %s", c->app_id);
        }
        return 0;
}

static int install_check_version(install_ctx *c, const kpa_manifest *m, const char *raw, size_t len,
                                 kpa_error *err);

/* Before anything else about the package is looked at: is it signed by a
 * trusted key (sign.c has the policy)? */
static int install_on_signature(void *userdata, const char *raw, size_t len, const char *sig,
                                size_t sig_len, kpa_error *err)
{
        install_ctx *c = userdata;
        return sign_install_check(&c->sign, c->opts, c->path, raw, len, sig, sig_len, err);
}

static int install_on_manifest(void *userdata, const kpa_manifest *m, const char *raw, size_t len,
                               kpa_error *err)
{
        install_ctx *c = userdata;
        int q = install_check_version(c, m, raw, len, err);
        return q < 0 ? q : install_check_permissions(c, m, err);
}

static int install_check_version(install_ctx *c, const kpa_manifest *m, const char *raw, size_t len,
                                 kpa_error *err)
{
        if (!(c->opts->flags & KPA_INSTALL_FORCE_ARCH)) {
                int q = kpa_manifest_check_arch(m, err);
                if (q < 0) {
                        kpa_error_prefix(err, "%s", c->path);
                        size_t n = strlen(err->message);
                        snprintf(err->message + n, sizeof(err->message) - n, "%s",
                                 " (--force-arch installs it anyway)");
                        return q;
                }
        }
        snprintf(c->app_id, sizeof(c->app_id), "%s", m->application.id);
        if (m->has_private_storage) {
                c->storage_size_mb = m->storage_size_mb;
                snprintf(c->storage_fs_type, sizeof(c->storage_fs_type), "%s",
                         m->storage_fs_type ? m->storage_fs_type : "");
        }
        c->raw_manifest = kpa_xmalloc(len + 1);
        memcpy(c->raw_manifest, raw, len);
        c->raw_len = len;
        snprintf(c->result->app_id, sizeof(c->result->app_id), "%s", m->application.id);
        snprintf(c->result->version, sizeof(c->result->version), "%s", m->application.version);
        c->exists = store_app_installed(c->store, c->app_id);
        c->result->action = KPA_INSTALL_ACTION_NEW;
        if (!c->exists)
                return 0;
        _cleanup_(kpa_manifest_freep) kpa_manifest *old = NULL;
        kpa_error ignored;
        if (store_read_installed_manifest(c->store, c->app_id, &old, &ignored) < 0) {
                c->result->action = KPA_INSTALL_ACTION_UPGRADE; /* replace a damaged install */
                return 0;
        }
        snprintf(c->result->old_version, sizeof(c->result->old_version), "%s",
                 old->application.version);
        if (kpa_store_held(c->store, c->app_id))
                return kpa_error_set(err, EPERM,
                                     "%s is held at version %s: it is not upgraded or replaced "
                                     "(kpa-install --unhold %s allows it)",
                                     c->app_id, old->application.version, c->app_id);
        int order = kpa_package_version_compare(m->application.version, m->application.build_number,
                                                old->application.version,
                                                old->application.build_number);
        if (order > 0) {
                c->result->action = KPA_INSTALL_ACTION_UPGRADE;
                c->keep_previous = true;
                return 0;
        }
        if (order < 0) {
                bool same = streq(m->application.version, old->application.version);
                if (!(c->opts->flags & KPA_INSTALL_ALLOW_DOWNGRADE))
                        return kpa_error_set(
                                err, EPERM,
                                "%s: downgrade from %s%s%s to %s%s%s refused (use "
                                "--allow-downgrade to install an older version, or "
                                "--rollback to go back to the previous one)",
                                c->app_id, old->application.version, same ? " build " : "",
                                same ? old->application.build_number : "", m->application.version,
                                same ? " build " : "", same ? m->application.build_number : "");
                c->result->action = KPA_INSTALL_ACTION_DOWNGRADE;
                c->keep_previous = true;
                return 0;
        }
        if (!(c->opts->flags & KPA_INSTALL_REINSTALL))
                return kpa_error_set(err, EEXIST,
                                     "%s %s is already installed (use --reinstall to install it "
                                     "again)",
                                     c->app_id, old->application.version);
        c->result->action = KPA_INSTALL_ACTION_REINSTALL;
        return 0;
}

/* Open (creating as needed) the directory DIR below the staging root,
 * never following a symlink. */
static int staging_dir_fd(install_ctx *c, const char *dir, kpa_error *err)
{
        if (c->dir_path && streq(c->dir_path, dir))
                return c->dir_fd;
        closep(&c->dir_fd);
        c->dir_fd = -1;
        free(c->dir_path);
        c->dir_path = NULL;
        _cleanup_close_ int fd = fcntl(c->staging_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "dup");
        _cleanup_free_ char *copy = kpa_xstrdup(dir);
        char *save = NULL;
        for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
                if (mkdirat(fd, part, 0755) < 0 && errno != EEXIST)
                        return kpa_error_set_errno(err, errno, "create directory %s", dir);
                int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return kpa_error_set_errno(err, errno, "open directory %s", dir);
                close(fd);
                fd = next;
        }
        c->dir_path = kpa_xstrdup(dir);
        c->dir_fd = TAKE_FD(fd);
        return c->dir_fd;
}

static int install_on_open(void *userdata, const kpa_component *comp, int *out_fd, kpa_error *err)
{
        install_ctx *c = userdata;
        const char *slash = strrchr(comp->install_path, '/');
        _cleanup_free_ char *dir = slash ? kpa_xstrndup(comp->install_path,
                                                        (size_t)(slash - comp->install_path))
                                         : kpa_xstrdup(".");
        int dfd = staging_dir_fd(c, dir, err);
        if (dfd < 0)
                return kpa_error_prefix(err, "install %s", c->app_id);
        const char *base = slash ? slash + 1 : comp->install_path;
        int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "install %s: cannot create %s", c->app_id,
                                           comp->install_path);
        *out_fd = fd;
        return 0;
}

static int install_on_close(void *userdata, const kpa_component *comp, int fd, uint64_t size,
                            kpa_error *err)
{
        install_ctx *c = userdata;
        mode_t mode = comp->type == KPA_COMPONENT_BIN ? 0755 : 0644;
        if (fd >= 0 && fchmod(fd, mode) < 0)
                return kpa_error_set_errno(err, errno, "install %s: chmod %s", c->app_id,
                                           comp->install_path);
        return 0;
}

/* Put the staging tree in place: a rename for a new package, an exchange
 * with the old tree otherwise. Either way readers see the old or the new
 * package, never a mix. An upgrade or a downgrade keeps the old tree as
 * previous/APP_ID (store-versions.c); a reinstall discards it. */
static int publish(install_ctx *c, const char *staging_name, kpa_error *err)
{
        kpa_store *s = c->store;
        _cleanup_free_ char *target = kpa_xasprintf("apps/%s", c->app_id);
        if (!c->exists) {
                /* a previous version of an earlier install is not this one's */
                store_forget_versions(s, c->app_id);
                if (renameat2(s->root_fd, staging_name, s->root_fd, target, RENAME_NOREPLACE) < 0)
                        return kpa_error_set_errno(err, errno, "install %s: cannot publish %s/%s",
                                                   c->app_id, s->root, target);
                /* a crash after this must not lose the published package; an
                 * error here is not one of the install (it is visible now) */
                (void)store_fsync_dir_at(s->root_fd, "apps");
                return 0;
        }
        if (c->keep_previous)
                return store_publish_keeping_previous(s, c->app_id, staging_name, err);
        if (renameat2(s->root_fd, staging_name, s->root_fd, target, RENAME_EXCHANGE) < 0)
                return kpa_error_set_errno(err, errno, "install %s: cannot replace %s/%s",
                                           c->app_id, s->root, target);
        (void)store_fsync_dir_at(s->root_fd, "apps");
        /* staging_name now holds the old version; failing to delete it only
         * wastes space until the next writer cleans .staging */
        store_discard_tree(s, c->app_id, staging_name);
        return 0;
}

static int install_finish(install_ctx *c, const char *staging_name, kpa_error *err)
{
        kpa_store *s = c->store;
        _cleanup_close_ int fd = openat(c->staging_fd, "manifest.json",
                                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "install %s: write manifest.json", c->app_id);
        int q = kpa_write_all(fd, c->raw_manifest, c->raw_len);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "install %s: write manifest.json", c->app_id);
        if ((q = sign_install_record(&c->sign, c->staging_fd, c->app_id, err)) < 0)
                return q;
        /* one flush of the file system instead of an fsync per file: the new
         * tree is on disk before the rename makes it visible */
        if (syncfs(c->staging_fd) < 0)
                return kpa_error_set_errno(err, errno, "install %s: syncfs", c->app_id);

        bool uid_created = false, storage_created = false;
        uid_t uid = (uid_t)-1;
        q = allocate_uid(s, c->app_id, &uid, &uid_created, err);
        if (q >= 0)
                q = ensure_storage(s, c->app_id, uid, &storage_created, err);
        if (q >= 0)
                q = install_check_paths(c, uid, err);
        /* a size is enforced as an image (storage-image.c), by root, for a
         * storage made now: one that exists keeps its data as it is */
        bool image_created = false;
        if (q >= 0 && storage_created && c->storage_size_mb && geteuid() == 0 &&
            !storage_image_exists(s, c->app_id, NULL)) {
                q = storage_image_create(s, c->app_id, c->storage_size_mb, c->storage_fs_type, uid, err);
                image_created = q >= 0;
        }
        bool grants_written = false;
        if (q >= 0 && (q = store_write_grants(s, c->app_id, c->grants, err)) >= 0)
                grants_written = true;
        if (q >= 0)
                q = publish(c, staging_name, err);
        if (q < 0) {
                kpa_error ignored;
                if (grants_written) /* back to what the installed version held */
                        (void)store_write_grants(s, c->app_id, c->old_grants, &ignored);
                _cleanup_free_ char *storage = kpa_xasprintf("storage/%s", c->app_id);
                _cleanup_free_ char *user = kpa_xasprintf("users/%s", c->app_id);
                if (image_created)
                        storage_image_remove(s, c->app_id);
                if (storage_created)
                        (void)unlinkat(s->root_fd, storage, AT_REMOVEDIR);
                if (uid_created) {
                        (void)unlinkat(s->root_fd, user, 0);
                        _cleanup_(uid_registry_closep) uid_registry *reg = NULL;
                        if (geteuid() == 0 && uid_registry_open(s, &reg, NULL) == 0)
                                uid_registry_release(reg, uid, c->app_id);
                }
                return q;
        }
        c->result->uid = uid;
        return 0;
}

static int install_locked(kpa_store *s, int pkg_fd, const char *path,
                          const kpa_install_options *opts, kpa_install_result *result,
                          kpa_error *err)
{
        char staging_name[64];
        int q = staging_mkdir(s, "install", staging_name, err);
        if (q < 0)
                return q;
        install_ctx ctx = {.store = s, .path = path, .opts = opts, .result = result, .dir_fd = -1};
        ctx.staging_fd = openat(s->root_fd, staging_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        kpa_package_sink sink = {
                .manifest = install_on_manifest,
                .open = install_on_open,
                .close = install_on_close,
                .userdata = &ctx,
                .progress = opts->progress,
                .progress_userdata = opts->userdata,
                .signature = install_on_signature,
        };
        kpa_package_stats stats = {0};
        if (ctx.staging_fd < 0)
                q = kpa_error_set_errno(err, errno, "open %s", staging_name);
        else
                q = kpa_package_read(pkg_fd, path, opts->limits, &sink, NULL, &stats, err);
        closep(&ctx.dir_fd);
        free(ctx.dir_path);
        if (q >= 0)
                q = install_finish(&ctx, staging_name, err);
        closep(&ctx.staging_fd);
        free(ctx.raw_manifest);
        kpa_strv_free(ctx.old_grants);
        kpa_strv_free(ctx.grants);
        kpa_strv_free(ctx.ro_paths);
        sign_install_done(&ctx.sign);
        (void)kpa_rm_rf_at(s->root_fd, staging_name);
        if (q >= 0) {
                result->bytes = stats.bytes;
                result->files = stats.files;
        }
        return q;
}

int kpa_store_install(kpa_store *s, const char *path, const kpa_install_options *opts,
                      kpa_install_result *result, kpa_error *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        return store_install_fd(s, fd, path, opts, result, err);
}

/* The package stream in FD (NAME in messages): a .kpa file, or the one that
 * oci-image.c rebuilds from an image, through the same checks. */
int store_install_fd(kpa_store *s, int fd, const char *name, const kpa_install_options *opts,
                     kpa_install_result *result, kpa_error *err)
{
        kpa_install_options full_opts;
        kpa_package_limits limits;
        kpa_install_result full;
        int q = install_options_in(opts, &full_opts, &limits, err);
        if (q < 0)
                return q;
        if (result && (q = kpa_struct_check(result, sizeof(full), "kpa_install_result", err)) < 0)
                return q;
        kpa_install_result_init(&full);
        q = store_lock(s, err);
        if (q < 0)
                return q;
        q = install_locked(s, fd, name, &full_opts, &full, err);
        store_unlock(s);
        if (result)
                kpa_struct_out(result, &full);
        return q;
}


/* ---- remove ---- */

static int remove_locked(kpa_store *s, const char *app_id, bool purge, kpa_error *err)
{
        _cleanup_free_ char *app = kpa_xasprintf("apps/%s", app_id);
        _cleanup_free_ char *storage = kpa_xasprintf("storage/%s", app_id);
        _cleanup_free_ char *user = kpa_xasprintf("users/%s", app_id);
        bool installed = store_app_installed(s, app_id);
        struct stat st;
        bool has_storage = fstatat(s->root_fd, storage, &st, AT_SYMLINK_NOFOLLOW) == 0;
        /* a purge that failed half-way may have left only the uid record */
        bool has_user = fstatat(s->root_fd, user, &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (!installed && !(purge && (has_storage || has_user)))
                return kpa_error_set(err, ENOENT, "%s is not installed in %s", app_id, s->root);
        if (installed) {
                /* unpublish atomically, then delete at leisure: one rename
                 * of the tree over an empty directory of .staging, so that
                 * a crash leaves it installed or gone, never an empty
                 * apps/APP_ID (the next writer deletes what is in .staging) */
                char staging_name[64];
                int q = staging_mkdir(s, "remove", staging_name, err);
                if (q < 0)
                        return q;
                if (renameat2(s->root_fd, app, s->root_fd, staging_name, 0) < 0) {
                        int e = errno;
                        (void)unlinkat(s->root_fd, staging_name, AT_REMOVEDIR);
                        return kpa_error_set_errno(err, e, "remove %s: rename %s/%s", app_id,
                                                   s->root, app);
                }
                (void)store_fsync_dir_at(s->root_fd, "apps");
                store_discard_tree(s, app_id, staging_name);
        }
        /* the previous version and a hold go with the package */
        store_forget_versions(s, app_id);
        /* the grants go with the package: another one of the same id asks anew */
        int r = store_write_grants(s, app_id, NULL, err);
        if (r < 0)
                return kpa_error_prefix(err, "remove %s", app_id);
        /* the cgroups kept for its next start below this process's own
         * (kpa-execd removes those below its own when told) */
        if (installed)
                kpa_cgroup_forget_app(NULL, app_id);
        /* its private storage image is no longer kept mounted for a next
         * start (storage-keep.c); a purge detaches it too */
        kpa_error ignored;
        (void)storage_image_release(s, app_id, &ignored);
        if (purge) {
                storage_image_remove(s, app_id);
                int q = kpa_rm_rf_at(s->root_fd, storage);
                if (q < 0)
                        return kpa_error_set_errno(err, -q, "purge %s: remove %s/%s", app_id,
                                                   s->root, storage);
                uid_t uid;
                bool had_uid = store_read_uid_record(s, app_id, &uid) == 0;
                if (unlinkat(s->root_fd, user, 0) < 0 && errno != ENOENT)
                        return kpa_error_set_errno(err, errno, "purge %s: remove %s/%s", app_id,
                                                   s->root, user);
                _cleanup_(uid_registry_closep) uid_registry *reg = NULL;
                if (had_uid && geteuid() == 0 && uid_registry_open(s, &reg, NULL) == 0)
                        uid_registry_release(reg, uid, app_id);
        }
        return 0;
}


int kpa_store_remove(kpa_store *s, const char *app_id, bool purge, kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        q = store_lock(s, err);
        if (q < 0)
                return q;
        q = remove_locked(s, app_id, purge, err);
        store_unlock(s);
        return q;
}

/* ---- grants of an installed package ---- */

/* The items that --grant NAMES adds to APP_ID: NAMES of what its manifest
 * requests, and a switch it does not request (the network for a start's
 * --network host; a path is granted only as requested). Each new path must
 * be one the package could open itself. */
static int grant_items(kpa_store *s, const char *app_id, const kpa_manifest *m, const char *names,
                       char ***out, kpa_error *err)
{
        _cleanup_strv_free_ char **requested = kpa_permissions_requested(m);
        _cleanup_strv_free_ char **named = NULL;
        int q = kpa_permissions_select(requested, names, &named, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *copy = kpa_xstrdup(names);
        char *save = NULL;
        _cleanup_strv_free_ char **switches = kpa_xcalloc(1, sizeof(char *));
        size_t n = 0;
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save))
                if (!streq(w, "all") && !streq(w, "readOnlyPaths")) {
                        switches = kpa_xrealloc(switches, (n + 2) * sizeof(char *));
                        switches[n++] = kpa_xstrdup(w);
                        switches[n] = NULL;
                }
        bool root = geteuid() == 0;
        uid_t uid = geteuid();
        if (root && (q = kpa_store_get_app_uid(s, app_id, &uid, NULL, err)) < 0)
                return q;
        for (char **i = named; *i; i++) {
                if (strncmp(*i, "readOnlyPaths:", 14) != 0)
                        continue;
                q = kpa_permissions_check_path(*i + 14, uid, root ? (gid_t)uid : getegid(), s->root,
                                               NULL, err);
                if (q < 0 && q != -ENOENT)
                        return kpa_error_prefix(err, "%s", app_id);
        }
        char **const sources[] = {named, switches};
        *out = permissions_union(sources, ELEMENTSOF(sources));
        return 0;
}

static int set_grants_locked(kpa_store *s, const char *app_id, const char *names, bool revoke,
                             char ***changed, kpa_error *err)
{
        if (!store_app_installed(s, app_id))
                return kpa_error_set(err, ENOENT, "%s is not installed in %s", app_id, s->root);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        int q = store_read_installed_manifest(s, app_id, &m, err);
        if (q < 0)
                return q;
        _cleanup_strv_free_ char **current = NULL, **named = NULL, **next = NULL, **diff = NULL;
        if ((q = kpa_store_get_grants(s, app_id, &current, err)) < 0)
                return q;
        if (revoke) {
                if ((q = kpa_permissions_select(current, names, &named, err)) < 0)
                        return q;
                next = kpa_permissions_filter(current, named, false);
                diff = kpa_permissions_filter(current, next, false);
        } else {
                if ((q = grant_items(s, app_id, m, names, &named, err)) < 0)
                        return q;
                diff = kpa_permissions_filter(named, current, false);
                char **const sources[] = {current, diff};
                next = permissions_union(sources, ELEMENTSOF(sources));
        }
        if (diff[0] && (q = store_write_grants(s, app_id, next, err)) < 0)
                return q;
        if (changed)
                *changed = TAKE_PTR(diff);
        return 0;
}

int kpa_store_set_grants(kpa_store *s, const char *app_id, const char *names, bool revoke,
                         char ***changed, kpa_error *err)
{
        if (changed)
                *changed = NULL;
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        q = store_lock(s, err);
        if (q < 0)
                return q;
        q = set_grants_locked(s, app_id, names, revoke, changed, err);
        store_unlock(s);
        return q;
}


void kpa_package_info_free(kpa_package_info *info)
{
        if (!info)
                return;
        kpa_manifest_free(info->manifest);
        for (size_t i = 0; i < info->n_components; i++)
                free(info->components[i]);
        free(info->components);
        free(info);
}

static kpa_package_info *package_info_new(kpa_manifest *m)
{
        kpa_package_info *info = kpa_xcalloc(1, sizeof(*info));
        info->struct_size = sizeof(*info);
        info->manifest = m;
        info->n_components = m->n_components;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        info->components = kpa_xcalloc(m->n_components + 1, sizeof(*info->components));
        for (size_t i = 0; i < m->n_components; i++) {
                info->components[i] = kpa_xcalloc(1, sizeof(kpa_component_info));
                info->components[i]->struct_size = sizeof(kpa_component_info);
                info->components[i]->component = m->components[i];
        }
        info->uid = (uid_t)-1;
        info->gid = (gid_t)-1;
        return info;
}

int kpa_store_inspect(kpa_store *s, const char *app_id, kpa_package_info **out, kpa_error *err)
{
        kpa_manifest *m = NULL;
        int q = kpa_store_load_manifest(s, app_id, &m, err);
        if (q < 0)
                return q;
        kpa_package_info *info = package_info_new(m);
        for (size_t i = 0; i < m->n_components; i++) {
                _cleanup_free_ char *path =
                        kpa_xasprintf("apps/%s/%s", app_id, m->components[i]->install_path);
                struct stat st;
                if (fstatat(s->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        info->components[i]->present = true;
                        info->components[i]->size = (uint64_t)st.st_size;
                }
        }
        (void)kpa_store_get_app_uid(s, app_id, &info->uid, &info->gid, NULL);
        info->storage_enforced = storage_image_exists(s, app_id, &info->storage_bytes);
        *out = info;
        return 0;
}

/* Sizes of a package file's components, recorded while it streams. The
 * component pointers the sink sees belong to the manifest that
 * kpa_package_read() hands over at the end, so an index is stable. */
typedef struct inspect_ctx {
        const kpa_manifest *m;
        uint64_t *sizes;
} inspect_ctx;

static int inspect_on_manifest(void *userdata, const kpa_manifest *m, const char *raw, size_t len,
                               kpa_error *err)
{
        inspect_ctx *c = userdata;
        c->m = m;
        c->sizes = kpa_xcalloc(m->n_components, sizeof(uint64_t));
        return 0;
}

static int inspect_on_close(void *userdata, const kpa_component *comp, int fd, uint64_t size,
                            kpa_error *err)
{
        inspect_ctx *c = userdata;
        size_t i = 0;
        while (c->m->components[i] != comp)
                i++;
        c->sizes[i] = size;
        return 0;
}

int kpa_package_inspect(const char *path, const kpa_package_limits *limits,
                        kpa_package_info **out, kpa_error *err)
{
        kpa_package_limits full;
        kpa_package_limits_init(&full);
        if (limits) {
                int r = kpa_struct_in(&full, limits, sizeof(full), "kpa_package_limits", err);
                if (r < 0)
                        return r;
        }
        limits = &full;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        inspect_ctx ctx = {0};
        kpa_package_sink sink = {
                .manifest = inspect_on_manifest,
                .close = inspect_on_close,
                .userdata = &ctx,
        };
        kpa_manifest *m = NULL;
        int q = kpa_package_read(fd, path, limits, &sink, &m, NULL, err);
        if (q >= 0) {
                kpa_package_info *info = package_info_new(m);
                for (size_t i = 0; i < m->n_components; i++) {
                        info->components[i]->present = true;
                        info->components[i]->size = ctx.sizes[i];
                }
                *out = info;
        }
        free(ctx.sizes);
        return q;
}

/* ---- verify ---- */

void kpa_verify_report_init(kpa_verify_report *report)
{
        memset(report, 0, sizeof(*report));
        report->struct_size = sizeof(*report);
}

void kpa_verify_report_clear(kpa_verify_report *report)
{
        for (size_t i = 0; i < report->n_entries; i++) {
                free(report->entries[i]->path);
                free(report->entries[i]);
        }
        free(report->entries);
        /* an older caller's report is shorter: clear only what it holds */
        size_t size = report->struct_size;
        if (size < sizeof(size_t) || size > sizeof(*report))
                size = sizeof(*report);
        memset((char *)report + sizeof(size_t), 0, size - sizeof(size_t));
}

static void report_add(kpa_verify_report *r, kpa_verify_problem problem, const char *path)
{
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        r->entries = kpa_xrealloc(r->entries, (r->n_entries + 1) * sizeof(*r->entries));
        kpa_verify_entry *e = kpa_xcalloc(1, sizeof(*e));
        *e = (kpa_verify_entry){sizeof(*e), problem, kpa_xstrdup(path)};
        r->entries[r->n_entries++] = e;
}

/* Is PATH a directory that some component lives under? */
static bool is_component_dir(const kpa_manifest *m, const char *path)
{
        size_t len = strlen(path);
        for (size_t i = 0; i < m->n_components; i++) {
                const char *ip = m->components[i]->install_path;
                if (strncmp(ip, path, len) == 0 && ip[len] == '/')
                        return true;
        }
        return false;
}

typedef struct verify_ctx {
        const kpa_manifest *m;
        kpa_verify_report *report;
        bool *found;
        kpa_error *err;
} verify_ctx;

static int verify_file(verify_ctx *v, int dfd, const char *name, const char *rel,
                       const struct stat *st)
{
        const kpa_component *c = kpa_manifest_find_component(v->m, rel);
        if (!c) {
                /* the signature's files are kpa_store_signature()'s to check */
                if (!streq(rel, "manifest.json") && !streq(rel, SIGN_MEMBER) &&
                    !streq(rel, SIGN_UNSIGNED_RECORD))
                        report_add(v->report, KPA_VERIFY_EXTRA, rel);
                return 0;
        }
        size_t i = 0;
        while (v->m->components[i] != c)
                i++;
        v->found[i] = true;
        mode_t want = c->type == KPA_COMPONENT_BIN ? 0755 : 0644;
        if (!S_ISREG(st->st_mode) || (st->st_mode & 07777) != want) {
                report_add(v->report, KPA_VERIFY_WRONG_TYPE, rel);
                return 0;
        }
        char hex[65];
        kpa_error ignored;
        v->report->files_checked++;
        if (kpa_sha256_file_at(dfd, name, hex, NULL, &ignored) < 0 || !streq(hex, c->digest))
                report_add(v->report, KPA_VERIFY_MODIFIED, rel);
        return 0;
}

static int verify_dir(verify_ctx *v, int dfd, const char *prefix)
{
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return kpa_error_set_errno(v->err, errno, "verify %s", prefix);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *rel = *prefix ? kpa_xasprintf("%s/%s", prefix, de->d_name)
                                                   : kpa_xstrdup(de->d_name);
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return kpa_error_set_errno(v->err, errno, "verify %s", rel);
                if (!S_ISDIR(st.st_mode)) {
                        verify_file(v, dirfd(d), de->d_name, rel, &st);
                        continue;
                }
                if (!is_component_dir(v->m, rel)) {
                        report_add(v->report, KPA_VERIFY_EXTRA, rel);
                        continue;
                }
                int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        return kpa_error_set_errno(v->err, errno, "verify %s", rel);
                int q = verify_dir(v, sub, rel);
                if (q < 0)
                        return q;
        }
        return 0;
}

static int store_verify(kpa_store *s, const char *app_id, kpa_verify_report *report,
                        kpa_error *err);

int kpa_store_verify(kpa_store *s, const char *app_id, kpa_verify_report *report, kpa_error *err)
{
        int q = kpa_struct_check(report, sizeof(kpa_verify_report), "kpa_verify_report", err);
        if (q < 0)
                return q;
        kpa_verify_report full;
        kpa_verify_report_init(&full);
        q = store_verify(s, app_id, &full, err);
        kpa_struct_out(report, &full);
        return q;
}

static int store_verify(kpa_store *s, const char *app_id, kpa_verify_report *report,
                        kpa_error *err)
{
        kpa_verify_report_init(report);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        int q = kpa_store_load_manifest(s, app_id, &m, err);
        if (q < 0)
                return q;
        int dfd = kpa_store_open_app_dir(s, app_id, err);
        if (dfd < 0)
                return dfd;
        _cleanup_free_ bool *found = kpa_xcalloc(m->n_components, sizeof(bool));
        verify_ctx v = {.m = m, .report = report, .found = found, .err = err};
        q = verify_dir(&v, dfd, "");
        if (q < 0) {
                kpa_verify_report_clear(report);
                return kpa_error_prefix(err, "%s", app_id);
        }
        for (size_t i = 0; i < m->n_components; i++)
                if (!found[i])
                        report_add(report, KPA_VERIFY_MISSING, m->components[i]->install_path);
        return 0;
}

