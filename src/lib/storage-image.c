/* storage-image.c: private storage with a size. When a root-managed store
 * installs a package whose manifest gives privateStorage.size, the storage
 * is a file system image of that size, ROOT/images/APP_ID.img (ext4, or
 * ext2/ext3 when fsType says so), made with mke2fs at install and owned
 * inside by the package's uid. Each start attaches it to a loop device
 * (or finds the one it has) and makes a detached mount of it (fsmount),
 * which the sandbox moves to /storage: nothing is mounted on the host, a
 * write past the size fails with ENOSPC inside the sandbox and never
 * reaches the host's disk, and the file system is unmounted when the last
 * instance ends and a short linger has passed (storage-keep.c). The loop device stays attached for
 * the next start (as snapd's do) until a purge detaches it: LO_FLAGS_AUTOCLEAR was tried and the
 * kernel (6.18) detached the device at the last close of its node while another instance still had
 * the file system mounted. Instances that run at once mount the same loop device, so the kernel
 * gives them one superblock and never writes one file system from two. Where kpa cannot enforce the
 * size (rootless, a storage that predates the image), the storage is a plain directory, as it
 * always was. */
#include "config.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "kpa/process.h"
#include "store-internal.h"
#include "util.h"

extern char **environ;

/* The mke2fs type for FS_TYPE (the manifest's fsType, maybe NULL). */
static const char *mkfs_type(const char *fs_type)
{
        if (fs_type && (streq(fs_type, "ext2") || streq(fs_type, "ext3")))
                return fs_type;
        return "ext4";
}

const char *storage_image_fs_type(const char *fs_type)
{
        return mkfs_type(fs_type);
}

/* Run mke2fs on PATH; its error output, if any, into the message. */
static int run_mke2fs(const char *path, const char *type, uid_t uid, kpa_error *err)
{
        /* nodiscard: keep the blocks that fallocate reserved; no lazy
         * init: the inode tables and journal are written now, not by the
         * kernel in the background of the first mounts (which a kept file
         * system, storage-keep.c, would do after its instance) */
        char owner[96];
        snprintf(owner, sizeof(owner),
                 "root_owner=%u:%u,nodiscard,lazy_itable_init=0,lazy_journal_init=0",
                 (unsigned)uid, (unsigned)uid);
        const char *argv[] = {"mke2fs", "-q",  "-F", "-t",          type, "-m", "0",
                              "-E",     owner, "-L", "kpa-storage", path, NULL};
        int out[2];
        if (pipe2(out, O_CLOEXEC) < 0)
                return kpa_error_set_errno(err, errno, "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, out[1], 2);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        static char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
        pid_t pid;
        int r = posix_spawnp(&pid, "mke2fs", &fa, NULL, (char *const *)argv, env);
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        _cleanup_close_ int rd = out[0];
        if (r != 0)
                return kpa_error_set_errno(err, r,
                                           "cannot run mke2fs to make the private storage (it "
                                           "comes with Debian's package e2fsprogs)");
        _cleanup_free_ char *text = NULL;
        (void)kpa_read_fd(rd, 4096, &text, NULL);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return kpa_error_set_errno(err, errno, "waitpid mke2fs");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                char *nl = text ? strchr(text, '\n') : NULL;
                if (nl)
                        *nl = '\0';
                return kpa_error_set(err, EIO, "mke2fs -t %s failed%s%s", type,
                                     text && *text ? ": " : "", text ? text : "");
        }
        return 0;
}

