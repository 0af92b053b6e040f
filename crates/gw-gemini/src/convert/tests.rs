//! Tests of `convert`.

use super::*;
use gateway_core::ErrorKind;
use gateway_core::sse::SseDecoder;
use serde_json::{Value, json};

/// `req` converted, nothing left to download.
fn convert(req: &TextRequest) -> Result<wire::GenerateContentRequest> {
    text_request(req, Downloads::Done(&Fetched::new()))
}

/// The request's JSON; every test of a request's shape also holds the body written by hand
/// (what is sent) to the bytes its `Serialize` writes.
fn request_json(req: &TextRequest) -> Value {
    let wire = convert(req).unwrap();
    let by_hand = String::from_utf8(wire.to_json().unwrap()).unwrap();
    assert_eq!(by_hand, serde_json::to_string(&wire).unwrap());
    serde_json::to_value(wire).unwrap()
}

/// The error converting `req` fails with.
fn refused(req: &TextRequest) -> Error {
    convert(req).unwrap_err()
}

/// Asserts `err` is of `kind`, from Gemini, naming `param`.
#[track_caller]
fn assert_refused(err: &Error, kind: ErrorKind, param: &str) {
    assert_eq!(err.kind(), &kind, "{err}");
    assert_eq!(err.provider(), PROVIDER, "{err}");
    assert_eq!(err.param(), Some(param), "{err}");
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
        let err = refused(&req);
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
        with_id(
            Some("mXkAaPq1".into()),
            TextResponse::new(
                "gemini-2.5-flash",
                "[\"red\", \"yellow\", \"blue\"]",
                FinishReason::Stop,
                TokenUsage {
                    input_tokens: 14,
                    output_tokens: 129,
                    reasoning_tokens: 120,
                    cached_input_tokens: 0,
                }
            ),
        )
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
        with_id(
            None,
            TextResponse::new(
                "requested-model",
                "",
                FinishReason::Length,
                TokenUsage::default()
            ),
        )
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
        with_id(
            Some("blk".into()),
            TextResponse::new(
                "gemini-2.5-flash",
                "",
                FinishReason::ContentFilter,
                TokenUsage {
                    input_tokens: 7,
                    ..TokenUsage::default()
                }
            ),
        )
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
            let result = decoder.on_event(event.as_event_ref(), &mut out);
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
    let chunks = ok(decode(s, 9));
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    assert!(
        matches!(&chunks[0], TextChunk::ToolCall { index: 0, name: Some(name), arguments, .. }
            if name == "f" && arguments == "{}"),
        "{chunks:?}"
    );
    assert_eq!(chunks[1], TextChunk::Finish(FinishReason::ToolCalls));

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
    let link = refused(&with(Part::image_url("ftp://example.com/cat.png")));
    assert_refused(&link, ErrorKind::InvalidRequest, "messages[1].content[1]");
    let bad = refused(&with(Part::image_url("data:image/png;base64,%%%")));
    assert_eq!(bad.param(), Some("messages[1].content[1]"));
    let format = refused(&with(Part::Audio {
        data: "UklGRg==".into(),
        format: "midi".into(),
    }));
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

/// `answer` with the response id `id`.
fn with_id(id: Option<String>, mut answer: TextResponse) -> TextResponse {
    answer.id = id;
    answer
}

// ---- tools: declarations and tool_choice ----

use gateway_core::{ReasoningEffort, Tool, ToolCall, ToolChoice};

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        json!({
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
            "additionalProperties": false
        }),
    )
    .description("Current weather of a city.")
}

fn with_tools(tools: Vec<Tool>) -> TextRequest {
    let mut req = TextRequest::new("gemini-2.5-flash").user("Weather in Paris?");
    req.tools = tools;
    req
}

#[test]
fn tools_become_one_tool_of_function_declarations() {
    let mut bare = Tool::function("now", json!({}));
    bare.parameters = None;
    let body = request_json(&with_tools(vec![weather_tool(), bare]));
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {
                "name": "get_weather",
                "description": "Current weather of a city.",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "description": "The city."}},
                    "required": ["city"],
                    "additionalProperties": false
                }
            },
            {"name": "now"}
        ]}])
    );
    // No tool_choice: Gemini's default (AUTO), so no toolConfig.
    assert!(body.get("toolConfig").is_none(), "{body}");
    // No tools: no `tools` key at all.
    assert!(request_json(&with_tools(Vec::new())).get("tools").is_none());
}

#[test]
fn every_tool_choice() {
    let config = |choice: Option<ToolChoice>, strict: bool| {
        let mut tool = weather_tool();
        tool.strict = strict.then_some(true);
        let mut req = with_tools(vec![
            tool,
            Tool::function("other", json!({"type": "object"})),
        ]);
        req.tool_choice = choice;
        request_json(&req).get("toolConfig").cloned()
    };
    let mode = |m: &str| Some(json!({"functionCallingConfig": {"mode": m}}));
    assert_eq!(config(Some(ToolChoice::Auto), false), mode("AUTO"));
    assert_eq!(config(Some(ToolChoice::None), false), mode("NONE"));
    assert_eq!(config(Some(ToolChoice::Required), false), mode("ANY"));
    assert_eq!(
        config(Some(ToolChoice::Function("other".into())), false),
        Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["other"]}}))
    );
    // `strict`: calls constrained to the schemas.
    assert_eq!(config(None, true), mode("VALIDATED"));
    assert_eq!(config(Some(ToolChoice::Auto), true), mode("VALIDATED"));
    assert_eq!(config(Some(ToolChoice::Required), true), mode("ANY"));
    assert_eq!(config(Some(ToolChoice::None), true), mode("NONE"));
}

