#!/usr/bin/env python3
"""Cluster benchmarks (issue 4), each figure printed with its target:

1. Leader failover: time from kill -9 of the leader of a 3-server cluster to the first
   acknowledged job registration sent to a survivor (attempts every 20 ms, each with its
   own connection; the earliest acknowledgement counts). Repeated FAILOVER_ROUNDS times,
   restarting the killed server from its data dir in between; median printed.
   Target <= 2 s at default timings (election 1000 ms, heartbeat 100 ms).
2. Write throughput: WRITES job registrations through the leader's HTTP API with
   WRITE_CONC in flight (bench/cv_load writes), then bench/bench_raft_bare applying the
   same number of entries of the size a registration's raft entry has (measured with
   cv_load entrysize on a registered job and its eval) through libraft alone, three
   processes, same concurrency, data dirs on the same filesystem; once with libraft's
   TCP transport as shipped and once with TCP_NODELAY on its sockets (as Caravan's raft
   transport sets it), cluster and bare alternating WRITE_ROUNDS times. Target >= 70% of
   the faster bare variant (medians). CPU per registration of each server (from /proc)
   and of the load tool, and per entry of the bare program, are printed beside.
3. Scheduling throughput: 1,000 fake client nodes registered over RPC (cv_load nodes),
   then one batch job of 10,000 allocations; time from the PUT to 10,000 allocations in
   the leader's state (gauge caravan.state.allocations in /v1/metrics). Target 10,000/s;
   Nomad's C1M figure is about 3,750/s with 5 servers. caravan.worker.plans_submitted of
   every server is printed to show where plans came from.

Every process started here is stopped by PID (SIGTERM, then SIGKILL); data dirs live in
one temporary directory (BENCH_DIR, default under /tmp) that is removed at the end.
Environment: CARAVAN_BIN, CV_LOAD, BENCH_RAFT_BARE (paths), WRITES, WRITE_CONC, WRITE_ROUNDS,
FAILOVER_ROUNDS, NODES, ALLOCS, BENCH_NET (first three octets, default 127.0.200)."""
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
CARAVAN = os.environ.get("CARAVAN_BIN") or os.path.join(ROOT, "caravan")
CV_LOAD = os.environ.get("CV_LOAD") or os.path.join(os.path.dirname(CARAVAN), "bench", "cv_load")
BARE = os.environ.get("BENCH_RAFT_BARE") or os.path.join(os.path.dirname(CARAVAN), "bench",
                                                         "bench_raft_bare")
WRITES = int(os.environ.get("WRITES", "5000"))
WRITE_CONC = int(os.environ.get("WRITE_CONC", "32"))
WRITE_ROUNDS = int(os.environ.get("WRITE_ROUNDS", "3"))
ROUNDS = int(os.environ.get("FAILOVER_ROUNDS", "3"))
NODES = int(os.environ.get("NODES", "1000"))
ALLOCS = int(os.environ.get("ALLOCS", "10000"))
NET = os.environ.get("BENCH_NET", "127.0.200")
NET2 = ".".join(NET.split(".")[:2] + [str(int(NET.split(".")[2]) + 1)])

started = []  # every Popen this script started, for the final cleanup


def log(msg):
    print("  " + msg, flush=True)


