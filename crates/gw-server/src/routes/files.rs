//! `POST /v1/files`, `GET /v1/files`, `GET /v1/files/{id}`, `DELETE /v1/files/{id}` and
//! `GET /v1/files/{id}/content`: OpenAI's Files API
//! (<https://platform.openai.com/docs/api-reference/files>) for fine-tuning data, kept in the
//! gateway's media storage and visible to their owner only (another user's id answers 404).
//!
//! The gateway trains LoRAs on images, so a `fine-tune` file is a zip of images (with optional
//! `.txt` captions of the same base name), checked when it is uploaded. A client that hosts its
//! zip already may create the file from its URL instead (JSON `{"purpose": "fine-tune", "url":
//! "https://..."}`, a gateway extension). The trained LoRAs come back as files of purpose
//! `fine-tune-results`.

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::{Bytes, BytesMut};
use gw_store::{NewFile, Store, StoredFile};
use serde::{Deserialize, Serialize};

use super::upload::{JsonOrForm, bad_form, json_or_form};
use crate::app::{AppState, Caller};
use crate::error::ApiError;
use crate::media::Media;

/// The purpose of training data.
pub(crate) const FINE_TUNE: &str = "fine-tune";
/// The purpose of what a job produced (the trained LoRA).
pub(crate) const FINE_TUNE_RESULTS: &str = "fine-tune-results";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/files",
            // A zip of training images is larger than chat bodies: the upload is held to
            // `[media] max_file_bytes` as it is read instead.
            post(create)
                .layer(axum::extract::DefaultBodyLimit::disable())
                .get(list),
        )
        .route("/v1/files/{id}", get(retrieve).delete(delete))
        .route("/v1/files/{id}/content", get(content))
}

/// The store and the media storage, or a 404 saying files need them.
pub(crate) fn storage(state: &AppState) -> Result<(&Store, &Media), ApiError> {
    match (state.store(), state.media()) {
        (Some(store), Some(media)) => Ok((store, media)),
        _ => Err(ApiError::off(
            "files are kept in the store and its media storage: this gateway runs without one",
        )),
    }
}

pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no file `{id}`")).with_code("file_not_found")
}

/// The JSON form of a create: a zip the client hosts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateJson {
    purpose: String,
    url: String,
    #[serde(default)]
    filename: Option<String>,
}

/// What a create carried, from either form.
#[derive(Default)]
struct Upload {
    purpose: Option<String>,
    file: Option<(String, Bytes)>,
    url: Option<String>,
    /// The name to list a file created by URL under.
    filename: Option<String>,
}

async fn multipart_upload(mut form: Multipart, max_bytes: usize) -> Result<Upload, ApiError> {
    let mut upload = Upload::default();
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let filename = field.file_name().unwrap_or("upload.zip").to_owned();
                let mut data = BytesMut::new();
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    if data.len() + chunk.len() > max_bytes {
                        let mut e = ApiError::invalid(
                            Some("file".into()),
                            format!("the file is larger than the {max_bytes} bytes allowed"),
                        );
                        e.status = axum::http::StatusCode::PAYLOAD_TOO_LARGE;
                        return Err(e);
                    }
                    data.extend_from_slice(&chunk);
                }
                upload.file = Some((filename, data.freeze()));
            }
            "purpose" => upload.purpose = Some(field.text().await.map_err(bad_form)?),
            "url" => upload.url = Some(field.text().await.map_err(bad_form)?),
            other => {
                // `expires_after[...]` included: files here do not expire; delete them instead.
                return Err(ApiError::invalid(
                    Some(other.to_owned()),
                    format!("`{other}` is not supported here"),
                ));
            }
        }
    }
    Ok(upload)
}

