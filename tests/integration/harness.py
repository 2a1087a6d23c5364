"""Shared helpers for integration tests: start real agents on 127.0.0.x, run the CLI,
talk to the HTTP API, and always clean up every process that was started."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# CARAVAN_BIN lets the suite run another build (the sanitizer build) of the binary.
CARAVAN = os.environ.get("CARAVAN_BIN") or os.path.join(ROOT, "caravan")


class Agent:
    def __init__(self, ip, args=(), http_port=4646):
        self.ip = ip
        self.addr = "http://%s:%d" % (ip, http_port)
        self.logpath = tempfile.mktemp(prefix="caravan-agent-", suffix=".log")
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen([CARAVAN, "agent", "-bind", ip] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath) as f:
            return f.read()

    def api(self, path, method="GET", body=None, raw=None, timeout=10):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.addr + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text and r.headers.get("Content-Type", "").startswith("application/json") else text), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("agent exited early:\n" + self.output())
            try:
                code, nodes, _ = self.api("/v1/nodes", timeout=2)
                if code == 200 and any(n["Status"] == "ready" for n in nodes):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError("agent not ready in %ss:\n%s" % (timeout, self.output()))

    def cli(self, *args, stdin=None, timeout=60, cwd=None):
        env = dict(os.environ, CARAVAN_ADDR=self.addr, NOMAD_ADDR=self.addr)
        p = subprocess.run([CARAVAN] + list(args), capture_output=True, text=True, env=env,
                           input=stdin, timeout=timeout, cwd=cwd)
        return p.returncode, p.stdout, p.stderr

    def stop(self, sig=signal.SIGINT, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        """Removes the log file (call once the test no longer needs the output)."""
        try:
            os.unlink(self.logpath)
        except OSError:
            pass


def pids_with_env(marker):
    """PIDs of processes whose environment contains marker (to find leftover tasks)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


class Checker:
    def __init__(self, name):
        self.name = name
        self.failures = 0
        self.checks = 0

    def check(self, cond, what, detail=""):
        self.checks += 1
        if cond:
            print("ok   %s" % what)
        else:
            self.failures += 1
            print("FAIL %s\n%s" % (what, detail))
        sys.stdout.flush()
        return cond

    def done(self):
        print("%s: %d checks, %d failed" % (self.name, self.checks, self.failures))
        sys.exit(1 if self.failures else 0)


def kill_under(path):
    """Kills every process whose command line or environment mentions path: task shims and
    the tasks of client agents whose data dir is under path (tasks outlive a client agent
    by design, so a test that stops one must clean them up)."""
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        for what in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (pid, what), "rb") as f:
                    if path.encode() in f.read():
                        os.kill(int(pid), signal.SIGKILL)
                        break
            except OSError:
                pass
