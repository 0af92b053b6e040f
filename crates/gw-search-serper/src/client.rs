//! The Serper client: configuration and one authenticated POST, over the shared [`Upstream`].

use std::sync::Arc;

use gateway_core::http::reqwest;
use gateway_core::http::{Auth, Upstream, UpstreamBuilder};
use gateway_core::{ProviderConfig, Result, SecretString};
use serde::Serialize;

use crate::{PROVIDER, error};

/// Where Serper's Google search API lives (<https://serper.dev/playground>).
pub const DEFAULT_BASE_URL: &str = "https://google.serper.dev";

/// The environment variable [`SerperClient::from_env`] reads the API key from.
pub const DEFAULT_API_KEY_ENV: &str = "SERPER_API_KEY";

/// Serper reads the key from the `X-API-KEY` header (header names are case-insensitive; the
/// `?apiKey=` query form seen in public code is never used, since URLs end up in logs).
const AUTH: Auth = Auth::Header("x-api-key");

#[doc = include_str!("docs.md")]
#[derive(Clone, Debug)]
pub struct SerperClient {
    upstream: Arc<Upstream>,
}

impl SerperClient {
    /// A builder; only the API key is required.
    pub fn builder() -> SerperClientBuilder {
        SerperClientBuilder::default()
    }

    /// A client with the key from `SERPER_API_KEY` and default timeouts.
    ///
    /// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when the
    /// variable is unset or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.serper]` configuration: the key from `api_key`, else from
    /// the variable `api_key_env` names (default `SERPER_API_KEY`); `base_url` (default
    /// `https://google.serper.dev`); connect and read timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        SerperClientBuilder::from_config(cfg)?.build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.upstream.base_url()
    }

    /// POSTs `body` as JSON to `{base}{path}` with the key header; a non-2xx answer is
    /// classified.
    pub(crate) async fn post_json<T: Serialize + Sync + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response> {
        self.upstream.post_json(path, body, error::classify).await
    }
}

/// Builds a [`SerperClient`]. See [`SerperClient::builder`].
#[derive(Debug, Default, Clone)]
pub struct SerperClientBuilder {
    settings: UpstreamBuilder,
}

impl SerperClientBuilder {
    /// A builder with the settings of a `[providers.serper]` section: its key (or key variable,
    /// default `SERPER_API_KEY`), base URL and timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        Ok(Self {
            settings: UpstreamBuilder::from_config(cfg, PROVIDER, DEFAULT_API_KEY_ENV)?,
        })
    }

    /// The Serper API key (from the dashboard at <https://serper.dev>). Required. Sent as
    /// `X-API-KEY`.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.settings.api_key(api_key.into());
        self
    }

    /// The base URL (default `https://google.serper.dev`): a proxy, or a mock in tests.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.settings.base_url(base_url.into());
        self
    }

    /// The HTTP client to use, e.g. one shared by several providers. Its timeouts apply; the
    /// default has the connect and read timeouts of [`ProviderConfig`]'s defaults.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.settings.http(http);
        self
    }

    /// The client. Fails with [`ErrorKind::Config`](gateway_core::ErrorKind::Config) without a
    /// usable key or with a base URL that is not http(s).
    pub fn build(self) -> Result<SerperClient> {
        Ok(SerperClient {
            upstream: Arc::new(self.settings.build(PROVIDER, DEFAULT_BASE_URL, AUTH)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_the_shared_rules() {
        gateway_core::testing::client_settings(&gateway_core::testing::ClientSettings {
            provider: PROVIDER,
            default_base_url: "https://google.serper.dev",
            builder: SerperClient::builder,
            api_key: |b, k| b.api_key(k),
            base_url: |b, u| b.base_url(u),
            build: SerperClientBuilder::build,
            from_config: SerperClient::from_config,
            client_base_url: SerperClient::base_url,
        });
    }
}
