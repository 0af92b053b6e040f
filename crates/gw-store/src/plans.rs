//! Subscription plans: what each plan allows and how much of it per billing period.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use gateway_core::{Admission, Cost, Error, ErrorKind, Modality, Result};
use serde::Deserialize;

use crate::counters::Counter;
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
    /// Media units: images, seconds of video or audio, characters of speech, search credits.
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
        let name = format!("{provider}/{model}");
        self.allow.iter().any(|p| glob_match(p, &name))
    }

    /// The limit on `counter` per period: `Some(0)` for a counter of a modality the plan does
    /// not include, `None` for unlimited.
    pub fn limit(&self, counter: Counter) -> Option<u64> {
        let Some(modality) = counter.modality() else {
            return self.cost_cap.map(Cost::nanos);
        };
        let Some(limits) = self.modalities.get(&modality) else {
            return Some(0);
        };
        if counter == Counter::requests_of(modality) {
            limits.requests
        } else if modality == Modality::Text {
            limits.tokens
        } else {
            limits.units
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
        let model = format!("{}/{}", admission.provider, admission.model);
        if !self.includes(admission.modality) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "plan `{}` does not include {} (requested with model `{model}`)",
                    self.name, admission.modality
                ),
            ));
        }
        if !self.allows_model(admission.provider, &admission.model) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("plan `{}` does not allow model `{model}`", self.name),
            ));
        }
        if !admission.priced && !self.allow_unpriced {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "model `{model}` has no price in the pricing catalog, and plan `{}` does not \
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
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and what it has swallowed so far, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
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
    p[pi..].iter().all(|&c| c == '*')
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
#[serde(deny_unknown_fields)]
struct RawPlan {
    period: Option<String>,
    cost_usd: Option<toml::Value>,
    allow: Vec<String>,
    #[serde(default)]
    allow_unpriced: bool,
    default_max_tokens: Option<toml::Value>,
    text: Option<RawLimits>,
    image: Option<RawLimits>,
    video: Option<RawLimits>,
    audio: Option<RawLimits>,
    search: Option<RawLimits>,
}

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
        let tables = [
            (Modality::Text, self.text),
            (Modality::Image, self.image),
            (Modality::Video, self.video),
            (Modality::Audio, self.audio),
            (Modality::Search, self.search),
        ];
        for (modality, raw) in tables {
            let Some(raw) = raw else { continue };
            let field = |f: &str| at(&format!("{modality}.{f}"));
            if modality == Modality::Text && raw.units.is_some() {
                return Err(config(
                    file,
                    &field("units"),
                    "text is limited by `tokens`, not `units`",
                ));
            }
            if modality != Modality::Text && raw.tokens.is_some() {
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
        ] {
            assert_eq!(glob_match(p, t), ok, "{p} vs {t}");
        }
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
        let enterprise = plans.get("enterprise").unwrap();
        assert_eq!(enterprise.allow, ["*"]);
        assert!(enterprise.allow_unpriced);
        assert_eq!(enterprise.cost_cap, None);
        for c in Counter::ALL {
            assert_eq!(enterprise.limit(c), None, "{c}");
        }
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
