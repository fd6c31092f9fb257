//! Scenario time: integer nanoseconds, never floats; shared by every driver of the model.
//!
//! `SimTime` is an instant since the start of the run, `SimDuration` a span. The discrete-event
//! engine (`crate::sim`) advances it event by event; a real-time driver maps its wall clock onto
//! it. `crate::model` uses only these types, so it never learns which driver runs it. Both are `u64`
//! nanoseconds, which covers 584 years: far beyond any scenario, so arithmetic saturates instead
//! of wrapping rather than carrying an error path through the hot loop.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// Nanoseconds per unit, for conversions.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// An instant of simulated time, in nanoseconds since the run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

/// A span of simulated time, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimDuration(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    /// Seconds as a float, for reports only (never for arithmetic inside the engine).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);

    pub const fn from_secs(s: u64) -> SimDuration {
        SimDuration(s.saturating_mul(NANOS_PER_SEC))
    }

    pub const fn from_millis(ms: u64) -> SimDuration {
        SimDuration(ms.saturating_mul(1_000_000))
    }

    /// Seconds as a float, for reports and for drawing random spans.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// Nearest whole nanosecond to `s` seconds; negative or NaN gives zero.
    pub fn from_secs_f64(s: f64) -> SimDuration {
        if s.is_nan() || s <= 0.0 {
            SimDuration::ZERO
        } else if s >= u64::MAX as f64 / NANOS_PER_SEC as f64 {
            SimDuration(u64::MAX)
        } else {
            // Adding one half and truncating rounds a positive value to nearest, without a
            // libm call on this hot path (RTT draws).
            SimDuration((s * NANOS_PER_SEC as f64 + 0.5) as u64)
        }
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl Sub for SimDuration {
    type Output = SimDuration;
    fn sub(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_sub(d.0))
    }
}

impl fmt::Display for SimDuration {
    /// Shortest exact form with a unit: `1.5s`, `250ms`, `3us`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let (div, unit) = if n == 0 {
            (1, "s")
        } else if n.is_multiple_of(NANOS_PER_SEC) || n >= NANOS_PER_SEC {
            (NANOS_PER_SEC, "s")
        } else if n >= 1_000_000 {
            (1_000_000, "ms")
        } else if n >= 1_000 {
            (1_000, "us")
        } else {
            (1, "ns")
        };
        if n.is_multiple_of(div) {
            write!(f, "{}{}", n / div, unit)
        } else {
            let frac = format!("{:0width$}", n % div, width = div.ilog10() as usize);
            write!(f, "{}.{}{}", n / div, frac.trim_end_matches('0'), unit)
        }
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

/// Parses a duration with a unit: `250ms`, `5s`, `1.5s`, `10m`, `2h`, `1d`, `0`.
///
/// Units: ns, us, ms, s, m, h, d. Decimals are exact (integer arithmetic), down to the
/// nanosecond; a finer fraction is an error rather than being rounded silently.
pub fn parse_duration(text: &str) -> Result<SimDuration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(SimDuration::ZERO);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {text:?} has no unit; write it like \"250ms\", \"5s\", \"10m\" (units ns, us, ms, s, m, h, d)"))?;
    let (num, unit) = s.split_at(split);
    let unit_ns: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" | "min" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        other => {
            return Err(format!(
                "duration {text:?} has unknown unit {other:?}; use one of ns, us, ms, s, m, h, d"
            ))
        }
    };
    if num.is_empty() {
        return Err(format!("duration {text:?} has no number before its unit"));
    }
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return Err(format!("duration {text:?} is not a number with a unit"));
    }
    let too_big = || format!("duration {text:?} is too long (the limit is about 584 years)");
    let int: u64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| too_big())?
    };
    let mut total = int.checked_mul(unit_ns).ok_or_else(too_big)?;
    if !frac_part.is_empty() {
        // Exact: frac_digits / 10^k * unit_ns must be a whole number of nanoseconds.
        let k = frac_part.len() as u32;
        let digits: u128 = frac_part.parse().map_err(|_| too_big())?;
        let scale = 10u128
            .checked_pow(k)
            .ok_or_else(|| format!("duration {text:?} has too many decimals"))?;
        let num = digits * unit_ns as u128;
        if !num.is_multiple_of(scale) {
            return Err(format!(
                "duration {text:?} is finer than a nanosecond; use fewer decimals"
            ));
        }
        total = total
            .checked_add((num / scale) as u64)
            .ok_or_else(too_big)?;
    }
    Ok(SimDuration(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(SimDuration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(SimDuration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(SimDuration::from_millis(1500)));
        assert_eq!(parse_duration("10m"), Ok(SimDuration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(SimDuration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(SimDuration::from_secs(86400)));
        assert_eq!(parse_duration("3us"), Ok(SimDuration(3000)));
        assert_eq!(parse_duration("7ns"), Ok(SimDuration(7)));
        assert_eq!(parse_duration("0"), Ok(SimDuration::ZERO));
        assert_eq!(parse_duration(".5s"), Ok(SimDuration::from_millis(500)));
    }

    #[test]
    fn rejects_bad_durations_with_a_reason() {
        for bad in [
            "",
            "5",
            "s",
            "5 parsecs",
            "1.2.3s",
            "0.5ns",
            "99999999999d",
            "-1s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn displays_round_trip() {
        for s in ["250ms", "5s", "1.5s", "3us", "7ns", "0s", "600s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&d.to_string()), Ok(d), "{s}");
        }
        assert_eq!(SimDuration::from_millis(1500).to_string(), "1.5s");
    }
}
