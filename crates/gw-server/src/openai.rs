//! OpenAI chat-completions wire types, as OpenAI's API reference and official SDKs name them
//! (https://platform.openai.com/docs/api-reference/chat/create), and their mapping to the core.
//!
//! Every field of OpenAI's request is either mapped or refused by name, never dropped; a field
//! OpenAI does not have is refused too (`fallbacks` is the gateway's one extension). Answers
//! carry what OpenAI's do, so clients that append the answer's message to the conversation
//! send back fields (`refusal`, `annotations`) that are accepted here.

use std::collections::{BTreeMap, HashSet};

use llm_gateway::json::ObjectWriter;
use llm_gateway::{
    FinishReason, Message, Part, ReasoningEffort, RequestTags, ResponseFormat, Role, TextRequest,
    TokenLogprob, TokenUsage, Tool, ToolCall, ToolChoice,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

mod by_hand;

/// The most answers one request may ask for (OpenAI's bound on `n`).
const MAX_N: u32 = 128;
/// The most alternatives per token (OpenAI's bound on `top_logprobs`).
const MAX_TOP_LOGPROBS: u32 = 20;
/// OpenAI's bounds on `metadata`: 16 pairs, keys of 64 characters, values of 512.
const MAX_METADATA: usize = 16;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;
/// The longest end-user id kept (`user`, `safety_identifier`).
const MAX_END_USER: usize = 256;
/// The longest function name OpenAI takes.
const MAX_FUNCTION_NAME: usize = 64;

/// `POST /v1/chat/completions` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChatCompletionRequest {
    pub(crate) model: String,
    pub(crate) messages: Vec<ChatMessage>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stop: Option<Stop>,
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    response_format: Option<WireResponseFormat>,
    pub(crate) stream: Option<bool>,
    pub(crate) stream_options: Option<StreamOptions>,
    n: Option<u32>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    logprobs: Option<bool>,
    top_logprobs: Option<u32>,
    reasoning_effort: Option<String>,
    user: Option<String>,
    safety_identifier: Option<String>,
    metadata: Option<Map<String, Value>>,
    /// Hints for OpenAI's prompt cache; they change no answer, so they are accepted and unused.
    #[allow(dead_code)]
    prompt_cache_key: Option<String>,
    #[allow(dead_code)]
    prompt_cache_retention: Option<String>,
    /// `auto` and `default` are what every route gives; other tiers are refused.
    service_tier: Option<String>,
    /// `false` is what the gateway does (it keeps usage, not completions); `true` is refused.
    store: Option<bool>,
    // OpenAI fields no provider here can honour: refused by name when set.
    functions: Option<Value>,
    function_call: Option<Value>,
    logit_bias: Option<Map<String, Value>>,
    modalities: Option<Vec<String>>,
    audio: Option<Value>,
    prediction: Option<Value>,
    verbosity: Option<String>,
    web_search_options: Option<Value>,
    /// A gateway extension: routes (or aliases) to try, in order, when `model`'s fail.
    #[serde(default)]
    pub(crate) fallbacks: Vec<String>,
}

/// One message of the conversation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChatMessage {
    role: String,
    content: Option<Content>,
    /// A participant name; no provider here takes one, and it changes no answer's meaning.
    #[allow(dead_code)]
    name: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
    tool_call_id: Option<String>,
    /// An earlier refusal of the model, sent back as its text.
    refusal: Option<String>,
    /// Citations OpenAI attached to an earlier answer: informational, not sent on.
    #[allow(dead_code)]
    annotations: Option<Value>,
    audio: Option<Value>,
    function_call: Option<Value>,
}

/// A message's `content`: a string, or an array of parts.
#[derive(Debug)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

// Read by the JSON value's own type rather than as an untagged enum, which buffers the whole
// value and then tries each variant on the copy (an allocation and a second pass for every
// message), and which names no field when neither fits: here a part that is wrong is named
// (`messages[0].content[1].image_url: missing field `url``).
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringOr {
            expected: "a string or an array of content parts",
            text: Content::Text,
            array: Content::Parts,
        })
    }
}

