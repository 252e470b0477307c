/* start-spec: builds an instance plan through the public API of
 * kpa/instance.h, adjusts it with the setters, starts it on a local
 * controller and keeps it running until its standard input closes, for
 * tests/integration/instance-spec.sh, which checks the effect from outside.
 *   start-spec [ADJUSTMENTS] STORE APP [-- ARGV...]
 *   start-spec --oci ID [ADJUSTMENTS] STORE BUNDLE [-- ARGV...]   (an OCI bundle's plan)
 *     --env NAME=VALUE  --unset NAME  --bind-ro HOST:INSIDE  --bind HOST:INSIDE
 *     --pids N  --memory BYTES  --cwd DIR      (ARGV replaces the plan's argv)
 * Prints key=value lines: pid= (the application's host pid), token= (its
 * token, the name of its cgroup), then again=
 * (what a second start of the same plan says), and end= when it is over.
 * The application's output goes to standard error. Exit 0, or 1 with the
 * error on standard error. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kpa/instance.h"

static kpa_instance_spec *spec;

static void fail(const char *what, const kpa_error *err)
{
        fprintf(stderr, "start-spec: %s: %s\n", what, err->message);
        exit(1);
}

static void adjust(int c, char *arg)
{
        kpa_error err;
        if (!arg) /* every option takes one */
                exit(2);
        char *sep = strchr(arg, c == 'e' ? '=' : ':');
        int q = 0;
        switch (c) {
        case 'e':
                if (!sep)
                        exit(2);
                *sep = '\0';
                q = kpa_instance_spec_set_env(spec, arg, sep + 1, &err);
                break;
        case 'u': q = kpa_instance_spec_set_env(spec, arg, NULL, &err); break;
        case 'r':
        case 'b':
                if (!sep)
                        exit(2);
                *sep = '\0';
                q = kpa_instance_spec_add_bind(spec, arg, sep + 1, c == 'b', &err);
                break;
        case 'p':
                q = kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_PIDS,
                                                strtoull(arg, NULL, 10), &err);
                break;
        case 'm':
                q = kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_MEMORY,
                                                strtoull(arg, NULL, 10), &err);
                break;
        case 'c': q = kpa_instance_spec_set_cwd(spec, arg, &err); break;
        default: exit(2);
        }
        if (q < 0)
                fail("adjusting the plan", &err);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"env", required_argument, NULL, 'e'},
                {"unset", required_argument, NULL, 'u'},
                {"bind-ro", required_argument, NULL, 'r'},
                {"bind", required_argument, NULL, 'b'},
                {"pids", required_argument, NULL, 'p'},
                {"memory", required_argument, NULL, 'm'},
                {"cwd", required_argument, NULL, 'c'},
                {"oci", required_argument, NULL, 'o'},
                {0},
        };
        /* the adjustments are applied once the plan exists: remember them */
        int n_adj = 0;
        int adj_c[64];
        char *adj_arg[64];
        const char *oci_id = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "+", options, NULL)) != -1) {
                if (c == '?' || n_adj == 64)
                        return 2;
                if (c == 'o') {
                        oci_id = optarg;
                        continue;
                }
                adj_c[n_adj] = c;
                adj_arg[n_adj++] = optarg;
        }
        if (argc - optind < 2)
                return 2;
        const char *store = argv[optind], *app = argv[optind + 1];
        int rest = optind + 2;
        if (rest < argc && strcmp(argv[rest], "--") == 0)
                rest++;

        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.stdout_fd = opts.stderr_fd = STDERR_FILENO;
        kpa_error err;
        int q = oci_id ? kpa_instance_spec_new_oci(app, oci_id, &spec, &err)
                       : kpa_instance_spec_new_package(store, app, NULL, &opts, &spec, &err);
        if (q < 0)
                fail("making the plan", &err);
        for (int i = 0; i < n_adj; i++)
                adjust(adj_c[i], adj_arg[i]);
        if (rest < argc && kpa_instance_spec_set_argv(spec, (const char *const *)&argv[rest],
                                                      (size_t)(argc - rest), &err) < 0)
                fail("adjusting the plan", &err);

        kpa_control *ctl;
        if (kpa_control_open_local(store, &ctl, &err) < 0)
                fail("opening a local controller", &err);
        kpa_token token;
        if (kpa_process_start_spec(ctl, spec, &token, &err) < 0)
                fail("starting the plan", &err);
        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        if (kpa_process_get_state(ctl, &token, &ctx, &err) < 0)
                fail("its state", &err);
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&token, tok);
        printf("pid=%d\ntoken=%s\n", (int)ctx.app_pid, tok);
        kpa_token again;
        q = kpa_process_start_spec(ctl, spec, &again, &err);
        printf("again=%d %s\n", -q, err.message);
        fflush(stdout);

        char buf[64];
        while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
                ;
        kpa_process_stop(ctl, &token, KPA_STOP_NORMAL, NULL);
        kpa_process_wait(ctl, &token, -1, &ctx, NULL);
        printf("end=%s\n", ctx.message);
        kpa_control_close(ctl);
        kpa_instance_spec_free(spec);
        return 0;
}
