//! Enrolled users: `segura enroll` makes `segura-shell` a user's login shell and remembers the
//! real one in `/etc/segura/shells` (root-owned, one `user:shell` line each), which the shell
//! entry point reads to know what to run.

use std::path::{Path, PathBuf};

/// Where real shells are remembered.
pub const SHELLS_FILE: &str = "/etc/segura/shells";

/// Reads `user:shell` lines.
pub fn read(path: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    Ok(crate::table::read(path)?
        .into_iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(u, s)| (u.to_string(), PathBuf::from(s)))
        })
        .collect())
}

/// Writes the list atomically (0644); an empty list removes the file.
pub fn write(path: &Path, entries: &[(String, PathBuf)]) -> std::io::Result<()> {
    let lines: Vec<String> = entries
        .iter()
        .map(|(u, s)| format!("{u}:{}", s.display()))
        .collect();
    crate::table::write(
        path,
        "Real login shells of users enrolled by `segura enroll` (user:shell).",
        &lines,
    )
}

/// The real shell of an enrolled user.
pub fn real_shell(path: &Path, user: &str) -> Option<PathBuf> {
    read(path)
        .ok()?
        .into_iter()
        .find(|(u, _)| u == user)
        .map(|(_, s)| s)
}
