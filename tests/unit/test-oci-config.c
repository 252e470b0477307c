/* Unit tests for oci-config.c: config.json to kpa_instance_spec, without
 * root. A bundle in a temporary directory (a rootfs with an executable
 * /bin/sh and a link to it) and configs written here; the plan is checked
 * field by field (argv, env, exec_path found in PATH inside the rootfs, cwd,
 * ids, limits, namespaces, the mounts in order with their flags and data,
 * masked and read-only paths), and each refusal names its JSON path. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "oci-config.h"
#include "tap.h"
#include "util.h"

static char bundle[] = "/tmp/kpa-test-oci-config.XXXXXX";

static void write_config(const char *json)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/config.json", bundle);
        FILE *f = fopen(path, "w");
        fputs(json, f);
        fclose(f);
}

/* a config: the minimal one with REPLACEMENTS spliced in place of @ */
#define BASE_HEAD                                                                                  \
        "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\", \"readonly\": true},"
#define BASE_PROCESS "\"process\": {\"args\": [\"sh\", \"-c\", \"true\"], \"cwd\": \"/\"},"
#define BASE_NS                                                                                    \
        "\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"},"          \
        " {\"type\": \"mount\"}, {\"type\": \"network\"}]"

static int load(const char *json, kpa_oci_config **out, kpa_error *err)
{
        write_config(json);
        kpa_error_clear(err);
        return kpa_oci_config_load(bundle, "c1", out, err);
}

static void refused(const char *json, const char *needle, const char *name)
{
        kpa_oci_config *c = NULL;
        kpa_error err = {0};
        int r = load(json, &c, &err);
        ok(r < 0 && strstr(err.message, needle), "refused: %s", name);
        if (r == 0 || !strstr(err.message, needle))
                printf("#   got \"%s\", wanted \"%s\"\n", r < 0 ? err.message : "(success)",
                       needle);
        kpa_oci_config_free(c);
}

static void test_full(void)
{
        kpa_oci_config *c = NULL;
        kpa_error err = {0};
        int r = load(
                BASE_HEAD
                "\"process\": {\"args\": [\"link\", \"x\"], \"cwd\": \"/tmp\","
                "  \"env\": [\"PATH=/usr/bin:/bin\", \"A=b\"],"
                "  \"user\": {\"uid\": 1000, \"gid\": 100, \"umask\": 18},"
                "  \"capabilities\": {\"bounding\": [\"CAP_KILL\", \"CAP_CHOWN\"],"
                "    \"effective\": [\"CAP_KILL\"], \"permitted\": [\"CAP_KILL\", \"CAP_CHOWN\","
                "    \"CAP_KILL\"], \"inheritable\": [\"CAP_CHOWN\"], \"ambient\": "
                "[\"CAP_CHOWN\"]},"
                "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 100, \"hard\": 200}],"
                "  \"oomScoreAdj\": 5, \"noNewPrivileges\": false},"
                "\"hostname\": \"h\","
                "\"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": "
                "\"proc\"},"
                "  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
                "   \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},"
                "  {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"data\","
                "   \"options\": [\"rbind\", \"ro\", \"noexec\"]},"
                "  {\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": "
                "\"cgroup\"}],"
                "\"annotations\": {\"k\": \"v\"},"
                "\"hooks\": {\"poststop\": [{\"path\": \"/bin/true\"}]},"
                "\"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"},"
                "  {\"type\": \"uts\"}, {\"type\": \"mount\"},"
                "  {\"type\": \"network\", \"path\": \"/run/netns/x\"}],"
                "  \"resources\": {\"memory\": {\"limit\": 1048576, \"swap\": 1048576},"
                "    \"pids\": {\"limit\": 9}, \"cpu\": {\"shares\": 1024},"
                "    \"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},"
                "  \"cgroupsPath\": \"/a/b\", \"maskedPaths\": [\"/proc/kcore\"],"
                "  \"readonlyPaths\": [\"/proc/sys\"],"
                "  \"sysctl\": {\"net.ipv4.ip_forward\": \"1\"}}}",
                &c, &err);
        if (!ok(r == 0, "a full config loads")) {
                printf("#   %s\n", err.message);
                return;
        }
        kpa_instance_spec *s = c->spec;
        is_str(s->argv[0], "link", "argv[0]");
        is_str(s->argv[1], "x", "argv[1]");
        is_str(s->exec_path, "/bin/link", "the program is found in PATH inside the rootfs");
        is_str(s->envp[1], "A=b", "env");
        is_str(s->cwd, "/tmp", "cwd");
        is(s->uid, 1000, "uid");
        is(s->gid, 100, "gid");
        ok(c->has_umask && c->umask == 022, "umask");
        is_str(s->hostname, "h", "hostname");
        ok(s->rootfs && strstr(s->rootfs, "/rootfs") && s->rootfs_readonly,
           "root: path and readonly");
        is_str(s->netns_path, "/run/netns/x", "a network namespace joined by path");
        ok(!s->new_net, "no new network namespace then");
        is(s->limits.memory_bytes, 1048576, "memory limit");
        is(s->limits.pids, 9, "pids limit");
        is(s->limits.cpu_weight, 39, "cpu shares 1024 as weight 39 (runc's mapping)");
        is_str(c->cgroups_path, "/a/b", "cgroupsPath");
        const uint64_t kill = UINT64_C(1) << 5, chown = UINT64_C(1) << 0; /* CAP_KILL, CAP_CHOWN */
        const kpa_caps_keep *kc = s->keep_caps;
        if (!ok(kc != NULL, "capabilities: kept as the config asks"))
                return;
        ok(kc->bounding == (kill | chown), "capabilities: bounding");
        ok(kc->effective == kill, "capabilities: effective");
        ok(kc->permitted == (kill | chown), "capabilities: permitted (a name twice: once)");
        ok(kc->inheritable == chown, "capabilities: inheritable");
        ok(kc->ambient == chown, "capabilities: ambient");
        ok(!kc->no_new_privs, "noNewPrivileges false: no_new_privs off");
        ok(c->n_rlimits == 1 && c->rlimits[0].resource == RLIMIT_NOFILE &&
                   c->rlimits[0].value.rlim_cur == 100 && c->rlimits[0].value.rlim_max == 200,
           "rlimits");
        ok(c->has_oom_score_adj && c->oom_score_adj == 5, "oomScoreAdj");
        ok(c->annotations && c->hooks && c->sysctl, "annotations, hooks, sysctl kept");
        is(s->n_mounts, 6, "four mounts, a mask, a read-only path");
        kpa_mount_op *m = s->mounts;
        ok(m[0].kind == KPA_MOUNT_MASK && strcmp(m[0].target, "/proc/kcore") == 0, "the mask");
        ok(m[1].kind == KPA_MOUNT_READONLY && strcmp(m[1].target, "/proc/sys") == 0,
           "the read-only path");
        ok(m[2].kind == KPA_MOUNT_FS && strcmp(m[2].fstype, "proc") == 0 && !m[2].data, "proc");
        ok(m[3].kind == KPA_MOUNT_FS && strcmp(m[3].fstype, "tmpfs") == 0 &&
                   m[3].flags == (MS_NOSUID | MS_STRICTATIME) &&
                   strcmp(m[3].data, "mode=755,size=65536k") == 0,
           "tmpfs: flags and data apart");
        ok(m[4].kind == KPA_MOUNT_BIND_RO && strstr(m[4].source, "/data") &&
                   m[4].source[0] == '/' && m[4].flags == MS_NOEXEC,
           "a read-only bind, its source relative to the bundle");
        ok(m[5].kind == KPA_MOUNT_FS && strcmp(m[5].fstype, "cgroup2") == 0 &&
                   (m[5].flags & MS_RDONLY),
           "cgroup as the read-only unified hierarchy");
        kpa_oci_config_free(c);
}

