//! The HTTP application: routes, shared state and layers.
//!
//! What every request passes, outermost first, in one service ([`App`]) rather than as layers
//! of the router:
//! 1. A panic anywhere in its handling becomes a 500 in OpenAI's error envelope.
//! 2. [`request_context`]: gives every request an id (`x-gateway-request-id` on every response),
//!    authenticates `/v1/*` with a user's gateway key and `/admin/*` with the admin key, and logs
//!    each request once (errors included).
//! 3. The drain ([`crate::drain::track`]): counts the request in flight until its answer ends.
//! 4. `DefaultBodyLimit`: a body over `server.max_body_bytes` is refused (a JSON route's 400
//!    says the length limit was exceeded; a file upload's is a 413).
//! 5. [`Dispatch`]: `POST /v1/chat/completions` straight to its handler, the rest to the router.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gw_store::{Remembered, Store};
use llm_gateway::cache::{CacheBackend, RedisCache};
use llm_gateway::ratelimit::{RateLimiter, RateLimiters};
use llm_gateway::{Cache, MemoryCache};
use llm_gateway::{Gateway, PriceCatalog, ProviderLimits, Registry, SecretString};
use tracing::Instrument;

use crate::config::{Config, ConfigError, KeyEntry};
use crate::error::{ApiError, LoggedError};
use crate::log_writer::{REQUEST_TARGET, RequestLine};
use crate::routes;

/// The header carrying the gateway's id for a request. A `HeaderName` made once: inserting a
/// custom header by its `&str` name copies the name into a new allocation every time.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-gateway-request-id");
/// The header carrying the recorded cost of a request in USD.
pub const COST_HEADER: HeaderName = HeaderName::from_static("x-gateway-cost-usd");

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Gateway,
    keys: Keys,
    /// Incoming limits: per user, per gateway key.
    user_limit: Option<Arc<dyn RateLimiter>>,
    key_limit: Option<Arc<dyn RateLimiter>>,
    store: Option<Store>,
    admin_key: Option<SecretString>,
    unavailable: BTreeMap<String, String>,
    max_body_bytes: usize,
    max_image_bytes: usize,
    drain: Arc<crate::drain::Drain>,
    telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// How often the store is asked whether keys or plans changed elsewhere.
    auth_poll: Duration,
    /// Video jobs: poll settings and the downloaders of their outputs.
    video: Arc<crate::video_jobs::VideoJobs>,
    /// Stored files and trained LoRAs (with a store only).
    media: Option<Arc<crate::media::Media>>,
}

/// Where gateway keys are checked.
enum Keys {
    /// Static keys from the config (a gateway without a store: no plans, no accounting).
    Static(HashMap<String, Caller>),
    /// Users' keys in the store, with recently checked ones remembered.
    Store(Store, KeyCache),
}

/// Recently checked gateway keys, by SHA-256 (the keys themselves are not kept), so most
/// requests need no store lookup. An entry is used for `ttl` or, while the store is watched for
/// key and plan changes made anywhere (see [`watch_auth_changes`]), for about five minutes
/// (`gw_store::Remembered`); revoking a key through this process forgets it at once.
pub(crate) struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Caller, Remembered)>>,
}

/// More entries than this and the cache starts over: a bound on memory, whatever the traffic.
const KEY_CACHE_MAX: usize = 100_000;

impl KeyCache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(key: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(key.as_bytes()).into()
    }

    /// The caller `key` names, if remembered and still trusted: younger than `ttl`, or than its
    /// life while changes are `watched` (asked only of an entry older than `ttl`).
    fn get(&self, key: &str, watched: impl FnOnce() -> bool) -> Option<Caller> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&Self::digest(key))
            .filter(|(_, at)| at.trusted(self.ttl, watched))
            .map(|(caller, _)| caller.clone())
    }

    /// Remembers that `key` names `caller`, unless `unchanged` says otherwise: asked under the
    /// cache's lock, so a lookup that raced a drop of every entry does not remember what it
    /// read before the change.
    fn put(&self, key: &str, caller: &Caller, unchanged: impl FnOnce() -> bool) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !unchanged() {
            return;
        }
        if entries.len() >= KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(Self::digest(key), (caller.clone(), Remembered::now()));
    }

    /// Forgets every entry `matches` (a revoked key, a user whose plan changed).
    pub(crate) fn forget(&self, matches: impl Fn(&Caller) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (caller, _)| !matches(caller));
    }
}

/// Who is calling: the owner of the gateway key.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's id (for static keys: the key's name).
    pub user_id: Arc<str>,
    /// The user's (or static key's) name.
    pub name: Arc<str>,
    /// The user's plan.
    pub plan: Arc<str>,
    /// The gateway key used (for static keys: the key's name).
    pub key_id: Arc<str>,
}

/// The operator, authenticated with the admin key (marks `/admin/*` requests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin;

