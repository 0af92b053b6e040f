//! Pure mapping between the gateway's image types and Gemini's two image APIs: Imagen's
//! `:predict` and the image-output models' `generateContent`. No IO.
//!
//! Which API a model id takes is decided by its name, since model ids are configuration (Google
//! retires Imagen versions): an `imagen-` id is Imagen, a `gemini-` id with `-image` in it is an
//! image-output model.

use gateway_core::{
    Billing, Charge, Error, ErrorKind, ImageNote, ImageRequest, ImageResponse, MediaOutput,
    PriceUnit, Result, Usage, decode_base64, sniff_image,
};
use serde_json::Value;

use crate::PROVIDER;
use crate::wire;

/// The most images one Imagen call returns: `sampleCount` 1 to 4
/// (<https://ai.google.dev/gemini-api/docs/imagen>, "numberOfImages").
pub(crate) const MAX_IMAGEN_IMAGES: u32 = 4;

/// The options an Imagen request takes, beyond the gateway's own fields.
const IMAGEN_OPTIONS: [&str; 2] = ["person_generation", "image_size"];

/// The options a Gemini image model takes.
const GEMINI_IMAGE_OPTIONS: [&str; 1] = ["image_size"];

/// `personGeneration` values (SDK `types.py` `PersonGeneration`, lower case on the wire as the
/// docs' REST examples send them: <https://ai.google.dev/gemini-api/docs/imagen>).
const PERSON_GENERATION: [&str; 3] = ["dont_allow", "allow_adult", "allow_all"];

/// Imagen's aspect ratios and their pixel sizes at 1K; Imagen 4 Standard and Ultra also draw
/// them at 2K, twice as large
/// (<https://cloud.google.com/vertex-ai/generative-ai/docs/models/imagen/4-0-generate-001>,
/// "Image ratios and resolutions"; <https://ai.google.dev/gemini-api/docs/imagen>).
const IMAGEN_SIZES: [(&str, u32, u32); 5] = [
    ("1:1", 1024, 1024),
    ("3:4", 896, 1280),
    ("4:3", 1280, 896),
    ("9:16", 768, 1408),
    ("16:9", 1408, 768),
];

/// The aspect ratios of the Gemini image models
/// (<https://ai.google.dev/gemini-api/docs/image-generation>, "Aspect ratios"; SDK `types.py`
/// `ImageConfig.aspect_ratio`).
const GEMINI_RATIOS: [&str; 10] = [
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];

/// Gemini 3.1 Flash Image's extra ratios
/// (<https://cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/3-1-flash-image>).
const GEMINI_31_RATIOS: [&str; 14] = [
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];

/// Gemini 2.5 Flash Image's pixel sizes, one per ratio, each 1290 output tokens
/// (<https://ai.google.dev/gemini-api/docs/image-generation>, "Aspect ratios").
const FLASH_25_SIZES: [(&str, u32, u32); 10] = [
    ("1:1", 1024, 1024),
    ("2:3", 832, 1248),
    ("3:2", 1248, 832),
    ("3:4", 864, 1184),
    ("4:3", 1184, 864),
    ("4:5", 896, 1152),
    ("5:4", 1152, 896),
    ("9:16", 768, 1344),
    ("16:9", 1344, 768),
    ("21:9", 1536, 672),
];

/// Output tokens of one Gemini 2.5 Flash Image (and 2.0 Flash) image: "Output images up to
/// 1024x1024px consume 1290 tokens" (<https://ai.google.dev/gemini-api/docs/pricing>).
const FLASH_25_TOKENS: u64 = 1290;

/// The most output tokens any documented Gemini image takes (Gemini 3.1 Flash Image at 4K,
/// <https://cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/3-1-flash-image>): what an
/// image model not known here is estimated at, so the estimate never falls short.
const MOST_TOKENS_PER_IMAGE: u64 = 2520;

/// Which image API a model id takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageApi {
    /// `:predict`.
    Imagen(Imagen),
    /// `generateContent` with image output.
    Gemini(GeminiImage),
}

/// What an Imagen model offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Imagen {
    /// 2K output (`sampleImageSize`): Imagen 4 Standard and Ultra, not Fast nor Imagen 3
    /// (<https://ai.google.dev/gemini-api/docs/imagen>: "Only supported for the Standard and
    /// Ultra models").
    two_k: bool,
}

