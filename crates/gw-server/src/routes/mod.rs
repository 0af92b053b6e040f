//! One module per API area; each returns its `Router`. What every model-calling route shares
//! (the caller's context, the deadline header, the route and cost headers, mapping a missing
//! provider to 503) lives here.

pub(crate) mod admin;
pub(crate) mod audio;
pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod files;
pub(crate) mod fine_tuning;
pub(crate) mod images;
pub(crate) mod models;
pub(crate) mod search;
pub(crate) mod upload;
pub(crate) mod usage;
pub(crate) mod videos;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use llm_gateway::{CacheControl, CacheMode, CacheStatus, CallContext, Cost, ErrorKind, RouteId};
use serde::de::DeserializeOwned;

use crate::app::{AppState, COST_HEADER, Caller, RequestContext};
use crate::error::ApiError;

/// The header a client uses to shorten (or lengthen) the request's total deadline.
const DEADLINE_HEADER: &str = "x-gateway-deadline-ms";
/// The longest deadline a request may ask for.
const MAX_DEADLINE: Duration = Duration::from_secs(600);
/// The header naming the route that served a request (a `HeaderName`, as
/// [`crate::app::REQUEST_ID_HEADER`]).
const ROUTE_HEADER: HeaderName = HeaderName::from_static("x-gateway-route");
/// The most fallbacks a request may name.
const MAX_FALLBACKS: usize = 8;

/// A JSON request body, taken as axum's [`Json`] takes it, without that extractor's cost on a
/// good body: `Json` parses through `serde_path_to_error`, which allocates a `String` for every
/// key it passes so that it can name the field at fault (about a tenth of a chat request's
/// allocations). Here a body is parsed directly, and only one that fails is parsed again by
/// `Json`, for its rejection: the client gets the same error, naming the same field. A body
/// whose content type is not JSON is left to `Json` whole, so the same types are accepted.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, JsonRejection> {
        if !is_json(request.headers()) {
            let Json(value) = Json::<T>::from_request(request, state).await?;
            return Ok(JsonBody(value));
        }
        let bytes = Bytes::from_request(request, state).await?;
        Self::parse(&bytes)
    }
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// The body as [`FromRequest`] reads it, and the request's headers moved out of it rather
    /// than copied (as axum's `HeaderMap` extractor copies them beside a body extractor). A
    /// JSON body is first offered to `by_hand`, a reader of its common form that gives up
    /// (`None`) on anything else, and read as [`JsonBody::parse`] reads it when it does.
    pub(crate) async fn with_headers<S: Send + Sync>(
        request: Request,
        state: &S,
        by_hand: fn(&str) -> Option<T>,
    ) -> (Result<Self, JsonRejection>, HeaderMap) {
        let (mut parts, body) = request.into_parts();
        if !is_json(&parts.headers) {
            // `Json` refuses a body of another content type; the headers are copied on this
            // path only. Boxed: `Json`'s future is three times the size of the rest, and this
            // future is part of the chat route's, which the server moves whole.
            let headers = parts.headers.clone();
            let body = Box::pin(Self::from_request(Request::from_parts(parts, body), state)).await;
            return (body, headers);
        }
        // Reading the body takes only its limit from the request, never its headers.
        let headers = std::mem::take(&mut parts.headers);
        let body = match Bytes::from_request(Request::from_parts(parts, body), state).await {
            Ok(bytes) => match std::str::from_utf8(&bytes).ok().and_then(by_hand) {
                Some(value) => Ok(JsonBody(value)),
                None => Self::parse(&bytes),
            },
            Err(e) => Err(e.into()),
        };
        (body, headers)
    }

    /// A JSON body parsed directly, and parsed again by `Json` only when that fails, for its
    /// rejection.
    fn parse(bytes: &Bytes) -> Result<Self, JsonRejection> {
        match llm_gateway::from_json_bytes(bytes) {
            Ok(value) => Ok(JsonBody(value)),
            Err(_) => Json::<T>::from_bytes(bytes).map(|Json(value)| JsonBody(value)),
        }
    }
}

