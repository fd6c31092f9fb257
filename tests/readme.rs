//! The README's `console` blocks are real output: each block whose command runs in about a
//! second is run here and compared with the block (standard error, then standard output, as a
//! terminal shows them for these commands). The long batches (`-n 100000`) are left out.
//! Blocks run in README order in a scratch directory holding a link to `scenarios/` and an
//! empty `docs/`, so the files they write (`--csv`, baselines, plots) never touch the checkout.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (command line without `$ `, expected output) of every console block starting with `$ elbsim`.
fn blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut lines = readme.lines();
    while let Some(l) = lines.next() {
        if l.trim() != "```console" {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        if let Some(cmd) = body.first().and_then(|c| c.strip_prefix("$ elbsim")) {
            out.push((cmd.trim().to_string(), body[1..].join("\n")));
        }
    }
    out
}

/// Splits a command line as a shell would for the README's commands: words, and "double
/// quoted" words kept whole.
fn split(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in cmd.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a block is quick enough to run in a test (debug build).
fn quick(cmd: &str) -> bool {
    // `live` and `probe` run on the wall clock: their blocks show one real run, not a fixed
    // output (their own tests check them against the model's windows instead).
    let wall_clock = cmd.starts_with("live") || cmd.starts_with("probe");
    !wall_clock
        && !cmd.contains("-n 100000")
        && !cmd.contains("-n 10000")
        && !cmd.starts_with("tune")
}

#[test]
fn console_blocks_match_the_binary() {
    let all = blocks();
    assert!(all.len() >= 8, "{} console blocks", all.len());
    let mut checked = 0;
    let scratch = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("scenarios"), scratch.path().join("scenarios")).unwrap();
    std::fs::create_dir(scratch.path().join("docs")).unwrap();
    for (cmd, want) in all.iter().filter(|(c, _)| quick(c)) {
        let args = split(cmd);
        let out = assert_cmd::Command::cargo_bin("elbsim")
            .unwrap()
            .current_dir(scratch.path())
            .args(&args)
            .output()
            .unwrap();
        let got = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        // Blocks may end at any line: compare what the block shows.
        let got: Vec<&str> = got.lines().collect();
        let want: Vec<&str> = want.lines().collect();
        for (i, w) in want.iter().enumerate() {
            if w.trim() == "..." {
                break;
            }
            assert_eq!(
                got.get(i).copied().unwrap_or("<missing>"),
                *w,
                "README block `elbsim {cmd}`, line {}",
                i + 2
            );
        }
        checked += 1;
    }
    assert!(checked >= 6, "{checked} blocks checked");
    // The pictures the README shows are the ones its commands draw.
    for svg in ["docs/timeline.svg", "docs/cdf.svg"] {
        assert_eq!(
            std::fs::read(scratch.path().join(svg)).unwrap(),
            std::fs::read(root().join(svg)).unwrap(),
            "{svg} differs from what the README's command draws; run that command again"
        );
    }
}

#[test]
fn splits_quoted_words() {
    assert_eq!(
        split(r#"trials x --assert "a <= 5s" -n 1"#),
        ["trials", "x", "--assert", "a <= 5s", "-n", "1"]
    );
}
