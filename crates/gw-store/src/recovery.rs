//! Instances and recovery: each gateway process registers and beats a heartbeat, and the
//! reservations of a process that died (or of a settlement that failed) are settled at their
//! estimate, so nothing that may have reached a provider goes unaccounted.

use std::time::Duration;

use gateway_core::{Error, Result};
use sqlx::{AssertSqlSafe, Row};
use tokio::task::JoinHandle;

use crate::Store;
use crate::db::{db_error, placeholders};
use crate::settlement::{LogEntry, ms, stored_reservation, write_log};
use crate::time::now_ms;

/// The columns of a reservation `r` that [`Store::recover`] reads.
const RESERVATION_ROW: &str = "r.id, r.request_id, r.user_id, r.period, r.provider, r.model,
    r.modality, r.operation, r.requests, r.tokens, r.units, r.cost_nanos, r.instance_id";

/// Leaves out a reservation `r` owned by a video or fine-tuning job not settled yet: the job
/// outlives the instance that submitted it, and its end settles it.
const NOT_HELD_BY_A_JOB: &str = "NOT EXISTS (SELECT 1 FROM video_jobs j
                             WHERE j.reservation_id = r.id AND j.settled = 0)
    AND NOT EXISTS (SELECT 1 FROM fine_tuning_jobs f
                    WHERE f.reservation_id = r.id AND f.settled = 0)";

/// The status of a usage-log row written by [`Store::recover_stale`].
pub const RECOVERED: &str = "recovered";

impl Store {
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
            // Pruned while we were unreachable; register again. Our leases were freed with us,
            // so what the ledger holds of them is no longer ours.
            if let Some(ledger) = &self.ledger {
                let dropped = ledger.all();
                tracing::warn!(
                    leases = dropped.len(),
                    "this instance was taken for dead: its leases were freed, and are dropped"
                );
            }
            self.register_instance().await?;
        }
        Ok(())
    }

    /// Settles at their estimate the reservations of every other instance whose last
    /// heartbeat is older than `stale_after` (or that never registered), as if each request
    /// had used all it reserved: nothing that may have reached a provider goes unaccounted.
    /// A reservation owned by a video or fine-tuning job not settled yet is left alone: the job
    /// outlives the instance that submitted it, and its end settles it (see
    /// [`Store::finish_video_job`], [`Store::finish_fine_tuning_job`]).
    /// Each becomes a usage-log row with status [`RECOVERED`] and `estimated = true`, and is
    /// logged as a warning. If the instance was alive after all and settles the request later,
    /// its settlement replaces that row (counters, log and summary moved to what the request
    /// used), so a request never has two rows. Returns how many were settled.
    ///
    /// `stale_after` must be well above the heartbeat interval, or a live but slow instance
    /// would lose its reservations (they would be charged at the estimate).
    pub async fn recover_stale(&self, stale_after: Duration) -> Result<usize> {
        let cutoff = now_ms().saturating_sub(ms(stale_after));
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESERVATION_ROW}
                 FROM reservations r LEFT JOIN instances i ON i.id = r.instance_id
                 WHERE r.instance_id <> $1 AND (i.id IS NULL OR i.heartbeat_at < $2)
                   AND {NOT_HELD_BY_A_JOB} ORDER BY r.created_at"
        )))
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
        // The leases of dead instances go back to their users' allowances.
        sqlx::query(
            "DELETE FROM leases WHERE instance_id <> $1
             AND instance_id NOT IN (SELECT id FROM instances WHERE heartbeat_at >= $2)",
        )
        .bind(&*self.instance_id)
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        sqlx::query("DELETE FROM lease_wants WHERE wanted_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
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
    /// as long as their instance lives. `older_than` should be longer than any request, stream
    /// or media job may take: a settlement that arrives after all still replaces the recovered
    /// row with what the request used (see [`Accounting::settle`](gateway_core::Accounting)),
    /// but until then the request is charged its estimate.
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

    /// Settles at their estimate the reservations of `instances`, which are known to be dead
    /// (their journal was taken over), and frees their leases, without waiting for
    /// `stale_after`. Jobs' reservations are left to the jobs, as in [`Store::recover_stale`].
    pub(crate) async fn recover_dead(&self, instances: &[&str]) -> Result<usize> {
        if instances.is_empty() {
            return Ok(0);
        }
        let list = placeholders(self.backend, 1, instances.len(), 1, "");
        let sql = format!(
            "SELECT {RESERVATION_ROW} FROM reservations r
             WHERE r.instance_id IN {list} AND {NOT_HELD_BY_A_JOB} ORDER BY r.created_at"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in instances {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
        let recovered = self
            .recover(&rows, |instance| {
                format!(
                    "recovered at its estimate: instance `{instance}` was killed before settling"
                )
            })
            .await?;
        let sql = format!("DELETE FROM leases WHERE instance_id IN {list}");
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in instances {
            query = query.bind(*id);
        }
        query.execute(&self.pool).await.map_err(db_error)?;
        Ok(recovered)
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
            // summary are written.
            let entry = LogEntry {
                request_id: &request_id,
                reservation_id: &id,
                user_id: &stored.user_id,
                period: &stored.period,
                provider: &provider,
                model: &model,
                operation: &operation,
                ..LogEntry::recovered(stored.modality, &stored.amount, Some(&message))
            };
            write_log(&mut tx, self.backend, &[entry], &[], now_ms()).await?;
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
    /// Fails with [`ErrorKind::InvalidRequest`](gateway_core::ErrorKind::InvalidRequest) unless
    /// `every` is not zero and `stale_after` is at least twice `every`, so a live instance is
    /// never taken for dead between beats.
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
