//! The response cache's step of the router, without HTTP: a counting chat model, an embedding
//! model whose vectors make "close" and "far" deterministic, and a ledger recording admissions
//! and settlements.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use gateway_core::{
    Accounting, Admission, Amount, CacheHit, Cost, EmbeddingCaps, EmbeddingModel, EmbeddingRequest,
    EmbeddingResponse, Error, ErrorKind, FinishReason, Registry, Reservation, Result, TextCaps,
    TextChunk, TextModel, TextRequest, TextResponse, TextStream, TokenUsage, UsageRecord,
};

use super::Gateway;
use crate::cache::{
    Cache, CacheBackend, CacheConfig, CacheControl, CacheMode, CacheStatus, MemoryCache, Nearest,
    SemanticEntry,
};
use crate::metering::CallContext;

/// How the counting model's streams end.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    Normal,
    Broken,
}

/// A chat model answering `answer <n>` to its n-th call, and embeddings by keyword.
struct Counting {
    provider: &'static str,
    calls: AtomicU32,
    embeddings: AtomicU32,
    ending: Mutex<Ending>,
}

impl Counting {
    fn new(provider: &'static str) -> Arc<Self> {
        Arc::new(Self {
            provider,
            calls: AtomicU32::new(0),
            embeddings: AtomicU32::new(0),
            ending: Mutex::new(Ending::Normal),
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn usage() -> TokenUsage {
        TokenUsage {
            input_tokens: 1_000,
            output_tokens: 500,
            ..TokenUsage::default()
        }
    }
}

impl TextModel for Counting {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn capabilities(&self) -> TextCaps {
        let mut caps = TextCaps::default();
        caps.tools = true;
        caps
    }

    async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TextResponse::new(
            req.model,
            format!("answer {n}"),
            FinishReason::Stop,
            Self::usage(),
        ))
    }

    async fn stream(&self, _req: TextRequest) -> Result<TextStream> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut chunks = vec![
            Ok(TextChunk::Delta(format!("streamed {n}"))),
            Ok(TextChunk::Delta(" and more".to_owned())),
        ];
        match *self.ending.lock().unwrap() {
            Ending::Normal => {
                chunks.push(Ok(TextChunk::Finish(FinishReason::Stop)));
                chunks.push(Ok(TextChunk::Usage(Self::usage())));
            }
            Ending::Broken => chunks.push(Err(Error::new(
                ErrorKind::StreamInterrupted,
                "the provider's stream broke off",
            ))),
        }
        Ok(futures_util::stream::iter(chunks).boxed())
    }
}

impl EmbeddingModel for Counting {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn embedding_capabilities(&self) -> EmbeddingCaps {
        EmbeddingCaps::new(8, true)
    }

    async fn embed(&self, req: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.embeddings.fetch_add(1, Ordering::SeqCst);
        // France questions point one way (a paraphrase a little off it), others elsewhere.
        let vectors = req
            .inputs
            .iter()
            .map(|text| {
                let text = text.to_lowercase();
                if text.contains("capital of france") {
                    vec![1.0, 0.0, 0.0]
                } else if text.contains("france's capital") {
                    vec![0.99, 0.1, 0.0]
                } else {
                    vec![0.0, 1.0, 0.0]
                }
            })
            .collect();
        Ok(EmbeddingResponse::new(
            req.model,
            vectors,
            TokenUsage {
                input_tokens: 8,
                ..TokenUsage::default()
            },
        ))
    }
}

impl gateway_core::ImageModel for Counting {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn image_capabilities(&self) -> gateway_core::ImageCaps {
        gateway_core::ImageCaps::default()
    }

    async fn generate_image(
        &self,
        req: gateway_core::ImageRequest,
    ) -> Result<gateway_core::ImageResponse> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let image = gateway_core::MediaOutput::Bytes {
            data: format!("image {n}").into_bytes().into(),
            mime: "image/png".into(),
        };
        Ok(gateway_core::ImageResponse::new(
            req.model,
            vec![image],
            gateway_core::Usage::default(),
        ))
    }

    async fn edit_image(
        &self,
        _req: gateway_core::ImageEditRequest,
    ) -> Result<gateway_core::ImageResponse> {
        Err(Error::unsupported("no edits here"))
    }
}

