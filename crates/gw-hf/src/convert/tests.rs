//! Tests of `convert`.

use gateway_core::ErrorKind;
use gateway_core::json::scan::{broken_variants, reads_as_serde_reads};
use serde_json::{Value, json};

use super::*;

/// The request's JSON; every test of a request's shape also holds the body written by hand
/// (what is sent) to the bytes its `Serialize` writes.
fn request_json(req: &TextRequest, stream: bool) -> Value {
    let wire = chat_request(req, stream).unwrap();
    let by_hand = String::from_utf8(wire.to_json().unwrap()).unwrap();
    assert_eq!(by_hand, serde_json::to_string(&wire).unwrap());
    serde_json::to_value(wire).unwrap()
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
    for (req, param) in [
        (no_messages, Some("messages")),
        (no_model, Some("model")),
        (nan, Some("temperature")),
    ] {
        let err = chat_request(&req, false).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{req:?}");
        assert_eq!(err.provider(), PROVIDER);
        assert_eq!(err.param(), param, "{req:?}");
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
        with_id(
            Some("chatcmpl-1".into()),
            TextResponse::new(
                "meta-llama/Llama-3.1-8B-Instruct",
                "{\"colors\":[\"red\",\"blue\"]}",
                FinishReason::Stop,
                TokenUsage {
                    input_tokens: 31,
                    output_tokens: 12,
                    reasoning_tokens: 0,
                    cached_input_tokens: 0,
                }
            ),
        )
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
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]}),
        json!("tool_calls"),
    ));
    assert_eq!(r.content, "");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls, vec![ToolCall::new("call_1", "f", "{}")]);
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
                SseEventRef {
                    data,
                    ..SseEventRef::default()
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
            SseEventRef {
                data: r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
                ..SseEventRef::default()
            },
            &mut out,
        )
        .unwrap();
    let err = decoder.on_eof(&mut out).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::StreamInterrupted);
    assert_eq!(err.provider(), PROVIDER);
}

/// Feeds `events` (each must be accepted without ending the stream), then the end of the
/// bytes: the chunks and what the end was.
fn feed_to_eof(events: &[&str]) -> (Vec<TextChunk>, Result<()>) {
    let mut decoder = StreamDecoder::new(200);
    let mut out = Vec::new();
    for data in events {
        let step = decoder.on_event(
            SseEventRef {
                data,
                ..SseEventRef::default()
            },
            &mut out,
        );
        assert_eq!(step.unwrap(), SseStep::Continue, "{data}");
    }
    let end = decoder.on_eof(&mut out);
    (out, end)
}

fn tokens(input_tokens: u64, output_tokens: u64) -> TokenUsage {
    TokenUsage {
        input_tokens,
        output_tokens,
        ..TokenUsage::default()
    }
}

#[test]
fn recorded_cerebras_stream_usage_with_the_finish_and_no_done() {
    // api.cerebras.ai with `stream_options.include_usage`, recorded by charmbracelet/fantasy
    // (`providertests/testdata/TestCerebrasCommon/cerebras-qwen-3-coder-480b/simple_streaming.yaml`
    // at 71f727f0c6f1021be71a2284bfccaa8465fa2213): the usage rides on the chunk with the
    // `finish_reason`, and the body ends there, without `data: [DONE]`.
    let (chunks, end) = feed_to_eof(&[
        r#"{"id":"chatcmpl-07ac2555-5f70-4250-bf47-c33cb5e4e22f","choices":[{"delta":{"role":"assistant"},"index":0}],"created":1761231233,"model":"qwen-3-coder-480b","system_fingerprint":"fp_386b539e7b02ce3613b7","object":"chat.completion.chunk"}"#,
        r#"{"id":"chatcmpl-07ac2555-5f70-4250-bf47-c33cb5e4e22f","choices":[{"delta":{"content":"Oi"},"index":0}],"created":1761231233,"model":"qwen-3-coder-480b","system_fingerprint":"fp_386b539e7b02ce3613b7","object":"chat.completion.chunk"}"#,
        r#"{"id":"chatcmpl-07ac2555-5f70-4250-bf47-c33cb5e4e22f","choices":[{"delta":{"content":"!"},"index":0}],"created":1761231233,"model":"qwen-3-coder-480b","system_fingerprint":"fp_386b539e7b02ce3613b7","object":"chat.completion.chunk"}"#,
        r#"{"id":"chatcmpl-07ac2555-5f70-4250-bf47-c33cb5e4e22f","choices":[{"delta":{},"index":0}],"created":1761231233,"model":"qwen-3-coder-480b","system_fingerprint":"fp_386b539e7b02ce3613b7","object":"chat.completion.chunk"}"#,
        r#"{"id":"chatcmpl-07ac2555-5f70-4250-bf47-c33cb5e4e22f","choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":1761231233,"model":"qwen-3-coder-480b","system_fingerprint":"fp_386b539e7b02ce3613b7","object":"chat.completion.chunk","usage":{"prompt_tokens":22,"completion_tokens":3,"total_tokens":25,"prompt_tokens_details":{"cached_tokens":0}},"time_info":{"queue_time":0.000533844,"prompt_time":0.00128098,"completion_time":0.003694258,"total_time":0.007519960403442383,"created":1761231233.440385}}"#,
    ]);
    end.unwrap();
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Oi".into()),
            TextChunk::Delta("!".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(tokens(22, 3)),
        ]
    );
}

#[test]
fn recorded_together_stream_through_the_router_usage_with_the_finish() {
    // router.huggingface.co/together, recorded by pydantic-ai
    // (`tests/models/cassettes/test_huggingface/test_hf_model_thinking_part_iter.yaml` at
    // 82fc848a1a14328c20743af789495a3c553c750e): `"usage":null` on every chunk but the one with
    // the `finish_reason`.
    let (chunks, end) = feed_to_eof(&[
        r#"{"id":"oV1nHvx-28Eivz-9c4b16f37c27e605","object":"chat.completion.chunk","created":1769546683,"choices":[{"index":0,"text":"!","logprobs":null,"finish_reason":null,"seed":null,"delta":{"token_id":3,"role":"assistant","content":"!"}}],"model":"deepseek-ai/DeepSeek-R1","usage":null}"#,
        r#"{"id":"oV1nHvx-28Eivz-9c4b16f37c27e605","object":"chat.completion.chunk","created":1769546683,"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop","seed":7228414683750928000,"delta":{"token_id":1,"role":"assistant","content":""}}],"model":"deepseek-ai/DeepSeek-R1","usage":{"prompt_tokens":10,"completion_tokens":955,"total_tokens":965,"cached_tokens":0}}"#,
    ]);
    end.unwrap();
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("!".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(tokens(10, 955)),
        ]
    );
}

