//! `POST /v1/videos`, `GET /v1/videos/{id}` and `GET /v1/videos/{id}/content`: OpenAI's Videos
//! API (<https://platform.openai.com/docs/api-reference/videos>) over the providers that film,
//! as jobs kept in the store.
//!
//! A create is admitted against the caller's plan (video requests and seconds, and their
//! expected cost) before the provider is called, submitted once, and stored: it answers with
//! the video object at once, `queued`. The job's reservation is the job's until it ends; its end
//! is charged once, by whichever replica sees it (`GET`, or the background poller). A job
//! belongs to its creator: another user's id answers 404.
//!
//! Create takes OpenAI's multipart form (`input_reference` a file) or JSON (`input_reference`
//! an image URL, a data URL, or `{"image_url": ...}`). `seconds` is a string, as OpenAI's; a
//! number is taken too. `size` (`1280x720`) is read as a resolution (its shorter side, `720p`)
//! and an aspect ratio (`16:9`). Gateway extensions: `resolution`, `aspect_ratio`,
//! `negative_prompt`, `seed`, `fallbacks`, `options` (provider-specific fields, checked by the
//! provider).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::TryStreamExt;
use gw_store::{JobState, NewVideoJob, Store, VideoJob};
use llm_gateway::http::UrlOrigin;
use llm_gateway::{Cost, MediaInput, VideoRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::upload::{JsonOrForm, bad_form, json_image, json_or_form, merge_options, uploaded};
use super::{call_context, model_error, set_cost, set_route, store_accepted_job};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;
use crate::video_jobs::advance_if_free;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/videos", post(create))
        .route("/v1/videos/{id}", get(retrieve))
        .route("/v1/videos/{id}/content", get(content))
}

/// A create as the client sent it, from either body form.
#[derive(Debug, Default)]
struct CreateBody {
    model: String,
    prompt: String,
    seconds: Option<String>,
    size: Option<String>,
    resolution: Option<String>,
    aspect_ratio: Option<String>,
    negative_prompt: Option<String>,
    seed: Option<i64>,
    image: Option<MediaInput>,
    fallbacks: Vec<String>,
    options: Map<String, Value>,
}

/// The JSON form of a create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateJson {
    model: String,
    prompt: String,
    /// OpenAI's is a string (`"8"`); a number is taken too.
    #[serde(default)]
    seconds: Option<Value>,
    #[serde(default)]
    size: Option<String>,
    /// A URL or data URL of the first frame, or `{"image_url": ...}`.
    #[serde(default)]
    input_reference: Option<Value>,
    #[serde(default)]
    resolution: Option<String>,
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
}

impl CreateJson {
    fn into_body(self, max_bytes: usize) -> Result<CreateBody, ApiError> {
        let seconds = match self.seconds {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                return Err(ApiError::invalid(
                    Some("seconds".into()),
                    "`seconds` must be a whole number of seconds, like \"8\"",
                ));
            }
        };
        let image = self
            .input_reference
            .as_ref()
            .map(|v| json_image(v, "input_reference", max_bytes))
            .transpose()?;
        Ok(CreateBody {
            model: self.model,
            prompt: self.prompt,
            seconds,
            size: self.size,
            resolution: self.resolution,
            aspect_ratio: self.aspect_ratio,
            negative_prompt: self.negative_prompt,
            seed: self.seed,
            image,
            fallbacks: self.fallbacks,
            options: self.options,
        })
    }
}

/// The multipart form of a create, OpenAI's.
async fn multipart_body(mut form: Multipart, max_bytes: usize) -> Result<CreateBody, ApiError> {
    let mut body = CreateBody::default();
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "input_reference" {
            let data = field.bytes().await.map_err(bad_form)?;
            body.image = Some(uploaded(data, "input_reference", max_bytes)?);
            continue;
        }
        let text = field.text().await.map_err(bad_form)?;
        match name.as_str() {
            "model" => body.model = text,
            "prompt" => body.prompt = text,
            "seconds" => body.seconds = Some(text),
            "size" => body.size = Some(text),
            "resolution" => body.resolution = Some(text),
            "aspect_ratio" => body.aspect_ratio = Some(text),
            "negative_prompt" => body.negative_prompt = Some(text),
            "seed" => {
                body.seed = Some(text.trim().parse().map_err(|_| {
                    ApiError::invalid(Some("seed".into()), "`seed` must be a whole number")
                })?);
            }
            "fallbacks" | "fallbacks[]" => body.fallbacks.push(text),
            "options" => merge_options(&mut body.options, &text)?,
            _ => {
                return Err(ApiError::invalid(
                    Some(name.clone()),
                    format!("unknown field `{name}`"),
                ));
            }
        }
    }
    Ok(body)
}

