//! Tests of `convert`.

use gateway_core::ErrorKind;
use serde_json::{Value, json};

use super::*;

fn request_json(req: &TextRequest, stream: bool) -> Value {
    serde_json::to_value(chat_request(req, stream).unwrap()).unwrap()
}

fn response(body: Value) -> TextResponse {
    let wire: wire::ChatCompletion = serde_json::from_value(body).unwrap();
    text_response(wire, "requested/model").unwrap()
}

fn completion(message: Value, finish_reason: Value) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}
    })
}

// ---- request shape ----

#[test]
fn plain_request() {
    let req = TextRequest::new("meta-llama/Llama-3.1-8B-Instruct").user("hi");
    assert_eq!(
        request_json(&req, false),
        json!({
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "messages": [{"role": "user", "content": "hi"}]
        })
    );
}

#[test]
fn system_and_multi_turn_keep_order_and_roles() {
    let req = TextRequest::new("Qwen/Qwen3-8B")
        .system("You are terse.")
        .user("Hi")
        .assistant("Hello.")
        .system("Answer in French.")
        .user("Colours?");
    assert_eq!(
        request_json(&req, false),
        json!({
            "model": "Qwen/Qwen3-8B",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "Colours?"}
            ]
        })
    );
}

#[test]
fn every_option() {
    let mut req = TextRequest::new("openai/gpt-oss-120b:cerebras")
        .user("hi")
        .max_tokens(128)
        .temperature(0.2)
        .stop("END")
        .stop("\n\n");
    req.top_p = Some(0.9);
    req.seed = Some(42);
    req.presence_penalty = Some(0.5);
    req.frequency_penalty = Some(-0.5);
    req.response_format = Some(ResponseFormat::Text);
    assert_eq!(
        request_json(&req, false),
        json!({
            "model": "openai/gpt-oss-120b:cerebras",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 128,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["END", "\n\n"],
            "seed": 42,
            "presence_penalty": 0.5,
            "frequency_penalty": -0.5
        })
    );
}

#[test]
fn json_object() {
    let req = TextRequest::new("m")
        .user("Give me 2 colors as JSON.")
        .response_format(ResponseFormat::JsonObject);
    assert_eq!(
        request_json(&req, false),
        json!({
            "model": "m",
            "messages": [{"role": "user", "content": "Give me 2 colors as JSON."}],
            "response_format": {"type": "json_object"}
        })
    );
}

fn colors_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"type": "string"}}},
        "required": ["colors"]
    })
}

#[test]
fn json_schema_strict() {
    let req = TextRequest::new("m")
        .user("colors")
        .response_format(ResponseFormat::JsonSchema {
            name: "colors".into(),
            schema: colors_schema(),
            strict: Some(true),
        });
    assert_eq!(
        request_json(&req, false)["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {"name": "colors", "schema": colors_schema(), "strict": true}
        })
    );
}

#[test]
fn json_schema_without_strict_leaves_it_out() {
    let req = TextRequest::new("m")
        .user("colors")
        .response_format(ResponseFormat::JsonSchema {
            name: "colors".into(),
            schema: colors_schema(),
            strict: None,
        });
    assert_eq!(
        request_json(&req, false)["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {"name": "colors", "schema": colors_schema()}
        })
    );
}

