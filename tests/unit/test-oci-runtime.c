/* Unit tests for kpa/oci.h (oci-runtime.c, oci-runtime-spec.c) without root
 * and without a container: the versioned options, signal names, the errors
 * for an id that is not valid or a container that does not exist, a forced
 * delete of one that is gone, the state of a record whose init is gone
 * (written here by hand), the features JSON and the config.json of spec. */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kpa/oci.h"
#include "tap.h"

static char dir[] = "/tmp/kpa-test-oci-runtime.XXXXXX";

static const char *str_of(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void test_options(void)
{
        kpa_oci_options o;
        kpa_oci_options_init(&o);
        is(o.struct_size, sizeof(o), "kpa_oci_options_init sets struct_size");
        ok(!o.root && !o.bundle && !o.log, "the defaults are NULL");
        o.struct_size = 0;
        kpa_error err = {0};
        char *text = NULL;
        int r = kpa_oci_state(&o, "c1", &text, &err);
        ok(r == -EINVAL && !text, "a struct_size of 0 is refused with -EINVAL");
        has_str(err.message, "kpa_oci_options", "the message names the struct");
        kpa_oci_exec_options e;
        kpa_oci_exec_options_init(&e);
        is(e.struct_size, sizeof(e), "kpa_oci_exec_options_init sets struct_size");
}

static void test_signals(void)
{
        is(kpa_oci_signal_parse("TERM"), SIGTERM, "TERM");
        is(kpa_oci_signal_parse("SIGKILL"), SIGKILL, "SIGKILL");
        is(kpa_oci_signal_parse("usr1"), SIGUSR1, "usr1 (any case)");
        is(kpa_oci_signal_parse("9"), 9, "a number");
        is(kpa_oci_signal_parse("0"), -1, "0 is no signal");
        is(kpa_oci_signal_parse("NOPE"), -1, "an unknown name");
}

static void test_missing(const kpa_oci_options *o)
{
        kpa_error err = {0};
        char *text = NULL;
        int r = kpa_oci_state(o, "../x", &text, &err);
        ok(r < 0 && !text, "state: an id with a slash is refused");
        has_str(err.message, "container id \"../x\": not valid", "the message names the id");
        r = kpa_oci_state(o, "gone", &text, &err);
        ok(r == -ENOENT, "state of a container that does not exist: -ENOENT (%d)", r);
        is_str(err.message, "container \"gone\" does not exist", "the message names it");
        r = kpa_oci_kill(o, "gone", SIGTERM, false, &err);
        ok(r < 0, "kill of a container that does not exist fails");
        has_str(err.message, "\"gone\" does not exist", "kill: the message names it");
        r = kpa_oci_delete(o, "gone", false, &err);
        ok(r < 0, "delete of a container that does not exist fails");
        r = kpa_oci_delete(o, "gone", true, &err);
        ok(r == 0 && err.code == 0, "a forced delete of one that is gone is done (runc)");
        r = kpa_oci_delete(o, "a b", true, &err);
        ok(r < 0, "a forced delete of an id that is not valid still fails");
        r = kpa_oci_start(o, "gone", NULL);
        ok(r == -ENOENT, "start with a NULL kpa_error: -ENOENT all the same");
        kpa_oci_exec_options e;
        kpa_oci_exec_options_init(&e);
        const char *args[] = {"true", NULL};
        e.args = args;
        pid_t pid = 0;
        r = kpa_oci_exec(o, "gone", &e, &pid, &err);
        ok(r < 0 && pid == 0, "exec in a container that does not exist fails");
}

/* a record whose init is gone: a pid above any pid_max */
static void test_stopped(const kpa_oci_options *o)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/old", o->root);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/old/state.json", o->root);
        FILE *f = fopen(path, "w");
        fputs("{\"ociVersion\": \"1.0.2\", \"status\": \"created\", \"pid\": 2147483000, "
              "\"kpaStartTime\": 1, \"bundle\": \"/nonexistent\", "
              "\"created\": \"2026-01-01T00:00:00.000000000Z\", "
              "\"annotations\": {\"a\": \"b\"}}",
              f);
        fclose(f);
        kpa_error err = {0};
        char *text = NULL;
        int r = kpa_oci_state(o, "old", &text, &err);
        ok(r == 0 && text, "state of a record: 0 (%s)", err.message);
        json_object *st = text ? json_tokener_parse(text) : NULL;
        is_str(str_of(st, "status"), "stopped", "its init is gone: stopped");
        is_str(str_of(st, "pid"), "0", "a stopped container has pid 0");
        is_str(str_of(st, "id"), "old", "the id");
        is_str(str_of(st, "bundle"), "/nonexistent", "the bundle recorded");
        json_object *ann = NULL;
        ok(st && json_object_object_get_ex(st, "annotations", &ann) && str_of(ann, "a") &&
                   strcmp(str_of(ann, "a"), "b") == 0,
           "the annotations recorded");
        json_object_put(st);
        free(text);
        r = kpa_oci_kill(o, "old", SIGTERM, false, &err);
        ok(r < 0, "kill of a stopped container fails");
        has_str(err.message, "container \"old\" is not running (stopped)", "and says why");
        r = kpa_oci_start(o, "old", &err);
        ok(r < 0, "start of a stopped container fails");
        has_str(err.message, "is stopped, not created", "and says why");
        r = kpa_oci_delete(o, "old", false, &err);
        ok(r == 0, "delete of a stopped container (%s)", err.message);
        ok(access(path, F_OK) != 0, "its state directory is gone");
}

static void test_features(void)
{
        char *text = NULL;
        kpa_error err = {0};
        ok(kpa_oci_features(&text, &err) == 0 && text, "features");
        json_object *f = text ? json_tokener_parse(text) : NULL;
        ok(f != NULL, "features: the text is JSON");
        is_str(str_of(f, "ociVersionMax"), "1.2.0", "features: ociVersionMax");
        has_str(text, "\"CAP_CHOWN\"", "features: the capabilities the kernel knows");
        json_object_put(f);
        free(text);
}

static void test_spec(void)
{
        kpa_error err = {0};
        ok(kpa_oci_spec(dir, &err) == 0, "spec writes config.json (%s)", err.message);
        char path[256];
        snprintf(path, sizeof(path), "%s/config.json", dir);
        json_object *c = json_object_from_file(path);
        is_str(str_of(c, "ociVersion"), "1.0.2", "spec: the config.json is JSON");
        json_object_put(c);
        is(kpa_oci_spec(dir, &err), -EEXIST, "spec leaves an existing config.json alone");
        has_str(err.message, path, "and names it");
        unlink(path);
}

int main(void)
{
        if (!mkdtemp(dir))
                return 1;
        char root[300];
        snprintf(root, sizeof(root), "%s/root", dir);
        mkdir(root, 0700);
        kpa_oci_options o;
        kpa_oci_options_init(&o);
        o.root = root;
        test_options();
        test_signals();
        test_missing(&o);
        test_stopped(&o);
        test_features();
        test_spec();
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", dir);
        return tap_done();
}
