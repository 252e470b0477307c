/* cgroup.c: one instance's control group, PARENT/kpa.slice/APP/INST, in the
 * hierarchies of a cgroup v1, hybrid or pure v2 host that it needs: the one
 * with the pids controller (it tracks the processes), and those of the
 * memory and cpu controllers when it has limits there (on v2 all three
 * share one hierarchy).
 * It owns discovery of those hierarchies, creation with limits, the attach
 * files the child writes "0" into, listing, killing, the OOM verdict,
 * removal, and the collection of instance groups that a killed kpa left
 * behind. It never creates a group outside the caller's own cgroup (or an
 * explicit parent), never moves a process it was not asked to, and removes
 * only kpa's own groups; processes and namespaces belong to the sandbox.
 *
 * libcgroup (2.0.2) is the cgroup library that discovers (DESIGN.md 5,
 * step 2; issue 15 changed the earlier rule that it creates and deletes
 * every group): cgroup_init() gives the mount point of each controller,
 * and statfs whether it is v2. That discovery is cached per boot in
 * /run/kpa/cgroup-discovery (root's only; checked against the boot id and
 * the cgroup lines of /proc/self/mountinfo, each mount point against those
 * lines; anything else is ignored and rewritten), because cgroup_init()
 * costs 0.5-1.3 ms in every new process. libcgroup also does the
 * administration: listing (kpa_cgroup_pids, the kill of an adopted group)
 * and the deletion of leftovers.
 *
 * Raw, because it is the start path, with directory fds below the mount
 * points the discovery gave: this process's groups (/proc/self/cgroup),
 * the v2 parent vetting, the creation (mkdirat of kpa.slice, APP and INST,
 * openat of the limit files; on v2 "+controller" in kpa.slice's and APP's
 * cgroup.subtree_control), the attach fds (the child writes "0" into them),
 * the OOM counters, the removal (rmdir), cgroup.kill, the membership check
 * before a SIGKILL, the scan of APP for leftovers, and the locks. A start
 * with a valid cache calls no libcgroup function. kpa.slice and APP below
 * kpa's own cgroup are kept once made (per-application parents); below an
 * explicit parent what an instance made goes with it.
 *
 * Each instance group is held with a shared flock(2) on its directory while
 * its kpa_cgroup lives. A kpa that was killed with SIGKILL cannot remove its
 * group; the next creation in the same APP removes (through libcgroup, empty
 * only) every unlocked sibling whose name is an instance id (32 lowercase
 * hex digits) and that is older than a second (so that a group another kpa
 * has just made, before it locks it or its child joins, is never taken).
 *
 * Cost, measured on a v1 host (memory, pids and cpu in 3 hierarchies; 3
 * limits + memsw), median of 50 create+destroy with APP kept (the unit
 * test): 0.24 ms raw, against 0.53 ms through libcgroup before; the first
 * create in a process 0.42 ms with the cache, 1.2 ms with cgroup_init(). */
#include "config.h"

#include <fcntl.h>
#include <libcgroup.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>

#include "cgroup.h"
#include "util.h"

#define SLICE "kpa.slice"
#define NAME_MAX_LEN 128
#define KILL_TIMEOUT_MS 2000
#define EMPTY_TIMEOUT_MS 500
#define CREATE_ATTEMPTS 3
#define INSTANCE_ID_LEN 32
#define GC_MIN_AGE_MS 1000

enum { CTRL_MEMORY, CTRL_PIDS, CTRL_CPU, N_CTRL };
#define BIT(c) (1u << (c))
static const char *const ctrl_names[N_CTRL] = {"memory", "pids", "cpu"};

/* The levels kpa creates below the parent, outermost first. */
enum { LEVEL_SLICE, LEVEL_APP, LEVEL_INST, N_LEVEL };

typedef struct hierarchy {
        const struct cgroup_ops *ops; /* its kind's operations */
        bool v2;
        unsigned ctrls;       /* BIT(CTRL_*) used in this hierarchy */
        char *mount;          /* mount point, from libcgroup */
        char *parent;         /* relative to the mount, no outer '/'; "" is the root */
        char *names[N_LEVEL]; /* libcgroup names: [PARENT/]kpa.slice[/APP[/INST]] */
        char *path;           /* host path of the instance: MOUNT/NAME */
        bool made[N_LEVEL];   /* created by this kpa_cgroup_create() */
        int lock_fd;          /* the instance directory, flock(LOCK_SH)ed */
} hierarchy;

struct kpa_cgroup {
        hierarchy h[N_CTRL];
        size_t n;
        bool own_parent; /* below kpa's own cgroup, where only kpa makes kpa.slice */
        int attach_fds[N_CTRL];
        size_t n_attach;
        int v2_fd;
        bool systemd; /* a scope that systemd made and removes (cgroup-systemd.c) */
};

/* One limit file and the value written into it. */
typedef struct setting {
        size_t hier; /* index in kpa_cgroup.h */
        const char *file;
        int ctrl;
        bool optional; /* a file the group may lack (swap accounting off): skipped then */
        char value[24];
} setting;

/* What differs between the kinds of hierarchy (cgroup v1, v2), one table
 * of operations each, chosen once per hierarchy at discovery; NULL: the
 * kind has no such step. */
typedef struct cgroup_ops {
        const char *attach_file; /* the child writes "0" into it to join */
        const char *oom_file;    /* the OOM counters ("oom_kill N") */
        const char *memory_max;  /* the memory limit */
        const char *swap_max;    /* the swap limit (optional: swap accounting) */
        bool swap_with_memory;   /* SWAP_MAX counts memory and swap together */
        const char *cpu_file;    /* the cpu weight */
        uint64_t (*cpu_value)(uint64_t weight); /* 1..10000 as CPU_FILE takes it */
        /* This process's group in the hierarchy of controller C. */
        int (*current_path)(int c, char **out);
        /* Is the line "ID:CTRLS:PATH" of /proc/PID/cgroup the one of H? */
        bool (*is_line_of)(const hierarchy *h, const char *id, const char *ctrls);
        /* Decide the controllers H can use below its parent. */
        int (*vet_parent)(hierarchy *h, unsigned needed, bool explicit_parent, kpa_error *err);
        /* Enable H's controllers below the group DFD (at PATH). */
        int (*enable)(const hierarchy *h, int dfd, const char *path, kpa_error *err);
        /* Kill every process of H's group at once; false where it cannot. */
        bool (*kill_all)(const hierarchy *h);
} cgroup_ops;

static const cgroup_ops cgroup_v1_ops, cgroup_v2_ops;

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
static char *lcg_mount[N_CTRL];
static bool lcg_v2[N_CTRL];
static int lcg_mount_errno[N_CTRL];

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
                lcg_mount[c] = mount;
        }
}

static int lcg_errno(int r)
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

static const char *lcg_strerror(int r)
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
static int disc_init(kpa_error *err)
{
        pthread_once(&disc_once, disc_init_once);
        return disc_result != 0 ? lcg_init_error(disc_result, err) : 0;
}

/* libcgroup itself, initialized (cgroup_init()), for its calls. */
static int lcg_init(kpa_error *err)
{
        int r = disc_init(err);
        if (r < 0)
                return r;
        pthread_once(&lcg_once, lcg_init_once);
        return lcg_init_result != 0 ? lcg_init_error(lcg_init_result, err) : 0;
}

static bool has_item(const char *list, const char *word, const char *seps);

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
 *
 * It is used only when root owns it and its directory and neither is
 * writable by group or others, when it parses exactly, when the boot id
 * and the hash of this process's cgroup mount lines are the same, and when
 * each mount point it names is one of those lines, of the right type (and
 * on v1 with the controller among its options). Anything else is ignored,
 * and root rewrites it from libcgroup's discovery. KPA_CGROUP_DISCOVERY
 * names another file (tests), under the same rules. */
#define DISCOVERY_CACHE "/run/kpa/cgroup-discovery"
#define DISCOVERY_MAGIC "kpa-cgroup-discovery 1"

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