def http(addr, path, method="GET", body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://%s:4646%s" % (addr, path), data=data, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def raft_index(addr):
    """The highest table index a server reports: the raft index of the last state write."""
    idx = 0
    for path in ("/v1/jobs", "/v1/evaluations", "/v1/allocations", "/v1/nodes"):
        req = urllib.request.Request("http://%s:4646%s" % (addr, path))
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            idx = max(idx, int(r.headers.get("X-Nomad-Index") or 0))
    return idx


def stop(p, timeout=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Cluster:
    """Three servers on NETPREFIX.1-3, data dirs under work/NAME-sI."""

    def __init__(self, work, name, net):
        self.work, self.name, self.net = work, name, net
        self.ips = ["%s.%d" % (net, i) for i in (1, 2, 3)]
        self.procs = {}
        self.logs = {}
        for ip in self.ips:
            self.start(ip)

    def start(self, ip):
        i = self.ips.index(ip) + 1
        d = os.path.join(self.work, "%s-s%d" % (self.name, i))
        os.makedirs(d, exist_ok=True)
        logf = open(os.path.join(self.work, "%s-s%d.log" % (self.name, i)), "a")
        args = [CARAVAN, "agent", "-server", "-bootstrap-expect", "3", "-bind", ip, "-data-dir", d,
                "-node", "s%d" % i, "-join", self.ips[0], "-log-level", "WARN"]
        if ip == self.ips[0]:
            args += ["-join", self.ips[1]]
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        started.append(p)
        self.procs[ip] = p

    def alive(self):
        return [ip for ip in self.ips if self.procs[ip].poll() is None]

    def leader(self, among=None, timeout=30):
        """The IP of the server that every live server agrees leads, once it has 3 voters."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ips = among or self.alive()
                views = {http(ip, "/v1/status/leader", timeout=1) for ip in ips}
                if len(views) == 1:
                    l = views.pop()
                    lip = l.split(":")[0] if l else None
                    if lip in ips:
                        return lip
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise RuntimeError("no leader among %s in %ds" % (among or self.alive(), timeout))

    def wait_voters(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                l = self.leader(timeout=5)
                conf = http(l, "/v1/operator/raft/configuration", timeout=2)
                if sum(1 for s in conf["Servers"] if s["Voter"]) == n:
                    return l
            except (OSError, ValueError, RuntimeError):
                pass
            time.sleep(0.05)
        raise RuntimeError("cluster %s never had %d voters" % (self.name, n))

    def metrics(self, ip):
        return http(ip, "/v1/metrics", timeout=5)

    def close(self):
        for p in self.procs.values():
            stop(p)


def counter(m, name):
    return sum(c["Count"] for c in m.get("Counters") or [] if c["Name"] == name)


def gauge(m, name):
    for g in m.get("Gauges") or []:
        if g["Name"] == name:
            return g["Value"]
    return 0


def batch_job(jid, count, cpu=10, mem=10):
    return {"Job": {"ID": jid, "Type": "batch", "TaskGroups": [{"Name": "g", "Count": count, "Tasks": [
        {"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"},
         "Resources": {"CPU": cpu, "MemoryMB": mem}}]}]}}


def run_tool(args, timeout=300, env=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (args[0], p.returncode, p.stdout, p.stderr))
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=") for kv in line.split()[2:])
    raise RuntimeError("%s printed no RESULT:\n%s" % (args[0], p.stdout))


# ---------------------------------------------------------------- 1 + 2: writes, failover


def bench_writes(c, prefix="w"):
    l = c.wait_voters(3)
    log("cluster %s: leader %s, 3 voters" % (c.name, l))
    i0 = raft_index(l)
    cpu0 = {ip: cpu_seconds(c.procs[ip].pid) for ip in c.ips}
    load0 = children_cpu()
    with Perf(c, "writes"):
        r = run_tool([CV_LOAD, "writes", "%s:4646" % l, str(WRITES), str(WRITE_CONC), prefix])
    load_cpu = children_cpu() - load0
    time.sleep(0.5)
    cpu = {ip: (cpu_seconds(c.procs[ip].pid) - cpu0[ip]) * 1e6 / WRITES for ip in c.ips}
    entries = raft_index(l) - i0
    log("HTTP: %s registrations, %s in flight: %.0f/s (p50 %s ms, p99 %s ms); %d raft entries "
        "written (%.1f per registration: the registration, then the eval's updates)"
        % (r["n"], WRITE_CONC, float(r["rate"]), r["p50"], r["p99"], entries, entries / WRITES))
    log("CPU per registration: leader %.0f us, followers %s us, load tool %.0f us (the bare "
        "program's line: all three processes per entry)"
        % (cpu[l], " / ".join("%.0f" % cpu[ip] for ip in c.ips if ip != l),
           load_cpu * 1e6 / WRITES))
    job = http(l, "/v1/job/%s-0" % prefix)
    evals = http(l, "/v1/job/%s-0/evaluations" % prefix)
    reg = [e for e in evals if e.get("TriggeredBy") == "job-register"] or evals
    jf, ef = os.path.join(c.work, "job.json"), os.path.join(c.work, "eval.json")
    with open(jf, "w") as f:
        json.dump(job, f)
    with open(ef, "w") as f:
        json.dump(reg[0], f)
    size = int(run_tool([CV_LOAD, "entrysize", jf, ef])["padded"])
    log("a registration's raft entry (job + eval, msgpack, padded): %d bytes" % size)
    return float(r["rate"]), size, r


def failover_round(c):
    l = c.wait_voters(3)
    survivors = [ip for ip in c.ips if ip != l]
    done = threading.Event()
    acks = []
    lock = threading.Lock()
    seq = [0]

    def attempt(ip, n):
        try:
            http(ip, "/v1/jobs", "PUT", batch_job("fo-%d-%d" % (os.getpid(), n), 1), timeout=10)
            with lock:
                acks.append(time.monotonic())
            done.set()
        except (OSError, ValueError):
            pass

    t0 = time.monotonic()
    os.kill(c.procs[l].pid, signal.SIGKILL)
    c.procs[l].wait()
    threads = []
    while not done.is_set() and time.monotonic() - t0 < 30:
        seq[0] += 1
        th = threading.Thread(target=attempt, args=(survivors[seq[0] % 2], seq[0]), daemon=True)
        th.start()
        threads.append(th)
        done.wait(0.02)
    for th in threads:
        th.join(timeout=11)
    if not acks:
        raise RuntimeError("no write accepted within 30 s of killing the leader")
    took = min(acks) - t0
    newl = c.leader(among=survivors)
    c.start(l)  # the killed server restarts from its data dir
    c.wait_voters(3)
    time.sleep(1.0)
    return took, l, newl


# ---------------------------------------------------------------- 3: placements


def bench_placements(work):
    c = Cluster(work, "sched", NET2)
    try:
        l = c.wait_voters(3)
        log("cluster sched: leader %s, 3 voters" % l)
        servers = ",".join("%s:4647" % ip for ip in c.ips)
        nodes = subprocess.Popen([CV_LOAD, "nodes", servers, str(NODES), "600"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(nodes)
        try:
            line = nodes.stdout.readline()
            if not line.startswith("READY"):
                raise RuntimeError("cv_load nodes: %s %s" % (line, nodes.stderr.read()))
            log("%d fake nodes registered over RPC in %s s" % (NODES, line.split("secs=")[1].strip()))
            deadline = time.monotonic() + 30
            while gauge(c.metrics(l), "caravan.state.nodes") < NODES:
                if time.monotonic() > deadline:
                    raise RuntimeError("nodes not in state")
                time.sleep(0.05)
            before = {ip: counter(c.metrics(ip), "caravan.worker.plans_submitted") for ip in c.ips}
            per_node = -(-ALLOCS // NODES)
            with Perf(c, "placements"):
                t0 = time.monotonic()
                http(l, "/v1/jobs", "PUT", batch_job("c1m", ALLOCS, cpu=max(1, 3000 // per_node),
                                                         mem=max(1, 6000 // per_node)), timeout=30)
                t_ack = time.monotonic() - t0
                n = 0
                while n < ALLOCS and time.monotonic() - t0 < 120:
                    n = int(gauge(c.metrics(l), "caravan.state.allocations"))
                    if n < ALLOCS:
                        time.sleep(0.01)
                took = time.monotonic() - t0
            if n < ALLOCS:
                raise RuntimeError("only %d of %d allocations placed in 120 s" % (n, ALLOCS))
            # Slices of the eval are planned by workers on every server: check that
            # together they placed the job's count, no more, once every slice reported.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                evals = http(l, "/v1/job/c1m/evaluations", timeout=10) or []
                if evals and all(e["Status"] != "pending" for e in evals):
                    break
                time.sleep(0.05)
            final = int(gauge(c.metrics(l), "caravan.state.allocations"))
            if final != ALLOCS:
                raise RuntimeError("%d allocations in state for a count of %d" % (final, ALLOCS))
            log("eval(s) of the job: %s; %d allocations in state"
                % (", ".join("%s %s" % (e["TriggeredBy"], e["Status"]) for e in evals), final))
            ms = {ip: c.metrics(ip) for ip in c.ips}
            plans = {ip: counter(ms[ip], "caravan.worker.plans_submitted") - before[ip] for ip in c.ips}
            rejected = counter(ms[l], "caravan.plan.node_rejected")
            return ALLOCS / took, took, t_ack, plans, rejected, l
        finally:
            stop(nodes)
            nodes.stdout.close()
            nodes.stderr.close()
    finally:
        c.close()


class Perf:
    """With BENCH_PERF=DIR, records a perf profile of the servers over a phase into DIR."""

    def __init__(self, c, phase):
        self.p = None
        out = os.environ.get("BENCH_PERF")
        if out:
            os.makedirs(out, exist_ok=True)
            pids = ",".join(str(c.procs[ip].pid) for ip in c.alive())
            self.p = subprocess.Popen(["perf", "record", "-q", "-F", "2000", "-g", "-o",
                                       os.path.join(out, phase + ".data"), "-p", pids],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started.append(self.p)
            time.sleep(0.5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p:
            self.p.send_signal(signal.SIGINT)
            self.p.wait(timeout=30)


def verdict(ok):
    return "meets" if ok else "MISSES"


def main():
    for path in (CARAVAN, CV_LOAD, BARE):
        if not os.access(path, os.X_OK):
            print("missing %s (build it first)" % path)
            return 1
    work = tempfile.mkdtemp(prefix="caravan-bench-cluster-", dir=os.environ.get("BENCH_DIR"))
    fs = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True, text=True).stdout.strip()
    print("caravan cluster benchmarks: 3 servers on %s.1-3, data dirs in %s (%s)" % (NET, work, fs))
    results = []
    try:
        c = Cluster(work, "w", NET)
        try:
            # Cluster and bare library alternate, WRITE_ROUNDS times, so that a busy
            # machine weighs on both alike; medians are compared.
            print("[write throughput]", flush=True)
            rates, bare_rates = [], {"stock": [], "nodelay": []}
            for k in range(WRITE_ROUNDS):
                rate, size, _ = bench_writes(c, "w%d" % k)
                rates.append(rate)
                for variant in ("stock", "nodelay"):
                    bare_dir = os.path.join(work, "bare")
                    os.makedirs(bare_dir)
                    env = dict(os.environ, BARE_NODELAY="1" if variant == "nodelay" else "0")
                    bare_cpu0 = children_cpu()
                    bare = run_tool([BARE, NET2, "7471", bare_dir, str(WRITES), str(size),
                                     str(WRITE_CONC)], env=env)
                    bare_cpu = (children_cpu() - bare_cpu0) * 1e6 / WRITES
                    bare_rates[variant].append(float(bare["rate"]))
                    log("bare libraft (%s transport): %s entries of %d bytes, %d in flight: "
                        "%.0f/s (p50 %s ms, p99 %s ms); CPU %.0f us per entry, start-up included"
                        % ("raft_uv_tcp as shipped" if variant == "stock" else
                           "raft_uv_tcp + TCP_NODELAY", bare["n"], size, WRITE_CONC,
                           float(bare["rate"]), bare["p50"], bare["p99"], bare_cpu))
                    shutil.rmtree(bare_dir, ignore_errors=True)
            rate = statistics.median(rates)
            brate_stock = statistics.median(bare_rates["stock"])
            brate = max(brate_stock, statistics.median(bare_rates["nodelay"]))
            print("[leader failover]", flush=True)
            times = []
            for i in range(ROUNDS):
                took, old, new = failover_round(c)
                times.append(took)
                log("round %d: killed %s, %s accepted a write after %.2f s" % (i + 1, old, new, took))
        finally:
            c.close()
        print("[scheduling throughput]", flush=True)
        prate, ptook, pack, plans, rejected, pl = bench_placements(work)
        log("job of %d allocations over %d nodes: registered in %.3f s, all placed after %.2f s"
            % (ALLOCS, NODES, pack, ptook))
        log("plans submitted: %s (leader %s); plan node rejections on the leader: %d"
            % (", ".join("%s %d" % (ip, n) for ip, n in sorted(plans.items())), pl, rejected))

        med = statistics.median(times)
        ratio = rate / brate
        print()
        print("%-38s median %.2f s, worst %.2f s over %d rounds  (target <= 2 s: %s; Nomad: ~1-3 s)"
              % ("leader failover (kill -9 -> write)", med, max(times), len(times), verdict(med <= 2.0)))
        print("%-38s %.0f/s vs bare libraft %.0f/s = %.0f%%  (target >= 70%%: %s; medians of %d "
              "rounds; bare = the faster of libraft's stock transport, %.0f/s = %.0f%%, and the "
              "same with TCP_NODELAY)"
              % ("write throughput (job registrations)", rate, brate, ratio * 100,
                 verdict(ratio >= 0.70), WRITE_ROUNDS, brate_stock, rate / brate_stock * 100))
        all_servers = all(n > 0 for n in plans.values())
        print("%-38s %.0f/s  (target 10,000/s: %s; Nomad C1M: ~3,750/s with 5 servers); "
              "plans from all servers: %s"
              % ("placements", prate, verdict(prate >= 10000), "yes" if all_servers else "NO"))
        results = [med <= 2.0, ratio >= 0.70, prate >= 10000]
    finally:
        for p in started:
            if p.poll() is None:
                stop(p)
        if os.environ.get("KEEP_BENCH_DIR"):
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