/// Reads a field that is a string or an array of `T` by the value's own type, making `F` of
/// either form: `Content` and `Stop`.
struct StringOr<T, F> {
    expected: &'static str,
    text: fn(String) -> F,
    array: fn(Vec<T>) -> F,
}

impl<'de, T: Deserialize<'de>, F> serde::de::Visitor<'de> for StringOr<T, F> {
    type Value = F;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<F, E> {
        Ok((self.text)(text.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<F, E> {
        Ok((self.text)(text))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<F, A::Error> {
        Vec::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(self.array)
    }
}

/// One part of a message's content: `text`, `image_url`, `input_audio` (or `refusal`, in an
/// earlier answer).
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-messages>
#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    refusal: Option<String>,
    image_url: Option<ImageUrl>,
    input_audio: Option<InputAudio>,
}

#[derive(Debug, Deserialize)]
struct ImageUrl {
    url: String,
    detail: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InputAudio {
    data: String,
    format: String,
}

/// A tool the model may call: `{"type": "function", "function": {...}}`.
#[derive(Debug, Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    function: Option<FunctionDefinition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionDefinition {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

/// A tool call of an earlier assistant turn, as the answer gave it (`index` comes along when a
/// client assembled the call from stream deltas).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireToolCall {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    function: Option<WireFunctionCall>,
    #[allow(dead_code)]
    index: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFunctionCall {
    name: String,
    /// JSON text, as OpenAI sends it; some clients send the object itself.
    arguments: Option<Value>,
}

/// `stop`: one sequence, or several.
#[derive(Debug)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Stop {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringOr {
            expected: "a string or an array of strings",
            text: Stop::One,
            array: Stop::Many,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchema },
}

#[derive(Debug, Deserialize)]
struct JsonSchema {
    name: String,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

/// `stream_options`: `include_usage` is honoured; `include_obfuscation` (random padding against
/// length side channels) has nothing to pad here and is accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamOptions {
    pub(crate) include_usage: Option<bool>,
    #[allow(dead_code)]
    include_obfuscation: Option<bool>,
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Some(param.into()), message)
}

