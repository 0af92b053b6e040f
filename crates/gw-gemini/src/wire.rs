//! Gemini's JSON, field for field (Generative Language API `v1beta`). No logic lives here but
//! the hand reader of the plain answers (`scan`).
//!
//! Outbound types leave out `None`s; inbound types accept unknown fields and tolerate missing
//! ones, because Google adds fields without notice. Names follow the API reference
//! (<https://ai.google.dev/api>) and the official Python SDK (`googleapis/python-genai`,
//! `models.py` and `types.py`).

use gateway_core::json::ObjectWriter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod scan;

pub(crate) use scan::TextShape;

/// The body of `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
///
/// Source: <https://ai.google.dev/api/generate-content#request-body>; SDK `models.py`
/// `_GenerateContentParameters_to_mldev`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentRequest {
    /// The conversation turns (`user` / `model`).
    pub(crate) contents: Vec<Content>,
    /// The system prompt; its `role` is ignored by the API, so none is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) system_instruction: Option<Content>,
    /// Sampling and output options; left out when nothing is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) generation_config: Option<GenerationConfig>,
    /// The functions the model may call, as one [`Tool`]; left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<Tool>,
    /// Whether and which function the model must call; left out for Gemini's default (`AUTO`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_config: Option<ToolConfig>,
}

impl GenerateContentRequest {
    /// The request's JSON: the bytes its `Serialize` writes (held to by the converter's tests),
    /// each key written as constant text and each text through
    /// [`gateway_core::json::write_str`] (see [`ObjectWriter`]), into one buffer sized for the
    /// text. The generation config, tools and media still go through serde.
    pub(crate) fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let text: usize = self
            .contents
            .iter()
            .chain(&self.system_instruction)
            .map(Content::text_len)
            .sum();
        let mut out = Vec::with_capacity(text + 256);
        let mut o = ObjectWriter::new(&mut out);
        o.objects("contents", &self.contents, |c, content| {
            content.write_fields(c)
        })?;
        if let Some(system) = &self.system_instruction {
            o.object("systemInstruction", |c| system.write_fields(c))?;
        }
        o.some("generationConfig", &self.generation_config)?;
        if !self.tools.is_empty() {
            o.field("tools", &self.tools)?;
        }
        o.some("toolConfig", &self.tool_config)?;
        o.end();
        Ok(out)
    }
}

/// One entry of `tools`: here always a set of function declarations.
///
/// Source: <https://ai.google.dev/api/caching#Tool>; SDK `models.py` `_Tool_to_mldev`
/// (`function_declarations` -> `functionDeclarations`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tool {
    /// The functions.
    pub(crate) function_declarations: Vec<FunctionDeclaration>,
}

/// A function the model may call.
///
/// Source: <https://ai.google.dev/api/caching#FunctionDeclaration>. The parameters go as
/// `parametersJsonSchema` (a JSON Schema object, mutually exclusive with the OpenAPI-subset
/// `parameters`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionDeclaration {
    /// The function's name.
    pub(crate) name: String,
    /// What it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Its parameters, a JSON Schema of an object; left out for a function without any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parameters_json_schema: Option<Value>,
}

/// `toolConfig`.
///
/// Source: <https://ai.google.dev/api/caching#ToolConfig>.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolConfig {
    /// How the model may call functions.
    pub(crate) function_calling_config: FunctionCallingConfig,
}

/// `toolConfig.functionCallingConfig`.
///
/// Source: <https://ai.google.dev/api/caching#FunctionCallingConfig>; SDK `models.py`
/// `_FunctionCallingConfig_to_mldev` (`mode`, `allowedFunctionNames`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionCallingConfig {
    /// The mode.
    pub(crate) mode: FunctionCallingMode,
    /// With `ANY`: the functions the model may call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) allowed_function_names: Vec<String>,
}

/// `FunctionCallingConfig.mode`.
///
/// Source: SDK `types.py` `class FunctionCallingConfigMode`: `AUTO` (the model decides), `ANY`
/// (function calls only), `NONE` (no calls), `VALIDATED` (calls or text, calls constrained to
/// the declared schemas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum FunctionCallingMode {
    Auto,
    Any,
    None,
    Validated,
}

