//! The pricing catalog: prices per provider, model and unit, read from data (`pricing.toml`).

use std::collections::HashMap;

use serde::Deserialize;

use crate::{Cost, Error, ErrorKind, Result, TokenPrice, TokenUsage};

/// The catalog that ships with this version of the gateway.
pub const BUILTIN_CATALOG: &str = include_str!("../pricing.toml");

/// Prices by provider and model. Look-ups are exact on the provider-local model id.
#[derive(Debug, Clone, Default)]
pub struct PriceCatalog {
    version: String,
    text: HashMap<(String, String), TextPrice>,
}

/// The price of a token-billed text model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPrice {
    /// The standard rates.
    pub base: TokenPrice,
    /// Rates for prompts longer than a threshold, where the provider has such a tier.
    pub long_context: Option<(u64, TokenPrice)>,
}

impl TextPrice {
    /// What `usage` costs.
    pub fn cost(&self, usage: &TokenUsage) -> Cost {
        match self.long_context {
            Some((above, price)) if usage.input_tokens > above => price.cost(usage),
            _ => self.base.cost(usage),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    #[serde(default)]
    text: Vec<TextEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextEntry {
    provider: String,
    model: String,
    input: String,
    output: String,
    #[serde(default)]
    cached_input: Option<String>,
    #[serde(default)]
    long_context: Option<LongContext>,
    #[serde(default)]
    #[allow(dead_code)] // provenance for readers of the file
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongContext {
    above_tokens: u64,
    input: String,
    output: String,
    #[serde(default)]
    cached_input: Option<String>,
}

impl PriceCatalog {
    /// The catalog shipped with the gateway ([`BUILTIN_CATALOG`]).
    pub fn builtin() -> Self {
        // The shipped file is checked by a unit test, so this cannot fail in a released build.
        Self::from_toml(BUILTIN_CATALOG, "pricing.toml").unwrap_or_default()
    }

    /// Reads a catalog in the format of `pricing.toml`; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let file: File = toml::from_str(text)
            .map_err(|e| Error::new(ErrorKind::Config, format!("{origin}: {e}")))?;
        let mut catalog = Self {
            version: file.version,
            text: HashMap::new(),
        };
        for (i, entry) in file.text.into_iter().enumerate() {
            let at = |field: &str| format!("{origin}: text[{i}].{field}");
            let cost = |field: &str, value: &str| -> Result<Cost> {
                value
                    .parse()
                    .map_err(|e| Error::new(ErrorKind::Config, format!("{}: {e}", at(field))))
            };
            let base = TokenPrice {
                input: cost("input", &entry.input)?,
                output: cost("output", &entry.output)?,
                cached_input: entry
                    .cached_input
                    .as_deref()
                    .map(|c| cost("cached_input", c))
                    .transpose()?,
            };
            let long_context = match entry.long_context {
                Some(lc) => Some((
                    lc.above_tokens,
                    TokenPrice {
                        input: cost("long_context.input", &lc.input)?,
                        output: cost("long_context.output", &lc.output)?,
                        cached_input: lc
                            .cached_input
                            .as_deref()
                            .map(|c| cost("long_context.cached_input", c))
                            .transpose()?,
                    },
                )),
                None => None,
            };
            catalog.text.insert(
                (entry.provider, entry.model),
                TextPrice { base, long_context },
            );
        }
        Ok(catalog)
    }

    /// Adds `other`'s prices over these (an operator's overrides); its version, if set, wins.
    pub fn merge(&mut self, other: PriceCatalog) {
        if !other.version.is_empty() {
            self.version = other.version;
        }
        self.text.extend(other.text);
    }

    /// The catalog version that priced a usage row.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The price of `provider`'s text model `model`, if the catalog has it.
    pub fn text_price(&self, provider: &str, model: &str) -> Option<&TextPrice> {
        self.text.get(&(provider.to_owned(), model.to_owned()))
    }

    /// What `usage` of `provider`'s `model` costs, or `None` when the price is unknown.
    pub fn text_cost(&self, provider: &str, model: &str, usage: &TokenUsage) -> Option<Cost> {
        self.text_price(provider, model).map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_reads() {
        let catalog = PriceCatalog::from_toml(BUILTIN_CATALOG, "pricing.toml").unwrap();
        assert_eq!(catalog.version(), "2026-11-26");
        assert!(catalog.text_price("gemini", "gemini-2.5-flash").is_some());
        assert!(catalog.text_price("gemini", "no-such-model").is_none());
    }

    #[test]
    fn long_context_tier_applies_above_threshold() {
        let catalog = PriceCatalog::builtin();
        let usage = |input| TokenUsage {
            input_tokens: input,
            output_tokens: 1_000_000,
            ..TokenUsage::default()
        };
        // gemini-2.5-pro: $1.25 in / $10 out up to 200k prompt tokens, $2.50 / $15 above.
        let small = catalog
            .text_cost("gemini", "gemini-2.5-pro", &usage(200_000))
            .unwrap();
        assert_eq!(small.to_string(), "10.25");
        let large = catalog
            .text_cost("gemini", "gemini-2.5-pro", &usage(400_000))
            .unwrap();
        assert_eq!(large.to_string(), "16");
    }

    #[test]
    fn bad_price_names_file_and_field() {
        let err = PriceCatalog::from_toml(
            "version = \"x\"\n[[text]]\nprovider = \"p\"\nmodel = \"m\"\ninput = \"-1\"\noutput = \"1\"\n",
            "ops.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ops.toml: text[0].input"), "{err}");
    }

    #[test]
    fn overrides_win() {
        let mut catalog = PriceCatalog::builtin();
        let ops = PriceCatalog::from_toml(
            "version = \"ops-1\"\n[[text]]\nprovider = \"gemini\"\nmodel = \"gemini-2.0-flash\"\ninput = \"1\"\noutput = \"1\"\n",
            "ops.toml",
        )
        .unwrap();
        catalog.merge(ops);
        assert_eq!(catalog.version(), "ops-1");
        let usage = TokenUsage {
            input_tokens: 1_000_000,
            ..TokenUsage::default()
        };
        assert_eq!(
            catalog
                .text_cost("gemini", "gemini-2.0-flash", &usage)
                .unwrap()
                .to_string(),
            "1"
        );
    }
}
