//! WaveSpeedAI's task API, for every modality: submit a model's input once, then poll the task
//! until it ends.
//!
//! - Submit: `POST {base}/api/v3/{model-id}` with the model's JSON input
//!   (<https://wavespeed.ai/docs/submit-task>).
//! - Poll: `GET {base}/api/v3/predictions/{id}/result` (<https://wavespeed.ai/docs/get-result>;
//!   the path the official SDK and MCP server use), always on the configured base URL: the
//!   answer's `urls.get` names a host the gateway did not choose.
//!
//! A submission is never repeated here, and a failure after which a task may exist is marked
//! [in doubt](gateway_core::Error::in_doubt), so the router neither retries nor falls back: the
//! official SDK treats a submission that got no answer the same way ("The task may already have
//! been created, so the SDK will not retry the POST automatically", `_SubmissionError` in
//! <https://github.com/WaveSpeedAI/wavespeed-python/blob/a4207182c5f22beed7e5e797abd655f99110427f/src/wavespeed/api/client.py>).

use gateway_core::http::{read_json, send};
use gateway_core::job::poll_job;
use gateway_core::{Error, ErrorKind, JobId, JobStatus, Result};
use serde_json::{Map, Value};

use crate::wire::{Envelope, PredictionData};
use crate::{PROVIDER, WaveSpeedClient, error};

/// A task as WaveSpeed reports it.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Prediction {
    /// The task id, for polling (and for finding the task again after a timeout).
    pub id: String,
    /// The model that runs it, as WaveSpeed names it.
    pub model: Option<String>,
    /// `created`, `processing`, `completed`, `failed`, ... as WaveSpeed writes it.
    pub status: String,
    /// The outputs of a completed task: URLs, bare base64 with `enable_base64_output`, or, for
    /// some models, other strings or objects.
    pub outputs: Vec<Value>,
    /// Per output, whether WaveSpeed's checker flagged it as NSFW.
    pub has_nsfw_contents: Vec<bool>,
    /// Why a task failed (empty otherwise).
    pub error: Option<String>,
    /// Milliseconds of inference, when reported.
    pub inference_ms: Option<u64>,
    /// A sync-mode answer whose wait ran out while the task goes on (`data.code` 5004, or
    /// `processing` with "Sync mode timed out"): poll it.
    pub sync_timed_out: bool,
}

impl Prediction {
    fn from_wire(data: PredictionData) -> Self {
        let status = data.status.unwrap_or_default();
        let error = data.error.filter(|e| !e.trim().is_empty());
        // The official SDK's `_format_sync_mode_error`.
        let sync_timed_out = data.code == Some(5004)
            || (status == "processing"
                && error
                    .as_deref()
                    .is_some_and(|e| e.contains("Sync mode timed out")));
        Self {
            id: data.id,
            model: data.model,
            status,
            outputs: data.outputs,
            has_nsfw_contents: data.has_nsfw_contents,
            error,
            inference_ms: data.timings.and_then(|t| t.inference),
            sync_timed_out,
        }
    }

    /// Where the task is. `completed` (and `succeeded`, which some model pages print) ends it
    /// with its outputs; `failed`, `cancelled`, `timeout` (terminal in the official SDK) and
    /// `deleted` (terminal in the official AI SDK provider) end it with an error; everything
    /// else, unknown words included, is still going.
    pub fn job_status(self) -> JobStatus<Prediction> {
        if self.sync_timed_out {
            return JobStatus::InProgress { progress: None };
        }
        match self.status.as_str() {
            "completed" | "succeeded" => JobStatus::Completed(self),
            "failed" | "cancelled" | "canceled" | "timeout" | "deleted" => JobStatus::Failed(
                error::failed_task(&self.id, &self.status, self.error.as_deref())
                    .with_provider(PROVIDER),
            ),
            "created" | "queued" | "pending" => JobStatus::Queued,
            _ => JobStatus::InProgress { progress: None },
        }
    }
}

