//! Fine-tuning: stored files (the training data clients upload, and the LoRAs the gateway copies
//! out of a finished run) and fine-tuning jobs with their events, in OpenAI's shapes.
//!
//! - **Files**: a file belongs to the user who created it; [`Store::file`] answers `None` for
//!   another user's id and for a deleted file, so a client cannot tell either from an id that
//!   does not exist. Its bytes are kept in the gateway's media storage (`storage_key`) or, when
//!   the client hosts them, at a URL (`url`); deleting a file marks its row and hands it back, so
//!   the caller can delete the bytes.
//! - **Jobs** are kept exactly like video jobs ([`Store::create_video_job`]): owned by their
//!   user, polled by one replica at a time under a lease ([`Store::claim_fine_tuning_job`]), and
//!   settled exactly once, whichever replica sees the end first
//!   ([`Store::finish_fine_tuning_job`]). A job owns the reservation its submission was admitted
//!   with: recovery of a dead instance leaves it alone while the job is not settled.
//! - **Events**: what happened to a job, written in the same transaction as the change they
//!   describe (creation, a new status, the end) and numbered per job, listed newest first as
//!   OpenAI lists them ([`Store::fine_tuning_events`]).

use std::time::Duration;

use gateway_core::{Cost, Error, ErrorKind, Result, RouteId, UsageRecord};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Store;
use crate::db::{Tx, corrupt, db_error, from_db, to_db};
use crate::jobs::JobError;
use crate::settlement::Settlement;
use crate::time::now_ms;
use crate::users::random_id;

/// Where a fine-tuning job is, as OpenAI's fine-tuning API names it (`validating_files` aside:
/// the gateway does not validate files as a step of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FineTuningStatus {
    /// Submitted, not started.
    Queued,
    /// Training.
    Running,
    /// Done, with its trained weights.
    Succeeded,
    /// Ended without weights.
    Failed,
    /// Stopped at the owner's request.
    Cancelled,
}

impl FineTuningStatus {
    /// Every status.
    pub const ALL: [FineTuningStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The message of the event written when a job moves to this status without a message of
    /// its caller's.
    fn default_message(self) -> &'static str {
        match self {
            Self::Queued => "Job queued",
            Self::Running => "Job started running",
            Self::Succeeded => "The job has successfully completed",
            Self::Failed => "The job failed",
            Self::Cancelled => "The job was cancelled",
        }
    }
}

/// How much an event matters, as OpenAI's fine-tuning events grade them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventLevel {
    /// Progress.
    Info,
    /// Something the owner may want to look at.
    Warn,
    /// A failure.
    Error,
}

impl EventLevel {
    /// `info`, `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    /// The level named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Info, Self::Warn, Self::Error]
            .into_iter()
            .find(|l| l.as_str() == name)
    }
}

/// A file to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// The owner.
    pub user_id: String,
    /// What it is for, as the client said (`fine-tune`).
    pub purpose: String,
    /// Its name, as the client gave it.
    pub filename: String,
    /// Its size.
    pub bytes: u64,
    /// Its media type (`application/zip`).
    pub content_type: String,
    /// Where its bytes are kept in the gateway's media storage; exactly one of this and `url`.
    pub storage_key: Option<String>,
    /// Where the client hosts it, given instead of bytes; exactly one of this and `storage_key`.
    pub url: Option<String>,
}

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The gateway's id, `file-...`.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// What it is for (`fine-tune`).
    pub purpose: String,
    /// Its name.
    pub filename: String,
    /// Its size.
    pub bytes: u64,
    /// Its media type.
    pub content_type: String,
    /// Where its bytes are kept in the gateway's media storage.
    pub storage_key: Option<String>,
    /// Where the client hosts it.
    pub url: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A fine-tuning job to store, just submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFineTuningJob {
    /// The owner.
    pub user_id: String,
    /// The gateway's id of the request that created it.
    pub request_id: String,
    /// The route that took the submission: the provider and the base family (`flux-dev`).
    pub route: RouteId,
    /// The provider's id for the job.
    pub provider_job_id: String,
    /// The id of the stored file it trains on. The caller checks that the owner may use it
    /// ([`Store::file`]) before submitting; the store only requires that it exists.
    pub training_file: String,
    /// The client's suffix for the fine-tuned model's name.
    pub suffix: Option<String>,
    /// The word that calls up what was trained, in prompts.
    pub trigger_word: Option<String>,
    /// The provider options as sent (steps, rank, learning rate, ...).
    pub hyperparameters: Map<String, Value>,
    /// The client's metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The training steps asked for, when known.
    pub steps: Option<u64>,
    /// The reservation the submission was admitted with (none without accounting): the job
    /// owns it from now on.
    pub reservation_id: Option<String>,
    /// What was reserved, in USD, when priced.
    pub estimate: Option<Cost>,
    /// Retries the submission took.
    pub retries: u32,
}