#[test]
fn recorded_groq_stream_usage_repeated_is_passed_on_once() {
    // api.groq.com with `stream_options.include_usage`, recorded by charmbracelet/fantasy
    // (`providertests/testdata/TestGroqCommon/groq-kimi-k2-0905/simple_streaming.yaml` at
    // e8ea87a7029ec73944fa730c9313d27e82555f03): the usage on the finishing chunk, both as
    // `x_groq.usage` and `usage`, then again on an empty-`choices` chunk.
    let (chunks, steps) = feed(&[
        r#"{"id":"chatcmpl-217967f6-a17e-43ab-a156-6b28ea4e8338","object":"chat.completion.chunk","created":1761231344,"model":"moonshotai/kimi-k2-instruct-0905","system_fingerprint":"fp_5fe129dff6","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_01k88s34vjesy920ksmza5dh2b"}}"#,
        r#"{"id":"chatcmpl-217967f6-a17e-43ab-a156-6b28ea4e8338","object":"chat.completion.chunk","created":1761231344,"model":"moonshotai/kimi-k2-instruct-0905","system_fingerprint":"fp_5fe129dff6","choices":[{"index":0,"delta":{"content":"Olá!"},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-217967f6-a17e-43ab-a156-6b28ea4e8338","object":"chat.completion.chunk","created":1761231344,"model":"moonshotai/kimi-k2-instruct-0905","system_fingerprint":"fp_5fe129dff6","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_01k88s34vjesy920ksmza5dh2b","usage":{"queue_time":0.16084081,"prompt_tokens":20,"prompt_time":0.012868493,"completion_tokens":4,"completion_time":0.009134913,"total_tokens":24,"total_time":0.022003406}},"usage":{"queue_time":0.16084081,"prompt_tokens":20,"prompt_time":0.012868493,"completion_tokens":4,"completion_time":0.009134913,"total_tokens":24,"total_time":0.022003406}}"#,
        r#"{"id":"chatcmpl-217967f6-a17e-43ab-a156-6b28ea4e8338","object":"chat.completion.chunk","created":1761231344,"model":"moonshotai/kimi-k2-instruct-0905","system_fingerprint":"fp_5fe129dff6","choices":[],"usage":{"queue_time":0.16084081,"prompt_tokens":20,"prompt_time":0.012868493,"completion_tokens":4,"completion_time":0.009134913,"total_tokens":24,"total_time":0.022003406},"service_tier":"on_demand"}"#,
        "[DONE]",
    ]);
    assert_eq!(steps.last().unwrap().as_ref().unwrap(), &SseStep::Done);
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Olá!".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(tokens(20, 4)),
        ]
    );
}

#[test]
fn groq_usage_only_in_x_groq() {
    // Without `stream_options.include_usage` Groq sends no top-level `usage`, only
    // `x_groq.usage` on the final chunk (`XGroq.usage` and `ChatCompletionChunk.usage` of
    // groq-python's `src/groq/types/chat/chat_completion_chunk.py`); the finishing chunk of
    // pydantic-ai's recording (`test_groq/test_tool_use_failed_error_streaming.yaml` at
    // 5039551ad6f598c61893f702583300620184b956) with its top-level `usage` left out.
    let (chunks, end) = feed_to_eof(&[
        r#"{"id":"chatcmpl-935610b8-ec6a-4b1d-8a58-84b34ab0590e","object":"chat.completion.chunk","created":1771434741,"model":"openai/gpt-oss-120b","system_fingerprint":"fp_c82faf3ca0","choices":[{"index":0,"delta":{"content":"."},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-935610b8-ec6a-4b1d-8a58-84b34ab0590e","object":"chat.completion.chunk","created":1771434741,"model":"openai/gpt-oss-120b","system_fingerprint":"fp_c82faf3ca0","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_01khrvt3cxe8dt0makxnbdgqz6","usage":{"queue_time":0.005626991,"prompt_tokens":339,"prompt_time":0.017648485,"completion_tokens":58,"completion_time":0.125333784,"total_tokens":397,"total_time":0.142982269,"completion_tokens_details":{"reasoning_tokens":38}}}}"#,
    ]);
    end.unwrap();
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta(".".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(TokenUsage {
                reasoning_tokens: 38,
                ..tokens(339, 58)
            }),
        ]
    );
}

#[test]
fn usage_on_every_chunk_is_passed_on_as_it_grows_and_a_cut_before_the_finish_is_interrupted() {
    // Written for the rule, not recorded: a backend that sends a running usage on every chunk
    // has each change passed on (the last one stands), and usage without a finish is not a
    // complete answer.
    let (chunks, end) = feed_to_eof(&[
        r#"{"choices":[{"index":0,"delta":{"content":"Coca"}}],"usage":{"prompt_tokens":38,"completion_tokens":1,"total_tokens":39}}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"-Cola"}}],"usage":{"prompt_tokens":38,"completion_tokens":2,"total_tokens":40}}"#,
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Coca".into()),
            TextChunk::Usage(tokens(38, 1)),
            TextChunk::Delta("-Cola".into()),
            TextChunk::Usage(tokens(38, 2)),
        ]
    );
    assert_eq!(end.unwrap_err().kind(), &ErrorKind::StreamInterrupted);
}

#[test]
fn eof_after_the_finish_and_a_later_usage_chunk_is_a_normal_end() {
    // OpenAI's order (finish, then usage on an empty-`choices` chunk) from a backend that leaves
    // out `[DONE]`: nothing more was owed.
    let (chunks, end) = feed_to_eof(&[
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":41,"completion_tokens":5,"total_tokens":46}}"#,
    ]);
    end.unwrap();
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Hi".into()),
            TextChunk::Finish(FinishReason::Stop),
            TextChunk::Usage(tokens(41, 5)),
        ]
    );
}

#[test]
fn a_usage_object_without_counts_is_no_usage() {
    let (chunks, end) = feed_to_eof(&[
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}],"usage":{"total_tokens":null}}"#,
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Hi".into()),
            TextChunk::Finish(FinishReason::Stop),
        ]
    );
    assert_eq!(end.unwrap_err().kind(), &ErrorKind::StreamInterrupted);
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

/// `answer` with the response id `id`.
fn with_id(id: Option<String>, mut answer: TextResponse) -> TextResponse {
    answer.id = id;
    answer
}

// ---- tools, n, logprobs, reasoning_effort: request ----

fn weather_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"]
    })
}

fn weather_tool() -> Tool {
    Tool::function("get_weather", weather_schema()).description("Get weather for a city")
}

/// A request offering `get_weather` and a function without parameters.
fn tools_request() -> TextRequest {
    let mut now = Tool::function("now", json!({}));
    now.parameters = None;
    now.strict = Some(true);
    TextRequest::new("m")
        .user("What's the weather in Paris?")
        .tool(weather_tool())
        .tool(now)
}

fn err_of(req: &TextRequest, stream: bool) -> (ErrorKind, Option<String>) {
    let err = chat_request(req, stream).unwrap_err();
    assert_eq!(err.provider(), PROVIDER, "{err}");
    (err.kind().clone(), err.param().map(str::to_owned))
}

