#!/usr/bin/env python3
"""Measure how long a real HAProxy takes to mark a silent server DOWN, on loopback only.

The "silent host" is a TCP listener on 127.0.0.1 whose accept queue is full: Linux then drops
new SYNs without answering (tcp_conn_request: a full accept queue drops the SYN), which is what
a check sees from a host that has gone silent. Healthy means the listener accepts and closes.

Each trial: wait for the server to be fully UP, sleep a random fraction of `inter` (so the fault
starts at a uniform phase of the check cycle), make the listener silent (stop accepting and fill
its queue of 1), and time HAProxy's "is DOWN" log line from that instant. Then heal it and wait
for UP again. Everything stops by itself after the trials (and after at most --max-seconds).

Usage: scripts/haproxy-silent-host.py [--trials N] [--inter-ms 1000] [--connect-ms 800]
         [--check-ms 600] [--fall 3] [--rise 2]
Prints each detection latency and the window [F*C + (F-1)*fastinter, F*C + (F-1)*fastinter +
inter] with C = min(inter, timeout connect) (fastinter defaults to inter: [F*C + (F-1)*inter,
F*(C + inter)]), as JSON on the last line.
"""
import argparse, json, os, random, socket, subprocess, sys, tempfile, threading, time

p = argparse.ArgumentParser()
p.add_argument("--trials", type=int, default=30)
p.add_argument("--inter-ms", type=int, default=1000)
p.add_argument("--connect-ms", type=int, default=800, help="0: no timeout connect")
p.add_argument("--check-ms", type=int, default=600)
p.add_argument("--fastinter-ms", type=int, default=0, help="0: not set (fastinter = inter)")
p.add_argument("--fall", type=int, default=3)
p.add_argument("--rise", type=int, default=2)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--max-seconds", type=float, default=900)
p.add_argument("--verbose", action="store_true", help="print the log lines of each trial")
a = p.parse_args()
random.seed(a.seed)
deadline = time.monotonic() + a.max_seconds


class Member:
    """A listener with a backlog of 1 that accepts while healthy and stops when silent."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(0.01)
        self.port = self.sock.getsockname()[1]
        self.healthy = True
        self.fillers = []
        self.lock = threading.Lock()
        # Set by the accept loop once it has stopped accepting: only then is the queue filled,
        # or an accept racing the fill would leave room for one more SYN.
        self.parked = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            with self.lock:
                healthy = self.healthy
            if healthy:
                self.parked.clear()
                try:
                    c, _ = self.sock.accept()
                    c.close()
                except (socket.timeout, BlockingIOError):
                    pass
            else:
                self.parked.set()
                time.sleep(0.005)

    def go_silent(self):
        with self.lock:
            self.healthy = False
        self.parked.wait()
        # Fill the accept queue (backlog 1 holds 2 established connections): from now on the
        # kernel drops every SYN to this port.
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(("127.0.0.1", self.port))
            self.fillers.append(s)

    def heal(self):
        for s in self.fillers:
            s.close()
        self.fillers = []
        with self.lock:
            self.healthy = True


m = Member()
# HAProxy needs a listener; a free loopback port for a frontend nothing connects to.
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
fe_port = probe.getsockname()[1]
probe.close()
cfg = f"""
global
    log stdout format raw local0
    spread-checks 0
defaults
    mode tcp
    log global
    option log-health-checks
{f"    timeout connect {a.connect_ms}ms" if a.connect_ms else ""}
    timeout check {a.check_ms}ms
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{fe_port}
    default_backend be
backend be
    server master 127.0.0.1:{m.port} check inter {a.inter_ms}ms{f" fastinter {a.fastinter_ms}ms" if a.fastinter_ms else ""} fall {a.fall} rise {a.rise}
"""
tmp = tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False)
tmp.write(cfg)
tmp.close()
proc = subprocess.Popen(["haproxy", "-db", "-f", tmp.name], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, bufsize=1)
events = []  # (monotonic time, line)
cond = threading.Condition()


def reader():
    for line in proc.stdout:
        with cond:
            events.append((time.monotonic(), line.rstrip()))
            cond.notify_all()


threading.Thread(target=reader, daemon=True).start()


def wait_for(word, since):
    """The time of the first log line after `since` containing `word`."""
    with cond:
        while time.monotonic() < deadline:
            for t, line in events:
                if t >= since and word in line:
                    return t, line
            cond.wait(0.5)
    raise SystemExit("gave up: --max-seconds reached")


inter = a.inter_ms / 1000
# tcpcheck_eval_connect: min(inter, timeout connect) when timeout check is set, else inter.
C = (min(a.inter_ms, a.connect_ms) if a.connect_ms and a.check_ms else a.inter_ms) / 1000
fast = (a.fastinter_ms or a.inter_ms) / 1000
lo = a.fall * C + (a.fall - 1) * fast
hi = lo + inter
latencies, durations = [], []
try:
    # Let the server reach full health first (it starts at health = rise).
    time.sleep(3 * inter)
    for i in range(a.trials):
        # A uniform phase of the check cycle.
        time.sleep(2 * inter + random.random() * (inter + C))
        m.go_silent()
        t0 = time.monotonic()
        t, line = wait_for("is DOWN", t0)
        latencies.append(t - t0)
        print(f"trial {i}: DOWN after {t - t0:.3f}s", flush=True)
        if a.verbose:
            with cond:
                for te, l in events:
                    if te >= t0 - 2 * inter and te <= t:
                        print(f"  {te - t0:+.3f}s {l}", flush=True)
        m.heal()
        wait_for("is UP", t)
finally:
    proc.terminate()
    proc.wait(timeout=5)
    os.unlink(tmp.name)
for _, line in events:
    if "failed" in line and "Layer4 timeout" in line and "check duration" in line:
        durations.append(int(line.split("check duration: ")[1].split("ms")[0]))
out = {
    "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
    "inter_s": inter, "timeout_connect_s": a.connect_ms / 1000, "timeout_check_s": a.check_ms / 1000,
    "fall": a.fall, "fastinter_s": fast, "C_s": C, "window_s": [lo, hi],
    "fastinter_set": bool(a.fastinter_ms), "trials": len(latencies), "min_s": min(latencies), "max_s": max(latencies),
    "mean_s": sum(latencies) / len(latencies),
    "inside": sum(lo - 0.05 <= x <= hi + 0.05 for x in latencies),
    "l4_timeout_check_durations_ms": sorted(set(durations)),
}
print(json.dumps(out))
