//! The public API of `gw-search-serper` against a mock Serper (`gw_mock::MockUpstream`): the key
//! header, the path and body of each endpoint, answers and errors as the router sees them.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_core::{
    DynSearchProvider, ErrorKind, ProviderConfig, Registry, SearchProvider, SearchRequest,
    TimeRange,
};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_search_serper::{PROVIDER, SerperClient};
use serde_json::{Value, json};

const KEY: &str = "serper_test_key_0123456789";

fn step(path: &str, json: Value, file: &str) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(path.into()),
            headers: BTreeMap::from([
                ("x-api-key".to_owned(), json!(KEY)),
                ("content-type".to_owned(), json!("application/json")),
            ]),
            json: Some(json),
            ..UpstreamExpect::default()
        },
        respond: Respond::recorded(env!("CARGO_MANIFEST_DIR"), file),
    }
}

async fn mock(steps: Vec<UpstreamStep>) -> (MockUpstream, SerperClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = SerperClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .build()
        .unwrap();
    (mock, client)
}

/// Every expectation met, the body exactly what was asked, and the key never in a URL.
fn assert_sent(mock: &MockUpstream, body: Value) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.json(), Some(body), "the whole body, not a subset");
    assert!(got.query.is_empty(), "no query string: {:?}", got.query);
    assert!(!got.path.contains(KEY));
}

#[tokio::test]
async fn a_web_search_sends_the_key_and_the_mapped_fields() {
    let body = json!({
        "q": "(who is the cm of tamil nadu) (site:en.wikipedia.org)",
        "num": 3,
        "gl": "in",
        "hl": "en",
        "tbs": "qdr:m",
        "page": 5
    });
    let (mock, client) = mock(vec![step("/search", body.clone(), "search/credits.json")]).await;
    let mut req = SearchRequest::new("search", "who is the cm of tamil nadu");
    req.max_results = Some(3);
    req.include_domains = vec!["en.wikipedia.org".into()];
    req.country = Some("IN".into());
    req.language = Some("en".into());
    req.time_range = Some(TimeRange::Month);
    req.options.insert("page".into(), json!(5));
    client.check(&req).unwrap();
    let answer = client.search(req).await.unwrap();
    assert_sent(&mock, body);
    assert_eq!(answer.results.len(), 3);
    assert_eq!(
        answer.results[0].published_date.as_deref(),
        Some("May 10, 2026")
    );
    assert_eq!(answer.billing.units, 1);
}

#[tokio::test]
async fn news_and_images_go_to_their_own_paths() {
    let (mock, client) = mock(vec![
        step("/news", json!({"q": "Tesla Inc."}), "news/tesla_inc.json"),
        step(
            "/images",
            json!({"q": "Lion", "num": 2}),
            "images/lion.json",
        ),
    ])
    .await;
    let news = client
        .search(SearchRequest::new("news", "Tesla Inc."))
        .await
        .unwrap();
    assert_eq!(
        news.results[0].published_date.as_deref(),
        Some("5 mins ago")
    );
    let mut req = SearchRequest::new("images", "Lion");
    req.max_results = Some(2);
    let images = client.search(req).await.unwrap();
    assert_eq!(mock.verify(), Vec::<String>::new());
    assert_eq!(images.results.len(), 2);
    assert_eq!(images.results[0].url, "https://en.wikipedia.org/wiki/Lion");
    assert_eq!(images.results[0].snippet, "Wikipedia");
}

#[tokio::test]
async fn a_rejected_key_is_auth_with_the_body_kept() {
    let (mock, client) = mock(vec![step(
        "/search",
        json!({"q": "rust"}),
        "errors/403_unauthorized.json",
    )])
    .await;
    let err = client
        .search(SearchRequest::new("search", "rust"))
        .await
        .unwrap_err();
    assert_eq!(mock.verify(), Vec::<String>::new());
    assert_eq!(err.kind(), &ErrorKind::Auth);
    assert_eq!(err.provider(), PROVIDER);
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.message(), "Unauthorized.");
    assert!(err.body().unwrap().contains("statusCode"));
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn credits_running_out_is_a_quota_not_retried() {
    let (_mock, client) = mock(vec![step(
        "/search",
        json!({"q": "rust"}),
        "errors/400_not_enough_credits.json",
    )])
    .await;
    let err = client
        .search(SearchRequest::new("search", "rust"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::QuotaExceeded);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn refusals_happen_before_any_call() {
    let (mock, client) = mock(Vec::new()).await;
    let mut req = SearchRequest::new("search", "rust");
    req.exclude_domains = vec!["reddit.com".into()];
    let err = client.search(req.clone()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(
        client.check(&req).unwrap_err().param(),
        Some("exclude_domains")
    );
    let err = client
        .search(SearchRequest::new("places", "coffee"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn registered_from_config_it_serves_through_the_registry() {
    let (mock, _) = mock(vec![step(
        "/search",
        json!({"q": "Apple Inc."}),
        "search/apple_inc.json",
    )])
    .await;
    let cfg = ProviderConfig {
        api_key: Some(KEY.into()),
        base_url: Some(mock.url().to_owned()),
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_search_serper::register(&mut reg, &cfg).unwrap();
    let provider: Arc<dyn DynSearchProvider> = reg.search(PROVIDER).unwrap().clone();
    let req = SearchRequest::new("search", "Apple Inc.");
    assert_eq!(provider.billing_dyn(&req).units, 1);
    let answer = provider.search_dyn(req).await.unwrap();
    assert_eq!(mock.verify(), Vec::<String>::new());
    assert_eq!(answer.results[0].url, "https://www.apple.com/");
    let cost = reg
        .prices()
        .charges_cost(PROVIDER, "search", &answer.billing.charges)
        .unwrap();
    assert_eq!(cost.to_string(), "0.001");
}
