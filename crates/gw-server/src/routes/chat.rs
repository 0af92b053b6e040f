//! `POST /v1/chat/completions`: blocking and streamed (server-sent events) chat.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use llm_gateway::{CacheStatus, Cost, Metered, RouteId, TextChunk, TextStream, TokenUsage};

use super::{call_context, model_error, set_cache, set_cost, set_route};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;
use crate::openai::{
    ChatChunk, ChatCompletion, ChatCompletionRequest, Choice, ChunkChoice, Delta, FunctionDelta,
    ToolCallDelta, Usage, finish_reason,
};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/chat/completions", post(chat))
}

async fn chat(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json)?;
    let req = body.to_core()?;
    let mut call = call_context(&ctx, caller, &headers, &body.fallbacks)?;
    call.tags = Arc::new(body.tags()?);
    if body.wants_stream() {
        let include_usage = body.wants_stream_usage();
        let served = state
            .gateway()
            .stream_with(&call, req)
            .await
            .map_err(|e| model_error(&state, &body.model, e))?;
        let pricing = PriceFor {
            state: state.clone(),
            route: served.route.clone(),
            cache: served.cache,
        };
        let mut response = sse_response(served.value, ctx, body.model, include_usage, pricing);
        set_route(&mut response, &served.route);
        set_cache(&mut response, &served.cache);
        if served.cache.is_hit() {
            // A replayed answer's cost is known before it starts: nothing.
            set_cost(&mut response, served.cost);
        }
        return Ok(response);
    }
    let Metered {
        value: answer,
        route,
        cost,
        cache,
        ..
    } = state
        .gateway()
        .generate_with(&call, req)
        .await
        .map_err(|e| model_error(&state, &body.model, e))?;
    let completion = ChatCompletion {
        id: &format!("chatcmpl-{}", ctx.id),
        object: "chat.completion",
        created: RequestContext::unix_now(),
        model: &body.model,
        choices: Choice::all(&answer),
        usage: Usage::new(&answer.usage, cost.map(|c| c.to_string())),
    };
    let mut response = Json(completion).into_response();
    set_cost(&mut response, cost);
    set_route(&mut response, &route);
    set_cache(&mut response, &cache);
    Ok(response)
}

/// Prices usage on the route that served a stream.
struct PriceFor {
    state: AppState,
    route: RouteId,
    /// A stream replayed from the cache costs nothing, whatever its usage says (the tokens
    /// of the answer when it was made).
    cache: CacheStatus,
}

impl PriceFor {
    fn cost(&self, usage: &TokenUsage) -> Option<String> {
        if self.cache.is_hit() {
            return Some(Cost::ZERO.to_string());
        }
        self.state
            .pricing()
            .token_cost(self.route.provider, &self.route.model, usage, &[])
            .map(|c| c.to_string())
    }
}

/// The state of one streamed answer being re-encoded as OpenAI chunks.
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

    fn tool_call(&self, call: ToolCallDelta<'_>) -> Bytes {
        self.delta(
            Delta {
                tool_calls: Some([call]),
                ..Delta::default()
            },
            None,
        )
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
                    ..Delta::default()
                },
                None,
            ));
        }
        match st.upstream.next().await {
            Some(Ok(TextChunk::Delta(text))) => out.push(st.delta(
                Delta {
                    content: Some(&text),
                    ..Delta::default()
                },
                None,
            )),
            Some(Ok(TextChunk::ToolCall {
                index,
                id,
                name,
                arguments,
            })) => {
                // As OpenAI streams a call: its id, type and name with empty arguments, then the
                // arguments. Clients that keep the first delta and append every delta's
                // arguments to it (OpenAI's own streaming example does) would otherwise read
                // the arguments twice when a provider sends a call whole.
                let first = id.is_some() || name.is_some();
                if first {
                    out.push(st.tool_call(ToolCallDelta {
                        index,
                        id: id.as_deref(),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: name.as_deref(),
                            arguments: "",
                        },
                    }));
                }
                if !arguments.is_empty() {
                    out.push(st.tool_call(ToolCallDelta {
                        index,
                        id: None,
                        kind: None,
                        function: FunctionDelta {
                            name: None,
                            arguments: &arguments,
                        },
                    }));
                }
            }
            Some(Ok(TextChunk::Finish(reason))) => {
                out.push(st.delta(Delta::default(), Some(finish_reason(reason))))
            }
            Some(Ok(TextChunk::Usage(usage))) => st.usage = Some(usage),
            Some(Ok(_)) => {}
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
        Some((stream::iter(out), st))
    })
    .flatten();

    let mut response = axum::body::Body::from_stream(coalesce(body)).into_response();
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

/// The most events sent in one write.
const COALESCE_EVENTS: usize = 64;

/// The events of `events` that are ready together, sent as one body frame: a provider that
/// delivers many events in one read (most do, once they are past the first token) costs one
/// write to the client instead of one per event, and an event that comes alone still goes out
/// at once (nothing waits for more).
fn coalesce(
    events: impl futures_util::Stream<Item = Bytes> + Send + 'static,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    events.ready_chunks(COALESCE_EVENTS).map(|events| {
        Ok(match <[Bytes; 1]>::try_from(events) {
            Ok([one]) => one,
            Err(events) => Bytes::from(events.concat()),
        })
    })
}

fn data_frame(data: &str) -> Bytes {
    let mut frame = String::with_capacity(data.len() + 8);
    frame.push_str("data: ");
    frame.push_str(data);
    frame.push_str("\n\n");
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn events_ready_together_go_out_as_one_frame_and_a_late_one_alone() {
        let (late, arrives) = tokio::sync::oneshot::channel::<()>();
        let ready = stream::iter(["data: a\n\n", "data: b\n\n", "data: c\n\n"].map(Bytes::from));
        let after = stream::once(async move {
            let _ = arrives.await;
            Bytes::from("data: d\n\n")
        });
        let mut frames = Box::pin(coalesce(ready.chain(after)));
        let first = frames.next().await.unwrap().unwrap();
        assert_eq!(first, "data: a\n\ndata: b\n\ndata: c\n\n");
        // Nothing more is ready: the stream waits for the next event, it does not hold the
        // first frame back.
        let waiting = tokio::time::timeout(Duration::from_millis(50), frames.next()).await;
        assert!(waiting.is_err(), "no frame until the next event is there");
        late.send(()).unwrap();
        assert_eq!(frames.next().await.unwrap().unwrap(), "data: d\n\n");
        assert!(frames.next().await.is_none());
    }
}