/// Whether the request says its body is JSON as axum's [`Json`] reads the content type:
/// `application/json`, or `application/<anything>+json`, parameters allowed, in any case.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    let sub = sub.as_bytes();
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case(b"json")
            || (sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case(b"+json")))
}

/// The call context of a request by `caller` with `headers`, adding `fallbacks`.
pub(crate) fn call_context(
    ctx: &RequestContext,
    caller: Caller,
    headers: &HeaderMap,
    fallbacks: &[String],
) -> Result<CallContext, ApiError> {
    if fallbacks.len() > MAX_FALLBACKS {
        return Err(ApiError::invalid(
            Some("fallbacks".into()),
            format!("at most {MAX_FALLBACKS} fallbacks"),
        ));
    }
    if let Some(i) = fallbacks.iter().position(|f| f.trim().is_empty()) {
        return Err(ApiError::invalid(
            Some(format!("fallbacks[{i}]")),
            "a fallback must name a model",
        ));
    }
    Ok(CallContext {
        request_id: ctx.id.clone(),
        user_id: Some(String::from(&*caller.user_id)),
        deadline: deadline(headers)?,
        fallbacks: fallbacks.to_vec(),
        tags: Arc::default(),
        plan: Some(String::from(&*caller.plan)),
        untraced: !ctx.traced,
        cache: cache_control(headers)?,
    })
}

/// The gateway's own cache header: a comma-separated list of `skip`, `exact`, `semantic` and
/// `refresh`, on requests; what the cache did, on answers.
pub(crate) const CACHE_HEADER: &str = "x-gateway-cache";
/// How long the request's answer is kept, in seconds (within the operator's `max_ttl_secs`).
const CACHE_TTL_HEADER: &str = "x-gateway-cache-ttl";
// The headers a request is read for, as names made once: looked up by text, each name is
// parsed and checked again on every request.
const DEADLINE: HeaderName = HeaderName::from_static(DEADLINE_HEADER);
const CACHE: HeaderName = HeaderName::from_static(CACHE_HEADER);
const CACHE_TTL: HeaderName = HeaderName::from_static(CACHE_TTL_HEADER);

/// What the request asks of the response cache, from `x-gateway-cache`, `x-gateway-cache-ttl`
/// and the request directives of `Cache-Control` (RFC 9111 section 5.2.1): `no-cache` (do not
/// serve a cached answer: call the provider and keep its answer), `no-store` (keep nothing),
/// `max-age=N` (serve only an answer at most N seconds old). Other `Cache-Control` directives are
/// ignored, as HTTP says; anything else malformed is a 400 naming the header.
fn cache_control(headers: &HeaderMap) -> Result<CacheControl, ApiError> {
    let mut control = CacheControl::default();
    let bad = |header: &str, why: String| ApiError::invalid(Some(header.to_owned()), why);
    let mut mode: Option<(CacheMode, &'static str)> = None;
    let mut refresh = false;
    for item in list(headers, &CACHE, &bad)? {
        let asked = match item.to_ascii_lowercase().as_str() {
            "skip" => (CacheMode::Skip, "skip"),
            "exact" => (CacheMode::Exact, "exact"),
            "semantic" => (CacheMode::Semantic, "semantic"),
            "refresh" => {
                refresh = true;
                continue;
            }
            _ => {
                return Err(bad(
                    CACHE_HEADER,
                    format!(
                        "{CACHE_HEADER}: unknown value `{item}`: expected skip, exact, semantic or refresh"
                    ),
                ));
            }
        };
        match mode {
            Some((earlier, name)) if earlier != asked.0 => {
                return Err(bad(
                    CACHE_HEADER,
                    format!(
                        "{CACHE_HEADER}: `{name}` and `{}` contradict each other",
                        asked.1
                    ),
                ));
            }
            _ => mode = Some(asked),
        }
    }
    if let Some((mode, _)) = mode {
        if mode == CacheMode::Skip && refresh {
            return Err(bad(
                CACHE_HEADER,
                format!("{CACHE_HEADER}: `skip` and `refresh` contradict each other"),
            ));
        }
        control.mode = mode;
    }
    if refresh {
        control.read = false;
    }
    for directive in list(headers, &header::CACHE_CONTROL, &bad)? {
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name.trim(), Some(argument.trim())),
            None => (directive, None),
        };
        match name.to_ascii_lowercase().as_str() {
            "no-cache" => control.read = false,
            "no-store" => control.write = false,
            "max-age" => {
                // The argument's token form, or the quoted form recipients should accept
                // (RFC 9111 section 5.2).
                let seconds = argument
                    .map(|a| a.strip_prefix('"').and_then(|a| a.strip_suffix('"')).unwrap_or(a))
                    .and_then(delta_seconds)
                    .ok_or_else(|| {
                        bad(
                            "cache-control",
                            format!("cache-control: `{directive}`: max-age takes a whole number of seconds"),
                        )
                    })?;
                control.max_age = Some(Duration::from_secs(seconds));
            }
            _ => {}
        }
    }
    if let Some(value) = headers.get(&CACHE_TTL) {
        let seconds = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                bad(
                    CACHE_TTL_HEADER,
                    format!("{CACHE_TTL_HEADER} must be a whole number of seconds, at least 1"),
                )
            })?;
        control.ttl = Some(Duration::from_secs(seconds));
    }
    Ok(control)
}

