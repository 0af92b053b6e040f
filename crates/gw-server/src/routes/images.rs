//! `POST /v1/images/generations` and `POST /v1/images/edits`: OpenAI's images API
//! (<https://platform.openai.com/docs/api-reference/images>) over every provider that draws,
//! through the same router as chat (plans, fallbacks, retries, usage).
//!
//! Generations take OpenAI's JSON body. Edits take OpenAI's multipart form (`image`, or
//! `image[]` repeated, `mask`, `prompt`, ...) or JSON whose images are URLs or data URLs.
//! Gateway extensions: `aspect_ratio`, `negative_prompt`, `seed`, `edit` (the kind of edit, when
//! the model does several), `fallbacks` and `options` (provider-specific fields, checked by the
//! provider). OpenAI's fields no provider here shares (`quality`, `style`, `background`,
//! `moderation`, `output_compression`) go into `options` under their own names, so a provider
//! that takes one uses it and the others refuse it by name.
//!
//! A fine-tuned model (`ft:wavespeed/flux-dev:<suffix>:<job id>`, the `fine_tuned_model` of a
//! succeeded fine-tuning job) generates with its base family's LoRA model and the stored LoRA,
//! for the job's owner only; `options.lora_scale` sets its weight (default 1).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use llm_gateway::{
    EditKind, ImageEditRequest, ImageFormat, ImageRequest, ImageResponse, MediaInput, MediaOutput,
    Metered, encode_base64,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::upload::{JsonOrForm, bad_form, json_image, json_or_form, merge_options, uploaded};
use super::{JsonBody, call_context, model_error, set_cache, set_cost, set_route};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;
use crate::openai::end_user_tags;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/images/generations", post(generations))
        .route("/v1/images/edits", post(edits))
}

/// OpenAI's fields that no provider behind the gateway shares: passed on as options, by name.
const OPENAI_OPTIONS: &[&str] = &[
    "quality",
    "style",
    "background",
    "moderation",
    "output_compression",
];

/// The most images one request may ask for: OpenAI's own limit.
const MAX_N: u32 = 10;

/// The body of a generation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationBody {
    model: String,
    prompt: String,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    output_format: Option<String>,
    #[serde(default)]
    quality: Option<Value>,
    #[serde(default)]
    style: Option<Value>,
    #[serde(default)]
    background: Option<Value>,
    #[serde(default)]
    moderation: Option<Value>,
    #[serde(default)]
    output_compression: Option<Value>,
    /// Streaming partial images: refused, no provider here streams images.
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    partial_images: Option<u32>,
    #[serde(default)]
    aspect_ratio: Option<String>,
    #[serde(default)]
    negative_prompt: Option<String>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    fallbacks: Vec<String>,
    #[serde(default)]
    options: Map<String, Value>,
    #[serde(default)]
    user: Option<String>,
}

impl GenerationBody {
    /// The core request, or a 400 naming the field at fault.
    fn to_core(&self) -> Result<ImageRequest, ApiError> {
        require_model(&self.model)?;
        if self.prompt.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("prompt".into()),
                "`prompt` must not be empty",
            ));
        }
        if self.stream == Some(true) || self.partial_images.is_some_and(|p| p > 0) {
            return Err(ApiError::invalid(
                Some("stream".into()),
                "streamed partial images are not supported: leave `stream` unset",
            ));
        }
        let mut req = ImageRequest::new(self.model.clone(), self.prompt.clone());
        req.n = check_n(self.n)?;
        req.size = size(self.size.as_deref())?;
        req.response_format = response_format(self.response_format.as_deref())?;
        req.output_format = self.output_format.clone();
        req.aspect_ratio = self.aspect_ratio.clone();
        req.negative_prompt = self.negative_prompt.clone();
        req.seed = self.seed;
        req.options = self.options.clone();
        let openai = [
            &self.quality,
            &self.style,
            &self.background,
            &self.moderation,
            &self.output_compression,
        ];
        for (name, value) in OPENAI_OPTIONS.iter().zip(openai) {
            if let Some(value) = value {
                req.options.insert((*name).to_owned(), value.clone());
            }
        }
        Ok(req)
    }
}

fn require_model(model: &str) -> Result<(), ApiError> {
    if model.trim().is_empty() {
        return Err(ApiError::invalid(
            Some("model".into()),
            "`model` must not be empty",
        ));
    }
    Ok(())
}

