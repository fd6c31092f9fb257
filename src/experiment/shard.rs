//! Shards: one batch of `trials` or one `tune` sweep split over N processes (a Kubernetes
//! Indexed Job, a Slurm job array, or a shell loop), merged back into the report one process
//! would have printed, byte for byte.
//!
//! Shard `K` of `N` (0-based) runs a contiguous part of the work: trials
//! `[K * n / N, (K + 1) * n / N)` of a batch, or points `[K * P / N, (K + 1) * P / N)` of a sweep.
//! Trial `i` draws from streams of `(seed, i)` alone and every figure is accumulated exactly
//! (HdrHistogram counts, integer sums, min and max), so the merged accumulators equal the
//! unsharded ones and the report, computed by the same code from them, is the same.
//!
//! A shard file ([`ShardFile`], JSON) records the command line that made it (minus `--shard`,
//! `-o`, `--format`, `--jobs`, `--csv`), a fingerprint of the loaded scenario, the shard and its
//! exact range, and the accumulators (histograms in HdrHistogram's V2 encoding, base64).
//! `elbsim merge` checks that the files are shards of one run covering every index once, reloads
//! the scenario (it must be at the same path) to render the report, and refuses anything else.
//!
//! Which `K`: `--shard K/N` names it; `--shard N` (or `--shard /N`) takes it from the
//! environment, `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs, 0-based) first, else
//! `SLURM_ARRAY_TASK_ID` (submit the array as `--array=0-(N-1)`). An explicit `K` always wins.

use super::trials::AccumState;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The format tag of a shard file.
pub const FORMAT: &str = "elbsim-shard/1";

/// Environment variables that may give the shard index, first wins.
pub const INDEX_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

/// Shard `k` of `n` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    /// Parses `K/N`, `N` or `/N` (the last two take `K` from `env`, see the module docs).
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let num = |s: &str, what: &str| -> Result<u64, String> {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("--shard: {what} {s:?} is not a whole number"))
        };
        let (k, n) = match text.split_once('/') {
            Some((k, n)) if !k.trim().is_empty() => (Some(num(k, "index")?), num(n, "count")?),
            Some((_, n)) => (None, num(n, "count")?),
            None => (None, num(text, "count")?),
        };
        if n == 0 {
            return Err("--shard: the count N must be at least 1".into());
        }
        let k = match k {
            Some(k) => k,
            None => {
                let found = INDEX_VARS
                    .iter()
                    .find_map(|v| env(v).map(|x| (*v, x)))
                    .ok_or_else(|| {
                        format!(
                            "--shard {text}: no shard index: write --shard K/N, or set {} \
                             (Kubernetes Indexed Job) or {} (Slurm job array)",
                            INDEX_VARS[0], INDEX_VARS[1]
                        )
                    })?;
                num(&found.1, found.0)?
            }
        };
        if k >= n {
            return Err(format!(
                "--shard: index {k} is not below the count {n} (indexes are 0-based)"
            ));
        }
        Ok(Shard { k, n })
    }

    /// This shard's part of `0..total`: contiguous, and the parts of `0..n` tile it.
    pub fn range(&self, total: u64) -> Range<u64> {
        let at = |k: u64| ((k as u128 * total as u128) / self.n as u128) as u64;
        at(self.k)..at(self.k + 1)
    }
}

/// What a shard ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardData {
    /// `trials`: the accumulator of trials `range`.
    Trials(Box<AccumState>),
    /// `tune`: per point of `range`, its index and trials accumulator.
    Tune(Vec<(u64, AccumState)>),
}

/// One shard's result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// [`FORMAT`].
    pub format: String,
    /// `trials` or `tune`.
    pub command: String,
    /// The command's arguments after its name, without `--shard`, `-o`, `--format`, `--jobs`
    /// and `--csv`: every shard of a run has the same.
    pub args: Vec<String>,
    /// FNV-1a of the loaded scenario, so shards of different scenarios are not merged.
    pub fingerprint: String,
    pub shard: Shard,
    /// Trials (trials) or points (tune) in the whole run.
    pub total: u64,
    /// The indexes this shard covered: `[start, end)`.
    pub range: [u64; 2],
    pub data: ShardData,
}