/// The elements of the comma-separated list `name` (every line of it), trimmed, empty ones
/// left out (as HTTP's list syntax wants, RFC 9110 section 5.6.1).
fn list<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    bad: &impl Fn(&str, String) -> ApiError,
) -> Result<Vec<&'a str>, ApiError> {
    let mut items = Vec::new();
    for value in headers.get_all(name) {
        let text = value
            .to_str()
            .map_err(|_| bad(name.as_str(), format!("{name} must be visible ASCII")))?;
        items.extend(text.split(',').map(str::trim).filter(|i| !i.is_empty()));
    }
    Ok(items)
}

/// A `delta-seconds` value (RFC 9111 section 1.2.2): digits, a value too large for the clock
/// taken as the largest there is.
fn delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// Says what the response cache did (`x-gateway-cache`), and how old a served answer is
/// (`age`, in whole seconds, as HTTP's `Age`).
pub(crate) fn set_cache(response: &mut Response, status: &CacheStatus) {
    let headers = response.headers_mut();
    if let Some(value) = status.header().and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(CACHE, value);
    }
    if let Some(age) = status.age() {
        headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
    }
}

/// The request's deadline from `x-gateway-deadline-ms`, if it set one.
fn deadline(headers: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get(&DEADLINE) else {
        return Ok(None);
    };
    let ms = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .filter(|d| !d.is_zero() && *d <= MAX_DEADLINE);
    match ms {
        Some(d) => Ok(Some(d)),
        None => Err(ApiError::invalid(
            Some(DEADLINE_HEADER.into()),
            format!(
                "{DEADLINE_HEADER} must be a whole number of milliseconds from 1 to {}",
                MAX_DEADLINE.as_millis()
            ),
        )),
    }
}

/// Stores a `kind` job (`video`, `fine-tuning`) its provider has accepted as `provider_job` on
/// `route` (and will bill), to the end even when the client goes away meanwhile: the handler
/// waits for a task of its own, which is not dropped with it. A job stored is followed and
/// charged by the job workers. One that cannot be stored is logged: the provider has it, but it
/// cannot be followed, and its reservation stays open until it is charged at its estimate as
/// abandoned.
pub(crate) async fn store_accepted_job<T: Send + 'static>(
    kind: &str,
    ctx: &RequestContext,
    provider_job: &llm_gateway::JobId,
    route: &RouteId,
    storing: impl Future<Output = llm_gateway::Result<T>> + Send + 'static,
) -> Result<T, ApiError> {
    let stored = tokio::spawn(storing).await.unwrap_or_else(|_| {
        Err(llm_gateway::Error::new(
            ErrorKind::Unavailable,
            "storing the job was cut short",
        ))
    });
    stored.map_err(|e| {
        tracing::error!(
            request_id = %ctx.id,
            provider_job = %provider_job,
            route = %route,
            error = %e,
            "a submitted {kind} job could not be stored"
        );
        ApiError::from(e)
    })
}