static void test_defaults(void)
{
        kpa_oci_config *c = NULL;
        kpa_error err = {0};
        int r = load(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS "}}", &c, &err);
        if (!ok(r == 0, "a minimal config loads")) {
                printf("#   %s\n", err.message);
                return;
        }
        is_str(c->spec->hostname, "c1", "hostname: the container id");
        ok(!c->spec->seccomp_prog, "no linux.seccomp: kpa's default filter");
        is_str(c->spec->exec_path, "/bin/sh", "sh found in the default PATH");
        ok(c->spec->new_net && !c->spec->netns_path, "network without a path: a new one");
        ok(c->spec->stdio[0] == 0 && c->spec->stdio[2] == 2, "the caller's stdio");
        is(c->spec->uid, 0, "uid 0 without process.user");
        const kpa_caps_keep *k = c->spec->keep_caps;
        ok(k != NULL && !k->bounding && !k->effective && !k->permitted && !k->inheritable &&
                   !k->ambient,
           "no process.capabilities: no capability kept");
        ok(k && !k->no_new_privs, "no process.noNewPrivileges: no_new_privs off (OCI's default)");
        kpa_oci_config_free(c);
        r = load(BASE_HEAD "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\","
                           " \"noNewPrivileges\": true}, \"linux\": {" BASE_NS "}}",
                 &c, &err);
        ok(r == 0 && c->spec->keep_caps->no_new_privs, "noNewPrivileges true: no_new_privs on");
        kpa_oci_config_free(c);
}

