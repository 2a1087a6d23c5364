#!/usr/bin/env python3
"""Dev-agent benchmark (issue 2): time from `caravan agent -dev` start to a leader with a
ready node, time from `job run` (PUT /v1/jobs) to the allocation running (raw_exec), and
the agent's idle RSS. Prints each figure with the target and Nomad's figure.

Runs ROUNDS agents one after the other on 127.0.0.41 and reports the median and worst."""
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CARAVAN = os.environ.get("CARAVAN_BIN") or os.path.join(ROOT, "caravan")
IP = "127.0.0.41"
ADDR = "http://%s:4646" % IP
ROUNDS = int(os.environ.get("ROUNDS", "5"))


def get(path, timeout=5):
    with urllib.request.urlopen(ADDR + path, timeout=timeout) as r:
        return json.loads(r.read().decode()), r.headers


def put(path, body):
    req = urllib.request.Request(ADDR + path, data=json.dumps(body).encode(), method="PUT")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read().decode())


JOB = {"Job": {"ID": "bench", "Type": "service", "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [
    {"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/sleep", "args": ["60"]},
     "Resources": {"CPU": 100, "MemoryMB": 32}}]}]}}


def one_round():
    t0 = time.monotonic()
    proc = subprocess.Popen([CARAVAN, "agent", "-dev", "-bind", IP, "-log-level", "WARN"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        ready = None
        while time.monotonic() - t0 < 10:
            try:
                nodes, _ = get("/v1/nodes", timeout=1)
                leader, _ = get("/v1/status/leader", timeout=1)
                if leader and any(n["Status"] == "ready" for n in nodes):
                    ready = time.monotonic() - t0
                    break
            except Exception:
                pass
            time.sleep(0.002)
        if ready is None:
            raise RuntimeError("agent did not become ready")
        time.sleep(1.0)
        with open("/proc/%d/status" % proc.pid) as f:
            rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS")][0]
        t1 = time.monotonic()
        put("/v1/jobs", JOB)
        index = 0
        running = None
        while time.monotonic() - t1 < 10:
            allocs, hdr = get("/v1/job/bench/allocations?index=%d&wait=5s" % index)
            index = int(hdr.get("X-Nomad-Index", "0"))
            if any(a["ClientStatus"] == "running" for a in allocs):
                running = time.monotonic() - t1
                break
        if running is None:
            raise RuntimeError("allocation never ran")
        return ready, running, rss
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main():
    rs, js, ms = [], [], []
    for _ in range(ROUNDS):
        r, j, m = one_round()
        rs.append(r * 1000)
        js.append(j * 1000)
        ms.append(m / 1024)
    def line(name, vals, unit, target, nomad):
        med, worst = statistics.median(vals), max(vals)
        ok = "meets" if med <= target else "MISSES"
        print("%-34s median %7.1f %s, worst %7.1f %s  (target <= %g %s: %s; Nomad: %s)"
              % (name, med, unit, worst, unit, target, unit, ok, nomad))
    print("caravan dev agent, %d rounds" % ROUNDS)
    line("start -> leader with ready node", rs, "ms", 300, "seconds")
    line("job run -> allocation running", js, "ms", 100, "seconds")
    line("idle RSS of the dev agent", ms, "MB", 10, "about 100 MB")


if __name__ == "__main__":
    sys.exit(main())
