//! Pure mapping between the core types and the router's OpenAI-compatible JSON: no IO here.

use gateway_core::sse::{SseDecode, SseEvent, SseStep, interrupted};
use gateway_core::{
    EmbeddingRequest, EmbeddingResponse, Error, FinishReason, Message, Part, ResponseFormat,
    Result, Role, TextChunk, TextRequest, TextResponse, TokenUsage,
};
use serde_json::Value;

use crate::PROVIDER;
use crate::error::stream_error;
use crate::wire;

/// The body of `POST /v1/chat/completions` for `req`; `stream` adds `stream: true` and asks for
/// usage on the last chunk.
///
/// The model id goes out exactly as given: a `:provider` (or `:fastest`/`:cheapest`) suffix is
/// the router's business.
pub(crate) fn chat_request(req: &TextRequest, stream: bool) -> Result<wire::ChatCompletionRequest> {
    if req.model.trim().is_empty() {
        return Err(invalid("a model id is required"));
    }
    if req.messages.is_empty() {
        return Err(invalid("a chat request needs at least one message"));
    }
    for (name, value) in [
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("presence_penalty", req.presence_penalty),
        ("frequency_penalty", req.frequency_penalty),
    ] {
        // serde_json writes NaN and infinities as `null`, which would silently drop the setting.
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(invalid(format!("`{name}` must be a finite number")));
        }
    }
    let messages = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| chat_message(m, i))
        .collect::<Result<Vec<_>>>()?;
    Ok(wire::ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop.clone(),
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        response_format: match &req.response_format {
            Some(format) => response_format(format)?,
            None => None,
        },
        stream: stream.then_some(true),
        stream_options: stream.then_some(wire::StreamOptions {
            include_usage: true,
        }),
    })
}

/// `messages[i]` on the wire: its text as a string when it has only text, else OpenAI's parts
/// (images by `https://` or `data:` URL, which the router passes to vision models).
fn chat_message(m: &Message, i: usize) -> Result<wire::ChatMessage> {
    let role = match m.role {
        Role::System => wire::Role::System,
        Role::User => wire::Role::User,
        Role::Assistant => wire::Role::Assistant,
        other => {
            return Err(invalid(format!(
                "messages[{i}]: role `{}` is not supported here",
                other.as_str()
            ))
            .with_param(format!("messages[{i}].role")));
        }
    };
    if m.is_text_only() {
        return Ok(wire::ChatMessage {
            role,
            content: wire::MessageContent::Text(m.text()),
        });
    }
    let mut parts = Vec::with_capacity(m.content.len());
    for (j, part) in m.content.iter().enumerate() {
        parts.push(match part {
            Part::Text(text) => wire::ContentPart::Text { text: text.clone() },
            Part::Image { url, detail } => wire::ContentPart::ImageUrl {
                image_url: wire::ImageUrl {
                    url: url.clone(),
                    detail: detail.clone(),
                },
            },
            other => {
                return Err(Error::unsupported(format!(
                    "messages[{i}].content[{j}]: Hugging Face chat takes no `{}` parts",
                    other.kind()
                ))
                .with_provider(PROVIDER)
                .with_param(format!("messages[{i}].content[{j}]")));
            }
        });
    }
    Ok(wire::ChatMessage {
        role,
        content: wire::MessageContent::Parts(parts),
    })
}

/// The `hf-inference` backend, the one that serves feature extraction by Hub model id.
const HF_INFERENCE: &str = "hf-inference";

/// The parameters feature extraction takes, as `options`.
///
/// Source: <https://huggingface.co/docs/inference-providers/tasks/feature-extraction>.
const EMBED_OPTIONS: [&str; 4] = [
    "normalize",
    "prompt_name",
    "truncate",
    "truncation_direction",
];

