//! The Exa client: configuration and one authenticated JSON POST, over the shared [`Upstream`].

use std::sync::Arc;

use gateway_core::http::{Auth, Upstream, UpstreamBuilder, read_json, reqwest};
use gateway_core::{ProviderConfig, Result, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, PROVIDER, error};

/// The header Exa takes its key in (the official SDK's `x-api-key`,
/// <https://github.com/exa-labs/exa-py/blob/7537a5ebc4175143e3a582eb0f9239d3a1bbf311/exa_py/api.py#L1454-L1458>).
const KEY_HEADER: &str = "x-api-key";

#[doc = include_str!("docs.md")]
#[derive(Clone, Debug)]
pub struct ExaClient {
    upstream: Arc<Upstream>,
}

impl ExaClient {
    /// A builder; only the key is required.
    pub fn builder() -> ExaClientBuilder {
        ExaClientBuilder::default()
    }

    /// A client with the key from the `EXA_API_KEY` environment variable and default settings.
    ///
    /// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when the
    /// variable is unset or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.exa]` configuration: the key from `api_key`, else from the
    /// variable `api_key_env` names (default `EXA_API_KEY`); `base_url` (default
    /// `https://api.exa.ai`); connect and read timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        ExaClientBuilder::from_config(cfg)?.build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.upstream.base_url()
    }

    /// POSTs `body` as JSON to `{base}{path}` with the key and decodes the answer; a non-2xx
    /// answer is classified.
    pub(crate) async fn post<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let response = self.upstream.post_json(path, body, error::classify).await?;
        read_json(PROVIDER, response).await
    }
}

/// Builds an [`ExaClient`]. See [`ExaClient::builder`].
#[derive(Debug, Default, Clone)]
pub struct ExaClientBuilder {
    settings: UpstreamBuilder,
}

impl ExaClientBuilder {
    /// A builder with the settings of a `[providers.exa]` section: its key (or key variable,
    /// default `EXA_API_KEY`), base URL and timeouts.
    ///
    /// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when no key
    /// is set.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        Ok(Self {
            settings: UpstreamBuilder::from_config(cfg, PROVIDER, DEFAULT_API_KEY_ENV)?,
        })
    }

    /// The Exa API key. Required. Sent as `x-api-key: <key>`, never in a URL.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.settings.api_key(api_key.into());
        self
    }

    /// The base URL (default `https://api.exa.ai`): a proxy, or a mock in tests.
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
    pub fn build(self) -> Result<ExaClient> {
        Ok(ExaClient {
            upstream: Arc::new(self.settings.build(
                PROVIDER,
                DEFAULT_BASE_URL,
                Auth::Header(KEY_HEADER),
            )?),
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
            default_base_url: "https://api.exa.ai",
            builder: ExaClient::builder,
            api_key: |b, k| b.api_key(k),
            base_url: |b, u| b.base_url(u),
            build: ExaClientBuilder::build,
            from_config: ExaClient::from_config,
            client_base_url: ExaClient::base_url,
        });
    }
}
