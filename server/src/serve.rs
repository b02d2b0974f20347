//! `segura-server serve`: bind, choose HTTPS (rustls) or plain HTTP (loopback only), serve the
//! API until SIGINT or SIGTERM.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::api::{self, AppState};
use crate::limits::RateLimiter;
use crate::sqlite::SqliteStore;

pub struct ServeOptions {
    pub listen: String,
    pub data: PathBuf,
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Requests per second per host, and the burst.
    pub rate: f64,
    pub burst: u32,
    /// Recordings older than this are purged (unless held).
    pub retention: Duration,
    /// How often the purge runs.
    pub purge_every: Duration,
}

/// A duration as `90d`, `12h`, `30m` or `45s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: want a number and a unit (d, h, m, s), e.g. 90d"))?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => return Err(format!("{s:?}: unit must be d, h, m or s")),
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?}: too long"))
}

/// Requests per second, and burst, per client address for enrollment and failed logins.
const ANONYMOUS_RATE: (f64, u32) = (5.0, 20);
/// How long a new connection may take to send its first request.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open requests may finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Resolves the listen address and refuses plain HTTP off loopback.
pub fn listen_addr(listen: &str, tls: bool) -> Result<SocketAddr> {
    let addr = listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen}: not an address (want HOST:PORT)"))?
        .next()
        .with_context(|| format!("--listen {listen}: resolves to no address"))?;
    if !tls && !addr.ip().to_canonical().is_loopback() {
        bail!(
            "refusing to serve plain HTTP on {addr}: it is not a loopback address, so host \
             secrets and recordings would cross the network in clear text; give --tls-cert \
             and --tls-key, or listen on 127.0.0.1 / [::1] behind a TLS-terminating proxy"
        );
    }
    Ok(addr)
}

/// Loads a PEM certificate chain and private key into a rustls configuration (ring provider,
/// HTTP/2 and HTTP/1.1).
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("--tls-cert {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--tls-cert {}: not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        bail!("--tls-cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--tls-key {}: no PEM private key in it", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

pub fn run(opts: ServeOptions) -> Result<()> {
    let addr = listen_addr(&opts.listen, opts.tls.is_some())?;
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    let store = SqliteStore::open(&opts.data)
        .with_context(|| format!("opening the store in {}", opts.data.display()))?;
    store
        .start_checkpointer()
        .context("starting the WAL checkpointer")?;
    let store = Arc::new(store);
    crate::web::start_indexer(store.clone(), store.clone()).context("starting the text indexer")?;
    crate::web::start_purger(store.clone(), opts.retention, opts.purge_every)
        .context("starting the retention job")?;
    let state = Arc::new(AppState {
        store: store.clone(),
        catalog: store,
        web: crate::web::WebOptions {
            secure: opts.tls.is_some(),
            retention: opts.retention,
        },
        hosts: RateLimiter::new(opts.rate, opts.burst),
        anonymous: RateLimiter::new(ANONYMOUS_RATE.0, ANONYMOUS_RATE.1),
    });
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();

    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr().context("the bound address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let handle: Handle<SocketAddr> = Handle::new();
        tokio::spawn(shutdown_on_signal(handle.clone()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%bound, scheme, data = %opts.data.display(), "serving the segura API");
        // Tests and scripts read the port from this line.
        println!("listening on {bound}");
        match tls {
            Some(config) => {
                axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(config)))
                    .context("using the listener")?
                    .handle(handle)
                    .first_request_timeout(FIRST_REQUEST_TIMEOUT)
                    .serve(app)
                    .await
            }
            None => {
                axum_server::from_tcp(listener)
                    .context("using the listener")?
                    .handle(handle)
                    .first_request_timeout(FIRST_REQUEST_TIMEOUT)
                    .serve(app)
                    .await
            }
        }
        .context("serving")
    })?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_on_signal(handle: Handle<SocketAddr>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(listen_addr("127.0.0.1:0", false).is_ok());
        assert!(listen_addr("[::1]:0", false).is_ok());
        let e = listen_addr("0.0.0.0:8443", false).unwrap_err().to_string();
        assert!(e.contains("refusing to serve plain HTTP"), "{e}");
        assert!(listen_addr("192.0.2.1:8443", false).is_err());
        assert!(listen_addr("0.0.0.0:8443", true).is_ok());
        assert!(listen_addr("nonsense", false).is_err());
    }
}
