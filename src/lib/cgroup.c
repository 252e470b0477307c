/* cgroup.c: one instance's control group, PARENT/kpa.slice/APP/INST, in the
 * hierarchies of a cgroup v1, hybrid or pure v2 host that it needs: the one
 * with the pids controller (it tracks the processes), and those of the
 * memory and cpu controllers when it has limits there (on v2 all three
 * share one hierarchy), and on v1 that of the devices controller when it
 * has a device policy (on v2 a device program on its group instead;
 * cgroup-devices.c).
 * The module (cgroup*.c) owns discovery of those hierarchies, creation
 * with limits, the attach files the child writes "0" into, listing,
 * killing, the OOM verdict, removal, and the collection of instance groups
 * that a killed kpa left behind. It never creates a group outside the
 * caller's own cgroup (or an explicit parent), never moves a process it was
 * not asked to, and removes only kpa's own groups; processes and
 * namespaces belong to the sandbox.
 * This file holds the instance groups themselves (explicit parents,
 * creation with limits, re-adoption, the attach files, removal); what the
 * module's other files hold is listed in cgroup-priv.h: the discovery and
 * its cache, one table of operations per kind of hierarchy (v1, v2), the
 * kill, OOM and leftover collection, and the systemd driver.
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
#include <linux/magic.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include "cgroup-priv.h"
#include "util.h"

int first_ctrl(const hierarchy *h)
{
        for (int c = 0; c < N_CTRL; c++)
                if (h->ctrls & BIT(c))
                        return c;
        return CTRL_MEMORY;
}

bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *level_path(const hierarchy *h, int level)
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
int normalize_path(const char *in, char **out)
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
        /* NULL: this process's own group, looked up once the hierarchies
         * not used are dropped (discover()) */
        h->parent = parent ? kpa_xstrdup(parent) : NULL;
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
        unsigned w = (lim->memory_bytes ? BIT(CTRL_MEMORY) : 0) | (lim->pids ? BIT(CTRL_PIDS) : 0) |
                     (lim->cpu_weight ? BIT(CTRL_CPU) : 0) |
                     (lim->n_devices && lcg_mount[CTRL_DEVICES] ? BIT(CTRL_DEVICES) : 0);
        static const int trackers[] = {CTRL_PIDS, CTRL_MEMORY, CTRL_CPU};
        for (size_t k = 0; k < ELEMENTSOF(trackers); k++)
                if (lcg_mount[trackers[k]]) {
                        w |= BIT(trackers[k]);
                        break;
                }
        return w;
}

/* Does H take the instance's device policy? The v1 devices hierarchy,
 * else the v2 one (device programs, no controller). */
static bool gets_devices(const hierarchy *h)
{
        return (h->ctrls & BIT(CTRL_DEVICES)) || (h->v2 && !lcg_mount[CTRL_DEVICES]);
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
                hierarchy *h = &cg->h[i];
                int c = first_ctrl(h);
                int r = h->parent ? 0 : h->ops->current_path(c, &h->parent);
                if (r < 0)
                        return kpa_error_set_errno(err, -r,
                                                   "cgroup: cannot find this process's %s cgroup",
                                                   ctrl_names[c]);
        }
        bool devices = lim->n_devices == 0;
        for (size_t i = 0; i < cg->n; i++)
                devices |= gets_devices(&cg->h[i]);
        if (!devices)
                return kpa_error_set(err, EOPNOTSUPP,
                                     "cgroup: cannot apply the device policy: neither the v1 "
                                     "devices controller nor cgroup v2 is mounted");
        for (size_t i = 0; i < cg->n; i++) {
                _cleanup_free_ char *p = kpa_xasprintf("%s/%s", cg->h[i].mount, cg->h[i].parent);
                if (!is_dir(p))
                        return kpa_error_set(err, ENOENT,
                                             "cgroup %s: the parent group does not exist", p);
        }
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

/* Hold H's instance group with a shared flock, so that no other kpa takes
 * it for a leftover. */
int lock_instance(hierarchy *h, kpa_error *err)
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
                r = write_settings(h, h->lock_fd, s, ns, err);
                if (r == 0 && lim->n_devices && gets_devices(h))
                        r = h->ops->device_policy(h, h->lock_fd, lim, err);
                return r;
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

void group_free(kpa_cgroup *cg)
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

void group_freep(kpa_cgroup **cg)
{
        group_free(*cg);
}

int check_args(const char *app_id, const char *instance, const kpa_cgroup_limits *lim,
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
        for (size_t i = 0; i < lim->n_devices; i++) {
                int r = kpa_cgroup_device_rule_check(&lim->devices[i], err);
                if (r < 0)
                        return kpa_error_prefix(err, "cgroup: device rule %zu", i + 1);
        }
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

void kpa_cgroup_forget_app(const char *parent, const char *app_id)
{
        static const kpa_cgroup_limits none;
        static const char no_instance[INSTANCE_ID_LEN + 1] = "00000000000000000000000000000000";
        _cleanup_(group_freep) kpa_cgroup *cg = NULL;
        kpa_error ignored;
        if (group_new(parent, app_id, no_instance, &none, true, &cg, &ignored) < 0)
                return;
        for (size_t i = 0; i < cg->n; i++) {
                hierarchy *h = &cg->h[i];
                set_names(h, app_id, no_instance);
                _cleanup_free_ char *app = level_path(h, LEVEL_APP);
                _cleanup_close_ int fd = open(app, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                collect_leftovers(h, fd);
                (void)remove_level(h, LEVEL_APP); /* EBUSY: an instance runs */
        }
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
