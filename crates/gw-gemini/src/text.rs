//! [`TextModel`] for [`GeminiClient`]: the IO only; mapping lives in `convert`.

use gateway_core::http::{byte_stream, read_json};
use gateway_core::sse::decode_stream;
use gateway_core::{Result, TextCaps, TextModel, TextRequest, TextResponse, TextStream};

use crate::convert::{self, StreamDecoder};
use crate::error::classify;
use crate::{GeminiClient, PROVIDER, wire};

impl TextModel for GeminiClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Streaming, both JSON modes, and image and audio parts (sent inline).
    fn capabilities(&self) -> TextCaps {
        let mut caps = TextCaps::default();
        caps.json_object = true;
        caps.json_schema = true;
        caps.image_input = true;
        caps.audio_input = true;
        caps
    }

    async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        let body = convert::text_request(&req)?;
        let path = GeminiClient::endpoint(&req.model, "generateContent")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, "generateContent");
        let response = self.post_json(&path, &body, classify).await?;
        let answer: wire::GenerateContentResponse = read_json(PROVIDER, response).await?;
        convert::text_response(answer, &req.model)
    }

    async fn stream(&self, req: TextRequest) -> Result<TextStream> {
        let body = convert::text_request(&req)?;
        let path = GeminiClient::endpoint(&req.model, "streamGenerateContent?alt=sse")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, "streamGenerateContent");
        let response = self.post_json(&path, &body, classify).await?;
        Ok(decode_stream(
            byte_stream(PROVIDER, response),
            StreamDecoder::new(),
        ))
    }
}
