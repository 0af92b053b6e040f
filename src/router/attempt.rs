//! The attempt loop, written once for every modality: the routes of a request's chain in
//! order, each with its retries, within the request's deadline; the plan admitted before the
//! first call; circuit breakers and the provider key's rate limits consulted before each; every
//! attempt recorded for the usage log.

use std::time::{Duration, Instant};

use gateway_core::{
    Admission, Amount, Attempt, AttemptOutcome, Cost, Error, ErrorKind, Reservation, Result,
    RouteId, Skip, Usage,
};

use super::Gateway;
use super::op::{Estimate, Operation};
use crate::metering::{CallContext, End, Meter, Metered};
use crate::routing::chain;
use crate::trace::{Trace, attempt_ended, attempt_span};
use tracing::Instrument;

/// A route that answered, with what settling its request needs.
pub(crate) struct Served<T> {
    pub(crate) value: T,
    pub(crate) meter: Meter,
    pub(crate) retries: u32,
}

/// A request that failed, with its meter when it had been admitted.
pub(crate) struct Failed {
    pub(crate) error: Error,
    /// Boxed: a failure is the rare path, and keeps `Result<Served, Failed>` small.
    pub(crate) meter: Option<Box<Meter>>,
    pub(crate) retries: u32,
    /// The request's telemetry, for a failure before admission (the meter has it otherwise).
    trace: Trace,
    /// The route last considered, if any.
    route: Option<RouteId>,
}

impl Failed {
    /// A failure before anything was admitted.
    fn early(error: Error, trace: &Trace) -> Self {
        Self {
            error,
            meter: None,
            retries: 0,
            trace: trace.clone(),
            route: None,
        }
    }

    /// Releases the reservation (nothing billable), logging every attempt, and returns the error.
    ///
    /// A failure [in doubt](Error::is_in_doubt) (a job submit whose answer was lost, an output
    /// the provider made and billed but that could not be fetched) is charged at what was
    /// reserved, marked estimated: the provider may well bill the work, and a plan's limit must
    /// hold for it.
    pub(crate) async fn settle(self) -> Error {
        if let Some(meter) = &self.meter {
            let reserved = meter
                .reservation
                .as_ref()
                .filter(|_| self.error.is_in_doubt())
                .map(|r| r.estimate);
            let record = || match reserved {
                Some(estimate) => {
                    let usage = Usage {
                        tokens: gateway_core::TokenUsage {
                            input_tokens: estimate.tokens,
                            ..Default::default()
                        },
                        units: estimate.units,
                    };
                    let end = End {
                        error: Some(&self.error),
                        billable: true,
                        estimated: true,
                        retries: self.retries,
                        ..End::default()
                    };
                    meter.record_priced(usage, end, estimate.cost)
                }
                None => {
                    let end = End {
                        error: Some(&self.error),
                        billable: false,
                        retries: self.retries,
                        ..End::default()
                    };
                    meter.record(Usage::default(), end)
                }
            };
            meter.settle(record).await;
        } else {
            self.trace.refused(self.route.as_ref(), &self.error);
        }
        self.error
    }
}

impl<T> Served<T> {
    /// Settles a blocking call with the usage the provider `reported`, or with `local` (a
    /// count of our own, marked as estimated) when it reported none; the answer and its cost.
    pub(crate) fn settle(self, reported: Usage, local: Usage) -> impl Future<Output = Metered<T>> {
        let (usage, estimated) = if reported.is_empty() {
            (local, true)
        } else {
            (reported, false)
        };
        let cost = self.meter.cost(&usage);
        self.settle_priced(usage, estimated, cost)
    }

    /// Settles a blocking call that used `usage` and costs `cost`, priced by the operation
    /// itself (from the provider's charges) rather than from the usage.
    ///
    /// The record is made and the answer taken out now; what is awaited holds only the answer
    /// and the settlement's own (boxed) future. As an async fn it held the whole `Served` twice
    /// (the argument and its local), over a kilobyte in the future of every request.
    pub(crate) fn settle_priced(
        self,
        usage: Usage,
        estimated: bool,
        cost: Option<Cost>,
    ) -> impl Future<Output = Metered<T>> {
        let end = End {
            estimated,
            billable: true,
            retries: self.retries,
            ..End::default()
        };
        if cost.is_none() {
            crate::metering::warn_unpriced(&self.meter.route);
        }
        let settled = self
            .meter
            .settle(|| self.meter.record_priced(usage, end, cost));
        let metered = Metered {
            value: self.value,
            route: self.meter.route.clone(),
            cost,
            usage: Some(usage),
            estimated,
            retries: self.retries,
            cache: crate::cache::CacheStatus::Unused,
        };
        async move {
            settled.await;
            metered
        }
    }
}

