//! Administration: enrolling users (segura-shell as their login shell) and adding pam_segura to
//! services' PAM files. Both are reversible byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use libsegura::enroll;
use libsegura::identity;

/// The comment our PAM line is marked with (so it is found again and removed exactly).
const PAM_MARK: &str = "# segura: record sessions of this service (added by `segura setup`)";
const PAM_MARK_NL: &str =
    "# segura: record sessions of this service (added by `segura setup`; final newline added)";

/// Local users (from /etc/passwd) whose primary group is `group`.
fn users_with_primary_group(group: &str) -> Result<Vec<String>> {
    let gid = identity::group_gid(group)?.with_context(|| format!("no such group {group:?}"))?;
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    Ok(passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7 && f[3].parse::<u32>().ok() == Some(gid)).then(|| f[0].to_string())
        })
        .collect())
}

fn usermod_shell(user: &str, shell: &Path) -> Result<()> {
    let st = Command::new("usermod")
        .arg("-s")
        .arg(shell)
        .arg(user)
        .status()
        .context("running usermod")?;
    if !st.success() {
        bail!("usermod -s {} {user} failed ({st})", shell.display());
    }
    Ok(())
}

/// `segura enroll`: makes `shell` (segura-shell) the login shell of these users, remembering
/// their real shells.
pub fn enroll(
    users: &[String],
    group: Option<&str>,
    shell: &Path,
    shells_file: &Path,
) -> Result<i32> {
    let mut names = users.to_vec();
    if let Some(g) = group {
        names.extend(users_with_primary_group(g)?);
    }
    if names.is_empty() {
        bail!("name users, or a group with --group");
    }
    if !shell.is_file() {
        bail!(
            "{} does not exist (install segura-shell first, or give --shell)",
            shell.display()
        );
    }
    let mut entries = enroll::read(shells_file)?;
    for name in names {
        let user = identity::user_by_name(&name)?;
        if user.shell == shell {
            println!("{name}: already enrolled");
            continue;
        }
        entries.retain(|(u, _)| *u != name);
        entries.push((name.clone(), user.shell.clone()));
        // Remember first, then switch: a user is never left without a known real shell.
        enroll::write(shells_file, &entries)?;
        usermod_shell(&name, shell)?;
        println!("{name}: enrolled (real shell {})", user.shell.display());
    }
    Ok(0)
}

/// `segura unenroll`: gives users back the shells they had.
pub fn unenroll(users: &[String], all: bool, shells_file: &Path) -> Result<i32> {
    let mut entries = enroll::read(shells_file)?;
    let names: Vec<String> = if all {
        entries.iter().map(|(u, _)| u.clone()).collect()
    } else {
        users.to_vec()
    };
    for name in names {
        let Some((_, real)) = entries.iter().find(|(u, _)| *u == name).cloned() else {
            eprintln!("segura: {name} is not enrolled");
            continue;
        };
        if identity::user_by_name(&name).is_err() {
            // Deleted since it was enrolled: nothing to restore, only the entry to forget.
            eprintln!("segura: {name} no longer exists; forgetting its entry");
            entries.retain(|(u, _)| *u != name);
            enroll::write(shells_file, &entries)?;
            continue;
        }
        usermod_shell(&name, &real)?;
        entries.retain(|(u, _)| *u != name);
        enroll::write(shells_file, &entries)?;
        println!("{name}: shell restored to {}", real.display());
    }
    Ok(0)
}

/// `segura setup`: adds (or with `remove`, takes out) the pam_segura line in these services'
/// PAM files.
pub fn setup(services: &[String], remove: bool, pam_dir: &Path, line: &str) -> Result<i32> {
    if services.is_empty() {
        bail!("name the services, e.g. --services sshd,login,su,su-l");
    }
    for svc in services {
        if svc.contains('/') || svc.starts_with('.') {
            bail!("not a service name: {svc:?}");
        }
        let path = pam_dir.join(svc);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let new = if remove {
            remove_line(&text)
        } else {
            add_line(&text, line)
        };
        match new {
            None => println!("{}: nothing to do", path.display()),
            Some(new) => {
                write_like(&path, &new)?;
                println!(
                    "{}: {}",
                    path.display(),
                    if remove { "removed" } else { "added" }
                );
            }
        }
    }
    Ok(0)
}