impl ChatCompletionRequest {
    /// The core request, or a 400 naming the field the gateway cannot honour. The messages
    /// and `stop` are moved into it rather than copied (a conversation's text, an image's
    /// `data:` URL, can be megabytes): the body is left with no messages, its other fields
    /// (the model, the fallbacks, the tags) as they were.
    pub(crate) fn take_core(&mut self) -> Result<TextRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(invalid("model", "`model` must not be empty"));
        }
        if self.messages.is_empty() {
            return Err(invalid("messages", "`messages` must not be empty"));
        }
        self.refuse_unsupported()?;
        let mut req = TextRequest::new(self.model.clone());
        req.messages.reserve_exact(self.messages.len());
        for (i, m) in std::mem::take(&mut self.messages).into_iter().enumerate() {
            req.messages.push(m.into_core(i)?);
        }
        check_tool_results(&req.messages)?;
        self.check_sampling()?;
        req.temperature = self.temperature;
        req.top_p = self.top_p;
        req.max_tokens = self.max_completion_tokens.or(self.max_tokens);
        req.stop = match self.stop.take() {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        };
        req.seed = self.seed;
        req.presence_penalty = self.presence_penalty;
        req.frequency_penalty = self.frequency_penalty;
        req.response_format = self.response_format()?;
        req.n = self.answers()?;
        (req.logprobs, req.top_logprobs) = self.logprobs()?;
        req.reasoning_effort = match &self.reasoning_effort {
            None => None,
            Some(name) => Some(ReasoningEffort::parse(name).ok_or_else(|| {
                invalid(
                    "reasoning_effort",
                    format!(
                        "`reasoning_effort` must be none, minimal, low, medium or high, not `{name}`"
                    ),
                )
            })?),
        };
        req.tools = self.tools()?;
        req.tool_choice = self.tool_choice(&req.tools)?;
        req.parallel_tool_calls = self.parallel_tool_calls;
        Ok(req)
    }

    /// The end user and tags the usage log keeps, or a 400 naming what breaks OpenAI's bounds.
    pub(crate) fn tags(&self) -> Result<RequestTags, ApiError> {
        let end_user = match (&self.user, &self.safety_identifier) {
            (Some(user), _) => Some(("user", user)),
            (None, Some(id)) => Some(("safety_identifier", id)),
            (None, None) => None,
        };
        if let Some((field, id)) = end_user {
            check_end_user(field, id)?;
        }
        let mut metadata = BTreeMap::new();
        let pairs = self.metadata.iter().flatten();
        if self
            .metadata
            .as_ref()
            .is_some_and(|m| m.len() > MAX_METADATA)
        {
            return Err(invalid(
                "metadata",
                format!("`metadata` takes at most {MAX_METADATA} pairs"),
            ));
        }
        for (key, value) in pairs {
            let at = format!("metadata.{key}");
            if key.is_empty() || key.chars().count() > MAX_METADATA_KEY {
                return Err(invalid(
                    at,
                    format!("a `metadata` key has 1 to {MAX_METADATA_KEY} characters"),
                ));
            }
            let Value::String(value) = value else {
                return Err(invalid(at, "`metadata` values are strings"));
            };
            if value.chars().count() > MAX_METADATA_VALUE {
                return Err(invalid(
                    at,
                    format!("a `metadata` value has at most {MAX_METADATA_VALUE} characters"),
                ));
            }
            metadata.insert(key.clone(), value.clone());
        }
        Ok(RequestTags {
            end_user: end_user.map(|(_, id)| id.clone()),
            metadata,
        })
    }

    /// Refuses, by name, the OpenAI fields no provider here can honour.
    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        let refuse = |field: &str, why: &str| Err(invalid(field, format!("`{field}` {why}")));
        if self.functions.as_ref().is_some_and(|v| !v.is_null()) {
            return refuse("functions", "is deprecated and not supported: use `tools`");
        }
        if self.function_call.as_ref().is_some_and(|v| !v.is_null()) {
            return refuse(
                "function_call",
                "is deprecated and not supported: use `tool_choice`",
            );
        }
        if self.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
            return refuse(
                "logit_bias",
                "is not supported by any provider of this gateway",
            );
        }
        if let Some(m) = self
            .modalities
            .iter()
            .flatten()
            .find(|m| m.as_str() != "text")
        {
            return Err(invalid(
                "modalities",
                format!(
                    "output modality `{m}` is not supported in chat (text only; speech is \
                     `/v1/audio/speech`)"
                ),
            ));
        }
        if self.audio.as_ref().is_some_and(|v| !v.is_null()) {
            return refuse("audio", "(audio output) is not supported in chat");
        }
        if self.prediction.as_ref().is_some_and(|v| !v.is_null()) {
            return refuse("prediction", "(predicted outputs) is not supported");
        }
        if self.verbosity.is_some() {
            return refuse(
                "verbosity",
                "is not supported by any provider of this gateway",
            );
        }
        if self
            .web_search_options
            .as_ref()
            .is_some_and(|v| !v.is_null())
        {
            return refuse(
                "web_search_options",
                "is not supported in chat: search with `POST /v1/search`",
            );
        }
        if let Some(tier) = &self.service_tier
            && !matches!(tier.as_str(), "auto" | "default")
        {
            return Err(invalid(
                "service_tier",
                format!("service tier `{tier}` is not offered (auto, default)"),
            ));
        }
        if self.store == Some(true) {
            return refuse(
                "store",
                "is not supported: the gateway keeps usage, not completions",
            );
        }
        Ok(())
    }

    fn response_format(&self) -> Result<Option<ResponseFormat>, ApiError> {
        Ok(match &self.response_format {
            None | Some(WireResponseFormat::Text) => None,
            Some(WireResponseFormat::JsonObject) => Some(ResponseFormat::JsonObject),
            Some(WireResponseFormat::JsonSchema { json_schema }) => {
                let schema = json_schema.schema.clone().ok_or_else(|| {
                    invalid(
                        "response_format.json_schema.schema",
                        "`response_format.json_schema.schema` is required",
                    )
                })?;
                Some(ResponseFormat::JsonSchema {
                    name: json_schema.name.clone(),
                    schema,
                    strict: json_schema.strict,
                })
            }
        })
    }

    /// The sampling numbers within OpenAI's bounds: `temperature` 0 to 2, `top_p` 0 to 1, the two
    /// penalties -2 to 2 (<https://platform.openai.com/docs/api-reference/chat/create>). Out of
    /// them OpenAI answers 400; passed on, a provider might clamp them silently or fail with a
    /// message about its own parameters, so they are refused here, by name.
    fn check_sampling(&self) -> Result<(), ApiError> {
        for (name, value, low, high) in [
            ("temperature", self.temperature, 0.0, 2.0),
            ("top_p", self.top_p, 0.0, 1.0),
            ("presence_penalty", self.presence_penalty, -2.0, 2.0),
            ("frequency_penalty", self.frequency_penalty, -2.0, 2.0),
        ] {
            if value.is_some_and(|v| !(low..=high).contains(&v)) {
                return Err(invalid(
                    name,
                    format!("`{name}` must be from {low} to {high}"),
                ));
            }
        }
        Ok(())
    }

    /// `n`: 1 to 128, and 1 when streaming (chunks of several answers are not interleaved).
    fn answers(&self) -> Result<Option<u32>, ApiError> {
        match self.n {
            None | Some(1) => Ok(None),
            Some(n) if n == 0 || n > MAX_N => {
                Err(invalid("n", format!("`n` must be from 1 to {MAX_N}")))
            }
            Some(_) if self.wants_stream() => Err(invalid(
                "n",
                "`n` above 1 is not supported with `stream: true`",
            )),
            Some(n) => Ok(Some(n)),
        }
    }

    /// `logprobs` and `top_logprobs` (0 to 20, and only with `logprobs: true`); not on streams,
    /// whose chunks carry text only.
    fn logprobs(&self) -> Result<(bool, Option<u32>), ApiError> {
        let on = self.logprobs == Some(true);
        if let Some(k) = self.top_logprobs {
            if !on {
                return Err(invalid(
                    "top_logprobs",
                    "`top_logprobs` needs `logprobs: true`",
                ));
            }
            if k > MAX_TOP_LOGPROBS {
                return Err(invalid(
                    "top_logprobs",
                    format!("`top_logprobs` must be from 0 to {MAX_TOP_LOGPROBS}"),
                ));
            }
        }
        if on && self.wants_stream() {
            return Err(invalid(
                "logprobs",
                "`logprobs` are returned on answers that are not streamed only",
            ));
        }
        Ok((on, self.top_logprobs.filter(|_| on)))
    }

    fn tools(&self) -> Result<Vec<Tool>, ApiError> {
        let mut tools: Vec<Tool> = Vec::new();
        for (i, tool) in self.tools.iter().flatten().enumerate() {
            if tool.kind != "function" {
                return Err(invalid(
                    format!("tools[{i}].type"),
                    format!(
                        "tool type `{}` is not supported (only `function`)",
                        tool.kind
                    ),
                ));
            }
            let f = tool.function.as_ref().ok_or_else(|| {
                invalid(
                    format!("tools[{i}].function"),
                    "a `function` tool needs `function`",
                )
            })?;
            check_function_name(&f.name, &format!("tools[{i}].function.name"))?;
            if tools.iter().any(|t| t.name == f.name) {
                return Err(invalid(
                    format!("tools[{i}].function.name"),
                    format!("two tools are named `{}`", f.name),
                ));
            }
            if let Some(p) = &f.parameters
                && !p.is_object()
            {
                return Err(invalid(
                    format!("tools[{i}].function.parameters"),
                    "`parameters` must be a JSON Schema object",
                ));
            }
            let mut core = Tool::function(f.name.clone(), Value::Null);
            core.parameters = f.parameters.clone();
            core.description = f.description.clone();
            core.strict = f.strict;
            tools.push(core);
        }
        Ok(tools)
    }

    /// `tool_choice`: `auto`, `none`, `required` or `{"type": "function", "function": {"name"}}`
    /// naming one of `tools`.
    fn tool_choice(&self, tools: &[Tool]) -> Result<Option<ToolChoice>, ApiError> {
        let Some(choice) = self.tool_choice.as_ref().filter(|c| !c.is_null()) else {
            return Ok(None);
        };
        let choice = match choice {
            Value::String(mode) => match mode.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                other => {
                    return Err(invalid(
                        "tool_choice",
                        format!(
                            "`tool_choice` must be auto, none, required or a function, not \
                             `{other}`"
                        ),
                    ));
                }
            },
            Value::Object(named) => {
                match named.get("type").and_then(Value::as_str) {
                    Some("function") => {}
                    other => {
                        return Err(invalid(
                            "tool_choice.type",
                            format!(
                                "tool_choice type `{}` is not supported (only `function`)",
                                other.unwrap_or("")
                            ),
                        ));
                    }
                }
                let name = named
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid("tool_choice.function.name", "name the function to call")
                    })?;
                if !tools.iter().any(|t| t.name == name) {
                    return Err(invalid(
                        "tool_choice.function.name",
                        format!("`{name}` is not one of `tools`"),
                    ));
                }
                ToolChoice::Function(name.to_owned())
            }
            _ => {
                return Err(invalid(
                    "tool_choice",
                    "`tool_choice` must be a string or an object",
                ));
            }
        };
        if tools.is_empty() && matches!(choice, ToolChoice::Required) {
            return Err(invalid(
                "tool_choice",
                "`tool_choice: required` needs `tools`",
            ));
        }
        Ok(Some(choice))
    }

    pub(crate) fn wants_stream(&self) -> bool {
        self.stream == Some(true)
    }

    pub(crate) fn wants_stream_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// An end-user id (`user`, `safety_identifier`) of at most 256 characters.
