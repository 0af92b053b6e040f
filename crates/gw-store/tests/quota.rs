//! Counters and limits: quota refusals, the remaining allowance, exact admission under
//! concurrency (also of several processes on one database), and the counters' schema. Every
//! test runs on SQLite and, with `GATEWAY_TEST_POSTGRES_URL`, on PostgreSQL (see `common`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use gateway_core::{Accounting, ErrorKind, Modality, OpenOutput, Reservation};
use gw_store::{Counter, Counters, SCHEMA_VERSION, Store};

async fn user(store: &Store, plan: &str) -> String {
    store.create_user(&unique("user"), plan).await.unwrap().id
}

#[tokio::test]
async fn open_ended_text_reserves_the_plan_default() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await; // default_max_tokens = 500
        let mut a = text(&u, "gemini", "gemini-2.5-flash", 20, Some("0.00002"));
        a.open_output = Some(OpenOutput {
            price_per_million: Some(cost("2")), // $2 per million output tokens
            answers: 1,
        });
        let r = store.admit(a.clone()).await.unwrap();
        assert_eq!(r.estimate.tokens, 520);
        // 500 tokens at $2/M = $0.001, on top of the prompt's estimate.
        assert_eq!(r.estimate.cost, Some(cost("0.00102")));
        let c = store.counters(&u, &r.period).await.unwrap();
        assert_eq!(c.get(Counter::TextTokens), 520);
        assert_eq!(c.cost(), cost("0.00102"));
        store
            .settle(r.clone(), record(&a, 20, 30, Some("0.00008")))
            .await
            .unwrap();
        store.flush().await;
        let c = store.counters(&u, &r.period).await.unwrap();
        assert_eq!(c.get(Counter::TextTokens), 50);
        assert_eq!(c.cost(), cost("0.00008"));

        // Three answers (`n` = 3) may each write the default.
        a.request_id = "open-n3".into();
        a.open_output = Some(OpenOutput {
            price_per_million: Some(cost("2")),
            answers: 3,
        });
        let r = store.admit(a).await.unwrap();
        assert_eq!(r.estimate.tokens, 1_520);
        assert_eq!(r.estimate.cost, Some(cost("0.00302")));
    })
    .await;
}

#[tokio::test]
async fn an_open_output_is_bounded_by_what_is_left_and_the_bound_is_returned() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await; // default 500, 10 000 tokens, $1
        let period = store.plans().require("metered").unwrap().current_period();
        let open = |request: &str| {
            let mut a = text(&u, "gemini", "gemini-2.5-flash", 20, Some("0.00002"));
            a.request_id = request.into();
            a.open_output = Some(OpenOutput {
                price_per_million: Some(cost("2")),
                answers: 1,
            });
            a
        };
        // Room for the default: it is the bound.
        let r = store.admit(open("full")).await.unwrap();
        assert_eq!(r.output_bound, Some(500));
        assert_eq!(r.estimate.tokens, 520);

        // 300 tokens left: the prompt's 20 and 280 of output fit, and 280 is the bound.
        let v = user(&store, "metered").await;
        store
            .add_counters(
                &v,
                &period,
                &Counters::new().with(Counter::TextTokens, 9_700),
            )
            .await
            .unwrap();
        let mut a = open("lowered");
        a.user_id = v.clone();
        let r = store.admit(a.clone()).await.unwrap();
        assert_eq!(r.output_bound, Some(280));
        assert_eq!(r.estimate.tokens, 300);
        // 280 tokens at $2/M, on top of the prompt's estimate.
        assert_eq!(r.estimate.cost, Some(cost("0.00058")));
        let c = store.counters(&v, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextTokens), 10_000);
        // Nothing is left for another: refused, naming the counter.
        a.request_id = "nothing-left".into();
        let err = store.admit(a).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::QuotaExceeded);
        assert!(err.message().contains("text_tokens"), "{err}");

        // The money cap lowers it the same way: $0.001 left pays the prompt and 490 tokens.
        let w = user(&store, "metered").await;
        store
            .add_counters(
                &w,
                &period,
                &Counters::new().with(Counter::CostUsd, cost("0.999").nanos()),
            )
            .await
            .unwrap();
        let mut a = open("money");
        a.user_id = w.clone();
        let r = store.admit(a).await.unwrap();
        assert_eq!(r.output_bound, Some(490));
        assert!(store.counters(&w, &period).await.unwrap().cost() <= cost("1"));

        // A request that set its own bound keeps it: no bound comes back.
        let r = store
            .admit(text(&u, "gemini", "gemini-2.5-flash", 100, Some("0.0001")))
            .await
            .unwrap();
        assert_eq!(r.output_bound, None);
        // A plan that limits neither tokens nor money sends no bound.
        let e = user(&store, "enterprise").await;
        let mut a = open("unlimited");
        a.user_id = e;
        assert_eq!(store.admit(a).await.unwrap().output_bound, None);
    })
    .await;
}

