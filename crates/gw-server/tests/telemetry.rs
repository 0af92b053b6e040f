//! Traces end to end: the server exports its spans over OTLP (HTTP, protobuf) to a receiver
//! running in this process. Chat (blocking and streamed), a retried call, a fallback and a
//! refused call go through the server; the spans, their parent links and the GenAI attributes
//! are checked, and content is absent unless opted in. (The metrics are in `metrics.rs`: a test
//! binary of their own, since `tracing`'s per-call-site interest is process-wide.)

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gw_mock::MockUpstream;
use gw_server::Telemetry;
use gw_server::telemetry::{PrometheusMode, TelemetrySection};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use support::{
    config_one_retry, gemini_ok, gemini_stream_ok, open_store, post_chat_with, request_id,
    start_with_telemetry, story_body, user,
};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

/// An OTLP/HTTP receiver on a thread (and runtime) of its own, so the exporter's blocking
/// flush never waits on the test's runtime.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

fn receiver() -> Receiver {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = Arc::clone(&spans);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new()
                .route(
                    "/v1/traces",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let kept = Arc::clone(&kept);
                        async move {
                            let request = ExportTraceServiceRequest::decode(body).unwrap();
                            let mut kept = kept.lock().unwrap();
                            for resource in request.resource_spans {
                                for scope in resource.scope_spans {
                                    kept.extend(scope.spans);
                                }
                            }
                            "" // An empty ExportTraceServiceResponse: everything accepted.
                        }
                    }),
                )
                .route("/v1/metrics", axum::routing::post(|| async { "" }));
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    Receiver {
        url: format!("http://{addr}"),
        spans,
    }
}

/// This thread's subscriber: the gateway's spans to `telemetry`, as the server sets it up.
fn subscribe(telemetry: &Telemetry) -> tracing::subscriber::DefaultGuard {
    let layer = telemetry.layer().unwrap().with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target(llm_gateway::telemetry::OTEL_TARGET, tracing::Level::INFO),
    );
    tracing::subscriber::set_default(Registry::default().with(layer))
}