static void test_seccomp(void)
{
        kpa_oci_config *c = NULL;
        kpa_error err = {0};
        int r = load(
                BASE_HEAD BASE_PROCESS
                "\"linux\": {" BASE_NS ", \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ERRNO\","
                " \"defaultErrnoRet\": 38, \"architectures\": [\"SCMP_ARCH_X86_64\", "
                "\"SCMP_ARCH_X86\","
                " \"SCMP_ARCH_X32\"], \"syscalls\": [{\"names\": [\"read\", \"write\", "
                "\"nosuchcall\"],"
                " \"action\": \"SCMP_ACT_ALLOW\"}, {\"names\": [\"personality\"], \"action\":"
                " \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 0, \"op\": "
                "\"SCMP_CMP_EQ\"},"
                " {\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}]},"
                " {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": "
                "0,"
                " \"value\": 2114060288, \"valueTwo\": 0, \"op\": \"SCMP_CMP_MASKED_EQ\"}]}]}}}",
                &c, &err);
        ok(r == 0 && c->spec->seccomp_prog && c->spec->seccomp_prog->len > 10,
           "linux.seccomp: a program (podman's form: arches, unknown names, args)");
        if (r < 0)
                printf("#   %s\n", err.message);
        kpa_oci_config_free(c);
}

