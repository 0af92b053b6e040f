//! The mock upstream server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::fixture::{Respond, UpstreamStep};
use crate::matcher::{differences, scalar_matches};

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
}

impl Received {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Default)]
struct Shared {
    steps: Vec<UpstreamStep>,
    received: Vec<Received>,
}

/// A local HTTP server that answers the `i`-th request with the `i`-th step's `respond`.
///
/// A request beyond the last step gets a 500 and is reported by [`MockUpstream::verify`] as an
/// unexpected extra call. The server stops when the value is dropped.
pub struct MockUpstream {
    url: String,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl MockUpstream {
    /// Starts a mock on a free loopback port.
    pub async fn start(steps: Vec<UpstreamStep>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Mutex::new(Shared {
            steps,
            received: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            // Serving ends only when the task is aborted on drop; an accept error ends the mock.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, shared, task })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Every difference between the steps and what was received: request mismatches, missing
    /// calls and unexpected extra calls. Empty when everything matched.
    pub fn verify(&self) -> Vec<String> {
        let shared = self.lock();
        let mut out = Vec::new();
        for (i, step) in shared.steps.iter().enumerate() {
            match shared.received.get(i) {
                Some(got) => {
                    for d in step_differences(step, got) {
                        out.push(format!("upstream request {i} mismatch: {d}"));
                    }
                }
                None => out.push(format!(
                    "missing upstream call {i}: expected {} {}",
                    step.expect.method.as_deref().unwrap_or("a request"),
                    step.expect.path.as_deref().unwrap_or("")
                )),
            }
        }
        for (i, got) in shared.received.iter().enumerate().skip(shared.steps.len()) {
            out.push(format!(
                "unexpected extra upstream call {i}: {} {}",
                got.method, got.path
            ));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(shared): State<Arc<Mutex<Shared>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let step = {
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let index = shared.received.len();
        shared.received.push(received);
        shared.steps.get(index).map(|s| s.respond.clone())
    };
    match step {
        Some(respond) => {
            if let Some(ms) = respond.delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            build_response(&respond)
        }
        None => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            Body::from(r#"{"error":"mock upstream: unexpected extra upstream call"}"#),
        ),
    }
}

fn build_response(respond: &Respond) -> Response {
    let (content_type, body) = if let Some(json) = &respond.json {
        ("application/json", Body::from(json.to_string()))
    } else if let Some(events) = &respond.sse {
        let frames: Vec<Bytes> = events
            .iter()
            .map(|e| Bytes::from(format!("data: {e}\n\n")))
            .collect();
        let interval = respond.sse_interval_ms.map(Duration::from_millis);
        let paced = futures_util::stream::iter(frames.into_iter().enumerate()).then(
            move |(i, frame)| async move {
                if let (Some(wait), true) = (interval, i > 0) {
                    tokio::time::sleep(wait).await;
                }
                Ok::<_, std::io::Error>(frame)
            },
        );
        ("text/event-stream", Body::from_stream(paced))
    } else if let Some(b64) = &respond.base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_else(|e| {
                format!("mock upstream: respond.base64 is not base64: {e}").into_bytes()
            });
        ("application/octet-stream", Body::from(bytes))
    } else if let Some(text) = &respond.text {
        ("text/plain; charset=utf-8", Body::from(text.clone()))
    } else {
        ("application/json", Body::empty())
    };
    let status = StatusCode::from_u16(respond.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = plain(status, content_type, body);
    for (name, value) in &respond.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}

fn plain(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

fn step_differences(step: &UpstreamStep, got: &Received) -> Vec<String> {
    let expect = &step.expect;
    let mut out = Vec::new();
    if let Some(method) = &expect.method
        && !method.eq_ignore_ascii_case(&got.method)
    {
        out.push(format!("method: expected {method}, got {}", got.method));
    }
    if let Some(path) = &expect.path
        && *path != got.path
    {
        out.push(format!("path: expected {path}, got {}", got.path));
    }
    for (name, want) in &expect.query {
        match got.query.iter().find(|(n, _)| n == name) {
            Some((_, v)) if scalar_matches(want, v) => {}
            Some((_, v)) => out.push(format!("query {name}: expected {want}, got {v:?}")),
            None => out.push(format!("query {name}: missing (expected {want})")),
        }
    }
    for (name, want) in &expect.headers {
        match got.header(name) {
            Some(v) if scalar_matches(want, v) => {}
            Some(v) => out.push(format!("header {name}: expected {want}, got {v:?}")),
            None => out.push(format!("header {name}: missing (expected {want})")),
        }
    }
    if let Some(want) = &expect.json {
        match got.json() {
            Some(actual) => out.extend(
                differences(want, &actual)
                    .into_iter()
                    .map(|d| format!("body {d}")),
            ),
            None => out.push("body: expected JSON, got a body that is not JSON".into()),
        }
    }
    if let Some(want) = &expect.multipart {
        match parse_multipart(got) {
            Some(fields) => out.extend(multipart_differences(want, &fields)),
            None => out.push("body: expected a multipart form, got something else".into()),
        }
    }
    out
}

/// A multipart part: text value or file bytes with their content type.
struct Part {
    content_type: Option<String>,
    filename: Option<String>,
    data: Bytes,
}

fn parse_multipart(got: &Received) -> Option<BTreeMap<String, Part>> {
    let content_type = got.header("content-type")?;
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let body = &got.body[..];
    let mut fields = BTreeMap::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_after_crlf = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let header_end = find(rest_after_crlf, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest_after_crlf[..header_end]).into_owned();
        let content = &rest_after_crlf[header_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        let data = Bytes::copy_from_slice(&content[..end]);
        rest = &content[end + 2..];
        let mut name = None;
        let mut filename = None;
        let mut part_type = None;
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                name = attribute(line, "name");
                filename = attribute(line, "filename");
            } else if lower.starts_with("content-type:") {
                part_type = Some(line["content-type:".len()..].trim().to_owned());
            }
        }
        fields.insert(
            name?,
            Part {
                content_type: part_type,
                filename,
                data,
            },
        );
    }
    Some(fields)
}

fn attribute(line: &str, key: &str) -> Option<String> {
    line.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.eq_ignore_ascii_case(key)).then(|| v.trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn multipart_differences(
    want: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Part>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, expected) in want {
        let Some(part) = got.get(name) else {
            out.push(format!("multipart {name}: missing"));
            continue;
        };
        match expected {
            Value::String(s) if s == "<any>" => {}
            Value::String(s) if part.filename.is_none() => {
                let actual = String::from_utf8_lossy(&part.data);
                if *s != actual {
                    out.push(format!("multipart {name}: expected {s:?}, got {actual:?}"));
                }
            }
            Value::Object(file) => {
                if let Some(ct) = file.get("content_type").and_then(Value::as_str)
                    && part.content_type.as_deref() != Some(ct)
                {
                    out.push(format!(
                        "multipart {name}: expected content type {ct}, got {:?}",
                        part.content_type
                    ));
                }
                if let Some(b64) = file.get("base64").and_then(Value::as_str) {
                    let want = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap_or_default();
                    if want != part.data {
                        out.push(format!("multipart {name}: file bytes differ"));
                    }
                }
            }
            other => out.push(format!("multipart {name}: cannot compare with {other}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::UpstreamExpect;
    use serde_json::json;

    fn step(path: &str, respond: Respond) -> UpstreamStep {
        UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some(path.into()),
                ..UpstreamExpect::default()
            },
            respond,
        }
    }

    async fn post(url: &str, body: &str) -> (u16, String) {
        // A hand-rolled HTTP/1.1 request keeps this crate free of an HTTP client.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or("/".into());
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        (status, out)
    }

    #[tokio::test]
    async fn plays_steps_in_order_and_reports_differences() {
        let mock = MockUpstream::start(vec![
            step(
                "/a",
                Respond::json(json!({"ok": 1}))
                    .status(429)
                    .header("retry-after", "0"),
            ),
            step("/b", Respond::sse(["{\"x\":1}", "[DONE]"])),
        ])
        .await
        .unwrap();
        let (status, text) = post(&format!("{}/a", mock.url()), "{}").await;
        assert_eq!(status, 429);
        assert!(text.contains("retry-after: 0"), "{text}");
        let (status, text) = post(&format!("{}/wrong", mock.url()), "{}").await;
        assert_eq!(status, 200);
        assert!(text.contains("data: [DONE]"), "{text}");
        let (status, _) = post(&format!("{}/c", mock.url()), "{}").await;
        assert_eq!(status, 500);
        let report = mock.verify();
        assert_eq!(report.len(), 2, "{report:?}");
        assert!(
            report[0].contains("path: expected /b, got /wrong"),
            "{report:?}"
        );
        assert!(
            report[1].contains("unexpected extra upstream call 2"),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn reports_missing_calls() {
        let mock = MockUpstream::start(vec![step("/a", Respond::default())])
            .await
            .unwrap();
        assert_eq!(
            mock.verify(),
            vec!["missing upstream call 0: expected POST /a".to_owned()]
        );
    }
}
