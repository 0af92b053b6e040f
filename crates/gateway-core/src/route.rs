//! Route ids: which provider's which model a request goes to.

use std::fmt;
use std::sync::Arc;

use crate::{Error, ErrorKind, Result};

/// A route: one provider's model, as in `gemini/gemini-2.5-flash`.
///
/// Parsed once from a model name; the provider id is the provider's own `&'static str`
/// constant, the model id is everything after the first `/`, verbatim (Hugging Face ids keep
/// their own slash and an optional `:provider` suffix). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId {
    /// The provider id (`gemini`).
    pub provider: &'static str,
    /// The provider-local model id (`gemini-2.5-flash`).
    pub model: Arc<str>,
}

impl RouteId {
    /// The route to `provider`'s `model`.
    pub fn new(provider: &'static str, model: impl Into<Arc<str>>) -> Self {
        Self {
            provider,
            model: model.into(),
        }
    }

    /// Splits `name` (`<provider>/<model id>`) and resolves the provider with `provider_id`,
    /// which returns the provider's static id when it knows the provider.
    ///
    /// Fails with [`ErrorKind::InvalidRequest`] when `name` is not `<provider>/<model id>`, and
    /// with [`ErrorKind::NotFound`] when `provider_id` does not know the provider.
    pub fn parse(name: &str, provider_id: impl Fn(&str) -> Option<&'static str>) -> Result<Self> {
        let (provider, model) = split(name).ok_or_else(|| {
            Error::invalid_request(format!(
                "model `{name}` must be named `<provider>/<model id>`, e.g. `gemini/gemini-2.5-flash`"
            ))
        })?;
        let provider = provider_id(provider).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("model `{name}`: unknown provider `{provider}`"),
            )
        })?;
        Ok(Self::new(provider, model))
    }
}

/// Splits `<provider>/<model id>` at the first `/`; `None` unless both parts are non-empty.
pub(crate) fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once('/')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(p: &str) -> Option<&'static str> {
        ["gemini", "hf"].into_iter().find(|k| *k == p)
    }

    #[test]
    fn parses_and_prints() {
        let r = RouteId::parse("hf/meta-llama/Llama-3.1-8B-Instruct:cerebras", known).unwrap();
        assert_eq!(r.provider, "hf");
        assert_eq!(&*r.model, "meta-llama/Llama-3.1-8B-Instruct:cerebras");
        assert_eq!(
            r.to_string(),
            "hf/meta-llama/Llama-3.1-8B-Instruct:cerebras"
        );
    }

    #[test]
    fn refuses_malformed_names_and_unknown_providers() {
        for bad in ["gemini", "/x", "gemini/", ""] {
            let e = RouteId::parse(bad, known).unwrap_err();
            assert_eq!(e.kind(), &ErrorKind::InvalidRequest, "{bad}");
        }
        let e = RouteId::parse("nope/x", known).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::NotFound);
        assert!(e.message().contains("nope"), "{e}");
    }
}
