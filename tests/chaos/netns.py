"""netns.py - a small chaos substrate in Linux network namespaces (Python stdlib only).

A `Net` owns N hosts, each a network namespace with one interface `eth0` at
`<subnet>.<i>/24`, plugged into a bridge that lives in a namespace of its own (the
"switch"), so the root namespace has no route to the test addresses and its firewall
never sees the traffic (shared/reference/feasibility.md §7). Every name carries a prefix
unique to the run (`cv<pid>` by default), so runs in parallel never collide:

    <prefix>sw   bridge br0, one veth<i> per host (the switch port)
    <prefix>h1   eth0 = <subnet>.1     lo up
    ...
    <prefix>hN   eth0 = <subnet>.N

Faults, all inside the namespaces (never the root namespace's links, routes or rules):
  * partition(h) / heal(h): the host's switch port down / up (full isolation);
  * loss(h, p): iptables `statistic` drops a fraction p of what eth0 receives;
  * drop_from(h, src): h drops everything from src (asymmetric: src still hears h);
  * clear(h): removes h's iptables rules.
Traffic over `lo` is never dropped: rules match `-i eth0` only.

The test process itself stays in the root namespace. It reaches a host through sockets
created inside that host's namespace (`Net.socket(h)`: a short-lived thread calls
setns(2) and opens the socket; a socket keeps its namespace for life), so it can talk to
a partitioned host over the host's own `lo`. `Net.http(h, ...)` does HTTP that way.

Teardown (`close()`, also run on exceptions through `with`, at exit and on SIGTERM/SIGINT
once `install_signal_handlers()` was called): kill every process started with `run()` by
PID, then every PID still inside one of our namespaces (`ip netns pids`: task shims and
tasks that outlived their agent), then `ip netns del`. A namespace whose processes are
not all dead is not deleted (`ip netns del` would only drop the name; the namespace and
its veth would live on), so kill first, re-check, then delete.
"""
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def available():
    """None when the substrate can run here, else the reason it cannot (a skip)."""
    if os.geteuid() != 0:
        return "not root"
    if not any(os.access(os.path.join(d, "ip"), os.X_OK)
               for d in os.environ.get("PATH", "/usr/sbin:/sbin").split(":") + ["/usr/sbin", "/sbin"]):
        return "no ip(8)"
    return None


def _ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p


def _in_netns(ns, fn):
    """Runs fn() in a fresh thread that first joins namespace ns; returns its result."""
    out = {}

    def run():
        try:
            fd = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "setns %s: %s" % (ns, os.strerror(e)))
            finally:
                os.close(fd)
            out["v"] = fn()
        except BaseException as e:  # handed back to the caller's thread
            out["e"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["v"]


class Host:
    def __init__(self, net, i):
        self.net = net
        self.i = i
        self.ns = "%sh%d" % (net.prefix, i)
        self.ip = "%s.%d" % (net.subnet, i)
        self.port = "veth%d" % i  # its port on the switch
        self.partitioned = False

    def __repr__(self):
        return "h%d(%s)" % (self.i, self.ip)


class _NsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, net, host, addr, port, timeout):
        super().__init__(addr, port, timeout=timeout)
        self._net, self._h = net, host

    def connect(self):
        self.sock = self._net.socket(self._h)
        self.sock.settimeout(self.timeout)
        try:
            self.sock.connect((self.host, self.port))
        except BaseException:
            self.sock.close()
            raise


