//! Images: generation from a prompt, and editing of given images.

use std::future::Future;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{Error, MediaInput, MediaOutput, Result, Usage};

/// A text-to-image request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// What to do.
    pub kind: EditKind,
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
    /// Provider-specific options; a provider refuses one it does not know, naming it.
    pub options: Map<String, Value>,
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
}

impl ImageResponse {
    /// A response of `model` with `images` and `usage`.
    pub fn new(model: impl Into<String>, images: Vec<MediaOutput>, usage: Usage) -> Self {
        Self {
            model: model.into(),
            images,
            usage,
        }
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
}

impl Default for ImageCaps {
    fn default() -> Self {
        Self {
            generation: true,
            editing: false,
            max_n: 1,
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
        self.check_n(provider, req.n)
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

    fn generate_image_dyn(&self, req: ImageRequest) -> BoxFuture<'_, Result<ImageResponse>> {
        Box::pin(self.generate_image(req))
    }

    fn edit_image_dyn(&self, req: ImageEditRequest) -> BoxFuture<'_, Result<ImageResponse>> {
        Box::pin(self.edit_image(req))
    }
}
