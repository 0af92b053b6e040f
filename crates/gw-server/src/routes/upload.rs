//! Bodies that carry media in, shared by the routes that take them (image edits, the first frame
//! of a video, audio to transcribe): OpenAI's multipart forms or JSON, and images as an upload
//! or, in JSON, as a URL or data URL.

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use llm_gateway::{MediaInput, sniff_image};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::error::ApiError;

/// A body sent as JSON or as a multipart form.
pub(crate) enum JsonOrForm<J> {
    Json(J),
    Form(Multipart),
}

/// The body of `request`: JSON when its content type says so, else OpenAI's multipart form. A
/// body that is neither is a 400 saying that `what` takes one of the two.
pub(crate) async fn json_or_form<J: DeserializeOwned>(
    request: Request,
    state: &AppState,
    what: &str,
) -> Result<JsonOrForm<J>, ApiError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if is_json {
        let Json(body) = Json::<J>::from_request(request, state)
            .await
            .map_err(ApiError::from_json)?;
        return Ok(JsonOrForm::Json(body));
    }
    Multipart::from_request(request, state)
        .await
        .map(JsonOrForm::Form)
        .map_err(|e| {
            ApiError::invalid(
                None,
                format!(
                    "{what} is a multipart form (OpenAI's) or a JSON body: {}",
                    e.body_text()
                ),
            )
        })
}

/// A multipart form that cannot be read (cut short, malformed, over the body limit).
pub(crate) fn bad_form(e: MultipartError) -> ApiError {
    ApiError::invalid(
        None,
        format!("the multipart form cannot be read: {}", e.body_text()),
    )
}

/// Merges a form's `options` field (a JSON object) into `options`: merged, not replaced, since a
/// form's fields come in any order and OpenAI's own option fields may already be there.
pub(crate) fn merge_options(options: &mut Map<String, Value>, text: &str) -> Result<(), ApiError> {
    let more: Map<String, Value> = serde_json::from_str(text).map_err(|e| {
        ApiError::invalid(
            Some("options".into()),
            format!("`options` must be a JSON object: {e}"),
        )
    })?;
    options.extend(more);
    Ok(())
}

/// An image given in JSON: a URL or data URL, or `{"image_url": ...}` (whose value may itself be
/// `{"url": ...}`, as chat's image parts are).
pub(crate) fn json_image(
    value: &Value,
    param: &str,
    max_bytes: usize,
) -> Result<MediaInput, ApiError> {
    let url = match value {
        Value::String(url) => Some(url.as_str()),
        Value::Object(o) => match o.get("image_url") {
            Some(Value::String(url)) => Some(url.as_str()),
            Some(Value::Object(inner)) => inner.get("url").and_then(Value::as_str),
            _ => None,
        },
        _ => None,
    };
    let Some(url) = url else {
        return Err(ApiError::invalid(
            Some(param.to_owned()),
            format!("`{param}` must be an image URL, a data URL, or {{\"image_url\": \"...\"}}"),
        ));
    };
    match MediaInput::from_url(url) {
        Ok(MediaInput::Bytes { data, .. }) => uploaded(data, param, max_bytes),
        Ok(MediaInput::Url(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(MediaInput::Url(url))
        }
        Ok(_) => Err(ApiError::invalid(
            Some(param.to_owned()),
            format!("`{param}` must be an http(s) URL or a base64 data URL"),
        )),
        Err(why) => Err(ApiError::invalid(
            Some(param.to_owned()),
            format!("`{param}`: {why}"),
        )),
    }
}

/// Uploaded bytes as a media input, if they are an image within the size limit; the MIME type
/// is the bytes' own, whatever the client declared.
pub(crate) fn uploaded(data: Bytes, param: &str, max_bytes: usize) -> Result<MediaInput, ApiError> {
    if data.len() > max_bytes {
        return Err(ApiError::invalid(
            Some(param.to_owned()),
            format!(
                "`{param}` is {} bytes; the gateway takes images up to {max_bytes} bytes",
                data.len()
            ),
        ));
    }
    let Some(mime) = sniff_image(&data) else {
        return Err(ApiError::invalid(
            Some(param.to_owned()),
            format!("`{param}` is not an image the gateway reads (PNG, JPEG, WebP or GIF)"),
        ));
    };
    Ok(MediaInput::bytes(data, mime))
}
