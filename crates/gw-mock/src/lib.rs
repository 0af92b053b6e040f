//! Test support shared by the provider crates, the server and `cargo xtask contract`:
//!
//! - [`fixture`]: the contract-fixture format of `shared/contract-fixtures.md` (an external
//!   contract: fields are only ever added, optional).
//! - [`matcher`]: the format's subset match, with readable differences.
//! - [`canned`]: a mock with canned answers in the providers' formats, for trying things by hand.
//! - [`MockUpstream`]: a local HTTP server that plays a list of upstream steps in order,
//!   records what it received, and reports mismatches, missing and extra calls.

pub mod canned;
pub mod fixture;
pub mod matcher;
mod server;

pub use server::{MockUpstream, Received};
