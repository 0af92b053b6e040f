//! Media that requests carry in and responses carry out: images, audio, video.

use bytes::Bytes;

/// A media input (an image to edit, audio to transcribe, a first frame for a video).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaInput {
    /// The bytes themselves, with their MIME type (`image/png`).
    Bytes {
        /// The content.
        data: Bytes,
        /// Its MIME type.
        mime: String,
    },
    /// An `https://` URL the provider (or the gateway, where the provider cannot) fetches.
    Url(String),
}

impl MediaInput {
    /// Bytes of type `mime`.
    pub fn bytes(data: impl Into<Bytes>, mime: impl Into<String>) -> Self {
        Self::Bytes {
            data: data.into(),
            mime: mime.into(),
        }
    }

    /// Reads a `data:` URL (RFC 2397, base64 form) or takes any other URL as a URL.
    ///
    /// Fails, saying why, on a `data:` URL that is not base64 or does not decode.
    pub fn from_url(url: &str) -> Result<Self, String> {
        match DataUrl::parse(url) {
            Some(Ok(d)) => Ok(Self::Bytes {
                data: d.data,
                mime: d.mime,
            }),
            Some(Err(why)) => Err(why),
            None => Ok(Self::Url(url.to_owned())),
        }
    }

    /// The size of the content in bytes, when it is held in memory.
    pub fn len(&self) -> Option<usize> {
        match self {
            Self::Bytes { data, .. } => Some(data.len()),
            Self::Url(_) => None,
        }
    }

    /// Whether the content is held in memory and empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// A media output: bytes the provider returned, or a URL where they can be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaOutput {
    /// The bytes, with their MIME type.
    Bytes {
        /// The content.
        data: Bytes,
        /// Its MIME type (`image/png`, `audio/wav`, `video/mp4`).
        mime: String,
    },
    /// A URL the provider hosts the output at (often only for a limited time).
    Url {
        /// The URL.
        url: String,
        /// Its MIME type, when the provider says.
        mime: Option<String>,
    },
}

/// The MIME type of image bytes, read from their signature (PNG, JPEG, WebP, GIF), or `None`
/// when the bytes are none of these: how an upload that is not an image is told apart before
/// it is sent anywhere.
pub fn sniff_image(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// A decoded `data:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUrl {
    /// The MIME type (`image/png`); `text/plain` when the URL names none, as RFC 2397 says.
    pub mime: String,
    /// The decoded content.
    pub data: Bytes,
}

impl DataUrl {
    /// `None` when `url` is not a `data:` URL; else the decoded URL, or why it cannot be read.
    /// Only the base64 form is accepted: it is the one clients send for binary media.
    pub fn parse(url: &str) -> Option<Result<Self, String>> {
        let rest = url
            .get(..5)
            .filter(|s| s.eq_ignore_ascii_case("data:"))
            .map(|_| &url[5..])?;
        let Some((meta, payload)) = rest.split_once(',') else {
            return Some(Err("a data URL needs a `,` before its content".into()));
        };
        let mut params = meta.split(';');
        let mime = params.next().unwrap_or_default().trim();
        if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
            return Some(Err(
                "only base64 data URLs are accepted (`data:<type>;base64,...`)".into(),
            ));
        }
        let mime = if mime.is_empty() { "text/plain" } else { mime };
        Some(
            decode_base64(payload.trim())
                .map(|data| Self {
                    mime: mime.to_ascii_lowercase(),
                    data: Bytes::from(data),
                })
                .ok_or_else(|| "the data URL's content is not valid base64".to_owned()),
        )
    }
}

/// Standard base64 that also takes input without padding, as clients send it both ways.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes standard base64 (padding optional, ASCII whitespace ignored); `None` if it is not
/// base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        return LENIENT.decode(compact).ok();
    }
    LENIENT.decode(text).ok()
}

/// Encodes `data` as standard base64 with padding.
pub fn encode_base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0, 255, 7],
        ] {
            let text = encode_base64(data);
            assert_eq!(decode_base64(&text).as_deref(), Some(data), "{text}");
            assert_eq!(
                decode_base64(text.trim_end_matches('=')).as_deref(),
                Some(data)
            );
        }
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(decode_base64("Zm9v\nYmFy").as_deref(), Some(&b"foobar"[..]));
        for bad in ["Z", "Zm9v!", "Zm=9", "Zm9vY==="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn images_are_told_by_their_signature() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(sniff_image(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"GIF89a..."), Some("image/gif"));
        for not_an_image in [
            &b""[..],
            b"\x89PN",
            b"RIFF\0\0\0\0WAVE",
            b"%PDF-1.7",
            b"hello",
        ] {
            assert_eq!(sniff_image(not_an_image), None, "{not_an_image:?}");
        }
    }

    #[test]
    fn data_urls() {
        let d = DataUrl::parse("data:image/PNG;base64,iVBORw0K")
            .unwrap()
            .unwrap();
        assert_eq!(d.mime, "image/png");
        assert_eq!(&d.data[..4], b"\x89PNG");
        assert!(DataUrl::parse("https://example.com/a.png").is_none());
        assert!(DataUrl::parse("data:image/png,raw").unwrap().is_err());
        assert!(DataUrl::parse("data:image/png;base64,!!").unwrap().is_err());
        assert!(DataUrl::parse("data:nocomma").unwrap().is_err());
        assert_eq!(
            MediaInput::from_url("https://x/y.png").unwrap(),
            MediaInput::Url("https://x/y.png".into())
        );
        assert_eq!(
            MediaInput::from_url("data:;base64,aGk=").unwrap(),
            MediaInput::bytes(&b"hi"[..], "text/plain")
        );
    }
}
