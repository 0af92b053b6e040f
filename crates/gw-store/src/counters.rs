//! The per-period usage counters that plan limits are checked against.
//!
//! Every [`Modality`] has two counters, its requests and its volume, plus one money counter for
//! all: they are derived from [`Modality::ALL`], so a new modality brings its counters (and, the
//! database holding one row per counter, needs no migration).

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use gateway_core::{Amount, Cost, Error, Modality, Result};

/// One usage counter of a user in a billing period.
///
/// The names ([`Counter::as_str`]) are the ones contract fixtures use in `prior_usage` and the
/// ones quota errors name: `<modality>_requests`, `<modality>_tokens` for text and
/// `<modality>_units` for the other modalities, and `cost_usd`. Every counter holds a whole
/// number; [`Counter::CostUsd`] holds nano-USD and reads and prints as a decimal amount of
/// dollars.
///
/// Counters order as [`Counter::ALL`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Requests of a modality (`text_requests`, `image_requests`, ...).
    Requests(Modality),
    /// What a modality's requests used ([`Amount::volume`]): tokens for text, prompt and output
    /// (`text_tokens`); units for the others (`image_units`: images; `video_units`: seconds of
    /// video; `audio_units`: seconds of audio or characters of speech; `search_units`: credits;
    /// `training_units`: training steps).
    Volume(Modality),
    /// Money spent, in nano-USD (`cost_usd`).
    CostUsd,
}

/// How many counters there are: two per modality, and the money.
pub(crate) const COUNTERS: usize = 2 * Modality::ALL.len() + 1;

// Shorthands for the counters of today's modalities, so callers can keep writing
// `Counter::TextRequests`; a modality added later is reached as `Counter::Requests(m)`.
#[allow(non_upper_case_globals)]
impl Counter {
    /// `text_requests`: [`Counter::Requests`] of [`Modality::Text`].
    pub const TextRequests: Counter = Counter::Requests(Modality::Text);
    /// `text_tokens`: [`Counter::Volume`] of [`Modality::Text`].
    pub const TextTokens: Counter = Counter::Volume(Modality::Text);
    /// `image_requests`.
    pub const ImageRequests: Counter = Counter::Requests(Modality::Image);
    /// `image_units`: images.
    pub const ImageUnits: Counter = Counter::Volume(Modality::Image);
    /// `video_requests`.
    pub const VideoRequests: Counter = Counter::Requests(Modality::Video);
    /// `video_units`: seconds of video.
    pub const VideoUnits: Counter = Counter::Volume(Modality::Video);
    /// `audio_requests`.
    pub const AudioRequests: Counter = Counter::Requests(Modality::Audio);
    /// `audio_units`: seconds of audio or characters of speech.
    pub const AudioUnits: Counter = Counter::Volume(Modality::Audio);
    /// `search_requests`.
    pub const SearchRequests: Counter = Counter::Requests(Modality::Search);
    /// `search_units`: search credits.
    pub const SearchUnits: Counter = Counter::Volume(Modality::Search);
    /// `training_requests`: fine-tuning jobs.
    pub const TrainingRequests: Counter = Counter::Requests(Modality::Training);
    /// `training_units`: training steps.
    pub const TrainingUnits: Counter = Counter::Volume(Modality::Training);
}

/// The names of [`Counter::ALL`], in its order; built once, so that [`Counter::as_str`] can
/// hand out `&'static str`s for modalities it has never heard of by name.
static NAMES: LazyLock<[String; COUNTERS]> = LazyLock::new(|| {
    std::array::from_fn(|i| match Counter::ALL[i] {
        Counter::Requests(m) => format!("{m}_requests"),
        Counter::Volume(m) if counts_tokens(m) => format!("{m}_tokens"),
        Counter::Volume(m) => format!("{m}_units"),
        Counter::CostUsd => "cost_usd".to_owned(),
    })
});

impl Counter {
    /// Every counter: per modality of [`Modality::ALL`] its requests then its volume, and
    /// [`Counter::CostUsd`] last.
    pub const ALL: [Counter; COUNTERS] = {
        let mut all = [Counter::CostUsd; COUNTERS];
        let mut i = 0;
        while i < Modality::ALL.len() {
            all[2 * i] = Counter::Requests(Modality::ALL[i]);
            all[2 * i + 1] = Counter::Volume(Modality::ALL[i]);
            i += 1;
        }
        all
    };

