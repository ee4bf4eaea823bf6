//! The commands the rewriter emits, and their RESP serialization with `SELECT`s.

use bytes::{Bytes, BytesMut};

/// What a command writes: one key of one db, or server-wide state (function libraries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The command writes `key` in database `db` (the source db; the writer maps it and sends
    /// `SELECT` itself).
    Key {
        /// The source database.
        db: u32,
        /// The key.
        key: Bytes,
    },
    /// A server-wide command (`FUNCTION LOAD`): no `SELECT` needed (in a cluster, every
    /// primary needs it).
    Server,
}

/// One command that recreates (part of) a key on the target, with the key it belongs to.
///
/// Commands never contain `SELECT`: each carries its db in [`Cmd::scope`], so a writer can
/// route, map dbs, and report a failure with the key. [`RespWriter`] serializes a sequence
/// of commands to RESP with the `SELECT`s inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// Which key (and db) the command writes.
    pub scope: Scope,
    /// The arguments, the command name first.
    pub args: Vec<Bytes>,
}

impl Cmd {
    pub(crate) fn new(scope: Scope, args: Vec<Bytes>) -> Cmd {
        Cmd { scope, args }
    }

    /// The source database, for key commands.
    pub fn db(&self) -> Option<u32> {
        match &self.scope {
            Scope::Key { db, .. } => Some(*db),
            Scope::Server => None,
        }
    }

    /// The key, for key commands.
    pub fn key(&self) -> Option<&Bytes> {
        match &self.scope {
            Scope::Key { key, .. } => Some(key),
            Scope::Server => None,
        }
    }

    /// The command name (`SET`, `RPUSH`, ...).
    pub fn name(&self) -> &[u8] {
        self.args.first().map(|a| &a[..]).unwrap_or(b"")
    }

    /// The size of the arguments in bytes (without RESP framing).
    pub fn payload_len(&self) -> usize {
        self.args.iter().map(Bytes::len).sum()
    }

    /// Appends the command in RESP (an array of bulk strings) to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        resp_codec::encode_command(dst, &self.args);
    }

    /// The encoded length: what [`Cmd::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        resp_codec::command_len(&self.args)
    }
}

/// Serializes commands to RESP for a file or a pipe (`redis-cli --pipe`), inserting a
/// `SELECT` whenever the db changes.
///
/// ```
/// use bytes::BytesMut;
/// use migrate_core::rewrite::{RespWriter, RewriteOptions, Rewriter};
/// use migrate_core::{ServerFamily, ServerVersion};
///
/// let target = ServerVersion::new(ServerFamily::Redis, 7, 0, 0);
/// let mut rw = Rewriter::new(target, RewriteOptions::default(), 0);
/// let events =
///     rdb_parser::decode_all(b"REDIS0003\xfe\x02\x00\x01k\x01v\xff", Default::default())?;
/// let mut resp = RespWriter::new();
/// let mut out = BytesMut::new();
/// for ev in &events {
///     rw.push(ev, &mut |cmd| resp.encode(&cmd, &mut out));
/// }
/// assert_eq!(&out[..], b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
/// # Ok::<(), rdb_parser::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RespWriter {
    db: Option<u32>,
}

impl RespWriter {
    /// A writer that has not selected a db yet (the first key command is preceded by a
    /// `SELECT`).
    pub fn new() -> RespWriter {
        RespWriter::default()
    }

    /// The db selected by the last `SELECT` written.
    pub fn current_db(&self) -> Option<u32> {
        self.db
    }

    /// Appends `cmd` to `dst`, preceded by `SELECT db` when its db differs from the current one.
    pub fn encode(&mut self, cmd: &Cmd, dst: &mut BytesMut) {
        if let Some(db) = cmd.db() {
            self.select(db, dst);
        }
        cmd.encode(dst);
    }

    /// Appends `SELECT db` to `dst` unless `db` is the current one.
    pub fn select(&mut self, db: u32, dst: &mut BytesMut) {
        if self.db != Some(db) {
            let db_text = db.to_string();
            resp_codec::encode_command(dst, &[&b"SELECT"[..], db_text.as_bytes()]);
            self.db = Some(db);
        }
    }
}
