//! The usage counters in the database, one row per (user, period, counter), and the one way
//! every writer changes them: lock and read the rows of each (user, period) it touches, change
//! the values in memory, write back what changed, all in one transaction.
//!
//! Exactness rests on the read seeing the latest committed values and nobody else changing them
//! before the commit. On SQLite every write transaction holds the database's one write lock from
//! its start (`BEGIN IMMEDIATE`), so a plain `SELECT` does. On PostgreSQL one statement reads
//! and row-locks every counter the transaction may change, creating the rows that do not exist
//! yet (a missing row could not be locked): `INSERT ... ON CONFLICT DO UPDATE` with a no-op
//! update and `RETURNING`, which waits for other writers of a row and returns the value they
//! committed. It takes the rows in one order, by user, period and counter name, in every
//! transaction, and the transaction takes no other counter lock after it, so two batches never
//! wait on each other in a cycle. (Creating rows with `ON CONFLICT DO NOTHING` and then locking
//! them with `SELECT ... FOR UPDATE` is as exact but costs one more round trip.)

use std::collections::BTreeMap;
use std::sync::LazyLock;

use gateway_core::Result;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::Backend;
use crate::counters::{COUNTERS, Counter};
use crate::db::{FastMap, Tx, chunked, db_error, placeholders};

/// The counters of (`$1` user, `$2` period), for reading them outside a transaction.
pub(crate) const SELECT_COUNTERS: &str =
    "SELECT counter, value FROM usage_counters WHERE user_id = $1 AND period = $2";

/// Every counter, by name: the order a transaction creates rows in.
static BY_NAME: LazyLock<[Counter; COUNTERS]> = LazyLock::new(|| {
    let mut all = Counter::ALL;
    all.sort_by_key(|c| c.as_str());
    all
});

/// The counters of some (user, period) pairs inside one transaction.
#[derive(Default)]
pub(crate) struct Tally {
    /// By user, then period (nested so lookups by `&str` need no allocation).
    users: BTreeMap<String, BTreeMap<String, Group>>,
}

/// The counters of one user in one period.
#[derive(Default)]
struct Group {
    /// The counters this transaction may change: on PostgreSQL the ones read and locked.
    touched: [bool; COUNTERS],
    /// As read.
    read: [i64; COUNTERS],
    /// As changed since.
    values: [i64; COUNTERS],
    /// What the leases of every instance hold of each counter (see [`Tally::load_leases`]).
    leased: [i64; COUNTERS],
}

impl Tally {
    /// Declares that this transaction may change `counters` of (`user_id`, `period`), or needs
    /// their current values. Every counter changed or checked later must have been declared
    /// before [`Tally::load`]: on PostgreSQL the others are not read.
    pub(crate) fn touch(
        &mut self,
        user_id: &str,
        period: &str,
        counters: impl IntoIterator<Item = Counter>,
    ) {
        let group = self.group_entry(user_id, period);
        for c in counters {
            group.touched[c.index()] = true;
        }
    }

    /// Declares the counters `deltas` changes (the non-zero ones), like [`Tally::touch`].
    pub(crate) fn touch_deltas(&mut self, user_id: &str, period: &str, deltas: &[i64; COUNTERS]) {
        if deltas.iter().all(|&d| d == 0) {
            return;
        }
        let group = self.group_entry(user_id, period);
        for (t, d) in group.touched.iter_mut().zip(deltas) {
            *t |= *d != 0;
        }
    }

    fn group_entry(&mut self, user_id: &str, period: &str) -> &mut Group {
        // Two lookups rather than `entry`, so a known pair costs no allocation.
        if !self.users.contains_key(user_id) {
            self.users.insert(user_id.to_owned(), BTreeMap::new());
        }
        let periods = self.users.get_mut(user_id).expect("inserted above");
        if !periods.contains_key(period) {
            periods.insert(period.to_owned(), Group::default());
        }
        periods.get_mut(period).expect("inserted above")
    }

