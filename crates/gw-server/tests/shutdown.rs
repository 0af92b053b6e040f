//! Graceful shutdown of the real process: on SIGTERM the gateway takes no new connection, lets a
//! request in flight finish within `[server] drain_ms`, cancels one that would run longer (503,
//! settled at once: it reached the provider, so it is charged at what was reserved), writes
//! every usage row, and exits cleanly.

mod support;

use std::time::{Duration, Instant};

use gw_mock::MockUpstream;
use gw_mock::fixture::UpstreamStep;
use gw_store::Store;
use support::process::{spawn_gateway, write_config};
use support::{chat_body, gemini_ok, open_store, user};

/// `gemini_ok`, answered after `ms`.
fn slow(ms: u64) -> UpstreamStep {
    let mut step = gemini_ok("Hi!");
    step.respond.delay_ms = Some(ms);
    step
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_cancels_and_settles_everything() {
    let dir = support::tempfile_dir::TempDir::new("shutdown");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let store = open_store(&db).await;
    let (alice, key) = user(&store, "pro").await;
    // The first request finishes within the drain time; the second would take far longer.
    let upstream = MockUpstream::start(vec![slow(600), slow(20_000)])
        .await
        .unwrap();

    let config = dir.path().join("gateway.toml");
    let url = write_config(
        &config,
        &format!(
            "drain_ms = 1500\n\
             [store]\nurl = \"{db}\"\n\
             [providers.gemini]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n",
            upstream.url()
        ),
    );
    let mut gateway = spawn_gateway(&config, &url).await;

    let send = |key: String, url: String| {
        tokio::spawn(async move {
            support::post_chat(&url, &key, &chat_body("gemini/gemini-2.5-flash", false)).await
        })
    };
    let quick = send(key.clone(), url.clone());
    wait_for(|| upstream.received().len() == 1).await;
    let slow_one = send(key.clone(), url.clone());
    wait_for(|| upstream.received().len() == 2).await;

    let terminated = Instant::now();
    gateway.terminate();
    // No new connection once the shutdown has begun.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        reqwest::get(format!("{url}/healthz")).await.is_err(),
        "a new connection was accepted during the drain"
    );

    let quick = quick.await.unwrap();
    assert_eq!(quick.status(), 200, "finished within the drain time");
    let slow_one = slow_one.await.unwrap();
    assert_eq!(
        slow_one.status(),
        503,
        "cancelled when the drain time was over"
    );
    let body: serde_json::Value = slow_one.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{body}"
    );
    let waited = terminated.elapsed();
    assert!(
        waited >= Duration::from_millis(1_400),
        "cancelled before the drain time: {waited:?}"
    );
    let exited = tokio::task::spawn_blocking(move || {
        let status = gateway.exited_within(Duration::from_secs(10));
        (gateway, status)
    })
    .await
    .unwrap();
    assert!(
        exited.1.is_some_and(|s| s.success()),
        "the gateway did not exit cleanly: {:?}",
        exited.1
    );

    // Every usage row written by the process before it exited: the finished request at what it
    // used, the cancelled one at what was reserved (the provider had it), none left open.
    let store = Store::connect(&db).await.unwrap();
    let mut log = store.usage_log(Some(&alice.id), 10).await.unwrap();
    log.sort_by_key(|r| r.status == "ok");
    assert_eq!(log.len(), 2, "{log:?}");
    let (cancelled, finished) = (&log[0], &log[1]);
    assert_eq!(finished.status, "ok");
    assert!(!finished.estimated);
    assert_ne!(cancelled.status, "ok");
    assert!(
        cancelled.estimated && cancelled.cost.is_some(),
        "{cancelled:?}"
    );
    assert_eq!(store.open_reservations().await.unwrap(), 0);
}

async fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
