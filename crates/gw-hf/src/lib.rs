//! [Hugging Face Inference Providers](https://huggingface.co/docs/inference-providers/index) for
//! `llm-gateway`: chat completions through the router's OpenAI-compatible endpoint.
//!
//! - [`HfClient`] implements [`gateway_core::TextModel`]: blocking and streamed (SSE) chat,
//!   `json_object` and `json_schema` output.
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

use gateway_core::{ProviderConfig, Registry, Result};

mod client;
mod convert;
mod error;
mod text;
mod wire;

pub use client::{HfClient, HfClientBuilder};

/// The provider id: the `hf/` of `hf/<model id>`, and the name in errors and metrics.
pub const PROVIDER: &str = "hf";

/// The environment variable the token is read from unless configured otherwise.
pub const DEFAULT_ENV: &str = "HF_TOKEN";

/// The router's base URL.
pub const DEFAULT_BASE: &str = "https://router.huggingface.co";

/// Builds an [`HfClient`] from `cfg` and adds it to `reg`, announcing `cfg.models`.
///
/// Fails with [`ErrorKind::Config`](gateway_core::ErrorKind::Config) when no token is
/// configured. Whether to call it for a disabled provider (`cfg.enabled`) is the caller's choice.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let client = HfClient::from_config(cfg)?;
    reg.add_text(Arc::new(client));
    reg.announce_models(PROVIDER, cfg.models.clone());
    Ok(())
}
