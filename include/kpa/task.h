/* kpa/task.h: the lower-level task API, in the form of libkos's task.h,
 * that kpa/process.h is built on. A task is a process that has been
 * described but not started: create it from a path and arguments, hand it
 * fds under names (KosTaskTransferResource), connect it to another
 * not-yet-started task through a named channel, then run it. Once running,
 * it is an ordinary instance of its kpa_control with a token, so
 * kpa_process_get_state() and friends work on it too.
 *
 * PATH names the executable as the task sees it: "/APP_ID/bin/NAME", inside
 * an installed package, whose private storage, uid and limits the task
 * gets. Every call that can fail returns 0 or a negative errno and then
 * fills its last argument, a kpa_error (may be NULL), as kpa/process.h
 * does. */
#ifndef KPA_TASK_H
#define KPA_TASK_H

#include <kpa/process.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kpa_task kpa_task;

enum {
        KPA_TASK_HOST_NETWORK = 1u << 0, /* share the host's network namespace (needs the
                                            package's network permission granted) */
};

/* Describe a task. ARGS (may be NULL) are its arguments after argv[0];
 * ENV (may be NULL) holds "NAME=VALUE" entries added to the clean base
 * environment. Both NULL-terminated. On failure *OUT is NULL and ERR says
 * why. */
KPA_PUBLIC int kpa_task_create(kpa_control *ctl, const char *path, const char *const *args,
                               const char *const *env, unsigned flags, kpa_task **out,
                               kpa_error *err);
/* The fds that become the task's stdin, stdout and stderr (-1: /dev/null).
 * They are duplicated at run time; the caller keeps its own. */
KPA_PUBLIC int kpa_task_set_stdio(kpa_task *task, int in_fd, int out_fd, int err_fd,
                                  kpa_error *err);
/* Give the task a duplicate of FD as the handle NAME (1-255 printable ASCII,
 * no ':'). Handles arrive at fds 3, 4, ... in the order given. */
KPA_PUBLIC int kpa_task_transfer(kpa_task *task, int fd, const char *name, kpa_error *err);
/* Connect two tasks that have not started through a channel: a connected
 * SOCK_SEQPACKET socket pair, one end in each task as the handle CHANNEL. */
KPA_PUBLIC int kpa_task_connect(kpa_task *a, kpa_task *b, const char *channel, kpa_error *err);
/* Start the task. Returns 0 once it runs, with *TOKEN (may be NULL) set. */
KPA_PUBLIC int kpa_task_run(kpa_task *task, kpa_token *token, kpa_error *err);
/* A Normal stop of a running task. */
KPA_PUBLIC int kpa_task_stop(kpa_task *task, kpa_error *err);
/* Wait until the task has ended (TIMEOUT_MS -1: forever). */
KPA_PUBLIC int kpa_task_wait(kpa_task *task, int timeout_ms, kpa_process_context *out,
                             kpa_error *err);
/* A Normal stop, then wait for the end. */
KPA_PUBLIC int kpa_task_stop_and_wait(kpa_task *task, int timeout_ms, kpa_process_context *out,
                                      kpa_error *err);
/* Release the description (and its fds). A running task keeps running; its
 * token stays valid in its kpa_control. */
KPA_PUBLIC void kpa_task_put(kpa_task *task);

#ifdef __cplusplus
}
#endif
#endif
