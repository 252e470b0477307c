/* kpa/digest.h: SHA-256 of components and packages (nettle underneath). */
#ifndef KPA_DIGEST_H
#define KPA_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <kpa/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KPA_SHA256_SIZE 32

/* ABI: fixed: the caller's room for the hash state, large enough for
 * nettle's sha256_ctx (SHA-256 itself never changes); opaque. */
typedef struct kpa_sha256 {
        uint64_t state[16];
} kpa_sha256;

KPA_PUBLIC void kpa_sha256_init(kpa_sha256 *ctx);
KPA_PUBLIC void kpa_sha256_update(kpa_sha256 *ctx, const void *data, size_t len);
/* Write 64 lowercase hex chars and a NUL into HEX. */
KPA_PUBLIC void kpa_sha256_final_hex(kpa_sha256 *ctx, char hex[65]);

/* SHA-256 of the regular file PATH below DIRFD (symlinks not followed). */
KPA_PUBLIC int kpa_sha256_file_at(int dirfd, const char *path, char hex[65], uint64_t *size, kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
