//! Building a provider request (`cargo bench -p gateway-core --features http --bench upstream`):
//! the URL from a base parsed once against the base and path joined as text and parsed whole,
//! as every request did before (host and IDNA included).

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

criterion_group!(benches, build);
criterion_main!(benches);
