//! Pure mapping: the gateway's image requests -> a model's JSON input, checked against the
//! model's table entry ([`crate::models`]) before any IO; a task's outputs -> images.

use gateway_core::{
    EditKind, Error, ImageEditRequest, ImageFormat, ImageRequest, MediaInput, Result, encode_base64,
};
use serde_json::{Map, Value, json};

use crate::models::{self, ModelSpec, Prompt};

/// Fields the gateway sets itself: an option of the same name is refused, naming the core
/// field to use instead (or saying the gateway sets it).
const RESERVED: [(&str, &str); 11] = [
    ("prompt", "use `prompt`"),
    ("size", "use `size`"),
    ("num_images", "use `n`"),
    ("seed", "use `seed`"),
    ("output_format", "use `output_format`"),
    ("image", "use the edit's images"),
    ("images", "use the edit's images"),
    ("mask_image", "use `mask`"),
    ("face_image", "use the edit's second image"),
    ("enable_base64_output", "use `response_format`"),
    (
        "enable_sync_mode",
        "the gateway sets it from its configuration",
    ),
];

fn unsupported(model: &str, what: &str, param: &str) -> Error {
    Error::unsupported(format!("WaveSpeed model `{model}` {what}")).with_param(param)
}

/// `WIDTHxHEIGHT` -> (width, height).
pub(crate) fn parse_size(size: &str) -> Result<(u32, u32)> {
    let bad = || {
        Error::invalid_request(format!(
            "`size` must be WIDTHxHEIGHT in pixels (e.g. 1024x1024), not `{}`",
            size.escape_debug()
        ))
        .with_param("size")
    };
    let (w, h) = size.trim().split_once(['x', 'X', '*']).ok_or_else(bad)?;
    let parse = |s: &str| s.trim().parse::<u32>().ok().filter(|v| *v > 0);
    Ok((parse(w).ok_or_else(bad)?, parse(h).ok_or_else(bad)?))
}

/// The checks every request shares: `n`, `size`, `seed`, `output_format`, options.
fn check_common(
    spec: &ModelSpec,
    model: &str,
    n: Option<u32>,
    size: Option<&str>,
    seed: Option<i64>,
    output_format: Option<&str>,
    options: &Map<String, Value>,
) -> Result<()> {
    match n {
        Some(0) => return Err(Error::invalid_request("`n` must be at least 1").with_param("n")),
        Some(n) if n > spec.max_n => {
            return Err(unsupported(
                model,
                &format!("makes at most {} image(s) per request", spec.max_n),
                "n",
            ));
        }
        _ => {}
    }
    if let Some(size) = size {
        let (w, h) = parse_size(size)?;
        if spec.is_known() {
            let Some(sizes) = spec.sizes else {
                return Err(unsupported(model, "takes no `size`", "size"));
            };
            if !(sizes.min..=sizes.max).contains(&w) || !(sizes.min..=sizes.max).contains(&h) {
                return Err(unsupported(
                    model,
                    &format!(
                        "offers sizes from {min}x{min} to {max}x{max}, not {w}x{h}",
                        min = sizes.min,
                        max = sizes.max
                    ),
                    "size",
                ));
            }
        }
    }
    if spec.is_known() {
        if seed.is_some() && !spec.seed {
            return Err(unsupported(model, "takes no `seed`", "seed"));
        }
        if let Some(format) = output_format {
            if spec.output_formats.is_empty() {
                return Err(unsupported(
                    model,
                    "takes no `output_format`",
                    "output_format",
                ));
            }
            let format = normal_format(format);
            if !spec.output_formats.contains(&format.as_str()) {
                return Err(unsupported(
                    model,
                    &format!(
                        "writes {}, not `{}`",
                        spec.output_formats.join(", "),
                        format.escape_debug()
                    ),
                    "output_format",
                ));
            }
        }
    }
    for (key, value) in options {
        if let Some((_, instead)) = RESERVED.iter().find(|(name, _)| name == key) {
            return Err(Error::invalid_request(format!(
                "option `{key}` is not passed on: {instead}"
            ))
            .with_param(format!("options.{key}")));
        }
        if key == "loras" && spec.max_loras > 0 {
            check_loras(model, value, spec.max_loras)?;
            continue;
        }
        if spec.is_known() && !spec.options.contains(&key.as_str()) {
            let known = if spec.options.is_empty() {
                "none".to_owned()
            } else {
                spec.options.join(", ")
            };
            return Err(Error::invalid_request(format!(
                "WaveSpeed model `{model}` has no option `{key}` (its options: {known})"
            ))
            .with_param(format!("options.{key}")));
        }
    }
    Ok(())
}

