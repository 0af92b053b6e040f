//! [`ImageModel`] for [`HfClient`]: text-to-image through the router's per-backend routes, the IO
//! only (the Hub's mapping, the call, the downloads); mapping lives in `convert`.
//!
//! - `hf-inference`: `POST /hf-inference/models/{model}`, raw image bytes back.
//! - `fal-ai`: `POST /fal-ai/{fal model id}`, image URLs back (handed out, or downloaded when
//!   bytes are asked for).
//! - `together`: `POST /together/v1/images/generations`, base64 images back.
//!
//! The backend is the model's `:backend` suffix; without one, the first `text-to-image` backend
//! the Hub's mapping lists that this crate speaks. fal and Together name models their own way,
//! read from the Hub (`GET /api/models/{model}?expand[]=inferenceProviderMapping`), as the
//! official clients do (`huggingface_hub` `_providers/_common.py::_fetch_inference_provider_mapping`).

pub(crate) mod convert;
pub(crate) mod wire;

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::try_join_all;
use gateway_core::http::{self, UrlOrigin, reqwest};
use gateway_core::{
    Billing, Error, ErrorKind, ImageCaps, ImageFormat, ImageModel, ImageNote, ImageRequest,
    ImageResponse, MediaOutput, Result,
};
use serde::Serialize;

use self::convert::{Backend, FalOutput};
use crate::client::{MAPPING_CACHE_LIMIT, MAPPING_TTL};
use crate::{HfClient, PROVIDER, error};

impl ImageModel for HfClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Generation, up to 4 images (fal, Together; `hf-inference` draws one), as URLs where the
    /// backend gives them (fal).
    fn image_capabilities(&self) -> ImageCaps {
        let mut caps = ImageCaps::default();
        caps.max_n = convert::MAX_IMAGES;
        caps.url_output = true;
        caps
    }

    fn check_generation(&self, req: &ImageRequest) -> Result<()> {
        self.image_capabilities().check_generation(PROVIDER, req)?;
        let (_, backend) = convert::split_model(&req.model)?;
        convert::check(req, backend)
    }

    fn generation_billing(&self, req: &ImageRequest) -> Billing {
        let backend = convert::split_model(&req.model).ok().and_then(|(_, b)| b);
        convert::billing(req, backend, req.count())
    }

    async fn generate_image(&self, req: ImageRequest) -> Result<ImageResponse> {
        self.check_generation(&req)?;
        let (id, wanted) = convert::split_model(&req.model)?;
        let (backend, provider_id) = match wanted {
            // `hf-inference` serves Hub ids as they are: no mapping to read.
            Some(Backend::HfInference) => (Backend::HfInference, id.to_owned()),
            _ => {
                let mappings = self.provider_mapping(id).await?;
                convert::pick(&mappings, wanted, id)?
            }
        };
        if wanted.is_none() {
            // The backend is known only now: its own limits apply.
            convert::check(&req, Some(backend))?;
        }
        tracing::debug!(provider = PROVIDER, model = %req.model, backend = backend.name(), %provider_id, "Hugging Face text-to-image");
        let result = match backend {
            Backend::HfInference => {
                let body = convert::hf_inference_request(&req)?;
                let response = self
                    .post_image(&format!("/hf-inference/models/{id}"), &body)
                    .await?;
                let (bytes, _) = http::read_bytes(PROVIDER, response).await?;
                convert::hf_inference_response(bytes.to_vec(), &req)
            }
            Backend::FalAi => self.fal(&req, &provider_id).await,
            Backend::Together => {
                let body = convert::together_request(&req, &provider_id)?;
                let response = self
                    .post_image("/together/v1/images/generations", &body)
                    .await?;
                let answer: wire::TogetherResponse = http::read_json(PROVIDER, response).await?;
                convert::together_response(answer, &req)
            }
        };
        result.map(|mut r| {
            if wanted.is_none() {
                // Priced as the backend that served it would be.
                r.billing = convert::billing(&req, Some(backend), r.images.len() as u32);
            }
            r
        })
    }
}

impl HfClient {
    /// POSTs a text-to-image body; a fal content-policy refusal is `ContentFiltered`.
    async fn post_image<T: Serialize + Sync>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response> {
        self.post_json(path, body).await.map_err(|e| {
            if e.body().is_some_and(convert::is_content_policy) {
                let mut filtered = Error::new(ErrorKind::ContentFiltered, e.message().to_owned())
                    .with_provider(PROVIDER);
                if let Some(status) = e.status() {
                    filtered = filtered.with_status(status);
                }
                if let Some(body) = e.body() {
                    filtered = filtered.with_body(body);
                }
                filtered
            } else {
                e
            }
        })
    }

    /// fal: the call, then the URLs handed out or, when bytes are asked for, downloaded.
    async fn fal(&self, req: &ImageRequest, provider_id: &str) -> Result<ImageResponse> {
        let body = convert::fal_request(req)?;
        let response = self
            .post_image(&format!("/fal-ai/{provider_id}"), &body)
            .await?;
        let answer: wire::FalResponse = http::read_json(PROVIDER, response).await?;
        let (outputs, flagged) = convert::fal_outputs(answer)?;
        let download = req.response_format == Some(ImageFormat::B64Json);
        let images = try_join_all(outputs.into_iter().map(|output| async move {
            match output {
                FalOutput::Bytes(image) => Ok(image),
                FalOutput::Url { url, mime } if !download => Ok(MediaOutput::Url { url, mime }),
                FalOutput::Url { url, .. } => {
                    // fal has drawn and billed the image: a failed download must not send the
                    // request round again (`in_doubt`: neither retried nor failed over).
                    let (bytes, _) = self
                        .downloader()
                        .download(&url, UrlOrigin::Provider(PROVIDER))
                        .await
                        .map_err(Error::in_doubt)?;
                    convert::image(bytes.to_vec(), "the image fal linked to")
                        .map_err(Error::in_doubt)
                }
            }
        }))
        .await?;
        let notes: Vec<ImageNote> = flagged
            .iter()
            .map(|&f| {
                let mut note = ImageNote::default();
                note.content_filtered = f;
                note
            })
            .collect();
        let response = convert::respond(req, Some(Backend::FalAi), images);
        Ok(if notes.iter().any(|n| n.content_filtered) {
            response.notes(notes)
        } else {
            response
        })
    }

    /// The Hub's mapping of `model` (cached for [`MAPPING_TTL`]).
    async fn provider_mapping(&self, model: &str) -> Result<Arc<Vec<wire::ProviderMapping>>> {
        if let Some((at, mappings)) = self
            .mappings()
            .lock()
            .ok()
            .and_then(|c| c.get(model).cloned())
            && at.elapsed() < MAPPING_TTL
        {
            return Ok(mappings);
        }
        let path = format!("/api/models/{model}?expand[]=inferenceProviderMapping");
        tracing::debug!(
            provider = PROVIDER,
            model,
            "reading the Hub's inference provider mapping"
        );
        let info: wire::ModelInfo = self.hub().get_json(&path, error::classify).await?;
        let mappings = Arc::new(info.inference_provider_mapping.unwrap_or_default().0);
        if let Ok(mut cache) = self.mappings().lock() {
            if cache.len() >= MAPPING_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(model.to_owned(), (Instant::now(), mappings.clone()));
        }
        Ok(mappings)
    }
}