static void lcg_freep(struct cgroup **g)
{
        if (*g)
                cgroup_free(g);
}

static int first_ctrl(const hierarchy *h)
{
        for (int c = 0; c < N_CTRL; c++)
                if (h->ctrls & BIT(c))
                        return c;
        return CTRL_MEMORY;
}

static bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Is WORD one of the items of LIST, which SEPS separate? */
static bool has_item(const char *list, const char *word, const char *seps)
{
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || strchr(seps, p[-1])) && (p[n] == '\0' || strchr(seps, p[n])))
                        return true;
        return false;
}

static bool has_word(const char *list, const char *word)
{
        return has_item(list, word, " \n");
}

static char *level_path(const hierarchy *h, int level)
{
        return kpa_xasprintf("%s/%s", h->mount, h->names[level]);
}

/* ---- discovery ---- */

static bool valid_name(const char *s)
{
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > NAME_MAX_LEN || streq(s, ".") || streq(s, ".."))
                return false;
        for (; *s; s++) {
                char c = *s;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

/* "/a/b/" -> "a/b", "/" -> "". "." and ".." components are refused. */
static int normalize_path(const char *in, char **out)
{
        _cleanup_free_ char *buf = kpa_xmalloc(strlen(in) + 1);
        size_t len = 0;
        for (const char *p = in; *p;) {
                size_t n = strcspn(p, "/");
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return -EINVAL;
                if (n > 0) {
                        if (len > 0)
                                buf[len++] = '/';
                        memcpy(buf + len, p, n);
                        len += n;
                }
                p += n;
                p += strspn(p, "/");
        }
        buf[len] = '\0';
        *out = TAKE_PTR(buf);
        return 0;
}

int kpa_cgroup_v2_path(pid_t pid, char **out)
{
        char file[32];
        if (pid > 0)
                snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)pid);
        else
                snprintf(file, sizeof(file), "/proc/self/cgroup");
        _cleanup_free_ char *buf = NULL;
        int r = kpa_read_file_at(AT_FDCWD, file, 1 << 16, &buf, NULL);
        if (r < 0)
                return r;
        for (char *line = buf; *line;) {
                char *nl = strchrnul(line, '\n');
                bool last = *nl == '\0';
                *nl = '\0';
                if (strncmp(line, "0::", 3) == 0)
                        return normalize_path(line + 3, out);
                if (last)
                        break;
                line = nl + 1;
        }
        return -ENOENT;
}

/* This process's group in the hierarchy of controller C (read raw from
 * /proc/self/cgroup: "ID:CONTROLLERS:PATH" on v1, "0::PATH" on v2). */
static int v2_current_path(int c, char **out)
{
        (void)c;
        return kpa_cgroup_v2_path(0, out);
}

static int v1_current_path(int c, char **out)
{
        _cleanup_free_ char *buf = NULL;
        int r = kpa_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 16, &buf, NULL);
        if (r < 0)
                return r;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *ctrls = strchr(line, ':');
                char *path = ctrls ? strchr(ctrls + 1, ':') : NULL;
                if (!path)
                        continue;
                *path++ = '\0';
                if (has_item(ctrls + 1, ctrl_names[c], ","))
                        return normalize_path(path, out);
        }
        return -ENOENT;
}

/* ---- explicit parents ---- */

#define CGROUP_FS_ROOT "/sys/fs/cgroup"

/* The group path of PATH when it is a directory of a cgroup file system:
 * PATH below the mount point of its hierarchy, which is the highest
 * directory above it on the same file system (each hierarchy is a file
 * system of its own; on v1 and hybrid hosts a tmpfs at /sys/fs/cgroup
 * holds them). -ENOENT when PATH is no such directory. */
static int cgroupfs_group(const char *path, char **out)
{
        _cleanup_free_ char *real = realpath(path, NULL);
        struct statfs sfs;
        struct stat st;
        if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode) || statfs(real, &sfs) < 0 ||
            (sfs.f_type != CGROUP2_SUPER_MAGIC && sfs.f_type != CGROUP_SUPER_MAGIC))
                return -ENOENT;
        size_t mount_len = strlen(real);
        while (mount_len > 1) {
                size_t up_len = mount_len;
                while (up_len > 0 && real[up_len - 1] != '/')
                        up_len--;
                _cleanup_free_ char *up = kpa_xstrndup(real, up_len > 1 ? up_len - 1 : 1);
                struct stat ust;
                if (stat(up, &ust) < 0 || ust.st_dev != st.st_dev)
                        break;
                mount_len = up_len > 1 ? up_len - 1 : 1;
        }
        return normalize_path(real + (mount_len > 1 ? mount_len : 0), out);
}

/* Does PATH lie in /sys/fs/cgroup or the mount point of a hierarchy? */
static bool under_cgroup_mount(const char *path)
{
        for (int c = -1; c < N_CTRL; c++) {
                const char *m = c < 0 ? CGROUP_FS_ROOT : lcg_mount[c];
                size_t n = m ? strlen(m) : 0;
                if (n && strncmp(path, m, n) == 0 && (path[n] == '/' || path[n] == '\0'))
                        return true;
        }
        return false;
}

/* An explicit PARENT as a group path, "a/b" ("" for the root): a cgroup
 * path as /proc/PID/cgroup shows it ("/a/b", the same in every hierarchy),
 * or the directory of that group in the cgroup file system, whose mount
 * point is stripped ("/sys/fs/cgroup/a/b" on v2, "/sys/fs/cgroup/unified/a/b"
 * or "/sys/fs/cgroup/memory/a/b" on hybrid and v1 hosts), so that the
 * prefix is not doubled. A path in /sys/fs/cgroup that is no such
 * directory is refused rather than taken for a group of that name. */
static int parent_group_path(const char *parent, char **out, kpa_error *err)
{
        if (parent[0] == '/' && cgroupfs_group(parent, out) == 0)
                return 0;
        if (under_cgroup_mount(parent))
                return kpa_error_set(err, ENOENT,
                                     "cgroup parent %s: no such directory in the cgroup file "
                                     "system (give a cgroup path as /proc/self/cgroup shows it, "
                                     "or an existing cgroup directory)",
                                     parent);
        if (normalize_path(parent, out) < 0)
                return kpa_error_set(err, EINVAL, "cgroup parent \"%s\" is not valid", parent);
        return 0;
}

/* The group that kpa_cgroup_become_supervisor() moved this process out of
 * (a group path, "" for the root of a cgroup namespace), or NULL. kpa.slice
 * there is kpa's own, as it is in the cgroup kpa runs in. */
static pthread_mutex_t supervisor_lock = PTHREAD_MUTEX_INITIALIZER;
static char *supervisor_parent;

static bool is_supervisor_parent(const char *group)
{
        pthread_mutex_lock(&supervisor_lock);
        bool yes = supervisor_parent && group && streq(supervisor_parent, group);
        pthread_mutex_unlock(&supervisor_lock);
        return yes;
}

static void set_names(hierarchy *h, const char *app_id, const char *instance)
{
        const char *sep = h->parent[0] ? "/" : "";
        h->names[LEVEL_SLICE] = kpa_xasprintf("%s%s" SLICE, h->parent, sep);
        h->names[LEVEL_APP] = kpa_xasprintf("%s/%s", h->names[LEVEL_SLICE], app_id);
        h->names[LEVEL_INST] = kpa_xasprintf("%s/%s", h->names[LEVEL_APP], instance);
        h->path = level_path(h, LEVEL_INST);
}

/* Put controller C into the hierarchy it is mounted in (a new entry unless
 * a controller seen before shares the mount), below PARENT (a group path
 * from parent_group_path(), NULL: this process's own group there).
 * Unmounted: not used. */
