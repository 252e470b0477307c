/* cgroup-devices.c: an instance's device policy (kpa_cgroup_limits.devices):
 * the rules, their text form, and how each kind of hierarchy applies them
 * to a new instance group before any process joins it. Every device is
 * denied first; then the rules in order, a later one over an earlier one.
 *
 *   v1: the devices controller: "a" into devices.deny (no device, the
 *       exception list emptied), then each rule into devices.allow or
 *       devices.deny, as runc and crun write them.
 *   v2: no controller but a BPF_PROG_TYPE_CGROUP_DEVICE program, made here
 *       from the rules with hand-emitted instructions and the raw bpf(2)
 *       system call (no libbpf), attached to the group with
 *       BPF_F_ALLOW_MULTI, so that the programs of the groups above still
 *       decide too. The attachment holds the program; the group's removal
 *       frees it.
 *
 * The program decides each requested access bit (mknod, read, write) on
 * its own: for each, the last rule that names the bit and matches the
 * device's type, major and minor says allow or deny; none: deny. The
 * access is allowed when every requested bit is. (v1 keeps an exception
 * list instead, where a deny rule removes only the exception of the same
 * type and numbers: the two agree for rules that name devices exactly and
 * for a policy of allows.) It creates no group and reads no policy back. */
#include "config.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup-priv.h"
#include "util.h"

/* ---- the rules ---- */

int kpa_cgroup_device_rule_check(const kpa_cgroup_device_rule *r, kpa_error *err)
{
        if (r->type != 'a' && r->type != 'c' && r->type != 'b')
                return kpa_error_set(err, EINVAL, "device rule: type '%c' is not a, c or b",
                                     r->type ? r->type : '?');
        if (r->major < -1 || r->major > INT32_MAX || r->minor < -1 || r->minor > INT32_MAX)
                return kpa_error_set(err, EINVAL,
                                     "device rule: major and minor are numbers, or -1 (*)");
        size_t n = strnlen(r->access, sizeof(r->access));
        if (n == 0 || n == sizeof(r->access) || strspn(r->access, "rwm") != n)
                return kpa_error_set(err, EINVAL,
                                     "device rule: access \"%.*s\" is not made of r, w and m",
                                     (int)n, r->access);
        for (size_t i = 0; i < n; i++)
                if (strchr(r->access + i + 1, r->access[i]))
                        return kpa_error_set(err, EINVAL,
                                             "device rule: access \"%s\" repeats '%c'", r->access,
                                             r->access[i]);
        return 0;
}