/// `WIDTHxHEIGHT` as a resolution (the shorter side: `1280x720` is `720p`) and an aspect ratio
/// (`16:9`).
fn size_parts(size: &str) -> Result<(String, String), ApiError> {
    let parsed = size.trim().split_once('x').and_then(|(w, h)| {
        let (w, h) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
        (w > 0 && h > 0).then_some((w, h))
    });
    let Some((w, h)) = parsed else {
        return Err(ApiError::invalid(
            Some("size".into()),
            format!("`size` must be `WIDTHxHEIGHT`, like `1280x720`, not `{size}`"),
        ));
    };
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    // Video sizes are rounded to multiples of 16 (832x480 is "16:9"): the nearest common ratio
    // within 5% names the shape, else the exact one.
    const COMMON: [(u32, u32); 7] = [(16, 9), (9, 16), (1, 1), (4, 3), (3, 4), (21, 9), (9, 21)];
    let ratio = f64::from(w) / f64::from(h);
    let aspect = COMMON
        .iter()
        .find(|(a, b)| (ratio / (f64::from(*a) / f64::from(*b)) - 1.0).abs() < 0.05)
        .map(|(a, b)| format!("{a}:{b}"))
        .unwrap_or_else(|| {
            let g = gcd(w, h);
            format!("{}:{}", w / g, h / g)
        });
    Ok((format!("{}p", w.min(h)), aspect))
}

impl CreateBody {
    /// The core request, or a 400 naming the field at fault.
    fn to_core(&self) -> Result<VideoRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("model".into()),
                "`model` must not be empty",
            ));
        }
        if self.prompt.trim().is_empty() {
            return Err(ApiError::invalid(
                Some("prompt".into()),
                "`prompt` must not be empty",
            ));
        }
        let mut req = VideoRequest::new(self.model.clone(), self.prompt.clone());
        if let Some(seconds) = &self.seconds {
            let n = seconds
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0 && *n <= 3600);
            req.duration_secs = Some(n.ok_or_else(|| {
                ApiError::invalid(
                    Some("seconds".into()),
                    format!("`seconds` must be a whole number of seconds, not `{seconds}`"),
                )
            })?);
        }
        if let Some(size) = &self.size {
            let (resolution, aspect) = size_parts(size)?;
            req.resolution = Some(resolution);
            req.aspect_ratio = Some(aspect);
        }
        if let Some(resolution) = &self.resolution {
            if self.size.is_some() {
                return Err(ApiError::invalid(
                    Some("resolution".into()),
                    "give `size` or `resolution`, not both",
                ));
            }
            req.resolution = Some(resolution.clone());
        }
        if let Some(aspect) = &self.aspect_ratio {
            if self.size.is_some() {
                return Err(ApiError::invalid(
                    Some("aspect_ratio".into()),
                    "give `size` or `aspect_ratio`, not both",
                ));
            }
            req.aspect_ratio = Some(aspect.clone());
        }
        req.negative_prompt = self.negative_prompt.clone();
        req.seed = self.seed;
        req.image = self.image.clone();
        req.options = self.options.clone();
        Ok(req)
    }
}

