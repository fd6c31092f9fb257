//! `--html FILE`: one self-contained page per report, to attach to a ticket or keep as a CI
//! artifact. Everything is inline (CSS in a `<style>`, plots as inline `<svg>`); the page loads
//! nothing (no `src`/`href` to any URL, no script at all), so it opens the same offline, from a
//! mail attachment or a CI artifact store with a strict content policy.

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Plain, readable, printable; light and dark follow the viewer's setting.
const CSS: &str = "
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #59636e; --line: #d1d9e0; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; } }
body { font-family: system-ui, sans-serif; color: var(--fg); background: var(--bg); max-width: 1000px; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.15rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
p.sub { color: var(--muted); margin-top: 0; }
pre { background: rgba(127,127,127,.08); border: 1px solid var(--line); border-radius: 6px; padding: .75rem; overflow-x: auto; font-size: .85rem; }
table.params { border-collapse: collapse; font-size: .9rem; }
table.params th, table.params td { text-align: left; padding: .2rem .8rem .2rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: .9rem; }
";

/// The parts of a page.
#[derive(Debug, Clone, Default)]
pub struct Page<'a> {
    /// e.g. `elbsim trials: Noisy network`.
    pub title: &'a str,
    /// The command line that reproduces the report byte for byte.
    pub reproduce: &'a str,
    /// The parameters used: (name, value).
    pub params: Vec<(String, String)>,
    /// Plots: (caption, SVG text).
    pub plots: Vec<(String, String)>,
    /// The text report.
    pub report: &'a str,
}

/// An SVG as it can sit inside HTML: without an XML declaration or doctype.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// The page.
pub fn page(p: &Page) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str(&format!("<title>{}</title>\n", escape(p.title)));
    o.push_str(&format!("<style>{CSS}</style>\n</head>\n<body>\n"));
    o.push_str(&format!("<h1>{}</h1>\n", escape(p.title)));
    o.push_str(&format!(
        "<p class=\"sub\">elbsim {}: deterministic simulation; the command below gives the same report byte for byte.</p>\n",
        env!("CARGO_PKG_VERSION")
    ));
    o.push_str("<h2>Reproduce</h2>\n");
    o.push_str(&format!(
        "<pre><code>{}</code></pre>\n",
        escape(p.reproduce)
    ));
    if !p.params.is_empty() {
        o.push_str("<h2>Parameters</h2>\n<table class=\"params\">\n");
        for (k, v) in &p.params {
            o.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape(k),
                escape(v)
            ));
        }
        o.push_str("</table>\n");
    }
    if !p.plots.is_empty() {
        o.push_str("<h2>Plots</h2>\n");
        for (caption, svg) in &p.plots {
            o.push_str("<figure>\n");
            o.push_str(inline_svg(svg));
            o.push_str(&format!(
                "\n<figcaption>{}</figcaption>\n</figure>\n",
                escape(caption)
            ));
        }
    }
    o.push_str("<h2>Report</h2>\n");
    o.push_str(&format!("<pre>{}</pre>\n", escape(p.report)));
    o.push_str("</body>\n</html>\n");
    o
}

/// Parameters from `name: value` lines (the context lines above a run report).
/// The `--html` page of a command with one picture: the report, the scenario's context lines
/// as parameters plus `extra`, and the picture with its caption.
pub fn page_with_plot(
    title: &str,
    reproduce: &str,
    context: &[String],
    extra: Vec<(String, String)>,
    caption: &str,
    svg: &str,
    report: &str,
) -> String {
    let mut params = params_from_lines(context);
    params.extend(extra);
    page(&Page {
        title,
        reproduce,
        params,
        plots: vec![(caption.to_string(), svg.to_string())],
        report,
    })
}

pub fn params_from_lines(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (String::new(), l.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_inlines() {
        let html = page(&Page {
            title: "a <b> & 'c'",
            reproduce: "elbsim run x.toml --seed 1",
            params: vec![("pool".into(), "TCP".into())],
            plots: vec![(
                "t".into(),
                "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".into(),
            )],
            report: "x < y",
        });
        assert!(html.contains("<title>a &lt;b&gt; &amp; &#39;c&#39;</title>"));
        assert!(!html.contains("<?xml"));
        assert!(html.contains("<pre>x &lt; y</pre>"));
        assert!(!html.contains("<script"));
    }
}
