//! The attempt loop on its own: fake providers that answer from a script, and a fake
//! `Accounting` that records what it is asked, so each rule of the loop is tested without HTTP.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use gateway_core::{
    Accounting, Admission, Amount, Billing, Charge, Cost, EmbeddingCaps, EmbeddingModel,
    EmbeddingRequest, EmbeddingResponse, Error, ErrorKind, FinishReason, Message, Modality,
    Outcome, PriceUnit, Registry, Reservation, Result, RouteId, SearchProvider, SearchRequest,
    SearchResponse, SearchResult, TextCaps, TextChunk, TextModel, TextRequest, TextResponse,
    TextStream, TokenUsage, UsageRecord,
};
use gateway_core::{
    ImageCaps, ImageEditRequest, ImageModel, ImageRequest, ImageResponse, MediaInput, MediaOutput,
    PriceCatalog, SpeechModel, SpeechRequest, SpeechResponse, TranscriptionModel,
    TranscriptionRequest, TranscriptionResponse, Usage,
};

use super::{Gateway, RetryPolicy};
use crate::metering::CallContext;
use crate::routing::RoutingConfig;

/// What a scripted call does.
enum Step {
    Answer(&'static str),
    Fail(ErrorKind),
    /// A failure after which the provider may have acted (a lost job submit).
    FailInDoubt(ErrorKind),
    Hang,
}

/// A provider that answers each call with the next step of its script (the last repeats).
struct Scripted {
    provider: &'static str,
    steps: Mutex<VecDeque<Step>>,
    calls: AtomicU32,
    caps: TextCaps,
    usage: TokenUsage,
    /// The `max_tokens` of each chat request it got.
    max_tokens: Mutex<Vec<Option<u32>>>,
}

impl Scripted {
    fn new(provider: &'static str, steps: Vec<Step>) -> Arc<Self> {
        Arc::new(Self {
            provider,
            steps: Mutex::new(steps.into()),
            calls: AtomicU32::new(0),
            caps: TextCaps::default(),
            usage: TokenUsage {
                input_tokens: 7,
                output_tokens: 3,
                ..TokenUsage::default()
            },
            max_tokens: Mutex::default(),
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    async fn next(&self) -> Result<&'static str> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = {
            let mut steps = self.steps.lock().unwrap();
            if steps.len() > 1 {
                steps.pop_front()
            } else {
                steps.front().map(|s| match s {
                    Step::Answer(a) => Step::Answer(a),
                    Step::Fail(k) => Step::Fail(k.clone()),
                    Step::FailInDoubt(k) => Step::FailInDoubt(k.clone()),
                    Step::Hang => Step::Hang,
                })
            }
        };
        match step {
            Some(Step::Answer(text)) => Ok(text),
            Some(Step::Fail(kind)) => {
                Err(Error::new(kind, "scripted failure").with_provider(self.provider))
            }
            Some(Step::FailInDoubt(kind)) => Err(Error::new(kind, "scripted failure")
                .with_provider(self.provider)
                .in_doubt()),
            Some(Step::Hang) | None => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok("too late")
            }
        }
    }
}

impl TextModel for Scripted {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn capabilities(&self) -> TextCaps {
        self.caps
    }

    async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        self.max_tokens.lock().unwrap().push(req.max_tokens);
        let text = self.next().await?;
        Ok(TextResponse::new(
            req.model,
            text,
            FinishReason::Stop,
            self.usage,
        ))
    }

    async fn stream(&self, _req: TextRequest) -> Result<TextStream> {
        let text = self.next().await?;
        let chunks: Vec<Result<TextChunk>> = vec![
            Ok(TextChunk::Delta(text.to_owned())),
            Ok(TextChunk::Delta(" and more".to_owned())),
        ];
        // Never ends by itself: the test drops it mid-way.
        Ok(futures_util::stream::iter(chunks)
            .chain(futures_util::stream::pending())
            .boxed())
    }
}

impl EmbeddingModel for Scripted {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn embedding_capabilities(&self) -> EmbeddingCaps {
        EmbeddingCaps::new(2, false)
    }

    async fn embed(&self, req: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.next().await?;
        let vectors = req.inputs.iter().map(|_| vec![0.5, 0.25]).collect();
        // Reports no token counts, as Gemini's embeddings often do.
        Ok(EmbeddingResponse::new(
            req.model,
            vectors,
            TokenUsage::default(),
        ))
    }
}

impl SearchProvider for Scripted {
    fn provider(&self) -> &'static str {
        self.provider
    }

    /// `alpha` cannot rank by freshness: an option it refuses before any call.
    fn check(&self, req: &SearchRequest) -> Result<()> {
        if self.provider == "alpha" && req.options.contains_key("freshness") {
            return Err(
                Error::unsupported("alpha has no freshness").with_param("options.freshness")
            );
        }
        Ok(())
    }

    fn billing(&self, _req: &SearchRequest) -> Billing {
        Billing::new(2, vec![Charge::new(PriceUnit::Search, 1)])
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let title = self.next().await?;
        let result = SearchResult::new(title, "https://example.com/", "a snippet");
        // What the provider reported: three credits, and its own statement of the cost.
        let billing = Billing::new(3, vec![Charge::new(PriceUnit::Credit, 3)])
            .reported_cost(Cost::from_nanos(24_000_000));
        Ok(SearchResponse::new(
            req.model,
            req.query,
            vec![result],
            billing,
        ))
    }
}

