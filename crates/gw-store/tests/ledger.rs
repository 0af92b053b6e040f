//! Admission from leases, which a store with a journal uses: exact under concurrency on one
//! instance and on two sharing a database, written by the writer off the request path, given
//! back when idle or at close, freed when an instance dies, and replayed from a killed
//! process's journal. Every test runs on SQLite and, with `GATEWAY_TEST_POSTGRES_URL`, on
//! PostgreSQL (see `common`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gateway_core::{Accounting, Admission, ErrorKind, Reservation, Result};
use gw_store::{Backend, Counter, RECOVERED, Store};
use sqlx::AnyPool;

/// A store on `db` that journals to `dir/name`, so admits from leases.
async fn journaled(db: &TestDb, dir: &Path, name: &str) -> Store {
    Store::connect_with(&db.url, db.options().journal(dir.join(name)))
        .await
        .unwrap()
}

/// Two instances on `db`, each with its own journal in `dir`.
async fn two_instances(db: &TestDb, dir: &Path) -> (Store, Store) {
    (
        journaled(db, dir, "a.settlements").await,
        journaled(db, dir, "b.settlements").await,
    )
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("gw-store-ledger"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What every instance's leases hold of `counter` of `user`.
async fn leased(raw: &AnyPool, user: &str, counter: Counter) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) FROM leases
         WHERE user_id = $1 AND counter = $2",
    )
    .bind(user)
    .bind(counter.as_str())
    .fetch_one(raw)
    .await
    .unwrap()
}

/// What the leases of every instance hold, in all.
async fn held_in_all(raw: &AnyPool) -> i64 {
    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) FROM leases")
        .fetch_one(raw)
        .await
        .unwrap()
}

/// `n` new users on the `metered` plan.
async fn metered_users(store: &Store, n: usize) -> Vec<String> {
    let mut users = Vec::with_capacity(n);
    for _ in 0..n {
        let user = store.create_user(&unique("user"), "metered").await;
        users.push(user.unwrap().id);
    }
    users
}

/// A chat of 20 tokens at $0.015 on gemini-2.5-flash, which `metered` allows.
fn chat(user: &str) -> Admission {
    text(user, "gemini", "gemini-2.5-flash", 20, Some("0.015"))
}

/// A [`chat`] of `user` admitted through `store` and settled at 10 tokens and $0.001.
async fn chat_admitted_and_settled(store: &Store, user: &str) {
    let admission = chat(user);
    let reservation = store.admit(admission.clone()).await.unwrap();
    store
        .settle(reservation, record(&admission, 5, 5, Some("0.001")))
        .await
        .unwrap();
}

/// Admits `admissions` all at once, spread over `stores` in turn. A refusal keeps its message,
/// so an assertion that fails on one says why it was refused.
async fn admit_all(stores: &[&Store], admissions: Vec<Admission>) -> Vec<Result<Reservation>> {
    let calls = admissions.into_iter().enumerate().map(|(i, a)| {
        let store = stores[i % stores.len()];
        async move { store.admit(a).await }
    });
    futures_util::future::join_all(calls).await
}

/// Whether `answer` is a refusal of `kind`.
fn refused_as(answer: &Result<Reservation>, kind: &ErrorKind) -> bool {
    answer.as_ref().is_err_and(|e| e.kind() == kind)
}