class Net:
    """N hosts on one switch. Use as a context manager, or call up() and close()."""

    def __init__(self, n, prefix=None, subnet=None, workdir=None):
        pid = os.getpid()
        self.prefix = prefix or "cv%d" % pid
        # 10.<a>.<b>.0/24 from the pid: distinct between concurrent runs (not required for
        # isolation, each run has its own switch, but it keeps logs unambiguous).
        self.subnet = subnet or "10.%d.%d" % (100 + pid % 100, (pid // 100) % 250)
        self.sw = self.prefix + "sw"
        self.hosts = [Host(self, i) for i in range(1, n + 1)]
        self.procs = []  # (host, Popen) started by run()
        self.workdir = workdir
        self._closed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------ life cycle

    def up(self):
        created = []
        try:
            _ip("netns", "add", self.sw)
            created.append(self.sw)
            _ip("-n", self.sw, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.sw, "link", "set", "br0", "up")
            for h in self.hosts:
                _ip("netns", "add", h.ns)
                created.append(h.ns)
                _ip("-n", self.sw, "link", "add", h.port, "type", "veth", "peer", "name", "eth0",
                    "netns", h.ns)
                _ip("-n", self.sw, "link", "set", h.port, "master", "br0", "up")
                _ip("-n", h.ns, "addr", "add", "%s/24" % h.ip, "dev", "eth0")
                _ip("-n", h.ns, "link", "set", "eth0", "up")
                _ip("-n", h.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.close()
        return False

    def namespaces(self):
        return [self.sw] + [h.ns for h in self.hosts]

    def close(self):
        """Kills what runs in our namespaces and deletes them; idempotent. Returns the
        names of namespaces that could not be removed (empty when all went)."""
        with self._lock:
            if self._closed:
                return []
            self._closed = True
        for h, p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for h, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        left = []
        existing = set(self._list())
        for ns in self.namespaces():
            if ns not in existing:
                continue
            for _ in range(50):
                pids = self.pids_in(ns)
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
            if self.pids_in(ns):
                left.append(ns)
                continue
            if _ip("netns", "del", ns, check=False).returncode != 0:
                left.append(ns)
        return left

    def install_signal_handlers(self):
        """SIGTERM/SIGINT raise SystemExit, so `with`/finally blocks tear down."""
        def handler(signum, frame):
            raise SystemExit(128 + signum)
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    @staticmethod
    def _list():
        p = _ip("netns", "list", check=False)
        return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]

    def leftovers(self):
        """Our namespaces that still exist (for a final check)."""
        mine = set(self.namespaces())
        return [ns for ns in self._list() if ns in mine]

    @staticmethod
    def pids_in(ns):
        p = _ip("netns", "pids", ns, check=False)
        return [int(x) for x in p.stdout.split() if x.isdigit() and int(x) != os.getpid()]

    # ------------------------------------------------------------ processes

    def run(self, h, argv, log=None, env=None):
        """Starts argv inside h (`ip netns exec` execs it, so the Popen's PID is the
        program's). Output goes to log (a path) or is discarded. Killed at close()."""
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            p = subprocess.Popen(["ip", "netns", "exec", h.ns] + list(argv), stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=env)
        finally:
            if log:
                out.close()
        self.procs.append((h, p))
        return p

    def exec(self, h, argv, timeout=30):
        """Runs a short command inside h and returns the CompletedProcess."""
        return subprocess.run(["ip", "netns", "exec", h.ns] + list(argv), capture_output=True,
                              text=True, timeout=timeout)

    # ------------------------------------------------------------ faults

    def partition(self, h):
        """Isolates h completely: its switch port goes down."""
        _ip("-n", self.sw, "link", "set", h.port, "down")
        h.partitioned = True

    def heal(self, h):
        _ip("-n", self.sw, "link", "set", h.port, "up")
        h.partitioned = False

    def _ipt(self, h, *rule):
        p = self.exec(h, ["iptables", "-w"] + list(rule))
        if p.returncode != 0:
            raise RuntimeError("iptables %s in %s: %s" % (" ".join(rule), h.ns, p.stderr.strip()))

    def loss(self, h, p):
        """h drops a random fraction p of the packets eth0 receives (so p per hop)."""
        self._ipt(h, "-A", "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random",
                  "--probability", "%.4f" % p, "-j", "DROP")

    def drop_from(self, h, src):
        """h drops every packet from src; src still receives h's (asymmetric)."""
        self._ipt(h, "-A", "INPUT", "-i", "eth0", "-s", src.ip, "-j", "DROP")

    def clear(self, h):
        """Removes every fault rule of h (the namespace's own tables; the root's are
        never touched)."""
        self._ipt(h, "-F", "INPUT")
        self._ipt(h, "-F", "OUTPUT")

    # ------------------------------------------------------------ talking to hosts

    def socket(self, h, family=socket.AF_INET, kind=socket.SOCK_STREAM):
        """A new socket living in h's namespace (usable from any thread)."""
        return _in_netns(h.ns, lambda: socket.socket(family, kind))

    def http(self, h, method, path, body=None, port=4646, addr=None, timeout=5):
        """HTTP from inside h to addr (default: h's own address, over lo, so it works while
        h is partitioned). Returns (status, parsed JSON or text). Raises OSError on
        connection failures and timeouts."""
        conn = _NsHTTPConnection(self, h, addr or h.ip, port, timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            text = r.read().decode()
            try:
                return r.status, json.loads(text) if text else None
            except ValueError:
                return r.status, text
        finally:
            conn.close()
