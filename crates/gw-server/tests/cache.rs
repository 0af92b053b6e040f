//! The response cache end to end, through the server on a mock upstream playing the providers'
//! wire formats: on the in-process backend always, and on Redis when `GATEWAY_TEST_REDIS_URL` is
//! set (each test says when its Redis part is skipped). What is kept, what is keyed, who sees
//! it, the request headers, streams, accounting, the semantic cache, and a Redis that dies.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_server::Config;
use gw_server::telemetry::{PrometheusMode, TelemetrySection};
use serde_json::{Value, json};
use support::{
    ADMIN_KEY, gemini_ok, gemini_stream_ok, open_store, post_chat_with, start, unique, user,
};

/// Where the cache keeps its entries in a test.
#[derive(Debug, Clone)]
enum Backend {
    Memory,
    Redis(String),
}

/// The backends to run `test` on: memory always, Redis when `GATEWAY_TEST_REDIS_URL` is set
/// (saying so when it is not).
fn backends(test: &str) -> Vec<Backend> {
    let mut out = vec![Backend::Memory];
    match std::env::var("GATEWAY_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => out.push(Backend::Redis(url)),
        _ => println!("{test}: Redis part SKIPPED: GATEWAY_TEST_REDIS_URL is not set"),
    }
    out
}

/// `[cache.store]` for `backend`, under a prefix of its own on Redis (the Redis is shared by
/// every test and run).
fn store_toml(backend: &Backend) -> String {
    match backend {
        Backend::Memory => "[cache.store]\nbackend = \"memory\"\n".to_owned(),
        Backend::Redis(url) => format!(
            "[cache.store]\nbackend = \"redis\"\nurl = \"{url}\"\nprefix = \"{}\"\n",
            unique("test")
        ),
    }
}

/// Gemini (chat, a second and a third chat model, embeddings) and Tavily on `upstream`, with
/// `cache` (the `[cache]` section and its tables) and `backend`. The cache's time budget is
/// generous: a slow test machine must not turn a hit into a bypass.
fn config(upstream: &str, cache: &str, backend: &Backend) -> Config {
    let text = format!(
        "[retry]\nmax_retries = 0\n\
         [providers.gemini]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\n\
         models = [\"gemini-2.5-flash\", \"gemini-2.0-flash\", \"gemini-2.5-pro\", \
                   {{ id = \"gemini-embedding-001\", serves = [\"embeddings\"] }}]\n\
         [providers.tavily]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\nmodels = [\"search\"]\n\
         [cache]\nbudget_ms = 1000\nttl_secs = 120\n{cache}\n{}",
        store_toml(backend)
    );
    Config::from_toml(&text, "test config", std::iter::empty()).unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A blocking chat's status, `x-gateway-cache`, and body.
async fn chat(url: &str, key: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    let response = post_chat_with(url, key, body.clone(), headers).await;
    Answer::read(response).await
}

/// What a test checks of an answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    cache: Option<String>,
    age: Option<String>,
    cost: Option<String>,
    request_id: String,
    body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let cache = header(&response, "x-gateway-cache").map(str::to_owned);
        let age = header(&response, "age").map(str::to_owned);
        let cost = header(&response, "x-gateway-cost-usd").map(str::to_owned);
        let request_id = header(&response, "x-gateway-request-id")
            .unwrap()
            .to_owned();
        let body = response.json().await.unwrap_or(Value::Null);
        Self {
            status,
            cache,
            age,
            cost,
            request_id,
            body,
        }
    }

    fn text(&self) -> &str {
        self.body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
    }

    fn is(&self, cache: &str) -> bool {
        self.status == 200 && self.cache.as_deref() == Some(cache)
    }
}

/// A streamed answer, read to its end.
#[derive(Debug, Default)]
struct Streamed {
    cache: Option<String>,
    cost: Option<String>,
    text: String,
    finish: Option<String>,
    usage: Option<Value>,
    error: Option<Value>,
    done: bool,
}

