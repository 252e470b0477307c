/* task-test: drives libkpa's task API and parent trees from C, for
 * tests/integration/task.sh. Prints key=value lines.
 *   task-test channel STORE APP     two tasks talk over a connected channel
 *   task-test transfer STORE APP F  a task gets F as the handle "cfg"
 *   task-test tree STORE APP        stopping a parent stops its child first
 *   task-test errors STORE APP      misuse gives clear errors */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kpa/task.h"

static kpa_control *ctl;
/* what the last failed call of kpa/task.h or kpa/process.h said */
static kpa_error call_err;

static void print_ctx(const char *who, const kpa_process_context *c)
{
        printf("%s.state=%s\n%s.status=%s\n%s.code=%d\n", who, kpa_process_state_name(c->state),
               who, kpa_exit_status_name(c->exit_status), who, c->exit_code);
}

static kpa_task *make(const char *app, const char *const *args)
{
        char path[512];
        snprintf(path, sizeof(path), "/%s/bin/hello", app);
        kpa_task *t;
        if (kpa_task_create(ctl, path, args, NULL, 0, &t, &call_err) < 0) {
                fprintf(stderr, "create: %s\n", call_err.message);
                exit(1);
        }
        kpa_task_set_stdio(t, -1, 1, 2, &call_err);
        return t;
}

static int channel(const char *app)
{
        const char *const a_args[] = {"echo-handle", "chan", NULL};
        const char *const b_args[] = {"send", "chan", "ping", NULL};
        kpa_task *a = make(app, a_args), *b = make(app, b_args);
        if (kpa_task_connect(a, b, "chan", &call_err) < 0 || kpa_task_run(a, NULL, &call_err) < 0 ||
            kpa_task_run(b, NULL, &call_err) < 0) {
                fprintf(stderr, "channel: %s\n", call_err.message);
                return 1;
        }
        kpa_process_context ca, cb;
        kpa_process_context_init(&ca);
        kpa_process_context_init(&cb);
        kpa_task_wait(b, 10000, &cb, &call_err);
        kpa_task_wait(a, 10000, &ca, &call_err);
        fflush(stdout);
        print_ctx("a", &ca);
        print_ctx("b", &cb);
        kpa_task_put(a);
        kpa_task_put(b);
        return 0;
}

static int transfer(const char *app, const char *file)
{
        const char *const args[] = {"handles", "cfg", NULL};
        kpa_task *t = make(app, args);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || kpa_task_transfer(t, fd, "cfg", &call_err) < 0 || kpa_task_run(t, NULL, &call_err) < 0) {
                fprintf(stderr, "transfer: %s\n", call_err.message);
                return 1;
        }
        close(fd);
        kpa_process_context c;
        kpa_process_context_init(&c);
        kpa_task_wait(t, 10000, &c, &call_err);
        fflush(stdout);
        print_ctx("t", &c);
        kpa_task_put(t);
        return 0;
}

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int tree(const char *app)
{
        kpa_start_options po, co;
        kpa_start_options_init(&po);
        kpa_start_options_init(&co);
        const char *const parent_args[] = {"sleep", "30"};
        const char *const child_args[] = {"ignore-term", "30"};
        po.extra_args = parent_args;
        po.n_extra_args = 2;
        co.extra_args = child_args;
        co.n_extra_args = 2;
        co.stop_timeout_ms = 500;
        kpa_token p, c;
        if (kpa_process_start(ctl, app, NULL, &po, &p, &call_err) < 0)
                return fprintf(stderr, "parent: %s\n", call_err.message), 1;
        co.parent = &p;
        if (kpa_process_start(ctl, app, NULL, &co, &c, &call_err) < 0)
                return fprintf(stderr, "child: %s\n", call_err.message), 1;
        usleep(200000);
        kpa_process_stop(ctl, &p, KPA_STOP_NORMAL, &call_err);
        long t0 = now_ms(), p_end = 0, c_end = 0;
        kpa_process_context pc, cc;
        kpa_process_context_init(&pc);
        kpa_process_context_init(&cc);
        while ((!p_end || !c_end) && now_ms() - t0 < 10000) {
                kpa_process_get_state(ctl, &p, &pc, &call_err);
                kpa_process_get_state(ctl, &c, &cc, &call_err);
                if (!p_end && (pc.state == KPA_PROCESS_FINISHED || pc.state == KPA_PROCESS_FAILED))
                        p_end = now_ms();
                if (!c_end && (cc.state == KPA_PROCESS_FINISHED || cc.state == KPA_PROCESS_FAILED))
                        c_end = now_ms();
                usleep(5000);
        }
        print_ctx("parent", &pc);
        print_ctx("child", &cc);
        printf("child_first=%d\n", c_end && p_end && c_end <= p_end);
        return 0;
}

static int errors(const char *app)
{
        kpa_task *t = NULL;
        printf("bad_path=%d\n", kpa_task_create(ctl, "no-slash", NULL, NULL, 0, &t, &call_err));
        printf("bad_path.message=%s\n", call_err.message);
        char path[512];
        snprintf(path, sizeof(path), "/%s/bin/nosuch", app);
        printf("no_bin=%d\n", kpa_task_create(ctl, path, NULL, NULL, 0, &t, &call_err));
        printf("no_bin.message=%s\n", call_err.message);
        kpa_task *a = make(app, NULL);
        printf("self_connect=%d\n", kpa_task_connect(a, a, "x", &call_err));
        printf("bad_name=%d\n", kpa_task_transfer(a, 0, "a:b", &call_err));
        /* two statements: the operands of one expression are unordered */
        int first = kpa_task_transfer(a, 0, "n", &call_err);
        int second = kpa_task_transfer(a, 0, "n", &call_err);
        printf("dup_name=%d,%d\n", first, second);
        printf("stop_unstarted=%d\n", kpa_task_stop(a, &call_err));
        kpa_task_put(a);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc < 4)
                return fprintf(stderr, "usage: task-test channel|transfer|tree|errors STORE APP [FILE]\n"), 2;
        kpa_error err;
        if (kpa_control_open_local(argv[2], &ctl, &err) < 0)
                return fprintf(stderr, "%s\n", err.message), 1;
        int r = 2;
        if (strcmp(argv[1], "channel") == 0)
                r = channel(argv[3]);
        else if (strcmp(argv[1], "transfer") == 0 && argc == 5)
                r = transfer(argv[3], argv[4]);
        else if (strcmp(argv[1], "tree") == 0)
                r = tree(argv[3]);
        else if (strcmp(argv[1], "errors") == 0)
                r = errors(argv[3]);
        fflush(stdout);
        kpa_control_close(ctl);
        return r;
}
