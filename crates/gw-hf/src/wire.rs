//! The JSON of the Hugging Face router's OpenAI-compatible chat completions, field for field.
//!
//! Outbound types leave out what is not set; inbound types accept fields they do not name, and
//! their enums map values they do not know to `Other`, because the router passes through whatever
//! the chosen backend provider answers. The plain answers and stream chunks are also read by
//! hand (`scan`), to the same values.
//!
//! Reference: <https://huggingface.co/docs/inference-providers/tasks/chat-completion>,
//! <https://huggingface.co/docs/inference-providers/tasks/feature-extraction> and
//! <https://platform.openai.com/docs/api-reference/chat>.

use std::borrow::Cow;

use gateway_core::json::ObjectWriter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod scan;

pub(crate) use scan::TextShape;

/// The body of `POST /v1/chat/completions`. It borrows the request's text rather than copying
/// it (a conversation, an image's `data:` URL, can be megabytes): it lives only until it is
/// written out.
///
/// <https://platform.openai.com/docs/api-reference/chat/create>,
/// <https://huggingface.co/docs/inference-providers/tasks/chat-completion>
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ChatCompletionRequest<'a> {
    /// First, so the router can pick the provider from a prefix of the body (the SDK's
    /// `BaseConversationalTask` does the same). Kept verbatim, `:provider` suffix included.
    pub(crate) model: &'a str,
    pub(crate) messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_format: Option<ResponseFormat<'a>>,
    /// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools>
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<ToolDefinition<'a>>,
    /// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tool_choice>
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_choice: Option<ToolChoice<'a>>,
    /// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-parallel_tool_calls>
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parallel_tool_calls: Option<bool>,
    /// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-n>
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) n: Option<u32>,
    /// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-logprobs>
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) logprobs: Option<bool>,
    /// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-top_logprobs>
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_logprobs: Option<u32>,
    /// `low`, `medium`, ... as OpenAI names them: the router passes it to the backend, as
    /// Hugging Face's own Responses API does (`reasoning_effort: req.body.reasoning?.effort`,
    /// <https://github.com/huggingface/responses.js/blob/main/src/routes/responses.ts>).
    ///
    /// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort>
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stream_options: Option<StreamOptions>,
}

impl ChatCompletionRequest<'_> {
    /// The request's JSON: the bytes its `Serialize` writes (held to by a test), each key
    /// written as constant text and each string through [`gateway_core::json::write_str`] (see
    /// [`ObjectWriter`]), into one buffer sized for the messages' text. Through serde_json,
    /// every key is escaped as if it could hold a quote and the buffer grows from 128 bytes.
    pub(crate) fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let text: usize = self.messages.iter().map(ChatMessage::text_len).sum();
        let mut out = Vec::with_capacity(text + 256);
        let mut o = ObjectWriter::new(&mut out);
        o.str("model", self.model)
            .objects("messages", &self.messages, |m, message| {
                message.write_fields(m)
            })?
            .some("max_tokens", &self.max_tokens)?
            .some("temperature", &self.temperature)?
            .some("top_p", &self.top_p)?;
        if !self.stop.is_empty() {
            o.field("stop", self.stop)?;
        }
        o.some("seed", &self.seed)?
            .some("presence_penalty", &self.presence_penalty)?
            .some("frequency_penalty", &self.frequency_penalty)?
            .some("response_format", &self.response_format)?;
        if !self.tools.is_empty() {
            o.field("tools", &self.tools)?;
        }
        o.some("tool_choice", &self.tool_choice)?
            .some("parallel_tool_calls", &self.parallel_tool_calls)?
            .some("n", &self.n)?
            .some("logprobs", &self.logprobs)?
            .some("top_logprobs", &self.top_logprobs)?
            .some("reasoning_effort", &self.reasoning_effort)?
            .some("stream", &self.stream)?
            .some("stream_options", &self.stream_options)?;
        o.end();
        Ok(out)
    }
}

impl ChatMessage<'_> {
    /// The bytes of its text content, to size a buffer by.
    fn text_len(&self) -> usize {
        match &self.content {
            Some(MessageContent::Text(text)) => text.len(),
            _ => 0,
        }
    }

    /// Its fields, as its `Serialize` writes them.
    fn write_fields(&self, m: &mut ObjectWriter<'_>) -> serde_json::Result<()> {
        m.str("role", self.role.as_str());
        match &self.content {
            Some(MessageContent::Text(text)) => {
                m.str("content", text);
            }
            other => {
                m.field("content", other)?;
            }
        }
        if !self.tool_calls.is_empty() {
            m.field("tool_calls", &self.tool_calls)?;
        }
        if let Some(id) = &self.tool_call_id {
            m.str("tool_call_id", id);
        }
        Ok(())
    }
}

