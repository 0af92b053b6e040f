//! Video jobs in flight: one step of a job (ask its provider once, record what it said, settle
//! its end exactly once) shared by `GET /v1/videos/{id}` and the background poller, which
//! advances every unfinished job of the store, on whichever replica takes its lease, after a
//! restart included. Both take the job's lease first: one of them asks the provider about a
//! job at a time, across replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use gw_store::{JobEnd, JobError, JobState, Store, VideoJob};
use llm_gateway::http::{DownloadPolicy, DownloadSettings, Downloader};
use llm_gateway::{
    ErrorKind, Gateway, JobId, JobRef, JobStatus, MediaOutput, ProvidersConfig, VideoOutput,
    encode_base64,
};
use serde::Deserialize;

/// `[jobs]`: how video jobs are followed and their output served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSection {
    /// How often the background poller looks for unfinished jobs and asks their providers
    /// where they are, in milliseconds (default 2000). 0 turns it off: jobs then advance only
    /// when their owner asks (`GET /v1/videos/{id}`), as the contract runner wants.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long a replica holds a job it polls before another may take it over (default 60000).
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// The largest video `GET /v1/videos/{id}/content` serves, in bytes (default 256 MiB). A
    /// provider's `[providers.<id>.downloads]` table (its address rules, timeout and size) applies
    /// on top, as for its other downloads.
    #[serde(default = "default_max_content_bytes")]
    pub max_content_bytes: usize,
}

fn default_poll_interval_ms() -> u64 {
    2_000
}

fn default_lease_ms() -> u64 {
    60_000
}

fn default_max_content_bytes() -> usize {
    256 * 1024 * 1024
}

impl Default for JobsSection {
    fn default() -> Self {
        Self {
            poll_interval_ms: default_poll_interval_ms(),
            lease_ms: default_lease_ms(),
            max_content_bytes: default_max_content_bytes(),
        }
    }
}

/// What the job routes need beyond the gateway and the store: the downloaders of providers'
/// outputs (videos, and trained weights, each under its own size limit), and the poll settings.
pub(crate) struct VideoJobs {
    pub(crate) settings: JobsSection,
    videos: Downloaders,
    weights: Downloaders,
}

/// One downloader per provider that has a `downloads` table; `default` for the others.
struct Downloaders {
    by_provider: BTreeMap<String, Downloader>,
    default: Option<Downloader>,
}

impl Downloaders {
    /// `providers`' `downloads` tables over `base`; with `own_limit`, `base.max_bytes` stays the
    /// limit whatever a table says (the media storage's limit, for trained weights).
    fn new(base: DownloadPolicy, providers: &ProvidersConfig, what: &str, own_limit: bool) -> Self {
        let mut by_provider = BTreeMap::new();
        for (name, cfg) in providers {
            let Some(table) = cfg.extra.get("downloads") else {
                continue;
            };
            let parsed = DownloadSettings::deserialize(table.clone());
            match parsed.map_err(|e| e.to_string()).and_then(|d| {
                let mut policy = d.apply(base);
                if own_limit {
                    policy.max_bytes = base.max_bytes;
                }
                Downloader::new(policy).map_err(|e| e.to_string())
            }) {
                Ok(downloader) => {
                    by_provider.insert(name.clone(), downloader);
                }
                Err(e) => tracing::warn!(
                    provider = %name,
                    error = %e,
                    "providers.{name}.downloads cannot be read for {what}: the default limits apply"
                ),
            }
        }
        let default = Downloader::new(base)
            .inspect_err(|e| tracing::error!(error = %e, "no downloader for {what}"))
            .ok();
        Self {
            by_provider,
            default,
        }
    }

    fn get(&self, provider: &str) -> Option<&Downloader> {
        self.by_provider.get(provider).or(self.default.as_ref())
    }
}

impl VideoJobs {
    /// The downloaders from `providers`' `downloads` tables: for videos over a policy of
    /// `settings.max_content_bytes`, for trained weights of `max_weights_bytes`.
    pub(crate) fn new(
        settings: JobsSection,
        providers: &ProvidersConfig,
        max_weights_bytes: usize,
    ) -> Self {
        let videos = DownloadPolicy {
            max_bytes: settings.max_content_bytes,
            timeout: Duration::from_secs(300),
            ..DownloadPolicy::default()
        };
        let weights = DownloadPolicy {
            max_bytes: max_weights_bytes,
            timeout: Duration::from_secs(900),
            ..DownloadPolicy::default()
        };
        Self {
            videos: Downloaders::new(videos, providers, "video content", false),
            weights: Downloaders::new(weights, providers, "trained weights", true),
            settings,
        }
    }

    /// The downloader for `provider`'s videos.
    pub(crate) fn downloader(&self, provider: &str) -> Option<&Downloader> {
        self.videos.get(provider)
    }

    /// The downloader for `provider`'s trained weights.
    pub(crate) fn weights_downloader(&self, provider: &str) -> Option<&Downloader> {
        self.weights.get(provider)
    }
}

impl Default for VideoJobs {
    fn default() -> Self {
        Self::new(
            JobsSection::default(),
            &ProvidersConfig::default(),
            crate::media::MediaSection::default().max_file_bytes,
        )
    }
}

