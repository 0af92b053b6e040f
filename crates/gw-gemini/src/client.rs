//! The Gemini client: configuration and request paths, over the shared [`Upstream`].

use std::sync::Arc;

use gateway_core::http::reqwest;
use gateway_core::http::{
    Auth, Classify, DownloadPolicy, DownloadSettings, Downloader, Upstream, UpstreamBuilder,
};
use gateway_core::{ProviderConfig, Result, SecretString};

use crate::convert::model_path;
use crate::{GeminiConfig, PROVIDER};

/// Where the Gemini Developer API lives.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The environment variable [`GeminiClient::from_env`] reads the API key from.
pub const DEFAULT_API_KEY_ENV: &str = "GEMINI_API_KEY";

/// The key travels in this header; the `?key=` query form is never used, since URLs end up in
/// logs (<https://ai.google.dev/gemini-api/docs/api-key>: both forms are accepted).
const AUTH: Auth = Auth::Header("x-goog-api-key");

/// The largest image the gateway downloads for a caller, before base64: "the total request size
/// limit is 20 MB" for inline data (<https://ai.google.dev/gemini-api/docs/image-understanding>,
/// <https://firebase.google.com/docs/ai-logic/input-file-requirements>), and base64 makes
/// 15 MB of bytes 20 MB of text.
pub const DEFAULT_DOWNLOAD_MAX_BYTES: usize = 15_000_000;

/// The largest audio sent inline to be transcribed, before base64; larger audio goes through the
/// Files API. "Always use the Files API when the total request size ... is larger than 20 MB"
/// (<https://ai.google.dev/gemini-api/docs/audio>), and base64 makes 15 MB of bytes 20 MB.
pub const DEFAULT_INLINE_AUDIO_MAX_BYTES: usize = 15_000_000;

#[doc = include_str!("docs.md")]
#[derive(Clone, Debug)]
pub struct GeminiClient {
    upstream: Arc<Upstream>,
    /// Fetches the images callers link to (clones share its connection pool).
    downloader: Downloader,
    /// Audio larger than this is uploaded through the Files API rather than sent inline.
    inline_audio_max_bytes: usize,
}

impl GeminiClient {
    /// A builder; only the API key is required.
    pub fn builder() -> GeminiClientBuilder {
        GeminiClientBuilder::default()
    }

    /// A client with the key from `GEMINI_API_KEY` and default timeouts.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.gemini]` configuration: its key (or key variable, default
    /// `GEMINI_API_KEY`), base URL, timeouts and [`GeminiConfig`] (the `downloads` limits).
    /// Fails with [`ErrorKind::Config`](gateway_core::ErrorKind::Config), naming the field, for
    /// a field it does not know.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        let GeminiConfig {
            downloads,
            inline_audio_max_bytes,
        } = cfg.extra(PROVIDER)?;
        GeminiClientBuilder {
            settings: UpstreamBuilder::from_config(cfg, PROVIDER, DEFAULT_API_KEY_ENV)?,
            downloads,
            inline_audio_max_bytes,
        }
        .build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.upstream.base_url()
    }

    /// `/v1beta/models/{model}:{method}`; `method` may carry a query (`?alt=sse`).
    pub(crate) fn endpoint(model: &str, method: &str) -> Result<String> {
        Ok(format!("/v1beta/models/{}:{method}", model_path(model)?))
    }

    /// POSTs `body` as JSON to `path` with the key header; non-2xx answers are classified.
    pub(crate) async fn post_json<T: serde::Serialize + Sync + ?Sized>(
        &self,
        path: &str,
        body: &T,
        classify: Classify,
    ) -> Result<reqwest::Response> {
        self.upstream.post_json(path, body, classify).await
    }

    /// [`GeminiClient::post_json`] with the body encoded already (a text request, written by
    /// hand).
    pub(crate) async fn post_encoded(
        &self,
        path: &str,
        body: Vec<u8>,
        classify: Classify,
    ) -> Result<reqwest::Response> {
        self.upstream
            .post_encoded_with(path, body, &[], classify)
            .await
    }

    /// The shared HTTP plumbing: requests with the key header, to paths under the base URL.
    pub(crate) fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Audio larger than this (in bytes) is uploaded through the Files API to be transcribed.
    pub fn inline_audio_max_bytes(&self) -> usize {
        self.inline_audio_max_bytes
    }

    /// The downloader of caller-linked images.
    pub(crate) fn downloader(&self) -> &Downloader {
        &self.downloader
    }

    /// The limits on images downloaded for callers.
    pub fn download_policy(&self) -> &DownloadPolicy {
        self.downloader.policy()
    }
}

