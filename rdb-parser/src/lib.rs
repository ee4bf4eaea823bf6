//! Streaming decoder for RDB files and DUMP payloads.
//!
//! (Work in progress: the decoder lands with its own issue.)
//!
//! ```
//! assert_eq!(rdb_parser::PLACEHOLDER, "rdb-parser");
//! ```

/// Placeholder until the decoder lands.
pub const PLACEHOLDER: &str = "rdb-parser";
