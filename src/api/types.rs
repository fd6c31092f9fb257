//! Request types of `POST /v3/{project_id}/elb/master-slave-pools`, one struct per API object.
//!
//! Field names are the API's own (see `spec/api.md`); `Option` marks a field the request may leave
//! out. Enumerated strings stay `String` here on purpose: the reader keeps what the user wrote so
//! the validator can name a bad value exactly; [`crate::api::validate`] checks them and the typed
//! accessors below (`protocol()`, ...) are only meaningful on a body that validated.

/// `{"pool": CreateMasterSlavePoolOption}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateRequest {
    pub pool: PoolOption,
}

/// CreateMasterSlavePoolOption.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolOption {
    pub lb_algorithm: String,
    pub protocol: String,
    /// `type` in JSON.
    pub pool_type: Option<String>,
    pub members: Vec<MemberOption>,
    pub healthmonitor: HealthMonitorOption,
    pub listener_id: Option<String>,
    pub loadbalancer_id: Option<String>,
    pub vpc_id: Option<String>,
    pub ip_version: Option<String>,
    pub session_persistence: Option<SessionPersistenceOption>,
    pub any_port_enable: Option<bool>,
    pub connection_drain: Option<ConnectionDrain>,
    pub quic_cid_hash_strategy: Option<QuicCidHashStrategy>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub project_id: Option<String>,
    pub enterprise_project_id: Option<String>,
    pub public_border_group: Option<String>,
}

/// CreatePoolSessionPersistenceOption.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionPersistenceOption {
    /// `type` in JSON.
    pub persistence_type: String,
    pub cookie_name: Option<String>,
    /// Minutes.
    pub persistence_timeout: Option<i64>,
}

/// CreateMasterSlaveMemberOption.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberOption {
    pub address: String,
    pub role: String,
    pub protocol_port: Option<i64>,
    pub subnet_cidr_id: Option<String>,
    pub admin_state_up: Option<bool>,
    pub name: Option<String>,
}

/// CreateMasterSlaveHealthMonitorOption.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthMonitorOption {
    /// `type` in JSON.
    pub monitor_type: String,
    /// Seconds.
    pub delay: i64,
    /// Seconds.
    pub timeout: i64,
    pub max_retries: i64,
    pub max_retries_down: Option<i64>,
    pub monitor_port: Option<i64>,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub domain_name: Option<String>,
    pub expected_codes: Option<String>,
    pub name: Option<String>,
}

/// ConnectionDrain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionDrain {
    pub enable: bool,
    /// Seconds; required when `enable` is true.
    pub timeout: Option<i64>,
}

/// QuicCidHashStrategy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuicCidHashStrategy {
    /// Bytes of the destination CID that are hashed, default 3.
    pub len: Option<i64>,
    /// Where in the destination CID those bytes start, default 1.
    pub offset: Option<i64>,
}