#[tokio::test]
async fn a_reservation_grows_for_a_pricier_route_only_within_the_plan() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await; // $1, 10 000 tokens
        let period = store.plans().require("metered").unwrap().current_period();
        let a = text(&u, "gemini", "gemini-2.5-flash", 100, Some("0.10"));
        let r = store.admit(a.clone()).await.unwrap();
        // The fallback costs 25x as much: $2.50 does not fit the $1 cap.
        let mut pricier = r.estimate;
        pricier.cost = Some(cost("2.50"));
        let err = store.extend(r.clone(), pricier).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::QuotaExceeded);
        assert!(err.message().contains("cost_usd"), "{err}");
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.cost(), cost("0.10"), "nothing changed");
        // $0.60 fits: the difference is reserved, and the reservation holds the whole.
        pricier.cost = Some(cost("0.60"));
        pricier.tokens = 150;
        let grown = store.extend(r.clone(), pricier).await.unwrap();
        assert_eq!(grown.id, r.id);
        assert_eq!(grown.estimate.cost, Some(cost("0.60")));
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!((c.cost(), c.get(Counter::TextTokens)), (cost("0.60"), 150));
        // Settled, all of it is replaced by what the call used.
        store
            .settle(grown, record(&a, 20, 30, Some("0.55")))
            .await
            .unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!((c.cost(), c.get(Counter::TextTokens)), (cost("0.55"), 50));
        assert_eq!(store.open_reservations().await.unwrap(), 0);
        // A reservation already settled cannot grow.
        let gone = store.extend(r, pricier).await.unwrap_err();
        assert_eq!(gone.kind(), &ErrorKind::Unavailable);
    })
    .await;
}

