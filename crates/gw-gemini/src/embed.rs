//! [`EmbeddingModel`] for [`GeminiClient`]: `batchEmbedContents`, the IO only.

use gateway_core::http::read_json;
use gateway_core::{EmbeddingCaps, EmbeddingModel, EmbeddingRequest, EmbeddingResponse, Result};

use crate::convert;
use crate::error::classify;
use crate::{GeminiClient, PROVIDER, wire};

/// The most requests one `batchEmbedContents` call takes. Google does not document it; the API
/// answers more with 400 `at most 100 requests can be in one batch`, as quoted in
/// <https://github.com/elastic/elasticsearch/blob/855658d51464deaaefbc9657e4058c330c93f704/x-pack/plugin/inference/src/main/java/org/elasticsearch/xpack/inference/services/googleaistudio/GoogleAiStudioServiceFields.java>
/// and <https://github.com/vercel/ai/issues/16101>.
pub(crate) const MAX_BATCH: usize = 100;

impl EmbeddingModel for GeminiClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Up to 100 inputs per call; `dimensions` as `outputDimensionality`.
    fn embedding_capabilities(&self) -> EmbeddingCaps {
        EmbeddingCaps::new(MAX_BATCH, true)
    }

    async fn embed(&self, req: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let body = convert::embed_request(&req)?;
        let path = GeminiClient::endpoint(&req.model, "batchEmbedContents")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, inputs = req.inputs.len(), "batchEmbedContents");
        let response = self.post_json(&path, &body, classify).await?;
        let answer: wire::BatchEmbedContentsResponse = read_json(PROVIDER, response).await?;
        convert::embed_response(answer, req.inputs.len(), &req.model)
    }
}
