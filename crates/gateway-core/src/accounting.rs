//! Admission and accounting: the small trait through which the router checks a request against
//! the caller's plan before any provider is called, and records what the call cost afterwards.
//!
//! The router calls [`Accounting::admit`] with an estimate before the first upstream attempt: the
//! implementation checks the plan and reserves the estimate in one atomic step, so concurrent
//! requests can never overshoot a limit. After the call (or when a stream ends, breaks off or is
//! dropped by its client) the router calls [`Accounting::settle`] with the real usage, which
//! replaces the reservation. `gw-store` implements this on SQLite and PostgreSQL; an application
//! embedding the library can plug in its own.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::{Cost, Result, RouteId, TokenUsage};

/// What kind of output a request asks for; plans limit each on its own, with a request counter
/// and a volume counter each (tokens for text, units for the others).
///
/// Embeddings are planned as text: their input tokens count as text tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Modality {
    /// Chat and structured JSON.
    Text,
    /// Image generation and editing.
    Image,
    /// Video generation.
    Video,
    /// Speech synthesis and transcription.
    Audio,
    /// Web search.
    Search,
    /// Fine-tuning (LoRA training) jobs.
    Training,
}

impl Modality {
    /// Every modality.
    pub const ALL: [Modality; 6] = [
        Self::Text,
        Self::Image,
        Self::Video,
        Self::Audio,
        Self::Search,
        Self::Training,
    ];

    /// The lower-case name used in plans, counters and logs (`text`, `image`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Search => "search",
            Self::Training => "training",
        }
    }

    /// The modality named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of usage: what a request is expected to use, or what it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amount {
    /// Requests (1 for one call).
    pub requests: u64,
    /// Tokens, prompt and output together (text).
    pub tokens: u64,
    /// Media units: images, seconds of video or audio, characters of speech.
    pub units: u64,
    /// Cost, when the price is known.
    pub cost: Option<Cost>,
}

impl Amount {
    /// One request of `tokens` tokens and `units` units, costing `cost`.
    pub fn new(tokens: u64, units: u64, cost: Option<Cost>) -> Self {
        Self {
            requests: 1,
            tokens,
            units,
            cost,
        }
    }

    /// The volume counted for `modality`: tokens for text, units for the others.
    pub fn volume(&self, modality: Modality) -> u64 {
        match modality {
            Modality::Text => self.tokens,
            _ => self.units,
        }
    }
}

/// The output of a request that set no bound on it (a chat request without `max_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOutput {
    /// The price per million output tokens (or units), for pricing the default the
    /// implementation reserves.
    pub price_per_million: Option<Cost>,
    /// How many answers may each produce that much (`n`); 0 counts as 1.
    pub answers: u32,
}

impl OpenOutput {
    /// The output to reserve when each answer may produce `per_answer`.
    pub fn reserve(&self, per_answer: u64) -> u64 {
        per_answer.saturating_mul(u64::from(self.answers.max(1)))
    }
}

/// A request about to reach a provider, for the plan check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The gateway's request id.
    pub request_id: String,
    /// The calling user.
    pub user_id: String,
    /// The route it is admitted on.
    pub route: RouteId,
    /// What kind of output, as plans count it.
    pub modality: Modality,
    /// The operation (`chat`, `chat.stream`, `embeddings`, ...).
    pub operation: &'static str,
    /// What the request is expected to use at most, in plan amounts: for text the estimated
    /// prompt tokens plus the output bound when the request set one, with their cost when priced.
    pub estimate: Amount,
    /// Set when the output is open-ended: the implementation adds its default output (e.g. the
    /// plan's `default_max_tokens`) to `estimate`, priced as this says.
    pub open_output: Option<OpenOutput>,
    /// Whether the price of the model is known (plans may refuse unpriced models).
    pub priced: bool,
}

