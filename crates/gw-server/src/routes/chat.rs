//! `POST /v1/chat/completions`: blocking and streamed (server-sent events) chat.

use std::convert::Infallible;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use llm_gateway::{ErrorKind, TextChunk, TextStream, TokenUsage};

use llm_gateway::{CallContext, Metered};

use crate::app::{AppState, COST_HEADER, Caller, RequestContext};
use crate::error::ApiError;
use crate::openai::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatCompletionRequest, Choice, ChunkChoice, Delta,
    Usage, finish_reason,
};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/chat/completions", post(chat))
}

/// The header a client uses to shorten (or lengthen) the request's total deadline.
const DEADLINE_HEADER: &str = "x-gateway-deadline-ms";
/// The longest deadline a request may ask for.
const MAX_DEADLINE: Duration = Duration::from_secs(600);
/// The header naming the route that served a request.
const ROUTE_HEADER: &str = "x-gateway-route";

async fn chat(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|r| ApiError::invalid(None, r.body_text()))?;
    let req = body.to_core()?;
    let call = CallContext {
        request_id: ctx.id.clone(),
        user_id: Some(caller.user_id),
        deadline: deadline(&headers)?,
        fallbacks: body.fallbacks.clone(),
    };
    let unavailable = |e: llm_gateway::Error| {
        let provider = body.model.split('/').next().unwrap_or_default();
        match (e.kind(), state.unavailable(provider)) {
            (ErrorKind::NotFound, Some(why)) => ApiError::unavailable(why.to_owned()),
            _ => ApiError::from(e),
        }
    };
    if body.wants_stream() {
        let include_usage = body.wants_stream_usage();
        let served = state
            .gateway()
            .stream_with(&call, req)
            .await
            .map_err(unavailable)?;
        let pricing = PriceFor::new(&state, &served.route);
        let mut response = sse_response(served.value, ctx, body.model, include_usage, pricing);
        set_route(&mut response, &served.route);
        return Ok(response);
    }
    let Metered {
        value: answer,
        route,
        cost,
        ..
    } = state
        .gateway()
        .generate_with(&call, req)
        .await
        .map_err(unavailable)?;
    let cost = cost.map(|c| c.to_string());
    let completion = ChatCompletion {
        id: &format!("chatcmpl-{}", ctx.id),
        object: "chat.completion",
        created: RequestContext::unix_now(),
        model: &body.model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: &answer.content,
            },
            finish_reason: finish_reason(answer.finish_reason),
        }],
        usage: Usage::new(&answer.usage, cost.clone()),
    };
    let mut response = Json(completion).into_response();
    set_cost(&mut response, cost.as_deref());
    set_route(&mut response, &route);
    Ok(response)
}

/// The request's deadline from `x-gateway-deadline-ms`, if it set one.
fn deadline(headers: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get(DEADLINE_HEADER) else {
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

fn set_route(response: &mut Response, route: &str) {
    if let Ok(v) = HeaderValue::from_str(route) {
        response.headers_mut().insert(ROUTE_HEADER, v);
    }
}

/// Prices usage of one provider model.
struct PriceFor {
    state: AppState,
    provider: String,
    model: String,
}

impl PriceFor {
    /// For the route `<provider>/<model id>`.
    fn new(state: &AppState, route: &str) -> Self {
        let (provider, model) = route.split_once('/').unwrap_or((route, ""));
        Self {
            state: state.clone(),
            provider: provider.to_owned(),
            model: model.to_owned(),
        }
    }

    fn cost(&self, usage: &TokenUsage) -> Option<String> {
        self.state
            .pricing()
            .text_cost(&self.provider, &self.model, usage)
            .map(|c| c.to_string())
    }
}

fn set_cost(response: &mut Response, cost: Option<&str>) {
    let value = HeaderValue::from_str(cost.unwrap_or("unknown"))
        .unwrap_or(HeaderValue::from_static("unknown"));
    response.headers_mut().insert(COST_HEADER, value);
}

/// The stream as OpenAI chunks: a role delta, content deltas, a finish chunk, an optional usage
/// chunk, then `data: [DONE]`, which ends every stream. A broken provider stream becomes an
/// error event (then `[DONE]`), never a clean end.
fn sse_response(
    upstream: TextStream,
    ctx: RequestContext,
    model: String,
    include_usage: bool,
    pricing: PriceFor,
) -> Response {
    struct Sse {
        upstream: TextStream,
        id: String,
        model: String,
        created: u64,
        include_usage: bool,
        pricing: PriceFor,
        usage: Option<TokenUsage>,
        started: bool,
        done: bool,
    }
    impl Sse {
        fn frame(&self, choices: Vec<ChunkChoice<'_>>, usage: Option<Usage>) -> Bytes {
            let chunk = ChatChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices,
                usage,
            };
            data_frame(&serde_json::to_string(&chunk).unwrap_or_default())
        }
        fn delta(&self, delta: Delta<'_>, finish: Option<&'static str>) -> Bytes {
            self.frame(
                vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: finish,
                }],
                None,
            )
        }
    }

    let state = Sse {
        upstream,
        id: format!("chatcmpl-{}", ctx.id),
        model,
        created: RequestContext::unix_now(),
        include_usage,
        pricing,
        usage: None,
        started: false,
        done: false,
    };
    let body = stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let mut out: Vec<Bytes> = Vec::new();
        if !st.started {
            st.started = true;
            out.push(st.delta(
                Delta {
                    role: Some("assistant"),
                    content: Some(""),
                },
                None,
            ));
        }
        match st.upstream.next().await {
            Some(Ok(TextChunk::Delta(text))) => out.push(st.delta(
                Delta {
                    role: None,
                    content: Some(&text),
                },
                None,
            )),
            Some(Ok(TextChunk::Finish(reason))) => {
                out.push(st.delta(Delta::default(), Some(finish_reason(reason))))
            }
            Some(Ok(TextChunk::Usage(usage))) => st.usage = Some(usage),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "provider stream failed mid-way");
                let error = serde_json::json!({ "error": ApiError::from(e).body() });
                out.push(data_frame(&error.to_string()));
                out.push(data_frame("[DONE]"));
                st.done = true;
            }
            None => {
                if st.include_usage {
                    let usage = st.usage.unwrap_or_default();
                    let cost = st.pricing.cost(&usage);
                    out.push(st.frame(Vec::new(), Some(Usage::new(&usage, cost))));
                }
                out.push(data_frame("[DONE]"));
                st.done = true;
            }
        }
        Some((stream::iter(out.into_iter().map(Ok::<_, Infallible>)), st))
    })
    .flatten();

    let mut response = axum::body::Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The cost is known only when the stream ends: it is in the final usage chunk (`cost_usd`).
    set_cost(&mut response, None);
    response
}

fn data_frame(data: &str) -> Bytes {
    let mut frame = String::with_capacity(data.len() + 8);
    frame.push_str("data: ");
    frame.push_str(data);
    frame.push_str("\n\n");
    Bytes::from(frame)
}
