//! Plan admission before a call and usage settlement after it, for blocking answers and streams.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::Stream;
use gateway_core::accounting::estimate_tokens;
use gateway_core::{
    Accounting, Admission, Amount, Cost, Error, Modality, Outcome, Reservation, TextChunk,
    TextPrice, TextRequest, TextStream, TokenUsage, UsageRecord,
};

/// Who is calling and under which request id, for plan checks and the usage log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The gateway's id for this request (shown to the client, written to the usage log).
    pub request_id: String,
    /// The calling user; required when the gateway has an [`Accounting`].
    pub user_id: Option<String>,
    /// The total time the request may take (default: the routing configuration's deadline).
    pub deadline: Option<Duration>,
    /// Routes (or aliases) to try after the model's own, in order.
    pub fallbacks: Vec<String>,
}

impl CallContext {
    /// A context for `user_id`'s request `request_id`.
    pub fn new(request_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            user_id: Some(user_id.into()),
            ..Self::default()
        }
    }
}

/// An answer, the route that served it, and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Metered<T> {
    /// The answer.
    pub value: T,
    /// The route that served it, `<provider>/<model id>` (after any fallback).
    pub route: String,
    /// Its exact cost, or `None` when the pricing catalog has no price for the model (and for
    /// a stream, whose cost is known only at its end: see its last usage chunk).
    pub cost: Option<Cost>,
    /// Retries it took, across fallback routes.
    pub retries: u32,
}

/// Everything needed to write one usage record for a text call.
#[derive(Clone)]
pub(crate) struct TextMeter {
    pub(crate) accounting: Option<Arc<dyn Accounting>>,
    pub(crate) reservation: Option<Reservation>,
    pub(crate) request_id: String,
    pub(crate) user_id: String,
    pub(crate) provider: &'static str,
    pub(crate) model: String,
    pub(crate) operation: &'static str,
    pub(crate) prompt_tokens: u64,
    pub(crate) price: Option<TextPrice>,
    pub(crate) pricing_version: String,
    pub(crate) started: Instant,
    pub(crate) attempts: Vec<gateway_core::Attempt>,
}

/// The estimated prompt size of `req`: its text plus a few tokens of framing per message.
pub(crate) fn prompt_estimate(req: &TextRequest) -> u64 {
    req.messages
        .iter()
        .map(|m| estimate_tokens(&m.content) + 4)
        .sum()
}

/// The admission for a text request routed to `provider`'s `model`.
pub(crate) fn text_admission(
    ctx: &CallContext,
    user_id: &str,
    provider: &'static str,
    req: &TextRequest,
    operation: &'static str,
    price: Option<&TextPrice>,
) -> Admission {
    let prompt = prompt_estimate(req);
    let output = u64::from(req.max_tokens.unwrap_or(0));
    let usage = TokenUsage {
        input_tokens: prompt,
        output_tokens: output,
        ..TokenUsage::default()
    };
    Admission {
        request_id: ctx.request_id.clone(),
        user_id: user_id.to_owned(),
        provider,
        model: req.model.clone(),
        modality: Modality::Text,
        operation,
        estimate: Amount {
            requests: 1,
            tokens: prompt + output,
            units: 0,
            cost: price.map(|p| p.cost(&usage)),
        },
        max_tokens: req.max_tokens,
        output_price: price.map(|p| p.base.output),
        priced: price.is_some(),
    }
}

/// Warns once per process and model that a model has no price, so its usage is logged with
/// cost unknown (never a guessed cost).
fn warn_unpriced(provider: &'static str, model: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let name = format!("{provider}/{model}");
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !warned.contains(&name) {
        tracing::warn!(model = %name, "no price in the pricing catalog: usage is logged with cost unknown");
        warned.push(name);
    }
}

impl TextMeter {
    /// The meter of a fallback route: the reservation stays, the usage is that route's.
    pub(crate) fn retarget(
        &mut self,
        provider: &'static str,
        model: &str,
        price: Option<TextPrice>,
    ) {
        self.provider = provider;
        self.model = model.to_owned();
        self.price = price;
    }

    pub(crate) fn with_attempts(mut self, attempts: Vec<gateway_core::Attempt>) -> Self {
        self.attempts = attempts;
        self
    }

    pub(crate) fn cost(&self, usage: &TokenUsage) -> Option<Cost> {
        if self.price.is_none() {
            warn_unpriced(self.provider, &self.model);
        }
        self.price.map(|p| p.cost(usage))
    }

    /// The record of a call that ended with `usage` (or failed with `error`).
    pub(crate) fn record(
        &self,
        usage: TokenUsage,
        estimated: bool,
        error: Option<&Error>,
        billable: bool,
        retries: u32,
        ttft: Option<Duration>,
    ) -> UsageRecord {
        let outcome = match error {
            None => Outcome::Ok,
            Some(e) => Outcome::Failed {
                kind: e.kind().as_str().to_owned(),
                message: e.to_string(),
            },
        };
        UsageRecord {
            request_id: self.request_id.clone(),
            user_id: self.user_id.clone(),
            provider: self.provider,
            model: self.model.clone(),
            modality: Modality::Text,
            operation: self.operation,
            outcome,
            tokens: usage,
            units: 0,
            cost: if billable {
                self.cost(&usage)
            } else {
                Some(Cost::ZERO)
            },
            pricing_version: self.pricing_version.clone(),
            estimated,
            billable,
            latency: self.started.elapsed(),
            time_to_first_token: ttft,
            retries,
            cached: false,
            attempts: self.attempts.clone(),
        }
    }

