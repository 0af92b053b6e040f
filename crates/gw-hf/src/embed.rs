//! [`EmbeddingModel`] for [`HfClient`]: feature extraction on `hf-inference`, the IO only.

use gateway_core::http;
use gateway_core::{EmbeddingCaps, EmbeddingModel, EmbeddingRequest, EmbeddingResponse, Result};
use serde_json::Value;

use crate::{HfClient, PROVIDER, convert};

/// The most inputs the gateway sends in one call: the limit of OpenAI's embeddings API, which
/// the gateway's clients are written against. Hugging Face documents none; a backend that
/// takes fewer answers a 4xx.
pub(crate) const MAX_INPUTS: usize = 2048;

impl EmbeddingModel for HfClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Feature extraction cannot choose the number of dimensions.
    fn embedding_capabilities(&self) -> EmbeddingCaps {
        EmbeddingCaps::new(MAX_INPUTS, false)
    }

    async fn embed(&self, req: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let (path, body) = convert::embed_request(&req)?;
        tracing::debug!(model = %req.model, inputs = req.inputs.len(), "Hugging Face feature extraction");
        let response = self.post_json(&path, &body).await?;
        let answer: Value = http::read_json(PROVIDER, response).await?;
        convert::embed_response(answer, req.inputs.len(), &req.model)
    }
}
