/* run.h: what the parts of kpa-run share: the parsed command line (arg,
 * kpa-run.c), the start and the end of an instance (run-start.c), the
 * terminal relay (run-tty.c) and the calls to kpa-execd (run-control.c).
 * Private to kpa-run. */
#ifndef KPA_RUN_H
#define KPA_RUN_H

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>

#include "cleanup.h"
#include "cli.h"
#include "kpa/handle.h"
#include "kpa/instance.h"
#include "kpa/package.h"
#include "kpa/process.h"

typedef struct handle_arg {
        char *name;
        char *spec;
} handle_arg;

/* Direct mode, or one of the daemon modes (their option names). */
typedef enum run_mode {
        MODE_DIRECT = 0,
        MODE_DETACH,
        MODE_STATUS,
        MODE_STOP,
        MODE_WAIT,
        MODE_LIST,
        MODE_LOGS,
        MODE_STOP_ALL,
} run_mode;

extern const char *const mode_options[];

extern struct run_args {
        const char *root;
        const char *app_id;
        const char *run_config_id; /* NULL: the primary one */
        handle_arg *handles;
        size_t n_handles;
        const char **env;
        size_t n_env;
        const char *const *extra_args;
        size_t n_extra_args;
        kpa_start_options opts;
        bool json, quiet;
        /* the daemon modes */
        run_mode mode;
        const char *socket;     /* NULL: $KPA_EXECD_SOCKET, else the default */
        const char *token_arg;  /* --status, --stop, --wait, --logs: a token or a name */
        bool by_name;           /* token_arg is APP_ID[/RUNCONFIG], resolved by the daemon */
        kpa_token token;
        char token_str[KPA_TOKEN_STRING_MAX];
        bool force, follow, has_timeout;
        unsigned timeout_ms;
        const char *start_option; /* the last start option given, for messages */
        bool root_given;
        const char *cgroup_driver; /* --cgroup-driver (direct mode only) */
        int tty;                   /* --tty 1, --no-tty 0, neither -1 (a terminal: yes) */
        kpa_start_bind *binds;     /* --bind, --bind-ro */
        size_t n_binds;
        bool print_spec; /* --print-spec */
} arg;

/* run-tty.c: the relay of the application's terminal or pipes */
typedef struct relay_out {
        int src; /* the master or a pipe's read end; -1 once it has ended */
        int dst; /* STDOUT_FILENO or STDERR_FILENO */
} relay_out;

typedef struct tty_relay {
        bool tty;         /* SRC of out[0] and DST of the input is a pty's master */
        int in;           /* our stdin, -1 when not relayed or after its end */
        int in_dst;       /* the master or a pipe's write end; -1: none */
        relay_out out[2];
        int size_fd;      /* the terminal whose size the pty follows, or -1 */
        char buf[4096];   /* read from IN, not yet written to IN_DST */
        size_t len, off;
} tty_relay;

void restore_terminal(void);
void make_terminal_raw(void);
void suspend_self(void);
int size_terminal(void);
void copy_window_size(const tty_relay *t);
void relay_close(tty_relay *t);
void relay_output(tty_relay *t, relay_out *o);
void relay_events(const tty_relay *t, struct pollfd *pfd);
void relay_dispatch(tty_relay *t, const struct pollfd *pfd);
int relay_pipes(tty_relay *t, kpa_start_options *o);
void relay_pipes_started(tty_relay *t, kpa_start_options *o);

/* run-start.c: the start (direct mode, --detach) and the end of an instance */
bool has_ended(kpa_process_state s);
void print_json(const kpa_token *token, const kpa_process_context *ctx);
int exit_status_of(const kpa_process_context *ctx, bool stop_requested);
void report_end(const kpa_process_context *ctx);
int run(void);
int detach(void);

/* run-control.c: the calls to kpa-execd */
int connect_daemon(kpa_control **ctl);
int run_daemon_mode(void);

#endif