/// A stored fine-tuning job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineTuningJob {
    /// The gateway's id, `ftjob-...`.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The gateway's id of the request that created it.
    pub request_id: String,
    /// The provider id.
    pub provider: String,
    /// The base family trained on (`flux-dev`).
    pub model: String,
    /// The provider's id for the job.
    pub provider_job_id: String,
    /// Where it is.
    pub status: FineTuningStatus,
    /// The id of the file it trains on.
    pub training_file: String,
    /// The client's suffix for the fine-tuned model's name.
    pub suffix: Option<String>,
    /// The word that calls up what was trained.
    pub trigger_word: Option<String>,
    /// The provider options as sent.
    pub hyperparameters: Map<String, Value>,
    /// The client's metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The provider's (temporary) URL of the trained weights, once the run succeeded.
    pub weights_url: Option<String>,
    /// Where the copied weights are kept in the gateway's media storage.
    pub weights_key: Option<String>,
    /// The id of the stored file of the copied weights.
    pub result_file: Option<String>,
    /// The name under which the trained model is used, once succeeded.
    pub fine_tuned_model: Option<String>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// The reservation it owns (or owned, once settled).
    pub reservation_id: Option<String>,
    /// What was reserved, when priced.
    pub estimate: Option<Cost>,
    /// What it was charged, once settled (`None`: unpriced or not settled).
    pub cost: Option<Cost>,
    /// The training steps asked for, or run once it ended (when known).
    pub steps: Option<u64>,
    /// Retries the submission took.
    pub retries: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
    /// Unix milliseconds of its end.
    pub finished_at: Option<i64>,
    /// Whether its end was settled.
    pub settled: bool,
}

impl FineTuningJob {
    /// The route it runs on.
    pub fn route_name(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }

    /// How long it has existed.
    pub fn age(&self) -> Duration {
        Duration::from_millis(u64::try_from(now_ms().saturating_sub(self.created_at)).unwrap_or(0))
    }
}

/// How a fine-tuning job ended, to store with its settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineTuningEnd {
    /// `Succeeded`, `Failed` or `Cancelled`.
    pub status: FineTuningStatus,
    /// Where the copied weights are kept, when succeeded.
    pub weights_key: Option<String>,
    /// The id of the stored file of the copied weights, when succeeded.
    pub result_file: Option<String>,
    /// The name under which the trained model is used, when succeeded.
    pub fine_tuned_model: Option<String>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// What it was charged.
    pub cost: Option<Cost>,
    /// The training steps run, when known (otherwise those asked for stay).
    pub steps: Option<u64>,
}

/// One event of a fine-tuning job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineTuningEvent {
    /// The gateway's id, `ftevent-...`.
    pub id: String,
    /// The job's id.
    pub job_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// How much it matters.
    pub level: EventLevel,
    /// What happened, fit for the job's owner.
    pub message: String,
    /// Its place among the job's events: 1 for the first, then 2, 3, ...
    pub seq: u64,
}

const FILE_COLUMNS: &str =
    "id, user_id, purpose, filename, bytes, content_type, storage_key, url, created_at";

const JOB_COLUMNS: &str = "id, user_id, request_id, provider, model, provider_job_id, status,
    training_file, suffix, trigger_word, hyperparameters, metadata, weights_url, weights_key,
    result_file, fine_tuned_model, error_code, error_message, reservation_id, estimate_nanos,
    cost_nanos, steps, retries, created_at, updated_at, finished_at, settled";

const EVENT_COLUMNS: &str = "id, job_id, created_at, level, message, seq";