#[test]
fn tool_choice_errors_name_tool_choice() {
    let mut req = with_tools(vec![weather_tool()]);
    req.tool_choice = Some(ToolChoice::Function("get_time".into()));
    assert_refused(&refused(&req), ErrorKind::InvalidRequest, "tool_choice");

    for choice in [ToolChoice::Required, ToolChoice::Function("x".into())] {
        let mut req = with_tools(Vec::new());
        req.tool_choice = Some(choice);
        assert_refused(&refused(&req), ErrorKind::InvalidRequest, "tool_choice");
    }
    // Without tools, `auto` and `none` ask nothing: no toolConfig (Gemini refuses one then).
    for choice in [ToolChoice::Auto, ToolChoice::None] {
        let mut req = with_tools(Vec::new());
        req.tool_choice = Some(choice);
        assert!(request_json(&req).get("toolConfig").is_none());
    }
}

#[test]
fn parallel_tool_calls_false_is_refused_when_calls_can_come() {
    let mut req = with_tools(vec![weather_tool()]);
    req.parallel_tool_calls = Some(false);
    assert_refused(
        &refused(&req),
        ErrorKind::Unsupported,
        "parallel_tool_calls",
    );
    req.tool_choice = Some(ToolChoice::Function("get_weather".into()));
    assert_refused(
        &refused(&req),
        ErrorKind::Unsupported,
        "parallel_tool_calls",
    );
    // No call can come: nothing to refuse.
    req.tool_choice = Some(ToolChoice::None);
    assert!(convert(&req).is_ok());
    let mut no_tools = with_tools(Vec::new());
    no_tools.parallel_tool_calls = Some(false);
    assert!(convert(&no_tools).is_ok());
    // `true` is what Gemini does anyway.
    let mut req = with_tools(vec![weather_tool()]);
    req.parallel_tool_calls = Some(true);
    assert!(convert(&req).is_ok());
}

#[test]
fn function_names_follow_geminis_rule() {
    for bad in ["", "1st", "-x", "has space", "ünï", &"x".repeat(129)] {
        let req = with_tools(vec![Tool::function(bad, json!({"type": "object"}))]);
        assert_refused(
            &refused(&req),
            ErrorKind::InvalidRequest,
            "tools[0].function.name",
        );
    }
    for good in ["_x", "a.b:c-d_1", &"x".repeat(128)] {
        let req = with_tools(vec![Tool::function(good, json!({"type": "object"}))]);
        assert!(convert(&req).is_ok(), "{good}");
    }
    let twice = with_tools(vec![weather_tool(), weather_tool()]);
    assert_refused(
        &refused(&twice),
        ErrorKind::InvalidRequest,
        "tools[1].function.name",
    );
}

#[test]
fn parameters_must_describe_an_object() {
    let req = with_tools(vec![
        weather_tool(),
        Tool::function("f", json!({"type": "string"})),
    ]);
    assert_refused(
        &refused(&req),
        ErrorKind::InvalidRequest,
        "tools[1].function.parameters.type",
    );
}

// ---- JSON Schema conversion ----

/// `schema` as the parameters of tool 0 (`strict` as given), converted.
fn converted_as(schema: Value, strict: bool) -> Result<Value> {
    let mut tool = Tool::function("f", schema);
    tool.strict = Some(strict);
    let req = with_tools(vec![tool]);
    convert(&req).map(|body| {
        serde_json::to_value(&body.tools[0].function_declarations[0].parameters_json_schema)
            .unwrap()
    })
}

fn converted(schema: Value) -> Result<Value> {
    converted_as(schema, false)
}

#[track_caller]
fn assert_schema_refused(schema: Value, param: &str) {
    let err = converted(schema).unwrap_err();
    assert_refused(&err, ErrorKind::InvalidRequest, param);
}

#[track_caller]
fn assert_strict_schema_refused(schema: Value, param: &str) {
    let err = converted_as(schema, true).unwrap_err();
    assert_refused(&err, ErrorKind::InvalidRequest, param);
}

#[test]
fn supported_keywords_and_annotations_pass_as_they_are() {
    let schema = json!({
        "type": "object",
        "title": "Args",
        "description": "d",
        "properties": {
            "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 9, "default": 3},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]},
                     "minItems": 1, "maxItems": 3},
            "pair": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]},
            "when": {"type": "string", "format": "date-time", "examples": ["2026-01-01T00:00:00Z"]},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer", "enum": [1, 2.5]}]},
            "map": {"type": "object", "additionalProperties": {"type": "integer"}},
            "x-vendor": {"x-note": "unknown keywords carry no validation"}
        },
        "required": ["n"],
        "propertyOrdering": ["n", "tags"],
        "additionalProperties": false
    });
    assert_eq!(converted(schema.clone()).unwrap(), schema);
}

#[test]
fn refs_are_inlined_and_defs_dropped() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:args",
        "$comment": "made by pydantic",
        "type": "object",
        "$defs": {
            "City": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "Unit": {"type": "string", "enum": ["C", "F"]}
        },
        "definitions": {"Old": {"type": "integer"}},
        "properties": {
            "city": {"$ref": "#/$defs/City", "description": "Where."},
            "unit": {"$ref": "#/$defs/Unit"},
            "days": {"$ref": "#/definitions/Old"},
            "cities": {"type": "array", "items": {"$ref": "#/$defs/City"}}
        }
    });
    let city =
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
    let mut described = city.clone();
    described["description"] = json!("Where.");
    assert_eq!(
        converted(schema).unwrap(),
        json!({
            "type": "object",
            "properties": {
                "city": described,
                "unit": {"type": "string", "enum": ["C", "F"]},
                "days": {"type": "integer"},
                "cities": {"type": "array", "items": city}
            }
        })
    );
}

