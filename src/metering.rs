//! Plan admission before a call and usage settlement after it, for any modality: blocking
//! answers through [`Meter::settle`], streams through [`MeteredStream`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream};
use gateway_core::{
    Accounting, Attempt, Cost, Error, ErrorKind, Modality, Outcome, PriceCatalog, RequestTags,
    Reservation, RouteId, Usage, UsageRecord,
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
    /// The end user and tags the usage-log row keeps.
    pub tags: Arc<RequestTags>,
    /// The caller's plan, reported on the request's span (admission looks the plan up itself).
    pub plan: Option<String>,
    /// Set when the caller sampled this request out of tracing: the gateway then creates no
    /// spans for it (its observer still hears of its end, for metrics).
    pub untraced: bool,
    /// What the request asks of the response cache (by default: what the configuration says).
    pub cache: crate::cache::CacheControl,
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
    /// The route that served it (after any fallback).
    pub route: RouteId,
    /// Its exact cost, or `None` when the pricing catalog has no price for the model (and for
    /// a stream, whose cost is known only at its end: see its last usage chunk).
    pub cost: Option<Cost>,
    /// The usage charged: the provider's, or the gateway's own count when the provider reported
    /// none (then `estimated`). `None` for a stream, whose usage is known only at its end.
    pub usage: Option<Usage>,
    /// Whether `usage` was counted by the gateway rather than reported by the provider.
    pub estimated: bool,
    /// Retries it took, across fallback routes.
    pub retries: u32,
    /// What the response cache did.
    pub cache: crate::cache::CacheStatus,
}

/// Prices a call's usage on a route; each operation brings its own.
pub(crate) type Pricer = fn(&PriceCatalog, &RouteId, &Usage) -> Option<Cost>;

/// Everything needed to write one usage record for a call.
#[derive(Clone)]
pub(crate) struct Meter {
    pub(crate) accounting: Option<Arc<dyn Accounting>>,
    pub(crate) reservation: Option<Reservation>,
    pub(crate) request_id: String,
    pub(crate) user_id: String,
    pub(crate) route: RouteId,
    pub(crate) modality: Modality,
    pub(crate) operation: &'static str,
    /// The estimated prompt, for a usage counted locally.
    pub(crate) prompt_tokens: u64,
    pub(crate) pricing: Arc<PriceCatalog>,
    pub(crate) pricer: Pricer,
    pub(crate) started: Instant,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) tags: Arc<RequestTags>,
    /// The request's span and observer.
    pub(crate) trace: crate::trace::Trace,
}

/// How many unpriced models [`warn_unpriced`] remembers: a bound on memory, since model names
/// come from clients.
const UNPRICED_REMEMBERED: usize = 1024;

/// Warns once per process and model that a model has no price, so its usage is logged with
/// cost unknown (never a guessed cost).
pub(crate) fn warn_unpriced(route: &RouteId) {
    static WARNED: std::sync::Mutex<Option<std::collections::HashSet<RouteId>>> =
        std::sync::Mutex::new(None);
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let warned = warned.get_or_insert_with(Default::default);
    if warned.len() < UNPRICED_REMEMBERED && warned.insert(route.clone()) {
        tracing::warn!(model = %route, "no price in the pricing catalog: usage is logged with cost unknown");
    }
}

impl Meter {
    /// The meter of a fallback route: the reservation stays, the usage is that route's.
    pub(crate) fn retarget(&mut self, route: &RouteId) {
        self.route = route.clone();
    }

    pub(crate) fn with_attempts(mut self, attempts: Vec<Attempt>) -> Self {
        self.attempts = attempts;
        self
    }

    /// What `usage` costs on the serving route, or `None` when it has no price.
    pub(crate) fn cost(&self, usage: &Usage) -> Option<Cost> {
        let cost = (self.pricer)(&self.pricing, &self.route, usage);
        if cost.is_none() {
            warn_unpriced(&self.route);
        }
        cost
    }

    /// The record of a call that ended with `usage` (or failed with `error`), priced from its
    /// usage.
    pub(crate) fn record(&self, usage: Usage, end: End<'_>) -> UsageRecord {
        let cost = if end.billable {
            self.cost(&usage)
        } else {
            Some(Cost::ZERO)
        };
        self.record_priced(usage, end, cost)
    }

    /// The record of a call that ended with `usage` and costs `cost` (nothing when it was not
    /// billable, whatever `cost` says).
    pub(crate) fn record_priced(
        &self,
        usage: Usage,
        end: End<'_>,
        cost: Option<Cost>,
    ) -> UsageRecord {
        let outcome = match end.error {
            None => Outcome::Ok,
            Some(e) => Outcome::Failed {
                kind: e.kind().as_str().to_owned(),
                message: e.to_string(),
            },
        };
        UsageRecord {
            request_id: self.request_id.clone(),
            user_id: self.user_id.clone(),
            route: self.route.clone(),
            modality: self.modality,
            operation: self.operation,
            outcome,
            tokens: usage.tokens,
            units: usage.units,
            cost: if end.billable { cost } else { Some(Cost::ZERO) },
            pricing_version: self.pricing.version_of(self.route.provider).to_owned(),
            estimated: end.estimated,
            billable: end.billable,
            latency: self.started.elapsed(),
            time_to_first_token: end.ttft,
            retries: end.retries,
            cached: None,
            attempts: self.attempts.clone(),
            tags: RequestTags::clone(&self.tags),
        }
    }