    /// Settles (when there is an accounting) and logs a failure to do so: the reservation then
    /// stays, and recovery settles it at its estimate, so nothing goes unaccounted.
    pub(crate) fn settle(&self, record: UsageRecord) -> BoxFuture<'static, ()> {
        let (Some(accounting), Some(reservation)) =
            (self.accounting.clone(), self.reservation.clone())
        else {
            return Box::pin(async {});
        };
        Box::pin(async move {
            let request_id = record.request_id.clone();
            if let Err(e) = accounting.settle(reservation, record).await {
                tracing::error!(request_id, error = %e, "usage not settled; recovery will settle the reservation at its estimate");
            }
        })
    }
}

/// A text stream that settles its usage when it ends, breaks off, or is dropped by its client.
///
/// When the provider never reported usage, the stream counts the output it saw (and the prompt
/// estimate), yields that as a last [`TextChunk::Usage`], and marks the record as estimated: a
/// streamed request is never logged at zero cost.
pub(crate) struct MeteredStream {
    inner: TextStream,
    meter: TextMeter,
    retries: u32,
    output_bytes: usize,
    usage: Option<TokenUsage>,
    first_token: Option<Duration>,
    state: State,
}

enum State {
    Streaming,
    /// The last usage chunk to yield before settling.
    Closing(Option<TokenUsage>),
    Settling(BoxFuture<'static, ()>, Option<Error>),
    Done,
}

impl MeteredStream {
    pub(crate) fn new(inner: TextStream, meter: TextMeter, retries: u32) -> Self {
        Self {
            inner,
            meter,
            retries,
            output_bytes: 0,
            usage: None,
            first_token: None,
            state: State::Streaming,
        }
    }

    /// The usage to record: the provider's, or a local count marked as estimated.
    fn final_usage(&self) -> (TokenUsage, bool) {
        match self.usage {
            Some(u) => (u, false),
            None => (
                TokenUsage {
                    input_tokens: self.meter.prompt_tokens,
                    output_tokens: (self.output_bytes as u64).div_ceil(4),
                    ..TokenUsage::default()
                },
                true,
            ),
        }
    }
}

impl Stream for MeteredStream {
    type Item = gateway_core::Result<TextChunk>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Streaming => match this.inner.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(chunk))) => {
                        match &chunk {
                            TextChunk::Delta(text) => {
                                this.first_token
                                    .get_or_insert_with(|| this.meter.started.elapsed());
                                this.output_bytes += text.len();
                            }
                            TextChunk::Usage(u) => this.usage = Some(*u),
                            TextChunk::Finish(_) => {}
                        }
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    Poll::Ready(Some(Err(error))) => {
                        // The provider did work before breaking off: charge what was produced.
                        let (usage, estimated) = this.final_usage();
                        let record = this.meter.record(
                            usage,
                            estimated,
                            Some(&error),
                            true,
                            this.retries,
                            this.first_token,
                        );
                        this.state = State::Settling(this.meter.settle(record), Some(error));
                    }
                    Poll::Ready(None) => {
                        let (usage, estimated) = this.final_usage();
                        this.state = State::Closing(estimated.then_some(usage));
                    }
                },
                State::Closing(last_usage) => {
                    if let Some(usage) = last_usage.take() {
                        return Poll::Ready(Some(Ok(TextChunk::Usage(usage))));
                    }
                    let (usage, estimated) = this.final_usage();
                    let record = this.meter.record(
                        usage,
                        estimated,
                        None,
                        true,
                        this.retries,
                        this.first_token,
                    );
                    this.state = State::Settling(this.meter.settle(record), None);
                }
                State::Settling(settle, error) => {
                    if settle.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let error = error.take();
                    this.state = State::Done;
                    if let Some(error) = error {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        let pending = match std::mem::replace(&mut self.state, State::Done) {
            State::Closing(_) => {
                // The provider finished; only the last chunk went unread.
                let (usage, estimated) = self.final_usage();
                let record =
                    self.meter
                        .record(usage, estimated, None, true, self.retries, self.first_token);
                Some(self.meter.settle(record))
            }
            State::Streaming => {
                // The client went away mid-stream: charge what was produced so far.
                let (usage, estimated) = self.final_usage();
                let gone = Error::new(
                    gateway_core::ErrorKind::StreamInterrupted,
                    "the client disconnected mid-stream",
                );
                let record = self.meter.record(
                    usage,
                    estimated,
                    Some(&gone),
                    true,
                    self.retries,
                    self.first_token,
                );
                Some(self.meter.settle(record))
            }
            State::Settling(settle, _) => Some(settle),
            State::Done => None,
        };
        if let Some(settle) = pending {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(settle);
                }
                Err(_) => tracing::error!(
                    request_id = self.meter.request_id,
                    "stream dropped outside a runtime: recovery will settle its reservation at the estimate"
                ),
            }
        }
    }
}
