use gateway_core::{Billing, Charge, ErrorKind, PriceUnit, SearchRequest, TimeRange};
use serde_json::{Value, json};

use super::*;

fn req(query: &str) -> SearchRequest {
    SearchRequest::new("search", query)
}

fn with_options(mut r: SearchRequest, options: Value) -> SearchRequest {
    r.options = options.as_object().unwrap().clone();
    r
}

fn body(r: &SearchRequest) -> Value {
    serde_json::to_value(search_request(r).unwrap()).unwrap()
}

/// The `json` of the recorded answer `tests/fixtures/search/<name>`, as Tavily's wire type.
fn recorded(name: &str) -> wire::SearchResponse {
    let path = format!(
        "{}/tests/fixtures/search/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    serde_json::from_value(fixture["json"].clone()).unwrap()
}

fn wire_answer(answer: Value) -> wire::SearchResponse {
    serde_json::from_value(answer).unwrap()
}

fn refused(r: &SearchRequest) -> gateway_core::Error {
    let err = search_request(r).unwrap_err();
    assert_eq!(check(r).unwrap_err().kind(), err.kind(), "check agrees");
    assert_eq!(err.provider(), PROVIDER);
    err
}

#[test]
fn a_plain_search_sends_the_query_and_asks_for_usage() {
    assert_eq!(
        body(&req("What is Pydantic AI?")),
        json!({"query": "What is Pydantic AI?", "include_usage": true})
    );
}

#[test]
fn every_core_field_maps_to_tavilys() {
    let mut r = req("attention mechanisms");
    r.max_results = Some(2);
    r.time_range = Some(TimeRange::Week);
    r.include_domains = vec!["arxiv.org".into()];
    r.exclude_domains = vec!["medium.com".into(), "reddit.com".into()];
    r.country = Some("US".into());
    r.include_content = true;
    r.include_answer = true;
    let r = with_options(
        r,
        json!({"search_depth": "advanced", "topic": "general", "chunks_per_source": 2}),
    );
    assert_eq!(
        body(&r),
        json!({
            "query": "attention mechanisms",
            "max_results": 2,
            "time_range": "week",
            "include_domains": ["arxiv.org"],
            "exclude_domains": ["medium.com", "reddit.com"],
            "country": "united states",
            "include_answer": true,
            "include_raw_content": "markdown",
            "include_usage": true,
            "search_depth": "advanced",
            "topic": "general",
            "chunks_per_source": 2
        })
    );
}

#[test]
fn time_ranges() {
    for (range, wire) in [
        (TimeRange::Day, "day"),
        (TimeRange::Week, "week"),
        (TimeRange::Month, "month"),
        (TimeRange::Year, "year"),
    ] {
        let mut r = req("q");
        r.time_range = Some(range);
        assert_eq!(body(&r)["time_range"], json!(wire));
    }
}

#[test]
fn countries_are_sent_as_tavilys_names() {
    for (given, sent) in [
        ("us", "united states"),
        ("JP", "japan"),
        ("GB", "united kingdom"),
        ("United Kingdom", "united kingdom"),
        ("south korea", "south korea"),
    ] {
        let mut r = req("q");
        r.country = Some(given.into());
        assert_eq!(body(&r)["country"], json!(sent), "{given}");
    }
    for bad in ["xx", "HK", "usa", "Deutschland"] {
        let mut r = req("q");
        r.country = Some(bad.into());
        let err = refused(&r);
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{bad}");
        assert_eq!(err.param(), Some("country"));
        assert!(err.message().contains(bad), "{err}");
    }
}

#[test]
fn a_country_needs_the_general_topic() {
    let mut r = req("q");
    r.country = Some("fr".into());
    let general = with_options(r.clone(), json!({"topic": "general"}));
    assert_eq!(body(&general)["country"], json!("france"));
    let news = with_options(r, json!({"topic": "news"}));
    let err = refused(&news);
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    assert_eq!(err.param(), Some("country"));
    assert!(err.message().contains("news"), "{err}");
}

#[test]
fn only_the_search_endpoint_exists() {
    for model in ["news", "images", "answer", "", "Search"] {
        let mut r = req("q");
        r.model = model.into();
        let err = refused(&r);
        assert_eq!(err.kind(), &ErrorKind::NotFound, "{model}");
        assert!(
            err.message().contains(&format!("`{model}`")) && err.message().contains("search"),
            "{err}"
        );
    }
}

#[test]
fn what_tavily_lacks_is_unsupported_so_a_fallback_may_serve_it() {
    let mut most = req("q");
    most.max_results = Some(MAX_RESULTS);
    assert_eq!(body(&most)["max_results"], json!(20));

    let mut over = req("q");
    over.max_results = Some(21);
    let err = refused(&over);
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(err.param(), Some("max_results"));
    assert!(err.message().contains("20"), "{err}");

    let mut language = req("q");
    language.language = Some("de".into());
    let err = refused(&language);
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(err.param(), Some("language"));
}

#[test]
fn a_blank_query_is_refused() {
    let err = refused(&req("  "));
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    assert_eq!(err.param(), Some("query"));
}

#[test]
fn every_documented_option_passes_through() {
    let options = json!({
        "search_depth": "fast",
        "topic": "finance",
        "start_date": "2025-01-01",
        "end_date": "2025-12-31",
        "days": 3,
        "chunks_per_source": 3,
        "include_images": true,
        "include_image_descriptions": true,
        "include_favicon": true,
        "auto_parameters": false,
        "exact_match": true
    });
    let sent = body(&with_options(req("q"), options.clone()));
    for (name, value) in options.as_object().unwrap() {
        assert_eq!(&sent[name], value, "{name}");
    }
}

#[test]
fn options_are_checked_by_name() {
    for (name, value, param, says) in [
        ("foo", json!(1), "options.foo", "not a Tavily search option"),
        (
            "api_key",
            json!("tvly-x"),
            "options.api_key",
            "not a Tavily search option",
        ),
        (
            "max_results",
            json!(3),
            "options.max_results",
            "`max_results`",
        ),
        (
            "include_raw_content",
            json!("text"),
            "options.include_raw_content",
            "`include_content`",
        ),
        (
            "include_answer",
            json!("advanced"),
            "options.include_answer",
            "`include_answer`",
        ),
        ("country", json!("japan"), "options.country", "`country`"),
        (
            "include_usage",
            json!(false),
            "options.include_usage",
            "always sends",
        ),
        (
            "search_depth",
            json!("deep"),
            "options.search_depth",
            "basic, advanced, fast, ultra-fast",
        ),
        (
            "search_depth",
            json!(2),
            "options.search_depth",
            "must be one of",
        ),
        (
            "topic",
            json!("sports"),
            "options.topic",
            "general, news, finance",
        ),
        (
            "auto_parameters",
            json!("yes"),
            "options.auto_parameters",
            "true or false",
        ),
    ] {
        let r = with_options(req("q"), json!({ name: value }));
        let err = refused(&r);
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{name}");
        assert_eq!(err.param(), Some(param), "{name}");
        assert!(err.message().contains(says), "{name}: {err}");
        assert!(
            !err.message().contains("tvly-x"),
            "never repeats a value that may be a key"
        );
    }
}

#[test]
fn dates_and_a_time_range_do_not_mix() {
    for name in ["start_date", "end_date"] {
        let mut r = with_options(req("q"), json!({ name: "2025-01-01" }));
        assert!(search_request(&r).is_ok());
        r.time_range = Some(TimeRange::Month);
        let err = refused(&r);
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert_eq!(err.param(), Some(format!("options.{name}").as_str()));
    }
}

#[test]
fn the_estimate_is_one_search_at_its_depth_in_credits() {
    let search = |depth: &str| vec![Charge::new(PriceUnit::Search, 1).depth(depth)];
    assert_eq!(estimate(&req("q")), Billing::new(1, search("basic")));
    for (options, units, depth) in [
        (json!({"search_depth": "basic"}), 1, "basic"),
        (json!({"search_depth": "advanced"}), 2, "advanced"),
        (json!({"search_depth": "fast"}), 1, "fast"),
        (json!({"search_depth": "ultra-fast"}), 1, "ultra-fast"),
        // Tavily may pick `advanced` itself: the plan check counts the most it can cost.
        (json!({"auto_parameters": true}), 2, "advanced"),
        (
            json!({"auto_parameters": true, "search_depth": "basic"}),
            1,
            "basic",
        ),
        (json!({"auto_parameters": false}), 1, "basic"),
    ] {
        let r = with_options(req("q"), options.clone());
        assert_eq!(
            estimate(&r),
            Billing::new(units, search(depth)),
            "{options}"
        );
    }
}

#[test]
fn a_recorded_answer_maps_result_by_result() {
    let r = req("What is Pydantic AI?");
    let out = search_response(&r, recorded("basic.json"));
    assert_eq!(out.model, "search");
    assert_eq!(out.query, "What is Pydantic AI?");
    assert_eq!(out.answer, None);
    assert_eq!(out.results.len(), 5);
    let second = &out.results[1];
    assert_eq!(second.title, "Pydantic AI - Pydantic AI");
    assert_eq!(second.url, "https://ai.pydantic.dev/");
    assert!(
        second
            .snippet
            .starts_with("Pydantic AI is a Python agent framework")
    );
    assert_eq!(second.score, Some(0.99997807));
    assert_eq!(second.published_date, None);
    assert_eq!(second.content, None);
    // No `usage` in the answer (it was recorded without `include_usage`): the depth's credits.
    assert_eq!(
        out.billing,
        Billing::new(1, vec![Charge::new(PriceUnit::Search, 1).depth("basic")])
    );
}

#[test]
fn reported_credits_are_what_the_call_bills() {
    let mut r = req("Who is Leo Messi?");
    r.include_answer = true;
    let out = search_response(&r, recorded("docs_example.json"));
    assert!(
        out.answer
            .as_deref()
            .unwrap()
            .starts_with("Lionel Messi, born in 1987")
    );
    assert_eq!(out.results.len(), 1);
    assert_eq!(out.results[0].title, "Lionel Messi Facts | Britannica");
    assert_eq!(
        out.billing,
        Billing::new(1, vec![Charge::new(PriceUnit::Credit, 1)])
    );

    let advanced = with_options(req("q"), json!({"search_depth": "advanced"}));
    for (credits, units) in [(json!(2), 2), (json!(0), 0), (json!(1.5), 2)] {
        let out = search_response(
            &advanced,
            wire_answer(json!({"query": "q", "results": [], "usage": {"credits": credits}})),
        );
        assert_eq!(
            out.billing,
            Billing::new(units, vec![Charge::new(PriceUnit::Credit, units)]),
            "{credits}"
        );
    }
    // A value that is no count falls back to the estimate.
    let out = search_response(
        &advanced,
        wire_answer(json!({"results": [], "usage": {"credits": -1}})),
    );
    assert_eq!(out.billing, estimate(&advanced));
}

#[test]
fn without_usage_the_depth_tavily_chose_bills() {
    let auto = with_options(req("q"), json!({"auto_parameters": true}));
    let answer =
        json!({"results": [], "auto_parameters": {"topic": "general", "search_depth": "basic"}});
    let out = search_response(&auto, wire_answer(answer));
    assert_eq!(
        out.billing,
        Billing::new(1, vec![Charge::new(PriceUnit::Search, 1).depth("basic")])
    );
    let unknown = json!({"results": [], "auto_parameters": {"search_depth": "deep"}});
    let out = search_response(&auto, wire_answer(unknown));
    assert_eq!(out.billing, estimate(&auto));
}

#[test]
fn no_results_or_a_missing_list_is_an_empty_answer() {
    let r = req("Who won the 2024 Nobel Prize in Physics?");
    let out = search_response(&r, recorded("empty.json"));
    assert!(out.results.is_empty());
    assert_eq!(out.billing.units, 1);
    for answer in [json!({}), json!({"results": null}), json!({"query": "q"})] {
        let out = search_response(&r, wire_answer(answer.clone()));
        assert!(out.results.is_empty(), "{answer}");
        assert_eq!(
            out.query,
            if answer.get("query").is_some() {
                "q"
            } else {
                r.query.as_str()
            }
        );
    }
}

#[test]
fn page_content_only_when_asked() {
    let answer = || {
        wire_answer(json!({
            "results": [
                {"title": "T", "url": "https://example.com/a", "content": "snippet",
                 "score": 0.5, "raw_content": "# Page\n\nbody"},
                {"title": "U", "url": "https://example.com/b", "content": "other",
                 "score": 0.4, "raw_content": null}
            ]
        }))
    };
    let mut r = req("q");
    r.include_content = true;
    let out = search_response(&r, answer());
    assert_eq!(out.results[0].content.as_deref(), Some("# Page\n\nbody"));
    assert_eq!(out.results[0].snippet, "snippet");
    assert_eq!(out.results[1].content, None);
    let out = search_response(&req("q"), answer());
    assert_eq!(out.results[0].content, None);
}

#[test]
fn news_dates_are_kept_as_tavily_writes_them() {
    // A real `topic: "news"` answer, as published in a LangChain DeepAgents tutorial (Dec 2025).
    let answer = wire_answer(json!({
        "query": "deepseek 最新资讯", "follow_up_questions": null, "answer": null, "images": [],
        "results": [{
            "url": "https://global.chinadaily.com.cn/a/202511/28/WS69295341a310d6866eb2bf02.html",
            "title": "DeepSeek AI mathematical reasoning model pioneering self-verifying reasoning - China Daily - Global Edition",
            "score": 0.61168414,
            "published_date": "Fri, 28 Nov 2025 00:00:00 GMT",
            "content": "* China Edition * CHINA * CHINA + China Daily PDF + China Daily E-paper # DeepSeek AI mathematical",
            "raw_content": null
        }],
        "response_time": 0.4, "request_id": "1b4e0fba-2245-4c1f-89ca-dce564fd40a4"
    }));
    let r = with_options(req("deepseek 最新资讯"), json!({"topic": "news"}));
    let out = search_response(&r, answer);
    assert_eq!(
        out.results[0].published_date.as_deref(),
        Some("Fri, 28 Nov 2025 00:00:00 GMT")
    );
}

#[test]
fn answers_tavily_did_not_give_are_none() {
    let mut r = req("q");
    r.include_answer = true;
    for answer in [json!(null), json!(""), json!("  ")] {
        let out = search_response(&r, wire_answer(json!({"results": [], "answer": answer})));
        assert_eq!(out.answer, None);
    }
}

#[test]
fn the_answer_is_lenient_about_what_it_does_not_use() {
    // `response_time` as a string (the docs' example), images as objects, a result with nulls.
    let out = search_response(
        &req("q"),
        wire_answer(json!({
            "response_time": "1.67",
            "images": [{"url": "https://example.com/i.png", "description": "d"}],
            "follow_up_questions": ["a?"],
            "results": [{"title": null, "url": "https://example.com", "content": null,
                         "score": null, "favicon": "https://example.com/favicon.ico"}]
        })),
    );
    assert_eq!(out.results.len(), 1);
    assert_eq!(out.results[0].title, "");
    assert_eq!(out.results[0].snippet, "");
    assert_eq!(out.results[0].score, None);
}
