#!/usr/bin/env python3
"""elbsim_ref: an independent SimPy reference model of the ELB master/slave pool.

Written from spec/model.md (sections 1-5, 7, 8) and the semantics of elbsim's Rust engine, but
sharing no code with it, so that `compare.py` can put both side by side (latency percentiles and
speed).

What it models
--------------
* One SimPy process per (LB node, member) prober. The first probe goes out uniformly in
  [0, delay). Schedule `after_completion` (next probe `delay` after the verdict) or `fixed_rate`
  (a probe every `delay`, each probe its own process, overlaps allowed).
* A probe is judged by the member's condition at the moment it is SENT:
  host_down or lost -> fail at `timeout`; rtt (+ slow latency) > timeout -> fail at `timeout`;
  crash / monitor_port_down -> fail after one RTT; success after one RTT (UDP_CONNECT: at
  `timeout`, silence is success); TCP and UDP_CONNECT stop at the transport (hang, http_status,
  tls_error pass); HTTPS + tls_error -> fail after RTT; HTTP(S) + hang -> fail at timeout;
  HTTP(S) + http_status outside expected_codes -> fail after RTT.
* Rise/fall counters: max_retries_down consecutive failures -> OFFLINE, max_retries consecutive
  successes -> ONLINE, an opposite result resets the streak.
* Each health change reaches the node's router `route_update_delay` later (its own process).
  Router: master while ONLINE, else slave while ONLINE, else all_down (drop | master);
  failback preemptive | sticky.
* Faults: crash, host_down, hang, http_status (expected_codes grammar "200", "200,202",
  "200-204", up to 5 items), slow, loss, monitor_port_down, tls_error, flap (crashed for
  `down` of each `period`, from the start of each period). One process per fault.
* [network]: a fixed RTT or a log-normal {median, p99} (sigma = ln(p99/median)/z99); loss.
* lb_nodes: every node probes every member on its own.
* Optional [traffic]: Poisson arrivals at `rate` (rate schedules are ignored: first rate
  only), node = hash(client) % lb_nodes, exponential (or fixed) lifetime; a crashed member
  refuses, a silent one (host_down) makes the client time out; open connections on a member
  that crashes / goes silent are broken (a UDP flow the client had finished, lingering only for
  the idle timeout, completes instead); a UDP pool's flows stay `udp_idle_timeout` (300s)
  after their lifetime. Counters: connections, established, refused, timed_out,
  no_backend, tls_failed, broken, completed.

What it leaves out (on purpose)
-------------------------------
Connection drain, SOURCE_IP persistence, failback_sessions = "reset", QUIC CID routing, UDP idle
timeout, request counting (requests / requests_failed), the unavailability window, API
validation of the pool body (only the fields the model needs are read), reason codes.

Measures (as elbsim's report): per master fault and LB node, a failover is the first master
OFFLINE transition at or after the fault start whose deciding probe was SENT while this fault was
the (earliest-started) active master fault; the node must have had the master ONLINE just before
the fault (otherwise the pair is skipped, and not counted). Failover latency uses the route change
away from the master that the detection caused (within route_update_delay of it; none when the
node was not routing to the master); failback the route change back to the master caused by the
master's first ONLINE verdict after the fault end (only for faults that end before the run does). A false failover is a master
OFFLINE transition whose deciding probe was sent with no master fault active. A missed fault is a
(master fault, node) pair with no failover.

Randomness: `random.Random(seed * 1000003 + trial)`, one stream per trial. It does not reproduce
elbsim's draws, only the distributions.

Usage:
    python3 elbsim_ref.py SCENARIO -n N [--seed S] [--format json|text] [--samples-out FILE]
    python3 elbsim_ref.py --self-test
"""

import argparse
import json
import math
import os
import random
import sys
import time

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore

import simpy

Z_P99 = 2.3263478740408408
MASTER, SLAVE = 0, 1
ROLE_NAMES = {"master": MASTER, "slave": SLAVE}
ONLINE, OFFLINE = "ONLINE", "OFFLINE"
T_MASTER, T_SLAVE, T_DROP = "master", "slave", "drop"