static void test_refusals(void)
{
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS ", \"intelRdt\": {}}}",
                "linux.intelRdt: not supported", "linux.intelRdt");
        refused(BASE_HEAD BASE_PROCESS "\"solaris\": {}, \"linux\": {" BASE_NS "}}",
                "config.json: solaris: not supported", "a top-level key");
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS ", \"seccomp\": {}}}",
                "linux.seccomp.defaultAction: missing", "linux.seccomp without a default action");
        refused(BASE_HEAD BASE_PROCESS
                "\"linux\": {" BASE_NS ", \"seccomp\": {\"defaultAction\":"
                " \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_VAX\"]}}}",
                "linux.seccomp.architectures: unknown architecture \"SCMP_ARCH_VAX\"",
                "an unknown arch");
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS ", \"seccomp\": {\"defaultAction\":"
                                       " \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/x\"}}}",
                "linux.seccomp.listenerPath: not supported", "a seccomp listener");
        refused(BASE_HEAD BASE_PROCESS
                "\"mounts\": [{\"destination\": \"/x\", \"type\": \"overlay\"}],"
                "\"linux\": {" BASE_NS "}}",
                "mounts[0].type: \"overlay\": not supported", "an overlay mount");
        refused(BASE_HEAD BASE_PROCESS
                "\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/y\","
                " \"options\": [\"rshared\"]}], \"linux\": {" BASE_NS "}}",
                "mounts[0].options: \"rshared\": only private propagation", "shared propagation");
        refused(BASE_HEAD BASE_PROCESS
                "\"mounts\": [{\"destination\": \"x\", \"type\": \"tmpfs\"}], \"linux\": {" BASE_NS
                "}}",
                "mounts[0].destination: \"x\" must be an absolute path", "a relative destination");
        refused(BASE_HEAD BASE_PROCESS
                "\"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"mount\"}]}}",
                "kpa always makes new pid, mount, ipc and uts namespaces",
                "the host's ipc and uts");
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS ", \"uidMappings\": [{}]}}",
                "linux.uidMappings: not supported", "uid mappings");
        {
                kpa_oci_config *c = NULL;
                kpa_error err = {0};
                int r = load(BASE_HEAD BASE_PROCESS
                             "\"linux\": {\"namespaces\": [{\"type\": \"pid\", \"path\": "
                             "\"/proc/1/ns/pid\"},"
                             " {\"type\": \"ipc\"}, {\"type\": \"uts\"}, {\"type\": \"mount\"}]}}",
                             &c, &err);
                ok(r == 0 && c->spec->pidns_path &&
                           strcmp(c->spec->pidns_path, "/proc/1/ns/pid") == 0,
                   "a pid namespace with a path: joined (pidns_path)");
                kpa_oci_config_free(c);
        }
        refused(BASE_HEAD BASE_PROCESS
                "\"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"},"
                " {\"type\": \"uts\"}, {\"type\": \"mount\", \"path\": \"/proc/1/ns/mnt\"}]}}",
                "linux.namespaces[3]: joining a mount namespace is not supported",
                "a mount namespace with a path");
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS
                                       ", \"resources\": {\"cpu\": {\"quota\": 1000}}}}",
                "linux.resources.cpu.quota: not supported", "a cpu quota");
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS
                                       ", \"sysctl\": {\"vm.swappiness\": \"1\"}}}",
                "\"vm.swappiness\": not a namespaced sysctl", "a host-wide sysctl");
        refused(BASE_HEAD "\"process\": {\"args\": [\"nope\"], \"cwd\": \"/\"},"
                          "\"linux\": {" BASE_NS "}}",
                "process.args[0]: \"nope\": no such executable", "a missing program");
        refused(BASE_HEAD "\"process\": {\"args\": [\"escape\"], \"cwd\": \"/\"},"
                          "\"linux\": {" BASE_NS "}}",
                "\"escape\": no such executable",
                "a link to a host program (/usr/bin/env) resolves inside the rootfs");
        refused(BASE_HEAD "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"terminal\": 1},"
                          "\"linux\": {" BASE_NS "}}",
                "process.terminal: must be a boolean", "a terminal that is not a boolean");
        refused(BASE_HEAD "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\","
                          " \"user\": {\"uid\": 1, \"gid\": 1, \"additionalGids\": [2]}},"
                          "\"linux\": {" BASE_NS "}}",
                "process.user.additionalGids: supplementary groups", "supplementary groups");
        refused(BASE_HEAD BASE_PROCESS "\"hooks\": {\"startContainer\": []}, \"linux\": {" BASE_NS
                                       "}}",
                "hooks.startContainer: not supported", "a startContainer hook");
