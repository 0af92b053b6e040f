//! [`ImageModel`] on WaveSpeed's tasks: generation and the edits of the models table.

use gateway_core::http::UrlOrigin;
use gateway_core::{
    Billing, Charge, Error, ImageCaps, ImageEditRequest, ImageFormat, ImageModel, ImageNote,
    ImageRequest, ImageResponse, MediaOutput, PriceUnit, Result, Usage, sniff_image,
};
use serde_json::{Map, Value};

use crate::convert::{self, Output};
use crate::job::Prediction;
use crate::{PROVIDER, WaveSpeedClient};

/// Every image the caller asked for, billed as one `image` each (WaveSpeed's image models are
/// priced per image or per run, whatever the size).
fn billing(n: u32) -> Billing {
    let n = u64::from(n);
    Billing::new(n, vec![Charge::new(PriceUnit::Image, n)])
}

impl WaveSpeedClient {
    /// Runs a task and turns its outputs into images (downloading them when bytes were asked
    /// for and URLs came back).
    async fn images(
        &self,
        model: &str,
        input: Map<String, Value>,
        format: Option<ImageFormat>,
    ) -> Result<ImageResponse> {
        let done = self.run(model, &input).await?;
        // The task has run (and is billed) by now: a failure to deliver it must not run it
        // again, so it is in doubt.
        self.deliver(model, done, format)
            .await
            .map_err(|e| e.with_provider(PROVIDER).in_doubt())
    }

    async fn deliver(
        &self,
        model: &str,
        done: Prediction,
        format: Option<ImageFormat>,
    ) -> Result<ImageResponse> {
        let outputs = convert::outputs(&done.outputs)?;
        if outputs.is_empty() {
            if !done.has_nsfw_contents.is_empty() && done.has_nsfw_contents.iter().all(|f| *f) {
                return Err(Error::new(
                    gateway_core::ErrorKind::ContentFiltered,
                    format!(
                        "task `{}` completed, but every output was flagged as NSFW",
                        done.id
                    ),
                ));
            }
            return Err(Error::decode(format!(
                "task `{}` completed without outputs",
                done.id
            )));
        }
        let want_bytes = format == Some(ImageFormat::B64Json);
        let mut images = Vec::with_capacity(outputs.len());
        for output in outputs {
            images.push(match output {
                Output::Url(url) if want_bytes => {
                    let (data, content_type) = self
                        .downloader
                        .download(&url, UrlOrigin::Provider(PROVIDER))
                        .await?;
                    image_bytes(data.to_vec(), content_type.as_deref())?
                }
                Output::Url(url) => MediaOutput::Url { url, mime: None },
                Output::Bytes(data) => image_bytes(data, None)?,
            });
        }
        let notes = (0..images.len())
            .map(|i| {
                let mut note = ImageNote::default();
                note.content_filtered = done.has_nsfw_contents.get(i).copied().unwrap_or(false);
                note
            })
            .collect();
        let n = images.len() as u32;
        Ok(
            ImageResponse::new(model, images, Usage::units(u64::from(n)))
                .billing(billing(n))
                .notes(notes),
        )
    }
}

/// Image bytes with the MIME type their signature shows (else an `image/*` content type).
fn image_bytes(data: Vec<u8>, content_type: Option<&str>) -> Result<MediaOutput> {
    let declared = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| c.starts_with("image/"));
    let mime = match (sniff_image(&data), declared) {
        (Some(sniffed), _) => sniffed.to_owned(),
        (None, Some(declared)) => declared,
        (None, None) => {
            return Err(Error::decode(
                "an output is not an image the gateway recognises",
            ));
        }
    };
    Ok(MediaOutput::Bytes {
        data: data.into(),
        mime,
    })
}

impl ImageModel for WaveSpeedClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// Generation and editing; up to 4 images per task (flux-dev, flux-schnell; most models
    /// make one: [`ImageModel::check_generation`] knows each); URLs by default.
    fn image_capabilities(&self) -> ImageCaps {
        let mut caps = ImageCaps::default();
        caps.generation = true;
        caps.editing = true;
        caps.max_n = 4;
        caps.url_output = true;
        caps
    }

    fn check_generation(&self, req: &ImageRequest) -> Result<()> {
        convert::check_generation(req).map_err(|e| e.with_provider(PROVIDER))
    }

    fn check_edit(&self, req: &ImageEditRequest) -> Result<()> {
        convert::check_edit(req).map_err(|e| e.with_provider(PROVIDER))
    }

    fn generation_billing(&self, req: &ImageRequest) -> Billing {
        billing(req.count())
    }

    fn edit_billing(&self, req: &ImageEditRequest) -> Billing {
        billing(req.count())
    }

    async fn generate_image(&self, req: ImageRequest) -> Result<ImageResponse> {
        self.check_generation(&req)?;
        let input = convert::generation_input(&req, self.sync_mode)
            .map_err(|e| e.with_provider(PROVIDER))?;
        self.images(&req.model, input, req.response_format).await
    }

    async fn edit_image(&self, req: ImageEditRequest) -> Result<ImageResponse> {
        self.check_edit(&req)?;
        let input =
            convert::edit_input(&req, self.sync_mode).map_err(|e| e.with_provider(PROVIDER))?;
        self.images(&req.model, input, req.response_format).await
    }
}