/// The highest LoRA `scale` the LoRA models document ("0.0 ~ 4.0" on
/// <https://wavespeed.ai/docs/docs-api/wavespeed-ai/flux-dev-lora> and
/// <https://wavespeed.ai/docs/docs-api/wavespeed-ai/qwen-image-text-to-image-lora>).
const MAX_LORA_SCALE: f64 = 4.0;

/// Refuses, naming the entry (`options.loras[1].scale`), LoRAs a model cannot take: `loras` must
/// be an array of at most `max` objects, each with a `path` (an http(s) URL of the weights,
/// or a Hugging Face style `<owner>/<name>`, the two forms the pages document: "provide
/// `<owner>/<model-name>` or external `.safetensors` URL") and an optional `scale` in 0.0..=4.0
/// (the pages give 1.0 as its default). Nothing else is passed in an entry.
fn check_loras(model: &str, loras: &Value, max: u32) -> Result<()> {
    let Value::Array(loras) = loras else {
        return Err(Error::invalid_request(
            "`loras` must be an array of objects `{\"path\": ..., \"scale\": ...}`",
        )
        .with_param("options.loras"));
    };
    if loras.len() > max as usize {
        return Err(unsupported(
            model,
            &format!("takes at most {max} LoRA(s), not {}", loras.len()),
            "options.loras",
        ));
    }
    for (i, lora) in loras.iter().enumerate() {
        let at = format!("options.loras[{i}]");
        let Value::Object(lora) = lora else {
            return Err(Error::invalid_request(format!(
                "`{at}` must be an object `{{\"path\": ..., \"scale\": ...}}`"
            ))
            .with_param(at));
        };
        match lora.get("path") {
            Some(Value::String(path)) if valid_lora_path(path) => {}
            Some(Value::String(_)) => {
                return Err(Error::invalid_request(format!(
                    "`{at}.path` must be an http(s) URL of the LoRA weights or a repository id \
                     `<owner>/<name>`"
                ))
                .with_param(format!("{at}.path")));
            }
            Some(_) => {
                return Err(
                    Error::invalid_request(format!("`{at}.path` must be a string"))
                        .with_param(format!("{at}.path")),
                );
            }
            None => {
                return Err(Error::invalid_request(format!("`{at}` needs a `path`"))
                    .with_param(format!("{at}.path")));
            }
        }
        if let Some(scale) = lora.get("scale") {
            let in_range = scale
                .as_f64()
                .is_some_and(|s| s.is_finite() && (0.0..=MAX_LORA_SCALE).contains(&s));
            if !in_range {
                return Err(Error::invalid_request(format!(
                    "`{at}.scale` must be a number from 0 to {MAX_LORA_SCALE}, not {scale}"
                ))
                .with_param(format!("{at}.scale")));
            }
        }
        if let Some(other) = lora.keys().find(|k| *k != "path" && *k != "scale") {
            return Err(Error::invalid_request(format!(
                "a LoRA has a `path` and a `scale`, not `{}`",
                other.escape_debug()
            ))
            .with_param(format!("{at}.{other}")));
        }
    }
    Ok(())
}

/// An `https://` URL (with a host and no spaces), or `<owner>/<name>`: two segments of letters,
/// digits, `-`, `_` and `.`.
fn valid_lora_path(path: &str) -> bool {
    if path.is_empty() || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    // A plain-http URL too: the gateway's own signed links are http where the operator serves
    // it so (`[media] public_url`).
    let lower = path.get(..8).unwrap_or_default().to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        Some(&path[8..])
    } else if lower.starts_with("http://") {
        Some(&path[7..])
    } else {
        None
    };
    if let Some(rest) = rest {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        return !host.is_empty();
    }
    let segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    matches!(path.split_once('/'), Some((owner, name)) if segment(owner) && segment(name))
}