fn check_n(n: Option<u32>) -> Result<Option<u32>, ApiError> {
    match n {
        Some(n) if n == 0 || n > MAX_N => Err(ApiError::invalid(
            Some("n".into()),
            format!("`n` must be from 1 to {MAX_N}"),
        )),
        n => Ok(n),
    }
}

/// `WIDTHxHEIGHT`, or `auto` (none).
fn size(size: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(size) = size.map(str::trim).filter(|s| *s != "auto") else {
        return Ok(None);
    };
    let valid = size.split_once('x').is_some_and(|(w, h)| {
        w.parse::<u32>().is_ok_and(|w| w > 0) && h.parse::<u32>().is_ok_and(|h| h > 0)
    });
    if !valid {
        return Err(ApiError::invalid(
            Some("size".into()),
            format!("`size` must be `WIDTHxHEIGHT` (like `1024x1024`) or `auto`, not `{size}`"),
        ));
    }
    Ok(Some(size.to_owned()))
}

fn response_format(format: Option<&str>) -> Result<Option<ImageFormat>, ApiError> {
    format
        .map(|f| {
            ImageFormat::parse(f).ok_or_else(|| {
                ApiError::invalid(
                    Some("response_format".into()),
                    format!("`response_format` must be `b64_json` or `url`, not `{f}`"),
                )
            })
        })
        .transpose()
}

fn edit_kind(kind: Option<&str>) -> Result<Option<EditKind>, ApiError> {
    kind.map(|k| {
        EditKind::parse(k).ok_or_else(|| {
            ApiError::invalid(
                Some("edit".into()),
                format!("`edit` must be `edit`, `remove_background` or `face_swap`, not `{k}`"),
            )
        })
    })
    .transpose()
}

async fn generations(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<GenerationBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body.map_err(ApiError::from_json)?;
    let mut req = body.to_core()?;
    // A fine-tuned model runs its family's LoRA model with the caller's stored LoRA.
    if req.model.starts_with("ft:") {
        req = crate::fine_tuning_jobs::lora_request(&state, &caller.user_id, req).await?;
    }
    let mut call = call_context(&ctx, caller, &headers, &body.fallbacks)?;
    call.tags = Arc::new(end_user_tags(body.user.as_ref())?);
    let metered = state
        .gateway()
        .generate_image_with(&call, req)
        .await
        .map_err(|e| model_error(&state, &body.model, e))?;
    Ok(respond(metered))
}

/// An edit as the client sent it, from either body form.
#[derive(Debug, Default)]
struct EditBody {
    model: String,
    prompt: String,
    images: Vec<MediaInput>,
    mask: Option<MediaInput>,
    n: Option<u32>,
    size: Option<String>,
    response_format: Option<String>,
    output_format: Option<String>,
    seed: Option<i64>,
    edit: Option<String>,
    fallbacks: Vec<String>,
    options: Map<String, Value>,
    user: Option<String>,
}

impl EditBody {
    fn to_core(&self) -> Result<ImageEditRequest, ApiError> {
        require_model(&self.model)?;
        if self.images.is_empty() {
            return Err(ApiError::invalid(
                Some("image".into()),
                "an edit needs an `image`",
            ));
        }
        let mut req = ImageEditRequest::new(self.model.clone(), self.images.clone());
        req.kind = edit_kind(self.edit.as_deref())?;
        req.prompt = self.prompt.clone();
        req.mask = self.mask.clone();
        req.n = check_n(self.n)?;
        req.size = size(self.size.as_deref())?;
        req.response_format = response_format(self.response_format.as_deref())?;
        req.output_format = self.output_format.clone();
        req.seed = self.seed;
        req.options = self.options.clone();
        Ok(req)
    }
}

/// The JSON form of an edit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditJson {
    model: String,
    #[serde(default)]
    prompt: String,
    /// A URL or data URL, or an array of them.
    #[serde(default)]
    image: Option<Value>,
    /// OpenAI's JSON form: `[{"image_url": "..."}]`.
    #[serde(default)]
    images: Option<Vec<Value>>,
    /// A URL or data URL, or `{"image_url": "..."}`.
    #[serde(default)]
    mask: Option<Value>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    output_format: Option<String>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    edit: Option<String>,
    #[serde(default)]
    fallbacks: Vec<String>,
    #[serde(default)]
    options: Map<String, Value>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    quality: Option<Value>,
    #[serde(default)]
    background: Option<Value>,
    #[serde(default)]
    input_fidelity: Option<Value>,
    #[serde(default)]
    output_compression: Option<Value>,
}