async fn stream(url: &str, key: &str, body: &Value, headers: &[(&str, &str)]) -> Streamed {
    let response = post_chat_with(url, key, body.clone(), headers).await;
    assert_eq!(response.status(), 200);
    let mut out = Streamed {
        cache: header(&response, "x-gateway-cache").map(str::to_owned),
        cost: header(&response, "x-gateway-cost-usd").map(str::to_owned),
        ..Streamed::default()
    };
    let text = response.text().await.unwrap();
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            out.done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(error) = chunk.get("error") {
            out.error = Some(error.clone());
            continue;
        }
        if let Some(choice) = chunk["choices"].get(0) {
            if let Some(text) = choice["delta"]["content"].as_str() {
                out.text.push_str(text);
            }
            if let Some(finish) = choice["finish_reason"].as_str() {
                out.finish = Some(finish.to_owned());
            }
        }
        if chunk["usage"].is_object() {
            out.usage = Some(chunk["usage"].clone());
        }
    }
    out
}

/// Gemini's answer `text` to a `generateContent` of `model`.
fn gemini_chat(model: &str, text: &str) -> UpstreamStep {
    UpstreamStep {
        expect: UpstreamExpect {
            path: Some(format!("/v1beta/models/{model}:generateContent")),
            ..UpstreamExpect::default()
        },
        ..gemini_ok(text)
    }
}

/// Gemini's `batchEmbedContents` answer: one vector per input.
fn gemini_embedding(vectors: &[&[f32]]) -> UpstreamStep {
    let embeddings: Vec<Value> = vectors.iter().map(|v| json!({ "values": v })).collect();
    UpstreamStep {
        expect: UpstreamExpect {
            path: Some("/v1beta/models/gemini-embedding-001:batchEmbedContents".into()),
            ..UpstreamExpect::default()
        },
        respond: Respond::json(json!({
            "embeddings": embeddings,
            "usageMetadata": {"promptTokenCount": 6}
        })),
    }
}

fn ask(text: &str) -> Value {
    json!({"model": "gemini/gemini-2.5-flash", "temperature": 0.5, "max_tokens": 50,
           "messages": [{"role": "user", "content": text}]})
}

/// The usage-log row of `request_id`.
async fn row(store: &gw_store::Store, request_id: &str) -> gw_store::UsageLogRow {
    store.flush().await;
    store
        .usage_log(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.request_id == request_id)
        .unwrap_or_else(|| panic!("no usage row for {request_id}"))
}

#[tokio::test]
async fn identical_chat_requests_hit() {
    for backend in backends("identical_chat_requests_hit") {
        let mock = MockUpstream::start(vec![gemini_chat("gemini-2.5-flash", "Hello!")])
            .await
            .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        let server = start(
            &config(mock.url(), "enabled = true", &backend),
            Some(store.clone()),
        )
        .await;

        let first = chat(&server.url, &key, &ask("Say hi"), &[]).await;
        assert!(first.is("miss"), "{backend:?}: {first:?}");
        assert_eq!(first.age, None);
        let paid = first.cost.clone().unwrap();
        assert_ne!(paid, "0", "the first answer is paid for");

        let second = chat(&server.url, &key, &ask("Say hi"), &[]).await;
        assert!(second.is("hit"), "{backend:?}: {second:?}");
        assert_eq!(second.text(), "Hello!");
        assert!(second.age.is_some(), "{second:?}");
        assert_eq!(second.cost.as_deref(), Some("0"));
        assert_eq!(second.body["usage"]["cost_usd"], "0");
        // The answer's own usage: the tokens of the call that made it.
        assert_eq!(second.body["usage"]["prompt_tokens"], 3);
        assert_eq!(second.body["usage"]["completion_tokens"], 2);
        assert_eq!(mock.received().len(), 1, "{backend:?}: one upstream call");

        // Logged: a cached row at no cost, with what it saved; counted as a request.
        let hit = row(&store, &second.request_id).await;
        let cached = hit.cached.expect("the hit's row says cached");
        assert!(!cached.semantic);
        assert_eq!(cached.saved.map(|c| c.to_string()), Some(paid));
        assert_eq!(hit.cost.map(|c| c.nanos()), Some(0));
        assert_eq!(hit.status, "ok");
        assert!(hit.billable, "a hit counts as a request by default");
        assert!(row(&store, &first.request_id).await.cached.is_none());
    }
}

