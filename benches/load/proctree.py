#!/usr/bin/env python3
"""Process-tree accounting for benches/load.sh (reads /proc only).

    proctree.py cpu PID...
        CPU seconds (user + system) used so far by the process trees rooted at
        each PID, including children that have already exited and been reaped
        (their time is in the reaper's cutime/cstime). The difference of two
        readings is the CPU the trees used in between, even when Postfix
        starts and retires daemons in the meantime.

    proctree.py byname PID...
        CPU seconds of each live process in the trees, summed by command name
        (for --breakdown runs, where Postfix keeps its daemons to the end).

    proctree.py sample --port PORT --stop FILE PID...
        Every 50 ms, sum the resident memory (VmRSS) of the trees rooted at
        each PID (the tree is refreshed every 0.5 s) and, every 0.5 s, count
        established TCP connections to 127.0.0.1:PORT;
        stop when FILE exists and print "PEAK_RSS_KIB PEAK_SESSIONS SAMPLES".
"""

import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def table():
    """pid -> (ppid, fields after the command name) for every process."""
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        procs[int(name)] = (int(rest[1]), rest)
    return procs


def tree(procs, roots):
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in procs]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    return seen


def cpu(roots):
    procs = table()
    ticks = 0
    for pid in tree(procs, roots):
        rest = procs[pid][1]
        # utime stime cutime cstime are fields 14-17 of /proc/PID/stat.
        ticks += sum(int(x) for x in rest[11:15])
    return ticks / TICK


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sessions(port):
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local, state = cols[1], cols[3]
                    if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                        n += 1
        except OSError:
            pass
    return n


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    if args[0] == "cpu":
        print(f"{cpu([int(p) for p in args[1:]]):.2f}")
        return
    if args[0] == "byname":
        procs = table()
        by = {}
        for pid in tree(procs, [int(p) for p in args[1:]]):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    name = f.read().strip()
            except OSError:
                continue
            by[name] = by.get(name, 0) + sum(int(x) for x in procs[pid][1][11:13]) / TICK
        print(" ".join(f"{k}={v:.2f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])))
        return
    if args[0] == "sample":
        port = int(args[args.index("--port") + 1])
        stop = args[args.index("--stop") + 1]
        roots = [int(p) for p in args[args.index("--stop") + 2 :]]
        peak_rss = peak_sessions = samples = 0
        pids = []
        while not os.path.exists(stop):
            # Finding the tree reads every /proc/PID/stat: do it every 0.5 s
            # (PDF workers live longer than that); RSS every 50 ms.
            if samples % 10 == 0:
                pids = tree(table(), roots)
                peak_sessions = max(peak_sessions, sessions(port))
            peak_rss = max(peak_rss, sum(rss_kib(p) for p in pids))
            samples += 1
            time.sleep(0.05)
        print(peak_rss, peak_sessions, samples)
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