/// The signature of a PNG: what the scripted image provider draws.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

impl ImageModel for Scripted {
    fn provider(&self) -> &'static str {
        self.provider
    }

    /// Two images at most; edits too.
    fn image_capabilities(&self) -> ImageCaps {
        let mut caps = ImageCaps::default();
        caps.max_n = 2;
        caps.editing = true;
        caps
    }

    /// Offers only square sizes: another is the caller's mistake, named.
    fn check_generation(&self, req: &ImageRequest) -> Result<()> {
        self.image_capabilities()
            .check_generation(self.provider, req)?;
        match req.size.as_deref() {
            Some(size) if size.split_once('x').is_some_and(|(w, h)| w != h) => {
                Err(Error::invalid_request(format!("no size {size}")).with_param("size"))
            }
            _ => Ok(()),
        }
    }

    async fn generate_image(&self, req: ImageRequest) -> Result<ImageResponse> {
        self.next().await?;
        let images = (0..req.count())
            .map(|_| MediaOutput::Bytes {
                data: PNG.into(),
                mime: "image/png".into(),
            })
            .collect();
        Ok(ImageResponse::new(req.model, images, Usage::default()))
    }

    async fn edit_image(&self, req: ImageEditRequest) -> Result<ImageResponse> {
        self.next().await?;
        let image = MediaOutput::Bytes {
            data: PNG.into(),
            mime: "image/png".into(),
        };
        Ok(ImageResponse::new(req.model, vec![image], Usage::default()))
    }
}

impl SpeechModel for Scripted {
    fn provider(&self) -> &'static str {
        self.provider
    }

    /// Only the voice `kore` exists: another is the caller's mistake, named.
    fn check_speech(&self, req: &SpeechRequest) -> Result<()> {
        match req.voice.as_deref() {
            Some(v) if v != "kore" => {
                Err(Error::invalid_request(format!("no voice {v}")).with_param("voice"))
            }
            _ => Ok(()),
        }
    }

    async fn speak(&self, req: SpeechRequest) -> Result<SpeechResponse> {
        self.next().await?;
        // Billed as three seconds of audio, whatever was estimated.
        let billing = Billing::new(3, vec![Charge::new(PriceUnit::AudioSecond, 3)]);
        Ok(
            SpeechResponse::new(req.model, b"RIFF"[..].into(), "audio/wav", Usage::default())
                .billing(billing),
        )
    }
}

impl TranscriptionModel for Scripted {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn transcription_billing(&self, _req: &TranscriptionRequest) -> Billing {
        Billing::new(10, vec![Charge::new(PriceUnit::AudioSecond, 10)])
    }

    async fn transcribe(&self, req: TranscriptionRequest) -> Result<TranscriptionResponse> {
        let text = self.next().await?;
        let billing = Billing::new(7, vec![Charge::new(PriceUnit::AudioSecond, 7)]);
        Ok(TranscriptionResponse::new(req.model, text, Usage::default()).billing(billing))
    }
}

/// Records admissions and settlements; refuses what `refuse` says.
#[derive(Default)]
struct Ledger {
    admitted: Mutex<Vec<Admission>>,
    permitted: Mutex<Vec<Admission>>,
    settled: Mutex<Vec<UsageRecord>>,
    /// `(route, kind)`: refuse admissions (and permits) on that route with that kind.
    refuse: Mutex<Vec<(RouteId, ErrorKind)>>,
    /// The output bound reservations of open-ended requests carry, as a plan's would.
    bound: Option<u64>,
    /// What reservations were grown to, for pricier fallbacks.
    extended: Mutex<Vec<Amount>>,
    /// The most a reservation may grow to cost, as a plan's money left would allow.
    budget: Option<Cost>,
}

impl Ledger {
    fn refusal(&self, a: &Admission) -> Option<Error> {
        self.refuse
            .lock()
            .unwrap()
            .iter()
            .find(|(r, _)| *r == a.route)
            .map(|(_, k)| Error::new(k.clone(), "refused by the plan"))
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
                output_bound: self.bound.filter(|_| admission.open_output.is_some()),
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
        Box::pin(async move {
            if let Some(e) = self.refusal(&admission) {
                return Err(e);
            }
            self.permitted.lock().unwrap().push(admission);
            Ok(())
        })
    }

    fn extend(&self, reservation: Reservation, to: Amount) -> BoxFuture<'_, Result<Reservation>> {
        Box::pin(async move {
            if let (Some(budget), Some(cost)) = (self.budget, to.cost)
                && cost > budget
            {
                return Err(Error::new(ErrorKind::QuotaExceeded, "no money left for it"));
            }
            self.extended.lock().unwrap().push(to);
            Ok(Reservation {
                estimate: to,
                ..reservation
            })
        })
    }
}