static int add_controller(kpa_cgroup *cg, int c, const char *parent, kpa_error *err)
{
        const char *mount = lcg_mount[c];
        if (!mount)
                return 0;
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].mount && streq(cg->h[i].mount, mount)) {
                        cg->h[i].ctrls |= BIT(c);
                        return 0;
                }
        if (lcg_mount_errno[c])
                return kpa_error_set_errno(err, lcg_mount_errno[c], "cgroup %s: cannot statfs",
                                           mount);
        hierarchy *h = &cg->h[cg->n];
        h->v2 = lcg_v2[c];
        h->ops = h->v2 ? &cgroup_v2_ops : &cgroup_v1_ops;
        int r = 0;
        if (parent)
                h->parent = kpa_xstrdup(parent);
        else
                r = h->ops->current_path(c, &h->parent);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "cgroup: cannot find this process's %s cgroup",
                                           ctrl_names[c]);
        h->mount = kpa_xstrdup(mount);
        h->ctrls = BIT(c);
        cg->n++;
        return 0;
}

/* Free what H holds and leave it empty. */
static void hierarchy_clear(hierarchy *h)
{
        closep(&h->lock_fd);
        free(h->mount);
        free(h->parent);
        for (int l = 0; l < N_LEVEL; l++)
                free(h->names[l]);
        free(h->path);
        *h = (hierarchy){.lock_fd = -1};
}

/* Drop the hierarchies that host none of the controllers in USED. */
static void keep_hierarchies(kpa_cgroup *cg, unsigned used)
{
        size_t n = 0;
        for (size_t i = 0; i < cg->n; i++) {
                hierarchy *h = &cg->h[i];
                if (!(h->ctrls & used)) {
                        hierarchy_clear(h);
                        continue;
                }
                if (n != i) {
                        cg->h[n] = *h;
                        *h = (hierarchy){.lock_fd = -1};
                }
                n++;
        }
        for (size_t i = n; i < cg->n; i++)
                cg->h[i] = (hierarchy){.lock_fd = -1};
        cg->n = n;
}

/* The controllers an instance with the limits LIM needs: those of its
 * limits, and one that tracks its processes (pids; else any mounted one).
 * On a v1 host each is a hierarchy of its own, and a group in the others
 * would only cost time: about 0.1 ms per level made and removed. */
static unsigned wanted_ctrls(const kpa_cgroup_limits *lim)
{
        unsigned w = (lim->memory_bytes ? BIT(CTRL_MEMORY) : 0) |
                     (lim->pids ? BIT(CTRL_PIDS) : 0) | (lim->cpu_weight ? BIT(CTRL_CPU) : 0);
        static const int trackers[] = {CTRL_PIDS, CTRL_MEMORY, CTRL_CPU};
        for (size_t k = 0; k < ELEMENTSOF(trackers); k++)
                if (lcg_mount[trackers[k]]) {
                        w |= BIT(trackers[k]);
                        break;
                }
        return w;
}

/* The hierarchies of CG: those hosting a controller in USED, below PARENT
 * (NULL: this process's own groups), and able to apply LIM. */
static int discover(kpa_cgroup *cg, const char *parent, const kpa_cgroup_limits *lim,
                    unsigned used, kpa_error *err)
{
        for (int c = 0; c < N_CTRL; c++) {
                int r = add_controller(cg, c, parent, err);
                if (r < 0)
                        return r;
        }
        if (cg->n == 0)
                return kpa_error_set(err, ENODEV,
                                     "cgroup: no hierarchy with the memory, pids or cpu "
                                     "controller is mounted");
        unsigned have = 0;
        for (size_t i = 0; i < cg->n; i++)
                have |= cg->h[i].ctrls;
        uint64_t want[N_CTRL] = {lim->memory_bytes, lim->pids, lim->cpu_weight};
        for (int c = 0; c < N_CTRL; c++)
                if (want[c] && !(have & BIT(c)))
                        return kpa_error_set(err, EOPNOTSUPP,
                                             "cgroup: cannot apply the %s limit: the %s "
                                             "controller is not mounted",
                                             ctrl_names[c], ctrl_names[c]);
        keep_hierarchies(cg, used);
        for (size_t i = 0; i < cg->n; i++) {
                _cleanup_free_ char *p = kpa_xasprintf("%s/%s", cg->h[i].mount, cg->h[i].parent);
                if (!is_dir(p))
                        return kpa_error_set(err, ENOENT,
                                             "cgroup %s: the parent group does not exist", p);
        }
        return 0;
}

/* ---- cgroup v2 parent vetting ---- */

static int v2_refuse(kpa_error *err, const char *ppath, const char *ctrl, bool busy, bool delegated)
{
        if (!delegated)
                return kpa_error_set(err, EOPNOTSUPP,
                                     "cgroup %s: the %s controller is not delegated to it (not "
                                     "in cgroup.controllers)",
                                     ppath, ctrl);
        if (busy)
                return kpa_error_set(err, EBUSY,
                                     "cgroup %s: cannot enable the %s controller below it: it "
                                     "holds processes, and cgroup v2 puts controllers only "
                                     "below groups without processes; run under kpa-execd or "
                                     "pass --cgroup-parent with an empty delegated cgroup",
                                     ppath, ctrl);
        return kpa_error_set(err, EOPNOTSUPP,
                             "cgroup %s: the %s controller is not enabled in its "
                             "cgroup.subtree_control, and kpa does not change groups it did not "
                             "create; enable it there or pass --cgroup-parent",
                             ppath, ctrl);
}

/* Decide which controllers H can use below its parent. A controller must be
 * enabled in the parent's cgroup.subtree_control already, except in an
 * explicit, empty, non-root parent (handed to kpa), where libcgroup enables
 * it. A controller that a limit needs is an error when missing; the others
 * are left out. */
static int v2_vet_parent(hierarchy *h, unsigned needed, bool explicit_parent, kpa_error *err)
{
        _cleanup_free_ char *ppath = kpa_xasprintf("%s/%s", h->mount, h->parent);
        _cleanup_close_ int dfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return kpa_error_set_errno(err, errno, "cgroup %s: cannot open", ppath);
        bool root = h->parent[0] == '\0';
        _cleanup_free_ char *avail = NULL, *enabled = NULL, *procs = NULL;
        int r = kpa_read_file_at(dfd, "cgroup.controllers", 1 << 12, &avail, NULL);
        if (r == 0)
                r = kpa_read_file_at(dfd, "cgroup.subtree_control", 1 << 12, &enabled, NULL);
        if (r == 0 && !root) /* the root is exempt from the no-internal-processes rule */
                r = kpa_read_file_at(dfd, "cgroup.procs", 1 << 22, &procs, NULL);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "cgroup %s: cannot read its cgroup.* files",
                                           ppath);
        bool busy = procs && procs[0] != '\0';
        bool may_enable = explicit_parent && !root && !busy;
        unsigned use = 0;
        int first_missing = -1;
        for (int c = 0; c < N_CTRL; c++) {
                if (!(h->ctrls & BIT(c)))
                        continue;
                bool delegated = has_word(avail, ctrl_names[c]);
                if (delegated && (may_enable || has_word(enabled, ctrl_names[c]))) {
                        use |= BIT(c);
                        continue;
                }
                if (needed & BIT(c))
                        return v2_refuse(err, ppath, ctrl_names[c], busy, delegated);
                if (first_missing < 0)
                        first_missing = c;
        }
        if (use == 0) { /* then some controller was missing: FIRST_MISSING is set */
                int m = first_missing >= 0 ? first_missing : 0;
                return v2_refuse(err, ppath, ctrl_names[m], busy, has_word(avail, ctrl_names[m]));
        }
        h->ctrls = use;
        return 0;
}

/* ---- creation ---- */

static void add_setting(setting *s, size_t *n, int ctrl, const char *file, uint64_t v)
{
        s[*n].ctrl = ctrl;
        s[*n].file = file;
        s[*n].optional = false;
        snprintf(s[*n].value, sizeof(s[*n].value), "%llu", (unsigned long long)v);
        (*n)++;
}

