//! The pricing catalog: prices per provider, model and unit, read from data files.
//!
//! Each provider crate ships its own file (`crates/gw-<provider>/pricing.toml`), merged into
//! the catalog when the provider is registered; an operator's overrides are merged last. A file
//! has a required `version` and three kinds of entry (`testdata/pricing.toml` of this crate is
//! the reference example of the format, with every kind of entry):
//! - `[[text]]`: a token-billed model's input, output and cached-input rates per 1M tokens, with an
//!   optional long-context tier. Priced by [`PriceCatalog::text_cost`].
//! - `[[unit]]`: a price per [`PriceUnit`] (an image, a second of video, a search, ...), in USD or
//!   in the provider's credits, optionally only for requests with given [`PriceQualifiers`]
//!   (image size, video resolution, search depth, token modality). Priced by
//!   [`PriceCatalog::unit_cost`]; token rates by modality also feed [`PriceCatalog::token_cost`].
//! - `[[credit]]`: USD per credit, for providers that bill in their own credits.
//!
//! Look-ups never guess: a price the catalog does not state is `None`, and the caller logs the
//! cost as unknown.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{Cost, Error, ErrorKind, Result, TokenPrice, TokenUsage};

const NANOS_PER_USD: u128 = 1_000_000_000;
const TOKENS_PER_PRICE: u64 = 1_000_000;

/// Prices by provider and model. Look-ups are exact on the provider-local model id.
#[derive(Debug, Clone, Default)]
pub struct PriceCatalog {
    version: String,
    /// The version of the file that last set each provider's prices.
    versions: HashMap<String, String>,
    /// Each model's `[[text]]` rates, and whether a `[[unit]]` entry prices its tokens.
    models: HashMap<(String, String), ModelRates, Fast>,
    units: HashMap<(String, String, PriceUnit), Vec<UnitRate>, Fast>,
    credits: HashMap<String, Cost>,
}

/// What a model's token cost is made of, found with one look-up: a token cost of a model
/// without token units comes from its text rates alone, with no look-up in `units` for each
/// unit of each modality (twice a request: the estimate and the settlement).
#[derive(Debug, Clone, Copy, Default)]
struct ModelRates {
    /// Its `[[text]]` rates, if it has them.
    text: Option<TextPrice>,
    /// Whether a `[[unit]]` entry prices one of its token units.
    token_units: bool,
}

/// The hasher of the maps a request looks prices up in, several times a request: foldhash,
/// which hashes a model's name in a few dozen instructions where the standard library's
/// SipHash took about 400. Their keys come from the catalog's files; a caller's model name is
/// only looked up, never inserted, so it cannot crowd a map.
type Fast = foldhash::fast::RandomState;

/// A price's key as borrowed text: provider, model and (for a unit price) the unit, so a
/// look-up on every request builds no `String` (`map.get(&(provider, model, unit) as &dyn
/// PriceKey)`). Hashed and compared as the owned keys are: each text as `str` hashes, in order.
trait PriceKey {
    fn parts(&self) -> (&str, &str, Option<PriceUnit>);
}

impl PriceKey for (String, String) {
    fn parts(&self) -> (&str, &str, Option<PriceUnit>) {
        (&self.0, &self.1, None)
    }
}

impl PriceKey for (String, String, PriceUnit) {
    fn parts(&self) -> (&str, &str, Option<PriceUnit>) {
        (&self.0, &self.1, Some(self.2))
    }
}

impl PriceKey for (&str, &str) {
    fn parts(&self) -> (&str, &str, Option<PriceUnit>) {
        (self.0, self.1, None)
    }
}

impl PriceKey for (&str, &str, PriceUnit) {
    fn parts(&self) -> (&str, &str, Option<PriceUnit>) {
        (self.0, self.1, Some(self.2))
    }
}

impl<'a> Borrow<dyn PriceKey + 'a> for (String, String) {
    fn borrow(&self) -> &(dyn PriceKey + 'a) {
        self
    }
}

impl<'a> Borrow<dyn PriceKey + 'a> for (String, String, PriceUnit) {
    fn borrow(&self) -> &(dyn PriceKey + 'a) {
        self
    }
}

