//! Telemetry: the gateway's spans (see [`llm_gateway::telemetry`]) exported as OpenTelemetry
//! traces over OTLP, and its metrics exported over OTLP and served in Prometheus' text format.
//!
//! Configured by `[telemetry]` and, above it, the standard OpenTelemetry variables
//! (<https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>):
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (and the per-signal `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` or `http/json`; gRPC is not built in, to keep
//! the binary lean), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, `OTEL_METRIC_EXPORT_INTERVAL` and
//! `OTEL_SDK_DISABLED`. Off unless an endpoint is configured: then spans go through a batch
//! processor on its own thread, so no request waits on the exporter.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use llm_gateway::telemetry::{ContentCapture, Observer, Refusal, RequestEnd, provider_name};
use llm_gateway::{ErrorKind, Gateway, Outcome, Skip};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use serde::Deserialize;

use crate::config::ConfigError;

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// The OTLP endpoint traces and metrics are sent to (e.g. `http://127.0.0.1:4318`, a
    /// collector's HTTP port). `OTEL_EXPORTER_OTLP_ENDPOINT` overrides it. Unset in both places:
    /// nothing is exported.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `http/protobuf` (the default) or `http/json`. `OTEL_EXPORTER_OTLP_PROTOCOL` overrides it.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The `service.name` resource attribute (default `gateway`). `OTEL_SERVICE_NAME` overrides it.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Record chat prompts and answers on spans, as the GenAI conventions' event. Off by
    /// default: they can hold personal data and secrets.
    #[serde(default)]
    pub record_content: bool,
    /// The most bytes of each of prompt and answer recorded.
    #[serde(default = "default_content_max_bytes")]
    pub content_max_bytes: usize,
    /// Prometheus' text format at `GET /metrics`: `off` (the default), `admin` (on the main
    /// listener, behind the admin key), or an address of its own (`127.0.0.1:9464`, no key:
    /// bind it where only the scraper reaches).
    #[serde(default)]
    pub prometheus: PrometheusMode,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            protocol: None,
            service_name: None,
            record_content: false,
            content_max_bytes: default_content_max_bytes(),
            prometheus: PrometheusMode::Off,
        }
    }
}

