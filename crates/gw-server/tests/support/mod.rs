//! Shared test harness: a gateway over a store on a mock upstream.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use gw_mock::fixture::{Respond, UpstreamStep};
use gw_server::{AppState, Config, app};
use gw_store::{Store, StoreOptions};
use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "admin-key-for-tests-0123456789";

pub struct Server {
    pub url: String,
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name no other test or run uses (the Postgres database is shared between runs).
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The databases to run a test on: a fresh SQLite file always, and PostgreSQL when
/// `GATEWAY_TEST_POSTGRES_URL` is set (saying so when it is not).
pub fn databases(test: &str) -> Vec<(String, Option<tempfile_dir::TempDir>)> {
    let dir = tempfile_dir::TempDir::new(test);
    let mut out = vec![(
        format!("sqlite://{}", dir.path().join("gateway.db").display()),
        Some(dir),
    )];
    match std::env::var("GATEWAY_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => out.push((url, None)),
        _ => println!("{test}: PostgreSQL part skipped: GATEWAY_TEST_POSTGRES_URL is not set"),
    }
    out
}

/// A minimal temporary directory, removed on drop.
pub mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(super::unique(&format!("gw-server-{name}")));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub async fn open_store(url: &str) -> Store {
    Store::connect_with(url, StoreOptions::new().max_connections(8))
        .await
        .unwrap()
}

pub fn config_for(upstream: &str) -> Config {
    let text = format!(
        "[retry]\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [providers.gemini]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\nmodels = [\"gemini-2.5-flash\"]\n\
         [providers.hf]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\n"
    );
    Config::from_toml(&text, "test config", std::iter::empty()).unwrap()
}

/// Starts the app over `store` with the admin routes on.
pub async fn start(config: &Config, store: Option<Store>) -> Server {
    let state = AppState::from_config_with_store(config, store)
        .await
        .unwrap()
        .with_admin_key(ADMIN_KEY.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = state.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app(served)).await.unwrap();
    });
    Server { url, state, task }
}

/// Serves `router` on a free local port (an upstream a test writes itself); returns its URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

/// A user on `plan` with a key.
pub async fn user(store: &Store, plan: &str) -> (gw_store::User, String) {
    let user = store.create_user(&unique("user"), plan).await.unwrap();
    let (_, key) = store.create_key(&user.id, "test").await.unwrap();
    (user, key.expose().to_owned())
}

pub fn gemini_ok(text: &str) -> UpstreamStep {
    UpstreamStep {
        respond: Respond::json(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
        })),
        ..UpstreamStep::default()
    }
}

pub fn chat_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hi"}], "stream": stream,
           "stream_options": {"include_usage": true}})
}

/// `GET {url}{path}` with `key`, decoded as JSON.
pub async fn get_json(url: &str, key: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn post_chat(url: &str, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The id the gateway gave `response` (`x-gateway-request-id`).
#[allow(dead_code)]
pub fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-gateway-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The `gateway` binary as a child process, for tests that kill it or run several replicas.
pub mod process {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A running gateway process, killed when dropped.
    pub struct Gateway(Child);

    impl Gateway {
        /// Sends the process SIGTERM, as an orchestrator stopping it does.
        #[allow(dead_code)]
        pub fn terminate(&self) {
            let status = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -TERM failed");
        }

        /// Waits (at most `within`) for the process to exit; its status, if it did.
        #[allow(dead_code)]
        pub fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.0.try_wait() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        }
    }

    impl Drop for Gateway {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Writes a config to `path` for a gateway on a free port: `[server]` with its `listen`,
    /// then `rest` (which may go on with `[server]` keys); returns the gateway's URL.
    #[allow(dead_code)]
    pub fn write_config(path: &std::path::Path, rest: &str) -> String {
        let port = free_port();
        let config = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{rest}");
        std::fs::write(path, config).unwrap();
        format!("http://127.0.0.1:{port}")
    }

    pub async fn spawn_gateway(config: &std::path::Path, url: &str) -> Gateway {
        spawn_gateway_with_env(config, url, &[]).await
    }

    /// [`spawn_gateway`] with `env` added to the process's environment.
    pub async fn spawn_gateway_with_env(
        config: &std::path::Path,
        url: &str,
        env: &[(&str, &str)],
    ) -> Gateway {
        spawn(config, url, env, Stdio::inherit()).await
    }

    /// [`spawn_gateway`] logging at `info` (one line per request) into the file `log`.
    #[allow(dead_code)]
    pub async fn spawn_gateway_logging_to(
        config: &std::path::Path,
        url: &str,
        log: &std::path::Path,
    ) -> Gateway {
        let file = std::fs::File::create(log).unwrap();
        spawn(config, url, &[("RUST_LOG", "info")], file.into()).await
    }

    async fn spawn(
        config: &std::path::Path,
        url: &str,
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Gateway {
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let gateway = Gateway(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if reqwest::get(format!("{url}/healthz"))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return gateway;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not start");
    }
}

/// One retry, no waiting, and a second Gemini model to fall back to.
pub fn config_one_retry(upstream: &str) -> Config {
    let text = format!(
        "[retry]\nmax_retries = 1\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [providers.gemini]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\n\
         models = [\"gemini-2.5-flash\", \"gemini-2.0-flash\"]\n"
    );
    Config::from_toml(&text, "test config", std::iter::empty()).unwrap()
}

pub fn gemini_unavailable() -> UpstreamStep {
    UpstreamStep {
        respond: Respond::json(json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}))
            .status(503),
        ..UpstreamStep::default()
    }
}

pub fn gemini_stream_ok() -> UpstreamStep {
    UpstreamStep {
        respond: Respond::sse([
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Once upon"}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":" a time"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"totalTokenCount":7}}"#,
        ]),
        ..UpstreamStep::default()
    }
}

