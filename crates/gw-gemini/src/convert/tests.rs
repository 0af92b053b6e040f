//! Tests of `convert`.

use super::*;
use gateway_core::ErrorKind;
use gateway_core::sse::SseDecoder;
use serde_json::{Value, json};

fn request_json(req: &TextRequest) -> Value {
    serde_json::to_value(text_request(req).unwrap()).unwrap()
}

fn response(body: Value) -> TextResponse {
    text_response(serde_json::from_value(body).unwrap(), "requested-model").unwrap()
}

// ---- request shape ----

#[test]
fn plain_request() {
    let req = TextRequest::new("gemini-2.5-flash").user("Say hi");
    assert_eq!(
        request_json(&req),
        json!({"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]})
    );
}

#[test]
fn multi_turn_with_system_prompt() {
    let req = TextRequest::new("gemini-2.5-flash")
        .system("You are terse.")
        .user("Name a colour.")
        .assistant("Red.")
        .system("Answer in English.")
        .user("Another one.");
    assert_eq!(
        request_json(&req),
        json!({
            "systemInstruction": {"parts": [
                {"text": "You are terse."},
                {"text": "Answer in English."}
            ]},
            "contents": [
                {"role": "user", "parts": [{"text": "Name a colour."}]},
                {"role": "model", "parts": [{"text": "Red."}]},
                {"role": "user", "parts": [{"text": "Another one."}]}
            ]
        })
    );
}

#[test]
fn every_generation_option() {
    let mut req = TextRequest::new("gemini-2.5-flash")
        .user("hi")
        .temperature(0.25)
        .max_tokens(64)
        .stop("END")
        .stop("STOP");
    req.top_p = Some(0.5);
    req.seed = Some(42);
    req.presence_penalty = Some(0.125);
    req.frequency_penalty = Some(-0.5);
    assert_eq!(
        request_json(&req)["generationConfig"],
        json!({
            "temperature": 0.25,
            "topP": 0.5,
            "maxOutputTokens": 64,
            "stopSequences": ["END", "STOP"],
            "seed": 42,
            "presencePenalty": 0.125,
            "frequencyPenalty": -0.5
        })
    );
}

#[test]
fn one_option_alone_keeps_the_others_out() {
    let req = TextRequest::new("m").user("hi").max_tokens(8);
    assert_eq!(
        request_json(&req)["generationConfig"],
        json!({"maxOutputTokens": 8})
    );
    let plain = TextRequest::new("m")
        .user("hi")
        .response_format(ResponseFormat::Text);
    assert!(request_json(&plain).get("generationConfig").is_none());
}

#[test]
fn json_object() {
    let req = TextRequest::new("m")
        .user("Three colours as JSON.")
        .response_format(ResponseFormat::JsonObject);
    assert_eq!(
        request_json(&req),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Three colours as JSON."}]}],
            "generationConfig": {"responseMimeType": "application/json"}
        })
    );
}

#[test]
fn json_schema_is_passed_as_given() {
    let schema = json!({
        "type": "object",
        "properties": {"colours": {"type": "array", "items": {"type": "string"}}},
        "required": ["colours"],
        "additionalProperties": false
    });
    let req = TextRequest::new("m")
        .user("Three colours.")
        .max_tokens(100)
        .response_format(ResponseFormat::JsonSchema {
            name: "colours".into(),
            schema: schema.clone(),
            strict: Some(true),
        });
    assert_eq!(
        request_json(&req)["generationConfig"],
        json!({
            "maxOutputTokens": 100,
            "responseMimeType": "application/json",
            "responseJsonSchema": schema
        })
    );
}

#[test]
fn a_request_without_user_or_assistant_turns_is_refused() {
    for req in [
        TextRequest::new("m"),
        TextRequest::new("m").system("only a system prompt"),
    ] {
        let err = text_request(&req).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert_eq!(err.provider(), PROVIDER);
    }
}

#[test]
fn model_ids() {
    assert_eq!(model_path("gemini-2.5-flash").unwrap(), "gemini-2.5-flash");
    assert_eq!(
        model_path("models/gemma-3-27b-it").unwrap(),
        "gemma-3-27b-it"
    );
    for bad in [
        "",
        "models/",
        "a/b",
        "m:generateContent",
        "m?key=x",
        "m#x",
        "m x",
        "m%2F",
    ] {
        let err = model_path(bad).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest, "{bad:?}");
    }
}

// ---- response mapping ----

fn with_finish(reason: &str) -> Value {
    json!({"candidates": [{
        "content": {"role": "model", "parts": [{"text": "x"}]},
        "finishReason": reason
    }]})
}