/// The attempts of one request so far.
struct Run<'a> {
    ctx: &'a CallContext,
    trace: &'a Trace,
    /// The route being tried.
    route: Option<RouteId>,
    deadline: Duration,
    deadline_at: Instant,
    attempts: Vec<Attempt>,
    last_error: Option<Error>,
    meter: Option<Meter>,
    calls: u32,
}

impl<'a> Run<'a> {
    fn new(ctx: &'a CallContext, trace: &'a Trace, deadline: Duration) -> Self {
        Self {
            ctx,
            trace,
            route: None,
            deadline,
            deadline_at: Instant::now() + deadline,
            attempts: Vec::new(),
            last_error: None,
            meter: None,
            calls: 0,
        }
    }

    /// Records that `route` was passed over without a call. `first_wins`: keep an earlier
    /// error as the one to report (a capability or plan mismatch says less than a real failure
    /// that may come later).
    fn skip(&mut self, route: &RouteId, why: Skip, error: Error, first_wins: bool) {
        self.attempts.push(Attempt {
            route: route.clone(),
            outcome: AttemptOutcome::Skipped(why),
            latency: Duration::ZERO,
        });
        if first_wins {
            self.last_error.get_or_insert(error);
        } else {
            self.last_error = Some(error);
        }
    }

    /// The time left before the deadline, if any.
    fn remaining(&self) -> Option<Duration> {
        self.deadline_at
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    fn retries(&self) -> u32 {
        self.calls.saturating_sub(1)
    }

    fn fail(mut self, error: Error) -> Failed {
        let retries = self.retries();
        Failed {
            error,
            meter: self
                .meter
                .take()
                .map(|m| Box::new(m.with_attempts(std::mem::take(&mut self.attempts)))),
            retries,
            trace: self.trace.clone(),
            route: self.route.take(),
        }
    }

    fn served<T>(mut self, value: T) -> std::result::Result<Served<T>, Failed> {
        let retries = self.retries();
        match self.meter.take() {
            Some(meter) => Ok(Served {
                value,
                meter: meter.with_attempts(std::mem::take(&mut self.attempts)),
                retries,
            }),
            // Unreachable by construction: a route is admitted before its first call.
            None => Err(Failed::early(
                Error::new(
                    ErrorKind::Unavailable,
                    "a call was made without an admission",
                ),
                self.trace,
            )),
        }
    }
}

/// A request whose future is dropped while its attempts run (the client went away, the caller
/// dropped the future) is settled here, at once, instead of holding its reservation until
/// recovery charges it hours later: released when no provider was called yet, else charged at
/// what was reserved (the provider may have done the work), marked estimated.
impl Drop for Run<'_> {
    fn drop(&mut self) {
        let Some(meter) = self.meter.take() else {
            return;
        };
        let meter = meter.with_attempts(std::mem::take(&mut self.attempts));
        let gone = Error::new(
            ErrorKind::StreamInterrupted,
            "the caller went away before the answer",
        );
        let called = self.calls > 0;
        let reserved = meter.reservation.as_ref().map(|r| r.estimate);
        let usage = match reserved {
            Some(amount) if called => {
                let mut usage = Usage::default();
                usage.tokens.input_tokens = meter.prompt_tokens.min(amount.tokens);
                usage.tokens.output_tokens = amount.tokens.saturating_sub(meter.prompt_tokens);
                usage.units = amount.units;
                usage
            }
            _ => Usage::default(),
        };
        let end = End {
            error: Some(&gone),
            estimated: called,
            billable: called,
            retries: self.calls.saturating_sub(1),
            ..End::default()
        };
        let cost = reserved.and_then(|a| a.cost);
        let settle = meter.settle(|| meter.record_priced(usage, end, cost));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(settle);
            }
            Err(_) => tracing::error!(
                request_id = meter.request_id,
                "request dropped outside a runtime: recovery will settle its reservation at the estimate"
            ),
        }
    }
}

/// What to do with a route before calling it.
enum Prepared {
    Go,
    Skip,
    Fail(Error),
}

/// How one route's calls ended.
enum RouteEnd<T> {
    Served(T),
    Next,
    Fail(Error),
}

fn deadline_error(deadline: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("the request deadline of {} ms passed", deadline.as_millis()),
    )
}

