//! Images: generation from a prompt, and editing of given images.

use std::future::Future;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{Billing, Charge, Error, MediaInput, MediaOutput, PriceUnit, Result, Usage};

/// How the caller wants the images: OpenAI's `response_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImageFormat {
    /// The bytes ([`MediaOutput::Bytes`]): a provider that answers with URLs downloads them.
    B64Json,
    /// A URL the provider hosts ([`MediaOutput::Url`]); only providers whose
    /// [`ImageCaps::url_output`] is set give one.
    Url,
}

impl ImageFormat {
    /// The name OpenAI's `response_format` uses: `b64_json` or `url`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::B64Json => "b64_json",
            Self::Url => "url",
        }
    }

    /// The format `name` stands for, if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "b64_json" => Some(Self::B64Json),
            "url" => Some(Self::Url),
            _ => None,
        }
    }
}

/// A text-to-image request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct ImageRequest {
    /// The provider's model id.
    pub model: String,
    /// What to draw.
    pub prompt: String,
    /// How many images (default 1).
    pub n: Option<u32>,
    /// The size as `WIDTHxHEIGHT` (`1024x1024`), where the model takes one.
    pub size: Option<String>,
    /// The aspect ratio (`16:9`), for models that take a ratio rather than a size.
    pub aspect_ratio: Option<String>,
    /// The output format (`png`, `jpeg`, `webp`).
    pub output_format: Option<String>,
    /// What the image must not show.
    pub negative_prompt: Option<String>,
    /// Seed for reproducible output.
    pub seed: Option<i64>,
    /// Bytes or URLs; `None` leaves it to the provider (URLs where it gives them).
    pub response_format: Option<ImageFormat>,
    /// Provider-specific options; a provider refuses one it does not know, naming it.
    pub options: Map<String, Value>,
}

impl ImageRequest {
    /// A request for `model` drawing `prompt`.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            prompt: prompt.into(),
            ..Self::default()
        }
    }

    /// The number of images asked for.
    pub fn count(&self) -> u32 {
        self.n.unwrap_or(1)
    }
}

/// What an edit does to its input image(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EditKind {
    /// Change the image as the prompt says (with a mask: only the masked area, inpainting).
    #[default]
    Edit,
    /// Remove the background.
    RemoveBackground,
    /// Put the face of the second image onto the first.
    FaceSwap,
}

/// An image-editing request.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ImageEditRequest {
    /// The provider's model id.
    pub model: String,
    /// What to do, when the caller says; `None` leaves it to the model, most of which do one
    /// kind of edit (a background remover removes backgrounds). A model that cannot do the
    /// kind asked refuses it in [`ImageModel::check_edit`], naming `edit`.
    pub kind: Option<EditKind>,
    /// What to change (empty for edits that need no prompt, such as background removal).
    pub prompt: String,
    /// The image(s) to edit, first the main one.
    pub images: Vec<MediaInput>,
    /// The area to change, for inpainting.
    pub mask: Option<MediaInput>,
    /// How many images (default 1).
    pub n: Option<u32>,
    /// The output size, where the model takes one.
    pub size: Option<String>,
    /// The output format.
    pub output_format: Option<String>,
    /// Seed for reproducible output.
    pub seed: Option<i64>,
    /// Bytes or URLs; `None` leaves it to the provider (URLs where it gives them).
    pub response_format: Option<ImageFormat>,
    /// Provider-specific options; a provider refuses one it does not know, naming it.
    pub options: Map<String, Value>,
}

impl ImageEditRequest {
    /// An edit of `images` (the main one first) on `model`, of the kind the model does.
    pub fn new(model: impl Into<String>, images: Vec<MediaInput>) -> Self {
        Self {
            model: model.into(),
            images,
            ..Self::default()
        }
    }

    /// Asks for a `kind` of edit.
    pub fn kind(mut self, kind: EditKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The number of images asked for.
    pub fn count(&self) -> u32 {
        self.n.unwrap_or(1)
    }
}

impl EditKind {
    /// The name the gateway's API uses: `edit`, `remove_background`, `face_swap`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::RemoveBackground => "remove_background",
            Self::FaceSwap => "face_swap",
        }
    }

    /// The kind `name` stands for, if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "edit" => Some(Self::Edit),
            "remove_background" => Some(Self::RemoveBackground),
            "face_swap" => Some(Self::FaceSwap),
            _ => None,
        }
    }
}

