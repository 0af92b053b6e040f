//! Pure mapping between the gateway's text types and Gemini's wire types. No IO.

use std::collections::HashMap;

use gateway_core::http::reqwest::Url;
use gateway_core::sse::{SseDecode, SseEventRef, SseStep, interrupted};
use gateway_core::{
    Choice, DataUrl, EmbeddingRequest, EmbeddingResponse, Error, FinishReason, Message, Part,
    ReasoningEffort, ResponseFormat, Result, Role, TextChunk, TextRequest, TextResponse,
    TokenLogprob, TokenUsage, ToolCall, ToolChoice, decode_base64, encode_base64,
};
use serde_json::{Map, Value};

use crate::PROVIDER;
use crate::error::classify;
use crate::schema;
use crate::wire;

/// The MIME type that switches Gemini to JSON output.
const JSON_MIME: &str = "application/json";

/// The most answers one request can ask for: `candidateCount` "must be between [1, 8]"
/// (<https://github.com/googleapis/googleapis/blob/074ea98e532a10130b353c19213315845f25a91f/google/ai/generativelanguage/v1beta/generative_service.proto>,
/// `GenerationConfig.candidate_count`).
pub(crate) const MAX_CANDIDATES: u32 = 8;

/// The most stop sequences: "The set of character sequences (up to 5)"
/// (<https://ai.google.dev/api/generate-content#FIELDS.stop_sequences>).
const MAX_STOP_SEQUENCES: usize = 5;

/// The most top alternatives per token: `logprobs` "must be in the range of [0, 20]"
/// (<https://ai.google.dev/api/generate-content#FIELDS.logprobs>).
const MAX_TOP_LOGPROBS: u32 = 20;

/// Between a tool call's id and the thought signature carried in it (see [`tool_call_id`]):
/// LiteLLM's separator (<https://github.com/BerriAI/litellm/pull/18374>), so ids made by either
/// gateway come back to the other intact.
const SIGNATURE_SEPARATOR: &str = "__thought__";

/// The thought signature sent on a Gemini 3 function call that has none of its own (made by
/// another model, or by the client): the documented "dummy" value that skips validation
/// (<https://ai.google.dev/gemini-api/docs/thought-signatures#faqs>), base64-encoded as the
/// official SDK sends `b"skip_thought_signature_validator"`.
pub(crate) const DUMMY_SIGNATURE: &str = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=";

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

/// Which generation of Gemini a model id names, as far as thinking and thought signatures go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// Gemini 3 and later (and the `-latest` aliases, which point there): `thinkingLevel`, and
    /// thought signatures validated on function calls.
    Gemini3 {
        /// A Pro model: no `MINIMAL` level.
        pro: bool,
    },
    /// Gemini 2.5: `thinkingBudget`.
    Gemini25 {
        /// 2.5 Pro, which cannot stop thinking.
        pro: bool,
    },
    /// Anything else (Gemini 2.0 and older, Gemma): no thinking configuration.
    Other,
}

impl Family {
    pub(crate) fn of(model: &str) -> Self {
        let id = model.strip_prefix("models/").unwrap_or(model);
        let Some(rest) = id.strip_prefix("gemini-") else {
            return Self::Other;
        };
        let pro = id.contains("-pro");
        let version: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut numbers = version.split('.').map(|n| n.parse::<u32>().ok());
        match (numbers.next().flatten(), numbers.next().flatten()) {
            (Some(major), _) if major >= 3 => Self::Gemini3 { pro },
            (Some(2), Some(5)) => Self::Gemini25 { pro },
            (Some(_), _) => Self::Other,
            (None, _) if rest.ends_with("-latest") => Self::Gemini3 { pro },
            (None, _) => Self::Other,
        }
    }
}

/// Images the gateway downloads for a request (see [`downloads`]), keyed by
/// `(message, part)`.
pub(crate) type Fetched = HashMap<(usize, usize), wire::Blob>;

/// Where the images of [`downloads`] stand when the request is converted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Downloads<'a> {
    /// Not fetched yet: the request is only checked, with empty stand-ins for the images.
    Pending,
    /// Fetched: each is sent inline.
    Done(&'a Fetched),
}

/// How an image part's URL reaches Gemini.
#[derive(Debug, PartialEq, Eq)]
enum ImageSource<'a> {
    /// A `data:` URL: decoded and sent inline.
    Data,
    /// A URL Gemini fetches itself, sent as `fileData`.
    FileUri,
    /// Any other http(s) URL: the gateway downloads it and sends it inline.
    Download(&'a str),
    /// Not a URL the gateway can use.
    Unusable,
}