impl EditJson {
    fn into_body(self, max_bytes: usize) -> Result<EditBody, ApiError> {
        let mut images = Vec::new();
        match (&self.image, &self.images) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    Some("images".into()),
                    "send the images as `image` or as `images`, not both",
                ));
            }
            (Some(Value::Array(items)), None) => {
                for (i, item) in items.iter().enumerate() {
                    images.push(json_image(item, &format!("image[{i}]"), max_bytes)?);
                }
            }
            (Some(one), None) => images.push(json_image(one, "image", max_bytes)?),
            (None, Some(items)) => {
                for (i, item) in items.iter().enumerate() {
                    images.push(json_image(item, &format!("images[{i}]"), max_bytes)?);
                }
            }
            (None, None) => {}
        }
        let mask = self
            .mask
            .as_ref()
            .map(|m| json_image(m, "mask", max_bytes))
            .transpose()?;
        let mut options = self.options;
        for (name, value) in [
            ("quality", self.quality),
            ("background", self.background),
            ("input_fidelity", self.input_fidelity),
            ("output_compression", self.output_compression),
        ] {
            if let Some(value) = value {
                options.insert(name.to_owned(), value);
            }
        }
        Ok(EditBody {
            model: self.model,
            prompt: self.prompt,
            images,
            mask,
            n: self.n,
            size: self.size,
            response_format: self.response_format,
            output_format: self.output_format,
            seed: self.seed,
            edit: self.edit,
            fallbacks: self.fallbacks,
            options,
            user: self.user,
        })
    }
}

/// The multipart form of an edit, OpenAI's.
async fn multipart_body(mut form: Multipart, max_bytes: usize) -> Result<EditBody, ApiError> {
    let mut body = EditBody::default();
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "image" | "image[]" | "mask" => {
                let i = body.images.len();
                let param = if name == "mask" {
                    "mask".to_owned()
                } else if name == "image[]" {
                    format!("image[{i}]")
                } else {
                    "image".to_owned()
                };
                let data = field.bytes().await.map_err(bad_form)?;
                let image = uploaded(data, &param, max_bytes)?;
                if name == "mask" {
                    body.mask = Some(image);
                } else {
                    body.images.push(image);
                }
            }
            _ => {
                let text = field.text().await.map_err(bad_form)?;
                set_text_field(&mut body, &name, text)?;
            }
        }
    }
    Ok(body)
}

/// Sets the text field `name` of a multipart edit.
fn set_text_field(body: &mut EditBody, name: &str, text: String) -> Result<(), ApiError> {
    let number = |text: &str| {
        text.trim().parse::<i64>().map_err(|_| {
            ApiError::invalid(
                Some(name.to_owned()),
                format!("`{name}` must be a whole number"),
            )
        })
    };
    match name {
        "model" => body.model = text,
        "prompt" => body.prompt = text,
        "n" => {
            let n = number(&text)?;
            body.n = Some(u32::try_from(n).map_err(|_| {
                ApiError::invalid(Some("n".into()), format!("`n` must be from 1 to {MAX_N}"))
            })?);
        }
        "size" => body.size = Some(text),
        "response_format" => body.response_format = Some(text),
        "output_format" => body.output_format = Some(text),
        "seed" => body.seed = Some(number(&text)?),
        "edit" => body.edit = Some(text),
        "user" => body.user = Some(text),
        "fallbacks" | "fallbacks[]" => body.fallbacks.push(text),
        "options" => merge_options(&mut body.options, &text)?,
        "quality" | "background" | "input_fidelity" | "output_compression" | "style"
        | "moderation" => {
            body.options.insert(name.to_owned(), Value::String(text));
        }
        // OpenAI's SDK sends `stream` only when asked; anything but false is refused.
        "stream" if text.trim() == "false" => {}
        _ => {
            return Err(ApiError::invalid(
                Some(name.to_owned()),
                format!("unknown field `{name}`"),
            ));
        }
    }
    Ok(())
}