/// One message of `messages`.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-messages>
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ChatMessage<'a> {
    pub(crate) role: Role,
    /// `null` for an assistant turn that only called tools: TGI reads a message with a
    /// `content` string as a plain message and drops its `tool_calls` (`MessageBody` tries
    /// `Content` first, `router/src/lib.rs` of
    /// <https://github.com/huggingface/text-generation-inference>), and OpenAI documents
    /// `content` as optional when `tool_calls` is given.
    pub(crate) content: Option<MessageContent<'a>>,
    /// An assistant turn's calls.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tool_calls: Vec<RequestToolCall<'a>>,
    /// A `tool` message's call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_call_id: Option<&'a str>,
}

/// One of an assistant message's `tool_calls`: `{"id","type":"function","function":{"name",
/// "arguments"}}`, the arguments as JSON text.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-messages>
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RequestToolCall<'a> {
    pub(crate) id: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: RequestFunctionCall<'a>,
}

/// `tool_calls[].function` of an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RequestFunctionCall<'a> {
    pub(crate) name: &'a str,
    pub(crate) arguments: &'a str,
}

/// One of `tools`: `{"type":"function","function":{..}}`.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools>,
/// <https://huggingface.co/docs/inference-providers/tasks/chat-completion#api-specification>
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ToolDefinition<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: FunctionDefinition<'a>,
}

/// `tools[].function`. `parameters` is always sent: Hugging Face's reference marks it required
/// (TGI's `FunctionDefinition` has no default for it), and OpenAI defines an omitted one as an
/// empty parameter list, which is what an empty object schema says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FunctionDefinition<'a> {
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
    pub(crate) parameters: Cow<'a, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) strict: Option<bool>,
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name"}}`.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tool_choice>,
/// <https://huggingface.co/docs/inference-providers/tasks/chat-completion#api-specification>
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum ToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: NamedFunction<'a>,
    },
}

/// The `function` of a named `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NamedFunction<'a> {
    pub(crate) name: &'a str,
}

/// A message's `content`: a string when it is only text (what every backend takes), else
/// OpenAI's array of typed parts.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-messages>,
/// <https://huggingface.co/docs/inference-providers/tasks/image-text-to-text>
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum MessageContent<'a> {
    /// Borrowed when the message is one piece of text (as it nearly always is), joined when
    /// it is several.
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart<'a>>),
}

/// One typed part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ContentPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
}

/// `image_url`: an `https://` or `data:` URL, and OpenAI's optional `detail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ImageUrl<'a> {
    pub(crate) url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<&'a str>,
}

/// A message's `role`.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-messages>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The role as it is sent (what its `Serialize` writes).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }
}

/// `response_format`: `{"type":"json_object"}` or `{"type":"json_schema","json_schema":{..}}`.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-response_format>,
/// <https://huggingface.co/docs/inference-providers/guides/structured-output>
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseFormat<'a> {
    JsonObject,
    JsonSchema { json_schema: JsonSchema<'a> },
}

/// The `json_schema` of a `json_schema` response format.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-response_format>
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JsonSchema<'a> {
    pub(crate) name: &'a str,
    pub(crate) schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) strict: Option<bool>,
}

/// `stream_options`.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct StreamOptions {
    pub(crate) include_usage: bool,
}

/// A blocking answer (`object: "chat.completion"`).
///
/// <https://platform.openai.com/docs/api-reference/chat/object>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ChatCompletion {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) choices: Vec<Choice>,
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
}

/// One of `choices` of a blocking answer.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-choices>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Choice {
    /// Which answer of `n` this is; missing on some backends, which then list them in order.
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) message: Option<ResponseMessage>,
    #[serde(default)]
    pub(crate) finish_reason: Option<FinishReason>,
    #[serde(default)]
    pub(crate) logprobs: Option<Logprobs>,
}

/// `choices[].logprobs`: one entry per output token.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-choices>,
/// <https://huggingface.co/docs/inference-providers/tasks/chat-completion#api-specification>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Logprobs {
    #[serde(default)]
    pub(crate) content: Option<Vec<TokenLogprob>>,
}

