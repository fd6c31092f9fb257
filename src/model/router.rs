//! The router of one LB node: where new connections go (spec/model.md section 4).
//!
//! Sans-IO: fed health changes (already delayed by `route_update_delay` by the engine), it answers
//! with the route change, if any. Master while the master is ONLINE, else the slave while the slave
//! is ONLINE, else the all-down policy. `failback` decides whether a recovered master takes the
//! traffic back at once (`preemptive`), only when the slave fails (`sticky`), or once it has stayed
//! ONLINE for a hold-down time (`hold_down`: the router holds the slave until its owner, the
//! [`LbNode`](super::lb_node::LbNode), releases the hold from a timer; keepalived's and many
//! operators' non-preemptive habit).

use super::health::Health;
use serde::{Deserialize, Serialize};

/// A member of the pool by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Master,
    Slave,
}

impl Role {
    pub const BOTH: [Role; 2] = [Role::Master, Role::Slave];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }
}

/// Where new connections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Master,
    Slave,
    /// Nowhere: both members are OFFLINE and `all_down = "drop"`.
    Drop,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Master => "master",
            Target::Slave => "slave",
            Target::Drop => "drop",
        }
    }

    /// Sending to `role`.
    pub fn of(role: Role) -> Target {
        match role {
            Role::Master => Target::Master,
            Role::Slave => Target::Slave,
        }
    }

    pub fn member(self) -> Option<Role> {
        match self {
            Target::Master => Some(Role::Master),
            Target::Slave => Some(Role::Slave),
            Target::Drop => None,
        }
    }
}

/// Both members OFFLINE: drop new connections or fail open to the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllDown {
    Drop,
    Master,
}

/// What happens when the master is ONLINE again while the slave carries the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failback {
    Preemptive,
    Sticky,
    /// Back to the master once it has been ONLINE for `failback_hold_down` without a break (or
    /// at once when the slave fails meanwhile).
    HoldDown,
}

/// A change of route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteChange {
    pub from: Target,
    pub to: Target,
}

/// One LB node's routing state.
#[derive(Debug, Clone, Copy)]
pub struct Router {
    health: [Health; 2],
    target: Target,
    all_down: AllDown,
    failback: Failback,
    /// Under `HoldDown`: the master's hold-down is over, it may take the traffic back.
    hold_released: bool,
}

impl Router {
    pub fn new(master: Health, slave: Health, all_down: AllDown, failback: Failback) -> Self {
        let mut r = Router {
            health: [master, slave],
            target: Target::Drop,
            all_down,
            failback,
            hold_released: false,
        };
        r.target = r.preferred();
        r
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn health(&self, role: Role) -> Health {
        self.health[role.index()]
    }

    fn preferred(&self) -> Target {
        let [m, s] = self.health;
        let holds = match self.failback {
            Failback::Preemptive => false,
            Failback::Sticky => true,
            Failback::HoldDown => !self.hold_released,
        };
        if holds && self.target == Target::Slave && s == Health::Online {
            return Target::Slave;
        }
        match (m, s) {
            (Health::Online, _) => Target::Master,
            (_, Health::Online) => Target::Slave,
            _ => match self.all_down {
                AllDown::Drop => Target::Drop,
                AllDown::Master => Target::Master,
            },
        }
    }

    /// The data plane learns that `role` is now `health`.
    pub fn on_health(&mut self, role: Role, health: Health) -> Option<RouteChange> {
        self.health[role.index()] = health;
        if role == Role::Master && health == Health::Offline {
            // A new hold-down starts at the master's next recovery.
            self.hold_released = false;
        }
        self.reroute()
    }

    /// Under `hold_down`: the master is waiting for its hold-down to end (ONLINE while the
    /// slave carries the traffic).
    pub fn holding(&self) -> bool {
        self.failback == Failback::HoldDown
            && !self.hold_released
            && self.target == Target::Slave
            && self.health[Role::Master.index()] == Health::Online
    }

    /// The master's hold-down is over: it takes the traffic back if it is still ONLINE.
    pub fn release_hold(&mut self) -> Option<RouteChange> {
        self.hold_released = true;
        let change = self.reroute();
        if change.is_some() {
            // The next failover needs a new hold-down.
            self.hold_released = false;
        }
        change
    }

    fn reroute(&mut self) -> Option<RouteChange> {
        let to = self.preferred();
        let from = self.target;
        self.target = to;
        (from != to).then_some(RouteChange { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::*;

    fn router(failback: Failback, all_down: AllDown) -> Router {
        Router::new(Online, Online, all_down, failback)
    }

    #[test]
    fn fails_over_to_the_slave_and_back_preemptively() {
        let mut r = router(Failback::Preemptive, AllDown::Drop);
        assert_eq!(r.target(), Target::Master);
        let c = r.on_health(Role::Master, Offline).unwrap();
        assert_eq!((c.from, c.to), (Target::Master, Target::Slave));
        let c = r.on_health(Role::Master, Online).unwrap();
        assert_eq!((c.from, c.to), (Target::Slave, Target::Master));
    }

    #[test]
    fn sticky_stays_on_the_slave_until_it_fails() {
        let mut r = router(Failback::Sticky, AllDown::Drop);
        r.on_health(Role::Master, Offline);
        assert_eq!(r.on_health(Role::Master, Online), None);
        assert_eq!(r.target(), Target::Slave);
        let c = r.on_health(Role::Slave, Offline).unwrap();
        assert_eq!(c.to, Target::Master);
    }

    #[test]
    fn hold_down_waits_for_its_release_and_a_new_failure_restarts_it() {
        let mut r = router(Failback::HoldDown, AllDown::Drop);
        r.on_health(Role::Master, Offline);
        assert_eq!(r.on_health(Role::Master, Online), None);
        assert!(r.holding());
        let c = r.release_hold().unwrap();
        assert_eq!((c.from, c.to), (Target::Slave, Target::Master));
        assert!(!r.holding());
        // The next failover holds again.
        r.on_health(Role::Master, Offline);
        assert_eq!(r.on_health(Role::Master, Online), None);
        assert!(r.holding());
        // A failure of the master during the hold: a release then finds nothing to do.
        r.on_health(Role::Master, Offline);
        assert!(!r.holding());
        assert_eq!(r.release_hold(), None);
        // The slave failing during a hold sends the traffic to the ONLINE master at once.
        let mut r = router(Failback::HoldDown, AllDown::Drop);
        r.on_health(Role::Master, Offline);
        r.on_health(Role::Master, Online);
        assert_eq!(
            r.on_health(Role::Slave, Offline).unwrap().to,
            Target::Master
        );
    }

    #[test]
    fn all_down_drops_or_fails_open() {
        let mut r = router(Failback::Preemptive, AllDown::Drop);
        r.on_health(Role::Slave, Offline);
        assert_eq!(r.target(), Target::Master);
        assert_eq!(r.on_health(Role::Master, Offline).unwrap().to, Target::Drop);
        let mut r = router(Failback::Preemptive, AllDown::Master);
        r.on_health(Role::Slave, Offline);
        assert_eq!(r.on_health(Role::Master, Offline), None);
        assert_eq!(r.target(), Target::Master);
    }

    #[test]
    fn slave_failure_alone_changes_nothing() {
        let mut r = router(Failback::Preemptive, AllDown::Drop);
        assert_eq!(r.on_health(Role::Slave, Offline), None);
        assert_eq!(r.on_health(Role::Slave, Online), None);
    }
}