/// The services (file names in `pam_dir`) whose PAM file has the line `segura setup` added.
pub fn services_with_line(pam_dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(pam_dir).with_context(|| format!("reading {}", pam_dir.display()))?
    {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if text.lines().any(|l| l == PAM_MARK || l == PAM_MARK_NL) {
            if let Some(name) = entry.file_name().to_str() {
                found.push(name.to_string());
            }
        }
    }
    found.sort();
    Ok(found)
}

fn add_line(text: &str, line: &str) -> Option<String> {
    if text.lines().any(|l| l == PAM_MARK || l == PAM_MARK_NL) {
        return None;
    }
    let mut out = text.to_string();
    let mark = if out.is_empty() || out.ends_with('\n') {
        PAM_MARK
    } else {
        out.push('\n');
        PAM_MARK_NL
    };
    out.push_str(&format!("{mark}\n{line}\n"));
    Some(out)
}

fn remove_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = lines.iter().position(|l| {
        l.trim_end_matches('\n') == PAM_MARK || l.trim_end_matches('\n') == PAM_MARK_NL
    })?;
    let added_nl = lines[at].trim_end_matches('\n') == PAM_MARK_NL;
    let mut out: String = lines[..at].concat();
    out.push_str(&lines[(at + 2).min(lines.len())..].concat());
    if added_nl && out.ends_with('\n') {
        out.pop();
    }
    Some(out)
}