#[test]
fn every_finish_reason() {
    use FinishReason::*;
    let table = [
        ("STOP", Stop),
        ("MAX_TOKENS", Length),
        ("SAFETY", ContentFilter),
        ("RECITATION", ContentFilter),
        ("BLOCKLIST", ContentFilter),
        ("PROHIBITED_CONTENT", ContentFilter),
        ("SPII", ContentFilter),
        ("IMAGE_SAFETY", ContentFilter),
        ("IMAGE_PROHIBITED_CONTENT", ContentFilter),
        ("IMAGE_RECITATION", ContentFilter),
        ("IMAGE_OTHER", ContentFilter),
        ("MALFORMED_FUNCTION_CALL", Stop),
        ("UNEXPECTED_TOOL_CALL", Stop),
        ("TOO_MANY_TOOL_CALLS", Stop),
        ("LANGUAGE", Stop),
        ("OTHER", Stop),
        ("NO_IMAGE", Stop),
        ("FINISH_REASON_UNSPECIFIED", Stop),
        ("SOMETHING_NEW_IN_2027", Stop),
    ];
    for (wire, expected) in table {
        assert_eq!(
            response(with_finish(wire)).finish_reason,
            expected,
            "{wire}"
        );
    }
}

#[test]
fn function_call_parts_mean_tool_calls() {
    let body = json!({"candidates": [{
        "content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
        ]},
        "finishReason": "STOP"
    }]});
    let r = response(body);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.content, "");
}

#[test]
fn full_answer_with_thinking_tokens() {
    // The shape of <https://ai.google.dev/api/generate-content#response-body>, with a thought
    // summary part added.
    let r = response(json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Let me list them.", "thought": true},
                {"text": "[\"red\", "},
                {"text": "\"yellow\", \"blue\"]", "thought": false}
            ]},
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
        }],
        "usageMetadata": {
            "promptTokenCount": 14,
            "candidatesTokenCount": 9,
            "thoughtsTokenCount": 120,
            "totalTokenCount": 143,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 14}]
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mXkAaPq1"
    }));
    assert_eq!(
        r,
        TextResponse {
            id: Some("mXkAaPq1".into()),
            model: "gemini-2.5-flash".into(),
            content: "[\"red\", \"yellow\", \"blue\"]".into(),
            finish_reason: FinishReason::Stop,
            usage: TokenUsage {
                input_tokens: 14,
                output_tokens: 129,
                reasoning_tokens: 120,
                cached_input_tokens: 0,
            },
        }
    );
    assert_eq!(r.usage.total_tokens(), 143);
}

#[test]
fn cached_and_tool_use_tokens() {
    let r = response(json!({
        "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 2000,
            "cachedContentTokenCount": 1500,
            "toolUsePromptTokenCount": 30,
            "candidatesTokenCount": 5,
            "totalTokenCount": 2035
        }
    }));
    assert_eq!(
        r.usage,
        TokenUsage {
            input_tokens: 2030,
            output_tokens: 5,
            reasoning_tokens: 0,
            cached_input_tokens: 1500,
        }
    );
    assert_eq!(r.usage.total_tokens(), 2035);
}

#[test]
fn missing_usage_ids_and_parts() {
    // MAX_TOKENS spent on thinking: a candidate without `content.parts`.
    let r = response(
        json!({"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]}),
    );
    assert_eq!(
        r,
        TextResponse {
            id: None,
            model: "requested-model".into(),
            content: String::new(),
            finish_reason: FinishReason::Length,
            usage: TokenUsage::default(),
        }
    );
    let r = response(json!({"candidates": [{"finishReason": "SAFETY"}]}));
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
}

#[test]
fn blocked_prompt_is_an_empty_content_filtered_answer() {
    let r = response(json!({
        "promptFeedback": {
            "blockReason": "PROHIBITED_CONTENT",
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}]
        },
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "blk"
    }));
    assert_eq!(
        r,
        TextResponse {
            id: Some("blk".into()),
            model: "gemini-2.5-flash".into(),
            content: String::new(),
            finish_reason: FinishReason::ContentFilter,
            usage: TokenUsage {
                input_tokens: 7,
                ..TokenUsage::default()
            },
        }
    );
    // An unknown (e.g. Vertex-only) block reason still blocks.
    let r = response(json!({"candidates": [], "promptFeedback": {"blockReason": "JAILBREAK"}}));
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
}

