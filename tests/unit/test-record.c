/* Unit tests for the records of supervised instances (supervise.c):
 * supervise_record_new() writes supervise.c's own small format
 * ({"record": 1, ...}, not the protocol's wire format), and
 * supervise_record_load() reads it back whole, reads a record of the format
 * before it (the protocol's context with the same extra fields, as a
 * kpa-execd upgraded while its instances run finds them), and refuses what
 * is not a record or is of a newer format. No root, no files.
 * tests/integration/restart-edges.sh adopts an instance from an old-format
 * record through kpa-execd. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "control-priv.h"
#include "json-fields.h"
#include "process-priv.h"
#include "tap.h"
#include "util.h"

static kpa_control ctl; /* only what instances and their records need */

static void set_token(kpa_token *t, uint8_t first)
{
        for (size_t k = 0; k < sizeof(t->bytes); k++)
                t->bytes[k] = (uint8_t)(first + k);
}

/* An ended supervised instance with every field a record keeps. */
static instance *sample(void)
{
        instance *i = process_instance_new(&ctl);
        set_token(&i->token, 0x10);
        set_token(&i->parent, 0x20);
        i->has_parent = true;
        kpa_process_context *c = &i->ctx;
        c->state = KPA_PROCESS_FAILED;
        c->exit_status = KPA_EXIT_UNEXPECTED;
        c->exit_code = 9;
        c->exit_reason = 0;
        snprintf(c->exit_cause, sizeof(c->exit_cause), "signal");
        snprintf(c->message, sizeof(c->message), "killed by SIGKILL");
        snprintf(c->app_id, sizeof(c->app_id), "com.example.rec");
        snprintf(c->run_config_id, sizeof(c->run_config_id), "main");
        c->pid = 0;
        c->started_at = 1765000000;
        c->restarts = 2;
        c->cleanup_error = 16;
        c->last_failure.state = KPA_PROCESS_FAILED;
        c->last_failure.exit_status = KPA_EXIT_UNEXPECTED;
        c->last_failure.exit_code = 15;
        snprintf(c->last_failure.exit_cause, sizeof(c->last_failure.exit_cause), "signal");
        snprintf(c->last_failure.message, sizeof(c->last_failure.message), "killed by SIGTERM");
        c->last_failure.at = 1765000100;
        i->owner = 1234;
        i->n_services = 1;
        i->services = kpa_xcalloc(1, sizeof(*i->services));
        set_token(&i->services[0], 0x30);
        set_token(&i->bound_to, 0x40);
        i->has_bound = true;
        i->start_time = 987654;
        i->log_pipe_in_init = 7;
        i->cgroup_parent = kpa_xstrdup("/sys/fs/cgroup/kpa.slice");
        i->stop_timeout_ms = 2500;
        i->stop_normal = true;
        i->escalated = true;
        i->deadline_ms = 111;
        i->ended_ms = 222;
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        const char *args[] = {"--one", "two"}, *env[] = {"A=1"};
        kpa_start_bind bind = {.host = "/srv/data", .inside = "/data", .writable = true};
        opts.extra_args = args;
        opts.n_extra_args = 2;
        opts.extra_env = env;
        opts.n_extra_env = 1;
        opts.binds = &bind;
        opts.n_binds = 1;
        opts.memory_bytes = 64 << 20;
        opts.cwd = "/work";
        i->restart = supervise_hooks.on_requested("com.example.rec", "main", &opts);
        i->restart->policy.mode = KPA_RESTART_ON_FAILURE;
        i->restart->policy.max_retries = 4;
        i->restart->policy.delay_ms = 300;
        i->restart->restarts = 2;
        i->restart->at_ms = 333;
        i->sockets_json = json_tokener_parse("[{\"name\": \"http\", \"listen\": \"tcp:8080\", "
                                             "\"fd\": 5}]");
        return i;
}

/* A blank instance filled from the JSON TEXT; *Q is what the load said. */
static instance *load(const char *text, int *q)
{
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(text);
        instance *i = process_instance_new(&ctl);
        *q = o ? supervise_record_load(o, i) : -EBADMSG;
        return i;
}

static bool same_token(const kpa_token *a, const kpa_token *b)
{
        return memcmp(a, b, sizeof(*a)) == 0;
}

