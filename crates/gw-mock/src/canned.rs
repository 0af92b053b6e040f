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
//!
//! Tools: a chat request that offers tools (and does not forbid calling them) is answered with a
//! call of the first tool, its required string arguments filled with the last word of the
//! prompt; Gemini's call carries a thought signature, as its thinking models' calls do, and, as
//! Gemini 3 does, a request whose model turn has a function call without its signature is
//! refused with Gemini's 400. Once the conversation ends with the tool's result, the answer says
//! what the tool returned.

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

/// The thought signature the canned Gemini puts on its function calls (base64, as Gemini's are).
pub const THOUGHT_SIGNATURE: &str = "Q2FubmVkIHRob3VnaHQgc2lnbmF0dXJl";

/// The arguments of a canned call of a tool whose JSON Schema is `schema`: each required string
/// property gets the last word of `prompt`.
fn canned_arguments(schema: Option<&Value>, prompt: &str) -> Value {
    let word = prompt
        .split_whitespace()
        .last()
        .unwrap_or("mock")
        .trim_matches(|c: char| !c.is_alphanumeric());
    let mut args = serde_json::Map::new();
    let required = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    for name in required {
        let ty = schema
            .and_then(|s| s.pointer(&format!("/properties/{name}/type")))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        if ty.as_deref().is_none_or(|t| t == "string") {
            args.insert(name.to_owned(), json!(word));
        }
    }
    Value::Object(args)
}

/// What the tool returned, as the canned answer reports it.
fn reply_to_tool(name: &str, result: &str) -> String {
    format!("Mock answer using {name}: {result}")
}

/// The first function Gemini's request declares, unless `toolConfig` forbids calls.
fn gemini_tool(body: &Value) -> Option<(String, Option<Value>)> {
    let mode = body.pointer("/toolConfig/functionCallingConfig/mode");
    if mode.and_then(Value::as_str) == Some("NONE") {
        return None;
    }
    let declaration = body
        .get("tools")?
        .as_array()?
        .iter()
        .find_map(|t| t.get("functionDeclarations")?.as_array()?.first())?;
    let schema = declaration
        .get("parametersJsonSchema")
        .or_else(|| declaration.get("parameters"))
        .cloned();
    Some((declaration.get("name")?.as_str()?.to_owned(), schema))
}

/// Gemini 3's refusal of a model turn whose first function call lost its thought signature
/// (the message as reported in https://github.com/manthanabc/paws/issues/103).
fn unsigned_call(body: &Value) -> Option<Response> {
    let contents = body.get("contents")?.as_array()?;
    let (position, name) = contents.iter().enumerate().find_map(|(i, c)| {
        let first = c
            .get("parts")?
            .as_array()?
            .iter()
            .find(|p| p.get("functionCall").is_some())?;
        let signed = first
            .get("thoughtSignature")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        let name = first.pointer("/functionCall/name").and_then(Value::as_str);
        (!signed).then(|| (i, name.map(str::to_owned)))
    })?;
    let message = format!(
        "Function call is missing a thought_signature in functionCall parts. This is required for \
         tools to work correctly, and missing thought_signature may lead to degraded model \
         performance. Additional data, function call `default_api:{}` , position {}. Please refer \
         to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
        name.unwrap_or_default(),
        position + 1
    );
    let error = json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}});
    Some((StatusCode::BAD_REQUEST, axum::Json(error)).into_response())
}

