//! Stability AI's JSON, exactly as the v2beta REST API writes it (no logic here).
//!
//! Reference: <https://platform.stability.ai/docs/api-reference> (the `Generate` operations);
//! field names and enums as in its OpenAPI document (`ImageJSONResponse`,
//! `ContentModerationResponse` and the `{id, name, errors}` error schema).

use serde::Deserialize;

/// The answer of a generate endpoint asked for `Accept: application/json`: the image as base64,
/// why the generation finished and the seed it used.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageJson {
    /// The generated image, base64-encoded.
    pub(crate) image: String,
    /// `SUCCESS` or `CONTENT_FILTERED` (the output violated the moderation policy and was
    /// blurred).
    #[serde(default)]
    pub(crate) finish_reason: Option<FinishReason>,
    /// The seed used, a number (0 .. 4294967294).
    #[serde(default)]
    pub(crate) seed: Option<serde_json::Value>,
}

/// Why a generation finished: the `finish_reason` field in JSON answers, the `finish-reason`
/// header with raw image bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum FinishReason {
    /// A normal generation.
    Success,
    /// Generated, but the output violated the content policy and was blurred.
    ContentFiltered,
    /// A value the reference does not document.
    #[serde(other)]
    Other,
}

impl FinishReason {
    /// The value of a `finish-reason` header.
    pub(crate) fn from_header(value: &str) -> Self {
        match value.trim() {
            "SUCCESS" => Self::Success,
            "CONTENT_FILTERED" => Self::ContentFiltered,
            _ => Self::Other,
        }
    }
}

/// Every error answer: `{"id": "...", "name": "bad_request", "errors": ["..."]}` (the `id`,
/// for Stability's support, stays in the body the error keeps).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    /// What kind of error (`bad_request`, `unauthorized`, `payment_required`,
    /// `content_moderation`, ...).
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// One or more messages saying what went wrong (`aspect_ratio: ...`).
    #[serde(default)]
    pub(crate) errors: Vec<String>,
    /// The message of the v1 API's error schema (`{id, name, message}`), in case a v1-style
    /// answer comes back.
    #[serde(default)]
    pub(crate) message: Option<String>,
}