fn route(name: &str) -> RouteId {
    let (p, m) = name.split_once('/').unwrap();
    let p = ["alpha", "beta"].into_iter().find(|k| *k == p).unwrap();
    RouteId::new(p, m)
}

/// A gateway over `providers` with quick retries, an alias `both` (alpha then beta) when there
/// are two, and `ledger`.
fn gateway(providers: &[Arc<Scripted>], ledger: &Arc<Ledger>) -> Gateway {
    let mut registry = Registry::new();
    for p in providers {
        registry.add_text(p.clone());
        registry.add_embedding(p.clone());
        registry.add_search(p.clone());
        registry.add_image(p.clone());
        registry.add_speech(p.clone());
        registry.add_transcription(p.clone());
    }
    let alias = if providers.len() > 1 {
        "[aliases.both]\nroutes = [\"alpha/a\", \"beta/b\"]\n"
    } else {
        ""
    };
    let routing: RoutingConfig = toml::from_str(&format!("deadline_ms = 2000\n{alias}")).unwrap();
    Gateway::new(registry)
        .with_retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_retry_after: Duration::from_secs(1),
        })
        .with_routing(routing)
        .unwrap()
        .with_accounting(ledger.clone())
}

fn ctx() -> CallContext {
    CallContext::new("req1", "user1")
}

fn outcomes(record: &UsageRecord) -> Vec<String> {
    record
        .attempts
        .iter()
        .map(|a| format!("{} {}", a.route, a.outcome.as_str()))
        .collect()
}

#[tokio::test]
async fn retries_a_retryable_failure_and_records_every_attempt() {
    let alpha = Scripted::new(
        "alpha",
        vec![
            Step::Fail(ErrorKind::Upstream { status: 503 }),
            Step::Answer("hi"),
        ],
    );
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(std::slice::from_ref(&alpha), &ledger);
    let answer = gw
        .generate_with(&ctx(), TextRequest::new("alpha/a").user("x"))
        .await
        .unwrap();
    assert_eq!(answer.value.content, "hi");
    assert_eq!(answer.retries, 1);
    assert_eq!(alpha.calls(), 2);
    let settled = ledger.settled();
    assert_eq!(settled.len(), 1, "settled exactly once");
    assert_eq!(outcomes(&settled[0]), ["alpha/a upstream", "alpha/a ok"]);
    assert!(settled[0].billable && !settled[0].estimated);
    assert_eq!(settled[0].tokens.total_tokens(), 10);
    let admitted = ledger.admitted.lock().unwrap();
    assert_eq!(admitted.len(), 1);
    assert_eq!(
        (admitted[0].modality, admitted[0].operation),
        (Modality::Text, "chat")
    );
}

#[tokio::test]
async fn an_open_output_is_sent_the_bound_its_reservation_covers_on_every_attempt() {
    let alpha = Scripted::new(
        "alpha",
        vec![
            Step::Fail(ErrorKind::Upstream { status: 503 }),
            Step::Answer("hi"),
        ],
    );
    let ledger = Arc::new(Ledger {
        bound: Some(77),
        ..Ledger::default()
    });
    let gw = gateway(std::slice::from_ref(&alpha), &ledger);
    gw.generate_with(&ctx(), TextRequest::new("alpha/a").user("x"))
        .await
        .unwrap();
    // The retry is bounded too.
    assert_eq!(*alpha.max_tokens.lock().unwrap(), [Some(77), Some(77)]);
    // A caller's own bound is theirs: it is what was reserved.
    gw.generate_with(&ctx(), TextRequest::new("alpha/a").user("x").max_tokens(5))
        .await
        .unwrap();
    assert_eq!(alpha.max_tokens.lock().unwrap().last(), Some(&Some(5)));
}

