"""cluster.py - a Caravan cluster in network namespaces, and the chaos scenarios run on it.

`Cluster` starts 3 servers (h1..h3: `caravan agent -server -bootstrap-expect 3 -join` the
other two) and 2 clients (h4, h5: `-client -join` the servers, i.e. the node pool) on a
`netns.Net`, each agent in its own namespace on its own address with the default ports.
Every API call is made from inside the agent's namespace to its own address, so an agent
stays observable while it is partitioned.

The scenarios (docs/chaos.md says what each proves) take their timings as arguments:
tests/integration/test_chaos runs each once with fixed, CI-sized timings; scripts/chaos
repeats them with timings drawn from a seeded RNG. Each check goes through a `Checker`
that prints `ok`/`FAIL` lines and counts failures without exiting.
"""
import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CARAVAN = os.environ.get("CARAVAN_BIN") or os.path.join(ROOT, "caravan")


class Checker:
    def __init__(self, name):
        self.name = name
        self.checks = 0
        self.failures = []

    def check(self, cond, what, detail=""):
        self.checks += 1
        if cond:
            print("ok   %s" % what)
        else:
            self.failures.append(what)
            print("FAIL %s" % what)
            if detail:
                print("     " + str(detail).replace("\n", "\n     "))
        sys.stdout.flush()
        return bool(cond)

    def note(self, msg):
        print("     %s" % msg)
        sys.stdout.flush()


def wait(cond, timeout, interval=0.25):
    """Polls cond() until it returns something true (returned) or timeout (None)."""
    deadline = time.time() + timeout
    while True:
        try:
            v = cond()
            if v:
                return v
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        if time.time() >= deadline:
            return None
        time.sleep(interval)


class Agent:
    def __init__(self, cl, host, name, args):
        self.cl = cl
        self.host = host
        self.name = name
        self.ip = host.ip
        self.dir = os.path.join(cl.work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(cl.work, name + ".log")
        self.proc = cl.net.run(host, [CARAVAN, "agent", "-bind", host.ip, "-node", name,
                                      "-data-dir", self.dir, "-log-level", "INFO"] + list(args),
                               log=self.log)

    def __repr__(self):
        return self.name

    def api(self, method, path, body=None, timeout=5):
        """(status, body) from this agent's HTTP API, over its own namespace's lo."""
        return self.cl.net.http(self.host, method, path, body=body, timeout=timeout)

    def get(self, path, timeout=5):
        code, body = self.api("GET", path, timeout=timeout)
        if code != 200:
            raise ValueError("GET %s on %s: %s %s" % (path, self.name, code, body))
        return body

    def output(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def raft_state(self):
        try:
            return self.get("/v1/agent/self", timeout=2)["stats"]["raft"]["state"].lower()
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def leader_addr(self):
        try:
            return self.get("/v1/status/leader", timeout=2) or ""
        except (OSError, ValueError):
            return None

    def jobs(self):
        return {j["ID"] for j in self.get("/v1/jobs?stale=true", timeout=5)}

    def leaderships(self):
        return self.output().count("cluster leadership acquired")


def batch_job(name):
    return {"Job": {"ID": name, "Type": "batch", "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [
        {"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"},
         "Resources": {"CPU": 10, "MemoryMB": 10}}]}]}}