int storage_image_create(kpa_store *s, const char *app_id, uint64_t size_mb, const char *fs_type,
                         uid_t uid, kpa_error *err)
{
        if (size_mb == 0 || size_mb > (1u << 20))
                return kpa_error_set(err, EINVAL,
                                     "%s: privateStorage.size %llu MB is not a size kpa can give",
                                     app_id, (unsigned long long)size_mb);
        if (mkdirat(s->root_fd, "images", 0700) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "store %s: cannot create images/", s->root);
        _cleanup_free_ char *tmp = kpa_xasprintf("images/.%s.img.tmp", app_id);
        _cleanup_free_ char *name = kpa_xasprintf("images/%s.img", app_id);
        _cleanup_free_ char *tmp_path = kpa_xasprintf("%s/%s", s->root, tmp);
        (void)unlinkat(s->root_fd, tmp, 0);
        _cleanup_close_ int fd = kpa_open_beneath(s->root_fd, tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
                return kpa_error_set_errno(err, -fd, "store %s: cannot create %s", s->root, tmp);
        off_t bytes = (off_t)(size_mb << 20);
        /* the space is the package's from now on: a full disk fails the
         * install, never a write of the application later */
        int r = fallocate(fd, 0, 0, bytes);
        if (r < 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
                r = ftruncate(fd, bytes);
        if (r < 0) {
                int e = errno;
                (void)unlinkat(s->root_fd, tmp, 0);
                return kpa_error_set_errno(err, e,
                                           "%s: cannot make its %llu MB private storage in %s",
                                           app_id, (unsigned long long)size_mb, s->root);
        }
        r = run_mke2fs(tmp_path, mkfs_type(fs_type), uid, err);
        /* mke2fs zeroes some ranges by punching holes where the file system
         * has no ZERO_RANGE (tmpfs): reserve them again */
        if (r == 0 && fallocate(fd, 0, 0, bytes) < 0 && errno != EOPNOTSUPP && errno != ENOSYS)
                r = kpa_error_set_errno(err, errno, "%s: cannot make its %llu MB private storage in %s",
                                        app_id, (unsigned long long)size_mb, s->root);
        if (r == 0 && fsync(fd) < 0)
                r = kpa_error_set_errno(err, errno, "fsync %s", tmp_path);
        if (r == 0 && renameat(s->root_fd, tmp, s->root_fd, name) < 0)
                r = kpa_error_set_errno(err, errno, "store %s: cannot rename %s", s->root, tmp);
        if (r < 0) {
                (void)unlinkat(s->root_fd, tmp, 0);
                return kpa_error_prefix(err, "%s: private storage", app_id);
        }
        return 0;
}

/* The image's fd (O_RDWR), or -ENOENT when the package has none. */
static int open_image(kpa_store *s, const char *app_id)
{
        _cleanup_free_ char *name = kpa_xasprintf("images/%s.img", app_id);
        return kpa_open_beneath(s->root_fd, name, O_RDWR, 0);
}

bool storage_image_exists(kpa_store *s, const char *app_id, uint64_t *bytes)
{
        _cleanup_free_ char *name = kpa_xasprintf("images/%s.img", app_id);
        _cleanup_close_ int fd = kpa_open_beneath(s->root_fd, name, O_PATH, 0);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        if (bytes)
                *bytes = (uint64_t)st.st_size;
        return true;
}

/* Is loop device N backed by the file IMG? Its device and inode must be
 * IMG's, and its backing file not a deleted one: a loop device that a
 * purge could not detach yet (an instance still used it) keeps a deleted
 * image whose inode number a new image may get. */
static bool loop_backs(int n, const struct stat *img)
{
        char dev[32];
        snprintf(dev, sizeof(dev), "/dev/loop%d", n);
        _cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
        struct loop_info64 info = {0}; /* (zeroed for valgrind, which knows no loop ioctl) */
        if (fd < 0 || ioctl(fd, LOOP_GET_STATUS64, &info) < 0 || info.lo_device != img->st_dev ||
            info.lo_inode != img->st_ino)
                return false;
        char path[64];
        snprintf(path, sizeof(path), "/sys/block/loop%d/loop/backing_file", n);
        _cleanup_free_ char *backing = NULL;
        size_t len = 0;
        if (kpa_read_file_at(AT_FDCWD, path, 8192, &backing, &len) < 0)
                return true; /* no sysfs to ask: trust the inode */
        while (len > 0 && backing[len - 1] == '\n')
                backing[--len] = '\0';
        static const char deleted[] = " (deleted)";
        return !(len >= sizeof(deleted) - 1 &&
                 streq(backing + len - (sizeof(deleted) - 1), deleted));
}

/* The loop device (its number) whose backing file is IMG, or -1. */
static int find_loop(const struct stat *img)
{
        _cleanup_closedir_ DIR *d = opendir("/sys/block");
        struct dirent *de;
        while (d && (de = readdir(d))) {
                int n;
                if (sscanf(de->d_name, "loop%d", &n) == 1 && loop_backs(n, img))
                        return n;
        }
        return -1;
}

/* The number of the loop device that backed the image last, kept on it
 * as a hint (a trusted.* attribute: only root reads or writes those), so
 * that a start finds its loop device without probing every one (with tens
 * of them, most of a millisecond). The hint is checked as a scan's find
 * is; a stale one costs one probe more. */
#define LOOP_HINT "trusted.kpa.loop"

static int hinted_loop(int img_fd, const struct stat *img)
{
        char v[16];
        ssize_t len = fgetxattr(img_fd, LOOP_HINT, v, sizeof(v) - 1);
        if (len <= 0 || len > 9)
                return -1;
        int n = 0;
        for (ssize_t i = 0; i < len; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return -1;
                n = n * 10 + (v[i] - '0');
        }
        return loop_backs(n, img) ? n : -1;
}

static void hint_loop(int img_fd, int n)
{
        char v[16];
        int len = snprintf(v, sizeof(v), "%d", n);
        (void)fsetxattr(img_fd, LOOP_HINT, v, (size_t)len, 0); /* no xattrs: no hint */
}

/* An open loop device for the image IMG_FD (IMG its stat): the one it has
 * already, or a free one attached now. Its name into DEV. */
static int open_loop(int img_fd, const struct stat *img, const char *img_path, char dev[static 32],
                     kpa_error *err)
{
        int n = hinted_loop(img_fd, img);
        if (n < 0 && (n = find_loop(img)) >= 0)
                hint_loop(img_fd, n);
        if (n >= 0) {
                snprintf(dev, 32, "/dev/loop%d", n);
                int fd = open(dev, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return kpa_error_set_errno(err, errno, "cannot open %s", dev);
                return fd;
        }
        _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return kpa_error_set_errno(err, errno,
                                           "cannot open /dev/loop-control: a private storage with "
                                           "a size is a file system image, which needs loop "
                                           "devices (modprobe loop)");
        for (int tries = 0; tries < 8; tries++) {
                n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return kpa_error_set_errno(err, errno, "no free loop device");
                snprintf(dev, 32, "/dev/loop%d", n);
                _cleanup_close_ int fd = open(dev, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return kpa_error_set_errno(err, errno, "cannot open %s", dev);
                struct loop_config cfg = {.fd = (unsigned)img_fd};
                snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s",
                         img_path);
                if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
                        hint_loop(img_fd, n);
                        return TAKE_FD(fd);
                }
                if (errno != EBUSY) /* EBUSY: another process took it first */
                        return kpa_error_set_errno(err, errno, "cannot attach %s to %s", img_path,
                                                   dev);
        }
        return kpa_error_set(err, EBUSY, "cannot attach %s: every free loop device was taken",
                             img_path);
}

int storage_image_open_mount(kpa_store *s, const char *app_id, int *mount_fd, kpa_error *err)
{
        *mount_fd = -1;
        unsigned linger_s;
        if (storage_keep_linger(&linger_s, err) < 0)
                return -EINVAL;
        _cleanup_close_ int img = open_image(s, app_id);
        if (img == -ENOENT)
                return 0; /* a plain directory */
        if (img < 0)
                return kpa_error_set_errno(err, -img, "%s: %s/images/%s.img", app_id, s->root,
                                           app_id);
        /* kept mounted by a keeper: a mount of its superblock, taken from
         * it (no lock needed: nothing is mounted or attached) */
        int kept = storage_keep_clone(img);
        if (kept >= 0) {
                kpa_trace("storage: kept mount cloned");
                *mount_fd = kept;
                return 0;
        }
        struct stat st;
        if (fstat(img, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s: private storage image", app_id);
        /* two starts at once: the second finds the loop device of the first.
         * (The lock is on this open of the image; the loop device gets an
         * open of its own, which it keeps, and a lock on it would stay.) */
        while (flock(img, LOCK_EX) < 0)
                if (errno != EINTR)
                        return kpa_error_set_errno(err, errno, "%s: lock its private storage",
                                                   app_id);
        _cleanup_free_ char *img_path = kpa_xasprintf("%s/images/%s.img", s->root, app_id);
        _cleanup_close_ int backing = open_image(s, app_id);
        if (backing < 0)
                return kpa_error_set_errno(err, -backing, "%s: %s", app_id, img_path);
        char dev[32];
        _cleanup_close_ int loop = open_loop(backing, &st, img_path, dev, err);
        if (loop < 0)
                return kpa_error_prefix(err, "%s: private storage", app_id);
        /* a detached mount: nothing appears on the host; the sandbox moves
         * it to /storage. The same device mounted again (a second instance)
         * gets the same superblock. */
        _cleanup_close_ int fs = (int)syscall(SYS_fsopen, "ext4", FSOPEN_CLOEXEC);
        if (fs < 0)
                return kpa_error_set_errno(err, errno, "%s: fsopen ext4", app_id);
        if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
            syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "errors", "remount-ro", 0) < 0 ||
            syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return kpa_error_set_errno(err, errno,
                                           "%s: cannot mount its private storage %s (%s)", app_id,
                                           img_path, dev);
        int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                               MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (mnt < 0)
                return kpa_error_set_errno(err, errno, "%s: cannot mount its private storage %s",
                                           app_id, img_path);
        /* the root is the package's (mke2fs root_owner); lost+found is no
         * business of the application's */
        char self[64];
        snprintf(self, sizeof(self), "/proc/self/fd/%d", mnt);
        struct stat root;
        if (stat(self, &root) == 0 && (root.st_mode & 07777) != 0700)
                (void)chmod(self, 0700);
        (void)unlinkat(mnt, "lost+found", AT_REMOVEDIR);
        /* the superblock stays for the next start (storage-keep.c): the
         * keeper gets the image by BACKING, an open of its own, not IMG,
         * whose flock it would otherwise hold */
        storage_keep(backing, mnt, app_id, linger_s);
        *mount_fd = mnt;
        return 0;
}

int kpa_store_release_storage(kpa_store *s, const char *app_id, kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        if (!store_app_installed(s, app_id) && !storage_image_exists(s, app_id, NULL))
                return kpa_error_set(err, ENOENT, "%s is not installed in %s", app_id, s->root);
        return storage_image_release(s, app_id, err);
}

int storage_image_release(kpa_store *s, const char *app_id, kpa_error *err)
{
        _cleanup_close_ int img = open_image(s, app_id);
        if (img < 0)
                return 0; /* no image, no keeper */
        int q = storage_keep_release(img, err);
        return q < 0 ? kpa_error_prefix(err, "%s: private storage", app_id) : 0;
}

void storage_image_remove(kpa_store *s, const char *app_id)
{
        /* detach its loop device: at once, or (the kernel's LOOP_CLR_FD on a
         * device in use) when an instance that still runs ends */
        _cleanup_close_ int img = open_image(s, app_id);
        kpa_error ignored;
        if (img >= 0)
                (void)storage_keep_release(img, &ignored); /* else the device stays busy */
        struct stat st;
        int n = img >= 0 && fstat(img, &st) == 0 ? find_loop(&st) : -1;
        if (n >= 0) {
                char dev[32];
                snprintf(dev, sizeof(dev), "/dev/loop%d", n);
                _cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        (void)ioctl(fd, LOOP_CLR_FD, 0);
        }
        _cleanup_free_ char *name = kpa_xasprintf("images/%s.img", app_id);
        (void)unlinkat(s->root_fd, name, 0);
}