/// The client's error for `e` on a request for `model`: a 503 saying why when the model's
/// provider is configured but could not be set up (its key is not set), else the usual mapping.
pub(crate) fn model_error(state: &AppState, model: &str, e: llm_gateway::Error) -> ApiError {
    let provider = model.split_once('/').map_or(model, |(p, _)| p);
    match (e.kind(), state.unavailable(provider)) {
        (ErrorKind::NotFound, Some(why)) => ApiError::unavailable(why.to_owned()),
        _ => ApiError::from(e),
    }
}

/// Names the route that served the request (`x-gateway-route`).
pub(crate) fn set_route(response: &mut Response, route: &RouteId) {
    if let Some(v) = formatted_value(format_args!("{route}")) {
        response.headers_mut().insert(ROUTE_HEADER, v);
    }
}

/// A `200` answer whose body is the JSON `body`.
pub(crate) fn json_answer(body: Vec<u8>) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The recorded cost (`x-gateway-cost-usd`): exact decimal USD, or `unknown`.
pub(crate) fn set_cost(response: &mut Response, cost: Option<Cost>) {
    let value = cost
        .and_then(|c| formatted_value(format_args!("{c}")))
        .unwrap_or(HeaderValue::from_static("unknown"));
    response.headers_mut().insert(COST_HEADER, value);
}

