/* kpa/package.h: KPA packages and the store (the PackageManager).
 *
 * A package is a pax tar (plain, zstd, xz or gzip) whose first member is
 * manifest.json and whose other members are exactly the manifest's
 * components. The store keeps installed packages under ROOT/apps/APP_ID,
 * private storage under ROOT/storage/APP_ID, and publishes every change with
 * one atomic rename under the lock ROOT/.lock. */
#ifndef KPA_PACKAGE_H
#define KPA_PACKAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kpa/error.h>
#include <kpa/manifest.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Writing packages (kpa-pack) ---- */

typedef enum kpa_compression {
        KPA_COMPRESS_ZSTD = 0,
        KPA_COMPRESS_XZ,
        KPA_COMPRESS_GZIP,
        KPA_COMPRESS_NONE,
} kpa_compression;

/* Called after each member is written: its path in the package, the file it
 * came from, its size and SHA-256 (kpa-pack -v). */
typedef void (*kpa_pack_member_fn)(const char *member, const char *source, uint64_t size,
                                   const char *digest, void *userdata);

typedef struct kpa_pack_options {
        size_t struct_size; /* sizeof, set by kpa_pack_options_init() (see kpa/error.h) */
        const char *manifest_path; /* the manifest to pack (digests may be empty) */
        const char *const *inputs; /* files and directories holding the components */
        size_t n_inputs;
        const char *output_path;   /* written atomically: nothing is left on failure */
        kpa_compression compression;
        int64_t mtime;             /* member mtime; < 0: $SOURCE_DATE_EPOCH, else 0 */
        kpa_pack_member_fn on_member; /* may be NULL */
        void *userdata;               /* passed to on_member */
        const char *sign_key;         /* NAME.key: sign the package (see "Signatures") */
} kpa_pack_options;

KPA_PUBLIC void kpa_pack_options_init(kpa_pack_options *opts);
/* Build a package: find each component among the inputs, fill in empty
 * digests, check given ones, refuse missing components and files in an input
 * directory that the manifest does not list. The output is deterministic. */
KPA_PUBLIC int kpa_pack(const kpa_pack_options *opts, kpa_error *err);
/* Parse "zstd", "xz", "gzip" or "none". */
KPA_PUBLIC int kpa_compression_from_string(const char *s, kpa_compression *out);

/* ---- Reading packages ---- */

/* Limits on what a package may unpack to; kpa_package_limits_init() gives the
 * defaults (documented in kpa-install(8)). */
typedef struct kpa_package_limits {
        size_t struct_size; /* sizeof, set by kpa_package_limits_init() (see kpa/error.h) */
        uint64_t max_total_bytes;  /* sum of member sizes */
        uint64_t max_members;      /* archive entries, directories included */
        size_t max_path_len;       /* bytes in one member path */
        uint64_t max_ratio;        /* unpacked bytes per packed byte ... */
        uint64_t ratio_min_bytes;  /* ... checked once this much has been unpacked */
} kpa_package_limits;
KPA_PUBLIC void kpa_package_limits_init(kpa_package_limits *limits);

/* Progress of a long operation: DONE of TOTAL bytes (TOTAL 0 when unknown). */
typedef void (*kpa_progress_fn)(uint64_t done, uint64_t total, void *userdata);

/* Information about a package file or an installed package (kpa-install
 * --info): made by the library, versioned like kpa_manifest. */
typedef struct kpa_component_info {
        size_t struct_size;             /* sizeof, set by the library (see kpa/error.h) */
        const kpa_component *component; /* points into the manifest */
        uint64_t size;
        bool present;
} kpa_component_info;

typedef struct kpa_package_info {
        size_t struct_size;             /* sizeof, set by the library (see kpa/error.h) */
        kpa_manifest *manifest;         /* owned; locales loaded */
        kpa_component_info **components; /* one per manifest component, same order */
        size_t n_components;
        uid_t uid;                      /* installed packages: the package's own uid; -1 if none */
        gid_t gid;
        /* installed packages: privateStorage.size is enforced (the storage
         * is a file system image of STORAGE_BYTES) */
        bool storage_enforced;
        uint64_t storage_bytes;
} kpa_package_info;