    /// The current values of (`user_id`, `period`), to check and change; `None` for a pair that
    /// was not declared.
    pub(crate) fn values_mut(
        &mut self,
        user_id: &str,
        period: &str,
    ) -> Option<&mut [i64; COUNTERS]> {
        Some(&mut self.users.get_mut(user_id)?.get_mut(period)?.values)
    }

    /// The counters of (`user_id`, `period`) as a limit check must see them: what they count
    /// plus what leases hold of them ([`Tally::load_leases`]); `None` for a pair not declared.
    pub(crate) fn committed(&self, user_id: &str, period: &str) -> Option<[i64; COUNTERS]> {
        let group = self.users.get(user_id)?.get(period)?;
        Some(std::array::from_fn(|i| {
            group.values[i].saturating_add(group.leased[i])
        }))
    }

    /// Adds `deltas` to the counters of (`user_id`, `period`) without a limit check, never
    /// below zero (settling, corrections).
    pub(crate) fn adjust(&mut self, user_id: &str, period: &str, deltas: &[i64; COUNTERS]) {
        if let Some(values) = self.values_mut(user_id, period) {
            for (v, d) in values.iter_mut().zip(deltas) {
                *v = v.saturating_add(*d).max(0);
            }
        }
    }

    /// Every declared (user, period), in order.
    fn groups(&self) -> impl Iterator<Item = (&str, &str, &Group)> {
        self.users.iter().flat_map(|(user, periods)| {
            periods
                .iter()
                .map(move |(period, group)| (user.as_str(), period.as_str(), group))
        })
    }

    /// Reads the counters of every declared (user, period), on PostgreSQL only the declared
    /// ones, which it locks until the transaction ends (the others are neither checked nor
    /// changed). A row that does not exist reads as zero; a counter name this version does not
    /// know (a newer gateway's modality) is left alone.
    pub(crate) async fn load(&mut self, tx: &mut Tx, backend: Backend, now: i64) -> Result<()> {
        if self.users.is_empty() {
            return Ok(());
        }
        let rows = match backend {
            Backend::Sqlite => self.select_rows(tx).await?,
            Backend::Postgres => self.lock_rows(tx, now).await?,
        };
        for row in rows {
            let get = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
            let (user, period, name) = (get("user_id")?, get("period")?, get("counter")?);
            let value: i64 = row.try_get("value").map_err(db_error)?;
            let Some(counter) = Counter::parse(&name) else {
                continue;
            };
            if let Some(group) = self.users.get_mut(&user).and_then(|p| p.get_mut(&period)) {
                group.read[counter.index()] = value.max(0);
            }
        }
        for periods in self.users.values_mut() {
            for group in periods.values_mut() {
                group.values = group.read;
            }
        }
        Ok(())
    }

