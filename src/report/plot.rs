//! SVG plots (`--plot FILE.svg`, and the pictures of `--html`), drawn with `plotters`' SVG
//! backend: no bitmap, no system fonts (text is written as SVG `<text>`, the viewer picks the
//! font), nothing fetched to view them.
//!
//! * [`timeline_svg`] (`run --plot`): one band of lanes per LB node (the master's and the slave's
//!   status in that node's view, the node's route), the faults on top, and, with traffic, client
//!   failures per second (per bin of a long run): the darker a bin, the more failures, with the
//!   peak rate written at its bin.
//! * [`cdf_svg`] (`trials --plot`): the empirical CDFs of detection, failover and failback
//!   latency, with the closed-form window of [`closed_form_window`] shaded.
//! * [`pareto_svg`] (`tune --plot`): every point by false failovers per day and objective, the
//!   Pareto front joined, the recommended point marked.
//!
//! Every plot is a pure function of its input: the same report gives the same bytes.

use crate::experiment::stats::LatencyStats;
use crate::experiment::tune::{Objective, TuneReport};
use crate::model::health::ProbeSchedule;
use crate::model::probe::{ProbeKind, Reason};
use crate::sim::config::{Rtt, SimConfig};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Pixel size of every plot.
const WIDTH: u32 = 960;

const ONLINE: RGBColor = RGBColor(46, 160, 67);
const OFFLINE: RGBColor = RGBColor(207, 34, 46);
const TO_MASTER: RGBColor = RGBColor(9, 105, 218);
const TO_SLAVE: RGBColor = RGBColor(191, 135, 0);
const TO_NOWHERE: RGBColor = RGBColor(40, 40, 40);
const FAULT: RGBColor = RGBColor(110, 110, 110);
const CLIENTS: RGBColor = RGBColor(130, 80, 223);
const WINDOW: RGBColor = RGBColor(255, 215, 120);

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// A span of one lane: `[start, end)` in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: f64,
    pub end: f64,
    /// What the span is: `ONLINE`/`OFFLINE`, `master`/`slave`/`drop`, a fault kind, a count.
    pub what: String,
    /// How strongly to draw it, 0 to 1 (client failures: the bin's share of the peak).
    pub weight: f64,
}

/// The timeline of one LB node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeLanes {
    pub master: Vec<Span>,
    pub slave: Vec<Span>,
    pub route: Vec<Span>,
    /// Client failure spans (traffic only).
    pub clients: Option<Vec<Span>>,
}

/// What `run --plot` draws.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    pub title: String,
    pub duration_s: f64,
    /// Fault spans, `what` = `"master crash"` etc.
    pub faults: Vec<Span>,
    pub nodes: Vec<NodeLanes>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the plot: {e}")
}

