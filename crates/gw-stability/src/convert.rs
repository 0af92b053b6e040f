//! Pure mapping between the core image types and Stability AI's form fields and answers: no IO.
//!
//! Every refusal happens in [`generate_request`], which `check_generation` runs before any IO,
//! so the router can fall back on what Stability cannot do (`Unsupported`) and stop on what no
//! provider could (`InvalidRequest`). Field names, limits and enums are those of the API
//! reference's Generate operations (<https://platform.stability.ai/docs/api-reference>).

use gateway_core::{
    Error, ErrorKind, ImageCaps, ImageNote, ImageRequest, ImageResponse, MediaOutput, Result,
    Usage, sniff_image,
};
use serde_json::Value;

use crate::PROVIDER;
use crate::wire::FinishReason;

/// The three generate endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `generate/ultra`: Stable Image Ultra.
    Ultra,
    /// `generate/core`: Stable Image Core.
    Core,
    /// `generate/sd3`: the Stable Diffusion 3.x models, chosen by the `model` field.
    Sd3,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Self::Ultra => "/v2beta/stable-image/generate/ultra",
            Self::Core => "/v2beta/stable-image/generate/core",
            Self::Sd3 => "/v2beta/stable-image/generate/sd3",
        }
    }

    /// `output_format` values: `jpeg png webp` on ultra and core, `jpeg png` on sd3.
    fn formats(self) -> &'static [&'static str] {
        match self {
            Self::Ultra | Self::Core => &["png", "jpeg", "webp"],
            Self::Sd3 => &["png", "jpeg"],
        }
    }

    /// The documented fields `options` may set on this endpoint: `style_preset` everywhere,
    /// `cfg_scale` on sd3 only (text-to-image; `image`, `strength` and `mode` are
    /// image-to-image, which this crate does not offer).
    fn options(self) -> &'static [&'static str] {
        match self {
            Self::Ultra | Self::Core => &["style_preset"],
            Self::Sd3 => &["style_preset", "cfg_scale"],
        }
    }
}

/// A gateway model id: its endpoint, the `model` field sent to sd3, and whether it is a turbo
/// model, which takes no `negative_prompt` ("This parameter does not work with
/// sd3-large-turbo", the sd3 reference).
struct Model {
    id: &'static str,
    endpoint: Endpoint,
    turbo: bool,
}

/// Every model this crate serves, by gateway id: `ultra`, `core`, and the sd3 `model` values,
/// the legacy `sd3-*` ids included (Stability re-routes them to their `sd3.5-*` equivalent at
/// the same price since 2025-04-17).
const MODELS: [Model; 9] = [
    model("ultra", Endpoint::Ultra, false),
    model("core", Endpoint::Core, false),
    model("sd3.5-large", Endpoint::Sd3, false),
    model("sd3.5-large-turbo", Endpoint::Sd3, true),
    model("sd3.5-medium", Endpoint::Sd3, false),
    model("sd3.5-flash", Endpoint::Sd3, false),
    model("sd3-large", Endpoint::Sd3, false),
    model("sd3-large-turbo", Endpoint::Sd3, true),
    model("sd3-medium", Endpoint::Sd3, false),
];

const fn model(id: &'static str, endpoint: Endpoint, turbo: bool) -> Model {
    Model {
        id,
        endpoint,
        turbo,
    }
}

/// The model ids, in the order of [`MODELS`].
pub(crate) const MODEL_IDS: [&str; 9] = {
    let mut ids = [""; 9];
    let mut i = 0;
    while i < MODELS.len() {
        ids[i] = MODELS[i].id;
        i += 1;
    }
    ids
};

/// The documented `aspect_ratio` values.
const ASPECT_RATIOS: [&str; 9] = [
    "16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21",
];

/// The documented `style_preset` values.
const STYLE_PRESETS: [&str; 17] = [
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
];

/// Request fields the core request already has, and the field to use instead.
const CORE_FIELDS: [(&str, &str); 7] = [
    ("prompt", "prompt"),
    ("model", "model"),
    ("aspect_ratio", "aspect_ratio"),
    ("negative_prompt", "negative_prompt"),
    ("seed", "seed"),
    ("output_format", "output_format"),
    ("n", "n"),
];

/// The longest `prompt` and `negative_prompt` ("[ 1 .. 10000 ] characters").
const MAX_PROMPT_CHARS: usize = 10_000;

/// The largest `seed` ("number [ 0 .. 4294967294 ]"; 0 asks for a random one).
const MAX_SEED: i64 = 4_294_967_294;

/// What a Stability call can do, whatever the model: one image per call, bytes only.
pub(crate) fn caps() -> ImageCaps {
    let mut caps = ImageCaps::default();
    caps.generation = true;
    caps.editing = false;
    caps.max_n = 1;
    caps.url_output = false;
    caps
}

/// One generate call: the endpoint's path and the form's text fields, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Generate {
    /// `/v2beta/stable-image/generate/{ultra,core,sd3}`.
    pub(crate) path: &'static str,
    /// The multipart form's fields (`prompt`, `model`, `aspect_ratio`, ...).
    pub(crate) fields: Vec<(&'static str, String)>,
}