/// The per-request context the middleware puts in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) id: String,
    /// Whether the request is traced (its server span is sampled); the router creates no spans
    /// for one that is not.
    pub(crate) traced: bool,
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
    /// State over a ready `gateway`, authenticating with static `keys` (no plans, no accounting).
    ///
    /// `unavailable` lists providers that are configured but could not be set up (e.g. no API
    /// key), so their requests get a 503 that says why instead of a 404.
    pub fn with_static_keys(
        gateway: Gateway,
        keys: Vec<(KeyEntry, SecretString)>,
        unavailable: Vec<llm_gateway::Error>,
    ) -> Self {
        let keys = keys
            .into_iter()
            .map(|(entry, secret)| {
                let name: Arc<str> = entry.name.into();
                let caller = Caller {
                    user_id: name.clone(),
                    key_id: name.clone(),
                    name,
                    plan: entry.plan.unwrap_or_else(|| "enterprise".into()).into(),
                };
                (secret.expose().to_owned(), caller)
            })
            .collect();
        Self::assemble(gateway, Keys::Static(keys), None, unavailable)
    }

    /// State over a ready `gateway` whose users, keys, plans and usage live in `store`: every call
    /// is admitted against the caller's plan before it reaches a provider, and accounted after.
    pub fn with_store(
        gateway: Gateway,
        store: Store,
        unavailable: Vec<llm_gateway::Error>,
    ) -> Self {
        let gateway = gateway.with_accounting(Arc::new(store.clone()));
        let cache = KeyCache::new(Duration::from_millis(
            crate::config::StoreSection::default().key_cache_ms,
        ));
        Self::assemble(
            gateway,
            Keys::Store(store.clone(), cache),
            Some(store),
            unavailable,
        )
    }

    /// How long checked keys are remembered (0: not at all). Call it on a new state.
    pub fn with_key_cache(mut self, ttl: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner)
            && let Keys::Store(_, cache) = &mut inner.keys
        {
            cache.ttl = ttl;
        }
        self
    }

    /// The key cache, to forget revoked keys.
    pub(crate) fn key_cache(&self) -> Option<&KeyCache> {
        match &self.inner.keys {
            Keys::Store(_, cache) => Some(cache),
            Keys::Static(_) => None,
        }
    }

    fn assemble(
        gateway: Gateway,
        keys: Keys,
        store: Option<Store>,
        unavailable: Vec<llm_gateway::Error>,
    ) -> Self {
        let unavailable = unavailable
            .into_iter()
            .map(|e| (e.provider().to_owned(), e.to_string()))
            .collect();
        Self {
            inner: Arc::new(Inner {
                gateway,
                keys,
                user_limit: None,
                key_limit: None,
                store,
                admin_key: None,
                unavailable,
                max_body_bytes: crate::config::ServerSection::default().max_body_bytes,
                max_image_bytes: crate::config::ServerSection::default().max_image_bytes,
                drain: Arc::default(),
                telemetry: None,
                auth_poll: Duration::from_millis(
                    crate::config::StoreSection::default().auth_poll_ms,
                ),
                video: Arc::default(),
                media: None,
            }),
        }
    }

    /// Builds the whole state from a configuration: providers, retry policy, prices, and the
    /// store (connected, migrated, maintenance started) or the static keys.
    ///
    /// Providers that cannot be set up are logged and left out; anything else wrong is an error
    /// that names the field.
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let store = if config.store.enabled {
            let store = open_store(config, true).await?;
            store
                .spawn_maintenance(config.store.maintenance())
                .map_err(|e| ConfigError::new("store", e))?;
            Some(store)
        } else {
            None
        };
        Self::from_config_with_store(config, store).await
    }

    /// As [`AppState::from_config`], with an already opened store (tests and the contract
    /// runner prepare users and usage in it first).
    pub async fn from_config_with_store(
        config: &Config,
        store: Option<Store>,
    ) -> Result<Self, ConfigError> {
        let limiters = RateLimiters::from_config(&config.rate_limits.store)
            .await
            .map_err(|e| ConfigError::new("rate_limits.store", e))?;
        let (gateway, skipped) = build_gateway(config, &limiters)?;
        let mut state = match store {
            Some(store) => Self::with_store(gateway, store, skipped)
                .with_key_cache(Duration::from_millis(config.store.key_cache_ms)),
            None => {
                let keys = config.resolve_keys()?;
                if keys.is_empty() {
                    tracing::warn!(
                        "no gateway keys configured ([[auth.keys]]): every /v1 request will get 401"
                    );
                }
                Self::with_static_keys(gateway, keys, skipped)
            }
        };
        let admin_key = match &config.admin.key_env {
            Some(var) => match std::env::var(var) {
                Ok(key) if key.trim().len() >= 16 => Some(SecretString::new(key.trim())),
                Ok(_) => {
                    return Err(ConfigError::new(
                        "admin.key_env",
                        format!("the admin key in {var} must be at least 16 characters"),
                    ));
                }
                Err(_) => {
                    tracing::warn!(
                        "admin.key_env names {var}, which is not set: the admin routes are off"
                    );
                    None
                }
            },
            None => None,
        };
        let incoming = |name: &str, limits: &Option<llm_gateway::ratelimit::RateLimitConfig>| {
            limits
                .and_then(|l| l.requests())
                .map(|quota| limiters.limiter(name, quota))
        };
        if let Some(inner) = Arc::get_mut(&mut state.inner) {
            inner.max_body_bytes = config.server.max_body_bytes;
            inner.max_image_bytes = config.server.max_image_bytes;
            inner.auth_poll = Duration::from_millis(config.store.auth_poll_ms.max(1));
            inner.admin_key = admin_key;
            inner.user_limit = incoming("in-user-requests", &config.rate_limits.users);
            inner.key_limit = incoming("in-key-requests", &config.rate_limits.keys);
            inner.video = Arc::new(crate::video_jobs::VideoJobs::new(
                config.jobs.clone(),
                &config.providers,
                config.media.max_file_bytes,
            ));
            if inner.store.is_some() {
                inner.media = Some(Arc::new(
                    crate::media::Media::new(&config.media)
                        .map_err(|(at, problem)| ConfigError::new(at, problem))?,
                ));
            }
        }
        Ok(state)
    }

    /// Turns the admin routes on with `key` (the server reads it from `[admin] key_env`). Call
    /// it on a new state, before the state is cloned into a router.
    pub fn with_admin_key(mut self, key: SecretString) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.admin_key = Some(key),
            None => tracing::error!(
                "with_admin_key on a state already in use: the admin key was not set"
            ),
        }
        self
    }

    /// Reports to `telemetry`: its observer and content settings on the router, incoming
    /// `traceparent` headers continued, `/metrics` served. Call it on a new state, before the
    /// state is cloned into a router.
    pub fn with_telemetry(mut self, telemetry: Arc<crate::telemetry::Telemetry>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.gateway = telemetry.attach(inner.gateway.clone());
                inner.telemetry = Some(telemetry);
            }
            None => {
                tracing::error!("with_telemetry on a state already in use: telemetry was not set")
            }
        }
        self
    }

    /// The telemetry, when set.
    pub(crate) fn telemetry(&self) -> Option<&crate::telemetry::Telemetry> {
        self.inner.telemetry.as_deref()
    }

    /// The router.
    pub fn gateway(&self) -> &Gateway {
        &self.inner.gateway
    }

    /// The requests in flight, for a graceful shutdown.
    pub fn drain(&self) -> Arc<crate::drain::Drain> {
        Arc::clone(&self.inner.drain)
    }

    /// The largest image an edit request may upload, in bytes (`server.max_image_bytes`).
    pub(crate) fn max_image_bytes(&self) -> usize {
        self.inner.max_image_bytes
    }

    /// Video jobs' settings and downloaders.
    pub(crate) fn video_jobs(&self) -> &crate::video_jobs::VideoJobs {
        &self.inner.video
    }

    /// Stored files and trained LoRAs, when the gateway runs with a store.
    pub(crate) fn media(&self) -> Option<&crate::media::Media> {
        self.inner.media.as_deref()
    }

    /// The prices in force.
    pub fn pricing(&self) -> &PriceCatalog {
        self.inner.gateway.pricing()
    }

    /// The store, when the gateway runs with one.
    pub fn store(&self) -> Option<&Store> {
        self.inner.store.as_ref()
    }

    /// Why `provider` is configured but unavailable, if it is.
    pub(crate) fn unavailable(&self, provider: &str) -> Option<&str> {
        self.inner.unavailable.get(provider).map(String::as_str)
    }
}

