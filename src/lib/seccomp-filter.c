/* seccomp-filter.c: the default system call filter of a sandboxed application
 * (DESIGN.md section 5, step 6). It owns the list of refused calls, the
 * relaxations a manifest may ask for (kpa_seccomp_policy) and the
 * installation of the filter; it does not decide when the filter is
 * installed (sandbox.c: after the privileges are dropped, before exec).
 *
 * The filter is built in the parent with libseccomp and exported as a plain
 * BPF program (libseccomp 2.5 exports only to an fd: a memfd here), so that
 * the child, which shares the init's memory after clone(CLONE_VM|CLONE_VFORK),
 * only makes one prctl() call. Refused calls fail with EPERM, clone3 with
 * ENOSYS (libc then falls back to clone, whose flags a filter can see); every
 * other call is allowed. Calls of another ABI than the native one (i386 and
 * x32 on x86_64) kill the process: a package is built for the host's
 * architecture (kpa_manifest_check_arch), and a second ABI would be a second
 * way around the filter.
 *
 * The default policy's program (nothing relaxed, the common case) is built
 * at build time by seccomp-gen into seccomp-prebuilt.h and only copied here:
 * a one-shot kpa-run would otherwise pay libseccomp's build on every start.
 * The others are built on first use. */
#include "config.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <seccomp.h>

#include "seccomp-filter.h"
#include "util.h"

#ifdef KPA_SECCOMP_GENERATOR /* seccomp-gen itself */
#define KPA_SECCOMP_PREBUILT_LEN 0
#else
#include "src/lib/seccomp-prebuilt.h"
#endif

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* A filter of a few hundred instructions; far less in practice. */
#define PROG_MAX_BYTES (64 * 1024)

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
        if (*ctx)
                seccomp_release(*ctx);
}

/* Calls refused outright (EPERM) unless the policy flag they name is set. */
enum relax { RELAX_NONE, RELAX_PTRACE, RELAX_PERF, RELAX_BPF, RELAX_KEYRING, RELAX_USERFAULTFD };

static const struct refused_call {
        const char *name;
        int nr;
        enum relax relax;
} refused_calls[] = {
        /* mounts, old and new API, and changing the root */
        {"mount", SCMP_SYS(mount), RELAX_NONE},
        {"umount2", SCMP_SYS(umount2), RELAX_NONE},
        {"pivot_root", SCMP_SYS(pivot_root), RELAX_NONE},
        {"chroot", SCMP_SYS(chroot), RELAX_NONE},
        {"fsopen", SCMP_SYS(fsopen), RELAX_NONE},
        {"fsconfig", SCMP_SYS(fsconfig), RELAX_NONE},
        {"fsmount", SCMP_SYS(fsmount), RELAX_NONE},
        {"fspick", SCMP_SYS(fspick), RELAX_NONE},
        {"move_mount", SCMP_SYS(move_mount), RELAX_NONE},
        {"open_tree", SCMP_SYS(open_tree), RELAX_NONE},
        {"mount_setattr", SCMP_SYS(mount_setattr), RELAX_NONE},
        /* namespaces (clone's flags are checked below) */
        {"unshare", SCMP_SYS(unshare), RELAX_NONE},
        {"setns", SCMP_SYS(setns), RELAX_NONE},
        /* the kernel itself */
        {"kexec_load", SCMP_SYS(kexec_load), RELAX_NONE},
        {"kexec_file_load", SCMP_SYS(kexec_file_load), RELAX_NONE},
        {"init_module", SCMP_SYS(init_module), RELAX_NONE},
        {"finit_module", SCMP_SYS(finit_module), RELAX_NONE},
        {"delete_module", SCMP_SYS(delete_module), RELAX_NONE},
        {"acct", SCMP_SYS(acct), RELAX_NONE},
        {"swapon", SCMP_SYS(swapon), RELAX_NONE},
        {"swapoff", SCMP_SYS(swapoff), RELAX_NONE},
        {"reboot", SCMP_SYS(reboot), RELAX_NONE},
        {"settimeofday", SCMP_SYS(settimeofday), RELAX_NONE},
        {"clock_settime", SCMP_SYS(clock_settime), RELAX_NONE},
        /* large kernel attack surface, rarely needed by applications */
        {"bpf", SCMP_SYS(bpf), RELAX_BPF},
        {"perf_event_open", SCMP_SYS(perf_event_open), RELAX_PERF},
        {"userfaultfd", SCMP_SYS(userfaultfd), RELAX_USERFAULTFD},
        {"keyctl", SCMP_SYS(keyctl), RELAX_KEYRING},
        {"add_key", SCMP_SYS(add_key), RELAX_KEYRING},
        {"request_key", SCMP_SYS(request_key), RELAX_KEYRING},
        {"ptrace", SCMP_SYS(ptrace), RELAX_PTRACE},
        {"process_vm_readv", SCMP_SYS(process_vm_readv), RELAX_PTRACE},
        {"process_vm_writev", SCMP_SYS(process_vm_writev), RELAX_PTRACE},
        /* io_uring makes sockets (IORING_OP_SOCKET) and opens files out of
         * the filter's sight, and is a large attack surface of its own */
        {"io_uring_setup", SCMP_SYS(io_uring_setup), RELAX_NONE},
};

