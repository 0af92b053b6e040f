//! Google Gemini for `llm-gateway`: the Gemini Developer API
//! (`generativelanguage.googleapis.com`, `v1beta`) behind the gateway's
//! [`TextModel`](gateway_core::TextModel) and [`EmbeddingModel`](gateway_core::EmbeddingModel)
//! traits.
//!
//! - `generateContent` for whole answers and `streamGenerateContent?alt=sse` for streams.
//! - System prompts as `systemInstruction`, multi-turn chats, sampling options, image and audio
//!   parts sent inline.
//! - Embeddings through `batchEmbedContents` (up to 100 inputs, `outputDimensionality`,
//!   `taskType` and `title`).
//! - Structured output: `json_object` (`responseMimeType: application/json`) and `json_schema`
//!   (`responseJsonSchema`, a standard JSON Schema passed as given).
//! - Gemini's finish reasons, thinking and cached tokens, and blocked prompts mapped onto the
//!   gateway's types; Gemini's error envelope mapped onto [`ErrorKind`](gateway_core::ErrorKind)
//!   (a bad key, which Gemini answers with a 400, is `Auth`; `RetryInfo.retryDelay` is honoured).
//! - The API key travels only in the `x-goog-api-key` header, never in a URL, log line or error.
//!
//! The crate never retries: the router decides from
//! [`Error::is_retryable`](gateway_core::Error::is_retryable).
//!
//! # Example
//! ```no_run
//! use gateway_core::{ResponseFormat, TextModel, TextRequest};
//! use gw_gemini::GeminiClient;
//!
//! # async fn run() -> gateway_core::Result<()> {
//! let gemini = GeminiClient::from_env()?; // reads GEMINI_API_KEY
//! let req = TextRequest::new("gemini-2.5-flash")
//!     .system("Answer in JSON.")
//!     .user("Name three primary colours.")
//!     .response_format(ResponseFormat::JsonObject);
//! let answer = gemini.generate(req).await?;
//! println!("{} ({} tokens)", answer.content, answer.usage.total_tokens());
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod client;
mod convert;
mod embed;
mod error;
mod text;
mod wire;

use std::sync::Arc;

use gateway_core::{PriceCatalog, ProviderConfig, Registry, Result, Service};
use serde::Deserialize;

pub use client::{DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, GeminiClient, GeminiClientBuilder};

/// The provider id: the `gemini/` of `gemini/gemini-2.5-flash`, and the name in errors.
pub const PROVIDER: &str = "gemini";

/// The prices of Gemini's models, merged into the gateway's catalog at registration.
pub const PRICES: &str = include_str!("../pricing.toml");

/// Gemini's own settings under `[providers.gemini]`, beyond the ones every provider has. None
/// yet: any other field is refused, naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiConfig {}

/// Builds a [`GeminiClient`] from `cfg` and adds it to `reg` as the `gemini` provider of chat
/// and embeddings, with its prices and the models `cfg` announces (a plain id announces a chat
/// model).
///
/// `cfg.enabled` is not consulted: whoever walks the configuration decides which providers to
/// register. Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when
/// the API key is not set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming
/// the field, for anything else wrong in `cfg`.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let GeminiConfig {} = cfg.extra(PROVIDER)?;
    let client = Arc::new(GeminiClient::from_config(cfg)?);
    reg.add_text(client.clone());
    reg.add_embedding(client);
    reg.announce_configured(PROVIDER, Service::Chat, &cfg.models)?;
    reg.add_prices(PriceCatalog::from_toml(PRICES, "gw-gemini/pricing.toml")?);
    Ok(())
}