/// As a tuple hashes: its fields in order (a `String` hashes as its `str`).
impl Hash for dyn PriceKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (provider, model, unit) = self.parts();
        provider.hash(state);
        model.hash(state);
        if let Some(unit) = unit {
            unit.hash(state);
        }
    }
}

impl PartialEq for dyn PriceKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn PriceKey + '_ {}

/// The price of a token-billed text model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPrice {
    /// The standard rates.
    pub base: TokenPrice,
    /// Rates for prompts longer than a threshold, where the provider has such a tier.
    pub long_context: Option<(u64, TokenPrice)>,
}

impl TextPrice {
    /// What `usage` costs.
    pub fn cost(&self, usage: &TokenUsage) -> Cost {
        self.tier(usage.input_tokens).cost(usage)
    }

    /// The rates that apply to a request with `input_tokens` prompt tokens.
    fn tier(&self, input_tokens: u64) -> TokenPrice {
        match self.long_context {
            Some((above, price)) if input_tokens > above => price,
            _ => self.base,
        }
    }
}

/// What a `[[unit]]` price is per. The catalog file names each kind by [`PriceUnit::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PriceUnit {
    /// Uncached prompt tokens, priced per 1M (`input_token`).
    InputToken,
    /// Prompt tokens served from the provider's cache, priced per 1M (`cached_input_token`).
    CachedInputToken,
    /// Generated tokens, priced per 1M (`output_token`).
    OutputToken,
    /// One generated or edited image (`image`).
    Image,
    /// One second of generated video (`video_second`).
    VideoSecond,
    /// One second of audio, generated or transcribed (`audio_second`).
    AudioSecond,
    /// One character of input text, as speech synthesis bills it (`character`).
    Character,
    /// One search query (`search`).
    Search,
    /// One search result beyond those a query includes (`search_result`).
    SearchResult,
    /// One page (URL) of content fetched (`page`).
    Page,
    /// One call or run, whatever it returns (`request`).
    Request,
    /// One of the provider's own credits (`credit`); its price is the provider's `[[credit]]`
    /// entry, not a `[[unit]]`.
    Credit,
    /// One step of a training run (`training_step`), as LoRA trainers bill.
    TrainingStep,
}

impl PriceUnit {
    /// Every unit kind.
    pub const ALL: [PriceUnit; 13] = [
        Self::InputToken,
        Self::CachedInputToken,
        Self::OutputToken,
        Self::Image,
        Self::VideoSecond,
        Self::AudioSecond,
        Self::Character,
        Self::Search,
        Self::SearchResult,
        Self::Page,
        Self::Request,
        Self::Credit,
        Self::TrainingStep,
    ];

    /// The name the catalog file uses (`image`, `video_second`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InputToken => "input_token",
            Self::CachedInputToken => "cached_input_token",
            Self::OutputToken => "output_token",
            Self::Image => "image",
            Self::VideoSecond => "video_second",
            Self::AudioSecond => "audio_second",
            Self::Character => "character",
            Self::Search => "search",
            Self::SearchResult => "search_result",
            Self::Page => "page",
            Self::Request => "request",
            Self::Credit => "credit",
            Self::TrainingStep => "training_step",
        }
    }

    /// The unit named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_str() == name)
    }

    /// Whether prices of this unit are per 1M units (the token units), not per unit.
    pub fn per_million(self) -> bool {
        matches!(
            self,
            Self::InputToken | Self::CachedInputToken | Self::OutputToken
        )
    }
}

impl fmt::Display for PriceUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names of the qualifiers, in the order of [`PriceQualifiers`]' values.
const QUALIFIERS: [&str; 5] = ["size", "quality", "resolution", "modality", "depth"];
const SIZE: usize = 0;
const QUALITY: usize = 1;
const RESOLUTION: usize = 2;
const MODALITY: usize = 3;
const DEPTH: usize = 4;

