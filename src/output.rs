//! Writing results: every output file is checked before the work starts and written whole or not
//! at all after it.
//!
//! The rules (see `docs/limits.md`):
//!
//! * [`Outputs::check`] runs before the command does any work: each path's directory must exist
//!   and be writable (a temporary file is created and removed there), the path must not be a
//!   directory, and two flags may not name the same file (compared after following symlinks and
//!   canonicalising the directory).
//! * [`Outputs::commit`] writes every file to a temporary in its directory first, then renames
//!   them all into place, so `tune --csv A -o B` never leaves A behind when B fails.
//! * Only a regular file or a new path is replaced by a rename. An existing non-regular file (a
//!   FIFO, `/dev/null`, a terminal) is written into directly: renaming over it would swap a
//!   device node or a pipe for a regular file.
//! * A symlink is followed: the rename goes onto its target, and the link stays.
//! * Temporaries are named `.elbsim-tmp-<tag>-<pid>-<n>` (at most 42 bytes, so a file name near
//!   the 255-byte limit still fits), `<tag>` a hash of the target's name. A run killed mid-write
//!   (SIGKILL) can leave one behind; the next write to the same path removes those whose process
//!   is gone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every temporary file this module creates.
const TMP_PREFIX: &str = ".elbsim-tmp-";
/// Most symlinks followed from one output path (the kernel's own limit is 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why an output cannot be used; `usage` problems (two flags naming one file) exit 2, the rest 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputError {
    pub message: String,
    pub usage: bool,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OutputError {}

/// How a checked output is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dest {
    /// A new path or a regular file: a temporary in `dir`, then a rename onto `target`.
    Replace { target: PathBuf, dir: PathBuf },
    /// An existing non-regular file (FIFO, character device): opened and written in place.
    Direct(PathBuf),
}

/// One output: the flag that named it, the path as given, and how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Output {
    flag: String,
    given: PathBuf,
    dest: Dest,
}

/// The output files of one command, checked; written together by [`Outputs::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    outputs: Vec<Output>,
}

impl Outputs {
    /// Checks every `(flag, path)` before any work: see the module's rules.
    pub fn check(list: &[(&str, &Path)]) -> Result<Outputs, OutputError> {
        let mut outputs: Vec<Output> = Vec::new();
        for &(flag, path) in list {
            let dest = check_one(flag, path)?;
            let key = identity(&dest);
            if let Some(other) = outputs.iter().find(|o| identity(&o.dest) == key) {
                return Err(OutputError {
                    message: format!(
                        "{flag} {} and {} {} name the same file; give each output its own path",
                        path.display(),
                        other.flag,
                        other.given.display()
                    ),
                    usage: true,
                });
            }
            outputs.push(Output {
                flag: flag.to_string(),
                given: path.to_path_buf(),
                dest,
            });
        }
        Ok(Outputs { outputs })
    }

    /// The flags that named the outputs, in the order they were checked (and are committed).
    pub fn flags(&self) -> Vec<&str> {
        self.outputs.iter().map(|o| o.flag.as_str()).collect()
    }

    /// How many outputs were given.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// No output file: everything goes to standard output.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Writes `contents[i]` to the i-th checked output: all temporaries first, then the direct
    /// writes, then every rename, so a failure before the renames leaves no file changed.
    pub fn commit(&self, contents: &[&[u8]]) -> Result<(), OutputError> {
        let fail = |o: &Output, e: std::io::Error| OutputError {
            message: format!(
                "{} {}: cannot write the output: {e}",
                o.flag,
                o.given.display()
            ),
            usage: false,
        };
        let mut temps: Vec<(PathBuf, &Output)> = Vec::new();
        let cleanup = |temps: &[(PathBuf, &Output)]| {
            for (t, _) in temps {
                let _ = std::fs::remove_file(t);
            }
        };
        for (o, bytes) in self.outputs.iter().zip(contents) {
            if let Dest::Replace { target, dir } = &o.dest {
                remove_stale_temps(dir, target);
                match write_temp(dir, target, bytes) {
                    Ok(t) => temps.push((t, o)),
                    Err(e) => {
                        cleanup(&temps);
                        return Err(fail(o, e));
                    }
                }
            }
        }
        for (o, bytes) in self.outputs.iter().zip(contents) {
            if let Dest::Direct(p) = &o.dest {
                let r = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .and_then(|mut f| f.write_all(bytes).and_then(|_| f.flush()));
                if let Err(e) = r {
                    cleanup(&temps);
                    return Err(fail(o, e));
                }
            }
        }
        for (i, (tmp, o)) in temps.iter().enumerate() {
            if let Dest::Replace { target, .. } = &o.dest {
                if let Err(e) = std::fs::rename(tmp, target) {
                    cleanup(&temps[i..]);
                    return Err(fail(o, e));
                }
            }
        }
        Ok(())
    }
}

/// What makes two outputs the same file: the resolved target (directory canonicalised).
fn identity(d: &Dest) -> PathBuf {
    match d {
        Dest::Replace { target, .. } => target.clone(),
        Dest::Direct(p) => std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()),
    }
}

