/* caps.h: giving up privileges in the child, just before exec. */
#ifndef KPA_CAPS_H
#define KPA_CAPS_H

#include <sys/types.h>

/* In the child, as the last step before exec: drop supplementary groups,
 * empty the capability bounding set and the ambient set, switch to
 * UID:GID (setresgid, setresuid), clear every capability set (libcap),
 * set PR_SET_NO_NEW_PRIVS, and check that nothing is left. Uses no
 * malloc'd state that outlives it; safe after fork. Returns 0 or -errno;
 * *FAILED_STEP (if not NULL) then names the step ("setresuid", ...). */
int kpa_privileges_drop(uid_t uid, gid_t gid, const char **failed_step);

#endif
