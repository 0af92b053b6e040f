//! Storage for `llm-gateway`: users and their gateway keys, subscription plans enforced before
//! every provider call, and exact usage accounting, on SQLite or PostgreSQL.
//!
//! A [`Store`] implements [`gateway_core::Accounting`]: [`Accounting::admit`] checks a request
//! against the caller's [`Plan`] and reserves its estimate in one transaction (the user's
//! [`Counters`] for the period are locked, checked and written back, together with those of the
//! other admissions queued meanwhile), so concurrent requests, even of several processes on one
//! database, can never overshoot a limit; [`Accounting::settle`] replaces the reservation with
//! what the call used, writes one usage-log row and upserts the per-period summary, in batches
//! written by a background task (so no response waits for its usage row; [`Store::flush`] waits
//! for them). Reservations live in the database: if a gateway process dies before settling,
//! another one settles them at their estimate ([`Store::recover_stale`], run by
//! [`Store::spawn_maintenance`]); a settlement that still arrives afterwards (the process was
//! only slow or cut off) replaces that estimate with what the request used, so every admitted
//! request ends with exactly one usage-log row.
//!
//! A request answered from the gateway's response cache is settled the same way, its record's
//! [`cached`](gateway_core::UsageRecord::cached) set: its usage-log row says whether the hit was
//! exact or semantic and what the cached answer had cost when it was made, and the summary and
//! the log totals count hits and add up what they saved ([`SummaryRow::cost_saved`]).
//!
//! Video jobs live here too ([`Store::create_video_job`]): a job outlives the process that
//! submitted it, owns its reservation (recovery leaves it alone) and is settled exactly once,
//! when it ends, by whichever replica sees the end first ([`Store::finish_video_job`]).
//!
//! Fine-tuning jobs are kept the same way ([`Store::create_fine_tuning_job`],
//! [`Store::finish_fine_tuning_job`]), with their events and the files they train on and produce
//! ([`Store::create_file`]).
//!
//! Each [`Modality`](gateway_core::Modality) has a request and a volume [`Counter`], plus one
//! for money; the database keeps one row per counter, so a new modality needs no migration.
//!
//! For an open-ended text request (no `max_tokens`:
//! [`Admission::open_output`](gateway_core::Admission::open_output) is set),
//! admission adds the plan's `default_max_tokens` to the estimate, once per answer (`n`),
//! priced at the admission's output price.
//!
//! - **Backends**: `sqlite://PATH` (created on first start, WAL), `sqlite::memory:`,
//!   `postgres://...`; one SQL text per query through sqlx's `Any` driver, migrations applied
//!   on connect.
//! - **Plans**: TOML, [`BUILTIN_PLANS`] ships Free, Basic, Pro and Enterprise; operators replace
//!   it with their own file ([`Plans::load`]).
//! - **Keys**: `gw_` + 40 random base62 characters from the OS, shown once, stored as SHA-256.
//! - **Errors**: plan refusals are [`ErrorKind::PermissionDenied`] (403) or
//!   [`ErrorKind::QuotaExceeded`] (429 `insufficient_quota`); an unreachable database is
//!   [`ErrorKind::Unavailable`], never a silent pass. No error carries the database URL.
//!
//! # Example
//! ```
//! use gateway_core::{
//!     Accounting, Admission, Amount, Modality, Outcome, RequestTags, RouteId, TokenUsage,
//!     UsageRecord,
//! };
//! use gw_store::{Counter, Store};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gateway_core::Result<()> {
//! let store = Store::connect("sqlite::memory:").await?;
//! let user = store.create_user("alice", "free").await?;
//! let (key, plaintext) = store.create_key(&user.id, "laptop").await?;
//! // `plaintext` is shown once; the store keeps only its hash.
//! let who = store.authenticate(plaintext.expose()).await?.expect("a valid key");
//! assert_eq!((who.user_id.as_str(), who.key_id.as_str()), (user.id.as_str(), key.id.as_str()));
//!
//! let reservation = store
//!     .admit(Admission {
//!         request_id: "req-1".into(),
//!         user_id: user.id.clone(),
//!         route: RouteId::new("gemini", "gemini-2.5-flash"),
//!         modality: Modality::Text,
//!         operation: "chat",
//!         estimate: Amount::new(1_000, 0, None), // the prompt plus its `max_tokens`
//!         open_output: None,
//!         priced: true,
//!     })
//!     .await?;
//! store
//!     .settle(
//!         reservation,
//!         UsageRecord {
//!             request_id: "req-1".into(),
//!             user_id: user.id.clone(),
//!             route: RouteId::new("gemini", "gemini-2.5-flash"),
//!             modality: Modality::Text,
//!             operation: "chat",
//!             outcome: Outcome::Ok,
//!             tokens: TokenUsage { input_tokens: 12, output_tokens: 30, ..Default::default() },
//!             units: 0,
//!             cost: Some("0.000081".parse().unwrap()),
//!             pricing_version: "2026-11-01".into(),
//!             estimated: false,
//!             billable: true,
//!             latency: Duration::from_millis(420),
//!             time_to_first_token: None,
//!             retries: 0,
//!             cached: None,
//!             attempts: Vec::new(),
//!             tags: RequestTags::default(),
//!         },
//!     )
//!     .await?;
//!
//! store.flush().await; // usage rows are written in batches, off the request path
//! let period = store.plans().require("free")?.current_period();
//! let used = store.counters(&user.id, &period).await?;
//! assert_eq!(used.get(Counter::Volume(Modality::Text)), 42);
//! assert_eq!(Counter::Volume(Modality::Text).as_str(), "text_tokens");
//! assert_eq!(used.cost().to_string(), "0.000081");
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod accounting;
mod counters;
mod db;
mod fine_tuning;
mod jobs;
mod journal;
mod ledger;
mod plans;
mod reads;
mod recovery;
mod remembered;
mod settlement;
mod tally;
mod time;
mod users;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gateway_core::{Error, ErrorKind, Result};
use sqlx::AnyPool;
use tokio::sync::{OwnedMutexGuard, mpsc};

