/* connect-run: start two run configurations of one installed package,
 * joined by a channel, with libkpa's task API (kpa/task.h, the Linux form of
 * libkos's task.h):
 *
 *     connect-run [--root DIR] APP_ID SERVICE CLIENT CHANNEL [CLIENT_ARG...]
 *
 * Both run configurations are looked up in the package's manifest (path,
 * args and envVariables). kpa_task_connect() gives each task one end of a
 * connected SOCK_SEQPACKET pair as the handle CHANNEL; then the service
 * starts, then the client. connect-run waits for the client, lets the
 * service see the channel close, and exits with the client's exit code
 * (the service is stopped if it does not end by itself within 5 s).
 *
 * It is an example of an integrator's launcher, and what the manifest's
 * "usesServices" will mean once the supervisor connects services itself. */
#define _GNU_SOURCE /* asprintf */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kpa/package.h>
#include <kpa/task.h>

static const kpa_run_config *find_run_config(const kpa_manifest *m, const char *id)
{
        for (size_t i = 0; i < m->n_run_configs; i++)
                if (strcmp(m->run_configs[i]->id, id) == 0)
                        return m->run_configs[i];
        fprintf(stderr, "connect-run: %s has no run configuration \"%s\"\n", m->application.id, id);
        return NULL;
}

/* The task for run configuration RC of package M, with the manifest's args
 * (then EXTRA) and envVariables, and our stdout and stderr. NULL after
 * printing why. */
static kpa_task *task_for(kpa_control *ctl, const kpa_manifest *m, const kpa_run_config *rc,
                          char **extra, int n_extra)
{
        const char **args = calloc(rc->n_args + (size_t)n_extra + 1, sizeof(*args));
        char **env = calloc(rc->n_env + 1, sizeof(*env));
        kpa_task *t = NULL;
        bool ok = args && env;
        for (size_t i = 0; ok && i < rc->n_args; i++)
                args[i] = rc->args[i];
        for (int i = 0; ok && i < n_extra; i++)
                args[rc->n_args + (size_t)i] = extra[i];
        for (size_t i = 0; ok && i < rc->n_env; i++)
                ok = asprintf(&env[i], "%s=%s", rc->env[i].name, rc->env[i].value) >= 0;
        char path[1024];
        snprintf(path, sizeof(path), "/%s/%s", m->application.id, rc->path);
        kpa_error err;
        if (!ok)
                fprintf(stderr, "connect-run: out of memory\n");
        else if (kpa_task_create(ctl, path, args, (const char *const *)env, 0, &t, &err) < 0)
                fprintf(stderr, "connect-run: %s: %s\n", rc->id, err.message);
        else
                kpa_task_set_stdio(t, -1, STDOUT_FILENO, STDERR_FILENO, NULL);
        for (size_t i = 0; env && env[i]; i++)
                free(env[i]);
        free(env);
        free(args);
        return t;
}

static void report(const char *who, const kpa_process_context *c)
{
        fprintf(stderr, "connect-run: %s ended %s/%s, exit code %d\n", who,
                kpa_process_state_name(c->state), kpa_exit_status_name(c->exit_status),
                c->exit_code);
}

/* Connect SERVICE and CLIENT by CHANNEL, run both, wait for the client and
 * then the service. Takes both tasks; returns the exit code. */
static int run_pair(kpa_control *ctl, kpa_task *service, kpa_task *client, const char *channel)
{
        kpa_token st, ct;
        kpa_error err;
        bool started = kpa_task_connect(service, client, channel, &err) == 0 &&
                       kpa_task_run(service, &st, &err) == 0 &&
                       kpa_task_run(client, &ct, &err) == 0;
        if (!started)
                fprintf(stderr, "connect-run: %s\n", err.message);
        /* The descriptions hold copies of the channel's ends: release them,
         * so that the service sees the channel close when the client ends.
         * Running tasks keep running, and their tokens stay valid. */
        kpa_task_put(service);
        kpa_task_put(client);
        if (!started)
                return 1; /* kpa_control_close() stops what did start */
        kpa_process_context cc, sc;
        kpa_process_context_init(&cc);
        kpa_process_context_init(&sc);
        if (kpa_process_wait(ctl, &ct, -1, &cc, &err) < 0)
                fprintf(stderr, "connect-run: client: %s\n", err.message);
        report("client", &cc);
        if (kpa_process_wait(ctl, &st, 5000, &sc, NULL) < 0) {
                kpa_process_stop(ctl, &st, KPA_STOP_NORMAL, NULL);
                kpa_process_wait(ctl, &st, -1, &sc, NULL);
        }
        report("service", &sc);
        return cc.state == KPA_PROCESS_FINISHED ? cc.exit_code : 1;
}

static int usage(const char *program)
{
        fprintf(stderr, "usage: %s [--root DIR] APP_ID SERVICE CLIENT CHANNEL [CLIENT_ARG...]\n",
                program);
        return 2;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"root", required_argument, NULL, 'r'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *root = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "+r:h", options, NULL)) != -1) {
                if (c != 'r')
                        return usage(argv[0]);
                root = optarg;
        }
        if (argc - optind < 4)
                return usage(argv[0]);
        const char *app = argv[optind], *channel = argv[optind + 3];

        kpa_error err;
        kpa_store *store = NULL;
        kpa_manifest *m = NULL;
        kpa_control *ctl = NULL;
        if (kpa_store_open(root, 0, &store, &err) < 0 ||
            kpa_store_load_manifest(store, app, &m, &err) < 0 ||
            kpa_control_open_local(root, &ctl, &err) < 0) {
                fprintf(stderr, "connect-run: %s\n", err.message);
                if (store)
                        kpa_store_close(store);
                kpa_manifest_free(m);
                return 1;
        }
        kpa_store_close(store);
        int code = 1;
        const kpa_run_config *src = find_run_config(m, argv[optind + 1]);
        const kpa_run_config *crc = find_run_config(m, argv[optind + 2]);
        kpa_task *service = src ? task_for(ctl, m, src, NULL, 0) : NULL;
        kpa_task *client = crc ? task_for(ctl, m, crc, argv + optind + 4, argc - optind - 4) : NULL;
        if (service && client)
                code = run_pair(ctl, service, client, channel);
        else {
                kpa_task_put(service);
                kpa_task_put(client);
        }
        kpa_control_close(ctl);
        kpa_manifest_free(m);
        return code;
}
