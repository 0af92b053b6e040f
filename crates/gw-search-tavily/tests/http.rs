//! The public API of `gw-search-tavily` against a mock Tavily (`gw_mock::MockUpstream`).

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::{
    Billing, Charge, ErrorKind, PriceUnit, ProviderConfig, Registry, SearchProvider, SearchRequest,
    Service, TimeRange,
};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_search_tavily::{PROVIDER, TavilyClient};
use serde_json::{Value, json};

const KEY: &str = "tvly-test-key-0123456789";

fn step(json: Option<Value>, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some("/search".into()),
            headers: BTreeMap::from([
                ("authorization".to_owned(), json!(format!("Bearer {KEY}"))),
                ("content-type".to_owned(), json!("application/json")),
            ]),
            json,
            ..UpstreamExpect::default()
        },
        respond,
    }
}

fn recorded(name: &str) -> Respond {
    Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
}

async fn mock(steps: Vec<UpstreamStep>) -> (MockUpstream, TavilyClient) {
    let mock = MockUpstream::start(steps).await.unwrap();
    let client = TavilyClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .build()
        .unwrap();
    (mock, client)
}

/// Every step played as expected, and the key went only in the header.
fn assert_clean(mock: &MockUpstream) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    for got in mock.received() {
        let query = format!("{:?}", got.query);
        assert!(
            !got.path.contains(KEY) && !query.contains(KEY),
            "key in the URL"
        );
        if let Some(body) = got.json() {
            assert!(!body.to_string().contains(KEY), "key in the body: {body}");
            assert!(body.get("api_key").is_none(), "{body}");
        }
    }
}