pub(crate) fn check_end_user(field: &str, id: &str) -> Result<(), ApiError> {
    if id.chars().count() > MAX_END_USER {
        return Err(invalid(
            field,
            format!("`{field}` is longer than {MAX_END_USER} characters"),
        ));
    }
    Ok(())
}

/// The tags of a request that names only its end user (`user` of embeddings and search).
pub(crate) fn end_user_tags(user: Option<&String>) -> Result<RequestTags, ApiError> {
    if let Some(id) = user {
        check_end_user("user", id)?;
    }
    Ok(RequestTags {
        end_user: user.cloned(),
        metadata: BTreeMap::new(),
    })
}

/// OpenAI's rule for function names: 1 to 64 of `a-z`, `A-Z`, `0-9`, `_` and `-`.
fn check_function_name(name: &str, at: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FUNCTION_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            at,
            format!(
                "function name `{name}` must be 1 to {MAX_FUNCTION_NAME} letters, digits, `_` \
                 or `-`"
            ),
        ))
    }
}

/// Every tool message answers a call of an earlier assistant turn, as OpenAI requires: a
/// provider needs the call to send the result (Gemini names the function in it).
fn check_tool_results(messages: &[Message]) -> Result<(), ApiError> {
    let mut calls: HashSet<&str> = HashSet::new();
    for (i, m) in messages.iter().enumerate() {
        calls.extend(m.tool_calls.iter().map(|c| c.id.as_str()));
        if let Some(id) = m.tool_call_id.as_deref()
            && !calls.contains(id)
        {
            return Err(invalid(
                format!("messages[{i}].tool_call_id"),
                format!("no earlier assistant message called a tool with id `{id}`"),
            ));
        }
    }
    Ok(())
}

