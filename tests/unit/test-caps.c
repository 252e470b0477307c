/* Unit tests for caps.c (root only): a forked child drops its privileges and
 * reports /proc/self/status, both as it stands and after an exec of cat,
 * which is where a root uid would get its capabilities back if the
 * bounding set were not empty. Then an OCI grant (two capabilities kept in
 * every set, for uid 0 and a user, with and without no_new_privs): the sets
 * hold exactly those, before and after the exec; and the names and the
 * consistency rules of config time. */
#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <linux/securebits.h>

#include "caps.h"
#include "tap.h"
#include "util.h"

#define STATUS_MAX 16384

static int write_file(const char *path, const char *text)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        return fd < 0 ? -errno : kpa_write_all(fd, text, strlen(text));
}

/* The rootless case: an ordinary user (1000) in a user namespace of its own,
 * where it is root and setgroups() is denied. Exits 77 when the kernel does
 * not allow unprivileged user namespaces. */
static void enter_user_namespace(void)
{
        if (setresgid(1000, 1000, 1000) < 0 || setgroups(0, NULL) < 0 ||
            setresuid(1000, 1000, 1000) < 0 || prctl(PR_SET_DUMPABLE, 1) < 0)
                _exit(122);
        if (unshare(CLONE_NEWUSER) < 0)
                _exit(77);
        if (write_file("/proc/self/setgroups", "deny") < 0 ||
            write_file("/proc/self/uid_map", "0 1000 1") < 0 ||
            write_file("/proc/self/gid_map", "0 1000 1") < 0)
                _exit(123);
}

/* A --enable-coverage build writes its counters (libkpa's too) at exit(),
 * which _exit() skips. A child that is still uid 0 can write the .gcda
 * files, so it leaves through exit(); stdout was flushed before the fork. */
static _Noreturn void child_exit(int code)
{
        if (getuid() == 0)
                exit(code);
        _exit(code);
}

/* In the child: drop, then either print our own status (EXEC false) or exec
 * cat to print the status of the new image. Errors go to stdout as
 * "error=STEP:ERRNO" so that the parent can show them. */
static void child(int out, uid_t uid, gid_t gid, bool exec_cat, bool userns)
{
        if (dup2(out, 1) < 0)
                _exit(120);
        if (userns)
                enter_user_namespace();
        const char *step = NULL;
        int r = kpa_privileges_drop(uid, gid, &step);
        if (r < 0) {
                dprintf(1, "error=%s:%s\n", step ? step : "?", strerror(-r));
                _exit(1);
        }
        if (exec_cat) {
                execl("/bin/cat", "cat", "/proc/self/status", (char *)NULL);
                _exit(127);
        }
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (kpa_read_file_at(AT_FDCWD, "/proc/self/status", STATUS_MAX, &buf, &len) < 0)
                _exit(121);
        kpa_write_all(1, buf, len);

        /* Once dropped, there is no way back. */
        r = kpa_privileges_drop(0, 0, &step);
        dprintf(1, "again=%d:%s\n", r, step ? step : "");
        child_exit(0);
}

/* Run CHILD and return what it printed (NULL on a failed run). */
static char *run_child(uid_t uid, gid_t gid, bool exec_cat, bool userns, int *status)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return NULL;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return NULL;
        if (pid == 0)
                child(p[1], uid, gid, exec_cat, userns);
        close(p[1]);
        size_t cap = STATUS_MAX, len = 0;
        char *buf = kpa_xmalloc(cap + 1);
        ssize_t n;
        while (len < cap && (n = read(p[0], buf + len, cap - len)) > 0)
                len += (size_t)n;
        buf[len] = '\0';
        close(p[0]);
        waitpid(pid, status, 0);
        return buf;
}

/* The value of "KEY:\t..." in a /proc status text, in a static buffer. */
static const char *field(const char *text, const char *key)
{
        static char value[256];
        size_t klen = strlen(key);
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                if (strncmp(l, key, klen) == 0 && l[klen] == ':') {
                        const char *v = l + klen + 1;
                        v += strspn(v, " \t");
                        size_t n = strcspn(v, "\n");
                        if (n >= sizeof(value))
                                n = sizeof(value) - 1;
                        memcpy(value, v, n);
                        value[n] = '\0';
                        return value;
                }
        }
        return "(missing)";
}

