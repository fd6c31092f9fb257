//! The fault layer of one live backend: which faults are active on a member, shared by its
//! server tasks and by whoever injects faults (a test, or the live driver at a fault's time).
//!
//! Design: the active faults live in a [`tokio::sync::watch`] channel. Injecting a fault is a
//! synchronous [`FaultHandle::apply`] that returns an id, ending it is [`FaultHandle::clear`];
//! both bump a generation number. Listener tasks `changed().await` on the channel and rebuild
//! their sockets (crash closes the listening socket, host_down swaps in a black hole); connection
//! and packet handlers read the current [`FaultView`] each time they are about to answer. Each
//! listener acknowledges the generation it has acted on, so [`FaultHandle::settled`] can wait
//! until a fault really is in force on the sockets (tests and the driver stamp times after it).
//!
//! Faults overlap: the view folds every active fault (booleans are "any", `slow` takes the
//! largest latency, `loss` combines as independent drops, `http_status` takes the latest).
//! A `flap` fault owns a small task that toggles its own "down" flag on the period; clearing the
//! fault or cancelling the backend ends that task.
//!
//! Wall-clock units only: [`LiveFault::from_kind`] converts the engine's [`FaultKind`] (simulated
//! time) with a time scale.

use crate::sim::config::FaultKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A fault in wall-clock units (spec/model.md section 3 for what each one means).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LiveFault {
    /// The process is gone, the host up: listeners closed (connects refused, UDP answered with
    /// ICMP port unreachable), open connections reset.
    Crash,
    /// The host is silent: TCP connects time out (a full accept queue drops SYNs), UDP datagrams
    /// are dropped, open connections stall, and the host's echo reachability fails.
    HostDown,
    /// The kernel accepts, the application never answers.
    Hang,
    /// The application answers every HTTP request with this status.
    HttpStatus(u16),
    /// Every application answer is delayed by this much.
    Slow(Duration),
    /// Each connection or datagram (and each echo of the UDP check) is dropped with this
    /// probability.
    Loss(f64),
    /// Only the separate health-check port is closed (the member port keeps serving).
    MonitorPortDown,
    /// TLS handshakes fail: the server writes bytes that are no ServerHello.
    TlsError,
    /// Crashed for `down` (a fraction) of each `period`, from the start of each period.
    Flap { period: Duration, down: f64 },
}

impl LiveFault {
    /// The engine's fault kind with every duration multiplied by `scale` (the live driver runs
    /// scenario time `scale` times faster or slower than the wall clock).
    pub fn from_kind(kind: &FaultKind, scale: f64) -> LiveFault {
        let wall = |nanos: u64| Duration::from_secs_f64(nanos as f64 * scale.max(0.0) / 1e9);
        match *kind {
            FaultKind::Crash => LiveFault::Crash,
            FaultKind::HostDown => LiveFault::HostDown,
            FaultKind::Hang => LiveFault::Hang,
            FaultKind::HttpStatus { status, .. } => LiveFault::HttpStatus(status),
            FaultKind::Slow { latency } => LiveFault::Slow(wall(latency.0)),
            FaultKind::Loss { probability } => LiveFault::Loss(probability),
            FaultKind::MonitorPortDown => LiveFault::MonitorPortDown,
            FaultKind::TlsError => LiveFault::TlsError,
            FaultKind::Flap { period, down } => LiveFault::Flap {
                period: wall(period.0),
                down,
            },
        }
    }

    /// The fault's name as scenarios spell it.
    pub fn name(&self) -> &'static str {
        match self {
            LiveFault::Crash => "crash",
            LiveFault::HostDown => "host_down",
            LiveFault::Hang => "hang",
            LiveFault::HttpStatus(_) => "http_status",
            LiveFault::Slow(_) => "slow",
            LiveFault::Loss(_) => "loss",
            LiveFault::MonitorPortDown => "monitor_port_down",
            LiveFault::TlsError => "tls_error",
            LiveFault::Flap { .. } => "flap",
        }
    }
}

