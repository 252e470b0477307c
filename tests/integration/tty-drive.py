#!/usr/bin/python3
"""tty-drive.py: run a command on a terminal of its own and talk to it, for
tests/integration/tty.sh (a pseudo-terminal from python3's pty module: the
command is a session leader with it as its controlling terminal, as at a
login).

  tty-drive.py [--rows R --cols C] [--timeout SECS] [--job-control] -- CMD [ARGS...]

--job-control: CMD runs as a shell's foreground job does, in a process group
of its own below a session leader (a small helper that waits for it, and
exits as it does), not as the session leader itself; its group is then not
orphaned, so that stop signals stop it.

Steps come on stdin, one per line (TEXT takes \\r, \\x03 and such escapes):
  send TEXT            type TEXT
  expect REGEX         wait until the output since the last match has REGEX
  retry TEXT REGEX     type TEXT every half second until REGEX shows (for a
                       key that must reach a job that is not yet in front)
  winsize R C          resize the terminal (the kernel sends SIGWINCH)
  signal NAME          send signal NAME (TERM, INT, ...) to the terminal's
                       foreground process group (CMD's)
  raw                  print "raw=yes" if the terminal is in raw mode now
  until-raw yes|no     wait until it is (or is not), then print as raw does
  wait                 wait until CMD ends; print "exit=N" (or "signal=N")
Before the first step it prints "stty-before=...", after "wait"
"stty-after=..." (stty -g of the terminal). Exit status 0, or 3 when an
expect timed out (the output so far is printed then).
"""
import argparse
import codecs
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time


def unescape(text):
    return codecs.decode(text, "unicode_escape")


def stty_g(fd):
    return subprocess.run(["stty", "-g"], stdin=fd, capture_output=True,
                          text=True, check=False).stdout.strip()


def raw_mode(fd):
    return "no" if termios.tcgetattr(fd)[3] & termios.ICANON else "yes"


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Driver:
    def __init__(self, master, proc, timeout):
        self.master = master
        self.proc = proc
        self.timeout = timeout
        self.out = ""   # everything read
        self.mark = 0   # where the next expect starts

    def pump(self, wait):
        r, _, _ = select.select([self.master], [], [], wait)
        if not r:
            return False
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: every slave fd is closed
            data = b""
        if not data:
            return False
        self.out += data.decode("utf-8", "replace")
        return True

    def find(self, regex):
        m = re.search(regex, self.out[self.mark:])
        if m:
            self.mark += m.end()
        return m is not None

    def expect(self, regex, resend=None):
        end = time.monotonic() + self.timeout
        last_send = 0.0
        while not self.find(regex):
            now = time.monotonic()
            if now > end:
                print("timeout waiting for %r; output:\n%s" % (regex, self.out))
                self.proc.kill()
                self.proc.wait()
                sys.exit(3)
            if resend is not None and now - last_send > 0.5:
                os.write(self.master, resend.encode())
                last_send = now
            self.pump(0.1)

    def wait(self):
        end = time.monotonic() + self.timeout
        while self.proc.poll() is None:
            if time.monotonic() > end:
                print("timeout waiting for the end; output:\n%s" % self.out)
                self.proc.kill()
                sys.exit(3)
            self.pump(0.1)
        while self.pump(0.05):
            pass
        rc = self.proc.returncode
        print("exit=%d" % rc if rc >= 0 else "signal=%d" % -rc)


def leader(cmd):
    """--job-control's session leader: CMD in a foreground group of its own."""
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(0, os.getpid())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execvp(cmd[0], cmd)
    while True:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            break
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


def main():
    if sys.argv[1:2] == ["--leader"]:
        leader(sys.argv[3:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--job-control", action="store_true")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    master, slave = pty.openpty()
    set_size(slave, a.rows, a.cols)
    print("stty-before=" + stty_g(slave), flush=True)

    def child_setup():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    cmd = a.cmd
    if a.job_control:
        cmd = [sys.executable, os.path.abspath(__file__), "--leader", "--"] + cmd
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, preexec_fn=child_setup)
    d = Driver(master, proc, a.timeout)
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        op, _, rest = line.partition(" ")
        if op == "send":
            os.write(master, unescape(rest).encode())
        elif op == "expect":
            d.expect(rest)
        elif op == "retry":
            text, _, regex = rest.partition(" ")
            d.expect(regex, resend=unescape(text))
        elif op == "winsize":
            rows, cols = rest.split()
            set_size(master, int(rows), int(cols))
        elif op == "signal":
            os.killpg(os.tcgetpgrp(master), getattr(signal, "SIG" + rest))
        elif op == "raw":
            print("raw=" + raw_mode(slave), flush=True)
        elif op == "until-raw":
            end = time.monotonic() + a.timeout
            while raw_mode(slave) != rest and time.monotonic() < end:
                d.pump(0.05)
            print("raw=" + raw_mode(slave), flush=True)
        elif op == "wait":
            d.wait()
            print("stty-after=" + stty_g(slave), flush=True)
        else:
            sys.exit("tty-drive.py: unknown step %r" % op)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    sys.stdout.write("output:\n" + d.out + "\n")


if __name__ == "__main__":
    main()
