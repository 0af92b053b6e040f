//! Chat and structured-JSON text generation.

use std::future::Future;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;

use crate::{Result, TokenUsage};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Instructions for the model; providers without a system role receive them their own way.
    System,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call the model made ([`Message::tool_call_id`] names the call).
    Tool,
}

impl Role {
    /// The OpenAI role name (`system`, `user`, `assistant`, `tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }
}

/// A function the model may call (OpenAI's `tools[]` entry of type `function`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Tool {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// Its parameters as a JSON Schema object (`None`: it takes none).
    pub parameters: Option<Value>,
    /// Whether the arguments must follow `parameters` exactly, where the provider can be told so.
    pub strict: Option<bool>,
}

impl Tool {
    /// A function `name` taking `parameters` (a JSON Schema object).
    pub fn function(name: impl Into<String>, parameters: Value) -> Self {
        Self {
            name: name.into(),
            description: None,
            parameters: Some(parameters),
            strict: None,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// Whether and which tool the model must call (OpenAI's `tool_choice`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides (the default when tools are given).
    Auto,
    /// No tool call.
    None,
    /// At least one tool call.
    Required,
    /// A call of this function.
    Function(String),
}

/// A function call the model made (in an answer, or earlier in the conversation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    /// The call's id, which the tool's result names. Providers may carry state of their own in
    /// it (Gemini's thought signature), so it goes back exactly as received.
    pub id: String,
    /// The function called.
    pub name: String,
    /// The arguments, as JSON text (OpenAI's form).
    pub arguments: String,
}

impl ToolCall {
    /// A call `id` of `name` with `arguments` (JSON text).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

/// How hard a reasoning model thinks (OpenAI's `reasoning_effort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasoningEffort {
    /// No reasoning, where the model can do without.
    None,
    /// As little as the model allows.
    Minimal,
    /// Little.
    Low,
    /// The middle.
    Medium,
    /// Much.
    High,
}

impl ReasoningEffort {
    /// OpenAI's name (`none`, `minimal`, `low`, `medium`, `high`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// The effort named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::None,
            Self::Minimal,
            Self::Low,
            Self::Medium,
            Self::High,
        ]
        .into_iter()
        .find(|e| e.as_str() == name)
    }
}

/// One part of a message's content, as OpenAI's chat format has them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Part {
    /// Text.
    Text(String),
    /// An image, by `https://` URL or `data:` URL (`image_url` in OpenAI's format).
    Image {
        /// The URL.
        url: String,
        /// OpenAI's `detail` hint (`auto`, `low`, `high`), passed on where a provider takes it.
        detail: Option<String>,
    },
    /// Audio the model listens to (`input_audio` in OpenAI's format).
    Audio {
        /// The audio, base64-encoded.
        data: String,
        /// Its format as OpenAI names it (`wav`, `mp3`).
        format: String,
    },
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// An image part.
    pub fn image_url(url: impl Into<String>) -> Self {
        Self::Image {
            url: url.into(),
            detail: None,
        }
    }

    /// The part's kind as OpenAI names it (`text`, `image_url`, `input_audio`), for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Image { .. } => "image_url",
            Self::Audio { .. } => "input_audio",
        }
    }

    /// A prompt-token estimate for the plan check before the call (the provider's reported
    /// usage settles it after): text by its bytes; an image as 1,600 tokens, more than OpenAI
    /// bills any image and as much as Gemini bills one of about 1,500 × 1,500 pixels (258 per
    /// 768-pixel tile), so only larger images count more than estimated; audio at Gemini's 32
    /// tokens per second, assuming a bit rate as low as 16 kbit/s so compressed audio is not
    /// undercounted.
    pub fn estimate_tokens(&self) -> u64 {
        match self {
            Self::Text(text) => crate::accounting::estimate_tokens(text),
            Self::Image { .. } => IMAGE_TOKENS,
            Self::Audio { data, .. } => {
                let bytes = (data.len() as u64) * 3 / 4;
                (bytes * 32).div_ceil(2_000)
            }
        }
    }
}