fn file_from_row(row: &AnyRow) -> Result<StoredFile> {
    let text = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
    let opt_text = |col: &str| row.try_get::<Option<String>, _>(col).map_err(db_error);
    let int = |col: &str| row.try_get::<i64, _>(col).map_err(db_error);
    Ok(StoredFile {
        id: text("id")?,
        user_id: text("user_id")?,
        purpose: text("purpose")?,
        filename: text("filename")?,
        bytes: from_db(int("bytes")?),
        content_type: text("content_type")?,
        storage_key: opt_text("storage_key")?,
        url: opt_text("url")?,
        created_at: int("created_at")?,
    })
}

/// A JSON object read from column `what` of a job.
fn object(text: &str, what: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(text).map_err(|_| {
        corrupt(&format!(
            "fine-tuning job {what} that are not a JSON object"
        ))
    })
}

fn job_from_row(row: &AnyRow) -> Result<FineTuningJob> {
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
    Ok(FineTuningJob {
        id: text("id")?,
        user_id: text("user_id")?,
        request_id: text("request_id")?,
        provider: text("provider")?,
        model: text("model")?,
        provider_job_id: text("provider_job_id")?,
        status: FineTuningStatus::parse(&status)
            .ok_or_else(|| corrupt(&format!("the fine-tuning job status `{status}`")))?,
        training_file: text("training_file")?,
        suffix: opt_text("suffix")?,
        trigger_word: opt_text("trigger_word")?,
        hyperparameters: object(&text("hyperparameters")?, "hyperparameters")?,
        metadata: opt_text("metadata")?
            .map(|m| object(&m, "metadata"))
            .transpose()?,
        weights_url: opt_text("weights_url")?,
        weights_key: opt_text("weights_key")?,
        result_file: opt_text("result_file")?,
        fine_tuned_model: opt_text("fine_tuned_model")?,
        error,
        reservation_id: opt_text("reservation_id")?,
        estimate: cost("estimate_nanos")?,
        cost: cost("cost_nanos")?,
        steps: opt_int("steps")?.map(from_db),
        retries: u32::try_from(int("retries")?).unwrap_or(u32::MAX),
        created_at: int("created_at")?,
        updated_at: int("updated_at")?,
        finished_at: opt_int("finished_at")?,
        settled: int("settled")? != 0,
    })
}

fn event_from_row(row: &AnyRow) -> Result<FineTuningEvent> {
    let text = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
    let int = |col: &str| row.try_get::<i64, _>(col).map_err(db_error);
    let level = text("level")?;
    Ok(FineTuningEvent {
        id: text("id")?,
        job_id: text("job_id")?,
        created_at: int("created_at")?,
        level: EventLevel::parse(&level)
            .ok_or_else(|| corrupt(&format!("the fine-tuning event level `{level}`")))?,
        message: text("message")?,
        seq: from_db(int("seq")?),
    })
}

