/* kpa-run: start one run configuration of an installed application in its
 * sandbox and stay with it until it ends ("direct mode"). kpa-run is the
 * instance's parent: it passes its own stdin, stdout and stderr through (at
 * a terminal, it relays a pseudo-terminal of the sandbox's own instead),
 * turns SIGINT/SIGTERM/SIGHUP into stop requests, and exits with the
 * application's exit code. With --detach, --status, --stop, --stop-all,
 * --wait, --list or --logs it talks to kpa-execd instead, which owns the instances it
 * starts. Parsing, printing and a small poll loop only; starting, confining
 * and stopping are libkpa's (kpa/process.h, and client.h for the daemon).
 * This file parses the command line; the start and the end of an instance
 * are in run-start.c, the terminal relay in run-tty.c, the calls to
 * kpa-execd in run-control.c (run.h). */
#include "config.h"

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
#include <termios.h>
#include <time.h>


#include <sys/stat.h>

#include "cleanup.h"
#include "cli.h"
#include "kpa/handle.h"
#include "kpa/instance.h"
#include "kpa/package.h"
#include "kpa/process.h"

#define CPU_WEIGHT_MIN 1
#define CPU_WEIGHT_MAX 10000

#include "run.h"

const char *const mode_options[] = {
        [MODE_DIRECT] = "",     [MODE_DETACH] = "--detach",     [MODE_STATUS] = "--status",
        [MODE_STOP] = "--stop", [MODE_WAIT] = "--wait",         [MODE_LIST] = "--list",
        [MODE_LOGS] = "--logs", [MODE_STOP_ALL] = "--stop-all",
};

struct run_args arg = {.tty = -1};

