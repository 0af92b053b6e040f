//! Chat: blocking and streamed, through the attempt loop.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use gateway_core::accounting::estimate_tokens;
use gateway_core::{
    Amount, DynTextModel, Error, ErrorKind, FinishReason, Modality, OpenOutput, Part, PriceCatalog,
    Registry, Result, Role, RouteId, Service, TextChunk, TextRequest, TextResponse, TextStream,
    TokenUsage, Usage,
};
use tracing::Instrument;

use super::Gateway;
use super::op::{Estimate, Operation, token_cost};
use std::convert::identity;

use crate::cache::Kind;
use crate::metering::{CallContext, Metered, MeteredStream, Pricer, StreamUsage};

/// Chat answered whole (`chat`).
pub(crate) struct Chat;

/// Chat streamed (`chat.stream`).
pub(crate) struct ChatStream;

/// The estimated prompt size of `req`: each part, the tool calls and results of earlier turns,
/// the tools offered (their schemas are part of the prompt), plus a few tokens of framing per
/// message and tool.
pub(crate) fn prompt_estimate(req: &TextRequest) -> u64 {
    let messages: u64 = req
        .messages
        .iter()
        .map(|m| {
            let parts: u64 = m.content.iter().map(|p| p.estimate_tokens()).sum();
            let calls: u64 = m
                .tool_calls
                .iter()
                .map(|c| tool_call_tokens(&c.id, &c.name, &c.arguments))
                .sum();
            parts + calls + m.tool_call_id.as_deref().map_or(0, estimate_tokens) + 4
        })
        .sum();
    let tools: u64 = req
        .tools
        .iter()
        .map(|t| {
            let schema = t.parameters.as_ref().map(ToString::to_string);
            estimate_tokens(&t.name)
                + t.description.as_deref().map_or(0, estimate_tokens)
                + schema.as_deref().map_or(0, estimate_tokens)
                + 8
        })
        .sum();
    messages + tools
}

/// The estimated size of one tool call.
fn tool_call_tokens(id: &str, name: &str, arguments: &str) -> u64 {
    estimate_tokens(id) + estimate_tokens(name) + estimate_tokens(arguments) + 4
}

/// The output of `answer` by its length, when the provider reported no usage.
fn output_estimate(answer: &TextResponse) -> u64 {
    let answer_tokens = |content: &str, calls: &[gateway_core::ToolCall]| {
        let calls: u64 = calls
            .iter()
            .map(|t| tool_call_tokens("", &t.name, &t.arguments))
            .sum();
        estimate_tokens(content) + calls
    };
    let others: u64 = answer
        .alternatives
        .iter()
        .map(|c| answer_tokens(&c.content, &c.tool_calls))
        .sum();
    answer_tokens(&answer.content, &answer.tool_calls) + others
}

/// The estimate of a chat request on `route`: the prompt, plus `max_tokens` for each of the
/// `n` answers when it set one (else the output is open and the plan's default applies to each).
fn chat_estimate(req: &TextRequest, route: &RouteId, pricing: &PriceCatalog) -> Estimate {
    let prompt = prompt_estimate(req);
    let answers = req.n.unwrap_or(1).max(1);
    let output = u64::from(req.max_tokens.unwrap_or(0)) * u64::from(answers);
    let tokens = TokenUsage {
        input_tokens: prompt,
        output_tokens: output,
        ..TokenUsage::default()
    };
    let cost = token_cost(pricing, route, &Usage::tokens(tokens));
    let open_output = req.max_tokens.is_none().then(|| OpenOutput {
        price_per_million: pricing
            .text_price(route.provider, &route.model)
            .map(|p| p.base.output),
        answers,
    });
    Estimate {
        amount: Amount::new(prompt + output, 0, cost),
        open_output,
        prompt_tokens: prompt,
    }
}

/// `req` addressed to `route`'s model id.
fn for_route(req: &TextRequest, route: &RouteId) -> TextRequest {
    let mut req = req.clone();
    // Written over the copy of the caller's name: `<provider>/<model>` is longer than the
    // model id, so its allocation is reused (an alias may be shorter, and then grows).
    req.model.clear();
    req.model.push_str(&route.model);
    req
}

