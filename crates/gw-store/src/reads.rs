//! What the store reads back: counters, summaries, the usage log, remaining allowance.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use gateway_core::{CacheHit, Cost, Error, ErrorKind, Modality, Result, TokenUsage};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::Store;
use crate::counters::{COUNTERS, Counter, Counters};
use crate::db::{corrupt, db_error, from_db, to_db};
use crate::recovery::RECOVERED;
use crate::tally::{SELECT_COUNTERS, Tally};
use crate::time::{from_unix_ms, is_month_key, now_ms};

/// Totals of the usage log for one user, period, provider, model and modality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// The user.
    pub user_id: String,
    /// The billing period (`2026-11`).
    pub period: String,
    /// The provider id.
    pub provider: String,
    /// The provider-local model id.
    pub model: String,
    /// The modality.
    pub modality: Modality,
    /// Usage-log rows: every request that was admitted and settled or recovered.
    pub requests: u64,
    /// Rows whose status is an error kind.
    pub errors: u64,
    /// Prompt tokens (for recovered rows: the whole token estimate).
    pub input_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// Cached prompt tokens.
    pub cached_input_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Media units.
    pub units: u64,
    /// The known cost; rows of unknown cost add nothing (see `unpriced`).
    pub cost: Cost,
    /// Rows whose cost is unknown.
    pub unpriced: u64,
    /// Rows whose usage was estimated rather than reported by the provider.
    pub estimated: u64,
    /// Rows answered from the response cache.
    pub cached_requests: u64,
    /// What the cached answers had cost when they were made: what serving them again saved
    /// (hits whose original answer was not priced add nothing).
    pub cost_saved: Cost,
    /// Rows whose settled usage passed what admission reserved (see
    /// [`UsageLogRow::over_reservation`]).
    pub over_reservation: u64,
}

/// One usage-log row: one request, from admission to settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLogRow {
    /// The row's id; later rows have larger ids.
    pub id: i64,
    /// The gateway's request id.
    pub request_id: String,
    /// The reservation it settled.
    pub reservation_id: Option<String>,
    /// The user.
    pub user_id: String,
    /// The billing period it counted in.
    pub period: String,
    /// The provider id.
    pub provider: String,
    /// The provider-local model id.
    pub model: String,
    /// The modality.
    pub modality: Modality,
    /// The operation (`chat`, `chat.stream`, ...).
    pub operation: String,
    /// `ok`, an error kind in snake case (`upstream`, `timeout`, ...), or `recovered`.
    pub status: String,
    /// The error message, for an error or a recovered row.
    pub error_message: Option<String>,
    /// Tokens (for a recovered row, the estimate's total is in `input_tokens`).
    pub tokens: TokenUsage,
    /// Media units.
    pub units: u64,
    /// The cost; `None` when the model has no price.
    pub cost: Option<Cost>,
    /// The pricing-catalog version that priced it (`None` for a recovered row).
    pub pricing_version: Option<String>,
    /// Whether the usage was estimated.
    pub estimated: bool,
    /// Whether anything was billable.
    pub billable: bool,
    /// From admission to the last byte (`None` for a recovered row).
    pub latency: Option<Duration>,
    /// From admission to the first streamed byte.
    pub time_to_first_token: Option<Duration>,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Set when the answer came from the response cache: how it was found, and what the
    /// answer had cost when it was made (what serving it again saved).
    pub cached: Option<CacheHit>,
    /// Whether the settled usage passed what admission reserved: more tokens (text) or units
    /// than reserved, or a cost above the reserved cost when both are known. The provider
    /// ignored the bound the request set; the real usage was charged all the same. Never set
    /// on a recovered row (charged at its reservation).
    pub over_reservation: bool,
    /// When it was written.
    pub created_at: SystemTime,
    /// Every upstream attempt, in order (empty for a recovered row).
    pub attempts: Vec<LoggedAttempt>,
    /// The caller's end user (OpenAI's `user`), if it named one.
    pub end_user: Option<String>,
    /// The caller's tags (OpenAI's `metadata`).
    pub metadata: BTreeMap<String, String>,
}

/// Which usage-log rows a read covers: every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Rows of this user only.
    pub user_id: Option<String>,
    /// Rows of this billing period (`2026-11`) only.
    pub period: Option<String>,
    /// Rows of this end user only.
    pub end_user: Option<String>,
    /// Rows carrying every one of these tags.
    pub metadata: Vec<(String, String)>,
}

impl LogFilter {
    /// The most tags one filter may name.
    pub const MAX_TAGS: usize = 16;

