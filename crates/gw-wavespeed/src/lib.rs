//! [WaveSpeedAI](https://wavespeed.ai/docs) for `llm-gateway`: text-to-image and image editing
//! (inpainting and erasing, background removal, face swap, images with LoRAs), text- and
//! image-to-video (HunyuanVideo 1.5, LTX-2 Pro), speech (MiniMax Speech-02) and LoRA training
//! (FLUX.1 dev, Z-Image, Qwen-Image) over WaveSpeed's v3 task API.
//!
//! - [`WaveSpeedClient`] implements [`gateway_core::ImageModel`]: a request is checked against
//!   the model's documented fields (a table of the models this crate knows: sizes, image count,
//!   mask, edit kind), sent as the model's JSON input, and awaited to its end.
//! - The task API is public and modality-free, for video, audio and training to reuse:
//!   [`WaveSpeedClient::submit`] (once, never repeated), [`WaveSpeedClient::poll`] and
//!   [`WaveSpeedClient::run`], which waits with [`gateway_core::job::poll_job`]. A failure after
//!   which a task may exist is [in doubt](gateway_core::Error::in_doubt), so the router neither
//!   retries nor falls back.
//! - Images go to WaveSpeed as URLs, or as `data:` URLs for bytes; outputs come back as URLs, or
//!   as bytes for `response_format: b64_json` (WaveSpeed's base64 output where the model has
//!   it, else a bounded download of its URLs).
//! - [`gateway_core::VideoModel`]: a video is a job, submitted once (its task id is the job id)
//!   and polled one read at a time; [`gateway_core::SpeechModel`]: a speech task runs to its end
//!   and its audio is downloaded. Both are checked against per-model tables before any IO.
//! - [`gateway_core::TrainingModel`]: a LoRA training run on a trainer family (`flux-dev`,
//!   `z-image`, `qwen-image`) is checked against its trainer's options, priced by WaveSpeed's
//!   quote (`/api/v3/model/price`), its zip uploaded when it comes as bytes, submitted once (the
//!   job id carries its steps) and polled to the URL of its weights. The family's LoRA model
//!   (`wavespeed-ai/flux-dev-lora`, ...) serves them: `options.loras = [{path, scale}]` on an
//!   image request, checked against the model's limit.
//! - Billing: one `image` per image, seconds of video by resolution, characters of speech,
//!   `training_step`s of a training run, at the prices of `pricing.toml`.
//! - The key comes from `WAVESPEED_API_KEY` by default and is only ever sent as
//!   `Authorization: Bearer`.
//! - [`register`] adds the client to a [`Registry`] from its [`ProviderConfig`], with its prices.
//!
//! # Example
//! ```no_run
//! use gateway_core::{ImageModel, ImageRequest};
//! use gw_wavespeed::WaveSpeedClient;
//!
//! # async fn example() -> gateway_core::Result<()> {
//! let client = WaveSpeedClient::builder().api_key("...").build()?;
//! let mut req = ImageRequest::new("wavespeed-ai/flux-dev", "A lighthouse at dusk");
//! req.size = Some("1024x768".into());
//! let answer = client.generate_image(req).await?;
//! println!("{:?}", answer.images);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

use std::sync::Arc;

use gateway_core::http::DownloadSettings;
use gateway_core::{ModelEntry, PriceCatalog, ProviderConfig, Registry, Result, Service};
use serde::Deserialize;

mod client;
mod convert;
mod error;
mod image;
mod job;
mod models;
mod speech;
mod training;
mod video;
mod wire;

pub use client::{
    DEFAULT_JOB_TIMEOUT, DEFAULT_POLL_INTERVAL, DEFAULT_POLL_MAX_INTERVAL, WaveSpeedClient,
    WaveSpeedClientBuilder,
};
pub use job::Prediction;

/// The provider id: the `wavespeed` of `wavespeed/wavespeed-ai/flux-dev`, and the name in
/// errors and metrics.
pub const PROVIDER: &str = "wavespeed";

/// The environment variable the API key is read from unless configured otherwise.
pub const DEFAULT_ENV: &str = "WAVESPEED_API_KEY";

/// WaveSpeedAI's API base URL (the official SDK's `config.py`).
pub const DEFAULT_BASE: &str = "https://api.wavespeed.ai";

