//! Subscription plans: what each plan allows and how much of it per billing period.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use gateway_core::{Admission, Cost, Error, ErrorKind, Modality, Result};
use serde::Deserialize;

use crate::counters::{Counter, counts_tokens};
use crate::time;

/// The plans file that ships with the crate (`plans.toml`): Free, Basic, Pro and Enterprise.
pub const BUILTIN_PLANS: &str = include_str!("../plans.toml");

/// A billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The UTC calendar month; period keys look like `2026-11`.
    Month,
}

impl Period {
    /// The name used in plans files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
        }
    }

    /// The key of the period that contains `t` (`2026-11`).
    pub fn key(self, t: SystemTime) -> String {
        match self {
            Self::Month => time::month_key(t),
        }
    }
}

/// The limits of one modality in a plan, per period; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Requests.
    pub requests: Option<u64>,
    /// Tokens, prompt and output (text only).
    pub tokens: Option<u64>,
    /// Media units: images, seconds of video or audio, characters of speech, search credits,
    /// training steps.
    pub units: Option<u64>,
}

/// One subscription plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Its name (`free`).
    pub name: String,
    /// The billing period the limits apply to.
    pub period: Period,
    /// The spending cap per period; `None` is no cap.
    pub cost_cap: Option<Cost>,
    /// Patterns over `<provider>/<model>` (`*` matches any run of characters).
    pub allow: Vec<String>,
    /// Whether models without a price in the pricing catalog may be used.
    pub allow_unpriced: bool,
    /// The output budget the router reserves for a chat request that sets no `max_tokens`.
    pub default_max_tokens: Option<u64>,
    /// The included modalities and their limits; a modality missing here is not included.
    pub modalities: BTreeMap<Modality, Limits>,
}

impl Plan {
    /// Whether the plan includes `modality`.
    pub fn includes(&self, modality: Modality) -> bool {
        self.modalities.contains_key(&modality)
    }

    /// Whether `<provider>/<model>` matches one of the plan's `allow` patterns.
    pub fn allows_model(&self, provider: &str, model: &str) -> bool {
        let (p, m) = (provider.as_bytes(), model.as_bytes());
        // The name is `p/m`, read in place: checked before every request, so no allocation.
        let name = |i: usize| match i.cmp(&p.len()) {
            std::cmp::Ordering::Less => p[i],
            std::cmp::Ordering::Equal => b'/',
            std::cmp::Ordering::Greater => m[i - p.len() - 1],
        };
        let len = p.len() + 1 + m.len();
        self.allow
            .iter()
            .any(|pattern| glob_bytes(pattern.as_bytes(), len, name))
    }

    /// The limit on `counter` per period: `Some(0)` for a counter of a modality the plan does
    /// not include, `None` for unlimited.
    pub fn limit(&self, counter: Counter) -> Option<u64> {
        let limits = |m: Modality| self.modalities.get(&m);
        match counter {
            Counter::CostUsd => self.cost_cap.map(Cost::nanos),
            Counter::Requests(m) => limits(m).map_or(Some(0), |l| l.requests),
            Counter::Volume(m) if counts_tokens(m) => limits(m).map_or(Some(0), |l| l.tokens),
            Counter::Volume(m) => limits(m).map_or(Some(0), |l| l.units),
        }
    }

    /// The key of the current billing period (`2026-11`).
    pub fn current_period(&self) -> String {
        self.period.key(SystemTime::now())
    }

    /// The checks that need no database: is the modality included, the model allowed, and,
    /// when the model has no price, are unpriced models allowed.
    ///
    /// Fails with [`ErrorKind::PermissionDenied`] naming what the plan does not allow.
    pub fn check(&self, admission: &Admission) -> Result<()> {
        let route = &admission.route;
        if !self.includes(admission.modality) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "plan `{}` does not include {} (requested with model `{route}`)",
                    self.name, admission.modality
                ),
            ));
        }
        if !self.allows_model(route.provider, &route.model) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("plan `{}` does not allow model `{route}`", self.name),
            ));
        }
        if !admission.priced && !self.allow_unpriced {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "model `{route}` has no price in the pricing catalog, and plan `{}` does not \
                     allow unpriced models",
                    self.name
                ),
            ));
        }
        Ok(())
    }
}

/// Every plan of a plans file, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    plans: BTreeMap<String, Plan>,
}

impl Default for Plans {
    /// The built-in plans ([`BUILTIN_PLANS`]).
    fn default() -> Self {
        Self::parse("plans.toml", BUILTIN_PLANS).expect("the built-in plans.toml is valid")
    }
}

