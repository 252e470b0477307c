/* cgroup-v1.c: what is particular to a cgroup v1 hierarchy (on v1 and
 * hybrid hosts, one hierarchy per controller): "tasks" to join, the v1
 * limit files (memory.limit_in_bytes, memsw, cpu.shares), the OOM counters
 * in memory.oom_control, this process's group from its controller's line
 * of /proc/self/cgroup. Nothing to vet, enable or kill at once. */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>

#include "cgroup-priv.h"
#include "util.h"

/* This process's group in the hierarchy of controller C: the line of
 * /proc/self/cgroup that names C ("ID:CONTROLLERS:PATH"). */
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

/* cpu.weight (1..10000, default 100) to v1 cpu.shares (default 1024), as
 * systemd maps CPUWeight= on v1 hosts. */
static uint64_t weight_to_shares(uint64_t w)
{
        uint64_t s = w * 1024 / 100;
        return s < 2 ? 2 : s > 262144 ? 262144 : s;
}

/* v1: the line of the hierarchy that has H's first controller. */
static bool v1_is_line_of(const hierarchy *h, const char *id, const char *ctrls)
{
        (void)id;
        return has_item(ctrls, ctrl_names[first_ctrl(h)], ",");
}

const cgroup_ops cgroup_v1_ops = {
        .attach_file = "tasks",
        .oom_file = "memory.oom_control",
        .memory_max = "memory.limit_in_bytes",
        .swap_max = "memory.memsw.limit_in_bytes",
        .swap_with_memory = true,
        .cpu_file = "cpu.shares",
        .cpu_value = weight_to_shares,
        .current_path = v1_current_path,
        .is_line_of = v1_is_line_of,
        .device_policy = v1_device_policy,
};