#[test]
fn tools_go_out_in_openai_shape() {
    // The request of the recorded together exchange through the router (pydantic-ai
    // `test_tool_choice_matrix[required-huggingface].yaml`), plus a function without parameters.
    let mut req = tools_request();
    req.tool_choice = Some(ToolChoice::Required);
    req.parallel_tool_calls = Some(false);
    assert_eq!(
        request_json(&req, false),
        json!({
            "model": "m",
            "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
            "tools": [
                {"type": "function", "function": {
                    "name": "get_weather",
                    "description": "Get weather for a city",
                    "parameters": weather_schema()
                }},
                {"type": "function", "function": {
                    "name": "now",
                    "parameters": {"type": "object", "properties": {}},
                    "strict": true
                }}
            ],
            "tool_choice": "required",
            "parallel_tool_calls": false
        })
    );
}

#[test]
fn every_tool_choice() {
    for (choice, wire) in [
        (ToolChoice::Auto, json!("auto")),
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (
            ToolChoice::Function("get_weather".into()),
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ] {
        let mut req = tools_request();
        req.tool_choice = Some(choice.clone());
        assert_eq!(request_json(&req, false)["tool_choice"], wire, "{choice:?}");
    }
}

#[test]
fn tool_choice_that_cannot_be_met() {
    let mut unknown = tools_request();
    unknown.tool_choice = Some(ToolChoice::Function("get_time".into()));
    let mut required_without_tools = TextRequest::new("m").user("hi");
    required_without_tools.tool_choice = Some(ToolChoice::Required);
    let mut named_without_tools = TextRequest::new("m").user("hi");
    named_without_tools.tool_choice = Some(ToolChoice::Function("get_weather".into()));
    for req in [unknown, required_without_tools, named_without_tools] {
        assert_eq!(
            err_of(&req, false),
            (ErrorKind::InvalidRequest, Some("tool_choice".into())),
            "{:?}",
            req.tool_choice
        );
    }
}

#[test]
fn without_tools_auto_none_and_parallel_calls_are_left_out() {
    for choice in [ToolChoice::Auto, ToolChoice::None] {
        let mut req = TextRequest::new("m").user("hi");
        req.tool_choice = Some(choice);
        req.parallel_tool_calls = Some(true);
        assert_eq!(
            request_json(&req, false),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        );
    }
}

#[test]
fn tools_the_router_cannot_take() {
    let mut nameless = tools_request();
    nameless.tools[1].name = " ".into();
    let mut not_a_schema = tools_request();
    not_a_schema.tools[0].parameters = Some(json!("city: string"));
    assert_eq!(
        err_of(&nameless, false),
        (
            ErrorKind::InvalidRequest,
            Some("tools[1].function.name".into())
        )
    );
    assert_eq!(
        err_of(&not_a_schema, false),
        (
            ErrorKind::InvalidRequest,
            Some("tools[0].function.parameters".into())
        )
    );
}

/// The conversation of a tool round trip: the question, the model's call, the tool's result.
fn round_trip(content: &str) -> TextRequest {
    TextRequest::new("gpt-4o-mini")
        .user("What is the capital of the UK? Use the tool, then answer.")
        .message(Message::assistant_calls(
            content,
            vec![ToolCall::new(
                "call_ZR5UUuTt3pf61kjwAJIYdVMj",
                "get_capital",
                "{\"country\":\"UK\"}",
            )],
        ))
        .message(Message::tool_result(
            "call_ZR5UUuTt3pf61kjwAJIYdVMj",
            "London",
        ))
}

#[test]
fn tool_round_trip_messages_as_openai_shapes_them() {
    // Recorded OpenAI request (pydantic-ai `test_run_stream_sync_streams_real_model.yaml`): the
    // assistant's `content` is null when it only called tools.
    assert_eq!(
        request_json(&round_trip(""), false)["messages"],
        json!([
            {"content": "What is the capital of the UK? Use the tool, then answer.", "role": "user"},
            {"content": null, "role": "assistant",
             "tool_calls": [{"function": {"arguments": "{\"country\":\"UK\"}", "name": "get_capital"},
                             "id": "call_ZR5UUuTt3pf61kjwAJIYdVMj", "type": "function"}]},
            {"content": "London", "role": "tool", "tool_call_id": "call_ZR5UUuTt3pf61kjwAJIYdVMj"}
        ])
    );
    // Text said before the call stays.
    assert_eq!(
        request_json(&round_trip("Let me look."), false)["messages"][1]["content"],
        json!("Let me look.")
    );
}

#[test]
fn a_model_s_malformed_arguments_go_back_as_they_were() {
    let mut req = round_trip("");
    req.messages[1].tool_calls[0].arguments = "{\"country\":".into();
    assert_eq!(
        request_json(&req, false)["messages"][1]["tool_calls"][0]["function"]["arguments"],
        json!("{\"country\":")
    );
}

#[test]
fn tool_messages_the_router_cannot_take() {
    let mut no_id = round_trip("");
    no_id.messages[2].tool_call_id = None;
    let mut unknown_id = round_trip("");
    unknown_id.messages[2].tool_call_id = Some("call_other".into());
    let mut answer_before_call = round_trip("");
    answer_before_call.messages.swap(1, 2);
    let mut user_calls = round_trip("");
    user_calls.messages[0].tool_calls = user_calls.messages[1].tool_calls.clone();
    let mut empty_call_id = round_trip("");
    empty_call_id.messages[1].tool_calls[0].id = String::new();
    let mut nameless_call = round_trip("");
    nameless_call.messages[1].tool_calls[0].name = String::new();
    for (req, param) in [
        (no_id, "messages[2].tool_call_id"),
        (unknown_id, "messages[2].tool_call_id"),
        (answer_before_call, "messages[1].tool_call_id"),
        (user_calls, "messages[0].tool_calls"),
        (empty_call_id, "messages[1].tool_calls[0].id"),
        (nameless_call, "messages[1].tool_calls[0].function.name"),
    ] {
        assert_eq!(
            err_of(&req, false),
            (ErrorKind::InvalidRequest, Some(param.to_owned())),
            "{param}"
        );
    }
    let mut image_result = round_trip("");
    image_result.messages[2]
        .content
        .push(Part::image_url("https://example.com/chart.png"));
    assert_eq!(
        err_of(&image_result, false),
        (
            ErrorKind::Unsupported,
            Some("messages[2].content[1]".into())
        )
    );
}

#[test]
fn n_goes_out_above_one() {
    let mut req = TextRequest::new("m").user("hi");
    req.n = Some(3);
    assert_eq!(request_json(&req, false)["n"], json!(3));
    req.n = Some(MAX_N);
    assert_eq!(request_json(&req, false)["n"], json!(128));
    req.n = Some(1);
    assert!(request_json(&req, false).get("n").is_none());
}

#[test]
fn n_the_router_cannot_take() {
    let mut zero = TextRequest::new("m").user("hi");
    zero.n = Some(0);
    assert_eq!(
        err_of(&zero, false),
        (ErrorKind::InvalidRequest, Some("n".into()))
    );
    let mut too_many = TextRequest::new("m").user("hi");
    too_many.n = Some(MAX_N + 1);
    assert_eq!(
        err_of(&too_many, false),
        (ErrorKind::InvalidRequest, Some("n".into()))
    );
    // A stream carries one answer.
    let mut streamed = TextRequest::new("m").user("hi");
    streamed.n = Some(2);
    assert_eq!(
        err_of(&streamed, true),
        (ErrorKind::Unsupported, Some("n".into()))
    );
    streamed.n = Some(1);
    assert!(chat_request(&streamed, true).is_ok());
}

#[test]
fn logprobs_go_out() {
    let mut req = TextRequest::new("m").user("hi");
    req.logprobs = true;
    let body = request_json(&req, false);
    assert_eq!(body["logprobs"], json!(true));
    assert!(body.get("top_logprobs").is_none());
    req.top_logprobs = Some(5);
    let body = request_json(&req, false);
    assert_eq!(
        (&body["logprobs"], &body["top_logprobs"]),
        (&json!(true), &json!(5))
    );
    // Alternatives without `logprobs` ask for log probabilities too, as OpenAI requires.
    req.logprobs = false;
    req.top_logprobs = Some(0);
    let body = request_json(&req, false);
    assert_eq!(
        (&body["logprobs"], &body["top_logprobs"]),
        (&json!(true), &json!(0))
    );
    let plain = request_json(&TextRequest::new("m").user("hi"), false);
    assert!(plain.get("logprobs").is_none() && plain.get("top_logprobs").is_none());
}

#[test]
fn logprobs_the_router_cannot_take() {
    let mut too_many = TextRequest::new("m").user("hi");
    too_many.logprobs = true;
    too_many.top_logprobs = Some(21);
    assert_eq!(
        err_of(&too_many, false),
        (ErrorKind::InvalidRequest, Some("top_logprobs".into()))
    );
    let mut streamed = TextRequest::new("m").user("hi");
    streamed.logprobs = true;
    assert_eq!(
        err_of(&streamed, true),
        (ErrorKind::Unsupported, Some("logprobs".into()))
    );
    streamed.logprobs = false;
    streamed.top_logprobs = Some(2);
    assert_eq!(
        err_of(&streamed, true),
        (ErrorKind::Unsupported, Some("top_logprobs".into()))
    );
}

#[test]
fn every_reasoning_effort_goes_out_by_its_openai_name() {
    for (effort, name) in [
        (ReasoningEffort::None, "none"),
        (ReasoningEffort::Minimal, "minimal"),
        (ReasoningEffort::Low, "low"),
        (ReasoningEffort::Medium, "medium"),
        (ReasoningEffort::High, "high"),
    ] {
        let mut req = TextRequest::new("openai/gpt-oss-120b:cerebras").user("hi");
        req.reasoning_effort = Some(effort);
        assert_eq!(request_json(&req, false)["reasoning_effort"], json!(name));
        assert_eq!(request_json(&req, true)["reasoning_effort"], json!(name));
    }
    let plain = request_json(&TextRequest::new("m").user("hi"), false);
    assert!(plain.get("reasoning_effort").is_none());
}

// ---- tools, n, logprobs: answers ----

#[test]
fn recorded_together_tool_call() {
    let r = response(recorded("text/tool_call_together.json"));
    assert_eq!(r.id.as_deref(), Some("oVGwhWC-z1gNr-9c5b73fb8ff51737"));
    assert_eq!(r.content, "");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.tool_calls,
        vec![ToolCall::new(
            "call_fd883226aed04dee83ca77e0",
            "get_weather",
            "{\"city\": \"Paris\"}"
        )]
    );
    assert_eq!(
        r.usage,
        TokenUsage {
            input_tokens: 608,
            output_tokens: 30,
            ..TokenUsage::default()
        }
    );
    assert!(r.alternatives.is_empty());
    assert_eq!(r.logprobs, None);
}

