//! The contract-fixture runner (format: `tests/contract/FORMAT.md`).
//!
//! Each fixture gets a fresh mock upstream playing its `upstream` steps and a fresh gateway (the
//! real server, router, retries, pricing and provider crates) whose every provider points at the
//! mock. The runner sends the fixture's requests over HTTP and compares what comes back, then
//! asks the mock what it received.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use gw_mock::MockUpstream;
use gw_mock::fixture::{ClientExpect, ClientRequest, Fixture};
use gw_mock::matcher::{differences, scalar_matches};
use gw_server::{AppState, Config, app};
use gw_store::{Counters, Store};
use llm_gateway::CacheConfig;
use llm_gateway::sse::SseDecoder;
use serde_json::{Value, json};

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
}

/// Runs every fixture under `dirs` whose path contains `filter`, printing one line per fixture
/// and the closing `N passed, N failed`.
pub(crate) async fn run(dirs: &[PathBuf], filter: Option<&str>, out: &mut impl Write) -> Summary {
    let mut files = Vec::new();
    for dir in dirs {
        collect(dir, &mut files);
    }
    files.sort();
    files.retain(|f| filter.is_none_or(|text| f.to_string_lossy().contains(text)));
    let mut summary = Summary::default();
    for file in &files {
        let (name, result) = run_file(file).await;
        match result {
            Ok(()) => {
                summary.passed += 1;
                let _ = writeln!(out, "ok   {name} ({})", file.display());
            }
            Err(diffs) => {
                summary.failed += 1;
                let _ = writeln!(out, "FAIL {name} ({})", file.display());
                for d in diffs {
                    let _ = writeln!(out, "       {d}");
                }
            }
        }
    }
    if files.is_empty() {
        let _ = writeln!(out, "no fixtures found under {dirs:?}");
    }
    let _ = writeln!(out, "{} passed, {} failed", summary.passed, summary.failed);
    summary
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_file() {
        files.push(path.to_owned());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect(&p, files);
        } else if p.extension().is_some_and(|e| e == "json") {
            files.push(p);
        }
    }
}

async fn run_file(file: &Path) -> (String, Result<(), Vec<String>>) {
    let fallback_name = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            return (
                fallback_name,
                Err(vec![format!("cannot read the file: {e}")]),
            );
        }
    };
    let fixture: Fixture = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            return (
                fallback_name,
                Err(vec![format!("not a valid fixture: {e}")]),
            );
        }
    };
    let name = fixture.name.clone();
    (name, run_fixture(fixture).await)
}

/// Runs one fixture; `Err` holds every difference found.
pub(crate) async fn run_fixture(fixture: Fixture) -> Result<(), Vec<String>> {
    let exchanges = fixture.all_exchanges().map_err(|e| vec![e])?;
    let mock = MockUpstream::start_with(|url| fixture.upstream_at(url))
        .await
        .map_err(|e| vec![format!("cannot start the mock upstream: {e}")])?;
    let plan = fixture.plan.as_deref().unwrap_or("enterprise");
    // A fixture whose answers link back to the mock lets the gateway download from it (it is
    // on loopback, which the gateway refuses by default); every other fixture keeps the guard.
    let downloads_from_mock = fixture.upstream_url_placeholder.is_some();
    let gateway = start_gateway(
        mock.url(),
        plan,
        &fixture.prior_usage,
        downloads_from_mock,
        &fixture.provider_settings,
        fixture.cache.as_ref(),
    )
    .await
    .map_err(|e| vec![e])?;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| vec![format!("cannot build the HTTP client: {e}")])?;
    let mut diffs = Vec::new();
    let mut responses: Vec<Value> = Vec::new();
    for (i, exchange) in exchanges.iter().enumerate() {
        let prefix = if exchanges.len() > 1 {
            format!("exchange {i}: ")
        } else {
            String::new()
        };
        match send(&client, &gateway, &exchange.request, &responses).await {
            Ok(got) => {
                diffs.extend(
                    compare(&exchange.expect, &got)
                        .into_iter()
                        .map(|d| format!("{prefix}response mismatch: {d}")),
                );
                responses
                    .push(serde_json::json!({ "json": got.json.clone().unwrap_or(Value::Null) }));
            }
            Err(e) => {
                diffs.push(format!("{prefix}{e}"));
                responses.push(Value::Null);
            }
        }
    }
    diffs.extend(mock.verify());
    if diffs.is_empty() { Ok(()) } else { Err(diffs) }
}

