//! Usage counts and exact money.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

/// Token counts of one text request.
///
/// `output_tokens` includes `reasoning_tokens`, and `input_tokens` includes `cached_input_tokens`,
/// so `input_tokens + output_tokens` is the total the provider bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Generated tokens, reasoning ("thinking") tokens included.
    pub output_tokens: u64,
    /// The part of `output_tokens` the model spent thinking.
    pub reasoning_tokens: u64,
    /// The part of `input_tokens` served from the provider's prompt cache.
    pub cached_input_tokens: u64,
}

impl TokenUsage {
    /// Prompt plus generated tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// What one call used, in the terms plans count and prices apply to: tokens for text and
/// embeddings, units for media and search (images; seconds of video or audio; characters of
/// speech; searches or credits), whichever the modality bills by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens (text, embeddings, token-billed media models).
    pub tokens: TokenUsage,
    /// Media or search units.
    pub units: u64,
}

impl Usage {
    /// Token usage alone.
    pub fn tokens(tokens: TokenUsage) -> Self {
        Self { tokens, units: 0 }
    }

    /// Units alone.
    pub fn units(units: u64) -> Self {
        Self {
            tokens: TokenUsage::default(),
            units,
        }
    }

    /// Whether nothing at all was counted (the provider reported no usage).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One priced quantity of a call that is not billed by tokens (a search, a page of content, a
/// provider credit, an image), with what its price may depend on: the catalog's `[[unit]]`
/// entries price it ([`PriceCatalog::charges_cost`](crate::PriceCatalog::charges_cost)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Charge {
    /// What is counted.
    pub unit: crate::PriceUnit,
    /// How many.
    pub quantity: u64,
    /// The output size, where the price depends on it.
    pub size: Option<String>,
    /// The output quality, where the price depends on it.
    pub quality: Option<String>,
    /// The video resolution, where the price depends on it.
    pub resolution: Option<String>,
    /// The search depth or type, where the price depends on it.
    pub depth: Option<String>,
    /// The modality of priced tokens (`image` for a token-billed image model's output).
    pub modality: Option<String>,
}

impl Charge {
    /// `quantity` of `unit`, with no qualifier.
    pub fn new(unit: crate::PriceUnit, quantity: u64) -> Self {
        Self {
            unit,
            quantity,
            size: None,
            quality: None,
            resolution: None,
            depth: None,
            modality: None,
        }
    }

    /// Sets the search depth or type.
    pub fn depth(mut self, depth: impl Into<String>) -> Self {
        self.depth = Some(depth.into());
        self
    }

    /// Sets the output size.
    pub fn size(mut self, size: impl Into<String>) -> Self {
        self.size = Some(size.into());
        self
    }

    /// Sets the output quality.
    pub fn quality(mut self, quality: impl Into<String>) -> Self {
        self.quality = Some(quality.into());
        self
    }

    /// Sets the video resolution.
    pub fn resolution(mut self, resolution: impl Into<String>) -> Self {
        self.resolution = Some(resolution.into());
        self
    }

    /// Sets the modality of priced tokens.
    pub fn modality(mut self, modality: impl Into<String>) -> Self {
        self.modality = Some(modality.into());
        self
    }

    /// The qualifiers, as the catalog matches them.
    pub fn qualifiers(&self) -> crate::PriceQualifiers<'_> {
        let mut q = crate::PriceQualifiers::new();
        if let Some(v) = &self.size {
            q = q.size(v);
        }
        if let Some(v) = &self.quality {
            q = q.quality(v);
        }
        if let Some(v) = &self.resolution {
            q = q.resolution(v);
        }
        if let Some(v) = &self.depth {
            q = q.depth(v);
        }
        if let Some(v) = &self.modality {
            q = q.modality(v);
        }
        q
    }
}

