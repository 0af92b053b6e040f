//! Admission: a request is checked against the caller's plan and its estimate reserved, in one
//! transaction shared by the admissions that queued up meanwhile.
//!
//! A batch locks and reads the counters of each (user, period) it holds once (see
//! [`crate::tally`]), decides every admission of that user in memory in arrival order, then
//! writes the new values and all reservations back with a few multi-row statements. The lock is
//! held until the commit, so what one admission read cannot change before it is counted, and
//! concurrent requests, on any number of processes, cannot overshoot a limit.

use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use gateway_core::{
    Accounting, Admission, Amount, Cost, Error, ErrorKind, Modality, OpenOutput, Outcome,
    RequestTags, Reservation, Result, TokenUsage, UsageRecord,
};
use sqlx::AssertSqlSafe;
use tokio::sync::mpsc;

use crate::counters::{COUNTERS, Counter, amount_deltas, counts_tokens};
use crate::db::{Tx, chunked, db_error, from_db, placeholders, to_db};
use crate::settlement::{Queued, Settlement};
use crate::tally::Tally;
use crate::time::unix_ms;
use crate::users::random_id;
use crate::{Backend, Plan, Store};

/// The columns of a reservation, in the order [`insert_reservations`] binds them.
const RESERVATION_COLUMNS: &str = "id, request_id, user_id, period, provider, model, modality,
    operation, requests, tokens, units, cost_nanos, instance_id, created_at";

/// The limit of each counter that `modality` touches; -1 (none) for the others, so that a
/// request is never refused over a counter it does not add to.
fn limits_for(plan: &Plan, modality: Modality) -> [i64; COUNTERS] {
    let mut limits = [-1i64; COUNTERS];
    for c in Counter::of(modality) {
        limits[c.index()] = plan.limit(c).map_or(-1, to_db);
    }
    limits
}

/// An open-ended output's part of an admission: how many answers, at what output price, and
/// the plan's `default_max_tokens` each may produce at most.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenBound {
    open: OpenOutput,
    default: u64,
    /// Whether the plan limits what output costs (its text tokens or its money): only then is
    /// the bound lowered to what is left, and sent upstream.
    limited: bool,
}

impl OpenBound {
    /// The admission's estimate with each answer producing at most `per_answer` tokens.
    fn estimate(&self, base: Amount, per_answer: u64) -> Amount {
        let mut estimate = base;
        let extra = self.open.reserve(per_answer);
        estimate.tokens = estimate.tokens.saturating_add(extra);
        if let Some(price) = self.open.price_per_million {
            let output = Cost::per_million(price, extra);
            estimate.cost = Some(estimate.cost.unwrap_or(Cost::ZERO) + output);
        }
        estimate
    }
}

/// The open-ended output of `admission` under `plan`, when there is one: an output counted in
/// tokens that the request left unbounded, and a plan default to bound it.
fn open_bound(plan: &Plan, admission: &Admission) -> Option<OpenBound> {
    let open = admission.open_output?;
    if !counts_tokens(admission.modality) {
        return None;
    }
    Some(OpenBound {
        open,
        default: plan.default_max_tokens?,
        limited: plan.limit(Counter::Volume(admission.modality)).is_some()
            || plan.limit(Counter::CostUsd).is_some(),
    })
}

/// The estimate to reserve: the router's, plus, for an open-ended output, the plan's
/// `default_max_tokens` (priced at the admission's output price when it has one). The default
/// is a token budget, so it applies only to modalities counted in tokens.
fn full_estimate(plan: &Plan, admission: &Admission) -> Amount {
    match open_bound(plan, admission) {
        Some(open) => open.estimate(admission.estimate, open.default),
        None => admission.estimate,
    }
}

/// The largest output per answer, from 1 to `open.default`, whose estimate fits under `limits`
/// on top of `used`, with that estimate and its deltas; `None` when not even one token fits.
fn lowered(
    open: &OpenBound,
    modality: Modality,
    base: Amount,
    used: &[i64; COUNTERS],
    limits: &[i64; COUNTERS],
) -> Option<(u64, Amount, [i64; COUNTERS])> {
    let at = |per_answer: u64| {
        let estimate = open.estimate(base, per_answer);
        (estimate, amount_deltas(modality, &estimate))
    };
    let (mut low, mut high) = (1u64, open.default);
    if !fits(used, &at(low).1, limits) {
        return None;
    }
    // The estimate grows with the output: the largest that fits, by bisection.
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if fits(used, &at(mid).1, limits) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let (estimate, deltas) = at(low);
    Some((low, estimate, deltas))
}

