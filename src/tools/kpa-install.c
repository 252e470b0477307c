/* kpa-install: the administrator's front end to the store (install,
 * upgrade, remove, list, info, verify). Argument parsing and printing only;
 * every operation is a libkpa call. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "cli.h"
#include "kpa/oci-image.h"
#include "kpa/package.h"
#include "kpa/process.h"

typedef enum {
        MODE_INSTALL,
        MODE_REMOVE,
        MODE_LIST,
        MODE_INFO,
        MODE_VERIFY,
        MODE_REVOKE,
        MODE_ROLLBACK,
        MODE_HOLD,
        MODE_UNHOLD,
        MODE_RELEASE,
} mode_t_;

static struct {
        const char *root;
        mode_t_ mode;
        bool purge, json, quiet, verbose, all, stop, no_restart;
        const char *revoke;
        kpa_install_options install;
        kpa_package_limits limits; /* install.limits points here */
} arg;

static void usage(void)
{
        printf("Usage:\n"
               "  %1$s [OPTIONS] PACKAGE.kpa...        install or upgrade packages\n"
               "  %1$s [OPTIONS] oci:DIR[:TAG]...      the same from OCI image layouts\n"
               "  %1$s --remove [--purge] [--stop] APP_ID...\n"
               "                                            remove installed packages\n"
               "  %1$s --rollback APP_ID...            go back to the previous version\n"
               "  %1$s --hold|--unhold APP_ID...       keep a package at its version, or not\n"
               "  %1$s --release-storage APP_ID...     unmount a kept private storage image\n"
               "  %1$s --list [--all] [--json]         list installed packages\n"
               "  %1$s --info APP_ID|PACKAGE.kpa [--json]\n"
               "                                            describe a package\n"
               "  %1$s --verify APP_ID...              re-check installed files\n"
               "  %1$s --grant all|NAME[,NAME...] APP_ID...\n"
               "  %1$s --revoke all|NAME[,NAME...] APP_ID...\n"
               "                                            change what is granted\n"
               "\n"
               "Install KPA packages into the kpa store and manage them.\n"
               "\n"
               "Options:\n"
               "  -r, --root DIR       use the store in DIR (default: $KPA_ROOT, else %2$s)\n"
               "      --reinstall      install a package even if the same version is installed\n"
               "      --allow-downgrade\n"
               "                       install a lower version than the installed one\n"
               "      --no-restart     after an upgrade or a rollback, leave the running\n"
               "                       instances on the old version (default: kpa-execd\n"
               "                       restarts those it supervises on the new one)\n"
               "      --force-arch     install even if hwSpecification.arch does not match\n"
               "      --max-size SIZE  refuse packages that unpack to more than SIZE (K/M/G;\n"
               "                       default 4G)\n"
               "      --max-members N  refuse packages with more than N members (default 100000)\n"
               "      --max-ratio N    refuse packages that unpack to more than N bytes per\n"
               "                       packed byte (default 100; 0 turns the check off)\n"
               "      --grant all|NAME[,NAME...]\n"
               "                       grant the permissions a package requests (network,\n"
               "                       readOnlyPaths, allowPtrace, allowPerfEvents, allowBpf,\n"
               "                       allowKeyring, allowUserfaultfd, allowPersonality,\n"
               "                       sockets); a\n"
               "                       package whose requests are not all granted is refused\n"
               "      --policy DIR     read the policy files APP_ID.json from DIR\n"
               "                       (default %3$s)\n"
               "      --trusted-keys DIR\n"
               "                       trust the public keys DIR/*.pub (default\n"
               "                       %4$s); with one key at least,\n"
               "                       only packages signed by one of them install\n"
               "      --allow-unsigned install a package that no trusted key signed, with a\n"
               "                       warning; the install records it\n"
               "      --revoke all|NAME[,NAME...]\n"
               "                       take permissions back from installed packages\n"
               "  -R, --remove         remove the named applications\n"
               "      --purge          with --remove: also delete private storage and the uid\n"
               "      --stop           with --remove: stop the package's running instances\n"
               "                       first (a removal is refused while any runs)\n"
               "      --rollback       swap the installed version with the previous one kept\n"
               "                       by the last upgrade (again: forward)\n"
               "      --hold           refuse upgrades, downgrades, reinstalls and rollbacks\n"
               "                       of a package until --unhold\n"
               "      --unhold         allow them again\n"
               "      --release-storage\n"
               "                       unmount the private storage images (sized storage)\n"
               "                       that kpa keeps mounted for KPA_STORAGE_LINGER seconds\n"
               "                       (default 30) after their last instance, e.g. before\n"
               "                       copying or checking one\n"
               "  -l, --list           list installed applications\n"
               "      --all            with --list: also those removed with their storage kept\n"
               "  -i, --info           show a package's manifest, run configurations and files\n"
               "  -V, --verify         compare installed files with the manifest's digests\n"
               "      --json           machine-readable output for --list and --info\n"
               "  -q, --quiet          print errors only\n"
               "  -v, --verbose        print more detail\n"
               "  -h, --help           show this help\n"
               "      --version        show the version\n"
               "\n"
               "Exit status: 0 success, 1 failure (or differences found by --verify),\n"
               "2 usage error. See kpa-install(8) and kpa-manifest(5).\n",
               cli_program(), kpa_store_default_root(NULL), kpa_policy_default_dir(),
               kpa_trusted_keys_default_dir());
}

enum {
        OPT_REINSTALL = 0x100,
        OPT_FORCE_ARCH,
        OPT_MAX_SIZE,
        OPT_MAX_MEMBERS,
        OPT_MAX_RATIO,
        OPT_PURGE,
        OPT_JSON,
        OPT_VERSION,
        OPT_GRANT,
        OPT_REVOKE,
        OPT_POLICY,
        OPT_ALLOW_DOWNGRADE,
        OPT_NO_RESTART,
        OPT_STOP,
        OPT_ROLLBACK,
        OPT_HOLD,
        OPT_UNHOLD,
        OPT_RELEASE,
        OPT_ALL,
        OPT_TRUSTED_KEYS,
        OPT_ALLOW_UNSIGNED,
};