impl Plans {
    /// The built-in plans ([`BUILTIN_PLANS`]).
    pub fn builtin() -> Self {
        Self::default()
    }

    /// Reads and parses the plans file at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{shown}: cannot read the plans file: {e}"),
            )
        })?;
        Self::parse(&shown, &text)
    }

    /// Parses a plans file; `file` names it in errors (`plans.toml: plans.free.text.requests:
    /// must be a non-negative integer, got -1`). Errors are [`ErrorKind::Config`].
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| Error::new(ErrorKind::Config, format!("{file}: {e}")))?;
        if raw.plans.is_empty() {
            return Err(config(
                file,
                "plans",
                "no plans defined: add [plans.<name>] tables",
            ));
        }
        let plans = raw
            .plans
            .into_iter()
            .map(|(name, plan)| Ok((name.clone(), plan.validate(file, name)?)))
            .collect::<Result<_>>()?;
        Ok(Self { plans })
    }

    /// The plan named `name`.
    pub fn get(&self, name: &str) -> Option<&Plan> {
        self.plans.get(name)
    }

    /// The plan named `name`, or an [`ErrorKind::InvalidRequest`] listing the known plans.
    pub fn require(&self, name: &str) -> Result<&Plan> {
        self.get(name).ok_or_else(|| {
            Error::invalid_request(format!(
                "unknown plan `{name}` (known plans: {})",
                self.names().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The names of all plans, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(String::as_str)
    }

    /// All plans, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `text` matches `pattern`, in which `*` matches any run of characters (also none)
/// and every other character matches itself.
#[cfg(test)]
fn glob_match(pattern: &str, text: &str) -> bool {
    let t = text.as_bytes();
    glob_bytes(pattern.as_bytes(), t.len(), |i| t[i])
}

/// [`glob_match`] over the UTF-8 bytes of a text of `len` bytes that `text` reads one by one.
/// Matching bytes is matching characters: a character's first byte never equals a byte inside
/// another character, so a literal can only match whole characters.
fn glob_bytes(p: &[u8], len: usize, text: impl Fn(usize) -> u8) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and what it has swallowed so far, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while ti < len {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == text(ti) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn config(file: &str, path: &str, problem: &str) -> Error {
    Error::new(ErrorKind::Config, format!("{file}: {path}: {problem}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    plans: BTreeMap<String, RawPlan>,
}

// Numbers are read as raw TOML values and checked by hand, so that a negative or fractional
// limit is refused with the field's full path rather than serde's "expected u64".
#[derive(Deserialize)]
struct RawPlan {
    period: Option<String>,
    cost_usd: Option<toml::Value>,
    allow: Vec<String>,
    #[serde(default)]
    allow_unpriced: bool,
    default_max_tokens: Option<toml::Value>,
    /// Every other key: a modality's table (`text`, `image`, ... as [`Modality::ALL`] names
    /// them, so a new modality needs no change here), or a mistake, refused by name in
    /// [`RawPlan::validate`] (serde's `deny_unknown_fields` does not work with `flatten`).
    #[serde(flatten)]
    rest: BTreeMap<String, toml::Value>,
}

/// The fields of a plan other than its modalities, for the error about an unknown one.
const PLAN_FIELDS: &str = "period, cost_usd, allow, allow_unpriced, default_max_tokens";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    requests: Option<toml::Value>,
    tokens: Option<toml::Value>,
    units: Option<toml::Value>,
}

impl RawPlan {
    fn validate(self, file: &str, name: String) -> Result<Plan> {
        let at = |field: &str| format!("plans.{name}.{field}");
        if name.is_empty() {
            return Err(config(file, "plans", "a plan name is empty"));
        }
        let period = match self.period.as_deref() {
            None | Some("month") => Period::Month,
            Some(other) => {
                return Err(config(
                    file,
                    &at("period"),
                    &format!("unknown period `{other}` (known: month)"),
                ));
            }
        };
        let cost_cap = match &self.cost_usd {
            None => None,
            Some(toml::Value::String(s)) => Some(
                s.parse::<Cost>()
                    .map_err(|e| config(file, &at("cost_usd"), &e.to_string()))?,
            ),
            Some(toml::Value::Integer(_)) => Some(Cost::from_nanos(
                whole(file, &at("cost_usd"), self.cost_usd.as_ref())?
                    .unwrap_or_default()
                    .checked_mul(1_000_000_000)
                    .ok_or_else(|| config(file, &at("cost_usd"), "too large"))?,
            )),
            Some(other) => {
                return Err(config(
                    file,
                    &at("cost_usd"),
                    &format!(
                        "write the amount of USD as a decimal string such as \"2.50\", not {}",
                        describe(other)
                    ),
                ));
            }
        };
        for (i, pattern) in self.allow.iter().enumerate() {
            if pattern.trim().is_empty() {
                return Err(config(
                    file,
                    &format!("{}[{i}]", at("allow")),
                    "empty pattern",
                ));
            }
        }
        let default_max_tokens = whole(
            file,
            &at("default_max_tokens"),
            self.default_max_tokens.as_ref(),
        )?;
        let mut modalities = BTreeMap::new();
        for (key, value) in self.rest {
            let (modality, limits) = modality_limits(file, &name, &key, value)?;
            modalities.insert(modality, limits);
        }
        Ok(Plan {
            name,
            period,
            cost_cap,
            allow: self.allow,
            allow_unpriced: self.allow_unpriced,
            default_max_tokens,
            modalities,
        })
    }
}

/// The limits of the modality table `key` of plan `plan` (`[plans.<plan>.<key>]`); any key
/// that names no modality is an unknown field.
fn modality_limits(
    file: &str,
    plan: &str,
    key: &str,
    value: toml::Value,
) -> Result<(Modality, Limits)> {
    let Some(modality) = Modality::parse(key) else {
        let known: Vec<&str> = Modality::ALL.iter().map(|m| m.as_str()).collect();
        return Err(config(
            file,
            &format!("plans.{plan}.{key}"),
            &format!(
                "unknown field `{key}` (known: {PLAN_FIELDS}, and the modalities {})",
                known.join(", ")
            ),
        ));
    };
    let field = |f: &str| format!("plans.{plan}.{modality}.{f}");
    let raw: RawLimits = value.try_into().map_err(|e: toml::de::Error| {
        config(file, &format!("plans.{plan}.{modality}"), e.message())
    })?;
    if counts_tokens(modality) && raw.units.is_some() {
        return Err(config(
            file,
            &field("units"),
            &format!("{modality} is limited by `tokens`, not `units`"),
        ));
    }
    if !counts_tokens(modality) && raw.tokens.is_some() {
        return Err(config(
            file,
            &field("tokens"),
            "only text has a token limit; media is limited by `units`",
        ));
    }
    let limits = Limits {
        requests: whole(file, &field("requests"), raw.requests.as_ref())?,
        tokens: whole(file, &field("tokens"), raw.tokens.as_ref())?,
        units: whole(file, &field("units"), raw.units.as_ref())?,
    };
    Ok((modality, limits))
}

/// A limit that must be a non-negative integer.
fn whole(file: &str, path: &str, value: Option<&toml::Value>) -> Result<Option<u64>> {
    match value {
        None => Ok(None),
        Some(toml::Value::Integer(n)) => u64::try_from(*n).map(Some).map_err(|_| {
            config(
                file,
                path,
                &format!("must be a non-negative integer, got {n}"),
            )
        }),
        Some(other) => Err(config(
            file,
            path,
            &format!("must be a non-negative integer, got {}", describe(other)),
        )),
    }
}

fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Float(f) => format!("the float {f}"),
        other => format!("a {}", other.type_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        for (p, t, ok) in [
            ("*", "gemini/gemini-2.5-pro", true),
            ("*", "", true),
            ("gemini/*", "gemini/gemini-2.5-pro", true),
            ("gemini/*", "hf/gemini", false),
            (
                "gemini/gemini-2.5-flash*",
                "gemini/gemini-2.5-flash-lite",
                true,
            ),
            ("gemini/gemini-2.5-flash*", "gemini/gemini-2.5-pro", false),
            (
                "hf/*/*:cerebras",
                "hf/meta-llama/Llama-3.1-8B:cerebras",
                true,
            ),
            ("hf/*/*:cerebras", "hf/meta-llama/Llama-3.1-8B:groq", false),
            ("a*b*c", "aXXbYYbc", true),
            ("a*b*c", "aXXbYYbd", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            // Characters of several bytes match as wholes, also around `*`.
            ("hf/modèle-*", "hf/modèle-ü", true),
            ("hf/*è", "hf/aè", true),
            ("hf/*è", "hf/aé", false),
            ("*ü*", "xüy", true),
            ("*ü*", "xuy", false),
        ] {
            assert_eq!(glob_match(p, t), ok, "{p} vs {t}");
        }
    }

    #[test]
    fn allowed_models_are_matched_in_place() {
        let plans = Plans::builtin();
        let free = plans.get("free").unwrap();
        assert!(free.allows_model("gemini", "gemini-2.5-flash-lite"));
        assert!(free.allows_model("hf", "meta-llama/Llama-3.1-8B:cerebras"));
        assert!(!free.allows_model("gemini", "gemini-2.5-pro"));
        // The name is `provider/model` whatever the split: as `glob_match` on the joined text.
        assert!(free.allows_model("gemini/gemini-2.5-flash", ""));
        assert!(!free.allows_model("gemini-2.5-flash", "gemini"));
        assert!(plans.get("pro").unwrap().allows_model("", ""));
    }

    #[test]
    fn builtin_plans() {
        let plans = Plans::builtin();
        assert_eq!(
            plans.names().collect::<Vec<_>>(),
            ["basic", "enterprise", "free", "pro"]
        );
        let free = plans.get("free").unwrap();
        assert!(
            !free.includes(Modality::Video),
            "free must not include video"
        );
        assert_eq!(free.limit(Counter::VideoRequests), Some(0));
        assert!(free.cost_cap.is_some());
        let training = |plan: &str| plans.get(plan).unwrap().modalities.get(&Modality::Training);
        assert_eq!(
            training("basic"),
            Some(&Limits {
                requests: Some(2),
                tokens: None,
                units: Some(4000),
            })
        );
        assert_eq!(
            training("pro"),
            Some(&Limits {
                requests: Some(20),
                tokens: None,
                units: Some(40000),
            })
        );
        let enterprise = plans.get("enterprise").unwrap();
        assert_eq!(enterprise.allow, ["*"]);
        assert!(enterprise.allow_unpriced);
        assert_eq!(enterprise.cost_cap, None);
        for c in Counter::ALL {
            assert_eq!(enterprise.limit(c), None, "{c}");
        }
    }

    /// Fine-tuning is not part of the free plan: both its counters are capped at zero, so a
    /// training admission is refused before any provider call.
    #[test]
    fn free_has_no_training() {
        let plans = Plans::builtin();
        let free = plans.get("free").unwrap();
        assert!(!free.includes(Modality::Training));
        assert_eq!(free.limit(Counter::TrainingRequests), Some(0));
        assert_eq!(free.limit(Counter::TrainingUnits), Some(0));
        let admission = Admission {
            request_id: "req-1".into(),
            user_id: "usr-1".into(),
            route: gateway_core::RouteId::new("wavespeed", "flux-dev"),
            modality: Modality::Training,
            operation: "fine_tuning.jobs.create",
            estimate: gateway_core::Amount::new(0, 1000, None),
            open_output: None,
            priced: true,
        };
        let err = free.check(&admission).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied);
        assert!(err.message().contains("training"), "{err}");
        assert!(plans.get("basic").unwrap().check(&admission).is_ok());
    }

    #[test]
    fn training_is_a_modality_table() {
        let plans = Plans::parse(
            "t.toml",
            "[plans.p]\nallow = [\"*\"]\n[plans.p.training]\nrequests = 1\nunits = 500\n",
        )
        .unwrap();
        let p = plans.get("p").unwrap();
        assert_eq!(p.limit(Counter::TrainingRequests), Some(1));
        assert_eq!(p.limit(Counter::TrainingUnits), Some(500));
        let err = Plans::parse(
            "t.toml",
            "[plans.p]\nallow = [\"*\"]\n[plans.p.training]\ntokens = 5\n",
        )
        .unwrap_err();
        assert!(err.message().contains("plans.p.training.tokens"), "{err}");
    }

    #[test]
    fn limits_by_counter() {
        let plans = Plans::parse(
            "t.toml",
            r#"
            [plans.p]
            cost_usd = "2.5"
            allow = ["*"]
            [plans.p.text]
            requests = 3
            [plans.p.image]
            units = 7
            "#,
        )
        .unwrap();
        let p = plans.get("p").unwrap();
        assert_eq!(p.limit(Counter::TextRequests), Some(3));
        assert_eq!(p.limit(Counter::TextTokens), None);
        assert_eq!(p.limit(Counter::ImageRequests), None);
        assert_eq!(p.limit(Counter::ImageUnits), Some(7));
        assert_eq!(p.limit(Counter::SearchUnits), Some(0));
        assert_eq!(p.limit(Counter::CostUsd), Some(2_500_000_000));
    }
}
