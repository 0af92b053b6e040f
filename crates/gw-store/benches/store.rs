//! Micro-benchmarks of the store's hot paths: the in-memory plan check, and on a SQLite file the
//! key lookup and one request's admission plus settlement (the usage-row write).
//! `cargo bench -p gw-store`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gateway_core::{Accounting, Admission, Amount, Modality, Outcome, TokenUsage, UsageRecord};
use gw_store::{Plans, Store};

fn admission(user_id: &str, request_id: &str) -> Admission {
    Admission {
        request_id: request_id.into(),
        user_id: user_id.into(),
        provider: "gemini",
        model: "gemini-2.5-flash".into(),
        modality: Modality::Text,
        operation: "chat",
        estimate: Amount {
            requests: 1,
            tokens: 1_000,
            units: 0,
            cost: None,
        },
        max_tokens: Some(900),
        output_price: None,
        priced: true,
    }
}

fn record(user_id: &str, request_id: &str) -> UsageRecord {
    UsageRecord {
        request_id: request_id.into(),
        user_id: user_id.into(),
        provider: "gemini",
        model: "gemini-2.5-flash".into(),
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
        cached: false,
        attempts: Vec::new(),
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

fn sqlite(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = std::env::temp_dir().join(format!("gw-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let (store, user_id, key) = runtime.block_on(async {
        let store = Store::connect(&url).await.expect("SQLite opens");
        let user = store
            .create_user("bench", "enterprise")
            .await
            .expect("a user");
        let (_, key) = store.create_key(&user.id, "bench").await.expect("a key");
        (store, user.id, key.expose().to_owned())
    });

    let mut group = c.benchmark_group("sqlite");
    group.bench_function("authenticate", |b| {
        b.iter(|| runtime.block_on(store.authenticate(black_box(&key))))
    });
    let mut n = 0u64;
    group.bench_function("admit_and_settle", |b| {
        b.iter(|| {
            n += 1;
            let id = format!("req-{n}");
            runtime.block_on(async {
                let reservation = store
                    .admit(admission(&user_id, &id))
                    .await
                    .expect("admitted");
                store
                    .settle(reservation, record(&user_id, &id))
                    .await
                    .expect("settled");
            })
        })
    });
    group.finish();
    runtime.block_on(store.close());
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, plan_check, sqlite);
criterion_main!(benches);
