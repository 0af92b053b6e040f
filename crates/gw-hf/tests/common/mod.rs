//! What the mock-router tests share: the token, an expected chat call, and a client on a mock.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use gw_hf::HfClient;
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use serde_json::{Value, json};

pub const TOKEN: &str = "hf_test_token_0123456789";

/// A chat call the client must make (with the bearer token and a JSON body matching `json`),
/// answered with `respond`.
pub fn step(json: Option<Value>, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some("/v1/chat/completions".into()),
            headers: BTreeMap::from([
                ("authorization".to_owned(), json!(format!("Bearer {TOKEN}"))),
                ("content-type".to_owned(), json!("application/json")),
            ]),
            json,
            ..UpstreamExpect::default()
        },
        respond,
    }
}

/// A mock router playing `steps`, and a client pointed at it.
pub async fn mock(steps: Vec<UpstreamStep>) -> (MockUpstream, HfClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = HfClient::builder()
        .api_key(TOKEN)
        .base_url(mock.url())
        .build()
        .unwrap();
    (mock, client)
}
