//! Tests of `convert`: request shapes, refusals, and the recorded answers of `tests/fixtures/`.

use gateway_core::{Cost, PriceCatalog};
use serde_json::{Value, json};

use super::*;

fn request_json(req: &SearchRequest) -> (Endpoint, Value) {
    let (endpoint, body) = search_request(req).unwrap_or_else(|e| panic!("{e}"));
    (endpoint, serde_json::to_value(body).unwrap())
}

fn refused(req: &SearchRequest) -> Error {
    search_request(req).expect_err("the request must be refused")
}

/// The `json` of a recorded answer under `tests/fixtures/`.
fn recorded(name: &str) -> wire::SearchResponse {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(fixture["json"].clone()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn answer(name: &str, req: &SearchRequest) -> SearchResponse {
    let endpoint = Endpoint::parse(&req.model).unwrap();
    search_response(recorded(name), req, endpoint)
}

fn credits(units: u64) -> Billing {
    Billing::new(units, vec![Charge::new(PriceUnit::Credit, units)])
}

// ---- request shape ----

#[test]
fn a_plain_query_sends_only_q() {
    let (endpoint, body) = request_json(&SearchRequest::new("search", "Apple Inc."));
    assert_eq!(endpoint, Endpoint::Search);
    assert_eq!(endpoint.path(), "/search");
    assert_eq!(body, json!({"q": "Apple Inc."}));
}

#[test]
fn every_core_field_maps_onto_serper() {
    let mut req = SearchRequest::new("news", "  machine learning ");
    req.max_results = Some(20);
    req.time_range = Some(TimeRange::Week);
    req.include_domains = vec!["arxiv.org".into(), " nature.com ".into()];
    req.country = Some("US".into());
    req.language = Some("en".into());
    req.include_answer = true;
    let (endpoint, body) = request_json(&req);
    assert_eq!(endpoint.path(), "/news");
    assert_eq!(
        body,
        json!({
            "q": "(machine learning) (site:arxiv.org OR site:nature.com)",
            "num": 20,
            "gl": "us",
            "hl": "en",
            "tbs": "qdr:w"
        })
    );
}

#[test]
fn one_domain_and_each_time_range() {
    let mut req = SearchRequest::new("images", "lion");
    req.include_domains = vec!["en.wikipedia.org".into()];
    for (range, tbs) in [
        (TimeRange::Day, "qdr:d"),
        (TimeRange::Week, "qdr:w"),
        (TimeRange::Month, "qdr:m"),
        (TimeRange::Year, "qdr:y"),
    ] {
        req.time_range = Some(range);
        let (endpoint, body) = request_json(&req);
        assert_eq!(endpoint.path(), "/images");
        assert_eq!(
            body,
            json!({"q": "(lion) (site:en.wikipedia.org)", "tbs": tbs})
        );
    }
}

#[test]
fn serper_options_pass_through_as_given() {
    let mut req = SearchRequest::new("search", "coffee");
    req.options = serde_json::from_value(json!({
        "page": 2,
        "location": "Austin, Texas, United States",
        "autocorrect": false,
        "tbs": "qdr:h"
    }))
    .unwrap();
    let (_, body) = request_json(&req);
    assert_eq!(
        body,
        json!({
            "q": "coffee",
            "page": 2,
            "location": "Austin, Texas, United States",
            "autocorrect": false,
            "tbs": "qdr:h"
        })
    );
}

// ---- refusals ----

#[test]
fn an_unknown_endpoint_is_not_found_and_lists_the_others() {
    let err = refused(&SearchRequest::new("videos", "cats"));
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(err.provider(), PROVIDER);
    assert!(err.message().contains("`videos`"), "{err}");
    assert!(err.message().contains("search, news, images"), "{err}");
}

#[test]
fn what_serper_lacks_is_unsupported_naming_the_field() {
    let base = SearchRequest::new("search", "rust");
    let mut exclude = base.clone();
    exclude.exclude_domains = vec!["reddit.com".into()];
    let mut content = base.clone();
    content.include_content = true;
    let mut many = base.clone();
    many.max_results = Some(101);
    for (req, param) in [
        (exclude, "exclude_domains"),
        (content, "include_content"),
        (many, "max_results"),
    ] {
        let err = refused(&req);
        assert_eq!(err.kind(), &ErrorKind::Unsupported, "{param}");
        assert_eq!(err.param(), Some(param));
        assert!(err.message().contains(param), "{err}");
        assert_eq!(err.provider(), PROVIDER);
    }
    let mut hundred = SearchRequest::new("search", "rust");
    hundred.max_results = Some(100);
    assert!(search_request(&hundred).is_ok());
}

#[test]
fn bad_values_are_invalid_naming_the_field() {
    let base = SearchRequest::new("search", "rust");
    let mut cases: Vec<(SearchRequest, &str)> = Vec::new();
    cases.push((SearchRequest::new("search", "  "), "query"));
    let mut zero = base.clone();
    zero.max_results = Some(0);
    cases.push((zero, "max_results"));
    for bad in ["usa", "u", "1a", ""] {
        let mut req = base.clone();
        req.country = Some(bad.into());
        cases.push((req, "country"));
    }
    for bad in ["", "en us", "en;"] {
        let mut req = base.clone();
        req.language = Some(bad.into());
        cases.push((req, "language"));
    }
    for (i, bad) in ["", "a b.com", "x.com) OR (y"].into_iter().enumerate() {
        let mut req = base.clone();
        req.include_domains = vec!["ok.com".into(); i + 1];
        req.include_domains[i] = bad.into();
        let param: &'static str = [
            "include_domains[0]",
            "include_domains[1]",
            "include_domains[2]",
        ][i];
        cases.push((req, param));
    }
    for (req, param) in cases {
        let err = refused(&req);
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{param}: {err}");
        assert_eq!(err.param(), Some(param), "{err}");
        assert_eq!(err.provider(), PROVIDER);
    }
}

#[test]
fn options_are_checked_by_name_and_type() {
    let with = |options: Value| {
        let mut req = SearchRequest::new("search", "rust");
        req.options = serde_json::from_value(options).unwrap();
        req
    };
    for (options, param, says) in [
        (
            json!({"engine": "bing"}),
            "options.engine",
            "not a request field of Serper",
        ),
        (json!({"num": 20}), "options.num", "`max_results`"),
        (json!({"q": "x"}), "options.q", "`query`"),
        (json!({"gl": "de"}), "options.gl", "`country`"),
        (json!({"hl": "de"}), "options.hl", "`language`"),
        (json!({"page": 0}), "options.page", "a page number"),
        (json!({"page": "2"}), "options.page", "a page number"),
        (
            json!({"autocorrect": "no"}),
            "options.autocorrect",
            "true or false",
        ),
        (json!({"location": 7}), "options.location", "a place name"),
    ] {
        let err = refused(&with(options.clone()));
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{options}");
        assert_eq!(err.param(), Some(param), "{options}");
        assert!(err.message().contains(says), "{options}: {err}");
    }
    let mut both = with(json!({"tbs": "qdr:h"}));
    both.time_range = Some(TimeRange::Day);
    let err = refused(&both);
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    assert_eq!(err.param(), Some("options.tbs"));
}

// ---- billing ----

#[test]
fn the_estimate_is_one_credit_or_two_above_ten_results() {
    let mut req = SearchRequest::new("search", "rust");
    assert_eq!(estimate(&req), credits(1));
    req.max_results = Some(10);
    assert_eq!(estimate(&req), credits(1));
    req.max_results = Some(11);
    assert_eq!(estimate(&req), credits(2));
    req.max_results = Some(100);
    assert_eq!(estimate(&req), credits(2));
}

#[test]
fn the_answer_credits_settle_the_call_and_are_priced_per_credit() {
    let mut req = SearchRequest::new("search", "who is the cm of tamil nadu");
    req.max_results = Some(20);
    // The plan check expected 2 credits; the answer says 1.
    let got = answer("search/credits.json", &req);
    assert_eq!(got.billing, credits(1));
    let catalog = PriceCatalog::from_toml(crate::PRICES, "pricing.toml").unwrap();
    let cost = catalog.charges_cost(PROVIDER, "search", &got.billing.charges);
    assert_eq!(cost, Some("0.001".parse::<Cost>().unwrap()));

    // Not recorded: an answer that reports 2 credits for 100 results.
    let two: wire::SearchResponse =
        serde_json::from_value(json!({"organic": [], "credits": 2})).unwrap();
    assert_eq!(
        search_response(two, &req, Endpoint::Search).billing,
        credits(2)
    );
    let fraction: wire::SearchResponse = serde_json::from_value(json!({"credits": 1.5})).unwrap();
    assert_eq!(
        search_response(fraction, &req, Endpoint::Search).billing,
        credits(2)
    );
}

#[test]
fn an_answer_without_credits_bills_the_estimate() {
    let req = SearchRequest::new("search", "Apple Inc.");
    assert_eq!(answer("search/apple_inc.json", &req).billing, credits(1));
    let mut many = req.clone();
    many.max_results = Some(30);
    assert_eq!(answer("search/apple_inc.json", &many).billing, credits(2));
}

// ---- recorded answers ----

#[test]
fn web_results_come_from_organic() {
    let req = SearchRequest::new("search", "who is the cm of tamil nadu");
    let got = answer("search/credits.json", &req);
    assert_eq!(got.model, "search");
    assert_eq!(got.query, "who is the cm of tamil nadu");
    assert_eq!(got.answer, None);
    assert_eq!(got.results.len(), 3);
    let first = &got.results[0];
    assert_eq!(
        first.title,
        "List of all Chief Ministers of Tamil Nadu (1952-2026)"
    );
    assert_eq!(
        first.url,
        "https://www.jagranjosh.com/general-knowledge/chief-ministers-of-tamil-nadu-their-tenures-and-parties-1620292428-1"
    );
    assert!(first.snippet.starts_with("Joseph Vijay is serving"));
    assert_eq!(first.published_date.as_deref(), Some("May 10, 2026"));
    assert_eq!(first.score, None);
    assert_eq!(first.content, None);
    assert_eq!(got.results[1].published_date, None);
}

#[test]
fn max_results_caps_what_is_returned() {
    let mut req = SearchRequest::new("search", "Apple Inc.");
    req.max_results = Some(2);
    let got = answer("search/apple_inc.json", &req);
    let urls: Vec<&str> = got.results.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://www.apple.com/",
            "https://en.wikipedia.org/wiki/Apple_Inc."
        ]
    );
}

