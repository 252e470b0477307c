/* fuzz-package: the package reader with validation, as kpa-install runs
 * it: each input is installed from a memfd into a temporary store on tmpfs.
 * A package that installs must verify clean and is then purged; one that is
 * refused must say why and leave no package and nothing in .staging. Limits
 * are small so that a decompression bomb costs little. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "kpa/package.h"
#include "util.h"

static kpa_store *store;
static char root[64];

static void remove_store(void)
{
        kpa_store_close(store);
        (void)kpa_rm_rf_at(AT_FDCWD, root);
}

static void open_store(void)
{
        snprintf(root, sizeof(root), "/dev/shm/kpa-fuzz.XXXXXX");
        kpa_error err;
        if (!mkdtemp(root) || kpa_store_open(root, KPA_STORE_CREATE, &store, &err) < 0)
                __builtin_trap();
        /* what installs, as root, records its uid beside the store, not on the host */
        _cleanup_free_ char *uids = kpa_xasprintf("%s/.uids", root);
        setenv("KPA_UID_REGISTRY", uids, 1);
        atexit(remove_store);
}

static bool dir_empty(const char *name)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s", root, name);
        _cleanup_closedir_ DIR *d = opendir(path);
        if (!d)
                return false;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return false;
        return true;
}

static void check_installed(const kpa_install_result *res)
{
        kpa_error err;
        kpa_verify_report report;
        kpa_verify_report_init(&report);
        if (kpa_store_verify(store, res->app_id, &report, &err) < 0 || report.n_entries != 0)
                __builtin_trap(); /* what was installed is what the manifest says */
        kpa_verify_report_clear(&report);
        if (kpa_store_remove(store, res->app_id, true, &err) < 0)
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!store)
                open_store();
        _cleanup_close_ int fd = memfd_create("fuzz.kpa", MFD_CLOEXEC);
        if (fd < 0 || kpa_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) != 0)
                __builtin_trap();
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        kpa_install_options opts;
        kpa_install_options_init(&opts);
        opts.flags = KPA_INSTALL_REINSTALL | KPA_INSTALL_FORCE_ARCH;
        kpa_package_limits limits;
        kpa_package_limits_init(&limits);
        limits.max_total_bytes = 8u << 20;
        limits.max_members = 1000;
        limits.ratio_min_bytes = 1u << 20;
        opts.limits = &limits;
        kpa_install_result res;
        kpa_install_result_init(&res);
        kpa_error err = {.code = -1}; /* so that an unfilled error shows */
        int r = kpa_store_install(store, path, &opts, &res, &err);
        if (r == 0)
                check_installed(&res);
        else if (err.message[0] == '\0' || err.code != -r)
                __builtin_trap(); /* a refusal says why */
        if (!dir_empty("apps") || !dir_empty(".staging"))
                __builtin_trap(); /* nothing half-done, nothing left over */
        return 0;
}