#[tokio::test]
async fn the_callers_mistake_ends_the_request_without_retry_or_fallback() {
    let alpha = Scripted::new("alpha", vec![Step::Fail(ErrorKind::InvalidRequest)]);
    let beta = Scripted::new("beta", vec![Step::Answer("never")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
    let err = gw
        .generate_with(&ctx(), TextRequest::new("both").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    assert_eq!((alpha.calls(), beta.calls()), (1, 0));
    let settled = ledger.settled();
    assert_eq!(settled.len(), 1);
    assert!(
        !settled[0].billable,
        "a refused call releases its reservation"
    );
    assert!(matches!(settled[0].outcome, Outcome::Failed { .. }));
}

#[tokio::test]
async fn an_alias_falls_back_after_the_retries_of_its_first_route() {
    let alpha = Scripted::new(
        "alpha",
        vec![Step::Fail(ErrorKind::Upstream { status: 500 })],
    );
    let beta = Scripted::new("beta", vec![Step::Answer("from beta")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
    let answer = gw
        .generate_with(&ctx(), TextRequest::new("both").user("x"))
        .await
        .unwrap();
    assert_eq!(answer.value.content, "from beta");
    assert_eq!(answer.route, route("beta/b"));
    assert_eq!(alpha.calls(), 3, "first attempt and two retries");
    let settled = ledger.settled();
    assert_eq!(settled[0].route, route("beta/b"));
    assert_eq!(
        outcomes(&settled[0]),
        [
            "alpha/a upstream",
            "alpha/a upstream",
            "alpha/a upstream",
            "beta/b ok"
        ]
    );
    // Admitted once on the first route; the fallback only had to be allowed.
    assert_eq!(ledger.admitted.lock().unwrap().len(), 1);
    assert_eq!(ledger.permitted.lock().unwrap()[0].route, route("beta/b"));
}

#[tokio::test]
async fn a_route_that_cannot_do_the_request_is_skipped_without_a_call() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("never")]);
    let mut beta = Scripted::new("beta", vec![Step::Answer("{}")]);
    Arc::get_mut(&mut beta).unwrap().caps.json_object = true;
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
    let json = TextRequest::new("both")
        .user("x")
        .response_format(gateway_core::ResponseFormat::JsonObject);
    let answer = gw.generate_with(&ctx(), json.clone()).await.unwrap();
    assert_eq!((alpha.calls(), beta.calls()), (0, 1));
    assert_eq!(
        outcomes(&ledger.settled()[0]),
        ["alpha/a unsupported", "beta/b ok"]
    );
    assert_eq!(answer.value.content, "{}");
    // The only route of a request that it cannot do: refused, naming the field.
    let mut only = json;
    only.model = "alpha/a".into();
    let err = gw.generate_with(&ctx(), only).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(err.param(), Some("response_format"));
}

#[tokio::test]
async fn tools_and_n_are_estimated_in_full_and_routed_to_a_provider_that_has_them() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("never")]);
    let mut beta = Scripted::new("beta", vec![Step::Answer("sunny")]);
    {
        let caps = &mut Arc::get_mut(&mut beta).unwrap().caps;
        caps.tools = true;
        caps.max_n = 4;
    }
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
        "required": ["city"]
    });
    let plain = TextRequest::new("both").user("Weather in Paris?");
    let with_tools = plain
        .clone()
        .tool(gateway_core::Tool::function("get_weather", schema).description("Weather now"))
        .message(Message::assistant_calls(
            "",
            vec![gateway_core::ToolCall::new(
                "call_1",
                "get_weather",
                r#"{"city":"Paris"}"#,
            )],
        ))
        .message(Message::tool_result("call_1", "18 degrees and sunny"))
        .n(3)
        .max_tokens(10);
    gw.generate_with(&ctx(), with_tools.clone()).await.unwrap();
    // alpha has no tools: skipped without a call, as a request it cannot do.
    assert_eq!((alpha.calls(), beta.calls()), (0, 1));
    assert_eq!(
        outcomes(&ledger.settled()[0]),
        ["alpha/a unsupported", "beta/b ok"]
    );
    gw.generate_with(&ctx(), plain.clone().max_tokens(10))
        .await
        .unwrap();
    let admitted = ledger.admitted.lock().unwrap().clone();
    let (full, bare) = (admitted[0].estimate.tokens, admitted[1].estimate.tokens);
    // Three answers of up to 10 tokens each, and a prompt that counts the tool's schema, the
    // earlier call and its result.
    assert!(full >= bare - 10 + 30 + 25, "{full} vs {bare}");
    // Without `max_tokens` each of the `n` answers may take the plan's default.
    let mut open = with_tools;
    open.max_tokens = None;
    gw.generate_with(&ctx(), open).await.unwrap();
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(admitted[2].open_output.map(|o| o.answers), Some(3));
}

#[tokio::test]
async fn a_plan_refusal_reaches_no_provider_and_a_fallback_must_be_in_the_plan() {
    let alpha = Scripted::new(
        "alpha",
        vec![Step::Fail(ErrorKind::Upstream { status: 503 })],
    );
    let beta = Scripted::new("beta", vec![Step::Answer("from beta")]);
    let ledger = Arc::new(Ledger::default());
    ledger
        .refuse
        .lock()
        .unwrap()
        .push((route("beta/b"), ErrorKind::PermissionDenied));
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
    let err = gw
        .generate_with(&ctx(), TextRequest::new("beta/b").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PermissionDenied);
    assert_eq!(beta.calls(), 0);
    assert!(ledger.settled().is_empty(), "nothing was admitted");
    let err = gw
        .generate_with(&ctx(), TextRequest::new("both").user("x"))
        .await
        .unwrap_err();
    assert_eq!(beta.calls(), 0, "the fallback outside the plan was skipped");
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: 503 });
    let last = ledger.settled().pop().unwrap();
    assert_eq!(
        last.attempts.last().unwrap().outcome,
        gateway_core::AttemptOutcome::Skipped(gateway_core::Skip::NotInPlan)
    );
}

