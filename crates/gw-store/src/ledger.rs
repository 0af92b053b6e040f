//! Admission from leases: the in-memory ledger that lets an instance with a journal admit
//! without waiting for the database (the escrow pattern).
//!
//! Per (user, period), an instance holds a lease: a part of each limited counter's remaining
//! allowance, granted in one transaction that locks the counters and reads every instance's leases
//! of them (`leases` table), so the database never grants more than the limit across leases.
//! Admission checks the request's estimate against what the lease holds, in memory, and takes it;
//! the reservation is queued for the writer and goes to the journal (in one batch with those its
//! worker has ready at the same moment, see `journal.rs`) before the upstream call. The writer
//! inserts its row (or, when its settlement is in the same batch, only settles it) and moves its
//! estimate from the lease to the counters, off the request path. An admission waits for the
//! database only when its lease runs short: for a top-up (one per (user, period) at a time).
//!
//! Leases are sized to need: a top-up takes what the request lacks or, when more, at most a
//! quarter of what is left and [`TOP_UP_REQUESTS`] requests' worth (more for a user whose
//! lease would not last [`LEASE_SPAN`] at its pace), so grants shrink as a user nears the
//! limit; a lease half used is topped up in the background, ahead of need. A lease is
//! given back when unused for a while ([`IDLE`] by default), when the user's plan changes, and at
//! close. An instance that cannot admit because other instances' leases hold what is left
//! records a want (`lease_wants`); every instance looks for wants every [`WANT_POLL`] and gives
//! its leases of a wanted (user, period) back, and while a want is fresh top-ups take only what
//! a request lacks, so the last units are not stranded on one instance while another refuses.
//! The leases of an instance that stops beating its heartbeat are deleted by recovery; its
//! reservations are recovered at their estimate, those it had not written yet from its journal
//! by the next process that takes the journal over.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use gateway_core::{Admission, Error, ErrorKind, Reservation, Result};
use sqlx::AssertSqlSafe;

use crate::accounting::{Prepared, Reserved, decide, new_reservation_id, release_abandoned};
use crate::counters::{COUNTERS, Counter};
use crate::db::{Tx, chunked, db_error, placeholders};
use crate::settlement::{Batch, Queued, ms};
use crate::tally::{Tally, summed};
use crate::time::now_ms;
use crate::{Backend, Store};

/// How long a lease may go unused before it is given back. Long enough that a user who comes
/// back within minutes (a chat, an agent between steps) still has it: a request whose lease is
/// empty waits for a top-up, which on a busy SQLite store waits for the usage writer's batch in
/// progress (by hand, under the bench's load: such a user's next request 40 s later took p50 30
/// / p90 82 ms with 30 s here, 4 / 7 ms with five minutes, as a warm user's). Another instance
/// that needs what it holds asks for it meanwhile (see [`Store::want`]).
pub(crate) const IDLE: Duration = Duration::from_secs(300);

/// How many requests' worth a top-up takes at most, at first: doubled while the lease lasts
/// less than [`LEASE_SPAN`] (up to [`MAX_TOP_UP_REQUESTS`]), halved back (not below this) when
/// one lasts more than eight times that.
const TOP_UP_REQUESTS: i64 = 1024;

/// The most requests' worth a top-up of a busy user's lease takes.
const MAX_TOP_UP_REQUESTS: i64 = 64 * TOP_UP_REQUESTS;

/// How long a lease should last at least at its user's pace. A lease half used is topped up
/// ahead of need, and the top-up waits for the database (on SQLite, for the usage writer's
/// batch in progress, which takes up to a few hundred milliseconds under load): a lease that
/// lasts a second keeps half a second in hand. With a fixed thousand requests' worth, a user at
/// 5,000 requests a second had less than 0.1 s in hand and waited whenever a batch took longer
/// (by hand, the bench's hf load at c64 with 1,000 users on SQLite, seven runs each: p99 median
/// 13.3 ms and 14,644 req/s with a fixed thousand, 9.9 ms and 16,402 req/s growing).
const LEASE_SPAN: Duration = Duration::from_secs(1);

/// How often an instance looks for leases other instances want, and a waiting admission tries
/// again.
pub(crate) const WANT_POLL: Duration = Duration::from_millis(100);

/// How long an admission waits for other instances to give their leases back before it is
/// refused: several of their polls, and their writers' commits.
const WANT_PATIENCE: Duration = Duration::from_secs(2);

