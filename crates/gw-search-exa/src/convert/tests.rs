//! Request shapes, recorded answers, billing and dates.

use gateway_core::{ErrorKind, PriceUnit};
use serde_json::{Value, json};

use super::*;

/// A fixed "today": 2026-11-28.
fn today() -> Date {
    Date::new(2026, 11, 28).unwrap()
}

fn req(model: &str) -> SearchRequest {
    SearchRequest::new(model, "What is Pydantic AI?")
}

fn options(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// A recorded body of `tests/fixtures/`.
fn recorded<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    serde_json::from_value(fixture["json"].clone()).unwrap()
}

fn search_body(r: &SearchRequest) -> Value {
    serde_json::to_value(search_request(r, today()).unwrap()).unwrap()
}

// --- Request shapes ----------------------------------------------------------------------------

#[test]
fn a_plain_search_asks_for_highlights_only() {
    assert_eq!(
        search_body(&req("search")),
        json!({"query": "What is Pydantic AI?", "contents": {"highlights": true}})
    );
}

#[test]
fn core_fields_map_to_exa_fields() {
    let mut r = req("search");
    r.max_results = Some(5);
    r.time_range = Some(TimeRange::Month);
    r.include_domains = vec!["ai.pydantic.dev".into()];
    r.country = Some("us".into());
    r.include_content = true;
    r.options = options(json!({"type": "auto", "category": "research paper"}));
    assert_eq!(
        search_body(&r),
        json!({
            "query": "What is Pydantic AI?",
            "numResults": 5,
            "includeDomains": ["ai.pydantic.dev"],
            "startPublishedDate": "2026-10-28",
            "userLocation": "US",
            "contents": {"highlights": true, "text": true},
            "type": "auto",
            "category": "research paper"
        })
    );
    r.include_domains.clear();
    r.exclude_domains = vec!["reddit.com".into()];
    let body = search_body(&r);
    assert_eq!(body["excludeDomains"], json!(["reddit.com"]));
    assert!(body.get("includeDomains").is_none(), "{body}");
}

#[test]
fn time_ranges_count_back_from_today() {
    for (range, today, start) in [
        (TimeRange::Day, (2026, 11, 28), "2026-11-27"),
        (TimeRange::Day, (2026, 3, 1), "2026-02-28"),
        (TimeRange::Day, (2024, 3, 1), "2024-02-29"),
        (TimeRange::Week, (2026, 1, 3), "2025-12-27"),
        (TimeRange::Month, (2026, 11, 28), "2026-10-28"),
        (TimeRange::Month, (2026, 1, 15), "2025-12-15"),
        (TimeRange::Month, (2026, 3, 31), "2026-02-28"),
        (TimeRange::Month, (2024, 3, 31), "2024-02-29"),
        (TimeRange::Year, (2026, 11, 28), "2025-11-28"),
        (TimeRange::Year, (2024, 2, 29), "2023-02-28"),
    ] {
        let (y, m, d) = today;
        let date = Date::new(y, m, d).unwrap().minus(range).unwrap();
        assert_eq!(date.to_string(), start, "{range:?} before {y}-{m}-{d}");
    }
}

#[test]
fn days_and_dates_agree() {
    assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
    // The `Date` header of the recorded answer whose x-ratelimit-reset was 1770771778.
    assert_eq!(
        Date::from_days(1_770_771_778 / 86_400).to_string(),
        "2026-02-11"
    );
    assert_eq!(Date::from_days(-1).to_string(), "1969-12-31");
    for days in [-800_000, -1, 0, 59, 60, 11_016, 20_000, 20_785, 3_000_000] {
        assert_eq!(Date::from_days(days).to_days(), days);
    }
    assert!(Date::new(2026, 2, 29).is_none());
    let today = Date::today().to_string();
    assert_eq!(today.len(), 10, "{today}");
}

#[test]
fn the_callers_contents_settings_win() {
    let mut r = req("search");
    r.include_content = true;
    r.options = options(json!({"contents": {
        "text": {"maxCharacters": 500},
        "highlights": {"maxCharacters": 200, "query": "agents"},
        "livecrawl": "fallback"
    }}));
    assert_eq!(
        search_body(&r)["contents"],
        json!({
            "highlights": {"maxCharacters": 200, "query": "agents"},
            "text": {"maxCharacters": 500},
            "livecrawl": "fallback"
        })
    );
    // Text asked for through options, not `include_content`: sent, not returned as content.
    r.include_content = false;
    r.options = options(json!({"contents": {"text": {"maxCharacters": 100}}}));
    assert_eq!(
        search_body(&r)["contents"],
        json!({"highlights": true, "text": {"maxCharacters": 100}})
    );
}

