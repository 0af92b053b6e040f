//! The gateway's own media storage: files clients upload (`POST /v1/files`) and the LoRAs that
//! fine-tuning jobs trained, copied out of the provider's temporary URLs before they expire.
//!
//! Kept in a local directory by default, or in an S3-compatible bucket (`[media] bucket`,
//! through the `object_store` crate; the `s3` feature, on by default). A provider that must
//! fetch a stored object (a LoRA for an image request) gets a short-lived link: the bucket's
//! pre-signed URL, or, for a local directory, a link to this gateway's `GET /media/{key}`
//! signed with HMAC-SHA256 (`[media] public_url` says where providers reach the gateway).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Deserialize;
use sha2::Sha256;

use crate::app::AppState;
use crate::error::ApiError;

/// `[media]`: where stored files and trained LoRAs are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// The local directory (default `gateway-media`, created when missing). Ignored when
    /// `bucket` is set.
    #[serde(default = "default_dir")]
    pub dir: String,
    /// An S3-compatible bucket instead of the directory. Credentials come from the usual AWS
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    #[serde(default)]
    pub bucket: Option<String>,
    /// The bucket's region (default `AWS_REGION`, else `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// The S3 endpoint, for S3-compatible stores (MinIO, R2, ...); default AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allows a plain-HTTP endpoint (a local MinIO). Default `false`.
    #[serde(default)]
    pub allow_http: bool,
    /// The gateway's address as providers reach it (`https://gateway.example.com`), for the
    /// signed links to objects of the local directory. Without it (and without a bucket) a
    /// stored LoRA can be used only while the provider's own URL is still valid.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long a link handed to a provider is valid, in seconds (default 3600).
    #[serde(default = "default_link_ttl")]
    pub link_ttl_secs: u64,
    /// The environment variable holding the key that signs local links (default
    /// `GATEWAY_MEDIA_LINK_KEY`; at least 32 characters). Replicas must share it; when it is
    /// unset, each process signs with a random key of its own.
    #[serde(default = "default_link_key_env")]
    pub link_key_env: String,
    /// The largest file a client may upload, and the largest LoRA copied, in bytes (default
    /// 1 GiB).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: usize,
}

fn default_dir() -> String {
    "gateway-media".into()
}

fn default_link_ttl() -> u64 {
    3600
}

fn default_link_key_env() -> String {
    "GATEWAY_MEDIA_LINK_KEY".into()
}

fn default_max_file_bytes() -> usize {
    1 << 30
}

impl Default for MediaSection {
    fn default() -> Self {
        Self {
            dir: default_dir(),
            bucket: None,
            region: None,
            endpoint: None,
            allow_http: false,
            public_url: None,
            link_ttl_secs: default_link_ttl(),
            link_key_env: default_link_key_env(),
            max_file_bytes: default_max_file_bytes(),
        }
    }
}

/// The storage itself.
pub(crate) struct Media {
    /// The bucket, or the local directory once first used (it is created then, so a gateway that
    /// never stores a file leaves no directory behind).
    store: std::sync::OnceLock<Arc<dyn ObjectStore>>,
    /// The local directory, when there is no bucket.
    dir: Option<std::path::PathBuf>,
    #[cfg(feature = "s3")]
    signer: Option<Arc<object_store::aws::AmazonS3>>,
    public_url: Option<String>,
    link_key: Vec<u8>,
    link_ttl: Duration,
    max_file_bytes: usize,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("dir", &self.dir)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Where a stored object is: a key of `/`-separated segments of `[A-Za-z0-9._-]`, none of them
/// `.` or `..` (the gateway makes every key itself; a link's key is checked again).
pub(crate) fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn storage_error(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "media storage: {what} failed");
    ApiError::unavailable(format!("the gateway's media storage failed to {what}"))
}

