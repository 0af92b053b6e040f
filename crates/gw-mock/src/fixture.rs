//! The contract-fixture format (documented in `tests/contract/FORMAT.md`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One fixture file.
#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    /// Shown in the runner's output.
    pub name: String,
    /// Where the upstream sample comes from.
    #[serde(default)]
    pub source: Option<String>,
    /// The calling user's plan (default `enterprise`).
    #[serde(default)]
    pub plan: Option<String>,
    /// Usage already recorded for the user in the current period, by counter name.
    #[serde(default)]
    pub prior_usage: BTreeMap<String, Value>,
    /// One exchange (with `expect`), unless `exchanges` is given.
    #[serde(default)]
    pub request: Option<ClientRequest>,
    /// What the client must get for `request`.
    #[serde(default)]
    pub expect: Option<ClientExpect>,
    /// Several exchanges run in order.
    #[serde(default)]
    pub exchanges: Vec<Exchange>,
    /// The provider calls the gateway must make, in order, across the whole fixture.
    #[serde(default)]
    pub upstream: Vec<UpstreamStep>,
    /// A token that stands, in the `upstream` answers, for the mock upstream's base URL
    /// (`"{{upstream}}"`): an answer can then link to a file the mock serves, as a provider links
    /// to its outputs, and the gateway under test may download from the mock's loopback address.
    #[serde(default)]
    pub upstream_url_placeholder: Option<String>,
    /// Settings added to a provider's section of the gateway's configuration for this fixture,
    /// by provider id (`{"gemini": {"inline_audio_max_bytes": 1000}}`): strings, numbers and
    /// booleans. For a path that depends on a setting (large audio through Gemini's Files API).
    #[serde(default)]
    pub provider_settings: BTreeMap<String, serde_json::Map<String, Value>>,
    /// The gateway's response cache for this fixture: the `[cache]` section of its configuration
    /// (`{"enabled": true, "semantic": {"embedding_model": "gemini/gemini-embedding-001"}}`),
    /// kept in memory. Without it, the gateway has no cache, as before.
    #[serde(default, deserialize_with = "cache_object")]
    pub cache: Option<serde_json::Map<String, Value>>,
}

/// `cache` as a JSON object (`null` as no cache), refused by name otherwise (`"cache": true` is
/// a mistake to point at, not a parse error somewhere in the file).
fn cache_object<'de, D>(deserializer: D) -> Result<Option<serde_json::Map<String, Value>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        other => Err(serde::de::Error::custom(format!(
            "cache: expected a JSON object of the gateway's [cache] settings, got {other}"
        ))),
    }
}

impl Fixture {
    /// The `upstream` steps with [`Fixture::upstream_url_placeholder`] replaced by `url` in
    /// every string of their answers.
    pub fn upstream_at(&self, url: &str) -> Vec<UpstreamStep> {
        let Some(token) = self
            .upstream_url_placeholder
            .as_deref()
            .filter(|t| !t.is_empty())
        else {
            return self.upstream.clone();
        };
        let mut steps = self.upstream.clone();
        for step in &mut steps {
            if let Some(json) = &mut step.respond.json {
                replace_in(json, token, url);
            }
            if let Some(text) = &mut step.respond.text {
                *text = text.replace(token, url);
            }
            for event in step.respond.sse.iter_mut().flatten() {
                *event = event.replace(token, url);
            }
        }
        steps
    }
}

/// Replaces `token` by `url` in every string of `value`.
fn replace_in(value: &mut Value, token: &str, url: &str) {
    match value {
        Value::String(s) if s.contains(token) => *s = s.replace(token, url),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_in(v, token, url)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_in(v, token, url)),
        _ => {}
    }
}

impl Fixture {
    /// The exchanges, whichever form the file used.
    pub fn all_exchanges(&self) -> Result<Vec<Exchange>, String> {
        match (&self.request, &self.expect, self.exchanges.is_empty()) {
            (Some(request), Some(expect), true) => Ok(vec![Exchange {
                request: request.clone(),
                expect: expect.clone(),
            }]),
            (None, None, false) => Ok(self.exchanges.clone()),
            _ => Err("a fixture needs either `request` and `expect`, or `exchanges`".into()),
        }
    }
}

