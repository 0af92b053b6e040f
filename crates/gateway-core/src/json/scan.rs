//! A JSON text read a token at a time, for the few shapes read on every event of a stream.
//!
//! serde_json reads a stream chunk of a chat answer (about 150 bytes) in some 4,000 instructions,
//! most of them in the derived visitors of fields the gateway does not keep; read by hand, the
//! same chunk takes a fraction of that. A [`Scan`] checks everything it passes over as
//! serde_json would (string escapes, control characters, number grammar, nesting) and gives up
//! (`None`) on anything it is not sure of: a key written with escapes, a lone surrogate, a
//! nesting deeper than [`MAX_DEPTH`]. A caller that gets `None` reads the same text with
//! serde_json, which decides: a text read by hand is one serde_json reads the same way, and
//! every error is serde_json's own.

use std::borrow::Cow;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::de::value::StrDeserializer;

/// The deepest nesting [`Scan::skip`] follows before giving up (serde_json's own limit is
/// 128).
pub const MAX_DEPTH: usize = 64;

/// A JSON text being read from the front. Every method returns `None` when the text is not
/// what the method reads (or not valid JSON there); the scan is then to be abandoned.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    text: &'a str,
    at: usize,
}

/// An object being read by [`Scan::key`].
#[derive(Debug)]
pub struct Object {
    first: bool,
}

/// An array being read by [`Scan::item`].
#[derive(Debug)]
pub struct Array {
    first: bool,
}

/// The fields of an object read so far, by number: a field given twice makes serde's derived
/// readers refuse the object (even twice `null`), so a hand reader must not take it.
#[derive(Debug, Default)]
pub struct Seen(u32);

impl Seen {
    /// `Some` the first time `field` (below 32) is seen, `None` after.
    pub fn first(&mut self, field: u32) -> Option<()> {
        let bit = 1 << field;
        let first = self.0 & bit == 0;
        self.0 |= bit;
        first.then_some(())
    }
}

