//! A replica-side client of the Redis/Valkey replication protocol.
//!
//! (Work in progress: the client lands with its own issue.)
//!
//! ```
//! assert_eq!(replication_client::PLACEHOLDER, "replication-client");
//! ```

/// Placeholder until the client lands.
pub const PLACEHOLDER: &str = "replication-client";
