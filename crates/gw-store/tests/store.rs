//! The gw-store suite: every test runs on SQLite and, with `GATEWAY_TEST_POSTGRES_URL`, on
//! PostgreSQL (see `common`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use gateway_core::{
    Accounting, Amount, CacheHit, ErrorKind, Modality, Outcome, RequestTags, Reservation,
};
use gw_store::{
    Backend, Counter, LogFilter, LogTotals, Maintenance, Plans, RECOVERED, SCHEMA_VERSION, Store,
    StoreOptions, is_well_formed_key,
};
use sqlx::{AssertSqlSafe, Row};

async fn user(store: &Store, plan: &str) -> String {
    store.create_user(&unique("user"), plan).await.unwrap().id
}

#[tokio::test]
async fn placeholders_work_on_sqlite_through_any() {
    // Most statements of the crate are one `$1` text for both databases; SQLite takes `$NNN`
    // as a parameter named by its number, which sqlx maps to the N-th bound value. Multi-row
    // statements use plain `?`s on SQLite, bound in order (named ones cost it k² steps).
    let db = TestDb::sqlite();
    let _store = db.store().await; // creates the file
    let pool = db.raw().await;
    let row = sqlx::query("SELECT $2 AS b, $1 AS a, $2 + $1 AS sum")
        .bind(40i64)
        .bind(2i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    let (b, a, sum): (i64, i64, i64) = (row.get("b"), row.get("a"), row.get("sum"));
    assert_eq!((b, a, sum), (2, 40, 42));
    let row = sqlx::query("SELECT ? AS a, ? AS b")
        .bind(40i64)
        .bind(2i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((row.get::<i64, _>("a"), row.get::<i64, _>("b")), (40, 2));
}

#[tokio::test]
async fn a_large_batch_of_settlements_is_written_whole() {
    // 90 settlements queued before the writer runs: written as one batch in multi-row
    // statements of 64, 16, 4 and 1 rows, tags and summary included.
    on_each_backend(|db| async move {
        let store = db.store().await;
        let (u, v) = (
            user(&store, "enterprise").await,
            user(&store, "enterprise").await,
        );
        let mut settlements = Vec::new();
        let mut period = String::new();
        for i in 0..90u64 {
            let who = if i % 3 == 0 { &v } else { &u };
            let model = if i % 2 == 0 {
                "gemini-2.5-flash"
            } else {
                "gemini-2.5-pro"
            };
            let a = text(who, "gemini", model, 100, Some("0.001"));
            let r = store.admit(a.clone()).await.unwrap();
            period = period_of(&r);
            let mut rec = record(&a, i, 2 * i, Some("0.000001"));
            if i % 5 == 0 {
                rec.tags
                    .metadata
                    .insert("batch".into(), format!("b{}", i % 2));
                rec.tags.metadata.insert("env".into(), "test".into());
            }
            settlements.push((r, rec));
        }
        for (r, rec) in settlements {
            store.settle(r, rec).await.unwrap();
        }
        store.flush().await;
        assert_eq!(store.open_reservations().await.unwrap(), 0);

        // By user and model: i over the matching rows.
        let expect = |who_v: bool, flash: bool| {
            let rows: Vec<u64> = (0..90u64)
                .filter(|i| (i % 3 == 0) == who_v && (i % 2 == 0) == flash)
                .collect();
            let n = rows.len() as u64;
            let sum: u64 = rows.iter().sum();
            (n, sum, 2 * sum, n)
        };
        for (who, is_v) in [(&u, false), (&v, true)] {
            let summary = store.usage_summary(who, &period).await.unwrap();
            assert_eq!(summary.len(), 2);
            for row in summary {
                let flash = row.model == "gemini-2.5-flash";
                assert_eq!(
                    (
                        row.requests,
                        row.input_tokens,
                        row.output_tokens,
                        row.cost.nanos() / 1_000
                    ),
                    expect(is_v, flash),
                    "{who} {}",
                    row.model
                );
            }
            let log = store.usage_log(Some(who), 1000).await.unwrap();
            assert_eq!(log.len(), if is_v { 30 } else { 60 });
            let counters = store.counters(who, &period).await.unwrap();
            let tokens: u64 = log.iter().map(|r| r.tokens.total_tokens()).sum();
            assert_eq!(counters.get(Counter::TextTokens), tokens);
        }
        // Every tag row written: rows 0, 10, ... 80 carry `batch = b0`, 5, 15, ... `b1`.
        for (tag, n) in [("b0", 9), ("b1", 9)] {
            let filter = LogFilter {
                metadata: vec![("batch".into(), tag.into()), ("env".into(), "test".into())],
                ..LogFilter::default()
            };
            let rows = store.usage_log_where(&filter, 100).await.unwrap();
            assert_eq!(rows.len(), n, "{tag}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_batch_wider_than_the_largest_statement_is_written_whole() {
    // 600 settlements, each of its own model (so 600 summary rows) and tagged (600 tag rows),
    // queued before the writer runs: every table gets a statement of the largest chunk (512
    // rows, 15,360 parameters for the log, within both databases' limits) and the smaller ones.
    on_each_backend(|db| async move {
        let store = db.store().await;
        let who = user(&store, "enterprise").await;
        let mut settlements = Vec::new();
        for i in 0..600u64 {
            let a = text(&who, "gemini", &format!("m{i:03}"), 100, Some("0.001"));
            let r = store.admit(a.clone()).await.unwrap();
            let mut rec = record(&a, i, 1, Some("0.000001"));
            rec.tags.metadata.insert("wide".into(), format!("t{i}"));
            settlements.push((r, rec));
        }
        let period = period_of(&settlements[0].0);
        for (r, rec) in settlements {
            store.settle(r, rec).await.unwrap();
        }
        store.flush().await;
        assert_eq!(store.open_reservations().await.unwrap(), 0);

        let log = store.usage_log(Some(&who), 1000).await.unwrap();
        assert_eq!(log.len(), 600, "one usage row a request");
        let summary = store.usage_summary(&who, &period).await.unwrap();
        assert_eq!(summary.len(), 600, "one summary row a model");
        for row in &summary {
            let i: u64 = row.model[1..].parse().unwrap();
            assert_eq!((row.requests, row.input_tokens), (1, i), "{}", row.model);
        }
        let counters = store.counters(&who, &period).await.unwrap();
        assert_eq!(counters.get(Counter::TextRequests), 600);
        assert_eq!(
            counters.get(Counter::TextTokens),
            (0..600).sum::<u64>() + 600
        );
        for i in [0, 511, 512, 599] {
            let filter = LogFilter {
                metadata: vec![("wide".into(), format!("t{i}"))],
                ..LogFilter::default()
            };
            let rows = store.usage_log_where(&filter, 10).await.unwrap();
            assert_eq!(rows.len(), 1, "tag t{i}");
            assert_eq!(rows[0].tokens.input_tokens, i);
        }
    })
    .await;
}

#[tokio::test]
async fn migrations_are_idempotent() {
    on_each_backend(|db| async move {
        let first = db.store().await;
        let second = db.store().await; // connecting again applies nothing
        second.migrate().await.unwrap();
        first.migrate().await.unwrap();
        assert_eq!(first.schema_version().await.unwrap(), SCHEMA_VERSION);
        let pool = db.raw().await;
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(applied, SCHEMA_VERSION, "{:?}", db.backend);
        if db.backend == Backend::Sqlite {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
        }
        // Data survives reconnecting.
        let id = user(&first, "free").await;
        let third = db.store().await;
        assert!(third.get_user(&id).await.unwrap().is_some());
    })
    .await;
}

#[test]
fn plan_file_errors_name_file_and_field() {
    let base = "[plans.p]\nallow = [\"*\"]\n";
    let cases = [
        (
            "[plans.p.text]\nrequests = -1",
            "plans.p.text.requests",
            "-1",
        ),
        ("[plans.p.text]\ntokens = 1.5", "plans.p.text.tokens", "1.5"),
        (
            "[plans.p.image]\nunits = \"ten\"",
            "plans.p.image.units",
            "ten",
        ),
        (
            "[plans.p.image]\ntokens = 10",
            "plans.p.image.tokens",
            "only text",
        ),
        ("[plans.p.text]\nunits = 10", "plans.p.text.units", "tokens"),
        (
            "default_max_tokens = -5",
            "plans.p.default_max_tokens",
            "-5",
        ),
        ("cost_usd = \"-1\"", "plans.p.cost_usd", "-1"),
        ("cost_usd = 2.5", "plans.p.cost_usd", "decimal string"),
        ("period = \"week\"", "plans.p.period", "week"),
    ];
    for (extra, field, detail) in cases {
        let text = format!("{base}{extra}\n");
        let err = Plans::parse("plans.toml", &text).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config, "{text}");
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("plans.toml: {field}: ")), "{msg}");
        assert!(msg.contains(detail), "{msg}");
    }
    // Unknown fields and modalities are refused by name.
    for (text, name) in [
        ("[plans.p]\nallow = [\"*\"]\nrequests = 5\n", "requests"),
        (
            "[plans.p]\nallow = [\"*\"]\n[plans.p.smell]\nrequests = 5\n",
            "smell",
        ),
        (
            "[plans.p]\nallow = [\"*\"]\n[plans.p.text]\nrequest = 5\n",
            "request",
        ),
    ] {
        let msg = Plans::parse("custom.toml", text).unwrap_err().to_string();
        assert!(msg.starts_with("custom.toml: "), "{msg}");
        assert!(msg.contains(name), "{msg}");
    }
    assert!(Plans::parse("plans.toml", "").is_err());

    // Loading a file names its path.
    let dir = std::env::temp_dir().join(unique("gw-store-plans"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("my-plans.toml");
    std::fs::write(
        &path,
        "[plans.x]\nallow = []\n[plans.x.search]\nrequests = -3\n",
    )
    .unwrap();
    let msg = Plans::load(&path).unwrap_err().to_string();
    assert!(
        msg.contains("my-plans.toml: plans.x.search.requests"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn users_and_keys() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let name = unique("alice");
        let alice = store.create_user(&name, "free").await.unwrap();
        assert!(alice.id.starts_with("usr_"));

        // Bad input: a clear error, and nothing changes.
        let err = store.create_user(&unique("bob"), "gold").await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert!(err.message().contains("unknown plan `gold`"), "{err}");
        assert!(
            err.message().contains("enterprise, free, metered, pro"),
            "{err}"
        );
        let err = store.create_user(&name, "pro").await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert!(err.message().contains("already exists"), "{err}");
        assert!(store.create_user("", "pro").await.is_err());
        assert_eq!(store.list_users().await.unwrap().len(), 1);
        assert_eq!(
            store.set_plan(&alice.id, "gold").await.unwrap_err().kind(),
            &ErrorKind::InvalidRequest
        );
        assert_eq!(
            store
                .set_plan("usr_nobody", "pro")
                .await
                .unwrap_err()
                .kind(),
            &ErrorKind::NotFound
        );
        assert_eq!(store.set_plan(&alice.id, "pro").await.unwrap().plan, "pro");
        assert_eq!(
            store.get_user_by_name(&name).await.unwrap().unwrap().plan,
            "pro"
        );

        let (info, plaintext) = store.create_key(&alice.id, "laptop").await.unwrap();
        let plaintext = plaintext.expose().to_owned();
        assert!(is_well_formed_key(&plaintext), "{plaintext}");
        assert_eq!(plaintext.len(), 43);
        assert!(plaintext.starts_with(&info.prefix) && info.prefix.len() < 12);
        assert!(!info.is_revoked());
        let who = store.authenticate(&plaintext).await.unwrap().unwrap();
        assert_eq!(
            (
                who.user_id.as_str(),
                who.name.as_str(),
                who.plan.as_str(),
                who.key_id.as_str()
            ),
            (alice.id.as_str(), name.as_str(), "pro", info.id.as_str())
        );

        // Only the hash is stored: the key is nowhere in the table.
        let pool = db.raw().await;
        let rows = sqlx::query("SELECT id, user_id, name, prefix, key_hash FROM api_keys")
            .fetch_all(&pool)
            .await
            .unwrap();
        let secret = &plaintext[3..];
        for row in &rows {
            for col in 0..5 {
                let value: String = row.get(col);
                assert!(!value.contains(secret), "column {col} holds the key");
            }
            assert_eq!(row.get::<String, _>("key_hash").len(), 64);
        }

        // A second key; revoking the first leaves the second working.
        let (_, other) = store.create_key(&alice.id, "ci").await.unwrap();
        store.revoke_key(&info.id).await.unwrap();
        store.revoke_key(&info.id).await.unwrap(); // again: no change, no error
        assert_eq!(store.authenticate(&plaintext).await.unwrap(), None);
        assert!(store.authenticate(other.expose()).await.unwrap().is_some());
        let keys = store.list_keys(&alice.id).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().find(|k| k.id == info.id).unwrap().is_revoked());
        assert_eq!(
            store.revoke_key("key_unknown").await.unwrap_err().kind(),
            &ErrorKind::NotFound
        );
        assert_eq!(
            store
                .create_key("usr_nobody", "x")
                .await
                .unwrap_err()
                .kind(),
            &ErrorKind::NotFound
        );

        // Unknown and malformed keys fail; a malformed one without touching the database,
        // which a closed pool proves.
        let mut unknown = plaintext.clone();
        unknown.replace_range(10..11, if &plaintext[10..11] == "a" { "b" } else { "a" });
        assert_eq!(store.authenticate(&unknown).await.unwrap(), None);
        store.close().await;
        for malformed in [
            "",
            "gw_short",
            "Bearer gw_x",
            &format!("{plaintext}x"),
            "sk-abc",
        ] {
            assert_eq!(
                store.authenticate(malformed).await.unwrap(),
                None,
                "{malformed}"
            );
        }
        assert_eq!(
            store.authenticate(&unknown).await.unwrap_err().kind(),
            &ErrorKind::Unavailable
        );
    })
    .await;
}

#[tokio::test]
async fn admit_settle_and_release_arithmetic() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await;

        // Admission reserves the estimate.
        let a = text(&u, "gemini", "gemini-2.5-flash", 300, Some("0.003"));
        let r = store.admit(a.clone()).await.unwrap();
        let period = period_of(&r);
        assert_eq!(r.estimate, a.estimate);
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 1);
        assert_eq!(c.get(Counter::TextTokens), 300);
        assert_eq!(c.cost(), cost("0.003"));
        assert_eq!(store.open_reservations().await.unwrap(), 1);

        // Settling replaces it with the real usage.
        store
            .settle(r, record(&a, 40, 80, Some("0.0012")))
            .await
            .unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 1);
        assert_eq!(c.get(Counter::TextTokens), 120);
        assert_eq!(c.cost(), cost("0.0012"));
        assert_eq!(store.open_reservations().await.unwrap(), 0);

        // Usage above the estimate is charged in full.
        let a2 = text(&u, "gemini", "gemini-2.5-flash", 10, Some("0.0001"));
        let r2 = store.admit(a2.clone()).await.unwrap();
        store
            .settle(r2, record(&a2, 30, 20, Some("0.0005")))
            .await
            .unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 2);
        assert_eq!(c.get(Counter::TextTokens), 170);
        assert_eq!(c.cost(), cost("0.0017"));

        // A call that failed before the provider did any work releases everything.
        let a3 = text(&u, "gemini", "gemini-2.5-flash", 500, Some("0.01"));
        let r3 = store.admit(a3.clone()).await.unwrap();
        assert_eq!(
            store
                .counters(&u, &period)
                .await
                .unwrap()
                .get(Counter::TextRequests),
            3
        );
        store.settle(r3.clone(), failed(&a3)).await.unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 2);
        assert_eq!(c.get(Counter::TextTokens), 170);
        assert_eq!(c.cost(), cost("0.0017"));

        // Settling twice changes nothing the second time.
        store
            .settle(r3, record(&a3, 999, 999, Some("1")))
            .await
            .unwrap();
        store.flush().await;
        assert_eq!(store.counters(&u, &period).await.unwrap(), c);

        let log = store.usage_log(Some(&u), 10).await.unwrap();
        assert_eq!(log.len(), 3);
        let newest = &log[0];
        assert_eq!(newest.request_id, a3.request_id);
        assert_eq!(newest.status, "upstream");
        assert_eq!(
            newest.error_message.as_deref(),
            Some("503 from the provider")
        );
        assert!(!newest.billable);
        assert_eq!(newest.retries, 2);
        let first = &log[2];
        assert_eq!(first.request_id, a.request_id);
        assert_eq!(first.status, "ok");
        assert_eq!(first.tokens.input_tokens, 40);
        assert_eq!(first.tokens.output_tokens, 80);
        assert_eq!(first.tokens.reasoning_tokens, 20);
        assert_eq!(first.tokens.cached_input_tokens, 20);
        assert_eq!(first.cost, Some(cost("0.0012")));
        assert_eq!(first.pricing_version.as_deref(), Some("test-catalog-1"));
        assert_eq!(first.latency, Some(Duration::from_millis(250)));
        assert_eq!(first.time_to_first_token, Some(Duration::from_millis(40)));
        assert_eq!(first.period, period);

        // Media counts units, not tokens.
        let m = media(&u, "gemini", "imagen", Modality::Image, 2);
        let rm = store.admit(m.clone()).await.unwrap();
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::ImageRequests), 1);
        assert_eq!(c.get(Counter::ImageUnits), 2);
        let mut done = record(&m, 0, 0, Some("0.02"));
        done.units = 1;
        store.settle(rm, done).await.unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::ImageUnits), 1);
        assert_eq!(c.cost(), cost("0.0217"));
    })
    .await;
}