#[test]
fn the_answer_box_answers_only_when_asked() {
    let mut req = SearchRequest::new("search", "2024赛季NBA的总冠军是哪支球队？");
    assert_eq!(answer("search/answer_box.json", &req).answer, None);
    req.include_answer = true;
    let got = answer("search/answer_box.json", &req);
    assert_eq!(got.answer.as_deref(), Some("Boston Celtics"));
    assert_eq!(got.results.len(), 3);
    assert_eq!(
        got.results[1].published_date.as_deref(),
        Some("Dec 20, 2023")
    );

    // Not recorded: an answer box with a snippet and no answer, and one with neither.
    let snippet: wire::SearchResponse = serde_json::from_value(json!({
        "answerBox": {"title": "t", "snippet": "Rust 1.0 was released on May 15, 2015."}
    }))
    .unwrap();
    let got = search_response(snippet, &req, Endpoint::Search);
    assert_eq!(
        got.answer.as_deref(),
        Some("Rust 1.0 was released on May 15, 2015.")
    );
    let empty: wire::SearchResponse =
        serde_json::from_value(json!({"answerBox": {"answer": " ", "snippet": null}})).unwrap();
    assert_eq!(search_response(empty, &req, Endpoint::Search).answer, None);
    // Without an answer box (the Apple answer has a knowledge graph only) there is no answer.
    assert_eq!(answer("search/apple_inc.json", &req).answer, None);
}