#[tokio::test]
async fn concurrent_admissions_from_leases_take_exactly_the_limit() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let (a, b) = two_instances(&db, &dir).await;
        let raw = db.raw().await;
        for stores in [vec![&a], vec![&a, &b]] {
            // `metered`: $1 a month; 20 tokens at $0.015 a request: money allows 66 of them
            // (requests would allow 100, tokens 500).
            let user = a.create_user(&unique("user"), "metered").await.unwrap().id;
            let admissions: Vec<Admission> = (0..200).map(|_| chat(&user)).collect();
            let answers = admit_all(&stores, admissions.clone()).await;
            let admitted: Vec<(&Admission, &Reservation)> = admissions
                .iter()
                .zip(&answers)
                .filter_map(|(adm, ans)| ans.as_ref().ok().map(|r| (adm, r)))
                .collect();
            assert_eq!(admitted.len(), 66, "{} instance(s)", stores.len());
            assert!(
                answers
                    .iter()
                    .all(|a| a.is_ok() || refused_as(a, &ErrorKind::QuotaExceeded)),
                "{answers:?}"
            );
            // The database never granted past the limit: what the counters hold plus what the
            // leases hold stays within it, before and after the reservations are written.
            for store in &stores {
                store.flush().await;
            }
            let period = admitted[0].1.period.clone();
            let used = a.counters(&user, &period).await.unwrap();
            assert_eq!(used.get(Counter::TextRequests), 66);
            assert_eq!(used.get(Counter::CostUsd), 66 * 15_000_000);
            let cost_leased = leased(&raw, &user, Counter::CostUsd).await;
            assert!(
                66 * 15_000_000 + cost_leased <= 1_000_000_000,
                "leases hold {cost_leased}"
            );
            // Settled with less than reserved: counters move to what was used, one row each.
            for (i, (adm, r)) in admitted.iter().enumerate() {
                let store = stores[i % stores.len()];
                store
                    .settle((*r).clone(), record(adm, 5, 5, Some("0.001")))
                    .await
                    .unwrap();
            }
            for store in &stores {
                store.flush().await;
            }
            let used = a.counters(&user, &period).await.unwrap();
            assert_eq!(used.get(Counter::TextRequests), 66);
            assert_eq!(used.get(Counter::TextTokens), 66 * 10);
            assert_eq!(used.get(Counter::CostUsd), 66 * 1_000_000);
            assert_eq!(a.usage_log(Some(&user), 500).await.unwrap().len(), 66);
            // What was freed is admitted again, up to the next limit: $0.934 left would pay for
            // 62 more at $0.015, but the plan allows 100 requests, so 34.
            let more: Vec<Admission> = (0..100).map(|_| chat(&user)).collect();
            let answers = admit_all(&stores, more).await;
            assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 34);
        }
        for store in [&a, &b] {
            store.flush().await;
        }
        assert_eq!(a.open_reservations().await.unwrap(), 34 * 2);
        a.close().await;
        b.close().await;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases")
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(left, 0, "close gives every lease back");
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// Withdrawing a want is best effort: while the database refuses it, the admissions that
/// waited for the other instance's lease are still answered for what they are (admitted, or
/// refused for the quota, never `Unavailable`), and what they took from a lease is not lost.
#[tokio::test]
async fn admissions_that_waited_are_answered_when_their_want_cannot_be_withdrawn() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let (a, b) = two_instances(&db, &dir).await;
        let raw = db.raw().await;
        let refuse = match db.backend {
            Backend::Sqlite => {
                "CREATE TRIGGER keep_wants BEFORE DELETE ON lease_wants
                 BEGIN SELECT RAISE(ABORT, 'wants are kept'); END"
            }
            Backend::Postgres => {
                "CREATE FUNCTION keep_wants() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'wants are kept'; END $$;
                 CREATE TRIGGER keep_wants BEFORE DELETE ON lease_wants
                 FOR EACH ROW EXECUTE FUNCTION keep_wants()"
            }
        };
        sqlx::raw_sql(refuse).execute(&raw).await.unwrap();
        // As in the round above: money allows 66 of the 200, spread over both instances.
        let user = a.create_user(&unique("user"), "metered").await.unwrap().id;
        let answers = admit_all(&[&a, &b], (0..200).map(|_| chat(&user)).collect()).await;
        assert!(
            answers
                .iter()
                .all(|a| a.is_ok() || refused_as(a, &ErrorKind::QuotaExceeded)),
            "{answers:?}"
        );
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 66);
        let wants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lease_wants WHERE user_id = $1")
            .bind(&user)
            .fetch_one(&raw)
            .await
            .unwrap();
        assert!(wants > 0, "no admission waited for the other instance");
        let period = period_of(answers.iter().find_map(|a| a.as_ref().ok()).unwrap());
        for store in [&a, &b] {
            store.flush().await;
        }
        let used = a.counters(&user, &period).await.unwrap();
        assert_eq!(used.get(Counter::CostUsd), 66 * 15_000_000);
        a.close().await;
        b.close().await;
        let left = held_in_all(&raw).await;
        assert_eq!(left, 0, "every lease is given back whole");
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// An admission dropped on its way (its caller timed out, its client went away) leaves its
/// lease as it found it: once what was admitted is settled and the instances close, the
/// counters hold exactly what was settled and no lease holds anything. (Past the point where
/// an admission has taken from its lease, its only wait is for room in the writer's queue,
/// guarded; the withdrawal of its want is made by a task of its own.)
#[tokio::test]
async fn admissions_dropped_on_their_way_leave_their_lease_whole() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let (a, b) = two_instances(&db, &dir).await;
        let stores = [&a, &b];
        let raw = db.raw().await;
        let user = a.create_user(&unique("user"), "metered").await.unwrap().id;
        // 200 at once over both instances, as in the round above: those that do not fit their
        // instance's lease at once wait for a top-up or for the other instance's lease, and are
        // given up after 20 ms to 1.5 s, before, while and after they wait.
        let calls = (0..200u64).map(|i| {
            let store = stores[i as usize % 2];
            let admission = chat(&user);
            let patience = Duration::from_millis(20 + (i * 37) % 1_500);
            async move {
                let answer = tokio::time::timeout(patience, store.admit(admission.clone())).await;
                (i as usize % 2, admission, answer)
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        let (mut admitted, mut given_up) = (0u64, 0);
        for (store, admission, answer) in answers {
            match answer {
                Ok(Ok(reservation)) => {
                    admitted += 1;
                    stores[store]
                        .settle(reservation, record(&admission, 5, 5, Some("0.001")))
                        .await
                        .unwrap();
                }
                Ok(Err(e)) => assert_eq!(e.kind(), &ErrorKind::QuotaExceeded, "{e:?}"),
                Err(_) => given_up += 1,
            }
        }
        assert!(
            admitted > 0 && given_up > 0,
            "{admitted} admitted, {given_up} given up"
        );
        for store in stores {
            store.flush().await;
        }
        let period = a.plans().require("metered").unwrap().current_period();
        let used = a.counters(&user, &period).await.unwrap();
        assert_eq!(used.get(Counter::TextRequests), admitted);
        assert_eq!(used.get(Counter::CostUsd), admitted * 1_000_000);
        assert_eq!(a.open_reservations().await.unwrap(), 0);
        a.close().await;
        b.close().await;
        let left = held_in_all(&raw).await;
        assert_eq!(
            left, 0,
            "what a dropped admission took is given back with its lease"
        );
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_admission_given_up_while_its_journal_line_is_written_is_released() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    /// A waker that records being woken.
    struct Woken(AtomicBool);
    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    on_each_backend(|db| async move {
        let dir = temp_dir();
        let a = journaled(&db, &dir, "a.settlements").await;
        let raw = db.raw().await;
        let user = a.create_user(&unique("user"), "metered").await.unwrap().id;
        // A first request tops the lease up, so the next one is admitted from it at once.
        chat_admitted_and_settled(&a, &user).await;
        // The second is polled until it waits for its journal line's batch (the wait that
        // wakes itself at once, to let the requests ready with it add theirs), then dropped:
        // its reservation is queued by then, and must be released, not left open.
        let woken = Arc::new(Woken(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&woken));
        let mut admission = Box::pin(a.admit(chat(&user)));
        let mut polls = 0;
        loop {
            woken.0.store(false, Ordering::SeqCst);
            match admission.as_mut().poll(&mut Context::from_waker(&waker)) {
                Poll::Ready(answer) => panic!("answered before its line was written: {answer:?}"),
                Poll::Pending if woken.0.load(Ordering::SeqCst) => break,
                Poll::Pending => {
                    polls += 1;
                    assert!(polls < 1_000, "never reached the journal");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        drop(admission);
        let period = a.plans().require("metered").unwrap().current_period();
        let mut waited = Duration::ZERO;
        loop {
            a.flush().await;
            if a.open_reservations().await.unwrap() == 0 {
                break;
            }
            assert!(
                waited < Duration::from_secs(10),
                "the dropped admission is still open"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
        let used = a.counters(&user, &period).await.unwrap();
        assert_eq!(used.get(Counter::TextRequests), 1);
        assert_eq!(used.get(Counter::CostUsd), 1_000_000);
        a.close().await;
        assert_eq!(held_in_all(&raw).await, 0);
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_lease_goes_back_when_idle_and_when_its_instance_dies() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let options = db
            .options()
            .journal(dir.join("a.settlements"))
            .lease_idle(Duration::from_secs(1));
        let a = Store::connect_with(&db.url, options).await.unwrap();
        let raw = db.raw().await;
        let user = a.create_user(&unique("user"), "metered").await.unwrap().id;
        chat_admitted_and_settled(&a, &user).await;
        a.flush().await;
        assert!(leased(&raw, &user, Counter::CostUsd).await > 0);
        // Unused for a second, the lease is given back (checked ten times a second).
        let mut waited = Duration::ZERO;
        while leased(&raw, &user, Counter::CostUsd).await > 0 {
            assert!(
                waited < Duration::from_secs(10),
                "the idle lease was not given back"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            waited += Duration::from_millis(200);
        }

        // An instance that stops beating its heartbeat loses its leases to recovery.
        let b = journaled(&db, &dir, "b.settlements").await;
        let adm = chat(&user);
        let open = b.admit(adm).await.unwrap();
        b.flush().await;
        assert!(leased(&raw, &user, Counter::CostUsd).await > 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.heartbeat().await.unwrap();
        a.recover_stale(Duration::from_millis(40)).await.unwrap();
        assert_eq!(leased(&raw, &user, Counter::CostUsd).await, 0);
        let log = a.usage_log(Some(&user), 10).await.unwrap();
        assert_eq!(
            log.iter().filter(|r| r.status == RECOVERED).count(),
            1,
            "the dead instance's open reservation {} is charged",
            open.id
        );
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_plan_change_gives_the_users_leases_back() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let store = journaled(&db, &dir, "a.settlements").await;
        let raw = db.raw().await;
        let (user, other) = (
            store
                .create_user(&unique("user"), "metered")
                .await
                .unwrap()
                .id,
            store
                .create_user(&unique("user"), "metered")
                .await
                .unwrap()
                .id,
        );
        for u in [&user, &other] {
            let adm = chat(u);
            store.admit(adm).await.unwrap();
        }
        store.flush().await;
        assert!(leased(&raw, &user, Counter::CostUsd).await > 0);
        // Leases were sized to the old plan's limits: the user's go back at once, no one
        // else's.
        store.set_plan(&user, "pro").await.unwrap();
        store.flush().await;
        assert_eq!(leased(&raw, &user, Counter::CostUsd).await, 0);
        assert!(leased(&raw, &other, Counter::CostUsd).await > 0);
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// A reservation line as a process of this version journals it.
fn reserved_line(id: &str, request_id: &str, user: &str, period: &str, instance: &str) -> String {
    serde_json::json!({
        "reservation": id,
        "request_id": request_id,
        "user_id": user,
        "period": period,
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "modality": "text",
        "operation": "chat",
        "requests": 1,
        "tokens": 500,
        "units": 0,
        "cost_nanos": 5_000_000,
        "instance_id": instance,
        "created_at": 1_700_000_000_000i64,
    })
    .to_string()
}

/// One request admitted and settled through `store` (written at its next flush), as the dead
/// process `instance` had done before its kill: the two lines its journal still holds for it (a
/// segment goes only once every line in it is written), its request id and its period.
async fn written_request(
    store: &Store,
    user: &str,
    instance: &str,
) -> ([String; 2], String, String) {
    let done = text(user, "gemini", "gemini-2.5-flash", 500, Some("0.005"));
    let r = store.admit(done.clone()).await.unwrap();
    let lines = [
        reserved_line(&r.id, &done.request_id, user, &r.period, instance),
        journal_line(&r.id, &done.request_id, 30, 40, 70_000),
    ];
    let period = r.period.clone();
    store
        .settle(r, record(&done, 1, 2, Some("0.0001")))
        .await
        .unwrap();
    (lines, done.request_id, period)
}

#[tokio::test]
async fn a_killed_processs_reservations_are_replayed_from_its_journal() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let journal = dir.join("usage.settlements");
        let store = db.store().await;
        let user = store
            .create_user(&unique("user"), "enterprise")
            .await
            .unwrap()
            .id;
        // One request the dead process had written and settled before the kill.
        let dead = "ins_killed";
        let ([reserved, settled], done, period) = written_request(&store, &user, dead).await;
        store.flush().await;
        let lines = [
            reserved,
            settled,
            // Admitted, answered and settled, none of it written.
            reserved_line("res_answered", "req_answered", &user, &period, dead),
            // Admitted and cut off mid-call: no settlement.
            reserved_line("res_cut", "req_cut", &user, &period, dead),
            journal_line("res_answered", "req_answered", 30, 40, 70_000),
        ];
        std::fs::write(dir.join("usage.settlements.1"), lines.join("\n")).unwrap();
        let next = Store::connect_with(&db.url, db.options().journal(&journal))
            .await
            .unwrap();
        next.flush().await;
        let log = next.usage_log(Some(&user), 10).await.unwrap();
        let status = |id: &str| {
            let rows: Vec<_> = log.iter().filter(|r| r.request_id == id).collect();
            assert_eq!(rows.len(), 1, "{id}: one row in {log:?}");
            (rows[0].status.clone(), rows[0].tokens.input_tokens)
        };
        assert_eq!(status(&done), ("ok".to_owned(), 1));
        assert_eq!(status("req_answered"), ("ok".to_owned(), 30));
        // Recovered at once: the journal's lock proves its process dead.
        assert_eq!(status("req_cut"), (RECOVERED.to_owned(), 500));
        assert_eq!(log.len(), 3);
        assert_eq!(next.open_reservations().await.unwrap(), 0);
        let used = next.counters(&user, &period).await.unwrap();
        assert_eq!(used.get(Counter::TextRequests), 3);
        assert_eq!(used.get(Counter::TextTokens), 3 + 70 + 500);
        assert!(!dir.join("usage.settlements.1").exists());
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// Replay finds which journaled reservations the database has in one pass over the usage log:
/// a journal of more requests than one look-up took (256), every one written and settled before
/// the kill, is recognised whole; none is written again or recovered.
#[tokio::test]
async fn a_long_journal_of_written_requests_is_recognised_whole() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let journal = dir.join("long.settlements");
        let store = db.store().await;
        let user = store
            .create_user(&unique("user"), "enterprise")
            .await
            .unwrap()
            .id;
        let dead = "ins_killed_long";
        let mut lines = Vec::new();
        let mut period = String::new();
        for _ in 0..300 {
            let (written, _, its_period) = written_request(&store, &user, dead).await;
            lines.extend(written);
            period = its_period;
        }
        store.flush().await;
        lines.push(reserved_line(
            "res_cut_long",
            "req_cut_long",
            &user,
            &period,
            dead,
        ));
        std::fs::write(dir.join("long.settlements.1"), lines.join("\n")).unwrap();
        let next = Store::connect_with(&db.url, db.options().journal(&journal))
            .await
            .unwrap();
        next.flush().await;
        let log = next.usage_log(Some(&user), 1_000).await.unwrap();
        assert_eq!(log.len(), 301, "one row a request");
        let recovered: Vec<_> = log.iter().filter(|r| r.status == RECOVERED).collect();
        assert_eq!(recovered.len(), 1, "{recovered:?}");
        assert_eq!(recovered[0].request_id, "req_cut_long");
        // The first settlement of each written request stands.
        assert!(
            log.iter()
                .filter(|r| r.status != RECOVERED)
                .all(|r| r.tokens.input_tokens == 1)
        );
        let used = next.counters(&user, &period).await.unwrap();
        assert_eq!(used.get(Counter::TextRequests), 301);
        assert_eq!(used.get(Counter::TextTokens), 300 * 3 + 500);
        assert_eq!(next.open_reservations().await.unwrap(), 0);
        next.close().await;
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_burst_larger_than_a_batch_is_written_whole() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let store = journaled(&db, &dir, "burst.settlements").await;
        let user = store
            .create_user(&unique("user"), "enterprise")
            .await
            .unwrap()
            .id;
        // 2,500 requests queue 5,000 items: more than the writer takes in one transaction, so
        // batches are cut at the limit (no linger) and the rest follows.
        let admissions: Vec<Admission> = (0..2_500).map(|_| chat(&user)).collect();
        let answers = admit_all(&[&store], admissions.clone()).await;
        let period = period_of(answers[0].as_ref().unwrap());
        for (admission, answer) in admissions.iter().zip(answers) {
            let reservation = answer.expect("an enterprise plan admits every request");
            store
                .settle(reservation, record(admission, 5, 5, Some("0.001")))
                .await
                .unwrap();
        }
        store.flush().await;
        let raw = db.raw().await;
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_log WHERE user_id = $1")
            .bind(&user)
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(rows, 2_500, "one usage row a request");
        assert_eq!(store.open_reservations().await.unwrap(), 0);
        let used = store.counters(&user, &period).await.unwrap();
        assert_eq!(used.get(Counter::TextRequests), 2_500);
        assert_eq!(used.get(Counter::TextTokens), 2_500 * 10);
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// Many users' first requests at once: their leases are topped up together (one transaction
/// for all those waiting), and each user's lease is still its own: a quarter of what its own
/// counters leave, less what its own requests took.
#[tokio::test]
async fn many_users_first_requests_at_once_each_get_their_own_lease() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let store = journaled(&db, &dir, "many.settlements").await;
        let users = metered_users(&store, 40).await;
        // `metered`: $1 and 100 requests a month; three requests of $0.015 each per user.
        let admissions: Vec<Admission> = (0..3)
            .flat_map(|_| users.iter())
            .map(|user| chat(user))
            .collect();
        let answers = admit_all(&[&store], admissions).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        store.flush().await;
        let raw = db.raw().await;
        let period = period_of(answers[0].as_ref().unwrap());
        for user in &users {
            let used = store.counters(user, &period).await.unwrap();
            assert_eq!(used.get(Counter::TextRequests), 3);
            assert_eq!(used.get(Counter::CostUsd), 3 * 15_000_000);
            // Granted a quarter of what was left ($0.25, 25 requests), less the three taken.
            assert_eq!(
                leased(&raw, user, Counter::CostUsd).await,
                250_000_000 - 3 * 15_000_000
            );
            assert_eq!(leased(&raw, user, Counter::TextRequests).await, 25 - 3);
        }
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// A busy user's lease grows with its pace: each top-up that comes less than a second after
/// the last takes twice as many requests' worth (from a thousand), so a user making thousands
/// of requests a second tops up about once a second instead of several times, and the lease
/// keeps enough in hand to outlast a slow database.
#[tokio::test]
async fn a_busy_users_lease_grows_with_its_pace() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let store = journaled(&db, &dir, "busy.settlements").await;
        // `pro`: 50,000 requests and $50 a month; 20 tokens at $0.0001 a request.
        let user = store.create_user(&unique("user"), "pro").await.unwrap().id;
        let mut period = String::new();
        for _ in 0..12_000 {
            let admission = text(&user, "gemini", "gemini-2.5-flash", 20, Some("0.0001"));
            period = store.admit(admission).await.unwrap().period;
        }
        store.flush().await;
        let raw = db.raw().await;
        let used = store.counters(&user, &period).await.unwrap();
        assert_eq!(used.get(Counter::TextRequests), 12_000);
        let held = leased(&raw, &user, Counter::TextRequests).await;
        // With top-ups of a thousand requests' worth each (refilled once half is used), the
        // lease would hold at most 1,536 here. Grown, its grants went 1,024, 1,024, 2,048,
        // 4,096, 8,192...: it holds thousands more, and at least 2,048 unless this loop ran ten
        // times slower than on the machine it was written on (a grant is not doubled when the
        // last one lasted a second).
        assert!(held >= 2048, "the lease holds {held} requests");
        assert!(12_000 + held <= 50_000, "the lease holds {held} requests");
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}

/// A round of top-ups whose transaction fails answers every admission waiting in it with a
/// plain error (none hangs, none is granted anything, no database text), and the next top-up
/// asked for starts a new round that works.
#[tokio::test]
async fn a_failed_top_up_round_answers_everyone_waiting_and_the_next_round_works() {
    on_each_backend(|db| async move {
        let dir = temp_dir();
        let store = journaled(&db, &dir, "failed.settlements").await;
        let users = metered_users(&store, 5).await;
        let first =
            |users: &[String]| -> Vec<Admission> { users.iter().map(|u| chat(u)).collect() };
        // A top-up reads the wants of other instances: without their table it fails.
        let raw = db.raw().await;
        sqlx::query("ALTER TABLE lease_wants RENAME TO lease_wants_away")
            .execute(&raw)
            .await
            .unwrap();
        let answers =
            tokio::time::timeout(Duration::from_secs(10), admit_all(&[&store], first(&users)))
                .await
                .expect("every admission waiting for the failed round is answered");
        assert!(
            answers
                .iter()
                .all(|a| refused_as(a, &ErrorKind::Unavailable)),
            "{answers:?}"
        );
        let refused = store
            .admit(first(&users[..1]).remove(0))
            .await
            .expect_err("the table is still away");
        assert_eq!(refused.message(), "the gateway's database failed");
        for user in &users {
            assert_eq!(leased(&raw, user, Counter::CostUsd).await, 0);
        }
        sqlx::query("ALTER TABLE lease_wants_away RENAME TO lease_wants")
            .execute(&raw)
            .await
            .unwrap();
        let answers =
            tokio::time::timeout(Duration::from_secs(10), admit_all(&[&store], first(&users)))
                .await
                .expect("the next round is made");
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        store.flush().await;
        let period = period_of(answers[0].as_ref().unwrap());
        for user in &users {
            let used = store.counters(user, &period).await.unwrap();
            assert_eq!(used.get(Counter::TextRequests), 1);
        }
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    })
    .await;
}
