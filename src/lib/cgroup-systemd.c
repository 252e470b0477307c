/* cgroup-systemd.c: the systemd cgroup driver. On a host where systemd is
 * PID 1 and owns the cgroup v2 tree, a program that makes cgroups of its
 * own below its own unit fights systemd's rules (no processes in inner
 * groups, a restart puts the new main process back into the unit's group).
 * So kpa asks systemd for each instance's group instead, as runc and crun
 * do with --systemd-cgroup: a transient scope unit that holds the
 * instance's init, with the limits as unit properties.
 *
 * This file holds the choice of driver; the scopes follow below it. */
#include "config.h"

#include <linux/magic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "util.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static pthread_mutex_t driver_lock = PTHREAD_MUTEX_INITIALIZER;
static kpa_cgroup_driver chosen = KPA_CGROUP_DRIVER_AUTO;
static bool chosen_set;
static kpa_cgroup_driver detected = KPA_CGROUP_DRIVER_AUTO;

static int parse_driver(const char *name, kpa_cgroup_driver *out)
{
        if (streq(name, "auto"))
                *out = KPA_CGROUP_DRIVER_AUTO;
        else if (streq(name, "cgroupfs"))
                *out = KPA_CGROUP_DRIVER_CGROUPFS;
        else if (streq(name, "systemd"))
                *out = KPA_CGROUP_DRIVER_SYSTEMD;
        else
                return -EINVAL;
        return 0;
}

const char *kpa_cgroup_driver_name(kpa_cgroup_driver d)
{
        switch (d) {
        case KPA_CGROUP_DRIVER_CGROUPFS: return "cgroupfs";
        case KPA_CGROUP_DRIVER_SYSTEMD: return "systemd";
        case KPA_CGROUP_DRIVER_AUTO: break;
        }
        return "auto";
}

int kpa_cgroup_driver_set(const char *name, kpa_error *err)
{
        kpa_cgroup_driver d;
        if (!name || parse_driver(name, &d) < 0)
                return kpa_error_set(err, EINVAL,
                                     "unknown cgroup driver \"%s\" (auto, cgroupfs or systemd)",
                                     name ? name : "");
        pthread_mutex_lock(&driver_lock);
        chosen = d;
        chosen_set = true;
        pthread_mutex_unlock(&driver_lock);
        return 0;
}

/* The socket on which the systemd instance that manages this user's
 * cgroups answers directly, without a D-Bus daemon: the system manager's
 * for root, the user manager's otherwise. */
char *kpa_systemd_private_socket(void)
{
        if (geteuid() == 0)
                return kpa_xstrdup("/run/systemd/private");
        const char *rt = getenv("XDG_RUNTIME_DIR");
        if (rt && rt[0] == '/')
                return kpa_xasprintf("%s/systemd/private", rt);
        return kpa_xasprintf("/run/user/%u/systemd/private", (unsigned)geteuid());
}

static kpa_cgroup_driver detect(void)
{
        struct statfs fs;
        if (access("/run/systemd/system", F_OK) < 0 || statfs(CGROUP_ROOT, &fs) < 0 ||
            fs.f_type != CGROUP2_SUPER_MAGIC)
                return KPA_CGROUP_DRIVER_CGROUPFS;
        _cleanup_free_ char *sock = kpa_systemd_private_socket();
        struct stat st;
        if (stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode))
                return KPA_CGROUP_DRIVER_CGROUPFS;
        return KPA_CGROUP_DRIVER_SYSTEMD;
}

int kpa_cgroup_driver_get(kpa_cgroup_driver *out, kpa_error *err)
{
        pthread_mutex_lock(&driver_lock);
        kpa_cgroup_driver d = chosen;
        bool set = chosen_set;
        pthread_mutex_unlock(&driver_lock);
        if (!set) {
                const char *env = getenv("KPA_CGROUP_DRIVER");
                if (env && *env && parse_driver(env, &d) < 0)
                        return kpa_error_set(err, EINVAL,
                                             "KPA_CGROUP_DRIVER=%s: unknown cgroup driver "
                                             "(auto, cgroupfs or systemd)",
                                             env);
        }
        if (d == KPA_CGROUP_DRIVER_AUTO) {
                pthread_mutex_lock(&driver_lock);
                if (detected == KPA_CGROUP_DRIVER_AUTO)
                        detected = detect();
                d = detected;
                pthread_mutex_unlock(&driver_lock);
        }
        *out = d;
        return 0;
}