/// The run timeline as SVG.
pub fn timeline_svg(t: &Timeline) -> Result<String, String> {
    // Lanes from the bottom up: per node (last node lowest) clients?, route, slave, master;
    // then the faults lane on top.
    let mut lanes: Vec<(String, Vec<(Span, RGBColor)>)> = Vec::new();
    for (i, n) in t.nodes.iter().enumerate().rev() {
        if let Some(c) = &n.clients {
            lanes.push((
                format!("node {i} clients"),
                c.iter().map(|s| (s.clone(), CLIENTS)).collect(),
            ));
        }
        let route = n
            .route
            .iter()
            .map(|s| {
                let c = match s.what.as_str() {
                    "master" => TO_MASTER,
                    "slave" => TO_SLAVE,
                    _ => TO_NOWHERE,
                };
                (s.clone(), c)
            })
            .collect();
        lanes.push((format!("node {i} route"), route));
        let status = |v: &Vec<Span>| -> Vec<(Span, RGBColor)> {
            v.iter()
                .map(|s| (s.clone(), if s.what == "ONLINE" { ONLINE } else { OFFLINE }))
                .collect()
        };
        lanes.push((format!("node {i} slave"), status(&n.slave)));
        lanes.push((format!("node {i} master"), status(&n.master)));
    }
    lanes.push((
        "faults".to_string(),
        t.faults.iter().map(|s| (s.clone(), FAULT)).collect(),
    ));
    let count = lanes.len() as u32;
    let height = 120 + 26 * count;
    let mut svg = String::new();
    let mut draw = || -> PlotResult {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(&t.title, ("sans-serif", 18))?;
        // The legend gets a column of its own: over the lanes it would hide the end of the run.
        let (plot_area, legend_area) = root.split_horizontally(WIDTH - 190);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(120)
            // A segmented axis of `0..n` has n + 1 segments: `0..n-1` gives exactly n lanes.
            .build_cartesian_2d(
                0f64..t.duration_s.max(1e-9),
                (0u32..count.saturating_sub(1)).into_segmented(),
            )?;
        let names: Vec<String> = lanes.iter().map(|(n, _)| n.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(count as usize)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc("simulated time (s)")
            .y_desc("LB node: lane")
            .draw()?;
        let rect = |lane: u32, s: &Span, c: RGBColor, alpha: f64| {
            Rectangle::new(
                [
                    (s.start, SegmentValue::Exact(lane)),
                    (s.end.max(s.start), SegmentValue::Exact(lane + 1)),
                ],
                c.mix(alpha).filled(),
            )
        };
        // One series per legend entry, in a fixed order, each drawn even when empty so the
        // legend (and tests) always name the same series.
        let series: [(&str, RGBColor); 7] = [
            ("fault", FAULT),
            ("ONLINE", ONLINE),
            ("OFFLINE", OFFLINE),
            ("route: master", TO_MASTER),
            ("route: slave", TO_SLAVE),
            ("route: none (drop)", TO_NOWHERE),
            ("clients failing", CLIENTS),
        ];
        for (_, color) in series {
            let mut rects = Vec::new();
            for (lane, (_, spans)) in lanes.iter().enumerate() {
                for (s, c) in spans {
                    if *c == color {
                        // Client failure bins shade with their count; everything else is solid.
                        rects.push(rect(
                            lane as u32,
                            s,
                            *c,
                            0.15 + 0.7 * s.weight.clamp(0.0, 1.0),
                        ));
                    }
                }
            }
            chart.draw_series(rects)?;
        }
        for (i, (label, color)) in series.iter().enumerate() {
            let y = 40 + 22 * i as i32;
            legend_area.draw(&Rectangle::new([(6, y - 6), (20, y + 6)], color.filled()))?;
            legend_area.draw(&Text::new(*label, (28, y - 7), ("sans-serif", 13)))?;
        }
        // Labels: fault kinds, client failure counts.
        let mut texts = Vec::new();
        for (lane, (_, spans)) in lanes.iter().enumerate() {
            for (s, c) in spans {
                if *c == FAULT || (*c == CLIENTS && s.what.starts_with("peak")) {
                    texts.push(Text::new(
                        s.what.clone(),
                        (s.start, SegmentValue::Exact(lane as u32 + 1)),
                        ("sans-serif", 12).into_font().color(&BLACK),
                    ));
                }
            }
        }
        chart.draw_series(texts)?;
        root.present()?;
        Ok(())
    };
    draw().map_err(err)?;
    Ok(svg)
}

/// The closed-form window of detection latency for the scenario's first fault on the master,
/// from docs/model.md ("Detection latency: closed forms"), under `after_completion` with a
/// round trip r (the fixed one, or the log-normal's median): `None` when no form applies (no
/// master fault, a fault the check cannot see, or a noise-driven one such as `loss`).
pub fn closed_form_window(cfg: &SimConfig) -> Option<(f64, f64)> {
    use crate::model::router::Role;
    use crate::sim::config::FaultKind;
    let fault = cfg.faults.iter().find(|f| f.member == Role::Master)?;
    if matches!(fault.kind, FaultKind::Loss { .. } | FaultKind::Flap { .. }) {
        return None;
    }
    let r = match cfg.network.rtt {
        Rtt::Fixed(d) => d,
        Rtt::LogNormal { median, .. } => median,
    };
    let reason = crate::sim::world::reason_of(&fault.kind, cfg.check.kind, &cfg.judging(), r)?;
    let (d, t, f) = (
        cfg.check.delay.as_secs_f64(),
        cfg.check.timeout.as_secs_f64(),
        f64::from(cfg.check.fall),
    );
    let r = r.as_secs_f64();
    let timed_out = matches!(reason, Reason::ConnectTimeout | Reason::RecvResponseTimeout);
    let (lo, hi) = match (cfg.model.probe_schedule, timed_out) {
        (ProbeSchedule::FixedRate, true) => ((f - 1.0) * d + t, f * d + t),
        (ProbeSchedule::FixedRate, false) => return None,
        (ProbeSchedule::AfterCompletion, true) => (f * t + (f - 1.0) * d, f * t + f * d + r),
        (ProbeSchedule::AfterCompletion, false) if cfg.check.kind == ProbeKind::UdpConnect => {
            ((f - 1.0) * (d + r) + r, (d + t) + (f - 1.0) * (d + r) + r)
        }
        (ProbeSchedule::AfterCompletion, false) => ((f - 1.0) * (d + r) + r, f * (d + r) + r),
    };
    Some((lo, hi))
}

/// The points of an empirical CDF (step function) from a latency distribution, in seconds.
fn cdf_points(s: &LatencyStats) -> Vec<(f64, f64)> {
    let h = s.histogram_us();
    let total = s.count() as f64;
    let mut out = Vec::new();
    if s.count() == 0 {
        return out;
    }
    let mut seen = 0u64;
    let mut prev = 0.0;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        let x = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
        let y = seen as f64 / total;
        out.push((x, prev));
        out.push((x, y));
        prev = y;
    }
    out
}

