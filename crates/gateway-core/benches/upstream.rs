//! Provider calls (`cargo bench -p gateway-core --features http --bench upstream`):
//! - building a request: the URL from a base parsed once against the base and path joined as
//!   text and parsed whole, as every request did before (host and IDNA included);
//! - a whole JSON POST to a local keep-alive server and its answer read: on hyper's client
//!   connections in the gateway's own pool (`hyper_pool_direct`: the gateway's own clients)
//!   against through reqwest (a client handed over, as every call went before).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gateway_core::http::{Auth, UpstreamBuilder, reqwest};

const BASE: &str = "https://router.huggingface.co";
const PATH: &str = "/v1/chat/completions";
const GEMINI_PATH: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";

fn build(c: &mut Criterion) {
    let mut builder = UpstreamBuilder::default();
    builder.api_key("hf_bench".into());
    builder.base_url(BASE.into());
    let upstream = builder
        .build("hf", BASE, Auth::Bearer)
        .expect("the bench settings are valid");
    let http = reqwest::Client::new();
    let mut group = c.benchmark_group("upstream_request");
    for (name, path) in [("chat", PATH), ("gemini_stream", GEMINI_PATH)] {
        group.bench_function(format!("{name}/joined_text_parsed_before"), |b| {
            b.iter(|| {
                http.post(format!("{BASE}{}", black_box(path)))
                    .header(reqwest::header::AUTHORIZATION, "Bearer hf_bench")
                    .build()
                    .expect("a valid URL")
            })
        });
        group.bench_function(format!("{name}/base_parsed_once"), |b| {
            b.iter(|| upstream.post(black_box(path)).build().expect("a valid URL"))
        });
    }
    group.finish();
}

/// Answers every request on a kept-alive connection with the same small JSON body.
async fn serve(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            loop {
                // One whole request: its head, then `content-length` bytes of body.
                let wanted = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break end + 4 + length;
                    }
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                while buf.len() < wanted {
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..wanted);
                if stream.write_all(ANSWER).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(serve(listener));
        addr
    });
    let upstream = |handed: Option<reqwest::Client>| {
        let mut builder = UpstreamBuilder::default();
        builder.api_key("hf_bench".into());
        builder.base_url(format!("http://{addr}"));
        if let Some(client) = handed {
            builder.http(client);
        }
        builder
            .build("hf", BASE, Auth::Bearer)
            .expect("the bench settings are valid")
    };
    let body = serde_json::json!({
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "messages": [{"role": "user", "content": "Summarise in one sentence why a gateway should add little latency."}],
        "max_tokens": 64,
    });
    let classify: gateway_core::http::Classify = |status, headers, _| {
        gateway_core::Error::new(
            gateway_core::http::kind_for_status(status, headers),
            "bench",
        )
    };
    let mut group = c.benchmark_group("upstream_call");
    for (name, upstream) in [
        (
            "json_post/reqwest_before",
            upstream(Some(reqwest::Client::new())),
        ),
        ("json_post/hyper_pool_direct", upstream(None)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = upstream
                        .post_json(PATH, &body, classify)
                        .await
                        .expect("an answer");
                    let answer: serde_json::Value = gateway_core::http::read_json("hf", response)
                        .await
                        .expect("JSON");
                    black_box(answer)
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, build, call);
criterion_main!(benches);