static void test_round_trip(void)
{
        instance *a = sample();
        _cleanup_(json_object_putp) json_object *o = supervise_record_new(a);
        json_object *v;
        ok(json_object_object_get_ex(o, "record", &v) && json_object_get_int(v) == 1,
           "a record says its version: \"record\": 1");
        ok(!json_object_object_get_ex(o, "exitStatus", NULL) &&
                   !json_object_object_get_ex(o, "appPid", NULL),
           "a record is not the wire format (no exitStatus, no appPid)");
        ok(json_object_object_get_ex(o, "exit", &v) && json_object_is_type(v, json_type_object),
           "how the run ended is in \"exit\"");
        int q;
        instance *b = load(json_object_to_json_string(o), &q);
        is(q, 0, "the record reads back");
        const kpa_process_context *x = &a->ctx, *y = &b->ctx;
        ok(same_token(&a->token, &b->token), "token");
        is(y->state, x->state, "state");
        is(y->exit_status, x->exit_status, "exit status");
        is(y->exit_code, x->exit_code, "exit code");
        is(y->cleanup_error, x->cleanup_error, "cleanup error");
        is_str(y->exit_cause, x->exit_cause, "exit cause");
        is_str(y->message, x->message, "message");
        is_str(y->app_id, x->app_id, "package");
        is_str(y->run_config_id, x->run_config_id, "run configuration");
        is(y->started_at, x->started_at, "started at");
        is(y->restarts, x->restarts, "restarts");
        is(y->owner, (uid_t)1234, "the context's owner");
        is(y->last_failure.state, x->last_failure.state, "last failure: state");
        is(y->last_failure.exit_code, x->last_failure.exit_code, "last failure: exit code");
        is_str(y->last_failure.message, x->last_failure.message, "last failure: message");
        is(y->last_failure.at, x->last_failure.at, "last failure: when");
        is(b->owner, a->owner, "owner");
        ok(b->has_parent && same_token(&b->parent, &a->parent), "parent");
        ok(b->n_services == 1 && same_token(&b->services[0], &a->services[0]), "services used");
        ok(b->has_bound && same_token(&b->bound_to, &a->bound_to), "bound to its client");
        is(b->start_time, a->start_time, "the init's start time");
        is(b->log_pipe_in_init, 7, "the log pipe's fd in the init");
        is_str(b->cgroup_parent, a->cgroup_parent, "cgroup parent");
        is(b->stop_timeout_ms, a->stop_timeout_ms, "stop timeout");
        ok(b->stop_normal && !b->forced && b->escalated, "stop flags");
        is(b->deadline_ms, a->deadline_ms, "stop deadline");
        is(b->ended_ms, a->ended_ms, "ended at");
        ok(b->restart != NULL, "what a restart needs");
        if (b->restart) {
                const restart_info *r = a->restart, *s = b->restart;
                is_str(s->pkg_id, r->pkg_id, "restart: package");
                is_str(s->rc_id, r->rc_id, "restart: run configuration");
                ok(s->n_args == 2 && streq(s->args[1], "two"), "restart: arguments");
                ok(s->n_env == 1 && streq(s->env[0], "A=1"), "restart: environment");
                ok(s->opts.n_binds == 1 && streq(s->opts.binds[0].inside, "/data") &&
                           s->opts.binds[0].writable,
                   "restart: binds");
                is(s->opts.memory_bytes, r->opts.memory_bytes, "restart: memory limit");
                is_str(s->opts.cwd, "/work", "restart: working directory");
                is(s->policy.mode, KPA_RESTART_ON_FAILURE, "restart: policy");
                is(s->policy.max_retries, 4u, "restart: retries");
                is(s->restarts, 2u, "restart: count");
                is(s->at_ms, 333u, "restart: when due");
                ok(!s->handles_lost, "restart: no handles to lose");
        }
        ok(b->sockets_json && json_object_array_length(b->sockets_json) == 1,
           "declared sockets kept in the init");
        process_instance_free(&ctl, a);
        process_instance_free(&ctl, b);
}

/* A record as kpa-execd wrote it before records had a format of their own:
 * the protocol's context (kpa_context_to_json) plus the supervision
 * fields. */