#[test]
fn stream_request_asks_for_usage() {
    let req = TextRequest::new("meta-llama/Llama-3.1-8B-Instruct:cerebras").user("hi");
    assert_eq!(
        request_json(&req, true),
        json!({
            "model": "meta-llama/Llama-3.1-8B-Instruct:cerebras",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[test]
fn model_is_serialized_first() {
    let req = TextRequest::new("m:groq").user("hi").max_tokens(1);
    let body = serde_json::to_string(&chat_request(&req, true).unwrap()).unwrap();
    assert!(body.starts_with(r#"{"model":"m:groq","#), "{body}");
}

#[test]
fn requests_the_router_cannot_take() {
    let no_messages = TextRequest::new("m");
    let no_model = TextRequest::new(" ").user("hi");
    let nan = TextRequest::new("m").user("hi").temperature(f64::NAN);
    for req in [no_messages, no_model, nan] {
        let err = chat_request(&req, false).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{req:?}");
        assert_eq!(err.provider(), PROVIDER);
    }
}

// ---- response mapping ----

#[test]
fn response_fields() {
    let r = response(completion(
        json!({"role": "assistant", "content": "{\"colors\":[\"red\",\"blue\"]}"}),
        json!("stop"),
    ));
    assert_eq!(
        r,
        TextResponse {
            id: Some("chatcmpl-1".into()),
            model: "meta-llama/Llama-3.1-8B-Instruct".into(),
            content: "{\"colors\":[\"red\",\"blue\"]}".into(),
            finish_reason: FinishReason::Stop,
            usage: TokenUsage {
                input_tokens: 31,
                output_tokens: 12,
                reasoning_tokens: 0,
                cached_input_tokens: 0,
            },
        }
    );
}

#[test]
fn every_finish_reason() {
    for (wire, core) in [
        (json!("stop"), FinishReason::Stop),
        (json!("length"), FinishReason::Length),
        (json!("content_filter"), FinishReason::ContentFilter),
        (json!("tool_calls"), FinishReason::ToolCalls),
        (json!("function_call"), FinishReason::ToolCalls),
        (json!("eos_token"), FinishReason::Stop),
        (json!(null), FinishReason::Stop),
    ] {
        let r = response(completion(json!({"content": "x"}), wire.clone()));
        assert_eq!(r.finish_reason, core, "{wire}");
    }
}

#[test]
fn usage_with_reasoning_and_cached_tokens() {
    let mut body = completion(json!({"content": "x"}), json!("stop"));
    body["usage"] = json!({
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 25}
    });
    assert_eq!(
        response(body).usage,
        TokenUsage {
            input_tokens: 100,
            output_tokens: 40,
            reasoning_tokens: 25,
            cached_input_tokens: 64,
        }
    );
}

#[test]
fn missing_or_partial_usage_counts_zero() {
    let mut body = completion(json!({"content": "x"}), json!("stop"));
    body.as_object_mut().unwrap().remove("usage");
    assert_eq!(response(body).usage, TokenUsage::default());

    let mut body = completion(json!({"content": "x"}), json!("stop"));
    body["usage"] = json!({"prompt_tokens": 5, "prompt_tokens_details": null});
    assert_eq!(
        response(body).usage,
        TokenUsage {
            input_tokens: 5,
            ..TokenUsage::default()
        }
    );
}

#[test]
fn null_content_is_empty_text() {
    let r = response(completion(
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}]}),
        json!("tool_calls"),
    ));
    assert_eq!(r.content, "");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
}

#[test]
fn missing_model_and_id_fall_back() {
    let r = response(json!({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}));
    assert_eq!(r.model, "requested/model");
    assert_eq!(r.id, None);
}

#[test]
fn no_choices_is_a_decode_error() {
    let wire: wire::ChatCompletion =
        serde_json::from_value(json!({"id": "x", "choices": []})).unwrap();
    let err = text_response(wire, "m").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
}

// ---- stream decoder ----

fn feed(events: &[&str]) -> (Vec<TextChunk>, Vec<Result<SseStep>>) {
    let mut decoder = StreamDecoder::new(200);
    let mut out = Vec::new();
    let steps = events
        .iter()
        .map(|data| {
            decoder.on_event(
                SseEvent {
                    data: (*data).to_owned(),
                    ..SseEvent::default()
                },
                &mut out,
            )
        })
        .collect();
    (out, steps)
}

#[test]
fn stream_deltas_finish_usage_and_done() {
    let (chunks, steps) = feed(&[
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1760000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}}"#,
        "[DONE]",
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Hel".into()),
            TextChunk::Delta("lo".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(TokenUsage {
                input_tokens: 9,
                output_tokens: 2,
                reasoning_tokens: 1,
                cached_input_tokens: 4,
            }),
        ]
    );
    let steps: Vec<SseStep> = steps.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        steps,
        [
            SseStep::Continue,
            SseStep::Continue,
            SseStep::Continue,
            SseStep::Continue,
            SseStep::Done
        ]
    );
}

#[test]
fn stream_usage_on_the_finishing_chunk() {
    // The HF reference's example: content, finish_reason and usage on one chunk.
    let (chunks, _) = feed(&[
        r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"length"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("lo".into()),
            TextChunk::Finish(FinishReason::Length),
            TextChunk::Usage(TokenUsage {
                input_tokens: 9,
                output_tokens: 2,
                ..TokenUsage::default()
            }),
        ]
    );
}

#[test]
fn stream_finish_is_reported_once() {
    let (chunks, _) = feed(&[
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(TokenUsage {
                input_tokens: 1,
                output_tokens: 1,
                ..TokenUsage::default()
            }),
        ]
    );
}

#[test]
fn stream_error_event() {
    let (chunks, steps) = feed(&[
        r#"{"choices":[{"delta":{"content":"Hi"}}]}"#,
        r#"{"error":{"message":"Input validation error","type":"invalid_request_error","code":null}}"#,
    ]);
    assert_eq!(chunks, vec![TextChunk::Delta("Hi".into())]);
    let err = steps.into_iter().nth(1).unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 200 });
    assert_eq!(err.message(), "Input validation error");
    assert_eq!(err.provider(), PROVIDER);

    let (_, steps) = feed(&[r#"{"error":"Model is overloaded","error_type":"overloaded"}"#]);
    let err = steps.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.message(), "Model is overloaded");
}

