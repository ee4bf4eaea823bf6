//! What a server is and what it accepts: the facts the writer chooses its write mode from,
//! and the connection that learns them.

mod conn;
mod keyspace;
mod version;

pub use conn::{Target, TargetOptions};
pub use keyspace::{DbKeys, Keyspace};
pub use version::{ServerFamily, ServerVersion};
