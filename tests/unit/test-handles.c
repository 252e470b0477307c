/* Unit tests for handles.c: handle names, LISTEN_FDNAMES, placing the fds in
 * a child, and kpa_lookup_handle() against a synthetic environment. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "handles.h"
#include "kpa/handle.h"
#include "tap.h"
#include "util.h"

static void test_names(void)
{
        char longest[256], too_long[257];
        memset(longest, 'a', 255);
        longest[255] = '\0';
        memset(too_long, 'b', 256);
        too_long[256] = '\0';

        ok(kpa_handle_name_valid("a"), "one character is a name");
        ok(kpa_handle_name_valid("log-sink.v2_~!"), "punctuation is allowed");
        ok(kpa_handle_name_valid("with space"), "a space is printable ASCII");
        ok(kpa_handle_name_valid(longest), "255 characters are allowed");
        ok(!kpa_handle_name_valid(too_long), "256 characters are not");
        ok(!kpa_handle_name_valid(""), "the empty name is refused");
        ok(!kpa_handle_name_valid(NULL), "NULL is refused");
        ok(!kpa_handle_name_valid("a:b"), "':' is refused");
        ok(!kpa_handle_name_valid("tab\there"), "control characters are refused");
        ok(!kpa_handle_name_valid("del\x7f"), "DEL is refused");
        ok(!kpa_handle_name_valid("caf\xc3\xa9"), "non-ASCII is refused");
}

static void test_fdnames_env(void)
{
        kpa_error err;
        const char *three[] = {"a", "log sink", "c"};
        _cleanup_free_ char *env = kpa_handles_fdnames_env(three, 3, &err);
        is_str(env, "LISTEN_FDNAMES=a:log sink:c", "names joined by ':'");

        _cleanup_free_ char *none = kpa_handles_fdnames_env(NULL, 0, &err);
        is_str(none, "LISTEN_FDNAMES=", "no handles, empty list");

        const char *bad[] = {"a", "b:c"};
        kpa_error_clear(&err);
        char *r = kpa_handles_fdnames_env(bad, 2, &err);
        ok(r == NULL, "a name with ':' is refused");
        is(err.code, EINVAL, "refusal is EINVAL");
        has_str(err.message, "\"b:c\"", "message names the handle");
        has_str(err.message, "no ':'", "message names the rule");
        free(r);

        const char *empty[] = {""};
        r = kpa_handles_fdnames_env(empty, 1, &err);
        ok(r == NULL, "an empty name is refused");
        free(r);

        const char *twice[] = {"x", "y", "x"};
        kpa_error_clear(&err);
        r = kpa_handles_fdnames_env(twice, 3, &err);
        ok(r == NULL, "a name given twice is refused");
        has_str(err.message, "twice", "message says why");
        free(r);
}

/* Which file is open at FD? Compared by device and inode. */
static int fd_is(int fd, const struct stat *want)
{
        struct stat st;
        return fstat(fd, &st) == 0 && st.st_dev == want->st_dev && st.st_ino == want->st_ino;
}

static int fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }
static int fd_cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

/* The child's side of the overlap test. Sources are fds 4, 3 and 10, the
 * targets 3, 4 and 5: each handle sits where another one must go. Also
 * open: fd 5 (must be replaced), fds 7 and 20 (must be closed, even without
 * FD_CLOEXEC). Returns 0 or the number of the first check that failed. */
static int install_child(const char *dir)
{
        struct stat st[3];
        char path[4096];

        if (close_range(3, ~0U, 0) < 0)
                return 100;
        for (int i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "%s/f%d", dir, i);
                int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0 || fstat(fd, &st[i]) < 0)
                        return 101;
                int at = i == 0 ? 4 : i == 1 ? 3 : 10;
                if (fd != at && (dup2(fd, at) < 0 || close(fd) < 0))
                        return 102;
        }
        if (dup2(0, 5) < 0 || dup2(0, 7) < 0 || dup2(0, 20) < 0)
                return 103;

        int fds[] = {4, 3, 10};
        if (kpa_handles_install(fds, 3) != 0)
                return 1;
        if (!fd_is(3, &st[0]) || !fd_is(4, &st[1]) || !fd_is(5, &st[2]))
                return 2;
        if (fd_cloexec(3) || fd_cloexec(4) || fd_cloexec(5))
                return 3;
        for (int fd = 6; fd < 64; fd++)
                if (fd_open(fd))
                        return 4;
        if (!fd_open(0) || !fd_open(1) || !fd_open(2))
                return 5;

        /* Again: the same fd twice, and a source far above the range. */
        if (dup2(3, 40) < 0)
                return 104;
        int again[] = {40, 40, 4};
        if (kpa_handles_install(again, 3) != 0)
                return 6;
        if (!fd_is(3, &st[0]) || !fd_is(4, &st[0]) || !fd_is(5, &st[1]) || fd_open(40))
                return 7;

        /* No handles at all: everything above stderr goes. */
        if (kpa_handles_install(NULL, 0) != 0 || fd_open(3) || fd_open(4) || fd_open(5))
                return 8;

        int bad[] = {-1};
        if (kpa_handles_install(bad, 1) != -EBADF)
                return 9;
        return 0;
}

