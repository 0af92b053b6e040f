//! The `gateway` server: an OpenAI-compatible HTTP API over [`llm_gateway`].
//!
//! Any OpenAI client works against it unchanged: point its base URL at the gateway, use a gateway
//! key as the API key, and name models `<provider>/<model id>`.
//!
//! - [`config`]: the TOML configuration, with `GATEWAY__SECTION__FIELD` environment overrides.
//! - [`app`]: the router and its layers, for embedding and for tests.
//! - [`telemetry`]: OpenTelemetry traces and metrics over OTLP, and Prometheus' `/metrics`.
//! - [`drain`]: graceful shutdown: requests in flight finish, then what is left is cancelled.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod drain;
mod error;
mod fine_tuning_jobs;
pub mod log_writer;
mod media;
mod openai;
mod routes;
pub mod telemetry;
mod video_jobs;
pub mod workers;

pub use app::{AppState, app};
pub use config::{Config, ConfigError};
pub use error::ApiError;
pub use telemetry::Telemetry;
pub use video_jobs::JobsSection;