#[test]
fn no_candidate_and_no_block_reason_is_a_decode_error() {
    let resp = serde_json::from_value(json!({"usageMetadata": {"promptTokenCount": 3}})).unwrap();
    let err = text_response(resp, "m").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode);
    assert_eq!(err.provider(), PROVIDER);
}

// ---- stream decoder ----

/// Feeds `input` to the SSE parser in pieces of `step` bytes and the events to a decoder,
/// then ends the stream.
fn decode(input: &str, step: usize) -> Vec<Result<TextChunk>> {
    let mut sse = SseDecoder::new();
    let mut decoder = StreamDecoder::new();
    let mut items = Vec::new();
    for piece in input.as_bytes().chunks(step) {
        sse.push(piece).unwrap();
        while let Some(event) = sse.next_event() {
            let mut out = Vec::new();
            let result = decoder.on_event(event, &mut out);
            items.extend(out.into_iter().map(Ok));
            match result {
                Ok(SseStep::Continue) => {}
                Ok(SseStep::Done) => return items,
                Err(e) => {
                    items.push(Err(e));
                    return items;
                }
            }
        }
    }
    let mut out = Vec::new();
    let result = decoder.on_eof(&mut out);
    items.extend(out.into_iter().map(Ok));
    if let Err(e) = result {
        items.push(Err(e));
    }
    items
}

/// A stream as <https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>
/// shows it, with a thought event in between.
const STREAM: &str = concat!(
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Red, \"}]},\"index\":0}],",
    "\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc\"}\r\n\r\n",
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"thinking…\",\"thought\":true}]},\"index\":0}]}\r\n\r\n",
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"yellow and blue.\"}]},\"finishReason\":\"STOP\",\"index\":0}],",
    "\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":6,\"thoughtsTokenCount\":40,\"totalTokenCount\":54},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc\"}\r\n\r\n",
);

fn ok(items: Vec<Result<TextChunk>>) -> Vec<TextChunk> {
    items.into_iter().map(|i| i.unwrap()).collect()
}

#[test]
fn a_complete_stream_in_any_piece_size() {
    let expected = vec![
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
    ];
    for step in [1, 2, 7, 64, STREAM.len()] {
        assert_eq!(ok(decode(STREAM, step)), expected, "pieces of {step}");
    }
}

#[test]
fn a_stream_cut_before_the_finish_reason_is_interrupted() {
    let cut = STREAM.rfind("data: ").unwrap();
    // Cut at the start of the last event, and in the middle of it.
    for end in [cut, cut + 40] {
        let mut items = decode(&STREAM[..end], 16);
        let last = items.pop().unwrap();
        assert_eq!(
            ok(items),
            vec![
                TextChunk::Delta("Red, ".into()),
                TextChunk::Usage(TokenUsage {
                    input_tokens: 8,
                    ..TokenUsage::default()
                }),
            ]
        );
        let err = last.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::StreamInterrupted);
        assert_eq!(err.provider(), PROVIDER);
    }
    // Nothing at all is interrupted too.
    let items = decode("", 1);
    assert_eq!(
        items[0].as_ref().unwrap_err().kind(),
        &ErrorKind::StreamInterrupted
    );
}

#[test]
fn stream_finish_reasons_function_calls_and_blocks() {
    let s = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"partial\"}]},\"finishReason\":\"MAX_TOKENS\"}]}\n\n";
    assert_eq!(
        ok(decode(s, 5)),
        vec![
            TextChunk::Delta("partial".into()),
            TextChunk::Finish(FinishReason::Length)
        ]
    );

    let s = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]}}]}\n\n",
        "data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n",
    );
    assert_eq!(
        ok(decode(s, 9)),
        vec![TextChunk::Finish(FinishReason::ToolCalls)]
    );

    let s = "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":4}}\n\n";
    assert_eq!(
        ok(decode(s, 3)),
        vec![
            TextChunk::Usage(TokenUsage {
                input_tokens: 4,
                ..TokenUsage::default()
            }),
            TextChunk::Finish(FinishReason::ContentFilter),
        ]
    );
}

#[test]
fn only_the_first_finish_is_reported_and_later_usage_still_flows() {
    let s = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"STOP\"}]}\n\n",
        "data: {\"candidates\":[{\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":1}}\n\n",
    );
    assert_eq!(
        ok(decode(s, 1000)),
        vec![
            TextChunk::Delta("a".into()),
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
fn an_error_event_is_classified() {
    let s = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}]}\n\n",
        "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n",
    );
    let items = decode(s, 11);
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), &TextChunk::Delta("Hel".into()));
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
    assert_eq!(err.message(), "The model is overloaded.");
    assert_eq!(err.provider(), PROVIDER);

    let s = "data: {\"error\":{\"code\":429,\"message\":\"slow\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"2s\"}]}}\n\n";
    let items = decode(s, 64);
    assert_eq!(
        items[0].as_ref().unwrap_err().kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(2))
        }
    );
}

