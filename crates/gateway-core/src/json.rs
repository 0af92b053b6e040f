//! JSON bodies read from bytes.

use serde::de::DeserializeOwned;

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
}