static void usage(void)
{
        printf("Usage: %1$s [OPTIONS] APP_ID [RUN_CONFIG_ID] [-- ARGS...]\n"
               "       %1$s --detach [START OPTIONS] APP_ID [RUN_CONFIG_ID] [-- ARGS...]\n"
               "       %1$s --status INSTANCE [--json] | --stop INSTANCE [--force]\n"
               "       %1$s --stop-all [--force]\n"
               "       %1$s --wait INSTANCE [--timeout SECS] | --list [--json]\n"
               "       %1$s --logs INSTANCE [--follow]\n"
               "\n"
               "Start an installed application in its sandbox and wait until it ends.\n"
               "RUN_CONFIG_ID defaults to the package's primary run configuration; ARGS are\n"
               "appended to the run configuration's own arguments. The application shares\n"
               "the standard input, output and error of %1$s, or, at a terminal, gets a\n"
               "pseudo-terminal of its own (--tty).\n"
               "The services that it declares in usesServices are started first (in direct\n"
               "mode as part of its instance tree: they end with it) and connected to it.\n"
               "\n"
               "Options:\n"
               "  -r, --root DIR            use the store in DIR (default: $KPA_ROOT, else\n"
               "                            %2$s)\n"
               "      --handle NAME=SPEC    pass a handle called NAME (repeatable; fds 3, 4, ...\n"
               "                            in order). SPEC: fd:N, file:PATH, file+rw:PATH,\n"
               "                            file+a:PATH, listen:tcp:HOST:PORT, listen:unix:PATH,\n"
               "                            connect:tcp:HOST:PORT, connect:unix:PATH,\n"
               "                            service:RUN_CONFIG_ID (only a service that the run\n"
               "                            configuration declares in usesServices); for\n"
               "                            listen:tcp:HOST:0 the port it got is printed. The\n"
               "                            sockets the manifest declares (KPA_sockets) come first\n"
               "      --env NAME=VALUE      set an environment variable (repeatable; wins over\n"
               "                            the manifest's envVariables)\n"
               "      --memory SIZE         memory limit (K/M/G suffixes)\n"
               "      --pids N              limit on the number of processes and threads\n"
               "      --cpu-weight N        CPU weight, %3$d-%4$d (the kernel's default is 100)\n"
               "      --network none|host   no network (an empty namespace) or the host's\n"
               "      --user UID[:GID]      run as this user and group instead of the\n"
               "                            package's own\n"
               "      --stop-timeout SECS   grace period between SIGTERM and SIGKILL when the\n"
               "                            application is stopped (default 10; fractions\n"
               "                            allowed)\n"
               "      --cgroup-parent PATH  create kpa.slice below the cgroup PATH instead of\n"
               "                            below %1$s's own cgroup\n"
               "      --cgroup-driver auto|systemd|cgroupfs\n"
               "                            who makes the instance's cgroup: systemd (a\n"
               "                            transient scope) or kpa (cgroupfs); auto (default,\n"
               "                            or $KPA_CGROUP_DRIVER): systemd when it is PID 1\n"
               "  -t, --tty                 give the application a pseudo-terminal of its own,\n"
               "                            relayed to this one (the default when standard\n"
               "                            input and output are terminals; direct mode only)\n"
               "  -T, --no-tty              no pseudo-terminal, even at a terminal: those of\n"
               "                            standard input, output and error that are\n"
               "                            terminals become pipes\n"
               "  -w, --workdir DIR         the application's working directory inside the\n"
               "                            sandbox (default /)\n"
               "      --bind HOST:INSIDE    bind the host path HOST read-write at INSIDE\n"
               "                            (root only; repeatable)\n"
               "      --bind-ro HOST:INSIDE likewise, read-only\n"
               "      --print-spec          start nothing: print the plan of this start (the\n"
               "                            argv, environment, mounts, limits, handles, ids\n"
               "                            after every option) as JSON (direct mode only)\n"
               "      --json                when the application ends, print its final state as\n"
               "                            one JSON line on standard error\n"
               "  -q, --quiet               print errors only\n"
               "  -h, --help                show this help\n"
               "      --version             show the version\n"
               "\n"
               "Through the kpa-execd daemon, which keeps the instances it starts:\n"
               "      --socket PATH         the daemon's socket (default: $%5$s, else\n"
               "                            %6$s)\n"
               "      --detach              start through the daemon, with the start options\n"
               "                            above (not --root, --cgroup-parent or --tty), print\n"
               "                            the instance's token and exit; output goes to its\n"
               "                            log\n"
               "  INSTANCE: its token, or APP_ID[/RUN_CONFIG_ID] (kpa-execd finds it; --status\n"
               "  shows every match, the others refuse a name that matches several)\n"
               "      --status INSTANCE     show the instance's state, start time, restarts and\n"
               "                            last failure (--json: as JSON)\n"
               "      --stop INSTANCE       stop it: SIGTERM, then SIGKILL after its grace period\n"
               "      --force               with --stop or --stop-all: kill the whole instance\n"
               "                            at once\n"
               "      --stop-all            stop every instance of the daemon (root only),\n"
               "                            clients before their services, and wait until\n"
               "                            they have ended; prints how many\n"
               "      --wait INSTANCE       wait until it ends; exit as direct mode does\n"
               "      --timeout SECS        with --wait: give up after SECS seconds (exit 1)\n"
               "      --list                list the daemon's instances (--json: as JSON)\n"
               "      --logs INSTANCE       print the instance's output so far\n"
               "      --follow              with --logs: keep printing until the instance ends\n"
               "\n"
               "SIGINT, SIGTERM or SIGHUP stop the application (SIGTERM, then SIGKILL after\n"
               "the grace period); a second one kills it at once.\n"
               "\n"
               "Exit status: the application's exit code; 128+N when signal N ended it or it\n"
               "was stopped; 1 when it could not be started; 2 usage error. With --detach,\n"
               "--status, --stop, --stop-all, --list and --logs: 0, or 1 on an error. See\n"
               "kpa-run(8).\n",
               cli_program(), kpa_store_default_root(NULL), CPU_WEIGHT_MIN, CPU_WEIGHT_MAX,
               KPA_EXECD_SOCKET_ENV, KPA_EXECD_SOCKET_DEFAULT);
}

enum {
        OPT_HANDLE = 0x100,
        OPT_ENV,
        OPT_MEMORY,
        OPT_PIDS,
        OPT_CPU_WEIGHT,
        OPT_NETWORK,
        OPT_USER,
        OPT_STOP_TIMEOUT,
        OPT_CGROUP_PARENT,
        OPT_CGROUP_DRIVER,
        OPT_JSON,
        OPT_VERSION,
        OPT_SOCKET,
        OPT_DETACH,
        OPT_STATUS,
        OPT_STOP,
        OPT_FORCE,
        OPT_WAIT,
        OPT_TIMEOUT,
        OPT_LIST,
        OPT_LOGS,
        OPT_FOLLOW,
        OPT_STOP_ALL,
        OPT_BIND,
        OPT_BIND_RO,
        OPT_PRINT_SPEC,
};

/* APP_ID[/RUNCONFIG] as the manifest spells ids (kpa-execd has the last
 * word: this only keeps out what can never name an instance). */