    /// Reports the record `make` builds to the trace and settles it (when there is an
    /// accounting), logging a failure to settle: the reservation then stays, and recovery
    /// settles it at its estimate, so nothing goes unaccounted. With no reservation to settle
    /// and no trace to report to (a gateway without a store or telemetry), the record, which
    /// copies the request's names, is never built.
    pub(crate) fn settle(&self, make: impl FnOnce() -> UsageRecord) -> BoxFuture<'static, ()> {
        let settling = self.accounting.clone().zip(self.reservation.clone());
        if settling.is_none() && !self.trace.reports() {
            return Box::pin(async {});
        }
        let record = make();
        self.trace
            .ended(&record, self.reservation.as_ref().map(|r| &r.estimate));
        let Some((accounting, reservation)) = settling else {
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

/// How a metered call ended, beyond its usage.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct End<'a> {
    /// The error it ended with, if any.
    pub(crate) error: Option<&'a Error>,
    /// Whether the usage was counted locally.
    pub(crate) estimated: bool,
    /// Whether the provider did any work (else the reservation is released).
    pub(crate) billable: bool,
    /// Retries it took.
    pub(crate) retries: u32,
    /// Time to the first streamed byte.
    pub(crate) ttft: Option<Duration>,
}

/// What a [`MeteredStream`] needs to know of its items: which carry output, which carry the
/// provider's usage.
pub(crate) trait StreamUsage<T>: Send + 'static {
    /// Looks at one item: returns the output bytes it carries (for a local count), and records
    /// any usage the provider reported in it.
    fn observe(&mut self, item: &T) -> usize;
    /// The usage the provider reported, if it did.
    fn reported(&self) -> Option<Usage>;
    /// The item that carries a locally counted usage, yielded last when the provider reported none.
    fn usage_item(&self, usage: Usage) -> Option<T>;
    /// Records what the stream saw (finish reasons, content when captured) on the request's
    /// span, before it is settled; `broke_off`: the stream ended with an error or was dropped.
    fn annotate(&self, _trace: &crate::trace::Trace, _broke_off: bool) {}
}

/// A stream that settles its usage when it ends, breaks off, or is dropped by its client.
///
/// When the provider never reported usage, the stream counts the output it saw (and the prompt
/// estimate), yields that as a last usage item, and marks the record as estimated: a streamed
/// request is never logged at zero cost.
pub(crate) struct MeteredStream<T: Send + 'static, U: StreamUsage<T>> {
    inner: BoxStream<'static, gateway_core::Result<T>>,
    usage: U,
    meter: Meter,
    retries: u32,
    output_bytes: usize,
    first_output: Option<Duration>,
    state: State<T>,
}

enum State<T> {
    Streaming,
    /// The last usage item to yield before settling.
    Closing(Option<T>),
    Settling(BoxFuture<'static, ()>, Option<Error>),
    Done,
}

impl<T: Send + 'static, U: StreamUsage<T>> MeteredStream<T, U> {
    pub(crate) fn new(
        inner: BoxStream<'static, gateway_core::Result<T>>,
        usage: U,
        meter: Meter,
        retries: u32,
    ) -> Self {
        Self {
            inner,
            usage,
            meter,
            retries,
            output_bytes: 0,
            first_output: None,
            state: State::Streaming,
        }
    }

    /// The usage to record: the provider's, or a local count marked as estimated.
    fn final_usage(&self) -> (Usage, bool) {
        match self.usage.reported() {
            Some(u) => (u, false),
            None => {
                let mut local = Usage::default();
                local.tokens.input_tokens = self.meter.prompt_tokens;
                local.tokens.output_tokens = (self.output_bytes as u64).div_ceil(4);
                (local, true)
            }
        }
    }

    fn settle(&self, error: Option<&Error>) -> BoxFuture<'static, ()> {
        self.usage.annotate(&self.meter.trace, error.is_some());
        let (usage, estimated) = self.final_usage();
        let end = End {
            error,
            estimated,
            billable: true,
            retries: self.retries,
            ttft: self.first_output,
        };
        self.meter.settle(|| self.meter.record(usage, end))
    }
}

impl<T: Send + Unpin + 'static, U: StreamUsage<T> + Unpin> Stream for MeteredStream<T, U> {
    type Item = gateway_core::Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Streaming => match this.inner.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(item))) => {
                        let bytes = this.usage.observe(&item);
                        if bytes > 0 {
                            this.first_output
                                .get_or_insert_with(|| this.meter.started.elapsed());
                            this.output_bytes += bytes;
                        }
                        return Poll::Ready(Some(Ok(item)));
                    }
                    Poll::Ready(Some(Err(error))) => {
                        // The provider did work before breaking off: charge what was produced.
                        this.state = State::Settling(this.settle(Some(&error)), Some(error));
                    }
                    Poll::Ready(None) => {
                        let (usage, estimated) = this.final_usage();
                        let last = estimated.then(|| this.usage.usage_item(usage)).flatten();
                        this.state = State::Closing(last);
                    }
                },
                State::Closing(last) => {
                    if let Some(item) = last.take() {
                        return Poll::Ready(Some(Ok(item)));
                    }
                    this.state = State::Settling(this.settle(None), None);
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

impl<T: Send + 'static, U: StreamUsage<T>> Drop for MeteredStream<T, U> {
    fn drop(&mut self) {
        let pending = match std::mem::replace(&mut self.state, State::Done) {
            // The provider finished; only the last item went unread.
            State::Closing(_) => Some(self.settle(None)),
            State::Streaming => {
                // The client went away mid-stream: charge what was produced so far.
                let gone = Error::new(
                    ErrorKind::StreamInterrupted,
                    "the client disconnected mid-stream",
                );
                Some(self.settle(Some(&gone)))
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