/// One turn: `{"role": "user" | "model", "parts": [...]}`.
///
/// Source: <https://ai.google.dev/api/caching#Content>. `parts` may be missing on an answer
/// (e.g. `MAX_TOKENS` reached while thinking, or a safety block), hence the default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Content {
    /// Who said it; absent on `systemInstruction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<Role>,
    /// The pieces of the turn.
    #[serde(default)]
    pub(crate) parts: Vec<Part>,
}

impl Content {
    /// The bytes of its text parts, to size a buffer by.
    fn text_len(&self) -> usize {
        self.parts
            .iter()
            .filter_map(|p| p.text.as_ref())
            .map(String::len)
            .sum()
    }

    /// Its fields, as its `Serialize` writes them.
    fn write_fields(&self, c: &mut ObjectWriter<'_>) -> serde_json::Result<()> {
        if let Some(role) = self.role {
            c.str("role", role.as_str());
        }
        c.objects("parts", &self.parts, |p, part| part.write_fields(p))?;
        Ok(())
    }
}

/// The author of a [`Content`].
///
/// Source: <https://ai.google.dev/api/caching#Content> (`role`: `user` or `model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// The end user (also tool results).
    User,
    /// The model.
    Model,
    /// Any other value the API may answer with; never sent.
    #[serde(other)]
    Other,
}

impl Role {
    /// The role as its `Serialize` writes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Model => "model",
            Self::Other => "other",
        }
    }
}

/// One part of a turn. The wire type is a union; only the members the gateway reads or writes
/// are spelled out, and unknown members are ignored.
///
/// Source: <https://ai.google.dev/api/caching#Part>; `thought` marks a thought summary
/// (SDK `types.py` `Part.thought`); `thoughtSignature` is a sibling of `functionCall` on the
/// part (SDK `models.py` `_Part_to_mldev`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
    /// Media sent inline (an image or audio of the prompt, an image an image model drew).
    /// `inline_data` is read too: the REST API accepts snake case, and answers in it have been
    /// reported from proxies in front of it.
    #[serde(
        default,
        alias = "inline_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) inline_data: Option<Blob>,
    /// Media by URI (a Files API file, a YouTube video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) file_data: Option<FileData>,
    /// `true` when the part is a thought summary rather than answer text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) thought: Option<bool>,
    /// A function call the model made (or made earlier, when sent back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) function_call: Option<FunctionCall>,
    /// The result of a function call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) function_response: Option<FunctionResponse>,
    /// The opaque signature of the model's reasoning behind this part (base64), which must go
    /// back with the part: <https://ai.google.dev/gemini-api/docs/thought-signatures>.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) thought_signature: Option<String>,
}

impl Part {
    /// Its fields, as its `Serialize` writes them.
    fn write_fields(&self, p: &mut ObjectWriter<'_>) -> serde_json::Result<()> {
        if let Some(text) = &self.text {
            p.str("text", text);
        }
        p.some("inlineData", &self.inline_data)?
            .some("fileData", &self.file_data)?
            .some("thought", &self.thought)?
            .some("functionCall", &self.function_call)?
            .some("functionResponse", &self.function_response)?;
        if let Some(signature) = &self.thought_signature {
            p.str("thoughtSignature", signature);
        }
        Ok(())
    }
}

/// `functionCall`: `{"id"?, "name", "args"?}`.
///
/// Source: <https://ai.google.dev/api/caching#FunctionCall>; SDK `models.py`
/// `_FunctionCall_to_mldev` sends `id`, `args` and `name` to the Developer API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct FunctionCall {
    /// The call's id, when the model gave one; the result names it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// The function.
    #[serde(default)]
    pub(crate) name: String,
    /// The arguments, a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) args: Option<Value>,
}

/// `functionResponse`: `{"id"?, "name", "response"}`, sent in a `user` turn.
///
/// Source: <https://ai.google.dev/api/caching#FunctionResponse>: `response` is a JSON object;
/// its `output` key holds the function's output and `error` its error, else the whole object is
/// the output.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct FunctionResponse {
    /// The id of the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// The function.
    #[serde(default)]
    pub(crate) name: String,
    /// The result.
    #[serde(default)]
    pub(crate) response: Value,
}

