//! Fallback chains, deadlines, circuit breakers and rate limits, end to end over HTTP.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use futures_util::StreamExt;
use gw_server::Config;
use serde_json::Value;
use support::{ADMIN_KEY, chat_body, get_json, open_store, post_chat, start, user};

/// A provider that always answers `status` (Gemini's error shape) and counts its calls.
async fn failing_upstream(status: u16) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let (code, message) = match status {
                400 => ("INVALID_ARGUMENT", "Invalid JSON payload received."),
                _ => ("UNAVAILABLE", "The model is overloaded."),
            };
            let body =
                serde_json::json!({"error": {"code": status, "message": message, "status": code}});
            (StatusCode::from_u16(status).unwrap(), axum::Json(body))
        }
    });
    let (url, task) = serve(app).await;
    (url, calls, task)
}

/// A provider that never answers.
async fn silent_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().fallback(|| async {
        std::future::pending::<()>().await;
        StatusCode::OK
    });
    serve(app).await
}

async fn serve(app: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

/// A healthy provider: the canned mock (Gemini and OpenAI-style routes).
async fn healthy_upstream() -> (String, tokio::task::JoinHandle<()>) {
    serve(gw_mock::canned::router()).await
}

fn config(text: &str) -> Config {
    Config::from_toml(text, "test config", std::iter::empty()).unwrap()
}

/// With the primary route down, 1,000 requests through a fallback chain all succeed, and the
/// usage log shows the fallback route (and the attempts) for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fallback_chain_serves_every_request_when_the_primary_is_down() {
    let (down, down_calls, _t1) = failing_upstream(503).await;
    let (up, _t2) = healthy_upstream().await;
    let cfg = config(&format!(
        "[retry]\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [routing.aliases.chat-default]\nroutes = [\"gemini/gemini-2.5-flash\", \"hf/meta-llama/Llama-3.1-8B-Instruct\"]\n\
         [routing.breaker]\nconsecutive_failures = 5\ncool_down_ms = 600000\n\
         [providers.gemini]\nbase_url = \"{down}\"\napi_key = \"k\"\n\
         [providers.hf]\nbase_url = \"{up}\"\napi_key = \"k\"\n"
    ));
    let store = open_store("sqlite::memory:").await;
    let (alice, key) = user(&store, "enterprise").await;
    let server = start(&cfg, Some(store.clone())).await;

    let client = reqwest::Client::new();
    let requests = (0..1000).map(|_| {
        let (client, url, key) = (
            client.clone(),
            format!("{}/v1/chat/completions", server.url),
            key.clone(),
        );
        async move {
            let r = client
                .post(url)
                .bearer_auth(key)
                .json(&chat_body("chat-default", false))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.headers()
                    .get("x-gateway-route")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }
    });
    let results: Vec<(u16, Option<String>)> = futures_util::stream::iter(requests)
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(
        results.iter().all(|(s, _)| *s == 200),
        "{:?}",
        results
            .iter()
            .filter(|(s, _)| *s != 200)
            .take(3)
            .collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .all(|(_, r)| r.as_deref() == Some("hf/meta-llama/Llama-3.1-8B-Instruct"))
    );

    store.flush().await;

    let log = store.usage_log(Some(&alice.id), 2000).await.unwrap();
    assert_eq!(log.len(), 1000);
    for row in &log {
        assert_eq!((row.provider.as_str(), row.status.as_str()), ("hf", "ok"));
        let last = row.attempts.last().unwrap();
        assert_eq!(
            (last.route.as_str(), last.outcome.as_str()),
            ("hf/meta-llama/Llama-3.1-8B-Instruct", "ok")
        );
        assert!(
            row.attempts[0].route.starts_with("gemini/"),
            "{:?}",
            row.attempts
        );
    }
    // The breaker opened: the dead primary saw a handful of calls, not thousands.
    let calls = down_calls.load(Ordering::SeqCst);
    assert!(calls < 100, "{calls} calls reached the dead primary");
    let opened = log
        .iter()
        .filter(|r| r.attempts[0].outcome == "circuit_open")
        .count();
    assert!(opened > 900, "{opened}");

    let routes: Value = get_json(&server.url, ADMIN_KEY, "/admin/routes").await;
    let gemini = routes["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["route"] == "gemini/gemini-2.5-flash")
        .unwrap();
    assert_eq!(gemini["state"], "open", "{routes}");
}

/// A request with a 2 s deadline against a provider that never answers gets 504 in 2 s (±10%).
#[tokio::test]
async fn a_deadline_is_kept_against_a_silent_provider() {
    let (silent, _t) = silent_upstream().await;
    let cfg = config(&format!(
        "[retry]\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [providers.gemini]\nbase_url = \"{silent}\"\napi_key = \"k\"\n"
    ));
    let store = open_store("sqlite::memory:").await;
    let (alice, key) = user(&store, "free").await;
    let server = start(&cfg, Some(store.clone())).await;
    for stream in [false, true] {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", server.url))
            .bearer_auth(&key)
            .header("x-gateway-deadline-ms", "2000")
            .json(&chat_body("gemini/gemini-2.5-flash", stream))
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 504, "stream: {stream}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "timeout_error", "{body}");
        assert!(
            elapsed >= Duration::from_millis(1800) && elapsed <= Duration::from_millis(2200),
            "{elapsed:?}"
        );
    }
    store.flush().await;
    let log = store.usage_log(Some(&alice.id), 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter().all(|r| r.status == "timeout" && !r.billable),
        "{log:?}"
    );
    store.flush().await;
    assert_eq!(store.open_reservations().await.unwrap(), 0);

    let bad = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .header("x-gateway-deadline-ms", "soon")
        .json(&chat_body("gemini/gemini-2.5-flash", false))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// A client error is not retried and does not fall back; a request's own fallbacks are tried.
#[tokio::test]
async fn fallbacks_only_for_provider_trouble() {
    let (down, down_calls, _t1) = failing_upstream(400).await;
    let (up, _t2) = healthy_upstream().await;
    let cfg = config(&format!(
        "[retry]\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
         [providers.gemini]\nbase_url = \"{down}\"\napi_key = \"k\"\n\
         [providers.hf]\nbase_url = \"{up}\"\napi_key = \"k\"\n"
    ));
    let store = open_store("sqlite::memory:").await;
    let (_alice, key) = user(&store, "enterprise").await;
    let server = start(&cfg, Some(store.clone())).await;
    let mut body = chat_body("gemini/gemini-2.5-flash", false);
    body["fallbacks"] = serde_json::json!(["hf/meta-llama/Llama-3.1-8B-Instruct"]);
    let response = post_chat(&server.url, &key, &body).await;
    assert_eq!(response.status(), 400, "a 400 is the caller's: no fallback");
    assert_eq!(down_calls.load(Ordering::SeqCst), 1, "and no retry");
}

#[tokio::test]
async fn incoming_rate_limits_answer_429_with_retry_after() {
    let (up, _t) = healthy_upstream().await;
    let cfg = config(&format!(
        "[rate_limits.keys]\nrequests_per_minute = 3\n\
         [providers.gemini]\nbase_url = \"{up}\"\napi_key = \"k\"\n"
    ));
    let store = open_store("sqlite::memory:").await;
    let (_alice, key) = user(&store, "free").await;
    let server = start(&cfg, Some(store.clone())).await;
    for _ in 0..3 {
        assert_eq!(
            post_chat(
                &server.url,
                &key,
                &chat_body("gemini/gemini-2.5-flash", false)
            )
            .await
            .status(),
            200
        );
    }
    let limited = post_chat(
        &server.url,
        &key,
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
}

#[tokio::test]
async fn outgoing_limits_move_to_the_next_route() {
    let (up, _t) = healthy_upstream().await;
    let cfg = config(&format!(
        "[rate_limits.providers.gemini]\nrequests_per_minute = 2\n\
         [routing.aliases.chat]\nroutes = [\"gemini/gemini-2.5-flash\", \"hf/meta-llama/Llama-3.1-8B-Instruct\"]\n\
         [providers.gemini]\nbase_url = \"{up}\"\napi_key = \"k\"\n\
         [providers.hf]\nbase_url = \"{up}\"\napi_key = \"k\"\n"
    ));
    let store = open_store("sqlite::memory:").await;
    let (_alice, key) = user(&store, "enterprise").await;
    let server = start(&cfg, Some(store.clone())).await;
    let mut routes = Vec::new();
    for _ in 0..4 {
        let r = post_chat(&server.url, &key, &chat_body("chat", false)).await;
        assert_eq!(r.status(), 200);
        routes.push(r.headers()["x-gateway-route"].to_str().unwrap().to_owned());
    }
    assert_eq!(
        routes[..2],
        ["gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"]
    );
    assert_eq!(
        routes[2..],
        [
            "hf/meta-llama/Llama-3.1-8B-Instruct",
            "hf/meta-llama/Llama-3.1-8B-Instruct"
        ]
    );
}

/// A client that disconnects mid-stream cancels the upstream request: the provider's connection
/// is closed within a second, and the partial usage is logged.
#[tokio::test]
async fn a_disconnecting_client_cancels_the_upstream_stream_promptly() {
    use gw_mock::MockUpstream;
    use gw_mock::fixture::{Respond, UpstreamStep};

    let slow = Respond {
        sse_interval_ms: Some(30_000),
        ..Respond::sse([
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"First words "}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"too late"}]},"finishReason":"STOP","index":0}]}"#,
        ])
    };
    let mock = MockUpstream::start(vec![UpstreamStep {
        respond: slow,
        ..UpstreamStep::default()
    }])
    .await
    .unwrap();
    let cfg = config(&format!(
        "[providers.gemini]\nbase_url = \"{}\"\napi_key = \"k\"\n",
        mock.url()
    ));
    let store = open_store("sqlite::memory:").await;
    let (alice, key) = user(&store, "free").await;
    let server = start(&cfg, Some(store.clone())).await;

    let response = post_chat(
        &server.url,
        &key,
        &chat_body("gemini/gemini-2.5-flash", true),
    )
    .await;
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("First words") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    drop(body);
    assert!(
        mock.wait_for(Duration::from_secs(1), |m| m.active_responses() == 0)
            .await,
        "the upstream stream must be closed within a second of the client leaving"
    );

    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        store.flush().await;
        let log = store.usage_log(Some(&alice.id), 10).await.unwrap();
        if let Some(row) = log.first() {
            assert_eq!(row.status, "stream_interrupted");
            assert!(row.estimated && row.billable && row.tokens.output_tokens > 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the partial usage was never logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A caller's short deadline says nothing about the provider's health: it never opens the circuit.
#[tokio::test]
async fn a_callers_deadline_does_not_open_the_circuit() {
    let (silent, _t) = silent_upstream().await;
    let cfg = config(&format!(
        "[routing.breaker]\nconsecutive_failures = 1\n\
         [providers.gemini]\nbase_url = \"{silent}\"\napi_key = \"k\"\nmodels = [\"gemini-2.5-flash\"]\n"
    ));
    let store = open_store("sqlite::memory:").await;
    let (_alice, key) = user(&store, "free").await;
    let server = start(&cfg, Some(store.clone())).await;
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", server.url))
            .bearer_auth(&key)
            .header("x-gateway-deadline-ms", "100")
            .json(&chat_body("gemini/gemini-2.5-flash", false))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            504,
            "a timeout, not an open circuit (503)"
        );
    }
    let routes: Value = get_json(&server.url, ADMIN_KEY, "/admin/routes").await;
    let breakers = routes["breakers"].as_array().unwrap();
    assert!(breakers.iter().all(|b| b["state"] == "closed"), "{routes}");
}
