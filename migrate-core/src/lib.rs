//! The migration engine behind `redis-migrate`.
//!
//! (Work in progress: the orchestrator lands with its own issue.)
//!
//! ```
//! assert_eq!(migrate_core::PLACEHOLDER, "migrate-core");
//! ```

/// Placeholder until the orchestrator lands.
pub const PLACEHOLDER: &str = "migrate-core";
