//! Metrics end to end: `/metrics` in Prometheus' text format, behind the admin key, checked by
//! `promtool check metrics`, and its token and cost totals against the usage log for the same
//! requests (chat blocking and streamed, a retried call, a fallback, a refused call).

mod support;

use std::sync::Arc;

use gw_mock::MockUpstream;
use gw_server::Telemetry;
use gw_server::telemetry::{PrometheusMode, TelemetrySection};
use support::{
    ADMIN_KEY, config_one_retry, open_store, post_chat_with, start_with_telemetry, story_body, user,
};

/// The metrics' totals for the same requests the usage log holds, and `promtool check metrics`.
#[tokio::test]
async fn metrics_agree_with_the_usage_log() {
    let section = TelemetrySection {
        prometheus: PrometheusMode::Admin,
        ..TelemetrySection::default()
    };
    let telemetry = Arc::new(Telemetry::init(&section).unwrap());
    let mock = MockUpstream::start(support::story_steps()).await.unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let (_, free_key) = user(&store, "free").await;
    let url = start_with_telemetry(
        &config_one_retry(mock.url()),
        store.clone(),
        Arc::clone(&telemetry),
    )
    .await;

    for stream in [false, true, false] {
        let response = post_chat_with(
            &url,
            &key,
            story_body("gemini/gemini-2.5-flash", stream),
            &[],
        )
        .await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let with_fallback =
        support::story_body_with_fallback("gemini/gemini-2.5-flash", "gemini/gemini-2.0-flash");
    assert_eq!(
        post_chat_with(&url, &key, with_fallback, &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        post_chat_with(
            &url,
            &free_key,
            story_body("gemini/gemini-2.5-pro", false),
            &[]
        )
        .await
        .status(),
        403
    );

    // Behind the admin key.
    let client = reqwest::Client::new();
    let denied = client
        .get(format!("{url}/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let response = client
        .get(format!("{url}/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();

    promtool_check(&text);

    store.flush().await;
    let totals = store
        .usage_totals(&gw_store::LogFilter::default())
        .await
        .unwrap();
    let sum = |name: &str, label: Option<&str>| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| label.is_none_or(|want| l.contains(want)))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let input = sum(
        "gen_ai_client_token_usage_sum",
        Some("gen_ai_token_type=\"input\""),
    );
    let output = sum(
        "gen_ai_client_token_usage_sum",
        Some("gen_ai_token_type=\"output\""),
    );
    assert_eq!(input as u64, totals.input_tokens, "{text}");
    assert_eq!(output as u64, totals.output_tokens, "{text}");
    let cost = sum("gateway_cost_usd_total", None);
    let logged = totals.cost.nanos() as f64 / 1e9;
    assert!(logged > 0.0);
    assert!(
        (cost - logged).abs() < 1e-9,
        "metrics {cost} vs usage log {logged}"
    );
    // Requests by outcome, retries, the fallback and the refusal.
    assert_eq!(
        sum("gateway_requests_total", Some("gateway_outcome=\"ok\"")),
        4.0,
        "{text}"
    );
    // One retry, then two calls more for the fallback (a retry and the next route).
    assert_eq!(sum("gateway_retries_total", None), 3.0, "{text}");
    assert_eq!(sum("gateway_fallbacks_total", None), 1.0, "{text}");
    assert_eq!(
        sum(
            "gateway_refusals_total",
            Some("gateway_refusal_reason=\"plan\"")
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            "gen_ai_client_operation_time_to_first_chunk_seconds_count",
            None
        ),
        1.0
    );
    assert!(
        text.contains("gateway_breaker_state{gateway_route=\"gemini/gemini-2.5-flash\"} 0"),
        "{text}"
    );
    assert!(
        text.contains(
            "gateway_breaker_transitions_total{gateway_breaker_state=\"open\",gateway_route=\"gemini/gemini-2.5-flash\"} 0"
        ),
        "{text}"
    );
}

/// Runs `promtool check metrics` on `text`: required where `GATEWAY_REQUIRE_PROMTOOL` is set
/// (CI), skipped with a note elsewhere when Debian's `prometheus` package is not installed.
fn promtool_check(text: &str) {
    use std::io::Write as _;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var_os("GATEWAY_REQUIRE_PROMTOOL").is_none(),
                "promtool is required here but cannot run: {e}"
            );
            eprintln!(
                "SKIPPED promtool check metrics: promtool not found ({e}); apt-get install prometheus"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
