/* cgroup-discovery.c: where the hierarchies are. libcgroup's cgroup_init()
 * finds the mount point of each controller kpa uses, statfs whether it is
 * v2; the result is cached per boot in /run/kpa/cgroup-discovery (see
 * cgroup.c for the rules), so that a start with a valid cache calls no
 * libcgroup function. Also libcgroup's glue (its logger, its errors as
 * errno) and the small list parsers the backends share. It creates,
 * changes and removes no group. */
#include "config.h"

#include <fcntl.h>
#include <libcgroup.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cgroup-priv.h"
#include "util.h"

const char *const ctrl_names[N_CTRL] = {"memory", "pids", "cpu", "devices"};

/* ---- libcgroup glue ---- */

static pthread_once_t lcg_once = PTHREAD_ONCE_INIT;
static int lcg_init_result;
static pthread_once_t disc_once = PTHREAD_ONCE_INIT;
static int disc_result; /* libcgroup's error when there is no discovery */
static bool disc_filled; /* lcg_mount etc. hold the discovery */

/* The discovery: where libcgroup found each controller at cgroup_init()
 * (NULL: not mounted), and whether that is a v2 hierarchy (errno of statfs
 * when lcg_mount_errno[c] is set); or the same, read from the per-boot
 * cache that an earlier cgroup_init() wrote (see discovery_load()).
 * libcgroup never refreshes its mount table after cgroup_init(), so
 * neither does this. */
char *lcg_mount[N_CTRL];
bool lcg_v2[N_CTRL];
int lcg_mount_errno[N_CTRL];

static void silent_logger(void *userdata, int level, const char *fmt, va_list ap) {}

/* cgroup_init() begins by zeroing libcgroup's mount table, 800 KB of
 * .bss that nothing touched before: some 200 page faults, one per page. On
 * a VM, where a fault costs 5-10 us, that is 1-2 ms, the largest single
 * cost of a kpa-run start; one MADV_POPULATE_WRITE maps the pages in one
 * call for a fraction of it (bench/start.sh: 1 ms less per start). The
 * table is libcgroup's exported but undocumented cg_mount_table (symbol
 * version CGROUP_2.0: CG_CONTROLLER_MAX entries of 8208 bytes), referenced
 * weakly: without it, or before Linux 5.14, the start is only slower. */
extern char cg_mount_table[] __attribute__((weak));
#define LCG_MOUNT_TABLE_BYTES ((size_t)100 * 8208)

static void prefault_mount_table(void)
{
        char *table = cg_mount_table;
        if (!table)
                return;
        size_t into_page = (uintptr_t)table & 4095;
        (void)madvise(table - into_page, into_page + LCG_MOUNT_TABLE_BYTES, MADV_POPULATE_WRITE);
}

static void lcg_init_once(void)
{
        /* libcgroup prints its errors on stderr by default; libkpa reports
         * them through kpa_error instead. */
        cgroup_set_logger(silent_logger, CGROUP_LOG_ERROR, NULL);
        prefault_mount_table();
        lcg_init_result = cgroup_init();
        if (disc_filled) /* from the cache, made by the same libcgroup */
                return;
        disc_filled = lcg_init_result == 0;
        for (int c = 0; lcg_init_result == 0 && c < N_CTRL; c++) {
                char *mount = NULL;
                if (cgroup_get_subsys_mount_point(ctrl_names[c], &mount) != 0 || !mount) {
                        free(mount);
                        continue;
                }
                struct statfs sfs;
                if (statfs(mount, &sfs) < 0)
                        lcg_mount_errno[c] = errno;
                else
                        lcg_v2[c] = sfs.f_type == CGROUP2_SUPER_MAGIC;
                if (c == CTRL_DEVICES && (lcg_v2[c] || lcg_mount_errno[c])) {
                        /* v2 has device programs, not a devices controller */
                        lcg_v2[c] = false;
                        lcg_mount_errno[c] = 0;
                        free(mount);
                        continue;
                }
                lcg_mount[c] = mount;
        }
}