impl<'a> Scan<'a> {
    /// A scan at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after any whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&b) = bytes.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let rest = &self.bytes()[self.at..];
        rest.starts_with(word.as_bytes())
            .then(|| self.at += word.len())
    }

    /// Whether the next value is `null`, consuming it if it is.
    pub fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal("null").is_some()
    }

    /// Reads the `{` of an object; [`Scan::key`] then reads its keys.
    pub fn object(&mut self) -> Option<Object> {
        self.eat(b'{')?;
        Some(Object { first: true })
    }

    /// The next key of `object` and its `:`, or `Some(None)` at its `}`. A key written with an
    /// escape gives up: its text is not what the bytes say.
    pub fn key(&mut self, object: &mut Object) -> Option<Option<&'a str>> {
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(None);
        }
        if !std::mem::take(&mut object.first) {
            self.eat(b',')?;
        }
        self.eat(b'"')?;
        let start = self.at;
        let end = self.string_end()?;
        let key = self.text.get(start..end)?;
        self.at = end + 1;
        self.eat(b':')?;
        Some(Some(key))
    }

    /// Reads the `[` of an array; [`Scan::item`] then steps through its items.
    pub fn array(&mut self) -> Option<Array> {
        self.eat(b'[')?;
        Some(Array { first: true })
    }

    /// Whether another item of `array` follows (then positioned on it), `Some(false)` at its
    /// `]`.
    pub fn item(&mut self, array: &mut Array) -> Option<bool> {
        if self.peek()? == b']' {
            self.at += 1;
            return Some(false);
        }
        if !std::mem::take(&mut array.first) {
            self.eat(b',')?;
        }
        Some(true)
    }

    /// Where the string starting at the current position (just after its `"`) ends, when it
    /// has no escape; `None` at an escape, a control character or the end of the text.
    fn string_end(&self) -> Option<usize> {
        let end = special(self.bytes(), self.at);
        (*self.bytes().get(end)? == b'"').then_some(end)
    }

    /// Reads a string, its escapes decoded.
    pub fn str(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        if let Some(end) = self.string_end() {
            self.at = end + 1;
            return Some(Cow::Borrowed(self.text.get(start..end)?));
        }
        self.escaped_str(start).map(Cow::Owned)
    }

    /// The string starting at `start` (just after its `"`), which has escapes, decoded.
    fn escaped_str(&mut self, start: usize) -> Option<String> {
        let bytes = self.bytes();
        let mut out = String::new();
        let mut plain = start;
        let mut i = start;
        loop {
            match *bytes.get(i)? {
                b'"' => {
                    out.push_str(self.text.get(plain..i)?);
                    self.at = i + 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(self.text.get(plain..i)?);
                    let (c, len) = escape(&bytes[i + 1..])?;
                    out.push(c);
                    i += 1 + len;
                    plain = i;
                }
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
    }

    /// Reads a string as [`Scan::str`] does, with where it is in the text (its quotes
    /// included).
    pub fn str_at(&mut self) -> Option<(Cow<'a, str>, Range<usize>)> {
        self.peek()?;
        let start = self.at;
        let text = self.str()?;
        Some((text, start..self.at))
    }

    /// What is left of the text, unread.
    pub fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal("true").map(|()| true),
            b'f' => self.literal("false").map(|()| false),
            _ => None,
        }
    }

    /// Reads a whole number (no sign, fraction or exponent) that fits a `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.peek()?;
        let bytes = self.bytes();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&b) = bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        // A leading zero is only `0` itself; a fraction or an exponent is not a whole number
        // to serde_json's integer fields.
        let valid = digits == 1 || (digits > 1 && bytes[start] != b'0');
        (valid && !matches!(bytes.get(self.at), Some(b'.' | b'e' | b'E'))).then_some(value)
    }

    /// Reads a whole number that fits a `u32`.
    #[inline]
    pub fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    /// Reads a string, as an owned `String`.
    #[inline]
    pub fn string(&mut self) -> Option<String> {
        self.str().map(Cow::into_owned)
    }

    /// Reads a string naming a variant of `T` (an enum of unit variants), named through `T`'s
    /// own `Deserialize`, so that the hand reading and serde's cannot differ.
    pub fn named<T: DeserializeOwned>(&mut self) -> Option<T> {
        let name = self.str()?;
        T::deserialize(StrDeserializer::<serde::de::value::Error>::new(&name)).ok()
    }

    /// Reads the next value with serde_json as `T`, from where the scan is: for a value whose
    /// type has a schema of its own (a tool's JSON schema, say), read once, and as serde_json
    /// reads it inside the whole text. One difference: serde_json refuses a text nested more
    /// than 128 levels deep, and counts them here from this value, not from the text's top.
    pub fn value<T: DeserializeOwned>(&mut self) -> Option<T> {
        let mut values = serde_json::Deserializer::from_str(self.rest()).into_iter::<T>();
        let value = values.next()?.ok()?;
        // serde_json stops at the value's end (a `,`, `}` or `]` may follow, which it checks
        // is not part of the value): that is a character boundary.
        self.at += values.byte_offset();
        Some(value)
    }

    /// `null` as `None`, anything else read by `read`: how an `Option` field reads its value.
    /// (These small readers are inlined into the provider's reader: called, each costs a call
    /// a field, about 5,000 instructions on a Gemini stream.)
    #[inline]
    pub fn or_null<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null() {
            return Some(None);
        }
        read(self).map(Some)
    }

    /// Reads an array, each item by `read`.
    #[inline]
    pub fn list<T>(&mut self, mut read: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut array = self.array()?;
        let mut items = Vec::new();
        while self.item(&mut array)? {
            items.push(read(self)?);
        }
        Some(items)
    }

    /// Passes over one value of any kind, checking it as serde_json does.
    pub fn skip(&mut self) -> Option<()> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' if depth == MAX_DEPTH => None,
            b'{' => {
                let mut object = self.object()?;
                while self.key_skipping_escapes(&mut object)? {
                    self.skip_at(depth + 1)?;
                }
                Some(())
            }
            b'[' => {
                let mut array = self.array()?;
                while self.item(&mut array)? {
                    self.skip_at(depth + 1)?;
                }
                Some(())
            }
            b'"' => self.skip_str(),
            b'n' => self.literal("null"),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// Like [`Scan::key`] for a key that is not read, so it may have escapes.
    fn key_skipping_escapes(&mut self, object: &mut Object) -> Option<bool> {
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(false);
        }
        if !std::mem::take(&mut object.first) {
            self.eat(b',')?;
        }
        self.peek()?;
        self.skip_str()?;
        self.eat(b':')?;
        Some(true)
    }

    fn skip_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let bytes = self.bytes();
        let mut i = self.at;
        loop {
            i = special(bytes, i);
            match *bytes.get(i)? {
                b'"' => {
                    self.at = i + 1;
                    return Some(());
                }
                // serde_json passes over a `\u` escape checking only its four hex digits.
                b'\\' => match *bytes.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        hex4(bytes.get(i + 2..i + 6)?)?;
                        i += 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    fn skip_number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let digits = |at: &mut usize| {
            let start = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > start
        };
        let mut i = self.at;
        if bytes[i] == b'-' {
            i += 1;
        }
        match bytes.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                digits(&mut i);
            }
            _ => return None,
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.at = i;
        Some(())
    }

    /// Whether only whitespace is left.
    pub fn end(&mut self) -> Option<()> {
        self.peek().is_none().then_some(())
    }
}