impl ShardFile {
    pub fn to_json(&self) -> String {
        // Plain data: serialising cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// FNV-1a, 64 bits, as 16 hex digits: a stable fingerprint (not for security).
pub fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Arguments that do not change what a run computes, dropped from [`ShardFile::args`]:
/// `(long, short, takes a value)`.
const DROPPED: [(&str, Option<&str>, bool); 6] = [
    ("--step-every-probe", None, false),
    ("--shard", None, true),
    ("--output", Some("-o"), true),
    ("--format", None, true),
    ("--jobs", Some("-j"), true),
    ("--csv", None, true),
];

/// `args` without the [`DROPPED`] ones (in any of their spellings: `--x v`, `--x=v`, `-x v`,
/// `-xv`).
pub fn canonical_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut dropped = false;
        for (long, short, value) in DROPPED {
            if a == long || short.is_some_and(|s| a == s) {
                if value {
                    it.next();
                }
                dropped = true;
            } else if a.starts_with(&format!("{long}="))
                || short.is_some_and(|s| a.starts_with(s) && a.len() > s.len())
            {
                dropped = true;
            }
            if dropped {
                break;
            }
        }
        if !dropped {
            out.push(a.clone());
        }
    }
    out
}

/// Checks that `files` are the shards of one run and cover `0..total` exactly once; returns them
/// in range order.
pub fn check_cover(mut files: Vec<ShardFile>) -> Result<Vec<ShardFile>, String> {
    let Some(first) = files.first().cloned() else {
        return Err("merge: no shard files given".into());
    };
    for f in &files {
        if f.format != FORMAT {
            return Err(format!(
                "merge: not a shard file of this version (format {:?}, expected {FORMAT:?})",
                f.format
            ));
        }
        if f.command != first.command || f.args != first.args {
            return Err(format!(
                "merge: shards of different runs: `{} {}` and `{} {}`",
                first.command,
                first.args.join(" "),
                f.command,
                f.args.join(" ")
            ));
        }
        if f.fingerprint != first.fingerprint {
            return Err("merge: shards of different scenarios (the fingerprints differ)".into());
        }
        if f.total != first.total || f.shard.n != first.shard.n {
            return Err("merge: shards of differently split runs".into());
        }
        if f.shard.range(f.total) != (f.range[0]..f.range[1]) {
            return Err(format!(
                "merge: shard {}/{} claims the range {}..{}, not its own",
                f.shard.k, f.shard.n, f.range[0], f.range[1]
            ));
        }
    }
    files.sort_by_key(|f| f.shard.k);
    let mut at = 0;
    for f in &files {
        if f.range[0] != at {
            return Err(if f.range[0] < at {
                format!("merge: shard {}/{} given twice", f.shard.k, f.shard.n)
            } else {
                format!("merge: shard(s) missing before {}/{}", f.shard.k, f.shard.n)
            });
        }
        at = f.range[1];
    }
    if at != first.total || files.len() as u64 != first.shard.n {
        return Err(format!(
            "merge: {} of {} shards given; every shard is needed",
            files.len(),
            first.shard.n
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_explicit_and_environment_indexes() {
        assert_eq!(Shard::parse("2/7", &no_env), Ok(Shard { k: 2, n: 7 }));
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        let both = |v: &str| {
            Some(match v {
                "JOB_COMPLETION_INDEX" => "1".to_string(),
                _ => "5".to_string(),
            })
        };
        assert_eq!(Shard::parse("7", &k8s), Ok(Shard { k: 3, n: 7 }));
        assert_eq!(Shard::parse("/7", &both), Ok(Shard { k: 1, n: 7 }));
        assert_eq!(Shard::parse("0/7", &both), Ok(Shard { k: 0, n: 7 }));
        for bad in ["7/7", "1/0", "x/3", "3", "", "-1/3", "1/3/4"] {
            assert!(Shard::parse(bad, &no_env).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_tile_the_whole() {
        for total in [0u64, 1, 5, 100, 1001] {
            for n in 1..=9 {
                let mut at = 0;
                for k in 0..n {
                    let r = Shard { k, n }.range(total);
                    assert_eq!(r.start, at);
                    at = r.end;
                }
                assert_eq!(at, total);
            }
        }
    }

    #[test]
    fn canonical_args_drop_what_does_not_change_the_result() {
        let a: Vec<String> = [
            "s.toml",
            "-n",
            "10",
            "--shard",
            "1/3",
            "-o",
            "x",
            "--format=json",
            "-j4",
            "--seed",
            "3",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(canonical_args(&a), ["s.toml", "-n", "10", "--seed", "3"]);
    }
}
