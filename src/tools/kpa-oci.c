/* kpa-oci: an OCI runtime (runtime-spec 1.x) with runc's command line, so
 * that podman and containerd can drive kpa's sandbox. The runtime itself is
 * libkpa's (kpa/oci.h, src/lib/oci-runtime.c); this file holds the command
 * line, the messages (stderr and the --log file) and the exit codes. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli.h"
#include "kpa/oci.h"

#define DEFAULT_ROOT KPA_OCI_DEFAULT_ROOT

static const char *state_root = DEFAULT_ROOT;
static FILE *log_file;
static bool log_json;

/* ---- messages: stderr, and the --log file (runc's text or JSON lines) ---- */

static void log_line(const char *level, const char *msg)
{
        if (!log_file)
                return;
        char when[64];
        time_t now = time(NULL);
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
        if (log_json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "level", json_object_new_string(level));
                json_object_object_add(o, "msg", json_object_new_string(msg));
                json_object_object_add(o, "time", json_object_new_string(when));
                fprintf(log_file, "%s\n",
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
        } else {
                fprintf(log_file, "time=\"%s\" level=%s msg=\"%s\"\n", when, level, msg);
        }
        fflush(log_file);
}

static void say(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *level, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s%s\n", cli_program(), strcmp(level, "error") ? "warning: " : "",
                msg);
        log_line(level, msg);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        say("error", "%s", msg);
        return EXIT_FAILURE;
}

/* ---- the library's side: options, messages, errors ---- */

/* what the library says without failing the call: said as it happens */
static void log_cb(const char *level, const char *msg, void *userdata)
{
        (void)userdata;
        say(level, "%s", msg);
}

static kpa_oci_options runtime_options(void)
{
        kpa_oci_options o;
        kpa_oci_options_init(&o);
        o.root = state_root;
        o.program = cli_program();
        o.log = log_cb;
        return o;
}

/* a failed call's message; a call that failed without one says its errno */
static int failed(const kpa_error *err)
{
        return fail("%s", err->message[0] ? err->message : strerror(err->code ? err->code : EIO));
}

/* ---- commands ---- */

static int cmd_state(int argc, char **argv)
{
        if (argc != 2)
                return cli_usage_error("state needs one container id");
        kpa_oci_options o = runtime_options();
        kpa_error err = {0};
        char *text = NULL;
        if (kpa_oci_state(&o, argv[1], &text, &err) < 0)
                return failed(&err);
        printf("%s\n", text);
        free(text);
        return 0;
}

static int cmd_start(int argc, char **argv)
{
        if (argc != 2)
                return cli_usage_error("start needs one container id");
        kpa_oci_options o = runtime_options();
        kpa_error err = {0};
        return kpa_oci_start(&o, argv[1], &err) < 0 ? failed(&err) : 0;
}

static int cmd_kill(int argc, char **argv)
{
        static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {0}};
        bool all = false;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+a", opts, NULL)) != -1) {
                if (c != 'a')
                        return cli_usage_error("kill: unknown option");
                all = true;
        }
        if (argc - optind < 1 || argc - optind > 2)
                return cli_usage_error("kill needs a container id and an optional signal");
        int sig = argc - optind == 2 ? kpa_oci_signal_parse(argv[optind + 1]) : SIGTERM;
        if (sig < 0)
                return fail("signal \"%s\": unknown", argv[optind + 1]);
        kpa_oci_options o = runtime_options();
        kpa_error err = {0};
        return kpa_oci_kill(&o, argv[optind], sig, all, &err) < 0 ? failed(&err) : 0;
}

static int cmd_delete(int argc, char **argv)
{
        static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {0}};
        bool force = false;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
                if (c != 'f')
                        return cli_usage_error("delete: unknown option");
                force = true;
        }
        if (argc - optind != 1)
                return cli_usage_error("delete needs one container id");
        kpa_oci_options o = runtime_options();
        kpa_error err = {0};
        return kpa_oci_delete(&o, argv[optind], force, &err) < 0 ? failed(&err) : 0;
}