struct RunningGateway {
    url: String,
    /// The fixture user's gateway key.
    key: String,
    task: tokio::task::JoinHandle<()>,
    /// The fixture's media directory.
    media: std::path::PathBuf,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.media);
    }
}

/// Numbers the fixtures' media directories.
static MEDIA_DIRS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A gateway over a fresh in-memory store holding one user on `plan` with `prior_usage`
/// already counted in the current period, and every provider pointed at `upstream`.
async fn start_gateway(
    upstream: &str,
    plan: &str,
    prior_usage: &BTreeMap<String, Value>,
    downloads_from_mock: bool,
    provider_settings: &BTreeMap<String, serde_json::Map<String, Value>>,
    cache: Option<&serde_json::Map<String, Value>>,
) -> Result<RunningGateway, String> {
    if let Some(unknown) = provider_settings
        .keys()
        .find(|p| !llm_gateway::COMPILED_PROVIDERS.contains(&p.as_str()))
    {
        return Err(format!("provider_settings.{unknown}: no such provider"));
    }
    // No background polling of video jobs: a job advances only when a fixture asks for it, so
    // the upstream steps happen in a fixed order (FORMAT.md, "Asynchronous jobs").
    let mut config = String::from(
        "[retry]\nmax_retries = 2\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\nmax_retry_after_ms = 60000\n\
         [jobs]\npoll_interval_ms = 0\n",
    );
    // Uploaded files and copied LoRAs go to a directory of this fixture's own, removed after it.
    let media = std::env::temp_dir().join(format!(
        "gw-contract-media-{}-{}",
        std::process::id(),
        MEDIA_DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    config.push_str(&format!(
        "[media]\ndir = {}\n",
        Value::String(media.display().to_string())
    ));
    for provider in llm_gateway::COMPILED_PROVIDERS {
        config.push_str(&format!(
            "\n[providers.{provider}]\nbase_url = \"{upstream}\"\napi_key = \"contract-provider-key\"\n"
        ));
        // A job the client awaits in one call is polled without waiting, so the upstream steps
        // of a fixture happen in a fixed order at once (FORMAT.md, "Asynchronous jobs").
        if *provider == "wavespeed" {
            config.push_str("poll_interval_ms = 0\n");
        }
        for (name, value) in provider_settings.get(*provider).into_iter().flatten() {
            let value = match value {
                // A JSON string is a valid TOML basic string.
                Value::String(_) | Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => {
                    return Err(format!(
                        "provider_settings.{provider}.{name}: only strings, numbers and booleans"
                    ));
                }
            };
            config.push_str(&format!("{name} = {value}\n"));
        }
        // The providers whose answers link to files the gateway fetches.
        if downloads_from_mock && ["gemini", "hf", "wavespeed"].contains(provider) {
            config.push_str(&format!(
                "[providers.{provider}.downloads]\nallow_private = true\n"
            ));
        }
    }
    if let Some(cache) = cache {
        config.push_str(&cache_section(cache)?);
    }
    let config = Config::from_toml(&config, "contract runner config", std::iter::empty())
        .map_err(|e| e.to_string())?;

    let store = Store::connect("sqlite::memory:")
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?;
    let user = store
        .create_user("contract", plan)
        .await
        .map_err(|e| format!("plan: {e}"))?;
    let (_, key) = store
        .create_key(&user.id, "contract")
        .await
        .map_err(|e| format!("cannot create the user's key: {e}"))?;
    if !prior_usage.is_empty() {
        let values: Vec<(String, String)> = prior_usage
            .iter()
            .map(|(name, v)| match v {
                Value::String(s) => (name.clone(), s.clone()),
                other => (name.clone(), other.to_string()),
            })
            .collect();
        let counters = Counters::parse_named(values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| format!("prior_usage: {e}"))?;
        let period = store
            .plans()
            .require(plan)
            .map_err(|e| format!("plan: {e}"))?
            .current_period();
        store
            .add_counters(&user.id, &period, &counters)
            .await
            .map_err(|e| format!("prior_usage: {e}"))?;
    }

    let state = AppState::from_config_with_store(&config, Some(store))
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the gateway: {e}"))?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app(state)).await;
    });
    Ok(RunningGateway {
        url,
        key: key.expose().to_owned(),
        task,
        media,
    })
}

