/* sandbox-root.c: the instance's new root. The parent makes it (but
 * rootless) as detached mounts while the child makes its namespaces: a
 * tmpfs with the directories, links and copies of the spec, its /dev, and
 * a detached copy of each bind's source (hand_over_root, detached_copy);
 * the child attaches them below NEWROOT, binds (/tmp, /run, /var and
 * /dev/shm are binds of directories of the root's and /dev's tmpfs),
 * mounts /proc, pivots into it and drops the old root (build_root). Rootless,
 * the child makes all of it itself; an OCI bundle's rootfs is pivoted into
 * first and mounted in the config's order (build_oci_root). Paths are made
 * relative to a directory fd, never following a link of the package. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include "sandbox-priv.h"
#include "util.h"

/* The new root is built on a tmpfs mounted here, inside the instance's own
 * mount namespace (the host's /tmp is not touched). */
#define NEWROOT "/tmp"

/* The file helpers below work on PATH relative to DIRFD: the parent fills
 * a detached tmpfs through its fd (relative paths), the child (rootless)
 * its new root by absolute paths (AT_FDCWD). What they make has the mode
 * they are given, whatever the caller's umask: under umask 077 the
 * application could not read its own /etc, or reach /run, /var or a
 * bind's target. */
static int mkdir_mode_at(int dirfd, const char *path, mode_t mode)
{
        if (mkdirat(dirfd, path, mode) < 0)
                return -1;
        return fchmodat(dirfd, path, mode, 0);
}

static int mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
        /* most parents exist already: one mkdir then */
        if (mkdir_mode_at(dirfd, path, mode) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -1;
        char buf[PATH_MAX];
        size_t len = strlen(path);
        if (len >= sizeof(buf))
                return errno = ENAMETOOLONG, -1;
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir_mode_at(dirfd, buf, mode) < 0 && errno != EEXIST)
                        return -1;
                *p = '/';
        }
        if (mkdir_mode_at(dirfd, buf, mode) < 0 && errno != EEXIST)
                return -1;
        return 0;
}

static int touch_at(int dirfd, const char *path)
{
        int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -1;
        close(fd);
        return 0;
}

/* The parent of PATH must exist before PATH itself is made. */
static int mkdir_parent_at(int dirfd, const char *path)
{
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", path);
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf)
                return 0;
        *slash = '\0';
        return mkdir_p_at(dirfd, buf, 0755);
}

static int copy_file_at(const char *from, int dirfd, const char *to)
{
        char buf[16 * 1024];
        int in = open(from, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -1;
        int out = -1;
        if (mkdir_parent_at(dirfd, to) == 0)
                out = openat(dirfd, to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                             0644);
        int r = out < 0 || fchmod(out, 0644) < 0 ? -1 : 0;
        while (r == 0) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n <= 0) {
                        r = n < 0 ? -1 : 0;
                        break;
                }
                int w = kpa_write_all(out, buf, (size_t)n);
                if (w < 0)
                        r = (errno = -w, -1);
        }
        int saved = errno;
        close(in);
        if (out >= 0)
                close(out);
        errno = saved;
        return r;
}

static int make_target_at(int dirfd, const char *target, bool dir)
{
        if (dir)
                return mkdir_p_at(dirfd, target, 0755);
        return mkdir_parent_at(dirfd, target) < 0 ? -1 : touch_at(dirfd, target);
}

/* What the new root holds below DIRFD (relative to it, PREFIX before each
 * path) besides its mounts: the directories /proc, /tmp, /run and /etc, the
 * symlinks and the copies. (The targets of the binds are made by the child,
 * as it binds: a target may lie below an earlier bind, /usr say.) */