#[tokio::test]
async fn plan_refusals_are_permission_denied() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let free = user(&store, "free").await;

        let err = store
            .admit(media(&free, "wavespeed", "kling-v2", Modality::Video, 5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied);
        assert!(err.message().contains("does not include video"), "{err}");

        let err = store
            .admit(text(&free, "gemini", "gemini-2.5-pro", 10, Some("0.001")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied);
        assert!(
            err.message()
                .contains("does not allow model `gemini/gemini-2.5-pro`"),
            "{err}"
        );

        // The allowed model goes through.
        store
            .admit(text(&free, "gemini", "gemini-2.5-flash", 10, Some("0.001")))
            .await
            .unwrap();

        let err = store
            .admit(text(
                "usr_nobody",
                "gemini",
                "gemini-2.5-flash",
                1,
                Some("0"),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied);

        // Nothing was counted for the refusals.
        let period = store.plans().require("free").unwrap().current_period();
        let c = store.counters(&free, &period).await.unwrap();
        assert_eq!(c.get(Counter::VideoRequests), 0);
        assert_eq!(c.get(Counter::TextRequests), 1);
    })
    .await;
}

#[tokio::test]
async fn unpriced_models() {
    on_each_backend(|db| async move {
        let store = db.store().await;

        // A capped plan that does not allow unpriced models refuses them, saying why.
        let pro = user(&store, "pro").await;
        let err = store
            .admit(text(&pro, "hf", "some/new-model", 10, None))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied);
        assert!(err.message().contains("has no price"), "{err}");
        assert!(err.message().contains("hf/some/new-model"), "{err}");

        // Enterprise serves them, logged with an unknown cost.
        let ent = user(&store, "enterprise").await;
        let a = text(&ent, "hf", "some/new-model", 10, None);
        let r = store.admit(a.clone()).await.unwrap();
        let period = period_of(&r);
        store.settle(r, record(&a, 5, 7, None)).await.unwrap();
        store.flush().await;
        let row = &store.usage_log(Some(&ent), 1).await.unwrap()[0];
        assert_eq!(row.cost, None);
        let summary = store.usage_summary(&ent, &period).await.unwrap();
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].unpriced, 1);
        assert_eq!(summary[0].cost, cost("0"));
        let c = store.counters(&ent, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextTokens), 12);
        assert_eq!(c.cost(), cost("0"));
    })
    .await;
}

