/* caps.h: giving up privileges in the sandbox: the limits first (in the
 * instance's init, which still needs its capabilities), then the ids and
 * the capability sets (in the application's child, just before exec). */
#ifndef KPA_CAPS_H
#define KPA_CAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* In the parent, before it clones the child that will call the two
 * below: what they need from the heap (they allocate nothing themselves).
 * Returns 0 or -ENOMEM. */
int kpa_privileges_prepare(void);

/* In the child, as the last step before exec: drop supplementary groups,
 * empty the capability bounding set and the ambient set, switch to
 * UID:GID (setresgid, setresuid), clear every capability set (libcap),
 * set PR_SET_NO_NEW_PRIVS, and check that nothing is left. Allocates only
 * what kpa_privileges_prepare() does, if that was not called before. Returns 0 or -errno;
 * *FAILED_STEP (if not NULL) then names the step ("setresuid", ...). */
int kpa_privileges_drop(uid_t uid, gid_t gid, const char **failed_step);

/* kpa_privileges_drop() in two parts. The limits: lock the securebits,
 * empty the capability bounding set and the ambient set. The process keeps
 * its effective capabilities (an init can still make namespaces and join
 * cgroups), and every process it forks inherits the limits. */
int kpa_privileges_limit(const char **failed_step);
/* The rest, in a process whose limits are set: drop supplementary groups,
 * switch to UID:GID, clear every capability set, set no_new_privs, and
 * check that nothing is left (the bounding set included). Needs
 * kpa_privileges_prepare() first (-ENOMEM otherwise). Neither part
 * allocates: both are safe in a child of a raw clone. */
int kpa_privileges_drop_ids(uid_t uid, gid_t gid, const char **failed_step);

/* What an OCI config.json keeps (process.capabilities, bit N for
 * capability N, and process.noNewPrivileges): the admin's grant, as the
 * orchestrator writes it. kpa's own packages keep nothing (the functions
 * above, or NULL below). */
typedef struct kpa_caps_keep {
        uint64_t bounding, effective, permitted, inheritable, ambient;
        bool no_new_privs;
} kpa_caps_keep;

/* The capability named NAME ("CAP_NET_BIND_SERVICE", as OCI spells it; the
 * running kernel must know it): its number, or -EINVAL. */
int kpa_cap_from_name(const char *name);
/* The other way: capability CAP's name, as OCI spells it, in BUF (SIZE
 * bytes). 0, or -EINVAL when libcap or the kernel does not know it. */
int kpa_cap_name(int cap, char *buf, size_t size);
/* Whether the kernel can give KEEP as it is: every set within the bounding
 * set, effective within permitted, ambient within permitted and
 * inheritable. 0, or -EINVAL with *SET ("effective") and *CAP naming the
 * first capability that is not. */
int kpa_caps_keep_check(const kpa_caps_keep *keep, const char **set, int *cap);

/* The two parts again, keeping KEEP (NULL: as kpa_privileges_limit() and
 * kpa_privileges_drop_ids()). The limits shrink the bounding set to
 * KEEP's, lock the securebits that still apply (no setuid fixup opt-out;
 * no ambient raising when KEEP has no ambient set) and empty the ambient
 * set. The rest keeps the permitted set across the switch to UID:GID
 * (PR_SET_KEEPCAPS), sets the effective, permitted and inheritable sets to
 * KEEP's, raises its ambient set, sets no_new_privs if KEEP asks, and
 * checks each set (the bounding set included) against KEEP. */
int kpa_privileges_limit_keep(const kpa_caps_keep *keep, const char **failed_step);
int kpa_privileges_drop_ids_keep(uid_t uid, gid_t gid, const kpa_caps_keep *keep,
                                 const char **failed_step);
/* Both, in one process (kpa-oci exec). */
int kpa_privileges_drop_keep(uid_t uid, gid_t gid, const kpa_caps_keep *keep,
                             const char **failed_step);

#endif