#[test]
fn recursive_remote_and_dangling_refs_are_refused() {
    let tree = json!({
        "type": "object",
        "$defs": {"Node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
        }}},
        "properties": {"root": {"$ref": "#/$defs/Node"}}
    });
    assert_schema_refused(
        tree,
        "tools[0].function.parameters.$defs.Node.properties.children.items.$ref",
    );
    assert_schema_refused(
        json!({"type": "object", "properties": {"me": {"$ref": "#"}}}),
        "tools[0].function.parameters.properties.me.$ref",
    );
    assert_schema_refused(
        json!({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}),
        "tools[0].function.parameters.properties.x.$ref",
    );
    assert_schema_refused(
        json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}),
        "tools[0].function.parameters.properties.x.$ref",
    );
    // An error inside a definition names the definition, where the client wrote it.
    assert_strict_schema_refused(
        json!({
            "type": "object",
            "$defs": {"Code": {"type": "string", "pattern": "^[A-Z]+$"}},
            "properties": {"code": {"$ref": "#/$defs/Code"}}
        }),
        "tools[0].function.parameters.$defs.Code.pattern",
    );
}

#[test]
fn exact_rewrites() {
    // const -> a one-value enum; nullable -> "null" in type; a tuple `items` -> prefixItems;
    // a one-element oneOf -> anyOf; `true` -> {}.
    let schema = json!({
        "type": "object",
        "properties": {
            "kind": {"const": "circle"},
            "version": {"type": "integer", "const": 2, "enum": [1, 2]},
            "note": {"type": "string", "nullable": true},
            "also": {"type": ["string", "null"], "nullable": true},
            "loose": {"nullable": false},
            "point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]},
            "only": {"oneOf": [{"type": "string"}]},
            "any": true
        }
    });
    assert_eq!(
        converted(schema).unwrap(),
        json!({
            "type": "object",
            "properties": {
                "kind": {"enum": ["circle"]},
                "version": {"type": "integer", "enum": [2]},
                "note": {"type": ["string", "null"]},
                "also": {"type": ["string", "null"]},
                "loose": {},
                "point": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]},
                "only": {"anyOf": [{"type": "string"}]},
                "any": {}
            }
        })
    );
}

#[test]
fn all_of_is_merged_when_exact() {
    let schema = json!({
        "type": "object",
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
        "properties": {
            "item": {
                "description": "An item.",
                "allOf": [
                    {"$ref": "#/$defs/Base"},
                    {"properties": {"size": {"type": "integer"}}, "required": ["size"]}
                ]
            }
        }
    });
    assert_eq!(
        converted(schema).unwrap()["properties"]["item"],
        json!({
            "description": "An item.",
            "type": "object",
            "properties": {"id": {"type": "string"}, "size": {"type": "integer"}},
            "required": ["id", "size"]
        })
    );
    // The same keyword with two values: "both" cannot be written as one.
    assert_schema_refused(
        json!({"type": "object", "properties": {"n": {"allOf": [{"maximum": 5}, {"maximum": 3}]}}}),
        "tools[0].function.parameters.properties.n.allOf[1]",
    );
    // `additionalProperties` reads its own schema's properties: joining them would change it.
    assert_schema_refused(
        json!({"type": "object", "properties": {"o": {"allOf": [
            {"properties": {"a": {}}, "additionalProperties": false},
            {"properties": {"b": {}}}
        ]}}}),
        "tools[0].function.parameters.properties.o.allOf[1]",
    );
}

#[test]
fn keywords_gemini_has_no_form_for_are_refused_by_path() {
    let p = "tools[0].function.parameters";
    for (schema, param) in [
        (
            json!({"type": "object", "not": {"required": ["x"]}}),
            format!("{p}.not"),
        ),
        (
            json!({"type": "object", "patternProperties": {"^x": {}}}),
            format!("{p}.patternProperties"),
        ),
        (
            json!({"type": "object", "properties": {"f": {"if": {"type": "string"}, "then": {}}}}),
            format!("{p}.properties.f.if"),
        ),
        (
            json!({"type": "object", "properties": {"f": {"const": true}}}),
            format!("{p}.properties.f.const"),
        ),
        (
            json!({"type": "object", "properties": {"f": {"enum": ["a", null]}}}),
            format!("{p}.properties.f.enum"),
        ),
        (
            json!({"type": "object", "properties": {"never": false}}),
            format!("{p}.properties.never"),
        ),
    ] {
        assert_schema_refused(schema.clone(), &param);
        assert_strict_schema_refused(schema, &param);
    }
}

#[test]
fn constraints_gemini_does_not_enforce_are_described_or_refused_under_strict() {
    let p = "tools[0].function.parameters";
    let cases = [
        (
            json!({"type": "object", "properties": {"when": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}),
            format!("{p}.properties.when.oneOf"),
        ),
        (
            json!({"type": "object", "properties": {"code": {"type": "string", "pattern": "^a"}}}),
            format!("{p}.properties.code.pattern"),
        ),
        (
            json!({"type": "object", "properties": {"s": {"type": "string", "minLength": 2}}}),
            format!("{p}.properties.s.minLength"),
        ),
        (
            json!({"type": "object", "properties": {"n": {"type": "number", "exclusiveMinimum": 0}}}),
            format!("{p}.properties.n.exclusiveMinimum"),
        ),
        (
            json!({"type": "object", "properties": {"l": {"type": "array", "uniqueItems": true}}}),
            format!("{p}.properties.l.uniqueItems"),
        ),
        (
            json!({"type": "object", "properties": {"l": {"anyOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]}}}),
            format!("{p}.properties.l.anyOf[1].maxLength"),
        ),
    ];
    for (schema, param) in cases {
        assert_strict_schema_refused(schema.clone(), &param);
        assert!(converted(schema).is_ok(), "{param}: described, not refused");
    }
    // Without `strict`, the model still sees each constraint, in the description.
    let schema = converted(json!({
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "An airport", "pattern": "^[A-Z]{3}$",
                     "minLength": 3},
            "when": {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        }
    }))
    .unwrap();
    assert_eq!(
        schema["properties"]["code"],
        json!({"type": "string", "description": "An airport (minLength: 3; pattern: ^[A-Z]{3}$)"})
    );
    assert_eq!(
        schema["properties"]["when"],
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}],
               "description": "exactly one of the `anyOf` schemas"})
    );
}