/// Reserved allowance, to be settled by [`Accounting::settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reservation's id in the store.
    pub id: String,
    /// The calling user.
    pub user_id: String,
    /// The billing period it was counted in (e.g. `2026-11`).
    pub period: String,
    /// What was reserved.
    pub estimate: Amount,
    /// For a request that set no output bound: the output per answer its reservation covers
    /// (the plan's default, lowered to what the remaining allowances pay for), to send the
    /// provider as the bound (`max_tokens`), so what comes back cannot pass what was reserved.
    /// `None` when the request set its own bound, or nothing limits what output costs.
    pub output_bound: Option<u64>,
}

/// How a metered call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered.
    Ok,
    /// The call failed; `kind` is the error kind in snake case (`rate_limited`, `upstream`, ...).
    Failed {
        /// The error kind.
        kind: String,
        /// The message (never a secret: errors carry no keys or URLs).
        message: String,
    },
}

/// Why a route of a request's chain was passed over without a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// Its provider is not set up (no key), or does not serve the modality.
    NotAvailable,
    /// It cannot do what the request asks (a capability check failed).
    Unsupported,
    /// The caller's plan does not allow it.
    NotInPlan,
    /// The gateway's own rate limit for the provider's key is reached.
    RateLimitedLocally,
    /// Its circuit breaker is open.
    CircuitOpen,
    /// It costs more than was reserved, and the plan's remaining allowance cannot pay the
    /// difference.
    OverBudget,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The provider answered.
    Ok,
    /// The call failed.
    Failed(crate::ErrorKind),
    /// The route was passed over without a call.
    Skipped(Skip),
}

impl AttemptOutcome {
    /// The name usage logs record: `ok`, the error kind (`rate_limited`, `timeout`, ...), or the
    /// reason for skipping (`not_available`, `unsupported`, `not_in_plan`,
    /// `rate_limited_locally`, `circuit_open`, `over_budget`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed(kind) => kind.as_str(),
            Self::Skipped(Skip::NotAvailable) => "not_available",
            Self::Skipped(Skip::Unsupported) => "unsupported",
            Self::Skipped(Skip::NotInPlan) => "not_in_plan",
            Self::Skipped(Skip::RateLimitedLocally) => "rate_limited_locally",
            Self::Skipped(Skip::CircuitOpen) => "circuit_open",
            Self::Skipped(Skip::OverBudget) => "over_budget",
        }
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One upstream attempt of a request: which route, how it ended, how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The route tried.
    pub route: RouteId,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// From the start of the attempt to its end (zero for a skipped route).
    pub latency: Duration,
}

/// How a caller labels a request, kept in its usage-log row: the end user it serves and its
/// own tags (OpenAI's `user` and `metadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestTags {
    /// The caller's end user (OpenAI's `user` or `safety_identifier`).
    pub end_user: Option<String>,
    /// Key-value tags, e.g. `team = search`.
    pub metadata: BTreeMap<String, String>,
}

impl RequestTags {
    /// Whether there is nothing to record.
    pub fn is_empty(&self) -> bool {
        self.end_user.is_none() && self.metadata.is_empty()
    }
}

/// What one request (one group of upstream attempts) used: one usage-log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The gateway's request id.
    pub request_id: String,
    /// The calling user.
    pub user_id: String,
    /// The route that finally served (or last failed).
    pub route: RouteId,
    /// What kind of output.
    pub modality: Modality,
    /// The operation (`chat`, `chat.stream`, `embeddings`, ...).
    pub operation: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// Tokens used (text).
    pub tokens: TokenUsage,
    /// Media units used.
    pub units: u64,
    /// The cost, or `None` when the catalog has no price for the model.
    pub cost: Option<Cost>,
    /// The pricing-catalog version that priced it.
    pub pricing_version: String,
    /// Whether the usage was counted locally (the provider never reported it, or the stream was
    /// cut) rather than reported by the provider.
    pub estimated: bool,
    /// Whether anything was billable: false when every attempt failed before the provider did
    /// any work, in which case the reservation is released.
    pub billable: bool,
    /// From admission to the last byte.
    pub latency: Duration,
    /// From admission to the first streamed byte.
    pub time_to_first_token: Option<Duration>,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Set when the answer came from the gateway's response cache.
    pub cached: Option<CacheHit>,
    /// Every attempt, in order, across retries and fallback routes.
    pub attempts: Vec<Attempt>,
    /// The caller's end user and tags.
    pub tags: RequestTags,
}