/// Names one applied fault, for [`FaultHandle::clear`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

#[derive(Debug, Clone)]
struct Active {
    id: FaultId,
    fault: LiveFault,
    /// For `flap`: whether this period is in its down part (set by the flap task).
    flap_down: bool,
}

/// The channel's value: every active fault and the generation of the last change.
#[derive(Debug, Clone, Default)]
pub struct FaultState {
    active: Vec<Active>,
    generation: u64,
}

impl FaultState {
    /// Bumped on every apply, clear and flap toggle.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The combined effect of every active fault.
    pub fn view(&self) -> FaultView {
        let mut v = FaultView::default();
        let mut keep = 1.0;
        for a in &self.active {
            match a.fault {
                LiveFault::Crash => v.crashed = true,
                LiveFault::HostDown => v.host_down = true,
                LiveFault::Hang => v.hang = true,
                LiveFault::HttpStatus(s) => v.http_status = Some(s),
                LiveFault::Slow(d) => v.slow = v.slow.max(d),
                LiveFault::Loss(p) => keep *= 1.0 - p.clamp(0.0, 1.0),
                LiveFault::MonitorPortDown => v.monitor_port_down = true,
                LiveFault::TlsError => v.tls_error = true,
                LiveFault::Flap { .. } => v.crashed |= a.flap_down,
            }
        }
        v.loss = 1.0 - keep;
        v
    }
}

/// What the active faults make of the member right now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultView {
    /// `crash`, or a `flap` in its down part.
    pub crashed: bool,
    pub host_down: bool,
    pub hang: bool,
    pub http_status: Option<u16>,
    pub slow: Duration,
    /// Probability that one connection, datagram or echo is dropped.
    pub loss: f64,
    pub monitor_port_down: bool,
    pub tls_error: bool,
}

/// Which of a member's listening sockets a listener task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The member's service port.
    Member,
    /// The separate health-check port (`monitor_port`).
    Monitor,
}

/// What a listener should look like under the current faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerMode {
    /// Bound and serving.
    Open,
    /// No socket: TCP connects get RST, UDP datagrams ICMP port unreachable.
    Closed,
    /// The host is silent: TCP connects time out, datagrams vanish.
    Silent,
}

impl FaultView {
    /// The listener mode for `port`: crash closes every port, monitor_port_down only the check
    /// port; host_down silences everything (and wins: a down host cannot send an RST).
    pub fn mode(&self, port: Port) -> ListenerMode {
        if self.host_down {
            ListenerMode::Silent
        } else if self.crashed || (port == Port::Monitor && self.monitor_port_down) {
            ListenerMode::Closed
        } else {
            ListenerMode::Open
        }
    }
}

struct Inner {
    state: watch::Sender<FaultState>,
    /// One receiver per listener task: the generation it has acted on.
    acks: Mutex<Vec<watch::Receiver<u64>>>,
    rng: Mutex<ChaCha8Rng>,
    next_id: Mutex<u64>,
    /// Cancels the flap tasks with the backend.
    cancel: CancellationToken,
    /// Per flap fault: the token that ends its task.
    flaps: Mutex<Vec<(FaultId, CancellationToken)>>,
}

/// The shared, thread-safe fault state of one member. Cheap to clone.
#[derive(Clone)]
pub struct FaultHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultHandle")
            .field("view", &self.view())
            .finish()
    }
}