/// `req` for `route`, with `output_bound` (the reservation's) as its `max_tokens` when it set
/// none.
fn bounded_for_route(req: &TextRequest, route: &RouteId, output_bound: Option<u64>) -> TextRequest {
    let mut req = for_route(req, route);
    if req.max_tokens.is_none()
        && let Some(bound) = output_bound
    {
        req.max_tokens = Some(u32::try_from(bound).unwrap_or(u32::MAX));
    }
    req
}

impl Operation for Chat {
    type Model = dyn DynTextModel;
    type Request = TextRequest;
    type Output = TextResponse;

    const SERVICE: Service = Service::Chat;
    const PRICER: Pricer = token_cost;

    fn name(&self) -> &'static str {
        "chat"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynTextModel>> {
        registry.text(provider).cloned()
    }

    fn check(&self, model: &dyn DynTextModel, route: &RouteId, req: &TextRequest) -> Result<()> {
        model.capabilities_dyn().check(route.provider, req)
    }

    fn estimate(
        &self,
        _model: &dyn DynTextModel,
        req: &TextRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        chat_estimate(req, route, pricing)
    }

    fn call(
        &self,
        model: Arc<dyn DynTextModel>,
        route: &RouteId,
        req: &TextRequest,
    ) -> BoxFuture<'static, Result<TextResponse>> {
        self.call_bounded(model, route, req, None)
    }

    fn call_bounded(
        &self,
        model: Arc<dyn DynTextModel>,
        route: &RouteId,
        req: &TextRequest,
        output_bound: Option<u64>,
    ) -> BoxFuture<'static, Result<TextResponse>> {
        let req = bounded_for_route(req, route, output_bound);
        Box::pin(async move { model.generate_dyn(req).await })
    }
}

impl Operation for ChatStream {
    type Model = dyn DynTextModel;
    type Request = TextRequest;
    type Output = TextStream;

    const SERVICE: Service = Service::Chat;
    const PRICER: Pricer = token_cost;

    fn name(&self) -> &'static str {
        "chat.stream"
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynTextModel>> {
        registry.text(provider).cloned()
    }

    fn check(&self, model: &dyn DynTextModel, route: &RouteId, req: &TextRequest) -> Result<()> {
        let caps = model.capabilities_dyn();
        if !caps.streaming {
            return Err(Error::unsupported(format!(
                "provider `{}` does not stream",
                route.provider
            ))
            .with_param("stream"));
        }
        caps.check(route.provider, req)
    }

    fn estimate(
        &self,
        _model: &dyn DynTextModel,
        req: &TextRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        chat_estimate(req, route, pricing)
    }

    fn call(
        &self,
        model: Arc<dyn DynTextModel>,
        route: &RouteId,
        req: &TextRequest,
    ) -> BoxFuture<'static, Result<TextStream>> {
        self.call_bounded(model, route, req, None)
    }

    fn call_bounded(
        &self,
        model: Arc<dyn DynTextModel>,
        route: &RouteId,
        req: &TextRequest,
        output_bound: Option<u64>,
    ) -> BoxFuture<'static, Result<TextStream>> {
        let req = bounded_for_route(req, route, output_bound);
        Box::pin(async move { model.stream_dyn(req).await })
    }
}

/// Output and usage of a text stream, for its meter.
#[derive(Default)]
struct TextUsage {
    reported: Option<TokenUsage>,
    finish: Option<gateway_core::FinishReason>,
    /// The answer's text so far and the most bytes to keep, when content is recorded.
    capture: Option<(String, usize)>,
    /// The request's messages, when content is recorded.
    input: Option<String>,
}

impl StreamUsage<TextChunk> for TextUsage {
    fn observe(&mut self, chunk: &TextChunk) -> usize {
        match chunk {
            TextChunk::Delta(text) => {
                if let Some((kept, max)) = &mut self.capture
                    && kept.len() < *max
                {
                    kept.push_str(text);
                }
                text.len()
            }
            TextChunk::Finish(reason) => {
                self.finish = Some(*reason);
                0
            }
            TextChunk::ToolCall {
                id,
                name,
                arguments,
                ..
            } => {
                id.as_deref().map_or(0, str::len)
                    + name.as_deref().map_or(0, str::len)
                    + arguments.len()
            }
            TextChunk::Usage(u) => {
                self.reported = Some(*u);
                0
            }
            _ => 0,
        }
    }

    fn reported(&self) -> Option<Usage> {
        self.reported.map(Usage::tokens)
    }