#[tokio::test]
async fn the_deadline_ends_a_hanging_call_without_opening_the_circuit() {
    let alpha = Scripted::new("alpha", vec![Step::Hang]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(std::slice::from_ref(&alpha), &ledger);
    let mut short = ctx();
    short.deadline = Some(Duration::from_millis(50));
    for _ in 0..8 {
        let err = gw
            .generate_with(&short, TextRequest::new("alpha/a").user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Timeout);
    }
    assert!(
        gw.breakers().snapshots().iter().all(|b| b.state
            == crate::breaker::BreakerState::Closed {
                consecutive_failures: 0,
                window_calls: 0,
                window_failures: 0
            }),
        "{:?}",
        gw.breakers().snapshots()
    );
}

#[tokio::test]
async fn an_open_circuit_moves_on_to_the_next_route() {
    let alpha = Scripted::new("alpha", vec![Step::Fail(ErrorKind::Connect)]);
    let beta = Scripted::new("beta", vec![Step::Answer("from beta")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
    // The default breaker opens after 5 failures in a row.
    for _ in 0..3 {
        gw.generate_with(&ctx(), TextRequest::new("both").user("x"))
            .await
            .unwrap();
    }
    let before = alpha.calls();
    gw.generate_with(&ctx(), TextRequest::new("both").user("x"))
        .await
        .unwrap();
    assert_eq!(alpha.calls(), before, "no call through an open circuit");
    let last = ledger.settled().pop().unwrap();
    assert_eq!(outcomes(&last), ["alpha/a circuit_open", "beta/b ok"]);
}

#[tokio::test]
async fn embeddings_run_the_same_loop_planned_as_text_and_estimated_when_unreported() {
    let alpha = Scripted::new(
        "alpha",
        vec![Step::Fail(ErrorKind::Timeout), Step::Answer("")],
    );
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(std::slice::from_ref(&alpha), &ledger);
    let req = EmbeddingRequest::new("alpha/a")
        .input("abcdefgh")
        .input("ijkl");
    let out = gw.embed_with(&ctx(), req).await.unwrap();
    assert_eq!(out.value.embeddings.len(), 2);
    assert_eq!(out.retries, 1);
    assert!(out.estimated);
    assert_eq!(
        out.usage.unwrap().tokens.input_tokens,
        3,
        "2 + 1 tokens estimated"
    );
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(
        (admitted[0].modality, admitted[0].operation),
        (Modality::Text, "embeddings")
    );
    assert_eq!(admitted[0].estimate.tokens, 3);
    assert!(admitted[0].open_output.is_none());
    let settled = ledger.settled();
    assert!(settled[0].estimated && settled[0].billable);
    // More inputs than the provider takes in one call: refused before any call.
    let calls = alpha.calls();
    let three = EmbeddingRequest::new("alpha/a")
        .input("a")
        .input("b")
        .input("c");
    let err = gw.embed_with(&ctx(), three).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.param()),
        (&ErrorKind::Unsupported, Some("input"))
    );
    assert_eq!(alpha.calls(), calls);
}

#[tokio::test]
async fn a_provider_that_does_not_serve_the_modality_is_named() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("x")]);
    let mut registry = Registry::new();
    registry.add_text(alpha);
    let gw = Gateway::new(registry);
    let err = gw
        .embed(EmbeddingRequest::new("alpha/a").input("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(err.message().contains("does not serve embeddings"), "{err}");
    let err = gw
        .generate(TextRequest::new("nope/x").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn a_fallback_of_an_unknown_provider_is_refused_by_name() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("x")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(std::slice::from_ref(&alpha), &ledger);
    let mut c = ctx();
    c.fallbacks = vec!["alpha/b".into(), "nowhere/x".into()];
    let err = gw
        .generate_with(&c, TextRequest::new("alpha/a").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.param(), Some("fallbacks[1]"));
    assert_eq!(alpha.calls(), 0);
}

#[tokio::test]
async fn a_stream_dropped_by_its_client_is_settled_for_what_it_produced() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("hello")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(std::slice::from_ref(&alpha), &ledger);
    let mut stream = gw
        .stream_with(&ctx(), TextRequest::new("alpha/a").user("x"))
        .await
        .unwrap()
        .value;
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        TextChunk::Delta("hello".into())
    );
    drop(stream);
    // The settlement is spawned on drop.
    for _ in 0..100 {
        if !ledger.settled().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let settled = ledger.settled();
    assert_eq!(settled.len(), 1);
    let record = &settled[0];
    assert!(record.billable && record.estimated);
    assert_eq!(record.operation, "chat.stream");
    assert_eq!(record.tokens.output_tokens, 2, "`hello` counted locally");
    assert!(
        matches!(&record.outcome, Outcome::Failed { kind, .. } if kind == "stream_interrupted")
    );
}

#[tokio::test]
async fn search_names_a_provider_plans_its_units_and_charges_what_it_reported() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("from alpha")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(std::slice::from_ref(&alpha), &ledger);
    let out = gw
        .search_with(&ctx(), SearchRequest::new("alpha", "rust"))
        .await
        .unwrap();
    assert_eq!(
        out.route,
        route("alpha/search"),
        "a bare provider is its search endpoint"
    );
    assert_eq!(out.value.results[0].title, "from alpha");
    assert_eq!(
        out.cost,
        Some(Cost::from_nanos(24_000_000)),
        "the reported cost wins"
    );
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(
        (admitted[0].modality, admitted[0].operation),
        (Modality::Search, "search")
    );
    assert_eq!(
        (admitted[0].estimate.requests, admitted[0].estimate.units),
        (1, 2)
    );
    let settled = ledger.settled();
    assert_eq!(
        settled[0].units, 3,
        "settled at the units the provider reported"
    );
    assert_eq!(settled[0].cost, Some(Cost::from_nanos(24_000_000)));
    assert!(!settled[0].estimated);
}