/// Media by URI: `{"mimeType"?, "fileUri"}`.
///
/// Source: <https://ai.google.dev/api/caching#FileData> (`mimeType` optional, `fileUri`
/// required); SDK `models.py` `_FileData_to_mldev`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileData {
    /// The IANA media type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mime_type: Option<String>,
    /// The URI.
    pub(crate) file_uri: String,
}

/// Inline media: `{"mimeType": "image/png", "data": "<base64>"}`.
///
/// Source: <https://ai.google.dev/api/caching#Blob>; image and audio prompts:
/// <https://ai.google.dev/gemini-api/docs/image-understanding>,
/// <https://ai.google.dev/gemini-api/docs/audio>.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Blob {
    /// The IANA media type.
    #[serde(alias = "mime_type")]
    pub(crate) mime_type: String,
    /// The bytes, base64-encoded.
    pub(crate) data: String,
}

/// `generationConfig`.
///
/// Source: <https://ai.google.dev/api/generate-content#generationconfig>; every key is in the
/// SDK's `_GenerateContentConfig_to_mldev`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerationConfig {
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f64>,
    /// Output token limit (thoughts included on thinking models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_output_tokens: Option<u32>,
    /// Stop sequences; left out when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) stop_sequences: Vec<String>,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<i64>,
    /// Presence penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frequency_penalty: Option<f64>,
    /// `application/json` for JSON output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_mime_type: Option<String>,
    /// A standard JSON Schema (not the OpenAPI-subset `responseSchema`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_json_schema: Option<Value>,
    /// How many answers (`candidates`) to generate; between 1 and 8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) candidate_count: Option<u32>,
    /// Whether to return the log probabilities of the chosen tokens (`logprobsResult`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_logprobs: Option<bool>,
    /// How many top alternatives per token (`logprobsResult.topCandidates`); 0 to 20.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) logprobs: Option<u32>,
    /// How much the model thinks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thinking_config: Option<ThinkingConfig>,
}

/// `generationConfig.thinkingConfig`: a level (Gemini 3 and later) or a token budget (2.5),
/// never both.
///
/// Source: <https://ai.google.dev/gemini-api/docs/thinking>; SDK `types.py` `ThinkingConfig`
/// and `class ThinkingLevel` (`MINIMAL`, `LOW`, `MEDIUM`, `HIGH`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThinkingConfig {
    /// Thinking tokens allowed (0 turns thinking off where the model can do without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thinking_budget: Option<u32>,
    /// `MINIMAL`, `LOW`, `MEDIUM` or `HIGH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) thinking_level: Option<&'static str>,
}

/// The answer of `generateContent`, and every event of `streamGenerateContent?alt=sse`.
///
/// Source: <https://ai.google.dev/api/generate-content#generatecontentresponse>. When the prompt
/// is blocked, `candidates` is absent and `promptFeedback.blockReason` says why.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    /// Answers: one, or `candidateCount` of them.
    #[serde(default)]
    pub(crate) candidates: Option<Vec<Candidate>>,
    /// Present when the prompt itself was blocked.
    #[serde(default)]
    pub(crate) prompt_feedback: Option<PromptFeedback>,
    /// Token counts (cumulative while streaming).
    #[serde(default)]
    pub(crate) usage_metadata: Option<UsageMetadata>,
    /// The model that answered, e.g. `gemini-2.5-flash`.
    #[serde(default)]
    pub(crate) model_version: Option<String>,
    /// The response id.
    #[serde(default)]
    pub(crate) response_id: Option<String>,
    /// Present only on an error event of `streamGenerateContent?alt=sse`, sent after the stream
    /// started (the SDK's `_api_client.py::_iter_response_stream` treats any JSON object with
    /// `error` in a stream as a terminal error): <https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>.
    /// Its shape is that of [`ErrorBody`], but it is classified from the raw event text, so only
    /// its presence is read here (skipped, not built: a stream event is parsed per chunk, and a
    /// `#[serde(flatten)]` wrapper would buffer every event's whole tree first).
    #[serde(default)]
    pub(crate) error: Option<serde::de::IgnoredAny>,
}