static bool name_shaped(const char *s)
{
        const char *slash = strchr(s, '/');
        size_t app = slash ? (size_t)(slash - s) : strlen(s);
        if (app == 0 || app > 128 || (slash && (!slash[1] || strlen(slash + 1) > 128)))
                return false;
        for (size_t i = 0; i < app; i++)
                if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
                        return false;
        for (const char *c = slash ? slash + 1 : ""; *c; c++)
                if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '/')
                        return false;
        return true;
}

/* One daemon mode per call: --status TOKEN and the like. */
static int set_mode(run_mode mode, const char *token)
{
        if (arg.mode != MODE_DIRECT && arg.mode != mode)
                return cli_usage_error("%s and %s cannot be combined", mode_options[arg.mode],
                                       mode_options[mode]);
        if (arg.mode == mode)
                return cli_usage_error("%s given twice", mode_options[mode]);
        arg.mode = mode;
        if (token) {
                arg.by_name = kpa_token_from_string(token, &arg.token) < 0;
                if (arg.by_name && !name_shaped(token))
                        return cli_usage_error("%s: \"%s\" is neither a token (32 lowercase "
                                               "hexadecimal characters, as --detach prints) nor "
                                               "APP_ID[/RUNCONFIG]",
                                               mode_options[mode], token);
                arg.token_arg = token;
                snprintf(arg.token_str, sizeof(arg.token_str), "%s", token);
        }
        return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
        char *end;
        errno = 0;
        if (!s || !*s || *s < '0' || *s > '9')
                return -EINVAL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *out = v;
        return 0;
}

/* Seconds with up to three decimals ("2", "0.5", "1.25") into milliseconds. */
static int parse_seconds_ms(const char *s, unsigned *out_ms)
{
        uint64_t ms = 0;
        const char *p = s;
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                ms = ms * 10 + (uint64_t)(*p - '0');
                if (ms > UINT_MAX / 1000)
                        return -ERANGE;
        }
        ms *= 1000;
        if (*p == '.') {
                unsigned scale = 100;
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
                        ms += scale * (unsigned)(*p - '0'); /* digits past 1 ms add 0 */
        }
        if (*p)
                return -EINVAL;
        if (ms > UINT_MAX)
                return -ERANGE;
        *out_ms = (unsigned)ms;
        return 0;
}

static int parse_id(const char *s, bool group, uint32_t *out)
{
        uint64_t v;
        if (parse_u64(s, &v) == 0) {
                /* (uid_t)-1 means "no change" to the kernel and "default" to libkpa */
                if (v >= UINT32_MAX)
                        return -ERANGE;
                *out = (uint32_t)v;
                return 0;
        }
        errno = 0;
        if (group) {
                struct group *gr = getgrnam(s);
                if (!gr)
                        return errno > 0 ? -errno : -ENOENT;
                *out = gr->gr_gid;
        } else {
                struct passwd *pw = getpwnam(s);
                if (!pw)
                        return errno > 0 ? -errno : -ENOENT;
                *out = pw->pw_uid;
        }
        return 0;
}

/* UID[:GID], each a number or a name. Without GID: the user's primary
 * group when the host knows the user, else the group with the same number. */
static int parse_user(const char *s)
{
        const char *colon = strchr(s, ':');
        _cleanup_free_ char *user = cli_xstrndup(s, colon ? (size_t)(colon - s) : strlen(s));
        uint32_t uid = 0, gid = 0; /* set on every path that uses them */
        if (!*user || parse_id(user, false, &uid) < 0)
                return cli_usage_error("--user: \"%s\" is not a user id or a known user name",
                                       user);
        if (colon) {
                if (!colon[1] || parse_id(colon + 1, true, &gid) < 0)
                        return cli_usage_error(
                                "--user: \"%s\" is not a group id or a known group name",
                                colon + 1);
        } else {
                struct passwd *pw = getpwuid(uid);
                gid = pw ? pw->pw_gid : uid;
        }
        arg.opts.uid = uid;
        arg.opts.gid = gid;
        return 0;
}

static int add_handle(const char *optarg_)
{
        kpa_error err;
        handle_arg h;
        if (kpa_handle_parse_arg(optarg_, &h.name, &h.spec, &err) < 0)
                return cli_usage_error("--handle: %s", err.message);
        arg.handles = cli_xrealloc(arg.handles, (arg.n_handles + 1) * sizeof(*arg.handles));
        arg.handles[arg.n_handles++] = h;
        return 0;
}

