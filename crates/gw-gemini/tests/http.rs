//! The public API against a mock Gemini: what goes on the wire, and what comes back.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gateway_core::{
    DynTextModel, ErrorKind, FinishReason, ProviderConfig, Registry, ResponseFormat, TextChunk,
    TextModel, TextRequest, TokenUsage,
};
use gw_gemini::{GeminiClient, PROVIDER};
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use serde_json::{Value, json};

const KEY: &str = "AIza-test-key-123";
const MODEL: &str = "gemini-2.5-flash";

fn step(method: &str, query: Value, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some("POST".into()),
            path: Some(format!("/v1beta/models/{MODEL}:{method}")),
            query: serde_json::from_value(query).unwrap(),
            headers: [("x-goog-api-key".to_owned(), json!(KEY))].into(),
            ..UpstreamExpect::default()
        },
        respond,
    }
}

fn generate_step(respond: Respond) -> UpstreamStep {
    step("generateContent", json!({}), respond)
}

fn stream_step(events: &[&str]) -> UpstreamStep {
    step(
        "streamGenerateContent",
        json!({"alt": "sse"}),
        Respond::sse(events.iter().copied()),
    )
}

fn client(mock: &MockUpstream) -> GeminiClient {
    GeminiClient::builder()
        .api_key(KEY)
        .base_url(mock.url())
        .build()
        .unwrap()
}

/// Every request carried the key in its header and nowhere in its URL, and matched its step.
fn assert_wire_clean(mock: &MockUpstream) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    for got in mock.received() {
        assert_eq!(got.header("x-goog-api-key"), Some(KEY));
        assert!(
            got.query.iter().all(|(name, _)| name != "key"),
            "{:?}",
            got.query
        );
        assert!(!got.path.contains(KEY));
        assert!(got.query.iter().all(|(_, v)| !v.contains(KEY)));
    }
}

/// An error that names neither the key nor the mock's address.
fn assert_error_clean(err: &gateway_core::Error, mock: &MockUpstream) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(!shown.contains(mock.url()), "{shown}");
    assert_eq!(err.provider(), PROVIDER);
}

fn error_body(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

#[tokio::test]
async fn generate_sends_the_documented_body_and_maps_the_answer() {
    let answer = json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "The user wants colours.", "thought": true},
                {"text": "[\"red\",\"yellow\",\"blue\"]"}
            ]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": 14, "cachedContentTokenCount": 4,
            "candidatesTokenCount": 9, "thoughtsTokenCount": 120, "totalTokenCount": 143
        },
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1"
    });
    let mut expected_step = generate_step(Respond::json(answer));
    expected_step
        .expect
        .headers
        .insert("content-type".into(), json!("application/json"));
    let mock = MockUpstream::start(vec![expected_step]).await.unwrap();
    let gemini = client(&mock);

    let schema = json!({"type": "array", "items": {"type": "string"}});
    let req = TextRequest::new(MODEL)
        .system("You are terse.")
        .user("Name three primary colours.")
        .temperature(0.2)
        .max_tokens(256)
        .response_format(ResponseFormat::JsonSchema {
            name: "colours".into(),
            schema: schema.clone(),
            strict: None,
        });
    let r = gemini.generate(req).await.unwrap();

    assert_eq!(r.content, "[\"red\",\"yellow\",\"blue\"]");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.id.as_deref(), Some("resp-1"));
    assert_eq!(r.model, "gemini-2.5-flash-001");
    assert_eq!(
        r.usage,
        TokenUsage {
            input_tokens: 14,
            output_tokens: 129,
            reasoning_tokens: 120,
            cached_input_tokens: 4,
        }
    );
    assert_wire_clean(&mock);
    assert_eq!(
        mock.received()[0].json().unwrap(),
        json!({
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "contents": [{"role": "user", "parts": [{"text": "Name three primary colours."}]}],
            "generationConfig": {
                "temperature": 0.2,
                "maxOutputTokens": 256,
                "responseMimeType": "application/json",
                "responseJsonSchema": schema
            }
        })
    );
}