#[test]
fn recorded_tgi_tool_call_with_object_arguments() {
    // TGI before 3.2: `arguments` an object, `id` "0", the answer's `id` "", finish `stop`.
    let r = response(recorded("text/tool_call_tgi.json"));
    assert_eq!(r.id, None);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls.len(), 1);
    let call = &r.tool_calls[0];
    assert_eq!(call.name, "get_current_weather");
    assert!(generated(&call.id), "{}", call.id);
    let arguments: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(
        arguments,
        json!({"format": "celsius", "location": "Brooklyn, New York"})
    );
    assert_eq!(r.usage.input_tokens, 615);
    assert_eq!(r.usage.output_tokens, 30);
}

/// Whether `id` is one of ours: nine letters and digits, a letter first (Mistral's form).
fn generated(id: &str) -> bool {
    id.len() == 9
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && id.as_bytes()[0].is_ascii_alphabetic()
}

#[test]
fn fresh_call_ids_are_in_mistral_s_form_and_unique() {
    let mut ids: Vec<String> = (0..10_000).map(|_| new_call_id()).collect();
    assert!(ids.iter().all(|id| generated(id)), "{ids:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10_000);
}

#[test]
fn call_ids_that_cannot_tell_calls_apart_are_replaced() {
    let call = |id: Value, name: &str| json!({"id": id, "type": "function", "function": {"name": name, "arguments": "{}"}});
    let r = response(completion(
        json!({"content": null, "tool_calls": [
            call(json!("call_a"), "first"),
            call(json!("call_a"), "second"),
            call(json!(null), "third"),
            call(json!(""), "fourth"),
            call(json!("7"), "fifth"),
        ]}),
        json!("tool_calls"),
    ));
    let names: Vec<&str> = r.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third", "fourth", "fifth"]);
    assert_eq!(r.tool_calls[0].id, "call_a");
    let mut ids: Vec<&str> = r.tool_calls.iter().map(|c| c.id.as_str()).collect();
    for id in &ids[1..] {
        assert!(generated(id), "{id}");
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "ids must be unique: {ids:?}");
}

#[test]
fn tool_call_arguments_in_every_form() {
    for (arguments, text) in [
        (json!("{\"a\":1}"), "{\"a\":1}"),
        (json!({"a": 1}), "{\"a\":1}"),
        (json!(null), "{}"),
        (json!(""), ""),
    ] {
        let r = response(completion(
            json!({"tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": arguments}}]}),
            json!("tool_calls"),
        ));
        assert_eq!(r.tool_calls[0].arguments, text, "{arguments}");
    }
    let r = response(completion(
        json!({"tool_calls": [{"id": "call_1", "function": {"name": "f"}}]}),
        json!("tool_calls"),
    ));
    assert_eq!(r.tool_calls[0].arguments, "{}");
}

