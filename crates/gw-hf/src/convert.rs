//! Pure mapping between the core types and the router's OpenAI-compatible JSON: no IO here.

use std::borrow::Cow;

use gateway_core::sse::{SseDecode, SseEventRef, SseStep, interrupted};
use gateway_core::{
    Choice, EmbeddingRequest, EmbeddingResponse, Error, FinishReason, Message, Part,
    ReasoningEffort, ResponseFormat, Result, Role, TextChunk, TextRequest, TextResponse,
    TokenLogprob, TokenUsage, Tool, ToolCall, ToolChoice,
};
use serde_json::Value;

use crate::PROVIDER;
use crate::error::stream_error;
use crate::wire;

/// The most answers one request asks for (`n`): OpenAI's limit (`n`: `minimum: 1, maximum: 128`
/// in `CreateChatCompletionRequest`, <https://github.com/openai/openai-openapi>), which the
/// router's OpenAI-compatible backends follow; a backend that allows fewer answers with a 4xx.
pub(crate) const MAX_N: u32 = 128;

/// The most `top_logprobs` OpenAI takes ("an integer between 0 and 20",
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-top_logprobs>). TGI
/// backends take at most 5 (<https://huggingface.co/docs/inference-providers/tasks/chat-completion#api-specification>)
/// and answer more with a 4xx themselves.
const MAX_TOP_LOGPROBS: u32 = 20;

/// The body of `POST /v1/chat/completions` for `req`; `stream` adds `stream: true` and asks for
/// usage on the last chunk.
///
/// The model id goes out exactly as given: a `:provider` (or `:fastest`/`:cheapest`) suffix is
/// the router's business. Tools, `n`, `logprobs` and `reasoning_effort` go out in OpenAI's
/// shape, which the router passes to the backend
/// (<https://huggingface.co/docs/inference-providers/tasks/chat-completion>).
pub(crate) fn chat_request(
    req: &TextRequest,
    stream: bool,
) -> Result<wire::ChatCompletionRequest<'_>> {
    if req.model.trim().is_empty() {
        return Err(invalid("a model id is required").with_param("model"));
    }
    if req.messages.is_empty() {
        return Err(invalid("a chat request needs at least one message").with_param("messages"));
    }
    for (name, value) in [
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("presence_penalty", req.presence_penalty),
        ("frequency_penalty", req.frequency_penalty),
    ] {
        // serde_json writes NaN and infinities as `null`, which would silently drop the setting.
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(invalid(format!("`{name}` must be a finite number")).with_param(name));
        }
    }
    let n = answers(req.n, stream)?;
    let (logprobs, top_logprobs) = logprobs(req, stream)?;
    let tools = req
        .tools
        .iter()
        .enumerate()
        .map(|(i, tool)| tool_definition(tool, i))
        .collect::<Result<Vec<_>>>()?;
    let tool_choice = tool_choice(req)?;
    let messages = chat_messages(&req.messages)?;
    Ok(wire::ChatCompletionRequest {
        model: &req.model,
        messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: &req.stop,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        response_format: match &req.response_format {
            Some(format) => response_format(format)?,
            None => None,
        },
        // OpenAI answers `parallel_tool_calls` without `tools` with a 400 ("'parallel_tool_calls'
        // is only allowed when 'tools' are specified"), so without tools the setting, which then
        // means nothing, is left out.
        parallel_tool_calls: req.parallel_tool_calls.filter(|_| !tools.is_empty()),
        tools,
        tool_choice,
        n,
        logprobs,
        top_logprobs,
        reasoning_effort: req.reasoning_effort.map(ReasoningEffort::as_str),
        stream: stream.then_some(true),
        stream_options: stream.then_some(wire::StreamOptions {
            include_usage: true,
        }),
    })
}

