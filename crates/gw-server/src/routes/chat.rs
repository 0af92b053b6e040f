//! `POST /v1/chat/completions`: blocking and streamed (server-sent events) chat.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use futures_util::stream::StreamExt;
use llm_gateway::json::ObjectWriter;
use llm_gateway::{
    CacheStatus, CallContext, Cost, Metered, RouteId, TextChunk, TextRequest, TextResponse,
    TextStream, TokenUsage,
};

use super::{JsonBody, call_context, json_answer, model_error, set_cache, set_cost, set_route};
use crate::app::{AppState, Caller, RequestContext};
use crate::error::ApiError;
use crate::openai::{
    ChatCompletion, ChatCompletionRequest, Choice, ChunkChoice, Delta, FunctionDelta,
    ToolCallDelta, Usage, finish_reason,
};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/chat/completions", post(chat))
}

/// The route as the router serves it. Not reached for a `POST` behind the gateway's service,
/// which hands it to [`direct`] without the router; kept so that the path is a route (another
/// method gets 405) and so that a router without that service still serves it.
async fn chat(State(state): State<AppState>, request: Request) -> Response {
    direct(state, request).await
}

/// `POST /v1/chat/completions` handed over by the gateway's service without the router (see
/// `app::Dispatch`): what the route's extractors would take, taken from the request by hand,
/// its headers moved rather than copied.
///
/// Its future is the one the server boxes and moves, so it is kept small. It is an async block,
/// not an async fn: an async fn keeps its arguments twice in its future (as arguments and as
/// the locals they are moved into). The whole handling is in this one block: a nested async
/// fn's future is built and then moved into its caller's (its bytes copied a second time),
/// and it also kept its arguments twice. The parsed body is read into the core request and
/// dropped before the call, so only its model name is held across it. (The box the server
/// copies fell from 3,216 to 2,016 bytes, and the nested future of 2,712 bytes, with the
/// 760-byte body twice in it, is gone.)
pub(crate) fn direct(
    state: AppState,
    mut request: Request,
) -> impl Future<Output = Response> + Send + 'static {
    let ctx = request.extensions_mut().remove::<RequestContext>();
    let caller = request.extensions_mut().remove::<Caller>();
    async move {
        let (Some(ctx), Some(caller)) = (ctx, caller) else {
            // Not reached: the request's context and caller are set before any `/v1/` route.
            return ApiError::internal("the request reached the chat route unauthenticated")
                .into_response();
        };
        let prepared = {
            let (body, headers) =
                JsonBody::with_headers(request, &state, ChatCompletionRequest::read_by_hand).await;
            prepare(&ctx, caller, &headers, body)
        };
        let Prepared {
            model,
            stream,
            req,
            call,
        } = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return e.into_response(),
        };
        if let Some(include_usage) = stream {
            return match state.gateway().stream_with(&call, req).await {
                Ok(served) => streamed(&state, ctx, model, include_usage, served),
                Err(e) => model_error(&state, &model, e).into_response(),
            };
        }
        match state.gateway().generate_with(&call, req).await {
            Ok(metered) => answered(&ctx, &model, metered),
            Err(e) => model_error(&state, &model, e).into_response(),
        }
    }
}

/// What a chat request's handling holds across the call: the parsed body itself is not.
struct Prepared {
    /// The model as the caller named it, for the answer and for errors.
    model: String,
    /// `Some(include_usage)` for a stream.
    stream: Option<bool>,
    req: TextRequest,
    call: CallContext,
}

/// The request's body read into the core request and the call's context, or the 400 saying
/// what is wrong with it.
fn prepare(
    ctx: &RequestContext,
    caller: Caller,
    headers: &HeaderMap,
    body: Result<JsonBody<ChatCompletionRequest>, JsonRejection>,
) -> Result<Prepared, ApiError> {
    let JsonBody(mut body) = body.map_err(ApiError::from_json)?;
    let req = body.take_core()?;
    let mut call = call_context(ctx, caller, headers, &body.fallbacks)?;
    call.tags = Arc::new(body.tags()?);
    Ok(Prepared {
        stream: body.wants_stream().then(|| body.wants_stream_usage()),
        model: body.model,
        req,
        call,
    })
}