#[tokio::test]
async fn recovery_settles_a_dead_instances_reservations() {
    on_each_backend(|db| async move {
        let survivor = db.store().await;
        let u = user(&survivor, "metered").await;

        // A process admits two requests and dies without settling.
        let dead = db.store().await;
        let a = text(&u, "gemini", "gemini-2.5-flash", 400, Some("0.004"));
        let r = dead.admit(a.clone()).await.unwrap();
        let b = media(&u, "gemini", "imagen", Modality::Image, 2);
        dead.admit(b.clone()).await.unwrap();
        dead.close().await;
        drop(dead);

        // A live process's reservation must survive recovery.
        let live = db.store().await;
        let l = text(&u, "gemini", "gemini-2.5-flash", 50, Some("0.0005"));
        let lr = live.admit(l.clone()).await.unwrap();
        // And so must the survivor's own.
        let own = survivor
            .admit(text(&u, "gemini", "gemini-2.5-flash", 60, Some("0.0006")))
            .await
            .unwrap();

        let period = period_of(&r);
        let before = survivor.counters(&u, &period).await.unwrap();
        // The dead instance's last heartbeat is 400 ms old, the live one's fresh.
        let stale_after = Duration::from_millis(300);
        tokio::time::sleep(Duration::from_millis(400)).await;
        live.heartbeat().await.unwrap();
        let recovered = survivor.recover_stale(stale_after).await.unwrap();
        assert_eq!(recovered, 2);
        assert_eq!(survivor.open_reservations().await.unwrap(), 2);
        // The estimates stay counted.
        assert_eq!(survivor.counters(&u, &period).await.unwrap(), before);

        let log = survivor.usage_log(Some(&u), 10).await.unwrap();
        assert_eq!(log.len(), 2);
        let text_row = log
            .iter()
            .find(|row| row.request_id == a.request_id)
            .unwrap();
        assert_eq!(text_row.status, RECOVERED);
        assert!(text_row.estimated);
        assert_eq!(text_row.reservation_id.as_deref(), Some(r.id.as_str()));
        assert_eq!(text_row.tokens.input_tokens, 400);
        assert_eq!(text_row.cost, Some(cost("0.004")));
        assert_eq!(text_row.cached, None);
        assert!(
            text_row
                .error_message
                .as_deref()
                .unwrap()
                .contains("stopped")
        );
        let image_row = log
            .iter()
            .find(|row| row.request_id == b.request_id)
            .unwrap();
        assert_eq!((image_row.modality, image_row.units), (Modality::Image, 2));

        // Nothing left to recover. The text request's settlement arrives after all (its
        // instance was cut off, not dead): it replaces the recovered row, counters and summary
        // move from the estimate to what was used, and a second settlement changes nothing.
        live.heartbeat().await.unwrap();
        assert_eq!(survivor.recover_stale(stale_after).await.unwrap(), 0);
        let summary_of = |rows: Vec<gw_store::SummaryRow>| {
            rows.into_iter()
                .find(|s| s.model == "gemini-2.5-flash")
                .map(|s| {
                    (
                        s.requests,
                        s.input_tokens,
                        s.output_tokens,
                        s.cost,
                        s.estimated,
                    )
                })
                .unwrap()
        };
        assert_eq!(
            summary_of(survivor.usage_summary(&u, &period).await.unwrap()),
            (1, 400, 0, cost("0.004"), 1)
        );
        for _ in 0..2 {
            survivor
                .settle(r.clone(), record(&a, 30, 12, Some("0.0007")))
                .await
                .unwrap();
            survivor.flush().await;
        }
        let after = survivor.counters(&u, &period).await.unwrap();
        assert_eq!(
            after.get(Counter::TextTokens),
            before.get(Counter::TextTokens) - 400 + 42
        );
        assert_eq!(
            after.cost().nanos(),
            before.cost().nanos() - cost("0.004").nanos() + cost("0.0007").nanos()
        );
        let log = survivor.usage_log(Some(&u), 10).await.unwrap();
        assert_eq!(log.len(), 2, "still one row per request");
        let text_row = log
            .iter()
            .find(|row| row.request_id == a.request_id)
            .unwrap();
        assert_eq!(text_row.status, "ok");
        assert!(!text_row.estimated);
        assert_eq!(text_row.reservation_id.as_deref(), Some(r.id.as_str()));
        assert_eq!(
            (text_row.tokens.input_tokens, text_row.tokens.output_tokens),
            (30, 12)
        );
        assert_eq!(
            summary_of(survivor.usage_summary(&u, &period).await.unwrap()),
            (1, 30, 12, cost("0.0007"), 0)
        );

        // The live instance settles normally.
        live.settle(lr, record(&l, 10, 10, Some("0.0001")))
            .await
            .unwrap();
        live.flush().await;

        // Abandoned reservations (a failed settle in a live process) are recovered too, own
        // ones included.
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            survivor
                .recover_abandoned(Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            survivor
                .recover_abandoned(Duration::from_millis(20))
                .await
                .unwrap(),
            1
        );
        assert_eq!(survivor.open_reservations().await.unwrap(), 0);
        let row = &survivor.usage_log(Some(&u), 1).await.unwrap()[0];
        assert_eq!(row.reservation_id.as_deref(), Some(own.id.as_str()));
        assert_eq!(row.status, RECOVERED);
    })
    .await;
}