/// `args` as a header value, or `None` when it is not one. Formatted on the stack when it fits
/// (routes and costs do), so the value is the one allocation, not a `String` copied into it.
fn formatted_value(args: std::fmt::Arguments<'_>) -> Option<HeaderValue> {
    struct Stack {
        buf: [u8; 128],
        len: usize,
    }
    impl std::fmt::Write for Stack {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            self.buf
                .get_mut(self.len..end)
                .ok_or(std::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut stack = Stack {
        buf: [0; 128],
        len: 0,
    };
    match std::fmt::write(&mut stack, args) {
        Ok(()) => HeaderValue::from_bytes(&stack.buf[..stack.len]).ok(),
        Err(_) => HeaderValue::from_str(&args.to_string()).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Body {
        model: String,
        messages: Vec<Message>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Message {
        content: String,
    }

    /// What `JsonBody` and axum's `Json` make of one request: the body, or the rejection's
    /// status and text.
    async fn both(content_type: Option<&str>, body: &str) -> [Result<Body, (u16, String)>; 2] {
        let request = || {
            let mut builder = Request::builder().method("POST").uri("/");
            if let Some(t) = content_type {
                builder = builder.header(header::CONTENT_TYPE, t);
            }
            builder
                .body(axum::body::Body::from(body.to_owned()))
                .unwrap()
        };
        let rejected = |r: JsonRejection| (r.status().as_u16(), r.body_text());
        [
            JsonBody::<Body>::from_request(request(), &())
                .await
                .map(|JsonBody(b)| b)
                .map_err(rejected),
            Json::<Body>::from_request(request(), &())
                .await
                .map(|Json(b)| b)
                .map_err(rejected),
        ]
    }

    #[tokio::test]
    async fn json_bodies_are_read_and_refused_as_axum_does() {
        let good = r#"{"model":"m","messages":[{"content":"hi"}]}"#;
        let cases = [
            (Some("application/json"), good),
            (Some("Application/JSON; charset=utf-8"), good),
            (Some("application/vnd.api+json"), good),
            (Some("text/plain"), good),
            (None, good),
            (Some("application/jsonx"), good),
            (
                Some("application/json"),
                r#"{"model":"m","messages":[{"content":5}]}"#,
            ),
            (
                Some("application/json"),
                r#"{"model":"m","messages":[{"content":"hi"}]"#,
            ),
            (
                Some("application/json"),
                r#"{"model":"m","messages":[]} trailing"#,
            ),
            (Some("application/json"), r#"{"messages":[]}"#),
        ];
        for (content_type, body) in cases {
            let [ours, axums] = both(content_type, body).await;
            assert_eq!(ours, axums, "{content_type:?} {body}");
        }
        let [ours, _] = both(
            Some("application/json"),
            r#"{"model":"m","messages":[{"content":5}]}"#,
        )
        .await;
        let (status, text) = ours.unwrap_err();
        assert_eq!(status, 422);
        assert!(text.contains("messages[0].content"), "{text}");
    }

    #[test]
    fn header_values_are_formatted_whatever_their_length() {
        let route = RouteId::new("hf", "meta-llama/Llama-3.1-8B-Instruct:cerebras");
        let v = formatted_value(format_args!("{route}")).unwrap();
        assert_eq!(v, "hf/meta-llama/Llama-3.1-8B-Instruct:cerebras");
        // Past the stack buffer: formatted on the heap instead, not cut.
        let long = "m".repeat(300);
        let v = formatted_value(format_args!("hf/{long}")).unwrap();
        assert_eq!(v.len(), 303);
        // Not a header value: none, rather than a broken header.
        assert!(formatted_value(format_args!("a\nb")).is_none());
    }

    fn control(pairs: &[(&str, &str)]) -> Result<CacheControl, ApiError> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        cache_control(&headers)
    }

    #[test]
    fn cache_headers_become_the_cache_control() {
        assert_eq!(control(&[]).unwrap(), CacheControl::default());
        let c = control(&[("x-gateway-cache", "Semantic, refresh")]).unwrap();
        assert_eq!(
            (c.mode, c.read, c.write),
            (CacheMode::Semantic, false, true)
        );
        let c = control(&[("x-gateway-cache", "skip"), ("x-gateway-cache", "skip,")]).unwrap();
        assert_eq!(c.mode, CacheMode::Skip);
        let c = control(&[("x-gateway-cache", "exact")]).unwrap();
        assert_eq!(c.mode, CacheMode::Exact);
        let c = control(&[
            ("cache-control", "No-Cache, no-store, max-age=30, private"),
            ("x-gateway-cache-ttl", "600"),
        ])
        .unwrap();
        assert_eq!((c.read, c.write), (false, false));
        assert_eq!(c.max_age, Some(Duration::from_secs(30)));
        assert_eq!(c.ttl, Some(Duration::from_secs(600)));
        let c = control(&[
            ("cache-control", "max-age=\"5\""),
            ("cache-control", "max-stale"),
        ])
        .unwrap();
        assert_eq!(c.max_age, Some(Duration::from_secs(5)));
        let c = control(&[("cache-control", "max-age=99999999999999999999999")]).unwrap();
        assert_eq!(c.max_age, Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn bad_cache_headers_are_refused_by_name() {
        for (headers, param) in [
            (&[("x-gateway-cache", "sometimes")][..], "x-gateway-cache"),
            (&[("x-gateway-cache", "exact, semantic")], "x-gateway-cache"),
            (&[("x-gateway-cache", "skip, refresh")], "x-gateway-cache"),
            (&[("cache-control", "max-age=soon")], "cache-control"),
            (&[("cache-control", "max-age")], "cache-control"),
            (&[("cache-control", "max-age=-1")], "cache-control"),
            (&[("x-gateway-cache-ttl", "0")], "x-gateway-cache-ttl"),
            (&[("x-gateway-cache-ttl", "1h")], "x-gateway-cache-ttl"),
        ] {
            let e = control(headers).unwrap_err();
            assert_eq!(
                e.param.as_deref(),
                Some(param),
                "{headers:?}: {}",
                e.message
            );
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{headers:?}");
            assert_eq!(e.kind, "invalid_request_error", "{headers:?}");
        }
    }
}
