/* kpa-execd: the supervising ExecutionManager (DESIGN.md section 6), a thin
 * command over kpa_execd_run() (kpa/execd.h), which does all the work: the
 * socket, the clients, the request table, autorun, the event loop. This
 * file parses the options into a kpa_execd_config, detaches (daemon(7)),
 * finds the socket systemd passes, logs to stderr or syslog, and tells
 * systemd (sd_notify) and the waiting parent when the service is ready. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "kpa/execd.h"
#include "kpa/package.h"
#include "kpa/process.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)

static kpa_execd_config arg;
static bool foreground;
static int readiness_fd = -1; /* the waiting parent's pipe (without --foreground) */

/* ---- logging ---- */

static void log_message(kpa_execd_log_level level, const char *msg, void *userdata)
{
        (void)userdata;
        static const char *const names[] = {"error", "warning", "info", "debug"};
        if (foreground) {
                /* sd-daemon(3) prefixes: journald reads the priority */
                static const int prio[] = {3, 4, 6, 7};
                fprintf(stderr, "<%d>kpa-execd: %s: %s\n", prio[level], names[level], msg);
        } else {
                static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
                syslog(prio[level], "%s", msg);
        }
}

static void logf_(kpa_execd_log_level level, const char *fmt, ...) _printf_(2, 3);
static void logf_(kpa_execd_log_level level, const char *fmt, ...)
{
        if (level > arg.log_level)
                return;
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_message(level, msg, NULL);
}
#define log_error(...) logf_(KPA_EXECD_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) logf_(KPA_EXECD_LOG_WARNING, __VA_ARGS__)

/* ---- systemd: sd_notify and socket activation, without libsystemd ---- */

static void sd_notify_(const char *state)
{
        const char *path = getenv("NOTIFY_SOCKET");
        if (!path || (path[0] != '/' && path[0] != '@') ||
            strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t len = strlen(path);
        memcpy(sa.sun_path, path, len);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
}

/* LISTEN_FDS for this process: the first passed fd, if it is a listening
 * SOCK_SEQPACKET socket. The variables are removed so that no instance
 * sees them. */
static int socket_from_systemd(void)
{
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        int fd = -1;
        if (pid && fds && strtol(pid, NULL, 10) == (long)getpid() && strtol(fds, NULL, 10) >= 1) {
                int type = 0, listening = 0;
                socklen_t l1 = sizeof(type), l2 = sizeof(listening);
                if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &l1) == 0 && type == SOCK_SEQPACKET &&
                    getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l2) == 0 && listening) {
                        fd = 3;
                        fcntl(fd, F_SETFD, FD_CLOEXEC);
                } else {
                        log_warning("LISTEN_FDS: fd 3 is not a listening SOCK_SEQPACKET socket; "
                                    "ignoring it");
                }
        }
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return fd;
}

/* ---- the socket ---- */

/* ---- main ---- */