/// What `n` images of `size` are expected to cost, as charges the catalog prices: `n` images,
/// qualified by size where one is given. The default estimate of every image provider.
pub fn per_image_billing(n: u32, size: Option<&str>) -> Billing {
    let mut charge = Charge::new(PriceUnit::Image, u64::from(n));
    if let Some(size) = size {
        charge = charge.size(size);
    }
    Billing::new(u64::from(n), vec![charge])
}

/// Generated or edited images.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ImageResponse {
    /// The model that answered.
    pub model: String,
    /// The images, bytes or provider URLs.
    pub images: Vec<MediaOutput>,
    /// What the call used (images as units, or tokens for token-billed image models).
    pub usage: Usage,
    /// What the call billed: the images (its units) and the charges the catalog prices, or the
    /// cost the provider reported.
    pub billing: Billing,
    /// What the provider said about each image where it says something worth keeping (a
    /// revised prompt, a seed), in the order of `images`; may be shorter than `images`.
    pub notes: Vec<ImageNote>,
}

/// What a provider said about one image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ImageNote {
    /// The prompt the provider actually drew, where it rewrote the caller's.
    pub revised_prompt: Option<String>,
    /// The seed used.
    pub seed: Option<i64>,
    /// The provider flagged the image (blurred, or replaced) by its content filter.
    pub content_filtered: bool,
}

impl ImageResponse {
    /// A response of `model` with `images`, billed as one image each.
    pub fn new(model: impl Into<String>, images: Vec<MediaOutput>, usage: Usage) -> Self {
        let n = images.len() as u64;
        Self {
            model: model.into(),
            images,
            usage,
            billing: Billing::new(n, vec![Charge::new(PriceUnit::Image, n)]),
            notes: Vec::new(),
        }
    }

    /// Replaces what the call billed.
    pub fn billing(mut self, billing: Billing) -> Self {
        self.billing = billing;
        self
    }

    /// Sets what the provider said about each image.
    pub fn notes(mut self, notes: Vec<ImageNote>) -> Self {
        self.notes = notes;
        self
    }
}

/// What an image provider can do, checked before any IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageCaps {
    /// `generate` is implemented.
    pub generation: bool,
    /// `edit` is implemented.
    pub editing: bool,
    /// The most images one call returns.
    pub max_n: u32,
    /// The provider hosts its outputs and can answer with URLs (`response_format: url`).
    pub url_output: bool,
}

impl Default for ImageCaps {
    fn default() -> Self {
        Self {
            generation: true,
            editing: false,
            max_n: 1,
            url_output: false,
        }
    }
}

impl ImageCaps {
    /// `Err(Unsupported)` naming the field if a generation asks for more than these allow.
    pub fn check_generation(&self, provider: &str, req: &ImageRequest) -> Result<()> {
        if !self.generation {
            return Err(Error::unsupported(format!(
                "provider `{provider}` does not generate images"
            )));
        }
        if req.prompt.trim().is_empty() {
            return Err(Error::invalid_request("`prompt` must not be empty").with_param("prompt"));
        }
        self.check_format(provider, req.response_format)?;
        self.check_n(provider, req.n)
    }

    fn check_format(&self, provider: &str, format: Option<ImageFormat>) -> Result<()> {
        if format == Some(ImageFormat::Url) && !self.url_output {
            return Err(Error::invalid_request(format!(
                "provider `{provider}` returns image bytes, not URLs: use `response_format` \
                 `b64_json`"
            ))
            .with_param("response_format"));
        }
        Ok(())
    }

    /// `Err` naming the field if an edit asks for more than these allow, or has no image.
    pub fn check_edit(&self, provider: &str, req: &ImageEditRequest) -> Result<()> {
        if !self.editing {
            return Err(Error::unsupported(format!(
                "provider `{provider}` does not edit images"
            )));
        }
        if req.images.is_empty() {
            return Err(Error::invalid_request("an edit needs an `image`").with_param("image"));
        }
        self.check_format(provider, req.response_format)?;
        self.check_n(provider, req.n)
    }

    fn check_n(&self, provider: &str, n: Option<u32>) -> Result<()> {
        match n {
            Some(0) => Err(Error::invalid_request("`n` must be at least 1").with_param("n")),
            Some(n) if n > self.max_n => Err(Error::unsupported(format!(
                "provider `{provider}` returns at most {} images per request",
                self.max_n
            ))
            .with_param("n")),
            _ => Ok(()),
        }
    }
}