/// What a request asks for that a price may depend on: the values a `[[unit]]` entry's qualifiers
/// are matched against (ignoring ASCII case).
///
/// An entry applies to a request when every qualifier the entry sets has the same value here; the
/// applicable entry that sets the most qualifiers wins, so a qualified price wins over an
/// unqualified one. A value the request sets but no entry mentions does not matter.
///
/// ```
/// use gateway_core::{PriceCatalog, PriceQualifiers, PriceUnit};
///
/// let catalog = PriceCatalog::from_toml(
///     r#"
///     version = "2026-11-26"
///     [[unit]]
///     provider = "wavespeed"
///     model = "wavespeed-ai/hunyuan-video-1.5/text-to-video"
///     unit = "video_second"
///     resolution = "720p"
///     price = "0.04"
///     "#,
///     "prices.toml",
/// )?;
/// let q = PriceQualifiers::new().resolution("720p");
/// let model = "wavespeed-ai/hunyuan-video-1.5/text-to-video";
/// let cost = catalog.unit_cost("wavespeed", model, PriceUnit::VideoSecond, &q, 5);
/// assert_eq!(cost.unwrap().to_string(), "0.2");
/// # Ok::<(), gateway_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PriceQualifiers<'a> {
    values: [Option<&'a str>; QUALIFIERS.len()],
}

impl<'a> PriceQualifiers<'a> {
    /// No qualifiers: only unqualified prices apply.
    pub const fn new() -> Self {
        Self {
            values: [None; QUALIFIERS.len()],
        }
    }

    /// The output size (`size`), e.g. `1024x1024`.
    pub const fn size(mut self, size: &'a str) -> Self {
        self.values[SIZE] = Some(size);
        self
    }

    /// The output quality (`quality`), e.g. `hd`.
    pub const fn quality(mut self, quality: &'a str) -> Self {
        self.values[QUALITY] = Some(quality);
        self
    }

    /// The video resolution (`resolution`), e.g. `720p`.
    pub const fn resolution(mut self, resolution: &'a str) -> Self {
        self.values[RESOLUTION] = Some(resolution);
        self
    }

    /// The modality of the tokens priced (`modality`): `text`, `image`, `audio` or `video`.
    pub const fn modality(mut self, modality: &'a str) -> Self {
        self.values[MODALITY] = Some(modality);
        self
    }

    /// The search depth or type (`depth`): Tavily's `search_depth`, Exa's `type`.
    pub const fn depth(mut self, depth: &'a str) -> Self {
        self.values[DEPTH] = Some(depth);
        self
    }
}

/// The part of a request's tokens in one modality, for models whose token rates differ by
/// modality (Gemini reports them in `promptTokensDetails` and `candidatesTokensDetails`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModalityTokens<'a> {
    /// The modality as the catalog's `modality` qualifier names it (`text`, `image`, `audio`,
    /// `video`), matched ignoring ASCII case, so Gemini's `AUDIO` works as it is.
    pub modality: &'a str,
    /// Prompt tokens in this modality, cached ones included.
    pub input_tokens: u64,
    /// The part of `input_tokens` served from the provider's cache.
    pub cached_input_tokens: u64,
    /// Generated tokens in this modality.
    pub output_tokens: u64,
}