    /// The rows of the user `user_id`.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: Some(user_id.into()),
            ..Self::default()
        }
    }

    /// The `WHERE` clause and its values, numbered from `$1`.
    fn clause(&self) -> Result<(String, Vec<String>)> {
        if self.metadata.len() > Self::MAX_TAGS {
            return Err(Error::invalid_request(format!(
                "a usage read filters by at most {} tags",
                Self::MAX_TAGS
            )));
        }
        if let Some(period) = &self.period {
            check_period(period)?;
        }
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        let mut column = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                values.push(v.clone());
                conditions.push(format!("{name} = ${}", values.len()));
            }
        };
        column("user_id", &self.user_id);
        column("period", &self.period);
        column("end_user", &self.end_user);
        for (key, value) in &self.metadata {
            values.push(key.clone());
            values.push(value.clone());
            let (k, v) = (values.len() - 1, values.len());
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM usage_log_tags t WHERE t.request_id = usage_log.request_id
                   AND t.user_id = usage_log.user_id AND t.tag_key = ${k} AND t.tag_value = ${v})"
            ));
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        Ok((clause, values))
    }
}

/// Totals of the usage-log rows a [`LogFilter`] selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTotals {
    /// Rows.
    pub requests: u64,
    /// Rows whose status is an error kind.
    pub errors: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// Media units.
    pub units: u64,
    /// The known cost; rows of unknown cost add nothing (see `unpriced`).
    pub cost: Cost,
    /// Rows whose cost is unknown.
    pub unpriced: u64,
    /// Rows answered from the response cache.
    pub cached_requests: u64,
    /// What the cached answers had cost when they were made (unpriced ones add nothing).
    pub cost_saved: Cost,
    /// Rows whose settled usage passed what admission reserved.
    pub over_reservation: u64,
}

impl UsageLogRow {
    /// What serving this row's answer from the cache saved: `None` unless it was a cache hit
    /// whose original answer was priced.
    pub fn cost_saved(&self) -> Option<Cost> {
        self.cached.and_then(|hit| hit.saved)
    }
}

/// One upstream attempt as the usage log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedAttempt {
    /// The route, `<provider>/<model id>`.
    pub route: String,
    /// How it ended, as [`AttemptOutcome::as_str`](gateway_core::AttemptOutcome::as_str) names
    /// it (`ok`, `rate_limited`, `circuit_open`, ...). A name is kept as written, so rows of
    /// another gateway version read back too.
    pub outcome: String,
    /// From the start of the attempt to its end (zero for a skipped route).
    pub latency: Duration,
}

/// What a user has left of the plan in the current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// The user.
    pub user_id: String,
    /// The user's plan.
    pub plan: String,
    /// The current period (`2026-11`).
    pub period: String,
    /// One entry per counter of the modalities the plan includes, then `cost_usd`.
    pub counters: Vec<Remaining>,
}

/// One counter of an [`Allowance`]. Values are nano-USD for [`Counter::CostUsd`]
/// ([`Counter::format_value`] prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// The counter.
    pub counter: Counter,
    /// Used so far (settled and reserved).
    pub used: u64,
    /// The plan's limit; `None` is unlimited.
    pub limit: Option<u64>,
    /// What is left (0 when over); `None` is unlimited.
    pub remaining: Option<u64>,
}

const SUMMARY_COLUMNS: &str = "user_id, period, provider, model, modality, requests, errors,
    input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, units, cost_nanos,
    unpriced, estimated, cached_requests, cost_saved_nanos, over_reservation";

const LOG_COLUMNS: &str = "id, request_id, reservation_id, user_id, period, provider, model,
    modality, operation, status, error_message, input_tokens, output_tokens,
    cached_input_tokens, reasoning_tokens, units, cost_nanos, pricing_version, estimated,
    billable, latency_ms, ttft_ms, retries, created_at, attempts, end_user, metadata, cache_hit,
    cost_saved_nanos, over_reservation";

fn modality_of(row: &AnyRow) -> Result<Modality> {
    let name: String = row.try_get("modality").map_err(db_error)?;
    Modality::parse(&name).ok_or_else(|| corrupt(&format!("the modality `{name}`")))
}

fn summary_from_row(row: &AnyRow) -> Result<SummaryRow> {
    let n = |col: &str| row.try_get::<i64, _>(col).map(from_db).map_err(db_error);
    let s = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
    Ok(SummaryRow {
        user_id: s("user_id")?,
        period: s("period")?,
        provider: s("provider")?,
        model: s("model")?,
        modality: modality_of(row)?,
        requests: n("requests")?,
        errors: n("errors")?,
        input_tokens: n("input_tokens")?,
        output_tokens: n("output_tokens")?,
        cached_input_tokens: n("cached_input_tokens")?,
        reasoning_tokens: n("reasoning_tokens")?,
        units: n("units")?,
        cost: Cost::from_nanos(n("cost_nanos")?),
        unpriced: n("unpriced")?,
        estimated: n("estimated")?,
        cached_requests: n("cached_requests")?,
        cost_saved: Cost::from_nanos(n("cost_saved_nanos")?),
        over_reservation: n("over_reservation")?,
    })
}