#[tokio::test]
async fn quota_exceeded_names_the_counter_and_changes_nothing() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await;
        let period = store.plans().require("metered").unwrap().current_period();

        // Tokens: 9 900 of 10 000 used, the request needs 200.
        store
            .add_counters(
                &u,
                &period,
                &Counters::new().with(Counter::TextTokens, 9_900),
            )
            .await
            .unwrap();
        let before = store.counters(&u, &period).await.unwrap();
        let err = store
            .admit(text(&u, "gemini", "gemini-2.5-flash", 200, Some("0.001")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::QuotaExceeded);
        let msg = err.message();
        assert!(msg.contains("text_tokens"), "{msg}");
        assert!(msg.contains("10000"), "{msg}");
        assert!(msg.contains(&period), "{msg}");
        assert_eq!(store.counters(&u, &period).await.unwrap(), before);
        assert_eq!(store.open_reservations().await.unwrap(), 0);
        // What still fits is admitted.
        store
            .admit(text(&u, "gemini", "gemini-2.5-flash", 100, Some("0.001")))
            .await
            .unwrap();

        // Requests.
        let v = user(&store, "metered").await;
        store
            .add_counters(
                &v,
                &period,
                &Counters::new().with(Counter::TextRequests, 100),
            )
            .await
            .unwrap();
        let err = store
            .admit(text(&v, "gemini", "gemini-2.5-flash", 1, Some("0")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::QuotaExceeded);
        assert!(err.message().contains("text_requests"), "{err}");
        // Another modality's limits are not touched by text being used up.
        store
            .admit(media(&v, "gemini", "imagen", Modality::Image, 1))
            .await
            .unwrap();

        // The cost cap, shown as exact dollars.
        let w = user(&store, "metered").await;
        let spent = Counters::parse_named([("cost_usd", "0.9995")]).unwrap();
        store.add_counters(&w, &period, &spent).await.unwrap();
        let err = store
            .admit(text(&w, "gemini", "gemini-2.5-pro", 10, Some("0.001")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::QuotaExceeded);
        assert!(err.message().contains("cost_usd"), "{err}");
        assert!(err.message().contains("0.9995"), "{err}");

        // Media units.
        let x = user(&store, "metered").await;
        let err = store
            .admit(media(&x, "gemini", "imagen", Modality::Image, 7))
            .await
            .unwrap_err();
        assert!(err.message().contains("image_units"), "{err}");

        // Bad corrections are refused.
        assert_eq!(
            store
                .add_counters(&x, "November", &Counters::new())
                .await
                .unwrap_err()
                .kind(),
            &ErrorKind::InvalidRequest
        );
        assert_eq!(
            store
                .add_counters("usr_nobody", &period, &Counters::new())
                .await
                .unwrap_err()
                .kind(),
            &ErrorKind::NotFound
        );
    })
    .await;
}

#[tokio::test]
async fn remaining_allowance() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "free").await;
        let a = text(&u, "gemini", "gemini-2.5-flash", 1000, Some("0.25"));
        let r = store.admit(a.clone()).await.unwrap();
        store
            .settle(r, record(&a, 100, 50, Some("0.1")))
            .await
            .unwrap();
        store.flush().await;

        let left = store.remaining(&u).await.unwrap();
        assert_eq!(left.plan, "free");
        let get = |c: Counter| *left.counters.iter().find(|e| e.counter == c).unwrap();
        let requests = get(Counter::TextRequests);
        assert_eq!(
            (requests.used, requests.limit, requests.remaining),
            (1, Some(200), Some(199))
        );
        let tokens = get(Counter::TextTokens);
        assert_eq!(tokens.remaining, Some(500_000 - 150));
        let money = get(Counter::CostUsd);
        assert_eq!(
            Counter::CostUsd.format_value(money.remaining.unwrap()),
            "0.9"
        );
        assert!(left.counters.iter().all(|e| !matches!(
            e.counter.modality(),
            Some(Modality::Video | Modality::Training)
        )));

        // Enterprise includes every modality: every counter, none limited.
        let e = user(&store, "enterprise").await;
        let left = store.remaining(&e).await.unwrap();
        assert_eq!(left.counters.len(), Counter::ALL.len());
        assert!(
            left.counters
                .iter()
                .all(|e| e.limit.is_none() && e.remaining.is_none())
        );
        assert_eq!(
            store.remaining("usr_nobody").await.unwrap_err().kind(),
            &ErrorKind::NotFound
        );
    })
    .await;
}

/// THE concurrency test: a user with 50 text requests left, 200 admissions at once on a
/// multi-connection pool: exactly 50 go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_admissions_never_overshoot() {
    on_each_backend(|db| async move {
        let store = Store::connect_with(&db.url, db.options().max_connections(8))
            .await
            .unwrap();
        let u = user(&store, "metered").await; // 100 text requests per period
        let period = store.plans().require("metered").unwrap().current_period();
        store
            .add_counters(
                &u,
                &period,
                &Counters::new().with(Counter::TextRequests, 50),
            )
            .await
            .unwrap();

        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let store = store.clone();
                let a = text(&u, "gemini", "gemini-2.5-flash", 1, Some("0"));
                tokio::spawn(async move { store.admit(a).await })
            })
            .collect();
        let (mut admitted, mut refused) = (Vec::<Reservation>::new(), 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(r) => admitted.push(r),
                Err(e) if e.kind() == &ErrorKind::QuotaExceeded => refused += 1,
                Err(e) => panic!("unexpected error on {:?}: {e}", db.backend),
            }
        }
        assert_eq!((admitted.len(), refused), (50, 150), "{:?}", db.backend);
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 100);
        assert_eq!(c.get(Counter::TextTokens), 50);
        assert_eq!(store.open_reservations().await.unwrap(), 50);
    })
    .await;
}

