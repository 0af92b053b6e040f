//! The test harness: every test runs once on a fresh SQLite file and, when
//! `GATEWAY_TEST_POSTGRES_URL` is set, once more on a freshly created PostgreSQL database that
//! is dropped afterwards, so runs never collide.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_core::{
    Admission, Amount, CacheHit, Cost, Modality, Outcome, RequestTags, Reservation, RouteId,
    TokenUsage, UsageRecord,
};
use gw_store::{BUILTIN_PLANS, Backend, Plans, Store, StoreOptions};
use sqlx::{AnyPool, AssertSqlSafe, Connection, PgConnection};

/// The built-in plans plus `metered`, whose small limits tests can reach.
pub const METERED: &str = r#"
[plans.metered]
cost_usd = "1"
allow = ["gemini/*", "hf/*"]
allow_unpriced = false
default_max_tokens = 500

[plans.metered.text]
requests = 100
tokens = 10000

[plans.metered.image]
requests = 3
units = 6
"#;

pub fn test_plans() -> Plans {
    Plans::parse("test-plans.toml", &format!("{BUILTIN_PLANS}\n{METERED}")).unwrap()
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database for one test; removed when dropped, even when the test panics.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop may run inside the test's runtime (or while unwinding): a thread of its
                // own with its own runtime can block on the DROP either way.
                let (admin_url, db) = (admin_url.clone(), name.clone());
                let done = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let mut conn = PgConnection::connect(&admin_url).await?;
                        let sql = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
                        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
                        conn.close().await
                    })
                })
                .join();
                if !matches!(done, Ok(Ok(()))) {
                    eprintln!("could not drop the test database {name}");
                }
            }
        }
    }
}

impl TestDb {
    /// A SQLite file in a new temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(unique("gw-store-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("gateway.db").display());
        TestDb {
            url,
            backend: Backend::Sqlite,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new PostgreSQL database, or `None` when `GATEWAY_TEST_POSTGRES_URL` is not set.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("GATEWAY_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let name = unique("gw_store_test");
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .expect("GATEWAY_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.unwrap();
        Some(TestDb {
            url: with_database(&admin_url, &name),
            backend: Backend::Postgres,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    pub fn options(&self) -> StoreOptions {
        StoreOptions::new().plans(test_plans())
    }

    /// A store on this database with [`test_plans`].
    pub async fn store(&self) -> Store {
        Store::connect_with(&self.url, self.options())
            .await
            .unwrap()
    }

    /// A plain sqlx pool on the same database, to look at the tables directly.
    pub async fn raw(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(&self.url).await.unwrap()
    }
}

/// `admin_url` pointing at database `name` instead.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// Runs `test` on a fresh SQLite file, then on a fresh PostgreSQL database when
/// `GATEWAY_TEST_POSTGRES_URL` is set.
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    test(TestDb::sqlite()).await;
    match TestDb::postgres().await {
        Some(db) => test(db).await,
        None => skipped(),
    }
}

/// Says, once per test binary and past the test harness's output capture, that the PostgreSQL
/// half of the suite did not run.
pub fn skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: GATEWAY_TEST_POSTGRES_URL is not set (the PostgreSQL runs of the gw-store \
             suite; SQLite ran)"
        );
    });
}

pub fn cost(s: &str) -> Cost {
    s.parse().unwrap()
}

/// A text admission of `tokens` tokens (cost when priced) for `provider/model`.
pub fn text(
    user: &str,
    provider: &'static str,
    model: &str,
    tokens: u64,
    price: Option<&str>,
) -> Admission {
    Admission {
        request_id: unique("req"),
        user_id: user.to_owned(),
        route: RouteId::new(provider, model),
        modality: Modality::Text,
        operation: "chat",
        estimate: Amount::new(tokens, 0, price.map(cost)),
        open_output: None,
        priced: price.is_some(),
    }
}

/// A media admission of `units` units.
pub fn media(
    user: &str,
    provider: &'static str,
    model: &str,
    modality: Modality,
    units: u64,
) -> Admission {
    Admission {
        modality,
        operation: "generate",
        estimate: Amount::new(0, units, Some(cost("0.01"))),
        ..text(user, provider, model, 0, Some("0"))
    }
}

/// The record of a successful call for `admission` that used `input` + `output` tokens.
pub fn record(admission: &Admission, input: u64, output: u64, price: Option<&str>) -> UsageRecord {
    UsageRecord {
        request_id: admission.request_id.clone(),
        user_id: admission.user_id.clone(),
        route: admission.route.clone(),
        modality: admission.modality,
        operation: admission.operation,
        outcome: Outcome::Ok,
        tokens: TokenUsage {
            input_tokens: input,
            output_tokens: output,
            reasoning_tokens: output / 4,
            cached_input_tokens: input / 2,
        },
        units: 0,
        cost: price.map(cost),
        pricing_version: "test-catalog-1".into(),
        estimated: false,
        billable: true,
        latency: Duration::from_millis(250),
        time_to_first_token: Some(Duration::from_millis(40)),
        retries: 0,
        cached: None,
        attempts: Vec::new(),
        tags: RequestTags::default(),
    }
}

/// A call for `admission` that failed before the provider did any work.
pub fn failed(admission: &Admission) -> UsageRecord {
    UsageRecord {
        outcome: Outcome::Failed {
            kind: "upstream".into(),
            message: "503 from the provider".into(),
        },
        tokens: TokenUsage::default(),
        cost: None,
        billable: false,
        retries: 2,
        ..record(admission, 0, 0, None)
    }
}

/// The record of a request for `admission` answered from the response cache, as the gateway
/// settles it: no tokens or units, cost 0, `billable` when the operator counts hits against the
/// plan; `saved` is what the cached answer had cost (`None` when it was not priced).
pub fn cache_hit(
    admission: &Admission,
    semantic: bool,
    saved: Option<&str>,
    billable: bool,
) -> UsageRecord {
    UsageRecord {
        tokens: TokenUsage::default(),
        units: 0,
        cost: Some(Cost::ZERO),
        billable,
        latency: Duration::from_millis(2),
        time_to_first_token: None,
        cached: Some(CacheHit {
            semantic,
            saved: saved.map(cost),
        }),
        ..record(admission, 0, 0, None)
    }
}

/// The reservation's own period, for reading counters.
pub fn period_of(reservation: &Reservation) -> String {
    reservation.period.clone()
}

/// A settlement line as the journal writes it (the format a process of this version leaves for
/// the next one).
pub fn journal_line(
    reservation_id: &str,
    request_id: &str,
    input: u64,
    output: u64,
    cost_nanos: u64,
) -> String {
    serde_json::json!({
        "reservation_id": reservation_id,
        "reserved_requests": 1,
        "request_id": request_id,
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "modality": "text",
        "operation": "chat",
        "status": "ok",
        "error_message": null,
        "tokens": {"input_tokens": input, "output_tokens": output, "reasoning_tokens": 0,
                   "cached_input_tokens": 0},
        "units": 0,
        "cost_nanos": cost_nanos,
        "pricing_version": "test",
        "estimated": false,
        "billable": true,
        "latency_ms": 12,
        "ttft_ms": null,
        "retries": 0,
        "cache_semantic": null,
        "cost_saved_nanos": null,
        "attempts": "[]",
        "end_user": "end-7",
        "metadata": {"team": "search"}
    })
    .to_string()
}
