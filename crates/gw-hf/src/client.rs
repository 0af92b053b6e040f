//! The Hugging Face router client: configuration and one authenticated POST, over the shared
//! [`Upstream`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_core::http::{
    Auth, DownloadPolicy, DownloadSettings, Downloader, Upstream, UpstreamBuilder, cannot_encode,
    reqwest,
};
use gateway_core::{ProviderConfig, Result, SecretString};
use serde::Serialize;

use crate::{DEFAULT_BASE, DEFAULT_ENV, PROVIDER, error};

#[doc = include_str!("docs.md")]
#[derive(Clone, Debug)]
pub struct HfClient {
    upstream: Arc<Upstream>,
    /// `X-HF-Bill-To`, when an organisation pays.
    bill_to: Option<reqwest::header::HeaderValue>,
    /// The Hub's API, for the model-to-backend mapping of text-to-image.
    hub: Arc<Upstream>,
    /// The Hub's mappings already read, by model id.
    mappings: Arc<Mutex<MappingCache>>,
    /// Fetches the images a backend answers with as URLs, when bytes are wanted.
    downloader: Downloader,
}

/// The Hub's mappings read in the last [`MAPPING_TTL`], by model id.
pub(crate) type MappingCache =
    HashMap<String, (Instant, Arc<Vec<crate::image::wire::ProviderMapping>>)>;

/// How long a model's mapping is reused: backends are added to a model, or go, rarely (the
/// official clients keep it for the life of the process).
pub(crate) const MAPPING_TTL: Duration = Duration::from_secs(600);

/// The most models whose mappings are kept; past it the cache starts over.
pub(crate) const MAPPING_CACHE_LIMIT: usize = 1024;

/// Where the Hub's API lives.
pub const DEFAULT_HUB_URL: &str = "https://huggingface.co";

/// The header that bills an organisation rather than the token's owner
/// (<https://huggingface.co/docs/inference-providers/pricing#billing-for-team-and-enterprise-organizations>).
const BILL_TO: &str = "x-hf-bill-to";

impl HfClient {
    /// A builder; only the token is required.
    pub fn builder() -> HfClientBuilder {
        HfClientBuilder::default()
    }

    /// A client with the token from the `HF_TOKEN` environment variable and default settings.
    ///
    /// Fails with [`ErrorKind::Config`](gateway_core::ErrorKind::Config) when the variable is
    /// unset or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.hf]` configuration: the key from `api_key`, else from the
    /// variable `api_key_env` names (default `HF_TOKEN`); `base_url` (default
    /// `https://router.huggingface.co`); connect and read timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        HfClientBuilder::from_config(cfg)?.build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.upstream.base_url()
    }

    /// The Hub's base URL, for the model-to-backend mappings, without a trailing slash.
    pub fn hub_url(&self) -> &str {
        self.hub.base_url()
    }

    pub(crate) fn hub(&self) -> &Upstream {
        &self.hub
    }

    pub(crate) fn mappings(&self) -> &Mutex<MappingCache> {
        &self.mappings
    }

    pub(crate) fn downloader(&self) -> &Downloader {
        &self.downloader
    }

    /// POSTs `body` as JSON to `{base}{path}` with the token (and the billed organisation);
    /// a non-2xx answer is classified.
    pub(crate) async fn post_json<T: Serialize + Sync>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response> {
        let body = serde_json::to_vec(body).map_err(|e| cannot_encode(PROVIDER, &e))?;
        self.post_encoded(path, body).await
    }

    /// [`HfClient::post_json`] with the body encoded already (a chat request, written by hand).
    pub(crate) async fn post_encoded(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response> {
        let Some(bill_to) = &self.bill_to else {
            return (self.upstream)
                .post_encoded_with(path, body, &[], error::classify)
                .await;
        };
        let bill_to = [(
            reqwest::header::HeaderName::from_static(BILL_TO),
            bill_to.clone(),
        )];
        self.upstream
            .post_encoded_with(path, body, &bill_to, error::classify)
            .await
    }
}

