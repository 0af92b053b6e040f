//! Pure mapping between the gateway's image types and each backend's text-to-image format. No IO.

use gateway_core::{
    Billing, Error, ErrorKind, ImageFormat, ImageRequest, ImageResponse, MediaOutput, Result,
    Usage, decode_base64, per_image_billing, sniff_image,
};
use serde_json::{Map, Value};

use super::wire;
use crate::PROVIDER;

/// The most images one call draws: fal's `num_images` and Together's `n` go up to 4
/// (<https://fal.ai/models/fal-ai/flux/dev/api>, <https://docs.together.ai/reference/post-images-generations>);
/// `hf-inference` draws one.
pub(crate) const MAX_IMAGES: u32 = 4;

/// The task name of the Hub's mapping.
pub(crate) const TEXT_TO_IMAGE: &str = "text-to-image";

/// The size fal's FLUX.1 models draw when none is given: `landscape_4_3`, 1024x768
/// (<https://fal.ai/models/fal-ai/flux/dev/api>, `image_size` "Default value: landscape_4_3").
/// Charges carry it, so a price by size applies to requests without one.
pub(crate) const FAL_DEFAULT_SIZE: &str = "1024x768";

/// A backend behind the router whose text-to-image format this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `hf-inference`: `{"inputs", "parameters"}`, raw image bytes back.
    HfInference,
    /// `fal-ai`: fal's JSON, image URLs back.
    FalAi,
    /// `together`: OpenAI-like JSON, base64 images back.
    Together,
}

impl Backend {
    pub(crate) const ALL: [Backend; 3] = [Self::HfInference, Self::FalAi, Self::Together];

    /// The backend's name in `model:backend` and in the Hub's mapping.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::HfInference => "hf-inference",
            Self::FalAi => "fal-ai",
            Self::Together => "together",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The options passed on to the backend.
    fn options(self) -> &'static [&'static str] {
        match self {
            Self::HfInference => &["num_inference_steps", "guidance_scale"],
            Self::FalAi => &[
                "num_inference_steps",
                "guidance_scale",
                "enable_safety_checker",
            ],
            Self::Together => &["num_inference_steps"],
        }
    }

    fn max_n(self) -> u32 {
        match self {
            Self::HfInference => 1,
            Self::FalAi | Self::Together => MAX_IMAGES,
        }
    }

    /// Whether the backend answers with URLs the caller can be given.
    pub(crate) fn url_output(self) -> bool {
        self == Self::FalAi
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::unsupported(message).with_provider(PROVIDER)
}

fn backend_names() -> String {
    Backend::ALL.map(Backend::name).join(", ")
}

/// The Hub model id and the backend a `model[:backend]` names. The id must be a plain
/// `owner/name` (it goes into URL paths); the backend one this crate speaks.
pub(crate) fn split_model(model: &str) -> Result<(&str, Option<Backend>)> {
    let (id, backend) = match model.rsplit_once(':') {
        Some((id, name)) => (
            id,
            Some(Backend::parse(name).ok_or_else(|| {
                unsupported(format!(
                    "Hugging Face text-to-image runs on {}; backend `{name}` is not supported",
                    backend_names()
                ))
                .with_param("model")
            })?),
        ),
        None => (model, None),
    };
    let valid = id.split('/').count() == 2
        && id.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if !valid {
        return Err(
            invalid(format!("`{model}` is not a valid Hugging Face model id")).with_param("model"),
        );
    }
    Ok((id, backend))
}

/// `WIDTHxHEIGHT` as numbers.
fn size(req: &ImageRequest) -> Result<Option<(u32, u32)>> {
    let Some(size) = req.size.as_deref() else {
        return Ok(None);
    };
    size.trim()
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
        .filter(|(w, h): &(u32, u32)| *w > 0 && *h > 0)
        .map(Some)
        .ok_or_else(|| {
            invalid(format!(
                "`size` must be `WIDTHxHEIGHT` (`1024x768`), not `{size}`"
            ))
            .with_param("size")
        })
}