pub async fn post_chat_with(
    url: &str,
    key: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

pub fn story_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 50, "temperature": 0.5,
           "messages": [{"role": "user", "content": "Tell me a story"}]})
}

/// Serves the app over `store` with `telemetry` (and the admin routes on); returns its URL.
pub async fn start_with_telemetry(
    config: &Config,
    store: Store,
    telemetry: std::sync::Arc<gw_server::Telemetry>,
) -> String {
    let state = AppState::from_config_with_store(config, Some(store))
        .await
        .unwrap()
        .with_admin_key(ADMIN_KEY.into())
        .with_telemetry(telemetry);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    url
}

/// The upstream answers of the telemetry scenario, in order: a chat, a stream, a call that
/// succeeds on its retry, and one that falls back after its first route's retry.
pub fn story_steps() -> Vec<UpstreamStep> {
    vec![
        gemini_ok("Once upon a time"),
        gemini_stream_ok(),
        gemini_unavailable(),
        gemini_ok("retried"),
        gemini_unavailable(),
        gemini_unavailable(),
        gemini_ok("from the fallback"),
    ]
}

/// A chat body for `model` whose request adds `fallback` as its next route.
pub fn story_body_with_fallback(model: &str, fallback: &str) -> Value {
    let mut body = story_body(model, false);
    body["fallbacks"] = json!([fallback]);
    body
}

/// A zip (stored entries) of four one-pixel PNGs and their captions.
pub fn training_zip() -> Vec<u8> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 1..=4 {
        files.push((format!("p3r5on_{i}.png"), PNG.to_vec()));
        files.push((format!("p3r5on_{i}.txt"), b"a photo of p3r5on".to_vec()));
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in &files {
        let offset = out.len() as u32;
        let header = |sig: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(sig);
            out.extend_from_slice(&[20, 0]);
        };
        header(b"PK\x03\x04", &mut out);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&[0; 4]); // crc (not checked by the gateway)
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        header(b"PK\x01\x02", &mut central);
        central.extend_from_slice(&[20, 0]);
        central.extend_from_slice(&[0; 8]);
        central.extend_from_slice(&[0; 4]);
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_len) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// WaveSpeed's answers, for tests that play its task API.
pub mod wavespeed {
    use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
    use serde_json::{Value, json};

    /// WaveSpeed's envelope around `data`.
    pub fn envelope(data: Value) -> Respond {
        Respond::json(json!({"code": 200, "message": "success", "data": data}))
    }

    /// Task `id` of `model` in `status`, with `outputs`.
    pub fn task(id: &str, model: &str, status: &str, outputs: Value) -> Respond {
        envelope(json!({
            "id": id, "model": model, "outputs": outputs, "has_nsfw_contents": [],
            "status": status, "error": "", "timings": {"inference": 0}
        }))
    }

    /// WaveSpeed's FLUX.1-dev LoRA trainer, and the task ids the tests give it and its image.
    pub const TRAINER: &str = "wavespeed-ai/flux-dev-lora-trainer";
    pub const TASK: &str = "5b4a9c2e1d7f4e3a8c6b0d9f2e1a7c3b";
    pub const IMAGE_TASK: &str = "9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a";

    /// A training run as WaveSpeed plays it to the gateway (a $1.25 quote, the upload, the
    /// submit, `processing` polls, then completed with `weights`), then one image of the
    /// flux-dev LoRA model, submitted and found completed at `image`.
    pub fn training_then_image(weights: &str, processing: usize, image: &str) -> Vec<UpstreamStep> {
        let result = format!("/api/v3/predictions/{TASK}/result");
        let mut steps = vec![
            step(
                "POST",
                "/api/v3/model/price",
                envelope(json!({"model_id": TRAINER, "price": 1.25,
                                "discounted_price": 1.25, "currency": "USD"})),
            ),
            step(
                "POST",
                "/api/v3/media/upload/binary",
                envelope(json!({"download_url": "https://cdn.example/uploads/photos.zip"})),
            ),
            step(
                "POST",
                &format!("/api/v3/{TRAINER}"),
                task(TASK, TRAINER, "created", json!([])),
            ),
        ];
        for _ in 0..processing {
            steps.push(step(
                "GET",
                &result,
                task(TASK, TRAINER, "processing", json!([])),
            ));
        }
        let lora = "wavespeed-ai/flux-dev-lora";
        steps.extend([
            step(
                "GET",
                &result,
                task(TASK, TRAINER, "completed", json!([weights])),
            ),
            step(
                "POST",
                &format!("/api/v3/{lora}"),
                task(IMAGE_TASK, lora, "created", json!([])),
            ),
            step(
                "GET",
                &format!("/api/v3/predictions/{IMAGE_TASK}/result"),
                task(IMAGE_TASK, lora, "completed", json!([image])),
            ),
        ]);
        steps
    }

    /// An expected `method` `path` answered with `respond`.
    pub fn step(method: &str, path: &str, respond: Respond) -> UpstreamStep {
        UpstreamStep {
            expect: UpstreamExpect {
                method: Some(method.into()),
                path: Some(path.into()),
                ..UpstreamExpect::default()
            },
            respond,
        }
    }
}