impl FaultHandle {
    /// A member with no fault. `seed` drives the `loss` draws (reproducible per member);
    /// `cancel` ends the flap tasks.
    pub fn new(seed: u64, cancel: CancellationToken) -> FaultHandle {
        FaultHandle {
            inner: Arc::new(Inner {
                state: watch::Sender::new(FaultState::default()),
                acks: Mutex::new(Vec::new()),
                rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
                next_id: Mutex::new(0),
                cancel,
                flaps: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Starts a fault now. A `flap` spawns its toggling task on the current tokio runtime (or,
    /// outside one, stays in its up part: nothing can toggle it).
    pub fn apply(&self, fault: LiveFault) -> FaultId {
        let id = {
            let mut n = lock(&self.inner.next_id);
            *n += 1;
            FaultId(*n)
        };
        self.inner.state.send_modify(|s| {
            s.active.push(Active {
                id,
                fault,
                flap_down: false,
            });
            s.generation += 1;
        });
        if let LiveFault::Flap { period, down } = fault {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let token = self.inner.cancel.child_token();
                lock(&self.inner.flaps).push((id, token.clone()));
                rt.spawn(flap_task(self.clone(), id, period, down, token));
            }
        }
        id
    }

    /// Ends a fault; an unknown or already cleared id does nothing.
    pub fn clear(&self, id: FaultId) {
        lock(&self.inner.flaps).retain(|(f, token)| {
            if *f == id {
                token.cancel();
            }
            *f != id
        });
        self.inner.state.send_if_modified(|s| {
            let before = s.active.len();
            s.active.retain(|a| a.id != id);
            let changed = s.active.len() != before;
            if changed {
                s.generation += 1;
            }
            changed
        });
    }

    /// Ends every fault.
    pub fn clear_all(&self) {
        let ids: Vec<FaultId> = self
            .inner
            .state
            .borrow()
            .active
            .iter()
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.clear(id);
        }
    }

    /// The combined effect of the active faults now.
    pub fn view(&self) -> FaultView {
        self.inner.state.borrow().view()
    }

    /// A receiver that wakes on every change (for listener and connection tasks).
    pub fn subscribe(&self) -> watch::Receiver<FaultState> {
        self.inner.state.subscribe()
    }

    /// One draw of the `loss` fault: true when this connection, datagram or echo is dropped.
    pub fn lose(&self) -> bool {
        let p = self.view().loss;
        p > 0.0 && lock(&self.inner.rng).gen::<f64>() < p
    }

    /// Whether the member's host answers an ICMP echo: not while host_down, and not when a
    /// `loss` fault drops the echo. This is how the UDP_CONNECT check's echo step sees the
    /// crate's own backends, whose "hosts" all share 127.0.0.1 (the kernel would answer a real
    /// echo for every one of them; see `live::prober`).
    pub fn host_answers_echo(&self) -> bool {
        !self.view().host_down && !self.lose()
    }

    /// Registers a listener task; it reports the generation it has acted on through the
    /// returned sender.
    pub(crate) fn register_listener(&self) -> watch::Sender<u64> {
        let (tx, rx) = watch::channel(0);
        lock(&self.inner.acks).push(rx);
        tx
    }

    /// Waits (at most `limit`) until every listener task has acted on the latest change;
    /// returns false on time-out. Connection handlers read the view on their next step and need
    /// no acknowledgement.
    pub async fn settled(&self, limit: Duration) -> bool {
        let target = self.inner.state.borrow().generation;
        let acks: Vec<watch::Receiver<u64>> = lock(&self.inner.acks).clone();
        let all = async {
            for mut rx in acks {
                // A listener that has stopped (its sender dropped) acts on nothing any more.
                let _ = rx.wait_for(|g| *g >= target).await;
            }
        };
        tokio::time::timeout(limit, all).await.is_ok()
    }

    /// Sets a flap fault's down flag; false when the fault is no longer active.
    fn set_flap_down(&self, id: FaultId, down: bool) -> bool {
        let mut present = false;
        self.inner.state.send_if_modified(|s| {
            let Some(a) = s.active.iter_mut().find(|a| a.id == id) else {
                return false;
            };
            present = true;
            if a.flap_down == down {
                return false;
            }
            a.flap_down = down;
            s.generation += 1;
            true
        });
        present
    }
}

/// Toggles one flap fault: down for `down` of each `period`, from the start of each period,
/// until the fault is cleared or the backend is cancelled.
async fn flap_task(
    faults: FaultHandle,
    id: FaultId,
    period: Duration,
    down: f64,
    token: CancellationToken,
) {
    // A zero period would spin: one millisecond is the floor.
    let period = period.max(Duration::from_millis(1));
    let down_for = period.mul_f64(down.clamp(0.0, 1.0));
    let up_for = period.saturating_sub(down_for);
    let start = tokio::time::Instant::now();
    let mut k: u32 = 0;
    loop {
        let period_start = start + period * k;
        if !down_for.is_zero() && !faults.set_flap_down(id, true) {
            return;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep_until(period_start + down_for) => {}
        }
        if !up_for.is_zero() && !faults.set_flap_down(id, false) {
            return;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep_until(period_start + period) => {}
        }
        k = k.saturating_add(1);
    }
}

/// Locks a mutex; a poisoned one (a panicking holder) still holds consistent data here, since
/// every critical section is a single assignment or push.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fold_and_clear_by_id() {
        let f = FaultHandle::new(1, CancellationToken::new());
        assert_eq!(f.view(), FaultView::default());
        let a = f.apply(LiveFault::Crash);
        let b = f.apply(LiveFault::Crash);
        let s = f.apply(LiveFault::Slow(Duration::from_millis(5)));
        assert!(f.view().crashed);
        f.clear(a);
        assert!(f.view().crashed, "the second crash still holds");
        f.clear(b);
        assert!(!f.view().crashed);
        assert_eq!(f.view().slow, Duration::from_millis(5));
        f.clear(s);
        f.clear(s);
        assert_eq!(f.view(), FaultView::default());
    }

    #[test]
    fn listener_modes() {
        let v = FaultView {
            monitor_port_down: true,
            ..FaultView::default()
        };
        assert_eq!(v.mode(Port::Member), ListenerMode::Open);
        assert_eq!(v.mode(Port::Monitor), ListenerMode::Closed);
        let v = FaultView {
            host_down: true,
            crashed: true,
            ..FaultView::default()
        };
        assert_eq!(v.mode(Port::Member), ListenerMode::Silent);
    }

    #[test]
    fn loss_combines_and_draws() {
        let f = FaultHandle::new(7, CancellationToken::new());
        assert!(!f.lose());
        f.apply(LiveFault::Loss(0.5));
        f.apply(LiveFault::Loss(0.5));
        assert!((f.view().loss - 0.75).abs() < 1e-12);
        let lost = (0..1000).filter(|_| f.lose()).count();
        assert!((650..850).contains(&lost), "{lost}");
        f.clear_all();
        f.apply(LiveFault::HostDown);
        assert!(!f.host_answers_echo());
    }

    #[test]
    fn from_kind_scales_durations() {
        use crate::sim::time::SimDuration;
        let k = FaultKind::Flap {
            period: SimDuration::from_secs(10),
            down: 0.5,
        };
        assert_eq!(
            LiveFault::from_kind(&k, 0.1),
            LiveFault::Flap {
                period: Duration::from_secs(1),
                down: 0.5
            }
        );
        let k = FaultKind::HttpStatus {
            status: 503,
            expected: false,
        };
        assert_eq!(LiveFault::from_kind(&k, 0.1), LiveFault::HttpStatus(503));
    }

    #[tokio::test(start_paused = true)]
    async fn flap_toggles_on_its_period_and_stops_when_cleared() {
        let f = FaultHandle::new(1, CancellationToken::new());
        let id = f.apply(LiveFault::Flap {
            period: Duration::from_secs(10),
            down: 0.3,
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(f.view().crashed);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!f.view().crashed);
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert!(f.view().crashed);
        f.clear(id);
        assert!(!f.view().crashed);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!f.view().crashed);
    }
}
