//! Micro-benchmarks of the store's hot paths: the in-memory plan check, and on a SQLite file
//! (and on PostgreSQL when `GATEWAY_TEST_POSTGRES_URL` is set, in a database created for the
//! run) the key lookup, one request's admission plus settlement, and 64 concurrent admissions
//! of 8 users, which the store counts in one batch, settled and flushed.
//! `cargo bench -p gw-store`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use futures_util::future::join_all;
use gateway_core::{
    Accounting, Admission, Amount, Modality, Outcome, RequestTags, RouteId, TokenUsage, UsageRecord,
};
use gw_store::{Plans, Store};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::runtime::Runtime;

fn admission(user_id: &str, request_id: &str) -> Admission {
    Admission {
        request_id: request_id.into(),
        user_id: user_id.into(),
        route: RouteId::new("gemini", "gemini-2.5-flash"),
        modality: Modality::Text,
        operation: "chat",
        estimate: Amount::new(1_000, 0, None),
        open_output: None,
        priced: true,
    }
}

fn record(user_id: &str, request_id: &str) -> UsageRecord {
    UsageRecord {
        request_id: request_id.into(),
        user_id: user_id.into(),
        route: RouteId::new("gemini", "gemini-2.5-flash"),
        modality: Modality::Text,
        operation: "chat",
        outcome: Outcome::Ok,
        tokens: TokenUsage {
            input_tokens: 12,
            output_tokens: 30,
            ..TokenUsage::default()
        },
        units: 0,
        cost: Some("0.000081".parse().expect("a decimal cost")),
        pricing_version: "bench".into(),
        estimated: false,
        billable: true,
        latency: Duration::from_millis(3),
        time_to_first_token: None,
        retries: 0,
        cached: None,
        attempts: Vec::new(),
        tags: RequestTags::default(),
    }
}

fn plan_check(c: &mut Criterion) {
    let plans = Plans::builtin();
    let plan = plans.require("pro").expect("the built-in plans have `pro`");
    let admission = admission("usr_bench", "req-1");
    c.bench_function("plan_check", |b| {
        b.iter(|| plan.check(black_box(&admission)))
    });
}

/// The database benchmarks on the store at `url`, as group `name`.
fn on_database(c: &mut Criterion, runtime: &Runtime, name: &str, url: &str) {
    let (store, users, key) = runtime.block_on(async {
        let store = Store::connect(url).await.expect("the database opens");
        let mut users = Vec::new();
        for i in 0..8 {
            let user = store
                .create_user(&format!("bench-{i}"), "enterprise")
                .await
                .expect("a user");
            users.push(user.id);
        }
        let (_, key) = store.create_key(&users[0], "bench").await.expect("a key");
        (store, users, key.expose().to_owned())
    });

    let mut group = c.benchmark_group(name);
    group.bench_function("authenticate", |b| {
        b.iter(|| runtime.block_on(store.authenticate(black_box(&key))))
    });
    let mut n = 0u64;
    group.bench_function("admit_and_settle", |b| {
        b.iter(|| {
            n += 1;
            let id = format!("req-{n}");
            let user_id = &users[0];
            runtime.block_on(async {
                let reservation = store
                    .admit(admission(user_id, &id))
                    .await
                    .expect("admitted");
                store
                    .settle(reservation, record(user_id, &id))
                    .await
                    .expect("settled");
            })
        })
    });
    admit_concurrently(&mut group, runtime, &store, &users, &mut n);
    group.finish();
    runtime.block_on(store.close());
}

/// 64 admissions at once, of 8 users in turn, which the store counts in one batch; settled and
/// flushed.
fn admit_concurrently(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    store: &Store,
    users: &[String],
    n: &mut u64,
) {
    group.bench_function("admit_64_concurrent_and_settle", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let ids: Vec<(String, String)> = (0..64)
                    .map(|i| {
                        *n += 1;
                        (users[i % users.len()].clone(), format!("req-{n}"))
                    })
                    .collect();
                let admitted =
                    join_all(ids.iter().map(|(u, id)| store.admit(admission(u, id)))).await;
                for ((u, id), reservation) in ids.iter().zip(admitted) {
                    let reservation = reservation.expect("admitted");
                    store
                        .settle(reservation, record(u, id))
                        .await
                        .expect("settled");
                }
                store.flush().await;
            })
        })
    });
}

fn sqlite(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = std::env::temp_dir().join(format!("gw-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    on_database(c, &runtime, "sqlite", &url);
    let _ = std::fs::remove_dir_all(&dir);
}

fn postgres(c: &mut Criterion) {
    let Some(admin_url) = std::env::var("GATEWAY_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: GATEWAY_TEST_POSTGRES_URL is not set (the PostgreSQL benchmarks)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let db = format!("gw_store_bench_{}", std::process::id());
    let admin = |sql: String| {
        runtime.block_on(async {
            let mut conn = PgConnection::connect(&admin_url).await.expect("PostgreSQL");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("admin SQL");
        })
    };
    admin(format!("CREATE DATABASE \"{db}\""));
    // The admin URL with the bench database in place of its own.
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url.as_str(), ""), |(b, q)| (b, q));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    on_database(c, &runtime, "postgres", &format!("{base}/{db}{query}"));
    admin(format!("DROP DATABASE \"{db}\" WITH (FORCE)"));
}

criterion_group!(benches, plan_check, sqlite, postgres);
criterion_main!(benches);
