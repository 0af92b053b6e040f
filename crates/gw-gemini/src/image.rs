//! [`ImageModel`] for [`GeminiClient`]: Imagen's `:predict` and the image-output models'
//! `generateContent`, the IO only; mapping lives in `convert::image`.

use gateway_core::http::read_json;
use gateway_core::{
    Billing, Error, ErrorKind, ImageCaps, ImageModel, ImageRequest, ImageResponse, Result,
};

use crate::convert::image::{self as convert, GeminiImage, ImageApi, Imagen};
use crate::error::classify;
use crate::{GeminiClient, PROVIDER, wire};

impl ImageModel for GeminiClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Generation only, up to 4 images (Imagen; the image-output models draw one), as bytes.
    fn image_capabilities(&self) -> ImageCaps {
        let mut caps = ImageCaps::default();
        caps.max_n = convert::MAX_IMAGEN_IMAGES;
        caps
    }

    /// The shared checks, then the model's own: its kind (by id), sizes, ratios, `n`, options.
    fn check_generation(&self, req: &ImageRequest) -> Result<()> {
        self.image_capabilities().check_generation(PROVIDER, req)?;
        convert::check_image_request(req)
    }

    fn generation_billing(&self, req: &ImageRequest) -> Billing {
        convert::image_billing(req)
    }

    async fn generate_image(&self, req: ImageRequest) -> Result<ImageResponse> {
        self.check_generation(&req)?;
        match convert::image_api(&req.model) {
            Some(ImageApi::Imagen(imagen)) => self.imagen(req, imagen).await,
            Some(ImageApi::Gemini(family)) => self.gemini_image(req, family).await,
            // `check_generation` refused it.
            None => Err(Error::unsupported("not an image model").with_provider(PROVIDER)),
        }
    }
}

impl GeminiClient {
    async fn imagen(&self, req: ImageRequest, imagen: Imagen) -> Result<ImageResponse> {
        let body = convert::imagen_request(&req, imagen)?;
        let path = GeminiClient::endpoint(&req.model, "predict")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, n = body.parameters.sample_count, "Imagen predict");
        let response = self
            .post_json(&path, &body, classify)
            .await
            .map_err(|e| retired(e, &req.model))?;
        let answer: wire::PredictResponse = read_json(PROVIDER, response).await?;
        convert::imagen_response(answer, &req.model)
    }

    async fn gemini_image(&self, req: ImageRequest, family: GeminiImage) -> Result<ImageResponse> {
        let body = convert::gemini_image_request(&req, family)?;
        let path = GeminiClient::endpoint(&req.model, "generateContent")?;
        tracing::debug!(provider = PROVIDER, model = %req.model, "generateContent (image)");
        let response = self.post_json(&path, &body, classify).await?;
        let answer: wire::GenerateContentResponse = read_json(PROVIDER, response).await?;
        convert::gemini_image_response(answer, &req.model)
    }
}

/// A 404 from `:predict` is almost always an Imagen version Google has shut down
/// (<https://ai.google.dev/gemini-api/docs/deprecations>): say so, keeping Google's words.
fn retired(e: Error, model: &str) -> Error {
    if *e.kind() != ErrorKind::NotFound {
        return e;
    }
    let mut out = Error::new(
        ErrorKind::NotFound,
        format!(
            "the Imagen model `{model}` is not available on the Gemini API (Google retires Imagen \
             versions: https://ai.google.dev/gemini-api/docs/deprecations): {}",
            e.message()
        ),
    )
    .with_provider(PROVIDER);
    if let Some(status) = e.status() {
        out = out.with_status(status);
    }
    if let Some(body) = e.body() {
        out = out.with_body(body);
    }
    out
}