/// How long a want counts.
const WANT_FRESH: Duration = Duration::from_secs(5);

/// What this instance holds of its users' allowances.
pub(crate) struct Ledger {
    /// By user, then period (nested so lookups by `&str` need no allocation).
    grants: Mutex<HashMap<String, HashMap<String, Arc<Grant>>>>,
    /// How long a lease may go unused before it is given back.
    idle: Duration,
    /// Top-ups waiting for the next transaction (see [`Store::top_up`]).
    top_ups: Mutex<TopUpQueue>,
}

/// Top-ups waiting to be made together, and whether a task is making them.
#[derive(Default)]
struct TopUpQueue {
    waiting: Vec<WaitingTopUp>,
    running: bool,
}

/// A top-up asked for, and where its answer goes.
struct WaitingTopUp {
    grant: Arc<Grant>,
    need: Need,
    patient: bool,
    answer: tokio::sync::oneshot::Sender<Result<TopUp>>,
}

/// The lease of one (user, period).
pub(crate) struct Grant {
    held: Mutex<Held>,
    /// Taken by the admission that tops the lease up, so concurrent ones wait for it instead
    /// of each topping up.
    topping: tokio::sync::Mutex<()>,
    /// A top-up ahead of need is under way.
    refilling: AtomicBool,
}

struct Held {
    /// What is left of the lease, by counter: granted, less what admissions took.
    amounts: [i64; COUNTERS],
    /// Below these, the lease is topped up in the background, ahead of need.
    low: [i64; COUNTERS],
    last_used: Instant,
    /// Given back (idle, plan changed): a new admission takes a new grant.
    gone: bool,
    /// How many requests' worth the next top-up takes at most (see [`LEASE_SPAN`]).
    per_top_up: i64,
    /// When the lease was last topped up.
    topped_at: Option<Instant>,
}

/// A lease, or part of one, to give back to the database.
#[derive(Debug)]
pub(crate) struct Release {
    pub(crate) user_id: String,
    pub(crate) period: String,
    pub(crate) amounts: [i64; COUNTERS],
}

impl Ledger {
    pub(crate) fn new(idle: Duration) -> Self {
        Self {
            grants: Mutex::default(),
            idle,
            top_ups: Mutex::default(),
        }
    }

    /// The lease of (`user_id`, `period`), empty if new.
    fn grant(&self, user_id: &str, period: &str) -> Arc<Grant> {
        let mut grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(grant) = grants.get(user_id).and_then(|p| p.get(period)) {
            return grant.clone();
        }
        let grant = Arc::new(Grant {
            held: Mutex::new(Held {
                amounts: [0; COUNTERS],
                low: [0; COUNTERS],
                last_used: Instant::now(),
                gone: false,
                per_top_up: TOP_UP_REQUESTS,
                topped_at: None,
            }),
            topping: tokio::sync::Mutex::new(()),
            refilling: AtomicBool::new(false),
        });
        grants
            .entry(user_id.to_owned())
            .or_default()
            .insert(period.to_owned(), grant.clone());
        grant
    }

    /// Takes out the leases `pick` selects (by user, period and last use), marking them gone,
    /// and returns what they held.
    fn take_out(&self, pick: impl Fn(&str, &str, Instant) -> bool) -> Vec<Release> {
        let mut grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        grants.retain(|user, periods| {
            periods.retain(|period, grant| {
                let mut held = grant.held.lock().unwrap_or_else(PoisonError::into_inner);
                if !pick(user, period, held.last_used) {
                    return true;
                }
                held.gone = true;
                if held.amounts.iter().any(|&a| a != 0) {
                    out.push(Release {
                        user_id: user.clone(),
                        period: period.clone(),
                        amounts: std::mem::take(&mut held.amounts),
                    });
                }
                false
            });
            !periods.is_empty()
        });
        out
    }

