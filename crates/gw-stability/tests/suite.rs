//! The shared provider suite (`gateway_core::testing`) against a mock Stability AI that plays
//! the recorded answers of `tests/fixtures/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_core::testing::{Case, Harness, Served};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_stability::{PROVIDER, StabilityClient};
use serde_json::json;

struct MockStability;

const KEY: &str = "sk-suite-key";

impl Harness for MockStability {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// A 403 is not listed: Stability's documented 403 is its moderation refusal
    /// (`ContentFiltered`, tested in `tests/http.rs`), not the key refusal the suite expects.
    fn image(&self) -> Option<(&'static str, &'static [u16])> {
        Some(("core", &[400, 401, 402, 413, 422, 429, 500]))
    }

    async fn serve(&self, case: Case) -> Served {
        let file = match case {
            Case::Image => "image/json.json".to_owned(),
            Case::ImageError(status) => format!("errors/{status}.json"),
            other => panic!("no recording for {other:?}"),
        };
        let step = UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some("/v2beta/stable-image/generate/core".into()),
                headers: BTreeMap::from([
                    ("authorization".to_owned(), json!(format!("Bearer {KEY}"))),
                    ("accept".to_owned(), json!("application/json")),
                ]),
                multipart: Some(BTreeMap::from([(
                    "prompt".to_owned(),
                    json!("A lighthouse at dusk, oil painting"),
                )])),
                ..UpstreamExpect::default()
            },
            respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), &file),
        };
        let mock = Arc::new(MockUpstream::start(vec![step]).await.unwrap());
        let client = Arc::new(
            StabilityClient::builder()
                .api_key(KEY)
                .base_url(mock.url())
                .build()
                .unwrap(),
        );
        Served {
            text: None,
            embedding: None,
            search: None,
            image: Some(client),
            speech: None,
            transcription: None,
            verify: Box::new(move || mock.verify()),
        }
    }
}

#[tokio::test]
async fn stability_passes_the_shared_suite() {
    gateway_core::testing::run(&MockStability).await;
}
