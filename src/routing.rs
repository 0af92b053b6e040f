//! Fallback chains and deadlines: how one request name becomes an ordered list of routes.
//!
//! A model name is either a route, `<provider>/<model id>`, or an alias from the configuration
//! (`chat-default`) that stands for an ordered list of routes. Routes of the same `tier` are
//! equals: their order is drawn per request, weighted by `weight`, to balance load among them;
//! lower tiers come first. A request may add its own fallbacks after its model's routes.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::{Error, ErrorKind, RouteId};
use serde::Deserialize;

use crate::breaker::BreakerConfig;

/// `[routing]`: deadlines, aliases and circuit breakers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The total time a request may take, retries, backoff sleeps and fallbacks together, in
    /// milliseconds (default 120 000). A request may ask for less with the header
    /// `x-gateway-deadline-ms`. For a stream it bounds the time until the stream is open.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// The longest silence between two chunks of a stream before it is cut as timed out, in
    /// milliseconds (default 60 000).
    #[serde(default = "default_idle_ms")]
    pub stream_idle_timeout_ms: u64,
    /// Whether a content-filter refusal moves on to the next route (default: no: another
    /// provider answering what one refused is a policy decision to make explicitly).
    #[serde(default)]
    pub fallback_on_content_filter: bool,
    /// `[routing.aliases.<name>]`: names that stand for an ordered list of routes.
    #[serde(default)]
    pub aliases: BTreeMap<String, Alias>,
    /// `[routing.breaker]`: when a route's circuit opens and half-opens.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

fn default_deadline_ms() -> u64 {
    120_000
}

fn default_idle_ms() -> u64 {
    60_000
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            deadline_ms: default_deadline_ms(),
            stream_idle_timeout_ms: default_idle_ms(),
            fallback_on_content_filter: false,
            aliases: BTreeMap::new(),
            breaker: BreakerConfig::default(),
        }
    }
}

impl RoutingConfig {
    /// The default total deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The idle timeout between stream chunks.
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.stream_idle_timeout_ms)
    }

    /// Checks aliases: at least one route each, every route `<provider>/<model id>` of a known
    /// provider, positive weights. Fails with [`ErrorKind::Config`] whose
    /// [`param`](Error::param) is the field at fault (`routing.aliases.<name>.routes[<i>]`).
    pub fn validate(&self, known_provider: impl Fn(&str) -> bool) -> Result<(), Error> {
        let fail = |at: String, problem: String| {
            Err(Error::new(ErrorKind::Config, format!("{at}: {problem}")).with_param(at))
        };
        if self.deadline_ms == 0 {
            return fail("routing.deadline_ms".into(), "must be positive".into());
        }
        if self.stream_idle_timeout_ms == 0 {
            return fail(
                "routing.stream_idle_timeout_ms".into(),
                "must be positive".into(),
            );
        }
        for (name, alias) in &self.aliases {
            if name.contains('/') {
                return fail(
                    format!("routing.aliases.{name}"),
                    "an alias name has no `/` (that is how routes are told apart)".into(),
                );
            }
            if alias.routes.is_empty() {
                return fail(
                    format!("routing.aliases.{name}.routes"),
                    "an alias needs at least one route".into(),
                );
            }
            for (i, route) in alias.routes.iter().enumerate() {
                let at = format!("routing.aliases.{name}.routes[{i}]");
                let model = route.model();
                match model.split_once('/') {
                    Some((p, id)) if !p.is_empty() && !id.is_empty() => {
                        if !known_provider(p) {
                            return fail(
                                at,
                                format!("`{model}`: provider `{p}` is not configured"),
                            );
                        }
                    }
                    _ => return fail(at, format!("`{model}` is not `<provider>/<model id>`")),
                }
                if route.weight() == 0 {
                    return fail(at, "weight must be positive".into());
                }
            }
        }
        Ok(())
    }
}

/// `[routing.aliases.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// The routes, first choice first: `"gemini/gemini-2.0-flash"` or
    /// `{ model = "...", weight = 3, tier = 0 }`.
    pub routes: Vec<RouteEntry>,
}