/// The store, or a 404 saying video jobs need one.
fn store_of(state: &AppState) -> Result<&Store, ApiError> {
    state.store().ok_or_else(|| {
        ApiError::off("video jobs are kept in the store: this gateway runs without one")
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no video `{id}`")).with_code("video_not_found")
}

async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?.clone();
    let headers = request.headers().clone();
    let max_bytes = state.max_image_bytes();
    let body = match json_or_form::<CreateJson>(request, &state, "a video").await? {
        JsonOrForm::Json(body) => body.into_body(max_bytes)?,
        JsonOrForm::Form(form) => multipart_body(form, max_bytes).await?,
    };
    let req = body.to_core()?;
    let user_id = caller.user_id.clone();
    let call = call_context(&ctx, caller, &headers, &body.fallbacks)?;
    let submitted = state
        .gateway()
        .submit_video_with(&call, req.clone())
        .await
        .map_err(|e| model_error(&state, &body.model, e))?;
    let new = NewVideoJob {
        user_id: user_id.to_string(),
        request_id: ctx.id.clone(),
        route: submitted.route.clone(),
        provider_job_id: submitted.job.0.clone(),
        seconds: req
            .duration_secs
            .map(u64::from)
            .or(Some(submitted.estimate.units).filter(|u| *u > 0)),
        size: body.size.clone(),
        resolution: req.resolution.clone(),
        prompt: req.prompt.clone(),
        reservation_id: submitted.reservation.as_ref().map(|r| r.id.clone()),
        estimate: submitted.estimate.cost,
        retries: submitted.retries,
    };
    let storing = store.clone();
    let job = store_accepted_job(
        "video",
        &ctx,
        &submitted.job,
        &submitted.route,
        async move { storing.create_video_job(new).await },
    )
    .await?;
    Ok(respond(&job))
}

async fn retrieve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let job = store
        .video_job(&id, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    // Asked of the provider only under the job's lease: a replica polling it already is not
    // raced, and its owner sees the job as stored meanwhile.
    let lease = Duration::from_millis(state.video_jobs().settings.lease_ms);
    let job = advance_if_free(state.gateway(), store, job, lease).await?;
    Ok(respond(&job))
}

/// `variant`: OpenAI offers `video`, `thumbnail` and `spritesheet`; the providers here make the
/// video alone.
#[derive(Debug, Deserialize)]
struct ContentQuery {
    #[serde(default)]
    variant: Option<String>,
}

async fn content(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<ContentQuery>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    if let Some(variant) = query.variant.as_deref().filter(|v| *v != "video") {
        return Err(ApiError::invalid(
            Some("variant".into()),
            format!("only the `video` variant is available, not `{variant}`"),
        ));
    }
    let job = store
        .video_job(&id, &caller.user_id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let url = match (job.status, &job.output_url) {
        (JobState::Completed, Some(url)) => url.clone(),
        (status, _) => {
            return Err(ApiError::invalid(
                None,
                format!(
                    "video `{id}` is {}: its content is available once it is completed",
                    status.as_str()
                ),
            ));
        }
    };
    let (body, mime) = if url.starts_with("data:") {
        match MediaInput::from_url(&url) {
            Ok(MediaInput::Bytes { data, mime }) => (Body::from(data), Some(mime)),
            _ => return Err(ApiError::internal("the stored video cannot be read")),
        }
    } else {
        let route = state
            .gateway()
            .route(&job.route_name())
            .map_err(ApiError::from)?;
        let downloader = state
            .video_jobs()
            .downloader(route.provider)
            .ok_or_else(|| ApiError::internal("no downloader for video content"))?;
        // Passed on as it arrives, never held whole. What is refused before the first byte (a
        // declared length over the limit, the provider's error status) is an error answer; what
        // fails once the status is sent (the limit passed, the link broken off) ends the body
        // with an error, so the client sees a broken transfer, never a short video as if whole.
        let (chunks, mime) = downloader
            .stream(&url, UrlOrigin::Provider(route.provider))
            .await?;
        let video = id.clone();
        let chunks = chunks.inspect_err(move |e| {
            tracing::warn!(video = %video, error = %e, "a video's content broke off");
        });
        (Body::from_stream(chunks), mime)
    };
    let mime = mime
        .filter(|m| m.starts_with("video/") || m == "application/octet-stream")
        .unwrap_or_else(|| "video/mp4".into());
    let mut response = Response::new(body);
    if let Ok(v) = HeaderValue::from_str(&mime) {
        response.headers_mut().insert(CONTENT_TYPE, v);
    }
    decorate(&mut response, &job);
    Ok(response)
}

/// OpenAI's video object.
#[derive(Serialize)]
struct VideoObject {
    id: String,
    object: &'static str,
    created_at: i64,
    status: &'static str,
    model: String,
    /// Always an integer in OpenAI's object ("approximate completion percentage"): 0 while
    /// nothing is known (queued, or a provider that reports no percentage), 100 once completed.
    progress: u8,
    seconds: Option<String>,
    size: Option<String>,
    completed_at: Option<i64>,
    expires_at: Option<i64>,
    error: Option<VideoError>,
    remixed_from_video_id: Option<String>,
    prompt: String,
}

#[derive(Serialize)]
struct VideoError {
    code: String,
    message: String,
}

fn respond(job: &VideoJob) -> Response {
    let progress = match job.status {
        JobState::Completed => 100,
        JobState::Queued => 0,
        _ => job.progress.unwrap_or(0).min(100),
    };
    let object = VideoObject {
        id: job.id.clone(),
        object: "video",
        created_at: job.created_at / 1000,
        status: job.status.as_str(),
        model: job.route_name(),
        progress,
        seconds: job.seconds.map(|s| s.to_string()),
        size: job.size.clone(),
        completed_at: job.completed_at.map(|t| t / 1000),
        expires_at: None,
        error: job.error.as_ref().map(|e| VideoError {
            code: e.code.clone(),
            message: e.message.clone(),
        }),
        remixed_from_video_id: None,
        prompt: job.prompt.clone(),
    };
    let mut response = Json(object).into_response();
    decorate(&mut response, job);
    response
}

/// The route and cost headers of a job: what it was charged once settled, what is reserved for
/// it until then.
fn decorate(response: &mut Response, job: &VideoJob) {
    let cost: Option<Cost> = if job.settled { job.cost } else { job.estimate };
    set_cost(response, cost);
    if let Ok(route) = llm_gateway::RouteId::parse(&job.route_name(), |p| {
        llm_gateway::COMPILED_PROVIDERS
            .iter()
            .copied()
            .find(|c| *c == p)
    }) {
        set_route(response, &route);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_gateway::encode_base64;
    use serde_json::json;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn create(v: Value) -> Result<VideoRequest, ApiError> {
        serde_json::from_value::<CreateJson>(v)
            .unwrap()
            .into_body(1024)?
            .to_core()
    }

    #[test]
    fn openai_fields_and_extensions_map_to_the_request() {
        let data_url = format!("data:image/png;base64,{}", encode_base64(PNG));
        let req = create(json!({
            "model": "wavespeed/wavespeed-ai/hunyuan-video-1.5/text-to-video",
            "prompt": "a fox", "seconds": "8", "size": "1280x720",
            "negative_prompt": "blur", "seed": 3, "options": {"k": 1},
            "input_reference": {"image_url": data_url}
        }))
        .unwrap();
        assert_eq!(req.duration_secs, Some(8));
        assert_eq!(req.resolution.as_deref(), Some("720p"));
        assert_eq!(req.aspect_ratio.as_deref(), Some("16:9"));
        assert_eq!(req.negative_prompt.as_deref(), Some("blur"));
        assert_eq!(req.seed, Some(3));
        assert_eq!(req.options["k"], 1);
        assert_eq!(req.image, Some(MediaInput::bytes(PNG, "image/png")));
        let req = create(json!({"model": "m/x", "prompt": "p", "seconds": 5,
                                "resolution": "480p", "input_reference": "https://x/a.png"}))
        .unwrap();
        assert_eq!(
            (req.duration_secs, req.resolution.as_deref()),
            (Some(5), Some("480p"))
        );
        assert_eq!(req.image, Some(MediaInput::Url("https://x/a.png".into())));
        assert_eq!(
            size_parts("720x1280").unwrap(),
            ("720p".into(), "9:16".into())
        );
        assert_eq!(
            size_parts("832x480").unwrap(),
            ("480p".into(), "16:9".into())
        );
        assert_eq!(
            size_parts("1000x300").unwrap(),
            ("300p".into(), "10:3".into())
        );
    }

    #[test]
    fn a_bad_create_is_refused_by_name() {
        let not_png = format!("data:image/png;base64,{}", encode_base64(b"%PDF-1.7"));
        for (body, param) in [
            (json!({"model": "", "prompt": "p"}), "model"),
            (json!({"model": "m/x", "prompt": " "}), "prompt"),
            (
                json!({"model": "m/x", "prompt": "p", "seconds": "eight"}),
                "seconds",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "seconds": [8]}),
                "seconds",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "size": "big"}),
                "size",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "size": "1280x720", "resolution": "480p"}),
                "resolution",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "input_reference": not_png}),
                "input_reference",
            ),
            (
                json!({"model": "m/x", "prompt": "p", "input_reference": "ftp://x/a.png"}),
                "input_reference",
            ),
        ] {
            let err = create(body.clone()).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
            assert_eq!(err.status.as_u16(), 400);
        }
        assert!(
            serde_json::from_value::<CreateJson>(json!({"model": "m", "prompt": "p", "fps": 1}))
                .is_err()
        );
    }
}
