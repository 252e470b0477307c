/* kpa-run: start one run configuration of an installed application in its
 * sandbox and stay with it until it ends ("direct mode"). kpa-run is the
 * instance's parent: it passes its own stdin, stdout and stderr through (at
 * a terminal, it relays a pseudo-terminal of the sandbox's own instead),
 * turns SIGINT/SIGTERM/SIGHUP into stop requests, and exits with the
 * application's exit code. With --detach, --status, --stop, --stop-all,
 * --wait, --list or --logs it talks to kpa-execd instead, which owns the instances it
 * starts. Parsing, printing and a small poll loop only; starting, confining
 * and stopping are libkpa's (kpa/process.h, and client.h for the daemon). */
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

/* How often --logs --follow looks for more output. */
#define FOLLOW_INTERVAL_MS 250

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

static const char *const mode_options[] = {
        [MODE_DIRECT] = "",     [MODE_DETACH] = "--detach",     [MODE_STATUS] = "--status",
        [MODE_STOP] = "--stop", [MODE_WAIT] = "--wait",         [MODE_LIST] = "--list",
        [MODE_LOGS] = "--logs", [MODE_STOP_ALL] = "--stop-all",
};

static struct {
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
} arg = {.tty = -1};

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

/* ---- listening handles: the port they got, connections never accepted ---- */

#define UNACCEPTED_WARN_MS 5000

typedef struct watched_listen {
        const char *name;
        int fd;
        bool owned; /* a duplicate of ours, closed at exit */
        uint64_t pending_since_ms;
        bool warned;
} watched_listen;
static watched_listen *listens;
static size_t n_listens;

static uint64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void watch_listen(const char *name, int fd, bool owned)
{
        listens = cli_xrealloc(listens, (n_listens + 1) * sizeof(*listens));
        listens[n_listens++] = (watched_listen){.name = name, .fd = fd, .owned = owned};
}

static void free_listens(void)
{
        for (size_t k = 0; k < n_listens; k++)
                if (listens[k].owned)
                        close(listens[k].fd);
        free(listens);
        listens = NULL;
        n_listens = 0;
}

/* A listening handle whose spec asked for port 0: say which port it got
 * (to stderr; one JSON object a line with --json), so that a script can
 * reach it. */
static void report_listen(const char *name, const char *spec, int fd)
{
        const char *port = strrchr(spec, ':');
        if (strncmp(spec, "listen:tcp:", 11) != 0 || !port || !port[1] ||
            strspn(port + 1, "0") != strlen(port + 1))
                return; /* not port 0 (or 00...) */
        char where[320];
        if (kpa_socket_address(fd, where, sizeof(where), NULL) < 0)
                return;
        if (arg.json) {
                /* a handle name is printable ASCII: only " and \ need a \ */
                fputs("{\"handle\":\"", stderr);
                for (const char *c = name; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                fputc('\\', stderr);
                        fputc(*c, stderr);
                }
                fprintf(stderr, "\",\"listens\":\"%s\"}\n", where);
        } else if (!arg.quiet) {
                fprintf(stderr, "kpa-run: handle %s listens on %s\n", name, where);
        }
        fflush(stderr);
}

/* Once a second while the application runs: warn once about a listening
 * handle whose connections have waited UNACCEPTED_WARN_MS (an application
 * that ignores LISTEN_FDS never accepts on it). */
static void check_listens(void)
{
        uint64_t now = mono_ms();
        for (size_t k = 0; k < n_listens; k++) {
                watched_listen *l = &listens[k];
                if (l->warned || !kpa_socket_has_pending(l->fd)) {
                        l->pending_since_ms = 0;
                        continue;
                }
                if (!l->pending_since_ms) {
                        l->pending_since_ms = now;
                } else if (now - l->pending_since_ms >= UNACCEPTED_WARN_MS) {
                        l->warned = true;
                        cli_error("warning: %s: connections to handle %s have waited %d s and "
                                  "were never accepted: does the application take its sockets "
                                  "from LISTEN_FDS (sd_listen_fds)? (python3 -m http.server, for "
                                  "one, ignores inherited sockets)",
                                  arg.app_id, l->name, UNACCEPTED_WARN_MS / 1000);
                }
        }
}

/* The poll timeout of the wait loop: a second while a handle may still
 * earn its warning. */
static int listens_timeout(void)
{
        for (size_t k = 0; k < n_listens; k++)
                if (!listens[k].warned)
                        return 1000;
        return -1;
}

/* ---- handles ---- */

/* --handle NAME=service:RUNCONFIG asks for the connection to a service,
 * which kpa makes from the run configuration's usesServices alone: it is
 * allowed when the run configuration declares RUNCONFIG, and is then that
 * declared connection, named after the service; otherwise it is refused, as
 * a client connects only to the services it declares. 0 (nothing to open),
 * or the exit code. */
static int check_service_handle(const handle_arg *h, const char *service)
{
        kpa_error err;
        _cleanup_(kpa_store_closep) kpa_store *store = NULL;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        if (kpa_store_open(arg.root, 0, &store, &err) < 0 ||
            kpa_store_load_manifest(store, arg.app_id, &m, &err) < 0) {
                cli_error("--handle %s: %s", h->name, err.message);
                return EXIT_FAILURE;
        }
        const kpa_run_config *rc = arg.run_config_id
                                           ? kpa_manifest_find_run_config(m, arg.run_config_id)
                                           : kpa_manifest_primary_run_config(m);
        if (!rc) /* the start says so, with the list */
                return 0;
        size_t len = strlen(arg.app_id);
        for (size_t k = 0; k < rc->n_uses; k++) {
                const char *t = rc->uses[k].name;
                if (strncmp(t, arg.app_id, len) == 0 && t[len] == '/')
                        t += len + 1;
                if (!streq(t, service))
                        continue;
                if (!streq(h->name, service))
                        return cli_usage_error("--handle %s=%s: the connection to the service "
                                               "\"%s\" is the handle \"%s\"",
                                               h->name, h->spec, service, service);
                return 0;
        }
        cli_error("--handle %s=%s: %s/%s does not declare \"%s\" in usesServices, and a "
                  "client connects only to the services it declares",
                  h->name, h->spec, arg.app_id, rc->id, service);
        return EXIT_FAILURE;
}