static int add_env(const char *optarg_)
{
        const char *eq = strchr(optarg_, '=');
        if (!eq || eq == optarg_)
                return cli_usage_error("--env: expected NAME=VALUE, got \"%s\"", optarg_);
        arg.env = cli_xrealloc(arg.env, (arg.n_env + 1) * sizeof(*arg.env));
        arg.env[arg.n_env++] = optarg_;
        return 0;
}

static int parse_limit(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
        uint64_t v;
        if (parse_u64(s, &v) < 0 || v < min || v > max)
                return cli_usage_error("%s: \"%s\" is not a number from %llu to %llu", name, s,
                                       (unsigned long long)min, (unsigned long long)max);
        *out = v;
        return 0;
}

/* The name of start option C, or NULL when C is not one. */
static const char *start_option_name(int c)
{
        switch (c) {
        case OPT_HANDLE: return "--handle";
        case OPT_ENV: return "--env";
        case OPT_MEMORY: return "--memory";
        case OPT_PIDS: return "--pids";
        case OPT_CPU_WEIGHT: return "--cpu-weight";
        case OPT_NETWORK: return "--network";
        case OPT_USER: return "--user";
        case OPT_STOP_TIMEOUT: return "--stop-timeout";
        case 't': return "--tty";
        case 'T': return "--no-tty";
        case 'w': return "--workdir";
        case OPT_BIND: return "--bind";
        case OPT_BIND_RO: return "--bind-ro";
        default: return NULL;
        }
}

/* --bind and --bind-ro: HOST:INSIDE, split at the first ':'; the paths
 * are checked by libkpa (spec.c), which also refuses them to non-root. */
static int add_bind(const char *optarg_, bool writable)
{
        const char *name = writable ? "--bind" : "--bind-ro";
        const char *colon = strchr(optarg_, ':');
        if (!colon || colon == optarg_ || !colon[1])
                return cli_usage_error("%s: expected HOST:INSIDE, got \"%s\"", name, optarg_);
        arg.binds = cli_xrealloc(arg.binds, (arg.n_binds + 1) * sizeof(*arg.binds));
        arg.binds[arg.n_binds++] = (kpa_start_bind){
                .host = cli_xstrndup(optarg_, (size_t)(colon - optarg_)),
                .inside = colon + 1,
                .writable = writable,
        };
        return 0;
}

static int parse_daemon_option(int c, const char *optarg_)
{
        switch (c) {
        case OPT_SOCKET:
                if (!*optarg_)
                        return cli_usage_error("--socket: empty path");
                arg.socket = optarg_;
                return 0;
        case OPT_DETACH: return set_mode(MODE_DETACH, NULL);
        case OPT_STATUS: return set_mode(MODE_STATUS, optarg_);
        case OPT_STOP: return set_mode(MODE_STOP, optarg_);
        case OPT_STOP_ALL: return set_mode(MODE_STOP_ALL, NULL);
        case OPT_WAIT: return set_mode(MODE_WAIT, optarg_);
        case OPT_LIST: return set_mode(MODE_LIST, NULL);
        case OPT_LOGS: return set_mode(MODE_LOGS, optarg_);
        case OPT_FORCE: arg.force = true; return 0;
        case OPT_FOLLOW: arg.follow = true; return 0;
        case OPT_TIMEOUT:
                if (parse_seconds_ms(optarg_, &arg.timeout_ms) < 0 || arg.timeout_ms > INT_MAX)
                        return cli_usage_error("--timeout: \"%s\" is not a number of seconds "
                                               "(e.g. 30 or 0.5)",
                                               optarg_);
                arg.has_timeout = true;
                return 0;
        default: return cli_usage_error("unknown option");
        }
}