/// The prompt-token estimate of one image part (see [`Part::estimate_tokens`]).
const IMAGE_TOKENS: u64 = 1_600;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in parts (usually one text part; may be empty for an assistant turn that
    /// only called tools).
    pub content: Vec<Part>,
    /// The tools an assistant turn called.
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the call it answers.
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with `role` and the text `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self::with_parts(role, vec![Part::Text(content.into())])
    }

    /// A message with `role` and `parts`.
    pub fn with_parts(role: Role, parts: Vec<Part>) -> Self {
        Self {
            role,
            content: parts,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// An assistant turn that said `text` (maybe nothing) and called `calls`.
    pub fn assistant_calls(text: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        let text = text.into();
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Text(text)]
        };
        Self {
            tool_calls: calls,
            ..Self::with_parts(Role::Assistant, parts)
        }
    }

    /// The result `content` of the tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }

    /// The text parts, joined (what a text-only provider receives).
    pub fn text(&self) -> String {
        let mut texts = self.content.iter().filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        });
        let first = texts.next().unwrap_or_default().to_owned();
        texts.fold(first, |mut all, t| {
            all.push_str(t);
            all
        })
    }

    /// Whether every part is text.
    pub fn is_text_only(&self) -> bool {
        self.content.iter().all(|p| matches!(p, Part::Text(_)))
    }
}

/// The shape the model must answer in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any valid JSON object.
    JsonObject,
    /// JSON that validates against a JSON Schema.
    JsonSchema {
        /// A name for the schema (OpenAI requires one; Gemini ignores it).
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// Whether the provider must follow the schema exactly, where it can be told so.
        strict: Option<bool>,
    },
}

/// A text generation request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct TextRequest {
    /// The provider's model id, e.g. `gemini-2.5-flash` or `meta-llama/Llama-3.1-8B-Instruct:cerebras`.
    pub model: String,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Upper bound on generated tokens (on thinking models, thoughts included).
    pub max_tokens: Option<u32>,
    /// Sequences that end generation.
    pub stop: Vec<String>,
    /// Seed for reproducible sampling, where the provider supports it.
    pub seed: Option<i64>,
    /// Penalty for tokens already present.
    pub presence_penalty: Option<f64>,
    /// Penalty proportional to how often a token appeared.
    pub frequency_penalty: Option<f64>,
    /// The required answer shape.
    pub response_format: Option<ResponseFormat>,
    /// Functions the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call (default: the model decides).
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn, where the provider can be told.
    pub parallel_tool_calls: Option<bool>,
    /// How many alternative answers (default 1).
    pub n: Option<u32>,
    /// How hard a reasoning model thinks.
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Whether to return the log probabilities of the output tokens.
    pub logprobs: bool,
    /// How many most likely alternatives to return per output token (with `logprobs`).
    pub top_logprobs: Option<u32>,
}

impl TextRequest {
    /// An empty request for `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }

    /// Appends `message` (e.g. one with image or audio parts).
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Appends a system message.
    pub fn system(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message::new(Role::System, content));
        self
    }

    /// Appends a user message.
    pub fn user(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message::new(Role::User, content));
        self
    }

    /// Appends an assistant message (an earlier answer of the model).
    pub fn assistant(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message::new(Role::Assistant, content));
        self
    }

    /// Sets the token limit.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the temperature.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Adds a stop sequence.
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }

    /// Sets the answer shape.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// Offers `tool` to the model.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets whether and which tool the model must call.
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Asks for `n` alternative answers.
    pub fn n(mut self, n: u32) -> Self {
        self.n = Some(n);
        self
    }

    /// Sets how hard a reasoning model thinks.
    pub fn reasoning_effort(mut self, effort: ReasoningEffort) -> Self {
        self.reasoning_effort = Some(effort);
        self
    }

    /// Asks for the log probabilities of the output tokens, with the `top` likeliest
    /// alternatives of each.
    pub fn logprobs(mut self, top: u32) -> Self {
        self.logprobs = true;
        self.top_logprobs = Some(top);
        self
    }

    /// Whether the request asks for JSON output.
    pub fn wants_json(&self) -> bool {
        matches!(
            self.response_format,
            Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
        )
    }
}