/// Whether `deltas` fit under `limits` (negative: none) on top of `used`.
fn fits(used: &[i64; COUNTERS], deltas: &[i64; COUNTERS], limits: &[i64; COUNTERS]) -> bool {
    (0..COUNTERS).all(|i| limits[i] < 0 || used[i].saturating_add(deltas[i]) <= limits[i])
}

/// What `p` is admitted at on top of `used` (the counters as a limit check sees them): its
/// output bound (`None`: the request's own), estimate and counter deltas. The full estimate when
/// it fits; otherwise, when `lower` and the request left its output open under a plan that
/// limits it, the largest bound the remaining allowances pay for, which the provider is then
/// told. `None`: refused.
pub(crate) fn decide(
    p: &Prepared,
    used: &[i64; COUNTERS],
    lower: bool,
) -> Option<(Option<u64>, Amount, [i64; COUNTERS])> {
    let limited = p.open.filter(|o| o.limited);
    if fits(used, &p.deltas, &p.limits) {
        return Some((limited.map(|o| o.default), p.estimate, p.deltas));
    }
    let open = limited.filter(|_| lower)?;
    let (bound, estimate, deltas) = lowered(
        &open,
        p.admission.modality,
        p.admission.estimate,
        used,
        &p.limits,
    )?;
    Some((Some(bound), estimate, deltas))
}

/// A new reservation id.
pub(crate) fn new_reservation_id() -> Result<String> {
    random_id("res_", 20)
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
            open: open_bound(plan, &admission),
            plan: plan_name,
            estimate,
            admission,
        })
    }

    async fn admit_request(&self, admission: Admission) -> Result<Reservation> {
        let prepared = self.prepare_admission(admission).await?;
        if let Some(ledger) = &self.ledger {
            return self.admit_leased(ledger, prepared).await;
        }
        let stopped = || {
            Error::new(
                ErrorKind::Unavailable,
                "the usage store's admission task has stopped",
            )
        };
        match &self.admitter {
            Some(admitter) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                admitter
                    .send(PendingAdmission { prepared, reply })
                    .await
                    .map_err(|_| stopped())?;
                let mut answer = answer.await.map_err(|_| stopped())?;
                answer.result.take().unwrap_or_else(|| Err(no_answer()))
            }
            None => self
                .admit_batch(std::slice::from_ref(&prepared))
                .await
                .pop()
                .unwrap_or_else(|| Err(no_answer())),
        }
    }

    /// Admits `batch` in one transaction (one commit for all), in order; each gets its own answer.
    /// A database failure fails the batch, which is then retried one by one so a single bad
    /// admission cannot refuse the others.
    pub(crate) async fn admit_batch(&self, batch: &[Prepared]) -> Vec<Result<Reservation>> {
        let all = async {
            let (_writing, mut tx) = self.begin().await?;
            let answers = self.admit_in(&mut tx, batch).await?;
            tx.commit().await.map_err(db_error)?;
            Ok::<_, Error>(answers)
        };
        match all.await {
            Ok(answers) => answers,
            Err(e) if batch.len() == 1 => vec![Err(e)],
            Err(_) => {
                let mut answers = Vec::with_capacity(batch.len());
                for p in batch {
                    let mut one = Box::pin(self.admit_batch(std::slice::from_ref(p))).await;
                    answers.push(one.pop().unwrap_or_else(|| Err(no_answer())));
                }
                answers
            }
        }
    }

    /// The admissions of `batch` inside `tx`, in order: the outer `Err` is a database failure
    /// (the transaction is lost), an inner one a refusal (nothing of it was written).
    async fn admit_in(&self, tx: &mut Tx, batch: &[Prepared]) -> Result<Vec<Result<Reservation>>> {
        let mut tally = Tally::default();
        for p in batch {
            let counters = Counter::of(p.admission.modality);
            tally.touch(&p.admission.user_id, &p.period, counters);
        }
        let now = batch.iter().map(|p| p.now_ms).max().unwrap_or_default();
        tally.load(tx, self.backend, now).await?;
        tally.load_leases(tx, self.backend).await?;
        let mut answers = Vec::with_capacity(batch.len());
        let mut admitted = Vec::with_capacity(batch.len());
        for p in batch {
            let user = p.admission.user_id.as_str();
            let used = tally
                .committed(user, &p.period)
                .expect("every admission's counters were loaded");
            let Some((output_bound, estimate, deltas)) = decide(p, &used, true) else {
                answers.push(Err(self.refusal(p, &used)?));
                continue;
            };
            tally.adjust(user, &p.period, &deltas);
            let reservation = Reservation {
                id: new_reservation_id()?,
                user_id: p.admission.user_id.clone(),
                period: p.period.clone(),
                estimate,
                output_bound,
            };
            admitted.push(Reserved::new(p, &reservation, &self.instance_id));
            answers.push(Ok(reservation));
        }
        tally.store(tx, self.backend, now).await?;
        insert_reservations(tx, self.backend, &admitted).await?;
        Ok(answers)
    }

    /// The quota error refusing `p` on top of `used`.
    pub(crate) fn refusal(&self, p: &Prepared, used: &[i64; COUNTERS]) -> Result<Error> {
        let plan = self.plan_named(&p.admission.user_id, &p.plan)?;
        Ok(quota_error(plan, &p.period, used, &p.deltas, &p.limits))
    }
}

