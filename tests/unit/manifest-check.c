/* manifest-check: parse each FILE with kpa_manifest_parse() (flags 0) and
 * print "FILE: ok" or "FILE: error: MESSAGE"; exit 0 when all are ok. The
 * schema test uses it to ask the C parser about every example and bad
 * manifest. Files are read whole, whatever their size, so that the parser's
 * own size limit is what refuses a large one. */
#include "config.h"

#include <string.h>

#include "kpa/manifest.h"
#include "util.h"

static int read_all(const char *path, char **out, size_t *out_len)
{
        _cleanup_fclose_ FILE *f = fopen(path, "rbe");
        if (!f)
                return -errno;
        size_t len = 0, cap = 4096;
        _cleanup_free_ char *buf = kpa_xmalloc(cap);
        for (;;) {
                if (len == cap)
                        buf = kpa_xrealloc(buf, cap *= 2);
                size_t n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f))
                return -EIO;
        *out = TAKE_PTR(buf);
        *out_len = len;
        return 0;
}

static bool check_file(const char *path)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_all(path, &text, &len);
        if (r < 0) {
                printf("%s: error: cannot read: %s\n", path, strerror(-r));
                return false;
        }
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error err;
        kpa_error_clear(&err);
        r = kpa_manifest_parse(text, len, 0, &m, &err);
        if (r < 0) {
                printf("%s: error: %s\n", path, err.message);
                return false;
        }
        printf("%s: ok\n", path);
        return true;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE...\n", argv[0]);
                return 2;
        }
        bool all_ok = true;
        for (int i = 1; i < argc; i++)
                all_ok &= check_file(argv[i]);
        return all_ok ? 0 : 1;
}