#[tokio::test]
async fn maintenance_runs_recovery() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await;
        let dead = db.store().await;
        dead.admit(text(&u, "gemini", "gemini-2.5-flash", 10, Some("0")))
            .await
            .unwrap();
        dead.close().await;

        let bad = Maintenance {
            every: Duration::from_secs(10),
            stale_after: Duration::from_secs(15),
            ..Maintenance::default()
        };
        assert_eq!(
            store.spawn_maintenance(bad).unwrap_err().kind(),
            &ErrorKind::InvalidRequest
        );
        let task = store
            .spawn_maintenance(Maintenance {
                every: Duration::from_millis(20),
                stale_after: Duration::from_millis(50),
                ..Maintenance::default()
            })
            .unwrap();
        let mut waited = Duration::ZERO;
        while store.open_reservations().await.unwrap() > 0 {
            assert!(
                waited < Duration::from_secs(10),
                "maintenance never recovered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        task.abort();
        assert_eq!(
            store.usage_log(Some(&u), 5).await.unwrap()[0].status,
            RECOVERED
        );
    })
    .await;
}

#[tokio::test]
async fn summary_matches_the_log() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "enterprise").await;
        let v = user(&store, "enterprise").await;
        let mut period = String::new();
        let models = [
            ("gemini", "gemini-2.5-flash"),
            ("gemini", "gemini-2.5-pro"),
            ("hf", "x/y"),
        ];
        for i in 0..12u64 {
            let who = if i % 3 == 0 { &v } else { &u };
            let (provider, model) = models[(i % 3) as usize];
            let price = (i % 4 != 0).then_some("0.000123");
            let a = if i % 5 == 0 {
                media(who, provider, model, Modality::Image, 2)
            } else {
                text(who, provider, model, 100, price)
            };
            let r = store.admit(a.clone()).await.unwrap();
            period = period_of(&r);
            let mut rec = match i % 6 {
                1 => failed(&a),
                2 => {
                    let mut rec = record(&a, 30, 20, price);
                    rec.estimated = true;
                    rec.outcome = Outcome::Failed {
                        kind: "stream_interrupted".into(),
                        message: "client went away".into(),
                    };
                    rec
                }
                _ => record(&a, 10 + i, 5 * i, price),
            };
            if a.modality == Modality::Image {
                rec.units = 2;
            }
            if i == 11 {
                // Row 11 goes past its reservation of 100 tokens.
                rec.tokens.output_tokens = 150;
            }
            if i % 6 == 3 {
                // Rows 3 and 9: answered from the cache, one of them by meaning.
                rec.cached = Some(CacheHit {
                    semantic: i == 9,
                    saved: price.map(cost),
                });
            }
            store.settle(r, rec).await.unwrap();
            store.flush().await;
        }
        // One recovered row as well.
        let dead = db.store().await;
        dead.admit(text(&u, "gemini", "gemini-2.5-flash", 77, Some("0.5")))
            .await
            .unwrap();
        dead.close().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            store
                .recover_stale(Duration::from_millis(10))
                .await
                .unwrap(),
            1
        );

        // Sum the log by hand and compare with the summary kept by the upserts.
        type Key = (String, String, String, Modality);
        let mut sums: BTreeMap<Key, [u64; 13]> = BTreeMap::new();
        for row in store.usage_log(None, 1000).await.unwrap() {
            let s = sums
                .entry((
                    row.user_id.clone(),
                    row.provider.clone(),
                    row.model.clone(),
                    row.modality,
                ))
                .or_default();
            let error = row.status != "ok" && row.status != RECOVERED;
            for (slot, v) in s.iter_mut().zip([
                1,
                u64::from(error),
                row.tokens.input_tokens,
                row.tokens.output_tokens,
                row.tokens.cached_input_tokens,
                row.tokens.reasoning_tokens,
                row.units,
                row.cost.map_or(0, |c| c.nanos()),
                u64::from(row.cost.is_none()),
                u64::from(row.estimated),
                u64::from(row.cached.is_some()),
                row.cost_saved().map_or(0, |c| c.nanos()),
                u64::from(row.over_reservation),
            ]) {
                *slot += v;
            }
        }
        let mut summary = store.usage_summary_all(&period).await.unwrap();
        let mut mine = store.usage_summary(&u, &period).await.unwrap();
        mine.extend(store.usage_summary(&v, &period).await.unwrap());
        summary.sort_by(|a, b| {
            (&a.user_id, &a.provider, &a.model).cmp(&(&b.user_id, &b.provider, &b.model))
        });
        mine.sort_by(|a, b| {
            (&a.user_id, &a.provider, &a.model).cmp(&(&b.user_id, &b.provider, &b.model))
        });
        assert_eq!(summary, mine);
        let kept: BTreeMap<Key, [u64; 13]> = summary
            .iter()
            .map(|s| {
                (
                    (
                        s.user_id.clone(),
                        s.provider.clone(),
                        s.model.clone(),
                        s.modality,
                    ),
                    [
                        s.requests,
                        s.errors,
                        s.input_tokens,
                        s.output_tokens,
                        s.cached_input_tokens,
                        s.reasoning_tokens,
                        s.units,
                        s.cost.nanos(),
                        s.unpriced,
                        s.estimated,
                        s.cached_requests,
                        s.cost_saved.nanos(),
                        s.over_reservation,
                    ],
                )
            })
            .collect();
        assert_eq!(kept, sums);
        assert_eq!(kept.values().map(|s| s[0]).sum::<u64>(), 13);
        assert!(kept.values().any(|s| s[1] > 0 && s[8] > 0 && s[9] > 0));
        assert_eq!(kept.values().map(|s| s[10]).sum::<u64>(), 2);
        assert_eq!(kept.values().map(|s| s[11]).sum::<u64>(), 2 * 123_000);
        assert_eq!(kept.values().map(|s| s[12]).sum::<u64>(), 1);

        // The log reads newest first and honours the limit.
        let log = store.usage_log(None, 5).await.unwrap();
        assert_eq!(log.len(), 5);
        assert!(
            log.windows(2)
                .all(|w| (w[0].created_at, w[0].id) >= (w[1].created_at, w[1].id))
        );
    })
    .await;
}

