/* digest.c: SHA-256 through nettle, as hex strings the manifest compares. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <nettle/sha2.h>

#include "kpa/digest.h"
#include "util.h"

_Static_assert(sizeof(struct sha256_ctx) <= sizeof(kpa_sha256), "kpa_sha256 too small");

void kpa_sha256_init(kpa_sha256 *ctx) { sha256_init((struct sha256_ctx *)ctx); }

void kpa_sha256_update(kpa_sha256 *ctx, const void *data, size_t len)
{
        sha256_update((struct sha256_ctx *)ctx, len, data);
}

void kpa_sha256_final_hex(kpa_sha256 *ctx, char hex[65])
{
        static const char digits[] = "0123456789abcdef";
        uint8_t raw[SHA256_DIGEST_SIZE];
        sha256_digest((struct sha256_ctx *)ctx, sizeof(raw), raw);
        for (size_t i = 0; i < sizeof(raw); i++) {
                hex[2 * i] = digits[raw[i] >> 4];
                hex[2 * i + 1] = digits[raw[i] & 0xf];
        }
        hex[64] = '\0';
}

int kpa_sha256_file_at(int dirfd, const char *path, char hex[65], uint64_t *size, kpa_error *err)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        if (!S_ISREG(st.st_mode))
                return kpa_error_set(err, EINVAL, "%s: not a regular file", path);
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        kpa_sha256 ctx;
        kpa_sha256_init(&ctx);
        static __thread char buf[128 * 1024];
        uint64_t total = 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return kpa_error_set_errno(err, errno, "read %s", path);
                }
                if (n == 0)
                        break;
                kpa_sha256_update(&ctx, buf, (size_t)n);
                total += (uint64_t)n;
        }
        kpa_sha256_final_hex(&ctx, hex);
        if (size)
                *size = total;
        return 0;
}