/* cpu.weight (1..10000, default 100) to v1 cpu.shares (default 1024), as
 * systemd maps CPUWeight= on v1 hosts. */
static uint64_t weight_to_shares(uint64_t w)
{
        uint64_t s = w * 1024 / 100;
        return s < 2 ? 2 : s > 262144 ? 262144 : s;
}

static uint64_t v2_weight(uint64_t w)
{
        return w;
}

/* The limit files H gets, in the order they must be written. */
static size_t plan_settings(const hierarchy *h, const kpa_cgroup_limits *lim, setting *s)
{
        size_t n = 0;
        if ((h->ctrls & BIT(CTRL_MEMORY)) && lim->memory_bytes) {
                add_setting(s, &n, CTRL_MEMORY, h->ops->memory_max, lim->memory_bytes);
                /* Swap must not hold what the memory limit refuses. v1: memsw
                 * limits memory plus swap. v2: memory.swap.max. Either
                 * exists only with swap accounting: written where the new
                 * group has it. */
                add_setting(s, &n, CTRL_MEMORY, h->ops->swap_max,
                            h->ops->swap_with_memory ? lim->memory_bytes : 0);
                s[n - 1].optional = true;
        }
        if ((h->ctrls & BIT(CTRL_PIDS)) && lim->pids)
                add_setting(s, &n, CTRL_PIDS, "pids.max", lim->pids);
        if ((h->ctrls & BIT(CTRL_CPU)) && lim->cpu_weight)
                add_setting(s, &n, CTRL_CPU, h->ops->cpu_file, h->ops->cpu_value(lim->cpu_weight));
        return n;
}

static bool is_instance_id(const char *name)
{
        size_t n = 0;
        for (; name[n]; n++)
                if (!((name[n] >= '0' && name[n] <= '9') || (name[n] >= 'a' && name[n] <= 'f')))
                        return false;
        return n == INSTANCE_ID_LEN;
}

/* Remove the empty instance groups in H's APP (APP_FD) that a kpa killed by
 * SIGKILL left behind: those that no living kpa_cgroup holds locked and that
 * are older than GC_MIN_AGE_MS. Each one is deleted through libcgroup, empty
 * only, while this holds its lock: a group that still holds processes is
 * never touched (libcgroup's rmdir fails with EBUSY, and nothing is moved). */
static void collect_leftovers(const hierarchy *h, int app_fd)
{
        int fd = fcntl(app_fd, F_DUPFD_CLOEXEC, 3);
        _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                closep(&fd);
                return;
        }
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if (de->d_type != DT_DIR || !is_instance_id(de->d_name) ||
                    fstatat(app_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                int64_t age_ms = (int64_t)(now.tv_sec - st.st_ctim.tv_sec) * 1000 +
                                 (now.tv_nsec - st.st_ctim.tv_nsec) / 1000000;
                if (age_ms < GC_MIN_AGE_MS)
                        continue;
                _cleanup_close_ int g = openat(app_fd, de->d_name,
                                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (g < 0 || flock(g, LOCK_EX | LOCK_NB) < 0 || lcg_init(NULL) < 0)
                        continue;
                _cleanup_free_ char *name = kpa_xasprintf("%s/%s", h->names[LEVEL_APP], de->d_name);
                _cleanup_(lcg_freep) struct cgroup *lg = cgroup_new_cgroup(name);
                if (lg && cgroup_add_controller(lg, ctrl_names[first_ctrl(h)]))
                        (void)cgroup_delete_cgroup_ext(lg, CGFLAG_DELETE_EMPTY_ONLY);
        }
}

/* Hold H's instance group with a shared flock, so that no other kpa takes
 * it for a leftover. */
static int lock_instance(hierarchy *h, kpa_error *err)
{
        int fd = open(h->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "cgroup %s: cannot open", h->path);
        while (flock(fd, LOCK_SH) < 0)
                if (errno != EINTR) {
                        int e = errno;
                        close(fd);
                        return kpa_error_set_errno(err, e, "cgroup %s: cannot lock", h->path);
                }
        h->lock_fd = fd;
        return 0;
}

static void unlock_instance(hierarchy *h)
{
        closep(&h->lock_fd);
        h->lock_fd = -1;
}

/* v2: enable H's controllers in the cgroup.subtree_control of DFD (the
 * group at PATH), those not enabled yet, so that its children have them. */
static int v2_enable(const hierarchy *h, int dfd, const char *path, kpa_error *err)
{
        _cleanup_free_ char *enabled = NULL;
        int r = kpa_read_file_at(dfd, "cgroup.subtree_control", 1 << 12, &enabled, NULL);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "cgroup %s: cannot read cgroup.subtree_control",
                                           path);
        char words[64] = "";
        size_t len = 0;
        for (int c = 0; c < N_CTRL; c++)
                if ((h->ctrls & BIT(c)) && !has_word(enabled, ctrl_names[c]))
                        len += (size_t)snprintf(words + len, sizeof(words) - len, "%s+%s",
                                                len ? " " : "", ctrl_names[c]);
        if (len == 0)
                return 0;
        _cleanup_close_ int fd = openat(dfd, "cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
        r = fd < 0 ? -errno : kpa_write_all(fd, words, len);
        if (r < 0)
                return kpa_error_set_errno(err, -r,
                                           "cgroup %s: cannot enable %s in its "
                                           "cgroup.subtree_control",
                                           path, words);
        return 0;
}

/* Make level L of H (NAME in DFD, the level above) unless it exists, and
 * open it; on v2 kpa.slice and APP enable the controllers for the level
 * below. -ENOENT (no message): DFD was removed meanwhile, try again. */
static int make_level(hierarchy *h, int dfd, int l, const char *name, int *fd, kpa_error *err)
{
        _cleanup_free_ char *path = level_path(h, l);
        bool made = mkdirat(dfd, name, 0755) == 0;
        if (!made && errno == ENOENT)
                return -ENOENT;
        if (!made && errno == EEXIST && l == LEVEL_INST)
                return kpa_error_set(err, EEXIST, "cgroup %s: already exists", path);
        if (!made && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "cgroup %s: cannot create", path);
        h->made[l] = h->made[l] || made;
        *fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (*fd < 0)
                return errno == ENOENT ? -ENOENT
                                       : kpa_error_set_errno(err, errno, "cgroup %s: cannot open",
                                                             path);
        return h->ops->enable && l != LEVEL_INST ? h->ops->enable(h, *fd, path, err) : 0;
}

/* Write H's settings S (N of them) into its instance group (DFD). */
static int write_settings(const hierarchy *h, int dfd, const setting *s, size_t n, kpa_error *err)
{
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = openat(dfd, s[i].file, O_WRONLY | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT && s[i].optional)
                        continue;
                int r = fd < 0 ? -errno : kpa_write_all(fd, s[i].value, strlen(s[i].value));
                if (r < 0)
                        return kpa_error_set_errno(err, -r, "cgroup %s: cannot write %s", h->path,
                                                   s[i].file);
        }
        return 0;
}

/* Make kpa.slice and APP where they are missing and the instance group
 * with its limits in H, raw (mkdirat/openat below the parent's fd), and
 * lock it. The leftovers of APP are collected first when it existed. On
 * v2, an explicit empty parent that kpa may use (MAY_ENABLE) gets the
 * controllers enabled. */
