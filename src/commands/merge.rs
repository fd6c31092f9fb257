//! `elbsim merge SHARD...`: the shards of one `trials` or `tune` run (`--shard K/N`) combined
//! into the report the unsharded run prints, byte for byte (see `crate::experiment::shard`).
//!
//! This module reads and checks the files and merges their accumulators; the binary then re-reads
//! the command line the shards recorded and renders the report with the command's own code, the
//! figures taken from the merge instead of a simulation.

use crate::experiment::shard::{self, ShardData, ShardFile};
use crate::experiment::trials::Accum;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The message when the scenario on disk is not the one the shards ran.
pub const CHANGED: &str = "error: merge: the scenario (or a flag that changes it) is not the one \
                           the shards ran: its fingerprint differs; merge next to the same files";

/// The merged figures.
#[derive(Debug, Clone)]
pub enum Merged {
    Trials(Box<Accum>),
    Tune(BTreeMap<u64, Accum>),
}

/// Shards merged, with what is needed to render their report.
#[derive(Debug, Clone)]
pub struct MergeInput {
    /// `trials` or `tune`.
    pub command: String,
    /// The command's arguments, as the shards recorded them.
    pub args: Vec<String>,
    pub fingerprint: String,
    pub data: Merged,
}

/// Reads, checks and merges shard files.
pub fn read_shards(paths: &[PathBuf]) -> Result<MergeInput, String> {
    let mut files = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p)
            .map_err(|e| format!("error: merge: cannot read {}: {e}", p.display()))?;
        let f: ShardFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "error: merge: {} is not a shard file (written by `trials` or `tune` with --shard): {e}",
                p.display()
            )
        })?;
        files.push(f);
    }
    let files = shard::check_cover(files).map_err(|e| format!("error: {e}"))?;
    let first = &files[0];
    let data = match first.data {
        ShardData::Trials(_) => {
            let mut acc = Accum::default();
            for f in &files {
                let ShardData::Trials(s) = &f.data else {
                    return Err("error: merge: trials and tune shards mixed".into());
                };
                let a = Accum::from_state(s).map_err(|e| format!("error: merge: {e}"))?;
                let want = f.range[1] - f.range[0];
                if a.trials() != want {
                    return Err(format!(
                        "error: merge: shard {}/{} holds {} trials, its range {want}",
                        f.shard.k,
                        f.shard.n,
                        a.trials()
                    ));
                }
                acc.merge(&a);
            }
            Merged::Trials(Box::new(acc))
        }
        ShardData::Tune(_) => {
            let mut points = BTreeMap::new();
            for f in &files {
                let ShardData::Tune(list) = &f.data else {
                    return Err("error: merge: trials and tune shards mixed".into());
                };
                for (i, s) in list {
                    if !(f.range[0]..f.range[1]).contains(i) {
                        return Err(format!(
                            "error: merge: shard {}/{} holds point {i}, outside its range",
                            f.shard.k, f.shard.n
                        ));
                    }
                    let a = Accum::from_state(s).map_err(|e| format!("error: merge: {e}"))?;
                    if points.insert(*i, a).is_some() {
                        return Err(format!("error: merge: point {i} given twice"));
                    }
                }
            }
            Merged::Tune(points)
        }
    };
    Ok(MergeInput {
        command: first.command.clone(),
        args: first.args.clone(),
        fingerprint: first.fingerprint.clone(),
        data,
    })
}
