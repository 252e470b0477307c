/* caps.h: giving up privileges in the sandbox: the limits first (in the
 * instance's init, which still needs its capabilities), then the ids and
 * the capability sets (in the application's child, just before exec). */
#ifndef KPA_CAPS_H
#define KPA_CAPS_H

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

#endif
