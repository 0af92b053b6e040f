//! Connecting, the schema migrations, and turning database errors into gateway errors.

use std::path::Path;
use std::time::Duration;

use gateway_core::{Error, ErrorKind, Result};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, AssertSqlSafe, Transaction};

use crate::Backend;

/// Where to connect, worked out from the URL without echoing it anywhere.
pub(crate) struct Target {
    pub(crate) backend: Backend,
    /// The URL handed to sqlx (for a SQLite file, with `mode=rwc` so the file gets created).
    pub(crate) url: String,
    pub(crate) in_memory: bool,
}

const URL_FORMS: &str = "expected sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DATABASE";

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let config = |msg: String| Error::new(ErrorKind::Config, msg);
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Target {
                backend: Backend::Sqlite,
                url: "sqlite::memory:".into(),
                in_memory: true,
            });
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(config(format!(
                    "the SQLite database URL names no file ({URL_FORMS})"
                )));
            }
            // The file is created on first start, but not the directories above it: say so
            // rather than pass on SQLite's "unable to open database file".
            if let Some(dir) = Path::new(path).parent()
                && !dir.as_os_str().is_empty()
                && !dir.is_dir()
            {
                return Err(config(format!(
                    "the directory `{}` for the SQLite database does not exist: create it first \
                     (the database file itself is created on first start)",
                    dir.display()
                )));
            }
            let query = if query.split('&').any(|p| p.starts_with("mode=")) {
                query.to_owned()
            } else if query.is_empty() {
                "mode=rwc".to_owned()
            } else {
                format!("{query}&mode=rwc")
            };
            return Ok(Target {
                backend: Backend::Sqlite,
                url: format!("sqlite://{path}?{query}"),
                in_memory: false,
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target {
                backend: Backend::Postgres,
                url: url.to_owned(),
                in_memory: false,
            });
        }
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        let scheme = if scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            scheme
        } else {
            ""
        };
        Err(config(format!(
            "unsupported database URL scheme `{scheme}` ({URL_FORMS})"
        )))
    }

    /// Opens the pool: one connection that never closes for an in-memory database (each
    /// connection would otherwise get a database of its own), WAL and a busy timeout for a
    /// SQLite file.
    pub(crate) async fn open(
        &self,
        max_connections: Option<u32>,
        acquire_timeout: Duration,
        busy_timeout: Duration,
    ) -> sqlx::Result<AnyPool> {
        let options = AnyPoolOptions::new().acquire_timeout(acquire_timeout);
        let options = match (self.backend, self.in_memory) {
            (Backend::Sqlite, true) => options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            (Backend::Sqlite, false) => sqlite_file(
                options.max_connections(max_connections.unwrap_or(8).max(1)),
                busy_timeout,
                "",
            ),
            (Backend::Postgres, _) => {
                let port = tcp_port(&self.url);
                options
                    .max_connections(max_connections.unwrap_or(10).max(1))
                    .after_connect(move |_, _| {
                        Box::pin(async move {
                            if let Some(port) = port {
                                no_delay::to_port(port);
                            }
                            Ok(())
                        })
                    })
            }
        };
        let pool = options.connect(&self.url).await?;
        if self.backend == Backend::Sqlite && !self.in_memory {
            // Persistent in the file; set once here, before any concurrent use, because
            // switching needs an exclusive lock that the busy timeout does not wait for.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(pool)
    }

    /// For a SQLite file, the one connection every write transaction of this process takes
    /// (see `Store::begin`); `None` for PostgreSQL and an in-memory database, whose pool does.
    ///
    /// SQLite empties a connection's page cache whenever another connection wrote since its
    /// last transaction, and the pool hands out its connections in turn: with writes spread
    /// over all of them, every batch of the usage writer began with an empty cache of SQLite's
    /// default 2 MiB, and read back and spilled the pages of the per-user indexes it touches
    /// (about 2 reads and 6 writes a request with 1,000 users). One connection keeps its
    /// cache from one batch to the next, and [`WRITER_CACHE_KIB`] holds a batch's pages. Its
    /// WAL is checkpointed every [`WRITER_CHECKPOINT_PAGES`] pages rather than SQLite's 1,000,
    /// which a 100 ms batch with many users nearly fills alone: a page the batches keep
    /// rewriting (a counter's, a summary's, an index leaf's) is copied back to the database once
    /// a checkpoint, not once a batch. Its temporary storage is in memory: a statement that
    /// writes several rows inside a transaction (the writer's multi-row inserts and upserts)
    /// keeps a copy of every page it changes in a statement journal, which SQLite spills to a
    /// temporary file past 64 KiB, two `pwrite` calls a page (3 of the 4.8 a request with
    /// 1,000 users, hf at c64: 1.8 with it in memory). Reads keep the default.
    pub(crate) async fn open_writer(
        &self,
        acquire_timeout: Duration,
        busy_timeout: Duration,
    ) -> sqlx::Result<Option<AnyPool>> {
        if self.backend != Backend::Sqlite || self.in_memory {
            return Ok(None);
        }
        let options = AnyPoolOptions::new()
            .acquire_timeout(acquire_timeout)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        let cache = format!(
            "; PRAGMA cache_size = -{WRITER_CACHE_KIB}; \
             PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}; \
             PRAGMA temp_store = MEMORY"
        );
        let pool = sqlite_file(options, busy_timeout, &cache)
            .connect(&self.url)
            .await?;
        Ok(Some(pool))
    }
}

