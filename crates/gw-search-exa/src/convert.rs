//! Pure mapping between the gateway's search types and Exa's wire format: no IO.
//!
//! - What Exa cannot do with a request is refused here, before any call: an option it lacks is
//!   [`ErrorKind::Unsupported`] naming it (a fallback route may serve it), a value it can never
//!   take is [`ErrorKind::InvalidRequest`], an endpoint it does not have is
//!   [`ErrorKind::NotFound`].
//! - Every search asks for `contents.highlights`, so that each result has a snippet. Since
//!   Exa's pricing change of 2026-03-03, text and highlights of the first 10 results are included
//!   in the price of a search (<https://exa.ai/docs/changelog/pricing-update>); recordings of July
//!   2026 show no contents charge for either (`costDollars: {"search": {"neural": 0.007},
//!   "total": 0.007}` with `highlights: true` and with `text`), while the February 2026 recording
//!   billed `contents.text` at $0.001 a result. Highlights are short, query-relevant excerpts,
//!   where the text is the whole page.
//! - `/answer` is always asked for its citations' text (`text: true`): the only excerpt a citation
//!   can carry. Its recorded price with `text: true` is the plain $0.005 of an answer.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use gateway_core::{
    Billing, Charge, Cost, Error, ErrorKind, PriceUnit, Result, SearchRequest, SearchResponse,
    SearchResult, TimeRange,
};
use serde_json::{Map, Value};

use crate::PROVIDER;
use crate::wire;

/// Exa's endpoints the gateway serves, by the model ids that name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /search`: results, with highlights and (when asked) page text.
    Search,
    /// `POST /answer`: an answer, with its citations as results.
    Answer,
}

/// The model ids of [`Endpoint`], as errors list them.
pub(crate) const ENDPOINTS: [&str; 2] = ["search", "answer"];

impl Endpoint {
    /// The endpoint `model` names.
    pub(crate) fn of(model: &str) -> Result<Self> {
        match model {
            "search" => Ok(Self::Search),
            "answer" => Ok(Self::Answer),
            other => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "Exa has no endpoint `{other}`; its endpoints are: {}",
                    ENDPOINTS.join(", ")
                ),
            )
            .with_provider(PROVIDER)
            .with_param("model")),
        }
    }

    /// The path it is POSTed to.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Search => "/search",
            Self::Answer => "/answer",
        }
    }
}

/// The most results a search takes (`numResults`: `minimum: 1`, `maximum: 100`, default 10:
/// <https://github.com/exa-labs/openapi-spec/blob/57d917823aa0cec02385104dc3bb795cdf5d7da8/exa-openapi-spec.yaml#L954-L960>).
pub(crate) const MAX_RESULTS: u32 = 100;

/// How many results a search returns when `numResults` is not sent, and how many its base price
/// includes (<https://exa.ai/docs/reference/pricing>).
pub(crate) const INCLUDED_RESULTS: u64 = 10;

/// The search type Exa runs when `type` is not sent.
pub(crate) const DEFAULT_TYPE: &str = "auto";

/// How many characters of a page's text make a snippet when it has no highlights.
pub(crate) const SNIPPET_CHARS: usize = 500;

/// The documented fields of `POST /search` a caller may set through `options`, as given: the
/// official SDK's `SEARCH_OPTIONS_TYPES`
/// (<https://github.com/exa-labs/exa-py/blob/7537a5ebc4175143e3a582eb0f9239d3a1bbf311/exa_py/api.py#L314-L354>,
/// camelCased as it sends them) less those a core field sets and `stream`.
const SEARCH_OPTIONS: [&str; 14] = [
    "type",
    "category",
    "includeText",
    "excludeText",
    "startPublishedDate",
    "endPublishedDate",
    "startCrawlDate",
    "endCrawlDate",
    "moderation",
    "flags",
    "contents",
    "additionalQueries",
    "systemPrompt",
    "outputSchema",
];

