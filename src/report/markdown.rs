//! `--format markdown`: a text report turned into Markdown to paste into a ticket.
//!
//! Built from the text report itself rather than a second renderer per command, so the two
//! can never disagree on a number: the title becomes a heading, each table that
//! [`super::text::table`] drew becomes a pipe table (its columns are found at the header's
//! offsets: `table` pads every cell to its column and puts two spaces between columns, so each
//! column starts at the same character in every row), other indented lines become list items,
//! and `reproduce:` becomes inline code.

/// Where each column of a `table` header starts (char offsets), or None when the line is not
/// a table header (report tables have at least three columns, separated by two or more spaces).
fn column_starts(line: &str) -> Option<Vec<usize>> {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() < 3 || chars[0] != ' ' || chars[1] != ' ' || chars[2] == ' ' {
        return None;
    }
    let mut starts = vec![2];
    let mut i = 2;
    while i < chars.len() {
        if chars[i] == ' ' && i + 1 < chars.len() && chars[i + 1] == ' ' {
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            if j < chars.len() {
                starts.push(j);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    (starts.len() >= 3).then_some(starts)
}

/// Whether `line` fits the columns: two spaces (or the line's end) before each column start.
fn fits(line: &str, starts: &[usize]) -> bool {
    let chars: Vec<char> = line.chars().collect();
    line.starts_with("  ")
        && !line.starts_with("   ")
        && starts
            .iter()
            .skip(1)
            .all(|&s| s > chars.len() || (chars[s - 1] == ' ' && chars[s - 2] == ' '))
}

/// The cells of a row at the given column starts, trimmed, with `|` escaped.
fn cells(line: &str, starts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &a)| {
            let b = starts.get(k + 1).copied().unwrap_or(chars.len());
            let (a, b) = (a.min(chars.len()), b.min(chars.len()));
            chars[a..b]
                .iter()
                .collect::<String>()
                .trim()
                .replace('|', "\\|")
        })
        .collect()
}

/// The Markdown form of a text report.
pub fn from_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if i == 0 && line.starts_with("elbsim ") {
            out.push_str(&format!("## {line}\n\n"));
            i += 1;
            continue;
        }
        if let Some(starts) = column_starts(line) {
            let mut j = i + 1;
            while j < lines.len() && fits(lines[j], &starts) && !lines[j].trim().is_empty() {
                j += 1;
            }
            // A header alone is a table with no rows only if it came from `table`: accept it
            // when at least one row follows, otherwise treat it as a list item.
            if j > i + 1 {
                let header = cells(line, &starts);
                out.push_str(&format!("| {} |\n", header.join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
                for row in &lines[i + 1..j] {
                    out.push_str(&format!("| {} |\n", cells(row, &starts).join(" | ")));
                }
                out.push('\n');
                i = j;
                continue;
            }
        }
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        if let Some(rest) = line.strip_prefix("    ") {
            out.push_str(&format!("  - {}\n", rest.trim()));
            if !lines.get(i + 1).is_some_and(|n| n.starts_with("  ")) {
                out.push('\n');
            }
        } else if let Some(rest) = line.strip_prefix("  ") {
            out.push_str(&format!("- {}\n", rest.trim()));
            if !lines.get(i + 1).is_some_and(|n| n.starts_with("  ")) {
                out.push('\n');
            }
        } else if let Some(cmd) = line.strip_prefix("reproduce: ") {
            out.push_str(&format!("reproduce: `{cmd}`\n\n"));
        } else {
            out.push_str(line);
            out.push_str("\n\n");
        }
        i += 1;
    }
    // One trailing newline.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::text::table;

    #[test]
    fn tables_become_pipe_tables_and_keep_empty_cells() {
        let t = table(
            &["latency", "count", "p99.9"],
            &[
                vec!["persisted back".into(), "3".into(), "".into()],
                vec!["failover".into(), "10".into(), "1.5s".into()],
            ],
        );
        let text =
            format!("elbsim trials: x\n\n{t}\nfalse failovers: 0\nreproduce: elbsim trials x\n");
        let md = from_text(&text);
        assert!(
            md.starts_with("## elbsim trials: x\n\n| latency | count | p99.9 |\n|---|---|---|\n"),
            "{md}"
        );
        assert!(md.contains("| persisted back | 3 |  |\n"), "{md}");
        assert!(md.contains("| failover | 10 | 1.5s |\n"), "{md}");
        assert!(md.contains("reproduce: `elbsim trials x`"), "{md}");
    }

    #[test]
    fn indented_prose_becomes_a_list() {
        let md = from_text("elbsim run: x\nmembers\n  master 1.2.3.4:80  2 status changes\n    node 0 OFFLINE at 1s\n");
        assert!(
            md.contains("- master 1.2.3.4:80  2 status changes\n  - node 0 OFFLINE at 1s\n"),
            "{md}"
        );
    }
}
