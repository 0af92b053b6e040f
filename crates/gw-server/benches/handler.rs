//! Micro-benchmarks of the server's request path without any network: the whole axum app
//! (`app(state)`, static keys, no store) called in-process with a fake provider that answers at
//! once. What is measured is the gateway's own work per request: authentication and request id,
//! the OpenAI request parsed and turned into a core request (request translation), routing, and
//! the answer encoded as an OpenAI completion (response translation), or for a stream each
//! chunk re-encoded as an OpenAI SSE event. `cargo bench -p gw-server`.

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::stream;
use gw_server::config::KeyEntry;
use gw_server::{AppState, app};
use llm_gateway::{
    FinishReason, Gateway, Registry, Result, SecretString, TextChunk, TextModel, TextRequest,
    TextResponse, TextStream, TokenUsage,
};
use tower::ServiceExt;

const CHUNKS: usize = 20;
const KEY: &str = "sk-bench";

/// Answers at once: 20 words, or a stream of 20 one-word chunks.
struct Fake;

fn words() -> Vec<String> {
    (0..CHUNKS).map(|i| format!("word{i} ")).collect()
}

impl TextModel for Fake {
    fn provider(&self) -> &'static str {
        "fake"
    }

    async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        let usage = TokenUsage {
            input_tokens: 12,
            output_tokens: CHUNKS as u64,
            ..TokenUsage::default()
        };
        let mut answer = TextResponse::new(req.model, words().concat(), FinishReason::Stop, usage);
        answer.id = Some("fake-1".into());
        Ok(answer)
    }

    async fn stream(&self, _req: TextRequest) -> Result<TextStream> {
        let mut chunks: Vec<Result<TextChunk>> = words()
            .into_iter()
            .map(|w| Ok(TextChunk::Delta(w)))
            .collect();
        chunks.push(Ok(TextChunk::Finish(FinishReason::Stop)));
        chunks.push(Ok(TextChunk::Usage(TokenUsage {
            input_tokens: 12,
            output_tokens: CHUNKS as u64,
            ..TokenUsage::default()
        })));
        Ok(Box::pin(stream::iter(chunks)))
    }
}

fn state() -> AppState {
    let mut registry = Registry::new();
    registry.add_text(Arc::new(Fake));
    let key = KeyEntry {
        name: "bench".into(),
        key: None,
        key_env: Some("UNUSED".into()),
        plan: None,
    };
    AppState::with_static_keys(
        Gateway::new(registry),
        vec![(key, SecretString::new(KEY))],
        Vec::new(),
    )
}

/// A long conversation: sixteen turns of 16 KiB each (256 KiB of text), as an agent's or a
/// document's prompt is, where what the gateway copies of the text shows.
fn long_request() -> Request<Body> {
    let turn = "a gateway should add little latency. ".repeat(16 * 1024 / 37);
    let messages: Vec<_> = (0..16)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            serde_json::json!({"role": role, "content": turn})
        })
        .collect();
    let body = serde_json::json!({"model": "fake/m", "messages": messages, "max_tokens": 64});
    Request::post("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request")
}

fn request(stream: bool) -> Request<Body> {
    let mut body = serde_json::json!({
        "model": "fake/m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Summarise in one sentence why a gateway should add little latency."}
        ],
        "max_tokens": 64,
        "temperature": 0.2,
    });
    if stream {
        body["stream"] = true.into();
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    Request::post("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request")
}

fn handler(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let app = app(state());
    let call_with = |request: Request<Body>| {
        let app = app.clone();
        runtime.block_on(async move {
            let response = app.oneshot(request).await.expect("infallible");
            assert!(response.status().is_success(), "{}", response.status());
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body")
                .len()
        })
    };
    let call = |stream: bool| call_with(request(stream));
    let mut group = c.benchmark_group("server");
    group.bench_function("chat_json", |b| b.iter(|| black_box(call(false))));
    group.bench_function("chat_json_256kib_conversation", |b| {
        b.iter(|| black_box(call_with(long_request())))
    });
    group.throughput(Throughput::Elements(CHUNKS as u64));
    group.bench_function("chat_stream_20_chunks", |b| {
        b.iter(|| black_box(call(true)))
    });
    group.finish();
}

criterion_group!(benches, handler);
criterion_main!(benches);