/// Whether `data` is a zip archive, and how many images it holds, from its central directory
/// (<https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>, 4.3.12 and 4.3.16). `None`
/// when it is not a zip that can be read.
pub(crate) fn zip_images(data: &[u8]) -> Option<usize> {
    const END: u32 = 0x0605_4b50;
    const ENTRY: u32 = 0x0201_4b50;
    let u16_at = |at: usize| -> Option<usize> {
        Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?) as usize)
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
    };
    if !data.starts_with(b"PK\x03\x04") || data.len() < 22 {
        return None;
    }
    // The end record is in the last 22 + 65535 (comment) bytes.
    let lowest = data.len().saturating_sub(22 + 65_535);
    let end = (lowest..=data.len() - 22)
        .rev()
        .find(|&at| u32_at(at) == Some(END))?;
    let entries = u16_at(end + 10)?;
    let mut at = u32_at(end + 16)? as usize;
    let mut images = 0;
    for _ in 0..entries {
        if u32_at(at)? != ENTRY {
            return None;
        }
        let name_len = u16_at(at + 28)?;
        let rest = name_len + u16_at(at + 30)? + u16_at(at + 32)?;
        let name = String::from_utf8_lossy(data.get(at + 46..at + 46 + name_len)?).to_lowercase();
        let hidden = name.starts_with("__macosx/") || name.rsplit('/').next()?.starts_with('.');
        if !hidden
            && [".jpg", ".jpeg", ".png", ".webp"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            images += 1;
        }
        at += 46 + rest;
    }
    Some(images)
}