/// Admissions and settlements, and routes the plan refuses.
#[derive(Default)]
struct Ledger {
    admitted: Mutex<Vec<Admission>>,
    settled: Mutex<Vec<UsageRecord>>,
    refused_model: Mutex<Option<String>>,
}

impl Ledger {
    fn refusal(&self, admission: &Admission) -> Option<Error> {
        let refused = self.refused_model.lock().unwrap();
        (refused.as_deref() == Some(admission.route.to_string().as_str()))
            .then(|| Error::new(ErrorKind::PermissionDenied, "not in your plan"))
    }

    fn settled(&self) -> Vec<UsageRecord> {
        self.settled.lock().unwrap().clone()
    }
}

impl Accounting for Ledger {
    fn admit(&self, admission: Admission) -> BoxFuture<'_, Result<Reservation>> {
        Box::pin(async move {
            if let Some(e) = self.refusal(&admission) {
                return Err(e);
            }
            let reservation = Reservation {
                id: format!("res-{}", admission.request_id),
                user_id: admission.user_id.clone(),
                period: "2026-11".into(),
                estimate: admission.estimate,
                output_bound: None,
            };
            self.admitted.lock().unwrap().push(admission);
            Ok(reservation)
        })
    }

    fn settle(&self, _: Reservation, record: UsageRecord) -> BoxFuture<'_, Result<()>> {
        self.settled.lock().unwrap().push(record);
        Box::pin(async { Ok(()) })
    }

    fn permits(&self, admission: Admission) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.refusal(&admission).map_or(Ok(()), Err) })
    }

    fn extend(&self, reservation: Reservation, to: Amount) -> BoxFuture<'_, Result<Reservation>> {
        Box::pin(async move {
            Ok(Reservation {
                estimate: to,
                ..reservation
            })
        })
    }
}

/// A backend that never answers (Redis hung) or always fails (Redis down).
struct Broken {
    hang: bool,
}

impl Broken {
    fn answer<'a, T: Send + 'a>(&'a self) -> BoxFuture<'a, Result<T>> {
        let hang = self.hang;
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Err(Error::new(
                ErrorKind::Unavailable,
                "Redis: connection refused",
            ))
        })
    }
}

impl CacheBackend for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        self.answer()
    }

    fn put<'a>(&'a self, _: &'a str, _: Vec<u8>, _: Duration) -> BoxFuture<'a, Result<()>> {
        self.answer()
    }

    fn nearest<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a [f32],
    ) -> BoxFuture<'a, Result<Option<Nearest>>> {
        self.answer()
    }

    fn remember<'a>(
        &'a self,
        _: &'a str,
        _: SemanticEntry,
        _: Duration,
        _: usize,
    ) -> BoxFuture<'a, Result<()>> {
        self.answer()
    }
}

struct Setup {
    gateway: Gateway,
    gemini: Arc<Counting>,
    hf: Arc<Counting>,
    ledger: Arc<Ledger>,
}

fn setup_with(config: CacheConfig, backend: Arc<dyn CacheBackend>) -> Setup {
    let gemini = Counting::new("gemini");
    let hf = Counting::new("hf");
    let mut registry = Registry::new();
    registry.add_text(gemini.clone());
    registry.add_text(hf.clone());
    registry.add_embedding(gemini.clone());
    registry.add_image(gemini.clone());
    let ledger = Arc::new(Ledger::default());
    let prices = gateway_core::PriceCatalog::from_toml(
        r#"
version = "test"
[[text]]
provider = "gemini"
model = "flash"
input = "1"
output = "2"
source = "test"
"#,
        "test prices",
    )
    .unwrap();
    let cache = Cache::new(config, backend).unwrap();
    let gateway = Gateway::new(registry)
        .with_pricing(prices)
        .with_accounting(ledger.clone())
        .with_cache(cache)
        .unwrap();
    Setup {
        gateway,
        gemini,
        hf,
        ledger,
    }
}