/// A request and what must come back.
#[derive(Debug, Clone, Deserialize)]
pub struct Exchange {
    /// Client to gateway.
    pub request: ClientRequest,
    /// Gateway to client.
    pub expect: ClientExpect,
}

/// What the client sends to the gateway.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Extra headers; an `authorization` header here replaces the fixture user's.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// A multipart body: string fields, or files `{"filename", "content_type", "base64"}`.
    #[serde(default)]
    pub multipart: Option<BTreeMap<String, Value>>,
}

/// What the client must get back.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientExpect {
    /// Exact status.
    pub status: u16,
    /// Subset of headers (case-insensitive names).
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    /// Subset match on the JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// Concatenated `choices[0].delta.content` of a streamed answer.
    #[serde(default)]
    pub sse_text: Option<String>,
    /// Subset match on the `usage` of the last chunk that has one.
    #[serde(default)]
    pub sse_last_usage: Option<Value>,
    /// The stream must end with `data: [DONE]`.
    #[serde(default)]
    pub sse_done: Option<bool>,
    /// The stream must carry an error event whose `error` matches this.
    #[serde(default)]
    pub sse_error: Option<Value>,
    /// The tool calls assembled from a stream's `choices[0].delta.tool_calls` (by `index`: `id`,
    /// `type` and `function.name` from the first delta that has them, `function.arguments`
    /// concatenated) must subset-match this list.
    #[serde(default)]
    pub sse_tool_calls: Option<Value>,
    /// The last non-null `choices[0].finish_reason` of a stream must equal this.
    #[serde(default)]
    pub sse_finish_reason: Option<String>,
    /// The exact bytes of a binary body.
    #[serde(default)]
    pub body_base64: Option<String>,
    /// At least this many bytes of body.
    #[serde(default)]
    pub body_min_len: Option<usize>,
}

/// One provider call: what the gateway must send and what the mock answers.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpstreamStep {
    /// What the gateway must send (every part optional).
    #[serde(default)]
    pub expect: UpstreamExpect,
    /// What the mock answers.
    #[serde(default)]
    pub respond: Respond,
}

/// What the gateway must send upstream.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpstreamExpect {
    /// Exact method.
    #[serde(default)]
    pub method: Option<String>,
    /// Exact path.
    #[serde(default)]
    pub path: Option<String>,
    /// Subset of the query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, Value>,
    /// Subset of the headers (case-insensitive names).
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    /// Subset match on the JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// Subset of a multipart form's fields.
    #[serde(default)]
    pub multipart: Option<BTreeMap<String, Value>>,
}

