//! Micro-benchmarks of gateway-core's hot paths: the SSE parser (per chunk of a provider stream)
//! and exact cost computation. `cargo bench -p gateway-core`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateway_core::sse::SseDecoder;
use gateway_core::{PriceCatalog, TokenUsage};

/// An OpenAI-style stream of `n` content chunks, as a provider sends it.
fn openai_stream(n: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    body.push_str("data: [DONE]\n\n");
    body.into_bytes()
}

fn sse(c: &mut Criterion) {
    const CHUNKS: usize = 20;
    let body = openai_stream(CHUNKS);
    let mut group = c.benchmark_group("sse_parse");
    // Per event: the figure to compare with a provider's chunk rate.
    group.throughput(Throughput::Elements(CHUNKS as u64 + 1));
    group.bench_function("whole_body", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            decoder.push(black_box(&body)).expect("within the limits");
            let mut n = 0;
            while let Some(event) = decoder.next_event() {
                n += event.data.len();
            }
            n
        })
    });
    // As it arrives from the network: in reads that split lines and events.
    group.bench_function("in_64_byte_reads", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut n = 0;
            for piece in black_box(&body).chunks(64) {
                decoder.push(piece).expect("within the limits");
                while let Some(event) = decoder.next_event() {
                    n += event.data.len();
                }
            }
            n
        })
    });
    // As a provider's stream decoder gets them (`decode_stream`): each event lent as it
    // completes, rather than copied and queued.
    group.bench_function("lent_whole_body", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut n = 0;
            decoder
                .push_with(black_box(&body), &mut |event| {
                    n += event.data.len();
                    true
                })
                .expect("within the limits");
            n
        })
    });
    group.bench_function("lent_in_64_byte_reads", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut n = 0;
            for piece in black_box(&body).chunks(64) {
                decoder
                    .push_with(piece, &mut |event| {
                        n += event.data.len();
                        true
                    })
                    .expect("within the limits");
            }
            n
        })
    });
    group.finish();
}

fn cost(c: &mut Criterion) {
    let catalog = PriceCatalog::from_toml(include_str!("../testdata/pricing.toml"), "pricing.toml")
        .expect("the reference catalog reads");
    let usage = TokenUsage {
        input_tokens: 1_234,
        output_tokens: 567,
        reasoning_tokens: 100,
        cached_input_tokens: 200,
    };
    let mut group = c.benchmark_group("cost");
    group.bench_function("text_cost_lookup_and_price", |b| {
        b.iter(|| {
            catalog.text_cost(
                black_box("gemini"),
                black_box("gemini-2.5-flash"),
                black_box(&usage),
            )
        })
    });
    // What a request pays twice (estimate and settlement): `token_cost` of a model priced by
    // its text rates only, and of one that also has a token `[[unit]]` entry (audio input).
    group.bench_function("token_cost_text_rates_only", |b| {
        b.iter(|| {
            catalog.token_cost(
                black_box("gemini"),
                black_box("gemini-2.5-pro"),
                black_box(&usage),
                black_box(&[]),
            )
        })
    });
    group.bench_function("token_cost_with_token_units", |b| {
        b.iter(|| {
            catalog.token_cost(
                black_box("gemini"),
                black_box("gemini-2.0-flash"),
                black_box(&usage),
                black_box(&[]),
            )
        })
    });
    let price = *catalog
        .text_price("gemini", "gemini-2.5-flash")
        .expect("the reference catalog prices gemini-2.5-flash");
    group.bench_function("text_price_cost_only", |b| {
        b.iter(|| black_box(&price).cost(black_box(&usage)))
    });
    group.bench_function("cost_to_string", |b| {
        let cost = price.cost(&usage);
        b.iter(|| black_box(cost).to_string())
    });
    group.finish();
}

criterion_group!(benches, sse, cost);
criterion_main!(benches);