    /// The counter's name: `text_requests`, `image_units`, `cost_usd`, ...
    pub fn as_str(self) -> &'static str {
        &NAMES[self.index()]
    }

    /// The counter named `name`.
    pub fn parse(name: &str) -> Option<Counter> {
        NAMES
            .iter()
            .position(|n| n == name)
            .map(|i| Counter::ALL[i])
    }

    /// The modality the counter belongs to; `None` for [`Counter::CostUsd`], which spans all.
    pub fn modality(self) -> Option<Modality> {
        match self {
            Self::Requests(m) | Self::Volume(m) => Some(m),
            Self::CostUsd => None,
        }
    }

    /// The request counter of `modality`.
    pub fn requests_of(modality: Modality) -> Counter {
        Self::Requests(modality)
    }

    /// The volume counter of `modality`: tokens for text, units for the others.
    pub fn volume_of(modality: Modality) -> Counter {
        Self::Volume(modality)
    }

    /// Parses a value of this counter: a whole number, or for [`Counter::CostUsd`] a decimal
    /// amount of USD (`"0.25"`), returned in nano-USD.
    pub fn parse_value(self, text: &str) -> Result<u64> {
        let text = text.trim();
        if self == Self::CostUsd {
            return text
                .parse::<Cost>()
                .map(Cost::nanos)
                .map_err(|e| Error::invalid_request(format!("{}: {e}", self.as_str())));
        }
        text.parse::<u64>().map_err(|_| {
            Error::invalid_request(format!(
                "{}: `{text}` is not a non-negative whole number",
                self.as_str()
            ))
        })
    }

    /// Prints a value of this counter: the number, or for [`Counter::CostUsd`] exact decimal USD.
    pub fn format_value(self, value: u64) -> String {
        if self == Self::CostUsd {
            Cost::from_nanos(value).to_string()
        } else {
            value.to_string()
        }
    }

    /// The counter's place in [`Counter::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Requests(m) => 2 * modality_index(m),
            Self::Volume(m) => 2 * modality_index(m) + 1,
            Self::CostUsd => COUNTERS - 1,
        }
    }

    /// The counters a request of `modality` adds to: its requests, its volume, the money.
    pub(crate) fn of(modality: Modality) -> [Counter; 3] {
        [
            Self::Requests(modality),
            Self::Volume(modality),
            Self::CostUsd,
        ]
    }
}

/// Where `modality` is in [`Modality::ALL`]. The core promises that `ALL` lists every variant
/// (it is what plans and names are built from), so a miss is a bug there.
fn modality_index(modality: Modality) -> usize {
    Modality::ALL
        .iter()
        .position(|&m| m == modality)
        .unwrap_or_else(|| panic!("Modality::ALL does not list {modality:?}"))
}

/// Whether the volume of `modality` is counted in tokens (text) rather than units, as
/// [`Amount::volume`] counts it.
pub(crate) fn counts_tokens(modality: Modality) -> bool {
    modality == Modality::Text
}

impl PartialOrd for Counter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Counter {
    fn cmp(&self, other: &Self) -> Ordering {
        self.index().cmp(&other.index())
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value for every [`Counter`]: what a user used in a period, or an amount to add to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    values: [u64; COUNTERS],
}

impl Counters {
    /// All zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `counter` (nano-USD for [`Counter::CostUsd`]).
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter.index()]
    }

    /// Sets `counter` to `value`.
    pub fn set(&mut self, counter: Counter, value: u64) {
        self.values[counter.index()] = value;
    }

    /// These counters with `counter` set to `value`.
    pub fn with(mut self, counter: Counter, value: u64) -> Self {
        self.set(counter, value);
        self
    }

    /// The money counter as a [`Cost`].
    pub fn cost(&self) -> Cost {
        Cost::from_nanos(self.get(Counter::CostUsd))
    }

    /// Every counter with its value, in [`Counter::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    /// Whether every counter is zero.
    pub fn is_zero(&self) -> bool {
        self.values.iter().all(|&v| v == 0)
    }

    /// Counters from `(name, value)` pairs as fixtures write them
    /// (`[("text_requests", "50"), ("cost_usd", "0.5")]`); an unknown name or a bad value is an
    /// [`ErrorKind::InvalidRequest`](gateway_core::ErrorKind::InvalidRequest) naming it.
    pub fn parse_named<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut counters = Self::new();
        for (name, value) in pairs {
            let counter = Counter::parse(name).ok_or_else(|| {
                Error::invalid_request(format!(
                    "unknown counter `{name}` (known: {})",
                    NAMES.join(", ")
                ))
            })?;
            counters.set(counter, counter.parse_value(value)?);
        }
        Ok(counters)
    }
}