/// What the mock answers.
///
/// The fields after `delay_ms` extend the format with fault injection (all optional). The mock
/// plays a step in this order: read the whole request and record it; wait `delay_ms`; with
/// `never`, hold the request open and stop there; with `reset` and no `stall_after`, reset the
/// connection and stop there; otherwise send the status and headers, then the body (`json`,
/// `text`, `base64`, `sse` or `body_bytes`), pausing `sse_interval_ms` between events and
/// `stall_ms` after the first `stall_after` units, and end it cleanly, or with `reset`, by
/// resetting the connection at `stall_after`.
#[derive(Debug, Clone, Deserialize)]
pub struct Respond {
    /// Status (default 200).
    #[serde(default = "ok")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// A raw text body.
    #[serde(default)]
    pub text: Option<String>,
    /// Raw bytes, base64-encoded.
    #[serde(default)]
    pub base64: Option<String>,
    /// Server-sent events: each string is sent as `data: <string>` and a blank line.
    #[serde(default)]
    pub sse: Option<Vec<String>>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Wait this long between two `sse` events (an extension of the format: optional).
    #[serde(default)]
    pub sse_interval_ms: Option<u64>,
    /// Fault injection (an extension of the format: optional, default `false`): after reading the
    /// request (and `delay_ms`), close the TCP connection abruptly, with `SO_LINGER` 0 so the peer
    /// sees a reset, without sending a single byte of response.
    ///
    /// With `stall_after`, the status, the headers and the first `stall_after` units of the body
    /// (see there) are sent first, then `stall_ms` of silence if given, and the connection is
    /// reset in place of the rest of the body: a connection that breaks mid-stream. Such a body
    /// is sent in chunks (no `content-length`), so the client sees it break off.
    #[serde(default)]
    pub reset: bool,
    /// Fault injection (an extension of the format: optional): after the first `stall_after`
    /// units of the body, send nothing for this long while keeping the connection open, then go
    /// on with the rest of the body (or reset, with `reset`). A stall mid-stream. A body other
    /// than `sse` is then streamed with its `content-length`, so a stall after its last byte
    /// goes unnoticed by a client, which has the whole body by then.
    #[serde(default)]
    pub stall_ms: Option<u64>,
    /// Where the body stalls (`stall_ms`) or breaks (`reset`) (an extension of the format:
    /// optional): a number of events for `sse`, of bytes for every other body form. Without it,
    /// `stall_ms` stalls after the whole body, and `reset` sends no response at all.
    #[serde(default)]
    pub stall_after: Option<usize>,
    /// Fault injection (an extension of the format: optional, default `false`): read the request
    /// and never answer, holding the connection open until the client gives up. Every other
    /// `respond` field is ignored. Nothing is left running once the client has gone.
    #[serde(default)]
    pub never: bool,
    /// Fault injection (an extension of the format: optional): make the body exactly this many
    /// bytes, sent with a `content-length` and generated in chunks as it is sent (the mock never
    /// holds it). The body given by `json`, `text` or `base64` is padded with ASCII spaces (so a
    /// JSON body stays the same JSON document) or cut to that length; without one, the body is a
    /// JSON string `"xxx…"`. Ignored with `sse`.
    #[serde(default)]
    pub body_bytes: Option<u64>,
}

fn ok() -> u16 {
    200
}

impl Default for Respond {
    fn default() -> Self {
        Self {
            status: 200,
            headers: BTreeMap::new(),
            json: None,
            text: None,
            base64: None,
            sse: None,
            delay_ms: None,
            sse_interval_ms: None,
            reset: false,
            stall_ms: None,
            stall_after: None,
            never: false,
            body_bytes: None,
        }
    }
}

