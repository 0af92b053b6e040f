//! [Exa](https://exa.ai/docs) web search for `llm-gateway`.
//!
//! - [`ExaClient`] implements [`gateway_core::SearchProvider`] on two endpoints: `search`
//!   (`POST /search`: results with highlights as snippets, page text on request) and `answer`
//!   (`POST /answer`: an answer, with its citations as the results).
//! - The gateway's request maps onto Exa's fields: `max_results` to `numResults`, `time_range`
//!   to `startPublishedDate`, the domain lists to `includeDomains` / `excludeDomains`, `country`
//!   to `userLocation`, `include_content` to `contents.text`; Exa's other documented fields pass
//!   through `options` by their camelCase names, and anything else is refused before any call.
//! - Every answer is billed at Exa's own `costDollars.total`; the crate's `pricing.toml` prices
//!   the estimate a plan is checked against.
//! - The key comes from `EXA_API_KEY` by default and is only ever sent as `x-api-key`.
//! - [`register`] adds the client to a [`Registry`] from its [`ProviderConfig`].
//!
//! # Example
//! ```no_run
//! use gateway_core::{SearchProvider, SearchRequest, TimeRange};
//! use gw_search_exa::ExaClient;
//!
//! # async fn example() -> gateway_core::Result<()> {
//! let client = ExaClient::builder().api_key("...").build()?;
//! let mut req = SearchRequest::new("search", "retrieval augmented generation evaluation");
//! req.max_results = Some(5);
//! req.time_range = Some(TimeRange::Month);
//! let found = client.search(req).await?;
//! for r in &found.results {
//!     println!("{} <{}>\n  {}", r.title, r.url, r.snippet);
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

pub use client::{ExaClient, ExaClientBuilder};

/// The provider id: the `exa` of `exa/search`, and the name in errors and metrics.
pub const PROVIDER: &str = "exa";

/// The environment variable the key is read from unless configured otherwise.
pub const DEFAULT_API_KEY_ENV: &str = "EXA_API_KEY";

/// Exa's API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.exa.ai";

/// Exa's prices (`search` by type, results beyond 10, summaries; `answer`), merged into the
/// gateway's catalog at registration.
pub const PRICES: &str = include_str!("../pricing.toml");

/// Exa's own settings under `[providers.exa]`, beyond the ones every provider has. None: any
/// other field is refused, naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExaConfig {}

/// Builds an [`ExaClient`] from `cfg` and adds it to `reg` as the `exa` search provider, with
/// its prices and the endpoints `cfg` announces (a plain id, `search` or `answer`, announces a
/// search model).
///
/// `cfg.enabled` is not consulted: whoever walks the configuration decides which providers to
/// register. Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when
/// the API key is not set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming
/// the field, for anything else wrong in `cfg`.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let ExaConfig {} = cfg.extra(PROVIDER)?;
    let client = Arc::new(ExaClient::from_config(cfg)?);
    reg.set_address(PROVIDER, client.base_url());
    reg.add_search(client);
    reg.announce_configured(PROVIDER, Service::Search, &cfg.models)?;
    reg.add_prices(PriceCatalog::from_toml(
        PRICES,
        "gw-search-exa/pricing.toml",
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{Charge, ErrorKind, PriceUnit};
    use serde_json::json;

    /// A `[providers.exa]` section, written as JSON.
    fn cfg(section: serde_json::Value) -> ProviderConfig {
        serde_json::from_value(section).unwrap()
    }

    #[test]
    fn register_adds_the_search_provider_and_its_prices() {
        let mut reg = Registry::new();
        register(
            &mut reg,
            &cfg(json!({"api_key": "k", "models": ["search", "answer"]})),
        )
        .unwrap();
        assert!(reg.search(PROVIDER).is_some());
        assert_eq!(reg.services_of(PROVIDER), [Service::Search]);
        assert_eq!(reg.model_names(), ["exa/answer", "exa/search"]);
        let prices = reg.prices();
        assert_eq!(prices.version_of(PROVIDER), "2026-11-28");
        let search = [Charge::new(PriceUnit::Search, 1).depth("auto")];
        let cost = prices.charges_cost(PROVIDER, "search", &search).unwrap();
        assert_eq!(cost.to_string(), "0.007");
        let extra = [
            Charge::new(PriceUnit::Search, 1).depth("deep"),
            Charge::new(PriceUnit::SearchResult, 15).depth("deep"),
        ];
        let cost = prices.charges_cost(PROVIDER, "search", &extra).unwrap();
        assert_eq!(cost.to_string(), "0.027");
        let answer = [Charge::new(PriceUnit::Request, 1)];
        let cost = prices.charges_cost(PROVIDER, "answer", &answer).unwrap();
        assert_eq!(cost.to_string(), "0.005");
        // Not stated by Exa: unknown, never guessed.
        let unpriced = [Charge::new(PriceUnit::Search, 1).depth("deep-lite")];
        assert_eq!(prices.charges_cost(PROVIDER, "search", &unpriced), None);
    }

    #[test]
    fn register_refuses_what_it_cannot_use() {
        let mut reg = Registry::new();
        let err = register(&mut reg, &cfg(json!({"api_key": "k", "bill_to": "x"}))).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        assert!(err.to_string().contains("providers.exa.bill_to"), "{err}");
        let err = register(
            &mut reg,
            &cfg(json!({"api_key_env": "GW_EXA_TEST_SURELY_UNSET"})),
        )
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Unavailable);
        let err = register(
            &mut reg,
            &cfg(json!({"api_key": "k", "models": [{"id": "search", "serves": ["chat"]}]})),
        )
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
    }

    #[test]
    fn the_shipped_prices_name_their_sources() {
        PriceCatalog::from_toml(PRICES, "pricing.toml").unwrap();
        assert!(PRICES.contains("\nversion = \"2026-11-28\"\n"));
        let entries = PRICES.split("\n[[").skip(1).collect::<Vec<_>>();
        assert!(!entries.is_empty());
        for entry in entries {
            assert!(entry.contains("provider = \"exa\""), "{entry}");
            let source = entry
                .lines()
                .find(|l| l.starts_with("source = "))
                .unwrap_or_else(|| panic!("no source: {entry}"));
            assert!(source.contains("https://"), "{source}");
            assert!(source.contains("read 2026-11-28"), "{source}");
        }
    }
}
