//! The public API of `gw-hf` against a mock router (`gw_mock::MockUpstream`).

mod common;

use common::{TOKEN, mock, step};

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gateway_core::{
    DynTextModel, ErrorKind, FinishReason, ProviderConfig, Registry, ResponseFormat, TextChunk,
    TextModel, TextRequest, TokenUsage,
};
use gw_hf::PROVIDER;
use gw_mock::MockUpstream;
use gw_mock::fixture::Respond;
use serde_json::{Value, json};

const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct:cerebras";

fn assert_clean(mock: &MockUpstream) {
    assert_eq!(mock.verify(), Vec::<String>::new());
    for got in mock.received() {
        let query = format!("{:?}", got.query);
        assert!(
            !got.path.contains(TOKEN) && !query.contains(TOKEN),
            "token in the URL"
        );
    }
}

fn completion() -> Value {
    json!({
        "id": "chatcmpl-9f2c",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "{\"colors\":[\"red\",\"blue\"]}"},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}
    })
}

fn request() -> TextRequest {
    TextRequest::new(MODEL)
        .system("You are terse.")
        .user("Give me 2 colors as JSON.")
        .max_tokens(128)
        .temperature(0.2)
        .response_format(ResponseFormat::JsonObject)
}

#[tokio::test]
async fn generate_sends_the_openai_body_with_the_bearer_token() {
    let (mock, client) = mock(vec![step(
        Some(json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Give me 2 colors as JSON."}
            ],
            "max_tokens": 128,
            "temperature": 0.2,
            "response_format": {"type": "json_object"}
        })),
        Respond::json(completion()),
    )])
    .await;
    let answer = client.generate(request()).await.unwrap();
    assert_eq!(answer.id.as_deref(), Some("chatcmpl-9f2c"));
    assert_eq!(answer.model, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(answer.content, r#"{"colors":["red","blue"]}"#);
    assert_eq!(answer.finish_reason, FinishReason::Stop);
    assert_eq!(
        answer.usage,
        TokenUsage {
            input_tokens: 31,
            output_tokens: 12,
            ..TokenUsage::default()
        }
    );
    let body = mock.received()[0].json().unwrap();
    assert!(body.get("stream").is_none(), "{body}");
    assert_clean(&mock);
}

#[tokio::test]
async fn the_provider_suffix_reaches_the_router_unchanged() {
    let (mock, client) = mock(vec![step(None, Respond::json(completion()))]).await;
    client
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap();
    let body = mock.received()[0].json().unwrap();
    assert_eq!(
        body["model"],
        json!("meta-llama/Llama-3.1-8B-Instruct:cerebras")
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn stream_to_done() {
    let (mock, client) = mock(vec![step(
        Some(json!({"model": MODEL, "stream": true, "stream_options": {"include_usage": true}})),
        Respond::sse([
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1760000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
            "[DONE]",
        ]),
    )])
    .await;
    let stream = client
        .stream(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap();
    let items: Vec<TextChunk> = stream.map(Result::unwrap).collect().await;
    assert_eq!(
        items,
        vec![
            TextChunk::Delta("Hel".into()),
            TextChunk::Delta("lo".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(TokenUsage {
                input_tokens: 9,
                output_tokens: 2,
                ..TokenUsage::default()
            }),
        ]
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn a_cerebras_stream_ends_after_its_finish_and_usage_without_done() {
    // Cerebras's shape (recorded by charmbracelet/fantasy,
    // `providertests/testdata/TestCerebrasCommon/cerebras-qwen-3-coder-480b/simple_streaming.yaml`
    // at 71f727f0c6f1021be71a2284bfccaa8465fa2213): usage on the finishing chunk, no `[DONE]`.
    let (mock, client) = mock(vec![step(
        Some(json!({"model": MODEL, "stream": true, "stream_options": {"include_usage": true}})),
        Respond::sse([
            r#"{"id":"chatcmpl-07ac2555","choices":[{"delta":{"content":"Oi!"},"index":0}],"created":1761231233,"model":"llama3.1-8b","object":"chat.completion.chunk"}"#,
            r#"{"id":"chatcmpl-07ac2555","choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":1761231233,"model":"llama3.1-8b","object":"chat.completion.chunk","usage":{"prompt_tokens":22,"completion_tokens":3,"total_tokens":25,"prompt_tokens_details":{"cached_tokens":0}},"time_info":{"queue_time":0.000533844,"prompt_time":0.00128098,"completion_time":0.003694258,"total_time":0.007519960403442383,"created":1761231233.440385}}"#,
        ]),
    )])
    .await;
    let items: Vec<TextChunk> = client
        .stream(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(
        items,
        vec![
            TextChunk::Delta("Oi!".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(TokenUsage {
                input_tokens: 22,
                output_tokens: 3,
                ..TokenUsage::default()
            }),
        ]
    );
    assert_clean(&mock);
}

#[tokio::test]
async fn a_stream_cut_before_done_ends_with_stream_interrupted() {
    let (mock, client) = mock(vec![step(
        None,
        Respond::sse([
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
        ]),
    )])
    .await;
    let stream = client
        .stream(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap();
    let items: Vec<_> = stream.collect().await;
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &TextChunk::Delta("Hel".into()));
    assert_eq!(items[1].as_ref().unwrap(), &TextChunk::Delta("lo".into()));
    assert_eq!(
        items[2].as_ref().unwrap(),
        &TextChunk::Finish(FinishReason::Stop)
    );
    let err = items[3].as_ref().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::StreamInterrupted);
    assert_eq!(err.provider(), PROVIDER);
    assert!(!err.is_retryable());
    assert_clean(&mock);
}

#[tokio::test]
async fn an_error_event_mid_stream_is_an_upstream_item() {
    let (mock, client) = mock(vec![step(
        None,
        Respond::sse([
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"error":{"message":"backend overloaded","type":"server_error"}}"#,
            "[DONE]",
        ]),
    )])
    .await;
    let items: Vec<_> = client
        .stream(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 200 });
    assert_eq!(err.message(), "backend overloaded");
    assert_clean(&mock);
}

#[tokio::test]
async fn rate_limit_with_retry_after() {
    let (mock, client) = mock(vec![step(
        None,
        Respond::json(json!({"error": "Rate limit reached. Please retry later."}))
            .status(429)
            .header("retry-after", "7"),
    )])
    .await;
    let err = client
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.provider(), PROVIDER);
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.message(), "Rate limit reached. Please retry later.");
    assert!(!format!("{err:?}").contains(TOKEN));
    assert_clean(&mock);
}

#[tokio::test]
async fn a_stream_refused_before_the_first_byte_fails_the_outer_result() {
    let (mock, client) = mock(vec![step(
        None,
        Respond::json(json!({"error": "slow down"}))
            .status(429)
            .header("retry-after", "2"),
    )])
    .await;
    let Err(err) = client.stream(TextRequest::new(MODEL).user("hi")).await else {
        panic!("a 429 must fail before the stream starts");
    };
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert_clean(&mock);
}

#[tokio::test]
async fn service_unavailable_is_a_retryable_upstream_error() {
    let (mock, client) = mock(vec![step(
        None,
        Respond::json(json!({"error": "Model is currently loading", "estimated_time": 20.0}))
            .status(503),
    )])
    .await;
    let err = client
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(503));
    assert!(err.body().unwrap().contains("estimated_time"));
    assert_clean(&mock);
}

#[tokio::test]
async fn quota_and_auth_statuses() {
    let (mock, client) = mock(vec![
        step(
            None,
            Respond::json(json!({"error": "You have exceeded your monthly included credits"}))
                .status(402),
        ),
        step(
            None,
            Respond::json(json!({"error": "Invalid credentials in Authorization header"}))
                .status(401),
        ),
        step(
            None,
            Respond {
                text: Some("model not found".into()),
                ..Respond::default()
            }
            .status(404)
            .header(
                "x-error-message",
                "Model not supported by provider cerebras",
            ),
        ),
    ])
    .await;
    let kinds = [
        ErrorKind::QuotaExceeded,
        ErrorKind::Auth,
        ErrorKind::NotFound,
    ];
    for kind in kinds {
        let err = client
            .generate(TextRequest::new(MODEL).user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &kind);
    }
    assert_clean(&mock);
}

#[tokio::test]
async fn a_body_that_is_not_a_completion_is_a_decode_error() {
    let (mock, client) = mock(vec![step(None, Respond::json(json!({"choices": "nope"})))]).await;
    let err = client
        .generate(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    assert_clean(&mock);
}

#[tokio::test]
async fn register_adds_the_client_and_its_models() {
    let mock = MockUpstream::start(vec![step(None, Respond::json(completion()))])
        .await
        .unwrap();
    let cfg = ProviderConfig {
        api_key: Some(TOKEN.into()),
        base_url: Some(format!("{}/", mock.url())),
        models: vec![MODEL.into()],
        ..ProviderConfig::default()
    };
    let mut reg = Registry::new();
    gw_hf::register(&mut reg, &cfg).unwrap();
    assert_eq!(reg.providers(), vec![PROVIDER]);
    assert_eq!(reg.model_names(), vec![format!("hf/{MODEL}")]);
    let model: &Arc<dyn DynTextModel> = reg.text(PROVIDER).unwrap();
    assert!(model.capabilities_dyn().json_schema);
    let answer = model
        .generate_dyn(TextRequest::new(MODEL).user("hi"))
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, FinishReason::Stop);
    assert_clean(&mock);
}