impl Store {
    /// Grows reservation `reservation` to `to` (no part below what it holds): the difference is
    /// checked against the plan's limits and added to the counters, and the reservation row
    /// updated, in one transaction. Refused with a quota error, changing nothing, when the
    /// difference does not fit.
    async fn extend_reservation(
        &self,
        reservation: Reservation,
        to: Amount,
    ) -> Result<Reservation> {
        let plan_name = self.plan_of(&reservation.user_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::PermissionDenied,
                format!("unknown user `{}`", reservation.user_id),
            )
        })?;
        let plan = self.plan_named(&reservation.user_id, &plan_name)?;
        // Admitted from a lease, its row may still be queued for the writer.
        self.flush_reservations().await;
        let (_writing, mut tx) = self.begin().await?;
        let row = sqlx::query(
            "SELECT user_id, period, modality, requests, tokens, units, cost_nanos
             FROM reservations WHERE id = $1",
        )
        .bind(&reservation.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the reservation to grow is gone (settled or recovered)",
            ));
        };
        let held = crate::settlement::stored_reservation(&row)?;
        let grown = Amount {
            requests: held.amount.requests.max(to.requests),
            tokens: held.amount.tokens.max(to.tokens),
            units: held.amount.units.max(to.units),
            cost: match (held.amount.cost, to.cost) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        };
        let difference = Amount {
            requests: grown.requests - held.amount.requests,
            tokens: grown.tokens - held.amount.tokens,
            units: grown.units - held.amount.units,
            cost: grown.cost.map(|g| {
                Cost::from_nanos(
                    g.nanos()
                        .saturating_sub(held.amount.cost.map_or(0, Cost::nanos)),
                )
            }),
        };
        let deltas = amount_deltas(held.modality, &difference);
        let limits = limits_for(plan, held.modality);
        let mut tally = Tally::default();
        tally.touch(&held.user_id, &held.period, Counter::of(held.modality));
        let now = unix_ms(SystemTime::now());
        tally.load(&mut tx, self.backend, now).await?;
        tally.load_leases(&mut tx, self.backend).await?;
        let used = tally
            .committed(&held.user_id, &held.period)
            .expect("the reservation's counters were loaded");
        if !fits(&used, &deltas, &limits) {
            let refusal = quota_error(plan, &held.period, &used, &deltas, &limits);
            tx.rollback().await.map_err(db_error)?;
            return Err(refusal);
        }
        tally.adjust(&held.user_id, &held.period, &deltas);
        tally.store(&mut tx, self.backend, now).await?;
        sqlx::query(
            "UPDATE reservations SET requests = $2, tokens = $3, units = $4, cost_nanos = $5
             WHERE id = $1",
        )
        .bind(&reservation.id)
        .bind(to_db(grown.requests))
        .bind(to_db(grown.tokens))
        .bind(to_db(grown.units))
        .bind(grown.cost.map(|c| to_db(c.nanos())))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Reservation {
            estimate: grown,
            ..reservation
        })
    }
}

