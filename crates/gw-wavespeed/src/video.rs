//! [`VideoModel`] on WaveSpeed's tasks: text-to-video and image-to-video, checked against a
//! per-model table before any IO, submitted once, polled one read at a time.
//!
//! Each entry is read from the model's documentation, cited on the entry; what the pages could
//! not confirm says "unverified". A model missing from the table is served with a generic
//! mapping and cannot be checked before the call.

use std::time::Duration;

use gateway_core::{
    Billing, Error, ErrorKind, JobId, JobStatus, MediaOutput, Result, Usage, VideoModel,
    VideoOutput, VideoRequest, per_second_billing,
};
use serde_json::{Map, Value, json};

use crate::convert::media_value;
use crate::job::{Prediction, valid_model_path};
use crate::{PROVIDER, WaveSpeedClient};

/// How a model takes the frame's resolution and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `size` as `"WIDTH*HEIGHT"`: one per (resolution, aspect ratio) pair.
    Size(&'static [(&'static str, &'static str, &'static str)]),
    /// `resolution` (`480p`, `720p`); the shape follows the input image.
    Resolution,
    /// One resolution, no field for it.
    Fixed,
}

/// One video model of WaveSpeed's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoSpec {
    pub id: &'static str,
    /// Takes a first frame (`image`, required); else text-to-video, which takes none.
    pub image: bool,
    /// The durations it offers, in seconds, through `duration`.
    pub durations: &'static [u32],
    /// The duration it makes when none is asked (sent explicitly, so the bill is known).
    pub default_duration: u32,
    /// The resolutions it offers.
    pub resolutions: &'static [&'static str],
    /// The resolution it makes when none is asked (sent explicitly where there is a field).
    pub default_resolution: &'static str,
    pub shape: Shape,
    /// The aspect ratio used for `size` when none is asked.
    pub default_aspect: &'static str,
    /// Takes `seed`.
    pub seed: bool,
    /// Takes `negative_prompt`.
    pub negative_prompt: bool,
    /// Its other documented fields, passed on from `options`.
    pub options: &'static [&'static str],
}

impl VideoSpec {
    fn is_known(&self) -> bool {
        !self.id.is_empty()
    }

    fn aspects(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if let Shape::Size(sizes) = self.shape {
            for (_, aspect, _) in sizes {
                if !out.contains(aspect) {
                    out.push(*aspect);
                }
            }
        }
        out
    }
}

/// HunyuanVideo 1.5's sizes: 480p and 720p, landscape and portrait.
const HUNYUAN_SIZES: &[(&str, &str, &str)] = &[
    ("480p", "16:9", "832*480"),
    ("480p", "9:16", "480*832"),
    ("720p", "16:9", "1280*720"),
    ("720p", "9:16", "720*1280"),
];

/// The video models, from their documentation.
pub(crate) const VIDEO_MODELS: &[VideoSpec] = &[
    // https://wavespeed.ai/docs/docs-api/wavespeed-ai/hunyuan-video-1.5/text-to-video ("Video
    // durations: 5 s, 8 s, and 10 s"; 480p $0.02/s, 720p $0.04/s; seed). The `size` values
    // (832*480, 480*832, 1280*720, 720*1280) and `negative_prompt` are those public clients send
    // (unverified against the page's parameter table, which could not be read whole).
    VideoSpec {
        id: "wavespeed-ai/hunyuan-video-1.5/text-to-video",
        image: false,
        durations: &[5, 8, 10],
        default_duration: 5,
        resolutions: &["480p", "720p"],
        default_resolution: "720p",
        shape: Shape::Size(HUNYUAN_SIZES),
        default_aspect: "16:9",
        seed: true,
        negative_prompt: true,
        options: &[],
    },
    // The image-to-video twin (https://wavespeed.ai/models/wavespeed-ai/hunyuan-video-1.5/image-to-video):
    // `image`, `prompt`, `negative_prompt`, `duration`, `seed` and `resolution` 480p/720p as
    // public clients send them; the durations and per-second prices of the text-to-video page
    // (unverified for this variant).
    VideoSpec {
        id: "wavespeed-ai/hunyuan-video-1.5/image-to-video",
        image: true,
        durations: &[5, 8, 10],
        default_duration: 5,
        resolutions: &["480p", "720p"],
        default_resolution: "720p",
        shape: Shape::Resolution,
        default_aspect: "",
        seed: true,
        negative_prompt: true,
        options: &[],
    },
    // LTX-2 Pro (https://wavespeed.ai/docs/docs-api/lightricks/lightricks-ltx-2-pro-text-to-video):
    // `prompt` (required), `duration` 6, 8 or 10 s (default 6), `generate_audio` (default
    // true); 1080p only, $0.06 per second; no `seed`, no `negative_prompt`. Read from the
    // page as quoted by public clients (the page itself could not be read here: unverified).
    VideoSpec {
        id: "lightricks/ltx-2-pro/text-to-video",
        image: false,
        durations: &[6, 8, 10],
        default_duration: 6,
        resolutions: &["1080p"],
        default_resolution: "1080p",
        shape: Shape::Fixed,
        default_aspect: "",
        seed: false,
        negative_prompt: false,
        options: &["generate_audio"],
    },
    // https://wavespeed.ai/models/lightricks/ltx-2-pro/image-to-video: `image`, `prompt`,
    // `duration` 6/8/10, `generate_audio`; 1080p, $0.06 per second (as above: unverified).
    VideoSpec {
        id: "lightricks/ltx-2-pro/image-to-video",
        image: true,
        durations: &[6, 8, 10],
        default_duration: 6,
        resolutions: &["1080p"],
        default_resolution: "1080p",
        shape: Shape::Fixed,
        default_aspect: "",
        seed: false,
        negative_prompt: false,
        options: &["generate_audio"],
    },
];

