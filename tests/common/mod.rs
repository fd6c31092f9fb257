//! Helpers shared by the integration tests that write scenarios of their own.

/// A scenario file: `top` (duration, lb_nodes, [model], [network], faults, [traffic], [limits])
/// above a master/slave pool of protocol `protocol` with a health check of type `check`
/// (delay 5, timeout 3, max_retries 3, max_retries_down 3); `pool_extra` goes into `[pool]`.
pub fn scenario_with(top: &str, protocol: &str, check: &str, pool_extra: &str) -> String {
    format!(
        r#"name = "test"
{top}

[pool]
lb_algorithm = "ROUND_ROBIN"
protocol = "{protocol}"
type = "ip"
{pool_extra}
[pool.healthmonitor]
type = "{check}"
delay = 5
timeout = 3
max_retries = 3
max_retries_down = 3

[[pool.members]]
role = "master"
address = "192.168.0.10"
protocol_port = 80

[[pool.members]]
role = "slave"
address = "192.168.0.11"
protocol_port = 80
"#
    )
}