static void check(uid_t uid, gid_t gid, bool exec_cat, bool userns)
{
        const char *how = exec_cat ? userns ? "in a user namespace, after exec" : "after exec"
                                   : "before exec";
        int status = -1;
        _cleanup_free_ char *out = run_child(uid, gid, exec_cat, userns, &status);
        if (userns && WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                ok(1, "# SKIP unprivileged user namespaces are not allowed here");
                return;
        }
        if (!ok(out && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "uid %u %s: child dropped privileges", (unsigned)uid, how))
                printf("#   status %d, output: %s\n", status, out ? out : "(none)");
        if (!out)
                return;
        static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
        for (size_t i = 0; i < ELEMENTSOF(sets); i++)
                is_str(field(out, sets[i]), "0000000000000000", "uid %u %s: %s empty",
                       (unsigned)uid, how, sets[i]);
        is_str(field(out, "NoNewPrivs"), "1", "uid %u %s: no_new_privs", (unsigned)uid, how);
        char ids[64];
        snprintf(ids, sizeof(ids), "%u\t%u\t%u\t%u", (unsigned)uid, (unsigned)uid,
                 (unsigned)uid, (unsigned)uid);
        is_str(field(out, "Uid"), ids, "uid %u %s: all uids", (unsigned)uid, how);
        snprintf(ids, sizeof(ids), "%u\t%u\t%u\t%u", (unsigned)gid, (unsigned)gid,
                 (unsigned)gid, (unsigned)gid);
        is_str(field(out, "Gid"), ids, "uid %u %s: all gids", (unsigned)uid, how);
        if (!userns)
                is_str(field(out, "Groups"), "", "uid %u %s: no supplementary groups",
                       (unsigned)uid, how);
        if (!exec_cat)
                has_str(out, "again=-1:setgroups", "uid %u: a second drop to uid 0 fails",
                        (unsigned)uid);
}

/* Root with the capabilities the drop needs; not the case for root in a
 * container that took them away. */
static bool privileged(void)
{
        if (geteuid() != 0)
                return false;
        cap_t caps = cap_get_proc();
        bool all = caps != NULL;
        const cap_value_t need[] = {CAP_SETPCAP, CAP_SETUID, CAP_SETGID};
        for (size_t i = 0; caps && i < ELEMENTSOF(need); i++) {
                cap_flag_value_t v = CAP_CLEAR;
                if (cap_get_flag(caps, need[i], CAP_EFFECTIVE, &v) < 0 || v != CAP_SET)
                        all = false;
        }
        cap_free(caps);
        return all;
}

/* The two parts one after the other, as the sandbox does them (the init
 * sets the limits, its child the rest): after the limits the bounding set
 * is empty and the effective set is whole; after the rest every set is
 * empty, with the ids asked for. */
static void check_split(void)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                if (dup2(p[1], 1) < 0)
                        _exit(120);
                const char *step = NULL;
                int r = kpa_privileges_prepare();
                if (r == 0)
                        r = kpa_privileges_limit(&step);
                _cleanup_free_ char *st = NULL;
                size_t len = 0;
                if (r < 0 ||
                    kpa_read_file_at(AT_FDCWD, "/proc/self/status", STATUS_MAX, &st, &len) < 0)
                        _exit(121);
                dprintf(1, "limited.CapBnd=%s\n", field(st, "CapBnd"));
                dprintf(1, "limited.CapEff=%s\n", field(st, "CapEff"));
                r = kpa_privileges_drop_ids(65534, 65534, &step);
                if (r < 0) {
                        dprintf(1, "error=%s:%s\n", step ? step : "?", strerror(-r));
                        _exit(1);
                }
                free(TAKE_PTR(st));
                if (kpa_read_file_at(AT_FDCWD, "/proc/self/status", STATUS_MAX, &st, &len) < 0)
                        _exit(122);
                kpa_write_all(1, st, len);
                _exit(0);
        }
        close(p[1]);
        char buf[STATUS_MAX + 1];
        size_t len = 0;
        ssize_t n;
        while (len < STATUS_MAX && (n = read(p[0], buf + len, STATUS_MAX - len)) > 0)
                len += (size_t)n;
        buf[len] = '\0';
        close(p[0]);
        int status = -1;
        waitpid(pid, &status, 0);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "limits, then ids: the child succeeded");
        has_str(buf, "limited.CapBnd=0000000000000000\n", "after the limits: no bounding set");
        ok(!strstr(buf, "limited.CapEff=0000000000000000"),
           "after the limits: the effective set is kept");
        is_str(field(buf, "CapEff"), "0000000000000000", "after the rest: CapEff empty");
        is_str(field(buf, "CapPrm"), "0000000000000000", "after the rest: CapPrm empty");
        is_str(field(buf, "CapBnd"), "0000000000000000", "after the rest: CapBnd empty");
        is_str(field(buf, "CapAmb"), "0000000000000000", "after the rest: CapAmb empty");
        is_str(field(buf, "NoNewPrivs"), "1", "after the rest: no_new_privs");
        is_str(field(buf, "Uid"), "65534\t65534\t65534\t65534", "after the rest: all uids");
}

/* An OCI grant: CAP_CHOWN and CAP_NET_BIND_SERVICE in every set, as a
 * config.json asks for them; for UID, before and after an exec of cat
 * (where a non-root uid keeps only what is ambient, and root gets the
 * bounding set back as permitted and effective: the kernel's rules). */
