//! Images through the attempt loop: generation and editing, planned as images (the plan's
//! `image_units`) and priced from what the provider says the call bills.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use gateway_core::{
    DynImageModel, ImageEditRequest, ImageRequest, ImageResponse, MediaOutput, Modality,
    PriceCatalog, Registry, Result, RouteId, Service, Usage,
};
use tracing::Instrument;

use super::Gateway;
use super::op::{Estimate, Operation, billed, billed_estimate, unpriced_by_usage};
use crate::cache::Kind;
use crate::metering::{CallContext, Metered, Pricer};

/// Image generation (`images.generate`).
pub(crate) struct Generate;

/// Image editing (`images.edit`).
pub(crate) struct Edit;

impl Operation for Generate {
    type Model = dyn DynImageModel;
    type Request = ImageRequest;
    type Output = ImageResponse;

    const SERVICE: Service = Service::Images;
    const PRICER: Pricer = unpriced_by_usage;

    fn name(&self) -> &'static str {
        "images.generate"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynImageModel>> {
        registry.image(provider).cloned()
    }

    fn check(&self, model: &dyn DynImageModel, route: &RouteId, req: &ImageRequest) -> Result<()> {
        model.check_generation_dyn(&generation_for(req, route))
    }

    fn estimate(
        &self,
        model: &dyn DynImageModel,
        req: &ImageRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        let billing = model.generation_billing_dyn(&generation_for(req, route));
        billed_estimate(pricing, route, &billing)
    }

    fn call(
        &self,
        model: Arc<dyn DynImageModel>,
        route: &RouteId,
        req: &ImageRequest,
    ) -> BoxFuture<'static, Result<ImageResponse>> {
        let req = generation_for(req, route);
        Box::pin(async move { model.generate_image_dyn(req).await })
    }
}

impl Operation for Edit {
    type Model = dyn DynImageModel;
    type Request = ImageEditRequest;
    type Output = ImageResponse;

    const SERVICE: Service = Service::Images;
    const PRICER: Pricer = unpriced_by_usage;

    fn name(&self) -> &'static str {
        "images.edit"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynImageModel>> {
        registry.image(provider).cloned()
    }

    fn check(
        &self,
        model: &dyn DynImageModel,
        route: &RouteId,
        req: &ImageEditRequest,
    ) -> Result<()> {
        model.check_edit_dyn(&edit_for(req, route))
    }

    fn estimate(
        &self,
        model: &dyn DynImageModel,
        req: &ImageEditRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        let billing = model.edit_billing_dyn(&edit_for(req, route));
        billed_estimate(pricing, route, &billing)
    }

    fn call(
        &self,
        model: Arc<dyn DynImageModel>,
        route: &RouteId,
        req: &ImageEditRequest,
    ) -> BoxFuture<'static, Result<ImageResponse>> {
        let req = edit_for(req, route);
        Box::pin(async move { model.edit_image_dyn(req).await })
    }
}

/// `req` addressed to `route`'s model id.
fn generation_for(req: &ImageRequest, route: &RouteId) -> ImageRequest {
    let mut req = req.clone();
    req.model = String::from(&*route.model);
    req
}

/// `req` addressed to `route`'s model id.
fn edit_for(req: &ImageEditRequest, route: &RouteId) -> ImageEditRequest {
    let mut req = req.clone();
    req.model = String::from(&*route.model);
    req
}

impl Gateway {
    /// Generates images from `req.prompt`; `req.model` is `<provider>/<model id>` or an alias.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::generate_image_with`].
    pub async fn generate_image(&self, req: ImageRequest) -> Result<ImageResponse> {
        Ok(self
            .generate_image_with(&CallContext::default(), req)
            .await?
            .value)
    }

    /// Generates images for `ctx`'s caller through the same loop as chat: the request checked
    /// against each route's model (size, `n`, format) and the plan (images and their expected
    /// cost) before any call, the chain's routes tried in order within the deadline, and the
    /// call settled after at what the provider billed.
    pub async fn generate_image_with(
        &self,
        ctx: &CallContext,
        req: ImageRequest,
    ) -> Result<Metered<ImageResponse>> {
        let trace = self.trace("generate_content", &req.model, ctx, false);
        async {
            // Only a request that pins its seed asks for the same images again.
            let mut step = match req.seed {
                Some(_) => self.cache_step(Kind::Images, ctx, &req.model, &req, || None)?,
                None => self.cache_step_skipped(),
            };
            let what = (Modality::Image, "images");
            if let Some(hit) = self
                .answer_from_cache(&mut step, ctx, &trace, what, CachedImages::into_response)
                .await?
            {
                return Ok(hit);
            }
            let served = match self.attempt(&Generate, ctx, &trace, &req.model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let mut metered = self.settle_images(served).await;
            metered.cache = step.status;
            if let Some(kept) = CachedImages::of(&metered.value) {
                self.cache_store(step, ctx, &metered.route, metered.cost, &kept)
                    .await;
            }
            Ok(metered)
        }
        .instrument(trace.span())
        .await
    }

    /// Edits images (inpainting, background removal, face swap, a prompted edit); `req.model` is
    /// `<provider>/<model id>` or an alias.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::edit_image_with`].
    pub async fn edit_image(&self, req: ImageEditRequest) -> Result<ImageResponse> {
        Ok(self
            .edit_image_with(&CallContext::default(), req)
            .await?
            .value)
    }

    /// Edits images for `ctx`'s caller, through the same loop and accounting as
    /// [`Gateway::generate_image_with`].
    pub async fn edit_image_with(
        &self,
        ctx: &CallContext,
        req: ImageEditRequest,
    ) -> Result<Metered<ImageResponse>> {
        let trace = self.trace("generate_content", &req.model, ctx, false);
        async {
            let served = match self.attempt(&Edit, ctx, &trace, &req.model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            Ok(self.settle_images(served).await)
        }
        .instrument(trace.span())
        .await
    }

    /// Settles an image call at what its provider billed: its images as units, any tokens it
    /// reported, and the cost of its charges.
    async fn settle_images(
        &self,
        served: super::attempt::Served<ImageResponse>,
    ) -> Metered<ImageResponse> {
        let (usage, cost) = billed(
            &self.pricing,
            &served.meter.route,
            &served.value.billing,
            served.value.usage.tokens,
        );
        served.settle_priced(usage, false, cost).await
    }
}

/// Generated images as the cache keeps them: bytes only (a provider's URLs expire), base64.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedImages {
    model: String,
    /// Each image's MIME type and base64 bytes.
    images: Vec<(String, String)>,
}

impl CachedImages {
    /// `response` to keep, when every image is bytes.
    fn of(response: &ImageResponse) -> Option<Self> {
        use base64::Engine as _;
        let images = response
            .images
            .iter()
            .map(|image| match image {
                MediaOutput::Bytes { data, mime } => Some((
                    mime.clone(),
                    base64::engine::general_purpose::STANDARD.encode(data),
                )),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            model: response.model.clone(),
            images,
        })
    }

    /// The response served again: its images, billing nothing.
    fn into_response(self) -> ImageResponse {
        use base64::Engine as _;
        let images: Vec<MediaOutput> = self
            .images
            .into_iter()
            .filter_map(|(mime, data)| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .ok()?;
                Some(MediaOutput::Bytes {
                    data: data.into(),
                    mime,
                })
            })
            .collect();
        let mut response = ImageResponse::new(self.model, images, Usage::default());
        response.billing = gateway_core::Billing::default();
        response
    }
}
