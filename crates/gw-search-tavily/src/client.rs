//! The Tavily client: configuration and one authenticated POST, over the shared [`Upstream`].

use std::sync::Arc;

use gateway_core::http::{Auth, Upstream, UpstreamBuilder, reqwest};
use gateway_core::{ProviderConfig, Result, SecretString};
use serde::Serialize;

use crate::{DEFAULT_BASE, DEFAULT_ENV, PROVIDER, error};

#[doc = include_str!("docs.md")]
#[derive(Clone, Debug)]
pub struct TavilyClient {
    upstream: Arc<Upstream>,
}

impl TavilyClient {
    /// A builder; only the API key is required.
    pub fn builder() -> TavilyClientBuilder {
        TavilyClientBuilder::default()
    }

    /// A client with the key from the `TAVILY_API_KEY` environment variable and default
    /// settings.
    ///
    /// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when the
    /// variable is unset or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.tavily]` configuration: the key from `api_key`, else from
    /// the variable `api_key_env` names (default `TAVILY_API_KEY`); `base_url` (default
    /// `https://api.tavily.com`); connect and read timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        TavilyClientBuilder::from_config(cfg)?.build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.upstream.base_url()
    }

    /// POSTs `body` as JSON to `{base}{path}` with the key; a non-2xx answer is classified.
    pub(crate) async fn post_json<T: Serialize + Sync>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response> {
        self.upstream.post_json(path, body, error::classify).await
    }
}

/// Builds a [`TavilyClient`]. See [`TavilyClient::builder`].
#[derive(Debug, Default, Clone)]
pub struct TavilyClientBuilder {
    settings: UpstreamBuilder,
}

impl TavilyClientBuilder {
    /// A builder with the settings of a `[providers.tavily]` section: its key (or key variable,
    /// default `TAVILY_API_KEY`), base URL and timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        Ok(Self {
            settings: UpstreamBuilder::from_config(cfg, PROVIDER, DEFAULT_ENV)?,
        })
    }

    /// The Tavily API key (`tvly-...`). Required. Sent as `Authorization: Bearer <key>`, never
    /// in the body (the legacy `api_key` field) nor in a URL.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.settings.api_key(api_key.into());
        self
    }

    /// The base URL (default `https://api.tavily.com`): a proxy, or a mock in tests.
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
    pub fn build(self) -> Result<TavilyClient> {
        Ok(TavilyClient {
            upstream: Arc::new(self.settings.build(PROVIDER, DEFAULT_BASE, Auth::Bearer)?),
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
            default_base_url: "https://api.tavily.com",
            builder: TavilyClient::builder,
            api_key: |b, k| b.api_key(k),
            base_url: |b, u| b.base_url(u),
            build: TavilyClientBuilder::build,
            from_config: TavilyClient::from_config,
            client_base_url: TavilyClient::base_url,
        });
    }
}
