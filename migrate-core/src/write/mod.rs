//! The target-side writer: pipelined, windowed, every reply checked.
//!
//! - [`Pipeline`] (sans-IO): commands with their [`Tag`]s in, bytes out; reply frames in,
//!   [`Outcome`]s out, in order. It inserts `SELECT`, frames transactions and matches
//!   `EXEC`'s results to their commands, bounds the window ([`WriterOptions`]).
//! - [`Writer`]: the tokio driver over any `AsyncRead + AsyncWrite` stream.
//! - [`chunk_items`] / [`chunk_string`]: big values split into commands under a byte budget.
//!
//! Cluster targets will put one `Writer` per node behind a slot router: outcomes carry the
//! server's error ([`ServerError::redirect`] parses `MOVED`/`ASK`) and the tag, so the router
//! can re-send redirected commands; crash-safe resume builds on the in-order outcomes and
//! [`Tag::seq`].

mod chunk;
mod driver;
mod low_water;
mod options;
mod outcome;
mod output;
mod pipeline;
#[cfg(test)]
mod pipeline_tests;
#[cfg(any(test, feature = "fuzzing"))]
mod script;
mod server_error;
mod tag;

pub use chunk::{chunk_items, chunk_string, ChunkItems, ChunkString};
pub use driver::Writer;
pub use low_water::LowWater;
pub use options::WriterOptions;
pub use outcome::{Outcome, Resolved};
pub use pipeline::Pipeline;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub use script::check_pipeline_script;
pub use server_error::{Redirect, ServerError, ServerErrorKind};
pub use tag::Tag;