impl ChatMessage {
    fn into_core(self, i: usize) -> Result<Message, ApiError> {
        let at = |field: &str| format!("messages[{i}].{field}");
        let role = match self.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(invalid(
                    at("role"),
                    format!(
                        "role `{other}` is not supported (use system, developer, user, assistant \
                         or tool)"
                    ),
                ));
            }
        };
        if self.function_call.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                at("function_call"),
                "`function_call` is deprecated and not supported: use `tool_calls`",
            ));
        }
        if self.audio.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                at("audio"),
                "earlier audio answers are not supported",
            ));
        }
        let has_content = self.content.is_some();
        let has_refusal = self.refusal.is_some();
        let mut parts = match self.content {
            Some(Content::Text(t)) => vec![Part::Text(t)],
            Some(Content::Parts(parts)) => parts
                .into_iter()
                .enumerate()
                .map(|(j, part)| part.into_core(i, j))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        if let Some(refusal) = self.refusal {
            parts.push(Part::Text(refusal));
        }
        let calls = match self.tool_calls {
            Some(calls) if role != Role::Assistant && !calls.is_empty() => {
                return Err(invalid(
                    at("tool_calls"),
                    "only assistant messages have `tool_calls`",
                ));
            }
            Some(calls) => calls
                .into_iter()
                .enumerate()
                .map(|(k, c)| c.into_core(&at(&format!("tool_calls[{k}]"))))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        match role {
            Role::Tool => {
                let id = self.tool_call_id.ok_or_else(|| {
                    invalid(at("tool_call_id"), "a tool message needs `tool_call_id`")
                })?;
                if let Some(j) = parts.iter().position(|p| !matches!(p, Part::Text(_))) {
                    return Err(invalid(
                        format!("messages[{i}].content[{j}]"),
                        "a tool result is text",
                    ));
                }
                let text = Message::with_parts(Role::Tool, parts).text();
                Ok(Message::tool_result(id, text))
            }
            _ if self.tool_call_id.is_some() => Err(invalid(
                at("tool_call_id"),
                "only tool messages have `tool_call_id`",
            )),
            _ if !has_content && calls.is_empty() && !has_refusal => {
                Err(invalid(at("content"), "`content` is required"))
            }
            Role::Assistant if !calls.is_empty() => {
                let mut message = Message::assistant_calls("", calls);
                message.content = parts;
                Ok(message)
            }
            _ => Ok(Message::with_parts(role, parts)),
        }
    }
}