fn setup(config: CacheConfig) -> Setup {
    setup_with(config, Arc::new(MemoryCache::new(1 << 20)))
}

fn enabled() -> CacheConfig {
    CacheConfig {
        enabled: true,
        ..CacheConfig::default()
    }
}

fn semantic() -> CacheConfig {
    let mut config = enabled();
    config.semantic.enabled = true;
    config.semantic.embedding_model = Some("gemini/embed".into());
    config.semantic.threshold = 0.95;
    config
}

fn ctx(user: &str, n: u32) -> CallContext {
    CallContext::new(format!("req-{n}"), user)
}

fn ask(text: &str) -> TextRequest {
    TextRequest::new("gemini/flash")
        .system("Be brief.")
        .user(text)
}

/// Lets the background cache writes finish.
async fn settle_writes() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

#[tokio::test]
async fn an_identical_request_is_answered_from_the_cache_for_nothing() {
    let s = setup(enabled());
    let first = s
        .gateway
        .generate_with(&ctx("u1", 1), ask("hi"))
        .await
        .unwrap();
    assert_eq!(first.cache, CacheStatus::Miss);
    assert!(first.cost.unwrap() > Cost::ZERO);
    // No pause: the answer is written before the first request returns.
    let second = s
        .gateway
        .generate_with(&ctx("u1", 2), ask("hi"))
        .await
        .unwrap();
    assert!(
        matches!(second.cache, CacheStatus::Hit { .. }),
        "{:?}",
        second.cache
    );
    assert_eq!(second.value.content, "answer 1");
    assert_eq!(second.cost, Some(Cost::ZERO));
    assert_eq!(s.gemini.calls(), 1, "no provider call for a hit");
    let rows = s.ledger.settled();
    let hit = rows.last().unwrap();
    assert_eq!(
        hit.cached,
        Some(CacheHit {
            semantic: false,
            saved: first.cost
        }),
        "logged as a hit with the cost it saved"
    );
    assert_eq!(hit.cost, Some(Cost::ZERO));
    assert_eq!(hit.amount().requests, 1, "counted as a request by default");
    assert_eq!(hit.route.to_string(), "gemini/flash");
    let admitted = s.ledger.admitted.lock().unwrap().last().cloned().unwrap();
    assert_eq!(admitted.estimate.cost, Some(Cost::ZERO));
    assert_eq!(admitted.estimate.tokens, 0);
}

#[tokio::test]
async fn anything_that_changes_the_answer_misses() {
    let s = setup(enabled());
    let base = ask("hi");
    s.gateway
        .generate_with(&ctx("u1", 0), base.clone())
        .await
        .unwrap();
    settle_writes().await;
    let variants = [
        base.clone().temperature(0.3),
        base.clone().max_tokens(10),
        base.clone().stop("."),
        base.clone().tool(gateway_core::Tool::function(
            "f",
            serde_json::json!({"type": "object"}),
        )),
        TextRequest::new("hf/flash").system("Be brief.").user("hi"),
        TextRequest::new("gemini/flash")
            .system("Be long.")
            .user("hi"),
        TextRequest::new("gemini/flash")
            .system("Be brief.")
            .user("hello")
            .assistant("hey")
            .user("hi"),
        TextRequest::new("gemini/flash")
            .system("Be brief.")
            .user("hi!"),
    ];
    let before = s.gemini.calls() + s.hf.calls();
    for (i, variant) in variants.into_iter().enumerate() {
        let got = s
            .gateway
            .generate_with(&ctx("u1", 10 + i as u32), variant)
            .await
            .unwrap();
        assert_eq!(got.cache, CacheStatus::Miss, "variant {i}");
    }
    assert_eq!(s.gemini.calls() + s.hf.calls(), before + 8);
}