static const uint64_t namespace_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,
                                           CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                           CLONE_NEWCGROUP, CLONE_NEWTIME};

/* ioctl's request is an unsigned int in the kernel: compare the low 32
 * bits only, or TIOCSTI with a high bit set would pass. */
static const struct {
        const char *name;
        unsigned long request;
} refused_ioctls[] = {{"TIOCSTI", TIOCSTI}, {"TIOCLINUX", TIOCLINUX}};

/* Address families that a network namespace does not isolate: their
 * sockets reach the host, its hardware or its hypervisor from any
 * namespace, so an empty network namespace is no wall for them. socket()
 * with one fails with EAFNOSUPPORT (as on a kernel without it), whatever
 * the grants: the network permission shares the host's IP networking, not
 * its hypervisor channel or radios.
 * - AF_VSOCK: the hypervisor's host and other VMs (vsock is not per netns).
 * - AF_BLUETOOTH: the host's adapters (HCI devices are global).
 * - AF_NFC, AF_ISDN, AF_QIPCRTR, AF_CAIF: devices or routers of the whole
 *   host. AF_IUCV: z/VM's hypervisor channel (s390 only; harmless elsewhere).
 * - AF_ATMPVC, AF_ATMSVC, AF_AX25, AF_NETROM, AF_ROSE, AF_X25, AF_APPLETALK,
 *   AF_LLC, AF_IPX, AF_DECnet, AF_ECONET, AF_IRDA, AF_WANPIPE: old families
 *   that the kernel itself refuses outside the initial namespace (where it
 *   still has them); refused here too, so the rule holds on any kernel.
 * Not listed, because they are per network namespace: AF_INET, AF_INET6,
 * AF_UNIX (paths and the abstract namespace), AF_NETLINK, AF_PACKET, AF_CAN
 * (since Linux 4.10), AF_TIPC, AF_RDS (TCP), AF_PHONET, AF_IEEE802154,
 * AF_XDP, AF_MCTP, AF_SMC, AF_KCM; and AF_ALG, which is crypto, not a
 * network. io_uring could create sockets without socket(): the filter
 * refuses io_uring_setup (above). */
static const struct {
        const char *name;
        int family;
} refused_families[] = {
        {"AF_VSOCK", AF_VSOCK}, {"AF_BLUETOOTH", AF_BLUETOOTH}, {"AF_NFC", AF_NFC},
        {"AF_ISDN", AF_ISDN},   {"AF_QIPCRTR", AF_QIPCRTR},     {"AF_CAIF", AF_CAIF},
        {"AF_IUCV", AF_IUCV},   {"AF_ATMPVC", AF_ATMPVC},       {"AF_ATMSVC", AF_ATMSVC},
        {"AF_AX25", AF_AX25},   {"AF_NETROM", AF_NETROM},       {"AF_ROSE", AF_ROSE},
        {"AF_X25", AF_X25},     {"AF_APPLETALK", AF_APPLETALK}, {"AF_LLC", AF_LLC},
        {"AF_IPX", AF_IPX},     {"AF_DECnet", AF_DECnet},       {"AF_ECONET", AF_ECONET},
        {"AF_IRDA", AF_IRDA},   {"AF_WANPIPE", AF_WANPIPE},
};

