//! Plans enforced before every provider call, exact usage accounting, `/v1/usage`, and the admin
//! routes, end to end over HTTP with a real store (SQLite, and PostgreSQL when configured).

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use gw_mock::MockUpstream;
use gw_mock::fixture::{Respond, UpstreamStep};
use gw_store::{Counter, Counters};
use serde_json::{Value, json};
use support::{
    ADMIN_KEY, chat_body, config_for, databases, gemini_ok, get_json, open_store, post_chat, start,
    user,
};

#[tokio::test]
async fn refused_requests_never_reach_a_provider() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let store = open_store("sqlite::memory:").await;
    let (free, key) = user(&store, "free").await;
    let server = start(&config_for(mock.url()), Some(store.clone())).await;

    // A model outside the free plan: 403 permission_error.
    let response = post_chat(
        &server.url,
        &key,
        &chat_body("gemini/gemini-2.5-pro", false),
    )
    .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "permission_error", "{body}");

    // The allowance used up: 429 insufficient_quota.
    let period = store.plans().require("free").unwrap().current_period();
    let limit = store
        .plans()
        .require("free")
        .unwrap()
        .limit(Counter::TextRequests)
        .unwrap();
    store
        .add_counters(
            &free.id,
            &period,
            &Counters::new().with(Counter::TextRequests, limit),
        )
        .await
        .unwrap();
    for stream in [false, true] {
        let response = post_chat(
            &server.url,
            &key,
            &chat_body("gemini/gemini-2.5-flash", stream),
        )
        .await;
        assert_eq!(response.status(), 429);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "insufficient_quota", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("text_requests"),
            "{body}"
        );
    }
    assert!(
        mock.received().is_empty(),
        "no request may reach the provider"
    );
}

/// 200 concurrent requests from one user with 50 requests left: exactly 50 upstream calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_overshoot_under_concurrency() {
    for (url, _dir) in databases("no_overshoot") {
        let steps: Vec<UpstreamStep> = (0..50).map(|_| gemini_ok("hi")).collect();
        let mock = MockUpstream::start(steps).await.unwrap();
        let store = open_store(&url).await;
        let (free, key) = user(&store, "free").await;
        let plan = store.plans().require("free").unwrap().clone();
        let limit = plan.limit(Counter::TextRequests).unwrap();
        store
            .add_counters(
                &free.id,
                &plan.current_period(),
                &Counters::new().with(Counter::TextRequests, limit - 50),
            )
            .await
            .unwrap();
        let server = start(&config_for(mock.url()), Some(store.clone())).await;

        let client = reqwest::Client::new();
        let requests = (0..200).map(|_| {
            let client = client.clone();
            let url = format!("{}/v1/chat/completions", server.url);
            let key = key.clone();
            async move {
                client
                    .post(url)
                    .bearer_auth(key)
                    .json(&chat_body("gemini/gemini-2.5-flash", false))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        });
        let statuses: Vec<u16> = futures_util::stream::iter(requests)
            .buffer_unordered(200)
            .collect()
            .await;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((ok, refused), (50, 150), "{url}: {statuses:?}");
        assert_eq!(
            mock.received().len(),
            50,
            "{url}: exactly 50 upstream calls"
        );
        store.flush().await;
        let used = store
            .counters(&free.id, &plan.current_period())
            .await
            .unwrap();
        assert_eq!(used.get(Counter::TextRequests), limit, "{url}");
        assert_eq!(store.open_reservations().await.unwrap(), 0, "{url}");
    }
}