/// Follows `path` through symlinks to the file a write should land on (which may not exist).
fn resolve_symlinks(flag: &str, path: &Path) -> Result<PathBuf, OutputError> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p).map_err(|e| OutputError {
                    message: format!("{flag} {}: cannot read the symlink: {e}", path.display()),
                    usage: false,
                })?;
                p = match p.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(OutputError {
        message: format!(
            "{flag} {}: more than {MAX_SYMLINK_HOPS} symlinks to follow; point it at a file",
            path.display()
        ),
        usage: false,
    })
}

fn check_one(flag: &str, path: &Path) -> Result<Dest, OutputError> {
    let bad = |what: String| OutputError {
        message: format!("{flag} {}: {what}", path.display()),
        usage: false,
    };
    let target = resolve_symlinks(flag, path)?;
    let name = target
        .file_name()
        .ok_or_else(|| bad("is not a file name; give a path such as report.json".into()))?
        .to_owned();
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => {
            return Err(bad(
                "is a directory; give a file path such as DIR/report.json".into(),
            ))
        }
        Ok(m) if !m.is_file() => return Ok(Dest::Direct(target)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad(format!("cannot be used: {e}"))),
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(bad(format!("{} is not a directory", dir.display()))),
        Err(_) => {
            return Err(bad(format!(
                "the directory {} does not exist; create it or write elsewhere",
                dir.display()
            )))
        }
    }
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    // The real test of writability (permissions, read-only mounts, ACLs): create a temporary
    // where the output's will go, and remove it.
    let probe = temp_path(&dir, &name);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Err(bad(format!(
                "cannot write in the directory {}: {e}",
                dir.display()
            )))
        }
    }
    Ok(Dest::Replace {
        target: dir.join(name),
        dir,
    })
}

/// FNV-1a of the target's file name: ties a temporary to the output it was for, in 8 hex digits.
fn tag(name: &std::ffi::OsStr) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// A fresh temporary name for `name` in `dir`: `.elbsim-tmp-<tag>-<pid>-<n>`.
fn temp_path(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    dir.join(format!(
        "{TMP_PREFIX}{}-{}-{}",
        tag(name),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn write_temp(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let name = target.file_name().unwrap_or_default();
    let tmp = temp_path(dir, name);
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match r {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Whether process `pid` still runs. Without `/proc` (not Linux) every process counts as
/// running, so nothing that might be in use is removed.
fn alive(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    !proc_root.join("self").exists() || proc_root.join(pid.to_string()).exists()
}

/// Removes temporaries of ours for `target` left by a process that is gone (killed mid-write).
fn remove_stale_temps(dir: &Path, target: &Path) {
    let Some(name) = target.file_name() else {
        return;
    };
    let prefix = format!("{TMP_PREFIX}{}-", tag(name));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && (pid == std::process::id() || !alive(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` whole or not at all (a checked output of its own).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    Outputs::check(&[("-o", path)])?.commit(&[bytes])
}

/// Writes `text` to standard output; a closed pipe (`| head`) is not an error worth a message.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| anyhow::anyhow!("cannot write to standard output: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_atomically(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert_eq!(names(dir.path()), ["r.json"]);
        let e = write_atomically(&dir.path().join("missing/x.json"), b"x").unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
    }

    #[test]
    fn refuses_directories_and_the_same_file_twice() {
        let dir = tempfile::tempdir().unwrap();
        let e = Outputs::check(&[("-o", dir.path())]).unwrap_err();
        assert!(e.message.contains("is a directory"), "{e}");
        let a = dir.path().join("a.csv");
        let same = dir.path().join(".").join("a.csv");
        let e = Outputs::check(&[("--csv", &a), ("-o", &same)]).unwrap_err();
        assert!(e.usage && e.message.contains("same file"), "{e}");
    }

    #[test]
    fn follows_symlinks_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink("target.txt", &link).unwrap();
        write_atomically(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // A dangling link: the file it names is created.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("created.txt", &dangling).unwrap();
        write_atomically(&dangling, b"x").unwrap();
        assert_eq!(std::fs::read(dir.path().join("created.txt")).unwrap(), b"x");
    }

    #[test]
    fn removes_stale_temporaries_of_the_same_output_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.txt");
        let stale = |name: &str, pid: u32| {
            dir.path()
                .join(format!("{TMP_PREFIX}{}-{pid}-0", tag(name.as_ref())))
        };
        // Pid 0 is never a user process: its temporaries are stale.
        std::fs::write(stale("r.txt", 0), "half").unwrap();
        std::fs::write(stale("other.txt", 0), "half").unwrap();
        write_atomically(&target, b"whole").unwrap();
        assert_eq!(
            names(dir.path()),
            [
                format!("{TMP_PREFIX}{}-0-0", tag("other.txt".as_ref())),
                "r.txt".to_string()
            ]
        );
    }

    #[test]
    fn temporary_names_are_short() {
        let p = temp_path(Path::new(""), std::ffi::OsStr::new(&"x".repeat(255)));
        assert!(p.as_os_str().len() <= 42, "{}", p.display());
    }
}
