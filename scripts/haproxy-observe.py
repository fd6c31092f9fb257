#!/usr/bin/env python3
"""Count the client connections a real HAProxy lets fail before `observe layer4` marks a crashed
server DOWN, for each `on-error` mode, on loopback only.

Two servers on 127.0.0.1 answer every connection with one byte ("M" for the master, "S" for the
backup slave) and close it. HAProxy runs in TCP mode with `retries 0` (so each client connection
is one connection attempt, as in elbsim) in front of them:

    server master ... check inter 10s fastinter 500ms downinter 500ms fall 3 rise 3
                      observe layer4 error-limit N on-error MODE
    server slave  ... check backup

Each trial: with the master fully UP, its listener is closed (a crash: connections are refused),
then clients connect through HAProxy one after the other, `--gap-ms` apart, until one reaches
the slave. The script counts the clients that failed (HAProxy closed them without a byte) and
times HAProxy's "is DOWN" log line from the failure that reached the error limit. Then the
master comes back, and the next trial waits for "is UP" and a random part of a second.

What elbsim's haproxy profile predicts (docs/profiles.md, "haproxy", from src/check.c
__health_adjust), checks every 10 s being too far apart to interfere:
  mark-down     N failures, DOWN at the N-th
  sudden-death  2N failures (the first action leaves it one failure from DOWN)
  fail-check    3N failures (fall 3: one failed check per N errors)
  fastinter     no health change from the errors; the N-th moves the next check to 500 ms later
                (fastinter is set), and 3 failing checks fastinter apart take it DOWN about
                1.5 s after the N-th failure

Then one more run, `abort`: a check in progress when on-error moves the check task is aborted
as a timeout. The master turns silent (its accept queue full, so SYNs are dropped) with
`timeout connect 3s`, `timeout check 3s`, `inter 10s fastinter 500ms fall 3`, `error-limit 1
on-error fastinter`, and clients every 200 ms: each client's connect times out 3 s after it
starts, and each such error moves the check task to 500 ms later. elbsim predicts each check
failing as "Layer4 timeout" 500 to 700 ms after it starts (the next client error, at most 200 ms
later, plus fastinter), not 3000 ms, the server DOWN after the third (`abort_check_durations_ms`
in the summary). The same with clients that give up after 2 s,
before `timeout connect`: their attempts are aborted without a server error, so no check moves
and none fails within the run (`impatient_check_durations_ms`, empty).

Usage: scripts/haproxy-observe.py [--trials 5] [--error-limit 10] [--gap-ms 10]
         [--modes mark-down,sudden-death,fail-check,fastinter,abort]
Prints each trial and a JSON summary on the last line. Stops by itself (--max-seconds).
"""
import argparse, json, os, random, socket, subprocess, tempfile, threading, time

p = argparse.ArgumentParser()
p.add_argument("--trials", type=int, default=5)
p.add_argument("--error-limit", type=int, default=10)
p.add_argument("--gap-ms", type=int, default=10)
p.add_argument("--modes", default="mark-down,sudden-death,fail-check,fastinter,abort")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--max-seconds", type=float, default=600)
a = p.parse_args()
random.seed(a.seed)
deadline = time.monotonic() + a.max_seconds
N = a.error_limit
FASTINTER = 0.5
FALL = 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Silent:
    """A listener that accepts (and closes) until `silence`, then fills its accept queue of 1,
    so that the kernel drops every new SYN (scripts/haproxy-silent-host.py does the same)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(0.01)
        self.port = self.sock.getsockname()[1]
        self.healthy = True
        self.parked = threading.Event()
        self.fillers = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while self.healthy:
            try:
                c, _ = self.sock.accept()
                c.close()
            except OSError:
                pass
        self.parked.set()

    def silence(self):
        self.healthy = False
        self.parked.wait()
        for _ in range(2):
            s = socket.socket()
            s.settimeout(1)
            s.connect(("127.0.0.1", self.port))
            self.fillers.append(s)


class Server:
    """Answers each connection with one byte; `crash` closes the listener (refusals)."""

    def __init__(self, byte):
        self.byte = byte
        self.port = free_port()
        self.sock = None
        self.start()

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.sock = s
        threading.Thread(target=self.loop, args=(s,), daemon=True).start()

    def loop(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                c.sendall(self.byte)
            except OSError:
                pass
            c.close()

    def crash(self):
        self.sock.close()


def client(port, timeout=2.0):
    """What one client connection through HAProxy got: b"M", b"S" or b"" (failed)."""
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        return s.recv(1)
    except OSError:
        return b""
    finally:
        s.close()


def run_mode(mode):
    master, slave = Server(b"M"), Server(b"S")
    fe = free_port()
    cfg = f"""
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option log-health-checks
    retries 0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    server master 127.0.0.1:{master.port} check inter 10s fastinter 500ms downinter 500ms fall {FALL} rise 3 observe layer4 error-limit {N} on-error {mode}
    server slave 127.0.0.1:{slave.port} check backup inter 10s
