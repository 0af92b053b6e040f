//! [`TextModel`] for the router's chat completions: IO only, mapping lives in `convert`.

use gateway_core::http;
use gateway_core::sse::decode_stream;
use gateway_core::{Result, TextCaps, TextModel, TextRequest, TextResponse, TextStream};

use crate::convert::{self, StreamDecoder};
use crate::{HfClient, PROVIDER, wire};

/// The OpenAI-compatible chat route of the router.
const CHAT_COMPLETIONS: &str = "/v1/chat/completions";

impl TextModel for HfClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Streaming, both JSON modes, image parts (passed on for vision models), tools, up to 128
    /// answers (`n`), log probabilities and `reasoning_effort`, all in OpenAI's shape, which the
    /// router passes to the backend provider
    /// (<https://huggingface.co/docs/inference-providers/tasks/chat-completion>). Whether the
    /// backend honours them is up to it: an unsupported combination comes back as a 4xx
    /// (`InvalidRequest`). A stream carries one answer, without log probabilities.
    fn capabilities(&self) -> TextCaps {
        let mut caps = TextCaps::default();
        caps.json_object = true;
        caps.json_schema = true;
        caps.image_input = true;
        caps.tools = true;
        caps.max_n = convert::MAX_N;
        caps.logprobs = true;
        caps.reasoning_effort = true;
        caps
    }

    async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        // The wire request borrows `req`, and is gone once written.
        let body = convert::chat_request(&req, false)?
            .to_json()
            .map_err(|e| http::cannot_encode(PROVIDER, &e))?;
        tracing::debug!(model = %req.model, "Hugging Face chat completion");
        let response = self.post_encoded(CHAT_COMPLETIONS, body).await?;
        let scan = wire::ChatCompletion::scan;
        let completion = http::read_json_scanned(PROVIDER, response, scan).await?;
        convert::text_response(completion, &req.model)
    }

    async fn stream(&self, req: TextRequest) -> Result<TextStream> {
        // The wire request borrows `req`, and is gone once written.
        let body = convert::chat_request(&req, true)?
            .to_json()
            .map_err(|e| http::cannot_encode(PROVIDER, &e))?;
        tracing::debug!(model = %req.model, "Hugging Face chat completion stream");
        let response = self.post_encoded(CHAT_COMPLETIONS, body).await?;
        let decoder = StreamDecoder::new(response.status().as_u16());
        Ok(decode_stream(
            http::byte_stream(PROVIDER, response),
            decoder,
        ))
    }
}
