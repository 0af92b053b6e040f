//! Pure mapping between the gateway's search types and Serper's JSON: no IO here.

use gateway_core::{
    Billing, Charge, Error, ErrorKind, PriceUnit, Result, SearchRequest, SearchResponse,
    SearchResult, TimeRange,
};
use serde_json::{Map, Number, Value};

use crate::{ENDPOINTS, PROVIDER, wire};

/// The most results one call returns (`num`, 1-100 in the transcribed OpenAPI schema,
/// <https://github.com/api-evangelist/serper/blob/0847b086c6743bd84bf11ced77141c12df8ceb4d/openapi/serper-google-search-api-openapi.yml>).
pub(crate) const MAX_RESULTS: u32 = 100;

/// Results per page when `num` is not sent, which the base price of one credit covers.
const DEFAULT_RESULTS: u32 = 10;

/// Serper's request fields that `options` may set, with what each must be. The documented
/// fields are `q`, `num`, `gl`, `hl`, `tbs`, `page`, `location` and `autocorrect` (LiteLLM's
/// `SerperSearchRequest`,
/// <https://github.com/BerriAI/litellm/blob/84129010b38cac1f4c97e25beef31edd2b6b16bc/litellm/llms/serper/search/transformation.py>;
/// the OpenAPI transcription above has all but `location`); the first four are core fields.
const OPTIONS: [(&str, &str); 4] = [
    ("page", "a page number from 1"),
    (
        "location",
        "a place name such as \"Austin, Texas, United States\"",
    ),
    ("autocorrect", "true or false"),
    ("tbs", "a Google time filter such as \"qdr:h\""),
];

/// Serper fields the gateway's own request fields set: an option of that name is refused.
const CORE_FIELDS: [(&str, &str); 4] = [
    ("q", "query"),
    ("num", "max_results"),
    ("gl", "country"),
    ("hl", "language"),
];

/// A Serper endpoint: which path it is posted to and which list of the answer holds its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /search`, results in `organic`.
    Search,
    /// `POST /news`, results in `news`.
    News,
    /// `POST /images`, results in `images`.
    Images,
}