/// Gemini fetches two kinds of URL itself: files uploaded with its Files API
/// (`https://generativelanguage.googleapis.com/v1beta/files/...`, the `uri` of a `File`:
/// <https://ai.google.dev/gemini-api/docs/files>) and YouTube videos
/// (<https://ai.google.dev/gemini-api/docs/video-understanding#youtube>).
fn image_source(url: &str) -> ImageSource<'_> {
    if DataUrl::parse(url).is_some() {
        return ImageSource::Data;
    }
    let Ok(parsed) = Url::parse(url) else {
        return ImageSource::Unusable;
    };
    match parsed.scheme() {
        "https" | "http" => {}
        _ => return ImageSource::Unusable,
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let files_api = host == "generativelanguage.googleapis.com"
        && parsed
            .path()
            .split('/')
            .nth(2)
            .is_some_and(|segment| segment == "files");
    let youtube = matches!(
        host.as_str(),
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "youtu.be"
    );
    if parsed.scheme() == "https" && (files_api || youtube) {
        ImageSource::FileUri
    } else {
        ImageSource::Download(url)
    }
}

/// The image parts of `req` the gateway must download before sending it: `(message, part, URL)`.
pub(crate) fn downloads(req: &TextRequest) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    for (i, message) in req.messages.iter().enumerate() {
        for (j, part) in message.content.iter().enumerate() {
            if let Part::Image { url, .. } = part
                && let ImageSource::Download(url) = image_source(url)
            {
                out.push((i, j, url));
            }
        }
    }
    out
}

/// The inline image of `messages[i].content[j]` from a download's body and `Content-Type`, which
/// must name an image: Gemini reads the bytes as that type.
pub(crate) fn downloaded_image(
    i: usize,
    j: usize,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<wire::Blob> {
    let at = format!("messages[{i}].content[{j}]");
    let mime = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !mime.starts_with("image/") || mime.len() == "image/".len() {
        let shown = if mime.is_empty() { "none" } else { &mime };
        return Err(invalid(format!(
            "{at}: the linked file is not an image (its Content-Type is {shown})"
        ))
        .with_param(at));
    }
    Ok(wire::Blob {
        mime_type: mime,
        data: encode_base64(body),
    })
}

/// The `generateContent` body for `req`.
///
/// System messages become `systemInstruction` parts; user and assistant messages become `user`
/// and `model` turns, an assistant's tool calls `functionCall` parts of its turn, and each run of
/// tool results one `user` turn of `functionResponse` parts. A request without any user or
/// assistant message is refused.
pub(crate) fn text_request(
    req: &TextRequest,
    downloads: Downloads<'_>,
) -> Result<wire::GenerateContentRequest> {
    let family = Family::of(&req.model);
    let mut system = Vec::new();
    let mut contents = Vec::new();
    // Consecutive tool results, sent as one `user` turn.
    let mut results: Vec<wire::Part> = Vec::new();
    for (i, message) in req.messages.iter().enumerate() {
        if message.role != Role::Tool && !results.is_empty() {
            contents.push(turn(wire::Role::User, std::mem::take(&mut results)));
        }
        match message.role {
            Role::System => system.extend(content_parts(message, i, downloads)?),
            Role::User => contents.push(turn(
                wire::Role::User,
                content_parts(message, i, downloads)?,
            )),
            Role::Assistant => {
                let mut parts = content_parts(message, i, downloads)?;
                parts.extend(function_calls(message, i, family)?);
                contents.push(turn(wire::Role::Model, parts));
            }
            Role::Tool => results.push(function_response(req, i)?),
            other => {
                return Err(invalid(format!(
                    "messages[{i}]: Gemini takes no `{}` messages",
                    other.as_str()
                ))
                .with_param(format!("messages[{i}].role")));
            }
        }
    }
    if !results.is_empty() {
        contents.push(turn(wire::Role::User, results));
    }
    if contents.is_empty() {
        return Err(invalid(
            "a Gemini request needs at least one user or assistant message",
        ));
    }
    let (tools, tool_config) = tools(req)?;
    Ok(wire::GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(wire::Content {
            role: None,
            parts: system,
        }),
        generation_config: generation_config(req, family)?,
        tools,
        tool_config,
    })
}