/// The route and body of a feature-extraction (embeddings) request.
///
/// Embeddings run on `hf-inference`, the backend that serves feature extraction by Hub model
/// id: `hf/<model>` or `hf/<model>:hf-inference`. Other backends need the Hub's provider-model
/// mapping, which this crate does not look up, so their suffix is refused as unsupported (a
/// fallback route may serve the request). A single input goes as a string, several as an array.
pub(crate) fn embed_request(
    req: &EmbeddingRequest,
) -> Result<(String, wire::FeatureExtractionRequest)> {
    let (model, backend) = match req.model.rsplit_once(':') {
        Some((model, backend)) => (model, backend),
        None => (req.model.as_str(), HF_INFERENCE),
    };
    if backend != HF_INFERENCE {
        return Err(Error::unsupported(format!(
            "Hugging Face embeddings run on `{HF_INFERENCE}`; backend `{backend}` is not supported"
        ))
        .with_provider(PROVIDER)
        .with_param("model"));
    }
    let valid = !model.is_empty()
        && model.split('/').count() <= 2
        && model.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if !valid {
        return Err(
            invalid(format!("`{model}` is not a valid Hugging Face model id")).with_param("model"),
        );
    }
    for name in req.options.keys() {
        if !EMBED_OPTIONS.contains(&name.as_str()) {
            return Err(invalid(format!(
                "Hugging Face feature extraction takes no option `{name}` (it takes: {})",
                EMBED_OPTIONS.join(", ")
            ))
            .with_param(format!("options.{name}")));
        }
    }
    let inputs = match req.inputs.as_slice() {
        [one] => wire::Inputs::One(one.clone()),
        many => wire::Inputs::Many(many.to_vec()),
    };
    let path = format!("/{HF_INFERENCE}/models/{model}/pipeline/feature-extraction");
    Ok((
        path,
        wire::FeatureExtractionRequest {
            inputs,
            parameters: req.options.clone(),
        },
    ))
}

/// The vectors of a feature-extraction answer to `inputs` inputs.
///
/// The answer's shape depends on the model: a sentence-embedding model answers one vector for
/// one input (`[f32]`) and one per input for several (`[[f32]]`); a plain transformer answers
/// one vector per token (`[[[f32]]]` and deeper), which is not an embedding of the text and is
/// refused as such rather than pooled by a rule the caller did not choose.
pub(crate) fn embed_response(body: Value, inputs: usize, model: &str) -> Result<EmbeddingResponse> {
    let broken = |why: String| Error::decode(why).with_provider(PROVIDER);
    let Value::Array(outer) = body else {
        return Err(broken("the answer is not an array of vectors".into()));
    };
    let depth = nesting(&outer);
    let rows: Vec<Value> = match depth {
        1 if inputs == 1 => vec![Value::Array(outer)],
        2 => outer,
        d if d >= 3 => {
            return Err(invalid(format!(
                "model `{model}` answers one vector per token (no pooling), not one per text: use \
                 a sentence-embedding model"
            ))
            .with_param("model"));
        }
        _ => {
            return Err(broken(format!(
                "an answer of depth {depth} for {inputs} inputs"
            )));
        }
    };
    if rows.len() != inputs {
        return Err(broken(format!(
            "{} vectors came back for {inputs} inputs",
            rows.len()
        )));
    }
    let mut vectors = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let vector: Vec<f32> = serde_json::from_value(row)
            .map_err(|e| broken(format!("vector {i} is not a list of numbers: {e}")))?;
        if vector.is_empty() {
            return Err(broken(format!("vector {i} is empty")));
        }
        vectors.push(vector);
    }
    // Feature extraction reports no token counts: the router estimates them.
    Ok(EmbeddingResponse::new(
        model,
        vectors,
        TokenUsage::default(),
    ))
}

/// How deeply arrays nest in `outer` (1 for a flat list of numbers), following first elements.
fn nesting(outer: &[Value]) -> usize {
    let mut depth = 1;
    let mut first = outer.first();
    while let Some(Value::Array(inner)) = first {
        depth += 1;
        first = inner.first();
    }
    depth
}

/// `Text` is every provider's default, so it is left out rather than sent as `{"type":"text"}`,
/// which some backends behind the router do not accept.
fn response_format(format: &ResponseFormat) -> Result<Option<wire::ResponseFormat>> {
    Ok(match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(wire::ResponseFormat::JsonObject),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => Some(wire::ResponseFormat::JsonSchema {
            json_schema: wire::JsonSchema {
                name: name.clone(),
                schema: schema.clone(),
                strict: *strict,
            },
        }),
        _ => {
            return Err(
                Error::unsupported("this response_format is not supported here")
                    .with_provider(PROVIDER)
                    .with_param("response_format"),
            );
        }
    })
}

