//! Settlement: a finished request's reservation is replaced by what it used, and its usage-log
//! row and summary are written. A background task commits queued settlements in batches, so no
//! response waits for its usage row.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::json::{self, ObjectWriter};
use gateway_core::{
    Amount, Attempt, CacheHit, Cost, Modality, Outcome, Reservation, Result, TokenUsage,
    UsageRecord,
};
use sqlx::{AssertSqlSafe, Row};

use crate::accounting::{Reserved, insert_reservations};
use crate::counters::{COUNTERS, amount_deltas};
use crate::db::{
    CHUNKS, FastMap, FastSet, MAX_PARAMETERS, Tx, chunked, corrupt, db_error, from_db,
    placeholders, to_db, transient,
};
use crate::ledger::{Release, change_leases, drop_empty_leases};
use crate::reads::LoggedAttempt;
use crate::recovery::RECOVERED;
use crate::tally::add_to_counters;
use crate::time::now_ms;
use crate::{Backend, Store};

/// The columns of a usage-log row, in the order [`LogEntry::bind`] binds them.
const LOG_COLUMNS: &str = "request_id, reservation_id, user_id, period, provider, model,
    modality, operation, status, error_message, input_tokens, output_tokens,
    cached_input_tokens, reasoning_tokens, units, cost_nanos, pricing_version, estimated,
    billable, latency_ms, ttft_ms, retries, cached, created_at, attempts, end_user, metadata,
    cache_hit, cost_saved_nanos, over_reservation";

/// How many columns [`LOG_COLUMNS`] names.
const LOG_WIDTH: usize = 30;

/// The columns of a summary row: its key, then the sums of [`SummarySums`], then `updated_at`.
const SUMMARY_COLUMNS: &str = "user_id, period, provider, model, modality, requests, errors,
    input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, units, cost_nanos,
    unpriced, estimated, cached_requests, cost_saved_nanos, over_reservation, updated_at";

/// How many columns [`SUMMARY_COLUMNS`] names.
const SUMMARY_WIDTH: usize = 19;

// A chunk of the widest rows binds no more parameters than a statement may take.
const _: () = assert!(CHUNKS[0] * LOG_WIDTH <= MAX_PARAMETERS);

/// What an upserted summary row does to the one already there: adds its sums.
const SUMMARY_CONFLICT: &str =
    "ON CONFLICT (user_id, period, provider, model, modality) DO UPDATE SET
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
        cached_requests     = usage_summary.cached_requests     + excluded.cached_requests,
        cost_saved_nanos    = usage_summary.cost_saved_nanos    + excluded.cost_saved_nanos,
        over_reservation    = usage_summary.over_reservation    + excluded.over_reservation,
        updated_at          = excluded.updated_at";

/// What one usage-log row adds to its summary row, in [`SUMMARY_COLUMNS`] order.
type SummarySums = [i64; 13];

/// One usage-log row, before it is written.
pub(crate) struct LogEntry<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) reservation_id: &'a str,
    pub(crate) user_id: &'a str,
    pub(crate) period: &'a str,
    pub(crate) provider: &'a str,
    pub(crate) model: &'a str,
    pub(crate) modality: Modality,
    pub(crate) operation: &'a str,
    pub(crate) status: &'a str,
    pub(crate) error_message: Option<&'a str>,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cached_input_tokens: u64,
    pub(crate) reasoning_tokens: u64,
    pub(crate) units: u64,
    pub(crate) cost: Option<Cost>,
    pub(crate) pricing_version: Option<&'a str>,
    pub(crate) estimated: bool,
    pub(crate) billable: bool,
    pub(crate) latency: Option<Duration>,
    pub(crate) time_to_first_token: Option<Duration>,
    pub(crate) retries: u32,
    /// Set when the answer came from the response cache.
    pub(crate) cached: Option<CacheHit>,
    /// Whether the settled usage passed what admission reserved (see [`over_reservation`]);
    /// never for a row recovered at its reservation.
    pub(crate) over_reservation: bool,
    /// The attempts as a JSON array (see [`attempts_json`]).
    pub(crate) attempts: Option<String>,
    /// The caller's end user (OpenAI's `user`).
    pub(crate) end_user: Option<&'a str>,
    /// The caller's tags (OpenAI's `metadata`).
    pub(crate) metadata: Option<&'a BTreeMap<String, String>>,
}

