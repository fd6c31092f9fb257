//! The real health check against the crate's own live backends, on 127.0.0.1 only: the fault x
//! probe-type matrix of spec/model.md section 3, seen through real sockets. Every probe has a
//! deadline of at most 300 ms, so each test takes well under a second.

use elbsim::api::pool::{ExpectedCodes, HttpMethod};
use elbsim::live::{
    Backend, BackendSpec, CheckSpec, EchoStep, HttpSite, LiveFault, ProbeResult, Prober, Service,
};
use elbsim::model::probe::{ProbeKind, Reason};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_millis(300);

fn spec(kind: ProbeKind, url_path: &str) -> CheckSpec {
    CheckSpec {
        kind,
        timeout: TIMEOUT,
        http_method: HttpMethod::Get,
        url_path: url_path.into(),
        domain_name: None,
        expected_codes: ExpectedCodes::default(),
    }
}

fn site(path: &str) -> HttpSite {
    HttpSite {
        url_path: path.into(),
        host: None,
    }
}

async fn start(service: Service) -> Backend {
    Backend::start(BackendSpec::new(service), CancellationToken::new())
        .await
        .expect("a loopback backend starts")
}

async fn probe(kind: ProbeKind, path: &str, target: SocketAddr) -> ProbeResult {
    Prober::new(spec(kind, path))
        .unwrap()
        .probe(target, &EchoStep::Skip)
        .await
}

fn failed(r: &ProbeResult, reason: Reason) {
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.reason, Some(reason), "{r:?}");
}

fn passed(r: &ProbeResult) {
    assert!(r.ok, "{r:?}");
    assert_eq!(r.reason, None);
}

