/* store-internal.h: what store.c (reading the store) and install.c (writing
 * it, checking packages) share: the store handle and a few helpers. Not
 * exported from libkpa. */
#ifndef KPA_STORE_INTERNAL_H
#define KPA_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kpa/package.h"

typedef struct manifest_cache manifest_cache;

struct kpa_store {
        char *root;
        int root_fd;
        int lock_fd; /* -1 unless the writer lock is held */
        manifest_cache *manifests; /* manifest-cache.c; NULL: off */
};

/* The writer lock ROOT/.lock (install.c): waits for other writers, then
 * finishes or cleans what a crashed writer left in .staging. */
int store_lock(kpa_store *s, kpa_error *err);
/* Install the package stream read from FD (NAME in messages); see
 * kpa_store_install(), which opens a file for it. */
/* OPTS (NULL: the defaults) as a whole struct of this version into FULL,
 * checking its struct_size and its limits' (kpa_struct_in); FULL's limits
 * point to LIMITS, a whole kpa_package_limits (the defaults, or OPTS's). */
int install_options_in(const kpa_install_options *opts, kpa_install_options *full,
                       kpa_package_limits *limits, kpa_error *err);
int store_install_fd(kpa_store *s, int fd, const char *name, const kpa_install_options *opts,
                     kpa_install_result *result, kpa_error *err);
void store_unlock(kpa_store *s);
/* fsync the directory PATH below DIRFD: what was renamed into it stays. */
int store_fsync_dir_at(int dirfd, const char *path);

/* Versions kept and who runs them (store-versions.c). */
/* Publish STAGING_NAME as APP_ID; the installed tree becomes previous/APP_ID. */
int store_publish_keeping_previous(kpa_store *s, const char *app_id, const char *staging_name,
                                   kpa_error *err);
/* Delete the tree at PATH (below the root), or move it to retired/ while
 * processes run from it. */
void store_discard_tree(kpa_store *s, const char *app_id, const char *path);
/* Remove previous/APP_ID and the hold of APP_ID (a removal). */
void store_forget_versions(kpa_store *s, const char *app_id);
/* With the lock held: finish or delete the .staging entry NAME (in DIRFD). */
void store_recover_staging(kpa_store *s, int dirfd, const char *name);
/* With the lock held: delete retired trees nobody runs from. */
void store_after_lock(kpa_store *s);

/* kpa_store_signature() of the tree TOP/APP_ID ("apps" or "previous"). */
int store_tree_signature(kpa_store *s, const char *top, const char *app_id,
                         const char *trusted_keys_dir, kpa_signature_info *out, kpa_error *err);

/* Create apps/, storage/, users/ and .staging/ below ROOT_FD where missing. */
int store_create_layout(int root_fd, const char *root, kpa_error *err);
/* users/APP_ID: the uid allocated at install. */
int store_read_uid_record(kpa_store *s, const char *app_id, uid_t *uid);
/* TOP/NAME/manifest.json (TOP: apps, previous, .staging), parsed (without
 * its locales). */
int store_read_tree_manifest(kpa_store *s, const char *top, const char *name, kpa_manifest **out,
                             kpa_error *err);
/* apps/APP_ID/manifest.json, parsed (without its locales). */
int store_read_installed_manifest(kpa_store *s, const char *app_id, kpa_manifest **out,
                                  kpa_error *err);
bool store_app_installed(kpa_store *s, const char *app_id);
/* grants/APP_ID, written atomically and synced; an empty ITEMS removes it.
 * The caller holds the lock (permissions.c). */
int store_write_grants(kpa_store *s, const char *app_id, char *const *items, kpa_error *err);
/* A store-safe application id: no '/', not "." or "..", at most 128 chars. */
int store_check_app_id(const char *app_id, kpa_error *err);

/* The cache of installed manifests (manifest-cache.c), for kpa-execd. */
typedef struct manifest_ref manifest_ref;
/* Turn it on or off (off: forget every entry). */
void store_cache_manifests(kpa_store *s, bool on);
/* Forget APP_ID's entry (NULL: all): kpa-install said it changed. */
void store_forget_manifest(kpa_store *s, const char *app_id);
/* APP_ID's installed manifest with its locales, as kpa_store_load_manifest
 * gives it: from the cache while its files are unchanged, else loaded (and
 * cached when the cache is on). *M stays valid until manifest_ref_put(*REF). */
int store_manifest_ref(kpa_store *s, const char *app_id, const kpa_manifest **m,
                       manifest_ref **ref, kpa_error *err);
void manifest_ref_put(manifest_ref *ref);
static inline void manifest_ref_putp(manifest_ref **ref) { manifest_ref_put(*ref); }
/* Starts served from the cache, and starts that loaded the manifest. */
void store_manifest_cache_stats(kpa_store *s, unsigned long *hits, unsigned long *misses);

/* Private storage of a given size, an image file (storage-image.c). */
const char *storage_image_fs_type(const char *fs_type);
int storage_image_create(kpa_store *s, const char *app_id, uint64_t size_mb, const char *fs_type,
                         uid_t uid, kpa_error *err);
bool storage_image_exists(kpa_store *s, const char *app_id, uint64_t *bytes);
/* A detached mount of APP_ID's image into MOUNT_FD (an fd for
 * move_mount/open_tree), or -1 there when its storage is a plain
 * directory. An image that cannot be mounted is an error: never the
 * directory instead, whose size nothing limits. */
int storage_image_open_mount(kpa_store *s, const char *app_id, int *mount_fd, kpa_error *err);
/* Unmount and delete it (a purge). */
void storage_image_remove(kpa_store *s, const char *app_id);
/* End the keeper of APP_ID's image (storage-keep.c), if it has one, and
 * wait until it is gone: its file system is then unmounted unless an
 * instance still uses it. */
int storage_image_release(kpa_store *s, const char *app_id, kpa_error *err);

/* storage-keep.c: KPA_STORAGE_LINGER (seconds, default 30) into *SECONDS;
 * -EINVAL with ERR set when it is not a number of seconds. */
int storage_keep_linger(unsigned *seconds, kpa_error *err);
/* Keep the superblock of the detached mount MNT_FD of the image IMG_FD for
 * LINGER_S seconds after its last use, unless a keeper does already. */
void storage_keep(int img_fd, int mnt_fd, const char *app_id, unsigned linger_s);
/* End IMG_FD's keeper and wait for it; 0 when there is none. */
int storage_keep_release(int img_fd, kpa_error *err);
/* A clone of the mount the image IMG_FD's keeper holds, or -1 (none). */
int storage_keep_clone(int img_fd);

/* The host-wide registry of the uids given out (uid-registry.c): open takes
 * its lock for the store S until close. */
typedef struct uid_registry uid_registry;
const char *uid_registry_path(void);
int uid_registry_open(const kpa_store *s, uid_registry **out, kpa_error *err);
void uid_registry_close(uid_registry *r);
static inline void uid_registry_closep(uid_registry **r) { uid_registry_close(*r); }
/* UID belongs to another package, of this store or another. */
bool uid_registry_taken(uid_registry *r, uid_t uid, const char *app_id);
int uid_registry_claim(uid_registry *r, uid_t uid, const char *app_id, kpa_error *err);
/* Forget UID, if the registry has it for APP_ID of this store. */
void uid_registry_release(uid_registry *r, uid_t uid, const char *app_id);

#endif