/// Opens (and migrates) the store the configuration names, with its plans; a gateway that
/// serves requests (`serving`) also keeps the settlement journal and replays what an earlier
/// process left in it.
pub async fn open_store(config: &Config, serving: bool) -> Result<Store, ConfigError> {
    let mut options = gw_store::StoreOptions::new();
    if serving && let Some(path) = config.store.journal_path() {
        options = options.journal(path);
    }
    if let Some(path) = &config.store.plans {
        let plans = gw_store::Plans::load(path).map_err(|e| ConfigError::new("store.plans", e))?;
        options = options.plans(plans);
    }
    if let Some(max) = config.store.max_connections {
        options = options.max_connections(max);
    }
    Store::connect_with(&config.store.url, options)
        .await
        .map_err(|e| {
            let field = if e.kind() == &llm_gateway::ErrorKind::Config
                && e.to_string().contains("settlement journal")
            {
                "store.journal"
            } else {
                "store.url"
            };
            ConfigError::new(field, e)
        })
}

/// The router from the configuration: providers, retries, prices, routing and outgoing rate
/// limits; and the providers left out.
fn build_gateway(
    config: &Config,
    limiters: &RateLimiters,
) -> Result<(Gateway, Vec<llm_gateway::Error>), ConfigError> {
    let mut registry = Registry::new();
    let skipped = llm_gateway::register_enabled(&mut registry, &config.providers)
        .map_err(ConfigError::from)?;
    for e in &skipped {
        tracing::warn!(provider = e.provider(), "provider left out: {e}");
    }
    let mut overrides = None;
    if let Some(path) = &config.pricing.overrides {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "pricing.overrides",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        overrides = Some(
            PriceCatalog::from_toml(&text, &path.display().to_string())
                .map_err(ConfigError::from)?,
        );
    }
    config
        .routing
        .validate(|p| config.providers.contains_key(p))
        .map_err(ConfigError::from)?;
    let mut gateway = Gateway::new(registry)
        .with_retry(config.retry.policy())
        .with_routing(config.routing.clone())
        .map_err(ConfigError::from)?;
    if let Some(overrides) = overrides {
        gateway = gateway.with_price_overrides(overrides);
    }
    for (provider, limits) in &config.rate_limits.providers {
        if !config.providers.contains_key(provider) {
            return Err(ConfigError::new(
                format!("rate_limits.providers.{provider}"),
                "no such provider under [providers]",
            ));
        }
        gateway = gateway
            .with_provider_limits(
                provider,
                ProviderLimits {
                    requests: limits
                        .requests()
                        .map(|q| limiters.limiter(&format!("out-{provider}-requests"), q)),
                    tokens: limits
                        .tokens()
                        .map(|q| limiters.limiter(&format!("out-{provider}-tokens"), q)),
                },
            )
            .map_err(ConfigError::from)?;
    }
    if let Some(section) = &config.cache {
        gateway = gateway
            .with_cache(build_cache(section)?)
            .map_err(ConfigError::from)?;
    }
    Ok((gateway, skipped))
}

