//! The shared provider suite (`gateway_core::testing`) against a mock WaveSpeed that plays the
//! recorded answers of `tests/fixtures/`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gateway_core::PollPolicy;
use gateway_core::testing::{Case, Harness, Served};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_wavespeed::{PROVIDER, WaveSpeedClient};
use serde_json::json;

struct MockWaveSpeed;

const KEY: &str = "wavespeed-suite-key";
const MODEL: &str = "wavespeed-ai/flux-dev";
const JOB: &str = "6488c2754f6f4dfea924382fa14d11bd";

fn step(method: &str, path: &str, file: &str) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some(method.into()),
            path: Some(path.into()),
            headers: BTreeMap::from([("authorization".to_owned(), json!(format!("Bearer {KEY}")))]),
            json: (method == "POST")
                .then(|| json!({"prompt": "A lighthouse at dusk, oil painting"})),
            ..UpstreamExpect::default()
        },
        respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), file),
    }
}

impl Harness for MockWaveSpeed {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn image(&self) -> Option<(&'static str, &'static [u16])> {
        Some((MODEL, &[400, 401, 404, 429, 500, 503]))
    }

    async fn serve(&self, case: Case) -> Served {
        let submit = format!("/api/v3/{MODEL}");
        let result = format!("/api/v3/predictions/{JOB}/result");
        let steps = match case {
            Case::Image => vec![
                step("POST", &submit, "submit/created.json"),
                step("GET", &result, "result/processing.json"),
                step("GET", &result, "result/completed.json"),
            ],
            Case::ImageError(status) => {
                vec![step("POST", &submit, &format!("errors/{status}.json"))]
            }
            other => panic!("no recording for {other:?}"),
        };
        let mock = Arc::new(MockUpstream::start(steps).await.unwrap());
        let client = Arc::new(
            WaveSpeedClient::builder()
                .api_key(KEY)
                .base_url(mock.url())
                .poll_policy(PollPolicy {
                    first_interval: Duration::ZERO,
                    max_interval: Duration::ZERO,
                    deadline: Duration::from_secs(60),
                })
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
async fn wavespeed_passes_the_shared_suite() {
    gateway_core::testing::run(&MockWaveSpeed).await;
}