    fn is_empty(&self) -> bool {
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Takes out the leases unused for longer than they may be.
    pub(crate) fn idle(&self) -> Vec<Release> {
        self.take_out(|_, _, last_used| last_used.elapsed() >= self.idle)
    }

    /// Takes out the leases of `user_id` (its plan changed: its limits may have).
    pub(crate) fn of_user(&self, user_id: &str) -> Vec<Release> {
        self.take_out(|user, _, _| user == user_id)
    }

    /// Takes out every lease.
    pub(crate) fn all(&self) -> Vec<Release> {
        self.take_out(|_, _, _| true)
    }
}

impl Grant {
    /// Admits `p` from what the lease holds: its full estimate, or, when `lower`, a lowered
    /// output bound. `Err(gone)` when the lease was given back meanwhile; `Ok(None)` when it
    /// holds too little.
    fn take(&self, p: &Prepared, lower: bool) -> std::result::Result<Option<Admitted>, Gone> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.gone {
            return Err(Gone);
        }
        held.last_used = Instant::now();
        let used = as_used(&held.amounts, &p.limits);
        let Some((output_bound, estimate, deltas)) = decide(p, &used, lower) else {
            return Ok(None);
        };
        let mut leased = [0; COUNTERS];
        let mut low = false;
        for i in 0..COUNTERS {
            if p.limits[i] >= 0 {
                leased[i] = deltas[i];
                held.amounts[i] -= deltas[i];
                low |= held.amounts[i] < held.low[i];
            }
        }
        let refill = low && !self.refilling.swap(true, Ordering::AcqRel);
        Ok(Some(Admitted {
            output_bound,
            estimate,
            leased,
            refill,
        }))
    }

    /// Gives `leased` back to the lease (an admission that could not be journaled).
    fn put_back(&self, leased: &[i64; COUNTERS]) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for (h, l) in held.amounts.iter_mut().zip(leased) {
            *h += l;
        }
    }
}

/// The lease as counters a limit check reads: a limited counter is "used" up to what the lease
/// does not hold, so an estimate fits exactly when the lease covers it. Unlimited counters are
/// not leased, and read as zero.
fn as_used(held: &[i64; COUNTERS], limits: &[i64; COUNTERS]) -> [i64; COUNTERS] {
    std::array::from_fn(|i| {
        if limits[i] < 0 {
            0
        } else {
            limits[i].saturating_sub(held[i].max(0))
        }
    })
}

/// The lease was given back while an admission held it.
struct Gone;

/// Adds `granted`, taken from the database for `need`, to `grant`; when the lease was given
/// back meanwhile, what was granted is to be given back too.
fn topped_up(grant: &Grant, need: &Need, granted: [i64; COUNTERS], stranded: bool) -> TopUp {
    let mut held = grant.held.lock().unwrap_or_else(PoisonError::into_inner);
    if granted.iter().all(|&g| g == 0) {
        return TopUp {
            release: None,
            stranded,
        };
    }
    if held.gone {
        return TopUp {
            release: Some(Release {
                user_id: need.user_id.clone(),
                period: need.period.clone(),
                amounts: granted,
            }),
            stranded,
        };
    }
    let Held { amounts, low, .. } = &mut *held;
    for ((amount, low), g) in amounts.iter_mut().zip(low.iter_mut()).zip(granted) {
        *amount += g;
        // Refilled ahead of need once half of this is used (see `Store::refill`).
        if g > 0 {
            *low = g / 2;
        }
    }
    // The last top-up lasted less than it should at this user's pace: the next takes twice as
    // much; much longer: half as much.
    let now = Instant::now();
    if let Some(last) = held.topped_at {
        let lasted = now.duration_since(last);
        if lasted < LEASE_SPAN {
            held.per_top_up = (held.per_top_up * 2).min(MAX_TOP_UP_REQUESTS);
        } else if lasted > 8 * LEASE_SPAN {
            held.per_top_up = (held.per_top_up / 2).max(TOP_UP_REQUESTS);
        }
    }
    held.topped_at = Some(now);
    TopUp {
        release: None,
        stranded,
    }
}

/// What an admission took from a lease, put back when dropped before its reservation is
/// queued for the writer.
struct Taken<'a> {
    grant: &'a Grant,
    leased: [i64; COUNTERS],
    queued: bool,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if !self.queued {
            self.grant.put_back(&self.leased);
        }
    }
}

/// A reservation queued for the writer and not handed to its caller yet: released (see
/// [`release_abandoned`]) when dropped with it, its caller gone or its journal line not
/// written.
struct Unclaimed<'a> {
    store: &'a Store,
    admission: &'a Admission,
    reservation: Option<Reservation>,
}

impl Drop for Unclaimed<'_> {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            release_abandoned(self.store, reservation, self.admission);
        }
    }
}

/// What a top-up did.
struct TopUp {
    /// What to give back: the lease was given back while it was being topped up.
    release: Option<Release>,
    /// The request still lacks part of what it needs, and other instances' leases hold some.
    stranded: bool,
}