    fn usage_item(&self, usage: Usage) -> Option<TextChunk> {
        Some(TextChunk::Usage(usage.tokens))
    }

    fn annotate(&self, trace: &crate::trace::Trace, broke_off: bool) {
        // The conventions: `error` in place of a finish reason that never came.
        let reason = match (self.finish, broke_off) {
            (Some(reason), _) => reason.as_str(),
            (None, true) => "error",
            (None, false) => "stop",
        };
        trace.record_response(None, None, &[reason]);
        if let (Some(input), Some((output, _))) = (&self.input, &self.capture) {
            let message = output_message(output, &[], reason);
            trace.record_content(input, &serde_json::Value::Array(vec![message]).to_string());
        }
    }
}

impl Gateway {
    /// Generates a complete answer; `req.model` is `<provider>/<model id>` or an alias.
    ///
    /// Without accounting this needs no caller; with it, use [`Gateway::generate_with`].
    pub async fn generate(&self, req: TextRequest) -> Result<TextResponse> {
        Ok(self
            .generate_with(&CallContext::default(), req)
            .await?
            .value)
    }

    /// Streams an answer; `req.model` is `<provider>/<model id>` or an alias.
    pub async fn stream(&self, req: TextRequest) -> Result<TextStream> {
        Ok(self.stream_with(&CallContext::default(), req).await?.value)
    }