impl WireToolCall {
    /// The core call of `messages[i].tool_calls[k]` (`at`).
    fn into_core(self, at: &str) -> Result<ToolCall, ApiError> {
        if let Some(kind) = self.kind.as_deref().filter(|k| *k != "function") {
            return Err(invalid(
                format!("{at}.type"),
                format!("tool call type `{kind}` is not supported (only `function`)"),
            ));
        }
        let id = self
            .id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid(format!("{at}.id"), "a tool call needs its `id`"))?;
        let function = self
            .function
            .ok_or_else(|| invalid(format!("{at}.function"), "a tool call needs `function`"))?;
        let arguments = match function.arguments {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(Value::String(text)) => text,
            Some(object @ Value::Object(_)) => object.to_string(),
            Some(_) => {
                return Err(invalid(
                    format!("{at}.function.arguments"),
                    "`arguments` is JSON text",
                ));
            }
        };
        Ok(ToolCall::new(id, function.name, arguments))
    }
}

impl ContentPart {
    /// The core part of `messages[i].content[j]`; a 400 naming it when a field it needs is
    /// missing or its type is unknown.
    fn into_core(self, i: usize, j: usize) -> Result<Part, ApiError> {
        let at = format!("messages[{i}].content[{j}]");
        let missing = |field: &str| {
            invalid(
                format!("{at}.{field}"),
                format!("a `{}` part needs `{field}`", self.kind),
            )
        };
        match self.kind.as_str() {
            "text" => Ok(Part::Text(self.text.ok_or_else(|| missing("text"))?)),
            "refusal" => Ok(Part::Text(self.refusal.ok_or_else(|| missing("refusal"))?)),
            "image_url" => {
                let image = self.image_url.ok_or_else(|| missing("image_url"))?;
                Ok(Part::Image {
                    url: image.url,
                    detail: image.detail,
                })
            }
            "input_audio" => {
                let audio = self.input_audio.ok_or_else(|| missing("input_audio"))?;
                Ok(Part::Audio {
                    data: audio.data,
                    format: audio.format,
                })
            }
            other => Err(invalid(
                at,
                format!(
                    "content part type `{other}` is not supported (text, image_url, input_audio)"
                ),
            )),
        }
    }
}

