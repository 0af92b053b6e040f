//! Web search.

use std::future::Future;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{Billing, Charge, PriceUnit, Result};

/// How recent results must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimeRange {
    /// The last day.
    Day,
    /// The last week.
    Week,
    /// The last month.
    Month,
    /// The last year.
    Year,
}

/// A search request, addressed to one provider's endpoint (after routing): `search` on every
/// provider, and the providers' other endpoints where they have them (`news`, `images`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct SearchRequest {
    /// The provider's endpoint or model (`search`).
    pub model: String,
    /// What to look for.
    pub query: String,
    /// The most results wanted.
    pub max_results: Option<u32>,
    /// How recent results must be.
    pub time_range: Option<TimeRange>,
    /// Only results from these domains.
    pub include_domains: Vec<String>,
    /// No results from these domains.
    pub exclude_domains: Vec<String>,
    /// Country to search from (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// Language of results (ISO 639-1).
    pub language: Option<String>,
    /// Whether to fetch each result's page content.
    pub include_content: bool,
    /// Whether to ask the provider for an answer to the query.
    pub include_answer: bool,
    /// Provider-specific options, passed through; a provider refuses one it does not know.
    pub options: Map<String, Value>,
}

impl SearchRequest {
    /// A request to `model` for `query`.
    pub fn new(model: impl Into<String>, query: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            query: query.into(),
            ..Self::default()
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SearchResult {
    /// The page title.
    pub title: String,
    /// The page URL.
    pub url: String,
    /// A short excerpt.
    pub snippet: String,
    /// The provider's relevance score, where it gives one.
    pub score: Option<f64>,
    /// When the page was published, as the provider writes it.
    pub published_date: Option<String>,
    /// The page content, when asked for.
    pub content: Option<String>,
    /// An image of the result: the image itself for an image search, else the page's main
    /// image, where the provider gives one.
    pub image: Option<String>,
}

/// Search results.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SearchResponse {
    /// The endpoint that answered.
    pub model: String,
    /// The query as run.
    pub query: String,
    /// The provider's answer, when asked for and given.
    pub answer: Option<String>,
    /// The results, best first.
    pub results: Vec<SearchResult>,
    /// What the call bills: the provider's credits (or searches and pages) as units, and the
    /// charges the pricing catalog prices, from what the provider reported where it did.
    /// Not kept by the response cache: an answer served again bills nothing.
    #[serde(skip)]
    pub billing: Billing,
}

impl SearchResponse {
    /// The answer of `model` to `query`, with `results`, billed as `billing`.
    pub fn new(
        model: impl Into<String>,
        query: impl Into<String>,
        results: Vec<SearchResult>,
        billing: Billing,
    ) -> Self {
        Self {
            model: model.into(),
            query: query.into(),
            answer: None,
            results,
            billing,
        }
    }
}

impl SearchResult {
    /// A result: `title`, `url` and `snippet`, the rest unset.
    pub fn new(
        title: impl Into<String>,
        url: impl Into<String>,
        snippet: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            url: url.into(),
            snippet: snippet.into(),
            ..Self::default()
        }
    }
}

/// A web search provider.
///
/// Implementations do IO and mapping only: retries, deadlines and fallbacks belong to the router.
pub trait SearchProvider: Send + Sync {
    /// The provider id.
    fn provider(&self) -> &'static str;

    /// Refuses, before any IO, what the provider cannot do with `req`: an option it lacks
    /// (and cannot map) is [`Unsupported`](crate::ErrorKind::Unsupported) naming the option, so
    /// a fallback route may serve it; a value it can never take is
    /// [`InvalidRequest`](crate::ErrorKind::InvalidRequest).
    fn check(&self, req: &SearchRequest) -> Result<()> {
        let _ = req;
        Ok(())
    }

    /// What `req` will bill, for the plan check before the call: one search by default.
    fn billing(&self, req: &SearchRequest) -> Billing {
        let _ = req;
        Billing::new(1, vec![Charge::new(PriceUnit::Search, 1)])
    }

    /// Runs `req`.
    fn search(&self, req: SearchRequest) -> impl Future<Output = Result<SearchResponse>> + Send;
}

/// The object-safe twin of [`SearchProvider`].
pub trait DynSearchProvider: Send + Sync {
    /// See [`SearchProvider::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`SearchProvider::check`].
    fn check_dyn(&self, req: &SearchRequest) -> Result<()>;
    /// See [`SearchProvider::billing`].
    fn billing_dyn(&self, req: &SearchRequest) -> Billing;
    /// See [`SearchProvider::search`].
    fn search_dyn(&self, req: SearchRequest) -> BoxFuture<'_, Result<SearchResponse>>;
}

impl<T: SearchProvider> DynSearchProvider for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn check_dyn(&self, req: &SearchRequest) -> Result<()> {
        self.check(req)
    }

    fn billing_dyn(&self, req: &SearchRequest) -> Billing {
        self.billing(req)
    }

    fn search_dyn(&self, req: SearchRequest) -> BoxFuture<'_, Result<SearchResponse>> {
        Box::pin(self.search(req))
    }
}