static int create_in(hierarchy *h, const kpa_cgroup_limits *lim, bool may_enable,
                     kpa_error *err)
{
        setting s[2 * N_CTRL];
        size_t ns = plan_settings(h, lim, s);
        _cleanup_free_ char *ppath = kpa_xasprintf("%s/%s", h->mount, h->parent);
        _cleanup_close_ int pfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return kpa_error_set_errno(err, errno, "cgroup %s: cannot open", ppath);
        int r = h->ops->enable && may_enable ? h->ops->enable(h, pfd, ppath, err) : 0;
        if (r < 0)
                return r;
        const char *app = strrchr(h->names[LEVEL_APP], '/') + 1;
        const char *inst = strrchr(h->names[LEVEL_INST], '/') + 1;
        for (int attempt = 1;; attempt++) {
                _cleanup_close_ int sfd = -1, afd = -1, ifd = -1;
                r = make_level(h, pfd, LEVEL_SLICE, SLICE, &sfd, err);
                bool app_existed = !h->made[LEVEL_APP];
                if (r == 0)
                        r = make_level(h, sfd, LEVEL_APP, app, &afd, err);
                if (r == 0 && attempt == 1 && app_existed && !h->made[LEVEL_APP])
                        collect_leftovers(h, afd);
                if (r == 0)
                        r = make_level(h, afd, LEVEL_INST, inst, &ifd, err);
                /* a kpa ending at the same time may have removed the empty
                 * kpa.slice or APP between the mkdirs: try again */
                if (r == -ENOENT && attempt < CREATE_ATTEMPTS)
                        continue;
                if (r == -ENOENT)
                        return kpa_error_set_errno(err, ENOENT, "cgroup %s: cannot create",
                                                   h->path);
                if (r < 0)
                        return r;
                while (flock(ifd, LOCK_SH) < 0)
                        if (errno != EINTR)
                                return kpa_error_set_errno(err, errno, "cgroup %s: cannot lock",
                                                           h->path);
                h->lock_fd = TAKE_FD(ifd);
                return write_settings(h, h->lock_fd, s, ns, err);
        }
}

/* rmdir level L of H: 0 (gone), or -errno (-EBUSY: it holds processes,
 * or groups). */
static int remove_level(const hierarchy *h, int l)
{
        _cleanup_free_ char *path = level_path(h, l);
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Remove what kpa_cgroup_create() made, innermost first. */
static void remove_made(kpa_cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++)
                unlock_instance(&cg->h[i]);
        for (int l = N_LEVEL - 1; l >= 0; l--)
                for (size_t i = 0; i < cg->n; i++)
                        if (cg->h[i].made[l])
                                (void)remove_level(&cg->h[i], l);
}

static void group_free(kpa_cgroup *cg)
{
        if (!cg)
                return;
        kpa_cgroup_close_attach_fds(cg);
        if (cg->v2_fd >= 0)
                close(cg->v2_fd);
        for (size_t i = 0; i < N_CTRL; i++)
                hierarchy_clear(&cg->h[i]);
        free(cg);
}

void kpa_cgroup_forget(kpa_cgroup *cg)
{
        if (cg)
                group_free(cg);
}

static void group_freep(kpa_cgroup **cg)
{
        group_free(*cg);
}

static int check_args(const char *app_id, const char *instance, const kpa_cgroup_limits *lim,
                      kpa_error *err)
{
        if (!valid_name(app_id))
                return kpa_error_set(err, EINVAL, "cgroup: invalid application id \"%s\"",
                                     app_id ? app_id : "");
        if (!valid_name(instance))
                return kpa_error_set(err, EINVAL, "cgroup: invalid instance name \"%s\"",
                                     instance ? instance : "");
        if (lim->cpu_weight > 10000)
                return kpa_error_set(err, EINVAL, "cgroup: cpu weight %llu is not in 1..10000",
                                     (unsigned long long)lim->cpu_weight);
        return 0;
}

/* The checked arguments, libcgroup ready, and the hierarchies that PARENT
 * (NULL: this process's own cgroup) is in: those LIM needs, or (ALL) every
 * one with a controller kpa uses. */
static int group_new(const char *parent, const char *app_id, const char *instance,
                     const kpa_cgroup_limits *lim, bool all, kpa_cgroup **out, kpa_error *err)
{
        int r = check_args(app_id, instance, lim, err);
        if (r < 0)
                return r;
        r = disc_init(err);
        if (r < 0)
                return r;
        _cleanup_(group_freep) kpa_cgroup *cg = kpa_xcalloc(1, sizeof(*cg));
        cg->v2_fd = -1;
        for (size_t i = 0; i < N_CTRL; i++)
                cg->h[i].lock_fd = -1;
        _cleanup_free_ char *pgroup = NULL;
        if (parent && (r = parent_group_path(parent, &pgroup, err)) < 0)
                return r;
        cg->own_parent = !parent || is_supervisor_parent(pgroup);
        r = discover(cg, pgroup, lim, all ? ~0u : wanted_ctrls(lim), err);
        if (r < 0)
                return r;
        *out = TAKE_PTR(cg);
        return 0;
}

