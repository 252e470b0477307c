/* run-tty.c: kpa-run's terminal relay (--tty), and the pipes that replace
 * those of our stdin, stdout and stderr that are terminals (see below). */
#include "config.h"

#include "run.h"

/* ---- the terminal: a pty of the application's own (--tty), or pipes ----
 * The application never gets a terminal of the host. With --tty its pty
 * comes from its own devpts; kpa-run holds the master and relays our stdin
 * to it and its output to our stdout, with our terminal in raw mode
 * meanwhile (so that ^C, ^Z and the like are bytes for the pty's line
 * discipline, which turns them into signals inside). The terminal is put
 * back on every way out: the end of the loop, exit(), and the signals that
 * would end kpa-run without passing through either. Without a pty, those of
 * our stdin, stdout and stderr that are terminals are replaced by pipes,
 * relayed the same way; the others (files, pipes) are passed as they are. */

/* closep(), and the fd is -1 after it */
static void close_fd(int *fd)
{
        closep(fd);
        *fd = -1;
}

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;

void restore_terminal(void)
{
        if (termios_saved) {
                (void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios); /* no wait on a stuck reader */
                termios_saved = 0;
        }
}

static void restore_and_die(int sig)
{
        restore_terminal();
        signal(sig, SIG_DFL);
        raise(sig);
}

void make_terminal_raw(void)
{
        static const int fatal[] = {SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE, SIGABRT,
                                    SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGXCPU, SIGXFSZ};
        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return;
        struct termios raw = saved_termios;
        cfmakeraw(&raw);
        termios_saved = 1;
        atexit(restore_terminal);
        for (size_t i = 0; i < ELEMENTSOF(fatal); i++)
                signal(fatal[i], restore_and_die);
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0)
                termios_saved = 0;
}

/* The parent of PID, from /proc; 0 when unknown. */
static pid_t parent_of(pid_t pid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* after the command name */
        int ppid = 0;
        return p && sscanf(p, ") %*c %d", &ppid) == 1 ? (pid_t)ppid : 0;
}

/* Whether our process group is orphaned, as the kernel sees it for the
 * stop signals: no ancestor outside the group but in our session is found
 * on the way up (the first one outside the group decides). */
static bool group_orphaned(void)
{
        pid_t p = getppid();
        while (p > 1 && getpgid(p) == getpgrp())
                p = parent_of(p);
        return p <= 1 || getsid(p) != getsid(0);
}

/* SIGTSTP (kill -TSTP, or Ctrl-Z with --no-tty; in raw mode the terminal
 * sends none): stop as its default action would, with the host terminal as
 * it was meanwhile. In an orphaned process group, where nobody would
 * continue us, the kernel discards it: so do we. */