#[test]
fn answers_always_ask_for_citation_text() {
    let mut r = req("answer");
    assert_eq!(
        serde_json::to_value(answer_request(&r).unwrap()).unwrap(),
        json!({"query": "What is Pydantic AI?", "text": true})
    );
    r.country = Some("fr".into());
    r.include_content = true;
    r.include_answer = true;
    r.options = options(json!({"model": "exa-pro", "systemPrompt": "Be brief."}));
    assert_eq!(
        serde_json::to_value(answer_request(&r).unwrap()).unwrap(),
        json!({
            "query": "What is Pydantic AI?", "text": true, "userLocation": "FR",
            "model": "exa-pro", "systemPrompt": "Be brief."
        })
    );
}

// --- Refusals ----------------------------------------------------------------------------------

/// `check` refuses `r` with `kind`, naming `param`.
fn refused(r: &SearchRequest, kind: ErrorKind, param: &str) -> String {
    let err = check(r).unwrap_err();
    assert_eq!(err.kind(), &kind, "{err}");
    assert_eq!(err.param(), Some(param), "{err}");
    assert_eq!(err.provider(), PROVIDER);
    // The request builders refuse the same, whatever the caller skipped.
    if matches!(Endpoint::of(&r.model), Ok(Endpoint::Search)) {
        assert_eq!(search_request(r, today()).unwrap_err().kind(), &kind);
    }
    err.message().to_owned()
}

#[test]
fn an_unknown_endpoint_is_not_found_and_lists_both() {
    let message = refused(&req("news"), ErrorKind::NotFound, "model");
    assert!(
        message.contains("`news`") && message.contains("search, answer"),
        "{message}"
    );
}

#[test]
fn what_search_lacks_is_unsupported_by_name() {
    let mut r = req("search");
    r.include_answer = true;
    let message = refused(&r, ErrorKind::Unsupported, "include_answer");
    assert!(message.contains("exa/answer"), "{message}");

    let mut r = req("search");
    r.language = Some("en".into());
    refused(&r, ErrorKind::Unsupported, "language");

    let mut r = req("search");
    r.max_results = Some(101);
    refused(&r, ErrorKind::Unsupported, "max_results");
    r.max_results = Some(100);
    check(&r).unwrap();
    r.max_results = Some(0);
    refused(&r, ErrorKind::InvalidRequest, "max_results");

    let mut r = req("search");
    r.options = options(json!({"stream": true}));
    refused(&r, ErrorKind::Unsupported, "options.stream");
}

#[test]
fn what_answer_lacks_is_unsupported_by_name() {
    let base = req("answer");
    let mut r = base.clone();
    r.max_results = Some(3);
    refused(&r, ErrorKind::Unsupported, "max_results");
    let mut r = base.clone();
    r.time_range = Some(TimeRange::Week);
    refused(&r, ErrorKind::Unsupported, "time_range");
    let mut r = base.clone();
    r.include_domains = vec!["a.org".into()];
    refused(&r, ErrorKind::Unsupported, "include_domains");
    let mut r = base.clone();
    r.exclude_domains = vec!["a.org".into()];
    refused(&r, ErrorKind::Unsupported, "exclude_domains");
    let mut r = base.clone();
    r.language = Some("en".into());
    refused(&r, ErrorKind::Unsupported, "language");
    let mut r = base.clone();
    r.options = options(json!({"stream": true}));
    refused(&r, ErrorKind::Unsupported, "options.stream");
    // Search-only options are unknown to /answer.
    let mut r = base;
    r.options = options(json!({"type": "auto"}));
    refused(&r, ErrorKind::InvalidRequest, "options.type");
}