/// One answer.
///
/// Source: <https://ai.google.dev/api/generate-content#candidate>.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    /// The generated parts (new parts only, while streaming).
    #[serde(default)]
    pub(crate) content: Option<Content>,
    /// Why generation ended; set on the last event of a stream.
    #[serde(default)]
    pub(crate) finish_reason: Option<FinishReason>,
    /// Its place among the candidates (`candidateCount` > 1).
    #[serde(default)]
    pub(crate) index: Option<u32>,
    /// Log probabilities of its tokens, when `responseLogprobs` was set.
    #[serde(default)]
    pub(crate) logprobs_result: Option<LogprobsResult>,
}

/// `Candidate.logprobsResult`: per decoding step, the chosen token and the top alternatives.
///
/// Source: <https://ai.google.dev/api/generate-content#LogprobsResult>; SDK `types.py`
/// `LogprobsResult` (`chosenCandidates`, `topCandidates[].candidates`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogprobsResult {
    /// The chosen token of each step.
    #[serde(default)]
    pub(crate) chosen_candidates: Vec<LogprobCandidate>,
    /// The likeliest tokens of each step, best first.
    #[serde(default)]
    pub(crate) top_candidates: Vec<TopCandidates>,
}

/// `LogprobsResult.topCandidates[]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct TopCandidates {
    /// The tokens, by descending log probability.
    #[serde(default)]
    pub(crate) candidates: Vec<LogprobCandidate>,
}

/// One token with its log probability.
///
/// Source: SDK `types.py` `LogprobsResultCandidate` (`token`, `tokenId`, `logProbability`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogprobCandidate {
    /// The token's text.
    #[serde(default)]
    pub(crate) token: String,
    /// Its log probability.
    #[serde(default)]
    pub(crate) log_probability: f64,
}

/// `Candidate.finishReason`.
///
/// Source: SDK `types.py` `class FinishReason`. The enum is open: unknown values become
/// `Unknown` rather than failing the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum FinishReason {
    #[serde(rename = "FINISH_REASON_UNSPECIFIED")]
    Unspecified,
    Stop,
    MaxTokens,
    Safety,
    Recitation,
    Language,
    Other,
    Blocklist,
    ProhibitedContent,
    Spii,
    MalformedFunctionCall,
    ImageSafety,
    UnexpectedToolCall,
    TooManyToolCalls,
    ImageProhibitedContent,
    NoImage,
    ImageRecitation,
    ImageOther,
    #[serde(other)]
    Unknown,
}

/// `promptFeedback`.
///
/// Source: <https://ai.google.dev/api/generate-content#PromptFeedback>.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    /// Why the prompt was blocked; absent when it was not.
    #[serde(default)]
    pub(crate) block_reason: Option<BlockReason>,
}

/// `promptFeedback.blockReason`.
///
/// Source: SDK `types.py` `class BlockedReason` (`MODEL_ARMOR` and `JAILBREAK` are Vertex-only and
/// land in `Unknown`, like any future value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum BlockReason {
    #[serde(rename = "BLOCKED_REASON_UNSPECIFIED")]
    Unspecified,
    Safety,
    Other,
    Blocklist,
    ProhibitedContent,
    ImageSafety,
    #[serde(other)]
    Unknown,
}

/// `usageMetadata`. Every count may be absent (e.g. `candidatesTokenCount` on the first stream
/// events, `cachedContentTokenCount` without a cache hit).
///
/// Source: SDK `types.py` `GenerateContentResponseUsageMetadata`;
/// <https://firebase.google.com/docs/reference/js/ai.usagemetadata>.
/// `promptTokenCount` includes `cachedContentTokenCount`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    /// Prompt tokens, cached ones included.
    #[serde(default)]
    pub(crate) prompt_token_count: Option<u64>,
    /// The part of the prompt served from the context cache.
    #[serde(default)]
    pub(crate) cached_content_token_count: Option<u64>,
    /// Visible output tokens (thoughts excluded).
    #[serde(default)]
    pub(crate) candidates_token_count: Option<u64>,
    /// Thinking tokens, billed as output.
    #[serde(default)]
    pub(crate) thoughts_token_count: Option<u64>,
    /// Tokens of tool-use prompts (e.g. search grounding results).
    #[serde(default)]
    pub(crate) tool_use_prompt_token_count: Option<u64>,
    /// The output tokens by modality (`IMAGE`, `TEXT`), where Gemini splits them: how image
    /// models' image tokens are told from their text tokens.
    #[serde(default)]
    pub(crate) candidates_tokens_details: Option<Vec<ModalityTokenCount>>,
    /// The prompt tokens by modality (`TEXT`, `AUDIO`, ...): audio input has its own rate.
    #[serde(default)]
    pub(crate) prompt_tokens_details: Option<Vec<ModalityTokenCount>>,
}