/// The core answer for a blocking response; `requested_model` names the model when the
/// response does not.
pub(crate) fn text_response(
    resp: wire::ChatCompletion,
    requested_model: &str,
) -> Result<TextResponse> {
    let usage = token_usage(resp.usage.as_ref());
    let Some(choice) = resp.choices.into_iter().next() else {
        return Err(Error::decode("the response has no choices").with_provider(PROVIDER));
    };
    Ok(TextResponse {
        id: resp.id,
        model: resp
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| requested_model.to_owned()),
        content: choice.message.and_then(|m| m.content).unwrap_or_default(),
        finish_reason: finish_reason(choice.finish_reason),
        usage,
    })
}

/// `null` and values we do not know mean the model simply stopped.
fn finish_reason(reason: Option<wire::FinishReason>) -> FinishReason {
    match reason {
        Some(wire::FinishReason::Length) => FinishReason::Length,
        Some(wire::FinishReason::ContentFilter) => FinishReason::ContentFilter,
        Some(wire::FinishReason::ToolCalls | wire::FinishReason::FunctionCall) => {
            FinishReason::ToolCalls
        }
        Some(wire::FinishReason::Stop | wire::FinishReason::Other) | None => FinishReason::Stop,
    }
}

/// OpenAI's counts already have the core's meaning: `prompt_tokens` includes the cached ones and
/// `completion_tokens` the reasoning ones. Missing counts are 0.
fn token_usage(usage: Option<&wire::Usage>) -> TokenUsage {
    let Some(usage) = usage else {
        return TokenUsage::default();
    };
    TokenUsage {
        input_tokens: usage.prompt_tokens.unwrap_or(0),
        output_tokens: usage.completion_tokens.unwrap_or(0),
        reasoning_tokens: usage
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0),
        cached_input_tokens: usage
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

/// Maps the router's chat-completion chunks onto [`TextChunk`]s.
///
/// Only `data: [DONE]` ends a stream normally: a stream that stops without it was cut off, even
/// after a `finish_reason`, because the usage chunk (and, for `n > 1`, other choices) may still
/// have been on the way.
#[derive(Debug)]
pub(crate) struct StreamDecoder {
    /// The HTTP status of the stream's response, for errors sent as events.
    status: u16,
    /// Whether a `Finish` has been emitted; a backend repeating `finish_reason` gets one.
    finished: bool,
}

impl StreamDecoder {
    pub(crate) fn new(status: u16) -> Self {
        Self {
            status,
            finished: false,
        }
    }
}

impl SseDecode for StreamDecoder {
    type Item = TextChunk;

    fn on_event(&mut self, event: SseEvent, out: &mut Vec<TextChunk>) -> Result<SseStep> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(SseStep::Done);
        }
        if data.is_empty() {
            return Ok(SseStep::Continue);
        }
        let chunk: wire::ChatCompletionChunk = serde_json::from_str(data).map_err(|e| {
            Error::decode(format!("unexpected stream event: {e}"))
                .with_provider(PROVIDER)
                .with_body(data)
        })?;
        if let Some(error) = &chunk.error {
            return Err(stream_error(self.status, error, data));
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            // The first chunk often carries only the role and an empty `content`.
            if let Some(text) = choice
                .delta
                .and_then(|d| d.content)
                .filter(|t| !t.is_empty())
            {
                out.push(TextChunk::Delta(text));
            }
            if choice.finish_reason.is_some() && !self.finished {
                self.finished = true;
                out.push(TextChunk::Finish(finish_reason(choice.finish_reason)));
            }
        }
        if let Some(usage) = &chunk.usage {
            out.push(TextChunk::Usage(token_usage(Some(usage))));
        }
        Ok(SseStep::Continue)
    }

    fn on_eof(&mut self, _out: &mut Vec<TextChunk>) -> Result<()> {
        Err(interrupted(PROVIDER, "`data: [DONE]`"))
    }
}

#[cfg(test)]
mod tests;