"""
    tmp = tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False)
    tmp.write(cfg)
    tmp.close()
    proc = subprocess.Popen(["haproxy", "-db", "-f", tmp.name], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    events, cond = [], threading.Condition()

    def reader():
        for line in proc.stdout:
            with cond:
                events.append((time.monotonic(), line.rstrip()))
                cond.notify_all()

    threading.Thread(target=reader, daemon=True).start()

    def wait_for(word, since, server="master"):
        with cond:
            while time.monotonic() < deadline:
                for t, line in events:
                    if t >= since and word in line and f"/{server} " in line:
                        return t, line
                cond.wait(0.2)
        raise SystemExit("gave up: --max-seconds reached")

    trials = []
    try:
        # A fresh server is UP at health = rise; its first passing check (within fastinter of
        # the start) brings it to full health.
        time.sleep(2.0)
        for i in range(a.trials):
            time.sleep(random.random())
            master.crash()
            failures, fail_times = 0, []
            while time.monotonic() < deadline:
                got = client(fe)
                if got == b"S":
                    break
                if got != b"M":
                    failures += 1
                    fail_times.append(time.monotonic())
                time.sleep(a.gap_ms / 1000)
            t_limit = fail_times[min(N, len(fail_times)) - 1]
            t_down, line = wait_for("is DOWN", fail_times[0] - 0.001)
            trials.append({"failures": failures, "down_after_nth_s": round(t_down - t_limit, 3),
                           "down_line": line})
            print(f"{mode} trial {i}: {failures} failed clients, DOWN {t_down - t_limit:+.3f}s "
                  f"after the {N}-th failure", flush=True)
            master.start()
            wait_for("is UP", t_down)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        os.unlink(tmp.name)
        master.crash()
        slave.crash()
    return trials


def run_abort(client_timeout):
    """The `abort` run (module docs): the durations of the master's failed checks."""
    master, slave = Silent(), Server(b"S")
    fe = free_port()
    cfg = f"""
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option log-health-checks
    retries 0
    timeout connect 3s
    timeout check 3s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    server master 127.0.0.1:{master.port} check inter 10s fastinter 500ms fall {FALL} rise 1 observe layer4 error-limit 1 on-error fastinter
    server slave 127.0.0.1:{slave.port} check backup inter 10s
"""
    tmp = tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False)
    tmp.write(cfg)
    tmp.close()
    proc = subprocess.Popen(["haproxy", "-db", "-f", tmp.name], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(l.rstrip() for l in proc.stdout))
    reader.start()
    try:
        # Full health from the first check (within fastinter of the start), then silence.
        time.sleep(2.0)
        master.silence()
        for _ in range(40):
            # Clients wait past `timeout connect`: one that gave up first would abort HAProxy's
            # connect attempt, which is then no server error.
            threading.Thread(target=client, args=(fe, client_timeout), daemon=True).start()
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        reader.join(timeout=5)
        os.unlink(tmp.name)
        slave.crash()
    durations, down = [], False
    for line in lines:
        if line.startswith("Health check for server be/master failed") and not down:
            durations.append(int(line.split("check duration: ")[1].split("ms")[0]))
            print(f"abort (clients wait {client_timeout} s): {line}", flush=True)
            down = "DOWN" in line
    return durations


expected = {"mark-down": N, "sudden-death": 2 * N, "fail-check": FALL * N}
out = {"haproxy": subprocess.run(["haproxy", "-v"], capture_output=True, text=True)
       .stdout.split("\n")[0], "error_limit": N, "gap_ms": a.gap_ms, "modes": {}}
for mode in a.modes.split(","):
    if mode == "abort":
        out["abort_check_durations_ms"] = run_abort(5.0)
        out["abort_expected_ms"] = [500, 700]
        out["impatient_check_durations_ms"] = run_abort(2.0)
        continue
    trials = run_mode(mode)
    r = {"failures": [t["failures"] for t in trials],
         "down_after_nth_s": [t["down_after_nth_s"] for t in trials]}
    if mode in expected:
        r["expected_failures"] = expected[mode]
    else:
        r["expected_down_after_nth_s"] = FALL * FASTINTER
    out["modes"][mode] = r
print(json.dumps(out))
