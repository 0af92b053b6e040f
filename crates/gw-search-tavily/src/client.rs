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
    use gateway_core::ErrorKind;

    #[test]
    fn debug_never_shows_the_key() {
        let client = TavilyClient::builder()
            .api_key("tvly-supersecret")
            .base_url("http://127.0.0.1:9/")
            .build()
            .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:9"), "{shown}");
        let builder = format!("{:?}", TavilyClient::builder().api_key("tvly-supersecret"));
        assert!(!builder.contains("supersecret"), "{builder}");
    }

    #[test]
    fn base_url_defaults_and_loses_its_trailing_slash() {
        let default = TavilyClient::builder().api_key("tvly-x").build().unwrap();
        assert_eq!(default.base_url(), "https://api.tavily.com");
        let custom = TavilyClient::builder()
            .api_key("tvly-x")
            .base_url("http://localhost:8080/")
            .build()
            .unwrap();
        assert_eq!(custom.base_url(), "http://localhost:8080");
    }

    #[test]
    fn a_missing_or_unusable_key_is_a_config_error() {
        for builder in [
            TavilyClient::builder(),
            TavilyClient::builder().api_key("  "),
            TavilyClient::builder().api_key("tvly-bad\nkey_secret"),
        ] {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config);
            assert_eq!(err.provider(), PROVIDER);
            assert!(!err.to_string().contains("key_secret"), "{err}");
        }
    }

    #[test]
    fn from_config_prefers_the_configured_key_and_url() {
        let cfg = ProviderConfig {
            api_key: Some("tvly-cfg".into()),
            api_key_env: Some("GW_TAVILY_TEST_SURELY_UNSET".into()),
            base_url: Some("http://127.0.0.1:9/".into()),
            ..ProviderConfig::default()
        };
        let client = TavilyClient::from_config(&cfg).unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:9");
        let missing = ProviderConfig {
            api_key_env: Some("GW_TAVILY_TEST_SURELY_UNSET".into()),
            ..ProviderConfig::default()
        };
        let err = TavilyClient::from_config(&missing).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Unavailable);
        assert!(
            err.to_string().contains("GW_TAVILY_TEST_SURELY_UNSET"),
            "{err}"
        );
    }
}