static bool relaxed(const kpa_seccomp_policy *p, enum relax r)
{
        switch (r) {
        case RELAX_NONE: return false;
        case RELAX_PTRACE: return p->allow_ptrace;
        case RELAX_PERF: return p->allow_perf_events;
        case RELAX_BPF: return p->allow_bpf;
        case RELAX_KEYRING: return p->allow_keyring;
        case RELAX_USERFAULTFD: return p->allow_userfaultfd;
        }
        return false;
}

static int add_rules(scmp_filter_ctx ctx, const kpa_seccomp_policy *p, kpa_error *err)
{
        const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
        int r;
        for (size_t i = 0; i < ELEMENTSOF(refused_calls); i++) {
                if (relaxed(p, refused_calls[i].relax))
                        continue;
                r = seccomp_rule_add(ctx, eperm, refused_calls[i].nr, 0);
                if (r < 0)
                        return kpa_error_set_errno(err, -r, "seccomp rule for %s", refused_calls[i].name);
        }
        for (size_t i = 0; i < ELEMENTSOF(namespace_flags); i++) {
                r = seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_flags[i], namespace_flags[i]));
                if (r < 0)
                        return kpa_error_set_errno(err, -r, "seccomp rule for clone");
        }
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "seccomp rule for clone3");
        for (size_t i = 0; i < ELEMENTSOF(refused_families); i++) {
                /* the family is an int: compare the low 32 bits only */
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffULL,
                                             (uint64_t)refused_families[i].family));
                if (r < 0)
                        return kpa_error_set_errno(err, -r, "seccomp rule for socket(%s)",
                                                   refused_families[i].name);
        }
        for (size_t i = 0; i < ELEMENTSOF(refused_ioctls); i++) {
                r = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, refused_ioctls[i].request));
                if (r < 0)
                        return kpa_error_set_errno(err, -r, "seccomp rule for ioctl %s",
                                                   refused_ioctls[i].name);
        }
        return 0;
}

/* personality(2) is allowed with the personas Docker's default profile
 * allows too: PER_LINUX, PER_LINUX32 (setarch i686), UNAME26, both, and the
 * query 0xffffffff; others (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...)
 * weaken the programs the application execs. libseccomp cannot say
 * "refuse unless one of these" in a default-allow filter, so these few
 * instructions go in front of its program; every other call falls through
 * to it. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG0_LOW offsetof(struct seccomp_data, args[0])
#else
#define ARG0_LOW (offsetof(struct seccomp_data, args[0]) + 4)
#endif
#define PERSONALITY_PREFIX_LEN 12

static void personality_prefix(struct sock_filter out[PERSONALITY_PREFIX_LEN])
{
        const struct sock_filter prefix[PERSONALITY_PREFIX_LEN] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, seccomp_arch_native(), 0, 10),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_personality, 0, 8),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PER_LINUX, 5, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PER_LINUX32, 4, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UNAME26, 3, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PER_LINUX32 | UNAME26, 2, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffU, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* 11 */
                /* 12: libseccomp's program (jumps count from the next instruction) */
        };
        memcpy(out, prefix, sizeof(prefix));
}

int kpa_seccomp_export(void *ctx, size_t max_bytes, char **out, size_t *len, kpa_error *err)
{
        _cleanup_close_ int fd = memfd_create("kpa-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "memfd_create for the seccomp filter");
        int r = seccomp_export_bpf((scmp_filter_ctx)ctx, fd);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "seccomp_export_bpf");
        if (lseek(fd, 0, SEEK_SET) < 0)
                return kpa_error_set_errno(err, errno, "seccomp filter: lseek");
        r = kpa_read_fd(fd, max_bytes, out, len);
        if (r == -EFBIG)
                return kpa_error_set(err, EFBIG, "seccomp filter: larger than the kernel takes");
        if (r < 0)
                return kpa_error_set_errno(err, -r, "seccomp filter: read");
        return 0;
}

