//! Pure mapping between the gateway's text types and Gemini's wire types. No IO.

use gateway_core::sse::{SseEvent, SseStep, SseTextDecoder, interrupted};
use gateway_core::{
    Error, FinishReason, ResponseFormat, Result, Role, TextChunk, TextRequest, TextResponse,
    TokenUsage,
};

use crate::PROVIDER;
use crate::error::classify;
use crate::wire;

/// The MIME type that switches Gemini to JSON output.
const JSON_MIME: &str = "application/json";

/// The model id as it goes into `/v1beta/models/{model}:...`.
///
/// Gemini ids are plain tokens (`gemini-2.5-flash`, `gemma-3-27b-it`); anything else could change
/// the path or the method after the `:`, so it is refused. A leading `models/` (the resource name
/// form the API itself answers with) is accepted and dropped.
pub(crate) fn model_path(model: &str) -> Result<&str> {
    let id = model.strip_prefix("models/").unwrap_or(model);
    let valid = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(id)
    } else {
        Err(
            Error::invalid_request(format!("`{model}` is not a valid Gemini model id"))
                .with_provider(PROVIDER),
        )
    }
}

/// The `generateContent` body for `req`.
///
/// System messages become one `systemInstruction` part each; user and assistant messages become
/// `user` and `model` turns. A request without any user or assistant message is refused.
pub(crate) fn text_request(req: &TextRequest) -> Result<wire::GenerateContentRequest> {
    let mut system = Vec::new();
    let mut contents = Vec::new();
    for message in &req.messages {
        let part = wire::Part {
            text: Some(message.content.clone()),
            ..wire::Part::default()
        };
        let role = match message.role {
            Role::System => {
                system.push(part);
                continue;
            }
            Role::User => wire::Role::User,
            Role::Assistant => wire::Role::Model,
        };
        contents.push(wire::Content {
            role: Some(role),
            parts: vec![part],
        });
    }
    if contents.is_empty() {
        return Err(Error::invalid_request(
            "a Gemini request needs at least one user or assistant message",
        )
        .with_provider(PROVIDER));
    }

    let (response_mime_type, response_json_schema) = match &req.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some(JSON_MIME.to_owned()), None),
        // `name` and `strict` have no Gemini counterpart: the schema is always enforced.
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            (Some(JSON_MIME.to_owned()), Some(schema.clone()))
        }
    };
    let config = wire::GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_tokens,
        stop_sequences: req.stop.clone(),
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        response_mime_type,
        response_json_schema,
    };

    Ok(wire::GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(wire::Content {
            role: None,
            parts: system,
        }),
        generation_config: (config != wire::GenerationConfig::default()).then_some(config),
    })
}

/// Maps a complete `generateContent` answer. `requested_model` names the model when the answer
/// carries no `modelVersion`.
///
/// A blocked prompt (`promptFeedback.blockReason`, no candidates) is an empty answer with
/// [`FinishReason::ContentFilter`], not an error.
pub(crate) fn text_response(
    resp: wire::GenerateContentResponse,
    requested_model: &str,
) -> Result<TextResponse> {
    let usage = resp.usage_metadata.map(usage).unwrap_or_default();
    let model = resp
        .model_version
        .unwrap_or_else(|| requested_model.to_owned());
    let candidate = resp.candidates.and_then(|c| c.into_iter().next());
    let (content, finish_reason) = match candidate {
        Some(candidate) => {
            let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
            let reason = finish_reason(candidate.finish_reason, has_function_call(&parts));
            (answer_text(&parts), reason)
        }
        None => {
            let block = resp.prompt_feedback.and_then(|f| f.block_reason);
            if block.is_none() {
                return Err(Error::decode(
                    "the answer has neither a candidate nor a promptFeedback.blockReason",
                )
                .with_provider(PROVIDER));
            }
            tracing::debug!(provider = PROVIDER, reason = ?block, "prompt blocked");
            (String::new(), FinishReason::ContentFilter)
        }
    };
    Ok(TextResponse {
        id: resp.response_id,
        model,
        content,
        finish_reason,
        usage,
    })
}

/// The answer text of `parts`: every `text`, in order, except thought summaries.
fn answer_text(parts: &[wire::Part]) -> String {
    parts
        .iter()
        .filter(|p| p.thought != Some(true))
        .filter_map(|p| p.text.as_deref())
        .collect()
}

fn has_function_call(parts: &[wire::Part]) -> bool {
    parts.iter().any(|p| p.function_call.is_some())
}