/// What `trials --plot` draws: one CDF per named distribution, and the closed-form window
/// (detection latency; failover adds `route_update_delay`).
pub fn cdf_svg(
    title: &str,
    series: &[(&str, &LatencyStats)],
    window: Option<(f64, f64)>,
) -> Result<String, String> {
    let colors = [TO_MASTER, OFFLINE, ONLINE, CLIENTS, TO_SLAVE];
    let data: Vec<(&str, Vec<(f64, f64)>)> =
        series.iter().map(|(n, s)| (*n, cdf_points(s))).collect();
    let xmax = data
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .chain(window.map(|w| w.1))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    // Start the axis a little left of the first sample or window edge: the interesting part of
    // a latency CDF is rarely near zero.
    let xmin = data
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .chain(window.map(|w| w.0))
        .fold(f64::INFINITY, f64::min);
    let xmin = if xmin.is_finite() { xmin * 0.9 } else { 0.0 };
    let mut svg = String::new();
    let mut draw = || -> PlotResult {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xmin..xmax, 0f64..1.0)?;
        chart
            .configure_mesh()
            .x_desc("latency (s)")
            .y_desc("fraction of samples at or below (CDF)")
            .draw()?;
        if let Some((lo, hi)) = window {
            chart
                .draw_series([Rectangle::new(
                    [(lo, 0.0), (hi, 1.0)],
                    WINDOW.mix(0.5).filled(),
                )])?
                .label(format!("closed-form detection window [{lo:.3}, {hi:.3}] s"))
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], WINDOW.filled()));
        }
        for (i, (name, pts)) in data.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
                .label(format!("{name} latency"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            // Upper left: where a CDF never is (few samples are short, and y is high).
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(err)?;
    Ok(svg)
}

/// The objective's axis label.
fn objective_label(o: Objective) -> &'static str {
    match o {
        Objective::P99Failover => "p99 failover latency (s)",
        Objective::P50Failover => "p50 failover latency (s)",
        Objective::MeanFailover => "mean failover latency (s)",
        Objective::P99Detection => "p99 detection latency (s)",
        Objective::P99Failback => "p99 failback latency (s)",
        Objective::ClientFailures => "client failures per trial",
        Objective::MeanDetection => "mean detection time T_D (s)",
        Objective::MistakeDuration => "mean mistake duration T_M (s)",
        Objective::MistakeRate => "mistakes per day per member and LB node",
        Objective::Pa => "1 - P_A (query accuracy)",
    }
}

