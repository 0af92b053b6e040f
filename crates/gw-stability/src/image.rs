//! [`ImageModel`] for [`StabilityClient`]: IO here, everything else delegated to `convert`.

use gateway_core::http::{read_bytes, reqwest};
use gateway_core::{
    Billing, Charge, Error, ImageCaps, ImageModel, ImageRequest, ImageResponse, PriceUnit, Result,
    decode_base64,
};

use crate::wire::{FinishReason, ImageJson};
use crate::{PROVIDER, StabilityClient, convert};

impl ImageModel for StabilityClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Generation only, one image per call, bytes only (Stability hosts no outputs).
    fn image_capabilities(&self) -> ImageCaps {
        convert::caps()
    }

    /// Refuses, naming the field, an unknown model (`NotFound`), `n` above 1,
    /// `response_format: url`, a size of no documented aspect ratio, `negative_prompt` on a
    /// turbo model, `webp` on sd3, a seed out of range, and unknown options.
    fn check_generation(&self, req: &ImageRequest) -> Result<()> {
        convert::generate_request(req).map(drop)
    }

    /// One image, whatever its size: Stability bills a flat number of credits per successful
    /// generation and model.
    fn generation_billing(&self, _req: &ImageRequest) -> Billing {
        Billing::new(1, vec![Charge::new(PriceUnit::Image, 1)])
    }

    async fn generate_image(&self, req: ImageRequest) -> Result<ImageResponse> {
        let call = convert::generate_request(&req)?;
        let response = self.post_form(call.path, call.fields).await?;
        let finish = header(&response, "finish-reason").map(|v| FinishReason::from_header(&v));
        let seed =
            header(&response, "seed").and_then(|v| convert::seed(&serde_json::Value::String(v)));
        let (body, content_type) = read_bytes(PROVIDER, response).await?;
        let is_json = match &content_type {
            Some(ct) => ct.to_ascii_lowercase().starts_with("application/json"),
            None => body.first() == Some(&b'{'),
        };
        if !is_json {
            // Raw image bytes (`Accept: image/*` answers), with `finish-reason` and `seed` in
            // the headers: taken too, should Stability answer so.
            return convert::image_response(&req.model, body.to_vec(), finish, seed);
        }
        let answer: ImageJson = serde_json::from_slice(&body).map_err(|e| {
            Error::decode(format!("unexpected response body: {e}"))
                .with_provider(PROVIDER)
                .with_body(&String::from_utf8_lossy(&body))
        })?;
        let data = decode_base64(&answer.image).ok_or_else(|| {
            Error::decode("Stability AI's `image` is not base64").with_provider(PROVIDER)
        })?;
        let seed = answer.seed.as_ref().and_then(convert::seed).or(seed);
        convert::image_response(&req.model, data, answer.finish_reason.or(finish), seed)
    }
}

/// The header `name` as text, if sent.
fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()
        .map(str::to_owned)
}
