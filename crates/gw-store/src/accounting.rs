//! Admission, settlement, and recovery of reservations left by dead processes.
//!
//! Admission is one transaction: make sure the user's counter row for the period exists, then a
//! single conditional `UPDATE` adds the estimate to every counter only if no limit would be
//! passed. The database serialises writers of a row (PostgreSQL row lock, re-checking the
//! `WHERE` against the committed row; SQLite's one writer), so `rows_affected() == 1` is the
//! whole admission decision and concurrent requests cannot overshoot.

use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use gateway_core::{
    Accounting, Admission, Amount, Attempt, Cost, Error, ErrorKind, Modality, Outcome, Reservation,
    Result, UsageRecord,
};
use sqlx::Row;
use tokio::task::JoinHandle;

use crate::counters::{COUNTERS, Counter, amount_deltas};
use crate::db::{Tx, corrupt, db_error, from_db, to_db};
use crate::time::{now_ms, unix_ms};
use crate::users::random_base62;
use crate::{Plan, Store};

/// Makes sure the counter row of (user, period) exists; `$1` user, `$2` period, `$3` now.
const ENSURE_COUNTERS: &str = "INSERT INTO usage_counters (user_id, period, updated_at)
     VALUES ($1, $2, $3) ON CONFLICT (user_id, period) DO NOTHING";

/// Adds the deltas `$3`..`$13` to the counters of (`$1` user, `$2` period) if, for each counter,
/// its limit (`$14`..`$24`, negative = none) is not passed. `$25` is now.
const ADMIT: &str = "UPDATE usage_counters SET
        text_requests   = text_requests   + $3,
        text_tokens     = text_tokens     + $4,
        image_requests  = image_requests  + $5,
        image_units     = image_units     + $6,
        video_requests  = video_requests  + $7,
        video_units     = video_units     + $8,
        audio_requests  = audio_requests  + $9,
        audio_units     = audio_units     + $10,
        search_requests = search_requests + $11,
        search_units    = search_units    + $12,
        cost_nanos      = cost_nanos      + $13,
        updated_at      = $25
    WHERE user_id = $1 AND period = $2
      AND ($14 < 0 OR text_requests   + $3  <= $14)
      AND ($15 < 0 OR text_tokens     + $4  <= $15)
      AND ($16 < 0 OR image_requests  + $5  <= $16)
      AND ($17 < 0 OR image_units     + $6  <= $17)
      AND ($18 < 0 OR video_requests  + $7  <= $18)
      AND ($19 < 0 OR video_units     + $8  <= $19)
      AND ($20 < 0 OR audio_requests  + $9  <= $20)
      AND ($21 < 0 OR audio_units     + $10 <= $21)
      AND ($22 < 0 OR search_requests + $11 <= $22)
      AND ($23 < 0 OR search_units    + $12 <= $23)
      AND ($24 < 0 OR cost_nanos      + $13 <= $24)";

/// Adds the signed deltas `$3`..`$13` to the counters of (`$1`, `$2`) without a limit check,
/// never below zero. `$14` is now. For settling and for corrections.
const ADJUST: &str = "UPDATE usage_counters SET
        text_requests   = CASE WHEN text_requests   + $3  < 0 THEN 0 ELSE text_requests   + $3  END,
        text_tokens     = CASE WHEN text_tokens     + $4  < 0 THEN 0 ELSE text_tokens     + $4  END,
        image_requests  = CASE WHEN image_requests  + $5  < 0 THEN 0 ELSE image_requests  + $5  END,
        image_units     = CASE WHEN image_units     + $6  < 0 THEN 0 ELSE image_units     + $6  END,
        video_requests  = CASE WHEN video_requests  + $7  < 0 THEN 0 ELSE video_requests  + $7  END,
        video_units     = CASE WHEN video_units     + $8  < 0 THEN 0 ELSE video_units     + $8  END,
        audio_requests  = CASE WHEN audio_requests  + $9  < 0 THEN 0 ELSE audio_requests  + $9  END,
        audio_units     = CASE WHEN audio_units     + $10 < 0 THEN 0 ELSE audio_units     + $10 END,
        search_requests = CASE WHEN search_requests + $11 < 0 THEN 0 ELSE search_requests + $11 END,
        search_units    = CASE WHEN search_units    + $12 < 0 THEN 0 ELSE search_units    + $12 END,
        cost_nanos      = CASE WHEN cost_nanos      + $13 < 0 THEN 0 ELSE cost_nanos      + $13 END,
        updated_at      = $14
    WHERE user_id = $1 AND period = $2";

