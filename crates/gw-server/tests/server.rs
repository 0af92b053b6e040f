//! The server end to end over real HTTP: authentication, the error envelope, routing errors,
//! model listing, and that the library and the server give the same answer.

mod support;

use futures_util::StreamExt;
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_server::{AppState, Config};
use llm_gateway::{Gateway, ProviderConfig, ProvidersConfig, Registry, TextChunk, TextRequest};
use serde_json::{Value, json};
use support::{chat_body, config_for, open_store, start, user};

/// A server over a fresh in-memory store, and an enterprise user's key.
async fn server_with_user(upstream: &str) -> (support::Server, String) {
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "enterprise").await;
    (start(&config_for(upstream), Some(store)).await, key)
}

async fn post(url: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

fn assert_envelope(body: &Value, ty: &str) {
    assert_eq!(body["error"]["type"], ty, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"].as_object().unwrap().contains_key("param"),
        "{body}"
    );
    assert!(
        body["error"].as_object().unwrap().contains_key("code"),
        "{body}"
    );
}

#[tokio::test]
async fn gateway_keys_are_required_and_never_echoed() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let (server, key) = server_with_user(mock.url()).await;
    let key = key.as_str();

    let missing = post(
        &server.url,
        None,
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().contains_key("x-gateway-request-id"));
    assert_envelope(&missing.json().await.unwrap(), "authentication_error");

    // A malformed key, a well-formed unknown one, and a revoked one.
    let store = server.state.store().unwrap().clone();
    let owner = store.authenticate(key).await.unwrap().unwrap();
    let (revoked, revoked_key) = store.create_key(&owner.user_id, "old").await.unwrap();
    store.revoke_key(&revoked.id).await.unwrap();
    for wrong in [
        "sk-wrong-secret",
        "gw_0123456789abcdefghijABCDEFGHIJ0123456789",
        revoked_key.expose(),
    ] {
        let response = post(
            &server.url,
            Some(wrong),
            &chat_body("gemini/gemini-2.5-flash", false),
        )
        .await;
        assert_eq!(response.status(), 401, "{wrong}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(wrong), "{text}");
    }
    let ok = post(&server.url, Some(key), &json!({"model": "gemini/x"})).await;
    assert_eq!(ok.status(), 400, "a valid key gets past authentication");

    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(mock.verify().is_empty(), "{:?}", mock.verify());
}

#[tokio::test]
async fn bad_requests_get_the_openai_envelope_and_reach_no_provider() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let (server, key) = server_with_user(mock.url()).await;
    let key = key.as_str();

    let not_json = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body("{ nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_envelope(&not_json.json().await.unwrap(), "invalid_request_error");

    let missing_field = post(&server.url, Some(key), &json!({"model": "gemini/x"})).await;
    assert_eq!(missing_field.status(), 400);
    let body: Value = missing_field.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages"),
        "{body}"
    );

    let unknown_provider = post(&server.url, Some(key), &chat_body("nope/model", false)).await;
    assert_eq!(unknown_provider.status(), 404);
    assert_envelope(&unknown_provider.json().await.unwrap(), "not_found_error");

    let no_slash = post(
        &server.url,
        Some(key),
        &chat_body("gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(no_slash.status(), 400);

    let unknown_route = reqwest::Client::new()
        .get(format!("{}/v1/nothing", server.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_route.status(), 404);
    assert!(mock.received().is_empty());
}

/// The chat route is served without the router (`app::Dispatch`): what the router and its
/// extractors answered for it, it still answers, as the routes the router serves do.
#[tokio::test]
async fn the_chat_route_rejects_as_the_routers_routes_do() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "enterprise").await;
    let mut config = config_for(mock.url());
    config.server.max_body_bytes = 512;
    let server = start(&config, Some(store)).await;
    let http = reqwest::Client::new();
    let send = |path: &str, content_type: &str, body: String| {
        http.post(format!("{}{path}", server.url))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let large = json!({"model": "gemini/gemini-2.5-flash", "input": "x".repeat(600),
        "messages": [{"role": "user", "content": "x".repeat(600)}]})
    .to_string();
    // Each is a 400 `invalid_request_error` carrying axum's rejection text.
    for (body, content_type, says) in [
        (large, "application/json", "length limit exceeded"),
        (
            chat_body("gemini/gemini-2.5-flash", false).to_string(),
            "text/plain",
            "Content-Type",
        ),
        (
            "{ nope".to_owned(),
            "application/json",
            "key must be a string",
        ),
    ] {
        let chat = send("/v1/chat/completions", content_type, body.clone())
            .await
            .unwrap();
        let routed = send("/v1/embeddings", content_type, body).await.unwrap();
        assert_eq!(chat.status(), 400, "{says}");
        assert_eq!(routed.status(), 400, "{says}");
        assert!(chat.headers().contains_key("x-gateway-request-id"));
        let (chat, routed): (Value, Value) =
            (chat.json().await.unwrap(), routed.json().await.unwrap());
        assert_eq!(chat["error"], routed["error"], "{says}");
        assert_eq!(chat["error"]["type"], "invalid_request_error");
        let message = chat["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Another method on the path still reaches the router: 405, not the handler.
    let get = http
        .get(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_provider_without_a_key_answers_503_saying_why() {
    let key = "sk-static-test-key";
    let config = format!(
        "[store]\nenabled = false\n[[auth.keys]]\nname = \"test\"\nkey = \"{key}\"\n\
         [providers.gemini]\napi_key_env = \"GW_TEST_GEMINI_KEY_SURELY_UNSET\"\n"
    );
    let server = start(
        &Config::from_toml(&config, "test", std::iter::empty()).unwrap(),
        None,
    )
    .await;
    let response = post(
        &server.url,
        Some(key),
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GW_TEST_GEMINI_KEY_SURELY_UNSET"),
        "{body}"
    );
}

#[tokio::test]
async fn models_lists_announced_models() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let (server, key) = server_with_user(mock.url()).await;
    let body: Value = reqwest::Client::new()
        .get(format!("{}/v1/models", server.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "gemini/gemini-2.5-flash");
    assert_eq!(body["data"][0]["owned_by"], "gemini");
}

fn gemini_stream_step() -> UpstreamStep {
    UpstreamStep {
        respond: Respond::sse([
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hél"}]},"index":0}],"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"lo 👋"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}"#,
        ]),
        ..UpstreamStep::default()
    }
}

fn gemini_generate_step() -> UpstreamStep {
    UpstreamStep {
        respond: Respond::json(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Héllo 👋"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
        })),
        ..UpstreamStep::default()
    }
}

/// The library (no server) and the server stream and return the same content and usage.
#[tokio::test]
async fn library_and_server_agree() {
    let mock = MockUpstream::start(vec![
        gemini_stream_step(),
        gemini_stream_step(),
        gemini_generate_step(),
        gemini_generate_step(),
    ])
    .await
    .unwrap();

    // The library, configured by hand.
    let mut providers = ProvidersConfig::new();
    providers.insert(
        "gemini".into(),
        ProviderConfig {
            base_url: Some(mock.url().to_owned()),
            api_key: Some("provider-key".into()),
            ..ProviderConfig::default()
        },
    );
    let mut registry = Registry::new();
    assert!(
        llm_gateway::register_enabled(&mut registry, &providers)
            .unwrap()
            .is_empty()
    );
    let gateway = Gateway::new(registry);
    let request = TextRequest::new("gemini/gemini-2.5-flash").user("Say hi");

    let mut lib_text = String::new();
    let mut lib_usage = None;
    let mut stream = gateway.stream(request.clone()).await.unwrap();
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap() {
            TextChunk::Delta(t) => lib_text.push_str(&t),
            TextChunk::Usage(u) => lib_usage = Some(u),
            _ => {}
        }
    }
    let lib_usage = lib_usage.unwrap();

    // The server.
    let (server, key) = server_with_user(mock.url()).await;
    let key = key.as_str();
    let sse = post(
        &server.url,
        Some(key),
        &chat_body("gemini/gemini-2.5-flash", true),
    )
    .await
    .text()
    .await
    .unwrap();
    let events: Vec<&str> = sse
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    let server_text: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    let server_usage = chunks.iter().rev().find_map(|c| c.get("usage")).unwrap();

    assert_eq!(lib_text, "Héllo 👋");
    assert_eq!(server_text, lib_text);
    assert_eq!(server_usage["prompt_tokens"], lib_usage.input_tokens);
    assert_eq!(server_usage["completion_tokens"], lib_usage.output_tokens);
    assert_eq!(
        server_usage["cost_usd"], "0.0000059",
        "gemini-2.5-flash: 3 × $0.30 + 2 × $2.50 per 1M"
    );

    // And the blocking answers.
    let lib_answer = gateway.generate(request).await.unwrap();
    let server_answer = post(
        &server.url,
        Some(key),
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(server_answer.headers()["x-gateway-cost-usd"], "0.0000059");
    let server_answer: Value = server_answer.json().await.unwrap();
    assert_eq!(
        server_answer["choices"][0]["message"]["content"],
        lib_answer.content
    );
    assert_eq!(
        server_answer["usage"]["total_tokens"],
        lib_answer.usage.total_tokens()
    );
    assert!(mock.verify().is_empty(), "{:?}", mock.verify());
}

/// The checked-in configuration starts on a fresh machine: no provider keys, no admin key.
#[tokio::test]
async fn the_checked_in_config_starts_without_any_keys() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let dir = support::tempfile_dir::TempDir::new("checked-in");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let env = [
        ("GATEWAY__STORE__URL".to_owned(), db),
        (
            "GATEWAY__PROVIDERS__GEMINI__API_KEY_ENV".to_owned(),
            "GW_TEST_SURELY_UNSET_1".to_owned(),
        ),
        (
            "GATEWAY__PROVIDERS__HF__API_KEY_ENV".to_owned(),
            "GW_TEST_SURELY_UNSET_2".to_owned(),
        ),
    ];
    let config = Config::from_toml(&text, path, env).unwrap();
    let state = gw_server::AppState::from_config(&config).await.unwrap();
    assert!(state.gateway().registry().providers().is_empty());
    assert!(
        state
            .gateway()
            .routing()
            .aliases
            .contains_key("chat-default")
    );
}

fn config_text(upstream: &str, gemini_extra: &str, hf_extra: &str) -> Config {
    let text = format!(
        "[providers.gemini]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\n{gemini_extra}\n\
         [providers.hf]\nbase_url = \"{upstream}\"\napi_key = \"provider-key\"\n{hf_extra}\n"
    );
    Config::from_toml(&text, "test config", std::iter::empty()).unwrap()
}

#[tokio::test]
async fn models_name_what_each_serves() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let config = config_text(
        mock.url(),
        r#"models = ["gemini-2.5-flash", { id = "gemini-embedding-001", serves = ["embeddings"] }]"#,
        "",
    );
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "enterprise").await;
    let server = start(&config, Some(store)).await;
    let body: Value = reqwest::Client::new()
        .get(format!("{}/v1/models", server.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"],
        json!([
            {"id": "gemini/gemini-2.5-flash", "object": "model", "created": 0,
             "owned_by": "gemini", "modalities": ["chat"]},
            {"id": "gemini/gemini-embedding-001", "object": "model", "created": 0,
             "owned_by": "gemini", "modalities": ["embeddings"]},
        ])
    );
}

#[tokio::test]
async fn provider_configuration_mistakes_stop_the_start_naming_the_field() {
    for (gemini, hf, named) in [
        ("colour = \"red\"", "", "colour"),
        (
            r#"models = [{ id = "x", serves = ["video"] }]"#,
            "",
            "providers.gemini.models[0]",
        ),
        ("", "bill_to = 7", "bill_to"),
    ] {
        let config = config_text("http://127.0.0.1:9", gemini, hf);
        let err = match AppState::from_config_with_store(&config, None).await {
            Ok(_) => panic!("{gemini}{hf}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(named), "{named}: {err}");
    }
}

#[tokio::test]
async fn hf_bills_the_configured_organisation() {
    let mock = MockUpstream::start(vec![UpstreamStep {
        expect: UpstreamExpect {
            headers: [("x-hf-bill-to".to_owned(), json!("my-org"))].into(),
            ..UpstreamExpect::default()
        },
        respond: Respond::json(json!([0.25, 0.5])),
    }])
    .await
    .unwrap();
    let config = config_text(mock.url(), "", "bill_to = \"my-org\"");
    let store = open_store("sqlite::memory:").await;
    let (_, key) = user(&store, "enterprise").await;
    let server = start(&config, Some(store)).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/embeddings", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": "hf/BAAI/bge-small-en-v1.5", "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["embedding"], json!([0.25, 0.5]));
    assert_eq!(mock.verify(), Vec::<String>::new());
}

/// A settlement journal that cannot be opened stops the start, naming the field and the path.
#[tokio::test]
async fn a_journal_that_cannot_be_opened_is_named() {
    let dir = support::tempfile_dir::TempDir::new("bad-journal");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let journal = dir.path().join("missing").join("usage.settlements");
    let text = format!(
        "[store]\nurl = \"{db}\"\njournal = \"{}\"\n",
        journal.display()
    );
    let config = Config::from_toml(&text, "gateway.toml", std::iter::empty()).unwrap();
    let Err(e) = gw_server::AppState::from_config(&config).await else {
        panic!("a journal in a missing directory was accepted");
    };
    assert_eq!(e.at, "store.journal", "{e}");
    assert!(e.problem.contains("missing"), "{e}");
}

/// A gateway that is gone closes its upstream connections at once: the background job pollers
/// hold the state (and with it the gateway's connection pool) only during a round, never while
/// they wait the poll interval (2 s by default) for the next.
#[tokio::test]
async fn a_dropped_server_closes_its_upstream_connections_at_once() {
    let mock = MockUpstream::start(vec![support::gemini_ok("hi")])
        .await
        .unwrap();
    let (server, key) = server_with_user(mock.url()).await;
    let res = post(
        &server.url,
        Some(&key),
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    assert_eq!(
        mock.open_connections(),
        1,
        "the gateway keeps its connection"
    );
    drop(server);
    let closed = mock
        .wait_for(std::time::Duration::from_millis(500), |m| {
            m.open_connections() == 0
        })
        .await;
    assert!(
        closed,
        "{} upstream connection(s) still open 500 ms after the gateway stopped",
        mock.open_connections()
    );
}