impl Gateway {
    /// Tries the routes of `model`'s chain (then `ctx`'s fallbacks) in order, each with its
    /// retries, within the request's deadline. The plan is checked (and the estimate reserved)
    /// once, on the first route that can be tried; a fallback route must also be allowed by the
    /// plan. The first route of a model that is not an alias must be available; later ones that
    /// are not (their provider has no key, or does not serve this modality) are skipped.
    pub(crate) async fn attempt<O: Operation>(
        &self,
        op: &O,
        ctx: &CallContext,
        trace: &Trace,
        model: &str,
        req: &O::Request,
    ) -> std::result::Result<Served<O::Output>, Failed> {
        let routes = chain(&self.aliases, model, &ctx.fallbacks, |m| self.route(m))
            .map_err(|e| Failed::early(e, trace))?;
        let deadline = ctx.deadline.unwrap_or_else(|| self.routing.deadline());
        let mut run = Run::new(ctx, trace, deadline);
        let named_directly = !self.aliases.contains(model);
        let only = routes.len() == 1;
        for (index, route) in routes.iter().enumerate() {
            run.route = Some(route.clone());
            let Some(provider) = op.model(&self.registry, route.provider) else {
                let error = self.not_available::<O>(route);
                if index == 0 && named_directly {
                    return Err(run.fail(error));
                }
                run.skip(route, Skip::NotAvailable, error, true);
                continue;
            };
            let estimate = op.estimate(&provider, req, route, &self.pricing);
            match self
                .prepare(op, &mut run, &provider, route, req, &estimate, only)
                .await
            {
                Prepared::Go => {}
                Prepared::Skip => continue,
                Prepared::Fail(error) => return Err(run.fail(error)),
            }
            let more = index + 1 < routes.len();
            match self
                .call_route(op, &mut run, provider, route, req, index, more)
                .await
            {
                RouteEnd::Served(value) => return run.served(value),
                RouteEnd::Next => {}
                RouteEnd::Fail(error) => return Err(run.fail(error)),
            }
        }
        let error = run.last_error.take().unwrap_or_else(|| {
            Error::new(ErrorKind::Unavailable, "no route could serve the request")
        });
        Err(run.fail(error))
    }

    /// Why `route` cannot be tried for `O`'s service: its provider is not set up, or does not
    /// serve this modality.
    fn not_available<O: Operation>(&self, route: &RouteId) -> Error {
        let serves = self.registry.services_of(route.provider);
        let why = if serves.is_empty() {
            format!(
                "provider `{}` is not configured (configured: {})",
                route.provider,
                self.registry.providers().join(", ")
            )
        } else {
            let names: Vec<&str> = serves.iter().map(|s| s.as_str()).collect();
            format!(
                "provider `{}` does not serve {} (it serves: {})",
                route.provider,
                O::SERVICE,
                names.join(", ")
            )
        };
        Error::new(ErrorKind::NotFound, format!("model `{route}`: {why}"))
    }

    /// Capabilities, plan and outgoing limits of one route, before any call to it.
    #[allow(clippy::too_many_arguments)]
    async fn prepare<O: Operation>(
        &self,
        op: &O,
        run: &mut Run<'_>,
        provider: &O::Model,
        route: &RouteId,
        req: &O::Request,
        estimate: &Estimate,
        only: bool,
    ) -> Prepared {
        if let Err(e) = op.check(provider, route, req) {
            if only || *e.kind() != ErrorKind::Unsupported {
                return Prepared::Fail(e);
            }
            run.skip(route, Skip::Unsupported, e, true);
            return Prepared::Skip;
        }
        // The plan: admitted once, on the first route tried; later routes must be allowed.
        match &mut run.meter {
            None => match self.admit(op, run.ctx, run.trace, route, estimate).await {
                Ok(meter) => run.meter = Some(meter),
                Err(e) => return Prepared::Fail(e),
            },
            Some(meter) => {
                if let Some(accounting) = &self.accounting {
                    let admission = admission(op, run.ctx, &meter.user_id, route, estimate);
                    match accounting.permits(admission).await {
                        Ok(()) => {}
                        Err(e) if *e.kind() == ErrorKind::PermissionDenied => {
                            run.skip(route, Skip::NotInPlan, e, true);
                            return Prepared::Skip;
                        }
                        Err(e) => return Prepared::Fail(e),
                    }
                    // A pricier route is paid for before it is called: the reservation grows
                    // to what this route needs, or the route is skipped.
                    if let Some(reservation) = &meter.reservation
                        && let Some(to) = grown(reservation, estimate)
                    {
                        match accounting.extend(reservation.clone(), to).await {
                            Ok(grown) => meter.reservation = Some(grown),
                            Err(e) if *e.kind() == ErrorKind::QuotaExceeded => {
                                run.skip(route, Skip::OverBudget, e, true);
                                return Prepared::Skip;
                            }
                            Err(e) => return Prepared::Fail(e),
                        }
                    }
                }
                meter.retarget(route);
            }
        }
        // Outgoing rate limits of the provider's key.
        if let Some(limits) = self.limits.get(route.provider) {
            match check_limits(limits, route.provider, estimate.amount.tokens).await {
                Ok(None) => {}
                Ok(Some(e)) => {
                    run.skip(route, Skip::RateLimitedLocally, e, false);
                    return Prepared::Skip;
                }
                Err(e) => return Prepared::Fail(e),
            }
        }
        Prepared::Go
    }

