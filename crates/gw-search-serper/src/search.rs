//! [`SearchProvider`] for [`SerperClient`]: the IO only; every mapping is in `convert`.

use gateway_core::http;
use gateway_core::{Billing, Result, SearchProvider, SearchRequest, SearchResponse};

use crate::{PROVIDER, SerperClient, convert, wire};

impl SearchProvider for SerperClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Refuses, before any call, an endpoint other than `search`, `news` and `images`
    /// (`NotFound`), what Serper lacks (`Unsupported`: `exclude_domains`, `include_content`,
    /// `max_results` above 100) and values it can never take (`InvalidRequest`, naming the field:
    /// an unknown or duplicated option, a country that is not an ISO code).
    fn check(&self, req: &SearchRequest) -> Result<()> {
        convert::search_request(req).map(|_| ())
    }

    /// One credit, or two for more than 10 results, priced as Serper credits.
    fn billing(&self, req: &SearchRequest) -> Billing {
        convert::estimate(req)
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let (endpoint, body) = convert::search_request(&req)?;
        tracing::debug!(endpoint = endpoint.path(), num = ?body.num, "Serper search");
        let response = self.post_json(endpoint.path(), &body).await?;
        let answer: wire::SearchResponse = http::read_json(PROVIDER, response).await?;
        Ok(convert::search_response(answer, &req, endpoint))
    }
}
