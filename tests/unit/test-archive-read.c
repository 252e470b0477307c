/* Unit tests for archive-read.c: member path normalization, and package
 * files that are refused before any component is read (empty, not an
 * archive, a first member that is not a regular manifest.json, a manifest
 * over its size limit, a member of a special type). Archives are written
 * with libarchive; tests/integration/hostile.sh covers the rest through
 * kpa-install. No root needed. */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "archive-read.h"
#include "kpa/package.h"
#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/kpa-test-archive-read-XXXXXX";

static void test_normalize(void)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                {"a/b", "a/b"},   {"./a/b", "a/b"}, {"././a", "a"}, {"a/b/", "a/b"},
                {"", NULL},       {"./", NULL},     {"/a", NULL},   {"a//b", NULL},
                {"a/./b", NULL},  {"a/../b", NULL}, {"..", NULL},   {"abcdefghij", NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                kpa_error err;
                _cleanup_free_ char *got = kpa_member_path_normalize(cases[i].in, 8, &err);
                if (cases[i].out)
                        is_str(got, cases[i].out, "\"%s\" normalizes to \"%s\"", cases[i].in,
                               cases[i].out);
                else if (!ok(!got && err.message[0], "\"%s\" is refused", cases[i].in))
                        printf("#   got \"%s\"\n", got ? got : "");
        }
        kpa_error err;
        ok(!kpa_member_path_normalize(NULL, 8, &err), "NULL is refused");
}

/* One member of an archive to write. */
typedef struct member {
        const char *name;
        mode_t type;
        const char *data;
        size_t size; /* for data == NULL: that many 'x' */
} member;

static char *write_tar(const char *file, const member *m, size_t n)
{
        char *path = kpa_xasprintf("%s/%s", dir, file);
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        if (archive_write_open_filename(a, path) != ARCHIVE_OK)
                abort();
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                size_t size = m[i].data ? strlen(m[i].data) : m[i].size;
                archive_entry_set_pathname(e, m[i].name);
                archive_entry_set_filetype(e, m[i].type);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_size(e, m[i].type == AE_IFREG ? (la_int64_t)size : 0);
                archive_write_header(a, e);
                if (m[i].type == AE_IFREG) {
                        char *buf = kpa_xmalloc(size + 1);
                        memset(buf, 'x', size);
                        if (m[i].data)
                                memcpy(buf, m[i].data, size);
                        archive_write_data(a, buf, size);
                        free(buf);
                }
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
        return path;
}

/* Inspecting FILE must fail with CODE and a message holding WORDS. */
static void check_refused(const char *path, int code, const char *words, const char *what)
{
        kpa_package_info *info = NULL;
        kpa_error err;
        kpa_error_clear(&err);
        int r = kpa_package_inspect(path, NULL, &info, &err);
        is(r, -code, "%s: refused (%s)", what, strerror(code));
        if (!ok(strstr(err.message, words) != NULL, "%s: the message says why", what))
                printf("#   message: %s\n", err.message);
        kpa_package_info_free(info);
}

