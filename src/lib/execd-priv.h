/* execd-priv.h: what the two files of the kpa-execd service share
 * (execd.c: the socket, the clients, autorun, declared sockets, the netns
 * pool, the loop and kpa_execd_run(); execd-requests.c: the request table,
 * its handlers and the controller's events). Private to them. */
#ifndef KPA_EXECD_PRIV_H
#define KPA_EXECD_PRIV_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <json-c/json.h>

#include "cgroup.h"
#include "handles.h"
#include "json-fields.h"
#include "kpa/execd.h"
#include "kpa/manifest.h"
#include "kpa/package.h"
#include "kpa/process.h"
#include "process-internal.h"
#include "protocol.h"
#include "sandbox.h"
#include "sockets.h"
#include "store-internal.h"
#include "util.h"

#define GROUP_NAME KPA_EXECD_GROUP_DEFAULT
#define NETNS_POOL_MAX KPA_EXECD_NETNS_POOL_MAX
#define NETNS_QUIET_MS 2        /* the pool refills after this long without events */
#define WAITS_MAX 4096
#define CPU_WEIGHT_KERNEL_DEFAULT 100

/* How long a SIGTERM with --on-exit keep waits for the starts under way to
 * reach Running (or fail) before it exits anyway, so that the clients that
 * asked for them get their replies rather than a closed connection. */
#define KEEP_SETTLE_MS 10000

enum { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* --on-exit: what SIGTERM and SIGINT do to the instances */
typedef enum on_exit_mode { ON_EXIT_AUTO, ON_EXIT_KEEP, ON_EXIT_STOP } on_exit_mode;

typedef struct client {
        int fd;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        bool may_start; /* root, or a member of group kpa */
        bool subscribed;
        /* dropped: its fd is closed and nothing is sent to it any more, but
         * it stays allocated until the loop's round is over, since a
         * request handler may still hold it (a failed send in a callback
         * of kpa_control_dispatch drops the client the handler serves) */
        bool dead;
        unsigned pending;   /* starts and waits whose reply is still due */
        uint64_t active_ms; /* its last request, or the last due reply */
        /* ListProcesses in pages: the tokens it may see, taken at the first
         * page, and how far the pages got */
        kpa_token *list;
        size_t n_list, list_pos;
        struct client *next;
} client;

typedef struct pending_wait {
        client *c;
        int64_t id;
        kpa_token token;
        uint64_t deadline_ms; /* 0: none */
        struct pending_wait *next;
} pending_wait;

/* A StartProcess whose reply waits for Running (or the failure). */
typedef struct pending_start {
        client *c;
        int64_t id;
        kpa_token token;
        struct pending_start *next;
} pending_start;

/* kpa_execd_config, as the code below has always read it */
typedef struct execd_args {
        const char *socket_path;
        const char *root;
        const char *state_dir;
        int log_level;
        kpa_execd_log_fn log;
        void *log_userdata;
        kpa_execd_notify_fn notify;
        void *notify_userdata;
        bool autorun;
        unsigned keep_ended;
        unsigned keep_ended_s;
        uint64_t log_max;
        const char *group;
        unsigned max_clients;
        unsigned max_per_user;
        unsigned idle_s;
        unsigned netns_pool;
        on_exit_mode on_exit;
} execd_args;
extern execd_args arg;

/* At most one message a second of a kind that a client can cause at will. */
typedef struct ratelimit {
        uint64_t last_ms;
        bool used;
        unsigned suppressed; /* held back since the last one that went out */
} ratelimit;

typedef struct execd_state {
        kpa_control *ctl;
        int epfd;
        int listen_fd;
        int signal_fd;
        bool socket_activated;
        client *clients;
        size_t n_clients;
        pending_wait *waits;
        size_t n_waits;
        pending_start *starts;
        bool stopping; /* SIGTERM: stop everything (or keep it), then exit */
        bool forced;   /* a second SIGTERM */
        /* --on-exit resolved: leave the instances running on SIGTERM */
        bool keep;
        uint64_t keep_deadline_ms; /* keep: exit by then, starts settled or not */
        gid_t kpa_gid;
        bool have_kpa_gid;
        size_t max_clients;        /* arg.max_clients, within the fd limit */
        int reserve_fd;            /* given up to accept when out of fds */
        uint64_t listen_resume_ms; /* listening paused until then; 0: not */
        ratelimit rl_accept, rl_refuse, rl_record;
        char buf[KPA_MSG_MAX + 1];
} execd_state;
extern execd_state d;

void logf_(int level, const char *fmt, ...) _printf_(2, 3);
#define log_error(...) logf_(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) logf_(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) logf_(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) logf_(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* execd.c */
uint64_t now_ms(void);
void pending_done(client *c);
void drop_client(client *c);
int autorun_package(const char *pkg_id);
/* execd-requests.c */
bool is_live_state(kpa_process_state s);
void reply_context(client *c, int64_t id, int err, const kpa_token *t,
                   const kpa_process_context *ctx);
void client_readable(client *c);
void on_state(void *userdata, const kpa_token *t, const kpa_process_context *ctx);

#endif
