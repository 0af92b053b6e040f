//! The mock upstream's fault injection (`reset`, `stall_ms`/`stall_after`, `never`,
//! `body_bytes`) and its observability (open connections, active responses, when a body was
//! dropped), through real sockets.
//!
//! Timing: only lower bounds that a sleep guarantees, and upper bounds of a second or more for
//! things that take milliseconds.

use std::io;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gw_mock::fixture::{Fixture, Respond, UpstreamStep};
use gw_mock::{MockUpstream, ResponseEnd};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: things that take milliseconds must happen within this.
const PROMPTLY: Duration = Duration::from_secs(1);

fn steps(responds: impl IntoIterator<Item = Respond>) -> Vec<UpstreamStep> {
    responds
        .into_iter()
        .map(|respond| UpstreamStep {
            respond,
            ..UpstreamStep::default()
        })
        .collect()
}

async fn mock(responds: impl IntoIterator<Item = Respond>) -> MockUpstream {
    MockUpstream::start(steps(responds)).await.unwrap()
}

/// A raw connection that has sent one `POST /x` with a small JSON body.
async fn raw_post(mock: &MockUpstream) -> TcpStream {
    let addr = mock.url().trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = r#"{"q":1}"#;
    let req = format!(
        "POST /x HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

/// Everything the peer sends until it closes (`None`) or the read fails (`Some(error)`).
async fn read_to_end(s: &mut TcpStream) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) => return (out, None),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (out, Some(e)),
            Err(_) => panic!("the mock neither sent nor closed for 10 s"),
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn idle(mock: &MockUpstream) -> bool {
    mock.wait_for(PROMPTLY, |m| {
        m.open_connections() == 0 && m.active_responses() == 0
    })
    .await
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_byte() {
    let mock = mock([Respond::reset().header("x-never-sent", "1")]).await;
    let mut s = raw_post(&mock).await;
    let (bytes, error) = read_to_end(&mut s).await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
    if cfg!(target_os = "linux") {
        // SO_LINGER 0: a reset, not an orderly close.
        let kind = error.map(|e| e.kind());
        assert_eq!(kind, Some(io::ErrorKind::ConnectionReset));
    }
    assert_eq!(mock.received().len(), 1, "the request is read and recorded");
    assert_eq!(mock.received()[0].json(), Some(json!({"q": 1})));
    assert!(mock.verify().is_empty(), "{:?}", mock.verify());
    let record = mock.responses()[0];
    assert_eq!(record.ended.map(|(how, _)| how), Some(ResponseEnd::Reset));
    assert_eq!(record.body_started_at, None);
    assert!(idle(&mock).await);
}

#[tokio::test]
async fn reset_is_a_transport_error_for_an_http_client() {
    let mock = mock([Respond::reset(), Respond::json(json!({"ok": true}))]).await;
    let url = format!("{}/x", mock.url());
    let http = client();
    let err = http.post(&url).body("{}").send().await.unwrap_err();
    assert!(err.status().is_none(), "{err:?}");
    // The next step is played as usual on a new connection.
    let ok = http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"ok": true}));
}

