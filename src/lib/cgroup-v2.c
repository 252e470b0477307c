/* cgroup-v2.c: what is particular to the cgroup v2 hierarchy: its group
 * paths ("0::PATH"), the vetting of a parent (the no-internal-processes
 * rule, delegation, cgroup.subtree_control), the enabling of controllers
 * below kpa.slice and APP, cgroup.procs to join, memory.events,
 * cgroup.kill, the v2 limit files; and the supervisor's leaf, which the
 * same rule asks of a kpa-execd that makes its instances below its own
 * cgroup. */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup-priv.h"
#include "util.h"

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

static uint64_t v2_weight(uint64_t w)
{
        return w;
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

/* v2 with cgroup.kill (Linux 5.14): one write kills the whole group. */
static bool v2_kill_all(const hierarchy *h)
{
        _cleanup_free_ char *p = kpa_xasprintf("%s/cgroup.kill", h->path);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
        return fd >= 0 && kpa_write_all(fd, "1", 1) == 0;
}

/* v2: the one line "0::PATH". */
static bool v2_is_line_of(const hierarchy *h, const char *id, const char *ctrls)
{
        (void)h;
        return streq(id, "0") && ctrls[0] == '\0';
}

const cgroup_ops cgroup_v2_ops = {
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
        .device_policy = v2_device_policy,
};

/* ---- the supervisor's leaf (cgroup v2, cgroupfs driver) ---- */

/* The group that kpa_cgroup_become_supervisor() moved this process out of
 * (a group path, "" for the root of a cgroup namespace), or NULL. kpa.slice
 * there is kpa's own, as it is in the cgroup kpa runs in. */
static pthread_mutex_t supervisor_lock = PTHREAD_MUTEX_INITIALIZER;
static char *supervisor_parent;

bool is_supervisor_parent(const char *group)
{
        pthread_mutex_lock(&supervisor_lock);
        bool yes = supervisor_parent && group && streq(supervisor_parent, group);
        pthread_mutex_unlock(&supervisor_lock);
        return yes;
}

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
