//! OpenAI chat-completions wire types, as OpenAI's API reference and official SDKs name them
//! (https://platform.openai.com/docs/api-reference/chat/create), and their mapping to the core.

use llm_gateway::{FinishReason, Message, Part, ResponseFormat, Role, TextRequest, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// `POST /v1/chat/completions` body. Fields the gateway cannot honour are refused by name;
/// bookkeeping fields (`user`, `metadata`, `store`, ...) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatCompletionRequest {
    pub(crate) model: String,
    pub(crate) messages: Vec<ChatMessage>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    response_format: Option<WireResponseFormat>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    functions: Option<Vec<Value>>,
    #[serde(default)]
    logprobs: Option<bool>,
    /// A gateway extension: routes (or aliases) to try, in order, when `model`'s fail.
    #[serde(default)]
    pub(crate) fallbacks: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of a message's content: `text`, `image_url` or `input_audio`.
///
/// <https://platform.openai.com/docs/api-reference/chat/create#chat-create-messages>
#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<ImageUrl>,
    #[serde(default)]
    input_audio: Option<InputAudio>,
}

#[derive(Debug, Deserialize)]
struct ImageUrl {
    url: String,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InputAudio {
    data: String,
    format: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
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

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

impl ChatCompletionRequest {
    /// The core request, or a 400 naming the field the gateway cannot honour.
    pub(crate) fn to_core(&self) -> Result<TextRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("model".into()),
                "`model` must not be empty",
            ));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                Some("messages".into()),
                "`messages` must not be empty",
            ));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid(
                Some("n".into()),
                "only `n: 1` is supported",
            ));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(ApiError::invalid(
                Some("tools".into()),
                "tool calling is not supported yet",
            ));
        }
        if self.functions.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(ApiError::invalid(
                Some("functions".into()),
                "function calling is not supported",
            ));
        }
        if self.logprobs == Some(true) {
            return Err(ApiError::invalid(
                Some("logprobs".into()),
                "`logprobs` is not supported",
            ));
        }
        let mut req = TextRequest::new(self.model.clone());
        for (i, m) in self.messages.iter().enumerate() {
            req.messages.push(m.to_core(i)?);
        }
        req.temperature = self.temperature;
        req.top_p = self.top_p;
        req.max_tokens = self.max_completion_tokens.or(self.max_tokens);
        req.stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        req.seed = self.seed;
        req.presence_penalty = self.presence_penalty;
        req.frequency_penalty = self.frequency_penalty;
        req.response_format = match &self.response_format {
            None | Some(WireResponseFormat::Text) => None,
            Some(WireResponseFormat::JsonObject) => Some(ResponseFormat::JsonObject),
            Some(WireResponseFormat::JsonSchema { json_schema }) => {
                let schema = json_schema.schema.clone().ok_or_else(|| {
                    ApiError::invalid(
                        Some("response_format.json_schema.schema".into()),
                        "`response_format.json_schema.schema` is required",
                    )
                })?;
                Some(ResponseFormat::JsonSchema {
                    name: json_schema.name.clone(),
                    schema,
                    strict: json_schema.strict,
                })
            }
        };
        Ok(req)
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

impl ChatMessage {
    fn to_core(&self, i: usize) -> Result<Message, ApiError> {
        let role = match self.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::invalid(
                    Some(format!("messages[{i}].role")),
                    format!(
                        "role `{other}` is not supported (use system, developer, user or assistant)"
                    ),
                ));
            }
        };
        match &self.content {
            Some(Content::Text(t)) => Ok(Message::new(role, t.clone())),
            Some(Content::Parts(parts)) => {
                let parts = parts
                    .iter()
                    .enumerate()
                    .map(|(j, part)| part.to_core(i, j))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Message::with_parts(role, parts))
            }
            None => Err(ApiError::invalid(
                Some(format!("messages[{i}].content")),
                "`content` is required",
            )),
        }
    }
}

impl ContentPart {
    /// The core part of `messages[i].content[j]`; a 400 naming it when a field it needs is
    /// missing or its type is unknown.
    fn to_core(&self, i: usize, j: usize) -> Result<Part, ApiError> {
        let at = format!("messages[{i}].content[{j}]");
        let missing = |field: &str| {
            ApiError::invalid(
                Some(format!("{at}.{field}")),
                format!("a `{}` part needs `{field}`", self.kind),
            )
        };
        match self.kind.as_str() {
            "text" => Ok(Part::Text(
                self.text.clone().ok_or_else(|| missing("text"))?,
            )),
            "image_url" => {
                let image = self
                    .image_url
                    .as_ref()
                    .ok_or_else(|| missing("image_url"))?;
                Ok(Part::Image {
                    url: image.url.clone(),
                    detail: image.detail.clone(),
                })
            }
            "input_audio" => {
                let audio = self
                    .input_audio
                    .as_ref()
                    .ok_or_else(|| missing("input_audio"))?;
                Ok(Part::Audio {
                    data: audio.data.clone(),
                    format: audio.format.clone(),
                })
            }
            other => Err(ApiError::invalid(
                Some(at),
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
    pub(crate) choices: [Choice<'a>; 1],
    pub(crate) usage: Usage,
}

#[derive(Debug, Serialize)]
pub(crate) struct Choice<'a> {
    pub(crate) index: u32,
    pub(crate) message: AssistantMessage<'a>,
    pub(crate) finish_reason: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct AssistantMessage<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: &'a str,
}

/// One `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatChunk<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<ChunkChoice<'a>>,
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
}

pub(crate) fn finish_reason(f: FinishReason) -> &'static str {
    f.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn maps_every_supported_field() {
        let req = parse(json!({
            "model": "gemini/gemini-2.5-flash",
            "messages": [
                {"role": "developer", "content": "terse"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"}
            ],
            "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 10, "max_tokens": 99,
            "stop": "END", "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.3,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": true}},
            "user": "ignored", "metadata": {"a": "b"}
        }))
        .to_core()
        .unwrap();
        assert_eq!(req.messages[0], Message::new(Role::System, "terse"));
        assert_eq!(req.messages[1].text(), "ab");
        assert_eq!(req.max_tokens, Some(10));
        assert_eq!(req.stop, vec!["END"]);
        assert_eq!(
            req.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "x".into(),
                schema: json!({"type": "object"}),
                strict: Some(true)
            })
        );
    }

    #[test]
    fn image_and_audio_parts_become_core_parts() {
        let req = parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
            ]}]
        }))
        .to_core()
        .unwrap();
        assert_eq!(
            req.messages[0].content,
            vec![
                Part::text("What is this?"),
                Part::Image {
                    url: "data:image/png;base64,iVBORw0K".into(),
                    detail: Some("low".into())
                },
                Part::Audio {
                    data: "UklGRg==".into(),
                    format: "wav".into()
                },
            ]
        );
    }

    #[test]
    fn refuses_what_it_cannot_honour_by_name() {
        for (body, param) in [
            (
                json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "file"}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "messages[0].content[0].image_url",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{}]}),
                "tools",
            ),
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
                "response_format.json_schema.schema",
            ),
        ] {
            let err = parse(body).to_core().unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param));
            assert_eq!(err.status.as_u16(), 400);
        }
    }
}
