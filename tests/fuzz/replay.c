/* replay: run a fuzz target's LLVMFuzzerTestOneInput() on saved inputs,
 * without libFuzzer, in an ordinary (gcc, ASan or valgrind) build.
 *   replay-NAME FILE|DIR...   one TAP line per file; a crash ends the run.
 * tests/fuzz/replay.sh feeds it the seeds and every regression input. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "../unit/tap.h"
#include "util.h"

static void replay_file(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (fd < 0 || kpa_read_fd(fd, 64u << 20, &buf, &len) < 0) {
                ok(0, "%s: cannot read", path);
                return;
        }
        printf("# %s (%zu bytes)\n", path, len);
        fflush(stdout);
        /* an exact-size copy, so that ASan and valgrind see a read past the end */
        _cleanup_free_ uint8_t *data = kpa_xmalloc(len ? len : 1);
        memcpy(data, buf, len);
        LLVMFuzzerTestOneInput(data, len);
        ok(1, "%s", path);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
                        replay_file(argv[i]);
                        continue;
                }
                struct dirent **names;
                int n = scandir(argv[i], &names, NULL, by_name);
                for (int k = 0; k < n; k++) {
                        if (names[k]->d_name[0] != '.') {
                                _cleanup_free_ char *p =
                                        kpa_xasprintf("%s/%s", argv[i], names[k]->d_name);
                                replay_file(p);
                        }
                        free(names[k]);
                }
                if (n >= 0)
                        free(names);
        }
        return tap_done();
}