impl Media {
    /// The storage `section` describes; an error names the field at fault.
    pub(crate) fn new(section: &MediaSection) -> Result<Self, (String, String)> {
        let link_key = match std::env::var(&section.link_key_env) {
            Ok(key) if key.len() >= 32 => key.into_bytes(),
            Ok(_) => {
                return Err((
                    "media.link_key_env".into(),
                    format!(
                        "the key in {} must be at least 32 characters",
                        section.link_key_env
                    ),
                ));
            }
            Err(_) => {
                let mut key = vec![0u8; 32];
                fastrand::fill(&mut key);
                key
            }
        };
        if let Some(url) = &section.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err((
                "media.public_url".into(),
                format!("`{url}` is not an http(s) URL"),
            ));
        }
        let public_url = section
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned());
        let common = |store: Option<Arc<dyn ObjectStore>>, dir: Option<std::path::PathBuf>| Self {
            store: store.map(std::sync::OnceLock::from).unwrap_or_default(),
            dir,
            #[cfg(feature = "s3")]
            signer: None,
            public_url: public_url.clone(),
            link_key: link_key.clone(),
            link_ttl: Duration::from_secs(section.link_ttl_secs.clamp(60, 7 * 24 * 3600)),
            max_file_bytes: section.max_file_bytes,
        };
        match &section.bucket {
            None => {
                let dir = std::path::PathBuf::from(&section.dir);
                if dir.exists() && !dir.is_dir() {
                    return Err((
                        "media.dir".to_owned(),
                        format!("`{}` is not a directory", section.dir),
                    ));
                }
                Ok(common(None, Some(dir)))
            }
            #[cfg(feature = "s3")]
            Some(bucket) => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_allow_http(section.allow_http);
                if let Some(region) = &section.region {
                    builder = builder.with_region(region);
                }
                if let Some(endpoint) = &section.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                install_tls_provider();
                let s3 = Arc::new(
                    builder
                        .build()
                        .map_err(|e| ("media.bucket".to_owned(), e.to_string()))?,
                );
                let mut media = common(Some(s3.clone()), None);
                media.signer = Some(s3);
                Ok(media)
            }
            #[cfg(not(feature = "s3"))]
            Some(_) => Err((
                "media.bucket".into(),
                "this gateway was built without the `s3` feature".into(),
            )),
        }
    }

    /// The storage, the local directory created (and opened) on first use.
    fn store(&self) -> Result<&Arc<dyn ObjectStore>, ApiError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| ApiError::internal("the media storage has no location"))?;
        std::fs::create_dir_all(dir).map_err(|e| storage_error("create its directory", e))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| storage_error("open its directory", e))?;
        // Another request may have opened it meanwhile: either is the same directory.
        Ok(self.store.get_or_init(|| Arc::new(local)))
    }

    /// The largest upload, in bytes.
    pub(crate) fn max_file_bytes(&self) -> usize {
        self.max_file_bytes
    }

    /// Stores `data` at `key`.
    pub(crate) async fn put(&self, key: &str, data: Bytes) -> Result<(), ApiError> {
        debug_assert!(valid_key(key), "{key}");
        self.store()?
            .put(&StorePath::from(key), PutPayload::from_bytes(data))
            .await
            .map(drop)
            .map_err(|e| storage_error("store a file", e))
    }

    /// The bytes at `key`; `None` when nothing is stored there.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, ApiError> {
        match self.store()?.get(&StorePath::from(key)).await {
            Ok(found) => found
                .bytes()
                .await
                .map(Some)
                .map_err(|e| storage_error("read a file", e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error("read a file", e)),
        }
    }

    /// Deletes what is at `key` (nothing there is fine).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), ApiError> {
        match self.store()?.delete(&StorePath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error("delete a file", e)),
        }
    }

    /// A short-lived URL a provider can fetch `key` at: the bucket's pre-signed URL, or this
    /// gateway's signed `/media/` link when `public_url` is set; `None` when neither exists.
    pub(crate) async fn link(&self, key: &str) -> Result<Option<String>, ApiError> {
        #[cfg(feature = "s3")]
        if let Some(signer) = &self.signer {
            use object_store::signer::Signer;
            let url = signer
                .signed_url(
                    object_store::signer::Method::GET,
                    &StorePath::from(key),
                    self.link_ttl,
                )
                .await
                .map_err(|e| storage_error("sign a link", e))?;
            return Ok(Some(url.to_string()));
        }
        let Some(base) = &self.public_url else {
            return Ok(None);
        };
        let expires = crate::app::RequestContext::unix_now() + self.link_ttl.as_secs();
        Ok(Some(format!(
            "{base}/media/{key}?expires={expires}&signature={}",
            self.signature(key, expires)
        )))
    }

    fn mac(&self, key: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.link_key)
            .expect("HMAC takes a key of any length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    fn signature(&self, key: &str, expires: u64) -> String {
        self.mac(key, expires)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `signature` signs `key` until `expires`, and `expires` has not passed.
    pub(crate) fn verify(&self, key: &str, expires: u64, signature: &str) -> bool {
        if expires < crate::app::RequestContext::unix_now() || signature.len() != 64 {
            return false;
        }
        let Some(bytes) = (0..32)
            .map(|i| u8::from_str_radix(signature.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        // Compared in constant time by the MAC.
        self.mac(key, expires).verify_slice(&bytes).is_ok()
    }
}

/// object_store's S3 client speaks TLS through rustls without a built-in crypto provider (so
/// that aws-lc is not built), and other reqwest 0.13 clients in the process (the OTLP exporter's)
/// then share that build of rustls: the process's default provider is ring, as for the other
/// clients. Safe to call more than once.
pub(crate) fn install_tls_provider() {
    #[cfg(feature = "s3")]
    {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// `GET /media/{key}?expires=&signature=`: a stored object, to whoever holds a valid link (the
/// provider fetching a LoRA). No gateway key: the signature is the permission.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/media/{*key}", get(serve))
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    expires: Option<u64>,
    signature: Option<String>,
}

async fn serve(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<LinkQuery>,
) -> Result<Response, ApiError> {
    let media = state
        .media()
        .ok_or_else(|| ApiError::not_found("no media storage here"))?;
    let (Some(expires), Some(signature)) = (query.expires, query.signature.as_deref()) else {
        return Err(ApiError::not_found("no such object"));
    };
    // Every refusal looks the same: a link that is wrong, expired or for nothing.
    if !valid_key(&key) || !media.verify(&key, expires, signature) {
        return Err(ApiError::not_found(
            "no such object, or the link has expired",
        ));
    }
    let data = media
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found("no such object, or the link has expired"))?;
    let mut response = Response::new(Body::from(data));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(dir: &std::path::Path, public_url: Option<&str>) -> Media {
        Media::new(&MediaSection {
            dir: dir.display().to_string(),
            public_url: public_url.map(str::to_owned),
            link_key_env: "GATEWAY_TEST_UNSET_LINK_KEY".into(),
            ..MediaSection::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn files_round_trip_in_a_local_directory() {
        let dir = std::env::temp_dir().join(format!("gw-media-{}", fastrand::u64(..)));
        let media = local(&dir, None);
        media
            .put("loras/ftjob-1.safetensors", Bytes::from_static(b"weights"))
            .await
            .unwrap();
        assert!(dir.join("loras/ftjob-1.safetensors").exists());
        assert_eq!(
            media.get("loras/ftjob-1.safetensors").await.unwrap(),
            Some(Bytes::from_static(b"weights"))
        );
        assert_eq!(media.get("loras/none").await.unwrap(), None);
        // Without a public address a local object has no link.
        assert_eq!(media.link("loras/ftjob-1.safetensors").await.unwrap(), None);
        media.delete("loras/ftjob-1.safetensors").await.unwrap();
        media.delete("loras/ftjob-1.safetensors").await.unwrap();
        assert_eq!(media.get("loras/ftjob-1.safetensors").await.unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn links_are_signed_for_one_key_until_they_expire() {
        let dir = std::env::temp_dir().join(format!("gw-media-{}", fastrand::u64(..)));
        let media = local(&dir, Some("https://gw.example/"));
        let link = media.link("loras/a.safetensors").await.unwrap().unwrap();
        let (path, query) = link.split_once('?').unwrap();
        assert_eq!(path, "https://gw.example/media/loras/a.safetensors");
        let params: std::collections::HashMap<_, _> =
            query.split('&').filter_map(|p| p.split_once('=')).collect();
        let expires: u64 = params["expires"].parse().unwrap();
        let signature = params["signature"];
        assert!(media.verify("loras/a.safetensors", expires, signature));
        assert!(!media.verify("loras/b.safetensors", expires, signature));
        assert!(!media.verify("loras/a.safetensors", expires + 1, signature));
        assert!(!media.verify("loras/a.safetensors", 1, signature));
        assert!(!media.verify("loras/a.safetensors", expires, "zz"));
        // Another process's key signs differently.
        let other = local(&dir, Some("https://gw.example"));
        assert!(!other.verify("loras/a.safetensors", expires, signature));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn keys_and_settings_are_checked() {
        for ok in ["files/file-abc", "loras/ftjob-x.safetensors"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["", "../x", "a//b", "a/./b", "a b", "a/%2e%2e", "/x"] {
            assert!(!valid_key(bad), "{bad}");
        }
        let err = Media::new(&MediaSection {
            public_url: Some("gw.example".into()),
            dir: std::env::temp_dir().display().to_string(),
            ..MediaSection::default()
        })
        .unwrap_err();
        assert_eq!(err.0, "media.public_url");
    }
}