#[test]
fn response_format_schemas_get_the_same_conversion() {
    let req = |schema: Value| {
        TextRequest::new("gemini-2.5-flash")
            .user("x")
            .response_format(ResponseFormat::JsonSchema {
                name: "s".into(),
                schema,
                strict: Some(true),
            })
    };
    let body = request_json(&req(json!({
        "type": "object",
        "$defs": {"C": {"type": "string"}},
        "properties": {"c": {"$ref": "#/$defs/C"}}
    })));
    assert_eq!(
        body["generationConfig"]["responseJsonSchema"],
        json!({"type": "object", "properties": {"c": {"type": "string"}}})
    );
    assert_refused(
        &refused(&req(
            json!({"type": "object", "properties": {"x": {"type": "string", "pattern": "a"}}}),
        )),
        ErrorKind::InvalidRequest,
        "response_format.json_schema.schema.properties.x.pattern",
    );
}

// ---- assistant tool calls and tool results ----

/// The gemini-3.6-flash call recorded in `tests/fixtures/text/function_call.json`.
const RECORDED_SIGNATURE: &str = "EokDCoYDARFNMg9h3lbf41evBvgXSc+mA6rcvwE6wKagBZ8A7KiXtNjqM27JbAu0xd1/MdlOLvpjKqgBQDFO5/Nze4NGPbbKC1KZsyC9OboOgNS+hCwsF9evj0zAGZWcXo+Rnun+zGqlEmlQ0qRubKBW/nHo8oJrNffABfgWuXOW7MejbfpXuJTxD6YcLtwfXZQt1reYLz+UoKYt0rbJY7/73jqOWlWIvthrRZ3bLjw9lftXUPPM/zgKemZaXt0HnSIvalNhm2NgF4XtuJxJaFwgwjGngF+Y/K4bOc70WLWMhvFgZpgn4D8H1Vv7M11aPxt5iBH/SqUBdRW3l1bCWXbfGUx0xMxYUzoMgQzbZBZpMkNb4icsiPSAiwl0XSZB37WP9j6qywu01zc7BXSbidAD5PRfAPrwF42GndG9qZt/DAN5fs6czdMPbRvu1dwJQB04KA2VO6sZXOwfA+6nb1dHuabTMu5fhOheRpj74DXF5B4EnVSHdA3rYXwhXS9H0REvSJfPYxs7ya7f";

fn recorded_answer(name: &str) -> TextResponse {
    text_response(
        serde_json::from_value(recorded(name)).unwrap(),
        "gemini-3.6-flash",
    )
    .unwrap()
}

#[test]
fn a_recorded_function_call_becomes_a_tool_call_carrying_its_signature() {
    let r = recorded_answer("text/function_call.json");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.content, "");
    assert_eq!(r.id.as_deref(), Some("ABVxau7zBMjjz7IP7Z_oOA"));
    assert_eq!(
        r.usage,
        TokenUsage {
            input_tokens: 156,
            output_tokens: 118,
            reasoning_tokens: 101,
            cached_input_tokens: 0,
        }
    );
    assert_eq!(r.tool_calls.len(), 1);
    let call = &r.tool_calls[0];
    assert_eq!(call.name, "load_capability");
    assert_eq!(call.arguments, r#"{"id":"refunds"}"#);
    // Gemini's own id, then the signature, URL-safe: a plain token.
    let (id, carried) = call.id.split_once("__thought__").unwrap();
    assert_eq!(id, "orHZBIN2");
    assert!(
        carried
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{carried}"
    );
    // And back: exactly the signature Gemini sent.
    assert_eq!(
        split_tool_call_id(&call.id, "x").unwrap(),
        ("orHZBIN2", Some(RECORDED_SIGNATURE.to_owned()))
    );
    // A padded one comes back padded.
    let padded = recorded_answer("text/function_call_padded.json");
    let signature = recorded("text/function_call_padded.json")["candidates"][0]["content"]["parts"]
        [0]["thoughtSignature"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(signature.ends_with('='));
    assert_eq!(
        split_tool_call_id(&padded.tool_calls[0].id, "x").unwrap().1,
        Some(signature)
    );
    // The final answer's text part carries a signature too; it has nowhere to go and is dropped.
    let answer = recorded_answer("text/function_call_answer.json");
    assert_eq!(answer.content, "A-4417: refund allowed");
    assert!(answer.tool_calls.is_empty());
    assert_eq!(answer.finish_reason, FinishReason::Stop);
}

#[test]
fn parallel_calls_keep_their_order_and_get_unique_ids() {
    // The shape recorded from gemini-3-flash-preview: only the first call is signed.
    let r = response(json!({"candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "Looking up three topics."},
            {"functionCall": {"args": {}, "name": "generate_topic"}, "thoughtSignature": "Es8FCswF"},
            {"functionCall": {"args": {"n": 2}, "name": "generate_topic"}},
            {"functionCall": {"name": "other"}}
        ]},
        "finishMessage": "Model generated function call(s).",
        "finishReason": "STOP",
        "index": 0
    }]}));
    assert_eq!(r.content, "Looking up three topics.");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let names: Vec<_> = r.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["generate_topic", "generate_topic", "other"]);
    let args: Vec<_> = r.tool_calls.iter().map(|c| c.arguments.as_str()).collect();
    assert_eq!(args, ["{}", r#"{"n":2}"#, "{}"]);
    assert!(r.tool_calls[0].id.contains("__thought__Es8FCswF"));
    for call in &r.tool_calls[1..] {
        assert!(
            call.id.starts_with("call_") && call.id.len() == 29,
            "{}",
            call.id
        );
        assert!(!call.id.contains("__thought__"));
    }
    assert_ne!(r.tool_calls[1].id, r.tool_calls[2].id);
    // A token limit hit while calling is still a token limit.
    let r = response(json!({"candidates": [{
        "content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]},
        "finishReason": "MAX_TOKENS"
    }]}));
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.tool_calls.len(), 1);
}