/* create and run share their options */
static int parse_create(int argc, char **argv, kpa_oci_options *o, bool *detach, bool run)
{
        static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                             {"pid-file", required_argument, NULL, 'p'},
                                             {"console-socket", required_argument, NULL, 'c'},
                                             {"detach", no_argument, NULL, 'd'},
                                             {"no-pivot", no_argument, NULL, 'P'},
                                             {"no-new-keyring", no_argument, NULL, 'K'},
                                             {"preserve-fds", required_argument, NULL, 'F'},
                                             {0}};
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+b:d", opts, NULL)) != -1) {
                switch (c) {
                case 'b': o->bundle = optarg; break;
                case 'p': o->pid_file = optarg; break;
                case 'c': o->console_socket = optarg; break;
                case 'd':
                        if (!run)
                                return cli_usage_error("create: --detach is for run");
                        *detach = true;
                        break;
                case 'P': return fail("--no-pivot: not supported (kpa always uses pivot_root)");
                case 'K': break; /* kpa gives the container a new session keyring anyway */
                case 'F':
                        if (!optarg || strcmp(optarg, "0") != 0)
                                return fail("--preserve-fds %s: not supported", optarg);
                        break;
                default: return cli_usage_error("%s: unknown option", run ? "run" : "create");
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("%s needs one container id", run ? "run" : "create");
        return 0;
}

static int cmd_create(int argc, char **argv)
{
        kpa_oci_options o = runtime_options();
        bool detach = false;
        int r = parse_create(argc, argv, &o, &detach, false);
        if (r != 0)
                return r;
        kpa_error err = {0};
        return kpa_oci_create(&o, argv[optind], &err) < 0 ? failed(&err) : 0;
}

static int cmd_run(int argc, char **argv)
{
        kpa_oci_options o = runtime_options();
        bool detach = false;
        int r = parse_create(argc, argv, &o, &detach, true);
        if (r != 0)
                return r;
        kpa_error err = {0};
        int code = 0;
        if (kpa_oci_run(&o, argv[optind], detach, &code, &err) < 0)
                return failed(&err);
        return code;
}

static int cmd_exec(int argc, char **argv)
{
        static const struct option opts[] = {{"process", required_argument, NULL, 'p'},
                                             {"detach", no_argument, NULL, 'd'},
                                             {"pid-file", required_argument, NULL, 'P'},
                                             {"console-socket", required_argument, NULL, 'c'},
                                             {"tty", no_argument, NULL, 't'},
                                             {"cwd", required_argument, NULL, 'w'},
                                             {"env", required_argument, NULL, 'e'},
                                             {"user", required_argument, NULL, 'u'},
                                             {"preserve-fds", required_argument, NULL, 'F'},
                                             {"no-new-privs", no_argument, NULL, 'n'},
                                             {0}};
        kpa_oci_options o = runtime_options();
        kpa_oci_exec_options e;
        kpa_oci_exec_options_init(&e);
        bool detach = false;
        const char **env = cli_xcalloc((size_t)argc + 1, sizeof(char *));
        size_t n_env = 0;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+p:dtw:e:u:", opts, NULL)) != -1) {
                switch (c) {
                case 'p': e.process_file = optarg; break;
                case 'd': detach = true; break;
                case 'P': o.pid_file = optarg; break;
                case 'c': o.console_socket = optarg; break;
                case 't': e.tty = true; break;
                case 'w': e.cwd = optarg; break;
                case 'e': env[n_env++] = optarg; break;
                case 'u': e.user = optarg; break;
                case 'n': e.no_new_privs = true; break;
                case 'F':
                        if (strcmp(optarg, "0") != 0) {
                                free(env);
                                return fail("--preserve-fds %s: not supported", optarg);
                        }
                        break;
                default: free(env); return cli_usage_error("exec: unknown option");
                }
        }
        if (optind >= argc) {
                free(env);
                return cli_usage_error("exec needs a container id");
        }
        if (!e.process_file && optind + 1 >= argc) {
                free(env);
                return cli_usage_error("exec needs a command, or --process");
        }
        e.args = (const char *const *)(argv + optind + 1);
        e.env = env;
        kpa_error err = {0};
        pid_t pid = 0;
        int r = kpa_oci_exec(&o, argv[optind], &e, &pid, &err);
        free(env);
        if (r < 0)
                return failed(&err);
        if (detach)
                return 0;
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_features(void)
{
        kpa_error err = {0};
        char *text = NULL;
        if (kpa_oci_features(&text, &err) < 0)
                return failed(&err);
        fputs(text, stdout);
        free(text);
        return 0;
}

/* A config.json to start from, as `runc spec` writes (busybox-friendly). */
static int cmd_spec(int argc, char **argv)
{
        static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'}, {0}};
        const char *bundle = ".";
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+b:", opts, NULL)) != -1) {
                if (c != 'b')
                        return cli_usage_error("spec: unknown option");
                bundle = optarg;
        }
        kpa_error err = {0};
        return kpa_oci_spec(bundle, &err) < 0 ? failed(&err) : 0;
}