#[tokio::test]
async fn every_call_is_logged_and_summarised_and_users_see_only_their_own() {
    let mock = MockUpstream::start(vec![gemini_ok("Hello"), gemini_ok("Bonjour")])
        .await
        .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (alice, alice_key) = user(&store, "free").await;
    let (_bob, bob_key) = user(&store, "pro").await;
    let server = start(&config_for(mock.url()), Some(store.clone())).await;

    let response = post_chat(
        &server.url,
        &alice_key,
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(response.status(), 200);
    let cost = response.headers()["x-gateway-cost-usd"]
        .to_str()
        .unwrap()
        .to_owned();
    let request_id = response.headers()["x-gateway-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // gemini-2.5-flash: 3 prompt tokens at $0.30 and 2 output tokens at $2.50 per 1M.
    assert_eq!(cost, "0.0000059");

    store.flush().await;

    let log = store.usage_log(Some(&alice.id), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    let row = &log[0];
    assert_eq!(row.request_id, request_id);
    assert_eq!(
        (
            row.provider.as_str(),
            row.model.as_str(),
            row.status.as_str()
        ),
        ("gemini", "gemini-2.5-flash", "ok")
    );
    assert_eq!((row.tokens.input_tokens, row.tokens.output_tokens), (3, 2));
    assert_eq!(row.cost.unwrap().to_string(), cost);
    // The version of the file that priced Gemini, not whichever provider's file was merged last.
    assert_eq!(
        row.pricing_version.as_deref(),
        Some(server.state.pricing().version_of("gemini"))
    );
    assert!(!row.estimated);

    let usage: Value = get_json(&server.url, &alice_key, "/v1/usage").await;
    assert_eq!(usage["user"]["id"], alice.id.as_str(), "{usage}");
    assert_eq!(usage["totals"]["requests"], 1, "{usage}");
    assert_eq!(usage["totals"]["cost_usd"], "0.0000059", "{usage}");
    assert_eq!(usage["by_model"][0]["model"], "gemini-2.5-flash", "{usage}");
    let requests = &usage["allowance"]["counters"]["text_requests"];
    assert_eq!(requests["used"], 1, "{usage}");
    assert_eq!(
        requests["remaining"],
        requests["limit"].as_u64().unwrap() - 1,
        "{usage}"
    );
    assert_eq!(
        usage["allowance"]["counters"]["cost_usd"]["used"], "0.0000059",
        "{usage}"
    );
    assert!(
        usage["allowance"]["counters"]
            .get("video_requests")
            .is_none(),
        "free has no video: {usage}"
    );

    // Bob sees nothing of Alice's.
    let bobs: Value = get_json(&server.url, &bob_key, "/v1/usage").await;
    assert_eq!(bobs["totals"]["requests"], 0, "{bobs}");
    assert!(!bobs.to_string().contains(&alice.id), "{bobs}");

    let bad_period = reqwest::Client::new()
        .get(format!("{}/v1/usage?period=2026-13", server.url))
        .bearer_auth(&bob_key)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_period.status(), 400);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_is_still_charged() {
    let events = [
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"One two three four "}]},"index":0}]}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"five"}]},"index":0}]}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":" six"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":6,"totalTokenCount":9}}"#,
    ];
    let slow = Respond {
        sse_interval_ms: Some(5_000),
        ..Respond::sse(events)
    };
    let mock = MockUpstream::start(vec![UpstreamStep {
        respond: slow,
        ..UpstreamStep::default()
    }])
    .await
    .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (alice, key) = user(&store, "free").await;
    let server = start(&config_for(mock.url()), Some(store.clone())).await;

    let response = post_chat(
        &server.url,
        &key,
        &chat_body("gemini/gemini-2.5-flash", true),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("One two three four") {
        let chunk = body.next().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(body); // the client goes away while the provider is still streaming

    let mut log = Vec::new();
    for _ in 0..100 {
        log = store.usage_log(Some(&alice.id), 10).await.unwrap();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log.len(), 1, "the disconnected stream must be logged");
    let row = &log[0];
    assert_eq!(row.status, "stream_interrupted");
    assert!(row.estimated && row.billable);
    assert_eq!(
        row.tokens.output_tokens, 5,
        "19 bytes seen, counted locally"
    );
    assert!(
        row.cost.unwrap() > llm_gateway::Cost::ZERO,
        "never logged at zero cost"
    );
    store.flush().await;
    assert_eq!(store.open_reservations().await.unwrap(), 0);
}

/// A client that gives up before a blocking answer (or a stream's first byte) arrives: its
/// reservation is settled within a second, charged at what was reserved since the provider
/// was already called, instead of held until recovery hours later.
#[tokio::test]
async fn a_client_that_gives_up_before_the_answer_is_settled_at_once() {
    for stream in [false, true] {
        let mut slow = gemini_ok("too late");
        slow.respond.delay_ms = Some(5_000);
        let mock = MockUpstream::start(vec![slow]).await.unwrap();
        let store = open_store("sqlite::memory:").await;
        let (alice, key) = user(&store, "free").await;
        let server = start(&config_for(mock.url()), Some(store.clone())).await;

        let gave_up = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap()
            .post(format!("{}/v1/chat/completions", server.url))
            .bearer_auth(&key)
            .json(&chat_body("gemini/gemini-2.5-flash", stream))
            .send()
            .await;
        assert!(gave_up.is_err(), "the client timed out");
        let left = std::time::Instant::now();

        let mut log = Vec::new();
        while left.elapsed() < Duration::from_secs(1) && log.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            log = store.usage_log(Some(&alice.id), 10).await.unwrap();
        }
        assert_eq!(log.len(), 1, "stream {stream}: settled within a second");
        let row = &log[0];
        assert_eq!(row.status, "stream_interrupted", "stream {stream}");
        assert!(row.estimated && row.billable, "stream {stream}");
        assert!(
            row.cost.unwrap() > llm_gateway::Cost::ZERO,
            "stream {stream}"
        );
        store.flush().await;
        assert_eq!(
            store.open_reservations().await.unwrap(),
            0,
            "stream {stream}"
        );
    }
}