/// Whether `model` can be put in a URL path as it is: segments of letters, digits, `-`, `_`
/// and `.`, separated by single slashes (`wavespeed-ai/flux-dev`,
/// `bytedance/seedream-v4.5/edit`).
pub(crate) fn valid_model_path(model: &str) -> bool {
    !model.is_empty()
        && model.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Marks `e`, a failure of a submission, in doubt unless it proves no task was created: an
/// HTTP error answer (WaveSpeed refused: 4xx, 429, 5xx), a request that could not be built, or a
/// connection that was never made. A timeout, a connection broken after the request went out, or
/// an answer that cannot be read may all hide a created task.
fn submit_failure(e: Error) -> Error {
    if e.status().is_some() {
        return e;
    }
    let never_connected = gateway_core::http::never_connected(&e);
    match e.kind() {
        ErrorKind::Connect | ErrorKind::Timeout if never_connected => e,
        ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Decode => e.in_doubt(),
        _ => e,
    }
}

/// The prediction in an envelope, or the error its `code` stands for.
fn prediction(envelope: Envelope) -> Result<Prediction> {
    if envelope.code.is_some_and(|c| c != 200) {
        return Err(error::envelope_error(&envelope).with_provider(PROVIDER));
    }
    let data = envelope.data.unwrap_or(Value::Null);
    let data: PredictionData = serde_json::from_value(data.clone()).map_err(|e| {
        Error::decode(format!("unexpected prediction: {e}"))
            .with_provider(PROVIDER)
            .with_body(&data.to_string())
    })?;
    if !valid_job_id(&data.id) {
        return Err(Error::decode(format!(
            "the task id `{}` is not one the gateway can poll",
            data.id.escape_debug()
        ))
        .with_provider(PROVIDER));
    }
    Ok(Prediction::from_wire(data))
}

impl WaveSpeedClient {
    /// Submits `input` to `model` (`POST /api/v3/{model}`), once: the answer is the task as
    /// created (or, with `enable_sync_mode` in `input`, usually finished).
    ///
    /// A failure after which the task may exist (a timeout, a connection broken once the
    /// request was sent, an answer that cannot be read) is marked
    /// [in doubt](Error::is_in_doubt); a failure that proves none was created (no connection,
    /// an error answer such as a 429 or 5xx) is an ordinary error, retryable where its kind is.
    pub async fn submit(&self, model: &str, input: &Map<String, Value>) -> Result<Prediction> {
        if !valid_model_path(model) {
            return Err(Error::invalid_request(format!(
                "`{}` is not a WaveSpeed model id",
                model.escape_debug()
            ))
            .with_param("model")
            .with_provider(PROVIDER));
        }
        let path = format!("/api/v3/{model}");
        let answer = async {
            let response = self
                .upstream
                .post_json(&path, input, error::classify)
                .await?;
            read_json::<Envelope>(PROVIDER, response).await
        }
        .await
        .map_err(submit_failure)?;
        let submitted = prediction(answer).map_err(|e| match e.kind() {
            // A 200 whose task cannot be read may hide a created task.
            ErrorKind::Decode => e.in_doubt(),
            _ => e,
        })?;
        tracing::info!(job = %submitted.id, model, status = %submitted.status, "wavespeed task submitted");
        Ok(submitted)
    }

    /// The task's current state (`GET /api/v3/predictions/{id}/result` on the base URL): one
    /// read, safe to repeat.
    pub async fn prediction(&self, job: &JobId) -> Result<Prediction> {
        if !valid_job_id(&job.0) {
            return Err(Error::invalid_request(format!(
                "`{}` is not a WaveSpeed task id",
                job.0.escape_debug()
            ))
            .with_provider(PROVIDER));
        }
        let request = self
            .upstream
            .get(&format!("/api/v3/predictions/{}/result", job.0));
        let response = send(PROVIDER, request, error::classify).await?;
        prediction(read_json::<Envelope>(PROVIDER, response).await?)
    }

    /// The task's state as a [`JobStatus`], for [`gateway_core::job::poll_job`].
    pub async fn poll(&self, job: &JobId) -> Result<JobStatus<Prediction>> {
        Ok(self.prediction(job).await?.job_status())
    }

    /// Submits `input` to `model` once and waits, with this client's
    /// [`PollPolicy`](gateway_core::PollPolicy), until the task completes (its prediction), fails
    /// (the error its message stands for), or the deadline passes (`Timeout`, naming the task).
    ///
    /// Once the task exists, every failure but its own failure is in doubt: the task may still
    /// run, and be billed, at WaveSpeed, so the work must not be sent again.
    pub async fn run(&self, model: &str, input: &Map<String, Value>) -> Result<Prediction> {
        let submitted = self.submit(model, input).await?;
        let job = JobId(submitted.id.clone());
        match submitted.job_status() {
            JobStatus::Completed(done) => return Ok(done),
            JobStatus::Failed(e) => return Err(e),
            _ => {}
        }
        let mut failed = false;
        let result = poll_job(
            &job,
            self.poll,
            || self.poll(&job),
            |status| failed |= matches!(status, JobStatus::Failed(_)),
        )
        .await;
        result.map_err(|e| {
            if failed {
                return e;
            }
            let e = if e.provider().is_empty() {
                e.with_provider(PROVIDER)
            } else {
                e
            };
            tracing::warn!(job = %job, error = %e, "wavespeed task left unfinished");
            e.in_doubt()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(v: Value) -> Envelope {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn model_paths_and_job_ids() {
        for ok in [
            "wavespeed-ai/flux-dev",
            "bytedance/seedream-v4.5/edit",
            "wavespeed-ai/hunyuan-video-1.5/text-to-video",
        ] {
            assert!(valid_model_path(ok), "{ok}");
        }
        for bad in ["", "/x", "a//b", "a/../b", "a/b?c", "a b", "a/b#c", "x/"] {
            assert!(!valid_model_path(bad), "{bad}");
        }
        assert!(valid_job_id("0f1e2d3c4b5a"));
        assert!(!valid_job_id("../x") && !valid_job_id("") && !valid_job_id("a/b"));
    }

    #[test]
    fn statuses_map_to_job_statuses() {
        let p = |status: &str| {
            prediction(envelope(
                json!({"code": 200, "message": "success", "data": {
                    "id": "t1", "status": status, "outputs": [], "error": "",
                }}),
            ))
            .unwrap()
            .job_status()
        };
        assert_eq!(p("created").as_str(), "queued");
        assert_eq!(p("processing").as_str(), "in_progress");
        assert_eq!(p("something-new").as_str(), "in_progress");
        assert_eq!(p("completed").as_str(), "completed");
        for end in ["failed", "cancelled", "timeout", "deleted"] {
            assert_eq!(p(end).as_str(), "failed", "{end}");
        }
    }

    #[test]
    fn a_sync_timeout_is_still_running() {
        // The official SDK's test body (`test_run_sync_mode_timeout_raises_without_fallback`).
        let answer = prediction(envelope(json!({"code": 200, "message": "success", "data": {
            "id": "req-timeout",
            "status": "processing",
            "code": 5004,
            "error": "Sync mode timed out after 90 seconds. The prediction is still processing asynchronously.",
            "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/req-timeout/result"}
        }})))
        .unwrap();
        assert!(answer.sync_timed_out);
        assert_eq!(answer.job_status().as_str(), "in_progress");
    }

    #[test]
    fn envelope_errors_and_bad_bodies() {
        let e = prediction(envelope(
            json!({"code": 401, "message": "Invalid API key", "data": null}),
        ))
        .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Auth);
        assert_eq!(e.provider(), PROVIDER);
        let e = prediction(envelope(json!({"code": 200, "data": null}))).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Decode);
        let e = prediction(envelope(json!({"code": 200, "data": {"id": "../../x"}}))).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Decode);
        // No `code` at all (the official SDK's mocks): the data is read.
        let ok = prediction(envelope(json!({"data": {"id": "req-123"}}))).unwrap();
        assert_eq!(ok.id, "req-123");
    }

    #[test]
    fn what_a_submit_failure_proves() {
        let answered = Error::new(ErrorKind::Upstream { status: 503 }, "busy").with_status(503);
        assert!(!submit_failure(answered).is_in_doubt());
        let lost = Error::new(ErrorKind::Connect, "broke");
        assert!(submit_failure(lost).is_in_doubt());
        let slow = Error::new(ErrorKind::Timeout, "slow");
        assert!(submit_failure(slow).is_in_doubt());
        let garbled = Error::decode("not JSON");
        assert!(submit_failure(garbled).is_in_doubt());
        let unsent = Error::invalid_request("cannot encode");
        assert!(!submit_failure(unsent).is_in_doubt());
    }
}