fn section(endpoint: Option<&str>, content: bool, prometheus: PrometheusMode) -> TelemetrySection {
    TelemetrySection {
        otlp_endpoint: endpoint.map(str::to_owned),
        record_content: content,
        prometheus,
        ..TelemetrySection::default()
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s,
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(i)) => *i,
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

fn strings(span: &Span, key: &str) -> Vec<String> {
    match attr(span, key) {
        Some(Any::ArrayValue(a)) => a
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(Any::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

/// The spans, once `count` of them named `name` arrived.
async fn wait_spans(
    receiver: &Receiver,
    telemetry: &Telemetry,
    name: &str,
    count: usize,
) -> Vec<Span> {
    // Up to 15 s: a loaded CI machine may be slow to export, never this slow when all is well.
    for _ in 0..300 {
        telemetry.flush();
        let spans = receiver.spans.lock().unwrap().clone();
        if spans.iter().filter(|s| s.name == name).count() >= count {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names: Vec<String> = receiver
        .spans
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    panic!("fewer than {count} spans named {name}: {names:?}");
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    let mut out: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id)
        .collect();
    out.sort_by_key(|s| s.start_time_unix_nano);
    out
}

fn by_request_id<'a>(spans: &'a [Span], name: &str, request_id: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| {
            s.name == name
                && matches!(attr(s, "gateway.request_id"), Some(Any::StringValue(id)) if id == request_id)
        })
        .unwrap_or_else(|| panic!("no span {name} for {request_id}"))
}

/// One test for both scenarios, one after the other: `tracing` keeps one interest cache per
/// call site for the whole process, so tests each with a thread-local subscriber, running at
/// once, can blind each other.
#[tokio::test]
async fn traces() {
    spans_follow_the_genai_conventions().await;
    content_is_recorded_only_when_opted_in().await;
}

async fn spans_follow_the_genai_conventions() {
    let receiver = receiver();
    let telemetry = Arc::new(
        Telemetry::init(&section(Some(&receiver.url), false, PrometheusMode::Off)).unwrap(),
    );
    let _guard = subscribe(&telemetry);

    let mock = MockUpstream::start({
        let mut steps = support::story_steps();
        steps.push(gemini_ok("not traced"));
        steps
    })
    .await
    .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (pro, key) = user(&store, "pro").await;
    let (_, free_key) = user(&store, "free").await;
    let url = start_with_telemetry(
        &config_one_retry(mock.url()),
        store.clone(),
        Arc::clone(&telemetry),
    )
    .await;

    // Blocking, continuing the caller's trace.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let plain = post_chat_with(
        &url,
        &key,
        story_body("gemini/gemini-2.5-flash", false),
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(plain.status(), 200);
    let plain_id = request_id(&plain);
    plain.bytes().await.unwrap();
    // Streamed.
    let streamed =
        post_chat_with(&url, &key, story_body("gemini/gemini-2.5-flash", true), &[]).await;
    assert_eq!(streamed.status(), 200);
    let streamed_id = request_id(&streamed);
    streamed.bytes().await.unwrap();
    // Retried once.
    let retried = post_chat_with(
        &url,
        &key,
        story_body("gemini/gemini-2.5-flash", false),
        &[],
    )
    .await;
    assert_eq!(retried.status(), 200);
    let retried_id = request_id(&retried);
    retried.bytes().await.unwrap();
    // Falls back after the first route's retry.
    let with_fallback =
        support::story_body_with_fallback("gemini/gemini-2.5-flash", "gemini/gemini-2.0-flash");
    let fell_back = post_chat_with(&url, &key, with_fallback, &[]).await;
    assert_eq!(fell_back.status(), 200);
    let fell_back_id = request_id(&fell_back);
    fell_back.bytes().await.unwrap();
    // Refused by the plan: no provider call.
    let refused = post_chat_with(
        &url,
        &free_key,
        story_body("gemini/gemini-2.5-pro", false),
        &[],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let refused_id = request_id(&refused);
    assert_eq!(
        mock.received().len(),
        7,
        "the refused call reached no provider"
    );
    // A caller that sampled its trace out: the parent-based sampler follows, no span at all.
    let unsampled_trace = "0af7651916cd43dd8448eb211c80319c";
    let unsampled = post_chat_with(
        &url,
        &key,
        story_body("gemini/gemini-2.5-flash", false),
        &[(
            "traceparent",
            &format!("00-{unsampled_trace}-b7ad6b7169203331-00"),
        )],
    )
    .await;
    assert_eq!(unsampled.status(), 200);
    unsampled.bytes().await.unwrap();

    let spans = wait_spans(&receiver, &telemetry, "POST /v1/chat/completions", 5).await;
    let genai = |id: &str| by_request_id(&spans, "chat gemini-2.5-flash", id);

    // The HTTP server span continues the caller's trace; the GenAI span is its child.
    let server_span = by_request_id(&spans, "POST /v1/chat/completions", &plain_id);
    assert_eq!(hex(&server_span.trace_id), caller_trace);
    assert_eq!(hex(&server_span.parent_span_id), caller_span);
    assert_eq!(server_span.kind, 2, "server");
    assert_eq!(int(server_span, "http.response.status_code"), 200);
    assert_eq!(text(server_span, "http.route"), "/v1/chat/completions");
    assert_eq!(text(server_span, "gateway.plan"), "pro");
    let chat_span = genai(&plain_id);
    assert_eq!(chat_span.parent_span_id, server_span.span_id);
    assert_eq!(chat_span.kind, 3, "client");
    assert_eq!(text(chat_span, "gen_ai.operation.name"), "chat");
    assert_eq!(text(chat_span, "gen_ai.provider.name"), "gcp.gemini");
    assert_eq!(text(chat_span, "gen_ai.request.model"), "gemini-2.5-flash");
    assert_eq!(text(chat_span, "gen_ai.response.model"), "gemini-2.5-flash");
    assert_eq!(int(chat_span, "gen_ai.request.max_tokens"), 50);
    assert!(
        matches!(attr(chat_span, "gen_ai.request.temperature"), Some(Any::DoubleValue(t)) if *t == 0.5)
    );
    assert_eq!(int(chat_span, "gen_ai.usage.input_tokens"), 3);
    assert_eq!(int(chat_span, "gen_ai.usage.output_tokens"), 2);
    assert_eq!(
        strings(chat_span, "gen_ai.response.finish_reasons"),
        ["stop"]
    );
    let upstream = mock
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let (host, port) = upstream.rsplit_once(':').unwrap();
    assert_eq!(text(chat_span, "server.address"), host);
    assert_eq!(int(chat_span, "server.port").to_string(), port);
    assert_eq!(text(chat_span, "gateway.user.id"), pro.id);
    assert_eq!(text(chat_span, "gateway.plan"), "pro");
    assert!(text(chat_span, "gateway.cost_usd").parse::<f64>().unwrap() > 0.0);
    assert!(attr(chat_span, "error.type").is_none());
    // Its one attempt, and the provider call inside it.
    let attempts = children(&spans, chat_span);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].name, "attempt gemini/gemini-2.5-flash");
    assert_eq!(text(attempts[0], "gateway.attempt.outcome"), "ok");
    let calls = children(&spans, attempts[0]);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "POST");
    assert_eq!(int(calls[0], "http.response.status_code"), 200);
    assert!(
        !text(calls[0], "url.full").contains('?'),
        "no query: keys may travel there"
    );

    // The stream: usage and finish reason from its events, the span open until it ended.
    let stream_span = genai(&streamed_id);
    assert!(matches!(
        attr(stream_span, "gen_ai.request.stream"),
        Some(Any::BoolValue(true))
    ));
    assert_eq!(int(stream_span, "gen_ai.usage.output_tokens"), 4);
    assert_eq!(
        strings(stream_span, "gen_ai.response.finish_reasons"),
        ["stop"]
    );

    // The retried call: two attempts on one route, the first failed.
    let retried_span = genai(&retried_id);
    let attempts = children(&spans, retried_span);
    let retry_numbers: Vec<i64> = attempts
        .iter()
        .map(|a| int(a, "gateway.attempt.retry"))
        .collect();
    assert_eq!(retry_numbers, [0, 1]);
    assert_eq!(text(attempts[0], "error.type"), "upstream");
    assert_eq!(
        int(
            children(&spans, attempts[0])[0],
            "http.response.status_code"
        ),
        503
    );
    assert_eq!(int(retried_span, "gateway.retries"), 1);

    // The fallback: two attempts on the first route, then the second route.
    let fallback_span = genai(&fell_back_id);
    let attempts = children(&spans, fallback_span);
    let routes: Vec<(&str, i64)> = attempts
        .iter()
        .map(|a| {
            (
                text(a, "gateway.route"),
                int(a, "gateway.attempt.fallback_index"),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("gemini/gemini-2.5-flash", 0),
            ("gemini/gemini-2.5-flash", 0),
            ("gemini/gemini-2.0-flash", 1)
        ]
    );
    assert_eq!(
        text(fallback_span, "gen_ai.response.model"),
        "gemini-2.0-flash"
    );

    // The refused call: an error span with no attempt under it.
    let refused_span = by_request_id(&spans, "chat gemini-2.5-pro", &refused_id);
    assert_eq!(text(refused_span, "error.type"), "permission_denied");
    assert_eq!(
        refused_span.status.as_ref().map(|s| s.code),
        Some(2),
        "error status"
    );
    assert!(children(&spans, refused_span).is_empty());

    assert!(
        spans.iter().all(|s| hex(&s.trace_id) != unsampled_trace),
        "a request sampled out leaves no span"
    );

    // No content by default.
    for span in &spans {
        assert!(
            attr(span, "gen_ai.input.messages").is_none(),
            "{}",
            span.name
        );
        assert!(
            span.events
                .iter()
                .all(|e| e.name != "gen_ai.client.inference.operation.details"),
            "{}",
            span.name
        );
    }
}

async fn content_is_recorded_only_when_opted_in() {
    let receiver = receiver();
    let telemetry = Arc::new(
        Telemetry::init(&section(Some(&receiver.url), true, PrometheusMode::Off)).unwrap(),
    );
    let _guard = subscribe(&telemetry);
    let mock = MockUpstream::start(vec![gemini_ok("Once upon a time"), gemini_stream_ok()])
        .await
        .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let url =
        start_with_telemetry(&config_one_retry(mock.url()), store, Arc::clone(&telemetry)).await;

    for stream in [false, true] {
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
    let spans = wait_spans(&receiver, &telemetry, "chat gemini-2.5-flash", 2).await;
    let recorded: Vec<HashMap<String, String>> = spans
        .iter()
        .filter(|s| s.name == "chat gemini-2.5-flash")
        .map(|s| {
            let event = s
                .events
                .iter()
                .find(|e| e.name == "gen_ai.client.inference.operation.details")
                .expect("the content event");
            event
                .attributes
                .iter()
                .filter_map(
                    |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Any::StringValue(s)) => Some((kv.key.clone(), s.clone())),
                        _ => None,
                    },
                )
                .collect()
        })
        .collect();
    assert_eq!(recorded.len(), 2);
    for attrs in recorded {
        let input: Value = serde_json::from_str(&attrs["gen_ai.input.messages"]).unwrap();
        assert_eq!(
            input,
            json!([{"role": "user", "parts": [{"type": "text", "content": "Tell me a story"}]}])
        );
        let output: Value = serde_json::from_str(&attrs["gen_ai.output.messages"]).unwrap();
        assert_eq!(output[0]["role"], "assistant");
        assert_eq!(
            output[0]["parts"][0]["content"], "Once upon a time",
            "{output}"
        );
        assert_eq!(output[0]["finish_reason"], "stop");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