/// `logprobs.content[]`. `logprob` is `null` on backends that cannot write minus infinity in
/// JSON.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TokenLogprob {
    #[serde(default)]
    pub(crate) token: String,
    #[serde(default)]
    pub(crate) logprob: Option<f64>,
    #[serde(default)]
    pub(crate) top_logprobs: Option<Vec<TopLogprob>>,
}

/// `logprobs.content[].top_logprobs[]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TopLogprob {
    #[serde(default)]
    pub(crate) token: String,
    #[serde(default)]
    pub(crate) logprob: Option<f64>,
}

/// `choices[].message` of a blocking answer; `content` is `null` e.g. when the model only called
/// a tool.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-choices>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ResponseMessage {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) tool_calls: Option<OneOrMany<ToolCall>>,
}

/// A list, or one bare element where a backend sends one: TGI before 3.2 sent a stream's
/// `delta.tool_calls` as an object ("Making `tool_calls` a vector", text-generation-inference
/// PR #3075, <https://github.com/huggingface/text-generation-inference/pull/3075>).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            Self::Many(all) => all,
            Self::One(one) => vec![one],
        }
    }
}

/// A tool call of an answer (`message.tool_calls[]`) or a piece of one (`delta.tool_calls[]`).
/// Every field is optional: a stream's later pieces carry only `index` and more `arguments`,
/// and some backends leave out `id` or `index` altogether.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-choices>,
/// <https://platform.openai.com/docs/api-reference/chat-streaming/streaming#chat-streaming/streaming-choices>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ToolCall {
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) function: Option<FunctionCall>,
}

/// `tool_calls[].function`. `arguments` is JSON text in OpenAI's format, but a JSON object on
/// TGI before 3.2 (text-generation-inference issue #2461,
/// <https://github.com/huggingface/text-generation-inference/issues/2461>, fixed by PR #3076),
/// so it is read as any JSON value.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct FunctionCall {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) arguments: Option<Value>,
}

/// `finish_reason`. `function_call` is the deprecated name of `tool_calls`; `eos_token` and
/// `stop_sequence` are TGI's names for a natural stop (its `FinishReason`, `router/src/lib.rs`
/// of <https://github.com/huggingface/text-generation-inference>), which ends its tool calls too.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-choices>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    FunctionCall,
    EosToken,
    StopSequence,
    #[serde(other)]
    Other,
}

/// `usage`: every count is optional, because the router passes on whatever the backend
/// provider reports.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub(crate) prompt_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) completion_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default)]
    pub(crate) completion_tokens_details: Option<CompletionTokensDetails>,
}

/// `usage.prompt_tokens_details`.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PromptTokensDetails {
    #[serde(default)]
    pub(crate) cached_tokens: Option<u64>,
}

/// `usage.completion_tokens_details`.
///
/// <https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CompletionTokensDetails {
    #[serde(default)]
    pub(crate) reasoning_tokens: Option<u64>,
}

/// One `data:` event of a stream (`object: "chat.completion.chunk"`), or an error event
/// `{"error": ...}` that some backends send mid-stream.
///
/// <https://platform.openai.com/docs/api-reference/chat-streaming/streaming>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ChatCompletionChunk {
    #[serde(default)]
    pub(crate) choices: Vec<ChunkChoice>,
    /// The backends put it in different chunks:
    /// - OpenAI, with `stream_options.include_usage`: on a last chunk whose `choices` is empty
    ///   (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options>);
    /// - Cerebras: on the chunk that carries the `finish_reason`, and no `data: [DONE]` after it
    ///   (`ChatChunkResponse.usage` of <https://github.com/Cerebras/cerebras-cloud-sdk-python>,
    ///   `src/cerebras/cloud/sdk/types/chat/chat_completion.py`; a recorded stream:
    ///   <https://github.com/charmbracelet/fantasy/blob/71f727f0c6f1021be71a2284bfccaa8465fa2213/providertests/testdata/TestCerebrasCommon/cerebras-qwen-3-coder-480b/simple_streaming.yaml>);
    /// - Together, through the router: on the chunk with the `finish_reason`, `null` on the
    ///   others (<https://github.com/pydantic/pydantic-ai/blob/82fc848a1a14328c20743af789495a3c553c750e/tests/models/cassettes/test_huggingface/test_hf_model_thinking_part_iter.yaml>);
    /// - Groq: on the chunk with the `finish_reason` (also as `x_groq.usage`), and again on an
    ///   empty-`choices` chunk with `include_usage`
    ///   (<https://github.com/charmbracelet/fantasy/blob/e8ea87a7029ec73944fa730c9313d27e82555f03/providertests/testdata/TestGroqCommon/groq-kimi-k2-0905/simple_streaming.yaml>).
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    /// Groq's own extension; its `usage` is the request's, on the chunk with the
    /// `finish_reason` (see [`XGroq`]).
    #[serde(default)]
    pub(crate) x_groq: Option<XGroq>,
    #[serde(default)]
    pub(crate) error: Option<ErrorField>,
}