/// A request answered from the response cache is settled like any other (the gateway admits it
/// and settles a record with no tokens and cost 0): its log row says how the answer was found and
/// what it saved, the summary and the log totals count it and add up the savings, and it counts
/// one request against the plan when the operator counts hits (`billable`), none otherwise.
#[tokio::test]
async fn cache_hits_are_logged_summed_and_counted() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await;
        let flash = |tokens| text(&u, "gemini", "gemini-2.5-flash", tokens, Some("0.001"));

        // The call whose answer is cached.
        let a = flash(100);
        let r = store.admit(a.clone()).await.unwrap();
        let period = period_of(&r);
        store
            .settle(r, record(&a, 40, 60, Some("0.0004")))
            .await
            .unwrap();
        store.flush().await;
        let before = store.counters(&u, &period).await.unwrap();
        assert_eq!(before.get(Counter::TextRequests), 1);

        // An exact hit the plan counts: one more request, no tokens, no cost.
        let exact = flash(100);
        let r = store.admit(exact.clone()).await.unwrap();
        store
            .settle(r, cache_hit(&exact, false, Some("0.0004"), true))
            .await
            .unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 2);
        assert_eq!(c.get(Counter::TextTokens), 100);
        assert_eq!(c.cost(), cost("0.0004"));

        // A semantic hit the plan does not count: nothing counted, its reservation released.
        let semantic = flash(100);
        let r = store.admit(semantic.clone()).await.unwrap();
        store
            .settle(r, cache_hit(&semantic, true, Some("0.0002"), false))
            .await
            .unwrap();
        // A counted hit of an answer that was not priced saves nothing known.
        let unpriced = flash(100);
        let r = store.admit(unpriced.clone()).await.unwrap();
        store
            .settle(r, cache_hit(&unpriced, false, None, true))
            .await
            .unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 3);
        assert_eq!(c.get(Counter::TextTokens), 100);
        assert_eq!(c.cost(), cost("0.0004"));
        assert_eq!(store.open_reservations().await.unwrap(), 0);

        // The log, newest first.
        let log = store.usage_log(Some(&u), 10).await.unwrap();
        let shown: Vec<_> = log
            .iter()
            .map(|row| {
                (
                    row.request_id.as_str(),
                    row.cached,
                    row.cost_saved(),
                    row.cost,
                    row.billable,
                    row.tokens.total_tokens(),
                )
            })
            .collect();
        let hit = |semantic, saved: Option<&str>| {
            Some(CacheHit {
                semantic,
                saved: saved.map(cost),
            })
        };
        let zero = Some(cost("0"));
        assert_eq!(
            shown,
            [
                (
                    unpriced.request_id.as_str(),
                    hit(false, None),
                    None,
                    zero,
                    true,
                    0
                ),
                (
                    semantic.request_id.as_str(),
                    hit(true, Some("0.0002")),
                    Some(cost("0.0002")),
                    zero,
                    false,
                    0
                ),
                (
                    exact.request_id.as_str(),
                    hit(false, Some("0.0004")),
                    Some(cost("0.0004")),
                    zero,
                    true,
                    0
                ),
                (
                    a.request_id.as_str(),
                    None,
                    None,
                    Some(cost("0.0004")),
                    true,
                    100
                ),
            ]
        );
        assert!(log.iter().all(|row| row.status == "ok"));

        // As the columns hold it: the old `cached` flag is kept for older readers.
        let pool = db.raw().await;
        let raw: Vec<(String, i64, Option<String>, Option<i64>)> = sqlx::query(
            "SELECT request_id, cached, cache_hit, cost_saved_nanos FROM usage_log
             WHERE user_id = $1 ORDER BY id",
        )
        .bind(&u)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.get("request_id"),
                row.get("cached"),
                row.get("cache_hit"),
                row.get("cost_saved_nanos"),
            )
        })
        .collect();
        let raw_row = |id: &str, cached, hit: Option<&str>, saved| {
            (id.to_owned(), cached, hit.map(str::to_owned), saved)
        };
        assert_eq!(
            raw,
            [
                raw_row(&a.request_id, 0, None, None),
                raw_row(&exact.request_id, 1, Some("exact"), Some(400_000)),
                raw_row(&semantic.request_id, 1, Some("semantic"), Some(200_000)),
                raw_row(&unpriced.request_id, 1, Some("exact"), None),
            ]
        );
        pool.close().await;

        // The summary: four requests, three from the cache, which saved what the priced ones
        // had cost; only the first call cost anything, and every row was priced.
        let summary = store.usage_summary(&u, &period).await.unwrap();
        assert_eq!(summary.len(), 1);
        let s = &summary[0];
        assert_eq!((s.requests, s.cached_requests, s.errors), (4, 3, 0));
        assert_eq!((s.cost, s.cost_saved), (cost("0.0004"), cost("0.0006")));
        assert_eq!((s.input_tokens, s.output_tokens, s.unpriced), (40, 60, 0));

        // The log totals agree.
        let totals = store
            .usage_totals(&LogFilter::user(u.clone()))
            .await
            .unwrap();
        assert_eq!((totals.requests, totals.cached_requests), (4, 3));
        assert_eq!(
            (totals.cost, totals.cost_saved),
            (cost("0.0004"), cost("0.0006"))
        );
    })
    .await;
}