static void test_refusals(void)
{
        _cleanup_free_ char *empty = kpa_xasprintf("%s/empty.kpa", dir);
        close(open(empty, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        check_refused(empty, EBADMSG, "empty file", "a file of 0 bytes");
        check_refused(dir, EISDIR, "is a directory", "a directory");

        _cleanup_free_ char *junk = kpa_xasprintf("%s/junk.kpa", dir);
        _cleanup_close_ int fd = open(junk, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        char text[2048];
        memset(text, 'j', sizeof(text));
        if (kpa_write_all(fd, text, sizeof(text)) < 0)
                abort();
        check_refused(junk, EBADMSG, "not a readable package", "a file that is no archive");

        _cleanup_free_ char *none = write_tar("none.kpa", NULL, 0);
        check_refused(none, EBADMSG, "the package is empty", "an archive without members");

        const member dir_manifest[] = {{"manifest.json", AE_IFDIR, NULL, 0}};
        _cleanup_free_ char *d = write_tar("dir.kpa", dir_manifest, 1);
        check_refused(d, EBADMSG, "manifest.json is not a regular file",
                      "a manifest.json that is a directory");

        const member other_first[] = {{"./bin/app", AE_IFREG, "x", 0}};
        _cleanup_free_ char *o = write_tar("first.kpa", other_first, 1);
        check_refused(o, EBADMSG, "it must be manifest.json", "a first member that is not the manifest");

        const member bad_path[] = {{"a/../manifest.json", AE_IFREG, "{}", 0}};
        _cleanup_free_ char *b = write_tar("path.kpa", bad_path, 1);
        check_refused(b, EINVAL, "\"..\" path component refused", "a first member with \"..\"");

        const member huge[] = {{"manifest.json", AE_IFREG, NULL, 2u << 20}};
        _cleanup_free_ char *h = write_tar("huge.kpa", huge, 1);
        check_refused(h, EFBIG, "is larger than", "a manifest over its size limit");

        const member not_json[] = {{"manifest.json", AE_IFREG, "{ not json", 0}};
        _cleanup_free_ char *j = write_tar("json.kpa", not_json, 1);
        check_refused(j, EINVAL, "json.kpa", "a manifest that is no JSON");
}

#define MINIMAL                                                                                    \
        "{\"version\": \"2.0\", \"application\": {\"id\": \"org.example.t\", \"name\": "           \
        "\"T\", \"version\": \"1\", \"buildNumber\": \"1\", \"systemApplication\": false}, "       \
        "\"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"s\", "                    \
        "\"buildSdkVersion\": \"1\", \"targetApiLevel\": 1}, \"hwSpecification\": "                \
        "{\"arch\": \"x86_64\", \"cpu\": \"\"}}, \"components\": []}"

/* What the sink saw, in order: "s" (signature, with its bytes), "m" (manifest). */
typedef struct seen {
        char order[8];
        char sig[64];
        bool had_sig;
        size_t raw_len;
} seen;

static int on_signature(void *userdata, const char *raw, size_t len, const char *sig,
                        size_t sig_len, kpa_error *err)
{
        seen *s = userdata;
        strcat(s->order, "s");
        s->had_sig = sig != NULL;
        snprintf(s->sig, sizeof(s->sig), "%.*s", (int)sig_len, sig ? sig : "");
        s->raw_len = len;
        return 0;
}

static int on_manifest(void *userdata, const kpa_manifest *m, const char *raw, size_t len,
                       kpa_error *err)
{
        strcat(((seen *)userdata)->order, "m");
        return 0;
}

static int read_with_sink(const char *path, seen *s, kpa_error *err)
{
        memset(s, 0, sizeof(*s));
        kpa_package_sink sink = {.manifest = on_manifest, .signature = on_signature, .userdata = s};
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        return kpa_package_read(fd, path, NULL, &sink, NULL, NULL, err);
}

static void test_signature_member(void)
{
        kpa_error err;
        seen s;
        const member with_sig[] = {{"manifest.json", AE_IFREG, MINIMAL, 0},
                                   {"./manifest.sig", AE_IFREG, "{\"sig\": 1}", 0},
                                   {"res", AE_IFDIR, NULL, 0}};
        _cleanup_free_ char *a = write_tar("sig.kpa", with_sig, 3);
        is(read_with_sink(a, &s, &err), 0, "a package with manifest.sig after the manifest reads");
        is_str(s.order, "sm", "... the signature reaches the sink before the manifest");
        is_str(s.sig, "{\"sig\": 1}", "... with its bytes");
        is(s.raw_len, strlen(MINIMAL), "... and the manifest's");
        const member without[] = {{"manifest.json", AE_IFREG, MINIMAL, 0},
                                  {"res", AE_IFDIR, NULL, 0}};
        _cleanup_free_ char *b = write_tar("nosig.kpa", without, 2);
        is(read_with_sink(b, &s, &err), 0, "a package without a signature reads");
        ok(streq(s.order, "sm") && !s.had_sig, "... the sink hears there is none");
        _cleanup_free_ char *c = write_tar("only.kpa", without, 1);
        is(read_with_sink(c, &s, &err), 0, "so does a package of a manifest alone");
        ok(streq(s.order, "sm") && !s.had_sig, "... with no member after it");
        const member late[] = {{"manifest.json", AE_IFREG, MINIMAL, 0},
                               {"res", AE_IFDIR, NULL, 0},
                               {"manifest.sig", AE_IFREG, "{}", 0}};
        _cleanup_free_ char *d = write_tar("late.kpa", late, 3);
        is(read_with_sink(d, &s, &err), -EBADMSG, "manifest.sig after another member is refused");
        ok(strstr(err.message, "member manifest.sig is refused here") != NULL, "... saying so");
        const member twice[] = {{"manifest.json", AE_IFREG, MINIMAL, 0},
                                {"manifest.sig", AE_IFREG, "{}", 0},
                                {"manifest.sig", AE_IFREG, "{}", 0}};
        _cleanup_free_ char *e = write_tar("twice.kpa", twice, 3);
        is(read_with_sink(e, &s, &err), -EBADMSG, "manifest.sig twice is refused");
        const member dir_sig[] = {{"manifest.json", AE_IFREG, MINIMAL, 0},
                                  {"manifest.sig", AE_IFDIR, NULL, 0}};
        _cleanup_free_ char *f = write_tar("dirsig.kpa", dir_sig, 2);
        is(read_with_sink(f, &s, &err), -EBADMSG, "a manifest.sig directory is refused");
        ok(strstr(err.message, "manifest.sig is not a regular file") != NULL, "... saying so");
        const member big[] = {{"manifest.json", AE_IFREG, MINIMAL, 0},
                              {"manifest.sig", AE_IFREG, NULL, 5000}};
        _cleanup_free_ char *g = write_tar("bigsig.kpa", big, 2);
        is(read_with_sink(g, &s, &err), -EFBIG, "a manifest.sig over 4096 bytes is refused");
        is(s.order[0], '\0', "... before the sink hears of the package");
}

int main(void)
{
        test_normalize();
        if (!mkdtemp(dir)) {
                printf("# mkdtemp: %s\n", strerror(errno));
                return tap_done();
        }
        test_refusals();
        test_signature_member();
        kpa_rm_rf_at(AT_FDCWD, dir);
        return tap_done();
}