fn turn(role: wire::Role, parts: Vec<wire::Part>) -> wire::Content {
    wire::Content {
        role: Some(role),
        parts,
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::unsupported(message).with_provider(PROVIDER)
}

/// `generationConfig`, or `None` when nothing is set.
fn generation_config(req: &TextRequest, family: Family) -> Result<Option<wire::GenerationConfig>> {
    let (response_mime_type, response_json_schema) = match &req.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some(JSON_MIME.to_owned()), None),
        // `name` has no Gemini counterpart; the schema is enforced as far as Gemini honours it,
        // and `strict` refuses what it does not (see `schema`).
        Some(ResponseFormat::JsonSchema { schema, strict, .. }) => (
            Some(JSON_MIME.to_owned()),
            Some(schema::convert(
                schema,
                "response_format.json_schema.schema",
                strict.unwrap_or(false),
            )?),
        ),
        Some(_) => {
            return Err(unsupported("Gemini does not take this response_format")
                .with_param("response_format"));
        }
    };
    if req.stop.len() > MAX_STOP_SEQUENCES {
        return Err(invalid(format!(
            "Gemini takes at most {MAX_STOP_SEQUENCES} stop sequences, not {}",
            req.stop.len()
        ))
        .with_param("stop"));
    }
    let candidate_count = match req.n {
        None | Some(1) => None,
        Some(0) => return Err(invalid("`n` must be at least 1").with_param("n")),
        Some(n) if n > MAX_CANDIDATES => {
            return Err(unsupported(format!(
                "Gemini returns at most {MAX_CANDIDATES} answers per request"
            ))
            .with_param("n"));
        }
        Some(n) => Some(n),
    };
    let logprobs = match req.top_logprobs {
        Some(k) if k > MAX_TOP_LOGPROBS => {
            return Err(invalid(format!(
                "Gemini returns at most {MAX_TOP_LOGPROBS} top log probabilities per token"
            ))
            .with_param("top_logprobs"));
        }
        k => k,
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
        candidate_count,
        // `top_logprobs` only makes sense with `logprobs`, so it asks for them too.
        response_logprobs: (req.logprobs || logprobs.is_some()).then_some(true),
        logprobs,
        thinking_config: req
            .reasoning_effort
            .map(|effort| thinking_config(effort, family, &req.model))
            .transpose()?,
    };
    Ok((config != wire::GenerationConfig::default()).then_some(config))
}

/// `reasoning_effort` as Google's own OpenAI-compatible endpoint maps it
/// (<https://ai.google.dev/gemini-api/docs/openai#thinking>): on Gemini 3, `minimal` is `MINIMAL`
/// (`LOW` on Pro models, which lack `MINIMAL`) and `low` / `medium` / `high` the level of the same
/// name; on Gemini 2.5, `minimal` and `low` are a budget of 1,024 tokens, `medium` 8,192 and
/// `high` 24,576. `none` turns thinking off (a budget of 0) on 2.5 Flash and Flash-Lite only:
/// "reasoning cannot be turned off for Gemini 2.5 Pro or 3 models", so there it is refused, as
/// is any effort on models without thinking.
fn thinking_config(
    effort: ReasoningEffort,
    family: Family,
    model: &str,
) -> Result<wire::ThinkingConfig> {
    use ReasoningEffort as E;
    let cannot = |why: String| Err(unsupported(why).with_param("reasoning_effort"));
    match family {
        Family::Gemini3 { pro } => {
            let level = match effort {
                E::Minimal if pro => "LOW",
                E::Minimal => "MINIMAL",
                E::Low => "LOW",
                E::Medium => "MEDIUM",
                E::High => "HIGH",
                E::None => {
                    return cannot(format!(
                        "`{model}` cannot stop thinking (reasoning_effort `none`); use `minimal` \
                         or `low`"
                    ));
                }
                _ => return cannot(format!("reasoning_effort `{}`", effort.as_str())),
            };
            Ok(wire::ThinkingConfig {
                thinking_level: Some(level),
                ..wire::ThinkingConfig::default()
            })
        }
        Family::Gemini25 { pro } => {
            let budget = match effort {
                E::None if pro => {
                    return cannot(format!(
                        "`{model}` cannot stop thinking (reasoning_effort `none`)"
                    ));
                }
                E::None => 0,
                E::Minimal | E::Low => 1_024,
                E::Medium => 8_192,
                E::High => 24_576,
                _ => return cannot(format!("reasoning_effort `{}`", effort.as_str())),
            };
            Ok(wire::ThinkingConfig {
                thinking_budget: Some(budget),
                ..wire::ThinkingConfig::default()
            })
        }
        Family::Other => cannot(format!(
            "`{model}` has no thinking to configure with reasoning_effort"
        )),
    }
}

