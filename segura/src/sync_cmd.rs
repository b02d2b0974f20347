//! `segura enroll-host` and `segura sync [--daemon]`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libsegura::config::Config;
use libsegura::identity;
use libsegura::spool::Spool;
use segura_agent::{self as upload, Client, Credentials};

use libsegura::policy_cache::NUDGE_SOCKET;

pub fn enroll_host(config: &Config, server: &str, token: &str, name: Option<&str>) -> Result<i32> {
    let timeout = Duration::from_millis(config.upload.timeout_ms);
    let mut client = Client::new(server, timeout);
    let host = name.map_or_else(identity::hostname, str::to_string);
    let reply = client.enroll(token, &host).context("enrolling this host")?;
    let creds = Credentials {
        server: server.trim_end_matches('/').to_string(),
        host_id: reply.host_id,
        secret: reply.secret,
    };
    creds.save(&config.upload.credentials)?;
    // The launcher (setuid to the spool's owner) uploads a recorded run at once: let the
    // spool's group read the credential.
    if let Some(group) = &config.spool.group {
        use std::os::unix::fs::PermissionsExt;
        if let Some(gid) = identity::group_gid(group)? {
            std::os::unix::fs::chown(&config.upload.credentials, None, Some(gid))?;
            std::fs::set_permissions(
                &config.upload.credentials,
                std::fs::Permissions::from_mode(0o640),
            )?;
        }
    }
    println!(
        "enrolled {host} as {} with {} (pending until an admin approves it on the Hosts page); credential stored in {}",
        creds.host_id,
        creds.server,
        config.upload.credentials.display()
    );
    Ok(0)
}

fn pass(
    config: &Config,
    spool: &Spool,
    json: bool,
    follow: &dyn Fn(&Config) -> Result<()>,
) -> Result<()> {
    let creds = Credentials::load(&config.upload.credentials)?;
    let mut client =
        Client::with_credentials(&creds, Duration::from_millis(config.upload.timeout_ms));
    let report = upload::sync_once(spool, &mut client, &config.upload)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "synced with {}: {} login(s), {} recording(s), {} chunk(s) ({} bytes), {} audit event(s){}",
            creds.server,
            report.logins,
            report.recordings,
            report.chunks,
            report.bytes,
            report.audit_events,
            if report.policy_updated { ", policy updated" } else { "" }
        );
    }
    if let Some(why) = &report.policy_rejected {
        eprintln!("segura: refused the platform's policy bundle ({why}); the last good one stays in force");
    }
    for (id, why) in &report.quarantined {
        eprintln!("segura: recording {id} set aside: {why} (segura sync --retry-quarantined to try again)");
    }
    follow(config)
}

pub fn sync(
    config: &Config,
    spool: &Spool,
    daemon: bool,
    retry_quarantined: bool,
    json: bool,
    follow: &dyn Fn(&Config) -> Result<()>,
) -> Result<i32> {
    if retry_quarantined {
        let n = spool.release_quarantine()?;
        if n > 0 {
            eprintln!("segura: {n} quarantined recording(s) back in the queue");
        }
    }
    if !daemon {
        pass(config, spool, json, follow)?;
        return Ok(0);
    }
    // The daemon: a pass now, then at every interval, when nudged, and with backoff after a
    // failure (so it is back soon after the network returns).
    let socket = bind_nudge_socket();
    let interval = Duration::from_secs(config.upload.interval_secs.max(1));
    let mut backoff = Duration::from_secs(1);
    loop {
        let wait = match pass(config, spool, json, follow) {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                interval
            }
            Err(e) => {
                eprintln!("segura sync: {e:#}; retrying in {}s", backoff.as_secs());
                let w = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                w
            }
        };
        wait_for_nudge(socket.as_ref(), wait);
    }
}

fn bind_nudge_socket() -> Option<UnixDatagram> {
    let path = Path::new(NUDGE_SOCKET);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(path);
    UnixDatagram::bind(path).ok()
}

fn wait_for_nudge(socket: Option<&UnixDatagram>, wait: Duration) {
    let Some(s) = socket else {
        std::thread::sleep(wait);
        return;
    };
    let deadline = Instant::now() + wait;
    let _ = s.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
    let mut buf = [0u8; 16];
    if s.recv(&mut buf).is_ok() {
        // Let a burst of nudges (several sessions ending) collapse into one pass.
        std::thread::sleep(
            Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now())),
        );
        let _ = s.set_nonblocking(true);
        while s.recv(&mut buf).is_ok() {}
        let _ = s.set_nonblocking(false);
    }
}

/// `segura upload-now ID`: what the launcher runs when a recorded program ends. Output first,
/// then input, each announced; when it cannot finish, says the run is kept for later. Always
/// exits 0: the program's own status is what the user gets.
pub fn upload_now(config: &Config, spool: &Spool, id: &str) -> Result<i32> {
    use libsegura::chunk::Stream;
    let kept = |why: &str| {
        eprintln!(
            "segura: the recording could not be sent now ({why}); it is kept on this machine and will be sent later"
        );
        Ok(0)
    };
    let creds = match Credentials::load(&config.upload.credentials) {
        Ok(c) => c,
        Err(_) if !config.upload.credentials.exists() => {
            return kept("this host is not enrolled with a platform yet")
        }
        Err(e) => return kept(&e.to_string()),
    };
    let rec = match spool.recording(id) {
        Ok(r) => r,
        Err(e) => return kept(&e.to_string()),
    };
    let mut client = Client::with_credentials(&creds, Duration::from_secs(5));
    let mut report = upload::SyncReport::default();
    let cfg = &config.upload;
    eprintln!("Uploading recorded output data...");
    if let Err(e) = upload::upload_streams(
        spool,
        &mut client,
        cfg,
        &rec,
        &[Stream::Output, Stream::Stderr, Stream::Events],
        &mut report,
    ) {
        return kept(&e.to_string());
    }
    eprintln!("OK.");
    eprintln!();
    eprintln!("Uploading recorded input data...");
    if let Err(e) =
        upload::upload_streams(spool, &mut client, cfg, &rec, &[Stream::Input], &mut report)
    {
        return kept(&e.to_string());
    }
    eprintln!("OK.");
    let _ = upload::recording_delivered(spool, &rec);
    Ok(0)
}
