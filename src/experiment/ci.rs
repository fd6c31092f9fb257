//! Confidence intervals for what `trials` reports.
//!
//! **Percentiles** get a distribution-free interval from order statistics (Conover,
//! *Practical Nonparametric Statistics*, 3rd ed., 1999, §3.2; Hahn & Meeker, *Statistical
//! Intervals*, 1991, §5.2): if X(1) <= ... <= X(n) are the sorted samples and ξ is the true
//! q-quantile, the number of samples below ξ is Binomial(n, q), so
//! P(X(r) <= ξ <= X(s)) >= B(s-1) - B(r-1), B the binomial CDF. We take the largest r with
//! B(r-1) <= α/2 and the smallest s with B(s-1) >= 1-α/2: each side misses with probability at
//! most α/2, for any continuous distribution, without assuming a shape. When no such r exists
//! (n too small: even X(1) is above ξ too often) the interval has no lower bound, and likewise
//! no upper bound when no s <= n exists; such a side is `null` in JSON and `-` in text, and the
//! report warns. An upper bound for p99.9 needs n >= 3688 (1 - 0.999^n >= 0.975); for p99,
//! n >= 368.
//!
//! The samples themselves are not kept, only an HdrHistogram of them (3 significant digits), so
//! X(r) is known to lie in its bucket; the interval takes the bucket's outer edge on each side,
//! which keeps the coverage at least the stated one (the interval can only widen, by 0.1%).
//!
//! **Rates of rare events** (false failovers per hour, missed faults) get an interval too, and an
//! upper bound when nothing was seen: Garwood's Poisson interval for counts over exposure time
//! ([`crate::experiment::rare::poisson_ci95`], which for 0 events gives -ln(0.025) = 3.69 events,
//! the two-sided form of the "rule of three"), and for a proportion k of n the Wilson score
//! interval (Brown, Cai & DasGupta, *Statistical Science* 16(2), 2001), whose upper bound for
//! k = 0 is about 3.8/n.

/// The confidence level of every interval in the reports.
pub const LEVEL: f64 = 0.95;

/// The percentiles reported, as (JSON key, quantile).
pub const QUANTILES: [(&str, f64); 4] =
    [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)];

/// A confidence interval `[lo, hi]`; a side is `None` when the sample is too small for it.
pub type Interval = [Option<f64>; 2];

/// The order statistics (1-based ranks) that bound a quantile, and the exact coverage of the
/// interval between them (for continuous data).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranks {
    pub lower: Option<u64>,
    pub upper: Option<u64>,
    /// P(X(lower) <= ξ <= X(upper)), a missing side counting as unbounded.
    pub coverage: f64,
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection, so the series is used where it converges well.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut a = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// ln P(Bin(n, q) = k).
fn ln_binom_pmf(n: u64, k: u64, q: f64) -> f64 {
    let (n, k) = (n as f64, k as f64);
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
        + k * q.ln()
        + (n - k) * (1.0 - q).ln()
}

/// The ranks of the `level` (two-sided) order-statistic interval of quantile `q` from `n`
/// samples. Sums the binomial pmf only over mean ± 40 standard deviations (beyond which the
/// terms are below 1e-300), so it costs O(sqrt(n)), not O(n), for millions of trials.
pub fn quantile_ranks(n: u64, q: f64, level: f64) -> Ranks {
    let none = Ranks {
        lower: None,
        upper: None,
        coverage: 1.0,
    };
    if n == 0 || !(0.0..1.0).contains(&q) || q <= 0.0 {
        return none;
    }
    let tail = (1.0 - level) / 2.0;
    let mean = n as f64 * q;
    let sd = (n as f64 * q * (1.0 - q)).sqrt();
    let first = (mean - 40.0 * sd - 1.0).floor().max(0.0) as u64;
    let last = ((mean + 40.0 * sd + 1.0).ceil() as u64).min(n);
    // B(k) for k in first..=last; B(first - 1) is negligibly small.
    let mut cdf = 0.0f64;
    let mut b_lower = 0.0; // B(r - 1) for the chosen r
    let mut b_upper = None; // B(s - 1) for the chosen s
    let mut lower = None;
    let mut upper = None;
    for k in first..=last {
        cdf += ln_binom_pmf(n, k, q).exp();
        // X(k+1) is a lower bound while B(k) <= tail.
        if cdf <= tail && k < n {
            lower = Some(k + 1);
            b_lower = cdf;
        }
        if upper.is_none() && cdf >= 1.0 - tail && k < n {
            upper = Some(k + 1);
            b_upper = Some(cdf.min(1.0));
        }
        if upper.is_some() {
            break;
        }
    }
    Ranks {
        lower,
        upper,
        coverage: b_upper.unwrap_or(1.0) - if lower.is_some() { b_lower } else { 0.0 },
    }
}

