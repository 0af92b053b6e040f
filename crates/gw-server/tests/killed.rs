//! A gateway process killed in the middle of a stream loses no accounting: the next process on
//! the same database settles the open reservation at its estimate and logs it. Killed under
//! load, every request it admitted ends with exactly one usage row.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use futures_util::StreamExt;
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamStep};
use support::process::{spawn_gateway, write_config};
use support::{chat_body, databases, open_store, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_by_a_killed_process_is_recovered_and_logged() {
    let dir = support::tempfile_dir::TempDir::new("killed");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let store = open_store(&db).await;
    let (alice, key) = user(&store, "free").await;

    let slow = Respond {
        sse_interval_ms: Some(60_000),
        ..Respond::sse([
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"The first words "}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"never arrive"}]},"finishReason":"STOP","index":0}]}"#,
        ])
    };
    let mock = MockUpstream::start(vec![UpstreamStep {
        respond: slow,
        ..UpstreamStep::default()
    }])
    .await
    .unwrap();

    let config = dir.path().join("gateway.toml");
    let url = write_config(
        &config,
        &format!(
            "[store]\nurl = \"{db}\"\nheartbeat_ms = 100\nstale_after_ms = 500\n\
             [providers.gemini]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n",
            mock.url()
        ),
    );

    let first = spawn_gateway(&config, &url).await;
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body("gemini/gemini-2.5-flash", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-gateway-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("The first words") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }

    drop(first); // SIGKILL mid-stream: no settlement can run
    // Admitted from a lease, the reservation is in the journal before the upstream call; its
    // row may or may not have been written by the time of the kill.
    assert!(store.open_reservations().await.unwrap() <= 1);
    assert!(
        store
            .usage_log(Some(&alice.id), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let _second = spawn_gateway(&config, &url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let log = store.usage_log(Some(&alice.id), 10).await.unwrap();
        if let Some(row) = log.into_iter().find(|r| r.request_id == request_id) {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "the killed request was never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.status, gw_store::RECOVERED);
    assert!(row.estimated);
    assert!(
        row.cost.is_some_and(|c| c > llm_gateway::Cost::ZERO),
        "charged at the estimate: {row:?}"
    );
    assert_eq!(store.open_reservations().await.unwrap(), 0);
}

/// Gemini's `generateContent`, answering after 200 ms, counting its calls.
async fn slow_upstream() -> (String, Arc<AtomicUsize>) {
    async fn answer(State(calls): State<Arc<AtomicUsize>>) -> Json<serde_json::Value> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        Json(serde_json::json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1,
                              "totalTokenCount": 4}
        }))
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/v1beta/models/{*model}", post(answer))
        .with_state(calls.clone());
    (support::serve(router).await, calls)
}

/// `kill -9` with 64 requests in flight (admitted, some at the provider, some not yet sent),
/// then a restart: each admitted request ends with exactly one usage row (`ok` for the answers
/// the clients got, their settlements replayed from the journal when the database did not have
/// them yet; `recovered` at the estimate for the others), and the counters equal the log,
/// nothing left reserved. On SQLite (the journal beside the database file, by default) and
/// PostgreSQL (the journal configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_under_load_leaves_one_usage_row_per_admitted_request() {
    for (db, dir) in databases("killed_under_load") {
        let dir = dir.unwrap_or_else(|| support::tempfile_dir::TempDir::new("killed_pg"));
        let store = open_store(&db).await;
        let (who, key) = user(&store, "pro").await;
        let (upstream, calls) = slow_upstream().await;
        let config = dir.path().join("gateway.toml");
        let journal = if db.starts_with("postgres") {
            "journal = \"pg.settlements\"\n"
        } else {
            ""
        };
        let url = write_config(
            &config,
            &format!(
                "[store]\nurl = \"{db}\"\nheartbeat_ms = 100\nstale_after_ms = 500\n{journal}\
                 [providers.gemini]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\n"
            ),
        );

        let first = spawn_gateway(&config, &url).await;
        let client = reqwest::Client::new();
        let load = {
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            tokio::spawn(async move {
                let requests = (0..400).map(|_| {
                    let (client, url, key) = (client.clone(), url.clone(), key.clone());
                    async move {
                        let response = client
                            .post(format!("{url}/v1/chat/completions"))
                            .bearer_auth(&key)
                            .json(&chat_body("gemini/gemini-2.5-flash", false))
                            .send()
                            .await
                            .ok()?;
                        let id = response.headers().get("x-gateway-request-id")?.to_owned();
                        (response.status() == 200 && response.bytes().await.is_ok())
                            .then(|| id.to_str().unwrap().to_owned())
                    }
                });
                futures_util::stream::iter(requests)
                    .buffer_unordered(64)
                    .filter_map(|answered| async move { answered })
                    .collect::<Vec<String>>()
                    .await
            })
        };
        // Some answers out, 64 in flight.
        while calls.load(Ordering::SeqCst) < 100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(first);
        let answered = load.await.unwrap();
        assert!(
            answered.len() < 400,
            "{db}: the kill cut nothing ({} answered)",
            answered.len()
        );

        let _second = spawn_gateway(&config, &url).await;
        let period = store.plans().require("pro").unwrap().current_period();
        let deadline = Instant::now() + Duration::from_secs(20);
        let log = loop {
            let log = store.usage_log(Some(&who.id), 1000).await.unwrap();
            let counted = store
                .counters(&who.id, &period)
                .await
                .unwrap()
                .get(gw_store::Counter::TextRequests);
            // Every admission counted a request; a settled or recovered one has its row.
            if counted == log.len() as u64 {
                break log;
            }
            assert!(
                Instant::now() < deadline,
                "{db}: {counted} admitted, {} usage rows",
                log.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut rows: HashMap<&str, Vec<&str>> = HashMap::new();
        for row in &log {
            rows.entry(row.request_id.as_str())
                .or_default()
                .push(row.status.as_str());
        }
        assert_eq!(rows.len(), log.len(), "{db}: a request with two rows");
        // An answered request whose settlement was still queued for the database when the
        // process died is written from the journal by the next start, with what it used.
        for id in &answered {
            assert_eq!(
                rows.get(id.as_str()).map(Vec::as_slice),
                Some(&["ok"][..]),
                "{db}: an answered request"
            );
        }
        let recovered = log
            .iter()
            .filter(|r| r.status == gw_store::RECOVERED)
            .count();
        assert!(recovered > 0, "{db}: nothing was cut mid-request");
        assert!(
            log.len() >= calls.load(Ordering::SeqCst),
            "{db}: a provider call without its row"
        );
    }
}
