/* util.h: the error helpers, allocation, fd and file helpers shared by all
 * of libkpa, and (from src/common/cleanup.h) the cleanup idiom and the
 * ownership macros. Nothing here knows about packages or processes. */
#ifndef KPA_UTIL_H
#define KPA_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include "cleanup.h"
#include "kpa/error.h"

/* qsort() comparison of two char * (strcmp order). */
int kpa_strcmp_ptr(const void *a, const void *b);

/* Fill ERR (may be NULL) with CODE (a positive errno) and a formatted
 * message; return -CODE so that callers can write
 *     return kpa_error_set(err, EINVAL, "...");            */
int kpa_error_set(kpa_error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Same, with ": strerror(CODE)" appended. */
int kpa_error_set_errno(kpa_error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Put "PREFIX: " in front of ERR's message; return -err->code. */
int kpa_error_prefix(kpa_error *err, const char *fmt, ...) _printf_(2, 3);
/* All three always return a negative errno. Saying so where they are called
 * lets the compiler and clang's static analyzer see that a path which
 * returns their value is an error path (without it, the analyzer walks
 * "error" paths as if they had succeeded and reports false NULL uses). */
static inline int kpa_negative_(int r)
{
        if (r >= 0)
                __builtin_unreachable();
        return r;
}
#define kpa_error_set(...) kpa_negative_(kpa_error_set(__VA_ARGS__))
#define kpa_error_set_errno(...) kpa_negative_(kpa_error_set_errno(__VA_ARGS__))
#define kpa_error_prefix(...) kpa_negative_(kpa_error_prefix(__VA_ARGS__))

/* Versioned public structs: their first member is size_t struct_size, which
 * their _init function sets to sizeof. A caller built against an older
 * header passes a shorter one; the library reads and writes only the part
 * that struct_size covers.
 * kpa_struct_check: 0 when S's struct_size is one this library can use
 * (from sizeof(size_t) to FULL); else -EINVAL with ERR naming NAME (the
 * struct's type) and the value.
 * kpa_struct_in: check SRC, then copy the part of it that its struct_size
 * covers over DST (FULL bytes holding the defaults); DST's own struct_size
 * stays FULL.
 * kpa_struct_out: copy the first OUT->struct_size bytes of FULL (a whole
 * struct the library filled) to OUT, keeping OUT's struct_size. */
int kpa_struct_check(const void *s, size_t full, const char *name, kpa_error *err);
int kpa_struct_in(void *dst, const void *src, size_t full, const char *name, kpa_error *err);
void kpa_struct_out(void *out, const void *full);

/* Allocation that never returns NULL: an out-of-memory ends the process,
 * the way most of the field handles it (glib, systemd's xmalloc users). */
void *kpa_xmalloc(size_t n);
void *kpa_xcalloc(size_t n, size_t m);
void *kpa_xrealloc(void *p, size_t n);
char *kpa_xstrdup(const char *s);
char *kpa_xstrndup(const char *s, size_t n);
char *kpa_xasprintf(const char *fmt, ...) _printf_(1, 2);

/* Write all of BUF to FD, retrying on EINTR and short writes. */
int kpa_write_all(int fd, const void *buf, size_t len);
/* Read FD to its end into a NUL-terminated buffer of at most MAX bytes;
 * -EFBIG when there is more. */
int kpa_read_fd(int fd, size_t max, char **out, size_t *out_len);
/* Open PATH below DIRFD without following a symlink in any of its
 * components and without leaving DIRFD ("..", an absolute PATH: -EXDEV;
 * a symlink: -ELOOP): openat2() with RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS, or a walk of O_NOFOLLOW opens on kernels without
 * it. FLAGS as for openat(); O_CLOEXEC is added. */
int kpa_open_beneath(int dirfd, const char *path, int flags, mode_t mode);
/* Read a whole file into a NUL-terminated buffer of at most MAX bytes
 * (-EFBIG when larger). A relative PATH is opened with kpa_open_beneath()
 * (no symlink followed anywhere on it), an absolute one with O_NOFOLLOW. */
int kpa_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *out_len);
/* Close each of the N FDS that is open (>= 0) and set it to -1. */
void kpa_close_fds(int *fds, size_t n);
/* Most fds one message carries (kpa_send_fds, kpa_recv_fds). */
#define KPA_FDS_MAX 64
struct iovec;
/* Send IOV (N_IOV parts) as one message on the socket SOCK, with N_FDS
 * (at most KPA_FDS_MAX) fds as SCM_RIGHTS; no SIGPIPE, EINTR retried.
 * Returns the bytes sent or -errno. */
ssize_t kpa_send_fds(int sock, const struct iovec *iov, size_t n_iov, const int *fds, size_t n_fds);
/* Receive one message into IOV and at most MAX_FDS fds (CLOEXEC) into FDS.
 * Returns its length (0: end of stream or an empty message) or -errno;
 * -EMSGSIZE, with every fd closed, when the data or the fds did not fit.
 * Allocates nothing (safe in a child after clone). */
ssize_t kpa_recv_fds(int sock, struct iovec *iov, size_t n_iov, int *fds, size_t max_fds,
                     size_t *n_fds);
/* Remove the tree PATH below DIRFD without following symlinks. A missing
 * PATH is not an error. */
int kpa_rm_rf_at(int dirfd, const char *path);

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks;
 * with the pid it names one process for good (pids are reused). 0 when
 * the process is gone. *ZOMBIE (may be NULL) says whether it has ended
 * and waits to be reaped (state Z or X). */
unsigned long long kpa_proc_start_time(pid_t pid, bool *zombie);

/* ps's name for a child: kpa_proc_title_prepare() in the parent (before
 * the fork or clone; it reads where the argv area is, once), then
 * kpa_proc_title_set() in the child: COMM (16 bytes at most) and TITLE,
 * its command line (cut to the area's length). */
void kpa_proc_title_prepare(void);
void kpa_proc_title_set(const char *comm, const char *title);

#endif
