/* Unit tests for the choice of cgroup driver and the systemd driver's
 * unit names (cgroup-systemd.c), and the OOM counter parser the init uses
 * (cgroup.c). No root, no systemd needed: the scopes themselves are tested
 * in the systemd guest (tests/integration/systemd-host.sh). */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "tap.h"
#include "util.h"

static void test_names(void)
{
        kpa_error err;
        char *slice = NULL, *scope = NULL;
        is(kpa_systemd_unit_names("org.example.hello", "0123abcd", &slice, &scope, &err), 0,
           "unit names of a plain id");
        is_str(slice, "kpa-org.example.hello.slice", "its slice is below kpa.slice");
        is_str(scope, "kpa-org.example.hello-0123abcd.scope", "its scope");
        free(slice);
        free(scope);
        is(kpa_systemd_unit_names("org.example.sd-probe", "ff", &slice, &scope, &err), 0,
           "unit names of an id with a dash");
        is_str(slice, "kpa-org.example.sd\\x2dprobe.slice",
               "the dash is escaped (it would make another slice level)");
        is_str(scope, "kpa-org.example.sd\\x2dprobe-ff.scope", "in the scope too");
        free(slice);
        free(scope);
        is(kpa_systemd_unit_names(".hidden", "ff", &slice, &scope, &err), 0, "a leading dot");
        is_str(slice, "kpa-\\x2ehidden.slice", "is escaped");
        free(slice);
        free(scope);
        char longid[129];
        memset(longid, '-', 128);
        longid[128] = '\0';
        slice = scope = NULL;
        is(kpa_systemd_unit_names(longid, "ff", &slice, &scope, &err), -ENAMETOOLONG,
           "an id too long for a unit name once escaped");
        has_str(err.message, "too long for a systemd unit name", "says so");
        ok(!slice && !scope, "and returns no names");
}

static void test_driver_choice(void)
{
        kpa_error err;
        kpa_cgroup_driver d = KPA_CGROUP_DRIVER_AUTO;
        setenv("KPA_CGROUP_DRIVER", "cgroupfs", 1);
        is(kpa_cgroup_driver_get(&d, &err), 0, "KPA_CGROUP_DRIVER=cgroupfs");
        is(d, KPA_CGROUP_DRIVER_CGROUPFS, "chooses cgroupfs");
        setenv("KPA_CGROUP_DRIVER", "systemd", 1);
        is(kpa_cgroup_driver_get(&d, &err), 0, "KPA_CGROUP_DRIVER=systemd");
        is(d, KPA_CGROUP_DRIVER_SYSTEMD, "chooses systemd");
        setenv("KPA_CGROUP_DRIVER", "docker", 1);
        is(kpa_cgroup_driver_get(&d, &err), -EINVAL, "KPA_CGROUP_DRIVER=docker is refused");
        has_str(err.message, "KPA_CGROUP_DRIVER=docker: unknown cgroup driver", "naming it");
        has_str(err.message, "auto, cgroupfs or systemd", "and the choices");
        setenv("KPA_CGROUP_DRIVER", "auto", 1);
        is(kpa_cgroup_driver_get(&d, &err), 0, "KPA_CGROUP_DRIVER=auto");
        ok(d != KPA_CGROUP_DRIVER_AUTO, "auto resolves to a driver (%s)",
           kpa_cgroup_driver_name(d));
        if (access("/run/systemd/system", F_OK) < 0)
                is(d, KPA_CGROUP_DRIVER_CGROUPFS, "without systemd as PID 1: cgroupfs");
        is(kpa_cgroup_driver_set("bogus", &err), -EINVAL,
           "kpa_cgroup_driver_set refuses a bad name");
        has_str(err.message, "unknown cgroup driver \"bogus\"", "naming it");
        is(kpa_cgroup_driver_set("cgroupfs", &err), 0, "kpa_cgroup_driver_set(cgroupfs)");
        setenv("KPA_CGROUP_DRIVER", "docker", 1);
        is(kpa_cgroup_driver_get(&d, &err), 0, "the explicit choice wins over the environment");
        is(d, KPA_CGROUP_DRIVER_CGROUPFS, "cgroupfs");
        unsetenv("KPA_CGROUP_DRIVER");
        is_str(kpa_cgroup_driver_name(KPA_CGROUP_DRIVER_SYSTEMD), "systemd", "name of systemd");
}

static int file_with(const char *text)
{
        char path[] = "/tmp/kpa-oom-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
                return -1;
        unlink(path);
        (void)!write(fd, text, strlen(text));
        return fd;
}

static void test_oom_parser(void)
{
        int fd = file_with("low 0\nhigh 0\nmax 12\noom 1\noom_kill 2\noom_group_kill 0\n");
        ok(kpa_oom_fd_killed(fd), "v2 memory.events with oom_kill 2: killed");
        close(fd);
        fd = file_with("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n");
        ok(!kpa_oom_fd_killed(fd), "oom_kill 0: not killed");
        close(fd);
        fd = file_with("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        ok(kpa_oom_fd_killed(fd), "v1 memory.oom_control with oom_kill 1: killed");
        close(fd);
        fd = file_with("oom_kill_disable 1\nunder_oom 0\n");
        ok(!kpa_oom_fd_killed(fd), "oom_kill_disable is not oom_kill");
        close(fd);
        ok(!kpa_oom_fd_killed(-1), "no fd: not killed");
}

int main(void)
{
        test_names();
        test_driver_choice();
        test_oom_parser();
        return tap_done();
}