#[test]
fn a_tool_call_without_a_function_name_is_a_decode_error() {
    for call in [
        json!({"id": "call_1"}),
        json!({"id": "call_1", "function": {"name": "", "arguments": "{}"}}),
    ] {
        let wire: wire::ChatCompletion = serde_json::from_value(completion(
            json!({"content": null, "tool_calls": [call]}),
            json!("tool_calls"),
        ))
        .unwrap();
        let err = text_response(wire, "m").unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Decode);
        assert!(err.message().contains("tool_calls[0]"), "{err}");
    }
}

#[test]
fn finish_with_tool_calls() {
    let with_call = |finish: Value| {
        response(completion(
            json!({"tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": "{}"}}]}),
            finish,
        ))
        .finish_reason
    };
    for finish in [
        "stop",
        "eos_token",
        "stop_sequence",
        "tool_calls",
        "function_call",
    ] {
        assert_eq!(
            with_call(json!(finish)),
            FinishReason::ToolCalls,
            "{finish}"
        );
    }
    assert_eq!(with_call(json!(null)), FinishReason::ToolCalls);
    // A call cut off by the limit is reported as cut off.
    assert_eq!(with_call(json!("length")), FinishReason::Length);
}

#[test]
fn every_choice_in_index_order() {
    let body = json!({
        "id": "chatcmpl-n",
        "model": "m",
        "choices": [
            {"index": 1, "message": {"content": null, "tool_calls": [
                {"id": "call_b", "type": "function", "function": {"name": "f", "arguments": "{\"x\":2}"}}
            ]}, "finish_reason": "tool_calls"},
            {"index": 0, "message": {"content": "Paris."}, "finish_reason": "stop"},
            {"index": 2, "message": {"content": "Par"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 21, "total_tokens": 31}
    });
    let r = response(body);
    assert_eq!(r.content, "Paris.");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.tool_calls.is_empty());
    let mut second = Choice::new("", FinishReason::ToolCalls);
    second.tool_calls = vec![ToolCall::new("call_b", "f", "{\"x\":2}")];
    assert_eq!(
        r.alternatives,
        vec![second, Choice::new("Par", FinishReason::Length)]
    );
    // Usage covers every answer.
    assert_eq!(
        r.usage,
        TokenUsage {
            input_tokens: 10,
            output_tokens: 21,
            ..TokenUsage::default()
        }
    );
    let contents: Vec<String> = r.choices().into_iter().map(|c| c.content).collect();
    assert_eq!(contents, ["Paris.", "", "Par"]);
}

#[test]
fn choices_without_index_keep_their_order() {
    let r = response(json!({"choices": [
        {"message": {"content": "a"}, "finish_reason": "stop"},
        {"message": {"content": "b"}, "finish_reason": "stop"}
    ]}));
    assert_eq!(r.content, "a");
    assert_eq!(r.alternatives, vec![Choice::new("b", FinishReason::Stop)]);
}

#[test]
fn logprobs_of_every_answer() {
    // OpenAI's shape, which the HF reference documents (`choices[].logprobs.content[]` with
    // `token`, `logprob`, `top_logprobs[]`); `bytes` is ignored; `null` is minus infinity.
    let body = json!({
        "model": "m",
        "choices": [
            {"index": 0, "message": {"content": "Hi"}, "finish_reason": "stop",
             "logprobs": {"content": [
                {"token": "Hi", "logprob": -0.01, "bytes": [72, 105],
                 "top_logprobs": [{"token": "Hi", "logprob": -0.01, "bytes": [72, 105]},
                                  {"token": "Hello", "logprob": -4.6, "bytes": null}]},
                {"token": "!", "logprob": null, "top_logprobs": []}
             ], "refusal": null}},
            {"index": 1, "message": {"content": "Yo"}, "finish_reason": "stop",
             "logprobs": {"content": [{"token": "Yo", "logprob": -2.5}]}},
            {"index": 2, "message": {"content": "Hey"}, "finish_reason": "stop", "logprobs": null}
        ]
    });
    let r = response(body);
    let mut hi = TokenLogprob::new("Hi", -0.01);
    hi.top = vec![("Hi".into(), -0.01), ("Hello".into(), -4.6)];
    assert_eq!(
        r.logprobs,
        Some(vec![hi, TokenLogprob::new("!", f64::NEG_INFINITY)])
    );
    assert_eq!(
        r.alternatives[0].logprobs,
        Some(vec![TokenLogprob::new("Yo", -2.5)])
    );
    assert_eq!(r.alternatives[1].logprobs, None);
}

#[test]
fn reasoning_text_stays_out_of_the_content() {
    let r = response(completion(
        json!({"role": "assistant", "content": "4", "reasoning_content": "2 + 2 is 4", "reasoning": "2 + 2 is 4"}),
        json!("stop"),
    ));
    assert_eq!(r.content, "4");
}

// ---- tools: streams ----

/// The events of the recorded stream `tests/fixtures/<name>`.
fn recorded_events(name: &str) -> Vec<String> {
    gw_mock::fixture::Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
        .sse
        .unwrap_or_default()
}

/// `chunks`' tool calls put back together: (id, name, arguments) per index.
fn assemble(chunks: &[TextChunk]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in chunks {
        if let TextChunk::ToolCall {
            index,
            id,
            name,
            arguments,
        } = chunk
        {
            let index = *index as usize;
            if index == calls.len() {
                let (Some(id), Some(name)) = (id, name) else {
                    panic!("call {index} started without its id and name: {chunk:?}");
                };
                calls.push((id.clone(), name.clone(), String::new()));
            } else {
                assert!(index < calls.len(), "call {index} skipped one: {chunks:?}");
                assert_eq!(
                    (id, name),
                    (&None, &None),
                    "id and name come once: {chunks:?}"
                );
            }
            calls[index].2.push_str(arguments);
        }
    }
    calls
}

fn feed_all(events: &[String]) -> (Vec<TextChunk>, Vec<Result<SseStep>>) {
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    feed(&events)
}

#[test]
fn recorded_openai_tool_call_stream() {
    let (chunks, steps) = feed_all(&recorded_events("text/tool_stream_openai.json"));
    assert!(steps.iter().all(Result::is_ok), "{steps:?}");
    assert_eq!(
        chunks.first(),
        Some(&TextChunk::ToolCall {
            index: 0,
            id: Some("call_ZR5UUuTt3pf61kjwAJIYdVMj".into()),
            name: Some("get_capital".into()),
            arguments: String::new(),
        })
    );
    assert_eq!(
        assemble(&chunks),
        vec![(
            "call_ZR5UUuTt3pf61kjwAJIYdVMj".into(),
            "get_capital".into(),
            "{\"country\":\"UK\"}".into()
        )]
    );
    assert_eq!(
        &chunks[chunks.len() - 2..],
        [
            TextChunk::Finish(FinishReason::ToolCalls),
            TextChunk::Usage(TokenUsage {
                input_tokens: 53,
                output_tokens: 15,
                ..TokenUsage::default()
            }),
        ]
    );
    assert!(!chunks.iter().any(|c| matches!(c, TextChunk::Delta(_))));
}

#[test]
fn recorded_tgi_tool_call_stream() {
    // TGI 3.2: `"id": "0"` on every piece, the name on the first, no `finish_reason` at all.
    let mut events = recorded_events("text/tool_stream_tgi.json");
    events.push("[DONE]".into());
    let (chunks, steps) = feed_all(&events);
    assert!(steps.iter().all(Result::is_ok), "{steps:?}");
    let calls = assemble(&chunks);
    assert_eq!(calls.len(), 1, "{chunks:?}");
    let (id, name, arguments) = &calls[0];
    assert!(generated(id), "TGI's \"0\" is replaced: {id}");
    assert_eq!(name, "get_current_weather");
    assert_eq!(
        arguments,
        "{ \"location\": \"Brooklyn, NY\", \"format\": \"fahrenheit\"}"
    );
    assert_eq!(
        chunks.last(),
        Some(&TextChunk::Finish(FinishReason::ToolCalls))
    );
}

#[test]
fn a_whole_call_in_one_piece() {
    // Groq's shape (a router backend), recorded by pydantic-ai
    // (`test_groq/test_tool_use_failed_error_streaming.yaml`); its usage chunk left out.
    let (chunks, _) = feed(&[
        r#"{"id":"chatcmpl-e35442a8-12c0-4fb4-8be4-0e51727ce7b7","object":"chat.completion.chunk","created":1771434740,"model":"openai/gpt-oss-120b","system_fingerprint":"fp_caa2017b29","choices":[{"index":0,"delta":{"tool_calls":[{"id":"fc_bfb39741-3748-4def-9886-a93fc9c64a90","type":"function","function":{"name":"get_something_by_name","arguments":"{\"name\":\"example\"}"},"index":0}]},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-e35442a8-12c0-4fb4-8be4-0e51727ce7b7","object":"chat.completion.chunk","created":1771434740,"model":"openai/gpt-oss-120b","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::ToolCall {
                index: 0,
                id: Some("fc_bfb39741-3748-4def-9886-a93fc9c64a90".into()),
                name: Some("get_something_by_name".into()),
                arguments: "{\"name\":\"example\"}".into(),
            },
            TextChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn parallel_calls_by_index() {
    // The shape of OpenAI's recorded parallel calls (pydantic-ai `test_complex_agent_run.yaml`).
    let (chunks, _) = feed(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_q2UyBRP7eXNTzAoR8lEhjc9Z","type":"function","function":{"name":"get_country","arguments":""}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b51ijcpFkDiTQG1bQzsrmtW5","type":"function","function":{"name":"get_product_name","arguments":""}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(
        assemble(&chunks),
        vec![
            (
                "call_q2UyBRP7eXNTzAoR8lEhjc9Z".into(),
                "get_country".into(),
                "{}".into()
            ),
            (
                "call_b51ijcpFkDiTQG1bQzsrmtW5".into(),
                "get_product_name".into(),
                "{}".into()
            ),
        ]
    );
    assert_eq!(
        chunks.last(),
        Some(&TextChunk::Finish(FinishReason::ToolCalls))
    );
}

#[test]
fn pieces_without_index() {
    // The id repeated on every piece.
    let (chunks, _) = feed(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"id":"call_a","function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"id":"call_b","function":{"name":"g","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"id":"call_a","function":{"arguments":":1}"}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
    ]);
    assert_eq!(
        assemble(&chunks),
        vec![
            ("call_a".into(), "f".into(), "{\"x\":1}".into()),
            ("call_b".into(), "g".into(), "{}".into()),
        ]
    );
    // Neither index nor id: a new name starts a call, a repeated or missing one continues it.
    let (chunks, _) = feed(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":":1"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"g","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
    ]);
    let calls = assemble(&chunks);
    assert_eq!(
        calls
            .iter()
            .map(|(_, n, a)| (n.as_str(), a.as_str()))
            .collect::<Vec<_>>(),
        [("f", "{\"x\":1}"), ("g", "{}")]
    );
    assert_ne!(calls[0].0, calls[1].0);
    assert_eq!(
        chunks.last(),
        Some(&TextChunk::Finish(FinishReason::ToolCalls))
    );
}

#[test]
fn a_backend_numbering_every_call_zero() {
    let (chunks, _) = feed(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"f","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_b","function":{"name":"g","arguments":"{\"y\""}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":2}"}}]}}]}"#,
        "[DONE]",
    ]);
    assert_eq!(
        assemble(&chunks),
        vec![
            ("call_a".into(), "f".into(), "{}".into()),
            ("call_b".into(), "g".into(), "{\"y\":2}".into()),
        ]
    );
}

