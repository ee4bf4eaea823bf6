//! The full sync's side connections to the target, next to the writer: the `EXISTS`
//! questions of [`Conflict::Skip`](super::Conflict::Skip) for keys written as commands,
//! and the scratch `RESTORE` of RDB type probing (`probe_restore`).
//!
//! On a standalone target it is one plain connection (with its `SELECT`ed db). On a
//! cluster target it is a [`ClusterClient`]: each question goes to the master of the key's
//! slot (the scratch probe key's slot for a probe), `MOVED`/`ASK` followed and
//! `TRYAGAIN`/`CLUSTERDOWN` retried with bounded backoff, then one
//! [`MigrationError::ClusterUnavailable`] naming the command and the slot. A key in a db
//! other than 0 (Valkey 9 `cluster-databases`) is asked with a one-key script that
//! `SELECT`s its db (the script's `SELECT` does not change the connection's db).

use std::time::Duration;

use bytes::Bytes;
use resp_codec::Frame;

use super::conn::{self, Stream};
use super::{MigrationError, TargetConfig};
use crate::cluster::{ClusterClient, ClusterClientOptions, ClusterError};
use crate::{key_slot, Target};

/// `EXISTS` of `KEYS[1]` in db `ARGV[1]`, for a cluster connection that stays in db 0.
const EXISTS_IN_DB: &str = "redis.call('SELECT', ARGV[1]) return redis.call('EXISTS', KEYS[1])";

/// How to open a side connection.
#[derive(Debug, Clone)]
pub(crate) struct SideConfig {
    /// The target (any node of a cluster).
    pub(crate) target: TargetConfig,
    /// Bound on connecting and on each request.
    pub(crate) timeout: Duration,
    /// The target is a cluster: route by key slot.
    pub(crate) cluster: bool,
}

/// One side connection (see the module docs).
pub(crate) enum SideConn {
    /// A standalone target, with the db selected last.
    Node(Box<Target<Stream>>, Option<u32>),
    /// A cluster target: each command to its key's master.
    Cluster(Box<ClusterClient>),
}

impl SideConn {
    /// Connects as `cfg` says.
    pub(crate) async fn connect(cfg: &SideConfig) -> Result<SideConn, MigrationError> {
        if !cfg.cluster {
            let t = conn::connect(&cfg.target, cfg.timeout).await?;
            return Ok(SideConn::Node(Box::new(t), None));
        }
        // Both questions may be asked twice (a read, a `RESTORE ... REPLACE` of a scratch
        // key): resent after a lost connection.
        let options = ClusterClientOptions {
            timeout: cfg.timeout,
            retry_for: super::cluster_sink::RETRY_FOR,
            resend_lost: true,
            ..ClusterClientOptions::default()
        };
        let c = ClusterClient::connect_with(std::slice::from_ref(&cfg.target), options)
            .await
            .map_err(|e| cluster_error(&cfg.target.url.to_string(), "CLUSTER SHARDS", None, e))?;
        Ok(SideConn::Cluster(Box::new(c)))
    }

    /// Whether `key` exists in db `db` of the target; `url` (redacted) names it in errors.
    pub(crate) async fn exists(
        &mut self,
        db: u32,
        key: &Bytes,
        url: &str,
    ) -> Result<bool, MigrationError> {
        let reply = match self {
            SideConn::Node(target, selected) => {
                let err = |source| MigrationError::Target {
                    url: url.to_string(),
                    source: Box::new(source),
                };
                if *selected != Some(db) {
                    target
                        .call(&["SELECT".as_bytes(), db.to_string().as_bytes()])
                        .await
                        .map_err(err)?;
                    *selected = Some(db);
                }
                target
                    .call(&[&b"EXISTS"[..], &key[..]])
                    .await
                    .map_err(err)?
            }
            SideConn::Cluster(client) => {
                let slot = key_slot(key);
                let r = if db == 0 {
                    client.call_slot(slot, &[&b"EXISTS"[..], &key[..]]).await
                } else {
                    let db = db.to_string();
                    client
                        .call_slot(
                            slot,
                            &[
                                &b"EVAL"[..],
                                EXISTS_IN_DB.as_bytes(),
                                b"1",
                                &key[..],
                                db.as_bytes(),
                            ],
                        )
                        .await
                };
                let reply = r.map_err(|e| cluster_error(url, "EXISTS", Some(slot), e))?;
                if let Some(e) = crate::ServerError::from_frame(&reply) {
                    return Err(MigrationError::ClusterUnavailable {
                        url: url.to_string(),
                        command: "EXISTS".into(),
                        slot: Some(slot),
                        node: "the key's master".into(),
                        attempts: 1,
                        waited: Duration::ZERO,
                        last: format!("{e} (key {})", super::report::key_text(key)),
                    });
                }
                reply
            }
        };
        Ok(reply == Frame::Integer(1))
    }

    /// Sends one command whose first key is `args[1]` (the probe's `RESTORE` and `DEL`).
    pub(crate) async fn call(
        &mut self,
        args: &[&[u8]],
        url: &str,
    ) -> Result<Frame, MigrationError> {
        match self {
            SideConn::Node(target, _) => {
                target
                    .call(args)
                    .await
                    .map_err(|source| MigrationError::Target {
                        url: url.to_string(),
                        source: Box::new(source),
                    })
            }
            SideConn::Cluster(client) => {
                let command =
                    String::from_utf8_lossy(args.first().copied().unwrap_or_default()).into_owned();
                let slot = key_slot(args.get(1).copied().unwrap_or_default());
                client
                    .call_slot(slot, args)
                    .await
                    .map_err(|e| cluster_error(url, &command, Some(slot), e))
            }
        }
    }
}

/// A [`ClusterClient`] failure as the migration's error.
fn cluster_error(url: &str, command: &str, slot: Option<u16>, e: ClusterError) -> MigrationError {
    let (attempts, waited, last) = match e {
        ClusterError::Unavailable {
            attempts,
            waited,
            last,
            ..
        } => (attempts, waited, last),
        other => (1, Duration::ZERO, other.to_string()),
    };
    MigrationError::ClusterUnavailable {
        url: url.to_string(),
        command: command.to_string(),
        slot,
        node: "the key's master".into(),
        attempts,
        waited,
        last,
    }
}