#define CAPS(x)                                                                                    \
        BASE_HEAD "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"capabilities\": {" x "}},"  \
                  "\"linux\": {" BASE_NS "}}"
        refused(CAPS("\"bounding\": [\"CAP_CHOWN\", \"CAP_NOPE\"]"),
                "process.capabilities.bounding[1]: \"CAP_NOPE\": not a capability this kernel "
                "knows",
                "an unknown capability");
        refused(CAPS("\"bounding\": [\"chown\"]"), "process.capabilities.bounding[0]: \"chown\"",
                "a capability without CAP_");
        refused(CAPS("\"permitted\": [\"0\"]"), "process.capabilities.permitted[0]: \"0\"",
                "a capability by number");
        refused(CAPS("\"effective\": [1]"), "process.capabilities.effective[0]: must be a string",
                "a capability that is not a string");
        refused(CAPS("\"ambient\": \"CAP_CHOWN\""),
                "process.capabilities.ambient: must be an array", "a set that is not an array");
        refused(CAPS("\"bounding\": [\"CAP_KILL\"], \"permitted\": [\"CAP_KILL\", \"CAP_CHOWN\"]"),
                "process.capabilities.permitted: CAP_CHOWN is not in the bounding set",
                "a permitted capability outside the bounding set");
        refused(CAPS("\"bounding\": [\"CAP_KILL\"], \"inheritable\": [\"CAP_KILL\", "
                     "\"CAP_CHOWN\"]"),
                "process.capabilities.inheritable: CAP_CHOWN is not in the bounding set",
                "an inheritable capability outside the bounding set");
        refused(CAPS("\"bounding\": [\"CAP_KILL\"], \"effective\": [\"CAP_KILL\"]"),
                "process.capabilities.effective: CAP_KILL is not in the bounding and permitted "
                "sets",
                "an effective capability that is not permitted");
        refused(CAPS("\"bounding\": [\"CAP_KILL\"], \"permitted\": [\"CAP_KILL\"],"
                     " \"ambient\": [\"CAP_KILL\"]"),
                "process.capabilities.ambient: CAP_KILL is not in the bounding, permitted and "
                "inheritable sets",
                "an ambient capability that is not inheritable");
        refused("{\"ociVersion\": \"2.0.0\"}", "ociVersion: \"2.0.0\": only 1.x", "ociVersion 2");
        refused("{", "not valid JSON", "bad JSON");
        ok(!kpa_oci_id_valid("../x") && !kpa_oci_id_valid(".x") && !kpa_oci_id_valid("") &&
                   kpa_oci_id_valid("a-b_c.d+1"),
           "container ids");
}

/* keys that the runtime specification does not have are ignored, as it
 * asks, and named for a warning; the ones it has and kpa-oci does not
 * honour stay refused */
static void test_unknown_keys(void)
{
        kpa_oci_config *c = NULL;
        kpa_error err = {0};
        int r = load(BASE_HEAD "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"fooBar\": 1,"
                               " \"capabilities\": {\"bounding\": [], \"sets\": []}},"
                               " \"mounts\": [{\"destination\": \"/tmp\", \"type\": \"tmpfs\","
                               " \"source\": \"tmpfs\", \"x-extra\": true}],"
                               " \"unknownThing\": \"x\", \"linux\": {" BASE_NS "}}",
                     &c, &err);
        ok(r == 0, "unknown keys: the config loads");
        if (r < 0)
                printf("#   %s\n", err.message);
        const char *want[] = {"process.fooBar", "process.capabilities.sets", "mounts[0].x-extra",
                              "unknownThing"};
        bool all = r == 0 && c->n_ignored == ELEMENTSOF(want);
        for (size_t i = 0; all && i < ELEMENTSOF(want); i++) {
                bool found = false;
                for (size_t k = 0; k < c->n_ignored; k++)
                        found = found || strcmp(c->ignored[k], want[i]) == 0;
                all = found;
        }
        ok(all, "unknown keys: each named, with its JSON path, for a warning");
        kpa_oci_config_free(c);
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS ", \"personality\": {}}}",
                "linux.personality: not supported", "a key of the specification stays refused");
}