/// OpenAI's `usage` object, with the gateway's reasoning and cache details always present.
#[derive(Debug, Serialize)]
pub(crate) struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
    /// The exact cost in USD as a decimal string, when the price is known (a gateway extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<String>,
}

#[derive(Debug, Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Debug, Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl Usage {
    pub(crate) fn new(u: &TokenUsage, cost_usd: Option<String>) -> Self {
        Self {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.total_tokens(),
            prompt_tokens_details: PromptDetails {
                cached_tokens: u.cached_input_tokens,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: u.reasoning_tokens,
            },
            cost_usd,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletion<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<Choice<'a>>,
    pub(crate) usage: Usage,
}

// The answer as JSON, written field by field (`ObjectWriter`): the same bytes as its
// `Serialize` (held to by a test), without serde's work per key. Texts are escaped by
// `write_str`; numbers, tool calls and log probabilities go through serde_json.
impl ChatCompletion<'_> {
    /// Appends the answer's JSON to `out`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        ObjectWriter::new(out)
            .str("id", self.id)
            .str("object", self.object)
            .field("created", &self.created)?
            .str("model", self.model)
            .objects("choices", &self.choices, |o, choice| choice.write_fields(o))?
            .object("usage", |o| self.usage.write_fields(o))?
            .end();
        Ok(())
    }
}

impl Choice<'_> {
    fn write_fields(&self, o: &mut ObjectWriter<'_>) -> serde_json::Result<()> {
        let message = &self.message;
        o.field("index", &self.index)?
            .object("message", |m| {
                m.str("role", message.role)
                    .opt_str("content", message.content)
                    .opt_str("refusal", message.refusal);
                if !message.tool_calls.is_empty() {
                    m.field("tool_calls", &message.tool_calls)?;
                }
                Ok(())
            })?
            .field("logprobs", &self.logprobs)?
            .str("finish_reason", self.finish_reason);
        Ok(())
    }
}

impl Usage {
    fn write_fields(&self, o: &mut ObjectWriter<'_>) -> serde_json::Result<()> {
        let (prompt, completion) = (&self.prompt_tokens_details, &self.completion_tokens_details);
        o.field("prompt_tokens", &self.prompt_tokens)?
            .field("completion_tokens", &self.completion_tokens)?
            .field("total_tokens", &self.total_tokens)?
            .object("prompt_tokens_details", |d| {
                d.field("cached_tokens", &prompt.cached_tokens)?;
                Ok(())
            })?
            .object("completion_tokens_details", |d| {
                d.field("reasoning_tokens", &completion.reasoning_tokens)?;
                Ok(())
            })?;
        if let Some(cost) = &self.cost_usd {
            o.field("cost_usd", cost)?;
        }
        Ok(())
    }
}

/// One answer: `message`, its `logprobs` (null unless asked for) and why it ended.
#[derive(Debug, Serialize)]
pub(crate) struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<Logprobs<'a>>,
    finish_reason: &'static str,
}

impl<'a> Choice<'a> {
    /// Every answer of `answer`, the first one first, borrowed.
    pub(crate) fn all(answer: &'a llm_gateway::TextResponse) -> Vec<Self> {
        let first = Self::new(
            0,
            &answer.content,
            answer.finish_reason,
            &answer.tool_calls,
            answer.logprobs.as_deref(),
        );
        let others = (1..).zip(&answer.alternatives).map(|(i, c)| {
            Self::new(
                i,
                &c.content,
                c.finish_reason,
                &c.tool_calls,
                c.logprobs.as_deref(),
            )
        });
        std::iter::once(first).chain(others).collect()
    }

