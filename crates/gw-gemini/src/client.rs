//! The Gemini client: configuration, one shared HTTP client, and request building.

use std::fmt;
use std::sync::Arc;

use gateway_core::http::reqwest::header::HeaderValue;
use gateway_core::http::reqwest::{self, Url};
use gateway_core::{Error, ErrorKind, ProviderConfig, Result, SecretString};

use crate::PROVIDER;
use crate::convert::model_path;

/// Where the Gemini Developer API lives.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The environment variable [`GeminiClient::from_env`] reads the API key from.
pub const DEFAULT_API_KEY_ENV: &str = "GEMINI_API_KEY";

/// The header that carries the key. The `?key=` query form is never used: URLs end up in logs.
const API_KEY_HEADER: &str = "x-goog-api-key";

#[doc = include_str!("docs.md")]
#[derive(Clone)]
pub struct GeminiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Without a trailing slash.
    base_url: String,
    /// The key as a header value marked sensitive, so even reqwest's own `Debug` hides it.
    api_key: HeaderValue,
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
    /// `GEMINI_API_KEY`), base URL and timeouts.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        let api_key = cfg.resolve_api_key(PROVIDER, DEFAULT_API_KEY_ENV)?;
        let http = gateway_core::http::client(cfg).map_err(|e| e.with_provider(PROVIDER))?;
        Self::builder()
            .api_key(api_key)
            .base_url(cfg.base_url_or(DEFAULT_BASE_URL))
            .http(http)
            .build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `{base}/v1beta/models/{model}:{method}`; `method` may carry a query (`?alt=sse`).
    pub(crate) fn endpoint(&self, model: &str, method: &str) -> Result<String> {
        let model = model_path(model)?;
        Ok(format!(
            "{}/v1beta/models/{model}:{method}",
            self.inner.base_url
        ))
    }

    /// A POST of `body` as JSON to `url`, with the key header.
    pub(crate) fn post_json<T: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        body: &T,
    ) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(url)
            .header(API_KEY_HEADER, self.inner.api_key.clone())
            .json(body)
    }
}

impl fmt::Debug for GeminiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiClient")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &"***")
            .finish_non_exhaustive()
    }
}

/// Builds a [`GeminiClient`].
#[derive(Debug, Default, Clone)]
pub struct GeminiClientBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    http: Option<reqwest::Client>,
}

impl GeminiClientBuilder {
    /// The API key (required). Sent only in the `x-goog-api-key` header.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// Overrides the base URL (default [`DEFAULT_BASE_URL`]): a mock server, a proxy.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Shares an existing HTTP client (its connection pool and timeouts). The default has the
    /// gateway's default connect and read timeouts, and no total timeout, so long streams last.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The client; a [`ErrorKind::Config`] error if the key is missing or unusable, or the base
    /// URL is not a URL.
    pub fn build(self) -> Result<GeminiClient> {
        let config_error =
            |message: &str| Error::new(ErrorKind::Config, message).with_provider(PROVIDER);
        let api_key = self
            .api_key
            .filter(|k| !k.expose().trim().is_empty())
            .ok_or_else(|| config_error("no Gemini API key was given"))?;
        let mut api_key = HeaderValue::from_str(api_key.expose().trim()).map_err(|_| {
            config_error("the Gemini API key has characters an HTTP header cannot carry")
        })?;
        api_key.set_sensitive(true);

        let base_url = self
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL)
            .trim_end_matches('/')
            .to_owned();
        // The message does not repeat the URL: configuration errors end up in logs.
        let parsed = Url::parse(&base_url)
            .map_err(|_| config_error("the Gemini base URL is not a valid URL"))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(config_error(
                "the Gemini base URL must be http(s), without a query or fragment",
            ));
        }

        let http = match self.http {
            Some(http) => http,
            None => gateway_core::http::client(&ProviderConfig::default())
                .map_err(|e| e.with_provider(PROVIDER))?,
        };
        Ok(GeminiClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                api_key,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let c = GeminiClient::builder()
            .api_key("k")
            .base_url("http://127.0.0.1:9/")
            .build()
            .unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:9");
        assert_eq!(
            c.endpoint("gemini-2.5-flash", "generateContent").unwrap(),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            c.endpoint("models/gemini-2.5-flash", "streamGenerateContent?alt=sse")
                .unwrap(),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            c.endpoint("a/b", "generateContent").unwrap_err().kind(),
            &ErrorKind::InvalidRequest
        );
        let default = GeminiClient::builder().api_key("k").build().unwrap();
        assert_eq!(default.base_url(), DEFAULT_BASE_URL);
    }

    #[test]
    fn build_errors_are_config_errors_without_secrets() {
        for builder in [
            GeminiClient::builder(),
            GeminiClient::builder().api_key("  "),
            GeminiClient::builder().api_key("sekrit\nvalue"),
            GeminiClient::builder().api_key("k").base_url("not a url"),
            GeminiClient::builder()
                .api_key("k")
                .base_url("ftp://example.com"),
            GeminiClient::builder()
                .api_key("k")
                .base_url("https://example.com/?key=abc"),
        ] {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config);
            assert_eq!(err.provider(), PROVIDER);
            let shown = format!("{err:?} {err}");
            assert!(!shown.contains("sekrit"), "{shown}");
            assert!(!shown.contains("example.com"), "{shown}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let builder = GeminiClient::builder().api_key("AIzaSuperSecret");
        assert!(!format!("{builder:?}").contains("SuperSecret"));
        let client = builder.build().unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("SuperSecret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn from_config_uses_key_and_base_url() {
        let cfg = ProviderConfig {
            api_key: Some("k".into()),
            base_url: Some("http://localhost:1234/".into()),
            ..ProviderConfig::default()
        };
        let c = GeminiClient::from_config(&cfg).unwrap();
        assert_eq!(c.base_url(), "http://localhost:1234");

        let missing = ProviderConfig {
            api_key_env: Some("GW_GEMINI_TEST_SURELY_UNSET".into()),
            ..ProviderConfig::default()
        };
        let err = GeminiClient::from_config(&missing).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
    }
}
