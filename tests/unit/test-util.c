/* Unit tests for util.c and digest.c. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "kpa/digest.h"
#include "tap.h"
#include "util.h"

static void test_error(void)
{
        kpa_error err;
        kpa_error_clear(&err);
        is(err.code, 0, "cleared error has code 0");
        int r = kpa_error_set(&err, ENOENT, "thing %s", "x");
        is(r, -ENOENT, "kpa_error_set returns -code");
        is_str(err.message, "thing x", "message formatted");
        kpa_error_prefix(&err, "install %s", "app");
        is_str(err.message, "install app: thing x", "prefix added");
        kpa_error_set_errno(&err, EACCES, "open %s", "/f");
        has_str(err.message, "open /f: Permission denied", "errno text appended");
        is(kpa_error_set(NULL, EINVAL, "x"), -EINVAL, "NULL error record allowed");
}

static void test_sha256(void)
{
        kpa_sha256 ctx;
        char hex[65];
        kpa_sha256_init(&ctx);
        kpa_sha256_final_hex(&ctx, hex);
        is_str(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "sha256 of empty input");
        kpa_sha256_init(&ctx);
        kpa_sha256_update(&ctx, "ab", 2);
        kpa_sha256_update(&ctx, "c", 1);
        kpa_sha256_final_hex(&ctx, hex);
        is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
               "sha256 of abc in pieces");
}

static void test_files(void)
{
        char tmpl[] = "/tmp/kpa-test-util-XXXXXX";
        ok(mkdtemp(tmpl) != NULL, "mkdtemp");
        _cleanup_close_ int dfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(dfd >= 0, "open temp dir");
        ok(mkdirat(dfd, "a", 0755) == 0 && mkdirat(dfd, "a/b", 0755) == 0, "mkdir tree");
        _cleanup_close_ int fd = openat(dfd, "a/b/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ok(fd >= 0 && kpa_write_all(fd, "abc", 3) == 0, "write file");
        ok(symlinkat("/etc/passwd", dfd, "a/link") == 0, "symlink");

        char hex[65];
        uint64_t size = 0;
        kpa_error err;
        is(kpa_sha256_file_at(dfd, "a/b/f", hex, &size, &err), 0, "hash file");
        is(size, 3, "hashed size");
        is(kpa_sha256_file_at(dfd, "a/link", hex, &size, &err), -ELOOP,
           "hashing does not follow symlinks");

        _cleanup_free_ char *buf = NULL;
        size_t len;
        is(kpa_read_file_at(dfd, "a/b/f", 16, &buf, &len), 0, "read file");
        is_str(buf, "abc", "read content");
        is(kpa_read_file_at(dfd, "a/b/f", 2, &buf, &len), -EFBIG, "read limit enforced");
        is(kpa_read_file_at(dfd, "a/link", 16, &buf, &len), -ELOOP, "read refuses symlink");

        /* kpa_open_beneath: no symlink anywhere on the path, never out of dfd */
        ok(symlinkat("b", dfd, "a/dirlink") == 0, "a symlink to a directory");
        fd = kpa_open_beneath(dfd, "a/b/f", O_RDONLY, 0);
        ok(fd >= 0, "open beneath: a plain path opens");
        closep(&fd);
        is(kpa_open_beneath(dfd, "a/dirlink/f", O_RDONLY, 0), -ELOOP,
           "open beneath: a symlink in the middle of the path is refused");
        is(kpa_read_file_at(dfd, "a/dirlink/f", 16, &buf, &len), -ELOOP,
           "... and so does a read");
        is(kpa_open_beneath(dfd, "a/link", O_RDONLY, 0), -ELOOP, "... or at its end");
        is(kpa_open_beneath(dfd, "a/../../etc/passwd", O_RDONLY, 0), -EXDEV,
           "open beneath: \"..\" out of the directory is refused");
        is(kpa_open_beneath(dfd, "/etc/passwd", O_RDONLY, 0), -EXDEV,
           "open beneath: an absolute path is refused");
        fd = kpa_open_beneath(dfd, "a/b/new", O_WRONLY | O_CREAT | O_EXCL, 0600);
        ok(fd >= 0, "open beneath creates a file");
        closep(&fd);

        is(kpa_rm_rf_at(dfd, "a"), 0, "rm -rf tree");
        struct stat st;
        ok(fstatat(dfd, "a", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT, "tree gone");
        ok(stat("/etc/passwd", &st) == 0, "symlink target untouched");
        is(kpa_rm_rf_at(dfd, "a"), 0, "rm -rf of missing path is fine");
        rmdir(tmpl);
}

int main(void)
{
        test_error();
        test_sha256();
        test_files();
        return tap_done();
}