#[tokio::test]
async fn any_change_that_changes_the_answer_misses() {
    let base = json!({
        "model": "gemini/gemini-2.5-flash", "temperature": 0.5, "max_tokens": 50,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Tell me a joke"}
        ]
    });
    let variants: Vec<(&str, Value)> = vec![
        ("temperature", {
            let mut v = base.clone();
            v["temperature"] = json!(0.7);
            v
        }),
        ("max_tokens", {
            let mut v = base.clone();
            v["max_tokens"] = json!(60);
            v
        }),
        ("a tool", {
            let mut v = base.clone();
            v["tools"] = json!([{"type": "function", "function": {
                "name": "get_joke", "description": "A joke",
                "parameters": {"type": "object", "properties": {}}}}]);
            v
        }),
        ("the model", {
            let mut v = base.clone();
            v["model"] = json!("gemini/gemini-2.0-flash");
            v
        }),
        ("an earlier turn", {
            let mut v = base.clone();
            v["messages"][2]["content"] = json!("Hi there!");
            v
        }),
        ("the system prompt", {
            let mut v = base.clone();
            v["messages"][0]["content"] = json!("Be verbose.");
            v
        }),
        ("the response format", {
            let mut v = base.clone();
            v["response_format"] = json!({"type": "json_object"});
            v
        }),
    ];
    for backend in backends("any_change_that_changes_the_answer_misses") {
        let steps = (0..=variants.len())
            .map(|i| gemini_ok(&format!("answer {i}")))
            .collect();
        let mock = MockUpstream::start(steps).await.unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        let server = start(
            &config(mock.url(), "enabled = true", &backend),
            Some(store.clone()),
        )
        .await;
        assert!(chat(&server.url, &key, &base, &[]).await.is("miss"));
        for (what, variant) in &variants {
            let answer = chat(&server.url, &key, variant, &[]).await;
            assert!(
                answer.is("miss"),
                "{backend:?}: a changed {what} must miss: {answer:?}"
            );
        }
        let again = chat(&server.url, &key, &base, &[]).await;
        assert!(again.is("hit"), "{backend:?}: {again:?}");
        assert_eq!(again.text(), "answer 0");
        assert_eq!(mock.received().len(), 1 + variants.len());
    }
}

#[tokio::test]
async fn two_users_never_see_each_others_entries() {
    for backend in backends("two_users_never_see_each_others_entries") {
        let mock = MockUpstream::start(vec![gemini_ok("for A"), gemini_ok("for B")])
            .await
            .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, alice) = user(&store, "pro").await;
        let (_, bob) = user(&store, "pro").await;
        let server = start(
            &config(mock.url(), "enabled = true", &backend),
            Some(store.clone()),
        )
        .await;
        assert!(
            chat(&server.url, &alice, &ask("secret?"), &[])
                .await
                .is("miss")
        );
        let bob_first = chat(&server.url, &bob, &ask("secret?"), &[]).await;
        assert!(bob_first.is("miss"), "{backend:?}: {bob_first:?}");
        assert_eq!(bob_first.text(), "for B");
        let alice_again = chat(&server.url, &alice, &ask("secret?"), &[]).await;
        assert!(alice_again.is("hit"));
        assert_eq!(alice_again.text(), "for A");
        let bob_again = chat(&server.url, &bob, &ask("secret?"), &[]).await;
        assert!(bob_again.is("hit"));
        assert_eq!(bob_again.text(), "for B");
        assert_eq!(mock.received().len(), 2);
    }
}