/// `x_groq` of a Groq stream chunk: `{"id": "req_...", "usage": {...}}`. Its `usage` is "Usage
/// information for the stream. Only sent in the final chunk", whether or not the request asked
/// for `stream_options.include_usage`, which adds the top-level `usage` (`XGroq` and
/// `ChatCompletionChunk` in `src/groq/types/chat/chat_completion_chunk.py` of
/// <https://github.com/groq/groq-python>); OpenAI's names plus Groq's timings (ignored).
///
/// Recorded: <https://github.com/pydantic/pydantic-ai/blob/5039551ad6f598c61893f702583300620184b956/tests/models/cassettes/test_groq/test_tool_use_failed_error_streaming.yaml>,
/// <https://github.com/charmbracelet/fantasy/blob/e8ea87a7029ec73944fa730c9313d27e82555f03/providertests/testdata/TestGroqCommon/groq-kimi-k2-0905/simple_streaming.yaml>.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct XGroq {
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
}

/// One of `choices` of a stream chunk.
///
/// <https://platform.openai.com/docs/api-reference/chat-streaming/streaming#chat-streaming/streaming-choices>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ChunkChoice {
    /// Which answer of `n` the piece belongs to.
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) delta: Option<Delta>,
    #[serde(default)]
    pub(crate) finish_reason: Option<FinishReason>,
}

/// `choices[].delta` of a stream chunk.
///
/// <https://platform.openai.com/docs/api-reference/chat-streaming/streaming#chat-streaming/streaming-choices>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) tool_calls: Option<OneOrMany<ToolCall>>,
}

/// An error body. The router's and the backend providers' shapes differ; these are the ones the
/// official SDK parses (`huggingface_hub/utils/_http.py::_format`), plus OAuth's
/// `error_description` and hf-inference's `estimated_time` (a 503 while a model loads).
///
/// Reference: the error shapes the official client parses, `huggingface_hub`
/// `utils/_http.py` (<https://github.com/huggingface/huggingface_hub/blob/main/src/huggingface_hub/utils/_http.py>).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) error: Option<ErrorField>,
    #[serde(default)]
    pub(crate) error_description: Option<String>,
    #[serde(default)]
    pub(crate) errors: Option<Vec<ErrorItem>>,
    #[serde(default)]
    pub(crate) estimated_time: Option<f64>,
    /// fal's errors, passed through the router for text-to-image: `"message"`, or FastAPI's
    /// validation list `[{"loc", "msg", "type"}]` (<https://docs.fal.ai/model-apis/errors>).
    #[serde(default)]
    pub(crate) detail: Option<Value>,
}

/// The `error` member: `"msg"`, `["msg1","msg2"]` or an OpenAI error object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorField {
    Message(String),
    Messages(Vec<String>),
    Object(ErrorObject),
    /// Any other JSON: kept so one odd value does not hide the rest of the body.
    Other(Value),
}

/// An OpenAI-style error object `{"message","type","code"}`.
///
/// <https://platform.openai.com/docs/guides/error-codes>
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorObject {
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    /// A string in OpenAI's API; some OpenAI-compatible servers send the HTTP status as a number.
    #[serde(default)]
    pub(crate) code: Option<Value>,
}

/// One of `errors`: `{"message": ...}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorItem {
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// The body of `POST /hf-inference/models/{model}/pipeline/feature-extraction`: the texts in
/// `inputs` (a string for one, an array for several) and the task's parameters at the root.
///
/// Source: <https://huggingface.co/docs/inference-providers/tasks/feature-extraction>; the
/// official client puts the parameters at the root ("Parameters are sent at root-level for
/// feature-extraction task", `huggingface_hub` `_providers/hf_inference.py`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FeatureExtractionRequest {
    pub(crate) inputs: Inputs,
    /// `normalize`, `prompt_name`, `truncate`, `truncation_direction`, as the caller gave them.
    #[serde(flatten)]
    pub(crate) parameters: serde_json::Map<String, Value>,
}

/// `inputs`: one text or several.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Inputs {
    One(String),
    Many(Vec<String>),
}
