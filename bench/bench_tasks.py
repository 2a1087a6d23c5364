#!/usr/bin/env python3
"""Task benchmark (issue 5): task start latency per driver, from `job run` (PUT /v1/jobs)
to the allocation running, for raw_exec, exec and docker; then the agent's own memory with
50 running exec tasks, against what the tasks' helper processes cost.

Nomad runs a logmon and an executor per task (tens of MB each, nomad.md section 6); our
per-task helper is the task shim. The figures:
  * agent RSS (VmRSS of the agent process) before the 50 tasks and with them running, and
    the difference per task: what the agent itself spends on a task (runner, state, events);
  * the shims: PSS summed over the 50 shim processes (/proc/<pid>/smaps_rollup; PSS shares
    the pages the shims have in common, so the sum is what they really add) and their
    RSS sum (every shared page counted again per shim), both per task.

docker: included when the node reports driver.docker detected. When dockerd is installed
and no endpoint is given (DOCKER_ENDPOINT), the bench starts its own side-effect-free
daemon (feasibility.md: --bridge=none --iptables=false --ip-forward=false, private roots)
and imports a busybox-static image; otherwise "docker: skipped (driver not detected)".

Runs on 127.0.0.43 with a temporary data dir; needs root for exec (else exec is skipped)."""
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CARAVAN = os.environ.get("CARAVAN_BIN") or os.path.join(ROOT, "caravan")
IP = os.environ.get("BENCH_IP", "127.0.0.43")
ADDR = "http://%s:4646" % IP
ROUNDS = int(os.environ.get("ROUNDS", "5"))
NTASKS = int(os.environ.get("NTASKS", "50"))
IMAGE = "caravan-bench/busybox:1"


def api(path, body=None, method=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ADDR + path, data=data, method=method or ("PUT" if data else "GET"))
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def job(jid, driver, config, count=1):
    return {"Job": {"ID": jid, "Type": "service", "TaskGroups": [{"Name": "g", "Count": count,
            "RestartPolicy": {"Attempts": 0, "Interval": 600 * 10**9, "Delay": 10**9, "Mode": "fail"},
            "Tasks": [{"Name": "t", "Driver": driver, "Config": config, "KillTimeout": 10**9,
                       "Resources": {"CPU": 20, "MemoryMB": 16}}]}]}}


def running(jid, want):
    allocs = api("/v1/job/%s/allocations" % jid, timeout=5)
    bad = [a for a in allocs if a["ClientStatus"] in ("failed", "lost")]
    if bad:
        raise RuntimeError("%s: allocation %s failed: %s" % (jid, bad[0]["ID"], json.dumps(bad[0].get("TaskStates"))[:400]))
    return sum(a["ClientStatus"] == "running" for a in allocs) >= want


def start_latency(driver, config, rounds):
    """Per round: job run -> the task's Started event (the client's clock, same machine),
    and job run -> the allocation running as the servers see it (which includes the
    client's 200 ms batching of allocation updates, as Nomad's client does)."""
    started, seen = [], []
    for i in range(rounds):
        jid = "lat-%s-%d" % (driver, i)
        t0 = time.monotonic()
        w0 = time.time_ns()
        api("/v1/jobs", job(jid, driver, config))
        while not running(jid, 1):
            if time.monotonic() - t0 > 60:
                raise RuntimeError("%s did not start in 60 s" % jid)
            time.sleep(0.002)
        seen.append(time.monotonic() - t0)
        alloc = api("/v1/job/%s/allocations" % jid)[0]
        full = api("/v1/allocation/%s" % alloc["ID"])
        ev = [e for st in (full.get("TaskStates") or {}).values() for e in (st.get("Events") or [])
              if e.get("Type") == "Started"]
        if ev:
            started.append((ev[0]["Time"] - w0) / 1e9)
        api("/v1/job/%s?purge=true" % jid, method="DELETE")
    return started, seen


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def shim_pids(datadir):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"task-shim" in argv and any(datadir.encode() in a for a in argv):
            pids.append(int(p))
    return pids