/// WaveSpeed's prices (USD per image, per second of video, per character of speech), merged
/// into the gateway's catalog at registration. Training runs are priced by WaveSpeed's quote.
pub const PRICES: &str = include_str!("../pricing.toml");

/// WaveSpeed's own settings under `[providers.wavespeed]`, beyond the ones every provider has.
/// Any other field is refused, naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveSpeedConfig {
    /// The wait before the first poll of a task, in milliseconds (default 1000; 0 polls at
    /// once). Each later wait is half as long again, up to `poll_max_interval_ms`.
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// The longest wait between two polls, in milliseconds (default 5000).
    #[serde(default)]
    pub poll_max_interval_ms: Option<u64>,
    /// The longest a task is awaited, in milliseconds (default 300000). A task still running
    /// then is a timeout naming it (it goes on at WaveSpeed).
    #[serde(default)]
    pub job_timeout_ms: Option<u64>,
    /// Asks the models that document it to answer the submission with the finished task
    /// (`enable_sync_mode`); one whose sync wait runs out is polled. Default `false`.
    #[serde(default)]
    pub enable_sync_mode: Option<bool>,
    /// Limits on the outputs downloaded when a caller asks for bytes and WaveSpeed answers with
    /// URLs.
    #[serde(default)]
    pub downloads: DownloadSettings,
}

