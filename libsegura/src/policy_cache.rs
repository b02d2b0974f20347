//! The platform's policy bundle as last pulled by `segura sync`, kept beside the spool so the PAM
//! module and the launcher decide with it while offline; and the nudge that wakes the sync daemon.
//! No network code here: the PAM module links this crate and must not load libcurl.

use std::path::{Path, PathBuf};

use crate::wire::PolicyBundle;

/// Where the policy bundle is cached: beside the spool, readable by the PAM module and the
/// launcher while offline.
pub fn policy_cache_path(spool: &Path) -> PathBuf {
    spool.with_file_name("policy.json")
}

/// The rules in force on this host: the local ones from the configuration, then the platform's
/// (as last pulled by `segura sync`, so they apply offline too).
pub fn effective_rules(config: &crate::config::Config) -> Vec<crate::policy::Rule> {
    let mut rules = config.rules.clone();
    if let Some(bundle) = cached_policy(&config.spool.path) {
        rules.extend(bundle.rules);
    }
    rules
}

/// Tells a running `segura sync --daemon` there is something to send (never waits).
pub fn nudge() {
    if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = s.set_nonblocking(true);
        let _ = s.send_to(b"!", NUDGE_SOCKET);
    }
}

/// Where `segura sync --daemon` listens for nudges.
pub const NUDGE_SOCKET: &str = "/run/segura/sync.sock";

/// The cached policy bundle, if any.
pub fn cached_policy(spool: &Path) -> Option<PolicyBundle> {
    let text = std::fs::read_to_string(policy_cache_path(spool)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn store_policy(
    spool: &Path,
    bundle: &PolicyBundle,
    etag: Option<&str>,
) -> std::io::Result<()> {
    let path = policy_cache_path(spool);
    let tmp = path.with_extension("json.tmp");
    let mut v = serde_json::to_value(bundle).unwrap_or_default();
    if let (Some(o), Some(tag)) = (v.as_object_mut(), etag) {
        o.insert("etag".into(), tag.into());
    }
    std::fs::write(&tmp, serde_json::to_vec_pretty(&v).unwrap_or_default())?;
    std::fs::rename(&tmp, &path)
}

pub fn cached_etag(spool: &Path) -> Option<String> {
    let text = std::fs::read_to_string(policy_cache_path(spool)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("etag")?.as_str().map(str::to_string)
}