#[tokio::test]
async fn two_users_never_see_each_others_answers_unless_grouped() {
    let mut config = enabled();
    config
        .groups
        .insert("team".into(), vec!["g1".into(), "g2".into()]);
    let s = setup(config);
    s.gateway
        .generate_with(&ctx("u1", 1), ask("hi"))
        .await
        .unwrap();
    settle_writes().await;
    let other = s
        .gateway
        .generate_with(&ctx("u2", 2), ask("hi"))
        .await
        .unwrap();
    assert_eq!(other.cache, CacheStatus::Miss);
    assert_eq!(other.value.content, "answer 2");
    // An operator-defined group shares one namespace.
    s.gateway
        .generate_with(&ctx("g1", 3), ask("hi"))
        .await
        .unwrap();
    settle_writes().await;
    let mate = s
        .gateway
        .generate_with(&ctx("g2", 4), ask("hi"))
        .await
        .unwrap();
    assert!(mate.cache.is_hit());
    assert_eq!(mate.value.content, "answer 3");
}

#[tokio::test]
async fn a_paraphrase_hits_the_semantic_cache_and_another_question_does_not() {
    let s = setup(semantic());
    let first = s
        .gateway
        .generate_with(&ctx("u1", 1), ask("What is the capital of France?"))
        .await
        .unwrap();
    assert_eq!(first.cache, CacheStatus::Miss);
    settle_writes().await;
    let paraphrase = s
        .gateway
        .generate_with(&ctx("u1", 2), ask("Tell me France's capital"))
        .await
        .unwrap();
    let CacheStatus::SemanticHit { similarity, .. } = paraphrase.cache else {
        panic!("{:?}", paraphrase.cache);
    };
    assert!(similarity > 0.95 && similarity < 1.0, "{similarity}");
    assert_eq!(paraphrase.value.content, "answer 1");
    assert_eq!(s.gemini.calls(), 1, "the chat model was not called");
    let hit = s.ledger.settled().last().cloned().unwrap();
    assert!(hit.cached.unwrap().semantic);
    // The embedding call is a call of its own, logged and paid.
    let embeddings: Vec<UsageRecord> = s
        .ledger
        .settled()
        .into_iter()
        .filter(|r| r.operation == "embeddings")
        .collect();
    assert_eq!(embeddings.len(), 2);
    assert!(embeddings.iter().all(|r| r.request_id.ends_with(".cache")));

    let other = s
        .gateway
        .generate_with(&ctx("u1", 3), ask("How tall is Everest?"))
        .await
        .unwrap();
    assert_eq!(other.cache, CacheStatus::Miss);
    assert_eq!(s.gemini.calls(), 2);
    // Another user's paraphrase does not reach the first user's entry.
    let stranger = s
        .gateway
        .generate_with(&ctx("u2", 4), ask("Tell me France's capital"))
        .await
        .unwrap();
    assert_eq!(stranger.cache, CacheStatus::Miss);
    // Nor does the same paraphrase after another system prompt.
    let reframed = TextRequest::new("gemini/flash")
        .system("Answer in French.")
        .user("Tell me France's capital");
    let reframed = s
        .gateway
        .generate_with(&ctx("u1", 5), reframed)
        .await
        .unwrap();
    assert_eq!(reframed.cache, CacheStatus::Miss);
}

