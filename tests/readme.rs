//! The README's `console` blocks are real output: each block whose command runs in about a
//! second is run here and compared with the block (standard error, then standard output, as a
//! terminal shows them for these commands). The long batches (`-n 100000`) are left out.

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

/// Whether a block is quick enough to run in a test (debug build).
fn quick(cmd: &str) -> bool {
    !cmd.contains("-n 100000") && !cmd.contains("-n 10000") && !cmd.starts_with("tune")
}

#[test]
fn console_blocks_match_the_binary() {
    let all = blocks();
    assert!(all.len() >= 8, "{} console blocks", all.len());
    let mut checked = 0;
    for (cmd, want) in all.iter().filter(|(c, _)| quick(c)) {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let out = assert_cmd::Command::cargo_bin("elbsim")
            .unwrap()
            .current_dir(root())
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
}