/// A conversation: the user, the assistant's `calls`, then one tool message per result.
fn round_trip(model: &str, calls: Vec<ToolCall>, results: &[(&str, &str)]) -> TextRequest {
    let mut req = TextRequest::new(model)
        .user("What is the weather in Paris and Rome?")
        .message(gateway_core::Message::assistant_calls("Checking.", calls));
    for (id, content) in results {
        req = req.message(gateway_core::Message::tool_result(*id, *content));
    }
    req
}

#[test]
fn tool_calls_and_results_round_trip_with_the_signature_restored() {
    let signed = tool_call_id(Some("orHZBIN2"), Some(RECORDED_SIGNATURE));
    let req = round_trip(
        "gemini-3.6-flash",
        vec![
            ToolCall::new(signed.clone(), "get_weather", r#"{"city":"Paris"}"#),
            ToolCall::new("call_2", "get_weather", r#"{"city":"Rome"}"#),
        ],
        &[(&signed, r#"{"temp_c": 21}"#), ("call_2", "sunny, 25 C")],
    )
    .user("Thanks!");
    assert_eq!(
        request_json(&req)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "What is the weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"id": "orHZBIN2", "name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": RECORDED_SIGNATURE},
                {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "orHZBIN2", "name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"output": "sunny, 25 C"}}}
            ]},
            {"role": "user", "parts": [{"text": "Thanks!"}]}
        ])
    );
}

#[test]
fn tool_results_that_are_not_objects_go_under_output() {
    let req = round_trip(
        "gemini-2.5-flash",
        vec![
            ToolCall::new("a", "f", "{}"),
            ToolCall::new("b", "f", ""),
            ToolCall::new("c", "f", "  "),
        ],
        &[("a", "[1, 2]"), ("b", "42"), ("c", "")],
    );
    let body = request_json(&req);
    let responses: Vec<_> = body["contents"][2]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["functionResponse"]["response"].clone())
        .collect();
    assert_eq!(
        responses,
        [
            json!({"output": [1, 2]}),
            json!({"output": 42}),
            json!({"output": ""})
        ]
    );
    // Empty arguments are no arguments.
    let args: Vec<_> = body["contents"][1]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .map(|c| c["args"].clone())
        .collect();
    assert_eq!(args, [json!({}), json!({}), json!({})]);
}

#[test]
fn tool_call_and_result_errors_name_their_field() {
    let call = |args: &str| {
        round_trip(
            "gemini-2.5-flash",
            vec![ToolCall::new("a", "f", args)],
            &[("a", "ok")],
        )
    };
    for bad in ["{not json", "[1]", "\"text\""] {
        assert_refused(
            &refused(&call(bad)),
            ErrorKind::InvalidRequest,
            "messages[1].tool_calls[0].function.arguments",
        );
    }
    let unnamed = round_trip("gemini-2.5-flash", vec![ToolCall::new("a", "", "{}")], &[]);
    assert_refused(
        &refused(&unnamed),
        ErrorKind::InvalidRequest,
        "messages[1].tool_calls[0].function.name",
    );
    // A result for a call nobody made.
    let unknown = round_trip(
        "gemini-2.5-flash",
        vec![ToolCall::new("a", "f", "{}")],
        &[("a", "ok"), ("zzz", "?")],
    );
    assert_refused(
        &refused(&unknown),
        ErrorKind::InvalidRequest,
        "messages[3].tool_call_id",
    );
    // A call made later does not count.
    let early = TextRequest::new("gemini-2.5-flash")
        .user("x")
        .message(gateway_core::Message::tool_result("a", "ok"))
        .message(gateway_core::Message::assistant_calls(
            "",
            vec![ToolCall::new("a", "f", "{}")],
        ));
    assert_refused(
        &refused(&early),
        ErrorKind::InvalidRequest,
        "messages[1].tool_call_id",
    );
    // No id at all.
    let mut anonymous = call("{}");
    anonymous.messages[2].tool_call_id = None;
    assert_refused(
        &refused(&anonymous),
        ErrorKind::InvalidRequest,
        "messages[2].tool_call_id",
    );
    // Tool results are text.
    let mut image = call("{}");
    image.messages[2]
        .content
        .push(Part::image_url("data:image/png;base64,iVBORw0K"));
    assert_refused(
        &refused(&image),
        ErrorKind::InvalidRequest,
        "messages[2].content[1]",
    );
    // An id whose signature part is not base64.
    let forged = round_trip(
        "gemini-3-flash-preview",
        vec![ToolCall::new("a__thought__not*base64!", "f", "{}")],
        &[],
    );
    assert_refused(
        &refused(&forged),
        ErrorKind::InvalidRequest,
        "messages[1].tool_calls[0].id",
    );
    let empty = round_trip(
        "gemini-3-flash-preview",
        vec![ToolCall::new("a__thought__", "f", "{}")],
        &[],
    );
    assert_refused(
        &refused(&empty),
        ErrorKind::InvalidRequest,
        "messages[1].tool_calls[0].id",
    );
}

