//! Each request's telemetry: its GenAI span (named and attributed per the OpenTelemetry GenAI
//! conventions, see [`gateway_core::telemetry`]), one child span per attempt, and the report
//! to the [`Observer`] when it ends. Carried by the request's meter, so a stream's span lasts
//! until the stream is settled.

use std::sync::Arc;

use gateway_core::telemetry::{
    ContentCapture, OTEL_TARGET, Observer, Refusal, RequestEnd, provider_name, truncate_content,
};
use gateway_core::{Amount, Error, Outcome, Registry, RouteId, UsageRecord};
use tracing::Span;
use tracing::field::Empty;

use crate::metering::CallContext;

/// The gateway-wide telemetry settings.
#[derive(Clone, Default)]
pub(crate) struct Telemetry {
    pub(crate) observer: Option<Arc<dyn Observer>>,
    pub(crate) content: ContentCapture,
}

/// One request's telemetry. Cheap to clone; empty when nothing listens.
#[derive(Clone, Default)]
pub(crate) struct Trace(Option<Arc<Inner>>);

struct Inner {
    span: Span,
    operation: &'static str,
    request_model: String,
    stream: bool,
    observer: Option<Arc<dyn Observer>>,
    content: ContentCapture,
    registry: Arc<Registry>,
    /// Whether the answer's own model name was recorded (more precise than the route's).
    response_model: std::sync::atomic::AtomicBool,
}

impl Trace {
    /// The trace of a request for `model`, operation `operation` (the conventions' name). The
    /// span is the current one while the request runs: instrument the request with
    /// [`Trace::span`].
    pub(crate) fn start(
        telemetry: &Telemetry,
        registry: &Arc<Registry>,
        operation: &'static str,
        model: &str,
        ctx: &CallContext,
        stream: bool,
    ) -> Self {
        if ctx.untraced && telemetry.observer.is_none() {
            return Self(None);
        }
        let span = if ctx.untraced {
            Span::none()
        } else {
            Self::span_for(operation, model, ctx, stream)
        };
        if span.is_disabled() && telemetry.observer.is_none() {
            return Self(None);
        }
        Self(Some(Arc::new(Inner {
            span,
            operation,
            request_model: model.to_owned(),
            stream,
            observer: telemetry.observer.clone(),
            content: telemetry.content,
            registry: Arc::clone(registry),
            response_model: std::sync::atomic::AtomicBool::new(false),
        })))
    }

    /// The GenAI span of a request.
    fn span_for(operation: &'static str, model: &str, ctx: &CallContext, stream: bool) -> Span {
        tracing::info_span!(
            target: OTEL_TARGET,
            "gen_ai.request",
            otel.name = format_args!("{operation} {model}"),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = operation,
            gen_ai.provider.name = Empty,
            gen_ai.request.model = model,
            gen_ai.request.max_tokens = Empty,
            gen_ai.request.temperature = Empty,
            gen_ai.request.top_p = Empty,
            gen_ai.request.choice.count = Empty,
            gen_ai.request.seed = Empty,
            gen_ai.request.stream = stream,
            gen_ai.response.model = Empty,
            gen_ai.response.id = Empty,
            gen_ai.response.finish_reasons = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            "error.type" = Empty,
            server.address = Empty,
            server.port = Empty,
            gateway.request_id = ctx.request_id.as_str(),
            gateway.user.id = ctx.user_id.as_deref(),
            gateway.plan = ctx.plan.as_deref(),
            gateway.route = Empty,
            gateway.retries = Empty,
            gateway.cost_usd = Empty,
            gateway.usage.estimated = Empty,
            gateway.cache_hit = Empty,
        )
    }