/// The page cache of the SQLite write connection, in KiB: at most this much memory, taken only
/// as pages are touched. A batch of the usage writer touches a few 4 KiB pages for each user in
/// it (an index leaf, the summary, counters and lease rows), a few MiB with 1,000 users.
const WRITER_CACHE_KIB: u32 = 32 * 1024;

/// WAL pages after which the SQLite write connection checkpoints (about 40 MiB of WAL).
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// `options` set up for a SQLite file: a busy timeout, `synchronous = NORMAL`, foreign keys,
/// and `extra` pragmas (`"; PRAGMA ..."`).
fn sqlite_file(options: AnyPoolOptions, busy_timeout: Duration, extra: &str) -> AnyPoolOptions {
    let busy_ms = busy_timeout.as_millis();
    // WAL is synced at checkpoints with NORMAL: a crash of the process loses nothing, a power
    // cut may lose the last commits.
    let sql = format!(
        "PRAGMA busy_timeout = {busy_ms}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON{extra}"
    );
    options.after_connect(move |conn, _| {
        let sql = sql.clone();
        Box::pin(async move {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
            Ok(())
        })
    })
}

/// The TCP port a PostgreSQL URL connects to; `None` for a Unix socket.
fn tcp_port(url: &str) -> Option<u16> {
    let options: sqlx::postgres::PgConnectOptions = url.parse().ok()?;
    if options.get_socket().is_some() || options.get_host().starts_with('/') {
        return None;
    }
    Some(options.get_port())
}

/// Nagle's algorithm off on the connections to PostgreSQL.
///
/// sqlx 0.9.0 no longer sets `TCP_NODELAY` on its sockets
/// (<https://github.com/transact-rs/sqlx/issues/4335>, fixed upstream but not released). A
/// statement larger than the socket's send buffer then goes out in two writes, and the second
/// waits for the server's delayed acknowledgement: 40 ms on Linux, on every large multi-row
/// statement. Measured here, the usage writer fell from about 8,000 settled requests a second
/// (over a Unix socket) to 1,400 over TCP. sqlx gives no access to its socket, so on Linux each new
/// connection's hook sets the option on every TCP socket of this process to the database's
/// port, through a duplicate of the socket taken with `pidfd_getfd(2)` (the duplicate shares
/// the socket, and the safe call needs no raw descriptor). Elsewhere, or when the kernel refuses
/// (before Linux 5.6, or under a ptrace policy that forbids it), nothing changes but speed.
/// Remove once sqlx sets the option again.
mod no_delay {
    #[cfg(target_os = "linux")]
    pub(super) fn to_port(port: u16) {
        if let Err(e) = set_all(port) {
            tracing::debug!(error = %e, "TCP_NODELAY on the PostgreSQL connections not set");
        }
    }