/// Refuses, naming the field, what `backend` (or, unnamed, every backend) cannot do; no IO.
pub(crate) fn check(req: &ImageRequest, backend: Option<Backend>) -> Result<()> {
    size(req)?;
    let (options, max_n): (Vec<&str>, u32) = match backend {
        Some(b) => (b.options().to_vec(), b.max_n()),
        None => {
            let mut all: Vec<&str> = Backend::ALL
                .iter()
                .flat_map(|b| b.options())
                .copied()
                .collect();
            all.sort_unstable();
            all.dedup();
            (all, MAX_IMAGES)
        }
    };
    let on = backend.map_or_else(|| "Hugging Face".to_owned(), |b| format!("`{}`", b.name()));
    for name in req.options.keys() {
        if !options.contains(&name.as_str()) {
            return Err(unsupported(format!(
                "text-to-image on {on} takes no option `{name}` (it takes: {})",
                options.join(", ")
            ))
            .with_param(format!("options.{name}")));
        }
    }
    if req.count() > max_n {
        return Err(unsupported(format!(
            "text-to-image on {on} draws at most {max_n} image(s) per request"
        ))
        .with_param("n"));
    }
    if req.aspect_ratio.is_some() {
        return Err(unsupported(format!(
            "text-to-image on {on} takes a `size`, not an `aspect_ratio`"
        ))
        .with_param("aspect_ratio"));
    }
    let Some(backend) = backend else {
        return Ok(());
    };
    if req.response_format == Some(ImageFormat::Url) && !backend.url_output() {
        return Err(invalid(format!(
            "`{}` returns image bytes, not URLs: use `response_format` `b64_json`",
            backend.name()
        ))
        .with_param("response_format"));
    }
    if req.negative_prompt.is_some() && backend == Backend::FalAi {
        return Err(unsupported("FLUX on `fal-ai` takes no `negative_prompt`")
            .with_param("negative_prompt"));
    }
    match (backend, req.output_format.as_deref()) {
        (_, None) => {}
        (Backend::FalAi, Some("png" | "jpeg")) => {}
        (Backend::FalAi, Some(other)) => {
            return Err(
                unsupported(format!("`fal-ai` writes `jpeg` or `png`, not `{other}`"))
                    .with_param("output_format"),
            );
        }
        (b, Some(_)) => {
            return Err(
                unsupported(format!("`{}` chooses its own output format", b.name()))
                    .with_param("output_format"),
            );
        }
    }
    Ok(())
}