# --------------------------------------------------------------------------------------------
# Scenario loading
# --------------------------------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0,
          "h": 3600.0, "d": 86400.0}


def parse_duration(v):
    """'250ms', '5s', '10m', ... -> seconds (float). 0 is allowed bare."""
    if isinstance(v, (int, float)) and v == 0:
        return 0.0
    s = str(v).strip()
    if s == "0":
        return 0.0
    i = 0
    while i < len(s) and (s[i].isdigit() or s[i] == "."):
        i += 1
    num, unit = s[:i], s[i:].strip()
    if not num or unit not in _UNITS:
        raise ValueError(f"bad duration {v!r}")
    return float(num) * _UNITS[unit]


def parse_expected_codes(s):
    ranges = []
    for item in str(s).split(","):
        if "-" in item:
            a, b = item.split("-", 1)
            ranges.append((int(a), int(b)))
        else:
            ranges.append((int(item), int(item)))
    return ranges


class Fault:
    def __init__(self, member, kind, at, until, **kw):
        self.member = member
        self.kind = kind
        self.at = at
        self.until = until
        self.status = kw.get("status")
        self.expected = kw.get("expected", False)
        self.latency = kw.get("latency", 0.0)
        self.probability = kw.get("probability", 0.0)
        self.period = kw.get("period")
        self.down = kw.get("down")


class Config:
    """What one run needs, in seconds."""

    def __init__(self):
        self.name = "scenario"
        self.seed = None
        self.duration = 600.0
        self.lb_nodes = 1
        self.kind = "TCP"
        self.delay = 5.0
        self.timeout = 3.0
        self.rise = 3
        self.fall = 3
        self.expected_codes = [(200, 200)]
        self.protocol = "TCP"
        self.schedule = "after_completion"
        self.initial_state = "online"
        self.all_down = "drop"
        self.failback = "preemptive"
        self.route_update_delay = 0.0
        self.rtt_fixed = 0.001
        self.rtt_lognormal = None  # (mu, sigma)
        self.loss = 0.0
        self.faults = []
        self.traffic = None  # dict(rate, lifetime, fixed_lifetime, clients)


def _apply_pool(cfg, pool):
    hm = pool.get("healthmonitor", {})
    cfg.kind = str(hm.get("type", "TCP")).upper()
    cfg.delay = float(hm.get("delay", 5))
    cfg.timeout = float(hm.get("timeout", 3))
    cfg.rise = max(1, int(hm.get("max_retries", 3)))
    cfg.fall = max(1, int(hm.get("max_retries_down", 3)))
    if hm.get("expected_codes") is not None:
        cfg.expected_codes = parse_expected_codes(hm["expected_codes"])
    cfg.protocol = str(pool.get("protocol", "TCP")).upper()
    if pool.get("name"):
        cfg.name = pool["name"]


def _codes_match(ranges, code):
    return any(lo <= code <= hi for lo, hi in ranges)