int kpa_cgroup_create(const char *parent, const char *app_id, const char *instance,
                      const kpa_cgroup_limits *limits, kpa_cgroup **out, kpa_error *err)
{
        static const kpa_cgroup_limits none;
        const kpa_cgroup_limits *lim = limits ? limits : &none;
        _cleanup_(group_freep) kpa_cgroup *cg = NULL;
        int r = group_new(parent, app_id, instance, lim, false, &cg, err);
        if (r < 0)
                return r;
        unsigned needed = (lim->memory_bytes ? BIT(CTRL_MEMORY) : 0) |
                          (lim->pids ? BIT(CTRL_PIDS) : 0) | (lim->cpu_weight ? BIT(CTRL_CPU) : 0);
        for (size_t i = 0; i < cg->n; i++) {
                set_names(&cg->h[i], app_id, instance);
                const cgroup_ops *ops = cg->h[i].ops;
                if (ops->vet_parent &&
                    (r = ops->vet_parent(&cg->h[i], needed, parent != NULL, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < cg->n; i++) {
                r = create_in(&cg->h[i], lim, parent != NULL, err);
                if (r < 0) {
                        remove_made(cg);
                        return r;
                }
        }
        *out = TAKE_PTR(cg);
        return 0;
}

/* Take hold of an instance group that a kpa_cgroup_create() of an earlier
 * process made (a supervisor adopting its instances again after a restart),
 * in every hierarchy where it exists (those its limits needed).
 * kpa.slice and APP count as made by kpa when they are in kpa's own cgroup
 * (PARENT NULL, or the group a supervisor left for its leaf): there only
 * kpa makes them. */
static int open_scope(const char *app_id, const char *instance, kpa_cgroup **out, kpa_error *err);

int kpa_cgroup_open(const char *parent, const char *app_id, const char *instance,
                    kpa_cgroup **out, kpa_error *err)
{
        static const kpa_cgroup_limits none;
        _cleanup_(group_freep) kpa_cgroup *cg = NULL;
        kpa_cgroup_driver driver;
        int r = kpa_cgroup_driver_get(&driver, err);
        if (r < 0)
                return r;
        /* an instance of the systemd driver, else one from before a switch */
        if (!parent && driver == KPA_CGROUP_DRIVER_SYSTEMD &&
            (r = open_scope(app_id, instance, out, err)) != -ENOENT)
                return r;
        r = group_new(parent, app_id, instance, &none, true, &cg, err);
        if (r < 0)
                return r;
        unsigned present = 0;
        for (size_t i = 0; i < cg->n; i++) {
                set_names(&cg->h[i], app_id, instance);
                if (is_dir(cg->h[i].path))
                        present |= cg->h[i].ctrls;
        }
        if (!present)
                return kpa_error_set(err, ENOENT, "cgroup %s: no such instance group",
                                     cg->h[0].path);
        keep_hierarchies(cg, present);
        for (size_t i = 0; i < cg->n; i++) {
                hierarchy *h = &cg->h[i];
                r = lock_instance(h, err);
                if (r < 0)
                        return r;
                h->made[LEVEL_INST] = true;
                h->made[LEVEL_APP] = h->made[LEVEL_SLICE] = cg->own_parent;
        }
        *out = TAKE_PTR(cg);
        return 0;
}

/* ---- joining ---- */

int kpa_cgroup_attach_fds(kpa_cgroup *cg, const int **fds, size_t *n, kpa_error *err)
{
        for (size_t i = cg->n_attach; !cg->systemd && i < cg->n; i++) {
                const char *file = cg->h[i].ops->attach_file;
                _cleanup_free_ char *p = kpa_xasprintf("%s/%s", cg->h[i].path, file);
                int fd = open(p, O_WRONLY | O_CLOEXEC);
                if (fd < 0) {
                        int e = errno;
                        kpa_cgroup_close_attach_fds(cg);
                        return kpa_error_set_errno(err, e, "cgroup %s: cannot open %s",
                                                   cg->h[i].path, file);
                }
                cg->attach_fds[cg->n_attach++] = fd;
        }
        *fds = cg->attach_fds;
        *n = cg->n_attach;
        return 0;
}

void kpa_cgroup_close_attach_fds(kpa_cgroup *cg)
{
        for (size_t i = 0; i < cg->n_attach; i++)
                close(cg->attach_fds[i]);
        cg->n_attach = 0;
}

/* "0" names the writer itself; written by a single-threaded child into v1
 * "tasks" it avoids the kernel's threadgroup lock (PERF-NOTES.md). */
int kpa_cgroup_join_self(const int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                ssize_t w;
                do
                        w = write(fds[i], "0", 1);
                while (w < 0 && errno == EINTR);
                if (w < 0)
                        return -errno;
                if (w != 1)
                        return -EIO;
        }
        return 0;
}

int kpa_cgroup_attach_pid(kpa_cgroup *cg, pid_t pid, kpa_error *err)
{
        char buf[24];
        int len = snprintf(buf, sizeof(buf), "%d", (int)pid);
        for (size_t i = 0; i < cg->n; i++) {
                _cleanup_free_ char *p = kpa_xasprintf("%s/cgroup.procs", cg->h[i].path);
                _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
                int r = fd < 0 ? -errno : kpa_write_all(fd, buf, (size_t)len);
                if (r < 0)
                        return kpa_error_set_errno(err, -r, "cgroup %s: cannot move process %d in",
                                                   cg->h[i].path, (int)pid);
        }
        return 0;
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

bool kpa_cgroup_v2_only(const kpa_cgroup *cg)
{
        return cg && !cg->systemd && cg->n == 1 && cg->h[0].v2;
}

int kpa_cgroup_v2_fd(kpa_cgroup *cg)
{
        if (cg->v2_fd >= 0)
                return cg->v2_fd;
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].v2) {
                        cg->v2_fd = open(cg->h[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        return cg->v2_fd;
                }
        return -1;
}

/* ---- processes ---- */

/* Every hierarchy holds every process of the instance; prefer pids'. */
static const hierarchy *primary(const kpa_cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].ctrls & BIT(CTRL_PIDS))
                        return &cg->h[i];
        return &cg->h[0];
}

static int list_pids(const hierarchy *h, pid_t **pids, size_t *n, kpa_error *err)
{
        char ctrl[16];
        snprintf(ctrl, sizeof(ctrl), "%s", ctrl_names[first_ctrl(h)]);
        pid_t *list = NULL;
        int size = 0;
        int r = cgroup_get_procs(h->names[LEVEL_INST], ctrl, &list, &size);
        if (r != 0) {
                free(list);
                return kpa_error_set(err, lcg_errno(r), "cgroup %s: cannot read cgroup.procs: %s",
                                     h->path, lcg_strerror(r));
        }
        *pids = list;
        *n = size > 0 ? (size_t)size : 0;
        return 0;
}

int kpa_cgroup_pids(kpa_cgroup *cg, pid_t **pids, size_t *n, kpa_error *err)
{
        int r = lcg_init(err);
        return r < 0 ? r : list_pids(primary(cg), pids, n, err);
}

/* Is PID (still) in H's instance group, per /proc/PID/cgroup? */
static bool in_group(const hierarchy *h, pid_t pid)
{
        char file[32];
        snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)pid);
        _cleanup_free_ char *buf = NULL, *want = kpa_xasprintf("/%s", h->names[LEVEL_INST]);
        if (kpa_read_file_at(AT_FDCWD, file, 1 << 16, &buf, NULL) < 0)
                return false;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *ctrls = strchr(line, ':');
                char *path = ctrls ? strchr(ctrls + 1, ':') : NULL;
                if (!path)
                        continue;
                *ctrls++ = '\0';
                *path++ = '\0';
                if (h->ops->is_line_of(h, line, ctrls))
                        return streq(path, want);
        }
        return false;
}

/* SIGKILL PID only if it is a member: between the listing and the signal it
 * may have exited and its number gone to an outsider. The pidfd pins the
 * process, so a membership seen while it is alive is its own. */
static void kill_member(const hierarchy *h, pid_t pid)
{
#ifdef SYS_pidfd_open
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd >= 0) {
                if (in_group(h, pid))
                        (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                return;
        }
        if (errno != ENOSYS)
                return;
#endif
        if (in_group(h, pid))
                (void)kill(pid, SIGKILL);
}

static long elapsed_ms(const struct timespec *start)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

/* v2 with cgroup.kill (Linux 5.14): one write kills the whole group. */
static bool v2_kill_all(const hierarchy *h)
{
        _cleanup_free_ char *p = kpa_xasprintf("%s/cgroup.kill", h->path);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
        return fd >= 0 && kpa_write_all(fd, "1", 1) == 0;
}

/* The fast kill of H's backend, where it has one. */
static bool kill_all(const hierarchy *h)
{
        return h->ops->kill_all && h->ops->kill_all(h);
}

bool kpa_cgroup_kill_now(kpa_cgroup *cg)
{
        return cg && kill_all(primary(cg));
}

int kpa_cgroup_kill(kpa_cgroup *cg, kpa_error *err)
{
        int r = lcg_init(err);
        if (r < 0)
                return r;
        const hierarchy *h = primary(cg);
        bool killed = kill_all(h);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (unsigned delay = 1;; delay = delay < 32 ? delay * 2 : delay) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                r = list_pids(h, &pids, &n, err);
                if (r < 0 || n == 0)
                        return r;
                for (size_t i = 0; !killed && i < n; i++)
                        kill_member(h, pids[i]);
                if (elapsed_ms(&start) > KILL_TIMEOUT_MS)
                        return kpa_error_set(err, EBUSY,
                                             "cgroup %s: %zu processes still there %d ms after "
                                             "SIGKILL",
                                             h->path, n, KILL_TIMEOUT_MS);
                sleep_ms(delay);
        }
}

/* Read raw, as kpa_oom_fd_killed() does: asked at the end of every
 * instance with a memory limit. */
bool kpa_cgroup_oom_killed(kpa_cgroup *cg)
{
        _cleanup_close_ int fd = kpa_cgroup_oom_fd(cg);
        return kpa_oom_fd_killed(fd);
}

const char *kpa_cgroup_path(const kpa_cgroup *cg, const char *controller)
{
        int c = -1;
        for (int i = 0; i < N_CTRL; i++)
                if (controller && streq(controller, ctrl_names[i]))
                        c = i;
        if (c < 0)
                return NULL;
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].ctrls & BIT(c))
                        return cg->h[i].path;
        for (size_t i = 0; i < cg->n; i++) /* v2: one group for all controllers */
                if (cg->h[i].v2)
                        return cg->h[i].path;
        return NULL;
}

/* ---- removal ---- */

/* rmdir H's instance group, waiting briefly: processes that were just
 * killed leave their group a few milliseconds after they die. */
static int remove_instance(const hierarchy *h, kpa_error *err)
{
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (unsigned delay = 1;; delay = delay < 32 ? delay * 2 : delay) {
                int r = remove_level(h, LEVEL_INST);
                if (r == 0)
                        return 0;
                if (r != -EBUSY || elapsed_ms(&start) > EMPTY_TIMEOUT_MS)
                        return kpa_error_set_errno(
                                err, -r, "cgroup %s: cannot remove%s", h->path,
                                r == -EBUSY ? " (it still holds processes)" : "");
                sleep_ms(delay);
        }
}

