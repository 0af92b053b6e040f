//! The Hugging Face router client: configuration, one HTTP client, one authenticated POST.

use std::fmt;
use std::sync::Arc;

use gateway_core::http::reqwest::header::{AUTHORIZATION, HeaderValue};
use gateway_core::http::{self, reqwest};
use gateway_core::{Error, ErrorKind, ProviderConfig, Result, SecretString};
use serde::Serialize;

use crate::{DEFAULT_BASE, DEFAULT_ENV, PROVIDER, error};

#[doc = include_str!("docs.md")]
#[derive(Clone)]
pub struct HfClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    /// `Bearer <token>`, marked sensitive so reqwest and `Debug` never show it.
    authorization: HeaderValue,
}

impl HfClient {
    /// A builder; only the token is required.
    pub fn builder() -> HfClientBuilder {
        HfClientBuilder::default()
    }

    /// A client with the token from the `HF_TOKEN` environment variable and default settings.
    ///
    /// Fails with [`ErrorKind::Config`] when the variable is unset or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.hf]` configuration: the key from `api_key`, else from the
    /// variable `api_key_env` names (default `HF_TOKEN`); `base_url` (default
    /// `https://router.huggingface.co`); connect and read timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        Self::builder()
            .api_key(cfg.resolve_api_key(PROVIDER, DEFAULT_ENV)?)
            .base_url(cfg.base_url_or(DEFAULT_BASE))
            .http(http::client(cfg)?)
            .build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// POSTs `body` as JSON to `{base}{path}` with the token; a non-2xx answer is classified.
    pub(crate) async fn post_json<T: Serialize + Sync>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response> {
        // Serialized here so a failure is a plain error rather than a transport error.
        let body = serde_json::to_vec(body).map_err(|e| {
            Error::invalid_request(format!("cannot encode the request: {e}"))
                .with_provider(PROVIDER)
        })?;
        let request = self
            .inner
            .http
            .post(format!("{}{path}", self.inner.base_url))
            .header(AUTHORIZATION, self.inner.authorization.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        http::send(PROVIDER, request, error::classify).await
    }
}

impl fmt::Debug for HfClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfClient")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &"***")
            .finish_non_exhaustive()
    }
}

/// Builds an [`HfClient`]. See [`HfClient::builder`].
#[derive(Debug, Default)]
pub struct HfClientBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    http: Option<reqwest::Client>,
}

impl HfClientBuilder {
    /// The Hugging Face token (`hf_...`, with the "Make calls to Inference Providers"
    /// permission). Required.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// The base URL (default `https://router.huggingface.co`): a proxy, or a mock in tests.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// The HTTP client to use, e.g. one shared by several providers. Its timeouts apply; the
    /// default has the connect and read timeouts of [`ProviderConfig`]'s defaults.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The client. Fails with [`ErrorKind::Config`] without a usable token.
    pub fn build(self) -> Result<HfClient> {
        let config_error = |message: &str| {
            Error::new(ErrorKind::Config, message.to_owned()).with_provider(PROVIDER)
        };
        let api_key = self
            .api_key
            .filter(|k| !k.expose().trim().is_empty())
            .ok_or_else(|| config_error("no API key: set HF_TOKEN or call api_key()"))?;
        // The error deliberately leaves out the value: it is the token.
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", api_key.expose().trim())).map_err(
                |_| config_error("the API key has characters an HTTP header cannot carry"),
            )?;
        authorization.set_sensitive(true);
        let http = match self.http {
            Some(http) => http,
            None => http::client(&ProviderConfig::default())?,
        };
        let base_url = self
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE)
            .trim_end_matches('/')
            .to_owned();
        Ok(HfClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                authorization,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let client = HfClient::builder()
            .api_key("hf_supersecret")
            .base_url("http://127.0.0.1:9/")
            .build()
            .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:9"), "{shown}");
        let builder = format!("{:?}", HfClient::builder().api_key("hf_supersecret"));
        assert!(!builder.contains("supersecret"), "{builder}");
    }

    #[test]
    fn base_url_defaults_and_loses_its_trailing_slash() {
        let default = HfClient::builder().api_key("hf_x").build().unwrap();
        assert_eq!(default.base_url(), "https://router.huggingface.co");
        let custom = HfClient::builder()
            .api_key("hf_x")
            .base_url("http://localhost:8080/")
            .build()
            .unwrap();
        assert_eq!(custom.base_url(), "http://localhost:8080");
    }

    #[test]
    fn a_missing_or_unusable_key_is_a_config_error() {
        for builder in [
            HfClient::builder(),
            HfClient::builder().api_key("  "),
            HfClient::builder().api_key("hf_bad\nkey_secret"),
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
            api_key: Some("hf_cfg".into()),
            api_key_env: Some("GW_HF_TEST_SURELY_UNSET".into()),
            base_url: Some("http://127.0.0.1:9/".into()),
            ..ProviderConfig::default()
        };
        let client = HfClient::from_config(&cfg).unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:9");
        let missing = ProviderConfig {
            api_key_env: Some("GW_HF_TEST_SURELY_UNSET".into()),
            ..ProviderConfig::default()
        };
        let err = HfClient::from_config(&missing).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
    }
}
