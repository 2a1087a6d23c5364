#!/usr/bin/env python3
"""Gossip side by side with real serf (issue 3), in one run, LAN timings on both sides:

  1. time to detect a member killed with -9, in a pool of two members: two `serf agent`s
     (Debian's serf 0.9.4, LAN profile) vs a `caravan agent -server` and a
     `caravan agent -client` (the node gossip pool, LAN timings, the real agents). serf's
     view is polled with `serf members`; Caravan's server has no API listing the node
     pool, so its log line "member <client> failed" is polled (same 50 ms period);
  2. idle resident memory (VmRSS) of a serf agent in that pool vs the Caravan client agent
     with its node gossip pool (the server runs separately and is not counted).

Targets: detection no slower than serf; a client agent at most a third of serf's memory.
ROUNDS (default 3) kill rounds per side; medians are reported. Every process started here
is stopped by its PID, also on failure. Exit 0 with figures (and verdicts), 77 when serf
or caravan is missing, 1 on error. The machine is shared: figures are noisy."""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CARAVAN = os.environ.get("CARAVAN_BIN") or os.path.join(ROOT, "caravan")
SERF = os.environ.get("SERF_BIN") or shutil.which("serf") or "/usr/bin/serf"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
POLL = 0.05
IDLE = float(os.environ.get("IDLE_SECONDS", "5"))

procs = []


def start(argv, log):
    f = open(log, "wb")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    f.close()
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        except ProcessLookupError:
            pass
    if p in procs:
        procs.remove(p)


def rss_kb(pid):
    """(VmRSS, RssAnon, RssFile) in kB."""
    v = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "RssAnon", "RssFile"):
                v[k] = int(line.split()[1])
    return v["VmRSS"], v.get("RssAnon", 0), v.get("RssFile", 0)


