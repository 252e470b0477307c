#!/usr/bin/env python3
"""A raw kpa-execd protocol client for the tests: sends exactly what it is
told (well-formed or not), prints the reply as one JSON line.

  execd-client.py SOCK call JSON [FILE...]   request with FILEs as fds
  execd-client.py SOCK raw TEXT              TEXT as-is (not checked)
  execd-client.py SOCK big N                 a datagram of N bytes
  execd-client.py SOCK nfds JSON N           JSON with N fds of /dev/null
  execd-client.py SOCK hangup JSON           send, then close at once
  execd-client.py SOCK subscribe N           Subscribe, print N events
  execd-client.py SOCK readlog TOKEN         OpenLog; print the file's text
  execd-client.py SOCK load CLIENTS N PKG    CLIENTS connections at once,
        each starts, stops and waits N processes; prints a summary JSON
  execd-client.py SOCK list                  ListProcesses, every page; prints
        {"processes": [...], "pages": N}
  execd-client.py SOCK hold N SECS [WAIT]    N connections, each asks Version
        (WAIT s to be served, default 1), then all are held for SECS without
        a word; prints
        {"served", "refused", "unanswered", "dropped" (closed by the daemon
        while held), "message" (of a refusal)}
  execd-client.py SOCK deaf JSON             Subscribe, shut down reading,
        send JSON (events and the reply cannot be delivered), close
  execd-client.py SOCK gated DIR NAME JSON   connect, ask Version (so that
        the daemon holds the connection), create DIR/NAME.ready; once
        DIR/NAME.go exists, send JSON, create DIR/NAME.sent, print the reply
        (gives up after 120 s without DIR/NAME.go)
"""
import json
import os
import socket
import sys
import threading
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s


def send(s, data, fds=()):
    if isinstance(data, str):
        data = data.encode()
    if fds:
        socket.send_fds(s, [data], list(fds))
    else:
        s.send(data)


def recv(s):
    msg, fds, _flags, _addr = socket.recv_fds(s, 70000, 8)
    if not msg:
        return None, fds
    return json.loads(msg), fds


def call(s, req, fds=()):
    send(s, json.dumps(req), fds)
    return recv(s)


def list_all(path):
    s = connect(path)
    out, pages = [], 0
    rep, _ = call(s, {"op": "ListProcesses", "id": 1})
    while True:
        pages += 1
        if rep.get("error"):
            return rep
        out += rep["processes"]
        if not rep.get("more"):
            return {"processes": out, "pages": pages}
        rep, _ = call(s, {"op": "ListProcesses", "id": pages + 1, "continue": True})


def hold(path, n, secs, wait=1.0):
    res = {"served": 0, "refused": 0, "unanswered": 0, "dropped": 0, "message": ""}
    held = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(wait)
        try:
            s.connect(path)
            try:
                send(s, json.dumps({"op": "Version", "id": 1}))
            except OSError:
                pass  # refused: the daemon said why, and closed
            rep, _ = recv(s)
        except (OSError, ValueError):
            res["unanswered"] += 1
            s.close()
            continue
        if rep and rep.get("id") == 1 and not rep.get("error"):
            res["served"] += 1
            held.append(s)
        else:
            res["refused"] += 1
            res["message"] = (rep or {}).get("message", "")
            s.close()
    deadline = time.monotonic() + secs
    for s in held:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not s.recv(100):
                res["dropped"] += 1
        except OSError:
            pass
        s.close()
    return res


def load(path, clients, n, pkg):
    results = {"started": 0, "failed_starts": 0, "wrong_end": 0, "ok": 0, "errors": []}
    lock = threading.Lock()

    def worker(k):
        try:
            s = connect(path)
            for j in range(n):
                rep, _ = call(s, {"op": "StartProcess", "id": j, "package": pkg,
                                  "args": ["sleep", "30"]})
                if rep.get("error") or rep["process"]["state"] != "Running":
                    with lock:
                        results["failed_starts"] += 1
                        results["errors"].append(rep.get("message"))
                    continue
                tok = rep["token"]
                call(s, {"op": "StopProcess", "token": tok,
                         "policy": "Forced" if j % 2 else "Normal"})
                rep, _ = call(s, {"op": "WaitProcess", "token": tok, "timeoutMs": 20000})
                p = rep["process"]
                want = ("Finished", "Terminated") if j % 2 else ("Finished", "Normal")
                with lock:
                    results["started"] += 1
                    if (p["state"], p["exitStatus"]) == want and p["pid"] == 0:
                        results["ok"] += 1
                    else:
                        results["wrong_end"] += 1
                        results["errors"].append(p)
            s.close()
        except Exception as e:  # noqa: BLE001 - reported in the summary
            with lock:
                results["errors"].append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results["errors"] = results["errors"][:5]
    return results


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    if cmd == "load":
        print(json.dumps(load(path, int(args[0]), int(args[1]), args[2])))
        return
    if cmd == "list":
        print(json.dumps(list_all(path)))
        return
    if cmd == "hold":
        wait = float(args[2]) if len(args) > 2 else 1.0
        print(json.dumps(hold(path, int(args[0]), float(args[1]), wait)))
        return
    s = connect(path)
    if cmd == "call":
        fds = [os.open(f, os.O_RDONLY) for f in args[1:]]
        rep, _ = call(s, json.loads(args[0]), fds)
    elif cmd == "raw":
        send(s, args[0])
        rep, _ = recv(s)
    elif cmd == "big":
        send(s, b"{" + b" " * (int(args[0]) - 2) + b"}")
        rep, _ = recv(s)
    elif cmd == "nfds":
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(int(args[1]))]
        rep, _ = call(s, json.loads(args[0]), fds)
    elif cmd == "hangup":
        send(s, args[0])
        s.close()
        return
    elif cmd == "deaf":
        call(s, {"op": "Subscribe"})
        s.shutdown(socket.SHUT_RD)
        send(s, args[0])
        time.sleep(0.5)
        s.close()
        return
    elif cmd == "gated":
        gate = os.path.join(args[0], args[1])
        call(s, {"op": "Version"})
        open(gate + ".ready", "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(gate + ".go"):
            if time.monotonic() > deadline:
                sys.exit("gated: no " + gate + ".go after 120 s")
            time.sleep(0.01)
        send(s, args[2])
        open(gate + ".sent", "w").close()
        rep, _ = recv(s)
    elif cmd == "subscribe":
        rep, _ = call(s, {"op": "Subscribe"})
        print(json.dumps(rep), flush=True)
        for _ in range(int(args[0])):
            ev, _ = recv(s)
            print(json.dumps(ev), flush=True)
        return
    elif cmd == "readlog":
        rep, fds = call(s, {"op": "OpenLog", "token": args[0]})
        if fds:
            with os.fdopen(fds[0]) as f:
                sys.stdout.write(f.read())
            return
    else:
        sys.exit("unknown command " + cmd)
    print(json.dumps(rep))


if __name__ == "__main__":
    main()