/// Builds a [`GeminiClient`].
#[derive(Debug, Default, Clone)]
pub struct GeminiClientBuilder {
    settings: UpstreamBuilder,
    downloads: DownloadSettings,
    inline_audio_max_bytes: Option<usize>,
}

impl GeminiClientBuilder {
    /// The API key (required). Sent only in the `x-goog-api-key` header.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.settings.api_key(api_key.into());
        self
    }

    /// Overrides the base URL (default [`DEFAULT_BASE_URL`]): a mock server, a proxy.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.settings.base_url(base_url.into());
        self
    }

    /// Shares an existing HTTP client (its connection pool and timeouts). The default has the
    /// gateway's default connect and read timeouts, and no total timeout, so long streams last.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.settings.http(http);
        self
    }

    /// Limits on the images the gateway downloads for callers who link to them (applied to a
    /// default of [`DEFAULT_DOWNLOAD_MAX_BYTES`], public addresses only).
    pub fn downloads(mut self, downloads: DownloadSettings) -> Self {
        self.downloads = downloads;
        self
    }

    /// Audio larger than `bytes` is uploaded through the Files API to be transcribed, rather than
    /// sent inline (default [`DEFAULT_INLINE_AUDIO_MAX_BYTES`]).
    pub fn inline_audio_max_bytes(mut self, bytes: usize) -> Self {
        self.inline_audio_max_bytes = Some(bytes);
        self
    }

    /// The client; an [`ErrorKind::Config`](gateway_core::ErrorKind::Config) error if the key is
    /// missing or unusable, or the base URL is not an http(s) URL.
    pub fn build(self) -> Result<GeminiClient> {
        let policy = self.downloads.apply(DownloadPolicy {
            max_bytes: DEFAULT_DOWNLOAD_MAX_BYTES,
            ..DownloadPolicy::default()
        });
        Ok(GeminiClient {
            upstream: Arc::new(self.settings.build(PROVIDER, DEFAULT_BASE_URL, AUTH)?),
            downloader: Downloader::new(policy).map_err(|e| e.with_provider(PROVIDER))?,
            inline_audio_max_bytes: self
                .inline_audio_max_bytes
                .unwrap_or(DEFAULT_INLINE_AUDIO_MAX_BYTES),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::ErrorKind;

    #[test]
    fn endpoints() {
        let c = GeminiClient::builder()
            .api_key("k")
            .base_url("http://127.0.0.1:9/")
            .build()
            .unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:9");
        assert_eq!(
            GeminiClient::endpoint("gemini-2.5-flash", "generateContent").unwrap(),
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            GeminiClient::endpoint("models/gemini-2.5-flash", "streamGenerateContent?alt=sse")
                .unwrap(),
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            GeminiClient::endpoint("a/b", "generateContent")
                .unwrap_err()
                .kind(),
            &ErrorKind::InvalidRequest
        );
    }

    #[test]
    fn settings_follow_the_shared_rules() {
        gateway_core::testing::client_settings(&gateway_core::testing::ClientSettings {
            provider: PROVIDER,
            default_base_url: DEFAULT_BASE_URL,
            builder: GeminiClient::builder,
            api_key: |b, k| b.api_key(k),
            base_url: |b, u| b.base_url(u),
            build: GeminiClientBuilder::build,
            from_config: GeminiClient::from_config,
            client_base_url: GeminiClient::base_url,
        });
    }
}
