//! Embeddings: text to vectors.

use std::future::Future;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{Error, Result, TokenUsage};

/// An embeddings request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct EmbeddingRequest {
    /// The provider's model id, e.g. `gemini-embedding-001`.
    pub model: String,
    /// The texts to embed, one vector each, in order.
    pub inputs: Vec<String>,
    /// The number of dimensions wanted, for models that can shorten their vectors.
    pub dimensions: Option<u32>,
    /// Provider-specific options, passed on by the provider crate that knows them (Gemini's
    /// `taskType`, Hugging Face's `normalize`); a provider refuses an option it does not know,
    /// naming it, rather than ignore it.
    pub options: Map<String, Value>,
}

impl EmbeddingRequest {
    /// A request for `model` with no inputs yet.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }

    /// Adds one input.
    pub fn input(mut self, text: impl Into<String>) -> Self {
        self.inputs.push(text.into());
        self
    }

    /// Sets the number of dimensions.
    pub fn dimensions(mut self, dimensions: u32) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// Sets a provider-specific option.
    pub fn option(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }
}

/// The vectors, in the order of the inputs.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct EmbeddingResponse {
    /// The model that answered, as the provider names it.
    pub model: String,
    /// One vector per input.
    pub embeddings: Vec<Vec<f32>>,
    /// Input tokens, when the provider reports them (all zero when it does not: the router then
    /// counts them itself and marks the usage as estimated).
    pub usage: TokenUsage,
}

impl EmbeddingResponse {
    /// A response of `model` with `embeddings` and `usage`.
    pub fn new(model: impl Into<String>, embeddings: Vec<Vec<f32>>, usage: TokenUsage) -> Self {
        Self {
            model: model.into(),
            embeddings,
            usage,
        }
    }
}

/// What an embeddings provider can do, checked before any IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmbeddingCaps {
    /// The most inputs one call takes.
    pub max_inputs: usize,
    /// `dimensions` is honoured.
    pub dimensions: bool,
}

impl Default for EmbeddingCaps {
    fn default() -> Self {
        Self {
            max_inputs: 1,
            dimensions: false,
        }
    }
}

impl EmbeddingCaps {
    /// Caps taking up to `max_inputs` inputs per call, with or without `dimensions`.
    pub fn new(max_inputs: usize, dimensions: bool) -> Self {
        Self {
            max_inputs,
            dimensions,
        }
    }

    /// `Err` if `req` asks for something these capabilities lack, naming the field: no inputs or
    /// an empty one is the caller's mistake ([`InvalidRequest`](crate::ErrorKind::InvalidRequest));
    /// more inputs than one call takes, or `dimensions` where they cannot be chosen, is
    /// [`Unsupported`](crate::ErrorKind::Unsupported) (another route may do it).
    pub fn check(&self, provider: &str, req: &EmbeddingRequest) -> Result<()> {
        if req.inputs.is_empty() {
            return Err(Error::invalid_request("`input` must not be empty").with_param("input"));
        }
        if let Some(i) = req.inputs.iter().position(|t| t.is_empty()) {
            return Err(Error::invalid_request(format!(
                "`input[{i}]` is empty: there is nothing to embed"
            ))
            .with_param(format!("input[{i}]")));
        }
        if req.inputs.len() > self.max_inputs {
            return Err(Error::unsupported(format!(
                "provider `{provider}` embeds at most {} inputs per request; {} were given",
                self.max_inputs,
                req.inputs.len()
            ))
            .with_param("input"));
        }
        if req.dimensions.is_some() && !self.dimensions {
            return Err(Error::unsupported(format!(
                "provider `{provider}` cannot choose the number of dimensions"
            ))
            .with_param("dimensions"));
        }
        if req.dimensions == Some(0) {
            return Err(
                Error::invalid_request("`dimensions` must be positive").with_param("dimensions")
            );
        }
        Ok(())
    }
}

/// A provider of embeddings.
///
/// Implementations do IO and mapping only: retries, deadlines and fallbacks belong to the router.
pub trait EmbeddingModel: Send + Sync {
    /// The provider id (`"gemini"`).
    fn provider(&self) -> &'static str;

    /// What this provider supports.
    fn embedding_capabilities(&self) -> EmbeddingCaps {
        EmbeddingCaps::default()
    }

    /// Embeds every input of `req`.
    fn embed(
        &self,
        req: EmbeddingRequest,
    ) -> impl Future<Output = Result<EmbeddingResponse>> + Send;
}

/// The object-safe twin of [`EmbeddingModel`], which the [`Registry`](crate::Registry) stores.
pub trait DynEmbeddingModel: Send + Sync {
    /// See [`EmbeddingModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`EmbeddingModel::embedding_capabilities`].
    fn embedding_capabilities_dyn(&self) -> EmbeddingCaps;
    /// See [`EmbeddingModel::embed`].
    fn embed_dyn(&self, req: EmbeddingRequest) -> BoxFuture<'_, Result<EmbeddingResponse>>;
}

impl<T: EmbeddingModel> DynEmbeddingModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn embedding_capabilities_dyn(&self) -> EmbeddingCaps {
        self.embedding_capabilities()
    }

    fn embed_dyn(&self, req: EmbeddingRequest) -> BoxFuture<'_, Result<EmbeddingResponse>> {
        Box::pin(self.embed(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn checks_name_the_field() {
        let caps = EmbeddingCaps::new(2, false);
        let e = caps.check("p", &EmbeddingRequest::new("m")).unwrap_err();
        assert_eq!(
            (e.kind(), e.param()),
            (&ErrorKind::InvalidRequest, Some("input"))
        );
        let e = caps
            .check("p", &EmbeddingRequest::new("m").input("a").input(""))
            .unwrap_err();
        assert_eq!(e.param(), Some("input[1]"));
        let three = EmbeddingRequest::new("m").input("a").input("b").input("c");
        let e = caps.check("p", &three).unwrap_err();
        assert_eq!(
            (e.kind(), e.param()),
            (&ErrorKind::Unsupported, Some("input"))
        );
        let e = caps
            .check("p", &EmbeddingRequest::new("m").input("a").dimensions(8))
            .unwrap_err();
        assert_eq!(e.param(), Some("dimensions"));
        assert!(
            EmbeddingCaps::new(2, true)
                .check("p", &EmbeddingRequest::new("m").input("a").dimensions(8))
                .is_ok()
        );
    }
}
