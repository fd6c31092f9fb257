//! Client-traffic throughput and memory: one simulated hour at 1,000 new connections per second.
//!
//! Loads `scenarios/traffic-crash.toml` (TCP pool, TCP check, exponential lifetimes of mean 30 s,
//! a master crash) through `elbsim::scenario::load` and scales it: 1,000 connections per second,
//! one hour, the master crashed from 20 min to 30 min. Criterion reports connections per second
//! through `Throughput::Elements(connections)`. On standard error: the wall time of one run, and
//! the peak heap of a 1 h and a 4 h run at the same rate (a counting global allocator wraps the
//! system one), plus the process's `VmHWM` after each. The engine keeps only open connections,
//! so the 4 h peak should match the 1 h peak, not grow fourfold.
//!
//! Run: `cargo bench --bench traffic`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use elbsim::model::router::Role;
use elbsim::sim::config::{Fault, FaultKind, Lifetime, SimConfig};
use elbsim::sim::engine::{run, Counter, RunOptions};
use elbsim::sim::time::{SimDuration, SimTime};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// The system allocator, counting live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const RATE: f64 = 1_000.0;
const HOUR: u64 = 3_600;

/// `scenarios/traffic-crash.toml` at [`RATE`] for `hours`, crash from 20 min to 30 min.
fn config(hours: u64) -> SimConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/traffic-crash.toml");
    let s = elbsim::scenario::load(Some(&path), false).expect("the scenario loads");
    let mut cfg = s.sim;
    cfg.duration = SimDuration::from_secs(hours * HOUR);
    let at = |s: u64| SimTime::ZERO + SimDuration::from_secs(s);
    cfg.faults = vec![Fault {
        member: Role::Master,
        kind: FaultKind::Crash,
        at: at(20 * 60),
        until: Some(at(30 * 60)),
    }];
    let t = cfg.traffic.as_mut().expect("the scenario has [traffic]");
    t.rate_steps = vec![(SimTime::ZERO, RATE)];
    t.lifetime = Lifetime::Exponential(SimDuration::from_secs(30));
    cfg
}

fn opts(seed: u64) -> RunOptions<'static> {
    RunOptions {
        seed,
        ..Default::default()
    }
}

/// `VmHWM` (peak resident set) of this process, as /proc/self/status prints it.
fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

/// Runs `cfg` once; returns (connections, peak_open, events, wall seconds, peak heap bytes
/// above what was live before the run).
fn measured_run(cfg: &SimConfig) -> (u64, u64, u64, f64, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let start = Instant::now();
    let log = black_box(run(cfg, opts(1)));
    let secs = start.elapsed().as_secs_f64();
    let peak = PEAK.load(Relaxed) - base;
    let t = log.traffic.as_ref().expect("traffic log");
    (
        t.counters.get(Counter::Connections),
        t.counters.get(Counter::PeakOpen),
        log.events,
        secs,
        peak,
    )
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn bench_traffic(c: &mut Criterion) {
    let hour = config(1);
    let (conns, peak_open, events, secs, heap_1h) = measured_run(&hour);
    assert!(
        conns > 3_000_000,
        "{conns} connections in an hour at {RATE}/s"
    );
    let hwm_1h = vm_hwm();
    eprintln!(
        "traffic: 1 h at {RATE}/s, mean lifetime 30 s, master crash 20..30 min: \
         {conns} connections, {events} events, peak {peak_open} open; \
         one run {secs:.3}s wall = {:.0} connections/s; peak heap {:.1} MiB; VmHWM {hwm_1h}",
        conns as f64 / secs,
        mib(heap_1h)
    );
    let (conns4, peak_open4, _, secs4, heap_4h) = measured_run(&config(4));
    eprintln!(
        "traffic: 4 h at the same rate: {conns4} connections, peak {peak_open4} open; \
         one run {secs4:.3}s wall; peak heap {:.1} MiB (1 h: {:.1} MiB, ratio {:.2}); VmHWM {}",
        mib(heap_4h),
        mib(heap_1h),
        heap_4h as f64 / heap_1h as f64,
        vm_hwm()
    );

    let mut group = c.benchmark_group("traffic");
    group.throughput(Throughput::Elements(conns));
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(15));
    group.bench_function("one_hour_1000_per_s_crash", |b| {
        b.iter(|| run(black_box(&hour), opts(1)))
    });
    group.finish();
}

criterion_group!(benches, bench_traffic);
criterion_main!(benches);