fn no_answer() -> Error {
    Error::new(ErrorKind::Unavailable, "admission produced no answer")
}

/// An admission checked against the plan, ready to be counted.
pub(crate) struct Prepared {
    pub(crate) admission: Admission,
    pub(crate) plan: String,
    /// The output the request left open, to lower when the full default does not fit.
    open: Option<OpenBound>,
    estimate: Amount,
    pub(crate) period: String,
    now_ms: i64,
    pub(crate) deltas: [i64; COUNTERS],
    pub(crate) limits: [i64; COUNTERS],
}

/// A reservation to write: the row [`insert_reservations`] inserts, and the line the journal
/// keeps of an admission from a lease until the row is written.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Reserved {
    /// The reservation's id (named apart from a settlement's `reservation_id`, so the journal
    /// tells its two kinds of line by their fields).
    pub(crate) reservation: String,
    pub(crate) request_id: String,
    pub(crate) user_id: String,
    pub(crate) period: String,
    pub(crate) provider: String,
    pub(crate) model: String,
    #[serde(with = "crate::settlement::modality_name")]
    pub(crate) modality: Modality,
    pub(crate) operation: String,
    pub(crate) requests: u64,
    pub(crate) tokens: u64,
    pub(crate) units: u64,
    pub(crate) cost_nanos: Option<u64>,
    pub(crate) instance_id: String,
    pub(crate) created_at: i64,
    /// What was taken from this instance's lease, by counter (zero for an admission that did
    /// not come from one). Not journaled: a replay lets the dead instance's leases go whole.
    #[serde(skip)]
    pub(crate) leased: [i64; COUNTERS],
}

impl Reserved {
    /// Appends the reservation's journal line (without its newline): what its `Serialize`
    /// writes, written faster (see [`ObjectWriter`](gateway_core::json::ObjectWriter)).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        gateway_core::json::ObjectWriter::new(out)
            .str("reservation", &self.reservation)
            .str("request_id", &self.request_id)
            .str("user_id", &self.user_id)
            .str("period", &self.period)
            .str("provider", &self.provider)
            .str("model", &self.model)
            .str("modality", self.modality.as_str())
            .str("operation", &self.operation)
            .field("requests", &self.requests)?
            .field("tokens", &self.tokens)?
            .field("units", &self.units)?
            .field("cost_nanos", &self.cost_nanos)?
            .str("instance_id", &self.instance_id)
            .field("created_at", &self.created_at)?
            .end();
        Ok(())
    }

    /// The row of `reservation`, admitted for `p` by instance `instance_id`.
    pub(crate) fn new(p: &Prepared, reservation: &Reservation, instance_id: &str) -> Self {
        let a = &p.admission;
        let estimate = reservation.estimate;
        Reserved {
            reservation: reservation.id.clone(),
            request_id: a.request_id.clone(),
            user_id: a.user_id.clone(),
            period: p.period.clone(),
            provider: a.route.provider.to_owned(),
            model: a.route.model.to_string(),
            modality: a.modality,
            operation: a.operation.to_owned(),
            requests: estimate.requests,
            tokens: estimate.tokens,
            units: estimate.units,
            cost_nanos: estimate.cost.map(Cost::nanos),
            instance_id: instance_id.to_owned(),
            created_at: p.now_ms,
            leased: [0; COUNTERS],
        }
    }

    /// What the reservation holds.
    pub(crate) fn amount(&self) -> Amount {
        Amount {
            requests: self.requests,
            tokens: self.tokens,
            units: self.units,
            cost: self.cost_nanos.map(Cost::from_nanos),
        }
    }
}