fn default_content_max_bytes() -> usize {
    16 * 1024
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrometheusMode {
    /// Not at all.
    #[default]
    Off,
    /// On the main listener, behind the admin key.
    Admin,
    /// On a listener of its own.
    Listen(SocketAddr),
}

impl<'de> Deserialize<'de> for PrometheusMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "off" => Ok(Self::Off),
            "admin" => Ok(Self::Admin),
            other => other.parse().map(Self::Listen).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{other}`: expected \"off\", \"admin\" or an address such as \"127.0.0.1:9464\""
                ))
            }),
        }
    }
}

/// The telemetry pipelines of a running gateway. Shut it down after the server stops, so the
/// last spans and metrics are sent.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    prometheus: Option<Arc<ManualReader>>,
    mode: PrometheusMode,
    metrics: Option<Arc<Metrics>>,
    content: ContentCapture,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("traces", &self.tracer.is_some())
            .field("metrics", &self.meter.is_some())
            .field("prometheus", &self.mode)
            .finish()
    }
}

/// A value of the standard variable `name`, when set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Telemetry {
    /// No telemetry at all.
    pub fn off() -> Self {
        Self {
            tracer: None,
            meter: None,
            prometheus: None,
            mode: PrometheusMode::Off,
            metrics: None,
            content: ContentCapture::default(),
        }
    }

    /// Builds the pipelines `section` and the standard variables ask for. Call it outside the
    /// async runtime: the OTLP exporter's HTTP client blocks, on threads of its own.
    pub fn init(section: &TelemetrySection) -> Result<Self, ConfigError> {
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = section.otlp_endpoint.clone().filter(|e| !e.is_empty());
        let env_endpoint = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        ]
        .iter()
        .any(|v| env(v).is_some());
        let otlp = !disabled && (endpoint.is_some() || env_endpoint);
        let mut telemetry = Self::off();
        telemetry.mode = section.prometheus;
        telemetry.content = ContentCapture {
            enabled: section.record_content,
            max_bytes: section.content_max_bytes,
        };
        if !otlp && section.prometheus == PrometheusMode::Off {
            return Ok(telemetry);
        }
        let resource = resource(section);
        let mut meter = SdkMeterProvider::builder().with_resource(resource.clone());
        if otlp {
            let protocol = protocol(section)?;
            let (traces, metrics) = otlp_exporters(endpoint.as_deref(), protocol)?;
            let tracer = SdkTracerProvider::builder()
                .with_resource(resource)
                .with_span_processor(ArrayAttributes(
                    opentelemetry_sdk::trace::BatchSpanProcessor::builder(traces).build(),
                ))
                .build();
            telemetry.tracer = Some(tracer);
            meter = meter.with_periodic_exporter(metrics);
        }
        if section.prometheus != PrometheusMode::Off {
            let reader = Arc::new(ManualReader::builder().build());
            meter = meter.with_reader(SharedReader(Arc::clone(&reader)));
            telemetry.prometheus = Some(reader);
        }
        let meter = meter.build();
        telemetry.metrics = Some(Arc::new(Metrics::new(&meter.meter("llm-gateway"))));
        telemetry.meter = Some(meter);
        Ok(telemetry)
    }

    /// The layer that turns the gateway's spans into OpenTelemetry spans, when traces are
    /// exported. Put it under a filter that takes [`llm_gateway::telemetry::OTEL_TARGET`].
    pub fn layer<S>(&self) -> Option<impl tracing_subscriber::Layer<S> + use<S>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let tracer = self.tracer.as_ref()?.tracer("llm-gateway");
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                // No per-span extras: code location, thread, target, the busy/idle timing that
                // reads the clock at every poll of a request's future, and attaching the
                // OpenTelemetry context at every poll (nothing here reads it: parents come from
                // the span tree, the incoming `traceparent` is set on the server span).
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_context_activation(false),
        )
    }

    /// Whether spans are exported (the server then reads incoming `traceparent` headers).
    pub fn traces(&self) -> bool {
        self.tracer.is_some()
    }

    /// The gateway with this telemetry's observer and content settings.
    pub fn attach(&self, gateway: Gateway) -> Gateway {
        let mut gateway = gateway.with_content_capture(self.content);
        if let Some(metrics) = &self.metrics {
            gateway = gateway.with_observer(Arc::clone(metrics) as Arc<dyn Observer>);
            if let Some(meter) = &self.meter {
                metrics.watch_breakers(&meter.meter("llm-gateway"), &gateway);
            }
        }
        gateway
    }

    /// The metrics, when any reader takes them.
    pub(crate) fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Where `/metrics` is served.
    pub fn prometheus_mode(&self) -> PrometheusMode {
        self.mode
    }

    /// The metrics now, in Prometheus' text format (`None` when `/metrics` is off).
    pub fn prometheus_text(&self) -> Option<String> {
        let reader = self.prometheus.as_ref()?;
        let mut collected = ResourceMetrics::default();
        if let Err(e) = reader.collect(&mut collected) {
            tracing::warn!(error = %e, "collecting metrics failed");
        }
        Some(prometheus_text(&collected))
    }

    /// Sends what is still buffered and stops the exporters (waits a few seconds at most).
    pub fn shutdown(&self) {
        if let Some(tracer) = &self.tracer
            && let Err(e) = tracer.shutdown()
        {
            eprintln!("gateway: flushing traces failed: {e}");
        }
        if let Some(meter) = &self.meter
            && let Err(e) = meter.shutdown()
        {
            eprintln!("gateway: flushing metrics failed: {e}");
        }
    }

    /// Sends the spans ended so far (tests; the batch processor otherwise sends on its own).
    pub fn flush(&self) {
        if let Some(tracer) = &self.tracer {
            let _ = tracer.force_flush();
        }
        if let Some(meter) = &self.meter {
            let _ = meter.force_flush();
        }
    }
}

/// The resource: `service.name` from `OTEL_SERVICE_NAME`, else the configuration, else
/// `gateway`; `OTEL_RESOURCE_ATTRIBUTES` are read by the SDK's detectors.
fn resource(section: &TelemetrySection) -> Resource {
    let builder = Resource::builder();
    if env("OTEL_SERVICE_NAME").is_some() {
        return builder.build();
    }
    let name = section
        .service_name
        .clone()
        .unwrap_or_else(|| "gateway".into());
    builder.with_service_name(name).build()
}

/// The OTLP protocol: `OTEL_EXPORTER_OTLP_PROTOCOL`, else the configuration, else
/// `http/protobuf`.
fn protocol(section: &TelemetrySection) -> Result<Protocol, ConfigError> {
    let (value, at) = match env("OTEL_EXPORTER_OTLP_PROTOCOL") {
        Some(v) => (v, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        None => (
            section
                .protocol
                .clone()
                .unwrap_or_else(|| "http/protobuf".into()),
            "telemetry.protocol",
        ),
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "http/protobuf" => Ok(Protocol::HttpBinary),
        "http/json" => Ok(Protocol::HttpJson),
        "grpc" => Err(ConfigError::new(
            at,
            "gRPC export is not built into the gateway: use http/protobuf (a collector's port 4318)",
        )),
        other => Err(ConfigError::new(
            at,
            format!("`{other}`: expected http/protobuf or http/json"),
        )),
    }
}

fn otlp_exporters(
    endpoint: Option<&str>,
    protocol: Protocol,
) -> Result<
    (
        opentelemetry_otlp::SpanExporter,
        opentelemetry_otlp::MetricExporter,
    ),
    ConfigError,
> {
    let at = if endpoint.is_some() {
        "telemetry.otlp_endpoint"
    } else {
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    };
    // The configured endpoint is a base, as the generic variable is: each signal's path
    // (`/v1/traces`, `/v1/metrics`) is appended to it. A standard variable for the signal wins
    // (the exporter reads it when no endpoint is given here).
    let signal_url = |path: &str, variable: &str| {
        let from_env = env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || env(variable).is_some();
        endpoint
            .filter(|_| !from_env)
            .map(|e| format!("{}/{path}", e.trim_end_matches('/')))
    };
    // The exporter's HTTP client may share rustls with the media storage's S3 client, which
    // brings no crypto provider of its own: the process's is ring.
    crate::media::install_tls_provider();
    let mut traces = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol);
    if let Some(url) = signal_url("v1/traces", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        traces = traces.with_endpoint(url);
    }
    let traces = traces
        .build()
        .map_err(|e| ConfigError::new(at, format!("cannot build the trace exporter: {e}")))?;
    let mut metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(protocol);
    if let Some(url) = signal_url("v1/metrics", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
        metrics = metrics.with_endpoint(url);
    }
    let metrics = metrics
        .build()
        .map_err(|e| ConfigError::new(at, format!("cannot build the metric exporter: {e}")))?;
    Ok((traces, metrics))
}

/// The conventions' string-array attributes the gateway records as comma-separated text
/// (`tracing` fields have no arrays), turned back into arrays before export.
const ARRAY_ATTRIBUTES: &[&str] = &["gen_ai.response.finish_reasons"];

/// Wraps the batch processor: fixes [`ARRAY_ATTRIBUTES`] on each ended span.
#[derive(Debug)]
struct ArrayAttributes<P>(P);

impl<P: SpanProcessor> SpanProcessor for ArrayAttributes<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        for kv in &mut span.attributes {
            if ARRAY_ATTRIBUTES.contains(&kv.key.as_str())
                && let opentelemetry::Value::String(text) = &kv.value
            {
                let items: Vec<opentelemetry::StringValue> = text
                    .as_str()
                    .split(',')
                    .map(|s| s.to_owned().into())
                    .collect();
                kv.value = opentelemetry::Value::Array(items.into());
            }
        }
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// A [`ManualReader`] the meter provider and the `/metrics` handler share.
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// The GenAI conventions' advisory buckets for `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// The GenAI conventions' advisory buckets for durations, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// The gateway's metrics: the GenAI conventions' client metrics
/// (<https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/>) and its own counters.
pub(crate) struct Metrics {
    token_usage: Histogram<u64>,
    duration: Histogram<f64>,
    first_chunk: Histogram<f64>,
    requests: Counter<u64>,
    retries: Counter<u64>,
    fallbacks: Counter<u64>,
    refusals: Counter<u64>,
    route_skips: Counter<u64>,
    cost: Counter<f64>,
    excess_tokens: Counter<u64>,
    excess_cost: Counter<f64>,
    cache_lookups: Counter<u64>,
    cache_saved: Counter<f64>,
    /// The breakers' observable instruments, kept for the life of the provider.
    breakers: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send + Sync>>>,
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        Self {
            token_usage: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Number of input and output tokens used.")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            duration: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_description("GenAI operation duration.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            first_chunk: meter
                .f64_histogram("gen_ai.client.operation.time_to_first_chunk")
                .with_unit("s")
                .with_description("Time to receive the first chunk of a streamed answer.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            requests: meter
                .u64_counter("gateway.requests")
                .with_unit("{request}")
                .with_description("Requests, by serving route and outcome (ok or the error type).")
                .build(),
            retries: meter
                .u64_counter("gateway.retries")
                .with_unit("{retry}")
                .with_description("Provider calls retried, by the route of the request's end.")
                .build(),
            fallbacks: meter
                .u64_counter("gateway.fallbacks")
                .with_unit("{request}")
                .with_description("Requests that moved past their first route, by the route they ended on.")
                .build(),
            refusals: meter
                .u64_counter("gateway.refusals")
                .with_unit("{request}")
                .with_description("Requests refused before any provider call, by reason (plan, quota, rate_limit, ...).")
                .build(),
            route_skips: meter
                .u64_counter("gateway.route_skips")
                .with_unit("{route}")
                .with_description("Routes passed over without a call, by reason (circuit_open, provider_rate_limit, not_in_plan, ...).")
                .build(),
            cost: meter
                .f64_counter("gateway.cost.usd")
                .with_unit("{USD}")
                .with_description("Cost charged, in US dollars.")
                .build(),
            excess_tokens: meter
                .u64_counter("gateway.usage.excess_tokens")
                .with_unit("{token}")
                .with_description("Tokens charged beyond what admission reserved.")
                .build(),
            excess_cost: meter
                .f64_counter("gateway.usage.excess_cost.usd")
                .with_unit("{USD}")
                .with_description("Cost charged beyond what admission reserved, in US dollars.")
                .build(),
            cache_lookups: meter
                .u64_counter("gateway.cache.lookups")
                .with_unit("{lookup}")
                .with_description("Response cache lookups, by operation and outcome (hit, semantic_hit, miss, skip, unavailable: the cache was bypassed).")
                .build(),
            cache_saved: meter
                .f64_counter("gateway.cache.saved.usd")
                .with_unit("{USD}")
                .with_description("What the answers served from the response cache cost when they were made, in US dollars.")
                .build(),
            breakers: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The breakers' state (0 closed, 1 half-open, 2 open) and how often each opened, read
    /// when the metrics are collected.
    fn watch_breakers(&self, meter: &Meter, gateway: &Gateway) {
        let states = gateway.clone();
        let state = meter
            .u64_observable_gauge("gateway.breaker.state")
            .with_unit("1")
            .with_description("Circuit breaker state by route: 0 closed, 1 half-open, 2 open.")
            .with_callback(move |observer| {
                for snap in states.breakers().snapshots() {
                    let value = match snap.state {
                        llm_gateway::breaker::BreakerState::Closed { .. } => 0,
                        llm_gateway::breaker::BreakerState::HalfOpen { .. } => 1,
                        llm_gateway::breaker::BreakerState::Open { .. } => 2,
                    };
                    observer.observe(value, &[KeyValue::new("gateway.route", snap.route)]);
                }
            })
            .build();
        let transitions = gateway.clone();
        let transitions = meter
            .u64_observable_counter("gateway.breaker.transitions")
            .with_unit("{transition}")
            .with_description(
                "Circuit breaker state changes by route and the state entered: open, half_open, closed.",
            )
            .with_callback(move |observer| {
                for snap in transitions.breakers().snapshots() {
                    for (to, count) in [
                        ("open", snap.times_opened),
                        ("half_open", snap.times_half_opened),
                        ("closed", snap.times_closed),
                    ] {
                        observer.observe(
                            count,
                            &[
                                KeyValue::new("gateway.route", snap.route.clone()),
                                KeyValue::new("gateway.breaker.state", to),
                            ],
                        );
                    }
                }
            })
            .build();
        let mut kept = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.push(Box::new(state));
        kept.push(Box::new(transitions));
    }

    /// A request refused by the gateway's own incoming rate limits (per user or key).
    pub(crate) fn refused_incoming(&self) {
        self.refusals.add(
            1,
            &[KeyValue::new(
                "gateway.refusal.reason",
                "incoming_rate_limit",
            )],
        );
    }
}

fn refusal_reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::PermissionDenied => "plan",
        ErrorKind::QuotaExceeded => "quota",
        ErrorKind::RateLimited { .. } => "rate_limit",
        other => other.as_str(),
    }
}

fn skip_reason(skip: &Skip) -> &'static str {
    match skip {
        Skip::CircuitOpen => "circuit_open",
        Skip::RateLimitedLocally => "provider_rate_limit",
        Skip::NotInPlan => "not_in_plan",
        Skip::Unsupported => "unsupported",
        Skip::NotAvailable => "not_available",
        _ => "other",
    }
}