/* linux.devices: a node each, after the config's mounts */
static void test_devices(void)
{
        kpa_oci_config *c = NULL;
        kpa_error err = {0};
        int r = load(BASE_HEAD BASE_PROCESS
                     "\"mounts\": [{\"destination\": \"/dev\", \"type\": \"tmpfs\"}],"
                     "\"linux\": {" BASE_NS ", \"devices\": [{\"path\": \"/dev/fuse\","
                     " \"type\": \"c\", \"major\": 10, \"minor\": 229, \"fileMode\": 432,"
                     " \"uid\": 7, \"gid\": 8}, {\"path\": \"/dev/f\", \"type\": \"p\"}]}}",
                     &c, &err);
        ok(r == 0, "linux.devices: the config loads");
        if (r < 0)
                printf("#   %s\n", err.message);
        const kpa_mount_op *m = r == 0 ? c->spec->mounts : NULL;
        size_t n = r == 0 ? c->spec->n_mounts : 0;
        ok(n >= 3 && m[n - 3].kind == KPA_MOUNT_FS && m[n - 2].kind == KPA_MOUNT_DEVICE &&
                   strcmp(m[n - 2].target, "/dev/fuse") == 0 && m[n - 2].mode == (S_IFCHR | 0660) &&
                   m[n - 2].rdev == makedev(10, 229) && m[n - 2].uid == 7 && m[n - 2].gid == 8,
           "linux.devices: a character device after the mounts, its numbers, mode and owner");
        ok(n >= 3 && m[n - 1].kind == KPA_MOUNT_DEVICE && m[n - 1].mode == (S_IFIFO | 0666) &&
                   m[n - 1].uid == 0,
           "linux.devices: a FIFO, mode 0666 and root's by default");
        kpa_oci_config_free(c);
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS
                                       ", \"devices\": [{\"path\": \"/dev/x\", \"type\": \"b\"}]}}",
                "linux.devices[0]: a b device needs major and minor numbers",
                "a block device without its numbers");
}

/* The device policy, as text: "c 1:3 rwm,..." with a '!' before a deny */
static void policy_text(const kpa_cgroup_limits *lim, char *buf, size_t size)
{
        buf[0] = '\0';
        for (size_t i = 0; i < lim->n_devices; i++) {
                char rule[64];
                kpa_cgroup_device_rule_format(&lim->devices[i], rule, sizeof(rule));
                size_t len = strlen(buf);
                snprintf(buf + len, size - len, "%s%s%s", i ? "," : "",
                         lim->devices[i].allow ? "" : "!", rule);
        }
}

#define DEFAULT_POLICY                                                                             \
        "c *:* m,b *:* m,c 1:3 rwm,c 1:5 rwm,c 1:7 rwm,c 1:8 rwm,c 1:9 rwm,c 5:0 rwm,c 5:1 rwm,"   \
        "c 5:2 rwm,c 136:* rwm"

/* linux.resources.devices: the policy after the default list and the
 * linux.devices nodes, its leading deny-all rules left out */