static int fill_root_at(const kpa_instance_spec *spec, int dirfd, const char *prefix,
                        const char **failed)
{
        /* (what is below /var is on its own tmpfs: mount_var) */
        static const char *const dirs[] = {"/proc", "/tmp", "/run", "/etc", "/var"};
        char path[PATH_MAX];
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(path, sizeof(path), "%s%s", prefix, dirs[i]);
                if (mkdir_mode_at(dirfd, path, 0755) < 0)
                        return *failed = dirs[i], -1;
        }
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const kpa_mount_op *op = &spec->mounts[i];
                snprintf(path, sizeof(path), "%s%s", prefix, op->target);
                int r = 0;
                switch (op->kind) {
                case KPA_MOUNT_BIND_RO:
                case KPA_MOUNT_BIND_RW:
                case KPA_MOUNT_FS: /* the OCI kinds: build_oci_root() only */
                case KPA_MOUNT_DEVICE:
                case KPA_MOUNT_MASK:
                case KPA_MOUNT_READONLY: break;
                case KPA_MOUNT_SYMLINK:
                        r = mkdir_parent_at(dirfd, path);
                        if (r == 0)
                                r = symlinkat(op->source, dirfd, path);
                        break;
                case KPA_MOUNT_COPY:
                        r = copy_file_at(op->source, dirfd, path);
                        if (r < 0 && op->optional && errno == ENOENT)
                                r = 0;
                        break;
                }
                if (r < 0)
                        return *failed = op->target, -1;
        }
        return 0;
}

/* Attach TREE, the detached copy of bind OP's source, at TARGET (made
 * here, a directory or a file as the source is). No TREE: an optional
 * source that is missing, skipped. */
static int bind_mount(int tree, const char *target)
{
        struct stat st;
        if (tree < 0)
                return 0;
        if (fstat(tree, &st) < 0 || make_target_at(AT_FDCWD, target, S_ISDIR(st.st_mode)) < 0)
                return -1;
        return move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
}

