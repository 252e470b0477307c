/* fuzz-package: the streaming package reader (kpa_package_read, the pass
 * that install and inspect share) on a memfd holding the input. Component
 * bytes go to /dev/null, so that the sink's write path runs without a store
 * to clean up. Limits are small so that a decompression bomb costs little. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "archive-read.h"
#include "fuzz.h"
#include "kpa/package.h"
#include "util.h"

static int sink_manifest(void *userdata, const kpa_manifest *m, const char *raw, size_t len,
                         kpa_error *err)
{
        if (!m || !raw || len == 0)
                __builtin_trap();
        return 0;
}

static int sink_open(void *userdata, const kpa_component *c, int *out_fd, kpa_error *err)
{
        *out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (*out_fd < 0)
                return kpa_error_set_errno(err, errno, "/dev/null");
        return 0;
}

static int sink_close(void *userdata, const kpa_component *c, int fd, uint64_t size,
                      kpa_error *err)
{
        uint64_t *files = userdata;
        (*files)++;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_close_ int fd = memfd_create("fuzz.kpa", MFD_CLOEXEC);
        if (fd < 0 || kpa_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) != 0)
                __builtin_trap();
        kpa_package_limits limits;
        kpa_package_limits_init(&limits);
        limits.max_total_bytes = 8u << 20;
        limits.max_members = 1000;
        limits.ratio_min_bytes = 1u << 20;
        uint64_t files = 0;
        kpa_package_sink sink = {
                .manifest = sink_manifest,
                .open = sink_open,
                .close = sink_close,
                .userdata = &files,
        };
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_package_stats stats = {0};
        kpa_error err = {.code = -1}; /* so that an unfilled error shows */
        int r = kpa_package_read(fd, "fuzz.kpa", &limits, &sink, &m, &stats, &err);
        if (r == 0) {
                /* a package that passed holds exactly its components */
                if (!m || stats.files != m->n_components || files != stats.files)
                        __builtin_trap();
                (void)kpa_manifest_localize(m, m->application.name, "en");
        } else if (m || err.message[0] == '\0' || err.code != -r) {
                __builtin_trap(); /* failures leave no manifest and say why */
        }
        return 0;
}