impl Respond {
    /// A provider's recorded answer: the file `tests/fixtures/<name>` of the crate at
    /// `crate_dir` (pass `env!("CARGO_MANIFEST_DIR")`), in this format plus its `source`.
    /// For tests: panics, naming the file, when it cannot be read.
    pub fn recorded(crate_dir: &str, name: &str) -> Self {
        let path = format!("{crate_dir}/tests/fixtures/{name}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A 200 with a JSON body.
    pub fn json(json: Value) -> Self {
        Self {
            json: Some(json),
            ..Self::default()
        }
    }

    /// A 200 event stream.
    pub fn sse<S: Into<String>>(events: impl IntoIterator<Item = S>) -> Self {
        Self {
            sse: Some(events.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// A 200 with a raw text body (`text/plain`).
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// A 200 that says `application/json` but whose body is `body` as is: malformed JSON, e.g.
    /// `{"candidates": [` (a document cut short) or `<html>` (a proxy's error page).
    pub fn malformed_json(body: impl Into<String>) -> Self {
        Self::text(body).header("content-type", "application/json")
    }

    /// A 200 event stream of `events` that breaks off in the middle of the next one: `partial` is
    /// sent as the start of an event with no blank line after it, and the body ends there. (A
    /// stream that ends cleanly but early, without the provider's closing event, is just
    /// [`Respond::sse`] of the events before the cut.) Built as `text` with the content type
    /// `text/event-stream`, so a fixture file can say the same.
    pub fn sse_broken_off<S: Into<String>>(
        events: impl IntoIterator<Item = S>,
        partial: &str,
    ) -> Self {
        let mut body: String = events
            .into_iter()
            .map(|e| {
                let e: String = e.into();
                format!("data: {e}\n\n")
            })
            .collect();
        body.push_str("data: ");
        body.push_str(partial);
        Self::text(body).header("content-type", "text/event-stream")
    }

    /// A connection reset instead of an answer (see the field `reset`).
    pub fn reset() -> Self {
        Self {
            reset: true,
            ..Self::default()
        }
    }

    /// No answer at all until the client gives up (see the field `never`).
    pub fn never() -> Self {
        Self {
            never: true,
            ..Self::default()
        }
    }

    /// Stalls for `ms` after the first `after` units of the body (see the field `stall_ms`).
    pub fn stall(mut self, after: usize, ms: u64) -> Self {
        self.stall_after = Some(after);
        self.stall_ms = Some(ms);
        self
    }

    /// Makes the body exactly `len` bytes (see the field `body_bytes`).
    pub fn body_bytes(mut self, len: u64) -> Self {
        self.body_bytes = Some(len);
        self
    }

    /// Sets the status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }
}

/// Every fixture file (`*.json`) under `dirs` and their subfolders, parsed: for tests that hold
/// a reader to every recorded answer. Panics, naming the folder or file, on one it cannot read.
pub fn recorded_files(dirs: impl IntoIterator<Item = std::path::PathBuf>) -> Vec<Value> {
    let mut dirs: Vec<_> = dirs.into_iter().collect();
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                files.push(value);
            }
        }
    }
    files
}

/// Every JSON object in `fixture`, at any depth, that `keep` takes: the answers a fixture holds,
/// picked by their fields.
pub fn objects_where<'a>(
    fixture: &'a Value,
    keep: &impl Fn(&serde_json::Map<String, Value>) -> bool,
) -> Vec<&'a Value> {
    fn collect<'a>(
        value: &'a Value,
        keep: &impl Fn(&serde_json::Map<String, Value>) -> bool,
        out: &mut Vec<&'a Value>,
    ) {
        match value {
            Value::Object(map) => {
                if keep(map) {
                    out.push(value);
                }
                map.values().for_each(|v| collect(v, keep, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, keep, out)),
            _ => {}
        }
    }
    let mut objects = Vec::new();
    collect(fixture, keep, &mut objects);
    objects
}

/// The events of every `sse` list in `fixture`, wherever it is (an answer, an exchange's
/// upstream, a list of them).
pub fn sse_events(fixture: &Value) -> Vec<String> {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("sse", Value::Array(events)) => {
                            out.extend(events.iter().filter_map(Value::as_str).map(str::to_owned))
                        }
                        _ => collect(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut events = Vec::new();
    collect(fixture, &mut events);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<Fixture, serde_json::Error> {
        serde_json::from_str(&format!(
            r#"{{"name": "n", "request": {{"method": "GET", "path": "/v1/models"}},
                "expect": {{"status": 200}}{extra}}}"#
        ))
    }

    #[test]
    fn cache_is_optional() {
        assert_eq!(parse("").unwrap().cache, None);
        assert_eq!(parse(r#", "cache": null"#).unwrap().cache, None);
    }

    #[test]
    fn cache_is_kept_as_given() {
        let fixture =
            parse(r#", "cache": {"enabled": true, "semantic": {"embedding_model": "gemini/e"}}"#)
                .unwrap();
        let cache = fixture.cache.unwrap();
        assert_eq!(cache["enabled"], Value::Bool(true));
        assert_eq!(cache["semantic"]["embedding_model"], "gemini/e");
    }

    #[test]
    fn a_cache_that_is_not_an_object_is_refused_by_name() {
        for bad in ["true", "[]", r#""on""#, "1"] {
            let e = parse(&format!(r#", "cache": {bad}"#))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("cache: expected a JSON object"), "{bad}: {e}");
        }
    }
}