/* Read and fully verify the package file PATH (same checks as install, nothing
 * written) and describe it. */
KPA_PUBLIC int kpa_package_inspect(const char *path, const kpa_package_limits *limits,
                        kpa_package_info **out, kpa_error *err);
KPA_PUBLIC void kpa_package_info_free(kpa_package_info *info);
static inline void kpa_package_info_freep(kpa_package_info **p)
{
        if (*p)
                kpa_package_info_free(*p);
}

/* ---- The store ---- */

typedef struct kpa_store kpa_store;

/* The store root: ROOT if not NULL, else $KPA_ROOT, else the build-time
 * default (LOCALSTATEDIR/lib/kpa). */
KPA_PUBLIC const char *kpa_store_default_root(const char *root);

enum {
        KPA_STORE_CREATE = 1u << 0, /* create ROOT and its layout when missing */
};
KPA_PUBLIC int kpa_store_open(const char *root, unsigned flags, kpa_store **out, kpa_error *err);
KPA_PUBLIC void kpa_store_close(kpa_store *store);
static inline void kpa_store_closep(kpa_store **s)
{
        if (*s)
                kpa_store_close(*s);
}
KPA_PUBLIC const char *kpa_store_root(const kpa_store *store);
/* Is APP_ID's privateStorage.size enforced (its storage is a file system
 * image of that size, made at install by root)? Its size into BYTES. */
KPA_PUBLIC bool kpa_store_storage_enforced(kpa_store *store, const char *app_id, uint64_t *bytes);
/* A directory fd of the store root (owned by the store). */
KPA_PUBLIC int kpa_store_root_fd(const kpa_store *store);

enum {
        KPA_INSTALL_REINSTALL = 1u << 0,  /* same version again */
        KPA_INSTALL_FORCE_ARCH = 1u << 1, /* ignore hwSpecification.arch */
        KPA_INSTALL_ALLOW_UNSIGNED = 1u << 2, /* install without a trusted signature (recorded) */
        KPA_INSTALL_ALLOW_DOWNGRADE = 1u << 3, /* a lower version than the installed one */
};

/* Before a package is published: the permissions its manifest requests
 * (REQUESTED), the ones it will hold once installed (GRANTED), and those of
 * REQUESTED that the installed version did not hold (NEW; on a new install,
 * every request; UPGRADE tells which). Lists of permission items (see
 * "Permissions" below). */
typedef void (*kpa_permissions_fn)(const char *app_id, char *const *requested, char *const *granted,
                                   char *const *new_requests, bool upgrade, void *userdata);

typedef struct kpa_install_options {
        size_t struct_size; /* sizeof, set by kpa_install_options_init() (see kpa/error.h) */
        unsigned flags;
        const kpa_package_limits *limits; /* NULL: kpa_package_limits_init()'s defaults */
        kpa_progress_fn progress;
        void *userdata;
        /* Permissions to grant: "all", or names joined by ',' ("network,
         * readOnlyPaths"); NULL: none. What an installed version held stays
         * granted as long as it is still requested. */
        const char *grant;
        /* Where the policy files APP_ID.json are (NULL: SYSCONFDIR/kpa/policy.d). */
        const char *policy_dir;
        kpa_permissions_fn on_permissions; /* may be NULL; gets USERDATA */
        /* Where the trusted keys *.pub are (NULL: SYSCONFDIR/kpa/trusted.d). */
        const char *trusted_keys_dir;
} kpa_install_options;
KPA_PUBLIC void kpa_install_options_init(kpa_install_options *opts);

typedef enum kpa_install_action {
        KPA_INSTALL_ACTION_NEW = 0,
        KPA_INSTALL_ACTION_UPGRADE,   /* a different version replaced the old one */
        KPA_INSTALL_ACTION_REINSTALL, /* the same version again */
        KPA_INSTALL_ACTION_DOWNGRADE, /* a lower version replaced the installed one */
        KPA_INSTALL_ACTION_ROLLBACK,  /* kpa_store_rollback() swapped in the previous version */
} kpa_install_action;