    #[cfg(target_os = "linux")]
    fn set_all(port: u16) -> std::io::Result<()> {
        use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
        use std::os::unix::ffi::OsStrExt;

        let me = pidfd_open(getpid(), PidfdFlags::empty())?;
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let Ok(entry) = entry else { continue };
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.as_os_str().as_bytes().starts_with(b"socket:"));
            if !is_socket {
                continue;
            }
            // The descriptor may have been closed (or reused) since it was listed: the
            // duplicate is then of something else, checked below, or fails.
            let Ok(socket) = pidfd_getfd(&me, fd, PidfdGetfdFlags::empty()) else {
                continue;
            };
            let socket = socket2::SockRef::from(&socket);
            let to_database = socket.r#type().is_ok_and(|t| t == socket2::Type::STREAM)
                && socket
                    .peer_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .is_some_and(|a| a.port() == port);
            if to_database && !socket.tcp_nodelay().unwrap_or(true) {
                socket.set_tcp_nodelay(true)?;
            }
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn to_port(_port: u16) {}
}

/// A failure to connect: never carries the URL or its password.
pub(crate) fn connect_error(
    e: sqlx::Error,
    backend: Backend,
    url: &str,
    acquire_timeout: Duration,
) -> Error {
    let kind = match e {
        sqlx::Error::Configuration(_) => ErrorKind::Config,
        _ => ErrorKind::Unavailable,
    };
    let why = match e {
        // sqlx keeps retrying a refused connection until the timeout, then says only that.
        sqlx::Error::PoolTimedOut => format!(
            "no connection within {acquire_timeout:?} (is the server running, and are the host \
             and port right?)"
        ),
        e => e.to_string(),
    };
    let message = redact(
        format!("cannot open the {} database: {why}", backend.as_str()),
        url,
    );
    Error::new(kind, message)
}

/// `message` with the URL and its password taken out.
fn redact(mut message: String, url: &str) -> String {
    if !url.is_empty() {
        message = message.replace(url, "<database URL>");
    }
    if let Some(password) = url_password(url)
        && !password.is_empty()
    {
        message = message.replace(password, "<password>");
    }
    message
}

/// The password of `scheme://user:password@host/...`, if there is one.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

/// A database failure while serving: the store is unusable, so the request must not go ahead.
///
/// The message is the same whatever the database said (its words can name tables, hosts or
/// values, and the error may travel to a client); the database's own error is logged here and
/// kept as the source.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    let message = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => "the gateway's database cannot be reached",
        _ => "the gateway's database failed",
    };
    tracing::warn!(error = %e, "{message}");
    Error::new(ErrorKind::Unavailable, message).with_source(e)
}

/// Whether `e` (from [`db_error`]) says the database could not take the work just now, so the
/// same work can succeed when tried again: it cannot be reached, or it answered with a lock, a
/// conflict or a shutdown rather than a refusal of the statement. SQLite: `SQLITE_BUSY` and
/// `SQLITE_LOCKED` with their extended codes (<https://www.sqlite.org/rescode.html>);
/// PostgreSQL: classes 08 (connection), 40 (serialization failure, deadlock), 53 (out of
/// resources), 57P (shutdown, cannot connect now) and 25006 (a standby that took the place of
/// the primary) (<https://www.postgresql.org/docs/current/errcodes-appendix.html>). A closed
/// pool is not: this process is shutting it down.
pub(crate) fn transient(e: &Error) -> bool {
    let Some(e) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<sqlx::Error>()) else {
        return false;
    };
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// [`transient`] for a database's own error code: a PostgreSQL SQLSTATE (five characters), or
/// SQLite's result code as a number (fewer digits; extended codes keep the primary code in the
/// low byte).
fn transient_code(code: &str) -> bool {
    const SQLITE_BUSY: u32 = 5;
    const SQLITE_LOCKED: u32 = 6;
    if code.len() == 5 {
        ["08", "40", "53", "57P"]
            .iter()
            .any(|class| code.starts_with(class))
            || code == "25006"
    } else {
        code.parse::<u32>()
            .is_ok_and(|n| matches!(n & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
    }
}

/// A value read from the database that this code cannot make sense of.
pub(crate) fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("the database holds {what}, which this version of the gateway does not know"),
    )
}

