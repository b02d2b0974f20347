//! Enrolled users: `segura enroll` makes `segura-shell` a user's login shell and remembers the
//! real one in `/etc/segura/shells` (root-owned, one `user:shell` line each), which the shell
//! entry point reads to know what to run.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where real shells are remembered.
pub const SHELLS_FILE: &str = "/etc/segura/shells";

/// Reads `user:shell` lines.
pub fn read(path: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(u, s)| (u.to_string(), PathBuf::from(s)))
        .collect())
}

/// Writes the list atomically (0644); an empty list removes the file.
pub fn write(path: &Path, entries: &[(String, PathBuf)]) -> std::io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".shells.segura-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    writeln!(
        f,
        "# Real login shells of users enrolled by `segura enroll` (user:shell)."
    )?;
    for (u, s) in entries {
        writeln!(f, "{u}:{}", s.display())?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The real shell of an enrolled user.
pub fn real_shell(path: &Path, user: &str) -> Option<PathBuf> {
    read(path)
        .ok()?
        .into_iter()
        .find(|(u, _)| u == user)
        .map(|(_, s)| s)
}