/// `jpg` is JPEG's other name; WaveSpeed writes `jpeg`.
fn normal_format(format: &str) -> String {
    let format = format.trim().to_ascii_lowercase();
    if format == "jpg" {
        "jpeg".into()
    } else {
        format
    }
}

/// Refuses, before any IO and naming the field, a generation the model cannot do.
pub(crate) fn check_generation(req: &ImageRequest) -> Result<()> {
    let spec = models::spec(&req.model);
    let model = req.model.as_str();
    if !crate::job::valid_model_path(model) {
        return Err(Error::invalid_request(format!(
            "`{}` is not a WaveSpeed model id",
            model.escape_debug()
        ))
        .with_param("model"));
    }
    if spec.is_known() && !spec.generation {
        return Err(unsupported(
            model,
            "edits images and does not draw from a prompt alone: send it to the edits endpoint",
            "model",
        ));
    }
    if req.prompt.trim().is_empty() {
        return Err(Error::invalid_request("`prompt` must not be empty").with_param("prompt"));
    }
    if spec.is_known() {
        if req.aspect_ratio.is_some() {
            return Err(unsupported(
                model,
                "takes a `size`, not an `aspect_ratio`",
                "aspect_ratio",
            ));
        }
        if req.negative_prompt.is_some() {
            return Err(unsupported(
                model,
                "takes no `negative_prompt`",
                "negative_prompt",
            ));
        }
    }
    check_common(
        spec,
        model,
        req.n,
        req.size.as_deref(),
        req.seed,
        req.output_format.as_deref(),
        &req.options,
    )
}

/// What an edit does on this model: the model's own kind when the caller did not say (`kind`
/// is `None`, the gateway's `edit` field absent) or said the same; another kind is refused. A
/// model the gateway does not know does what the caller says, a plain edit by default.
pub(crate) fn edit_kind(req: &ImageEditRequest) -> Result<EditKind> {
    let spec = models::spec(&req.model);
    let Some(edit) = spec.edit else {
        return Ok(req.kind.unwrap_or(EditKind::Edit));
    };
    match req.kind {
        None => Ok(edit.kind),
        Some(kind) if kind == edit.kind => Ok(kind),
        Some(kind) => Err(unsupported(
            &req.model,
            &format!(
                "does `{}` edits, not `{}`",
                edit.kind.as_str(),
                kind.as_str()
            ),
            "edit",
        )),
    }
}

/// Refuses, before any IO and naming the field, an edit the model cannot do.
pub(crate) fn check_edit(req: &ImageEditRequest) -> Result<()> {
    let spec = models::spec(&req.model);
    let model = req.model.as_str();
    if !crate::job::valid_model_path(model) {
        return Err(Error::invalid_request(format!(
            "`{}` is not a WaveSpeed model id",
            model.escape_debug()
        ))
        .with_param("model"));
    }
    if spec.is_known() && spec.edit.is_none() {
        return Err(unsupported(
            model,
            "draws from a prompt and does not edit images: send it to the generations endpoint",
            "model",
        ));
    }
    if req.images.is_empty() {
        return Err(Error::invalid_request("an edit needs an `image`").with_param("image"));
    }
    for input in req.images.iter().chain(req.mask.iter()) {
        media_value(input)?;
    }
    let kind = edit_kind(req)?;
    let images = req.images.len();
    if kind == EditKind::FaceSwap && images != 2 {
        return Err(Error::invalid_request(format!(
            "a face swap takes two images, the picture first and then the face to put on it, \
             not {images}"
        ))
        .with_param("image"));
    }
    let prompt_given = !req.prompt.trim().is_empty();
    if let Some(edit) = spec.edit {
        match edit.images_array {
            Some(max) if images as u32 > max => {
                return Err(unsupported(
                    model,
                    &format!("takes at most {max} images"),
                    "image",
                ));
            }
            None if kind != EditKind::FaceSwap && images != 1 => {
                return Err(unsupported(
                    model,
                    &format!("edits one image, not {images}"),
                    "image",
                ));
            }
            _ => {}
        }
        match (edit.mask, &req.mask) {
            (None, Some(_)) => return Err(unsupported(model, "takes no `mask`", "mask")),
            (Some((_, true)), None) => {
                return Err(Error::invalid_request(format!(
                    "WaveSpeed model `{model}` needs a `mask`: white where the image changes, \
                     black where it stays"
                ))
                .with_param("mask"));
            }
            _ => {}
        }
        if edit.mask_or_prompt && req.mask.is_none() && !prompt_given {
            return Err(Error::invalid_request(format!(
                "WaveSpeed model `{model}` needs a `mask` (white where it erases) or a `prompt` \
                 naming what to erase"
            ))
            .with_param("mask"));
        }
        if edit.prompt == Prompt::Required && !prompt_given {
            return Err(Error::invalid_request("`prompt` must not be empty").with_param("prompt"));
        }
    }
    check_common(
        spec,
        model,
        req.n,
        req.size.as_deref(),
        req.seed,
        req.output_format.as_deref(),
        &req.options,
    )
}

