//! Video: text to video and image to video, as long jobs ([`crate::job`]).

use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::job::{JobId, JobStatus};
use crate::{Billing, Charge, Error, MediaInput, MediaOutput, PriceUnit, Result, Usage};

/// A video request, addressed to one provider's model id (after routing).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct VideoRequest {
    /// The provider's model id.
    pub model: String,
    /// What to film.
    pub prompt: String,
    /// The first frame, for image-to-video.
    pub image: Option<MediaInput>,
    /// Length in seconds.
    pub duration_secs: Option<u32>,
    /// Resolution (`720p`).
    pub resolution: Option<String>,
    /// Aspect ratio (`16:9`).
    pub aspect_ratio: Option<String>,
    /// What the video must not show.
    pub negative_prompt: Option<String>,
    /// Seed for reproducible output.
    pub seed: Option<i64>,
    /// Provider-specific options; a provider refuses one it does not know, naming it.
    pub options: Map<String, Value>,
}

impl VideoRequest {
    /// A request for `model` filming `prompt`.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            prompt: prompt.into(),
            ..Self::default()
        }
    }
}

/// A finished video.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VideoOutput {
    /// The video, usually a provider URL.
    pub video: MediaOutput,
    /// Its length, when known.
    pub duration: Option<Duration>,
    /// What the job used (seconds of video as units).
    pub usage: Usage,
    /// What the job billed: seconds of video (its plan units) and the charges the catalog
    /// prices, or the cost the provider reported.
    pub billing: Billing,
}

impl VideoOutput {
    /// The output `video` of length `duration`, which used `usage`.
    pub fn new(video: MediaOutput, duration: Option<Duration>, usage: Usage) -> Self {
        Self {
            video,
            duration,
            usage,
            billing: Billing::default(),
        }
    }

    /// Sets what the job billed.
    pub fn billing(mut self, billing: Billing) -> Self {
        self.billing = billing;
        self
    }
}

/// What `seconds` of video at `resolution` are expected to bill when priced per second: the
/// seconds as plan units and as one charge qualified by resolution.
pub fn per_second_billing(seconds: u32, resolution: Option<&str>) -> Billing {
    let mut charge = Charge::new(PriceUnit::VideoSecond, u64::from(seconds));
    if let Some(resolution) = resolution {
        charge = charge.resolution(resolution);
    }
    Billing::new(u64::from(seconds), vec![charge])
}

/// A provider of video generation.
///
/// `submit_video` must not be retried blindly: a second submit after a timeout may run (and
/// bill) the job twice. Polling is safe to repeat.
pub trait VideoModel: Send + Sync {
    /// The provider id.
    fn provider(&self) -> &'static str;

    /// Refuses, before any IO and naming the field, a video the model cannot make (a duration
    /// or resolution it does not offer, an input image it cannot read, image-to-video on a
    /// text-to-video model).
    fn check_video(&self, req: &VideoRequest) -> Result<()> {
        let _ = req;
        Ok(())
    }

    /// What the job is expected to bill, for admission before the submit: its seconds at the
    /// model's default duration when none is asked, never fewer than it will make.
    fn video_billing(&self, req: &VideoRequest) -> Billing;

    /// Starts a job.
    fn submit_video(&self, req: VideoRequest) -> impl Future<Output = Result<JobId>> + Send;

    /// Asks once where the job is.
    fn poll_video(
        &self,
        job: &JobId,
    ) -> impl Future<Output = Result<JobStatus<VideoOutput>>> + Send;

    /// Cancels the job. The default refuses: few providers can.
    fn cancel_video(&self, job: &JobId) -> impl Future<Output = Result<()>> + Send {
        let provider = self.provider();
        let job = job.clone();
        async move {
            Err(Error::unsupported(format!(
                "provider `{provider}` cannot cancel a job (`{job}`)"
            )))
        }
    }
}

/// The object-safe twin of [`VideoModel`].
pub trait DynVideoModel: Send + Sync {
    /// See [`VideoModel::provider`].
    fn provider_dyn(&self) -> &'static str;
    /// See [`VideoModel::check_video`].
    fn check_video_dyn(&self, req: &VideoRequest) -> Result<()>;
    /// See [`VideoModel::video_billing`].
    fn video_billing_dyn(&self, req: &VideoRequest) -> Billing;
    /// See [`VideoModel::submit_video`].
    fn submit_video_dyn(&self, req: VideoRequest) -> BoxFuture<'_, Result<JobId>>;
    /// See [`VideoModel::poll_video`].
    fn poll_video_dyn<'a>(
        &'a self,
        job: &'a JobId,
    ) -> BoxFuture<'a, Result<JobStatus<VideoOutput>>>;
    /// See [`VideoModel::cancel_video`].
    fn cancel_video_dyn<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>>;
}

impl<T: VideoModel> DynVideoModel for T {
    fn provider_dyn(&self) -> &'static str {
        self.provider()
    }

    fn check_video_dyn(&self, req: &VideoRequest) -> Result<()> {
        self.check_video(req)
    }

    fn video_billing_dyn(&self, req: &VideoRequest) -> Billing {
        self.video_billing(req)
    }

    fn submit_video_dyn(&self, req: VideoRequest) -> BoxFuture<'_, Result<JobId>> {
        Box::pin(self.submit_video(req))
    }

    fn poll_video_dyn<'a>(
        &'a self,
        job: &'a JobId,
    ) -> BoxFuture<'a, Result<JobStatus<VideoOutput>>> {
        Box::pin(self.poll_video(job))
    }

    fn cancel_video_dyn<'a>(&'a self, job: &'a JobId) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.cancel_video(job))
    }
}
