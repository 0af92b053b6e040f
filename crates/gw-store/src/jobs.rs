//! Video jobs: a job submitted to a provider, kept in the database so that it outlives the
//! process that submitted it.
//!
//! - **Ownership**: a job belongs to the user who created it; [`Store::video_job`] answers
//!   `None` for another user's id, so a client cannot tell it from an id that does not exist.
//! - **Polling**: any replica may poll a job, one at a time: a poller first takes the job's
//!   lease ([`Store::claim_video_job`]), which another replica can take only once it has run out.
//! - **Settlement, exactly once**: the job owns the reservation its submission was admitted with.
//!   Recovery of a dead instance leaves that reservation alone while the job is not settled, and
//!   [`Store::finish_video_job`] sets the job's final state, marks it settled and settles the
//!   reservation in one transaction, only if no one did before: whichever replica sees the end
//!   first charges it, the others change nothing.

use std::time::Duration;

use gateway_core::{Cost, Error, ErrorKind, Result, RouteId, UsageRecord};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Store;
use crate::db::{corrupt, db_error, from_db, to_db};
use crate::settlement::{Settlement, ms};
use crate::time::now_ms;
use crate::users::random_id;

/// Where a job is, as OpenAI's Videos API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Submitted, not started.
    Queued,
    /// Running.
    InProgress,
    /// Done, with its output.
    Completed,
    /// Ended without output.
    Failed,
}

impl JobState {
    /// `queued`, `in_progress`, `completed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::InProgress,
            Self::Completed,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// A job to store, just submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVideoJob {
    /// The owner.
    pub user_id: String,
    /// The gateway's id of the request that created it.
    pub request_id: String,
    /// The route that took the submission.
    pub route: RouteId,
    /// The provider's id for the job.
    pub provider_job_id: String,
    /// The length asked for, in seconds.
    pub seconds: Option<u64>,
    /// The size asked for (`1280x720`), as the client gave it.
    pub size: Option<String>,
    /// The resolution asked for (`720p`).
    pub resolution: Option<String>,
    /// The prompt.
    pub prompt: String,
    /// The reservation the submission was admitted with (none without accounting): the job
    /// owns it from now on.
    pub reservation_id: Option<String>,
    /// What was reserved, in USD, when priced.
    pub estimate: Option<Cost>,
    /// Retries the submission took.
    pub retries: u32,
}

/// Why a job failed: an error kind (`content_filtered`, `upstream`, ...) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// The error kind, snake case.
    pub code: String,
    /// What happened, fit for the job's owner.
    pub message: String,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoJob {
    /// The gateway's id, `video_...`.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The gateway's id of the request that created it.
    pub request_id: String,
    /// The provider id.
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    /// The provider's id for the job.
    pub provider_job_id: String,
    /// Where it is.
    pub status: JobState,
    /// Percent done, when the provider said.
    pub progress: Option<u8>,
    /// The length asked for (or made), in seconds.
    pub seconds: Option<u64>,
    /// The size asked for.
    pub size: Option<String>,
    /// The resolution asked for.
    pub resolution: Option<String>,
    /// The prompt.
    pub prompt: String,
    /// Where the finished video is (a provider URL, or a `data:` URL).
    pub output_url: Option<String>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// The reservation it owns (or owned, once settled).
    pub reservation_id: Option<String>,
    /// What was reserved, when priced.
    pub estimate: Option<Cost>,
    /// What it was charged, once settled (`None`: unpriced or not settled).
    pub cost: Option<Cost>,
    /// Retries the submission took.
    pub retries: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
    /// Unix milliseconds of its end.
    pub completed_at: Option<i64>,
    /// Whether its end was settled.
    pub settled: bool,
}

impl VideoJob {
    /// The route it runs on.
    pub fn route_name(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }

    /// How long it has existed.
    pub fn age(&self) -> Duration {
        Duration::from_millis(u64::try_from(now_ms().saturating_sub(self.created_at)).unwrap_or(0))
    }
}

/// How a job ended, to store with its settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// `Completed` or `Failed`.
    pub status: JobState,
    /// Where the video is, when completed.
    pub output_url: Option<String>,
    /// The length made, when known.
    pub seconds: Option<u64>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// What it was charged.
    pub cost: Option<Cost>,
}