/// Several gateway processes (stores with pools and admission tasks of their own) on one
/// database, admitting and settling for the same users at once, many users per batch: exactly
/// what fits is admitted, whichever process asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn admissions_of_several_processes_never_overshoot() {
    on_each_backend(|db| async move {
        let mut stores = Vec::new();
        for _ in 0..4 {
            let options = db.options().max_connections(4);
            stores.push(Store::connect_with(&db.url, options).await.unwrap());
        }
        let period = stores[0]
            .plans()
            .require("metered")
            .unwrap()
            .current_period();
        // Three users with 20 of 100 text requests left, one with $0.05 of $1 left.
        let mut users = Vec::new();
        for _ in 0..3 {
            let u = user(&stores[0], "metered").await;
            let used = Counters::new().with(Counter::TextRequests, 80);
            stores[0].add_counters(&u, &period, &used).await.unwrap();
            users.push(u);
        }
        let rich = user(&stores[0], "metered").await;
        let spent = Counters::parse_named([("cost_usd", "0.95")]).unwrap();
        stores[0]
            .add_counters(&rich, &period, &spent)
            .await
            .unwrap();
        // And one whose counters have no rows yet: the first admissions race to create them.
        let newcomer = user(&stores[0], "metered").await;

        // Text for the three users; text and images at $0.01 each for the fourth (images are
        // also capped at 3 requests); images for the newcomer.
        let mut tasks = Vec::new();
        for i in 0..360 {
            let store = stores[i % stores.len()].clone();
            let (a, settled_units) = match i {
                0..240 => (
                    text(&users[i % 3], "gemini", "gemini-2.5-flash", 1, Some("0")),
                    0,
                ),
                320.. => (media(&newcomer, "gemini", "imagen", Modality::Image, 1), 1),
                _ if i % 2 == 0 => (
                    text(&rich, "gemini", "gemini-2.5-flash", 1, Some("0.01")),
                    0,
                ),
                _ => (media(&rich, "gemini", "imagen", Modality::Image, 1), 1),
            };
            tasks.push(tokio::spawn(async move {
                let r = match store.admit(a.clone()).await {
                    Ok(r) => r,
                    Err(e) if e.kind() == &ErrorKind::QuotaExceeded => return None,
                    Err(e) => panic!("unexpected error: {e}"),
                };
                let price = a.estimate.cost.map(|c| c.to_string());
                let mut done = record(&a, 1, 1, price.as_deref());
                done.units = settled_units;
                store.settle(r, done).await.unwrap();
                Some(a)
            }));
        }
        let mut admitted = Vec::new();
        for task in tasks {
            admitted.extend(task.await.unwrap());
        }
        for store in &stores {
            store.flush().await;
        }
        let count = |u: &str, m: Modality| {
            admitted
                .iter()
                .filter(|a| a.user_id == u && a.modality == m)
                .count()
        };
        for u in &users {
            assert_eq!(count(u, Modality::Text), 20, "{:?}", db.backend);
            let c = stores[1].counters(u, &period).await.unwrap();
            assert_eq!(c.get(Counter::TextRequests), 100, "{:?}", db.backend);
        }
        let (texts, images) = (count(&rich, Modality::Text), count(&rich, Modality::Image));
        assert_eq!(texts + images, 5, "{:?}", db.backend);
        assert!(images <= 3, "{images} images");
        let c = stores[2].counters(&rich, &period).await.unwrap();
        assert_eq!(c.cost(), cost("1"), "{:?}", db.backend);
        assert_eq!(c.get(Counter::ImageRequests), images as u64);
        assert_eq!(count(&newcomer, Modality::Image), 3, "{:?}", db.backend);
        let c = stores[3].counters(&newcomer, &period).await.unwrap();
        assert_eq!(c.get(Counter::ImageRequests), 3);
        assert_eq!(stores[3].open_reservations().await.unwrap(), 0);
    })
    .await;
}