#[test]
fn gemini_3_calls_without_a_signature_get_the_documented_dummy() {
    let calls = || {
        vec![
            ToolCall::new("call_from_openai", "f", "{}"),
            ToolCall::new("call_2", "f", "{}"),
        ]
    };
    let signatures = |model: &str, calls: Vec<ToolCall>| -> Vec<Value> {
        request_json(&round_trip(model, calls, &[]))["contents"][1]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p.get("functionCall").is_some())
            .map(|p| p.get("thoughtSignature").cloned().unwrap_or(Value::Null))
            .collect()
    };
    // Gemini 3 validates: the first call of the turn gets the dummy.
    for model in [
        "gemini-3-flash-preview",
        "gemini-3.1-pro-preview",
        "models/gemini-3.6-flash",
        "gemini-flash-latest",
    ] {
        assert_eq!(
            signatures(model, calls()),
            [json!(DUMMY_SIGNATURE), Value::Null],
            "{model}"
        );
    }
    assert_eq!(
        String::from_utf8(decode_base64(DUMMY_SIGNATURE).unwrap()).unwrap(),
        "skip_thought_signature_validator"
    );
    // A real signature is never replaced.
    let signed = vec![
        ToolCall::new(tool_call_id(Some("x"), Some("AAAA")), "f", "{}"),
        ToolCall::new("y", "f", "{}"),
    ];
    assert_eq!(
        signatures("gemini-3-flash-preview", signed),
        [json!("AAAA"), Value::Null]
    );
    // Older models do not validate: nothing is added.
    for model in ["gemini-2.5-flash", "gemini-2.0-flash", "gemma-3-27b-it"] {
        assert_eq!(
            signatures(model, calls()),
            [Value::Null, Value::Null],
            "{model}"
        );
    }
}

#[test]
fn signatures_in_ids_round_trip_exactly() {
    for signature in ["AAAA", "AB+/", "AB+/Cw==", "AB+/CwE=", RECORDED_SIGNATURE] {
        let id = tool_call_id(Some("fc1"), Some(signature));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
        assert_eq!(
            split_tool_call_id(&id, "x").unwrap(),
            ("fc1", Some(signature.to_owned()))
        );
    }
    // LiteLLM's form (raw standard base64) is read too.
    assert_eq!(
        split_tool_call_id("call_1__thought__AB+/Cw==", "x").unwrap(),
        ("call_1", Some("AB+/Cw==".to_owned()))
    );
    assert_eq!(split_tool_call_id("plain", "x").unwrap(), ("plain", None));
    // No id from Gemini: a fresh one; no signature: no suffix.
    let fresh = tool_call_id(None, None);
    assert!(fresh.starts_with("call_") && fresh.len() == 29, "{fresh}");
    assert_ne!(fresh, tool_call_id(Some(""), None));
    assert_eq!(tool_call_id(Some("g98os1Jf"), Some("")), "g98os1Jf");
}

// ---- n, logprobs, reasoning_effort, stop ----

#[test]
fn n_is_candidate_count() {
    let mut req = TextRequest::new("gemini-2.5-flash").user("hi");
    req.n = Some(1);
    assert!(request_json(&req).get("generationConfig").is_none());
    req.n = Some(8);
    assert_eq!(
        request_json(&req)["generationConfig"],
        json!({"candidateCount": 8})
    );
    req.n = Some(9);
    assert_refused(&refused(&req), ErrorKind::Unsupported, "n");
    req.n = Some(0);
    assert_refused(&refused(&req), ErrorKind::InvalidRequest, "n");
}

#[test]
fn logprobs_and_top_logprobs() {
    let mut req = TextRequest::new("gemini-2.0-flash").user("hi");
    req.logprobs = true;
    assert_eq!(
        request_json(&req)["generationConfig"],
        json!({"responseLogprobs": true})
    );
    req.top_logprobs = Some(5);
    assert_eq!(
        request_json(&req)["generationConfig"],
        json!({"responseLogprobs": true, "logprobs": 5})
    );
    req.top_logprobs = Some(0);
    assert_eq!(
        request_json(&req)["generationConfig"],
        json!({"responseLogprobs": true, "logprobs": 0})
    );
    req.top_logprobs = Some(21);
    assert_refused(&refused(&req), ErrorKind::InvalidRequest, "top_logprobs");
}

#[test]
fn reasoning_effort_follows_googles_openai_mapping() {
    use ReasoningEffort as E;
    let thinking = |model: &str, effort: ReasoningEffort| {
        let mut req = TextRequest::new(model).user("hi");
        req.reasoning_effort = Some(effort);
        convert(&req).map(|b| {
            serde_json::to_value(b.generation_config.unwrap().thinking_config.unwrap()).unwrap()
        })
    };
    let level = |l: &str| json!({"thinkingLevel": l});
    let budget = |b: u32| json!({"thinkingBudget": b});
    for (model, effort, expected) in [
        ("gemini-3-flash-preview", E::Minimal, level("MINIMAL")),
        ("gemini-3-flash-preview", E::Low, level("LOW")),
        (
            "gemini-3.1-flash-lite-preview",
            E::Minimal,
            level("MINIMAL"),
        ),
        ("gemini-3.1-pro-preview", E::Minimal, level("LOW")),
        ("gemini-3.1-pro-preview", E::Medium, level("MEDIUM")),
        ("gemini-3.6-flash", E::High, level("HIGH")),
        ("gemini-2.5-flash", E::None, budget(0)),
        ("gemini-2.5-flash-lite", E::Minimal, budget(1_024)),
        ("gemini-2.5-flash", E::Low, budget(1_024)),
        ("gemini-2.5-pro", E::Medium, budget(8_192)),
        ("models/gemini-2.5-pro", E::High, budget(24_576)),
    ] {
        assert_eq!(
            thinking(model, effort).unwrap(),
            expected,
            "{model} {effort:?}"
        );
    }
    // Models that cannot stop thinking, and models without thinking.
    for (model, effort) in [
        ("gemini-2.5-pro", E::None),
        ("gemini-3-flash-preview", E::None),
        ("gemini-3.1-pro-preview", E::None),
        ("gemini-2.0-flash", E::Low),
        ("gemma-3-27b-it", E::High),
    ] {
        assert_refused(
            &thinking(model, effort).unwrap_err(),
            ErrorKind::Unsupported,
            "reasoning_effort",
        );
    }
}