const COLUMNS: &str = "id, user_id, request_id, provider, model, provider_job_id, status,
    progress, seconds, size, resolution, prompt, output_url, error_code, error_message,
    reservation_id, estimate_nanos, cost_nanos, retries, created_at, updated_at, completed_at,
    settled";

fn job_from_row(row: &AnyRow) -> Result<VideoJob> {
    let text = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
    let opt_text = |col: &str| row.try_get::<Option<String>, _>(col).map_err(db_error);
    let opt_int = |col: &str| row.try_get::<Option<i64>, _>(col).map_err(db_error);
    let int = |col: &str| row.try_get::<i64, _>(col).map_err(db_error);
    let status = text("status")?;
    let error = match (opt_text("error_code")?, opt_text("error_message")?) {
        (Some(code), message) => Some(JobError {
            code,
            message: message.unwrap_or_default(),
        }),
        _ => None,
    };
    let cost = |col: &str| Ok::<_, Error>(opt_int(col)?.map(|n| Cost::from_nanos(from_db(n))));
    Ok(VideoJob {
        id: text("id")?,
        user_id: text("user_id")?,
        request_id: text("request_id")?,
        provider: text("provider")?,
        model: text("model")?,
        provider_job_id: text("provider_job_id")?,
        status: JobState::parse(&status)
            .ok_or_else(|| corrupt(&format!("the job status `{status}`")))?,
        progress: opt_int("progress")?.map(|p| p.clamp(0, 100) as u8),
        seconds: opt_int("seconds")?.map(from_db),
        size: opt_text("size")?,
        resolution: opt_text("resolution")?,
        prompt: text("prompt")?,
        output_url: opt_text("output_url")?,
        error,
        reservation_id: opt_text("reservation_id")?,
        estimate: cost("estimate_nanos")?,
        cost: cost("cost_nanos")?,
        retries: u32::try_from(int("retries")?).unwrap_or(u32::MAX),
        created_at: int("created_at")?,
        updated_at: int("updated_at")?,
        completed_at: opt_int("completed_at")?,
        settled: int("settled")? != 0,
    })
}