/// What `tune --plot` draws: false failovers per day against the objective for every point
/// with a value, the Pareto front joined, the recommended point marked.
pub fn pareto_svg(title: &str, r: &TuneReport) -> Result<String, String> {
    let pts: Vec<(f64, f64, bool, bool)> = r
        .points
        .iter()
        .filter_map(|p| {
            Some((
                p.false_failovers.per_day,
                p.objective?,
                p.pareto,
                p.feasible,
            ))
        })
        .collect();
    let mut front: Vec<(f64, f64)> = pts.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let best = r
        .best()
        .and_then(|b| Some((b.false_failovers.per_day, b.objective?)));
    let xmax = pts.iter().map(|p| p.0).fold(0.0f64, f64::max).max(1e-3) * 1.08;
    let ymax = pts.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.08;
    let mut svg = String::new();
    let mut draw = || -> PlotResult {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("false failovers per day (all LB nodes)")
            .y_desc(objective_label(r.objective))
            .draw()?;
        chart
            .draw_series(
                pts.iter()
                    .filter(|p| p.3)
                    .map(|p| Circle::new((p.0, p.1), 4, TO_MASTER.filled())),
            )?
            .label("point meeting the constraints")
            .legend(|(x, y)| Circle::new((x + 6, y), 4, TO_MASTER.filled()));
        chart
            .draw_series(
                pts.iter()
                    .filter(|p| !p.3)
                    .map(|p| Circle::new((p.0, p.1), 4, FAULT.mix(0.7).filled())),
            )?
            .label("point breaking a constraint")
            .legend(|(x, y)| Circle::new((x + 6, y), 4, FAULT.filled()));
        chart
            .draw_series(LineSeries::new(
                front.iter().copied(),
                OFFLINE.stroke_width(2),
            ))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], OFFLINE.stroke_width(2)));
        chart
            .draw_series(best.into_iter().map(|(x, y)| {
                EmptyElement::at((x, y))
                    + Circle::new((0, 0), 9, ONLINE.stroke_width(3))
                    + Text::new("recommended", (12, -14), ("sans-serif", 13))
            }))?
            .label("recommended")
            .legend(|(x, y)| Circle::new((x + 6, y), 6, ONLINE.stroke_width(3)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(err)?;
    Ok(svg)
}

/// The timeline of a run: statuses from the report's member transitions, routes from the run
/// log's route changes, faults from the scenario, client failure spans from the traffic report.
pub fn timeline_of(
    cfg: &SimConfig,
    report: &crate::report::run::RunReport,
    routes: &[crate::sim::engine::RouteLog],
) -> Timeline {
    use crate::model::health::Health;
    use crate::model::router::{Role, Target};
    let end = report.covered_s.max(1e-9);
    let name = |h: Health| {
        if h == Health::Online {
            "ONLINE"
        } else {
            "OFFLINE"
        }
    };
    // A zero-width span (one failure) still shows: at least 0.2% of the axis.
    let min_w = end * 0.002;
    let spans = |changes: Vec<(f64, String)>, initial: String| -> Vec<Span> {
        let mut out = Vec::new();
        let (mut at, mut what) = (0.0, initial);
        for (t, w) in changes {
            if t > at {
                out.push(Span {
                    start: at,
                    end: t,
                    what: what.clone(),
                    weight: 1.0,
                });
            }
            at = t;
            what = w;
        }
        if end > at {
            out.push(Span {
                start: at,
                end,
                what,
                weight: 1.0,
            });
        }
        out
    };
    let mut nodes = Vec::new();
    for node in 0..report.lb_nodes {
        let status = |role: Role| -> (Vec<Span>, Health) {
            let Some(m) = report.members.iter().find(|m| m.role == role) else {
                return (Vec::new(), Health::Online);
            };
            let tr: Vec<_> = m.transitions.iter().filter(|t| t.lb_node == node).collect();
            let initial = match tr.first() {
                Some(t) if t.operating_status == Health::Online => Health::Offline,
                Some(_) => Health::Online,
                None => m
                    .final_status
                    .get(node as usize)
                    .copied()
                    .unwrap_or(Health::Online),
            };
            let changes = tr
                .iter()
                .map(|t| (t.at_s, name(t.operating_status).to_string()))
                .collect();
            (spans(changes, name(initial).to_string()), initial)
        };
        let (master, m0) = status(Role::Master);
        let (slave, s0) = status(Role::Slave);
        let mine: Vec<_> = routes.iter().filter(|r| r.lb_node == node).collect();
        let initial = match mine.first() {
            Some(r) => r.from,
            None if m0 == Health::Online => Target::Master,
            None if s0 == Health::Online => Target::Slave,
            None => Target::Drop,
        };
        let route = spans(
            mine.iter()
                .map(|r| (r.at.as_secs_f64(), r.to.as_str().to_string()))
                .collect(),
            initial.as_str().to_string(),
        );
        let clients = report.traffic.as_ref().map(|t| match &t.failure_series {
            Some(series) => {
                let bin = series.bin.as_secs_f64();
                let mine: Vec<(u64, u64)> = series
                    .counts
                    .range((node, 0)..=(node, u64::MAX))
                    .map(|(&(_, b), &n)| (b, n))
                    .collect();
                let peak = mine.iter().map(|&(_, n)| n).max().unwrap_or(0);
                // The first bin at the peak carries the label.
                let peak_bin = mine.iter().find(|&&(_, n)| n == peak).map(|&(b, _)| b);
                mine.iter()
                    .map(|&(b, n)| Span {
                        start: b as f64 * bin,
                        end: (b as f64 + 1.0) * bin,
                        // The peak bin carries the label; the others their count, drawn as
                        // shade only.
                        what: if Some(b) == peak_bin {
                            format!("peak {:.0} failures/s", n as f64 / bin)
                        } else {
                            format!("{n}")
                        },
                        weight: n as f64 / peak.max(1) as f64,
                    })
                    .collect()
            }
            // A report made without the series (from another driver): each fault's span.
            None => t
                .unavailability
                .iter()
                .flat_map(|u| u.nodes.iter().filter(|n| n.lb_node == node))
                .map(|n| Span {
                    start: n.first_failure_s,
                    end: n.last_failure_s.max(n.first_failure_s + min_w),
                    what: format!("peak {} failures", n.failures),
                    weight: 1.0,
                })
                .collect(),
        });
        nodes.push(NodeLanes {
            master,
            slave,
            route,
            clients,
        });
    }
    let faults = cfg
        .faults
        .iter()
        .map(|f| {
            let start = f.at.as_secs_f64().min(end);
            Span {
                start,
                end: f
                    .until
                    .map_or(end, |u| u.as_secs_f64().min(end))
                    .max(start + min_w),
                what: format!("{} {}", f.member.as_str(), f.kind.name()),
                weight: 1.0,
            }
        })
        .collect();
    Timeline {
        title: format!("elbsim run: {} (seed {})", report.name, report.seed),
        duration_s: end,
        faults,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_has_points() {
        let mut s = LatencyStats::default();
        for i in 1..100u64 {
            s.record_ns(i * 100_000_000);
        }
        let p = cdf_points(&s);
        assert!(p.len() > 100, "{}", p.len());
        let svg = cdf_svg("t", &[("failover", &s)], Some((1.0, 2.0))).unwrap();
        assert!(svg.matches("<polyline").count() > 3, "{svg}");
    }
}
