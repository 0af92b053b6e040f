//! Provider configuration shared by every provider crate.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::{Error, ErrorKind, Result};

/// A secret (an API key) that never shows in `Debug` or logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself; call only where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// The configuration of one provider, as it appears under `[providers.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The API key itself. Prefer `api_key_env`, which keeps keys out of files.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// The environment variable that holds the API key; each provider has a default.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Overrides the provider's base URL (a mock server in tests, a proxy in production).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Connection timeout in milliseconds.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Longest wait for the next byte of a response, in milliseconds. A read timeout rather than a
    /// total one, so long streams are not cut.
    #[serde(default)]
    pub read_timeout_ms: Option<u64>,
    /// Models announced on `GET /v1/models`. Any model id is routed, listed or not.
    #[serde(default)]
    pub models: Vec<String>,
    /// Set to `false` to keep a configured provider switched off.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

/// Enabled, with every other field unset (the provider's defaults apply).
impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            api_key_env: None,
            base_url: None,
            connect_timeout_ms: None,
            read_timeout_ms: None,
            models: Vec::new(),
            enabled: true,
        }
    }
}

impl ProviderConfig {
    /// The API key: `api_key` if set, else the variable `api_key_env` (or `default_env`) names.
    pub fn resolve_api_key(
        &self,
        provider: &'static str,
        default_env: &str,
    ) -> Result<SecretString> {
        if let Some(key) = &self.api_key {
            return Ok(key.clone());
        }
        let var = self.api_key_env.as_deref().unwrap_or(default_env);
        match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Ok(SecretString::new(key.trim())),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!("no API key: set the environment variable {var} (providers.{provider}.api_key_env)"),
            )
            .with_provider(provider)),
        }
    }

    /// The base URL without a trailing slash: the configured one, else `default`.
    pub fn base_url_or(&self, default: &str) -> String {
        self.base_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
    }

    /// The connection timeout (default 10 s).
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.unwrap_or(10_000))
    }

    /// The read timeout (default 120 s).
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms.unwrap_or(120_000))
    }
}

/// Every provider's configuration, keyed by provider id (`gemini`, `hf`, ...).
pub type ProvidersConfig = BTreeMap<String, ProviderConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug_print() {
        let cfg = ProviderConfig {
            api_key: Some("hf_supersecret".into()),
            ..ProviderConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
    }

    #[test]
    fn default_is_enabled_like_an_empty_table() {
        let from_toml: ProviderConfig = serde_json::from_str("{}").unwrap();
        assert!(ProviderConfig::default().enabled);
        assert!(from_toml.enabled);
    }

    #[test]
    fn missing_key_names_the_variable() {
        let cfg = ProviderConfig {
            api_key_env: Some("GW_TEST_SURELY_UNSET_KEY".into()),
            ..ProviderConfig::default()
        };
        let err = cfg.resolve_api_key("gemini", "GEMINI_API_KEY").unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        assert!(
            err.to_string().contains("GW_TEST_SURELY_UNSET_KEY"),
            "{err}"
        );
    }

    #[test]
    fn base_url_loses_its_trailing_slash() {
        let cfg = ProviderConfig {
            base_url: Some("http://127.0.0.1:9/".into()),
            ..ProviderConfig::default()
        };
        assert_eq!(cfg.base_url_or("https://x"), "http://127.0.0.1:9");
        assert_eq!(
            ProviderConfig::default().base_url_or("https://x/"),
            "https://x"
        );
    }
}