/// The call for `req`, or why Stability cannot make it.
///
/// - `model` must be one of [`MODEL_IDS`] (`NotFound` otherwise).
/// - `n` above 1 (`Unsupported`: Stability makes one image per call), `response_format: url`
///   (`InvalidRequest`: Stability returns bytes only) and an empty `prompt` are refused by the
///   shared [`ImageCaps`] check; a prompt over 10 000 characters is `InvalidRequest`.
/// - `size` (`WIDTHxHEIGHT`) is sent as the `aspect_ratio` it is exactly (`1024x1024` is
///   `1:1`, `1920x1080` is `16:9`); a size of no documented ratio is `Unsupported`, naming
///   `size`, and one that disagrees with `aspect_ratio` is `InvalidRequest`.
/// - `aspect_ratio` must be one of `16:9 1:1 21:9 2:3 3:2 4:5 5:4 9:16 9:21`.
/// - `negative_prompt` is `Unsupported` on the turbo models; `seed` must be 0..=4294967294;
///   `output_format` must be `png`, `jpeg` or (not on sd3) `webp`.
/// - `options` may set `style_preset` (one of the documented presets) and, on sd3, `cfg_scale`
///   (1 to 10); any other option, or a core field set as an option, is `InvalidRequest`.
pub(crate) fn generate_request(req: &ImageRequest) -> Result<Generate> {
    let Some(model) = MODELS.iter().find(|m| m.id == req.model) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "Stability AI has no image model `{}`; it has: {}",
                req.model,
                MODEL_IDS.join(", ")
            ),
        )
        .with_provider(PROVIDER)
        .with_param("model"));
    };
    caps()
        .check_generation(PROVIDER, req)
        .map_err(|e| e.with_provider(PROVIDER))?;
    if req.prompt.chars().count() > MAX_PROMPT_CHARS {
        return Err(invalid(
            format!("`prompt` is longer than Stability's {MAX_PROMPT_CHARS} characters"),
            "prompt",
        ));
    }
    let mut fields = vec![("prompt", req.prompt.clone())];
    if model.endpoint == Endpoint::Sd3 {
        fields.push(("model", model.id.to_owned()));
    }
    if let Some(ratio) = aspect_ratio(req)? {
        fields.push(("aspect_ratio", ratio.to_owned()));
    }
    if let Some(negative) = &req.negative_prompt {
        if model.turbo {
            return Err(unsupported(
                format!(
                    "`{}` takes no `negative_prompt` (Stability: \"This parameter does not work \
                     with sd3-large-turbo\")",
                    model.id
                ),
                "negative_prompt",
            ));
        }
        if negative.chars().count() > MAX_PROMPT_CHARS {
            return Err(invalid(
                format!(
                    "`negative_prompt` is longer than Stability's {MAX_PROMPT_CHARS} characters"
                ),
                "negative_prompt",
            ));
        }
        fields.push(("negative_prompt", negative.clone()));
    }
    if let Some(seed) = req.seed {
        if !(0..=MAX_SEED).contains(&seed) {
            return Err(invalid(
                format!("`seed` must be between 0 and {MAX_SEED} (0 picks a random seed)"),
                "seed",
            ));
        }
        fields.push(("seed", seed.to_string()));
    }
    if let Some(format) = &req.output_format {
        fields.push(("output_format", output_format(model, format)?));
    }
    for (name, value) in options(model, &req.options)? {
        fields.push((name, value));
    }
    Ok(Generate {
        path: model.endpoint.path(),
        fields,
    })
}

/// The `aspect_ratio` to send: the request's, or the documented ratio its `size` is exactly.
fn aspect_ratio(req: &ImageRequest) -> Result<Option<&'static str>> {
    let given = match &req.aspect_ratio {
        Some(ratio) => Some(
            ASPECT_RATIOS
                .into_iter()
                .find(|r| *r == ratio.trim())
                .ok_or_else(|| {
                    invalid(
                        format!(
                            "`aspect_ratio` `{ratio}` is not one Stability offers; it takes: {}",
                            ASPECT_RATIOS.join(", ")
                        ),
                        "aspect_ratio",
                    )
                })?,
        ),
        None => None,
    };
    let from_size = match req.size.as_deref().map(str::trim) {
        None | Some("auto") => None,
        Some(size) => Some(size_ratio(size)?),
    };
    match (given, from_size) {
        (Some(a), Some(b)) if a != b => Err(invalid(
            format!(
                "`size` `{}` is {b}, but `aspect_ratio` is {a}; give one of them",
                req.size.as_deref().unwrap_or_default(),
            ),
            "size",
        )),
        (Some(r), _) | (None, Some(r)) => Ok(Some(r)),
        (None, None) => Ok(None),
    }
}

/// `W:H` in lowest terms.
fn reduced(w: u32, h: u32) -> (u32, u32) {
    let g = gcd(w, h);
    (w / g, h / g)
}