/// `tools` as one Gemini `Tool` of function declarations, and `tool_choice` (with the tools'
/// `strict`) as `toolConfig`.
///
/// Sources: <https://ai.google.dev/gemini-api/docs/function-calling#function_calling_modes>;
/// SDK `types.py` `class FunctionCallingConfigMode`. `auto` is `AUTO`, or `VALIDATED` (calls
/// constrained to the declared schemas, as `strict` asks) when a tool is `strict`; `none` is
/// `NONE`; `required` is `ANY`; a named function is `ANY` limited to it by
/// `allowedFunctionNames`. Gemini refuses a `toolConfig` without functions, so none is sent then.
fn tools(req: &TextRequest) -> Result<(Vec<wire::Tool>, Option<wire::ToolConfig>)> {
    let mut declarations = Vec::with_capacity(req.tools.len());
    for (t, tool) in req.tools.iter().enumerate() {
        let at = format!("tools[{t}].function");
        check_function_name(&tool.name, &format!("{at}.name"))?;
        if req.tools[..t].iter().any(|other| other.name == tool.name) {
            return Err(
                invalid(format!("{at}.name: `{}` is declared twice", tool.name))
                    .with_param(format!("{at}.name")),
            );
        }
        let parameters = match &tool.parameters {
            None => None,
            Some(parameters) => {
                let at = format!("{at}.parameters");
                let converted = schema::convert(parameters, &at, tool.strict.unwrap_or(false))?;
                // "The schema must describe an object where the properties are the parameters"
                // (<https://ai.google.dev/api/caching#FunctionDeclaration>).
                match converted.get("type") {
                    None => {}
                    Some(Value::String(t)) if t == "object" => {}
                    Some(_) => {
                        return Err(invalid(format!(
                            "{at}.type: a function's parameters must be an object"
                        ))
                        .with_param(format!("{at}.type")));
                    }
                }
                Some(converted)
            }
        };
        declarations.push(wire::FunctionDeclaration {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters_json_schema: parameters,
        });
    }

    use wire::FunctionCallingMode as Mode;
    let strict = req.tools.iter().any(|t| t.strict == Some(true));
    let (mode, allowed) = match (&req.tool_choice, declarations.is_empty()) {
        (None | Some(ToolChoice::Auto | ToolChoice::None), true) => (None, Vec::new()),
        (Some(ToolChoice::Required | ToolChoice::Function(_)), true) => {
            return Err(
                invalid("tool_choice asks for a tool call, but no tools are given")
                    .with_param("tool_choice"),
            );
        }
        (None, false) if strict => (Some(Mode::Validated), Vec::new()),
        (None, false) => (None, Vec::new()),
        (Some(ToolChoice::Auto), false) if strict => (Some(Mode::Validated), Vec::new()),
        (Some(ToolChoice::Auto), false) => (Some(Mode::Auto), Vec::new()),
        (Some(ToolChoice::None), false) => (Some(Mode::None), Vec::new()),
        (Some(ToolChoice::Required), false) => (Some(Mode::Any), Vec::new()),
        (Some(ToolChoice::Function(name)), false) => {
            if !req.tools.iter().any(|t| &t.name == name) {
                return Err(invalid(format!(
                    "tool_choice names the function `{name}`, which is not among the tools"
                ))
                .with_param("tool_choice"));
            }
            (Some(Mode::Any), vec![name.clone()])
        }
        (Some(_), _) => {
            return Err(
                unsupported("Gemini does not take this tool_choice").with_param("tool_choice")
            );
        }
    };
    // Gemini has no switch for parallel calls: any answer may hold several `functionCall` parts
    // (<https://ai.google.dev/gemini-api/docs/function-calling#parallel_function_calling>; the
    // request has no such field: <https://ai.google.dev/api/generate-content#request-body>).
    // A client that asked for at most one call per turn would answer only one of them, which
    // Gemini refuses on the next turn, so `false` is refused unless no call can come.
    if req.parallel_tool_calls == Some(false)
        && !declarations.is_empty()
        && mode != Some(Mode::None)
    {
        return Err(
            unsupported("Gemini cannot be told to make at most one tool call per turn")
                .with_param("parallel_tool_calls"),
        );
    }
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![wire::Tool {
            function_declarations: declarations,
        }]
    };
    let config = mode.map(|mode| wire::ToolConfig {
        function_calling_config: wire::FunctionCallingConfig {
            mode,
            allowed_function_names: allowed,
        },
    });
    Ok((tools, config))
}

