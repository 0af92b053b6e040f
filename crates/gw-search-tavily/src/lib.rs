//! [Tavily](https://docs.tavily.com/documentation/api-reference/endpoint/search) web search for
//! `llm-gateway`.
//!
//! - [`TavilyClient`] implements [`gateway_core::SearchProvider`] on Tavily's one search endpoint,
//!   `search` (`POST https://api.tavily.com/search`).
//! - The gateway's fields map onto Tavily's: `max_results` (up to 20), `time_range`,
//!   `include_domains` / `exclude_domains`, `country` (an ISO 3166-1 alpha-2 code, sent as the
//!   country name Tavily takes), `include_content` (each page as markdown) and `include_answer`.
//!   Tavily's other documented request fields pass through `options` (`search_depth`, `topic`, ...).
//! - Billing: every request asks for `include_usage`, and the credits Tavily reports are what the
//!   call bills; without them, the credits its search depth costs.
//! - The key comes from `TAVILY_API_KEY` by default and is only ever sent as
//!   `Authorization: Bearer`.
//! - [`register`] adds the client to a [`Registry`] from its [`ProviderConfig`], with its prices.
//!
//! # Example
//! ```no_run
//! use gateway_core::{SearchProvider, SearchRequest, TimeRange};
//! use gw_search_tavily::TavilyClient;
//!
//! # async fn example() -> gateway_core::Result<()> {
//! let client = TavilyClient::builder().api_key("tvly-...").build()?;
//! let mut req = SearchRequest::new("search", "Who won the 2024 Nobel Prize in Physics?");
//! req.max_results = Some(3);
//! req.time_range = Some(TimeRange::Year);
//! req.include_answer = true;
//! let answer = client.search(req).await?;
//! println!("{:?}", answer.answer);
//! for r in &answer.results {
//!     println!("{} {}", r.title, r.url);
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
mod country;
mod error;
mod search;
mod wire;

pub use client::{TavilyClient, TavilyClientBuilder};

/// The provider id: the `tavily` of `tavily/search`, and the name in errors and metrics.
pub const PROVIDER: &str = "tavily";

/// The environment variable the API key is read from unless configured otherwise.
pub const DEFAULT_ENV: &str = "TAVILY_API_KEY";

/// Tavily's API base URL.
pub const DEFAULT_BASE: &str = "https://api.tavily.com";

/// The endpoints this crate serves, as the model names of search requests (`tavily/search`).
pub const ENDPOINTS: &[&str] = &["search"];

/// Tavily's prices (USD per credit, credits per search by depth), merged into the gateway's
/// catalog at registration.
pub const PRICES: &str = include_str!("../pricing.toml");

/// Tavily's own settings under `[providers.tavily]`, beyond the ones every provider has. None
/// yet: any other field is refused, naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TavilyConfig {}

/// Builds a [`TavilyClient`] from `cfg` and adds it to `reg` as the `tavily` search provider,
/// with its prices and the models `cfg` announces (a plain id announces a search endpoint).
///
/// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when no API key
/// is set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming the field, for
/// anything else wrong in `cfg`. Whether to call it for a disabled provider (`cfg.enabled`) is
/// the caller's choice.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let TavilyConfig {} = cfg.extra(PROVIDER)?;
    let client = Arc::new(TavilyClient::from_config(cfg)?);
    reg.set_address(PROVIDER, client.base_url());
    reg.add_search(client);
    reg.announce_configured(PROVIDER, Service::Search, &cfg.models)?;
    reg.add_prices(PriceCatalog::from_toml(
        PRICES,
        "gw-search-tavily/pricing.toml",
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{Charge, PriceUnit};

    #[test]
    fn the_shipped_prices_parse_and_price_searches_and_credits() {
        let catalog = PriceCatalog::from_toml(PRICES, "pricing.toml").unwrap();
        assert_eq!(catalog.version_of(PROVIDER), "2026-11-28");
        let cost = |charges: &[Charge]| {
            catalog
                .charges_cost(PROVIDER, "search", charges)
                .map(|c| c.to_string())
        };
        let search = |depth: &str| Charge::new(PriceUnit::Search, 1).depth(depth);
        assert_eq!(cost(&[search("basic")]).as_deref(), Some("0.008"));
        assert_eq!(cost(&[search("advanced")]).as_deref(), Some("0.016"));
        assert_eq!(cost(&[search("fast")]).as_deref(), Some("0.008"));
        assert_eq!(cost(&[search("ultra-fast")]).as_deref(), Some("0.008"));
        assert_eq!(
            cost(&[Charge::new(PriceUnit::Credit, 3)]).as_deref(),
            Some("0.024")
        );
    }
}
