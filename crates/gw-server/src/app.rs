//! The HTTP application: routes, shared state and layers.
//!
//! Layers, outermost first:
//! 1. `CatchPanicLayer`: a panic in a handler becomes a 500 in OpenAI's error envelope.
//! 2. `DefaultBodyLimit`: bodies over `server.max_body_bytes` get 413.
//! 3. [`request_context`]: gives every request an id (`x-gateway-request-id` on every response),
//!    authenticates `/v1/*` with a gateway key, and logs each request once (errors included).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use llm_gateway::{Gateway, PriceCatalog, Registry, SecretString};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::config::{Config, ConfigError, KeyEntry};
use crate::error::{ApiError, LoggedError};
use crate::routes;

/// The header carrying the gateway's id for a request.
pub const REQUEST_ID_HEADER: &str = "x-gateway-request-id";
/// The header carrying the recorded cost of a request in USD.
pub const COST_HEADER: &str = "x-gateway-cost-usd";

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Gateway,
    keys: HashMap<String, Caller>,
    pricing: PriceCatalog,
    unavailable: BTreeMap<String, String>,
    max_body_bytes: usize,
}

/// Who is calling: the owner of the gateway key.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's name from the config.
    pub name: String,
    /// The plan of the key's user.
    pub plan: String,
}

/// The per-request context the middleware puts in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) id: String,
}

impl RequestContext {
    pub(crate) fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

impl AppState {
    /// State over a ready `gateway`.
    ///
    /// `unavailable` lists providers that are configured but could not be set up (e.g. no API
    /// key), so their requests get a 503 that says why instead of a 404.
    pub fn new(
        gateway: Gateway,
        keys: Vec<(KeyEntry, SecretString)>,
        pricing: PriceCatalog,
        unavailable: Vec<llm_gateway::Error>,
    ) -> Self {
        let keys = keys
            .into_iter()
            .map(|(entry, secret)| {
                let caller = Caller {
                    name: entry.name,
                    plan: entry.plan.unwrap_or_else(|| "enterprise".into()),
                };
                (secret.expose().to_owned(), caller)
            })
            .collect();
        let unavailable = unavailable
            .into_iter()
            .map(|e| (e.provider().to_owned(), e.to_string()))
            .collect();
        Self {
            inner: Arc::new(Inner {
                gateway,
                keys,
                pricing,
                unavailable,
                max_body_bytes: crate::config::ServerSection::default().max_body_bytes,
            }),
        }
    }

    /// Builds the whole state from a configuration: providers, keys, retry policy and prices.
    ///
    /// Providers that cannot be set up are logged and left out; anything else wrong is an error
    /// that names the field.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut registry = Registry::new();
        let skipped = llm_gateway::register_enabled(&mut registry, &config.providers)
            .map_err(|e| ConfigError(e.to_string()))?;
        for e in &skipped {
            tracing::warn!(provider = e.provider(), "provider left out: {e}");
        }
        let gateway = Gateway::new(registry).with_retry(config.retry.policy());
        let mut pricing = PriceCatalog::builtin();
        if let Some(path) = &config.pricing.overrides {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "pricing.overrides: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let overrides = PriceCatalog::from_toml(&text, &path.display().to_string())
                .map_err(|e| ConfigError(e.to_string()))?;
            pricing.merge(overrides);
        }
        let keys = config.resolve_keys()?;
        if keys.is_empty() {
            tracing::warn!(
                "no gateway keys configured ([[auth.keys]]): every /v1 request will get 401"
            );
        }
        let mut state = Self::new(gateway, keys, pricing, skipped);
        if let Some(inner) = Arc::get_mut(&mut state.inner) {
            inner.max_body_bytes = config.server.max_body_bytes;
        }
        Ok(state)
    }

    /// The router.
    pub fn gateway(&self) -> &Gateway {
        &self.inner.gateway
    }

    /// The prices in force.
    pub fn pricing(&self) -> &PriceCatalog {
        &self.inner.pricing
    }

    /// Why `provider` is configured but unavailable, if it is.
    pub(crate) fn unavailable(&self, provider: &str) -> Option<&str> {
        self.inner.unavailable.get(provider).map(String::as_str)
    }

    fn caller(&self, key: &str) -> Option<&Caller> {
        self.inner.keys.get(key)
    }
}

/// The application with all routes and layers.
pub fn app(state: AppState) -> Router {
    let max_body = state.inner.max_body_bytes;
    Router::new()
        .merge(routes::chat::router())
        .merge(routes::models::router())
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(|request: Request| async move {
            ApiError::not_found(format!(
                "no route for {} {}",
                request.method(),
                request.uri().path()
            ))
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                ApiError::internal("the gateway failed while handling this request").into_response()
            },
        ))
        .with_state(state)
}

/// Request id, authentication of `/v1/*`, and one log line per request.
async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = new_request_id();
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span =
        tracing::info_span!("request", id = %id, %method, %path, caller = tracing::field::Empty);

    let mut response = async {
        if path.starts_with("/v1/") {
            match authenticate(&state, &request) {
                Ok(caller) => {
                    tracing::Span::current().record("caller", caller.name.as_str());
                    request.extensions_mut().insert(caller);
                }
                Err(e) => return e.into_response(),
            }
        }
        request
            .extensions_mut()
            .insert(RequestContext { id: id.clone() });
        next.run(request).await
    }
    .instrument(span.clone())
    .await;

    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _enter = span.enter();
    match response.extensions().get::<LoggedError>() {
        Some(e) => {
            tracing::warn!(status, elapsed_ms, error_type = e.kind, error = %e.message, "request failed")
        }
        None => tracing::info!(status, elapsed_ms, "request done"),
    }
    response
}

fn authenticate(state: &AppState, request: &Request) -> Result<Caller, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "missing gateway key: send `Authorization: Bearer <gateway key>`",
        ));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::unauthenticated(
                "malformed Authorization header: expected `Bearer <gateway key>`",
            )
        })?;
    state
        .caller(key)
        .cloned()
        .ok_or_else(|| ApiError::unauthenticated("invalid gateway key"))
}

fn new_request_id() -> String {
    format!("gw-{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..))
}