#define KEPT "0000000000000401" /* CAP_CHOWN (0), CAP_NET_BIND_SERVICE (10) */
static void check_keep(uid_t uid, bool exec_cat, bool nnp)
{
        const uint64_t both = (UINT64_C(1) << CAP_CHOWN) | (UINT64_C(1) << CAP_NET_BIND_SERVICE);
        const kpa_caps_keep keep = {.bounding = both,
                                    .effective = both,
                                    .permitted = both,
                                    .inheritable = both,
                                    .ambient = uid ? both : 0,
                                    .no_new_privs = nnp};
        const char *how = exec_cat ? "after exec" : "before exec";
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                if (dup2(p[1], 1) < 0)
                        _exit(120);
                const char *step = NULL;
                int r = kpa_privileges_drop_keep(uid, uid, &keep, &step);
                if (r < 0) {
                        dprintf(1, "error=%s:%s\n", step ? step : "?", strerror(-r));
                        _exit(1);
                }
                if (exec_cat) {
                        execl("/bin/cat", "cat", "/proc/self/status", (char *)NULL);
                        _exit(127);
                }
                _cleanup_free_ char *st = NULL;
                size_t len = 0;
                if (kpa_read_file_at(AT_FDCWD, "/proc/self/status", STATUS_MAX, &st, &len) < 0)
                        _exit(121);
                kpa_write_all(1, st, len);
                dprintf(1, "securebits=%d\n", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
                child_exit(0);
        }
        close(p[1]);
        char buf[STATUS_MAX + 1];
        size_t len = 0;
        ssize_t n;
        while (len < STATUS_MAX && (n = read(p[0], buf + len, STATUS_MAX - len)) > 0)
                len += (size_t)n;
        buf[len] = '\0';
        close(p[0]);
        int status = -1;
        waitpid(pid, &status, 0);
        if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "keep, uid %u %s: the child succeeded", (unsigned)uid, how))
                printf("#   status %d, output: %s\n", status, buf);
        static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd"};
        for (size_t i = 0; i < ELEMENTSOF(sets); i++)
                is_str(field(buf, sets[i]), KEPT, "keep, uid %u %s: %s as asked", (unsigned)uid,
                       how, sets[i]);
        is_str(field(buf, "CapAmb"), uid ? KEPT : "0000000000000000",
               "keep, uid %u %s: CapAmb as asked", (unsigned)uid, how);
        /* a no_new_privs this test inherited (under bwrap, as in
         * tests/fresh-root.sh) cannot be cleared below it */
        bool inherited = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
        is_str(field(buf, "NoNewPrivs"), nnp || inherited ? "1" : "0",
               "keep, uid %u %s: no_new_privs %s", (unsigned)uid, how,
               nnp ? "on" : inherited ? "on, inherited by this test" : "off, as asked");
        char ids[64];
        snprintf(ids, sizeof(ids), "%u\t%u\t%u\t%u", (unsigned)uid, (unsigned)uid, (unsigned)uid,
                 (unsigned)uid);
        is_str(field(buf, "Uid"), ids, "keep, uid %u %s: all uids", (unsigned)uid, how);
        if (!exec_cat) {
                /* ambient raising stays possible only where the grant has ambient caps */
                int want = SECBIT_NO_SETUID_FIXUP_LOCKED |
                           (uid ? 0
                                : SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED);
                char w[32];
                snprintf(w, sizeof(w), "securebits=%d\n", want);
                has_str(buf, w, "keep, uid %u: the securebits that still apply", (unsigned)uid);
        }
}

/* Names as OCI spells them; the sets the kernel can give. */
static void check_names(void)
{
        is(kpa_cap_from_name("CAP_CHOWN"), CAP_CHOWN, "CAP_CHOWN by name");
        is(kpa_cap_from_name("CAP_NET_BIND_SERVICE"), CAP_NET_BIND_SERVICE,
           "CAP_NET_BIND_SERVICE by name");
        ok(kpa_cap_from_name("cap_chown") < 0 && kpa_cap_from_name("CHOWN") < 0 &&
                   kpa_cap_from_name("CAP_") < 0 && kpa_cap_from_name("CAP_NOPE") < 0 &&
                   kpa_cap_from_name("12") < 0 && kpa_cap_from_name("CAP_CHOWNX") < 0,
           "other spellings and unknown names are refused");
        const char *set = NULL;
        int cap = -1;
        kpa_caps_keep k = {
                .bounding = 1, .permitted = 1, .effective = 1, .inheritable = 1, .ambient = 1};
        ok(kpa_caps_keep_check(&k, &set, &cap) == 0, "a consistent grant passes");
        k.ambient = 1 | (UINT64_C(1) << 12);
        ok(kpa_caps_keep_check(&k, &set, &cap) == -EINVAL && strcmp(set, "ambient") == 0 &&
                   cap == 12,
           "an ambient capability outside the other sets is named");
}

int main(void)
{
        if (!privileged()) {
                printf("1..0 # SKIP needs root with CAP_SETPCAP, CAP_SETUID and CAP_SETGID\n");
                return 0;
        }
        check(65534, 65534, false, false);
        check(65534, 65534, true, false);
        check(0, 0, false, false);
        check(0, 0, true, false);
        check(61184, 61184, true, false);
        check(0, 0, true, true);
        check_split();
        check_names();
        check_keep(65534, false, false);
        check_keep(65534, true, false);
        check_keep(65534, true, true);
        check_keep(0, false, true);
        check_keep(0, true, false);
        return tap_done();
}
