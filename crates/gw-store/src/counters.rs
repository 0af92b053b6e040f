//! The per-period usage counters that plan limits are checked against.

use std::fmt;

use gateway_core::{Amount, Cost, Error, Modality, Result};

/// One usage counter of a user in a billing period.
///
/// The names ([`Counter::as_str`]) are the ones contract fixtures use in `prior_usage` and the
/// ones quota errors name. Every counter holds a whole number; [`Counter::CostUsd`] holds
/// nano-USD and reads and prints as a decimal amount of dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Text requests.
    TextRequests,
    /// Text tokens, prompt and output.
    TextTokens,
    /// Image requests.
    ImageRequests,
    /// Images.
    ImageUnits,
    /// Video requests.
    VideoRequests,
    /// Seconds of video.
    VideoUnits,
    /// Audio requests.
    AudioRequests,
    /// Seconds of audio or characters of speech.
    AudioUnits,
    /// Search requests.
    SearchRequests,
    /// Search credits.
    SearchUnits,
    /// Money spent, in nano-USD.
    CostUsd,
}

/// How many counters there are.
pub(crate) const COUNTERS: usize = 11;

impl Counter {
    /// Every counter, in the order of the database columns.
    pub const ALL: [Counter; COUNTERS] = [
        Self::TextRequests,
        Self::TextTokens,
        Self::ImageRequests,
        Self::ImageUnits,
        Self::VideoRequests,
        Self::VideoUnits,
        Self::AudioRequests,
        Self::AudioUnits,
        Self::SearchRequests,
        Self::SearchUnits,
        Self::CostUsd,
    ];

    /// The counter's name: `text_requests`, `image_units`, `cost_usd`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TextRequests => "text_requests",
            Self::TextTokens => "text_tokens",
            Self::ImageRequests => "image_requests",
            Self::ImageUnits => "image_units",
            Self::VideoRequests => "video_requests",
            Self::VideoUnits => "video_units",
            Self::AudioRequests => "audio_requests",
            Self::AudioUnits => "audio_units",
            Self::SearchRequests => "search_requests",
            Self::SearchUnits => "search_units",
            Self::CostUsd => "cost_usd",
        }
    }

    /// The counter named `name`.
    pub fn parse(name: &str) -> Option<Counter> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The modality the counter belongs to; `None` for [`Counter::CostUsd`], which spans all.
    pub fn modality(self) -> Option<Modality> {
        Some(match self {
            Self::TextRequests | Self::TextTokens => Modality::Text,
            Self::ImageRequests | Self::ImageUnits => Modality::Image,
            Self::VideoRequests | Self::VideoUnits => Modality::Video,
            Self::AudioRequests | Self::AudioUnits => Modality::Audio,
            Self::SearchRequests | Self::SearchUnits => Modality::Search,
            Self::CostUsd => return None,
        })
    }

    /// The request counter of `modality`.
    pub fn requests_of(modality: Modality) -> Counter {
        match modality {
            Modality::Text => Self::TextRequests,
            Modality::Image => Self::ImageRequests,
            Modality::Video => Self::VideoRequests,
            Modality::Audio => Self::AudioRequests,
            Modality::Search => Self::SearchRequests,
        }
    }

    /// The volume counter of `modality`: tokens for text, units for the others.
    pub fn volume_of(modality: Modality) -> Counter {
        match modality {
            Modality::Text => Self::TextTokens,
            Modality::Image => Self::ImageUnits,
            Modality::Video => Self::VideoUnits,
            Modality::Audio => Self::AudioUnits,
            Modality::Search => Self::SearchUnits,
        }
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

    pub(crate) fn index(self) -> usize {
        self as usize
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
                let known: Vec<&str> = Counter::ALL.iter().map(|c| c.as_str()).collect();
                Error::invalid_request(format!(
                    "unknown counter `{name}` (known: {})",
                    known.join(", ")
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
    d[Counter::requests_of(modality).index()] = clamp(amount.requests);
    d[Counter::volume_of(modality).index()] = clamp(match modality {
        Modality::Text => amount.tokens,
        _ => amount.units,
    });
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
