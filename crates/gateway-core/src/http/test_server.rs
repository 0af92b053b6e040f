//! A tiny HTTP/1.1 server on 127.0.0.1 for this module's tests. Each connection gets one answer,
//! written by hand by the test, and is then closed: enough to check what the client sent and how
//! it reads odd answers (chunked, lying lengths), without a server framework.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the client sent.
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (any case).
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `handler`'s raw answer to every request until the test's runtime ends.
pub(super) async fn serve(
    handler: impl Fn(Request) -> Vec<u8> + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                if let Some(request) = read_request(&mut stream).await {
                    // The client may hang up first (a size cap): not the test's concern here.
                    let _ = stream.write_all(&handler(request)).await;
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
    addr
}

/// Answers every request with `steps`, each written after its delay, then holds the connection
/// open (a stall stays a stall, not an end) until the test's runtime ends.
pub(super) async fn serve_slowly(steps: Vec<(std::time::Duration, Vec<u8>)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let steps = Arc::new(steps);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let steps = steps.clone();
            tokio::spawn(async move {
                if read_request(&mut stream).await.is_some() {
                    for (delay, bytes) in steps.iter() {
                        tokio::time::sleep(*delay).await;
                        if stream.write_all(bytes).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                }
            });
        }
    });
    addr
}

/// The head of a chunked answer; [`chunk`] writes its chunks, `b"0\r\n\r\n"` ends it.
pub(super) fn chunked_head(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = head(200, headers);
    out.push_str("transfer-encoding: chunked\r\n\r\n");
    out.into_bytes()
}

/// One HTTP chunk.
pub(super) fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A whole answer with a `Content-Length`.
pub(super) fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = head(status, headers);
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A chunked answer (no `Content-Length`), one HTTP chunk per item of `chunks`.
pub(super) fn chunked(headers: &[(&str, &str)], chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = head(200, headers);
    out.push_str("transfer-encoding: chunked\r\n\r\n");
    let mut out = out.into_bytes();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn head(status: u16, headers: &[(&str, &str)]) -> String {
    let mut out = format!("HTTP/1.1 {status} Test\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        read_more(stream, &mut buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let mut request = Request {
        method: request_line.next()?.to_owned(),
        target: request_line.next()?.to_owned(),
        headers: lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect(),
        body: Vec::new(),
    };
    let mut rest = buf[head_end + 4..].to_vec();
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        request.body = loop {
            if let Some(body) = decode_chunked(&rest) {
                break body;
            }
            read_more(stream, &mut rest).await?;
        };
    } else {
        let len = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            read_more(stream, &mut rest).await?;
        }
        rest.truncate(len);
        request.body = rest;
    }
    Some(request)
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0; 8192];
    let n = stream.read(&mut chunk).await.ok()?;
    buf.extend_from_slice(&chunk[..n]);
    (n > 0).then_some(())
}

/// The decoded body once the last (empty) chunk has arrived; trailers are ignored.
fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