#[tokio::test]
async fn a_stream_that_ended_normally_is_replayed_and_a_broken_one_is_not_kept() {
    let s = setup(enabled());
    let text = |stream: TextStream| async move {
        let chunks: Vec<Result<TextChunk>> = stream.collect().await;
        let mut out = String::new();
        let mut finished = false;
        for chunk in chunks {
            match chunk.unwrap() {
                TextChunk::Delta(t) => out.push_str(&t),
                TextChunk::Finish(_) => finished = true,
                _ => {}
            }
        }
        assert!(finished);
        out
    };
    let first = s
        .gateway
        .stream_with(&ctx("u1", 1), ask("hi"))
        .await
        .unwrap();
    assert_eq!(first.cache, CacheStatus::Miss);
    assert_eq!(text(first.value).await, "streamed 1 and more");
    settle_writes().await;
    let replayed = s
        .gateway
        .stream_with(&ctx("u1", 2), ask("hi"))
        .await
        .unwrap();
    assert!(replayed.cache.is_hit());
    assert_eq!(text(replayed.value).await, "streamed 1 and more");
    let blocking = s
        .gateway
        .generate_with(&ctx("u1", 3), ask("hi"))
        .await
        .unwrap();
    assert!(
        blocking.cache.is_hit(),
        "one entry for streamed and blocking"
    );
    assert_eq!(blocking.value.usage, Counting::usage());
    assert_eq!(s.gemini.calls(), 1);

    *s.gemini.ending.lock().unwrap() = Ending::Broken;
    let broken = s
        .gateway
        .stream_with(&ctx("u1", 4), ask("other"))
        .await
        .unwrap();
    let items: Vec<Result<TextChunk>> = broken.value.collect().await;
    assert!(items.last().unwrap().is_err());
    settle_writes().await;
    *s.gemini.ending.lock().unwrap() = Ending::Normal;
    let again = s
        .gateway
        .generate_with(&ctx("u1", 5), ask("other"))
        .await
        .unwrap();
    assert_eq!(
        again.cache,
        CacheStatus::Miss,
        "a broken stream is not kept"
    );

    // A stream its client dropped half-way is not kept either.
    let dropped = s
        .gateway
        .stream_with(&ctx("u1", 6), ask("third"))
        .await
        .unwrap();
    let mut stream = dropped.value;
    let _ = stream.next().await;
    drop(stream);
    settle_writes().await;
    let after = s
        .gateway
        .generate_with(&ctx("u1", 7), ask("third"))
        .await
        .unwrap();
    assert_eq!(after.cache, CacheStatus::Miss);
}

#[tokio::test]
async fn a_hit_is_served_only_where_the_plan_allows_its_model() {
    let s = setup(enabled());
    s.gateway
        .generate_with(&ctx("u1", 1), ask("hi"))
        .await
        .unwrap();
    settle_writes().await;
    *s.ledger.refused_model.lock().unwrap() = Some("gemini/flash".into());
    let refused = s.gateway.generate_with(&ctx("u1", 2), ask("hi")).await;
    let error = refused.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::PermissionDenied);
    assert_eq!(s.gemini.calls(), 1);
}