/// Why generation ended, in OpenAI's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The token limit.
    Length,
    /// A safety, recitation or other content block.
    ContentFilter,
    /// The model called a tool.
    ToolCalls,
}

impl FinishReason {
    /// The OpenAI `finish_reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ContentFilter => "content_filter",
            Self::ToolCalls => "tool_calls",
        }
    }
}

/// The log probability of one output token, and of the likeliest alternatives at its place.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct TokenLogprob {
    /// The token.
    pub token: String,
    /// Its log probability.
    pub logprob: f64,
    /// The likeliest tokens at this place with theirs, best first.
    pub top: Vec<(String, f64)>,
}

impl TokenLogprob {
    /// `token` with `logprob` and no alternatives.
    pub fn new(token: impl Into<String>, logprob: f64) -> Self {
        Self {
            token: token.into(),
            logprob,
            top: Vec::new(),
        }
    }
}

/// One answer of several (`n` > 1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Choice {
    /// The generated text.
    pub content: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// The tools it called.
    pub tool_calls: Vec<ToolCall>,
    /// Log probabilities of its tokens, when asked for.
    pub logprobs: Option<Vec<TokenLogprob>>,
}

impl Choice {
    /// An answer `content` that ended for `finish_reason`.
    pub fn new(content: impl Into<String>, finish_reason: FinishReason) -> Self {
        Self {
            content: content.into(),
            finish_reason,
            tool_calls: Vec::new(),
            logprobs: None,
        }
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct TextResponse {
    /// The provider's response id, when it gives one.
    pub id: Option<String>,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// The generated text (of the first answer, when there are several).
    pub content: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// The tools the model called.
    pub tool_calls: Vec<ToolCall>,
    /// Log probabilities of the output tokens, when asked for.
    pub logprobs: Option<Vec<TokenLogprob>>,
    /// The other answers, with `n` > 1 (answer 2 first).
    pub alternatives: Vec<Choice>,
    /// Tokens used (by every answer together).
    pub usage: TokenUsage,
}

impl TextResponse {
    /// The answer `content` of `model`, ended for `finish_reason`, having used `usage`.
    pub fn new(
        model: impl Into<String>,
        content: impl Into<String>,
        finish_reason: FinishReason,
        usage: TokenUsage,
    ) -> Self {
        Self {
            id: None,
            model: model.into(),
            content: content.into(),
            finish_reason,
            tool_calls: Vec::new(),
            logprobs: None,
            alternatives: Vec::new(),
            usage,
        }
    }

    /// Every answer, the first one included, as [`Choice`]s.
    pub fn choices(&self) -> Vec<Choice> {
        let first = Choice {
            content: self.content.clone(),
            finish_reason: self.finish_reason,
            tool_calls: self.tool_calls.clone(),
            logprobs: self.logprobs.clone(),
        };
        std::iter::once(first)
            .chain(self.alternatives.iter().cloned())
            .collect()
    }
}

/// One event of a streamed answer.
///
/// A well-formed stream yields any number of `Delta`s, then `Finish`, with `Usage` wherever the
/// provider reports it (the last one is final). A provider stream that ends without its normal
/// end yields an [`ErrorKind::StreamInterrupted`](crate::ErrorKind::StreamInterrupted) error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TextChunk {
    /// New text.
    Delta(String),
    /// Generation ended.
    Finish(FinishReason),
    /// Token counts so far (cumulative; the last one is final).
    Usage(TokenUsage),
    /// A tool call, or the next piece of one: the first chunk of call `index` carries its `id`
    /// and `name`, later ones more of its `arguments` (JSON text). A provider that gets whole
    /// calls sends each in one chunk.
    ToolCall {
        /// Which call of the answer (from 0).
        index: u32,
        /// The call's id, on its first chunk.
        id: Option<String>,
        /// The function's name, on its first chunk.
        name: Option<String>,
        /// The next piece of the arguments.
        arguments: String,
    },
}

/// A streamed answer.
pub type TextStream = BoxStream<'static, Result<TextChunk>>;

/// What a text provider can do, checked before any IO.
///
/// Start from [`TextCaps::default`] (streaming, text only) and set what the provider adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TextCaps {
    /// `stream` is implemented.
    pub streaming: bool,
    /// `ResponseFormat::JsonObject` is honoured.
    pub json_object: bool,
    /// `ResponseFormat::JsonSchema` is honoured.
    pub json_schema: bool,
    /// Image parts ([`Part::Image`]) are taken.
    pub image_input: bool,
    /// Audio parts ([`Part::Audio`]) are taken.
    pub audio_input: bool,
    /// `tools` are offered to the model.
    pub tools: bool,
    /// The most answers one call returns (`n`).
    pub max_n: u32,
    /// `logprobs` are returned.
    pub logprobs: bool,
    /// `reasoning_effort` is honoured.
    pub reasoning_effort: bool,
}