/// What an admission from a lease took.
struct Admitted {
    output_bound: Option<u64>,
    estimate: gateway_core::Amount,
    leased: [i64; COUNTERS],
    /// The lease ran low: this admission starts its top-up ahead of need.
    refill: bool,
}

/// What a top-up is for: the counters a request of `modality` adds to, how much, under which
/// limits.
#[derive(Clone)]
struct Need {
    user_id: String,
    period: String,
    modality: gateway_core::Modality,
    deltas: [i64; COUNTERS],
    limits: [i64; COUNTERS],
}

impl Need {
    fn of(p: &Prepared) -> Self {
        Need {
            user_id: p.admission.user_id.clone(),
            period: p.period.clone(),
            modality: p.admission.modality,
            deltas: p.deltas,
            limits: p.limits,
        }
    }
}

impl Store {
    /// Admits `prepared` from this instance's lease of the user's allowance, topping the lease
    /// up from the database when it holds too little.
    pub(crate) async fn admit_leased(
        &self,
        ledger: &Ledger,
        prepared: Prepared,
    ) -> Result<Reservation> {
        let p = &prepared;
        let user = p.admission.user_id.as_str();
        let mut waiting: Option<Instant> = None;
        loop {
            let grant = ledger.grant(user, &p.period);
            match grant.take(p, false) {
                Err(Gone) => continue,
                Ok(Some(admitted)) => return self.admitted(&grant, p, admitted, waiting).await,
                Ok(None) => {}
            }
            let _topping = grant.topping.lock().await;
            // Another admission may have topped it up meanwhile.
            match grant.take(p, false) {
                Err(Gone) => continue,
                Ok(Some(admitted)) => return self.admitted(&grant, p, admitted, waiting).await,
                Ok(None) => {}
            }
            let patient = waiting.is_none_or(|t| t.elapsed() < WANT_PATIENCE);
            let topped = self.top_up(grant.clone(), Need::of(p), patient).await?;
            if let Some(release) = topped.release {
                // Given back while it was being topped up: what was granted goes back too.
                self.release(release).await;
                continue;
            }
            // While what this request needs is held by other instances' leases, it is not
            // lowered to what this one holds: those are asked for it first.
            match grant.take(p, !(topped.stranded && patient)) {
                Err(Gone) => continue,
                Ok(Some(admitted)) => return self.admitted(&grant, p, admitted, waiting).await,
                Ok(None) => {}
            }
            // Ask them to give it back and wait, rather than refuse while it is there.
            if topped.stranded && patient {
                waiting.get_or_insert_with(Instant::now);
                self.want(user, &p.period, true).await;
                tokio::time::sleep(WANT_POLL).await;
                continue;
            }
            if waiting.is_some() {
                self.withdraw_want(user, &p.period);
            }
            let held = grant
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .amounts;
            return Err(self.refusal(p, &as_used(&held, &p.limits))?);
        }
    }

    /// Reserves `admitted`, withdrawing this instance's want when it waited. Nothing here
    /// waits before [`Store::reserve`] guards what was taken: a caller that drops the admission
    /// at its only wait gets it back into the lease (see [`Store::withdraw_want`]).
    async fn admitted(
        &self,
        grant: &Arc<Grant>,
        p: &Prepared,
        admitted: Admitted,
        waited: Option<Instant>,
    ) -> Result<Reservation> {
        if waited.is_some() {
            self.withdraw_want(&p.admission.user_id, &p.period);
        }
        if admitted.refill {
            self.refill(grant.clone(), Need::of(p));
        }
        self.reserve(grant, p, admitted).await
    }