/// Migrates `db` to `version` only, and writes in that version's shape user `usr_a` (on the
/// metered plan) with one usage-log row and its summary row (`log` and `summary`, each binding
/// the current period as `$1`); returns the period.
async fn usage_of_version(db: &TestDb, version: i64, log: &str, summary: &str) -> String {
    gw_store::testing::migrate_to(&db.url, version)
        .await
        .unwrap();
    let period = test_plans().require("metered").unwrap().current_period();
    let pool = db.raw().await;
    sqlx::query(
        "INSERT INTO users (id, name, plan, created_at) VALUES ('usr_a', 'a', 'metered', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for sql in [log, summary] {
        sqlx::query(AssertSqlSafe(sql))
            .bind(&period)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    period
}

/// Migration 8 adds the cache columns to a database of version 7: rows written before read
/// back as no hit, and a summary row written before goes on counting from zero hits.
#[tokio::test]
async fn migration_8_adds_cache_hits_to_existing_usage() {
    on_each_backend(|db| async move {
        // A version-7 log row and its summary row.
        let log =
            "INSERT INTO usage_log (request_id, reservation_id, user_id, period, provider, model,
                modality, operation, status, error_message, input_tokens, output_tokens,
                cached_input_tokens, reasoning_tokens, units, cost_nanos, pricing_version,
                estimated, billable, latency_ms, ttft_ms, retries, cached, created_at)
             VALUES ('req_old', 'res_old', 'usr_a', $1, 'gemini', 'gemini-2.5-flash', 'text',
                'chat', 'ok', NULL, 10, 20, 0, 0, 0, 5000, 'v1', 0, 1, 100, NULL, 0, 0, 1)";
        let summary =
            "INSERT INTO usage_summary (user_id, period, provider, model, modality, requests,
                errors, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, units,
                cost_nanos, unpriced, estimated, updated_at)
             VALUES ('usr_a', $1, 'gemini', 'gemini-2.5-flash', 'text', 1, 0, 10, 20, 0, 0, 0,
                5000, 0, 0, 1)";
        let period = usage_of_version(&db, 7, log, summary).await;

        let store = db.store().await; // applies migration 8
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let old = &store.usage_log(Some("usr_a"), 1).await.unwrap()[0];
        assert_eq!((old.request_id.as_str(), old.cached), ("req_old", None));
        let s = &store.usage_summary("usr_a", &period).await.unwrap()[0];
        assert_eq!(
            (s.requests, s.cached_requests, s.cost_saved),
            (1, 0, cost("0"))
        );

        let a = text("usr_a", "gemini", "gemini-2.5-flash", 30, Some("0.001"));
        let r = store.admit(a.clone()).await.unwrap();
        store
            .settle(r, cache_hit(&a, true, Some("0.000005"), true))
            .await
            .unwrap();
        store.flush().await;
        let s = &store.usage_summary("usr_a", &period).await.unwrap()[0];
        assert_eq!((s.requests, s.cached_requests), (2, 1));
        assert_eq!((s.cost, s.cost_saved), (cost("0.000005"), cost("0.000005")));
    })
    .await;
}

/// A provider that ignores the bound a request set is charged what it reports, and the row says
/// so: `over_reservation` is set when the settled tokens (text) or units passed what admission
/// reserved, or the cost passed the reserved cost when both are known; the summary and the log
/// totals count those rows. A row within its reservation, one whose reserved cost was not known,
/// one that charged nothing and one recovered at its reservation are not flagged.
#[tokio::test]
async fn settlements_past_their_reservation_are_flagged_and_counted() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "enterprise").await;
        let flash = |tokens, price| text(&u, "gemini", "gemini-2.5-flash", tokens, price);

        // Reserved 100 tokens and 0.001: used exactly that many tokens, for less.
        let within = flash(100, Some("0.001"));
        let r = store.admit(within.clone()).await.unwrap();
        let period = period_of(&r);
        store
            .settle(r, record(&within, 40, 60, Some("0.0004")))
            .await
            .unwrap();
        // Reserved 100 tokens: the provider wrote 250 (it ignored max_tokens).
        let tokens = flash(100, Some("0.001"));
        let r = store.admit(tokens.clone()).await.unwrap();
        store
            .settle(r, record(&tokens, 50, 200, Some("0.0009")))
            .await
            .unwrap();
        // Fewer tokens than reserved, but a cost above the reserved one.
        let priced_up = flash(100, Some("0.001"));
        let r = store.admit(priced_up.clone()).await.unwrap();
        store
            .settle(r, record(&priced_up, 30, 50, Some("0.002")))
            .await
            .unwrap();
        // No reserved cost to pass: within on tokens, so not over whatever it cost.
        let unpriced = flash(100, None);
        let r = store.admit(unpriced.clone()).await.unwrap();
        store
            .settle(r, record(&unpriced, 30, 50, Some("0.005")))
            .await
            .unwrap();
        // A failure that charged nothing.
        let nothing = flash(100, Some("0.001"));
        let r = store.admit(nothing.clone()).await.unwrap();
        store.settle(r, failed(&nothing)).await.unwrap();
        // Reserved 2 images, the provider made 3.
        let images = media(&u, "gemini", "imagen-4", Modality::Image, 2);
        let r = store.admit(images.clone()).await.unwrap();
        let mut made = record(&images, 0, 0, Some("0.009"));
        made.units = 3;
        store.settle(r, made).await.unwrap();
        store.flush().await;

        // One recovered at its reservation.
        let dead = db.store().await;
        let lost = flash(500, Some("0.05"));
        dead.admit(lost.clone()).await.unwrap();
        dead.close().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            store
                .recover_stale(Duration::from_millis(10))
                .await
                .unwrap(),
            1
        );

        // What was used is what was charged, past the reservations or not.
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(
            c.get(Counter::TextTokens),
            100 + 250 + 80 + 80 + 500,
            "the excess is charged"
        );
        assert_eq!(c.get(Counter::ImageUnits), 3);
        assert_eq!(c.cost(), cost("0.0673"));
        assert_eq!(store.open_reservations().await.unwrap(), 0);

        let log = store.usage_log(Some(&u), 10).await.unwrap();
        let flags: BTreeMap<&str, (bool, &str)> = log
            .iter()
            .map(|row| {
                (
                    row.request_id.as_str(),
                    (row.over_reservation, row.status.as_str()),
                )
            })
            .collect();
        let expected: BTreeMap<&str, (bool, &str)> = [
            (within.request_id.as_str(), (false, "ok")),
            (tokens.request_id.as_str(), (true, "ok")),
            (priced_up.request_id.as_str(), (true, "ok")),
            (unpriced.request_id.as_str(), (false, "ok")),
            (nothing.request_id.as_str(), (false, "upstream")),
            (images.request_id.as_str(), (true, "ok")),
            (lost.request_id.as_str(), (false, RECOVERED)),
        ]
        .into_iter()
        .collect();
        assert_eq!(flags, expected);

        // As the column holds it.
        let pool = db.raw().await;
        let raw: Vec<(String, i64)> = sqlx::query(
            "SELECT request_id, over_reservation FROM usage_log WHERE user_id = $1 ORDER BY id",
        )
        .bind(&u)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get("request_id"), row.get("over_reservation")))
        .collect();
        assert_eq!(raw.iter().map(|(_, v)| v).sum::<i64>(), 3, "{raw:?}");
        assert!(raw.iter().all(|(_, v)| *v == 0 || *v == 1), "{raw:?}");
        pool.close().await;

        // The summary counts the flagged rows of each model, and the log totals agree.
        let summary = store.usage_summary(&u, &period).await.unwrap();
        let by_model: BTreeMap<&str, (u64, u64)> = summary
            .iter()
            .map(|s| (s.model.as_str(), (s.requests, s.over_reservation)))
            .collect();
        assert_eq!(
            by_model,
            [("gemini-2.5-flash", (6, 2)), ("imagen-4", (1, 1))]
                .into_iter()
                .collect()
        );
        let totals = store
            .usage_totals(&LogFilter::user(u.clone()))
            .await
            .unwrap();
        assert_eq!((totals.requests, totals.over_reservation), (7, 3));
    })
    .await;
}

