//! [`SearchProvider`] for [`ExaClient`]: IO here, everything else delegated to `convert`.

use gateway_core::{Billing, Result, SearchProvider, SearchRequest, SearchResponse};

use crate::convert::{self, Date, Endpoint};
use crate::{ExaClient, PROVIDER, wire};

impl SearchProvider for ExaClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Refuses an endpoint other than `search` and `answer` (`NotFound`), an option or core field
    /// the endpoint lacks (`Unsupported`, naming it), and a value Exa never takes
    /// (`InvalidRequest`).
    fn check(&self, req: &SearchRequest) -> Result<()> {
        convert::check(req).map(|_| ())
    }

    /// One search of the requested `type` (default `auto`), each result asked for beyond the 10
    /// a search includes, and each page summary when `options.contents.summary` asks for them;
    /// or one answer.
    fn billing(&self, req: &SearchRequest) -> Billing {
        convert::estimate(req)
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let endpoint = convert::check(&req)?;
        match endpoint {
            Endpoint::Search => {
                let body = convert::search_request(&req, Date::today())?;
                let answer: wire::SearchResponse = self.post(endpoint.path(), &body).await?;
                if let Some(id) = &answer.request_id {
                    tracing::debug!(request_id = %id, resolved = ?answer.resolved_search_type, "Exa search");
                }
                Ok(convert::search_response(&req, answer))
            }
            Endpoint::Answer => {
                let body = convert::answer_request(&req)?;
                let answer: wire::AnswerResponse = self.post(endpoint.path(), &body).await?;
                if let Some(id) = &answer.request_id {
                    tracing::debug!(request_id = %id, "Exa answer");
                }
                Ok(convert::answer_response(&req, answer))
            }
        }
    }
}
