//! Provider configuration shared by every provider crate.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{Error, ErrorKind, Result, Service};

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

/// A model a provider announces on `GET /v1/models`: its id, serving the provider's main
/// service (`"gemini-2.5-flash"`), or a table naming what it serves
/// (`{ id = "gemini-embedding-001", serves = ["embeddings"] }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelEntry {
    /// Just the id.
    Id(String),
    /// The id and its services.
    Serving(ServingModel),
}

/// A model and the services it is announced for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingModel {
    /// The provider-local model id.
    pub id: String,
    /// What it serves (`chat`, `embeddings`, `images`, `speech`, `transcription`, `video`,
    /// `search`).
    pub serves: Vec<Service>,
}

impl ModelEntry {
    /// The provider-local model id.
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Serving(ServingModel { id, .. }) => id,
        }
    }

    /// The services it is announced for; `default` for a plain id.
    pub fn services(&self, default: Service) -> Vec<Service> {
        match self {
            Self::Id(_) => vec![default],
            Self::Serving(s) => s.serves.clone(),
        }
    }
}

/// A string or a table, with the table's own error (an unknown field, a service that does not
/// exist) rather than serde's "did not match any variant".
impl<'de> Deserialize<'de> for ModelEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = ModelEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a model id, or a table `{ id = \"...\", serves = [...] }`")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                id: &str,
            ) -> std::result::Result<ModelEntry, E> {
                Ok(ModelEntry::Id(id.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<ModelEntry, A::Error> {
                ServingModel::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ModelEntry::Serving)
            }
        }
        d.deserialize_any(Entry)
    }
}

impl From<&str> for ModelEntry {
    fn from(id: &str) -> Self {
        Self::Id(id.to_owned())
    }
}

/// The fields every provider section has; anything else is the provider's own (see
/// [`ProviderConfig::extra`]).
const COMMON_FIELDS: [&str; 7] = [
    "api_key",
    "api_key_env",
    "base_url",
    "connect_timeout_ms",
    "read_timeout_ms",
    "models",
    "enabled",
];

/// The configuration of one provider, as it appears under `[providers.<name>]`: the fields every
/// provider has, and in [`ProviderConfig::extra`] the provider's own, which its crate reads into
/// its typed section.
#[derive(Debug, Clone, Deserialize)]
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
    pub models: Vec<ModelEntry>,
    /// Set to `false` to keep a configured provider switched off.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The provider's own settings (every field not listed above), read by its crate with
    /// [`ProviderConfig::extra`]; a field no one reads is refused there.
    #[serde(flatten)]
    pub extra: toml::Table,
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
            extra: toml::Table::new(),
        }
    }
}

impl ProviderConfig {
    /// The API key: `api_key` if set, else the variable `api_key_env` (or `default_env`) names.
    ///
    /// A key that is not set is [`ErrorKind::Unavailable`]: the provider is configured but
    /// cannot be used until its variable is set (the server serves the other providers).
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
                ErrorKind::Unavailable,
                format!("no API key: set the environment variable {var} (providers.{provider}.api_key_env)"),
            )
            .with_provider(provider)),
        }
    }

    /// Reads the provider's own settings (the fields beyond the common ones) into its typed
    /// section `E`, which should deny unknown fields. Errors are [`ErrorKind::Config`] and name
    /// `providers.<provider>` and the field, listing the common fields too, so a misspelt common
    /// field is reported rather than ignored.
    pub fn extra<E: DeserializeOwned>(&self, provider: &'static str) -> Result<E> {
        let parse = |table: toml::Table| E::deserialize(toml::Value::Table(table));
        parse(self.extra.clone()).map_err(|e| {
            // serde's message names an unknown field but not a mistyped one: find the field
            // that fails on its own.
            let field = self.extra.iter().find_map(|(key, value)| {
                let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
                parse(alone)
                    .err()
                    .filter(|e| !e.message().contains("missing field"))
                    .map(|_| key.clone())
            });
            let at = match field {
                Some(key) => format!("providers.{provider}.{key}"),
                None => format!("providers.{provider}"),
            };
            Error::new(
                ErrorKind::Config,
                format!(
                    "{at}: {} (every provider also takes: {})",
                    e.message(),
                    COMMON_FIELDS.join(", ")
                ),
            )
            .with_provider(provider)
        })
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
        assert_eq!(err.kind(), &ErrorKind::Unavailable);
        assert!(
            err.to_string().contains("GW_TEST_SURELY_UNSET_KEY"),
            "{err}"
        );
    }

    #[test]
    fn models_are_ids_or_tables_and_extra_fields_reach_the_provider() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Extra {
            #[serde(default)]
            bill_to: Option<String>,
        }
        let cfg: ProviderConfig = toml::from_str(
            r#"
            models = ["a", { id = "e", serves = ["embeddings", "chat"] }]
            bill_to = "my-org"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.models[0].services(Service::Chat), [Service::Chat]);
        assert_eq!(cfg.models[1].id(), "e");
        assert_eq!(
            cfg.models[1].services(Service::Chat),
            [Service::Embeddings, Service::Chat]
        );
        let extra: Extra = cfg.extra("hf").unwrap();
        assert_eq!(extra.bill_to.as_deref(), Some("my-org"));

        let bad = toml::from_str::<ProviderConfig>(r#"models = [{ id = "e", serve = ["chat"] }]"#)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("serve"), "{bad}");
        let bad =
            toml::from_str::<ProviderConfig>(r#"models = [{ id = "e", serves = ["smell"] }]"#)
                .unwrap_err()
                .to_string();
        assert!(bad.contains("smell"), "{bad}");

        let typo: ProviderConfig = toml::from_str("base_ulr = \"http://x\"").unwrap();
        let err = typo.extra::<Extra>("hf").unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        assert!(err.message().contains("providers.hf"), "{err}");
        assert!(err.message().contains("base_ulr"), "{err}");
        assert!(err.message().contains("base_url"), "{err}");
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