def wait_for(pred, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(POLL)
    raise RuntimeError("timed out (%.0f s) waiting for %s" % (timeout, what))


# ---- serf ----

def serf_members(rpc):
    r = subprocess.run([SERF, "members", "-rpc-addr=" + rpc], capture_output=True, text=True,
                       timeout=5)
    return {l.split()[0]: l.split()[2] for l in r.stdout.splitlines() if len(l.split()) >= 3}


def serf_round(work, k, sample_rss):
    a, b = "127.0.81.%d" % (2 * k + 1), "127.0.81.%d" % (2 * k + 2)
    pa = start([SERF, "agent", "-node=sa%d" % k, "-bind=%s:7946" % a, "-rpc-addr=%s:7373" % a,
                "-profile=lan"], os.path.join(work, "serf-a%d.log" % k))
    pb = None
    try:
        wait_for(lambda: "sa%d" % k in serf_members(a + ":7373"), 10, "serf agent a")
        pb = start([SERF, "agent", "-node=sb%d" % k, "-bind=%s:7946" % b,
                    "-rpc-addr=%s:7373" % b, "-profile=lan", "-join=%s:7946" % a],
                   os.path.join(work, "serf-b%d.log" % k))
        wait_for(lambda: serf_members(a + ":7373").get("sb%d" % k) == "alive", 10, "serf join")
        rss = None
        if sample_rss:
            time.sleep(IDLE)
            rss = rss_kb(pa.pid)
        time.sleep(1.0)
        os.kill(pb.pid, signal.SIGKILL)
        t0 = time.monotonic()
        pb.wait()
        procs.remove(pb)
        wait_for(lambda: serf_members(a + ":7373").get("sb%d" % k) == "failed", 30,
                 "serf to mark the killed agent failed")
        return time.monotonic() - t0, rss
    finally:
        if pb:
            stop(pb, signal.SIGKILL)
        stop(pa)


# ---- caravan ----

def log_has(path, pattern):
    try:
        with open(path, "rb") as f:
            return re.search(pattern, f.read().decode(errors="replace")) is not None
    except FileNotFoundError:
        return False


def caravan_round(work, k, sample_rss):
    s, c = "127.0.82.%d" % (2 * k + 1), "127.0.82.%d" % (2 * k + 2)
    sdir, cdir = os.path.join(work, "srv%d" % k), os.path.join(work, "cli%d" % k)
    os.makedirs(sdir)
    os.makedirs(cdir)
    slog, clog = os.path.join(work, "srv%d.log" % k), os.path.join(work, "cli%d.log" % k)
    ps = start([CARAVAN, "agent", "-server", "-bootstrap-expect=1", "-bind=" + s,
                "-data-dir=" + sdir, "-node=csrv%d" % k], slog)
    pc = None
    try:
        wait_for(lambda: log_has(slog, r"gossip pool listening on [0-9.]+:4649"), 10,
                 "caravan server's node pool")
        pc = start([CARAVAN, "agent", "-client", "-bind=" + c, "-data-dir=" + cdir,
                    "-node=ccli%d" % k, "-join=" + s], clog)
        wait_for(lambda: log_has(slog, r"member ccli%d\S* joined" % k), 10,
                 "caravan client to join the node pool")
        rss = None
        if sample_rss:
            time.sleep(IDLE)
            rss = rss_kb(pc.pid)
        time.sleep(1.0)
        os.kill(pc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        pc.wait()
        procs.remove(pc)
        wait_for(lambda: log_has(slog, r"member ccli%d\S* failed" % k), 30,
                 "caravan server to mark the killed client failed")
        return time.monotonic() - t0, rss
    finally:
        if pc:
            stop(pc, signal.SIGKILL)
        stop(ps)


def main():
    if not os.access(SERF, os.X_OK):
        print("SKIP: serf not installed (%s)" % SERF)
        return 77
    if not os.access(CARAVAN, os.X_OK):
        print("SKIP: caravan not built (%s)" % CARAVAN)
        return 77
    work = tempfile.mkdtemp(prefix="cv-bench-serf-")
    ok = False
    try:
        sd, cd, srss, crss = [], [], [], []
        for k in range(ROUNDS):  # interleaved, so both sides see the same machine load
            d, r = serf_round(work, k, k == 0)
            sd.append(d)
            if r:
                srss.append(r)
            d, r = caravan_round(work, k, k == 0)
            cd.append(d)
            if r:
                crss.append(r)
        sm, cm = statistics.median(sd), statistics.median(cd)
        print("gossip vs serf 0.9.4 (LAN timings, two members, kill -9, %d rounds each; "
              "shared 2-core machine, figures are noisy)" % ROUNDS)
        print("  detect a killed member: serf median %.2f s (%s), caravan median %.2f s (%s)"
              % (sm, " ".join("%.2f" % x for x in sd), cm, " ".join("%.2f" % x for x in cd)))
        print("    caravan/serf = %.2f; target: no slower than serf: %s"
              % (cm / sm, "meets" if cm <= sm else "MISSES"))
        s_mb, c_mb = srss[0][0] / 1024, crss[0][0] / 1024
        print("  idle RSS (VmRSS after %.0f s idle): serf agent %.1f MB (anon %.1f, file %.1f), "
              "caravan client agent with its node gossip pool %.1f MB (anon %.1f, file %.1f)"
              % (IDLE, s_mb, srss[0][1] / 1024, srss[0][2] / 1024, c_mb, crss[0][1] / 1024,
                 crss[0][2] / 1024))
        print("    caravan/serf = %.2f; target <= 0.33: %s"
              % (c_mb / s_mb, "meets" if c_mb * 3 <= s_mb else "MISSES"))
        ok = True
        return 0
    except Exception as e:  # report, the finally block stops everything
        print("bench_serf: %s" % e, file=sys.stderr)
        return 1
    finally:
        for p in list(procs):
            stop(p, signal.SIGKILL)
        if ok or not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("logs kept in %s" % work, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