/// Gemini's finish reason in OpenAI's terms.
///
/// A function call overrides an ordinary stop (Gemini reports `STOP` alongside `functionCall`
/// parts), but not a token limit or a content block. Reasons with no OpenAI counterpart
/// (`LANGUAGE`, `OTHER`, malformed or unexpected tool calls, `NO_IMAGE`, unknown values, a
/// missing reason) count as a plain stop, as `shared/providers/gemini.md` §4 suggests.
fn finish_reason(reason: Option<wire::FinishReason>, function_call: bool) -> FinishReason {
    use wire::FinishReason as W;
    let mapped = match reason {
        Some(W::MaxTokens) => FinishReason::Length,
        Some(
            W::Safety
            | W::Recitation
            | W::Blocklist
            | W::ProhibitedContent
            | W::Spii
            | W::ImageSafety
            | W::ImageProhibitedContent
            | W::ImageRecitation
            | W::ImageOther,
        ) => FinishReason::ContentFilter,
        Some(
            W::Stop
            | W::Unspecified
            | W::Language
            | W::Other
            | W::MalformedFunctionCall
            | W::UnexpectedToolCall
            | W::TooManyToolCalls
            | W::NoImage
            | W::Unknown,
        )
        | None => FinishReason::Stop,
    };
    if function_call && mapped == FinishReason::Stop {
        FinishReason::ToolCalls
    } else {
        mapped
    }
}

/// Gemini's counts as [`TokenUsage`]. Tool-use prompt tokens are input; thoughts are output.
fn usage(u: wire::UsageMetadata) -> TokenUsage {
    let n = |c: Option<u64>| c.unwrap_or(0);
    TokenUsage {
        input_tokens: n(u.prompt_token_count).saturating_add(n(u.tool_use_prompt_token_count)),
        output_tokens: n(u.candidates_token_count).saturating_add(n(u.thoughts_token_count)),
        reasoning_tokens: n(u.thoughts_token_count),
        cached_input_tokens: n(u.cached_content_token_count),
    }
}

/// Maps `streamGenerateContent?alt=sse` events onto [`TextChunk`]s.
///
/// Every event is a whole `GenerateContentResponse` carrying only new parts. Per event, in this
/// order: a `Delta` for new answer text, a `Usage` when `usageMetadata` is present (cumulative),
/// and a `Finish` the first time a `finishReason` (or a prompt `blockReason`) shows up. Gemini
/// sends no `[DONE]`: the end of the body after a finish is the normal end, and an end without one
/// is [`ErrorKind::StreamInterrupted`](gateway_core::ErrorKind::StreamInterrupted).
#[derive(Debug, Default)]
pub(crate) struct StreamDecoder {
    finished: bool,
    /// A `functionCall` part may arrive in an earlier event than the `finishReason`.
    function_call: bool,
}

impl StreamDecoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }
}

impl SseTextDecoder for StreamDecoder {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<TextChunk>) -> Result<SseStep> {
        let parsed: wire::StreamEvent = serde_json::from_str(&event.data).map_err(|e| {
            Error::decode(format!("unexpected stream event: {e}"))
                .with_provider(PROVIDER)
                .with_body(&event.data)
        })?;
        if parsed.error.is_some() {
            // An error after the 200: it carries its HTTP status only as `error.code`.
            let status = serde_json::from_str::<wire::ErrorEnvelope>(&event.data)
                .ok()
                .and_then(|e| e.error.code)
                .unwrap_or(500);
            return Err(classify(status, &Default::default(), &event.data));
        }
        let resp = parsed.response;
        let candidate = resp.candidates.and_then(|c| c.into_iter().next());
        let (parts, reason) = match candidate {
            Some(c) => (
                c.content.map(|c| c.parts).unwrap_or_default(),
                c.finish_reason,
            ),
            None => (Vec::new(), None),
        };
        self.function_call |= has_function_call(&parts);
        let text = answer_text(&parts);
        if !text.is_empty() {
            out.push(TextChunk::Delta(text));
        }
        if let Some(u) = resp.usage_metadata {
            out.push(TextChunk::Usage(usage(u)));
        }
        let blocked = resp.prompt_feedback.and_then(|f| f.block_reason).is_some();
        if !self.finished {
            let finish = match reason {
                Some(reason) => Some(finish_reason(Some(reason), self.function_call)),
                None if blocked => Some(FinishReason::ContentFilter),
                None => None,
            };
            if let Some(finish) = finish {
                self.finished = true;
                out.push(TextChunk::Finish(finish));
            }
        }
        Ok(SseStep::Continue)
    }

    fn on_eof(&mut self, _out: &mut Vec<TextChunk>) -> Result<()> {
        if self.finished {
            Ok(())
        } else {
            Err(interrupted(PROVIDER, "Gemini sent a finishReason"))
        }
    }
}

#[cfg(test)]
mod tests {
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
        // The shape of shared/providers/gemini.md §2, with a thought summary part added.
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
        let resp =
            serde_json::from_value(json!({"usageMetadata": {"promptTokenCount": 3}})).unwrap();
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
            sse.push(piece);
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

    /// The sample of shared/providers/gemini.md §3, with a thought event in between.
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
}