/// Replaces a file's content atomically, keeping its mode and owner.
fn write_like(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(path)?;
    let tmp = PathBuf::from(format!("{}.segura-tmp", path.display()));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    std::os::unix::fs::chown(&tmp, Some(md.uid()), Some(md.gid()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The name dpkg knows a file by: on a merged-/usr system packages may list `/bin/ping` for
/// what is `/usr/bin/ping` on disk. Returns that name and the owning package.
fn dpkg_name(path: &Path) -> Option<(PathBuf, String)> {
    let mut names = vec![path.to_path_buf()];
    let text = path.display().to_string();
    for (usr, alias) in [
        ("/usr/bin/", "/bin/"),
        ("/usr/sbin/", "/sbin/"),
        ("/usr/lib/", "/lib/"),
    ] {
        if let Some(rest) = text.strip_prefix(usr) {
            names.push(PathBuf::from(format!("{alias}{rest}")));
        }
    }
    names
        .into_iter()
        .find_map(|n| package_owning(&n).map(|pkg| (n, pkg)))
}

/// The Debian package that owns `path`, if any.
fn package_owning(path: &Path) -> Option<String> {
    let out = Command::new("dpkg-query")
        .arg("-S")
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // Diversions are listed first ("diversion by segura from: …"); the owner follows.
    let line = text.lines().find(|l| !l.starts_with("diversion by"))?;
    let pkg = line.split(':').next()?.trim().to_string();
    (!pkg.is_empty()).then_some(pkg)
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `segura wrap PATH`: puts the launcher where the program (the final target of PATH) was; the
/// real file moves aside (dpkg-divert when a package owns it) keeping its inode, owner, mode,
/// setuid bit and file capabilities.
pub fn wrap(
    path: &Path,
    launcher: &Path,
    config: &Path,
    owner: Option<(u32, u32)>,
    table: &Path,
) -> Result<i32> {
    use std::os::unix::fs::PermissionsExt;
    let target = std::fs::canonicalize(path)
        .with_context(|| format!("{} does not exist", path.display()))?;
    let mut entries = libsegura::wrap::read(table)?;
    if entries.iter().any(|w| w.path == target) {
        println!("{}: already wrapped", target.display());
        return Ok(0);
    }
    if !launcher.is_file() {
        bail!(
            "{} does not exist (install segura-launch, or give --launcher)",
            launcher.display()
        );
    }
    let real = PathBuf::from(format!("{}.segura-real", target.display()));
    let sha256 = sha256_file(&target)?;
    // The launcher's copy first, beside the target, so the swap below is two renames.
    let staged = PathBuf::from(format!("{}.segura-launch", target.display()));
    std::fs::copy(launcher, &staged)
        .with_context(|| format!("copying the launcher to {}", staged.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&staged, Some(uid), Some(gid))?;
    }
    std::fs::set_permissions(
        &staged,
        std::fs::Permissions::from_mode(if owner.is_some() { 0o6755 } else { 0o755 }),
    )?;
    match dpkg_name(&target) {
        Some((name, pkg)) => {
            let divert = PathBuf::from(format!("{}.segura-real", name.display()));
            run_ok(
                Command::new("dpkg-divert")
                    .args(["--package", "segura", "--add", "--rename", "--divert"])
                    .arg(&divert)
                    .arg(&name),
            )
            .with_context(|| format!("diverting {} (owned by {pkg})", name.display()))?;
        }
        None => std::fs::rename(&target, &real)
            .with_context(|| format!("moving {} aside", target.display()))?,
    }
    std::fs::rename(&staged, &target)?;
    entries.push(libsegura::wrap::Wrapped {
        path: target.clone(),
        real: real.clone(),
        config: config.to_path_buf(),
        sha256,
        segura: std::env::current_exe()?,
    });
    libsegura::wrap::write(table, &entries)?;
    println!(
        "{}: wrapped (the real program is now {})",
        target.display(),
        real.display()
    );
    Ok(0)
}

/// `segura unwrap PATH`: puts the real program back, byte for byte, and removes the diversion.
pub fn unwrap(path: &Path, table: &Path) -> Result<i32> {
    let target = std::fs::canonicalize(path)
        .with_context(|| format!("{} does not exist", path.display()))?;
    let mut entries = libsegura::wrap::read(table)?;
    let Some(w) = entries.iter().find(|w| w.path == target).cloned() else {
        bail!("{} is not wrapped", target.display());
    };
    let diverted = dpkg_name(&target)
        .map(|(n, _)| n)
        .into_iter()
        .chain([target.clone()])
        .find(|n| {
            Command::new("dpkg-divert")
                .arg("--listpackage")
                .arg(n)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "segura")
                .unwrap_or(false)
        });
    std::fs::remove_file(&target)
        .with_context(|| format!("removing the launcher at {}", target.display()))?;
    if let Some(name) = diverted {
        run_ok(
            Command::new("dpkg-divert")
                .args(["--package", "segura", "--rename", "--divert"])
                .arg(format!("{}.segura-real", name.display()))
                .arg("--remove")
                .arg(&name),
        )?;
    } else {
        std::fs::rename(&w.real, &target)
            .with_context(|| format!("moving {} back", w.real.display()))?;
    }
    entries.retain(|e| e.path != target);
    libsegura::wrap::write(table, &entries)?;
    let now = sha256_file(&target)?;
    if now != w.sha256 {
        eprintln!(
            "segura: warning: {} differs from when it was wrapped (updated meanwhile?)",
            target.display()
        );
    }
    println!("{}: unwrapped", target.display());
    Ok(0)
}

/// `segura unwrap --all`: every program listed in the table, each put back as `unwrap` does.
/// Goes on past a failure (and says so at the end), so one bad entry does not keep the others
/// wrapped.
pub fn unwrap_all(table: &Path) -> Result<i32> {
    let entries = libsegura::wrap::read(table)?;
    if entries.is_empty() {
        println!("nothing is wrapped");
        return Ok(0);
    }
    let mut failed = 0;
    for w in entries {
        if let Err(e) = unwrap(&w.path, table) {
            eprintln!("segura: {}: {e:#}", w.path.display());
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} program(s) could not be unwrapped");
    }
    Ok(0)
}

/// Makes the wrapped programs follow the binary-run rules in force (local and the platform's):
/// programs a rule names are wrapped, wrapped programs no rule names any more are unwrapped.
pub fn follow_policy(
    config: &libsegura::config::Config,
    config_path: &Path,
    launcher: &Path,
    owner: Option<(u32, u32)>,
    table: &Path,
) -> Result<()> {
    use libsegura::policy::Guideline;
    let mut desired: Vec<PathBuf> = libsegura::policy_cache::effective_rules(config)
        .iter()
        .filter(|r| r.enabled && r.guideline == Guideline::BinaryRun)
        .filter_map(|r| r.application_path.as_deref())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    desired.sort();
    desired.dedup();
    let current = libsegura::wrap::read(table)?;
    for path in &desired {
        if !current.iter().any(|w| &w.path == path) {
            wrap(path, launcher, config_path, owner, table)?;
        }
    }
    for w in current {
        if !desired.contains(&w.path) {
            unwrap(&w.path, table)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_lines_are_added_once_and_removed_byte_for_byte() {
        for original in [
            "",
            "@include common-session\n",
            "session required pam_unix.so",
        ] {
            let added = add_line(original, "session optional pam_segura.so").unwrap();
            assert!(added.contains("\nsession optional pam_segura.so\n") || original.is_empty());
            assert_eq!(add_line(&added, "session optional pam_segura.so"), None);
            assert_eq!(remove_line(&added).unwrap(), original);
            assert_eq!(remove_line(original), None);
        }
    }
}