#[tokio::test]
async fn no_cache_calls_and_refreshes_and_no_store_keeps_nothing() {
    for backend in backends("no_cache_calls_and_refreshes_and_no_store_keeps_nothing") {
        let mock = MockUpstream::start(vec![
            gemini_ok("first"),
            gemini_ok("second"),
            gemini_ok("third"),
            gemini_ok("fourth"),
            gemini_ok("fifth"),
            gemini_ok("sixth"),
            gemini_ok("seventh"),
        ])
        .await
        .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        let server = start(
            &config(mock.url(), "enabled = true", &backend),
            Some(store.clone()),
        )
        .await;
        let q = ask("What time is it?");
        assert_eq!(chat(&server.url, &key, &q, &[]).await.text(), "first");
        // `no-cache`: the provider is called, and its answer replaces the kept one.
        let refreshed = chat(&server.url, &key, &q, &[("cache-control", "no-cache")]).await;
        assert!(refreshed.is("miss"), "{backend:?}: {refreshed:?}");
        assert_eq!(refreshed.text(), "second");
        let hit = chat(&server.url, &key, &q, &[]).await;
        assert!(hit.is("hit"));
        assert_eq!(hit.text(), "second");
        // The gateway's own `refresh` does the same.
        let refreshed = chat(&server.url, &key, &q, &[("x-gateway-cache", "refresh")]).await;
        assert_eq!(refreshed.text(), "third");
        assert_eq!(chat(&server.url, &key, &q, &[]).await.text(), "third");

        // `no-store`: answered, and nothing kept.
        let other = ask("Where am I?");
        let unkept = chat(&server.url, &key, &other, &[("cache-control", "no-store")]).await;
        assert!(unkept.is("miss"));
        assert_eq!(unkept.text(), "fourth");
        let next = chat(&server.url, &key, &other, &[]).await;
        assert!(next.is("miss"), "{backend:?}: {next:?}");
        assert_eq!(next.text(), "fifth");
        assert_eq!(mock.received().len(), 5);

        // `max-age=0`: nothing kept is young enough; `skip`: the cache is left out.
        let fresh_only = chat(&server.url, &key, &other, &[("cache-control", "max-age=0")]).await;
        assert!(fresh_only.is("miss"), "{backend:?}: {fresh_only:?}");
        assert_eq!(fresh_only.text(), "sixth");
        let skipped = chat(&server.url, &key, &other, &[("x-gateway-cache", "skip")]).await;
        assert!(skipped.is("skip"), "{skipped:?}");
        assert_eq!(skipped.text(), "seventh");
        assert_eq!(mock.received().len(), 7);
    }
}

#[tokio::test]
async fn the_cache_is_used_only_where_configured_or_asked() {
    for backend in backends("the_cache_is_used_only_where_configured_or_asked") {
        let mock =
            MockUpstream::start(vec![gemini_ok("one"), gemini_ok("two"), gemini_ok("three")])
                .await
                .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        // `[cache]` without `enabled`: only requests that ask.
        let server = start(&config(mock.url(), "", &backend), Some(store.clone())).await;
        let q = ask("Ping?");
        let plain = chat(&server.url, &key, &q, &[]).await;
        assert!(plain.is("skip"), "{plain:?}");
        let asked = chat(&server.url, &key, &q, &[("x-gateway-cache", "exact")]).await;
        assert!(asked.is("miss"), "{asked:?}");
        assert_eq!(asked.text(), "two");
        let hit = chat(&server.url, &key, &q, &[("x-gateway-cache", "exact")]).await;
        assert!(hit.is("hit"), "{hit:?}");
        assert_eq!(hit.text(), "two");
        assert_eq!(mock.received().len(), 2);

        // A request TTL above the operator's maximum is refused by name.
        let too_long = chat(
            &server.url,
            &key,
            &q,
            &[
                ("x-gateway-cache", "exact"),
                ("x-gateway-cache-ttl", "999999999"),
            ],
        )
        .await;
        assert_eq!(too_long.status, 400);
        assert_eq!(too_long.body["error"]["param"], "x-gateway-cache-ttl");
    }
}