    /// Tops `grant` up in the background, so the admissions after this one find it full. An
    /// admission that runs short meanwhile waits for this top-up rather than starting another.
    fn refill(&self, grant: Arc<Grant>, need: Need) {
        let store = self.clone();
        tokio::spawn(async move {
            let topped = {
                let _topping = grant.topping.lock().await;
                // Patient: what other instances wait for is not taken ahead of need.
                store.top_up(grant.clone(), need, true).await
            };
            grant.refilling.store(false, Ordering::Release);
            match topped {
                Ok(TopUp {
                    release: Some(release),
                    ..
                }) => store.release(release).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "topping a lease up ahead of need failed; the next admission that runs short tries again")
                }
            }
        });
    }

    /// Records (or withdraws) that this instance wants the other instances' leases of
    /// (`user_id`, `period`) given back. Best effort: a want that cannot be written only makes
    /// the admission wait its patience out and then take what there is; one that cannot be
    /// withdrawn stops counting after [`WANT_FRESH`]. Neither fails the admission: answering
    /// `Unavailable` to a request its lease admitted (or the quota refused) would misstate why,
    /// and one admitted would leave what it took from the lease taken by nobody.
    async fn want(&self, user_id: &str, period: &str, wanted: bool) {
        if let Err(e) = self.write_want(user_id, period, wanted).await {
            let what = if wanted { "recorded" } else { "withdrawn" };
            tracing::warn!(error = %e, "a want of other instances' leases could not be {what}; the admission goes on without it");
        }
    }

    /// Withdraws this instance's want of (`user_id`, `period`) by a task of its own: the
    /// admission's answer does not wait for the database write, nor is the write lost to a
    /// caller that drops the admission.
    fn withdraw_want(&self, user_id: &str, period: &str) {
        let (store, user, period) = (self.clone(), user_id.to_owned(), period.to_owned());
        tokio::spawn(async move { store.want(&user, &period, false).await });
    }

    async fn write_want(&self, user_id: &str, period: &str, wanted: bool) -> Result<()> {
        let (_writing, mut tx) = self.begin().await?;
        let query = if wanted {
            sqlx::query(
                "INSERT INTO lease_wants (user_id, period, instance_id, wanted_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, period, instance_id) DO UPDATE
                 SET wanted_at = excluded.wanted_at",
            )
            .bind(user_id)
            .bind(period)
            .bind(&*self.instance_id)
            .bind(now_ms())
        } else {
            sqlx::query(
                "DELETE FROM lease_wants WHERE user_id = $1 AND period = $2 AND instance_id = $3",
            )
            .bind(user_id)
            .bind(period)
            .bind(&*self.instance_id)
        };
        query.execute(&mut *tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    /// Gives back the leases other instances want (see [`Store::want`]); the ledger task runs
    /// it every [`WANT_POLL`].
    pub(crate) async fn release_wanted(&self) -> Result<()> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        if ledger.is_empty() {
            return Ok(());
        }
        let wanted: Vec<(String, String)> = sqlx::query_as(
            "SELECT user_id, period FROM lease_wants WHERE instance_id <> $1 AND wanted_at >= $2",
        )
        .bind(&*self.instance_id)
        .bind(now_ms().saturating_sub(ms(WANT_FRESH)))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        for (user, period) in wanted {
            for release in ledger.take_out(|u, p, _| u == user.as_str() && p == period.as_str()) {
                self.release(release).await;
            }
        }
        Ok(())
    }

    /// Journals and queues the reservation `admitted` for `p`; on a journal failure the lease
    /// gets it back and the admission fails (an unjournaled reservation could be lost to a
    /// kill with its provider call made).
    async fn reserve(
        &self,
        grant: &Grant,
        p: &Prepared,
        admitted: Admitted,
    ) -> Result<Reservation> {
        // What was taken goes back to the lease unless the reservation is queued: on an error,
        // and when the caller drops the admission while it waits for room in the writer's queue.
        let mut taken = Taken {
            grant,
            leased: admitted.leased,
            queued: false,
        };
        let settler = self.settler.as_ref().expect("a ledger comes with a writer");
        // Room first, so that nothing waits once the reservation is journaled: one journaled
        // and never queued would be recovered, and charged, by the next start.
        let room = settler
            .reserve()
            .await
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the usage writer has stopped"))?;
        let reservation = Reservation {
            id: new_reservation_id()?,
            user_id: p.admission.user_id.clone(),
            period: p.period.clone(),
            estimate: admitted.estimate,
            output_bound: admitted.output_bound,
        };
        let mut reserved = Reserved::new(p, &reservation, &self.instance_id);
        reserved.leased = admitted.leased;
        let journal = self
            .journal
            .as_ref()
            .expect("a ledger comes with a journal");
        let refused = |e: Error| {
            tracing::error!(error = %e, "settlement journal: a reservation could not be written; the request is refused");
            Error::new(
                ErrorKind::Unavailable,
                "the usage journal cannot be written",
            )
        };
        let added = journal.add_reserved(&reserved).map_err(refused)?;
        let segment = added.segment;
        // Queued before the batch its line is in is written (the one wait here): from then on
        // the reservation is released, not put back, if its caller goes away or the line
        // cannot be written; and the line is written either way (see `Committed`).
        let committed = journal.committed(added);
        room.send(Queued::Reserve(Box::new(reserved), Some(segment)));
        taken.queued = true;
        let mut unclaimed = Unclaimed {
            store: self,
            admission: &p.admission,
            reservation: Some(reservation),
        };
        committed.await.map_err(refused)?;
        Ok(unclaimed
            .reservation
            .take()
            .expect("taken only here or when dropped"))
    }

    /// Tops the lease of `need`'s (user, period) up: for each limited counter the request adds
    /// to, what the lease lacks for it or, when more, a share of what is left (a quarter, at
    /// most the lease's requests' worth, see [`LEASE_SPAN`]; only what it lacks while another
    /// instance wants leases of it), never past what the counter and every lease of it leave
    /// under the limit.
    /// When that cannot cover the request and other instances hold leases of it, takes nothing
    /// while `patient` (the admission waits for them), and what there is otherwise.
    ///
    /// Top-ups are made together: the one task that makes them (started by the first one asked
    /// for while none runs) waits for the write lock, then takes every top-up asked for by then
    /// into one transaction. On SQLite the lock is held by the usage writer's batch about half
    /// the time under load, and each top-up was a transaction of its own behind it: when many
    /// users' leases were empty at once (a restart, leases given back after being idle), their
    /// first requests queued behind a thousand transactions one at a time, seconds in all.
    async fn top_up(&self, grant: Arc<Grant>, need: Need, patient: bool) -> Result<TopUp> {
        let ledger = self.ledger.as_ref().expect("a top-up comes from a ledger");
        let (answer, answered) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = ledger
                .top_ups
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(WaitingTopUp {
                grant,
                need,
                patient,
                answer,
            });
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().make_top_ups());
        }
        answered.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Unavailable,
                "the lease top-up was cut short (the store is closing)",
            ))
        })
    }

    /// Makes the waiting top-ups, a transaction for all those waiting once it has the write
    /// lock, until none is left.
    async fn make_top_ups(self) {
        let ledger = self.ledger.clone().expect("a top-up comes from a ledger");
        // Dropped before it is done (a runtime shutting down): the next top-up asked for
        // starts a task again, and those waiting are answered (their senders dropped).
        struct Running {
            ledger: Arc<Ledger>,
            done: bool,
        }
        impl Drop for Running {
            fn drop(&mut self) {
                if !self.done {
                    let mut queue = self
                        .ledger
                        .top_ups
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    queue.running = false;
                    queue.waiting.clear();
                }
            }
        }
        let mut running = Running {
            ledger: ledger.clone(),
            done: false,
        };
        loop {
            {
                let mut queue = ledger
                    .top_ups
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.running = false;
                    running.done = true;
                    return;
                }
            }
            // What is asked for while this waits for the lock joins the transaction.
            let began = self.begin().await;
            let waiting = std::mem::take(
                &mut ledger
                    .top_ups
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .waiting,
            );
            let asked = Instant::now();
            let made = match began {
                Ok((_writing, mut tx)) => match self.top_ups_in(&mut tx, &waiting).await {
                    Ok(granted) => tx.commit().await.map_err(db_error).map(|()| granted),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            tracing::debug!(
                top_ups = waiting.len(),
                elapsed_us = asked.elapsed().as_micros() as u64,
                "leases topped up"
            );
            match made {
                Ok(granted) => {
                    for (w, (granted, stranded)) in waiting.into_iter().zip(granted) {
                        let topped = topped_up(&w.grant, &w.need, granted, stranded);
                        let _ = w.answer.send(Ok(topped));
                    }
                }
                Err(e) => {
                    for w in waiting {
                        let _ = w
                            .answer
                            .send(Err(Error::new(e.kind().clone(), e.message())));
                    }
                }
            }
        }
    }

    /// Decides the top-ups of `waiting` inside `tx` and takes them from the database: what each
    /// is granted (all zero when nothing is taken), and whether it is stranded.
    async fn top_ups_in(
        &self,
        tx: &mut Tx,
        waiting: &[WaitingTopUp],
    ) -> Result<Vec<([i64; COUNTERS], bool)>> {
        let now = now_ms();
        let mut tally = Tally::default();
        for w in waiting {
            tally.touch(
                &w.need.user_id,
                &w.need.period,
                Counter::of(w.need.modality),
            );
        }
        tally.load(tx, self.backend, now).await?;
        tally.load_leases(tx, self.backend).await?;
        // While another instance waits for leases of a (user, period), take only what a
        // request lacks.
        let wanted: HashSet<(String, String)> = sqlx::query_as(
            "SELECT user_id, period FROM lease_wants WHERE instance_id <> $1 AND wanted_at >= $2",
        )
        .bind(&*self.instance_id)
        .bind(now.saturating_sub(ms(WANT_FRESH)))
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
        let mut answers = Vec::with_capacity(waiting.len());
        let mut changes: Vec<(&str, &str, [i64; COUNTERS])> = Vec::new();
        for w in waiting {
            let need = &w.need;
            let (user, period) = (need.user_id.as_str(), need.period.as_str());
            let mut committed = tally
                .committed(user, period)
                .expect("the top-up's counters were loaded");
            // A (user, period) asked for twice (a lease given back while topped up, and its
            // successor) sees what the first was granted.
            for (u, p, granted) in &changes {
                if *u == user && *p == period {
                    for (c, g) in committed.iter_mut().zip(granted) {
                        *c = c.saturating_add(*g);
                    }
                }
            }
            let (held, per_top_up) = {
                let held = w.grant.held.lock().unwrap_or_else(PoisonError::into_inner);
                (held.amounts, held.per_top_up)
            };
            let is_wanted = wanted.contains(&(need.user_id.clone(), need.period.clone()));
            let mut granted = [0i64; COUNTERS];
            let mut short = false;
            for i in 0..COUNTERS {
                if need.limits[i] < 0 || need.deltas[i] <= 0 {
                    continue;
                }
                let free = need.limits[i].saturating_sub(committed[i]).max(0);
                let lacking = need.deltas[i].saturating_sub(held[i]).max(0);
                let share = if is_wanted {
                    0
                } else {
                    (free / 4).min(need.deltas[i].saturating_mul(per_top_up))
                };
                granted[i] = free.min(lacking.max(share));
                short |= granted[i] < lacking;
            }
            // Short of what the request needs: is the rest held by other instances?
            let stranded = short && {
                let others: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) FROM leases
                     WHERE user_id = $1 AND period = $2 AND instance_id <> $3 AND held > 0",
                )
                .bind(user)
                .bind(period)
                .bind(&*self.instance_id)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_error)?;
                others > 0
            };
            // While waiting for other instances' leases, take nothing that does not cover the
            // request: a part held here would be stranded for them in turn.
            if granted.iter().all(|&g| g == 0) || (stranded && w.patient) {
                answers.push(([0; COUNTERS], stranded));
                continue;
            }
            changes.push((user, period, granted));
            answers.push((granted, stranded));
        }
        change_leases(tx, self.backend, &self.instance_id, &changes, now).await?;
        Ok(answers)
    }

    /// Waits until the reservations this process admitted from leases so far are in the
    /// database, for a caller about to settle one in a transaction of its own (a job's end).
    pub(crate) async fn flush_reservations(&self) {
        if self.ledger.is_some() {
            self.flush().await;
        }
    }

    /// Queues `release` for the writer, after the reservations taken from the lease before it.
    pub(crate) async fn release(&self, release: Release) {
        if let Some(settler) = &self.settler {
            let _ = settler.send(Queued::Release(Box::new(release))).await;
        }
    }

    /// Gives back the leases unused for their idle time; the ledger task runs it every
    /// [`WANT_POLL`].
    pub(crate) async fn release_idle(&self) {
        let Some(ledger) = &self.ledger else { return };
        for release in ledger.idle() {
            self.release(release).await;
        }
    }

    /// Gives back `user_id`'s leases (its plan changed), or everyone's.
    pub(crate) async fn release_user(&self, user_id: Option<&str>) {
        let Some(ledger) = &self.ledger else { return };
        let releases = match user_id {
            Some(user) => ledger.of_user(user),
            None => ledger.all(),
        };
        for release in releases {
            self.release(release).await;
        }
    }
}