impl Endpoint {
    /// The endpoint `model` names; any other is [`ErrorKind::NotFound`], listing those there are.
    pub(crate) fn parse(model: &str) -> Result<Self> {
        match model {
            "search" => Ok(Self::Search),
            "news" => Ok(Self::News),
            "images" => Ok(Self::Images),
            other => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "Serper has no search endpoint `{other}`; it has {}",
                    ENDPOINTS.join(", ")
                ),
            )
            .with_provider(PROVIDER)
            .with_param("model")),
        }
    }

    /// The path the body is posted to.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Search => "/search",
            Self::News => "/news",
            Self::Images => "/images",
        }
    }
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> Error {
    Error::invalid_request(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

fn unsupported(param: &str, message: impl Into<String>) -> Error {
    Error::unsupported(message)
        .with_provider(PROVIDER)
        .with_param(param)
}

/// The endpoint and the body of the call for `req`, or why Serper cannot serve it: what it
/// lacks is [`ErrorKind::Unsupported`] naming the field (`exclude_domains`, `include_content`,
/// a `max_results` above 100), a value it can never take is [`ErrorKind::InvalidRequest`]
/// naming the field (`options.<name>` for options), an unknown endpoint is
/// [`ErrorKind::NotFound`].
pub(crate) fn search_request(req: &SearchRequest) -> Result<(Endpoint, wire::SearchRequest)> {
    let endpoint = Endpoint::parse(&req.model)?;
    let query = req.query.trim();
    if query.is_empty() {
        return Err(invalid("query", "`query` must not be empty"));
    }
    let num = match req.max_results {
        Some(0) => return Err(invalid("max_results", "`max_results` must be at least 1")),
        Some(n) if n > MAX_RESULTS => {
            return Err(unsupported(
                "max_results",
                format!(
                    "`max_results` is {n}, but Serper returns at most {MAX_RESULTS} results per call (`num`)"
                ),
            ));
        }
        n => n,
    };
    if !req.exclude_domains.is_empty() {
        // Serper has no field for it, and the `-site:` operator is not verified to work there
        // (LiteLLM maps only the include filter).
        return Err(unsupported(
            "exclude_domains",
            "Serper cannot exclude domains (`exclude_domains`): it has no request field for it",
        ));
    }
    if req.include_content {
        return Err(unsupported(
            "include_content",
            "Serper does not return page content (`include_content`)",
        ));
    }
    let q = with_domains(query, &req.include_domains)?;
    let gl = req.country.as_deref().map(country).transpose()?;
    let hl = req.language.as_deref().map(language).transpose()?;
    let tbs = req.time_range.map(time_filter).transpose()?;
    let options = options(&req.options, tbs.is_some())?;
    Ok((
        endpoint,
        wire::SearchRequest {
            q,
            num,
            gl,
            hl,
            tbs,
            options,
        },
    ))
}

/// `query` limited to `domains` the way LiteLLM does it for Serper: `(query) (site:a OR site:b)`
/// (<https://github.com/BerriAI/litellm/blob/84129010b38cac1f4c97e25beef31edd2b6b16bc/litellm/llms/serper/search/transformation.py>).
fn with_domains(query: &str, domains: &[String]) -> Result<String> {
    if domains.is_empty() {
        return Ok(query.to_owned());
    }
    let mut clauses = Vec::with_capacity(domains.len());
    for (i, domain) in domains.iter().enumerate() {
        let domain = domain.trim();
        // A space or parenthesis would change the query rather than name a site.
        if domain.is_empty() || domain.contains(|c: char| c.is_whitespace() || "()\"".contains(c)) {
            return Err(invalid(
                format!("include_domains[{i}]"),
                format!("`include_domains[{i}]` is not a domain: `{domain}`"),
            ));
        }
        clauses.push(format!("site:{domain}"));
    }
    Ok(format!("({query}) ({})", clauses.join(" OR ")))
}

/// Google's time filter for `range` (`qdr:d|w|m|y`, as LiteLLM's Serper docs and the transcribed
/// schema give it; `qdr:y` appears only in the latter).
fn time_filter(range: TimeRange) -> Result<String> {
    let tbs = match range {
        TimeRange::Day => "qdr:d",
        TimeRange::Week => "qdr:w",
        TimeRange::Month => "qdr:m",
        TimeRange::Year => "qdr:y",
        other => {
            return Err(unsupported(
                "time_range",
                format!("Serper has no time filter for `{other:?}`"),
            ));
        }
    };
    Ok(tbs.to_owned())
}

/// An ISO 3166-1 alpha-2 code as Google's `gl` takes it: lower case.
fn country(code: &str) -> Result<String> {
    let code = code.trim();
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(invalid(
            "country",
            format!("`country` must be an ISO 3166-1 alpha-2 code such as `us`, not `{code}`"),
        ));
    }
    Ok(code.to_ascii_lowercase())
}

/// A language code as Google's `hl` takes it (`en`, `pt-br`), passed as given.
fn language(code: &str) -> Result<String> {
    let code = code.trim();
    let ok = !code.is_empty()
        && code.len() <= 16
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(invalid(
            "language",
            format!("`language` must be a language code such as `en`, not `{code}`"),
        ));
    }
    Ok(code.to_owned())
}

/// The options checked against Serper's request fields, to be sent as given.
fn options(given: &Map<String, Value>, has_time_range: bool) -> Result<Map<String, Value>> {
    for (name, value) in given {
        let param = format!("options.{name}");
        if let Some((_, core)) = CORE_FIELDS.iter().find(|(field, _)| field == name) {
            return Err(invalid(
                param,
                format!("`options.{name}` is the gateway's `{core}` field: set `{core}` instead"),
            ));
        }
        let Some((_, wanted)) = OPTIONS.iter().find(|(field, _)| field == name) else {
            let known: Vec<&str> = OPTIONS.iter().map(|(field, _)| *field).collect();
            return Err(invalid(
                param,
                format!(
                    "`options.{name}` is not a request field of Serper (`{PROVIDER}`); it takes {}",
                    known.join(", ")
                ),
            ));
        };
        let ok = match name.as_str() {
            "page" => value.as_u64().is_some_and(|p| p >= 1),
            "autocorrect" => value.is_boolean(),
            _ => value.as_str().is_some_and(|s| !s.trim().is_empty()),
        };
        if !ok {
            return Err(invalid(
                param,
                format!("`options.{name}` must be {wanted}, not {value}"),
            ));
        }
        if name == "tbs" && has_time_range {
            return Err(invalid(
                param,
                "`options.tbs` and `time_range` both set Google's time filter: set one",
            ));
        }
    }
    Ok(given.clone())
}