fn log_from_row(row: &AnyRow) -> Result<UsageLogRow> {
    let n = |col: &str| row.try_get::<i64, _>(col).map(from_db).map_err(db_error);
    let opt = |col: &str| row.try_get::<Option<i64>, _>(col).map_err(db_error);
    let s = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
    let os = |col: &str| row.try_get::<Option<String>, _>(col).map_err(db_error);
    let millis = |v: Option<i64>| v.map(|v| Duration::from_millis(from_db(v)));
    Ok(UsageLogRow {
        id: row.try_get("id").map_err(db_error)?,
        request_id: s("request_id")?,
        reservation_id: os("reservation_id")?,
        user_id: s("user_id")?,
        period: s("period")?,
        provider: s("provider")?,
        model: s("model")?,
        modality: modality_of(row)?,
        operation: s("operation")?,
        status: s("status")?,
        error_message: os("error_message")?,
        tokens: TokenUsage {
            input_tokens: n("input_tokens")?,
            output_tokens: n("output_tokens")?,
            reasoning_tokens: n("reasoning_tokens")?,
            cached_input_tokens: n("cached_input_tokens")?,
        },
        units: n("units")?,
        cost: opt("cost_nanos")?.map(|v| Cost::from_nanos(from_db(v))),
        pricing_version: os("pricing_version")?,
        estimated: n("estimated")? != 0,
        billable: n("billable")? != 0,
        latency: millis(opt("latency_ms")?),
        time_to_first_token: millis(opt("ttft_ms")?),
        retries: u32::try_from(n("retries")?).unwrap_or(u32::MAX),
        cached: crate::settlement::cache_hit_from_db(
            os("cache_hit")?.as_deref(),
            opt("cost_saved_nanos")?,
        )?,
        over_reservation: n("over_reservation")? != 0,
        created_at: from_unix_ms(row.try_get("created_at").map_err(db_error)?),
        attempts: match os("attempts")? {
            Some(text) => crate::settlement::attempts_from_json(&text)?,
            None => Vec::new(),
        },
        end_user: os("end_user")?,
        metadata: match os("metadata")? {
            Some(text) => crate::settlement::metadata_from_json(&text)?,
            None => BTreeMap::new(),
        },
    })
}

fn check_period(period: &str) -> Result<()> {
    if is_month_key(period) {
        Ok(())
    } else {
        Err(Error::invalid_request(format!(
            "`{period}` is not a billing period: expected a month such as 2026-11"
        )))
    }
}

// The column lists above are spliced into constant SQL; these build each text once.
macro_rules! sql {
    ($($part:expr),+ $(,)?) => {{
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| [$($part),+].concat());
        sqlx::AssertSqlSafe(SQL.as_str())
    }};
}

impl Store {
    /// What the user `user_id` has used in `period` (`2026-11`), reservations included; all
    /// zero when nothing was recorded.
    pub async fn counters(&self, user_id: &str, period: &str) -> Result<Counters> {
        let rows = sqlx::query(SELECT_COUNTERS)
            .bind(user_id)
            .bind(period)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let mut counters = Counters::new();
        for row in rows {
            let name: String = row.try_get("counter").map_err(db_error)?;
            let value: i64 = row.try_get("value").map_err(db_error)?;
            // A counter this version does not know (a newer gateway's modality) is not shown.
            if let Some(counter) = Counter::parse(&name) {
                counters.set(counter, from_db(value));
            }
        }
        Ok(counters)
    }