/// Builds a [`WaveSpeedClient`] from `cfg` and adds it to `reg` as the `wavespeed` images,
/// video, speech and fine-tuning provider, with its prices, its trainer families (`flux-dev`,
/// `z-image`, `qwen-image`, always announced for fine-tuning) and the models `cfg` announces (a
/// plain id announces a video, speech or trainer model of this crate's tables for that service,
/// anything else for images).
///
/// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when no API key
/// is set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming the field, for
/// anything else wrong in `cfg`. Whether to call it for a disabled provider (`cfg.enabled`) is
/// the caller's choice.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let client = Arc::new(WaveSpeedClient::from_config(cfg)?);
    reg.set_address(PROVIDER, client.base_url());
    reg.add_image(client.clone());
    reg.add_video(client.clone());
    reg.add_speech(client.clone());
    reg.add_training(client);
    // The trainer families are always served: they need no configuration of their own.
    for t in training::TRAINERS {
        reg.announce(PROVIDER, t.family, &[Service::Training]);
    }
    // A plain id serves what its model does: video, speech and training for the models of
    // those tables, images otherwise.
    let of_table = |m: &ModelEntry, is: fn(&str) -> bool| matches!(m, ModelEntry::Id(id) if is(id));
    let (videos, rest): (Vec<_>, Vec<_>) = cfg
        .models
        .iter()
        .cloned()
        .partition(|m| of_table(m, video::is_video_model));
    let (speech, rest): (Vec<_>, Vec<_>) = rest
        .into_iter()
        .partition(|m| of_table(m, speech::is_speech_model));
    let (trainers, images): (Vec<_>, Vec<_>) = rest
        .into_iter()
        .partition(|m| of_table(m, training::is_training_model));
    reg.announce_configured(PROVIDER, Service::Video, &videos)?;
    reg.announce_configured(PROVIDER, Service::Speech, &speech)?;
    reg.announce_configured(PROVIDER, Service::Training, &trainers)?;
    reg.announce_configured(PROVIDER, Service::Images, &images)?;
    reg.add_prices(PriceCatalog::from_toml(
        PRICES,
        "gw-wavespeed/pricing.toml",
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{Charge, PriceUnit};

    #[test]
    fn the_shipped_prices_parse_and_price_each_model_of_the_table() {
        let catalog = PriceCatalog::from_toml(PRICES, "pricing.toml").unwrap();
        let cost = |model: &str, n: u64| {
            catalog
                .charges_cost(PROVIDER, model, &[Charge::new(PriceUnit::Image, n)])
                .map(|c| c.to_string())
        };
        assert_eq!(cost("wavespeed-ai/flux-dev", 2).as_deref(), Some("0.024"));
        assert_eq!(
            cost("wavespeed-ai/flux-schnell", 1).as_deref(),
            Some("0.003")
        );
        assert_eq!(cost("bytedance/seedream-v4.5", 1).as_deref(), Some("0.04"));
        assert_eq!(
            cost("wavespeed-ai/image-background-remover", 1).as_deref(),
            Some("0.01")
        );
        assert_eq!(cost("someone/unknown-model", 1), None);
        assert_eq!(
            cost("wavespeed-ai/flux-dev-lora", 2).as_deref(),
            Some("0.03")
        );
        assert_eq!(
            cost("wavespeed-ai/qwen-image/text-to-image-lora", 1).as_deref(),
            Some("0.025")
        );
        // Unpriced on purpose: its price is unverified (see pricing.toml).
        let unpriced = ["wavespeed-ai/z-image/turbo-lora"];
        for m in models::MODELS {
            assert_eq!(
                cost(m.id, 1).is_some(),
                !unpriced.contains(&m.id),
                "price of {}",
                m.id
            );
        }
        let seconds = |model: &str, n: u64, resolution: &str| {
            catalog
                .charges_cost(
                    PROVIDER,
                    model,
                    &[Charge::new(PriceUnit::VideoSecond, n).resolution(resolution)],
                )
                .map(|c| c.to_string())
        };
        let hunyuan = "wavespeed-ai/hunyuan-video-1.5/text-to-video";
        assert_eq!(seconds(hunyuan, 5, "480p").as_deref(), Some("0.1"));
        assert_eq!(seconds(hunyuan, 10, "720p").as_deref(), Some("0.4"));
        assert_eq!(seconds(hunyuan, 5, "1080p"), None);
        for m in video::VIDEO_MODELS {
            for r in m.resolutions {
                assert!(
                    seconds(m.id, 1, r).is_some(),
                    "no price for {} at {r}",
                    m.id
                );
            }
        }
        let chars = |model: &str, n: u64| {
            catalog
                .charges_cost(PROVIDER, model, &[Charge::new(PriceUnit::Character, n)])
                .map(|c| c.to_string())
        };
        assert_eq!(chars("minimax/speech-02-hd", 1000).as_deref(), Some("0.05"));
        assert_eq!(
            chars("minimax/speech-02-turbo", 2000).as_deref(),
            Some("0.06")
        );
    }

    #[test]
    fn register_adds_every_service_and_announces_each_model_for_its_service() {
        let cfg = ProviderConfig {
            api_key: Some("k".into()),
            base_url: Some("http://127.0.0.1:9".into()),
            models: vec![
                "wavespeed-ai/flux-dev".into(),
                "wavespeed-ai/hunyuan-video-1.5/text-to-video".into(),
                "minimax/speech-02-hd".into(),
                "wavespeed-ai/flux-dev-lora-trainer".into(),
            ],
            ..ProviderConfig::default()
        };
        let mut reg = Registry::new();
        register(&mut reg, &cfg).unwrap();
        assert_eq!(
            reg.services_of(PROVIDER),
            [
                Service::Images,
                Service::Speech,
                Service::Video,
                Service::Training
            ]
        );
        assert_eq!(
            reg.training(PROVIDER)
                .unwrap()
                .lora_model_dyn("flux-dev")
                .map(|l| (l.model, l.max_loras)),
            Some(("wavespeed-ai/flux-dev-lora".to_owned(), 4))
        );
        let served: Vec<(String, Vec<Service>)> = reg
            .models()
            .map(|(route, services)| (route.to_string(), services.iter().copied().collect()))
            .collect();
        let training = |family: &str| (format!("wavespeed/{family}"), vec![Service::Training]);
        assert_eq!(
            served,
            [
                training("flux-dev"),
                (
                    "wavespeed/minimax/speech-02-hd".to_owned(),
                    vec![Service::Speech]
                ),
                training("qwen-image"),
                (
                    "wavespeed/wavespeed-ai/flux-dev".to_owned(),
                    vec![Service::Images]
                ),
                // A trainer's own id, configured, is announced for fine-tuning too.
                training("wavespeed-ai/flux-dev-lora-trainer"),
                (
                    "wavespeed/wavespeed-ai/hunyuan-video-1.5/text-to-video".to_owned(),
                    vec![Service::Video]
                ),
                training("z-image"),
            ]
        );
    }
}