/// An input image as WaveSpeed takes it: its URL, or the bytes as a `data:` URL. WaveSpeed
/// fetches URLs itself; for bytes, the official AI SDK provider sends a data URI in the same
/// fields (`convertImageModelFileToDataUri` in `wavespeed-image-model.ts`,
/// <https://github.com/WaveSpeedAI/ai-sdk-provider/blob/5dca52de6a6e8655a0c2bcf708c329bd511a71e6/src/wavespeed-image-model.ts>),
/// and the API pages describe image fields as "Base64 encoded image or image URL"
/// (<https://wavespeed.ai/docs-api/flux-dev>). The upload endpoint (`/api/v3/media/uploads`)
/// would need a second call, a `PUT` to a host WaveSpeed names, and a file that outlives the
/// request.
pub(crate) fn media_value(input: &MediaInput) -> Result<String> {
    match input {
        MediaInput::Url(url) => {
            let lower = url.trim().to_ascii_lowercase();
            if lower.starts_with("https://") || lower.starts_with("http://") {
                Ok(url.trim().to_owned())
            } else {
                Err(Error::invalid_request(
                    "an image must be an http(s) URL, a data URL or an upload",
                )
                .with_param("image"))
            }
        }
        MediaInput::Bytes { data, mime } => {
            if data.is_empty() {
                return Err(Error::invalid_request("an image is empty").with_param("image"));
            }
            Ok(format!("data:{mime};base64,{}", encode_base64(data)))
        }
        _ => Err(
            Error::invalid_request("an image of a kind WaveSpeed cannot take").with_param("image"),
        ),
    }
}

/// Whether the caller wants bytes back.
fn wants_bytes(format: Option<ImageFormat>) -> bool {
    format == Some(ImageFormat::B64Json)
}

/// The fields every input shares: size, count, seed, format, options, base64 and sync flags.
#[allow(clippy::too_many_arguments)]
fn common_fields(
    body: &mut Map<String, Value>,
    spec: &ModelSpec,
    n: Option<u32>,
    size: Option<&str>,
    seed: Option<i64>,
    output_format: Option<&str>,
    response_format: Option<ImageFormat>,
    options: &Map<String, Value>,
    sync: bool,
) -> Result<()> {
    if let Some(size) = size {
        let (w, h) = parse_size(size)?;
        body.insert("size".into(), json!(format!("{w}*{h}")));
    }
    // `num_images` only where the model documents it (its limit is above one), or, for a model
    // the gateway does not know, when more than one image is asked for.
    match n {
        Some(n) if spec.is_known() && spec.max_n > 1 => {
            body.insert("num_images".into(), json!(n));
        }
        Some(n) if !spec.is_known() && n > 1 => {
            body.insert("num_images".into(), json!(n));
        }
        _ => {}
    }
    if let Some(seed) = seed {
        body.insert("seed".into(), json!(seed));
    }
    if let Some(format) = output_format {
        body.insert("output_format".into(), json!(normal_format(format)));
    }
    for (key, value) in options {
        body.insert(key.clone(), value.clone());
    }
    if wants_bytes(response_format) && spec.base64 {
        body.insert("enable_base64_output".into(), json!(true));
    }
    if sync && spec.sync {
        body.insert("enable_sync_mode".into(), json!(true));
    }
    Ok(())
}