static int parse_option(int c, const char *optarg_)
{
        kpa_start_options *o = &arg.opts;
        if (start_option_name(c))
                arg.start_option = start_option_name(c);
        switch (c) {
        case 'r':
                arg.root = optarg_;
                arg.root_given = true;
                return 0;
        case OPT_HANDLE: return add_handle(optarg_);
        case OPT_ENV: return add_env(optarg_);
        case OPT_MEMORY:
                /* 0 would mean "the manifest's limit" to libkpa: refuse it */
                if (cli_parse_size(optarg_, &o->memory_bytes) < 0 || o->memory_bytes == 0)
                        return cli_usage_error("--memory: \"%s\" is not a size above 0 (e.g. 512M)",
                                               optarg_);
                return 0;
        case OPT_PIDS: return parse_limit("--pids", optarg_, 1, UINT32_MAX, &o->pids);
        case OPT_CPU_WEIGHT:
                return parse_limit("--cpu-weight", optarg_, CPU_WEIGHT_MIN, CPU_WEIGHT_MAX,
                                   &o->cpu_weight);
        case OPT_NETWORK:
                if (streq(optarg_, "none"))
                        o->network = KPA_START_NETWORK_NONE;
                else if (streq(optarg_, "host"))
                        o->network = KPA_START_NETWORK_HOST;
                else
                        return cli_usage_error("--network: \"%s\" is neither none nor host",
                                               optarg_);
                return 0;
        case OPT_USER: return parse_user(optarg_);
        case OPT_STOP_TIMEOUT:
                if (parse_seconds_ms(optarg_, &o->stop_timeout_ms) < 0)
                        return cli_usage_error("--stop-timeout: \"%s\" is not a number of seconds "
                                               "(e.g. 10 or 0.5)",
                                               optarg_);
                /* libkpa reads 0 as "the default" (10 s); 0 here means no grace */
                if (o->stop_timeout_ms == 0)
                        o->stop_timeout_ms = 1;
                return 0;
        case OPT_CGROUP_PARENT:
                if (!*optarg_)
                        return cli_usage_error("--cgroup-parent: empty path");
                o->cgroup_parent = optarg_;
                return 0;
        case OPT_CGROUP_DRIVER: {
                kpa_error err;
                if (kpa_cgroup_driver_set(optarg_, &err) < 0)
                        return cli_usage_error("--cgroup-driver: %s", err.message);
                arg.cgroup_driver = optarg_;
                return 0;
        }
        case 't': arg.tty = 1; return 0;
        case 'T': arg.tty = 0; return 0;
        case 'w':
                if (optarg_[0] != '/')
                        return cli_usage_error("--workdir: \"%s\" is not an absolute path",
                                               optarg_);
                o->cwd = optarg_;
                return 0;
        case OPT_BIND: return add_bind(optarg_, true);
        case OPT_BIND_RO: return add_bind(optarg_, false);
        case OPT_PRINT_SPEC: arg.print_spec = true; return 0;
        case OPT_JSON: arg.json = true; return 0;
        case 'q': arg.quiet = true; return 0;
        case 'h': usage(); exit(EXIT_SUCCESS);
        case OPT_VERSION: printf("%s %s\n", cli_program(), PACKAGE_VERSION); exit(EXIT_SUCCESS);
        default: return parse_daemon_option(c, optarg_);
        }
}

/* What follows the options: APP_ID [RUN_CONFIG_ID] [-- ARGS...]. */
static int parse_operands(int argc, char **argv)
{
        int i = optind;
        if (i >= argc)
                return cli_usage_error("no application id given");
        arg.app_id = argv[i++];
        if (!*arg.app_id)
                return cli_usage_error("empty application id");
        if (i < argc && !streq(argv[i], "--")) {
                arg.run_config_id = argv[i++];
                if (!*arg.run_config_id)
                        return cli_usage_error("empty run configuration id");
        }
        if (i < argc) {
                if (!streq(argv[i], "--"))
                        return cli_usage_error("unexpected argument \"%s\": options go before "
                                               "APP_ID, arguments for the application after --",
                                               argv[i]);
                i++;
                arg.extra_args = (const char *const *)&argv[i];
                arg.n_extra_args = (size_t)(argc - i);
        }
        return 0;
}

