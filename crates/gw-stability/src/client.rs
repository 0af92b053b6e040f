//! The Stability AI client: configuration and one authenticated multipart POST, over the shared
//! [`Upstream`].

use std::sync::Arc;

use gateway_core::http::{Auth, Upstream, UpstreamBuilder, reqwest, send};
use gateway_core::{ProviderConfig, Result, SecretString};

use crate::{DEFAULT_BASE, DEFAULT_ENV, PROVIDER, error};

#[doc = include_str!("docs.md")]
#[derive(Clone, Debug)]
pub struct StabilityClient {
    upstream: Arc<Upstream>,
}

impl StabilityClient {
    /// A builder; only the API key is required.
    pub fn builder() -> StabilityClientBuilder {
        StabilityClientBuilder::default()
    }

    /// A client with the key from the `STABILITY_API_KEY` environment variable and default
    /// settings.
    ///
    /// Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable) when the
    /// variable is unset or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.stability]` configuration: the key from `api_key`, else
    /// from the variable `api_key_env` names (default `STABILITY_API_KEY`); `base_url` (default
    /// `https://api.stability.ai`); connect and read timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        StabilityClientBuilder::from_config(cfg)?.build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.upstream.base_url()
    }

    /// POSTs `fields` as a `multipart/form-data` body to `{base}{path}` with the key, asking
    /// for JSON (`Accept: application/json`); a non-2xx answer is classified.
    ///
    /// The generate endpoints take only multipart bodies, even with no file in them; a form of
    /// text fields is one (the official Python samples add a dummy `files={"none": ''}` only to
    /// make `requests` send multipart).
    pub(crate) async fn post_form(
        &self,
        path: &str,
        fields: Vec<(&'static str, String)>,
    ) -> Result<reqwest::Response> {
        let form = fields
            .into_iter()
            .fold(reqwest::multipart::Form::new(), |form, (name, value)| {
                form.text(name, value)
            });
        let request = self
            .upstream
            .post(path)
            .header(reqwest::header::ACCEPT, "application/json")
            .multipart(form);
        send(PROVIDER, request, error::classify).await
    }
}

/// Builds a [`StabilityClient`]. See [`StabilityClient::builder`].
#[derive(Debug, Default, Clone)]
pub struct StabilityClientBuilder {
    settings: UpstreamBuilder,
}

impl StabilityClientBuilder {
    /// A builder with the settings of a `[providers.stability]` section: its key (or key
    /// variable, default `STABILITY_API_KEY`), base URL and timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        Ok(Self {
            settings: UpstreamBuilder::from_config(cfg, PROVIDER, DEFAULT_ENV)?,
        })
    }

    /// The Stability AI API key (`sk-...`). Required. Sent as `Authorization: Bearer <key>`,
    /// never in a URL.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.settings.api_key(api_key.into());
        self
    }

    /// The base URL (default `https://api.stability.ai`): a proxy, or a mock in tests.
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
    pub fn build(self) -> Result<StabilityClient> {
        Ok(StabilityClient {
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
            default_base_url: "https://api.stability.ai",
            builder: StabilityClient::builder,
            api_key: |b, k| b.api_key(k),
            base_url: |b, u| b.base_url(u),
            build: StabilityClientBuilder::build,
            from_config: StabilityClient::from_config,
            client_base_url: StabilityClient::base_url,
        });
    }
}
