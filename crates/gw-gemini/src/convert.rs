//! Pure mapping between the gateway's text types and Gemini's wire types. No IO.

use gateway_core::sse::{SseDecode, SseEvent, SseStep, interrupted};
use gateway_core::{
    DataUrl, EmbeddingRequest, EmbeddingResponse, Error, FinishReason, Part, ResponseFormat,
    Result, Role, TextChunk, TextRequest, TextResponse, TokenUsage, decode_base64, encode_base64,
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
/// System messages become `systemInstruction` parts; user and assistant messages become `user`
/// and `model` turns. A request without any user or assistant message is refused.
pub(crate) fn text_request(req: &TextRequest) -> Result<wire::GenerateContentRequest> {
    let mut system = Vec::new();
    let mut contents = Vec::new();
    for (i, message) in req.messages.iter().enumerate() {
        let parts = message
            .content
            .iter()
            .enumerate()
            .map(|(j, part)| wire_part(part, i, j))
            .collect::<Result<Vec<_>>>()?;
        let role = match message.role {
            Role::System => {
                system.extend(parts);
                continue;
            }
            Role::User => wire::Role::User,
            Role::Assistant => wire::Role::Model,
            other => {
                return Err(invalid(format!(
                    "messages[{i}]: Gemini takes no `{}` messages",
                    other.as_str()
                ))
                .with_param(format!("messages[{i}].role")));
            }
        };
        contents.push(wire::Content {
            role: Some(role),
            parts,
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
        Some(_) => {
            return Err(
                Error::unsupported("Gemini does not take this response_format")
                    .with_provider(PROVIDER)
                    .with_param("response_format"),
            );
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

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

/// One content part of `messages[i].content[j]` on the wire.
///
/// Images and audio go inline (`inlineData`, base64): an image as a `data:` URL, audio as
/// OpenAI's `input_audio` (`data`, `format`). An image by `https://` URL is refused, naming the
/// part: Gemini fetches only its own Files API URIs.
fn wire_part(part: &Part, i: usize, j: usize) -> Result<wire::Part> {
    let at = || format!("messages[{i}].content[{j}]");
    let blob = |mime_type: String, data: String| wire::Part {
        inline_data: Some(wire::Blob { mime_type, data }),
        ..wire::Part::default()
    };
    match part {
        Part::Text(text) => Ok(wire::Part {
            text: Some(text.clone()),
            ..wire::Part::default()
        }),
        Part::Image { url, .. } => match DataUrl::parse(url) {
            Some(Ok(image)) => Ok(blob(image.mime, encode_base64(&image.data))),
            Some(Err(why)) => Err(invalid(format!("{}: {why}", at())).with_param(at())),
            None => Err(invalid(format!(
                "{}: Gemini takes images inline: send the image as a data URL \
                 (`data:image/png;base64,...`), not a link",
                at()
            ))
            .with_param(at())),
        },
        Part::Audio { data, format } => {
            let mime = audio_mime(format).ok_or_else(|| {
                invalid(format!(
                    "{}: audio format `{format}` is not one Gemini takes (wav, mp3, aiff, aac, \
                     ogg, flac)",
                    at()
                ))
                .with_param(format!("{}.input_audio.format", at()))
            })?;
            if decode_base64(data).is_none() {
                return Err(invalid(format!("{}: the audio data is not base64", at()))
                    .with_param(format!("{}.input_audio.data", at())));
            }
            Ok(blob(mime.to_owned(), data.clone()))
        }
        other => Err(Error::unsupported(format!(
            "{}: Gemini does not take `{}` parts",
            at(),
            other.kind()
        ))
        .with_provider(PROVIDER)
        .with_param(at())),
    }
}

/// The MIME type Gemini takes for an audio `format`.
///
/// Source: the supported formats of <https://ai.google.dev/gemini-api/docs/audio>.
fn audio_mime(format: &str) -> Option<&'static str> {
    Some(match format.to_ascii_lowercase().as_str() {
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "aiff" => "audio/aiff",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        _ => return None,
    })
}

/// The options Gemini's embeddings take through [`EmbeddingRequest::options`].
const EMBED_OPTIONS: [&str; 2] = ["taskType", "title"];

/// The `batchEmbedContents` body for `req`: one request per input, each naming the model.
///
/// `dimensions` becomes `outputDimensionality` (Gemini truncates the vector and does not
/// normalise it again); the options `taskType` and `title` are passed as they are, any other
/// option is refused by name.
pub(crate) fn embed_request(req: &EmbeddingRequest) -> Result<wire::BatchEmbedContentsRequest> {
    let model = format!("models/{}", model_path(&req.model)?);
    let mut task_type = None;
    let mut title = None;
    for (name, value) in &req.options {
        let slot = match name.as_str() {
            "taskType" => &mut task_type,
            "title" => &mut title,
            _ => {
                return Err(invalid(format!(
                    "Gemini embeddings take no option `{name}` (they take: {})",
                    EMBED_OPTIONS.join(", ")
                ))
                .with_param(format!("options.{name}")));
            }
        };
        let text = value.as_str().ok_or_else(|| {
            invalid(format!("option `{name}` must be a string"))
                .with_param(format!("options.{name}"))
        })?;
        *slot = Some(text.to_owned());
    }
    let requests = req
        .inputs
        .iter()
        .map(|text| wire::EmbedContentRequest {
            model: model.clone(),
            content: wire::Content {
                role: None,
                parts: vec![wire::Part {
                    text: Some(text.clone()),
                    ..wire::Part::default()
                }],
            },
            task_type: task_type.clone(),
            title: title.clone(),
            output_dimensionality: req.dimensions,
        })
        .collect();
    Ok(wire::BatchEmbedContentsRequest { requests })
}

/// Maps a `batchEmbedContents` answer to `inputs` inputs of `model`. Gemini answers one
/// embedding per request, in order; any other count is a broken answer.
pub(crate) fn embed_response(
    resp: wire::BatchEmbedContentsResponse,
    inputs: usize,
    model: &str,
) -> Result<EmbeddingResponse> {
    if resp.embeddings.len() != inputs {
        return Err(Error::decode(format!(
            "{} embeddings came back for {inputs} inputs",
            resp.embeddings.len()
        ))
        .with_provider(PROVIDER));
    }
    if let Some(i) = resp.embeddings.iter().position(|e| e.values.is_empty()) {
        return Err(Error::decode(format!("embedding {i} has no values")).with_provider(PROVIDER));
    }
    let usage = TokenUsage {
        input_tokens: resp
            .usage_metadata
            .and_then(|u| u.prompt_token_count)
            .unwrap_or(0),
        ..TokenUsage::default()
    };
    let vectors = resp.embeddings.into_iter().map(|e| e.values).collect();
    Ok(EmbeddingResponse::new(model, vectors, usage))
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
/// missing reason) count as a plain stop
/// (<https://ai.google.dev/api/generate-content#FinishReason>).
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

impl SseDecode for StreamDecoder {
    type Item = TextChunk;

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
mod tests;
