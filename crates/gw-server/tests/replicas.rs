//! A limit configured once holds across replicas: two gateway processes sharing Redis admit
//! together no more than the limit.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::process::{spawn_gateway, write_config};

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
        let config = dir.path().join(format!("replica{i}.toml"));
        let url = write_config(
            &config,
            &format!(
                "[store]\nenabled = false\n\
                 [[auth.keys]]\nname = \"shared\"\nkey = \"sk-replica-test\"\n\
                 [rate_limits.store]\nbackend = \"redis\"\nurl = \"{redis}\"\nprefix = \"{prefix}\"\n\
                 [rate_limits.keys]\nrequests_per_minute = 10\n\
                 [providers.gemini]\nbase_url = \"{upstream}\"\napi_key = \"k\"\n"
            ),
        );
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

/// A key revoked and a plan changed elsewhere (another replica, `gateway admin` on the same
/// database) stop applying on a replica that remembered them within a second, not after its
/// caches' 10 s; on SQLite (another process's writes to the same file) and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_and_plan_changes_reach_every_replica_within_a_second() {
    for (url, _dir) in support::databases("auth_changes") {
        let mock = gw_mock::MockUpstream::start((0..4).map(|_| support::gemini_ok("hi")).collect())
            .await
            .unwrap();
        // The replica under test, and the "other process": a store handle of its own.
        let replica = support::open_store(&url).await;
        let admin = support::open_store(&url).await;
        let (user, key) = support::user(&admin, "pro").await;
        let server = support::start(&support::config_for(mock.url()), Some(replica)).await;
        let chat = |model: &'static str, key: String| {
            let url = server.url.clone();
            async move {
                support::post_chat(&url, &key, &support::chat_body(model, false))
                    .await
                    .status()
                    .as_u16()
            }
        };
        // Remembered: the key and the plan (Pro allows gemini-2.5-pro).
        assert_eq!(
            chat("gemini/gemini-2.5-pro", key.clone()).await,
            200,
            "{url}"
        );

        // The plan changes elsewhere: Free has no gemini-2.5-pro.
        admin.set_plan(&user.id, "free").await.unwrap();
        let took = until_status(403, || chat("gemini/gemini-2.5-pro", key.clone())).await;
        assert!(
            took < Duration::from_millis(1200),
            "{url}: plan change after {took:?}"
        );

        // The key is revoked elsewhere.
        let keys = admin.list_keys(&user.id).await.unwrap();
        admin.revoke_key(&keys[0].id).await.unwrap();
        let took = until_status(401, || chat("gemini/gemini-2.5-flash", key.clone())).await;
        assert!(
            took < Duration::from_millis(1200),
            "{url}: revocation after {took:?}"
        );
    }
}

/// How long until `call` answers `status` (tried every 50 ms, for 2 s at most).
async fn until_status<F, Fut>(status: u16, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        if call().await == status {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {status} within 2 s");
}