/// The response cache `[cache]` describes. A Redis that cannot be reached does not stop the
/// start: the cache connects on first use and is bypassed while Redis is down (a warning says
/// so now, without delaying the start).
fn build_cache(section: &crate::config::CacheSection) -> Result<Cache, ConfigError> {
    use crate::config::CacheStore;
    let backend: Arc<dyn CacheBackend> = match &section.store {
        CacheStore::Memory(memory) => Arc::new(MemoryCache::new(memory.max_bytes)),
        CacheStore::Redis(redis) => {
            let cache = RedisCache::connect_lazy(redis.url.expose(), &redis.prefix)
                .map_err(|e| ConfigError::new("cache.store.url", e))?
                .with_timeouts(
                    Duration::from_millis(redis.connect_timeout_ms),
                    Duration::from_millis(redis.response_timeout_ms),
                )
                .with_mirror_limits(
                    section.config.semantic.max_entries,
                    redis.mirror_namespaces,
                    redis.mirror_bytes,
                );
            let cache = Arc::new(cache);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let probe = Arc::clone(&cache);
                runtime.spawn(async move {
                    if let Err(e) = probe.ping().await {
                        tracing::warn!(
                            error = %e,
                            "the response cache's Redis cannot be reached: requests go on without the cache until it can"
                        );
                    }
                });
            }
            cache
        }
    };
    Cache::new(section.config.clone(), backend).map_err(ConfigError::from)
}

/// Drops remembered keys and plans whenever the store says a key was revoked or a plan changed
/// anywhere (another replica, `gateway admin`): polled every `[store] auth_poll_ms`. While the
/// polls answer, remembered keys and plans are trusted for about five minutes, not only for
/// `[store] key_cache_ms`: every user's entries, remembered together at a start, no longer
/// expire together every few seconds, each user's next request waiting for two lookups. Stops
/// when the state is gone.
fn watch_auth_changes(state: &AppState) {
    let Keys::Store(..) = &state.inner.keys else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let every = state.inner.auth_poll;
    let weak = Arc::downgrade(&state.inner);
    runtime.spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let Keys::Store(store, cache) = &inner.keys else {
                return;
            };
            match store.check_auth_changes().await {
                // The store dropped its plans (and counted a generation) first, so a lookup
                // racing this does not put back what it read before the change.
                Ok(true) => cache.forget(|_| true),
                Ok(false) => {}
                // Caches are kept, each entry for its base time (`key_cache_ms`) once the store
                // could not be asked for that long: without the database, nothing could be
                // checked anyway.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot ask the store for key and plan changes")
                }
            }
            drop(inner);
            tokio::time::sleep(every).await;
        }
    });
}

/// The application with all routes and layers.
pub fn app(
    state: AppState,
) -> App<
    impl tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static,
