//! A mock upstream with canned answers in the providers' real formats, for trying the gateway
//! by hand (`cargo xtask mock-upstream`) without provider keys:
//!
//! - Gemini: `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
//! - Gemini embeddings: `POST /v1beta/models/{model}:batchEmbedContents`.
//! - OpenAI-compatible chat (the Hugging Face router's shape): `POST /v1/chat/completions`,
//!   with `stream: true` as server-sent events ending in `data: [DONE]`.
//! - Hugging Face feature extraction:
//!   `POST /hf-inference/models/{model}/pipeline/feature-extraction`.
//! - Web search on one path for the three providers, told apart as their requests differ:
//!   `POST /search` answers Serper's shape for a body with `q` (also `/news`, `/images`),
//!   Tavily's for a request with `Authorization: Bearer`, else Exa's (also `/answer`).
//!
//! The answer echoes the last user message, so a round trip is easy to see; an embedding is
//! eight numbers computed from the text, so the same text always gets the same vector.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};

/// Serves the canned mock on `addr` until the process ends.
pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "mock upstream listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, router()).await
}

/// The canned mock's routes.
pub fn router() -> Router {
    Router::new()
        .route("/v1beta/models/{model_action}", post(gemini))
        .route("/v1/chat/completions", post(openai_chat))
        .route(
            "/hf-inference/models/{*model_task}",
            post(hf_feature_extraction),
        )
        .route("/search", post(search))
        .route("/news", post(serper_news))
        .route("/images", post(serper_images))
        .route("/answer", post(exa_answer))
}

/// Three results about `query`, as (title, url, snippet).
fn hits(query: &str) -> Vec<(String, String, String)> {
    (1..=3)
        .map(|i| {
            (
                format!("Result {i} for {query}"),
                format!("https://example.com/{i}"),
                format!("Mock snippet {i} about {query}."),
            )
        })
        .collect()
}

async fn search(headers: axum::http::HeaderMap, body: axum::Json<Value>) -> Response {
    if let Some(q) = body.get("q").and_then(Value::as_str) {
        let organic: Vec<Value> = hits(q)
            .into_iter()
            .enumerate()
            .map(|(i, (title, link, snippet))| json!({"title": title, "link": link, "snippet": snippet, "position": i + 1}))
            .collect();
        return axum::Json(json!({"searchParameters": {"q": q, "type": "search"}, "organic": organic, "credits": 1})).into_response();
    }
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if headers.contains_key(header::AUTHORIZATION) {
        let results: Vec<Value> = hits(query)
            .into_iter()
            .map(|(title, url, content)| json!({"title": title, "url": url, "content": content, "score": 0.9, "raw_content": null}))
            .collect();
        return axum::Json(
            json!({"query": query, "answer": null, "images": [], "results": results,
            "response_time": 0.1, "usage": {"credits": 1}, "request_id": "mock"}),
        )
        .into_response();
    }
    let results: Vec<Value> = hits(query)
        .into_iter()
        .map(|(title, url, text)| json!({"id": url, "title": title, "url": url, "highlights": [text]}))
        .collect();
    axum::Json(
        json!({"requestId": "mock", "resolvedSearchType": "neural", "results": results,
        "costDollars": {"total": 0.007}}),
    )
    .into_response()
}

async fn serper_news(body: axum::Json<Value>) -> Response {
    let q = body.get("q").and_then(Value::as_str).unwrap_or_default();
    let news: Vec<Value> = hits(q)
        .into_iter()
        .map(|(title, link, snippet)| json!({"title": title, "link": link, "snippet": snippet, "date": "2 hours ago", "source": "Mock News"}))
        .collect();
    axum::Json(json!({"searchParameters": {"q": q, "type": "news"}, "news": news, "credits": 1}))
        .into_response()
}

async fn serper_images(body: axum::Json<Value>) -> Response {
    let q = body.get("q").and_then(Value::as_str).unwrap_or_default();
    let images: Vec<Value> = hits(q)
        .into_iter()
        .map(|(title, link, _)| json!({"title": title, "link": link, "imageUrl": format!("{link}.png"), "source": "Mock Images"}))
        .collect();
    axum::Json(
        json!({"searchParameters": {"q": q, "type": "images"}, "images": images, "credits": 1}),
    )
    .into_response()
}