/// The documented ratio a `WIDTHxHEIGHT` size is exactly (`2100x900` is `21:9`).
fn size_ratio(size: &str) -> Result<&'static str> {
    let parse = |text: &str, sep: &[char]| -> Option<(u32, u32)> {
        let (w, h) = text.split_once(sep)?;
        Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
    };
    let Some((w, h)) = parse(size, &['x', 'X']).filter(|&(w, h)| w > 0 && h > 0) else {
        return Err(invalid(
            format!("`size` `{size}` is not WIDTHxHEIGHT (e.g. `1024x1024`)"),
            "size",
        ));
    };
    let ratio = reduced(w, h);
    if let Some(found) = ASPECT_RATIOS
        .into_iter()
        .find(|r| parse(r, &[':']).map(|(a, b)| reduced(a, b)) == Some(ratio))
    {
        return Ok(found);
    }
    Err(unsupported(
        format!(
            "Stability AI generates by aspect ratio, not size, and `{size}` ({}:{}) is none of \
             its ratios: {}; give `aspect_ratio`, or a size of one of these ratios (`1024x1024`, \
             `1536x1024`, `1920x1080`, ...)",
            ratio.0,
            ratio.1,
            ASPECT_RATIOS.join(", ")
        ),
        "size",
    ))
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The `output_format` to send for `format` on `model`.
fn output_format(model: &Model, format: &str) -> Result<String> {
    let format = format.trim().to_ascii_lowercase();
    let format = if format == "jpg" {
        "jpeg".into()
    } else {
        format
    };
    if model.endpoint.formats().contains(&format.as_str()) {
        return Ok(format);
    }
    let message = format!(
        "`{}` returns {}, not `{format}`",
        model.id,
        model.endpoint.formats().join(", ")
    );
    if ["png", "jpeg", "webp"].contains(&format.as_str()) {
        Err(unsupported(message, "output_format"))
    } else {
        Err(invalid(message, "output_format"))
    }
}

/// The documented fields `options` sets, checked, as form fields.
fn options(
    model: &Model,
    options: &serde_json::Map<String, Value>,
) -> Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    for (name, value) in options {
        let param = format!("options.{name}");
        if let Some((_, core)) = CORE_FIELDS.iter().find(|(field, _)| field == name) {
            return Err(invalid(
                format!("`{param}`: set the request's `{core}` field instead"),
                param,
            ));
        }
        let Some(&field) = model.endpoint.options().iter().find(|o| *o == name) else {
            return Err(invalid(
                format!(
                    "`{param}` is not an option of `{}`; it takes: {}",
                    model.id,
                    model.endpoint.options().join(", ")
                ),
                param,
            ));
        };
        let text = match field {
            "style_preset" => value
                .as_str()
                .filter(|s| STYLE_PRESETS.contains(s))
                .map(str::to_owned)
                .ok_or_else(|| {
                    invalid(
                        format!("`{param}` must be one of: {}", STYLE_PRESETS.join(", ")),
                        param.clone(),
                    )
                })?,
            // "cfg_scale: number [ 1 .. 10 ]".
            _ => value
                .as_f64()
                .filter(|x| (1.0..=10.0).contains(x))
                .map(|_| value.to_string())
                .ok_or_else(|| {
                    invalid(
                        format!("`{param}` must be a number from 1 to 10"),
                        param.clone(),
                    )
                })?,
        };
        out.push((field, text));
    }
    Ok(out)
}

/// The response for one image Stability returned: its bytes (checked to be an image, typed by
/// their signature), why it finished (`None` when not said) and its seed.
///
/// A `CONTENT_FILTERED` image (generated, then blurred by Stability's moderation) is returned
/// with [`ImageNote::content_filtered`] set, and billed: the reference calls it a "successful
/// generation" and bills per successful generation; only the 403 refusal is not charged.
pub(crate) fn image_response(
    model: &str,
    data: Vec<u8>,
    finish: Option<FinishReason>,
    seed: Option<i64>,
) -> Result<ImageResponse> {
    if finish == Some(FinishReason::Other) {
        return Err(Error::decode(
            "Stability AI finished the generation with a `finish_reason` its reference does not \
             document",
        )
        .with_provider(PROVIDER));
    }
    let Some(mime) = sniff_image(&data) else {
        return Err(
            Error::decode("Stability AI's answer is not a PNG, JPEG or WebP image")
                .with_provider(PROVIDER),
        );
    };
    let image = MediaOutput::Bytes {
        data: data.into(),
        mime: mime.to_owned(),
    };
    let mut note = ImageNote::default();
    note.seed = seed;
    note.content_filtered = finish == Some(FinishReason::ContentFiltered);
    Ok(ImageResponse::new(model, vec![image], Usage::units(1)).notes(vec![note]))
}

/// A seed as JSON gives it (a number) or as the `seed` header does (text).
pub(crate) fn seed(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> Error {
    Error::invalid_request(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

fn unsupported(message: impl Into<String>, param: impl Into<String>) -> Error {
    Error::unsupported(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

#[cfg(test)]
mod tests;