impl Observer for Metrics {
    fn request_ended(&self, end: &RequestEnd<'_>) {
        let record = end.record;
        let route = &record.route;
        let route_name = route.to_string();
        let error = match &record.outcome {
            Outcome::Ok => None,
            Outcome::Failed { kind, .. } => Some(kind.clone()),
        };
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", end.operation),
            KeyValue::new(
                "gen_ai.provider.name",
                provider_name(route.provider).to_owned(),
            ),
            KeyValue::new("gen_ai.request.model", end.request_model.to_owned()),
            KeyValue::new("gen_ai.response.model", route.model.to_string()),
        ];
        let tokens = record.tokens;
        if record.billable && (tokens.input_tokens > 0 || tokens.output_tokens > 0) {
            for (kind, count) in [
                ("input", tokens.input_tokens),
                ("output", tokens.output_tokens),
            ] {
                attrs.push(KeyValue::new("gen_ai.token.type", kind));
                self.token_usage.record(count, &attrs);
                attrs.pop();
            }
        }
        if end.stream
            && let Some(ttft) = record.time_to_first_token
        {
            self.first_chunk.record(ttft.as_secs_f64(), &attrs);
        }
        if let Some(kind) = &error {
            attrs.push(KeyValue::new("error.type", kind.clone()));
        }
        self.duration.record(record.latency.as_secs_f64(), &attrs);

