//! Lists: type 1 (linked list of strings) is a counted collection; ziplist (10) is a compact
//! blob; quicklist (14: ziplist nodes) and quicklist 2 (18: listpack nodes, or PLAIN nodes
//! holding one large element) are decoded here, one node buffered at a time.

use bytes::BytesMut;

use crate::cursor::need;
use crate::error::Error;
use crate::event::Str;
use crate::input::{Io, Step};
use crate::types::{read_blob, BlobKind, Entries, Shape, Sink};

/// Quicklist container types (v2).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

#[derive(Debug)]
pub(crate) struct Quicklist {
    v2: bool,
    nodes_left: Option<u64>,
    node: Option<(Entries, u64)>,
    sink: Sink,
}

impl Quicklist {
    pub(crate) fn new(v2: bool) -> Quicklist {
        Quicklist {
            v2,
            nodes_left: None,
            node: None,
            sink: Sink::list(),
        }
    }

    pub(crate) fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<Step, Error> {
        if let Some((entries, at)) = &mut self.node {
            if entries.drain(io, &mut self.sink, Shape::List, *at)? {
                return Ok(Step::Continue);
            }
            self.node = None;
        }
        let left = match self.nodes_left {
            Some(n) => n,
            None => {
                let mut p = io.peek(buf);
                let n = need!(p.len("quicklist node count"));
                io.skip(buf, p.pos());
                self.nodes_left = Some(n);
                n
            }
        };
        if left == 0 {
            self.sink.flush(io);
            return Ok(Step::Done);
        }
        let at = io.offset;
        let container = if self.v2 {
            let mut p = io.peek(buf);
            let c = need!(p.len("quicklist container"));
            // Cursor the node too, so that container and node are consumed as one unit.
            need!(p.skip_string(io.opts.max_buffered));
            if c != CONTAINER_PLAIN && c != CONTAINER_PACKED {
                return Err(Error::corrupt(format!("quicklist container type {c}"), at));
            }
            let mut p = io.peek(buf);
            let _ = need!(p.len("quicklist container"));
            io.skip(buf, p.pos());
            c
        } else {
            CONTAINER_PACKED
        };
        let (blob, blob_at) = need!(read_blob(io, buf));
        self.nodes_left = Some(left - 1);
        if container == CONTAINER_PLAIN {
            self.sink.push_str(io, Str::Bytes(blob));
            return Ok(Step::Continue);
        }
        let kind = if self.v2 {
            BlobKind::Listpack
        } else {
            BlobKind::Ziplist
        };
        let e = Entries::open(kind, blob)
            .map_err(|w| Error::corrupt(format!("{w} (in a quicklist node)"), blob_at))?;
        self.sink.set_hint(e.max_entries());
        self.node = Some((e, blob_at));
        Ok(Step::Continue)
    }
}
