//! Fault injection, end to end: the gateway (server, router, plans, Gemini and Hugging Face
//! crates) over a real store, in front of mock upstreams that answer slowly, rate-limit, fail,
//! reset the connection, send broken JSON or streams, stall mid-stream, or send an enormous body.
//!
//! One table, one case per fault. Each case states what the client must get (status and error
//! type, or the stream's error event), which upstream calls the gateway must make (so whether it
//! retried and whether it fell back), how long it may take (a deadline within ±10%), and what the
//! usage log must say. After each case nothing may be left behind: no answer still running on a
//! mock, no open reservation, no upstream connection once the gateway is gone, and no more tokio
//! tasks than before the case.
//!
//! The suite prints a report of every case (`cargo test -p gw-server --test faults --
//! --nocapture`) and fails, after printing it, if any case failed.

mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use gw_mock::fixture::{Respond, UpstreamExpect, UpstreamStep};
use gw_mock::{MockUpstream, ResponseEnd};
use gw_server::Config;
use gw_store::Store;
use serde_json::{Value, json};
use support::{chat_body, open_store, start, user};

const GEMINI: &str = "gemini/gemini-2.5-flash";
const HF: &str = "hf/meta-llama/Llama-3.1-8B-Instruct";
/// An alias whose second route is the Hugging Face one.
const ALIAS: &str = "chat-faults";
const GEMINI_TEXT: &str = "Hi from Gemini";
const HF_TEXT: &str = "Hello from HF";
/// The stream idle timeout the gateway runs with.
const IDLE_MS: u64 = 500;
/// The longest `Retry-After` the gateway honours.
const MAX_RETRY_AFTER_MS: u64 = 2_000;
/// The enormous body.
const ENORMOUS: u64 = 64 * 1024 * 1024;
/// How long whatever a case leaves running may take to wind down.
const SETTLE: Duration = Duration::from_secs(2);

// ---- upstream answers ----

fn gemini_answer() -> Respond {
    Respond::json(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": GEMINI_TEXT}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash"
    }))
}

/// Gemini's error envelope.
fn gemini_error(status: u16, code: &str, message: &str) -> Respond {
    Respond::json(json!({"error": {"code": status, "message": message, "status": code}}))
        .status(status)
}

fn rate_limited() -> Respond {
    gemini_error(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
    )
}

/// What a proxy in front of the provider answers: not Gemini's envelope.
fn proxy_bad_gateway() -> Respond {
    Respond::text("<html><body><h1>502 Bad Gateway</h1></body></html>")
        .status(502)
        .header("content-type", "text/html")
}

fn delayed(mut respond: Respond, ms: u64) -> Respond {
    respond.delay_ms = Some(ms);
    respond
}

/// The first event of a Gemini stream: text, no usage, no finish.
const EVENT_1: &str =
    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Once upon"}]},"index":0}]}"#;
/// The last: text, finish and usage.
const EVENT_2: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":" a time"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"totalTokenCount":7}}"#;

fn gemini_stream() -> Respond {
    Respond::sse([EVENT_1, EVENT_2])
}

/// The stream's connection is reset after `events` events.
fn reset_after(mut respond: Respond, events: usize) -> Respond {
    respond.reset = true;
    respond.stall_after = Some(events);
    respond
}