pub(crate) const SELECT_COUNTERS: &str = "SELECT text_requests, text_tokens, image_requests,
        image_units, video_requests, video_units, audio_requests, audio_units, search_requests,
        search_units, cost_nanos
    FROM usage_counters WHERE user_id = $1 AND period = $2";

const INSERT_RESERVATION: &str = "INSERT INTO reservations (id, request_id, user_id, period,
        provider, model, modality, operation, requests, tokens, units, cost_nanos, instance_id,
        created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

const TAKE_RESERVATION: &str = "DELETE FROM reservations WHERE id = $1
    RETURNING user_id, period, modality, requests, tokens, units, cost_nanos";

const INSERT_LOG: &str = "INSERT INTO usage_log (request_id, reservation_id, user_id, period,
        provider, model, modality, operation, status, error_message, input_tokens,
        output_tokens, cached_input_tokens, reasoning_tokens, units, cost_nanos,
        pricing_version, estimated, billable, latency_ms, ttft_ms, retries, cached, created_at,
        attempts)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
        $19, $20, $21, $22, $23, $24, $25)";

const UPSERT_SUMMARY: &str = "INSERT INTO usage_summary (user_id, period, provider, model,
        modality, requests, errors, input_tokens, output_tokens, cached_input_tokens,
        reasoning_tokens, units, cost_nanos, unpriced, estimated, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT (user_id, period, provider, model, modality) DO UPDATE SET
        requests            = usage_summary.requests            + excluded.requests,
        errors              = usage_summary.errors              + excluded.errors,
        input_tokens        = usage_summary.input_tokens        + excluded.input_tokens,
        output_tokens       = usage_summary.output_tokens       + excluded.output_tokens,
        cached_input_tokens = usage_summary.cached_input_tokens + excluded.cached_input_tokens,
        reasoning_tokens    = usage_summary.reasoning_tokens    + excluded.reasoning_tokens,
        units               = usage_summary.units               + excluded.units,
        cost_nanos          = usage_summary.cost_nanos          + excluded.cost_nanos,
        unpriced            = usage_summary.unpriced            + excluded.unpriced,
        estimated           = usage_summary.estimated           + excluded.estimated,
        updated_at          = excluded.updated_at";

/// The status of a usage-log row written by [`Store::recover_stale`].
pub const RECOVERED: &str = "recovered";

/// One usage-log row, before it is written.
struct LogEntry<'a> {
    request_id: &'a str,
    reservation_id: &'a str,
    user_id: &'a str,
    period: &'a str,
    provider: &'a str,
    model: &'a str,
    modality: Modality,
    operation: &'a str,
    status: &'a str,
    error_message: Option<&'a str>,
    input_tokens: u64,
    output_tokens: u64,
    cached_input_tokens: u64,
    reasoning_tokens: u64,
    units: u64,
    cost: Option<Cost>,
    pricing_version: Option<&'a str>,
    estimated: bool,
    billable: bool,
    latency: Option<Duration>,
    time_to_first_token: Option<Duration>,
    retries: u32,
    cached: bool,
    /// The attempts as a JSON array (see [`attempts_json`]).
    attempts: Option<String>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl LogEntry<'_> {
    /// Writes the row and adds it to the summary, in `tx`.
    async fn write(&self, tx: &mut Tx, now: i64) -> Result<()> {
        sqlx::query(INSERT_LOG)
            .bind(self.request_id)
            .bind(self.reservation_id)
            .bind(self.user_id)
            .bind(self.period)
            .bind(self.provider)
            .bind(self.model)
            .bind(self.modality.as_str())
            .bind(self.operation)
            .bind(self.status)
            .bind(self.error_message)
            .bind(to_db(self.input_tokens))
            .bind(to_db(self.output_tokens))
            .bind(to_db(self.cached_input_tokens))
            .bind(to_db(self.reasoning_tokens))
            .bind(to_db(self.units))
            .bind(self.cost.map(|c| to_db(c.nanos())))
            .bind(self.pricing_version)
            .bind(i64::from(self.estimated))
            .bind(i64::from(self.billable))
            .bind(self.latency.map(ms))
            .bind(self.time_to_first_token.map(ms))
            .bind(i64::from(self.retries))
            .bind(i64::from(self.cached))
            .bind(now)
            .bind(self.attempts.as_deref())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        let is_error = self.status != "ok" && self.status != RECOVERED;
        sqlx::query(UPSERT_SUMMARY)
            .bind(self.user_id)
            .bind(self.period)
            .bind(self.provider)
            .bind(self.model)
            .bind(self.modality.as_str())
            .bind(1i64)
            .bind(i64::from(is_error))
            .bind(to_db(self.input_tokens))
            .bind(to_db(self.output_tokens))
            .bind(to_db(self.cached_input_tokens))
            .bind(to_db(self.reasoning_tokens))
            .bind(to_db(self.units))
            .bind(to_db(self.cost.map_or(0, Cost::nanos)))
            .bind(i64::from(self.cost.is_none()))
            .bind(i64::from(self.estimated))
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// Binds the eleven counter values of `values` in column order.
fn bind_counters<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    values: &[i64; COUNTERS],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for &v in values {
        q = q.bind(v);
    }
    q
}