/// The fixture's `cache` as the gateway's `[cache]` section, over the in-memory store. Each
/// setting is first read as the library's [`CacheConfig`] reads it and checked as it checks
/// them, so a mistake fails the fixture naming its field (`cache.semantic.threshold: ...`).
fn cache_section(cache: &serde_json::Map<String, Value>) -> Result<String, String> {
    if cache.contains_key("store") {
        return Err(
            "cache.store: the runner keeps a fixture's cache in memory; leave it out".into(),
        );
    }
    let whole = Value::Object(cache.clone());
    if let Some((path, why)) = first_unreadable(&mut Vec::new(), &whole) {
        return Err(format!("cache{path}: {why}"));
    }
    let config: CacheConfig = serde_json::from_value(whole).map_err(|e| format!("cache: {e}"))?;
    // `validate` names the field itself (`cache.ttl_secs: must be at least 1`).
    config.validate().map_err(|e| e.to_string())?;
    let mut section = String::from("\n[cache]\n");
    for (name, value) in cache {
        let path = format!("cache.{name}");
        section.push_str(&format!(
            "{} = {}\n",
            Value::String(name.clone()),
            toml_value(&path, value)?
        ));
    }
    // Stated, not left to the default: a fixture's entries live and die with its gateway.
    section.push_str("\n[cache.store]\nbackend = \"memory\"\n");
    Ok(section)
}

/// The deepest setting of `value` (at `path` under `cache`) that [`CacheConfig`] cannot read
/// on its own, as `(".a.b", why)`: a wrong type or an unknown name, by its place.
fn first_unreadable(path: &mut Vec<String>, value: &Value) -> Option<(String, String)> {
    let mut probe = value.clone();
    for name in path.iter().rev() {
        probe = json!({ name.as_str(): probe });
    }
    let why = serde_json::from_value::<CacheConfig>(probe)
        .err()?
        .to_string();
    if let Value::Object(fields) = value {
        for (name, inner) in fields {
            path.push(name.clone());
            let found = first_unreadable(path, inner);
            path.pop();
            if found.is_some() {
                return found;
            }
        }
    }
    let at: String = path.iter().map(|p| format!(".{p}")).collect();
    Some((at, why))
}

/// `value` as a TOML value (strings, numbers, booleans, arrays and inline tables); `path` names
/// it when it has no TOML form (`null`).
fn toml_value(path: &str, value: &Value) -> Result<String, String> {
    Ok(match value {
        // A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
        Value::String(_) => value.to_string().replace('\u{7f}', "\\u007F"),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        Value::Null => {
            return Err(format!(
                "{path}: null has no TOML form; leave the setting out"
            ));
        }
        Value::Array(items) => {
            let items = items
                .iter()
                .enumerate()
                .map(|(i, v)| toml_value(&format!("{path}[{i}]"), v))
                .collect::<Result<Vec<_>, _>>()?;
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields = fields
                .iter()
                .map(|(name, v)| {
                    let v = toml_value(&format!("{path}.{name}"), v)?;
                    Ok(format!("{} = {v}", Value::String(name.clone())))
                })
                .collect::<Result<Vec<_>, String>>()?;
            format!("{{ {} }}", fields.join(", "))
        }
    })
}

/// What the gateway answered.
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    json: Option<Value>,
}

async fn send(
    client: &reqwest::Client,
    gateway: &RunningGateway,
    req: &ClientRequest,
    earlier: &[Value],
) -> Result<Got, String> {
    let base = &gateway.url;
    let path = substitute_str(&req.path, earlier)?;
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| format!("request.method `{}` is not an HTTP method", req.method))?;
    let mut builder = client.request(method, format!("{base}{path}"));
    let mut has_auth = false;
    for (name, value) in &req.headers {
        has_auth |= name.eq_ignore_ascii_case("authorization");
        builder = builder.header(name, value);
    }
    if !has_auth {
        builder = builder.bearer_auth(&gateway.key);
    }
    if let Some(json) = &req.json {
        builder = builder.json(&substitute(json, earlier)?);
    } else if let Some(fields) = &req.multipart {
        builder = builder.multipart(multipart(fields)?);
    }
    let response = builder
        .send()
        .await
        .map_err(|e| format!("request to the gateway failed: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the gateway's answer failed: {e}"))?
        .to_vec();
    let json = serde_json::from_slice(&body).ok();
    Ok(Got {
        status,
        headers,
        body,
        json,
    })
}