class Cluster:
    """3 servers + 2 clients, one per namespace. Use as a context manager."""

    def __init__(self, n_servers=3, n_clients=2):
        self.n_servers, self.n_clients = n_servers, n_clients
        self.work = tempfile.mkdtemp(prefix="caravan-chaos-")
        self.net = netns.Net(n_servers + n_clients)
        self.servers, self.clients = [], []
        self.seq = 0
        self.seq_lock = threading.Lock()

    def __enter__(self):
        self.net.install_signal_handlers()
        self.net.up()
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        hs = self.net.hosts
        sips = [h.ip for h in hs[:self.n_servers]]
        for i in range(self.n_servers):
            args = ["-server", "-bootstrap-expect", str(self.n_servers)]
            for ip in sips:
                if ip != hs[i].ip:
                    args += ["-join", ip]
            self.servers.append(Agent(self, hs[i], "s%d" % (i + 1), args))
        # Clients join the node pool through the servers; they start once the servers
        # have a leader (not needed for the join itself: a -join that finds nobody is
        # retried every second, 61 times at most).
        if not self.wait_leader(60):
            raise RuntimeError("the servers elected no leader in 60s")
        cfg = os.path.join(self.work, "client.hcl")
        with open(cfg, "w") as f:
            f.write('plugin "raw_exec" {\n  config {\n    enabled = true\n  }\n}\n')
        for i in range(self.n_clients):
            args = ["-client", "-config", cfg]
            for ip in sips:
                args += ["-join", ip]
            self.clients.append(Agent(self, hs[self.n_servers + i], "c%d" % (i + 1), args))

    def close(self):
        left = self.net.close()
        if left:
            print("WARNING: namespaces not removed: %s" % left)
        if os.environ.get("CHAOS_KEEP"):
            print("     logs kept in %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return left

    def dump(self, agents=None, tail=3000):
        for a in agents or (self.servers + self.clients):
            print("--- %s (%s) log tail:\n%s" % (a.name, a.ip, a.output()[-tail:]))

    # ------------------------------------------------------------ cluster views

    def leader(self, among=None):
        """The server that the servers in `among` (default: all not partitioned) agree
        leads, or None."""
        if among is None:
            among = [s for s in self.servers if not s.host.partitioned]
        lead = None
        for s in among:
            if s.raft_state() == "leader":
                lead = s
                break
        if lead is None:
            return None
        want = "%s:4647" % lead.ip
        for s in among:
            if s is not lead and s.leader_addr() != want:
                return None
        return lead

    def wait_leader(self, timeout, among=None):
        return wait(lambda: self.leader(among), timeout)

    def wait_ready(self, timeout=60):
        """All servers agree on a leader with 3 voters and every client node is ready."""
        def ok():
            lead = self.leader()
            if not lead:
                return False
            conf = lead.get("/v1/operator/raft/configuration")
            if sum(1 for v in conf["Servers"] if v.get("Voter")) != self.n_servers:
                return False
            nodes = lead.get("/v1/nodes")
            return sum(1 for n in nodes if n["Status"] == "ready") == self.n_clients and lead
        return wait(ok, timeout)

    def node_ids(self):
        lead = self.wait_leader(10)
        names = {n["Name"]: n["ID"] for n in lead.get("/v1/nodes")}
        for c in self.clients:
            c.node_id = names.get(c.name)

    def next_name(self, prefix):
        with self.seq_lock:
            self.seq += 1
            return "%s-%d" % (prefix, self.seq)

    def register(self, server, name, timeout=10, why=None):
        """Registers a batch job through server; True when acknowledged (200 + EvalID).
        When why (a dict) is given, counts the reasons of failures in it."""
        try:
            code, body = server.api("PUT", "/v1/jobs", body=batch_job(name), timeout=timeout)
            if code == 200 and isinstance(body, dict) and body.get("EvalID"):
                return True
            reason = "%s %s" % (code, re.sub(r"[0-9a-f-]{36}|\b\d+(\.\d+)*(:\d+)?\b", "#", str(body))[:120])
        except OSError as e:
            reason = "%s: %s" % (type(e).__name__, e)
        if why is not None:
            why[reason] = why.get(reason, 0) + 1
        return False

    def converged(self, acked, timeout):
        """Waits until every server is reachable and holds the same job set, a superset of
        acked. Returns (ok, {server: missing acked jobs})."""
        last = {}

        def ok():
            sets = {}
            for s in self.servers:
                sets[s.name] = s.jobs()
            last.clear()
            last.update({k: sorted(set(acked) - v) for k, v in sets.items()})
            vals = list(sets.values())
            return all(v == vals[0] for v in vals) and set(acked) <= vals[0]
        return bool(wait(ok, timeout, interval=0.5)), last

    def leaderships(self):
        return sum(s.leaderships() for s in self.servers)

    def check_alive(self, c):
        """Every agent still runs (an exit here is a crash: nothing stops them on purpose)."""
        dead = [(a.name, a.proc.poll()) for a in self.servers + self.clients if a.proc.poll() is not None]
        ok = c.check(not dead, "every agent is still running", "exited (name, status): %s" % dead)
        if not ok:
            for a in self.servers + self.clients:
                if a.proc.poll() is not None:
                    print("--- %s log tail:\n%s" % (a.name, a.output()[-6000:]))
        return ok


class Writer:
    """Registers batch jobs round-robin through the given servers until stopped; keeps
    the names of acknowledged ones."""

    def __init__(self, cl, servers, prefix, pause=0.1, timeout=10):
        self.cl, self.servers, self.prefix = cl, servers, prefix
        self.pause, self.timeout = pause, timeout
        self.acked, self.failed, self.why = [], 0, {}
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.th.start()
        return self

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            s = self.servers[i % len(self.servers)]
            i += 1
            name = self.cl.next_name(self.prefix)
            if self.cl.register(s, name, timeout=self.timeout, why=self.why):
                self.acked.append(name)
            else:
                self.failed += 1
            self.stop_ev.wait(self.pause)

    def stop(self):
        self.stop_ev.set()
        self.th.join()
        return self.acked


# ================================================================ scenarios

def scenario_leader_partition(cl, c, isolate_s=6.0, elect_timeout=15.0, catchup_timeout=30.0):
    """The leader is cut off: the majority elects a new leader and keeps taking writes;
    the isolated old leader cannot commit and steps down; healed, it follows the new
    leader without deposing it and catches up; every acknowledged job is on all three."""
    print("== scenario: leader partition (isolated %.1fs)" % isolate_s)
    m = {}
    old = cl.wait_leader(15)
    if not c.check(old is not None, "a leader before the partition"):
        return m
    before = cl.leaderships()
    pre = [n for n in (cl.next_name("pre") for _ in range(3)) if cl.register(old, n)]
    majority = [s for s in cl.servers if s is not old]
    # A write to the old leader right as it is cut off: it may still believe it leads,
    # but it cannot reach a quorum, so it must not acknowledge.
    stale = {"name": cl.next_name("isolated"), "acked": None}

    def stale_write():
        stale["acked"] = cl.register(old, stale["name"], timeout=isolate_s + 4)
    t0 = time.time()
    cl.net.partition(old.host)
    th = threading.Thread(target=stale_write, daemon=True)
    th.start()
    new = cl.wait_leader(elect_timeout, among=majority)
    took = m["elect_s"] = time.time() - t0
    c.check(new is not None and new is not old,
            "the majority elected a new leader (%s) %.1fs after the cut" % (new, took))
    acked = list(pre)
    for s in majority:
        for _ in range(3):
            n = cl.next_name("major")
            if cl.register(s, n):
                acked.append(n)
    c.check(len(acked) == len(pre) + 6, "the majority acknowledged %d/6 writes through both "
            "servers" % (len(acked) - len(pre)))
    stepped = wait(lambda: old.raft_state() not in ("leader", None), elect_timeout)
    c.check(stepped, "the isolated old leader stepped down (%s)" % old.raft_state())
    late = {"name": cl.next_name("isolated")}
    late["acked"] = cl.register(old, late["name"], timeout=5)
    rest = isolate_s - (time.time() - t0)
    if rest > 0:
        time.sleep(rest)
    th.join()
    c.check(not stale["acked"] and not late["acked"],
            "writes sent to the isolated old leader were not acknowledged (at the cut: %s, "
            "after the election: %s)" % (stale["acked"], late["acked"]))
    cl.net.heal(old.host)
    t1 = time.time()
    caught = wait(lambda: old.raft_state() == "follower" and new and
                  old.leader_addr() == "%s:4647" % new.ip and set(acked) <= old.jobs(),
                  catchup_timeout, interval=0.5)
    m["catchup_s"] = time.time() - t1
    c.check(caught, "healed, the old leader follows %s and caught up (%.1fs)" % (new, m["catchup_s"]),
            "state %s, leader %s" % (old.raft_state(), old.leader_addr()))
    ok, missing = cl.converged(acked, catchup_timeout)
    c.check(ok, "every acknowledged job (%d) is on all three servers" % len(acked), missing)
    jobs = old.jobs()
    c.check(stale["name"] not in jobs and late["name"] not in jobs,
            "the unacknowledged writes to the isolated leader never committed")
    lead = cl.leader()
    changes = cl.leaderships() - before
    c.check(lead is new and changes == 1, "rejoining did not depose the new leader (leader %s, "
            "%d leadership change(s) in the scenario)" % (lead, changes))
    m["changes"] = changes
    return m


def scenario_packet_loss(cl, c, loss=0.25, duration_s=15.0, max_changes=3, converge_timeout=40.0):
    """Every host drops a random fraction of what it receives while jobs are registered:
    no acknowledged write is lost, the cluster converges once the loss ends, leadership
    changes at most a few times, and no client is marked down."""
    print("== scenario: %.0f%% packet loss on every host for %.1fs" % (loss * 100, duration_s))
    m = {}
    lead = cl.wait_leader(20)
    if not c.check(lead is not None, "a leader before the loss"):
        return m
    before = cl.leaderships()
    for h in cl.net.hosts:
        cl.net.loss(h, loss)
    w = Writer(cl, cl.servers, "lossy", pause=0.1).start()
    try:
        time.sleep(duration_s)
    finally:
        acked = w.stop()
        for h in cl.net.hosts:
            cl.net.clear(h)
    m["acked"], m["failed"] = len(acked), w.failed
    for reason, n in sorted(w.why.items(), key=lambda x: -x[1]):
        c.note("%3d writes failed: %s" % (n, reason))
    c.check(len(acked) > 0, "writes were acknowledged under loss (%d acked, %d failed)"
            % (len(acked), w.failed))
    ok, missing = cl.converged(acked, converge_timeout)
    c.check(ok, "after the loss, every acknowledged job (%d) is on all three servers" % len(acked),
            missing)
    lead = cl.wait_leader(20)
    changes = m["changes"] = cl.leaderships() - before
    c.check(lead is not None and changes <= max_changes,
            "no leader churn storm: %d leadership change(s) (at most %d allowed)" % (changes, max_changes))
    if lead:
        down = [n["Name"] for n in lead.get("/v1/nodes") if n["Status"] != "ready"]
        c.check(not down, "no client was marked down by the loss", down)
    return m


SVC_MARK = "31415"  # the sleep argument that marks this scenario's task processes


def svc_job():
    return {"Job": {"ID": "chaos-svc", "Type": "service", "TaskGroups": [{"Name": "g", "Count": 2, "Tasks": [
        {"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/sleep", "args": [SVC_MARK]},
         "Resources": {"CPU": 10, "MemoryMB": 10}}]}]}}