pub use counters::{Counter, Counters};
pub use db::SCHEMA_VERSION;
pub use fine_tuning::{
    EventLevel, FineTuningEnd, FineTuningEvent, FineTuningJob, FineTuningStatus, NewFile,
    NewFineTuningJob, StoredFile,
};
pub use jobs::{JobEnd, JobError, JobState, NewVideoJob, VideoJob};
pub use plans::{BUILTIN_PLANS, Limits, Period, Plan, Plans};
pub use reads::{
    Allowance, LogFilter, LogTotals, LoggedAttempt, Remaining, SummaryRow, UsageLogRow,
};
pub use recovery::{Maintenance, RECOVERED};
pub use remembered::Remembered;
pub use time::{UtcMicros, format_utc};
pub use users::{AuthenticatedUser, KeyInfo, User, is_well_formed_key, random_id};

#[doc(no_inline)]
pub use gateway_core::Accounting;

/// Support for this crate's own tests; not part of the API, and may change at any time.
#[doc(hidden)]
pub mod testing {
    use std::time::Duration;

    use gateway_core::Result;

    use crate::db;

    /// Creates or upgrades the database at `url` to schema `version` only, as a gateway of
    /// that version would have left it, so a test can fill it the old way and then see
    /// [`Store::connect`](crate::Store::connect) migrate it.
    pub async fn migrate_to(url: &str, version: i64) -> Result<()> {
        sqlx::any::install_default_drivers();
        let target = db::Target::parse(url)?;
        let timeout = Duration::from_secs(10);
        let pool = target
            .open(Some(1), timeout, timeout)
            .await
            .map_err(|e| db::connect_error(e, target.backend, url, timeout))?;
        db::migrate_to(&pool, target.backend, version).await?;
        pool.close().await;
        Ok(())
    }
}

/// The database behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, a file or in memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How [`Store::connect_with`] sets up its connection pool.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    max_connections: Option<u32>,
    acquire_timeout: Duration,
    busy_timeout: Duration,
    plans: Option<Plans>,
    journal: Option<std::path::PathBuf>,
    lease_idle: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            plans: None,
            journal: None,
            lease_idle: ledger::IDLE,
        }
    }
}