static int destroy_scope(kpa_cgroup *cg, kpa_error *err);

int kpa_cgroup_destroy(kpa_cgroup *cg, kpa_error *err)
{
        if (!cg)
                return 0;
        if (cg->systemd)
                return destroy_scope(cg, err);
        int ret = 0;
        for (size_t i = 0; i < cg->n; i++) {
                hierarchy *h = &cg->h[i];
                /* The first failure is the one reported; the rest still go. */
                int r = remove_instance(h, ret == 0 ? err : NULL);
                if (r < 0) {
                        ret = ret == 0 ? r : ret;
                        continue;
                }
                /* Below kpa's own cgroup, kpa.slice and APP stay for the
                 * next start (made once, they are kept: two mkdirs and two
                 * rmdirs less per start, and on v2 the controllers stay
                 * enabled). Below an explicit parent, which is someone
                 * else's, what this instance made goes once no other
                 * instance uses it. */
                if (!cg->own_parent && h->made[LEVEL_APP] && remove_level(h, LEVEL_APP) == 0 &&
                    h->made[LEVEL_SLICE])
                        (void)remove_level(h, LEVEL_SLICE);
        }
        group_free(cg);
        return ret;
}

/* ---- OOM counters for the init ---- */

int kpa_cgroup_oom_fd(kpa_cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].ctrls & BIT(CTRL_MEMORY)) {
                        const char *f = cg->h[i].ops->oom_file;
                        _cleanup_free_ char *p = kpa_xasprintf("%s/%s", cg->h[i].path, f);
                        return open(p, O_RDONLY | O_CLOEXEC);
                }
        return -1;
}

bool kpa_oom_fd_killed(int fd)
{
        char buf[512];
        ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
        if (n <= 0)
                return false;
        buf[n] = '\0';
        for (const char *line = buf; line;
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, "oom_kill ", 9) == 0)
                        return line[9] >= '1' && line[9] <= '9';
        return false;
}

/* ---- the systemd driver's groups ----
 * A scope's group is one v2 group that systemd made: kpa_cgroup holds it
 * as a single v2 hierarchy whose instance level is the scope's path, locks
 * it like its own, and lists, kills and reads it the same way; it never
 * removes it, nor anything above it (systemd does, once it is empty). */

/* The mount point of the v2 hierarchy with one of kpa's controllers, or
 * NULL (after lcg_init()). */
static const char *v2_mount(void)
{
        for (int c = 0; c < N_CTRL; c++)
                if (lcg_mount[c] && lcg_v2[c])
                        return lcg_mount[c];
        return NULL;
}

/* CG for the scope group at PATH ("/kpa.slice/.../X.scope"), locked. */
static int scope_group(const char *path, kpa_cgroup **out, kpa_error *err)
{
        int r = disc_init(err);
        if (r < 0)
                return r;
        const char *mount = v2_mount();
        if (!mount)
                return kpa_error_set(err, ENODEV,
                                     "cgroup: the systemd driver needs cgroup v2 with the pids "
                                     "or memory controller");
        _cleanup_(group_freep) kpa_cgroup *cg = kpa_xcalloc(1, sizeof(*cg));
        cg->v2_fd = -1;
        cg->systemd = true;
        for (size_t i = 0; i < N_CTRL; i++)
                cg->h[i].lock_fd = -1; /* every one is cleared (closed) on free */
        cg->n = 1;
        hierarchy *h = &cg->h[0];
        h->v2 = true;
        h->ops = &cgroup_v2_ops;
        for (int c = 0; c < N_CTRL; c++)
                if (lcg_mount[c] && lcg_v2[c] && streq(lcg_mount[c], mount))
                        h->ctrls |= BIT(c);
        h->mount = kpa_xstrdup(mount);
        h->parent = kpa_xstrdup("");
        r = normalize_path(path, &h->names[LEVEL_INST]);
        if (r < 0)
                return kpa_error_set(err, EINVAL, "cgroup: invalid scope path \"%s\"", path);
        h->path = level_path(h, LEVEL_INST);
        r = lock_instance(h, err);
        if (r < 0)
                return r;
        *out = TAKE_PTR(cg);
        return 0;
}

int kpa_cgroup_scope_begin(const char *app_id, const char *instance,
                           const kpa_cgroup_limits *limits, pid_t pid, kpa_scope_request **out,
                           kpa_error *err)
{
        static const kpa_cgroup_limits none;
        const kpa_cgroup_limits *lim = limits ? limits : &none;
        int r = check_args(app_id, instance, lim, err);
        return r < 0 ? r : kpa_systemd_scope_send(app_id, instance, lim, pid, out, err);
}

int kpa_cgroup_scope_end(kpa_scope_request *rq, kpa_cgroup **out, kpa_error *err)
{
        _cleanup_free_ char *path = NULL;
        int r = kpa_systemd_scope_finish(rq, &path, err);
        return r < 0 ? r : scope_group(path, out, err);
}

int kpa_cgroup_create_scope(const char *app_id, const char *instance,
                            const kpa_cgroup_limits *limits, pid_t pid, kpa_cgroup **out,
                            kpa_error *err)
{
        kpa_scope_request *rq = NULL;
        int r = kpa_cgroup_scope_begin(app_id, instance, limits, pid, &rq, err);
        return r < 0 ? r : kpa_cgroup_scope_end(rq, out, err);
}

/* A scope of the system manager (a restarted kpa-execd adopting its
 * instances): /kpa.slice/kpa-APP.slice/kpa-APP-INST.scope. */
