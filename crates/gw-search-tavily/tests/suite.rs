//! The shared provider suite (`gateway_core::testing`) against a mock Tavily that plays the
//! recorded answers of `tests/fixtures/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_core::testing::{Case, Harness, Served};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_search_tavily::{PROVIDER, TavilyClient};
use serde_json::json;

struct MockTavily;

const KEY: &str = "tvly-suite-key";

impl Harness for MockTavily {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn search(&self) -> Option<(&'static str, &'static [u16])> {
        Some(("search", &[401, 422, 429, 432, 500]))
    }

    async fn serve(&self, case: Case) -> Served {
        let file = match case {
            Case::Search => "search/basic.json".to_owned(),
            Case::SearchEmpty => "search/empty.json".to_owned(),
            Case::SearchError(status) => format!("errors/{status}.json"),
            other => panic!("no recording for {other:?}"),
        };
        let step = UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some("/search".into()),
                headers: BTreeMap::from([(
                    "authorization".to_owned(),
                    json!(format!("Bearer {KEY}")),
                )]),
                json: Some(json!({"include_usage": true})),
                ..UpstreamExpect::default()
            },
            respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), &file),
        };
        let mock = Arc::new(MockUpstream::start(vec![step]).await.unwrap());
        let client = Arc::new(
            TavilyClient::builder()
                .api_key(KEY)
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
async fn tavily_passes_the_shared_suite() {
    gateway_core::testing::run(&MockTavily).await;
}