async fn exa_answer(body: axum::Json<Value>) -> Response {
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let citations: Vec<Value> = hits(query)
        .into_iter()
        .map(|(title, url, text)| json!({"id": url, "url": url, "title": title, "text": text}))
        .collect();
    axum::Json(
        json!({"answer": format!("Mock answer to: {query}"), "citations": citations,
        "costDollars": {"total": 0.005}, "requestId": "mock"}),
    )
    .into_response()
}

/// An eight-number vector of `text`, the same for the same text, of unit length.
fn vector(text: &str) -> Vec<f64> {
    let mut v = [0f64; 8];
    for (i, b) in text.bytes().enumerate() {
        v[i % 8] += f64::from(b) * (1.0 + (i / 8) as f64).recip();
    }
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    v.iter().map(|x| ((x / norm) * 1e6).round() / 1e6).collect()
}

/// `batchEmbedContents`: one embedding per request, cut to `outputDimensionality`.
fn gemini_embed(body: &Value) -> Response {
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let embeddings: Vec<Value> = requests
        .iter()
        .map(|r| {
            let text = r
                .pointer("/content/parts/0/text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut values = vector(text);
            if let Some(n) = r.get("outputDimensionality").and_then(Value::as_u64) {
                values.truncate(n as usize);
            }
            json!({"values": values})
        })
        .collect();
    axum::Json(json!({"embeddings": embeddings})).into_response()
}

/// hf-inference feature extraction: one vector for a string, one per text for an array.
async fn hf_feature_extraction(
    Path(model_task): Path<String>,
    body: axum::Json<Value>,
) -> Response {
    if !model_task.ends_with("/pipeline/feature-extraction") {
        return (StatusCode::NOT_FOUND, "unknown task").into_response();
    }
    match body.get("inputs") {
        Some(Value::String(text)) => axum::Json(json!(vector(text))).into_response(),
        Some(Value::Array(texts)) => {
            let vectors: Vec<Value> = texts
                .iter()
                .map(|t| json!(vector(t.as_str().unwrap_or_default())))
                .collect();
            axum::Json(Value::Array(vectors)).into_response()
        }
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"error": "missing field `inputs`"})),
        )
            .into_response(),
    }
}

fn reply_to(prompt: &str) -> String {
    format!("Mock answer to: {prompt}")
}

async fn gemini(Path(model_action): Path<String>, body: axum::Json<Value>) -> Response {
    let Some((model, action)) = model_action.split_once(':') else {
        return (StatusCode::NOT_FOUND, "expected models/{model}:{action}").into_response();
    };
    let prompt = body
        .pointer("/contents")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .and_then(|c| c.pointer("/parts/0/text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let words: Vec<String> = reply_to(&prompt)
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    let usage = |out: usize| json!({"promptTokenCount": 8, "candidatesTokenCount": out, "totalTokenCount": 8 + out});
    match action {
        "generateContent" => axum::Json(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": words.concat()}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage(words.len()),
            "modelVersion": model,
            "responseId": "mock-response",
        }))
        .into_response(),
        "streamGenerateContent" => {
            let n = words.len();
            let events = words.iter().enumerate().map(|(i, w)| {
                let mut candidate = json!({"content": {"role": "model", "parts": [{"text": w}]}, "index": 0});
                if i + 1 == n {
                    candidate["finishReason"] = json!("STOP");
                }
                json!({"candidates": [candidate], "usageMetadata": usage(i + 1), "modelVersion": model})
            });
            sse(events.map(|e| e.to_string()).collect())
        }
        "batchEmbedContents" => gemini_embed(&body),
        _ => (StatusCode::NOT_FOUND, "unknown action").into_response(),
    }
}

async fn openai_chat(body: axum::Json<Value>) -> Response {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_owned();
    let prompt = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let words: Vec<String> = reply_to(&prompt)
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    let usage = json!({"prompt_tokens": 8, "completion_tokens": words.len(), "total_tokens": 8 + words.len()});
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return axum::Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_760_000_000u64, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat()}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_760_000_000u64,
               "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        words
            .iter()
            .map(|w| chunk(json!({"content": w}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    events.push(
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_760_000_000u64,
               "model": model, "choices": [], "usage": usage})
        .to_string(),
    );
    events.push("[DONE]".into());
    sse(events)
}

fn sse(events: Vec<String>) -> Response {
    let frames = events
        .into_iter()
        .map(|e| Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: {e}\n\n"))));
    let mut response = Body::from_stream(futures_util::stream::iter(frames)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    response
}
