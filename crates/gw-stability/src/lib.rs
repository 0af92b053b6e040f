//! [Stability AI](https://platform.stability.ai/docs/api-reference) image generation for
//! `llm-gateway`: Stable Image Ultra, Stable Image Core and Stable Diffusion 3.5 over the v2beta
//! REST API.
//!
//! - [`StabilityClient`] implements [`gateway_core::ImageModel`] (text to image) on
//!   `POST https://api.stability.ai/v2beta/stable-image/generate/{ultra,core,sd3}`.
//! - Model ids: `ultra`, `core`, and the sd3 `model` values (`sd3.5-large`,
//!   `sd3.5-large-turbo`, `sd3.5-medium`, `sd3.5-flash`, legacy `sd3-large`, `sd3-large-turbo`,
//!   `sd3-medium`): `stability/core`, `stability/sd3.5-large` through the gateway.
//! - Requests are `multipart/form-data` with `Authorization: Bearer`; answers are asked for as
//!   JSON (`image` base64, `finish_reason`, `seed`), and raw image bytes with `finish-reason` /
//!   `seed` headers are taken too.
//! - `size` becomes the documented `aspect_ratio` it is exactly (`1024x1024` → `1:1`); other
//!   sizes, `n` above 1 and `response_format: url` are refused before any call, naming the field.
//! - Moderation: a blurred `CONTENT_FILTERED` image comes back with
//!   [`ImageNote::content_filtered`](gateway_core::ImageNote) set (and is billed, as a successful
//!   generation); a 403 `content_moderation` refusal is
//!   [`ErrorKind::ContentFiltered`](gateway_core::ErrorKind::ContentFiltered); a 402 is the
//!   gateway's own account out of credits
//!   ([`ErrorKind::QuotaExceeded`](gateway_core::ErrorKind::QuotaExceeded)).
//! - Billing: one image per call, priced in Stability's credits ([`PRICES`]).
//! - [`register`] adds the client to a [`Registry`] from its [`ProviderConfig`], with its prices.
//!
//! # Example
//! ```no_run
//! use gateway_core::{ImageModel, ImageRequest, MediaOutput};
//! use gw_stability::StabilityClient;
//!
//! # async fn example() -> gateway_core::Result<()> {
//! let client = StabilityClient::builder().api_key("sk-...").build()?;
//! let mut req = ImageRequest::new("sd3.5-large", "A lighthouse at dusk, oil painting");
//! req.aspect_ratio = Some("16:9".into());
//! req.seed = Some(42);
//! let answer = client.generate_image(req).await?;
//! if let MediaOutput::Bytes { data, mime } = &answer.images[0] {
//!     println!("{} bytes of {mime}", data.len());
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
mod error;
mod image;
mod wire;

pub use client::{StabilityClient, StabilityClientBuilder};

/// The provider id: the `stability` of `stability/core`, and the name in errors and metrics.
pub const PROVIDER: &str = "stability";

/// The environment variable the API key is read from unless configured otherwise.
pub const DEFAULT_ENV: &str = "STABILITY_API_KEY";

/// Stability AI's API base URL.
pub const DEFAULT_BASE: &str = "https://api.stability.ai";

/// The model ids this crate serves (`stability/<id>`): the generate endpoints `ultra` and
/// `core`, and the `model` values of the sd3 endpoint.
pub const MODELS: &[&str] = &convert::MODEL_IDS;

/// Stability's prices (USD per credit, credits per image by model), merged into the gateway's
/// catalog at registration.
pub const PRICES: &str = include_str!("../pricing.toml");

/// Stability's own settings under `[providers.stability]`, beyond the ones every provider has.
/// None yet: any other field is refused, naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StabilityConfig {}

/// Builds a [`StabilityClient`] from `cfg` and adds it to `reg` as the `stability` image
/// provider, with its prices and the models `cfg` announces (a plain id announces images).
///
/// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when no API key
/// is set, and [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming the field, for
/// anything else wrong in `cfg`. Whether to call it for a disabled provider (`cfg.enabled`) is
/// the caller's choice.
pub fn register(reg: &mut Registry, cfg: &ProviderConfig) -> Result<()> {
    let StabilityConfig {} = cfg.extra(PROVIDER)?;
    let client = Arc::new(StabilityClient::from_config(cfg)?);
    reg.set_address(PROVIDER, client.base_url());
    reg.add_image(client);
    reg.announce_configured(PROVIDER, Service::Images, &cfg.models)?;
    reg.add_prices(PriceCatalog::from_toml(
        PRICES,
        "gw-stability/pricing.toml",
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{Charge, PriceUnit};

    #[test]
    fn the_shipped_prices_price_one_image_of_every_model() {
        let catalog = PriceCatalog::from_toml(PRICES, "pricing.toml").unwrap();
        assert_eq!(catalog.version_of(PROVIDER), "2026-11-28");
        let cost = |model: &str| {
            catalog
                .charges_cost(PROVIDER, model, &[Charge::new(PriceUnit::Image, 1)])
                .map(|c| c.to_string())
                .unwrap_or_else(|| panic!("{model} has no price"))
        };
        for (model, usd) in [
            ("ultra", "0.08"),
            ("core", "0.03"),
            ("sd3.5-large", "0.065"),
            ("sd3.5-large-turbo", "0.04"),
            ("sd3.5-medium", "0.035"),
            ("sd3.5-flash", "0.025"),
            ("sd3-large", "0.065"),
            ("sd3-large-turbo", "0.04"),
            ("sd3-medium", "0.035"),
        ] {
            assert_eq!(cost(model), usd, "{model}");
        }
        assert_eq!(MODELS.len(), 9);
        for model in MODELS {
            cost(model);
        }
    }
}