/// Fields of `POST /search` a core field of the request sets: (Exa's name, the core field).
const SEARCH_CORE: [(&str, &str); 5] = [
    ("query", "query"),
    ("numResults", "max_results"),
    ("includeDomains", "include_domains"),
    ("excludeDomains", "exclude_domains"),
    ("userLocation", "country"),
];

/// The documented fields of `POST /answer` a caller may set through `options`
/// (<https://exa.ai/docs/reference/answer>; the SDK's `answer()`:
/// <https://github.com/exa-labs/exa-py/blob/7537a5ebc4175143e3a582eb0f9239d3a1bbf311/exa_py/api.py#L2544-L2554>).
const ANSWER_OPTIONS: [&str; 3] = ["model", "systemPrompt", "outputSchema"];

/// Fields of `POST /answer` a core field of the request sets.
const ANSWER_CORE: [(&str, &str); 3] = [
    ("query", "query"),
    ("text", "include_content"),
    ("userLocation", "country"),
];

/// The keys of `contents` (the SDK's `CONTENTS_OPTIONS_TYPES` and
/// `CONTENTS_ENDPOINT_OPTIONS_TYPES`, less `urls`:
/// <https://github.com/exa-labs/exa-py/blob/7537a5ebc4175143e3a582eb0f9239d3a1bbf311/exa_py/api.py#L376-L395>).
const CONTENTS_KEYS: [&str; 13] = [
    "text",
    "highlights",
    "summary",
    "context",
    "metadata",
    "livecrawl",
    "livecrawlTimeout",
    "maxAgeHours",
    "filterEmptyResults",
    "flags",
    "subpages",
    "subpageTarget",
    "extras",
];