#[tokio::test]
async fn search_falls_back_across_providers_named_bare() {
    let alpha = Scripted::new(
        "alpha",
        vec![Step::Fail(ErrorKind::RateLimited { retry_after: None })],
    );
    let beta = Scripted::new("beta", vec![Step::Answer("from beta")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
    let mut c = ctx();
    c.fallbacks = vec!["beta".into()];
    let out = gw
        .search_with(&c, SearchRequest::new("alpha", "rust"))
        .await
        .unwrap();
    assert_eq!(out.route, route("beta/search"));
    assert_eq!(alpha.calls(), 3);
    // An option the first provider lacks moves on without a call.
    let mut fresh = SearchRequest::new("alpha", "rust");
    fresh.options.insert("freshness".into(), "day".into());
    let before = alpha.calls();
    let out = gw.search_with(&c, fresh.clone()).await.unwrap();
    assert_eq!(out.route, route("beta/search"));
    assert_eq!(alpha.calls(), before);
    // Alone, it is refused naming the option.
    let err = gw.search_with(&ctx(), fresh).await.unwrap_err();
    assert_eq!(err.param(), Some("options.freshness"));
}

/// One reported end: operation, request model, streamed, route, requests reserved.
type Ended = (&'static str, String, bool, String, Option<u64>);

/// Remembers what the gateway reported.
#[derive(Default)]
struct Watcher {
    ended: Mutex<Vec<Ended>>,
    refused: Mutex<Vec<(&'static str, String, String)>>,
}

impl gateway_core::telemetry::Observer for Watcher {
    fn request_ended(&self, end: &gateway_core::telemetry::RequestEnd<'_>) {
        self.ended.lock().unwrap().push((
            end.operation,
            end.request_model.to_owned(),
            end.stream,
            end.record.route.to_string(),
            end.reserved.map(|r| r.requests),
        ));
    }

    fn refused(&self, refusal: &gateway_core::telemetry::Refusal<'_>) {
        self.refused.lock().unwrap().push((
            refusal.operation,
            refusal.request_model.to_owned(),
            refusal.error.kind().as_str().to_owned(),
        ));
    }
}

#[tokio::test]
async fn every_modality_reports_its_end_once() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("hi")]);
    let ledger = Arc::new(Ledger::default());
    ledger
        .refuse
        .lock()
        .unwrap()
        .push((route("alpha/denied"), ErrorKind::PermissionDenied));
    let watcher = Arc::new(Watcher::default());
    let gw = gateway(&[alpha], &ledger).with_observer(watcher.clone());

    gw.generate_with(&ctx(), TextRequest::new("alpha/a").user("hello"))
        .await
        .unwrap();
    gw.embed_with(&ctx(), EmbeddingRequest::new("alpha/e").input("x"))
        .await
        .unwrap();
    gw.search_with(&ctx(), SearchRequest::new("alpha", "rust"))
        .await
        .unwrap();
    let mut stream = gw
        .stream_with(&ctx(), TextRequest::new("alpha/a").user("hello"))
        .await
        .unwrap()
        .value;
    stream.next().await.unwrap().unwrap();
    // Not reported while the stream is open.
    assert_eq!(watcher.ended.lock().unwrap().len(), 3);
    drop(stream);
    let refused = gw
        .generate_with(&ctx(), TextRequest::new("alpha/denied").user("hello"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), &ErrorKind::PermissionDenied);

    let ended = watcher.ended.lock().unwrap().clone();
    let ops: Vec<(&str, &str, bool)> = ended
        .iter()
        .map(|(op, model, stream, _, _)| (*op, model.as_str(), *stream))
        .collect();
    assert_eq!(
        ops,
        [
            ("chat", "a", false),
            ("embeddings", "e", false),
            ("retrieval", "alpha", false),
            ("chat", "a", true),
        ]
    );
    assert!(ended.iter().all(|e| e.4 == Some(1)), "{ended:?}");
    assert_eq!(
        *watcher.refused.lock().unwrap(),
        [("chat", "denied".to_owned(), "permission_denied".to_owned())]
    );
}

/// Images at $0.04 on `alpha/img` and 25 times that on `beta/img`.
fn image_prices() -> PriceCatalog {
    PriceCatalog::from_toml(
        r#"
version = "test"
[[unit]]
provider = "alpha"
model = "img"
unit = "image"
price = "0.04"
[[unit]]
provider = "beta"
model = "img"
unit = "image"
price = "1.00"
"#,
        "test prices",
    )
    .unwrap()
}

#[tokio::test]
async fn images_are_planned_as_images_and_settled_at_their_price() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("drawn")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(std::slice::from_ref(&alpha), &ledger).with_price_overrides(image_prices());
    let mut req = ImageRequest::new("alpha/img", "a lighthouse");
    req.n = Some(2);
    let out = gw.generate_image_with(&ctx(), req).await.unwrap();
    assert_eq!(out.value.images.len(), 2);
    assert_eq!(out.cost, Some(Cost::from_nanos(80_000_000)));
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(
        (admitted[0].modality, admitted[0].operation),
        (Modality::Image, "images.generate")
    );
    assert_eq!(
        (admitted[0].estimate.units, admitted[0].estimate.cost),
        (2, Some(Cost::from_nanos(80_000_000))),
        "reserved before the call: two images at their price"
    );
    let settled = ledger.settled();
    assert_eq!(settled[0].units, 2);
    assert_eq!(settled[0].cost, Some(Cost::from_nanos(80_000_000)));
    assert!(!settled[0].estimated);

    let edit = ImageEditRequest::new("alpha/img", vec![MediaInput::bytes(PNG, "image/png")]);
    let out = gw.edit_image_with(&ctx(), edit).await.unwrap();
    assert_eq!(out.cost, Some(Cost::from_nanos(40_000_000)));
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(admitted[1].operation, "images.edit");
}