/// What a Gemini image model offers, by generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeminiImage {
    /// Gemini 2.0 Flash image generation previews: `["TEXT", "IMAGE"]` only, no `imageConfig`.
    Flash20,
    /// Gemini 2.5 Flash Image: ten ratios at one size, 1290 tokens each.
    Flash25,
    /// Gemini 3 Pro Image: `imageSize` 1K, 2K, 4K; 1120 tokens at 1K and 2K, 2000 at 4K
    /// (<https://cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/3-pro-image>).
    Pro3,
    /// Gemini 3.1 Flash Image: fourteen ratios, `imageSize` 1K, 2K, 4K at 1120, 1680 and 2520
    /// tokens (<https://cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/3-1-flash-image>).
    Flash31,
    /// Another `gemini-*-image*` id: the ten common ratios, no `imageSize`, and the largest
    /// documented token count in estimates.
    Other,
}

impl GeminiImage {
    fn ratios(self) -> &'static [&'static str] {
        match self {
            Self::Flash20 => &[],
            Self::Flash31 => &GEMINI_31_RATIOS,
            _ => &GEMINI_RATIOS,
        }
    }

    fn image_sizes(self) -> &'static [&'static str] {
        match self {
            Self::Pro3 | Self::Flash31 => &["1K", "2K", "4K"],
            _ => &[],
        }
    }

    /// Output tokens of one image of `image_size` (`None`: the model's default, 1K).
    pub(crate) fn tokens_per_image(self, image_size: Option<&str>) -> u64 {
        match (self, image_size) {
            (Self::Flash20 | Self::Flash25, _) => FLASH_25_TOKENS,
            (Self::Pro3, Some("4K")) => 2000,
            (Self::Pro3, _) => 1120,
            (Self::Flash31, Some("2K")) => 1680,
            (Self::Flash31, Some("4K")) => 2520,
            (Self::Flash31, _) => 1120,
            (Self::Other, _) => MOST_TOKENS_PER_IMAGE,
        }
    }
}

/// The image API of `model`, or `None` when the id names neither kind.
pub(crate) fn image_api(model: &str) -> Option<ImageApi> {
    let id = model.strip_prefix("models/").unwrap_or(model);
    if let Some(rest) = id.strip_prefix("imagen-") {
        let two_k = rest.starts_with('4') && !rest.contains("fast");
        return Some(ImageApi::Imagen(Imagen { two_k }));
    }
    let rest = id.strip_prefix("gemini-")?;
    if !rest.contains("-image") {
        return None;
    }
    let family = if rest.starts_with("2.0-") {
        GeminiImage::Flash20
    } else if rest.starts_with("2.5-flash-image") {
        GeminiImage::Flash25
    } else if rest.starts_with("3-pro-image") {
        GeminiImage::Pro3
    } else if rest.starts_with("3.1-flash-image") {
        GeminiImage::Flash31
    } else {
        GeminiImage::Other
    };
    Some(ImageApi::Gemini(family))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message).with_provider(PROVIDER)
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::unsupported(message).with_provider(PROVIDER)
}

/// The API of `req.model`, or why it has none.
fn api_of(req: &ImageRequest) -> Result<ImageApi> {
    image_api(&req.model).ok_or_else(|| {
        unsupported(format!(
            "`{}` is not a Gemini image model: Imagen ids start with `imagen-`, image-output \
             models are `gemini-...-image...` ids",
            req.model
        ))
        .with_param("model")
    })
}

/// A string option of `req`, refused (naming it) when it is not a string.
fn string_option<'a>(req: &'a ImageRequest, name: &str) -> Result<Option<&'a str>> {
    match req.options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(invalid(format!("`options.{name}` must be a string"))
            .with_param(format!("options.{name}"))),
    }
}

fn check_options(req: &ImageRequest, known: &[&str]) -> Result<()> {
    for name in req.options.keys() {
        if !known.contains(&name.as_str()) {
            return Err(unsupported(format!(
                "`{}` takes no option `{name}` (it takes: {})",
                req.model,
                known.join(", ")
            ))
            .with_param(format!("options.{name}")));
        }
    }
    Ok(())
}

