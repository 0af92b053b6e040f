//! The public API of `gw-search-exa` against a mock Exa (`gw_mock::MockUpstream`): the key
//! header, the bodies sent, and answers and errors as the router sees them.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::{ErrorKind, SearchProvider, SearchRequest, TimeRange};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_search_exa::{ExaClient, PROVIDER};
use serde_json::{Value, json};

const KEY: &str = "exa-test-key-0123456789";

fn step(path: &str, json: Option<Value>, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(path.into()),
            headers: BTreeMap::from([
                ("x-api-key".to_owned(), json!(KEY)),
                ("content-type".to_owned(), json!("application/json")),
            ]),
            json,
            ..UpstreamExpect::default()
        },
        respond,
    }
}

async fn mock(steps: Vec<UpstreamStep>) -> (MockUpstream, ExaClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = ExaClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .build()
        .unwrap();
    (mock, client)
}

/// Everything the recording expected was received, and the key never went anywhere but its
/// header.
fn assert_clean(mock: &MockUpstream) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    for got in mock.received() {
        let query = format!("{:?}", got.query);
        assert!(
            !got.path.contains(KEY) && !query.contains(KEY),
            "key in the URL"
        );
        assert!(
            got.header("authorization").is_none(),
            "a second auth header"
        );
        let body = String::from_utf8_lossy(&got.body);
        assert!(!body.contains(KEY), "key in the body");
    }
}

#[tokio::test]
async fn search_sends_the_key_and_exas_body() {
    let (mock, client) = mock(vec![step(
        "/search",
        None,
        Respond::recorded(env!("CARGO_MANIFEST_DIR"), "search/text.json"),
    )])
    .await;
    let mut req = SearchRequest::new("search", "What is Pydantic AI?");
    req.max_results = Some(1);
    req.include_domains = vec!["ai.pydantic.dev".into()];
    req.time_range = Some(TimeRange::Year);
    req.country = Some("gb".into());
    req.include_content = true;
    req.options = json!({"type": "auto", "contents": {"text": {"maxCharacters": 500}}})
        .as_object()
        .cloned()
        .unwrap();
    client.check(&req).unwrap();
    let found = client.search(req).await.unwrap();

    let sent = mock.received()[0].json().unwrap();
    let start = sent["startPublishedDate"].as_str().unwrap().to_owned();
    assert_eq!(
        sent,
        json!({
            "query": "What is Pydantic AI?",
            "numResults": 1,
            "includeDomains": ["ai.pydantic.dev"],
            "startPublishedDate": start,
            "userLocation": "GB",
            "contents": {"highlights": true, "text": {"maxCharacters": 500}},
            "type": "auto"
        })
    );
    let bytes = start.as_bytes();
    assert!(
        start.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-',
        "not YYYY-MM-DD: {start}"
    );

    assert_eq!(found.results.len(), 1);
    assert_eq!(found.results[0].title, "Index");
    assert!(found.results[0].content.is_some());
    assert_eq!(found.billing.units, 1);
    assert_eq!(found.billing.reported_cost.unwrap().to_string(), "0.007");
    assert_clean(&mock);
}

#[tokio::test]
async fn answer_posts_to_answer_with_citation_text() {
    let (mock, client) = mock(vec![step(
        "/answer",
        Some(json!({"query": "What is Pydantic AI?", "text": true})),
        Respond::recorded(env!("CARGO_MANIFEST_DIR"), "answer/ok.json"),
    )])
    .await;
    let got = client
        .search(SearchRequest::new("answer", "What is Pydantic AI?"))
        .await
        .unwrap();
    assert!(got.answer.unwrap().starts_with("Pydantic AI is"));
    assert_eq!(got.results.len(), 2);
    assert_eq!(got.billing.reported_cost.unwrap().to_string(), "0.005");
    assert_eq!(
        mock.received()[0]
            .json()
            .unwrap()
            .as_object()
            .unwrap()
            .len(),
        2
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn refused_requests_never_reach_exa() {
    let (mock, client) = mock(vec![]).await;
    let mut req = SearchRequest::new("search", "q");
    req.language = Some("de".into());
    let err = client.search(req).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(err.param(), Some("language"));
    let err = client
        .search(SearchRequest::new("images", "q"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn errors_keep_status_body_and_rate_limit_wait() {
    let (mock, client) = mock(vec![
        step(
            "/search",
            None,
            Respond::recorded(env!("CARGO_MANIFEST_DIR"), "errors/429.json")
                .header("retry-after", "7"),
        ),
        step(
            "/search",
            None,
            Respond::recorded(env!("CARGO_MANIFEST_DIR"), "errors/402.json"),
        ),
        step(
            "/search",
            None,
            Respond::recorded(env!("CARGO_MANIFEST_DIR"), "errors/401.json"),
        ),
    ])
    .await;
    let err = client
        .search(SearchRequest::new("search", "q"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!((err.provider(), err.status()), (PROVIDER, Some(429)));
    assert!(err.body().unwrap().contains("10 requests per second"));

    let err = client
        .search(SearchRequest::new("search", "q"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::QuotaExceeded);
    assert!(!err.is_retryable());

    let err = client
        .search(SearchRequest::new("search", "q"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth);
    assert_eq!(err.message(), "Invalid API key (INVALID_API_KEY)");
    assert!(!err.to_string().contains(KEY));
    assert_clean(&mock);
}

#[tokio::test]
async fn a_body_that_is_not_exas_is_a_decode_error() {
    let (mock, client) = mock(vec![step(
        "/search",
        None,
        Respond::json(json!({"results": "nothing"})),
    )])
    .await;
    let err = client
        .search(SearchRequest::new("search", "q"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    assert_eq!(err.provider(), PROVIDER);
    assert_clean(&mock);
}
