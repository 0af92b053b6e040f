//! Google Gemini for `llm-gateway`: the Gemini Developer API
//! (`generativelanguage.googleapis.com`, `v1beta`) behind the gateway's
//! [`TextModel`](gateway_core::TextModel) and [`EmbeddingModel`](gateway_core::EmbeddingModel)
//! traits.
//!
//! - `generateContent` for whole answers and `streamGenerateContent?alt=sse` for streams.
//! - System prompts as `systemInstruction`, multi-turn chats, sampling options, image and audio
//!   parts sent inline (images linked by URL downloaded by the gateway, within the
//!   `[providers.gemini.downloads]` limits; Files API and YouTube links passed to Gemini).
//! - Tool calling (`functionDeclarations` with `parametersJsonSchema`, `toolConfig`, parallel
//!   calls, tool results as `functionResponse` parts, calls streamed), with Gemini 3's thought
//!   signatures carried across OpenAI clients inside the tool call ids.
//! - `n` as `candidateCount`, `logprobs` / `top_logprobs`, and `reasoning_effort` as
//!   `thinkingConfig`, as Google's own OpenAI-compatible endpoint maps it.
//! - Images ([`ImageModel`](gateway_core::ImageModel)): Imagen's `:predict` for `imagen-*` ids
//!   and `generateContent` with image output for `gemini-*-image*` ids (Gemini 2.5 Flash Image,
//!   3 Pro Image, 3.1 Flash Image), sizes mapped onto the documented aspect ratios and size
//!   classes, billed per image (Imagen) or per image output token (see the client's docs).
//! - Speech ([`SpeechModel`](gateway_core::SpeechModel)): `generateContent` on the `-tts` models
//!   with one of the 30 prebuilt voices; Gemini's raw PCM given as WAV (a 44-byte RIFF header)
//!   or as raw `pcm`; billed per token, planned as seconds of audio.
//! - Transcription ([`TranscriptionModel`](gateway_core::TranscriptionModel)): audio (WAV, MP3,
//!   AIFF, AAC, Ogg, FLAC, told apart by their bytes) sent to a chat model with an instruction to
//!   transcribe it, inline up to 15 MB and through the Files API's resumable upload beyond;
//!   planned as seconds of audio read from its headers or frames, never undercounted.
//! - Embeddings through `batchEmbedContents` (up to 100 inputs, `outputDimensionality`,
//!   `taskType` and `title`).
//! - Structured output: `json_object` (`responseMimeType: application/json`) and `json_schema`
//!   (`responseJsonSchema`, a standard JSON Schema; like tool parameters, converted only where
//!   the meaning is kept, else refused by the keyword's path).
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
mod files;
mod image;
mod schema;
mod speech;
mod text;
mod transcription;
mod wire;

use std::sync::Arc;

use gateway_core::http::DownloadSettings;
use gateway_core::{ModelEntry, PriceCatalog, ProviderConfig, Registry, Result, Service};
use serde::Deserialize;

pub use client::{
    DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, DEFAULT_DOWNLOAD_MAX_BYTES,
    DEFAULT_INLINE_AUDIO_MAX_BYTES, GeminiClient, GeminiClientBuilder,
};

/// The provider id: the `gemini/` of `gemini/gemini-2.5-flash`, and the name in errors.
pub const PROVIDER: &str = "gemini";

/// The prices of Gemini's models, merged into the gateway's catalog at registration.
pub const PRICES: &str = include_str!("../pricing.toml");

/// Gemini's own settings under `[providers.gemini]`, beyond the ones every provider has; any
/// other field is refused, naming it.
///
/// ```toml
/// [providers.gemini.downloads]   # images callers link to, fetched by the gateway
/// max_bytes = 15000000           # the default: Gemini's 20 MB inline limit, before base64
/// allow_private = false          # true: also private and loopback addresses
/// timeout_ms = 120000
///
/// [providers.gemini]
/// inline_audio_max_bytes = 15000000  # larger audio to transcribe goes through the Files API
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiConfig {
    /// Limits on the images the gateway downloads for callers who send an http(s) link.
    #[serde(default)]
    pub downloads: DownloadSettings,
    /// Audio to transcribe larger than this many bytes is uploaded through the Files API rather
    /// than sent inline (default [`DEFAULT_INLINE_AUDIO_MAX_BYTES`]).
    #[serde(default)]
    pub inline_audio_max_bytes: Option<usize>,
}

/// Builds a [`GeminiClient`] from `cfg` and adds it to `reg` as the `gemini` provider of chat,
/// embeddings, images, speech and transcription, with its prices and the models `cfg` announces
/// (a plain id announces an image model when it names one, `imagen-*` or `gemini-*-image*`, a
/// speech model for `gemini-*-tts`, else a chat model).
///
/// `cfg.enabled` is not consulted: whoever walks the configuration decides which providers to
/// register. Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when
/// the API key is not set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming
/// the field, for anything else wrong in `cfg`.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    // Reads and checks the `GeminiConfig` fields too.
    let client = Arc::new(GeminiClient::from_config(cfg)?);
    reg.set_address(PROVIDER, client.base_url());
    reg.add_text(client.clone());
    reg.add_embedding(client.clone());
    reg.add_image(client.clone());
    reg.add_speech(client.clone());
    reg.add_transcription(client);
    // A plain id is announced for what its name says: images for `imagen-*` and
    // `gemini-*-image*`, speech for `gemini-*-tts`, chat for the rest (a chat model also
    // transcribes when its entry lists `transcription`).
    let (images, others): (Vec<ModelEntry>, Vec<ModelEntry>) =
        cfg.models.iter().cloned().partition(
            |m| matches!(m, ModelEntry::Id(id) if convert::image::image_api(id).is_some()),
        );
    let (speech, others): (Vec<ModelEntry>, Vec<ModelEntry>) = others
        .into_iter()
        .partition(|m| matches!(m, ModelEntry::Id(id) if convert::speech::is_tts(id)));
    reg.announce_configured(PROVIDER, Service::Images, &images)?;
    reg.announce_configured(PROVIDER, Service::Speech, &speech)?;
    reg.announce_configured(PROVIDER, Service::Chat, &others)?;
    reg.add_prices(PriceCatalog::from_toml(PRICES, "gw-gemini/pricing.toml")?);
    Ok(())
}