#[tokio::test]
async fn a_stream_is_settled_with_the_providers_usage() {
    let mock = MockUpstream::start(vec![UpstreamStep {
        respond: Respond::sse([
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"!"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"thoughtsTokenCount":10,"totalTokenCount":16}}"#,
        ]),
        ..UpstreamStep::default()
    }])
    .await
    .unwrap();
    let store = open_store("sqlite::memory:").await;
    let (alice, key) = user(&store, "free").await;
    let server = start(&config_for(mock.url()), Some(store.clone())).await;
    let text = post_chat(
        &server.url,
        &key,
        &chat_body("gemini/gemini-2.5-flash", true),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // The log is written before [DONE] is sent.
    store.flush().await;
    let log = store.usage_log(Some(&alice.id), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].status.as_str(),
            log[0].tokens.output_tokens,
            log[0].tokens.reasoning_tokens
        ),
        ("ok", 12, 10)
    );
    assert!(!log[0].estimated);
    assert!(log[0].time_to_first_token.is_some());
    // 4 × $0.30 + 12 × $2.50 per 1M tokens.
    assert_eq!(log[0].cost.unwrap().to_string(), "0.0000312");
    assert!(text.contains(r#""cost_usd":"0.0000312""#), "{text}");
}

#[tokio::test]
async fn an_unreachable_store_refuses_with_503_and_sends_nothing() {
    let mock = MockUpstream::start(vec![]).await.unwrap();
    let dir = support::tempfile_dir::TempDir::new("unreachable");
    let store = open_store(&format!("sqlite://{}", dir.path().join("g.db").display())).await;
    let (_alice, key) = user(&store, "free").await;
    let server = start(&config_for(mock.url()), Some(store.clone())).await;
    store.close().await;
    let response = post_chat(
        &server.url,
        &key,
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error", "{body}");
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn admin_routes_manage_users_keys_and_usage() {
    let mock = MockUpstream::start(vec![gemini_ok("hi")]).await.unwrap();
    let store = open_store("sqlite::memory:").await;
    let server = start(&config_for(mock.url()), Some(store.clone())).await;
    let client = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}{path}", server.url))
            .bearer_auth(ADMIN_KEY)
    };

    // Guarded: no key, a user's key, a wrong key.
    let unauth = client
        .get(format!("{}/admin/users", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
    let wrong = client
        .get(format!("{}/admin/users", server.url))
        .bearer_auth("not-the-admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let name = support::unique("carol");
    let created = admin(reqwest::Method::POST, "/admin/users")
        .json(&json!({"name": name, "plan": "free"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let user: Value = created.json().await.unwrap();
    let unknown_plan = admin(reqwest::Method::POST, "/admin/users")
        .json(&json!({"name": "x", "plan": "gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_plan.status(), 400);

    let key: Value = admin(reqwest::Method::POST, &format!("/admin/users/{name}/keys"))
        .json(&json!({"name": "laptop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("gw_"), "{key}");
    let user_key_on_admin = client
        .get(format!("{}/admin/users", server.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(user_key_on_admin.status(), 401);

    let ok = post_chat(
        &server.url,
        &secret,
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(ok.status(), 200);

    let moved: Value = admin(
        reqwest::Method::PATCH,
        &format!("/admin/users/{}", user["id"].as_str().unwrap()),
    )
    .json(&json!({"plan": "pro"}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(moved["plan"], "pro");

    let usage: Value = admin(reqwest::Method::GET, &format!("/admin/usage?user={name}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["totals"]["requests"], 1, "{usage}");

    let listed: Value = admin(reqwest::Method::GET, &format!("/admin/users/{name}/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "a listed key never shows the secret: {listed}"
    );
    let revoked = admin(
        reqwest::Method::DELETE,
        &format!("/admin/keys/{}", key["id"].as_str().unwrap()),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(revoked.status(), 204);
    let after = post_chat(
        &server.url,
        &secret,
        &chat_body("gemini/gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(after.status(), 401);

    let plans: Value = admin(reqwest::Method::GET, "/admin/plans")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let free = plans["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "free")
        .unwrap();
    assert!(free["modalities"].get("video").is_none(), "{free}");
}