/// Inserts the reservation rows `reserved`, in a few multi-row statements.
pub(crate) async fn insert_reservations<R: std::borrow::Borrow<Reserved> + Sync>(
    tx: &mut Tx,
    backend: Backend,
    reserved: &[R],
) -> Result<()> {
    for chunk in chunked(reserved) {
        let sql = format!(
            "INSERT INTO reservations ({RESERVATION_COLUMNS}) VALUES {}",
            placeholders(backend, chunk.len(), 14, 1, "")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            let r = r.borrow();
            query = query
                .bind(r.reservation.as_str())
                .bind(r.request_id.as_str())
                .bind(r.user_id.as_str())
                .bind(r.period.as_str())
                .bind(r.provider.as_str())
                .bind(r.model.as_str())
                .bind(r.modality.as_str())
                .bind(r.operation.as_str())
                .bind(to_db(r.requests))
                .bind(to_db(r.tokens))
                .bind(to_db(r.units))
                .bind(r.cost_nanos.map(to_db))
                .bind(r.instance_id.as_str())
                .bind(r.created_at);
        }
        query.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

/// An admission waiting for the admission task, and where its answer goes.
pub(crate) struct PendingAdmission {
    prepared: Prepared,
    reply: tokio::sync::oneshot::Sender<Answer>,
}

/// An admission's answer on its way to its caller. Dropped with a reservation in it (its caller
/// went away while it waited for the batch: before the answer was sent, or after, with the
/// answer still in the channel), the reservation is released at once, by a task of its own,
/// rather than held until recovery charges its estimate.
pub(crate) struct Answer {
    result: Option<Result<Reservation>>,
    admission: Admission,
    store: Store,
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(Ok(reservation)) = self.result.take() {
            release_abandoned(&self.store, reservation, &self.admission);
        }
    }
}

/// Releases `reservation`, made for `admission` and never handed to its caller (gone
/// meanwhile), by a task of its own: settled as an unbillable record ([`abandoned`]) at once,
/// rather than held until recovery charges its estimate.
pub(crate) fn release_abandoned(store: &Store, reservation: Reservation, admission: &Admission) {
    let (store, record) = (store.clone(), abandoned(admission));
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                if let Err(e) = store.settle(reservation, record).await {
                    tracing::warn!(error = %e, "releasing an admission its caller gave up failed; recovery settles it at the estimate");
                }
            });
        }
        Err(_) => tracing::warn!(
            request_id = admission.request_id,
            "an admission its caller gave up is dropped outside a runtime: recovery settles it at the estimate"
        ),
    }
}

/// How many admissions share one transaction at most.
const ADMIT_BATCH: usize = 64;

/// Starts the task that counts admissions: it takes whatever has queued up (up to
/// [`ADMIT_BATCH`]) and admits it in one transaction, in arrival order, so concurrent requests
/// share a commit instead of each waiting for its own, and each user's counters are read and
/// written once per batch however many of its requests it holds. Limits still hold exactly (see
/// the module docs). When idle, an admission is counted at once.
pub(crate) fn spawn_admitter(store: Store) -> mpsc::Sender<PendingAdmission> {
    let (tx, mut rx) = mpsc::channel::<PendingAdmission>(16 * ADMIT_BATCH);
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
            let answers = admitter.admit_batch(&prepared).await;
            for ((reply, p), answer) in replies.into_iter().zip(prepared).zip(answers) {
                // A caller gone meanwhile drops the answer, which releases its reservation.
                let _ = reply.send(Answer {
                    result: Some(answer),
                    admission: p.admission,
                    store: admitter.clone(),
                });
            }
        }
    });
    tx
}

/// The usage of an admission whose caller went away before it was answered: nothing called,
/// nothing billed (the reservation is released), as the gateway records a call its caller
/// dropped before any provider was called.
fn abandoned(admission: &Admission) -> UsageRecord {
    UsageRecord {
        request_id: admission.request_id.clone(),
        user_id: admission.user_id.clone(),
        route: admission.route.clone(),
        modality: admission.modality,
        operation: admission.operation,
        outcome: Outcome::Failed {
            kind: ErrorKind::StreamInterrupted.as_str().to_owned(),
            message: "the caller went away before its admission was answered".to_owned(),
        },
        tokens: TokenUsage::default(),
        units: 0,
        cost: Some(Cost::ZERO),
        pricing_version: String::new(),
        estimated: false,
        billable: false,
        latency: Duration::ZERO,
        time_to_first_token: None,
        retries: 0,
        cached: None,
        attempts: Vec::new(),
        tags: RequestTags::default(),
    }
}