def load_scenario(path):
    cfg = Config()
    with open(path, "rb") as fh:
        raw = fh.read()
    if path.endswith(".json") or raw.lstrip().startswith(b"{"):
        body = json.loads(raw)
        _apply_pool(cfg, body["pool"])
        cfg.name = f"{cfg.name}: master crashes at 60s, back at 180s"
        cfg.faults.append(Fault(MASTER, "crash", 60.0, 180.0))
        return cfg
    doc = tomllib.loads(raw.decode("utf-8"))
    if "body" in doc:
        bpath = doc["body"]
        if not os.path.isabs(bpath):
            bpath = os.path.join(os.path.dirname(os.path.abspath(path)), bpath)
        with open(bpath, "rb") as fh:
            _apply_pool(cfg, json.loads(fh.read())["pool"])
    elif "pool" in doc:
        _apply_pool(cfg, doc["pool"])
    else:
        raise ValueError(f"{path}: no pool (body or [pool])")
    cfg.name = doc.get("name", os.path.splitext(os.path.basename(path))[0])
    cfg.seed = doc.get("seed")
    if "duration" in doc:
        cfg.duration = parse_duration(doc["duration"])
    cfg.lb_nodes = max(1, int(doc.get("lb_nodes", 1)))
    m = doc.get("model", {})
    cfg.schedule = m.get("probe_schedule", cfg.schedule)
    cfg.initial_state = m.get("initial_state", cfg.initial_state)
    cfg.all_down = m.get("all_down", cfg.all_down)
    cfg.failback = m.get("failback", cfg.failback)
    cfg.route_update_delay = parse_duration(m.get("route_update_delay", "0s"))
    n = doc.get("network", {})
    cfg.loss = float(n.get("loss", 0.0))
    rtt = n.get("rtt", "1ms")
    if isinstance(rtt, dict):
        med = parse_duration(rtt["median"])
        p99 = parse_duration(rtt["p99"])
        mu = math.log(max(med, 1e-9))
        sigma = max(math.log(max(p99, 1e-9)) - mu, 0.0) / Z_P99
        cfg.rtt_lognormal = (mu, sigma)
    else:
        cfg.rtt_fixed = parse_duration(rtt)
    for f in doc.get("faults", []):
        member = ROLE_NAMES[f.get("member", "master")]
        kind = f["kind"]
        at = parse_duration(f["at"])
        until = parse_duration(f["until"]) if "until" in f else None
        kw = {}
        if kind == "http_status":
            kw["status"] = int(f["status"])
            kw["expected"] = _codes_match(cfg.expected_codes, int(f["status"]))
        elif kind == "slow":
            kw["latency"] = parse_duration(f["latency"])
        elif kind == "loss":
            kw["probability"] = float(f["probability"])
        elif kind == "flap":
            kw["period"] = parse_duration(f["period"])
            kw["down"] = float(f["down"])
        cfg.faults.append(Fault(member, kind, at, until, **kw))
    t = doc.get("traffic")
    if t is not None:
        lt = t.get("lifetime", "30s")
        fixed = None
        mean = 30.0
        if isinstance(lt, dict):
            if "fixed" in lt:
                fixed = parse_duration(lt["fixed"])
            else:
                mean = parse_duration(lt["mean"])
        else:
            mean = parse_duration(lt)
        cfg.traffic = {
            "rate": float(t.get("rate", 0.0)),
            "mean_lifetime": mean,
            "fixed_lifetime": fixed,
            "clients": int(t.get("clients", 1000)),
            # UDP pools: the LB keeps a flow for udp_idle_timeout after its last packet, so a
            # flow occupies its member that much longer (and can be broken in that time).
            "idle": (parse_duration(t.get("udp_idle_timeout", "300s"))
                     if cfg.protocol == "UDP" else 0.0),
        }
    return cfg


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

class Condition:
    __slots__ = ("host_down", "crashed", "monitor_port_down", "hang", "tls_error",
                 "http_bad", "extra_latency", "loss")

    def __init__(self):
        self.host_down = False
        self.crashed = False
        self.monitor_port_down = False
        self.hang = False
        self.tls_error = False
        self.http_bad = False  # an http_status fault whose code is not in expected_codes
        self.extra_latency = 0.0
        self.loss = 0.0

    def is_down(self):
        return self.crashed or self.host_down


