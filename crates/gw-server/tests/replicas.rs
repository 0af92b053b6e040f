//! A limit configured once holds across replicas: two gateway processes sharing Redis admit
//! together no more than the limit.

mod support;

use std::net::SocketAddr;
use std::time::Instant;

use support::process::{free_port, spawn_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_redis_admit_no_more_than_the_limit() {
    let Ok(redis) = std::env::var("GATEWAY_TEST_REDIS_URL") else {
        println!("skipped: GATEWAY_TEST_REDIS_URL is not set");
        return;
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let _mock = tokio::spawn(async move {
        let _ = axum::serve(listener, gw_mock::canned::router()).await;
    });

    let dir = support::tempfile_dir::TempDir::new("replicas");
    let prefix = format!("llm-gateway-test:{}", fastrand::u64(..));
    let mut replicas = Vec::new();
    let mut urls = Vec::new();
    for i in 0..2 {
        let port = free_port();
        let config = dir.path().join(format!("replica{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n\
                 [store]\nenabled = false\n\
                 [[auth.keys]]\nname = \"shared\"\nkey = \"sk-replica-test\"\n\
                 [rate_limits.store]\nbackend = \"redis\"\nurl = \"{redis}\"\nprefix = \"{prefix}\"\n\
                 [rate_limits.keys]\nrequests_per_minute = 10\n\
                 [providers.gemini]\nbase_url = \"{upstream}\"\napi_key = \"k\"\n"
            ),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        replicas.push(spawn_gateway(&config, &url).await);
        urls.push(url);
    }

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut ok = 0;
    let mut limited = 0;
    for i in 0..40 {
        let response = client
            .post(format!("{}/v1/chat/completions", urls[i % 2]))
            .bearer_auth("sk-replica-test")
            .json(&serde_json::json!({"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // 10 per minute with a burst of 10: one more is earned every 6 s of the run.
    let earned = (started.elapsed().as_secs() / 6) as usize;
    assert!(
        (10..=10 + earned).contains(&ok),
        "{ok} admitted, {limited} limited, over {:?}",
        started.elapsed()
    );
    assert_eq!(ok + limited, 40);
    drop(replicas);
}