#[tokio::test]
async fn reset_with_stall_after_breaks_the_stream_in_the_middle() {
    let respond = Respond {
        reset: true,
        stall_after: Some(1),
        ..Respond::sse(["first", "second"])
    };
    let mock = mock([respond]).await;
    let mut s = raw_post(&mock).await;
    let (bytes, error) = read_to_end(&mut s).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(text.contains("data: first\n\n"), "{text}");
    assert!(!text.contains("second"), "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "no end of body: {text}");
    if cfg!(target_os = "linux") {
        let kind = error.map(|e| e.kind());
        assert_eq!(kind, Some(io::ErrorKind::ConnectionReset));
    }
    let record = mock.responses()[0];
    assert_eq!(record.ended.map(|(how, _)| how), Some(ResponseEnd::Reset));
    assert!(record.body_started_at.is_some());
    assert!(idle(&mock).await);

    // The same through an HTTP client: the first event, then an error, not a clean end.
    let respond = Respond {
        reset: true,
        stall_after: Some(1),
        stall_ms: Some(50),
        ..Respond::sse(["first", "second"])
    };
    let mock = self::mock([respond]).await;
    let response = client()
        .post(format!("{}/x", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert_eq!(got, b"data: first\n\n");
    assert!(failed, "the body must end in an error");
}

#[tokio::test]
async fn stall_after_sends_the_first_events_then_nothing() {
    let respond = Respond::sse(["one", "two", "three"]).stall(1, 60_000);
    let mock = mock([respond]).await;
    // A read timeout far below the stall proves the silence without measuring it.
    let http = reqwest::Client::builder()
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let response = http.post(format!("{}/x", mock.url())).send().await.unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    let stalled = body.next().await.unwrap().unwrap_err();
    assert!(stalled.is_timeout(), "{stalled:?}");
    drop(body);
    // The client gave up: the mock sees the body dropped mid-stall.
    assert!(mock.wait_response_closed(0, PROMPTLY).await.is_some());
    assert_eq!(
        mock.responses()[0].ended.map(|(how, _)| how),
        Some(ResponseEnd::Dropped)
    );
    assert!(idle(&mock).await);
}

#[tokio::test]
async fn a_stall_ends_and_the_rest_follows() {
    // Without `stall_after`: every event, the stall, then a clean end.
    let mock = mock([
        Respond {
            stall_ms: Some(300),
            ..Respond::sse(["a", "b"])
        },
        Respond::sse(["c", "d"]).stall(1, 300),
    ])
    .await;
    let http = client();
    for expected in ["data: a\n\ndata: b\n\n", "data: c\n\ndata: d\n\n"] {
        let started = Instant::now();
        let response = http.post(format!("{}/x", mock.url())).send().await.unwrap();
        let text = response.text().await.unwrap();
        assert_eq!(text, expected);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
    let ends: Vec<_> = mock
        .responses()
        .iter()
        .map(|r| r.ended.map(|(how, _)| how))
        .collect();
    assert_eq!(ends, [Some(ResponseEnd::Complete); 2]);
}

#[tokio::test]
async fn a_stall_in_a_body_with_a_length() {
    // Bytes, not events: the head (with the whole length) and `hello` at once, then nothing.
    let mock = mock([Respond::text("hello world").stall(5, 60_000)]).await;
    let http = reqwest::Client::builder()
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let response = http.post(format!("{}/x", mock.url())).send().await.unwrap();
    assert_eq!(response.content_length(), Some(11));
    let mut body = response.bytes_stream();
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"hello");
    assert!(body.next().await.unwrap().unwrap_err().is_timeout());
    drop(body);
    assert!(idle(&mock).await);

    // A shorter stall: the rest follows.
    let mock = self::mock([Respond::text("hello world").stall(5, 300)]).await;
    let started = Instant::now();
    let text = client()
        .post(format!("{}/x", mock.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "hello world");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn never_answers_and_leaks_nothing_once_the_client_gives_up() {
    let mock = mock([Respond::never()]).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = http
        .post(format!("{}/x", mock.url()))
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(mock.received().len(), 1);
    drop(http);
    assert!(idle(&mock).await, "open: {}", mock.open_connections());
    let record = mock.responses()[0];
    assert_eq!(record.ended.map(|(how, _)| how), Some(ResponseEnd::Dropped));
    assert_eq!(record.body_started_at, None);
    // Held for about the client's 300 ms (less the time the request took to arrive).
    assert!(record.duration().unwrap() >= Duration::from_millis(100));
}

#[tokio::test]
async fn never_holds_a_raw_connection_until_it_closes() {
    let mock = mock([Respond::never()]).await;
    let mut s = raw_post(&mock).await;
    assert!(mock.wait_for(PROMPTLY, |m| m.received().len() == 1).await);
    // Still nothing after a while, and still counted.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
    assert!(read.is_err(), "the mock answered: {read:?}");
    assert_eq!(mock.active_responses(), 1);
    assert_eq!(mock.open_connections(), 1);
    drop(s);
    assert!(idle(&mock).await);
}

#[tokio::test]
async fn body_bytes_pads_json_with_spaces_and_streams_it() {
    const LEN: u64 = 3 * 1024 * 1024 + 17;
    let mock = mock([
        Respond::json(json!({"a": [1, 2]})).body_bytes(LEN),
        Respond::default().body_bytes(LEN),
        Respond::text("hello world").body_bytes(5),
    ])
    .await;
    let url = format!("{}/x", mock.url());
    let http = client();

    let response = http.post(&url).send().await.unwrap();
    assert_eq!(response.content_length(), Some(LEN));
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len() as u64, LEN);
    // Still the same JSON document.
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"a": [1, 2]})
    );

    // No body form: a JSON string of that many bytes.
    let body = http.post(&url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body.len() as u64, LEN);
    let string: String = serde_json::from_slice(&body).unwrap();
    assert_eq!(string.len() as u64, LEN - 2);
    assert!(string.bytes().all(|b| b == b'x'));

    // Shorter than the body: cut.
    let body = http.post(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "hello");

    let ends: Vec<_> = mock
        .responses()
        .iter()
        .map(|r| r.ended.map(|(how, _)| how))
        .collect();
    assert_eq!(ends, [Some(ResponseEnd::Complete); 3]);
}

#[tokio::test]
async fn an_enormous_body_dropped_by_the_client_is_seen_closed() {
    // Far more than the socket buffers: the mock is still sending when the client leaves.
    let mock = mock([Respond::default().body_bytes(1 << 40)]).await;
    let response = client()
        .post(format!("{}/x", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.content_length(), Some(1 << 40));
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(first[0], b'"');
    drop(body);
    assert!(mock.wait_response_closed(0, PROMPTLY).await.is_some());
    assert_eq!(
        mock.responses()[0].ended.map(|(how, _)| how),
        Some(ResponseEnd::Dropped)
    );
    assert!(idle(&mock).await);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_is_seen_within_a_second() {
    let slow = Respond {
        sse_interval_ms: Some(60_000),
        ..Respond::sse(["first", "never sent"])
    };
    let mock = mock([slow]).await;
    let response = client()
        .post(format!("{}/x", mock.url()))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"data: first\n\n");
    assert_eq!(mock.active_responses(), 1);
    assert_eq!(
        mock.wait_response_closed(0, Duration::from_millis(100))
            .await,
        None
    );
    let dropped_at = Instant::now();
    drop(body);
    let lasted = mock.wait_response_closed(0, PROMPTLY).await;
    assert!(lasted.is_some(), "not seen closed within a second");
    let record = mock.responses()[0];
    let (how, ended) = record.ended.unwrap();
    assert_eq!(how, ResponseEnd::Dropped);
    assert!(ended.saturating_duration_since(dropped_at) < PROMPTLY);
    assert!(record.body_started_at.is_some());
    assert_eq!(mock.active_responses(), 0);
    assert!(idle(&mock).await);
}

#[tokio::test]
async fn open_connections_count_until_the_clients_close() {
    let mock = mock([Respond::json(json!({"ok": 1}))]).await;
    let addr = mock.url().trim_start_matches("http://").to_owned();
    assert_eq!(mock.open_connections(), 0);
    let mut idle_ones = Vec::new();
    for _ in 0..3 {
        idle_ones.push(TcpStream::connect(&addr).await.unwrap());
    }
    assert!(mock.wait_for(PROMPTLY, |m| m.open_connections() == 3).await);
    // A keep-alive connection that has been answered stays open, and counted.
    let http = client();
    let ok = http.post(format!("{}/x", mock.url())).send().await.unwrap();
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"ok": 1}));
    assert!(mock.wait_for(PROMPTLY, |m| m.open_connections() == 4).await);
    assert_eq!(mock.active_responses(), 0);
    drop(idle_ones);
    assert!(mock.wait_for(PROMPTLY, |m| m.open_connections() == 1).await);
    drop(http);
    assert!(mock.wait_for(PROMPTLY, |m| m.open_connections() == 0).await);
}