> {
    watch_auth_changes(&state);
    spawn_job_pollers(&state);
    let max_body = state.inner.max_body_bytes;
    let routes = Router::new()
        .merge(routes::chat::router())
        .merge(routes::embeddings::router())
        .merge(routes::images::router())
        .merge(routes::videos::router())
        .merge(routes::files::router())
        .merge(routes::fine_tuning::router())
        .merge(routes::audio::router())
        .merge(routes::models::router())
        .merge(routes::search::router())
        .merge(routes::usage::router())
        .merge(routes::admin::router())
        .merge(crate::media::router())
        .route("/metrics", get(metrics))
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
        .with_state(state.clone());
    // Only with traces on: a route layer costs every request an allocation.
    let traces = state.telemetry().is_some_and(|t| t.traces());
    let routes = if traces {
        routes.route_layer(axum::middleware::from_fn(record_route))
    } else {
        routes
    };
    let dispatch = Dispatch {
        state: state.clone(),
        router: routes,
        traces,
    };
    App {
        state,
        routes: tower::Layer::layer(&DefaultBodyLimit::max(max_body), dispatch),
    }
}

/// The path of the route [`Dispatch`] serves without the router.
const CHAT_PATH: &str = "/v1/chat/completions";

/// The routes behind [`App`]: `POST /v1/chat/completions`, most of a gateway's traffic, handed
/// straight to its handler ([`routes::chat::direct`]), every other request to the router.
///
/// Through the router a chat completion cost about 3,900 instructions more (callgrind, proxied,
/// 102,100 against 98,300 a request; a stream 3,400 more): matching the path and method, a
/// matched-path and a parameters extension, a boxed route service cloned and called through
/// three futures, the extractors copying the headers and the request's extensions, and
/// `Content-Length` set on the answer (hyper writes it from the body's exact size anyway). The
/// chat route needs none of it: its path has no parameters, and its handler takes what the
/// extractors took. Any other method on the path still goes to the router, which answers 405.
#[derive(Clone)]
struct Dispatch<R> {
    state: AppState,
    router: R,
    /// Whether traces are on: the route is then named on the server span, as `record_route`
    /// names the router's.
    traces: bool,
}

impl<R> tower::Service<Request> for Dispatch<R>
where
    R: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        futures_util::future::Map<
            std::pin::Pin<Box<dyn Future<Output = Response> + Send + 'static>>,
            fn(Response) -> Result<Response, std::convert::Infallible>,
        >,
        R::Future,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        self.router.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use futures_util::FutureExt;
        use futures_util::future::Either;
        if request.method() == axum::http::Method::POST && request.uri().path() == CHAT_PATH {
            if self.traces {
                name_route(&request, CHAT_PATH);
            }
            // Boxed as it is made, then mapped: boxing the mapped future moved the request's
            // whole future twice (into the map, then into the box).
            let served: std::pin::Pin<Box<dyn Future<Output = Response> + Send>> =
                Box::pin(routes::chat::direct(self.state.clone(), request));
            return Either::Left(served.map(Ok));
        }
        Either::Right(self.router.call(request))
    }
}

/// The gateway's HTTP service: [`request_context`] and the drain around the routes, as one
/// service, not layers on every route. (A router's layers wrap each route, and axum clones a
/// route's whole stack of boxed services, one allocation per layer, on every request.)
///
/// Serve it with `axum::serve(listener, app(state))`, or call it as a `tower::Service`.
#[derive(Clone)]
pub struct App<S> {
    state: AppState,
    routes: S,
}

impl<S> tower::Service<Request> for App<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> <Self as tower::Service<Request>>::Future {
        use futures_util::FutureExt;
        let handled = request_context(self.state.clone(), self.routes.clone(), request);
        // A panic anywhere in a request's handling becomes a 500 in OpenAI's error envelope.
        Box::pin(
            std::panic::AssertUnwindSafe(handled)
                .catch_unwind()
                .map(|r| {
                    Ok(r.unwrap_or_else(|_| {
                        ApiError::internal("the gateway failed while handling this request")
                            .into_response()
                    }))
                }),
        )
    }
}

/// `axum::serve` takes the service itself, as it takes a `Router`: each connection gets a copy.
impl<'a, L, S> tower::Service<axum::serve::IncomingStream<'a, L>> for App<S>
where
    L: axum::serve::Listener,
    S: Clone,
{
    type Response = Self;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(
        &mut self,
        _: axum::serve::IncomingStream<'a, L>,
    ) -> std::future::Ready<Result<Self, std::convert::Infallible>> {
        std::future::ready(Ok(self.clone()))
    }
}

