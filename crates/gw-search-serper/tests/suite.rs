//! The shared provider suite (`gateway_core::testing`) against a mock Serper that plays the
//! recorded answers of `tests/fixtures/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_core::testing::{Case, Harness, Served};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_search_serper::{PROVIDER, SerperClient};
use serde_json::json;

struct MockSerper;

/// The error statuses Serper has recorded answers for: 403 (a bad key). Its other recorded
/// error, 400 `Not enough credits`, is a quota (`QuotaExceeded`) rather than the suite's
/// `InvalidRequest` for a 400, and is covered by the crate's classify table and contract
/// fixtures; no 429 or 5xx body has been recorded.
const ERRORS: &[u16] = &[403];

impl Harness for MockSerper {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn search(&self) -> Option<(&'static str, &'static [u16])> {
        Some(("search", ERRORS))
    }

    async fn serve(&self, case: Case) -> Served {
        let file = match case {
            Case::Search => "search/credits.json".to_owned(),
            Case::SearchEmpty => "search/empty.json".to_owned(),
            Case::SearchError(403) => "errors/403_unauthorized.json".to_owned(),
            other => panic!("no recording for {other:?}"),
        };
        let step = UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some("/search".into()),
                headers: BTreeMap::from([("x-api-key".to_owned(), json!("suite-key"))]),
                json: Some(json!({"q": "Who won the 2024 Nobel Prize in Physics?"})),
                ..UpstreamExpect::default()
            },
            respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), &file),
        };
        let mock = Arc::new(MockUpstream::start(vec![step]).await.unwrap());
        let client = Arc::new(
            SerperClient::builder()
                .api_key("suite-key")
                .base_url(mock.url())
                .build()
                .unwrap(),
        );
        Served {
            text: None,
            embedding: None,
            search: Some(client),
            image: None,
            speech: None,
            transcription: None,
            verify: Box::new(move || mock.verify()),
        }
    }
}

#[tokio::test]
async fn serper_passes_the_shared_suite() {
    gateway_core::testing::run(&MockSerper).await;
}
