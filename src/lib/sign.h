/* sign.h: Ed25519 signatures of packages, inside libkpa (sign.c). pack.c
 * signs with a secret key, install.c checks a package's signature against
 * the trusted keys before any component is written and records it in the
 * installed tree. The formats are described in kpa/package.h, "Signatures". */
#ifndef KPA_SIGN_H
#define KPA_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "kpa/package.h"

#include "archive-read.h" /* SIGN_MEMBER, SIGN_MEMBER_MAX: the package format */

#define SIGN_UNSIGNED_RECORD "unsigned.json" /* installed with --allow-unsigned */

/* A secret key, loaded for signing. */
typedef struct sign_key sign_key;
int kpa_sign_key_load(const char *path, sign_key **out, kpa_error *err);
void kpa_sign_key_free(sign_key *k);
static inline void sign_key_freep(sign_key **k)
{
        kpa_sign_key_free(*k);
}
const char *kpa_sign_key_name(const sign_key *k);
/* The text of the member manifest.sig that signs the LEN bytes of RAW
 * (deterministic: the same key and bytes give the same text). */
char *kpa_sign_manifest(const sign_key *k, const char *raw, size_t len, size_t *out_len);

/* The trusted public keys of a directory. */
typedef struct sign_trusted sign_trusted;
/* DIR NULL: kpa_trusted_keys_default_dir(), where a missing directory is no
 * key; a DIR given must exist. A key file that is not a regular file owned by
 * root (or the caller) and writable by its owner only, or not a key, is an
 * error. */
int kpa_sign_trusted_load(const char *dir, sign_trusted **out, kpa_error *err);
void kpa_sign_trusted_free(sign_trusted *t);
static inline void sign_trusted_freep(sign_trusted **t)
{
        kpa_sign_trusted_free(*t);
}
size_t kpa_sign_trusted_count(const sign_trusted *t);
const char *kpa_sign_trusted_dir(const sign_trusted *t);

/* Check SIG (SIG_LEN bytes, NULL: none) over RAW against T and describe it
 * in INFO. A signature member that is not well-formed is an error (EBADMSG,
 * naming what is wrong, WHAT in front); one that does not match is
 * KPA_SIGNATURE_BAD. */
int kpa_sign_check(const sign_trusted *t, const char *raw, size_t len, const char *sig,
                   size_t sig_len, const char *what, kpa_signature_info *info, kpa_error *err);

/* What an install learned about a package's signature, to be recorded. */
typedef struct sign_install {
        char *sig; /* the member manifest.sig, NULL when there was none */
        size_t sig_len;
        bool allowed_unsigned; /* went through on KPA_INSTALL_ALLOW_UNSIGNED */
} sign_install;
/* The install's policy: with a trusted key at least, refuse what is not
 * signed by one (unless KPA_INSTALL_ALLOW_UNSIGNED), and always a signature
 * that does not match. PATH names the package in messages. */
int sign_install_check(sign_install *si, const kpa_install_options *opts, const char *path,
                       const char *raw, size_t len, const char *sig, size_t sig_len,
                       kpa_error *err);
/* Write manifest.sig (and unsigned.json) into the staging tree DIRFD. */
int sign_install_record(const sign_install *si, int dirfd, const char *app_id, kpa_error *err);
void sign_install_done(sign_install *si);

#endif