/// `GET /v1/videos/{id}`'s step of `job`: advanced once (see [`advance`]) if this request gets
/// the job's lease for `lease`, and the lease given up after; the job as stored if another
/// replica holds the lease (its poller is asking the provider) or another task of this process
/// is advancing the job, and for a job already settled. So the provider is asked about a job by
/// one poller at a time across replicas, its owner's requests included.
pub(crate) async fn advance_if_free(
    gateway: &Gateway,
    store: &Store,
    job: VideoJob,
    lease: Duration,
) -> llm_gateway::Result<VideoJob> {
    if job.settled {
        return Ok(job);
    }
    let Some(_advancing) = Advancing::take(&job.id) else {
        return Ok(job);
    };
    if !store.claim_video_job(&job.id, lease).await? {
        return Ok(job);
    }
    let id = job.id.clone();
    let job = advance(gateway, store, job).await;
    if let Err(e) = store.release_video_job(&id).await {
        tracing::warn!(job = %id, error = %e, "cannot give up a video job's lease; it runs out");
    }
    Ok(job)
}

/// The jobs (video and fine-tuning) a task of this process is advancing now. A job's lease
/// belongs to the process (the store's instance), which may take it again while it holds it;
/// this keeps two of its own tasks (the poller and an owner's `GET`) from asking the provider
/// about one job at once.
static ADVANCING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// A job in [`ADVANCING`], taken out again when dropped.
pub(crate) struct Advancing(String);

impl Advancing {
    /// The job marked as advanced by the caller, unless another task has it.
    pub(crate) fn take(id: &str) -> Option<Self> {
        let mut advancing = ADVANCING.lock().unwrap_or_else(PoisonError::into_inner);
        advancing.insert(id.to_owned()).then(|| Self(id.to_owned()))
    }
}

impl Drop for Advancing {
    fn drop(&mut self) {
        ADVANCING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// Asks `job`'s provider once where it is and records the answer: progress for a job still
/// running, its end (settled exactly once, whichever replica sees it first) for one that ended.
/// Returns the job as stored afterwards. A poll that fails is logged and changes nothing (the
/// job is asked again later), except a provider that no longer knows the job: it failed.
pub(crate) async fn advance(gateway: &Gateway, store: &Store, job: VideoJob) -> VideoJob {
    if job.settled {
        return job;
    }
    let route = match gateway.route(&job.route_name()) {
        Ok(route) => route,
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "a video job's route is unknown here");
            return job;
        }
    };
    let provider_job = JobId(job.provider_job_id.clone());
    let status = match gateway.poll_video_with(&route, &provider_job).await {
        Ok(status) => status,
        Err(e) if *e.kind() == ErrorKind::NotFound => JobStatus::Failed(e),
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "polling a video job failed; it is asked again later");
            return job;
        }
    };
    let recorded = match &status {
        JobStatus::Queued => store
            .update_video_job(&job.id, JobState::Queued, None)
            .await
            .map(drop),
        JobStatus::InProgress { progress } => store
            .update_video_job(&job.id, JobState::InProgress, *progress)
            .await
            .map(drop),
        _ => {
            let charge = gateway.video_record(
                &JobRef {
                    request_id: &job.request_id,
                    user_id: &job.user_id,
                    route: &route,
                    age: job.age(),
                    retries: job.retries,
                },
                &status,
            );
            let end = job_end(&status, charge.as_ref().and_then(|c| c.cost));
            let record = charge.map(|c| c.record);
            match store.finish_video_job(&job.id, &end, record.clone()).await {
                Ok(true) => {
                    tracing::info!(job = %job.id, status = end.status.as_str(), "video job ended");
                    // Once, by the replica that settled it: the metrics count the job here.
                    if let Some(record) = &record {
                        gateway.report_video_end(&job.model, record);
                    }
                    Ok(())
                }
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(job = %job.id, error = %e, "a video job's state could not be stored");
    }
    match store.video_job_by_id(&job.id).await {
        Ok(Some(stored)) => stored,
        _ => job,
    }
}

/// The stored end of a job that ended with `status`.
fn job_end(status: &JobStatus<VideoOutput>, cost: Option<llm_gateway::Cost>) -> JobEnd {
    match status {
        JobStatus::Completed(output) => JobEnd {
            status: JobState::Completed,
            output_url: Some(match &output.video {
                MediaOutput::Url { url, .. } => url.clone(),
                // Kept inline: no provider here answers videos as bytes, but one could.
                MediaOutput::Bytes { data, mime } => {
                    format!("data:{mime};base64,{}", encode_base64(data))
                }
                _ => String::new(),
            }),
            seconds: output
                .duration
                .map(|d| d.as_secs_f64().ceil() as u64)
                .or(Some(output.billing.units).filter(|u| *u > 0)),
            error: None,
            cost,
        },
        JobStatus::Failed(error) => JobEnd {
            status: JobState::Failed,
            output_url: None,
            seconds: None,
            error: Some(JobError {
                code: error.kind().as_str().to_owned(),
                message: error.message().to_owned(),
            }),
            cost,
        },
        _ => JobEnd {
            status: JobState::InProgress,
            output_url: None,
            seconds: None,
            error: None,
            cost,
        },
    }
}

/// How many jobs one round of the poller takes at most.
const ROUND: u32 = 100;

/// One round of the poller: each due job whose lease this instance gets (for `lease`, while it
/// asks) is advanced once; one still running is then held for `every` more, so that the next
/// round, here or on another replica, asks again no sooner.
pub(crate) async fn poll_due(gateway: &Gateway, store: &Store, lease: Duration, every: Duration) {
    let due = match store.video_jobs_due(ROUND).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the video jobs due");
            return;
        }
    };
    for job in due {
        match store.claim_video_job(&job.id, lease).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "cannot take a video job's lease");
                continue;
            }
        }
        // A `GET` of this process advancing the job gives the lease up when it is done.
        let Some(_advancing) = Advancing::take(&job.id) else {
            continue;
        };
        let id = job.id.clone();
        let after = advance(gateway, store, job).await;
        if !after.settled {
            let _ = store.claim_video_job(&id, every).await;
        }
    }
}