static int parse_u64(const char *s, uint64_t *out)
{
        char *end;
        errno = 0;
        if (!s || !*s || *s == '-')
                return -EINVAL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *out = v;
        return 0;
}

static int set_mode(mode_t_ m, const char *name)
{
        if (arg.mode != MODE_INSTALL && arg.mode != m)
                return cli_usage_error("%s cannot be combined with another action", name);
        arg.mode = m;
        return 0;
}

static int parse_option(int c, const char *optarg_)
{
        switch (c) {
        case 'r': arg.root = optarg_; return 0;
        case OPT_REINSTALL: arg.install.flags |= KPA_INSTALL_REINSTALL; return 0;
        case OPT_ALLOW_DOWNGRADE: arg.install.flags |= KPA_INSTALL_ALLOW_DOWNGRADE; return 0;
        case OPT_NO_RESTART: arg.no_restart = true; return 0;
        case OPT_STOP: arg.stop = true; return 0;
        case OPT_ALL: arg.all = true; return 0;
        case OPT_ROLLBACK: return set_mode(MODE_ROLLBACK, "--rollback");
        case OPT_HOLD: return set_mode(MODE_HOLD, "--hold");
        case OPT_UNHOLD: return set_mode(MODE_UNHOLD, "--unhold");
        case OPT_RELEASE: return set_mode(MODE_RELEASE, "--release-storage");
        case OPT_FORCE_ARCH: arg.install.flags |= KPA_INSTALL_FORCE_ARCH; return 0;
        case OPT_MAX_SIZE:
                if (cli_parse_size(optarg_, &arg.limits.max_total_bytes) < 0)
                        return cli_usage_error("--max-size: \"%s\" is not a size", optarg_);
                return 0;
        case OPT_MAX_MEMBERS:
                if (parse_u64(optarg_, &arg.limits.max_members) < 0)
                        return cli_usage_error("--max-members: \"%s\" is not a number", optarg_);
                return 0;
        case OPT_MAX_RATIO:
                if (parse_u64(optarg_, &arg.limits.max_ratio) < 0)
                        return cli_usage_error("--max-ratio: \"%s\" is not a number", optarg_);
                return 0;
        case 'R': return set_mode(MODE_REMOVE, "--remove");
        case OPT_PURGE: arg.purge = true; return 0;
        case OPT_GRANT:
                if (arg.install.grant)
                        return cli_usage_error("--grant is given twice (join the names with ',')");
                arg.install.grant = optarg_;
                return 0;
        case OPT_POLICY: arg.install.policy_dir = optarg_; return 0;
        case OPT_TRUSTED_KEYS: arg.install.trusted_keys_dir = optarg_; return 0;
        case OPT_ALLOW_UNSIGNED: arg.install.flags |= KPA_INSTALL_ALLOW_UNSIGNED; return 0;
        case OPT_REVOKE:
                if (arg.revoke)
                        return cli_usage_error("--revoke is given twice (join the names with ',')");
                arg.revoke = optarg_;
                return set_mode(MODE_REVOKE, "--revoke");
        case 'l': return set_mode(MODE_LIST, "--list");
        case 'i': return set_mode(MODE_INFO, "--info");
        case 'V': return set_mode(MODE_VERIFY, "--verify");
        case OPT_JSON: arg.json = true; return 0;
        case 'q': arg.quiet = true; return 0;
        case 'v': arg.verbose = true; return 0;
        case 'h': usage(); exit(EXIT_SUCCESS);
        case OPT_VERSION: printf("%s %s\n", cli_program(), PACKAGE_VERSION); exit(EXIT_SUCCESS);
        default: return cli_usage_error("unknown option");
        }
}