/// A video model this crate does not know: every field is passed on as asked (`duration`,
/// `resolution`, `aspect_ratio`, `seed`, `negative_prompt`, `image`, options), and the bill is
/// counted at the asked duration, or 5 seconds.
const GENERIC: VideoSpec = VideoSpec {
    id: "",
    image: false,
    durations: &[],
    default_duration: 5,
    resolutions: &[],
    default_resolution: "",
    shape: Shape::Resolution,
    default_aspect: "",
    seed: true,
    negative_prompt: true,
    options: &[],
};

/// The table's entry for `id`, or the generic one.
pub(crate) fn video_spec(id: &str) -> &'static VideoSpec {
    VIDEO_MODELS.iter().find(|m| m.id == id).unwrap_or(&GENERIC)
}

/// Whether `id` is a video model of the table (for announcing configured models).
pub(crate) fn is_video_model(id: &str) -> bool {
    video_spec(id).is_known()
}

/// Fields the gateway sets itself.
const RESERVED: [(&str, &str); 10] = [
    ("prompt", "use `prompt`"),
    ("image", "use `image`"),
    ("duration", "use `seconds`"),
    ("resolution", "use `resolution`"),
    ("size", "use `resolution` and `aspect_ratio`"),
    ("aspect_ratio", "use `aspect_ratio`"),
    ("seed", "use `seed`"),
    ("negative_prompt", "use `negative_prompt`"),
    ("enable_base64_output", "videos come back as URLs"),
    (
        "enable_sync_mode",
        "a video is a job: submit it, then poll it",
    ),
];

fn unsupported(model: &str, what: &str, param: &str) -> Error {
    Error::unsupported(format!("WaveSpeed model `{model}` {what}")).with_param(param)
}

fn normal_resolution(resolution: &str) -> String {
    resolution.trim().to_ascii_lowercase()
}

