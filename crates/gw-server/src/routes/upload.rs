//! Images that requests carry in, shared by the routes that take them (image edits, the first
//! frame of a video): as an upload, or in JSON as a URL or data URL.

use axum::body::Bytes;
use llm_gateway::{MediaInput, sniff_image};
use serde_json::Value;

use crate::error::ApiError;

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