/// How a request was answered from the gateway's response cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHit {
    /// Found by meaning (a close enough earlier question) rather than by the exact request.
    pub semantic: bool,
    /// What the answer cost when it was made: what serving it again saved (`None` when it was
    /// not priced).
    pub saved: Option<Cost>,
}

impl UsageRecord {
    /// The amount this record charges.
    pub fn amount(&self) -> Amount {
        if !self.billable {
            return Amount::default();
        }
        Amount::new(self.tokens.total_tokens(), self.units, self.cost)
    }
}

/// Plan checks and usage accounting, before and after every metered call.
pub trait Accounting: Send + Sync + 'static {
    /// Checks `admission` against the user's plan and reserves its estimate, in one atomic step.
    ///
    /// Fails with [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied) for a model
    /// or modality the plan does not include, [`ErrorKind::QuotaExceeded`](crate::ErrorKind::QuotaExceeded)
    /// when the estimate would go over a limit, and [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable)
    /// when the store cannot be reached (the request must then not go ahead).
    fn admit(&self, admission: Admission) -> BoxFuture<'_, Result<Reservation>>;

    /// Replaces `reservation` with what the call really used, and logs it.
    fn settle(&self, reservation: Reservation, record: UsageRecord) -> BoxFuture<'_, Result<()>>;

    /// Whether the user's plan allows `admission`'s model and modality at all, without
    /// reserving anything: the router asks it before falling back to another route of a request
    /// already admitted, so a fallback can never reach a model the plan excludes.
    fn permits(&self, admission: Admission) -> BoxFuture<'_, Result<()>>;

    /// Grows `reservation` to `to` (no part of it below what it was), reserving the difference
    /// under the plan's limits in one atomic step: the router asks it before falling back to a
    /// pricier route, so the fallback is paid for before it is called. Fails with
    /// [`ErrorKind::QuotaExceeded`](crate::ErrorKind::QuotaExceeded) when the difference does
    /// not fit (the route is then skipped). The default cannot grow one: it refuses, and
    /// pricier fallbacks are skipped.
    fn extend(&self, reservation: Reservation, to: Amount) -> BoxFuture<'_, Result<Reservation>> {
        let _ = (reservation, to);
        Box::pin(async {
            Err(crate::Error::new(
                crate::ErrorKind::QuotaExceeded,
                "this accounting cannot grow a reservation for a pricier route",
            ))
        })
    }
}

/// A rough token count for text the provider has not counted (a prompt before the call, the
/// output of a stream cut short): one token per four bytes, rounded up, the rule of thumb of
/// BPE tokenizers on English text.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modality_names_round_trip() {
        for m in Modality::ALL {
            assert_eq!(Modality::parse(m.as_str()), Some(m));
        }
        assert_eq!(Modality::parse("smell"), None);
    }

    #[test]
    fn unbillable_records_charge_nothing() {
        let record = UsageRecord {
            request_id: "r".into(),
            user_id: "u".into(),
            route: RouteId::new("gemini", "m"),
            modality: Modality::Text,
            operation: "chat",
            outcome: Outcome::Failed {
                kind: "upstream".into(),
                message: "down".into(),
            },
            tokens: TokenUsage::default(),
            units: 0,
            cost: None,
            pricing_version: "v".into(),
            estimated: false,
            billable: false,
            latency: Duration::ZERO,
            time_to_first_token: None,
            retries: 2,
            cached: None,
            attempts: Vec::new(),
            tags: RequestTags::default(),
        };
        assert_eq!(record.amount(), Amount::default());
    }

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