/// The answer of a stream that opened.
fn streamed(
    state: &AppState,
    ctx: RequestContext,
    model: String,
    include_usage: bool,
    served: Metered<TextStream>,
) -> Response {
    let pricing = PriceFor {
        state: state.clone(),
        route: served.route.clone(),
        cache: served.cache,
    };
    let mut response = sse_response(served.value, ctx, model, include_usage, pricing);
    set_route(&mut response, &served.route);
    set_cache(&mut response, &served.cache);
    if served.cache.is_hit() {
        // A replayed answer's cost is known before it starts: nothing.
        set_cost(&mut response, served.cost);
    }
    response
}

/// The answer of a blocking call, as OpenAI's `chat.completion`.
fn answered(ctx: &RequestContext, model: &str, metered: Metered<TextResponse>) -> Response {
    let Metered {
        value: answer,
        route,
        cost,
        cache,
        ..
    } = metered;
    let id = ["chatcmpl-", &ctx.id].concat();
    let completion = ChatCompletion {
        id: &id,
        object: "chat.completion",
        created: RequestContext::unix_now(),
        model,
        choices: Choice::all(&answer),
        usage: Usage::new(&answer.usage, cost.map(|c| c.to_string())),
    };
    // Written into one buffer the size of the answer's text and the fields around it. (axum's
    // `Json` starts at 128 bytes and grows through `io::Write`, copying as it goes.)
    let mut body = Vec::with_capacity(answer.content.len() + answer.tool_calls.len() * 128 + 512);
    let mut response = match completion.write_json(&mut body) {
        Ok(()) => json_answer(body),
        Err(_) => axum::Json(&completion).into_response(),
    };
    set_cost(&mut response, cost);
    set_route(&mut response, &route);
    set_cache(&mut response, &cache);
    response
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

/// One streamed answer being re-encoded as OpenAI chunks: the response body. The chunks ready
/// together are written into one buffer and go out as one body frame, so a provider that
/// delivers many events in one read (most do, once they are past the first token) costs one
/// write to the client instead of one per event, and an event that comes alone still goes out
/// at once (nothing waits for more). Each chunk is serialised straight into that buffer, after
/// the fields every chunk of the stream shares, serialised once ([`chunk_head`]).
struct Sse {
    upstream: TextStream,
    id: String,
    /// `data: ` and a chunk up to its `choices`, the same for every chunk of the stream.
    head: Vec<u8>,
    include_usage: bool,
    pricing: PriceFor,
    usage: Option<TokenUsage>,
    started: bool,
    done: bool,
    /// The frames not handed to the server yet; each frame is split off it.
    buf: BytesMut,
    /// Where [`Sse::frame`] writes a chunk's own fields before they join `buf`.
    scratch: Vec<u8>,
}

/// The most chunks sent in one frame.
const COALESCE_EVENTS: usize = 64;

impl Sse {
    fn new(
        upstream: TextStream,
        request_id: &str,
        model: String,
        include_usage: bool,
        pricing: PriceFor,
    ) -> Self {
        let id = format!("chatcmpl-{request_id}");
        Sse {
            upstream,
            head: chunk_head(&id, RequestContext::unix_now(), &model),
            id,
            include_usage,
            pricing,
            usage: None,
            started: false,
            done: false,
            buf: BytesMut::with_capacity(FRAME_BUFFER),
            scratch: Vec::with_capacity(SCRATCH_BUFFER),
        }
    }

    /// Appends the `data:` event of one chunk: the stream's head, then what is the chunk's own,
    /// byte for byte what serialising the whole chunk writes. Written into `scratch` first, so
    /// that a chunk that cannot be written is left out whole rather than sent cut (not reached:
    /// its fields are text and numbers).
    fn frame(&mut self, choices: &[ChunkChoice<'_>], usage: Option<Usage>) {
        let own = &mut self.scratch;
        own.clear();
        let written = (|| {
            own.push(b'[');
            for (i, choice) in choices.iter().enumerate() {
                if i > 0 {
                    own.push(b',');
                }
                choice.write_json(own)?;
            }
            own.push(b']');
            if let Some(usage) = usage {
                own.extend_from_slice(b",\"usage\":");
                usage.write_json(own)?;
            }
            Ok::<_, serde_json::Error>(())
        })();
        if written.is_ok() {
            self.buf.extend_from_slice(&self.head);
            self.buf.extend_from_slice(own);
            self.buf.extend_from_slice(b"}\n\n");
        }
    }

    /// Appends the chunk of a piece of answer text, most of a stream's chunks: the same bytes
    /// as [`Sse::frame`] writes for a delta of content alone, with only the text serialised.
    fn text(&mut self, text: &str) {
        self.buf.extend_from_slice(&self.head);
        self.buf.extend_from_slice(TEXT_CHOICE.0.as_bytes());
        llm_gateway::json::write_str(&mut self.buf, text);
        self.buf.extend_from_slice(TEXT_CHOICE.1.as_bytes());
        self.buf.extend_from_slice(b"}\n\n");
    }

    fn data(&mut self, data: &str) {
        self.buf.extend_from_slice(b"data: ");
        self.buf.extend_from_slice(data.as_bytes());
        self.buf.extend_from_slice(b"\n\n");
    }

    fn tool_call(&mut self, call: ToolCallDelta<'_>) {
        self.delta(
            Delta {
                tool_calls: Some([call]),
                ..Delta::default()
            },
            None,
        )
    }

    fn delta(&mut self, delta: Delta<'_>, finish: Option<&'static str>) {
        self.frame(
            &[ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            None,
        )
    }

    /// Appends what `item` of the provider's stream (`None`: its end) becomes.
    fn on_item(&mut self, item: Option<llm_gateway::Result<TextChunk>>) {
        match item {
            Some(Ok(TextChunk::Delta(text))) => self.text(&text),
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
                    self.tool_call(ToolCallDelta {
                        index,
                        id: id.as_deref(),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: name.as_deref(),
                            arguments: "",
                        },
                    });
                }
                if !arguments.is_empty() {
                    self.tool_call(ToolCallDelta {
                        index,
                        id: None,
                        kind: None,
                        function: FunctionDelta {
                            name: None,
                            arguments: &arguments,
                        },
                    });
                }
            }
            Some(Ok(TextChunk::Finish(reason))) => {
                self.delta(Delta::default(), Some(finish_reason(reason)))
            }
            Some(Ok(TextChunk::Usage(usage))) => self.usage = Some(usage),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let request_id = self.id.strip_prefix("chatcmpl-").unwrap_or(&self.id);
                tracing::warn!(request_id, error = %e, "provider stream failed mid-way");
                let error = serde_json::json!({ "error": ApiError::from(e).body() });
                self.data(&error.to_string());
                self.data("[DONE]");
                self.done = true;
            }
            None => {
                if self.include_usage {
                    let usage = self.usage.unwrap_or_default();
                    let cost = self.pricing.cost(&usage);
                    self.frame(&[], Some(Usage::new(&usage, cost)));
                }
                self.data("[DONE]");
                self.done = true;
            }
        }
    }
}