static void usage(void)
{
        printf("Usage: %1$s [OPTIONS]\n"
               "\n"
               "Supervise sandboxed processes for their whole life: kpa-execd starts run\n"
               "configurations of installed applications on request (kpa-run --detach, or\n"
               "libkpa's kpa_control_connect), autoruns those marked \"autorun\", restarts\n"
               "them as their KPA_restart extension says, captures their output, and keeps\n"
               "their state across its own restarts. It is normally run by systemd\n"
               "(kpa-execd.service, kpa-execd.socket).\n"
               "\n"
               "Options:\n"
               "  -s, --socket PATH        listen on PATH (default: $KPA_EXECD_SOCKET, else\n"
               "                           %2$s); a socket passed by systemd wins\n"
               "  -r, --root DIR           the store (default: %3$s)\n"
               "      --state-dir DIR      records, exit statuses and logs (default: %4$s)\n"
               "  -f, --foreground         stay in the foreground and log to stderr\n"
               "                           (default: detach and log to syslog)\n"
               "      --log-level LEVEL    error, warning, info (default) or debug\n"
               "      --no-autorun         do not start autorun run configurations\n"
               "      --keep-ended N       keep the contexts of N ended processes of each owner\n"
               "                           (default 1000)\n"
               "      --keep-ended-time S  and for at most S seconds (default 3600)\n"
               "      --log-max SIZE       rotate a process's log at SIZE (K, M, G; default 1M)\n"
               "      --group GROUP        members of GROUP may start processes (default kpa)\n"
               "      --max-connections N  connections from users other than root, in all\n"
               "                           (default %5$d, at most half the open-file limit)\n"
               "      --max-connections-per-user N\n"
               "                           connections of one user other than root (default %6$d)\n"
               "      --idle-timeout S     close a connection of a user other than root that\n"
               "                           waits for nothing after S seconds of silence\n"
               "                           (default %7$d)\n"
               "      --cgroup-driver auto|systemd|cgroupfs\n"
               "                           who makes the processes' cgroups: systemd (a\n"
               "                           transient scope each, in kpa.slice) or kpa-execd\n"
               "                           (cgroupfs, below its own cgroup); auto (default,\n"
               "                           or $KPA_CGROUP_DRIVER): systemd when it is PID 1\n"
               "      --on-exit keep|stop|auto\n"
               "                           what SIGTERM and SIGINT do to the processes: keep =\n"
               "                           exit and leave them running, for the next kpa-execd\n"
               "                           to adopt; stop = stop them all, then exit; auto\n"
               "                           (default) = keep when systemd is PID 1, else stop\n"
               "      --netns-pool N       keep N network namespaces made ahead of time, for\n"
               "                           starts that need a new one (root; 0 to %8$d,\n"
               "                           default %9$d; 0: none)\n"
               "  -h, --help               show this help and exit\n"
               "  -V, --version            show the version and exit\n"
               "\n"
               "Users other than root may not pass the environment variables the dynamic\n"
               "loader and the C library read (LD_*, MALLOC_*, GCONV_PATH, TMPDIR...), nor\n"
               "raise a package's limits.\n"
               "\n"
               "Signals: SIGTERM or SIGINT with --on-exit keep: exit, leaving every process\n"
               "running (systemctl restart kpa-execd keeps them; kpa-run --stop-all stops\n"
               "them). With --on-exit stop: stop every process (Normal stop) and then exit;\n"
               "a second one stops them Forced. SIGHUP starts the autorun run configurations\n"
               "of packages installed since.\n"
               "\n"
               "See kpa-execd(8).\n",
               cli_program(), KPA_EXECD_SOCKET_DEFAULT, kpa_store_default_root(NULL),
               KPA_EXECD_STATE_DIR_DEFAULT, KPA_EXECD_MAX_CONNECTIONS_DEFAULT,
               KPA_EXECD_MAX_CONNECTIONS_PER_USER_DEFAULT, KPA_EXECD_IDLE_TIMEOUT_DEFAULT,
               KPA_EXECD_NETNS_POOL_MAX, KPA_EXECD_NETNS_POOL_DEFAULT);
}

enum {
        OPT_STATE_DIR = 0x100,
        OPT_LOG_LEVEL,
        OPT_NO_AUTORUN,
        OPT_KEEP_ENDED,
        OPT_KEEP_ENDED_TIME,
        OPT_LOG_MAX,
        OPT_GROUP,
        OPT_MAX_CONNECTIONS,
        OPT_MAX_PER_USER,
        OPT_IDLE_TIMEOUT,
        OPT_ON_EXIT,
        OPT_CGROUP_DRIVER,
        OPT_NETNS_POOL
};

static int parse_uint(const char *s, const char *what, unsigned *out)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || end == s || s[0] == '-' || v == 0 || v > 100000000UL)
                return cli_usage_error("%s: \"%s\" is not a positive number", what, s);
        *out = (unsigned)v;
        return 0;
}

static int handle_option(int c, const char *optarg_)
{
        switch (c) {
        case 's': arg.socket_path = optarg_; return 0;
        case 'r': arg.root = optarg_; return 0;
        case OPT_STATE_DIR:
                if (optarg_[0] != '/')
                        return cli_usage_error("--state-dir: \"%s\" is not an absolute path",
                                               optarg_);
                arg.state_dir = optarg_;
                return 0;
        case 'f': foreground = true; return 0;
        case OPT_LOG_LEVEL: {
                static const char *const levels[] = {"error", "warning", "info", "debug"};
                for (size_t k = 0; k < ELEMENTSOF(levels); k++)
                        if (streq(optarg_, levels[k])) {
                                arg.log_level = (kpa_execd_log_level)k;
                                return 0;
                        }
                return cli_usage_error("--log-level: \"%s\" is not one of error, warning, info, "
                                       "debug",
                                       optarg_);
        }
        case OPT_NO_AUTORUN: arg.autorun = false; return 0;
        case OPT_KEEP_ENDED: return parse_uint(optarg_, "--keep-ended", &arg.keep_ended);
        case OPT_KEEP_ENDED_TIME:
                return parse_uint(optarg_, "--keep-ended-time", &arg.keep_ended_s);
        case OPT_LOG_MAX:
                if (cli_parse_size(optarg_, &arg.log_max) < 0 || arg.log_max < 4096)
                        return cli_usage_error("--log-max: \"%s\" is not a size of at least 4K",
                                               optarg_);
                return 0;
        case OPT_GROUP: arg.group = optarg_; return 0;
        case OPT_MAX_CONNECTIONS:
                return parse_uint(optarg_, "--max-connections", &arg.max_connections);
        case OPT_MAX_PER_USER:
                return parse_uint(optarg_, "--max-connections-per-user",
                                  &arg.max_connections_per_user);
        case OPT_IDLE_TIMEOUT: return parse_uint(optarg_, "--idle-timeout", &arg.idle_timeout_s);
        case OPT_ON_EXIT:
                if (streq(optarg_, "keep"))
                        arg.on_exit = KPA_EXECD_ON_EXIT_KEEP;
                else if (streq(optarg_, "stop"))
                        arg.on_exit = KPA_EXECD_ON_EXIT_STOP;
                else if (streq(optarg_, "auto"))
                        arg.on_exit = KPA_EXECD_ON_EXIT_AUTO;
                else
                        return cli_usage_error("--on-exit: \"%s\" is not one of keep, stop, auto",
                                               optarg_);
                return 0;
        case OPT_NETNS_POOL: {
                char *end;
                errno = 0;
                unsigned long v = strtoul(optarg_, &end, 10);
                if (errno || *end || end == optarg_ || optarg_[0] == '-' ||
                    v > KPA_EXECD_NETNS_POOL_MAX)
                        return cli_usage_error("--netns-pool: \"%s\" is not a number from 0 to %d",
                                               optarg_, KPA_EXECD_NETNS_POOL_MAX);
                arg.netns_pool = (unsigned)v;
                return 0;
        }
        case OPT_CGROUP_DRIVER: {
                kpa_error err;
                if (kpa_cgroup_driver_set(optarg_, &err) < 0)
                        return cli_usage_error("--cgroup-driver: %s", err.message);
                return 0;
        }
        case 'h': usage(); return -1;
        case 'V':
                printf("kpa-execd %s (protocol %d)\n", PACKAGE_VERSION,
                       kpa_execd_protocol_version());
                return -1;
        }
        return EXIT_USAGE;
}

