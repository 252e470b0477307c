/* caps.c: the last privileged steps of a sandboxed child. The limits (in
 * the instance's init): lock the securebits that decide what a uid change
 * does to capabilities, empty the bounding and ambient sets. The rest (in
 * the application's child): switch to the package's uid/gid, clear every
 * remaining capability set with libcap, set no_new_privs and check the
 * result. Neither allocates (what they need is made by
 * kpa_privileges_prepare() in the parent): they run in a child of a raw
 * clone. It does not know about namespaces, mounts or handles, and it never
 * prints: the caller reports FAILED_STEP through its own channel.
 *
 * An OCI config.json is the orchestrator's grant (kpa_caps_keep): the same
 * steps then keep what it names (the bounding set shrunk to it, the
 * permitted set kept across the switch of ids, the sets set to it with
 * capset, the ambient ones raised, no_new_privs only if asked) and the
 * check compares with it. kpa's own packages keep nothing.
 *
 * Order matters: the bounding set can only be shrunk while CAP_SETPCAP is
 * still effective, and the groups and ids can only be changed while
 * CAP_SETGID/CAP_SETUID are; so those come first and the final cap_set_proc()
 * (which only ever shrinks sets, and needs no privilege for that) comes last.
 * With the bounding, inheritable and ambient sets empty, a later execve()
 * grants nothing, even when the uid stays 0.
 *
 * The groups and ids change through the system calls themselves, not
 * glibc's setgroups()/setres[ug]id(): in a process that glibc knows to have
 * threads, those ask every thread to change too and wait for each one, and
 * the child of a raw clone from such a process inherits glibc's list of
 * threads that exist only in its parent (a thread that the parent was just
 * making there is waited for forever). The system calls change the calling
 * thread, which in these children is the whole process. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/capability.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/securebits.h>

#include "caps.h"
#include "util.h"

static int fail(const char **failed_step, const char *step, int code)
{
        if (failed_step)
                *failed_step = step;
        return -(code ? code : EPERM);
}

/* A change of uid away from 0 must clear the permitted set (no keep-caps, no
 * setuid fixup opt-out), and ambient capabilities may never come back. The
 * bits are locked so that the application cannot undo them. With an OCI
 * grant (KEEP), the switch of ids keeps the permitted set (keep-caps, not
 * locked) and the application may raise the ambient capabilities the grant
 * names (and only when it names some); the setuid fixup stays. */