    /// Calls one route (number `index` of the chain), retrying what is worth retrying, until it
    /// answers, the request must end, or the next route should be tried.
    #[allow(clippy::too_many_arguments)]
    async fn call_route<O: Operation>(
        &self,
        op: &O,
        run: &mut Run<'_>,
        provider: std::sync::Arc<O::Model>,
        route: &RouteId,
        req: &O::Request,
        index: usize,
        more_routes: bool,
    ) -> RouteEnd<O::Output> {
        let breaker = self.breaker(route);
        let mut retry = 0;
        loop {
            let permit = match breaker.try_acquire() {
                Ok(permit) => permit,
                Err(open) => {
                    run.skip(route, Skip::CircuitOpen, open.into(), false);
                    return RouteEnd::Next;
                }
            };
            let Some(remaining) = run.remaining() else {
                drop(permit);
                return RouteEnd::Fail(deadline_error(run.deadline));
            };
            let started = Instant::now();
            run.calls += 1;
            let output_bound = run
                .meter
                .as_ref()
                .and_then(|m| m.reservation.as_ref())
                .and_then(|r| r.output_bound);
            let call = op.call_bounded(provider.clone(), route, req, output_bound);
            // No span (nor its wrapper) when nothing records the request's.
            let span = run.trace.is_on().then(|| attempt_span(route, retry, index));
            let timed = match &span {
                Some(span) => tokio::time::timeout(remaining, call.instrument(span.clone())).await,
                None => tokio::time::timeout(remaining, call).await,
            };
            let result = match timed {
                Ok(result) => {
                    permit.record(&result);
                    result
                }
                // The caller's deadline, not the provider's health: a short deadline must
                // not open the circuit for everyone, so the permit counts as neither.
                Err(_) => {
                    drop(permit);
                    Err(deadline_error(run.deadline).with_provider(route.provider))
                }
            };
            if let Some(span) = span {
                attempt_ended(&span, result.as_ref().err());
            }
            run.attempts.push(Attempt {
                route: route.clone(),
                outcome: match &result {
                    Ok(_) => AttemptOutcome::Ok,
                    Err(e) => AttemptOutcome::Failed(e.kind().clone()),
                },
                latency: started.elapsed(),
            });
            let error = match result {
                Ok(value) => return RouteEnd::Served(value),
                Err(e) => e,
            };
            if Instant::now() >= run.deadline_at {
                return RouteEnd::Fail(deadline_error(run.deadline));
            }
            if !self.falls_back_on(&error) {
                return RouteEnd::Fail(error);
            }
            match self.retry.delay(retry, &error) {
                Some(wait) if Instant::now() + wait < run.deadline_at => {
                    tracing::warn!(request_id = %run.ctx.request_id, route = %route, error = %error, retry = retry + 1, wait_ms = wait.as_millis() as u64, "retrying provider call");
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                _ => {
                    if more_routes {
                        tracing::warn!(request_id = %run.ctx.request_id, route = %route, error = %error, "falling back to the next route");
                    }
                    run.last_error = Some(error);
                    return RouteEnd::Next;
                }
            }
        }
    }

    /// Whether `error` on one route is worth trying the next: provider trouble is; the caller's
    /// own mistakes and plan refusals are not, a content-filter refusal only if configured, and
    /// a failure in doubt never (the work may be running already).
    fn falls_back_on(&self, error: &Error) -> bool {
        if error.is_in_doubt() {
            return false;
        }
        match error.kind() {
            ErrorKind::InvalidRequest | ErrorKind::PermissionDenied => false,
            ErrorKind::ContentFiltered => self.routing.fallback_on_content_filter,
            _ => true,
        }
    }

    /// Admits the call (when there is an accounting) and returns what settling it needs.
    async fn admit<O: Operation>(
        &self,
        op: &O,
        ctx: &CallContext,
        trace: &Trace,
        route: &RouteId,
        estimate: &Estimate,
    ) -> Result<Meter> {
        let mut meter = self
            .admit_as(
                ctx,
                trace,
                route,
                O::SERVICE.modality(),
                op.name(),
                estimate,
            )
            .await?;
        meter.pricer = O::PRICER;
        Ok(meter)
    }

    /// Admits a call of `operation` (of `modality`) on `route` expected to use `estimate`, and
    /// returns what settling it needs (priced from token usage; an operation prices its own).
    pub(crate) async fn admit_as(
        &self,
        ctx: &CallContext,
        trace: &Trace,
        route: &RouteId,
        modality: gateway_core::Modality,
        operation: &'static str,
        estimate: &Estimate,
    ) -> Result<Meter> {
        let user_id = ctx.user_id.clone().unwrap_or_default();
        let reservation = match &self.accounting {
            Some(accounting) => {
                if user_id.is_empty() {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "this gateway checks plans: the call must name its user",
                    ));
                }
                let admission = Admission {
                    request_id: ctx.request_id.clone(),
                    user_id: user_id.clone(),
                    route: route.clone(),
                    modality,
                    operation,
                    estimate: estimate.amount,
                    open_output: estimate.open_output,
                    priced: estimate.priced(),
                };
                Some(accounting.admit(admission).await?)
            }
            None => None,
        };
        Ok(Meter {
            accounting: self.accounting.clone(),
            reservation,
            request_id: ctx.request_id.clone(),
            user_id,
            route: route.clone(),
            modality,
            operation,
            prompt_tokens: estimate.prompt_tokens,
            pricing: self.pricing.clone(),
            pricer: super::op::token_cost,
            started: Instant::now(),
            attempts: Vec::new(),
            tags: ctx.tags.clone(),
            trace: trace.clone(),
        })
    }
}