static void test_install(void)
{
        char dir[] = "/tmp/kpa-test-handles-XXXXXX";
        if (!ok(mkdtemp(dir) != NULL, "mkdtemp"))
                return;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
                exit(install_child(dir)); /* exit(): a coverage build writes its counters */
        int status = 0;
        ok(pid > 0 && waitpid(pid, &status, 0) == pid, "child ran");
        ok(WIFEXITED(status), "child exited");
        is(WEXITSTATUS(status), 0, "handles moved into place despite overlap (failed check)");
        kpa_rm_rf_at(AT_FDCWD, dir);
}

static void set_env(const char *pid, const char *fds, const char *names)
{
        const char *keys[] = {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"};
        const char *values[] = {pid, fds, names};
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (values[i])
                        setenv(keys[i], values[i], 1);
                else
                        unsetenv(keys[i]);
        }
}

static void test_lookup(void)
{
        char me[32];
        snprintf(me, sizeof(me), "%ld", (long)getpid());

        set_env(me, "3", "a:log sink:c");
        is(kpa_lookup_handle("a"), 3, "first handle is fd 3");
        is(kpa_lookup_handle("log sink"), 4, "second handle is fd 4");
        is(kpa_lookup_handle("c"), 5, "third handle is fd 5");
        errno = 0;
        is(kpa_lookup_handle("d"), -1, "unknown name");
        is(errno, ENOENT, "unknown name is ENOENT");
        is(kpa_lookup_handle("lo"), -1, "a prefix is not a match");
        is(kpa_lookup_handle("log sink:c"), -1, "':' in a name is refused");
        is(errno, EINVAL, "invalid name is EINVAL");
        is(kpa_lookup_handle(""), -1, "empty name is refused");
        is(errno, EINVAL, "empty name is EINVAL");
        is_str(getenv("LISTEN_FDNAMES"), "a:log sink:c", "environment left alone");
        is_str(getenv("LISTEN_FDS"), "3", "LISTEN_FDS left alone");

        set_env(me, "2", "a:b:c");
        is(kpa_lookup_handle("b"), 4, "names within LISTEN_FDS count");
        is(kpa_lookup_handle("c"), -1, "names beyond LISTEN_FDS do not");

        set_env(me, "3", "a::c");
        is(kpa_lookup_handle("c"), 5, "an empty field still takes its place");

        set_env("1", "1", "a");
        errno = 0;
        is(kpa_lookup_handle("a"), -1, "another process's LISTEN_PID");
        is(errno, ENOENT, "another process's handles are ENOENT");

        set_env(NULL, "1", "a");
        is(kpa_lookup_handle("a"), -1, "no LISTEN_PID");
        set_env(me, NULL, "a");
        is(kpa_lookup_handle("a"), -1, "no LISTEN_FDS");
        set_env(me, "1", NULL);
        is(kpa_lookup_handle("a"), -1, "no LISTEN_FDNAMES");
        set_env(me, "x1", "a");
        is(kpa_lookup_handle("a"), -1, "LISTEN_FDS not a number");
        set_env(me, "-1", "a");
        is(kpa_lookup_handle("a"), -1, "LISTEN_FDS negative");
        char plus[40];
        snprintf(plus, sizeof(plus), "+%s", me);
        set_env(plus, "1", "a");
        is(kpa_lookup_handle("a"), -1, "LISTEN_PID with a sign");
        set_env(NULL, NULL, NULL);
}

/* A directory is no handle: openat() relative to it leaves the sandbox. */
static void test_fd_check(void)
{
        kpa_error err;
        int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int path = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
        kpa_error_clear(&err);
        is(kpa_handle_fd_check(dir, "root", &err), -EISDIR, "a directory fd is refused");
        ok(strstr(err.message, "handle \"root\" is a directory") != NULL,
           "... and the message names the handle");
        is(kpa_handle_fd_check(path, "root", &err), -EISDIR, "an O_PATH directory fd too");
        is(kpa_handle_fd_check(file, "null", &err), 0, "a file is a handle");
        close(dir);
        close(path);
        close(file);
}

int main(void)
{
        test_names();
        test_fd_check();
        test_fdnames_env();
        test_install();
        test_lookup();
        return tap_done();
}