def task_pids(cl, client):
    """PIDs of the scenario's sleep tasks running in client's namespace."""
    found = []
    for pid in cl.net.pids_in(client.host.ns):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] == SVC_MARK.encode():
                found.append(pid)
        except OSError:
            pass
    return found


def scenario_client_partition(cl, c, blip_s=4.0, watch_s=14.0, down_timeout=45.0, heal_timeout=40.0):
    """A client cut off briefly keeps its node and its allocations; cut off for longer than
    its heartbeat deadline, it is marked down and its allocations are lost and replaced on
    the other client; healed, it becomes ready again and stops its old allocations, so
    the job runs exactly its count."""
    print("== scenario: client partition (blip %.1fs)" % blip_s)
    m = {}
    lead = cl.wait_leader(20)
    if not c.check(lead is not None, "a leader before the client partition"):
        return m
    cl.node_ids()
    code, body = lead.api("PUT", "/v1/jobs", body=svc_job())
    c.check(code == 200, "service job registered", body)

    def allocs():
        return cl.wait_leader(10).get("/v1/job/chaos-svc/allocations")

    def running():
        return [a for a in allocs() if a["ClientStatus"] == "running"]
    r = wait(lambda: len(running()) == 2 and running(), 30)
    if not c.check(r, "the service runs two allocations"):
        return m
    by_node = {}
    for a in r:
        by_node.setdefault(a["NodeID"], []).append(a["ID"])
    victim = max(cl.clients, key=lambda x: len(by_node.get(x.node_id, [])))
    other = [x for x in cl.clients if x is not victim][0]
    mine = sorted(by_node[victim.node_id])
    c.note("victim %s (%s) runs %d allocation(s)" % (victim.name, victim.ip, len(mine)))

    # 1. A blip shorter than gossip detection plus the confirmation window.
    n_allocs = len(allocs())
    t0 = time.time()
    cl.net.partition(victim.host)
    time.sleep(blip_s)
    cl.net.heal(victim.host)
    status_seen = set()
    while time.time() - t0 < watch_s:
        try:
            l = cl.wait_leader(5)
            status_seen |= {n["Status"] for n in l.get("/v1/nodes") if n["ID"] == victim.node_id}
        except (OSError, ValueError, AttributeError):
            pass
        time.sleep(0.5)
    c.check(status_seen == {"ready"}, "after a %.1fs blip the node stayed ready (seen: %s, "
            "watched %.0fs)" % (blip_s, sorted(status_seen), watch_s))
    now = allocs()
    still = sorted(a["ID"] for a in now if a["NodeID"] == victim.node_id and a["ClientStatus"] == "running")
    c.check(still == mine and len(now) == n_allocs,
            "no work moved after the blip (%d allocation(s), %d on the victim running)"
            % (len(now), len(still)), now)

    # 2. A partition longer than the heartbeat deadline.
    pids = task_pids(cl, victim)
    c.check(len(pids) == len(mine), "the victim runs %d task process(es)" % len(pids))
    t0 = time.time()
    cl.net.partition(victim.host)

    def down_and_replaced():
        l = cl.wait_leader(5)
        st = [n["Status"] for n in l.get("/v1/nodes") if n["ID"] == victim.node_id]
        if st != ["down"]:
            return False
        al = l.get("/v1/job/chaos-svc/allocations")
        lost = sorted(a["ID"] for a in al if a["NodeID"] == victim.node_id and a["ClientStatus"] == "lost")
        live = [a for a in al if a["ClientStatus"] == "running" and a["NodeID"] == other.node_id]
        return lost == mine and len(live) == 2
    ok = wait(down_and_replaced, down_timeout, interval=0.5)
    took = m["down_s"] = time.time() - t0
    c.check(ok, "partitioned, the node went down and its allocation(s) were lost and replaced "
            "on %s (%.1fs)" % (other.name, took))
    c.check(task_pids(cl, victim) == pids,
            "the cut-off client kept its tasks running (it cannot know)")

    # 3. Heal: the node is ready again and the old allocations stop.
    cl.net.heal(victim.host)
    t1 = time.time()

    def healed():
        l = cl.wait_leader(5)
        st = [n["Status"] for n in l.get("/v1/nodes") if n["ID"] == victim.node_id]
        return st == ["ready"] and not task_pids(cl, victim)
    ok = wait(healed, heal_timeout, interval=0.5)
    m["heal_s"] = time.time() - t1
    c.check(ok, "healed, the node is ready again and its old task process(es) stopped (%.1fs)"
            % m["heal_s"], "left: %s" % task_pids(cl, victim))
    time.sleep(2)
    al = allocs()
    run = [a for a in al if a["ClientStatus"] == "running"]
    old = {a["ID"]: (a["ClientStatus"], a["DesiredStatus"]) for a in al if a["ID"] in mine}
    c.check(len(run) == 2 and all(a["NodeID"] == other.node_id for a in run),
            "the job runs exactly 2 allocations, all on %s" % other.name,
            [(a["ID"][:8], a["NodeID"][:8], a["ClientStatus"], a["DesiredStatus"]) for a in al])
    c.check(all(s[0] != "running" and s[1] != "run" for s in old.values()),
            "the old allocation(s) stay stopped on the servers: %s" % sorted(set(old.values())))
    lead = cl.wait_leader(10)
    lead.api("DELETE", "/v1/job/chaos-svc?purge=true")
    # the next round starts clean: no task of this round left on either client
    wait(lambda: not any(task_pids(cl, x) for x in cl.clients), 20)
    return m