/// `n` on the wire: left out at 1 (every backend's default; some refuse the field). A stream
/// carries one answer ([`TextChunk`] has no answer index), so it refuses more.
fn answers(n: Option<u32>, stream: bool) -> Result<Option<u32>> {
    match n {
        None | Some(1) => Ok(None),
        Some(0) => Err(invalid("`n` must be at least 1").with_param("n")),
        Some(n) if stream => Err(Error::unsupported(format!(
            "a Hugging Face stream carries one answer; `n` = {n} needs a blocking request"
        ))
        .with_provider(PROVIDER)
        .with_param("n")),
        Some(n) if n > MAX_N => {
            Err(invalid(format!("`n` must be at most {MAX_N}, got {n}")).with_param("n"))
        }
        Some(n) => Ok(Some(n)),
    }
}

/// `logprobs` and `top_logprobs` on the wire. OpenAI requires `logprobs: true` with
/// `top_logprobs` ("logprobs must be set to true if this parameter is used",
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-top_logprobs>), so
/// asking for alternatives asks for log probabilities. Streams refuse them: a [`TextChunk`] has
/// no place for them.
fn logprobs(req: &TextRequest, stream: bool) -> Result<(Option<bool>, Option<u32>)> {
    let wanted = req.logprobs || req.top_logprobs.is_some();
    if !wanted {
        return Ok((None, None));
    }
    if stream {
        let param = if req.logprobs {
            "logprobs"
        } else {
            "top_logprobs"
        };
        return Err(Error::unsupported(
            "log probabilities come with blocking Hugging Face answers only, not with streams",
        )
        .with_provider(PROVIDER)
        .with_param(param));
    }
    if let Some(top) = req.top_logprobs.filter(|&top| top > MAX_TOP_LOGPROBS) {
        return Err(invalid(format!(
            "`top_logprobs` must be between 0 and {MAX_TOP_LOGPROBS}, got {top}"
        ))
        .with_param("top_logprobs"));
    }
    Ok((Some(true), req.top_logprobs))
}

/// `tools[i]` on the wire. A tool without `parameters` gets an empty object schema, OpenAI's
/// meaning of leaving them out ("Omitting `parameters` defines a function with an empty
/// parameter list", <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools>),
/// because TGI backends require the field.
fn tool_definition(tool: &Tool, i: usize) -> Result<wire::ToolDefinition<'_>> {
    if tool.name.trim().is_empty() {
        return Err(invalid(format!("tools[{i}]: a function needs a name"))
            .with_param(format!("tools[{i}].function.name")));
    }
    let parameters = match &tool.parameters {
        None => Cow::Owned(serde_json::json!({"type": "object", "properties": {}})),
        Some(schema @ Value::Object(_)) => Cow::Borrowed(schema),
        Some(_) => {
            return Err(invalid(format!(
                "tools[{i}]: `parameters` must be a JSON Schema object"
            ))
            .with_param(format!("tools[{i}].function.parameters")));
        }
    };
    Ok(wire::ToolDefinition {
        kind: "function",
        function: wire::FunctionDefinition {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters,
            strict: tool.strict,
        },
    })
}

/// `tool_choice` on the wire. Without tools, `auto` and `none` say nothing (`none` is OpenAI's
/// default then) and are left out, because OpenAI answers `tool_choice` without `tools` with a
/// 400 ("'tool_choice' is only allowed when 'tools' are specified"); `required` or a named
/// function cannot be met then, so they are refused, as is a function not among `tools`.
fn tool_choice(req: &TextRequest) -> Result<Option<wire::ToolChoice<'_>>> {
    let Some(choice) = &req.tool_choice else {
        return Ok(None);
    };
    let mode = |mode| Ok(Some(wire::ToolChoice::Mode(mode)));
    match choice {
        ToolChoice::Auto | ToolChoice::None if req.tools.is_empty() => Ok(None),
        ToolChoice::Auto => mode("auto"),
        ToolChoice::None => mode("none"),
        ToolChoice::Required if req.tools.is_empty() => Err(invalid(
            "`tool_choice` `required` needs `tools` to choose from",
        )
        .with_param("tool_choice")),
        ToolChoice::Required => mode("required"),
        ToolChoice::Function(name) => {
            if !req.tools.iter().any(|t| &t.name == name) {
                return Err(invalid(format!(
                    "`tool_choice` names the function `{name}`, which is not among `tools`"
                ))
                .with_param("tool_choice"));
            }
            Ok(Some(wire::ToolChoice::Function {
                kind: "function",
                function: wire::NamedFunction { name },
            }))
        }
        _ => Err(Error::unsupported("this tool_choice is not supported here")
            .with_provider(PROVIDER)
            .with_param("tool_choice")),
    }
}

