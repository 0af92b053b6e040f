//! JSON read from bytes (with serde_json, or a token at a time by a [`Scan`]), and JSON objects
//! written field by field.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod scan;

pub use scan::{Scan, Seen};

/// `bytes` parsed as JSON, as `serde_json::from_slice` parses them, in fewer instructions:
/// checked as UTF-8 once, then parsed as text. From a byte slice, serde_json checks each string
/// on its own, a call per string (about 100 instructions each, a few thousand for a chat
/// request or answer); a whole body checked at once costs a fraction of that. Bytes that are
/// not UTF-8 are parsed as bytes, so the error is serde_json's own, at the same place.
pub fn from_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// A JSON object written field by field at the end of a buffer: each key as it is, each text
/// through [`write_str`] ([`ObjectWriter::str`]), any other value through serde_json. For the
/// objects written on every request (an answer, a journal line, a provider's request):
/// through a derived `Serialize`, serde_json escapes every key as if it could hold a quote
/// (about 190 instructions a key); here a key is constant text, copied. Fields written in the
/// order of a type's fields give the bytes its derived `Serialize` gives.
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Starts an object at the end of `out`; [`ObjectWriter::end`] closes it.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Writes `"name":value`. `name` is written as it is, so it must need no escaping (no
    /// quote, backslash or control character).
    pub fn field(
        &mut self,
        name: &'static str,
        value: &(impl Serialize + ?Sized),
    ) -> serde_json::Result<&mut Self> {
        self.key(name);
        serde_json::to_writer(&mut *self.out, value)?;
        Ok(self)
    }

    /// Writes `"name":value` when `value` is `Some`, and nothing for `None`: a field serde
    /// leaves out with `skip_serializing_if = "Option::is_none"`.
    pub fn some(
        &mut self,
        name: &'static str,
        value: &Option<impl Serialize>,
    ) -> serde_json::Result<&mut Self> {
        match value {
            Some(value) => self.field(name, value),
            None => Ok(self),
        }
    }

    /// Writes `"name":"text"`, the text escaped as serde_json escapes it (see [`write_str`]).
    pub fn str(&mut self, name: &'static str, text: &str) -> &mut Self {
        self.key(name);
        write_str(self.out, text);
        self
    }

    /// Writes `"name":"text"`, or `"name":null` for `None`.
    pub fn opt_str(&mut self, name: &'static str, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.str(name, text),
            None => {
                self.key(name);
                self.out.extend_from_slice(b"null");
                self
            }
        }
    }

    /// Writes `"name":{...}`, the inner object's fields written by `fields`.
    pub fn object(
        &mut self,
        name: &'static str,
        fields: impl FnOnce(&mut ObjectWriter<'_>) -> serde_json::Result<()>,
    ) -> serde_json::Result<&mut Self> {
        self.key(name);
        let mut inner = ObjectWriter::new(self.out);
        fields(&mut inner)?;
        inner.end();
        Ok(self)
    }

    /// Writes `"name":[{...},...]`, an object for each of `items`, its fields written by
    /// `fields`.
    pub fn objects<T>(
        &mut self,
        name: &'static str,
        items: impl IntoIterator<Item = T>,
        mut fields: impl FnMut(&mut ObjectWriter<'_>, T) -> serde_json::Result<()>,
    ) -> serde_json::Result<&mut Self> {
        self.key(name);
        self.out.push(b'[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let mut inner = ObjectWriter::new(self.out);
            fields(&mut inner, item)?;
            inner.end();
        }
        self.out.push(b']');
        Ok(self)
    }

    /// Closes the object.
    pub fn end(&mut self) {
        self.out.push(b'}');
    }

    fn key(&mut self, name: &'static str) {
        debug_assert!(
            !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20),
            "a key written as it is needs no escaping: {name:?}"
        );
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
}

/// Appends `text` as a JSON string, quotes included: the bytes serde_json writes for it (a `"`,
/// a `\` and the control characters escaped, the short forms where JSON has them, `\u00xx`
/// for the others), found eight bytes at a time rather than looked up one at a time (about
/// four instructions a byte in serde_json; an answer's text is hundreds of bytes).
pub fn write_str(out: &mut impl bytes::BufMut, text: &str) {
    out.put_u8(b'"');
    write_str_contents(out, text);
    out.put_u8(b'"');
}

/// Appends `text` escaped as [`write_str`] escapes it, without the quotes: for a string made of
/// several pieces.
pub fn write_str_contents(out: &mut impl bytes::BufMut, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    loop {
        let at = scan::special(bytes, start);
        out.put_slice(bytes.get(start..at).unwrap_or_default());
        let Some(&b) = bytes.get(at) else { break };
        match b {
            b'"' => out.put_slice(b"\\\""),
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            0x08 => out.put_slice(b"\\b"),
            0x0c => out.put_slice(b"\\f"),
            _ => out.put_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = at + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn parses_as_from_slice_does() {
        let bodies: [&[u8]; 6] = [
            br#"{"a":"x\u00e9\"","b":[1,2.5,null]}"#,
            "{\"a\":\"é\"}".as_bytes(),
            b"{\"a\":\"\xff\"}",
            br#"{"a":"\ud800"}"#,
            b"{\"a\":1",
            b"",
        ];
        for body in bodies {
            let ours = from_json_bytes::<serde_json::Value>(body).map_err(|e| e.to_string());
            let theirs =
                serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(body));
        }
    }

    proptest::proptest! {
        /// Any text is written as serde_json writes it: every escape, and the bytes around.
        #[test]
        fn a_string_is_written_as_serde_json_writes_it(
            text in proptest::collection::vec(proptest::prop_oneof![
                proptest::char::any(),
                proptest::sample::select(vec!['"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}',
                    '\u{0}', '\u{1f}', '\u{7f}', '/', 'a', 'é']),
            ], 0..40).prop_map(|chars| chars.into_iter().collect::<String>()),
        ) {
            let mut out = b"> ".to_vec();
            write_str(&mut out, &text);
            let expected = format!("> {}", serde_json::to_string(&text).unwrap());
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn an_object_written_by_fields_is_what_serde_writes() {
        #[derive(Serialize)]
        struct Inner {
            n: u64,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            text: &'a str,
            none: Option<u8>,
            some_text: Option<&'a str>,
            no_text: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            kept: Option<u8>,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            inner: Inner,
            list: Vec<Inner>,
            empty: Vec<Inner>,
        }
        let value = Outer {
            text: "a \"quoted\"\n é",
            none: None,
            some_text: Some("\u{1}"),
            no_text: None,
            kept: Some(3),
            skipped: None,
            inner: Inner { n: 7 },
            list: vec![Inner { n: 1 }, Inner { n: 2 }],
            empty: Vec::new(),
        };
        let mut out = b"> ".to_vec();
        ObjectWriter::new(&mut out)
            .str("text", value.text)
            .field("none", &value.none)
            .unwrap()
            .opt_str("some_text", value.some_text)
            .opt_str("no_text", value.no_text)
            .some("kept", &value.kept)
            .unwrap()
            .some("skipped", &value.skipped)
            .unwrap()
            .object("inner", |o| o.field("n", &value.inner.n).map(drop))
            .unwrap()
            .objects("list", &value.list, |o, i| o.field("n", &i.n).map(drop))
            .unwrap()
            .objects("empty", &value.empty, |o, i| o.field("n", &i.n).map(drop))
            .unwrap()
            .end();
        let expected = format!("> {}", serde_json::to_string(&value).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
