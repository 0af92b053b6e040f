//! Chat and structured-JSON text generation.

use std::future::Future;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;

use crate::{Result, TokenUsage};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Instructions for the model; providers without a system role receive them their own way.
    System,
    /// The end user.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The OpenAI role name (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One part of a message's content, as OpenAI's chat format has them.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in parts (usually one text part).
    pub content: Vec<Part>,
}

impl Message {
    /// A message with `role` and the text `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![Part::Text(content.into())],
        }
    }

    /// A message with `role` and `parts`.
    pub fn with_parts(role: Role, parts: Vec<Part>) -> Self {
        Self {
            role,
            content: parts,
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
#[derive(Debug, Clone, PartialEq)]
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
#[non_exhaustive]
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
}

impl Default for TextCaps {
    fn default() -> Self {
        Self {
            streaming: true,
            json_object: false,
            json_schema: false,
            image_input: false,
            audio_input: false,
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
