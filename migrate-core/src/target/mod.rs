//! What a server is and what it accepts: the facts the writer chooses its write mode from.

mod version;

pub use version::{ServerFamily, ServerVersion};