#[tokio::test]
async fn an_image_request_the_model_cannot_serve_is_refused_or_moved_on_without_a_call() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("drawn")]);
    let beta = Scripted::new("beta", vec![Step::Answer("drawn")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger).with_price_overrides(image_prices());
    // A size the model does not offer is the caller's mistake: named, no call anywhere.
    let mut req = ImageRequest::new("alpha/img", "a lighthouse");
    req.size = Some("1024x768".into());
    let mut c = ctx();
    c.fallbacks = vec!["beta/img".into()];
    let err = gw.generate_image_with(&c, req).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.param()),
        (&ErrorKind::InvalidRequest, Some("size"))
    );
    // Bytes-only providers refuse `url` by name.
    let mut req = ImageRequest::new("alpha/img", "a lighthouse");
    req.response_format = Some(gateway_core::ImageFormat::Url);
    let err = gw.generate_image_with(&ctx(), req).await.unwrap_err();
    assert_eq!(err.param(), Some("response_format"));
    // `n` above what alpha gives at once is a capability: on to the fallback, unless alone.
    let mut req = ImageRequest::new("alpha/img", "a lighthouse");
    req.n = Some(3);
    let err = gw
        .generate_image_with(&ctx(), req.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.param()),
        (&ErrorKind::Unsupported, Some("n"))
    );
    assert_eq!((alpha.calls(), beta.calls()), (0, 0));
    assert!(
        ledger.admitted.lock().unwrap().is_empty(),
        "nothing reserved"
    );
}

#[tokio::test]
async fn an_image_fallback_to_a_pricier_route_is_charged_at_its_price() {
    let alpha = Scripted::new(
        "alpha",
        vec![Step::Fail(ErrorKind::Upstream { status: 503 })],
    );
    let beta = Scripted::new("beta", vec![Step::Answer("drawn")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger).with_price_overrides(image_prices());
    let mut c = ctx();
    c.fallbacks = vec!["beta/img".into()];
    let out = gw
        .generate_image_with(&c, ImageRequest::new("alpha/img", "a lighthouse"))
        .await
        .unwrap();
    assert_eq!(out.route, route("beta/img"));
    assert_eq!(alpha.calls(), 3, "retried, then fallen back");
    let settled = ledger.settled();
    assert_eq!(settled[0].cost, Some(Cost::from_nanos(1_000_000_000)));
    assert_eq!(settled[0].route, route("beta/img"));
    // Reserved at alpha's price, then grown to beta's before beta was called.
    let extended = ledger.extended.lock().unwrap().clone();
    assert_eq!(extended.len(), 1);
    assert_eq!(extended[0].cost, Some(Cost::from_nanos(1_000_000_000)));

    // With no money left for the difference, the pricier route is skipped, uncalled.
    let alpha = Scripted::new(
        "alpha",
        vec![Step::Fail(ErrorKind::Upstream { status: 503 })],
    );
    let beta = Scripted::new("beta", vec![Step::Answer("drawn")]);
    let ledger = Arc::new(Ledger {
        budget: Some(Cost::from_nanos(500_000_000)),
        ..Ledger::default()
    });
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger).with_price_overrides(image_prices());
    let err = gw
        .generate_image_with(&c, ImageRequest::new("alpha/img", "a lighthouse"))
        .await
        .unwrap_err();
    assert_eq!(beta.calls(), 0, "the pricier route is never called");
    let settled = ledger.settled();
    assert_eq!(settled.len(), 1);
    assert!(
        outcomes(&settled[0]).contains(&"beta/img over_budget".to_owned()),
        "{:?} {err}",
        outcomes(&settled[0])
    );
}