#[tokio::test]
async fn dropping_the_mock_ends_its_connections() {
    let mock = mock([Respond::never()]).await;
    let mut held = raw_post(&mock).await;
    let addr = mock.url().trim_start_matches("http://").to_owned();
    let mut idle_one = TcpStream::connect(&addr).await.unwrap();
    assert!(
        mock.wait_for(PROMPTLY, |m| m.received().len() == 1
            && m.open_connections() == 2)
            .await
    );
    drop(mock);
    for s in [&mut held, &mut idle_one] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(PROMPTLY, s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "the connection outlived the mock: {read:?}"
        );
    }
}

#[tokio::test]
async fn malformed_json_and_truncated_streams() {
    let mock = mock([
        Respond::malformed_json(r#"{"candidates": ["#),
        Respond::sse_broken_off([r#"{"n":1}"#], r#"{"n":"#),
        Respond::sse([r#"{"n":1}"#]),
    ])
    .await;
    let url = format!("{}/x", mock.url());
    let http = client();
    let response = http.post(&url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let response = http.post(&url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        response.text().await.unwrap(),
        "data: {\"n\":1}\n\ndata: {\"n\":"
    );
    let response = http.post(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "data: {\"n\":1}\n\n");
}

#[tokio::test]
async fn plain_answers_are_complete_once_sent() {
    let mock = mock([Respond::json(json!({"ok": 1})), Respond::default()]).await;
    let url = format!("{}/x", mock.url());
    let response = client().post(&url).send().await.unwrap();
    assert_eq!(response.content_length(), Some(8));
    assert_eq!(response.text().await.unwrap(), r#"{"ok":1}"#);
    let response = client().post(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "");
    for i in 0..2 {
        assert!(mock.wait_response_closed(i, PROMPTLY).await.is_some());
    }
    let ends: Vec<_> = mock
        .responses()
        .iter()
        .map(|r| r.ended.map(|(how, _)| how))
        .collect();
    assert_eq!(ends, [Some(ResponseEnd::Complete); 2]);
}

#[test]
fn a_fixture_with_the_fault_fields_deserializes() {
    let fixture: Fixture = serde_json::from_value(json!({
        "name": "faults",
        "request": {"method": "POST", "path": "/v1/chat/completions", "json": {}},
        "upstream": [
            {"respond": {"reset": true}},
            {"respond": {"sse": ["a", "b"], "stall_after": 1, "stall_ms": 5000}},
            {"respond": {"sse": ["a"], "stall_after": 1, "reset": true}},
            {"respond": {"never": true}},
            {"respond": {"json": {"a": 1}, "body_bytes": 100000000}},
            {"respond": {"status": 503, "delay_ms": 10}}
        ],
        "expect": {"status": 502}
    }))
    .unwrap();
    let r: Vec<&Respond> = fixture.upstream.iter().map(|s| &s.respond).collect();
    assert!(r[0].reset && r[0].stall_after.is_none() && !r[0].never);
    assert_eq!((r[1].stall_after, r[1].stall_ms), (Some(1), Some(5000)));
    assert!(r[2].reset);
    assert!(r[3].never);
    assert_eq!(r[4].body_bytes, Some(100_000_000));
    // Defaults: no fault.
    assert!(!r[5].reset && !r[5].never);
    assert_eq!(
        (r[5].stall_ms, r[5].stall_after, r[5].body_bytes),
        (None, None, None)
    );
}

#[test]
fn every_contract_fixture_still_deserializes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/contract");
    let mut seen = 0;
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let fixture: Fixture = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                // Only the fault fixtures use the fault extensions; every other fixture keeps its
                // meaning with them unset.
                let faults = path.components().any(|c| c.as_os_str() == "faults");
                for step in fixture.upstream.iter().filter(|_| !faults) {
                    let r = &step.respond;
                    assert!(
                        !r.reset && !r.never && r.stall_ms.is_none() && r.body_bytes.is_none(),
                        "{}",
                        path.display()
                    );
                }
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "no fixture found");
}