async fn gemini(Path(model_action): Path<String>, body: axum::Json<Value>) -> Response {
    let Some((model, action)) = model_action.split_once(':') else {
        return (StatusCode::NOT_FOUND, "expected models/{model}:{action}").into_response();
    };
    if let Some(refusal) = unsigned_call(&body) {
        return refusal;
    }
    let last = body
        .pointer("/contents")
        .and_then(Value::as_array)
        .and_then(|c| c.last());
    let prompt = last
        .and_then(|c| c.pointer("/parts/0/text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let tool_result = last
        .and_then(|c| c.pointer("/parts/0/functionResponse"))
        .map(|r| {
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            reply_to_tool(name, &r.get("response").unwrap_or(&Value::Null).to_string())
        });
    let usage = |out: usize| json!({"promptTokenCount": 8, "candidatesTokenCount": out, "totalTokenCount": 8 + out});
    let call =
        gemini_tool(&body).filter(|_| tool_result.is_none() && action != "batchEmbedContents");
    if let Some((name, schema)) = call {
        let part = json!({
            "functionCall": {"name": name, "args": canned_arguments(schema.as_ref(), &prompt)},
            "thoughtSignature": THOUGHT_SIGNATURE,
        });
        let answer = json!({
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage(12),
            "modelVersion": model,
            "responseId": "mock-response",
        });
        return match action {
            "generateContent" => axum::Json(answer).into_response(),
            "streamGenerateContent" => sse(vec![answer.to_string()]),
            _ => (StatusCode::NOT_FOUND, "unknown action").into_response(),
        };
    }
    let words: Vec<String> = tool_result
        .unwrap_or_else(|| reply_to(&prompt))
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
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
    let messages = body.get("messages").and_then(Value::as_array);
    let last = messages.and_then(|m| m.last());
    let prompt = last
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    let tool_result = last
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|m| {
            // The function's name is on the assistant turn whose call this answers.
            let id = m.get("tool_call_id").and_then(Value::as_str);
            let name = messages
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("tool_calls")?.as_array())
                .flatten()
                .find(|c| c.get("id").and_then(Value::as_str) == id)
                .and_then(|c| c.pointer("/function/name")?.as_str())
                .unwrap_or_default();
            reply_to_tool(name, &prompt)
        });
    let tool = body
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.get("function"))
        .filter(|_| body.get("tool_choice").and_then(Value::as_str) != Some("none"));
    if let Some(function) = tool.filter(|_| tool_result.is_none()) {
        return openai_tool_call(&model, function, &prompt, stream);
    }
    let words: Vec<String> = tool_result
        .unwrap_or_else(|| reply_to(&prompt))
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    let usage = json!({"prompt_tokens": 8, "completion_tokens": words.len(), "total_tokens": 8 + words.len()});
    if !stream {
        let message = json!({"role": "assistant", "content": words.concat()});
        return openai_completion(&model, message, "stop", usage);
    }
    let chunk = |delta: Value, finish: Value| openai_chunk(&model, delta, finish);
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
    events.push(openai_usage_chunk(&model, usage));
    events.push("[DONE]".into());
    sse(events)
}

/// A whole OpenAI chat completion of one `message`.
fn openai_completion(model: &str, message: Value, finish: &str, usage: Value) -> Response {
    axum::Json(json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_760_000_000u64, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }))
    .into_response()
}

/// One OpenAI `chat.completion.chunk` of answer 0.
fn openai_chunk(model: &str, delta: Value, finish: Value) -> String {
    json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_760_000_000u64,
           "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

/// The last chunk of a stream that asked for usage: no choices, the usage.
fn openai_usage_chunk(model: &str, usage: Value) -> String {
    json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_760_000_000u64,
           "model": model, "choices": [], "usage": usage})
    .to_string()
}

/// A call of `function` (an OpenAI `tools[].function`), whole or streamed as OpenAI streams one:
/// the id and name first, then the arguments in two fragments.
fn openai_tool_call(model: &str, function: &Value, prompt: &str, stream: bool) -> Response {
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let arguments = canned_arguments(function.get("parameters"), prompt).to_string();
    let usage = json!({"prompt_tokens": 8, "completion_tokens": 12, "total_tokens": 20});
    let id = "call_mock_1";
    if !stream {
        let message = json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]});
        return openai_completion(model, message, "tool_calls", usage);
    }
    let chunk = |delta: Value, finish: Value| openai_chunk(model, delta, finish);
    let middle = arguments
        .char_indices()
        .nth(arguments.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let (head, tail) = arguments.split_at(middle);
    sse(vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}
            ]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": head}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": tail}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        openai_usage_chunk(model, usage),
        "[DONE]".into(),
    ])
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
