//! What a server is and what it accepts: the facts the writer chooses its write mode from,
//! and the connection that learns them.

mod conn;
mod keyspace;
mod modules;
mod version;

pub use conn::{Target, TargetOptions};
pub use keyspace::{DbKeys, Keyspace};
pub use modules::{command_module, module_for_type, module_loaded, provides_type};
pub use version::{ServerFamily, ServerVersion};