typedef struct kpa_install_result {
        size_t struct_size; /* sizeof, set by kpa_install_result_init() (see kpa/error.h) */
        char app_id[129];
        char version[256];
        char old_version[256]; /* "" for a new install */
        kpa_install_action action;
        uid_t uid;
        uint64_t bytes; /* unpacked bytes */
        uint64_t files;
} kpa_install_result;
KPA_PUBLIC void kpa_install_result_init(kpa_install_result *result);

/* Install the package file PATH (a regular file, or a pipe read once). */
KPA_PUBLIC int kpa_store_install(kpa_store *store, const char *path, const kpa_install_options *opts,
                      kpa_install_result *result, kpa_error *err);

/* Versions are ordered as dpkg orders Debian versions (deb-version(7):
 * [EPOCH:]UPSTREAM[-REVISION], '~' sorts before anything, even the end):
 * < 0, 0 or > 0 as A is lower than, equal to or higher than B. A package's
 * order is its version's, then its buildNumber's. An install of a lower
 * one than the installed is a downgrade, refused without
 * KPA_INSTALL_ALLOW_DOWNGRADE. */
KPA_PUBLIC int kpa_version_compare(const char *a, const char *b);
KPA_PUBLIC int kpa_package_version_compare(const char *version_a, const char *build_a, const char *version_b,
                                const char *build_b);

/* ---- Versions kept, holds, and who runs a package ----
 *
 * An upgrade or a downgrade keeps the version it replaced in
 * ROOT/previous/APP_ID. kpa_store_rollback() swaps the two with one atomic
 * exchange, keeping the uid, the private storage and the grants; a second
 * rollback goes forward again. The previous version must pass the
 * signature rules of the keys trusted now (TRUSTED_KEYS_DIR, NULL: the
 * default; see "Signatures"), as an install of it would. */
KPA_PUBLIC int kpa_store_rollback(kpa_store *store, const char *app_id, const char *trusted_keys_dir,
                       kpa_install_result *result, kpa_error *err);
/* The version and buildNumber kept as previous; -ENOENT when none is. */
KPA_PUBLIC int kpa_store_previous_version(kpa_store *store, const char *app_id, char version[256],
                               char build[256], kpa_error *err);
/* A held package (ROOT/holds/APP_ID) is not upgraded, downgraded,
 * reinstalled or rolled back until it is unheld; removal takes the hold too. */
KPA_PUBLIC int kpa_store_set_hold(kpa_store *store, const char *app_id, bool hold, kpa_error *err);
/* A private storage with a size (a file system image) stays mounted for
 * KPA_STORAGE_LINGER seconds (default 30; 0: not at all) after its last
 * instance ends, held by a process named "kpa-keep", so that the next start
 * need not mount it again. End that now, e.g. before copying or checking
 * the image, and wait until it is done: the file system is then unmounted
 * unless an instance still runs. 0 also when nothing was kept; -ENOENT when
 * APP_ID is neither installed nor has an image. */
KPA_PUBLIC int kpa_store_release_storage(kpa_store *store, const char *app_id, kpa_error *err);
KPA_PUBLIC bool kpa_store_held(kpa_store *store, const char *app_id);
/* Application ids whose package was removed but whose private storage or
 * uid is kept (a removal without purge), sorted, NULL-terminated. */
KPA_PUBLIC int kpa_store_list_removed(kpa_store *store, char ***out, size_t *n, kpa_error *err);

/* Which tree of APP_ID a process runs from. A tree replaced or removed
 * while processes run from it is kept in ROOT/retired until they end. */
typedef enum kpa_app_tree {
        KPA_APP_TREE_CURRENT = 0,
        KPA_APP_TREE_PREVIOUS,
        KPA_APP_TREE_RETIRED,
} kpa_app_tree;

typedef struct kpa_app_process {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        pid_t pid; /* on the host */
        bool init; /* the init of an instance (pid 1 of its pid namespace) */
        kpa_app_tree tree;
} kpa_app_process;

/* The processes, on this host, that run APP_ID from this store (its
 * directory is /APP_ID in their root), whoever started them: kpa-execd or
 * kpa-run. *OUT is an array of *N pointers to them and a NULL, all in
 * one block: free(*OUT) frees it all. Needs the right to look into other
 * processes' roots (root, or the owner). */