/// Migration 9 adds the flag to a database of version 8: rows written before read back as
/// within their reservation, and a summary row written before goes on counting from zero.
#[tokio::test]
async fn migration_9_adds_the_over_reservation_flag_to_existing_usage() {
    on_each_backend(|db| async move {
        // A version-8 log row and its summary row.
        let log =
            "INSERT INTO usage_log (request_id, reservation_id, user_id, period, provider, model,
                modality, operation, status, error_message, input_tokens, output_tokens,
                cached_input_tokens, reasoning_tokens, units, cost_nanos, pricing_version,
                estimated, billable, latency_ms, ttft_ms, retries, cached, created_at, cache_hit,
                cost_saved_nanos)
             VALUES ('req_old', 'res_old', 'usr_a', $1, 'gemini', 'gemini-2.5-flash', 'text',
                'chat', 'ok', NULL, 10, 20, 0, 0, 0, 5000, 'v1', 0, 1, 100, NULL, 0, 0, 1, NULL,
                NULL)";
        let summary =
            "INSERT INTO usage_summary (user_id, period, provider, model, modality, requests,
                errors, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, units,
                cost_nanos, unpriced, estimated, cached_requests, cost_saved_nanos, updated_at)
             VALUES ('usr_a', $1, 'gemini', 'gemini-2.5-flash', 'text', 1, 0, 10, 20, 0, 0, 0,
                5000, 0, 0, 0, 0, 1)";
        let period = usage_of_version(&db, 8, log, summary).await;

        let store = db.store().await; // applies migration 9
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let old = &store.usage_log(Some("usr_a"), 1).await.unwrap()[0];
        assert_eq!(
            (old.request_id.as_str(), old.over_reservation),
            ("req_old", false)
        );
        let s = &store.usage_summary("usr_a", &period).await.unwrap()[0];
        assert_eq!((s.requests, s.over_reservation), (1, 0));

        // A settlement past its reservation counts on from there.
        let a = text("usr_a", "gemini", "gemini-2.5-flash", 30, Some("0.001"));
        let r = store.admit(a.clone()).await.unwrap();
        store
            .settle(r, record(&a, 20, 40, Some("0.0008")))
            .await
            .unwrap();
        store.flush().await;
        let s = &store.usage_summary("usr_a", &period).await.unwrap()[0];
        assert_eq!((s.requests, s.over_reservation), (2, 1));
        let totals = store
            .usage_totals(&LogFilter::user("usr_a".to_owned()))
            .await
            .unwrap();
        assert_eq!((totals.requests, totals.over_reservation), (2, 1));
    })
    .await;
}

#[tokio::test]
async fn end_users_and_tags_are_kept_and_filter_reads() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "enterprise").await;
        let other = user(&store, "enterprise").await;
        let tagged = |pairs: &[(&str, &str)], end_user: Option<&str>| RequestTags {
            end_user: end_user.map(str::to_owned),
            metadata: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let calls = [
            (
                &u,
                tagged(&[("team", "search"), ("env", "prod")], Some("end-1")),
                "0.000100",
            ),
            (
                &u,
                tagged(&[("team", "search"), ("env", "dev")], Some("end-2")),
                "0.000020",
            ),
            (&u, tagged(&[("team", "ads")], None), "0.000003"),
            (&u, RequestTags::default(), "0.000004"),
            // Another user's row with the same tag stays out of `u`'s reads.
            (&other, tagged(&[("team", "search")], Some("end-1")), "0.5"),
        ];
        for (who, tags, price) in calls {
            let a = text(who, "gemini", "gemini-2.5-flash", 10, Some(price));
            let r = store.admit(a.clone()).await.unwrap();
            let mut rec = record(&a, 6, 4, Some(price));
            rec.tags = tags;
            store.settle(r, rec).await.unwrap();
        }
        store.flush().await;

        let search = LogFilter {
            metadata: vec![("team".into(), "search".into())],
            ..LogFilter::user(u.clone())
        };
        let rows = store.usage_log_where(&search, 10).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].end_user.as_deref(), Some("end-2"));
        assert_eq!(
            rows[1].metadata,
            BTreeMap::from([
                ("env".into(), "prod".into()),
                ("team".into(), "search".into())
            ])
        );
        let totals = store.usage_totals(&search).await.unwrap();
        assert_eq!(
            (totals.requests, totals.input_tokens, totals.output_tokens),
            (2, 12, 8)
        );
        assert_eq!(totals.cost, cost("0.000120"));

        // Every tag must match.
        let prod = LogFilter {
            metadata: vec![
                ("team".into(), "search".into()),
                ("env".into(), "prod".into()),
            ],
            ..LogFilter::user(u.clone())
        };
        assert_eq!(
            store.usage_totals(&prod).await.unwrap().cost,
            cost("0.000100")
        );
        let end_user = LogFilter {
            end_user: Some("end-1".into()),
            ..LogFilter::user(u.clone())
        };
        assert_eq!(store.usage_log_where(&end_user, 10).await.unwrap().len(), 1);
        // Across users (an operator's read), the other user's row counts too.
        let everyone = LogFilter {
            metadata: vec![("team".into(), "search".into())],
            ..LogFilter::default()
        };
        assert_eq!(store.usage_totals(&everyone).await.unwrap().requests, 3);
        // The untagged rows read back with no tags; all four are in the user's totals.
        let all = store
            .usage_totals(&LogFilter::user(u.clone()))
            .await
            .unwrap();
        assert_eq!((all.requests, all.cost), (4, cost("0.000127")));
        let untagged = &store.usage_log(Some(&u), 1).await.unwrap()[0];
        assert!(untagged.metadata.is_empty() && untagged.end_user.is_none());

        let nothing = LogFilter {
            metadata: vec![("team".into(), "nobody".into())],
            ..LogFilter::user(u.clone())
        };
        assert_eq!(
            store.usage_totals(&nothing).await.unwrap(),
            LogTotals::default()
        );
        let bad = LogFilter {
            period: Some("November".into()),
            ..LogFilter::user(u)
        };
        let err = store.usage_totals(&bad).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    })
    .await;
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    // Nothing listens on port 1; the password must not show up in the error.
    let options = StoreOptions::new().acquire_timeout(Duration::from_millis(500));
    let err = Store::connect_with("postgres://gw:hunter2@127.0.0.1:1/gateway", options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unavailable);
    assert!(
        err.message().contains("cannot open the postgres database"),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");

    // A SQLite file whose directory is missing: say so.
    let err = Store::connect("sqlite:///definitely/not/here/gw.db")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(err.message().contains("/definitely/not/here"), "{err}");
    assert!(err.message().contains("create it first"), "{err}");

    let err = Store::connect("mysql://root:hunter2@localhost/gw")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(!err.to_string().contains("hunter2"), "{err}");

    // A store whose database goes away refuses admissions rather than letting them through.
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "enterprise").await;
        store.close().await;
        let err = store
            .admit(text(&u, "gemini", "gemini-2.5-flash", 1, Some("0")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Unavailable, "{err}");
        let pending = Reservation {
            id: "res_x".into(),
            user_id: u.clone(),
            period: "2026-11".into(),
            estimate: Amount::default(),
            output_bound: None,
        };
        let a = text(&u, "gemini", "gemini-2.5-flash", 1, Some("0"));
        assert_eq!(
            store
                .settle(pending, record(&a, 1, 1, None))
                .await
                .unwrap_err()
                .kind(),
            &ErrorKind::Unavailable
        );
        store.flush().await;
    })
    .await;
}

#[tokio::test]
async fn in_memory_database() {
    let store = Store::connect_with("sqlite::memory:", StoreOptions::new().plans(test_plans()))
        .await
        .unwrap();
    let u = user(&store, "metered").await;
    let a = text(&u, "gemini", "gemini-2.5-flash", 10, Some("0.001"));
    let r = store.admit(a.clone()).await.unwrap();
    store
        .settle(r, record(&a, 3, 4, Some("0.0005")))
        .await
        .unwrap();
    store.flush().await;
    assert_eq!(store.usage_log(Some(&u), 10).await.unwrap().len(), 1);
}