/// Starts the background pollers of video and fine-tuning jobs (`[jobs]` settings): every
/// `poll_interval_ms`, each due job whose lease this replica takes (unfinished, no other replica
/// polling it) is advanced once; a fine-tuning job's LoRA is copied and its end settled when it
/// has ended. Each runs while the state lives, and holds it (with the gateway and its upstream
/// connections) only during a round, never while it waits for the next: a dropped state's
/// connections close at once, not up to an interval later. Nothing starts when the interval is
/// 0 or there is no store.
fn spawn_job_pollers(state: &AppState) {
    let settings = &state.inner.video.settings;
    if settings.poll_interval_ms == 0 || state.store().is_none() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let every = Duration::from_millis(settings.poll_interval_ms);
    let lease = Duration::from_millis(settings.lease_ms).max(every * 2);
    spawn_rounds(&runtime, state, every, move |state| async move {
        if let Some(store) = state.store() {
            crate::video_jobs::poll_due(state.gateway(), store, lease, every).await;
        }
    });
    spawn_rounds(&runtime, state, every, move |state| async move {
        crate::fine_tuning_jobs::poll_due(&state, lease, every).await;
    });
}

/// Runs `round` every `every` while the state lives, handing it the state for that round only:
/// the round's future owns it and drops it before the wait for the next.
fn spawn_rounds<F, Fut>(
    runtime: &tokio::runtime::Handle,
    state: &AppState,
    every: Duration,
    round: F,
) where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let alive = Arc::downgrade(&state.inner);
    runtime.spawn(async move {
        while let Some(inner) = alive.upgrade() {
            round(AppState { inner }).await;
            tokio::time::sleep(every).await;
        }
    });
}

/// `/metrics` on a listener of its own (`[telemetry] prometheus = "<address>"`): no key, so bind
/// it where only the scraper reaches.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move {
                match state.telemetry().and_then(|t| t.prometheus_text()) {
                    Some(text) => prometheus_response(text),
                    None => ApiError::not_found("metrics are off").into_response(),
                }
            }),
        )
        .with_state(state)
}

/// `GET /metrics` on the main listener: behind the admin key (`[telemetry] prometheus = "admin"`).
async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    use crate::telemetry::PrometheusMode;
    let Some(telemetry) = state.telemetry() else {
        return ApiError::not_found("metrics are off: set [telemetry] prometheus").into_response();
    };
    match telemetry.prometheus_mode() {
        PrometheusMode::Admin => {
            if let Err(e) = authenticate_admin(&state, &request) {
                return e.into_response();
            }
        }
        PrometheusMode::Listen(addr) => {
            return ApiError::not_found(format!("metrics are served on {addr}")).into_response();
        }
        PrometheusMode::Off => {
            return ApiError::not_found("metrics are off: set [telemetry] prometheus")
                .into_response();
        }
    }
    match telemetry.prometheus_text() {
        Some(text) => prometheus_response(text),
        None => ApiError::not_found("metrics are off").into_response(),
    }
}