/// Writes an event of job `job_id`, numbered after the job's last one. Called only in a
/// transaction that has already written the job's row: that row's lock (PostgreSQL) or the
/// write lock (SQLite) keeps two writers from taking the same number.
async fn add_event(
    tx: &mut Tx,
    job_id: &str,
    level: EventLevel,
    message: &str,
    now: i64,
) -> Result<()> {
    let id = random_id("ftevent-", 24)?;
    sqlx::query(
        "INSERT INTO fine_tuning_events (id, job_id, created_at, level, message, seq)
         SELECT $1, $2, $3, $4, $5, COALESCE(MAX(seq), 0) + 1
         FROM fine_tuning_events WHERE job_id = $2",
    )
    .bind(&id)
    .bind(job_id)
    .bind(now)
    .bind(level.as_str())
    .bind(message)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// `rows` cut to `limit`, and whether there were more (the query fetched `limit + 1`).
fn page<T>(mut rows: Vec<T>, limit: u32) -> (Vec<T>, bool) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

impl Store {
    /// Stores a file's description with a new id (`file-` and 24 random base62 characters) and
    /// returns it. Its bytes are the caller's: already in the media storage under
    /// `storage_key`, or hosted by the client at `url`.
    ///
    /// Fails with [`ErrorKind::InvalidRequest`] unless exactly one of `storage_key` and `url`
    /// is set.
    pub async fn create_file(&self, file: NewFile) -> Result<StoredFile> {
        match (&file.storage_key, &file.url) {
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) => {
                return Err(Error::invalid_request(
                    "storage_key, url: a file needs one: where its bytes are stored, or the URL \
                     the client hosts it at",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid_request(
                    "storage_key, url: a file is either stored by the gateway or hosted by the \
                     client, not both",
                ));
            }
        }
        let id = random_id("file-", 24)?;
        sqlx::query(
            "INSERT INTO files (id, user_id, purpose, filename, bytes, content_type, storage_key,
                url, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&file.user_id)
        .bind(&file.purpose)
        .bind(&file.filename)
        .bind(to_db(file.bytes))
        .bind(&file.content_type)
        .bind(file.storage_key.as_deref())
        .bind(file.url.as_deref())
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.file_by_id(&id)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "a stored file could not be read"))
    }

    /// The file `id` if `user_id` owns it and it is not deleted; `None` for an unknown id, a
    /// deleted file and another user's.
    pub async fn file(&self, id: &str, user_id: &str) -> Result<Option<StoredFile>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE id = $1 AND user_id = $2 AND deleted = 0"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// The file `id`, whoever owns it (to serve a trained LoRA to the provider); `None` for an
    /// unknown id and a deleted file.
    pub async fn file_by_id(&self, id: &str) -> Result<Option<StoredFile>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE id = $1 AND deleted = 0"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// Up to `limit` of the files of `user_id` not deleted, of `purpose` when given, newest
    /// first.
    pub async fn files(
        &self,
        user_id: &str,
        purpose: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredFile>> {
        let rows = match purpose {
            Some(purpose) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {FILE_COLUMNS} FROM files
                 WHERE user_id = $1 AND deleted = 0 AND purpose = $2
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            )))
            .bind(user_id)
            .bind(purpose)
            .bind(i64::from(limit)),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE user_id = $1 AND deleted = 0
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            )))
            .bind(user_id)
            .bind(i64::from(limit)),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(file_from_row).collect()
    }

    /// Marks the file `id` of `user_id` deleted and returns it as it was, so the caller can
    /// delete its bytes (`storage_key`); `None`, changing nothing, for an unknown id, a file
    /// deleted already and another user's. Its row stays, for the jobs that name it.
    pub async fn delete_file(&self, id: &str, user_id: &str) -> Result<Option<StoredFile>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE files SET deleted = $3 WHERE id = $1 AND user_id = $2 AND deleted = 0
             RETURNING {FILE_COLUMNS}"
        )))
        .bind(id)
        .bind(user_id)
        .bind(now_ms().max(1))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// Stores a fine-tuning job just submitted, with a new id (`ftjob-` and 24 random base62
    /// characters), queued, with its first event ("Fine-tuning job created") in the same
    /// transaction, and returns it. From now on its reservation is the job's: recovery leaves
    /// it alone until [`Store::finish_fine_tuning_job`] settles it.
    ///
    /// Fails with [`ErrorKind::Unavailable`] (the database refuses it) when `training_file`
    /// names no stored file.
    pub async fn create_fine_tuning_job(&self, job: NewFineTuningJob) -> Result<FineTuningJob> {
        let id = random_id("ftjob-", 24)?;
        let now = now_ms();
        let hyperparameters = Value::Object(job.hyperparameters).to_string();
        let metadata = job.metadata.map(|m| Value::Object(m).to_string());
        {
            let (_writing, mut tx) = self.begin().await?;
            sqlx::query(
                "INSERT INTO fine_tuning_jobs (id, user_id, request_id, provider, model,
                    provider_job_id, status, training_file, suffix, trigger_word,
                    hyperparameters, metadata, reservation_id, estimate_nanos, steps, retries,
                    created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                    $17, $17)",
            )
            .bind(&id)
            .bind(&job.user_id)
            .bind(&job.request_id)
            .bind(job.route.provider)
            .bind(&*job.route.model)
            .bind(&job.provider_job_id)
            .bind(FineTuningStatus::Queued.as_str())
            .bind(&job.training_file)
            .bind(job.suffix.as_deref())
            .bind(job.trigger_word.as_deref())
            .bind(&hyperparameters)
            .bind(metadata.as_deref())
            .bind(job.reservation_id.as_deref())
            .bind(job.estimate.map(|c| to_db(c.nanos())))
            .bind(job.steps.map(to_db))
            .bind(i64::from(job.retries))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            add_event(
                &mut tx,
                &id,
                EventLevel::Info,
                "Fine-tuning job created",
                now,
            )
            .await?;
            tx.commit().await.map_err(db_error)?;
        }
        self.fine_tuning_job_by_id(&id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "a stored fine-tuning job could not be read",
            )
        })
    }

    /// The fine-tuning job `id` if `user_id` owns it; `None` for an unknown id and for another
    /// user's.
    pub async fn fine_tuning_job(&self, id: &str, user_id: &str) -> Result<Option<FineTuningJob>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM fine_tuning_jobs WHERE id = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The fine-tuning job `id`, whoever owns it (for pollers, operators and serving the
    /// trained model).
    pub async fn fine_tuning_job_by_id(&self, id: &str) -> Result<Option<FineTuningJob>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM fine_tuning_jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Up to `limit` fine-tuning jobs of `user_id`, newest first, and whether there are more.
    /// `after` is OpenAI's cursor: the id of the last job of the previous page, whose older
    /// jobs this page continues with.
    ///
    /// Fails with [`ErrorKind::InvalidRequest`] naming `after` when it is not the id of one of
    /// the user's jobs.
    pub async fn fine_tuning_jobs(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<FineTuningJob>, bool)> {
        let fetch = i64::from(limit) + 1;
        let rows = match after {
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM fine_tuning_jobs WHERE user_id = $1
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                )))
                .bind(user_id)
                .bind(fetch)
                .fetch_all(&self.pool)
                .await
            }
            Some(after) => {
                let created_at: Option<i64> = sqlx::query_scalar(
                    "SELECT created_at FROM fine_tuning_jobs WHERE id = $1 AND user_id = $2",
                )
                .bind(after)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                let Some(created_at) = created_at else {
                    return Err(Error::invalid_request(format!(
                        "after: `{after}` is not the id of one of your fine-tuning jobs"
                    )));
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM fine_tuning_jobs
                     WHERE user_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3))
                     ORDER BY created_at DESC, id DESC LIMIT $4"
                )))
                .bind(user_id)
                .bind(created_at)
                .bind(after)
                .bind(fetch)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(db_error)?;
        let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        Ok(page(jobs, limit))
    }

    /// Up to `limit` fine-tuning jobs not settled yet whose lease has run out (or was never
    /// taken), oldest first: the ones a poller should take next, after a restart included.
    pub async fn fine_tuning_jobs_due(&self, limit: u32) -> Result<Vec<FineTuningJob>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM fine_tuning_jobs WHERE settled = 0 AND lease_until < $1
             ORDER BY created_at LIMIT $2"
        )))
        .bind(now_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(job_from_row).collect()
    }

    /// Takes (or extends) the poller's lease on fine-tuning job `id` for `lease`, if the job is
    /// not settled and no other instance holds a lease that has not run out. Returns whether
    /// this instance holds it now: one poller per job across replicas.
    pub async fn claim_fine_tuning_job(&self, id: &str, lease: Duration) -> Result<bool> {
        self.claim_lease("fine_tuning_jobs", id, lease).await
    }

    /// Gives up this instance's lease on fine-tuning job `id`, so another poller may take it
    /// at once.
    pub async fn release_fine_tuning_job(&self, id: &str) -> Result<()> {
        self.release_lease("fine_tuning_jobs", id).await
    }

    /// Records where a fine-tuning job not settled yet is (`Queued` or `Running`). When the
    /// status changes, an event says so: `message`, or for `Running` "Job started running".
    /// With the status unchanged, `message` (a poller's progress, say) becomes an event unless
    /// it repeats the job's last one. A job already ended is left as it is: returns `false`,
    /// as for an unknown id.
    pub async fn update_fine_tuning_job(
        &self,
        id: &str,
        status: FineTuningStatus,
        message: Option<&str>,
    ) -> Result<bool> {
        if status.is_final() {
            return Err(Error::invalid_request(
                "status: a fine-tuning job's end is recorded with finish_fine_tuning_job, which \
                 settles it",
            ));
        }
        let now = now_ms();
        let (_writing, mut tx) = self.begin().await?;
        // Under PostgreSQL's row lock a concurrent update of the same status finds nothing to
        // change here, so a status change is announced once.
        let changed = sqlx::query(
            "UPDATE fine_tuning_jobs SET status = $2, updated_at = $3
             WHERE id = $1 AND settled = 0 AND status <> $2",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected()
            == 1;
        let event = if changed {
            Some(message.unwrap_or(status.default_message()))
        } else {
            let open = sqlx::query(
                "UPDATE fine_tuning_jobs SET updated_at = $2 WHERE id = $1 AND settled = 0",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected()
                == 1;
            if !open {
                tx.rollback().await.map_err(db_error)?;
                return Ok(false);
            }
            match message {
                Some(message) => {
                    let last: Option<String> = sqlx::query_scalar(
                        "SELECT message FROM fine_tuning_events WHERE job_id = $1
                         ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    (last.as_deref() != Some(message)).then_some(message)
                }
                None => None,
            }
        };
        if let Some(message) = event {
            add_event(&mut tx, id, EventLevel::Info, message, now).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// Records the provider's URL of the trained weights of fine-tuning job `id`, not settled
    /// yet: the run succeeded, but the weights are not copied into the gateway's storage yet, so
    /// a restart before [`Store::finish_fine_tuning_job`] can copy them again. Returns whether
    /// it was recorded (`false` for an ended job or an unknown id).
    pub async fn set_fine_tuning_weights(&self, id: &str, weights_url: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE fine_tuning_jobs SET weights_url = $2, updated_at = $3
             WHERE id = $1 AND settled = 0",
        )
        .bind(id)
        .bind(weights_url)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the end of fine-tuning job `id`, with its final events ("The job has
    /// successfully completed", "The job failed: `message`", "The job was cancelled"), and
    /// settles its reservation with `record` (when it has one), in one transaction, exactly
    /// once: returns `false`, changing nothing, when the job was settled already (another
    /// replica saw the end first) or does not exist.
    ///
    /// Without a `record` (a gateway without accounting) only the end is recorded. A
    /// reservation recovered at its estimate after `abandon_after` is corrected to the record,
    /// as any late settlement is: the job still has one usage row.
    pub async fn finish_fine_tuning_job(
        &self,
        id: &str,
        end: &FineTuningEnd,
        record: Option<UsageRecord>,
    ) -> Result<bool> {
        if !end.status.is_final() {
            return Err(Error::invalid_request(
                "status: finish_fine_tuning_job takes a final status: succeeded, failed or \
                 cancelled",
            ));
        }
        let now = now_ms();
        // A reservation admitted from a lease may still be queued for the writer.
        self.flush_reservations().await;
        let (_writing, mut tx) = self.begin().await?;
        let claimed = sqlx::query(
            "UPDATE fine_tuning_jobs SET settled = 1, status = $2, weights_key = $3,
                result_file = $4, fine_tuned_model = $5, error_code = $6, error_message = $7,
                cost_nanos = $8, steps = COALESCE($9, steps), finished_at = $10,
                updated_at = $10, lease_owner = NULL, lease_until = 0
             WHERE id = $1 AND settled = 0
             RETURNING reservation_id, user_id",
        )
        .bind(id)
        .bind(end.status.as_str())
        .bind(end.weights_key.as_deref())
        .bind(end.result_file.as_deref())
        .bind(end.fine_tuned_model.as_deref())
        .bind(end.error.as_ref().map(|e| e.code.as_str()))
        .bind(end.error.as_ref().map(|e| e.message.as_str()))
        .bind(end.cost.map(|c| to_db(c.nanos())))
        .bind(end.steps.map(to_db))
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
        for (level, message) in final_events(end) {
            add_event(&mut tx, id, level, &message, now).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// Up to `limit` events of fine-tuning job `job_id`, newest first, and whether there are
    /// more; `None` when `user_id` does not own the job (or it does not exist). `after` is
    /// OpenAI's cursor: the id of the last event of the previous page.
    ///
    /// Fails with [`ErrorKind::InvalidRequest`] naming `after` when it is not the id of one of
    /// the job's events.
    pub async fn fine_tuning_events(
        &self,
        job_id: &str,
        user_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Option<(Vec<FineTuningEvent>, bool)>> {
        let owned: Option<String> =
            sqlx::query_scalar("SELECT id FROM fine_tuning_jobs WHERE id = $1 AND user_id = $2")
                .bind(job_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        if owned.is_none() {
            return Ok(None);
        }
        let before = match after {
            None => i64::MAX,
            Some(after) => {
                let seq: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM fine_tuning_events WHERE id = $1 AND job_id = $2",
                )
                .bind(after)
                .bind(job_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                seq.ok_or_else(|| {
                    Error::invalid_request(format!(
                        "after: `{after}` is not the id of an event of fine-tuning job \
                         `{job_id}`"
                    ))
                })?
            }
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM fine_tuning_events WHERE job_id = $1 AND seq < $2
             ORDER BY seq DESC LIMIT $3"
        )))
        .bind(job_id)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(page(events, limit)))
    }
}

/// The events that record a job's end, in the order they are written.
fn final_events(end: &FineTuningEnd) -> Vec<(EventLevel, String)> {
    match end.status {
        FineTuningStatus::Succeeded => {
            let mut events = Vec::with_capacity(2);
            if let Some(model) = &end.fine_tuned_model {
                events.push((
                    EventLevel::Info,
                    format!("New fine-tuned model created: {model}"),
                ));
            }
            events.push((
                EventLevel::Info,
                FineTuningStatus::Succeeded.default_message().to_owned(),
            ));
            events
        }
        FineTuningStatus::Failed => {
            let message = match &end.error {
                Some(error) if !error.message.is_empty() => {
                    format!("The job failed: {}", error.message)
                }
                _ => FineTuningStatus::Failed.default_message().to_owned(),
            };
            vec![(EventLevel::Error, message)]
        }
        status => vec![(EventLevel::Info, status.default_message().to_owned())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in FineTuningStatus::ALL {
            assert_eq!(FineTuningStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(FineTuningStatus::parse("in_progress"), None);
        assert_eq!(FineTuningStatus::parse("validating_files"), None);
        let finals: Vec<_> = FineTuningStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                FineTuningStatus::Succeeded,
                FineTuningStatus::Failed,
                FineTuningStatus::Cancelled
            ]
        );
    }

    #[test]
    fn levels_round_trip() {
        for l in [EventLevel::Info, EventLevel::Warn, EventLevel::Error] {
            assert_eq!(EventLevel::parse(l.as_str()), Some(l));
        }
        assert_eq!(EventLevel::parse("warning"), None);
    }

    fn end(status: FineTuningStatus) -> FineTuningEnd {
        FineTuningEnd {
            status,
            weights_key: None,
            result_file: None,
            fine_tuned_model: None,
            error: None,
            cost: None,
            steps: None,
        }
    }

    #[test]
    fn final_event_texts() {
        let ok = FineTuningEnd {
            fine_tuned_model: Some("ft:wavespeed/flux-dev:me:ftjob-1".into()),
            ..end(FineTuningStatus::Succeeded)
        };
        assert_eq!(
            final_events(&ok),
            [
                (
                    EventLevel::Info,
                    "New fine-tuned model created: ft:wavespeed/flux-dev:me:ftjob-1".to_owned()
                ),
                (
                    EventLevel::Info,
                    "The job has successfully completed".to_owned()
                ),
            ]
        );
        let failed = FineTuningEnd {
            error: Some(JobError {
                code: "upstream".into(),
                message: "the trainer ran out of memory".into(),
            }),
            ..end(FineTuningStatus::Failed)
        };
        assert_eq!(
            final_events(&failed),
            [(
                EventLevel::Error,
                "The job failed: the trainer ran out of memory".to_owned()
            )]
        );
        assert_eq!(
            final_events(&end(FineTuningStatus::Failed)),
            [(EventLevel::Error, "The job failed".to_owned())]
        );
        assert_eq!(
            final_events(&end(FineTuningStatus::Cancelled)),
            [(EventLevel::Info, "The job was cancelled".to_owned())]
        );
    }

    #[test]
    fn pages() {
        assert_eq!(page(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(page(vec![1, 2], 2), (vec![1, 2], false));
        assert_eq!(page(Vec::<u8>::new(), 0), (vec![], false));
        assert_eq!(page(vec![1], 0), (vec![], true));
    }
}
