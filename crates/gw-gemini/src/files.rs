//! The Files API's resumable upload (<https://ai.google.dev/api/files#method:-media.upload>,
//! the protocol the official SDK's `files.upload` speaks): audio too large to send inline is
//! uploaded first, then named by its URI in the prompt.
//!
//! Uploaded files are not deleted by the gateway: the Files API keeps them 48 hours
//! (<https://ai.google.dev/gemini-api/docs/files>) and then deletes them itself.

use bytes::Bytes;
use gateway_core::http::reqwest::Url;
use gateway_core::http::{read_json, send};
use gateway_core::{Error, ErrorKind, Result};

use crate::error::classify;
use crate::{GeminiClient, PROVIDER, wire};

/// Where an upload starts.
const UPLOAD_PATH: &str = "/upload/v1beta/files";

/// The answer header that holds the URL the bytes go to.
const UPLOAD_URL_HEADER: &str = "x-goog-upload-url";

/// The path and query of the upload URL Gemini answered with, sent to the configured base URL
/// rather than to whatever host the answer names: the key goes nowhere else (the upload URL is
/// on the API's own host, `https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=...`).
pub(crate) fn upload_path(url: &str) -> Option<String> {
    let url = Url::parse(url)
        .or_else(|_| Url::parse("http://base.invalid")?.join(url))
        .ok()?;
    let path = url.path();
    if !path.starts_with("/upload/") {
        return None;
    }
    Some(match url.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    })
}

fn decode(message: impl Into<String>) -> Error {
    Error::decode(message).with_provider(PROVIDER)
}

impl GeminiClient {
    /// Uploads `data` of type `mime`; the file's URI, for `fileData.fileUri`.
    pub(crate) async fn upload(&self, data: Bytes, mime: &str) -> Result<String> {
        let start = wire::UploadStart {
            file: wire::UploadMetadata {
                display_name: "llm-gateway audio".to_owned(),
            },
        };
        let body = serde_json::to_vec(&start)
            .map_err(|e| decode(format!("cannot encode the upload: {e}")))?;
        let request = self
            .upstream()
            .post(UPLOAD_PATH)
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header(
                "X-Goog-Upload-Header-Content-Length",
                data.len().to_string(),
            )
            .header("X-Goog-Upload-Header-Content-Type", mime)
            .header("Content-Type", "application/json")
            .body(body);
        tracing::debug!(
            provider = PROVIDER,
            bytes = data.len(),
            "Files API upload start"
        );
        let response = send(PROVIDER, request, classify).await?;
        let url = response
            .headers()
            .get(UPLOAD_URL_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                decode("the Files API answered the upload start without an upload URL")
            })?;
        let path = upload_path(url).ok_or_else(|| {
            decode("the Files API answered an upload URL that is not an upload path")
        })?;
        let request = self
            .upstream()
            .post(&path)
            .header("X-Goog-Upload-Command", "upload, finalize")
            .header("X-Goog-Upload-Offset", "0")
            .body(data);
        let response = send(PROVIDER, request, classify).await?;
        let answer: wire::UploadResponse = read_json(PROVIDER, response).await?;
        let file = answer
            .file
            .ok_or_else(|| decode("the Files API answered the upload without a file"))?;
        if file.state.as_deref() == Some("FAILED") {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "the Files API could not process the uploaded audio",
            )
            .with_provider(PROVIDER)
            .with_param("file"));
        }
        file.uri
            .filter(|u| !u.is_empty())
            .ok_or_else(|| decode("the Files API answered the upload without a file URI"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_url_keeps_only_its_path_and_query() {
        assert_eq!(
            upload_path(
                "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=AB-c_1&upload_protocol=resumable"
            )
            .as_deref(),
            Some("/upload/v1beta/files?upload_id=AB-c_1&upload_protocol=resumable")
        );
        assert_eq!(
            upload_path("https://evil.example/upload/v1beta/files?upload_id=1").as_deref(),
            Some("/upload/v1beta/files?upload_id=1")
        );
        assert_eq!(
            upload_path("/upload/v1beta/files?upload_id=2").as_deref(),
            Some("/upload/v1beta/files?upload_id=2")
        );
        assert_eq!(upload_path("https://x.example/v1beta/models"), None);
    }
}