impl StoreOptions {
    /// The defaults: 8 connections to a SQLite file (1 in memory), 10 to PostgreSQL, 10 s to
    /// get a connection, a 5 s SQLite busy timeout, the built-in plans.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most connections the pool opens (an in-memory SQLite database always has one). A
    /// SQLite file has one more, which every write transaction of the process takes.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// How long a query waits for a connection, including connecting, before the store
    /// answers [`ErrorKind::Unavailable`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long SQLite waits for another connection's write lock.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The plans users are checked against (default: [`Plans::builtin`]).
    pub fn plans(mut self, plans: Plans) -> Self {
        self.plans = Some(plans);
        self
    }

    /// Keeps a settlement journal at `path` (segments `path.1`, `path.2`, ... beside it; the
    /// directory must exist): every settlement is written there before its request goes on (and
    /// queued for the database) and let go of once the database has it, and [`Store::connect_with`]
    /// replays what an earlier process left, so usage already reported to a client survives the
    /// process being killed before its batch was written. Not synced: it survives a killed process,
    /// not a power loss. Without it (the default), such settlements are lost and their reservations
    /// recovered at the estimate.
    ///
    /// With a journal, admission is decided in memory, from leases: per user and period, a
    /// share of each limited counter's remaining allowance that this process takes from the
    /// database in one transaction, ahead of need. Every reservation is journaled before the
    /// provider call and written to the database by a background task, so no admission waits
    /// for a database transaction unless its lease runs short. Limits still hold exactly,
    /// across any number of processes: the database never grants more than a limit across
    /// leases.
    pub fn journal(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// How long a lease (see [`StoreOptions::journal`]) may go unused before this process gives
    /// it back (default five minutes). Another process that needs what a lease holds asks for
    /// it and gets it within a fraction of a second, whatever this is.
    pub fn lease_idle(mut self, idle: Duration) -> Self {
        self.lease_idle = idle;
        self
    }
}

/// Users, keys, plans and usage in a SQLite or PostgreSQL database. Cheap to clone: clones
/// share one connection pool and one instance id.
///
/// A long-running gateway calls [`Store::spawn_maintenance`] once after connecting: its
/// heartbeat tells other processes on the same database that this one is alive, and its
/// recovery settles what dead ones left open. Without heartbeats, another process's
/// [`Store::recover_stale`] takes this one for dead once `stale_after` has passed.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// On a SQLite file, the connection this process's write transactions take (see
    /// `db::Target::open_writer`); otherwise `None`, and they take the pool's.
    writer: Option<AnyPool>,
    backend: Backend,
    instance_id: Arc<str>,
    plans: Arc<Plans>,
    /// Serialises this process's write transactions on SQLite, so writers queue here instead of
    /// sleep-polling in SQLite's busy handler (1, 2, 5, 10 ms ...).
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Users' plans looked up recently, so most admissions need no `SELECT plan` (see
    /// `remembered.rs`).
    plan_cache: Arc<Mutex<HashMap<String, (String, Remembered)>>>,
    /// What this process knows of key and plan changes made anywhere.
    auth: Arc<remembered::AuthWatch>,
    /// Settlements queued for the writer task (see [`Store::flush`]); `None` in the writer's
    /// own copy, so the queue closes when the last handle goes.
    settler: Option<mpsc::Sender<settlement::Queued>>,
    /// Cuts the writer task's linger short, so a flush is answered at once.
    hurry: Arc<tokio::sync::Notify>,
    /// Admissions queued for the admission task, which counts them a batch per transaction;
    /// `None` in the tasks' own copies.
    admitter: Option<mpsc::Sender<accounting::PendingAdmission>>,
    /// Where settlements are kept until the database has them (see [`StoreOptions::journal`]).
    journal: Option<Arc<journal::Journal>>,
    /// With a journal: the leases this process admits from in memory (see `ledger.rs`).
    ledger: Option<Arc<ledger::Ledger>>,
}

/// How long a user's plan is remembered when this process does not watch for changes: a plan
/// changed by another process applies within it. A process that watches
/// ([`Store::check_auth_changes`]; the server does twice a second) drops its plans when one
/// changed anywhere, and trusts them for five minutes meanwhile (see `remembered.rs`).
const PLAN_CACHE_TTL: Duration = Duration::from_secs(10);

impl fmt::Debug for Store {
    // No URL: it may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("instance_id", &self.instance_id)
            .field("plans", &self.plans.names().collect::<Vec<_>>())
            .finish()
    }
}