/// One `[[unit]]` price, under the key (provider, model, unit).
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnitRate {
    /// Qualifier values (ASCII lower case), indexed like [`QUALIFIERS`].
    qualifiers: [Option<String>; QUALIFIERS.len()],
    rate: Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rate {
    /// USD per unit (per 1M for token units).
    Usd(Cost),
    /// The provider's credits per unit (per 1M for token units), in billionths of a credit.
    Credits(u64),
}

impl UnitRate {
    fn specificity(&self) -> usize {
        self.qualifiers.iter().flatten().count()
    }

    fn applies_to(&self, request: &PriceQualifiers<'_>) -> bool {
        self.qualifiers
            .iter()
            .zip(request.values)
            .all(|(wanted, given)| match wanted {
                None => true,
                Some(w) => given.is_some_and(|g| g.eq_ignore_ascii_case(w)),
            })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    // Entries are read one by one (see `read_entry`), so that an error names the entry.
    #[serde(default)]
    text: Vec<toml::Table>,
    #[serde(default)]
    unit: Vec<toml::Table>,
    #[serde(default)]
    credit: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextEntry {
    provider: String,
    model: String,
    input: String,
    output: String,
    #[serde(default)]
    cached_input: Option<String>,
    #[serde(default)]
    long_context: Option<LongContext>,
    #[serde(default)]
    #[allow(dead_code)] // provenance for readers of the file
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongContext {
    above_tokens: u64,
    input: String,
    output: String,
    #[serde(default)]
    cached_input: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitEntry {
    provider: String,
    model: String,
    unit: String,
    #[serde(default)]
    price: Option<String>,
    #[serde(default)]
    credits: Option<String>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    quality: Option<String>,
    #[serde(default)]
    resolution: Option<String>,
    #[serde(default)]
    modality: Option<String>,
    #[serde(default)]
    depth: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // provenance for readers of the file
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditEntry {
    provider: String,
    price: String,
    #[serde(default)]
    #[allow(dead_code)] // provenance for readers of the file
    source: Option<String>,
}

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// Fields of the entry tables that hold amounts of money (or credits).
const AMOUNT_FIELDS: [&str; 5] = ["input", "output", "cached_input", "price", "credits"];
/// Fields of the entry tables that hold other strings.
const STRING_FIELDS: [&str; 9] = [
    "provider",
    "model",
    "unit",
    "size",
    "quality",
    "resolution",
    "modality",
    "depth",
    "source",
];

/// Reads the entry `raw` at `at` (`ops.toml: unit[3]`), so that every error names the entry, and
/// a value of the wrong type also its field: serde's own messages name neither.
fn read_entry<T: DeserializeOwned>(at: &str, raw: toml::Table) -> Result<T> {
    fn check(at: &str, table: &toml::Table) -> Result<()> {
        for (key, value) in table {
            let amount = AMOUNT_FIELDS.contains(&key.as_str());
            if (amount || STRING_FIELDS.contains(&key.as_str())) && !value.is_str() {
                let hint = if amount {
                    " (amounts are decimal strings such as \"0.04\", never floating point)"
                } else {
                    ""
                };
                return Err(config_error(format!(
                    "{at}.{key}: expected a string, found {}{hint}",
                    value.type_str()
                )));
            }
            if key == "long_context"
                && let Some(nested) = value.as_table()
            {
                check(&format!("{at}.{key}"), nested)?;
            }
        }
        Ok(())
    }
    check(at, &raw)?;
    T::deserialize(raw).map_err(|e| config_error(format!("{at}: {}", e.message())))
}

fn parse_usd(at: &str, value: &str) -> Result<Cost> {
    value
        .parse()
        .map_err(|e| config_error(format!("{at}: {e}")))
}

fn non_empty(at: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(config_error(format!("{at}: must not be empty")));
    }
    Ok(())
}

/// `numerator × quantity / denominator` nano-dollars, rounded half up, saturating.
fn scaled(numerator: u128, quantity: u64, denominator: u128) -> Cost {
    let exact = numerator.saturating_mul(u128::from(quantity));
    let rounded = exact.saturating_add(denominator / 2) / denominator;
    Cost::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
}

impl PriceCatalog {
    /// Reads a catalog in the format of `pricing.toml`; `origin` names the file in errors.
    ///
    /// Fails with [`ErrorKind::Config`] and a message naming `origin` and the entry and field at
    /// fault (`ops.toml: unit[3].price: ...`) for a missing or empty `version`, an unknown or
    /// missing field, a value of the wrong type (amounts are strings, never floats), an amount
    /// that is not an exact non-negative decimal, an unknown unit, a `[[unit]]` with both or
    /// neither of `price` and `credits`, an empty provider, model or qualifier, or two entries of
    /// one table for the same prices. Syntax errors name the file and the line.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let file: File =
            toml::from_str(text).map_err(|e| config_error(format!("{origin}: {e}")))?;
        non_empty(&format!("{origin}: version"), &file.version)?;
        let mut catalog = Self {
            version: file.version,
            ..Self::default()
        };
        let mut text_at = HashMap::new();
        for (i, raw) in file.text.into_iter().enumerate() {
            let entry: TextEntry = read_entry(&format!("{origin}: text[{i}]"), raw)?;
            let at = |field: &str| format!("{origin}: text[{i}].{field}");
            let token_price = |prefix: &str,
                               input: &str,
                               output: &str,
                               cached_input: Option<&str>|
             -> Result<TokenPrice> {
                Ok(TokenPrice {
                    input: parse_usd(&at(&format!("{prefix}input")), input)?,
                    output: parse_usd(&at(&format!("{prefix}output")), output)?,
                    cached_input: cached_input
                        .map(|c| parse_usd(&at(&format!("{prefix}cached_input")), c))
                        .transpose()?,
                })
            };
            let base = token_price(
                "",
                &entry.input,
                &entry.output,
                entry.cached_input.as_deref(),
            )?;
            let long_context = match entry.long_context {
                Some(lc) => Some((
                    lc.above_tokens,
                    token_price(
                        "long_context.",
                        &lc.input,
                        &lc.output,
                        lc.cached_input.as_deref(),
                    )?,
                )),
                None => None,
            };
            let key = (entry.provider, entry.model);
            if let Some(first) = text_at.insert(key.clone(), i) {
                return Err(config_error(format!(
                    "{origin}: text[{i}]: same provider and model as text[{first}]"
                )));
            }
            catalog.models.entry(key).or_default().text = Some(TextPrice { base, long_context });
        }
        let mut unit_at = HashMap::new();
        for (i, raw) in file.unit.into_iter().enumerate() {
            let unit = read_entry(&format!("{origin}: unit[{i}]"), raw)?;
            let (key, rate) = Self::unit_entry(origin, i, unit)?;
            if let Some(first) = unit_at.insert((key.clone(), rate.qualifiers.clone()), i) {
                return Err(config_error(format!(
                    "{origin}: unit[{i}]: same provider, model, unit and qualifiers as unit[{first}]"
                )));
            }
            if key.2.per_million() {
                let model = (key.0.clone(), key.1.clone());
                catalog.models.entry(model).or_default().token_units = true;
            }
            catalog.units.entry(key).or_default().push(rate);
        }
        let mut credit_at = HashMap::new();
        for (i, raw) in file.credit.into_iter().enumerate() {
            let entry: CreditEntry = read_entry(&format!("{origin}: credit[{i}]"), raw)?;
            non_empty(&format!("{origin}: credit[{i}].provider"), &entry.provider)?;
            let price = parse_usd(&format!("{origin}: credit[{i}].price"), &entry.price)?;
            if let Some(first) = credit_at.insert(entry.provider.clone(), i) {
                return Err(config_error(format!(
                    "{origin}: credit[{i}]: same provider as credit[{first}]"
                )));
            }
            catalog.credits.insert(entry.provider, price);
        }
        let providers: Vec<String> = (catalog.models.keys().map(|(p, _)| p))
            .chain(catalog.units.keys().map(|(p, _, _)| p))
            .chain(catalog.credits.keys())
            .cloned()
            .collect();
        for provider in providers {
            catalog.versions.insert(provider, catalog.version.clone());
        }
        Ok(catalog)
    }

    /// Checks and converts the `[[unit]]` entry at index `i`.
    fn unit_entry(
        origin: &str,
        i: usize,
        entry: UnitEntry,
    ) -> Result<((String, String, PriceUnit), UnitRate)> {
        let at = |field: &str| format!("{origin}: unit[{i}].{field}");
        non_empty(&at("provider"), &entry.provider)?;
        non_empty(&at("model"), &entry.model)?;
        let unit = match PriceUnit::parse(&entry.unit) {
            Some(PriceUnit::Credit) => {
                return Err(config_error(format!(
                    "{}: the price of a credit goes in a [[credit]] entry",
                    at("unit")
                )));
            }
            Some(unit) => unit,
            None => {
                let known: Vec<_> = PriceUnit::ALL
                    .iter()
                    .filter(|u| **u != PriceUnit::Credit)
                    .map(|u| u.as_str())
                    .collect();
                return Err(config_error(format!(
                    "{}: unknown unit `{}`; expected one of {}",
                    at("unit"),
                    entry.unit,
                    known.join(", ")
                )));
            }
        };
        let rate = match (entry.price, entry.credits) {
            (Some(price), None) => Rate::Usd(parse_usd(&at("price"), &price)?),
            (None, Some(credits)) => {
                let nanos = credits.parse::<Cost>().map_err(|_| {
                    config_error(format!(
                        "{}: `{credits}` is not a non-negative decimal number of credits \
                         with at most 9 decimals",
                        at("credits")
                    ))
                })?;
                Rate::Credits(nanos.nanos())
            }
            (Some(_), Some(_)) => {
                return Err(config_error(format!(
                    "{}: give either `price` (USD) or `credits`, not both",
                    at("price")
                )));
            }
            (None, None) => {
                return Err(config_error(format!(
                    "{}: missing; give `price` (USD) or `credits`",
                    at("price")
                )));
            }
        };
        let given = [
            entry.size,
            entry.quality,
            entry.resolution,
            entry.modality,
            entry.depth,
        ];
        let mut qualifiers: [Option<String>; QUALIFIERS.len()] = Default::default();
        for ((slot, value), name) in qualifiers.iter_mut().zip(given).zip(QUALIFIERS) {
            if let Some(value) = value {
                non_empty(&at(name), &value)?;
                *slot = Some(value.to_ascii_lowercase());
            }
        }
        Ok((
            (entry.provider, entry.model, unit),
            UnitRate { qualifiers, rate },
        ))
    }

    /// Adds `other`'s prices over these (a provider's list, or an operator's overrides); its
    /// version, if set, becomes [`PriceCatalog::version`] and the version of every provider it
    /// prices.
    ///
    /// A text price or a provider's credit price replaces the one for the same provider (and
    /// model); a unit price replaces the one with the same provider, model, unit and qualifiers,
    /// and leaves the others of that model and unit in place.
    pub fn merge(&mut self, other: PriceCatalog) {
        if !other.version.is_empty() {
            self.version = other.version;
        }
        self.versions.extend(other.versions);
        for (key, theirs) in other.models {
            let mine = self.models.entry(key).or_default();
            if theirs.text.is_some() {
                mine.text = theirs.text;
            }
            mine.token_units |= theirs.token_units;
        }
        for (key, rates) in other.units {
            let mine = self.units.entry(key).or_default();
            for rate in rates {
                match mine.iter_mut().find(|r| r.qualifiers == rate.qualifiers) {
                    Some(slot) => *slot = rate,
                    None => mine.push(rate),
                }
            }
        }
        self.credits.extend(other.credits);
    }

    /// The version of the file merged last (an operator's overrides, when given).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version of the prices of `provider`: that of the file that last set them, so a usage
    /// row names exactly which prices charged it. [`PriceCatalog::version`] for a provider with
    /// no prices.
    pub fn version_of(&self, provider: &str) -> &str {
        self.versions
            .get(provider)
            .map_or(self.version.as_str(), String::as_str)
    }

    /// The price of `provider`'s text model `model`, if the catalog has it.
    pub fn text_price(&self, provider: &str, model: &str) -> Option<&TextPrice> {
        self.models
            .get(&(provider, model) as &dyn PriceKey)
            .and_then(|m| m.text.as_ref())
    }

    /// What `usage` of `provider`'s `model` costs, or `None` when the price is unknown.
    pub fn text_cost(&self, provider: &str, model: &str, usage: &TokenUsage) -> Option<Cost> {
        self.text_price(provider, model).map(|p| p.cost(usage))
    }

    /// USD per credit of `provider`, if the catalog has a `[[credit]]` entry for it.
    pub fn credit_price(&self, provider: &str) -> Option<Cost> {
        self.credits.get(provider).copied()
    }

    /// USD per `unit` of `provider`'s `model` for a request with `qualifiers` (per 1M for the
    /// token units; see [`PriceUnit::per_million`]), or `None` when the catalog does not state it.
    ///
    /// A price given in credits is converted at the provider's credit price and rounded to the
    /// nano-dollar; [`PriceCatalog::unit_cost`] converts the whole quantity at once instead.
    pub fn unit_price(
        &self,
        provider: &str,
        model: &str,
        unit: PriceUnit,
        qualifiers: &PriceQualifiers<'_>,
    ) -> Option<Cost> {
        let per = if unit.per_million() {
            TOKENS_PER_PRICE
        } else {
            1
        };
        self.unit_cost(provider, model, unit, qualifiers, per)
    }

    /// What `charges` on `provider`'s `model` cost together, or `None` when any of them has no
    /// known price (never a partial sum, which would understate the cost). No charges (or
    /// charges of quantity zero) cost nothing.
    pub fn charges_cost(
        &self,
        provider: &str,
        model: &str,
        charges: &[crate::Charge],
    ) -> Option<Cost> {
        let mut billed = charges.iter().filter(|c| c.quantity > 0);
        billed.try_fold(Cost::ZERO, |sum, c| {
            let cost = self.unit_cost(provider, model, c.unit, &c.qualifiers(), c.quantity)?;
            Some(sum + cost)
        })
    }

    /// What `quantity` of `unit` of `provider`'s `model` costs for a request with `qualifiers`,
    /// or `None` when the price is unknown.
    ///
    /// The price is that of the most specific `[[unit]]` entry for (`provider`, `model`, `unit`)
    /// whose qualifiers all match (see [`PriceQualifiers`]). It is unknown when no entry matches,
    /// when two equally specific matching entries disagree, and when the entry is priced in
    /// credits and the catalog has no `[[credit]]` price for the provider. Token units are priced
    /// per 1M, rounded half up to the nano-dollar like [`Cost::per_million`]; other units exactly.
    /// [`PriceUnit::Credit`] is priced by the provider's `[[credit]]` entry, whatever the model.
    /// Token rates of `[[text]]` entries are not consulted here: see [`PriceCatalog::token_cost`].
    pub fn unit_cost(
        &self,
        provider: &str,
        model: &str,
        unit: PriceUnit,
        qualifiers: &PriceQualifiers<'_>,
        quantity: u64,
    ) -> Option<Cost> {
        if unit == PriceUnit::Credit {
            return self.credit_price(provider).map(|p| p.times(quantity));
        }
        let rate = self.unit_rate(provider, model, unit, qualifiers)?;
        self.rate_cost(provider, rate.rate, unit, quantity)
    }

    /// What `usage` of `provider`'s token-billed `model` costs when its rates may differ by
    /// modality, or `None` when any non-zero part of it has no known rate.
    ///
    /// `by_modality` splits some of `usage`'s tokens by modality; the tokens it leaves out are
    /// priced without a modality. With an empty `by_modality` and only a `[[text]]` entry for the
    /// model this is [`PriceCatalog::text_cost`]. Each group of tokens takes its rate from, in
    /// order:
    /// 1. the most specific token `[[unit]]` entry of the model (`input_token`,
    ///    `cached_input_token` or `output_token`) whose `modality` matches or is unset;
    /// 2. the model's `[[text]]` rates, in the tier the whole prompt falls into (cached tokens
    ///    at the cached rate, else the input rate).
    ///
    /// A group of cached tokens whose input rate comes from a `[[unit]]` entry needs a
    /// `cached_input_token` entry at least as specific: a modality billed at its own input rate
    /// has its own cache rate, so the text cache rate is never assumed for it.
    pub fn token_cost(
        &self,
        provider: &str,
        model: &str,
        usage: &TokenUsage,
        by_modality: &[ModalityTokens<'_>],
    ) -> Option<Cost> {
        let rates = self.models.get(&(provider, model) as &dyn PriceKey);
        let tier = rates
            .and_then(|m| m.text)
            .map(|p| p.tier(usage.input_tokens));
        // Whether any `[[unit]]` entry prices this model's tokens (else only its text rates).
        let stated = rates.is_some_and(|m| m.token_units);
        let mut rest_input = usage.input_tokens;
        let mut rest_cached = usage.cached_input_tokens.min(usage.input_tokens);
        let mut rest_output = usage.output_tokens;
        let mut total = Cost::ZERO;
        for part in by_modality {
            let cached = part.cached_input_tokens.min(part.input_tokens);
            let counts = [
                (PriceUnit::InputToken, part.input_tokens - cached),
                (PriceUnit::CachedInputToken, cached),
                (PriceUnit::OutputToken, part.output_tokens),
            ];
            total = total
                + self.tokens_cost(provider, model, tier, stated, Some(part.modality), counts)?;
            rest_input = rest_input.saturating_sub(part.input_tokens);
            rest_cached = rest_cached.saturating_sub(cached);
            rest_output = rest_output.saturating_sub(part.output_tokens);
        }
        let rest_cached = rest_cached.min(rest_input);
        let counts = [
            (PriceUnit::InputToken, rest_input - rest_cached),
            (PriceUnit::CachedInputToken, rest_cached),
            (PriceUnit::OutputToken, rest_output),
        ];
        Some(total + self.tokens_cost(provider, model, tier, stated, None, counts)?)
    }

    /// The cost of token counts of one modality (or none), `None` if a non-zero count is unpriced.
    fn tokens_cost(
        &self,
        provider: &str,
        model: &str,
        tier: Option<TokenPrice>,
        stated: bool,
        modality: Option<&str>,
        counts: [(PriceUnit, u64); 3],
    ) -> Option<Cost> {
        let mut total = Cost::ZERO;
        for (unit, count) in counts {
            if count == 0 {
                continue;
            }
            let rate = self.token_rate(provider, model, tier, stated, unit, modality)?;
            total = total + self.rate_cost(provider, rate, unit, count)?;
        }
        Some(total)
    }

    /// The rate of one token unit, by the rules of [`PriceCatalog::token_cost`].
    fn token_rate(
        &self,
        provider: &str,
        model: &str,
        tier: Option<TokenPrice>,
        stated: bool,
        unit: PriceUnit,
        modality: Option<&str>,
    ) -> Option<Rate> {
        let qualifiers = match modality {
            Some(m) => PriceQualifiers::new().modality(m),
            None => PriceQualifiers::new(),
        };
        let find = |u| {
            stated
                .then(|| self.unit_rate(provider, model, u, &qualifiers))
                .flatten()
        };
        match unit {
            PriceUnit::CachedInputToken => {
                match (
                    find(PriceUnit::CachedInputToken),
                    find(PriceUnit::InputToken),
                ) {
                    (Some(cached), Some(input)) if cached.specificity() >= input.specificity() => {
                        Some(cached.rate)
                    }
                    (Some(cached), None) => Some(cached.rate),
                    // The input rate is this modality's own (or overrides the text rate); its
                    // cache rate is not stated.
                    (_, Some(_)) => None,
                    (None, None) => tier.map(|t| Rate::Usd(t.cached_input.unwrap_or(t.input))),
                }
            }
            _ => find(unit).map(|r| r.rate).or_else(|| {
                tier.map(|t| {
                    Rate::Usd(if unit == PriceUnit::InputToken {
                        t.input
                    } else {
                        t.output
                    })
                })
            }),
        }
    }

    /// The most specific `[[unit]]` entry that applies, `None` if none does or two tie.
    fn unit_rate(
        &self,
        provider: &str,
        model: &str,
        unit: PriceUnit,
        qualifiers: &PriceQualifiers<'_>,
    ) -> Option<&UnitRate> {
        let rates = self.units.get(&(provider, model, unit) as &dyn PriceKey)?;
        let mut best: Option<&UnitRate> = None;
        let mut tied = false;
        for rate in rates.iter().filter(|r| r.applies_to(qualifiers)) {
            match best {
                Some(b) if b.specificity() > rate.specificity() => {}
                Some(b) if b.specificity() == rate.specificity() => tied |= b.rate != rate.rate,
                _ => {
                    best = Some(rate);
                    tied = false;
                }
            }
        }
        if tied { None } else { best }
    }

    /// What `quantity` units at `rate` cost, `None` for credits without a known credit price.
    fn rate_cost(
        &self,
        provider: &str,
        rate: Rate,
        unit: PriceUnit,
        quantity: u64,
    ) -> Option<Cost> {
        let (numerator, mut denominator) = match rate {
            Rate::Usd(price) => (u128::from(price.nanos()), 1),
            Rate::Credits(nano_credits) => (
                u128::from(nano_credits) * u128::from(self.credit_price(provider)?.nanos()),
                NANOS_PER_USD,
            ),
        };
        if unit.per_million() {
            denominator *= u128::from(TOKENS_PER_PRICE);
        }
        Some(scaled(numerator, quantity, denominator))
    }
}

#[cfg(test)]
mod tests;