#[tokio::test]
async fn malformed_cache_headers_are_refused_by_name() {
    let mock = MockUpstream::start(vec![gemini_ok("Hi.")]).await.unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let server = start(
        &config(mock.url(), "enabled = true", &Backend::Memory),
        Some(store),
    )
    .await;
    for (name, value) in [
        ("x-gateway-cache", "forever"),
        ("cache-control", "max-age=ten"),
        ("x-gateway-cache-ttl", "-5"),
    ] {
        let answer = chat(&server.url, &key, &ask("hi"), &[(name, value)]).await;
        assert_eq!(answer.status, 400, "{name}: {value}");
        assert_eq!(answer.body["error"]["type"], "invalid_request_error");
        assert_eq!(answer.body["error"]["param"], name);
    }
    // Directives HTTP defines for other uses are ignored.
    let answer = chat(
        &server.url,
        &key,
        &ask("hi"),
        &[("cache-control", "no-transform, stale-if-error=5")],
    )
    .await;
    assert!(answer.is("miss"), "{answer:?}");
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn a_finished_stream_is_replayed_to_streams_and_blocking_requests() {
    for backend in backends("a_finished_stream_is_replayed_to_streams_and_blocking_requests") {
        let mock = MockUpstream::start(vec![gemini_stream_ok()]).await.unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        let server = start(
            &config(mock.url(), "enabled = true", &backend),
            Some(store.clone()),
        )
        .await;
        let mut body = ask("Tell me a story");
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});

        let first = stream(&server.url, &key, &body, &[]).await;
        assert_eq!(first.cache.as_deref(), Some("miss"));
        assert_eq!(first.text, "Once upon a time");
        let paid = first.usage.as_ref().unwrap()["cost_usd"].clone();
        assert_ne!(paid, json!("0"));

        let replayed = stream(&server.url, &key, &body, &[]).await;
        assert_eq!(replayed.cache.as_deref(), Some("hit"), "{backend:?}");
        assert_eq!(replayed.cost.as_deref(), Some("0"));
        assert_eq!(replayed.text, "Once upon a time");
        assert_eq!(replayed.finish.as_deref(), Some("stop"));
        assert!(replayed.done && replayed.error.is_none());
        let usage = replayed.usage.unwrap();
        assert_eq!(usage["prompt_tokens"], 3);
        assert_eq!(usage["completion_tokens"], 4);
        assert_eq!(usage["cost_usd"], "0", "a replay is not priced again");

        body["stream"] = json!(false);
        body.as_object_mut().unwrap().remove("stream_options");
        let blocking = chat(&server.url, &key, &body, &[]).await;
        assert!(blocking.is("hit"), "{backend:?}: {blocking:?}");
        assert_eq!(blocking.text(), "Once upon a time");
        assert_eq!(blocking.body["choices"][0]["finish_reason"], "stop");
        assert_eq!(blocking.body["usage"]["completion_tokens"], 4);
        assert_eq!(blocking.body["usage"]["cost_usd"], "0");
        assert_eq!(mock.received().len(), 1);
    }
}