#[test]
fn stream_event_that_is_not_json() {
    let (_, steps) = feed(&["{not json"]);
    let err = steps.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    assert_eq!(err.body(), Some("{not json"));
}

#[test]
fn eof_without_done_is_interrupted_even_after_finish() {
    let mut decoder = StreamDecoder::new(200);
    let mut out = Vec::new();
    decoder
        .on_event(
            SseEvent {
                data: r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#.into(),
                ..SseEvent::default()
            },
            &mut out,
        )
        .unwrap();
    let err = decoder.on_eof(&mut out).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::StreamInterrupted);
    assert_eq!(err.provider(), PROVIDER);
}

// ---- content parts ----

#[test]
fn text_stays_a_string_and_images_become_parts() {
    let req = TextRequest::new("Qwen/Qwen2.5-VL-7B-Instruct")
        .system("terse")
        .message(gateway_core::Message::with_parts(
            Role::User,
            vec![
                Part::text("What is this?"),
                Part::Image {
                    url: "https://example.com/cat.png".into(),
                    detail: Some("low".into()),
                },
            ],
        ));
    assert_eq!(
        request_json(&req, false)["messages"],
        json!([
            {"role": "system", "content": "terse"},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
            ]}
        ])
    );
    let audio = TextRequest::new("m").message(gateway_core::Message::with_parts(
        Role::User,
        vec![Part::Audio {
            data: "UklGRg==".into(),
            format: "wav".into(),
        }],
    ));
    let err = chat_request(&audio, false).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(err.param(), Some("messages[0].content[0]"));
}

// ---- embeddings ----

/// A recorded answer of `tests/fixtures/<name>`: its JSON body.
fn recorded(name: &str) -> Value {
    gw_mock::fixture::Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
        .json
        .unwrap_or_default()
}

#[test]
fn embed_request_route_and_body() {
    let one = EmbeddingRequest::new("BAAI/bge-small-en-v1.5").input("hello");
    let (path, body) = embed_request(&one).unwrap();
    assert_eq!(
        path,
        "/hf-inference/models/BAAI/bge-small-en-v1.5/pipeline/feature-extraction"
    );
    assert_eq!(
        serde_json::to_value(body).unwrap(),
        json!({"inputs": "hello"})
    );
    let two = EmbeddingRequest::new("BAAI/bge-small-en-v1.5:hf-inference")
        .input("a")
        .input("b")
        .option("normalize", true)
        .option("truncate", true);
    let (path, body) = embed_request(&two).unwrap();
    assert!(path.starts_with("/hf-inference/models/BAAI/bge-small-en-v1.5/"));
    assert_eq!(
        serde_json::to_value(body).unwrap(),
        json!({"inputs": ["a", "b"], "normalize": true, "truncate": true})
    );
    let other = EmbeddingRequest::new("Qwen/Qwen3-Embedding-8B:scaleway").input("a");
    let err = embed_request(&other).unwrap_err();
    assert_eq!(
        (err.kind(), err.param()),
        (&ErrorKind::Unsupported, Some("model"))
    );
    let unknown = EmbeddingRequest::new("m")
        .input("a")
        .option("taskType", "x");
    assert_eq!(
        embed_request(&unknown).unwrap_err().param(),
        Some("options.taskType")
    );
    for bad in ["../etc", "a/b/c", "a b", "a/", ""] {
        let err = embed_request(&EmbeddingRequest::new(bad).input("a")).unwrap_err();
        assert_eq!(err.param(), Some("model"), "{bad}");
    }
}

#[test]
fn recorded_feature_extraction_shapes() {
    let one = embed_response(recorded("embed/one_flat.json"), 1, "m").unwrap();
    let want: Vec<f32> = [
        -0.14440986514091492f64,
        -0.21552105247974396,
        0.3950553238391876,
    ]
    .iter()
    .map(|&v| v as f32)
    .collect();
    assert_eq!(one.embeddings, vec![want]);
    assert_eq!(one.usage, TokenUsage::default());
    let two = embed_response(recorded("embed/two.json"), 2, "m").unwrap();
    assert_eq!(two.embeddings.len(), 2);
    // One vector per token is not an embedding of the text.
    let err =
        embed_response(recorded("embed/token_level.json"), 1, "facebook/bart-base").unwrap_err();
    assert_eq!(
        (err.kind(), err.param()),
        (&ErrorKind::InvalidRequest, Some("model"))
    );
    let err = embed_response(recorded("embed/two.json"), 3, "m").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    let err = embed_response(json!({"error": "x"}), 1, "m").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
}