        let by_route = [
            KeyValue::new("gateway.route", route_name.clone()),
            KeyValue::new("gen_ai.operation.name", end.operation),
        ];
        let outcome = error.unwrap_or_else(|| "ok".to_owned());
        self.requests.add(
            1,
            &[
                by_route[0].clone(),
                by_route[1].clone(),
                KeyValue::new("gateway.outcome", outcome),
            ],
        );
        if record.retries > 0 {
            self.retries.add(u64::from(record.retries), &by_route);
        }
        if record.attempts.first().is_some_and(|a| a.route != *route) {
            self.fallbacks.add(1, &by_route);
        }
        for attempt in &record.attempts {
            if let llm_gateway::AttemptOutcome::Skipped(why) = &attempt.outcome {
                self.route_skips.add(
                    1,
                    &[
                        KeyValue::new("gateway.route", attempt.route.to_string()),
                        KeyValue::new("gateway.skip.reason", skip_reason(why)),
                    ],
                );
            }
        }
        if record.billable
            && let Some(cost) = record.cost
        {
            self.cost.add(usd(cost.nanos()), &by_route);
        }
        if let Some(saved) = record.cached.and_then(|hit| hit.saved) {
            self.cache_saved.add(usd(saved.nanos()), &by_route);
        }
        if let Some(reserved) = end.reserved {
            let used = tokens.input_tokens + tokens.output_tokens;
            if reserved.tokens > 0 && used > reserved.tokens {
                self.excess_tokens.add(used - reserved.tokens, &by_route);
            }
            if let (Some(charged), Some(held)) = (record.cost, reserved.cost)
                && charged.nanos() > held.nanos()
            {
                self.excess_cost
                    .add(usd(charged.nanos() - held.nanos()), &by_route);
            }
        }
    }

    fn cache_lookup(&self, operation: &'static str, outcome: &'static str) {
        // Both come from the router's fixed sets: the labels stay bounded.
        self.cache_lookups.add(
            1,
            &[
                KeyValue::new("gen_ai.operation.name", operation),
                KeyValue::new("gateway.cache.outcome", outcome),
            ],
        );
    }

    fn refused(&self, refusal: &Refusal<'_>) {
        let reason = refusal_reason(refusal.error.kind());
        self.refusals.add(
            1,
            &[
                KeyValue::new("gateway.refusal.reason", reason),
                KeyValue::new("gen_ai.operation.name", refusal.operation),
            ],
        );
        let route = refusal.route.map(ToString::to_string).unwrap_or_default();
        self.requests.add(
            1,
            &[
                KeyValue::new("gateway.route", route),
                KeyValue::new("gen_ai.operation.name", refusal.operation),
                KeyValue::new("gateway.outcome", refusal.error.kind().as_str()),
            ],
        );
    }
}