impl Accounting for Store {
    fn admit(&self, admission: Admission) -> BoxFuture<'_, Result<Reservation>> {
        Box::pin(self.admit_request(admission))
    }

    fn extend(&self, reservation: Reservation, to: Amount) -> BoxFuture<'_, Result<Reservation>> {
        Box::pin(self.extend_reservation(reservation, to))
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

    /// Appends the settlement to the journal, when there is one, and queues it for the writer
    /// task, which commits queued settlements in batches: the caller never waits for the usage
    /// row. If the process dies before the batch is written, the next start replays the journal;
    /// without a journal the reservation, still in the database, is recovered at its estimate.
    fn settle(&self, reservation: Reservation, record: UsageRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.pool.is_closed() {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the usage store is closed",
                ));
            }
            let settlement = Settlement::new(&reservation, record);
            let added = match &self.journal {
                Some(journal) => match journal.add(&settlement) {
                    Ok(added) => Some(added),
                    Err(e) => {
                        // Still written to the database; only a kill before that loses it.
                        tracing::warn!(error = %e, "settlement journal: append failed");
                        None
                    }
                },
                None => None,
            };
            let segment = added.as_ref().map(|a| a.segment);
            // Waited for after the settlement is queued (a line is written once added, even if
            // its caller goes away meanwhile: see `Committed`), so that nothing waits between
            // the line and the queue.
            let committed = self
                .journal
                .as_deref()
                .zip(added)
                .map(|(j, a)| j.committed(a));
            let queued = self.queue_settlement(settlement, segment).await;
            if let Some(committed) = committed
                && let Err(e) = committed.await
            {
                // Still written to the database; only a kill before that loses it.
                tracing::warn!(error = %e, "settlement journal: append failed");
            }
            queued
        })
    }
}

impl Store {
    /// Hands `settlement` (journaled in `segment`) to the writer task, or, without one, writes
    /// it here.
    async fn queue_settlement(&self, settlement: Settlement, segment: Option<u64>) -> Result<()> {
        let stopped = || Error::new(ErrorKind::Unavailable, "the usage writer has stopped");
        match &self.settler {
            Some(settler) => {
                match settler.try_send(Queued::Settle(Box::new(settlement), segment)) {
                    Ok(()) => Ok(()),
                    // The writer is behind (the database slow or away): the wait for room is a
                    // task's of its own, so a caller that goes away meanwhile does not drop a
                    // settlement the journal holds (it would stay there, its reservation open,
                    // until the next start).
                    Err(mpsc::error::TrySendError::Full(queued)) => {
                        let settler = settler.clone();
                        let sent = tokio::spawn(async move { settler.send(queued).await.is_ok() });
                        match sent.await {
                            Ok(true) => Ok(()),
                            _ => Err(stopped()),
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(stopped()),
                }
            }
            None => {
                if self
                    .settle_batch(std::slice::from_ref(&settlement))
                    .await
                    .is_some()
                    && let (Some(journal), Some(segment)) = (&self.journal, segment)
                {
                    journal.written(&[segment]);
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gateway_core::RouteId;

    use super::*;

    fn admission(n: u32) -> Admission {
        Admission {
            request_id: format!("req_{n}"),
            user_id: "usr_1".into(),
            route: RouteId::new("gemini", "gemini-2.5-flash"),
            modality: Modality::Text,
            operation: "chat",
            estimate: Amount::new(20, 0, None),
            open_output: None,
            priced: false,
        }
    }

    fn reservation(n: u32) -> Reservation {
        Reservation {
            id: format!("res_{n}"),
            user_id: "usr_1".into(),
            period: "2026-11".into(),
            estimate: Amount::new(20, 0, None),
            output_bound: None,
        }
    }

    /// A settlement that waits for room in the writer's queue (the database slow or away) is
    /// queued even when its caller stops waiting: the caller's future only waits for a task
    /// that sends it.
    #[tokio::test]
    async fn a_settlement_waiting_for_room_is_queued_when_its_caller_goes_away() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let (queue, mut writer) = mpsc::channel(1);
        let store = Store {
            settler: Some(queue),
            ..store
        };
        let settle = |n| store.settle(reservation(n), abandoned(&admission(n)));
        settle(1).await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(50), settle(2)).await;
        assert!(gave_up.is_err(), "the queue was full: the second waits");
        for n in [1, 2] {
            match tokio::time::timeout(Duration::from_secs(5), writer.recv()).await {
                Ok(Some(Queued::Settle(s, _))) => assert_eq!(s.request_id, format!("req_{n}")),
                _ => panic!("settlement {n} was not queued"),
            }
        }
    }
}
