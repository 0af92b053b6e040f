//! Test support shared by the provider crates, the server and `cargo xtask contract`:
//!
//! - [`fixture`]: the contract-fixture format of `tests/contract/FORMAT.md` (an external
//!   contract: fields are only ever added, optional).
//! - [`matcher`]: the format's subset match, with readable differences.
//! - [`canned`]: a mock with canned answers in the providers' formats, for trying things by hand.
//! - [`bench`]: a fast mock upstream for benchmarks, with optional latency and paced streams.
//! - [`MockUpstream`]: a local HTTP server that plays a list of upstream steps in order,
//!   records what it received, and reports mismatches, missing and extra calls. It also plays
//!   upstream faults (connection resets, stalls mid-stream, requests never answered, enormous
//!   bodies: the optional fault-injection fields of [`fixture::Respond`]) and can be watched to
//!   prove a client leaks no connection or response and cancels promptly
//!   ([`MockUpstream::open_connections`], [`MockUpstream::active_responses`],
//!   [`MockUpstream::wait_response_closed`]).

pub mod bench;
mod body;
pub mod canned;
pub mod fixture;
pub mod matcher;
mod server;

pub use server::{MockUpstream, Received, ResponseEnd, ResponseRecord};