/// One entry of `usageMetadata.candidatesTokensDetails`: `{"modality": "IMAGE", "tokenCount": 1290}`.
///
/// Source: SDK `types.py` `ModalityTokenCount` (`modality`, `tokenCount`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModalityTokenCount {
    /// `TEXT`, `IMAGE`, `AUDIO`, ...
    #[serde(default)]
    pub(crate) modality: Option<String>,
    /// The tokens of that modality.
    #[serde(default)]
    pub(crate) token_count: Option<u64>,
}

/// The error body of every endpoint: `{"error": {...}}`.
///
/// Source: <https://ai.google.dev/gemini-api/docs/troubleshooting>; SDK `errors.py` `APIError` (reads `code`, `message`,
/// `status`); <https://ai.google.dev/gemini-api/docs/troubleshooting>.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ErrorEnvelope {
    /// The error.
    pub(crate) error: ErrorBody,
}

/// `error`: a `google.rpc.Status` in its JSON form.
///
/// Source: <https://github.com/googleapis/googleapis/blob/master/google/rpc/status.proto>.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct ErrorBody {
    /// The HTTP status again; the only status an error event inside a 200 stream carries.
    #[serde(default)]
    pub(crate) code: Option<u16>,
    /// Human-readable message.
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// The canonical code name, e.g. `RESOURCE_EXHAUSTED`.
    #[serde(default)]
    pub(crate) status: Option<Status>,
    /// `google.rpc.*` detail messages, told apart by `@type`; parsed defensively.
    #[serde(default)]
    pub(crate) details: Option<Vec<ErrorDetail>>,
}

/// `error.status`: the canonical gRPC code name.
///
/// Source: <https://ai.google.dev/gemini-api/docs/troubleshooting> (the statuses the Gemini API
/// answers with);
/// <https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto>.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Status {
    InvalidArgument,
    FailedPrecondition,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    ResourceExhausted,
    Internal,
    Unavailable,
    DeadlineExceeded,
    #[serde(other)]
    Unknown,
}

/// One entry of `error.details`. The union of the two detail messages the gateway reads:
/// `google.rpc.ErrorInfo` (`reason`, e.g. `API_KEY_INVALID`) and `google.rpc.RetryInfo`
/// (`retryDelay`, a protobuf Duration string such as `"34s"`).
///
/// Source: <https://github.com/googleapis/googleapis/blob/master/google/rpc/error_details.proto>;
/// the `RetryInfo` of <https://ai.google.dev/gemini-api/docs/rate-limits>; a real bad-key body in
/// <https://github.com/cequence-io/openai-scala-client/issues/109>.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorDetail {
    /// `ErrorInfo.reason`.
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// `RetryInfo.retryDelay`.
    #[serde(default)]
    pub(crate) retry_delay: Option<String>,
}

/// The body of `models/{model}:batchEmbedContents`, which the official SDK uses for every
/// embedding call to the Developer API (one input or many).
///
/// Source: <https://ai.google.dev/api/embeddings#method:-models.batchembedcontents>;
/// SDK `models.py` `_EmbedContentParametersPrivate_to_mldev` (googleapis/python-genai).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct BatchEmbedContentsRequest {
    /// One request per input; each names the model again (it must match the URL's).
    pub(crate) requests: Vec<EmbedContentRequest>,
}

/// One `EmbedContentRequest`.
///
/// Source: <https://ai.google.dev/api/embeddings#EmbedContentRequest>. `taskType`, `title` and
/// `outputDimensionality` are sent at the top level, as the official SDK sends them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmbedContentRequest {
    /// `models/{model}`.
    pub(crate) model: String,
    /// The text, as one part.
    pub(crate) content: Content,
    /// What the embedding is for (`RETRIEVAL_QUERY`, `SEMANTIC_SIMILARITY`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) task_type: Option<String>,
    /// The document's title, with `RETRIEVAL_DOCUMENT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    /// Truncates the vector to this many dimensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output_dimensionality: Option<u32>,
}