static void test_old_format(void)
{
        char tok[KPA_TOKEN_STRING_MAX], text[4096];
        kpa_token t;
        set_token(&t, 0x50);
        kpa_token_to_string(&t, tok);
        snprintf(text, sizeof(text),
                 "{\"token\":\"%s\",\"state\":\"Running\",\"exitStatus\":\"Uninitialized\","
                 "\"exitCode\":0,\"exitReason\":0,\"message\":\"\",\"pid\":4242,"
                 "\"package\":\"com.example.old\",\"runConfig\":\"main\",\"cleanupError\":0,"
                 "\"owner\":0,\"appPid\":0,\"startedAt\":1765000000,\"restarts\":1,"
                 "\"restartInMs\":0,\"exitCause\":\"\","
                 "\"lastFailure\":{\"state\":\"Finished\",\"exitStatus\":\"Normal\","
                 "\"exitCode\":3,\"exitReason\":0,\"exitCause\":\"exited\","
                 "\"message\":\"exited with code 3\",\"at\":1765000050},"
                 "\"startTime\":5555,\"logFd\":6,\"cgroupParent\":\"/sys/fs/cgroup\","
                 "\"stopTimeoutMs\":10000,\"stopNormal\":0,\"forced\":0,\"escalated\":0,"
                 "\"deadlineMs\":0,\"endedMs\":0,"
                 "\"restart\":{\"package\":\"com.example.old\",\"args\":[],\"env\":[],"
                 "\"handles\":0,\"memory\":0,\"pids\":0,\"cpuWeight\":0,\"network\":0,"
                 "\"uid\":-1,\"gid\":-1,\"binds\":[],\"mode\":2,\"maxRetries\":5,"
                 "\"delayMs\":100,\"maxDelayMs\":30000,\"restarts\":1,\"resetAfterS\":60,"
                 "\"atMs\":0}}",
                 tok);
        int q;
        instance *i = load(text, &q);
        is(q, 0, "a record of the format before reads");
        ok(same_token(&i->token, &t), "old format: token");
        is(i->ctx.state, KPA_PROCESS_RUNNING, "old format: state");
        is(i->ctx.pid, 4242, "old format: pid");
        is_str(i->ctx.app_id, "com.example.old", "old format: package");
        is(i->ctx.restarts, 1u, "old format: restarts");
        is(i->ctx.last_failure.state, KPA_PROCESS_FINISHED, "old format: last failure's state");
        is(i->ctx.last_failure.exit_status, KPA_EXIT_NORMAL, "old format: last failure's status");
        is(i->ctx.last_failure.exit_code, 3, "old format: last failure's code (flat keys)");
        is_str(i->ctx.last_failure.exit_cause, "exited", "old format: last failure's cause");
        is(i->start_time, 5555ull, "old format: the init's start time");
        is(i->log_pipe_in_init, 6, "old format: log fd");
        ok(i->restart && i->restart->policy.mode == KPA_RESTART_ALWAYS,
           "old format: restart policy");
        process_instance_free(&ctl, i);

        /* an ended one: its exit in flat keys */
        snprintf(text, sizeof(text),
                 "{\"token\":\"%s\",\"state\":\"Finished\",\"exitStatus\":\"Terminated\","
                 "\"exitCode\":9,\"exitReason\":0,\"exitCause\":\"stopped\","
                 "\"message\":\"killed by SIGKILL (forced stop)\",\"package\":\"p\"}",
                 tok);
        i = load(text, &q);
        is(q, 0, "an ended instance's old record reads");
        ok(i->ctx.exit_status == KPA_EXIT_TERMINATED && i->ctx.exit_code == 9 &&
                   streq(i->ctx.exit_cause, "stopped"),
           "old format: how it ended");
        process_instance_free(&ctl, i);
}

static void test_refused(void)
{
        static const struct {
                const char *json, *what;
                int err;
        } cases[] = {
                {"{\"record\": 2, \"token\": \"00112233445566778899aabbccddeeff\", "
                 "\"state\": \"Running\"}",
                 "a newer format", -EPROTONOSUPPORT},
                {"{\"record\": 1, \"state\": \"Running\"}", "no token", -EINVAL},
                {"{\"record\": 1, \"token\": \"xyz\", \"state\": \"Running\"}", "a bad token",
                 -EINVAL},
                {"{\"record\": 1, \"token\": \"00112233445566778899aabbccddeeff\"}", "no state",
                 -EINVAL},
                {"{\"token\": \"00112233445566778899aabbccddeeff\", \"state\": \"Sleeping\"}",
                 "an unknown state", -EINVAL},
                {"[1, 2]", "not an object", -EINVAL},
        };
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                int q;
                instance *i = load(cases[k].json, &q);
                is(q, cases[k].err, "refused: %s", cases[k].what);
                process_instance_free(&ctl, i);
        }
        char text[512], pkg[300];
        memset(pkg, 'a', sizeof(pkg) - 1);
        pkg[sizeof(pkg) - 1] = '\0';
        snprintf(text, sizeof(text),
                 "{\"record\": 1, \"token\": \"00112233445566778899aabbccddeeff\", "
                 "\"state\": \"Running\", \"package\": \"%s\"}",
                 pkg);
        int q;
        instance *i = load(text, &q);
        is(q, -EINVAL, "refused: a package id longer than a context holds");
        process_instance_free(&ctl, i);
}

int main(void)
{
        ctl.state_fd = ctl.services_fd = -1;
        ctl.supervision = &supervise_hooks; /* frees what a restart needs */
        test_round_trip();
        test_old_format();
        test_refused();
        return tap_done();
}