impl Store {
    /// Stores a job just submitted, with a new id (`video_` and 24 random base62 characters),
    /// queued, and returns it. From now on its reservation is the job's: recovery leaves it
    /// alone until [`Store::finish_video_job`] settles it.
    pub async fn create_video_job(&self, job: NewVideoJob) -> Result<VideoJob> {
        let id = random_id("video_", 24)?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO video_jobs (id, user_id, request_id, provider, model, provider_job_id,
                status, seconds, size, resolution, prompt, reservation_id, estimate_nanos,
                retries, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
        )
        .bind(&id)
        .bind(&job.user_id)
        .bind(&job.request_id)
        .bind(job.route.provider)
        .bind(&*job.route.model)
        .bind(&job.provider_job_id)
        .bind(JobState::Queued.as_str())
        .bind(job.seconds.map(to_db))
        .bind(job.size.as_deref())
        .bind(job.resolution.as_deref())
        .bind(&job.prompt)
        .bind(job.reservation_id.as_deref())
        .bind(job.estimate.map(|c| to_db(c.nanos())))
        .bind(i64::from(job.retries))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.video_job_by_id(&id)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "a stored job could not be read"))
    }

    /// The job `id` if `user_id` owns it; `None` for an unknown id and for another user's.
    pub async fn video_job(&self, id: &str, user_id: &str) -> Result<Option<VideoJob>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM video_jobs WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The job `id`, whoever owns it (for pollers and operators).
    pub async fn video_job_by_id(&self, id: &str) -> Result<Option<VideoJob>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM video_jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Up to `limit` jobs not settled yet whose lease has run out (or was never taken), oldest
    /// first: the ones a poller should take next, after a restart included.
    pub async fn video_jobs_due(&self, limit: u32) -> Result<Vec<VideoJob>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM video_jobs WHERE settled = 0 AND lease_until < $1
             ORDER BY created_at LIMIT $2"
        )))
        .bind(now_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(job_from_row).collect()
    }

    /// Takes (or extends) the poller's lease on job `id` for `lease`, if the job is not settled
    /// and no other instance holds a lease that has not run out. Returns whether this instance
    /// holds it now: one poller per job across replicas.
    pub async fn claim_video_job(&self, id: &str, lease: Duration) -> Result<bool> {
        self.claim_lease("video_jobs", id, lease).await
    }

    /// Gives up this instance's lease on job `id`, so another poller may take it at once.
    pub async fn release_video_job(&self, id: &str) -> Result<()> {
        self.release_lease("video_jobs", id).await
    }

    /// Takes (or extends) this instance's lease on the job `id` of `table` (`video_jobs`,
    /// `fine_tuning_jobs`: a table of jobs with `settled`, `lease_owner` and `lease_until`) for
    /// `lease`, unless it is settled or another instance's lease has not run out.
    pub(crate) async fn claim_lease(
        &self,
        table: &'static str,
        id: &str,
        lease: Duration,
    ) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET lease_owner = $2, lease_until = $3
             WHERE id = $1 AND settled = 0 AND (lease_until < $4 OR lease_owner = $2)"
        )))
        .bind(id)
        .bind(&*self.instance_id)
        .bind(now.saturating_add(ms(lease)))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up this instance's lease on the job `id` of `table`.
    pub(crate) async fn release_lease(&self, table: &'static str, id: &str) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET lease_owner = NULL, lease_until = 0
             WHERE id = $1 AND lease_owner = $2"
        )))
        .bind(id)
        .bind(&*self.instance_id)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Records where a job not settled yet is (`Queued` or `InProgress`, with its progress).
    /// A job already ended is left as it is. Returns whether it changed.
    pub async fn update_video_job(
        &self,
        id: &str,
        status: JobState,
        progress: Option<u8>,
    ) -> Result<bool> {
        if status.is_final() {
            return Err(Error::invalid_request(
                "a job's end is recorded with finish_video_job, which settles it",
            ));
        }
        let done = sqlx::query(
            "UPDATE video_jobs SET status = $2, progress = $3, updated_at = $4
             WHERE id = $1 AND settled = 0",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(progress.map(i64::from))
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the end of job `id` and settles its reservation with `record` (when it has one),
    /// in one transaction, exactly once: returns `false`, changing nothing, when the job was
    /// settled already (another replica saw the end first) or does not exist.
    ///
    /// Without a `record` (a gateway without accounting) only the end is recorded. A reservation
    /// recovered at its estimate after `abandon_after` is corrected to the record, as any late
    /// settlement is: the job still has one usage row.
    pub async fn finish_video_job(
        &self,
        id: &str,
        end: &JobEnd,
        record: Option<UsageRecord>,
    ) -> Result<bool> {
        if !end.status.is_final() {
            return Err(Error::invalid_request(
                "finish_video_job takes a final state: completed or failed",
            ));
        }
        let now = now_ms();
        // A reservation admitted from a lease may still be queued for the writer.
        self.flush_reservations().await;
        let (_writing, mut tx) = self.begin().await?;
        let claimed = sqlx::query(
            "UPDATE video_jobs SET settled = 1, status = $2, progress = $3, output_url = $4,
                seconds = COALESCE($5, seconds), error_code = $6, error_message = $7,
                cost_nanos = $8, completed_at = $9, updated_at = $9, lease_owner = NULL,
                lease_until = 0
             WHERE id = $1 AND settled = 0
             RETURNING reservation_id, user_id",
        )
        .bind(id)
        .bind(end.status.as_str())
        .bind((end.status == JobState::Completed).then_some(100i64))
        .bind(end.output_url.as_deref())
        .bind(end.seconds.map(to_db))
        .bind(end.error.as_ref().map(|e| e.code.as_str()))
        .bind(end.error.as_ref().map(|e| e.message.as_str()))
        .bind(end.cost.map(|c| to_db(c.nanos())))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(row) = claimed else {
            tx.rollback().await.map_err(db_error)?;
            return Ok(false);
        };
        let reservation_id: Option<String> = row.try_get("reservation_id").map_err(db_error)?;
        if let (Some(reservation_id), Some(record)) = (reservation_id, record) {
            let settlement = Settlement::of_job(reservation_id, record);
            self.settle_in(&mut tx, &[settlement]).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            JobState::Queued,
            JobState::InProgress,
            JobState::Completed,
            JobState::Failed,
        ] {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("running"), None);
        assert!(JobState::Failed.is_final() && !JobState::InProgress.is_final());
    }
}