/// A provider of image generation and editing.
///
/// Implementations do IO and mapping only: retries, deadlines and fallbacks belong to the router;
/// a provider whose API works by jobs polls them with [`crate::job::poll_job`].
pub trait ImageModel: Send + Sync {
    /// The provider id.
    fn provider(&self) -> &'static str;

    /// What this provider supports.
    fn image_capabilities(&self) -> ImageCaps {
        ImageCaps::default()
    }

    /// Refuses, before any IO and naming the field, a generation this provider or its model
    /// cannot do (a size the model does not offer, `n` above its limit, an unknown option).
    /// The default checks [`ImageModel::image_capabilities`].
    fn check_generation(&self, req: &ImageRequest) -> Result<()> {
        self.image_capabilities()
            .check_generation(self.provider(), req)
    }

    /// Refuses, before any IO and naming the field, an edit this provider or its model cannot
    /// do (an edit kind it lacks, a missing mask, an image too many). The default checks
    /// [`ImageModel::image_capabilities`].
    fn check_edit(&self, req: &ImageEditRequest) -> Result<()> {
        self.image_capabilities().check_edit(self.provider(), req)
    }

    /// What a generation is expected to bill, for admission before the call: by default one
    /// image per image asked for, at its size ([`per_image_billing`]).
    fn generation_billing(&self, req: &ImageRequest) -> Billing {
        per_image_billing(req.count(), req.size.as_deref())
    }

    /// What an edit is expected to bill, as [`ImageModel::generation_billing`].
    fn edit_billing(&self, req: &ImageEditRequest) -> Billing {
        per_image_billing(req.count(), req.size.as_deref())
    }

    /// Generates images from a prompt.
    fn generate_image(
        &self,
        req: ImageRequest,
    ) -> impl Future<Output = Result<ImageResponse>> + Send;

    /// Edits images. The default refuses: most providers only generate.
    fn edit_image(
        &self,
        req: ImageEditRequest,
    ) -> impl Future<Output = Result<ImageResponse>> + Send {
        let provider = self.provider();
        let _ = req;
        async move {
            Err(Error::unsupported(format!(
                "provider `{provider}` does not edit images"
            )))
        }
    }
}

/// The object-safe twin of [`ImageModel`].
pub trait DynImageModel: Send + Sync {
    /// See [`ImageModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`ImageModel::image_capabilities`].
    fn image_capabilities_dyn(&self) -> ImageCaps;
    /// See [`ImageModel::check_generation`].
    fn check_generation_dyn(&self, req: &ImageRequest) -> Result<()>;
    /// See [`ImageModel::check_edit`].
    fn check_edit_dyn(&self, req: &ImageEditRequest) -> Result<()>;
    /// See [`ImageModel::generation_billing`].
    fn generation_billing_dyn(&self, req: &ImageRequest) -> Billing;
    /// See [`ImageModel::edit_billing`].
    fn edit_billing_dyn(&self, req: &ImageEditRequest) -> Billing;
    /// See [`ImageModel::generate_image`].
    fn generate_image_dyn(&self, req: ImageRequest) -> BoxFuture<'_, Result<ImageResponse>>;
    /// See [`ImageModel::edit_image`].
    fn edit_image_dyn(&self, req: ImageEditRequest) -> BoxFuture<'_, Result<ImageResponse>>;
}

impl<T: ImageModel> DynImageModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn image_capabilities_dyn(&self) -> ImageCaps {
        self.image_capabilities()
    }

    fn check_generation_dyn(&self, req: &ImageRequest) -> Result<()> {
        self.check_generation(req)
    }

    fn check_edit_dyn(&self, req: &ImageEditRequest) -> Result<()> {
        self.check_edit(req)
    }

    fn generation_billing_dyn(&self, req: &ImageRequest) -> Billing {
        self.generation_billing(req)
    }

    fn edit_billing_dyn(&self, req: &ImageEditRequest) -> Billing {
        self.edit_billing(req)
    }

    fn generate_image_dyn(&self, req: ImageRequest) -> BoxFuture<'_, Result<ImageResponse>> {
        Box::pin(self.generate_image(req))
    }

    fn edit_image_dyn(&self, req: ImageEditRequest) -> BoxFuture<'_, Result<ImageResponse>> {
        Box::pin(self.edit_image(req))
    }
}
