//! [`discover`]: cluster mode and topology of a connected server.

use resp_codec::Frame;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{cluster_enabled, ClusterTopology, Node, SlotMap, TopologySource};
use crate::error::Error;
use crate::write::{ServerError, ServerErrorKind};
use crate::Target;

/// Whether the server behind `target` runs in cluster mode (`INFO cluster`), and if so its
/// topology: `CLUSTER SHARDS` on Redis 7.0+ and Valkey, else (or when refused)
/// `CLUSTER SLOTS`, else `CLUSTER NODES`. `None` for a standalone server. Nodes whose
/// address the server did not know get the host of `target`.
///
/// # Errors
/// Connection errors and timeouts; [`Error::AuthRequired`]; [`Error::CommandRefused`] when
/// `INFO cluster` or all three topology commands are refused (ACLs); and
/// [`Error::UnexpectedReply`] for a reply that is not a topology.
pub async fn discover<S: AsyncRead + AsyncWrite + Unpin>(
    target: &mut Target<S>,
) -> Result<Option<ClusterTopology>, Error> {
    let info = target.call(&["INFO", "cluster"]).await?;
    let text = match &info {
        Frame::BulkString(b) | Frame::VerbatimString { data: b, .. } => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => return Err(refused(target, "INFO cluster", other)),
    };
    if !cluster_enabled(&text) {
        return Ok(None);
    }
    let version = target.version();
    if version.major >= 7 || version.is_valkey() {
        let reply = target.call(&["CLUSTER", "SHARDS"]).await?;
        if !reply.is_error() {
            return finish(target, SlotMap::from_shards(&reply), TopologySource::Shards);
        }
    }
    let reply = target.call(&["CLUSTER", "SLOTS"]).await?;
    if !reply.is_error() {
        return finish(target, SlotMap::from_slots(&reply), TopologySource::Slots);
    }
    let reply = target.call(&["CLUSTER", "NODES"]).await?;
    match &reply {
        Frame::BulkString(b) | Frame::VerbatimString { data: b, .. } => finish(
            target,
            SlotMap::from_nodes(&String::from_utf8_lossy(b)),
            TopologySource::Nodes,
        ),
        other => Err(refused(target, "CLUSTER NODES", other)),
    }
}

fn finish<S>(
    target: &Target<S>,
    map: Result<SlotMap, super::TopologyError>,
    source: TopologySource,
) -> Result<Option<ClusterTopology>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut map = map.map_err(|e| Error::UnexpectedReply {
        command: format!("{} on {}", e.command, target.addr()),
        expected: "a cluster topology",
        found: e.reason,
    })?;
    if let Some(seed) = Node::parse_addr(target.addr()) {
        map.fill_unknown_hosts(&seed.host);
    }
    Ok(Some(ClusterTopology::new(map, source)))
}

fn refused<S>(target: &Target<S>, command: &'static str, reply: &Frame) -> Error
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match ServerError::from_frame(reply) {
        Some(e) if e.kind() == ServerErrorKind::NoAuth => Error::AuthRequired {
            addr: target.addr().to_string(),
        },
        Some(reply) => Error::CommandRefused {
            addr: target.addr().to_string(),
            command,
            reply,
        },
        None => Error::UnexpectedReply {
            command: format!("{command} on {}", target.addr()),
            expected: "a bulk string",
            found: "another type".into(),
        },
    }
}