/// Where the first byte at or after `from` that a string cannot hold as it is (a `"`, a `\\` or
/// a control character) is, or the length of `bytes` if there is none. Eight bytes at a time:
/// most of a stream chunk is string bytes.
pub(crate) fn special(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Bit 7 of each byte of the result is set where `word`'s byte is below `n` (n <= 0x80);
    // bits above the lowest match may be set wrongly by a borrow, never below it.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let found = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// The character an escape stands for (`rest` is what follows its `\`) and how many bytes it
/// takes after the `\`. A surrogate must come in a pair; alone it gives up.
fn escape(rest: &[u8]) -> Option<(char, usize)> {
    let simple = match *rest.first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(rest.get(1..5)?)?;
            if !(0xD800..0xE000).contains(&high) {
                return Some((char::from_u32(u32::from(high))?, 5));
            }
            if high >= 0xDC00 || rest.get(5..7)? != b"\\u" {
                return None;
            }
            let low = hex4(rest.get(7..11)?)?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            let code = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
            return Some((char::from_u32(code)?, 11));
        }
        _ => return None,
    };
    Some((simple, 1))
}

fn hex4(digits: &[u8]) -> Option<u16> {
    digits.iter().try_fold(0u16, |value, &d| {
        let digit = (d as char).to_digit(16)?;
        Some((value << 4) | digit as u16)
    })
}

/// Every cut of `text`, and every deletion of one of its bytes or replacement by one of the
/// bytes JSON is made of, that is still UTF-8: the broken texts a hand reader is checked on
/// (each must be read as serde_json reads it, or left to it). For tests (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub fn broken_variants(text: &str) -> Vec<String> {
    const SWAPS: &[u8] = b"\"\\{}[],:09-e.nt u\x01";
    let bytes = text.as_bytes();
    let mut variants = Vec::new();
    for at in 0..bytes.len() {
        variants.push(bytes[..at].to_vec());
        let mut removed = bytes.to_vec();
        removed.remove(at);
        variants.push(removed);
        for &swap in SWAPS {
            let mut swapped = bytes.to_vec();
            swapped[at] = swap;
            variants.push(swapped);
        }
    }
    variants
        .into_iter()
        .filter_map(|v| String::from_utf8(v).ok())
        .collect()
}

