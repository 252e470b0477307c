/* instance-json.c: the instance plan (sandbox.h) as the JSON document of
 * kpa/instance.h, version KPA_INSTANCE_SPEC_VERSION, for an administrator
 * or integrator to read what a start will do (kpa-run --print-spec). Keys
 * come in a fixed order; docs/instance-spec.md describes each. It only
 * reads the plan: what the supervisor adds at the start (the instance id,
 * exit record, log pipe) is not part of it. */
#include "config.h"

#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <json-c/json.h>

#include "caps.h"
#include "sandbox.h"
#include "util.h"

static json_object *str_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static json_object *strv_json(char *const *v)
{
        json_object *a = json_object_new_array();
        for (size_t i = 0; v && v[i]; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

static const char *mount_kind_name(kpa_mount_kind kind)
{
        switch (kind) {
        case KPA_MOUNT_BIND_RO: return "bind-ro";
        case KPA_MOUNT_BIND_RW: return "bind-rw";
        case KPA_MOUNT_SYMLINK: return "symlink";
        case KPA_MOUNT_COPY: return "copy";
        case KPA_MOUNT_FS: return "fs";
        case KPA_MOUNT_MASK: return "mask";
        case KPA_MOUNT_READONLY: return "readonly";
        case KPA_MOUNT_DEVICE: return "device";
        }
        return "unknown";
}

/* MS_* flags by the names mount(8) gives them; a bit without one as hex. */
static json_object *mount_flags_json(unsigned long flags)
{
        static const struct {
                unsigned long bit;
                const char *name;
        } names[] = {
                {MS_RDONLY, "ro"},
                {MS_NOSUID, "nosuid"},
                {MS_NODEV, "nodev"},
                {MS_NOEXEC, "noexec"},
                {MS_SYNCHRONOUS, "sync"},
                {MS_REMOUNT, "remount"},
                {MS_MANDLOCK, "mand"},
                {MS_DIRSYNC, "dirsync"},
                {MS_NOATIME, "noatime"},
                {MS_NODIRATIME, "nodiratime"},
                {MS_BIND, "bind"},
                {MS_MOVE, "move"},
                {MS_REC, "rec"},
                {MS_SILENT, "silent"},
                {MS_UNBINDABLE, "unbindable"},
                {MS_PRIVATE, "private"},
                {MS_SLAVE, "slave"},
                {MS_SHARED, "shared"},
                {MS_RELATIME, "relatime"},
                {MS_STRICTATIME, "strictatime"},
                {MS_LAZYTIME, "lazytime"},
        };
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (flags & names[i].bit) {
                        json_object_array_add(a, json_object_new_string(names[i].name));
                        flags &= ~names[i].bit;
                }
        if (flags) {
                char hex[32];
                snprintf(hex, sizeof(hex), "0x%lx", flags);
                json_object_array_add(a, json_object_new_string(hex));
        }
        return a;
}

static json_object *mounts_json(const kpa_instance_spec *spec)
{
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const kpa_mount_op *op = &spec->mounts[i];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind",
                                       json_object_new_string(mount_kind_name(op->kind)));
                json_object_object_add(o, "source", str_or_null(op->source));
                json_object_object_add(o, "target", json_object_new_string(op->target));
                json_object_object_add(o, "optional", json_object_new_boolean(op->optional));
                /* opened (and checked) when the plan was made: the node bound
                 * is that one, whatever the path names by the start */
                json_object_object_add(o, "sourceOpen",
                                       json_object_new_boolean(op->source_fd >= 0));
                json_object_object_add(o, "detachedMount", json_object_new_boolean(op->detached));
                /* a bind is recursive, nosuid and nodev always (sandbox.c):
                 * its flags are shown as they will be */
                unsigned long flags = op->flags;
                if (op->kind == KPA_MOUNT_BIND_RO || op->kind == KPA_MOUNT_BIND_RW)
                        flags |= MS_BIND | MS_REC | MS_NOSUID | MS_NODEV |
                                 (op->kind == KPA_MOUNT_BIND_RO ? MS_RDONLY : 0);
                json_object_object_add(o, "flags", mount_flags_json(flags));
                json_object_object_add(o, "fstype", str_or_null(op->fstype));
                json_object_object_add(o, "data", str_or_null(op->data));
                if (op->kind == KPA_MOUNT_DEVICE) { /* OCI: linux.devices */
                        json_object *d = json_object_new_object();
                        const char *type = S_ISCHR(op->mode) ? "c" : S_ISBLK(op->mode) ? "b" : "p";
                        json_object_object_add(d, "type", json_object_new_string(type));
                        json_object_object_add(d, "major", json_object_new_int64(major(op->rdev)));
                        json_object_object_add(d, "minor", json_object_new_int64(minor(op->rdev)));
                        json_object_object_add(d, "mode", json_object_new_int64(op->mode & 07777));
                        json_object_object_add(d, "uid", json_object_new_int64(op->uid));
                        json_object_object_add(d, "gid", json_object_new_int64(op->gid));
                        json_object_object_add(o, "device", d);
                }
                json_object_array_add(a, o);
        }
        return a;
}