/// Nano-dollars as dollars.
fn usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// `metrics` in Prometheus' text exposition format
/// (<https://prometheus.io/docs/instrumenting/exposition_formats/>), named as the OpenTelemetry
/// compatibility rules say (<https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/>):
/// dots become underscores, the unit is appended (`_seconds`; annotations in braces are not
/// units), counters end in `_total`.
pub(crate) fn prometheus_text(metrics: &ResourceMetrics) -> String {
    let mut out = String::new();
    for scope in metrics.scope_metrics() {
        for metric in scope.metrics() {
            let base = prometheus_name(metric.name(), metric.unit());
            let help = metric
                .description()
                .replace('\\', "\\\\")
                .replace('\n', "\\n");
            match metric.data() {
                AggregatedMetrics::F64(data) => write_metric(&mut out, &base, &help, data),
                AggregatedMetrics::U64(data) => write_metric(&mut out, &base, &help, data),
                AggregatedMetrics::I64(data) => write_metric(&mut out, &base, &help, data),
            }
        }
    }
    out
}

/// A number as Prometheus reads it.
trait PromValue: Copy {
    fn text(self) -> String;
}

impl PromValue for f64 {
    fn text(self) -> String {
        if self.is_nan() {
            "NaN".into()
        } else if self.is_infinite() {
            if self > 0.0 { "+Inf" } else { "-Inf" }.into()
        } else {
            self.to_string()
        }
    }
}