#[test]
fn tool_calls_as_an_object_with_object_arguments() {
    // TGI before 3.2 sent `delta.tool_calls` as one object; some backends send parsed arguments.
    let (chunks, _) = feed(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":{"index":0,"id":"","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ]);
    let calls = assemble(&chunks);
    assert_eq!(calls.len(), 1);
    assert!(generated(&calls[0].0), "{}", calls[0].0);
    assert_eq!(
        (calls[0].1.as_str(), calls[0].2.as_str()),
        ("get_weather", "{\"city\":\"Paris\"}")
    );
    assert_eq!(
        chunks.last(),
        Some(&TextChunk::Finish(FinishReason::ToolCalls))
    );
}

#[test]
fn arguments_before_the_name_wait_for_it() {
    let (chunks, _) = feed(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"arguments":"{\"x\""}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":":1}"}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::ToolCall {
                index: 0,
                id: Some("call_a".into()),
                name: Some("f".into()),
                arguments: "{\"x\":1}".into(),
            },
            TextChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn without_index_or_id_the_name_may_come_second() {
    let (chunks, _) = feed(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\"x\""}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":":1}"}}]}}]}"#,
        "[DONE]",
    ]);
    let calls = assemble(&chunks);
    assert_eq!(calls.len(), 1, "{chunks:?}");
    assert_eq!(
        (calls[0].1.as_str(), calls[0].2.as_str()),
        ("f", "{\"x\":1}")
    );
}

#[test]
fn a_call_that_never_names_its_function_is_a_decode_error() {
    for end in [
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ] {
        let (chunks, steps) = feed(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"","function":{"name":null,"arguments":"{\"function\": {\"_name\": \"f\"}}"}}]}}]}"#,
            end,
        ]);
        assert!(chunks.is_empty(), "{chunks:?}");
        let err = steps.into_iter().nth(1).unwrap().unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Decode);
        assert_eq!(err.provider(), PROVIDER);
    }
}

