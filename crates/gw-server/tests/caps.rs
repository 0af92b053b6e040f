//! Caps on tokens and money hold as exactly as request counts: 200 concurrent requests against
//! a capped plan, answered by an upstream that always writes the longest output the request's
//! bound allows, never charge past the cap. On SQLite, PostgreSQL, and two replicas (two stores,
//! two servers) sharing PostgreSQL; each with every admission a database transaction, and with
//! journals, admitting from leases.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures_util::StreamExt;
use gw_store::{Counter, LogFilter, Plans, Store, StoreOptions};
use llm_gateway::Cost;
use serde_json::{Value, json};
use support::{config_for, databases, start, user};

/// Two capped plans: one on money, one on text tokens. The default output budget is what a
/// request without `max_tokens` reserves, and is lowered near the cap.
const PLANS: &str = r#"
[plans.costcap]
cost_usd = "0.05"
allow = ["gemini/*"]
default_max_tokens = 1000
[plans.costcap.text]

[plans.tokencap]
allow = ["gemini/*"]
default_max_tokens = 1000
[plans.tokencap.text]
tokens = 20000
"#;

/// A prompt of 400 characters: about 100 tokens of English.
fn prompt() -> String {
    "Tell me everything you know about the sea. ".repeat(10)[..400].to_owned()
}

/// Gemini's `generateContent`, answering every call with as many output tokens as
/// `generationConfig.maxOutputTokens` allows (100,000 when the request sets no bound) and a
/// prompt count of one token per four characters, as an adversarial provider would bill.
async fn longest(State(calls): State<Arc<AtomicUsize>>, Json(body): Json<Value>) -> Json<Value> {
    calls.fetch_add(1, Ordering::SeqCst);
    let bound = body["generationConfig"]["maxOutputTokens"]
        .as_u64()
        .unwrap_or(100_000);
    let mut chars = 0;
    for content in body["contents"].as_array().into_iter().flatten() {
        for part in content["parts"].as_array().into_iter().flatten() {
            chars += part["text"].as_str().map_or(0, |t| t.chars().count());
        }
    }
    let prompt = (chars as u64).div_ceil(4);
    Json(json!({
        "candidates": [{
            "content": {"role": "model", "parts": [{"text": "The sea is wide."}]},
            "finishReason": "MAX_TOKENS",
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": bound,
            "totalTokenCount": prompt + bound
        },
        "modelVersion": "gemini-2.5-flash"
    }))
}

/// The upstream's URL and the count of calls it answered.
async fn upstream() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/v1beta/models/{*model}", post(longest))
        .with_state(calls.clone());
    (support::serve(router).await, calls)
}

/// A store on `url`; with `journal`, one that admits from leases (see `gw_store`'s ledger).
async fn store(url: &str, journal: Option<PathBuf>) -> Store {
    let plans = Plans::parse("caps plans", PLANS).unwrap();
    let mut options = StoreOptions::new().max_connections(8).plans(plans);
    if let Some(journal) = journal {
        options = options.journal(journal);
    }
    Store::connect_with(url, options).await.unwrap()
}

/// Sends 200 requests at once, alternating over `servers` and between no `max_tokens` and
/// `max_tokens = 500`; returns the statuses.
async fn storm(servers: &[String], key: &str) -> Vec<u16> {
    let client = reqwest::Client::new();
    let requests = (0..200).map(|i| {
        let client = client.clone();
        let url = format!("{}/v1/chat/completions", servers[i % servers.len()]);
        let mut body = json!({
            "model": "gemini/gemini-2.5-flash",
            "messages": [{"role": "user", "content": prompt()}]
        });
        if i % 2 == 1 {
            body["max_tokens"] = json!(500);
        }
        let key = key.to_owned();
        async move {
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            if status == 429 {
                assert!(text.contains("insufficient_quota"), "{text}");
            }
            status
        }
    });
    futures_util::stream::iter(requests)
        .buffer_unordered(200)
        .collect()
        .await
}

/// Runs the storm against `plan` on `url` with `replicas` servers, and checks the cap held.
/// With `leases`, each replica has a journal in it and admits from leases; without, each
/// admission is a database transaction.
async fn capped(url: &str, replicas: usize, plan: &str, leases: Option<&Path>) {
    let (upstream, calls) = upstream().await;
    let stores: Vec<Store> = futures_util::future::join_all((0..replicas).map(|i| {
        store(
            url,
            leases.map(|dir| dir.join(format!("replica-{i}.settlements"))),
        )
    }))
    .await;
    let (who, key) = user(&stores[0], plan).await;
    let mut servers = Vec::new();
    for s in &stores {
        servers.push(start(&config_for(&upstream), Some(s.clone())).await);
    }
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();

    let statuses = storm(&urls, &key).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let what = format!(
        "{plan} on {url} with {replicas} replica(s), {}",
        if leases.is_some() {
            "leases"
        } else {
            "no journal"
        }
    );
    assert_eq!(ok + refused, 200, "{what}: {statuses:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        ok,
        "{what}: one call per answer"
    );
    for s in &stores {
        s.flush().await;
    }

    let store = &stores[0];
    let period = store.plans().require(plan).unwrap().current_period();
    let used = store.counters(&who.id, &period).await.unwrap();
    let totals = store
        .usage_totals(&LogFilter::user(who.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        totals.requests, ok as u64,
        "{what}: one usage row per answer"
    );
    assert_eq!(
        totals.over_reservation, 0,
        "{what}: no answer passed its bound"
    );
    // Nothing of this user's is still reserved: the counters hold exactly the answers. (The
    // database is shared with the other test of this file, so reservations are not counted.)
    assert_eq!(used.get(Counter::TextRequests), ok as u64, "{what}");
    match plan {
        "costcap" => {
            let cap: Cost = "0.05".parse().unwrap();
            assert!(
                used.cost() <= cap,
                "{what}: charged {} > {cap}",
                used.cost()
            );
            assert_eq!(totals.cost, used.cost(), "{what}");
            // Not vacuous: a full answer (1,000 tokens at $2.50/M plus its prompt) costs
            // about $0.0025, so the cap pays for about 20; lowered bounds serve a few more.
            assert!(ok >= 18, "{what}: only {ok} served");
        }
        _ => {
            let tokens = used.get(Counter::TextTokens);
            assert!(tokens <= 20_000, "{what}: {tokens} tokens > 20000");
            assert_eq!(totals.input_tokens + totals.output_tokens, tokens, "{what}");
            assert!(ok >= 18, "{what}: only {ok} served");
        }
    }
}

/// Every way of running `plan`'s storm: one instance with and without leases, and, on
/// PostgreSQL, two replicas with and without.
async fn every_setup(test: &str, plan: &str) {
    let journals = support::tempfile_dir::TempDir::new(test);
    for (url, _dir) in databases(test) {
        for leases in [None, Some(journals.path())] {
            capped(&url, 1, plan, leases).await;
            if url.starts_with("postgres") {
                capped(&url, 2, plan, leases).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cost_cap_is_never_passed_by_200_concurrent_requests() {
    every_setup("cost_cap", "costcap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_cap_is_never_passed_by_200_concurrent_requests() {
    every_setup("token_cap", "tokencap").await;
}