#[test]
fn bad_values_are_invalid_requests() {
    let mut r = req("search");
    r.include_domains = vec!["a.org".into()];
    r.exclude_domains = vec!["b.org".into()];
    refused(&r, ErrorKind::InvalidRequest, "exclude_domains");

    for bad in ["USA", "u", "1a", "United States", ""] {
        let mut r = req("search");
        r.country = Some(bad.into());
        refused(&r, ErrorKind::InvalidRequest, "country");
        let mut r = req("answer");
        r.country = Some(bad.into());
        refused(&r, ErrorKind::InvalidRequest, "country");
    }

    let mut r = req("search");
    r.time_range = Some(TimeRange::Day);
    r.options = options(json!({"startPublishedDate": "2025-01-01"}));
    refused(&r, ErrorKind::InvalidRequest, "options.startPublishedDate");
    r.time_range = None;
    assert_eq!(search_body(&r)["startPublishedDate"], "2025-01-01");

    let mut r = req("search");
    r.options = options(json!({"contents": false}));
    refused(&r, ErrorKind::InvalidRequest, "options.contents");
    r.options = options(json!({"contents": {"txt": true}}));
    refused(&r, ErrorKind::InvalidRequest, "options.contents.txt");
}

#[test]
fn options_are_checked_against_exas_fields() {
    let mut r = req("search");
    r.options = options(json!({"use_autoprompt": true}));
    let message = refused(&r, ErrorKind::InvalidRequest, "options.use_autoprompt");
    assert!(
        message.contains("search endpoint") && message.contains("includeText"),
        "{message}"
    );

    // A snake_case spelling of a real field gets the camelCase one.
    r.options = options(json!({"include_text": ["agents"]}));
    let message = refused(&r, ErrorKind::InvalidRequest, "options.include_text");
    assert!(message.contains("`includeText`"), "{message}");

    // Fields a core field sets point to it.
    for (exa, core) in SEARCH_CORE {
        r.options = Map::from_iter([(exa.to_owned(), json!(1))]);
        let message = refused(&r, ErrorKind::InvalidRequest, &format!("options.{exa}"));
        assert!(message.contains(&format!("`{core}`")), "{message}");
    }
    r.options = options(json!({"num_results": 3}));
    let message = refused(&r, ErrorKind::InvalidRequest, "options.num_results");
    assert!(message.contains("`numResults`"), "{message}");

    let mut a = req("answer");
    a.options = options(json!({"text": false}));
    let message = refused(&a, ErrorKind::InvalidRequest, "options.text");
    assert!(message.contains("`include_content`"), "{message}");

    // Every documented field passes, as given.
    let mut all = Map::new();
    for name in SEARCH_OPTIONS {
        all.insert(name.to_owned(), json!(null));
    }
    all.insert("contents".into(), json!({"summary": {"query": "q"}}));
    r.options = all;
    let body = search_body(&r);
    for name in SEARCH_OPTIONS.iter().filter(|n| **n != "contents") {
        assert!(body.get(*name).is_some(), "{name} missing: {body}");
    }
    assert_eq!(body["contents"]["summary"], json!({"query": "q"}));
}

#[test]
fn camel_case_follows_the_sdk() {
    assert_eq!(camel_case("num_results"), "numResults");
    assert_eq!(camel_case("start_published_date"), "startPublishedDate");
    assert_eq!(camel_case("type"), "type");
    assert_eq!(camel_case("_x"), "x");
}

// --- Recorded answers --------------------------------------------------------------------------

#[test]
fn recorded_highlights_become_snippets() {
    let mut r = req("search");
    r.max_results = Some(2);
    let out = search_response(&r, recorded("search/highlights.json"));
    assert_eq!(out.model, "search");
    assert_eq!(out.query, "What is Pydantic AI?");
    assert_eq!(out.answer, None);
    assert_eq!(out.results.len(), 2);
    let first = &out.results[0];
    assert_eq!(first.title, "Pydantic AI | Pydantic Docs");
    assert_eq!(first.url, "https://pydantic.dev/docs/ai/overview/");
    assert!(
        first
            .snippet
            .starts_with("# Pydantic AI\n...\nGenAI Agent Framework"),
        "{first:?}"
    );
    assert_eq!((first.score, first.published_date.as_deref()), (None, None));
    assert_eq!(first.content, None);
    assert_eq!(
        out.results[1].published_date.as_deref(),
        Some("2024-06-21T15:55:04.000Z")
    );
    assert_eq!(out.billing.units, 1);
    assert_eq!(out.billing.reported_cost.unwrap().to_string(), "0.007");
    assert_eq!(
        out.billing.charges,
        [Charge::new(PriceUnit::Search, 1).depth("auto")]
    );
}