/// Gemini's rule for function names: "Must start with a letter or an underscore. Must be a-z,
/// A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 128"
/// (<https://ai.google.dev/api/caching#FunctionDeclaration>).
fn check_function_name(name: &str, at: &str) -> Result<()> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if first_ok && rest_ok && name.len() <= 128 {
        Ok(())
    } else {
        Err(invalid(format!(
            "{at}: `{name}` is not a Gemini function name (a letter or `_`, then letters, digits, \
             `_`, `.`, `:` or `-`, at most 128)"
        ))
        .with_param(at))
    }
}

/// The content parts of `messages[i]`.
fn content_parts(message: &Message, i: usize, downloads: Downloads<'_>) -> Result<Vec<wire::Part>> {
    message
        .content
        .iter()
        .enumerate()
        .map(|(j, part)| wire_part(part, i, j, downloads))
        .collect()
}

/// The `functionCall` parts of an assistant turn `messages[i]`, each with the thought signature
/// its id carries.
///
/// Gemini 3 validates signatures on function calls: a turn whose calls have none (made by another
/// model, or invented by the client) gets the documented dummy one on its first call, where
/// Gemini looks for it (<https://ai.google.dev/gemini-api/docs/thought-signatures>: of parallel
/// calls only the first carries a signature).
fn function_calls(message: &Message, i: usize, family: Family) -> Result<Vec<wire::Part>> {
    let mut parts = Vec::with_capacity(message.tool_calls.len());
    for (k, call) in message.tool_calls.iter().enumerate() {
        let at = format!("messages[{i}].tool_calls[{k}]");
        if call.name.is_empty() {
            return Err(
                invalid(format!("{at}.function.name: a tool call needs a name"))
                    .with_param(format!("{at}.function.name")),
            );
        }
        let (id, signature) = split_tool_call_id(&call.id, &format!("{at}.id"))?;
        parts.push(wire::Part {
            function_call: Some(wire::FunctionCall {
                id: (!id.is_empty()).then(|| id.to_owned()),
                name: call.name.clone(),
                args: Some(arguments(
                    &call.arguments,
                    &format!("{at}.function.arguments"),
                )?),
            }),
            thought_signature: signature,
            ..wire::Part::default()
        });
    }
    if matches!(family, Family::Gemini3 { .. })
        && parts.iter().all(|p| p.thought_signature.is_none())
        && let Some(first) = parts.first_mut()
    {
        first.thought_signature = Some(DUMMY_SIGNATURE.to_owned());
    }
    Ok(parts)
}

/// A call's arguments (OpenAI's JSON text) as the JSON object Gemini takes; empty text is no
/// arguments.
fn arguments(text: &str, at: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(args @ Value::Object(_)) => Ok(args),
        Ok(_) => Err(invalid(format!("{at}: the arguments must be a JSON object")).with_param(at)),
        Err(e) => Err(invalid(format!("{at}: the arguments are not JSON: {e}")).with_param(at)),
    }
}

/// The `functionResponse` part of the tool result `messages[i]`.
///
/// Its `name` is that of the call it answers, found among the earlier assistant turns. Gemini's
/// `response` is a JSON object: a result that is one is sent as it is; any other result goes
/// under `output`, the key Gemini reads a function's output from
/// (<https://ai.google.dev/api/caching#FunctionResponse>).
fn function_response(req: &TextRequest, i: usize) -> Result<wire::Part> {
    let message = &req.messages[i];
    let at = format!("messages[{i}].tool_call_id");
    let Some(call_id) = message.tool_call_id.as_deref() else {
        return Err(
            invalid(format!("{at}: a tool message needs the id of its call")).with_param(at),
        );
    };
    let call = req.messages[..i]
        .iter()
        .rev()
        .filter(|m| m.role == Role::Assistant)
        .flat_map(|m| m.tool_calls.iter().rev())
        .find(|call| call.id == call_id);
    let Some(call) = call else {
        return Err(invalid(format!(
            "{at}: no earlier assistant message made the tool call `{call_id}`"
        ))
        .with_param(at));
    };
    if let Some(j) = message
        .content
        .iter()
        .position(|p| !matches!(p, Part::Text(_)))
    {
        return Err(
            invalid(format!("messages[{i}].content[{j}]: a tool result is text"))
                .with_param(format!("messages[{i}].content[{j}]")),
        );
    }
    let text = message.text();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        Ok(other) => serde_json::json!({ "output": other }),
        Err(_) => serde_json::json!({ "output": text }),
    };
    // The id Gemini gave the call (or the client's), without the signature it carries.
    let (id, _) = split_tool_call_id(call_id, &at)?;
    Ok(wire::Part {
        function_response: Some(wire::FunctionResponse {
            id: (!id.is_empty()).then(|| id.to_owned()),
            name: call.name.clone(),
            response,
        }),
        ..wire::Part::default()
    })
}

