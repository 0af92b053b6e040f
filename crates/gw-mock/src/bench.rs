//! A fast mock upstream for benchmarks (`cargo xtask bench`): OpenAI-style chat completions
//! (JSON and SSE) and Gemini `generateContent` / `streamGenerateContent`, with an optional fixed
//! latency and paced stream chunks.
//!
//! It is built to never be the bottleneck of a benchmark: it does not parse request bodies as
//! JSON (it looks for `"stream":true` and the `"model"` value by byte search), and its answers
//! are a few `format!`s. The canned mock ([`crate::canned`]) echoes prompts instead, for trying
//! the gateway by hand.
//!
//! Routes:
//! - `POST /v1/chat/completions`: a `chat.completion`, or with `"stream":true` server-sent events:
//!   a role event together with the first content chunk, the other content chunks, a finish
//!   chunk, a usage chunk and `data: [DONE]`.
//! - `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`: a Gemini
//!   answer, or one SSE event per content chunk with `usageMetadata`, the last with
//!   `finishReason: STOP`.
//!
//! Every content chunk is `Zq<i> ` (the marker `Zq` lets a load generator find content chunks
//! in either format without parsing JSON).
//!
//! A model name can override the defaults per request, so one mock serves every scenario
//! through an unchanged gateway: dash-separated tokens after the last `/` of the model id,
//! `n<chunks>`, `i<interval ms>` and `l<latency ms>`, e.g. `bench/chat-n5-i100` (Hugging Face
//! route) or `bench-chat-n5-i100` (Gemini route) streams 5 chunks 100 ms apart.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;

/// The marker every content chunk starts with.
pub const CONTENT_MARKER: &[u8] = b"Zq";

/// What the benchmark mock answers, unless a model name overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchOptions {
    /// Waited before the response headers.
    pub latency: Duration,
    /// Content chunks in a stream, and words in a non-streamed answer.
    pub chunks: u32,
    /// Pause between two content chunks of a stream (none before the first).
    pub interval: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunks: 20,
            interval: Duration::ZERO,
        }
    }
}

impl BenchOptions {
    /// These options with the overrides that `model` carries (`...-n5-i100-l20`).
    pub fn for_model(self, model: &str) -> Self {
        let id = model.rsplit('/').next().unwrap_or(model);
        let mut options = self;
        for token in id.split('-') {
            let Some(first) = token.chars().next() else {
                continue;
            };
            let Ok(value) = token[1..].parse::<u64>() else {
                continue;
            };
            match first {
                'n' => options.chunks = u32::try_from(value).unwrap_or(u32::MAX).max(1),
                'i' => options.interval = Duration::from_millis(value),
                'l' => options.latency = Duration::from_millis(value),
                _ => {}
            }
        }
        options
    }
}

/// Serves the benchmark mock on `listener` until the process ends.
///
/// Accepted sockets get `TCP_NODELAY`, so a paced stream's small writes leave at once instead of
/// waiting for the peer's delayed ACK (Nagle's algorithm).
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: BenchOptions,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(options)).await
}

/// Binds `addr` and serves the benchmark mock; prints `listening on http://ADDR` first (a
/// benchmark runner reads the port from it when `addr` has port 0).
pub async fn bind_and_serve(addr: SocketAddr, options: BenchOptions) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, options).await
}

/// The benchmark mock's routes.
pub fn router(options: BenchOptions) -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(move |body: Bytes| openai(options, body)),
        )
        .route(
            "/v1beta/models/{model_action}",
            // The body is read (and ignored) so that the connection can be reused.
            post(move |Path(model_action): Path<String>, _body: Bytes| {
                gemini(options, model_action)
            }),
        )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of the first `"model":"..."` in a JSON body, without parsing it.
fn model_of(body: &[u8]) -> &str {
    const KEY: &[u8] = b"\"model\":\"";
    let Some(start) = find(body, KEY).map(|i| i + KEY.len()) else {
        return "mock";
    };
    let rest = &body[start..];
    let end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).unwrap_or("mock")
}

fn words(n: u32) -> String {
    let mut text = String::with_capacity(n as usize * 6);
    for i in 0..n {
        text.push_str("Zq");
        text.push_str(&i.to_string());
        text.push(' ');
    }
    text
}