#[tokio::test]
async fn a_blocked_prompt_is_a_content_filtered_answer() {
    let mock = MockUpstream::start(vec![generate_step(Respond::json(json!({
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}
    })))])
    .await
    .unwrap();
    let r = client(&mock)
        .generate(TextRequest::new(MODEL).user("something blocked"))
        .await
        .unwrap();
    assert_eq!(r.content, "");
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.model, MODEL);
    assert_eq!(r.usage.input_tokens, 5);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn stream_to_completion() {
    let mock = MockUpstream::start(vec![stream_step(&[
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Red, "}]},"index":0}],"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash","responseId":"abc"}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"yellow and blue."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":6,"thoughtsTokenCount":40,"totalTokenCount":54},"modelVersion":"gemini-2.5-flash","responseId":"abc"}"#,
    ])])
    .await
    .unwrap();
    let gemini = client(&mock);
    let items: Vec<_> = gemini
        .stream(TextRequest::new(MODEL).user("Colours?"))
        .await
        .unwrap()
        .collect()
        .await;
    let chunks: Vec<TextChunk> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Red, ".into()),
            TextChunk::Usage(TokenUsage {
                input_tokens: 8,
                ..TokenUsage::default()
            }),
            TextChunk::Delta("yellow and blue.".into()),
            TextChunk::Usage(TokenUsage {
                input_tokens: 8,
                output_tokens: 46,
                reasoning_tokens: 40,
                cached_input_tokens: 0,
            }),
            TextChunk::Finish(FinishReason::Stop),
        ]
    );
    assert_wire_clean(&mock);
    assert_eq!(
        mock.received()[0].json().unwrap(),
        json!({"contents": [{"role": "user", "parts": [{"text": "Colours?"}]}]})
    );
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_stream_interrupted() {
    let mock = MockUpstream::start(vec![stream_step(&[
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Red, "}]},"index":0}]}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"yel"}]},"index":0}]}"#,
    ])])
    .await
    .unwrap();
    let gemini = client(&mock);
    let items: Vec<_> = gemini
        .stream(TextRequest::new(MODEL).user("Colours?"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap(),
        &TextChunk::Delta("Red, ".into())
    );
    assert_eq!(items[1].as_ref().unwrap(), &TextChunk::Delta("yel".into()));
    let err = items[2].as_ref().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::StreamInterrupted);
    assert!(!err.is_retryable());
    assert_error_clean(err, &mock);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn an_error_event_inside_a_stream_is_an_error_item() {
    let mock = MockUpstream::start(vec![stream_step(&[
        r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}"#,
        r#"{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}"#,
    ])])
    .await
    .unwrap();
    let items: Vec<_> = client(&mock)
        .stream(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 500 });
    assert_eq!(err.message(), "An internal error has occurred.");
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited_for_that_long() {
    let mock = MockUpstream::start(vec![
        generate_step(
            Respond::json(error_body(429, "RESOURCE_EXHAUSTED", "Resource exhausted."))
                .status(429)
                .header("retry-after", "7"),
        ),
        // The same before a stream's first byte: the outer Result fails.
        step(
            "streamGenerateContent",
            json!({"alt": "sse"}),
            Respond::json(error_body(429, "RESOURCE_EXHAUSTED", "Resource exhausted."))
                .status(429)
                .header("retry-after", "7"),
        ),
    ])
    .await
    .unwrap();
    let gemini = client(&mock);
    let expected = ErrorKind::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
    };

    let err = gemini
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &expected);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.message(), "Resource exhausted.");
    assert_error_clean(&err, &mock);

    let Err(err) = gemini.stream(TextRequest::new(MODEL).user("hi")).await else {
        panic!("a 429 must fail the stream before its first item");
    };
    assert_eq!(err.kind(), &expected);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn a_503_is_upstream_503() {
    let overloaded =
        || Respond::json(error_body(503, "UNAVAILABLE", "The model is overloaded.")).status(503);
    let mock = MockUpstream::start(vec![
        generate_step(overloaded()),
        step("streamGenerateContent", json!({"alt": "sse"}), overloaded()),
    ])
    .await
    .unwrap();
    let gemini = client(&mock);

    let err = gemini
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
    assert!(err.is_retryable());
    assert_eq!(err.message(), "The model is overloaded.");
    assert_error_clean(&err, &mock);

    let Err(err) = gemini.stream(TextRequest::new(MODEL).user("hi")).await else {
        panic!("a 503 must fail the stream before its first item");
    };
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn a_rejected_key_is_auth_and_never_echoed() {
    let body = json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}
        }]
    }});
    let mock = MockUpstream::start(vec![generate_step(Respond::json(body).status(400))])
        .await
        .unwrap();
    let err = client(&mock)
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth);
    assert!(!err.is_retryable());
    assert_error_clean(&err, &mock);
    assert_wire_clean(&mock);
}

#[tokio::test]
async fn invalid_requests_fail_before_any_io() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let gemini = client(&mock);
    for req in [
        TextRequest::new(MODEL).system("only a system prompt"),
        TextRequest::new("../other?x=1").user("hi"),
    ] {
        let err = gemini.generate(req.clone()).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        let Err(err) = gemini.stream(req).await else {
            panic!("an invalid request must not stream");
        };
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn register_adds_a_working_dyn_provider() {
    let mock = MockUpstream::start(vec![generate_step(Respond::json(json!({
        "candidates": [{"content": {"parts": [{"text": "hello"}]}, "finishReason": "STOP"}]
    })))])
    .await
    .unwrap();
    let cfg = ProviderConfig {
        api_key: Some(KEY.into()),
        base_url: Some(format!("{}/", mock.url())),
        models: vec![MODEL.into()],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_gemini::register(&mut reg, &cfg).unwrap();
    assert_eq!(reg.providers(), vec![PROVIDER]);
    assert_eq!(reg.model_names(), vec![format!("gemini/{MODEL}")]);

    let model: &Arc<dyn DynTextModel> = reg.text(PROVIDER).unwrap();
    let caps = model.capabilities_dyn();
    assert!(caps.streaming && caps.json_object && caps.json_schema);
    let r = model
        .generate_dyn(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap();
    assert_eq!(r.content, "hello");
    assert_wire_clean(&mock);
}