#[test]
fn news_carry_their_date() {
    let req = SearchRequest::new("news", "Tesla Inc.");
    let got = answer("news/tesla_inc.json", &req);
    assert_eq!(got.model, "news");
    assert_eq!(got.results.len(), 3);
    let first = &got.results[0];
    assert_eq!(
        first.title,
        "ISS recommends Tesla investors vote against re-election of Robyn Denholm"
    );
    assert!(first.url.starts_with("https://www.reuters.com/business/"));
    assert!(first.snippet.starts_with("Proxy advisory firm ISS"));
    assert_eq!(first.published_date.as_deref(), Some("5 mins ago"));
    assert_eq!(
        got.results[2].published_date.as_deref(),
        Some("6 hours ago")
    );
    assert_eq!(got.billing, credits(1));

    // Not recorded: an article without a snippet shows its publisher.
    let bare: wire::SearchResponse = serde_json::from_value(json!({
        "news": [{"title": "T", "link": "https://example.com/a", "source": "Reuters"}]
    }))
    .unwrap();
    assert_eq!(
        search_response(bare, &req, Endpoint::News).results[0].snippet,
        "Reuters"
    );
}

#[test]
fn images_are_the_pages_they_are_on() {
    let req = SearchRequest::new("images", "Lion");
    let got = answer("images/lion.json", &req);
    let first = &got.results[0];
    assert_eq!(first.title, "Lion - Wikipedia");
    assert_eq!(first.url, "https://en.wikipedia.org/wiki/Lion");
    assert_eq!(first.snippet, "Wikipedia");
    assert_eq!(first.published_date, None);
    assert_eq!(first.content, None);
    assert_eq!(got.results[1].snippet, "Encyclopedia Britannica");

    // Not recorded: without `source`, the host name.
    let bare: wire::SearchResponse = serde_json::from_value(json!({
        "images": [{"title": "T", "link": "https://stlzoo.org/lion", "domain": "stlzoo.org"}]
    }))
    .unwrap();
    assert_eq!(
        search_response(bare, &req, Endpoint::Images).results[0].snippet,
        "stlzoo.org"
    );
}

#[test]
fn each_endpoint_reads_its_own_list() {
    // A web search answer read as news has no news.
    let req = SearchRequest::new("news", "Apple Inc.");
    assert!(answer("search/apple_inc.json", &req).results.is_empty());
}

#[test]
fn no_list_is_no_results_and_items_without_a_link_are_dropped() {
    let req = SearchRequest::new("search", "xyznonexistent");
    let got = answer("search/empty.json", &req);
    assert!(got.results.is_empty());
    assert_eq!(got.billing, credits(1));

    let odd: wire::SearchResponse = serde_json::from_value(json!({
        "organic": [
            {"title": "no link", "snippet": "s"},
            {"title": null, "link": "https://example.com/", "snippet": null, "date": null},
        ],
        "news": null,
        "credits": 1
    }))
    .unwrap();
    let got = search_response(odd, &req, Endpoint::Search);
    assert_eq!(
        got.results,
        [SearchResult::new("", "https://example.com/", "")]
    );
}