/// The answer of `batchEmbedContents`: one embedding per request, in order.
///
/// Source: <https://ai.google.dev/api/embeddings#response-body_1>. `usageMetadata` is newer
/// (2026) and missing from many answers, so it is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchEmbedContentsResponse {
    /// The vectors.
    #[serde(default)]
    pub(crate) embeddings: Vec<ContentEmbedding>,
    /// Token counts, when given.
    #[serde(default)]
    pub(crate) usage_metadata: Option<EmbeddingUsageMetadata>,
}

/// `ContentEmbedding`: `{"values": [...]}`.
///
/// Source: <https://ai.google.dev/api/embeddings#contentembedding>.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct ContentEmbedding {
    /// The vector.
    #[serde(default)]
    pub(crate) values: Vec<f32>,
}

/// `EmbeddingUsageMetadata`. Note `promptTokenDetails`, not generateContent's
/// `promptTokensDetails`; only the total is read.
///
/// Source: the Generative Language API discovery document (`EmbeddingUsageMetadata`), and
/// answers recorded in June 2026 in pydantic-ai's test cassettes
/// (<https://github.com/pydantic/pydantic-ai/blob/4fda38988f2939fa6ea9cdefcf120693e10ef491/tests/cassettes/test_embeddings/test_google_task_prefix%5Btask-ignored-on-other-model%5D.yaml>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmbeddingUsageMetadata {
    /// Input tokens of every request together.
    #[serde(default)]
    pub(crate) prompt_token_count: Option<u64>,
}

/// The body of `models/{model}:generateContent` for an image model: a prompt, and the output
/// asked for as images. A type of its own, so chat requests never carry these fields.
///
/// Source: <https://ai.google.dev/gemini-api/docs/image-generation>; SDK `models.py`
/// `_GenerateContentConfig_to_mldev` (`responseModalities`, `imageConfig`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageGenerateContentRequest {
    /// One `user` turn with the prompt.
    pub(crate) contents: Vec<Content>,
    /// The output modalities and the image's shape.
    pub(crate) generation_config: ImageGenerationConfig,
}

/// `generationConfig` of an image request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageGenerationConfig {
    /// `["IMAGE"]`, or `["TEXT", "IMAGE"]` for the Gemini 2.0 preview, which refuses image-only.
    pub(crate) response_modalities: Vec<&'static str>,
    /// The aspect ratio and size; left out when neither is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) image_config: Option<ImageConfig>,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<i64>,
}

/// `generationConfig.imageConfig`.
///
/// Source: SDK `types.py` `ImageConfig` (`aspectRatio`; `imageSize` `1K`, `2K`, `4K`; the
/// output MIME type and compression "not supported in Gemini API").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageConfig {
    /// `1:1`, `16:9`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) aspect_ratio: Option<String>,
    /// `1K`, `2K`, `4K`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) image_size: Option<String>,
}

/// The body of `models/{imagen-model}:predict`.
///
/// Source: SDK `models.py` `_GenerateImagesParameters_to_mldev` and
/// `_GenerateImagesConfig_to_mldev` (googleapis/python-genai, before commit `43ef621`, which
/// disabled Imagen for the Developer API in the SDK);
/// <https://ai.google.dev/gemini-api/docs/imagen>.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PredictRequest {
    /// One instance: the prompt.
    pub(crate) instances: Vec<PredictInstance>,
    /// How many images and of what shape.
    pub(crate) parameters: PredictParameters,
}

/// `instances[]`: `{"prompt": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PredictInstance {
    /// What to draw.
    pub(crate) prompt: String,
}