/// The backend and its model id chosen from the Hub's mapping of `model`: the one `wanted`
/// names, or the first `text-to-image` entry this crate can call (what the official clients do
/// without a named backend: the first entry, in the order the Hub lists them).
pub(crate) fn pick(
    mappings: &[wire::ProviderMapping],
    wanted: Option<Backend>,
    model: &str,
) -> Result<(Backend, String)> {
    let listed = || {
        let names: Vec<String> = mappings
            .iter()
            .map(|m| format!("{} ({})", m.provider, m.task))
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let not_found = |message: String| {
        Error::new(ErrorKind::NotFound, message)
            .with_provider(PROVIDER)
            .with_param("model")
    };
    let found = match wanted {
        Some(b) => {
            let m = mappings
                .iter()
                .find(|m| m.provider == b.name())
                .ok_or_else(|| {
                    not_found(format!(
                        "`{model}` is not served by `{}` (the Hub maps it to: {})",
                        b.name(),
                        listed()
                    ))
                })?;
            if m.task != TEXT_TO_IMAGE {
                return Err(unsupported(format!(
                    "`{model}` on `{}` is a `{}` model, not `{TEXT_TO_IMAGE}`",
                    b.name(),
                    m.task
                ))
                .with_param("model"));
            }
            (b, m)
        }
        None => mappings
            .iter()
            .filter(|m| m.task == TEXT_TO_IMAGE)
            .find_map(|m| Backend::parse(&m.provider).map(|b| (b, m)))
            .ok_or_else(|| {
                not_found(format!(
                    "no backend this gateway speaks ({}) serves `{model}` for {TEXT_TO_IMAGE} \
                     (the Hub maps it to: {})",
                    backend_names(),
                    listed()
                ))
            })?,
    };
    if found.1.status != "live" {
        tracing::warn!(provider = PROVIDER, model, backend = found.0.name(), status = %found.1.status, "the Hub does not list this mapping as live");
    }
    let id = if found.1.provider_id.is_empty() {
        model.to_owned()
    } else {
        found.1.provider_id.clone()
    };
    Ok((found.0, id))
}

/// The size a charge is qualified by: the request's, or fal's default.
fn billed_size(req: &ImageRequest, backend: Option<Backend>) -> Option<String> {
    match (size(req).ok().flatten(), backend) {
        (Some((w, h)), _) => Some(format!("{w}x{h}")),
        (None, Some(Backend::FalAi)) => Some(FAL_DEFAULT_SIZE.to_owned()),
        (None, _) => None,
    }
}

/// What a generation bills: one image per image, qualified by its size (fal's default when none
/// is asked of fal), which is how the backends price (fal by megapixel).
pub(crate) fn billing(req: &ImageRequest, backend: Option<Backend>, images: u32) -> Billing {
    per_image_billing(images, billed_size(req, backend).as_deref())
}

/// `parameters` shared by `hf-inference`: `width`, `height`, `negative_prompt`, `seed` and the
/// options.
pub(crate) fn hf_inference_request(req: &ImageRequest) -> Result<wire::HfInferenceRequest> {
    let mut parameters = Map::new();
    if let Some((w, h)) = size(req)? {
        parameters.insert("width".into(), w.into());
        parameters.insert("height".into(), h.into());
    }
    if let Some(n) = &req.negative_prompt {
        parameters.insert("negative_prompt".into(), n.clone().into());
    }
    if let Some(seed) = req.seed {
        parameters.insert("seed".into(), seed.into());
    }
    parameters.extend(req.options.clone());
    Ok(wire::HfInferenceRequest {
        inputs: req.prompt.clone(),
        parameters,
    })
}

pub(crate) fn fal_request(req: &ImageRequest) -> Result<wire::FalRequest> {
    Ok(wire::FalRequest {
        prompt: req.prompt.clone(),
        image_size: size(req)?.map(|(width, height)| wire::FalImageSize { width, height }),
        num_images: req.n.filter(|n| *n > 1),
        seed: req.seed,
        output_format: req.output_format.clone(),
        options: req.options.clone(),
    })
}

pub(crate) fn together_request(
    req: &ImageRequest,
    provider_id: &str,
) -> Result<wire::TogetherRequest> {
    let size = size(req)?;
    Ok(wire::TogetherRequest {
        model: provider_id.to_owned(),
        prompt: req.prompt.clone(),
        response_format: "base64",
        n: req.n.filter(|n| *n > 1),
        width: size.map(|(w, _)| w),
        height: size.map(|(_, h)| h),
        seed: req.seed,
        negative_prompt: req.negative_prompt.clone(),
        steps: req.options.get("num_inference_steps").cloned(),
    })
}

/// Bytes that must be an image: typed by their signature.
pub(crate) fn image(data: Vec<u8>, what: &str) -> Result<MediaOutput> {
    match sniff_image(&data) {
        Some(mime) => Ok(MediaOutput::Bytes {
            data: data.into(),
            mime: mime.to_owned(),
        }),
        None => Err(Error::decode(format!("{what} is not an image")).with_provider(PROVIDER)),
    }
}

/// The image of an `hf-inference` answer (raw bytes).
pub(crate) fn hf_inference_response(body: Vec<u8>, req: &ImageRequest) -> Result<ImageResponse> {
    let image = image(body, "the hf-inference answer")?;
    Ok(respond(req, Some(Backend::HfInference), vec![image]))
}

/// The images of a Together answer (`data[].b64_json`).
pub(crate) fn together_response(
    resp: wire::TogetherResponse,
    req: &ImageRequest,
) -> Result<ImageResponse> {
    let mut images = Vec::new();
    for item in resp.data {
        let data = item
            .b64_json
            .as_deref()
            .and_then(decode_base64)
            .ok_or_else(|| {
                Error::decode("a Together image has no valid `b64_json`").with_provider(PROVIDER)
            })?;
        images.push(image(data, "a Together image")?);
    }
    if images.is_empty() {
        return Err(Error::decode("Together answered without an image").with_provider(PROVIDER));
    }
    Ok(respond(req, Some(Backend::Together), images))
}

/// What fal answered, per image: a URL to hand out or download, or bytes (a `data:` URL).
pub(crate) enum FalOutput {
    Url { url: String, mime: Option<String> },
    Bytes(MediaOutput),
}

/// The images of a fal answer, and which of them fal's safety checker flagged.
pub(crate) fn fal_outputs(resp: wire::FalResponse) -> Result<(Vec<FalOutput>, Vec<bool>)> {
    let mut out = Vec::new();
    for image_ in resp.images {
        if let Some(parsed) = gateway_core::DataUrl::parse(&image_.url) {
            let data = parsed.map_err(|why| {
                Error::decode(format!("a fal image's data URL: {why}")).with_provider(PROVIDER)
            })?;
            out.push(FalOutput::Bytes(image(data.data.to_vec(), "a fal image")?));
        } else if image_.url.starts_with("https://") || image_.url.starts_with("http://") {
            out.push(FalOutput::Url {
                url: image_.url,
                mime: image_.content_type,
            });
        } else {
            return Err(Error::decode("a fal image has no usable `url`").with_provider(PROVIDER));
        }
    }
    if out.is_empty() {
        return Err(Error::decode("fal answered without an image").with_provider(PROVIDER));
    }
    Ok((out, resp.has_nsfw_concepts))
}

/// The response for `images` drawn for `req`, billed one image each at the request's size.
pub(crate) fn respond(
    req: &ImageRequest,
    backend: Option<Backend>,
    images: Vec<MediaOutput>,
) -> ImageResponse {
    let n = images.len() as u32;
    ImageResponse::new(&req.model, images, Usage::units(u64::from(n)))
        .billing(billing(req, backend, n))
}

/// A fal refusal by its content checker: a 422 whose `detail[].type` is
/// `content_policy_violation` (fal's validation error shape,
/// <https://docs.fal.ai/model-apis/errors>).
pub(crate) fn is_content_policy(body: &str) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    value
        .get("detail")
        .and_then(Value::as_array)
        .is_some_and(|items| {
            items
                .iter()
                .any(|d| d.get("type").and_then(Value::as_str) == Some("content_policy_violation"))
        })
}

#[cfg(test)]
mod tests;