int lcg_errno(int r)
{
        switch (r) {
        case 0: return 0;
        case ECGOTHER: return cgroup_get_last_errno() > 0 ? cgroup_get_last_errno() : EIO;
        case ECGROUPNOTOWNER: return EPERM;
        case ECGROUPNOTALLOWED: return EACCES;
        case ECGROUPNOTEXIST:
        case ECGROUPVALUENOTEXIST:
        case ECGROUPNOTMOUNTED:
        case ECGROUPSUBSYSNOTMOUNTED: return ENOENT;
        case ECGNONEMPTY: return EBUSY;
        case ECGINVAL: return EINVAL;
        default: return EIO;
        }
}

const char *lcg_strerror(int r)
{
        switch (r) {
        case ECGOTHER:
        case ECGROUPNOTOWNER:
        case ECGROUPVALUENOTEXIST:
        case ECGNONEMPTY: return strerror(lcg_errno(r));
        default: return cgroup_strerror(r);
        }
}

static int lcg_init_error(int r, kpa_error *err)
{
        return kpa_error_set(err, lcg_errno(r), "cgroup: libcgroup cannot initialize: %s",
                             lcg_strerror(r));
}

static void disc_init_once(void);

/* The discovery, from the cache or from libcgroup: all that the per-start
 * path needs. */
int disc_init(kpa_error *err)
{
        pthread_once(&disc_once, disc_init_once);
        return disc_result != 0 ? lcg_init_error(disc_result, err) : 0;
}

/* libcgroup itself, initialized (cgroup_init()), for its calls. */
int lcg_init(kpa_error *err)
{
        int r = disc_init(err);
        if (r < 0)
                return r;
        pthread_once(&lcg_once, lcg_init_once);
        return lcg_init_result != 0 ? lcg_init_error(lcg_init_result, err) : 0;
}

/* ---- the per-boot cache of the discovery ----
 * cgroup_init() costs 0.5-1.3 ms in every new process (PERF-NOTES.md), so
 * its result is kept in /run/kpa/cgroup-discovery for the next ones:
 *
 *     kpa-cgroup-discovery 1
 *     boot BOOT_ID
 *     mounts HASH            (FNV-1a 64 of the cgroup lines of mountinfo)
 *     memory v1 /sys/fs/cgroup/memory
 *     pids v2 /sys/fs/cgroup
 *     cpu - -                (not mounted)
 *     devices v1 /sys/fs/cgroup/devices   (v1 only)
 *
 * It is used only when root owns it and its directory and neither is
 * writable by group or others, when it parses exactly, when the boot id
 * and the hash of this process's cgroup mount lines are the same, and when
 * each mount point it names is one of those lines, of the right type (and
 * on v1 with the controller among its options). Anything else is ignored,
 * and root rewrites it from libcgroup's discovery. KPA_CGROUP_DISCOVERY
 * names another file (tests), under the same rules. */
#define DISCOVERY_CACHE "/run/kpa/cgroup-discovery"
/* 2: with the devices line; a cache of format 1 is ignored and rewritten */
#define DISCOVERY_MAGIC "kpa-cgroup-discovery 2"

static const char *discovery_path(void)
{
        const char *p = secure_getenv("KPA_CGROUP_DISCOVERY");
        return p && p[0] == '/' ? p : DISCOVERY_CACHE;
}

static bool root_only(const struct stat *st)
{
        return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* The directory of PATH, opened, when it is root's alone; *BASE its name. */
static int open_cache_dir(const char *path, const char **base)
{
        const char *slash = strrchr(path, '/');
        *base = slash + 1;
        _cleanup_free_ char *dir = slash == path ? kpa_xstrdup("/") : kpa_xstrndup(path, (size_t)(slash - path));
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && (fstat(fd, &st) < 0 || !root_only(&st))) {
                close(fd);
                return -1;
        }
        return fd;
}

/* The cgroup lines of /proc/self/mountinfo (in *LINES, to free), their
 * hash, and the boot id. */