#[test]
fn recorded_text_is_the_content_and_the_snippet_when_there_are_no_highlights() {
    let mut r = req("search");
    r.include_content = true;
    let out = search_response(&r, recorded("search/text.json"));
    let only = &out.results[0];
    assert_eq!(only.title, "Index");
    assert_eq!(
        only.snippet,
        "Small but complete example of using Pydantic AI to build a support agent for a bank. Demonstrates: …"
    );
    assert!(
        only.content
            .as_deref()
            .unwrap()
            .contains("\n\nDemonstrates:\n")
    );
    // Not asked for: no content, though Exa sent text.
    r.include_content = false;
    let out = search_response(&r, recorded("search/text.json"));
    assert_eq!(out.results[0].content, None);
}

#[test]
fn recorded_february_answer_is_billed_at_its_own_total() {
    let r = req("search");
    let out = search_response(&r, recorded("search/neural_text.json"));
    assert_eq!(out.results.len(), 2);
    assert_eq!(
        out.results[0].published_date.as_deref(),
        Some("2025-12-29T00:00:00.000Z")
    );
    assert!(
        out.results[1]
            .snippet
            .starts_with("What are Autonomous AI Agents?")
    );
    // $0.005 search + $0.001 x 10 pages of text, as Exa billed it then.
    assert_eq!(out.billing.reported_cost.unwrap().to_string(), "0.015");
    assert_eq!(out.billing.units, 1);
}

#[test]
fn recorded_empty_answer_has_no_results_and_still_bills() {
    let out = search_response(&req("search"), recorded("search/empty.json"));
    assert!(out.results.is_empty());
    assert_eq!(out.billing.units, 1);
    assert_eq!(out.billing.reported_cost.unwrap().to_string(), "0.007");
    // `results` missing or null: no results either.
    for body in [json!({}), json!({"results": null})] {
        let out = search_response(&req("search"), serde_json::from_value(body).unwrap());
        assert!(out.results.is_empty());
        assert_eq!(out.billing.reported_cost, None);
    }
}

#[test]
fn recorded_answer_has_its_citations_as_results() {
    let mut r = req("answer");
    let out = answer_response(&r, recorded("answer/ok.json"));
    assert_eq!(out.model, "answer");
    assert!(
        out.answer
            .as_deref()
            .unwrap()
            .starts_with("Pydantic AI is an open-source")
    );
    assert_eq!(out.results.len(), 2);
    assert_eq!(
        out.results[1].title,
        "Pydantic AI: Type-Safe Python Framework for AI Agents & LLM Applications"
    );
    assert_eq!(
        out.results[1].url,
        "https://pydantic.dev/pydantic-ai?featured_on=talkpython"
    );
    assert_eq!(
        out.results[0].snippet,
        "Pydantic AI | Pydantic Docs Skip to content # Pydantic AI GenAI Agent Framework, the Pydantic way …"
    );
    assert_eq!(out.results[0].content, None);
    assert_eq!(out.billing.units, 1);
    assert_eq!(out.billing.charges, [Charge::new(PriceUnit::Request, 1)]);
    assert_eq!(out.billing.reported_cost.unwrap().to_string(), "0.005");
    r.include_content = true;
    let out = answer_response(&r, recorded("answer/ok.json"));
    assert!(
        out.results[0]
            .content
            .as_deref()
            .unwrap()
            .starts_with("Pydantic AI | Pydantic Docs")
    );
}