/// `d` in whole milliseconds, for the database.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<'a> LogEntry<'a> {
    /// The row of a reservation of `modality` recovered at its `amount` (`why` it was), with
    /// empty names for the caller to fill in. A recovered row has no split of the tokens: the
    /// estimate's total goes in `input_tokens`; charged at its reservation, it is never over it.
    pub(crate) fn recovered(modality: Modality, amount: &Amount, why: Option<&'a str>) -> Self {
        LogEntry {
            request_id: "",
            reservation_id: "",
            user_id: "",
            period: "",
            provider: "",
            model: "",
            modality,
            operation: "",
            status: RECOVERED,
            error_message: why,
            input_tokens: amount.tokens,
            output_tokens: 0,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
            units: amount.units,
            cost: amount.cost,
            pricing_version: None,
            estimated: true,
            billable: true,
            latency: None,
            time_to_first_token: None,
            retries: 0,
            cached: None,
            over_reservation: false,
            attempts: None,
            end_user: None,
            metadata: None,
        }
    }

    /// What a cache hit saved, when its original answer was priced.
    fn cost_saved(&self) -> Option<Cost> {
        self.cached.and_then(|hit| hit.saved)
    }

    /// Binds the row's [`LOG_COLUMNS`].
    fn bind<'q>(&'q self, query: LogQuery<'q>, now: i64) -> LogQuery<'q> {
        query
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
            .bind(i64::from(self.cached.is_some()))
            .bind(now)
            .bind(self.attempts.as_deref())
            .bind(self.end_user)
            .bind(self.metadata.and_then(metadata_json))
            .bind(self.cached.map(cache_hit_name))
            .bind(self.cost_saved().map(|c| to_db(c.nanos())))
            .bind(i64::from(self.over_reservation))
    }

    /// What this row adds to its summary row.
    fn sums(&self) -> SummarySums {
        let is_error = self.status != "ok" && self.status != RECOVERED;
        [
            1,
            i64::from(is_error),
            to_db(self.input_tokens),
            to_db(self.output_tokens),
            to_db(self.cached_input_tokens),
            to_db(self.reasoning_tokens),
            to_db(self.units),
            to_db(self.cost.map_or(0, Cost::nanos)),
            i64::from(self.cost.is_none()),
            i64::from(self.estimated),
            i64::from(self.cached.is_some()),
            to_db(self.cost_saved().map_or(0, Cost::nanos)),
            i64::from(self.over_reservation),
        ]
    }
}