static int parse_number(const char *s, size_t len, int64_t *out)
{
        if (len == 1 && s[0] == '*') {
                *out = -1;
                return 0;
        }
        int64_t v = 0;
        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

int kpa_cgroup_device_rule_parse(const char *text, bool allow, kpa_cgroup_device_rule *out,
                                 kpa_error *err)
{
        kpa_cgroup_device_rule r = {.allow = allow, .major = -1, .minor = -1};
        if (streq(text, "a")) {
                r.type = 'a';
                snprintf(r.access, sizeof(r.access), "rwm");
                *out = r;
                return 0;
        }
        const char *colon = strchr(text, ':');
        const char *space = colon ? strchr(colon, ' ') : NULL;
        if (strlen(text) < 2 || text[1] != ' ' || !colon || !space ||
            parse_number(text + 2, (size_t)(colon - text - 2), &r.major) < 0 ||
            parse_number(colon + 1, (size_t)(space - colon - 1), &r.minor) < 0 ||
            strlen(space + 1) >= sizeof(r.access))
                return kpa_error_set(err, EINVAL,
                                     "device rule \"%s\": not TYPE MAJOR:MINOR ACCESS (e.g. "
                                     "\"c 1:3 rwm\", \"b *:* m\") or \"a\"",
                                     text);
        r.type = text[0];
        snprintf(r.access, sizeof(r.access), "%s", space + 1);
        int q = kpa_cgroup_device_rule_check(&r, err);
        if (q < 0) {
                kpa_error_prefix(err, "\"%s\"", text);
                return q;
        }
        *out = r;
        return 0;
}

void kpa_cgroup_device_rule_format(const kpa_cgroup_device_rule *r, char *buf, size_t size)
{
        char maj[24] = "*", min[24] = "*";
        if (r->major >= 0)
                snprintf(maj, sizeof(maj), "%lld", (long long)r->major);
        if (r->minor >= 0)
                snprintf(min, sizeof(min), "%lld", (long long)r->minor);
        snprintf(buf, size, "%c %s:%s %s", r->type, maj, min, r->access);
}

/* ---- v1: devices.deny, devices.allow ---- */

static int write_rule(const hierarchy *h, int dfd, const char *file, const char *rule,
                      kpa_error *err)
{
        _cleanup_close_ int fd = openat(dfd, file, O_WRONLY | O_CLOEXEC);
        int r = fd < 0 ? -errno : kpa_write_all(fd, rule, strlen(rule));
        if (r < 0)
                return kpa_error_set_errno(err, -r, "cgroup %s: cannot write \"%s\" into %s",
                                           h->path, rule, file);
        return 0;
}

int v1_device_policy(const hierarchy *h, int dfd, const kpa_cgroup_limits *lim, kpa_error *err)
{
        int r = write_rule(h, dfd, "devices.deny", "a", err);
        for (size_t i = 0; r == 0 && i < lim->n_devices; i++) {
                const kpa_cgroup_device_rule *d = &lim->devices[i];
                char text[64];
                kpa_cgroup_device_rule_format(d, text, sizeof(text));
                r = write_rule(h, dfd, d->allow ? "devices.allow" : "devices.deny", text, err);
        }
        return r;
}

/* ---- v2: a BPF_PROG_TYPE_CGROUP_DEVICE program ---- */

#define INSN(c, d, s, o, i)                                                                        \
        ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

typedef struct prog {
        struct bpf_insn *insns;
        size_t n, cap;
} prog;

static size_t emit(prog *p, struct bpf_insn insn)
{
        if (p->n == p->cap) {
                p->cap = p->cap ? 2 * p->cap : 64;
                p->insns = kpa_xrealloc(p->insns, p->cap * sizeof(*p->insns));
        }
        p->insns[p->n] = insn;
        return p->n++;
}

/* Point the jump at AT to TARGET. */
static void patch(prog *p, size_t at, size_t target)
{
        p->insns[at].off = (int16_t)(target - at - 1);
}

enum { R_TYPE = 2, R_ACCESS = 3, R_MAJOR = 4, R_MINOR = 5, R_TMP = 6 };

/* The program for LIM's rules (see the top of the file): r2 the device
 * type, r3 the requested access, r4 and r5 the numbers; one section per
 * access bit, skipped when the bit is not requested, in which the rules
 * that name the bit are tried from the last one back; the first that
 * matches jumps to the section's end (allow) or to the denial. */
static int build_program(const kpa_cgroup_limits *lim, prog *p, kpa_error *err)
{
        const size_t n_rules = lim->n_devices;
        emit(p, INSN(BPF_LDX | BPF_W | BPF_MEM, R_TYPE, 1,
                     offsetof(struct bpf_cgroup_dev_ctx, access_type), 0));
        emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_X, R_ACCESS, R_TYPE, 0, 0));
        emit(p, INSN(BPF_ALU64 | BPF_RSH | BPF_K, R_ACCESS, 0, 0, 16));
        emit(p, INSN(BPF_ALU64 | BPF_AND | BPF_K, R_TYPE, 0, 0, 0xffff));
        emit(p, INSN(BPF_LDX | BPF_W | BPF_MEM, R_MAJOR, 1, offsetof(struct bpf_cgroup_dev_ctx, major),
                     0));
        emit(p, INSN(BPF_LDX | BPF_W | BPF_MEM, R_MINOR, 1, offsetof(struct bpf_cgroup_dev_ctx, minor),
                     0));
        static const struct {
                char letter;
                int bit;
        } bits[] = {{'m', BPF_DEVCG_ACC_MKNOD}, {'r', BPF_DEVCG_ACC_READ}, {'w', BPF_DEVCG_ACC_WRITE}};
        _cleanup_free_ size_t *to_deny = kpa_xcalloc(3 * (n_rules + 1), sizeof(size_t));
        size_t n_deny = 0;
        for (size_t b = 0; b < ELEMENTSOF(bits); b++) {
                _cleanup_free_ size_t *to_end = kpa_xcalloc(n_rules + 1, sizeof(size_t));
                size_t n_end = 0;
                emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_X, R_TMP, R_ACCESS, 0, 0));
                emit(p, INSN(BPF_ALU64 | BPF_AND | BPF_K, R_TMP, 0, 0, bits[b].bit));
                to_end[n_end++] = emit(p, INSN(BPF_JMP | BPF_JEQ | BPF_K, R_TMP, 0, 0, 0));
                for (size_t i = n_rules; i-- > 0;) {
                        const kpa_cgroup_device_rule *d = &lim->devices[i];
                        if (!strchr(d->access, bits[b].letter))
                                continue;
                        struct bpf_insn checks[3];
                        int nc = 0;
                        if (d->type != 'a')
                                checks[nc++] = INSN(BPF_JMP | BPF_JNE | BPF_K, R_TYPE, 0, 0,
                                                    d->type == 'c' ? BPF_DEVCG_DEV_CHAR
                                                                   : BPF_DEVCG_DEV_BLOCK);
                        if (d->major >= 0)
                                checks[nc++] = INSN(BPF_JMP | BPF_JNE | BPF_K, R_MAJOR, 0, 0,
                                                    (int32_t)d->major);
                        if (d->minor >= 0)
                                checks[nc++] = INSN(BPF_JMP | BPF_JNE | BPF_K, R_MINOR, 0, 0,
                                                    (int32_t)d->minor);
                        for (int k = 0; k < nc; k++) {
                                checks[k].off = (int16_t)(nc - k); /* past the rule */
                                emit(p, checks[k]);
                        }
                        size_t ja = emit(p, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0));
                        if (d->allow)
                                to_end[n_end++] = ja;
                        else
                                to_deny[n_deny++] = ja;
                }
                to_deny[n_deny++] = emit(p, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0)); /* no rule */
                for (size_t k = 0; k < n_end; k++)
                        patch(p, to_end[k], p->n);
        }
        emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1));
        emit(p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
        for (size_t k = 0; k < n_deny; k++)
                patch(p, to_deny[k], p->n);
        emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0));
        emit(p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
        if (p->n > 4096)
                return kpa_error_set(err, E2BIG,
                                     "device policy: %zu rules make a program of %zu "
                                     "instructions, more than 4096",
                                     n_rules, p->n);
        return 0;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
        return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

int v2_device_policy(const hierarchy *h, int dfd, const kpa_cgroup_limits *lim, kpa_error *err)
{
        prog p = {0};
        int r = build_program(lim, &p, err);
        if (r < 0) {
                free(p.insns);
                return r;
        }
        static char license[] = "GPL";
        union bpf_attr load = {
                .prog_type = BPF_PROG_TYPE_CGROUP_DEVICE,
                .insns = (uintptr_t)p.insns,
                .insn_cnt = (uint32_t)p.n,
                .license = (uintptr_t)license,
        };
        _cleanup_close_ int fd = sys_bpf(BPF_PROG_LOAD, &load);
        if (fd < 0) {
                int e = errno;
                /* again, with the verifier's log, to say why */
                char log[1024] = "";
                load.log_buf = (uintptr_t)log;
                load.log_size = sizeof(log);
                load.log_level = 1;
                int again = sys_bpf(BPF_PROG_LOAD, &load);
                if (again >= 0)
                        close(again);
                free(p.insns);
                size_t n = strlen(log);
                while (n > 0 && log[n - 1] == '\n')
                        log[--n] = '\0';
                const char *last = strrchr(log, '\n');
                return kpa_error_set_errno(err, e, "cgroup %s: cannot load the device program%s%s",
                                           h->path, log[0] ? ": " : "",
                                           last ? last + 1 : log);
        }
        free(p.insns);
        union bpf_attr attach = {
                .target_fd = (uint32_t)dfd,
                .attach_bpf_fd = (uint32_t)fd,
                .attach_type = BPF_CGROUP_DEVICE,
                .attach_flags = BPF_F_ALLOW_MULTI,
        };
        if (sys_bpf(BPF_PROG_ATTACH, &attach) < 0)
                return kpa_error_set_errno(err, errno,
                                           "cgroup %s: cannot attach the device program", h->path);
        return 0;
}