    /// Whether anything hears of this request's end (its span, or the observer behind the
    /// metrics): [`Trace::ended`] does nothing otherwise.
    pub(crate) fn reports(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the request's span records (a subscriber takes it).
    pub(crate) fn is_on(&self) -> bool {
        self.0.as_ref().is_some_and(|t| !t.span.is_disabled())
    }

    /// The request's span (a disabled one when nothing listens).
    pub(crate) fn span(&self) -> Span {
        self.0.as_ref().map_or_else(Span::none, |t| t.span.clone())
    }

    /// Records a request attribute (`gen_ai.request.*`).
    pub(crate) fn record<V: tracing::Value>(&self, field: &str, value: V) {
        if let Some(t) = &self.0 {
            t.span.record(field, value);
        }
    }

    /// The content capture settings, when content is recorded.
    pub(crate) fn content(&self) -> Option<ContentCapture> {
        self.0
            .as_ref()
            .filter(|t| t.content.enabled && !t.span.is_disabled())
            .map(|t| t.content)
    }

    /// Records the request's input and output as the conventions' event
    /// (`gen_ai.client.inference.operation.details`), each cut to the capture limit.
    pub(crate) fn record_content(&self, input: &str, output: &str) {
        let (Some(t), Some(capture)) = (&self.0, self.content()) else {
            return;
        };
        let input = truncate_content(input, capture.max_bytes);
        let output = truncate_content(output, capture.max_bytes);
        let _enter = t.span.enter();
        tracing::event!(
            target: OTEL_TARGET,
            tracing::Level::INFO,
            { gen_ai.input.messages = %input, gen_ai.output.messages = %output },
            "gen_ai.client.inference.operation.details"
        );
    }

    /// Records the serving route and the answer's model, id and finish reasons.
    pub(crate) fn record_response(
        &self,
        model: Option<&str>,
        id: Option<&str>,
        finish_reasons: &[&str],
    ) {
        let Some(t) = &self.0 else { return };
        if let Some(model) = model.filter(|m| !m.is_empty()) {
            t.span.record("gen_ai.response.model", model);
            t.response_model
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(id) = id {
            t.span.record("gen_ai.response.id", id);
        }
        if !finish_reasons.is_empty() {
            // A comma-separated list: `tracing` has no array values; the server's exporter
            // turns it back into the conventions' string array.
            t.span
                .record("gen_ai.response.finish_reasons", finish_reasons.join(","));
        }
    }

    /// Records how the admitted request ended and reports it to the observer.
    pub(crate) fn ended(&self, record: &UsageRecord, reserved: Option<&Amount>) {
        let Some(t) = &self.0 else { return };
        let span = &t.span;
        let route = &record.route;
        span.record("gen_ai.provider.name", provider_name(route.provider));
        if let Some((host, port)) = t.registry.address(route.provider) {
            span.record("server.address", host);
            span.record("server.port", i64::from(port));
        }
        if !t.response_model.load(std::sync::atomic::Ordering::Relaxed) {
            span.record("gen_ai.response.model", route.model.as_ref());
        }
        span.record("gateway.route", tracing::field::display(route));
        span.record("gateway.retries", i64::from(record.retries));
        span.record("gateway.cache_hit", record.cached.is_some());
        span.record("gateway.usage.estimated", record.estimated);
        // Token counts where there are any (a web search is billed in searches, not tokens).
        if record.tokens.input_tokens > 0 || record.tokens.output_tokens > 0 {
            span.record(
                "gen_ai.usage.input_tokens",
                as_i64(record.tokens.input_tokens),
            );
            span.record(
                "gen_ai.usage.output_tokens",
                as_i64(record.tokens.output_tokens),
            );
        }
        if let Some(cost) = record.cost {
            span.record("gateway.cost_usd", tracing::field::display(cost));
        }
        if let Outcome::Failed { kind, .. } = &record.outcome {
            span.record("error.type", kind.as_str());
            span.record("otel.status_code", "error");
        }
        if let Some(observer) = &t.observer {
            observer.request_ended(&RequestEnd {
                operation: t.operation,
                request_model: &t.request_model,
                stream: t.stream,
                record,
                reserved,
            });
        }
    }

    /// Records a request refused before any provider call and reports it to the observer.
    pub(crate) fn refused(&self, route: Option<&RouteId>, error: &Error) {
        let Some(t) = &self.0 else { return };
        t.span.record("error.type", error.kind().as_str());
        t.span.record("otel.status_code", "error");
        if let Some(route) = route {
            t.span
                .record("gen_ai.provider.name", provider_name(route.provider));
        }
        if let Some(observer) = &t.observer {
            observer.refused(&Refusal {
                operation: t.operation,
                request_model: &t.request_model,
                route,
                error,
            });
        }
    }
}

/// The span of one attempt on `route`: retry `retry` (0 for the first call) of the chain's
/// route number `fallback_index` (0 for the model's own).
pub(crate) fn attempt_span(route: &RouteId, retry: u32, fallback_index: usize) -> Span {
    tracing::info_span!(
        target: OTEL_TARGET,
        "gateway.attempt",
        otel.name = format_args!("attempt {route}"),
        otel.kind = "internal",
        otel.status_code = Empty,
        gateway.route = %route,
        gateway.attempt.retry = i64::from(retry),
        gateway.attempt.fallback_index = as_i64(fallback_index as u64),
        gateway.attempt.outcome = Empty,
        "error.type" = Empty,
    )
}

/// Records an attempt's outcome on its span.
pub(crate) fn attempt_ended(span: &Span, error: Option<&Error>) {
    match error {
        None => {
            span.record("gateway.attempt.outcome", "ok");
        }
        Some(e) => {
            span.record("gateway.attempt.outcome", "failed");
            span.record("error.type", e.kind().as_str());
            span.record("otel.status_code", "error");
        }
    }
}

/// `n` as the signed integer OpenTelemetry attributes hold (the bridge records unsigned values
/// as text).
pub(crate) fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