/// Adds each `(user, period, amounts)` of `changes` to what instance `instance_id` holds of
/// those counters (negative: taken or given back), in a few statements.
pub(crate) async fn change_leases(
    tx: &mut Tx,
    backend: Backend,
    instance_id: &str,
    changes: &[(&str, &str, [i64; COUNTERS])],
    now: i64,
) -> Result<()> {
    // Summed per row, in the counters' order, so two writers never wait on each other in a
    // cycle.
    let rows = summed(changes);
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in chunked(&rows) {
        let sql = format!(
            "INSERT INTO leases (instance_id, user_id, period, counter, held, updated_at) VALUES {}
             ON CONFLICT (instance_id, user_id, period, counter) DO UPDATE
             SET held = leases.held + excluded.held, updated_at = excluded.updated_at",
            placeholders(backend, chunk.len(), 6, 1, "")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((user, period, counter), amount) in chunk {
            query = query
                .bind(instance_id)
                .bind(*user)
                .bind(*period)
                .bind(*counter)
                .bind(*amount)
                .bind(now);
        }
        query.execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

/// Deletes the rows of instance `instance_id`'s leases of `released` that hold nothing any
/// more (a lease used up but not given back keeps its row, to be topped up).
pub(crate) async fn drop_empty_leases(
    tx: &mut Tx,
    backend: Backend,
    instance_id: &str,
    released: &[Release],
) -> Result<()> {
    if released.is_empty() {
        return Ok(());
    }
    let pairs = placeholders(backend, released.len(), 2, 2, "");
    let first = match backend {
        Backend::Sqlite => "?",
        Backend::Postgres => "$1",
    };
    let sql = format!(
        "DELETE FROM leases WHERE instance_id = {first} AND held <= 0
         AND (user_id, period) IN (VALUES {pairs})"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(instance_id);
    for r in released {
        query = query.bind(r.user_id.as_str()).bind(r.period.as_str());
    }
    query.execute(&mut **tx).await.map_err(db_error)?;
    Ok(())
}

impl Store {
    /// Writes the reservations an earlier (dead) process journaled but the database lacks:
    /// neither a reservation row nor a usage row has them. They are counted without a limit
    /// check (they were admitted; their provider calls may have been made), and their
    /// settlements, replayed next, or recovery then settle them. Returns how many were written.
    pub(crate) async fn replay_reserved(&self, reserved: &[Reserved]) -> Result<usize> {
        let Some(oldest) = reserved.iter().map(|r| r.created_at).min() else {
            return Ok(0);
        };
        let mut known: HashSet<String> = HashSet::new();
        for chunk in reserved.chunks(256) {
            let list = placeholders(self.backend, 1, chunk.len(), 1, "");
            let sql = format!("SELECT id FROM reservations WHERE id IN {list}");
            let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
            for r in chunk {
                query = query.bind(r.reservation.as_str());
            }
            known.extend(query.fetch_all(&self.pool).await.map_err(db_error)?);
        }
        // A usage row is written after its reservation was made: only rows since the oldest
        // line (less a minute for clocks) can hold these ids. They are read in one pass over
        // that range (by its time index), not looked up by id: the log has no index on
        // `reservation_id` (it would cost every request's insert), so a look-up per chunk of
        // ids scanned the whole range again, and a replay took time in the square of the
        // journal's length (12 to 67 s for a 64 MB journal of 69,000 requests, BENCHMARKS.md).
        let journaled: HashSet<&str> = reserved.iter().map(|r| r.reservation.as_str()).collect();
        let mut rows = sqlx::query_scalar::<_, String>(
            "SELECT reservation_id FROM usage_log
             WHERE created_at >= $1 AND reservation_id IS NOT NULL",
        )
        .bind(oldest.saturating_sub(60_000))
        .fetch(&self.pool);
        while let Some(id) = rows.try_next().await.map_err(db_error)? {
            if journaled.contains(id.as_str()) {
                known.insert(id);
            }
        }
        // Gives its connection back before the write below (an in-memory database has one).
        drop(rows);
        let mut missing: Vec<Reserved> = Vec::new();
        for r in reserved {
            if known.insert(r.reservation.clone()) {
                let mut r = r.clone();
                // The dead instance's leases are freed whole (see `Store::recover_dead`).
                r.leased = [0; COUNTERS];
                missing.push(r);
            }
        }
        let written = missing.len();
        let batch = Batch {
            reserved: &missing,
            ..Batch::default()
        };
        match self.write_batch(batch).await {
            Some(_) => Ok(written),
            None => Err(Error::new(
                ErrorKind::Unavailable,
                "the journal's reservations could not be written",
            )),
        }
    }
}