#[tokio::test]
async fn the_request_controls_reading_writing_and_age() {
    let s = setup(CacheConfig::default());
    let with = |mode, read, write| {
        let mut c = ctx("u1", 0);
        c.cache = CacheControl {
            mode,
            read,
            write,
            ..CacheControl::default()
        };
        c
    };
    // Off in the configuration: skipped unless the request asks.
    let off = s
        .gateway
        .generate_with(&ctx("u1", 1), ask("a"))
        .await
        .unwrap();
    assert_eq!(off.cache, CacheStatus::Skip);
    let forced = s
        .gateway
        .generate_with(&with(CacheMode::Exact, true, true), ask("a"))
        .await
        .unwrap();
    assert_eq!(forced.cache, CacheStatus::Miss);
    settle_writes().await;
    let hit = s
        .gateway
        .generate_with(&with(CacheMode::Exact, true, true), ask("a"))
        .await
        .unwrap();
    assert!(hit.cache.is_hit());
    // no-cache: the provider answers, and the fresher answer replaces the old one.
    let refreshed = s
        .gateway
        .generate_with(&with(CacheMode::Exact, false, true), ask("a"))
        .await
        .unwrap();
    assert_eq!(refreshed.value.content, "answer 3");
    settle_writes().await;
    let newer = s
        .gateway
        .generate_with(&with(CacheMode::Exact, true, true), ask("a"))
        .await
        .unwrap();
    assert_eq!(newer.value.content, "answer 3");
    // no-store: answered, not kept.
    s.gateway
        .generate_with(&with(CacheMode::Exact, true, false), ask("b"))
        .await
        .unwrap();
    settle_writes().await;
    let not_kept = s
        .gateway
        .generate_with(&with(CacheMode::Exact, true, true), ask("b"))
        .await
        .unwrap();
    assert_eq!(not_kept.cache, CacheStatus::Miss);
    // max-age: an answer older than asked is not served.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut young = with(CacheMode::Exact, true, true);
    young.cache.max_age = Some(Duration::from_millis(1));
    let fresh = s.gateway.generate_with(&young, ask("a")).await.unwrap();
    assert_eq!(fresh.cache, CacheStatus::Miss);
    // A TTL above the operator's maximum is refused, naming the header.
    let mut long = with(CacheMode::Exact, true, true);
    long.cache.ttl = Some(Duration::from_secs(10 * 86_400));
    let error = s.gateway.generate_with(&long, ask("a")).await.unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidRequest);
    assert_eq!(error.param(), Some("x-gateway-cache-ttl"));
    // Skip: never read.
    let skipped = s
        .gateway
        .generate_with(&with(CacheMode::Skip, true, true), ask("a"))
        .await
        .unwrap();
    assert_eq!(skipped.cache, CacheStatus::Skip);
}

#[tokio::test]
async fn hits_need_not_count_against_the_plan() {
    let mut config = enabled();
    config.count_hits = false;
    let s = setup(config);
    s.gateway
        .generate_with(&ctx("u1", 1), ask("hi"))
        .await
        .unwrap();
    settle_writes().await;
    let hit = s
        .gateway
        .generate_with(&ctx("u1", 2), ask("hi"))
        .await
        .unwrap();
    assert!(hit.cache.is_hit());
    let row = s.ledger.settled().last().cloned().unwrap();
    assert!(row.cached.is_some());
    assert_eq!(row.amount().requests, 0);
    let admitted = s.ledger.admitted.lock().unwrap().last().cloned().unwrap();
    assert_eq!(admitted.estimate.requests, 0);
}

#[tokio::test]
async fn a_backend_that_fails_or_hangs_is_bypassed_within_its_budget() {
    for hang in [false, true] {
        let mut config = semantic();
        config.budget_ms = 20;
        let s = setup_with(config, Arc::new(Broken { hang }));
        let started = Instant::now();
        let got = s
            .gateway
            .generate_with(&ctx("u1", 1), ask("hi"))
            .await
            .unwrap();
        assert_eq!(got.cache, CacheStatus::Unavailable, "hang: {hang}");
        assert_eq!(got.value.content, "answer 1");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "hang: {hang}: {:?}",
            started.elapsed()
        );
        let streamed = s
            .gateway
            .stream_with(&ctx("u1", 2), ask("hi"))
            .await
            .unwrap();
        assert_eq!(streamed.cache, CacheStatus::Unavailable);
        let chunks: Vec<Result<TextChunk>> = streamed.value.collect().await;
        assert!(chunks.iter().all(Result::is_ok));
    }
}

#[tokio::test]
async fn embeddings_and_search_are_cached_by_the_exact_request_when_enabled() {
    let mut config = CacheConfig::default();
    config.embeddings.enabled = true;
    let s = setup(config);
    let req = || EmbeddingRequest::new("gemini/embed").input("hello");
    let first = s.gateway.embed_with(&ctx("u1", 1), req()).await.unwrap();
    assert_eq!(first.cache, CacheStatus::Miss);
    settle_writes().await;
    let second = s.gateway.embed_with(&ctx("u1", 2), req()).await.unwrap();
    assert!(second.cache.is_hit());
    assert_eq!(second.value.embeddings, first.value.embeddings);
    assert_eq!(s.gemini.embeddings.load(Ordering::SeqCst), 1);
    let other = s
        .gateway
        .embed_with(&ctx("u1", 3), req().dimensions(2))
        .await
        .unwrap();
    assert_eq!(other.cache, CacheStatus::Miss);
    // Chat is not cached by this configuration.
    let chat = s
        .gateway
        .generate_with(&ctx("u1", 4), ask("hi"))
        .await
        .unwrap();
    assert_eq!(chat.cache, CacheStatus::Skip);
}