fn hf_answer() -> Respond {
    Respond::json(json!({
        "id": "chatcmpl-hf", "object": "chat.completion", "created": 1_760_000_000,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": HF_TEXT},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    }))
}

fn hf_stream() -> Respond {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-hf", "object": "chat.completion.chunk", "created": 1_760_000_000,
               "model": "meta-llama/Llama-3.1-8B-Instruct",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    Respond::sse([
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": HF_TEXT}), Value::Null),
        chunk(json!({}), json!("stop")),
        json!({"id": "chatcmpl-hf", "object": "chat.completion.chunk", "created": 1_760_000_000,
               "model": "meta-llama/Llama-3.1-8B-Instruct", "choices": [],
               "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}})
        .to_string(),
        "[DONE]".to_owned(),
    ])
}

// ---- the table ----

/// How the request reaches the healthy Hugging Face route after the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// No fallback: the request names the primary only.
    Nothing,
    /// The request's own `"fallbacks": [...]`.
    Fallbacks,
    /// The model is an alias of both routes.
    Alias,
}

struct Case {
    name: &'static str,
    /// The primary's (Gemini's) answers, one per call the gateway must make.
    primary: Vec<Respond>,
    /// The fallback's (Hugging Face's) answers, one per call the gateway must make.
    fallback: Vec<Respond>,
    via: Via,
    stream: bool,
    /// `x-gateway-deadline-ms`.
    deadline_ms: Option<u64>,
    expect: Expect,
    /// Report whether the gateway read the whole body into memory (the enormous body).
    watch_buffering: bool,
}

impl Case {
    fn new(name: &'static str, primary: Vec<Respond>, expect: Expect) -> Self {
        Self {
            name,
            primary,
            fallback: Vec::new(),
            via: Via::Nothing,
            stream: false,
            deadline_ms: None,
            expect,
            watch_buffering: false,
        }
    }

    fn fallback(mut self, via: Via, answers: Vec<Respond>) -> Self {
        self.via = via;
        self.fallback = answers;
        self
    }

    fn stream(mut self) -> Self {
        self.stream = true;
        self
    }

    fn deadline(mut self, ms: u64) -> Self {
        self.deadline_ms = Some(ms);
        self
    }
}

/// What the client must get, and what the usage log must say.
struct Expect {
    /// The status; for a stream, 200 means the stream opened.
    status: u16,
    /// `error.type` and `error.code` of an error answer.
    error: Option<(&'static str, Option<&'static str>)>,
    /// The `Retry-After` header passed on to the client.
    retry_after: Option<&'static str>,
    /// The answer's text (a blocking answer's message, or a stream's concatenated deltas).
    content: Option<&'static str>,
    /// A stream's error event: `error.type` and `error.code`.
    sse_error: Option<(&'static str, &'static str)>,
    /// `x-gateway-route`: the route that served (absent on errors).
    route: Option<&'static str>,
    /// The usage row's attempts: route and outcome, in order.
    attempts: Vec<(&'static str, &'static str)>,
    /// The usage row's status.
    log_status: &'static str,
    billable: bool,
    estimated: Option<bool>,
    /// Bounds on the time from sending the request to the end of the answer.
    elapsed: (Duration, Duration),
}

/// The usual bound outside deadline cases: generous, since CI machines are slow.
const ANY_TIME: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(10));

impl Expect {
    /// A 200 served by `route` with `content`.
    fn served(route: &'static str, content: &'static str) -> Self {
        Self {
            status: 200,
            error: None,
            retry_after: None,
            content: Some(content),
            sse_error: None,
            route: Some(route),
            attempts: Vec::new(),
            log_status: "ok",
            billable: true,
            estimated: Some(false),
            elapsed: ANY_TIME,
        }
    }

    /// An error answer before any byte was sent: nothing billable.
    fn failed(
        status: u16,
        kind: &'static str,
        code: Option<&'static str>,
        log: &'static str,
    ) -> Self {
        Self {
            status,
            error: Some((kind, code)),
            content: None,
            route: None,
            log_status: log,
            billable: false,
            estimated: Some(false),
            ..Self::served("", "")
        }
    }

    /// A stream that opened (200 from `route`), sent `content`, then broke with an error event:
    /// the provider's work so far is billable.
    fn broke_off(
        route: &'static str,
        content: &'static str,
        kind: &'static str,
        code: &'static str,
        log: &'static str,
    ) -> Self {
        Self {
            sse_error: Some((kind, code)),
            log_status: log,
            estimated: None,
            ..Self::served(route, content)
        }
    }

    fn attempts(mut self, attempts: &[(&'static str, &'static str)]) -> Self {
        self.attempts = attempts.to_vec();
        self
    }

    fn estimated(mut self, estimated: bool) -> Self {
        self.estimated = Some(estimated);
        self
    }

    fn retry_after(mut self, value: &'static str) -> Self {
        self.retry_after = Some(value);
        self
    }

    fn within_ms(mut self, min: u64, max: u64) -> Self {
        self.elapsed = (Duration::from_millis(min), Duration::from_millis(max));
        self
    }

    /// Within ±10% of a deadline of `ms`.
    fn at_deadline(self, ms: u64) -> Self {
        self.within_ms(ms * 9 / 10, ms * 11 / 10)
    }

    fn summary(&self) -> String {
        let mut s = self.status.to_string();
        if let Some((kind, _)) = self.error {
            let _ = write!(s, " {kind}");
        }
        if let Some((kind, _)) = self.sse_error {
            let _ = write!(s, " sse:{kind}");
        }
        if let Some(route) = self.route {
            let _ = write!(s, " via {}", provider_of(route));
        }
        let calls = |route: &str| self.attempts.iter().filter(|(r, _)| *r == route).count();
        let _ = write!(s, " G{} H{}", calls(GEMINI), calls(HF));
        s
    }
}

fn provider_of(route: &str) -> &str {
    route.split('/').next().unwrap_or(route)
}

fn cases() -> Vec<Case> {
    let g = |outcome| (GEMINI, outcome);
    let h = |outcome| (HF, outcome);
    vec![
        Case::new(
            "control: a healthy answer",
            vec![gemini_answer()],
            Expect::served(GEMINI, GEMINI_TEXT).attempts(&[g("ok")]),
        ),
        Case::new(
            "slow answer (300 ms) within a 2 s deadline",
            vec![delayed(gemini_answer(), 300)],
            Expect::served(GEMINI, GEMINI_TEXT)
                .attempts(&[g("ok")])
                .within_ms(300, 1_900),
        )
        .deadline(2_000),
        Case::new(
            "slow answer (5 s) past a 1 s deadline",
            vec![delayed(gemini_answer(), 5_000)],
            Expect::failed(504, "timeout_error", Some("upstream_timeout"), "timeout")
                .attempts(&[g("timeout")])
                .at_deadline(1_000),
        )
        .deadline(1_000),
        Case::new(
            "slow answer past a 1 s deadline, fallback configured: no time left to fall back",
            vec![delayed(gemini_answer(), 5_000)],
            Expect::failed(504, "timeout_error", Some("upstream_timeout"), "timeout")
                .attempts(&[g("timeout")])
                .at_deadline(1_000),
        )
        .fallback(Via::Fallbacks, vec![])
        .deadline(1_000),
        Case::new(
            "no answer at all (held open) past a 1 s deadline",
            vec![Respond::never()],
            Expect::failed(504, "timeout_error", Some("upstream_timeout"), "timeout")
                .attempts(&[g("timeout")])
                .at_deadline(1_000),
        )
        .deadline(1_000),
        Case::new(
            "stream that does not start (5 s) past a 1 s deadline",
            vec![delayed(gemini_stream(), 5_000)],
            Expect::failed(504, "timeout_error", Some("upstream_timeout"), "timeout")
                .attempts(&[g("timeout")])
                .at_deadline(1_000),
        )
        .stream()
        .deadline(1_000),
        Case::new(
            "429 with Retry-After 0, then 200",
            vec![rate_limited().header("retry-after", "0"), gemini_answer()],
            Expect::served(GEMINI, GEMINI_TEXT).attempts(&[g("rate_limited"), g("ok")]),
        ),
        Case::new(
            "429 without Retry-After (backoff), then 200",
            vec![rate_limited(), gemini_answer()],
            Expect::served(GEMINI, GEMINI_TEXT).attempts(&[g("rate_limited"), g("ok")]),
        ),
        Case::new(
            "429 without Retry-After, 3 times",
            vec![rate_limited(), rate_limited(), rate_limited()],
            Expect::failed(
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                "rate_limited",
            )
            .attempts(&[g("rate_limited"), g("rate_limited"), g("rate_limited")]),
        ),
        Case::new(
            "429 with Retry-After 30 s > max_retry_after (2 s): not retried",
            vec![rate_limited().header("retry-after", "30")],
            Expect::failed(
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                "rate_limited",
            )
            .retry_after("30")
            .attempts(&[g("rate_limited")])
            .within_ms(0, 1_500),
        ),
        Case::new(
            "500 INTERNAL, 3 times",
            vec![
                gemini_error(500, "INTERNAL", "An internal error has occurred."),
                gemini_error(500, "INTERNAL", "An internal error has occurred."),
                gemini_error(500, "INTERNAL", "An internal error has occurred."),
            ],
            Expect::failed(502, "upstream_error", Some("upstream_error"), "upstream").attempts(&[
                g("upstream"),
                g("upstream"),
                g("upstream"),
            ]),
        ),
        Case::new(
            "502 from a proxy (HTML body), 3 times",
            vec![
                proxy_bad_gateway(),
                proxy_bad_gateway(),
                proxy_bad_gateway(),
            ],
            Expect::failed(502, "upstream_error", Some("upstream_error"), "upstream").attempts(&[
                g("upstream"),
                g("upstream"),
                g("upstream"),
            ]),
        ),
        Case::new(
            "503 UNAVAILABLE, 3 times",
            vec![
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
            ],
            Expect::failed(502, "upstream_error", Some("upstream_error"), "upstream").attempts(&[
                g("upstream"),
                g("upstream"),
                g("upstream"),
            ]),
        ),
        Case::new(
            "503 UNAVAILABLE, 3 times, request fallbacks: falls back",
            vec![
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
            ],
            Expect::served(HF, HF_TEXT).attempts(&[
                g("upstream"),
                g("upstream"),
                g("upstream"),
                h("ok"),
            ]),
        )
        .fallback(Via::Fallbacks, vec![hf_answer()]),
        Case::new(
            "500/502/503 on an alias: falls back",
            vec![
                gemini_error(500, "INTERNAL", "An internal error has occurred."),
                proxy_bad_gateway(),
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
            ],
            Expect::served(HF, HF_TEXT).attempts(&[
                g("upstream"),
                g("upstream"),
                g("upstream"),
                h("ok"),
            ]),
        )
        .fallback(Via::Alias, vec![hf_answer()]),
        Case::new(
            "503 UNAVAILABLE 3 times on a stream, alias: falls back before the stream opens",
            vec![
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
                gemini_error(503, "UNAVAILABLE", "The model is overloaded."),
            ],
            Expect::served(HF, HF_TEXT).attempts(&[
                g("upstream"),
                g("upstream"),
                g("upstream"),
                h("ok"),
            ]),
        )
        .fallback(Via::Alias, vec![hf_stream()])
        .stream(),
        Case::new(
            "connection reset, then 200",
            vec![Respond::reset(), gemini_answer()],
            Expect::served(GEMINI, GEMINI_TEXT).attempts(&[g("connect"), g("ok")]),
        ),
        Case::new(
            "connection reset, 3 times",
            vec![Respond::reset(), Respond::reset(), Respond::reset()],
            Expect::failed(
                502,
                "upstream_error",
                Some("upstream_unreachable"),
                "connect",
            )
            .attempts(&[g("connect"), g("connect"), g("connect")]),
        ),
        Case::new(
            "connection reset, 3 times, request fallbacks: falls back",
            vec![Respond::reset(), Respond::reset(), Respond::reset()],
            Expect::served(HF, HF_TEXT).attempts(&[
                g("connect"),
                g("connect"),
                g("connect"),
                h("ok"),
            ]),
        )
        .fallback(Via::Fallbacks, vec![hf_answer()]),
        Case::new(
            "malformed JSON on a 200: not retried",
            vec![Respond::malformed_json(r#"{"candidates": [{"content": "#)],
            Expect::failed(
                502,
                "upstream_error",
                Some("upstream_bad_response"),
                "decode",
            )
            .attempts(&[g("decode")]),
        ),
        Case::new(
            "malformed JSON on a 200, request fallbacks: not retried, falls back",
            vec![Respond::malformed_json("<html>not json</html>")],
            Expect::served(HF, HF_TEXT).attempts(&[g("decode"), h("ok")]),
        )
        .fallback(Via::Fallbacks, vec![hf_answer()]),
        Case::new(
            "truncated stream (breaks off mid-event), fallback configured: no fallback after bytes",
            vec![Respond::sse_broken_off(
                [EVENT_1],
                r#"{"candidates":[{"content":"#,
            )],
            Expect::broke_off(
                GEMINI,
                "Once upon",
                "upstream_error",
                "stream_interrupted",
                "stream_interrupted",
            )
            .attempts(&[g("ok")])
            .estimated(true),
        )
        .fallback(Via::Fallbacks, vec![])
        .stream(),
        Case::new(
            "connection reset mid-stream, alias: no fallback after bytes",
            vec![reset_after(gemini_stream(), 1)],
            Expect::broke_off(
                GEMINI,
                "Once upon",
                "upstream_error",
                "stream_interrupted",
                "stream_interrupted",
            )
            .attempts(&[g("ok")])
            .estimated(true),
        )
        .fallback(Via::Alias, vec![])
        .stream(),
        Case::new(
            "stall mid-stream (3 s) beyond the 500 ms idle timeout",
            vec![gemini_stream().stall(1, 3_000)],
            Expect::broke_off(
                GEMINI,
                "Once upon",
                "timeout_error",
                "upstream_timeout",
                "timeout",
            )
            .attempts(&[g("ok")])
            .estimated(true)
            .within_ms(IDLE_MS * 9 / 10, 2_000),
        )
        .stream(),
        Case::new(
            "stall mid-stream (200 ms) within the 500 ms idle timeout",
            vec![gemini_stream().stall(1, 200)],
            Expect::served(GEMINI, "Once upon a time")
                .attempts(&[g("ok")])
                .within_ms(200, 2_000),
        )
        .stream(),
        Case {
            watch_buffering: true,
            ..Case::new(
                "enormous body (64 MiB: a valid answer padded with spaces) on a 200",
                vec![gemini_answer().body_bytes(ENORMOUS)],
                Expect::failed(
                    502,
                    "upstream_error",
                    Some("upstream_bad_response"),
                    "decode",
                )
                .attempts(&[g("decode")])
                .within_ms(0, 5_000),
            )
        },
        Case::new(
            "400 INVALID_ARGUMENT, request fallbacks: no retry, no fallback",
            vec![gemini_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received.",
            )],
            Expect::failed(400, "invalid_request_error", None, "invalid_request")
                .attempts(&[g("invalid_request")]),
        )
        .fallback(Via::Fallbacks, vec![]),
    ]
}

// ---- running a case ----

/// What the client got.
#[derive(Debug, Default)]
struct Answer {
    status: u16,
    route: Option<String>,
    retry_after: Option<String>,
    /// A JSON body (blocking answers and errors).
    json: Option<Value>,
    /// A stream: the concatenated deltas, the error event, whether `[DONE]` came last.
    stream: Option<Streamed>,
}

#[derive(Debug, Default)]
struct Streamed {
    text: String,
    error: Option<Value>,
    done_last: bool,
}

impl Answer {
    fn content(&self) -> Option<String> {
        match &self.stream {
            Some(s) => Some(s.text.clone()),
            None => self
                .json
                .as_ref()?
                .pointer("/choices/0/message/content")?
                .as_str()
                .map(str::to_owned),
        }
    }

    fn error(&self) -> Option<&Value> {
        self.json.as_ref()?.get("error")
    }

    fn summary(&self) -> String {
        let mut s = self.status.to_string();
        if let Some(kind) = self.error().and_then(|e| e["type"].as_str()) {
            let _ = write!(s, " {kind}");
        }
        if let Some(kind) = self
            .stream
            .as_ref()
            .and_then(|st| st.error.as_ref())
            .and_then(|e| e["type"].as_str())
        {
            let _ = write!(s, " sse:{kind}");
        }
        if let Some(route) = &self.route {
            let _ = write!(s, " via {}", provider_of(route));
        }
        s
    }
}

fn parse_sse(body: &str) -> Streamed {
    let mut out = Streamed::default();
    for frame in body.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let data = frame.strip_prefix("data: ").unwrap_or(frame);
        out.done_last = data == "[DONE]";
        if out.done_last {
            continue;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(error) = chunk.get("error") {
            out.error = Some(error.clone());
        }
        if let Some(text) = chunk
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            out.text.push_str(text);
        }
    }
    out
}

/// One line of the report.
struct Row {
    name: &'static str,
    expected: String,
    outcome: String,
    calls: String,
    elapsed: Duration,
    problems: Vec<String>,
    notes: Vec<String>,
}

fn config(primary: &str, fallback: &str) -> Config {
    let text = format!(
        "[retry]\nmax_retries = 2\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\nmax_retry_after_ms = {MAX_RETRY_AFTER_MS}\n\
         [routing]\nstream_idle_timeout_ms = {IDLE_MS}\n\
         [routing.aliases.{ALIAS}]\nroutes = [\"{GEMINI}\", \"{HF}\"]\n\
         [providers.gemini]\nbase_url = \"{primary}\"\napi_key = \"provider-key\"\nmodels = [\"gemini-2.5-flash\"]\n\
         [providers.hf]\nbase_url = \"{fallback}\"\napi_key = \"provider-key\"\n"
    );
    Config::from_toml(&text, "faults config", std::iter::empty()).unwrap()
}

fn steps(answers: &[Respond], path: &str) -> Vec<UpstreamStep> {
    answers
        .iter()
        .map(|respond| UpstreamStep {
            expect: UpstreamExpect {
                method: Some("POST".into()),
                path: Some(path.into()),
                ..UpstreamExpect::default()
            },
            respond: respond.clone(),
        })
        .collect()
}

/// The tasks the two mocks of a case keep while they run: one server task each.
const MOCK_TASKS: usize = 2;

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// The number of alive tasks once it is down to `target`, or after [`SETTLE`].
async fn settled_tasks(target: usize) -> usize {
    let until = Instant::now() + SETTLE;
    let mut tasks = alive_tasks();
    while tasks > target && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tasks = alive_tasks();
    }
    tasks
}

/// The process's peak resident set (Linux), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

async fn run(case: &Case, store: &Store) -> Row {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let tasks_before = alive_tasks();

    let primary_path = if case.stream {
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    } else {
        "/v1beta/models/gemini-2.5-flash:generateContent"
    };
    let primary = MockUpstream::start(steps(&case.primary, primary_path))
        .await
        .unwrap();
    let fallback = MockUpstream::start(steps(&case.fallback, "/v1/chat/completions"))
        .await
        .unwrap();
    let (alice, key) = user(store, "enterprise").await;
    let server = start(&config(primary.url(), fallback.url()), Some(store.clone())).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let mut body = chat_body(
        if case.via == Via::Alias {
            ALIAS
        } else {
            GEMINI
        },
        case.stream,
    );
    if case.via == Via::Fallbacks {
        body["fallbacks"] = json!([HF]);
    }
    let mut request = client
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .json(&body);
    if let Some(ms) = case.deadline_ms {
        request = request.header("x-gateway-deadline-ms", ms.to_string());
    }
    let rss_before = peak_rss();
    let started = Instant::now();
    let answer = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let route = header("x-gateway-route");
            let retry_after = header("retry-after");
            let is_sse = header("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
            match response.text().await {
                Ok(text) => Answer {
                    status,
                    route,
                    retry_after,
                    json: if is_sse {
                        None
                    } else {
                        serde_json::from_str(&text).ok()
                    },
                    stream: is_sse.then(|| parse_sse(&text)),
                },
                Err(e) => {
                    problems.push(format!("reading the answer failed: {e}"));
                    Answer {
                        status,
                        ..Answer::default()
                    }
                }
            }
        }
        Err(e) => {
            problems.push(format!("the request failed: {e}"));
            Answer::default()
        }
    };
    let elapsed = started.elapsed();
    check_answer(case, &answer, elapsed, &mut problems);

    // Upstream calls: exactly the steps given, in order (so retried or not, fell back or not).
    for (who, mock) in [("primary", &primary), ("fallback", &fallback)] {
        for d in mock.verify() {
            problems.push(format!("{who}: {d}"));
        }
    }
    let calls = format!(
        "G{} H{}",
        primary.received().len(),
        fallback.received().len()
    );

    // The usage log: one complete row.
    let until = Instant::now() + SETTLE;
    let mut rows = store.usage_log(Some(&alice.id), 10).await.unwrap();
    while rows.is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
        rows = store.usage_log(Some(&alice.id), 10).await.unwrap();
    }
    match rows.as_slice() {
        [row] => {
            let attempts: Vec<(&str, &str)> = row
                .attempts
                .iter()
                .map(|a| (a.route.as_str(), a.outcome.as_str()))
                .collect();
            if attempts != case.expect.attempts {
                problems.push(format!(
                    "usage attempts: expected {:?}, got {attempts:?}",
                    case.expect.attempts
                ));
            }
            if row.status != case.expect.log_status {
                problems.push(format!(
                    "usage status: expected {}, got {} ({:?})",
                    case.expect.log_status, row.status, row.error_message
                ));
            }
            if row.billable != case.expect.billable {
                problems.push(format!(
                    "usage billable: expected {}, got {}",
                    case.expect.billable, row.billable
                ));
            }
            if let Some(estimated) = case.expect.estimated
                && row.estimated != estimated
            {
                problems.push(format!(
                    "usage estimated: expected {estimated}, got {}",
                    row.estimated
                ));
            }
            let retries = attempts.len().saturating_sub(1) as u32;
            if row.retries != retries {
                problems.push(format!(
                    "usage retries: expected {retries}, got {}",
                    row.retries
                ));
            }
            if row.status == "ok" && row.error_message.is_some() {
                problems.push(format!(
                    "usage error message on an ok row: {:?}",
                    row.error_message
                ));
            }
        }
        rows => problems.push(format!("usage log: expected 1 row, got {}", rows.len())),
    }

    // Nothing left behind: no answer still running upstream, no open reservation.
    for (who, mock) in [("primary", &primary), ("fallback", &fallback)] {
        if !mock.wait_for(SETTLE, |m| m.active_responses() == 0).await {
            problems.push(format!(
                "{who}: {} upstream answer(s) still running after {SETTLE:?}",
                mock.active_responses()
            ));
        }
    }
    let until = Instant::now() + SETTLE;
    let mut reservations = store.open_reservations().await.unwrap();
    while reservations != 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
        reservations = store.open_reservations().await.unwrap();
    }
    if reservations != 0 {
        problems.push(format!("{reservations} reservation(s) left open"));
    }

    if case.watch_buffering {
        let end = primary
            .responses()
            .first()
            .and_then(|r| r.ended)
            .map(|(how, _)| how);
        let grew = match (rss_before, peak_rss()) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        let grew_text = grew.map_or("unknown".to_owned(), |b| {
            format!("{} MiB", b / (1024 * 1024))
        });
        let read_all = end == Some(ResponseEnd::Complete);
        notes.push(format!(
            "the {} MiB upstream body was {}; peak RSS grew by {grew_text}",
            ENORMOUS / (1024 * 1024),
            if read_all {
                "read to its end by the gateway"
            } else {
                "not read to its end (the gateway stopped reading)"
            }
        ));
        if read_all {
            problems.push(format!(
                "the gateway read the whole {} MiB upstream body: gateway_core::http::read_json \
                 must stop at MAX_RESPONSE_BYTES",
                ENORMOUS / (1024 * 1024)
            ));
        }
    }

    // The gateway gone, its upstream connections must close, and every task must end.
    drop(client);
    drop(server);
    for (who, mock) in [("primary", &primary), ("fallback", &fallback)] {
        if !mock.wait_for(SETTLE, |m| m.open_connections() == 0).await {
            problems.push(format!(
                "{who}: {} connection(s) still open after the gateway stopped",
                mock.open_connections()
            ));
        }
    }
    // Only the two mocks' own server tasks may be left: a gateway task still waiting on an
    // upstream would be freed by dropping the mocks, so count before that.
    let mocks_only = tasks_before + MOCK_TASKS;
    let gateway_left = settled_tasks(mocks_only).await;
    if gateway_left > mocks_only {
        problems.push(format!(
            "tokio tasks: {} left by the gateway after it stopped",
            gateway_left - mocks_only
        ));
    }
    drop(primary);
    drop(fallback);
    let tasks_after = settled_tasks(tasks_before).await;
    if tasks_after > tasks_before {
        problems.push(format!(
            "tokio tasks: {tasks_before} before the case, {tasks_after} after it (waited {SETTLE:?})"
        ));
    }

    Row {
        name: case.name,
        expected: case.expect.summary(),
        outcome: answer.summary(),
        calls,
        elapsed,
        problems,
        notes,
    }
}