#[tokio::test]
async fn a_stream_that_did_not_end_normally_is_not_kept() {
    const START: &str =
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Once upon"}]},"index":0}]}"#;
    for backend in backends("a_stream_that_did_not_end_normally_is_not_kept") {
        let mock = MockUpstream::start(vec![
            // Broken off in the middle of an event.
            UpstreamStep {
                respond: Respond::sse_broken_off([START], r#"{"candidates":[{"content":"#),
                ..UpstreamStep::default()
            },
            // Ended cleanly, but before Gemini's last event (no finishReason).
            UpstreamStep {
                respond: Respond::sse([START]),
                ..UpstreamStep::default()
            },
            // Dropped by its client half-way.
            UpstreamStep {
                respond: Respond {
                    sse_interval_ms: Some(1_000),
                    ..gemini_stream_ok().respond
                },
                ..UpstreamStep::default()
            },
            gemini_stream_ok(),
        ])
        .await
        .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        let server = start(
            &config(mock.url(), "enabled = true", &backend),
            Some(store.clone()),
        )
        .await;
        let mut body = ask("Tell me a story");
        body["stream"] = json!(true);

        let broken = stream(&server.url, &key, &body, &[]).await;
        assert!(broken.error.is_some(), "{broken:?}");
        let early = stream(&server.url, &key, &body, &[]).await;
        assert_eq!(
            early.cache.as_deref(),
            Some("miss"),
            "{backend:?}: {early:?}"
        );

        let mut dropped = post_chat_with(&server.url, &key, body.clone(), &[]).await;
        assert_eq!(header(&dropped, "x-gateway-cache"), Some("miss"));
        let mut seen = String::new();
        while !seen.contains("Once upon") {
            let chunk = dropped.chunk().await.unwrap().expect("the first event");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        drop(dropped);
        tokio::time::sleep(Duration::from_millis(1_500)).await;

        let whole = stream(&server.url, &key, &body, &[]).await;
        assert_eq!(
            whole.cache.as_deref(),
            Some("miss"),
            "{backend:?}: {whole:?}"
        );
        assert_eq!(whole.text, "Once upon a time");
        let hit = stream(&server.url, &key, &body, &[]).await;
        assert_eq!(hit.cache.as_deref(), Some("hit"), "{backend:?}");
        assert_eq!(hit.text, "Once upon a time");
        assert_eq!(mock.received().len(), 4);
    }
}

#[tokio::test]
async fn a_paraphrase_hits_the_semantic_cache_and_another_question_does_not() {
    const SEMANTIC: &str = "enabled = true\n\
        [cache.semantic]\nembedding_model = \"gemini/gemini-embedding-001\"\nthreshold = 0.9\n\
        [cache.models.\"gemini/gemini-2.5-flash\"]\nsemantic = true\n";
    for backend in backends("a_paraphrase_hits_the_semantic_cache_and_another_question_does_not") {
        // Embeddings chosen so that the paraphrase is close (cosine 0.995) and the other
        // question far (0) from the first question.
        let mock = MockUpstream::start(vec![
            gemini_embedding(&[&[1.0, 0.0, 0.0]]),
            gemini_chat("gemini-2.5-flash", "Paris."),
            gemini_embedding(&[&[0.995, 0.0999, 0.0]]),
            gemini_embedding(&[&[0.0, 1.0, 0.0]]),
            gemini_chat("gemini-2.5-flash", "About 4,806 m."),
        ])
        .await
        .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        let server = start(&config(mock.url(), SEMANTIC, &backend), Some(store.clone())).await;

        let first = chat(
            &server.url,
            &key,
            &ask("What is the capital of France?"),
            &[],
        )
        .await;
        assert!(first.is("miss"), "{backend:?}: {first:?}");

        let paraphrase = chat(
            &server.url,
            &key,
            &ask("Which city is France's capital?"),
            &[],
        )
        .await;
        assert_eq!(paraphrase.status, 200, "{paraphrase:?}");
        let said = paraphrase.cache.clone().unwrap();
        assert!(
            said.starts_with("semantic-hit; similarity=0.99"),
            "{backend:?}: {said}"
        );
        assert_eq!(paraphrase.text(), "Paris.");
        assert_eq!(paraphrase.cost.as_deref(), Some("0"));
        assert!(paraphrase.age.is_some());
        let hit = row(&store, &paraphrase.request_id).await;
        assert!(hit.cached.unwrap().semantic, "logged as a semantic hit");
        // The embedding call is made through the gateway, logged under the request's id.
        let embedding = row(&store, &format!("{}.cache", paraphrase.request_id)).await;
        assert_eq!(embedding.model, "gemini-embedding-001");

        let other = chat(&server.url, &key, &ask("How high is Mont Blanc?"), &[]).await;
        assert!(other.is("miss"), "{backend:?}: {other:?}");
        assert_eq!(other.text(), "About 4,806 m.");

        // The very question again: an exact hit, with no embedding call at all.
        let exact = chat(
            &server.url,
            &key,
            &ask("What is the capital of France?"),
            &[],
        )
        .await;
        assert!(exact.is("hit"), "{exact:?}");
        assert_eq!(mock.verify(), Vec::<String>::new(), "{backend:?}");
    }
}

#[tokio::test]
async fn a_hit_is_served_only_to_a_caller_whose_plan_allows_its_model() {
    // Shared by every caller (an operator's explicit choice), so the free user finds the
    // answer the enterprise user paid for; the plan still decides.
    for backend in backends("a_hit_is_served_only_to_a_caller_whose_plan_allows_its_model") {
        let mock = MockUpstream::start(vec![gemini_chat("gemini-2.5-pro", "Deep answer.")])
            .await
            .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, rich) = user(&store, "enterprise").await;
        let (_, free) = user(&store, "free").await;
        let (_, pro) = user(&store, "pro").await;
        let server = start(
            &config(mock.url(), "enabled = true\nshare = \"global\"", &backend),
            Some(store.clone()),
        )
        .await;
        let mut q = ask("Think hard");
        q["model"] = json!("gemini/gemini-2.5-pro");
        assert!(chat(&server.url, &rich, &q, &[]).await.is("miss"));

        let refused = chat(&server.url, &free, &q, &[]).await;
        assert_eq!(refused.status, 403, "{backend:?}: {refused:?}");
        assert_ne!(
            refused.body["choices"][0]["message"]["content"],
            "Deep answer."
        );

        let shared = chat(&server.url, &pro, &q, &[]).await;
        assert!(shared.is("hit"), "{backend:?}: {shared:?}");
        assert_eq!(shared.text(), "Deep answer.");
        assert_eq!(mock.received().len(), 1);
    }
}

#[tokio::test]
async fn identical_embeddings_and_searches_hit() {
    const BOTH: &str = "[cache.embeddings]\nenabled = true\n[cache.search]\nenabled = true\n";
    for backend in backends("identical_embeddings_and_searches_hit") {
        let mock = MockUpstream::start(vec![
            gemini_embedding(&[&[0.25, 0.5]]),
            UpstreamStep {
                expect: UpstreamExpect {
                    path: Some("/search".into()),
                    ..UpstreamExpect::default()
                },
                respond: Respond::json(json!({
                    "query": "rust caching", "answer": null, "images": [],
                    "results": [{"title": "Caching in Rust", "url": "https://example.com/rust",
                                 "content": "How to cache.", "score": 0.9, "raw_content": null}],
                    "response_time": 0.5
                })),
            },
        ])
        .await
        .unwrap();
        let store = open_store("sqlite::memory:").await;
        let (_, key) = user(&store, "pro").await;
        let server = start(&config(mock.url(), BOTH, &backend), Some(store.clone())).await;
        let client = reqwest::Client::new();
        let post = |path: &'static str, body: Value| {
            let request = client
                .post(format!("{}{path}", server.url))
                .bearer_auth(&key)
                .json(&body);
            async move { Answer::read(request.send().await.unwrap()).await }
        };

        let embed = json!({"model": "gemini/gemini-embedding-001", "input": "hello"});
        assert!(post("/v1/embeddings", embed.clone()).await.is("miss"));
        let again = post("/v1/embeddings", embed).await;
        assert!(again.is("hit"), "{backend:?}: {again:?}");
        assert_eq!(again.body["data"][0]["embedding"], json!([0.25, 0.5]));
        assert_eq!(again.cost.as_deref(), Some("0"));
        assert_eq!(again.body["usage"]["cost_usd"], "0");
        assert!(row(&store, &again.request_id).await.cached.is_some());

        let search = json!({"model": "tavily", "query": "rust caching"});
        assert!(post("/v1/search", search.clone()).await.is("miss"));
        let again = post("/v1/search", search).await;
        assert!(again.is("hit"), "{backend:?}: {again:?}");
        assert_eq!(again.body["results"][0]["url"], "https://example.com/rust");
        assert_eq!(again.cost.as_deref(), Some("0"));
        assert_eq!(again.body["usage"]["cost_usd"], 0.0);
        assert!(row(&store, &again.request_id).await.cached.is_some());
        assert_eq!(mock.received().len(), 2);
    }
}

