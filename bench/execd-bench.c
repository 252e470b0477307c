/* execd-bench: start throughput and start latency, in direct mode
 * (kpa_control_open_local, this process is the parent) or through
 * kpa-execd (kpa_control_connect), with the same calls.
 *
 *   execd-bench local STORE APP N CLIENTS
 *   execd-bench daemon SOCKET APP N CLIENTS [DAEMON_PID]
 *
 * CLIENTS processes each start N instances of APP's primary run
 * configuration one after the other; each start is timed from the call to
 * its return (the instance is Running then), and waited for until it has
 * ended. Prints one JSON line: starts, seconds, starts_per_s, p50_ms,
 * p99_ms, failed, and the CPU time (user and system) per start, in ms:
 *   parent_ms     of the process that runs libkpa's start: the clients in
 *                 direct mode, kpa-execd itself in daemon mode (given
 *                 DAEMON_PID; read from /proc/DAEMON_PID/stat before and
 *                 after);
 *   instances_ms  of the instances (their init and application), reaped by
 *                 the clients in direct mode, by kpa-execd in daemon mode;
 *   client_ms     of the clients in daemon mode (the requests and replies;
 *                 0 in direct mode, where the client is the parent);
 *   cpu_ms        the sum.
 * The CPU time of the kernel's workers (a network namespace's clean-up) is
 * in none of them. Used by bench/daemon.sh. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kpa/process.h"

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime (self) and cutime + cstime (children) of PID, in
 * seconds; 0 when unknown */
static void proc_cpu_s(const char *pid, double *self, double *children)
{
        *self = *children = 0;
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* the name may hold spaces */
        unsigned long long t[4];
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
                         &t[0], &t[1], &t[2], &t[3]) != 4)
                return;
        *self = (double)(t[0] + t[1]) / (double)sysconf(_SC_CLK_TCK);
        *children = (double)(t[2] + t[3]) / (double)sysconf(_SC_CLK_TCK);
}

static double rusage_s(const struct rusage *r)
{
        return (double)r->ru_utime.tv_sec + (double)r->ru_utime.tv_usec / 1e6 +
               (double)r->ru_stime.tv_sec + (double)r->ru_stime.tv_usec / 1e6;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* One client: N starts; latencies (ms) written to FD as doubles, its own
 * CPU time and that of the instances it reaped (s) to CPU_FD, and the
 * failure count as the exit status. */
static int client(const char *mode, const char *where, const char *app, int n, int fd, int cpu_fd)
{
        kpa_control *ctl = NULL;
        kpa_error err;
        int q = strcmp(mode, "local") == 0 ? kpa_control_open_local(where, &ctl, &err)
                                            : kpa_control_connect(where, &ctl, &err);
        if (q < 0) {
                fprintf(stderr, "execd-bench: %s\n", err.message);
                return 100;
        }
        int failed = 0;
        for (int k = 0; k < n; k++) {
                kpa_token t;
                double t0 = now_s();
                kpa_error_clear(&err);
                q = kpa_process_start(ctl, app, NULL, NULL, &t, &err);
                double ms = (now_s() - t0) * 1000;
                kpa_process_context ctx;
                kpa_process_context_init(&ctx);
                if (q < 0 || kpa_process_wait(ctl, &t, 10000, &ctx, &err) < 0 ||
                    ctx.state != KPA_PROCESS_FINISHED) {
                        if (failed++ == 0)
                                fprintf(stderr, "execd-bench: %s\n",
                                        err.message[0] ? err.message : "it did not finish");
                        continue;
                }
                if (write(fd, &ms, sizeof(ms)) != sizeof(ms))
                        failed++;
        }
        kpa_control_close(ctl);
        struct rusage self, children;
        getrusage(RUSAGE_SELF, &self);
        getrusage(RUSAGE_CHILDREN, &children);
        double cpu[2] = {rusage_s(&self), rusage_s(&children)};
        if (write(cpu_fd, cpu, sizeof(cpu)) != sizeof(cpu))
                failed++;
        return failed > 99 ? 99 : failed;
}

int main(int argc, char **argv)
{
        if (argc != 6 && argc != 7) {
                fprintf(stderr, "usage: execd-bench local|daemon STORE|SOCKET APP N CLIENTS "
                                "[DAEMON_PID]\n");
                return 2;
        }
        int n = atoi(argv[4]), clients = atoi(argv[5]);
        if (n <= 0 || clients <= 0)
                return 2;
        FILE *lat = tmpfile(), *cpus = tmpfile();
        if (!lat || !cpus)
                return 1;
        bool direct = strcmp(argv[1], "local") == 0;
        const char *daemon_pid = argc == 7 ? argv[6] : NULL;
        double daemon0[2] = {0, 0}, daemon1[2] = {0, 0};
        if (daemon_pid)
                proc_cpu_s(daemon_pid, &daemon0[0], &daemon0[1]);
        double t0 = now_s();
        for (int c = 0; c < clients; c++)
                if (fork() == 0)
                        _exit(client(argv[1], argv[2], argv[3], n, fileno(lat), fileno(cpus)));
        int failed = 0, status;
        while (wait(&status) > 0)
                failed += WIFEXITED(status) ? WEXITSTATUS(status) : n;
        double secs = now_s() - t0;
        if (daemon_pid)
                proc_cpu_s(daemon_pid, &daemon1[0], &daemon1[1]);
        /* the clients' own CPU time, and that of the instances they reaped */
        double own = 0, reaped = 0, cpu[2];
        rewind(cpus);
        while (fread(cpu, sizeof(cpu), 1, cpus) == 1) {
                own += cpu[0];
                reaped += cpu[1];
        }
        double parent = direct ? own : daemon1[0] - daemon0[0];
        double instances = direct ? reaped : daemon1[1] - daemon0[1];
        double client_cpu = direct ? 0 : own + reaped;
        long count = ftell(lat) / (long)sizeof(double);
        double *v = calloc((size_t)count + 1, sizeof(double));
        rewind(lat);
        count = (long)fread(v, sizeof(double), (size_t)count, lat);
        qsort(v, (size_t)count, sizeof(double), cmp);
        double p50 = count ? v[count / 2] : 0, p99 = count ? v[(count * 99) / 100] : 0;
        double per = count ? 1000 / (double)count : 0;
        printf("{\"mode\": \"%s\", \"clients\": %d, \"starts\": %ld, \"seconds\": %.3f, "
               "\"starts_per_s\": %.1f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"failed\": %d, "
               "\"parent_ms\": %.3f, \"instances_ms\": %.3f, \"client_ms\": %.3f, "
               "\"cpu_ms\": %.3f}\n",
               argv[1], clients, count, secs, count / secs, p50, p99, failed, parent * per,
               instances * per, client_cpu * per, (parent + instances + client_cpu) * per);
        free(v);
        return failed ? 1 : 0;
}
