//! `llm-gateway`: one typed API for chat, structured JSON and (as providers grow) images, audio,
//! video and web search across many providers. Switching provider is a change of model name.
//!
//! This crate re-exports [`gateway_core`] and each provider crate behind a cargo feature named
//! after the provider, so an application compiles only the providers it uses, and it holds the
//! [`Gateway`]: the registry of configured providers, routing by model name
//! (`<provider>/<model id>`), retries with exponential backoff and jitter that honour the
//! provider's `Retry-After`, and a tracing span per request.
//!
//! # Features
//! - `gemini`: Google Gemini ([`gemini`]).
//! - `hf`: Hugging Face Inference Providers ([`hf`]).
//! - `stability`: Stability AI image generation ([`stability`]).
//! - `wavespeed`: WaveSpeedAI image generation and editing, by tasks ([`wavespeed`]).
//! - `tavily`, `serper`, `exa`: web search ([`tavily`], [`serper`], [`exa`]).
//! - `all-providers`: all of the above.
//! - `store`: users, keys, plans and usage accounting on SQLite or PostgreSQL ([`store`]), an
//!   [`Accounting`] for [`Gateway::with_accounting`]. Without it, no database is compiled in.
//! - `redis`: rate limits shared by every gateway replica through Redis
//!   ([`ratelimit::RedisStore`]).
//!
//! # Example
//! ```no_run
//! # async fn run() -> llm_gateway::Result<()> {
//! use llm_gateway::{Gateway, ProviderConfig, ProvidersConfig, Registry, TextRequest};
//!
//! let mut providers = ProvidersConfig::new();
//! providers.insert("gemini".into(), ProviderConfig::default()); // key from GEMINI_API_KEY
//! let mut registry = Registry::new();
//! for left_out in llm_gateway::register_enabled(&mut registry, &providers)? {
//!     eprintln!("provider left out: {left_out}"); // e.g. its API key is not set
//! }
//! let gateway = Gateway::new(registry);
//!
//! let answer = gateway
//!     .generate(TextRequest::new("gemini/gemini-2.5-flash").user("Say hi"))
//!     .await?;
//! println!("{} ({} tokens)", answer.content, answer.usage.total_tokens());
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod breaker;
pub mod cache;
mod metering;
pub mod ratelimit;
mod router;
pub mod routing;
mod trace;

pub use breaker::{BreakerConfig, Breakers, CircuitBreaker};
pub use cache::{Cache, CacheConfig, CacheControl, CacheMode, CacheStatus, MemoryCache};
pub use gateway_core::*;
pub use metering::{CallContext, Metered};
pub use ratelimit::{Decision, LimiterBackend, Quota, RateLimitConfig, RateLimiter, RateLimiters};
pub use router::{
    Gateway, JobCharge, JobRef, ProviderLimits, RetryPolicy, TrainingSubmission, VideoSubmission,
};
pub use routing::{Alias, RouteEntry, RoutingConfig};

#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use gw_store as store;

/// Declares the provider crates: for each, behind its feature, the re-export, its entry in
/// [`COMPILED_PROVIDERS`] and its registration in [`register_enabled`]. Adding a provider is
/// its crate (with `PROVIDER` and `register`) and one line in the table below.
macro_rules! providers {
    ($( $feature:literal => $krate:ident as $module:ident, )*) => {
        $(
            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            pub use $krate as $module;
        )*

        /// The providers this build was compiled with, by id.
        pub const COMPILED_PROVIDERS: &[&str] = &[$(
            #[cfg(feature = $feature)]
            $krate::PROVIDER,
        )*];

        /// Each compiled provider's id and `register` function.
        const REGISTRATIONS: &[(&str, Register)] = &[$(
            #[cfg(feature = $feature)]
            ($krate::PROVIDER, $krate::register),
        )*];
    };
}

/// A provider crate's `register`: builds its clients from its configuration section and adds
/// them, with its models and prices, to the registry.
type Register = fn(&mut Registry, &ProviderConfig) -> Result<()>;

providers! {
    "gemini" => gw_gemini as gemini,
    "hf" => gw_hf as hf,
    "stability" => gw_stability as stability,
    "wavespeed" => gw_wavespeed as wavespeed,
    "tavily" => gw_search_tavily as tavily,
    "serper" => gw_search_serper as serper,
    "exa" => gw_search_exa as exa,
}

/// Registers every provider of `cfg` that is enabled and compiled in.
///
/// Fails on a provider this build does not know (a typo, or a missing cargo feature). A known
/// provider that cannot be set up (most often: its API key is not set) is left out, and its error
/// is returned in the list so the caller can decide: a server logs it and serves the others.
#[must_use = "providers that could not be set up are reported only in the returned list"]
pub fn register_enabled(reg: &mut Registry, cfg: &ProvidersConfig) -> Result<Vec<Error>> {
    if let Some(unknown) = cfg
        .keys()
        .find(|p| !COMPILED_PROVIDERS.contains(&p.as_str()))
    {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "providers.{unknown}: unknown provider; this build has: {}",
                COMPILED_PROVIDERS.join(", ")
            ),
        ));
    }
    let mut skipped = Vec::new();
    for (name, register) in REGISTRATIONS {
        if let Some(c) = cfg.get(*name).filter(|c| c.enabled)
            && let Err(e) = register(reg, c)
        {
            // A provider without its key is left out; any other mistake (an unknown field, a
            // bad base URL, a model announced for a service the provider lacks) stops the start.
            if e.kind() != &ErrorKind::Unavailable {
                return Err(e);
            }
            skipped.push(e);
        }
    }
    Ok(skipped)
}