KPA_PUBLIC int kpa_store_app_processes(kpa_store *store, const char *app_id, kpa_app_process ***out,
                                       size_t *n, kpa_error *err);

/* Remove an installed package; PURGE also removes its private storage and
 * releases its uid. */
KPA_PUBLIC int kpa_store_remove(kpa_store *store, const char *app_id, bool purge, kpa_error *err);

/* Installed application ids, sorted; *OUT is a NULL-terminated list. */
KPA_PUBLIC int kpa_store_list(kpa_store *store, char ***out, size_t *n, kpa_error *err);

/* The manifest of an installed package (locales loaded). */
KPA_PUBLIC int kpa_store_load_manifest(kpa_store *store, const char *app_id, kpa_manifest **out,
                            kpa_error *err);
/* Describe an installed package. */
KPA_PUBLIC int kpa_store_inspect(kpa_store *store, const char *app_id, kpa_package_info **out,
                      kpa_error *err);

/* Directory fds of an installed package and its private storage. */
KPA_PUBLIC int kpa_store_open_app_dir(kpa_store *store, const char *app_id, kpa_error *err);
KPA_PUBLIC int kpa_store_open_storage_dir(kpa_store *store, const char *app_id, kpa_error *err);

typedef enum kpa_verify_problem {
        KPA_VERIFY_MODIFIED = 0, /* content differs from the digest */
        KPA_VERIFY_MISSING,
        KPA_VERIFY_EXTRA,
        KPA_VERIFY_WRONG_TYPE,   /* not a regular file, or wrong mode */
} kpa_verify_problem;

typedef struct kpa_verify_entry {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        kpa_verify_problem problem;
        char *path; /* relative to the package root */
} kpa_verify_entry;

typedef struct kpa_verify_report {
        size_t struct_size; /* sizeof, set by kpa_verify_report_init() (see kpa/error.h) */
        kpa_verify_entry **entries; /* made by the library */
        size_t n_entries;
        uint64_t files_checked;
} kpa_verify_report;
KPA_PUBLIC void kpa_verify_report_init(kpa_verify_report *report);
/* Free REPORT's entries and empty it (its struct_size stays). */
KPA_PUBLIC void kpa_verify_report_clear(kpa_verify_report *report);
/* Re-hash an installed package; returns 0 even when it found problems
 * (see REPORT); negative only when it could not check. */
KPA_PUBLIC int kpa_store_verify(kpa_store *store, const char *app_id, kpa_verify_report *report,
                     kpa_error *err);

/* The uid/gid that the store allocated to APP_ID at install. */
KPA_PUBLIC int kpa_store_get_app_uid(kpa_store *store, const char *app_id, uid_t *uid, gid_t *gid,
                          kpa_error *err);

/* ---- Permissions ----
 *
 * Every setting of extensions.KPA_sandbox that widens the sandbox is a
 * request, applied only once the administrator grants it. A permission item
 * is a name ("network", "allowPtrace", "allowPerfEvents", "allowBpf",
 * "allowKeyring", "allowUserfaultfd", "allowPersonality") or, one per path,
 * "readOnlyPaths:/the/path", and one per socket that extensions.KPA_sockets
 * declares, "sockets:tcp:127.0.0.1:8080" or "sockets:unix:ctl.sock". Lists of items are NULL-terminated and sorted;
 * free them with kpa_strv_free(). The grants of a package are recorded in
 * ROOT/grants/APP_ID; policy files and that record are JSON objects shaped
 * like KPA_sandbox: {"network": "host", "readOnlyPaths": ["/srv/data"],
 * "allowKeyring": true, "sockets": ["tcp:127.0.0.1:8080"]}. */

KPA_PUBLIC void kpa_strv_free(char **v);
KPA_PUBLIC bool kpa_permission_known(const char *name);
/* "network (the host's network ...)": one line for a person. free() it. */
KPA_PUBLIC char *kpa_permission_describe(const char *item);
/* The items that M's KPA_sandbox and KPA_sockets request. */
KPA_PUBLIC char **kpa_permissions_requested(const kpa_manifest *m);
KPA_PUBLIC bool kpa_permissions_contain(char *const *list, const char *item);
/* The items of A that are (KEEP) or are not (!KEEP) in B. */
KPA_PUBLIC char **kpa_permissions_filter(char *const *a, char *const *b, bool keep);
/* The items of REQUESTED that NAMES ("all" or names joined by ',') name;
 * -EINVAL for a name that is no permission. */