fn multipart(
    fields: &std::collections::BTreeMap<String, Value>,
) -> Result<reqwest::multipart::Form, String> {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = match value {
            Value::String(s) => form.text(name.clone(), s.clone()),
            Value::Object(file) => {
                let b64 = file
                    .get("base64")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("request.multipart.{name}.base64: {e}"))?;
                let mut part = reqwest::multipart::Part::bytes(bytes);
                if let Some(f) = file.get("filename").and_then(Value::as_str) {
                    part = part.file_name(f.to_owned());
                }
                if let Some(ct) = file.get("content_type").and_then(Value::as_str) {
                    part = part
                        .mime_str(ct)
                        .map_err(|e| format!("request.multipart.{name}.content_type: {e}"))?;
                }
                form.part(name.clone(), part)
            }
            other => form.text(name.clone(), other.to_string()),
        };
    }
    Ok(form)
}

fn compare(expect: &ClientExpect, got: &Got) -> Vec<String> {
    let mut out = Vec::new();
    if expect.status != got.status {
        let body = String::from_utf8_lossy(&got.body);
        let body: String = body.chars().take(400).collect();
        out.push(format!(
            "status: expected {}, got {} (body: {body})",
            expect.status, got.status
        ));
    }
    for (name, want) in &expect.headers {
        match got
            .headers
            .get(name.as_str())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        {
            Some(v) if scalar_matches(want, &v) => {}
            Some(v) => out.push(format!("header {name}: expected {want}, got {v:?}")),
            None => out.push(format!("header {name}: missing")),
        }
    }
    if let Some(want) = &expect.json {
        match &got.json {
            Some(actual) => out.extend(
                differences(want, actual)
                    .into_iter()
                    .map(|d| format!("body {d}")),
            ),
            None => out.push(format!(
                "body: expected JSON, got {:?}",
                String::from_utf8_lossy(&got.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
        }
    }
    let wants_sse = expect.sse_text.is_some()
        || expect.sse_last_usage.is_some()
        || expect.sse_done.is_some()
        || expect.sse_error.is_some()
        || expect.sse_tool_calls.is_some()
        || expect.sse_finish_reason.is_some();
    if wants_sse {
        out.extend(compare_sse(expect, &got.body));
    }
    if let Some(b64) = &expect.body_base64 {
        match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(want) if want == got.body => {}
            Ok(want) => out.push(format!(
                "body: expected {} exact bytes, got {} different bytes",
                want.len(),
                got.body.len()
            )),
            Err(e) => out.push(format!("expect.body_base64 is not base64: {e}")),
        }
    }
    if let Some(min) = expect.body_min_len
        && got.body.len() < min
    {
        out.push(format!(
            "body: expected at least {min} bytes, got {}",
            got.body.len()
        ));
    }
    out
}

fn compare_sse(expect: &ClientExpect, body: &[u8]) -> Vec<String> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    if let Err(e) = decoder.push(body).and_then(|()| decoder.push(b"\n\n")) {
        out.push(format!("the event stream cannot be read: {e}"));
    }
    let mut events = Vec::new();
    while let Some(e) = decoder.next_event() {
        events.push(e.data);
    }
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    if let Some(want) = &expect.sse_text {
        let text: String = chunks
            .iter()
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
            })
            .collect();
        if *want != text {
            out.push(format!("sse_text: expected {want:?}, got {text:?}"));
        }
    }
    if let Some(want) = &expect.sse_last_usage {
        match chunks
            .iter()
            .rev()
            .find_map(|c| c.get("usage").filter(|u| !u.is_null()))
        {
            Some(usage) => out.extend(
                differences(want, usage)
                    .into_iter()
                    .map(|d| format!("sse_last_usage {d}")),
            ),
            None => out.push("sse_last_usage: no chunk carried usage".into()),
        }
    }
    if let Some(want) = expect.sse_done {
        let done = events.last().is_some_and(|d| d == "[DONE]");
        if want != done {
            out.push(format!(
                "sse_done: expected {want}, got {done} (last event: {:?})",
                events.last()
            ));
        }
    }
    if let Some(want) = &expect.sse_finish_reason {
        let got = chunks.iter().rev().find_map(|c| {
            c.pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
        });
        if got != Some(want.as_str()) {
            out.push(format!("sse_finish_reason: expected {want:?}, got {got:?}"));
        }
    }
    if let Some(want) = &expect.sse_tool_calls {
        let calls = Value::Array(assemble_tool_calls(&chunks));
        out.extend(
            differences(want, &calls)
                .into_iter()
                .map(|d| format!("sse_tool_calls {d}")),
        );
    }
    if let Some(want) = &expect.sse_error {
        match chunks.iter().find_map(|c| c.get("error")) {
            Some(error) => out.extend(
                differences(want, error)
                    .into_iter()
                    .map(|d| format!("sse_error {d}")),
            ),
            None => out.push("sse_error: the stream carried no error event".into()),
        }
    }
    out
}

