//! Sub-millisecond deadlines on tokio, for the live driver's timers and the probes' timeouts.
//!
//! tokio's timer wheel ticks in whole milliseconds and rounds a deadline up to the next tick, so
//! a plain `sleep_until` or `timeout_at` fires up to 1 ms of wall clock late, which the time
//! scale magnifies (1 ms is 60 ms of scenario time at 0.0167). A probe of a silent member ends
//! at its timeout, once per probe cycle, so that lateness would add up over the cycles before a
//! fault ends (30 cycles of a hung member are 1.8 s at 0.0167) and shift the live probe phase
//! away from the simulator's. Here the wheel is used until [`SPIN_WINDOW`] before the deadline,
//! and the task then yields to the runtime until the instant (the other tasks keep running), at
//! a cost of at most that much CPU per deadline.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How long before a deadline the wait stops sleeping on the timer wheel and polls instead.
pub const SPIN_WINDOW: Duration = Duration::from_micros(1500);

/// Sleeps until `at` with sub-millisecond precision (module docs).
pub async fn precise_sleep_until(at: Instant) {
    if let Some(early) = at.checked_sub(SPIN_WINDOW) {
        if early > Instant::now() {
            tokio::time::sleep_until(early).await;
        }
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

/// The deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// `tokio::time::timeout_at` with the precision of [`precise_sleep_until`]. The future wins a
/// tie: what finished by the deadline counts.
pub async fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Result<F::Output, Elapsed> {
    tokio::select! {
        biased;
        out = fut => Ok(out),
        _ = precise_sleep_until(deadline) => Err(Elapsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deadlines_are_kept_within_a_fraction_of_a_millisecond() {
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let at = Instant::now() + Duration::from_micros(2300);
            precise_sleep_until(at).await;
            worst = worst.max(Instant::now() - at);
        }
        // Loose for a loaded machine; the wheel alone is late by up to a whole millisecond.
        assert!(worst < Duration::from_millis(20), "{worst:?}");
        let never = std::future::pending::<()>();
        assert_eq!(
            timeout_at(Instant::now() + Duration::from_millis(2), never).await,
            Err(Elapsed)
        );
        assert_eq!(timeout_at(Instant::now(), async { 7 }).await, Ok(7));
    }
}