#[test]
fn a_streamed_call_without_arguments_takes_none() {
    let (chunks, _) = feed(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"now"}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::ToolCall {
                index: 0,
                id: Some("call_a".into()),
                name: Some("now".into()),
                arguments: String::new(),
            },
            TextChunk::ToolCall {
                index: 0,
                id: None,
                name: None,
                arguments: "{}".into(),
            },
            TextChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn text_then_a_call_and_other_answers_ignored() {
    let (chunks, _) = feed(&[
        r#"{"choices":[{"index":0,"delta":{"content":"Let me check."}},{"index":1,"delta":{"content":"other answer"}}]}"#,
        r#"{"choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"id":"call_x","function":{"name":"x","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("Let me check.".into()),
            TextChunk::ToolCall {
                index: 0,
                id: Some("call_a".into()),
                name: Some("f".into()),
                arguments: "{}".into(),
            },
            TextChunk::Finish(FinishReason::ToolCalls),
        ]
    );
}

/// Text chunks that repeat one shape: those of another answer (its shape read from the first
/// of them) are left out however often they repeat, and those of the first answer each give
/// their text (an empty one nothing), as a full read of each chunk gives.
#[test]
fn repeated_text_chunks_of_another_answer_are_left_out() {
    let text = |index: u32, text: &str| {
        format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","choices":[{{"index":{index},"delta":{{"content":"{text}"}},"finish_reason":null}}]}}"#
        )
    };
    let events = [
        text(1, "other"),
        text(1, "answer"),
        text(0, ""),
        text(0, "mine"),
        text(0, ", all"),
        text(1, "again"),
        text(0, " mine"),
    ];
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let (chunks, steps) = feed(&events);
    assert!(steps.iter().all(|s| matches!(s, Ok(SseStep::Continue))));
    assert_eq!(
        chunks,
        vec![
            TextChunk::Delta("mine".into()),
            TextChunk::Delta(", all".into()),
            TextChunk::Delta(" mine".into()),
        ]
    );
}

#[test]
fn recorded_groq_error_event_mid_stream() {
    // `event: error` after a 200 (pydantic-ai `test_groq/test_tool_use_failed_error_streaming.yaml`).
    let (_, steps) = feed(&[
        r#"{"error":{"message":"Tool call validation failed: tool call validation failed: parameters for tool get_something_by_name did not match schema: errors: [missing properties: 'name', additionalProperties 'invalid_param' not allowed]","type":"invalid_request_error","code":"tool_use_failed","failed_generation":"{\"name\": \"get_something_by_name\", \"arguments\": {\n  \"invalid_param\": \"value\"\n}}","status_code":400}}"#,
    ]);
    let err = steps.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 200 });
    assert!(
        err.message().starts_with("Tool call validation failed"),
        "{err}"
    );
}

// ---- stream chunks read by hand ----

/// Every `sse` event of the Hugging Face contract fixtures and of this crate's recorded ones.
fn recorded_stream_events() -> Vec<String> {
    recorded_files()
        .iter()
        .flat_map(gw_mock::fixture::sse_events)
        .collect()
}

/// The Hugging Face contract fixtures and this crate's recorded text answers.
fn recorded_files() -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    gw_mock::fixture::recorded_files([
        root.join("tests/fixtures/text"),
        root.join("../../tests/contract/hf"),
        root.join("../../tests/contract/hf-tools"),
    ])
}

/// Chunks of the shapes the hand reader is for, and the edges of those shapes.
const PLAIN_CHUNKS: &[&str] = &[
    r#"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1760000000,"model":"bench/chat","choices":[{"index":0,"delta":{"content":"Zq1 "},"finish_reason":null}]}"#,
    r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null,"system_fingerprint":null}"#,
    r#"{"choices":[{"index":0,"delta":{"content":"caf\u00e9 \ud83d\ude00 \"q\"\n","reasoning_content":null,"tool_calls":null}}]}"#,
    r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":null,"error":null}"#,
    r#"{"choices":[{"delta":{"content":null},"finish_reason":"eos_token"}]}"#,
    r#"{"choices":[{"index":null,"delta":null,"finish_reason":"length"}]}"#,
    r#"{"choices":[{"index":1,"delta":{"content":"other answer"}},{"index":0,"delta":{"content":"x"}}]}"#,
    r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"something_new"}]}"#,
    r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"content_filter"}]}"#,
    r#"{"choices":[]}"#,
    r#"{}"#,
    r#"{"choices":[],"usage":{"prompt_tokens":75,"completion_tokens":24,"total_tokens":99}}"#,
    r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":null,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":5}}}"#,
    r#"{"choices":[],"usage":{"prompt_tokens_details":null,"completion_tokens_details":{}}}"#,
];

/// What serde_json reads an event as, to compare with the hand reader (the wire types have no
/// `PartialEq`; their `Debug` shows every field).
fn by_serde(data: &str) -> Option<String> {
    serde_json::from_str::<wire::ChatCompletionChunk>(data)
        .ok()
        .map(|chunk| format!("{chunk:?}"))
}

fn by_hand(data: &str) -> Option<String> {
    wire::ChatCompletionChunk::scan(data).map(|(chunk, _)| format!("{chunk:?}"))
}

fn shape_of(data: &str) -> Option<wire::TextShape> {
    wire::ChatCompletionChunk::scan(data).and_then(|(_, shape)| shape)
}

/// `data` read by the shape of another chunk.
fn by_shape(shape: &wire::TextShape, data: &str) -> Option<String> {
    shape.chunk(data).map(|chunk| format!("{chunk:?}"))
}

#[test]
fn a_chunk_read_by_hand_is_what_serde_reads() {
    let recorded = recorded_stream_events();
    assert!(
        recorded.len() > 50,
        "only {} recorded events",
        recorded.len()
    );
    let texts = recorded
        .iter()
        .map(String::as_str)
        .chain(PLAIN_CHUNKS.iter().copied());
    // A chunk without `x_groq`, an error or tool calls is one the hand reader takes.
    let plain = reads_as_serde_reads(texts, by_hand, by_serde, |data| {
        serde_json::from_str::<wire::ChatCompletionChunk>(data).is_ok_and(|chunk| {
            let calls = chunk
                .choices
                .iter()
                .any(|c| c.delta.as_ref().is_some_and(|d| d.tool_calls.is_some()));
            chunk.x_groq.is_none() && chunk.error.is_none() && !calls
        })
    });
    assert!(plain > 40, "only {plain} plain chunks");
}

#[test]
fn what_the_hand_reader_leaves_to_serde() {
    for data in [
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1"}]}}]}"#,
        r#"{"choices":[],"x_groq":{"id":"req_1"}}"#,
        r#"{"error":{"message":"overloaded"}}"#,
        r#"{"choices":[],"choices":[]}"#,
        r#"{"choices":[],"usage":null,"usage":null}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":1.0}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":1}}}"#,
        r#"{"choices":[{"index":0,"index":0}]}"#,
        r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
        r#"{"choices":[{"index":4294967296}]}"#,
        r#"{"choices":[{"index":-1}]}"#,
        r#"{"choices":[{"index":0.0}]}"#,
        r#"{"choices":[{"finish_reason":7}]}"#,
        r#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
        r#"{"choices":null}"#,
        r#"{"ch\u006fices":[]}"#,
        r#"{"choices":[]} x"#,
        "[DONE]",
    ] {
        assert_eq!(by_hand(data), None, "{data}");
    }
}