    /// Adds `counters` to what the user `user_id` used in `period`, without any limit check:
    /// prior usage for fixtures, or an operator's correction.
    pub async fn add_counters(
        &self,
        user_id: &str,
        period: &str,
        counters: &Counters,
    ) -> Result<()> {
        check_period(period)?;
        if self.get_user(user_id).await?.is_none() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no user with id `{user_id}`"),
            ));
        }
        let deltas: [i64; COUNTERS] = std::array::from_fn(|i| to_db(counters.get(Counter::ALL[i])));
        let now = now_ms();
        let (_writing, mut tx) = self.begin().await?;
        let mut tally = Tally::default();
        tally.touch_deltas(user_id, period, &deltas);
        tally.load(&mut tx, self.backend, now).await?;
        tally.adjust(user_id, period, &deltas);
        tally.store(&mut tx, self.backend, now).await?;
        tx.commit().await.map_err(db_error)
    }

    /// What the user `user_id` has left of the plan in the current period.
    pub async fn remaining(&self, user_id: &str) -> Result<Allowance> {
        let user = self.get_user(user_id).await?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("no user with id `{user_id}`"))
        })?;
        let plan = self.plan_named(user_id, &user.plan)?;
        let period = plan.current_period();
        let used = self.counters(user_id, &period).await?;
        let counters = Counter::ALL
            .into_iter()
            .filter(|c| c.modality().is_none_or(|m| plan.includes(m)))
            .map(|counter| {
                let used = used.get(counter);
                let limit = plan.limit(counter);
                Remaining {
                    counter,
                    used,
                    limit,
                    remaining: limit.map(|l| l.saturating_sub(used)),
                }
            })
            .collect();
        Ok(Allowance {
            user_id: user.id,
            plan: user.plan,
            period,
            counters,
        })
    }

    /// The usage summary of the user `user_id` in `period`, by provider, model and modality.
    pub async fn usage_summary(&self, user_id: &str, period: &str) -> Result<Vec<SummaryRow>> {
        let sql = sql!(
            "SELECT ",
            SUMMARY_COLUMNS,
            " FROM usage_summary WHERE user_id = $1 AND period = $2
              ORDER BY provider, model, modality"
        );
        let rows = sqlx::query(sql)
            .bind(user_id)
            .bind(period)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(summary_from_row).collect()
    }

    /// The usage summary of every user in `period` (for operators).
    pub async fn usage_summary_all(&self, period: &str) -> Result<Vec<SummaryRow>> {
        let sql = sql!(
            "SELECT ",
            SUMMARY_COLUMNS,
            " FROM usage_summary WHERE period = $1
              ORDER BY user_id, provider, model, modality"
        );
        let rows = sqlx::query(sql)
            .bind(period)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(summary_from_row).collect()
    }

    /// The most recent `limit` usage-log rows, newest first: of the user `user_id`, or of
    /// everyone when `None`.
    pub async fn usage_log(&self, user_id: Option<&str>, limit: u32) -> Result<Vec<UsageLogRow>> {
        let filter = LogFilter {
            user_id: user_id.map(str::to_owned),
            ..LogFilter::default()
        };
        self.usage_log_where(&filter, limit).await
    }

    /// The most recent `limit` usage-log rows that `filter` selects, newest first.
    pub async fn usage_log_where(
        &self,
        filter: &LogFilter,
        limit: u32,
    ) -> Result<Vec<UsageLogRow>> {
        let (clause, values) = filter.clause()?;
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM usage_log{clause} ORDER BY created_at DESC, id DESC LIMIT ${}",
            values.len() + 1
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(log_from_row).collect()
    }

    /// The totals of every usage-log row `filter` selects (e.g. the cost of one tag this month).
    /// Sums are cast back to `BIGINT`: PostgreSQL sums `BIGINT` as `NUMERIC`.
    pub async fn usage_totals(&self, filter: &LogFilter) -> Result<LogTotals> {
        let (clause, values) = filter.clause()?;
        let sql = format!(
            "SELECT COUNT(*) AS requests,
                CAST(COALESCE(SUM(CASE WHEN status <> 'ok' AND status <> '{RECOVERED}' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors,
                CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
                CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
                CAST(COALESCE(SUM(units), 0) AS BIGINT) AS units,
                CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
                CAST(COALESCE(SUM(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS unpriced,
                CAST(COALESCE(SUM(CASE WHEN cache_hit IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS cached_requests,
                CAST(COALESCE(SUM(cost_saved_nanos), 0) AS BIGINT) AS cost_saved_nanos,
                CAST(COALESCE(SUM(over_reservation), 0) AS BIGINT) AS over_reservation
             FROM usage_log{clause}"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        let row = query.fetch_one(&self.pool).await.map_err(db_error)?;
        let n = |col: &str| row.try_get::<i64, _>(col).map(from_db).map_err(db_error);
        Ok(LogTotals {
            requests: n("requests")?,
            errors: n("errors")?,
            input_tokens: n("input_tokens")?,
            output_tokens: n("output_tokens")?,
            units: n("units")?,
            cost: Cost::from_nanos(n("cost_nanos")?),
            unpriced: n("unpriced")?,
            cached_requests: n("cached_requests")?,
            cost_saved: Cost::from_nanos(n("cost_saved_nanos")?),
            over_reservation: n("over_reservation")?,
        })
    }

    /// How many reservations are open (admitted, not settled yet), across all instances.
    pub async fn open_reservations(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reservations")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(from_db(n))
    }
}
