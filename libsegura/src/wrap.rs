//! Programs put behind the launcher by `segura wrap`: the table the launcher reads to know what
//! it stands in front of. `/etc/segura/wrapped`, root-owned, one tab-separated line each:
//! `PATH<TAB>REAL<TAB>CONFIG<TAB>SHA256<TAB>SEGURA`, where PATH is where the launcher now is
//! (the final target of the path the administrator named), REAL where the real program was
//! moved (by dpkg-divert when a package owns it), SHA256 the real program's hash when wrapped
//! and SEGURA the `segura` program the launcher runs to upload a recorded run at once (the
//! launcher itself links no network code).

use std::path::{Path, PathBuf};

/// The table's default place.
pub const WRAPPED_FILE: &str = "/etc/segura/wrapped";

/// One wrapped program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// Where the launcher is (the program's canonical path).
    pub path: PathBuf,
    /// Where the real program is now.
    pub real: PathBuf,
    /// The configuration the launcher reads.
    pub config: PathBuf,
    /// SHA-256 of the real program when it was wrapped (hex).
    pub sha256: String,
    /// The `segura` program that uploads a recorded run.
    pub segura: PathBuf,
}

/// Reads the table (missing: empty).
pub fn read(file: &Path) -> std::io::Result<Vec<Wrapped>> {
    Ok(crate::table::read(file)?
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 5).then(|| Wrapped {
                path: PathBuf::from(f[0]),
                real: PathBuf::from(f[1]),
                config: PathBuf::from(f[2]),
                sha256: f[3].to_string(),
                segura: PathBuf::from(f[4]),
            })
        })
        .collect())
}

/// Writes the table atomically (0644); an empty table removes the file.
pub fn write(file: &Path, entries: &[Wrapped]) -> std::io::Result<()> {
    let lines: Vec<String> = entries
        .iter()
        .map(|w| {
            format!(
                "{}\t{}\t{}\t{}\t{}",
                w.path.display(),
                w.real.display(),
                w.config.display(),
                w.sha256,
                w.segura.display()
            )
        })
        .collect();
    crate::table::write(
        file,
        "Programs behind segura's launcher (`segura wrap`): path, real, config, sha256, segura.",
        &lines,
    )
}

/// The entry for the launcher at `path`.
pub fn lookup(file: &Path, path: &Path) -> Option<Wrapped> {
    read(file).ok()?.into_iter().find(|w| w.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wrapped");
        let w = Wrapped {
            path: "/usr/bin/ping".into(),
            real: "/usr/bin/ping.segura-real".into(),
            config: "/etc/segura/segura.toml".into(),
            sha256: "ab".repeat(32),
            segura: "/usr/local/bin/segura".into(),
        };
        write(&file, std::slice::from_ref(&w)).unwrap();
        assert_eq!(read(&file).unwrap(), vec![w.clone()]);
        assert_eq!(lookup(&file, Path::new("/usr/bin/ping")), Some(w));
        write(&file, &[]).unwrap();
        assert!(!file.exists());
    }
}