/* "new", "host", or the path of the namespace joined */
static json_object *ns_json(bool is_new, const char *join)
{
        return json_object_new_string(join ? join : is_new ? "new" : "host");
}

static json_object *namespaces_json(const kpa_instance_spec *spec)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "pid", ns_json(true, spec->pidns_path));
        json_object_object_add(o, "mount", ns_json(true, NULL));
        json_object_object_add(o, "ipc", ns_json(true, spec->ipcns_path));
        json_object_object_add(o, "uts", ns_json(true, spec->utsns_path));
        json_object_object_add(o, "cgroup", ns_json(true, NULL));
        json_object_object_add(o, "network", ns_json(spec->new_net, spec->netns_path));
        json_object_object_add(o, "user", ns_json(spec->userns, NULL));
        return o;
}

static json_object *limit_json(uint64_t v)
{
        return v ? json_object_new_uint64(v) : NULL;
}

/* The handles at fds 3, 4, ...; their names are the LISTEN_FDNAMES the
 * plan's environment gives the application. */
static json_object *handles_json(const kpa_instance_spec *spec)
{
        const char *names = NULL;
        for (size_t i = 0; spec->envp && spec->envp[i]; i++)
                if (strncmp(spec->envp[i], "LISTEN_FDNAMES=", 15) == 0)
                        names = spec->envp[i] + 15;
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < spec->n_handles; i++) {
                json_object *o = json_object_new_object();
                size_t len = names ? strcspn(names, ":") : 0;
                json_object_object_add(o, "name",
                                       names ? json_object_new_string_len(names, (int)len) : NULL);
                json_object_object_add(o, "fd", json_object_new_int(3 + (int)i));
                json_object_array_add(a, o);
                if (names)
                        names = names[len] ? names + len + 1 : NULL;
        }
        return a;
}

static json_object *seccomp_json(const kpa_instance_spec *spec)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "filter",
                               json_object_new_string(spec->seccomp_prog ? "oci" : "kpa-default"));
        json_object *r = json_object_new_array();
        const kpa_seccomp_policy *p = &spec->seccomp;
        const struct {
                bool on;
                const char *name;
        } relax[] = {
                {p->allow_ptrace, "ptrace"},
                {p->allow_perf_events, "perfEvents"},
                {p->allow_bpf, "bpf"},
                {p->allow_keyring, "keyring"},
                {p->allow_userfaultfd, "userfaultfd"},
                {p->allow_personality, "personality"},
        };
        for (size_t i = 0; i < ELEMENTSOF(relax); i++)
                if (relax[i].on && !spec->seccomp_prog)
                        json_object_array_add(r, json_object_new_string(relax[i].name));
        json_object_object_add(o, "relaxations", r);
        return o;
}

static json_object *cap_set_json(uint64_t set)
{
        json_object *a = json_object_new_array();
        for (int cap = 0; cap < 64; cap++) {
                if (!(set & (1ULL << cap)))
                        continue;
                char name[64];
                if (kpa_cap_name(cap, name, sizeof(name)) < 0)
                        snprintf(name, sizeof(name), "%d", cap);
                json_object_array_add(a, json_object_new_string(name));
        }
        return a;
}