/// One route of an alias.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RouteEntry {
    /// Just the route; its tier is its position.
    Model(String),
    /// A route with a weight among the equals of its tier.
    Weighted {
        /// `<provider>/<model id>`.
        model: String,
        /// The share of requests among routes of the same tier (default 1).
        #[serde(default = "one")]
        weight: u32,
        /// Routes of the same tier are balanced; lower tiers are tried first (default: the
        /// position in the list).
        #[serde(default)]
        tier: Option<u32>,
    },
}

fn one() -> u32 {
    1
}

impl RouteEntry {
    /// `<provider>/<model id>`.
    pub fn model(&self) -> &str {
        match self {
            Self::Model(m) | Self::Weighted { model: m, .. } => m,
        }
    }

    fn weight(&self) -> u32 {
        match self {
            Self::Model(_) => 1,
            Self::Weighted { weight, .. } => *weight,
        }
    }

    fn tier(&self, position: usize) -> u64 {
        match self {
            Self::Weighted { tier: Some(t), .. } => u64::from(*t),
            _ => position as u64,
        }
    }
}

/// The aliases, each route parsed once into a [`RouteId`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Aliases {
    map: BTreeMap<String, Vec<Weighted>>,
}

#[derive(Debug, Clone)]
struct Weighted {
    route: RouteId,
    weight: u32,
    tier: u64,
}

impl Aliases {
    /// Parses every alias route of `config` with `provider_id` (the static id of a provider
    /// this build knows). Fails, naming the alias and entry, on a route it cannot parse.
    pub(crate) fn compile(
        config: &RoutingConfig,
        provider_id: impl Fn(&str) -> Option<&'static str>,
    ) -> gateway_core::Result<Self> {
        let mut map = BTreeMap::new();
        for (name, alias) in &config.aliases {
            let mut routes = Vec::with_capacity(alias.routes.len());
            for (i, entry) in alias.routes.iter().enumerate() {
                let route = RouteId::parse(entry.model(), &provider_id).map_err(|e| {
                    gateway_core::Error::new(
                        gateway_core::ErrorKind::Config,
                        format!("routing.aliases.{name}.routes[{i}]: {}", e.message()),
                    )
                })?;
                routes.push(Weighted {
                    route,
                    weight: entry.weight(),
                    tier: entry.tier(i),
                });
            }
            map.insert(name.clone(), routes);
        }
        Ok(Self { map })
    }

    /// Whether `name` is an alias.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Every route of every alias.
    pub(crate) fn routes(&self) -> impl Iterator<Item = &RouteId> {
        self.map.values().flatten().map(|w| &w.route)
    }

    /// `name`'s routes in the order to try them (each tier's equals in a weighted random order).
    fn ordered(&self, name: &str) -> Option<Vec<RouteId>> {
        self.map.get(name).map(|routes| ordered(routes))
    }
}

/// The routes to try for `model`, in order: an alias's routes (each tier's equals in a
/// weighted random order) or the model itself, then the request's own `fallbacks` (routes or
/// aliases). Routes already listed are not repeated. `parse` turns a route name into its id;
/// its errors for a fallback are given the `param` `fallbacks[i]`.
pub(crate) fn chain(
    aliases: &Aliases,
    model: &str,
    fallbacks: &[String],
    parse: impl Fn(&str) -> gateway_core::Result<RouteId>,
) -> gateway_core::Result<Vec<RouteId>> {
    let mut out = match aliases.ordered(model) {
        Some(routes) => routes,
        None => vec![parse(model)?],
    };
    for (i, f) in fallbacks.iter().enumerate() {
        let more = match aliases.ordered(f) {
            Some(routes) => routes,
            None => vec![parse(f).map_err(|e| e.with_param(format!("fallbacks[{i}]")))?],
        };
        for route in more {
            if !out.contains(&route) {
                out.push(route);
            }
        }
    }
    Ok(out)
}