static int lock_securebits(const kpa_caps_keep *keep)
{
        int want_set = SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                       SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
        const int want_clear = SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP;
        if (keep) {
                want_set = SECBIT_NO_SETUID_FIXUP_LOCKED;
                if (!keep->ambient)
                        want_set |=
                                SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
        }

        int cur = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
        if (cur < 0)
                return -errno;
        int bits = (cur | want_set) & ~want_clear;
        if (bits != cur && prctl(PR_SET_SECUREBITS, (unsigned long)bits, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

static bool has_cap(uint64_t set, cap_value_t c)
{
        return c < 64 && (set >> c) & 1;
}

/* One PR_CAPBSET_DROP per capability the kernel knows, without asking
 * first whether it is in the set (dropping one that is not is a no-op):
 * each system call counts on this path, a few hundred ns to a us. */
static int drop_bounding_set(uint64_t keep)
{
        cap_value_t max = cap_max_bits();
        for (cap_value_t c = 0; c < max; c++) {
                if (has_cap(keep, c) || cap_drop_bound(c) == 0)
                        continue;
                if (errno == EINVAL)
                        return 0; /* the kernel does not know this one: done */
                /* without CAP_SETPCAP: fine if it is not in the set */
                int e = errno, r = cap_get_bound(c);
                if (r != 0)
                        return r < 0 ? 0 : -e;
        }
        return 0;
}

/* Supplementary groups. In a user namespace whose setgroups is denied (the
 * rootless case), the kernel refuses setgroups() outright; the groups left
 * there are the invoking user's own, unmapped, and cannot be dropped. */
static int drop_groups(void)
{
        if (syscall(SYS_setgroups, 0, NULL) == 0)
                return 0;
        int r = -errno;
        if (r != -EPERM)
                return r;
        char buf[16] = "";
        _cleanup_close_ int fd = -1;
        fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return r;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n > 0 && strncmp(buf, "deny", 4) == 0)
                return 0;
        return r;
}

/* The empty capability set that clear_capability_sets() installs, made by
 * kpa_privileges_prepare() in the parent: the child that uses it must not
 * allocate (libkpa clones it straight from a caller that may have threads,
 * one of which may have held malloc's lock at that moment). */
static cap_t empty_set;
static pthread_once_t empty_once = PTHREAD_ONCE_INIT;

static void make_empty_set(void)
{
        empty_set = cap_init(); /* cap_init() returns an empty set */
}

int kpa_privileges_prepare(void)
{
        pthread_once(&empty_once, make_empty_set);
        return empty_set ? 0 : -ENOMEM;
}

static int clear_capability_sets(void)
{
        if (!empty_set)
                return -ENOMEM; /* kpa_privileges_prepare() failed or was not called */
        return cap_set_proc(empty_set) < 0 ? -errno : 0;
}

/* The effective, permitted and inheritable sets of KEEP, set with
 * capset(2) itself: libcap's cap_t would have to be made in the parent for
 * each instance, and the child must not allocate. */
static int set_kept_sets(const kpa_caps_keep *keep)
{
        struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
        for (size_t i = 0; i < ELEMENTSOF(data); i++)
                data[i] = (struct __user_cap_data_struct){
                        .effective = (uint32_t)(keep->effective >> (32 * i)),
                        .permitted = (uint32_t)(keep->permitted >> (32 * i)),
                        .inheritable = (uint32_t)(keep->inheritable >> (32 * i)),
                };
        return syscall(SYS_capset, &head, data) < 0 ? -errno : 0;
}

static int raise_ambient(uint64_t ambient)
{
        for (cap_value_t c = 0; c < 64; c++)
                if (has_cap(ambient, c) &&
                    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0)
                        return -errno;
        return 0;
}

/* Trust, but verify: every set as KEEP says (empty without it), ids as
 * asked, no_new_privs on (unless KEEP leaves it off: it may then be on
 * already, inherited, which is stricter). */
static int check_result(uid_t uid, gid_t gid, const kpa_caps_keep *keep)
{
        static const kpa_caps_keep none = {.no_new_privs = true};
        if (!keep)
                keep = &none;
        /* read with capget(2) itself: cap_get_proc() would allocate. data
         * starts zeroed: valgrind's model of capget marks only its first
         * element written, though the kernel fills both. */
        struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};
        if (syscall(SYS_capget, &head, data) < 0)
                return -errno;
        uint64_t eff = 0, prm = 0, inh = 0;
        for (size_t i = 0; i < ELEMENTSOF(data); i++) {
                eff |= (uint64_t)data[i].effective << (32 * i);
                prm |= (uint64_t)data[i].permitted << (32 * i);
                inh |= (uint64_t)data[i].inheritable << (32 * i);
        }
        if (eff != keep->effective || prm != keep->permitted || inh != keep->inheritable)
                return -EPERM;

        /* without KEEP the ambient set needs no check: the kernel keeps it
         * within the permitted and inheritable sets, both empty now */
        cap_value_t max = cap_max_bits();
        for (cap_value_t c = 0; c < max; c++) {
                if ((cap_get_bound(c) > 0) != has_cap(keep->bounding, c))
                        return -EPERM;
                if (keep->ambient && (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, (unsigned long)c,
                                            0, 0) > 0) != has_cap(keep->ambient, c))
                        return -EPERM;
        }

        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
                return -errno;
        if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
                return -EPERM;
        if (keep->no_new_privs && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                return -EPERM;
        return 0;
}

int kpa_privileges_limit_keep(const kpa_caps_keep *keep, const char **failed_step)
{
        int r;

        if ((r = lock_securebits(keep)) < 0)
                return fail(failed_step, "securebits", -r);
        if ((r = drop_bounding_set(keep ? keep->bounding : 0)) < 0)
                return fail(failed_step, "capability bounding set", -r);
        /* one call, where libcap's cap_reset_ambient() asks for each
         * capability first (41 system calls); EINVAL: a kernel without
         * ambient capabilities, none to clear */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return fail(failed_step, "ambient capabilities", errno);
        return 0;
}

int kpa_privileges_limit(const char **failed_step)
{
        return kpa_privileges_limit_keep(NULL, failed_step);
}

/* The ids, keeping the permitted set across the switch when KEEP asks for
 * one (the kernel clears it on a change away from uid 0 otherwise). */
static int switch_ids(uid_t uid, gid_t gid, const kpa_caps_keep *keep, const char **failed_step)
{
        bool keepcaps = keep && keep->permitted;
        if (keepcaps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return fail(failed_step, "keep-caps", errno);
        if (syscall(SYS_setresgid, gid, gid, gid) < 0)
                return fail(failed_step, "setresgid", errno);
        if (syscall(SYS_setresuid, uid, uid, uid) < 0)
                return fail(failed_step, "setresuid", errno);
        if (keepcaps && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return fail(failed_step, "keep-caps", errno);
        return 0;
}

int kpa_privileges_drop_ids_keep(uid_t uid, gid_t gid, const kpa_caps_keep *keep,
                                 const char **failed_step)
{
        int r;

        if ((r = drop_groups()) < 0)
                return fail(failed_step, "setgroups", -r);
        if ((r = switch_ids(uid, gid, keep, failed_step)) < 0)
                return r;
        if (keep) {
                if ((r = set_kept_sets(keep)) < 0)
                        return fail(failed_step, "capset", -r);
                if ((r = raise_ambient(keep->ambient)) < 0)
                        return fail(failed_step, "ambient capabilities", -r);
        } else if ((r = clear_capability_sets()) < 0) {
                return fail(failed_step, "cap_set_proc", -r);
        }
        if ((!keep || keep->no_new_privs) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return fail(failed_step, "no_new_privs", errno);
        if ((r = check_result(uid, gid, keep)) < 0)
                return fail(failed_step, "check of dropped privileges", -r);
        return 0;
}

int kpa_privileges_drop_ids(uid_t uid, gid_t gid, const char **failed_step)
{
        return kpa_privileges_drop_ids_keep(uid, gid, NULL, failed_step);
}

int kpa_privileges_drop_keep(uid_t uid, gid_t gid, const kpa_caps_keep *keep,
                             const char **failed_step)
{
        int r = kpa_privileges_prepare();
        if (r < 0)
                return fail(failed_step, "cap_init", -r);
        r = kpa_privileges_limit_keep(keep, failed_step);
        return r < 0 ? r : kpa_privileges_drop_ids_keep(uid, gid, keep, failed_step);
}

int kpa_privileges_drop(uid_t uid, gid_t gid, const char **failed_step)
{
        return kpa_privileges_drop_keep(uid, gid, NULL, failed_step);
}

/* ---- at config time ---- */

int kpa_cap_from_name(const char *name)
{
        if (strncmp(name, "CAP_", 4) != 0)
                return -EINVAL;
        cap_value_t max = cap_max_bits();
        for (cap_value_t c = 0; c < max && c < 64; c++) {
                char *n = cap_to_name(c); /* "cap_chown"; a number if libcap does not know it */
                if (!n)
                        return -ENOMEM;
                bool same = strncmp(n, "cap_", 4) == 0 && strlen(n) == strlen(name);
                for (size_t i = 4; same && n[i]; i++)
                        same = name[i] == (char)toupper((unsigned char)n[i]);
                cap_free(n);
                if (same)
                        return (int)c;
        }
        return -EINVAL;
}

int kpa_cap_name(int cap, char *buf, size_t size)
{
        if (cap < 0 || cap >= 64 || cap >= cap_max_bits())
                return -EINVAL;
        char *n = cap_to_name((cap_value_t)cap);
        if (!n)
                return -ENOMEM;
        int r = strncmp(n, "cap_", 4) == 0 && strlen(n) < size ? 0 : -EINVAL;
        for (size_t i = 0; r == 0 && i <= strlen(n); i++)
                buf[i] = (char)toupper((unsigned char)n[i]);
        cap_free(n);
        return r;
}

int kpa_caps_keep_check(const kpa_caps_keep *keep, const char **set, int *cap)
{
        const struct {
                const char *name;
                uint64_t have, within;
        } rules[] = {
                {"effective", keep->effective, keep->bounding & keep->permitted},
                {"permitted", keep->permitted, keep->bounding},
                {"inheritable", keep->inheritable, keep->bounding},
                {"ambient", keep->ambient, keep->bounding & keep->permitted & keep->inheritable},
        };
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                uint64_t extra = rules[i].have & ~rules[i].within;
                if (!extra)
                        continue;
                *set = rules[i].name;
                *cap = __builtin_ctzll(extra);
                return -EINVAL;
        }
        return 0;
}