impl Default for TextCaps {
    fn default() -> Self {
        Self {
            streaming: true,
            json_object: false,
            json_schema: false,
            image_input: false,
            audio_input: false,
            tools: false,
            max_n: 1,
            logprobs: false,
            reasoning_effort: false,
        }
    }
}

impl TextCaps {
    /// `Err(Unsupported)` if `req` needs something these capabilities lack; the error names
    /// the request field (`response_format`, `messages[1].content[0]`) in its `param`.
    pub fn check(&self, provider: &str, req: &TextRequest) -> Result<()> {
        let missing = match req.response_format {
            Some(ResponseFormat::JsonObject) if !self.json_object => Some("json_object"),
            Some(ResponseFormat::JsonSchema { .. }) if !self.json_schema => Some("json_schema"),
            _ => None,
        };
        if let Some(what) = missing {
            return Err(crate::Error::unsupported(format!(
                "provider `{provider}` does not support response_format `{what}`"
            ))
            .with_param("response_format"));
        }
        let lacking = |what: &str| {
            Err(crate::Error::unsupported(format!(
                "provider `{provider}` does not support `{what}`"
            ))
            .with_param(what))
        };
        let uses_tools = !req.tools.is_empty()
            || req
                .messages
                .iter()
                .any(|m| !m.tool_calls.is_empty() || m.role == Role::Tool);
        if uses_tools && !self.tools {
            return lacking("tools");
        }
        if req.n.unwrap_or(1) > self.max_n {
            return Err(crate::Error::unsupported(format!(
                "provider `{provider}` returns at most {} answers per request",
                self.max_n
            ))
            .with_param("n"));
        }
        if (req.logprobs || req.top_logprobs.is_some()) && !self.logprobs {
            return lacking("logprobs");
        }
        if req.reasoning_effort.is_some() && !self.reasoning_effort {
            return lacking("reasoning_effort");
        }
        for (i, message) in req.messages.iter().enumerate() {
            for (j, part) in message.content.iter().enumerate() {
                let taken = match part {
                    Part::Text(_) => true,
                    Part::Image { .. } => self.image_input,
                    Part::Audio { .. } => self.audio_input,
                };
                if !taken {
                    return Err(crate::Error::unsupported(format!(
                        "provider `{provider}` does not take `{}` parts (messages[{i}].content[{j}])",
                        part.kind()
                    ))
                    .with_param(format!("messages[{i}].content[{j}]")));
                }
            }
        }
        Ok(())
    }
}

/// A provider of text generation.
///
/// Implementations do IO and mapping only: retries, deadlines and fallbacks belong to the router.
pub trait TextModel: Send + Sync {
    /// The provider id (`"gemini"`), used in errors, metrics and routing.
    fn provider(&self) -> &'static str;

    /// What this provider supports.
    fn capabilities(&self) -> TextCaps {
        TextCaps::default()
    }