/// The tool calls of a stream, assembled from `choices[0].delta.tool_calls` by `index` (in the
/// order of their first delta): `id`, `type` and `function.name` from the first delta that has
/// them, `function.arguments` as the concatenation of every fragment.
fn assemble_tool_calls(chunks: &[Value]) -> Vec<Value> {
    let mut calls: Vec<(u64, Value)> = Vec::new();
    let deltas = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls")?.as_array())
        .flatten();
    for delta in deltas {
        let index = delta.get("index").and_then(Value::as_u64).unwrap_or(0);
        let at = match calls.iter().position(|(i, _)| *i == index) {
            Some(at) => at,
            None => {
                calls.push((
                    index,
                    json!({"id": null, "type": null, "function": {"name": null, "arguments": ""}}),
                ));
                calls.len() - 1
            }
        };
        let call = &mut calls[at].1;
        for field in ["id", "type"] {
            if call[field].is_null()
                && let Some(v) = delta.get(field).filter(|v| !v.is_null())
            {
                call[field] = v.clone();
            }
        }
        if call["function"]["name"].is_null()
            && let Some(name) = delta.pointer("/function/name").filter(|v| !v.is_null())
        {
            call["function"]["name"] = name.clone();
        }
        if let Some(fragment) = delta.pointer("/function/arguments").and_then(Value::as_str) {
            let mut arguments = call["function"]["arguments"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            arguments.push_str(fragment);
            call["function"]["arguments"] = Value::String(arguments);
        }
    }
    calls.into_iter().map(|(_, call)| call).collect()
}

/// Replaces `{{N.json.a.b}}` in the string values of `value` by what exchange N answered.
fn substitute(value: &Value, earlier: &[Value]) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 {
                lookup(&t[2..t.len() - 2], earlier)?
            } else {
                Value::String(substitute_str(s, earlier)?)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, earlier))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, earlier)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn substitute_str(s: &str, earlier: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let value = lookup(&rest[start + 2..start + len], earlier)?;
        match value {
            Value::String(v) => out.push_str(&v),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(path: &str, earlier: &[Value]) -> Result<Value, String> {
    let mut parts = path.trim().split('.');
    let index: usize = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("`{{{{{path}}}}}` must start with an exchange number"))?;
    let mut here = earlier
        .get(index)
        .ok_or_else(|| format!("`{{{{{path}}}}}` names exchange {index}, which has not run"))?;
    for part in parts {
        here = match (here, part.parse::<usize>()) {
            (Value::Array(items), Ok(i)) => items.get(i),
            (Value::Object(map), _) => map.get(part),
            _ => None,
        }
        .ok_or_else(|| format!("`{{{{{path}}}}}`: exchange {index}'s answer has no `{part}`"))?;
    }
    Ok(here.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_earlier_answers() {
        let earlier = vec![json!({"json": {"id": "job-1", "n": [5]}})];
        assert_eq!(
            substitute_str("/v1/videos/{{0.json.id}}/content", &earlier).unwrap(),
            "/v1/videos/job-1/content"
        );
        assert_eq!(
            substitute(&json!({"x": "{{0.json.n.0}}"}), &earlier).unwrap(),
            json!({"x": 5})
        );
        assert!(substitute_str("{{1.json.id}}", &earlier).is_err());
    }

    #[test]
    fn tool_calls_are_assembled_from_deltas() {
        let chunk =
            |calls: Value| json!({"choices": [{"index": 0, "delta": {"tool_calls": calls}}]});
        let chunks = [
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            chunk(json!([{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}])),
            chunk(json!([{"index": 0, "function": {"arguments": "{\"city\":"}}])),
            chunk(json!([{"index": 1, "id": "call_b", "type": "function",
                "function": {"name": "get_time", "arguments": "{}"}}])),
            chunk(json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}])),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ];
        let calls = Value::Array(assemble_tool_calls(&chunks));
        assert_eq!(
            calls,
            json!([
                {"id": "call_a", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function",
                 "function": {"name": "get_time", "arguments": "{}"}}
            ])
        );
        let want =
            json!([{"type": "function", "function": {"name": "get_weather"}}, {"id": "<any>"}]);
        assert!(differences(&want, &calls).is_empty());
        assert!(!differences(&json!([{"function": {"name": "x"}}]), &calls).is_empty());
    }

    fn cache(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_fixture_cache_is_the_gateway_cache_section_in_memory() {
        let section = cache_section(&cache(json!({
            "enabled": true,
            "ttl_secs": 60,
            "semantic": {"embedding_model": "gemini/gemini-embedding-001", "threshold": 0.9},
            "models": {"hf/*": {"enabled": false}},
            "groups": {"team": ["u1", "u2"]}
        })))
        .unwrap();
        let config = Config::from_toml(&section, "test", std::iter::empty()).unwrap();
        let cache = config.cache.expect("a [cache] section");
        assert!(matches!(
            cache.store,
            gw_server::config::CacheStore::Memory(_)
        ));
        let c = cache.config;
        assert!(c.enabled);
        assert_eq!(c.ttl_secs, 60);
        assert_eq!(
            c.semantic.embedding_model.as_deref(),
            Some("gemini/gemini-embedding-001")
        );
        assert!((c.semantic.threshold - 0.9).abs() < 1e-6);
        assert_eq!(c.models["hf/*"].enabled, Some(false));
        assert_eq!(c.groups["team"], ["u1", "u2"]);
    }

    #[test]
    fn a_bad_cache_setting_fails_naming_it() {
        for (bad, named) in [
            (json!({"enabled": "yes"}), "cache.enabled: "),
            (json!({"ttl": 60}), "cache.ttl: "),
            (
                json!({"semantic": {"threshold": "high"}}),
                "cache.semantic.threshold: ",
            ),
            (
                json!({"semantic": {"treshold": 0.9}}),
                "cache.semantic.treshold: ",
            ),
            (
                json!({"models": {"gemini/*": {"ttl_secs": -1}}}),
                "cache.models.gemini/*.ttl_secs: ",
            ),
            (
                json!({"semantic": {"embedding_model": null}}),
                "cache.semantic.embedding_model: ",
            ),
            (
                json!({"semantic": {"threshold": 2.0}}),
                "cache.semantic.threshold: ",
            ),
            (json!({"ttl_secs": 0}), "cache.ttl_secs: "),
            (json!({"store": {"backend": "redis"}}), "cache.store: "),
        ] {
            let e = cache_section(&cache(bad.clone())).unwrap_err();
            assert!(e.starts_with(named), "{bad}: {e}");
        }
    }

    /// Every fixture in the repository passes (the same run as `cargo xtask contract`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repository_fixtures_pass() {
        let mut out = Vec::new();
        let summary = run(
            &[crate::workspace_root().join("tests/contract")],
            None,
            &mut out,
        )
        .await;
        let report = String::from_utf8_lossy(&out);
        assert!(summary.passed > 0, "no fixtures ran:\n{report}");
        assert_eq!(summary.failed, 0, "{report}");
    }

    #[tokio::test]
    async fn a_broken_fixture_file_is_a_failure_not_a_crash() {
        let dir = std::env::temp_dir().join(format!("gw-contract-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("broken.json"), "{ not json").unwrap();
        let mut out = Vec::new();
        let summary = run(std::slice::from_ref(&dir), None, &mut out).await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            summary,
            Summary {
                passed: 0,
                failed: 1
            }
        );
        let report = String::from_utf8_lossy(&out);
        assert!(report.contains("not a valid fixture"), "{report}");
        assert!(report.ends_with("0 passed, 1 failed\n"), "{report}");
    }
}