/// A `redis-server` of this test's own, killed when dropped.
struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    /// Starts one on `port`; `None` (the test then says it skipped) when there is no
    /// `redis-server` to run.
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = Self { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis down at start, then up, then killed: every request is served, each well within its
/// deadline, and says the cache was bypassed while Redis was away.
#[tokio::test]
async fn requests_are_served_while_redis_is_down() {
    let port = support::process::free_port();
    // Nothing listens yet: the gateway starts all the same.
    let mock = MockUpstream::start(vec![
        gemini_ok("while down"),
        gemini_ok("kept"),
        gemini_ok("after the kill"),
        gemini_stream_ok(),
    ])
    .await
    .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let backend = Backend::Redis(format!("redis://127.0.0.1:{port}"));
    let mut config = config(mock.url(), "enabled = true", &backend);
    config.cache.as_mut().unwrap().config.budget_ms = 200;
    let server = start(&config, Some(store.clone())).await;
    let timed = |body: Value, headers: &'static [(&'static str, &'static str)]| {
        let (url, key) = (server.url.clone(), key.clone());
        async move {
            let started = Instant::now();
            let answer = chat(&url, &key, &body, headers).await;
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(1_500),
                "took {took:?}: {answer:?}"
            );
            answer
        }
    };
    const DEADLINE: &[(&str, &str)] = &[("x-gateway-deadline-ms", "5000")];

    let down = timed(ask("Q"), DEADLINE).await;
    assert!(down.is("skip; reason=unavailable"), "{down:?}");
    assert_eq!(down.text(), "while down");

    let Some(mut redis) = OwnRedis::start(port) else {
        println!("requests_are_served_while_redis_is_down: SKIPPED: redis-server cannot run");
        return;
    };
    let up = timed(ask("Q"), DEADLINE).await;
    assert!(up.is("miss"), "the cache is back by itself: {up:?}");
    let hit = timed(ask("Q"), DEADLINE).await;
    assert!(hit.is("hit"), "{hit:?}");
    assert_eq!(hit.text(), "kept");

    redis.kill();
    let after = timed(ask("Q"), DEADLINE).await;
    assert!(after.is("skip; reason=unavailable"), "{after:?}");
    assert_eq!(after.text(), "after the kill");
    let started = Instant::now();
    let mut body = ask("Q");
    body["stream"] = json!(true);
    let streamed = stream(&server.url, &key, &body, DEADLINE).await;
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(streamed.cache.as_deref(), Some("skip; reason=unavailable"));
    assert_eq!(streamed.text, "Once upon a time");
    assert_eq!(mock.received().len(), 4);
}