static int mount_key(char **lines, char hash[17], char boot[40])
{
        _cleanup_free_ char *info = NULL, *id = NULL;
        if (kpa_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 22, &info, NULL) < 0 ||
            kpa_read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 64, &id, NULL) < 0)
                return -1;
        snprintf(boot, 40, "%.*s", (int)strcspn(id, "\n"), id);
        size_t n = 0;
        char *out = kpa_xmalloc(strlen(info) + 1);
        uint64_t h = 0xcbf29ce484222325ull;
        for (char *line = info; *line;) {
                size_t len = strcspn(line, "\n");
                char *sep = memmem(line, len, " - ", 3);
                if (sep && (strncmp(sep + 3, "cgroup ", 7) == 0 || strncmp(sep + 3, "cgroup2 ", 8) == 0)) {
                        memcpy(out + n, line, len);
                        n += len;
                        out[n++] = '\n';
                        for (size_t k = 0; k <= len; k++)
                                h = (h ^ (unsigned char)(k < len ? line[k] : '\n')) * 0x100000001b3ull;
                }
                line += len + (line[len] == '\n');
        }
        out[n] = '\0';
        snprintf(hash, 17, "%016llx", (unsigned long long)h);
        *lines = out;
        return 0;
}

/* Is MOUNT the mount point of one of LINES, a cgroup2 one (V2) or a v1
 * one with controller C? */
static bool mounted_as(const char *lines, const char *mount, int c, bool v2)
{
        size_t mlen = strlen(mount);
        for (const char *line = lines; *line;) {
                size_t len = strcspn(line, "\n");
                _cleanup_free_ char *l = kpa_xstrndup(line, len);
                line += len + (line[len] == '\n');
                char *sep = strstr(l, " - ");
                if (!sep)
                        continue;
                *sep = '\0';
                char *f[5], *save = NULL, *p = l;
                size_t k = 0;
                for (; k < 5 && (f[k] = strtok_r(p, " ", &save)); k++)
                        p = NULL;
                if (k < 5 || strlen(f[4]) != mlen || strcmp(f[4], mount) != 0)
                        continue;
                char *type = strtok_r(sep + 3, " ", &save);
                (void)strtok_r(NULL, " ", &save); /* the source */
                char *opts = strtok_r(NULL, " ", &save);
                if (!type || !opts)
                        continue;
                if (v2 ? streq(type, "cgroup2") : streq(type, "cgroup") && has_item(opts, ctrl_names[c], ","))
                        return true;
        }
        return false;
}

static bool plain_path(const char *p)
{
        return p[0] == '/' && !strpbrk(p, " \t\n\\");
}

/* Fill the discovery from the cache: 0, or -1 when it cannot be used. */
static int discovery_load(void)
{
        const char *base;
        _cleanup_close_ int dfd = open_cache_dir(discovery_path(), &base);
        _cleanup_close_ int fd = dfd < 0 ? -1 : openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !root_only(&st) ||
            st.st_size > 4096)
                return -1;
        _cleanup_free_ char *text = NULL, *lines = NULL;
        char hash[17], boot[40];
        if (kpa_read_fd(fd, 4096, &text, NULL) < 0 || mount_key(&lines, hash, boot) < 0)
                return -1;
        char *line[3 + N_CTRL] = {NULL}, *save = NULL;
        size_t n = 0;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                if (n == ELEMENTSOF(line))
                        return -1; /* a line more */
                line[n++] = l;
        }
        if (n != ELEMENTSOF(line) || !streq(line[0], DISCOVERY_MAGIC) ||
            strncmp(line[1], "boot ", 5) != 0 || !streq(line[1] + 5, boot) ||
            strncmp(line[2], "mounts ", 7) != 0 || !streq(line[2] + 7, hash))
                return -1;
        char *mount[N_CTRL] = {NULL};
        bool v2[N_CTRL] = {false};
        int ret = 0;
        for (int c = 0; c < N_CTRL && ret == 0; c++) {
                char *w = line[3 + c], *kind, *path, *s2 = NULL;
                char *name = strtok_r(w, " ", &s2);
                kind = strtok_r(NULL, " ", &s2);
                path = strtok_r(NULL, " ", &s2);
                bool named = name && kind && path && !strtok_r(NULL, " ", &s2) &&
                             streq(name, ctrl_names[c]);
                if (named && streq(kind, "-") && streq(path, "-"))
                        continue;
                if (!named || (!streq(kind, "v1") && !streq(kind, "v2")) || !plain_path(path) ||
                    (c == CTRL_DEVICES && !streq(kind, "v1")) ||
                    !mounted_as(lines, path, c, streq(kind, "v2")))
                        ret = -1;
                else {
                        mount[c] = kpa_xstrdup(path);
                        v2[c] = streq(kind, "v2");
                }
        }
        for (int c = 0; c < N_CTRL; c++) {
                if (ret == 0) {
                        lcg_mount[c] = mount[c];
                        lcg_v2[c] = v2[c];
                } else {
                        free(mount[c]);
                }
        }
        return ret;
}