static void test_device_policy(void)
{
        kpa_oci_config *c = NULL;
        kpa_error err = {0};
        char text[1024] = "";
        int r = load(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS "}}", &c, &err);
        if (r == 0)
                policy_text(&c->spec->limits, text, sizeof(text));
        ok(r == 0 && strcmp(text, DEFAULT_POLICY) == 0, "device policy: the default list alone");
        kpa_oci_config_free(c);
        r = load(BASE_HEAD BASE_PROCESS
                 "\"linux\": {" BASE_NS ", \"devices\": [{\"path\": \"/dev/fuse\", \"type\": "
                 "\"c\", \"major\": 10, \"minor\": 229}, {\"path\": \"/dev/sda\", \"type\": \"b\","
                 " \"major\": 8, \"minor\": 0}, {\"path\": \"/dev/f\", \"type\": \"p\"}],"
                 " \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"},"
                 " {\"allow\": false}, {\"allow\": true, \"type\": \"c\", \"major\": 10,"
                 " \"access\": \"r\"}, {\"allow\": false, \"type\": \"c\", \"major\": 1,"
                 " \"minor\": 5, \"access\": \"\"}, {\"allow\": false, \"major\": -1}]}}}",
                 &c, &err);
        if (r == 0)
                policy_text(&c->spec->limits, text, sizeof(text));
        else
                printf("#   %s\n", err.message);
        ok(r == 0 && strcmp(text, DEFAULT_POLICY ",c 10:229 rwm,b 8:0 rwm,c 10:* r,!c 1:5 rwm,"
                                                 "!a *:* rwm") == 0,
           "device policy: defaults, the nodes (no FIFO), the rules in order without the "
           "leading deny-alls");
        if (r == 0 && strcmp(text, DEFAULT_POLICY ",c 10:229 rwm,b 8:0 rwm,c 10:* r,!c 1:5 rwm,"
                                                  "!a *:* rwm") != 0)
                printf("#   got %s\n", text);
        kpa_oci_config_free(c);
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS
                                       ", \"resources\": {\"devices\": [{\"allow\": true,"
                                       " \"type\": \"c\", \"minor\": 1.5}]}}}",
                "linux.resources.devices[0]: minor must be a number", "a minor that is no integer");
        refused(BASE_HEAD BASE_PROCESS "\"linux\": {" BASE_NS
                                       ", \"resources\": {\"devices\": [{\"allow\": true,"
                                       " \"access\": \"rr\"}]}}}",
                "linux.resources.devices[0]: device rule: access \"rr\" repeats 'r'",
                "an access that repeats a letter");

        /* the rule parser and its text form */
        static const char *const good[] = {"c 1:3 rwm", "b *:* m", "c 136:* rw", "b 8:0 r"};
        bool all = true;
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                kpa_cgroup_device_rule d;
                char back[64] = "";
                if (kpa_cgroup_device_rule_parse(good[i], true, &d, NULL) == 0)
                        kpa_cgroup_device_rule_format(&d, back, sizeof(back));
                if (strcmp(back, good[i]) != 0) {
                        printf("#   \"%s\" came back as \"%s\"\n", good[i], back);
                        all = false;
                }
        }
        ok(all, "device rules: parsed and formatted back the same");
        kpa_cgroup_device_rule a;
        ok(kpa_cgroup_device_rule_parse("a", false, &a, NULL) == 0 && a.type == 'a' &&
                   a.major == -1 && a.minor == -1 && strcmp(a.access, "rwm") == 0 && !a.allow,
           "device rules: \"a\" is every device, rwm");
        static const char *const bad[] = {"",           "x 1:3 rwm", "c 1:3",
                                          "c 1 rwm",    "c a:3 rwm", "c 1:3 rwx",
                                          "c 1:3 rwmr", "c 1:3 ",    "c 99999999999:1 r"};
        all = true;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                kpa_cgroup_device_rule d;
                kpa_error e = {0};
                if (kpa_cgroup_device_rule_parse(bad[i], true, &d, &e) != -EINVAL ||
                    !strstr(e.message, "device rule")) {
                        printf("#   \"%s\" was not refused as it should: %s\n", bad[i], e.message);
                        all = false;
                }
        }
        ok(all, "device rules: bad ones refused, the message naming a device rule");
}

int main(void)
{
        if (!mkdtemp(bundle))
                return 1;
        char path[256];
        snprintf(path, sizeof(path), "%s/rootfs/bin", bundle);
        char rootfs[256];
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
        if (mkdir(rootfs, 0755) < 0 || mkdir(path, 0755) < 0)
                return 1;
        snprintf(path, sizeof(path), "%s/rootfs/bin/sh", bundle);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        close(fd);
        snprintf(path, sizeof(path), "%s/rootfs/bin/link", bundle);
        (void)!symlink("/bin/sh", path); /* absolute: resolved inside the rootfs */
        snprintf(path, sizeof(path), "%s/rootfs/bin/escape", bundle);
        (void)!symlink("/usr/bin/env", path); /* there on the host, not in the rootfs */
        test_full();
        test_defaults();
        test_seccomp();
        test_refusals();
        test_unknown_keys();
        test_devices();
        test_device_policy();
        kpa_rm_rf_at(AT_FDCWD, bundle);
        return tap_done();
}