/// What a call bills, for calls billed per unit rather than per token: the units its plan
/// counts (`search_units`, `image_units`, ...) and the charges the catalog prices, or the
/// provider's own statement of the cost where it makes one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Billing {
    /// The units plans count: a provider's credits where it bills in credits, else the
    /// billable units (searches, pages, images).
    pub units: u64,
    /// What the call is priced by.
    pub charges: Vec<Charge>,
    /// The cost in USD the provider reported for this call (Exa's `costDollars.total`): when
    /// set, it is what the call is charged, rather than the catalog's price of `charges`.
    pub reported_cost: Option<Cost>,
}

impl Billing {
    /// `units` counted, priced by `charges`.
    pub fn new(units: u64, charges: Vec<Charge>) -> Self {
        Self {
            units,
            charges,
            reported_cost: None,
        }
    }

    /// The provider reported the call cost `cost`.
    pub fn reported_cost(mut self, cost: Cost) -> Self {
        self.reported_cost = Some(cost);
        self
    }
}

/// An exact amount of US dollars, held as an integer count of nano-dollars (10⁻⁹ USD).
///
/// A token of a cheap model costs about a tenth of a micro-dollar, so floating point would lose
/// money in sums; nano-dollars keep three more digits than that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cost {
    nanos: u64,
}

const NANOS_PER_USD: u64 = 1_000_000_000;

impl Cost {
    /// Nothing.
    pub const ZERO: Cost = Cost { nanos: 0 };

    /// `nanos` nano-dollars.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// The amount in nano-dollars.
    pub const fn nanos(self) -> u64 {
        self.nanos
    }

    /// `price_per_million` × `units` / 10⁶, rounded half up to the nano-dollar.
    pub fn per_million(price_per_million: Cost, units: u64) -> Cost {
        let exact = u128::from(price_per_million.nanos) * u128::from(units);
        let rounded = (exact + 500_000) / 1_000_000;
        Cost {
            nanos: u64::try_from(rounded).unwrap_or(u64::MAX),
        }
    }

    /// `unit_price` × `units`.
    pub fn times(self, units: u64) -> Cost {
        Cost {
            nanos: self.nanos.saturating_mul(units),
        }
    }
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, rhs: Cost) -> Cost {
        Cost {
            nanos: self.nanos.saturating_add(rhs.nanos),
        }
    }
}

impl Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::ZERO, Add::add)
    }
}

/// Prints the exact decimal number of dollars, without trailing zeros (`0.0000015`, `12`).
impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written backwards into a buffer on the stack, without the formatting machinery: every
        // answer shows its cost twice (a header and its usage), and a `format!` of the
        // decimals cost an allocation each time. The widest amount, `u64::MAX` nano-dollars, is
        // 11 digits, a point and 9 decimals.
        let mut buf = [0u8; 21];
        let mut start = buf.len();
        let mut frac = self.nanos % NANOS_PER_USD;
        if frac != 0 {
            let mut decimals = 9;
            while frac.is_multiple_of(10) {
                frac /= 10;
                decimals -= 1;
            }
            for _ in 0..decimals {
                start -= 1;
                buf[start] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            start -= 1;
            buf[start] = b'.';
        }
        let mut whole = self.nanos / NANOS_PER_USD;
        loop {
            start -= 1;
            buf[start] = b'0' + (whole % 10) as u8;
            whole /= 10;
            if whole == 0 {
                break;
            }
        }
        f.write_str(std::str::from_utf8(&buf[start..]).map_err(|_| fmt::Error)?)
    }
}

/// The error of parsing a [`Cost`] from a decimal string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCostError(String);

impl fmt::Display for ParseCostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a non-negative decimal amount of USD with at most 9 decimals",
            self.0
        )
    }
}

impl std::error::Error for ParseCostError {}