#[test]
fn a_non_json_event_is_a_decode_error() {
    let items = decode("data: not json\n\n", 4);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind(), &ErrorKind::Decode);
}

// ---- content parts ----

#[test]
fn images_and_audio_go_inline() {
    let req = TextRequest::new("gemini-2.5-flash").message(gateway_core::Message::with_parts(
        Role::User,
        vec![
            Part::text("What is in this picture and this clip?"),
            Part::image_url("data:image/png;base64,iVBORw0K"),
            Part::Audio {
                data: "UklGRg==".into(),
                format: "WAV".into(),
            },
        ],
    ));
    assert_eq!(
        request_json(&req),
        json!({"contents": [{"role": "user", "parts": [
            {"text": "What is in this picture and this clip?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}
        ]}]})
    );
}

#[test]
fn parts_gemini_cannot_take_are_named() {
    let with = |part: Part| {
        TextRequest::new("gemini-2.5-flash").user("first").message(
            gateway_core::Message::with_parts(Role::User, vec![Part::text("x"), part]),
        )
    };
    let link = text_request(&with(Part::image_url("https://example.com/cat.png"))).unwrap_err();
    assert_eq!(link.kind(), &ErrorKind::InvalidRequest);
    assert_eq!(link.param(), Some("messages[1].content[1]"));
    let bad = text_request(&with(Part::image_url("data:image/png;base64,%%%"))).unwrap_err();
    assert_eq!(bad.param(), Some("messages[1].content[1]"));
    let format = text_request(&with(Part::Audio {
        data: "UklGRg==".into(),
        format: "midi".into(),
    }))
    .unwrap_err();
    assert_eq!(
        format.param(),
        Some("messages[1].content[1].input_audio.format")
    );
}

// ---- embeddings ----

/// A recorded answer of `tests/fixtures/<name>`: its JSON body.
fn recorded(name: &str) -> Value {
    gw_mock::fixture::Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
        .json
        .unwrap_or_default()
}

#[test]
fn embed_request_shape() {
    let req = EmbeddingRequest::new("gemini-embedding-001")
        .input("doc one")
        .input("doc two")
        .dimensions(768)
        .option("taskType", "RETRIEVAL_DOCUMENT")
        .option("title", "Docs");
    let one = json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "doc one"}]},
        "taskType": "RETRIEVAL_DOCUMENT", "title": "Docs", "outputDimensionality": 768});
    let mut two = one.clone();
    two["content"]["parts"][0]["text"] = json!("doc two");
    assert_eq!(
        serde_json::to_value(embed_request(&req).unwrap()).unwrap(),
        json!({"requests": [one, two]})
    );
    // Only what Gemini takes, by name.
    let err = embed_request(
        &EmbeddingRequest::new("m")
            .input("x")
            .option("normalize", true),
    )
    .unwrap_err();
    assert_eq!(err.param(), Some("options.normalize"));
    let err =
        embed_request(&EmbeddingRequest::new("m").input("x").option("taskType", 3)).unwrap_err();
    assert_eq!(err.param(), Some("options.taskType"));
    let err = embed_request(&EmbeddingRequest::new("a/b").input("x")).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
}

#[test]
fn recorded_embeddings_map_with_and_without_usage() {
    let two: wire::BatchEmbedContentsResponse =
        serde_json::from_value(recorded("embed/batch_two.json")).unwrap();
    let r = embed_response(two, 2, "gemini-embedding-001").unwrap();
    assert_eq!(r.embeddings.len(), 2);
    assert_eq!(r.embeddings[1][0], -0.007903418);
    assert_eq!(
        r.usage,
        TokenUsage::default(),
        "no usageMetadata: none reported"
    );
    let one: wire::BatchEmbedContentsResponse =
        serde_json::from_value(recorded("embed/batch_usage.json")).unwrap();
    let r = embed_response(one, 1, "gemini-embedding-2-preview").unwrap();
    assert_eq!(r.usage.input_tokens, 1);
    let one: wire::BatchEmbedContentsResponse =
        serde_json::from_value(recorded("embed/batch_usage.json")).unwrap();
    let err = embed_response(one, 2, "m").unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Decode,
        "a vector missing is a broken answer"
    );
}