/// Ensures the counter row exists and adds `deltas` to it (no limit check, floored at zero).
pub(crate) async fn adjust_counters(
    tx: &mut Tx,
    user_id: &str,
    period: &str,
    deltas: &[i64; COUNTERS],
) -> Result<()> {
    let now = now_ms();
    sqlx::query(ENSURE_COUNTERS)
        .bind(user_id)
        .bind(period)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    bind_counters(sqlx::query(ADJUST).bind(user_id).bind(period), deltas)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Reads the counters of (user, period) from a row of [`SELECT_COUNTERS`].
pub(crate) fn counters_from_row(row: &sqlx::any::AnyRow) -> Result<[i64; COUNTERS]> {
    let mut values = [0i64; COUNTERS];
    for (i, v) in values.iter_mut().enumerate() {
        *v = row.try_get(i).map_err(db_error)?;
    }
    Ok(values)
}

/// The limit of each counter that `modality` touches; -1 (none) for the others, so that a
/// request is never refused over a counter it does not add to.
fn limits_for(plan: &Plan, modality: Modality) -> [i64; COUNTERS] {
    let mut limits = [-1i64; COUNTERS];
    for c in Counter::ALL {
        if c.modality().is_none_or(|m| m == modality) {
            limits[c.index()] = plan.limit(c).map_or(-1, to_db);
        }
    }
    limits
}

/// The estimate to reserve: the router's, plus the plan's `default_max_tokens` of output
/// (priced at the output price) for a text request that set no `max_tokens`.
fn full_estimate(plan: &Plan, admission: &Admission) -> Amount {
    let mut estimate = admission.estimate;
    if admission.modality == Modality::Text
        && admission.max_tokens.is_none()
        && let Some(extra) = plan.default_max_tokens
    {
        estimate.tokens = estimate.tokens.saturating_add(extra);
        if let Some(price) = admission.output_price {
            let output = Cost::per_million(price, extra);
            estimate.cost = Some(estimate.cost.unwrap_or(Cost::ZERO) + output);
        }
    }
    estimate
}

/// The quota error for a refused admission: names the first counter the estimate would pass.
fn quota_error(
    plan: &Plan,
    period: &str,
    used: &[i64; COUNTERS],
    deltas: &[i64; COUNTERS],
    limits: &[i64; COUNTERS],
) -> Error {
    let hit = Counter::ALL.into_iter().find(|c| {
        let i = c.index();
        limits[i] >= 0 && used[i].saturating_add(deltas[i]) > limits[i]
    });
    let message = match hit {
        Some(c) => {
            let i = c.index();
            let show = |v: i64| c.format_value(from_db(v));
            format!(
                "quota exceeded: plan `{}` allows {} {} per {}; {} used in period {}, this \
                 request needs {} more",
                plan.name,
                show(limits[i]),
                c,
                plan.period,
                show(used[i]),
                period,
                show(deltas[i]),
            )
        }
        None => format!(
            "quota exceeded: plan `{}` has no allowance left in period {period}",
            plan.name
        ),
    };
    Error::new(ErrorKind::QuotaExceeded, message)
}

impl Store {
    /// Checks `admission` against the user's plan (no write yet) and works out what to reserve.
    async fn prepare_admission(&self, admission: Admission) -> Result<Prepared> {
        let plan_name = self.plan_of(&admission.user_id).await?;
        let Some(plan_name) = plan_name else {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("unknown user `{}`", admission.user_id),
            ));
        };
        let plan = self.plan_named(&admission.user_id, &plan_name)?;
        plan.check(&admission)?;
        let estimate = full_estimate(plan, &admission);
        let now = SystemTime::now();
        Ok(Prepared {
            period: plan.period.key(now),
            now_ms: unix_ms(now),
            deltas: amount_deltas(admission.modality, &estimate),
            limits: limits_for(plan, admission.modality),
            plan: plan_name,
            estimate,
            admission,
        })
    }

    async fn admit_request(&self, admission: Admission) -> Result<Reservation> {
        let prepared = self.prepare_admission(admission).await?;
        match &self.admitter {
            Some(admitter) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                admitter
                    .send(PendingAdmission { prepared, reply })
                    .await
                    .map_err(|_| {
                        Error::new(
                            ErrorKind::Unavailable,
                            "the usage store's admission task has stopped",
                        )
                    })?;
                answer.await.map_err(|_| {
                    Error::new(
                        ErrorKind::Unavailable,
                        "the usage store's admission task has stopped",
                    )
                })?
            }
            None => self
                .admit_batch(vec![prepared])
                .await
                .pop()
                .unwrap_or_else(|| {
                    Err(Error::new(
                        ErrorKind::Unavailable,
                        "admission produced no answer",
                    ))
                }),
        }
    }

    /// Admits `batch` in one transaction (one commit for all), in order; each gets its own answer.
    /// A database failure fails the batch, which is then retried one by one so a single bad
    /// admission cannot refuse the others.
    pub(crate) async fn admit_batch(&self, batch: Vec<Prepared>) -> Vec<Result<Reservation>> {
        let all = async {
            let (_writing, mut tx) = self.begin().await?;
            let mut answers = Vec::with_capacity(batch.len());
            for p in &batch {
                answers.push(self.admit_in(&mut tx, p).await?);
            }
            tx.commit().await.map_err(db_error)?;
            Ok::<_, Error>(answers)
        };
        match all.await {
            Ok(answers) => answers,
            Err(e) if batch.len() == 1 => vec![Err(e)],
            Err(_) => {
                let mut answers = Vec::with_capacity(batch.len());
                for p in batch {
                    let mut one = Box::pin(self.admit_batch(vec![p])).await;
                    answers.push(one.pop().unwrap_or_else(|| {
                        Err(Error::new(
                            ErrorKind::Unavailable,
                            "admission produced no answer",
                        ))
                    }));
                }
                answers
            }
        }
    }

    /// One admission inside `tx`: the outer `Err` is a database failure (the transaction is
    /// lost), the inner one a refusal (nothing was written).
    async fn admit_in(&self, tx: &mut Tx, p: &Prepared) -> Result<Result<Reservation>> {
        let user = p.admission.user_id.as_str();
        sqlx::query(ENSURE_COUNTERS)
            .bind(user)
            .bind(&p.period)
            .bind(p.now_ms)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        let q = bind_counters(sqlx::query(ADMIT).bind(user).bind(&p.period), &p.deltas);
        let admitted = bind_counters(q, &p.limits)
            .bind(p.now_ms)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?
            .rows_affected()
            == 1;
        if !admitted {
            let row = sqlx::query(SELECT_COUNTERS)
                .bind(user)
                .bind(&p.period)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_error)?;
            let used = counters_from_row(&row)?;
            let plan = self.plan_named(user, &p.plan)?;
            return Ok(Err(quota_error(
                plan, &p.period, &used, &p.deltas, &p.limits,
            )));
        }
        let id = format!("res_{}", random_base62(20)?);
        sqlx::query(INSERT_RESERVATION)
            .bind(&id)
            .bind(&p.admission.request_id)
            .bind(user)
            .bind(&p.period)
            .bind(p.admission.provider)
            .bind(&p.admission.model)
            .bind(p.admission.modality.as_str())
            .bind(p.admission.operation)
            .bind(to_db(p.estimate.requests))
            .bind(to_db(p.estimate.tokens))
            .bind(to_db(p.estimate.units))
            .bind(p.estimate.cost.map(|c| to_db(c.nanos())))
            .bind(&*self.instance_id)
            .bind(p.now_ms)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        Ok(Ok(Reservation {
            id,
            user_id: p.admission.user_id.clone(),
            period: p.period.clone(),
            estimate: p.estimate,
        }))
    }

    /// Writes settlements in one transaction; if the batch fails, each on its own, so one bad
    /// record cannot lose the others. A record that still fails leaves its reservation for
    /// recovery at the estimate.
    pub(crate) async fn settle_batch(&self, batch: &[(Reservation, UsageRecord)]) {
        if batch.is_empty() {
            return;
        }
        let all = async {
            let (_writing, mut tx) = self.begin().await?;
            for (reservation, record) in batch {
                self.settle_in(&mut tx, reservation, record).await?;
            }
            tx.commit().await.map_err(db_error)
        };
        match all.await {
            Ok(()) => {}
            Err(e) if batch.len() == 1 => {
                tracing::error!(request_id = %batch[0].1.request_id, error = %e, "usage not settled; recovery will settle the reservation at its estimate");
            }
            Err(_) => {
                for one in batch {
                    Box::pin(self.settle_batch(std::slice::from_ref(one))).await;
                }
            }
        }
    }

    /// One settlement inside `tx`.
    async fn settle_in(
        &self,
        tx: &mut Tx,
        reservation: &Reservation,
        record: &UsageRecord,
    ) -> Result<()> {
        let row = sqlx::query(TAKE_RESERVATION)
            .bind(&reservation.id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            // Settled already, or recovered at its estimate by another instance that took this
            // one for dead: that row stands, so counters, log and summary stay consistent.
            tracing::warn!(
                reservation = %reservation.id,
                request_id = %record.request_id,
                "settle: the reservation is gone (settled twice, or recovered at its estimate); \
                 this usage record is dropped"
            );
            return Ok(());
        };
        let stored = stored_reservation(&row)?;
        let actual = amount_deltas(record.modality, &record.amount());
        let estimate = amount_deltas(stored.modality, &stored.amount);
        let deltas: [i64; COUNTERS] = std::array::from_fn(|i| actual[i] - estimate[i]);
        if deltas.iter().any(|&d| d != 0) {
            adjust_counters(tx, &stored.user_id, &stored.period, &deltas).await?;
        }
        let (status, error_message) = match &record.outcome {
            Outcome::Ok => ("ok", None),
            Outcome::Failed { kind, message } => (kind.as_str(), Some(message.as_str())),
        };
        LogEntry {
            request_id: &record.request_id,
            reservation_id: &reservation.id,
            user_id: &stored.user_id,
            period: &stored.period,
            provider: record.provider,
            model: &record.model,
            modality: record.modality,
            operation: record.operation,
            status,
            error_message,
            input_tokens: record.tokens.input_tokens,
            output_tokens: record.tokens.output_tokens,
            cached_input_tokens: record.tokens.cached_input_tokens,
            reasoning_tokens: record.tokens.reasoning_tokens,
            units: record.units,
            // Nothing billable was charged nothing, whatever the price.
            cost: if record.billable {
                record.cost
            } else {
                Some(Cost::ZERO)
            },
            pricing_version: Some(&record.pricing_version),
            estimated: record.estimated,
            billable: record.billable,
            latency: Some(record.latency),
            time_to_first_token: record.time_to_first_token,
            retries: record.retries,
            cached: record.cached,
            attempts: Some(attempts_json(&record.attempts)),
        }
        .write(tx, now_ms())
        .await
    }

    pub(crate) async fn register_instance(&self) -> Result<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2)")
            .bind(&*self.instance_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Records that this process is alive, so that [`Store::recover_stale`] elsewhere leaves
    /// its reservations alone.
    pub async fn heartbeat(&self) -> Result<()> {
        let now = now_ms();
        let done = sqlx::query("UPDATE instances SET heartbeat_at = $2 WHERE id = $1")
            .bind(&*self.instance_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            // Pruned while we were unreachable; register again.
            self.register_instance().await?;
        }
        Ok(())
    }

    /// Settles at their estimate the reservations of every other instance whose last
    /// heartbeat is older than `stale_after` (or that never registered), as if each request
    /// had used all it reserved: nothing that may have reached a provider goes unaccounted.
    /// Each becomes a usage-log row with status [`RECOVERED`] and `estimated = true`, and is
    /// logged as a warning. Returns how many were settled.
    ///
    /// `stale_after` must be well above the heartbeat interval, or a live but slow instance
    /// would lose its reservations (they would be charged at the estimate).
    pub async fn recover_stale(&self, stale_after: Duration) -> Result<usize> {
        let cutoff = now_ms().saturating_sub(ms(stale_after));
        let rows = sqlx::query(
            "SELECT r.id, r.request_id, r.user_id, r.period, r.provider, r.model, r.modality,
                    r.operation, r.requests, r.tokens, r.units, r.cost_nanos, r.instance_id
             FROM reservations r LEFT JOIN instances i ON i.id = r.instance_id
             WHERE r.instance_id <> $1 AND (i.id IS NULL OR i.heartbeat_at < $2)
             ORDER BY r.created_at",
        )
        .bind(&*self.instance_id)
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let recovered = self
            .recover(&rows, |instance| {
                format!("recovered at its estimate: instance `{instance}` stopped before settling")
            })
            .await?;
        // Instances that are gone and left nothing behind.
        sqlx::query(
            "DELETE FROM instances WHERE id <> $1 AND heartbeat_at < $2
             AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.instance_id = instances.id)",
        )
        .bind(&*self.instance_id)
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(recovered)
    }

    /// Settles at their estimate, like [`Store::recover_stale`], the reservations of any
    /// instance, this one included, that were admitted more than `older_than` ago: those whose
    /// settlement failed (the database was briefly unreachable) and would otherwise stay open
    /// as long as their instance lives. `older_than` must be longer than any request, stream or
    /// media job may take, or a late settlement finds its reservation gone and is dropped.
    pub async fn recover_abandoned(&self, older_than: Duration) -> Result<usize> {
        let cutoff = now_ms().saturating_sub(ms(older_than));
        let rows = sqlx::query(
            "SELECT id, request_id, user_id, period, provider, model, modality, operation,
                    requests, tokens, units, cost_nanos, instance_id
             FROM reservations WHERE created_at < $1 ORDER BY created_at",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        self.recover(&rows, |_| {
            format!("recovered at its estimate: not settled within {older_than:?}")
        })
        .await
    }

    /// Settles each reservation of `rows` at its estimate, one transaction each.
    async fn recover(
        &self,
        rows: &[sqlx::any::AnyRow],
        why: impl Fn(&str) -> String + Send + Sync,
    ) -> Result<usize> {
        let mut recovered = 0;
        for row in rows {
            let get = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
            let (id, instance) = (get("id")?, get("instance_id")?);
            let (_writing, mut tx) = self.begin().await?;
            let taken = sqlx::query("DELETE FROM reservations WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            if taken.rows_affected() == 0 {
                // Settled, or recovered by another instance, since the SELECT.
                tx.rollback().await.map_err(db_error)?;
                continue;
            }
            let stored = stored_reservation(row)?;
            let (request_id, provider, model, operation) = (
                get("request_id")?,
                get("provider")?,
                get("model")?,
                get("operation")?,
            );
            let message = why(&instance);
            // The estimate was counted at admission and stays counted; only the log and the
            // summary are written. A recovered row has no split of the tokens: the estimate's
            // total goes in input_tokens.
            LogEntry {
                request_id: &request_id,
                reservation_id: &id,
                user_id: &stored.user_id,
                period: &stored.period,
                provider: &provider,
                model: &model,
                modality: stored.modality,
                operation: &operation,
                status: RECOVERED,
                error_message: Some(&message),
                input_tokens: stored.amount.tokens,
                output_tokens: 0,
                cached_input_tokens: 0,
                reasoning_tokens: 0,
                units: stored.amount.units,
                cost: stored.amount.cost,
                pricing_version: None,
                estimated: true,
                billable: true,
                latency: None,
                time_to_first_token: None,
                retries: 0,
                cached: false,
                attempts: None,
            }
            .write(&mut tx, now_ms())
            .await?;
            tx.commit().await.map_err(db_error)?;
            recovered += 1;
            tracing::warn!(
                reservation = %id,
                request_id = %request_id,
                user_id = %stored.user_id,
                instance = %instance,
                model = %format!("{provider}/{model}"),
                "{message}"
            );
        }
        Ok(recovered)
    }

    /// Spawns a task that, every [`Maintenance::every`] (starting now), records a heartbeat
    /// and runs [`Store::recover_stale`] and [`Store::recover_abandoned`]; failures are logged
    /// and retried on the next tick. Abort the handle to stop it. Needs a Tokio runtime.
    ///
    /// Fails with [`ErrorKind::InvalidRequest`] unless `every` is not zero and `stale_after`
    /// is at least twice `every`, so a live instance is never taken for dead between beats.
    pub fn spawn_maintenance(&self, maintenance: Maintenance) -> Result<JoinHandle<()>> {
        let Maintenance {
            every,
            stale_after,
            abandon_after,
        } = maintenance;
        if every.is_zero() || stale_after < every.saturating_mul(2) {
            return Err(Error::invalid_request(format!(
                "maintenance: stale_after ({stale_after:?}) must be at least twice the heartbeat \
                 interval ({every:?}), which must not be zero"
            )));
        }
        let store = self.clone();
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = store.heartbeat().await {
                    tracing::warn!(error = %e, "usage store heartbeat failed");
                }
                if let Err(e) = store.recover_stale(stale_after).await {
                    tracing::warn!(error = %e, "recovering reservations of dead instances failed");
                }
                if let Err(e) = store.recover_abandoned(abandon_after).await {
                    tracing::warn!(error = %e, "recovering abandoned reservations failed");
                }
            }
        }))
    }
}