/* Open every --handle in order into OUT (*N of them: a service: handle
 * takes no place). 0, 1 (cannot open) or 2 (malformed spec). */
static int open_handles(kpa_user_handle *out, int *fds, size_t *n)
{
        *n = 0;
        for (size_t i = 0; i < arg.n_handles; i++)
                fds[i] = -1;
        for (size_t i = 0; i < arg.n_handles; i++) {
                kpa_error err;
                if (strncmp(arg.handles[i].spec, "service:", 8) == 0) {
                        int r = check_service_handle(&arg.handles[i], arg.handles[i].spec + 8);
                        if (r) {
                                cli_close_fds(fds, i);
                                return r;
                        }
                        continue;
                }
                int fd = kpa_handle_open_spec(arg.handles[i].spec, &err);
                if (fd < 0) {
                        cli_close_fds(fds, i);
                        if (fd == -EINVAL)
                                return cli_usage_error("--handle %s: %s", arg.handles[i].name,
                                                       err.message);
                        cli_error("--handle %s: %s", arg.handles[i].name, err.message);
                        return EXIT_FAILURE;
                }
                fds[i] = fd;
                out[*n].name = arg.handles[i].name;
                out[*n].fd = fd;
                ++*n;
                report_listen(arg.handles[i].name, arg.handles[i].spec, fd);
                int dup = strncmp(arg.handles[i].spec, "listen:", 7) == 0 && arg.mode == MODE_DIRECT
                                  ? fcntl(fd, F_DUPFD_CLOEXEC, 3)
                                  : -1;
                if (dup >= 0)
                        watch_listen(arg.handles[i].name, dup, true);
        }
        return 0;
}

/* ---- the end ---- */

static bool has_ended(kpa_process_state s)
{
        return s == KPA_PROCESS_FINISHED || s == KPA_PROCESS_FAILED ||
               s == KPA_PROCESS_NOT_EXISTING;
}

/* The same context object as kpa-execd's protocol and --status --json. */
static void print_json(const kpa_token *token, const kpa_process_context *ctx)
{
        _cleanup_free_ char *j = kpa_process_context_to_json(token, ctx);
        fprintf(stderr, "%s\n", j);
}

/* The exit status of kpa-run for an instance that has ended, in the
 * shell's convention, 128+N for an end by signal N:
 *   Finished/Normal      the application's exit code; when it died of the
 *                        SIGTERM of our Normal stop, libkpa reports the
 *                        signal number (15) as its code, shown as 128+15
 *   Finished/Terminated  killed by a Forced stop or an escalated Normal
 *                        stop: 128+N for the signal N libkpa reports
 *                        (SIGKILL, so 137), 128+SIGTERM if it reports none
 *   Failed/Unexpected    128+N for signal N
 *   anything else        1 */
static int exit_status_of(const kpa_process_context *ctx, bool stop_requested)
{
        bool is_signal = ctx->exit_code > 0 && ctx->exit_code < 128;
        if (ctx->state == KPA_PROCESS_FINISHED && ctx->exit_status == KPA_EXIT_NORMAL) {
                if (stop_requested && ctx->exit_code == SIGTERM)
                        return 128 + SIGTERM;
                return ctx->exit_code & 0xff;
        }
        if (ctx->state == KPA_PROCESS_FINISHED && ctx->exit_status == KPA_EXIT_TERMINATED)
                return 128 + (is_signal ? ctx->exit_code : SIGTERM);
        if (ctx->state == KPA_PROCESS_FAILED && ctx->exit_status == KPA_EXIT_UNEXPECTED &&
            is_signal)
                return 128 + ctx->exit_code;
        return EXIT_FAILURE;
}

static void report_end(const kpa_process_context *ctx)
{
        if (ctx->state == KPA_PROCESS_NOT_EXISTING) {
                cli_error("%s: the instance vanished before its end was known", arg.app_id);
                return;
        }
        if (arg.quiet)
                return;
        if (ctx->state == KPA_PROCESS_FAILED) {
                if (ctx->message[0])
                        cli_error("%s: %s", ctx->app_id, ctx->message);
                else if (ctx->exit_status == KPA_EXIT_UNEXPECTED)
                        cli_error("%s: killed by signal %d", ctx->app_id, ctx->exit_code);
                else
                        cli_error("%s: failed", ctx->app_id);
        } else if (ctx->exit_status == KPA_EXIT_TERMINATED) {
                cli_error("%s: %s", ctx->app_id,
                          ctx->message[0] ? ctx->message : "stopped by force");
        }
}

/* ---- the terminal: a pty of the application's own (--tty), or pipes ----
 * The application never gets a terminal of the host. With --tty its pty
 * comes from its own devpts; kpa-run holds the master and relays our stdin
 * to it and its output to our stdout, with our terminal in raw mode
 * meanwhile (so that ^C, ^Z and the like are bytes for the pty's line
 * discipline, which turns them into signals inside). The terminal is put
 * back on every way out: the end of the loop, exit(), and the signals that
 * would end kpa-run without passing through either. Without a pty, those of
 * our stdin, stdout and stderr that are terminals are replaced by pipes,
 * relayed the same way; the others (files, pipes) are passed as they are. */

/* closep(), and the fd is -1 after it */
static void close_fd(int *fd)
{
        closep(fd);
        *fd = -1;
}

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

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;

static void restore_terminal(void)
{
        if (termios_saved) {
                (void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios); /* no wait on a stuck reader */
                termios_saved = 0;
        }
}

static void restore_and_die(int sig)
{
        restore_terminal();
        signal(sig, SIG_DFL);
        raise(sig);
}

static void make_terminal_raw(void)
{
        static const int fatal[] = {SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE, SIGABRT,
                                    SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGXCPU, SIGXFSZ};
        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return;
        struct termios raw = saved_termios;
        cfmakeraw(&raw);
        termios_saved = 1;
        atexit(restore_terminal);
        for (size_t i = 0; i < ELEMENTSOF(fatal); i++)
                signal(fatal[i], restore_and_die);
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0)
                termios_saved = 0;
}

