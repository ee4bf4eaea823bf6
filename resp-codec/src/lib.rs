//! RESP2/RESP3 framing for Redis-compatible servers.
//!
//! (Work in progress: the codec lands with its own issue.)
//!
//! ```
//! assert_eq!(resp_codec::PLACEHOLDER, "resp-codec");
//! ```

/// Placeholder until the codec lands.
pub const PLACEHOLDER: &str = "resp-codec";