def start_dockerd(work):
    """Our own dockerd and a busybox-static image; returns (endpoint, proc) or (None, None)."""
    if os.environ.get("DOCKER_ENDPOINT"):
        return os.environ["DOCKER_ENDPOINT"], None
    dockerd, docker, bb = shutil.which("dockerd"), shutil.which("docker"), shutil.which("busybox")
    if not (dockerd and docker and bb) or os.geteuid() != 0:
        return None, None
    d = os.path.join(work, "docker")
    os.makedirs(d)
    sock = os.path.join(d, "docker.sock")
    proc = subprocess.Popen([dockerd, "--bridge=none", "--iptables=false", "--ip-forward=false",
                             "--data-root", os.path.join(d, "root"), "--exec-root", os.path.join(d, "exec"),
                             "--pidfile", os.path.join(d, "dockerd.pid"), "-H", "unix://" + sock],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    env = dict(os.environ, DOCKER_HOST="unix://" + sock)
    deadline = time.time() + 20
    while time.time() < deadline:
        if subprocess.run([docker, "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        stop_proc(proc)
        return None, None
    rootfs = os.path.join(d, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy(bb, os.path.join(rootfs, "bin", "busybox"))
    for n in ("sh", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", n))
    tar = os.path.join(d, "rootfs.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
    subprocess.run([docker, "import", tar, IMAGE], env=env, check=True, capture_output=True)
    return "unix://" + sock, proc


def stop_proc(proc, sig=signal.SIGTERM):
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def fmt(ts):
    return "median %.0f ms, worst %.0f ms (%d runs)" % (statistics.median(ts) * 1000, max(ts) * 1000, len(ts))


def main():
    work = tempfile.mkdtemp(prefix="caravan-bench-tasks-")
    datadir = os.path.join(work, "data")
    agent = dockerd = None
    try:
        endpoint, dockerd = start_dockerd(work)
        cfg = os.path.join(work, "agent.hcl")
        with open(cfg, "w") as f:
            f.write('data_dir = "%s"\nlog_level = "WARN"\n' % datadir)
            f.write('server {\n  enabled = true\n  bootstrap_expect = 1\n}\n')
            f.write('client {\n  enabled = true\n}\n')
            f.write('plugin "raw_exec" {\n  config {\n    enabled = true\n  }\n}\n')
            if endpoint:
                f.write('plugin "docker" {\n  config {\n    endpoint = "%s"\n  }\n}\n' % endpoint)
        agent = subprocess.Popen([CARAVAN, "agent", "-bind", IP, "-config", cfg],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        node = None
        deadline = time.time() + 30
        while time.time() < deadline and not node:
            try:
                nodes = api("/v1/nodes", timeout=1)
                ready = [n for n in nodes if n["Status"] == "ready"]
                node = api("/v1/node/%s" % ready[0]["ID"]) if ready else None
            except Exception:
                time.sleep(0.05)
        if not node:
            raise RuntimeError("agent not ready")
        drivers = node.get("Drivers") or {}
        detected = {d for d, i in drivers.items() if i.get("Detected")}

        print("Task start latency per driver (target: well under Nomad's ~1 s); job run -> task")
        print("started (Started event), and -> allocation running on the servers (+ the client's")
        print("200 ms batching of allocation updates, as Nomad's):")
        sleep_cmd = {"command": "/bin/sleep", "args": ["600"]}
        for drv, conf in (("raw_exec", sleep_cmd), ("exec", sleep_cmd),
                          ("docker", {"image": IMAGE, "command": "/bin/sleep", "args": ["600"]})):
            if drv not in detected:
                why = (drivers.get(drv) or {}).get("HealthDescription", "")
                print("  %-8s skipped (driver not detected%s)" % (drv + ":", ": " + why if why else ""))
                continue
            try:
                started, seen = start_latency(drv, conf, ROUNDS)
                print("  %-8s started %s" % (drv + ":", fmt(started) if started else "no Started event"))
                print("  %-8s running %s" % ("", fmt(seen)))
            except RuntimeError as e:
                print("  %-8s failed: %s" % (drv + ":", e))

        drv = "exec" if "exec" in detected else "raw_exec"
        time.sleep(1.0)
        before = status_kb(agent.pid, "VmRSS")
        api("/v1/jobs", job("mem", drv, sleep_cmd, count=NTASKS))
        t0 = time.monotonic()
        while not running("mem", NTASKS):
            if time.monotonic() - t0 > 120:
                raise RuntimeError("%d %s tasks did not all start" % (NTASKS, drv))
            time.sleep(0.05)
        started = time.monotonic() - t0
        time.sleep(2.0)  # let the status updates settle
        after = status_kb(agent.pid, "VmRSS")
        shims = shim_pids(datadir)
        pss = sum(pss_kb(p) for p in shims)
        rss = sum(status_kb(p, "VmRSS") for p in shims)
        n = max(1, len(shims))
        print("Memory with %d running %s tasks (all running %.1f s after job run):" % (NTASKS, drv, started))
        print("  agent RSS: %d KiB before, %d KiB with the tasks: +%.0f KiB per task (target: well under 1 MB)"
              % (before, after, (after - before) / NTASKS))
        print("  task shims: %d processes, PSS sum %d KiB = %.0f KiB per task; RSS sum %d KiB = %.0f KiB per task"
              % (len(shims), pss, pss / n, rss, rss / n))
        print("  Nomad: a logmon and an executor per task, ~15-20 MB RSS each (issues #11547, #9858)")
        api("/v1/job/mem?purge=true", method="DELETE")
        t0 = time.monotonic()
        while shim_pids(datadir) and time.monotonic() - t0 < 30:
            time.sleep(0.1)
    finally:
        stop_proc(agent, signal.SIGINT)
        # Tasks outlive a stopped (non-dev) agent by design: stop what is left.
        for p in shim_pids(datadir):
            try:
                os.killpg(p, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        stop_proc(dockerd)
        subprocess.run(["umount", "-R", os.path.join(work, "docker", "root")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