static int open_scope(const char *app_id, const char *instance, kpa_cgroup **out, kpa_error *err)
{
        static const kpa_cgroup_limits none;
        int r = check_args(app_id, instance, &none, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *slice = NULL, *scope = NULL;
        r = kpa_systemd_unit_names(app_id, instance, &slice, &scope, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = kpa_xasprintf("/" SLICE "/%s/%s", slice, scope);
        if ((r = disc_init(err)) < 0)
                return r;
        const char *mount = v2_mount();
        _cleanup_free_ char *full = mount ? kpa_xasprintf("%s%s", mount, path) : NULL;
        if (!full || !is_dir(full))
                return -ENOENT; /* no message: the caller looks further */
        return scope_group(path, out, err);
}

/* systemd removes the scope once it is empty: wait (briefly) for that. */
static int destroy_scope(kpa_cgroup *cg, kpa_error *err)
{
        hierarchy *h = &cg->h[0];
        int ret = 0;
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (unsigned delay = 1;; delay = delay < 32 ? delay * 2 : delay) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                if (list_pids(h, &pids, &n, NULL) < 0 || n == 0)
                        break; /* gone, or empty */
                if (elapsed_ms(&start) > EMPTY_TIMEOUT_MS) {
                        ret = kpa_error_set(err, EBUSY, "cgroup %s: it still holds processes",
                                            h->path);
                        break;
                }
                sleep_ms(delay);
        }
        group_free(cg);
        return ret;
}

/* ---- the supervisor's leaf (cgroup v2, cgroupfs driver) ---- */

#define SUPERVISOR_LEAF "supervisor"

/* The controllers a supervisor enables for the groups below its parent:
 * kpa's three, and io (for its weight) where the host has it. */
static const char *const delegated_ctrls[] = {"memory", "pids", "cpu", "io"};

/* Move this process, every thread of it, into DFD/PROCS_FILE (a
 * cgroup.procs: "0" names the writer's thread group). */
static int move_self(int dfd, const char *procs_file)
{
        _cleanup_close_ int fd = openat(dfd, procs_file, O_WRONLY | O_CLOEXEC);
        return fd < 0 ? -errno : kpa_write_all(fd, "0", 1);
}

static bool holds_processes(int dfd)
{
        _cleanup_free_ char *procs = NULL;
        return kpa_read_file_at(dfd, "cgroup.procs", 1 << 22, &procs, NULL) == 0 &&
               procs[0] != '\0';
}

/* Enable in the cgroup.subtree_control of GPATH (DFD) every controller of
 * delegated_ctrls that its cgroup.controllers offers, one at a time so that
 * a refusal names its controller. EBUSY while other processes are still in
 * the group (whoever started the supervisor may wait there until it is
 * ready) is no failure: the first kpa_cgroup_create() below the group
 * enables what it needs once the group is empty (v2_vet_parent). */
static int enable_below(int dfd, const char *gpath, kpa_error *err)
{
        _cleanup_free_ char *avail = NULL, *enabled = NULL;
        int r = kpa_read_file_at(dfd, "cgroup.controllers", 1 << 12, &avail, NULL);
        if (r >= 0)
                r = kpa_read_file_at(dfd, "cgroup.subtree_control", 1 << 12, &enabled, NULL);
        if (r < 0 || !avail || !enabled)
                return kpa_error_set_errno(err, r < 0 ? -r : EIO,
                                           "cgroup %s: cannot read its cgroup.* files", gpath);
        for (size_t k = 0; k < ELEMENTSOF(delegated_ctrls); k++) {
                const char *c = delegated_ctrls[k];
                if (!has_word(avail, c) || has_word(enabled, c))
                        continue;
                char word[16];
                int len = snprintf(word, sizeof(word), "+%s", c);
                _cleanup_close_ int fd =
                        openat(dfd, "cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
                r = fd < 0 ? -errno : kpa_write_all(fd, word, (size_t)len);
                if (r == -EBUSY && holds_processes(dfd))
                        return 0;
                if (r < 0)
                        return kpa_error_set_errno(err, -r,
                                                   "cgroup %s: cannot enable the %s controller "
                                                   "in its cgroup.subtree_control",
                                                   gpath, c);
        }
        return 0;
}

/* cgroup v2 puts controllers only below groups without processes (its
 * root excepted), so a supervisor that makes its instances' groups below
 * the cgroup it was started in must leave that cgroup first, as delegated
 * managers do (systemd's init.scope, crun's and Docker's init groups).
 * The leaf, the move and the enabling are raw: libcgroup 2.0.2 would
 * enable the leaf's controllers in every ancestor on creation, which fails
 * in the very group this process is leaving. */
int kpa_cgroup_become_supervisor(char **parent_out, kpa_error *err)
{
        *parent_out = NULL;
        kpa_cgroup_driver driver;
        int r = kpa_cgroup_driver_get(&driver, err);
        if (r < 0 || driver != KPA_CGROUP_DRIVER_CGROUPFS)
                return r;
        if ((r = disc_init(err)) < 0)
                return r;
        pthread_mutex_lock(&supervisor_lock);
        _cleanup_free_ char *done = supervisor_parent ? kpa_xstrdup(supervisor_parent) : NULL;
        pthread_mutex_unlock(&supervisor_lock);
        if (done) { /* called before: this process is in the leaf already */
                *parent_out = kpa_xasprintf("/%s", done);
                return 0;
        }
        int c = lcg_v2[CTRL_PIDS] ? CTRL_PIDS : lcg_v2[CTRL_MEMORY] ? CTRL_MEMORY : -1;
        if (c < 0) /* v1 or hybrid: no such rule there */
                return 0;
        _cleanup_free_ char *group = NULL;
        r = kpa_cgroup_v2_path(0, &group);
        if (r < 0)
                return kpa_error_set_errno(err, -r,
                                           "cgroup: cannot find this process's cgroup v2 group "
                                           "in /proc/self/cgroup");
        /* Started in a leaf of that name already: a supervisor restarted
         * where its predecessor went (its parent, with controllers enabled,
         * can take no process any more), or systemd's
         * DelegateSubgroup=supervisor. The leaf's parent is PARENT. */
        char *last = strrchr(group, '/');
        bool in_leaf = streq(last ? last + 1 : group, SUPERVISOR_LEAF);
        if (in_leaf)
                *(last ? last : group) = '\0';
        _cleanup_free_ char *gpath =
                group[0] ? kpa_xasprintf("%s/%s", lcg_mount[c], group) : kpa_xstrdup(lcg_mount[c]);
        _cleanup_close_ int dfd = open(gpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return kpa_error_set_errno(err, errno, "cgroup %s (this process's): cannot open",
                                           gpath);
        /* the root of the hierarchy (it alone has no cgroup.type) is exempt
         * from the rule: kpa.slice goes below it as before. The root of a
         * cgroup namespace is not, and is left like any other group. */
        if (!in_leaf && faccessat(dfd, "cgroup.type", F_OK, 0) < 0 && errno == ENOENT)
                return 0;
        bool made = false;
        if (!in_leaf) {
                _cleanup_free_ char *leaf = kpa_xasprintf("%s/" SUPERVISOR_LEAF, gpath);
                made = mkdirat(dfd, SUPERVISOR_LEAF, 0755) == 0;
                if (!made && errno != EEXIST)
                        return kpa_error_set_errno(err, errno,
                                                   "cgroup %s: cannot create the supervisor's "
                                                   "leaf, where it must go so that cgroup v2 "
                                                   "allows controllers below %s",
                                                   leaf, gpath);
                r = move_self(dfd, SUPERVISOR_LEAF "/cgroup.procs");
                if (r < 0) {
                        if (made)
                                (void)unlinkat(dfd, SUPERVISOR_LEAF, AT_REMOVEDIR);
                        return kpa_error_set_errno(err, -r,
                                                   "cgroup %s: cannot move this process there "
                                                   "from %s, which must hold no processes for "
                                                   "cgroup v2 to allow controllers below it",
                                                   leaf, gpath);
                }
        }
        r = enable_below(dfd, gpath, err);
        if (r < 0 && !in_leaf) { /* back to where it was, leaving nothing made */
                (void)move_self(dfd, "cgroup.procs");
                if (made)
                        (void)unlinkat(dfd, SUPERVISOR_LEAF, AT_REMOVEDIR);
        }
        if (r < 0)
                return r;
        pthread_mutex_lock(&supervisor_lock);
        free(supervisor_parent);
        supervisor_parent = kpa_xstrdup(group);
        pthread_mutex_unlock(&supervisor_lock);
        *parent_out = kpa_xasprintf("/%s", group);
        return 0;
}

char *kpa_cgroup_supervisor_parent(void)
{
        pthread_mutex_lock(&supervisor_lock);
        char *p = supervisor_parent ? kpa_xasprintf("/%s", supervisor_parent) : NULL;
        pthread_mutex_unlock(&supervisor_lock);
        return p;
}

/* ---- the backends ---- */

/* v1: the line of the hierarchy that has H's first controller. */
static bool v1_is_line_of(const hierarchy *h, const char *id, const char *ctrls)
{
        (void)id;
        return has_item(ctrls, ctrl_names[first_ctrl(h)], ",");
}

/* v2: the one line "0::PATH". */
static bool v2_is_line_of(const hierarchy *h, const char *id, const char *ctrls)
{
        (void)h;
        return streq(id, "0") && ctrls[0] == '\0';
}

static const cgroup_ops cgroup_v1_ops = {
        .attach_file = "tasks",
        .oom_file = "memory.oom_control",
        .memory_max = "memory.limit_in_bytes",
        .swap_max = "memory.memsw.limit_in_bytes",
        .swap_with_memory = true,
        .cpu_file = "cpu.shares",
        .cpu_value = weight_to_shares,
        .current_path = v1_current_path,
        .is_line_of = v1_is_line_of,
};

static const cgroup_ops cgroup_v2_ops = {
        .attach_file = "cgroup.procs",
        .oom_file = "memory.events",
        .memory_max = "memory.max",
        .swap_max = "memory.swap.max",
        .swap_with_memory = false,
        .cpu_file = "cpu.weight",
        .cpu_value = v2_weight,
        .current_path = v2_current_path,
        .is_line_of = v2_is_line_of,
        .vet_parent = v2_vet_parent,
        .enable = v2_enable,
        .kill_all = v2_kill_all,
};