async fn edits(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let max_bytes = state.max_image_bytes();
    let body = match json_or_form::<EditJson>(request, &state, "an edit").await? {
        JsonOrForm::Json(body) => body.into_body(max_bytes)?,
        JsonOrForm::Form(form) => multipart_body(form, max_bytes).await?,
    };
    let req = body.to_core()?;
    let mut call = call_context(&ctx, caller, &headers, &body.fallbacks)?;
    call.tags = Arc::new(end_user_tags(body.user.as_ref())?);
    let metered = state
        .gateway()
        .edit_image_with(&call, req)
        .await
        .map_err(|e| model_error(&state, &body.model, e))?;
    Ok(respond(metered))
}

/// OpenAI's images response.
#[derive(Serialize)]
struct ImagesResponse {
    created: u64,
    /// The route that served the request (a gateway extension).
    model: String,
    data: Vec<Image>,
    usage: ImagesUsage,
}

#[derive(Serialize)]
struct Image {
    #[serde(skip_serializing_if = "Option::is_none")]
    b64_json: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revised_prompt: Option<String>,
    /// A gateway extension, present only when set: the provider's content filter flagged the
    /// image (Stability returns it blurred, WaveSpeed flags it as NSFW).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    content_filtered: bool,
}

/// OpenAI's images `usage` (tokens, for the models billed by them), with the images and the cost
/// as gateway extensions.
#[derive(Serialize)]
struct ImagesUsage {
    images: u64,
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    cost_usd: Option<f64>,
}