/// `parameters` of an Imagen request: the keys the SDK sends to the Developer API.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PredictParameters {
    /// Images to generate, 1 to 4.
    pub(crate) sample_count: u32,
    /// `1:1`, `3:4`, `4:3`, `9:16`, `16:9`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) aspect_ratio: Option<String>,
    /// `dont_allow`, `allow_adult`, `allow_all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) person_generation: Option<String>,
    /// `1K` or `2K` (Imagen 4 Standard and Ultra): the SDK's `image_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sample_image_size: Option<String>,
    /// Asks for `raiFilteredReason` on filtered images, so a refusal can say why.
    pub(crate) include_rai_reason: bool,
    /// The output MIME type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output_options: Option<OutputOptions>,
}

/// `parameters.outputOptions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutputOptions {
    /// `image/png` or `image/jpeg`.
    pub(crate) mime_type: String,
}

/// The answer of `:predict`.
///
/// Source: SDK `models.py` `_GenerateImagesResponse_from_mldev`, `_GeneratedImage_from_mldev`,
/// `_Image_from_mldev`. Every image filtered: `predictions` absent (or only filtered entries,
/// with `includeRaiReason`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PredictResponse {
    /// One per image (or per filtered image).
    #[serde(default)]
    pub(crate) predictions: Vec<Prediction>,
}

/// `predictions[]`: an image, or why it was filtered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Prediction {
    /// The image, base64.
    #[serde(default)]
    pub(crate) bytes_base64_encoded: Option<String>,
    /// Its MIME type.
    #[serde(default)]
    pub(crate) mime_type: Option<String>,
    /// Why the image was filtered by Google's responsible-AI filters.
    #[serde(default)]
    pub(crate) rai_filtered_reason: Option<String>,
}

/// The body of `generateContent` on a text-to-speech model: the text, and audio output in one
/// prebuilt voice. A type of its own, so chat requests never carry these fields.
///
/// Source: <https://ai.google.dev/gemini-api/docs/speech-generation>; SDK `types.py`
/// `SpeechConfig`, `VoiceConfig`, `PrebuiltVoiceConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SpeechGenerateContentRequest {
    /// One `user` turn with the text to speak.
    pub(crate) contents: Vec<Content>,
    /// `responseModalities: ["AUDIO"]` and the voice.
    pub(crate) generation_config: SpeechGenerationConfig,
}

/// `generationConfig` of a speech request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SpeechGenerationConfig {
    /// `["AUDIO"]`.
    pub(crate) response_modalities: Vec<&'static str>,
    /// The voice.
    pub(crate) speech_config: SpeechConfig,
}

/// `speechConfig`: one prebuilt voice (single speaker).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SpeechConfig {
    /// The voice.
    pub(crate) voice_config: VoiceConfig,
}

/// `voiceConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VoiceConfig {
    /// A prebuilt voice by name.
    pub(crate) prebuilt_voice_config: PrebuiltVoiceConfig,
}

/// `prebuiltVoiceConfig`: `{"voiceName": "Kore"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PrebuiltVoiceConfig {
    /// One of the documented voice names.
    pub(crate) voice_name: String,
}

/// The JSON body of the Files API's resumable upload start, `POST /upload/v1beta/files`:
/// `{"file": {"displayName": ...}}`.
///
/// Source: <https://ai.google.dev/api/files#method:-media.upload>; SDK `files.py` `upload`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UploadStart {
    /// The file's metadata.
    pub(crate) file: UploadMetadata,
}

/// The metadata of a file being uploaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadMetadata {
    /// A name for people; not the resource name.
    pub(crate) display_name: String,
}

/// The answer to the upload's last chunk (`upload, finalize`): `{"file": File}`.
///
/// Source: <https://ai.google.dev/api/files#response-body>.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub(crate) struct UploadResponse {
    /// The uploaded file.
    #[serde(default)]
    pub(crate) file: Option<File>,
}

/// A Files API file.
///
/// Source: <https://ai.google.dev/api/files#File>: `name` (`files/abc-123`), `uri`,
/// `mimeType`, `state` (`PROCESSING`, `ACTIVE`, `FAILED`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct File {
    /// The resource name, `files/{id}`.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// The URI a prompt names it by (`fileData.fileUri`).
    #[serde(default)]
    pub(crate) uri: Option<String>,
    /// Its MIME type.
    #[serde(default)]
    pub(crate) mime_type: Option<String>,
    /// `PROCESSING`, `ACTIVE` or `FAILED`.
    #[serde(default)]
    pub(crate) state: Option<String>,
}