static void usage(void)
{
        printf("Usage: %s [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n"
               "An OCI runtime (runtime-spec 1.x) that runs containers in kpa's sandbox.\n\n"
               "Commands:\n"
               "  create [-b BUNDLE] [--pid-file FILE] [--console-socket PATH] ID\n"
               "                                            set the container up; it waits for "
               "start\n"
               "  start ID                                  start the process of a created "
               "container\n"
               "  run [-b BUNDLE] [--pid-file FILE] [-d] ID create, start, wait, delete\n"
               "  state ID                                  print the state JSON\n"
               "  kill [--all] ID [SIGNAL]                  send SIGNAL (default SIGTERM)\n"
               "  delete [--force] ID                       remove a stopped (or, forced, any) "
               "container\n"
               "  features                                  print what is supported, as JSON\n"
               "  spec [-b BUNDLE]                          write a config.json to start from\n"
               "  exec [--process FILE] [-d] [--pid-file FILE] [-t --console-socket PATH]\n"
               "       ID [COMMAND...]                      run a further process in a running "
               "one\n\n"
               "Global options:\n"
               "  --root DIR          state directory (default %s)\n"
               "  --log FILE          also write messages to FILE\n"
               "  --log-format FMT    text (default) or json\n"
               "  --systemd-cgroup    refused: only the cgroupfs driver is supported\n"
               "  --debug             accepted, no effect\n"
               "  -h, --help          this help\n"
               "  -v, --version       the version\n"
               "See kpa-oci(8) for the config.json fields it honours and those it refuses.\n",
               cli_program(), DEFAULT_ROOT);
}

enum { OPT_ROOT = 1000, OPT_LOG, OPT_LOG_FORMAT, OPT_SYSTEMD_CGROUP, OPT_DEBUG };

int main(int argc, char **argv)
{
        cli_init(argv[0]);
        static const struct option opts[] = {
                {"root", required_argument, NULL, OPT_ROOT},
                {"log", required_argument, NULL, OPT_LOG},
                {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
                {"systemd-cgroup", no_argument, NULL, OPT_SYSTEMD_CGROUP},
                {"debug", no_argument, NULL, OPT_DEBUG},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'v'},
                {0}};
        const char *log_path = NULL;
        bool systemd = false;
        int c;
        while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ROOT: state_root = optarg; break;
                case OPT_LOG: log_path = optarg; break;
                case OPT_LOG_FORMAT:
                        if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
                                return cli_usage_error("--log-format %s: text or json", optarg);
                        log_json = strcmp(optarg, "json") == 0;
                        break;
                case OPT_SYSTEMD_CGROUP: systemd = true; break;
                case OPT_DEBUG: break;
                case 'h': usage(); return 0;
                case 'v':
                        printf("%s version %s\nspec: 1.2.0\n", cli_program(), PACKAGE_VERSION);
                        return 0;
                default: return cli_usage_error("unknown option");
                }
        }
        if (log_path && !(log_file = fopen(log_path, "ae")))
                return fail("--log %s: %s", log_path, strerror(errno));
        if (systemd)
                return fail("--systemd-cgroup: not supported, use cgroupfs");
        if (optind >= argc)
                return cli_usage_error("no command given");
        const char *cmd = argv[optind];
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;
        if (strcmp(cmd, "create") == 0)
                return cmd_create(sub_argc, sub_argv);
        if (strcmp(cmd, "start") == 0)
                return cmd_start(sub_argc, sub_argv);
        if (strcmp(cmd, "run") == 0)
                return cmd_run(sub_argc, sub_argv);
        if (strcmp(cmd, "state") == 0)
                return cmd_state(sub_argc, sub_argv);
        if (strcmp(cmd, "kill") == 0)
                return cmd_kill(sub_argc, sub_argv);
        if (strcmp(cmd, "delete") == 0)
                return cmd_delete(sub_argc, sub_argv);
        if (strcmp(cmd, "features") == 0)
                return cmd_features();
        if (strcmp(cmd, "spec") == 0)
                return cmd_spec(sub_argc, sub_argv);
        if (strcmp(cmd, "exec") == 0)
                return cmd_exec(sub_argc, sub_argv);
        return cli_usage_error("unknown command \"%s\"", cmd);
}