def _mix64(z):
    """SplitMix64 finaliser (client address -> LB node, like ECMP on the source address)."""
    M = 0xFFFFFFFFFFFFFFFF
    z = (z + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


class Trial:
    """One simulated run."""

    def __init__(self, cfg, rng):
        self.cfg = cfg
        self.rng = rng
        self.env = simpy.Environment()
        init = ONLINE if cfg.initial_state == "online" else OFFLINE
        self.init = init
        n = cfg.lb_nodes
        # Per node: [master health, slave health] as the checker sees it, and as the router knows.
        self.router_health = [[init, init] for _ in range(n)]
        self.target = [None] * n
        for node in range(n):
            self.target[node] = self._preferred(node)
        self.cond = [Condition(), Condition()]
        self.active = [False] * len(cfg.faults)
        self.flap_down = [False] * len(cfg.faults)
        self.transitions = []  # (at, node, member, to, sent_at)
        self.routes = []  # (at, node, from, to)
        self.counters = None
        if cfg.traffic is not None:
            self.counters = dict(connections=0, established=0, refused=0, timed_out=0,
                                 no_backend=0, tls_failed=0, broken=0, completed=0)
            self.open_conns = [dict(), dict()]  # member -> {conn id: None}
            self.next_conn = 0

    # ---- routing ----
    def _preferred(self, node):
        m, s = self.router_health[node]
        if self.cfg.failback == "sticky" and self.target[node] == T_SLAVE and s == ONLINE:
            return T_SLAVE
        if m == ONLINE:
            return T_MASTER
        if s == ONLINE:
            return T_SLAVE
        return T_DROP if self.cfg.all_down == "drop" else T_MASTER

    def apply_health(self, node, member, health):
        yield self.env.timeout(self.cfg.route_update_delay)
        self.router_health[node][member] = health
        to = self._preferred(node)
        frm = self.target[node]
        self.target[node] = to
        if to != frm:
            self.routes.append((self.env.now, node, frm, to))

    # ---- probing ----
    def draw_rtt(self):
        ln = self.cfg.rtt_lognormal
        if ln is None:
            return self.cfg.rtt_fixed
        return math.exp(ln[0] + ln[1] * self.rng.gauss(0.0, 1.0))

    def judge(self, member):
        """(seconds from send to verdict, ok) for a probe sent now."""
        cfg = self.cfg
        c = self.cond[member]
        rtt = self.draw_rtt() + c.extra_latency
        lost = (cfg.loss > 0 and self.rng.random() < cfg.loss) or \
               (c.loss > 0 and self.rng.random() < c.loss)
        T = cfg.timeout
        if c.host_down or lost or rtt > T:
            return T, False
        if c.crashed or c.monitor_port_down:
            return rtt, False
        ok_after = T if cfg.kind == "UDP_CONNECT" else rtt
        if cfg.kind not in ("HTTP", "HTTPS"):
            return ok_after, True
        if cfg.kind == "HTTPS" and c.tls_error:
            return rtt, False
        if c.hang:
            return T, False
        if c.http_bad:
            return rtt, False
        return ok_after, True

    def prober(self, node, member):
        env, cfg = self.env, self.cfg
        state = {"status": self.init, "ok": 0, "fail": 0}
        yield env.timeout(self.rng.random() * cfg.delay)
        if cfg.schedule == "fixed_rate":
            while True:
                env.process(self.one_probe(node, member, state))
                yield env.timeout(cfg.delay)
        else:
            while True:
                yield from self.one_probe(node, member, state)
                yield env.timeout(cfg.delay)

    def one_probe(self, node, member, st):
        env, cfg = self.env, self.cfg
        sent = env.now
        after, ok = self.judge(member)
        yield env.timeout(after)
        new = None
        if ok:
            st["fail"] = 0
            st["ok"] += 1
            if st["status"] == OFFLINE and st["ok"] >= cfg.rise:
                new = ONLINE
        else:
            st["ok"] = 0
            st["fail"] += 1
            if st["status"] == ONLINE and st["fail"] >= cfg.fall:
                new = OFFLINE
        if new is not None:
            st["status"] = new
            self.transitions.append((env.now, node, member, new, sent))
            env.process(self.apply_health(node, member, new))

    # ---- faults ----
    def rebuild(self, member):
        was_down = self.cond[member].is_down()
        c = Condition()
        for i, f in enumerate(self.cfg.faults):
            if f.member != member or not self.active[i]:
                continue
            k = f.kind
            if k == "crash":
                c.crashed = True
            elif k == "host_down":
                c.host_down = True
            elif k == "hang":
                c.hang = True
            elif k == "http_status":
                c.http_bad = not f.expected
            elif k == "slow":
                c.extra_latency += f.latency
            elif k == "loss":
                c.loss = 1.0 - (1.0 - c.loss) * (1.0 - f.probability)
            elif k == "monitor_port_down":
                c.monitor_port_down = True
            elif k == "tls_error":
                c.tls_error = True
            elif k == "flap":
                c.crashed = c.crashed or self.flap_down[i]
        self.cond[member] = c
        if c.is_down() and not was_down:
            self.break_member(member)

    def fault(self, i, f):
        env = self.env
        yield env.timeout(f.at)
        self.active[i] = True
        flapper = None
        self.rebuild(f.member)
        if f.kind == "flap":
            flapper = env.process(self.flap(i, f))
        if f.until is None:
            return
        yield env.timeout(f.until - f.at)
        self.active[i] = False
        self.flap_down[i] = False
        if flapper is not None and flapper.is_alive:
            flapper.interrupt()
        self.rebuild(f.member)

    def flap(self, i, f):
        env = self.env
        down_span = f.period * f.down
        try:
            while True:
                self.flap_down[i] = True
                self.rebuild(f.member)
                yield env.timeout(down_span)
                self.flap_down[i] = False
                self.rebuild(f.member)
                yield env.timeout(f.period - down_span)
        except simpy.Interrupt:
            return

    # ---- traffic ----
    def arrivals(self):
        env, t, k = self.env, self.cfg.traffic, self.counters
        rate = t["rate"]
        if rate <= 0:
            return
        nodes = self.cfg.lb_nodes
        while True:
            yield env.timeout(self.rng.expovariate(rate))
            k["connections"] += 1
            client = self.rng.randrange(t["clients"])
            node = _mix64(client) % nodes
            target = self.target[node]
            if target == T_DROP:
                k["no_backend"] += 1
                continue
            member = MASTER if target == T_MASTER else SLAVE
            c = self.cond[member]
            if c.crashed:
                k["refused"] += 1
                continue
            if c.host_down:
                k["timed_out"] += 1
                continue
            if self.cfg.protocol == "TLS" and c.tls_error:
                k["tls_failed"] += 1
                continue
            life = t["fixed_lifetime"]
            if life is None:
                life = self.rng.expovariate(1.0 / t["mean_lifetime"])
            k["established"] += 1
            cid = self.next_conn
            self.next_conn += 1
            # Remember when the client stops using it: after that the flow only lingers in the
            # LB's table (UDP idle timeout) and is not broken by a member failure.
            self.open_conns[member][cid] = env.now + life
            env.process(self.connection(member, cid, life + t["idle"]))

    def connection(self, member, cid, life):
        yield self.env.timeout(life)
        if self.open_conns[member].pop(cid, None) is not None:
            self.counters["completed"] += 1

    def break_member(self, member):
        if self.counters is None:
            return
        now = self.env.now
        for active_until in self.open_conns[member].values():
            if now >= active_until:
                self.counters["completed"] += 1
            else:
                self.counters["broken"] += 1
        self.open_conns[member].clear()

    # ---- run ----
    def run(self):
        env, cfg = self.env, self.cfg
        for node in range(cfg.lb_nodes):
            for member in (MASTER, SLAVE):
                env.process(self.prober(node, member))
        for i, f in enumerate(cfg.faults):
            env.process(self.fault(i, f))
        if cfg.traffic is not None:
            env.process(self.arrivals())
        # elbsim processes events at exactly `duration`; SimPy's `until` stops before them.
        env.run(until=cfg.duration + 1e-9)
        return self


# --------------------------------------------------------------------------------------------
# Analysis of one run (spec/model.md section 7, attribution by probe send time)
# --------------------------------------------------------------------------------------------

def _window(f, end):
    return f.at, max(f.until if f.until is not None else end, f.at)


def master_fault_at(faults, t, end):
    best = None
    for i, f in enumerate(faults):
        if f.member != MASTER:
            continue
        a, b = _window(f, end)
        if a <= t < b and (best is None or (f.at, i) < (faults[best].at, best)):
            best = i
    return best


def master_fault_free_time(faults, end):
    spans = sorted(_window(f, end) for f in faults if f.member == MASTER)
    covered, cur_a, cur_b = 0.0, None, None
    for a, b in spans:
        a, b = min(a, end), min(b, end)
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                covered += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        covered += cur_b - cur_a
    return end - covered


def analyse(cfg, trial):
    end = cfg.duration
    tr, routes = trial.transitions, trial.routes
    out = {"detection": [], "failover": [], "failback": [], "false": 0, "missed": 0, "pairs": 0}
    for fi, f in enumerate(cfg.faults):
        if f.member != MASTER:
            continue
        for node in range(cfg.lb_nodes):
            before = trial.init
            for (at, n, m, to, _s) in tr:
                if n == node and m == MASTER and at < f.at:
                    before = to
            if before != ONLINE:
                continue
            out["pairs"] += 1
            d = None
            for x in tr:
                at, n, m, to, sent = x
                if n == node and m == MASTER and to == OFFLINE and at >= f.at \
                        and master_fault_at(cfg.faults, sent, end) == fi:
                    d = x
                    break
            if d is None:
                out["missed"] += 1
                continue
            out["detection"].append(d[0] - f.at)
            # The switch this verdict caused: a route change away from the master within
            # route_update_delay of it (none if the node was not on the master anyway).
            delay = cfg.route_update_delay
            sw = None
            for r in routes:
                if r[1] == node and r[2] == T_MASTER and d[0] <= r[0] <= d[0] + delay + 1e-9:
                    sw = r
                    break
            if sw is None:
                continue
            out["failover"].append(sw[0] - f.at)
            if f.until is None or f.until >= end:
                continue
            # The failback: the route change back to the master caused by the master's first
            # ONLINE verdict after the fault ended (none under sticky failback).
            online = None
            for (at, n, m, to, _s) in tr:
                if n == node and m == MASTER and to == ONLINE and at >= f.until and at >= sw[0]:
                    online = at
                    break
            if online is None:
                continue
            for r in routes:
                if r[1] == node and r[3] == T_MASTER and online <= r[0] <= online + delay + 1e-9:
                    out["failback"].append(r[0] - f.until)
                    break
    for (at, n, m, to, sent) in tr:
        if m == MASTER and to == OFFLINE and master_fault_at(cfg.faults, sent, end) is None:
            out["false"] += 1
    return out


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------

def nearest_rank(sorted_xs, p):
    n = len(sorted_xs)
    k = max(1, math.ceil(p * n))
    return sorted_xs[min(k, n) - 1]


def summary(xs):
    if not xs:
        return {k: None for k in ("min", "p50", "p90", "p99", "p999", "max", "mean")} | {"count": 0}
    s = sorted(xs)
    return {
        "count": len(s),
        "min": s[0],
        "p50": nearest_rank(s, 0.5),
        "p90": nearest_rank(s, 0.9),
        "p99": nearest_rank(s, 0.99),
        "p999": nearest_rank(s, 0.999),
        "max": s[-1],
        "mean": sum(s) / len(s),
    }


def run_trials(cfg, n, seed):
    det, fo, fb = [], [], []
    false_total, missed, pairs = 0, 0, 0
    traffic = {}
    for i in range(n):
        t = Trial(cfg, random.Random(seed * 1000003 + i)).run()
        a = analyse(cfg, t)
        det += a["detection"]
        fo += a["failover"]
        fb += a["failback"]
        false_total += a["false"]
        missed += a["missed"]
        pairs += a["pairs"]
        if t.counters is not None:
            for k, v in t.counters.items():
                traffic.setdefault(k, []).append(v)
    free_h = master_fault_free_time(cfg.faults, cfg.duration) * n / 3600.0
    report = {
        "trials": n,
        "seed": seed,
        "detection_latency_s": summary(det),
        "failover_latency_s": summary(fo),
        "failback_latency_s": summary(fb),
        "false_failovers_per_hour": (false_total / free_h) if free_h > 0 else None,
        "missed_fault_rate": (missed / pairs) if pairs else None,
    }
    if cfg.traffic is not None:
        report["traffic"] = {
            k: {"mean": sum(v) / len(v), "p99": nearest_rank(sorted(v), 0.99)}
            for k, v in traffic.items()
        }
    samples = {"detection_latency_s": det, "failover_latency_s": fo, "failback_latency_s": fb,
               "false_failovers": false_total, "missed_faults": missed, "fault_node_pairs": pairs}
    return report, samples


def print_text(name, rep):
    print(f"{name}: {rep['trials']} trials, seed {rep['seed']}")
    for key in ("detection_latency_s", "failover_latency_s", "failback_latency_s"):
        s = rep[key]
        if s["count"] == 0:
            print(f"  {key:22s} (no samples)")
            continue
        print(f"  {key:22s} n={s['count']:<6d} min={s['min']:.3f} p50={s['p50']:.3f} "
              f"p90={s['p90']:.3f} p99={s['p99']:.3f} p999={s['p999']:.3f} max={s['max']:.3f} "
              f"mean={s['mean']:.3f}")
    print(f"  false_failovers_per_hour {rep['false_failovers_per_hour']}")
    print(f"  missed_fault_rate        {rep['missed_fault_rate']}")
    for k, v in rep.get("traffic", {}).items():
        print(f"  traffic.{k:14s} mean={v['mean']:.1f} p99={v['p99']}")


# --------------------------------------------------------------------------------------------
# Self-test against spec/model.md section 8
# --------------------------------------------------------------------------------------------

def self_test(trials=500):
    D, T, F, r = 5.0, 3.0, 3, 0.001
    cases = [
        # (fault, schedule, lower, upper)
        ("crash", "after_completion", (F - 1) * (D + r) + r, F * (D + r) + r),
        ("host_down", "after_completion", F * T + (F - 1) * D, F * T + F * D + r),
        ("crash", "fixed_rate", (F - 1) * D + r, F * D + r),
        ("host_down", "fixed_rate", (F - 1) * D + T, F * D + T),
    ]
    eps = 1e-6
    ok = True
    for fault, sched, lo, hi in cases:
        cfg = Config()
        cfg.delay, cfg.timeout, cfg.fall, cfg.rise = D, T, F, 3
        cfg.rtt_fixed = r
        cfg.schedule = sched
        cfg.faults = [Fault(MASTER, fault, 60.0, 180.0)]
        rep, smp = run_trials(cfg, trials, seed=1)
        xs = smp["detection_latency_s"]
        width = hi - lo
        mean = sum(xs) / len(xs)
        # Uniform phase: mean at the midpoint within 4 standard errors, extremes near the ends.
        se = width / math.sqrt(12) / math.sqrt(len(xs))
        checks = [
            ("one failover per trial", len(xs) == trials),
            ("no false failover", smp["false_failovers"] == 0),
            ("one failback per trial", len(smp["failback_latency_s"]) == trials),
            (f"min {min(xs):.4f} >= {lo:.4f}", min(xs) >= lo - eps),
            (f"max {max(xs):.4f} <= {hi:.4f}", max(xs) <= hi + eps),
            (f"min near the lower bound", min(xs) - lo < 0.05 * width),
            (f"max near the upper bound", hi - max(xs) < 0.05 * width),
            (f"mean {mean:.4f} ~ midpoint {(lo + hi) / 2:.4f}", abs(mean - (lo + hi) / 2) < 4 * se),
        ]
        for what, good in checks:
            print(f"  [{'ok' if good else 'FAIL'}] {fault:9s} {sched:16s} {what}")
            ok = ok and good
    print("self-test:", "passed" if ok else "FAILED")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", nargs="?")
    ap.add_argument("-n", "--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--format", choices=("json", "text"), default="text")
    ap.add_argument("--samples-out", help="write the raw latency samples (JSON) to this file")
    ap.add_argument("--self-test", action="store_true",
                    help="check the closed forms of spec/model.md section 8 (500 trials each)")
    a = ap.parse_args(argv)
    if a.self_test:
        return 0 if self_test() else 1
    if not a.scenario:
        ap.error("a SCENARIO is required (or --self-test)")
    cfg = load_scenario(a.scenario)
    seed = a.seed if a.seed is not None else (cfg.seed if cfg.seed is not None else 0)
    t0 = time.perf_counter()
    rep, smp = run_trials(cfg, a.trials, seed)
    wall = time.perf_counter() - t0
    if a.samples_out:
        with open(a.samples_out, "w") as fh:
            json.dump(smp | {"wall_s": wall}, fh)
    if a.format == "json":
        print(json.dumps(rep, indent=2))
    else:
        print_text(cfg.name, rep)
        print(f"  wall {wall:.2f}s ({a.trials / wall:.0f} trials/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