/// Settlements queued together are written together: the counters end at the sum of what was
/// used, released requests included.
#[tokio::test]
async fn settlements_of_one_user_add_up() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await;
        let mut pending = Vec::new();
        for _ in 0..10 {
            let a = text(&u, "gemini", "gemini-2.5-flash", 100, Some("0.001"));
            pending.push((store.admit(a.clone()).await.unwrap(), a));
        }
        let period = pending[0].0.period.clone();
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextTokens), 1_000);
        for (i, (r, a)) in pending.into_iter().enumerate() {
            let done = if i == 0 {
                failed(&a)
            } else {
                record(&a, 10, 20, Some("0.0002"))
            };
            store.settle(r, done).await.unwrap();
        }
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 9);
        assert_eq!(c.get(Counter::TextTokens), 9 * 30);
        assert_eq!(c.cost(), cost("0.0018"));
        assert_eq!(store.open_reservations().await.unwrap(), 0);
    })
    .await;
}

/// Migration 3 turns the one row per (user, period) with a column per counter into one row per
/// counter: every non-zero value is kept, zeros are not copied, and counting goes on.
#[tokio::test]
async fn migration_3_moves_the_counters_into_rows() {
    on_each_backend(|db| async move {
        gw_store::testing::migrate_to(&db.url, 2).await.unwrap();
        let pool = db.raw().await;
        let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(version, 2);
        for id in ["usr_a", "usr_b"] {
            sqlx::query(
                "INSERT INTO users (id, name, plan, created_at) VALUES ($1, $1, 'metered', 0)",
            )
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        }
        // The version-2 table, in its column order (the counters' order), then `updated_at`.
        let insert = "INSERT INTO usage_counters (user_id, period, text_requests, text_tokens,
                image_requests, image_units, video_requests, video_units, audio_requests,
                audio_units, search_requests, search_units, cost_nanos, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        let october: [i64; 11] = [7, 70_000, 2, 3, 1, 40, 5, 6_000, 9, 10, 123_456_789];
        let mut november = [0i64; 11];
        (november[0], november[10]) = (3, 500_000_000);
        for (user, period, values) in [
            ("usr_a", "2026-10", october),
            ("usr_a", "2026-11", november),
            ("usr_b", "2026-11", [0; 11]),
        ] {
            let mut q = sqlx::query(insert).bind(user).bind(period);
            for v in values {
                q = q.bind(v);
            }
            q.bind(1_790_000_000_000i64).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = db.store().await; // applies migration 3
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let c = store.counters("usr_a", "2026-10").await.unwrap();
        // The version-2 columns, by the names of the counters they became: a modality added
        // since (training) had no column, so it is not zipped with these values.
        let v2 = [
            "text_requests",
            "text_tokens",
            "image_requests",
            "image_units",
            "video_requests",
            "video_units",
            "audio_requests",
            "audio_units",
            "search_requests",
            "search_units",
            "cost_usd",
        ];
        for (name, value) in v2.into_iter().zip(october) {
            let counter = Counter::parse(name).unwrap();
            assert_eq!(
                c.get(counter),
                value as u64,
                "{counter} on {:?}",
                db.backend
            );
        }
        assert_eq!(c.cost().to_string(), "0.123456789");
        assert_eq!(
            c.get(Counter::TrainingRequests),
            0,
            "training had no column"
        );
        let c = store.counters("usr_a", "2026-11").await.unwrap();
        assert_eq!(
            c,
            Counters::parse_named([("text_requests", "3"), ("cost_usd", "0.5")]).unwrap()
        );
        assert!(store.counters("usr_b", "2026-11").await.unwrap().is_zero());

        let pool = db.raw().await;
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_counters")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 11 + 2, "zeros are not copied");
        assert!(
            sqlx::query("SELECT text_requests FROM usage_counters")
                .fetch_all(&pool)
                .await
                .is_err(),
            "the old table is gone"
        );
        let more = Counters::new().with(Counter::TextRequests, 2);
        store.add_counters("usr_a", "2026-11", &more).await.unwrap();
        let c = store.counters("usr_a", "2026-11").await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 5);
    })
    .await;
}