fn prometheus_response(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Reads the W3C `traceparent` / `tracestate` headers of a request.
struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The OpenTelemetry span of one HTTP request (the HTTP server conventions,
/// <https://opentelemetry.io/docs/specs/semconv/http/http-spans/>), continuing the caller's
/// trace when it sent a `traceparent`.
fn server_span(state: &AppState, request: &Request, id: &str) -> tracing::Span {
    if !tracing::enabled!(target: llm_gateway::telemetry::OTEL_TARGET, tracing::Level::INFO) {
        return tracing::Span::none();
    }
    let method = request.method().as_str();
    let path = request.uri().path();
    // Named by its method until routing names its route ([`record_route`]).
    let span = tracing::info_span!(
        target: llm_gateway::telemetry::OTEL_TARGET,
        "http.server",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = tracing::field::Empty,
        url.path = path,
        http.response.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        gateway.request_id = id,
        gateway.user.id = tracing::field::Empty,
        gateway.plan = tracing::field::Empty,
    );
    if !span.is_disabled() && state.telemetry().is_some_and(|t| t.traces()) {
        use opentelemetry::propagation::TextMapPropagator;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .extract(&HeaderExtractor(request.headers()));
        let _ = span.set_parent(parent);
    }
    span
}

/// The OpenTelemetry server span of a request, for [`record_route`].
#[derive(Clone)]
struct ServerSpan(tracing::Span);

/// Names the server span by the route the request matched (`POST /v1/videos/{id}`, never the
/// id itself), once routing has found it: the span starts before routing, which runs inside it.
async fn record_route(request: Request, next: axum::middleware::Next) -> Response {
    if let Some(route) = request.extensions().get::<axum::extract::MatchedPath>() {
        name_route(&request, route.as_str());
    }
    next.run(request).await
}

/// Names `request`'s server span, when it has one, after `route`.
fn name_route(request: &Request, route: &str) {
    if let Some(ServerSpan(span)) = request.extensions().get::<ServerSpan>() {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.record("http.route", route);
        // The OpenTelemetry span has started (whether it is sampled was read from it), so its
        // name is changed on it: recording `otel.name` now would be ignored.
        span.context()
            .span()
            .update_name(format!("{} {route}", request.method()));
    }
}

/// Whether `span` goes to OpenTelemetry and was sampled (the configured sampler decided when
/// it started, from the caller's `traceparent` when it sent one).
fn is_sampled(span: &tracing::Span) -> bool {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    !span.is_disabled() && span.context().span().span_context().is_sampled()
}

/// Request id, authentication of `/v1/*`, and one log line per request.
async fn request_context<S>(state: AppState, routes: S, mut request: Request) -> Response
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
{
    let id = new_request_id();
    let (at, started) = (SystemTime::now(), Instant::now());
    let method = request.method().clone();
    let path = RequestLine::path_of(request.uri());
    let (api, admin) = (path.starts_with("/v1/"), path.starts_with("/admin/"));
    let otel = server_span(&state, &request, &id);
    // The request's context for what is logged while it runs, at `debug`: the request's own
    // line says who and what, and the warnings made on its way name its id themselves.
    let span = tracing::debug_span!(
        parent: &otel,
        "request",
        id = %id,
        %method,
        %path,
        caller = tracing::field::Empty
    );

    let traced = is_sampled(&otel);
    let mut who: Option<Arc<str>> = None;
    // Boxed as it is made (as the chat route's work is): it holds the handler's future, and
    // wrapped in its spans it would be copied whole twice, then again with this future.
    let handled = Box::pin(async {
        if api {
            let caller = match authenticate(&state, bearer(&request)).await {
                Ok(caller) => caller,
                Err(e) => return e.into_response(),
            };
            span.record("caller", &*caller.name);
            who = Some(Arc::clone(&caller.name));
            otel.record("gateway.user.id", &*caller.user_id);
            otel.record("gateway.plan", &*caller.plan);
            if let Err(e) = check_incoming(&state, &caller).await {
                if let Some(metrics) = state.telemetry().and_then(|t| t.metrics()) {
                    metrics.refused_incoming();
                }
                return e.into_response();
            }
            request.extensions_mut().insert(caller);
        } else if admin {
            match authenticate_admin(&state, &request) {
                Ok(admin) => {
                    span.record("caller", "admin");
                    who = Some(Arc::clone(&ADMIN));
                    request.extensions_mut().insert(admin);
                }
                Err(e) => return e.into_response(),
            }
        }
        request.extensions_mut().insert(RequestContext {
            id: id.clone(),
            traced,
        });
        if !otel.is_disabled() {
            request.extensions_mut().insert(ServerSpan(otel.clone()));
        }
        crate::drain::track(&state, async move {
            let Ok(response) = tower::ServiceExt::oneshot(routes, request).await;
            response
        })
        .await
    })
    .instrument(span.clone());
    // The server span wraps the request only when it records.
    let mut response = if otel.is_disabled() {
        handled.await
    } else {
        handled.instrument(otel.clone()).await
    };

    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let status = response.status().as_u16();
    otel.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        // The HTTP conventions: a server span is an error only for a 5xx.
        otel.record("error.type", response.status().as_str());
        otel.record("otel.status_code", "error");
    }
    let elapsed = started.elapsed();
    let failed = response.extensions().get::<LoggedError>();
    match crate::log_writer::request_lines() {
        // Handed over as it is: the log's own thread formats it.
        Some(log) => {
            let enabled = match failed {
                Some(_) => tracing::enabled!(target: REQUEST_TARGET, tracing::Level::WARN),
                None => tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO),
            };
            if enabled {
                log.push_request(RequestLine {
                    at,
                    id,
                    method,
                    path,
                    caller: who,
                    status,
                    elapsed,
                    error: failed.map(|e| (e.kind, e.message.clone())),
                });
            }
        }
        None => {
            let _enter = span.enter();
            let (path, caller) = (&*path, who.as_deref());
            let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            match failed {
                Some(e) => {
                    tracing::warn!(target: REQUEST_TARGET, %id, %method, path, caller, status, elapsed_ms, error_type = e.kind, error = %e.message, "request failed")
                }
                None => {
                    tracing::info!(target: REQUEST_TARGET, %id, %method, path, caller, status, elapsed_ms, "request done")
                }
            }
        }
    }
    response
}

/// The caller named in the log line of an admin request.
static ADMIN: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("admin"));

/// The bearer token of a request, or a 401 saying what is wrong with it.
fn bearer(request: &Request) -> Result<&str, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "missing gateway key: send `Authorization: Bearer <gateway key>`",
        ));
    };
    value
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
        })
}

async fn authenticate(state: &AppState, key: Result<&str, ApiError>) -> Result<Caller, ApiError> {
    let key = key?;
    match &state.inner.keys {
        Keys::Static(keys) => keys
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("invalid gateway key")),
        Keys::Store(store, cache) => {
            if !gw_store::is_well_formed_key(key) {
                return Err(ApiError::unauthenticated(
                    "malformed gateway key: expected `gw_` followed by 40 letters and digits",
                ));
            }
            if let Some(caller) = cache.get(key, || store.watches_auth_within(cache.ttl)) {
                return Ok(caller);
            }
            let generation = store.auth_generation();
            match store.authenticate(key).await {
                Ok(Some(user)) => {
                    let caller = Caller {
                        user_id: user.user_id.into(),
                        name: user.name.into(),
                        plan: user.plan.into(),
                        key_id: user.key_id.into(),
                    };
                    cache.put(key, &caller, || store.auth_generation() == generation);
                    Ok(caller)
                }
                Ok(None) => Err(ApiError::unauthenticated("invalid or revoked gateway key")),
                Err(e) => Err(ApiError::from(e)),
            }
        }
    }
}