/* Write libcgroup's discovery into the cache (root only; quietly not
 * where it cannot be, or where it would not be read back). */
static void discovery_store(void)
{
        if (geteuid() != 0)
                return;
        const char *path = discovery_path();
        if (streq(path, DISCOVERY_CACHE))
                (void)mkdir("/run/kpa", 0755);
        _cleanup_free_ char *lines = NULL, *text = NULL;
        char hash[17], boot[40];
        if (mount_key(&lines, hash, boot) < 0)
                return;
        text = kpa_xasprintf(DISCOVERY_MAGIC "\nboot %s\nmounts %s\n", boot, hash);
        for (int c = 0; c < N_CTRL; c++) {
                if (lcg_mount_errno[c] || (lcg_mount[c] && !plain_path(lcg_mount[c])))
                        return;
                char *t = text;
                text = kpa_xasprintf("%s%s %s %s\n", t, ctrl_names[c],
                                     !lcg_mount[c] ? "-" : lcg_v2[c] ? "v2" : "v1",
                                     lcg_mount[c] ? lcg_mount[c] : "-");
                free(t);
        }
        const char *base;
        _cleanup_close_ int dfd = open_cache_dir(path, &base);
        if (dfd < 0)
                return;
        char tmp[64];
        snprintf(tmp, sizeof(tmp), ".cgroup-discovery.%d.tmp", (int)getpid());
        _cleanup_close_ int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        if (fchmod(fd, 0644) < 0 || kpa_write_all(fd, text, strlen(text)) < 0 ||
            renameat(dfd, tmp, dfd, base) < 0)
                (void)unlinkat(dfd, tmp, 0);
}

static void disc_init_once(void)
{
        if (discovery_load() == 0) {
                disc_filled = true;
                return;
        }
        pthread_once(&lcg_once, lcg_init_once);
        disc_result = lcg_init_result;
        if (disc_result == 0)
                discovery_store();
}

void lcg_freep(struct cgroup **g)
{
        if (*g)
                cgroup_free(g);
}

/* Is WORD one of the items of LIST, which SEPS separate? */
bool has_item(const char *list, const char *word, const char *seps)
{
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || strchr(seps, p[-1])) && (p[n] == '\0' || strchr(seps, p[n])))
                        return true;
        return false;
}

bool has_word(const char *list, const char *word)
{
        return has_item(list, word, " \n");
}

bool kpa_cgroup_pure_v2(void)
{
        /* asked before every clone: on v1 and hybrid hosts (a tmpfs at
         * /sys/fs/cgroup) one statfs answers, without cgroup_init(), which
         * then runs while the child builds its root */
        struct statfs sfs;
        if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type != CGROUP2_SUPER_MAGIC)
                return false;
        if (disc_init(NULL) < 0)
                return false;
        bool any = false;
        for (int c = 0; c < N_CTRL; c++) {
                if (!lcg_mount[c])
                        continue;
                if (!lcg_v2[c])
                        return false;
                any = true;
        }
        return any;
}