impl futures_util::Stream for Sse {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        let mut taken = 0;
        let mut waiting = false;
        while !this.done && taken < COALESCE_EVENTS {
            match this.upstream.poll_next_unpin(cx) {
                Poll::Ready(item) => {
                    if !this.started {
                        // The role delta goes out with the provider's first chunk.
                        this.started = true;
                        this.delta(
                            Delta {
                                role: Some("assistant"),
                                content: Some(""),
                                ..Delta::default()
                            },
                            None,
                        );
                    }
                    this.on_item(item);
                    taken += 1;
                }
                Poll::Pending => {
                    waiting = true;
                    break;
                }
            }
        }
        if !this.buf.is_empty() {
            return Poll::Ready(Some(Ok(this.buf.split().freeze())));
        }
        if this.done {
            return Poll::Ready(None);
        }
        if !waiting {
            // As many items as one frame takes, none of which makes a chunk (usage reports):
            // the provider's stream has more ready, read on at the next poll.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Room for a short answer's frames: later frames share the allocation until it is used up.
const FRAME_BUFFER: usize = 4096;

/// Room for the chunks written through [`Sse::frame`] (the role delta, the finish, the usage
/// with its cost: about 60 to 200 bytes each). Grown from empty, the buffer was reallocated
/// four or five times in every stream, about 2,000 instructions.
const SCRATCH_BUFFER: usize = 256;

/// The `choices` of a chunk of text, before and after the text (as [`ChunkChoice`] and
/// [`Delta`] serialise: a test holds them to it).
const TEXT_CHOICE: (&str, &str) = (
    r#"[{"index":0,"delta":{"content":"#,
    r#"},"finish_reason":null}]"#,
);

/// `data: ` and a chunk of the stream written up to its `choices` (`{"id":...,"model":...,
/// "choices":`): the fields every chunk of a stream shares, escaped and formatted once rather than
/// for each chunk, in the order and with the escaping of `ChatChunk`'s `Serialize` (a test holds
/// them to it).
fn chunk_head(id: &str, created: u64, model: &str) -> Vec<u8> {
    let mut head = Vec::with_capacity(96 + id.len() + model.len());
    head.extend_from_slice(b"data: ");
    let mut chunk = ObjectWriter::new(&mut head);
    chunk.str("id", id).str("object", "chat.completion.chunk");
    // A number: writing it into a vector cannot fail.
    let _ = chunk.field("created", &created);
    chunk.str("model", model);
    head.extend_from_slice(b",\"choices\":");
    head
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
    let body = Sse::new(upstream, &ctx.id, model, include_usage, pricing);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::stream;
    use llm_gateway::{Gateway, Registry};

    use super::*;
    use crate::openai::ChatChunk;

    /// An answer whose first three chunks are ready together and whose fourth comes later.
    fn answer(arrives: tokio::sync::oneshot::Receiver<()>) -> Sse {
        let ready = stream::iter(["a", "b", "c"].map(|t| Ok(TextChunk::Delta(t.into()))));
        let after = stream::once(async move {
            let _ = arrives.await;
            Ok(TextChunk::Delta("d".into()))
        });
        sse(Box::pin(ready.chain(after)))
    }

    fn sse(upstream: TextStream) -> Sse {
        let state =
            AppState::with_static_keys(Gateway::new(Registry::new()), Vec::new(), Vec::new());
        Sse::new(
            upstream,
            "req_1",
            "hf/m".into(),
            false,
            PriceFor {
                state,
                route: RouteId::new("hf", "m"),
                cache: CacheStatus::Miss,
            },
        )
    }

    fn contents(frame: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(frame).unwrap();
        assert!(text.ends_with("\n\n"), "whole events only: {text}");
        text.split_terminator("\n\n")
            .map(|event| {
                let data = event.strip_prefix("data: ").unwrap();
                if data == "[DONE]" {
                    return data.to_owned();
                }
                let chunk: serde_json::Value = serde_json::from_str(data).unwrap();
                assert_eq!(chunk["id"], "chatcmpl-req_1");
                assert_eq!(chunk["object"], "chat.completion.chunk");
                assert_eq!(chunk["model"], "hf/m");
                chunk["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn chunks_ready_together_go_out_as_one_frame_and_a_late_one_alone() {
        let (late, arrives) = tokio::sync::oneshot::channel::<()>();
        let mut frames = answer(arrives);
        let first = frames.next().await.unwrap().unwrap();
        // The role delta (empty content) first, then the three ready chunks.
        assert_eq!(contents(&first), ["", "a", "b", "c"]);
        // Nothing more is ready: the stream waits for the next chunk, it does not hold the
        // first frame back.
        let waiting = tokio::time::timeout(Duration::from_millis(50), frames.next()).await;
        assert!(waiting.is_err(), "no frame until the next chunk is there");
        late.send(()).unwrap();
        // The last chunk and the end, ready together.
        let last = frames.next().await.unwrap().unwrap();
        assert_eq!(contents(&last), ["d", "[DONE]"]);
        assert!(frames.next().await.is_none());
    }

    #[test]
    fn more_items_without_a_chunk_than_one_frame_takes_do_not_stall_the_stream() {
        // Usage reports make no chunk: a frame's worth of them in a row leaves nothing to send
        // while the provider's stream has more ready.
        let usage = (0..2 * COALESCE_EVENTS).map(|_| Ok(TextChunk::Usage(TokenUsage::default())));
        let items = std::iter::once(Ok(TextChunk::Delta("a".into())))
            .chain(usage)
            .chain(std::iter::once(Ok(TextChunk::Delta("b".into()))));
        let mut frames = sse(Box::pin(stream::iter(items)));
        // Polled by hand: an executor's other wake-ups (a timeout's timer) would hide a
        // `Pending` that asked for none.
        let woken = Arc::new(Woken::default());
        let waker = futures_util::task::waker(woken.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut events = Vec::new();
        loop {
            match frames.poll_next_unpin(&mut cx) {
                std::task::Poll::Ready(Some(frame)) => events.extend(contents(&frame.unwrap())),
                std::task::Poll::Ready(None) => break,
                std::task::Poll::Pending => assert!(
                    woken.0.swap(false, std::sync::atomic::Ordering::SeqCst),
                    "Pending without a wake-up, while the provider's stream has items ready"
                ),
            }
        }
        assert_eq!(events, ["", "a", "b", "[DONE]"]);
    }

    #[test]
    fn a_frame_is_the_whole_chunk_serialised() {
        let model = "hf/org/m\"odel:é\n\u{1F600}";
        let mut sse = sse(Box::pin(stream::empty()));
        sse.id = "chatcmpl-req_\"1".into();
        sse.head = chunk_head(&sse.id, 1_700_000_000, model);
        let tokens = TokenUsage {
            input_tokens: 3,
            output_tokens: 5,
            ..TokenUsage::default()
        };
        let text = |content| Delta {
            content: Some(content),
            ..Delta::default()
        };
        let call = ToolCallDelta {
            index: 1,
            id: Some("call_1"),
            kind: Some("function"),
            function: FunctionDelta {
                name: Some("get"),
                arguments: "{\"a\":1}",
            },
        };
        let choice = |delta, finish_reason| ChunkChoice {
            index: 0,
            delta,
            finish_reason,
        };
        let more = ToolCallDelta {
            index: 1,
            id: None,
            kind: None,
            function: FunctionDelta {
                name: None,
                arguments: "\"b\":[2]}",
            },
        };
        // A price known, then one not known (no `cost_usd`).
        let usage = |with: bool, cost: Option<&str>| {
            with.then(|| Usage::new(&tokens, cost.map(str::to_owned)))
        };
        let cases: Vec<(Vec<ChunkChoice<'_>>, bool)> = vec![
            (
                vec![choice(
                    Delta {
                        role: Some("assistant"),
                        content: Some(""),
                        ..Delta::default()
                    },
                    None,
                )],
                false,
            ),
            (
                vec![choice(text("a \"quote\",\n\ttab, ünï\u{7}"), None)],
                false,
            ),
            (
                vec![choice(
                    Delta {
                        tool_calls: Some([call]),
                        ..Delta::default()
                    },
                    None,
                )],
                false,
            ),
            (
                vec![choice(
                    Delta {
                        tool_calls: Some([more]),
                        ..Delta::default()
                    },
                    None,
                )],
                false,
            ),
            (vec![choice(Delta::default(), Some("stop"))], false),
            (vec![choice(Delta::default(), Some("length"))], false),
            (
                vec![
                    choice(text("one"), None),
                    choice(Delta::default(), Some("tool_calls")),
                ],
                false,
            ),
            (Vec::new(), true),
        ];
        // Each frame, byte for byte the whole chunk serialised by serde.
        let id = sse.id.clone();
        let whole = |choices: &[ChunkChoice<'_>], usage: Option<Usage>| {
            let chunk = ChatChunk {
                id: &id,
                object: "chat.completion.chunk",
                created: 1_700_000_000,
                model,
                choices,
                usage,
            };
            format!("data: {}\n\n", serde_json::to_string(&chunk).unwrap())
        };
        for piece in ["", "plain", "a \"quote\",\n\ttab, ünï\u{7}\u{1F600}"] {
            sse.text(piece);
            let frame = sse.buf.split();
            assert_eq!(
                std::str::from_utf8(&frame).unwrap(),
                whole(&[choice(text(piece), None)], None)
            );
        }
        for cost in [Some("0.0001"), None] {
            for (choices, with_usage) in &cases {
                sse.frame(choices, usage(*with_usage, cost));
                let frame = sse.buf.split();
                assert_eq!(
                    std::str::from_utf8(&frame).unwrap(),
                    whole(choices, usage(*with_usage, cost))
                );
            }
        }
    }

    #[derive(Default)]
    struct Woken(std::sync::atomic::AtomicBool);

    impl futures_util::task::ArcWake for Woken {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
