#!/usr/bin/env python3
"""Side-by-side comparison of elbsim with the SimPy reference model (elbsim_ref.py).

For each scenario: runs `$ELBSIM trials SCENARIO -n N --seed S --format json` (or, when the
binary has no `trials` command, a loop of `$ELBSIM run SCENARIO --seed K --format json` for
K = S .. S+N-1) and `python3 elbsim_ref.py SCENARIO -n N --seed S --format json`, times both
(wall clock), and prints per latency metric the p50/p90/p99/max/mean of both models, the speed
ratio (reference seconds per trial / elbsim seconds per trial) and both trials/s.

Sampling-error check (stated simply): for p50, p90, p99 and the mean, the standard error of the
reference's estimate is taken from a bootstrap of the reference samples (B resamples); elbsim's
standard error is assumed to be the same scaled by sqrt(n_ref / n_elbsim) (both models are
supposed to draw from one distribution, that is the null hypothesis). A difference is flagged
`<<` when |elbsim - ref| > 3 * sqrt(se_ref^2 + se_elbsim^2) + 2 ms (the 2 ms absorb ns-integer
vs float time). The sample count per trial (failovers, failbacks) is compared the same way with
a Poisson error, and so are false failovers. Traffic counters (mean and p99) are flagged when they
differ by more than 5% + 1 (a heuristic: the counters' variances are not reported). `max` and `p999` are shown but not tested (extremes
have no usable standard error at these sizes).

Usage (from the repository root):
    python3 benches/reference/compare.py [SCENARIO ...] [-n 2000] [--n-elbsim 100000] [--seed 1]
ELBSIM=/work/target-ref/release/elbsim overrides the binary (default target/release/elbsim).
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import elbsim_ref  # noqa: E402

METRICS = ("detection_latency_s", "failover_latency_s", "failback_latency_s")
STATS = ("p50", "p90", "p99", "p999", "max", "mean")
TESTED = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "mean": None}
FLOOR_S = 0.002
Z = 3.0


def has_trials(binary):
    try:
        r = subprocess.run([binary, "trials", "--help"], capture_output=True, timeout=30)
    except OSError as e:
        sys.exit(f"cannot run {binary}: {e}")
    return r.returncode == 0


def run_elbsim(binary, scenario, n, seed, use_trials, pairs_per_trial):
    """(report dict like `elbsim trials`, raw samples or None, wall seconds)."""
    if use_trials:
        t0 = time.perf_counter()
        r = subprocess.run([binary, "trials", scenario, "-n", str(n), "--seed", str(seed),
                            "--format", "json"], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"elbsim trials failed on {scenario}: {r.stderr.strip()}")
        return json.loads(r.stdout), None, wall
    samples = {m: [] for m in METRICS}
    false_ff, missed, pairs = 0, 0, 0
    traffic = {}
    t0 = time.perf_counter()
    for k in range(seed, seed + n):
        r = subprocess.run([binary, "run", scenario, "--seed", str(k), "--format", "json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"elbsim run failed on {scenario} seed {k}: {r.stderr.strip()}")
        d = json.loads(r.stdout)
        for f in d["failovers"]:
            samples["detection_latency_s"].append(f["detection_latency_s"])
            if f.get("failover_latency_s") is not None:
                samples["failover_latency_s"].append(f["failover_latency_s"])
        for b in d["failbacks"]:
            samples["failback_latency_s"].append(b["failback_latency_s"])
        false_ff += d["false_failovers"]
        missed += d["missed_faults"]
        pairs += pairs_per_trial
        for key, v in (d.get("traffic") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                traffic.setdefault(key, []).append(v)
    wall = time.perf_counter() - t0
    rep = {"trials": n, "seed": seed}
    for m in METRICS:
        rep[m] = elbsim_ref.summary(samples[m])
    rep["false_failovers_count"] = false_ff
    rep["missed_fault_rate"] = (missed / pairs) if pairs else None
    if traffic:
        rep["traffic"] = {k: {"mean": sum(v) / len(v),
                              "p99": elbsim_ref.nearest_rank(sorted(v), 0.99)}
                          for k, v in traffic.items()}
    return rep, samples, wall


def run_reference(scenario, n, seed):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
        path = tf.name
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, os.path.join(HERE, "elbsim_ref.py"), scenario,
                        "-n", str(n), "--seed", str(seed), "--format", "json",
                        "--samples-out", path], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"reference failed on {scenario}: {r.stderr.strip()}")
    with open(path) as fh:
        samples = json.load(fh)
    os.unlink(path)
    return json.loads(r.stdout), samples, wall


def bootstrap_se(xs, B, rng):
    """Bootstrap standard errors of the tested statistics of `xs`."""
    n = len(xs)
    if n < 2:
        return {k: float("inf") for k in TESTED}
    est = {k: [] for k in TESTED}
    for _ in range(B):
        s = sorted(rng.choices(xs, k=n))
        for k, p in TESTED.items():
            est[k].append(sum(s) / n if p is None else elbsim_ref.nearest_rank(s, p))
    out = {}
    for k, v in est.items():
        m = sum(v) / B
        out[k] = math.sqrt(sum((x - m) ** 2 for x in v) / (B - 1))
    return out


def fmt(x):
    return "-" if x is None else f"{x:9.3f}"


def compare_one(binary, scenario, n_ref, n_elb, seed, use_trials, B):
    cfg = elbsim_ref.load_scenario(scenario)
    pairs_per_trial = cfg.lb_nodes * sum(1 for f in cfg.faults if f.member == elbsim_ref.MASTER)
    elb, elb_samples, elb_wall = run_elbsim(binary, scenario, n_elb, seed, use_trials,
                                            pairs_per_trial)
    ref, ref_samples, ref_wall = run_reference(scenario, n_ref, seed)
    rng = random.Random(12345)
    flags = 0
    mode = "trials" if use_trials else "run loop (one process per trial)"
    print(f"\n=== {scenario}: {cfg.name}")
    print(f"    reference n={n_ref}, elbsim n={n_elb} via {mode}, seed {seed}")
    print(f"    {'metric':20s} {'stat':5s} {'reference':>9s} {'elbsim':>9s} {'diff':>9s} "
          f"{'tol':>8s}")
    for m in METRICS:
        rs, es = ref[m], elb[m]
        rc, ec = rs["count"], es["count"]
        # Samples per trial: Poisson error on both counts.
        rr, er = rc / n_ref, ec / n_elb
        tol_c = Z * math.sqrt(max(rc, 1) / n_ref ** 2 + max(ec, 1) / n_elb ** 2)
        bad_c = abs(rr - er) > tol_c
        flags += bad_c
        print(f"    {m:20s} {'n/tr':5s} {rr:9.3f} {er:9.3f} {er - rr:+9.3f} {tol_c:8.3f}"
              f"{'  <<' if bad_c else ''}")
        if rc == 0 or ec == 0:
            continue
        se = bootstrap_se(ref_samples[m], B, rng)
        for st in STATS:
            a, b = rs[st], es[st]
            line = f"    {'':20s} {st:5s} {fmt(a)} {fmt(b)}"
            if a is not None and b is not None:
                line += f" {b - a:+9.3f}"
                if st in TESTED:
                    s_ref = se[st]
                    s_elb = s_ref * math.sqrt(rc / ec)
                    tol = Z * math.sqrt(s_ref ** 2 + s_elb ** 2) + FLOOR_S
                    bad = abs(b - a) > tol
                    flags += bad
                    line += f" {tol:8.3f}{'  <<' if bad else ''}"
            print(line)
    # False failovers (Poisson), missed faults.
    free_h = elbsim_ref.master_fault_free_time(cfg.faults, cfg.duration) / 3600.0
    r_ff = ref["false_failovers_per_hour"]
    if "false_failovers_per_hour" in elb:
        e_ff = elb["false_failovers_per_hour"]
    else:
        e_ff = elb["false_failovers_count"] / (free_h * n_elb) if free_h > 0 else None
    if r_ff is not None and e_ff is not None and free_h > 0:
        rc, ec = r_ff * free_h * n_ref, e_ff * free_h * n_elb
        tol = Z * math.sqrt(max(rc, 1) / (free_h * n_ref) ** 2 + max(ec, 1) / (free_h * n_elb) ** 2)
        bad = abs(e_ff - r_ff) > tol
        flags += bad
        print(f"    {'false_failovers/h':20s} {'':5s} {r_ff:9.3f} {e_ff:9.3f} {e_ff - r_ff:+9.3f} "
              f"{tol:8.3f}{'  <<' if bad else ''}")
    print(f"    {'missed_fault_rate':20s} {'':5s} {fmt(ref['missed_fault_rate'])} "
          f"{fmt(elb['missed_fault_rate'])}")
    for k, v in (ref.get("traffic") or {}).items():
        ev = (elb.get("traffic") or {}).get(k)
        if isinstance(ev, dict) and ev.get("mean") is not None:
            d = ev["mean"] - v["mean"]
            tol = 0.05 * max(abs(v["mean"]), 1.0) + 1.0
            bad = abs(d) > tol
            flags += bad
            print(f"    traffic.{k:12s} {'mean':5s} {v['mean']:9.1f} {ev['mean']:9.1f} {d:+9.1f} "
                  f"{tol:8.1f}{'  <<' if bad else ''}")
            if ev.get("p99") is not None:
                d = ev["p99"] - v["p99"]
                tol = 0.05 * max(abs(v["p99"]), 1.0) + 1.0
                bad = abs(d) > tol
                flags += bad
                print(f"    {'':20s} {'p99':5s} {v['p99']:9.1f} {ev['p99']:9.1f} {d:+9.1f} "
                      f"{tol:8.1f}{'  <<' if bad else ''}")
    ref_tps, elb_tps = n_ref / ref_wall, n_elb / elb_wall
    print(f"    speed: reference {ref_wall:.2f}s ({ref_tps:.0f} trials/s), elbsim {elb_wall:.2f}s "
          f"({elb_tps:.0f} trials/s); reference/elbsim time per trial = {elb_tps / ref_tps:.1f}x")
    print(f"    {flags} difference(s) beyond sampling error")
    return flags


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("-n", type=int, default=2000, help="reference trials (default 2000)")
    ap.add_argument("--n-elbsim", type=int, default=None, help="elbsim trials (default: -n)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bootstrap", type=int, default=300, help="bootstrap resamples (300)")
    ap.add_argument("--force-run-loop", action="store_true",
                    help="use the `elbsim run` loop even when `trials` exists")
    a = ap.parse_args()
    binary = os.environ.get("ELBSIM", "target/release/elbsim")
    scen = a.scenarios
    if not scen:
        defaults = ["scenarios/crash.toml", "scenarios/host-down.toml",
                    "scenarios/seed-example.toml"]
        scen = [s for s in defaults if os.path.exists(s)] or ["scenarios/bodies/seed-example.json"]
    use_trials = has_trials(binary) and not a.force_run_loop
    if not use_trials:
        print(f"note: {binary} has no `trials` command (or --force-run-loop): looping `run` over "
              f"seeds; elbsim's time then includes one process start per trial")
    n_elb = a.n_elbsim or a.n
    total = 0
    for s in scen:
        total += compare_one(binary, s, a.n, n_elb, a.seed, use_trials, a.bootstrap)
    print(f"\n{total} flagged difference(s) over {len(scen)} scenario(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