#[test]
fn structured_answers_and_outputs_are_json_text() {
    let r = req("answer");
    let body = json!({"answer": {"capital": "Paris"}, "citations": null});
    let out = answer_response(&r, serde_json::from_value(body).unwrap());
    assert_eq!(out.answer.as_deref(), Some(r#"{"capital":"Paris"}"#));
    assert!(out.results.is_empty());
    let out = answer_response(&r, serde_json::from_value(json!({})).unwrap());
    assert_eq!((out.answer, out.results.len()), (None, 0));

    let s = req("search");
    let body = json!({"results": [], "output": {"content": "Paris.", "grounding": []}});
    let out = search_response(&s, serde_json::from_value(body).unwrap());
    assert_eq!(out.answer.as_deref(), Some("Paris."));
}

#[test]
fn snippets_fall_back_from_highlights_to_text_to_summary() {
    let item = |v: Value| -> wire::ResultItem { serde_json::from_value(v).unwrap() };
    let long = "word ".repeat(200);
    for (v, snippet) in [
        (
            json!({"highlights": ["a", " ", "b "], "text": "t"}),
            "a\n\nb".to_owned(),
        ),
        (
            json!({"highlights": [], "text": " some\n\ttext ", "summary": "s"}),
            "some text".into(),
        ),
        (
            json!({"highlights": [""], "summary": "the summary"}),
            "the summary".into(),
        ),
        (
            json!({"text": "", "summary": "the summary"}),
            "the summary".into(),
        ),
        (json!({}), String::new()),
        (
            json!({"text": long}),
            format!("{}…", "word ".repeat(100).trim_end()),
        ),
    ] {
        assert_eq!(result(item(v.clone()), false).snippet, snippet, "{v}");
    }
    // A result without `url` falls back on its id (which is the URL).
    let r = result(item(json!({"id": "https://a.org/", "score": 0.98})), false);
    assert_eq!((r.url.as_str(), r.score), ("https://a.org/", Some(0.98)));
}

#[test]
fn text_start_cuts_on_characters() {
    let s = "é".repeat(SNIPPET_CHARS + 10);
    let cut = text_start(&s);
    assert_eq!(cut.chars().count(), SNIPPET_CHARS + 1);
    assert!(cut.ends_with('…'));
    assert_eq!(
        text_start(&"é".repeat(SNIPPET_CHARS)),
        "é".repeat(SNIPPET_CHARS)
    );
}

// --- Billing -----------------------------------------------------------------------------------

#[test]
fn estimates_follow_type_count_and_summaries() {
    let mut r = req("search");
    assert_eq!(
        estimate(&r),
        Billing::new(1, vec![Charge::new(PriceUnit::Search, 1).depth("auto")])
    );
    r.max_results = Some(25);
    r.options = options(json!({"type": "deep", "contents": {"summary": true}}));
    assert_eq!(
        estimate(&r),
        Billing::new(
            26,
            vec![
                Charge::new(PriceUnit::Search, 1).depth("deep"),
                Charge::new(PriceUnit::SearchResult, 15).depth("deep"),
                Charge::new(PriceUnit::Page, 25),
            ]
        )
    );
    r.options = options(json!({"contents": {"summary": false}}));
    assert_eq!(estimate(&r).units, 1);
    assert_eq!(
        estimate(&req("answer")),
        Billing::new(1, vec![Charge::new(PriceUnit::Request, 1)])
    );
}

#[test]
fn settlement_counts_the_results_returned() {
    let mut r = req("search");
    r.max_results = Some(20);
    r.options = options(json!({"contents": {"summary": {"query": "q"}}}));
    let items: Vec<Value> = (0..12)
        .map(|i| json!({"url": format!("https://a.org/{i}"), "title": "t", "summary": "s"}))
        .collect();
    let body = json!({"results": items, "costDollars": {"total": 0.021}});
    let out = search_response(&r, serde_json::from_value(body).unwrap());
    assert_eq!(out.billing.units, 13);
    assert_eq!(
        out.billing.charges,
        [
            Charge::new(PriceUnit::Search, 1).depth("auto"),
            Charge::new(PriceUnit::SearchResult, 2).depth("auto"),
            Charge::new(PriceUnit::Page, 12),
        ]
    );
    assert_eq!(out.billing.reported_cost.unwrap().to_string(), "0.021");
}

#[test]
fn reported_costs_are_exact() {
    let cost = |total: f64| reported_cost(Some(&wire::CostDollars { total: Some(total) }));
    for (total, shown) in [
        (0.007, "0.007"),
        (0.015, "0.015"),
        (0.1 + 0.2, "0.3"),
        (5.0, "5"),
        (0.0, "0"),
        (1e-10, "0"),
        (6e-10, "0.000000001"),
        (0.0123456789, "0.012345679"),
    ] {
        assert_eq!(cost(total).unwrap().to_string(), shown, "{total}");
    }
    assert_eq!(cost(-0.001), None);
    assert_eq!(cost(f64::NAN), None);
    assert_eq!(
        reported_cost(Some(&wire::CostDollars { total: None })),
        None
    );
    assert_eq!(reported_cost(None), None);
}
