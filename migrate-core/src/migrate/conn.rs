//! Connecting to the target: TCP, or TLS for `rediss://` (rustls with the ring provider,
//! like the source side in `replication-client`).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{MigrationError, TargetConfig};
use crate::{Target, TargetOptions};

/// The target stream: TCP or TLS behind one type.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}
pub(crate) type Stream = Box<dyn Io>;

/// Connects and runs the target handshake (AUTH, INFO, CONFIG GET).
pub(crate) async fn connect(
    cfg: &TargetConfig,
    timeout: Duration,
) -> Result<Target<Stream>, MigrationError> {
    let url = &cfg.url;
    let shown = url.to_string();
    let addr = url.addr();
    let mut opts = TargetOptions::default().with_timeout(timeout);
    if let Some(p) = url.password() {
        opts = match url.username() {
            Some(u) => opts.with_user(u, p.expose()),
            None => opts.with_password(p.expose()),
        };
    }
    let target_err = |source| MigrationError::Target {
        url: shown.clone(),
        source: Box::new(source),
    };
    let tcp =
        match tokio::time::timeout(timeout, TcpStream::connect((url.host(), url.port()))).await {
            Err(_) => {
                return Err(target_err(crate::Error::Timeout {
                    addr,
                    timeout,
                    during: "connect",
                }))
            }
            Ok(Err(e)) => {
                return Err(target_err(crate::Error::Connect {
                    addr,
                    source: Arc::new(e),
                }))
            }
            Ok(Ok(s)) => s,
        };
    let _ = tcp.set_nodelay(true);
    let stream: Stream = if url.tls() {
        let tls_err = |reason: String| MigrationError::TargetTls {
            url: shown.clone(),
            reason,
        };
        let config = cfg
            .tls
            .client_config()
            .map_err(|e| tls_err(e.to_string()))?;
        let name = cfg
            .tls
            .server_name_for(url.host())
            .map_err(|e| tls_err(e.to_string()))?;
        let connector = TlsConnector::from(config);
        match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
            Err(_) => return Err(tls_err("no answer to the TLS handshake".into())),
            Ok(Err(e)) => return Err(tls_err(format!("handshake failed: {e}"))),
            Ok(Ok(s)) => Box::new(s),
        }
    } else {
        Box::new(tcp)
    };
    Target::handshake(stream, addr, &opts)
        .await
        .map_err(target_err)
}
