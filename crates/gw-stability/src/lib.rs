//! Work in progress: the stability provider crate (being written).
#![deny(missing_docs)]

use gateway_core::{Error, ErrorKind, ProviderConfig, Registry, Result};

/// The provider id.
pub const PROVIDER: &str = "stability";

/// Registers the provider (not yet written: always left out).
pub fn register(_reg: &mut Registry, _cfg: &ProviderConfig) -> Result<()> {
    Err(Error::new(ErrorKind::Unavailable, "not yet written").with_provider(PROVIDER))
}