pub(crate) type Tx = Transaction<'static, Any>;

/// The writer's maps, keyed by what the gateway made itself (reservation ids, user ids,
/// periods) and looked up a few times per row written: hashed with foldhash, not SipHash, as
/// no key is chosen by a caller.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set form of [`FastMap`].
pub(crate) type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Starts a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`): a
/// deferred transaction that read first could not upgrade under WAL without failing at once.
pub(crate) async fn begin(pool: &AnyPool, backend: Backend) -> Result<Tx> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
    .map_err(db_error)
}

struct Migration {
    version: i64,
    name: &'static str,
    /// DDL both databases take as is.
    common: &'static str,
    /// DDL that must differ (generated keys), one file per dialect.
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        common: include_str!("../migrations/0001_init.sql"),
        sqlite: include_str!("../migrations/0001_init.sqlite.sql"),
        postgres: include_str!("../migrations/0001_init.postgres.sql"),
    },
    Migration {
        version: 2,
        name: "attempts",
        common: include_str!("../migrations/0002_attempts.sql"),
        sqlite: include_str!("../migrations/0002_attempts.dialect.sql"),
        postgres: include_str!("../migrations/0002_attempts.dialect.sql"),
    },
    Migration {
        version: 3,
        name: "counter_rows",
        common: include_str!("../migrations/0003_counter_rows.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 4,
        name: "request_tags",
        common: include_str!("../migrations/0004_request_tags.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 5,
        name: "auth_changes",
        common: include_str!("../migrations/0005_auth_changes.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 6,
        name: "video_jobs",
        common: include_str!("../migrations/0006_video_jobs.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 7,
        name: "fine_tuning",
        common: include_str!("../migrations/0007_fine_tuning.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 8,
        name: "cache_hits",
        common: include_str!("../migrations/0008_cache_hits.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 9,
        name: "over_reservation",
        common: include_str!("../migrations/0009_over_reservation.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 10,
        name: "recovered_index",
        common: include_str!("../migrations/0010_recovered_index.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 11,
        name: "leases",
        common: include_str!("../migrations/0011_leases.sql"),
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 12,
        name: "end_user_index",
        common: include_str!("../migrations/0012_end_user_index.sql"),
        sqlite: "",
        postgres: "",
    },
];

/// The schema version this code creates and expects.
pub const SCHEMA_VERSION: i64 = 12;

/// An arbitrary constant naming the PostgreSQL advisory lock that serialises migrations of
/// replicas starting at once.
const MIGRATION_LOCK: i64 = 0x6777_5f73_746f_7265; // "gw_store"

/// Applies the migrations not applied yet, each once, in one transaction.
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<()> {
    migrate_to(pool, backend, SCHEMA_VERSION).await
}

/// Applies the migrations not applied yet up to version `target`, each once, in one
/// transaction. Below [`SCHEMA_VERSION`] only to test migrations on an older schema.
pub(crate) async fn migrate_to(pool: &AnyPool, backend: Backend, target: i64) -> Result<()> {
    let mut tx = begin(pool, backend).await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     BIGINT PRIMARY KEY,
            name        TEXT NOT NULL,
            applied_at  BIGINT NOT NULL
        )",
    )
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
    if let Some(newer) = applied.iter().find(|&&v| v > SCHEMA_VERSION) {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "the database schema is at version {newer}, newer than this gateway knows \
                 ({SCHEMA_VERSION}): upgrade the gateway"
            ),
        ));
    }
    let pending = MIGRATIONS
        .iter()
        .filter(|m| m.version <= target && !applied.contains(&m.version));
    for m in pending {
        let dialect = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        for sql in [m.common, dialect] {
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(crate::time::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied database migration"
        );
    }
    tx.commit().await.map_err(db_error)
}

/// The placeholders of a multi-row `VALUES` list: `rows` rows of `columns` parameters each,
/// numbered from `first` on, each row ending with the constants `tail`:
/// `placeholders(Postgres, 2, 2, 2, ", 0")` is `($2, $3, 0), ($4, $5, 0)`.
///
/// On SQLite they are plain `?`s, bound in order, so every parameter before them must be bound
/// before them too. SQLite looks a named parameter (`$n`, `?n`) up in a list, one by one, both
/// when it parses a statement and each time sqlx binds one (`sqlite3_bind_parameter_name`): a
/// statement of `k` such parameters costs k² steps, milliseconds for a batch of usage rows.
/// Plain `?`s are never named, so binding them costs nothing.
pub(crate) fn placeholders(
    backend: Backend,
    rows: usize,
    columns: usize,
    first: usize,
    tail: &str,
) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(rows * (columns * 6 + tail.len() + 4));
    let mut n = first;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${n}");
                }
            }
            n += 1;
        }
        sql.push_str(tail);
        sql.push(')');
    }
    sql
}

/// Rows (or list items) per multi-row statement, largest first: a batch goes out in chunks of
/// these sizes, so the database sees a few statement texts per table (each prepared once per
/// connection and kept in its statement cache) whatever the size of the batch. A statement text
/// per batch size would be prepared again and again, and push the others out of the cache.
/// Under load the writer's batches hold thousands of rows, and every statement is a round trip
/// to the connection's thread (on SQLite, a hand-off between threads each way): with 512 rows
/// as the largest, the bench's full configuration on SQLite served 6% more requests a second
/// than with 64, the writer's thread taking 1.3 µs less CPU a request (BENCHMARKS.md). The
/// widest row times the largest chunk must stay within [`MAX_PARAMETERS`].
pub(crate) const CHUNKS: [usize; 5] = [512, 64, 16, 4, 1];

/// The most parameters one statement may bind on both databases: SQLite's default
/// `SQLITE_MAX_VARIABLE_NUMBER` since 3.32.0 (<https://www.sqlite.org/limits.html#max_variable_number>);
/// PostgreSQL allows 65,535 (its protocol counts them in 16 bits,
/// <https://www.postgresql.org/docs/current/protocol-message-formats.html>, `Bind`).
pub(crate) const MAX_PARAMETERS: usize = 32_766;

/// `items` cut into runs of [`CHUNKS`] sizes, largest first.
pub(crate) fn chunked<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut runs = Vec::new();
    for size in CHUNKS {
        while items.len() >= size {
            let (run, rest) = items.split_at(size);
            runs.push(run);
            items = rest;
        }
    }
    runs
}

/// Saturating conversions between the API's `u64` and the database's `BIGINT`.
pub(crate) fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_placeholders() {
        let pg = Backend::Postgres;
        assert_eq!(placeholders(pg, 2, 2, 2, ", 0"), "($2, $3, 0), ($4, $5, 0)");
        assert_eq!(placeholders(pg, 1, 3, 1, ""), "($1, $2, $3)");
        assert_eq!(placeholders(pg, 0, 3, 1, ""), "");
        let lite = Backend::Sqlite;
        assert_eq!(placeholders(lite, 2, 2, 1, ", 0"), "(?, ?, 0), (?, ?, 0)");
    }

    #[test]
    fn lock_conflict_and_outage_codes_are_transient() {
        // SQLite: BUSY, LOCKED and their extended codes (BUSY_SNAPSHOT 517, LOCKED_SHAREDCACHE
        // 262); a constraint (19, UNIQUE 2067) or a read-only file (8) is not.
        for code in ["5", "6", "517", "262"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["19", "2067", "8", "1"] {
            assert!(!transient_code(code), "{code}");
        }
        // PostgreSQL: serialization failure, deadlock, a connection lost, shutdown, a read-only
        // standby; a unique violation or an unknown table is not.
        for code in ["40001", "40P01", "08006", "57P01", "53300", "25006"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22003"] {
            assert!(!transient_code(code), "{code}");
        }
        assert!(transient(&db_error(sqlx::Error::PoolTimedOut)));
        assert!(!transient(&db_error(sqlx::Error::PoolClosed)));
        assert!(!transient(&corrupt("a row")));
    }

    #[test]
    fn passwords_are_redacted() {
        let url = "postgres://app:s3cret@db.internal:5432/gw";
        assert_eq!(url_password(url), Some("s3cret"));
        let msg = redact(format!("failed for {url}: auth s3cret"), url);
        assert!(!msg.contains("s3cret"), "{msg}");
        assert_eq!(url_password("postgres://app@db/gw"), None);
        assert_eq!(url_password("sqlite://data/gw.db"), None);
    }

    /// A SQLite file's write connection is its own, with the page cache that keeps a batch's
    /// pages, its temporary storage in memory, and the pragmas every connection has; an
    /// in-memory database and PostgreSQL have none (their pool's connections take the writes).
    #[tokio::test]
    async fn a_sqlite_file_has_one_write_connection_with_a_large_cache() {
        sqlx::any::install_default_drivers();
        let dir = std::env::temp_dir().join(format!("gw-store-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("gateway.db").display());
        let target = Target::parse(&url).unwrap();
        let timeout = Duration::from_secs(5);
        let pool = target.open(None, timeout, timeout).await.unwrap();
        let writer = target.open_writer(timeout, timeout).await.unwrap();
        let writer = writer.expect("a SQLite file has a write connection");
        let pragma = |name: &'static str| {
            let writer = writer.clone();
            async move {
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("PRAGMA {name}")))
                    .fetch_one(&writer)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(pragma("cache_size").await, -i64::from(WRITER_CACHE_KIB));
        assert_eq!(pragma("synchronous").await, 1, "NORMAL");
        assert_eq!(pragma("foreign_keys").await, 1);
        assert_eq!(
            pragma("wal_autocheckpoint").await,
            i64::from(WRITER_CHECKPOINT_PAGES)
        );
        assert_eq!(pragma("temp_store").await, 2, "MEMORY");
        assert_eq!(writer.options().get_max_connections(), 1);
        // The pool's connections keep SQLite's default cache.
        let read: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_ne!(read, -i64::from(WRITER_CACHE_KIB));
        writer.close().await;
        pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();

        let memory = Target::parse("sqlite::memory:").unwrap();
        assert!(
            memory
                .open_writer(timeout, timeout)
                .await
                .unwrap()
                .is_none()
        );
    }

    fn refused(url: &str) -> Error {
        match Target::parse(url) {
            Ok(_) => panic!("accepted a bad URL"),
            Err(e) => e,
        }
    }

    #[test]
    fn urls() {
        let t = Target::parse("sqlite::memory:").unwrap();
        assert!(t.in_memory);
        let t = Target::parse("sqlite://gw.db").unwrap();
        assert_eq!(t.url, "sqlite://gw.db?mode=rwc");
        let t = Target::parse("sqlite:gw.db?mode=ro").unwrap();
        assert_eq!(t.url, "sqlite://gw.db?mode=ro");
        let t = Target::parse("postgres://u:p@h/db").unwrap();
        assert_eq!(t.backend, Backend::Postgres);
        let e = refused("mysql://u:p@h/db");
        assert_eq!(e.kind(), &ErrorKind::Config);
        assert!(!e.message().contains("u:p"), "{e}");
        let e = refused("sqlite:///no/such/dir/gw.db");
        assert!(e.message().contains("/no/such/dir"), "{e}");
        assert!(e.message().contains("create it first"), "{e}");
    }
}
