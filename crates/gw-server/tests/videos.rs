//! Video jobs through the server: created, followed and served to their owner alone, and
//! charged once, even when the gateway process is killed in the middle of a job.

mod support;

use std::time::{Duration, Instant};

use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_store::{Counter, JobState};
use llm_gateway::Modality;
use serde_json::{Value, json};
use support::process::{free_port, spawn_gateway};
use support::{open_store, user};

const MODEL: &str = "wavespeed-ai/hunyuan-video-1.5/text-to-video";
const TASK: &str = "6488c2754f6f4dfea924382fa14d11bd";
/// Not a real MP4, but the bytes the gateway must pass on unchanged.
const VIDEO: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";

fn task(status: &str, outputs: Value) -> Respond {
    Respond::json(json!({
        "code": 200, "message": "success",
        "data": {"id": TASK, "model": MODEL, "outputs": outputs, "has_nsfw_contents": [],
                 "status": status, "error": "", "timings": {"inference": 0}}
    }))
}

fn step(method: &str, path: &str, respond: Respond) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            method: Some(method.into()),
            path: Some(path.into()),
            ..UpstreamExpect::default()
        },
        respond,
    }
}

fn config(port: u16, db: &str, wavespeed: &str, poll_ms: u64) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\
         [store]\nurl = \"{db}\"\nheartbeat_ms = 100\nstale_after_ms = 500\n\
         [jobs]\npoll_interval_ms = {poll_ms}\n\
         [providers.wavespeed]\nbase_url = \"{wavespeed}\"\napi_key = \"provider-key\"\n\
         downloads = {{ allow_private = true }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_outlives_a_killed_gateway_and_is_charged_once() {
    let dir = support::tempfile_dir::TempDir::new("video-killed");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let store = open_store(&db).await;
    let (alice, key) = user(&store, "pro").await;
    let (_bob, bob_key) = user(&store, "pro").await;

    let cdn = MockUpstream::start(vec![step(
        "GET",
        "/predictions/0.mp4",
        Respond {
            headers: [("content-type".to_owned(), "video/mp4".to_owned())].into(),
            base64: Some(llm_gateway::encode_base64(VIDEO)),
            ..Respond::default()
        },
    )])
    .await
    .unwrap();
    let output = format!("{}/predictions/0.mp4", cdn.url());
    let result = format!("/api/v3/predictions/{TASK}/result");
    let api = MockUpstream::start(vec![
        step(
            "POST",
            &format!("/api/v3/{MODEL}"),
            task("created", json!([])),
        ),
        step("GET", &result, task("processing", json!([]))),
        step("GET", &result, task("completed", json!([output]))),
    ])
    .await
    .unwrap();

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config_path = dir.path().join("gateway.toml");
    // The first process never polls on its own: the job is where its one GET left it.
    std::fs::write(&config_path, config(port, &db, api.url(), 0)).unwrap();
    let first = spawn_gateway(&config_path, &url).await;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{url}/v1/videos"))
        .bearer_auth(&key)
        .json(
            &json!({"model": format!("wavespeed/{MODEL}"), "prompt": "A fox in the snow",
                      "seconds": "8"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["object"], "video");
    assert_eq!(created["status"], "queued");
    assert_eq!(created["seconds"], "8");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("video_"), "{id}");

    let get = |key: &str, path: String| http.get(format!("{url}{path}")).bearer_auth(key).send();
    let seen: Value = get(&key, format!("/v1/videos/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["status"], "in_progress");
    let other = get(&bob_key, format!("/v1/videos/{id}")).await.unwrap();
    assert_eq!(other.status(), 404, "another user's job is not found");
    let early = get(&key, format!("/v1/videos/{id}/content")).await.unwrap();
    assert_eq!(early.status(), 400);
    let early: Value = early.json().await.unwrap();
    assert_eq!(early["error"]["type"], "invalid_request_error");

    drop(first); // SIGKILL while the job runs at the provider
    assert_eq!(store.open_reservations().await.unwrap(), 1);

    // The next process polls on its own; its maintenance must not charge the job's
    // reservation at the estimate although the instance that made it is dead.
    std::fs::write(&config_path, config(port, &db, api.url(), 100)).unwrap();
    let _second = spawn_gateway(&config_path, &url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job = store.video_job_by_id(&id).await.unwrap().unwrap();
        if job.settled {
            assert_eq!(job.status, JobState::Completed);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job was never resumed: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several heartbeats and recoveries pass: nothing more is charged.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let done = get(&key, format!("/v1/videos/{id}")).await.unwrap();
    assert_eq!(done.status(), 200);
    assert_ne!(done.headers()["x-gateway-cost-usd"], "unknown");
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["progress"], 100);
    assert!(done["completed_at"].is_i64(), "{done}");
    let content = get(&key, format!("/v1/videos/{id}/content")).await.unwrap();
    assert_eq!(content.status(), 200);
    assert_eq!(content.headers()["content-type"], "video/mp4");
    assert_eq!(&content.bytes().await.unwrap()[..], VIDEO);
    let stolen = get(&bob_key, format!("/v1/videos/{id}/content"))
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);

    let log = store.usage_log(Some(&alice.id), 10).await.unwrap();
    assert_eq!(log.len(), 1, "charged once: {log:?}");
    assert_eq!(
        (log[0].status.as_str(), log[0].modality, log[0].units),
        ("ok", Modality::Video, 8)
    );
    assert!(!log[0].estimated);
    // 8 s, not the model's default 5: the restarted process knows what was asked.
    assert_eq!(log[0].cost, Some("0.32".parse().unwrap()), "8 s at 720p");
    let period = store.plans().require("pro").unwrap().current_period();
    let used = store.counters(&alice.id, &period).await.unwrap();
    assert_eq!(used.get(Counter::Requests(Modality::Video)), 1);
    assert_eq!(used.get(Counter::Volume(Modality::Video)), 8);
    assert_eq!(store.open_reservations().await.unwrap(), 0);
    assert!(api.verify().is_empty(), "{:?}", api.verify());
    assert!(cdn.verify().is_empty(), "{:?}", cdn.verify());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_has_no_video_and_is_refused_before_the_provider() {
    let dir = support::tempfile_dir::TempDir::new("video-free");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let store = open_store(&db).await;
    let (_carol, key) = user(&store, "free").await;
    let api = MockUpstream::start(vec![]).await.unwrap();
    let config = gw_server::Config::from_toml(
        &format!(
            "[jobs]\npoll_interval_ms = 0\n[providers.wavespeed]\nbase_url = \"{}\"\napi_key = \"k\"\n",
            api.url()
        ),
        "test config",
        std::iter::empty(),
    )
    .unwrap();
    let server = support::start(&config, Some(store)).await;
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/videos", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": format!("wavespeed/{MODEL}"), "prompt": "A fox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["type"], "permission_error");
    assert!(api.verify().is_empty(), "{:?}", api.verify());
    let missing = reqwest::Client::new()
        .get(format!("{}/v1/videos/video_nope", server.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
