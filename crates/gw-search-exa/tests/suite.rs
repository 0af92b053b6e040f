//! The shared provider suite (`gateway_core::testing`) against a mock Exa that plays the recorded
//! answers of `tests/fixtures/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_core::testing::{Case, Harness, Served};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_search_exa::{ExaClient, PROVIDER};
use serde_json::json;

struct MockExa;

/// The error statuses recorded (or documented with a verbatim body) for Exa.
const RECORDED_ERRORS: &[u16] = &[400, 401, 402, 429];

impl Harness for MockExa {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn search(&self) -> Option<(&'static str, &'static [u16])> {
        Some(("search", RECORDED_ERRORS))
    }

    async fn serve(&self, case: Case) -> Served {
        let file = match case {
            Case::Search => "search/highlights.json".to_owned(),
            Case::SearchEmpty => "search/empty.json".to_owned(),
            Case::SearchError(status) => format!("errors/{status}.json"),
            other => panic!("no recording for {other:?}"),
        };
        let step = UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some("/search".into()),
                headers: BTreeMap::from([("x-api-key".to_owned(), json!("suite-key"))]),
                json: Some(json!({"contents": {"highlights": true}})),
                ..UpstreamExpect::default()
            },
            respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), &file),
        };
        let mock = Arc::new(MockUpstream::start(vec![step]).await.unwrap());
        let client = ExaClient::builder()
            .api_key("suite-key")
            .base_url(mock.url())
            .build()
            .unwrap();
        Served {
            text: None,
            embedding: None,
            search: Some(Arc::new(client)),
            image: None,
            speech: None,
            transcription: None,
            verify: Box::new(move || mock.verify()),
        }
    }
}

#[tokio::test]
async fn exa_passes_the_shared_suite() {
    gateway_core::testing::run(&MockExa).await;
}