/// How [`Store::spawn_maintenance`] keeps reservations from leaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// How often to record a heartbeat and look for reservations to recover (default 15 s).
    pub every: Duration,
    /// After how long without a heartbeat another instance counts as dead (default 60 s).
    pub stale_after: Duration,
    /// After how long any open reservation counts as abandoned (default 6 h: longer than any
    /// stream or media job).
    pub abandon_after: Duration,
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(15),
            stale_after: Duration::from_secs(60),
            abandon_after: Duration::from_secs(6 * 3600),
        }
    }
}

/// A reservation as the database holds it.
struct StoredReservation {
    user_id: String,
    period: String,
    modality: Modality,
    amount: Amount,
}

fn stored_reservation(row: &sqlx::any::AnyRow) -> Result<StoredReservation> {
    let int = |col: &str| row.try_get::<i64, _>(col).map(from_db).map_err(db_error);
    let modality: String = row.try_get("modality").map_err(db_error)?;
    Ok(StoredReservation {
        user_id: row.try_get("user_id").map_err(db_error)?,
        period: row.try_get("period").map_err(db_error)?,
        modality: Modality::parse(&modality)
            .ok_or_else(|| corrupt(&format!("the modality `{modality}`")))?,
        amount: Amount {
            requests: int("requests")?,
            tokens: int("tokens")?,
            units: int("units")?,
            cost: row
                .try_get::<Option<i64>, _>("cost_nanos")
                .map_err(db_error)?
                .map(|n| Cost::from_nanos(from_db(n))),
        },
    })
}