fn ordered(routes: &[Weighted]) -> Vec<RouteId> {
    let mut tiers: BTreeMap<u64, Vec<&Weighted>> = BTreeMap::new();
    for r in routes {
        tiers.entry(r.tier).or_default().push(r);
    }
    let mut out = Vec::with_capacity(routes.len());
    for (_, mut equals) in tiers {
        // Weighted order without replacement: draw one by weight, remove it, repeat.
        while !equals.is_empty() {
            let total: u64 = equals.iter().map(|r| u64::from(r.weight)).sum();
            let mut pick = fastrand::u64(0..total.max(1));
            let index = equals
                .iter()
                .position(|r| {
                    let w = u64::from(r.weight);
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            out.push(equals.remove(index).route.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> RoutingConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn known(p: &str) -> Option<&'static str> {
        ["gemini", "hf"].into_iter().find(|k| *k == p)
    }

    /// The chain of `model` under `c`, as route names.
    fn names(c: &RoutingConfig, model: &str, fallbacks: &[String]) -> Vec<String> {
        let aliases = Aliases::compile(c, known).unwrap();
        chain(&aliases, model, fallbacks, |m| RouteId::parse(m, known))
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_alias_is_tried_in_order_then_the_requests_fallbacks() {
        let c = config(
            r#"
            [aliases.chat-default]
            routes = ["gemini/gemini-2.0-flash", "hf/meta-llama/Llama-3.1-8B-Instruct"]
            "#,
        );
        assert_eq!(
            names(
                &c,
                "chat-default",
                &["hf/Qwen/Qwen3-8B".into(), "gemini/gemini-2.0-flash".into()]
            ),
            vec![
                "gemini/gemini-2.0-flash",
                "hf/meta-llama/Llama-3.1-8B-Instruct",
                "hf/Qwen/Qwen3-8B"
            ]
        );
        assert_eq!(names(&c, "gemini/x", &[]), vec!["gemini/x"]);
        assert_eq!(names(&c, "gemini/x", &["chat-default".into()]).len(), 3);
        let aliases = Aliases::compile(&c, known).unwrap();
        let parse = |m: &str| RouteId::parse(m, known);
        let e = chain(
            &aliases,
            "gemini/x",
            &["gemini/y".into(), "nope/z".into()],
            parse,
        )
        .unwrap_err();
        assert_eq!(e.param(), Some("fallbacks[1]"));
    }

    #[test]
    fn equals_of_a_tier_are_balanced_by_weight() {
        let c = config(
            r#"
            [aliases.balanced]
            routes = [
                { model = "gemini/a", weight = 3, tier = 0 },
                { model = "hf/b", weight = 1, tier = 0 },
                { model = "gemini/last", tier = 1 },
            ]
            "#,
        );
        let mut first_a = 0;
        for _ in 0..4000 {
            let order = names(&c, "balanced", &[]);
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], "gemini/last");
            first_a += usize::from(order[0] == "gemini/a");
        }
        // 3:1 weights: about 3000 of 4000 (the bound is loose: six standard deviations).
        assert!((2830..=3170).contains(&first_a), "{first_a}");
    }

    #[test]
    fn validation_names_the_alias_and_route() {
        let known = |p: &str| p == "gemini" || p == "hf";
        let refused = |text: &str| config(text).validate(known).unwrap_err();
        let err = refused("[aliases.a]\nroutes = []\n");
        assert_eq!(err.kind(), &ErrorKind::Config);
        assert_eq!(err.param(), Some("routing.aliases.a.routes"));
        let err = refused("[aliases.a]\nroutes = [\"nope/x\"]\n");
        assert_eq!(err.param(), Some("routing.aliases.a.routes[0]"));
        assert!(err.to_string().contains("nope"), "{err}");
        let err = refused("[aliases.a]\nroutes = [\"gemini\"]\n");
        assert!(err.to_string().contains("<provider>/<model id>"), "{err}");
        let err = refused("[aliases.a]\nroutes = [{ model = \"gemini/x\", weight = 0 }]\n");
        assert!(err.to_string().contains("weight"), "{err}");
        assert!(
            config("[aliases.a]\nroutes = [\"gemini/x\"]\n")
                .validate(known)
                .is_ok()
        );
    }
}