/// A statement being bound.
type LogQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Writes `entries` to the usage log with their tags and adds them to the summary, and takes
/// the `removed` rows (already deleted from the log) out of the summary, in `tx`: a few
/// multi-row statements whatever the number of rows (see [`CHUNKS`](crate::db::CHUNKS)), so a
/// batch of settlements costs the database a handful of round trips, not two per request.
pub(crate) async fn write_log(
    tx: &mut Tx,
    backend: Backend,
    entries: &[LogEntry<'_>],
    removed: &[LogEntry<'_>],
    now: i64,
) -> Result<()> {
    for run in chunked(entries) {
        let sql = format!(
            "INSERT INTO usage_log ({LOG_COLUMNS}) VALUES {}",
            placeholders(backend, run.len(), LOG_WIDTH, 1, "")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for entry in run {
            query = entry.bind(query, now);
        }
        query.execute(&mut **tx).await.map_err(db_error)?;
    }

    let tags: Vec<(&LogEntry<'_>, &String, &String)> = entries
        .iter()
        .flat_map(|e| {
            e.metadata
                .into_iter()
                .flatten()
                .map(move |(k, v)| (e, k, v))
        })
        .collect();
    for run in chunked(&tags) {
        let sql = format!(
            "INSERT INTO usage_log_tags (request_id, user_id, tag_key, tag_value, created_at)
             VALUES {}",
            placeholders(backend, run.len(), 5, 1, "")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (entry, key, value) in run {
            query = query
                .bind(entry.request_id)
                .bind(entry.user_id)
                .bind(key.as_str())
                .bind(value.as_str())
                .bind(now);
        }
        query.execute(&mut **tx).await.map_err(db_error)?;
    }

    // One upsert per summary row touched, each key once (PostgreSQL refuses a statement that
    // updates a row twice).
    type Key<'a> = (&'a str, &'a str, &'a str, &'a str, &'static str);
    let mut sums: BTreeMap<Key<'_>, SummarySums> = BTreeMap::new();
    let signed = entries
        .iter()
        .map(|e| (e, 1))
        .chain(removed.iter().map(|e| (e, -1)));
    for (entry, sign) in signed {
        let key = (
            entry.user_id,
            entry.period,
            entry.provider,
            entry.model,
            entry.modality.as_str(),
        );
        let total = sums.entry(key).or_default();
        for (t, v) in total.iter_mut().zip(entry.sums()) {
            *t = t.saturating_add(sign * v);
        }
    }
    let rows: Vec<(Key<'_>, SummarySums)> = sums.into_iter().collect();
    for run in chunked(&rows) {
        let sql = format!(
            "INSERT INTO usage_summary ({SUMMARY_COLUMNS}) VALUES {} {SUMMARY_CONFLICT}",
            placeholders(backend, run.len(), SUMMARY_WIDTH, 1, "")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((user, period, provider, model, modality), values) in run {
            query = query
                .bind(*user)
                .bind(*period)
                .bind(*provider)
                .bind(*model)
                .bind(*modality);
            for v in values {
                query = query.bind(*v);
            }
            query = query.bind(now);
        }
        query.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

/// How `usage_log.cache_hit` names a hit.
pub(crate) const EXACT: &str = "exact";
/// How `usage_log.cache_hit` names a semantic hit.
pub(crate) const SEMANTIC: &str = "semantic";

/// The `usage_log.cache_hit` value of `hit`.
fn cache_hit_name(hit: CacheHit) -> &'static str {
    if hit.semantic { SEMANTIC } else { EXACT }
}

/// The hit of a usage-log row, from its `cache_hit` and `cost_saved_nanos` columns.
pub(crate) fn cache_hit_from_db(
    name: Option<&str>,
    saved: Option<i64>,
) -> Result<Option<CacheHit>> {
    let semantic = match name {
        None => return Ok(None),
        Some(EXACT) => false,
        Some(SEMANTIC) => true,
        Some(other) => return Err(corrupt(&format!("the cache hit `{other}`"))),
    };
    Ok(Some(CacheHit {
        semantic,
        saved: saved.map(|n| Cost::from_nanos(from_db(n))),
    }))
}

/// Whether `used` (what a settled record charges, of `modality`) passed `reserved` (what
/// admission reserved, of `reserved_modality`, grown by any fallback): more of the volume the
/// plan counts (tokens for text, units for the others) than reserved, or a cost above the
/// reserved cost when both are known. A provider that ignores the bound a request set is still
/// charged what it reports; this says so on the row (the excess metrics count the amount).
pub(crate) fn over_reservation(
    modality: Modality,
    used: &Amount,
    reserved_modality: Modality,
    reserved: &Amount,
) -> bool {
    let volume = used.volume(modality) > reserved.volume(reserved_modality);
    let cost = matches!((used.cost, reserved.cost), (Some(u), Some(r)) if u.nanos() > r.nanos());
    volume || cost
}

/// A reservation as the database holds it.
pub(crate) struct StoredReservation {
    pub(crate) user_id: String,
    pub(crate) period: String,
    pub(crate) modality: Modality,
    pub(crate) amount: Amount,
}

/// Reads a reservation from a row with its `user_id`, `period`, `modality`, `requests`,
/// `tokens`, `units` and `cost_nanos`.
pub(crate) fn stored_reservation(row: &sqlx::any::AnyRow) -> Result<StoredReservation> {
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

/// Runs `sql`, a `DELETE ... RETURNING` whose `{ids}` stands for the list of `ids`, and
/// returns the deleted rows.
async fn delete_returning(
    tx: &mut Tx,
    backend: Backend,
    sql: &str,
    ids: &[&str],
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut rows = Vec::new();
    for run in chunked(ids) {
        let sql = sql.replace("{ids}", &placeholders(backend, 1, run.len(), 1, ""));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in run {
            query = query.bind(*id);
        }
        rows.extend(query.fetch_all(&mut **tx).await.map_err(db_error)?);
    }
    Ok(rows)
}

/// Deletes the reservations `ids` and returns them by id; ids already gone are missing.
async fn take_reservations(
    tx: &mut Tx,
    backend: Backend,
    ids: &[&str],
) -> Result<FastMap<String, StoredReservation>> {
    if ids.is_empty() {
        return Ok(FastMap::default());
    }
    let rows = delete_returning(
        tx,
        backend,
        "DELETE FROM reservations WHERE id IN {ids}
         RETURNING id, user_id, period, modality, requests, tokens, units, cost_nanos",
        ids,
    )
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id").map_err(db_error)?;
            Ok((id, stored_reservation(row)?))
        })
        .collect()
}

/// A usage-log row written by recovery, taken out to be replaced by the real settlement.
struct RecoveredRow {
    request_id: String,
    user_id: String,
    period: String,
    provider: String,
    model: String,
    operation: String,
    modality: Modality,
    /// What recovery charged: the reservation's tokens, units and cost (one request).
    amount: Amount,
}

impl RecoveredRow {
    /// The row as recovery wrote it, for taking it out of the summary.
    fn entry<'a>(&'a self, reservation_id: &'a str) -> LogEntry<'a> {
        LogEntry {
            request_id: &self.request_id,
            reservation_id,
            user_id: &self.user_id,
            period: &self.period,
            provider: &self.provider,
            model: &self.model,
            operation: &self.operation,
            ..LogEntry::recovered(self.modality, &self.amount, None)
        }
    }
}

/// Deletes the usage-log rows that recovery wrote for the reservations `ids` and returns them
/// by reservation id; reservations without one are missing.
async fn take_recovered(
    tx: &mut Tx,
    backend: Backend,
    ids: &[&str],
) -> Result<FastMap<String, RecoveredRow>> {
    if ids.is_empty() {
        return Ok(FastMap::default());
    }
    // The status is written out (not bound), so SQLite uses the partial index on it.
    let sql = format!(
        "DELETE FROM usage_log WHERE status = '{RECOVERED}' AND reservation_id IN {{ids}}
         RETURNING reservation_id, request_id, user_id, period, provider, model, operation,
             modality, input_tokens, units, cost_nanos"
    );
    let rows = delete_returning(tx, backend, &sql, ids).await?;
    rows.iter()
        .map(|row| {
            let text = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
            let int = |col: &str| row.try_get::<i64, _>(col).map(from_db).map_err(db_error);
            let modality = text("modality")?;
            let recovered = RecoveredRow {
                request_id: text("request_id")?,
                user_id: text("user_id")?,
                period: text("period")?,
                provider: text("provider")?,
                model: text("model")?,
                operation: text("operation")?,
                modality: Modality::parse(&modality)
                    .ok_or_else(|| corrupt(&format!("the modality `{modality}`")))?,
                amount: Amount::new(
                    int("input_tokens")?,
                    int("units")?,
                    row.try_get::<Option<i64>, _>("cost_nanos")
                        .map_err(db_error)?
                        .map(|n| Cost::from_nanos(from_db(n))),
                ),
            };
            Ok((text("reservation_id")?, recovered))
        })
        .collect()
}

/// How long the writer keeps trying a batch while the database takes no writes at all (down,
/// failing over, locked by another process): long enough for a failover, short enough that a
/// shutdown is not held for ever. Past it, the reservations stay for recovery at their estimate.
const SETTLE_PATIENCE: Duration = Duration::from_secs(120);

/// The longest wait between two tries of a batch.
const SETTLE_BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Store {
    /// Writes settlements in one transaction. While the database takes no writes at all, the
    /// batch is tried again with backoff (for up to [`SETTLE_PATIENCE`]), so an outage or a
    /// lock held elsewhere loses no usage; when the database takes writes but not this batch,
    /// each record is written on its own, so one bad record cannot lose the others. Returns how
    /// many were settled already (dropped), or `None` when some could not be written: their
    /// reservations stay for recovery at the estimate, and the journal keeps them for the next
    /// start.
    pub(crate) async fn settle_batch(&self, batch: &[Settlement]) -> Option<usize> {
        self.write_batch(Batch {
            settlements: batch,
            ..Batch::default()
        })
        .await
    }

    /// Writes `batch` in one transaction, like [`Store::settle_batch`]: its reservations and
    /// lease changes first, then its settlements. When the database takes writes but not the
    /// batch, the reservations and leases are written on their own, then each settlement.
    pub(crate) async fn write_batch(&self, batch: Batch<'_>) -> Option<usize> {
        if batch.is_empty() {
            return Some(0);
        }
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(50);
        let outcome = loop {
            let all = async {
                let (_writing, mut tx) = self.begin().await?;
                let dropped = self.write_in(&mut tx, batch).await?;
                tx.commit().await.map_err(db_error)?;
                Ok::<_, gateway_core::Error>(dropped)
            };
            match all.await {
                Ok(dropped) => {
                    tracing::debug!(
                        items = batch.len(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "usage batch written"
                    );
                    break Ok(dropped);
                }
                // A lock or an outage is waited out, whether the error says so or a probe
                // finds the database taking no writes: the probe alone would read a lock
                // released between the failure and the probe as a refusal of the batch.
                Err(e)
                    if started.elapsed() < SETTLE_PATIENCE
                        && (transient(&e) || !self.takes_writes().await) =>
                {
                    tracing::warn!(error = %e, records = batch.len(), retry_in_ms = wait.as_millis() as u64, "the database cannot take the write now (down, locked or in conflict); usage kept and tried again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(SETTLE_BACKOFF_MAX);
                }
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(dropped) => Some(dropped),
            Err(e) if batch.len() == 1 => {
                let request_id = batch
                    .settlements
                    .first()
                    .map(|s| s.request_id.as_str())
                    .or(batch.reserved.first().map(|r| r.request_id.as_str()))
                    .unwrap_or_default();
                tracing::error!(request_id, error = %e, "usage not written; recovery will settle the reservation at its estimate, and the journal keeps the record for the next start");
                None
            }
            Err(_) if !batch.settlements.is_empty() && batch.settlements.len() < batch.len() => {
                let first = Box::pin(self.write_batch(Batch {
                    settlements: &[],
                    ..batch
                }))
                .await;
                let rest = Box::pin(self.settle_batch(batch.settlements)).await;
                first.zip(rest).map(|(a, b)| a + b)
            }
            Err(_) if batch.settlements.is_empty() => {
                let mut written = Some(0);
                for one in batch.reserved {
                    let one = Batch {
                        reserved: std::slice::from_ref(one),
                        ..Batch::default()
                    };
                    written = written
                        .zip(Box::pin(self.write_batch(one)).await)
                        .map(|_| 0);
                }
                for one in batch.released {
                    let one = Batch {
                        released: std::slice::from_ref(one),
                        ..Batch::default()
                    };
                    written = written
                        .zip(Box::pin(self.write_batch(one)).await)
                        .map(|_| 0);
                }
                written
            }
            Err(_) => {
                let mut dropped = Some(0);
                for one in batch.settlements {
                    let written = Box::pin(self.settle_batch(std::slice::from_ref(one))).await;
                    dropped = dropped.zip(written).map(|(a, b)| a + b);
                }
                dropped
            }
        }
    }

    /// Whether the database takes a write now (a write transaction can begin): tells an
    /// outage, or a lock held elsewhere, from a batch the database refuses.
    async fn takes_writes(&self) -> bool {
        match self.begin().await {
            Ok((_writing, tx)) => tx.rollback().await.is_ok(),
            Err(_) => false,
        }
    }

    /// Settles `batch` inside `tx`: takes the reservations, moves the counters by what each
    /// request used minus what it reserved (all together, locked in the one order every writer
    /// uses), then writes the usage rows, in the order of `batch`.
    /// Returns how many of `batch` were settled already, and dropped.
    pub(crate) async fn settle_in(&self, tx: &mut Tx, batch: &[Settlement]) -> Result<usize> {
        self.write_in(
            tx,
            Batch {
                settlements: batch,
                ..Batch::default()
            },
        )
        .await
    }

    /// Writes `batch` inside `tx`: its reservations (those the same batch settles are not
    /// inserted, only settled), what they took from this instance's leases and what is given
    /// back, then its settlements: takes their reservations, moves the counters by what each
    /// request used minus what it reserved (all together, locked in the one order every writer
    /// uses), then writes the usage rows, in the order of `batch`. Returns how many settlements
    /// were settled already, and dropped.
    pub(crate) async fn write_in(&self, tx: &mut Tx, batch: Batch<'_>) -> Result<usize> {
        let now = now_ms();
        let settled_here: FastSet<&str> = batch
            .settlements
            .iter()
            .map(|s| s.reservation_id.as_str())
            .collect();
        // A reservation settled in its own batch gets no row and was never counted: its
        // settlement moves the counters from nothing rather than from the estimate.
        let mut stored: FastMap<String, StoredReservation> = FastMap::default();
        let mut uncounted = FastSet::default();
        let mut insert = Vec::new();
        let mut lease_changes: Vec<(&str, &str, [i64; COUNTERS])> = Vec::new();
        for r in batch.reserved {
            lease_changes.push((&r.user_id, &r.period, r.leased.map(|l| -l)));
            if settled_here.contains(r.reservation.as_str()) {
                uncounted.insert(r.reservation.as_str());
                stored.insert(
                    r.reservation.clone(),
                    StoredReservation {
                        user_id: r.user_id.clone(),
                        period: r.period.clone(),
                        modality: r.modality,
                        amount: r.amount(),
                    },
                );
            } else {
                insert.push(r);
            }
        }
        for r in batch.released {
            lease_changes.push((&r.user_id, &r.period, r.amounts.map(|a| -a)));
        }
        let ids: Vec<&str> = batch
            .settlements
            .iter()
            .map(|s| s.reservation_id.as_str())
            .filter(|id| !uncounted.contains(id))
            .collect();
        stored.extend(take_reservations(tx, self.backend, &ids).await?);
        // A reservation recovered at its estimate (its instance was taken for dead, or its
        // settlement was late) is corrected: the recovered row gives way to the real one.
        let gone: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !stored.contains_key(*id))
            .collect();
        let mut recovered = take_recovered(tx, self.backend, &gone).await?;
        let mut replaced = Vec::new();
        for settlement in batch.settlements {
            let id = &settlement.reservation_id;
            if let Some(row) = recovered.remove(id) {
                tracing::info!(
                    reservation = %id,
                    request_id = %row.request_id,
                    "settle: a reservation recovered at its estimate is corrected to what the \
                     request used"
                );
                let amount = Amount {
                    requests: settlement.reserved_requests,
                    ..row.amount
                };
                stored.insert(
                    id.clone(),
                    StoredReservation {
                        user_id: row.user_id.clone(),
                        period: row.period.clone(),
                        modality: row.modality,
                        amount,
                    },
                );
                replaced.push((id.as_str(), row));
            }
        }
        let mut taken = Vec::with_capacity(batch.settlements.len());
        let mut dropped = 0;
        for settlement in batch.settlements {
            match stored.remove(&settlement.reservation_id) {
                Some(s) => taken.push((settlement, s)),
                // Settled already: the first settlement stands, so counters, log and summary
                // stay consistent. (Replaying the journal meets those it had written.)
                None => {
                    dropped += 1;
                    tracing::debug!(
                        reservation = %settlement.reservation_id,
                        request_id = %settlement.request_id,
                        "settle: the reservation is settled already; this usage record is dropped"
                    );
                }
            }
        }
        // What moves the counters: a new reservation its estimate (from its lease), a
        // settlement what the request used less what its reservation counted.
        let mut moves: Vec<(&str, &str, [i64; COUNTERS])> =
            Vec::with_capacity(insert.len() + taken.len());
        for r in &insert {
            moves.push((
                &r.user_id,
                &r.period,
                amount_deltas(r.modality, &r.amount()),
            ));
        }
        for (settlement, stored) in &taken {
            let actual = amount_deltas(settlement.modality, &settlement.amount());
            let deltas = if uncounted.contains(settlement.reservation_id.as_str()) {
                actual
            } else {
                let estimate = amount_deltas(stored.modality, &stored.amount);
                std::array::from_fn(|i| actual[i] - estimate[i])
            };
            moves.push((&stored.user_id, &stored.period, deltas));
        }
        insert_reservations(tx, self.backend, &insert).await?;
        let entries: Vec<LogEntry<'_>> = taken
            .iter()
            .map(|(settlement, stored)| log_entry(settlement, stored))
            .collect();
        let removed: Vec<LogEntry<'_>> = replaced.iter().map(|(id, row)| row.entry(id)).collect();
        write_log(tx, self.backend, &entries, &removed, now).await?;
        // The counters, then the leases, last: their rows are the ones admissions and top-ups
        // wait for (on PostgreSQL), so they are locked for the shortest time, in the order
        // every transaction takes them.
        add_to_counters(tx, self.backend, &moves, now).await?;
        change_leases(tx, self.backend, &self.instance_id, &lease_changes, now).await?;
        drop_empty_leases(tx, self.backend, &self.instance_id, batch.released).await?;
        Ok(dropped)
    }
}

/// The usage-log row of a settlement.
fn log_entry<'a>(settlement: &'a Settlement, stored: &'a StoredReservation) -> LogEntry<'a> {
    let s = settlement;
    LogEntry {
        request_id: &s.request_id,
        reservation_id: &s.reservation_id,
        user_id: &stored.user_id,
        period: &stored.period,
        provider: &s.provider,
        model: &s.model,
        modality: s.modality,
        operation: &s.operation,
        status: &s.status,
        error_message: s.error_message.as_deref(),
        input_tokens: s.tokens.input_tokens,
        output_tokens: s.tokens.output_tokens,
        cached_input_tokens: s.tokens.cached_input_tokens,
        reasoning_tokens: s.tokens.reasoning_tokens,
        units: s.units,
        // Nothing billable was charged nothing, whatever the price.
        cost: if s.billable {
            s.cost()
        } else {
            Some(Cost::ZERO)
        },
        pricing_version: Some(&s.pricing_version),
        estimated: s.estimated,
        billable: s.billable,
        latency: Some(Duration::from_millis(s.latency_ms)),
        time_to_first_token: s.ttft_ms.map(Duration::from_millis),
        retries: s.retries,
        cached: s.cached(),
        over_reservation: over_reservation(
            s.modality,
            &s.amount(),
            stored.modality,
            &stored.amount,
        ),
        attempts: Some(s.attempts.clone()),
        end_user: s.end_user.as_deref(),
        metadata: Some(&s.metadata),
    }
}

/// A finished request's settlement, as the writer queues it and the journal keeps it: what the
/// request used, and the reservation it replaces. Owned and plain, so it can be written to the
/// journal and read back by the next process.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Settlement {
    pub(crate) reservation_id: String,
    /// The requests the reservation counted: what a recovered row of it had charged.
    pub(crate) reserved_requests: u64,
    pub(crate) request_id: String,
    pub(crate) provider: String,
    pub(crate) model: String,
    #[serde(with = "modality_name")]
    pub(crate) modality: Modality,
    pub(crate) operation: String,
    /// `ok`, or the error kind.
    pub(crate) status: String,
    pub(crate) error_message: Option<String>,
    pub(crate) tokens: TokenUsage,
    pub(crate) units: u64,
    pub(crate) cost_nanos: Option<u64>,
    pub(crate) pricing_version: String,
    pub(crate) estimated: bool,
    pub(crate) billable: bool,
    pub(crate) latency_ms: u64,
    pub(crate) ttft_ms: Option<u64>,
    pub(crate) retries: u32,
    /// Answered from the cache: whether by meaning.
    pub(crate) cache_semantic: Option<bool>,
    pub(crate) cost_saved_nanos: Option<u64>,
    /// The attempts as [`attempts_json`] writes them.
    pub(crate) attempts: String,
    pub(crate) end_user: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
}

impl Settlement {
    /// Appends the settlement's journal line (without its newline): what its `Serialize`
    /// writes, written faster (see [`ObjectWriter`]).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let tokens = &self.tokens;
        ObjectWriter::new(out)
            .str("reservation_id", &self.reservation_id)
            .field("reserved_requests", &self.reserved_requests)?
            .str("request_id", &self.request_id)
            .str("provider", &self.provider)
            .str("model", &self.model)
            .str("modality", self.modality.as_str())
            .str("operation", &self.operation)
            .str("status", &self.status)
            .opt_str("error_message", self.error_message.as_deref())
            .object("tokens", |inner| {
                inner
                    .field("input_tokens", &tokens.input_tokens)?
                    .field("output_tokens", &tokens.output_tokens)?
                    .field("reasoning_tokens", &tokens.reasoning_tokens)?
                    .field("cached_input_tokens", &tokens.cached_input_tokens)?;
                Ok(())
            })?
            .field("units", &self.units)?
            .field("cost_nanos", &self.cost_nanos)?
            .str("pricing_version", &self.pricing_version)
            .field("estimated", &self.estimated)?
            .field("billable", &self.billable)?
            .field("latency_ms", &self.latency_ms)?
            .field("ttft_ms", &self.ttft_ms)?
            .field("retries", &self.retries)?
            .field("cache_semantic", &self.cache_semantic)?
            .field("cost_saved_nanos", &self.cost_saved_nanos)?
            .str("attempts", &self.attempts)
            .opt_str("end_user", self.end_user.as_deref())
            .field("metadata", &self.metadata)?
            .end();
        Ok(())
    }

    /// The settlement of `reservation` with `record`.
    pub(crate) fn new(reservation: &Reservation, record: UsageRecord) -> Self {
        Self::of(
            reservation.id.clone(),
            reservation.estimate.requests,
            record,
        )
    }

    /// The settlement of a video or fine-tuning job's reservation `reservation_id` with
    /// `record`: a job's admission counts one request, and the rest of what it reserved is read
    /// from the stored reservation.
    pub(crate) fn of_job(reservation_id: String, record: UsageRecord) -> Self {
        Self::of(reservation_id, 1, record)
    }

    fn of(reservation_id: String, reserved_requests: u64, record: UsageRecord) -> Self {
        let (status, error_message) = match record.outcome {
            Outcome::Ok => ("ok".to_owned(), None),
            Outcome::Failed { kind, message } => (kind.as_str().to_owned(), Some(message)),
        };
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Settlement {
            reservation_id,
            reserved_requests,
            attempts: attempts_json(&record.attempts),
            request_id: record.request_id,
            provider: record.route.provider.to_owned(),
            model: record.route.model.to_string(),
            modality: record.modality,
            operation: record.operation.to_owned(),
            status,
            error_message,
            tokens: record.tokens,
            units: record.units,
            cost_nanos: record.cost.map(Cost::nanos),
            pricing_version: record.pricing_version,
            estimated: record.estimated,
            billable: record.billable,
            latency_ms: millis(record.latency),
            ttft_ms: record.time_to_first_token.map(millis),
            retries: record.retries,
            cache_semantic: record.cached.map(|hit| hit.semantic),
            cost_saved_nanos: record.cached.and_then(|hit| hit.saved).map(Cost::nanos),
            end_user: record.tags.end_user,
            metadata: record.tags.metadata,
        }
    }

    fn cost(&self) -> Option<Cost> {
        self.cost_nanos.map(Cost::from_nanos)
    }

    fn cached(&self) -> Option<CacheHit> {
        self.cache_semantic.map(|semantic| CacheHit {
            semantic,
            saved: self.cost_saved_nanos.map(Cost::from_nanos),
        })
    }

    /// What the request is charged (as [`UsageRecord::amount`]).
    fn amount(&self) -> Amount {
        if !self.billable {
            return Amount::default();
        }
        Amount::new(self.tokens.total_tokens(), self.units, self.cost())
    }
}

/// A modality as its name, in the journal.
pub(crate) mod modality_name {
    use gateway_core::Modality;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(m: &Modality, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Modality, D::Error> {
        let name = String::deserialize(d)?;
        Modality::parse(&name).ok_or_else(|| D::Error::custom(format!("unknown modality `{name}`")))
    }
}

/// What the writer task is asked to do.
pub(crate) enum Queued {
    /// Write this reservation, admitted from a lease; the journal segment that holds it.
    Reserve(Box<Reserved>, Option<u64>),
    /// Give this much of a lease back.
    Release(Box<Release>),
    /// Write this settlement; the journal segment that holds it, if there is a journal.
    Settle(Box<Settlement>, Option<u64>),
    /// Answer once everything queued before is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// What the writer commits in one transaction.
#[derive(Clone, Copy, Default)]
pub(crate) struct Batch<'a> {
    pub(crate) reserved: &'a [Reserved],
    pub(crate) released: &'a [Release],
    pub(crate) settlements: &'a [Settlement],
}

impl Batch<'_> {
    fn len(&self) -> usize {
        self.reserved.len() + self.released.len() + self.settlements.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many requests' reservations and settlements the writer commits in one transaction at
/// most (twice this many items: a request has two); a journal replay writes this many
/// settlements at a time.
pub(crate) const BATCH: usize = 4096;

/// How long the writer lets work gather after the first item of a batch comes, when the last
/// batch held more than one item (the load is such that items queue up while one is written).
/// While it sleeps, queuing an item wakes nobody: without it, under load every few requests woke
/// the writer (a thread of another runtime, and a context switch on each side) to write a batch
/// of a handful, each of its statements another round trip to the database thread. What is
/// queued is in the journal already; this only delays the database's copy.
///
/// 100 ms rather than 20: with many users, a batch touches a page of each per-user row or index
/// entry it writes (the usage log's user index, the summary, counters and leases) about once per
/// user in it, however many of that user's requests it holds, so fewer, larger batches write
/// fewer pages a request (SQLite's page writes a request with 1,000 users, hf at c64, measured
/// before writes had a connection of their own: 6.0 at 20 ms, 5.0 at 100 ms, 4.5 at 500 ms).
const LINGER: Duration = Duration::from_millis(100);

/// Starts the task that writes queued settlements: it takes whatever has queued up (up to
/// twice [`BATCH`]) and commits it as one transaction, so under load N settlements cost one
/// commit. Under load (the last batch held more than one item, and was not cut at the limit) it
/// first lets more gather for [`LINGER`]; when idle, or with a backlog, it writes at once, and a
/// flush cuts the linger short. Once a batch is committed, the journal lets go of it. It
/// ends when the last handle to the store is dropped, after writing what is queued.
pub(crate) fn spawn_writer(store: Store) -> tokio::sync::mpsc::Sender<Queued> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Queued>(16 * BATCH);
    let writer = Store {
        settler: None,
        ..store
    };
    tokio::spawn(async move {
        let mut reserved = Vec::new();
        let mut released = Vec::new();
        let mut batch = Vec::new();
        let mut segments = Vec::new();
        let mut flushes = Vec::new();
        let mut linger = false;
        while let Some(first) = rx.recv().await {
            if linger && !matches!(first, Queued::Flush(_)) {
                tokio::select! {
                    () = tokio::time::sleep(LINGER) => {}
                    () = writer.hurry.notified() => {}
                }
            }
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Queued::Reserve(one, segment) => {
                        reserved.push(*one);
                        segments.extend(segment);
                    }
                    Queued::Release(one) => released.push(*one),
                    Queued::Settle(one, segment) => {
                        batch.push(*one);
                        segments.extend(segment);
                    }
                    Queued::Flush(done) => flushes.push(done),
                }
                if batch.len() + reserved.len() < 2 * BATCH {
                    next = rx.try_recv().ok();
                }
            }
            let taken = batch.len() + reserved.len() + released.len();
            linger = taken > 1 && batch.len() + reserved.len() < 2 * BATCH;
            let all = Batch {
                reserved: &reserved,
                released: &released,
                settlements: &batch,
            };
            // A batch not written stays pending in the journal, for the next start.
            if let Some(dropped) = writer.write_batch(all).await {
                if dropped > 0 {
                    tracing::warn!(
                        dropped,
                        "settle: reservations settled already (settled twice?); those usage \
                         records are dropped"
                    );
                }
                if let Some(journal) = &writer.journal {
                    journal.written(&segments);
                }
            }
            reserved.clear();
            released.clear();
            batch.clear();
            segments.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    });
    tx
}

/// `[{"route": "gemini/gemini-2.5-flash", "outcome": "ok", "latency_ms": 412}, ...]` (without
/// the spaces). Written by hand, on every settlement: the bytes serde writes for the same
/// list, in about a third of the instructions.
pub(crate) fn attempts_json(attempts: &[Attempt]) -> String {
    let mut out = Vec::with_capacity(attempts.len() * 96 + 2);
    out.push(b'[');
    for (i, attempt) in attempts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"route\":\"");
        json::write_str_contents(&mut out, attempt.route.provider);
        out.push(b'/');
        json::write_str_contents(&mut out, &attempt.route.model);
        out.extend_from_slice(b"\",\"outcome\":");
        json::write_str(&mut out, attempt.outcome.as_str());
        out.extend_from_slice(b",\"latency_ms\":");
        out.extend_from_slice(itoa::Buffer::new().format(ms(attempt.latency)).as_bytes());
        out.push(b'}');
    }
    out.push(b']');
    // Only whole UTF-8 strings and ASCII were written.
    String::from_utf8(out).unwrap_or_else(|_| String::from("[]"))
}

/// The tags of a usage-log row as a JSON object, or `None` when there are none.
fn metadata_json(metadata: &BTreeMap<String, String>) -> Option<String> {
    (!metadata.is_empty()).then(|| {
        let object: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(object).to_string()
    })
}

/// The tags of a usage-log row, from [`metadata_json`]'s form.
pub(crate) fn metadata_from_json(text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|_| corrupt("the metadata of a usage-log row"))
}

/// The attempts of a usage-log row, from [`attempts_json`]'s form.
pub(crate) fn attempts_from_json(text: &str) -> Result<Vec<LoggedAttempt>> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|_| corrupt("the attempts of a usage-log row"))?;
    list.iter()
        .map(|a| {
            Some(LoggedAttempt {
                route: a.get("route")?.as_str()?.to_owned(),
                outcome: a.get("outcome")?.as_str()?.to_owned(),
                latency: Duration::from_millis(a.get("latency_ms")?.as_u64()?),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| corrupt("the attempts of a usage-log row"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::{AttemptOutcome, ErrorKind, RouteId, Skip};

    #[test]
    fn attempts_round_trip() {
        let attempts = vec![
            Attempt {
                route: RouteId::new("hf", "meta-llama/Llama-3.1-8B:cerebras"),
                outcome: AttemptOutcome::Failed(ErrorKind::RateLimited { retry_after: None }),
                latency: Duration::from_millis(12),
            },
            Attempt {
                route: RouteId::new("gemini", "gemini-2.5-pro"),
                outcome: AttemptOutcome::Skipped(Skip::CircuitOpen),
                latency: Duration::ZERO,
            },
            Attempt {
                route: RouteId::new("gemini", "gemini-2.5-flash"),
                outcome: AttemptOutcome::Ok,
                latency: Duration::from_millis(412),
            },
        ];
        let json = attempts_json(&attempts);
        assert!(
            json.contains(r#""route":"gemini/gemini-2.5-flash""#),
            "{json}"
        );
        // The bytes serde_json writes for the same list, escapes included.
        let mut odd = attempts.clone();
        odd.push(Attempt {
            route: RouteId::new("hf", "we\"ird\\mo\u{1}dél"),
            outcome: AttemptOutcome::Ok,
            latency: Duration::from_secs(86_400),
        });
        for list in [&attempts[..], &odd[..], &[]] {
            let expected = list
                .iter()
                .map(|a| {
                    format!(
                        r#"{{"route":{},"outcome":{},"latency_ms":{}}}"#,
                        serde_json::to_string(&a.route.to_string()).unwrap(),
                        serde_json::to_string(a.outcome.as_str()).unwrap(),
                        ms(a.latency)
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            assert_eq!(attempts_json(list), format!("[{expected}]"));
        }
        let logged: Vec<(String, String)> = attempts_from_json(&json)
            .unwrap()
            .into_iter()
            .map(|a| (a.route, a.outcome))
            .collect();
        let pair = |r: &str, o: &str| (r.to_owned(), o.to_owned());
        assert_eq!(
            logged,
            [
                pair("hf/meta-llama/Llama-3.1-8B:cerebras", "rate_limited"),
                pair("gemini/gemini-2.5-pro", "circuit_open"),
                pair("gemini/gemini-2.5-flash", "ok"),
            ]
        );
        assert!(attempts_from_json("{").is_err());
        assert!(attempts_from_json(r#"[{"route": "a/b"}]"#).is_err());
    }

    #[test]
    fn over_reservation_compares_the_counted_volume_and_known_costs() {
        let usd = |s: &str| Some(s.parse::<Cost>().unwrap());
        let text = |tokens, cost| Amount::new(tokens, 0, cost);
        let over = |used: Amount, reserved: Amount| {
            over_reservation(Modality::Text, &used, Modality::Text, &reserved)
        };
        assert!(!over(text(100, usd("0.001")), text(100, usd("0.001"))));
        assert!(over(text(101, usd("0.001")), text(100, usd("0.001"))));
        assert!(over(text(50, usd("0.0011")), text(100, usd("0.001"))));
        // A cost is only passed when both are known.
        assert!(!over(text(50, usd("5")), text(100, None)));
        assert!(!over(text(50, None), text(100, usd("0.001"))));
        // Nothing charged is never over.
        assert!(!over(Amount::default(), text(100, usd("0.001"))));
        // Units count for media, tokens do not (the plan counts units there).
        let image = |tokens, units| Amount::new(tokens, units, None);
        let media =
            |used, reserved| over_reservation(Modality::Image, &used, Modality::Image, &reserved);
        assert!(media(image(0, 3), image(0, 2)));
        assert!(!media(image(1_000, 2), image(0, 2)));
    }
}