impl PromValue for u64 {
    fn text(self) -> String {
        self.to_string()
    }
}

impl PromValue for i64 {
    fn text(self) -> String {
        self.to_string()
    }
}

fn write_metric<T: PromValue>(out: &mut String, base: &str, help: &str, data: &MetricData<T>) {
    match data {
        MetricData::Sum(sum) => {
            let (name, kind) = if sum.is_monotonic() {
                (format!("{base}_total"), "counter")
            } else {
                (base.to_owned(), "gauge")
            };
            header(out, &name, help, kind);
            for point in sum.data_points() {
                let labels = labels(point.attributes(), None);
                let _ = writeln!(out, "{name}{labels} {}", point.value().text());
            }
        }
        MetricData::Gauge(gauge) => {
            header(out, base, help, "gauge");
            for point in gauge.data_points() {
                let labels = labels(point.attributes(), None);
                let _ = writeln!(out, "{base}{labels} {}", point.value().text());
            }
        }
        MetricData::Histogram(histogram) => {
            header(out, base, help, "histogram");
            for point in histogram.data_points() {
                let mut cumulative = 0u64;
                for (bound, count) in point.bounds().zip(point.bucket_counts()) {
                    cumulative += count;
                    let le = bound.text();
                    let labels = labels(point.attributes(), Some(&le));
                    let _ = writeln!(out, "{base}_bucket{labels} {cumulative}");
                }
                let labels_inf = labels(point.attributes(), Some("+Inf"));
                let _ = writeln!(out, "{base}_bucket{labels_inf} {}", point.count());
                let plain = labels(point.attributes(), None);
                let _ = writeln!(out, "{base}_sum{plain} {}", point.sum().text());
                let _ = writeln!(out, "{base}_count{plain} {}", point.count());
            }
        }
        // Not produced: no instrument here asks for exponential buckets.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `{k="v",...}` (with `le` last when given), or nothing when there are no labels.
fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = attributes
        .filter(|kv| !kv.value.as_str().is_empty())
        .map(|kv| (sanitize(kv.key.as_str()), kv.value.as_str().into_owned()))
        .collect();
    pairs.sort();
    if let Some(le) = le {
        pairs.push(("le".into(), le.into()));
    }
    if pairs.is_empty() {
        return String::new();
    }
    let body: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(&v)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn escape_label(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// A name made of `[a-zA-Z0-9_]`, not starting with a digit, without repeated underscores.
fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The metric's Prometheus name: sanitized, with its unit's suffix.
fn prometheus_name(name: &str, unit: &str) -> String {
    let mut out = sanitize(name);
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        _ => "",
    };
    if !suffix.is_empty() && !out.ends_with(suffix) {
        out.push('_');
        out.push_str(suffix);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_compatibility_rules() {
        assert_eq!(
            prometheus_name("gen_ai.client.operation.duration", "s"),
            "gen_ai_client_operation_duration_seconds"
        );
        assert_eq!(
            prometheus_name("gen_ai.client.token.usage", "{token}"),
            "gen_ai_client_token_usage"
        );
        assert_eq!(sanitize("9lives..x"), "_9lives_x");
    }

    #[test]
    fn label_values_are_escaped() {
        let kv = [KeyValue::new("gateway.route", "a\"b\\c\nd")];
        assert_eq!(
            labels(kv.iter(), Some("0.5")),
            r#"{gateway_route="a\"b\\c\nd",le="0.5"}"#
        );
        assert_eq!(labels([].iter(), None), "");
    }

    #[test]
    fn prometheus_mode_parses() {
        #[derive(Deserialize)]
        struct T {
            p: PrometheusMode,
        }
        let parse = |s: &str| toml::from_str::<T>(&format!("p = \"{s}\"")).map(|t| t.p);
        assert_eq!(parse("off").unwrap(), PrometheusMode::Off);
        assert_eq!(parse("admin").unwrap(), PrometheusMode::Admin);
        assert_eq!(
            parse("127.0.0.1:9464").unwrap(),
            PrometheusMode::Listen("127.0.0.1:9464".parse().unwrap())
        );
        let e = parse("everyone").unwrap_err().to_string();
        assert!(e.contains("`everyone`"), "{e}");
    }
}
