//! Chat and structured-JSON text generation.

use std::future::Future;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;

use crate::{Result, TokenUsage};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions for the model; providers without a system role receive them their own way.
    System,
    /// The end user.
    User,
    /// The model.
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// The shape the model must answer in.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq, Default)]
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
}

impl TextRequest {
    /// An empty request for `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
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

    /// Whether the request asks for JSON output.
    pub fn wants_json(&self) -> bool {
        matches!(
            self.response_format,
            Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
        )
    }
}

/// Why generation ended, in OpenAI's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A complete answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TextResponse {
    /// The provider's response id, when it gives one.
    pub id: Option<String>,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// The generated text.
    pub content: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Tokens used.
    pub usage: TokenUsage,
}

/// One event of a streamed answer.
///
/// A well-formed stream yields any number of `Delta`s, then `Finish`, with `Usage` wherever the
/// provider reports it (the last one is final). A provider stream that ends without its normal
/// end yields an [`ErrorKind::StreamInterrupted`](crate::ErrorKind::StreamInterrupted) error.
#[derive(Debug, Clone, PartialEq)]
pub enum TextChunk {
    /// New text.
    Delta(String),
    /// Generation ended.
    Finish(FinishReason),
    /// Token counts so far (cumulative; the last one is final).
    Usage(TokenUsage),
}

/// A streamed answer.
pub type TextStream = BoxStream<'static, Result<TextChunk>>;

/// What a text provider can do, checked before any IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextCaps {
    /// `stream` is implemented.
    pub streaming: bool,
    /// `ResponseFormat::JsonObject` is honoured.
    pub json_object: bool,
    /// `ResponseFormat::JsonSchema` is honoured.
    pub json_schema: bool,
}

impl Default for TextCaps {
    fn default() -> Self {
        Self {
            streaming: true,
            json_object: false,
            json_schema: false,
        }
    }
}

impl TextCaps {
    /// `Err(Unsupported)` if `req` needs something these capabilities lack.
    pub fn check(&self, provider: &str, req: &TextRequest) -> Result<()> {
        let missing = match req.response_format {
            Some(ResponseFormat::JsonObject) if !self.json_object => Some("json_object"),
            Some(ResponseFormat::JsonSchema { .. }) if !self.json_schema => Some("json_schema"),
            _ => None,
        };
        match missing {
            Some(what) => Err(crate::Error::unsupported(format!(
                "provider `{provider}` does not support response_format `{what}`"
            ))),
            None => Ok(()),
        }
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