/// The smallest number of samples for which quantile `q` has both bounds at `level`.
pub fn samples_for_both_bounds(q: f64, level: f64) -> u64 {
    let tail = (1.0 - level) / 2.0;
    // Upper bound exists iff P(all n samples below ξ) = q^n <= tail; lower iff (1-q)^n <= tail.
    let need = |p: f64| (tail.ln() / p.ln()).ceil() as u64;
    need(q).max(need(1.0 - q))
}

/// The Wilson score interval of a proportion `k / n` at 95% (None without trials).
pub fn wilson95(k: u64, n: u64) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    // At k = 0 (k = n) the bound is 0 (1) exactly; rounding would leave 1e-19.
    let lo = if k == 0.0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some([lo, hi])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for k in 1..30u32 {
            f *= k as f64;
            assert!((ln_gamma(k as f64 + 1.0) - f.ln()).abs() < 1e-9, "{k}");
        }
    }

    #[test]
    fn median_of_small_samples() {
        // n = 5: B(0) = 1/32 > 0.025, so the median has no 95% interval at all.
        let r = quantile_ranks(5, 0.5, 0.95);
        assert_eq!((r.lower, r.upper), (None, None));
        // n = 6: [X(1), X(6)], coverage 1 - 2/64 (Conover's table A3).
        let r = quantile_ranks(6, 0.5, 0.95);
        assert_eq!((r.lower, r.upper), (Some(1), Some(6)));
        assert!((r.coverage - (1.0 - 2.0 / 64.0)).abs() < 1e-12);
        // n = 100: the textbook ranks 40 and 61.
        let r = quantile_ranks(100, 0.5, 0.95);
        assert_eq!((r.lower, r.upper), (Some(40), Some(61)));
        assert!(r.coverage >= 0.95);
    }

    #[test]
    fn tail_quantiles_need_many_samples() {
        assert_eq!(quantile_ranks(1000, 0.999, 0.95).upper, None);
        assert!(quantile_ranks(3688, 0.999, 0.95).upper.is_some());
        assert_eq!(quantile_ranks(3687, 0.999, 0.95).upper, None);
        assert_eq!(samples_for_both_bounds(0.999, 0.95), 3688);
        assert_eq!(samples_for_both_bounds(0.99, 0.95), 368);
        assert_eq!(samples_for_both_bounds(0.5, 0.95), 6);
        // Large n costs little and stays near the normal approximation.
        let r = quantile_ranks(10_000_000, 0.99, 0.95);
        let (lo, hi) = (r.lower.unwrap() as f64, r.upper.unwrap() as f64);
        let sd = (1e7f64 * 0.99 * 0.01).sqrt();
        assert!((9_900_000.0 - lo - 1.96 * sd).abs() < 3.0, "{lo}");
        assert!((hi - 9_900_000.0 - 1.96 * sd).abs() < 3.0, "{hi}");
    }

    #[test]
    fn wilson_bounds_zero_counts() {
        let [lo, hi] = wilson95(0, 1000).unwrap();
        assert_eq!(lo, 0.0);
        assert!(hi > 3.0 / 1000.0 && hi < 4.0 / 1000.0, "{hi}");
        assert_eq!(wilson95(0, 0), None);
    }
}