async fn openai(defaults: BenchOptions, body: Bytes) -> Response {
    let model = model_of(&body).to_owned();
    let options = defaults.for_model(&model);
    let stream = find(&body, b"\"stream\":true").is_some();
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    let n = options.chunks;
    if !stream {
        let json = format!(
            r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":1760000000,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":12,"completion_tokens":{n},"total_tokens":{total}}}}}"#,
            text = words(n).trim_end(),
            total = 12 + n,
        );
        return json_response(json);
    }
    let head = format!(
        r#"data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1760000000,"model":"{model}","choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}]}}"#
    );
    let chunk = |i: u32| {
        format!(
            r#"data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1760000000,"model":"{model}","choices":[{{"index":0,"delta":{{"content":"Zq{i} "}},"finish_reason":null}}]}}"#
        )
    };
    let mut frames: Vec<String> = Vec::with_capacity(n as usize + 1);
    // The role event goes out with the first content chunk, so the first byte is the first token.
    frames.push(format!("{head}\n\n{}\n\n", chunk(0)));
    for i in 1..n {
        frames.push(format!("{}\n\n", chunk(i)));
    }
    let tail = format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n\
         data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,\"model\":\"{model}\",\"choices\":[],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{n},\"total_tokens\":{total}}}}}\n\n\
         data: [DONE]\n\n",
        total = 12 + n,
    );
    // The finish, usage and [DONE] events follow the last content chunk at once.
    if let Some(last) = frames.last_mut() {
        last.push_str(&tail);
    }
    sse_response(frames, options.interval)
}

async fn gemini(defaults: BenchOptions, model_action: String) -> Response {
    let Some((model, action)) = model_action.split_once(':') else {
        return (StatusCode::NOT_FOUND, "expected models/{model}:{action}").into_response();
    };
    let options = defaults.for_model(model);
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    let n = options.chunks;
    let usage = |out: u32| {
        format!(
            r#""usageMetadata":{{"promptTokenCount":12,"candidatesTokenCount":{out},"totalTokenCount":{total}}}"#,
            total = 12 + out
        )
    };
    match action {
        "generateContent" => json_response(format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":"{text}"}}]}},"finishReason":"STOP","index":0}}],{usage},"modelVersion":"{model}","responseId":"bench"}}"#,
            text = words(n).trim_end(),
            usage = usage(n),
        )),
        "streamGenerateContent" => {
            let frames = (0..n)
                .map(|i| {
                    let finish = if i + 1 == n {
                        r#","finishReason":"STOP""#
                    } else {
                        ""
                    };
                    format!(
                        "data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"Zq{i} \"}}]}}{finish},\"index\":0}}],{usage},\"modelVersion\":\"{model}\",\"responseId\":\"bench\"}}\r\n\r\n",
                        usage = usage(i + 1),
                    )
                })
                .collect();
            sse_response(frames, options.interval)
        }
        _ => (StatusCode::NOT_FOUND, "unknown action").into_response(),
    }
}

fn json_response(json: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(json),
    )
        .into_response()
}

/// `frames` as an event stream, `interval` apart.
fn sse_response(frames: Vec<String>, interval: Duration) -> Response {
    let body = if interval.is_zero() {
        // One write: nothing to pace.
        Body::from(frames.concat())
    } else {
        let frames = futures_util::stream::unfold(
            (frames.into_iter(), true),
            move |(mut rest, first)| async move {
                let frame = rest.next()?;
                if !first {
                    tokio::time::sleep(interval).await;
                }
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(frame)),
                    (rest, false),
                ))
            },
        );
        Body::from_stream(frames)
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_override_the_defaults() {
        let d = BenchOptions::default();
        assert_eq!(d.for_model("bench/chat"), d);
        let o = d.for_model("bench/chat-n5-i100-l20");
        assert_eq!(o.chunks, 5);
        assert_eq!(o.interval, Duration::from_millis(100));
        assert_eq!(o.latency, Duration::from_millis(20));
        assert_eq!(
            d.for_model("meta-llama/Llama-3.1-8B-Instruct").chunks,
            d.chunks
        );
    }

    #[test]
    fn finds_the_model_without_parsing() {
        assert_eq!(
            model_of(br#"{"model":"bench/chat-n3","stream":true}"#),
            "bench/chat-n3"
        );
        assert_eq!(model_of(b"{}"), "mock");
    }
}