/// The largest amount one request may add to one counter; larger estimates are cut to it, so
/// the database's 64-bit sums cannot overflow. 10^15 tokens, units or nano-USD (a million
/// dollars) is far beyond any real request.
pub(crate) const MAX_AMOUNT: u64 = 1_000_000_000_000_000;

fn clamp(v: u64) -> i64 {
    v.min(MAX_AMOUNT) as i64
}

/// What `amount` of `modality` adds to each counter (cost counts 0 when unknown).
pub(crate) fn amount_deltas(modality: Modality, amount: &Amount) -> [i64; COUNTERS] {
    let mut d = [0i64; COUNTERS];
    d[Counter::Requests(modality).index()] = clamp(amount.requests);
    d[Counter::Volume(modality).index()] = clamp(amount.volume(modality));
    d[Counter::CostUsd.index()] = clamp(amount.cost.map_or(0, Cost::nanos));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Counter::ALL {
            assert_eq!(Counter::parse(c.as_str()), Some(c));
            assert_eq!(Counter::ALL[c.index()], c);
        }
        assert_eq!(Counter::parse("text"), None);
        assert_eq!(Counter::parse("cost_nanos"), None);
    }

    /// The names are an external contract (fixtures, quota errors, the usage API, database
    /// rows): today's modalities must keep exactly these.
    #[test]
    fn names_of_todays_modalities() {
        let names: Vec<&str> = Counter::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "text_requests",
                "text_tokens",
                "image_requests",
                "image_units",
                "video_requests",
                "video_units",
                "audio_requests",
                "audio_units",
                "search_requests",
                "search_units",
                "training_requests",
                "training_units",
                "cost_usd",
            ]
        );
        assert_eq!(Counter::TextTokens, Counter::Volume(Modality::Text));
        assert_eq!(Counter::SearchUnits.as_str(), "search_units");
        assert!(Counter::TextRequests < Counter::TextTokens);
        assert!(Counter::TextTokens < Counter::ImageRequests);
        assert!(Counter::SearchUnits < Counter::CostUsd);
    }

    #[test]
    fn every_modality_has_two_counters() {
        for m in Modality::ALL {
            let [requests, volume, cost] = Counter::of(m);
            assert_eq!(requests.modality(), Some(m));
            assert_eq!(volume.modality(), Some(m));
            assert!(requests.as_str().starts_with(m.as_str()));
            assert_eq!(cost, Counter::CostUsd);
        }
    }

    #[test]
    fn values_parse_and_print() {
        assert_eq!(Counter::TextRequests.parse_value("50").unwrap(), 50);
        assert_eq!(Counter::CostUsd.parse_value("0.25").unwrap(), 250_000_000);
        assert_eq!(Counter::CostUsd.format_value(250_000_000), "0.25");
        assert!(Counter::TextRequests.parse_value("-1").is_err());
        assert!(Counter::TextRequests.parse_value("1.5").is_err());
        assert!(Counter::CostUsd.parse_value("-0.1").is_err());
    }

    #[test]
    fn fixture_pairs() {
        let c = Counters::parse_named([("text_requests", "50"), ("cost_usd", "1.5")]).unwrap();
        assert_eq!(c.get(Counter::TextRequests), 50);
        assert_eq!(c.cost().to_string(), "1.5");
        let err = Counters::parse_named([("text_request", "1")]).unwrap_err();
        assert!(err.message().contains("text_request"), "{err}");
        assert!(err.message().contains("training_units, cost_usd"), "{err}");
    }

    #[test]
    fn deltas_follow_the_modality() {
        let amount = Amount {
            requests: 1,
            tokens: 100,
            units: 3,
            cost: Some(Cost::from_nanos(7)),
        };
        let text = amount_deltas(Modality::Text, &amount);
        assert_eq!(text[Counter::TextRequests.index()], 1);
        assert_eq!(text[Counter::TextTokens.index()], 100);
        assert_eq!(text[Counter::CostUsd.index()], 7);
        assert_eq!(text.iter().sum::<i64>(), 108);
        let image = amount_deltas(Modality::Image, &amount);
        assert_eq!(image[Counter::ImageUnits.index()], 3);
        assert_eq!(image.iter().sum::<i64>(), 11);
    }
}
