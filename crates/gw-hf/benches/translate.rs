//! Micro-benchmarks of the Hugging Face client's request and response translation, through the
//! public API (the conversion functions are crate-private) against the benchmark mock upstream
//! on loopback (`gw_mock::bench`). Each figure therefore includes one HTTP round trip;
//! `transport_only` is that same round trip with a ready-made body and no conversion, so the
//! difference is what translation costs. `cargo bench -p gw-hf`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use gateway_core::{TextModel, TextRequest};
use gw_hf::HfClient;
use gw_mock::bench::BenchOptions;

const PROMPT: &str = "Summarise in one sentence why a gateway should add little latency.";
const CHUNKS: u32 = 20;

fn translate(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let options = BenchOptions {
        chunks: CHUNKS,
        ..BenchOptions::default()
    };
    runtime.spawn(gw_mock::bench::serve(listener, options));
    let client = HfClient::builder()
        .api_key("hf_bench")
        .base_url(base.clone())
        .build()
        .expect("a client");
    let request = TextRequest::new("bench/chat").user(PROMPT).max_tokens(64);
    // 256 KiB of prompt: what the request's translation copies of the text shows.
    let long = TextRequest::new("bench/chat")
        .user(PROMPT.repeat(256 * 1024 / PROMPT.len()))
        .max_tokens(64);
    let http = reqwest::Client::new();
    let raw = serde_json::json!({
        "model": "bench/chat",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 64,
    })
    .to_string();
    let url = format!("{base}/v1/chat/completions");

    let mut group = c.benchmark_group("hf");
    group.bench_function("transport_only", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(raw.clone())
                    .send()
                    .await
                    .expect("the mock answers");
                response.bytes().await.expect("a body").len()
            })
        })
    });
    group.bench_function("generate", |b| {
        b.iter(|| {
            runtime
                .block_on(client.generate(black_box(request.clone())))
                .expect("an answer")
        })
    });
    group.bench_function("generate_256kib_prompt", |b| {
        b.iter(|| {
            runtime
                .block_on(client.generate(black_box(long.clone())))
                .expect("an answer")
        })
    });
    group.throughput(Throughput::Elements(u64::from(CHUNKS)));
    group.bench_function("stream_20_chunks", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut stream = client
                    .stream(black_box(request.clone()))
                    .await
                    .expect("a stream");
                let mut n = 0;
                while let Some(chunk) = stream.next().await {
                    chunk.expect("a chunk");
                    n += 1;
                }
                n
            })
        })
    });
    group.finish();
}

criterion_group!(benches, translate);
criterion_main!(benches);