/// The admission of `op` on `route` for `user_id`.
fn admission<O: Operation>(
    op: &O,
    ctx: &CallContext,
    user_id: &str,
    route: &RouteId,
    estimate: &Estimate,
) -> Admission {
    Admission {
        request_id: ctx.request_id.clone(),
        user_id: user_id.to_owned(),
        route: route.clone(),
        modality: O::SERVICE.modality(),
        operation: op.name(),
        estimate: estimate.amount,
        open_output: estimate.open_output,
        priced: estimate.priced(),
    }
}

/// What `reservation` must grow to for a route whose request is expected to use `estimate`
/// (its open output, if any, at the reservation's bound and this route's output price), or
/// `None` when what is reserved covers it.
fn grown(reservation: &Reservation, estimate: &Estimate) -> Option<Amount> {
    let reserved = reservation.estimate;
    let mut needed = estimate.amount;
    if let (Some(open), Some(bound)) = (estimate.open_output, reservation.output_bound) {
        let output = open.reserve(bound);
        needed.tokens = needed.tokens.saturating_add(output);
        if let (Some(cost), Some(price)) = (needed.cost, open.price_per_million) {
            needed.cost = Some(cost + Cost::per_million(price, output));
        }
    }
    let more_cost = match (needed.cost, reserved.cost) {
        (Some(needed), Some(reserved)) => needed > reserved,
        _ => false,
    };
    if !more_cost
        && needed.tokens <= reserved.tokens
        && needed.units <= reserved.units
        && needed.requests <= reserved.requests
    {
        return None;
    }
    Some(Amount {
        requests: reserved.requests.max(needed.requests),
        tokens: reserved.tokens.max(needed.tokens),
        units: reserved.units.max(needed.units),
        cost: match (reserved.cost, needed.cost) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
    })
}

/// `Ok(None)` when `provider`'s limits allow a call of `tokens`, `Ok(Some(error))` when they do
/// not (try another route), `Err` when the limiter itself failed (its store is down: never
/// allow blindly).
async fn check_limits(
    limits: &super::ProviderLimits,
    provider: &str,
    tokens: u64,
) -> Result<Option<Error>> {
    let checks = [
        (limits.requests.as_ref(), 1u64),
        (limits.tokens.as_ref(), tokens),
    ];
    for (limiter, cost) in checks {
        let Some(limiter) = limiter else { continue };
        let cost = u32::try_from(cost)
            .unwrap_or(u32::MAX)
            .min(limiter.quota().burst());
        let decision = limiter.check(provider, cost).await?;
        if let Some(wait) = decision.retry_after() {
            return Ok(Some(Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(wait),
                },
                format!("the gateway's own rate limit for provider `{provider}` is reached"),
            )));
        }
    }
    Ok(None)
}