/// The caller's own rate limits (per user, per key): 429 with `Retry-After` when reached; 503
/// when a shared limiter cannot be reached (never an unchecked pass).
async fn check_incoming(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let checks = [
        (state.inner.user_limit.as_ref(), &*caller.user_id, "user"),
        (
            state.inner.key_limit.as_ref(),
            &*caller.key_id,
            "gateway key",
        ),
    ];
    for (limiter, key, what) in checks {
        let Some(limiter) = limiter else { continue };
        if let Some(wait) = limiter.check(key, 1).await?.retry_after() {
            let mut e = ApiError::from(llm_gateway::Error::new(
                llm_gateway::ErrorKind::RateLimited {
                    retry_after: Some(wait),
                },
                format!(
                    "rate limit of this {what} reached; retry after {} ms",
                    wait.as_millis()
                ),
            ));
            e.code = Some("rate_limit_exceeded");
            return Err(e);
        }
    }
    Ok(())
}

fn authenticate_admin(state: &AppState, request: &Request) -> Result<Admin, ApiError> {
    let Some(admin_key) = &state.inner.admin_key else {
        return Err(ApiError::not_found(
            "the admin routes are off: set [admin] key_env and that variable to enable them",
        ));
    };
    let key = bearer(request)?;
    if constant_time_eq(key.as_bytes(), admin_key.expose().as_bytes()) {
        Ok(Admin)
    } else {
        Err(ApiError::unauthenticated("invalid admin key"))
    }
}

/// Compares without an early exit, so the time taken says nothing about how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn new_request_id() -> String {
    request_id(fastrand::u64(..), fastrand::u32(..))
}

/// `gw-` and the 24 hex digits of `high` and `low`, written digit by digit (`format!` with its
/// padding cost about 1,800 instructions, on every request).
fn request_id(high: u64, low: u32) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(27);
    id.push_str("gw-");
    let digits = (0..16)
        .rev()
        .map(|i| high >> (4 * i))
        .chain((0..8).rev().map(|i| u64::from(low) >> (4 * i)));
    for digit in digits {
        id.push(char::from(HEX[(digit & 0xf) as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str, key: &str) -> Caller {
        Caller {
            user_id: user.into(),
            name: user.into(),
            plan: "free".into(),
            key_id: key.into(),
        }
    }

    #[test]
    fn request_ids_are_the_two_numbers_in_hex() {
        for (high, low) in [
            (0, 0),
            (u64::MAX, u32::MAX),
            (0x0123_4567_89ab_cdef, 0x00fe_dc0a),
        ] {
            assert_eq!(request_id(high, low), format!("gw-{high:016x}{low:08x}"));
        }
    }

    #[test]
    fn the_key_cache_expires_forgets_and_can_be_off() {
        let cache = KeyCache::new(Duration::from_secs(60));
        cache.put("gw_secret", &caller("u1", "k1"), || true);
        assert_eq!(
            cache.get("gw_secret", || false).unwrap().key_id.as_ref(),
            "k1"
        );
        assert!(cache.get("gw_other", || false).is_none());
        cache.forget(|c| &*c.key_id == "k1");
        assert!(cache.get("gw_secret", || false).is_none());

        // Past its base time an entry is used only while changes are watched.
        let expired = KeyCache::new(Duration::from_nanos(1));
        expired.put("gw_secret", &caller("u1", "k1"), || true);
        std::thread::sleep(Duration::from_millis(2));
        assert!(expired.get("gw_secret", || false).is_none());
        assert!(expired.get("gw_secret", || true).is_some());

        // A lookup that raced a drop of every entry remembers nothing.
        cache.put("gw_secret", &caller("u1", "k1"), || false);
        assert!(cache.get("gw_secret", || true).is_none());

        let off = KeyCache::new(Duration::ZERO);
        off.put("gw_secret", &caller("u1", "k1"), || true);
        assert!(off.get("gw_secret", || true).is_none());
    }

    #[test]
    fn the_key_cache_holds_digests_not_keys() {
        let cache = KeyCache::new(Duration::from_secs(60));
        cache.put("gw_supersecret", &caller("u1", "k1"), || true);
        let entries = cache.entries.lock().unwrap();
        let shown = format!("{:?}", entries.keys().collect::<Vec<_>>());
        assert!(!shown.contains("supersecret"));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