/// `gateway_cache_lookups_total` by operation and outcome, and what hits saved in
/// `gateway_cache_saved_usd_total`, against the usage log.
#[tokio::test]
async fn metrics_count_lookups_and_savings() {
    let section = TelemetrySection {
        prometheus: PrometheusMode::Admin,
        ..TelemetrySection::default()
    };
    let telemetry = Arc::new(gw_server::Telemetry::init(&section).unwrap());
    let mock = MockUpstream::start(vec![gemini_ok("Hello!"), gemini_ok("Skipped.")])
        .await
        .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "pro").await;
    let url = support::start_with_telemetry(
        &config(mock.url(), "enabled = true", &Backend::Memory),
        store.clone(),
        telemetry,
    )
    .await;
    let first = chat(&url, &key, &ask("Say hi"), &[]).await;
    assert!(chat(&url, &key, &ask("Say hi"), &[]).await.is("hit"));
    assert!(chat(&url, &key, &ask("Say hi"), &[]).await.is("hit"));
    assert!(
        chat(&url, &key, &ask("Say hi"), &[("x-gateway-cache", "skip")])
            .await
            .is("skip")
    );

    let text = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let lookups = |outcome: &str| {
        value(&format!(
            "gateway_cache_lookups_total{{gateway_cache_outcome=\"{outcome}\",gen_ai_operation_name=\"chat\"}}"
        ))
    };
    assert_eq!(lookups("miss"), 1.0);
    assert_eq!(lookups("hit"), 2.0);
    assert_eq!(lookups("skip"), 1.0);
    let saved = value("gateway_cache_saved_usd_total{");
    let paid = row(&store, &first.request_id).await.cost.unwrap().nanos() as f64 / 1e9;
    assert!(paid > 0.0);
    assert!(
        (saved - 2.0 * paid).abs() < 1e-12,
        "saved {saved}, paid {paid}"
    );
}