#[test]
fn model_families() {
    for (model, family) in [
        ("gemini-3-pro-preview", Family::Gemini3 { pro: true }),
        ("gemini-3.6-flash", Family::Gemini3 { pro: false }),
        ("gemini-10.0-ultra", Family::Gemini3 { pro: false }),
        ("gemini-pro-latest", Family::Gemini3 { pro: true }),
        ("gemini-2.5-flash-lite", Family::Gemini25 { pro: false }),
        (
            "gemini-2.5-pro-preview-06-05",
            Family::Gemini25 { pro: true },
        ),
        ("gemini-2.0-flash", Family::Other),
        ("gemini-1.5-pro", Family::Other),
        ("gemini-exp-1206", Family::Other),
        ("gemma-3-27b-it", Family::Other),
    ] {
        assert_eq!(Family::of(model), family, "{model}");
    }
}

#[test]
fn at_most_five_stop_sequences() {
    let mut req = TextRequest::new("m").user("hi");
    req.stop = (0..5).map(|n| n.to_string()).collect();
    assert_eq!(
        request_json(&req)["generationConfig"]["stopSequences"],
        json!(["0", "1", "2", "3", "4"])
    );
    req.stop.push("5".into());
    assert_refused(&refused(&req), ErrorKind::InvalidRequest, "stop");
}

// ---- answers: n and logprobs ----

#[test]
fn every_candidate_is_an_answer_in_index_order() {
    let r = response(json!({
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "Blue."}]}, "finishReason": "MAX_TOKENS", "index": 1},
            {"content": {"role": "model", "parts": [{"text": "Red."}]}, "finishReason": "STOP", "index": 0},
            {"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
             "finishReason": "STOP", "index": 2}
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9, "totalTokenCount": 14}
    }));
    assert_eq!(r.content, "Red.");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.alternatives.len(), 2);
    assert_eq!(r.alternatives[0].content, "Blue.");
    assert_eq!(r.alternatives[0].finish_reason, FinishReason::Length);
    assert_eq!(r.alternatives[1].finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.alternatives[1].tool_calls[0].arguments, r#"{"a":1}"#);
    // Usage covers every candidate, once.
    assert_eq!(r.usage.output_tokens, 9);
    assert_eq!(r.choices().len(), 3);
}

#[test]
fn recorded_logprobs_become_token_logprobs() {
    // The logprobsResult recorded from gemini-2.5-flash (on Vertex, the same shape):
    // https://github.com/pydantic/pydantic-ai/blob/4fda38988f2939fa6ea9cdefcf120693e10ef491/tests/models/cassettes/test_google/test_google_vertex_logprobs_structure.yaml
    let r = response(json!({"candidates": [{
        "avgLogprobs": -11.512689590454102,
        "content": {"parts": [{"text": "Hello"}], "role": "model"},
        "finishReason": "STOP",
        "logprobsResult": {
            "chosenCandidates": [{"logProbability": -1.0489701e-05, "token": "Hello", "tokenId": 9259}],
            "topCandidates": [{"candidates": [
                {"logProbability": -1.0489701e-05, "token": "Hello", "tokenId": 9259},
                {"logProbability": -11.782881, "token": "\"", "tokenId": 236775}
            ]}]
        }
    }]}));
    let mut expected = TokenLogprob::new("Hello", -1.0489701e-05);
    expected.top = vec![("Hello".into(), -1.0489701e-05), ("\"".into(), -11.782881)];
    assert_eq!(r.logprobs, Some(vec![expected]));
    // Chosen tokens without top alternatives (responseLogprobs without logprobs).
    let r = response(json!({"candidates": [{
        "content": {"parts": [{"text": "Hi there"}]},
        "finishReason": "STOP",
        "logprobsResult": {"chosenCandidates": [
            {"logProbability": -0.5, "token": "Hi"},
            {"logProbability": -0.25, "token": " there"}
        ]}
    }]}));
    assert_eq!(
        r.logprobs,
        Some(vec![
            TokenLogprob::new("Hi", -0.5),
            TokenLogprob::new(" there", -0.25)
        ])
    );
    // Not asked for: none.
    assert_eq!(response(with_finish("STOP")).logprobs, None);
}

// ---- streamed tool calls ----

/// The events of a recorded stream fixture, as an SSE body.
fn recorded_stream(name: &str) -> String {
    recorded_events(name)
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect()
}

fn recorded_events(name: &str) -> Vec<String> {
    gw_mock::fixture::Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
        .sse
        .unwrap_or_default()
}

#[test]
fn a_recorded_streamed_function_call_is_one_tool_call_chunk() {
    let body = recorded_stream("text/stream_function_call.json");
    let recorded: Value =
        serde_json::from_str(&recorded_events("text/stream_function_call.json")[1]).unwrap();
    let part = &recorded["candidates"][0]["content"]["parts"][0];
    let signature = part["thoughtSignature"].as_str().unwrap();
    for step in [1, 7, 500, body.len()] {
        let chunks = ok(decode(&body, step));
        let usage = |output| TokenUsage {
            input_tokens: 158,
            output_tokens: output,
            reasoning_tokens: 302,
            cached_input_tokens: 0,
        };
        assert_eq!(chunks.len(), 6, "{chunks:?}");
        assert_eq!(
            chunks[0],
            TextChunk::Delta("I will check the current weather in Cairo in Celsius.".into())
        );
        assert_eq!(chunks[1], TextChunk::Usage(usage(313)));
        let TextChunk::ToolCall {
            index,
            id,
            name,
            arguments,
        } = &chunks[2]
        else {
            panic!("{chunks:?}");
        };
        assert_eq!((*index, name.as_deref()), (0, Some("get_weather")));
        let args: Value = serde_json::from_str(arguments).unwrap();
        assert_eq!(args, json!({"country": "EG", "city": "Cairo", "unit": "C"}));
        let id = id.as_deref().unwrap();
        assert_eq!(
            split_tool_call_id(id, "x").unwrap(),
            ("call_267014", Some(signature.to_owned())),
            "pieces of {step}"
        );
        assert_eq!(chunks[3], TextChunk::Usage(usage(341)));
        assert_eq!(chunks[4], TextChunk::Usage(usage(341)));
        assert_eq!(chunks[5], TextChunk::Finish(FinishReason::ToolCalls));
    }
}