/// The credits `num` results are expected to use: 1 for a page of up to 10, 2 above that.
///
/// Serper's pricing, as transcribed by API Evangelist, states that 100 results per page double
/// the credits of the default 10
/// (<https://github.com/api-evangelist/serper/blob/0847b086c6743bd84bf11ced77141c12df8ceb4d/rate-limits/serper-rate-limits.yml>);
/// what 11 to 99 results cost is not stated, so the estimate takes the higher figure for them.
/// The answer's own `credits` settles the call either way.
fn expected_credits(num: Option<u32>) -> u64 {
    if num.unwrap_or(DEFAULT_RESULTS) > DEFAULT_RESULTS {
        2
    } else {
        1
    }
}

/// `credits` Serper units, priced as Serper credits.
fn credits_billing(credits: u64) -> Billing {
    Billing::new(credits, vec![Charge::new(PriceUnit::Credit, credits)])
}

/// What `req` is expected to bill, for the plan check before the call.
pub(crate) fn estimate(req: &SearchRequest) -> Billing {
    credits_billing(expected_credits(req.max_results))
}

/// The answer's `credits` as a count (a fraction, never seen, rounds up).
fn reported_credits(credits: &Number) -> Option<u64> {
    credits.as_u64().or_else(|| {
        credits
            .as_f64()
            .filter(|c| c.is_finite() && *c >= 0.0)
            .map(|c| c.ceil() as u64)
    })
}

/// The gateway's answer for `req` from Serper's answer `resp` to `endpoint`.
///
/// Results come from the endpoint's list (`organic`, `news` or `images`; a missing list is no
/// results), at most `max_results` of them; items without a link are dropped. The answer box is
/// read only when `include_answer` asks for it. The call bills the answer's `credits`, or, in
/// an answer without them (Serper's answers before 2025), what [`estimate`] expected.
pub(crate) fn search_response(
    resp: wire::SearchResponse,
    req: &SearchRequest,
    endpoint: Endpoint,
) -> SearchResponse {
    let mut results: Vec<SearchResult> = match endpoint {
        Endpoint::Search => resp.organic.into_iter().map(organic).collect(),
        Endpoint::News => resp.news.into_iter().map(news).collect(),
        Endpoint::Images => resp.images.into_iter().map(image).collect(),
    };
    let before = results.len();
    results.retain(|r| !r.url.is_empty());
    if results.len() < before {
        tracing::debug!(
            dropped = before - results.len(),
            "Serper results without a link dropped"
        );
    }
    if let Some(max) = req.max_results {
        results.truncate(max as usize);
    }
    let billing = match resp.credits.as_ref().and_then(reported_credits) {
        Some(credits) => credits_billing(credits),
        None => estimate(req),
    };
    let mut answer = SearchResponse::new(req.model.clone(), req.query.clone(), results, billing);
    if req.include_answer {
        answer.answer = resp.answer_box.and_then(answer_text);
    }
    answer
}

/// The answer box's `answer`, else its `snippet`.
fn answer_text(answer_box: wire::AnswerBox) -> Option<String> {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    non_empty(answer_box.answer).or_else(|| non_empty(answer_box.snippet))
}

fn organic(item: wire::Organic) -> SearchResult {
    let mut result = SearchResult::new(item.title, item.link, item.snippet);
    result.published_date = item.date;
    result
}

/// A news article; its publisher (`source`) stands in for a missing snippet.
fn news(item: wire::News) -> SearchResult {
    let snippet = match item.snippet {
        s if s.trim().is_empty() => item.source.unwrap_or_default(),
        s => s,
    };
    let mut result = SearchResult::new(item.title, item.link, snippet);
    result.published_date = item.date;
    result
}

/// An image, as the page it is on (`link`), the image's own URL (`imageUrl`) in `image`:
/// Serper gives an image no text of its own, so the snippet is the site's name (`source`), else
/// its host name (`domain`).
fn image(item: wire::Image) -> SearchResult {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let snippet = non_empty(item.source)
        .or_else(|| non_empty(item.domain))
        .unwrap_or_default();
    let mut result = SearchResult::new(item.title, item.link, snippet);
    result.image = non_empty(item.image_url);
    result
}

#[cfg(test)]
mod tests;