/* kpa's packages keep no capability and set no_new_privs; an OCI plan
 * keeps what process.capabilities grants */
static void caps_json(json_object *root, const kpa_instance_spec *spec)
{
        const kpa_caps_keep *k = spec->keep_caps;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "bounding", cap_set_json(k ? k->bounding : 0));
        json_object_object_add(o, "effective", cap_set_json(k ? k->effective : 0));
        json_object_object_add(o, "permitted", cap_set_json(k ? k->permitted : 0));
        json_object_object_add(o, "inheritable", cap_set_json(k ? k->inheritable : 0));
        json_object_object_add(o, "ambient", cap_set_json(k ? k->ambient : 0));
        json_object_object_add(root, "capabilities", o);
        json_object_object_add(root, "noNewPrivileges",
                               json_object_new_boolean(k ? k->no_new_privs : true));
}

char *kpa_instance_spec_to_json(const kpa_instance_spec *spec)
{
        json_object *root = json_object_new_object();
        json_object_object_add(root, "kpaInstanceSpecVersion",
                               json_object_new_int(KPA_INSTANCE_SPEC_VERSION));
        json_object_object_add(root, "appId", str_or_null(spec->app_id));
        json_object_object_add(root, "runConfig", str_or_null(spec->run_config_id));
        json_object_object_add(root, "execPath", str_or_null(spec->exec_path));
        json_object_object_add(root, "argv", strv_json(spec->argv));
        json_object_object_add(root, "env", strv_json(spec->envp));
        json_object_object_add(root, "cwd", json_object_new_string(spec->cwd ? spec->cwd : "/"));
        json_object *user = json_object_new_object();
        json_object_object_add(user, "uid", json_object_new_int64(spec->uid));
        json_object_object_add(user, "gid", json_object_new_int64(spec->gid));
        json_object_object_add(root, "user", user);
        json_object_object_add(root, "hostname", str_or_null(spec->hostname));
        json_object_object_add(root, "namespaces", namespaces_json(spec));
        json_object *rootfs = NULL;
        if (spec->rootfs) {
                rootfs = json_object_new_object();
                json_object_object_add(rootfs, "path", json_object_new_string(spec->rootfs));
                json_object_object_add(rootfs, "readonly",
                                       json_object_new_boolean(spec->rootfs_readonly));
        }
        json_object_object_add(root, "rootfs", rootfs);
        json_object_object_add(root, "mounts", mounts_json(spec));
        json_object *limits = json_object_new_object();
        json_object_object_add(limits, "memoryBytes", limit_json(spec->limits.memory_bytes));
        json_object_object_add(limits, "pids", limit_json(spec->limits.pids));
        json_object_object_add(limits, "cpuWeight", limit_json(spec->limits.cpu_weight));
        json_object_object_add(root, "limits", limits);
        json_object_object_add(root, "cgroupParent", str_or_null(spec->cgroup_parent));
        json_object_object_add(root, "handles", handles_json(spec));
        json_object *stdio = json_object_new_array();
        for (int i = 0; i < 3; i++)
                json_object_array_add(stdio, spec->tty || spec->stdio[i] < 0
                                                     ? NULL
                                                     : json_object_new_int(spec->stdio[i]));
        json_object_object_add(root, "stdio", stdio);
        json_object *tty = NULL;
        if (spec->tty) {
                tty = json_object_new_object();
                json_object_object_add(tty, "rows", json_object_new_int(spec->tty_rows));
                json_object_object_add(tty, "cols", json_object_new_int(spec->tty_cols));
        }
        json_object_object_add(root, "tty", tty);
        json_object_object_add(root, "seccomp", seccomp_json(spec));
        caps_json(root, spec);
        json_object_object_add(root, "startFifo", str_or_null(spec->start_fifo));
        char *text = kpa_xstrdup(json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                              JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        return text;
}