/// The aspect ratio (exact, `W:H` in lowest terms) of a `WIDTHxHEIGHT` size, with its longer side.
fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.trim().split_once(['x', 'X'])?;
    let (w, h): (u32, u32) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The size class (`1K`, `2K`, `4K`) of an image whose longer side is `side` pixels: the
/// documented sizes of a class have their longer side between 1 and 1.5 times its nominal size
/// (1K: 1024 to 1584), so anything up to 1.6 times counts as that class.
fn size_class(side: u32) -> &'static str {
    match side {
        0..=1638 => "1K",
        1639..=3276 => "2K",
        _ => "4K",
    }
}

/// What a `size` asks of a model with `table` (its documented sizes at 1K, which `scale`s to the
/// other classes it offers) and `ratios`: `(aspect ratio, size class)`. A documented size maps to
/// its own ratio; any other must have one of `ratios` exactly.
fn size_to_ratio(
    size: &str,
    table: &[(&'static str, u32, u32)],
    ratios: &[&'static str],
    classes: &[&str],
) -> Option<(&'static str, &'static str)> {
    let (w, h) = parse_size(size)?;
    for class in classes {
        let scale = match *class {
            "2K" => 2,
            "4K" => 4,
            _ => 1,
        };
        if let Some((ratio, ..)) = table
            .iter()
            .find(|(_, tw, th)| tw * scale == w && th * scale == h)
        {
            return Some((ratio, class_name(class)));
        }
    }
    let g = gcd(w, h);
    let exact = format!("{}:{}", w / g, h / g);
    let ratio = ratios.iter().find(|r| **r == exact)?;
    let class = size_class(w.max(h));
    classes.contains(&class).then_some((ratio, class))
}

fn class_name(class: &str) -> &'static str {
    match class {
        "2K" => "2K",
        "4K" => "4K",
        _ => "1K",
    }
}

/// The ratio and size class of a request: from `size`, `aspect_ratio` (which must agree with it)
/// and `options.image_size`. `classes` lists the size classes the model draws (the first is its
/// default).
fn shape(
    req: &ImageRequest,
    table: &[(&'static str, u32, u32)],
    ratios: &[&'static str],
    classes: &[&'static str],
) -> Result<(Option<String>, Option<&'static str>)> {
    let asked_class = string_option(req, "image_size")?;
    let asked_class = match asked_class {
        None => None,
        Some(c) => Some(*classes.iter().find(|k| **k == c).ok_or_else(|| {
            unsupported(format!(
                "`{}` offers `image_size` {}",
                req.model,
                if classes.len() > 1 {
                    classes.join(", ")
                } else {
                    format!("{} only (none to choose)", classes[0])
                }
            ))
            .with_param("options.image_size")
        })?),
    };
    let from_size = match req.size.as_deref() {
        None => None,
        Some(size) => Some(size_to_ratio(size, table, ratios, classes).ok_or_else(|| {
            let mut offered: Vec<String> = table
                .iter()
                .map(|(r, w, h)| format!("{w}x{h} ({r})"))
                .collect();
            if offered.is_empty() {
                offered = ratios.iter().map(|r| r.to_string()).collect();
            }
            unsupported(format!(
                "`{}` does not draw `{size}`: it draws the aspect ratios {} (sizes {}{})",
                req.model,
                ratios.join(", "),
                offered.join(", "),
                if classes.len() > 1 {
                    format!(", also as {}", classes[1..].join(", "))
                } else {
                    String::new()
                }
            ))
            .with_param("size")
        })?),
    };
    let ratio = match (req.aspect_ratio.as_deref(), from_size) {
        (Some(r), Some((from, _))) if r.trim() != from => {
            return Err(invalid(format!(
                "`size` {} is {from}, not the `aspect_ratio` {r}",
                req.size.as_deref().unwrap_or_default()
            ))
            .with_param("aspect_ratio"));
        }
        (Some(r), _) => Some(*ratios.iter().find(|x| **x == r.trim()).ok_or_else(|| {
            unsupported(format!(
                "`{}` draws the aspect ratios {}",
                req.model,
                ratios.join(", ")
            ))
            .with_param("aspect_ratio")
        })?),
        (None, from) => from.map(|(r, _)| r),
    };
    let class = match (asked_class, from_size.map(|(_, c)| c)) {
        (Some(a), Some(s)) if a != s => {
            return Err(invalid(format!(
                "`size` {} is a {s} size, not the `image_size` {a}",
                req.size.as_deref().unwrap_or_default()
            ))
            .with_param("options.image_size"));
        }
        (a, s) => a.or(s),
    };
    // The model's default class is not sent: a model that has no `imageSize` would refuse it.
    let class = class.filter(|c| classes.len() > 1 && Some(c) != classes.first());
    Ok((ratio.map(str::to_owned), class))
}

/// Refuses, naming the field, what the model of `req` cannot draw; no IO.
pub(crate) fn check_image_request(req: &ImageRequest) -> Result<()> {
    match api_of(req)? {
        ImageApi::Imagen(imagen) => imagen_request(req, imagen).map(drop),
        ImageApi::Gemini(family) => gemini_image_request(req, family).map(drop),
    }
}

/// The `:predict` body of an Imagen request.
pub(crate) fn imagen_request(req: &ImageRequest, imagen: Imagen) -> Result<wire::PredictRequest> {
    check_options(req, &IMAGEN_OPTIONS)?;
    let n = req.count();
    if n == 0 || n > MAX_IMAGEN_IMAGES {
        return Err(unsupported(format!(
            "Imagen draws 1 to {MAX_IMAGEN_IMAGES} images per request"
        ))
        .with_param("n"));
    }
    // The Developer API refuses these; the official SDK rejects them before sending
    // (`_GenerateImagesConfig_to_mldev`: "only supported in ... Agent Platform mode").
    if req.negative_prompt.is_some() {
        return Err(
            unsupported("Imagen on the Gemini API takes no `negative_prompt`")
                .with_param("negative_prompt"),
        );
    }
    if req.seed.is_some() {
        return Err(unsupported("Imagen on the Gemini API takes no `seed`").with_param("seed"));
    }
    let ratios: Vec<&'static str> = IMAGEN_SIZES.iter().map(|(r, ..)| *r).collect();
    let classes: &[&'static str] = if imagen.two_k { &["1K", "2K"] } else { &["1K"] };
    let (aspect_ratio, class) = shape(req, &IMAGEN_SIZES, &ratios, classes)?;
    let person_generation = match string_option(req, "person_generation")? {
        None => None,
        Some(p) if PERSON_GENERATION.contains(&p) => Some(p.to_owned()),
        Some(p) => {
            return Err(invalid(format!(
                "`options.person_generation` `{p}` is not one of {}",
                PERSON_GENERATION.join(", ")
            ))
            .with_param("options.person_generation"));
        }
    };
    let output_options = match req.output_format.as_deref() {
        None => None,
        Some(f) => Some(wire::OutputOptions {
            mime_type: match f.trim().to_ascii_lowercase().as_str() {
                "png" => "image/png".to_owned(),
                "jpeg" | "jpg" => "image/jpeg".to_owned(),
                other => {
                    return Err(unsupported(format!(
                        "Imagen writes `png` or `jpeg`, not `{other}`"
                    ))
                    .with_param("output_format"));
                }
            },
        }),
    };
    Ok(wire::PredictRequest {
        instances: vec![wire::PredictInstance {
            prompt: req.prompt.clone(),
        }],
        parameters: wire::PredictParameters {
            sample_count: n,
            aspect_ratio,
            person_generation,
            sample_image_size: class.map(str::to_owned),
            include_rai_reason: true,
            output_options,
        },
    })
}

/// The `generateContent` body of a request to a Gemini image model.
pub(crate) fn gemini_image_request(
    req: &ImageRequest,
    family: GeminiImage,
) -> Result<wire::ImageGenerateContentRequest> {
    check_options(req, &GEMINI_IMAGE_OPTIONS)?;
    if req.count() != 1 {
        return Err(unsupported(format!(
            "`{}` draws one image per request (Gemini image models take no `candidateCount`)",
            req.model
        ))
        .with_param("n"));
    }
    if req.negative_prompt.is_some() {
        return Err(unsupported(format!(
            "`{}` takes no `negative_prompt`: say what to leave out in the prompt",
            req.model
        ))
        .with_param("negative_prompt"));
    }
    // "This field is not supported in Gemini API" (SDK `types.py` `ImageConfig.output_mime_type`).
    if req.output_format.is_some() {
        return Err(unsupported(format!(
            "`{}` chooses its own output format on the Gemini API",
            req.model
        ))
        .with_param("output_format"));
    }
    let table: &[(&'static str, u32, u32)] = match family {
        GeminiImage::Flash25 => &FLASH_25_SIZES,
        _ => &[],
    };
    let image_config = if family == GeminiImage::Flash20 {
        if req.size.is_some()
            || req.aspect_ratio.is_some()
            || req.options.contains_key("image_size")
        {
            let param = if req.size.is_some() {
                "size"
            } else if req.aspect_ratio.is_some() {
                "aspect_ratio"
            } else {
                "options.image_size"
            };
            return Err(unsupported(format!(
                "`{}` takes no size or aspect ratio (no `imageConfig`)",
                req.model
            ))
            .with_param(param));
        }
        None
    } else {
        let mut classes = vec!["1K"];
        classes.extend(family.image_sizes().iter().filter(|c| **c != "1K"));
        let (aspect_ratio, class) = shape(req, table, family.ratios(), &classes)?;
        let config = wire::ImageConfig {
            aspect_ratio,
            image_size: class.map(str::to_owned),
        };
        (config != wire::ImageConfig::default()).then_some(config)
    };
    // The 2.0 preview refuses image-only output; later models take it, and asking for images
    // alone keeps text (unpriced for some models) out of the answer.
    let response_modalities = if family == GeminiImage::Flash20 {
        vec!["TEXT", "IMAGE"]
    } else {
        vec!["IMAGE"]
    };
    Ok(wire::ImageGenerateContentRequest {
        contents: vec![wire::Content {
            role: Some(wire::Role::User),
            parts: vec![wire::Part {
                text: Some(req.prompt.clone()),
                ..wire::Part::default()
            }],
        }],
        generation_config: wire::ImageGenerationConfig {
            response_modalities,
            image_config,
            seed: req.seed,
        },
    })
}

/// The image size class a Gemini image request asks for (`None`: the model's default).
fn asked_class(body: &wire::ImageGenerateContentRequest) -> Option<&str> {
    body.generation_config
        .image_config
        .as_ref()
        .and_then(|c| c.image_size.as_deref())
}

/// What a request is expected to bill before the call: for Imagen, one image per image asked
/// for; for a Gemini image model, the documented output tokens of its images at the image rate,
/// and the prompt's bytes as input tokens (a token is at least a byte, so never fewer).
pub(crate) fn image_billing(req: &ImageRequest) -> Billing {
    let n = req.count();
    match image_api(&req.model) {
        Some(ImageApi::Gemini(family)) => {
            let class = gemini_image_request(req, family)
                .ok()
                .and_then(|body| asked_class(&body).map(str::to_owned));
            let image_tokens = family.tokens_per_image(class.as_deref()) * u64::from(n);
            Billing::new(
                u64::from(n),
                vec![
                    Charge::new(PriceUnit::InputToken, req.prompt.len() as u64),
                    Charge::new(PriceUnit::OutputToken, image_tokens).modality("image"),
                ],
            )
        }
        _ => gateway_core::per_image_billing(n, None),
    }
}

/// The images of an Imagen answer. Every image filtered (no prediction with bytes) is
/// `ContentFiltered`, with Google's reasons when it gave them.
pub(crate) fn imagen_response(resp: wire::PredictResponse, model: &str) -> Result<ImageResponse> {
    let mut images = Vec::new();
    let mut reasons = Vec::new();
    for p in resp.predictions {
        match p.bytes_base64_encoded {
            Some(data) => images.push(image_bytes(&data, p.mime_type.as_deref())?),
            None => reasons.extend(p.rai_filtered_reason),
        }
    }
    if images.is_empty() {
        let why = if reasons.is_empty() {
            "no reason given".to_owned()
        } else {
            reasons.join("; ")
        };
        return Err(Error::new(
            ErrorKind::ContentFiltered,
            format!("Imagen's safety filters withheld every image ({why})"),
        )
        .with_provider(PROVIDER));
    }
    let n = images.len() as u64;
    Ok(ImageResponse::new(model, images, Usage::units(n)))
}

/// Bytes from base64, typed by their signature (the declared type when they have none known).
fn image_bytes(data: &str, declared: Option<&str>) -> Result<MediaOutput> {
    let bytes = decode_base64(data).ok_or_else(|| {
        Error::decode("an image in Gemini's answer is not valid base64").with_provider(PROVIDER)
    })?;
    let mime = match sniff_image(&bytes) {
        Some(sniffed) => sniffed.to_owned(),
        None => match declared {
            Some(d) if d.starts_with("image/") => d.to_owned(),
            _ => {
                return Err(
                    Error::decode("Gemini answered with bytes that are not an image")
                        .with_provider(PROVIDER),
                );
            }
        },
    };
    Ok(MediaOutput::Bytes {
        data: bytes.into(),
        mime,
    })
}

/// Whether a finish reason is a safety or policy block.
fn blocked(reason: Option<wire::FinishReason>) -> bool {
    use wire::FinishReason as F;
    matches!(
        reason,
        Some(
            F::Safety
                | F::ImageSafety
                | F::ProhibitedContent
                | F::ImageProhibitedContent
                | F::Blocklist
                | F::Spii
                | F::Recitation
                | F::ImageRecitation
        )
    )
}

/// The images of a Gemini image model's answer (`inlineData` parts of every candidate), billed
/// by its `usageMetadata`: prompt tokens as input, image tokens at the image output rate, and
/// any other output (text, thinking) at the text rate. A blocked prompt, or a candidate blocked
/// for safety without an image, is `ContentFiltered`.
pub(crate) fn gemini_image_response(
    resp: wire::GenerateContentResponse,
    model: &str,
) -> Result<ImageResponse> {
    if let Some(reason) = resp.prompt_feedback.as_ref().and_then(|f| f.block_reason) {
        return Err(Error::new(
            ErrorKind::ContentFiltered,
            format!("Gemini blocked the prompt ({reason:?})"),
        )
        .with_provider(PROVIDER));
    }
    let mut images = Vec::new();
    let mut texts = Vec::new();
    let mut reasons = Vec::new();
    for candidate in resp.candidates.unwrap_or_default() {
        reasons.push(candidate.finish_reason);
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if part.thought == Some(true) {
                continue;
            }
            if let Some(blob) = part.inline_data {
                images.push(image_bytes(&blob.data, Some(&blob.mime_type))?);
            } else if let Some(text) = part.text {
                texts.push(text);
            }
        }
    }
    if images.is_empty() {
        let said = texts.join(" ");
        let said = said.trim();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        if let Some(reason) = reasons.iter().copied().find(|r| blocked(*r)) {
            return Err(Error::new(
                ErrorKind::ContentFiltered,
                format!(
                    "Gemini withheld the image ({:?}){said}",
                    reason.unwrap_or(wire::FinishReason::Safety)
                ),
            )
            .with_provider(PROVIDER));
        }
        return Err(Error::decode(format!(
            "Gemini answered without an image (finish reason {:?}){said}",
            reasons.first().copied().flatten()
        ))
        .with_provider(PROVIDER));
    }
    let meta = resp.usage_metadata.unwrap_or_default();
    let tokens = super::usage(meta.clone());
    let image_tokens = meta
        .candidates_tokens_details
        .as_deref()
        .map(|details| {
            details
                .iter()
                .filter(|d| d.modality.as_deref() == Some("IMAGE"))
                .filter_map(|d| d.token_count)
                .sum::<u64>()
        })
        // Without a split, the visible output of an image-only answer is its images.
        .unwrap_or_else(|| meta.candidates_token_count.unwrap_or(0))
        .min(tokens.output_tokens);
    let text_tokens = tokens.output_tokens - image_tokens;
    let mut charges = vec![
        Charge::new(PriceUnit::InputToken, tokens.input_tokens),
        Charge::new(PriceUnit::OutputToken, image_tokens).modality("image"),
    ];
    if text_tokens > 0 {
        charges.push(Charge::new(PriceUnit::OutputToken, text_tokens).modality("text"));
    }
    let n = images.len() as u64;
    let usage = Usage { tokens, units: n };
    Ok(ImageResponse::new(model, images, usage)
        .billing(Billing::new(n, charges))
        .notes(Vec::<ImageNote>::new()))
}

#[cfg(test)]
mod tests;
