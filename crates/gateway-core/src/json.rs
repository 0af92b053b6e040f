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

/// A JSON object written field by field at the end of a buffer: each key as it is, each value
/// through serde_json. For the objects written on every request (an answer, a journal line):
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

#[cfg(test)]
mod tests {
    use super::*;

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
            inner: Inner,
            list: Vec<Inner>,
            empty: Vec<Inner>,
        }
        let value = Outer {
            text: "a \"quoted\"\n é",
            none: None,
            inner: Inner { n: 7 },
            list: vec![Inner { n: 1 }, Inner { n: 2 }],
            empty: Vec::new(),
        };
        let mut out = b"> ".to_vec();
        ObjectWriter::new(&mut out)
            .field("text", value.text)
            .unwrap()
            .field("none", &value.none)
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