int kpa_seccomp_build_fresh(const kpa_seccomp_policy *policy, kpa_seccomp_prog *out,
                            kpa_error *err)
{
        *out = (kpa_seccomp_prog){0};
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return kpa_error_set(err, ENOMEM, "seccomp_init failed");
        /* no_new_privs is set by kpa_privileges_drop already; other ABIs die */
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "seccomp_attr_set");
        r = add_rules(ctx, policy, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *bpf = NULL;
        size_t len = 0;
        r = kpa_seccomp_export(ctx, PROG_MAX_BYTES, &bpf, &len, err);
        if (r < 0)
                return r;
        size_t prefix = policy->allow_personality ? 0 : PERSONALITY_PREFIX_LEN;
        size_t n = len / sizeof(struct sock_filter);
        if (len % sizeof(struct sock_filter) || n == 0 || n + prefix > BPF_MAXINSNS)
                return kpa_error_set(err, EINVAL, "seccomp filter of %zu bytes is malformed", len);
        struct sock_filter *prog = kpa_xcalloc(n + prefix, sizeof(*prog));
        if (prefix)
                personality_prefix(prog);
        memcpy(prog + prefix, bpf, len);
        out->len = (unsigned short)(n + prefix);
        out->filter = prog;
        return 0;
}

/* Built programs, one per policy (6 flags): libseccomp takes 150-800 us
 * per build, and a kpa-execd would pay that on every start. The program
 * depends only on the policy and the native ABI, so each is built once per
 * process (the default one at build time) and kept to its end. */
#define N_POLICIES 64
static kpa_seccomp_prog built[N_POLICIES];
static pthread_mutex_t built_lock = PTHREAD_MUTEX_INITIALIZER;

/* POLICY's program into OUT, for the cache: the prebuilt one for the
 * default policy (KEY 0) when there is one, else libseccomp's. */
static int build_cached(unsigned key, const kpa_seccomp_policy *policy, kpa_seccomp_prog *out,
                        kpa_error *err)
{
#if KPA_SECCOMP_PREBUILT_LEN > 0
        if (key == 0) {
                out->filter = memcpy(kpa_xmalloc(sizeof(kpa_seccomp_prebuilt)),
                                     kpa_seccomp_prebuilt, sizeof(kpa_seccomp_prebuilt));
                out->len = KPA_SECCOMP_PREBUILT_LEN;
                return 0;
        }
#endif
        return kpa_seccomp_build_fresh(policy, out, err);
}

static unsigned policy_key(const kpa_seccomp_policy *p)
{
        return (unsigned)p->allow_ptrace | (unsigned)p->allow_perf_events << 1 |
               (unsigned)p->allow_bpf << 2 | (unsigned)p->allow_keyring << 3 |
               (unsigned)p->allow_userfaultfd << 4 | (unsigned)p->allow_personality << 5;
}

int kpa_seccomp_build(const kpa_seccomp_policy *policy, kpa_seccomp_prog *out, kpa_error *err)
{
        _Static_assert(sizeof(kpa_seccomp_policy) == 6 * sizeof(bool),
                       "policy_key() knows every flag of kpa_seccomp_policy");
        unsigned key = policy_key(policy);
        *out = (kpa_seccomp_prog){0};
        pthread_mutex_lock(&built_lock);
        int r = 0;
        if (!built[key].filter)
                r = build_cached(key, policy, &built[key], err);
        if (r == 0) {
                size_t bytes = built[key].len * sizeof(struct sock_filter);
                out->filter = memcpy(kpa_xmalloc(bytes), built[key].filter, bytes);
                out->len = built[key].len;
        }
        pthread_mutex_unlock(&built_lock);
        return r;
}

void kpa_seccomp_prog_free(kpa_seccomp_prog *prog)
{
        free(prog->filter);
        *prog = (kpa_seccomp_prog){0};
}

int kpa_seccomp_apply(const kpa_seccomp_prog *prog, const char **failed_step)
{
        struct sock_fprog fprog = {.len = prog->len, .filter = prog->filter};
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) < 0) {
                if (failed_step)
                        *failed_step = "seccomp filter";
                return -errno;
        }
        return 0;
}
