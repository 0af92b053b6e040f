//! [`SearchProvider`] for [`TavilyClient`]: IO here, everything else delegated to `convert`.

use gateway_core::http::read_json;
use gateway_core::{Billing, Result, SearchProvider, SearchRequest, SearchResponse};

use crate::{PROVIDER, TavilyClient, convert, wire};

impl SearchProvider for TavilyClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Refuses an endpoint other than `search` (`NotFound`); `max_results` above 20 and
    /// `language` (`Unsupported`); a country Tavily has no name for, an unknown or core-field
    /// option, or an invalid `search_depth` / `topic` (`InvalidRequest`).
    fn check(&self, req: &SearchRequest) -> Result<()> {
        convert::check(req)
    }

    /// One search: 2 credits with `search_depth: "advanced"` (or `auto_parameters`, which may
    /// pick it), else 1.
    fn billing(&self, req: &SearchRequest) -> Billing {
        convert::estimate(req)
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let body = convert::search_request(&req)?;
        let response = self.post_json("/search", &body).await?;
        let answer: wire::SearchResponse = read_json(PROVIDER, response).await?;
        Ok(convert::search_response(&req, answer))
    }
}