fn respond(metered: Metered<ImageResponse>) -> Response {
    let Metered {
        value: answer,
        route,
        cost,
        usage,
        cache,
        ..
    } = metered;
    let mut notes = answer.notes.into_iter();
    let data = answer
        .images
        .into_iter()
        .map(|image| {
            let note = notes.next().unwrap_or_default();
            let (b64_json, url) = match image {
                MediaOutput::Bytes { data, .. } => (Some(encode_base64(&data)), None),
                MediaOutput::Url { url, .. } => (None, Some(url)),
                // A later kind of output: none that this API could carry.
                _ => (None, None),
            };
            Image {
                b64_json,
                url,
                revised_prompt: note.revised_prompt,
                content_filtered: note.content_filtered,
            }
        })
        .collect();
    let tokens = usage.map(|u| u.tokens).unwrap_or_default();
    let response = ImagesResponse {
        created: RequestContext::unix_now(),
        model: route.to_string(),
        data,
        usage: ImagesUsage {
            images: usage.map_or(answer.billing.units, |u| u.units),
            input_tokens: tokens.input_tokens,
            output_tokens: tokens.output_tokens,
            total_tokens: tokens.total_tokens(),
            cost_usd: cost.map(|c| c.nanos() as f64 / 1e9),
        },
    };
    let mut response = Json(response).into_response();
    set_cost(&mut response, cost);
    set_route(&mut response, &route);
    set_cache(&mut response, &cache);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn generation(v: Value) -> Result<ImageRequest, ApiError> {
        serde_json::from_value::<GenerationBody>(v)
            .unwrap()
            .to_core()
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn a_generation_maps_openai_fields_and_extensions() {
        let req = generation(json!({
            "model": "stability/core", "prompt": "a lighthouse", "n": 2, "size": "1024x1024",
            "response_format": "b64_json", "output_format": "webp", "quality": "hd",
            "aspect_ratio": "16:9", "negative_prompt": "fog", "seed": 7,
            "options": {"style_preset": "anime"}, "user": "u-1"
        }))
        .unwrap();
        assert_eq!(req.model, "stability/core");
        assert_eq!(req.n, Some(2));
        assert_eq!(req.size.as_deref(), Some("1024x1024"));
        assert_eq!(req.response_format, Some(ImageFormat::B64Json));
        assert_eq!(req.output_format.as_deref(), Some("webp"));
        assert_eq!(req.aspect_ratio.as_deref(), Some("16:9"));
        assert_eq!(req.negative_prompt.as_deref(), Some("fog"));
        assert_eq!(req.seed, Some(7));
        assert_eq!(req.options["style_preset"], "anime");
        assert_eq!(req.options["quality"], "hd");
        let auto = generation(json!({"model": "m/x", "prompt": "p", "size": "auto"})).unwrap();
        assert_eq!((auto.size, auto.response_format), (None, None));
    }

    #[test]
    fn a_bad_generation_is_refused_by_name() {
        for (body, param) in [
            (json!({"model": "", "prompt": "p"}), "model"),
            (json!({"model": "m/x", "prompt": " "}), "prompt"),
            (json!({"model": "m/x", "prompt": "p", "n": 0}), "n"),
            (json!({"model": "m/x", "prompt": "p", "n": 11}), "n"),
            (
                json!({"model": "m/x", "prompt": "p", "size": "big"}),
                "size",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "size": "0x10"}),
                "size",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "response_format": "png"}),
                "response_format",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "stream": true}),
                "stream",
            ),
        ] {
            let err = generation(body.clone()).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
            assert_eq!(err.status.as_u16(), 400);
        }
        assert!(
            serde_json::from_value::<GenerationBody>(
                json!({"model": "m", "prompt": "p", "colour": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn json_edits_take_urls_data_urls_and_openai_image_objects() {
        let data_url = format!("data:image/png;base64,{}", encode_base64(PNG));
        let edit: EditJson = serde_json::from_value(json!({
            "model": "wavespeed/wavespeed-ai/image-eraser", "prompt": "remove the car",
            "image": ["https://example.com/a.png", data_url],
            "mask": {"image_url": data_url}, "edit": "edit", "n": 1
        }))
        .unwrap();
        let req = edit.into_body(1024).unwrap().to_core().unwrap();
        assert_eq!(req.images.len(), 2);
        assert_eq!(
            req.images[0],
            MediaInput::Url("https://example.com/a.png".into())
        );
        assert_eq!(req.images[1], MediaInput::bytes(PNG, "image/png"));
        assert_eq!(req.mask, Some(MediaInput::bytes(PNG, "image/png")));
        assert_eq!(req.kind, Some(EditKind::Edit));

        let edit: EditJson = serde_json::from_value(json!({
            "model": "m/x", "images": [{"image_url": "https://example.com/a.png"}]
        }))
        .unwrap();
        let req = edit.into_body(1024).unwrap().to_core().unwrap();
        assert_eq!((req.images.len(), req.kind), (1, None));
    }

    #[test]
    fn a_bad_edit_is_refused_by_name() {
        let not_png = format!("data:image/png;base64,{}", encode_base64(b"%PDF-1.7"));
        let big = format!(
            "data:image/png;base64,{}",
            encode_base64(&[PNG, &[0; 64]].concat())
        );
        for (body, param) in [
            (json!({"model": "m/x", "image": not_png}), "image"),
            (json!({"model": "m/x", "image": big}), "image"),
            (
                json!({"model": "m/x", "image": ["ftp://x/y.png"]}),
                "image[0]",
            ),
            (
                json!({"model": "m/x", "image": "https://x/a.png", "mask": 3}),
                "mask",
            ),
            (
                json!({"model": "m/x", "images": [{"file_id": "f"}]}),
                "images[0]",
            ),
            (
                json!({"model": "m/x", "image": "https://x/a.png", "images": []}),
                "images",
            ),
        ] {
            let edit: EditJson = serde_json::from_value(body.clone()).unwrap();
            let err = edit.into_body(32).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
        for (body, param) in [
            (json!({"model": "m/x"}), "image"),
            (
                json!({"model": "m/x", "image": "https://x/a.png", "edit": "paint"}),
                "edit",
            ),
        ] {
            let edit: EditJson = serde_json::from_value(body.clone()).unwrap();
            let err = edit.into_body(32).unwrap().to_core().unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
    }

    #[test]
    fn multipart_text_fields_are_read_or_refused_by_name() {
        let mut body = EditBody::default();
        for (name, value) in [
            ("model", "m/x"),
            ("prompt", "p"),
            ("n", "2"),
            ("seed", "9"),
            ("quality", "high"),
            ("fallbacks[]", "n/y"),
            ("options", r#"{"k": 1}"#),
            ("stream", "false"),
        ] {
            set_text_field(&mut body, name, value.to_owned()).unwrap();
        }
        assert_eq!((body.n, body.seed), (Some(2), Some(9)));
        assert_eq!(body.fallbacks, ["n/y"]);
        assert_eq!(body.options["k"], 1);
        assert_eq!(body.options["quality"], "high");
        for (name, value) in [
            ("n", "two"),
            ("n", "-1"),
            ("options", "[1]"),
            ("colour", "red"),
        ] {
            let err = set_text_field(&mut body, name, value.to_owned()).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(name));
        }
    }
}