    /// Reads what the leases of every instance hold of each declared (user, period), after
    /// [`Tally::load`]: leases are granted and used up only by transactions that hold the
    /// counters' rows, so with them locked the sum is as exact as the counters.
    pub(crate) async fn load_leases(&mut self, tx: &mut Tx, backend: Backend) -> Result<()> {
        if self.users.is_empty() {
            return Ok(());
        }
        let groups: Vec<(&str, &str)> = self.groups().map(|(u, p, _)| (u, p)).collect();
        let mut rows = Vec::new();
        for run in chunked(&groups) {
            // A row-value list both databases take.
            let sql = format!(
                "SELECT user_id, period, counter, CAST(SUM(held) AS BIGINT) AS held FROM leases
                 WHERE (user_id, period) IN (VALUES {}) GROUP BY user_id, period, counter",
                placeholders(backend, run.len(), 2, 1, "")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (user, period) in run {
                query = query.bind(*user).bind(*period);
            }
            rows.extend(query.fetch_all(&mut **tx).await.map_err(db_error)?);
        }
        for row in rows {
            let get = |col: &str| row.try_get::<String, _>(col).map_err(db_error);
            let (user, period, name) = (get("user_id")?, get("period")?, get("counter")?);
            let held: i64 = row.try_get("held").map_err(db_error)?;
            let Some(counter) = Counter::parse(&name) else {
                continue;
            };
            if let Some(group) = self.users.get_mut(&user).and_then(|p| p.get_mut(&period)) {
                group.leased[counter.index()] = held.max(0);
            }
        }
        Ok(())
    }

    /// Every counter row of the declared (user, period)s (SQLite: the write lock is held).
    async fn select_rows(&self, tx: &mut Tx) -> Result<Vec<AnyRow>> {
        let groups: Vec<(&str, &str)> = self.groups().map(|(u, p, _)| (u, p)).collect();
        let mut rows = Vec::new();
        for run in chunked(&groups) {
            let mut sql =
                String::from("SELECT user_id, period, counter, value FROM usage_counters WHERE ");
            // SQLite only: plain `?`s, bound in order (see `db::placeholders`).
            for i in 0..run.len() {
                if i > 0 {
                    sql.push_str(" OR ");
                }
                sql.push_str("(user_id = ? AND period = ?)");
            }
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (user, period) in run {
                query = query.bind(*user).bind(*period);
            }
            rows.extend(query.fetch_all(&mut **tx).await.map_err(db_error)?);
        }
        Ok(rows)
    }

    /// The rows of every declared counter, created at zero where missing and locked until the
    /// transaction ends, in [`Tally::touched_rows`] order (PostgreSQL). The no-op update is what
    /// locks an existing row and makes `RETURNING` give its latest committed value.
    async fn lock_rows(&self, tx: &mut Tx, now: i64) -> Result<Vec<AnyRow>> {
        let rows: Vec<(&str, &str, Counter)> = self.touched_rows().collect();
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // In runs, in order: each run locks its rows before the next, so the order holds.
        let mut locked = Vec::with_capacity(rows.len());
        for run in chunked(&rows) {
            let sql = format!(
                "INSERT INTO usage_counters (user_id, period, counter, value, updated_at)
                 VALUES {}
                 ON CONFLICT (user_id, period, counter) DO UPDATE SET value = usage_counters.value
                 RETURNING user_id, period, counter, value",
                placeholders(Backend::Postgres, run.len(), 5, 1, "")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (user, period, counter) in run {
                query = query
                    .bind(*user)
                    .bind(*period)
                    .bind(counter.as_str())
                    .bind(0i64)
                    .bind(now);
            }
            locked.extend(query.fetch_all(&mut **tx).await.map_err(db_error)?);
        }
        Ok(locked)
    }

    /// The declared counters, by user, period and counter name (the order rows are locked in).
    fn touched_rows(&self) -> impl Iterator<Item = (&str, &str, Counter)> {
        self.groups().flat_map(|(user, period, group)| {
            BY_NAME
                .iter()
                .filter(|c| group.touched[c.index()])
                .map(move |&c| (user, period, c))
        })
    }

    /// Writes back every counter whose value changed since [`Tally::load`], in one statement.
    pub(crate) async fn store(&self, tx: &mut Tx, backend: Backend, now: i64) -> Result<()> {
        let rows: Vec<(&str, &str, Counter, i64)> = self
            .groups()
            .flat_map(|(user, period, group)| {
                Counter::ALL.into_iter().filter_map(move |c| {
                    let i = c.index();
                    (group.values[i] != group.read[i]).then(|| {
                        debug_assert!(group.touched[i], "{c} changed but was not declared");
                        (user, period, c, group.values[i])
                    })
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        for run in chunked(&rows) {
            let sql = format!(
                "INSERT INTO usage_counters (user_id, period, counter, value, updated_at)
                 VALUES {}
                 ON CONFLICT (user_id, period, counter) DO UPDATE
                 SET value = excluded.value, updated_at = excluded.updated_at",
                placeholders(backend, run.len(), 5, 1, "")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (user, period, counter, value) in run {
                query = query
                    .bind(*user)
                    .bind(*period)
                    .bind(counter.as_str())
                    .bind(*value)
                    .bind(now);
            }
            query.execute(&mut **tx).await.map_err(db_error)?;
        }
        Ok(())
    }
}

/// The non-zero sums of `moves` per (user, period, counter name), in the one order rows are
/// locked in (by user, period and counter name), for writers that add to rows in one statement
/// (PostgreSQL refuses a statement that updates one row twice). Summed per (user, period)
/// first, one look-up a move, then the few pairs sorted: a batch holds many moves of few users.
pub(crate) fn summed<'a>(
    moves: &[(&'a str, &'a str, [i64; COUNTERS])],
) -> Vec<((&'a str, &'a str, &'static str), i64)> {
    let mut per: FastMap<(&str, &str), [i64; COUNTERS]> = FastMap::default();
    for (user, period, deltas) in moves {
        let sums = per.entry((*user, *period)).or_insert([0; COUNTERS]);
        for (sum, delta) in sums.iter_mut().zip(deltas) {
            *sum += delta;
        }
    }
    let mut pairs: Vec<_> = per.into_iter().collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    pairs
        .into_iter()
        .flat_map(|((user, period), sums)| {
            BY_NAME.iter().filter_map(move |c| {
                let sum = sums[c.index()];
                (sum != 0).then_some(((user, period, c.as_str()), sum))
            })
        })
        .collect()
}

/// Adds each `(user, period, deltas)` of `moves` to the counters, never below zero, without
/// reading them first: for writers that need no limit check (settlements, reservations already
/// admitted). On PostgreSQL the rows are locked in the one order, by user, period and counter
/// name, that [`Tally::load`] takes them in.
pub(crate) async fn add_to_counters(
    tx: &mut Tx,
    backend: Backend,
    moves: &[(&str, &str, [i64; COUNTERS])],
    now: i64,
) -> Result<()> {
    let rows = summed(moves);
    let max = match backend {
        Backend::Sqlite => "MAX",
        Backend::Postgres => "GREATEST",
    };
    for chunk in chunked(&rows) {
        let sql = format!(
            "INSERT INTO usage_counters (user_id, period, counter, value, updated_at) VALUES {}
             ON CONFLICT (user_id, period, counter) DO UPDATE
             SET value = {max}(usage_counters.value + excluded.value, 0),
                 updated_at = excluded.updated_at",
            placeholders(backend, chunk.len(), 5, 1, "")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((user, period, counter), delta) in chunk {
            // A row not there yet is created at the delta (readers take below zero as zero).
            query = query
                .bind(*user)
                .bind(*period)
                .bind(*counter)
                .bind(*delta)
                .bind(now);
        }
        query.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `summed` must give: the sums per (user, period, counter name) of a `BTreeMap`,
    /// zeros left out, in the map's order.
    fn by_map<'a>(
        moves: &[(&'a str, &'a str, [i64; COUNTERS])],
    ) -> Vec<((&'a str, &'a str, &'static str), i64)> {
        let mut rows: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
        for (user, period, deltas) in moves {
            for c in Counter::ALL {
                *rows.entry((*user, *period, c.as_str())).or_default() += deltas[c.index()];
            }
        }
        rows.into_iter().filter(|(_, d)| *d != 0).collect()
    }

    #[test]
    fn moves_are_summed_per_row_in_the_lock_order() {
        let users = ["usr_b", "usr_a", "usr_ab", "usr_c"];
        let periods = ["2026-12", "2026-11", "all"];
        let mut moves = Vec::new();
        let mut seed: u64 = 7;
        for _ in 0..200 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut deltas = [0; COUNTERS];
            for (i, d) in deltas.iter_mut().enumerate() {
                // Some zero, some cancelling out across moves.
                *d = ((seed >> (i * 5)) % 7) as i64 - 3;
            }
            let user = users[(seed >> 58) as usize % users.len()];
            let period = periods[(seed >> 61) as usize % periods.len()];
            moves.push((user, period, deltas));
        }
        // A pair whose every sum cancels out gives no row.
        let mut one = [0; COUNTERS];
        one[Counter::CostUsd.index()] = 5;
        let minus: [i64; COUNTERS] = one.map(|d| -d);
        moves.push(("usr_z", "2026-12", one));
        moves.push(("usr_z", "2026-12", minus));
        let rows = summed(&moves);
        assert_eq!(rows, by_map(&moves));
        assert!(rows.iter().all(|((user, _, _), _)| *user != "usr_z"));
        assert!(
            rows.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, each row once"
        );
        assert!(summed(&[]).is_empty());
    }
}