fn invalid(param: impl Into<String>, message: impl Into<String>) -> Error {
    Error::invalid_request(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Error {
    Error::unsupported(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

/// Refuses, before any IO, what Exa cannot do with `req`; the endpoint it goes to otherwise.
pub(crate) fn check(req: &SearchRequest) -> Result<Endpoint> {
    let endpoint = Endpoint::of(&req.model)?;
    match endpoint {
        Endpoint::Search => check_search(req)?,
        Endpoint::Answer => check_answer(req)?,
    }
    if let Some(country) = &req.country {
        user_location(country)?;
    }
    Ok(endpoint)
}

fn check_search(req: &SearchRequest) -> Result<()> {
    check_options(&req.options, &SEARCH_OPTIONS, &SEARCH_CORE, "search")?;
    if req.include_answer {
        return Err(unsupported(
            "include_answer",
            "Exa's search endpoint gives no answer: the model `exa/answer` does",
        ));
    }
    if req.language.is_some() {
        return Err(unsupported(
            "language",
            "Exa's search has no language filter",
        ));
    }
    match req.max_results {
        Some(0) => return Err(invalid("max_results", "`max_results` must be at least 1")),
        Some(n) if n > MAX_RESULTS => {
            return Err(unsupported(
                "max_results",
                format!("Exa returns at most {MAX_RESULTS} results, not {n}"),
            ));
        }
        _ => {}
    }
    if !req.include_domains.is_empty() && !req.exclude_domains.is_empty() {
        return Err(invalid(
            "exclude_domains",
            "Exa takes `include_domains` or `exclude_domains`, not both",
        ));
    }
    if req.time_range.is_some() && req.options.contains_key("startPublishedDate") {
        return Err(invalid(
            "options.startPublishedDate",
            "`time_range` sets Exa's `startPublishedDate`: give one or the other",
        ));
    }
    if let Some(range) = req.time_range {
        // Any date will do: this only refuses a range Exa has no window for.
        Date::from_days(0).minus(range)?;
    }
    if let Some(contents) = req.options.get("contents") {
        let Value::Object(contents) = contents else {
            return Err(invalid(
                "options.contents",
                "`options.contents` must be an object (Exa's `ContentsOptions`)",
            ));
        };
        if let Some(key) = contents
            .keys()
            .find(|k| !CONTENTS_KEYS.contains(&k.as_str()))
        {
            return Err(invalid(
                format!("options.contents.{key}"),
                format!(
                    "`{key}` is not a field of Exa's `contents` (its fields: {})",
                    CONTENTS_KEYS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn check_answer(req: &SearchRequest) -> Result<()> {
    check_options(&req.options, &ANSWER_OPTIONS, &ANSWER_CORE, "answer")?;
    let why = "Exa's answer endpoint chooses its own sources";
    if req.max_results.is_some() {
        return Err(unsupported(
            "max_results",
            format!("{why}: it takes no result count"),
        ));
    }
    if req.time_range.is_some() {
        return Err(unsupported(
            "time_range",
            format!("{why}: it takes no date filter"),
        ));
    }
    if !req.include_domains.is_empty() {
        return Err(unsupported(
            "include_domains",
            format!("{why}: it takes no domain filter"),
        ));
    }
    if !req.exclude_domains.is_empty() {
        return Err(unsupported(
            "exclude_domains",
            format!("{why}: it takes no domain filter"),
        ));
    }
    if req.language.is_some() {
        return Err(unsupported(
            "language",
            "Exa's answer endpoint has no language setting",
        ));
    }
    Ok(())
}

/// Checks each option's name: passed through when it is one of `allowed`, refused otherwise,
/// pointing to the core field when one sets it.
fn check_options(
    options: &Map<String, Value>,
    allowed: &[&str],
    core: &[(&str, &str)],
    endpoint: &str,
) -> Result<()> {
    for name in options.keys() {
        let param = format!("options.{name}");
        if allowed.contains(&name.as_str()) {
            continue;
        }
        if let Some((_, field)) = core.iter().find(|(exa, _)| exa == name) {
            return Err(invalid(
                param,
                format!("Exa's `{name}` is set by the request's `{field}`: give `{field}` instead"),
            ));
        }
        if name == "stream" {
            return Err(unsupported(
                param,
                "the gateway does not stream Exa's answers",
            ));
        }
        let camel = camel_case(name);
        let hint = if camel != *name
            && (allowed.contains(&camel.as_str()) || core.iter().any(|(exa, _)| *exa == camel))
        {
            format!(" (Exa's fields are camelCase: `{camel}`)")
        } else {
            String::new()
        };
        return Err(invalid(
            param,
            format!(
                "`{name}` is not a field of Exa's {endpoint} endpoint{hint}; the options it takes: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// `num_results` -> `numResults`, as the SDK converts its keyword arguments.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Exa's `userLocation`: a two-letter ISO 3166-1 code, sent in upper case as Exa's docs write it
/// (`US`).
fn user_location(country: &str) -> Result<String> {
    let code = country.trim();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(invalid(
            "country",
            format!("`country` must be a two-letter ISO 3166-1 code such as `US`, not `{country}`"),
        ))
    }
}

/// The body of `POST /search` for `req`, with `time_range` counted back from `today`.
pub(crate) fn search_request(req: &SearchRequest, today: Date) -> Result<wire::SearchRequest> {
    check_search(req)?;
    let mut options = req.options.clone();
    let mut contents = wire::Contents::default();
    if let Some(Value::Object(given)) = options.remove("contents") {
        contents.rest = given;
    }
    // The caller's own `highlights` and `text` settings win over the gateway's.
    contents.highlights = Some(
        contents
            .rest
            .remove("highlights")
            .unwrap_or(Value::Bool(true)),
    );
    contents.text = contents
        .rest
        .remove("text")
        .or_else(|| req.include_content.then_some(Value::Bool(true)));
    Ok(wire::SearchRequest {
        query: req.query.clone(),
        num_results: req.max_results,
        include_domains: req.include_domains.clone(),
        exclude_domains: req.exclude_domains.clone(),
        start_published_date: req
            .time_range
            .map(|range| today.minus(range).map(|d| d.to_string()))
            .transpose()?,
        user_location: req.country.as_deref().map(user_location).transpose()?,
        contents,
        options,
    })
}

/// The body of `POST /answer` for `req`.
pub(crate) fn answer_request(req: &SearchRequest) -> Result<wire::AnswerRequest> {
    check_answer(req)?;
    Ok(wire::AnswerRequest {
        query: req.query.clone(),
        text: true,
        user_location: req.country.as_deref().map(user_location).transpose()?,
        options: req.options.clone(),
    })
}

/// The search type `options` asks for (`type`), which its price depends on.
fn search_type(options: &Map<String, Value>) -> &str {
    options
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_TYPE)
}

/// Whether `options` asks for Exa's page summaries, which are billed per result on top of the
/// search ($1 per 1k, <https://exa.ai/docs/changelog/pricing-update>).
fn wants_summaries(options: &Map<String, Value>) -> bool {
    options
        .get("contents")
        .and_then(|c| c.get("summary"))
        .is_some_and(|s| !matches!(s, Value::Null | Value::Bool(false)))
}

/// What `req` will bill, for the plan check before the call.
pub(crate) fn estimate(req: &SearchRequest) -> Billing {
    match Endpoint::of(&req.model) {
        Ok(Endpoint::Answer) => answer_billing(),
        _ => search_billing(
            &req.options,
            req.max_results.map_or(INCLUDED_RESULTS, u64::from),
        ),
    }
}

/// A search of `options` that returns `results` results: one search of its type, each result
/// beyond the 10 included, and each summary when asked for. Units: the search, and the pages
/// Exa bills content for (summaries; text and highlights are included).
fn search_billing(options: &Map<String, Value>, results: u64) -> Billing {
    let depth = search_type(options);
    let mut units = 1;
    let mut charges = vec![Charge::new(PriceUnit::Search, 1).depth(depth)];
    let extra = results.saturating_sub(INCLUDED_RESULTS);
    if extra > 0 {
        charges.push(Charge::new(PriceUnit::SearchResult, extra).depth(depth));
    }
    if wants_summaries(options) && results > 0 {
        units += results;
        charges.push(Charge::new(PriceUnit::Page, results));
    }
    Billing::new(units, charges)
}

/// An answer: one request.
fn answer_billing() -> Billing {
    Billing::new(1, vec![Charge::new(PriceUnit::Request, 1)])
}

/// Exa's answer to `req` on `/search`.
pub(crate) fn search_response(req: &SearchRequest, resp: wire::SearchResponse) -> SearchResponse {
    let results: Vec<SearchResult> = resp
        .results
        .unwrap_or_default()
        .into_iter()
        .map(|item| result(item, req.include_content))
        .collect();
    let mut billing = search_billing(&req.options, results.len() as u64);
    billing.reported_cost = reported_cost(resp.cost_dollars.as_ref());
    let mut out = SearchResponse::new(&req.model, &req.query, results, billing);
    out.answer = resp.output.and_then(|o| o.content).and_then(render);
    out
}

/// Exa's answer to `req` on `/answer`: the answer, and its citations as results.
pub(crate) fn answer_response(req: &SearchRequest, resp: wire::AnswerResponse) -> SearchResponse {
    let results = resp
        .citations
        .unwrap_or_default()
        .into_iter()
        .map(|item| result(item, req.include_content))
        .collect();
    let mut billing = answer_billing();
    billing.reported_cost = reported_cost(resp.cost_dollars.as_ref());
    let mut out = SearchResponse::new(&req.model, &req.query, results, billing);
    out.answer = resp.answer.and_then(render);
    out
}

/// An answer as text: a string as it is, an object (`outputSchema`) as JSON.
fn render(answer: Value) -> Option<String> {
    match answer {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// One result: the snippet is the highlights, else the start of the text, else the summary.
fn result(item: wire::ResultItem, include_content: bool) -> SearchResult {
    let url = item.url.or(item.id).unwrap_or_default();
    let snippet = match &item.highlights {
        Some(h) if h.iter().any(|s| !s.trim().is_empty()) => h
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n"),
        _ => match item.text.as_deref().map(text_start) {
            Some(start) if !start.is_empty() => start,
            _ => item.summary.clone().unwrap_or_default(),
        },
    };
    let mut out = SearchResult::new(item.title.unwrap_or_default(), url, snippet);
    out.score = item.score;
    out.published_date = item.published_date;
    if include_content {
        out.content = item.text;
    }
    out
}

/// The first [`SNIPPET_CHARS`] characters of `text`, its runs of white space made one space,
/// ending in `…` when cut.
fn text_start(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        out.push_str(word);
        chars += word.chars().count();
        if chars >= SNIPPET_CHARS {
            break;
        }
    }
    if chars > SNIPPET_CHARS {
        if let Some((cut, _)) = out.char_indices().nth(SNIPPET_CHARS) {
            out.truncate(cut);
        }
        out.truncate(out.trim_end().len());
        out.push('…');
    }
    out
}

/// `costDollars.total` as an exact [`Cost`]: the shortest decimal that reads back as the same
/// float (`0.007`, not `0.00700000000000000015`), rounded half up to the nano-dollar. `None` when
/// absent, negative or not finite.
pub(crate) fn reported_cost(cost: Option<&wire::CostDollars>) -> Option<Cost> {
    let total = cost?.total?;
    if !total.is_finite() || total < 0.0 {
        return None;
    }
    // `Display` of an f64 is its shortest round-trip decimal, never in exponent notation.
    let text = total.to_string();
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() <= 9 {
        return text.parse().ok();
    }
    let cost: Cost = format!("{whole}.{}", &frac[..9]).parse().ok()?;
    let up = u64::from(frac.as_bytes()[9] >= b'5');
    Some(Cost::from_nanos(cost.nanos().saturating_add(up)))
}

/// A calendar date (proleptic Gregorian, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    year: i64,
    month: u32,
    day: u32,
}

impl Date {
    /// Today, in UTC.
    pub(crate) fn today() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_days((secs / 86_400) as i64)
    }

    /// `year-month-day`, when it is a date.
    #[cfg(test)]
    pub(crate) fn new(year: i64, month: u32, day: u32) -> Option<Self> {
        ((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day))
            .then_some(Self { year, month, day })
    }

    /// The date `days` days after 1970-01-01 (H. Hinnant's `civil_from_days`,
    /// <https://howardhinnant.github.io/date_algorithms.html#civil_from_days>).
    pub(crate) fn from_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self { year, month, day }
    }

    /// Days since 1970-01-01 (`days_from_civil`, same source).
    fn to_days(self) -> i64 {
        let year = self.year - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let month = i64::from(self.month);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The start of the window `range` ending on this date: a day or a week earlier, or the same
    /// day of the previous month or year (the last day of that month when it is shorter).
    pub(crate) fn minus(self, range: TimeRange) -> Result<Self> {
        let (year, month) = match range {
            TimeRange::Day => return Ok(Self::from_days(self.to_days() - 1)),
            TimeRange::Week => return Ok(Self::from_days(self.to_days() - 7)),
            TimeRange::Month if self.month == 1 => (self.year - 1, 12),
            TimeRange::Month => (self.year, self.month - 1),
            TimeRange::Year => (self.year - 1, self.month),
            other => {
                return Err(unsupported(
                    "time_range",
                    format!("the time range {other:?} has no Exa equivalent"),
                ));
            }
        };
        Ok(Self {
            year,
            month,
            day: self.day.min(days_in_month(year, month)),
        })
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD`.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests;
