/* seccomp-filter.h: the default system call filter of a sandboxed application.
 *
 * The filter is built in the parent (libseccomp, into a plain BPF program)
 * and only installed in the application's child, right before exec: the
 * child runs after clone(CLONE_VM|CLONE_VFORK) and must not allocate.
 * (Not named seccomp.h: src/lib is on the include path, and <seccomp.h>
 * must find libseccomp's.) */
#ifndef KPA_SECCOMP_FILTER_H
#define KPA_SECCOMP_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "kpa/error.h"

/* Relaxations of the default filter (extensions.KPA_sandbox allow*). */
typedef struct kpa_seccomp_policy {
        bool allow_ptrace;      /* ptrace, process_vm_readv, process_vm_writev */
        bool allow_perf_events; /* perf_event_open */
        bool allow_bpf;         /* bpf */
        bool allow_keyring;     /* keyctl, add_key, request_key */
        bool allow_userfaultfd; /* userfaultfd */
        bool allow_personality; /* personality with any persona */
} kpa_seccomp_policy;

/* A BPF program ready for PR_SET_SECCOMP; FILTER is malloc'd. */
typedef struct kpa_seccomp_prog {
        unsigned short len; /* instructions */
        void *filter;       /* struct sock_filter[LEN] */
} kpa_seccomp_prog;

/* Build the filter for POLICY on this machine's native architecture into
 * OUT (a copy of its own: free it with kpa_seccomp_prog_free). Each
 * policy's program is built once per process and kept; thread-safe.
 * System calls of any other ABI (i386 and x32 on x86_64) kill the process.
 * Returns 0 or -errno with ERR naming the step. */
int kpa_seccomp_build(const kpa_seccomp_policy *policy, kpa_seccomp_prog *out, kpa_error *err);
/* libseccomp's program of CTX (a scmp_filter_ctx), as bytes in *OUT (to
 * free), through a memfd; at most MAX_BYTES (-EFBIG beyond). */
int kpa_seccomp_export(void *ctx, size_t max_bytes, char **out, size_t *len, kpa_error *err);
void kpa_seccomp_prog_free(kpa_seccomp_prog *prog);
/* The same, built by libseccomp now: no cache, no prebuilt program (for
 * seccomp-gen and the tests). */
int kpa_seccomp_build_fresh(const kpa_seccomp_policy *policy, kpa_seccomp_prog *out,
                            kpa_error *err);

/* In the child, after no_new_privs: install PROG. Allocates nothing and
 * is safe after vfork. Returns 0 or -errno; *FAILED_STEP (if not NULL)
 * then names the step. */
int kpa_seccomp_apply(const kpa_seccomp_prog *prog, const char **failed_step);

#endif