/// A file name safe to show and to put in a header: its last path segment, printable ASCII.
fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '"' | ';'))
        .take(200)
        .collect();
    if cleaned.trim().is_empty() {
        "upload.zip".into()
    } else {
        cleaned
    }
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let (store, media) = storage(&state)?;
    let upload = match json_or_form::<CreateJson>(request, &state, "a file").await? {
        JsonOrForm::Json(body) => Upload {
            purpose: Some(body.purpose),
            file: None,
            url: Some(body.url),
            filename: body.filename,
        },
        JsonOrForm::Form(form) => multipart_upload(form, media.max_file_bytes()).await?,
    };
    let purpose = upload
        .purpose
        .ok_or_else(|| ApiError::invalid(Some("purpose".into()), "`purpose` is required"))?;
    if purpose != FINE_TUNE {
        return Err(ApiError::invalid(
            Some("purpose".into()),
            format!(
                "files here are training data for fine-tuning: `purpose` must be `{FINE_TUNE}`, not `{purpose}`"
            ),
        ));
    }
    let new = match (upload.file, upload.url) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                Some("url".into()),
                "give `file` or `url`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                Some("file".into()),
                "`file` is required: a zip of training images (or `url`, a zip you host)",
            ));
        }
        (Some((filename, data)), None) => {
            let filename = clean_filename(&filename);
            match zip_images(&data) {
                None => {
                    return Err(ApiError::invalid(
                        Some("file".into()),
                        format!(
                            "`{filename}` is not a zip archive: training data is a zip of images, with optional .txt captions"
                        ),
                    ));
                }
                Some(0) => {
                    return Err(ApiError::invalid(
                        Some("file".into()),
                        format!("`{filename}` holds no image (.jpg, .jpeg, .png or .webp)"),
                    ));
                }
                Some(_) => {}
            }
            let key = gw_store::random_id("files/upload-", 24)?;
            let bytes = data.len() as u64;
            media.put(&key, data).await?;
            NewFile {
                user_id: caller.user_id.to_string(),
                purpose,
                filename,
                bytes,
                content_type: "application/zip".into(),
                storage_key: Some(key),
                url: None,
            }
        }
        (None, Some(url)) => {
            let parsed = reqwest::Url::parse(url.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some());
            let Some(parsed) = parsed else {
                return Err(ApiError::invalid(
                    Some("url".into()),
                    "`url` must be an http(s) URL of a zip the provider can fetch",
                ));
            };
            // Listed under the name given, else the URL's last segment.
            let filename = upload
                .filename
                .or_else(|| parsed.path_segments()?.next_back().map(str::to_owned))
                .map(|s| clean_filename(&s))
                .unwrap_or_else(|| "dataset.zip".into());
            NewFile {
                user_id: caller.user_id.to_string(),
                purpose,
                filename,
                bytes: 0,
                content_type: "application/zip".into(),
                storage_key: None,
                url: Some(parsed.to_string()),
            }
        }
    };
    let key = new.storage_key.clone();
    match store.create_file(new).await {
        Ok(file) => Ok(Json(FileObject::of(&file)).into_response()),
        Err(e) => {
            if let Some(key) = key {
                let _ = media.delete(&key).await;
            }
            Err(ApiError::from(e))
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let (store, _) = storage(&state)?;
    let limit = query.limit.unwrap_or(10_000).clamp(1, 10_000);
    // One more than asked, to tell whether there are more.
    let mut files = store
        .files(&caller.user_id, query.purpose.as_deref(), limit + 1)
        .await?;
    let has_more = files.len() > limit as usize;
    files.truncate(limit as usize);
    Ok(Json(serde_json::json!({
        "object": "list",
        "data": files.iter().map(FileObject::of).collect::<Vec<_>>(),
        "has_more": has_more,
    }))
    .into_response())
}

async fn retrieve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, _) = storage(&state)?;
    let file = store
        .file(&id, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(FileObject::of(&file)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, media) = storage(&state)?;
    let file = store
        .delete_file(&id, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    // A trained LoRA stays where it is: the fine-tuned model that uses it goes on working.
    if let (Some(key), true) = (&file.storage_key, file.purpose == FINE_TUNE) {
        media.delete(key).await?;
    }
    Ok(Json(serde_json::json!({"id": file.id, "object": "file", "deleted": true})).into_response())
}

async fn content(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, media) = storage(&state)?;
    let file = store
        .file(&id, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let Some(key) = &file.storage_key else {
        return Err(ApiError::invalid(
            None,
            format!(
                "file `{id}` is hosted by its owner at {}: the gateway keeps no copy",
                file.url.as_deref().unwrap_or("its URL")
            ),
        ));
    };
    let data = media
        .get(key)
        .await?
        .ok_or_else(|| ApiError::internal("a stored file's bytes are missing"))?;
    let mut response = Response::new(Body::from(data));
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&file.content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.filename)) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// OpenAI's file object, with the gateway's `url` when the client hosts the file.
#[derive(Serialize)]
pub(crate) struct FileObject {
    id: String,
    object: &'static str,
    bytes: u64,
    created_at: i64,
    filename: String,
    purpose: String,
    status: &'static str,
    expires_at: Option<i64>,
    status_details: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl FileObject {
    pub(crate) fn of(file: &StoredFile) -> Self {
        Self {
            id: file.id.clone(),
            object: "file",
            bytes: file.bytes,
            created_at: file.created_at / 1000,
            filename: file.filename.clone(),
            purpose: file.purpose.clone(),
            status: "processed",
            expires_at: None,
            status_details: None,
            url: file.url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip written by Python's `zipfile` of `a.jpg`, `a.txt` and `__MACOSX/._a.jpg`.
    fn zip_of(names: &[&str]) -> Vec<u8> {
        // Stored (uncompressed) entries, empty contents: local headers, then the central
        // directory, then the end record.
        let mut out = Vec::new();
        let mut central = Vec::new();
        for name in names {
            let offset = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        let cd_len = central.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&(names.len() as u16).to_le_bytes());
        out.extend_from_slice(&cd_len.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn images_in_a_zip_are_counted_from_its_directory() {
        let zip = zip_of(&[
            "a.jpg",
            "a.txt",
            "dir/B.PNG",
            "__MACOSX/._a.jpg",
            ".hidden.png",
        ]);
        assert_eq!(zip_images(&zip), Some(2));
        assert_eq!(zip_images(&zip_of(&["notes.txt"])), Some(0));
        assert_eq!(zip_images(b"%PDF-1.7 not a zip"), None);
        // A zip cut short has no end record.
        assert_eq!(zip_images(&zip[..zip.len() - 10]), None);
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_filename("C:\\Users\\me\\photos.zip"), "photos.zip");
        assert_eq!(clean_filename("../../etc/\"x\";.zip"), "x.zip");
        assert_eq!(clean_filename(""), "upload.zip");
    }
}