/// An admission checked against the plan, ready to be counted.
pub(crate) struct Prepared {
    admission: Admission,
    plan: String,
    estimate: Amount,
    period: String,
    now_ms: i64,
    deltas: [i64; COUNTERS],
    limits: [i64; COUNTERS],
}

/// An admission waiting for the admission task, and where its answer goes.
pub(crate) struct PendingAdmission {
    prepared: Prepared,
    reply: tokio::sync::oneshot::Sender<Result<Reservation>>,
}

/// How many admissions share one transaction at most.
const ADMIT_BATCH: usize = 64;

/// Starts the task that counts admissions: it takes whatever has queued up (up to
/// [`ADMIT_BATCH`]) and admits it in one transaction, in arrival order, so concurrent requests
/// share a commit instead of each waiting for its own. Each admission is still one conditional
/// update of its user's counters, so limits hold exactly. When idle, an admission is counted at
/// once.
pub(crate) fn spawn_admitter(store: Store) -> tokio::sync::mpsc::Sender<PendingAdmission> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PendingAdmission>(16 * ADMIT_BATCH);
    let admitter = Store {
        admitter: None,
        settler: None,
        ..store
    };
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut pending = vec![first];
            while pending.len() < ADMIT_BATCH {
                match rx.try_recv() {
                    Ok(more) => pending.push(more),
                    Err(_) => break,
                }
            }
            let (prepared, replies): (Vec<_>, Vec<_>) =
                pending.into_iter().map(|p| (p.prepared, p.reply)).unzip();
            let answers = admitter.admit_batch(prepared).await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        }
    });
    tx
}

