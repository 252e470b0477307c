/* archive-read.h: one streaming pass over a .kpa file that checks
 * everything a hostile package could get wrong (member paths and types,
 * the manifest, digests, the exact set of components, decompression limits)
 * and hands each component's bytes to a sink. Install writes them into a
 * staging directory; inspect only counts them. Nothing here touches the store. */
#ifndef KPA_ARCHIVE_READ_H
#define KPA_ARCHIVE_READ_H

#include <stdbool.h>
#include <stdint.h>

#include "kpa/manifest.h"
#include "kpa/package.h"

/* The member after manifest.json that signs it (sign.c reads and writes its
 * contents), also the installed file of that name. */
#define SIGN_MEMBER "manifest.sig"
#define SIGN_MEMBER_MAX 4096 /* bytes: a real one is about 200 */

typedef struct kpa_package_sink {
        /* The manifest was read and parsed (locales not yet loaded). May refuse
         * the package (architecture, already installed, ...). RAW is the exact
         * manifest.json text. */
        int (*manifest)(void *userdata, const kpa_manifest *m, const char *raw, size_t len,
                        kpa_error *err);
        /* A component starts: return an fd to write its bytes to, or -1 to
         * discard them (they are still hashed), or a negative errno (< -1 is
         * not possible: use the error record and return -EIO etc.). */
        int (*open)(void *userdata, const kpa_component *c, int *out_fd, kpa_error *err);
        /* A component's bytes were all written and its digest matched. */
        int (*close)(void *userdata, const kpa_component *c, int fd, uint64_t size,
                     kpa_error *err);
        void *userdata;
        kpa_progress_fn progress;
        void *progress_userdata;
        /* Before the manifest callback, and so before any component is
         * opened: the member manifest.sig (SIG, SIG_LEN; NULL when the package
         * has none, which is the member right after manifest.json or nowhere)
         * and the exact manifest.json bytes RAW that it signs. May refuse. */
        int (*signature)(void *userdata, const char *raw, size_t len, const char *sig,
                         size_t sig_len, kpa_error *err);
} kpa_package_sink;

typedef struct kpa_package_stats {
        uint64_t bytes;   /* unpacked component bytes */
        uint64_t files;   /* components */
        uint64_t members; /* archive entries */
} kpa_package_stats;

/* Read the package in FD (any readable fd: a file or a pipe) once. On success
 * *MANIFEST (if not NULL) owns the parsed manifest with its locales loaded.
 * PATH is only used in messages. */
int kpa_package_read(int fd, const char *path, const kpa_package_limits *limits,
                     const kpa_package_sink *sink, kpa_manifest **manifest,
                     kpa_package_stats *stats, kpa_error *err);

/* Check one archive member path and return its normalized form (leading
 * "./" removed, trailing "/" removed) in a new string; NULL with ERR filled
 * when it is absolute, has "..", "." or empty components, or is too long. */
char *kpa_member_path_normalize(const char *path, size_t max_len, kpa_error *err);

#endif
