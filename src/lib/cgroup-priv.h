/* cgroup-priv.h: what the files of the cgroup module share and nothing
 * else sees: the instance group's layout (kpa_cgroup, one hierarchy per
 * mount used), the table of operations per kind of hierarchy, the
 * discovery's results, and the helpers one file gives the others. The API
 * for the rest of libkpa is cgroup.h.
 *
 *   cgroup.c            instance groups: explicit parents, creation with
 *                       limits, re-adoption, attach files, removal
 *   cgroup-discovery.c  libcgroup's glue; the hierarchies and their per-boot cache
 *   cgroup-v1.c         cgroup_v1_ops: v1 hierarchies (v1 and hybrid hosts)
 *   cgroup-v2.c         cgroup_v2_ops: the v2 hierarchy; the supervisor's leaf
 *   cgroup-gc.c         listing, kill, OOM verdicts, leftover collection
 *   cgroup-devices.c    device policies: the rules, v1 devices.allow/deny,
 *                       the v2 BPF_PROG_TYPE_CGROUP_DEVICE program
 *   cgroup-systemd.c    the systemd driver: scopes over D-Bus, and their groups
 *
 * A new kind of hierarchy is one more file with a cgroup_ops table, chosen
 * in add_controller(). */
#ifndef KPA_CGROUP_PRIV_H
#define KPA_CGROUP_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cgroup.h"

#define SLICE "kpa.slice"
#define NAME_MAX_LEN 128
#define KILL_TIMEOUT_MS 2000
#define EMPTY_TIMEOUT_MS 500
#define CREATE_ATTEMPTS 3
#define INSTANCE_ID_LEN 32
#define GC_MIN_AGE_MS 1000

/* devices is a v1 controller only (v2 has device programs instead), and
 * used only for an instance with a device policy. */
enum { CTRL_MEMORY, CTRL_PIDS, CTRL_CPU, CTRL_DEVICES, N_CTRL };
#define BIT(c) (1u << (c))
extern const char *const ctrl_names[N_CTRL]; /* cgroup-discovery.c */

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
        /* Put the device policy of LIM on H's instance group DFD. */
        int (*device_policy)(const hierarchy *h, int dfd, const kpa_cgroup_limits *lim,
                             kpa_error *err);
} cgroup_ops;

extern const cgroup_ops cgroup_v1_ops; /* cgroup-v1.c */
extern const cgroup_ops cgroup_v2_ops; /* cgroup-v2.c */

/* cgroup-discovery.c: where libcgroup found each controller (NULL: not
 * mounted), whether that is a v2 hierarchy, and the errno of its statfs
 * when it failed; filled by disc_init(). */
extern char *lcg_mount[N_CTRL];
extern bool lcg_v2[N_CTRL];
extern int lcg_mount_errno[N_CTRL];
int disc_init(kpa_error *err);
int lcg_init(kpa_error *err);
int lcg_errno(int r);
const char *lcg_strerror(int r);
struct cgroup; /* libcgroup's */
void lcg_freep(struct cgroup **g);
/* Is WORD one of the items of LIST, which SEPS separate? */
bool has_item(const char *list, const char *word, const char *seps);
bool has_word(const char *list, const char *word);

/* cgroup.c */
int first_ctrl(const hierarchy *h);
bool is_dir(const char *path);
char *level_path(const hierarchy *h, int level);
int normalize_path(const char *in, char **out);
int check_args(const char *app_id, const char *instance, const kpa_cgroup_limits *lim,
               kpa_error *err);
int lock_instance(hierarchy *h, kpa_error *err);
void group_free(kpa_cgroup *cg);
void group_freep(kpa_cgroup **cg);

/* cgroup-devices.c: the two kinds' device_policy operations. */
int v1_device_policy(const hierarchy *h, int dfd, const kpa_cgroup_limits *lim, kpa_error *err);
int v2_device_policy(const hierarchy *h, int dfd, const kpa_cgroup_limits *lim, kpa_error *err);

/* cgroup-v2.c: is GROUP the one kpa_cgroup_become_supervisor() left? */
bool is_supervisor_parent(const char *group);

/* cgroup-gc.c */
void collect_leftovers(const hierarchy *h, int app_fd);
int list_pids(const hierarchy *h, pid_t **pids, size_t *n, kpa_error *err);
long elapsed_ms(const struct timespec *start);
void sleep_ms(unsigned ms);

/* cgroup-systemd.c: the systemd driver's groups (see kpa_cgroup_open and
 * kpa_cgroup_destroy). */
int open_scope(const char *app_id, const char *instance, kpa_cgroup **out, kpa_error *err);
int destroy_scope(kpa_cgroup *cg, kpa_error *err);

#endif
