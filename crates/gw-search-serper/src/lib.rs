//! [Serper](https://serper.dev) (Google results as JSON, `google.serper.dev`) for `llm-gateway`,
//! behind the gateway's [`SearchProvider`](gateway_core::SearchProvider) trait.
//!
//! - Three endpoints, named by [`SearchRequest::model`](gateway_core::SearchRequest::model):
//!   `search` (web results, from `organic`), `news` (from `news`, with the article's date and
//!   publisher) and `images` (from `images`: the page each image is on).
//! - The gateway's request fields mapped onto Serper's: `max_results` → `num`, `time_range` →
//!   `tbs` (`qdr:d|w|m|y`), `country` → `gl`, `language` → `hl`, `include_domains` → `site:`
//!   clauses added to the query (as LiteLLM does), `include_answer` → Google's answer box. What
//!   Serper cannot do (`exclude_domains`, `include_content`) is refused before any call, naming
//!   the field, so a fallback route may serve it.
//! - Serper's own request fields (`page`, `location`, `autocorrect`, `tbs`) pass through
//!   `options`; any other name is refused.
//! - Billing in Serper credits: the answer's `credits` settles the call, priced at the credit
//!   price of this crate's `pricing.toml`.
//! - The key travels only in the `X-API-KEY` header (default variable `SERPER_API_KEY`), never in
//!   a URL.
//!
//! The crate never retries: the router decides from
//! [`Error::is_retryable`](gateway_core::Error::is_retryable).
//!
//! # Example
//! ```no_run
//! use gateway_core::{SearchProvider, SearchRequest, TimeRange};
//! use gw_search_serper::SerperClient;
//!
//! # async fn run() -> gateway_core::Result<()> {
//! let serper = SerperClient::from_env()?; // reads SERPER_API_KEY
//! let mut req = SearchRequest::new("news", "rust 2024 edition");
//! req.max_results = Some(5);
//! req.time_range = Some(TimeRange::Week);
//! let answer = serper.search(req).await?;
//! for r in &answer.results {
//!     println!("{} <{}> {:?}", r.title, r.url, r.published_date);
//! }
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

use std::sync::Arc;

use gateway_core::{PriceCatalog, ProviderConfig, Registry, Result, Service};
use serde::Deserialize;

mod client;
mod convert;
mod error;
mod search;
mod wire;

pub use client::{DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, SerperClient, SerperClientBuilder};

/// The provider id: the `serper` of `serper/search`, and the name in errors and metrics.
pub const PROVIDER: &str = "serper";

/// The endpoints this crate serves, as [`SearchRequest::model`](gateway_core::SearchRequest::model)
/// names them (`serper/news` routes to `news`).
pub const ENDPOINTS: [&str; 3] = ["search", "news", "images"];

/// The price of a Serper credit, merged into the gateway's catalog at registration.
pub const PRICES: &str = include_str!("../pricing.toml");

/// Serper's own settings under `[providers.serper]`, beyond the ones every provider has. None:
/// any other field is refused, naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerperConfig {}

/// Builds a [`SerperClient`] from `cfg` and adds it to `reg` as the `serper` search provider,
/// with its credit price and the models `cfg` announces (a plain id announces a search
/// endpoint).
///
/// `cfg.enabled` is not consulted: whoever walks the configuration decides which providers to
/// register. Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when
/// the API key is not set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming
/// the field, for anything else wrong in `cfg`.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let SerperConfig {} = cfg.extra(PROVIDER)?;
    let client = Arc::new(SerperClient::from_config(cfg)?);
    reg.set_address(PROVIDER, client.base_url());
    reg.add_search(client);
    reg.announce_configured(PROVIDER, Service::Search, &cfg.models)?;
    reg.add_prices(PriceCatalog::from_toml(
        PRICES,
        "gw-search-serper/pricing.toml",
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{Charge, Cost, ErrorKind, PriceUnit};

    #[test]
    fn the_shipped_prices_read_and_price_a_credit() {
        let catalog = PriceCatalog::from_toml(PRICES, "pricing.toml").unwrap();
        assert_eq!(catalog.version_of(PROVIDER), "2026-11-28");
        let one = catalog.charges_cost(PROVIDER, "search", &[Charge::new(PriceUnit::Credit, 1)]);
        assert_eq!(one, Some("0.001".parse::<Cost>().unwrap()));
        let two = catalog.charges_cost(PROVIDER, "news", &[Charge::new(PriceUnit::Credit, 2)]);
        assert_eq!(two, Some("0.002".parse::<Cost>().unwrap()));
    }

    #[test]
    fn register_adds_the_search_provider_its_models_and_prices() {
        let cfg = ProviderConfig {
            api_key: Some("serper-test-key".into()),
            models: vec!["search".into(), "news".into()],
            ..ProviderConfig::default()
        };
        let mut reg = Registry::new();
        register(&mut reg, &cfg).unwrap();
        assert!(reg.search(PROVIDER).is_some());
        assert_eq!(reg.services_of(PROVIDER), [Service::Search]);
        assert_eq!(reg.model_names(), ["serper/news", "serper/search"]);
        assert!(reg.prices().credit_price(PROVIDER).is_some());
    }

    #[test]
    fn register_refuses_unknown_settings_and_a_missing_key() {
        let mut cfg: ProviderConfig = toml::from_str("api_key = \"k\"\nengine = \"bing\"").unwrap();
        let err = register(&mut Registry::new(), &cfg).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        assert!(err.message().contains("providers.serper.engine"), "{err}");

        cfg = ProviderConfig {
            api_key_env: Some("GW_SERPER_TEST_SURELY_UNSET".into()),
            ..ProviderConfig::default()
        };
        let err = register(&mut Registry::new(), &cfg).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Unavailable);
        assert!(
            err.message().contains("GW_SERPER_TEST_SURELY_UNSET"),
            "{err}"
        );
    }
}
