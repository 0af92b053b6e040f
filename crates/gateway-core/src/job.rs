//! Long jobs (video, and image or training APIs that work by tasks): submit, then poll.
//!
//! A provider's job API is two calls: submit returns a [`JobId`]; polling it returns a
//! [`JobStatus`]. Providers never sleep or loop: [`poll_job`] does, to a deadline, with backoff,
//! so every job-based provider waits the same way.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::{Error, ErrorKind, Result};

/// A provider's id for a submitted job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a job is.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobStatus<T> {
    /// Submitted, not started.
    Queued,
    /// Running; `progress` in percent where the provider reports it.
    InProgress {
        /// 0 to 100.
        progress: Option<u8>,
    },
    /// Done, with its outputs.
    Completed(T),
    /// Ended without outputs; the error says why (its kind: a content filter, the provider's
    /// failure, a bad input the provider found late).
    Failed(Error),
}

impl<T> JobStatus<T> {
    /// The status as OpenAI's job APIs name it: `queued`, `in_progress`, `completed`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress { .. } => "in_progress",
            Self::Completed(_) => "completed",
            Self::Failed(_) => "failed",
        }
    }

    /// Whether the job has ended (completed or failed).
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Completed(_) | Self::Failed(_))
    }
}

/// How [`poll_job`] waits: the first wait, growing by half each poll up to `max_interval`,
/// until `deadline` has passed since polling began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// The wait before the first poll.
    pub first_interval: Duration,
    /// The longest wait between two polls.
    pub max_interval: Duration,
    /// The longest the whole wait may take.
    pub deadline: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(5),
            deadline: Duration::from_secs(600),
        }
    }
}

impl PollPolicy {
    /// The wait after `interval`: half as long again, capped.
    fn next(&self, interval: Duration) -> Duration {
        (interval + interval / 2).min(self.max_interval)
    }
}

/// Polls `job` with `poll` until it completes (its output), fails (its error), or `policy`'s
/// deadline passes ([`ErrorKind::Timeout`], naming the job so it can be resumed).
///
/// A poll that fails with a retryable error (a timeout, a dropped connection, a 5xx, a rate
/// limit) is tried again at the next interval: polling only reads, so repeating it is safe. Any
/// other error ends the wait. `on_status` sees every status the provider reported.
pub async fn poll_job<T, F, Fut>(
    job: &JobId,
    policy: PollPolicy,
    mut poll: F,
    mut on_status: impl FnMut(&JobStatus<T>),
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<JobStatus<T>>>,
{
    let started = Instant::now();
    let mut interval = policy.first_interval;
    loop {
        let left = policy.deadline.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "job `{job}` did not finish within {} ms",
                    policy.deadline.as_millis()
                ),
            ));
        }
        tokio::time::sleep(interval.min(left)).await;
        let mut asked_wait = Duration::ZERO;
        match poll().await {
            Ok(status) => {
                on_status(&status);
                match status {
                    JobStatus::Completed(output) => return Ok(output),
                    JobStatus::Failed(error) => return Err(error),
                    _ => {}
                }
            }
            Err(e) if e.is_retryable() => {
                tracing::debug!(job = %job, error = %e, "job poll failed; polling again");
                // A provider that asked us to slow down is heard.
                asked_wait = e.retry_after().unwrap_or_default();
            }
            Err(e) => return Err(e),
        }
        interval = policy.next(interval).max(asked_wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(deadline_ms: u64) -> PollPolicy {
        PollPolicy {
            first_interval: Duration::from_millis(1),
            max_interval: Duration::from_millis(4),
            deadline: Duration::from_millis(deadline_ms),
        }
    }

    #[tokio::test]
    async fn polls_until_completed_and_rides_over_transient_errors() {
        let calls = AtomicU32::new(0);
        let mut seen = Vec::new();
        let out = poll_job(
            &JobId("j1".into()),
            fast(5_000),
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => Ok(JobStatus::Queued),
                        1 => Err(Error::new(ErrorKind::Upstream { status: 502 }, "blip")),
                        2 => Ok(JobStatus::InProgress { progress: Some(40) }),
                        _ => Ok(JobStatus::Completed("video")),
                    }
                }
            },
            |s| seen.push(s.as_str()),
        )
        .await
        .unwrap();
        assert_eq!(out, "video");
        assert_eq!(seen, ["queued", "in_progress", "completed"]);
    }

    #[tokio::test]
    async fn a_failed_job_and_a_permanent_error_end_the_wait() {
        let failed = poll_job::<(), _, _>(
            &JobId("j".into()),
            fast(5_000),
            || async {
                Ok(JobStatus::Failed(Error::new(
                    ErrorKind::ContentFiltered,
                    "nsfw",
                )))
            },
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(failed.kind(), &ErrorKind::ContentFiltered);
        let gone = poll_job::<(), _, _>(
            &JobId("j".into()),
            fast(5_000),
            || async { Err(Error::new(ErrorKind::NotFound, "no such job")) },
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(gone.kind(), &ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn the_deadline_names_the_job() {
        let e = poll_job::<(), _, _>(
            &JobId("slow-job".into()),
            fast(20),
            || async { Ok(JobStatus::InProgress { progress: None }) },
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Timeout);
        assert!(e.message().contains("slow-job"), "{e}");
    }
}