static const struct {
        const char *name;
        unsigned major, minor;
} dev_nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
                 {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

/* What /dev holds besides its mounts: the links, and the mount points of
 * /dev/pts and /dev/shm; below DIRFD, PREFIX before each name. */
static int fill_dev_links_at(int dirfd, const char *prefix)
{
        static const char *const links[][2] = {
                {"pts/ptmx", "ptmx"},         {"/proc/self/fd", "fd"},
                {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                {"/proc/self/fd/2", "stderr"}};
        char path[64];
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(path, sizeof(path), "%s/%s", prefix, links[i][1]);
                if (symlinkat(links[i][0], dirfd, path) < 0)
                        return -1;
        }
        snprintf(path, sizeof(path), "%s/pts", prefix);
        if (mkdir_mode_at(dirfd, path, 0755) < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/shm", prefix);
        return mkdir_mode_at(dirfd, path, 01777);
}

/* /dev/pts and /dev/shm, mounted on the /dev below NEWROOT. /dev/shm is
 * a tmpfs of its own, or (SHM_BOUND, the /dev that hand_over_root made) a
 * bind of the directory on /dev's tmpfs, nosuid and nodev rather than
 * /dev's noexec: one file system less to make and tear down. */
static int mount_dev_fs(bool shm_bound)
{
        if (mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620") < 0)
                return -1;
        if (!shm_bound)
                return mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
                             "mode=1777");
        if (mount(NEWROOT "/dev/shm", NEWROOT "/dev/shm", NULL, MS_BIND, NULL) < 0)
                return -1;
        return mount(NULL, NEWROOT "/dev/shm", NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV,
                     NULL);
}

/* /dev made in the child (rootless): device nodes the user namespace may
 * not create are binds of the host's. */
static int make_dev(void)
{
        if (mkdir_p_at(AT_FDCWD, NEWROOT "/dev", 0755) < 0 ||
            mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                char path[64];
                snprintf(path, sizeof(path), NEWROOT "/dev/%s", dev_nodes[i].name);
                dev_t nr = makedev(dev_nodes[i].major, dev_nodes[i].minor);
                if (mknod(path, S_IFCHR | 0666, nr) == 0) {
                        chmod(path, 0666); /* mknod honours the umask */
                        continue;
                }
                /* no CAP_MKNOD (e.g. a user namespace): bind the host's node */
                char host[32];
                snprintf(host, sizeof(host), "/dev/%s", dev_nodes[i].name);
                if (touch_at(AT_FDCWD, path) < 0 || mount(host, path, NULL, MS_BIND, NULL) < 0)
                        return -1;
        }
        if (fill_dev_links_at(AT_FDCWD, NEWROOT "/dev") < 0)
                return -1;
        return mount_dev_fs(false);
}

/* What ordinary programs expect below /var (lighttpd wants /var/tmp),
 * made in PREFIX/var relative to DIRFD: /var/tmp mode 1777 as /tmp is,
 * /var/lib and /var/cache owned by the application's UID and GID, /var/run
 * a link to /run; binds of the spec (made after this) may cover them.
 * *FAILED: the absolute name of what could not be made. */
static int fill_var_at(int dirfd, const char *prefix, uid_t uid, gid_t gid, const char **failed)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/var/tmp", prefix);
        if (mkdir_mode_at(dirfd, path, 01777) < 0)
                return *failed = "/var/tmp", -1;
        snprintf(path, sizeof(path), "%s/var/run", prefix);
        if (symlinkat("/run", dirfd, path) < 0)
                return *failed = "/var/run", -1;
        static const char *const owned[] = {"/var/lib", "/var/cache"};
        for (size_t i = 0; i < ELEMENTSOF(owned); i++) {
                snprintf(path, sizeof(path), "%s%s", prefix, owned[i]);
                if (mkdir_mode_at(dirfd, path, 0755) < 0 ||
                    fchownat(dirfd, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return *failed = owned[i], -1;
        }
        return 0;
}

/* /var of the root the child made (rootless): one tmpfs for all of it
 * (each mount costs a start about 40 us, made and torn down), filled by
 * fill_var_at. */
static int mount_var(uid_t uid, gid_t gid)
{
        const char *failed;
        if (mount("tmpfs", NEWROOT "/var", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                return -1;
        return fill_var_at(AT_FDCWD, NEWROOT, uid, gid, &failed);
}

/* /tmp, /run and /var of the root that hand_over_root made: binds of
 * their directories on the root's own tmpfs (made ready there), so that
 * they stay writable when the root's mount is made read-only. */
static int bind_writable(void)
{
        static const char *const dirs[] = {NEWROOT "/tmp", NEWROOT "/run", NEWROOT "/var"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (mount(dirs[i], dirs[i], NULL, MS_BIND, NULL) < 0)
                        return -1;
        return 0;
}

void build_root(const child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        bool handed = c->root_fd >= 0; /* made by the parent (hand_over_root) */
        CHECK(c, KPA_STEP_MOUNT_PRIVATE, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        /* /tmp and /run before the binds: a host path may be bound below
         * them (a socket in /run, say) */
        if (handed) {
                CHECK(c, KPA_STEP_ROOT, move_mount(c->root_fd, "", AT_FDCWD, NEWROOT,
                                                   MOVE_MOUNT_F_EMPTY_PATH));
                CHECK(c, KPA_STEP_PROC, bind_writable());
        } else {
                CHECK(c, KPA_STEP_ROOT,
                      mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m"));
                const char *failed;
                CHECK(c, KPA_STEP_MOUNTS, fill_root_at(spec, AT_FDCWD, NEWROOT, &failed));
                CHECK(c, KPA_STEP_PROC,
                      mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
                CHECK(c, KPA_STEP_PROC,
                      mount("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
                CHECK(c, KPA_STEP_PROC, mount_var(spec->uid, spec->gid));
        }
        kpa_trace("child: root tmpfs");
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const kpa_mount_op *op = &spec->mounts[i];
                if (op->kind != KPA_MOUNT_BIND_RO && op->kind != KPA_MOUNT_BIND_RW)
                        continue;
                char target[PATH_MAX];
                snprintf(target, sizeof(target), NEWROOT "%s", op->target);
                CHECK(c, KPA_STEP_MOUNTS, bind_mount(c->trees[i], target));
                kpa_trace(op->target);
        }
        if (c->dev_fd >= 0) {
                CHECK(c, KPA_STEP_DEV, move_mount(c->dev_fd, "", AT_FDCWD, NEWROOT "/dev",
                                                  MOVE_MOUNT_F_EMPTY_PATH));
                CHECK(c, KPA_STEP_DEV, mount_dev_fs(true));
        } else {
                CHECK(c, KPA_STEP_DEV, make_dev());
        }
        kpa_trace("child: /dev");
        /* /proc before the old root goes: in a user namespace (rootless)
         * the kernel allows a new proc mount only while a fully visible
         * one is still in the namespace */
        CHECK(c, KPA_STEP_PROC, mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
        /* pivot_root(".", ".") stacks the old root under the new one; then
         * detach it, so nothing of the host's tree stays reachable */
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir(NEWROOT));
        CHECK(c, KPA_STEP_PIVOT_ROOT, (int)syscall(SYS_pivot_root, ".", "."));
        CHECK(c, KPA_STEP_PIVOT_ROOT, umount2(".", MNT_DETACH));
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir("/"));
        kpa_trace("child: pivot_root");
        /* read-only: the root's mount only when /tmp, /run and /var are
         * binds of its file system, else the file system itself */
        CHECK(c, KPA_STEP_ROOT,
              mount(NULL, "/", NULL,
                    MS_REMOUNT | (handed ? MS_BIND : 0) | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL));
}

/* ---- the OCI root (spec->rootfs) ----
 * The bundle's rootfs is bound as the new root and pivoted into first;
 * the mounts are then made in their order with paths inside it, so that a
 * symlink in the image resolves inside the image and never on the host.
 * The binds' sources are detached trees cloned by the parent before. */

static bool path_is_dir(const char *path, bool *exists)
{
        struct stat st;
        *exists = stat(path, &st) == 0;
        return *exists && S_ISDIR(st.st_mode);
}

/* the device nodes and links of kpa's /dev, those still missing */
static int fill_oci_dev(void)
{
        if (mkdir_p_at(AT_FDCWD, "/dev", 0755) < 0)
                return -1;
        int dev = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dev < 0)
                return -1;
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes) && r == 0; i++) {
                dev_t nr = makedev(dev_nodes[i].major, dev_nodes[i].minor);
                if (mknodat(dev, dev_nodes[i].name, S_IFCHR | 0666, nr) == 0)
                        r = fchmodat(dev, dev_nodes[i].name, 0666, 0);
                else if (errno != EEXIST)
                        r = -1;
        }
        static const char *const links[][2] = {
                {"pts/ptmx", "ptmx"},         {"/proc/self/fd", "fd"},
                {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                {"/proc/self/fd/2", "stderr"}};
        for (size_t i = 0; i < ELEMENTSOF(links) && r == 0; i++)
                if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
                        r = -1;
        int saved = errno;
        close(dev);
        errno = saved;
        return r;
}

static int oci_mount(const child_ctx *c, size_t i)
{
        const kpa_mount_op *op = &c->spec->mounts[i];
        bool exists;
        switch (op->kind) {
        case KPA_MOUNT_BIND_RO:
        case KPA_MOUNT_BIND_RW: return bind_mount(c->trees[i], op->target);
        case KPA_MOUNT_FS:
                if (mkdir_p_at(AT_FDCWD, op->target, 0755) < 0)
                        return -1;
                return mount(op->source, op->target, op->fstype, op->flags, op->data);
        case KPA_MOUNT_MASK:
                if (path_is_dir(op->target, &exists))
                        return mount("tmpfs", op->target, "tmpfs", MS_RDONLY, "size=0");
                return exists ? mount("/dev/null", op->target, NULL, MS_BIND, NULL) : 0;
        case KPA_MOUNT_READONLY: {
                struct statvfs sv;
                (void)path_is_dir(op->target, &exists);
                if (!exists)
                        return 0;
                if (mount(op->target, op->target, NULL, MS_BIND | MS_REC, NULL) < 0 ||
                    statvfs(op->target, &sv) < 0)
                        return -1;
                unsigned long keep = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) |
                                     (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
                                     (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
                return mount(NULL, op->target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL);
        }
        case KPA_MOUNT_SYMLINK:
                return mkdir_parent_at(AT_FDCWD, op->target) < 0
                               ? -1
                               : symlinkat(op->source, AT_FDCWD, op->target);
        case KPA_MOUNT_COPY: return errno = ENOTSUP, -1;
        case KPA_MOUNT_DEVICE:
                /* as runc: a node that is there already is replaced */
                if (mkdir_parent_at(AT_FDCWD, op->target) < 0 ||
                    (unlink(op->target) < 0 && errno != ENOENT) ||
                    mknod(op->target, op->mode, op->rdev) < 0 ||
                    chown(op->target, op->uid, op->gid) < 0)
                        return -1;
                return chmod(op->target, op->mode & 07777); /* whatever the umask */
        }
        return 0;
}

void build_oci_root(const child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        CHECK(c, KPA_STEP_MOUNT_PRIVATE, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        CHECK(c, KPA_STEP_ROOT, mount(spec->rootfs, NEWROOT, NULL, MS_BIND | MS_REC, NULL));
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir(NEWROOT));
        CHECK(c, KPA_STEP_PIVOT_ROOT, (int)syscall(SYS_pivot_root, ".", "."));
        CHECK(c, KPA_STEP_PIVOT_ROOT, umount2(".", MNT_DETACH));
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir("/"));
        /* masks and read-only paths last: over what the mounts made */
        for (size_t i = 0; i < spec->n_mounts; i++)
                if (spec->mounts[i].kind != KPA_MOUNT_MASK &&
                    spec->mounts[i].kind != KPA_MOUNT_READONLY)
                        CHECK(c, KPA_STEP_MOUNTS, oci_mount(c, i));
        CHECK(c, KPA_STEP_DEV, fill_oci_dev());
        /* a process.cwd that is missing is made, as runc does */
        if (spec->cwd)
                CHECK(c, KPA_STEP_CWD, mkdir_p_at(AT_FDCWD, spec->cwd, 0755));
        for (size_t i = 0; i < spec->n_mounts; i++)
                if (spec->mounts[i].kind == KPA_MOUNT_MASK ||
                    spec->mounts[i].kind == KPA_MOUNT_READONLY)
                        CHECK(c, KPA_STEP_MOUNTS, oci_mount(c, i));
        if (spec->rootfs_readonly)
                CHECK(c, KPA_STEP_ROOT,
                      mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
}

/* A detached copy of bind OP's source, with OP's mount flags set: of its
 * source fd (BY_FD), else of its path; -1 with errno (ENOENT: the source
 * is missing). Made before the new root is mounted over NEWROOT, which may
 * hide a source path below it. */
int detached_copy(const kpa_mount_op *op, bool by_fd)
{
        /* a fresh detached mount is moved itself: kernels before 6.5 (this
         * guest's 6.1) refuse to clone one */
        if (by_fd && op->detached)
                return fcntl(op->source_fd, F_DUPFD_CLOEXEC, 3);
        int t = by_fd ? open_tree(op->source_fd, "",
                                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE)
                      : open_tree(AT_FDCWD, op->source,
                                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (t < 0)
                return -1;
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        if (op->kind == KPA_MOUNT_BIND_RO)
                attr.attr_set |= MOUNT_ATTR_RDONLY;
        if (op->flags & MS_NOEXEC)
                attr.attr_set |= MOUNT_ATTR_NOEXEC;
        if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                int e = errno;
                close(t);
                return errno = e, -1;
        }
        return t;
}

/* A detached copy of OP's source, for a bind (rootless), or -1. */
int child_tree(const child_ctx *c, const kpa_mount_op *op)
{
        if ((op->kind != KPA_MOUNT_BIND_RO && op->kind != KPA_MOUNT_BIND_RW) || !op->source)
                return -1;
        int t = detached_copy(op, false);
        if (t < 0 && !(op->optional && errno == ENOENT))
                child_fail(c, KPA_STEP_MOUNTS, errno);
        return t;
}

/* A tmpfs with MODE (and tmpfs's default size), as a detached mount with
 * ATTRS, or -1. */
static int detached_tmpfs(const char *mode, unsigned attrs)
{
        _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -1;
        return fsmount(fs, FSMOUNT_CLOEXEC, attrs);
}

/* What programs expect of /tmp and /var, made on the root's tmpfs below
 * DIRFD: /tmp mode 1777, and fill_var_at's /var. The child binds /tmp,
 * /run and /var. */
static int fill_writable_at(int dirfd, uid_t uid, gid_t gid, const char **failed)
{
        if (fchmodat(dirfd, "tmp", 01777, 0) < 0) /* made by fill_root_at */
                return *failed = "/tmp", -1;
        return fill_var_at(dirfd, ".", uid, gid, failed);
}

/* Make the new root (a tmpfs with what fill_root_at and fill_writable_at
 * put there) and its /dev (the device nodes and links) as detached mounts,
 * and send them to the child, which only attaches them. This is done here,
 * while the child makes its namespaces on another CPU, rather than in the
 * child: about 0.3 ms less before the application starts. /tmp, /run and
 * /var are directories of the root's tmpfs, and /dev/shm one of /dev's,
 * that the child binds: a tmpfs each cost a start about 0.1 ms in all
 * (bench/start.sh), made and torn down. The two file systems have tmpfs's
 * default size then, as those four had. Not rootless: outside a user
 * namespace of its own an unprivileged user cannot make a tmpfs. */
int hand_over_root(const kpa_instance_spec *spec, int setup_fd, kpa_error *err)
{
        _cleanup_close_ int root = detached_tmpfs("0755", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (root < 0)
                return kpa_error_set_errno(err, errno, "the new root: cannot make a tmpfs");
        const char *failed = "/dev";
        if (mkdir_mode_at(root, "dev", 0755) < 0 || fill_root_at(spec, root, ".", &failed) < 0 ||
            fill_writable_at(root, spec->uid, spec->gid, &failed) < 0)
                return kpa_error_set_errno(err, errno, "the new root: cannot make %s", failed);
        _cleanup_close_ int dev = detached_tmpfs("0755", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (dev < 0)
                return kpa_error_set_errno(err, errno, "the new /dev: cannot make a tmpfs");
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                const char *name = dev_nodes[i].name;
                /* mknod honours the umask */
                dev_t nr = makedev(dev_nodes[i].major, dev_nodes[i].minor);
                if (mknodat(dev, name, S_IFCHR | 0666, nr) < 0 || fchmodat(dev, name, 0666, 0) < 0)
                        return kpa_error_set_errno(err, errno, "the new /dev: cannot make %s",
                                                   name);
        }
        if (fill_dev_links_at(dev, ".") < 0)
                return kpa_error_set_errno(err, errno, "the new /dev: cannot make its links");
        int q = send_root(setup_fd, root, dev);
        if (q == -EPIPE || q == -ECONNRESET)
                q = 0; /* the child is gone; its report says why */
        if (q < 0)
                return kpa_error_set_errno(err, -q, "cannot send the new root to the child");
        return 0;
}