#[tokio::test]
async fn a_failure_in_doubt_is_neither_retried_nor_sent_elsewhere() {
    let alpha = Scripted::new("alpha", vec![Step::FailInDoubt(ErrorKind::Timeout)]);
    let beta = Scripted::new("beta", vec![Step::Answer("drawn")]);
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&[alpha.clone(), beta.clone()], &ledger).with_price_overrides(image_prices());
    let mut c = ctx();
    c.fallbacks = vec!["beta/img".into()];
    let err = gw
        .generate_image_with(&c, ImageRequest::new("alpha/img", "a lighthouse"))
        .await
        .unwrap_err();
    assert!(err.is_in_doubt());
    assert_eq!(
        (alpha.calls(), beta.calls()),
        (1, 0),
        "one submit, no second anywhere"
    );
    let settled = ledger.settled();
    assert_eq!(settled.len(), 1, "the request is settled once");
    // The provider may have made (and billed) the image: charged at what was reserved.
    assert!(settled[0].billable && settled[0].estimated);
    assert_eq!(
        (settled[0].units, settled[0].cost),
        (1, Some(Cost::from_nanos(40_000_000)))
    );
}

#[tokio::test]
async fn speech_both_ways_is_planned_in_audio_units_and_settled_at_what_was_billed() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("hello there")]);
    let ledger = Arc::new(Ledger::default());
    let prices = PriceCatalog::from_toml(
        r#"
version = "test"
[[unit]]
provider = "alpha"
model = "voice"
unit = "character"
price = "0.001"
[[unit]]
provider = "alpha"
model = "voice"
unit = "audio_second"
price = "0.01"
"#,
        "test prices",
    )
    .unwrap();
    let gw = gateway(std::slice::from_ref(&alpha), &ledger).with_price_overrides(prices);

    let out = gw
        .speak_with(&ctx(), SpeechRequest::new("alpha/voice", "hello"))
        .await
        .unwrap();
    assert_eq!(out.value.mime, "audio/wav");
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(
        (admitted[0].modality, admitted[0].operation),
        (Modality::Audio, "audio.speech")
    );
    assert_eq!(
        (admitted[0].estimate.units, admitted[0].estimate.cost),
        (5, Some(Cost::from_nanos(5_000_000))),
        "reserved by default as its five characters"
    );
    assert_eq!(
        out.cost,
        Some(Cost::from_nanos(30_000_000)),
        "settled at 3 s"
    );
    assert_eq!(ledger.settled()[0].units, 3);

    let mut bad = SpeechRequest::new("alpha/voice", "hello");
    bad.voice = Some("alloy".into());
    let err = gw.speak_with(&ctx(), bad).await.unwrap_err();
    assert_eq!(err.param(), Some("voice"));
    assert_eq!(alpha.calls(), 1, "refused before any call");

    let audio = MediaInput::bytes(&b"RIFF....WAVE"[..], "audio/wav");
    let out = gw
        .transcribe_with(&ctx(), TranscriptionRequest::new("alpha/voice", audio))
        .await
        .unwrap();
    assert_eq!(out.value.text, "hello there");
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(
        (admitted[1].operation, admitted[1].estimate.units),
        ("audio.transcriptions", 10)
    );
    assert_eq!(out.cost, Some(Cost::from_nanos(70_000_000)));
    let empty = TranscriptionRequest::new("alpha/voice", MediaInput::bytes(&b""[..], "audio/wav"));
    let err = gw.transcribe_with(&ctx(), empty).await.unwrap_err();
    assert_eq!(err.param(), Some("file"));
}

#[tokio::test]
async fn a_video_job_end_is_reported_once_by_whoever_settles_it() {
    let alpha = Scripted::new("alpha", vec![Step::Answer("hi")]);
    let ledger = Arc::new(Ledger::default());
    let watcher = Arc::new(Watcher::default());
    let gw = gateway(&[alpha], &ledger).with_observer(watcher.clone());
    let route = route("alpha/film");
    let output = gateway_core::VideoOutput::new(
        MediaOutput::Url {
            url: "https://example.com/v.mp4".into(),
            mime: None,
        },
        None,
        Usage::units(5),
    )
    .billing(gateway_core::per_second_billing(5, None));
    let job = super::JobRef {
        request_id: "req-v",
        user_id: "user1",
        route: &route,
        age: Duration::from_secs(30),
        retries: 0,
    };
    let charge = gw
        .video_record(&job, &gateway_core::JobStatus::Completed(output))
        .unwrap();
    assert_eq!(charge.record.units, 5);
    gw.report_video_end("alpha/film", &charge.record);
    let ended = watcher.ended.lock().unwrap().clone();
    assert_eq!(
        ended,
        [(
            "generate_content",
            "alpha/film".to_owned(),
            false,
            "alpha/film".to_owned(),
            None
        )]
    );
}