fn check_answer(case: &Case, got: &Answer, elapsed: Duration, problems: &mut Vec<String>) {
    let expect = &case.expect;
    let (min, max) = expect.elapsed;
    if elapsed < min || elapsed > max {
        problems.push(format!(
            "elapsed {} ms, expected {}..={} ms",
            elapsed.as_millis(),
            min.as_millis(),
            max.as_millis()
        ));
    }
    if got.status != expect.status {
        problems.push(format!(
            "status: expected {}, got {} ({})",
            expect.status,
            got.status,
            got.json.as_ref().map_or_else(String::new, Value::to_string)
        ));
        return;
    }
    if let Some((kind, code)) = expect.error {
        let error = got.error().cloned().unwrap_or(Value::Null);
        if error["type"] != kind || error["code"] != json!(code) {
            problems.push(format!(
                "error: expected type {kind} code {code:?}, got {error}"
            ));
        }
    }
    if got.retry_after.as_deref() != expect.retry_after {
        problems.push(format!(
            "retry-after: expected {:?}, got {:?}",
            expect.retry_after, got.retry_after
        ));
    }
    if got.route.as_deref() != expect.route {
        problems.push(format!(
            "x-gateway-route: expected {:?}, got {:?}",
            expect.route, got.route
        ));
    }
    if let Some(content) = expect.content
        && got.content().as_deref() != Some(content)
    {
        problems.push(format!(
            "content: expected {content:?}, got {:?}",
            got.content()
        ));
    }
    match (&got.stream, case.stream && got.status == 200) {
        (Some(stream), true) => {
            if !stream.done_last {
                problems.push("the stream did not end with data: [DONE]".into());
            }
            let error = stream.error.as_ref().map(|e| {
                (
                    e["type"].as_str().unwrap_or(""),
                    e["code"].as_str().unwrap_or(""),
                )
            });
            if error != expect.sse_error {
                problems.push(format!(
                    "stream error event: expected {:?}, got {:?}",
                    expect.sse_error, stream.error
                ));
            }
        }
        (None, true) => problems.push("expected an event stream".into()),
        (Some(_), false) => problems.push("unexpected event stream".into()),
        (None, false) => {}
    }
}