#[tokio::test]
async fn http_200_passes_and_a_wrong_path_is_a_404_mismatch() {
    let b = start(Service::Http(site("/health"))).await;
    let r = probe(ProbeKind::Http, "/health", b.addr()).await;
    passed(&r);
    assert_eq!(r.http_status, Some(200));
    assert!(r.rtt < TIMEOUT);

    let r = probe(ProbeKind::Http, "/wrong", b.addr()).await;
    failed(&r, Reason::ResponseMismatch);
    assert_eq!(r.http_status, Some(404));
    assert_eq!(r.verdict().status, Some(404));

    // 404 accepted by expected_codes passes.
    let mut s = spec(ProbeKind::Http, "/wrong");
    s.expected_codes = ExpectedCodes::parse("200,400-404").unwrap();
    let r = Prober::new(s)
        .unwrap()
        .probe(b.addr(), &EchoStep::Skip)
        .await;
    passed(&r);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn domain_name_is_the_host_and_a_wrong_host_is_a_404() {
    let b = start(Service::Http(HttpSite {
        url_path: "/".into(),
        host: Some("www.example.com".into()),
    }))
    .await;
    let mut s = spec(ProbeKind::Http, "/");
    let plain = Prober::new(s.clone()).unwrap();
    let r = plain.probe(b.addr(), &EchoStep::Skip).await;
    failed(&r, Reason::ResponseMismatch);
    assert_eq!(r.http_status, Some(404), "the IP as Host is not the site");
    s.domain_name = Some("www.example.com".into());
    s.http_method = HttpMethod::Head;
    let r = Prober::new(s)
        .unwrap()
        .probe(b.addr(), &EchoStep::Skip)
        .await;
    passed(&r);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn a_closed_port_is_refused_for_tcp_and_http() {
    // Bind, learn the port, close: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    failed(
        &probe(ProbeKind::Tcp, "/", port).await,
        Reason::ConnectRefused,
    );
    failed(
        &probe(ProbeKind::Http, "/", port).await,
        Reason::ConnectRefused,
    );
}

#[tokio::test]
async fn crash_refuses_and_recovery_takes_the_same_port_back() {
    let b = start(Service::Http(site("/"))).await;
    let addr = b.addr();
    let id = b.faults().apply(LiveFault::Crash);
    assert!(b.settled().await);
    failed(
        &probe(ProbeKind::Tcp, "/", addr).await,
        Reason::ConnectRefused,
    );
    failed(
        &probe(ProbeKind::Http, "/", addr).await,
        Reason::ConnectRefused,
    );
    b.faults().clear(id);
    assert!(b.settled().await);
    assert_eq!(b.addr(), addr);
    passed(&probe(ProbeKind::Http, "/", addr).await);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn hang_fails_http_at_the_timeout_and_passes_tcp() {
    let b = start(Service::Http(site("/"))).await;
    b.faults().apply(LiveFault::Hang);
    let r = probe(ProbeKind::Http, "/", b.addr()).await;
    failed(&r, Reason::RecvResponseTimeout);
    assert!(r.rtt >= TIMEOUT, "{r:?}");
    passed(&probe(ProbeKind::Tcp, "/", b.addr()).await);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn host_down_times_out_connects_and_recovers() {
    let b = start(Service::Http(site("/"))).await;
    let id = b.faults().apply(LiveFault::HostDown);
    assert!(b.settled().await);
    for kind in [ProbeKind::Tcp, ProbeKind::Http] {
        let r = probe(kind, "/", b.addr()).await;
        failed(&r, Reason::ConnectTimeout);
        assert!(r.rtt >= TIMEOUT, "{r:?}");
    }
    b.faults().clear(id);
    assert!(b.settled().await);
    passed(&probe(ProbeKind::Http, "/", b.addr()).await);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn http_status_fault_is_a_mismatch_with_the_status_seen() {
    let b = start(Service::Http(site("/"))).await;
    b.faults().apply(LiveFault::HttpStatus(503));
    let r = probe(ProbeKind::Http, "/", b.addr()).await;
    failed(&r, Reason::ResponseMismatch);
    assert_eq!(r.http_status, Some(503));
    passed(&probe(ProbeKind::Tcp, "/", b.addr()).await);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn slow_fails_http_only_beyond_the_timeout() {
    let b = start(Service::Http(site("/"))).await;
    let id = b.faults().apply(LiveFault::Slow(Duration::from_millis(50)));
    let r = probe(ProbeKind::Http, "/", b.addr()).await;
    passed(&r);
    assert!(r.rtt >= Duration::from_millis(50), "{r:?}");
    b.faults().clear(id);
    b.faults().apply(LiveFault::Slow(Duration::from_secs(5)));
    failed(
        &probe(ProbeKind::Http, "/", b.addr()).await,
        Reason::RecvResponseTimeout,
    );
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn monitor_port_down_closes_only_the_check_port() {
    let b = Backend::start(
        BackendSpec::new(Service::Http(site("/"))).with_monitor_port(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let check = b.monitor_addr().expect("a check port");
    assert_eq!(b.check_addr(), check);
    passed(&probe(ProbeKind::Http, "/", check).await);
    b.faults().apply(LiveFault::MonitorPortDown);
    assert!(b.settled().await);
    failed(
        &probe(ProbeKind::Http, "/", check).await,
        Reason::ConnectRefused,
    );
    passed(&probe(ProbeKind::Http, "/", b.addr()).await);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn https_passes_and_tls_error_is_a_handshake_error() {
    let b = start(Service::Https(site("/"))).await;
    let r = probe(ProbeKind::Https, "/", b.addr()).await;
    passed(&r);
    assert_eq!(r.http_status, Some(200));
    let id = b.faults().apply(LiveFault::TlsError);
    failed(
        &probe(ProbeKind::Https, "/", b.addr()).await,
        Reason::SslHandshakeError,
    );
    // A TCP check does not see TLS.
    passed(&probe(ProbeKind::Tcp, "/", b.addr()).await);
    b.faults().clear(id);
    b.faults().apply(LiveFault::Hang);
    failed(
        &probe(ProbeKind::Https, "/", b.addr()).await,
        Reason::RecvResponseTimeout,
    );
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn plain_http_against_https_is_a_format_error_or_failure() {
    let b = start(Service::Https(site("/"))).await;
    let r = probe(ProbeKind::Http, "/", b.addr()).await;
    assert!(!r.ok, "{r:?}");
    assert!(
        matches!(
            r.reason,
            Some(Reason::ResponseFormatError | Reason::RecvResponseFailed)
        ),
        "{r:?}"
    );
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn udp_echo_passes_at_the_timeout_and_a_crashed_member_is_refused() {
    let b = start(Service::UdpEcho).await;
    let prober = Prober::new(spec(ProbeKind::UdpConnect, "/")).unwrap();
    let echo = EchoStep::FaultLayer(b.faults().clone());
    let r = prober.probe(b.addr(), &echo).await;
    passed(&r);
    assert!(r.rtt >= TIMEOUT, "silence is judged at the timeout: {r:?}");
    assert!(
        r.note.as_deref().unwrap_or("").contains("answered"),
        "{r:?}"
    );

    let id = b.faults().apply(LiveFault::Crash);
    assert!(b.settled().await);
    let r = prober.probe(b.addr(), &echo).await;
    failed(&r, Reason::ConnectRefused);
    assert!(
        r.rtt < TIMEOUT,
        "port unreachable comes back at once: {r:?}"
    );

    b.faults().clear(id);
    assert!(b.settled().await);
    passed(&prober.probe(b.addr(), &echo).await);

    // host_down: the echo step fails at the timeout.
    let id = b.faults().apply(LiveFault::HostDown);
    let r = prober.probe(b.addr(), &echo).await;
    failed(&r, Reason::ConnectTimeout);
    assert!(r.rtt >= TIMEOUT);
    b.faults().clear(id);

    // hang: silence, so the UDP check passes (spec/model.md section 3).
    b.faults().apply(LiveFault::Hang);
    passed(&prober.probe(b.addr(), &echo).await);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn udp_connect_with_a_real_icmp_echo_on_loopback() {
    let b = start(Service::UdpEcho).await;
    let prober = Prober::new(spec(ProbeKind::UdpConnect, "/")).unwrap();
    // Loopback always answers an echo; without an ICMP socket (not root) the step is skipped
    // and says so. Either way the member passes.
    let r = prober.probe(b.addr(), &EchoStep::Icmp).await;
    passed(&r);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn tcp_echo_backend_echoes_and_crash_resets_open_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = start(Service::TcpEcho).await;
    let mut c = tokio::net::TcpStream::connect(b.addr()).await.unwrap();
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    b.faults().apply(LiveFault::Crash);
    assert!(b.settled().await);
    let got = tokio::time::timeout(Duration::from_secs(1), c.read(&mut buf))
        .await
        .expect("the reset arrives at once");
    assert!(
        matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{got:?}"
    );
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn flap_alternates_refused_and_healthy() {
    let b = start(Service::TcpEcho).await;
    b.faults().apply(LiveFault::Flap {
        period: Duration::from_millis(400),
        down: 0.5,
    });
    // The first half of each period is down.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(b.settled().await);
    failed(
        &probe(ProbeKind::Tcp, "/", b.addr()).await,
        Reason::ConnectRefused,
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(b.settled().await);
    passed(&probe(ProbeKind::Tcp, "/", b.addr()).await);
    assert!(b.shutdown().await);
}

#[tokio::test]
async fn non_loopback_backends_are_refused() {
    let mut spec = BackendSpec::new(Service::TcpEcho);
    spec.ip = "10.0.0.1".parse().unwrap();
    assert!(Backend::start(spec, CancellationToken::new())
        .await
        .is_err());
}

// ---- the `elbsim probe` binary against live backends ----

/// A TCP pool body with the given health monitor fields.
fn body(dir: &std::path::Path, healthmonitor: serde_json::Value) -> std::path::PathBuf {
    let body = serde_json::json!({"pool": {
        "lb_algorithm": "ROUND_ROBIN", "protocol": "TCP", "type": "ip",
        "members": [
            {"role": "master", "address": "192.168.0.10", "protocol_port": 80},
            {"role": "slave", "address": "192.168.0.11", "protocol_port": 80}
        ],
        "healthmonitor": healthmonitor
    }});
    let path = dir.join("body.json");
    std::fs::write(&path, body.to_string()).unwrap();
    path
}

/// Runs the binary off the runtime's thread, so the backends keep serving meanwhile.
async fn elbsim(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("elbsim")
            .unwrap()
            .args(&args)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn probe_command_lists_verdicts_and_the_resulting_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = body(
        dir.path(),
        serde_json::json!({"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 2,
                           "max_retries_down": 2, "url_path": "/health"}),
    );
    let good = start(Service::Http(site("/health"))).await;
    let bad = start(Service::Http(site("/health"))).await;
    bad.faults().apply(LiveFault::Crash);
    assert!(bad.settled().await);
    let started = std::time::Instant::now();
    let out = elbsim(vec![
        "probe".into(),
        path.display().to_string(),
        "--target".into(),
        good.addr().to_string(),
        "--target".into(),
        bad.addr().to_string(),
        "--count".into(),
        "3".into(),
        "--time-scale".into(),
        "0.05".into(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    // Three probes, two delays of 50 ms: far below the unscaled 2 s.
    assert!(started.elapsed() < Duration::from_secs(10));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdicts = report["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 6);
    let of = |addr: SocketAddr| -> Vec<&serde_json::Value> {
        verdicts
            .iter()
            .filter(|v| v["target"] == addr.to_string())
            .collect()
    };
    for v in of(good.addr()) {
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["http_status"], 200);
        assert_eq!(v["status"], "ONLINE");
        assert!(v["rtt_ms"].as_f64().unwrap() < 50.0 + 1000.0);
    }
    let bad_rows = of(bad.addr());
    assert_eq!(bad_rows.len(), 3);
    for v in &bad_rows {
        assert_eq!(v["ok"], false);
        assert_eq!(v["reason"], "CONNECT_REFUSED");
    }
    // max_retries_down 2: the second failure turns the member OFFLINE.
    let statuses: Vec<&str> = bad_rows
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ONLINE", "OFFLINE", "OFFLINE"]);
    let targets = report["targets"].as_array().unwrap();
    let summary = |addr: SocketAddr| {
        targets
            .iter()
            .find(|t| t["target"] == addr.to_string())
            .unwrap()
    };
    assert_eq!(summary(good.addr())["status"], "ONLINE");
    assert_eq!(summary(good.addr())["ok"], 3);
    let b = summary(bad.addr());
    assert_eq!(b["status"], "OFFLINE");
    assert_eq!(b["transitions"][0]["reason"], "CONNECT_REFUSED");
    assert_eq!(report["check"]["type"], "HTTP");
    assert_eq!(report["check"]["url_path"], "/health");
    assert_eq!(report["interrupted"], false);
    good.shutdown().await;
    bad.shutdown().await;
}

#[tokio::test]
async fn probe_command_probes_the_monitor_port() {
    let dir = tempfile::tempdir().unwrap();
    let b = Backend::start(
        BackendSpec::new(Service::TcpEcho).with_monitor_port(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let monitor = b.monitor_addr().unwrap();
    let path = body(
        dir.path(),
        serde_json::json!({"type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1,
                           "max_retries_down": 1, "monitor_port": monitor.port()}),
    );
    // The check port is down: the member port still serves, the check fails.
    b.faults().apply(LiveFault::MonitorPortDown);
    assert!(b.settled().await);
    let out = elbsim(vec![
        "probe".into(),
        path.display().to_string(),
        "--target".into(),
        b.addr().to_string(),
        "--count".into(),
        "2".into(),
        "--time-scale".into(),
        "0.05".into(),
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("checked on {monitor}")), "{text}");
    assert!(text.contains("CONNECT_REFUSED"), "{text}");
    assert!(text.contains("status OFFLINE"), "{text}");
    b.shutdown().await;
}

#[tokio::test]
async fn probe_command_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"pool": {"protocol": "TCP"}}"#).unwrap();
    let out = elbsim(vec![
        "probe".into(),
        bad.display().to_string(),
        "--target".into(),
        "127.0.0.1:9".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("lb_algorithm"));
    // No target, a target that is no ADDR:PORT, a zero count: usage errors.
    for args in [
        vec!["probe", "scenarios/bodies/udp-pool.json"],
        vec![
            "probe",
            "scenarios/bodies/udp-pool.json",
            "--target",
            "localhost",
        ],
        vec![
            "probe",
            "scenarios/bodies/udp-pool.json",
            "--target",
            "127.0.0.1:9",
            "--count",
            "0",
        ],
    ] {
        let out = elbsim(args.into_iter().map(String::from).collect()).await;
        assert_eq!(out.status.code(), Some(2), "{out:?}");
    }
}

#[tokio::test]
async fn probe_command_ctrl_c_prints_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let path = body(
        dir.path(),
        serde_json::json!({"type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1,
                           "max_retries_down": 1}),
    );
    let b = start(Service::TcpEcho).await;
    let addr = b.addr().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("elbsim"))
            .args(["probe", &path.display().to_string(), "--target", &addr])
            .args([
                "--count",
                "1000",
                "--time-scale",
                "0.05",
                "--format",
                "json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(400));
        // The shell's own `kill`, so the test needs no procps on a minimal machine.
        let killed = std::process::Command::new("sh")
            .args(["-c", &format!("kill -INT {}", child.id())])
            .status()
            .unwrap();
        assert!(killed.success());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    let n = report["verdicts"].as_array().unwrap().len();
    assert!((1..1000).contains(&n), "{n} verdicts");
    b.shutdown().await;
}