KPA_PUBLIC int kpa_permissions_select(char *const *requested, const char *names, char ***out, kpa_error *err);
/* Parse TEXT, a KPA_sandbox-shaped object (WHAT names it in errors). */
KPA_PUBLIC int kpa_permissions_from_json(const char *text, const char *what, char ***out, kpa_error *err);
/* The JSON form of ITEMS, ending in a newline; free() it. */
KPA_PUBLIC char *kpa_permissions_to_json(char *const *items);
/* SYSCONFDIR/kpa/policy.d */
KPA_PUBLIC const char *kpa_policy_default_dir(void);
/* The items of REQUESTED that the policy file DIR/APP_ID.json grants (a
 * policy path also grants the paths below it); none when there is no such
 * file. A file that is not a regular file owned by root (or the caller) and
 * writable by its owner only is refused. *PATH_OUT (if not NULL): the file
 * read, or NULL. */
KPA_PUBLIC int kpa_policy_grants(const char *dir, const char *app_id, char *const *requested, char ***out,
                      char **path_out, kpa_error *err);
/* The items granted to APP_ID (none when nothing was granted). */
KPA_PUBLIC int kpa_store_get_grants(kpa_store *store, const char *app_id, char ***out, kpa_error *err);
/* Grant (or REVOKE) the permissions NAMES ("all" or names joined by ',')
 * of the installed APP_ID. A grant is of what its manifest requests; a
 * revoke removes any item of those names. *CHANGED (if not NULL): the items
 * added or removed. */
KPA_PUBLIC int kpa_store_set_grants(kpa_store *store, const char *app_id, const char *names, bool revoke,
                         char ***changed, kpa_error *err);
/* Can a read-only bind of the host PATH be made for a package that runs as
 * UID/GID? Not inside a kpa store (STORE_ROOT, the default one, $KPA_ROOT),
 * /run/kpa, /proc, /sys or /dev, nor containing one; a regular file or a
 * directory, not a socket, device node or FIFO; every directory on the way
 * searchable by UID and the node readable by it (mode bits). -ENOENT when
 * PATH is missing, -EPERM or -EACCES when refused, ERR naming the path and
 * the reason. *OUT_FD (if not NULL): an O_PATH fd of the node checked. */
KPA_PUBLIC int kpa_permissions_check_path(const char *path, uid_t uid, gid_t gid, const char *store_root,
                               int *out_fd, kpa_error *err);
/* The part of M's KPA_sandbox that the store grants it (what a start
 * applies), into OUT (set up with kpa_sandbox_settings_init());
 * *NETWORK_GRANTED: whether "network" is granted at all. Free OUT's
 * read_only_paths with kpa_strv_free(). */
KPA_PUBLIC int kpa_store_effective_sandbox(kpa_store *store, const kpa_manifest *m, kpa_sandbox_settings *out,
                                bool *network_granted, kpa_error *err);
/* 0 when every socket that RC declares (KPA_sockets) is granted; else
 * -EPERM with ERR naming the socket and the permission to grant. */
KPA_PUBLIC int kpa_store_check_sockets(kpa_store *store, const kpa_manifest *m, const kpa_run_config *rc,
                            kpa_error *err);

#define KPA_UID_RANGE_FIRST 61184
#define KPA_UID_RANGE_LAST 65519