fn print_report(rows: &[Row]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4);
    let expected_w = rows
        .iter()
        .map(|r| r.expected.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let outcome_w = rows
        .iter()
        .map(|r| r.outcome.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nfault-injection report (G = calls to the Gemini primary, H = calls to the Hugging Face fallback)\n"
    );
    let _ = writeln!(
        out,
        "{:<width$}  {:<expected_w$}  {:<outcome_w$}  {:<8}  {:>8}  pass",
        "case", "expected", "outcome", "attempts", "elapsed"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<width$}  {:<expected_w$}  {:<outcome_w$}  {:<8}  {:>6}ms  {}",
            r.name,
            r.expected,
            r.outcome,
            r.calls,
            r.elapsed.as_millis(),
            if r.problems.is_empty() { "ok" } else { "FAIL" }
        );
    }
    for r in rows {
        for note in &r.notes {
            let _ = writeln!(out, "note [{}]: {note}", r.name);
        }
    }
    for r in rows.iter().filter(|r| !r.problems.is_empty()) {
        let _ = writeln!(out, "\nFAIL {}:", r.name);
        for p in &r.problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    let failed = rows.iter().filter(|r| !r.problems.is_empty()).count();
    let _ = writeln!(
        out,
        "\n{} faults tried: {} passed, {failed} failed",
        rows.len(),
        rows.len() - failed
    );
    println!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_has_a_known_outcome_and_leaks_nothing() {
    let store = open_store("sqlite::memory:").await;
    // A first request warms up what is created once per process (pools, lazy statics), so that
    // the task counts of the cases compare like with like.
    let warm_up = Case::new(
        "warm-up",
        vec![gemini_answer()],
        Expect::served(GEMINI, GEMINI_TEXT).attempts(&[(GEMINI, "ok")]),
    );
    let _ = run(&warm_up, &store).await;

    let mut rows = Vec::new();
    for case in cases() {
        rows.push(run(&case, &store).await);
    }
    print_report(&rows);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| r.name)
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
}
