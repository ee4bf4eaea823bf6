//! Test support for the workspace: real servers, not mocks.
//!
//! [`Server::start`] launches one of the five server flavours the project supports
//! ([`Flavor`]) on a free loopback port, in its own temporary directory, waits until it
//! answers, and kills it when the [`Server`] is dropped. [`Conn`] is a deliberately tiny
//! blocking RESP2 client so that tests can fill and inspect servers without depending on
//! the crates under test.
//!
//! The binaries are installed by `scripts/install-test-servers.sh`; a test that needs one
//! that is missing panics with a message naming that script, it never passes silently.
//!
//! ```no_run
//! use testkit::{Flavor, Server};
//!
//! let server = Server::start(Flavor::Valkey9_1);
//! let mut conn = server.connect();
//! conn.ok(["SET", "greeting", "hello"]);
//! assert_eq!(conn.bulk(["GET", "greeting"]).as_deref(), Some(&b"hello"[..]));
//! let rdb = server.save();
//! assert_eq!(&rdb[..9], b"VALKEY080");
//! ```

pub mod cluster;
mod conn;
pub mod dataset;
mod flavor;
mod server;
pub mod snapshot;
mod tls;

pub use cluster::{Cluster, ClusterConn, ClusterNode, SlotMove};
pub use conn::{Conn, Reply};
pub use dataset::Dataset;
pub use flavor::Flavor;
pub use server::{free_port, Server, ServerBuilder};
pub use snapshot::{Snapshot, RESERVED_PREFIX};
pub use tls::TestPki;