/// Builds an [`HfClient`]. See [`HfClient::builder`].
#[derive(Debug, Default, Clone)]
pub struct HfClientBuilder {
    settings: UpstreamBuilder,
    bill_to: Option<String>,
    /// The router's base URL when it is not the default.
    base_url: Option<String>,
    hub_url: Option<String>,
    downloads: DownloadSettings,
}

impl HfClientBuilder {
    /// A builder with the settings of a `[providers.hf]` section: its token (or token variable,
    /// default `HF_TOKEN`), base URL and timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        Ok(Self {
            settings: UpstreamBuilder::from_config(cfg, PROVIDER, DEFAULT_ENV)?,
            bill_to: None,
            base_url: cfg.base_url.clone(),
            hub_url: None,
            downloads: DownloadSettings::default(),
        })
    }

    /// Bills the organisation `org` instead of the token's owner (`X-HF-Bill-To`).
    pub fn bill_to(mut self, org: impl Into<String>) -> Self {
        self.bill_to = Some(org.into());
        self
    }

    /// The Hugging Face token (`hf_...`, with the "Make calls to Inference Providers"
    /// permission). Required. Sent as `Authorization: Bearer <token>`.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.settings.api_key(api_key.into());
        self
    }

    /// The base URL (default `https://router.huggingface.co`): a proxy, or a mock in tests.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        let base_url = base_url.into();
        self.settings.base_url(base_url.clone());
        self.base_url = Some(base_url);
        self
    }

    /// The Hub's base URL, where text-to-image reads which backend serves a model under which
    /// id (default `https://huggingface.co`; with a `base_url` set and no `hub_url`, the
    /// `base_url`: a proxy or mock standing in for the router stands in for the Hub too, so no
    /// call goes elsewhere unasked).
    pub fn hub_url(mut self, hub_url: impl Into<String>) -> Self {
        self.hub_url = Some(hub_url.into());
        self
    }

    /// Limits on the images the gateway downloads from a backend's URLs when bytes are asked
    /// for (applied to [`DownloadPolicy::default`]: 32 MiB, public addresses only, 120 s).
    pub fn downloads(mut self, downloads: DownloadSettings) -> Self {
        self.downloads = downloads;
        self
    }

    /// The HTTP client to use, e.g. one shared by several providers. Its timeouts apply; the
    /// default has the connect and read timeouts of [`ProviderConfig`]'s defaults.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.settings.http(http);
        self
    }

    /// The client. Fails with [`ErrorKind::Config`](gateway_core::ErrorKind::Config) without a
    /// usable token or with a base URL that is not http(s).
    pub fn build(self) -> Result<HfClient> {
        let bill_to = match self.bill_to {
            Some(org) => Some(
                reqwest::header::HeaderValue::from_str(org.trim())
                    .ok()
                    .filter(|_| !org.trim().is_empty())
                    .ok_or_else(|| {
                        gateway_core::Error::new(
                            gateway_core::ErrorKind::Config,
                            "providers.hf.bill_to: not an organisation name an HTTP header can carry",
                        )
                        .with_provider(PROVIDER)
                    })?,
            ),
            None => None,
        };
        let hub_url = self
            .hub_url
            .or(self.base_url)
            .unwrap_or_else(|| DEFAULT_HUB_URL.to_owned());
        let mut hub = self.settings.clone();
        hub.base_url(hub_url);
        Ok(HfClient {
            upstream: Arc::new(self.settings.build(PROVIDER, DEFAULT_BASE, Auth::Bearer)?),
            bill_to,
            hub: Arc::new(hub.build(PROVIDER, DEFAULT_HUB_URL, Auth::Bearer)?),
            mappings: Arc::default(),
            downloader: Downloader::new(self.downloads.apply(DownloadPolicy::default()))
                .map_err(|e| e.with_provider(PROVIDER))?,
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
            default_base_url: "https://router.huggingface.co",
            builder: HfClient::builder,
            api_key: |b, k| b.api_key(k),
            base_url: |b, u| b.base_url(u),
            build: HfClientBuilder::build,
            from_config: HfClient::from_config,
            client_base_url: HfClient::base_url,
        });
    }
}