/* ---- Signatures ----
 *
 * A package signed with an Ed25519 key (kpa-pack --sign) holds the member
 * manifest.sig right after manifest.json: one line of JSON,
 *   {"algorithm": "ed25519", "key": "SHA256-OF-THE-PUBLIC-KEY-IN-HEX",
 *    "signature": "BASE64"}
 * The signature is over "kpa-manifest-signature-v1\n" followed by the exact
 * bytes of manifest.json, which carries every component's SHA-256: it
 * covers every byte that gets installed. Key files are one line of text:
 *   NAME.key   kpa-ed25519-secret BASE64-OF-THE-32-BYTE-SEED NAME   (0600)
 *   NAME.pub   kpa-ed25519-public BASE64-OF-THE-32-BYTE-KEY NAME
 * A key's name is its file name without .pub (or .key). Its fingerprint is
 * the SHA-256 of the raw public key; people are shown its first 16 bytes as
 * 8 groups of 4 hex digits ("1a2b:3c4d:..."). The trusted keys are the
 * *.pub files of SYSCONFDIR/kpa/trusted.d (or --trusted-keys DIR): regular
 * files owned by root (or the caller), writable by their owner only. When
 * one key at least is trusted, an install refuses a package that is not
 * signed by one of them (unless KPA_INSTALL_ALLOW_UNSIGNED, which is
 * recorded), and always one whose signature does not match. The installed
 * package keeps it as apps/APP_ID/manifest.sig, and an install through
 * KPA_INSTALL_ALLOW_UNSIGNED leaves apps/APP_ID/unsigned.json. */

#define KPA_KEY_NAME_MAX 64
#define KPA_FINGERPRINT_TEXT_LEN 39 /* "1a2b:3c4d:5e6f:7a8b:9c0d:1e2f:3a4b:5c6d" */

typedef enum kpa_signature_status {
        KPA_SIGNATURE_UNSIGNED = 0,
        KPA_SIGNATURE_TRUSTED,     /* signed by a trusted key, and it matches */
        KPA_SIGNATURE_UNKNOWN_KEY, /* signed by a key that is not trusted */
        KPA_SIGNATURE_BAD,         /* by a trusted key, but it does not match */
} kpa_signature_status;

typedef struct kpa_signature_info {
        size_t struct_size; /* sizeof, set by kpa_signature_info_init() (see kpa/error.h) */
        kpa_signature_status status;
        char key_name[KPA_KEY_NAME_MAX + 1];            /* TRUSTED, BAD: the trusted key */
        char fingerprint[KPA_FINGERPRINT_TEXT_LEN + 1]; /* of the signing key; "" if unsigned */
        bool allowed_unsigned; /* installed packages: installed with --allow-unsigned */
        size_t n_trusted;      /* how many keys were trusted */
        char problem[256];     /* BAD: what does not match */
} kpa_signature_info;
KPA_PUBLIC void kpa_signature_info_init(kpa_signature_info *info);

/* SYSCONFDIR/kpa/trusted.d */
KPA_PUBLIC const char *kpa_trusted_keys_default_dir(void);
/* Make a new key pair: PATH.key (mode 0600) and PATH.pub; refuses to
 * overwrite either. The key's name is PATH's last component: letters,
 * digits, '.', '_', '-', not starting with '.'. FINGERPRINT (if not NULL)
 * gets the text form. */
KPA_PUBLIC int kpa_key_generate(const char *path, char fingerprint[KPA_FINGERPRINT_TEXT_LEN + 1],
                     kpa_error *err);
/* Read the key file PATH (NAME.key or NAME.pub) and tell its name and the
 * fingerprint of its public key. A secret key readable or writable by group
 * or others is refused. */
KPA_PUBLIC int kpa_key_describe(const char *path, char name[KPA_KEY_NAME_MAX + 1],
                     char fingerprint[KPA_FINGERPRINT_TEXT_LEN + 1], kpa_error *err);
/* Who signed the package file PATH, checked against the trusted keys of DIR
 * (NULL: the default). Reads only manifest.json and manifest.sig: the rest
 * of the package is kpa_package_inspect()'s to check. */
KPA_PUBLIC int kpa_package_signature(const char *path, const char *trusted_keys_dir, kpa_signature_info *out,
                          kpa_error *err);
/* The same for the installed APP_ID, from its manifest.json, manifest.sig
 * and unsigned.json (a modified manifest.json or manifest.sig is BAD). */
KPA_PUBLIC int kpa_store_signature(kpa_store *store, const char *app_id, const char *trusted_keys_dir,
                        kpa_signature_info *out, kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
