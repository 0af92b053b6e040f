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

/// A job of `MODEL` made through `server` for `key`, then found completed at the provider by its
/// owner's `GET` (the provider's next steps: [`made_and_completed`]); its id.
async fn completed_video(server: &str, key: &str) -> String {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{server}/v1/videos"))
        .bearer_auth(key)
        .json(&json!({"model": format!("wavespeed/{MODEL}"), "prompt": "A fox in the snow"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let done: Value = support::get_json(server, key, &format!("/v1/videos/{id}")).await;
    assert_eq!(done["status"], "completed", "{done}");
    id
}

/// WaveSpeed's answers to one job, task `task`, made and then found completed with `output`.
fn made_and_completed(task_id: &str, output: &str) -> Vec<UpstreamStep> {
    use support::wavespeed::task;
    vec![
        step(
            "POST",
            &format!("/api/v3/{MODEL}"),
            task(task_id, MODEL, "created", json!([])),
        ),
        step(
            "GET",
            &format!("/api/v3/predictions/{task_id}/result"),
            task(task_id, MODEL, "completed", json!([output])),
        ),
    ]
}

/// The largest video the content tests let through (`[jobs] max_content_bytes`).
const LIMIT: usize = 64 * 1024;
/// How the test CDN cuts its bodies.
const CHUNK: usize = 16 * 1024;

/// A CDN written by hand, to send bodies no client library would: `/whole.mp4`, three chunks
/// within [`LIMIT`]; `/big.mp4`, six chunks without a declared length, past it;
/// `/declared.mp4`, a declared length past it.
async fn cdn() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let path = request.split(' ').nth(1).unwrap_or_default();
                let head = "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\nconnection: close\r\n";
                let chunked = |n: usize| {
                    let mut out = format!("{head}transfer-encoding: chunked\r\n\r\n").into_bytes();
                    for i in 0..n {
                        out.extend_from_slice(format!("{CHUNK:x}\r\n").as_bytes());
                        out.extend_from_slice(&[i as u8; CHUNK]);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                    out
                };
                let answer = match path {
                    "/whole.mp4" => chunked(3),
                    "/big.mp4" => chunked(6),
                    "/declared.mp4" => {
                        let mut out =
                            format!("{head}content-length: {}\r\n\r\n", LIMIT + 1).into_bytes();
                        out.extend_from_slice(&vec![0; LIMIT + 1]);
                        out
                    }
                    _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
                };
                // The gateway hangs up on a body past the limit: not this server's concern.
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// `GET /v1/videos/{id}/content` passes the provider's file on as it arrives, within
/// `[jobs] max_content_bytes`: a file within it comes whole; one that announces more is refused
/// before anything is sent; one that passes it without announcing it is cut off with a broken
/// transfer, never ended as if it were whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_streamed_within_the_limit_and_cut_past_it() {
    let cdn = cdn().await;
    let tasks = [
        "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        "1a1b2c3d4e5f40718293a4b5c6d7e8f9",
        "2a1b2c3d4e5f40718293a4b5c6d7e8f9",
    ];
    let mut steps = Vec::new();
    for (task, file) in tasks.iter().zip(["whole", "declared", "big"]) {
        steps.extend(made_and_completed(task, &format!("{cdn}/{file}.mp4")));
    }
    let api = MockUpstream::start(steps).await.unwrap();
    let config = gw_server::Config::from_toml(
        &format!(
            "[jobs]\npoll_interval_ms = 0\nmax_content_bytes = {LIMIT}\n\
             [providers.wavespeed]\nbase_url = \"{}\"\napi_key = \"k\"\n\
             downloads = {{ allow_private = true }}\n",
            api.url()
        ),
        "test config",
        std::iter::empty(),
    )
    .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = support::start(&config, Some(store)).await;
    let http = reqwest::Client::new();
    let content = |id: String| {
        http.get(format!("{}/v1/videos/{id}/content", server.url))
            .bearer_auth(&key)
            .send()
    };

    let whole = completed_video(&server.url, &key).await;
    let response = content(whole).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    let body = response.bytes().await.unwrap();
    let expected: Vec<u8> = (0..3u8).flat_map(|i| [i; CHUNK]).collect();
    assert_eq!(&body[..], &expected[..]);

    let declared = completed_video(&server.url, &key).await;
    let response = content(declared).await.unwrap();
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("larger than {LIMIT} bytes")),
        "{error}"
    );

    let big = completed_video(&server.url, &key).await;
    let mut response = content(big).await.unwrap();
    // The status was sent with the first chunks; the body then breaks off.
    assert_eq!(response.status(), 200);
    let mut received = 0;
    let broke = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(broke, "a body past the limit ended as if whole");
    assert!(received <= LIMIT, "{received} bytes passed on");
    assert!(api.verify().is_empty(), "{:?}", api.verify());
}

/// The owner's `GET /v1/videos/{id}` asks the provider only under the job's lease, as the
/// poller does: while another replica holds it, or another request of this one is asking, it
/// answers the job as stored; once it has asked, it gives the lease up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_asks_the_provider_only_under_the_jobs_lease() {
    let dir = support::tempfile_dir::TempDir::new("video-lease");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let store = open_store(&db).await;
    // Another replica: its own instance on the same database.
    let replica = open_store(&db).await;
    assert_ne!(store.instance_id(), replica.instance_id());
    let (_alice, key) = user(&store, "pro").await;
    let result = format!("/api/v3/predictions/{TASK}/result");
    let mut slow = task("processing", json!([]));
    // Long enough for a second request to come while the first one asks.
    slow.delay_ms = Some(500);
    let api = MockUpstream::start(vec![
        step(
            "POST",
            &format!("/api/v3/{MODEL}"),
            task("created", json!([])),
        ),
        step("GET", &result, slow),
    ])
    .await
    .unwrap();
    let config = gw_server::Config::from_toml(
        &format!(
            "[jobs]\npoll_interval_ms = 0\n\
             [providers.wavespeed]\nbase_url = \"{}\"\napi_key = \"k\"\n",
            api.url()
        ),
        "test config",
        std::iter::empty(),
    )
    .unwrap();
    let server = support::start(&config, Some(store.clone())).await;
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/videos", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": format!("wavespeed/{MODEL}"), "prompt": "A fox"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/videos/{id}");

    // The other replica's poller holds the lease: the job as stored, the provider not asked.
    assert!(
        replica
            .claim_video_job(&id, Duration::from_secs(60))
            .await
            .unwrap()
    );
    let seen = support::get_json(&server.url, &key, &path).await;
    assert_eq!(seen["status"], "queued", "{seen}");
    assert_eq!(api.received().len(), 1, "the provider was asked");

    // Released: of two requests at once, one asks the provider; the other answers the job as
    // stored rather than ask too.
    replica.release_video_job(&id).await.unwrap();
    let (a, b) = tokio::join!(
        support::get_json(&server.url, &key, &path),
        support::get_json(&server.url, &key, &path)
    );
    let mut statuses = [a["status"].clone(), b["status"].clone()];
    statuses.sort_by_key(ToString::to_string);
    assert_eq!(statuses, [json!("in_progress"), json!("queued")]);
    assert_eq!(api.received().len(), 2, "{:?}", api.verify());
    assert_eq!(
        store.video_job_by_id(&id).await.unwrap().unwrap().status,
        JobState::InProgress
    );
    // The lease was given up once asked: another replica may take the job at once.
    assert!(
        replica
            .claim_video_job(&id, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(api.verify().is_empty(), "{:?}", api.verify());
}