    fn new(
        index: u32,
        content: &'a str,
        finish_reason: FinishReason,
        calls: &'a [ToolCall],
        logprobs: Option<&'a [TokenLogprob]>,
    ) -> Self {
        Self {
            index,
            message: AssistantMessage {
                role: "assistant",
                // OpenAI's `content` is null for an answer that only called tools.
                content: (calls.is_empty() || !content.is_empty()).then_some(content),
                refusal: None,
                tool_calls: calls.iter().map(ToolCallOut::new).collect(),
            },
            logprobs: logprobs.map(|tokens| Logprobs {
                content: tokens.iter().map(LogprobOut::new).collect(),
            }),
            finish_reason: finish_reason.as_str(),
        }
    }
}

#[derive(Debug, Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

/// A tool call of an answer: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Debug, Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

impl<'a> ToolCallOut<'a> {
    fn new(call: &'a ToolCall) -> Self {
        Self {
            id: &call.id,
            kind: "function",
            function: FunctionOut {
                name: &call.name,
                arguments: &call.arguments,
            },
        }
    }
}

/// `logprobs`: `{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}`.
#[derive(Debug, Serialize)]
struct Logprobs<'a> {
    content: Vec<LogprobOut<'a>>,
}

#[derive(Debug, Serialize)]
struct LogprobOut<'a> {
    token: &'a str,
    logprob: f64,
    bytes: &'a [u8],
    top_logprobs: Vec<TopLogprob<'a>>,
}

#[derive(Debug, Serialize)]
struct TopLogprob<'a> {
    token: &'a str,
    logprob: f64,
    bytes: &'a [u8],
}

impl<'a> LogprobOut<'a> {
    fn new(t: &'a TokenLogprob) -> Self {
        Self {
            token: &t.token,
            logprob: t.logprob,
            bytes: t.token.as_bytes(),
            top_logprobs: t
                .top
                .iter()
                .map(|(token, logprob)| TopLogprob {
                    token,
                    logprob: *logprob,
                    bytes: token.as_bytes(),
                })
                .collect(),
        }
    }
}

/// One `chat.completion.chunk`: the shape the stream's hand-written chunks (`chunk_head`,
/// [`ChunkChoice::write_json`], [`Usage::write_json`]) are held to, byte for byte, by tests.
#[cfg(test)]
#[derive(Debug, Serialize)]
pub(crate) struct ChatChunk<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) usage: Option<Usage>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChunkChoice<'a> {
    pub(crate) index: u32,
    pub(crate) delta: Delta<'a>,
    pub(crate) finish_reason: Option<&'static str>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

/// A tool call's piece in a chunk: the first of call `index` has its `id`, `type` and name,
/// later ones more `arguments`.
#[derive(Debug, Serialize)]
pub(crate) struct ToolCallDelta<'a> {
    pub(crate) index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) function: FunctionDelta<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<&'a str>,
    pub(crate) arguments: &'a str,
}

// A stream's chunks written field by field, as `ChatCompletion::write_json` writes the answer:
// the bytes of their `Serialize` (a test holds them to it), with keys as constant text and texts
// escaped by `write_str`; a tool call's piece still goes through serde_json.
impl ChunkChoice<'_> {
    /// Appends the choice's JSON object to `out`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let delta = &self.delta;
        ObjectWriter::new(out)
            .field("index", &self.index)?
            .object("delta", |d| {
                if let Some(role) = delta.role {
                    d.str("role", role);
                }
                if let Some(content) = delta.content {
                    d.str("content", content);
                }
                d.some("tool_calls", &delta.tool_calls)?;
                Ok(())
            })?
            .opt_str("finish_reason", self.finish_reason)
            .end();
        Ok(())
    }
}

impl Usage {
    /// Appends the usage object to `out`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut o = ObjectWriter::new(out);
        self.write_fields(&mut o)?;
        o.end();
        Ok(())
    }
}

pub(crate) fn finish_reason(f: FinishReason) -> &'static str {
    f.as_str()
}

#[cfg(test)]
mod tests;