/* Without --foreground: fork, and let the parent exit once the child is
 * ready (or with the child's failure), as daemon(7) describes. */
static int daemonize(int *ready_fd)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid > 0) {
                close(p[1]);
                char status = 1;
                ssize_t n = read(p[0], &status, 1);
                _exit(n == 1 && status == 0 ? 0 : 1);
        }
        close(p[0]);
        setsid();
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
                if (null > 2)
                        close(null);
        }
        openlog("kpa-execd", LOG_PID, LOG_DAEMON);
        *ready_fd = p[1];
        return 0;
}

/* kpa_execd_run()'s READY=1 and STOPPING=1: to systemd, and READY=1 to
 * the parent that waits for it */
static void notify(const char *state, void *userdata)
{
        (void)userdata;
        sd_notify_(state);
        if (streq(state, "READY=1") && readiness_fd >= 0) {
                char ok = 0;
                (void)!write(readiness_fd, &ok, 1);
                closep(&readiness_fd);
                readiness_fd = -1;
        }
}

static int run(void)
{
        if (!foreground && daemonize(&readiness_fd) < 0) {
                cli_error("cannot detach: %s", strerror(errno));
                return 1;
        }
        arg.log = log_message;
        arg.notify = notify;
        arg.listen_fd = socket_from_systemd();
        kpa_error err;
        if (kpa_execd_run(&arg, &err) < 0) {
                log_error("%s", err.message);
                return 1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        cli_init("kpa-execd");
        kpa_execd_config_init(&arg);
        static const struct option options[] = {
                {"socket", required_argument, NULL, 's'},
                {"root", required_argument, NULL, 'r'},
                {"state-dir", required_argument, NULL, OPT_STATE_DIR},
                {"foreground", no_argument, NULL, 'f'},
                {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
                {"no-autorun", no_argument, NULL, OPT_NO_AUTORUN},
                {"keep-ended", required_argument, NULL, OPT_KEEP_ENDED},
                {"keep-ended-time", required_argument, NULL, OPT_KEEP_ENDED_TIME},
                {"log-max", required_argument, NULL, OPT_LOG_MAX},
                {"group", required_argument, NULL, OPT_GROUP},
                {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
                {"max-connections-per-user", required_argument, NULL, OPT_MAX_PER_USER},
                {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
                {"on-exit", required_argument, NULL, OPT_ON_EXIT},
                {"cgroup-driver", required_argument, NULL, OPT_CGROUP_DRIVER},
                {"netns-pool", required_argument, NULL, OPT_NETNS_POOL},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {NULL, 0, NULL, 0},
        };
        int r = cli_parse_options(argc, argv, "s:r:fhV", options, handle_option);
        if (r < 0)
                return 0; /* --help, --version */
        if (r > 0)
                return r;
        if (optind < argc)
                return cli_usage_error("unexpected argument \"%s\"", argv[optind]);
        if (geteuid() != 0) {
                cli_error("must run as root (it creates namespaces and cgroups and "
                          "changes uids)");
                return 1;
        }
        /* the cgroup driver checked, and with cgroup v2 without systemd
         * into a leaf of its cgroup, before it forks (the process that
         * waits for readiness leaves too) */
        kpa_error err;
        if (kpa_execd_prepare(&err) < 0) {
                cli_error("%s", err.message);
                return 1;
        }
        return run();
}
