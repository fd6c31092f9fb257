//! The percentile confidence intervals of `trials` cover the true quantile at their stated rate:
//! synthetic samples from a known distribution (exponential, so the true quantile is
//! -mean * ln(1 - q)), many seeds, through the same `LatencyStats` the trials use.

use elbsim::experiment::ci::{quantile_ranks, LEVEL};
use elbsim::experiment::stats::LatencyStats;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn percentile_intervals_cover_the_true_quantile_at_their_rate() {
    const N: u64 = 400;
    const REPS: u64 = 1000;
    let mean_s: f64 = 5.0;
    let qs: [f64; 3] = [0.5, 0.9, 0.99];
    let mut covered = [0u64; 3];
    for seed in 0..REPS {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut st = LatencyStats::default();
        for _ in 0..N {
            let u = rng.gen::<f64>();
            st.record_ns((-mean_s * (1.0 - u).ln() * 1e9) as u64);
        }
        for (i, &q) in qs.iter().enumerate() {
            let truth = -mean_s * (1.0 - q).ln();
            let [lo, hi] = st.quantile_ci(q);
            let (lo, hi) = (lo.expect("both bounds at n=400"), hi.expect("both bounds"));
            covered[i] += u64::from(lo <= truth && truth <= hi);
        }
    }
    for (i, &q) in qs.iter().enumerate() {
        // The exact coverage of the chosen order statistics (at least LEVEL), and the binomial
        // spread of REPS repetitions around it.
        let nominal = quantile_ranks(N, q, LEVEL).coverage;
        assert!(nominal >= LEVEL, "q={q}: nominal {nominal}");
        let rate = covered[i] as f64 / REPS as f64;
        println!("q = {q}: stated coverage {nominal:.4}, covered {rate:.3} of {REPS} seeds");
        let sd = (nominal * (1.0 - nominal) / REPS as f64).sqrt();
        assert!(
            rate >= nominal - 4.0 * sd,
            "q={q}: covered {rate}, stated {nominal}"
        );
        // Histogram buckets widen the interval by at most 0.1%: barely more coverage.
        assert!(
            rate <= nominal + 4.0 * sd + 0.01,
            "q={q}: covered {rate}, stated {nominal}: far too wide"
        );
    }
}

#[test]
fn small_samples_have_open_sides() {
    let mut st = LatencyStats::default();
    for i in 1..=500u64 {
        st.record_ns(i * 1_000_000);
    }
    let [lo, hi] = st.quantile_ci(0.999);
    assert!(lo.is_some() && hi.is_none(), "{lo:?} {hi:?}");
    let [lo, hi] = st.quantile_ci(0.5);
    assert!(lo.unwrap() <= 0.25 && hi.unwrap() >= 0.25);
}