/// `messages` on the wire. A `tool` message must answer a call of an earlier assistant turn:
/// OpenAI answers one that does not with a 400 ("messages with role 'tool' must be a response
/// to a preceeding message with 'tool_calls'", sic); checking it here names the message before
/// any IO.
fn chat_messages(messages: &[Message]) -> Result<Vec<wire::ChatMessage<'_>>> {
    let mut calls: Vec<&str> = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        if let (Role::Tool, Some(id)) = (m.role, m.tool_call_id.as_deref())
            && !calls.contains(&id)
        {
            return Err(invalid(format!(
                "messages[{i}]: `tool_call_id` `{id}` names no tool call of an earlier assistant \
                 message"
            ))
            .with_param(format!("messages[{i}].tool_call_id")));
        }
        calls.extend(m.tool_calls.iter().map(|c| c.id.as_str()));
        out.push(chat_message(m, i)?);
    }
    Ok(out)
}

/// `messages[i]` on the wire: its text as a string when it has only text, else OpenAI's parts
/// (images by `https://` or `data:` URL with their `detail`, which the router passes to vision
/// models); an assistant turn's `tool_calls`; a tool result's `tool_call_id`.
fn chat_message(m: &Message, i: usize) -> Result<wire::ChatMessage<'_>> {
    let role = match m.role {
        Role::System => wire::Role::System,
        Role::User => wire::Role::User,
        Role::Assistant => wire::Role::Assistant,
        Role::Tool => wire::Role::Tool,
        other => {
            return Err(invalid(format!(
                "messages[{i}]: role `{}` is not supported here",
                other.as_str()
            ))
            .with_param(format!("messages[{i}].role")));
        }
    };
    if !m.tool_calls.is_empty() && role != wire::Role::Assistant {
        return Err(invalid(format!(
            "messages[{i}]: only an assistant message can carry `tool_calls`"
        ))
        .with_param(format!("messages[{i}].tool_calls")));
    }
    let tool_calls = m
        .tool_calls
        .iter()
        .enumerate()
        .map(|(k, call)| request_tool_call(call, i, k))
        .collect::<Result<Vec<_>>>()?;
    let tool_call_id = match role {
        wire::Role::Tool => Some(
            m.tool_call_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    invalid(format!(
                        "messages[{i}]: a tool message needs the `tool_call_id` it answers"
                    ))
                    .with_param(format!("messages[{i}].tool_call_id"))
                })?,
        ),
        // Only a tool message names a call; on any other message the field means nothing.
        _ => None,
    };
    let content = if m.is_text_only() {
        let text = match m.content.as_slice() {
            [Part::Text(text)] => Cow::Borrowed(text.as_str()),
            _ => Cow::Owned(m.text()),
        };
        // An assistant turn that only called tools says `null`, not "" (see `wire::ChatMessage`).
        (!text.is_empty() || tool_calls.is_empty()).then_some(wire::MessageContent::Text(text))
    } else if role == wire::Role::Tool {
        // A tool's result is text in OpenAI's format.
        let j = m
            .content
            .iter()
            .position(|p| !matches!(p, Part::Text(_)))
            .unwrap_or_default();
        return Err(Error::unsupported(format!(
            "messages[{i}].content[{j}]: a tool result is text; it takes no `{}` parts",
            m.content[j].kind()
        ))
        .with_provider(PROVIDER)
        .with_param(format!("messages[{i}].content[{j}]")));
    } else {
        Some(wire::MessageContent::Parts(content_parts(m, i)?))
    };
    Ok(wire::ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
    })
}