/// A tool call's id as clients see it: Gemini's `functionCall.id` (or a new `call_<random>` when
/// it gave none), then, when the call carries a thought signature, [`SIGNATURE_SEPARATOR`] and
/// the signature in URL-safe base64 without padding, so the id stays a plain token.
///
/// Clients send the id back unchanged on the assistant turn's `tool_calls`, which is how the
/// signature returns to its call, as Gemini requires
/// (<https://ai.google.dev/gemini-api/docs/thought-signatures>).
pub(crate) fn tool_call_id(id: Option<&str>, signature: Option<&str>) -> String {
    let mut out = match id {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => new_call_id(),
    };
    if let Some(signature) = signature.filter(|s| !s.is_empty()) {
        out.push_str(SIGNATURE_SEPARATOR);
        out.extend(signature.chars().filter(|c| *c != '=').map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        }));
    }
    out
}

/// `call_` and 24 random letters and digits, OpenAI's form.
fn new_call_id() -> String {
    let mut id = String::with_capacity(29);
    id.push_str("call_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

/// A tool call id split into Gemini's id and the thought signature it carries (standard base64
/// again, padded as Gemini sends it). An id carrying something that is not a signature is
/// refused, naming `at`.
pub(crate) fn split_tool_call_id<'a>(full: &'a str, at: &str) -> Result<(&'a str, Option<String>)> {
    let Some((id, carried)) = full.split_once(SIGNATURE_SEPARATOR) else {
        return Ok((full, None));
    };
    let mut signature: String = carried
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !signature.len().is_multiple_of(4) {
        signature.push('=');
    }
    if carried.is_empty() || decode_base64(&signature).is_none() {
        return Err(invalid(format!(
            "{at}: the tool call id carries no valid Gemini thought signature after \
             `{SIGNATURE_SEPARATOR}`"
        ))
        .with_param(at));
    }
    Ok((id, Some(signature)))
}

/// One content part of `messages[i].content[j]` on the wire.
///
/// Images and audio go inline (`inlineData`, base64): an image as a `data:` URL or downloaded by
/// the gateway from an http(s) link, audio as OpenAI's `input_audio` (`data`, `format`). Links
/// Gemini fetches itself (Files API, YouTube) go as `fileData`.
fn wire_part(part: &Part, i: usize, j: usize, downloads: Downloads<'_>) -> Result<wire::Part> {
    let at = || format!("messages[{i}].content[{j}]");
    let blob = |blob: wire::Blob| wire::Part {
        inline_data: Some(blob),
        ..wire::Part::default()
    };
    match part {
        Part::Text(text) => Ok(wire::Part {
            text: Some(text.clone()),
            ..wire::Part::default()
        }),
        Part::Image { url, .. } => match DataUrl::parse(url) {
            Some(Ok(image)) => Ok(blob(wire::Blob {
                mime_type: image.mime,
                data: encode_base64(&image.data),
            })),
            Some(Err(why)) => Err(invalid(format!("{}: {why}", at())).with_param(at())),
            None => match image_source(url) {
                // The type is left to Gemini, which knows its files; `mimeType` is optional
                // (<https://ai.google.dev/api/caching#FileData>).
                ImageSource::FileUri => Ok(wire::Part {
                    file_data: Some(wire::FileData {
                        mime_type: None,
                        file_uri: url.clone(),
                    }),
                    ..wire::Part::default()
                }),
                ImageSource::Download(_) => match downloads {
                    Downloads::Pending => Ok(blob(wire::Blob::default())),
                    Downloads::Done(fetched) => {
                        fetched.get(&(i, j)).cloned().map(blob).ok_or_else(|| {
                            Error::new(
                                gateway_core::ErrorKind::Config,
                                format!("{}: the image was not downloaded (a gateway bug)", at()),
                            )
                            .with_provider(PROVIDER)
                        })
                    }
                },
                ImageSource::Data | ImageSource::Unusable => Err(invalid(format!(
                    "{}: an image must be a data URL (`data:image/png;base64,...`) or an http(s) \
                     link",
                    at()
                ))
                .with_param(at())),
            },
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
            Ok(blob(wire::Blob {
                mime_type: mime.to_owned(),
                data: data.clone(),
            }))
        }
        other => Err(unsupported(format!(
            "{}: Gemini does not take `{}` parts",
            at(),
            other.kind()
        ))
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
/// Every candidate is an answer, in `index` order: the first fills the response, the others its
/// `alternatives`. `usageMetadata` counts them all. A blocked prompt
/// (`promptFeedback.blockReason`, no candidates) is an empty answer with
/// [`FinishReason::ContentFilter`], not an error.
pub(crate) fn text_response(
    resp: wire::GenerateContentResponse,
    requested_model: &str,
) -> Result<TextResponse> {
    let usage = resp.usage_metadata.map(usage).unwrap_or_default();
    let model = resp
        .model_version
        .unwrap_or_else(|| requested_model.to_owned());
    let mut candidates = resp.candidates.unwrap_or_default();
    // A stable sort: candidates without an index keep their place.
    candidates.sort_by_key(|c| c.index.unwrap_or(0));
    let mut choices = candidates.into_iter().map(choice);
    let Some(first) = choices.next() else {
        let block = resp.prompt_feedback.and_then(|f| f.block_reason);
        if block.is_none() {
            return Err(Error::decode(
                "the answer has neither a candidate nor a promptFeedback.blockReason",
            )
            .with_provider(PROVIDER));
        }
        tracing::debug!(provider = PROVIDER, reason = ?block, "prompt blocked");
        let mut answer = TextResponse::new(model, "", FinishReason::ContentFilter, usage);
        answer.id = resp.response_id;
        return Ok(answer);
    };
    let mut answer = TextResponse::new(model, first.content, first.finish_reason, usage);
    answer.id = resp.response_id;
    answer.tool_calls = first.tool_calls;
    answer.logprobs = first.logprobs;
    answer.alternatives = choices.collect();
    Ok(answer)
}

/// One candidate as an answer: its text, its function calls and its log probabilities.
///
/// A `thoughtSignature` on a text part has nowhere to go in OpenAI's format and is dropped:
/// Gemini recommends sending those back but does not require it; only function calls' are
/// validated (<https://ai.google.dev/gemini-api/docs/thought-signatures>).
fn choice(candidate: wire::Candidate) -> Choice {
    let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
    let tool_calls: Vec<ToolCall> = parts.iter().filter_map(tool_call).collect();
    let reason = finish_reason(candidate.finish_reason, !tool_calls.is_empty());
    let mut choice = Choice::new(answer_text(&parts), reason);
    choice.tool_calls = tool_calls;
    choice.logprobs = candidate.logprobs_result.map(logprobs);
    choice
}

/// The tool call of a `functionCall` part: its arguments as JSON text, its id carrying the
/// part's thought signature (see [`tool_call_id`]).
fn tool_call(part: &wire::Part) -> Option<ToolCall> {
    let call = part.function_call.as_ref()?;
    let arguments = call
        .args
        .as_ref()
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    Some(ToolCall::new(
        tool_call_id(call.id.as_deref(), part.thought_signature.as_deref()),
        call.name.clone(),
        arguments,
    ))
}

/// `logprobsResult` as one [`TokenLogprob`] per decoding step: the chosen token, with the top
/// alternatives of the same step when they were asked for.
fn logprobs(result: wire::LogprobsResult) -> Vec<TokenLogprob> {
    let mut tops = result.top_candidates.into_iter();
    result
        .chosen_candidates
        .into_iter()
        .map(|chosen| {
            let mut token = TokenLogprob::new(chosen.token, chosen.log_probability);
            token.top = tops
                .next()
                .map(|step| {
                    step.candidates
                        .into_iter()
                        .map(|c| (c.token, c.log_probability))
                        .collect()
                })
                .unwrap_or_default();
            token
        })
        .collect()
}

/// The answer text of `parts`: every `text`, in order, except thought summaries.
fn answer_text(parts: &[wire::Part]) -> String {
    parts
        .iter()
        .filter(|p| p.thought != Some(true))
        .filter_map(|p| p.text.as_deref())
        .collect()
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
/// order: the new parts in their order (a `Delta` for each run of answer text, a `ToolCall` for
/// each `functionCall`, which the Developer API sends whole, never in pieces), a `Usage` when
/// `usageMetadata` is present (cumulative), and a `Finish` the first time a `finishReason` (or a
/// prompt `blockReason`) shows up. Only the first candidate is read (streams ask for one).
/// Gemini sends no `[DONE]`: the end of the body after a finish is the normal end, and an end
/// without one is [`ErrorKind::StreamInterrupted`](gateway_core::ErrorKind::StreamInterrupted).
#[derive(Debug, Default)]
pub(crate) struct StreamDecoder {
    finished: bool,
    /// Tool calls so far: the next call's index. A `functionCall` part may arrive in an earlier
    /// event than the `finishReason`.
    calls: u32,
    /// The shape of the last plain text event, to read the next one by.
    shape: Option<wire::TextShape>,
}

impl StreamDecoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }
}

impl SseDecode for StreamDecoder {
    type Item = TextChunk;

    fn on_event(&mut self, event: SseEventRef<'_>, out: &mut Vec<TextChunk>) -> Result<SseStep> {
        // Most of a stream: an event that repeats the last text event's shape with another
        // text and usage. Its text and usage are all there is to it, taken without building
        // the event (its candidates' and parts' vectors, its model version and id).
        if let Some((text, counts)) = (self.shape.as_ref()).and_then(|s| s.read(event.data)) {
            if !text.is_empty() {
                out.push(TextChunk::Delta(text.into_owned()));
            }
            if let Some(u) = counts {
                out.push(TextChunk::Usage(usage(u)));
            }
            return Ok(SseStep::Continue);
        }
        // By hand when the event is made of text (most are), else by serde_json.
        let resp = match wire::GenerateContentResponse::scan_event(event.data) {
            Some((resp, shape)) => {
                self.shape = shape;
                resp
            }
            None => serde_json::from_str(event.data).map_err(|e| {
                Error::decode(format!("unexpected stream event: {e}"))
                    .with_provider(PROVIDER)
                    .with_body(event.data)
            })?,
        };
        if resp.error.is_some() {
            // An error after the 200: it carries its HTTP status only as `error.code`.
            let status = serde_json::from_str::<wire::ErrorEnvelope>(event.data)
                .ok()
                .and_then(|e| e.error.code)
                .unwrap_or(500);
            return Err(classify(status, &Default::default(), event.data));
        }
        let candidate = resp
            .candidates
            .and_then(|c| c.into_iter().find(|c| c.index.unwrap_or(0) == 0));
        let (parts, reason) = match candidate {
            Some(c) => (
                c.content.map(|c| c.parts).unwrap_or_default(),
                c.finish_reason,
            ),
            None => (Vec::new(), None),
        };
        let mut text = String::new();
        for part in parts {
            if let Some(call) = tool_call(&part) {
                if !text.is_empty() {
                    out.push(TextChunk::Delta(std::mem::take(&mut text)));
                }
                out.push(TextChunk::ToolCall {
                    index: self.calls,
                    id: Some(call.id),
                    name: Some(call.name),
                    arguments: call.arguments,
                });
                self.calls += 1;
            } else if part.thought != Some(true)
                && let Some(piece) = part.text
            {
                // An event's one text part (the usual case) is passed on, not copied.
                if text.is_empty() {
                    text = piece;
                } else {
                    text.push_str(&piece);
                }
            }
        }
        if !text.is_empty() {
            out.push(TextChunk::Delta(text));
        }
        if let Some(u) = resp.usage_metadata {
            out.push(TextChunk::Usage(usage(u)));
        }
        let blocked = resp.prompt_feedback.and_then(|f| f.block_reason).is_some();
        if !self.finished {
            let finish = match reason {
                Some(reason) => Some(finish_reason(Some(reason), self.calls > 0)),
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

pub(crate) mod audio;
pub(crate) mod image;
pub(crate) mod speech;
pub(crate) mod transcription;

#[cfg(test)]
mod tests;
