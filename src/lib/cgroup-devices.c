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
 * The program decides as the v1 controller would with the same rules
 * (its exception list is computed here, then compiled), so that a policy
 * means the same on both: e.g. a deny rule takes away only the exception
 * of the same type and numbers, "c 1:5 rwm" closes /dev/zero but leaves
 * "c *:* m" (mknod of any node). It creates no group and reads no policy
 * back. */
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
                        return kpa_error_set(err, EINVAL, "device rule: access \"%s\" repeats '%c'",
                                             r->access, r->access[i]);
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

/* The v1 controller's state after the rules: its default (allow or deny)
 * and its exception list, as the kernel computes them. "a" (any type) into
 * devices.deny: deny by default, no exception; into devices.allow: allow
 * by default, no exception. Another rule that goes the default's way
 * takes its access from the exception of the same type and numbers (and
 * drops it once empty); one against it adds its access to that exception,
 * or is a new one. */
typedef struct exceptions {
        bool allow_default;
        kpa_cgroup_device_rule *ex;
        size_t n;
} exceptions;

static unsigned access_bits(const char *a)
{
        return (strchr(a, 'r') ? BPF_DEVCG_ACC_READ : 0) |
               (strchr(a, 'w') ? BPF_DEVCG_ACC_WRITE : 0) |
               (strchr(a, 'm') ? BPF_DEVCG_ACC_MKNOD : 0);
}

static void access_text(unsigned bits, char out[4])
{
        size_t n = 0;
        if (bits & BPF_DEVCG_ACC_READ)
                out[n++] = 'r';
        if (bits & BPF_DEVCG_ACC_WRITE)
                out[n++] = 'w';
        if (bits & BPF_DEVCG_ACC_MKNOD)
                out[n++] = 'm';
        out[n] = '\0';
}

static void emulate_v1(const kpa_cgroup_limits *lim, exceptions *e)
{
        e->allow_default = false; /* "a" into devices.deny first */
        e->ex = kpa_xcalloc(lim->n_devices + 1, sizeof(*e->ex));
        e->n = 0;
        for (size_t i = 0; i < lim->n_devices; i++) {
                const kpa_cgroup_device_rule *d = &lim->devices[i];
                if (d->type == 'a') {
                        e->allow_default = d->allow;
                        e->n = 0;
                        continue;
                }
                size_t k = 0;
                while (k < e->n && !(e->ex[k].type == d->type && e->ex[k].major == d->major &&
                                     e->ex[k].minor == d->minor))
                        k++;
                unsigned bits = access_bits(d->access);
                if (d->allow != e->allow_default) { /* an exception, or more of one */
                        if (k == e->n)
                                e->ex[e->n++] = *d;
                        else
                                access_text(access_bits(e->ex[k].access) | bits, e->ex[k].access);
                } else if (k < e->n) { /* less of one */
                        access_text(access_bits(e->ex[k].access) & ~bits, e->ex[k].access);
                        if (!e->ex[k].access[0])
                                memmove(&e->ex[k], &e->ex[k + 1], (--e->n - k) * sizeof(*e->ex));
                }
        }
}

enum { R_TYPE = 2, R_ACCESS = 3, R_MAJOR = 4, R_MINOR = 5, R_TMP = 6 };

/* The program for LIM's rules: the v1 controller's decision (see
 * emulate_v1()). r2 the device type, r3 the requested access, r4 and r5
 * the numbers. Deny by default: allowed when one exception matches the
 * device and holds every requested access; allow by default: denied when
 * one matches and holds any of them. */
static int build_program(const kpa_cgroup_limits *lim, prog *p, kpa_error *err)
{
        exceptions e;
        emulate_v1(lim, &e);
        emit(p, INSN(BPF_LDX | BPF_W | BPF_MEM, R_TYPE, 1,
                     offsetof(struct bpf_cgroup_dev_ctx, access_type), 0));
        emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_X, R_ACCESS, R_TYPE, 0, 0));
        emit(p, INSN(BPF_ALU64 | BPF_RSH | BPF_K, R_ACCESS, 0, 0, 16));
        emit(p, INSN(BPF_ALU64 | BPF_AND | BPF_K, R_TYPE, 0, 0, 0xffff));
        emit(p, INSN(BPF_LDX | BPF_W | BPF_MEM, R_MAJOR, 1,
                     offsetof(struct bpf_cgroup_dev_ctx, major), 0));
        emit(p, INSN(BPF_LDX | BPF_W | BPF_MEM, R_MINOR, 1,
                     offsetof(struct bpf_cgroup_dev_ctx, minor), 0));
        for (size_t i = 0; i < e.n; i++) {
                const kpa_cgroup_device_rule *d = &e.ex[i];
                int bits = (int)access_bits(d->access);
                struct bpf_insn checks[5];
                int nc = 0;
                checks[nc++] = INSN(BPF_JMP | BPF_JNE | BPF_K, R_TYPE, 0, 0,
                                    d->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
                if (d->major >= 0)
                        checks[nc++] =
                                INSN(BPF_JMP | BPF_JNE | BPF_K, R_MAJOR, 0, 0, (int32_t)d->major);
                if (d->minor >= 0)
                        checks[nc++] =
                                INSN(BPF_JMP | BPF_JNE | BPF_K, R_MINOR, 0, 0, (int32_t)d->minor);
                /* deny by default: no access beyond the exception's; allow
                 * by default: some of the exception's */
                checks[nc++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, R_TMP, R_ACCESS, 0, 0);
                checks[nc++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, R_TMP, 0, 0,
                                    e.allow_default ? bits : ~bits & 7);
                /* ...then the jump over the rest of the rule when it does not match */
                int len = nc + 3; /* checks, the last jump, r0 =, exit */
                for (int k = 0; k < nc; k++) {
                        if (BPF_CLASS(checks[k].code) == BPF_JMP)
                                checks[k].off = (int16_t)(len - k - 1);
                        emit(p, checks[k]);
                }
                emit(p,
                     INSN(BPF_JMP | (e.allow_default ? BPF_JEQ : BPF_JNE) | BPF_K, R_TMP, 0, 2, 0));
                emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, e.allow_default ? 0 : 1));
                emit(p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
        }
        emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, e.allow_default ? 1 : 0));
        emit(p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
        size_t n_ex = e.n;
        free(e.ex);
        if (p->n > 4096)
                return kpa_error_set(err, E2BIG,
                                     "device policy: %zu exceptions make a program of %zu "
                                     "instructions, more than 4096",
                                     n_ex, p->n);
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
                                           h->path, log[0] ? ": " : "", last ? last + 1 : log);
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
