/* test-files.h: what the unit tests that make packages share (one header,
 * no library): a file written whole, the host's architecture as a
 * manifest names it, and a package packed of one input. */
#ifndef KPA_TEST_FILES_H
#define KPA_TEST_FILES_H

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kpa/package.h"
#include "util.h"

/* PATH made (or emptied) with CONTENT, mode MODE less the umask; aborts
 * the test on an error. */
__attribute__((unused)) static void write_file_mode(const char *path, const char *content,
                                                    mode_t mode)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || kpa_write_all(fd, content, strlen(content)) < 0)
                abort();
}

__attribute__((unused)) static void write_file(const char *path, const char *content)
{
        write_file_mode(path, content, 0644);
}

/* The manifest's name of the architecture these tests run on. */
__attribute__((unused)) static const char *host_arch(void)
{
#if defined(__x86_64__)
        return "x86_64";
#elif defined(__aarch64__)
        return "aarch64";
#else
        return "";
#endif
}

/* MANIFEST and the one input INPUT (a file or a directory) packed,
 * uncompressed, into OUT: kpa_pack()'s result. */
__attribute__((unused)) static int pack_one(const char *manifest, const char *input,
                                            const char *out, kpa_error *err)
{
        const char *inputs[] = {input};
        kpa_pack_options opts;
        kpa_pack_options_init(&opts);
        opts.manifest_path = manifest;
        opts.output_path = out;
        opts.inputs = inputs;
        opts.n_inputs = 1;
        opts.compression = KPA_COMPRESS_NONE;
        return kpa_pack(&opts, err);
}

#endif
