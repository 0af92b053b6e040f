//! [Hugging Face Inference Providers](https://huggingface.co/docs/inference-providers/index) for
//! `llm-gateway`: chat completions through the router's OpenAI-compatible endpoint.
//!
//! - [`HfClient`] implements [`gateway_core::TextModel`]: blocking and streamed (SSE) chat,
//!   `json_object` and `json_schema` output, image parts for vision models, tool calling,
//!   several answers (`n`), log probabilities and `reasoning_effort`.
//! - and [`gateway_core::EmbeddingModel`]: feature extraction on the `hf-inference` backend
//!   (`/hf-inference/models/{model}/pipeline/feature-extraction`).
//! - and [`gateway_core::ImageModel`]: text-to-image on `hf-inference` (raw bytes), `fal-ai`
//!   (image URLs, downloaded when bytes are wanted) and `together` (base64), the backend named by
//!   the model's `:backend` suffix or read from the Hub's model mapping.
//! - Model ids go to the router unchanged, so `meta-llama/Llama-3.1-8B-Instruct:cerebras` pins
//!   the backend provider.
//! - The token comes from `HF_TOKEN` by default and is only ever sent as
//!   `Authorization: Bearer`.
//! - [`register`] adds the client to a [`Registry`] from its [`ProviderConfig`].
//!
//! # Example
//! ```no_run
//! use futures_util::StreamExt;
//! use gateway_core::{TextChunk, TextModel, TextRequest};
//! use gw_hf::HfClient;
//!
//! # async fn example() -> gateway_core::Result<()> {
//! let client = HfClient::builder().api_key("hf_...").build()?;
//! let req = TextRequest::new("Qwen/Qwen3-8B").user("Write a haiku about rust.");
//! let mut stream = client.stream(req).await?;
//! while let Some(chunk) = stream.next().await {
//!     if let TextChunk::Delta(text) = chunk? {
//!         print!("{text}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

use std::sync::Arc;

use gateway_core::{PriceCatalog, ProviderConfig, Registry, Result, Service};
use serde::Deserialize;

mod client;
mod convert;
mod embed;
mod error;
mod image;
mod text;
mod wire;

pub use client::{DEFAULT_HUB_URL, HfClient, HfClientBuilder};

/// The provider id: the `hf/` of `hf/<model id>`, and the name in errors and metrics.
pub const PROVIDER: &str = "hf";

/// The environment variable the token is read from unless configured otherwise.
pub const DEFAULT_ENV: &str = "HF_TOKEN";

/// The router's base URL.
pub const DEFAULT_BASE: &str = "https://router.huggingface.co";

/// The prices the backends publish, merged into the gateway's catalog at registration.
pub const PRICES: &str = include_str!("../pricing.toml");

/// Hugging Face's own settings under `[providers.hf]`, beyond the ones every provider has.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HfConfig {
    /// The organisation to bill instead of the token's owner: sent as `X-HF-Bill-To`
    /// (<https://huggingface.co/docs/inference-providers/pricing#billing-for-team-and-enterprise-organizations>).
    #[serde(default)]
    pub bill_to: Option<String>,
    /// The Hub's base URL, where text-to-image reads which backend serves a model (default
    /// `https://huggingface.co`, or `base_url` when that is set).
    #[serde(default)]
    pub hub_url: Option<String>,
    /// Limits on the images downloaded from a backend's URLs (fal's) when bytes are asked for:
    /// `max_bytes`, `allow_private`, `timeout_ms`.
    #[serde(default)]
    pub downloads: gateway_core::http::DownloadSettings,
}

/// Builds an [`HfClient`] from `cfg` and adds it to `reg` as the `hf` provider of chat,
/// embeddings and images, announcing the models `cfg` lists (a plain id announces a chat model;
/// an image model is announced as a table, `{ id = "black-forest-labs/FLUX.1-dev:fal-ai",
/// serves = ["images"] }`, since a Hub id does not say what it does).
///
/// Hugging Face bills each backend at its own rate and returns no cost: the crate ships the
/// prices backends publish ([`PRICES`]); operators add the others with `[pricing] overrides`.
///
/// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when no token is
/// set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming the field, for
/// anything else wrong in `cfg`. Whether to call it for a disabled provider (`cfg.enabled`) is
/// the caller's choice.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let extra: HfConfig = cfg.extra(PROVIDER)?;
    let mut builder = HfClientBuilder::from_config(cfg)?;
    if let Some(org) = extra.bill_to {
        builder = builder.bill_to(org);
    }
    if let Some(hub) = extra.hub_url {
        builder = builder.hub_url(hub);
    }
    builder = builder.downloads(extra.downloads);
    let client = Arc::new(builder.build()?);
    reg.set_address(PROVIDER, client.base_url());
    reg.add_text(client.clone());
    reg.add_embedding(client.clone());
    reg.add_image(client);
    reg.announce_configured(PROVIDER, Service::Chat, &cfg.models)?;
    reg.add_prices(PriceCatalog::from_toml(PRICES, "gw-hf/pricing.toml")?);
    Ok(())
}

#[cfg(test)]
mod tests;