/// A database that takes no writes for a while (here SQLite locked by another process) loses
/// no usage: the writer keeps the settlement and tries again with backoff until it is written,
/// instead of leaving the reservation to be charged at its estimate. (The writer's last failed
/// try can come just before the lock is released: the lock's own error keeps it trying, not a
/// probe made after the failure, which a loaded machine can delay past the release.)
#[tokio::test]
async fn a_settlement_waits_out_a_database_locked_elsewhere() {
    let db = TestDb::sqlite();
    let store = Store::connect_with(
        &db.url,
        db.options().busy_timeout(Duration::from_millis(50)),
    )
    .await
    .unwrap();
    let user = store.create_user(&unique("locked"), "pro").await.unwrap();
    let admission = text(&user.id, "gemini", "gemini-2.5-flash", 1_000, Some("0.001"));
    let reservation = store.admit(admission.clone()).await.unwrap();

    // Another process holds the write lock for longer than the busy timeout, many times over.
    let other = db.raw().await;
    let mut locker = other.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut *locker)
        .await
        .unwrap();
    store
        .settle(reservation, record(&admission, 12, 30, Some("0.000081")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    sqlx::raw_sql("COMMIT").execute(&mut *locker).await.unwrap();
    drop(locker);

    store.flush().await;
    assert_eq!(store.open_reservations().await.unwrap(), 0);
    let log = store.usage_log(Some(&user.id), 10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (
            log[0].tokens.input_tokens,
            log[0].tokens.output_tokens,
            log[0].estimated
        ),
        (12, 30, false)
    );
}

#[tokio::test]
async fn the_journal_a_killed_process_left_is_replayed_once() {
    on_each_backend(|db| async move {
        let dir = std::env::temp_dir().join(unique("gw-store-journal"));
        std::fs::create_dir_all(&dir).unwrap();
        let journal = dir.join("usage.settlements");
        let store = db.store().await;
        let u = user(&store, "enterprise").await;

        // A process answers four requests, journals their settlements and is killed before its
        // writer commits three of them (the last line cut by the kill); one was written.
        let dead = db.store().await;
        let a = text(&u, "gemini", "gemini-2.5-flash", 500, Some("0.005"));
        // (Admitted through the surviving store, so recovery leaves it open: the journal's
        // settlement finds it still reserved.)
        let pending = store.admit(a.clone()).await.unwrap();
        let b = text(&u, "gemini", "gemini-2.5-flash", 500, Some("0.005"));
        let recovered_first = dead.admit(b.clone()).await.unwrap();
        let c = text(&u, "gemini", "gemini-2.5-flash", 500, Some("0.005"));
        let written = dead.admit(c.clone()).await.unwrap();
        let d = text(&u, "gemini", "gemini-2.5-flash", 500, Some("0.005"));
        let lost = dead.admit(d.clone()).await.unwrap();
        dead.settle(written.clone(), record(&c, 10, 20, Some("0.0001")))
            .await
            .unwrap();
        dead.close().await;
        let lines = [
            journal_line(&pending.id, &a.request_id, 30, 40, 70_000),
            journal_line(&recovered_first.id, &b.request_id, 31, 41, 71_000),
            journal_line(&written.id, &c.request_id, 10, 20, 100_000),
            // Cut by the kill.
            journal_line(&lost.id, &d.request_id, 1, 1, 1)[..40].to_owned(),
        ];
        std::fs::write(journal.with_extension("settlements.3"), lines.join("\n")).unwrap();

        // Another instance recovers the dead one's open reservations before the dead one's host
        // restarts: both are charged at their estimate for now.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            store
                .recover_stale(Duration::from_millis(10))
                .await
                .unwrap(),
            2
        );
        // The restart replays the journal.
        let next = Store::connect_with(&db.url, db.options().journal(&journal))
            .await
            .unwrap();
        next.flush().await;
        let log = next.usage_log(Some(&u), 10).await.unwrap();
        let by_request = |id: &str| {
            let rows: Vec<_> = log.iter().filter(|r| r.request_id == id).collect();
            assert_eq!(rows.len(), 1, "{id}: one row");
            rows[0].clone()
        };
        for (admission, input, output) in [(&a, 30, 40), (&b, 31, 41), (&c, 10, 20)] {
            let row = by_request(&admission.request_id);
            assert_eq!(row.status, "ok");
            assert_eq!(
                (row.tokens.input_tokens, row.tokens.output_tokens),
                (input, output)
            );
        }
        assert_eq!(by_request(&a.request_id).end_user.as_deref(), Some("end-7"));
        // The cut line's request stays charged at its estimate.
        let cut = by_request(&d.request_id);
        assert_eq!(
            (cut.status.as_str(), cut.tokens.input_tokens),
            (RECOVERED, 500)
        );
        assert_eq!(log.len(), 4);
        let period = period_of(&pending);
        let used = next.counters(&u, &period).await.unwrap();
        assert_eq!(used.get(Counter::TextTokens), 70 + 72 + 30 + 500);
        assert_eq!(used.get(Counter::TextRequests), 4);
        assert_eq!(next.open_reservations().await.unwrap(), 0);
        // The replayed segment is gone; the next start finds nothing to replay.
        assert!(!journal.with_extension("settlements.3").exists());
        next.close().await;
        drop(next);
        let again = Store::connect_with(&db.url, db.options().journal(&journal))
            .await
            .unwrap();
        again.flush().await;
        assert_eq!(again.usage_log(Some(&u), 10).await.unwrap().len(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// A process that watches for key and plan changes remembers a user's plan well past the 10 s
/// it would without watching, and a plan changed by another process applies at its next check
/// (the server checks every `auth_poll_ms`).
#[tokio::test]
async fn a_plan_changed_elsewhere_applies_at_the_next_check_for_changes() {
    on_each_backend(|db| async move {
        let here = Store::connect_with(&db.url, db.options()).await.unwrap();
        let there = Store::connect_with(&db.url, db.options()).await.unwrap();
        assert!(!here.watches_auth_within(Duration::from_secs(10)));
        assert!(
            here.check_auth_changes().await.unwrap(),
            "the first check drops what was remembered before it"
        );
        assert!(!here.check_auth_changes().await.unwrap());
        assert!(here.watches_auth_within(Duration::from_secs(10)));
        let alice = user(&here, "free").await;
        // `free` does not allow gemini-2.5-pro; `pro` does.
        let pro_model = || text(&alice, "gemini", "gemini-2.5-pro", 20, Some("0.01"));
        let refused = here.admit(pro_model()).await.unwrap_err();
        assert_eq!(refused.kind(), &ErrorKind::PermissionDenied, "{refused}");
        there.set_plan(&alice, "pro").await.unwrap();
        // Remembered until the check: one lookup per user per five minutes, not per request.
        let refused = here.admit(pro_model()).await.unwrap_err();
        assert_eq!(refused.kind(), &ErrorKind::PermissionDenied, "{refused}");
        assert!(here.check_auth_changes().await.unwrap());
        assert!(!here.check_auth_changes().await.unwrap());
        let admission = pro_model();
        let admitted = here.admit(admission.clone()).await.unwrap();
        here.settle(admitted, record(&admission, 5, 5, Some("0.001")))
            .await
            .unwrap();
        here.close().await;
        there.close().await;
    })
    .await;
}
