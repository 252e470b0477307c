/* execd-embed: the kpa-execd service embedded in a program of its own,
 * through kpa/execd.h alone (linked against libkpa.so), for
 * tests/integration/execd-embed.sh.
 *   execd-embed [--uninitialized] SOCKET STORE STATE_DIR
 * Serves on SOCKET with the store STORE until SIGTERM or SIGINT (then it
 * stops every instance and exits 0). Prints "ready" on standard output once
 * it serves, and its log on standard error ("execd-embed: LEVEL: ...").
 * Exit 1 with the error on standard error when the service cannot run.
 * --uninitialized: pass the config with a struct_size of 0 (never
 * initialized), which kpa_execd_run() must refuse. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kpa/execd.h"

static void log_line(kpa_execd_log_level level, const char *message, void *userdata)
{
        static const char *const names[] = {"error", "warning", "info", "debug"};
        (void)userdata;
        fprintf(stderr, "execd-embed: %s: %s\n", names[level], message);
}

static void notify(const char *state, void *userdata)
{
        int *readies = userdata;
        if (strcmp(state, "READY=1") == 0) {
                (*readies)++;
                printf("ready\n");
                fflush(stdout);
        }
}

int main(int argc, char **argv)
{
        bool uninitialized = argc > 1 && strcmp(argv[1], "--uninitialized") == 0;
        if (uninitialized) {
                argc--;
                argv++;
        }
        if (argc != 4) {
                fprintf(stderr, "usage: execd-embed [--uninitialized] SOCKET STORE STATE_DIR\n");
                return 2;
        }
        int readies = 0;
        kpa_execd_config cfg;
        kpa_execd_config_init(&cfg);
        cfg.socket_path = argv[1];
        cfg.root = argv[2];
        cfg.state_dir = argv[3];
        cfg.on_exit = KPA_EXECD_ON_EXIT_STOP;
        cfg.autorun = false;
        cfg.netns_pool = 0;
        cfg.log = log_line;
        cfg.notify = notify;
        cfg.notify_userdata = &readies;
        if (uninitialized)
                cfg.struct_size = 0;
        kpa_error err;
        if (kpa_execd_run(&cfg, &err) < 0) {
                fprintf(stderr, "execd-embed: %s\n", err.message);
                return 1;
        }
        fprintf(stderr, "execd-embed: stopped (ready %d time%s)\n", readies,
                readies == 1 ? "" : "s");
        return 0;
}
