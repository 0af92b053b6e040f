//! The contract-fixture format (see `shared/contract-fixtures.md`).

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
        }
    }
}

impl Respond {
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
