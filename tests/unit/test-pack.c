/* Unit tests for pack.c through the public API: option defaults, compression
 * names, the member callback and its order, and refusals that leave no
 * output (the CLI and the archive bytes are covered by tests/integration/pack.sh). */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "kpa/package.h"
#include "tap.h"
#include "util.h"

#define MANIFEST                                                                        \
        "{\"version\": \"2.0\",\n"                                                      \
        " \"application\": {\"id\": \"org.example.t\", \"name\": \"T\", \"version\": "  \
        "\"1\", \"buildNumber\": \"1\", \"systemApplication\": false},\n"               \
        " \"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"s\", "        \
        "\"buildSdkVersion\": \"1\", \"targetApiLevel\": 1}, \"hwSpecification\": "     \
        "{\"arch\": \"x86_64\", \"cpu\": \"\"}},\n"                                     \
        " \"components\": [\n"                                                          \
        "  {\"name\": \"z.txt\", \"componentType\": \"res\"},\n"                        \
        "  {\"name\": \"app\", \"componentType\": \"bin\", \"digest\": \"\"}]}\n"

/* sha256("abc") */
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

typedef struct seen {
        char members[8][64];
        char digests[8][65];
        uint64_t sizes[8];
        size_t n;
} seen;

static void on_member(const char *member, const char *source, uint64_t size, const char *digest,
                      void *userdata)
{
        seen *s = userdata;
        if (s->n >= ELEMENTSOF(s->members))
                return;
        snprintf(s->members[s->n], sizeof(s->members[0]), "%s", member);
        snprintf(s->digests[s->n], sizeof(s->digests[0]), "%s", digest);
        s->sizes[s->n] = size;
        s->n++;
}

static void write_file(const char *dir, const char *name, const char *content)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s", dir, name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || kpa_write_all(fd, content, strlen(content)) < 0)
                abort();
}

static void test_defaults(void)
{
        kpa_pack_options opts;
        memset(&opts, 0xa5, sizeof(opts));
        kpa_pack_options_init(&opts);
        is(opts.compression, KPA_COMPRESS_ZSTD, "default compression is zstd");
        is(opts.mtime, -1, "default mtime is -1 (SOURCE_DATE_EPOCH, else 0)");
        ok(opts.on_member == NULL && opts.userdata == NULL, "no callback by default");
        ok(opts.inputs == NULL && opts.n_inputs == 0, "no inputs by default");

        static const char *const names[] = { "zstd", "xz", "gzip", "none" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                kpa_compression c = KPA_COMPRESS_NONE;
                is(kpa_compression_from_string(names[i], &c), 0, "compression %s", names[i]);
                is(c, (kpa_compression)i, "compression %s value", names[i]);
        }
        kpa_compression c;
        is(kpa_compression_from_string("bzip2", &c), -EINVAL, "unknown compression refused");
        is(kpa_compression_from_string("ZSTD", &c), -EINVAL, "names are lower case");
        is(kpa_compression_from_string(NULL, &c), -EINVAL, "NULL refused");

        kpa_error err;
        kpa_pack_options_init(&opts);
        is(kpa_pack(&opts, &err), -EINVAL, "pack without manifest or output refused");
        ok(err.message[0] != '\0', "with a message: %s", err.message);
}

static void test_pack(const char *dir)
{
        _cleanup_free_ char *src = kpa_xasprintf("%s/src", dir);
        _cleanup_free_ char *manifest = kpa_xasprintf("%s/manifest.json", src);
        _cleanup_free_ char *out = kpa_xasprintf("%s/t.kpa", dir);
        if (mkdir(src, 0755) < 0)
                abort();
        write_file(src, "manifest.json", MANIFEST);
        write_file(src, "app", "abc");
        write_file(src, "z.txt", "zz\n");

        const char *inputs[] = { src };
        kpa_pack_options opts;
        kpa_pack_options_init(&opts);
        opts.manifest_path = manifest;
        opts.output_path = out;
        opts.inputs = inputs;
        opts.n_inputs = 1;
        opts.compression = KPA_COMPRESS_NONE;
        opts.on_member = on_member;
        seen s = { .n = 0 };
        opts.userdata = &s;
        kpa_error err;
        int r = kpa_pack(&opts, &err);
        is(r, 0, "pack a flat directory (%s)", r < 0 ? err.message : "ok");
        is(s.n, 3, "three members reported");
        is_str(s.members[0], "manifest.json", "manifest.json first");
        is_str(s.members[1], "bin/app", "then bin/app");
        is_str(s.members[2], "res/z.txt", "then res/z.txt");
        is(s.sizes[1], 3, "bin/app size");
        is_str(s.digests[1], ABC_SHA256, "bin/app digest");
        struct stat st;
        ok(stat(out, &st) == 0 && S_ISREG(st.st_mode), "output written");

        /* a missing component: an error naming it, and no output */
        unlink(out);
        _cleanup_free_ char *app = kpa_xasprintf("%s/app", src);
        unlink(app);
        s.n = 0;
        r = kpa_pack(&opts, &err);
        is(r, -ENOENT, "missing component refused");
        has_str(err.message, "missing component bin/app", "message names it: %s", err.message);
        ok(stat(out, &st) < 0 && errno == ENOENT, "no output after a failure");
        is(s.n, 0, "no member reported");

        /* an extra file */
        write_file(src, "app", "abc");
        write_file(src, "stray", "x");
        r = kpa_pack(&opts, &err);
        is(r, -EINVAL, "extra file refused");
        has_str(err.message, "stray: extra file not listed in the manifest", "message names it: %s",
                err.message);
        ok(stat(out, &st) < 0 && errno == ENOENT, "no output after a failure");
}

int main(void)
{
        char tmpl[] = "/tmp/kpa-test-pack.XXXXXX";
        const char *dir = mkdtemp(tmpl);
        if (!dir)
                return 99;
        test_defaults();
        test_pack(dir);
        kpa_rm_rf_at(AT_FDCWD, dir);
        return tap_done();
}