#[test]
fn bad_settings_are_refused_by_name() {
    let cases = [
        (
            CacheConfig {
                ttl_secs: 0,
                ..CacheConfig::default()
            },
            "cache.ttl_secs",
        ),
        (
            {
                let mut c = CacheConfig::default();
                c.semantic.enabled = true;
                c
            },
            "cache.semantic.enabled",
        ),
        (
            {
                let mut c = CacheConfig::default();
                c.semantic.threshold = 1.5;
                c
            },
            "cache.semantic.threshold",
        ),
        (
            {
                let mut c = CacheConfig::default();
                c.groups.insert("a".into(), vec!["u".into()]);
                c.groups.insert("b".into(), vec!["u".into()]);
                c
            },
            "cache.groups.b",
        ),
    ];
    for (config, field) in cases {
        let error = config.validate().unwrap_err();
        assert!(error.message().starts_with(field), "{}", error.message());
    }
    let unknown = CacheConfig {
        semantic: crate::cache::SemanticConfig {
            embedding_model: Some("nope/model".into()),
            ..Default::default()
        },
        ..CacheConfig::default()
    };
    let cache = Cache::new(unknown, Arc::new(MemoryCache::new(1024))).unwrap();
    let error = Gateway::new(Registry::new()).with_cache(cache).unwrap_err();
    assert!(
        error
            .message()
            .starts_with("cache.semantic.embedding_model"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn images_are_cached_only_with_a_pinned_seed_where_the_operator_enables_it() {
    let mut config = CacheConfig::default();
    config.images.enabled = true;
    let s = setup(config);
    let draw = |seed: Option<i64>| {
        let mut req = gateway_core::ImageRequest::new("gemini/flash", "a cat");
        req.seed = seed;
        req
    };
    let bytes = |r: &gateway_core::ImageResponse| match &r.images[0] {
        gateway_core::MediaOutput::Bytes { data, .. } => data.to_vec(),
        other => panic!("{other:?}"),
    };
    let first = s
        .gateway
        .generate_image_with(&ctx("u1", 1), draw(Some(7)))
        .await
        .unwrap();
    assert_eq!(first.cache, CacheStatus::Miss);
    settle_writes().await;
    let again = s
        .gateway
        .generate_image_with(&ctx("u1", 2), draw(Some(7)))
        .await
        .unwrap();
    assert!(again.cache.is_hit());
    assert_eq!(bytes(&again.value), bytes(&first.value));
    let other_seed = s
        .gateway
        .generate_image_with(&ctx("u1", 3), draw(Some(8)))
        .await
        .unwrap();
    assert_eq!(other_seed.cache, CacheStatus::Miss);
    // Without a seed an image is meant to differ: never cached, even when asked.
    let mut forced = ctx("u1", 4);
    forced.cache.mode = CacheMode::Exact;
    for n in 0..2 {
        let unseeded = s
            .gateway
            .generate_image_with(&forced, draw(None))
            .await
            .unwrap();
        assert_eq!(unseeded.cache, CacheStatus::Skip, "try {n}");
        settle_writes().await;
    }
    assert_eq!(s.gemini.calls(), 4);

    // Not enabled by the operator: a request cannot turn it on.
    let s = setup(CacheConfig::default());
    for n in 0..2 {
        let got = s
            .gateway
            .generate_image_with(&forced, draw(Some(7)))
            .await
            .unwrap();
        assert_eq!(got.cache, CacheStatus::Skip, "try {n}");
        settle_writes().await;
    }
}