void suspend_self(void)
{
        if (group_orphaned())
                return;
        struct termios raw;
        bool was_raw = termios_saved && tcgetattr(STDIN_FILENO, &raw) == 0;
        if (was_raw)
                restore_terminal();
        raise(SIGSTOP);
        if (was_raw && tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
                termios_saved = 1;
}

/* The host terminal whose size the pty gets: stdout's, else stdin's. */
int size_terminal(void)
{
        return isatty(STDOUT_FILENO) ? STDOUT_FILENO : isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
}

void copy_window_size(const tty_relay *t)
{
        struct winsize ws;
        if (t->tty && t->size_fd >= 0 && t->in_dst >= 0 && ioctl(t->size_fd, TIOCGWINSZ, &ws) == 0)
                (void)ioctl(t->in_dst, TIOCSWINSZ, &ws);
}

void relay_close(tty_relay *t)
{
        for (size_t i = 0; i < ELEMENTSOF(t->out); i++)
                if (t->out[i].src != t->in_dst)
                        close_fd(&t->out[i].src);
        close_fd(&t->in_dst);
        t->out[0].src = t->out[1].src = -1;
}

/* Copy what O's source has for us to its destination, until it has no
 * more for now; at its end (a pty hangs up when the application and all it
 * started have closed their ends) it is closed. */
void relay_output(tty_relay *t, relay_out *o)
{
        char buf[8192];
        while (o->src >= 0) {
                ssize_t n = read(o->src, buf, sizeof(buf));
                if (n > 0) {
                        (void)cli_write_all(o->dst, buf, (size_t)n); /* ours gone: drop it */
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (o->src == t->in_dst) { /* the pty: input goes nowhere now */
                        close_fd(&t->in_dst);
                        t->len = t->off = 0;
                        o->src = -1;
                } else {
                        close_fd(&o->src);
                }
        }
}

/* At the end of our stdin: a pipe is closed; to a pty the end-of-file
 * character goes in, as if typed (for kpa-run --tty <FILE). */
static void relay_input_end(tty_relay *t)
{
        struct termios tio;
        t->in = -1;
        if (!t->tty) {
                close_fd(&t->in_dst);
        } else if (t->in_dst >= 0 && tcgetattr(t->in_dst, &tio) == 0) {
                t->buf[0] = (char)tio.c_cc[VEOF];
                t->len = 1;
                t->off = 0;
        }
}

/* Our stdin to the application, without blocking on a slow reader. */
static void relay_input(tty_relay *t, bool readable)
{
        if (readable && t->len == 0 && t->in >= 0) {
                ssize_t n = read(t->in, t->buf, sizeof(t->buf));
                if (n > 0) {
                        t->len = (size_t)n;
                        t->off = 0;
                } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                        relay_input_end(t);
                }
        }
        while (t->len > t->off && t->in_dst >= 0) {
                ssize_t w = write(t->in_dst, t->buf + t->off, t->len - t->off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN)
                        return;
                if (w < 0) { /* the reader is gone: nothing more goes in */
                        t->in = -1;
                        if (!t->tty)
                                close_fd(&t->in_dst);
                        break;
                }
                t->off += (size_t)w;
        }
        t->len = t->off = 0;
}

/* The relay's pollfds: PFD[0] our stdin, PFD[1] where it goes (when it
 * has to wait), PFD[2] and PFD[3] the outputs; -1 is not polled. */
void relay_events(const tty_relay *t, struct pollfd *pfd)
{
        pfd[0] = (struct pollfd){.fd = t->len == 0 && t->in_dst >= 0 ? t->in : -1, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = t->len ? t->in_dst : -1, .events = POLLOUT};
        for (size_t i = 0; i < 2; i++)
                pfd[2 + i] = (struct pollfd){.fd = t->out[i].src, .events = POLLIN};
}

void relay_dispatch(tty_relay *t, const struct pollfd *pfd)
{
        for (size_t i = 0; i < 2; i++)
                if (pfd[2 + i].revents)
                        relay_output(t, &t->out[i]);
        if (pfd[0].revents || pfd[1].revents)
                relay_input(t, pfd[0].revents != 0);
}

/* Without a pty: a pipe in place of each of our stdio fds that is a
 * terminal, into O's stdio fds. 0, or -errno. */
int relay_pipes(tty_relay *t, kpa_start_options *o)
{
        int *app[3] = {&o->stdin_fd, &o->stdout_fd, &o->stderr_fd};
        for (int i = 0; i < 3; i++) {
                int p[2];
                if (*app[i] < 0 || !isatty(i))
                        continue;
                if (pipe2(p, O_CLOEXEC) < 0)
                        return -errno;
                /* the application's end is passed as it is; ours does not block */
                int ours = i == 0 ? p[1] : p[0];
                fcntl(ours, F_SETFL, O_NONBLOCK);
                *app[i] = i == 0 ? p[0] : p[1];
                if (i == 0)
                        t->in_dst = ours;
                else
                        t->out[i - 1].src = ours;
        }
        return 0;
}

/* After the start: the application's ends of the pipes are its own now. */
void relay_pipes_started(tty_relay *t, kpa_start_options *o)
{
        if (t->in_dst >= 0)
                close_fd(&o->stdin_fd);
        if (t->out[0].src >= 0)
                close_fd(&o->stdout_fd);
        if (t->out[1].src >= 0)
                close_fd(&o->stderr_fd);
        if (t->in_dst < 0)
                t->in = -1;
}
