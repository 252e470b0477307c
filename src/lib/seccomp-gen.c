/* seccomp-gen: run at build time, prints seccomp-prebuilt.h, the BPF
 * program of the default filter (kpa_seccomp_policy all false) as libseccomp
 * builds it on this machine. libkpa then installs that program without
 * building it again: on a VM, libseccomp's build costs ~0.8 ms of every
 * kpa-run start (the allocations and the probes of the kernel). The program
 * depends only on the rules and the native ABI; tests/unit/test-seccomp
 * checks that it is the one libseccomp builds at run time.
 * On a failure (libseccomp cannot build here) it says why on stderr and
 * prints the header with no program: libkpa then builds it at run time. */
#include "config.h"

#include <linux/filter.h>
#include <stdio.h>

#include "seccomp-filter.h"

static void header(void)
{
        printf("/* seccomp-prebuilt.h: generated at build time by seccomp-gen; do not edit */\n");
}

static int none(void)
{
        header();
        printf("#define KPA_SECCOMP_PREBUILT_LEN 0\n");
        return fflush(stdout) == 0 ? 0 : 1;
}

int main(void)
{
        kpa_seccomp_policy policy = {0};
        kpa_seccomp_prog prog;
        kpa_error err;
        if (kpa_seccomp_build_fresh(&policy, &prog, &err) < 0) {
                fprintf(stderr, "seccomp-gen: %s; the default filter is built at run time\n",
                        err.message);
                return none();
        }
        const struct sock_filter *f = prog.filter;
        header();
        printf("#define KPA_SECCOMP_PREBUILT_LEN %u\n", (unsigned)prog.len);
        printf("static const struct sock_filter kpa_seccomp_prebuilt[KPA_SECCOMP_PREBUILT_LEN] = "
               "{\n");
        for (unsigned i = 0; i < prog.len; i++)
                printf("        {0x%04x, %u, %u, 0x%08x},\n", (unsigned)f[i].code,
                       (unsigned)f[i].jt, (unsigned)f[i].jf, (unsigned)f[i].k);
        printf("};\n");
        kpa_seccomp_prog_free(&prog);
        return fflush(stdout) == 0 ? 0 : 1;
}
