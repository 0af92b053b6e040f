//! WaveSpeedAI's JSON, as its v3 task API writes it (no logic).
//!
//! Every answer, success or error, is the envelope `{"code", "message", "data"}`
//! (<https://wavespeed.ai/docs/shared/submit-response>,
//! <https://wavespeed.ai/docs/shared/api-result>); `code` is 200 on success, and a different `code`
//! is an error even on HTTP 200, which is how the official MCP server reads it
//! (<https://github.com/WaveSpeedAI/mcp-server/blob/bb1c8fb64f282c9a74464f44194b21fee29f2974/src/lib/api.ts>,
//! `apiPost`). Error answers may add `error_code`, which the official AI SDK provider appends to
//! the message
//! (<https://github.com/WaveSpeedAI/ai-sdk-provider/blob/5dca52de6a6e8655a0c2bcf708c329bd511a71e6/src/wavespeed-error.ts>).

use serde::Deserialize;
use serde_json::Value;

/// The envelope of every answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    /// 200 on success; otherwise an HTTP-like status of the failure.
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    /// A finer error code some error answers carry.
    #[serde(default)]
    pub error_code: Option<Value>,
    /// The prediction (`null` in error answers).
    #[serde(default)]
    pub data: Option<Value>,
}

/// A prediction (task): the `data` of a submit or result answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PredictionData {
    pub id: String,
    #[serde(default)]
    pub model: Option<String>,
    /// `created`, `processing`, `completed`, `failed` (and `cancelled`, `timeout`, which the
    /// official SDK also treats as the end).
    #[serde(default)]
    pub status: Option<String>,
    /// URLs (or, with `enable_base64_output`, bare base64) once completed; some models write
    /// other strings or objects.
    #[serde(default, deserialize_with = "null_as_default")]
    pub outputs: Vec<Value>,
    /// Per output: whether WaveSpeed's checker flagged it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_nsfw_contents: Vec<bool>,
    /// Empty unless the task failed.
    #[serde(default)]
    pub error: Option<String>,
    /// `5004` on a sync-mode answer whose wait ran out while the task goes on (the SDK's
    /// `_format_sync_mode_error`).
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub timings: Option<Timings>,
}

/// How long the task took.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Timings {
    /// Milliseconds of inference.
    #[serde(default)]
    pub inference: Option<u64>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The `data` of a price quote (`POST /api/v3/model/price`), as the official MCP server types it
/// (`ModelPrice` in
/// <https://github.com/WaveSpeedAI/mcp-server/blob/bb1c8fb64f282c9a74464f44194b21fee29f2974/src/lib/api.ts>):
/// `{model_id, price, discounted_price, discount_rate?, currency?}`, prices in USD as numbers.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ModelPrice {
    #[serde(default)]
    pub model_id: Option<String>,
    /// The list price of the run.
    #[serde(default)]
    pub price: Option<Value>,
    /// What the account pays after its discount.
    #[serde(default)]
    pub discounted_price: Option<Value>,
    /// `USD` where given.
    #[serde(default)]
    pub currency: Option<String>,
}

/// The `data` of an upload (`POST /api/v3/media/upload/binary`): where the file can be fetched,
/// as the official SDK reads it (`result["data"]["download_url"]` in `upload()`,
/// <https://github.com/WaveSpeedAI/wavespeed-python/blob/19c2efaaf3134eedb6136120d2ded74ddcb60805/src/wavespeed/api/client.py>).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Uploaded {
    #[serde(default)]
    pub download_url: Option<String>,
}
