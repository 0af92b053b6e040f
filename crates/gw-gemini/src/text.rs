//! [`TextModel`] for [`GeminiClient`]: the IO only (the call, and the images callers link to);
//! mapping lives in `convert`.

use futures_util::{StreamExt, TryStreamExt};
use gateway_core::http::{UrlOrigin, byte_stream, cannot_encode, read_json_scanned};
use gateway_core::sse::decode_stream;
use gateway_core::{Result, TextCaps, TextModel, TextRequest, TextResponse, TextStream};

use crate::convert::{self, Downloads, Fetched, StreamDecoder};
use crate::error::classify;
use crate::{GeminiClient, PROVIDER, wire};

/// How many linked images one request downloads at a time.
const DOWNLOADS_AT_ONCE: usize = 4;

impl TextModel for GeminiClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Streaming, both JSON modes, image and audio parts, tools, up to 8 answers (`n`), log
    /// probabilities and `reasoning_effort`.
    fn capabilities(&self) -> TextCaps {
        let mut caps = TextCaps::default();
        caps.json_object = true;
        caps.json_schema = true;
        caps.image_input = true;
        caps.audio_input = true;
        caps.tools = true;
        caps.max_n = convert::MAX_CANDIDATES;
        caps.logprobs = true;
        caps.reasoning_effort = true;
        caps
    }

    async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        let body = encoded(&self.body(&req).await?)?;
        let path = GeminiClient::endpoint(&req.model, "generateContent")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, "generateContent");
        let response = self.post_encoded(&path, body, classify).await?;
        let scan = wire::GenerateContentResponse::scan;
        let answer = read_json_scanned(PROVIDER, response, scan).await?;
        convert::text_response(answer, &req.model)
    }

    async fn stream(&self, req: TextRequest) -> Result<TextStream> {
        let body = encoded(&self.body(&req).await?)?;
        let path = GeminiClient::endpoint(&req.model, "streamGenerateContent?alt=sse")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, "streamGenerateContent");
        let response = self.post_encoded(&path, body, classify).await?;
        Ok(decode_stream(
            byte_stream(PROVIDER, response),
            StreamDecoder::new(),
        ))
    }
}

/// The body of a text request, written by hand.
fn encoded(body: &wire::GenerateContentRequest) -> Result<Vec<u8>> {
    body.to_json().map_err(|e| cannot_encode(PROVIDER, &e))
}

impl GeminiClient {
    /// The request body, with the images `req` links to downloaded and inlined. The request is
    /// checked first, so a request Gemini cannot take downloads nothing.
    async fn body(&self, req: &TextRequest) -> Result<wire::GenerateContentRequest> {
        let wanted = convert::downloads(req);
        if wanted.is_empty() {
            return convert::text_request(req, Downloads::Done(&Fetched::new()));
        }
        convert::text_request(req, Downloads::Pending)?;
        tracing::debug!(
            provider = PROVIDER,
            images = wanted.len(),
            "downloading linked images"
        );
        // Owned URLs: a future borrowing them from `req` is not `Send` for every lifetime.
        let wanted: Vec<(usize, usize, String)> = wanted
            .into_iter()
            .map(|(i, j, url)| (i, j, url.to_owned()))
            .collect();
        let fetched: Fetched = futures_util::stream::iter(wanted)
            .map(|(i, j, url)| self.fetch_image(i, j, url))
            .buffer_unordered(DOWNLOADS_AT_ONCE)
            .try_collect()
            .await?;
        convert::text_request(req, Downloads::Done(&fetched))
    }

    /// Downloads the image `url` of `messages[i].content[j]`; errors name that part.
    async fn fetch_image(
        &self,
        i: usize,
        j: usize,
        url: String,
    ) -> Result<((usize, usize), wire::Blob)> {
        let (body, content_type) = self
            .downloader()
            .download(&url, UrlOrigin::Caller)
            .await
            .map_err(|e| {
                e.with_provider(PROVIDER)
                    .with_param(format!("messages[{i}].content[{j}]"))
            })?;
        let blob = convert::downloaded_image(i, j, &body, content_type.as_deref())?;
        Ok(((i, j), blob))
    }
}
