//! Connecting to the target: TCP, or TLS for `rediss://` (rustls with the ring provider,
//! like the source side in `replication-client`).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{MigrationError, TargetConfig};
use crate::{Target, TargetOptions};

/// A connected stream: TCP or TLS behind one type.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}
/// The stream of a connection made from a URL: TCP or TLS.
pub type Stream = Box<dyn Io>;

/// Why [`open`] failed.
pub(crate) enum OpenError {
    /// Connecting, the timeout, or the handshake (AUTH, INFO).
    Server(crate::Error),
    /// The TLS configuration or handshake.
    Tls(String),
}

/// Connects to the server of `cfg` (TCP, or TLS for `rediss://`) and runs the handshake
/// (AUTH with the URL's credentials, INFO, CONFIG GET), naming the client `client_name`.
pub(crate) async fn open(
    cfg: &TargetConfig,
    timeout: Duration,
    client_name: Option<&str>,
) -> Result<Target<Stream>, OpenError> {
    let url = &cfg.url;
    let addr = url.addr();
    let mut opts = TargetOptions::default().with_timeout(timeout);
    if let Some(name) = client_name {
        opts.client_name = Some(name.into());
    }
    if let Some(p) = url.password() {
        opts = match url.username() {
            Some(u) => opts.with_user(u, p.expose()),
            None => opts.with_password(p.expose()),
        };
    }
    let tcp =
        match tokio::time::timeout(timeout, TcpStream::connect((url.host(), url.port()))).await {
            Err(_) => {
                return Err(OpenError::Server(crate::Error::Timeout {
                    addr,
                    timeout,
                    during: "connect",
                }))
            }
            Ok(Err(e)) => {
                return Err(OpenError::Server(crate::Error::Connect {
                    addr,
                    source: Arc::new(e),
                }))
            }
            Ok(Ok(s)) => s,
        };
    let _ = tcp.set_nodelay(true);
    // Replies read in batches over plain TCP only (see `LowWater`).
    let low_water = if url.tls() {
        None
    } else {
        crate::LowWater::of(&tcp)
    };
    let stream: Stream = if url.tls() {
        let config = cfg
            .tls
            .client_config()
            .map_err(|e| OpenError::Tls(e.to_string()))?;
        let name = cfg
            .tls
            .server_name_for(url.host())
            .map_err(|e| OpenError::Tls(e.to_string()))?;
        let connector = TlsConnector::from(config);
        match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
            Err(_) => return Err(OpenError::Tls("no answer to the TLS handshake".into())),
            Ok(Err(e)) => return Err(OpenError::Tls(format!("handshake failed: {e}"))),
            Ok(Ok(s)) => Box::new(s),
        }
    } else {
        Box::new(tcp)
    };
    Target::handshake(stream, addr, &opts)
        .await
        .map(|t| t.with_low_water(low_water))
        .map_err(OpenError::Server)
}

/// Connects to any server from its URL as the migration connects to its target: TCP, or
/// TLS for `rediss://` with `cfg.tls` (verification on unless turned off), `AUTH` with the
/// URL's user and password (ACL), then `INFO server` and `CONFIG GET proto-max-bulk-len`.
/// `timeout` bounds connecting, the TLS handshake, the login and each later request. The
/// returned [`Target`] answers one command at a time ([`Target::call`]) or a batch
/// ([`Target::call_many`]); a custom tool uses it for sources too (`SCAN`, `DUMP`).
///
/// # Errors
/// [`MigrationError::Target`] (refused, unknown host, timeout, authentication) and
/// [`MigrationError::TargetTls`], naming the redacted URL.
pub async fn connect(
    cfg: &TargetConfig,
    timeout: Duration,
) -> Result<Target<Stream>, MigrationError> {
    let shown = cfg.url.to_string();
    open(cfg, timeout, None).await.map_err(|e| match e {
        OpenError::Server(source) => MigrationError::Target {
            url: shown,
            source: Box::new(source),
        },
        OpenError::Tls(reason) => MigrationError::TargetTls { url: shown, reason },
    })
}

/// The replication offset of the server of `cfg` now (`master_repl_offset` of `INFO
/// replication`): `None` when it cannot be read (out of reach, `INFO` refused, a server
/// that does not report it).
pub(crate) async fn repl_offset(cfg: &TargetConfig, timeout: Duration) -> Option<u64> {
    let mut t = connect(cfg, timeout).await.ok()?;
    let reply = tokio::time::timeout(timeout, t.call(&["INFO", "replication"]))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(reply.as_bytes()?).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse().ok())
}