/// A counter this version does not know, as a later gateway with one more modality would write
/// it into the same table (no migration), is left alone by reads, admissions and settlements.
#[tokio::test]
async fn counters_of_unknown_modalities_are_left_alone() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "metered").await;
        let period = store.plans().require("metered").unwrap().current_period();
        let pool = db.raw().await;
        sqlx::query(
            "INSERT INTO usage_counters (user_id, period, counter, value, updated_at)
             VALUES ($1, $2, 'smell_requests', 4, 0)",
        )
        .bind(&u)
        .bind(&period)
        .execute(&pool)
        .await
        .unwrap();
        let a = text(&u, "gemini", "gemini-2.5-flash", 10, Some("0.001"));
        let r = store.admit(a.clone()).await.unwrap();
        store
            .settle(r, record(&a, 5, 5, Some("0.001")))
            .await
            .unwrap();
        store.flush().await;
        let c = store.counters(&u, &period).await.unwrap();
        assert_eq!(c.get(Counter::TextRequests), 1);
        assert_eq!(c.get(Counter::TextTokens), 10);
        let kept: i64 = sqlx::query_scalar(
            "SELECT value FROM usage_counters WHERE user_id = $1 AND counter = 'smell_requests'",
        )
        .bind(&u)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(kept, 4);
    })
    .await;
}

/// An admission whose caller gives up while it waits for its batch's transaction (a timeout, a
/// client gone) is released at once, not left open for recovery to charge at its estimate: the
/// counters end holding only what was admitted and settled.
#[tokio::test]
async fn an_admission_given_up_while_it_waits_is_released() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let u = user(&store, "pro").await;
        let period = store.plans().require("pro").unwrap().current_period();
        // 300 at once, each given up after 0 to 2 ms: many are still waiting for a batch.
        let calls = (0..300u64).map(|i| {
            let admission = text(&u, "gemini", "gemini-2.5-flash", 20, Some("0.00002"));
            let patience = Duration::from_micros(i * 7 % 2_000);
            let store = &store;
            async move {
                let answer = tokio::time::timeout(patience, store.admit(admission.clone())).await;
                (admission, answer)
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        let (mut admitted, mut given_up) = (0u64, 0);
        for (admission, answer) in answers {
            match answer {
                Ok(answer) => {
                    let reservation = answer.expect("`pro` admits these");
                    admitted += 1;
                    store
                        .settle(reservation, record(&admission, 5, 5, Some("0.001")))
                        .await
                        .unwrap();
                }
                Err(_) => given_up += 1,
            }
        }
        assert!(given_up > 0, "none was given up ({admitted} admitted)");
        // Admissions given up may still be queued for the admission task, and are released by
        // tasks of their own once admitted: the counters come back to what was admitted and
        // settled, and no reservation stays open.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            store.flush().await;
            let open = store.open_reservations().await.unwrap();
            let used = store.counters(&u, &period).await.unwrap();
            let (requests, cost) = (used.get(Counter::TextRequests), used.get(Counter::CostUsd));
            if open == 0 && requests == admitted && cost == admitted * 1_000_000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{open} reservations open, {requests} requests and {cost} nanodollars counted \
                 for {admitted} admitted and settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
