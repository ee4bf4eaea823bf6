//! Low-level encodings: lengths and strings, LZF, doubles, and the compact blobs (ziplist,
//! listpack, intset, zipmap).

pub(crate) mod double;
pub(crate) mod intset;
pub(crate) mod length;
pub(crate) mod listpack;
pub(crate) mod lzf;
pub(crate) mod ziplist;
pub(crate) mod zipmap;
