/* cgroup-gc.c: the end of an instance's processes and of the groups a
 * killed kpa left: listing (libcgroup), the kill (cgroup.kill where the
 * kind has it, else SIGKILL to each member, checked against a pidfd), the
 * OOM verdict (for the parent and, without allocating, for the init), and
 * the collection of leftover instance groups in APP (unlocked, older than
 * a second, empty: removed through libcgroup). */
#include "config.h"

#include <fcntl.h>
#include <libcgroup.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "cgroup-priv.h"
#include "util.h"

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
void collect_leftovers(const hierarchy *h, int app_fd)
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

/* ---- processes ---- */

/* Every hierarchy holds every process of the instance; prefer pids'. */
static const hierarchy *primary(const kpa_cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].ctrls & BIT(CTRL_PIDS))
                        return &cg->h[i];
        return &cg->h[0];
}

int list_pids(const hierarchy *h, pid_t **pids, size_t *n, kpa_error *err)
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

long elapsed_ms(const struct timespec *start)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
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
