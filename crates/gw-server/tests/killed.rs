//! A gateway process killed in the middle of a stream loses no accounting: the next process on
//! the same database settles the open reservation at its estimate and logs it.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamStep};
use support::process::{free_port, spawn_gateway};
use support::{chat_body, open_store, user};

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

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [store]\nurl = \"{db}\"\nheartbeat_ms = 100\nstale_after_ms = 500\n\
             [providers.gemini]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n",
            mock.url()
        ),
    )
    .unwrap();

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
    assert_eq!(store.open_reservations().await.unwrap(), 1);
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