static int parse_args(int argc, char **argv)
{
        static const struct option options[] = {
                {"root", required_argument, NULL, 'r'},
                {"reinstall", no_argument, NULL, OPT_REINSTALL},
                {"allow-downgrade", no_argument, NULL, OPT_ALLOW_DOWNGRADE},
                {"no-restart", no_argument, NULL, OPT_NO_RESTART},
                {"stop", no_argument, NULL, OPT_STOP},
                {"rollback", no_argument, NULL, OPT_ROLLBACK},
                {"hold", no_argument, NULL, OPT_HOLD},
                {"unhold", no_argument, NULL, OPT_UNHOLD},
                {"release-storage", no_argument, NULL, OPT_RELEASE},
                {"all", no_argument, NULL, OPT_ALL},
                {"force-arch", no_argument, NULL, OPT_FORCE_ARCH},
                {"max-size", required_argument, NULL, OPT_MAX_SIZE},
                {"max-members", required_argument, NULL, OPT_MAX_MEMBERS},
                {"max-ratio", required_argument, NULL, OPT_MAX_RATIO},
                {"remove", no_argument, NULL, 'R'},
                {"purge", no_argument, NULL, OPT_PURGE},
                {"grant", required_argument, NULL, OPT_GRANT},
                {"revoke", required_argument, NULL, OPT_REVOKE},
                {"policy", required_argument, NULL, OPT_POLICY},
                {"trusted-keys", required_argument, NULL, OPT_TRUSTED_KEYS},
                {"allow-unsigned", no_argument, NULL, OPT_ALLOW_UNSIGNED},
                {"list", no_argument, NULL, 'l'},
                {"info", no_argument, NULL, 'i'},
                {"verify", no_argument, NULL, 'V'},
                {"json", no_argument, NULL, OPT_JSON},
                {"quiet", no_argument, NULL, 'q'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {0},
        };
        kpa_install_options_init(&arg.install);
        kpa_package_limits_init(&arg.limits);
        arg.install.limits = &arg.limits;
        int r = cli_parse_options(argc, argv, "r:RliVqvh", options, parse_option);
        if (r)
                return r;
        if (arg.purge && arg.mode != MODE_REMOVE)
                return cli_usage_error("--purge only goes with --remove");
        if (arg.stop && arg.mode != MODE_REMOVE)
                return cli_usage_error("--stop only goes with --remove");
        if (arg.all && arg.mode != MODE_LIST)
                return cli_usage_error("--all only goes with --list");
        if (arg.no_restart && arg.mode != MODE_INSTALL && arg.mode != MODE_ROLLBACK)
                return cli_usage_error("--no-restart goes with an install or --rollback");
        if ((arg.install.flags & KPA_INSTALL_ALLOW_DOWNGRADE) && arg.mode != MODE_INSTALL)
                return cli_usage_error("--allow-downgrade only goes with an install");
        if (arg.install.grant && arg.mode != MODE_INSTALL)
                return cli_usage_error("--grant goes with an install or an APP_ID, not with "
                                       "another action");
        if (arg.install.policy_dir && arg.mode != MODE_INSTALL)
                return cli_usage_error("--policy only goes with an install");
        if (arg.install.trusted_keys_dir && arg.mode != MODE_INSTALL && arg.mode != MODE_INFO &&
            arg.mode != MODE_VERIFY && arg.mode != MODE_ROLLBACK)
                return cli_usage_error(
                        "--trusted-keys goes with an install, --rollback, --info or --verify");
        if ((arg.install.flags & KPA_INSTALL_ALLOW_UNSIGNED) && arg.mode != MODE_INSTALL)
                return cli_usage_error("--allow-unsigned only goes with an install");
        if (arg.json && arg.mode != MODE_LIST && arg.mode != MODE_INFO)
                return cli_usage_error("--json only goes with --list or --info");
        int left = argc - optind;
        if (arg.mode == MODE_LIST && left > 0)
                return cli_usage_error("--list takes no arguments");
        if (arg.mode == MODE_INFO && left != 1)
                return cli_usage_error("--info takes one APP_ID or PACKAGE.kpa");
        if (arg.mode != MODE_LIST && left == 0)
                return cli_usage_error(arg.mode == MODE_INSTALL ? "no package given"
                                                                : "no application id given");
        return 0;
}

/* ---- permissions ---- */

/* An argument is a package file when it names an existing regular file and
 * looks like a path (has a '/' or ends in .kpa); otherwise an application id. */
static bool looks_like_package(const char *s)
{
        struct stat st;
        size_t len = strlen(s);
        bool pathish = strchr(s, '/') || (len > 4 && streq(s + len - 4, ".kpa"));
        return pathish && stat(s, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* One plain line per request, before the package is published. */
static void print_permissions(const char *app_id, char *const *requested, char *const *granted,
                              char *const *new_requests, bool upgrade, void *userdata)
{
        (void)userdata;
        for (size_t i = 0; requested[i]; i++) {
                bool ok = kpa_permissions_contain(granted, requested[i]);
                bool fresh = upgrade && kpa_permissions_contain(new_requests, requested[i]);
                if (arg.quiet && ok)
                        continue;
                _cleanup_free_ char *d = kpa_permission_describe(requested[i]);
                printf("%s requests %s: %s%s\n", app_id, d, ok ? "granted" : "NOT GRANTED",
                       fresh ? " (new in this version)" : "");
        }
        fflush(stdout);
}

/* With --grant: an installed application's id rather than a package file
 * (no '/', no .kpa ending, no such file, no oci: image). */
static bool is_app_id(const char *s)
{
        size_t len = strlen(s);
        struct stat st;
        return !strchr(s, '/') && !(len > 4 && streq(s + len - 4, ".kpa")) && stat(s, &st) < 0 &&
               strncmp(s, "oci:", 4) != 0;
}

static int grant_one(kpa_store *store, const char *app_id, const char *names, bool revoke)
{
        kpa_error err;
        _cleanup_strv_free_ char **changed = NULL;
        if (kpa_store_set_grants(store, app_id, names, revoke, &changed, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        if (arg.quiet)
                return 0;
        if (!changed[0])
                printf("%s: nothing to %s (%s)\n", app_id, revoke ? "revoke" : "grant",
                       revoke ? "not granted" : "already granted, or not requested");
        for (size_t i = 0; changed[i]; i++) {
                _cleanup_free_ char *d = kpa_permission_describe(changed[i]);
                printf("%s %s %s\n", revoke ? "Revoked from" : "Granted to", app_id, d);
        }
        return 0;
}

/* ---- signatures ---- */

/* "signed by vendor (fingerprint 1a2b:...)", "unsigned", ... */
static void signature_text(const kpa_signature_info *s, char *buf, size_t n)
{
        switch (s->status) {
        case KPA_SIGNATURE_TRUSTED:
                snprintf(buf, n, "signed by %s (fingerprint %s)", s->key_name, s->fingerprint);
                break;
        case KPA_SIGNATURE_UNKNOWN_KEY:
                snprintf(buf, n, "signed by an unknown key (fingerprint %s)", s->fingerprint);
                break;
        case KPA_SIGNATURE_UNSIGNED: snprintf(buf, n, "unsigned"); break;
        case KPA_SIGNATURE_BAD: snprintf(buf, n, "BAD: %s", s->problem); break;
        }
        size_t l = strlen(buf);
        if (s->allowed_unsigned && l < n)
                snprintf(buf + l, n - l, ", installed with --allow-unsigned");
}

static json_object *signature_json(const kpa_signature_info *s)
{
        static const char *const names[] = {"unsigned", "signed", "unknown-key", "bad"};
        json_object *o = json_object_new_object();
        json_object_object_add(o, "status", json_object_new_string(names[s->status]));
        json_object_object_add(o, "key", s->key_name[0] ? json_object_new_string(s->key_name) : NULL);
        json_object_object_add(o, "fingerprint",
                               s->fingerprint[0] ? json_object_new_string(s->fingerprint) : NULL);
        json_object_object_add(o, "allowUnsigned", json_object_new_boolean(s->allowed_unsigned));
        json_object_object_add(o, "problem", s->problem[0] ? json_object_new_string(s->problem) : NULL);
        return o;
}

/* After an install: who signed it, or a loud warning that nobody trusted did. */
static void signature_note(kpa_store *store, const char *app_id, const char *version)
{
        kpa_error err;
        kpa_signature_info s;
        kpa_signature_info_init(&s);
        char text[512];
        if (kpa_store_signature(store, app_id, arg.install.trusted_keys_dir, &s, &err) < 0)
                return;
        signature_text(&s, text, sizeof(text));
        if (s.allowed_unsigned)
                fprintf(stderr,
                        "kpa-install: WARNING: %s %s is not signed by a trusted key (%s, %zu %s "
                        "trusted); it was installed only because of --allow-unsigned, and the "
                        "store records that\n",
                        app_id, version,
                        s.status == KPA_SIGNATURE_UNSIGNED ? "it is unsigned"
                                                           : "its key is not trusted",
                        s.n_trusted, s.n_trusted == 1 ? "key is" : "keys are");
        else if (s.status == KPA_SIGNATURE_TRUSTED && !arg.quiet)
                printf("  %s\n", text);
}

/* ---- install ---- */

/* ---- kpa-execd and the running instances ---- */

/* Tell a running kpa-execd (at $KPA_EXECD_SOCKET, else the default socket)
 * of APP_ID (kpa_control_package_installed, or _stop with STOP). 1 when no
 * daemon listens (nobody to tell), 0 when told, < 0 on an error. */
static int tell_daemon(const char *app_id, bool stop, bool restart, kpa_package_notice *out,
                       kpa_error *err)
{
        kpa_package_notice_init(out);
        kpa_control *ctl = NULL;
        int q = kpa_control_connect(NULL, &ctl, err);
        if (q == -ENOENT || q == -ECONNREFUSED)
                return 1;
        if (q < 0)
                return q;
        q = stop ? kpa_control_package_stop(ctl, app_id, out, err)
                 : kpa_control_package_installed(ctl, app_id, restart, out, err);
        kpa_control_close(ctl);
        return q;
}

static bool pid_listed(const kpa_package_notice *n, pid_t pid)
{
        for (int k = 0; k < n->affected && k < KPA_PACKAGE_NOTICE_PIDS; k++)
                if (n->pids[k] == pid)
                        return true;
        return false;
}

/* The instance inits of APP_ID that run an old tree (previous or retired). */
static size_t old_instances(kpa_store *store, const char *app_id, pid_t *inits, size_t max)
{
        kpa_app_process **procs = NULL;
        size_t n = 0, found = 0;
        kpa_error err;
        if (kpa_store_app_processes(store, app_id, &procs, &n, &err) < 0)
                return 0;
        for (size_t k = 0; k < n; k++)
                if (procs[k]->init && procs[k]->tree != KPA_APP_TREE_CURRENT && found < max)
                        inits[found++] = procs[k]->pid;
        free(procs);
        return found;
}

/* After a change of what is installed (ACTION): tell kpa-execd, so that it
 * autoruns the package's run configurations and, unless --no-restart,
 * restarts the instances it supervises on the new version; warn about the
 * instances that stay on the old one. */
static void after_change(kpa_store *store, const char *app_id, kpa_install_action action)
{
        pid_t old[64];
        size_t n_old = action == KPA_INSTALL_ACTION_NEW ? 0 : old_instances(store, app_id, old, 64);
        bool restart = n_old > 0 && !arg.no_restart;
        kpa_package_notice notice;
        kpa_package_notice_init(&notice);
        kpa_error err;
        int q = tell_daemon(app_id, false, restart, &notice, &err);
        if (q < 0)
                cli_error("warning: could not tell kpa-execd about %s: %s", app_id, err.message);
        if (arg.verbose && q == 0)
                printf("  kpa-execd started %d autorun process(es)\n", notice.started);
        if (notice.affected > 0 && !arg.quiet)
                printf("Restarting %d instance(s) of %s on the new version (kpa-execd)\n",
                       notice.affected, app_id);
        for (size_t k = 0; k < n_old; k++)
                if (!pid_listed(&notice, old[k]))
                        cli_error("warning: %s: the instance with pid %d %s; it keeps running "
                                  "the old version until it ends",
                                  app_id, (int)old[k],
                                  arg.no_restart ? "was left as it is (--no-restart)"
                                                 : "is not supervised by kpa-execd (kpa-run "
                                                   "started it)");
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Send SIG to every process of APP_ID's instances; how many there were. */
static size_t signal_processes(kpa_store *store, const char *app_id, int sig, kpa_error *err)
{
        kpa_app_process **procs = NULL;
        size_t n = 0;
        if (kpa_store_app_processes(store, app_id, &procs, &n, err) < 0)
                return (size_t)-1;
        for (size_t k = 0; k < n && sig; k++)
                (void)kill(procs[k]->pid, sig);
        free(procs);
        return n;
}

/* Wait up to MS for APP_ID's processes to end; true when they have. */
static bool wait_processes_gone(kpa_store *store, const char *app_id, uint64_t ms)
{
        uint64_t deadline = now_ms() + ms;
        kpa_error err;
        for (;;) {
                size_t n = signal_processes(store, app_id, 0, &err);
                if (n == 0)
                        return true;
                if (n == (size_t)-1 || now_ms() >= deadline)
                        return false;
                struct timespec pause = {0, 50 * 1000 * 1000};
                nanosleep(&pause, NULL);
        }
}

/* A removal: none of APP_ID's instances may run, or with --stop they are
 * stopped first, as a Normal stop does (kpa-execd stops those it
 * supervises; the others get SIGTERM, then SIGKILL after 10 s). */
static int check_not_running(kpa_store *store, const char *app_id)
{
        kpa_error err;
        kpa_app_process **procs = NULL;
        size_t n = 0;
        if (kpa_store_app_processes(store, app_id, &procs, &n, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        char list[256] = "";
        size_t inits = 0;
        for (size_t k = 0; k < n; k++)
                if (procs[k]->init && inits++ < 8) {
                        size_t l = strlen(list);
                        snprintf(list + l, sizeof(list) - l, "%s%d", l ? ", " : "",
                                 (int)procs[k]->pid);
                }
        free(procs);
        if (n == 0)
                return 0;
        if (!arg.stop) {
                cli_error("%s is running (%zu instance(s)%s%s%s); nothing was removed. Stop them "
                          "first, or use --remove --stop",
                          app_id, inits ? inits : 1, list[0] ? ", init pid " : "", list,
                          inits > 8 ? ", ..." : "");
                return -1;
        }
        kpa_package_notice notice;
        kpa_package_notice_init(&notice);
        if (tell_daemon(app_id, true, false, &notice, &err) < 0)
                cli_error("warning: %s: kpa-execd could not stop its instances: %s", app_id,
                          err.message);
        (void)signal_processes(store, app_id, SIGTERM, &err);
        if (!wait_processes_gone(store, app_id, 10000)) {
                (void)signal_processes(store, app_id, SIGKILL, &err);
                if (!wait_processes_gone(store, app_id, 5000)) {
                        cli_error("%s: its instances did not end; nothing was removed", app_id);
                        return -1;
                }
        }
        if (!arg.quiet)
                printf("Stopped %zu instance(s) of %s\n", inits ? inits : 1, app_id);
        return 0;
}

/* Say once, at install, when the manifest's storage size is not enforced. */
static void storage_note(kpa_store *store, const char *app_id)
{
        kpa_error err;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        if (kpa_store_load_manifest(store, app_id, &m, &err) < 0 || !m->has_private_storage ||
            !m->storage_size_mb || kpa_store_storage_enforced(store, app_id, NULL))
                return;
        fprintf(stderr,
                "kpa-install: note: %s asks for %llu MB of private storage; the size is not "
                "enforced, %s\n",
                app_id, (unsigned long long)m->storage_size_mb,
                geteuid() != 0 ? "since only an install by root makes a storage of a given size"
                               : "since its storage was made before (by an older kpa, or "
                                 "without root); --purge and a new install make it sized");
}

static void print_action(const kpa_install_result *res)
{
        switch (res->action) {
        case KPA_INSTALL_ACTION_NEW: printf("Installed %s %s\n", res->app_id, res->version); break;
        case KPA_INSTALL_ACTION_UPGRADE:
                printf("Upgraded %s from %s to %s\n", res->app_id,
                       res->old_version[0] ? res->old_version : "(damaged)", res->version);
                break;
        case KPA_INSTALL_ACTION_DOWNGRADE:
                printf("Downgraded %s from %s to %s (--allow-downgrade)\n", res->app_id,
                       res->old_version, res->version);
                break;
        case KPA_INSTALL_ACTION_REINSTALL:
                printf("Reinstalled %s %s\n", res->app_id, res->version);
                break;
        case KPA_INSTALL_ACTION_ROLLBACK:
                printf("Rolled %s %s from %s to %s (kpa-install --rollback %s swaps them "
                       "again)\n",
                       res->app_id,
                       kpa_version_compare(res->version, res->old_version) > 0 ? "forward" : "back",
                       res->old_version, res->version, res->app_id);
                break;
        }
}

/* What the version now installed requests and is not granted (a rollback
 * to a version whose grants were dropped by the upgrade): a note. */
static void note_ungranted(kpa_store *store, const char *app_id)
{
        kpa_error err;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        _cleanup_strv_free_ char **granted = NULL;
        if (kpa_store_load_manifest(store, app_id, &m, &err) < 0 ||
            kpa_store_get_grants(store, app_id, &granted, &err) < 0)
                return;
        _cleanup_strv_free_ char **requested = kpa_permissions_requested(m);
        _cleanup_strv_free_ char **missing = kpa_permissions_filter(requested, granted, false);
        for (size_t i = 0; missing[i]; i++) {
                _cleanup_free_ char *d = kpa_permission_describe(missing[i]);
                fprintf(stderr,
                        "kpa-install: note: %s requests %s, which is not granted; it runs "
                        "without it (kpa-install --grant ... %s grants it)\n",
                        app_id, d, app_id);
        }
}

static int rollback_one(kpa_store *store, const char *app_id)
{
        kpa_error err;
        kpa_install_result res;
        kpa_install_result_init(&res);
        if (kpa_store_rollback(store, app_id, arg.install.trusted_keys_dir, &res, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        if (!arg.quiet)
                print_action(&res);
        note_ungranted(store, app_id);
        after_change(store, app_id, res.action);
        return 0;
}

static int hold_one(kpa_store *store, const char *app_id, bool hold)
{
        kpa_error err;
        if (kpa_store_set_hold(store, app_id, hold, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        if (!arg.quiet)
                printf(hold ? "%s is held: it is not upgraded, downgraded, reinstalled or rolled "
                              "back until --unhold\n"
                            : "%s is no longer held\n",
                       app_id);
        return 0;
}

static int release_one(kpa_store *store, const char *app_id)
{
        kpa_error err;
        if (kpa_store_release_storage(store, app_id, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        return 0;
}

static int install_one(kpa_store *store, const char *path)
{
        kpa_error err;
        kpa_install_result res;
        kpa_install_result_init(&res);
        cli_progress progress;
        cli_progress_init(&progress, path, arg.quiet);
        kpa_install_options opts = arg.install;
        opts.progress = cli_progress_update;
        opts.userdata = &progress;
        opts.on_permissions = print_permissions;
        int r = strncmp(path, "oci:", 4) == 0
                        ? kpa_store_install_oci(store, path + 4, &opts, &res, &err)
                        : kpa_store_install(store, path, &opts, &res, &err);
        cli_progress_end(&progress);
        if (r < 0) {
                cli_report(&err);
                return -1;
        }
        storage_note(store, res.app_id);
        if (!arg.quiet)
                print_action(&res);
        signature_note(store, res.app_id, res.version);
        after_change(store, res.app_id, res.action);
        if (arg.verbose && !arg.quiet)
                printf("  %llu files, %llu bytes, uid %u, store %s\n",
                       (unsigned long long)res.files, (unsigned long long)res.bytes,
                       (unsigned)res.uid, kpa_store_root(store));
        return 0;
}

static int remove_one(kpa_store *store, const char *app_id)
{
        kpa_error err;
        if (check_not_running(store, app_id) < 0)
                return -1;
        if (kpa_store_remove(store, app_id, arg.purge, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        if (!arg.quiet)
                printf("%s %s\n", arg.purge ? "Purged" : "Removed", app_id);
        /* a running kpa-execd closes the sockets it kept for the package */
        kpa_package_notice notice;
        kpa_package_notice_init(&notice);
        if (tell_daemon(app_id, false, false, &notice, &err) < 0)
                cli_error("warning: could not tell kpa-execd that %s is gone: %s", app_id,
                          err.message);
        return 0;
}

/* ---- list ---- */

static const char *localized(const kpa_manifest *m, const char *s)
{
        return kpa_manifest_localize(m, s, NULL);
}

/* "held", "previous 1.0", both, or "". */
static void list_notes(kpa_store *store, const char *id, char *out, size_t len)
{
        char prev[256], build[256];
        kpa_error err;
        bool held = kpa_store_held(store, id);
        bool has_prev = kpa_store_previous_version(store, id, prev, build, &err) == 0;
        snprintf(out, len, "%s%s%s%s", held ? "held" : "", held && has_prev ? ", " : "",
                 has_prev ? "previous " : "", has_prev ? prev : "");
}

static json_object *list_json_entry(kpa_store *store, const char *id, const kpa_manifest *m)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "state", json_object_new_string(m ? "installed" : "removed"));
        json_object_object_add(o, "version",
                               m ? json_object_new_string(m->application.version) : NULL);
        json_object_object_add(o, "buildNumber",
                               m ? json_object_new_string(m->application.build_number) : NULL);
        json_object_object_add(
                o, "name", m ? json_object_new_string(localized(m, m->application.name)) : NULL);
        if (!m)
                return o;
        char prev[256], build[256];
        kpa_error err;
        bool has_prev = kpa_store_previous_version(store, id, prev, build, &err) == 0;
        json_object_object_add(o, "held", json_object_new_boolean(kpa_store_held(store, id)));
        json_object_object_add(o, "previousVersion",
                               has_prev ? json_object_new_string(prev) : NULL);
        return o;
}

static int do_list(kpa_store *store)
{
        kpa_error err;
        _cleanup_strv_free_ char **ids = NULL, **removed = NULL;
        if (kpa_store_list(store, &ids, NULL, &err) < 0 ||
            (arg.all && kpa_store_list_removed(store, &removed, NULL, &err) < 0)) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        json_object *arr = arg.json ? json_object_new_array() : NULL;
        int ret = EXIT_SUCCESS;
        for (char **id = ids; *id; id++) {
                _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
                if (kpa_store_load_manifest(store, *id, &m, &err) < 0) {
                        cli_report(&err);
                        ret = EXIT_FAILURE;
                        continue;
                }
                if (arr) {
                        json_object_array_add(arr, list_json_entry(store, *id, m));
                        continue;
                }
                char notes[300];
                list_notes(store, *id, notes, sizeof(notes));
                printf("%-40s %-16s %s%s%s%s\n", *id, m->application.version,
                       localized(m, m->application.name), notes[0] ? " (" : "", notes,
                       notes[0] ? ")" : "");
        }
        for (char **id = removed; id && *id; id++) {
                if (arr)
                        json_object_array_add(arr, list_json_entry(store, *id, NULL));
                else
                        printf("%-40s %-16s %s\n", *id, "-",
                               "(removed; storage kept: --remove --purge deletes it)");
        }
        if (arr) {
                puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(arr);
        }
        return ret;
}

/* ---- info ---- */

static const char *const component_types[] = {"bin", "lib", "res", "manifestLocale"};
static const char *const use_types[] = {"child", "serviceCanUse", "serviceActive"};

static void info_text_run_configs(const kpa_manifest *m)
{
        printf("Run configurations:\n");
        if (m->n_run_configs == 0)
                printf("  (none)\n");
        for (size_t i = 0; i < m->n_run_configs; i++) {
                const kpa_run_config *rc = m->run_configs[i];
                printf("  %s %-20s %-8s %-24s \"%s\"%s%s\n", rc->primary ? "*" : " ", rc->id,
                       rc->type == KPA_RUN_GUI ? "gui" : "service", rc->path,
                       localized(m, rc->name), rc->primary ? " (primary)" : "",
                       rc->autorun ? " (autorun)" : "");
                for (size_t j = 0; j < rc->n_args; j++)
                        printf("      arg: %s\n", rc->args[j]);
                for (size_t j = 0; j < rc->n_env; j++)
                        printf("      env: %s=%s\n", rc->env[j].name, rc->env[j].value);
                for (size_t j = 0; j < rc->n_uses; j++)
                        printf("      uses: %s (%s)\n", rc->uses[j]->name,
                               use_types[rc->uses[j]->use_type]);
        }
}

/* Requested and granted side by side; GRANTED NULL: a package file. */
static void info_text_permissions(const kpa_manifest *m, char *const *granted)
{
        _cleanup_strv_free_ char **requested = kpa_permissions_requested(m);
        printf("Permissions:\n");
        if (!requested[0] && (!granted || !granted[0]))
                printf("  (none requested)\n");
        for (size_t i = 0; requested[i]; i++) {
                _cleanup_free_ char *d = kpa_permission_describe(requested[i]);
                printf("  %s: requested, %s\n", d,
                       !granted                                         ? "not installed"
                       : kpa_permissions_contain(granted, requested[i]) ? "granted"
                                                                        : "NOT GRANTED");
        }
        for (size_t i = 0; granted && granted[i]; i++)
                if (!kpa_permissions_contain(requested, granted[i])) {
                        _cleanup_free_ char *d = kpa_permission_describe(granted[i]);
                        printf("  %s: not requested, granted\n", d);
                }
}

static void info_text(const kpa_package_info *info, char *const *granted)
{
        const kpa_manifest *m = info->manifest;
        printf("Application:  %s\n", m->application.id);
        printf("Name:         %s\n", localized(m, m->application.name));
        if (m->application.description)
                printf("Description:  %s\n", localized(m, m->application.description));
        printf("Version:      %s (build %s)\n", m->application.version, m->application.build_number);
        printf("System app:   %s\n", m->application.system_application ? "yes" : "no");
        printf("Platform:     %s, SDK %s %s (API level %lld), arch %s%s%s\n", m->platform.id,
               m->platform.build_sdk_name, m->platform.build_sdk_version,
               (long long)m->platform.target_api_level, m->platform.arch,
               m->platform.cpu[0] ? ", cpu " : "", m->platform.cpu);
        if (info->uid != (uid_t)-1)
                printf("Package uid:  %u\n", (unsigned)info->uid);
        if (m->has_private_storage)
                printf("Storage:      %s MB%s%s%s\n", m->storage_size ? m->storage_size : "?",
                       m->storage_fs_type ? ", " : "", m->storage_fs_type ? m->storage_fs_type : "",
                       info->uid == (uid_t)-1 || !m->storage_size_mb ? ""
                       : info->storage_enforced  ? " (enforced: a file system image of that size)"
                                                 : " (not enforced: a plain directory)");
        info_text_run_configs(m);
        info_text_permissions(m, granted);
        printf("Components:\n");
        for (size_t i = 0; i < info->n_components; i++) {
                const kpa_component_info *ci = info->components[i];
                char size[32];
                if (ci->present)
                        snprintf(size, sizeof(size), "%llu", (unsigned long long)ci->size);
                else
                        snprintf(size, sizeof(size), "missing");
                printf("  %-14s %-40s %10s  %s\n", component_types[ci->component->type],
                       ci->component->install_path, size, ci->component->digest);
        }
        if (m->extensions_json)
                printf("Extensions:\n%s\n", m->extensions_json);
}

static json_object *json_str_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static json_object *info_json_run_config(const kpa_manifest *m, const kpa_run_config *rc)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(rc->id));
        json_object_object_add(o, "name", json_object_new_string(localized(m, rc->name)));
        json_object_object_add(o, "type", json_object_new_string(rc->type == KPA_RUN_GUI ? "gui" : "service"));
        json_object_object_add(o, "path", json_object_new_string(rc->path));
        json_object_object_add(o, "primary", json_object_new_boolean(rc->primary));
        json_object_object_add(o, "autorun", json_object_new_boolean(rc->autorun));
        json_object_object_add(o, "eiid", json_str_or_null(rc->eiid));
        json_object *args = json_object_new_array();
        for (size_t j = 0; j < rc->n_args; j++)
                json_object_array_add(args, json_object_new_string(rc->args[j]));
        json_object_object_add(o, "args", args);
        json_object *env = json_object_new_array();
        for (size_t j = 0; j < rc->n_env; j++) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "name", json_object_new_string(rc->env[j].name));
                json_object_object_add(e, "value", json_object_new_string(rc->env[j].value));
                json_object_array_add(env, e);
        }
        json_object_object_add(o, "envVariables", env);
        return o;
}

static json_object *json_items(char *const *items)
{
        json_object *a = json_object_new_array();
        for (size_t i = 0; items && items[i]; i++)
                json_object_array_add(a, json_object_new_string(items[i]));
        return a;
}

static json_object *info_json(const kpa_package_info *info, char *const *granted)
{
        const kpa_manifest *m = info->manifest;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(m->application.id));
        json_object_object_add(o, "name", json_object_new_string(localized(m, m->application.name)));
        json_object_object_add(o, "description",
                               m->application.description
                                       ? json_object_new_string(localized(m, m->application.description))
                                       : NULL);
        json_object_object_add(o, "version", json_object_new_string(m->application.version));
        json_object_object_add(o, "buildNumber", json_object_new_string(m->application.build_number));
        json_object_object_add(o, "systemApplication",
                               json_object_new_boolean(m->application.system_application));
        json_object_object_add(o, "arch", json_object_new_string(m->platform.arch));
        if (info->uid != (uid_t)-1) {
                json_object_object_add(o, "uid", json_object_new_int64(info->uid));
                json_object_object_add(o, "storageEnforced", json_object_new_boolean(info->storage_enforced));
        }
        json_object *rcs = json_object_new_array();
        for (size_t i = 0; i < m->n_run_configs; i++)
                json_object_array_add(rcs, info_json_run_config(m, m->run_configs[i]));
        json_object_object_add(o, "runConfigurations", rcs);
        json_object *comps = json_object_new_array();
        for (size_t i = 0; i < info->n_components; i++) {
                const kpa_component_info *ci = info->components[i];
                json_object *c = json_object_new_object();
                json_object_object_add(c, "path", json_object_new_string(ci->component->install_path));
                json_object_object_add(c, "componentType",
                                       json_object_new_string(component_types[ci->component->type]));
                json_object_object_add(c, "size", ci->present ? json_object_new_int64((int64_t)ci->size) : NULL);
                json_object_object_add(c, "digest", json_object_new_string(ci->component->digest));
                json_object_array_add(comps, c);
        }
        json_object_object_add(o, "components", comps);
        _cleanup_strv_free_ char **requested = kpa_permissions_requested(m);
        json_object *perms = json_object_new_object();
        json_object_object_add(perms, "requested", json_items(requested));
        json_object_object_add(perms, "granted", granted ? json_items(granted) : NULL);
        json_object_object_add(o, "permissions", perms);
        json_object_object_add(o, "extensions",
                               m->extensions_json ? json_tokener_parse(m->extensions_json) : NULL);
        return o;
}

static int do_info(kpa_store *store, const char *what)
{
        kpa_error err;
        _cleanup_(kpa_package_info_freep) kpa_package_info *info = NULL;
        int r = store ? kpa_store_inspect(store, what, &info, &err)
                      : kpa_package_inspect(what, &arg.limits, &info, &err);
        _cleanup_strv_free_ char **granted = NULL;
        if (r >= 0 && store)
                r = kpa_store_get_grants(store, what, &granted, &err);
        kpa_signature_info sig;
        kpa_signature_info_init(&sig);
        const char *keys = arg.install.trusted_keys_dir;
        if (r >= 0)
                r = store ? kpa_store_signature(store, what, keys, &sig, &err)
                          : kpa_package_signature(what, keys, &sig, &err);
        if (r < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        char prev[256] = "", build[256] = "";
        bool has_prev = store && kpa_store_previous_version(store, what, prev, build, &err) == 0;
        bool held = store && kpa_store_held(store, what);
        int ret = sig.status == KPA_SIGNATURE_BAD ? EXIT_FAILURE : EXIT_SUCCESS;
        if (!arg.json) {
                char text[512];
                info_text(info, granted);
                if (store)
                        printf("Held:         %s\n",
                               held ? "yes (kpa-install --unhold allows changes)" : "no");
                if (has_prev)
                        printf("Previous:     %s (build %s), kept: kpa-install --rollback %s\n",
                               prev, build, what);
                signature_text(&sig, text, sizeof(text));
                printf("Signature:    %s\n", text);
                return ret;
        }
        json_object *o = info_json(info, granted);
        json_object_object_add(o, "signature", signature_json(&sig));
        if (store) {
                json_object_object_add(o, "held", json_object_new_boolean(held));
                json_object_object_add(o, "previousVersion",
                                       has_prev ? json_object_new_string(prev) : NULL);
        }
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return ret;
}

/* ---- verify ---- */

/* The signature against today's trusted keys: 0 when it passes, 1 when
 * not (printed), -1 when it cannot be checked. With no key trusted, only a
 * damaged one fails. */
static int verify_signature(kpa_store *store, const char *app_id)
{
        kpa_error err;
        kpa_signature_info s;
        kpa_signature_info_init(&s);
        if (kpa_store_signature(store, app_id, arg.install.trusted_keys_dir, &s, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        char text[512];
        signature_text(&s, text, sizeof(text));
        bool bad = s.status == KPA_SIGNATURE_BAD ||
                   (s.n_trusted && s.status != KPA_SIGNATURE_TRUSTED && !s.allowed_unsigned);
        if (bad)
                printf("%s: signature: %s%s\n", app_id, text,
                       s.status == KPA_SIGNATURE_BAD ? ""
                       : s.status == KPA_SIGNATURE_UNSIGNED
                               ? " (a trusted key is required and it was not installed with "
                                 "--allow-unsigned)"
                               : " (that key is not trusted)");
        else if (arg.verbose)
                printf("%s: signature: %s\n", app_id, text);
        return bad ? 1 : 0;
}

static int verify_one(kpa_store *store, const char *app_id)
{
        static const char *const words[] = {"modified", "missing", "extra", "wrong type or mode"};
        kpa_error err;
        kpa_verify_report report;
        kpa_verify_report_init(&report);
        if (kpa_store_verify(store, app_id, &report, &err) < 0) {
                cli_report(&err);
                return -1;
        }
        for (size_t i = 0; i < report.n_entries; i++)
                printf("%s: %s: %s\n", app_id, words[report.entries[i]->problem],
                       report.entries[i]->path);
        bool clean = report.n_entries == 0;
        int q = verify_signature(store, app_id);
        if (q < 0) {
                kpa_verify_report_clear(&report);
                return -1;
        }
        clean = clean && q == 0;
        if (clean && !arg.quiet)
                printf("%s: OK (%llu files checked)\n", app_id,
                       (unsigned long long)report.files_checked);
        kpa_verify_report_clear(&report);
        return clean ? 0 : -1;
}

int main(int argc, char **argv)
{
        cli_init(argv[0]);
        int r = parse_args(argc, argv);
        if (r)
                return r;
        if (arg.mode == MODE_INFO && looks_like_package(argv[optind]))
                return do_info(NULL, argv[optind]); /* a package file needs no store */
        kpa_error err;
        _cleanup_(kpa_store_closep) kpa_store *store = NULL;
        unsigned flags = arg.mode == MODE_INSTALL ? KPA_STORE_CREATE : 0;
        if (kpa_store_open(arg.root, flags, &store, &err) < 0) {
                if (arg.mode == MODE_LIST && err.code == ENOENT)
                        return EXIT_SUCCESS; /* no store yet: nothing installed */
                cli_report(&err);
                return EXIT_FAILURE;
        }
        if (arg.mode == MODE_LIST)
                return do_list(store);
        if (arg.mode == MODE_INFO)
                return do_info(store, argv[optind]);
        int failed = 0;
        for (int i = optind; i < argc; i++) {
                if (arg.mode == MODE_REVOKE)
                        failed |= grant_one(store, argv[i], arg.revoke, true) < 0;
                else if (arg.mode == MODE_INSTALL && arg.install.grant && is_app_id(argv[i]))
                        failed |= grant_one(store, argv[i], arg.install.grant, false) < 0;
                else if (arg.mode == MODE_INSTALL)
                        failed |= install_one(store, argv[i]) < 0;
                else if (arg.mode == MODE_REMOVE)
                        failed |= remove_one(store, argv[i]) < 0;
                else if (arg.mode == MODE_ROLLBACK)
                        failed |= rollback_one(store, argv[i]) < 0;
                else if (arg.mode == MODE_HOLD || arg.mode == MODE_UNHOLD)
                        failed |= hold_one(store, argv[i], arg.mode == MODE_HOLD) < 0;
                else if (arg.mode == MODE_RELEASE)
                        failed |= release_one(store, argv[i]) < 0;
                else
                        failed |= verify_one(store, argv[i]) < 0;
        }
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