#[tokio::test]
async fn search_sends_the_key_and_tavilys_body() {
    let (mock, client) = mock(vec![step(None, recorded("search/bound_params.json"))]).await;
    let mut req = SearchRequest::new("search", "attention mechanisms");
    req.max_results = Some(2);
    req.include_domains = vec!["arxiv.org".into()];
    req.time_range = Some(TimeRange::Year);
    req.country = Some("gb".into());
    req.options.insert("search_depth".into(), json!("basic"));
    req.options.insert("topic".into(), json!("general"));
    let answer = client.search(req).await.unwrap();

    let body = mock.received()[0].json().unwrap();
    assert_eq!(
        body,
        json!({
            "query": "attention mechanisms",
            "max_results": 2,
            "time_range": "year",
            "include_domains": ["arxiv.org"],
            "country": "united kingdom",
            "include_usage": true,
            "search_depth": "basic",
            "topic": "general"
        })
    );
    assert_eq!(answer.model, "search");
    assert_eq!(answer.query, "attention mechanisms");
    let urls: Vec<&str> = answer.results.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://arxiv.org/abs/2601.03329",
            "https://arxiv.org/abs/2203.14263"
        ]
    );
    assert_eq!(answer.results[0].score, Some(0.81770587));
    assert_eq!(
        answer.billing,
        Billing::new(1, vec![Charge::new(PriceUnit::Search, 1).depth("basic")])
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn answer_content_and_credits_come_back() {
    let (mock, client) = mock(vec![step(
        Some(json!({"include_answer": true, "include_raw_content": "markdown", "include_usage": true})),
        recorded("search/docs_example.json"),
    )])
    .await;
    let mut req = SearchRequest::new("search", "Who is Leo Messi?");
    req.include_answer = true;
    req.include_content = true;
    let answer = client.search(req).await.unwrap();
    assert!(
        answer
            .answer
            .unwrap()
            .starts_with("Lionel Messi, born in 1987")
    );
    assert_eq!(answer.results.len(), 1);
    // The docs' example has no page (`raw_content: null`): no content rather than an empty one.
    assert_eq!(answer.results[0].content, None);
    assert_eq!(
        answer.billing,
        Billing::new(1, vec![Charge::new(PriceUnit::Credit, 1)])
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn what_tavily_cannot_do_is_refused_before_any_call() {
    let (mock, client) = mock(vec![]).await;
    let mut language = SearchRequest::new("search", "q");
    language.language = Some("de".into());
    let mut news = SearchRequest::new("news", "q");
    news.max_results = Some(3);
    let mut unknown = SearchRequest::new("search", "q");
    unknown.options.insert("num".into(), json!(10));
    for (req, kind, param) in [
        (language, ErrorKind::Unsupported, "language"),
        (news, ErrorKind::NotFound, "model"),
        (unknown, ErrorKind::InvalidRequest, "options.num"),
    ] {
        assert_eq!(client.check(&req).unwrap_err().kind(), &kind);
        let err = client.search(req).await.unwrap_err();
        assert_eq!(err.kind(), &kind);
        assert_eq!(err.param(), Some(param));
        assert_eq!(err.provider(), PROVIDER);
    }
    assert!(mock.received().is_empty(), "no call was made");
}

#[tokio::test]
async fn error_answers_are_classified() {
    let (mock, client) = mock(vec![
        step(None, recorded("errors/401.json")),
        step(None, recorded("errors/432.json")),
        step(
            None,
            Respond::json(json!({"detail": {"error": "Too many requests"}}))
                .status(429)
                .header("retry-after", "3"),
        ),
        step(None, recorded("errors/422.json")),
        step(None, recorded("errors/500.json")),
    ])
    .await;
    let req = || SearchRequest::new("search", "q");

    let auth = client.search(req()).await.unwrap_err();
    assert_eq!(auth.kind(), &ErrorKind::Auth);
    assert_eq!(auth.status(), Some(401));
    assert_eq!(auth.message(), "Unauthorized: missing or invalid API key.");
    assert!(auth.body().unwrap().contains("detail"));
    assert!(!format!("{auth:?}").contains(KEY));

    let quota = client.search(req()).await.unwrap_err();
    assert_eq!(quota.kind(), &ErrorKind::QuotaExceeded);
    assert!(!quota.is_retryable());

    let rate = client.search(req()).await.unwrap_err();
    assert_eq!(
        rate.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );

    let invalid = client.search(req()).await.unwrap_err();
    assert_eq!(invalid.kind(), &ErrorKind::InvalidRequest);
    assert_eq!(invalid.message(), "body.query: Field required");

    let upstream = client.search(req()).await.unwrap_err();
    assert_eq!(upstream.kind(), &ErrorKind::Upstream { status: 500 });
    assert!(upstream.is_retryable());
    assert_clean(&mock);
}

#[tokio::test]
async fn an_answer_that_is_not_tavilys_is_a_decode_error() {
    let (mock, client) = mock(vec![step(None, Respond::json(json!({"results": "nope"})))]).await;
    let err = client
        .search(SearchRequest::new("search", "q"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    assert_eq!(err.provider(), PROVIDER);
    assert_clean(&mock);
}

#[tokio::test]
async fn register_adds_the_provider_its_models_and_prices() {
    let mock = MockUpstream::start(vec![step(None, recorded("search/basic.json"))])
        .await
        .unwrap();
    let cfg = ProviderConfig {
        api_key: Some(KEY.into()),
        base_url: Some(format!("{}/", mock.url())),
        models: vec!["search".into()],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_search_tavily::register(&mut reg, &cfg).unwrap();
    assert_eq!(reg.providers(), vec![PROVIDER]);
    assert_eq!(reg.services_of(PROVIDER), vec![Service::Search]);
    assert_eq!(reg.model_names(), vec!["tavily/search".to_owned()]);
    let prices = reg.prices();
    assert_eq!(
        prices
            .charges_cost(PROVIDER, "search", &[Charge::new(PriceUnit::Credit, 2)])
            .map(|c| c.to_string())
            .as_deref(),
        Some("0.016")
    );
    let provider = reg.search(PROVIDER).unwrap();
    let answer = provider
        .search_dyn(SearchRequest::new("search", "What is Pydantic AI?"))
        .await
        .unwrap();
    assert_eq!(answer.results.len(), 5);
    assert_clean(&mock);
}

#[test]
fn register_needs_a_key_and_knows_its_fields() {
    let no_key = ProviderConfig {
        api_key_env: Some("GW_TAVILY_TEST_SURELY_UNSET".into()),
        ..ProviderConfig::default()
    };
    let err = gw_search_tavily::register(&mut Registry::new(), &no_key).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unavailable);

    let mut extra = ProviderConfig {
        api_key: Some(KEY.into()),
        ..ProviderConfig::default()
    };
    extra.extra.insert("search_depth".into(), "advanced".into());
    let err = gw_search_tavily::register(&mut Registry::new(), &extra).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(err.to_string().contains("providers.tavily"), "{err}");
}
