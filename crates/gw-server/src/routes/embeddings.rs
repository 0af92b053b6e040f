//! `POST /v1/embeddings`: OpenAI's embeddings API
//! (<https://platform.openai.com/docs/api-reference/embeddings/create>) over every provider that
//! embeds, through the same router as chat (plans, fallbacks, retries, usage).

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use llm_gateway::{EmbeddingRequest, Metered, encode_base64};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{JsonBody, call_context, model_error, set_cache, set_cost, set_route};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;
use crate::openai::end_user_tags;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/embeddings", post(embeddings))
}

/// The most inputs one request may carry: OpenAI's own limit.
const MAX_INPUTS: usize = 2048;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingsRequest {
    model: String,
    /// A string, or an array of strings (token arrays are refused by name).
    input: Value,
    #[serde(default)]
    dimensions: Option<u32>,
    /// `float` (the default) or `base64` (little-endian `f32`s, which OpenAI's Python SDK asks
    /// for by default).
    #[serde(default)]
    encoding_format: Option<String>,
    /// A gateway extension: routes (or aliases) to try, in order, when `model`'s fail.
    #[serde(default)]
    fallbacks: Vec<String>,
    /// A gateway extension: provider-specific options (Gemini's `taskType`, `title`; Hugging
    /// Face's `normalize`, `truncate`, ...), checked by the provider.
    #[serde(default)]
    options: Map<String, Value>,
    /// The caller's end user, kept in the usage log.
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Float,
    Base64,
}

impl EmbeddingsRequest {
    /// The core request and the encoding, or a 400 naming the field at fault.
    fn to_core(&self) -> Result<(EmbeddingRequest, Encoding), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("model".into()),
                "`model` must not be empty",
            ));
        }
        let encoding = match self.encoding_format.as_deref() {
            None | Some("float") => Encoding::Float,
            Some("base64") => Encoding::Base64,
            Some(other) => {
                return Err(ApiError::invalid(
                    Some("encoding_format".into()),
                    format!("`encoding_format` must be `float` or `base64`, not `{other}`"),
                ));
            }
        };
        let mut req = EmbeddingRequest::new(self.model.clone());
        req.inputs = inputs(&self.input)?;
        req.dimensions = self.dimensions;
        req.options = self.options.clone();
        Ok((req, encoding))
    }
}

/// The texts of `input`: a string or an array of strings.
fn inputs(input: &Value) -> Result<Vec<String>, ApiError> {
    let refuse = |param: String, why: &str| Err(ApiError::invalid(Some(param), why.to_owned()));
    match input {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) if items.is_empty() => {
            refuse("input".into(), "`input` must not be empty")
        }
        Value::Array(items) if items.len() > MAX_INPUTS => refuse(
            "input".into(),
            &format!("at most {MAX_INPUTS} inputs per request"),
        ),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Number(_) | Value::Array(_) => Err(ApiError::invalid(
                    Some(format!("input[{i}]")),
                    "token arrays are not supported: the providers behind the gateway tokenize \
                     themselves, so send the text",
                )),
                _ => Err(ApiError::invalid(
                    Some(format!("input[{i}]")),
                    "each input must be a string",
                )),
            })
            .collect(),
        _ => refuse(
            "input".into(),
            "`input` must be a string or an array of strings",
        ),
    }
}

#[derive(Serialize)]
struct EmbeddingsResponse<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

/// A vector as OpenAI encodes it: numbers (written as the shortest decimal that reads back as
/// the same `f32`), or the base64 of its little-endian `f32`s.
#[derive(Debug, PartialEq, Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

/// OpenAI's embeddings `usage`, with the cost as a gateway extension.
#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<String>,
}

fn encode(vector: Vec<f32>, encoding: Encoding) -> Vector {
    match encoding {
        Encoding::Float => Vector::Float(vector),
        Encoding::Base64 => {
            let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
            Vector::Base64(encode_base64(&bytes))
        }
    }
}

async fn embeddings(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<EmbeddingsRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body.map_err(ApiError::from_json)?;
    let (req, encoding) = body.to_core()?;
    let mut call = call_context(&ctx, caller, &headers, &body.fallbacks)?;
    call.tags = Arc::new(end_user_tags(body.user.as_ref())?);
    let Metered {
        value: answer,
        route,
        cost,
        usage,
        cache,
        ..
    } = state
        .gateway()
        .embed_with(&call, req)
        .await
        .map_err(|e| model_error(&state, &body.model, e))?;
    // A cached answer shows the tokens of the call that made it (at no cost), as chat does.
    let tokens = if cache.is_hit() {
        answer.usage.input_tokens
    } else {
        usage.map_or(0, |u| u.tokens.input_tokens)
    };
    let data = answer
        .embeddings
        .into_iter()
        .enumerate()
        .map(|(index, vector)| Embedding {
            object: "embedding",
            index,
            embedding: encode(vector, encoding),
        })
        .collect();
    let response = EmbeddingsResponse {
        object: "list",
        data,
        model: &body.model,
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
            cost_usd: cost.map(|c| c.to_string()),
        },
    };
    let mut response = Json(response).into_response();
    set_cost(&mut response, cost);
    set_route(&mut response, &route);
    set_cache(&mut response, &cache);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<(EmbeddingRequest, Encoding), ApiError> {
        serde_json::from_value::<EmbeddingsRequest>(v)
            .unwrap()
            .to_core()
    }

    #[test]
    fn one_input_or_many() {
        let (one, enc) = parse(json!({"model": "gemini/e", "input": "hi"})).unwrap();
        assert_eq!((one.inputs, enc), (vec!["hi".to_owned()], Encoding::Float));
        let (many, enc) = parse(json!({
            "model": "gemini/e", "input": ["a", "b"], "dimensions": 8,
            "encoding_format": "base64", "options": {"taskType": "RETRIEVAL_QUERY"}, "user": "u"
        }))
        .unwrap();
        assert_eq!(many.inputs, ["a", "b"]);
        assert_eq!(many.dimensions, Some(8));
        assert_eq!(many.options["taskType"], "RETRIEVAL_QUERY");
        assert_eq!(enc, Encoding::Base64);
    }

    #[test]
    fn refuses_by_name() {
        for (body, param) in [
            (json!({"model": "m", "input": []}), "input"),
            (json!({"model": "m", "input": [1, 2, 3]}), "input[0]"),
            (json!({"model": "m", "input": ["a", [1, 2]]}), "input[1]"),
            (json!({"model": "m", "input": 7}), "input"),
            (
                json!({"model": "m", "input": "a", "encoding_format": "int8"}),
                "encoding_format",
            ),
            (json!({"model": " ", "input": "a"}), "model"),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param));
            assert_eq!(err.status.as_u16(), 400);
        }
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let Vector::Base64(encoded) = encode(vec![1.0, -2.5], Encoding::Base64) else {
            panic!("not base64")
        };
        let bytes = llm_gateway::decode_base64(&encoded).unwrap();
        let back: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(back, [1.0, -2.5]);
        // Written as the f32 reads, not widened to f64's digits.
        let text = serde_json::to_string(&encode(vec![0.0123], Encoding::Float)).unwrap();
        assert_eq!(text, "[0.0123]");
    }
}
