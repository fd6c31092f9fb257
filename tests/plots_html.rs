//! `--plot` and `--html` through the binary: each SVG parses as XML and names its series and
//! axes; each HTML page is self-contained (no URL loaded) and, where a headless Chromium is
//! installed, renders.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn elbsim(args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("elbsim")
        .unwrap()
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every `<text>` of an SVG, after checking that it parses as XML with an `<svg>` root.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the plot is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

fn assert_has(texts: &[String], want: &[&str]) {
    for w in want {
        assert!(
            texts.iter().any(|t| t.contains(w)),
            "no text {w:?} in the SVG: {texts:?}"
        );
    }
}

/// Runs a command with `--plot` and `--html` into a temporary directory; gives both files.
fn plot_and_html(args: &[&str]) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("p.svg");
    let html = dir.path().join("p.html");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--plot",
        svg.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let (code, err) = elbsim(&all);
    assert_eq!(code, 0, "{err}");
    (
        std::fs::read_to_string(&svg).unwrap(),
        std::fs::read_to_string(&html).unwrap(),
        dir,
    )
}

/// No `src` or `href` that loads anything from the network, no script, and the plot inline.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "<script",
        "@import",
        "url(",
    ] {
        assert!(!lower.contains(bad), "the page loads something: {bad}");
    }
    assert!(lower.contains("<svg"), "no inline plot");
    assert!(lower.contains("reproduce"), "no reproduce command");
}

/// Opens the page in headless Chromium when one is installed; else says it skipped.
fn renders_in_a_browser(html_path: &Path, name: &str) {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new("which")
                .arg(b)
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(browser) = browser else {
        println!("skipped: no chromium installed, {name} not opened in a browser");
        return;
    };
    let shot: PathBuf = html_path.with_extension("png");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,1400",
            &format!("file://{}", html_path.display()),
        ])
        .output()
        .unwrap();
    assert!(
        shot.exists() && std::fs::metadata(&shot).unwrap().len() > 10_000,
        "{name} did not render: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_timeline() {
    let (svg, html, dir) = plot_and_html(&["run", "scenarios/traffic-crash.toml"]);
    let t = svg_texts(&svg);
    assert_has(
        &t,
        &[
            "simulated time (s)",
            "LB node: lane",
            "node 0 master",
            "node 0 slave",
            "node 0 route",
            "node 0 clients",
            "faults",
            "master crash",
            "ONLINE",
            "OFFLINE",
            "route: master",
            "route: slave",
            "clients failing",
            "failures",
        ],
    );
    assert_self_contained(&html);
    assert!(html.contains("elbsim run scenarios/traffic-crash.toml --seed 7"));
    let p = dir.path().join("p.html");
    renders_in_a_browser(&p, "the run page");
    // One node lane group per LB node.
    let (svg, _, _) = plot_and_html(&["run", "scenarios/four-nodes.toml"]);
    assert_has(&svg_texts(&svg), &["node 3 route", "master host_down"]);
}

#[test]
fn trials_cdf() {
    let (svg, html, dir) = plot_and_html(&["trials", "scenarios/crash.toml", "-n", "200"]);
    let t = svg_texts(&svg);
    assert_has(
        &t,
        &[
            "latency (s)",
            "fraction of samples at or below (CDF)",
            "detection latency",
            "failover latency",
            "failback latency",
            // crash, D = 5 s, F = 3, r = 1 ms: [10.003, 15.004] (docs/model.md).
            "closed-form detection window [10.003, 15.004] s",
        ],
    );
    // Three data lines besides the legend's samples and the axes.
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let long_lines = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .filter(|n| {
            n.attribute("points")
                .is_some_and(|p| p.split(' ').count() > 100)
        })
        .count();
    assert!(long_lines >= 3, "{long_lines} CDF lines");
    assert_self_contained(&html);
    renders_in_a_browser(&dir.path().join("p.html"), "the trials page");
    // host_down: F*T + (F-1)*D .. F*T + F*D + r = [19, 24.001].
    let (svg, _, _) = plot_and_html(&["trials", "scenarios/host-down.toml", "-n", "20"]);
    assert_has(
        &svg_texts(&svg),
        &["closed-form detection window [19.000, 24.001] s"],
    );
}

#[test]
fn tune_pareto() {
    let (svg, html, dir) = plot_and_html(&[
        "tune",
        "scenarios/noisy-network.toml",
        "-n",
        "10",
        "--delay",
        "2..4",
        "--timeout",
        "1",
        "--max-retries-down",
        "2,3",
        "--max-false-per-day",
        "200",
    ]);
    let t = svg_texts(&svg);
    assert_has(
        &t,
        &[
            "false failovers per day (all LB nodes)",
            "p99 failover latency (s)",
            "Pareto front",
            "recommended",
            "point meeting the constraints",
        ],
    );
    assert_self_contained(&html);
    renders_in_a_browser(&dir.path().join("p.html"), "the tune page");
}

#[test]
fn plots_are_byte_identical_for_any_jobs() {
    let a = plot_and_html(&["trials", "scenarios/crash.toml", "-n", "100", "-j", "1"]);
    let b = plot_and_html(&["trials", "scenarios/crash.toml", "-n", "100", "-j", "2"]);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
}