/// Parses a decimal amount of dollars such as `"0.10"` or `"2.5"`, exactly.
impl FromStr for Cost {
    type Err = ParseCostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCostError(s.to_owned());
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && frac.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(err());
        }
        if frac.len() > 9 {
            return Err(err());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err())?
        };
        let frac_nanos: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().map_err(|_| err())?
        };
        whole
            .checked_mul(NANOS_PER_USD)
            .and_then(|n| n.checked_add(frac_nanos))
            .map(Cost::from_nanos)
            .ok_or_else(err)
    }
}

/// Prices of a token-billed model, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPrice {
    /// Per million uncached prompt tokens.
    pub input: Cost,
    /// Per million generated tokens (reasoning included).
    pub output: Cost,
    /// Per million cached prompt tokens; the input price when the provider has no cache rate.
    pub cached_input: Option<Cost>,
}

impl TokenPrice {
    /// What `usage` costs at these prices.
    pub fn cost(&self, usage: &TokenUsage) -> Cost {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let uncached = usage.input_tokens - cached;
        Cost::per_million(self.input, uncached)
            + Cost::per_million(self.cached_input.unwrap_or(self.input), cached)
            + Cost::per_million(self.output, usage.output_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_parses_and_prints_exactly() {
        for (text, nanos, shown) in [
            ("0.10", 100_000_000, "0.1"),
            ("2.5", 2_500_000_000, "2.5"),
            ("12", 12_000_000_000, "12"),
            ("0.000000001", 1, "0.000000001"),
            (".5", 500_000_000, "0.5"),
        ] {
            let cost: Cost = text.parse().unwrap();
            assert_eq!(cost.nanos(), nanos, "{text}");
            assert_eq!(cost.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn cost_prints_every_width_of_whole_and_decimals() {
        // What the display wrote before it formatted on the stack: `format!` of the decimals.
        fn shown(nanos: u64) -> String {
            let (whole, frac) = (nanos / NANOS_PER_USD, nanos % NANOS_PER_USD);
            if frac == 0 {
                return whole.to_string();
            }
            let decimals = format!("{frac:09}");
            format!("{whole}.{}", decimals.trim_end_matches('0'))
        }
        let edges = [
            0,
            1,
            9,
            10,
            999_999_999,
            NANOS_PER_USD,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut amounts = edges.to_vec();
        // Every place a digit can hold, with each digit, and amounts with trailing zeros.
        for place in 0..20 {
            for digit in 1..10u64 {
                if let Some(n) = 10u64.checked_pow(place).and_then(|p| p.checked_mul(digit)) {
                    amounts.extend([n, n + 1, n.saturating_sub(1), n + 123_456_789]);
                }
            }
        }
        for nanos in amounts {
            let cost = Cost::from_nanos(nanos);
            assert_eq!(cost.to_string(), shown(nanos), "{nanos}");
            assert_eq!(cost.to_string().parse::<Cost>(), Ok(cost), "{nanos}");
        }
    }

    #[test]
    fn cost_rejects_bad_input() {
        for bad in ["", ".", "-1", "1.0000000001", "1e3", "abc", "1.2.3"] {
            assert!(bad.parse::<Cost>().is_err(), "{bad}");
        }
    }

    #[test]
    fn token_price_splits_cached_input() {
        // gemini-2.0-flash: $0.10 in, $0.40 out, $0.025 cached per 1M tokens.
        let price = TokenPrice {
            input: "0.10".parse().unwrap(),
            output: "0.40".parse().unwrap(),
            cached_input: Some("0.025".parse().unwrap()),
        };
        let usage = TokenUsage {
            input_tokens: 1_000,
            output_tokens: 500,
            reasoning_tokens: 100,
            cached_input_tokens: 400,
        };
        // 600 × 100 + 400 × 25 + 500 × 400 nano-dollars.
        assert_eq!(price.cost(&usage).nanos(), 60_000 + 10_000 + 200_000);
    }

    #[test]
    fn one_cheap_token_is_not_rounded_away() {
        let cost = Cost::per_million("0.10".parse().unwrap(), 1);
        assert_eq!(cost.to_string(), "0.0000001");
    }
}