/// The model's input for a generation (checked by [`check_generation`]).
pub(crate) fn generation_input(req: &ImageRequest, sync: bool) -> Result<Map<String, Value>> {
    let spec = models::spec(&req.model);
    let mut body = Map::new();
    body.insert("prompt".into(), json!(req.prompt));
    if !spec.is_known() {
        if let Some(negative) = &req.negative_prompt {
            body.insert("negative_prompt".into(), json!(negative));
        }
        if let Some(ratio) = &req.aspect_ratio {
            body.insert("aspect_ratio".into(), json!(ratio));
        }
    }
    common_fields(
        &mut body,
        spec,
        req.n,
        req.size.as_deref(),
        req.seed,
        req.output_format.as_deref(),
        req.response_format,
        &req.options,
        sync,
    )?;
    Ok(body)
}

/// The model's input for an edit (checked by [`check_edit`]).
pub(crate) fn edit_input(req: &ImageEditRequest, sync: bool) -> Result<Map<String, Value>> {
    let spec = models::spec(&req.model);
    let kind = edit_kind(req)?;
    let images = req
        .images
        .iter()
        .map(media_value)
        .collect::<Result<Vec<_>>>()?;
    let mask = req.mask.as_ref().map(media_value).transpose()?;
    let prompt = Some(req.prompt.trim()).filter(|p| !p.is_empty());
    let mut body = Map::new();
    match spec.edit {
        Some(edit) => {
            let (first, rest) = images.split_first().expect("checked: at least one image");
            match (edit.images_array, edit.face_field) {
                (Some(_), _) => {
                    body.insert(edit.image_field.into(), json!(images));
                }
                (None, Some(face)) => {
                    body.insert(edit.image_field.into(), json!(first));
                    if let Some(second) = rest.first() {
                        body.insert(face.into(), json!(second));
                    }
                }
                (None, None) => {
                    body.insert(edit.image_field.into(), json!(first));
                }
            }
            if let (Some((field, _)), Some(mask)) = (edit.mask, &mask) {
                body.insert(field.into(), json!(mask));
            }
            if edit.prompt != Prompt::None
                && let Some(prompt) = prompt
            {
                body.insert("prompt".into(), json!(prompt));
            }
        }
        None => {
            // A model the gateway does not know: the official AI SDK provider's mapping.
            match (kind, images.as_slice()) {
                (EditKind::FaceSwap, [target, face, ..]) => {
                    body.insert("image".into(), json!(target));
                    body.insert("face_image".into(), json!(face));
                }
                (_, [one]) => {
                    body.insert("image".into(), json!(one));
                }
                (_, many) => {
                    body.insert("images".into(), json!(many));
                }
            }
            if let Some(mask) = &mask {
                body.insert("mask_image".into(), json!(mask));
            }
            if let Some(prompt) = prompt {
                body.insert("prompt".into(), json!(prompt));
            }
        }
    }
    common_fields(
        &mut body,
        spec,
        req.n,
        req.size.as_deref(),
        req.seed,
        req.output_format.as_deref(),
        req.response_format,
        &req.options,
        sync,
    )?;
    Ok(body)
}

/// One output of a task, before any download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// A URL WaveSpeed hosts the image at.
    Url(String),
    /// The image itself (bare base64 or a data URL in `outputs`).
    Bytes(Vec<u8>),
}

/// A task's output strings as images: URLs as URLs, data URLs and bare base64 (what
/// `enable_base64_output` gives: "naked base64 (no `data:<mime>` prefix)",
/// <https://wavespeed.ai/models/wavespeed-ai/image-eraser/llms.txt>) as bytes.
pub(crate) fn outputs(outputs: &[Value]) -> Result<Vec<Output>> {
    outputs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let Value::String(s) = out else {
                return Err(Error::decode(format!(
                    "output {i} is not a string: the gateway reads image outputs only"
                )));
            };
            let s = s.trim();
            let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
            if lower.starts_with("https://") || lower.starts_with("http://") {
                return Ok(Output::Url(s.to_owned()));
            }
            if let Some(data) = gateway_core::DataUrl::parse(s) {
                return data
                    .map(|d| Output::Bytes(d.data.to_vec()))
                    .map_err(|why| Error::decode(format!("output {i}: {why}")));
            }
            gateway_core::decode_base64(s)
                .filter(|b| !b.is_empty())
                .map(Output::Bytes)
                .ok_or_else(|| Error::decode(format!("output {i} is neither a URL nor base64")))
        })
        .collect()
}

#[cfg(test)]
mod tests;