/* Which options go with which mode. */
static int check_mode_options(void)
{
        run_mode m = arg.mode;
        const char *mode = m == MODE_DIRECT ? "direct mode" : mode_options[m];
        bool daemon = m != MODE_DIRECT;
        if (arg.force && m != MODE_STOP && m != MODE_STOP_ALL)
                return cli_usage_error("--force goes with --stop or --stop-all");
        if (arg.has_timeout && m != MODE_WAIT)
                return cli_usage_error("--timeout goes with --wait");
        if (arg.follow && m != MODE_LOGS)
                return cli_usage_error("--follow goes with --logs");
        if (arg.socket && !daemon)
                return cli_usage_error("--socket goes with --detach, --status, --stop, "
                                       "--stop-all, --wait, --list or --logs");
        if (arg.json && m != MODE_DIRECT && m != MODE_STATUS && m != MODE_LIST && m != MODE_WAIT)
                return cli_usage_error("--json does not go with %s", mode);
        if (daemon && arg.root_given)
                return cli_usage_error("--root does not go with %s: kpa-execd uses its own store",
                                       mode);
        if (daemon && arg.cgroup_driver)
                return cli_usage_error("--cgroup-driver does not go with %s: kpa-execd chooses "
                                       "the cgroups of its instances",
                                       mode);
        if (daemon && arg.opts.cgroup_parent)
                return cli_usage_error("--cgroup-parent does not go with %s: kpa-execd chooses "
                                       "the cgroups of its instances",
                                       mode);
        if (m == MODE_DETACH && arg.tty == 1)
                return cli_usage_error("--tty does not go with --detach: kpa-execd logs the "
                                       "output of its instances (--logs), it has no terminal "
                                       "to give them");
        if (m == MODE_DETACH && arg.n_binds > 0 && geteuid() != 0)
                return cli_usage_error("--bind and --bind-ro do not go with --detach: only root "
                                       "may bind host paths, and only in direct mode");
        if (arg.print_spec && m != MODE_DIRECT)
                return cli_usage_error("--print-spec does not go with %s: it prints the plan "
                                       "of a direct start",
                                       mode);
        if (arg.start_option && m != MODE_DIRECT && m != MODE_DETACH)
                return cli_usage_error("%s is a start option: it goes with --detach or direct "
                                       "mode, not with %s",
                                       arg.start_option, mode);
        return 0;
}

static int parse_args(int argc, char **argv)
{
        static const struct option options[] = {
                {"root", required_argument, NULL, 'r'},
                {"handle", required_argument, NULL, OPT_HANDLE},
                {"env", required_argument, NULL, OPT_ENV},
                {"memory", required_argument, NULL, OPT_MEMORY},
                {"pids", required_argument, NULL, OPT_PIDS},
                {"cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT},
                {"network", required_argument, NULL, OPT_NETWORK},
                {"user", required_argument, NULL, OPT_USER},
                {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
                {"cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT},
                {"cgroup-driver", required_argument, NULL, OPT_CGROUP_DRIVER},
                {"json", no_argument, NULL, OPT_JSON},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {"socket", required_argument, NULL, OPT_SOCKET},
                {"detach", no_argument, NULL, OPT_DETACH},
                {"status", required_argument, NULL, OPT_STATUS},
                {"stop", required_argument, NULL, OPT_STOP},
                {"force", no_argument, NULL, OPT_FORCE},
                {"wait", required_argument, NULL, OPT_WAIT},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"list", no_argument, NULL, OPT_LIST},
                {"logs", required_argument, NULL, OPT_LOGS},
                {"follow", no_argument, NULL, OPT_FOLLOW},
                {"stop-all", no_argument, NULL, OPT_STOP_ALL},
                {"tty", no_argument, NULL, 't'},
                {"no-tty", no_argument, NULL, 'T'},
                {"workdir", required_argument, NULL, 'w'},
                {"bind", required_argument, NULL, OPT_BIND},
                {"bind-ro", required_argument, NULL, OPT_BIND_RO},
                {"print-spec", no_argument, NULL, OPT_PRINT_SPEC},
                {0},
        };
        kpa_start_options_init(&arg.opts);
        /* '+': options end at APP_ID, so the application's own options
         * (after --) are never taken for ours */
        int r = cli_parse_options(argc, argv, "+r:qhtTw:", options, parse_option);
        if (r)
                return r;
        if ((r = check_mode_options()) != 0)
                return r;
        if (arg.mode == MODE_DIRECT || arg.mode == MODE_DETACH)
                return parse_operands(argc, argv);
        if (optind < argc)
                return cli_usage_error("unexpected argument \"%s\": %s takes no APP_ID",
                                       argv[optind], mode_options[arg.mode]);
        return 0;
}

static void free_args(void)
{
        for (size_t i = 0; i < arg.n_handles; i++) {
                free(arg.handles[i].name);
                free(arg.handles[i].spec);
        }
        free(arg.handles);
        free(arg.env);
        for (size_t i = 0; i < arg.n_binds; i++)
                free((char *)arg.binds[i].host);
        free(arg.binds);
}

int main(int argc, char **argv)
{
        kpa_trace("kpa-run: main");
        cli_init(argv[0]);
        int r = parse_args(argc, argv);
        if (r == 0)
                r = arg.mode == MODE_DIRECT ? run() : run_daemon_mode();
        free_args();
        fflush(stdout);
        kpa_trace("kpa-run: exit");
        return r;
}