    /// Generates a complete answer for `ctx`'s caller: the plan is checked and the estimate
    /// reserved before any provider is called, the routes of the model's fallback chain are
    /// tried in order (each with its retries) within the request's deadline, and the real usage
    /// is settled after, with every attempt.
    pub async fn generate_with(
        &self,
        ctx: &CallContext,
        req: TextRequest,
    ) -> Result<Metered<TextResponse>> {
        let trace = self.trace("chat", &req.model, ctx, false);
        record_request(&trace, &req);
        // Boxed as it is made: the chat routes' futures are moved whole at every layer above
        // (the route, the server's boxes), and this block, with the attempt and the settlement
        // in it, is most of their size. Boxed, it is copied once, and so are they, small.
        Box::pin(async {
            let mut step =
                self.cache_step(Kind::Chat, ctx, &req.model, &req, || semantic_split(&req))?;
            let what = (Modality::Text, "chat");
            if let Some(hit) = self
                .answer_from_cache(&mut step, ctx, &trace, what, identity::<TextResponse>)
                .await?
            {
                return Ok(hit);
            }
            let served = match self.attempt(&Chat, ctx, &trace, &req.model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            if trace.is_on() {
                let answer = &served.value;
                let mut reasons = vec![answer.finish_reason.as_str()];
                reasons.extend(answer.alternatives.iter().map(|c| c.finish_reason.as_str()));
                trace.record_response(Some(&answer.model), answer.id.as_deref(), &reasons);
                if trace.content().is_some() {
                    trace.record_content(&input_messages(&req), &output_messages(answer));
                }
            }
            let prompt_tokens = served.meter.prompt_tokens;
            let local = Usage::tokens(TokenUsage {
                input_tokens: prompt_tokens,
                output_tokens: output_estimate(&served.value),
                ..TokenUsage::default()
            });
            let reported = Usage::tokens(served.value.usage);
            let mut metered = served.settle(reported, local).await;
            metered.cache = step.status;
            if complete(&metered.value) {
                self.cache_store(step, ctx, &metered.route, metered.cost, &metered.value)
                    .await;
            }
            Ok(metered)
        })
        .instrument(trace.span())
        .await
    }

    /// Streams an answer for `ctx`'s caller, checked against the plan before the provider is
    /// called. Routes of the fallback chain are tried only until a stream is open: once the
    /// client may have received a byte, an error is final. The usage is settled when the stream
    /// ends, breaks off, or is dropped (a client that disconnects is charged for what was
    /// produced); a stream silent for longer than the idle timeout is cut as timed out.
    pub async fn stream_with(
        &self,
        ctx: &CallContext,
        req: TextRequest,
    ) -> Result<Metered<TextStream>> {
        let trace = self.trace("chat", &req.model, ctx, true);
        record_request(&trace, &req);
        // Boxed as it is made, as in `generate_with`.
        Box::pin(async {
            // A stream carries one answer and no log probabilities: a cached answer with several
            // or with them could not be replayed whole.
            let mut step = if req.n.unwrap_or(1) > 1 || req.logprobs {
                self.cache_step_skipped()
            } else {
                self.cache_step(Kind::Chat, ctx, &req.model, &req, || semantic_split(&req))?
            };
            let what = (Modality::Text, "chat.stream");
            if let Some(hit) = self
                .answer_from_cache(&mut step, ctx, &trace, what, identity::<TextResponse>)
                .await?
            {
                return Ok(Metered {
                    value: replay(hit.value),
                    route: hit.route,
                    cost: hit.cost,
                    usage: hit.usage,
                    estimated: false,
                    retries: 0,
                    cache: hit.cache,
                });
            }
            let served = match self
                .attempt(&ChatStream, ctx, &trace, &req.model, &req)
                .await
            {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let route = served.meter.route.clone();
            let retries = served.retries;
            let idle = self.routing.stream_idle_timeout();
            let metered = MeteredStream::new(
                idle_timeout(served.value, idle),
                TextUsage {
                    capture: trace.content().map(|c| (String::new(), c.max_bytes)),
                    input: trace.content().map(|_| input_messages(&req)),
                    ..TextUsage::default()
                },
                served.meter,
                retries,
            );
            let status = step.status;
            let value = if step.plan.as_ref().is_some_and(|p| p.write) {
                self.keep_when_complete(metered.boxed(), step, ctx, &route)
            } else {
                metered.boxed()
            };
            Ok(Metered {
                value,
                route,
                cost: None,
                usage: None,
                estimated: false,
                retries,
                cache: status,
            })
        })
        .instrument(trace.span())
        .await
    }
}

/// For the semantic cache: `req` without its last turn, and that turn's text, when the last
/// turn is the user's and holds only text (the turn whose meaning may vary; everything else
/// must match exactly).
fn semantic_split(req: &TextRequest) -> Option<(serde_json::Value, String)> {
    let (last, earlier) = req.messages.split_last()?;
    if last.role != Role::User || last.content.is_empty() {
        return None;
    }
    let mut texts = Vec::with_capacity(last.content.len());
    for part in &last.content {
        match part {
            Part::Text(text) => texts.push(text.as_str()),
            _ => return None,
        }
    }
    let mut rest = serde_json::to_value(req).ok()?;
    rest["messages"] = serde_json::to_value(earlier).ok()?;
    Some((rest, texts.join("\n")))
}

/// Whether every answer of `response` ended as it should (a content filter's cut is not kept).
fn complete(response: &TextResponse) -> bool {
    std::iter::once(response.finish_reason)
        .chain(response.alternatives.iter().map(|c| c.finish_reason))
        .all(|f| f != FinishReason::ContentFilter)
}

/// A cached answer as a stream: its text, its tool calls whole, its end and its usage.
fn replay(answer: TextResponse) -> TextStream {
    let mut chunks = Vec::with_capacity(answer.tool_calls.len() + 3);
    if !answer.content.is_empty() {
        chunks.push(Ok(TextChunk::Delta(answer.content)));
    }
    for (index, call) in answer.tool_calls.into_iter().enumerate() {
        chunks.push(Ok(TextChunk::ToolCall {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
        }));
    }
    chunks.push(Ok(TextChunk::Finish(answer.finish_reason)));
    chunks.push(Ok(TextChunk::Usage(answer.usage)));
    futures_util::stream::iter(chunks).boxed()
}

/// An answer assembled from its stream, to be cached once the stream ended normally.
#[derive(Default)]
struct Assembled {
    content: String,
    calls: Vec<gateway_core::ToolCall>,
    finish: Option<FinishReason>,
    usage: TokenUsage,
    broken: bool,
}

impl Assembled {
    fn observe(&mut self, item: &Result<TextChunk>) {
        match item {
            Ok(TextChunk::Delta(text)) => self.content.push_str(text),
            Ok(TextChunk::Finish(reason)) => self.finish = Some(*reason),
            Ok(TextChunk::Usage(usage)) => self.usage = *usage,
            Ok(TextChunk::ToolCall {
                index,
                id,
                name,
                arguments,
            }) => {
                let index = *index as usize;
                if index > self.calls.len() {
                    // A provider numbering calls with gaps: not something to replay.
                    self.broken = true;
                    return;
                }
                if index == self.calls.len() {
                    self.calls
                        .push(gateway_core::ToolCall::new("", "", String::new()));
                }
                let call = &mut self.calls[index];
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.clone_from(name);
                }
                call.arguments.push_str(arguments);
            }
            Ok(_) => {}
            Err(_) => self.broken = true,
        }
    }
}

impl Gateway {
    /// `stream` as it is, keeping its answer in the cache once it ended normally (its finish
    /// seen, no error): a stream cut short, broken off or dropped by its client is never kept.
    fn keep_when_complete(
        &self,
        stream: TextStream,
        step: super::cached::Step,
        ctx: &CallContext,
        route: &RouteId,
    ) -> TextStream {
        struct Keep {
            inner: TextStream,
            seen: Assembled,
            store: Option<(Gateway, super::cached::Step, CallContext, RouteId)>,
        }
        let keep = Keep {
            inner: stream,
            seen: Assembled::default(),
            store: Some((self.clone(), step, ctx.clone(), route.clone())),
        };
        futures_util::stream::unfold(keep, |mut keep| async move {
            match keep.inner.next().await {
                Some(item) => {
                    keep.seen.observe(&item);
                    Some((item, keep))
                }
                None => {
                    let seen = std::mem::take(&mut keep.seen);
                    if let (Some((gateway, step, ctx, route)), Some(finish), false) =
                        (keep.store.take(), seen.finish, seen.broken)
                        && finish != FinishReason::ContentFilter
                    {
                        let mut answer = TextResponse::new(
                            route.model.to_string(),
                            seen.content,
                            finish,
                            seen.usage,
                        );
                        answer.tool_calls = seen.calls;
                        let cost = (seen.usage.total_tokens() > 0)
                            .then(|| {
                                gateway.pricing.token_cost(
                                    route.provider,
                                    &route.model,
                                    &seen.usage,
                                    &[],
                                )
                            })
                            .flatten();
                        gateway.cache_store(step, &ctx, &route, cost, &answer).await;
                    }
                    None
                }
            }
        })
        .boxed()
    }
}

/// Records a chat request's parameters on its span.
fn record_request(trace: &crate::trace::Trace, req: &TextRequest) {
    if let Some(max) = req.max_tokens {
        trace.record("gen_ai.request.max_tokens", i64::from(max));
    }
    if let Some(t) = req.temperature {
        trace.record("gen_ai.request.temperature", t);
    }
    if let Some(p) = req.top_p {
        trace.record("gen_ai.request.top_p", p);
    }
    if let Some(n) = req.n {
        trace.record("gen_ai.request.choice.count", i64::from(n));
    }
    if let Some(seed) = req.seed {
        trace.record("gen_ai.request.seed", seed);
    }
}

/// The conventions' `gen_ai.input.messages`: each message's role and parts (text, tool calls
/// and results; images and audio by kind only, never their data).
fn input_messages(req: &TextRequest) -> String {
    let messages: Vec<serde_json::Value> = req
        .messages
        .iter()
        .map(|m| {
            let mut parts: Vec<serde_json::Value> = m
                .content
                .iter()
                .map(|p| match p {
                    gateway_core::Part::Text(text) => match &m.tool_call_id {
                        Some(id) => serde_json::json!({"type": "tool_call_response", "id": id, "response": text}),
                        None => serde_json::json!({"type": "text", "content": text}),
                    },
                    gateway_core::Part::Image { .. } => serde_json::json!({"type": "image"}),
                    _ => serde_json::json!({"type": "audio"}),
                })
                .collect();
            parts.extend(m.tool_calls.iter().map(tool_call_part));
            serde_json::json!({"role": m.role.as_str(), "parts": parts})
        })
        .collect();
    serde_json::Value::Array(messages).to_string()
}

/// The conventions' `gen_ai.output.messages` of a whole answer (every choice).
fn output_messages(answer: &TextResponse) -> String {
    let first = std::iter::once((&answer.content, &answer.tool_calls, answer.finish_reason));
    let others = answer
        .alternatives
        .iter()
        .map(|c| (&c.content, &c.tool_calls, c.finish_reason));
    let messages: Vec<serde_json::Value> = first
        .chain(others)
        .map(|(content, calls, finish)| output_message(content, calls, finish.as_str()))
        .collect();
    serde_json::Value::Array(messages).to_string()
}

fn output_message(
    content: &str,
    calls: &[gateway_core::ToolCall],
    finish: &str,
) -> serde_json::Value {
    let mut parts = Vec::new();
    if !content.is_empty() {
        parts.push(serde_json::json!({"type": "text", "content": content}));
    }
    parts.extend(calls.iter().map(tool_call_part));
    serde_json::json!({"role": "assistant", "parts": parts, "finish_reason": finish})
}

fn tool_call_part(call: &gateway_core::ToolCall) -> serde_json::Value {
    serde_json::json!({
        "type": "tool_call",
        "id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    })
}

/// Cuts `stream` with a timeout error when no item arrives for `idle`.
pub(crate) fn idle_timeout<T: Send + 'static>(
    stream: BoxStream<'static, Result<T>>,
    idle: Duration,
) -> BoxStream<'static, Result<T>> {
    IdleTimeout {
        stream,
        idle,
        timer: Box::pin(tokio::time::sleep(idle)),
        // The wait is counted from the first poll, as the caller may start reading later.
        progressed: true,
        done: false,
    }
    .boxed()
}

/// [`idle_timeout`]'s stream. Its one timer is moved only when the stream is about to wait
/// after yielding items, not once per item: the items a provider sends in one read (about
/// twenty per answer, usually) cost one clock read and one timer update, not twenty.
struct IdleTimeout<T> {
    stream: BoxStream<'static, Result<T>>,
    idle: Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Items came since the timer was last set.
    progressed: bool,
    done: bool,
}

impl<T> futures_util::Stream for IdleTimeout<T> {
    type Item = Result<T>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.stream.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => {
                this.progressed = true;
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if std::mem::take(&mut this.progressed) {
            // The wait starts now: the last item came in this same wake-up. (A timeout too
            // long to add to the clock never fires, as `tokio::time::sleep` has it.)
            if let Some(deadline) = tokio::time::Instant::now().checked_add(this.idle) {
                this.timer.as_mut().reset(deadline);
            }
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.done = true;
                Poll::Ready(Some(Err(Error::new(
                    ErrorKind::Timeout,
                    format!("the provider sent nothing for {} ms", this.idle.as_millis()),
                ))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod idle_tests {
    //! On tokio's paused clock: time moves only when every task waits, so a loaded machine
    //! cannot stretch a 40 ms gap past a 150 ms timeout.
    use std::time::Duration;

    use futures_util::StreamExt;
    use futures_util::stream::{self, BoxStream};
    use gateway_core::{ErrorKind, Result};

    use super::idle_timeout;

    /// `n` items, each `gap` after the last, then (when `stall`) nothing ever again.
    fn paced(n: u32, gap: Duration, stall: bool) -> BoxStream<'static, Result<u32>> {
        let items = stream::iter(0..n).then(move |i| async move {
            tokio::time::sleep(gap).await;
            Ok(i)
        });
        if stall {
            items.chain(stream::pending()).boxed()
        } else {
            items.boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_keeps_sending_outlasts_its_idle_timeout() {
        let paced = paced(8, Duration::from_millis(40), false);
        let items: Vec<_> = idle_timeout(paced, Duration::from_millis(150))
            .collect()
            .await;
        // 320 ms in all, never 150 ms without an item.
        assert_eq!(items.len(), 8);
        assert!(items.iter().all(|i| i.is_ok()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_stalls_is_cut_with_a_timeout_then_ends() {
        let mut cut = idle_timeout(
            paced(2, Duration::from_millis(10), true),
            Duration::from_millis(100),
        );
        assert_eq!(cut.next().await.unwrap().unwrap(), 0);
        assert_eq!(cut.next().await.unwrap().unwrap(), 1);
        let started = tokio::time::Instant::now();
        let error = cut.next().await.unwrap().unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Timeout);
        // Counted from the last item, not from the start of the stream.
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(cut.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn items_ready_together_pass_and_the_wait_after_them_is_timed() {
        let ready = stream::iter((0..20).map(Ok))
            .chain(stream::pending())
            .boxed();
        let mut cut = idle_timeout(ready, Duration::from_millis(50));
        for i in 0..20 {
            assert_eq!(cut.next().await.unwrap().unwrap(), i);
        }
        let error = cut.next().await.unwrap().unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_too_long_for_the_clock_never_fires_and_never_panics() {
        let paced = paced(3, Duration::from_millis(5), false);
        let items: Vec<_> = idle_timeout(paced, Duration::MAX).collect().await;
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|i| i.is_ok()));
    }
}