/* The parent of PID, from /proc; 0 when unknown. */
static pid_t parent_of(pid_t pid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* after the command name */
        int ppid = 0;
        return p && sscanf(p, ") %*c %d", &ppid) == 1 ? (pid_t)ppid : 0;
}

/* Whether our process group is orphaned, as the kernel sees it for the
 * stop signals: no ancestor outside the group but in our session is found
 * on the way up (the first one outside the group decides). */
static bool group_orphaned(void)
{
        pid_t p = getppid();
        while (p > 1 && getpgid(p) == getpgrp())
                p = parent_of(p);
        return p <= 1 || getsid(p) != getsid(0);
}

/* SIGTSTP (kill -TSTP, or Ctrl-Z with --no-tty; in raw mode the terminal
 * sends none): stop as its default action would, with the host terminal as
 * it was meanwhile. In an orphaned process group, where nobody would
 * continue us, the kernel discards it: so do we. */
static void suspend_self(void)
{
        if (group_orphaned())
                return;
        struct termios raw;
        bool was_raw = termios_saved && tcgetattr(STDIN_FILENO, &raw) == 0;
        if (was_raw)
                restore_terminal();
        raise(SIGSTOP);
        if (was_raw && tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
                termios_saved = 1;
}

/* The host terminal whose size the pty gets: stdout's, else stdin's. */
static int size_terminal(void)
{
        return isatty(STDOUT_FILENO) ? STDOUT_FILENO : isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
}

static void copy_window_size(const tty_relay *t)
{
        struct winsize ws;
        if (t->tty && t->size_fd >= 0 && t->in_dst >= 0 && ioctl(t->size_fd, TIOCGWINSZ, &ws) == 0)
                (void)ioctl(t->in_dst, TIOCSWINSZ, &ws);
}

static void relay_close(tty_relay *t)
{
        for (size_t i = 0; i < ELEMENTSOF(t->out); i++)
                if (t->out[i].src != t->in_dst)
                        close_fd(&t->out[i].src);
        close_fd(&t->in_dst);
        t->out[0].src = t->out[1].src = -1;
}

/* Copy what O's source has for us to its destination, until it has no
 * more for now; at its end (a pty hangs up when the application and all it
 * started have closed their ends) it is closed. */
static void relay_output(tty_relay *t, relay_out *o)
{
        char buf[8192];
        while (o->src >= 0) {
                ssize_t n = read(o->src, buf, sizeof(buf));
                if (n > 0) {
                        (void)cli_write_all(o->dst, buf, (size_t)n); /* ours gone: drop it */
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (o->src == t->in_dst) { /* the pty: input goes nowhere now */
                        close_fd(&t->in_dst);
                        t->len = t->off = 0;
                        o->src = -1;
                } else {
                        close_fd(&o->src);
                }
        }
}

/* At the end of our stdin: a pipe is closed; to a pty the end-of-file
 * character goes in, as if typed (for kpa-run --tty <FILE). */
static void relay_input_end(tty_relay *t)
{
        struct termios tio;
        t->in = -1;
        if (!t->tty) {
                close_fd(&t->in_dst);
        } else if (t->in_dst >= 0 && tcgetattr(t->in_dst, &tio) == 0) {
                t->buf[0] = (char)tio.c_cc[VEOF];
                t->len = 1;
                t->off = 0;
        }
}

/* Our stdin to the application, without blocking on a slow reader. */
static void relay_input(tty_relay *t, bool readable)
{
        if (readable && t->len == 0 && t->in >= 0) {
                ssize_t n = read(t->in, t->buf, sizeof(t->buf));
                if (n > 0) {
                        t->len = (size_t)n;
                        t->off = 0;
                } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                        relay_input_end(t);
                }
        }
        while (t->len > t->off && t->in_dst >= 0) {
                ssize_t w = write(t->in_dst, t->buf + t->off, t->len - t->off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN)
                        return;
                if (w < 0) { /* the reader is gone: nothing more goes in */
                        t->in = -1;
                        if (!t->tty)
                                close_fd(&t->in_dst);
                        break;
                }
                t->off += (size_t)w;
        }
        t->len = t->off = 0;
}

/* The relay's pollfds: PFD[0] our stdin, PFD[1] where it goes (when it
 * has to wait), PFD[2] and PFD[3] the outputs; -1 is not polled. */
static void relay_events(const tty_relay *t, struct pollfd *pfd)
{
        pfd[0] = (struct pollfd){.fd = t->len == 0 && t->in_dst >= 0 ? t->in : -1, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = t->len ? t->in_dst : -1, .events = POLLOUT};
        for (size_t i = 0; i < 2; i++)
                pfd[2 + i] = (struct pollfd){.fd = t->out[i].src, .events = POLLIN};
}

static void relay_dispatch(tty_relay *t, const struct pollfd *pfd)
{
        for (size_t i = 0; i < 2; i++)
                if (pfd[2 + i].revents)
                        relay_output(t, &t->out[i]);
        if (pfd[0].revents || pfd[1].revents)
                relay_input(t, pfd[0].revents != 0);
}

/* Without a pty: a pipe in place of each of our stdio fds that is a
 * terminal, into O's stdio fds. 0, or -errno. */
static int relay_pipes(tty_relay *t, kpa_start_options *o)
{
        int *app[3] = {&o->stdin_fd, &o->stdout_fd, &o->stderr_fd};
        for (int i = 0; i < 3; i++) {
                int p[2];
                if (*app[i] < 0 || !isatty(i))
                        continue;
                if (pipe2(p, O_CLOEXEC) < 0)
                        return -errno;
                /* the application's end is passed as it is; ours does not block */
                int ours = i == 0 ? p[1] : p[0];
                fcntl(ours, F_SETFL, O_NONBLOCK);
                *app[i] = i == 0 ? p[0] : p[1];
                if (i == 0)
                        t->in_dst = ours;
                else
                        t->out[i - 1].src = ours;
        }
        return 0;
}

/* After the start: the application's ends of the pipes are its own now. */
static void relay_pipes_started(tty_relay *t, kpa_start_options *o)
{
        if (t->in_dst >= 0)
                close_fd(&o->stdin_fd);
        if (t->out[0].src >= 0)
                close_fd(&o->stdout_fd);
        if (t->out[1].src >= 0)
                close_fd(&o->stderr_fd);
        if (t->in_dst < 0)
                t->in = -1;
}

/* ---- the poll loop ---- */

static int block_stop_signals(sigset_t *mask)
{
        sigemptyset(mask);
        sigaddset(mask, SIGINT);
        sigaddset(mask, SIGTERM);
        sigaddset(mask, SIGHUP);
        sigaddset(mask, SIGWINCH); /* --tty: the pty's size follows ours */
        sigaddset(mask, SIGTSTP);  /* and the terminal is put back while stopped */
        if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
                return -errno;
        int fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

/* A stop signal arrived: the first asks for a Normal stop, later ones for a
 * Forced one. */
static void on_stop_signal(kpa_control *ctl, const kpa_token *token, int signo, unsigned *count)
{
        kpa_stop_policy policy = ++*count == 1 ? KPA_STOP_NORMAL : KPA_STOP_FORCED;
        restore_terminal(); /* the instance is ending: our messages read as usual */
        if (!arg.quiet) {
                const char *sig = signo == SIGINT   ? "SIGINT"
                                  : signo == SIGHUP ? "SIGHUP"
                                                    : "SIGTERM";
                if (policy == KPA_STOP_NORMAL)
                        cli_error("%s received: stopping %s (send it again to kill it at once)",
                                  sig, arg.app_id);
                else
                        cli_error("%s received again: killing %s", sig, arg.app_id);
        }
        kpa_error saved;
        if (kpa_process_stop(ctl, token, policy, &saved) < 0) {
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                /* losing the race against the application's own end is fine */
                if (kpa_process_get_state(ctl, token, &ctx, NULL) == 0 && has_ended(ctx.state))
                        return;
                cli_report(&saved);
        }
}

static int drain_signals(int sfd, kpa_control *ctl, const kpa_token *token, unsigned *count,
                         const tty_relay *tty)
{
        struct signalfd_siginfo si;
        ssize_t n;
        while ((n = read(sfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGWINCH || si.ssi_signo == SIGTSTP) {
                        if (si.ssi_signo == SIGTSTP)
                                suspend_self();
                        copy_window_size(tty); /* it may have changed meanwhile */
                        continue;
                }
                on_stop_signal(ctl, token, (int)si.ssi_signo, count);
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
                return -errno;
        return 0;
}

/* Wait until the instance has ended, serving stop signals meanwhile, and
 * relaying its terminal or pipes (TTY) until then and what it has left in
 * them after. A failure of the controller fills ERR (may be NULL). */
static int wait_for_end(kpa_control *ctl, const kpa_token *token, int sfd, kpa_process_context *ctx,
                        unsigned *stops, tty_relay *tty, kpa_error *err)
{
        int cfd = kpa_control_get_fd(ctl);
        if (cfd < 0)
                return cfd;
        for (;;) {
                int r = kpa_process_get_state(ctl, token, ctx, err);
                if (r < 0)
                        return r;
                if (has_ended(ctx->state)) {
                        for (size_t i = 0; i < ELEMENTSOF(tty->out); i++)
                                relay_output(tty, &tty->out[i]); /* what is left */
                        return 0;
                }
                struct pollfd pfd[6] = {
                        {.fd = sfd, .events = POLLIN},
                        {.fd = cfd, .events = POLLIN},
                };
                relay_events(tty, &pfd[2]);
                bool running = ctx->state == KPA_PROCESS_RUNNING;
                if (running)
                        check_listens();
                if (poll(pfd, ELEMENTSOF(pfd), running ? listens_timeout() : -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                relay_dispatch(tty, &pfd[2]);
                if (pfd[0].revents) {
                        r = drain_signals(sfd, ctl, token, stops, tty);
                        if (r < 0)
                                return r;
                }
                if (pfd[1].revents) {
                        r = kpa_control_dispatch(ctl, err);
                        if (r < 0)
                                return r;
                }
        }
}

/* Direct mode: the services that libkpa started for the application
 * (usesServices) end with it, stopped once it has ended; wait for them,
 * so that the close does not kill them. */
static void wait_for_services(kpa_control *ctl, const kpa_token *app, int sfd, unsigned *stops,
                              tty_relay *tty)
{
        kpa_token *v = NULL;
        size_t n = 0;
        if (kpa_process_list(ctl, &v, &n, NULL) < 0)
                return;
        for (size_t k = 0; k < n; k++) {
                kpa_process_context c;
                kpa_process_context_init(&c);
                if (memcmp(&v[k], app, sizeof(*app)) != 0)
                        (void)wait_for_end(ctl, &v[k], sfd, &c, stops, tty, NULL);
        }
        free(v);
}

/* ---- start ---- */

/* Our own stdio goes through; a closed one becomes /dev/null. */
static int stdio_fd(int fd)
{
        return fcntl(fd, F_GETFD) < 0 ? -1 : fd;
}

/* ERR: what kpa_process_start() said. */
static int report_failed_start(kpa_control *ctl, const kpa_token *token, const kpa_error *e)
{
        kpa_error err = *e;
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        bool have_ctx = !kpa_token_is_null(token) &&
                        kpa_process_get_state(ctl, token, &ctx, NULL) == 0;
        if (err.message[0])
                cli_report(&err);
        else if (have_ctx && ctx.message[0])
                cli_error("%s: %s%s%s", arg.app_id, ctx.message, ctx.exit_reason ? ": " : "",
                          ctx.exit_reason ? strerror(ctx.exit_reason) : "");
        else
                cli_error("%s: start failed: %s", arg.app_id, strerror(err.code ? err.code : EIO));
        if (arg.json && have_ctx)
                print_json(token, &ctx);
        return EXIT_FAILURE;
}

/* Open the handles into HANDLES and FDS and put them, the extra args and
 * env into arg.opts. 0, or the exit code to stop with. */
static int prepare_start(kpa_user_handle **handles, int **fds)
{
        *handles = cli_xcalloc(arg.n_handles ? arg.n_handles : 1, sizeof(**handles));
        *fds = cli_xcalloc(arg.n_handles ? arg.n_handles : 1, sizeof(**fds));
        size_t n = 0;
        int r = open_handles(*handles, *fds, &n);
        if (r) {
                free(*handles);
                free(*fds);
                return r;
        }
        kpa_start_options *o = &arg.opts;
        o->handles = *handles;
        o->n_handles = n;
        o->extra_args = arg.extra_args;
        o->n_extra_args = arg.n_extra_args;
        o->extra_env = arg.env;
        o->n_extra_env = arg.n_env;
        o->binds = arg.binds;
        o->n_binds = arg.n_binds;
        return 0;
}

/* A pty (--tty, or by default when our stdin and stdout are terminals) of
 * our terminal's size, else our stdio with pipes for the terminals among
 * them: into O and T. 0, or -errno. */
static int prepare_terminal(kpa_start_options *o, tty_relay *t)
{
        *t = (tty_relay){.in = STDIN_FILENO, .in_dst = -1, .out = {{-1, STDOUT_FILENO},
                                                                   {-1, STDERR_FILENO}},
                         .size_fd = size_terminal()};
        o->tty = arg.tty == 1 || (arg.tty < 0 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
        struct winsize ws;
        if (o->tty && t->size_fd >= 0 && ioctl(t->size_fd, TIOCGWINSZ, &ws) == 0) {
                o->tty_rows = ws.ws_row;
                o->tty_cols = ws.ws_col;
        }
        /* with a pty, the application gets none of ours */
        o->stdin_fd = o->tty ? -1 : stdio_fd(STDIN_FILENO);
        o->stdout_fd = o->tty ? -1 : stdio_fd(STDOUT_FILENO);
        o->stderr_fd = o->tty ? -1 : stdio_fd(STDERR_FILENO);
        t->tty = o->tty;
        if (o->tty)
                return 0;
        int r = relay_pipes(t, o);
        if (r < 0)
                relay_close(t);
        return r;
}

/* The instance runs: take its pty's master and put our terminal in raw
 * mode, or close the application's ends of the pipes. */
static void start_relay(kpa_control *ctl, const kpa_token *token, kpa_start_options *o,
                        tty_relay *t)
{
        if (!o->tty) {
                relay_pipes_started(t, o);
                return;
        }
        int m = kpa_process_take_tty(ctl, token, NULL);
        if (m < 0) { /* cannot be: it is Running */
                t->in = -1;
                return;
        }
        fcntl(m, F_SETFL, O_NONBLOCK);
        t->in_dst = t->out[0].src = m;
        copy_window_size(t); /* it may have changed meanwhile */
        make_terminal_raw();
}

/* --print-spec: the plan of this start, as libkpa would make it, in JSON */
static int print_spec(void)
{
        kpa_user_handle *handles;
        int *fds;
        int r = prepare_start(&handles, &fds);
        if (r)
                return r;
        arg.opts.tty = arg.tty == 1;
        if (!arg.opts.tty) { /* the application would get ours (or pipes in their place) */
                arg.opts.stdin_fd = STDIN_FILENO;
                arg.opts.stdout_fd = STDOUT_FILENO;
                arg.opts.stderr_fd = STDERR_FILENO;
        }
        kpa_error err;
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = NULL;
        r = kpa_instance_spec_new_package(arg.root, arg.app_id, arg.run_config_id, &arg.opts, &spec,
                                          &err);
        cli_close_fds(fds, arg.n_handles);
        free(handles);
        free(fds);
        free_listens();
        if (r < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        _cleanup_free_ char *json = kpa_instance_spec_to_json(spec);
        puts(json);
        return EXIT_SUCCESS;
}

static int run(void)
{
        if (arg.print_spec)
                return print_spec();
        kpa_user_handle *handles;
        int *fds;
        int r = prepare_start(&handles, &fds);
        if (r)
                return r;

        kpa_start_options *o = &arg.opts;
        tty_relay relay;
        r = prepare_terminal(o, &relay);
        if (r < 0) {
                cli_close_fds(fds, arg.n_handles);
                free(handles);
                free(fds);
                cli_error("pipe: %s", strerror(-r));
                return EXIT_FAILURE;
        }

        /* blocked before the start, so that a Ctrl-C during it is not lost */
        sigset_t mask;
        _cleanup_close_ int sfd = block_stop_signals(&mask);
        if (sfd < 0) {
                cli_close_fds(fds, arg.n_handles);
                free(handles);
                free(fds);
                relay_close(&relay);
                cli_error("signalfd: %s", strerror(-sfd));
                return EXIT_FAILURE;
        }

        kpa_error err;
        _cleanup_(kpa_control_closep) kpa_control *ctl = NULL;
        kpa_token token = {{0}};
        kpa_trace("kpa-run: start");
        if (kpa_control_open_local(arg.root, &ctl, &err) < 0) {
                cli_report(&err);
                r = EXIT_FAILURE;
        } else if (kpa_process_start(ctl, arg.app_id, arg.run_config_id, o, &token, &err) < 0) {
                r = report_failed_start(ctl, &token, &err);
                unsigned stops = 0;
                wait_for_services(ctl, &token, sfd, &stops, &relay); /* closed: inert */
        } else {
                r = -1;
        }
        /* kpa_process_start keeps duplicates of what it needs */
        cli_close_fds(fds, arg.n_handles);
        free(handles);
        free(fds);
        o->handles = NULL;
        if (r >= 0) {
                relay_close(&relay);
                free_listens();
                return r;
        }

        start_relay(ctl, &token, o, &relay);
        /* the sockets the manifest declares: the controller keeps them */
        int declared_fds[64];
        const char *declared_names[64];
        size_t n_declared = kpa_control_declared_sockets(ctl, declared_fds, declared_names,
                                                         ELEMENTSOF(declared_fds));
        for (size_t k = 0; k < n_declared && k < ELEMENTSOF(declared_fds); k++)
                watch_listen(declared_names[k], declared_fds[k], false);
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        unsigned stops = 0;
        kpa_trace("kpa-run: running");
        kpa_error_clear(&err);
        r = wait_for_end(ctl, &token, sfd, &ctx, &stops, &relay, &err);
        free_listens();
        restore_terminal();
        if (relay.tty)
                relay_close(&relay); /* the services had no part in the pty */
        kpa_trace("kpa-run: ended");
        if (r == 0) /* their output goes on through the pipes until they end */
                wait_for_services(ctl, &token, sfd, &stops, &relay);
        relay_close(&relay);
        if (r < 0) {
                if (err.message[0])
                        cli_report(&err);
                else
                        cli_error("%s: waiting for the application: %s", arg.app_id, strerror(-r));
                return EXIT_FAILURE;
        }
        report_end(&ctx);
        if (ctx.cleanup_error)
                cli_error("warning: %s: the instance's cgroup could not be removed (%s); the next "
                          "start of %s removes it", arg.app_id, strerror(ctx.cleanup_error),
                          arg.app_id);
        if (arg.json)
                print_json(&token, &ctx);
        return exit_status_of(&ctx, stops > 0);
}

/* ---- through kpa-execd ---- */

static int connect_daemon(kpa_control **ctl)
{
        kpa_error err;
        if (kpa_control_connect(arg.socket, ctl, &err) < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        return 0;
}

/* A failure (R, E) of a call about the instance of arg.token. */
static int report_daemon_error(const kpa_error *e, int r)
{
        cli_error("%s: %s", arg.token_arg, e->message[0] ? e->message : strerror(-r));
        return EXIT_FAILURE;
}

static int report_not_existing(void)
{
        cli_error("%s: %s", arg.token_arg, KPA_NO_SUCH_INSTANCE);
        return EXIT_FAILURE;
}

static int detach(void)
{
        kpa_user_handle *handles;
        int *fds;
        int r = prepare_start(&handles, &fds);
        if (r)
                return r;
        /* the daemon logs the instance's output: no stdio goes along */
        kpa_start_options *o = &arg.opts;
        o->stdin_fd = o->stdout_fd = o->stderr_fd = -1;
        _cleanup_(kpa_control_closep) kpa_control *ctl = NULL;
        kpa_token token = {{0}};
        r = connect_daemon(&ctl);
        kpa_error err;
        if (r == 0 && kpa_process_start(ctl, arg.app_id, arg.run_config_id, o, &token, &err) < 0)
                r = report_failed_start(ctl, &token, &err);
        /* the daemon has its own copies of the handles now */
        cli_close_fds(fds, arg.n_handles);
        free(handles);
        free(fds);
        o->handles = NULL;
        if (r)
                return r;
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&token, tok);
        printf("%s\n", tok);
        return EXIT_SUCCESS;
}

/* How an instance ended, in a few words ("-" while it runs). */
static void exit_text(const kpa_process_context *c, char *buf, size_t len)
{
        if (!has_ended(c->state) || c->state == KPA_PROCESS_NOT_EXISTING)
                snprintf(buf, len, "-");
        else if (c->exit_status == KPA_EXIT_UNEXPECTED)
                snprintf(buf, len, "signal %d", c->exit_code);
        else if (c->exit_status == KPA_EXIT_TERMINATED)
                snprintf(buf, len, "stopped");
        else if (c->exit_status == KPA_EXIT_NORMAL)
                snprintf(buf, len, "%d", c->exit_code);
        else
                snprintf(buf, len, "start failed");
}

/* T, a Unix time, as local time with how long ago. */
static void print_time(const char *label, int64_t t)
{
        char when[64] = "?";
        time_t tt = (time_t)t;
        struct tm tm;
        if (localtime_r(&tt, &tm))
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
        int64_t ago = (int64_t)time(NULL) - t;
        printf("%-14s%s (%lld s ago)\n", label, when, (long long)(ago > 0 ? ago : 0));
}

/* When it started, its restarts, and how its latest failure ended. */
static void print_history(const kpa_process_context *c)
{
        if (c->exit_cause[0] && has_ended(c->state))
                printf("exit cause:   %s\n", c->exit_cause);
        if (c->started_at)
                print_time("started:", c->started_at);
        printf("restarts:     %u\n", c->restarts);
        if (c->restart_in_ms)
                printf("restart:      in %.3g s\n", c->restart_in_ms / 1000.0);
        if (c->last_failure.state == KPA_PROCESS_NONE)
                return;
        printf("last failure: %s, %s, exit code %d, exit reason %d, cause %s\n",
               kpa_process_state_name(c->last_failure.state),
               kpa_exit_status_name(c->last_failure.exit_status), c->last_failure.exit_code,
               c->last_failure.exit_reason,
               c->last_failure.exit_cause[0] ? c->last_failure.exit_cause : "-");
        if (c->last_failure.message[0])
                printf("              %s\n", c->last_failure.message);
        print_time("failed:", c->last_failure.at);
}

static void print_status(const kpa_process_context *c)
{
        printf("token:        %s\n", arg.token_str);
        printf("state:        %s\n", kpa_process_state_name(c->state));
        printf("package:      %s\n", c->app_id);
        printf("run config:   %s\n", c->run_config_id);
        if (c->pid > 0)
                printf("pid:          %d\n", (int)c->pid);
        if (c->app_pid > 0)
                printf("app pid:      %d\n", (int)c->app_pid);
        if (c->owner != (uid_t)-1)
                printf("owner:        %lld\n", (long long)c->owner);
        if (has_ended(c->state)) {
                printf("exit status:  %s\n", kpa_exit_status_name(c->exit_status));
                printf("exit code:    %d\n", c->exit_code);
                if (c->exit_reason)
                        printf("exit reason:  %d (%s)\n", c->exit_reason, strerror(c->exit_reason));
                else
                        printf("exit reason:  0\n");
        }
        if (c->message[0])
                printf("message:      %s\n", c->message);
        print_history(c);
        if (c->cleanup_error)
                printf("cleanup:      the cgroup could not be removed: %s\n",
                       strerror(c->cleanup_error));
}

static int status_one(kpa_control *ctl);
static bool status_in_array; /* --status --json of several: one array */

/* --status NAME that matches N instances: each, text blocks apart, or a
 * JSON array. */
static int status_many(kpa_control *ctl, const kpa_token *v, size_t n)
{
        if (arg.json)
                printf("[");
        status_in_array = arg.json;
        int r = EXIT_SUCCESS;
        for (size_t k = 0; k < n && r == EXIT_SUCCESS; k++) {
                arg.token = v[k];
                kpa_token_to_string(&v[k], arg.token_str);
                if (k > 0)
                        printf(arg.json ? "," : "\n");
                fflush(stdout);
                r = status_one(ctl);
        }
        if (arg.json)
                printf("]\n");
        return r;
}

static int status(kpa_control *ctl, const kpa_token *v, size_t n)
{
        if (n > 1)
                return status_many(ctl, v, n);
        return status_one(ctl);
}

static int status_one(kpa_control *ctl)
{
        kpa_process_context c;
        kpa_process_context_init(&c);
        kpa_error err;
        int r = kpa_process_get_state(ctl, &arg.token, &c, &err);
        if (r < 0)
                return report_daemon_error(&err, r);
        if (arg.json) {
                _cleanup_free_ char *j = kpa_process_context_to_json(&arg.token, &c);
                printf(status_in_array ? "%s" : "%s\n", j);
        }
        if (c.state == KPA_PROCESS_NOT_EXISTING)
                return report_not_existing();
        if (!arg.json)
                print_status(&c);
        return EXIT_SUCCESS;
}

static int stop(kpa_control *ctl)
{
        kpa_error err;
        int r = kpa_process_stop(ctl, &arg.token, arg.force ? KPA_STOP_FORCED : KPA_STOP_NORMAL,
                                 &err);
        return r < 0 ? report_daemon_error(&err, r) : EXIT_SUCCESS;
}

/* --stop-all: StopAll (root only: the daemon decides, by SO_PEERCRED),
 * then a wait for each instance that was live before it, so that "stopped"
 * means ended, as after a Normal stop's grace period. One started in
 * between is stopped too, but not waited for. */
static int stop_all(kpa_control *ctl)
{
        _cleanup_free_ kpa_token *tokens = NULL;
        _cleanup_free_ kpa_process_context *ctxs = NULL;
        size_t n = 0, stopped = 0;
        kpa_error err;
        if (kpa_process_list_contexts(ctl, &tokens, &ctxs, &n, &err) < 0 ||
            kpa_process_stop_all(ctl, arg.force ? KPA_STOP_FORCED : KPA_STOP_NORMAL, &stopped,
                                 &err) < 0) {
                cli_error("--stop-all: %s", err.message);
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < n; i++) {
                if (has_ended(ctxs[i].state))
                        continue;
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                int r = kpa_process_wait(ctl, &tokens[i], -1, &ctx, &err);
                if (r < 0) {
                        char t[KPA_TOKEN_STRING_MAX];
                        kpa_token_to_string(&tokens[i], t);
                        cli_error("--stop-all: waiting for %s to end: %s", t,
                                  err.message[0] ? err.message : strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        if (!arg.quiet)
                printf("stopped %zu process%s\n", stopped, stopped == 1 ? "" : "es");
        return EXIT_SUCCESS;
}

static int wait_instance(kpa_control *ctl)
{
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        kpa_error err;
        int r = kpa_process_wait(ctl, &arg.token, arg.has_timeout ? (int)arg.timeout_ms : -1,
                                 &ctx, &err);
        if (r == -ETIMEDOUT) {
                cli_error("%s: still %s after the timeout of %.3g s", arg.token_arg,
                          kpa_process_state_name(ctx.state), arg.timeout_ms / 1000.0);
                return EXIT_FAILURE;
        }
        if (r < 0)
                return report_daemon_error(&err, r);
        if (ctx.state == KPA_PROCESS_NOT_EXISTING)
                return report_not_existing();
        report_end(&ctx);
        if (arg.json)
                print_json(&arg.token, &ctx);
        /* the context does not say whether a stop was asked for; its
         * message does ("stopped by SIGTERM") */
        return exit_status_of(&ctx, strncmp(ctx.message, "stopped by ", 11) == 0);
}

static int list(kpa_control *ctl)
{
        _cleanup_free_ kpa_token *tokens = NULL;
        _cleanup_free_ kpa_process_context *ctx = NULL;
        size_t n = 0;
        kpa_error err;
        if (kpa_process_list_contexts(ctl, &tokens, &ctx, &n, &err) < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        if (arg.json) {
                printf("[");
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *j = kpa_process_context_to_json(&tokens[i], &ctx[i]);
                        printf("%s%s", i ? "," : "", j);
                }
                printf("]\n");
                return EXIT_SUCCESS;
        }
        int wpkg = (int)strlen("PACKAGE"), wrc = (int)strlen("RUNCONFIG");
        for (size_t i = 0; i < n; i++) {
                if ((int)strlen(ctx[i].app_id) > wpkg)
                        wpkg = (int)strlen(ctx[i].app_id);
                if ((int)strlen(ctx[i].run_config_id) > wrc)
                        wrc = (int)strlen(ctx[i].run_config_id);
        }
        printf("%-32s  %-11s  %-*s  %-*s  %7s  %8s  %s\n", "TOKEN", "STATE", wpkg, "PACKAGE", wrc,
               "RUNCONFIG", "PID", "RESTARTS", "EXIT");
        for (size_t i = 0; i < n; i++) {
                char tok[KPA_TOKEN_STRING_MAX], pid[16], ex[32];
                kpa_token_to_string(&tokens[i], tok);
                snprintf(pid, sizeof(pid), ctx[i].pid > 0 ? "%d" : "-", (int)ctx[i].pid);
                exit_text(&ctx[i], ex, sizeof(ex));
                printf("%-32s  %-11s  %-*s  %-*s  %7s  %8u  %s\n", tok,
                       kpa_process_state_name(ctx[i].state), wpkg, ctx[i].app_id, wrc,
                       ctx[i].run_config_id, pid, ctx[i].restarts, ex);
        }
        return EXIT_SUCCESS;
}

/* ---- --logs ---- */

/* The instance's current (or ROTATED: previous) log file, read-only. */
static int open_log(kpa_control *ctl, bool rotated, int *out, kpa_error *err)
{
        return kpa_process_open_log(ctl, &arg.token, rotated, out, err);
}

/* Copy FD from *OFF to its current end to stdout. */
static int copy_log(int fd, off_t *off)
{
        char buf[65536];
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof(buf), *off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return fflush(stdout) == EOF ? (errno ? -errno : -EIO) : 0;
                if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
                        return errno ? -errno : -EIO;
                *off += n;
        }
}

static int log_write_error(int r)
{
        cli_error("%s: copying the log: %s", arg.token_arg, strerror(-r));
        return EXIT_FAILURE;
}

static bool same_file(int a, int b)
{
        struct stat x, y;
        return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev &&
               x.st_ino == y.st_ino;
}

/* Until the instance has ended: print what its log gains, and move to the
 * new file when the log was rotated. *FD and *OFF: where we are. */
static int follow_log(kpa_control *ctl, int *fd, off_t *off)
{
        for (;;) {
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                kpa_error err;
                int r = kpa_process_get_state(ctl, &arg.token, &ctx, &err);
                if (r < 0)
                        return report_daemon_error(&err, r);
                /* the state first: what was written before the end is read below */
                bool ended = has_ended(ctx.state);
                if ((r = copy_log(*fd, off)) < 0)
                        return log_write_error(r);
                int cur = -1;
                r = open_log(ctl, false, &cur, &err);
                if (r < 0) {
                        if (ended)
                                return EXIT_SUCCESS;
                        cli_error("%s: %s", arg.token_arg, err.message);
                        return EXIT_FAILURE;
                }
                if (same_file(*fd, cur)) {
                        close(cur);
                } else { /* rotated: the rest of the old file, then the new one */
                        r = copy_log(*fd, off);
                        close(*fd);
                        *fd = cur;
                        *off = 0;
                        if (r >= 0)
                                r = copy_log(*fd, off);
                        if (r < 0)
                                return log_write_error(r);
                }
                if (ended)
                        return EXIT_SUCCESS;
                poll(NULL, 0, FOLLOW_INTERVAL_MS);
        }
}

static int logs(kpa_control *ctl)
{
        kpa_error err;
        int fd = -1;
        off_t off = 0;
        /* the previous file first, when there is one */
        int r = open_log(ctl, true, &fd, &err);
        if (r == 0) {
                r = copy_log(fd, &off);
                close(fd);
                if (r < 0)
                        return log_write_error(r);
        } else if (r != -ENOENT) {
                cli_error("%s: %s", arg.token_arg, err.message);
                return EXIT_FAILURE;
        }
        if (open_log(ctl, false, &fd, &err) < 0) {
                cli_error("%s: %s", arg.token_arg, err.message);
                return EXIT_FAILURE;
        }
        off = 0;
        r = copy_log(fd, &off);
        if (r < 0) {
                close(fd);
                return log_write_error(r);
        }
        if (arg.follow)
                r = follow_log(ctl, &fd, &off);
        close(fd);
        return r;
}

/* The instances NAME matches, on stderr after the refusal. */
static void print_matches(kpa_control *ctl, const kpa_token *v, size_t n)
{
        for (size_t k = 0; k < n; k++) {
                char t[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(&v[k], t);
                kpa_process_context c;
                kpa_process_context_init(&c);
                if (kpa_process_get_state(ctl, &v[k], &c, NULL) < 0) {
                        memset(&c, 0, sizeof(c));
                        c.state = KPA_PROCESS_NOT_EXISTING;
                }
                fprintf(stderr, "  %s  %s/%s  %s", t, c.app_id, c.run_config_id,
                        kpa_process_state_name(c.state));
                if (c.pid > 0)
                        fprintf(stderr, "  pid %d", (int)c.pid);
                fprintf(stderr, "\n");
        }
}

/* A name (APP_ID[/RUNCONFIG]) given for a token: the daemon's matches into
 * *V, *N; arg.token is the one match. 0, or the exit status after saying
 * why not: no match, or (but for --status) more than one. */
static int resolve_name(kpa_control *ctl, kpa_token **v, size_t *n)
{
        kpa_error err;
        if (kpa_process_find(ctl, arg.token_arg, v, n, &err) < 0) {
                cli_error("%s: %s", arg.token_arg, err.message);
                return EXIT_FAILURE;
        }
        if (*n == 0) {
                cli_error("%s: no such instance (kpa-execd knows no instance of that package%s)",
                          arg.token_arg, strchr(arg.token_arg, '/') ? " and run configuration" : "");
                return EXIT_FAILURE;
        }
        if (*n > 1 && arg.mode != MODE_STATUS) {
                cli_error("%s names %zu instances; give %s one of their tokens:", arg.token_arg, *n,
                          mode_options[arg.mode]);
                print_matches(ctl, *v, *n);
                return EXIT_FAILURE;
        }
        arg.token = (*v)[0];
        kpa_token_to_string(&arg.token, arg.token_str);
        return 0;
}

static int run_daemon_mode(void)
{
        if (arg.mode == MODE_DETACH)
                return detach();
        _cleanup_(kpa_control_closep) kpa_control *ctl = NULL;
        int r = connect_daemon(&ctl);
        if (r)
                return r;
        _cleanup_free_ kpa_token *matches = NULL;
        size_t n_matches = 1;
        if (arg.by_name && (r = resolve_name(ctl, &matches, &n_matches)))
                return r;
        switch (arg.mode) {
        case MODE_STATUS: return status(ctl, matches, n_matches);
        case MODE_STOP: return stop(ctl);
        case MODE_STOP_ALL: return stop_all(ctl);
        case MODE_WAIT: return wait_instance(ctl);
        case MODE_LIST: return list(ctl);
        case MODE_LOGS: return logs(ctl);
        default: return EXIT_FAILURE;
        }
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