/// The typed parts of a message that has more than text.
fn content_parts(m: &Message, i: usize) -> Result<Vec<wire::ContentPart<'_>>> {
    let mut parts = Vec::with_capacity(m.content.len());
    for (j, part) in m.content.iter().enumerate() {
        parts.push(match part {
            Part::Text(text) => wire::ContentPart::Text { text },
            Part::Image { url, detail } => wire::ContentPart::ImageUrl {
                image_url: wire::ImageUrl {
                    url,
                    detail: detail.as_deref(),
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
    Ok(parts)
}

/// `messages[i].tool_calls[k]` on the wire, the arguments as the model wrote them (a backend
/// that rejects them says so; a model's malformed arguments must still go back as they were).
fn request_tool_call(call: &ToolCall, i: usize, k: usize) -> Result<wire::RequestToolCall<'_>> {
    let path = format!("messages[{i}].tool_calls[{k}]");
    if call.id.is_empty() {
        return Err(
            invalid(format!("{path}: a tool call needs an id")).with_param(format!("{path}.id"))
        );
    }
    if call.name.trim().is_empty() {
        return Err(
            invalid(format!("{path}: a tool call needs a function name"))
                .with_param(format!("{path}.function.name")),
        );
    }
    Ok(wire::RequestToolCall {
        id: &call.id,
        kind: "function",
        function: wire::RequestFunctionCall {
            name: &call.name,
            arguments: &call.arguments,
        },
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
fn response_format(format: &ResponseFormat) -> Result<Option<wire::ResponseFormat<'_>>> {
    Ok(match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(wire::ResponseFormat::JsonObject),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => Some(wire::ResponseFormat::JsonSchema {
            json_schema: wire::JsonSchema {
                name,
                schema,
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
///
/// Every choice (`n` > 1) becomes an answer, in `index` order (a backend that leaves `index`
/// out lists them in order); the first is the response's own, the others its `alternatives`.
/// `usage` covers them all, as OpenAI reports it.
pub(crate) fn text_response(
    resp: wire::ChatCompletion,
    requested_model: &str,
) -> Result<TextResponse> {
    let usage = token_usage(resp.usage.as_ref());
    let mut choices: Vec<(u32, wire::Choice)> = resp
        .choices
        .into_iter()
        .enumerate()
        .map(|(position, c)| (c.index.unwrap_or(position as u32), c))
        .collect();
    if choices.is_empty() {
        return Err(Error::decode("the response has no choices").with_provider(PROVIDER));
    }
    choices.sort_by_key(|(index, _)| *index);
    let mut ids = CallIds::default();
    let mut answers = choices
        .into_iter()
        .map(|(index, choice)| answer(choice, index, &mut ids))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let first = answers
        .next()
        .unwrap_or_else(|| Choice::new("", FinishReason::Stop));
    let model = resp
        .model
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| requested_model.to_owned());
    let mut response = TextResponse::new(model, first.content, first.finish_reason, usage);
    // TGI answers `"id": ""` (its recorded answers, `integration-tests/models/__snapshots__/` of
    // <https://github.com/huggingface/text-generation-inference>): no id.
    response.id = resp.id.filter(|id| !id.is_empty());
    response.tool_calls = first.tool_calls;
    response.logprobs = first.logprobs;
    response.alternatives = answers.collect();
    Ok(response)
}

/// One choice as a core answer.
fn answer(choice: wire::Choice, index: u32, ids: &mut CallIds) -> Result<Choice> {
    let (content, calls) = match choice.message {
        Some(m) => (m.content.unwrap_or_default(), m.tool_calls),
        None => (String::new(), None),
    };
    let tool_calls = calls
        .map(wire::OneOrMany::into_vec)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(k, call)| answer_tool_call(call, index, k, ids))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Choice::new(
        content,
        finish_reason(choice.finish_reason, !tool_calls.is_empty()),
    );
    out.tool_calls = tool_calls;
    out.logprobs = choice
        .logprobs
        .and_then(|l| l.content)
        .map(|tokens| tokens.into_iter().map(token_logprob).collect());
    Ok(out)
}

/// `choices[index].message.tool_calls[k]` as a core call: the arguments as JSON text whatever
/// form they came in, and an id of our own where the backend's cannot tell calls apart.
fn answer_tool_call(
    call: wire::ToolCall,
    index: u32,
    k: usize,
    ids: &mut CallIds,
) -> Result<ToolCall> {
    let function = call.function.unwrap_or_default();
    let Some(name) = function.name.filter(|n| !n.is_empty()) else {
        return Err(Error::decode(format!(
            "choices[{index}].message.tool_calls[{k}] names no function"
        ))
        .with_provider(PROVIDER));
    };
    // A call without arguments takes none: `{}` is that as JSON text.
    let arguments = match function.arguments {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(other) => arguments_text(other),
    };
    Ok(ToolCall::new(ids.assign(call.id), name, arguments))
}

/// The arguments as JSON text: a string is already that (OpenAI's form); any other value is a
/// backend's parsed arguments (TGI before 3.2 sent an object,
/// <https://github.com/huggingface/text-generation-inference/issues/2461>), written back out.
fn arguments_text(arguments: Value) -> String {
    match arguments {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The ids of one answer's (or one stream's) tool calls.
///
/// A backend's id is kept unless it cannot tell the call apart: missing or empty (sglang left
/// ids of later streamed calls out, <https://github.com/sgl-project/sglang/issues/7048>), used
/// by an earlier call of the answer, or a bare number, which TGI sends for every call
/// (`"id": "0"`, `router/src/chat.rs` of <https://github.com/huggingface/text-generation-inference>),
/// so ids would repeat across the turns of a conversation. Such a call gets a fresh id (see
/// [`new_call_id`]); the id only has to come back with the tool's result, which any backend
/// matches as given.
#[derive(Debug, Default)]
struct CallIds {
    used: Vec<String>,
}

impl CallIds {
    fn assign(&mut self, id: Option<String>) -> String {
        let id = id
            .filter(|id| usable_call_id(id) && !self.used.contains(id))
            .unwrap_or_else(new_call_id);
        self.used.push(id.clone());
        id
    }
}

fn usable_call_id(id: &str) -> bool {
    !id.trim().is_empty() && !id.bytes().all(|b| b.is_ascii_digit())
}

/// A fresh tool call id: nine letters and digits, a letter first. Nine alphanumerics is the
/// strictest form a backend asks for: Mistral models' chat templates and `mistral-common`
/// refuse any other ("Tool call id was … but must be a-z, A-Z, 0-9, with a length of 9",
/// `^[a-zA-Z0-9]{9}$` in `protocol/instruct/validator.py` of
/// <https://github.com/mistralai/mistral-common>), and the router serves such models. The
/// letters come from 64 random bits (the standard library's randomly keyed hasher, no extra
/// dependency) mixed with a process-wide counter and the time; 52 × 62⁸ ids make a repeat
/// within a conversation vanishingly unlikely.
fn new_call_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    const DIGITS: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    let mut bits = hasher.finish();
    let mut id = String::with_capacity(9);
    // The first of the 52 letters, then eight of all 62 characters.
    id.push(char::from(DIGITS[(bits % 52) as usize]));
    bits /= 52;
    for _ in 0..8 {
        id.push(char::from(DIGITS[(bits % 62) as usize]));
        bits /= 62;
    }
    id
}

/// One `logprobs.content[]` entry. A `null` log probability (JSON has no minus infinity) is a
/// token the model gave no chance.
fn token_logprob(token: wire::TokenLogprob) -> TokenLogprob {
    let mut out = TokenLogprob::new(token.token, token.logprob.unwrap_or(f64::NEG_INFINITY));
    out.top = token
        .top_logprobs
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.token, t.logprob.unwrap_or(f64::NEG_INFINITY)))
        .collect();
    out
}

/// The core finish reason. `null` and values we do not know mean the model simply stopped.
/// An answer with tool calls that stopped normally stopped to call them: `tool_calls`, also
/// where the backend says `stop` (TGI ends its calls with `stop`, its recorded answers in
/// `integration-tests/models/__snapshots__/test_tools_llama/` of
/// <https://github.com/huggingface/text-generation-inference>).
fn finish_reason(reason: Option<wire::FinishReason>, called_tools: bool) -> FinishReason {
    match reason {
        Some(wire::FinishReason::Length) => FinishReason::Length,
        Some(wire::FinishReason::ContentFilter) => FinishReason::ContentFilter,
        Some(wire::FinishReason::ToolCalls | wire::FinishReason::FunctionCall) => {
            FinishReason::ToolCalls
        }
        Some(
            wire::FinishReason::Stop
            | wire::FinishReason::EosToken
            | wire::FinishReason::StopSequence
            | wire::FinishReason::Other,
        )
        | None => {
            if called_tools {
                FinishReason::ToolCalls
            } else {
                FinishReason::Stop
            }
        }
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

/// Whether a usage object reports any count.
fn has_counts(usage: &wire::Usage) -> bool {
    usage.prompt_tokens.is_some() || usage.completion_tokens.is_some()
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

/// Maps the router's chat-completion chunks onto [`TextChunk`]s.
///
/// A stream ends normally at `data: [DONE]`, or where it has sent all an answer has: its
/// `finish_reason` and, on that chunk or a later one, its usage. Cerebras ends there without
/// `[DONE]` (its recorded stream, cited on [`wire::ChatCompletionChunk::usage`]). A stream that
/// stops before both were sent was cut off, even after a `finish_reason`, because the usage may
/// still have been on the way.
///
/// Usage is read wherever the backend puts it: a chunk's `usage` (on an empty-`choices` chunk
/// or on the one with the `finish_reason`), else Groq's `x_groq.usage`. Backends that repeat it
/// (Groq sends it on the finishing chunk and again on an empty-`choices` chunk) have it passed
/// on once per change: [`TextChunk::Usage`] is cumulative, the last one final.
///
/// Tool calls arrive in pieces (`delta.tool_calls[]`): the first piece of a call carries its
/// `id` and `function.name`, later ones more `function.arguments`
/// (<https://platform.openai.com/docs/api-reference/chat-streaming/streaming>). Backends
/// differ: TGI repeats `"id": "0"` on every piece
/// (`integration-tests/models/__snapshots__/test_tools_llama/test_flash_llama_grammar_tools_choice_stream.json`
/// of <https://github.com/huggingface/text-generation-inference>), some leave `index` or `id`
/// out, some send a call in one piece with its arguments as an object. Each call becomes
/// [`TextChunk::ToolCall`]s in the core's shape: the first with our index, its id and name,
/// later ones only more arguments.
#[derive(Debug)]
pub(crate) struct StreamDecoder {
    /// The HTTP status of the stream's response, for errors sent as events.
    status: u16,
    /// Whether a `Finish` has been emitted; a backend repeating `finish_reason` gets one.
    finished: bool,
    /// The last usage passed on, so a repeated one is not passed on again.
    usage: Option<TokenUsage>,
    /// Whether usage came with or after the `finish_reason`: the answer is then complete.
    usage_after_finish: bool,
    /// The answer's tool calls so far; a call's position is its core index.
    calls: Vec<StreamCall>,
    ids: CallIds,
    /// The shape of the last plain text chunk, to read the next one by.
    shape: Option<wire::TextShape>,
}

/// A tool call being streamed.
#[derive(Debug)]
struct StreamCall {
    /// The backend's `index`, when it sends one.
    wire_index: Option<u32>,
    /// The backend's `id`, to recognise later pieces by when there is no `index`.
    wire_id: Option<String>,
    /// The id the caller sees.
    id: String,
    name: Option<String>,
    /// Arguments held back until the name is known (the first chunk must carry it).
    pending: String,
    /// Whether the first chunk (id and name) has gone out.
    announced: bool,
    /// Whether any argument text has gone out.
    has_arguments: bool,
}

impl StreamDecoder {
    pub(crate) fn new(status: u16) -> Self {
        Self {
            status,
            finished: false,
            usage: None,
            usage_after_finish: false,
            calls: Vec::new(),
            ids: CallIds::default(),
            shape: None,
        }
    }

    /// The position of the call `piece` continues, or of a new one it starts.
    fn call_for(&mut self, piece: &wire::ToolCall) -> usize {
        let wire_id = piece.id.as_deref().filter(|id| !id.is_empty());
        let name = piece
            .function
            .as_ref()
            .and_then(|f| f.name.as_deref())
            .filter(|n| !n.is_empty());
        let found = match piece.index {
            // The latest call at that index, unless the piece names another call (a new id
            // with a name): a backend that numbers every call 0.
            Some(index) => self
                .calls
                .iter()
                .rposition(|c| c.wire_index == Some(index))
                .filter(|&at| {
                    let other = self.calls[at].wire_id.as_deref();
                    name.is_none() || wire_id.is_none() || other.is_none() || other == wire_id
                }),
            None => match wire_id {
                Some(id) => self
                    .calls
                    .iter()
                    .position(|c| c.wire_id.as_deref() == Some(id)),
                // Neither index nor id: a name different from the last call's (once it has
                // one) starts a call, anything else continues the last one.
                None => self.calls.len().checked_sub(1).filter(|&last| {
                    let named = self.calls[last].name.as_deref();
                    name.is_none() || named.is_none() || named == name
                }),
            },
        };
        found.unwrap_or_else(|| {
            self.calls.push(StreamCall {
                wire_index: piece.index,
                wire_id: wire_id.map(str::to_owned),
                id: self.ids.assign(wire_id.map(str::to_owned)),
                name: None,
                pending: String::new(),
                announced: false,
                has_arguments: false,
            });
            self.calls.len() - 1
        })
    }

    /// Adds one piece of a tool call, emitting what can go out.
    fn on_tool_call(&mut self, piece: wire::ToolCall, out: &mut Vec<TextChunk>) {
        let at = self.call_for(&piece);
        let function = piece.function.unwrap_or_default();
        let call = &mut self.calls[at];
        if call.name.is_none() {
            call.name = function.name.filter(|n| !n.is_empty());
        }
        if let Some(arguments) = function.arguments {
            call.pending.push_str(&arguments_text(arguments));
        }
        let index = at as u32;
        if !call.announced {
            let Some(name) = call.name.clone() else {
                return;
            };
            call.announced = true;
            call.has_arguments = !call.pending.is_empty();
            out.push(TextChunk::ToolCall {
                index,
                id: Some(call.id.clone()),
                name: Some(name),
                arguments: std::mem::take(&mut call.pending),
            });
        } else if !call.pending.is_empty() {
            call.has_arguments = true;
            out.push(TextChunk::ToolCall {
                index,
                id: None,
                name: None,
                arguments: std::mem::take(&mut call.pending),
            });
        }
    }

    /// At the end of the answer: a call whose function was never named cannot be reported,
    /// and a call that got no arguments takes none (`{}`, as in a blocking answer).
    fn close_calls(&mut self, out: &mut Vec<TextChunk>) -> Result<()> {
        for (at, call) in self.calls.iter_mut().enumerate() {
            if !call.announced {
                return Err(Error::decode(format!(
                    "streamed tool call {at} never named its function"
                ))
                .with_provider(PROVIDER));
            }
            if !call.has_arguments {
                call.has_arguments = true;
                out.push(TextChunk::ToolCall {
                    index: at as u32,
                    id: None,
                    name: None,
                    arguments: "{}".to_owned(),
                });
            }
        }
        Ok(())
    }
}

impl SseDecode for StreamDecoder {
    type Item = TextChunk;

    fn on_event(&mut self, event: SseEventRef<'_>, out: &mut Vec<TextChunk>) -> Result<SseStep> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.close_calls(out)?;
            // TGI streams a tool call without any `finish_reason` (its recorded stream, see
            // above): the calls were the answer.
            if !self.finished && !self.calls.is_empty() {
                self.finished = true;
                out.push(TextChunk::Finish(FinishReason::ToolCalls));
            }
            return Ok(SseStep::Done);
        }
        if data.is_empty() {
            return Ok(SseStep::Continue);
        }
        // Most of a stream: a chunk that repeats the last text chunk's shape with another text
        // (nothing but a piece of text of the first answer). Its text is all there is to it,
        // taken without building the chunk (its choices' vector, its empty fields).
        if let Some(shape) = self.shape.as_ref().filter(|s| s.is_first_answer())
            && let Some(text) = shape.text(data)
        {
            if !text.is_empty() {
                out.push(TextChunk::Delta(text.into_owned()));
            }
            return Ok(SseStep::Continue);
        }
        // Read by comparing bytes when the chunk repeats the shape of another answer's text
        // chunk, else by hand, else (anything but the plain shapes) by serde_json.
        let repeated = (self.shape.as_ref())
            .filter(|shape| !shape.is_first_answer())
            .and_then(|shape| shape.chunk(data));
        let chunk = match repeated {
            Some(chunk) => chunk,
            None => match wire::ChatCompletionChunk::scan(data) {
                Some((chunk, shape)) => {
                    self.shape = shape;
                    chunk
                }
                None => serde_json::from_str(data).map_err(|e| {
                    Error::decode(format!("unexpected stream event: {e}"))
                        .with_provider(PROVIDER)
                        .with_body(data)
                })?,
            },
        };
        if let Some(error) = &chunk.error {
            return Err(stream_error(self.status, error, data));
        }
        // The request asks for one answer (`chat_request` refuses `n` > 1 on streams); a
        // backend that sends more anyway has its other answers ignored rather than mixed in.
        if let Some(choice) = chunk
            .choices
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0)
        {
            if let Some(delta) = choice.delta {
                // The first chunk often carries only the role and an empty `content`.
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push(TextChunk::Delta(text));
                }
                for piece in delta
                    .tool_calls
                    .map(wire::OneOrMany::into_vec)
                    .unwrap_or_default()
                {
                    self.on_tool_call(piece, out);
                }
            }
            if choice.finish_reason.is_some() && !self.finished {
                self.close_calls(out)?;
                self.finished = true;
                out.push(TextChunk::Finish(finish_reason(
                    choice.finish_reason,
                    !self.calls.is_empty(),
                )));
            }
        }
        // The top-level `usage` where a chunk has it, else Groq's (see `wire::XGroq`). A usage
        // object without counts (some backends send one) says nothing.
        let usage = chunk
            .usage
            .filter(has_counts)
            .or_else(|| chunk.x_groq.and_then(|x| x.usage).filter(has_counts));
        if let Some(usage) = usage {
            let usage = token_usage(Some(&usage));
            if self.usage != Some(usage) {
                self.usage = Some(usage);
                out.push(TextChunk::Usage(usage));
            }
            self.usage_after_finish |= self.finished;
        }
        Ok(SseStep::Continue)
    }

    fn on_eof(&mut self, _out: &mut Vec<TextChunk>) -> Result<()> {
        if self.finished && self.usage_after_finish {
            return Ok(());
        }
        Err(interrupted(
            PROVIDER,
            "`data: [DONE]` (or its finish_reason and usage)",
        ))
    }
}

#[cfg(test)]
mod tests;