    /// Generates a complete answer.
    fn generate(&self, req: TextRequest) -> impl Future<Output = Result<TextResponse>> + Send;

    /// Streams an answer.
    ///
    /// The outer `Err` means the request failed before the first byte: it may still be retried or
    /// fall back. An `Err` item means the stream broke mid-way: surface it, never retry it.
    fn stream(&self, req: TextRequest) -> impl Future<Output = Result<TextStream>> + Send;
}

/// The object-safe twin of [`TextModel`], which the [`Registry`](crate::Registry) stores.
pub trait DynTextModel: Send + Sync {
    /// See [`TextModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`TextModel::capabilities`].
    fn capabilities_dyn(&self) -> TextCaps;
    /// See [`TextModel::generate`].
    fn generate_dyn(&self, req: TextRequest) -> BoxFuture<'_, Result<TextResponse>>;
    /// See [`TextModel::stream`].
    fn stream_dyn(&self, req: TextRequest) -> BoxFuture<'_, Result<TextStream>>;
}

impl<T: TextModel> DynTextModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn capabilities_dyn(&self) -> TextCaps {
        self.capabilities()
    }

    fn generate_dyn(&self, req: TextRequest) -> BoxFuture<'_, Result<TextResponse>> {
        Box::pin(self.generate(req))
    }

    fn stream_dyn(&self, req: TextRequest) -> BoxFuture<'_, Result<TextStream>> {
        Box::pin(self.stream(req))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(caps: TextCaps, req: &TextRequest) -> Option<String> {
        caps.check("p", req)
            .err()
            .map(|e| e.param().unwrap_or_default().to_owned())
    }

    #[test]
    fn capabilities_refuse_what_a_provider_lacks_by_param() {
        let plain = TextCaps::default();
        let tool = Tool::function("f", json!({"type": "object"}));
        let calls = TextRequest::new("m").user("x").tool(tool.clone());
        let answered = TextRequest::new("m")
            .user("x")
            .message(Message::assistant_calls(
                "",
                vec![ToolCall::new("c", "f", "{}")],
            ))
            .message(Message::tool_result("c", "42"));
        assert_eq!(refused(plain, &calls).as_deref(), Some("tools"));
        assert_eq!(refused(plain, &answered).as_deref(), Some("tools"));
        let two = TextRequest::new("m").user("x").n(2);
        assert_eq!(refused(plain, &two).as_deref(), Some("n"));
        let logprobs = TextRequest::new("m").user("x").logprobs(2);
        assert_eq!(refused(plain, &logprobs).as_deref(), Some("logprobs"));
        let effort = TextRequest::new("m")
            .user("x")
            .reasoning_effort(ReasoningEffort::Low);
        assert_eq!(refused(plain, &effort).as_deref(), Some("reasoning_effort"));

        let able = TextCaps {
            tools: true,
            max_n: 4,
            logprobs: true,
            reasoning_effort: true,
            ..TextCaps::default()
        };
        for req in [&calls, &answered, &two, &logprobs, &effort] {
            assert_eq!(refused(able, req), None);
        }
        assert_eq!(
            refused(able, &TextRequest::new("m").n(5)).as_deref(),
            Some("n")
        );
    }

    #[test]
    fn every_answer_is_a_choice() {
        let mut answer = TextResponse::new("m", "a", FinishReason::Stop, TokenUsage::default());
        answer.tool_calls = vec![ToolCall::new("c", "f", "{}")];
        answer.alternatives = vec![Choice::new("b", FinishReason::Length)];
        let choices = answer.choices();
        assert_eq!(choices.len(), 2);
        assert_eq!(choices[0].tool_calls, answer.tool_calls);
        assert_eq!(
            (choices[1].content.as_str(), choices[1].finish_reason),
            ("b", FinishReason::Length)
        );
        assert_eq!(
            ReasoningEffort::parse("medium"),
            Some(ReasoningEffort::Medium)
        );
        assert_eq!(ReasoningEffort::parse("max"), None);
    }
}