/// Every cut, deletion and replacement of a byte of the plain chunks and of the recorded
/// events: read by hand, or by the shape of the unbroken chunk, only what serde reads, and the
/// same way.
#[test]
fn a_broken_chunk_is_left_to_serde_or_read_as_serde_reads_it() {
    let recorded = recorded_stream_events();
    for data in PLAIN_CHUNKS
        .iter()
        .copied()
        .chain(recorded.iter().map(String::as_str))
    {
        let shape = shape_of(data);
        for variant in broken_variants(data) {
            if let Some(ours) = by_hand(&variant) {
                assert_eq!(Some(ours), by_serde(&variant), "{variant}");
            }
            if let Some(ours) = shape.as_ref().and_then(|s| by_shape(s, &variant)) {
                assert_eq!(Some(ours), by_serde(&variant), "{variant}");
            }
        }
    }
}

/// A chunk read by the shape of any other is what serde reads.
#[test]
fn a_chunk_read_by_the_shape_of_another_is_what_serde_reads() {
    let recorded = recorded_stream_events();
    let events: Vec<&str> = recorded
        .iter()
        .map(String::as_str)
        .chain(PLAIN_CHUNKS.iter().copied())
        .collect();
    let mut read = 0;
    for (shape, own) in events
        .iter()
        .filter_map(|data| Some((shape_of(data)?, data)))
    {
        assert!(
            shape.chunk(own).is_some(),
            "not read by its own shape: {own}"
        );
        for data in &events {
            if let Some(ours) = by_shape(&shape, data) {
                read += 1;
                assert_eq!(Some(ours), by_serde(data), "{shape:?} {data}");
            }
        }
    }
    // Each by its own shape, and the recorded streams' text chunks by their neighbours'.
    assert!(read > 60, "only {read} read by shape");
}

#[test]
fn text_chunks_of_one_stream_are_read_by_the_shape_of_the_last() {
    let chunk = |text: &str| {
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1760000000,"model":"m","choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}],"usage":null}}"#,
            serde_json::to_string(text).unwrap()
        )
    };
    let shape = shape_of(&chunk("Hel")).expect("a text chunk has a shape");
    for text in ["lo", "", "caf\u{e9} \"q\"\n\u{1F600}", "\\"] {
        let data = chunk(text);
        let read = shape.chunk(&data).expect("the same shape");
        assert_eq!(format!("{read:?}"), by_serde(&data).unwrap());
    }
    // Anything else about the chunk differs: read in full.
    let finish = chunk("x").replace(r#""finish_reason":null"#, r#""finish_reason":"stop""#);
    let role = chunk("x").replace(r#"{"content""#, r#"{"role":"assistant","content""#);
    let other_id = chunk("x").replace("chatcmpl-1", "chatcmpl-2");
    let null_text = chunk("x").replace(r#""x""#, "null");
    for data in [finish, role, other_id, null_text] {
        assert!(shape.chunk(&data).is_none(), "{data}");
    }
    // No shape from a chunk that is not one text delta.
    for data in [
        r#"{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":1}}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":null}}]}"#,
        r#"{"choices":[]}"#,
    ] {
        assert_eq!(shape_of(data), None, "{data}");
    }
}

// ---- blocking answers read by hand ----

/// Every blocking answer (`choices` with a `message`) of the Hugging Face contract fixtures and
/// of this crate's recorded ones, as text.
fn recorded_answers() -> Vec<String> {
    let is_answer = |map: &serde_json::Map<String, Value>| {
        let choices = map.get("choices").and_then(Value::as_array);
        choices.is_some_and(|c| c.iter().any(|c| c.get("message").is_some()))
    };
    recorded_files()
        .iter()
        .flat_map(|file| gw_mock::fixture::objects_where(file, &is_answer))
        .map(Value::to_string)
        .collect()
}

const PLAIN_ANSWERS: &[&str] = &[
    r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1760000000,"model":"bench/chat","choices":[{"index":0,"message":{"role":"assistant","content":"caf\u00e9 \"q\""},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}"#,
    r#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":null,"reasoning_content":"hmm"},"finish_reason":"eos_token"},{"index":1,"message":null}],"usage":null,"id":null,"model":null}"#,
    r#"{"choices":[]}"#,
];

fn answer_by_serde(text: &str) -> Option<String> {
    serde_json::from_str::<wire::ChatCompletion>(text)
        .ok()
        .map(|answer| format!("{answer:?}"))
}

fn answer_by_hand(text: &str) -> Option<String> {
    wire::ChatCompletion::scan(text).map(|answer| format!("{answer:?}"))
}

#[test]
fn an_answer_read_by_hand_is_what_serde_reads() {
    let recorded = recorded_answers();
    assert!(
        recorded.len() > 20,
        "only {} recorded answers",
        recorded.len()
    );
    let texts = recorded
        .iter()
        .map(String::as_str)
        .chain(PLAIN_ANSWERS.iter().copied());
    // An answer whose messages are text, without log probabilities, is taken.
    let plain = reads_as_serde_reads(texts, answer_by_hand, answer_by_serde, |text| {
        serde_json::from_str::<wire::ChatCompletion>(text).is_ok_and(|answer| {
            answer.choices.iter().all(|c| {
                c.logprobs.is_none() && c.message.as_ref().is_none_or(|m| m.tool_calls.is_none())
            })
        })
    });
    assert!(plain > 10, "only {plain} plain answers");
    for text in [
        r#"{"choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"f"}}]}}]}"#,
        r#"{"choices":[{"message":{"content":"a"},"logprobs":{"content":[]}}]}"#,
        r#"{"choices":null}"#,
        r#"{"id":"a","id":"b","choices":[]}"#,
        r#"{"choices":[{"finish_reason":"stop","finish_reason":"stop"}]}"#,
    ] {
        assert_eq!(answer_by_hand(text), None, "{text}");
    }
}

/// Every cut, deletion and replacement of a byte of the plain answers and of the short
/// recorded ones: read by hand only what serde reads, and the same way.
#[test]
fn a_broken_answer_is_left_to_serde_or_read_as_serde_reads_it() {
    let recorded = recorded_answers();
    let short = recorded
        .iter()
        .map(String::as_str)
        .filter(|t| t.len() < 800);
    for text in PLAIN_ANSWERS.iter().copied().chain(short) {
        for variant in broken_variants(text) {
            if let Some(ours) = answer_by_hand(&variant) {
                assert_eq!(Some(ours), answer_by_serde(&variant), "{variant}");
            }
        }
    }
}
