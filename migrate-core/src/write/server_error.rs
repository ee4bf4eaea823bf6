//! [`ServerError`]: an error reply from the target, classified.

use std::fmt;

use bytes::Bytes;
use resp_codec::Frame;

/// Longest error text shown in messages.
const SHOWN_LEN: usize = 256;

/// An error reply from the target (`-OOM command not allowed ...`, `-WRONGTYPE ...`), kept as
/// the server sent it (without the leading `-`) and classified by its code.
///
/// Its `Display` form is meant for reports: it is cut to 256 characters and drops the part of
/// `unknown command` errors that quotes arguments (`with args beginning with: ...`), so values
/// never reach logs through it.
///
/// ```
/// use migrate_core::{ServerError, ServerErrorKind};
///
/// let e = ServerError::new("OOM command not allowed when used memory > 'maxmemory'.");
/// assert_eq!(e.kind(), ServerErrorKind::OutOfMemory);
/// assert_eq!(e.code(), b"OOM");
///
/// let moved = ServerError::new("MOVED 3999 127.0.0.1:6381");
/// let r = moved.redirect().unwrap();
/// assert_eq!((r.slot, r.addr.as_str(), r.ask), (3999, "127.0.0.1:6381", false));
///
/// let leaky = ServerError::new("ERR unknown command 'FOO', with args beginning with: 'secret' ");
/// assert_eq!(leaky.to_string(), "ERR unknown command 'FOO'");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerError {
    text: Bytes,
}

/// What kind of error a [`ServerError`] is, from its code (the first word).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `OOM`: the target is at `maxmemory` with a `noeviction` policy.
    OutOfMemory,
    /// `READONLY`: the target is a replica.
    ReadOnly,
    /// `MISCONF`: the target cannot persist and refuses writes.
    Misconf,
    /// `NOAUTH`: the connection is not authenticated.
    NoAuth,
    /// `WRONGPASS`: wrong user name or password.
    WrongPass,
    /// `NOPERM`: the ACL user may not run this command or touch this key.
    NoPerm,
    /// `LOADING`: the target is loading its dataset.
    Loading,
    /// `BUSYKEY`: `RESTORE` without `REPLACE` onto an existing key.
    BusyKey,
    /// `WRONGTYPE`: the key holds another type.
    WrongType,
    /// `EXECABORT`: a transaction was discarded because a queued command was refused.
    ExecAbort,
    /// `MOVED`: a cluster node does not own the slot (see [`ServerError::redirect`]).
    Moved,
    /// `ASK`: the slot is being migrated (see [`ServerError::redirect`]).
    Ask,
    /// `TRYAGAIN`: a multi-key command during a slot migration.
    TryAgain,
    /// `CROSSSLOT`: keys of one command or transaction in different cluster slots.
    CrossSlot,
    /// `CLUSTERDOWN`: the cluster cannot serve the slot.
    ClusterDown,
    /// Anything else (`ERR ...`).
    Other,
}

/// A cluster redirection (`MOVED` or `ASK`) parsed from an error reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Redirect {
    /// `true` for `ASK` (send `ASKING` first, once), `false` for `MOVED` (update the slot map).
    pub ask: bool,
    /// The slot.
    pub slot: u16,
    /// The node to ask, `host:port` as the server wrote it.
    pub addr: String,
}

impl ServerError {
    /// An error from its text (without the leading `-`).
    pub fn new(text: impl Into<Bytes>) -> ServerError {
        ServerError { text: text.into() }
    }

    /// The error carried by a [`Frame::SimpleError`] or [`Frame::BlobError`], else `None`.
    pub fn from_frame(frame: &Frame) -> Option<ServerError> {
        match frame {
            Frame::SimpleError(b) | Frame::BlobError(b) => Some(ServerError::new(b.clone())),
            _ => None,
        }
    }

    /// The full text as the server sent it. It may quote arguments: prefer `Display` in
    /// reports.
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }

    /// The code: the text up to the first space (`ERR`, `OOM`, `WRONGTYPE`).
    pub fn code(&self) -> &[u8] {
        let end = self
            .text
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(self.text.len());
        &self.text[..end]
    }

    /// The classification of [`code`](Self::code).
    pub fn kind(&self) -> ServerErrorKind {
        use ServerErrorKind::*;
        match self.code() {
            b"OOM" => OutOfMemory,
            b"READONLY" => ReadOnly,
            b"MISCONF" => Misconf,
            b"NOAUTH" => NoAuth,
            b"WRONGPASS" => WrongPass,
            b"NOPERM" => NoPerm,
            b"LOADING" => Loading,
            b"BUSYKEY" => BusyKey,
            b"WRONGTYPE" => WrongType,
            b"EXECABORT" => ExecAbort,
            b"MOVED" => Moved,
            b"ASK" => Ask,
            b"TRYAGAIN" => TryAgain,
            b"CROSSSLOT" => CrossSlot,
            b"CLUSTERDOWN" => ClusterDown,
            _ => Other,
        }
    }

    /// `true` for `-OOM`.
    pub fn is_oom(&self) -> bool {
        self.kind() == ServerErrorKind::OutOfMemory
    }

    /// Whether this error means the target accepts no writes at all on this connection
    /// (out of memory, read-only replica, persistence failure, authentication lost, still
    /// loading): continuing would only fail every following command the same way.
    pub fn refuses_all_writes(&self) -> bool {
        use ServerErrorKind::*;
        matches!(
            self.kind(),
            OutOfMemory | ReadOnly | Misconf | NoAuth | Loading
        )
    }

    /// The redirection of a `MOVED <slot> <host:port>` or `ASK <slot> <host:port>` reply.
    pub fn redirect(&self) -> Option<Redirect> {
        let ask = match self.kind() {
            ServerErrorKind::Moved => false,
            ServerErrorKind::Ask => true,
            _ => return None,
        };
        let text = std::str::from_utf8(&self.text).ok()?;
        let mut words = text.split(' ').skip(1);
        let slot = words.next()?.parse::<u16>().ok()?;
        let addr = words.next()?.to_string();
        Some(Redirect { ask, slot, addr })
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(&self.text);
        // Redis: "ERR unknown command 'X', with args beginning with: 'a' 'b' ".
        let text = match text.find(", with args beginning with:") {
            Some(cut) => &text[..cut],
            None => &text[..],
        };
        let text = text.trim_end();
        match text.char_indices().nth(SHOWN_LEN) {
            Some((cut, _)) => write!(f, "{}...", &text[..cut]),
            None => f.write_str(text),
        }
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerError({:?})", self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        let e = |s: &'static str| ServerError::new(s);
        assert_eq!(e("WRONGTYPE Operation").kind(), ServerErrorKind::WrongType);
        assert_eq!(e("ERR").kind(), ServerErrorKind::Other);
        assert_eq!(e("").code(), b"");
        assert!(e("READONLY You can't write against a read only replica.").refuses_all_writes());
        assert!(!e("BUSYKEY Target key name already exists.").refuses_all_writes());
        assert_eq!(
            e("ASK 1 [::1]:7000").redirect(),
            Some(Redirect {
                ask: true,
                slot: 1,
                addr: "[::1]:7000".into()
            })
        );
        assert_eq!(e("MOVED x y").redirect(), None);
        assert_eq!(e("MOVED").redirect(), None);
        let long = ServerError::new("E".repeat(1000));
        assert_eq!(long.to_string().len(), 259);
        assert_eq!(
            ServerError::from_frame(&Frame::BlobError("ERR x".into())),
            Some(e("ERR x"))
        );
        assert_eq!(ServerError::from_frame(&Frame::Integer(1)), None);
    }
}
