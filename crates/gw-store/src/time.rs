//! Wall-clock helpers: unix milliseconds for the database, UTC calendar months for periods.
//!
//! The calendar arithmetic is Howard Hinnant's `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>), so the crate needs
//! no date library for the one thing it does with dates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` as unix milliseconds; times before 1970 count as 0.
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Now, as unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// Unix milliseconds from the database as a [`SystemTime`].
pub(crate) fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The UTC date of `t` as (year, month 1-12, day 1-31) and the seconds into that day.
fn civil(t: SystemTime) -> (i64, u32, u32, u64) {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs % 86_400)
}

/// The UTC calendar month of `t` as a period key: `2026-11`.
/// Its digits are pushed one by one: this runs on every admission, where `format!` with
/// padding costs about 750 instructions.
pub(crate) fn month_key(t: SystemTime) -> String {
    let (year, month, _, _) = civil(t);
    let Some(year) = u32::try_from(year).ok().filter(|y| *y <= 9_999) else {
        return format!("{year:04}-{month:02}");
    };
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let mut key = String::with_capacity(7);
    for n in [year / 1_000, year / 100, year / 10, year] {
        key.push(digit(n));
    }
    key.push('-');
    key.push(digit(month / 10));
    key.push(digit(month));
    key
}

/// Whether `key` has the shape of a period key (`YYYY-MM`, month 01-12).
pub(crate) fn is_month_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..].iter().all(u8::is_ascii_digit)
        && matches!(key[5..].parse::<u32>(), Ok(1..=12))
}

/// `t` in UTC as RFC 3339 to the second: `2026-11-26T08:02:22Z`. For tables and logs.
pub fn format_utc(t: SystemTime) -> String {
    let (year, month, day, secs) = civil(t);
    let (h, m, s) = (secs / 3_600, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// `t` in UTC as RFC 3339 to the microsecond, as a log line's timestamp:
/// `2026-11-26T08:02:22.123456Z`. Formats where it is written, without a `String` of its own.
pub struct UtcMicros(pub SystemTime);

impl UtcMicros {
    /// The timestamp's bytes, for years 0 to 9999 (`None` past them).
    fn stamp(&self) -> Option<[u8; 27]> {
        let (year, month, day, secs) = civil(self.0);
        let year = u64::try_from(year).ok().filter(|y| *y <= 9_999)?;
        let micros = self
            .0
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_micros();
        let mut stamp = *b"0000-00-00T00:00:00.000000Z";
        let fields = [
            (0..4, year),
            (5..7, u64::from(month)),
            (8..10, u64::from(day)),
            (11..13, secs / 3_600),
            (14..16, secs / 60 % 60),
            (17..19, secs % 60),
            (20..26, u64::from(micros)),
        ];
        for (at, mut n) in fields {
            for digit in stamp[at].iter_mut().rev() {
                *digit = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        Some(stamp)
    }

    /// Appends the timestamp to `out` as [`Display`](std::fmt::Display) writes it, without
    /// the formatting machinery: a log line's own hot path.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        match self.stamp() {
            Some(stamp) => out.extend_from_slice(&stamp),
            None => out.extend_from_slice(self.to_string().as_bytes()),
        }
    }
}

impl std::fmt::Display for UtcMicros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(stamp) = self.stamp() {
            // Digits and ASCII punctuation only.
            return f.write_str(std::str::from_utf8(&stamp).unwrap_or_default());
        }
        let (year, month, day, secs) = civil(self.0);
        let (h, m, s) = (secs / 3_600, secs / 60 % 60, secs % 60);
        let micros = self
            .0
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_micros();
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{micros:06}Z"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn months_and_timestamps() {
        let cases = [
            (0, "1970-01", "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02", "2000-02-29T00:00:00Z"), // leap day of a /400 year
            (1_709_251_199, "2024-02", "2024-02-29T23:59:59Z"),
            (1_709_251_200, "2024-03", "2024-03-01T00:00:00Z"),
            (1_798_761_599, "2026-12", "2026-12-31T23:59:59Z"),
            (1_798_761_600, "2027-01", "2027-01-01T00:00:00Z"),
            (1_795_680_142, "2026-11", "2026-11-26T08:02:22Z"),
        ];
        for (secs, month, stamp) in cases {
            assert_eq!(month_key(at(secs)), month, "{secs}");
            assert_eq!(format_utc(at(secs)), stamp, "{secs}");
        }
        // Past the year 9999 the key takes five digits of year, as `{:04}` prints it.
        let far = at(253_402_300_800);
        assert_eq!(month_key(far), "10000-01");
        for secs in (0..253_402_300_800u64).step_by(86_400 * 7 + 12_345) {
            let (year, month, _, _) = civil(at(secs));
            assert_eq!(
                month_key(at(secs)),
                format!("{year:04}-{month:02}"),
                "{secs}"
            );
        }
        let t = at(1_795_680_142) + Duration::from_micros(123_456);
        assert_eq!(UtcMicros(t).to_string(), "2026-11-26T08:02:22.123456Z");
        assert_eq!(UtcMicros(at(0)).to_string(), "1970-01-01T00:00:00.000000Z");
        // Past the year 9999 the year takes five digits, as `{:04}` prints it.
        let far = at(253_402_300_800) + Duration::from_micros(7);
        assert_eq!(UtcMicros(far).to_string(), "10000-01-01T00:00:00.000007Z");
        for t in [t, at(0), at(951_782_400), far] {
            let mut pushed = b"> ".to_vec();
            UtcMicros(t).push_to(&mut pushed);
            assert_eq!(pushed, format!("> {}", UtcMicros(t)).into_bytes());
        }
    }

    #[test]
    fn month_key_shape() {
        for good in ["2026-11", "1999-01", "2030-12"] {
            assert!(is_month_key(good), "{good}");
        }
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "",
            "2026-11-01",
        ] {
            assert!(!is_month_key(bad), "{bad}");
        }
    }

    #[test]
    fn unix_ms_round_trips() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_680_142_123);
        assert_eq!(unix_ms(t), 1_795_680_142_123);
        assert_eq!(from_unix_ms(unix_ms(t)), t);
    }
}