/// What the writer task is asked to do.
pub(crate) enum Queued {
    /// Write this settlement.
    Settle(Box<(Reservation, UsageRecord)>),
    /// Answer once everything queued before is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// How many settlements the writer commits in one transaction at most.
const BATCH: usize = 256;

/// Starts the task that writes queued settlements: it takes whatever has queued up (up to
/// [`BATCH`]) and commits it as one transaction, so under load N settlements cost one commit,
/// and when idle a settlement is written at once. It ends when the last handle to the store is
/// dropped, after writing what is queued.
pub(crate) fn spawn_writer(store: Store) -> tokio::sync::mpsc::Sender<Queued> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Queued>(16 * BATCH);
    let writer = Store {
        settler: None,
        ..store
    };
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        let mut flushes = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Queued::Settle(one) => batch.push(*one),
                    Queued::Flush(done) => flushes.push(done),
                }
                if batch.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            writer.settle_batch(&batch).await;
            batch.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    });
    tx
}

/// `[{"route": "gemini/gemini-2.5-flash", "outcome": "ok", "latency_ms": 412}, ...]`.
pub(crate) fn attempts_json(attempts: &[Attempt]) -> String {
    let list: Vec<serde_json::Value> = attempts
        .iter()
        .map(|a| serde_json::json!({"route": a.route, "outcome": a.outcome, "latency_ms": ms(a.latency)}))
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// The attempts of a usage-log row, from [`attempts_json`]'s form.
pub(crate) fn attempts_from_json(text: &str) -> Result<Vec<Attempt>> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|_| corrupt("the attempts of a usage-log row"))?;
    list.iter()
        .map(|a| {
            Some(Attempt {
                route: a.get("route")?.as_str()?.to_owned(),
                outcome: a.get("outcome")?.as_str()?.to_owned(),
                latency: Duration::from_millis(a.get("latency_ms")?.as_u64()?),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| corrupt("the attempts of a usage-log row"))
}

impl Accounting for Store {
    fn admit(&self, admission: Admission) -> BoxFuture<'_, Result<Reservation>> {
        Box::pin(self.admit_request(admission))
    }

    fn permits(&self, admission: Admission) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let plan_name: Option<String> =
                sqlx::query_scalar("SELECT plan FROM users WHERE id = $1")
                    .bind(&admission.user_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
            let Some(plan_name) = plan_name else {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("unknown user `{}`", admission.user_id),
                ));
            };
            self.plan_named(&admission.user_id, &plan_name)?
                .check(&admission)
        })
    }

    /// Queues the settlement for the writer task, which commits queued settlements in batches:
    /// the caller never waits for the usage row. If the process dies before the batch is written,
    /// the reservation is still in the database and is recovered at its estimate.
    fn settle(&self, reservation: Reservation, record: UsageRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.pool.is_closed() {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the usage store is closed",
                ));
            }
            match &self.settler {
                Some(settler) => settler
                    .send(Queued::Settle(Box::new((reservation, record))))
                    .await
                    .map_err(|_| {
                        Error::new(ErrorKind::Unavailable, "the usage writer has stopped")
                    }),
                None => {
                    self.settle_batch(&[(reservation, record)]).await;
                    Ok(())
                }
            }
        })
    }
}