/// Refuses, before any IO and naming the field, a video the model cannot make.
pub(crate) fn check_video(req: &VideoRequest) -> Result<()> {
    let model = req.model.as_str();
    if !valid_model_path(model) {
        return Err(Error::invalid_request(format!(
            "`{}` is not a WaveSpeed model id",
            model.escape_debug()
        ))
        .with_param("model"));
    }
    if req.prompt.trim().is_empty() {
        return Err(Error::invalid_request("`prompt` must not be empty").with_param("prompt"));
    }
    if let Some(image) = &req.image {
        media_value(image)?;
    }
    if req.duration_secs == Some(0) {
        return Err(Error::invalid_request("`seconds` must be at least 1").with_param("seconds"));
    }
    for key in req.options.keys() {
        if let Some((_, instead)) = RESERVED.iter().find(|(name, _)| name == key) {
            return Err(Error::invalid_request(format!(
                "option `{key}` is not passed on: {instead}"
            ))
            .with_param(format!("options.{key}")));
        }
    }
    let spec = video_spec(model);
    if !spec.is_known() {
        return Ok(());
    }
    match (spec.image, &req.image) {
        (true, None) => {
            return Err(Error::invalid_request(format!(
                "WaveSpeed model `{model}` is image-to-video: it needs an `image` (the first frame)"
            ))
            .with_param("image"));
        }
        (false, Some(_)) => {
            return Err(unsupported(
                model,
                "is text-to-video and takes no `image`: use its image-to-video variant",
                "image",
            ));
        }
        _ => {}
    }
    if let Some(seconds) = req.duration_secs
        && !spec.durations.contains(&seconds)
    {
        let offered: Vec<String> = spec.durations.iter().map(|d| d.to_string()).collect();
        return Err(unsupported(
            model,
            &format!(
                "makes videos of {} seconds, not {seconds}",
                offered.join(", ")
            ),
            "seconds",
        ));
    }
    if let Some(resolution) = &req.resolution {
        let resolution = normal_resolution(resolution);
        if !spec.resolutions.contains(&resolution.as_str()) {
            return Err(unsupported(
                model,
                &format!(
                    "makes {}, not `{}`",
                    spec.resolutions.join(", "),
                    resolution.escape_debug()
                ),
                "resolution",
            ));
        }
    }
    if let Some(aspect) = &req.aspect_ratio {
        let aspects = spec.aspects();
        if aspects.is_empty() {
            let why = if spec.image {
                "takes its shape from the image and has no `aspect_ratio`"
            } else {
                "makes one shape and has no `aspect_ratio`"
            };
            return Err(unsupported(model, why, "aspect_ratio"));
        }
        if !aspects.contains(&aspect.trim()) {
            return Err(unsupported(
                model,
                &format!(
                    "offers the aspect ratios {}, not `{}`",
                    aspects.join(", "),
                    aspect.escape_debug()
                ),
                "size",
            ));
        }
    }
    if req.seed.is_some() && !spec.seed {
        return Err(unsupported(model, "takes no `seed`", "seed"));
    }
    if req.negative_prompt.is_some() && !spec.negative_prompt {
        return Err(unsupported(
            model,
            "takes no `negative_prompt`",
            "negative_prompt",
        ));
    }
    for key in req.options.keys() {
        if !spec.options.contains(&key.as_str()) {
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

/// What a request makes: its seconds and resolution, the model's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Made {
    pub seconds: u32,
    pub resolution: Option<String>,
}

pub(crate) fn made(req: &VideoRequest) -> Made {
    let spec = video_spec(&req.model);
    let resolution = req
        .resolution
        .as_deref()
        .map(normal_resolution)
        .or_else(|| (!spec.default_resolution.is_empty()).then(|| spec.default_resolution.into()));
    Made {
        seconds: req.duration_secs.unwrap_or(spec.default_duration),
        resolution,
    }
}

fn billing_of(made: &Made) -> Billing {
    per_second_billing(made.seconds, made.resolution.as_deref())
}

/// The model's input for `req` (checked by [`check_video`]). A known model is sent its
/// duration and resolution even when the caller asked none, so what it bills is known.
pub(crate) fn video_input(req: &VideoRequest) -> Result<Map<String, Value>> {
    let spec = video_spec(&req.model);
    let made = made(req);
    let mut body = Map::new();
    body.insert("prompt".into(), json!(req.prompt));
    if let Some(image) = &req.image {
        body.insert("image".into(), json!(media_value(image)?));
    }
    if spec.is_known() {
        body.insert("duration".into(), json!(made.seconds));
        match spec.shape {
            Shape::Size(sizes) => {
                let resolution = made
                    .resolution
                    .as_deref()
                    .unwrap_or(spec.default_resolution);
                let aspect = req
                    .aspect_ratio
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or(spec.default_aspect);
                let size = sizes
                    .iter()
                    .find(|(r, a, _)| *r == resolution && *a == aspect)
                    .map(|(_, _, size)| *size)
                    .ok_or_else(|| {
                        unsupported(
                            &req.model,
                            &format!("offers no {aspect} frame at {resolution}"),
                            "size",
                        )
                    })?;
                body.insert("size".into(), json!(size));
            }
            Shape::Resolution => {
                if let Some(resolution) = &made.resolution {
                    body.insert("resolution".into(), json!(resolution));
                }
            }
            Shape::Fixed => {}
        }
    } else {
        if let Some(seconds) = req.duration_secs {
            body.insert("duration".into(), json!(seconds));
        }
        if let Some(resolution) = &req.resolution {
            body.insert("resolution".into(), json!(normal_resolution(resolution)));
        }
        if let Some(aspect) = &req.aspect_ratio {
            body.insert("aspect_ratio".into(), json!(aspect));
        }
    }
    if let Some(seed) = req.seed {
        body.insert("seed".into(), json!(seed));
    }
    if let Some(negative) = &req.negative_prompt {
        body.insert("negative_prompt".into(), json!(negative));
    }
    for (key, value) in &req.options {
        body.insert(key.clone(), value.clone());
    }
    Ok(body)
}

/// The gateway's id of a submitted task: the WaveSpeed task id, then what was asked of it
/// (`<task>:<seconds>:<resolution>`). A finished task says neither its duration nor its
/// resolution, and the job may end in another gateway process (after a restart, on another
/// replica, which keep only this id): the bill is counted from the id alone.
fn job_id(task: &str, made: &Made) -> JobId {
    JobId(format!(
        "{task}:{}:{}",
        made.seconds,
        made.resolution.as_deref().unwrap_or_default()
    ))
}

/// The task id and what was asked of it, from an id of [`job_id`]; a bare task id (made
/// outside the gateway) has nothing asked.
fn parse_job_id(job: &JobId) -> (JobId, Option<Made>) {
    let mut parts = job.0.splitn(3, ':');
    let task = parts.next().unwrap_or_default();
    let made = match (parts.next().map(str::parse::<u32>), parts.next()) {
        (Some(Ok(seconds)), Some(resolution)) => Some(Made {
            seconds,
            resolution: (!resolution.is_empty()).then(|| resolution.to_owned()),
        }),
        _ => None,
    };
    (JobId(task.to_owned()), made)
}

/// The finished video of a completed task.
fn video_output(done: &Prediction, made: &Made) -> Result<VideoOutput> {
    let url = done
        .outputs
        .iter()
        .find_map(|out| out.as_str())
        .map(str::trim)
        .filter(|s| {
            let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
            lower.starts_with("https://") || lower.starts_with("http://")
        })
        .ok_or_else(|| {
            if !done.has_nsfw_contents.is_empty() && done.has_nsfw_contents.iter().all(|f| *f) {
                Error::new(
                    ErrorKind::ContentFiltered,
                    format!(
                        "task `{}` completed, but its video was flagged as NSFW",
                        done.id
                    ),
                )
            } else {
                Error::decode(format!("task `{}` completed without a video URL", done.id))
            }
        })?;
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mime = [
        (".mp4", "video/mp4"),
        (".webm", "video/webm"),
        (".mov", "video/quicktime"),
    ]
    .iter()
    .find(|(ext, _)| path.to_ascii_lowercase().ends_with(ext))
    .map(|(_, mime)| (*mime).to_owned());
    let seconds = u64::from(made.seconds);
    Ok(VideoOutput::new(
        MediaOutput::Url {
            url: url.to_owned(),
            mime,
        },
        Some(Duration::from_secs(seconds)),
        Usage::units(seconds),
    )
    .billing(billing_of(made)))
}

impl VideoModel for WaveSpeedClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn check_video(&self, req: &VideoRequest) -> Result<()> {
        check_video(req).map_err(|e| e.with_provider(PROVIDER))
    }

    /// Seconds of video at the asked (else the model's default) duration and resolution: what
    /// WaveSpeed bills per second, by resolution.
    fn video_billing(&self, req: &VideoRequest) -> Billing {
        billing_of(&made(req))
    }

    async fn submit_video(&self, req: VideoRequest) -> Result<JobId> {
        VideoModel::check_video(self, &req)?;
        let input = video_input(&req).map_err(|e| e.with_provider(PROVIDER))?;
        let submitted = self.submit(&req.model, &input).await?;
        Ok(job_id(&submitted.id, &made(&req)))
    }

    /// One read of the task. A completed task is its video URL, billed at what was asked of it
    /// (carried in the job id, so any gateway process bills it the same); a bare task id made
    /// outside the gateway is billed at its model's default duration and resolution.
    async fn poll_video(&self, job: &JobId) -> Result<JobStatus<VideoOutput>> {
        let (task, asked) = parse_job_id(job);
        let prediction = self.prediction(&task).await?;
        Ok(match prediction.job_status() {
            JobStatus::Completed(done) => {
                let made = asked.unwrap_or_else(|| {
                    let model = done.model.clone().unwrap_or_default();
                    tracing::warn!(
                        job = %job,
                        model,
                        "a wavespeed video submitted outside the gateway is billed at its model's defaults"
                    );
                    made(&VideoRequest::new(model, ""))
                });
                match video_output(&done, &made) {
                    Ok(output) => JobStatus::Completed(output),
                    Err(e) => JobStatus::Failed(e.with_provider(PROVIDER)),
                }
            }
            JobStatus::Failed(e) => JobStatus::Failed(e),
            JobStatus::Queued => JobStatus::Queued,
            JobStatus::InProgress { progress } => JobStatus::InProgress { progress },
            _ => JobStatus::InProgress { progress: None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{MediaInput, PriceUnit};

    fn hunyuan(prompt: &str) -> VideoRequest {
        VideoRequest::new("wavespeed-ai/hunyuan-video-1.5/text-to-video", prompt)
    }

    fn refused(req: &VideoRequest) -> (ErrorKind, String) {
        let e = check_video(req).unwrap_err();
        (e.kind().clone(), e.param().unwrap_or_default().to_owned())
    }

    #[test]
    fn a_job_id_carries_what_was_asked_so_any_process_bills_it() {
        let mut req = hunyuan("a fox");
        req.duration_secs = Some(8);
        req.resolution = Some("720p".into());
        let id = job_id("6488c2754f6f4dfea924382fa14d11bd", &made(&req));
        assert_eq!(id.0, "6488c2754f6f4dfea924382fa14d11bd:8:720p");
        let (task, asked) = parse_job_id(&id);
        assert_eq!(task.0, "6488c2754f6f4dfea924382fa14d11bd");
        assert_eq!(asked, Some(made(&req)));
        assert_eq!(billing_of(&asked.unwrap()).units, 8);
        let (task, asked) = parse_job_id(&JobId("abc123".into()));
        assert_eq!((task.0.as_str(), asked), ("abc123", None));
        let (_, asked) = parse_job_id(&JobId("abc123:x:720p".into()));
        assert_eq!(asked, None, "a part that is not a number asks nothing");
    }

    #[test]
    fn the_table_is_consistent() {
        for (i, m) in VIDEO_MODELS.iter().enumerate() {
            assert!(m.durations.contains(&m.default_duration), "{}", m.id);
            assert!(m.resolutions.contains(&m.default_resolution), "{}", m.id);
            assert!(valid_model_path(m.id), "{}", m.id);
            assert_eq!(m.image, m.id.ends_with("image-to-video"), "{}", m.id);
            assert!(VIDEO_MODELS[i + 1..].iter().all(|o| o.id != m.id));
            if let Shape::Size(sizes) = m.shape {
                for r in m.resolutions {
                    assert!(
                        sizes
                            .iter()
                            .any(|(sr, a, _)| sr == r && *a == m.default_aspect),
                        "{}: no default size at {r}",
                        m.id
                    );
                }
            }
        }
        assert!(is_video_model("lightricks/ltx-2-pro/text-to-video"));
        assert!(!is_video_model("wavespeed-ai/flux-dev"));
    }

    #[test]
    fn what_each_model_does_not_offer_is_refused_naming_the_field() {
        let mut r = hunyuan("a fox");
        r.duration_secs = Some(7);
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "seconds".into()));
        let mut r = hunyuan("a fox");
        r.resolution = Some("1080p".into());
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "resolution".into()));
        let mut r = hunyuan("a fox");
        r.aspect_ratio = Some("1:1".into());
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "size".into()));
        let mut r = hunyuan("a fox");
        r.image = Some(MediaInput::Url("https://example.com/a.png".into()));
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "image".into()));
        let r = VideoRequest::new("wavespeed-ai/hunyuan-video-1.5/image-to-video", "a fox");
        assert_eq!(refused(&r), (ErrorKind::InvalidRequest, "image".into()));
        let mut r = VideoRequest::new("lightricks/ltx-2-pro/text-to-video", "a fox");
        r.seed = Some(3);
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "seed".into()));
        r.seed = None;
        r.negative_prompt = Some("blur".into());
        assert_eq!(
            refused(&r),
            (ErrorKind::Unsupported, "negative_prompt".into())
        );
        r.negative_prompt = None;
        r.aspect_ratio = Some("16:9".into());
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "aspect_ratio".into()));
        r.aspect_ratio = None;
        r.resolution = Some("720p".into());
        assert_eq!(refused(&r), (ErrorKind::Unsupported, "resolution".into()));
        r.resolution = Some("1080P".into());
        r.duration_secs = Some(10);
        check_video(&r).unwrap();
        r.options.insert("fps".into(), json!(50));
        assert_eq!(
            refused(&r),
            (ErrorKind::InvalidRequest, "options.fps".into())
        );
        let mut r = hunyuan("a fox");
        r.options.insert("duration".into(), json!(5));
        assert_eq!(
            refused(&r),
            (ErrorKind::InvalidRequest, "options.duration".into())
        );
        assert_eq!(
            refused(&hunyuan(" ")),
            (ErrorKind::InvalidRequest, "prompt".into())
        );
        // A model the gateway does not know passes.
        let mut r = VideoRequest::new("someone/new-video", "a fox");
        r.duration_secs = Some(7);
        r.aspect_ratio = Some("4:3".into());
        check_video(&r).unwrap();
    }

    #[test]
    fn inputs_carry_the_documented_fields_and_the_defaults_billed() {
        let mut r = hunyuan("a fox");
        r.resolution = Some("480p".into());
        r.aspect_ratio = Some("9:16".into());
        r.duration_secs = Some(8);
        r.seed = Some(42);
        r.negative_prompt = Some("blur".into());
        assert_eq!(
            Value::Object(video_input(&r).unwrap()),
            json!({"prompt": "a fox", "duration": 8, "size": "480*832", "seed": 42,
                   "negative_prompt": "blur"})
        );
        assert_eq!(
            Value::Object(video_input(&hunyuan("a fox")).unwrap()),
            json!({"prompt": "a fox", "duration": 5, "size": "1280*720"})
        );
        let mut r = VideoRequest::new("wavespeed-ai/hunyuan-video-1.5/image-to-video", "go");
        r.image = Some(MediaInput::bytes(vec![1, 2, 3], "image/png"));
        r.resolution = Some("480p".into());
        assert_eq!(
            Value::Object(video_input(&r).unwrap()),
            json!({"prompt": "go", "image": "data:image/png;base64,AQID", "duration": 5,
                   "resolution": "480p"})
        );
        let mut r = VideoRequest::new("lightricks/ltx-2-pro/text-to-video", "go");
        r.options.insert("generate_audio".into(), json!(false));
        assert_eq!(
            Value::Object(video_input(&r).unwrap()),
            json!({"prompt": "go", "duration": 6, "generate_audio": false})
        );
    }

    #[test]
    fn billing_is_seconds_at_the_resolution_made() {
        let b = VideoModel::video_billing(
            &WaveSpeedClient::builder().api_key("k").build().unwrap(),
            &hunyuan("a fox"),
        );
        assert_eq!(b.units, 5);
        assert_eq!(b.charges[0].unit, PriceUnit::VideoSecond);
        assert_eq!(b.charges[0].quantity, 5);
        assert_eq!(b.charges[0].resolution.as_deref(), Some("720p"));
        let mut r = VideoRequest::new("lightricks/ltx-2-pro/image-to-video", "go");
        r.duration_secs = Some(10);
        let m = made(&r);
        assert_eq!((m.seconds, m.resolution.as_deref()), (10, Some("1080p")));
        let m = made(&VideoRequest::new("someone/new-video", "go"));
        assert_eq!((m.seconds, m.resolution), (5, None));
    }

    #[test]
    fn a_completed_task_is_its_video_url() {
        let done = Prediction {
            id: "t1".into(),
            status: "completed".into(),
            outputs: vec![json!("https://cdn.example/v/0.mp4?sig=1")],
            ..Prediction::default()
        };
        let made = Made {
            seconds: 8,
            resolution: Some("480p".into()),
        };
        let out = video_output(&done, &made).unwrap();
        assert_eq!(
            out.video,
            MediaOutput::Url {
                url: "https://cdn.example/v/0.mp4?sig=1".into(),
                mime: Some("video/mp4".into())
            }
        );
        assert_eq!(out.duration, Some(Duration::from_secs(8)));
        assert_eq!(out.usage.units, 8);
        assert_eq!(out.billing.units, 8);
        let empty = Prediction {
            id: "t2".into(),
            has_nsfw_contents: vec![true],
            ..Prediction::default()
        };
        assert_eq!(
            video_output(&empty, &made).unwrap_err().kind(),
            &ErrorKind::ContentFiltered
        );
        let empty = Prediction {
            id: "t3".into(),
            ..Prediction::default()
        };
        assert_eq!(
            video_output(&empty, &made).unwrap_err().kind(),
            &ErrorKind::Decode
        );
    }
}