impl Store {
    /// Connects with the default [`StoreOptions`]; see [`Store::connect_with`].
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects to `sqlite://PATH` (the file is created if missing; its directory must exist),
    /// `sqlite::memory:` or `postgres://...`, applies the migrations not applied yet and
    /// registers this process as a new instance for [`Store::recover_stale`].
    ///
    /// Errors: [`ErrorKind::Config`] for a URL of another kind or a missing directory,
    /// [`ErrorKind::Unavailable`] when the database cannot be reached. No error includes the URL.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let target = db::Target::parse(url)?;
        let pool = target
            .open(
                options.max_connections,
                options.acquire_timeout,
                options.busy_timeout,
            )
            .await
            .map_err(|e| db::connect_error(e, target.backend, url, options.acquire_timeout))?;
        db::migrate(&pool, target.backend).await?;
        let writer = target
            .open_writer(options.acquire_timeout, options.busy_timeout)
            .await
            .map_err(|e| db::connect_error(e, target.backend, url, options.acquire_timeout))?;
        let journal = options
            .journal
            .as_deref()
            .map(journal::Journal::open)
            .transpose()?;
        let (journal, leftovers) = match journal {
            Some((j, left)) => (Some(Arc::new(j)), Some(left)),
            None => (None, None),
        };
        let mut store = Store {
            pool,
            writer,
            backend: target.backend,
            instance_id: users::random_id("ins_", 16)?.into(),
            plans: Arc::new(options.plans.unwrap_or_default()),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            plan_cache: Arc::new(Mutex::new(HashMap::new())),
            auth: Arc::default(),
            settler: None,
            hurry: Arc::new(tokio::sync::Notify::new()),
            admitter: None,
            ledger: journal
                .as_ref()
                .map(|_| Arc::new(ledger::Ledger::new(options.lease_idle))),
            journal,
        };
        store.register_instance().await?;
        if let (Some(journal), Some(leftovers)) = (&store.journal, leftovers) {
            store.replay(journal, &leftovers).await;
        }
        store.settler = Some(settlement::spawn_writer(store.clone()));
        store.admitter = Some(accounting::spawn_admitter(Store {
            settler: None,
            ..store.clone()
        }));
        if store.ledger.is_some() {
            let weak = store.settler.as_ref().map(|s| s.downgrade());
            let ledger_store = Store {
                settler: None,
                admitter: None,
                ..store.clone()
            };
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(ledger::WANT_POLL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // Ends with the store: once the last handle is gone, the writer is too.
                    let Some(settler) = weak.as_ref().and_then(|w| w.upgrade()) else {
                        break;
                    };
                    let store = Store {
                        settler: Some(settler),
                        ..ledger_store.clone()
                    };
                    if let Err(e) = store.release_wanted().await {
                        tracing::debug!(error = %e, "looking for leases other instances want failed");
                    }
                    store.release_idle().await;
                }
            });
        }
        tracing::info!(
            backend = store.backend.as_str(),
            instance = %store.instance_id,
            "usage store ready"
        );
        Ok(store)
    }

    /// Writes the reservations and settlements an earlier process left in the journal (those
    /// the database already has are dropped), recovers at their estimate what that dead process
    /// left open and frees its leases, then deletes its segments; segments whose lines could not
    /// all be written stay for the next start.
    async fn replay(&self, journal: &journal::Journal, leftovers: &journal::Leftovers) {
        if leftovers.reserved.is_empty() && leftovers.settlements.is_empty() {
            journal.forget(leftovers);
            return;
        }
        let mut complete = true;
        let reserved = match self.replay_reserved(&leftovers.reserved).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "settlement journal: replaying reservations failed; the journal is kept for the next start");
                complete = false;
                0
            }
        };
        let (mut written, mut settled_already) = (0usize, 0usize);
        for batch in leftovers.settlements.chunks(settlement::BATCH) {
            match self.settle_batch(batch).await {
                Some(dropped) => {
                    written += batch.len() - dropped;
                    settled_already += dropped;
                }
                None => complete = false,
            }
        }
        // The processes that wrote these lines are dead (their journal's lock was free): what
        // they left open is recovered now, and their leases freed, rather than after
        // `stale_after`.
        let mut dead: Vec<&str> = leftovers
            .reserved
            .iter()
            .map(|r| r.instance_id.as_str())
            .collect();
        dead.sort_unstable();
        dead.dedup();
        let recovered = match self.recover_dead(&dead).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "settlement journal: recovering a dead instance's reservations failed; recovery retries once it is stale");
                0
            }
        };
        tracing::info!(
            reserved,
            written,
            settled_already,
            recovered,
            "settlement journal replayed: usage an earlier process reported but had not written"
        );
        if complete {
            journal.forget(leftovers);
        }
    }

    /// This store with other plans (e.g. a reloaded plans file); the pool is shared.
    pub fn with_plans(mut self, plans: Plans) -> Store {
        self.plans = Arc::new(plans);
        self
    }

    /// The plans users are checked against.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The id this process registered under; its reservations carry it.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Applies any migration not applied yet. [`Store::connect`] already did; running it again
    /// changes nothing.
    pub async fn migrate(&self) -> Result<()> {
        db::migrate(&self.pool, self.backend).await
    }

    /// The newest migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(db::db_error)?;
        Ok(version.unwrap_or(0))
    }

    /// Writes every settlement queued so far, then closes the pool: later calls fail with
    /// [`ErrorKind::Unavailable`]. The instance stays registered, so another process recovers its
    /// open reservations once it goes stale.
    pub async fn close(&self) {
        self.release_user(None).await;
        self.flush().await;
        if self.ledger.is_some() {
            // Everything taken from the leases is written: what they still hold goes back.
            let released = sqlx::query("DELETE FROM leases WHERE instance_id = $1")
                .bind(&*self.instance_id)
                .execute(&self.pool)
                .await;
            if let Err(e) = released {
                tracing::warn!(error = %e, "giving the leases back failed; recovery frees them once this instance is taken for dead");
            }
        }
        self.pool.close().await;
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
    }

    /// Waits until every settlement queued before this call is written (or has failed and left
    /// its reservation for recovery). Settlements are written in batches by a background task, so
    /// a response never waits for its usage row; read-your-own-usage callers flush first.
    pub async fn flush(&self) {
        let Some(settler) = &self.settler else { return };
        let (done, wait) = tokio::sync::oneshot::channel();
        if settler.send(settlement::Queued::Flush(done)).await.is_ok() {
            self.hurry.notify_one();
            let _ = wait.await;
        }
    }

    /// A write transaction; on SQLite, taken only after this process's other writers finished.
    async fn begin(&self) -> Result<(Option<OwnedMutexGuard<()>>, db::Tx)> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        let pool = self.writer.as_ref().unwrap_or(&self.pool);
        Ok((guard, db::begin(pool, self.backend).await?))
    }

    /// The plan name of `user_id`, from the cache or the database.
    async fn plan_of(&self, user_id: &str) -> Result<Option<String>> {
        {
            let cache = self
                .plan_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((plan, at)) = cache.get(user_id)
                && at.trusted(PLAN_CACHE_TTL, || self.watches_auth_within(PLAN_CACHE_TTL))
            {
                return Ok(Some(plan.clone()));
            }
        }
        let generation = self.auth_generation();
        let plan: Option<String> = sqlx::query_scalar("SELECT plan FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db::db_error)?;
        if let Some(plan) = &plan {
            let mut cache = self
                .plan_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Not when plans were dropped meanwhile: what was read may predate the change.
            if self.auth_generation() == generation {
                if cache.len() >= 100_000 {
                    cache.clear();
                }
                cache.insert(user_id.to_owned(), (plan.clone(), Remembered::now()));
            }
        }
        Ok(plan)
    }

    /// Forgets the cached plan of `user_id` (its plan just changed).
    fn forget_plan(&self, user_id: &str) {
        self.auth.next_generation();
        self.plan_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user_id);
    }

    /// The plan the user `plan_name` names, or a configuration error when the plans file no
    /// longer defines it.
    fn plan_named(&self, user_id: &str, plan_name: &str) -> Result<&Plan> {
        self.plans.get(plan_name).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "user `{user_id}` is on plan `{plan_name}`, which the plans file does not \
                     define"
                ),
            )
        })
    }
}