/// Holds a hand reader to serde_json on `texts`: what `by_hand` reads is what `by_serde` reads,
/// or it gives up; and every text `plain` says the reader is for is read by hand. Returns how
/// many texts were plain, for the caller to check there were enough. For tests (feature
/// `testing`).
#[cfg(any(test, feature = "testing"))]
pub fn reads_as_serde_reads<'a, T: PartialEq + std::fmt::Debug>(
    texts: impl IntoIterator<Item = &'a str>,
    by_hand: impl Fn(&str) -> Option<T>,
    by_serde: impl Fn(&str) -> Option<T>,
    plain: impl Fn(&str) -> bool,
) -> usize {
    let mut taken = 0;
    for text in texts {
        let ours = by_hand(text);
        if ours.is_some() {
            assert_eq!(ours, by_serde(text), "{text}");
        }
        if plain(text) {
            taken += 1;
            assert!(ours.is_some(), "left to serde: {text}");
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_value_read_by_serde_leaves_the_scan_just_after_it() {
        let cases = [
            (
                "[1, {\"a\": null}] ,x",
                serde_json::json!([1, {"a": null}]),
                " ,x",
            ),
            (" null}", Value::Null, "}"),
            ("1.5]", serde_json::json!(1.5), "]"),
            (r#""\u00e9" ,"#, serde_json::json!("é"), " ,"),
        ];
        for (text, want, rest) in cases {
            let mut scan = Scan::new(text);
            assert_eq!(scan.value::<Value>(), Some(want), "{text}");
            assert_eq!(scan.rest(), rest, "{text}");
        }
        for broken in ["1x", "[1,", "", "nul"] {
            assert_eq!(Scan::new(broken).value::<Value>(), None, "{broken}");
        }
    }

    /// A value read by a scan, as a `serde_json::Value`, for comparing with serde_json.
    fn read(scan: &mut Scan<'_>) -> Option<Value> {
        if scan.null() {
            return Some(Value::Null);
        }
        match scan.peek()? {
            b'{' => {
                let mut object = scan.object()?;
                let mut map = serde_json::Map::new();
                while let Some(key) = scan.key(&mut object)? {
                    map.insert(key.to_owned(), read(scan)?);
                }
                Some(Value::Object(map))
            }
            b'[' => {
                let mut array = scan.array()?;
                let mut items = Vec::new();
                while scan.item(&mut array)? {
                    items.push(read(scan)?);
                }
                Some(Value::Array(items))
            }
            b'"' => Some(Value::String(scan.str()?.into_owned())),
            b'0'..=b'9' => {
                let mut ahead = scan.clone();
                match scan.u64() {
                    Some(n) => Some(Value::from(n)),
                    None => {
                        // Not a whole number: checked by skip, read by serde_json.
                        let start = ahead.at;
                        ahead.skip()?;
                        *scan = ahead.clone();
                        serde_json::from_str(&ahead.text[start..ahead.at]).ok()
                    }
                }
            }
            _ => {
                let start = scan.at;
                scan.skip()?;
                serde_json::from_str(&scan.text[start..scan.at]).ok()
            }
        }
    }

    /// What a scan makes of `text`: the value read, and whether `skip` passes over it too.
    fn scanned(text: &str) -> Option<Value> {
        let mut skipping = Scan::new(text);
        let skipped = skipping.skip().and_then(|()| skipping.end()).is_some();
        let mut scan = Scan::new(text);
        let value = read(&mut scan).filter(|_| scan.end().is_some());
        if value.is_some() {
            assert!(skipped, "read but not skipped: {text:?}");
        }
        if skipped {
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
                "skipped but refused by serde_json: {text:?}"
            );
        }
        value
    }

    /// Every text a scan reads is read the same by serde_json.
    fn agrees(text: &str) {
        if let Some(value) = scanned(text) {
            let theirs: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("scan read {text:?}, serde_json refuses: {e}"));
            assert_eq!(value, theirs, "{text:?}");
        }
    }

    const TEXTS: &[&str] = &[
        r#"{"id":"c-1","object":"chat.completion.chunk","created":1760000000,"choices":[{"index":0,"delta":{"content":"Zq1 "},"finish_reason":null}]}"#,
        r#"{"a":"x\u00e9\"\\\/\b\f\n\r\t","b":[1,2.5,-0,1e5,1E+2,-3.25e-2,null,true,false],"c":{}}"#,
        r#" { "a" : [ ] , "b" : { "c" : [ { } ] } } "#,
        r#"{"emoji":"\ud83d\ude00 and \u263a","cjk":"日本語"}"#,
        r#"{"n":18446744073709551615,"m":18446744073709551616,"z":0,"f":-0.0}"#,
        r#"{"lone":"\ud800","trail":"\udc00","bad":"\x","ctl":"a	b"}"#,
        r#"{"l":01}"#,
        r#"{"k\u0065y":1,"k":2}"#,
        r#"[1,]"#,
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{"a":1}x"#,
        r#"{"a":-}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":nul}"#,
        r#"{"a":tru}"#,
        "",
        "   ",
    ];

    #[test]
    fn what_a_scan_reads_serde_json_reads_the_same() {
        for text in TEXTS {
            agrees(text);
        }
    }

    #[test]
    fn a_scan_reads_the_plain_shapes_it_is_for() {
        for text in &TEXTS[..5] {
            assert!(scanned(text).is_some(), "gave up on {text:?}");
        }
        let mut scan = Scan::new(r#""\ud83d\ude00 é \n""#);
        assert_eq!(scan.str().as_deref(), Some("\u{1F600} é \n"));
    }

    #[test]
    fn a_scan_gives_up_on_escaped_keys_and_on_what_serde_json_refuses() {
        for text in &TEXTS[5..] {
            assert_eq!(scanned(text), None, "{text:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(Scan::new(&deep).skip().is_none());
        let fits = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(Scan::new(&fits).skip().is_some());
    }

    /// Every cut, deletion and replacement of a byte in the texts: the scan reads only what
    /// serde_json reads, and the same way.
    #[test]
    fn every_broken_variant_is_refused_or_read_as_serde_json_reads_it() {
        for text in TEXTS {
            for variant in broken_variants(text) {
                agrees(&variant);
            }
        }
    }

    proptest::proptest! {
        /// Texts made of JSON's own characters, mostly broken: read only as serde_json reads
        /// them.
        #[test]
        fn any_text_of_json_characters_is_refused_or_read_as_serde_json_reads_it(
            text in r#"[{}\[\],:" \\0-9.eE+\-nultrefasu\u{e9}\u{1F600}]{0,40}"#
        ) {
            agrees(&text);
        }

        /// Eight bytes at a time finds what one at a time finds.
        #[test]
        fn special_bytes_are_found_as_one_at_a_time_finds_them(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                proptest::num::u8::ANY,
                proptest::sample::select(vec![b'"', b'\\', 0x1f, 0x20, b'a', 0x7f, 0x80, 0xe9]),
            ], 0..40),
            from in 0usize..40,
        ) {
            let from = from.min(bytes.len());
            let naive = (from..bytes.len())
                .find(|&i| matches!(bytes[i], b'"' | b'\\' | 0..=0x1f))
                .unwrap_or(bytes.len());
            proptest::prop_assert_eq!(special(&bytes, from), naive);
        }

        /// Any JSON value serde_json writes is read back.
        #[test]
        fn any_value_serde_json_writes_is_read(
            keys in proptest::collection::vec("[a-z\u{e9}]{0,6}", 0..5),
            strings in proptest::collection::vec("[ -~\u{e9}\u{1F600}\n\t]{0,12}", 0..5),
            numbers in proptest::collection::vec(proptest::num::u64::ANY, 0..3),
        ) {
            let mut map = serde_json::Map::new();
            for (i, key) in keys.iter().enumerate() {
                let value = match strings.get(i) {
                    Some(s) => Value::from(s.clone()),
                    None => Value::from(numbers.clone()),
                };
                map.insert(key.clone(), value);
            }
            let text = serde_json::to_string(&Value::Object(map.clone())).unwrap();
            proptest::prop_assert_eq!(scanned(&text), Some(Value::Object(map)));
        }
    }
}