#[test]
fn streamed_calls_are_numbered_across_events_and_mixed_with_text() {
    let s = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Let me \"},{\"text\":\"check.\"},",
        "{\"functionCall\":{\"name\":\"a\",\"args\":{\"x\":1}},\"thoughtSignature\":\"AAAA\"},",
        "{\"functionCall\":{\"name\":\"b\"}},{\"text\":\"And\"}]}}]}\n\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"thinking\",\"thought\":true},",
        "{\"functionCall\":{\"id\":\"c3\",\"name\":\"c\",\"args\":{}}}]}},",
        "{\"content\":{\"parts\":[{\"text\":\"another candidate\"}]},\"index\":1}]}\n\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\"}]}\n\n",
    );
    let chunks = ok(decode(s, 13));
    let call = |chunk: &TextChunk| match chunk {
        TextChunk::ToolCall {
            index,
            id,
            name,
            arguments,
        } => (
            *index,
            id.clone().unwrap(),
            name.clone().unwrap(),
            arguments.clone(),
        ),
        other => panic!("not a call: {other:?}"),
    };
    assert_eq!(chunks.len(), 6, "{chunks:?}");
    assert_eq!(chunks[0], TextChunk::Delta("Let me check.".into()));
    let (index, id, name, args) = call(&chunks[1]);
    assert_eq!(
        (index, name.as_str(), args.as_str()),
        (0, "a", r#"{"x":1}"#)
    );
    assert!(
        id.starts_with("call_") && id.ends_with("__thought__AAAA"),
        "{id}"
    );
    let (index, _, name, args) = call(&chunks[2]);
    assert_eq!((index, name.as_str(), args.as_str()), (1, "b", "{}"));
    assert_eq!(chunks[3], TextChunk::Delta("And".into()));
    let (index, id, name, _) = call(&chunks[4]);
    assert_eq!((index, id.as_str(), name.as_str()), (2, "c3", "c"));
    assert_eq!(chunks[5], TextChunk::Finish(FinishReason::ToolCalls));
}

// ---- images by link ----

#[test]
fn image_links_gemini_fetches_itself_go_as_file_data() {
    let req = TextRequest::new("gemini-2.5-flash").message(gateway_core::Message::with_parts(
        Role::User,
        vec![
            Part::text("Describe these."),
            Part::image_url("https://generativelanguage.googleapis.com/v1beta/files/abc123"),
            Part::image_url("https://www.youtube.com/watch?v=9hE5-98ZeCg"),
            Part::image_url("https://youtu.be/9hE5-98ZeCg"),
        ],
    ));
    assert!(downloads(&req).is_empty());
    assert_eq!(
        request_json(&req)["contents"][0]["parts"],
        json!([
            {"text": "Describe these."},
            {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
            {"fileData": {"fileUri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}},
            {"fileData": {"fileUri": "https://youtu.be/9hE5-98ZeCg"}}
        ])
    );
}

#[test]
fn other_links_are_downloaded_then_sent_inline() {
    let req = TextRequest::new("gemini-2.5-flash").user("first").message(
        gateway_core::Message::with_parts(
            Role::User,
            vec![
                Part::text("What is this?"),
                Part::image_url("https://example.com/cat.png"),
                Part::image_url("data:image/png;base64,iVBORw0K"),
                // Not a Files API path: downloaded like any link.
                Part::image_url("https://generativelanguage.googleapis.com/download/x.png"),
                Part::image_url("http://intranet.local/dog.jpg"),
            ],
        ),
    );
    assert_eq!(
        downloads(&req),
        vec![
            (1, 1, "https://example.com/cat.png"),
            (
                1,
                3,
                "https://generativelanguage.googleapis.com/download/x.png"
            ),
            (1, 4, "http://intranet.local/dog.jpg"),
        ]
    );
    // Checked before downloading: empty stand-ins.
    assert!(text_request(&req, Downloads::Pending).is_ok());
    let fetched: Fetched = [
        (
            (1, 1),
            downloaded_image(1, 1, b"PNG", Some("image/png")).unwrap(),
        ),
        (
            (1, 3),
            downloaded_image(1, 3, b"GIF", Some("Image/GIF; x=y")).unwrap(),
        ),
        (
            (1, 4),
            downloaded_image(1, 4, b"JPG", Some("image/jpeg")).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let body =
        serde_json::to_value(text_request(&req, Downloads::Done(&fetched)).unwrap()).unwrap();
    assert_eq!(
        body["contents"][1]["parts"],
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": encode_base64(b"PNG")}},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
            {"inlineData": {"mimeType": "image/gif", "data": encode_base64(b"GIF")}},
            {"inlineData": {"mimeType": "image/jpeg", "data": encode_base64(b"JPG")}}
        ])
    );
}

#[test]
fn a_download_that_is_not_an_image_is_refused() {
    for content_type in [
        Some("text/html; charset=utf-8"),
        Some("application/octet-stream"),
        Some("image/"),
        None,
    ] {
        let err = downloaded_image(2, 1, b"<html>", content_type).unwrap_err();
        assert_refused(&err, ErrorKind::InvalidRequest, "messages[2].content[1]");
    }
}

#[test]
fn a_link_missing_from_the_downloads_is_an_error_not_an_empty_image() {
    let req = TextRequest::new("m").message(gateway_core::Message::with_parts(
        Role::User,
        vec![Part::image_url("https://example.com/cat.png")],
    ));
    let err = refused(&req);
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert_eq!(err.provider(), PROVIDER);
}
